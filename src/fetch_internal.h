/* fetch_internal: what fetch.c (the life of a fetch: slots, timers, DNS,
 * connect, the failure classifier) and fetch_answer.c (its answer as it
 * arrives) share.  Included by nothing else. */
#ifndef FANOUTD_FETCH_INTERNAL_H
#define FANOUTD_FETCH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "exchange.h"
#include "fetch.h"

/* The natural end of a fetch (message is owned by the outcome now);
 * reusable: the connection may carry the next request. */
void fetch_finish(struct fetch *f, enum outcome_type type, char *message,
                  const char *phase, bool reusable);

/* Abort what is under way, then end with this failure. */
void fetch_fail(struct fetch *f, enum outcome_type type, char *message);

/* The exchange's head, body and end events (fetch_answer.c); ctx is the
 * fetch. */
int fetch_answer_head(void *ctx, const struct exchange_head *head);
int fetch_answer_body(void *ctx, const char *data, size_t len);
void fetch_answer_end(void *ctx, bool reusable);

#endif
