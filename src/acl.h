/* acl: which upstreams fanoutd may talk to.  Owns the parsed allow_hosts
 * globs and deny_networks CIDRs of one config; request.c asks about host
 * names and IP literals before anything is sent, fetch.c about resolved
 * addresses just before connecting. */
#ifndef FANOUTD_ACL_H
#define FANOUTD_ACL_H

#include <stdbool.h>
#include <sys/socket.h>

struct acl;

/* From the config's NULL-terminated lists (globs lower-case, CIDRs in
 * canonical form, both already validated by the config; the CIDRs are
 * read by netaddr_parse_cidr, the parser that validated them). */
struct acl *acl_new(char *const *allow_hosts, char *const *deny_networks);
void acl_free(struct acl *a);

/* host: lower-case, IPv6 without brackets. */
bool acl_host_allowed(const struct acl *a, const char *host);

/* sa (AF_INET or AF_INET6) is inside deny_networks, or is an unspecified
 * address (0.0.0.0/8, ::), which always is.  An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) counts as its IPv4 address. */
bool acl_addr_denied(const struct acl *a, const struct sockaddr *sa);

/* An IP literal that acl_addr_denied() denies (false for names). */
bool acl_literal_denied(const struct acl *a, const char *host);

#endif
