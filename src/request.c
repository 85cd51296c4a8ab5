/* request: batch request parsing and validation.  JSON through jansson,
 * URLs through evhttp_uri_parse.  Every error message starts with the
 * path of the offending element ("[3]", "requests[3].headers.Accept") so
 * a client with 10,000 URLs can find the bad one. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <event2/http.h>
#include <event2/util.h>

#include "acl.h"
#include "jsonscan.h"
#include "request.h"

#define MAX_TIMEOUT_MS (24L * 3600 * 1000)
#define MAX_HEADER_VALUE 8192
/* Per object of headers, as Apache's LimitRequestFields: merging the
 * batch's into each request compares every pair, so 100,000 headers
 * would cost 10^10 comparisons a request. */
#define MAX_HEADERS 100
/* What the header lists of a batch's requests may take: a request's own
 * headers are copies (their bytes plus HEADER_OVERHEAD for the heap
 * blocks, or 100,000 one-letter headers would pass for 200 KB), the
 * batch's are shared and cost a slot each. */
#define MAX_BATCH_HEADER_BYTES (16u << 20)
#define HEADER_OVERHEAD 80
#define MAX_CONCURRENCY 100000
/* What the JSON tree of a batch may cost, by jsonscan's estimate: a floor
 * for the bodies of a batch, or more when max_batch_size allows requests
 * enough to need it.  An 8 MB body of "[[],[],...]" would otherwise build
 * 370 MB of jansson nodes before anything looked at it. */
#define TREE_BUDGET_FLOOR ((size_t)32 << 20)
#define TREE_BUDGET_PER_REQUEST 512

/* What the parse of one batch needs besides the JSON it is on. */
struct parse_env {
	const struct request_limits *lim;
	const struct jsonscan *scan;   /* the client's text of each number */
};

static const char *const method_names[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
};

/* Headers fanoutd writes itself: a client value would break the framing
 * of the upstream connection or its reuse. */
static const char *const reserved_headers[] = {
	"content-length", "transfer-encoding", "connection", "keep-alive",
	"upgrade", "te", "trailer", "proxy-connection",
};

/* Headers asking for an exchange fanoutd does not hold: with Expect:
 * 100-continue the upstream waits for a body that waits for its interim
 * answer, until the request times out. */
static const char *const unsupported_headers[] = {
	"expect",
};

const char *request_method_name(enum request_method m)
{
	return method_names[m];
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A jansson string without embedded NUL (we load with JSON_ALLOW_NUL so
 * that such strings are reported by path instead of as "invalid JSON"). */
static const char *plain_string(const json_t *v)
{
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) != json_string_length(v))
		return NULL;
	return s;
}

static void free_item(struct request_item *it)
{
	size_t i;

	free(it->url);
	free(it->id_json);
	free(it->host);
	free(it->target);
	free(it->upstream_key);
	free(it->host_header);
	for (i = 0; i < it->nheaders_owned; i++) {
		free((char *)it->headers[i].name);
		free((char *)it->headers[i].value);
	}
	free(it->headers);
	free(it->body);
	memset(it, 0, sizeof *it);
}

void request_free(struct batch_request *br)
{
	size_t i;

	/* items first: they borrow the batch headers */
	for (i = 0; i < br->n; i++)
		free_item(&br->items[i]);
	free(br->items);
	for (i = 0; i < br->nbatch_headers; i++) {
		free((char *)br->batch_headers[i].name);
		free((char *)br->batch_headers[i].value);
	}
	free(br->batch_headers);
	memset(br, 0, sizeof *br);
}

/* --- URL ---------------------------------------------------------------- */

/* Out of memory: nothing sensible to do but stop. */
static char *dup_or_die(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		abort();
	return d;
}

static char *lower_dup(const char *s)
{
	char *d = dup_or_die(s);
	char *p;

	for (p = d; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static char *format_dup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *format_dup(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();   /* out of memory: nothing sensible to do */
	return s;
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

/* allow_hosts and, for IP literals, deny_networks: refused before
 * anything is sent (names are checked again once resolved). */
static int check_acl(const struct request_item *it, const struct request_limits *lim,
                     const char *path, char *err, size_t errlen)
{
	if (lim->acl == NULL)
		return 0;
	if (!acl_host_allowed(lim->acl, it->host))
		return fail(err, errlen, "%s: host \"%s\" is not in allow_hosts", path, it->host);
	if (acl_literal_denied(lim->acl, it->host))
		return fail(err, errlen, "%s: address %s is in deny_networks", path, it->host);
	return 0;
}

/* Fill the URL-derived fields of it from url. */
static int parse_url(struct request_item *it, const char *url, const char *path,
                     const struct request_limits *lim, char *err, size_t errlen)
{
	struct evhttp_uri *u;
	const char *scheme, *host, *p, *q;
	bool v6;
	int port, rc = -1;

	if (strlen(url) > 8192)
		return fail(err, errlen, "%s: URL longer than 8192 bytes", path);
	u = evhttp_uri_parse(url);
	if (u == NULL)
		return fail(err, errlen, "%s: cannot parse URL \"%s\"", path, url);
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	if (scheme == NULL) {
		fail(err, errlen, "%s: not an absolute URL \"%s\" (want http:// or https://)",
		     path, url);
		goto out;
	}
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
		fail(err, errlen, "%s: unsupported scheme \"%s\"", path, scheme);
		goto out;
	}
	if (host == NULL || host[0] == '\0' || strcmp(host, "[]") == 0) {
		fail(err, errlen, "%s: URL has no host \"%s\"", path, url);
		goto out;
	}
	if (evhttp_uri_get_userinfo(u) != NULL) {
		fail(err, errlen, "%s: credentials in the URL are not supported; "
		     "send an Authorization header", path);
		goto out;
	}
	it->tls = strcasecmp(scheme, "https") == 0;
	port = evhttp_uri_get_port(u);
	if (port == 0) {
		fail(err, errlen, "%s: port 0 in \"%s\"", path, url);
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
		char *bare = strndup(host + 1, strlen(host) - 2);
		char canon[INET6_ADDRSTRLEN];
		unsigned char bin[16];
		bool ok;

		if (bare == NULL)
			abort();
		ok = inet_pton(AF_INET6, bare, bin) == 1 &&
		     inet_ntop(AF_INET6, bin, canon, sizeof canon) != NULL;

		free(bare);
		if (!ok) {
			fail(err, errlen, "%s: bad IPv6 address in \"%s\"", path, url);
			goto out;
		}
		it->host = dup_or_die(canon);
	} else if (looks_ipv4(host) && !canonical_ipv4(host)) {
		/* fanoutd would connect where the client did not mean */
		fail(err, errlen, "%s: ambiguous IPv4 address \"%s\": write four decimal "
		     "numbers 0-255 without leading zeros", path, host);
		goto out;
	} else {
		it->host = lower_dup(host);
	}
	it->upstream_key = format_dup("%s://%s%s%s:%d", it->tls ? "https" : "http",
	                              v6 ? "[" : "", it->host, v6 ? "]" : "", port);
	if (port == (it->tls ? 443 : 80))
		it->host_header = format_dup("%s%s%s", v6 ? "[" : "", it->host, v6 ? "]" : "");
	else
		it->host_header = format_dup("%s%s%s:%d", v6 ? "[" : "", it->host,
		                             v6 ? "]" : "", port);
	p = evhttp_uri_get_path(u);
	q = evhttp_uri_get_query(u);
	it->target = format_dup("%s%s%s", (p && *p) ? p : "/", q ? "?" : "", q ? q : "");
	rc = check_acl(it, lim, path, err, errlen);
out:
	evhttp_uri_free(u);
	return rc;
}

/* --- headers ------------------------------------------------------------ */

static bool is_tchar(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int check_header(const char *path, const char *name, const json_t *value,
                        char *err, size_t errlen)
{
	const char *v, *p;
	size_t i;

	if (name[0] == '\0')
		return fail(err, errlen, "%s: empty header name", path);
	for (p = name; *p; p++)
		if (!is_tchar((unsigned char)*p))
			return fail(err, errlen, "%s.%s: invalid character in header name",
			            path, name);
	for (i = 0; i < sizeof reserved_headers / sizeof *reserved_headers; i++)
		if (strcasecmp(name, reserved_headers[i]) == 0)
			return fail(err, errlen, "%s.%s: header is set by fanoutd", path, name);
	for (i = 0; i < sizeof unsupported_headers / sizeof *unsupported_headers; i++)
		if (strcasecmp(name, unsupported_headers[i]) == 0)
			return fail(err, errlen, "%s.%s: header is not supported "
			            "(fanoutd sends the body at once)", path, name);
	if (!json_is_string(value))
		return fail(err, errlen, "%s.%s: header value must be a string", path, name);
	v = json_string_value(value);
	if (strlen(v) != json_string_length(value) || strpbrk(v, "\r\n") != NULL)
		return fail(err, errlen, "%s.%s: CR, LF or NUL in header value", path, name);
	if (strlen(v) > MAX_HEADER_VALUE)
		return fail(err, errlen, "%s.%s: header value longer than %d bytes", path, name,
		            MAX_HEADER_VALUE);
	return 0;
}

static int check_headers(const json_t *obj, const char *path, char *err, size_t errlen)
{
	const char *name;
	json_t *value;

	if (!json_is_object(obj))
		return fail(err, errlen, "%s: must be an object of strings", path);
	if (json_object_size(obj) > MAX_HEADERS)
		return fail(err, errlen, "%s: more than %d headers", path, MAX_HEADERS);
	json_object_foreach((json_t *)obj, name, value)
		if (check_header(path, name, value, err, errlen) < 0)
			return -1;
	return 0;
}

bool request_item_has_header(const struct request_item *it, const char *name)
{
	size_t i;

	for (i = 0; i < it->nheaders; i++)
		if (strcasecmp(it->headers[i].name, name) == 0)
			return true;
	return false;
}

/* Room for n more headers. */
static void reserve_headers(struct request_item *it, size_t n)
{
	it->headers = realloc(it->headers, (it->nheaders + n) * sizeof *it->headers);
	if (it->headers == NULL)
		abort();
}

/* A copy of the request's own header; the owned ones come first. */
static void add_own_header(struct request_item *it, const char *name, const char *value)
{
	if (it->nheaders != it->nheaders_owned)
		abort();   /* a bug: borrowed ones are already in the list */
	reserve_headers(it, 1);
	it->headers[it->nheaders].name = dup_or_die(name);
	it->headers[it->nheaders].value = dup_or_die(value);
	it->nheaders++;
	it->nheaders_owned++;
}

/* A header whose strings live as long as the batch (or forever). */
static void add_borrowed_header(struct request_item *it, const char *name, const char *value)
{
	reserve_headers(it, 1);
	it->headers[it->nheaders].name = name;
	it->headers[it->nheaders].value = value;
	it->nheaders++;
}

/* Per-request headers first, then the batch's where not overridden. */
static void merge_headers(struct request_item *it, const json_t *own,
                          const struct batch_request *br)
{
	const char *name;
	json_t *value;
	size_t i;

	if (own != NULL)
		json_object_foreach((json_t *)own, name, value)
			add_own_header(it, name, json_string_value(value));
	for (i = 0; i < br->nbatch_headers; i++)
		if (!request_item_has_header(it, br->batch_headers[i].name))
			add_borrowed_header(it, br->batch_headers[i].name,
			                    br->batch_headers[i].value);
}

/* The batch's headers, copied once for all its requests. */
static void keep_batch_headers(struct batch_request *br, const json_t *obj)
{
	const char *name;
	json_t *value;
	size_t i = 0;

	/* + 1: calloc(0) may return NULL */
	br->batch_headers = calloc(json_object_size(obj) + 1, sizeof *br->batch_headers);
	if (br->batch_headers == NULL)
		abort();
	json_object_foreach((json_t *)obj, name, value) {
		br->batch_headers[i].name = dup_or_die(name);
		br->batch_headers[i].value = dup_or_die(json_string_value(value));
		br->nbatch_headers = ++i;
	}
}

/* The memory the item's headers take, roughly: a borrowed one only its
 * slot in the list. */
static size_t item_header_bytes(const struct request_item *it)
{
	size_t i, n = it->nheaders * sizeof *it->headers;

	for (i = 0; i < it->nheaders_owned; i++)
		n += strlen(it->headers[i].name) + strlen(it->headers[i].value) +
		     HEADER_OVERHEAD;
	return n;
}

/* --- the json body and the id ------------------------------------------- */

/* jansson prints reals with %.17g, so 1.1 would reach the upstream as
 * 1.1000000000000001; print the shortest form that reads back the same.
 * Only when the client's own text is not known (see write_number). */
static void write_real(FILE *out, double d)
{
	char buf[40];
	int prec;

	for (prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	/* keep it a real: "2" would read back as an integer */
	fprintf(out, "%s%s", buf, strpbrk(buf, ".eEn") ? "" : ".0");
}

/* A number as the client spelled it: 0.1 stays 0.1 and 1e3 stays 1e3
 * (jansson would print 0.10000000000000001 and 1000.0). */
static void write_number(FILE *out, const json_t *v, const struct jsonscan *scan)
{
	size_t len;
	const char *text = jsonscan_number_text(scan, v, &len);

	if (text != NULL)
		fwrite(text, 1, len, out);
	else if (json_is_real(v))
		write_real(out, json_real_value(v));
	else
		fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
}

static void write_json(FILE *out, const json_t *v, const struct jsonscan *scan)
{
	const char *key;
	json_t *elem;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		fputc('{', out);
		i = 0;
		json_object_foreach((json_t *)v, key, elem) {
			json_t *k = json_string(key);

			if (i++ > 0)
				fputc(',', out);
			json_dumpf(k, out, JSON_ENCODE_ANY);
			json_decref(k);
			fputc(':', out);
			write_json(out, elem, scan);
		}
		fputc('}', out);
		return;
	case JSON_ARRAY:
		fputc('[', out);
		json_array_foreach(v, i, elem) {
			if (i > 0)
				fputc(',', out);
			write_json(out, elem, scan);
		}
		fputc(']', out);
		return;
	case JSON_REAL:
	case JSON_INTEGER:
		write_number(out, v, scan);
		return;
	default:
		json_dumpf(v, out, JSON_ENCODE_ANY | JSON_COMPACT);
		return;
	}
}

/* Compact JSON text of v (malloc'd, NUL-terminated; *len without the NUL). */
static char *serialize_json(const json_t *v, const struct jsonscan *scan, size_t *len)
{
	char *buf = NULL;
	FILE *out = open_memstream(&buf, len);

	if (out == NULL)
		abort();
	write_json(out, v, scan);
	if (fclose(out) != 0 || buf == NULL)
		abort();   /* open_memstream only fails for want of memory */
	return buf;
}

/* --- numbers ------------------------------------------------------------ */

static int get_long(const json_t *v, const char *path, long min, long max, long *out,
                    char *err, size_t errlen)
{
	json_int_t n;

	if (!json_is_integer(v))
		return fail(err, errlen, "%s: must be an integer", path);
	n = json_integer_value(v);
	if (n < min || n > max)
		return fail(err, errlen, "%s: %lld out of range %ld..%ld", path,
		            (long long)n, min, max);
	*out = (long)n;
	return 0;
}

/* --- one element -------------------------------------------------------- */

/* The first key of obj that is not in known[n], or NULL. */
static const char *unknown_key(const json_t *obj, const char *const *known, size_t n)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach((json_t *)obj, key, v) {
		for (i = 0; i < n && strcmp(key, known[i]) != 0; i++)
			;
		if (i == n)
			return key;
	}
	return NULL;
}

static int parse_method(struct request_item *it, const json_t *v, const char *path,
                        char *err, size_t errlen)
{
	const char *m = plain_string(v);
	size_t i;

	if (m == NULL)
		return fail(err, errlen, "%s.method: must be a string", path);
	for (i = 0; i < sizeof method_names / sizeof *method_names; i++) {
		if (strcasecmp(m, method_names[i]) == 0) {
			it->method = (enum request_method)i;
			return 0;
		}
	}
	return fail(err, errlen, "%s.method: unsupported method \"%s\" "
	            "(GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)", path, m);
}

static int parse_body(struct request_item *it, const json_t *body, const json_t *js,
                      const struct parse_env *env, const char *path, char *err,
                      size_t errlen)
{
	if (body != NULL && js != NULL)
		return fail(err, errlen, "%s: give either body or json, not both", path);
	if (body != NULL) {
		if (!json_is_string(body))
			return fail(err, errlen, "%s.body: must be a string (use json for JSON)",
			            path);
		it->body_len = json_string_length(body);
		it->body = malloc(it->body_len + 1);
		if (it->body == NULL)
			abort();
		memcpy(it->body, json_string_value(body), it->body_len + 1);
		return 0;
	}
	if (js != NULL) {
		it->body = serialize_json(js, env->scan, &it->body_len);
		if (!request_item_has_header(it, "Content-Type"))
			add_borrowed_header(it, "Content-Type", "application/json");
	}
	return 0;
}

static int parse_id(struct request_item *it, const json_t *v, const struct parse_env *env,
                    const char *path, char *err, size_t errlen)
{
	size_t len;

	if (!json_is_string(v) && !json_is_number(v))
		return fail(err, errlen, "%s.id: must be a string or a number", path);
	it->id_json = serialize_json(v, env->scan, &len);
	return 0;
}

static int parse_object_item(struct request_item *it, const json_t *obj, const char *path,
                             const struct batch_request *br, const struct parse_env *env,
                             char *err, size_t errlen)
{
	static const char *const known[] = {
		"url", "method", "headers", "body", "json", "timeout_ms", "id",
	};
	const char *key, *url;
	json_t *v, *headers;
	char sub[96];

	key = unknown_key(obj, known, sizeof known / sizeof *known);
	if (key != NULL)
		return fail(err, errlen, "%s: unknown key \"%s\"", path, key);
	snprintf(sub, sizeof sub, "%s.url", path);
	v = json_object_get(obj, "url");
	if (v == NULL)
		return fail(err, errlen, "%s: missing url", path);
	if ((url = plain_string(v)) == NULL)
		return fail(err, errlen, "%s: must be a string", sub);
	it->url = dup_or_die(url);
	if (parse_url(it, url, sub, env->lim, err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "method");
	if (v != NULL && parse_method(it, v, path, err, errlen) < 0)
		return -1;
	headers = json_object_get(obj, "headers");
	snprintf(sub, sizeof sub, "%s.headers", path);
	if (headers != NULL && check_headers(headers, sub, err, errlen) < 0)
		return -1;
	merge_headers(it, headers, br);
	if (parse_body(it, json_object_get(obj, "body"), json_object_get(obj, "json"),
	               env, path, err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "timeout_ms");
	snprintf(sub, sizeof sub, "%s.timeout_ms", path);
	if (v != NULL && get_long(v, sub, 1, MAX_TIMEOUT_MS, &it->timeout_ms, err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "id");
	if (v != NULL && parse_id(it, v, env, path, err, errlen) < 0)
		return -1;
	return 0;
}

static int parse_item(struct request_item *it, const json_t *v, const char *path,
                      bool long_form, const struct batch_request *br,
                      const struct parse_env *env, char *err, size_t errlen)
{
	const char *url;

	it->method = METHOD_GET;
	it->timeout_ms = -1;
	if (long_form && json_is_object(v))
		return parse_object_item(it, v, path, br, env, err, errlen);
	url = plain_string(v);
	if (url == NULL)
		return fail(err, errlen, "%s: must be a URL string%s", path,
		            long_form ? " or a request object" : "");
	it->url = dup_or_die(url);
	if (parse_url(it, url, path, env->lim, err, errlen) < 0)
		return -1;
	merge_headers(it, NULL, br);
	return 0;
}

/* --- the whole batch ---------------------------------------------------- */

static int too_many(char *err, size_t errlen, bool long_form, size_t n,
                    const struct request_limits *lim)
{
	return fail(err, errlen, "%s: too many requests: %zu (max_batch_size is %zu)",
	            long_form ? "requests" : "batch", n, lim->max_batch_size);
}

/* The items of arr into br (its batch headers already kept). */
static int parse_items(struct batch_request *br, const json_t *arr, const char *prefix,
                       bool long_form, const struct parse_env *env, char *err,
                       size_t errlen)
{
	char path[64];
	size_t i, n = json_array_size(arr), header_bytes = 0;

	/* jsonscan counted already; this holds should the two ever differ */
	if (n > env->lim->max_batch_size)
		return too_many(err, errlen, long_form, n, env->lim);
	br->items = calloc(n ? n : 1, sizeof *br->items);
	if (br->items == NULL)
		abort();
	for (i = 0; i < n; i++) {
		/* count the item before parsing it so request_free() frees a half
		 * parsed one too */
		br->n = i + 1;
		snprintf(path, sizeof path, "%s[%zu]", prefix, i);
		if (parse_item(&br->items[i], json_array_get(arr, i), path, long_form,
		               br, env, err, errlen) < 0)
			return -1;
		header_bytes += item_header_bytes(&br->items[i]);
		if (header_bytes > MAX_BATCH_HEADER_BYTES)
			return fail(err, errlen, "%s: the headers of the requests add up to more "
			            "than %u MiB in memory", prefix[0] ? prefix : "batch",
			            MAX_BATCH_HEADER_BYTES >> 20);
	}
	return 0;
}

static int parse_long_form(struct batch_request *br, const json_t *obj,
                           const struct parse_env *env, char *err, size_t errlen)
{
	static const char *const known[] = {
		"requests", "mode", "timeout_ms", "max_concurrency", "headers",
	};
	const char *key, *mode;
	json_t *v, *reqs, *headers;

	key = unknown_key(obj, known, sizeof known / sizeof *known);
	if (key != NULL)
		return fail(err, errlen, "unknown key \"%s\"", key);
	reqs = json_object_get(obj, "requests");
	if (reqs == NULL)
		return fail(err, errlen, "requests: missing (the list of URLs or request objects)");
	if (!json_is_array(reqs))
		return fail(err, errlen, "requests: must be an array");
	v = json_object_get(obj, "mode");
	if (v != NULL) {
		mode = plain_string(v);
		if (mode != NULL && strcmp(mode, "all") == 0)
			br->mode = BATCH_MODE_ALL;
		else if (mode != NULL && strcmp(mode, "settled") == 0)
			br->mode = BATCH_MODE_SETTLED;
		else
			return fail(err, errlen, "mode: must be \"all\" or \"settled\"");
	}
	v = json_object_get(obj, "timeout_ms");
	if (v != NULL && get_long(v, "timeout_ms", 1, MAX_TIMEOUT_MS, &br->timeout_ms,
	                          err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "max_concurrency");
	if (v != NULL && get_long(v, "max_concurrency", 1, MAX_CONCURRENCY,
	                          &br->max_concurrency, err, errlen) < 0)
		return -1;
	headers = json_object_get(obj, "headers");
	if (headers != NULL) {
		if (check_headers(headers, "headers", err, errlen) < 0)
			return -1;
		keep_batch_headers(br, headers);
	}
	return parse_items(br, reqs, "requests", true, env, err, errlen);
}

static size_t tree_budget(const struct request_limits *lim)
{
	size_t per_request = lim->max_batch_size * TREE_BUDGET_PER_REQUEST;

	return per_request > TREE_BUDGET_FLOOR ? per_request : TREE_BUDGET_FLOOR;
}

/* Before jansson builds anything: the batch's length and the cost of its
 * tree, from one pass over the bytes. */
static int check_scan(const struct jsonscan *scan, const struct request_limits *lim,
                      char *err, size_t errlen)
{
	size_t budget = tree_budget(lim);

	/* when too deep, the length is only partly counted and jansson stops
	 * at the depth anyway with its own message */
	if (scan->batch_found && !scan->too_deep && scan->batch_len > lim->max_batch_size)
		return too_many(err, errlen, scan->root == '{', scan->batch_len, lim);
	if (scan->cost > budget)
		return fail(err, errlen, "JSON too complex: its %zu values would take more "
		            "than %zu MiB of memory once parsed", scan->values, budget >> 20);
	return 0;
}

static int parse_root(struct batch_request *out, const json_t *root,
                      const struct parse_env *env, char *err, size_t errlen)
{
	if (json_is_array(root))
		return parse_items(out, root, "", false, env, err, errlen);
	if (json_is_object(root))
		return parse_long_form(out, root, env, err, errlen);
	return fail(err, errlen, "the batch must be a JSON array of URLs "
	            "or an object with \"requests\"");
}

int request_parse(const char *data, size_t len, const struct request_limits *lim,
                  struct batch_request *out, char *err, size_t errlen)
{
	struct jsonscan scan;
	struct parse_env env = { .lim = lim, .scan = &scan };
	json_error_t jerr;
	json_t *root;
	int rc;

	memset(out, 0, sizeof *out);
	out->mode = BATCH_MODE_ALL;
	out->timeout_ms = -1;
	out->max_concurrency = -1;
	jsonscan_run(&scan, data, len, tree_budget(lim));
	if (check_scan(&scan, lim, err, errlen) < 0) {
		jsonscan_free(&scan);
		return -1;
	}
	/* a duplicate key would leave a number token without its node, and
	 * the client and fanoutd might disagree on which value counts */
	root = json_loadb(data, len, JSON_ALLOW_NUL | JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	                  &jerr);
	if (root == NULL) {
		jsonscan_free(&scan);
		return fail(err, errlen, "invalid JSON at line %d, column %d: %s",
		            jerr.line, jerr.column, jerr.text);
	}
	jsonscan_pair(&scan, root);
	rc = parse_root(out, root, &env, err, errlen);
	json_decref(root);
	jsonscan_free(&scan);
	if (rc < 0)
		request_free(out);
	return rc;
}
