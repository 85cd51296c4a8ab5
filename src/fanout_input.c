/* fanout_input: building the batch the `fanout` client sends.  Lines
 * become URL strings; a JSON file is taken as it is (short form wrapped in
 * {"requests": …}); the options are laid over it last, so the command line
 * wins over the file's batch-wide keys but not over a request's own
 * method or timeout. */
#include "fanout_input.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

json_t *fanout_input_new(void)
{
	return json_pack("{s:[]}", "requests");
}

static json_t *requests_of(const json_t *batch)
{
	return json_object_get(batch, "requests");
}

int fanout_input_add_url(json_t *batch, const char *url)
{
	json_t *s = json_string(url);

	if (s == NULL)
		return -1;
	return json_array_append_new(requests_of(batch), s);
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One line (no newline) of len bytes: trimmed, skipped if blank or a
 * comment, else appended. */
static int add_line(json_t *batch, const char *p, size_t len, size_t lineno, char *err,
                    size_t errlen)
{
	json_t *s;

	while (len > 0 && blank(*p))
		p++, len--;
	while (len > 0 && blank(p[len - 1]))
		len--;
	if (len == 0 || *p == '#')
		return 0;
	if (memchr(p, '\0', len) != NULL)
		return fail(err, errlen, "line %zu: a NUL byte", lineno);
	s = json_stringn(p, len);
	if (s == NULL)
		return fail(err, errlen, "line %zu: not UTF-8", lineno);
	if (json_array_append_new(requests_of(batch), s) != 0)
		return fail(err, errlen, "out of memory");
	return 0;
}

int fanout_input_add_lines(json_t *batch, const char *text, size_t len, char *err,
                           size_t errlen)
{
	const char *p = text, *end = text + len, *nl;
	size_t lineno = 0;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (add_line(batch, p, (size_t)(nl - p), ++lineno, err, errlen) != 0)
			return -1;
		p = nl + 1;
	}
	return 0;
}

json_t *fanout_input_parse_file(const char *text, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *v, *batch;
	size_t i = 0;

	while (i < len && (blank(text[i]) || text[i] == '\n'))
		i++;
	if (i == len || (text[i] != '[' && text[i] != '{')) {
		batch = fanout_input_new();
		if (batch == NULL || fanout_input_add_lines(batch, text, len, err, errlen) != 0) {
			json_decref(batch);
			return NULL;
		}
		return batch;
	}
	v = json_loadb(text, len, 0, &je);
	if (v == NULL) {
		fail(err, errlen, "line %d, column %d: %s", je.line, je.column, je.text);
		return NULL;
	}
	if (json_is_array(v)) {
		batch = json_pack("{s:o}", "requests", v);
		return batch;
	}
	if (!json_is_array(requests_of(v))) {
		fail(err, errlen, "a JSON batch is a list of requests or an object with "
		     "\"requests\": [...]");
		json_decref(v);
		return NULL;
	}
	return v;
}

/* Sets key to value (a new reference) in request i, unless the request
 * sets it itself; a URL string becomes {"url": …} first. */
static int set_default(json_t *reqs, size_t i, const char *key, json_t *value)
{
	json_t *r = json_array_get(reqs, i), *obj;

	if (json_is_string(r)) {
		obj = json_pack("{s:O}", "url", r);
		if (obj == NULL || json_array_set_new(reqs, i, obj) != 0) {
			json_decref(value);
			return -1;
		}
		r = obj;
	}
	if (!json_is_object(r) || json_object_get(r, key) != NULL) {
		json_decref(value);
		return 0;
	}
	return json_object_set_new(r, key, value);
}

static int set_each(json_t *batch, const char *key, json_t *value)
{
	json_t *reqs = requests_of(batch);
	size_t i, n = json_array_size(reqs);
	int rc = 0;

	if (value == NULL)
		return -1;
	for (i = 0; i < n && rc == 0; i++)
		rc = set_default(reqs, i, key, json_incref(value));
	json_decref(value);
	return rc;
}

/* The -H headers over the batch's: a name the batch has in another case
 * is replaced, not doubled. */
static int merge_headers(json_t *batch, json_t *headers)
{
	json_t *mine = json_object_get(batch, "headers"), *v, *ov;
	const char *name, *old;
	void *tmp;

	if (!json_is_object(mine)) {
		mine = json_object();
		if (mine == NULL || json_object_set_new(batch, "headers", mine) != 0)
			return -1;
	}
	json_object_foreach(headers, name, v) {
		json_object_foreach_safe(mine, tmp, old, ov) {
			if (strcasecmp(old, name) == 0)
				json_object_del(mine, old);
		}
		if (json_object_set(mine, name, v) != 0)
			return -1;
	}
	return 0;
}

int fanout_input_apply(json_t *batch, const struct fanout_batch_opts *o, char *err,
                       size_t errlen)
{
	int rc = 0;

	if (o->method != NULL)
		rc |= set_each(batch, "method", json_string(o->method));
	if (o->timeout_ms > 0)
		rc |= set_each(batch, "timeout_ms", json_integer(o->timeout_ms));
	if (o->headers != NULL && json_object_size(o->headers) > 0)
		rc |= merge_headers(batch, o->headers);
	if (o->concurrency > 0)
		rc |= json_object_set_new(batch, "max_concurrency", json_integer(o->concurrency));
	if (o->settled)
		rc |= json_object_set_new(batch, "mode", json_string("settled"));
	if (o->retries >= 0)
		rc |= json_object_set_new(batch, "retry",
		                          json_pack("{s:I}", "attempts", (json_int_t)o->retries + 1));
	if (o->progress_ms > 0)
		rc |= json_object_set_new(batch, "progress_ms", json_integer(o->progress_ms));
	if (rc != 0)
		return fail(err, errlen, "out of memory, or -X is not UTF-8");
	return 0;
}

static bool token_char(unsigned char c)
{
	return c > 32 && c < 127 && strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

int fanout_input_header(json_t *headers, const char *arg, char *err, size_t errlen)
{
	const char *colon = strchr(arg, ':'), *v, *p;
	size_t vlen;
	json_t *s;
	char name[256];

	if (colon == NULL)
		return fail(err, errlen, "-H %s: expected 'Name: value'", arg);
	if (colon == arg || (size_t)(colon - arg) >= sizeof name)
		return fail(err, errlen, "-H %s: the name is empty or too long", arg);
	for (p = arg; p < colon; p++)
		if (!token_char((unsigned char)*p))
			return fail(err, errlen, "-H %s: a header name is a token "
			            "(no spaces or separators)", arg);
	memcpy(name, arg, (size_t)(colon - arg));
	name[colon - arg] = '\0';
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	vlen = strlen(v);
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	s = json_stringn(v, vlen);
	if (s == NULL)
		return fail(err, errlen, "-H %s: the value is not UTF-8", arg);
	return json_object_set_new(headers, name, s) == 0 ? 0 : fail(err, errlen, "out of memory");
}

size_t fanout_input_count(const json_t *batch)
{
	return json_array_size(requests_of(batch));
}

const char *fanout_input_url(const json_t *batch, size_t i)
{
	const json_t *r = json_array_get(requests_of(batch), i);

	if (json_is_object(r))
		r = json_object_get(r, "url");
	return json_string_value(r);
}

const json_t *fanout_input_id(const json_t *batch, size_t i)
{
	const json_t *r = json_array_get(requests_of(batch), i);

	return json_is_object(r) ? json_object_get(r, "id") : NULL;
}

bool fanout_input_settled(const json_t *batch)
{
	const char *mode = json_string_value(json_object_get(batch, "mode"));

	return mode != NULL && strcmp(mode, "settled") == 0;
}
