/* pool: the keep-alive connections of one upstream.  Owns every
 * evhttp_connection to that upstream: idle ones wait in a list with an
 * idle timer, busy ones belong to one fetch at a time (never two), dead
 * ones are freed from a deferred event, never inside an evhttp callback.
 * Also owns the FIFO of fetches waiting for a file descriptor to open a
 * connection with, when the process has none left (EMFILE, ENFILE). */
#ifndef FANOUTD_POOL_H
#define FANOUTD_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

struct acl;
struct pool;

/* Where a connection is; pool.c changes it through one setter, which
 * checks and traces it:  busy -> idle -> busy ... -> dead (freed soon). */
enum pool_conn_state {
	POOL_CONN_BUSY = 0,   /* held by one fetch */
	POOL_CONN_IDLE,       /* in the idle list, its idle timer running */
	POOL_CONN_DEAD,       /* closed or not reusable: waits for the reaper */
};

struct pool_conn {
	struct evhttp_connection *evcon;   /* owned by the pool */
	struct pool *pool;
	enum pool_conn_state state;
	unsigned long id;                  /* for the log: "c5" */
	struct sockaddr_storage peer;      /* the address connected to (port 0) */
	int port;                          /* ... and the port */
	struct event *idle_timer;          /* closes the connection when idle too long */
	bool open;         /* connected at least once and not closed since */
	SSL *ssl;          /* https: the connection's TLS state (the bev owns it) */
	bool handshake_done;
	/* told when the TLS handshake completes (set by the fetch using it) */
	void (*on_handshake)(struct pool_conn *c, void *arg);
	void *handshake_arg;
	struct pool_conn *next_idle, *prev_idle;
	struct pool_conn *next_dead;
};

/* A fetch waiting for a file descriptor (see pool_wait_fd). */
struct pool_waiter;
/* c: an idle connection of the pool, now in use, for the waiter to send
 * on; NULL: a descriptor is free, to call pool_open() with at once. */
typedef void (*pool_ready_fn)(struct pool_waiter *w, struct pool_conn *c, void *arg);

struct pool_waiter {
	TAILQ_ENTRY(pool_waiter) link;
	pool_ready_fn ready;
	void *arg;
	bool waiting;      /* in its pool's queue */
};

struct pool_settings {
	long keepalive_timeout_ms;
	uint64_t max_response_body;
	long io_timeout_ms;      /* evhttp's own backstop; fetch timers come first */
	SSL_CTX *ssl_ctx;        /* https upstreams: the context (borrowed), else NULL */
	bool tls_verify;
	const char *tls_host;    /* name for SNI and certificate checks (borrowed) */
};

struct pool *pool_new(struct event_base *base, const struct pool_settings *ps);

/* New settings (reload) for connections opened from now on. */
void pool_configure(struct pool *p, const struct pool_settings *ps);
void pool_free(struct pool *p);

/* An idle open connection, now in use, or NULL (also while fetches wait
 * for a descriptor: they come first). */
struct pool_conn *pool_take_idle(struct pool *p);

/* A new connection (in use) to peer (an AF_INET or AF_INET6 address; its
 * port is ignored) at port.  NULL on failure; errno is EMFILE when there
 * is no file descriptor to make it with, or when other fetches of this
 * pool already wait for one (wait too: pool_wait_fd). */
struct pool_conn *pool_open(struct pool *p, const struct sockaddr *peer, int port);

void pool_waiter_init(struct pool_waiter *w, pool_ready_fn ready, void *arg);

/* Out of file descriptors: w->ready runs (FIFO, from a timer, never
 * inside this call) once a connection of the pool goes idle or a
 * descriptor is free.  While fetches wait, idle connections go to them
 * first (pool_take_idle() finds none) and, when there is neither, idle
 * connections of other pools are closed to make room. */
void pool_wait_fd(struct pool *p, struct pool_waiter *w);

/* Leave the queue (no-op when w is not waiting). */
void pool_cancel_wait(struct pool *p, struct pool_waiter *w);

/* Close the idle connections, in every pool, to addresses acl denies
 * (deny_networks changed on reload).  Busy ones are the fetch's to drop
 * (see fetch.c). */
void pool_close_denied(const struct acl *acl);

/* The fetch is done with c.  reusable: the exchange completed cleanly and
 * evhttp kept the connection, so it may carry the next request. */
void pool_release(struct pool_conn *c, bool reusable);

/* Idle connections, for /v1/upstreams and tests. */
unsigned pool_idle_count(const struct pool *p);
/* Connections ever opened. */
unsigned long pool_opened_count(const struct pool *p);
/* TLS handshakes completed. */
unsigned long pool_handshake_count(const struct pool *p);

#endif
