/* breaker: the circuit breaker's state machine (see breaker.h). */
#include "breaker.h"

const char *breaker_state_name(enum breaker_state s)
{
	static const char *names[] = {
		[BREAKER_CLOSED] = "closed", [BREAKER_OPEN] = "open",
		[BREAKER_HALF_OPEN] = "half_open",
	};

	return names[s];
}

/* The one place the state changes. */
static void set_state(struct breaker *b, enum breaker_state to, double now_ms)
{
	if (to == BREAKER_OPEN) {
		b->open_until_ms = now_ms + (double)b->cooldown_ms;
		if (b->state != BREAKER_OPEN)
			b->trips++;
	}
	if (to != BREAKER_HALF_OPEN)
		b->probing = false;
	b->failures = 0;
	b->state = to;
}

void breaker_configure(struct breaker *b, long threshold, long cooldown_ms)
{
	b->threshold = threshold;
	b->cooldown_ms = cooldown_ms;
	/* off: closed, and the count forgotten (no failure is noted while off,
	 * so the old ones are not consecutive with those after it is back on) */
	if (threshold <= 0)
		set_state(b, BREAKER_CLOSED, 0);
}

enum breaker_verdict breaker_admit(struct breaker *b, double now_ms, double *retry_in_ms)
{
	*retry_in_ms = 0;
	if (b->threshold <= 0 || b->state == BREAKER_CLOSED)
		return BREAKER_ADMIT;
	if (b->state == BREAKER_OPEN && now_ms < b->open_until_ms) {
		*retry_in_ms = b->open_until_ms - now_ms;
		return BREAKER_REJECT;
	}
	if (b->state == BREAKER_OPEN)
		set_state(b, BREAKER_HALF_OPEN, now_ms);
	if (b->probing)
		return BREAKER_REJECT;
	b->probing = true;
	return BREAKER_PROBE;
}

void breaker_note(struct breaker *b, enum breaker_result r, bool probe, double now_ms)
{
	if (b->threshold <= 0)
		return;
	if (probe && b->state == BREAKER_HALF_OPEN) {
		/* a probe that neither failed nor succeeded (a 404) still shows
		 * the upstream answers: close */
		set_state(b, r == BREAKER_FAILURE ? BREAKER_OPEN : BREAKER_CLOSED, now_ms);
		return;
	}
	if (b->state != BREAKER_CLOSED)
		return;   /* requests admitted before it opened */
	if (r == BREAKER_SUCCESS)
		b->failures = 0;
	else if (r == BREAKER_FAILURE && ++b->failures >= b->threshold)
		set_state(b, BREAKER_OPEN, now_ms);
}

void breaker_probe_abandoned(struct breaker *b)
{
	if (b->state == BREAKER_HALF_OPEN)
		b->probing = false;
}
