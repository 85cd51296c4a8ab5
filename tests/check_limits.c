/* check_limits: unit tests of the FIFO counting semaphore and the FIFO
 * token bucket (src/limits.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "limits.h"

/* One test waiter: records the order of its grant in a shared log. */
struct tw {
	struct limit_waiter w;
	int id;
	struct log *log;
};

struct log {
	struct limit_sem *sem;
	int *order;            /* ids in grant order */
	size_t n, cap;
	bool release_on_grant; /* hand the slot back at once (re-entrancy) */
	uintptr_t frame_min, frame_max;
	/* optional side effects run from the grant of `hook_id` */
	int hook_id;
	struct tw *hook_cancel;      /* cancel this waiter */
	struct tw *hook_acquire;     /* try to acquire this newcomer */
	int hook_acquire_result;     /* -1 = not run, 0 = false, 1 = true */
	size_t hook_in_use, hook_limit;
};

static void log_init(struct log *l, struct limit_sem *s, size_t cap)
{
	memset(l, 0, sizeof *l);
	l->sem = s;
	l->cap = cap;
	l->order = calloc(cap, sizeof *l->order);
	ck_assert_ptr_nonnull(l->order);
	l->frame_min = UINTPTR_MAX;
	l->hook_id = -1;
	l->hook_acquire_result = -1;
}

static void log_free(struct log *l)
{
	free(l->order);
	l->order = NULL;
}

static void on_grant(struct limit_waiter *w, void *arg)
{
	struct tw *t = arg;
	struct log *l = t->log;
	uintptr_t frame = (uintptr_t)__builtin_frame_address(0);

	ck_assert_ptr_eq(w, &t->w);
	ck_assert(!w->queued);
	ck_assert_uint_lt(l->n, l->cap);
	l->order[l->n++] = t->id;
	if (frame < l->frame_min)
		l->frame_min = frame;
	if (frame > l->frame_max)
		l->frame_max = frame;
	if (t->id == l->hook_id) {
		if (l->hook_cancel != NULL)
			limit_sem_cancel(l->sem, &l->hook_cancel->w);
		if (l->hook_acquire != NULL) {
			l->hook_in_use = l->sem->in_use;
			l->hook_limit = l->sem->limit;
			l->hook_acquire_result =
				limit_sem_acquire(l->sem, &l->hook_acquire->w) ? 1 : 0;
		}
	}
	if (l->release_on_grant)
		limit_sem_release(l->sem);
}

static void tw_init(struct tw *t, int id, struct log *l)
{
	t->id = id;
	t->log = l;
	limit_waiter_init(&t->w, on_grant, t);
}

/* --------------------------------------------------------------------- */

START_TEST(test_init)
{
	struct limit_sem s;
	struct log l;
	struct tw a;

	limit_sem_init(&s, 4);
	ck_assert_uint_eq(s.limit, 4);
	ck_assert_uint_eq(s.in_use, 0);
	ck_assert_uint_eq(s.nqueued, 0);
	log_init(&l, &s, 1);
	tw_init(&a, 1, &l);
	ck_assert_ptr_eq(a.w.grant, on_grant);
	ck_assert_ptr_eq(a.w.arg, &a);
	ck_assert(!a.w.queued);
	log_free(&l);
}
END_TEST

START_TEST(test_acquire_up_to_limit)
{
	struct limit_sem s;
	struct log l;
	struct tw t[4];
	int i;

	limit_sem_init(&s, 3);
	log_init(&l, &s, 4);
	for (i = 0; i < 4; i++)
		tw_init(&t[i], i, &l);
	for (i = 0; i < 3; i++) {
		ck_assert(limit_sem_acquire(&s, &t[i].w));
		ck_assert(!t[i].w.queued);
		ck_assert_uint_eq(s.in_use, (size_t)i + 1);
		ck_assert_uint_eq(s.nqueued, 0);
	}
	ck_assert(!limit_sem_acquire(&s, &t[3].w));
	ck_assert(t[3].w.queued);
	ck_assert_uint_eq(s.in_use, 3);
	ck_assert_uint_eq(s.nqueued, 1);
	ck_assert_uint_eq(l.n, 0);      /* queuing grants nothing */

	/* releasing one of the holders grants the queued one */
	limit_sem_release(&s);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_int_eq(l.order[0], 3);
	ck_assert(!t[3].w.queued);
	ck_assert_uint_eq(s.in_use, 3);
	ck_assert_uint_eq(s.nqueued, 0);
	for (i = 0; i < 3; i++)
		limit_sem_release(&s);
	ck_assert_uint_eq(s.in_use, 0);
	ck_assert_uint_eq(l.n, 1);
	log_free(&l);
}
END_TEST

START_TEST(test_fifo_order)
{
	struct limit_sem s;
	struct log l;
	struct tw t[6];
	int i;

	limit_sem_init(&s, 1);
	log_init(&l, &s, 6);
	for (i = 0; i < 6; i++)
		tw_init(&t[i], i, &l);
	ck_assert(limit_sem_acquire(&s, &t[0].w));
	for (i = 1; i < 6; i++) {
		ck_assert(!limit_sem_acquire(&s, &t[i].w));
		ck_assert_uint_eq(s.nqueued, (size_t)i);
	}
	for (i = 1; i < 6; i++) {
		limit_sem_release(&s);
		ck_assert_uint_eq(l.n, (size_t)i);
		ck_assert_int_eq(l.order[i - 1], i);
		ck_assert_uint_eq(s.in_use, 1);
		ck_assert_uint_eq(s.nqueued, (size_t)(5 - i));
	}
	limit_sem_release(&s);
	ck_assert_uint_eq(s.in_use, 0);
	ck_assert_uint_eq(l.n, 5);
	log_free(&l);
}
END_TEST

/* A newcomer queues behind a waiter even though it arrives after it. */
START_TEST(test_newcomer_queues_behind_waiter)
{
	struct limit_sem s;
	struct log l;
	struct tw a, b, c;

	limit_sem_init(&s, 1);
	log_init(&l, &s, 3);
	tw_init(&a, 1, &l);
	tw_init(&b, 2, &l);
	tw_init(&c, 3, &l);
	ck_assert(limit_sem_acquire(&s, &a.w));
	ck_assert(!limit_sem_acquire(&s, &b.w));
	ck_assert(!limit_sem_acquire(&s, &c.w));
	limit_sem_release(&s);
	limit_sem_release(&s);
	limit_sem_release(&s);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(l.order[0], 2);
	ck_assert_int_eq(l.order[1], 3);
	ck_assert_uint_eq(s.in_use, 0);
	log_free(&l);
}
END_TEST

/* The only moment a slot is free while the queue is not empty is inside
 * the grant loop: a newcomer that acquires then must queue, not overtake
 * the waiters still queued. */
START_TEST(test_acquire_false_while_queue_nonempty)
{
	struct limit_sem s;
	struct log l;
	struct tw t[4], newcomer;
	int i;

	limit_sem_init(&s, 1);
	log_init(&l, &s, 8);
	for (i = 0; i < 4; i++)
		tw_init(&t[i], i, &l);
	tw_init(&newcomer, 99, &l);
	ck_assert(limit_sem_acquire(&s, &t[0].w));
	ck_assert(!limit_sem_acquire(&s, &t[1].w));
	ck_assert(!limit_sem_acquire(&s, &t[2].w));
	ck_assert(!limit_sem_acquire(&s, &t[3].w));
	/* raise to 3: t1 and t2 get granted; from t1's grant a newcomer comes */
	l.hook_id = 1;
	l.hook_acquire = &newcomer;
	limit_sem_set_limit(&s, 3);
	ck_assert_int_eq(l.hook_acquire_result, 0);
	ck_assert_uint_eq(l.hook_in_use, 2);     /* a slot was free ... */
	ck_assert_uint_eq(l.hook_limit, 3);      /* ... but t2, t3 were queued */
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(l.order[0], 1);
	ck_assert_int_eq(l.order[1], 2);
	ck_assert_uint_eq(s.in_use, 3);
	ck_assert_uint_eq(s.nqueued, 2);         /* t3, then the newcomer */
	ck_assert(newcomer.w.queued);
	limit_sem_release(&s);
	limit_sem_release(&s);
	ck_assert_uint_eq(l.n, 4);
	ck_assert_int_eq(l.order[2], 3);
	ck_assert_int_eq(l.order[3], 99);
	ck_assert_uint_eq(s.nqueued, 0);
	ck_assert_uint_eq(s.in_use, 3);
	log_free(&l);
}
END_TEST

START_TEST(test_cancel)
{
	struct limit_sem s;
	struct log l;
	struct tw t[4];
	int i;

	limit_sem_init(&s, 1);
	log_init(&l, &s, 4);
	for (i = 0; i < 4; i++)
		tw_init(&t[i], i, &l);
	ck_assert(limit_sem_acquire(&s, &t[0].w));
	for (i = 1; i < 4; i++)
		ck_assert(!limit_sem_acquire(&s, &t[i].w));
	ck_assert_uint_eq(s.nqueued, 3);

	limit_sem_cancel(&s, &t[2].w);
	ck_assert(!t[2].w.queued);
	ck_assert_uint_eq(s.nqueued, 2);
	ck_assert_uint_eq(s.in_use, 1);

	/* no-op: already cancelled, and a waiter that holds a slot */
	limit_sem_cancel(&s, &t[2].w);
	limit_sem_cancel(&s, &t[0].w);
	ck_assert_uint_eq(s.nqueued, 2);
	ck_assert_uint_eq(s.in_use, 1);

	limit_sem_release(&s);
	limit_sem_release(&s);
	limit_sem_release(&s);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(l.order[0], 1);
	ck_assert_int_eq(l.order[1], 3);
	ck_assert_uint_eq(s.in_use, 0);
	ck_assert_uint_eq(s.nqueued, 0);
	log_free(&l);
}
END_TEST

START_TEST(test_cancel_head_and_tail)
{
	struct limit_sem s;
	struct log l;
	struct tw t[5];
	int i;

	limit_sem_init(&s, 1);
	log_init(&l, &s, 5);
	for (i = 0; i < 5; i++)
		tw_init(&t[i], i, &l);
	ck_assert(limit_sem_acquire(&s, &t[0].w));
	for (i = 1; i < 5; i++)
		ck_assert(!limit_sem_acquire(&s, &t[i].w));
	limit_sem_cancel(&s, &t[1].w);   /* head */
	limit_sem_cancel(&s, &t[4].w);   /* tail */
	ck_assert_uint_eq(s.nqueued, 2);
	/* a cancelled waiter may queue again, at the tail */
	ck_assert(!limit_sem_acquire(&s, &t[1].w));
	ck_assert_uint_eq(s.nqueued, 3);
	for (i = 0; i < 4; i++)
		limit_sem_release(&s);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_int_eq(l.order[0], 2);
	ck_assert_int_eq(l.order[1], 3);
	ck_assert_int_eq(l.order[2], 1);
	ck_assert_uint_eq(s.in_use, 0);
	ck_assert_uint_eq(s.nqueued, 0);
	log_free(&l);
}
END_TEST

/* A grant callback cancels a waiter further back: it is never granted. */
START_TEST(test_cancel_from_grant)
{
	struct limit_sem s;
	struct log l;
	struct tw t[4];
	int i;

	limit_sem_init(&s, 1);
	log_init(&l, &s, 4);
	for (i = 0; i < 4; i++)
		tw_init(&t[i], i, &l);
	ck_assert(limit_sem_acquire(&s, &t[0].w));
	for (i = 1; i < 4; i++)
		ck_assert(!limit_sem_acquire(&s, &t[i].w));
	l.hook_id = 1;
	l.hook_cancel = &t[2];
	l.release_on_grant = true;
	limit_sem_release(&s);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(l.order[0], 1);
	ck_assert_int_eq(l.order[1], 3);
	ck_assert_uint_eq(s.in_use, 0);
	ck_assert_uint_eq(s.nqueued, 0);
	log_free(&l);
}
END_TEST

START_TEST(test_release_at_zero_is_noop)
{
	struct limit_sem s;

	limit_sem_init(&s, 2);
	limit_sem_release(&s);
	ck_assert_uint_eq(s.in_use, 0);
	ck_assert_uint_eq(s.nqueued, 0);
}
END_TEST

static void run_reentrant(size_t limit, size_t nwaiters)
{
	struct limit_sem s;
	struct log l;
	struct tw *t, *holders;
	size_t i;

	limit_sem_init(&s, limit);
	log_init(&l, &s, nwaiters);
	t = calloc(nwaiters, sizeof *t);
	holders = calloc(limit, sizeof *holders);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(holders);
	for (i = 0; i < limit; i++) {
		tw_init(&holders[i], -1, &l);
		ck_assert(limit_sem_acquire(&s, &holders[i].w));
	}
	for (i = 0; i < nwaiters; i++) {
		tw_init(&t[i], (int)i, &l);
		ck_assert(!limit_sem_acquire(&s, &t[i].w));
	}
	ck_assert_uint_eq(s.nqueued, nwaiters);
	l.release_on_grant = true;
	/* one release: every grant hands its slot straight back */
	limit_sem_release(&s);
	ck_assert_uint_eq(l.n, nwaiters);
	for (i = 0; i < nwaiters; i++)
		if (l.order[i] != (int)i)
			ck_abort_msg("grant %zu went to waiter %d", i, l.order[i]);
	ck_assert_uint_eq(s.nqueued, 0);
	ck_assert_uint_eq(s.in_use, limit - 1);
	/* every grant ran at the same stack depth: no recursion */
	ck_assert_uint_le(l.frame_max - l.frame_min, 512);
	for (i = 1; i < limit; i++)
		limit_sem_release(&s);
	ck_assert_uint_eq(s.in_use, 0);
	free(t);
	free(holders);
	log_free(&l);
}

START_TEST(test_reentrant_release_100k)
{
	run_reentrant(1, 100000);
}
END_TEST

START_TEST(test_reentrant_release_limit3)
{
	run_reentrant(3, 1000);
}
END_TEST

START_TEST(test_set_limit_raise_grants_at_once)
{
	struct limit_sem s;
	struct log l;
	struct tw t[5];
	int i;

	limit_sem_init(&s, 1);
	log_init(&l, &s, 5);
	for (i = 0; i < 5; i++)
		tw_init(&t[i], i, &l);
	ck_assert(limit_sem_acquire(&s, &t[0].w));
	for (i = 1; i < 5; i++)
		ck_assert(!limit_sem_acquire(&s, &t[i].w));
	limit_sem_set_limit(&s, 3);
	ck_assert_uint_eq(s.limit, 3);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(l.order[0], 1);
	ck_assert_int_eq(l.order[1], 2);
	ck_assert_uint_eq(s.in_use, 3);
	ck_assert_uint_eq(s.nqueued, 2);
	ck_assert(t[3].w.queued);
	ck_assert(t[4].w.queued);
	/* raising past the queue grants everyone, no more */
	limit_sem_set_limit(&s, 10);
	ck_assert_uint_eq(l.n, 4);
	ck_assert_int_eq(l.order[2], 3);
	ck_assert_int_eq(l.order[3], 4);
	ck_assert_uint_eq(s.in_use, 5);
	ck_assert_uint_eq(s.nqueued, 0);
	for (i = 0; i < 5; i++)
		limit_sem_release(&s);
	ck_assert_uint_eq(s.in_use, 0);
	log_free(&l);
}
END_TEST

START_TEST(test_set_limit_lower)
{
	struct limit_sem s;
	struct log l;
	struct tw t[5];
	int i;

	limit_sem_init(&s, 3);
	log_init(&l, &s, 5);
	for (i = 0; i < 5; i++)
		tw_init(&t[i], i, &l);
	for (i = 0; i < 3; i++)
		ck_assert(limit_sem_acquire(&s, &t[i].w));
	ck_assert(!limit_sem_acquire(&s, &t[3].w));
	ck_assert(!limit_sem_acquire(&s, &t[4].w));
	limit_sem_set_limit(&s, 1);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_uint_eq(s.in_use, 3);
	limit_sem_release(&s);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_uint_eq(s.in_use, 2);
	limit_sem_release(&s);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_uint_eq(s.in_use, 1);
	limit_sem_release(&s);          /* below the new limit now */
	ck_assert_uint_eq(l.n, 1);
	ck_assert_int_eq(l.order[0], 3);
	ck_assert_uint_eq(s.in_use, 1);
	ck_assert_uint_eq(s.nqueued, 1);
	limit_sem_release(&s);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(l.order[1], 4);
	limit_sem_release(&s);
	ck_assert_uint_eq(s.in_use, 0);
	ck_assert_uint_eq(s.nqueued, 0);
	log_free(&l);
}
END_TEST

START_TEST(test_limit_zero_queues_everything)
{
	struct limit_sem s;
	struct log l;
	struct tw a, b;

	limit_sem_init(&s, 0);
	log_init(&l, &s, 2);
	tw_init(&a, 1, &l);
	tw_init(&b, 2, &l);
	ck_assert(!limit_sem_acquire(&s, &a.w));
	ck_assert(!limit_sem_acquire(&s, &b.w));
	limit_sem_release(&s);          /* nothing held: no-op, grants nothing */
	ck_assert_uint_eq(l.n, 0);
	limit_sem_set_limit(&s, 1);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_int_eq(l.order[0], 1);
	limit_sem_release(&s);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(l.order[1], 2);
	limit_sem_release(&s);
	ck_assert_uint_eq(s.in_use, 0);
	log_free(&l);
}
END_TEST

/* --- token bucket, with a fake clock ----------------------------------- */

/* One bucket test waiter: records its grants (who, when) in a shared log. */
struct btw {
	struct limit_waiter w;
	int id;
	struct blog *log;
};

struct blog {
	struct limit_bucket *b;
	double now;                  /* the fake clock, in ms */
	int *order;                  /* ids in grant order */
	double *at;                  /* and the time of each grant */
	size_t n, cap;
	uintptr_t frame_min, frame_max;
	bool reacquire;              /* every grant queues its waiter again */
	bool dispatch_on_grant;      /* every grant calls dispatch (re-entry) */
	int hook_id;                 /* side effects from the grant of this id */
	struct btw *hook_cancel;     /* cancel this waiter */
	struct btw *hook_acquire;    /* try to acquire this newcomer */
	int hook_acquire_result;     /* -1 = not run, 0 = false, 1 = true */
	double hook_tokens;          /* tokens seen by the hook */
};

static void blog_init(struct blog *l, struct limit_bucket *b, size_t cap)
{
	memset(l, 0, sizeof *l);
	l->b = b;
	l->cap = cap;
	l->order = calloc(cap, sizeof *l->order);
	l->at = calloc(cap, sizeof *l->at);
	ck_assert_ptr_nonnull(l->order);
	ck_assert_ptr_nonnull(l->at);
	l->frame_min = UINTPTR_MAX;
	l->hook_id = -1;
	l->hook_acquire_result = -1;
}

static void blog_free(struct blog *l)
{
	free(l->order);
	free(l->at);
	l->order = NULL;
	l->at = NULL;
}

/* The checks on the grant path are plain ifs: in fork mode every passing
 * ck_assert writes to a pipe, which the 100k test would pay 500k times. */
static void blog_add(struct blog *l, int id)
{
	if (l->n >= l->cap)
		ck_abort_msg("more grants than the log holds (%zu)", l->cap);
	l->order[l->n] = id;
	l->at[l->n] = l->now;
	l->n++;
}

static void on_bgrant(struct limit_waiter *w, void *arg)
{
	struct btw *t = arg;
	struct blog *l = t->log;
	uintptr_t frame = (uintptr_t)__builtin_frame_address(0);

	if (w != &t->w || w->queued || !(l->b->tokens >= -LIMIT_BUCKET_EPS))
		ck_abort_msg("bad grant: waiter %d, queued %d, tokens %g",
		             t->id, (int)w->queued, l->b->tokens);
	blog_add(l, t->id);
	if (frame < l->frame_min)
		l->frame_min = frame;
	if (frame > l->frame_max)
		l->frame_max = frame;
	if (t->id == l->hook_id) {
		if (l->hook_cancel != NULL)
			limit_bucket_cancel(l->b, &l->hook_cancel->w);
		if (l->hook_acquire != NULL) {
			l->hook_tokens = l->b->tokens;
			l->hook_acquire_result =
				limit_bucket_acquire(l->b, &l->hook_acquire->w, l->now) ? 1 : 0;
		}
	}
	if (l->dispatch_on_grant)
		limit_bucket_dispatch(l->b, l->now);
	if (l->reacquire && limit_bucket_acquire(l->b, w, l->now))
		ck_abort_msg("waiter %d overtook the queue", t->id);
}

static void btw_init(struct btw *t, int id, struct blog *l)
{
	t->id = id;
	t->log = l;
	limit_waiter_init(&t->w, on_bgrant, t);
}

/* Acquire for t at the log's clock; an immediate grant is logged too, so
 * the log shows every request's start time. */
static bool bacquire(struct blog *l, struct btw *t)
{
	if (!limit_bucket_acquire(l->b, &t->w, l->now))
		return false;
	blog_add(l, t->id);
	return true;
}

/* The caller's one timer per bucket, faked: sleep next_ms, dispatch,
 * until nobody is queued.  Each wakeup must grant something (no spurious
 * wakeups).  Returns the number of wakeups. */
static size_t run_timer(struct blog *l)
{
	size_t wakeups = 0, before;
	double d;

	while ((d = limit_bucket_next_ms(l->b, l->now)) >= 0) {
		ck_assert(d > 0);       /* 0 only while a grant is due: none is */
		l->now += d;
		before = l->n;
		limit_bucket_dispatch(l->b, l->now);
		ck_assert_uint_gt(l->n, before);
		ck_assert(l->b->tokens <= l->b->burst);
		wakeups++;
	}
	return wakeups;
}

#define TOL 1e-6   /* ms: what the tests accept as "at" a time */

START_TEST(test_bucket_init)
{
	struct limit_bucket b;

	limit_bucket_init(&b, 20, 5, 1000);
	ck_assert_double_eq(b.rate_per_s, 20);
	ck_assert_double_eq(b.burst, 5);
	ck_assert_double_eq(b.tokens, 5);       /* starts full */
	ck_assert_double_eq(b.last_ms, 1000);
	ck_assert_uint_eq(b.nqueued, 0);
	ck_assert(!b.dispatching);
	ck_assert_double_eq(limit_bucket_next_ms(&b, 1000), -1);
	limit_bucket_dispatch(&b, 2000);        /* empty queue: no-op */
	ck_assert_double_eq(b.tokens, 5);

	/* a burst below 1 would never let anything through: it counts as 1 */
	limit_bucket_init(&b, 20, 0, 0);
	ck_assert_double_eq(b.burst, 1);
	ck_assert_double_eq(b.tokens, 1);
	limit_bucket_init(&b, 20, 0.25, 0);
	ck_assert_double_eq(b.burst, 1);
}
END_TEST

START_TEST(test_bucket_starts_full)
{
	struct limit_bucket b;
	struct blog l;
	struct btw t[6];
	int i;

	limit_bucket_init(&b, 20, 5, 0);
	blog_init(&l, &b, 6);
	for (i = 0; i < 6; i++)
		btw_init(&t[i], i, &l);
	for (i = 0; i < 5; i++) {
		ck_assert(bacquire(&l, &t[i]));
		ck_assert(!t[i].w.queued);
	}
	ck_assert_double_eq_tol(b.tokens, 0, TOL);
	ck_assert(!bacquire(&l, &t[5]));
	ck_assert(t[5].w.queued);
	ck_assert_uint_eq(b.nqueued, 1);
	ck_assert_double_eq(limit_bucket_next_ms(&b, 0), 50);
	ck_assert_uint_eq(run_timer(&l), 1);
	ck_assert_uint_eq(l.n, 6);
	ck_assert_int_eq(l.order[5], 5);
	ck_assert_double_eq_tol(l.at[5], 50, TOL);
	ck_assert_uint_eq(b.nqueued, 0);
	blog_free(&l);
}
END_TEST

START_TEST(test_bucket_second_waits_50ms)
{
	struct limit_bucket b;
	struct blog l;
	struct btw a, c;

	limit_bucket_init(&b, 20, 1, 0);
	blog_init(&l, &b, 2);
	btw_init(&a, 1, &l);
	btw_init(&c, 2, &l);
	ck_assert(bacquire(&l, &a));
	ck_assert(!bacquire(&l, &c));
	ck_assert_double_eq(limit_bucket_next_ms(&b, 0), 50);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&b, 30), 20, TOL);
	ck_assert_double_eq(b.tokens, 0);       /* next_ms does not change it */

	limit_bucket_dispatch(&b, 49);
	ck_assert_uint_eq(l.n, 1);
	ck_assert(c.w.queued);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&b, 49), 1, TOL);
	/* a timer that fires a hair early grants nothing, and says so */
	limit_bucket_dispatch(&b, 49.9999);
	ck_assert_uint_eq(l.n, 1);
	ck_assert(limit_bucket_next_ms(&b, 49.9999) > 0);

	l.now = 50;
	limit_bucket_dispatch(&b, 50);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(l.order[1], 2);
	ck_assert_double_eq(l.at[1], 50);
	ck_assert(!c.w.queued);
	ck_assert_uint_eq(b.nqueued, 0);
	ck_assert_double_eq(limit_bucket_next_ms(&b, 50), -1);
	blog_free(&l);
}
END_TEST

/* The integration test's numbers: rate = 20/s, burst = 1, 40 requests. */
START_TEST(test_bucket_40_evenly_spaced)
{
	struct limit_bucket b;
	struct blog l;
	struct btw t[40];
	int i;

	limit_bucket_init(&b, 20, 1, 0);
	blog_init(&l, &b, 40);
	for (i = 0; i < 40; i++) {
		btw_init(&t[i], i, &l);
		ck_assert(bacquire(&l, &t[i]) == (i == 0));
	}
	ck_assert_uint_eq(b.nqueued, 39);
	ck_assert_uint_eq(run_timer(&l), 39);    /* one grant per wakeup */
	ck_assert_uint_eq(l.n, 40);
	for (i = 0; i < 40; i++) {
		ck_assert_int_eq(l.order[i], i);
		ck_assert_double_eq_tol(l.at[i], 50.0 * i, TOL);
	}
	ck_assert_double_eq_tol(l.now, 1950, TOL);
	ck_assert_uint_eq(b.nqueued, 0);
	blog_free(&l);
}
END_TEST

START_TEST(test_bucket_refill_capped)
{
	struct limit_bucket b;
	struct blog l;
	struct btw t[8];
	int i;

	limit_bucket_init(&b, 20, 3, 0);
	blog_init(&l, &b, 16);
	for (i = 0; i < 8; i++)
		btw_init(&t[i], i, &l);
	for (i = 0; i < 3; i++)
		ck_assert(bacquire(&l, &t[i]));
	/* 100 ms earn 2 tokens */
	l.now = 100;
	ck_assert(bacquire(&l, &t[3]));
	ck_assert(bacquire(&l, &t[4]));
	ck_assert(!bacquire(&l, &t[5]));
	limit_bucket_cancel(&b, &t[5].w);
	/* an hour idle: back to burst, not 72000 tokens */
	l.now = 100 + 3600e3;
	limit_bucket_dispatch(&b, l.now);
	ck_assert_double_eq_tol(b.tokens, 3, TOL);
	ck_assert_double_eq(limit_bucket_next_ms(&b, l.now + 3600e3), -1);
	for (i = 5; i < 8; i++)
		ck_assert(bacquire(&l, &t[i]));
	ck_assert(!bacquire(&l, &t[0]));
	ck_assert_double_eq_tol(limit_bucket_next_ms(&b, l.now), 50, TOL);
	/* a clock that goes back adds nothing and takes nothing */
	ck_assert_double_eq_tol(limit_bucket_next_ms(&b, l.now - 1000), 50, TOL);
	limit_bucket_dispatch(&b, l.now - 1000);
	ck_assert(t[0].w.queued);
	ck_assert_double_eq_tol(b.tokens, 0, TOL);
	limit_bucket_dispatch(&b, l.now + 49);  /* counted from the latest time */
	ck_assert(t[0].w.queued);
	limit_bucket_dispatch(&b, l.now + 50);
	ck_assert(!t[0].w.queued);
	blog_free(&l);
}
END_TEST

START_TEST(test_bucket_cancel)
{
	struct limit_bucket b;
	struct blog l;
	struct btw t[5];
	int i;

	limit_bucket_init(&b, 20, 1, 0);
	blog_init(&l, &b, 8);
	for (i = 0; i < 5; i++)
		btw_init(&t[i], i, &l);
	ck_assert(bacquire(&l, &t[0]));
	for (i = 1; i < 5; i++)
		ck_assert(!bacquire(&l, &t[i]));
	ck_assert_uint_eq(b.nqueued, 4);

	limit_bucket_cancel(&b, &t[2].w);       /* middle */
	limit_bucket_cancel(&b, &t[1].w);       /* head: the next one is not sooner */
	ck_assert(!t[1].w.queued);
	ck_assert(!t[2].w.queued);
	ck_assert_uint_eq(b.nqueued, 2);
	ck_assert_double_eq(limit_bucket_next_ms(&b, 0), 50);
	/* no-ops: already cancelled, and one that got its token */
	limit_bucket_cancel(&b, &t[2].w);
	limit_bucket_cancel(&b, &t[0].w);
	ck_assert_uint_eq(b.nqueued, 2);
	/* a cancelled waiter may queue again, at the tail */
	ck_assert(!bacquire(&l, &t[1]));
	ck_assert_uint_eq(run_timer(&l), 3);
	ck_assert_uint_eq(l.n, 4);
	ck_assert_int_eq(l.order[1], 3);
	ck_assert_int_eq(l.order[2], 4);
	ck_assert_int_eq(l.order[3], 1);
	ck_assert_double_eq_tol(l.at[1], 50, TOL);
	ck_assert_double_eq_tol(l.at[3], 150, TOL);

	/* cancelling everyone empties the queue: the timer has nothing to do */
	ck_assert(!bacquire(&l, &t[2]));
	limit_bucket_cancel(&b, &t[2].w);
	ck_assert_uint_eq(b.nqueued, 0);
	ck_assert_double_eq(limit_bucket_next_ms(&b, l.now), -1);

	/* waiters owed tokens by a late timer, cancelled before it fires: the
	 * idle bucket keeps burst tokens, not theirs too */
	l.now += 50;
	ck_assert(bacquire(&l, &t[0]));
	ck_assert(!bacquire(&l, &t[1]));
	ck_assert(!bacquire(&l, &t[2]));
	l.now += 1000;
	ck_assert(!bacquire(&l, &t[3]));         /* refill: 2 owed + 1 */
	ck_assert_double_eq_tol(b.tokens, 3, TOL);
	limit_bucket_cancel(&b, &t[1].w);
	limit_bucket_cancel(&b, &t[2].w);
	limit_bucket_cancel(&b, &t[3].w);
	ck_assert_double_eq(b.tokens, 1);
	ck_assert(bacquire(&l, &t[1]));
	ck_assert(!bacquire(&l, &t[2]));
	limit_bucket_cancel(&b, &t[2].w);
	blog_free(&l);
}
END_TEST

/* A token is there (the timer has not fired yet) but someone is queued:
 * the newcomer queues behind, it does not take the token. */
START_TEST(test_bucket_newcomer_never_overtakes)
{
	struct limit_bucket b;
	struct blog l;
	struct btw a, c, n1, n2;

	limit_bucket_init(&b, 20, 2, 0);
	blog_init(&l, &b, 4);
	btw_init(&a, 1, &l);
	btw_init(&c, 2, &l);
	btw_init(&n1, 3, &l);
	btw_init(&n2, 4, &l);
	ck_assert(bacquire(&l, &a));
	ck_assert(bacquire(&l, &n2));
	ck_assert(!bacquire(&l, &c));
	l.now = 75;                              /* 1.5 tokens */
	ck_assert_double_eq(limit_bucket_next_ms(&b, l.now), 0);
	ck_assert(!bacquire(&l, &n1));
	ck_assert(n1.w.queued);
	ck_assert_uint_eq(b.nqueued, 2);
	ck_assert_double_eq_tol(b.tokens, 1.5, TOL);   /* untouched */
	limit_bucket_dispatch(&b, l.now);        /* the late timer */
	ck_assert_uint_eq(l.n, 3);
	ck_assert_int_eq(l.order[2], 2);
	ck_assert(n1.w.queued);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&b, l.now), 25, TOL);
	ck_assert_uint_eq(run_timer(&l), 1);
	ck_assert_int_eq(l.order[3], 3);
	ck_assert_double_eq_tol(l.at[3], 100, TOL);
	blog_free(&l);
}
END_TEST

/* The caller's timer fires late (a busy loop): the tokens the queued
 * waiters were owed meanwhile are not lost to the burst cap, so the late
 * wakeup grants every waiter whose time has come and the next ones stay
 * on schedule (no drift).  Once nobody waits, the cap is burst again. */
START_TEST(test_bucket_late_timer_no_drift)
{
	struct limit_bucket b;
	struct blog l;
	struct btw t[6];
	int i;

	limit_bucket_init(&b, 20, 1, 0);
	blog_init(&l, &b, 8);
	for (i = 0; i < 6; i++) {
		btw_init(&t[i], i, &l);
		ck_assert(bacquire(&l, &t[i]) == (i == 0));
	}
	ck_assert_double_eq(limit_bucket_next_ms(&b, 0), 50);
	l.now = 120;                             /* due at 50 and at 100 */
	limit_bucket_dispatch(&b, l.now);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_int_eq(l.order[1], 1);
	ck_assert_int_eq(l.order[2], 2);
	ck_assert_double_eq_tol(b.tokens, 0.4, TOL);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&b, l.now), 30, TOL);
	ck_assert_uint_eq(run_timer(&l), 3);
	ck_assert_double_eq_tol(l.at[3], 150, TOL);
	ck_assert_double_eq_tol(l.at[4], 200, TOL);
	ck_assert_double_eq_tol(l.at[5], 250, TOL);
	/* a very late timer with one waiter: granted (as if at 300), and the
	 * idle time after that refills to burst only, as on time */
	ck_assert(!bacquire(&l, &t[0]));
	l.now = 10e3;
	limit_bucket_dispatch(&b, l.now);
	ck_assert(!t[0].w.queued);
	ck_assert_double_eq(b.tokens, 1);
	limit_bucket_dispatch(&b, 20e3);
	ck_assert_double_eq(b.tokens, 1);
	blog_free(&l);
}
END_TEST

/* Grants from inside the grant loop: a newcomer acquiring while others
 * are queued queues behind them, even with tokens left. */
START_TEST(test_bucket_acquire_from_grant)
{
	struct limit_bucket b;
	struct blog l;
	struct btw t[4], newcomer, late;
	int i;

	limit_bucket_init(&b, 20, 4, 0);
	blog_init(&l, &b, 8);
	for (i = 0; i < 4; i++)
		btw_init(&t[i], i, &l);
	btw_init(&newcomer, 99, &l);
	btw_init(&late, 98, &l);
	for (i = 0; i < 4; i++)
		ck_assert(bacquire(&l, &t[i]));
	for (i = 0; i < 4; i++)
		ck_assert(!limit_bucket_acquire(&b, &t[i].w, 0));
	l.hook_id = 0;
	l.hook_acquire = &newcomer;
	l.now = 150;                             /* 3 tokens for 4 waiters */
	limit_bucket_dispatch(&b, l.now);
	ck_assert_int_eq(l.hook_acquire_result, 0);
	ck_assert_double_eq_tol(l.hook_tokens, 2, TOL);   /* tokens were there */
	ck_assert_uint_eq(l.n, 4 + 3);
	ck_assert_int_eq(l.order[4], 0);
	ck_assert_int_eq(l.order[5], 1);
	ck_assert_int_eq(l.order[6], 2);
	ck_assert_uint_eq(b.nqueued, 2);         /* t3, then the newcomer */
	ck_assert(t[3].w.queued);
	ck_assert(newcomer.w.queued);
	limit_bucket_cancel(&b, &t[3].w);
	limit_bucket_cancel(&b, &newcomer.w);
	blog_free(&l);

	/* the last queued waiter's grant finds the queue empty and a token
	 * left: a newcomer then takes it at once, nobody is overtaken */
	limit_bucket_init(&b, 20, 3, 0);
	blog_init(&l, &b, 8);
	ck_assert(bacquire(&l, &t[0]));
	ck_assert(bacquire(&l, &t[1]));
	ck_assert(bacquire(&l, &t[2]));
	ck_assert(!bacquire(&l, &t[3]));
	l.hook_id = 3;
	l.hook_acquire = &late;
	l.now = 100;
	limit_bucket_dispatch(&b, l.now);
	ck_assert_int_eq(l.hook_acquire_result, 1);
	ck_assert(!late.w.queued);
	ck_assert_uint_eq(b.nqueued, 0);
	ck_assert_double_eq_tol(b.tokens, 0, TOL);
	blog_free(&l);
}
END_TEST

START_TEST(test_bucket_cancel_from_grant)
{
	struct limit_bucket b;
	struct blog l;
	struct btw t[4];
	int i;

	limit_bucket_init(&b, 20, 1, 0);
	blog_init(&l, &b, 4);
	for (i = 0; i < 4; i++)
		btw_init(&t[i], i, &l);
	ck_assert(bacquire(&l, &t[0]));
	for (i = 1; i < 4; i++)
		ck_assert(!bacquire(&l, &t[i]));
	l.hook_id = 1;
	l.hook_cancel = &t[2];
	l.now = 50;                              /* one token */
	limit_bucket_dispatch(&b, l.now);
	ck_assert_uint_eq(l.n, 2);
	ck_assert(!t[2].w.queued);
	ck_assert_uint_eq(b.nqueued, 1);
	ck_assert_uint_eq(run_timer(&l), 1);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_int_eq(l.order[1], 1);
	ck_assert_int_eq(l.order[2], 3);         /* t2 never granted */
	ck_assert_double_eq_tol(l.at[2], 100, TOL);
	ck_assert_uint_eq(b.nqueued, 0);
	blog_free(&l);
}
END_TEST

/* 100k waiters granted in one dispatch, each grant queueing its waiter
 * again (a request chain) and calling dispatch (re-entry): FIFO order,
 * constant stack depth, and it stops when the tokens run out. */
START_TEST(test_bucket_reentrant_100k)
{
	enum { N = 100000 };
	struct limit_bucket b;
	struct blog l;
	struct btw *t;
	size_t i;

	t = calloc(N, sizeof *t);
	ck_assert_ptr_nonnull(t);
	limit_bucket_init(&b, 1000, N, 0);
	blog_init(&l, &b, 2 * N);
	for (i = 0; i < N; i++) {
		btw_init(&t[i], (int)i, &l);
		if (!bacquire(&l, &t[i]))
			ck_abort_msg("token %zu of a full bucket refused", i);
	}
	for (i = 0; i < N; i++)
		if (limit_bucket_acquire(&b, &t[i].w, 0))
			ck_abort_msg("acquire %zu of an empty bucket granted", i);
	l.n = 0;
	l.reacquire = true;
	l.dispatch_on_grant = true;
	l.now = (double)N;                       /* N ms at 1000/s: full again */
	limit_bucket_dispatch(&b, l.now);
	ck_assert_uint_eq(l.n, N);
	for (i = 0; i < N; i++)
		if (l.order[i] != (int)i)
			ck_abort_msg("grant %zu went to waiter %d", i, l.order[i]);
	ck_assert_uint_eq(b.nqueued, N);         /* all queued again, in order */
	ck_assert(!b.dispatching);
	ck_assert_double_eq_tol(b.tokens, 0, TOL);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&b, l.now), 1, TOL);
	ck_assert_uint_le(l.frame_max - l.frame_min, 512);
	/* the second round starts where the first ended: FIFO across rounds */
	l.reacquire = false;
	l.now += 3;
	limit_bucket_dispatch(&b, l.now);
	ck_assert_uint_eq(l.n, N + 3);
	ck_assert_int_eq(l.order[N], 0);
	ck_assert_int_eq(l.order[N + 2], 2);
	for (i = 0; i < N; i++)
		limit_bucket_cancel(&b, &t[i].w);
	ck_assert_uint_eq(b.nqueued, 0);
	free(t);
	blog_free(&l);
}
END_TEST

START_TEST(test_bucket_set_rate_lower_burst)
{
	struct limit_bucket b;
	struct blog l;
	struct btw t[4];
	int i;

	limit_bucket_init(&b, 20, 10, 0);
	blog_init(&l, &b, 4);
	for (i = 0; i < 4; i++)
		btw_init(&t[i], i, &l);
	limit_bucket_set_rate(&b, 20, 2, 0);
	ck_assert_double_eq(b.burst, 2);
	ck_assert_double_eq(b.tokens, 2);
	ck_assert(bacquire(&l, &t[0]));
	ck_assert(bacquire(&l, &t[1]));
	ck_assert(!bacquire(&l, &t[2]));
	/* a higher burst adds room, not tokens */
	limit_bucket_set_rate(&b, 20, 10, 0);
	ck_assert_double_eq_tol(b.tokens, 0, TOL);
	ck_assert(t[2].w.queued);
	/* and after a long idle the new burst is the cap */
	limit_bucket_cancel(&b, &t[2].w);
	limit_bucket_dispatch(&b, 60e3);
	ck_assert_double_eq(b.tokens, 10);
	blog_free(&l);
}
END_TEST

START_TEST(test_bucket_set_rate_higher_rate)
{
	struct limit_bucket b;
	struct blog l;
	struct btw a, c, d;

	limit_bucket_init(&b, 20, 1, 0);
	blog_init(&l, &b, 3);
	btw_init(&a, 1, &l);
	btw_init(&c, 2, &l);
	btw_init(&d, 3, &l);
	ck_assert(bacquire(&l, &a));
	ck_assert(!bacquire(&l, &c));
	ck_assert(!bacquire(&l, &d));
	ck_assert_double_eq(limit_bucket_next_ms(&b, 0), 50);
	/* at t=10: 0.2 token earned at 20/s; the other 0.8 at 100/s = 8 ms */
	l.now = 10;
	limit_bucket_set_rate(&b, 100, 1, l.now);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_double_eq_tol(b.tokens, 0.2, TOL);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&b, l.now), 8, TOL);
	ck_assert_uint_eq(run_timer(&l), 2);
	ck_assert_double_eq_tol(l.at[1], 18, TOL);
	ck_assert_double_eq_tol(l.at[2], 28, TOL);
	/* and a lower rate lengthens it: 0 tokens at 100/s = 10 ms, at 10/s 100 */
	ck_assert(!bacquire(&l, &a));
	ck_assert_double_eq_tol(limit_bucket_next_ms(&b, l.now), 10, TOL);
	limit_bucket_set_rate(&b, 10, 1, l.now);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&b, l.now), 100, TOL);
	limit_bucket_cancel(&b, &a.w);
	blog_free(&l);
}
END_TEST

/* rate <= 0 = no rate limit: queued waiters go at once, newcomers too;
 * back to a rate, the bucket starts full. */
START_TEST(test_bucket_set_rate_unlimited)
{
	struct limit_bucket b;
	struct blog l;
	struct btw t[6];
	int i;

	limit_bucket_init(&b, 20, 1, 0);
	blog_init(&l, &b, 16);
	for (i = 0; i < 6; i++)
		btw_init(&t[i], i, &l);
	ck_assert(bacquire(&l, &t[0]));
	for (i = 1; i < 4; i++)
		ck_assert(!bacquire(&l, &t[i]));
	limit_bucket_set_rate(&b, 0, 1, 1);
	ck_assert_uint_eq(l.n, 4);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(l.order[i], i);
	ck_assert_uint_eq(b.nqueued, 0);
	ck_assert_double_eq(limit_bucket_next_ms(&b, 1), -1);
	for (i = 0; i < 4; i++)
		ck_assert(bacquire(&l, &t[i]));
	limit_bucket_set_rate(&b, 20, 3, 1);
	ck_assert_double_eq(b.tokens, 3);
	for (i = 0; i < 3; i++)
		ck_assert(bacquire(&l, &t[i]));
	ck_assert(!bacquire(&l, &t[3]));
	ck_assert_double_eq(limit_bucket_next_ms(&b, 1), 50);
	limit_bucket_cancel(&b, &t[3].w);
	/* an unlimited bucket from the start */
	limit_bucket_init(&b, 0, 1, 0);
	for (i = 0; i < 6; i++)
		ck_assert(limit_bucket_acquire(&b, &t[i].w, 0));
	blog_free(&l);
}
END_TEST

START_TEST(test_bucket_fractional_rate)
{
	struct limit_bucket b;
	struct blog l;
	struct btw t[5];
	int i;

	limit_bucket_init(&b, 0.5, 1, 0);
	blog_init(&l, &b, 5);
	for (i = 0; i < 5; i++) {
		btw_init(&t[i], i, &l);
		ck_assert(bacquire(&l, &t[i]) == (i == 0));
	}
	ck_assert_double_eq(limit_bucket_next_ms(&b, 0), 2000);
	l.now = 1999;
	limit_bucket_dispatch(&b, l.now);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&b, l.now), 1, TOL);
	ck_assert_uint_eq(run_timer(&l), 4);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(l.order[i], i);
		ck_assert_double_eq_tol(l.at[i], 2000.0 * i, TOL);
	}
	blog_free(&l);
}
END_TEST

/* d ms rounded up to a whole microsecond, as a timeval would hold it. */
static double ceil_us(double d)
{
	double us = d * 1000;
	long long c = (long long)us;

	if ((double)c < us)
		c++;
	return (double)c / 1000;
}

/* A rate whose spacing is not a whole number of microseconds (3/s), with
 * a timer that rounds the delay up to 1 us as the caller must: one grant
 * per wakeup, each within 1 us of k * 333.333 ms, no drift over 3000. */
START_TEST(test_bucket_timer_rounding)
{
	enum { N = 3000 };
	struct limit_bucket b;
	struct blog l;
	struct btw *t;
	size_t i, wakeups = 0;
	double d;

	t = calloc(N, sizeof *t);
	ck_assert_ptr_nonnull(t);
	limit_bucket_init(&b, 3, 1, 0);
	blog_init(&l, &b, N);
	for (i = 0; i < N; i++) {
		btw_init(&t[i], (int)i, &l);
		ck_assert(bacquire(&l, &t[i]) == (i == 0));
	}
	while ((d = limit_bucket_next_ms(&b, l.now)) >= 0) {
		size_t before = l.n;

		ck_assert(d > 0);
		l.now += ceil_us(d);
		limit_bucket_dispatch(&b, l.now);
		ck_assert_uint_eq(l.n, before + 1);
		wakeups++;
	}
	ck_assert_uint_eq(wakeups, N - 1);
	for (i = 0; i < N; i++) {
		double ideal = (double)i * 1000.0 / 3.0;

		ck_assert_int_eq(l.order[i], (int)i);
		if (!(l.at[i] >= ideal - TOL && l.at[i] <= ideal + 0.001 + TOL))
			ck_abort_msg("grant %zu at %.9f, ideal %.9f", i, l.at[i], ideal);
	}
	free(t);
	blog_free(&l);
}
END_TEST

static Suite *limits_suite(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("sem");

	tcase_add_test(tc, test_init);
	tcase_add_test(tc, test_acquire_up_to_limit);
	tcase_add_test(tc, test_fifo_order);
	tcase_add_test(tc, test_newcomer_queues_behind_waiter);
	tcase_add_test(tc, test_acquire_false_while_queue_nonempty);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_cancel_head_and_tail);
	tcase_add_test(tc, test_cancel_from_grant);
	tcase_add_test(tc, test_release_at_zero_is_noop);
	tcase_add_test(tc, test_reentrant_release_100k);
	tcase_add_test(tc, test_reentrant_release_limit3);
	tcase_add_test(tc, test_set_limit_raise_grants_at_once);
	tcase_add_test(tc, test_set_limit_lower);
	tcase_add_test(tc, test_limit_zero_queues_everything);
	suite_add_tcase(s, tc);

	tc = tcase_create("bucket");
	tcase_add_test(tc, test_bucket_init);
	tcase_add_test(tc, test_bucket_starts_full);
	tcase_add_test(tc, test_bucket_second_waits_50ms);
	tcase_add_test(tc, test_bucket_40_evenly_spaced);
	tcase_add_test(tc, test_bucket_refill_capped);
	tcase_add_test(tc, test_bucket_cancel);
	tcase_add_test(tc, test_bucket_newcomer_never_overtakes);
	tcase_add_test(tc, test_bucket_late_timer_no_drift);
	tcase_add_test(tc, test_bucket_acquire_from_grant);
	tcase_add_test(tc, test_bucket_cancel_from_grant);
	tcase_add_test(tc, test_bucket_reentrant_100k);
	tcase_add_test(tc, test_bucket_set_rate_lower_burst);
	tcase_add_test(tc, test_bucket_set_rate_higher_rate);
	tcase_add_test(tc, test_bucket_set_rate_unlimited);
	tcase_add_test(tc, test_bucket_fractional_rate);
	tcase_add_test(tc, test_bucket_timer_rounding);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(limits_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
