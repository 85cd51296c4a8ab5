/* fuzz_answer: the answer encoder (src/answer.c) — how an upstream
 * response (content type, headers, body) becomes an entry of the JSON
 * answer, with its JSON / text / base64 body detection and header joining.
 *
 * Input layout (everything optional; missing parts are empty):
 *   byte 0   flags: bit 0 mode settled, bits 1-4 outcome type (mod 12),
 *            bit 5 no response (no headers object, so no body either),
 *            bit 6 the item has an "id", bit 7 reused connection
 *   byte 1,2 HTTP status, big endian, mod 1000
 *   byte 3   number of NUL-terminated strings that follow (255: as many
 *            as there are, up to 16384): the Content-Type ("" = none), the
 *            failure message ("" = none), then header name / value pairs
 *   rest     the body, any bytes
 *
 * The outcome goes through the functions the fetch code uses
 * (outcome_set_head with the fields as the codec hands them over: names
 * lower-cased, repeats joined with ", "; outcome_body_reserve/append/trim)
 * and then answer_write_batch() for a 1-item batch, and with the body
 * again answer_write_line(), whose line (one, "\n" at its end) must be the
 * entry of the buffered answer.  Checks: the answer is
 * JSON (jansson); the entry's body reads back as the upstream's bytes —
 * "text" as the same string, "base64" decoding (EVP_DecodeBlock) to the
 * same bytes and only when the body is not UTF-8 text, "json" as the same
 * JSON value; the headers are an object with lower-case names.  The input
 * as a string also goes to retry_after_ms (retry.h).
 *
 * And differentially, against what the answer path used before it stopped
 * building jansson values: jsonvalid_check against json_loadb (the body
 * and the whole input), the headers' JSON text, Content-Type and
 * Retry-After against a jansson object of answer_textn values dumped
 * JSON_COMPACT, answer_text_json against json_dumps(answer_textn(...)),
 * and answer_format_ms of the input's first 8 bytes as a double against
 * snprintf("%.1f"). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz.h"
#include "answer.h"
#include "clock.h"
#include "retry.h"
#include "jsonvalid.h"
#include "outcome.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#define MAX_STRINGS 16384

/* Parse the fixed requests once. */
static struct batch_request br_plain, br_id;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char plain[] = "[\"http://a/\"]";
	static const char with_id[] = "{\"requests\":[{\"url\":\"http://a/\",\"id\":\"x\"}]}";
	struct request_limits lim = { .max_batch_size = 1, .acl = NULL };
	char err[256];

	(void)argc;
	(void)argv;
	if (request_parse(plain, strlen(plain), &lim, &br_plain, err, sizeof err) < 0 ||
	    request_parse(with_id, strlen(with_id), &lim, &br_id, err, sizeof err) < 0) {
		fprintf(stderr, "fuzz_answer: fixed request: %s\n", err);
		abort();
	}
	return 0;
}

/* The body of the entry must read back as the upstream's bytes. */
static void check_body(const json_t *entry, const char *body, size_t len)
{
	const char *enc = json_string_value(json_object_get(entry, "encoding"));
	const json_t *jb = json_object_get(entry, "body");

	FUZZ_CHECK(enc != NULL && jb != NULL, "entry without body or encoding");
	if (strcmp(enc, "text") == 0) {
		FUZZ_CHECK(json_is_string(jb), "text body is not a string");
		FUZZ_CHECK(json_string_length(jb) == len &&
		           memcmp(json_string_value(jb), body, len) == 0,
		           "text body differs (%zu bytes, want %zu)", json_string_length(jb), len);
	} else if (strcmp(enc, "base64") == 0) {
		const char *b64 = json_string_value(jb);
		size_t n = json_string_length(jb), pad = 0;
		unsigned char *dec;
		json_t *as_text;
		int m;

		FUZZ_CHECK(b64 != NULL, "base64 body is not a string");
		FUZZ_CHECK(n % 4 == 0, "base64 length %zu", n);
		/* base64 only for what cannot be a JSON string */
		as_text = json_stringn(body, len);
		FUZZ_CHECK(as_text == NULL, "UTF-8 body sent as base64");
		dec = malloc(n / 4 * 3 + 1);
		FUZZ_CHECK(dec != NULL, "malloc");
		m = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
		FUZZ_CHECK(m >= 0, "bad base64");
		while (pad < 2 && n > pad && b64[n - 1 - pad] == '=')
			pad++;
		FUZZ_CHECK((size_t)m - pad == len && memcmp(dec, body, len) == 0,
		           "base64 body decodes to %zu bytes, want %zu", (size_t)m - pad, len);
		free(dec);
	} else if (strcmp(enc, "json") == 0) {
		json_t *want = json_loadb(body, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);

		FUZZ_CHECK(want != NULL, "json body is not JSON");
		FUZZ_CHECK(json_equal(want, (json_t *)jb), "json body differs");
		json_decref(want);
	} else {
		FUZZ_CHECK(0, "unknown encoding \"%s\"", enc);
	}
}

static void check_headers(const json_t *h)
{
	const char *name;
	json_t *v;

	FUZZ_CHECK(json_is_object(h), "headers is not an object");
	json_object_foreach((json_t *)h, name, v) {
		FUZZ_CHECK(json_is_string(v), "header %s is not a string", name);
		for (const char *p = name; *p; p++)
			FUZZ_CHECK(!isupper((unsigned char)*p), "header name \"%s\" not lower case", name);
	}
}

/* --- differential checks --------------------------------------------- */

#define MAX_JSON_DEPTH 512   /* answer.c's ANSWER_MAX_JSON_DEPTH */

/* Brackets outside strings: the depth check answer.c made before. */
static size_t bracket_depth(const char *p, size_t len)
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

/* jsonvalid_check is jansson's json_loadb, but that it also refuses a
 * NUL byte jansson lets through after a number or literal ("1\0"). */
static void check_jsonvalid(const char *p, size_t len)
{
	json_t *v = NULL;
	bool want;

	want = memchr(p, '\0', len) == NULL && bracket_depth(p, len) <= MAX_JSON_DEPTH &&
	       (v = json_loadb(p, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL)) != NULL;
	json_decref(v);
	FUZZ_CHECK(jsonvalid_check(p, len, MAX_JSON_DEPTH) == want,
	           "jsonvalid_check %d, jansson %d on %zu bytes", !want, want, len);
}

/* answer_text_json and answer_text_clean against answer_textn. */
static void check_text(const char *p, size_t len)
{
	json_t *v = answer_textn(p, len);
	char *want = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	size_t n = answer_text_json_len(p, len);
	char *got = malloc(n + len + 1);

	FUZZ_CHECK(v != NULL && want != NULL && got != NULL, "answer_textn or malloc");
	FUZZ_CHECK(n == strlen(want) && answer_text_json(got, p, len) == got + n &&
	           memcmp(got, want, n) == 0, "answer_text_json differs from jansson's");
	FUZZ_CHECK(answer_text_clean(got, p, len) == got + len &&
	           json_string_length(v) == len && memcmp(got, json_string_value(v), len) == 0,
	           "answer_text_clean differs from answer_textn");
	free(got);
	free(want);
	json_decref(v);
	v = json_stringn(p, len);
	FUZZ_CHECK(jsonvalid_utf8(p, len) == (v != NULL), "jsonvalid_utf8");
	json_decref(v);
}

/* The head as the jansson object it replaces would have had it. */
static void check_head(const struct outcome *o, const struct exchange_head *head)
{
	json_t *obj = json_object();
	const char *ct, *ra;
	char *want;
	long ra_s = -1;
	double ms;
	size_t i;

	FUZZ_CHECK(obj != NULL, "json_object");
	for (i = 0; i < head->nfields; i++)
		json_object_setn_new(obj, head->fields[i].name, head->fields[i].name_len,
		                     answer_textn(head->fields[i].value, head->fields[i].value_len));
	want = json_dumps(obj, JSON_COMPACT);
	FUZZ_CHECK(want != NULL && strcmp(o->headers_json, want) == 0,
	           "headers %s, jansson's %s", o->headers_json, want ? want : "-");
	ct = json_string_value(json_object_get(obj, "content-type"));
	FUZZ_CHECK(ct == NULL ? o->content_type == NULL
	                      : o->content_type != NULL && strcmp(ct, o->content_type) == 0,
	           "content_type \"%s\", jansson's \"%s\"",
	           o->content_type ? o->content_type : "-", ct ? ct : "-");
	ra = json_string_value(json_object_get(obj, "retry-after"));
	/* a date counts from now: skip the rare second that ticked over */
	if ((head->status == 429 || head->status == 503) && ra != NULL &&
	    (ms = retry_after_ms(ra, strlen(ra), clock_wall_ms())) >= 0)
		ra_s = retry_seconds_up(ms);
	FUZZ_CHECK(o->retry_after_s == ra_s || o->retry_after_s == ra_s + 1,
	           "retry_after_s %ld, jansson's %ld", o->retry_after_s, ra_s);
	free(want);
	json_decref(obj);
}

static void check_format_ms(const uint8_t *data, size_t size)
{
	char want[ANSWER_MS_MAX + 8], got[ANSWER_MS_MAX + 8];
	double v;
	int n;

	if (size < 8)
		return;
	memcpy(&v, data, sizeof v);
	n = snprintf(want, sizeof want, "%.1f", v);
	FUZZ_CHECK(n >= 0 && answer_format_ms(got, v) - got == n &&
	           memcmp(got, want, (size_t)n) == 0, "answer_format_ms(%.17g)", v);
}

/* The fields as the codec hands them over: the name lower-cased, the
 * value of a repeat joined to the first with ", ".  Every name and value
 * is a block of its own, freed by free_fields. */
static struct exchange_field fields[MAX_STRINGS / 2 + 1];

static void add_field(struct exchange_head *head, const char *name, const char *value)
{
	size_t i, nlen = strlen(name), vlen = strlen(value);
	struct exchange_field *f;
	char *s;

	for (i = 0; i < head->nfields; i++) {
		f = &fields[i];
		if (f->name_len != nlen || strncasecmp(f->name, name, nlen) != 0)
			continue;
		s = malloc(f->value_len + 2 + vlen + 1);
		FUZZ_CHECK(s != NULL, "malloc");
		memcpy(s, f->value, f->value_len);
		memcpy(s + f->value_len, ", ", 2);
		memcpy(s + f->value_len + 2, value, vlen);
		free((char *)f->value);
		f->value = s;
		f->value_len += 2 + vlen;
		return;
	}
	f = &fields[head->nfields++];
	s = strdup(name);
	FUZZ_CHECK(s != NULL, "strdup");
	for (i = 0; i < nlen; i++)
		s[i] = (char)tolower((unsigned char)s[i]);
	f->name = s;
	f->name_len = nlen;
	f->value = strdup(value);
	f->value_len = vlen;
	FUZZ_CHECK(f->value != NULL, "strdup");
}

static void free_fields(struct exchange_head *head)
{
	size_t i;

	for (i = 0; i < head->nfields; i++) {
		free((char *)fields[i].name);
		free((char *)fields[i].value);
	}
	head->nfields = 0;
}

/* A JSON document, by jansson (\u0000 in a text body is fine). */
static json_t *parse_answer(struct evbuffer *out)
{
	size_t len = evbuffer_get_length(out);
	const char *p = (const char *)evbuffer_pullup(out, -1);
	json_error_t jerr;
	json_t *root;

	root = json_loadb(p, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
	FUZZ_CHECK(root != NULL, "answer is not JSON: %s at %d:%d\n%.*s", jerr.text,
	           jerr.line, jerr.column, (int)(len < 2000 ? len : 2000), p);
	return root;
}

/* out holds one line, the JSON of want and a "\n". */
static void check_line(struct evbuffer *out, const json_t *want)
{
	size_t len = evbuffer_get_length(out);
	const char *p = (const char *)evbuffer_pullup(out, -1);
	json_error_t jerr;
	json_t *got;

	FUZZ_CHECK(len > 0 && p[len - 1] == '\n' && memchr(p, '\n', len) == p + len - 1,
	           "not one line");
	got = json_loadb(p, len - 1, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
	FUZZ_CHECK(got != NULL, "line is not JSON: %s", jerr.text);
	FUZZ_CHECK(json_equal(got, want), "line is not the buffered entry");
	json_decref(got);
}

static void retry_after(const char *s)
{
	double ms = retry_after_ms(s, strlen(s), 1700000000000.0);

	FUZZ_CHECK(ms == -1 || ms >= 0, "Retry-After \"%s\" -> %f", s, ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *strings[MAX_STRINGS];
	size_t nstrings = 0, want = 0, pos = 0;
	uint8_t flags = 0;
	int status = 0;
	struct batch_request *br;
	enum batch_mode saved_mode;
	struct outcome o;
	struct exchange_head head = { .fields = fields, .content_length = -1 };
	struct evbuffer *in, *out;
	char *copy, *body;
	size_t body_len;
	json_t *root, *list, *entry, *listed;
	bool response, failure;
	int http;

	if (!br_plain.items)
		LLVMFuzzerInitialize(NULL, NULL);

	/* the input as a string: Retry-After */
	copy = malloc(size + 1);
	FUZZ_CHECK(copy != NULL, "malloc");
	memcpy(copy, data, size);
	copy[size] = '\0';
	retry_after(copy);
	check_jsonvalid(copy, size);
	check_text(copy, size);
	check_format_ms(data, size);

	if (size > 0)
		flags = data[0];
	if (size > 2)
		status = ((data[1] << 8) | data[2]) % 1000;
	if (size > 3)
		want = data[3] == 255 ? MAX_STRINGS : data[3];
	pos = size < 4 ? size : 4;
	while (nstrings < want && pos < size) {
		const char *nul = memchr(copy + pos, '\0', size - pos);
		if (!nul)
			break;
		strings[nstrings++] = copy + pos;
		pos = (size_t)(nul - copy) + 1;
	}
	body = copy + pos;
	body_len = size - pos;
	check_jsonvalid(body, body_len);
	check_text(body, body_len);

	/* the outcome, as fetch.c builds it */
	outcome_init(&o);
	o.type = (enum outcome_type)(((flags >> 1) & 0xf) % OUTCOME_COUNT);
	o.status = status;   /* without a response; outcome_set_head sets it too */
	o.reused = flags & 0x80;
	o.timing.queued_ms = 0.5;
	o.timing.connect_ms = 1.25;
	o.timing.ttfb_ms = 3;
	o.timing.total_ms = 4.5;
	if (o.type == OUTCOME_TIMEOUT)
		o.phase = "ttfb";
	if (nstrings > 1 && strings[1][0])
		o.message = strdup(strings[1]);
	response = !(flags & 0x20);
	if (!response && o.type == OUTCOME_RATE_LIMITED)
		o.retry_after_s = status;
	if (response) {
		head.status = status;
		if (nstrings > 0 && strings[0][0])
			add_field(&head, "Content-Type", strings[0]);
		for (size_t i = 2; i + 1 < nstrings; i += 2) {
			add_field(&head, strings[i], strings[i + 1]);
			retry_after(strings[i + 1]);
			check_text(strings[i + 1], strlen(strings[i + 1]));
		}
		outcome_set_head(&o, &head);
		check_head(&o, &head);
		if (status & 2) {   /* a retried request's second head */
			outcome_set_head(&o, &head);
			check_head(&o, &head);
		}
		free_fields(&head);
		/* the body as it arrives: Content-Length, then reads */
		in = evbuffer_new();
		FUZZ_CHECK(in != NULL, "evbuffer_new");
		if (status & 1)   /* a Content-Length was given */
			outcome_body_reserve(&o, body_len);
		evbuffer_add(in, body, body_len / 2);
		outcome_body_append(&o, in);
		evbuffer_add(in, body + body_len / 2, body_len - body_len / 2);
		outcome_body_append(&o, in);
		outcome_body_trim(&o);
		evbuffer_free(in);
		FUZZ_CHECK(o.body_len == body_len && (body_len == 0 || memcmp(o.body, body, body_len) == 0),
		           "outcome body differs");
	}

	/* the answer to a batch of one */
	br = (flags & 0x40) ? &br_id : &br_plain;
	saved_mode = br->mode;
	br->mode = (flags & 1) ? BATCH_MODE_SETTLED : BATCH_MODE_ALL;
	out = evbuffer_new();
	FUZZ_CHECK(out != NULL, "evbuffer_new");
	http = answer_write_batch(out, br, &o, 12.5);
	FUZZ_CHECK(http == 200 || http == 502 || http == 503, "HTTP status %d", http);

	root = parse_answer(out);
	failure = outcome_is_failure(&o);
	FUZZ_CHECK(json_is_boolean(json_object_get(root, "ok")), "no ok");
	list = json_object_get(root, "results");
	if (!list)
		list = json_object_get(root, "errors");
	FUZZ_CHECK(json_is_array(list), "no results or errors");
	entry = json_array_get(list, 0);
	listed = entry ? json_incref(entry) : NULL;
	if (br->mode == BATCH_MODE_ALL && o.type != OUTCOME_OK && !failure) {
		/* cancelled or pending: listed by index only */
		FUZZ_CHECK(http == 503 && json_array_size(list) == 0, "cancelled entry");
	} else {
		FUZZ_CHECK(json_array_size(list) == 1, "%zu entries", json_array_size(list));
		FUZZ_CHECK(json_is_object(entry), "entry is not an object");
		if (flags & 0x40)
			FUZZ_CHECK(json_is_string(json_object_get(entry, "id")), "id lost");
		if (br->mode == BATCH_MODE_SETTLED && o.type != OUTCOME_OK)
			entry = json_object_get(entry, "error");
		FUZZ_CHECK(json_is_object(entry), "error is not an object");
		FUZZ_CHECK(o.body == NULL, "body not consumed");
		if (response) {
			check_headers(json_object_get(entry, "headers"));
			check_body(entry, body, body_len);
		} else {
			FUZZ_CHECK(!json_object_get(entry, "body"), "body without response");
		}
		if (o.type != OUTCOME_OK)
			FUZZ_CHECK(json_is_string(json_object_get(entry, "message")), "no message");
	}
	json_decref(root);

	/* the same entry as a streamed line */
	if (listed != NULL) {
		if (response && body_len > 0) {
			outcome_body_add(&o, body, body_len);
			outcome_body_trim(&o);
		}
		evbuffer_drain(out, evbuffer_get_length(out));
		answer_write_line(out, br, 0, &o);
		check_line(out, listed);
		json_decref(listed);
	}
	br->mode = saved_mode;

	/* the small error answer, with the message as the text */
	evbuffer_drain(out, evbuffer_get_length(out));
	answer_write_error(out, "bad_request", nstrings > 1 ? strings[1] : copy);
	json_decref(parse_answer(out));
	evbuffer_free(out);

	outcome_clear(&o);
	free(copy);
	return 0;
}
