/* upstream: one scheme+host+port that fanoutd talks to, and the registry
 * of all of them.  An upstream owns its FIFO semaphore (shared by every
 * batch of every client), its connection pool and its counters; the
 * registry owns the upstreams and frees them at exit. */
#ifndef FANOUTD_UPSTREAM_H
#define FANOUTD_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "answer.h"
#include "config.h"
#include "limits.h"
#include "pool.h"

struct upstream {
	char *key;                  /* "http://host:port" (owned) */
	char *host;                 /* as in the URL, no brackets (owned) */
	int port;
	bool tls;
	struct limit_sem sem;       /* concurrency limit, FIFO */
	bool rate_limited;          /* rate = N/s in its section */
	struct limit_bucket bucket; /* the token bucket when rate_limited */
	struct event *bucket_timer; /* grants the next token (owned) */
	struct pool *pool;          /* keep-alive connections (owned) */
	long request_timeout_ms;
	long connect_timeout_ms;
	bool tls_verify;
	char *tls_error;            /* why no TLS context could be made (owned) */
	unsigned long totals[OUTCOME_FORBIDDEN + 1];  /* finished requests by outcome */
	unsigned refs;              /* fetches that point at it */
	double last_used_ms;        /* when the last of them let go */
	struct upstream *next;      /* hash chain */
};

struct upstream_registry;

struct upstream_registry *upstream_registry_new(struct event_base *base,
                                                const struct config *cfg);
void upstream_registry_free(struct upstream_registry *reg);

/* The upstream for key, created on first use with the limits the config
 * gives it; the caller holds a reference until upstream_put().  Upstreams
 * without a config section that nobody used for 10 minutes are freed, so
 * a stream of distinct hosts does not grow the daemon for ever. */
struct upstream *upstream_get(struct upstream_registry *reg, const char *key,
                              const char *host, int port, bool tls);

void upstream_put(struct upstream *u);

/* Apply a new config to every existing upstream (reload); the registry
 * keeps a pointer to cfg for upstreams created later. */
void upstream_registry_configure(struct upstream_registry *reg, const struct config *cfg);

/* Take a rate-limit token for w: true if it got one now, else w is queued
 * (FIFO) and its grant callback runs when a token comes. */
bool upstream_take_token(struct upstream *u, struct limit_waiter *w)
	__attribute__((warn_unused_result));

/* Withdraw w from the token queue. */
void upstream_cancel_token(struct upstream *u, struct limit_waiter *w);

/* {"upstreams":[{"upstream","limit","in_flight","queued",
 * "idle_connections","connections_opened","tls_handshakes","totals"},...]}
 * for GET /v1/upstreams. */
void upstream_registry_write_json(struct upstream_registry *reg, struct evbuffer *out);

/* Call fn for each upstream, in no particular order. */
void upstream_foreach(struct upstream_registry *reg,
                      void (*fn)(struct upstream *u, void *arg), void *arg);

#endif
