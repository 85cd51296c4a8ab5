/* retry: the vocabulary of retrying (SPEC section 10), in one place for
 * the config, the batch parser and the fetch: which failures may be
 * retried (retry_on: connect, timeout, a status), a retry policy as the
 * config, a batch or a request gives it and as it resolves for one
 * request, the wait before the next attempt (exponential back-off with
 * full jitter), and the Retry-After header's three forms.  Pure: no
 * events, no clock but the one passed in, no randomness but the number
 * passed in. */
#ifndef FANOUTD_RETRY_H
#define FANOUTD_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Statuses retry_on may name: 400..599. */
#define RETRY_STATUS_MIN 400
#define RETRY_STATUS_MAX 599

/* The failures a policy retries. */
struct retry_on {
	bool connect;       /* "connect": refused, unreachable, reset before an answer */
	bool timeout;       /* "timeout": phases connect, tls, response (response
	                     * only for idempotent methods) */
	uint8_t status[(RETRY_STATUS_MAX - RETRY_STATUS_MIN + 1 + 7) / 8];   /* bit per code */
};

/* SPEC's default: connect, timeout, 429, 502, 503, 504. */
void retry_on_default(struct retry_on *on);
bool retry_on_status(const struct retry_on *on, int status);
void retry_on_add_status(struct retry_on *on, int status);

/* One name of a retry_on list, n bytes (no NUL needed): "connect",
 * "timeout" or a status 400..599 ("503").  Adds it to on; false when it
 * is none of these. */
bool retry_on_add_name(struct retry_on *on, const char *name, size_t n);

/* A whole list as the config writes it: "connect, timeout, 429" (commas
 * and/or white space between names; at least one name).  Sets on to
 * exactly the list.  On a bad name, or none, returns false, says why in
 * err and leaves on as it was. */
bool retry_on_parse_list(struct retry_on *on, const char *list, char *err, size_t errlen);

/* The list as text, in the config's spelling: "connect, timeout, 429, 502". */
void retry_on_format(const struct retry_on *on, char *buf, size_t len);

/* A policy as the config, a batch ("retry": {...}) or a request gives it;
 * a field < 0 (attempts: < 1; on: on_set false) is not given and comes
 * from the level above. */
struct retry_policy {
	long attempts;          /* every attempt, the first included: 1 = no retry */
	long backoff_ms;        /* the first back-off; doubles each retry */
	long max_backoff_ms;    /* the back-off never exceeds this */
	bool on_set;
	struct retry_on on;
};

/* A policy with nothing given. */
void retry_policy_unset(struct retry_policy *p);

/* The policy one request runs with: each field from req, else batch,
 * else cfg (which gives every field); either of req and batch may be
 * NULL.  attempts is clamped to 1 + max_retries (the config's ceiling). */
void retry_policy_resolve(struct retry_policy *out, const struct retry_policy *cfg,
                          const struct retry_policy *batch, const struct retry_policy *req,
                          long max_retries);

/* The back-off before retry number n (1 for the first retry; 0 counts as
 * 1): full jitter, unit_random (in [0, 1)) times min(max_backoff_ms,
 * backoff_ms * 2^(n-1)).  Never overflows, whatever n. */
double retry_backoff_ms(const struct retry_policy *p, unsigned n, double unit_random);

/* Longer than any wait worth keeping (a year): a longer Retry-After,
 * however many digits, is cut to this; callers cut to max_retry_after. */
#define RETRY_AFTER_CAP_MS (365.0 * 24 * 3600 * 1000)

/* Retry-After's value (len bytes, no NUL needed; white space around it
 * is fine): delta-seconds ("120"), decimal seconds ("1.5", an extension
 * some APIs send) or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", also
 * the obsolete RFC 850 and asctime forms RFC 9110 asks recipients to
 * accept).  Returns the milliseconds to wait from now_epoch_ms (the wall
 * clock, ms since 1970): 0 for a date in the past, at most
 * RETRY_AFTER_CAP_MS; -1 when the value is none of these. */
double retry_after_ms(const char *value, size_t len, double now_epoch_ms);

/* ms as whole seconds, rounded up (what retry_after_s says): 0.1 ms is 1 s. */
long retry_seconds_up(double ms);

#endif
