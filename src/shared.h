/* shared: limits that hold across a fleet, in Redis (SPEC section 13).
 * Owns one asynchronous hiredis connection on the daemon's event loop
 * (struct shared_redis: its up/down state, reconnection, the Lua scripts)
 * and, per upstream, a FIFO of waiters asking Redis for concurrency leases
 * and GCRA rate admissions in batches (struct shared_limit).  The waiters
 * belong to their callers; a lease belongs to the limit that granted it
 * until the caller hands it back.  When Redis is unreachable, slow or
 * answers errors, waiters are granted `local` at once: the caller then
 * applies its own (local) limits. */
#ifndef FANOUTD_SHARED_H
#define FANOUTD_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <event2/event.h>

/* How often a limit that got nothing asks again, when Redis gave no delay
 * (the upstream is at its concurrency limit elsewhere in the fleet).
 * Polling rather than pub/sub: a subscribed connection cannot send
 * commands, so pub/sub needs a second connection and its own reconnect and
 * lost-message handling, and a dead daemon's leases expire without any
 * message anyway, so a poll would still be needed for them.  The cost is
 * bounded: at most one small EVALSHA per waiting upstream per 10 ms, and
 * none when nobody waits; a release by this daemon asks again at once. */
#define SHARED_POLL_MS 10

/* Most slots one acquire call asks for (the rest of the queue waits for
 * the next call). */
#define SHARED_MAX_BATCH 128

struct shared_redis_settings {
	const char *url;           /* as redis_url_parse() reads it
	                              (redis_url.h).  A host name is looked up
	                              with libevent's resolver (hiredis 0.14's
	                              own getaddrinfo would block), within
	                              timeout_ms */
	const char *key_prefix;    /* NULL: "fanoutd:" */
	long timeout_ms;           /* connect and reply timeout; <= 0: 100 */
	long lease_ms;             /* a concurrency lease; <= 0: 30000 */
};

struct shared_redis;

/* For /metrics. */
struct shared_redis_stats {
	unsigned long commands;    /* commands sent */
	unsigned long replies;     /* replies received (errors included) */
	unsigned long errors;      /* error replies, timeouts, lost connections */
	unsigned long fallbacks;   /* waiters granted `local` */
	unsigned long downs;       /* times Redis went from up (or starting) to down */
};

/* Starts connecting at once (nothing blocks); NULL if the URL is bad
 * (logged).  Until the first connection answers or fails (at most
 * timeout_ms), waiters wait; after that they never wait for Redis. */
struct shared_redis *shared_redis_new(struct event_base *base,
                                      const struct shared_redis_settings *s)
	__attribute__((warn_unused_result));

/* Every limit must have been freed first. */
void shared_redis_free(struct shared_redis *r);

/* Redis answers (connected, scripts loaded, no timeout since). */
bool shared_redis_up(const struct shared_redis *r);

void shared_redis_get_stats(const struct shared_redis *r, struct shared_redis_stats *out);

/* This daemon's id in lease members: 16 hex digits, random at new. */
const char *shared_redis_id(const struct shared_redis *r);

/* --- per upstream ------------------------------------------------------ */

struct shared_limit;
struct shared_lease;
struct shared_waiter;

/* The waiter got its turn.  w->local: Redis is down, use the local
 * limits; otherwise w->lease is the concurrency lease to hand back with
 * shared_limit_release() (NULL when the limit has no concurrency). */
typedef void (*shared_grant_fn)(struct shared_waiter *w, void *arg);

struct shared_waiter {
	TAILQ_ENTRY(shared_waiter) link;
	shared_grant_fn grant;
	void *arg;
	bool queued;                /* in its limit's queue */
	bool local;                 /* set at grant */
	struct shared_lease *lease; /* set at grant */
};

void shared_waiter_init(struct shared_waiter *w, shared_grant_fn grant, void *arg);

/* concurrency 0: none; rate_per_s <= 0: no rate; burst < 1 counts as 1.
 * upstream_key names the Redis keys (every daemon of the fleet must use
 * the same one for the same upstream). */
struct shared_limit *shared_limit_new(struct shared_redis *r, const char *upstream_key,
                                      long concurrency, double rate_per_s, double burst)
	__attribute__((warn_unused_result));

/* New limits (reload); the next acquire call uses them. */
void shared_limit_configure(struct shared_limit *l, long concurrency, double rate_per_s,
                            double burst);

/* No waiter may be queued.  Leases still held are released. */
void shared_limit_free(struct shared_limit *l);

/* Queue w (FIFO).  Its callback runs later, never inside this call. */
void shared_limit_acquire(struct shared_limit *l, struct shared_waiter *w);

/* Remove a queued waiter (no-op when w is not queued). */
void shared_limit_cancel(struct shared_limit *l, struct shared_waiter *w);

/* Hand back a lease (NULL: no-op).  Frees it. */
void shared_limit_release(struct shared_limit *l, struct shared_lease *lease);

/* Leases held, waiters queued (for tests and /metrics). */
size_t shared_limit_held(const struct shared_limit *l);
size_t shared_limit_queued(const struct shared_limit *l);

#endif
