/* upstream: one scheme+host+port that fanoutd talks to, and the registry
 * of all of them.  Each upstream has a live part (struct upstream: its
 * FIFO semaphore shared by every batch of every client, its rate bucket,
 * its connection pool), freed once nothing uses it, and a series (its
 * counts by outcome, connections opened), kept until exit so a counter
 * never goes back.  The registry owns both. */
#ifndef FANOUTD_UPSTREAM_H
#define FANOUTD_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "limit.h"
#include "breaker.h"
#include "latency.h"
#include "pool.h"
#include "retry.h"
#include "shared.h"

/* Upstreams without a config section that get a series of their own;
 * those that come later all count into the one series UPSTREAM_OTHER.
 * An upstream with a section always has its own.  Bounds /metrics and
 * /v1/upstreams whatever names clients send. */
#define UPSTREAM_MAX_SERIES 1000
#define UPSTREAM_OTHER "other"

struct collapse_table;
struct upstream_registry;
struct upstream_series;

/* Why a request was retried, for /metrics. */
enum upstream_retry_reason {
	UPSTREAM_RETRY_CONNECT = 0,
	UPSTREAM_RETRY_TIMEOUT,
	UPSTREAM_RETRY_429,
	UPSTREAM_RETRY_500,
	UPSTREAM_RETRY_502,
	UPSTREAM_RETRY_503,
	UPSTREAM_RETRY_504,
	UPSTREAM_RETRY_OTHER_STATUS,
	UPSTREAM_RETRY_NREASONS,
};

/* "connect", "timeout", "429", ..., "other_status". */
const char *upstream_retry_reason_name(enum upstream_retry_reason r);

/* What an upstream's pool and fetches count that its series keeps. */
struct upstream_counts {
	unsigned long opened;       /* connections opened */
	unsigned long handshakes;   /* TLS handshakes completed */
	unsigned long opened_h1;    /* ... that spoke HTTP/1.1 */
	unsigned long opened_h2;    /* ... that spoke HTTP/2 */
	unsigned long goaways;      /* GOAWAY frames received */
	unsigned long refused;      /* streams the upstream never processed */
	unsigned long retried;      /* requests sent again for that */
	unsigned long retries[UPSTREAM_RETRY_NREASONS];   /* retries made, by reason */
	unsigned long budget_exhausted;   /* retries not made: over retry_budget */
	unsigned long paused_ms;    /* paused by Retry-After, in total */
	unsigned long breaker_trips;
	unsigned long collapsed;    /* requests that joined one in flight */
	unsigned long hedges;       /* second attempts sent */
	unsigned long hedges_won;   /* ... whose answer was the one used */
};

struct upstream {
	char *key;                  /* "http://host:port" (owned) */
	char *host;                 /* as in the URL, no brackets (owned) */
	int port;
	bool tls;
	struct limit_sem sem;       /* concurrency limit, FIFO */
	bool rate_limited;          /* rate = N/s in its section */
	struct limit_bucket bucket; /* the token bucket when rate_limited */
	struct event *bucket_timer; /* grants the next token (owned; made on
	                               the first rate limit, NULL before) */
	struct pool *pool;          /* keep-alive connections (owned) */
	/* shared = yes with a [redis] url: its concurrency and rate across
	 * the fleet (owned; on shared_on), else NULL */
	struct shared_limit *shared;
	struct shared_redis *shared_on;
	long request_timeout_ms;
	long connect_timeout_ms;
	/* retries and Retry-After (SPEC 10): its section's, else [fanoutd]'s */
	struct retry_policy retry;  /* every field given: attempts = 1 + retries */
	long max_retries;           /* the ceiling a batch or request may ask for */
	double retry_budget;        /* retries <= this share of requests in flight */
	long max_retry_after_ms;    /* Retry-After longer than this is cut to it */
	bool honor_retry_after;     /* a 429/503 with Retry-After pauses the upstream */
	long breaker_failures;      /* consecutive failures that open it; 0: off */
	long breaker_cooldown_ms;
	bool tls_verify;
	char *tls_error;            /* why no TLS context could be made (owned) */
	unsigned long *totals;      /* finished requests by enum outcome_type
	                               (OUTCOME_COUNT of them): the counts of
	                               its series (borrowed) */
	unsigned refs;              /* fetches that point at it */
	double last_used_ms;        /* when the last of them let go */
	struct upstream_registry *reg;      /* its registry (borrowed) */
	struct upstream_series *series;     /* where it counts (borrowed) */
	LIST_ENTRY(upstream) series_link;   /* in the series' list of live ones */
	unsigned long streams_retried;   /* HTTP/2 requests sent again, unprocessed */
	/* Retry-After: no request starts before paused_until_ms; the slot
	 * holders that would wait here, FIFO */
	double paused_until_ms;
	struct event *pause_timer;  /* owned; made at the first pause */
	TAILQ_HEAD(, limit_waiter) paused;
	struct breaker breaker;
	unsigned retries_active;    /* retries waiting or in flight (the budget) */
	unsigned retries_waiting;   /* of those, waiting out their back-off */
	unsigned long retries[UPSTREAM_RETRY_NREASONS];
	unsigned long budget_exhausted;
	double paused_ms;           /* paused in total */
	/* collapsing and hedging (SPEC 15) */
	bool collapse;              /* collapse = yes */
	long hedge_after_ms;        /* 0: never; CONFIG_HEDGE_P95: the p95 below */
	struct collapse_table *flights;   /* requests in flight others may join
	                                     (owned; made at the first) */
	struct latency_window *latency;   /* answered attempts, slot to end
	                                     (owned; made at the first) */
	unsigned long collapsed;
	unsigned long hedges;
	unsigned long hedges_won;
	struct upstream_counts base;     /* the counts when it joined its series */
	struct upstream *next;      /* hash chain */
};

/* One series as /metrics and /v1/upstreams show it: what it kept plus
 * what its live upstreams (none, one, or for "other" any number) hold. */
struct upstream_stats {
	const char *key;            /* "http://host:port" or UPSTREAM_OTHER */
	bool live;                  /* some live upstream counts into it */
	size_t limit;               /* the concurrency limit each has */
	size_t in_flight;           /* holding a slot */
	size_t queued;              /* waiting for a slot */
	size_t waiting_token;       /* waiting for a rate-limit token */
	unsigned connections;       /* open or opening now, busy or idle */
	unsigned idle_connections;
	unsigned long connections_opened;   /* since start */
	unsigned long tls_handshakes;       /* since start */
	struct upstream_counts counts;      /* since start (also the two above) */
	const char *protocol;               /* the last picked: "http/1.1", "h2", NULL */
	double paused_ms;                   /* Retry-After pause left now */
	const char *breaker;                /* "closed", "open", "half_open" */
	bool shared;                        /* its limits are held in Redis */
	unsigned streams;                   /* HTTP/2 streams in flight now */
	unsigned latency_samples;           /* in the rolling window (one live upstream) */
	double p50_ms, p95_ms;              /* its quantiles, -1 when none */
	const unsigned long *totals;        /* by outcome, as struct upstream's */
};

struct upstream_registry *upstream_registry_new(struct event_base *base,
                                                const struct config *cfg);
void upstream_registry_free(struct upstream_registry *reg);

/* The upstream for key, created on first use with the limits the config
 * gives it; the caller holds a reference until upstream_put().  The live
 * part of an upstream without a config section is freed once nothing
 * uses it: at the last upstream_put() if it never opened a connection
 * (DNS failed, forbidden), else when it has no idle connection left and
 * keepalive_timeout has passed since its last use.  Its series stays. */
struct upstream *upstream_get(struct upstream_registry *reg, const char *key,
                              const char *host, int port, bool tls);

/* An attempt was answered ms after it got its slot: the rolling window
 * of hedge_after = p95 and /v1/upstreams. */
void upstream_note_latency(struct upstream *u, double ms);

/* How long an attempt to u waits for an answer before it is hedged
 * (SPEC 15): hedge_after, or for p95 the rolling p95 once there are 100
 * samples (100 ms before); 0: never. */
double upstream_hedge_delay(struct upstream *u);

/* Let go of u; it may be freed before this returns. */
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

/* The limit in the fleet's Redis a request to u takes (shared = yes), or
 * NULL; after a reload that replaced [redis], the new one once the old
 * holds nothing. */
struct shared_limit *upstream_fleet(struct upstream *u);

/* The fleet's Redis ([redis] url), or NULL: for /metrics. */
struct shared_redis *upstream_registry_redis(const struct upstream_registry *reg);

/* Retry-After (SPEC 10): no new request to u starts for ms (extends a
 * pause under way, never shortens it). */
void upstream_pause(struct upstream *u, double ms);

/* Pass the pause: true if u is not paused now, else w is queued (FIFO)
 * and its grant callback runs when the pause is over. */
bool upstream_pass_pause(struct upstream *u, struct limit_waiter *w)
	__attribute__((warn_unused_result));

/* Withdraw w from the pause queue (no-op when not queued). */
void upstream_cancel_pause(struct upstream *u, struct limit_waiter *w);

/* Milliseconds of pause left (0: not paused). */
double upstream_paused_ms(const struct upstream *u);

/* May one more retry to u start (retry_budget: retries waiting or in
 * flight <= that share of its requests in flight, retries included, never
 * fewer than 3)?  self: the asker holds a place already (a second retry). */
bool upstream_retry_allowed(const struct upstream *u, bool self);

/* {"upstreams":[{"upstream","live","limit","in_flight","queued",
 * "connections","idle_connections","connections_opened","tls_handshakes",
 * "protocol","streams","goaways","totals"},...]}
 * for GET /v1/upstreams: one entry per series, in the order they were
 * made, "other" last. */
void upstream_registry_write_json(struct upstream_registry *reg, struct evbuffer *out);

/* Call fn for each series, in the order of upstream_registry_write_json;
 * s is valid during the call only. */
void upstream_foreach_series(struct upstream_registry *reg,
                             void (*fn)(const struct upstream_stats *s, void *arg),
                             void *arg);

/* Upstreams whose live part is held now. */
size_t upstream_live_count(const struct upstream_registry *reg);

/* Series kept (each is listed by upstream_foreach_series). */
size_t upstream_series_count(const struct upstream_registry *reg);

#endif
