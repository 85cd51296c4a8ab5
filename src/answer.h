/* answer: builds every JSON answer fanoutd sends: batch results, error
 * groups, settled lists and the small error bodies for bad requests.
 * Writes straight into the evbuffer that goes to the client, one entry at
 * a time, so no second copy of the whole answer is ever held.  Reads the
 * outcomes (outcome.h) and consumes their bodies as it writes them. */
#ifndef FANOUTD_ANSWER_H
#define FANOUTD_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <jansson.h>
#include <event2/buffer.h>

#include "outcome.h"
#include "request.h"

/* A JSON string for text that should be UTF-8 but may not be (upstream
 * header values, reason phrases, upstream keys): bytes that would break
 * it become '?'.  The caller owns the result. */
json_t *answer_text(const char *s);

/* Add one response header to a JSON object: name lower-cased, a repeated
 * header joined to the earlier value with ", ". */
void answer_add_header(json_t *headers, const char *name, const char *value);

/* Retry-After as seconds from now: delta-seconds or an HTTP date.
 * Returns 0 and sets *out, or -1 when the value is not understood. */
int answer_parse_retry_after(const char *value, time_t now, long *out);

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

/* v as compact JSON (any value, not just an object or array). */
void answer_write_json(struct evbuffer *out, const json_t *v);

/* {"ok":false,"error":error,"message":message} */
void answer_write_error(struct evbuffer *out, const char *error, const char *message);

#endif
