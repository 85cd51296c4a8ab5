/* pool: the connections of one upstream (see pool.h): opening them,
 * their state, the idle list and its reaping, the pools a reload reaches.
 * An idle connection is reused LIFO (the most recently used is the least
 * likely to have been closed by the upstream); it is dropped when its idle
 * timer fires, when the upstream closes it (or, in HTTP/1.1, sends a byte
 * nobody asked for), or when a reload puts its address in deny_networks.
 * Fetches that find no connection to be had wait (pool_wait.c).
 *
 * The events of an exchange come from two places, turned into one
 * stream: the connection (opened, failed, closed: here) and the codec
 * (head, body, end, malformed: pool_h1.c, pool_h2.c, picked here when the
 * connection opens).  The exchange is detached before its last event is
 * delivered, so the fetch may release it from inside that event. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "acl.h"
#include "clock.h"
#include "conn.h"
#include "h1.h"
#include "h2.h"
#include "log.h"
#include "netaddr.h"
#include "pool.h"
#include "pool_internal.h"
#include "xalloc.h"
#include "autoconf.h"

/* The protocols ALPN offers, by the key http2. */
static const char *const alpn_auto[] = { "h2", "http/1.1", NULL };
static const char *const alpn_h1[] = { "http/1.1", NULL };
static const char *const alpn_h2[] = { "h2", NULL };

/* Every pool, so that a reload can reach each idle connection whichever
 * upstream it belongs to (the upstreams' table is upstream.c's). */
static LIST_HEAD(, pool) all_pools = LIST_HEAD_INITIALIZER(all_pools);

static void reap(evutil_socket_t fd, short what, void *arg);

/* --- the state of a connection ----------------------------------------- */

/* "127.0.0.1:8080 c5": the upstream's address and the connection. */
void pool_describe_conn(const void *obj, char *buf, size_t len)
{
	const struct pool_conn *c = obj;
	char addr[NETADDR_TEXT_MAX + 8];

	netaddr_format((const struct sockaddr *)&c->peer, addr, sizeof addr);
	snprintf(buf, len, "%s c%lu", addr, c->id);
}

static const char *state_name(enum pool_conn_state s)
{
	static const char *names[] = {
		[POOL_CONN_BUSY] = "busy", [POOL_CONN_IDLE] = "idle", [POOL_CONN_DEAD] = "dead",
	};

	return names[s];
}

/* Every change of c->state: busy <-> idle, either -> dead, never back. */
static void set_state(struct pool_conn *c, enum pool_conn_state to, const char *why)
{
	assert(c->state != POOL_CONN_DEAD && to != c->state);
	conn_debug(c, "%s -> %s: %s", state_name(c->state), state_name(to), why);
	c->state = to;
}

/* --- pools ------------------------------------------------------------- */

struct pool *pool_new(struct event_base *base, const struct pool_settings *ps)
{
	struct pool *p = xcalloc(1, sizeof *p);

	p->base = base;
	p->settings = *ps;
	p->reaper = xcheck(evtimer_new(base, reap, p));
	pool_wait_setup(p);
	LIST_INIT(&p->h2_conns);
	LIST_INSERT_HEAD(&all_pools, p, all);
	return p;
}


/* The key http2 changed: the connections open now may speak what it no
 * longer allows; new ones pick again. */
static void drain_all(struct pool *p)
{
	struct pool_conn *c, *next;

	for (c = p->idle_head; c != NULL; c = next) {
		next = c->next_idle;
		pool_conn_retire(c, "http2 changed (reload)");
	}
	LIST_FOREACH(c, &p->h2_conns, h2_link)
		c->draining = true;
	p->seen = POOL_PROTO_NONE;
}

void pool_configure(struct pool *p, const struct pool_settings *ps)
{
	bool changed = ps->http2 != p->settings.http2;

	p->settings = *ps;
	if (changed)
		drain_all(p);
	pool_serve_waiters(p);   /* the cap may be higher now */
}

static void free_conn(struct pool_conn *c)
{
	h1_free(c->h1);
	h2_free(c->h2);
	evbuffer_free(c->out);
	if (c->flush != NULL)
		event_free(c->flush);
	event_free(c->idle_timer);
	free(c);
}

/* No longer opening: connected as HTTP/1.1, HTTP/2's first SETTINGS in,
 * or gone.  Waiters held back for it may go on. */
void pool_conn_opened(struct pool_conn *c)
{
	if (!c->opening)
		return;
	c->opening = false;
	c->pool->nopening--;
	pool_serve_waiters(c->pool);
}

static void unlink_idle(struct pool_conn *c)
{
	struct pool *p = c->pool;

	if (c->state != POOL_CONN_IDLE)
		return;
	if (c->prev_idle != NULL)
		c->prev_idle->next_idle = c->next_idle;
	else
		p->idle_head = c->next_idle;
	if (c->next_idle != NULL)
		c->next_idle->prev_idle = c->prev_idle;
	c->next_idle = c->prev_idle = NULL;
	p->nidle--;
	evtimer_del(c->idle_timer);
}

/* Close now (the descriptor is free at once), free the rest later: we
 * may be inside one of this connection's callbacks. */
void pool_conn_retire(struct pool_conn *c, const char *why)
{
	struct pool *p = c->pool;

	unlink_idle(c);
	set_state(c, POOL_CONN_DEAD, why);
	pool_conn_opened(c);
	if (c->proto == POOL_PROTO_H2)
		LIST_REMOVE(c, h2_link);
	conn_free(c->conn);
	c->conn = NULL;
	c->open = false;
	c->x = NULL;
	p->nconns--;
	c->next_dead = p->dead;
	p->dead = c;
	event_active(p->reaper, EV_TIMEOUT, 0);
}

/* An open connection that can carry one more exchange now, in use: an
 * HTTP/2 one with a stream free first (fewer connections), else the most
 * recently used idle one. */
struct pool_conn *pool_take_available(struct pool *p)
{
	struct pool_conn *c;

	LIST_FOREACH(c, &p->h2_conns, h2_link)
		if (c->state == POOL_CONN_BUSY && c->open && !c->draining && h2_can_submit(c->h2))
			return c;
	while ((c = p->idle_head) != NULL) {
		unlink_idle(c);
		if (c->proto == POOL_PROTO_H2 && !h2_can_submit(c->h2)) {
			set_state(c, POOL_CONN_BUSY, "taken");
			pool_conn_retire(c, "no more streams on this connection");
			continue;
		}
		set_state(c, POOL_CONN_BUSY, "reused");
		return c;
	}
	return NULL;
}

/* c carries nothing now: first in the idle list, its idle timer
 * running; a waiter can have it (from the wait timer, not from inside
 * c's callbacks). */
void pool_conn_make_idle(struct pool_conn *c, const char *why)
{
	struct pool *p = c->pool;
	struct timeval tv;

	set_state(c, POOL_CONN_IDLE, why);
	c->prev_idle = NULL;
	c->next_idle = p->idle_head;
	if (p->idle_head != NULL)
		p->idle_head->prev_idle = c;
	p->idle_head = c;
	p->nidle++;
	tv = clock_timeval((double)p->settings.keepalive_timeout_ms);
	evtimer_add(c->idle_timer, &tv);
	pool_serve_waiters(p);
}

/* Idle connections of other pools hold descriptors that waiters need
 * more: close up to n of them, each pool's least recently used first. */
void pool_evict_idle(struct pool *self, unsigned n)
{
	struct pool *p;
	struct pool_conn *c;

	LIST_FOREACH(p, &all_pools, all) {
		while (p != self && n > 0 && (c = p->idle_head) != NULL) {
			while (c->next_idle != NULL)
				c = c->next_idle;
			pool_conn_retire(c, "closed to free a descriptor for another upstream");
			n--;
		}
	}
}

/* --- the events of an exchange -------------------------------------------- */

/* Detach the exchange, then tell it how it ended. */
void pool_deliver_fail(struct pool_exchange *x, enum exchange_fail_kind kind, int err,
                         bool nothing_received, const char *message)
{
	struct exchange_failure why = {
		.kind = kind, .err = err, .nothing_received = nothing_received,
		.message = message,
	};

	if (x->conn != NULL && x->conn->x == x)
		x->conn->x = NULL;
	x->ops->fail(x->ctx, &why);
}

/* --- the connection's events ---------------------------------------------- */

/* Which codec: ALPN's choice, or the key http2 on a plain connection. */
static enum pool_proto pick_proto(const struct pool_conn *c, const char *alpn)
{
	const struct pool_settings *ps = &c->pool->settings;

	if (alpn != NULL)
		return strcmp(alpn, "h2") == 0 ? POOL_PROTO_H2 : POOL_PROTO_H1;
	if (ps->ssl_ctx == NULL && ps->http2 == POOL_HTTP2_PRIOR)
		return POOL_PROTO_H2;
	return POOL_PROTO_H1;
}

static void on_connected(void *ctx, const char *alpn)
{
	struct pool_conn *c = ctx;
	struct pool *p = c->pool;
	struct pool_exchange *x = c->x;

	c->open = true;
	c->proto = pick_proto(c, alpn);
	if (c->proto == POOL_PROTO_H1 && p->settings.http2 == POOL_HTTP2_PRIOR) {
		c->x = NULL;
		pool_deliver_fail(x, EXCHANGE_FAIL_PROTOCOL, 0, true, alpn != NULL
		             ? "upstream picked http/1.1, not h2, by ALPN (http2 = prior-knowledge)"
		             : "upstream picked no protocol by ALPN, not h2 (http2 = prior-knowledge)");
		return;
	}
	p->seen = c->proto;
	if (c->proto == POOL_PROTO_H2) {
		pool_h2_become(c);
	} else {
		pool_h1_become(c);
	}
	if (x == NULL)
		return;   /* abandoned while connecting */
	if (c->proto == POOL_PROTO_H2)
		pool_h2_start(c, x);
	else
		pool_h1_start(c, x);
}

static void on_readable(void *ctx, struct evbuffer *in)
{
	struct pool_conn *c = ctx;

	if (c->proto == POOL_PROTO_H2) {
		pool_h2_read(c, in);
		return;
	}
	pool_h1_read(c, in);
}

/* The connection failed or closed under its exchanges: each fails once. */
static void lost(struct pool_conn *c, enum exchange_fail_kind kind, int err, const char *message)
{
	if (c->proto == POOL_PROTO_H2)
		pool_h2_lost(c, kind, err, message);
	else
		pool_h1_lost(c, kind, err, message);
}

static void on_error(void *ctx, const struct conn_error *why)
{
	struct pool_conn *c = ctx;
	enum exchange_fail_kind kind;

	char msg[256];

	c->open = false;
	if (why->kind == CONN_ERR_ALPN) {
		snprintf(msg, sizeof msg, "upstream takes none of the protocols offered by "
		         "ALPN (%s): %s", c->pool->settings.http2 == POOL_HTTP2_PRIOR
		         ? "h2, http2 = prior-knowledge" : "h2, http/1.1", why->message);
		lost(c, EXCHANGE_FAIL_PROTOCOL, why->err, msg);
		return;
	}
	if (why->kind == CONN_ERR_TLS)
		kind = EXCHANGE_FAIL_TLS;
	else
		kind = why->connecting ? EXCHANGE_FAIL_CONNECT : EXCHANGE_FAIL_RESET;
	lost(c, kind, why->err, why->message);
}

static void on_closed(void *ctx)
{
	struct pool_conn *c = ctx;

	c->open = false;
	if (c->proto == POOL_PROTO_H1 && c->x != NULL) {
		h1_eof(c->h1);   /* ends a close-delimited body, or fails */
		return;
	}
	lost(c, EXCHANGE_FAIL_CLOSED, 0, c->proto == POOL_PROTO_H2
	     ? "upstream closed the connection before the end of the answer"
	     : "closed by the upstream");
}

static const struct conn_ops conn_events = {
	.connected = on_connected, .readable = on_readable,
	.error = on_error, .closed = on_closed, .drained = pool_h2_drained,
};

/* --- connections --------------------------------------------------------- */

static void reap(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	struct pool_conn *c;

	(void)fd;
	(void)what;
	while ((c = p->dead) != NULL) {
		p->dead = c->next_dead;
		free_conn(c);
	}
	/* descriptors and room under the cap were freed */
	pool_serve_waiters(p);
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pool_conn_retire(arg, "idle for keepalive_timeout");
}

struct pool_conn *pool_take(struct pool *p)
{
	/* fetches waiting for a connection are owed the free ones first */
	if (pool_has_waiters(p))
		return NULL;
	return pool_take_available(p);
}

static socklen_t peer_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                 : sizeof(struct sockaddr_in);
}

static const char *const *alpn_for(const struct pool_settings *ps)
{
	switch (ps->http2) {
	case POOL_HTTP2_NO:
		return alpn_h1;
	case POOL_HTTP2_PRIOR:
		return alpn_h2;
	default:
		return alpn_auto;
	}
}

struct pool_conn *pool_open(struct pool *p, const struct sockaddr *peer, int port)
{
	struct conn_tls tls = {
		.ctx = p->settings.ssl_ctx, .host = p->settings.tls_host,
		.verify = p->settings.tls_verify, .alpn = alpn_for(&p->settings),
	};
	struct pool_conn *c;

	if (pool_must_wait(p)) {
		errno = EAGAIN;
		return NULL;
	}
	c = xcalloc(1, sizeof *c);
	memcpy(&c->peer, peer, peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                                   : sizeof(struct sockaddr_in));
	netaddr_set_port((struct sockaddr *)&c->peer, port);
	c->conn = conn_open(p->base, (const struct sockaddr *)&c->peer, peer_len(&c->peer),
	                    p->settings.ssl_ctx != NULL ? &tls : NULL, &conn_events, c,
	                    &p->counters);
	if (c->conn == NULL) {
		int e = errno;

		free(c);
		errno = e;
		return NULL;
	}
	c->pool = p;
	c->state = POOL_CONN_BUSY;
	c->id = conn_id(c->conn);
	c->out = xcheck(evbuffer_new());
	c->idle_timer = xcheck(evtimer_new(p->base, on_idle_timeout, c));
	c->opening = true;
	p->nopening++;
	p->nconns++;
	conn_debug(c, "new connection (busy)");
	return c;
}

void pool_exchange(struct pool_conn *c, struct pool_exchange *x,
                   const struct exchange_request *req,
                   const struct exchange_ops *ops, void *ctx)
{
	assert(c->state == POOL_CONN_BUSY && x->conn == NULL);
	x->conn = c;
	x->stream_id = 0;
	x->req = *req;
	x->ops = ops;
	x->ctx = ctx;
	if (!c->open) {   /* sent once the protocol is known */
		assert(c->x == NULL);
		c->x = x;
		return;
	}
	if (c->proto == POOL_PROTO_H2) {
		/* pool_take found a stream free: h2_submit cannot refuse it */
		if (!pool_h2_submit(c, x))
			abort();
		return;
	}
	assert(c->x == NULL);
	pool_h1_send(c, x);
}

const char *pool_conn_protocol(const struct pool_conn *c)
{
	switch (c->proto) {
	case POOL_PROTO_H1:
		return "http/1.1";
	case POOL_PROTO_H2:
		return "h2";
	default:
		return NULL;
	}
}

bool pool_conn_handshaking(const struct pool_conn *c)
{
	return c->conn != NULL && conn_state(c->conn) == CONN_HANDSHAKING;
}

void pool_release(struct pool_exchange *x, bool reusable)
{
	struct pool_conn *c = x->conn;

	if (c == NULL)
		return;
	x->conn = NULL;
	if (c->proto != POOL_PROTO_H2 || c->x == x) {
		pool_h1_release(c, x, reusable);
		return;
	}
	pool_h2_release(c, x);
}

void pool_close_denied(const struct acl *acl)
{
	struct pool *p;
	struct pool_conn *c, *next;

	LIST_FOREACH(p, &all_pools, all) {
		for (c = p->idle_head; c != NULL; c = next) {
			next = c->next_idle;
			if (!acl_addr_denied(acl, (const struct sockaddr *)&c->peer))
				continue;
			pool_conn_retire(c, "its address is in deny_networks now");
		}
		/* busy HTTP/2 connections: no new stream; closed after the last */
		LIST_FOREACH(c, &p->h2_conns, h2_link)
			if (acl_addr_denied(acl, (const struct sockaddr *)&c->peer))
				c->draining = true;
	}
}

unsigned pool_idle_count(const struct pool *p)
{
	return p->nidle;
}

unsigned pool_conn_count(const struct pool *p)
{
	return p->nconns;
}

unsigned long pool_opened_count(const struct pool *p)
{
	return p->counters.opened;
}

unsigned long pool_handshake_count(const struct pool *p)
{
	return p->counters.handshakes;
}

void pool_get_stats(const struct pool *p, struct pool_stats *st)
{
	const struct pool_conn *c;

	memset(st, 0, sizeof *st);
	st->protocol = p->seen == POOL_PROTO_H2 ? "h2" : p->seen == POOL_PROTO_H1 ? "http/1.1" : NULL;
	st->opened_h1 = p->opened_h1;
	st->opened_h2 = p->opened_h2;
	st->goaways = p->goaways;
	st->refused = p->refused;
	LIST_FOREACH(c, &p->h2_conns, h2_link)
		st->streams += (unsigned)h2_streams_attached(c->h2);
}

/* Only called once no fetch holds a connection: its upstream is unused
 * (see upstream.c) or fanoutd exits. */
void pool_free(struct pool *p)
{
	struct pool_conn *c;

	while ((c = p->idle_head) != NULL)
		pool_conn_retire(c, "the pool is freed");
	reap(-1, 0, p);
	h1_block_free(p->block);
	free(p->block_host);
	event_free(p->reaper);
	pool_wait_teardown(p);
	LIST_REMOVE(p, all);
	free(p);
}
