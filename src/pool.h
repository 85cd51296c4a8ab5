/* pool: the keep-alive connections of one upstream.  Owns every
 * evhttp_connection to that upstream: idle ones wait in a list with an
 * idle timer, busy ones belong to one fetch at a time (never two), dead
 * ones are freed from a deferred event, never inside an evhttp callback. */
#ifndef FANOUTD_POOL_H
#define FANOUTD_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

struct pool;

struct pool_conn {
	struct evhttp_connection *evcon;   /* owned by the pool */
	struct pool *pool;
	struct event *idle_timer;          /* closes the connection when idle too long */
	bool open;         /* connected at least once and not closed since */
	bool idle;         /* in the idle list */
	bool in_use;       /* held by a fetch */
	bool used;         /* has carried a request before (for "reused") */
	SSL *ssl;          /* https: the connection's TLS state (the bev owns it) */
	bool handshake_done;
	/* told when the TLS handshake completes (set by the fetch using it) */
	void (*on_handshake)(struct pool_conn *c, void *arg);
	void *handshake_arg;
	struct pool_conn *next_idle, *prev_idle;
	struct pool_conn *next_dead;
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

/* An idle open connection, now in use, or NULL. */
struct pool_conn *pool_take_idle(struct pool *p);

/* A new connection (in use) to the numeric address addr:port. */
struct pool_conn *pool_open(struct pool *p, const char *addr, int port);

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
