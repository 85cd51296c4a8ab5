/* fuzz_h1: the HTTP/1.1 codec's answer side (src/h1.c): what any upstream
 * bytes become as events.
 *
 * Input layout: byte 0 picks how to feed: bits 0-5 the split (pieces of
 * 1 + byte0 % 64 bytes; byte0 == 0 feeds it whole), bit 6 asks for the
 * answer to a HEAD, bit 7 feeds the pieces as the chains of one evbuffer
 * (h1_feed_buffer) instead of one h1_feed call each.  The rest is what
 * the upstream sends; then the connection reaches EOF.  Fed piece by
 * piece, an answer that ends reusable is followed by the next exchange
 * (up to 4) on the rest of the input.
 *
 * Checks, per exchange: at most one head, with a status of 200..999,
 * unique lower-case names and no CR or LF in a value; body bytes only after the head and never more
 * in total than the cap the body callback enforces; after EOF exactly one
 * of end or fail, never a callback after it; an end agrees with
 * h1_reusable() and with the head's Content-Length; too_large only when a
 * callback refused. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz.h"
#include "h1.h"

#include <stdbool.h>
#include <string.h>

#include <event2/buffer.h>

#define BODY_CAP 4096
#define MAX_EXCHANGES 4

static const struct h1_limits lim = { .max_headers = 32, .max_head_bytes = 2048 };

struct watch {
	int heads, ends, fails;
	bool reusable;
	bool refused;          /* a callback said no */
	int64_t content_length;
	size_t body;
};

static void check_fields(const struct exchange_head *head)
{
	size_t i, j, k;

	for (i = 0; i < head->nfields; i++) {
		const struct exchange_field *f = &head->fields[i];

		FUZZ_CHECK(f->name_len > 0, "an empty header name");
		for (k = 0; k < f->name_len; k++)
			FUZZ_CHECK(!(f->name[k] >= 'A' && f->name[k] <= 'Z'),
			           "upper case in a header name");
		FUZZ_CHECK(memchr(f->value, '\r', f->value_len) == NULL &&
		           memchr(f->value, '\n', f->value_len) == NULL, "CR or LF in a value");
		for (j = 0; j < i; j++)
			FUZZ_CHECK(f->name_len != head->fields[j].name_len ||
			           memcmp(f->name, head->fields[j].name, f->name_len) != 0,
			           "header %.*s twice", (int)f->name_len, f->name);
	}
}

static int on_head(void *ctx, const struct exchange_head *head)
{
	struct watch *w = ctx;

	FUZZ_CHECK(w->heads == 0, "a second head");
	FUZZ_CHECK(w->ends + w->fails == 0, "a head after the end");
	FUZZ_CHECK(head->status >= 200 && head->status <= 999, "status %d", head->status);
	FUZZ_CHECK(head->content_length >= -1, "content_length %lld",
	           (long long)head->content_length);
	check_fields(head);
	w->heads++;
	w->content_length = head->content_length;
	if (head->content_length > BODY_CAP) {
		w->refused = true;
		return -1;
	}
	return 0;
}

static int on_body(void *ctx, const char *data, size_t len)
{
	struct watch *w = ctx;

	(void)data;
	FUZZ_CHECK(w->heads == 1, "body before the head");
	FUZZ_CHECK(w->ends + w->fails == 0, "body after the end");
	FUZZ_CHECK(len > 0, "an empty body piece");
	if (w->body + len > BODY_CAP) {
		w->refused = true;
		return -1;
	}
	w->body += len;
	return 0;
}

static void on_end(void *ctx, bool reusable)
{
	struct watch *w = ctx;

	FUZZ_CHECK(w->heads == 1, "an end without a head");
	FUZZ_CHECK(w->ends + w->fails == 0, "a second end");
	FUZZ_CHECK(w->content_length < 0 || (size_t)w->content_length == w->body,
	           "Content-Length %lld, %zu bytes of body", (long long)w->content_length, w->body);
	w->ends++;
	w->reusable = reusable;
}

static void on_fail(void *ctx, const struct h1_failure *why)
{
	struct watch *w = ctx;

	FUZZ_CHECK(w->ends + w->fails == 0, "a fail after the end");
	FUZZ_CHECK(why->message != NULL && why->message[0] != '\0', "no message");
	FUZZ_CHECK(why->kind != H1_FAIL_TOO_LARGE || w->refused, "too_large unasked");
	FUZZ_CHECK(!why->nothing_received || why->kind == H1_FAIL_CLOSED,
	           "nothing received, but not closed");
	w->fails++;
}

static const struct h1_ops ops = { on_head, on_body, on_end, on_fail };

static void check_over(const struct h1 *h, const struct watch *w)
{
	FUZZ_CHECK(w->ends + w->fails == 1, "%d ends and %d fails after EOF", w->ends, w->fails);
	FUZZ_CHECK(w->body <= BODY_CAP, "%zu body bytes over the cap", w->body);
	if (w->fails)
		FUZZ_CHECK(!h1_reusable(h), "reusable after a fail");
}

/* All of data as chains of one evbuffer: one exchange, the rest excess. */
static void feed_chains(struct h1 *h, const char *data, size_t size, size_t step,
                        struct watch *w)
{
	struct evbuffer *buf = evbuffer_new();
	size_t off, n;

	for (off = 0; off < size; off += n) {
		n = step < size - off ? step : size - off;
		evbuffer_add_reference(buf, data + off, n, NULL, NULL);
	}
	h1_feed_buffer(h, buf);
	FUZZ_CHECK(evbuffer_get_length(buf) == 0, "bytes left in the buffer");
	if (w->ends)
		FUZZ_CHECK(w->reusable == h1_reusable(h), "end says %d, h1_reusable %d",
		           (int)w->reusable, (int)h1_reusable(h));
	h1_eof(h);
	check_over(h, w);
	evbuffer_free(buf);
}

/* Piece by piece; a reusable end starts the next exchange on the rest. */
static void feed_stream(struct h1 *h, const char *data, size_t size, size_t step,
                        struct watch *w)
{
	size_t off = 0, n;
	int exchanges = 1;

	while (off < size) {
		n = step < size - off ? step : size - off;
		h1_feed(h, data + off, n);
		off += n;
		if (w->ends + w->fails == 0)
			continue;
		check_over(h, w);
		if (!h1_reusable(h) || exchanges == MAX_EXCHANGES)
			break;
		FUZZ_CHECK(w->reusable, "fit after an end that was not reusable");
		memset(w, 0, sizeof *w);
		h1_begin(h, "GET");
		exchanges++;
	}
	/* bytes after the last exchange, then EOF: no callback any more */
	if (off < size)
		h1_feed(h, data + off, size - off);
	h1_eof(h);
	check_over(h, w);
	FUZZ_CHECK(!h1_reusable(h), "fit after EOF");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct watch w = { 0 };
	struct h1 *h;
	size_t step;

	if (size < 1)
		return 0;
	step = data[0] == 0 ? size : 1 + (size_t)(data[0] % 64);
	h = h1_new(&ops, &w, &lim);
	h1_begin(h, data[0] & 0x40 ? "HEAD" : "GET");
	if (data[0] & 0x80)
		feed_chains(h, (const char *)data + 1, size - 1, step, &w);
	else
		feed_stream(h, (const char *)data + 1, size - 1, step, &w);
	h1_free(h);
	return 0;
}
