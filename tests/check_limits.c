/* check_limits: unit tests of the FIFO counting semaphore (src/limits.c). */
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
