/* pool_h1: an HTTP/1.1 connection of the pool (see pool.h) — its codec
 * (h1.c) made when ALPN or the key http2 picked HTTP/1.1, the one
 * exchange it carries at a time (its request serialised with the pool's
 * default headers, the codec's events turned into the exchange's), bytes
 * nobody asked for, and whether it goes idle or closes after each one. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "conn.h"
#include "h1.h"
#include "pool.h"
#include "pool_internal.h"
#include "xalloc.h"
#include "autoconf.h"

static const struct h1_limits head_limits = {
	.max_headers = POOL_MAX_HEADERS,
	.max_head_bytes = POOL_MAX_HEAD_BYTES,
};

/* --- the events of an HTTP/1.1 exchange ---------------------------------- */

static int on_h1_head(void *ctx, const struct exchange_head *head)
{
	struct pool_conn *c = ctx;

	return c->x->ops->head(c->x->ctx, head);
}

static int on_h1_body(void *ctx, const char *data, size_t len)
{
	struct pool_conn *c = ctx;

	return c->x->ops->body(c->x->ctx, data, len);
}

static void on_h1_end(void *ctx, bool reusable)
{
	struct pool_conn *c = ctx;
	struct pool_exchange *x = c->x;

	c->x = NULL;
	x->ops->end(x->ctx, reusable);
}

static void on_h1_fail(void *ctx, const struct h1_failure *why)
{
	static const enum exchange_fail_kind kinds[] = {
		[H1_FAIL_PROTOCOL] = EXCHANGE_FAIL_PROTOCOL,
		[H1_FAIL_TOO_LARGE] = EXCHANGE_FAIL_REFUSED,
		[H1_FAIL_CLOSED] = EXCHANGE_FAIL_CLOSED,
	};
	struct pool_conn *c = ctx;

	pool_deliver_fail(c->x, kinds[why->kind], 0, why->nothing_received, why->message);
}

static const struct h1_ops h1_events = {
	.head = on_h1_head, .body = on_h1_body, .end = on_h1_end, .fail = on_h1_fail,
};

/* --- requests --------------------------------------------------------------- */

/* The headers every request to the upstream carries unless it has its
 * own of that name, serialised once (again only if Host changed, which
 * one upstream key never makes it do). */
static const struct h1_block *block_for(struct pool *p, const char *host)
{
	struct h1_header lines[] = {
		{ "Host", host },
		{ "User-Agent", "fanoutd/" PACKAGE_VERSION },
		{ "Accept", "*/*" },
		/* as httpx: fetch.c undoes each of these (decode.c) */
		{ "Accept-Encoding", "gzip, deflate, br, zstd" },
	};

	if (p->block != NULL && strcmp(p->block_host, host) == 0)
		return p->block;
	h1_block_free(p->block);
	free(p->block_host);
	p->block = h1_block_new(lines, sizeof lines / sizeof lines[0]);
	p->block_host = xstrdup(host);
	return p->block;
}

/* Serialise x's request on an open HTTP/1.1 connection. */
static void write_h1(struct pool_conn *c, struct pool_exchange *x)
{
	const struct exchange_request *req = &x->req;
	const char *method = request_method_name(req->method);
	struct h1_request hr = {
		.method = method, .target = req->target,
		.block = block_for(c->pool, req->authority),
		/* laid out alike (h1.h) */
		.headers = (const struct h1_header *)req->headers, .nheaders = req->nheaders,
		.body = req->body, .body_len = req->body_len,
	};

	c->x = x;
	c->got_bytes = false;
	h1_begin(c->h1, method);
	h1_write_request(c->out, &hr);
}

/* --- the connection ----------------------------------------------------------- */

void pool_h1_become(struct pool_conn *c)
{
	c->h1 = h1_new(&h1_events, c, &head_limits);
	c->pool->opened_h1++;
	pool_conn_opened(c);
}

void pool_h1_start(struct pool_conn *c, struct pool_exchange *x)
{
	write_h1(c, x);
	x->ops->ready(x->ctx, "http/1.1");
	if (c->x == x && c->conn != NULL)
		conn_send(c->conn, c->out);
}

void pool_h1_send(struct pool_conn *c, struct pool_exchange *x)
{
	write_h1(c, x);
	conn_send(c->conn, c->out);
}

/* HTTP/1.1 bytes when nothing was asked: the connection is not to be
 * trusted with another request. */
static void stray_bytes(struct pool_conn *c, struct evbuffer *in)
{
	evbuffer_drain(in, evbuffer_get_length(in));
	if (c->state == POOL_CONN_IDLE)
		pool_conn_retire(c, "bytes nobody asked for");
	else
		h1_cancel(c->h1);   /* never reused: pool_release sees it */
}

void pool_h1_read(struct pool_conn *c, struct evbuffer *in)
{
	if (c->x == NULL) {
		stray_bytes(c, in);
		return;
	}
	c->got_bytes = true;
	h1_feed_buffer(c->h1, in);
}

void pool_h1_lost(struct pool_conn *c, enum exchange_fail_kind kind, int err,
                  const char *message)
{
	struct pool_exchange *x = c->x;

	if (x != NULL && c->h1 != NULL)
		h1_cancel(c->h1);
	if (x != NULL)
		pool_deliver_fail(x, kind, err, !c->got_bytes, message);
	else if (c->state == POOL_CONN_IDLE)
		pool_conn_retire(c, message);
}

void pool_h1_release(struct pool_conn *c, struct pool_exchange *x, bool reusable)
{

	if (c->x == x) {   /* still under way (or not sent): abandoned */
		if (c->h1 != NULL)
			h1_cancel(c->h1);
		c->x = NULL;
		reusable = false;
	}
	if (c->state == POOL_CONN_DEAD)
		return;
	if (!reusable || !c->open || c->h1 == NULL || !h1_reusable(c->h1)) {
		pool_conn_retire(c, reusable ? "closed by the upstream" : "not reusable after this exchange");
		return;
	}
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	pool_conn_make_idle(c, "kept alive");
}
