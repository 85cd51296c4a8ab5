/* answer: builds every JSON answer fanoutd sends: batch results, error
 * groups, settled lists and the small error bodies for bad requests.
 * Writes straight into the evbuffer that goes to the client, one entry at
 * a time, so no second copy of the whole answer is ever held.  Also owns
 * struct outcome, what one upstream request came to. */
#ifndef FANOUTD_ANSWER_H
#define FANOUTD_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <jansson.h>
#include <event2/buffer.h>

#include "request.h"

enum outcome_type {
	OUTCOME_PENDING = 0,   /* not finished yet */
	OUTCOME_OK,            /* 2xx */
	OUTCOME_CANCELLED,     /* stopped by fail-fast, shutdown or the client */
	OUTCOME_HTTP_STATUS,   /* non-2xx other than 429 */
	OUTCOME_RATE_LIMITED,  /* 429 */
	OUTCOME_TIMEOUT,
	OUTCOME_CONNECT,       /* refused, unreachable, reset */
	OUTCOME_DNS,
	OUTCOME_TLS,
	OUTCOME_PROTOCOL,      /* malformed upstream answer */
	OUTCOME_TOO_LARGE,     /* body over max_response_body */
	OUTCOME_FORBIDDEN,     /* resolved into deny_networks */
};

struct outcome_timing {
	double queued_ms;      /* waiting for a slot */
	double connect_ms;     /* connect (+ handshake); 0 on a reused connection */
	double ttfb_ms;        /* request start to first response byte */
	double total_ms;       /* whole request, queue included */
};

struct outcome {
	enum outcome_type type;
	int status;            /* HTTP status, 0 when there was no answer */
	char *message;         /* failure text (owned), NULL on success */
	const char *phase;     /* timeout phase, static string, or NULL */
	long retry_after_s;    /* from Retry-After on 429, -1 if none */
	json_t *headers;       /* response headers while collected (owned) or NULL */
	char *headers_json;    /* the same, serialised by outcome_seal (owned) */
	char *content_type;    /* kept by outcome_seal (owned) or NULL */
	char *body;            /* response body (owned, malloc) or NULL */
	size_t body_len;
	size_t body_cap;       /* allocated; trimmed to body_len when done */
	struct outcome_timing timing;
	bool reused;           /* went over a kept-alive connection */
};

void outcome_init(struct outcome *o);
void outcome_clear(struct outcome *o);   /* frees what it owns */

/* Body storage sized to the body, not to the socket buffers it came in:
 * reserve (from Content-Length), append (moves bytes out of in), trim. */
void outcome_body_reserve(struct outcome *o, size_t n);
void outcome_body_append(struct outcome *o, struct evbuffer *in);
void outcome_body_trim(struct outcome *o);

/* Swap the headers object (~1 KiB) for its JSON text (~100 bytes); a
 * finished outcome waits in memory until the whole batch is done. */
void outcome_seal(struct outcome *o);
bool outcome_is_failure(const struct outcome *o);
const char *outcome_type_name(enum outcome_type t);

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

/* {"ok":false,"error":error,"message":message} */
void answer_write_error(struct evbuffer *out, const char *error, const char *message);

#endif
