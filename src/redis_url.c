/* redis_url: the [redis] url, checked and split in one pass (SPEC section
 * 13): unix:/path, or redis:// with user info, host, port and database.
 * The config file checks it with this and the Redis client (shared.c)
 * connects with its parts, so the two cannot disagree.  No state.
 *
 * Why not evhttp_uri_parse, the project's URL parser: it splits the user
 * info at the first '@' ("p@ss@h" fails as a whole), reads "h:" as no
 * port, takes any reg-name as a host ("h!st", "%41", 300 characters) and
 * [v1.x], and a failure is only NULL.  Checking its parts would still need
 * every check below and a split of our own for the messages: a second
 * parser of the same text, which is what this module removes.  The %XX
 * decoding is libevent's (evhttp_uridecode). */
#include "redis_url.h"
#include "netaddr.h"
#include "units.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <event2/http.h>

#define HINT "use redis://host[:port][/db] or unix:/path"

static int fail(char *msg, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* "unix:" then PATH, absolute and fitting in sun_path. */
static int parse_unix(const char *path, struct redis_url *out, char *msg, size_t len)
{
	struct sockaddr_un sun;

	if (path[0] != '/' || path[1] == '\0')
		return fail(msg, len, "url: unix socket path must be absolute (unix:/path)");
	if (strlen(path) >= sizeof sun.sun_path)
		return fail(msg, len, "url: unix socket path too long (at most %zu bytes)",
		            sizeof sun.sun_path - 1);
	out->path = xstrdup(path);
	return 0;
}

/* The port, s[0..n). */
static int parse_port(const char *s, size_t n, struct redis_url *out, char *msg, size_t len)
{
	char buf[8];
	long port;

	if (n < sizeof buf) {
		memcpy(buf, s, n);
		buf[n] = '\0';
		if (netaddr_parse_port(buf, 1, &port) == 0) {
			out->port = (int)port;
			return 0;
		}
	}
	return fail(msg, len, "url: bad port \"%.*s\" in redis:// URL (1..65535)",
	            (int)(n < 16 ? n : 16), s);
}

/* [IPv6][:port], s[0..n) with s[0] == '['. */
static int parse_ipv6(const char *s, size_t n, struct redis_url *out, char *msg, size_t len)
{
	const char *end = s + n, *rb = memchr(s, ']', n);
	char v6[NETADDR_TEXT_MAX];

	if (rb == NULL || !netaddr_canonical_ipv6(s + 1, (size_t)(rb - s - 1), v6, sizeof v6))
		return fail(msg, len, "url: bad IPv6 address in redis:// URL");
	if (rb + 1 != end && rb[1] != ':')
		return fail(msg, len, "url: bad redis:// URL (" HINT ")");
	out->host = xstrdup(v6);
	return rb + 1 == end ? 0 : parse_port(rb + 2, (size_t)(end - rb - 2), out, msg, len);
}

/* host[:port], s[0..n): a name, an IPv4 address or an IPv6 one in
 * brackets. */
static int parse_host(const char *s, size_t n, struct redis_url *out, char *msg, size_t len)
{
	const char *end = s + n, *colon;
	size_t hn;

	if (n > 0 && s[0] == '[')
		return parse_ipv6(s, n, out, msg, len);
	colon = memchr(s, ':', n);
	hn = colon ? (size_t)(colon - s) : n;
	if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
		return fail(msg, len, "url: IPv6 address needs brackets in redis:// URL "
		            "(e.g. redis://[::1]:6379)");
	if (hn == 0)
		return fail(msg, len, "url: no host in redis:// URL (" HINT ")");
	if (hn > 253)
		return fail(msg, len, "url: host name too long in redis:// URL "
		            "(at most 253 characters)");
	for (size_t i = 0; i < hn; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return fail(msg, len, "url: bad host \"%.*s\" in redis:// URL", (int)hn, s);
	}
	out->host = xstrndup(s, hn);
	return colon ? parse_port(colon + 1, (size_t)(end - colon - 1), out, msg, len) : 0;
}

/* The database: a number after the "/" (none: 0). */
static int parse_db(const char *db, struct redis_url *out, char *msg, size_t len)
{
	long v;

	if (db[0] == '\0')
		return 0;
	if (units_parse_long(db, &v) == 0 && strlen(db) <= 7 && v <= REDIS_URL_MAX_DB) {
		out->db = (int)v;
		return 0;
	}
	return fail(msg, len, "url: bad database \"%.*s\" in redis:// URL (a number, 0..%d)",
	            16, db, REDIS_URL_MAX_DB);
}

/* RFC 3986 userinfo, s[0..n): unreserved characters, sub-delims, ':' and
 * %XX, but not %00 (the decoded password is a C string). */
static bool userinfo_ok(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	bool ok = n > 0 && (colon == NULL || colon + 1 < s + n);

	for (size_t i = 0; ok && i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%')
			ok = i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
			     isxdigit((unsigned char)s[i + 2]) &&
			     (s[i + 1] != '0' || s[i + 2] != '0');
		else
			ok = isalnum(c) || strchr("-._~!$&'()*+,;=:", c) != NULL;
	}
	return ok;
}

/* s[0..n), %XX-decoded ('+' stays '+'); NULL when empty. */
static char *decode(const char *s, size_t n)
{
	char *raw, *dec;

	if (n == 0)
		return NULL;
	raw = xstrndup(s, n);
	dec = xcheck(evhttp_uridecode(raw, 0, NULL));
	free(raw);
	return dec;
}

/* [user:]password, s[0..n): "secret" and ":secret" are a password only. */
static int parse_userinfo(const char *s, size_t n, struct redis_url *out, char *msg, size_t len)
{
	const char *colon = memchr(s, ':', n);

	if (!userinfo_ok(s, n))
		return fail(msg, len, "url: bad user info in redis:// URL (use [user:]password@, "
		            "%%XX for characters other than letters, digits and -._~!$&'()*+,;=)");
	if (colon == NULL) {
		out->pass = decode(s, n);
		return 0;
	}
	out->user = decode(s, (size_t)(colon - s));
	out->pass = decode(colon + 1, (size_t)(s + n - colon - 1));
	return 0;
}

/* What follows "redis://". */
static int parse_authority(const char *auth, struct redis_url *out, char *msg, size_t len)
{
	const char *at = NULL, *slash;

	/* the last '@' before the path: a stray one is the user info's error,
	 * and the password never shows up as a host */
	for (const char *c = auth; *c && !strchr("/?#", *c); c++)
		if (*c == '@')
			at = c;
	if (at != NULL) {
		if (parse_userinfo(auth, (size_t)(at - auth), out, msg, len) < 0)
			return -1;
		auth = at + 1;
	}
	if (auth[strcspn(auth, "?#")] != '\0')
		return fail(msg, len, "url: redis:// URL must not have a query or fragment");
	slash = strchr(auth, '/');
	if (parse_host(auth, slash ? (size_t)(slash - auth) : strlen(auth), out, msg, len) < 0)
		return -1;
	return slash ? parse_db(slash + 1, out, msg, len) : 0;
}

static int parse(const char *s, struct redis_url *out, char *msg, size_t len)
{
	const char *sep;

	if (strpbrk(s, " \t") != NULL || units_has_ctrl(s))
		return fail(msg, len, "url: space or control character in Redis URL");
	if (strncmp(s, "unix:", 5) == 0)
		return parse_unix(s + 5, out, msg, len);
	sep = strstr(s, "://");
	if (sep == NULL)
		return fail(msg, len, "url: bad Redis URL (" HINT ")");
	if (sep - s != 5 || strncasecmp(s, "redis", 5) != 0)
		return fail(msg, len, "url: unsupported scheme \"%.*s\" (" HINT ")",
		            (int)(sep - s < 16 ? sep - s : 16), s);
	return parse_authority(sep + 3, out, msg, len);
}

/* Messages name the part that is wrong but never quote the whole URL: it
 * may hold a password. */
int redis_url_parse(const char *s, struct redis_url *out, char *msg, size_t len)
{
	memset(out, 0, sizeof *out);
	out->port = REDIS_URL_DEFAULT_PORT;
	if (parse(s, out, msg, len) == 0)
		return 0;
	redis_url_clear(out);
	return -1;
}

void redis_url_clear(struct redis_url *u)
{
	free(u->path);
	free(u->host);
	free(u->user);
	free(u->pass);
	memset(u, 0, sizeof *u);
}
