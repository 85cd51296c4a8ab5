/* limit: the two FIFO limiters a request to an upstream may wait in —
 * the counting semaphore that caps requests in flight (`concurrency`) and
 * the token bucket that caps requests started per second (`rate` +
 * `burst`).  Pure data structures (no I/O, no clock, no allocation): they
 * do not own their waiters, their owner (a fetch) does, and must cancel a
 * queued waiter before freeing it. */
#ifndef FANOUTD_LIMIT_H
#define FANOUTD_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

struct limit_waiter;

/* Called when a queued waiter gets its slot or token.  A semaphore slot
 * is already counted and the owner must hand it back with
 * limit_sem_release(); a bucket token is simply spent. */
typedef void (*limit_grant_fn)(struct limit_waiter *w, void *arg);

struct limit_waiter {
	TAILQ_ENTRY(limit_waiter) link;
	limit_grant_fn grant;
	void *arg;
	bool queued;               /* true while in a semaphore's or bucket's
	                              queue: in at most one at a time, and
	                              cancelled with that limiter's function */
	bool ahead;                /* a semaphore queues it before every plain
	                              waiter (FIFO among those ahead): a hedge,
	                              whose request has had its turn already */
};

struct limit_sem {
	size_t limit;              /* slots in total */
	size_t in_use;             /* slots held */
	size_t nqueued;            /* waiters in the queue */
	bool dispatching;          /* inside the grant loop: no re-entry */
	TAILQ_HEAD(, limit_waiter) queue;
};

void limit_sem_init(struct limit_sem *s, size_t limit);

void limit_waiter_init(struct limit_waiter *w, limit_grant_fn grant, void *arg);

/* Take a slot now if one is free AND nobody is queued (FIFO: a newcomer
 * never overtakes a waiter); returns true then.  Otherwise queues w and
 * returns false: w->grant runs later, from limit_sem_release().  A waiter
 * marked ahead queues behind the others marked so, before the rest. */
bool limit_sem_acquire(struct limit_sem *s, struct limit_waiter *w)
	__attribute__((warn_unused_result));

/* Hand back one slot and grant freed slots to the queue head(s). */
void limit_sem_release(struct limit_sem *s);

/* Remove a queued waiter (no-op when w is not queued). */
void limit_sem_cancel(struct limit_sem *s, struct limit_waiter *w);

/* Change the limit (reload); a raised limit grants at once. */
void limit_sem_set_limit(struct limit_sem *s, size_t limit);

/* --- token bucket ------------------------------------------------------
 *
 * Holds up to `burst` tokens, refilled continuously at `rate_per_s`; each
 * request spends one, and waits in FIFO order when there is none.  The
 * bucket has no clock and no timer: every call takes the time now_ms (ms
 * on a monotonic clock), and the caller arms ONE timer per bucket:
 *
 *     if (!limit_bucket_acquire(b, w, now))       -> w->grant runs later
 *             arm(limit_bucket_next_ms(b, now));
 *     on the timer:
 *             limit_bucket_dispatch(b, now);      -> grants, synchronously
 *             d = limit_bucket_next_ms(b, now);
 *             if (d >= 0) arm(d);
 *
 * Round the delay UP to the timer's resolution: a wakeup even a hair
 * early grants nothing (next_ms then returns the small remainder).  A
 * late wakeup loses nothing: the grants stay on the rate's schedule.
 * A rate <= 0 means "no rate limit": every waiter is granted at once. */

/* "A token is available" means tokens >= 1 - LIMIT_BUCKET_EPS: absorbs the
 * rounding of elapsed * rate (a timer that fires at exactly next_ms must
 * grant), far below anything a real clock can measure (1e-9 token is 50
 * picoseconds at 20/s). */
#define LIMIT_BUCKET_EPS 1e-9

struct limit_bucket {
	double rate_per_s;         /* tokens added per second; <= 0 = unlimited */
	double burst;              /* capacity, at least 1 */
	double tokens;             /* as of last_ms; >= -EPS; <= burst when
	                              idle, <= burst + nqueued while waiters
	                              are owed tokens a late timer has not
	                              granted yet (see limit.c: no drift) */
	double last_ms;            /* latest time seen (refilled up to here) */
	size_t nqueued;            /* waiters in the queue */
	bool dispatching;          /* inside the grant loop: no re-entry */
	TAILQ_HEAD(, limit_waiter) queue;
};

/* Start full (burst tokens) at now_ms.  A burst below 1 counts as 1. */
void limit_bucket_init(struct limit_bucket *b, double rate_per_s, double burst,
                       double now_ms);

/* Spend a token now if one is available AND nobody is queued (FIFO: a
 * newcomer never overtakes a waiter); returns true then.  Otherwise
 * queues w and returns false: w->grant runs later, from dispatch(). */
bool limit_bucket_acquire(struct limit_bucket *b, struct limit_waiter *w, double now_ms)
	__attribute__((warn_unused_result));

/* Milliseconds from now_ms until the head waiter can be granted: 0 if it
 * can be now, -1 if nobody is queued. */
double limit_bucket_next_ms(const struct limit_bucket *b, double now_ms);

/* Refill up to now_ms and grant queue head(s) while tokens last, calling
 * their grant callbacks synchronously.  A callback may acquire, cancel,
 * dispatch or set_rate on the same bucket (no recursion: the outer loop
 * carries on). */
void limit_bucket_dispatch(struct limit_bucket *b, double now_ms);

/* Remove a queued waiter (no-op when w is not queued). */
void limit_bucket_cancel(struct limit_bucket *b, struct limit_waiter *w);

/* Change rate and burst (reload): tokens earned so far count at the old
 * rate, tokens are capped to the new burst (from unlimited: full), and
 * whatever can be granted now is.  The caller re-arms its timer with
 * next_ms (a higher rate shortens it). */
void limit_bucket_set_rate(struct limit_bucket *b, double rate_per_s, double burst,
                           double now_ms);

#endif
