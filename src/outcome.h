/* outcome: what one upstream request came to — its type, status, timing,
 * response headers and body.  The batch owns one per item; the fetch
 * fills it in; the answer writer reads it (and consumes its body); the
 * upstream series and /metrics count by its type. */
#ifndef FANOUTD_OUTCOME_H
#define FANOUTD_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <event2/buffer.h>

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
	OUTCOME_COUNT,         /* not a type: how many there are, to size
	                          arrays and bound loops */
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

/* Failed by itself: not pending, not ok, not cancelled. */
bool outcome_is_failure(const struct outcome *o);

/* "pending", "ok", "http_status", ...: the name the answers and /metrics
 * use; t < OUTCOME_COUNT. */
const char *outcome_type_name(enum outcome_type t);

#endif
