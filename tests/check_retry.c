/* check_retry: unit tests of the retry vocabulary (src/retry.c): retry_on
 * names and lists, how a policy resolves from config, batch and request,
 * the jittered back-off, and Retry-After's three forms.  All pure: the
 * clock and the random number are the test's. */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "retry.h"

/* --- helpers ------------------------------------------------------------- */

static int count_statuses(const struct retry_on *on)
{
	int n = 0;

	for (int s = RETRY_STATUS_MIN; s <= RETRY_STATUS_MAX; s++)
		n += retry_on_status(on, s);
	return n;
}

static bool add(struct retry_on *on, const char *name)
{
	return retry_on_add_name(on, name, strlen(name));
}

static double after(const char *s, double now_ms)
{
	return retry_after_ms(s, strlen(s), now_ms);
}

static struct retry_policy policy(long attempts, long backoff, long max_backoff)
{
	struct retry_policy p;

	retry_policy_unset(&p);
	p.attempts = attempts;
	p.backoff_ms = backoff;
	p.max_backoff_ms = max_backoff;
	return p;
}

/* the config's level: every field given */
static struct retry_policy cfg_policy(void)
{
	struct retry_policy p = policy(3, 100, 5000);

	retry_on_default(&p.on);
	p.on_set = true;
	return p;
}

/* 2015-10-21 07:28:00 UTC */
#define OCT21_2015_MS 1445412480000.0

/* --- retry_on ------------------------------------------------------------ */

START_TEST(test_seconds_up)
{
	ck_assert_int_eq(retry_seconds_up(0), 0);
	ck_assert_int_eq(retry_seconds_up(-5), 0);
	ck_assert_int_eq(retry_seconds_up(0.1), 1);
	ck_assert_int_eq(retry_seconds_up(1000), 1);
	ck_assert_int_eq(retry_seconds_up(1000.1), 2);
	ck_assert_int_eq(retry_seconds_up(5000.4), 6);
	ck_assert_int_eq(retry_seconds_up(0.0 / 0.0), 0);
	ck_assert_int_eq(retry_seconds_up(1e300), (long)(RETRY_AFTER_CAP_MS / 1000));
}
END_TEST

START_TEST(test_default)
{
	struct retry_on on;

	memset(&on, 0xff, sizeof on);
	retry_on_default(&on);
	ck_assert(on.connect);
	ck_assert(on.timeout);
	ck_assert(retry_on_status(&on, 429));
	ck_assert(retry_on_status(&on, 502));
	ck_assert(retry_on_status(&on, 503));
	ck_assert(retry_on_status(&on, 504));
	ck_assert_int_eq(count_statuses(&on), 4);
	ck_assert(!retry_on_status(&on, 500));
	ck_assert(!retry_on_status(&on, 200));
	ck_assert(!retry_on_status(&on, -1));
	ck_assert(!retry_on_status(&on, 1000));
}
END_TEST

START_TEST(test_status_bounds)
{
	struct retry_on on;

	memset(&on, 0, sizeof on);
	retry_on_add_status(&on, 400);
	retry_on_add_status(&on, 599);
	retry_on_add_status(&on, 399);      /* ignored */
	retry_on_add_status(&on, 600);      /* ignored */
	ck_assert(retry_on_status(&on, 400));
	ck_assert(retry_on_status(&on, 599));
	ck_assert(!retry_on_status(&on, 399));
	ck_assert(!retry_on_status(&on, 600));
	ck_assert_int_eq(count_statuses(&on), 2);
	ck_assert(!on.connect && !on.timeout);
}
END_TEST

START_TEST(test_add_name_each_kind)
{
	struct retry_on on;

	memset(&on, 0, sizeof on);
	ck_assert(add(&on, "connect"));
	ck_assert(on.connect && !on.timeout);
	ck_assert(add(&on, "timeout"));
	ck_assert(on.timeout);
	ck_assert(add(&on, "400"));
	ck_assert(add(&on, "503"));
	ck_assert(add(&on, "599"));
	ck_assert(retry_on_status(&on, 400));
	ck_assert(retry_on_status(&on, 503));
	ck_assert(retry_on_status(&on, 599));
	ck_assert_int_eq(count_statuses(&on), 3);
	/* n bytes of a longer buffer: "503" of "5030", "connect" of "connects" */
	memset(&on, 0, sizeof on);
	ck_assert(retry_on_add_name(&on, "5030", 3));
	ck_assert(retry_on_status(&on, 503));
	ck_assert(retry_on_add_name(&on, "connects", 7));
	ck_assert(on.connect);
}
END_TEST

START_TEST(test_add_name_bad)
{
	static const char *const bad[] = {
		"5xx", "600", "399", "", "conect", "503x", "0503", "+503", "50",
		"Connect", "TIMEOUT", " 503", "503 ", "connect,", "200", "-503",
	};
	struct retry_on on, zero;

	memset(&zero, 0, sizeof zero);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		memset(&on, 0, sizeof on);
		ck_assert_msg(!add(&on, bad[i]), "\"%s\" accepted", bad[i]);
		ck_assert_msg(memcmp(&on, &zero, sizeof on) == 0, "\"%s\" changed on", bad[i]);
	}
	/* "503" with n = 4 takes the NUL in: not a name */
	ck_assert(!retry_on_add_name(&on, "503", 4));
}
END_TEST

START_TEST(test_parse_list)
{
	struct retry_on on;
	char err[128] = "";

	ck_assert(retry_on_parse_list(&on, "connect,timeout", err, sizeof err));
	ck_assert(on.connect && on.timeout);
	ck_assert_int_eq(count_statuses(&on), 0);

	ck_assert(retry_on_parse_list(&on, "connect , 503", err, sizeof err));
	ck_assert(on.connect && !on.timeout);
	ck_assert(retry_on_status(&on, 503));
	ck_assert_int_eq(count_statuses(&on), 1);

	/* replaces what was there */
	ck_assert(retry_on_parse_list(&on, "  429 ", err, sizeof err));
	ck_assert(!on.connect && !on.timeout);
	ck_assert(retry_on_status(&on, 429));
	ck_assert_int_eq(count_statuses(&on), 1);

	ck_assert(retry_on_parse_list(&on, "connect timeout\t429,502, 503 ,504", err,
	                              sizeof err));
	ck_assert(on.connect && on.timeout);
	ck_assert_int_eq(count_statuses(&on), 4);
}
END_TEST

START_TEST(test_parse_list_refused)
{
	static const char *const bad[] = {
		"", "   ", ",", " , ,\t", "connect, conect", "5xx", "connect,600", "503x, 429",
	};
	struct retry_on on, before;
	char err[128];

	retry_on_default(&before);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		on = before;
		err[0] = '\0';
		ck_assert_msg(!retry_on_parse_list(&on, bad[i], err, sizeof err),
		              "\"%s\" accepted", bad[i]);
		ck_assert_msg(err[0] != '\0', "\"%s\": no message", bad[i]);
		ck_assert_msg(memcmp(&on, &before, sizeof on) == 0, "\"%s\" changed on", bad[i]);
	}
	ck_assert(!retry_on_parse_list(&on, "connect, conect", err, sizeof err));
	ck_assert_msg(strstr(err, "\"conect\"") != NULL, "err: %s", err);
	/* a long bad name is cut in the message, and a small err is enough */
	ck_assert(!retry_on_parse_list(&on, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	                               err, sizeof err));
	ck_assert_uint_lt(strlen(err), 100);
	ck_assert(!retry_on_parse_list(&on, "bad", err, 4));
	ck_assert_uint_eq(strlen(err), 3);
}
END_TEST

START_TEST(test_format)
{
	struct retry_on on;
	char buf[256];

	retry_on_default(&on);
	retry_on_format(&on, buf, sizeof buf);
	ck_assert_str_eq(buf, "connect, timeout, 429, 502, 503, 504");

	memset(&on, 0, sizeof on);
	retry_on_format(&on, buf, sizeof buf);
	ck_assert_str_eq(buf, "");

	retry_on_add_status(&on, 599);
	retry_on_add_status(&on, 400);
	retry_on_format(&on, buf, sizeof buf);
	ck_assert_str_eq(buf, "400, 599");

	/* a short buffer truncates, NUL-terminated */
	retry_on_default(&on);
	retry_on_format(&on, buf, 10);
	ck_assert_uint_lt(strlen(buf), 10);
	ck_assert(strncmp(buf, "connect", 7) == 0);
	retry_on_format(&on, buf, 1);
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(test_format_round_trip)
{
	static const char *const lists[] = {
		"connect, timeout, 429, 502, 503, 504",
		"timeout",
		"connect",
		"400, 401, 599",
		"connect, 500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 510, 511",
	};
	struct retry_on on, again;
	char err[128], buf[4096], buf2[4096];

	for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
		ck_assert(retry_on_parse_list(&on, lists[i], err, sizeof err));
		retry_on_format(&on, buf, sizeof buf);
		ck_assert_str_eq(buf, lists[i]);
	}
	/* every status there is, and both words */
	memset(&on, 0, sizeof on);
	on.connect = on.timeout = true;
	for (int s = RETRY_STATUS_MIN; s <= RETRY_STATUS_MAX; s++)
		retry_on_add_status(&on, s);
	retry_on_format(&on, buf, sizeof buf);
	ck_assert(retry_on_parse_list(&again, buf, err, sizeof err));
	ck_assert(memcmp(&on, &again, sizeof on) == 0);
	retry_on_format(&again, buf2, sizeof buf2);
	ck_assert_str_eq(buf, buf2);
	/* a messy spelling formats to the canonical one */
	ck_assert(retry_on_parse_list(&on, " 504 ,503,,timeout\tconnect 429 502 ", err, sizeof err));
	retry_on_format(&on, buf, sizeof buf);
	ck_assert_str_eq(buf, "connect, timeout, 429, 502, 503, 504");
}
END_TEST

/* --- policies ------------------------------------------------------------ */

START_TEST(test_unset)
{
	struct retry_policy p;

	memset(&p, 0x55, sizeof p);
	retry_policy_unset(&p);
	ck_assert_int_lt(p.attempts, 1);
	ck_assert_int_lt(p.backoff_ms, 0);
	ck_assert_int_lt(p.max_backoff_ms, 0);
	ck_assert(!p.on_set);
}
END_TEST

START_TEST(test_resolve_cfg_only)
{
	struct retry_policy cfg = cfg_policy(), out;

	retry_policy_resolve(&out, &cfg, NULL, NULL, 5);
	ck_assert_int_eq(out.attempts, 3);
	ck_assert_int_eq(out.backoff_ms, 100);
	ck_assert_int_eq(out.max_backoff_ms, 5000);
	ck_assert(out.on_set);
	ck_assert(memcmp(&out.on, &cfg.on, sizeof out.on) == 0);

	/* unset levels are as good as NULL */
	struct retry_policy batch = policy(-1, -1, -1), req = policy(-1, -1, -1);
	retry_policy_resolve(&out, &cfg, &batch, &req, 5);
	ck_assert_int_eq(out.attempts, 3);
	ck_assert_int_eq(out.backoff_ms, 100);
	ck_assert_int_eq(out.max_backoff_ms, 5000);
	ck_assert(memcmp(&out.on, &cfg.on, sizeof out.on) == 0);
}
END_TEST

START_TEST(test_resolve_precedence)
{
	struct retry_policy cfg = cfg_policy(), out;
	struct retry_policy batch = policy(4, 200, -1), req = policy(2, -1, -1);

	batch.on_set = true;
	retry_on_add_status(&batch.on, 500);
	req.on_set = false;

	/* req over batch over cfg, field by field */
	retry_policy_resolve(&out, &cfg, &batch, &req, 5);
	ck_assert_int_eq(out.attempts, 2);          /* req */
	ck_assert_int_eq(out.backoff_ms, 200);      /* batch */
	ck_assert_int_eq(out.max_backoff_ms, 5000); /* cfg */
	ck_assert(retry_on_status(&out.on, 500));   /* batch's on */
	ck_assert(!out.on.connect);
	ck_assert_int_eq(count_statuses(&out.on), 1);

	req.on_set = true;
	memset(&req.on, 0, sizeof req.on);
	req.on.timeout = true;
	req.max_backoff_ms = 0;                     /* 0 is a value here */
	retry_policy_resolve(&out, &cfg, &batch, &req, 5);
	ck_assert(out.on.timeout && !out.on.connect);
	ck_assert_int_eq(count_statuses(&out.on), 0);
	ck_assert_int_eq(out.max_backoff_ms, 0);

	/* batch NULL: req over cfg; req NULL: batch over cfg */
	retry_policy_resolve(&out, &cfg, NULL, &req, 5);
	ck_assert_int_eq(out.attempts, 2);
	ck_assert_int_eq(out.backoff_ms, 100);
	retry_policy_resolve(&out, &cfg, &batch, NULL, 5);
	ck_assert_int_eq(out.attempts, 4);
	ck_assert_int_eq(out.backoff_ms, 200);
	ck_assert(retry_on_status(&out.on, 500));

	/* backoff 0 given by a batch is used (no wait), not skipped */
	batch.backoff_ms = 0;
	retry_policy_resolve(&out, &cfg, &batch, NULL, 5);
	ck_assert_int_eq(out.backoff_ms, 0);
}
END_TEST

START_TEST(test_resolve_clamp)
{
	struct retry_policy cfg = cfg_policy(), out;
	struct retry_policy req = policy(100, -1, -1);

	retry_policy_resolve(&out, &cfg, NULL, &req, 5);
	ck_assert_int_eq(out.attempts, 6);
	retry_policy_resolve(&out, &cfg, NULL, &req, 0);
	ck_assert_int_eq(out.attempts, 1);
	retry_policy_resolve(&out, &cfg, NULL, &req, -3);
	ck_assert_int_eq(out.attempts, 1);
	req.attempts = 6;
	retry_policy_resolve(&out, &cfg, NULL, &req, 5);
	ck_assert_int_eq(out.attempts, 6);
	req.attempts = 7;
	retry_policy_resolve(&out, &cfg, NULL, &req, 5);
	ck_assert_int_eq(out.attempts, 6);
	/* the cfg's own attempts clamp too */
	cfg.attempts = 50;
	retry_policy_resolve(&out, &cfg, NULL, NULL, 5);
	ck_assert_int_eq(out.attempts, 6);
	/* no overflow at the edge */
	req.attempts = LONG_MAX;
	retry_policy_resolve(&out, &cfg, NULL, &req, LONG_MAX);
	ck_assert_int_eq(out.attempts, LONG_MAX);
}
END_TEST

START_TEST(test_resolve_attempts_never_below_one)
{
	struct retry_policy cfg = cfg_policy(), out;
	struct retry_policy batch = policy(0, -1, -1), req = policy(-7, -1, -1);

	/* 0 or negative at req or batch means unset: the level above decides */
	retry_policy_resolve(&out, &cfg, &batch, &req, 5);
	ck_assert_int_eq(out.attempts, 3);
	batch.attempts = 2;
	req.attempts = 0;
	retry_policy_resolve(&out, &cfg, &batch, &req, 5);
	ck_assert_int_eq(out.attempts, 2);
	/* even a cfg with 0 gives one attempt */
	cfg.attempts = 0;
	batch.attempts = -1;
	retry_policy_resolve(&out, &cfg, &batch, &req, 5);
	ck_assert_int_eq(out.attempts, 1);
	cfg.attempts = -5;
	retry_policy_resolve(&out, &cfg, NULL, NULL, 5);
	ck_assert_int_eq(out.attempts, 1);
	req.attempts = 1;
	retry_policy_resolve(&out, &cfg, NULL, &req, 5);
	ck_assert_int_eq(out.attempts, 1);
}
END_TEST

/* --- back-off ------------------------------------------------------------ */

START_TEST(test_backoff_bounds)
{
	struct retry_policy p = policy(6, 100, 5000);
	double ceiling, lo, hi;

	for (unsigned n = 1; n <= 10; n++) {
		ceiling = 100.0 * (double)(1u << (n - 1));
		if (ceiling > 5000)
			ceiling = 5000;
		lo = retry_backoff_ms(&p, n, 0);
		hi = retry_backoff_ms(&p, n, 0.999999);
		ck_assert_msg(lo == 0, "n=%u: %g with random 0", n, lo);
		ck_assert_msg(hi < ceiling && hi >= ceiling * 0.999, "n=%u: %g, ceiling %g", n,
		              hi, ceiling);
		ck_assert_msg(retry_backoff_ms(&p, n, 0.5) == ceiling / 2, "n=%u: half", n);
	}
	/* n=1 gives the base, the cap binds from n=7 (6400 > 5000) */
	ck_assert(retry_backoff_ms(&p, 1, 0.5) == 50);
	ck_assert(retry_backoff_ms(&p, 6, 0.5) == 1600);
	ck_assert(retry_backoff_ms(&p, 7, 0.5) == 2500);
	/* n=0 counts as the first retry */
	ck_assert(retry_backoff_ms(&p, 0, 0.5) == 50);
}
END_TEST

START_TEST(test_backoff_cap_and_overflow)
{
	struct retry_policy p = policy(6, 100, 5000);
	double v;

	ck_assert(retry_backoff_ms(&p, 64, 0.5) == 2500);
	ck_assert(retry_backoff_ms(&p, 65, 0.5) == 2500);
	ck_assert(retry_backoff_ms(&p, 4000000000u, 0.999999) < 5000);
	/* a huge base: never more than the cap, never inf or NaN */
	p = policy(6, LONG_MAX, LONG_MAX);
	for (unsigned n = 1; n <= 70; n++) {
		v = retry_backoff_ms(&p, n, 0.999999);
		ck_assert_msg(v >= 0 && v <= (double)LONG_MAX, "n=%u: %g", n, v);
	}
	p = policy(6, LONG_MAX, 1000);
	ck_assert(retry_backoff_ms(&p, 64, 0.5) == 500);
	/* max below base: the cap still binds */
	p = policy(6, 1000, 10);
	ck_assert(retry_backoff_ms(&p, 1, 0.5) == 5);
	/* zero back-off: no wait; unset (negative) fields count as 0 */
	p = policy(6, 0, 5000);
	ck_assert(retry_backoff_ms(&p, 3, 0.999) == 0);
	p = policy(6, -1, -1);
	ck_assert(retry_backoff_ms(&p, 3, 0.999) == 0);
	/* a random number outside [0, 1) is pulled in */
	p = policy(6, 100, 5000);
	ck_assert(retry_backoff_ms(&p, 1, -3) == 0);
	ck_assert(retry_backoff_ms(&p, 1, 7) <= 100);
}
END_TEST

/* --- Retry-After --------------------------------------------------------- */

START_TEST(test_after_seconds)
{
	double now = OCT21_2015_MS;

	ck_assert(after("0", now) == 0);
	ck_assert(after("120", now) == 120000);
	ck_assert(after("1.5", now) == 1500);
	ck_assert(after(" 2 ", now) == 2000);
	ck_assert(after("\t3\t", now) == 3000);
	ck_assert(after("0.25", now) == 250);
	ck_assert(after("007", now) == 7000);
	/* the clock plays no part */
	ck_assert(after("120", 0) == 120000);
}
END_TEST

START_TEST(test_after_invalid)
{
	static const char *const bad[] = {
		"-1", "1e3", "abc", "", "   ", "1.", ".5", "1.5.2", "+5", "12 3", "0x10",
		"inf", "nan", "5s", "1,5", "\t", "1 .5",
	};

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_msg(after(bad[i], OCT21_2015_MS) == -1, "\"%s\": %g", bad[i],
		              after(bad[i], OCT21_2015_MS));
	/* a NUL inside the value */
	ck_assert(retry_after_ms("12\0" "3", 4, 0) == -1);
	ck_assert(retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT\0", 30, 0) == -1);
	ck_assert(retry_after_ms("", 0, 0) == -1);
}
END_TEST

START_TEST(test_after_overlong)
{
	char digits[1001];
	double v;

	memset(digits, '9', sizeof digits - 1);
	digits[sizeof digits - 1] = '\0';
	v = after(digits, 0);
	ck_assert_msg(v == RETRY_AFTER_CAP_MS, "%g", v);
	ck_assert(after("99999999999999999999999", 0) == RETRY_AFTER_CAP_MS);
	/* just inside the cap stays exact */
	ck_assert(after("86400", 0) == 86400000);
	/* a fraction of a thousand digits: no overflow or underflow trouble */
	digits[0] = '1';
	digits[1] = '.';
	v = after(digits, 0);
	ck_assert_msg(v > 1999 && v <= 2000, "%g", v);
}
END_TEST

START_TEST(test_after_dates)
{
	double now = OCT21_2015_MS - 10000;

	ck_assert(after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 10000);
	ck_assert(after("  Wed, 21 Oct 2015 07:28:00 GMT\t", now) == 10000);
	ck_assert(after("Wednesday, 21-Oct-15 07:28:00 GMT", now) == 10000);
	ck_assert(after("Wed Oct 21 07:28:00 2015", now) == 10000);
	ck_assert(after("Wed Oct  1 07:28:00 2015", OCT21_2015_MS - 20 * 86400000.0 - 500) ==
	          500);
	/* past: 0 */
	ck_assert(after("Wed, 21 Oct 2015 07:28:00 GMT", OCT21_2015_MS + 1) == 0);
	ck_assert(after("Thu, 01 Jan 1970 00:00:00 GMT", OCT21_2015_MS) == 0);
	ck_assert(after("Wed, 21 Oct 2015 07:28:00 GMT", OCT21_2015_MS) == 0);
	/* fractional now */
	ck_assert(after("Wed, 21 Oct 2015 07:28:00 GMT", OCT21_2015_MS - 0.5) == 0.5);
	/* far future: capped */
	ck_assert(after("Fri, 31 Dec 9999 23:59:59 GMT", OCT21_2015_MS) == RETRY_AFTER_CAP_MS);
}
END_TEST

START_TEST(test_after_rfc850_century)
{
	/* RFC 9110: a two-digit year more than 50 years ahead is the past
	 * century's.  Seen in 2015: "70" is 1970 (past), "60" is 2060 */
	ck_assert(after("Thursday, 01-Jan-70 00:00:00 GMT", OCT21_2015_MS) == 0);
	ck_assert(after("Thursday, 01-Jan-60 00:00:00 GMT", OCT21_2015_MS) > 0);
	/* seen in 2050: "99" is 2099, which strptime alone would call 1999 */
	double y2050 = 2524608000000.0;   /* 2050-01-01 */
	ck_assert(after("Thursday, 01-Jan-99 00:00:00 GMT", y2050) > 0);
}
END_TEST

START_TEST(test_after_garbage_dates)
{
	static const char *const bad[] = {
		"Wed, 21 Oct 2015 07:28:00",          /* no GMT */
		"Wed, 21 Oct 2015 07:28:00 GMT junk",
		"Wed, 32 Oct 2015 07:28:00 GMT",
		"Wed, 31 Feb 2015 07:28:00 GMT",      /* no such day */
		"Wed, 21 Foo 2015 07:28:00 GMT",
		"Xyz, 21 Oct 2015 07:28:00 GMT",
		"Wed, 21 Oct 2015 25:28:00 GMT",
		"Wed, 21 Oct 2015 07:61:00 GMT",
		"Wed, 21 Oct 2015",
		"Wed,",
		"GMT",
		"Wed Oct 21 07:28:00",
		"Wednesday, 21-Oct-15 07:28:00 GMT Wednesday, 21-Oct-15 07:28:00 GMT",
		"Wed, 21 Oct 2015 07:28:00 GMT\x01",
		"tomorrow",
	};

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_msg(after(bad[i], OCT21_2015_MS) == -1, "\"%s\": %g", bad[i],
		              after(bad[i], OCT21_2015_MS));
}
END_TEST

START_TEST(test_after_not_nul_terminated)
{
	/* the value is the first len bytes; what follows must not be read as
	 * part of it (a header value inside a larger buffer) */
	const char buf[] = "120999";
	char *heap;
	const char *date = "Wed, 21 Oct 2015 07:28:00 GMTxxxx";

	ck_assert(retry_after_ms(buf, 3, 0) == 120000);
	ck_assert(retry_after_ms("1.5xyz", 3, 0) == 1500);
	ck_assert(retry_after_ms(date, 29, OCT21_2015_MS - 10000) == 10000);
	/* exactly len bytes on the heap, no NUL: ASan sees a read past them */
	heap = malloc(29);
	ck_assert_ptr_nonnull(heap);
	memcpy(heap, date, 29);
	ck_assert(retry_after_ms(heap, 29, OCT21_2015_MS - 10000) == 10000);
	memcpy(heap, "120", 3);
	ck_assert(retry_after_ms(heap, 3, 0) == 120000);
	free(heap);
}
END_TEST

static Suite *retry_suite(void)
{
	Suite *s = suite_create("retry");
	TCase *tc = tcase_create("retry_on");

	tcase_add_test(tc, test_default);
	tcase_add_test(tc, test_seconds_up);
	tcase_add_test(tc, test_status_bounds);
	tcase_add_test(tc, test_add_name_each_kind);
	tcase_add_test(tc, test_add_name_bad);
	tcase_add_test(tc, test_parse_list);
	tcase_add_test(tc, test_parse_list_refused);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_format_round_trip);
	suite_add_tcase(s, tc);

	tc = tcase_create("policy");
	tcase_add_test(tc, test_unset);
	tcase_add_test(tc, test_resolve_cfg_only);
	tcase_add_test(tc, test_resolve_precedence);
	tcase_add_test(tc, test_resolve_clamp);
	tcase_add_test(tc, test_resolve_attempts_never_below_one);
	tcase_add_test(tc, test_backoff_bounds);
	tcase_add_test(tc, test_backoff_cap_and_overflow);
	suite_add_tcase(s, tc);

	tc = tcase_create("retry_after");
	tcase_add_test(tc, test_after_seconds);
	tcase_add_test(tc, test_after_invalid);
	tcase_add_test(tc, test_after_overlong);
	tcase_add_test(tc, test_after_dates);
	tcase_add_test(tc, test_after_rfc850_century);
	tcase_add_test(tc, test_after_garbage_dates);
	tcase_add_test(tc, test_after_not_nul_terminated);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(retry_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
