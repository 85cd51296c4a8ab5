/* breaker: one upstream's circuit breaker (SPEC section 10), as a state
 * machine on a clock passed in:
 *
 *   closed --N consecutive failures--> open --cooldown--> half_open
 *   half_open: one probe; its success closes, its failure opens again
 *
 * While open (and while the probe is out) every request is refused at
 * once.  What counts as a failure is the caller's to say (fetch.c: connect
 * errors, timeouts in phases connect, tls and response, 5xx); a success
 * resets the count.  No events, no timers: the cooldown is checked when a
 * request asks. */
#ifndef FANOUTD_BREAKER_H
#define FANOUTD_BREAKER_H

#include <stdbool.h>

enum breaker_state {
	BREAKER_CLOSED = 0,
	BREAKER_OPEN,
	BREAKER_HALF_OPEN,
};

struct breaker {
	enum breaker_state state;
	long threshold;          /* consecutive failures that open it; 0: off */
	long cooldown_ms;
	long failures;           /* consecutive, while closed */
	double open_until_ms;    /* while open */
	bool probing;            /* half open: the probe is out */
	unsigned long trips;     /* times it opened */
};

/* What a request may do. */
enum breaker_verdict {
	BREAKER_ADMIT,           /* go */
	BREAKER_PROBE,           /* go, as the probe: report its end with probe true */
	BREAKER_REJECT,          /* fail at once (circuit_open) */
};

/* How a request ended, for the breaker. */
enum breaker_result {
	BREAKER_SUCCESS,
	BREAKER_FAILURE,
	BREAKER_NEUTRAL,         /* neither (4xx, 429, a queued timeout, cancelled) */
};

/* New limits (start, reload); a breaker switched off closes. */
void breaker_configure(struct breaker *b, long threshold, long cooldown_ms);

/* May a request start at now_ms?  On REJECT, *retry_in_ms says when the
 * next probe may go (0 while a probe is out). */
enum breaker_verdict breaker_admit(struct breaker *b, double now_ms, double *retry_in_ms);

/* A request admitted earlier ended so (probe: it was admitted as the probe). */
void breaker_note(struct breaker *b, enum breaker_result r, bool probe, double now_ms);

/* The probe was abandoned before it ended (cancelled): another may go. */
void breaker_probe_abandoned(struct breaker *b);

/* "closed", "open", "half_open" (as /v1/upstreams and /metrics say). */
const char *breaker_state_name(enum breaker_state s);

#endif
