/* pool: the connections of one upstream.  Owns every connection to it
 * (struct conn, conn.c) with the codec that speaks on it — HTTP/1.1
 * (h1.c) or HTTP/2 (h2.c), chosen when the connection opens (ALPN, or the
 * key http2) and remembered for the upstream.  An HTTP/1.1 connection
 * carries one exchange at a time, an HTTP/2 one up to min(the server's
 * MAX_CONCURRENT_STREAMS, h2_max_streams) streams; a connection that
 * carries none waits in the idle list, most recently used first, with an
 * idle timer; dead ones are freed from a deferred event, never inside
 * their own callbacks.  It turns the codec's and the connection's events
 * into the events of each exchange (exchange.h).  Also owns the FIFO of
 * fetches waiting for a connection: when max_connections are open, out of
 * file descriptors (EMFILE, ENFILE), or while a connection that may speak
 * HTTP/2 is being opened (it will carry them). */
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
struct h2;
struct pool;
struct pool_exchange;

/* Where a connection is; pool.c changes it through one setter, which
 * checks and traces it:  busy -> idle -> busy ... -> dead (freed soon). */
enum pool_conn_state {
	POOL_CONN_BUSY = 0,   /* opening, or carrying an exchange (or streams) */
	POOL_CONN_IDLE,       /* carries nothing: in the idle list, its timer running */
	POOL_CONN_DEAD,       /* closed or not reusable: waits for the reaper */
};

/* The codec of a connection: unknown until it is open. */
enum pool_proto {
	POOL_PROTO_NONE = 0,  /* not open yet (or no upstream picked one yet) */
	POOL_PROTO_H1,
	POOL_PROTO_H2,
};

struct pool_conn {
	struct pool *pool;
	struct conn *conn;                 /* owned; NULL once dead */
	enum pool_proto proto;
	struct h1 *h1;                     /* the codec (owned), once HTTP/1.1 */
	struct h2 *h2;                     /* ... once HTTP/2 */
	struct evbuffer *out;              /* bytes for conn_send (owned) */
	struct event *flush;               /* HTTP/2: sends the session's frames */
	enum pool_conn_state state;
	unsigned long id;                  /* for the log: "c5" */
	struct sockaddr_storage peer;      /* the address connected to, with port */
	struct event *idle_timer;          /* closes the connection when idle too long */
	bool open;                         /* connected and not closed since */
	bool got_bytes;                    /* HTTP/1.1: an answer byte came in this exchange */
	bool opening;                      /* counted in the pool's nopening */
	bool draining;                     /* HTTP/2: no new streams (its address denied) */
	bool in_codec;                     /* inside h2_feed / h2_pending_output */
	bool flush_blocked;                /* HTTP/2: frames wait for the socket to drain */
	/* HTTP/1.1: the exchange under way; while the connection opens, the
	 * first exchange (HTTP/2 too), its request not sent yet */
	struct pool_exchange *x;
	struct pool_conn *next_idle, *prev_idle;
	struct pool_conn *next_dead;
	LIST_ENTRY(pool_conn) h2_link;     /* in the pool's HTTP/2 connections */
};

/* One fetch's exchange: the whole of an HTTP/1.1 connection, or one
 * stream of an HTTP/2 one.  Embedded in the fetch (zeroed), filled in by
 * pool_exchange, emptied by pool_release. */
struct pool_exchange {
	struct pool_conn *conn;            /* carrying it; NULL: none */
	int32_t stream_id;                 /* HTTP/2: its stream, else 0 */
	struct exchange_request req;       /* a copy, until sent (the connection
	                                    * opens); what it points to is borrowed */
	const struct exchange_ops *ops;
	void *ctx;
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

/* Which protocol the pool speaks (key http2, SPEC section 9). */
enum pool_http2 {
	POOL_HTTP2_AUTO = 0,     /* https: ALPN offers h2 and http/1.1; http: HTTP/1.1 */
	POOL_HTTP2_NO,           /* HTTP/1.1 only */
	POOL_HTTP2_PRIOR,        /* h2 without negotiation (h2c over http; over
	                          * https a server that does not pick h2 fails) */
};

struct pool_settings {
	long keepalive_timeout_ms;
	long max_connections;    /* open at once; 0: as many as needed */
	enum pool_http2 http2;
	long h2_max_streams;     /* streams per HTTP/2 connection (0: 100) */
	size_t max_body;         /* max_response_body: sizes the h2 windows */
	SSL_CTX *ssl_ctx;        /* https upstreams: the context (borrowed), else NULL */
	bool tls_verify;
	const char *tls_host;    /* name for SNI and certificate checks (borrowed) */
};

struct pool *pool_new(struct event_base *base, const struct pool_settings *ps);

/* New settings (reload) for connections opened from now on. */
void pool_configure(struct pool *p, const struct pool_settings *ps);
void pool_free(struct pool *p);

/* An open connection that can carry one more exchange now (an idle one,
 * or an HTTP/2 one with a stream free), now in use; NULL when there is
 * none, and also while fetches wait for a connection (they come first). */
struct pool_conn *pool_take(struct pool *p);

/* Start connecting to peer (an AF_INET or AF_INET6 address, its port
 * ignored) at port: a new connection, in use.  NULL with errno EAGAIN
 * when max_connections are open, others wait already, or a connection
 * that may speak HTTP/2 is being opened (it will carry this one too),
 * EMFILE or ENFILE when there is no descriptor (wait then: pool_wait),
 * anything else when the connection cannot be set up at all. */
struct pool_conn *pool_open(struct pool *p, const struct sockaddr *peer, int port);

/* Send req on c (connecting, or from pool_take) as exchange x and report
 * its answer through ops with ctx.  ops->ready is called when a new
 * connection opens (not for one that was open already); what req points
 * to is borrowed until then (req itself is copied).  No event comes from
 * inside this call. */
void pool_exchange(struct pool_conn *c, struct pool_exchange *x,
                   const struct exchange_request *req,
                   const struct exchange_ops *ops, void *ctx);

/* "http/1.1" or "h2" for an open connection, else NULL. */
const char *pool_conn_protocol(const struct pool_conn *c);

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

/* The fetch is done with exchange x (no-op when it has no connection).
 * One still under way is cancelled, no event follows: HTTP/1.1 closes the
 * connection, HTTP/2 resets the stream (RST_STREAM CANCEL) and the
 * connection goes on.  reusable: the exchange ended and the codec said
 * the connection may carry the next request (HTTP/1.1). */
void pool_release(struct pool_exchange *x, bool reusable);

/* Are max_connections open (or opening)? */
bool pool_at_cap(const struct pool *p);

/* Is a connection that may speak HTTP/2 being opened (new fetches wait
 * for it)? */
bool pool_opening_h2(const struct pool *p);

/* Idle connections, for /v1/upstreams and tests. */
unsigned pool_idle_count(const struct pool *p);
/* Connections open or opening now. */
unsigned pool_conn_count(const struct pool *p);
/* Connections ever opened. */
unsigned long pool_opened_count(const struct pool *p);
/* TLS handshakes completed. */
unsigned long pool_handshake_count(const struct pool *p);

/* What the pool has seen, for /v1/upstreams and /metrics. */
struct pool_stats {
	const char *protocol;           /* the last one picked: "http/1.1", "h2", NULL */
	unsigned long opened_h1;        /* connections that spoke HTTP/1.1 */
	unsigned long opened_h2;        /* ... HTTP/2 */
	unsigned streams;               /* HTTP/2 streams in flight now */
	unsigned long goaways;          /* GOAWAY frames received */
	unsigned long refused;          /* streams the server never processed
	                                 * (REFUSED_STREAM, above GOAWAY's last) */
};
void pool_get_stats(const struct pool *p, struct pool_stats *st);

#endif
