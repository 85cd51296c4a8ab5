/* batch: one client's batch from the first enqueue to the answer.  Owns
 * the parsed request, one fetch and one outcome per item, and its timers.
 * It answers exactly once through the callback (unless the client went
 * away), then frees itself from a deferred event, never from inside a
 * fetch callback. */
#ifndef FANOUTD_BATCH_H
#define FANOUTD_BATCH_H

#include <event2/buffer.h>
#include <event2/event.h>

#include "fetch.h"
#include "request.h"
#include "upstream.h"

struct batch;

/* Called once with the HTTP status and the JSON answer (the callee may
 * move the buffer's contents); the batch is freed right after. */
typedef void (*batch_answer_fn)(struct batch *b, int status, struct evbuffer *body,
                                void *arg);

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

#endif
