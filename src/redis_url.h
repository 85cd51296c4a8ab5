/* redis_url: the address of the [redis] section, read once — checked with
 * a precise message for the config file and split into the parts the
 * Redis client (shared.c) connects with.  The one parser of this notion.
 * No state; the parts are owned by the struct redis_url filled in. */
#ifndef FANOUTD_REDIS_URL_H
#define FANOUTD_REDIS_URL_H

#include <stddef.h>

#define REDIS_URL_DEFAULT_PORT 6379
#define REDIS_URL_MAX_DB 1000000

/* Exactly one of path and host is set. */
struct redis_url {
	char *path;          /* unix:PATH: the socket's absolute path */
	char *host;          /* redis://: a name, an IPv4 address or an IPv6 one
	                        canonical and without brackets (as hiredis wants) */
	int port;            /* 1..65535, REDIS_URL_DEFAULT_PORT when not given */
	int db;              /* 0..REDIS_URL_MAX_DB, 0 when not given */
	char *user, *pass;   /* %XX-decoded; NULL when not given */
};

/* S is redis://[[user:]password@]host[:port][/db] (scheme in any case; a
 * host name, an IPv4 address or an [IPv6] one; user and password RFC 3986
 * userinfo, %XX-encoded) or unix:/absolute/path.  0: *OUT holds the parts
 * (redis_url_clear them).  -1: *OUT is empty and MSG says why, starting
 * with "url: " and never quoting the whole URL (it may hold a password). */
int redis_url_parse(const char *s, struct redis_url *out, char *msg, size_t len)
	__attribute__((warn_unused_result));

/* Frees the parts and empties *U (an empty one is fine). */
void redis_url_clear(struct redis_url *u);

#endif
