/* request_url: one request's URL into the fields that say where it goes —
 * scheme, host (IPv6 canonical, ambiguous IPv4 refused), port, target,
 * Host header, upstream key — and the ACL check on the host.  URLs through
 * evhttp_uri_parse, addresses by netaddr.c.  Part of the request module
 * (request_internal.h). */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <event2/http.h>

#include "acl.h"
#include "netaddr.h"
#include "request.h"
#include "request_internal.h"
#include "units.h"
#include "xalloc.h"

static char *lower_dup(const char *s)
{
	char *d = xstrdup(s);
	char *p;

	for (p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* allow_hosts and, for IP literals, deny_networks: refused before
 * anything is sent (names are checked again once resolved). */
static int check_acl(const struct request_item *it, const struct request_limits *lim,
                     const char *path, char *err, size_t errlen)
{
	if (lim->acl == NULL)
		return 0;
	if (!acl_host_allowed(lim->acl, it->host))
		return request_fail(err, errlen, "%s: host \"%s\" is not in allow_hosts", path,
		                    it->host);
	if (acl_literal_denied(lim->acl, it->host))
		return request_fail(err, errlen, "%s: address %s is in deny_networks", path,
		                    it->host);
	return 0;
}

/* parts[0..n) one after another in one malloc'd string: the URL-derived
 * fields of every item are made this way, without printf. */
static char *join(const char *const *parts, size_t n)
{
	size_t i, len = 0, k;
	char *s, *p;

	for (i = 0; i < n; i++)
		len += strlen(parts[i]);
	s = p = xmalloc(len + 1);
	for (i = 0; i < n; i++) {
		k = strlen(parts[i]);
		memcpy(p, parts[i], k);
		p += k;
	}
	*p = '\0';
	return s;
}

/* The upstream key (units_upstream_key), malloc'd: a URL's host may be
 * longer than a config section's. */
static char *upstream_key(bool tls, const char *host, int port)
{
	size_t n = units_upstream_key(NULL, 0, tls, host, port);
	char *key = xmalloc(n + 1);

	units_upstream_key(key, n + 1, tls, host, port);
	return key;
}

int request_url_parse(struct request_item *it, const char *url, const char *path,
                      const struct request_limits *lim, char *err, size_t errlen)
{
	struct evhttp_uri *u;
	const char *scheme, *host, *p, *q;
	bool v6;
	int port, rc = -1;
	char digits[UNITS_UINT_MAX + 1];

	if (strlen(url) > 8192)
		return request_fail(err, errlen, "%s: URL longer than 8192 bytes", path);
	u = evhttp_uri_parse(url);
	if (u == NULL)
		return request_fail(err, errlen, "%s: cannot parse URL \"%s\"", path, url);
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	if (scheme == NULL) {
		request_fail(err, errlen, "%s: not an absolute URL \"%s\" (want http:// or https://)",
		             path, url);
		goto out;
	}
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
		request_fail(err, errlen, "%s: unsupported scheme \"%s\"", path, scheme);
		goto out;
	}
	if (host == NULL || host[0] == '\0' || strcmp(host, "[]") == 0) {
		request_fail(err, errlen, "%s: URL has no host \"%s\"", path, url);
		goto out;
	}
	if (evhttp_uri_get_userinfo(u) != NULL) {
		request_fail(err, errlen, "%s: credentials in the URL are not supported; "
		             "send an Authorization header", path);
		goto out;
	}
	it->tls = strcasecmp(scheme, "https") == 0;
	port = evhttp_uri_get_port(u);
	if (port == 0) {
		request_fail(err, errlen, "%s: port 0 in \"%s\"", path, url);
		goto out;
	}
	if (port < 0)
		port = it->tls ? 443 : 80;
	it->port = port;

	/* evhttp keeps the brackets of an IPv6 literal; store the bare address
	 * and put the brackets back where the syntax needs them. */
	v6 = host[0] == '[';
	if (v6) {
		/* an IPv6 address (not an IPvFuture "[v1.x]"), in the canonical
		 * form config sections get, so one upstream has one key */
		char canon[INET6_ADDRSTRLEN];

		if (!netaddr_canonical_ipv6(host + 1, strlen(host) - 2, canon, sizeof canon)) {
			request_fail(err, errlen, "%s: bad IPv6 address in \"%s\"", path, url);
			goto out;
		}
		it->host = xstrdup(canon);
	} else if (netaddr_ambiguous_ipv4(host)) {
		/* fanoutd would connect where the client did not mean */
		request_fail(err, errlen, "%s: ambiguous IPv4 address \"%s\": write four decimal "
		             "numbers 0-255 without leading zeros", path, host);
		goto out;
	} else {
		it->host = lower_dup(host);
	}
	it->upstream_key = upstream_key(it->tls, it->host, port);
	*units_format_uint(digits, (uintmax_t)port) = '\0';
	{
		/* the port only when it is not the scheme's */
		bool dflt = port == (it->tls ? 443 : 80);
		const char *host_parts[] = {
			v6 ? "[" : "", it->host, v6 ? "]" : "", dflt ? "" : ":", dflt ? "" : digits,
		};

		it->host_header = join(host_parts, sizeof host_parts / sizeof host_parts[0]);
	}
	p = evhttp_uri_get_path(u);
	q = evhttp_uri_get_query(u);
	{
		const char *target_parts[] = { (p && *p) ? p : "/", q ? "?" : "", q ? q : "" };

		it->target = join(target_parts, 3);
	}
	rc = check_acl(it, lim, path, err, errlen);
out:
	evhttp_uri_free(u);
	return rc;
}
