/* units: the value syntax of the config file — durations, sizes, rates,
 * booleans and octal modes, parsed and formatted — and the checks and
 * normal forms of listen addresses, upstream URLs, CIDRs and host globs.
 * No state; the x* helpers abort when memory runs out. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "units.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

/* Not <limits.h>: with -I src (rather than -iquote) it finds src/limits.h. */
#define UNITS_LONG_MAX ((long)((unsigned long)-1 >> 1))

/* ---- small helpers ---------------------------------------------------- */

void *units_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("fanoutd: out of memory\n", stderr);
		abort();
	}
	return p;
}

char *units_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(units_xrealloc(NULL, n), s, n);
}

static char *xstrndup(const char *s, size_t n)
{
	char *d = units_xrealloc(NULL, n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

bool units_has_ctrl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

void units_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void units_strv_push(char ***v, char *s)
{
	size_t n = strv_len(*v);
	*v = units_xrealloc(*v, (n + 2) * sizeof **v);
	(*v)[n] = s;
	(*v)[n + 1] = NULL;
}

/* ---- unit parsers ----------------------------------------------------- */

/* Digits only, no sign or space; -1 on junk or overflow. */
static int parse_u64(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*sp = s;
	*out = v;
	return 0;
}

int units_parse_long(const char *s, long *out)
{
	uint64_t v;

	if (parse_u64(&s, &v) < 0 || *s || v > (uint64_t)UNITS_LONG_MAX)
		return -1;
	*out = (long)v;
	return 0;
}

int units_parse_duration_ms(const char *s, long *out)
{
	uint64_t ip, frac = 0, scale = 1, mult, ms;
	int fdigits = 0;

	if (!s || parse_u64(&s, &ip) < 0)
		return -1;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -1;
		for (; isdigit((unsigned char)*s); s++) {
			if (++fdigits > 9)
				return -1;
			frac = frac * 10 + (uint64_t)(*s - '0');
			scale *= 10;
		}
	}
	if (strcmp(s, "ms") == 0)
		mult = 1;
	else if (strcmp(s, "s") == 0 || *s == '\0')
		mult = 1000;
	else if (strcmp(s, "m") == 0)
		mult = 60000;
	else if (strcmp(s, "h") == 0)
		mult = (uint64_t)UNITS_HOUR_MS;
	else
		return -1;
	/* Millisecond precision: "1.5ms" is refused rather than rounded. */
	if ((frac * mult) % scale != 0)
		return -1;
	if (ip > (uint64_t)UNITS_LONG_MAX / mult)
		return -1;
	ms = ip * mult + frac * mult / scale;
	if (ms > (uint64_t)UNITS_LONG_MAX)
		return -1;
	*out = (long)ms;
	return 0;
}

int units_parse_size(const char *s, uint64_t *out)
{
	uint64_t v, mult = 1;

	if (!s || parse_u64(&s, &v) < 0)
		return -1;
	switch (*s) {
	case '\0': break;
	case 'K': case 'k': mult = UNITS_KIB; s++; break;
	case 'M': case 'm': mult = UNITS_MIB; s++; break;
	case 'G': case 'g': mult = UNITS_GIB; s++; break;
	default: return -1;
	}
	if (*s || v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int units_parse_rate(const char *s, double *out)
{
	const char *p = s;
	uint64_t ip;
	double v, div;
	char *end;

	if (!s || parse_u64(&p, &ip) < 0)
		return -1;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p != '/')
		return -1;
	if (strcmp(p + 1, "s") == 0)
		div = 1;
	else if (strcmp(p + 1, "m") == 0)
		div = 60;
	else if (strcmp(p + 1, "h") == 0)
		div = 3600;
	else
		return -1;
	/* The syntax is checked above; strtod only does the exact rounding. */
	errno = 0;
	v = strtod(s, &end);
	if (end != p || errno == ERANGE || !isfinite(v))
		return -1;
	*out = v / div;
	return 0;
}

int units_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	if (!s)
		return -1;
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

int units_parse_mode(const char *s, long *out)
{
	long v = 0;

	if (!*s || strlen(s) > 5)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -1;
		v = v * 8 + (*s - '0');
	}
	*out = v;
	return 0;
}

/* ---- formatting (config_dump and range messages) ---------------------- */

/* Durations as the dump writes them: whole seconds as "Ns", else "Nms". */
void units_format_duration(long ms, char *buf, size_t len)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%lds", ms / 1000);
	else
		snprintf(buf, len, "%ldms", ms);
}

/* Durations in the largest exact unit, for messages: "1ms", "24h". */
void units_format_duration_short(long ms, char *buf, size_t len)
{
	if (ms == 0)
		snprintf(buf, len, "0");
	else if (ms % UNITS_HOUR_MS == 0)
		snprintf(buf, len, "%ldh", ms / UNITS_HOUR_MS);
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%ldm", ms / 60000);
	else
		units_format_duration(ms, buf, len);
}

void units_format_size(uint64_t v, char *buf, size_t len)
{
	if (v && v % UNITS_GIB == 0)
		snprintf(buf, len, "%lluG", (unsigned long long)(v / UNITS_GIB));
	else if (v && v % UNITS_MIB == 0)
		snprintf(buf, len, "%lluM", (unsigned long long)(v / UNITS_MIB));
	else if (v && v % UNITS_KIB == 0)
		snprintf(buf, len, "%lluK", (unsigned long long)(v / UNITS_KIB));
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* The shortest fixed-point text that reads back as exactly v. */
void units_format_rate(double v, char *buf, size_t len)
{
	for (int prec = 0; prec <= 60; prec++) {
		snprintf(buf, len, "%.*f/s", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* ---- addresses -------------------------------------------------------- */

static const char listen_hint[] =
	"use HOST:PORT, [IPv6]:PORT or unix:/absolute/path";

static int parse_port(const char *s, long min, long *out)
{
	long v;

	if (strlen(s) > 5 || units_parse_long(s, &v) < 0 || v < min || v > 65535)
		return -1;
	*out = v;
	return 0;
}

int units_check_listen(const char *s, char *msg, size_t len)
{
	char host[INET6_ADDRSTRLEN + 1], buf[16];
	const char *port;
	long portnum;
	size_t hostlen;

	if (strncmp(s, "unix:", 5) == 0) {
		const char *path = s + 5;
		if (path[0] != '/') {
			snprintf(msg, len, "listen: unix socket path must be absolute in \"%s\"", s);
			return -1;
		}
		if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			snprintf(msg, len, "listen: unix socket path too long in \"%s\" (at most %zu bytes)",
			         s, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
			return -1;
		}
		if (units_has_ctrl(path)) {
			snprintf(msg, len, "listen: control character in \"%s\"", s);
			return -1;
		}
		return 0;
	}
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':') {
			snprintf(msg, len, "listen: bad address \"%s\" (%s)", s, listen_hint);
			return -1;
		}
		hostlen = (size_t)(rb - s - 1);
		if (hostlen >= sizeof host)
			hostlen = sizeof host - 1;
		memcpy(host, s + 1, hostlen);
		host[hostlen] = '\0';
		if (inet_pton(AF_INET6, host, buf) != 1) {
			snprintf(msg, len, "listen: bad IPv6 address in \"%s\"", s);
			return -1;
		}
		port = rb + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon) {
			snprintf(msg, len, "listen: missing port in \"%s\" (%s)", s, listen_hint);
			return -1;
		}
		if (memchr(s, ':', (size_t)(colon - s))) {
			snprintf(msg, len, "listen: IPv6 address needs brackets in \"%s\" (e.g. [::1]:8642)", s);
			return -1;
		}
		hostlen = (size_t)(colon - s);
		if (hostlen >= sizeof host)
			hostlen = sizeof host - 1;
		memcpy(host, s, hostlen);
		host[hostlen] = '\0';
		if (strcmp(host, "*") != 0 && strcmp(host, "localhost") != 0 &&
		    inet_pton(AF_INET, host, buf) != 1) {
			snprintf(msg, len, "listen: bad host in \"%s\" (use an IPv4 or [IPv6] address, localhost or *)", s);
			return -1;
		}
		port = colon + 1;
	}
	if (parse_port(port, 0, &portnum) < 0) {
		snprintf(msg, len, "listen: bad port in \"%s\" (0..65535)", s);
		return -1;
	}
	return 0;
}

/* "scheme://host[:port][/]" -> "scheme://host:port"; see units.h. */
int units_normalise_upstream(const char *url, char *out, char *msg, size_t len)
{
	static const char hint[] = "use e.g. https://api.example.com or http://[::1]:8080";
	const char *sep = strstr(url, "://"), *auth, *end, *hp, *portp = NULL;
	char scheme[8], host[256], buf[16];
	size_t n;
	long port;
	bool v6 = false;

	if (!sep) {
		snprintf(msg, len, "bad upstream URL \"%s\" (%s)", url, hint);
		return -1;
	}
	n = (size_t)(sep - url);
	if (n == 0 || n >= sizeof scheme) {
		snprintf(msg, len, "unsupported scheme in upstream URL \"%s\" (use http or https)", url);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		scheme[i] = (char)tolower((unsigned char)url[i]);
	scheme[n] = '\0';
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		snprintf(msg, len, "unsupported scheme \"%.*s\" in upstream URL \"%s\" (use http or https)",
		         (int)n, url, url);
		return -1;
	}
	auth = sep + 3;
	end = auth + strcspn(auth, "/?#");
	if (end[0] && strcmp(end, "/") != 0) {
		snprintf(msg, len, "upstream URL \"%s\" must not have a path, query or fragment", url);
		return -1;
	}
	if (memchr(auth, '@', (size_t)(end - auth))) {
		snprintf(msg, len, "upstream URL \"%s\" must not have user info", url);
		return -1;
	}
	hp = auth;
	if (*hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(end - hp));
		n = rb ? (size_t)(rb - hp - 1) : 0;
		if (!rb || n >= sizeof host) {
			snprintf(msg, len, "bad IPv6 address in upstream URL \"%s\"", url);
			return -1;
		}
		memcpy(host, hp + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, buf) != 1 ||
		    !inet_ntop(AF_INET6, buf, host, sizeof host)) {
			snprintf(msg, len, "bad IPv6 address in upstream URL \"%s\"", url);
			return -1;
		}
		v6 = true;
		if (rb + 1 < end) {
			if (rb[1] != ':') {
				snprintf(msg, len, "bad upstream URL \"%s\" (%s)", url, hint);
				return -1;
			}
			portp = rb + 2;
		}
	} else {
		const char *colon = memchr(hp, ':', (size_t)(end - hp));
		const char *hend = colon ? colon : end;
		n = (size_t)(hend - hp);
		if (n == 0) {
			snprintf(msg, len, "upstream URL \"%s\" has no host", url);
			return -1;
		}
		if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
			snprintf(msg, len, "IPv6 address needs brackets in upstream URL \"%s\"", url);
			return -1;
		}
		if (n >= sizeof host) {
			snprintf(msg, len, "host name too long in upstream URL \"%s\"", url);
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)hp[i];
			if (!isalnum(c) && c != '-' && c != '.' && c != '_') {
				snprintf(msg, len, "bad host in upstream URL \"%s\"", url);
				return -1;
			}
			host[i] = (char)tolower(c);
		}
		host[n] = '\0';
		if (colon)
			portp = colon + 1;
	}
	if (portp) {
		char pbuf[8];
		n = (size_t)(end - portp);
		if (n >= sizeof pbuf)
			n = sizeof pbuf - 1;
		memcpy(pbuf, portp, n);
		pbuf[n] = '\0';
		if (parse_port(pbuf, 1, &port) < 0) {
			snprintf(msg, len, "bad port in upstream URL \"%s\" (1..65535)", url);
			return -1;
		}
	} else {
		port = strcmp(scheme, "https") == 0 ? 443 : 80;
	}
	snprintf(out, UNITS_UPSTREAM_KEY_MAX, v6 ? "%s://[%s]:%ld" : "%s://%s:%ld", scheme, host, port);
	return 0;
}

/* "addr/len" or a bare address -> malloc'd canonical "addr/len". */
static int normalise_cidr(const char *s, char **out)
{
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	int af = memchr(s, ':', n) ? AF_INET6 : AF_INET;
	long bits = af == AF_INET6 ? 128 : 32, maxbits = bits;

	if (n == 0 || n >= sizeof addr)
		return -1;
	memcpy(addr, s, n);
	addr[n] = '\0';
	if (inet_pton(af, addr, bin) != 1)
		return -1;
	if (slash && (strlen(slash + 1) > 3 || units_parse_long(slash + 1, &bits) < 0 ||
	              bits > maxbits))
		return -1;
	for (long i = bits; i < maxbits; i++)
		if (bin[i / 8] & (0x80 >> (i % 8)))
			return -2;         /* host bits set: almost surely a typo */
	inet_ntop(af, bin, addr, sizeof addr);
	if (asprintf(out, "%s/%ld", addr, bits) < 0) {
		fputs("fanoutd: out of memory\n", stderr);
		abort();
	}
	return 0;
}

static bool glob_char_ok(unsigned char c)
{
	return isalnum(c) || strchr("-._*?[]!:", c);
}

/* Split "a, b,c" into trimmed elements; calls each(elem) in order. */
static int split_list(const char *name, const char *value, char ***out,
                      int (*each)(const char *name, const char *elem, char **norm,
                                  char *msg, size_t len),
                      char *msg, size_t len)
{
	const char *p = value;
	char **v = units_xrealloc(NULL, sizeof *v);

	v[0] = NULL;
	while (*p) {
		const char *comma = strchr(p, ','), *e = comma ? comma : p + strlen(p);
		const char *b = p;
		char *elem, *norm = NULL;
		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		if (b == e) {
			snprintf(msg, len, "%s: empty element in \"%s\"", name, value);
			units_strv_free(v);
			return -1;
		}
		elem = xstrndup(b, (size_t)(e - b));
		if (each(name, elem, &norm, msg, len) < 0) {
			free(elem);
			units_strv_free(v);
			return -1;
		}
		free(elem);
		units_strv_push(&v, norm);
		if (!comma)
			break;
		p = comma + 1;
		if (!*p) {
			snprintf(msg, len, "%s: empty element in \"%s\"", name, value);
			units_strv_free(v);
			return -1;
		}
	}
	*out = v;
	return 0;
}

static int each_host(const char *name, const char *elem, char **norm,
                     char *msg, size_t len)
{
	char *h = units_xstrdup(elem);

	for (char *c = h; *c; c++) {
		if (!glob_char_ok((unsigned char)*c)) {
			snprintf(msg, len, "%s: bad host glob \"%s\"", name, elem);
			free(h);
			return -1;
		}
		*c = (char)tolower((unsigned char)*c);
	}
	*norm = h;
	return 0;
}

static int each_cidr(const char *name, const char *elem, char **norm,
                     char *msg, size_t len)
{
	int r = normalise_cidr(elem, norm);

	if (r == -2)
		snprintf(msg, len, "%s: \"%s\" has bits set after the prefix length", name, elem);
	else if (r < 0)
		snprintf(msg, len, "%s: bad CIDR \"%s\" (use e.g. 10.0.0.0/8 or fd00::/8)", name, elem);
	return r < 0 ? -1 : 0;
}

int units_parse_host_list(const char *name, const char *value, char ***out,
                          char *msg, size_t len)
{
	return split_list(name, value, out, each_host, msg, len);
}

int units_parse_cidr_list(const char *name, const char *value, char ***out,
                          char *msg, size_t len)
{
	return split_list(name, value, out, each_cidr, msg, len);
}
