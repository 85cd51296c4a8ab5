/* pool: keep-alive evhttp connections of one upstream.  An idle
 * connection is reused LIFO (the most recently used is the least likely
 * to have been closed by the upstream); it is dropped when its idle
 * timer fires, when the upstream closes it (evhttp's closecb), or when a
 * reload puts its address in deny_networks.  Fetches that find no file
 * descriptor to connect with wait here, FIFO, for one to be freed. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>

#include "acl.h"
#include "clock.h"
#include "log.h"
#include "netaddr.h"
#include "pool.h"
#include "tls.h"
#include "xalloc.h"

/* While fetches wait for a descriptor, look for one this often: most are
 * freed by this pool's own connections (the reaper looks at once then),
 * but client connections, other pools and other processes (ENFILE) free
 * them too, and nothing tells us. */
#define FD_RETRY_MS 20.0

struct pool {
	struct event_base *base;
	struct pool_settings settings;
	struct pool_conn *idle_head;       /* most recently released first */
	unsigned nidle;
	unsigned long opened;
	unsigned long handshakes;
	struct pool_conn *dead;            /* waiting for the reaper */
	struct event *reaper;
	TAILQ_HEAD(, pool_waiter) fd_waiters;   /* FIFO, out of descriptors */
	unsigned nwaiting;                 /* in fd_waiters */
	bool granting;                     /* inside a waiter's ready callback */
	struct event *fd_timer;            /* looks for a free descriptor */
	double warned_ms;                  /* last "out of file descriptors" warning */
	LIST_ENTRY(pool) all;              /* in all_pools */
};

/* Every pool, so that a reload can reach each idle connection whichever
 * upstream it belongs to (the upstreams' table is upstream.c's). */
static LIST_HEAD(, pool) all_pools = LIST_HEAD_INITIALIZER(all_pools);

/* Connections ever made, all pools: names them in the log. */
static unsigned long conn_ids;

static void reap(evutil_socket_t fd, short what, void *arg);
static void on_fd_timer(evutil_socket_t fd, short what, void *arg);

/* --- the state of a connection ----------------------------------------- */

/* "127.0.0.1:8080 c5": the upstream's address and the connection. */
static void describe_conn(const void *obj, char *buf, size_t len)
{
	const struct pool_conn *c = obj;
	bool v6 = c->peer.ss_family == AF_INET6;
	char addr[NETADDR_TEXT_MAX];

	netaddr_ip_text((const struct sockaddr *)&c->peer, addr, sizeof addr);
	snprintf(buf, len, "%s%s%s:%d c%lu", v6 ? "[" : "", addr, v6 ? "]" : "",
	         c->port, c->id);
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
	p->fd_timer = xcheck(evtimer_new(base, on_fd_timer, p));
	TAILQ_INIT(&p->fd_waiters);
	LIST_INSERT_HEAD(&all_pools, p, all);
	return p;
}

void pool_configure(struct pool *p, const struct pool_settings *ps)
{
	p->settings = *ps;
}

static void free_conn(struct pool_conn *c)
{
	if (c->ssl != NULL)
		SSL_set_app_data(c->ssl, NULL);   /* the SSL may outlive c briefly */
	evhttp_connection_free(c->evcon);
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

/* Free later: we may be inside one of this connection's callbacks. */
static void retire(struct pool_conn *c, const char *why)
{
	struct pool *p = c->pool;

	unlink_idle(c);
	set_state(c, POOL_CONN_DEAD, why);
	c->open = false;
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

/* --- waiting for a file descriptor ------------------------------------- */

static void arm_fd_timer(struct pool *p, double ms)
{
	struct timeval tv = clock_timeval(ms);

	evtimer_add(p->fd_timer, &tv);
}

/* Could a socket be made now?  Asked of the kernel itself: the loop is
 * single-threaded, so the descriptor found free is still free when evhttp
 * makes its socket a moment later.  Only running out says no; any other
 * failure is the connect attempt's to report. */
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

/* Serve the waiters, first come first served: with a connection of this
 * pool that went idle (no descriptor needed), else with a free
 * descriptor, which the ready callback uses before the next probe.  When
 * there is neither, make room and look again soon. */
static void on_fd_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	struct pool_waiter *w;
	struct pool_conn *c;

	(void)fd;
	(void)what;
	while ((w = TAILQ_FIRST(&p->fd_waiters)) != NULL) {
		c = take_idle(p);
		if (c == NULL && !fd_available())
			break;
		TAILQ_REMOVE(&p->fd_waiters, w, link);
		p->nwaiting--;
		w->waiting = false;
		p->granting = true;
		w->ready(w, c, w->arg);
		p->granting = false;
	}
	if (TAILQ_EMPTY(&p->fd_waiters))
		return;
	evict_idle(p, p->nwaiting);
	arm_fd_timer(p, FD_RETRY_MS);
}

void pool_waiter_init(struct pool_waiter *w, pool_ready_fn ready, void *arg)
{
	memset(w, 0, sizeof *w);
	w->ready = ready;
	w->arg = arg;
}

void pool_wait_fd(struct pool *p, struct pool_waiter *w)
{
	if (w->waiting)
		return;
	if (TAILQ_EMPTY(&p->fd_waiters)) {
		if (clock_now_ms() - p->warned_ms > 10000.0) {
			log_warn("out of file descriptors: new upstream connections wait for "
			         "one to be freed (raise ulimit -n or LimitNOFILE)");
			p->warned_ms = clock_now_ms();
		}
		arm_fd_timer(p, 0);   /* an idle connection may serve at once */
	}
	TAILQ_INSERT_TAIL(&p->fd_waiters, w, link);
	p->nwaiting++;
	w->waiting = true;
}

void pool_cancel_wait(struct pool *p, struct pool_waiter *w)
{
	if (!w->waiting)
		return;
	TAILQ_REMOVE(&p->fd_waiters, w, link);
	p->nwaiting--;
	w->waiting = false;
	if (TAILQ_EMPTY(&p->fd_waiters))
		evtimer_del(p->fd_timer);
}

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
	/* descriptors were freed (libevent may close them a moment later,
	 * from its finalizers, hence the next turn of the loop) */
	if (!TAILQ_EMPTY(&p->fd_waiters))
		arm_fd_timer(p, 0);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct pool_conn *c = arg;

	(void)evcon;
	c->open = false;
	if (c->state == POOL_CONN_IDLE)
		retire(c, "closed by the upstream");
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	retire(arg, "idle for keepalive_timeout");
}

struct pool_conn *pool_take_idle(struct pool *p)
{
	/* fetches waiting for a descriptor are owed the idle ones first */
	if (!TAILQ_EMPTY(&p->fd_waiters))
		return NULL;
	return take_idle(p);
}

/* OpenSSL tells us the moment the handshake is done: that ends the
 * connect phase of an https request. */
static void on_ssl_info(const SSL *ssl, int where, int ret)
{
	struct pool_conn *c = SSL_get_app_data(ssl);

	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_DONE) || c == NULL || c->handshake_done)
		return;
	c->handshake_done = true;
	c->pool->handshakes++;
	if (c->on_handshake != NULL)
		c->on_handshake(c, c->handshake_arg);
}

/* An evhttp connection over TLS: evhttp connects the socket of an
 * OpenSSL bufferevent, which then runs the handshake. */
static struct evhttp_connection *new_tls_evcon(struct pool *p, struct pool_conn *c,
                                               const char *addr, int port)
{
	struct bufferevent *bev;
	SSL *ssl = tls_new_ssl(p->settings.ssl_ctx, p->settings.tls_host,
	                       p->settings.tls_verify);

	if (ssl == NULL)
		return NULL;
	SSL_set_app_data(ssl, c);
	SSL_set_info_callback(ssl, on_ssl_info);
	bev = bufferevent_openssl_socket_new(p->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	c->ssl = ssl;
	return evhttp_connection_base_bufferevent_new(p->base, NULL, bev, addr,
	                                              (unsigned short)port);
}

/* evhttp makes the socket inside evhttp_make_request() and reports a
 * failure to make one as a failed connect, by a callback that may be
 * deferred (TLS) and with an errno that may have been overwritten by
 * then: so ask first (a socket() and a close() per new connection), and
 * let those already waiting go first. */
static bool may_open(struct pool *p)
{
	if (!p->granting && !TAILQ_EMPTY(&p->fd_waiters))
		return false;
	return fd_available();
}

struct pool_conn *pool_open(struct pool *p, const struct sockaddr *peer, int port)
{
	struct pool_conn *c;
	char addr[NETADDR_TEXT_MAX];
	struct timeval tv;

	if (!may_open(p)) {
		errno = EMFILE;
		return NULL;
	}
	netaddr_ip_text(peer, addr, sizeof addr);
	c = xcalloc(1, sizeof *c);
	c->pool = p;
	c->state = POOL_CONN_BUSY;
	c->port = port;
	memcpy(&c->peer, peer, peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                                   : sizeof(struct sockaddr_in));
	if (p->settings.ssl_ctx != NULL)
		c->evcon = new_tls_evcon(p, c, addr, port);
	else
		c->evcon = evhttp_connection_base_new(p->base, NULL, addr, (unsigned short)port);
	if (c->evcon == NULL) {
		free(c);
		return NULL;
	}
	c->id = ++conn_ids;
	c->idle_timer = xcheck(evtimer_new(p->base, on_idle_timeout, c));
	conn_debug(c, "new connection (busy)");
	tv = clock_timeval((double)p->settings.io_timeout_ms);
	evhttp_connection_set_timeout_tv(c->evcon, &tv);
	evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)p->settings.max_response_body);
	evhttp_connection_set_max_headers_size(c->evcon, 64 * 1024);
	evhttp_connection_set_closecb(c->evcon, on_close, c);
	p->opened++;
	return c;
}

void pool_release(struct pool_conn *c, bool reusable)
{
	struct pool *p = c->pool;
	struct timeval tv;

	if (!reusable || !c->open) {
		retire(c, reusable ? "closed by the upstream" : "not reusable after this exchange");
		return;
	}
	set_state(c, POOL_CONN_IDLE, "kept alive");
	c->prev_idle = NULL;
	c->next_idle = p->idle_head;
	if (p->idle_head != NULL)
		p->idle_head->prev_idle = c;
	p->idle_head = c;
	p->nidle++;
	tv = clock_timeval((double)p->settings.keepalive_timeout_ms);
	evtimer_add(c->idle_timer, &tv);
	if (!TAILQ_EMPTY(&p->fd_waiters))
		arm_fd_timer(p, 0);   /* a waiter can have it (not from inside its callbacks) */
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

unsigned long pool_opened_count(const struct pool *p)
{
	return p->opened;
}

unsigned long pool_handshake_count(const struct pool *p)
{
	return p->handshakes;
}

/* Only called once no fetch holds a connection: its upstream is unused
 * (see upstream.c) or fanoutd exits. */
void pool_free(struct pool *p)
{
	struct pool_conn *c;

	while ((c = p->idle_head) != NULL)
		retire(c, "the pool is freed");
	reap(-1, 0, p);
	event_free(p->reaper);
	event_free(p->fd_timer);
	LIST_REMOVE(p, all);
	free(p);
}
