/* limits: the FIFO counting semaphore that caps requests in flight to one
 * upstream.  Pure data structure (no I/O, no allocation): the semaphore
 * does not own its waiters, their owner (a fetch) does, and must cancel a
 * queued waiter before freeing it. */
#ifndef FANOUTD_LIMITS_H
#define FANOUTD_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

struct limit_waiter;

/* Called when a queued waiter gets its slot.  The slot is already
 * counted; the owner must hand it back with limit_sem_release(). */
typedef void (*limit_grant_fn)(struct limit_waiter *w, void *arg);

struct limit_waiter {
	TAILQ_ENTRY(limit_waiter) link;
	limit_grant_fn grant;
	void *arg;
	bool queued;               /* true while in a semaphore's queue */
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
 * returns false: w->grant runs later, from limit_sem_release(). */
bool limit_sem_acquire(struct limit_sem *s, struct limit_waiter *w)
	__attribute__((warn_unused_result));

/* Hand back one slot and grant freed slots to the queue head(s). */
void limit_sem_release(struct limit_sem *s);

/* Remove a queued waiter (no-op when w is not queued). */
void limit_sem_cancel(struct limit_sem *s, struct limit_waiter *w);

/* Change the limit (reload); a raised limit grants at once. */
void limit_sem_set_limit(struct limit_sem *s, size_t limit);

#endif
