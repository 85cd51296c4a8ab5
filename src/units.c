/* units: the value syntax of the config file — durations, sizes, rates,
 * booleans and octal modes, parsed and formatted — the upstream key and
 * the normal form of upstream URLs, and the host-glob and CIDR lists
 * (Redis URLs: redis_url.c).
 * Addresses themselves are read by netaddr.c.  No state. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "units.h"
#include "netaddr.h"
#include "xalloc.h"

#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


/* ---- small helpers ---------------------------------------------------- */

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
	*v = xrealloc(*v, (n + 2) * sizeof **v);
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

	if (parse_u64(&s, &v) < 0 || *s || v > (uint64_t)LONG_MAX)
		return -1;
	*out = (long)v;
	return 0;
}

/* "N" or "N.DDD": the whole part, and the fraction as frac / scale from
 * its first 9 digits (fdigits counts them all). */
struct decimal {
	uint64_t ip, frac, scale;
	int fdigits;
};

static int parse_decimal(const char **sp, struct decimal *d)
{
	const char *s = *sp;

	memset(d, 0, sizeof *d);
	d->scale = 1;
	if (parse_u64(&s, &d->ip) < 0)
		return -1;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -1;
		for (; isdigit((unsigned char)*s); s++) {
			if (++d->fdigits > 9)
				continue;
			d->frac = d->frac * 10 + (uint64_t)(*s - '0');
			d->scale *= 10;
		}
	}
	*sp = s;
	return 0;
}

int units_parse_duration_ms(const char *s, long *out)
{
	struct decimal d;
	uint64_t mult, ms;

	if (!s || parse_decimal(&s, &d) < 0 || d.fdigits > 9)
		return -1;
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
	if ((d.frac * mult) % d.scale != 0)
		return -1;
	if (d.ip > (uint64_t)LONG_MAX / mult)
		return -1;
	ms = d.ip * mult + d.frac * mult / d.scale;
	if (ms > (uint64_t)LONG_MAX)
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

/* The value of s, whose decimal syntax ends at p (checked by the caller):
 * strtod only does the exact rounding. */
static int exact_value(const char *s, const char *p, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return end != p || errno == ERANGE || !isfinite(*v) ? -1 : 0;
}

int units_parse_rate(const char *s, double *out)
{
	const char *p = s;
	struct decimal d;
	double v, div;

	if (!s || parse_decimal(&p, &d) < 0)
		return -1;
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
	if (exact_value(s, p, &v) < 0)
		return -1;
	*out = v / div;
	return 0;
}

int units_parse_percent(const char *s, double *out)
{
	const char *p = s;
	struct decimal d;
	double v;

	if (!s || parse_decimal(&p, &d) < 0 || d.fdigits > 9 || strcmp(p, "%") != 0)
		return -1;
	if (exact_value(s, p, &v) < 0)
		return -1;
	*out = v / 100;
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

/* At most 9 decimals were read: one of these precisions gives them back. */
void units_format_percent(double v, char *buf, size_t len)
{
	for (int prec = 0; prec <= 9; prec++) {
		snprintf(buf, len, "%.*f%%", prec, v * 100);
		if (strtod(buf, NULL) / 100 == v)
			return;
	}
}

/* ---- addresses -------------------------------------------------------- */

int units_check_listen(const char *s, char *msg, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sslen;

	return netaddr_parse_listen(s, &ss, &sslen, msg, len);
}

_Static_assert(sizeof(uintmax_t) <= 8, "UNITS_UINT_MAX holds a uintmax_t");

char *units_format_uint(char *dst, uintmax_t v)
{
	char digits[UNITS_UINT_MAX];
	size_t n = 0;

	do {
		digits[sizeof digits - ++n] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	memcpy(dst, digits + sizeof digits - n, n);
	return dst + n;
}

/* As snprintf would, without printf: it runs for every URL of a batch. */
size_t units_upstream_key(char *out, size_t len, bool tls, const char *host, long port)
{
	bool v6 = strchr(host, ':') != NULL;
	char digits[UNITS_UINT_MAX + 1];
	const char *parts[] = {
		tls ? "https://" : "http://", v6 ? "[" : "", host, v6 ? "]:" : ":", digits,
	};
	size_t i, n = 0, k;

	*units_format_uint(digits, (uintmax_t)(port < 0 ? 0 : port)) = '\0';
	for (i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		k = strlen(parts[i]);
		if (out != NULL && n + 1 < len)
			memcpy(out + n, parts[i], k < len - 1 - n ? k : len - 1 - n);
		n += k;
	}
	if (out != NULL && len > 0)
		out[n < len ? n : len - 1] = '\0';
	return n;
}

/* "scheme://host[:port][/]" -> "scheme://host:port"; see units.h. */
int units_normalise_upstream(const char *url, char *out, char *msg, size_t len)
{
	static const char hint[] = "use e.g. https://api.example.com or http://[::1]:8080";
	const char *sep = strstr(url, "://"), *auth, *end, *hp, *portp = NULL;
	char scheme[8], host[256];
	size_t n;
	long port;

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
		if (!netaddr_canonical_ipv6(hp + 1, n, host, sizeof host)) {
			snprintf(msg, len, "bad IPv6 address in upstream URL \"%s\"", url);
			return -1;
		}
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
		if (netaddr_parse_port(pbuf, 1, &port) < 0) {
			snprintf(msg, len, "bad port in upstream URL \"%s\" (1..65535)", url);
			return -1;
		}
	} else {
		port = strcmp(scheme, "https") == 0 ? 443 : 80;
	}
	units_upstream_key(out, UNITS_UPSTREAM_KEY_MAX, strcmp(scheme, "https") == 0, host, port);
	return 0;
}

/* "addr/len" or a bare address -> malloc'd canonical "addr/len"; -2 if
 * host bits are set (netaddr_parse_cidr). */
static int normalise_cidr(const char *s, char **out)
{
	struct netaddr_cidr c;
	char buf[NETADDR_TEXT_MAX];
	int r = netaddr_parse_cidr(s, &c);

	if (r < 0)
		return r;
	netaddr_format_cidr(&c, buf, sizeof buf);
	*out = xstrdup(buf);
	return 0;
}

static bool glob_char_ok(unsigned char c)
{
	return isalnum(c) || strchr("-._*?[]!:", c);
}

typedef int (*each_fn)(const char *name, const char *elem, char **norm,
                       char *msg, size_t len);

/* The element b..e of value, trimmed, through each() onto *v. */
static int add_element(const char *name, const char *value, const char *b, const char *e,
                       each_fn each, char ***v, char *msg, size_t len)
{
	char *elem, *norm = NULL;
	int rc;

	while (b < e && isspace((unsigned char)*b))
		b++;
	while (e > b && isspace((unsigned char)e[-1]))
		e--;
	if (b == e) {
		snprintf(msg, len, "%s: empty element in \"%s\"", name, value);
		return -1;
	}
	elem = xstrndup(b, (size_t)(e - b));
	rc = each(name, elem, &norm, msg, len);
	free(elem);
	if (rc == 0)
		units_strv_push(v, norm);
	return rc;
}

/* Split "a, b,c" into trimmed elements; calls each(elem) in order.  An
 * empty value is an empty list; an empty element (",," or a trailing
 * comma) is an error. */
static int split_list(const char *name, const char *value, char ***out, each_fn each,
                      char *msg, size_t len)
{
	const char *p = value;
	char **v = xcalloc(1, sizeof *v);

	while (*value != '\0') {
		const char *comma = strchr(p, ','), *e = comma ? comma : p + strlen(p);

		if (add_element(name, value, p, e, each, &v, msg, len) < 0) {
			units_strv_free(v);
			return -1;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	*out = v;
	return 0;
}

static int each_host(const char *name, const char *elem, char **norm,
                     char *msg, size_t len)
{
	char *h = xstrdup(elem);

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
