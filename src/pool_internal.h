/* pool_internal: what pool.c (connections, the idle list), pool_h1.c (an
 * HTTP/1.1 connection and its exchange), pool_h2.c (an HTTP/2 connection
 * and its streams) and pool_wait.c (the fetches waiting for a connection)
 * share.  Included by nothing else. */
#ifndef FANOUTD_POOL_INTERNAL_H
#define FANOUTD_POOL_INTERNAL_H

#include <stdbool.h>
#include <sys/queue.h>

#include "conn.h"
#include "exchange.h"
#include "log.h"
#include "pool.h"

/* Caps on an answer's head, both protocols: more header lines than this
 * is an attack on the event loop, not an answer. */
#define POOL_MAX_HEADERS 1000
#define POOL_MAX_HEAD_BYTES (64 * 1024)

struct pool {
	struct event_base *base;
	struct pool_settings settings;
	struct h1_block *block;            /* default headers, built at first use */
	char *block_host;                  /* ... for this Host (owned) */
	struct pool_conn *idle_head;       /* most recently released first */
	unsigned nidle;
	unsigned nconns;                   /* busy or idle: open or opening */
	unsigned nopening;                 /* connecting, or HTTP/2 before the
	                                    * server's first SETTINGS */
	enum pool_proto seen;              /* what the last connection picked */
	LIST_HEAD(, pool_conn) h2_conns;   /* open HTTP/2 connections */
	struct conn_counters counters;     /* opened, handshakes */
	unsigned long opened_h1, opened_h2, goaways, refused;
	struct pool_conn *dead;            /* waiting for the reaper */
	struct event *reaper;
	TAILQ_HEAD(, pool_waiter) waiters; /* FIFO: no connection to be had */
	unsigned nwaiting;                 /* in waiters */
	bool granting;                     /* inside a waiter's ready callback */
	struct event *wait_timer;          /* serves the waiters */
	double warned_ms;                  /* last "out of file descriptors" warning */
	LIST_ENTRY(pool) all;              /* in all_pools */
};

/* "127.0.0.1:8080 c5": the upstream's address and the connection. */
void pool_describe_conn(const void *obj, char *buf, size_t len);

/* (conn_obj() makes the compiler check that c is a connection.) */
static inline const void *conn_obj(const struct pool_conn *c) { return c; }
#define conn_debug(c, ...) \
	log_about(LOG_LEVEL_DEBUG, pool_describe_conn, conn_obj(c), __VA_ARGS__)

/* pool.c's, for pool_h1.c, pool_h2.c and pool_wait.c. */

/* Close now, free later (we may be inside c's own callbacks). */
void pool_conn_retire(struct pool_conn *c, const char *why);
/* c carries nothing now: into the idle list, its timer running. */
void pool_conn_make_idle(struct pool_conn *c, const char *why);
/* c is no longer opening (HTTP/1.1 picked, HTTP/2's SETTINGS in, gone). */
void pool_conn_opened(struct pool_conn *c);
/* Detach exchange x, then tell it how it ended. */
void pool_deliver_fail(struct pool_exchange *x, enum exchange_fail_kind kind, int err,
                       bool nothing_received, const char *message);
/* An open connection that can carry one more exchange now (an HTTP/2
 * one with a stream free, else the most recently used idle one), now in
 * use; NULL: none.  (pool_take, but first in the queue.) */
struct pool_conn *pool_take_available(struct pool *p);
/* Out of descriptors: close up to n idle connections of other pools. */
void pool_evict_idle(struct pool *self, unsigned n);

/* pool_wait.c's, for pool.c and pool_h2.c. */

/* The queue and its timer, for pool_new and pool_free. */
void pool_wait_setup(struct pool *p);
void pool_wait_teardown(struct pool *p);
/* Do fetches wait for a connection (they come first)? */
bool pool_has_waiters(const struct pool *p);
/* May a fetch not open a connection now: others wait ahead of it (unless
 * it is the one being served), one that may speak HTTP/2 is opening, or
 * max_connections are open? */
bool pool_must_wait(const struct pool *p);
/* A connection may serve a waiter (it went idle, freed a stream, closed,
 * opened; the cap rose): look, from the wait timer. */
void pool_serve_waiters(struct pool *p);

/* pool_h1.c's, for pool.c. */

/* c speaks HTTP/1.1 from now on: its codec; it is open. */
void pool_h1_become(struct pool_conn *c);
/* The first exchange of a new HTTP/1.1 connection. */
void pool_h1_start(struct pool_conn *c, struct pool_exchange *x);
/* Send x's request on c, open and carrying nothing. */
void pool_h1_send(struct pool_conn *c, struct pool_exchange *x);
/* Bytes from the connection: to the codec, or stray ones. */
void pool_h1_read(struct pool_conn *c, struct evbuffer *in);
/* The connection failed or closed (HTTP/1.1, or not open yet): its
 * exchange fails, an idle c is retired. */
void pool_h1_lost(struct pool_conn *c, enum exchange_fail_kind kind, int err,
                  const char *message);
/* c (HTTP/1.1, or its first exchange not sent yet) back from exchange x:
 * idle if reusable and the codec agrees, else retired. */
void pool_h1_release(struct pool_conn *c, struct pool_exchange *x, bool reusable);

/* pool_h2.c's, for pool.c. */

/* c speaks HTTP/2 from now on: its session, its flush event. */
void pool_h2_become(struct pool_conn *c);
/* The first exchange of a new HTTP/2 connection. */
void pool_h2_start(struct pool_conn *c, struct pool_exchange *x);
/* Open x's stream on c: false if the session refused it. */
bool pool_h2_submit(struct pool_conn *c, struct pool_exchange *x);
/* After the codec ran or a stream was let go: carry on, go idle or close. */
void pool_h2_settle(struct pool_conn *c);
/* conn_ops.drained: the socket took what was waiting. */
void pool_h2_drained(void *ctx);
/* Bytes from the connection: to the session. */
void pool_h2_read(struct pool_conn *c, struct evbuffer *in);
/* The connection failed or closed: every stream fails once, c is retired. */
void pool_h2_lost(struct pool_conn *c, enum exchange_fail_kind kind, int err,
                  const char *message);
/* The fetch is done with x's stream: reset it if still open. */
void pool_h2_release(struct pool_conn *c, struct pool_exchange *x);

#endif
