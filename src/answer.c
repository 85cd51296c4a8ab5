/* answer: JSON answers, written entry by entry into the client's output
 * evbuffer.  Small values go through jansson's encoder (json_dump_callback)
 * so escaping is jansson's, never ours; upstream JSON bodies that parse are
 * copied in verbatim, so numbers keep their exact upstream spelling. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "answer.h"
#include "xalloc.h"

/* --- headers and Retry-After ------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (RFC 3629), or 0. */
static size_t utf8_seq(const unsigned char *p)
{
	size_t n, i;
	unsigned c = p[0];
	unsigned lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	/* the second byte's range excludes overlongs, surrogates, > U+10FFFF */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

json_t *answer_text(const char *s)
{
	json_t *v = json_string(s);
	char *copy;
	size_t i, n;

	if (v != NULL)
		return v;
	copy = xstrdup(s);
	for (i = 0; copy[i] != '\0'; i += n) {
		n = utf8_seq((const unsigned char *)copy + i);
		if (n == 0) {
			copy[i] = '?';
			n = 1;
		}
	}
	v = json_string(copy);
	free(copy);
	return v;
}

void answer_add_header(json_t *headers, const char *name, const char *value)
{
	char lname[256];
	const char *old;
	char *joined;
	size_t i;

	for (i = 0; name[i] != '\0' && i < sizeof lname - 1; i++)
		lname[i] = (char)tolower((unsigned char)name[i]);
	lname[i] = '\0';
	old = json_string_value(json_object_get(headers, lname));
	if (old == NULL) {
		json_object_set_new(headers, lname, answer_text(value));
		return;
	}
	joined = xasprintf("%s, %s", old, value);
	json_object_set_new(headers, lname, answer_text(joined));
	free(joined);
}

int answer_parse_retry_after(const char *value, time_t now, long *out)
{
	struct tm tm;
	const char *end;
	char *num_end;
	long n;

	while (*value == ' ' || *value == '\t')
		value++;
	if (isdigit((unsigned char)*value)) {
		errno = 0;
		n = strtol(value, &num_end, 10);
		if (errno == ERANGE)
			return -1;
		while (*num_end == ' ' || *num_end == '\t')
			num_end++;
		if (*num_end != '\0' || n < 0)
			return -1;
		*out = n;
		return 0;
	}
	/* RFC 9110 5.6.7: the IMF-fixdate, and the two obsolete forms */
	static const char *const formats[] = {
		"%a, %d %b %Y %H:%M:%S GMT",
		"%A, %d-%b-%y %H:%M:%S GMT",
		"%a %b %e %H:%M:%S %Y",
	};
	size_t i;

	for (i = 0; i < sizeof formats / sizeof *formats; i++) {
		memset(&tm, 0, sizeof tm);
		end = strptime(value, formats[i], &tm);
		while (end != NULL && (*end == ' ' || *end == '\t'))
			end++;
		if (end == NULL || *end != '\0')
			continue;
		n = (long)(timegm(&tm) - now);
		*out = n > 0 ? n : 0;
		return 0;
	}
	return -1;
}

/* --- low-level writers ------------------------------------------------- */

static int to_evbuffer(const char *buf, size_t size, void *data)
{
	return evbuffer_add(data, buf, size);
}

void answer_write_json(struct evbuffer *out, const json_t *v)
{
	json_dump_callback(v, to_evbuffer, out, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* A JSON string of len bytes of valid UTF-8 (checked by jansson). */
static bool put_string_n(struct evbuffer *out, const char *s, size_t len)
{
	json_t *v = json_stringn(s, len);

	if (v == NULL)
		return false;
	answer_write_json(out, v);
	json_decref(v);
	return true;
}

/* A string we wrote or got from the client or an upstream. */
static void put_string(struct evbuffer *out, const char *s)
{
	json_t *v = answer_text(s);

	answer_write_json(out, v);
	json_decref(v);
}

static void put_key(struct evbuffer *out, const char *key)
{
	evbuffer_add_printf(out, ",\"%s\":", key);
}

static void put_ms(struct evbuffer *out, const char *key, double ms)
{
	evbuffer_add_printf(out, ",\"%s\":%.1f", key, ms < 0 ? 0.0 : ms);
}

/* --- bodies ------------------------------------------------------------ */

/* Deepest nesting of a JSON body passed through verbatim: the answer adds
 * two levels, and clients parse it with limits of their own (jansson
 * 2048, Python's json about 1000).  A deeper body goes out as text. */
#define ANSWER_MAX_JSON_DEPTH 512

/* JSON bodies at least this big go into the answer by reference. */
#define ANSWER_COPY_BELOW 4096

/* Nesting depth of a JSON text: brackets outside strings. */
static size_t json_depth(const char *p, size_t len)
{
	size_t i, depth = 0, max = 0;
	bool in_string = false;

	for (i = 0; i < len; i++) {
		if (in_string) {
			if (p[i] == '\\')
				i++;
			else if (p[i] == '"')
				in_string = false;
		} else if (p[i] == '"') {
			in_string = true;
		} else if (p[i] == '[' || p[i] == '{') {
			if (++depth > max)
				max = depth;
		} else if ((p[i] == ']' || p[i] == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

static bool is_json_type(const char *ct)
{
	size_t n;

	if (ct == NULL)
		return false;
	n = strcspn(ct, "; \t");
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	return n >= 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static void put_base64(struct evbuffer *out, const unsigned char *p, size_t len)
{
	size_t cap = 4 * ((len + 2) / 3) + 1;
	unsigned char *b64 = xmalloc(cap);
	int n;

	n = EVP_EncodeBlock(b64, p, (int)len);
	evbuffer_add(out, "\"", 1);
	evbuffer_add(out, b64, (size_t)n);
	evbuffer_add(out, "\"", 1);
	free(b64);
}

static void free_body(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/* ,"body":…,"encoding":"json|text|base64".  The body is consumed: a JSON
 * body is handed to out by reference (no copy), any other is freed once
 * written, so the answer never holds a body twice. */
static void put_body(struct evbuffer *out, struct outcome *o)
{
	const char *ct = o->content_type;
	size_t len = o->body ? o->body_len : 0;
	const char *p = len ? o->body : "";
	const char *encoding = "text";
	json_t *parsed;

	put_key(out, "body");
	if (len > 0 && is_json_type(ct) && json_depth(p, len) <= ANSWER_MAX_JSON_DEPTH) {
		/* only a check: the body is copied verbatim, so integers past
		 * 64 bits are fine as reals here */
		parsed = json_loadb(p, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
		if (parsed != NULL) {
			json_decref(parsed);
			/* a big body changes hands; a small one is cheaper copied
			 * than kept as a chain of its own */
			if (len < ANSWER_COPY_BELOW) {
				evbuffer_add(out, o->body, len);
			} else {
				evbuffer_add_reference(out, o->body, len, free_body, NULL);
				o->body = NULL;   /* out owns it now */
			}
			encoding = "json";
		}
	}
	if (strcmp(encoding, "json") != 0 && !put_string_n(out, p, len)) {
		put_base64(out, (const unsigned char *)p, len);
		encoding = "base64";
	}
	evbuffer_add_printf(out, ",\"encoding\":\"%s\"", encoding);
	free(o->body);
	o->body = NULL;
	o->body_len = o->body_cap = 0;
}

/* --- entries ----------------------------------------------------------- */

/* {"index":N[,"id":…],"url":"…" — the entry is left open. */
static void put_entry_head(struct evbuffer *out, size_t index, const struct request_item *it)
{
	evbuffer_add_printf(out, "{\"index\":%zu", index);
	if (it->id_json != NULL) {
		/* the client's own text: 0.1 is echoed 0.1, not 0.10000000000000001 */
		put_key(out, "id");
		evbuffer_add(out, it->id_json, strlen(it->id_json));
	}
	put_key(out, "url");
	put_string(out, it->url);
}

static void put_timing(struct evbuffer *out, const struct outcome *o)
{
	put_ms(out, "elapsed_ms", o->timing.total_ms);
	evbuffer_add_printf(out, ",\"timing\":{\"queued_ms\":%.1f,\"connect_ms\":%.1f,"
	                    "\"ttfb_ms\":%.1f,\"total_ms\":%.1f}",
	                    o->timing.queued_ms, o->timing.connect_ms,
	                    o->timing.ttfb_ms, o->timing.total_ms);
	evbuffer_add_printf(out, ",\"reused\":%s", o->reused ? "true" : "false");
}

static void put_response(struct evbuffer *out, struct outcome *o)
{
	outcome_seal(o);
	if (o->headers_json == NULL)
		return;
	put_key(out, "headers");
	evbuffer_add(out, o->headers_json, strlen(o->headers_json));
	put_body(out, o);
}

/* "type":…,"message":… and the fields that go with the type; no leading
 * comma, so it can open an object. */
static void put_error_fields(struct evbuffer *out, const struct outcome *o)
{
	evbuffer_add_printf(out, "\"type\":\"%s\"", outcome_type_name(o->type));
	if (o->status > 0)
		evbuffer_add_printf(out, ",\"status\":%d", o->status);
	put_key(out, "message");
	put_string(out, o->message ? o->message : outcome_type_name(o->type));
	if (o->phase != NULL)
		evbuffer_add_printf(out, ",\"phase\":\"%s\"", o->phase);
	if (o->type == OUTCOME_RATE_LIMITED && o->retry_after_s >= 0)
		evbuffer_add_printf(out, ",\"retry_after_s\":%ld", o->retry_after_s);
}

/* The rest of a success: its status, timing and response. */
static void put_success(struct evbuffer *out, struct outcome *o)
{
	evbuffer_add_printf(out, ",\"status\":%d", o->status);
	put_timing(out, o);
	put_response(out, o);
}

/* The rest of an element of "errors" in mode all: the error fields sit in
 * the entry itself. */
static void put_group_error(struct evbuffer *out, struct outcome *o)
{
	evbuffer_add(out, ",", 1);
	put_error_fields(out, o);
	put_timing(out, o);
	put_response(out, o);
}

/* The rest of an element of "results" in mode settled that did not
 * succeed: the error fields and the response in an object of their own. */
static void put_settled_error(struct evbuffer *out, struct outcome *o)
{
	evbuffer_add_printf(out, ",\"error\":{");
	put_error_fields(out, o);
	put_response(out, o);
	evbuffer_add(out, "}", 1);
	put_timing(out, o);
}

/* --- whole answers ----------------------------------------------------- */

static void count(const struct outcome *outcomes, size_t n, size_t *failed,
                  size_t *cancelled)
{
	size_t i;

	*failed = *cancelled = 0;
	for (i = 0; i < n; i++) {
		if (outcome_is_failure(&outcomes[i]))
			(*failed)++;
		else if (outcomes[i].type != OUTCOME_OK)
			(*cancelled)++;
	}
}

/* ,"name":[i,j,…] of the indices whose outcome satisfies keep(). */
static void put_index_list(struct evbuffer *out, const char *name,
                           const struct outcome *outcomes, size_t n,
                           bool (*keep)(const struct outcome *))
{
	const char *sep = "";
	size_t i;

	evbuffer_add_printf(out, ",\"%s\":[", name);
	for (i = 0; i < n; i++) {
		if (!keep(&outcomes[i]))
			continue;
		evbuffer_add_printf(out, "%s%zu", sep, i);
		sep = ",";
	}
	evbuffer_add(out, "]", 1);
}

static bool is_ok(const struct outcome *o) { return o->type == OUTCOME_OK; }
static bool is_not_done(const struct outcome *o)
{
	return o->type == OUTCOME_CANCELLED || o->type == OUTCOME_PENDING;
}

/* The opening of the answer, up to the "[" of its list of entries. */
static void put_head(struct evbuffer *out, const struct answer_stream *s)
{
	const struct batch_request *br = s->br;

	switch (s->shape) {
	case ANSWER_ALL_OK:
		evbuffer_add_printf(out, "{\"ok\":true,\"elapsed_ms\":%.1f,\"results\":[",
		                    s->elapsed_ms);
		return;
	case ANSWER_SETTLED:
		evbuffer_add_printf(out, "{\"ok\":%s,\"elapsed_ms\":%.1f,\"results\":[",
		                    s->failed + s->cancelled == 0 ? "true" : "false",
		                    s->elapsed_ms);
		return;
	case ANSWER_GROUP:
		if (s->failed > 0)
			evbuffer_add_printf(out, "{\"ok\":false,\"error\":\"batch_failed\","
			                    "\"message\":\"%zu of %zu requests failed, "
			                    "%zu cancelled\"", s->failed, br->n, s->cancelled);
		else
			evbuffer_add_printf(out, "{\"ok\":false,\"error\":\"draining\","
			                    "\"message\":\"fanoutd is shutting down: %zu of %zu "
			                    "requests cancelled\"", s->cancelled, br->n);
		put_ms(out, "elapsed_ms", s->elapsed_ms);
		evbuffer_add_printf(out, ",\"errors\":[");
		return;
	}
}

/* Entry i, if this shape lists it (an error group lists failures only). */
static void put_entry(struct evbuffer *out, struct answer_stream *s, size_t i)
{
	const struct request_item *it = &s->br->items[i];
	struct outcome *o = &s->outcomes[i];

	if (s->shape == ANSWER_GROUP && !outcome_is_failure(o))
		return;
	if (s->entries++ > 0)
		evbuffer_add(out, ",", 1);
	put_entry_head(out, i, it);
	if (s->shape == ANSWER_GROUP)
		put_group_error(out, o);
	else if (o->type == OUTCOME_OK)
		put_success(out, o);
	else
		put_settled_error(out, o);
	evbuffer_add(out, "}", 1);
}

static void put_tail(struct evbuffer *out, const struct answer_stream *s)
{
	if (s->shape != ANSWER_GROUP) {
		evbuffer_add(out, "]}", 2);
		return;
	}
	evbuffer_add(out, "]", 1);
	put_index_list(out, "completed", s->outcomes, s->br->n, is_ok);
	put_index_list(out, "cancelled", s->outcomes, s->br->n, is_not_done);
	evbuffer_add(out, "}", 1);
}

void answer_stream_init(struct answer_stream *s, const struct batch_request *br,
                        struct outcome *outcomes, double elapsed_ms)
{
	memset(s, 0, sizeof *s);
	s->br = br;
	s->outcomes = outcomes;
	s->elapsed_ms = elapsed_ms;
	count(outcomes, br->n, &s->failed, &s->cancelled);
	if (br->mode == BATCH_MODE_SETTLED) {
		s->shape = ANSWER_SETTLED;
		s->status = 200;
	} else if (s->failed + s->cancelled == 0) {
		s->shape = ANSWER_ALL_OK;
		s->status = 200;
	} else {
		s->shape = ANSWER_GROUP;
		s->status = s->failed > 0 ? 502 : 503;
	}
}

bool answer_stream_write(struct answer_stream *s, struct evbuffer *out, size_t budget)
{
	size_t goal = evbuffer_get_length(out) + budget;

	if (!s->started) {
		put_head(out, s);
		s->started = true;
	}
	while (s->next < s->br->n) {
		if (evbuffer_get_length(out) >= goal)
			return false;
		put_entry(out, s, s->next++);
	}
	if (!s->done) {
		put_tail(out, s);
		s->done = true;
	}
	return true;
}

int answer_write_batch(struct evbuffer *out, const struct batch_request *br,
                       struct outcome *outcomes, double elapsed_ms)
{
	struct answer_stream s;

	answer_stream_init(&s, br, outcomes, elapsed_ms);
	answer_stream_write(&s, out, SIZE_MAX);
	return s.status;
}

void answer_write_error(struct evbuffer *out, const char *error, const char *message)
{
	evbuffer_add_printf(out, "{\"ok\":false,\"error\":\"%s\",\"message\":", error);
	put_string(out, message);
	evbuffer_add(out, "}", 1);
}
