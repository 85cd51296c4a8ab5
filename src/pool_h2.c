/* pool_h2: an HTTP/2 connection of the pool (see pool.h) — its
 * session (h2.c) made when ALPN or the key http2 picked h2, its streams
 * turned into the exchanges of the fetches they carry, its frames sent
 * from one deferred event per connection (never from inside nghttp2's
 * callbacks) and held back while the socket has not taken the last ones,
 * and what the connection does once a stream ends: carry another, go
 * idle, or close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn.h"
#include "h2.h"
#include "log.h"
#include "pool.h"
#include "pool_internal.h"
#include "xalloc.h"
#include "autoconf.h"

/* What an HTTP/2 request carries unless it has its own (as block_for's). */
static const struct request_header h2_defaults[] = {
	{ "user-agent", "fanoutd/" PACKAGE_VERSION },
	{ "accept", "*/*" },
	{ "accept-encoding", "gzip, deflate, br, zstd" },
};

/* Frames moved out of an HTTP/2 session per flush: enough to fill a
 * socket buffer, little enough that one busy connection leaves the loop
 * to the others. */
#define H2_FLUSH_BYTES (64 * 1024)


/* --- the events of an HTTP/2 stream --------------------------------------- */

/* A stream's events go to its exchange (the stream's ctx); its last one
 * first detaches it, so pool_release from inside is a no-op for it. */
static int on_stream_head(void *ctx, const struct exchange_head *head)
{
	struct pool_exchange *x = ctx;

	return x->ops->head(x->ctx, head);
}

static int on_stream_body(void *ctx, const char *data, size_t len)
{
	struct pool_exchange *x = ctx;

	return x->ops->body(x->ctx, data, len);
}

static void on_stream_end(void *ctx, bool reusable)
{
	struct pool_exchange *x = ctx;

	x->stream_id = 0;
	x->ops->end(x->ctx, reusable);
}

static void on_stream_fail(void *ctx, const struct h2_failure *h2why)
{
	struct pool_exchange *x = ctx;
	struct exchange_failure why = h2why->why;

	why.unprocessed = h2why->unprocessed;
	if (why.unprocessed && x->conn != NULL)
		x->conn->pool->refused++;
	x->stream_id = 0;
	x->ops->fail(x->ctx, &why);
}

static const struct h2_stream_ops stream_events = {
	.head = on_stream_head, .body = on_stream_body,
	.end = on_stream_end, .fail = on_stream_fail,
};


static void on_h2_want_write(void *ctx)
{
	struct pool_conn *c = ctx;

	if (!c->flush_blocked)
		event_active(c->flush, EV_WRITE, 0);
}

static void on_h2_settings(void *ctx)
{
	struct pool_conn *c = ctx;

	conn_debug(c, "HTTP/2 SETTINGS: %zu streams free", h2_streams_free(c->h2));
	pool_conn_opened(c);   /* wakes the waiters: the streams may be theirs */
}

static void on_h2_goaway(void *ctx, int32_t last_stream_id, uint32_t error_code)
{
	struct pool_conn *c = ctx;

	c->pool->goaways++;
	conn_debug(c, "GOAWAY (error %u, last stream %d): no new streams here",
	           (unsigned)error_code, (int)last_stream_id);
	pool_conn_opened(c);
}

static const struct h2_ops h2_events = {
	.want_write = on_h2_want_write, .settings = on_h2_settings, .goaway = on_h2_goaway,
};

/* Move the session's frames to the socket: from the connection's own
 * deferred event only.  What the socket has not taken yet holds the rest
 * back (drained brings us back), so a slow upstream cannot make us queue
 * without bound. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct pool_conn *c = arg;
	int more;

	(void)fd;
	(void)what;
	if (c->state == POOL_CONN_DEAD || !c->open)
		return;
	if (conn_unsent(c->conn) >= H2_FLUSH_BYTES) {
		c->flush_blocked = true;   /* on_drained brings us back */
		return;
	}
	c->in_codec = true;
	more = h2_pending_output(c->h2, c->out, H2_FLUSH_BYTES);
	c->in_codec = false;
	conn_send(c->conn, c->out);
	if (more < 0) {
		pool_conn_retire(c, "HTTP/2 session failed");
		return;
	}
	if (more > 0 && c->conn != NULL && conn_unsent(c->conn) == 0)
		event_active(c->flush, EV_WRITE, 0);   /* all taken: go on, from the loop */
	else if (more > 0)
		c->flush_blocked = true;
	pool_h2_settle(c);
}

/* The socket took what was waiting: send more. */
void pool_h2_drained(void *ctx)
{
	struct pool_conn *c = ctx;

	if (c->proto != POOL_PROTO_H2 || !c->flush_blocked)
		return;
	c->flush_blocked = false;
	event_active(c->flush, EV_WRITE, 0);
}

/* After the codec has run or a stream was let go: an HTTP/2 connection
 * that will carry nothing more is closed; one that carries no stream now
 * goes idle; a stream freed lets a waiter have it. */
void pool_h2_settle(struct pool_conn *c)
{
	struct pool *p = c->pool;

	if (c->state == POOL_CONN_DEAD || c->in_codec || c->proto != POOL_PROTO_H2)
		return;
	if (h2_finished(c->h2)) {
		pool_conn_retire(c, "the HTTP/2 session is over");
		return;
	}
	if (h2_streams_attached(c->h2) > 0 || c->state != POOL_CONN_BUSY || c->x != NULL) {
		if (h2_can_submit(c->h2))
			pool_serve_waiters(p);
		return;
	}
	if (c->opening) {
		/* its first stream ended and the server never sent SETTINGS: not
		 * a connection to keep, nor to hold the waiters back for */
		pool_conn_retire(c, "no SETTINGS from the upstream");
		return;
	}
	if (!c->open || c->draining || !h2_can_submit(c->h2)) {
		pool_conn_retire(c, c->draining ? "drained after a reload"
		                      : "no more streams on this connection");
		return;
	}
	pool_conn_make_idle(c, "no stream in flight");
}

void pool_h2_become(struct pool_conn *c)
{
	struct pool *p = c->pool;
	struct h2_settings hs = {
		.max_streams = p->settings.h2_max_streams > 0 ? (size_t)p->settings.h2_max_streams : 0,
		.max_body = p->settings.max_body,
		.max_header_list = (size_t)POOL_MAX_HEAD_BYTES,
		.max_headers = (size_t)POOL_MAX_HEADERS,
		.defaults = h2_defaults,
		.ndefaults = sizeof h2_defaults / sizeof h2_defaults[0],
	};

	c->proto = POOL_PROTO_H2;
	c->h2 = h2_new(&h2_events, c, &hs);
	c->flush = xcheck(event_new(p->base, -1, 0, on_flush, c));
	LIST_INSERT_HEAD(&p->h2_conns, c, h2_link);
	p->opened_h2++;
	/* opening until the server's SETTINGS say how many streams */
}

/* Open x's stream (nghttp2 copies the request). */
bool pool_h2_submit(struct pool_conn *c, struct pool_exchange *x)
{
	const char *scheme = c->pool->settings.ssl_ctx != NULL ? "https" : "http";

	x->stream_id = h2_submit(c->h2, &x->req, scheme, &stream_events, x);
	return x->stream_id > 0;
}

/* The first exchange of a new HTTP/2 connection; the preface, SETTINGS
 * and its HEADERS go out together. */
void pool_h2_start(struct pool_conn *c, struct pool_exchange *x)
{
	c->x = NULL;
	x->ops->ready(x->ctx, "h2");
	if (x->conn != c)
		return;   /* released from inside ready */
	if (!pool_h2_submit(c, x)) {
		pool_deliver_fail(x, EXCHANGE_FAIL_PROTOCOL, 0, true, "cannot open an HTTP/2 stream");
		return;
	}
	event_active(c->flush, EV_WRITE, 0);
}

void pool_h2_read(struct pool_conn *c, struct evbuffer *in)
{
	bool more;

	c->in_codec = true;
	more = h2_feed_buffer(c->h2, in);
	c->in_codec = false;
	if (!more)
		event_active(c->flush, EV_WRITE, 0);   /* the GOAWAY, then the close */
	pool_h2_settle(c);
}

void pool_h2_lost(struct pool_conn *c, enum exchange_fail_kind kind, int err,
                  const char *message)
{
	c->in_codec = true;
	if (kind == EXCHANGE_FAIL_CLOSED)
		h2_eof(c->h2);
	else
		h2_fail_all(c->h2, kind, err, message);
	c->in_codec = false;
	pool_conn_retire(c, message);
}

void pool_h2_release(struct pool_conn *c, struct pool_exchange *x)
{
	if (x->stream_id > 0 && c->state != POOL_CONN_DEAD)
		h2_cancel(c->h2, x->stream_id);   /* RST_STREAM CANCEL, no callback */
	x->stream_id = 0;
	pool_h2_settle(c);
}
