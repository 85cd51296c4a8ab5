/* acl: host globs (fnmatch) and CIDR blocks.  The deny check runs on
 * the address actually about to be connected to, so a name that resolves
 * into a denied block (cloud metadata at 169.254.169.254, say) is caught
 * however it is spelled.  The unspecified addresses (0.0.0.0/8 and ::)
 * are always denied: connecting to them reaches the local host. */
#include <fnmatch.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "netaddr.h"
#include "xalloc.h"

struct acl {
	char **allow;                /* NULL-terminated globs (owned copies) */
	struct netaddr_cidr *deny;   /* owned array, parsed by netaddr.c */
	size_t ndeny;
};

static char **copy_strv(char *const *v)
{
	size_t n = 0, i;
	char **c;

	while (v != NULL && v[n] != NULL)
		n++;
	c = xcalloc(n + 1, sizeof *c);
	for (i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

struct acl *acl_new(char *const *allow_hosts, char *const *deny_networks)
{
	struct acl *a = xcalloc(1, sizeof *a);
	size_t n = 0, i;

	a->allow = copy_strv(allow_hosts);
	while (deny_networks != NULL && deny_networks[n] != NULL)
		n++;
	a->deny = xcalloc(n, sizeof *a->deny);
	for (i = 0; i < n; i++)
		if (netaddr_parse_cidr(deny_networks[i], &a->deny[a->ndeny]) == 0)
			a->ndeny++;
	return a;
}

void acl_free(struct acl *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; a->allow[i] != NULL; i++)
		free(a->allow[i]);
	free(a->allow);
	free(a->deny);
	free(a);
}

bool acl_host_allowed(const struct acl *a, const char *host)
{
	size_t i;

	for (i = 0; a->allow[i] != NULL; i++)
		if (fnmatch(a->allow[i], host, 0) == 0)
			return true;
	return false;
}

static bool in_block(const struct netaddr_cidr *c, const unsigned char *addr)
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;
	unsigned char mask;

	if (memcmp(c->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (c->addr[full] & mask) == (addr[full] & mask);
}

/* "This host" (RFC 1122 3.2.1.3, RFC 4291 2.5.2): no upstream lives
 * there, but Linux connects such a socket to the local host, past a
 * denied 127.0.0.0/8 or ::1. */
static bool this_host(int family, const unsigned char *addr)
{
	if (family == AF_INET)
		return addr[0] == 0;
	return IN6_IS_ADDR_UNSPECIFIED((const struct in6_addr *)addr);
}

bool acl_addr_denied(const struct acl *a, const struct sockaddr *sa)
{
	const unsigned char *addr;
	unsigned char v4[4];
	int family = sa->sa_family;
	size_t i;

	if (family == AF_INET) {
		addr = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else {
		addr = (const unsigned char *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		/* an IPv4-mapped IPv6 address is the IPv4 address */
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
			memcpy(v4, addr + 12, 4);
			addr = v4;
			family = AF_INET;
		}
	}
	if (this_host(family, addr))
		return true;
	for (i = 0; i < a->ndeny; i++)
		if (a->deny[i].family == family && in_block(&a->deny[i], addr))
			return true;
	return false;
}

bool acl_literal_denied(const struct acl *a, const char *host)
{
	struct sockaddr_storage ss;

	return netaddr_parse_ip(host, &ss) && acl_addr_denied(a, (struct sockaddr *)&ss);
}
