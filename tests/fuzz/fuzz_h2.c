/* fuzz_h2: the HTTP/2 codec (src/h2.c): what any server bytes become as
 * the events of a client session carrying a few streams.
 *
 * Input layout: byte 0 picks how to feed: bits 0-5 the split (pieces of
 * byte0 % 64 bytes; 0 feeds it whole), bit 6: raw (the
 * input is all the server sends) instead of after a valid server preface
 * (an empty SETTINGS and the ACK of ours, fed by the harness first), bit
 * 7 feeds the pieces as the chains of one evbuffer (h2_feed_buffer).
 * Byte 1: bits 0-1 the streams (1-4; in raw mode one until the server's
 * SETTINGS allow more), bit 2 the first is a HEAD, bit 3 the second a
 * POST with a body, bit 4 cancels the last after the first piece, bit 5
 * ends with h2_eof instead of h2_fail_all, bit 6 flushes the output after
 * every piece, bit 7 flushes it 64 bytes at a time.  The rest is what the
 * server sends.
 *
 * Checks, per stream: at most one head, status 200..999, unique lower-case
 * names, no CR or LF in a value; body only after the head, never over the
 * cap the callbacks enforce; no event after the end, the fail or a
 * cancel; an end agrees with the head's content length; refused only
 * when a callback said no; unprocessed only with nothing received.  Per
 * connection: h2_feed false means every stream has failed; GOAWAY fails
 * the streams above last_stream_id at once; after h2_eof or h2_fail_all
 * every stream not cancelled has ended exactly once.
 *
 * The seeds (corpus/h2/) are server frame sequences made by hand, one
 * scenario each and named for it (HPACK from the static table and
 * literals); refused_after_head is a finding (REFUSED_STREAM after a
 * head was taken for "never processed"). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz.h"
#include "h2.h"

#include <stdbool.h>
#include <string.h>

#include <event2/buffer.h>

#define BODY_CAP 4096
#define MAX_STREAMS 4

/* The server preface the harness feeds before a non-raw input. */
static const char preface[] =
	"\x00\x00\x00\x04\x00\x00\x00\x00\x00"    /* SETTINGS, empty */
	"\x00\x00\x00\x04\x01\x00\x00\x00\x00";   /* SETTINGS ACK */
#define PREFACE_LEN 18

struct watch {
	int32_t id;
	int heads, ends, fails;
	bool cancelled;
	bool refused;           /* a callback said no */
	int64_t content_length;
	size_t body;
};

struct conn {
	struct h2 *h;
	struct watch w[MAX_STREAMS];
	int nstreams, submitted;
	uint8_t mode;           /* byte 1 */
	struct evbuffer *out;
	bool goaway;
	int32_t goaway_last;
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
		FUZZ_CHECK(f->name[0] != ':', "a pseudo-header in the head");
		FUZZ_CHECK(memchr(f->value, '\r', f->value_len) == NULL &&
		           memchr(f->value, '\n', f->value_len) == NULL, "CR or LF in a value");
		for (j = 0; j < i; j++)
			FUZZ_CHECK(f->name_len != head->fields[j].name_len ||
			           memcmp(f->name, head->fields[j].name, f->name_len) != 0,
			           "header %.*s twice", (int)f->name_len, f->name);
	}
}

static void check_live(const struct watch *w, const char *what)
{
	FUZZ_CHECK(!w->cancelled, "%s after a cancel (stream %d)", what, (int)w->id);
	FUZZ_CHECK(w->ends + w->fails == 0, "%s after the end (stream %d)", what, (int)w->id);
}

static int on_head(void *ctx, const struct exchange_head *head)
{
	struct watch *w = ctx;

	check_live(w, "a head");
	FUZZ_CHECK(w->heads == 0, "a second head");
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
	check_live(w, "body");
	FUZZ_CHECK(w->heads == 1, "body before the head");
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

	check_live(w, "an end");
	FUZZ_CHECK(reusable, "an end not reusable");
	FUZZ_CHECK(w->heads == 1, "an end without a head");
	FUZZ_CHECK(w->content_length < 0 || (size_t)w->content_length == w->body,
	           "content-length %lld, %zu bytes of body", (long long)w->content_length, w->body);
	w->ends++;
}

static void on_fail(void *ctx, const struct h2_failure *why)
{
	struct watch *w = ctx;

	check_live(w, "a fail");
	FUZZ_CHECK(why->why.message != NULL && why->why.message[0] != '\0', "no message");
	FUZZ_CHECK(why->why.kind != EXCHANGE_FAIL_REFUSED || w->refused, "refused unasked");
	FUZZ_CHECK(!why->unprocessed || why->why.nothing_received,
	           "unprocessed, but something received");
	FUZZ_CHECK(!why->unprocessed || w->heads == 0, "unprocessed after a head");
	w->fails++;
}

static const struct h2_stream_ops stream_ops = { on_head, on_body, on_end, on_fail };

static void on_want_write(void *ctx)
{
	(void)ctx;
}

static void on_goaway(void *ctx, int32_t last, uint32_t code)
{
	struct conn *c = ctx;

	(void)code;
	c->goaway = true;
	c->goaway_last = last;
}

static const struct h2_ops conn_ops = { .want_write = on_want_write, .goaway = on_goaway };

static const struct request_header defaults[] = { { "user-agent", "fuzz" } };

/* Submit the streams the session has room for. */
static void submit_more(struct conn *c)
{
	struct exchange_request req = {
		.method = REQUEST_METHOD_GET, .authority = "fuzz.example", .target = "/",
	};
	struct watch *w;

	while (c->submitted < c->nstreams && h2_can_submit(c->h)) {
		w = &c->w[c->submitted];
		req.method = REQUEST_METHOD_GET;
		req.body = NULL;
		req.body_len = 0;
		if (c->submitted == 0 && (c->mode & 0x04))
			req.method = REQUEST_METHOD_HEAD;
		if (c->submitted == 1 && (c->mode & 0x08)) {
			req.method = REQUEST_METHOD_POST;
			req.body = "a body of a post";
			req.body_len = 16;
		}
		w->id = h2_submit(c->h, &req, "https", &stream_ops, w);
		FUZZ_CHECK(w->id > 0, "h2_submit failed with room");
		c->submitted++;
	}
}

static void flush(struct conn *c)
{
	size_t limit = (c->mode & 0x80) ? 64 : 0;
	int rc;

	do {
		rc = h2_pending_output(c->h, c->out, limit);
		evbuffer_drain(c->out, evbuffer_get_length(c->out));
	} while (rc == 1);
}

/* Invariants that hold between pieces. */
static void check_between(struct conn *c, bool alive)
{
	int i;

	if (!alive)
		FUZZ_CHECK(h2_streams_attached(c->h) == 0, "h2_feed false, %zu streams attached",
		           h2_streams_attached(c->h));
	for (i = 0; c->goaway && i < c->submitted; i++)
		if (c->w[i].id > c->goaway_last && !c->w[i].cancelled)
			FUZZ_CHECK(c->w[i].ends + c->w[i].fails == 1,
			           "stream %d above GOAWAY's %d still open", (int)c->w[i].id,
			           (int)c->goaway_last);
}

static void after_piece(struct conn *c, bool alive, bool first)
{
	struct watch *last;

	check_between(c, alive);
	if (first && (c->mode & 0x10) && c->submitted > 0) {
		last = &c->w[c->submitted - 1];
		if (last->ends + last->fails == 0) {
			h2_cancel(c->h, last->id);
			last->cancelled = true;
		}
	}
	submit_more(c);
	if (c->mode & 0x40)
		flush(c);
}

static void feed_pieces(struct conn *c, const char *data, size_t size, size_t step, bool chains)
{
	struct evbuffer *buf = evbuffer_new();
	size_t off, n;
	bool alive = true, first = true;

	for (off = 0; off < size; off += n) {
		n = step < size - off ? step : size - off;
		if (chains) {
			evbuffer_add_reference(buf, data + off, n, NULL, NULL);
			continue;
		}
		alive = h2_feed(c->h, data + off, n);
		after_piece(c, alive, first);
		first = false;
	}
	if (chains) {
		alive = h2_feed_buffer(c->h, buf);
		FUZZ_CHECK(evbuffer_get_length(buf) == 0, "bytes left in the buffer");
		after_piece(c, alive, true);
	}
	evbuffer_free(buf);
}

static void check_over(struct conn *c)
{
	int i;

	FUZZ_CHECK(h2_streams_attached(c->h) == 0, "%zu streams attached at the end",
	           h2_streams_attached(c->h));
	FUZZ_CHECK(!h2_can_submit(c->h), "room for a stream after the end");
	for (i = 0; i < c->submitted; i++) {
		struct watch *w = &c->w[i];

		if (w->cancelled)
			FUZZ_CHECK(w->ends + w->fails == 0, "an event for a cancelled stream");
		else
			FUZZ_CHECK(w->ends + w->fails == 1, "stream %d: %d ends and %d fails",
			           (int)w->id, w->ends, w->fails);
		FUZZ_CHECK(w->body <= BODY_CAP, "%zu body bytes over the cap", w->body);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h2_settings s = {
		.max_streams = MAX_STREAMS, .max_body = BODY_CAP, .max_header_list = 2048,
		.max_headers = 32, .defaults = defaults, .ndefaults = 1,
	};
	struct conn c;
	size_t step;

	if (size < 2)
		return 0;
	memset(&c, 0, sizeof c);
	step = data[0] % 64 == 0 ? size : (size_t)(data[0] % 64);
	c.mode = data[1];
	c.nstreams = 1 + (data[1] & 0x03);
	c.out = evbuffer_new();
	c.h = h2_new(&conn_ops, &c, &s);
	submit_more(&c);   /* one until the server's SETTINGS */
	flush(&c);
	if (!(data[0] & 0x40)) {
		FUZZ_CHECK(h2_feed(c.h, preface, PREFACE_LEN), "the preface failed");
		submit_more(&c);
		FUZZ_CHECK(c.submitted == c.nstreams, "%d of %d streams after the preface",
		           c.submitted, c.nstreams);
		flush(&c);
	}
	feed_pieces(&c, (const char *)data + 2, size - 2, step, (data[0] & 0x80) != 0);
	flush(&c);
	if (c.mode & 0x20)
		h2_eof(c.h);
	else
		h2_fail_all(c.h, EXCHANGE_FAIL_RESET, 104, "connection reset");
	check_over(&c);
	h2_free(c.h);
	evbuffer_free(c.out);
	return 0;
}
