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
#include <event2/http.h>

#include "acl.h"
#include "request.h"

#define MAX_TIMEOUT_MS (24L * 3600 * 1000)
/* Batch headers are copied into every request; these bound what a small
 * request body can make fanoutd hold (100 KB of headers x 10,000 URLs
 * would otherwise be 1 GB). */
#define MAX_HEADER_VALUE 8192
#define MAX_BATCH_HEADER_BYTES (32u << 20)
#define MAX_CONCURRENCY 100000

static const char *const method_names[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
};

/* Headers fanoutd writes itself: a client value would break the framing
 * of the upstream connection or its reuse. */
static const char *const reserved_headers[] = {
	"content-length", "transfer-encoding", "connection", "keep-alive",
	"upgrade", "te", "trailer", "proxy-connection",
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
	json_decref(it->id);
	free(it->host);
	free(it->target);
	free(it->upstream_key);
	free(it->host_header);
	for (i = 0; i < it->nheaders; i++) {
		free(it->headers[i].name);
		free(it->headers[i].value);
	}
	free(it->headers);
	free(it->body);
	memset(it, 0, sizeof *it);
}

void request_free(struct batch_request *br)
{
	size_t i;

	for (i = 0; i < br->n; i++)
		free_item(&br->items[i]);
	free(br->items);
	memset(br, 0, sizeof *br);
}

/* --- URL ---------------------------------------------------------------- */

static char *lower_dup(const char *s)
{
	char *d = strdup(s);
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
		bool ok = inet_pton(AF_INET6, bare, bin) == 1 &&
		          inet_ntop(AF_INET6, bin, canon, sizeof canon) != NULL;

		free(bare);
		if (!ok) {
			fail(err, errlen, "%s: bad IPv6 address in \"%s\"", path, url);
			goto out;
		}
		it->host = strdup(canon);
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

static void add_header(struct request_item *it, const char *name, const char *value)
{
	it->headers = realloc(it->headers, (it->nheaders + 1) * sizeof *it->headers);
	if (it->headers == NULL)
		abort();
	it->headers[it->nheaders].name = strdup(name);
	it->headers[it->nheaders].value = strdup(value);
	it->nheaders++;
}

/* Per-request headers first, then the batch's where not overridden. */
static void merge_headers(struct request_item *it, const json_t *own, const json_t *batch)
{
	const char *name;
	json_t *value;

	if (own != NULL)
		json_object_foreach((json_t *)own, name, value)
			add_header(it, name, json_string_value(value));
	if (batch != NULL)
		json_object_foreach((json_t *)batch, name, value)
			if (!request_item_has_header(it, name))
				add_header(it, name, json_string_value(value));
}

static size_t item_header_bytes(const struct request_item *it)
{
	size_t i, n = 0;

	for (i = 0; i < it->nheaders; i++)
		n += strlen(it->headers[i].name) + strlen(it->headers[i].value);
	return n;
}

/* --- the json body ------------------------------------------------------- */

/* jansson prints reals with %.17g, so 1.1 would reach the upstream as
 * 1.1000000000000001; print the shortest form that reads back the same. */
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

static void write_json(FILE *out, const json_t *v)
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
			write_json(out, elem);
		}
		fputc('}', out);
		return;
	case JSON_ARRAY:
		fputc('[', out);
		json_array_foreach(v, i, elem) {
			if (i > 0)
				fputc(',', out);
			write_json(out, elem);
		}
		fputc(']', out);
		return;
	case JSON_REAL:
		write_real(out, json_real_value(v));
		return;
	default:
		json_dumpf(v, out, JSON_ENCODE_ANY | JSON_COMPACT);
		return;
	}
}

static char *serialize_json(const json_t *v, size_t *len)
{
	char *buf = NULL;
	FILE *out = open_memstream(&buf, len);

	if (out == NULL)
		abort();
	write_json(out, v);
	fclose(out);
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
                      const char *path, char *err, size_t errlen)
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
		it->body = serialize_json(js, &it->body_len);
		if (!request_item_has_header(it, "Content-Type"))
			add_header(it, "Content-Type", "application/json");
	}
	return 0;
}

static int parse_object_item(struct request_item *it, const json_t *obj, const char *path,
                             const json_t *batch_headers, const struct request_limits *lim,
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
	it->url = strdup(url);
	if (parse_url(it, url, sub, lim, err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "method");
	if (v != NULL && parse_method(it, v, path, err, errlen) < 0)
		return -1;
	headers = json_object_get(obj, "headers");
	snprintf(sub, sizeof sub, "%s.headers", path);
	if (headers != NULL && check_headers(headers, sub, err, errlen) < 0)
		return -1;
	merge_headers(it, headers, batch_headers);
	if (parse_body(it, json_object_get(obj, "body"), json_object_get(obj, "json"),
	               path, err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "timeout_ms");
	snprintf(sub, sizeof sub, "%s.timeout_ms", path);
	if (v != NULL && get_long(v, sub, 1, MAX_TIMEOUT_MS, &it->timeout_ms, err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "id");
	if (v != NULL) {
		if (!json_is_string(v) && !json_is_number(v))
			return fail(err, errlen, "%s.id: must be a string or a number", path);
		it->id = json_incref(v);
	}
	return 0;
}

static int parse_item(struct request_item *it, const json_t *v, const char *path,
                      bool long_form, const json_t *batch_headers,
                      const struct request_limits *lim, char *err, size_t errlen)
{
	const char *url;

	it->method = METHOD_GET;
	it->timeout_ms = -1;
	if (long_form && json_is_object(v))
		return parse_object_item(it, v, path, batch_headers, lim, err, errlen);
	url = plain_string(v);
	if (url == NULL)
		return fail(err, errlen, "%s: must be a URL string%s", path,
		            long_form ? " or a request object" : "");
	it->url = strdup(url);
	if (parse_url(it, url, path, lim, err, errlen) < 0)
		return -1;
	merge_headers(it, NULL, batch_headers);
	return 0;
}

/* --- the whole batch ---------------------------------------------------- */

static int parse_items(struct batch_request *br, const json_t *arr, const char *prefix,
                       bool long_form, const json_t *batch_headers, const struct request_limits *lim,
                       char *err, size_t errlen)
{
	char path[64];
	size_t i, n = json_array_size(arr), header_bytes = 0;

	if (n > lim->max_batch_size)
		return fail(err, errlen, "%s: too many requests: %zu (max_batch_size is %zu)",
		            prefix[0] ? prefix : "batch", n, lim->max_batch_size);
	br->items = calloc(n ? n : 1, sizeof *br->items);
	if (br->items == NULL)
		abort();
	for (i = 0; i < n; i++) {
		/* count the item before parsing it so request_free() frees a half
		 * parsed one too */
		br->n = i + 1;
		snprintf(path, sizeof path, "%s[%zu]", prefix, i);
		if (parse_item(&br->items[i], json_array_get(arr, i), path, long_form,
		               batch_headers, lim, err, errlen) < 0)
			return -1;
		header_bytes += item_header_bytes(&br->items[i]);
		if (header_bytes > MAX_BATCH_HEADER_BYTES)
			return fail(err, errlen, "%s: the headers of the requests add up to more "
			            "than %u MiB (batch headers are sent with every request)",
			            prefix[0] ? prefix : "batch", MAX_BATCH_HEADER_BYTES >> 20);
	}
	return 0;
}

static int parse_long_form(struct batch_request *br, const json_t *obj,
                           const struct request_limits *lim, char *err, size_t errlen)
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
	if (headers != NULL && check_headers(headers, "headers", err, errlen) < 0)
		return -1;
	return parse_items(br, reqs, "requests", true, headers, lim, err, errlen);
}

int request_parse(const char *data, size_t len, const struct request_limits *lim,
                  struct batch_request *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	memset(out, 0, sizeof *out);
	out->mode = BATCH_MODE_ALL;
	out->timeout_ms = -1;
	out->max_concurrency = -1;
	root = json_loadb(data, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
	if (root == NULL)
		return fail(err, errlen, "invalid JSON at line %d, column %d: %s",
		            jerr.line, jerr.column, jerr.text);
	if (json_is_array(root))
		rc = parse_items(out, root, "", false, NULL, lim, err, errlen);
	else if (json_is_object(root))
		rc = parse_long_form(out, root, lim, err, errlen);
	else
		rc = fail(err, errlen, "the batch must be a JSON array of URLs "
		          "or an object with \"requests\"");
	json_decref(root);
	if (rc < 0)
		request_free(out);
	return rc;
}
