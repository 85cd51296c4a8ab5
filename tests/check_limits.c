/* check_limits: unit tests of the FIFO counting semaphore and the FIFO
 * token bucket (src/limit.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "limit.h"

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

/* A semaphore of `limit` with n test waiters t[0..n-1] (id = index) and
 * a log of cap grants: the first `held` acquire a slot at once, the next
 * `queued` queue in order.  The checks on the way are plain ifs, as on
 * the grant path. */
struct semfix {
	struct limit_sem s;
	struct log l;
	struct tw *t;
};

static void semfix_init(struct semfix *f, size_t limit, size_t n, size_t held,
                        size_t queued, size_t cap)
{
	size_t i;

	limit_sem_init(&f->s, limit);
	log_init(&f->l, &f->s, cap);
	f->t = calloc(n, sizeof *f->t);
	ck_assert_ptr_nonnull(f->t);
	for (i = 0; i < n; i++)
		tw_init(&f->t[i], (int)i, &f->l);
	for (i = 0; i < held; i++)
		if (!limit_sem_acquire(&f->s, &f->t[i].w) || f->t[i].w.queued ||
		    f->s.in_use != i + 1 || f->s.nqueued != 0)
			ck_abort_msg("waiter %zu got no slot", i);
	for (i = 0; i < queued; i++)
		if (limit_sem_acquire(&f->s, &f->t[held + i].w) ||
		    !f->t[held + i].w.queued || f->s.nqueued != i + 1)
			ck_abort_msg("waiter %zu did not queue", held + i);
}

static void semfix_free(struct semfix *f)
{
	free(f->t);
	log_free(&f->l);
}

static void assert_sem(const struct limit_sem *s, size_t in_use, size_t nqueued)
{
	ck_assert_uint_eq(s->in_use, in_use);
	ck_assert_uint_eq(s->nqueued, nqueued);
}

static void release_n(struct limit_sem *s, int n)
{
	while (n-- > 0)
		limit_sem_release(s);
}

/* The log holds exactly n grants, to these ids in this order. */
static void assert_grants(const struct log *l, size_t n, const int *ids)
{
	size_t i;

	ck_assert_uint_eq(l->n, n);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(l->order[i], ids[i]);
}

/* --------------------------------------------------------------------- */

START_TEST(test_init)
{
	struct semfix f;

	semfix_init(&f, 4, 1, 0, 0, 1);
	ck_assert_uint_eq(f.s.limit, 4);
	assert_sem(&f.s, 0, 0);
	ck_assert_ptr_eq(f.t[0].w.grant, on_grant);
	ck_assert_ptr_eq(f.t[0].w.arg, &f.t[0]);
	ck_assert(!f.t[0].w.queued);
	semfix_free(&f);
}
END_TEST

START_TEST(test_acquire_up_to_limit)
{
	struct semfix f;

	/* three get a slot (in_use counting up), the fourth queues */
	semfix_init(&f, 3, 4, 3, 1, 4);
	assert_sem(&f.s, 3, 1);
	ck_assert_uint_eq(f.l.n, 0);      /* queuing grants nothing */

	/* releasing one of the holders grants the queued one */
	limit_sem_release(&f.s);
	assert_grants(&f.l, 1, (const int[]){3});
	ck_assert(!f.t[3].w.queued);
	assert_sem(&f.s, 3, 0);
	release_n(&f.s, 3);
	assert_sem(&f.s, 0, 0);
	ck_assert_uint_eq(f.l.n, 1);
	semfix_free(&f);
}
END_TEST

START_TEST(test_fifo_order)
{
	struct semfix f;
	int i;

	semfix_init(&f, 1, 6, 1, 5, 6);
	for (i = 1; i < 6; i++) {
		limit_sem_release(&f.s);
		ck_assert_uint_eq(f.l.n, (size_t)i);
		ck_assert_int_eq(f.l.order[i - 1], i);
		assert_sem(&f.s, 1, (size_t)(5 - i));
	}
	limit_sem_release(&f.s);
	ck_assert_uint_eq(f.s.in_use, 0);
	ck_assert_uint_eq(f.l.n, 5);
	semfix_free(&f);
}
END_TEST

/* Waiters marked ahead (hedges) go before the plain ones, FIFO among
 * themselves; cancelling one of them leaves the order of the rest. */
START_TEST(test_ahead_waiters_go_first)
{
	struct semfix f;

	/* 0 holds the slot; 1 and 2 queue plainly */
	semfix_init(&f, 1, 6, 1, 2, 6);
	f.t[3].w.ahead = f.t[4].w.ahead = f.t[5].w.ahead = true;
	ck_assert(!limit_sem_acquire(&f.s, &f.t[3].w));
	ck_assert(!limit_sem_acquire(&f.s, &f.t[4].w));
	ck_assert(!limit_sem_acquire(&f.s, &f.t[5].w));
	assert_sem(&f.s, 1, 5);
	limit_sem_cancel(&f.s, &f.t[4].w);
	release_n(&f.s, 4);
	assert_grants(&f.l, 4, (const int[]){3, 5, 1, 2});
	assert_sem(&f.s, 1, 0);
	semfix_free(&f);
}
END_TEST

/* A newcomer queues behind a waiter even though it arrives after it. */
START_TEST(test_newcomer_queues_behind_waiter)
{
	struct semfix f;

	semfix_init(&f, 1, 3, 1, 2, 3);
	release_n(&f.s, 3);
	assert_grants(&f.l, 2, (const int[]){1, 2});
	ck_assert_uint_eq(f.s.in_use, 0);
	semfix_free(&f);
}
END_TEST

/* The only moment a slot is free while the queue is not empty is inside
 * the grant loop: a newcomer that acquires then must queue, not overtake
 * the waiters still queued. */
START_TEST(test_acquire_false_while_queue_nonempty)
{
	struct semfix f;
	struct tw *newcomer;

	semfix_init(&f, 1, 5, 1, 3, 8);
	newcomer = &f.t[4];
	newcomer->id = 99;
	/* raise to 3: t1 and t2 get granted; from t1's grant a newcomer comes */
	f.l.hook_id = 1;
	f.l.hook_acquire = newcomer;
	limit_sem_set_limit(&f.s, 3);
	ck_assert_int_eq(f.l.hook_acquire_result, 0);
	ck_assert_uint_eq(f.l.hook_in_use, 2);     /* a slot was free ... */
	ck_assert_uint_eq(f.l.hook_limit, 3);      /* ... but t2, t3 were queued */
	assert_grants(&f.l, 2, (const int[]){1, 2});
	assert_sem(&f.s, 3, 2);                    /* t3, then the newcomer */
	ck_assert(newcomer->w.queued);
	release_n(&f.s, 2);
	assert_grants(&f.l, 4, (const int[]){1, 2, 3, 99});
	assert_sem(&f.s, 3, 0);
	semfix_free(&f);
}
END_TEST

START_TEST(test_cancel)
{
	struct semfix f;

	semfix_init(&f, 1, 4, 1, 3, 4);
	limit_sem_cancel(&f.s, &f.t[2].w);
	ck_assert(!f.t[2].w.queued);
	assert_sem(&f.s, 1, 2);

	/* no-op: already cancelled, and a waiter that holds a slot */
	limit_sem_cancel(&f.s, &f.t[2].w);
	limit_sem_cancel(&f.s, &f.t[0].w);
	assert_sem(&f.s, 1, 2);

	release_n(&f.s, 3);
	assert_grants(&f.l, 2, (const int[]){1, 3});
	assert_sem(&f.s, 0, 0);
	semfix_free(&f);
}
END_TEST

START_TEST(test_cancel_head_and_tail)
{
	struct semfix f;

	semfix_init(&f, 1, 5, 1, 4, 5);
	limit_sem_cancel(&f.s, &f.t[1].w);   /* head */
	limit_sem_cancel(&f.s, &f.t[4].w);   /* tail */
	ck_assert_uint_eq(f.s.nqueued, 2);
	/* a cancelled waiter may queue again, at the tail */
	ck_assert(!limit_sem_acquire(&f.s, &f.t[1].w));
	ck_assert_uint_eq(f.s.nqueued, 3);
	release_n(&f.s, 4);
	assert_grants(&f.l, 3, (const int[]){2, 3, 1});
	assert_sem(&f.s, 0, 0);
	semfix_free(&f);
}
END_TEST

/* A grant callback cancels a waiter further back: it is never granted. */
START_TEST(test_cancel_from_grant)
{
	struct semfix f;

	semfix_init(&f, 1, 4, 1, 3, 4);
	f.l.hook_id = 1;
	f.l.hook_cancel = &f.t[2];
	f.l.release_on_grant = true;
	limit_sem_release(&f.s);
	assert_grants(&f.l, 2, (const int[]){1, 3});
	assert_sem(&f.s, 0, 0);
	semfix_free(&f);
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
	struct semfix f;

	semfix_init(&f, 1, 5, 1, 4, 5);
	limit_sem_set_limit(&f.s, 3);
	ck_assert_uint_eq(f.s.limit, 3);
	assert_grants(&f.l, 2, (const int[]){1, 2});
	assert_sem(&f.s, 3, 2);
	ck_assert(f.t[3].w.queued);
	ck_assert(f.t[4].w.queued);
	/* raising past the queue grants everyone, no more */
	limit_sem_set_limit(&f.s, 10);
	assert_grants(&f.l, 4, (const int[]){1, 2, 3, 4});
	assert_sem(&f.s, 5, 0);
	release_n(&f.s, 5);
	ck_assert_uint_eq(f.s.in_use, 0);
	semfix_free(&f);
}
END_TEST

START_TEST(test_set_limit_lower)
{
	struct semfix f;

	semfix_init(&f, 3, 5, 3, 2, 5);
	limit_sem_set_limit(&f.s, 1);
	ck_assert_uint_eq(f.l.n, 0);
	ck_assert_uint_eq(f.s.in_use, 3);
	limit_sem_release(&f.s);
	ck_assert_uint_eq(f.l.n, 0);
	ck_assert_uint_eq(f.s.in_use, 2);
	limit_sem_release(&f.s);
	ck_assert_uint_eq(f.l.n, 0);
	ck_assert_uint_eq(f.s.in_use, 1);
	limit_sem_release(&f.s);          /* below the new limit now */
	assert_grants(&f.l, 1, (const int[]){3});
	assert_sem(&f.s, 1, 1);
	limit_sem_release(&f.s);
	assert_grants(&f.l, 2, (const int[]){3, 4});
	limit_sem_release(&f.s);
	assert_sem(&f.s, 0, 0);
	semfix_free(&f);
}
END_TEST

START_TEST(test_limit_zero_queues_everything)
{
	struct semfix f;

	semfix_init(&f, 0, 2, 0, 2, 2);
	limit_sem_release(&f.s);          /* nothing held: no-op, grants nothing */
	ck_assert_uint_eq(f.l.n, 0);
	limit_sem_set_limit(&f.s, 1);
	assert_grants(&f.l, 1, (const int[]){0});
	limit_sem_release(&f.s);
	assert_grants(&f.l, 2, (const int[]){0, 1});
	limit_sem_release(&f.s);
	ck_assert_uint_eq(f.s.in_use, 0);
	semfix_free(&f);
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

/* A bucket of rate/burst at time 0 with n test waiters t[0..n-1] (id =
 * index) and a log of cap grants: the first `taken` get a token at once,
 * the next `queued` queue in order (plain-if checks, as on the grant
 * path: the 100k test uses this too). */
struct bfix {
	struct limit_bucket b;
	struct blog l;
	struct btw *t;
};

static void bfix_init(struct bfix *f, double rate, double burst, size_t n, size_t taken,
                      size_t queued, size_t cap)
{
	size_t i;

	limit_bucket_init(&f->b, rate, burst, 0);
	blog_init(&f->l, &f->b, cap);
	f->t = calloc(n, sizeof *f->t);
	ck_assert_ptr_nonnull(f->t);
	for (i = 0; i < n; i++)
		btw_init(&f->t[i], (int)i, &f->l);
	for (i = 0; i < taken; i++)
		if (!bacquire(&f->l, &f->t[i]) || f->t[i].w.queued)
			ck_abort_msg("token %zu of a full bucket refused", i);
	for (i = 0; i < queued; i++)
		if (bacquire(&f->l, &f->t[taken + i]) || !f->t[taken + i].w.queued ||
		    f->b.nqueued != i + 1)
			ck_abort_msg("waiter %zu did not queue", taken + i);
}

static void bfix_free(struct bfix *f)
{
	free(f->t);
	blog_free(&f->l);
}

/* Grant i of the log went to id, at (ms). */
static void assert_bgrant(const struct blog *l, size_t i, int id, double at)
{
	ck_assert_uint_gt(l->n, i);
	ck_assert_int_eq(l->order[i], id);
	ck_assert_double_eq_tol(l->at[i], at, TOL);
}

START_TEST(test_bucket_starts_full)
{
	struct bfix f;

	bfix_init(&f, 20, 5, 6, 5, 1, 6);
	ck_assert_double_eq_tol(f.b.tokens, 0, TOL);
	ck_assert_double_eq(limit_bucket_next_ms(&f.b, 0), 50);
	ck_assert_uint_eq(run_timer(&f.l), 1);
	ck_assert_uint_eq(f.l.n, 6);
	assert_bgrant(&f.l, 5, 5, 50);
	ck_assert_uint_eq(f.b.nqueued, 0);
	bfix_free(&f);
}
END_TEST

START_TEST(test_bucket_second_waits_50ms)
{
	struct bfix f;

	bfix_init(&f, 20, 1, 2, 1, 1, 2);
	ck_assert_double_eq(limit_bucket_next_ms(&f.b, 0), 50);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&f.b, 30), 20, TOL);
	ck_assert_double_eq(f.b.tokens, 0);       /* next_ms does not change it */

	limit_bucket_dispatch(&f.b, 49);
	ck_assert_uint_eq(f.l.n, 1);
	ck_assert(f.t[1].w.queued);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&f.b, 49), 1, TOL);
	/* a timer that fires a hair early grants nothing, and says so */
	limit_bucket_dispatch(&f.b, 49.9999);
	ck_assert_uint_eq(f.l.n, 1);
	ck_assert(limit_bucket_next_ms(&f.b, 49.9999) > 0);

	f.l.now = 50;
	limit_bucket_dispatch(&f.b, 50);
	ck_assert_uint_eq(f.l.n, 2);
	ck_assert_int_eq(f.l.order[1], 1);
	ck_assert_double_eq(f.l.at[1], 50);
	ck_assert(!f.t[1].w.queued);
	ck_assert_uint_eq(f.b.nqueued, 0);
	ck_assert_double_eq(limit_bucket_next_ms(&f.b, 50), -1);
	bfix_free(&f);
}
END_TEST

/* The integration test's numbers: rate = 20/s, burst = 1, 40 requests. */
START_TEST(test_bucket_40_evenly_spaced)
{
	struct bfix f;
	int i;

	bfix_init(&f, 20, 1, 40, 1, 39, 40);
	ck_assert_uint_eq(f.b.nqueued, 39);
	ck_assert_uint_eq(run_timer(&f.l), 39);    /* one grant per wakeup */
	ck_assert_uint_eq(f.l.n, 40);
	for (i = 0; i < 40; i++)
		assert_bgrant(&f.l, (size_t)i, i, 50.0 * i);
	ck_assert_double_eq_tol(f.l.now, 1950, TOL);
	ck_assert_uint_eq(f.b.nqueued, 0);
	bfix_free(&f);
}
END_TEST

START_TEST(test_bucket_refill_capped)
{
	struct bfix f;
	struct limit_bucket *b = &f.b;
	struct blog *l = &f.l;
	struct btw *t;
	int i;

	bfix_init(&f, 20, 3, 8, 3, 0, 16);
	t = f.t;
	/* 100 ms earn 2 tokens */
	l->now = 100;
	ck_assert(bacquire(l, &t[3]));
	ck_assert(bacquire(l, &t[4]));
	ck_assert(!bacquire(l, &t[5]));
	limit_bucket_cancel(b, &t[5].w);
	/* an hour idle: back to burst, not 72000 tokens */
	l->now = 100 + 3600e3;
	limit_bucket_dispatch(b, l->now);
	ck_assert_double_eq_tol(b->tokens, 3, TOL);
	ck_assert_double_eq(limit_bucket_next_ms(b, l->now + 3600e3), -1);
	for (i = 5; i < 8; i++)
		ck_assert(bacquire(l, &t[i]));
	ck_assert(!bacquire(l, &t[0]));
	ck_assert_double_eq_tol(limit_bucket_next_ms(b, l->now), 50, TOL);
	/* a clock that goes back adds nothing and takes nothing */
	ck_assert_double_eq_tol(limit_bucket_next_ms(b, l->now - 1000), 50, TOL);
	limit_bucket_dispatch(b, l->now - 1000);
	ck_assert(t[0].w.queued);
	ck_assert_double_eq_tol(b->tokens, 0, TOL);
	limit_bucket_dispatch(b, l->now + 49);  /* counted from the latest time */
	ck_assert(t[0].w.queued);
	limit_bucket_dispatch(b, l->now + 50);
	ck_assert(!t[0].w.queued);
	bfix_free(&f);
}
END_TEST

START_TEST(test_bucket_cancel)
{
	struct bfix f;
	struct limit_bucket *b = &f.b;
	struct blog *l = &f.l;
	struct btw *t;

	bfix_init(&f, 20, 1, 5, 1, 4, 8);
	t = f.t;
	ck_assert_uint_eq(b->nqueued, 4);

	limit_bucket_cancel(b, &t[2].w);       /* middle */
	limit_bucket_cancel(b, &t[1].w);       /* head: the next one is not sooner */
	ck_assert(!t[1].w.queued);
	ck_assert(!t[2].w.queued);
	ck_assert_uint_eq(b->nqueued, 2);
	ck_assert_double_eq(limit_bucket_next_ms(b, 0), 50);
	/* no-ops: already cancelled, and one that got its token */
	limit_bucket_cancel(b, &t[2].w);
	limit_bucket_cancel(b, &t[0].w);
	ck_assert_uint_eq(b->nqueued, 2);
	/* a cancelled waiter may queue again, at the tail */
	ck_assert(!bacquire(l, &t[1]));
	ck_assert_uint_eq(run_timer(l), 3);
	ck_assert_uint_eq(l->n, 4);
	assert_bgrant(l, 1, 3, 50);
	ck_assert_int_eq(l->order[2], 4);
	assert_bgrant(l, 3, 1, 150);

	/* cancelling everyone empties the queue: the timer has nothing to do */
	ck_assert(!bacquire(l, &t[2]));
	limit_bucket_cancel(b, &t[2].w);
	ck_assert_uint_eq(b->nqueued, 0);
	ck_assert_double_eq(limit_bucket_next_ms(b, l->now), -1);

	/* waiters owed tokens by a late timer, cancelled before it fires: the
	 * idle bucket keeps burst tokens, not theirs too */
	l->now += 50;
	ck_assert(bacquire(l, &t[0]));
	ck_assert(!bacquire(l, &t[1]));
	ck_assert(!bacquire(l, &t[2]));
	l->now += 1000;
	ck_assert(!bacquire(l, &t[3]));         /* refill: 2 owed + 1 */
	ck_assert_double_eq_tol(b->tokens, 3, TOL);
	limit_bucket_cancel(b, &t[1].w);
	limit_bucket_cancel(b, &t[2].w);
	limit_bucket_cancel(b, &t[3].w);
	ck_assert_double_eq(b->tokens, 1);
	ck_assert(bacquire(l, &t[1]));
	ck_assert(!bacquire(l, &t[2]));
	limit_bucket_cancel(b, &t[2].w);
	bfix_free(&f);
}
END_TEST

/* A token is there (the timer has not fired yet) but someone is queued:
 * the newcomer queues behind, it does not take the token. */
START_TEST(test_bucket_newcomer_never_overtakes)
{
	struct bfix f;
	struct btw *a, *c, *n1, *n2;

	bfix_init(&f, 20, 2, 4, 0, 0, 4);
	a = &f.t[0];
	c = &f.t[1];
	n1 = &f.t[2];
	n2 = &f.t[3];
	ck_assert(bacquire(&f.l, a));
	ck_assert(bacquire(&f.l, n2));
	ck_assert(!bacquire(&f.l, c));
	f.l.now = 75;                              /* 1.5 tokens */
	ck_assert_double_eq(limit_bucket_next_ms(&f.b, f.l.now), 0);
	ck_assert(!bacquire(&f.l, n1));
	ck_assert(n1->w.queued);
	ck_assert_uint_eq(f.b.nqueued, 2);
	ck_assert_double_eq_tol(f.b.tokens, 1.5, TOL);   /* untouched */
	limit_bucket_dispatch(&f.b, f.l.now);        /* the late timer */
	ck_assert_uint_eq(f.l.n, 3);
	ck_assert_int_eq(f.l.order[2], c->id);
	ck_assert(n1->w.queued);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&f.b, f.l.now), 25, TOL);
	ck_assert_uint_eq(run_timer(&f.l), 1);
	assert_bgrant(&f.l, 3, n1->id, 100);
	bfix_free(&f);
}
END_TEST

/* The caller's timer fires late (a busy loop): the tokens the queued
 * waiters were owed meanwhile are not lost to the burst cap, so the late
 * wakeup grants every waiter whose time has come and the next ones stay
 * on schedule (no drift).  Once nobody waits, the cap is burst again. */
START_TEST(test_bucket_late_timer_no_drift)
{
	struct bfix f;

	bfix_init(&f, 20, 1, 6, 1, 5, 8);
	ck_assert_double_eq(limit_bucket_next_ms(&f.b, 0), 50);
	f.l.now = 120;                             /* due at 50 and at 100 */
	limit_bucket_dispatch(&f.b, f.l.now);
	ck_assert_uint_eq(f.l.n, 3);
	ck_assert_int_eq(f.l.order[1], 1);
	ck_assert_int_eq(f.l.order[2], 2);
	ck_assert_double_eq_tol(f.b.tokens, 0.4, TOL);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&f.b, f.l.now), 30, TOL);
	ck_assert_uint_eq(run_timer(&f.l), 3);
	ck_assert_double_eq_tol(f.l.at[3], 150, TOL);
	ck_assert_double_eq_tol(f.l.at[4], 200, TOL);
	ck_assert_double_eq_tol(f.l.at[5], 250, TOL);
	/* a very late timer with one waiter: granted (as if at 300), and the
	 * idle time after that refills to burst only, as on time */
	ck_assert(!bacquire(&f.l, &f.t[0]));
	f.l.now = 10e3;
	limit_bucket_dispatch(&f.b, f.l.now);
	ck_assert(!f.t[0].w.queued);
	ck_assert_double_eq(f.b.tokens, 1);
	limit_bucket_dispatch(&f.b, 20e3);
	ck_assert_double_eq(f.b.tokens, 1);
	bfix_free(&f);
}
END_TEST

/* Grants from inside the grant loop: a newcomer acquiring while others
 * are queued queues behind them, even with tokens left. */
START_TEST(test_bucket_acquire_from_grant)
{
	struct bfix f;
	struct limit_bucket *b = &f.b;
	struct blog *l = &f.l;
	struct btw *t, *newcomer, *late;
	int i;

	bfix_init(&f, 20, 4, 6, 4, 0, 8);
	t = f.t;
	newcomer = &t[4];
	newcomer->id = 99;
	late = &t[5];
	late->id = 98;
	for (i = 0; i < 4; i++)
		ck_assert(!limit_bucket_acquire(b, &t[i].w, 0));
	l->hook_id = 0;
	l->hook_acquire = newcomer;
	l->now = 150;                             /* 3 tokens for 4 waiters */
	limit_bucket_dispatch(b, l->now);
	ck_assert_int_eq(l->hook_acquire_result, 0);
	ck_assert_double_eq_tol(l->hook_tokens, 2, TOL);   /* tokens were there */
	ck_assert_uint_eq(l->n, 4 + 3);
	ck_assert_int_eq(l->order[4], 0);
	ck_assert_int_eq(l->order[5], 1);
	ck_assert_int_eq(l->order[6], 2);
	ck_assert_uint_eq(b->nqueued, 2);         /* t3, then the newcomer */
	ck_assert(t[3].w.queued);
	ck_assert(newcomer->w.queued);
	limit_bucket_cancel(b, &t[3].w);
	limit_bucket_cancel(b, &newcomer->w);
	blog_free(l);

	/* the last queued waiter's grant finds the queue empty and a token
	 * left: a newcomer then takes it at once, nobody is overtaken */
	limit_bucket_init(b, 20, 3, 0);
	blog_init(l, b, 8);
	ck_assert(bacquire(l, &t[0]));
	ck_assert(bacquire(l, &t[1]));
	ck_assert(bacquire(l, &t[2]));
	ck_assert(!bacquire(l, &t[3]));
	l->hook_id = 3;
	l->hook_acquire = late;
	l->now = 100;
	limit_bucket_dispatch(b, l->now);
	ck_assert_int_eq(l->hook_acquire_result, 1);
	ck_assert(!late->w.queued);
	ck_assert_uint_eq(b->nqueued, 0);
	ck_assert_double_eq_tol(b->tokens, 0, TOL);
	bfix_free(&f);
}
END_TEST

START_TEST(test_bucket_cancel_from_grant)
{
	struct bfix f;

	bfix_init(&f, 20, 1, 4, 1, 3, 4);
	f.l.hook_id = 1;
	f.l.hook_cancel = &f.t[2];
	f.l.now = 50;                              /* one token */
	limit_bucket_dispatch(&f.b, f.l.now);
	ck_assert_uint_eq(f.l.n, 2);
	ck_assert(!f.t[2].w.queued);
	ck_assert_uint_eq(f.b.nqueued, 1);
	ck_assert_uint_eq(run_timer(&f.l), 1);
	ck_assert_uint_eq(f.l.n, 3);
	ck_assert_int_eq(f.l.order[1], 1);
	assert_bgrant(&f.l, 2, 3, 100);           /* t2 never granted */
	ck_assert_uint_eq(f.b.nqueued, 0);
	bfix_free(&f);
}
END_TEST

/* 100k waiters granted in one dispatch, each grant queueing its waiter
 * again (a request chain) and calling dispatch (re-entry): FIFO order,
 * constant stack depth, and it stops when the tokens run out. */
START_TEST(test_bucket_reentrant_100k)
{
	enum { N = 100000 };
	struct bfix f;
	size_t i;

	bfix_init(&f, 1000, N, N, N, 0, 2 * N);
	for (i = 0; i < N; i++)
		if (limit_bucket_acquire(&f.b, &f.t[i].w, 0))
			ck_abort_msg("acquire %zu of an empty bucket granted", i);
	f.l.n = 0;
	f.l.reacquire = true;
	f.l.dispatch_on_grant = true;
	f.l.now = (double)N;                       /* N ms at 1000/s: full again */
	limit_bucket_dispatch(&f.b, f.l.now);
	ck_assert_uint_eq(f.l.n, N);
	for (i = 0; i < N; i++)
		if (f.l.order[i] != (int)i)
			ck_abort_msg("grant %zu went to waiter %d", i, f.l.order[i]);
	ck_assert_uint_eq(f.b.nqueued, N);         /* all queued again, in order */
	ck_assert(!f.b.dispatching);
	ck_assert_double_eq_tol(f.b.tokens, 0, TOL);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&f.b, f.l.now), 1, TOL);
	ck_assert_uint_le(f.l.frame_max - f.l.frame_min, 512);
	/* the second round starts where the first ended: FIFO across rounds */
	f.l.reacquire = false;
	f.l.now += 3;
	limit_bucket_dispatch(&f.b, f.l.now);
	ck_assert_uint_eq(f.l.n, N + 3);
	ck_assert_int_eq(f.l.order[N], 0);
	ck_assert_int_eq(f.l.order[N + 2], 2);
	for (i = 0; i < N; i++)
		limit_bucket_cancel(&f.b, &f.t[i].w);
	ck_assert_uint_eq(f.b.nqueued, 0);
	bfix_free(&f);
}
END_TEST

START_TEST(test_bucket_set_rate_lower_burst)
{
	struct bfix f;

	bfix_init(&f, 20, 10, 4, 0, 0, 4);
	limit_bucket_set_rate(&f.b, 20, 2, 0);
	ck_assert_double_eq(f.b.burst, 2);
	ck_assert_double_eq(f.b.tokens, 2);
	ck_assert(bacquire(&f.l, &f.t[0]));
	ck_assert(bacquire(&f.l, &f.t[1]));
	ck_assert(!bacquire(&f.l, &f.t[2]));
	/* a higher burst adds room, not tokens */
	limit_bucket_set_rate(&f.b, 20, 10, 0);
	ck_assert_double_eq_tol(f.b.tokens, 0, TOL);
	ck_assert(f.t[2].w.queued);
	/* and after a long idle the new burst is the cap */
	limit_bucket_cancel(&f.b, &f.t[2].w);
	limit_bucket_dispatch(&f.b, 60e3);
	ck_assert_double_eq(f.b.tokens, 10);
	bfix_free(&f);
}
END_TEST

START_TEST(test_bucket_set_rate_higher_rate)
{
	struct bfix f;

	bfix_init(&f, 20, 1, 3, 1, 2, 3);
	ck_assert_double_eq(limit_bucket_next_ms(&f.b, 0), 50);
	/* at t=10: 0.2 token earned at 20/s; the other 0.8 at 100/s = 8 ms */
	f.l.now = 10;
	limit_bucket_set_rate(&f.b, 100, 1, f.l.now);
	ck_assert_uint_eq(f.l.n, 1);
	ck_assert_double_eq_tol(f.b.tokens, 0.2, TOL);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&f.b, f.l.now), 8, TOL);
	ck_assert_uint_eq(run_timer(&f.l), 2);
	ck_assert_double_eq_tol(f.l.at[1], 18, TOL);
	ck_assert_double_eq_tol(f.l.at[2], 28, TOL);
	/* and a lower rate lengthens it: 0 tokens at 100/s = 10 ms, at 10/s 100 */
	ck_assert(!bacquire(&f.l, &f.t[0]));
	ck_assert_double_eq_tol(limit_bucket_next_ms(&f.b, f.l.now), 10, TOL);
	limit_bucket_set_rate(&f.b, 10, 1, f.l.now);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&f.b, f.l.now), 100, TOL);
	limit_bucket_cancel(&f.b, &f.t[0].w);
	bfix_free(&f);
}
END_TEST

/* rate <= 0 = no rate limit: queued waiters go at once, newcomers too;
 * back to a rate, the bucket starts full. */
START_TEST(test_bucket_set_rate_unlimited)
{
	struct bfix f;
	int i;

	bfix_init(&f, 20, 1, 6, 1, 3, 16);
	limit_bucket_set_rate(&f.b, 0, 1, 1);
	ck_assert_uint_eq(f.l.n, 4);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(f.l.order[i], i);
	ck_assert_uint_eq(f.b.nqueued, 0);
	ck_assert_double_eq(limit_bucket_next_ms(&f.b, 1), -1);
	for (i = 0; i < 4; i++)
		ck_assert(bacquire(&f.l, &f.t[i]));
	limit_bucket_set_rate(&f.b, 20, 3, 1);
	ck_assert_double_eq(f.b.tokens, 3);
	for (i = 0; i < 3; i++)
		ck_assert(bacquire(&f.l, &f.t[i]));
	ck_assert(!bacquire(&f.l, &f.t[3]));
	ck_assert_double_eq(limit_bucket_next_ms(&f.b, 1), 50);
	limit_bucket_cancel(&f.b, &f.t[3].w);
	/* an unlimited bucket from the start */
	limit_bucket_init(&f.b, 0, 1, 0);
	for (i = 0; i < 6; i++)
		ck_assert(limit_bucket_acquire(&f.b, &f.t[i].w, 0));
	bfix_free(&f);
}
END_TEST

START_TEST(test_bucket_fractional_rate)
{
	struct bfix f;
	int i;

	bfix_init(&f, 0.5, 1, 5, 1, 4, 5);
	ck_assert_double_eq(limit_bucket_next_ms(&f.b, 0), 2000);
	f.l.now = 1999;
	limit_bucket_dispatch(&f.b, f.l.now);
	ck_assert_uint_eq(f.l.n, 1);
	ck_assert_double_eq_tol(limit_bucket_next_ms(&f.b, f.l.now), 1, TOL);
	ck_assert_uint_eq(run_timer(&f.l), 4);
	for (i = 0; i < 5; i++)
		assert_bgrant(&f.l, (size_t)i, i, 2000.0 * i);
	bfix_free(&f);
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
	struct bfix f;
	size_t i, wakeups = 0;
	double d;

	bfix_init(&f, 3, 1, N, 1, N - 1, N);
	while ((d = limit_bucket_next_ms(&f.b, f.l.now)) >= 0) {
		size_t before = f.l.n;

		ck_assert(d > 0);
		f.l.now += ceil_us(d);
		limit_bucket_dispatch(&f.b, f.l.now);
		ck_assert_uint_eq(f.l.n, before + 1);
		wakeups++;
	}
	ck_assert_uint_eq(wakeups, N - 1);
	for (i = 0; i < N; i++) {
		double ideal = (double)i * 1000.0 / 3.0;

		ck_assert_int_eq(f.l.order[i], (int)i);
		if (!(f.l.at[i] >= ideal - TOL && f.l.at[i] <= ideal + 0.001 + TOL))
			ck_abort_msg("grant %zu at %.9f, ideal %.9f", i, f.l.at[i], ideal);
	}
	bfix_free(&f);
}
END_TEST

static Suite *limits_suite(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("sem");

	tcase_add_test(tc, test_init);
	tcase_add_test(tc, test_acquire_up_to_limit);
	tcase_add_test(tc, test_fifo_order);
	tcase_add_test(tc, test_ahead_waiters_go_first);
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
