/* keyhash: FNV-1a over a NUL-terminated key (see keyhash.h).  Keys are
 * host names and "scheme://host:port": short, and FNV spreads them well
 * enough for a chained table. */
#include "keyhash.h"

unsigned keyhash(const char *key, size_t nbuckets)
{
	unsigned h = 2166136261u;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return (unsigned)(h % nbuckets);
}
