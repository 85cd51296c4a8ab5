/* batch: one client's batch from the first enqueue to the answer.  Owns
 * the parsed request, its fetches and outcomes and its timers: one of
 * each per item for a buffered answer; for a streamed one (NDJSON, SPEC
 * 11) a window of them, reused as lines go out, and one byte per item.
 * It calls the answer callback exactly once, from a deferred event (never
 * inside a fetch callback); from then on the caller owns it, pulls the
 * answer with batch_answer_more() (buffered) or the rest of the lines with
 * batch_lines() (streamed) and frees it with batch_free().  If the client
 * went away first (batch_abandon) it frees itself instead. */
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
	size_t stream_window;   /* a streamed answer: requests started and not
	                         * written out yet, at most (batch_stream_window);
	                         * 0 = a buffered answer */
};

/* The window of a streamed batch: enough to keep global_concurrency busy,
 * small enough that fetches and outcomes cost little whatever the batch's
 * length. */
size_t batch_stream_window(long global_concurrency);

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

/* --- streamed batches ------------------------------------------------------
 * Requests start in input order, at most stream_window of them not yet
 * written out; ready(b, arg) runs (from a deferred event) whenever
 * batch_lines() has something new: a request's line, a progress line,
 * after the answer callback the last line. */
typedef void (*batch_lines_fn)(struct batch *b, void *arg);
void batch_on_lines(struct batch *b, batch_lines_fn ready, void *arg);

enum batch_lines_result {
	BATCH_LINES_WAIT,   /* nothing more for now: ready() says when */
	BATCH_LINES_MORE,   /* budget reached: more to write now */
	BATCH_LINES_DONE,   /* the last line is written */
};

/* Write the lines due into out, about budget bytes at most; each line's
 * outcome is freed once written. */
enum batch_lines_result batch_lines(struct batch *b, struct evbuffer *out, size_t budget);

/* Back-pressure: while held, no request of the batch starts (those under
 * way go on and their lines wait). */
void batch_hold(struct batch *b, bool hold);

/* Only after the answer callback: free the batch. */
void batch_free(struct batch *b);

#endif
