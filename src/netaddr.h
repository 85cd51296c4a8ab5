/* netaddr: IP addresses, CIDR blocks and socket addresses as text, in one
 * place: the IP-literal checks, the listen-address and CIDR parsers and
 * the sockaddr-to-text writers that config, acl, dns, listener, request,
 * fetch and the logs share.  Pure: no I/O, no allocation. */
#ifndef FANOUTD_NETADDR_H
#define FANOUTD_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Room for an address as netaddr_format() writes it: "[v6]:65535". */
#define NETADDR_TEXT_MAX 64

/* An IP literal as inet_pton reads it (dotted-quad IPv4, or IPv6 without
 * brackets) into *ss with port 0.  False for names. */
bool netaddr_parse_ip(const char *s, struct sockaddr_storage *ss);

/* s[0..n) as an IPv6 literal, in the canonical form (RFC 5952, as
 * inet_ntop writes it) into out, so that one address has one spelling. */
bool netaddr_canonical_ipv6(const char *s, size_t n, char *out, size_t len);

/* Would some resolver read host as an IPv4 address that is not spelled as
 * four decimal numbers 0-255 without leading zeros (0177.0.0.1, 127.1,
 * 2130706433, 0x7f.1)?  fanoutd would connect where the client did not
 * mean, so such a host is refused. */
bool netaddr_ambiguous_ipv4(const char *host);

/* A port: decimal digits only (at most 5), within min..65535. */
int netaddr_parse_port(const char *s, long min, long *out);

/* A listen address: HOST:PORT (an IPv4 address, localhost or *),
 * [IPv6]:PORT or unix:/absolute/path, into *ss and *sslen.  On failure
 * -1 and a message starting with "listen: " in msg. */
int netaddr_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen,
                         char *msg, size_t len);

struct netaddr_cidr {
	int family;                  /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;             /* bits */
};

/* "addr/len", or a bare address (all bits).  0, -1 if it is not a CIDR,
 * -2 if bits are set after the prefix length (almost surely a typo). */
int netaddr_parse_cidr(const char *s, struct netaddr_cidr *out);

/* The canonical "addr/len" of c (at least NETADDR_TEXT_MAX bytes). */
void netaddr_format_cidr(const struct netaddr_cidr *c, char *buf, size_t len);

/* The address of sa (AF_INET or AF_INET6) without port: "10.0.0.1", "::1". */
void netaddr_ip_text(const struct sockaddr *sa, char *buf, size_t len);

/* Set the port of sa (AF_INET or AF_INET6). */
void netaddr_set_port(struct sockaddr *sa, int port);

/* "10.0.0.1:80" or "[::1]:80"; -1 (buf left empty) for other families. */
int netaddr_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
