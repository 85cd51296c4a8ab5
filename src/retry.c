/* retry: what may be retried (retry_on lists), how a retry policy resolves
 * from config, batch and request, the back-off before each retry, and
 * Retry-After's value as milliseconds to wait (SPEC section 10).  Pure
 * functions over their arguments: the caller brings the clock and the
 * random number. */
#include "retry.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* --- retry_on ------------------------------------------------------------ */

static bool status_in_range(int status)
{
	return status >= RETRY_STATUS_MIN && status <= RETRY_STATUS_MAX;
}

void retry_on_default(struct retry_on *on)
{
	memset(on, 0, sizeof *on);
	on->connect = true;
	on->timeout = true;
	retry_on_add_status(on, 429);
	retry_on_add_status(on, 502);
	retry_on_add_status(on, 503);
	retry_on_add_status(on, 504);
}

bool retry_on_status(const struct retry_on *on, int status)
{
	unsigned bit;

	if (!status_in_range(status))
		return false;
	bit = (unsigned)(status - RETRY_STATUS_MIN);
	return (on->status[bit / 8] >> (bit % 8)) & 1;
}

void retry_on_add_status(struct retry_on *on, int status)
{
	unsigned bit;

	if (!status_in_range(status))
		return;
	bit = (unsigned)(status - RETRY_STATUS_MIN);
	on->status[bit / 8] |= (uint8_t)(1u << (bit % 8));
}

static bool name_is(const char *name, size_t n, const char *word)
{
	return n == strlen(word) && memcmp(name, word, n) == 0;
}

/* Exactly three digits: "0503" or "+503" are no status of ours. */
static int status_of_name(const char *name, size_t n)
{
	int status = 0;

	if (n != 3)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		status = status * 10 + (name[i] - '0');
	}
	return status_in_range(status) ? status : -1;
}

bool retry_on_add_name(struct retry_on *on, const char *name, size_t n)
{
	int status;

	if (name_is(name, n, "connect")) {
		on->connect = true;
		return true;
	}
	if (name_is(name, n, "timeout")) {
		on->timeout = true;
		return true;
	}
	status = status_of_name(name, n);
	if (status < 0)
		return false;
	retry_on_add_status(on, status);
	return true;
}

static bool is_list_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t';
}

bool retry_on_parse_list(struct retry_on *on, const char *list, char *err, size_t errlen)
{
	struct retry_on parsed;
	const char *p = list;
	size_t n;
	bool any = false;

	/* into a copy, so a bad list leaves *on as it was */
	memset(&parsed, 0, sizeof parsed);
	for (;;) {
		while (is_list_sep(*p))
			p++;
		if (*p == '\0')
			break;
		for (n = 0; p[n] != '\0' && !is_list_sep(p[n]); n++)
			;
		if (!retry_on_add_name(&parsed, p, n)) {
			/* at most 32 bytes of it: the message goes into a log line */
			snprintf(err, errlen, "\"%.*s\" is not connect, timeout or a status 400..599",
			         n > 32 ? 32 : (int)n, p);
			return false;
		}
		any = true;
		p += n;
	}
	if (!any) {
		snprintf(err, errlen, "names nothing to retry on");
		return false;
	}
	*on = parsed;
	return true;
}

/* Appends word to buf (len bytes, NUL-terminated), with ", " before it
 * when something is there already; truncates rather than overflows. */
static void format_add(char *buf, size_t len, const char *word)
{
	size_t used = strlen(buf);

	if (used + 1 >= len)
		return;
	snprintf(buf + used, len - used, "%s%s", used ? ", " : "", word);
}

void retry_on_format(const struct retry_on *on, char *buf, size_t len)
{
	char code[8];

	if (len == 0)
		return;
	buf[0] = '\0';
	if (on->connect)
		format_add(buf, len, "connect");
	if (on->timeout)
		format_add(buf, len, "timeout");
	for (int status = RETRY_STATUS_MIN; status <= RETRY_STATUS_MAX; status++) {
		if (!retry_on_status(on, status))
			continue;
		snprintf(code, sizeof code, "%d", status);
		format_add(buf, len, code);
	}
}

/* --- policies ------------------------------------------------------------ */

void retry_policy_unset(struct retry_policy *p)
{
	memset(p, 0, sizeof *p);
	p->attempts = -1;
	p->backoff_ms = -1;
	p->max_backoff_ms = -1;
	p->on_set = false;
}

/* The first given of req's, batch's (-1 when there is none) and cfg's
 * value.  A field counts as given when it is at least min_given. */
static long pick(long req, long batch, long cfg, long min_given)
{
	if (req >= min_given)
		return req;
	if (batch >= min_given)
		return batch;
	return cfg;
}

void retry_policy_resolve(struct retry_policy *out, const struct retry_policy *cfg,
                          const struct retry_policy *batch, const struct retry_policy *req,
                          long max_retries)
{
	long ceiling;

	/* attempts 0 would mean "never try": not a policy, so < 1 is unset */
	out->attempts = pick(req ? req->attempts : -1, batch ? batch->attempts : -1,
	                     cfg->attempts, 1);
	out->backoff_ms = pick(req ? req->backoff_ms : -1, batch ? batch->backoff_ms : -1,
	                       cfg->backoff_ms, 0);
	out->max_backoff_ms = pick(req ? req->max_backoff_ms : -1,
	                           batch ? batch->max_backoff_ms : -1, cfg->max_backoff_ms, 0);
	if (req && req->on_set)
		out->on = req->on;
	else if (batch && batch->on_set)
		out->on = batch->on;
	else
		out->on = cfg->on;
	out->on_set = true;

	if (max_retries < 0)
		ceiling = 1;
	else if (max_retries == LONG_MAX)
		ceiling = LONG_MAX;          /* 1 + it would overflow */
	else
		ceiling = 1 + max_retries;
	if (out->attempts < 1)
		out->attempts = 1;           /* a cfg without attempts: no retry */
	if (out->attempts > ceiling)
		out->attempts = ceiling;
	if (out->backoff_ms < 0)
		out->backoff_ms = 0;
	if (out->max_backoff_ms < 0)
		out->max_backoff_ms = 0;
}

/* --- back-off ------------------------------------------------------------ */

double retry_backoff_ms(const struct retry_policy *p, unsigned n, double unit_random)
{
	double base = p->backoff_ms > 0 ? (double)p->backoff_ms : 0;
	double cap = p->max_backoff_ms > 0 ? (double)p->max_backoff_ms : 0;
	unsigned doublings = n > 1 ? n - 1 : 0;
	double ceiling;

	/* 2^63 times any long is finite in a double, and past the cap anyway */
	if (doublings > 63)
		doublings = 63;
	ceiling = base * (double)((uint64_t)1 << doublings);
	if (ceiling > cap)
		ceiling = cap;
	if (!(unit_random > 0))      /* also NaN */
		unit_random = 0;
	if (unit_random > 1)
		unit_random = 1;
	return unit_random * ceiling;
}

/* --- Retry-After --------------------------------------------------------- */

/* The longest HTTP-date form is RFC 850's, 33 bytes with a 9-letter day. */
#define DATE_MAX 40

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "120" or "1.5" (digits, optionally a dot and digits), whole: ms, capped. */
static double parse_seconds(const char *p, const char *end)
{
	double whole = 0, frac = 0, scale = 0.1;

	if (p == end || !is_digit(*p))
		return -1;
	/* stop growing at the cap: a thousand digits must not overflow */
	for (; p < end && is_digit(*p); p++)
		if (whole * 1000 < RETRY_AFTER_CAP_MS)
			whole = whole * 10 + (*p - '0');
	if (p < end && *p == '.') {
		p++;
		if (p == end || !is_digit(*p))
			return -1;
		for (; p < end && is_digit(*p); p++) {
			frac += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (p != end)
		return -1;
	whole = whole * 1000 + frac * 1000;
	return whole < RETRY_AFTER_CAP_MS ? whole : RETRY_AFTER_CAP_MS;
}

/* RFC 9110 5.6.7: a two-digit year more than 50 years ahead of now is of
 * the century before; so the year is the one within 50 years of now.
 * strptime's %y has its own fixed pivot (69) instead. */
static void fix_two_digit_year(struct tm *tm, double now_epoch_ms)
{
	struct tm now_tm;
	time_t now;
	int year, now_year;

	/* a clock outside +-30000 years (or NaN) keeps strptime's pivot; the
	 * cast below would be undefined for it */
	if (!(now_epoch_ms > -1e15 && now_epoch_ms < 1e15))
		return;
	now = (time_t)(now_epoch_ms / 1000);
	if (!gmtime_r(&now, &now_tm))
		return;
	now_year = now_tm.tm_year + 1900;
	year = now_year - now_year % 100 + (tm->tm_year + 1900) % 100;
	if (year > now_year + 50)
		year -= 100;
	else if (year <= now_year - 50)
		year += 100;
	tm->tm_year = year - 1900;
}

/* s (NUL-terminated, trimmed) as the time it names; false when no
 * HTTP-date form matches all of it, or it names no real day (31 Feb). */
static bool parse_http_date(const char *s, double now_epoch_ms, time_t *out)
{
	static const char *const formats[] = {
		"%a, %d %b %Y %H:%M:%S GMT",     /* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT",     /* RFC 850 */
		"%a %b %e %H:%M:%S %Y",          /* asctime */
	};
	struct tm tm, check;
	const char *end;

	for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
		memset(&tm, 0, sizeof tm);
		end = strptime(s, formats[i], &tm);
		if (end == NULL || *end != '\0')
			continue;
		if (i == 1)
			fix_two_digit_year(&tm, now_epoch_ms);
		check = tm;
		*out = timegm(&check);
		/* timegm normalises 31 Feb to 3 Mar: a date that moved is bad */
		return check.tm_mday == tm.tm_mday && check.tm_mon == tm.tm_mon;
	}
	return false;
}

double retry_after_ms(const char *value, size_t len, double now_epoch_ms)
{
	const char *p = value, *end = value + len;
	char date[DATE_MAX];
	time_t when;
	double ms;

	while (p < end && is_ows(*p))
		p++;
	while (end > p && is_ows(end[-1]))
		end--;
	if (p == end)
		return -1;
	if (is_digit(*p))
		return parse_seconds(p, end);
	/* strptime wants a NUL-terminated string; no date is this long */
	if ((size_t)(end - p) >= sizeof date || memchr(p, '\0', (size_t)(end - p)))
		return -1;
	memcpy(date, p, (size_t)(end - p));
	date[end - p] = '\0';
	if (!parse_http_date(date, now_epoch_ms, &when))
		return -1;
	ms = (double)when * 1000 - now_epoch_ms;
	if (!(ms > 0))
		return 0;
	return ms < RETRY_AFTER_CAP_MS ? ms : RETRY_AFTER_CAP_MS;
}

long retry_seconds_up(double ms)
{
	long s;

	if (!(ms > 0))
		return 0;
	if (ms >= (double)RETRY_AFTER_CAP_MS)
		ms = (double)RETRY_AFTER_CAP_MS;
	s = (long)(ms / 1000.0);
	if ((double)s * 1000.0 < ms)
		s++;
	return s;
}
