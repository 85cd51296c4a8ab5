/* fetch_internal: what fetch.c (the life of a fetch: slots, timers,
 * retries, its end), fetch_connect.c (onto a connection: DNS, connect, the
 * failure classifier), fetch_slots.c (the stages it waits through),
 * fetch_answer.c (its answer as it
 * arrives) and fetch_retry.c (what an attempt's end means for the next)
 * share; collapse.c and hedge.c log about fetches with fetch_debug too.
 * Included by nothing else. */
#ifndef FANOUTD_FETCH_INTERNAL_H
#define FANOUTD_FETCH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "exchange.h"
#include "fetch.h"
#include "log.h"

/* "b17[3]": the batch and the item a log line is about (fetch.c). */
void fetch_describe(const void *obj, char *buf, size_t len);

/* A debug line about fetch f.  (fetch_obj() makes the compiler check
 * that f is a fetch.) */
static inline const void *fetch_obj(const struct fetch *f) { return f; }
#define fetch_debug(f, ...) \
	log_about(LOG_LEVEL_DEBUG, fetch_describe, fetch_obj(f), __VA_ARGS__)

/* Every change of f->state: checked against fetch.c's diagram, traced. */
void fetch_set_state(struct fetch *f, enum fetch_state to);

/* (Re)arm the timer: the connect deadline while connecting, else the
 * request's (fetch.c). */
void fetch_arm_timer(struct fetch *f);

/* Hand the connection back (reusable, unless the deny list now covers its
 * address); an exchange still under way is cancelled (fetch.c). */
void fetch_drop_conn(struct fetch *f, bool reusable);

/* The waiters' grant callbacks (fetch_slots.c; from fetch_init). */
void fetch_slots_init(struct fetch *f);

/* An attempt begins (queued): through the stages to fetch_begin(), or
 * into the identical request in flight; an open breaker fails it at once
 * (fetch_slots.c). */
void fetch_start_attempt(struct fetch *f);

/* A GET or HEAD without a body to a collapse = yes upstream (SPEC 15). */
bool fetch_collapsible(const struct fetch *f);

/* Leave whichever queue f waits in, while queued (fetch_slots.c). */
void fetch_leave_queue(struct fetch *f);

/* Hand back the slots held, the widest first; again is harmless
 * (fetch_slots.c).  It may run other requests, which may end f. */
void fetch_release_slots(struct fetch *f);

/* The attempt has its slots: on an idle connection, or a new one
 * (fetch_connect.c). */
void fetch_begin(struct fetch *f);

/* A connection to send on (c), or leave to open one (c NULL), for a fetch
 * that waited for one: the pool's waiter callback (fetch_connect.c). */
void fetch_conn_ready(struct pool_waiter *w, struct pool_conn *c, void *arg);

/* The natural end of a fetch (message is owned by the outcome now);
 * reusable: the connection may carry the next request. */
void fetch_finish(struct fetch *f, enum outcome_type type, char *message,
                  const char *phase, bool reusable);

/* Abort what is under way, then end with this failure. */
void fetch_fail(struct fetch *f, enum outcome_type type, char *message);

/* An attempt ended in type (with phase, for a timeout): true when another
 * is to be made, after *wait ms, for f->retry_reason (fetch_retry.c). */
bool fetch_retry_wait(struct fetch *f, enum outcome_type type, const char *phase,
                      double *wait);

/* Tell the upstream how an attempt ended: its Retry-After pause, its
 * breaker. */
void fetch_retry_note(struct fetch *f, enum outcome_type type, const char *phase);

/* May the attempt start (the breaker)?  false: fail it as circuit_open,
 * the next probe in *retry_in_ms. */
bool fetch_retry_admit(struct fetch *f, double *retry_in_ms);

/* The exchange's head, body and end events (fetch_answer.c); ctx is the
 * fetch. */
int fetch_answer_head(void *ctx, const struct exchange_head *head);
int fetch_answer_body(void *ctx, const char *data, size_t len);
void fetch_answer_end(void *ctx, bool reusable);

#endif
