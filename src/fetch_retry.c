/* fetch_retry: what one attempt's end means beyond the request (SPEC
 * section 10) — whether another attempt is made and after how long (the
 * retry policy, the method, the retry budget, the batch deadline), the
 * upstream's Retry-After pause, and what the circuit breaker hears.
 * Decisions only: fetch.c changes the state and holds the timers. */
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "clock.h"
#include "fetch_internal.h"
#include "log.h"
#include "request.h"

static bool is_timeout_phase(const char *phase, const char *name)
{
	return phase != NULL && strcmp(phase, name) == 0;
}

/* RFC 9110 9.2.2's idempotent methods. */
static bool idempotent(enum request_method m)
{
	return m != REQUEST_METHOD_POST && m != REQUEST_METHOD_PATCH;
}

/* The reason this failure may be retried for, or -1: connect errors,
 * timeouts in phases connect, tls and response, the statuses retry_on
 * names. */
static int reason_of(const struct fetch *f, enum outcome_type type, const char *phase)
{
	const struct retry_on *on = &f->policy.on;
	int status = f->out->status;

	switch (type) {
	case OUTCOME_CONNECT:
		return on->connect ? UPSTREAM_RETRY_CONNECT : -1;
	case OUTCOME_TIMEOUT:
		if (!on->timeout)
			return -1;
		if (is_timeout_phase(phase, "connect") || is_timeout_phase(phase, "tls") ||
		    is_timeout_phase(phase, "response"))
			return UPSTREAM_RETRY_TIMEOUT;
		return -1;
	case OUTCOME_HTTP_STATUS:
	case OUTCOME_RATE_LIMITED:
		if (!retry_on_status(on, status))
			return -1;
		switch (status) {
		case 429: return UPSTREAM_RETRY_429;
		case 500: return UPSTREAM_RETRY_500;
		case 502: return UPSTREAM_RETRY_502;
		case 503: return UPSTREAM_RETRY_503;
		case 504: return UPSTREAM_RETRY_504;
		default: return UPSTREAM_RETRY_OTHER_STATUS;
		}
	default:
		return -1;
	}
}

/* Idempotent methods, and POST/PATCH that carry an Idempotency-Key; a
 * timeout while the answer was awaited only for idempotent methods (the
 * upstream may have acted on it). */
static bool method_allows(const struct fetch *f, bool response_timeout)
{
	if (idempotent(f->item->method))
		return true;
	if (response_timeout)
		return false;
	return request_item_has_header(f->item, "Idempotency-Key");
}

static double unit_random(void)
{
	return (double)arc4random() / 4294967296.0;
}

/* The wait before the next attempt: the upstream's Retry-After when it
 * sent one (at most max_retry_after), else the back-off. */
static double wait_for(const struct fetch *f)
{
	double ra = f->out->retry_after_ms;

	if (ra >= 0 && (f->out->status == 429 || f->out->status == 503))
		return ra < (double)f->up->max_retry_after_ms ? ra : (double)f->up->max_retry_after_ms;
	return retry_backoff_ms(&f->policy, f->out->attempts, unit_random());
}

bool fetch_retry_wait(struct fetch *f, enum outcome_type type, const char *phase,
                      double *wait)
{
	int reason = reason_of(f, type, phase);

	if (reason < 0 || f->out->attempts >= (unsigned)f->policy.attempts)
		return false;
	if (f->halt != NULL && *f->halt)
		return false;
	if (!method_allows(f, type == OUTCOME_TIMEOUT && is_timeout_phase(phase, "response"))) {
		fetch_debug(f, "not retried: %s is not idempotent", request_method_name(f->item->method));
		return false;
	}
	*wait = wait_for(f);
	if (f->deadline_ms > 0 && clock_now_ms() + *wait >= f->deadline_ms) {
		fetch_debug(f, "not retried: a wait of %.0f ms ends after the batch deadline", *wait);
		return false;
	}
	if (!upstream_retry_allowed(f->up, f->budget_held)) {
		f->up->budget_exhausted++;
		fetch_debug(f, "not retried: %s's retry budget is spent", f->up->key);
		return false;
	}
	f->retry_reason = reason;   /* counted when the attempt starts */
	return true;
}

void fetch_retry_note(struct fetch *f, enum outcome_type type, const char *phase)
{
	struct upstream *u = f->up;
	enum breaker_result r = BREAKER_NEUTRAL;
	int status = f->out->status;
	double ra = f->out->retry_after_ms;

	/* Retry-After slows the upstream for every caller, retries or not */
	if (u->honor_retry_after && ra > 0 && (status == 429 || status == 503))
		upstream_pause(u, ra < (double)u->max_retry_after_ms ? ra : (double)u->max_retry_after_ms);
	if (type == OUTCOME_OK)
		r = BREAKER_SUCCESS;
	else if (type == OUTCOME_CONNECT || (type == OUTCOME_HTTP_STATUS && status >= 500))
		r = BREAKER_FAILURE;
	else if (type == OUTCOME_TIMEOUT && (is_timeout_phase(phase, "connect") ||
	         is_timeout_phase(phase, "tls") || is_timeout_phase(phase, "response")))
		r = BREAKER_FAILURE;
	breaker_note(&u->breaker, r, f->probe, clock_now_ms());
	f->probe = false;
}

bool fetch_retry_admit(struct fetch *f, double *retry_in_ms)
{
	switch (breaker_admit(&f->up->breaker, clock_now_ms(), retry_in_ms)) {
	case BREAKER_PROBE:
		f->probe = true;
		fetch_debug(f, "the half-open probe of %s", f->up->key);
		return true;
	case BREAKER_REJECT:
		return false;
	default:
		return true;
	}
}
