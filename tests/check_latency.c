/* check_latency: unit tests of the rolling latency window (src/latency.c):
 * nearest-rank quantiles, the window rolling over after LATENCY_WINDOW
 * samples, the sorted copy being exact up to LATENCY_EXACT samples and
 * refreshed every LATENCY_RESORT additions after, and bad samples ignored. */
#include <math.h>
#include <stdbool.h>

#include <check.h>

#include "latency.h"

/* --- helpers ------------------------------------------------------------- */

static void add_n(struct latency_window *w, unsigned n, double ms)
{
	for (unsigned i = 0; i < n; i++)
		latency_add(w, ms);
}

/* --- quantiles ----------------------------------------------------------- */

START_TEST(test_empty)
{
	struct latency_window w;

	latency_init(&w);
	ck_assert_uint_eq(latency_samples(&w), 0);
	ck_assert(latency_quantile(&w, 0.5) == -1);
	ck_assert(latency_quantile(&w, 0.95) == -1);
	ck_assert(w.p50 == -1 && w.p95 == -1);
}
END_TEST

START_TEST(test_one_sample)
{
	struct latency_window w;

	latency_init(&w);
	latency_add(&w, 12.5);
	ck_assert_uint_eq(latency_samples(&w), 1);
	ck_assert(latency_quantile(&w, 0.01) == 12.5);
	ck_assert(latency_quantile(&w, 0.5) == 12.5);
	ck_assert(latency_quantile(&w, 0.99) == 12.5);
}
END_TEST

/* 1..100 added out of order: nearest rank gives x[ceil(q * n)]. */
START_TEST(test_nearest_rank)
{
	struct latency_window w;

	latency_init(&w);
	for (int i = 0; i < 100; i++)
		latency_add(&w, (double)((i * 37) % 100 + 1));   /* 37 is prime to 100 */
	ck_assert_uint_eq(latency_samples(&w), 100);
	ck_assert(latency_quantile(&w, 0.5) == 50);
	ck_assert(latency_quantile(&w, 0.95) == 95);
	ck_assert(latency_quantile(&w, 0.01) == 1);
	ck_assert(latency_quantile(&w, 0.99) == 99);
	ck_assert(latency_quantile(&w, 0.999) == 100);
	ck_assert(w.p50 == 50 && w.p95 == 95);
}
END_TEST

START_TEST(test_q_out_of_range)
{
	struct latency_window w;

	latency_init(&w);
	for (int i = 1; i <= 10; i++)
		latency_add(&w, i);
	ck_assert(latency_quantile(&w, 0) == 1);
	ck_assert(latency_quantile(&w, -3) == 1);
	ck_assert(latency_quantile(&w, NAN) == 1);
	ck_assert(latency_quantile(&w, 1) == 10);
	ck_assert(latency_quantile(&w, 7) == 10);
}
END_TEST

/* --- the window ---------------------------------------------------------- */

/* 1..1000: only the last 256 (745..1000) count. */
START_TEST(test_rolls_over)
{
	struct latency_window w;

	ck_assert_uint_eq(LATENCY_WINDOW, 256);
	latency_init(&w);
	for (int i = 1; i <= 1000; i++)
		latency_add(&w, i);
	ck_assert_uint_eq(latency_samples(&w), LATENCY_WINDOW);
	ck_assert_uint_eq(w.total, 1000);
	ck_assert(latency_quantile(&w, 0.001) == 745);
	ck_assert(latency_quantile(&w, 0.5) == 744 + 128);
	ck_assert(latency_quantile(&w, 0.95) == 744 + 244);   /* ceil(243.2) */
	ck_assert(latency_quantile(&w, 0.9999) == 1000);
}
END_TEST

/* A full window of big samples pushed out by small ones. */
START_TEST(test_old_samples_leave)
{
	struct latency_window w;

	latency_init(&w);
	add_n(&w, LATENCY_WINDOW, 1000);
	ck_assert(latency_quantile(&w, 0.5) == 1000);
	add_n(&w, LATENCY_WINDOW, 5);
	ck_assert(latency_quantile(&w, 0.99) == 5);
}
END_TEST

/* --- the cache ----------------------------------------------------------- */

/* Over LATENCY_EXACT samples the copy lags until LATENCY_RESORT additions
 * have come in, then the p95 moves. */
START_TEST(test_cache_refreshes)
{
	struct latency_window w;

	latency_init(&w);
	add_n(&w, 200, 10);
	ck_assert(latency_quantile(&w, 0.95) == 10);
	add_n(&w, LATENCY_RESORT - 1, 1000);
	ck_assert(latency_quantile(&w, 0.95) == 10);      /* cached */
	ck_assert(!w.fresh);
	latency_add(&w, 1000);                            /* 16 of 216 > 5 % */
	ck_assert(latency_quantile(&w, 0.95) == 1000);
	ck_assert(w.fresh);
	ck_assert(w.p95 == 1000 && w.p50 == 10);
}
END_TEST

/* Up to LATENCY_EXACT samples every query sees every sample. */
START_TEST(test_exact_while_few)
{
	struct latency_window w;

	latency_init(&w);
	add_n(&w, 95, 10);
	ck_assert(latency_quantile(&w, 0.95) == 10);
	add_n(&w, 5, 1000);                               /* 100 held */
	ck_assert(latency_quantile(&w, 0.95) == 10);      /* rank 95 */
	ck_assert(latency_quantile(&w, 0.96) == 1000);
	ck_assert(w.fresh);
}
END_TEST

/* Queries between additions do not reset the count to the next refresh. */
START_TEST(test_queries_do_not_delay_refresh)
{
	struct latency_window w;

	latency_init(&w);
	add_n(&w, 200, 10);
	ck_assert(latency_quantile(&w, 0.5) == 10);
	for (int i = 0; i < LATENCY_RESORT - 1; i++) {
		latency_add(&w, 1000);
		ck_assert(latency_quantile(&w, 0.95) == 10);
	}
	latency_add(&w, 1000);
	ck_assert(latency_quantile(&w, 0.95) == 1000);
}
END_TEST

/* --- bad samples --------------------------------------------------------- */

START_TEST(test_bad_samples_ignored)
{
	struct latency_window w;

	latency_init(&w);
	latency_add(&w, NAN);
	latency_add(&w, -1);
	latency_add(&w, -INFINITY);
	ck_assert_uint_eq(latency_samples(&w), 0);
	ck_assert_uint_eq(w.total, 0);
	ck_assert(latency_quantile(&w, 0.5) == -1);
	latency_add(&w, 0);                               /* zero is a time */
	latency_add(&w, NAN);
	ck_assert_uint_eq(latency_samples(&w), 1);
	ck_assert(latency_quantile(&w, 0.95) == 0);
}
END_TEST

/* --- runner -------------------------------------------------------------- */

static Suite *latency_suite(void)
{
	Suite *s = suite_create("latency");
	TCase *tc;

	tc = tcase_create("quantiles");
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_one_sample);
	tcase_add_test(tc, test_nearest_rank);
	tcase_add_test(tc, test_q_out_of_range);
	suite_add_tcase(s, tc);

	tc = tcase_create("window");
	tcase_add_test(tc, test_rolls_over);
	tcase_add_test(tc, test_old_samples_leave);
	suite_add_tcase(s, tc);

	tc = tcase_create("cache");
	tcase_add_test(tc, test_cache_refreshes);
	tcase_add_test(tc, test_exact_while_few);
	tcase_add_test(tc, test_queries_do_not_delay_refresh);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad_samples");
	tcase_add_test(tc, test_bad_samples_ignored);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(latency_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
