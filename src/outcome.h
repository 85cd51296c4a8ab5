/* outcome: what one upstream request came to — its type, status, timing,
 * response headers and body.  The batch owns one per item; the fetch
 * fills it in; the answer writer reads it (and consumes its body); the
 * upstream series and /metrics count by its type. */
#ifndef FANOUTD_OUTCOME_H
#define FANOUTD_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>
#include <event2/buffer.h>

#include "exchange.h"

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
	OUTCOME_CIRCUIT_OPEN,  /* the upstream's breaker is open: nothing sent */
	OUTCOME_COUNT,         /* not a type: how many there are, to size
	                          arrays and bound loops */
};

struct outcome_timing {
	double queued_ms;      /* waiting for a slot */
	double connect_ms;     /* connect (+ handshake); 0 on a reused connection */
	double ttfb_ms;        /* request start to first response byte */
	double total_ms;       /* whole request, queue included */
};

/* A body several outcomes read: the answer of a collapsed request
 * (collapse.c), given to each of its waiters.  Freed by the last reader. */
struct outcome_share {
	unsigned refs;
	char *data;            /* owned, malloc */
	size_t len;
};

struct outcome {
	enum outcome_type type;
	int status;            /* HTTP status, 0 when there was no answer */
	char *message;         /* failure text (owned), NULL on success */
	const char *phase;     /* timeout phase, static string, or NULL */
	long retry_after_s;    /* rate_limited, circuit_open: seconds to wait
	                        * (Retry-After rounded up; the cooldown left), -1 if none */
	double retry_after_ms; /* Retry-After of a 429 or 503, -1 if none */
	char *headers_json;    /* the response headers as a compact JSON object
	                        * (owned; one block with content_type), NULL
	                        * while there was no response */
	const char *content_type;   /* in the block of headers_json, or NULL */
	char *body;            /* response body (owned, malloc) or NULL; with
	                        * share, share->data (read only) */
	struct outcome_share *share;   /* one reference, or NULL: body is o's own */
	size_t body_len;
	size_t body_cap;       /* allocated; trimmed to body_len when done */
	struct outcome_timing timing;
	bool reused;           /* went over a kept-alive connection (or, in
	                        * HTTP/2, one already open) */
	const char *protocol;  /* "http/1.1" or "h2" once it got a connection
	                        * (static), else NULL */
	char *decoded;         /* the Content-Encoding undone ("gzip"), owned, or NULL */
	unsigned attempts;     /* made so far (the outcome is the last one's) */
	double retry_wait_ms;  /* waited between them */
	bool shared;           /* the answer of a request collapsed with others
	                        * (SPEC 15): more than one got it */
	bool hedged;           /* a second attempt was sent while this one
	                        * waited (SPEC 15); the timings are the winner's */
};

void outcome_init(struct outcome *o);
void outcome_clear(struct outcome *o);   /* frees what it owns */

/* Forget the attempt that failed (its answer, message, timing,
 * connection facts) for the next one; attempts and retry_wait_ms stay. */
void outcome_next_attempt(struct outcome *o);

/* Body storage sized to the body, not to the socket buffers it came in:
 * reserve (from Content-Length), append (moves bytes out of in), trim. */
void outcome_body_reserve(struct outcome *o, size_t n);
void outcome_body_append(struct outcome *o, struct evbuffer *in);
void outcome_body_add(struct outcome *o, const char *data, size_t len);
void outcome_body_trim(struct outcome *o);

/* Let go of the body: free it, or drop the reference to a shared one. */
void outcome_body_release(struct outcome *o);

/* Drop one reference to s (an evbuffer cleanup callback may call it
 * through answer.c). */
void outcome_share_unref(struct outcome_share *s);

/* dst (pending) gets src's result: type, status, message, phase, headers,
 * timings, protocol, attempts and the body — src's body becomes shared,
 * dst holds a reference (no copy).  src keeps its own. */
void outcome_share_result(struct outcome *dst, struct outcome *src);

/* dst gets src's result as outcome_share_result() gives it, but the
 * body and every block move: src is left cleared.  dst's attempts and
 * retry_wait_ms stay its own. */
void outcome_move_result(struct outcome *dst, struct outcome *src);

/* The final answer's head: its status, its headers as JSON text (what
 * json_dumps(JSON_COMPACT) made of an object of the fields, values made
 * valid UTF-8 as answer_textn does; a field whose name is not UTF-8 left
 * out, as jansson does), Content-Type, and on a 429 or 503 Retry-After
 * parsed (retry.h) into retry_after_ms and, rounded up, retry_after_s
 * (from now).  One allocation, a few bytes over the
 * JSON text: a finished outcome waits in memory until the whole batch is
 * done.  Replaces what an earlier call (a retried request) set. */
void outcome_set_head(struct outcome *o, const struct exchange_head *head);

/* Failed by itself: not pending, not ok, not cancelled. */
bool outcome_is_failure(const struct outcome *o);

/* "pending", "ok", "http_status", ...: the name the answers and /metrics
 * use; t < OUTCOME_COUNT. */
const char *outcome_type_name(enum outcome_type t);

#endif
