/* keyhash: the one string hash of fanoutd's chained hash tables (the DNS
 * cache in dns.c, the live upstreams and their series in upstream.c):
 * FNV-1a, reduced to a bucket index. */
#ifndef FANOUTD_KEYHASH_H
#define FANOUTD_KEYHASH_H

#include <stddef.h>

/* The bucket of key in a table of nbuckets (> 0) chains. */
unsigned keyhash(const char *key, size_t nbuckets);

#endif
