/* answer: builds every JSON answer fanoutd sends: batch results, error
 * groups, settled lists and the small error bodies for bad requests.
 * Writes straight into the evbuffer that goes to the client, one entry at
 * a time, so no second copy of the whole answer is ever held.  Reads the
 * outcomes (outcome.h) and consumes their bodies as it writes them. */
#ifndef FANOUTD_ANSWER_H
#define FANOUTD_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>
#include <event2/buffer.h>

#include "answer_text.h"
#include "outcome.h"
#include "request.h"

/* The answer of a finished batch, written piece by piece as the client
 * takes it, so a 10,000-entry answer is never held whole. */
enum answer_shape {
	ANSWER_ALL_OK,     /* mode all, every request 2xx: 200 */
	ANSWER_GROUP,      /* mode all, failed or cancelled: 502 or 503 */
	ANSWER_SETTLED,    /* mode settled: 200 */
};

struct answer_stream {
	const struct batch_request *br;   /* borrowed */
	struct outcome *outcomes;         /* borrowed; bodies consumed as written */
	double elapsed_ms;
	enum answer_shape shape;
	int status;                       /* HTTP status of the answer */
	size_t failed, cancelled;
	size_t next;                      /* next index to write */
	size_t entries;                   /* entries written so far */
	bool started, done;
};

void answer_stream_init(struct answer_stream *s, const struct batch_request *br,
                        struct outcome *outcomes, double elapsed_ms);

/* Append to out until it grew by at least budget bytes or the answer is
 * complete; returns true once complete. */
bool answer_stream_write(struct answer_stream *s, struct evbuffer *out, size_t budget);

/* The whole answer at once, consuming the outcomes' bodies
 * (see put_body); returns the HTTP status to send:
 * 200, 502, or 503 when a mode "all" batch was cancelled by shutdown
 * (mode "settled" is always 200). */
int answer_write_batch(struct evbuffer *out, const struct batch_request *br,
                       struct outcome *outcomes, double elapsed_ms);

/* A streamed answer (SPEC 11), a line at a time, each ending in "\n". */

/* Request index's line: the object its entry in the buffered answer
 * would be (in "results", in "errors" for a failure in mode all, or a
 * settled entry) — but on one line: a JSON body's line breaks (all
 * outside its strings) become spaces; consumes the outcome's body as
 * answer_stream_write does. */
void answer_write_line(struct evbuffer *out, const struct batch_request *br, size_t index,
                       struct outcome *o);

struct answer_progress {
	size_t total;        /* requests in the batch */
	size_t done;         /* finished: succeeded or failed */
	size_t failed;       /* of those, failed */
	size_t in_flight;    /* holding a slot: resolving, connecting, exchanging */
	size_t queued;       /* the rest: not started, waiting for a slot or a retry */
	double elapsed_ms;
};

/* {"progress":{"total":…,"done":…,"failed":…,"in_flight":…,"queued":…,"elapsed_ms":…}} */
void answer_write_progress(struct evbuffer *out, const struct answer_progress *p);

/* The last line: {"done":true,"ok":…[,"error":…,"message":…],"elapsed_ms":…,
 * "completed":[…],"failed":[…],"cancelled":[…]}, from the type of each
 * item (types[i] an enum outcome_type; pending counts as cancelled).
 * error and message only in mode all when not ok, as in the buffered
 * error group. */
void answer_write_last(struct evbuffer *out, const struct batch_request *br,
                       const unsigned char *types, double elapsed_ms);

/* v as compact JSON (any value, not just an object or array), by jansson. */
void answer_write_json(struct evbuffer *out, const json_t *v);

/* {"ok":false,"error":error,"message":message} */
void answer_write_error(struct evbuffer *out, const char *error, const char *message);

#endif
