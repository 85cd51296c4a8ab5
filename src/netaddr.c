/* netaddr: the text forms of addresses (see netaddr.h).  inet_pton and
 * inet_ntop do the reading and writing; what is here is which spellings
 * fanoutd takes, and the messages for those it does not. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <event2/util.h>

#include "netaddr.h"

/* ---- IP literals ---------------------------------------------------------- */

bool netaddr_parse_ip(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return true;
	}
	memset(ss, 0, sizeof *ss);
	return false;
}

bool netaddr_canonical_ipv6(const char *s, size_t n, char *out, size_t len)
{
	char bare[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];

	if (n >= sizeof bare)
		return false;
	memcpy(bare, s, n);
	bare[n] = '\0';
	return inet_pton(AF_INET6, bare, bin) == 1 &&
	       inet_ntop(AF_INET6, bin, out, (socklen_t)len) != NULL;
}

/* Is the label p[0..n) a number as some IPv4 parser reads one: decimal
 * with an optional sign (libevent's sscanf) or 0x hex (inet_aton)? */
static bool numeric_label(const char *p, size_t n)
{
	size_t i = 0;

	if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		for (i = 2; i < n && isxdigit((unsigned char)p[i]); i++)
			;
		return i == n;
	}
	if (n > 0 && (p[0] == '+' || p[0] == '-'))
		i = 1;
	if (i == n)
		return false;
	while (i < n && isdigit((unsigned char)p[i]))
		i++;
	return i == n;
}

/* Would some resolver read host as an IPv4 address?  inet_aton (glibc's
 * getaddrinfo, curl) reads 0177.0.0.1 as octal and 127.1 or 2130706433 as
 * 127.0.0.1; libevent, which resolves for fanoutd, reads 0177.0.0.1 as
 * decimal and takes a sign; to the URL standard a host whose last label is
 * a number is an address.  A name that merely starts with digits
 * (1password.com, 123.example.com) is a name. */
static bool looks_ipv4(const char *host)
{
	struct in_addr a;
	const char *last;
	size_t n = strlen(host);

	if (inet_aton(host, &a) != 0 || evutil_inet_pton(AF_INET, host, &a) == 1)
		return true;
	if (n > 1 && host[n - 1] == '.')
		n--;                       /* the root label of "1.2.3.4." */
	last = memrchr(host, '.', n);
	last = last != NULL ? last + 1 : host;
	return numeric_label(last, (size_t)(host + n - last));
}

/* Four decimal numbers 0-255 without leading zeros: the one spelling that
 * every parser reads as the same address. */
static bool canonical_ipv4(const char *host)
{
	const char *p = host;
	int part, digits, value;

	for (part = 0; part < 4; part++) {
		if (part > 0 && *p++ != '.')
			return false;
		value = 0;
		for (digits = 0; digits < 4 && isdigit((unsigned char)p[digits]); digits++)
			value = value * 10 + (p[digits] - '0');
		if (digits == 0 || digits > 3 || value > 255 || (digits > 1 && p[0] == '0'))
			return false;
		p += digits;
	}
	return *p == '\0';
}

bool netaddr_ambiguous_ipv4(const char *host)
{
	return looks_ipv4(host) && !canonical_ipv4(host);
}

/* ---- listen addresses ------------------------------------------------------ */

static const char listen_hint[] =
	"use HOST:PORT, [IPv6]:PORT or unix:/absolute/path";

int netaddr_parse_port(const char *s, long min, long *out)
{
	long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 5)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v < min || v > 65535)
		return -1;
	*out = v;
	return 0;
}

static bool has_ctrl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static int parse_unix(const char *s, struct sockaddr_storage *ss, socklen_t *sslen,
                      char *msg, size_t len)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	const char *path = s + 5;

	if (path[0] != '/') {
		snprintf(msg, len, "listen: unix socket path must be absolute in \"%s\"", s);
		return -1;
	}
	if (strlen(path) >= sizeof sun->sun_path) {
		snprintf(msg, len, "listen: unix socket path too long in \"%s\" (at most %zu bytes)",
		         s, sizeof sun->sun_path - 1);
		return -1;
	}
	if (has_ctrl(path)) {
		snprintf(msg, len, "listen: control character in \"%s\"", s);
		return -1;
	}
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	*sslen = sizeof *sun;
	return 0;
}

/* s[0..n) into host, cut to fit: too long to be an address anyway. */
static void copy_host(char *host, size_t size, const char *s, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(host, s, n);
	host[n] = '\0';
}

/* "[v6]:port": the address into ss, *port at what follows "]:". */
static int parse_bracketed(const char *s, struct sockaddr_storage *ss, socklen_t *sslen,
                           const char **port, char *msg, size_t len)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	const char *rb = strchr(s, ']');
	char host[INET6_ADDRSTRLEN + 1];

	if (!rb || rb[1] != ':') {
		snprintf(msg, len, "listen: bad address \"%s\" (%s)", s, listen_hint);
		return -1;
	}
	copy_host(host, sizeof host, s + 1, (size_t)(rb - s - 1));
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
		snprintf(msg, len, "listen: bad IPv6 address in \"%s\"", s);
		return -1;
	}
	sin6->sin6_family = AF_INET6;
	*sslen = sizeof *sin6;
	*port = rb + 2;
	return 0;
}

/* "host:port" with an IPv4 address, localhost or *. */
static int parse_v4(const char *s, struct sockaddr_storage *ss, socklen_t *sslen,
                    const char **port, char *msg, size_t len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	const char *colon = strrchr(s, ':');
	char host[INET6_ADDRSTRLEN + 1];

	if (!colon) {
		snprintf(msg, len, "listen: missing port in \"%s\" (%s)", s, listen_hint);
		return -1;
	}
	if (memchr(s, ':', (size_t)(colon - s))) {
		snprintf(msg, len, "listen: IPv6 address needs brackets in \"%s\" (e.g. [::1]:8642)", s);
		return -1;
	}
	copy_host(host, sizeof host, s, (size_t)(colon - s));
	sin->sin_family = AF_INET;
	*sslen = sizeof *sin;
	*port = colon + 1;
	if (strcmp(host, "*") == 0) {
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		return 0;
	}
	if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
	              &sin->sin_addr) != 1) {
		snprintf(msg, len, "listen: bad host in \"%s\" "
		         "(use an IPv4 or [IPv6] address, localhost or *)", s);
		return -1;
	}
	return 0;
}

int netaddr_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sslen,
                         char *msg, size_t len)
{
	const char *port;
	long portnum;
	int rc;

	memset(ss, 0, sizeof *ss);
	if (strncmp(s, "unix:", 5) == 0)
		return parse_unix(s, ss, sslen, msg, len);
	if (s[0] == '[')
		rc = parse_bracketed(s, ss, sslen, &port, msg, len);
	else
		rc = parse_v4(s, ss, sslen, &port, msg, len);
	if (rc < 0)
		return -1;
	if (netaddr_parse_port(port, 0, &portnum) < 0) {
		snprintf(msg, len, "listen: bad port in \"%s\" (0..65535)", s);
		return -1;
	}
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)portnum);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)portnum);
	return 0;
}

/* ---- CIDR blocks ----------------------------------------------------------- */

int netaddr_parse_cidr(const char *s, struct netaddr_cidr *out)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	long bits, maxbits;

	if (n == 0 || n >= sizeof addr)
		return -1;
	memcpy(addr, s, n);
	addr[n] = '\0';
	memset(out, 0, sizeof *out);
	out->family = memchr(s, ':', n) ? AF_INET6 : AF_INET;
	if (inet_pton(out->family, addr, out->addr) != 1)
		return -1;
	bits = maxbits = out->family == AF_INET6 ? 128 : 32;
	if (slash && (strlen(slash + 1) > 3 || netaddr_parse_port(slash + 1, 0, &bits) < 0 ||
	              bits > maxbits))
		return -1;
	out->prefix = (unsigned)bits;
	for (long i = bits; i < maxbits; i++)
		if (out->addr[i / 8] & (0x80 >> (i % 8)))
			return -2;
	return 0;
}

void netaddr_format_cidr(const struct netaddr_cidr *c, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(c->family, c->addr, addr, sizeof addr);
	snprintf(buf, len, "%s/%u", addr, c->prefix);
}

/* ---- socket addresses as text ---------------------------------------------- */

void netaddr_ip_text(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a = sa->sa_family == AF_INET6
	                ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
	                : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

	if (inet_ntop(sa->sa_family == AF_INET6 ? AF_INET6 : AF_INET, a, buf,
	              (socklen_t)len) == NULL && len > 0)
		buf[0] = '\0';
}

int netaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (len > 0)
		buf[0] = '\0';
	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return -1;
	netaddr_ip_text(sa, addr, sizeof addr);
	if (sa->sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%d", addr,
		         ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
	else
		snprintf(buf, len, "%s:%d", addr, ntohs(((const struct sockaddr_in *)sa)->sin_port));
	return 0;
}

void netaddr_set_port(struct sockaddr *sa, int port)
{
	if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
	else if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
}
