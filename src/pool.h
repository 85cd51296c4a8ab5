/* pool: the connections of one upstream.  Owns every connection to it
 * (struct conn, conn.c) with the codec that speaks on it (HTTP/1.1:
 * h1.c): idle ones wait in a list, most recently used first, with an idle
 * timer; a busy one carries one exchange of one fetch at a time; dead ones
 * are freed from a deferred event, never inside their own callbacks.
 * It turns the codec's and the connection's events into the events of the
 * exchange (exchange.h).  Also owns the FIFO of fetches waiting for a
 * connection: when max_connections are open, or when the process is out
 * of file descriptors (EMFILE, ENFILE). */
#ifndef FANOUTD_POOL_H
#define FANOUTD_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "exchange.h"

struct acl;
struct conn;
struct evbuffer;
struct h1;
struct pool;

/* Where a connection is; pool.c changes it through one setter, which
 * checks and traces it:  busy -> idle -> busy ... -> dead (freed soon). */
enum pool_conn_state {
	POOL_CONN_BUSY = 0,   /* held by one fetch (connecting, or an exchange) */
	POOL_CONN_IDLE,       /* in the idle list, its idle timer running */
	POOL_CONN_DEAD,       /* closed or not reusable: waits for the reaper */
};

struct pool_conn {
	struct pool *pool;
	struct conn *conn;                 /* owned; NULL once dead */
	struct h1 *h1;                     /* the codec (owned) */
	struct evbuffer *out;              /* the request being serialised (owned) */
	enum pool_conn_state state;
	unsigned long id;                  /* for the log: "c5" */
	struct sockaddr_storage peer;      /* the address connected to, with port */
	struct event *idle_timer;          /* closes the connection when idle too long */
	bool open;                         /* connected and not closed since */
	bool got_bytes;                    /* an answer byte came in this exchange */
	/* the exchange under way, or NULL */
	const struct exchange_ops *xops;
	void *xctx;
	struct pool_conn *next_idle, *prev_idle;
	struct pool_conn *next_dead;
};

/* A fetch waiting for a connection (see pool_wait). */
struct pool_waiter;
/* c: an idle connection of the pool, now in use, for the waiter to send
 * on; NULL: it may open one now (pool_open). */
typedef void (*pool_ready_fn)(struct pool_waiter *w, struct pool_conn *c, void *arg);

struct pool_waiter {
	TAILQ_ENTRY(pool_waiter) link;
	pool_ready_fn ready;
	void *arg;
	bool waiting;      /* in its pool's queue */
};

struct pool_settings {
	long keepalive_timeout_ms;
	long max_connections;    /* open at once; 0: as many as needed */
	SSL_CTX *ssl_ctx;        /* https upstreams: the context (borrowed), else NULL */
	bool tls_verify;
	const char *tls_host;    /* name for SNI and certificate checks (borrowed) */
};

struct pool *pool_new(struct event_base *base, const struct pool_settings *ps);

/* New settings (reload) for connections opened from now on. */
void pool_configure(struct pool *p, const struct pool_settings *ps);
void pool_free(struct pool *p);

/* An idle open connection, now in use, or NULL (also while fetches wait
 * for a connection: they come first). */
struct pool_conn *pool_take_idle(struct pool *p);

/* Start connecting to peer (an AF_INET or AF_INET6 address, its port
 * ignored) at port: a new connection, in use.  NULL with errno EAGAIN
 * when max_connections are open or others wait already, EMFILE or ENFILE
 * when there is no descriptor (wait then: pool_wait), anything else when
 * the connection cannot be set up at all. */
struct pool_conn *pool_open(struct pool *p, const struct sockaddr *peer, int port);

/* Send req on c (connecting or open) and report its answer through ops
 * with ctx.  ops->ready is called when a new connection opens (not for
 * one that was open already); no event comes from inside this call. */
void pool_exchange(struct pool_conn *c, const struct exchange_request *req,
                   const struct exchange_ops *ops, void *ctx);

/* Is c's TLS handshake under way (the timeout phase "tls")? */
bool pool_conn_handshaking(const struct pool_conn *c);

void pool_waiter_init(struct pool_waiter *w, pool_ready_fn ready, void *arg);

/* No connection to be had now: w->ready runs (FIFO, from a timer, never
 * inside this call) once a connection of the pool goes idle, or one may
 * be opened (one closed under max_connections, a descriptor freed).
 * While fetches wait, idle connections go to them first (pool_take_idle()
 * finds none) and, out of descriptors, idle connections of other pools
 * are closed to make room. */
void pool_wait(struct pool *p, struct pool_waiter *w);

/* Leave the queue (no-op when w is not waiting). */
void pool_cancel_wait(struct pool *p, struct pool_waiter *w);

/* Close the idle connections, in every pool, to addresses acl denies
 * (deny_networks changed on reload).  Busy ones are the fetch's to drop
 * (see fetch.c). */
void pool_close_denied(const struct acl *acl);

/* The fetch is done with c.  An exchange still under way is cancelled (no
 * event follows) and c closed.  reusable: the exchange ended and the
 * codec said the connection may carry the next request. */
void pool_release(struct pool_conn *c, bool reusable);

/* Are max_connections open (or opening)? */
bool pool_at_cap(const struct pool *p);

/* Idle connections, for /v1/upstreams and tests. */
unsigned pool_idle_count(const struct pool *p);
/* Connections open or opening now. */
unsigned pool_conn_count(const struct pool *p);
/* Connections ever opened. */
unsigned long pool_opened_count(const struct pool *p);
/* TLS handshakes completed. */
unsigned long pool_handshake_count(const struct pool *p);

#endif
