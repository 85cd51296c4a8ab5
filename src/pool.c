/* pool: the connections of one upstream (see pool.h).  An idle
 * connection is reused LIFO (the most recently used is the least likely
 * to have been closed by the upstream); it is dropped when its idle timer
 * fires, when the upstream closes it or sends a byte nobody asked for,
 * or when a reload puts its address in deny_networks.  Fetches that find
 * no connection to be had wait here, FIFO.
 *
 * The events of an exchange come from two places, turned into one
 * stream here: the connection (opened, failed, closed) and the codec
 * (head, body, end, malformed).  The exchange is detached from the
 * connection before its last event is delivered, so the fetch may
 * release the connection from inside that event. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "acl.h"
#include "clock.h"
#include "conn.h"
#include "h1.h"
#include "log.h"
#include "netaddr.h"
#include "pool.h"
#include "xalloc.h"
#include "autoconf.h"

/* While fetches wait for a descriptor, look for one this often: most are
 * freed by this pool's own connections (the reaper looks at once then),
 * but client connections, other pools and other processes (ENFILE) free
 * them too, and nothing tells us. */
#define FD_RETRY_MS 20.0

/* Caps on an answer's head: more header lines than this is an attack on
 * the event loop, not an answer. */
static const struct h1_limits head_limits = {
	.max_headers = 1000,
	.max_head_bytes = 64 * 1024,
};

/* The protocols offered by ALPN (HTTP/2 comes with its codec). */
static const char *const alpn_protocols[] = { "http/1.1", NULL };

struct pool {
	struct event_base *base;
	struct pool_settings settings;
	struct h1_block *block;            /* default headers, built at first use */
	char *block_host;                  /* ... for this Host (owned) */
	struct pool_conn *idle_head;       /* most recently released first */
	unsigned nidle;
	unsigned nconns;                   /* busy or idle: open or opening */
	struct conn_counters counters;     /* opened, handshakes */
	struct pool_conn *dead;            /* waiting for the reaper */
	struct event *reaper;
	TAILQ_HEAD(, pool_waiter) waiters; /* FIFO: no connection to be had */
	unsigned nwaiting;                 /* in waiters */
	bool granting;                     /* inside a waiter's ready callback */
	struct event *wait_timer;          /* serves the waiters */
	double warned_ms;                  /* last "out of file descriptors" warning */
	LIST_ENTRY(pool) all;              /* in all_pools */
};

/* Every pool, so that a reload can reach each idle connection whichever
 * upstream it belongs to (the upstreams' table is upstream.c's). */
static LIST_HEAD(, pool) all_pools = LIST_HEAD_INITIALIZER(all_pools);

static void reap(evutil_socket_t fd, short what, void *arg);
static void on_wait_timer(evutil_socket_t fd, short what, void *arg);
static void arm_wait_timer(struct pool *p, double ms);

/* --- the state of a connection ----------------------------------------- */

/* "127.0.0.1:8080 c5": the upstream's address and the connection. */
static void describe_conn(const void *obj, char *buf, size_t len)
{
	const struct pool_conn *c = obj;
	char addr[NETADDR_TEXT_MAX + 8];

	netaddr_format((const struct sockaddr *)&c->peer, addr, sizeof addr);
	snprintf(buf, len, "%s c%lu", addr, c->id);
}

/* (conn_obj() makes the compiler check that c is a connection.) */
static inline const void *conn_obj(const struct pool_conn *c) { return c; }
#define conn_debug(c, ...) \
	log_about(LOG_LEVEL_DEBUG, describe_conn, conn_obj(c), __VA_ARGS__)

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
	p->wait_timer = xcheck(evtimer_new(base, on_wait_timer, p));
	TAILQ_INIT(&p->waiters);
	LIST_INSERT_HEAD(&all_pools, p, all);
	return p;
}

void pool_configure(struct pool *p, const struct pool_settings *ps)
{
	p->settings = *ps;
	if (!TAILQ_EMPTY(&p->waiters))
		arm_wait_timer(p, 0);   /* the cap may be higher now */
}

static void free_conn(struct pool_conn *c)
{
	h1_free(c->h1);
	evbuffer_free(c->out);
	event_free(c->idle_timer);
	free(c);
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
static void retire(struct pool_conn *c, const char *why)
{
	struct pool *p = c->pool;

	unlink_idle(c);
	set_state(c, POOL_CONN_DEAD, why);
	conn_free(c->conn);
	c->conn = NULL;
	c->open = false;
	c->xops = NULL;
	p->nconns--;
	c->next_dead = p->dead;
	p->dead = c;
	event_active(p->reaper, EV_TIMEOUT, 0);
}

static struct pool_conn *take_idle(struct pool *p)
{
	struct pool_conn *c = p->idle_head;

	if (c == NULL)
		return NULL;
	unlink_idle(c);
	set_state(c, POOL_CONN_BUSY, "reused");
	return c;
}

/* --- waiting for a connection ------------------------------------------ */

static void arm_wait_timer(struct pool *p, double ms)
{
	struct timeval tv = clock_timeval(ms);

	evtimer_add(p->wait_timer, &tv);
}

bool pool_at_cap(const struct pool *p)
{
	return p->settings.max_connections > 0 &&
	       p->nconns >= (unsigned long)p->settings.max_connections;
}

/* Could a socket be made now?  Asked of the kernel itself, and only while
 * fetches wait for one: the loop is single-threaded, so the descriptor
 * found free is still free when the waiter makes its socket a moment
 * later.  Only running out says no. */
static bool fd_available(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return errno != EMFILE && errno != ENFILE;
	close(fd);
	return true;
}

/* Idle connections of other pools hold descriptors that waiters need
 * more: close up to n of them, each pool's least recently used first. */
static void evict_idle(struct pool *self, unsigned n)
{
	struct pool *p;
	struct pool_conn *c;

	LIST_FOREACH(p, &all_pools, all) {
		while (p != self && n > 0 && (c = p->idle_head) != NULL) {
			while (c->next_idle != NULL)
				c = c->next_idle;
			retire(c, "closed to free a descriptor for another upstream");
			n--;
		}
	}
}

static void grant(struct pool *p, struct pool_waiter *w, struct pool_conn *c)
{
	TAILQ_REMOVE(&p->waiters, w, link);
	p->nwaiting--;
	w->waiting = false;
	p->granting = true;
	w->ready(w, c, w->arg);
	p->granting = false;
}

/* Serve the waiters, first come first served: with a connection of this
 * pool that went idle, else with leave to open one (under the cap, and a
 * descriptor free).  Out of descriptors, make room and look again soon;
 * at the cap, a connection that goes idle or closes brings us back. */
static void on_wait_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	struct pool_waiter *w;
	struct pool_conn *c;
	bool no_fd = false;

	(void)fd;
	(void)what;
	while ((w = TAILQ_FIRST(&p->waiters)) != NULL) {
		c = take_idle(p);
		if (c == NULL && pool_at_cap(p))
			break;
		if (c == NULL && !fd_available()) {
			no_fd = true;
			break;
		}
		grant(p, w, c);
	}
	if (!no_fd)
		return;
	evict_idle(p, p->nwaiting);
	arm_wait_timer(p, FD_RETRY_MS);
}

void pool_waiter_init(struct pool_waiter *w, pool_ready_fn ready, void *arg)
{
	memset(w, 0, sizeof *w);
	w->ready = ready;
	w->arg = arg;
}

void pool_wait(struct pool *p, struct pool_waiter *w)
{
	if (w->waiting)
		return;
	if (TAILQ_EMPTY(&p->waiters)) {
		if (!pool_at_cap(p) && clock_now_ms() - p->warned_ms > 10000.0) {
			log_warn("out of file descriptors: new upstream connections wait for "
			         "one to be freed (raise ulimit -n or LimitNOFILE)");
			p->warned_ms = clock_now_ms();
		}
		arm_wait_timer(p, 0);   /* an idle connection may serve at once */
	}
	TAILQ_INSERT_TAIL(&p->waiters, w, link);
	p->nwaiting++;
	w->waiting = true;
}

void pool_cancel_wait(struct pool *p, struct pool_waiter *w)
{
	if (!w->waiting)
		return;
	TAILQ_REMOVE(&p->waiters, w, link);
	p->nwaiting--;
	w->waiting = false;
	if (TAILQ_EMPTY(&p->waiters))
		evtimer_del(p->wait_timer);
}

/* --- the events of an exchange ------------------------------------------ */

/* Detach the exchange, then tell it how it ended. */
static void deliver_fail(struct pool_conn *c, enum exchange_fail_kind kind, int err,
                         bool nothing_received, const char *message)
{
	const struct exchange_ops *ops = c->xops;
	struct exchange_failure why = {
		.kind = kind, .err = err, .nothing_received = nothing_received,
		.message = message,
	};

	c->xops = NULL;
	ops->fail(c->xctx, &why);
}

static int on_h1_head(void *ctx, const struct exchange_head *head)
{
	struct pool_conn *c = ctx;

	return c->xops->head(c->xctx, head);
}

static int on_h1_body(void *ctx, const char *data, size_t len)
{
	struct pool_conn *c = ctx;

	return c->xops->body(c->xctx, data, len);
}

static void on_h1_end(void *ctx, bool reusable)
{
	struct pool_conn *c = ctx;
	const struct exchange_ops *ops = c->xops;

	c->xops = NULL;
	ops->end(c->xctx, reusable);
}

static void on_h1_fail(void *ctx, const struct h1_failure *why)
{
	static const enum exchange_fail_kind kinds[] = {
		[H1_FAIL_PROTOCOL] = EXCHANGE_FAIL_PROTOCOL,
		[H1_FAIL_TOO_LARGE] = EXCHANGE_FAIL_REFUSED,
		[H1_FAIL_CLOSED] = EXCHANGE_FAIL_CLOSED,
	};

	deliver_fail(ctx, kinds[why->kind], 0, why->nothing_received, why->message);
}

static const struct h1_ops h1_events = {
	.head = on_h1_head, .body = on_h1_body, .end = on_h1_end, .fail = on_h1_fail,
};

static void on_connected(void *ctx, const char *alpn)
{
	struct pool_conn *c = ctx;

	(void)alpn;   /* only http/1.1 is offered */
	c->open = true;
	if (c->xops == NULL)
		return;
	c->xops->ready(c->xctx, "http/1.1");
	if (c->xops != NULL && c->conn != NULL)
		conn_send(c->conn, c->out);
}

static void on_readable(void *ctx, struct evbuffer *in)
{
	struct pool_conn *c = ctx;

	if (c->xops == NULL) {   /* nothing asked for these bytes */
		evbuffer_drain(in, evbuffer_get_length(in));
		if (c->state == POOL_CONN_IDLE)
			retire(c, "bytes nobody asked for");
		else
			h1_cancel(c->h1);   /* never reused: pool_release sees it */
		return;
	}
	c->got_bytes = true;
	h1_feed_buffer(c->h1, in);
}

static void on_error(void *ctx, const struct conn_error *why)
{
	struct pool_conn *c = ctx;
	enum exchange_fail_kind kind;

	c->open = false;
	if (c->xops == NULL) {
		if (c->state == POOL_CONN_IDLE)
			retire(c, why->message);
		return;
	}
	if (why->kind == CONN_ERR_TLS)
		kind = EXCHANGE_FAIL_TLS;
	else
		kind = why->connecting ? EXCHANGE_FAIL_CONNECT : EXCHANGE_FAIL_RESET;
	h1_cancel(c->h1);
	deliver_fail(c, kind, why->err, !c->got_bytes, why->message);
}

static void on_closed(void *ctx)
{
	struct pool_conn *c = ctx;

	c->open = false;
	if (c->xops == NULL) {
		if (c->state == POOL_CONN_IDLE)
			retire(c, "closed by the upstream");
		return;
	}
	h1_eof(c->h1);   /* ends a close-delimited body, or fails */
}

static const struct conn_ops conn_events = {
	.connected = on_connected, .readable = on_readable,
	.error = on_error, .closed = on_closed,
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
	if (!TAILQ_EMPTY(&p->waiters))
		arm_wait_timer(p, 0);
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	retire(arg, "idle for keepalive_timeout");
}

struct pool_conn *pool_take_idle(struct pool *p)
{
	/* fetches waiting for a connection are owed the idle ones first */
	if (!TAILQ_EMPTY(&p->waiters))
		return NULL;
	return take_idle(p);
}

static socklen_t peer_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                 : sizeof(struct sockaddr_in);
}

struct pool_conn *pool_open(struct pool *p, const struct sockaddr *peer, int port)
{
	struct conn_tls tls = {
		.ctx = p->settings.ssl_ctx, .host = p->settings.tls_host,
		.verify = p->settings.tls_verify, .alpn = alpn_protocols,
	};
	struct pool_conn *c;

	if ((!p->granting && !TAILQ_EMPTY(&p->waiters)) || pool_at_cap(p)) {
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
	c->h1 = h1_new(&h1_events, c, &head_limits);
	c->out = xcheck(evbuffer_new());
	c->idle_timer = xcheck(evtimer_new(p->base, on_idle_timeout, c));
	p->nconns++;
	conn_debug(c, "new connection (busy)");
	return c;
}

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

void pool_exchange(struct pool_conn *c, const struct exchange_request *req,
                   const struct exchange_ops *ops, void *ctx)
{
	const char *method = request_method_name(req->method);
	struct h1_request hr = {
		.method = method, .target = req->target,
		.block = block_for(c->pool, req->authority),
		/* laid out alike (h1.h) */
		.headers = (const struct h1_header *)req->headers, .nheaders = req->nheaders,
		.body = req->body, .body_len = req->body_len,
	};

	assert(c->state == POOL_CONN_BUSY && c->xops == NULL);
	c->xops = ops;
	c->xctx = ctx;
	c->got_bytes = false;
	h1_begin(c->h1, method);
	h1_write_request(c->out, &hr);
	if (c->open)
		conn_send(c->conn, c->out);   /* else when connected */
}

bool pool_conn_handshaking(const struct pool_conn *c)
{
	return c->conn != NULL && conn_state(c->conn) == CONN_HANDSHAKING;
}

void pool_release(struct pool_conn *c, bool reusable)
{
	struct pool *p = c->pool;
	struct timeval tv;

	if (c->state == POOL_CONN_DEAD)
		return;
	if (c->xops != NULL) {   /* still under way: abandoned */
		h1_cancel(c->h1);
		c->xops = NULL;
		reusable = false;
	}
	if (!reusable || !c->open || !h1_reusable(c->h1)) {
		retire(c, reusable ? "closed by the upstream" : "not reusable after this exchange");
		return;
	}
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	set_state(c, POOL_CONN_IDLE, "kept alive");
	c->prev_idle = NULL;
	c->next_idle = p->idle_head;
	if (p->idle_head != NULL)
		p->idle_head->prev_idle = c;
	p->idle_head = c;
	p->nidle++;
	tv = clock_timeval((double)p->settings.keepalive_timeout_ms);
	evtimer_add(c->idle_timer, &tv);
	if (!TAILQ_EMPTY(&p->waiters))
		arm_wait_timer(p, 0);   /* a waiter can have it (not from inside its callbacks) */
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
			retire(c, "its address is in deny_networks now");
		}
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

/* Only called once no fetch holds a connection: its upstream is unused
 * (see upstream.c) or fanoutd exits. */
void pool_free(struct pool *p)
{
	struct pool_conn *c;

	while ((c = p->idle_head) != NULL)
		retire(c, "the pool is freed");
	reap(-1, 0, p);
	h1_block_free(p->block);
	free(p->block_host);
	event_free(p->reaper);
	event_free(p->wait_timer);
	LIST_REMOVE(p, all);
	free(p);
}
