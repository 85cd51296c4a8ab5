/* h1: the HTTP/1.1 codec of one upstream connection, on llhttp.  It owns
 * request serialisation (a header block prebuilt once per upstream plus the
 * request's own headers) and response parsing into events (head, body
 * chunks, end or fail).  A codec only turns bytes into events: no sockets,
 * no timers, no retries — the transport and the fetch own those, and the
 * fetch owns every size cap but the head's (h1_limits). */
#ifndef FANOUTD_H1_H
#define FANOUTD_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exchange.h"

struct evbuffer;

/* --- requests ----------------------------------------------------------- */

/* A header to send.  Laid out as struct request_header, so a request's
 * list can be passed as it is.  Names are tokens and values hold no CR,
 * LF or NUL: request.c checks that; h1 asserts it. */
struct h1_header {
	const char *name;
	const char *value;
};

/* The lines every request to one upstream carries unless the request has
 * a header of the same name (Host, User-Agent, Accept ...), serialised
 * once.  Opaque; the block owns copies of everything it was given. */
struct h1_block;

struct h1_block *h1_block_new(const struct h1_header *headers, size_t n);
void h1_block_free(struct h1_block *b);

/* One request; everything borrowed for the length of the call. */
struct h1_request {
	const char *method;              /* a token: "GET", "POST", ... */
	const char *target;              /* origin-form: "/path?query" */
	const struct h1_block *block;    /* NULL: none */
	const struct h1_header *headers; /* the request's own */
	size_t nheaders;
	const char *body;                /* NULL: no body */
	size_t body_len;
};

/* Append the request to out: request line, the block's lines the request
 * does not override, the request's headers, Content-Length (always for
 * POST, PUT and PATCH, even of an empty body; for any other method only
 * with a body), the blank line and the body.  No printf: memcpy only. */
void h1_write_request(struct evbuffer *out, const struct h1_request *req);

/* --- responses ---------------------------------------------------------- */

/* Caps on the head of an answer (status line and headers).  Borrowed:
 * the struct must outlive the codec; a change applies from the next head. */
struct h1_limits {
	size_t max_headers;       /* header lines of one answer (before joining) */
	size_t max_head_bytes;    /* status lines and headers of one exchange,
	                           * interim answers and trailers included */
};

enum h1_fail_kind {
	H1_FAIL_PROTOCOL,     /* malformed answer, or over h1_limits */
	H1_FAIL_TOO_LARGE,    /* the head or body callback refused (a size cap) */
	H1_FAIL_CLOSED,       /* EOF before the end of the answer */
};

/* What happened instead of an answer; message borrowed for the call. */
struct h1_failure {
	enum h1_fail_kind kind;
	const char *message;       /* e.g. "malformed answer: invalid status code" */
	bool nothing_received;     /* not one byte of the answer had arrived (a
	                            * stale kept-alive connection: retryable) */
};

/* The events of one exchange, in order: head (once), body (zero or more
 * times), then exactly one of end or fail — or just fail.  Callbacks must
 * not free the codec or feed it; any may call h1_cancel (no callback
 * follows), and end may h1_begin the next exchange.  Data pointers are
 * into the bytes being fed: copy what is kept. */
struct h1_ops {
	/* the final answer's head; return -1 to refuse it (e.g. Content-Length
	 * over a cap): the codec then reports H1_FAIL_TOO_LARGE */
	int (*head)(void *ctx, const struct exchange_head *head);
	/* len > 0 bytes of the decoded body; -1 refuses more: H1_FAIL_TOO_LARGE */
	int (*body)(void *ctx, const char *data, size_t len);
	/* the answer is whole; reusable: keep-alive was allowed AND no byte
	 * followed the answer, so the connection may serve the next request */
	void (*end)(void *ctx, bool reusable);
	/* the exchange failed; the connection must be closed */
	void (*fail)(void *ctx, const struct h1_failure *why);
};

/* A codec for one connection.  ops and lim are borrowed; ctx is passed
 * to every callback. */
struct h1;

struct h1 *h1_new(const struct h1_ops *ops, void *ctx, const struct h1_limits *lim);
void h1_free(struct h1 *h);

/* Start an exchange: a request with this method has been (or is being)
 * sent, and its answer is what is fed next.  Only on a new codec or after
 * an end with reusable = true (anything else aborts: the connection was
 * not fit for another request). */
void h1_begin(struct h1 *h, const char *method);

/* Parse len bytes that arrived on the connection.  Returns true while the
 * exchange wants more, false once it has ended (end or fail called now or
 * before).  Bytes fed between exchanges, or after the end, are never
 * parsed: they make the connection unfit (h1_reusable false). */
bool h1_feed(struct h1 *h, const char *data, size_t len);

/* As h1_feed, over every byte of buf, draining all of it; bytes of buf
 * after the answer are excess (reusable = false) whichever of buf's
 * chains they are in.  What the transport's read callback calls. */
bool h1_feed_buffer(struct h1 *h, struct evbuffer *buf);

/* The connection reached EOF.  Ends a close-delimited body (end, reusable
 * false); fails an exchange still short of its end (H1_FAIL_CLOSED);
 * between exchanges it only makes the connection unfit. */
void h1_eof(struct h1 *h);

/* Abandon the exchange (fail fast, timeout, client gone): no callback
 * follows, and the connection is unfit. */
void h1_cancel(struct h1 *h);

/* May the connection carry another request now? */
bool h1_reusable(const struct h1 *h);

#endif
