/* request: batch request parsing and validation.  JSON through jansson,
 * URLs in request_url.c, headers in request_headers.c, the names a
 * "retry" object retries on by retry.c.  Every error message starts with
 * the path of the offending element ("[3]", "requests[3].headers.Accept")
 * so a client with 10,000 URLs can find the bad one. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonscan.h"
#include "request.h"
#include "request_internal.h"
#include "retry.h"
#include "units.h"
#include "xalloc.h"

#define MAX_TIMEOUT_MS (24L * 3600 * 1000)
#define MAX_CONCURRENCY 100000
#define MIN_PROGRESS_MS 10
#define MAX_PROGRESS_MS (3600L * 1000)
/* A "retry" object's bounds.  attempts is clamped later to 1 +
 * max_retries (the config's ceiling); this only refuses the absurd. */
#define MAX_RETRY_ATTEMPTS 1000
#define MAX_RETRY_BACKOFF_MS (3600L * 1000)
#define RETRY_ON_WANT "\"connect\", \"timeout\" or a status 400..599"
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

const char *request_method_name(enum request_method m)
{
	return method_names[m];
}

int request_fail(char *err, size_t errlen, const char *fmt, ...)
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

/* The list h, whose first nowned entries own their strings. */
static void free_headers(struct request_header *h, size_t nowned)
{
	size_t i;

	for (i = 0; i < nowned; i++) {
		free((char *)h[i].name);
		free((char *)h[i].value);
	}
	free(h);
}

static void free_item(struct request_item *it)
{
	free(it->url);
	free(it->id_json);
	free(it->host);
	free(it->target);
	free(it->upstream_key);
	free(it->host_header);
	free_headers(it->headers, it->nheaders_owned);
	free(it->body);
	free(it->retry);
	memset(it, 0, sizeof *it);
}

void request_item_free(struct request_item *it)
{
	free_item(it);
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void request_item_copy(struct request_item *dst, const struct request_item *src)
{
	size_t i;

	memset(dst, 0, sizeof *dst);
	dst->url = xstrdup(src->url);
	dst->method = src->method;
	dst->tls = src->tls;
	dst->host = xstrdup(src->host);
	dst->port = src->port;
	dst->target = xstrdup(src->target);
	dst->upstream_key = xstrdup(src->upstream_key);
	dst->host_header = dup_or_null(src->host_header);
	dst->headers = xcalloc(src->nheaders ? src->nheaders : 1, sizeof *dst->headers);
	for (i = 0; i < src->nheaders; i++) {
		dst->headers[i].name = xstrdup(src->headers[i].name);
		dst->headers[i].value = xstrdup(src->headers[i].value);
	}
	dst->nheaders = dst->nheaders_owned = src->nheaders;
	if (src->body != NULL) {
		dst->body = xmalloc(src->body_len ? src->body_len : 1);
		memcpy(dst->body, src->body, src->body_len);
	}
	dst->body_len = src->body_len;
	dst->timeout_ms = -1;
	dst->decompress = src->decompress;
	dst->collapse = src->collapse;
}

void request_free(struct batch_request *br)
{
	size_t i;

	/* items first: they borrow the batch headers */
	for (i = 0; i < br->n; i++)
		free_item(&br->items[i]);
	free(br->items);
	free_headers(br->batch_headers, br->nbatch_headers);
	free(br->retry);
	memset(br, 0, sizeof *br);
}

/* --- fields ------------------------------------------------------------- */

static int get_long(const json_t *v, const char *path, long min, long max, long *out,
                    char *err, size_t errlen)
{
	json_int_t n;

	if (!json_is_integer(v))
		return request_fail(err, errlen, "%s: must be an integer", path);
	n = json_integer_value(v);
	if (n < min || n > max)
		return request_fail(err, errlen, "%s: %lld out of range %ld..%ld", path,
		                    (long long)n, min, max);
	*out = (long)n;
	return 0;
}

static int get_bool(const json_t *v, const char *path, bool *out, char *err, size_t errlen)
{
	if (!json_is_boolean(v))
		return request_fail(err, errlen, "%s: must be true or false", path);
	*out = json_is_true(v);
	return 0;
}

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

/* --- retry -------------------------------------------------------------- */

/* obj's integer field key, when given, into *out; messages start with
 * path.key. */
static int get_field_long(const json_t *obj, const char *key, const char *path, long min,
                          long max, long *out, char *err, size_t errlen)
{
	const json_t *v = json_object_get(obj, key);
	char sub[128];

	if (v == NULL)
		return 0;
	snprintf(sub, sizeof sub, "%s.%s", path, key);
	return get_long(v, sub, min, max, out, err, errlen);
}

/* v, the i-th element of the array at path ("requests[3].retry.on"),
 * into on: a name ("connect", "timeout", "503") or a status 400..599. */
static int parse_retry_on_element(struct retry_on *on, const json_t *v, const char *path,
                                  size_t i, char *err, size_t errlen)
{
	const char *name = plain_string(v);
	json_int_t status;

	if (json_is_integer(v)) {
		status = json_integer_value(v);
		if (status >= RETRY_STATUS_MIN && status <= RETRY_STATUS_MAX) {
			retry_on_add_status(on, (int)status);
			return 0;
		}
		return request_fail(err, errlen, "%s[%zu]: %lld is not " RETRY_ON_WANT, path, i,
		                    (long long)status);
	}
	if (name == NULL)
		return request_fail(err, errlen, "%s[%zu]: must be " RETRY_ON_WANT, path, i);
	/* at most 32 bytes of the name in the message, as the config's */
	if (!retry_on_add_name(on, name, strlen(name)))
		return request_fail(err, errlen, "%s[%zu]: \"%.32s\" is not " RETRY_ON_WANT, path, i,
		                    name);
	return 0;
}

/* "on": the failures to retry, at least one. */
static int parse_retry_on(struct retry_policy *p, const json_t *arr, const char *path,
                          char *err, size_t errlen)
{
	char sub[128];
	json_t *v;
	size_t i;

	snprintf(sub, sizeof sub, "%s.on", path);
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return request_fail(err, errlen, "%s: must be a non-empty array such as "
		                    "[\"connect\", \"timeout\", 503]", sub);
	json_array_foreach(arr, i, v)
		if (parse_retry_on_element(&p->on, v, sub, i, err, errlen) < 0)
			return -1;
	p->on_set = true;
	return 0;
}

/* The "retry" object at path (a batch's or a request's) into a new
 * *out; fields it leaves out stay unset (retry.h), for the level above. */
static int parse_retry(struct retry_policy **out, const json_t *obj, const char *path,
                       char *err, size_t errlen)
{
	static const char *const known[] = { "attempts", "backoff_ms", "max_backoff_ms", "on" };
	struct retry_policy p;
	const char *key;
	const json_t *on;

	if (!json_is_object(obj))
		return request_fail(err, errlen, "%s: must be an object", path);
	key = unknown_key(obj, known, sizeof known / sizeof *known);
	if (key != NULL)
		return request_fail(err, errlen, "%s: unknown key \"%s\"", path, key);
	retry_policy_unset(&p);
	if (get_field_long(obj, "attempts", path, 1, MAX_RETRY_ATTEMPTS, &p.attempts,
	                   err, errlen) < 0 ||
	    get_field_long(obj, "backoff_ms", path, 0, MAX_RETRY_BACKOFF_MS, &p.backoff_ms,
	                   err, errlen) < 0 ||
	    get_field_long(obj, "max_backoff_ms", path, 0, MAX_RETRY_BACKOFF_MS,
	                   &p.max_backoff_ms, err, errlen) < 0)
		return -1;
	on = json_object_get(obj, "on");
	if (on != NULL && parse_retry_on(&p, on, path, err, errlen) < 0)
		return -1;
	*out = xmalloc(sizeof **out);
	**out = p;
	return 0;
}

/* --- one element -------------------------------------------------------- */

static int parse_method(struct request_item *it, const json_t *v, const char *path,
                        char *err, size_t errlen)
{
	const char *m = plain_string(v);
	size_t i;

	if (m == NULL)
		return request_fail(err, errlen, "%s.method: must be a string", path);
	for (i = 0; i < sizeof method_names / sizeof *method_names; i++) {
		if (strcasecmp(m, method_names[i]) == 0) {
			it->method = (enum request_method)i;
			return 0;
		}
	}
	return request_fail(err, errlen, "%s.method: unsupported method \"%s\" "
	                    "(GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)", path, m);
}

static int parse_body(struct request_item *it, const json_t *body, const json_t *js,
                      const struct parse_env *env, const char *path, char *err,
                      size_t errlen)
{
	if (body != NULL && js != NULL)
		return request_fail(err, errlen, "%s: give either body or json, not both", path);
	if (body != NULL) {
		if (!json_is_string(body))
			return request_fail(err, errlen, "%s.body: must be a string (use json for JSON)",
			                    path);
		it->body_len = json_string_length(body);
		it->body = xmalloc(it->body_len + 1);
		memcpy(it->body, json_string_value(body), it->body_len + 1);
		return 0;
	}
	if (js != NULL) {
		it->body = jsonscan_dump(js, env->scan, &it->body_len);
		if (!request_item_has_header(it, "Content-Type"))
			request_headers_add_borrowed(it, "Content-Type", "application/json");
	}
	return 0;
}

static int parse_id(struct request_item *it, const json_t *v, const struct parse_env *env,
                    const char *path, char *err, size_t errlen)
{
	size_t len;

	if (!json_is_string(v) && !json_is_number(v))
		return request_fail(err, errlen, "%s.id: must be a string or a number", path);
	it->id_json = jsonscan_dump(v, env->scan, &len);
	return 0;
}

static int parse_object_item(struct request_item *it, const json_t *obj, const char *path,
                             const struct batch_request *br, const struct parse_env *env,
                             char *err, size_t errlen)
{
	static const char *const known[] = {
		"url", "method", "headers", "body", "json", "timeout_ms", "id", "decompress",
		"retry", "collapse",
	};
	const char *key, *url;
	json_t *v, *headers;
	char sub[96];

	key = unknown_key(obj, known, sizeof known / sizeof *known);
	if (key != NULL)
		return request_fail(err, errlen, "%s: unknown key \"%s\"", path, key);
	snprintf(sub, sizeof sub, "%s.url", path);
	v = json_object_get(obj, "url");
	if (v == NULL)
		return request_fail(err, errlen, "%s: missing url", path);
	if ((url = plain_string(v)) == NULL)
		return request_fail(err, errlen, "%s: must be a string", sub);
	it->url = xstrdup(url);
	if (request_url_parse(it, url, sub, env->lim, err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "method");
	if (v != NULL && parse_method(it, v, path, err, errlen) < 0)
		return -1;
	headers = json_object_get(obj, "headers");
	snprintf(sub, sizeof sub, "%s.headers", path);
	if (headers != NULL && request_headers_check(headers, sub, err, errlen) < 0)
		return -1;
	request_headers_merge(it, headers, br);
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
	v = json_object_get(obj, "decompress");
	snprintf(sub, sizeof sub, "%s.decompress", path);
	if (v != NULL && get_bool(v, sub, &it->decompress, err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "collapse");
	snprintf(sub, sizeof sub, "%s.collapse", path);
	if (v != NULL && get_bool(v, sub, &it->collapse, err, errlen) < 0)
		return -1;
	/* only a request that gives its own: the batch's is not copied */
	v = json_object_get(obj, "retry");
	snprintf(sub, sizeof sub, "%s.retry", path);
	if (v != NULL && parse_retry(&it->retry, v, sub, err, errlen) < 0)
		return -1;
	return 0;
}

static int parse_item(struct request_item *it, const json_t *v, const char *path,
                      bool long_form, const struct batch_request *br,
                      const struct parse_env *env, char *err, size_t errlen)
{
	const char *url;

	it->method = REQUEST_METHOD_GET;
	it->timeout_ms = -1;
	it->decompress = br->decompress;
	it->collapse = true;
	if (long_form && json_is_object(v))
		return parse_object_item(it, v, path, br, env, err, errlen);
	url = plain_string(v);
	if (url == NULL)
		return request_fail(err, errlen, "%s: must be a URL string%s", path,
		                    long_form ? " or a request object" : "");
	it->url = xstrdup(url);
	if (request_url_parse(it, url, path, env->lim, err, errlen) < 0)
		return -1;
	request_headers_merge(it, NULL, br);
	return 0;
}

/* --- the whole batch ---------------------------------------------------- */

static int too_many(char *err, size_t errlen, bool long_form, size_t n,
                    const struct request_limits *lim)
{
	return request_fail(err, errlen, "%s: too many requests: %zu (%s is %zu)",
	                    long_form ? "requests" : "batch", n,
	                    lim->batch_size_key ? lim->batch_size_key : "max_batch_size",
	                    lim->max_batch_size);
}

/* "requests[3]": where an item is, for its error messages (no printf:
 * it runs for every item).  prefix is a short literal. */
static void item_path(char *buf, size_t len, const char *prefix, size_t i)
{
	char digits[UNITS_UINT_MAX];
	size_t k = strlen(prefix), d;

	d = (size_t)(units_format_uint(digits, i) - digits);
	if (k + d + 3 > len)
		abort();   /* 64 bytes hold "requests[" + 20 digits + "]" */
	memcpy(buf, prefix, k);
	buf[k] = '[';
	memcpy(buf + k + 1, digits, d);
	buf[k + 1 + d] = ']';
	buf[k + 2 + d] = '\0';
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
	br->items = xcalloc(n, sizeof *br->items);
	for (i = 0; i < n; i++) {
		/* count the item before parsing it so request_free() frees a half
		 * parsed one too */
		br->n = i + 1;
		item_path(path, sizeof path, prefix, i);
		if (parse_item(&br->items[i], json_array_get(arr, i), path, long_form,
		               br, env, err, errlen) < 0)
			return -1;
		header_bytes += request_headers_bytes(&br->items[i]);
		if (header_bytes > REQUEST_MAX_BATCH_HEADER_BYTES)
			return request_fail(err, errlen, "%s: the headers of the requests add up to more "
			                    "than %u MiB in memory", prefix[0] ? prefix : "batch",
			                    REQUEST_MAX_BATCH_HEADER_BYTES >> 20);
	}
	return 0;
}

static int parse_long_form(struct batch_request *br, const json_t *obj,
                           const struct parse_env *env, char *err, size_t errlen)
{
	static const char *const known[] = {
		"requests", "mode", "timeout_ms", "max_concurrency", "headers", "decompress",
		"retry", "progress_ms",
	};
	const char *key, *mode;
	json_t *v, *reqs, *headers;

	key = unknown_key(obj, known, sizeof known / sizeof *known);
	if (key != NULL)
		return request_fail(err, errlen, "unknown key \"%s\"", key);
	reqs = json_object_get(obj, "requests");
	if (reqs == NULL)
		return request_fail(err, errlen, "requests: missing "
		                    "(the list of URLs or request objects)");
	if (!json_is_array(reqs))
		return request_fail(err, errlen, "requests: must be an array");
	v = json_object_get(obj, "mode");
	if (v != NULL) {
		mode = plain_string(v);
		if (mode != NULL && strcmp(mode, "all") == 0)
			br->mode = BATCH_MODE_ALL;
		else if (mode != NULL && strcmp(mode, "settled") == 0)
			br->mode = BATCH_MODE_SETTLED;
		else
			return request_fail(err, errlen, "mode: must be \"all\" or \"settled\"");
	}
	v = json_object_get(obj, "timeout_ms");
	if (v != NULL && get_long(v, "timeout_ms", 1, MAX_TIMEOUT_MS, &br->timeout_ms,
	                          err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "max_concurrency");
	if (v != NULL && get_long(v, "max_concurrency", 1, MAX_CONCURRENCY,
	                          &br->max_concurrency, err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "decompress");
	if (v != NULL && get_bool(v, "decompress", &br->decompress, err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "progress_ms");
	if (v != NULL && get_long(v, "progress_ms", MIN_PROGRESS_MS, MAX_PROGRESS_MS,
	                          &br->progress_ms, err, errlen) < 0)
		return -1;
	v = json_object_get(obj, "retry");
	if (v != NULL && parse_retry(&br->retry, v, "retry", err, errlen) < 0)
		return -1;
	headers = json_object_get(obj, "headers");
	if (headers != NULL) {
		if (request_headers_check(headers, "headers", err, errlen) < 0)
			return -1;
		request_headers_keep_batch(br, headers);
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
		return request_fail(err, errlen, "JSON too complex: its %zu values would take more "
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
	return request_fail(err, errlen, "the batch must be a JSON array of URLs "
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
	out->decompress = true;
	out->progress_ms = -1;
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
		return request_fail(err, errlen, "invalid JSON at line %d, column %d: %s",
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
