/* batch: one client's batch from the first enqueue to the answer.  Owns
 * the parsed request, one fetch and one outcome per item, and its timers.
 * It calls the answer callback exactly once, from a deferred event (never
 * inside a fetch callback); from then on the caller owns it, pulls the
 * answer with batch_answer_more() and frees it with batch_free().  If the
 * client went away first (batch_abandon) it frees itself instead. */
#ifndef FANOUTD_BATCH_H
#define FANOUTD_BATCH_H

#include <stdbool.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "env.h"
#include "outcome.h"
#include "request.h"
#include "upstream.h"

struct batch;

/* Called once with the HTTP status of the answer; the callee now owns b. */
typedef void (*batch_answer_fn)(struct batch *b, int status, void *arg);

struct batch_settings {
	long batch_timeout_ms;
};

/* Takes ownership of *br (which is left empty). */
struct batch *batch_new(struct batch_request *br, struct upstream_registry *reg,
                        const struct fetch_env *env, const struct batch_settings *bs,
                        batch_answer_fn answer, void *arg);

/* Enqueue every request, in input order. */
void batch_start(struct batch *b);

/* The client is gone: abort everything; no answer is sent. */
void batch_abandon(struct batch *b);

/* Shutdown ran out of time: cancel what is left and answer now. */
void batch_cancel(struct batch *b);

size_t batch_size(const struct batch *b);

/* The first request, in input order, that failed by itself (cancelled
 * ones are not failures): true and its index and type, or false. */
bool batch_first_failure(const struct batch *b, size_t *index, enum outcome_type *type);

/* Write more of the answer into out (at least budget bytes, unless it
 * ends first); true once the answer is complete. */
bool batch_answer_more(struct batch *b, struct evbuffer *out, size_t budget);

/* Only after the answer callback: free the batch. */
void batch_free(struct batch *b);

#endif
