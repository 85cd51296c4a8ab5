/* answer: JSON answers, written entry by entry into the client's output
 * evbuffer without building JSON values: strings escaped and numbers
 * formatted by answer_text.c exactly as jansson and printf do, and
 * upstream JSON bodies that pass jsonvalid_check copied in verbatim, so
 * numbers keep their exact upstream spelling.  tests/check_answer.c holds
 * each of these to jansson and snprintf. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "answer.h"
#include "units.h"
#include "jsonvalid.h"
#include "xalloc.h"

/* --- low-level writers ------------------------------------------------- */

static int to_evbuffer(const char *buf, size_t size, void *data)
{
	return evbuffer_add(data, buf, size);
}

void answer_write_json(struct evbuffer *out, const json_t *v)
{
	json_dump_callback(v, to_evbuffer, out, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
}

/* A string literal, as it is: into the evbuffer, or at dst (returning
 * the end) for a piece assembled on the stack and added at once. */
#define put_lit(out, lit) evbuffer_add((out), (lit), sizeof(lit) - 1)
#define add_lit(dst, lit) add((dst), (lit), sizeof(lit) - 1)

static char *add(char *dst, const char *s, size_t n)
{
	memcpy(dst, s, n);
	return dst + n;
}

static void put_piece(struct evbuffer *out, const char *buf, const char *end)
{
	evbuffer_add(out, buf, (size_t)(end - buf));
}

static char *add_int(char *dst, intmax_t v)
{
	if (v >= 0)
		return units_format_uint(dst, (uintmax_t)v);
	*dst++ = '-';
	return units_format_uint(dst, -(uintmax_t)v);
}

/* A JSON string of len bytes of valid UTF-8; false, and nothing written,
 * when they are not. */
static bool put_string_n(struct evbuffer *out, const char *s, size_t len)
{
	if (!jsonvalid_utf8(s, len))
		return false;
	answer_text_put(out, s, len, true);
	return true;
}

/* A string we wrote or got from the client or an upstream, made valid
 * as answer_text does. */
static void put_string(struct evbuffer *out, const char *s)
{
	size_t len = strlen(s);

	answer_text_put(out, s, len, jsonvalid_utf8(s, len));
}

/* A static ASCII name that needs no escaping ("ok", "response"), quoted. */
static void put_name(struct evbuffer *out, const char *name)
{
	put_lit(out, "\"");
	evbuffer_add(out, name, strlen(name));
	put_lit(out, "\"");
}

/* --- bodies ------------------------------------------------------------ */

/* Deepest nesting of a JSON body passed through verbatim: the answer adds
 * two levels, and clients parse it with limits of their own (jansson
 * 2048, Python's json about 1000).  A deeper body goes out as text. */
#define ANSWER_MAX_JSON_DEPTH 512

/* JSON bodies at least this big go into the answer by reference. */
#define ANSWER_COPY_BELOW 4096

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

/* Encoded straight into out's own space: no buffer of its own. */
static void put_base64(struct evbuffer *out, const unsigned char *p, size_t len)
{
	size_t cap = 4 * ((len + 2) / 3) + 1;   /* EVP_EncodeBlock adds a NUL */
	struct evbuffer_iovec vec;

	put_lit(out, "\"");
	if (evbuffer_reserve_space(out, (ev_ssize_t)cap, &vec, 1) != 1)
		xcheck(NULL);   /* out of memory: xalloc's policy */
	vec.iov_len = (size_t)EVP_EncodeBlock(vec.iov_base, p, (int)len);
	evbuffer_commit_space(out, &vec, 1);
	put_lit(out, "\"");
}

static void free_body(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/* A JSON text on one line: outside its strings (where raw CR and LF
 * cannot be) every CR and LF is whitespace, and a space is the same. */
static void flatten(char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] == '\n' || p[i] == '\r')
			p[i] = ' ';
}

static void unref_share(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	outcome_share_unref(arg);
}

/* A JSON body verbatim.  A big one changes hands (a small one is cheaper
 * copied than kept as a chain of its own); a shared one (collapsed
 * requests) is referenced, never changed: on one line it is copied to be
 * flattened if it has a line break. */
static void put_json_body(struct evbuffer *out, struct outcome *o, bool one_line)
{
	size_t len = o->body_len;

	if (o->share != NULL && one_line && (memchr(o->body, '\n', len) || memchr(o->body, '\r', len))) {
		char *copy = xmalloc(len);

		memcpy(copy, o->body, len);
		outcome_body_release(o);
		o->body = copy;
		o->body_len = o->body_cap = len;
	}
	if (one_line && o->share == NULL)
		flatten(o->body, len);
	if (len < ANSWER_COPY_BELOW) {
		evbuffer_add(out, o->body, len);
	} else if (o->share != NULL) {
		evbuffer_add_reference(out, o->body, len, unref_share, o->share);
		o->share = NULL;   /* out holds the reference now */
		o->body = NULL;
	} else {
		evbuffer_add_reference(out, o->body, len, free_body, NULL);
		o->body = NULL;   /* out owns it now */
	}
}

/* ,"body":…,"encoding":"json|text|base64"[,"decoded":"gzip"].  The body
 * is consumed: a JSON body is handed to out by reference (no copy), any
 * other is freed once written, so the answer never holds a body twice.
 * one_line: for an NDJSON line, a JSON body's line breaks become spaces. */
static void put_body(struct evbuffer *out, struct outcome *o, bool one_line)
{
	size_t len = o->body ? o->body_len : 0;
	const char *p = len ? o->body : "";

	put_lit(out, ",\"body\":");
	if (len > 0 && is_json_type(o->content_type) &&
	    jsonvalid_check(p, len, ANSWER_MAX_JSON_DEPTH)) {
		put_json_body(out, o, one_line);
		put_lit(out, ",\"encoding\":\"json\"");
	} else if (put_string_n(out, p, len)) {
		put_lit(out, ",\"encoding\":\"text\"");
	} else {
		put_base64(out, (const unsigned char *)p, len);
		put_lit(out, ",\"encoding\":\"base64\"");
	}
	if (o->decoded != NULL) {   /* a token list: "gzip", "gzip, br" */
		put_lit(out, ",\"decoded\":");
		put_string_n(out, o->decoded, strlen(o->decoded));
	}
	outcome_body_release(o);
}

/* --- entries ----------------------------------------------------------- */

/* {"index":N[,"id":…],"url":"…" — the entry is left open. */
static void put_entry_head(struct evbuffer *out, size_t index, const struct request_item *it)
{
	char buf[16 + UNITS_UINT_MAX], *p = buf;

	p = add_lit(p, "{\"index\":");
	p = units_format_uint(p, index);
	put_piece(out, buf, p);
	if (it->id_json != NULL) {
		/* the client's own text: 0.1 is echoed 0.1, not 0.10000000000000001 */
		put_lit(out, ",\"id\":");
		evbuffer_add(out, it->id_json, strlen(it->id_json));
	}
	put_lit(out, ",\"url\":");
	put_string(out, it->url);
}

/* ,"attempts":N,"retry_wait_ms":… (SPEC 10: on every result and error)
 * [,"shared":true][,"hedged":true] (SPEC 15) */
static void put_attempts(struct evbuffer *out, const struct outcome *o)
{
	char buf[UNITS_UINT_MAX + ANSWER_MS_MAX + 72], *p = buf;

	p = add_lit(p, ",\"attempts\":");
	p = units_format_uint(p, o->attempts > 0 ? o->attempts : 1);
	p = add_lit(p, ",\"retry_wait_ms\":");
	p = answer_format_ms(p, o->retry_wait_ms);
	if (o->shared)   /* SPEC 15: only when true */
		p = add_lit(p, ",\"shared\":true");
	if (o->hedged)
		p = add_lit(p, ",\"hedged\":true");
	put_piece(out, buf, p);
}

/* ,"elapsed_ms":…,"timing":{…},"reused":…[,"protocol":"…"] — protocol
 * only once the request got a connection. */
static void put_timing(struct evbuffer *out, const struct outcome *o)
{
	const struct outcome_timing *t = &o->timing;
	char buf[5 * ANSWER_MS_MAX + 128], *p = buf;

	p = add_lit(p, ",\"elapsed_ms\":");
	p = answer_format_ms(p, t->total_ms < 0 ? 0.0 : t->total_ms);
	p = add_lit(p, ",\"timing\":{\"queued_ms\":");
	p = answer_format_ms(p, t->queued_ms);
	p = add_lit(p, ",\"connect_ms\":");
	p = answer_format_ms(p, t->connect_ms);
	p = add_lit(p, ",\"ttfb_ms\":");
	p = answer_format_ms(p, t->ttfb_ms);
	p = add_lit(p, ",\"total_ms\":");
	p = answer_format_ms(p, t->total_ms);
	if (o->reused)
		p = add_lit(p, "},\"reused\":true");
	else
		p = add_lit(p, "},\"reused\":false");
	put_piece(out, buf, p);
	if (o->protocol != NULL) {   /* a static name: "http/1.1", "h2" */
		put_lit(out, ",\"protocol\":");
		put_name(out, o->protocol);
	}
	put_attempts(out, o);
}

static void put_response(struct evbuffer *out, struct outcome *o, bool one_line)
{
	if (o->headers_json == NULL)
		return;
	put_lit(out, ",\"headers\":");
	evbuffer_add(out, o->headers_json, strlen(o->headers_json));
	put_body(out, o, one_line);
}

/* ,"status":N */
static void put_status(struct evbuffer *out, int status)
{
	char buf[16 + UNITS_UINT_MAX], *p = buf;

	p = add_lit(p, ",\"status\":");
	p = add_int(p, status);
	put_piece(out, buf, p);
}

/* "type":…,"message":… and the fields that go with the type; no leading
 * comma, so it can open an object. */
static void put_error_fields(struct evbuffer *out, const struct outcome *o)
{
	char buf[32 + UNITS_UINT_MAX], *p = buf;

	put_lit(out, "\"type\":");
	put_name(out, outcome_type_name(o->type));
	if (o->status > 0)
		put_status(out, o->status);
	put_lit(out, ",\"message\":");
	put_string(out, o->message ? o->message : outcome_type_name(o->type));
	if (o->phase != NULL) {
		put_lit(out, ",\"phase\":");
		put_name(out, o->phase);
	}
	if ((o->type == OUTCOME_RATE_LIMITED || o->type == OUTCOME_CIRCUIT_OPEN) &&
	    o->retry_after_s >= 0) {
		p = add_lit(p, ",\"retry_after_s\":");
		p = add_int(p, o->retry_after_s);
		put_piece(out, buf, p);
	}
}

/* The rest of a success: its status, timing and response. */
static void put_success(struct evbuffer *out, struct outcome *o, bool one_line)
{
	put_status(out, o->status);
	put_timing(out, o);
	put_response(out, o, one_line);
}

/* The rest of an element of "errors" in mode all: the error fields sit in
 * the entry itself. */
static void put_group_error(struct evbuffer *out, struct outcome *o, bool one_line)
{
	put_lit(out, ",");
	put_error_fields(out, o);
	put_timing(out, o);
	put_response(out, o, one_line);
}

/* The rest of an element of "results" in mode settled that did not
 * succeed: the error fields and the response in an object of their own. */
static void put_settled_error(struct evbuffer *out, struct outcome *o, bool one_line)
{
	put_lit(out, ",\"error\":{");
	put_error_fields(out, o);
	put_response(out, o, one_line);
	put_lit(out, "}");
	put_timing(out, o);
}

/* --- whole answers ----------------------------------------------------- */

/* The outcome types of a batch's items, wherever they are kept: the
 * outcomes of a buffered answer, or one byte an item for a streamed one. */
struct type_list {
	const struct outcome *outcomes;   /* or NULL, then: */
	const unsigned char *types;       /* enum outcome_type of each item */
	size_t n;
};

static enum outcome_type type_at(const struct type_list *t, size_t i)
{
	return t->outcomes ? t->outcomes[i].type : (enum outcome_type)t->types[i];
}

static bool type_is_failure(enum outcome_type t)
{
	return t != OUTCOME_PENDING && t != OUTCOME_OK && t != OUTCOME_CANCELLED;
}

static void count(const struct type_list *t, size_t *failed, size_t *cancelled)
{
	size_t i;

	*failed = *cancelled = 0;
	for (i = 0; i < t->n; i++) {
		enum outcome_type type = type_at(t, i);

		if (type_is_failure(type))
			(*failed)++;
		else if (type != OUTCOME_OK)
			(*cancelled)++;
	}
}

/* ,"name":[i,j,…] of the indices whose type satisfies keep(); name
 * needs no escaping. */
static void put_index_list(struct evbuffer *out, const char *name,
                           const struct type_list *t, bool (*keep)(enum outcome_type))
{
	char buf[512], *p = buf;
	size_t i;
	bool first = true;

	put_lit(out, ",");
	put_name(out, name);
	put_lit(out, ":[");
	for (i = 0; i < t->n; i++) {
		if (!keep(type_at(t, i)))
			continue;
		if (p + 1 + UNITS_UINT_MAX > buf + sizeof buf) {
			put_piece(out, buf, p);
			p = buf;
		}
		if (!first)
			*p++ = ',';
		p = units_format_uint(p, i);
		first = false;
	}
	p = add_lit(p, "]");
	put_piece(out, buf, p);
}

static bool is_ok(enum outcome_type t) { return t == OUTCOME_OK; }
static bool is_not_done(enum outcome_type t)
{
	return t == OUTCOME_CANCELLED || t == OUTCOME_PENDING;
}

/* "error":…,"message":"…" of a mode "all" batch that is not ok: some
 * failed (batch_failed), or shutdown cancelled it (draining). */
static char *add_group_error(char *p, size_t failed, size_t cancelled, size_t n)
{
	if (failed > 0) {
		p = add_lit(p, "\"error\":\"batch_failed\",\"message\":\"");
		p = units_format_uint(p, failed);
		p = add_lit(p, " of ");
		p = units_format_uint(p, n);
		p = add_lit(p, " requests failed, ");
		p = units_format_uint(p, cancelled);
		return add_lit(p, " cancelled\"");
	}
	p = add_lit(p, "\"error\":\"draining\",\"message\":\"fanoutd is shutting down: ");
	p = units_format_uint(p, cancelled);
	p = add_lit(p, " of ");
	p = units_format_uint(p, n);
	return add_lit(p, " requests cancelled\"");
}

/* The opening of the answer, up to the "[" of its list of entries. */
static void put_head(struct evbuffer *out, const struct answer_stream *s)
{
	char buf[256 + 3 * UNITS_UINT_MAX + ANSWER_MS_MAX], *p = buf;
	size_t n = s->br->n;

	switch (s->shape) {
	case ANSWER_ALL_OK:
		p = add_lit(p, "{\"ok\":true,\"elapsed_ms\":");
		p = answer_format_ms(p, s->elapsed_ms);
		p = add_lit(p, ",\"results\":[");
		break;
	case ANSWER_SETTLED:
		if (s->failed + s->cancelled == 0)
			p = add_lit(p, "{\"ok\":true,\"elapsed_ms\":");
		else
			p = add_lit(p, "{\"ok\":false,\"elapsed_ms\":");
		p = answer_format_ms(p, s->elapsed_ms);
		p = add_lit(p, ",\"results\":[");
		break;
	case ANSWER_GROUP:
		p = add_lit(p, "{\"ok\":false,");
		p = add_group_error(p, s->failed, s->cancelled, n);
		p = add_lit(p, ",\"elapsed_ms\":");
		p = answer_format_ms(p, s->elapsed_ms < 0 ? 0.0 : s->elapsed_ms);
		p = add_lit(p, ",\"errors\":[");
		break;
	}
	put_piece(out, buf, p);
}

/* The object of request i as shape lists it: a success, an element of
 * "errors" (shape ANSWER_GROUP) or a settled entry that failed. */
static void put_item(struct evbuffer *out, enum answer_shape shape, size_t i,
                     const struct request_item *it, struct outcome *o, bool one_line)
{
	put_entry_head(out, i, it);
	if (shape == ANSWER_GROUP)
		put_group_error(out, o, one_line);
	else if (o->type == OUTCOME_OK)
		put_success(out, o, one_line);
	else
		put_settled_error(out, o, one_line);
	put_lit(out, "}");
}

/* Entry i, if this shape lists it (an error group lists failures only). */
static void put_entry(struct evbuffer *out, struct answer_stream *s, size_t i)
{
	struct outcome *o = &s->outcomes[i];

	if (s->shape == ANSWER_GROUP && !outcome_is_failure(o))
		return;
	if (s->entries++ > 0)
		put_lit(out, ",");
	put_item(out, s->shape, i, &s->br->items[i], o, false);
}

static void put_tail(struct evbuffer *out, const struct answer_stream *s)
{
	struct type_list t = { .outcomes = s->outcomes, .n = s->br->n };

	if (s->shape != ANSWER_GROUP) {
		put_lit(out, "]}");
		return;
	}
	put_lit(out, "]");
	put_index_list(out, "completed", &t, is_ok);
	put_index_list(out, "cancelled", &t, is_not_done);
	put_lit(out, "}");
}

void answer_stream_init(struct answer_stream *s, const struct batch_request *br,
                        struct outcome *outcomes, double elapsed_ms)
{
	struct type_list t = { .outcomes = outcomes, .n = br->n };

	memset(s, 0, sizeof *s);
	s->br = br;
	s->outcomes = outcomes;
	s->elapsed_ms = elapsed_ms;
	count(&t, &s->failed, &s->cancelled);
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

/* --- streamed answers (NDJSON) ------------------------------------------ */

void answer_write_line(struct evbuffer *out, const struct batch_request *br, size_t index,
                       struct outcome *o)
{
	enum answer_shape shape = ANSWER_SETTLED;

	if (br->mode == BATCH_MODE_ALL)
		shape = o->type == OUTCOME_OK ? ANSWER_ALL_OK : ANSWER_GROUP;
	put_item(out, shape, index, &br->items[index], o, true);
	put_lit(out, "\n");
}

void answer_write_progress(struct evbuffer *out, const struct answer_progress *pr)
{
	char buf[128 + 5 * UNITS_UINT_MAX + ANSWER_MS_MAX], *p = buf;

	p = add_lit(p, "{\"progress\":{\"total\":");
	p = units_format_uint(p, pr->total);
	p = add_lit(p, ",\"done\":");
	p = units_format_uint(p, pr->done);
	p = add_lit(p, ",\"failed\":");
	p = units_format_uint(p, pr->failed);
	p = add_lit(p, ",\"in_flight\":");
	p = units_format_uint(p, pr->in_flight);
	p = add_lit(p, ",\"queued\":");
	p = units_format_uint(p, pr->queued);
	p = add_lit(p, ",\"elapsed_ms\":");
	p = answer_format_ms(p, pr->elapsed_ms < 0 ? 0.0 : pr->elapsed_ms);
	p = add_lit(p, "}}\n");
	put_piece(out, buf, p);
}

static bool is_failure(enum outcome_type t) { return type_is_failure(t); }

void answer_write_last(struct evbuffer *out, const struct batch_request *br,
                       const unsigned char *types, double elapsed_ms)
{
	struct type_list t = { .types = types, .n = br->n };
	char buf[256 + 3 * UNITS_UINT_MAX + ANSWER_MS_MAX], *p = buf;
	size_t failed, cancelled;

	count(&t, &failed, &cancelled);
	if (failed + cancelled == 0) {
		p = add_lit(p, "{\"done\":true,\"ok\":true");
	} else {
		p = add_lit(p, "{\"done\":true,\"ok\":false");
		if (br->mode == BATCH_MODE_ALL) {
			p = add_lit(p, ",");
			p = add_group_error(p, failed, cancelled, br->n);
		}
	}
	p = add_lit(p, ",\"elapsed_ms\":");
	p = answer_format_ms(p, elapsed_ms < 0 ? 0.0 : elapsed_ms);
	put_piece(out, buf, p);
	put_index_list(out, "completed", &t, is_ok);
	put_index_list(out, "failed", &t, is_failure);
	put_index_list(out, "cancelled", &t, is_not_done);
	put_lit(out, "}\n");
}

void answer_write_error(struct evbuffer *out, const char *error, const char *message)
{
	put_lit(out, "{\"ok\":false,\"error\":");
	put_name(out, error);
	put_lit(out, ",\"message\":");
	put_string(out, message);
	put_lit(out, "}");
}
