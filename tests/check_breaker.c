/* check_breaker: unit tests of the circuit breaker's state machine
 * (src/breaker.c, SPEC section 10): off admits always, N consecutive
 * failures open it for the cooldown, then one probe while every other
 * request is refused; the probe's success (or a neutral end) closes it, its
 * failure opens it again.  All pure: the clock is the test's. */
#include <stdbool.h>
#include <string.h>

#include <check.h>

#include "breaker.h"

/* --- helpers ------------------------------------------------------------- */

#define COOLDOWN 10000L

static struct breaker make(long threshold, long cooldown_ms)
{
	struct breaker b;

	memset(&b, 0, sizeof b);
	breaker_configure(&b, threshold, cooldown_ms);
	return b;
}

static enum breaker_verdict admit(struct breaker *b, double now_ms, double *retry_in_ms)
{
	double dummy;

	return breaker_admit(b, now_ms, retry_in_ms != NULL ? retry_in_ms : &dummy);
}

static void fail_n(struct breaker *b, long n, double now_ms)
{
	for (long i = 0; i < n; i++)
		breaker_note(b, BREAKER_FAILURE, false, now_ms);
}

/* open at t (threshold failures at t) */
static struct breaker opened(long threshold, double t)
{
	struct breaker b = make(threshold, COOLDOWN);

	fail_n(&b, threshold, t);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
	return b;
}

/* open at t, then the probe out at t + COOLDOWN */
static struct breaker probing(long threshold, double t)
{
	struct breaker b = opened(threshold, t);

	ck_assert_int_eq(admit(&b, t + COOLDOWN, NULL), BREAKER_PROBE);
	ck_assert_int_eq(b.state, BREAKER_HALF_OPEN);
	return b;
}

/* --- closed -------------------------------------------------------------- */

START_TEST(test_off_admits_always)
{
	struct breaker b = make(0, COOLDOWN);
	double retry_in = -1;

	for (int i = 0; i < 100; i++) {
		breaker_note(&b, BREAKER_FAILURE, false, i);
		ck_assert_int_eq(admit(&b, i, &retry_in), BREAKER_ADMIT);
		ck_assert(retry_in == 0);
	}
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_uint_eq(b.trips, 0);
	/* noting as a probe changes nothing either */
	breaker_note(&b, BREAKER_FAILURE, true, 200);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(admit(&b, 201, NULL), BREAKER_ADMIT);
}
END_TEST

START_TEST(test_zero_struct_is_off)
{
	struct breaker b;

	memset(&b, 0, sizeof b);
	ck_assert_int_eq(admit(&b, 0, NULL), BREAKER_ADMIT);
	ck_assert_str_eq(breaker_state_name(b.state), "closed");
}
END_TEST

START_TEST(test_below_threshold_closed)
{
	struct breaker b = make(5, COOLDOWN);
	double retry_in = -1;

	for (long i = 1; i <= 4; i++) {
		breaker_note(&b, BREAKER_FAILURE, false, (double)i);
		ck_assert_int_eq(b.state, BREAKER_CLOSED);
		ck_assert_int_eq(b.failures, i);
		ck_assert_int_eq(admit(&b, (double)i, &retry_in), BREAKER_ADMIT);
		ck_assert(retry_in == 0);
	}
	ck_assert_uint_eq(b.trips, 0);
}
END_TEST

START_TEST(test_success_resets)
{
	struct breaker b = make(3, COOLDOWN);

	fail_n(&b, 2, 0);
	breaker_note(&b, BREAKER_SUCCESS, false, 1);
	ck_assert_int_eq(b.failures, 0);
	fail_n(&b, 2, 2);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(b.failures, 2);
	fail_n(&b, 1, 3);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
}
END_TEST

START_TEST(test_neutral_neither_counts_nor_resets)
{
	struct breaker b = make(3, COOLDOWN);

	for (int i = 0; i < 10; i++)
		breaker_note(&b, BREAKER_NEUTRAL, false, i);
	ck_assert_int_eq(b.failures, 0);
	fail_n(&b, 2, 10);
	for (int i = 0; i < 10; i++)
		breaker_note(&b, BREAKER_NEUTRAL, false, 11 + i);
	ck_assert_int_eq(b.failures, 2);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	fail_n(&b, 1, 30);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
}
END_TEST

START_TEST(test_threshold_one)
{
	struct breaker b = make(1, COOLDOWN);

	breaker_note(&b, BREAKER_FAILURE, false, 0);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
	ck_assert_uint_eq(b.trips, 1);
}
END_TEST

/* --- open ---------------------------------------------------------------- */

START_TEST(test_open_rejects_with_time_left)
{
	struct breaker b = make(3, COOLDOWN);
	double retry_in = -1;

	fail_n(&b, 3, 1000);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
	ck_assert_str_eq(breaker_state_name(b.state), "open");
	ck_assert_uint_eq(b.trips, 1);

	ck_assert_int_eq(admit(&b, 1000, &retry_in), BREAKER_REJECT);
	ck_assert_double_eq_tol(retry_in, COOLDOWN, 1e-9);
	ck_assert_int_eq(admit(&b, 1001, &retry_in), BREAKER_REJECT);
	ck_assert_double_eq_tol(retry_in, COOLDOWN - 1, 1e-9);
	ck_assert_int_eq(admit(&b, 6000, &retry_in), BREAKER_REJECT);
	ck_assert_double_eq_tol(retry_in, 5000, 1e-9);
	ck_assert_int_eq(admit(&b, 10999.5, &retry_in), BREAKER_REJECT);
	ck_assert_double_eq_tol(retry_in, 0.5, 1e-9);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
	ck_assert_uint_eq(b.trips, 1);
}
END_TEST

START_TEST(test_open_notes_change_nothing)
{
	/* requests admitted before it opened end while it is open */
	struct breaker b = opened(2, 0);
	double retry_in = -1;
	enum breaker_result rs[] = { BREAKER_SUCCESS, BREAKER_FAILURE, BREAKER_NEUTRAL };

	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 5; k++)
			breaker_note(&b, rs[i], false, 100 + i);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
	ck_assert_uint_eq(b.trips, 1);
	ck_assert_int_eq(admit(&b, 5000, &retry_in), BREAKER_REJECT);
	ck_assert_double_eq_tol(retry_in, 5000, 1e-9);   /* the cooldown is not moved */
	ck_assert_int_eq(admit(&b, COOLDOWN, NULL), BREAKER_PROBE);
}
END_TEST

/* --- half open ----------------------------------------------------------- */

START_TEST(test_one_probe_after_cooldown)
{
	struct breaker b = opened(3, 0);
	double retry_in = -1;

	ck_assert_int_eq(admit(&b, COOLDOWN - 0.001, &retry_in), BREAKER_REJECT);
	ck_assert(retry_in > 0);
	/* the cooldown ends exactly at open + cooldown */
	ck_assert_int_eq(admit(&b, COOLDOWN, &retry_in), BREAKER_PROBE);
	ck_assert(retry_in == 0);
	ck_assert_int_eq(b.state, BREAKER_HALF_OPEN);
	ck_assert_str_eq(breaker_state_name(b.state), "half_open");
	for (int i = 0; i < 10; i++) {
		retry_in = -1;
		ck_assert_int_eq(admit(&b, COOLDOWN + 1 + i * 1000.0, &retry_in), BREAKER_REJECT);
		ck_assert(retry_in == 0);
	}
	ck_assert_int_eq(b.state, BREAKER_HALF_OPEN);
	ck_assert_uint_eq(b.trips, 1);
}
END_TEST

START_TEST(test_probe_late_asker)
{
	/* nobody asks until long after the cooldown: the first one probes */
	struct breaker b = opened(3, 0);
	double retry_in = -1;

	ck_assert_int_eq(admit(&b, 10 * COOLDOWN, &retry_in), BREAKER_PROBE);
	ck_assert_int_eq(admit(&b, 10 * COOLDOWN, &retry_in), BREAKER_REJECT);
	ck_assert(retry_in == 0);
}
END_TEST

START_TEST(test_probe_success_closes)
{
	struct breaker b = probing(3, 0);

	breaker_note(&b, BREAKER_SUCCESS, true, COOLDOWN + 50);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(b.failures, 0);
	ck_assert(!b.probing);
	ck_assert_uint_eq(b.trips, 1);
	ck_assert_int_eq(admit(&b, COOLDOWN + 51, NULL), BREAKER_ADMIT);
	ck_assert_int_eq(admit(&b, COOLDOWN + 51, NULL), BREAKER_ADMIT);
	/* failures count from 0 again */
	fail_n(&b, 2, COOLDOWN + 60);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(b.failures, 2);
	fail_n(&b, 1, COOLDOWN + 70);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
	ck_assert_uint_eq(b.trips, 2);
}
END_TEST

START_TEST(test_probe_failure_reopens)
{
	struct breaker b = probing(3, 0);
	double t = COOLDOWN + 500;   /* the probe fails half a second in */
	double retry_in = -1;

	breaker_note(&b, BREAKER_FAILURE, true, t);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
	ck_assert_uint_eq(b.trips, 2);
	ck_assert(!b.probing);
	/* a new cooldown, from the probe's failure */
	ck_assert_int_eq(admit(&b, t, &retry_in), BREAKER_REJECT);
	ck_assert_double_eq_tol(retry_in, COOLDOWN, 1e-9);
	ck_assert_int_eq(admit(&b, t + 2500, &retry_in), BREAKER_REJECT);
	ck_assert_double_eq_tol(retry_in, COOLDOWN - 2500, 1e-9);
	ck_assert_int_eq(admit(&b, t + COOLDOWN - 1, &retry_in), BREAKER_REJECT);
	ck_assert_double_eq_tol(retry_in, 1, 1e-9);
	/* and then a probe again */
	ck_assert_int_eq(admit(&b, t + COOLDOWN, &retry_in), BREAKER_PROBE);
	ck_assert_int_eq(admit(&b, t + COOLDOWN, &retry_in), BREAKER_REJECT);
	ck_assert(retry_in == 0);
	breaker_note(&b, BREAKER_FAILURE, true, t + COOLDOWN + 1);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
	ck_assert_uint_eq(b.trips, 3);
}
END_TEST

START_TEST(test_probe_neutral_closes)
{
	struct breaker b = probing(3, 0);

	breaker_note(&b, BREAKER_NEUTRAL, true, COOLDOWN + 10);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(b.failures, 0);
	ck_assert_uint_eq(b.trips, 1);
	ck_assert_int_eq(admit(&b, COOLDOWN + 11, NULL), BREAKER_ADMIT);
}
END_TEST

START_TEST(test_probe_abandoned)
{
	struct breaker b = probing(3, 0);
	double retry_in = -1;

	ck_assert_int_eq(admit(&b, COOLDOWN + 1, &retry_in), BREAKER_REJECT);
	breaker_probe_abandoned(&b);
	ck_assert_int_eq(b.state, BREAKER_HALF_OPEN);
	ck_assert_int_eq(admit(&b, COOLDOWN + 2, &retry_in), BREAKER_PROBE);
	ck_assert(retry_in == 0);
	ck_assert_int_eq(admit(&b, COOLDOWN + 3, &retry_in), BREAKER_REJECT);
	ck_assert(retry_in == 0);
	/* the second probe's end counts */
	breaker_note(&b, BREAKER_SUCCESS, true, COOLDOWN + 4);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_uint_eq(b.trips, 1);
}
END_TEST

START_TEST(test_abandoned_outside_half_open)
{
	struct breaker b = make(3, COOLDOWN);

	breaker_probe_abandoned(&b);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	fail_n(&b, 3, 0);
	breaker_probe_abandoned(&b);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
	ck_assert_int_eq(admit(&b, 1, NULL), BREAKER_REJECT);
}
END_TEST

START_TEST(test_half_open_non_probe_notes_change_nothing)
{
	/* requests admitted before it opened end while the probe is out */
	struct breaker b = probing(2, 0);
	enum breaker_result rs[] = { BREAKER_SUCCESS, BREAKER_FAILURE, BREAKER_NEUTRAL };

	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 5; k++)
			breaker_note(&b, rs[i], false, COOLDOWN + 1);
	ck_assert_int_eq(b.state, BREAKER_HALF_OPEN);
	ck_assert(b.probing);
	ck_assert_uint_eq(b.trips, 1);
	ck_assert_int_eq(admit(&b, COOLDOWN + 2, NULL), BREAKER_REJECT);
	breaker_note(&b, BREAKER_SUCCESS, true, COOLDOWN + 3);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(b.failures, 0);
}
END_TEST

/* --- reconfigure --------------------------------------------------------- */

START_TEST(test_reconfigure_off_closes_open)
{
	struct breaker b = opened(3, 0);

	breaker_configure(&b, 0, COOLDOWN);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(admit(&b, 1, NULL), BREAKER_ADMIT);
	ck_assert_uint_eq(b.trips, 1);
	/* on again: a fresh count */
	breaker_configure(&b, 3, COOLDOWN);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(b.failures, 0);
	fail_n(&b, 2, 2);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	fail_n(&b, 1, 3);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
	ck_assert_uint_eq(b.trips, 2);
}
END_TEST

START_TEST(test_reconfigure_off_closes_half_open)
{
	struct breaker b = probing(3, 0);

	breaker_configure(&b, 0, COOLDOWN);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert(!b.probing);
	ck_assert_int_eq(admit(&b, COOLDOWN + 1, NULL), BREAKER_ADMIT);
	ck_assert_int_eq(admit(&b, COOLDOWN + 1, NULL), BREAKER_ADMIT);
}
END_TEST

START_TEST(test_reconfigure_off_clears_count)
{
	/* failures before it was switched off are not "consecutive" with
	 * those after it is switched on again */
	struct breaker b = make(3, COOLDOWN);

	fail_n(&b, 2, 0);
	breaker_configure(&b, 0, COOLDOWN);
	breaker_configure(&b, 3, COOLDOWN);
	ck_assert_int_eq(b.failures, 0);
	fail_n(&b, 1, 1);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
}
END_TEST

START_TEST(test_reconfigure_threshold_keeps_count)
{
	struct breaker b = make(5, COOLDOWN);

	fail_n(&b, 3, 0);
	breaker_configure(&b, 10, COOLDOWN);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(b.failures, 3);
	fail_n(&b, 6, 1);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(b.failures, 9);
	breaker_configure(&b, 4, COOLDOWN);
	ck_assert_int_eq(b.state, BREAKER_CLOSED);
	ck_assert_int_eq(b.failures, 9);
	fail_n(&b, 1, 2);
	ck_assert_int_eq(b.state, BREAKER_OPEN);
	ck_assert_uint_eq(b.trips, 1);
}
END_TEST

START_TEST(test_reconfigure_cooldown)
{
	/* a new cooldown applies from the next opening */
	struct breaker b = make(1, COOLDOWN);
	double retry_in = -1;

	breaker_configure(&b, 1, 2000);
	fail_n(&b, 1, 0);
	ck_assert_int_eq(admit(&b, 0, &retry_in), BREAKER_REJECT);
	ck_assert_double_eq_tol(retry_in, 2000, 1e-9);
	ck_assert_int_eq(admit(&b, 2000, &retry_in), BREAKER_PROBE);
}
END_TEST

START_TEST(test_state_names)
{
	ck_assert_str_eq(breaker_state_name(BREAKER_CLOSED), "closed");
	ck_assert_str_eq(breaker_state_name(BREAKER_OPEN), "open");
	ck_assert_str_eq(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
}
END_TEST

static Suite *breaker_suite(void)
{
	Suite *s = suite_create("breaker");
	TCase *tc = tcase_create("closed");

	tcase_add_test(tc, test_off_admits_always);
	tcase_add_test(tc, test_zero_struct_is_off);
	tcase_add_test(tc, test_below_threshold_closed);
	tcase_add_test(tc, test_success_resets);
	tcase_add_test(tc, test_neutral_neither_counts_nor_resets);
	tcase_add_test(tc, test_threshold_one);
	suite_add_tcase(s, tc);

	tc = tcase_create("open");
	tcase_add_test(tc, test_open_rejects_with_time_left);
	tcase_add_test(tc, test_open_notes_change_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("half_open");
	tcase_add_test(tc, test_one_probe_after_cooldown);
	tcase_add_test(tc, test_probe_late_asker);
	tcase_add_test(tc, test_probe_success_closes);
	tcase_add_test(tc, test_probe_failure_reopens);
	tcase_add_test(tc, test_probe_neutral_closes);
	tcase_add_test(tc, test_probe_abandoned);
	tcase_add_test(tc, test_abandoned_outside_half_open);
	tcase_add_test(tc, test_half_open_non_probe_notes_change_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("configure");
	tcase_add_test(tc, test_reconfigure_off_closes_open);
	tcase_add_test(tc, test_reconfigure_off_closes_half_open);
	tcase_add_test(tc, test_reconfigure_off_clears_count);
	tcase_add_test(tc, test_reconfigure_threshold_keeps_count);
	tcase_add_test(tc, test_reconfigure_cooldown);
	tcase_add_test(tc, test_state_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(breaker_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
