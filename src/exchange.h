/* exchange: the seam between a fetch and a codec.  A fetch starts one
 * exchange (a request and its answer) on a pooled connection and hears
 * back through struct exchange_ops; it can cancel it, after which nothing
 * calls back.  Protocol-neutral: the HTTP/1.1 codec (h1.c) and the
 * HTTP/2 one (h2.c) fill these in, through pool.c.  Types only. */
#ifndef FANOUTD_EXCHANGE_H
#define FANOUTD_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "request.h"

/* What to send; everything borrowed until exchange_ops.ready has been
 * called or the exchange has ended, whichever is first. */
struct exchange_request {
	enum request_method method;
	const char *authority;                 /* the Host: "example.com:8080" */
	const char *target;                    /* origin-form: "/path?query" */
	const struct request_header *headers;  /* the request's own, which
	                                        * replace the upstream's defaults
	                                        * (Host, User-Agent, Accept,
	                                        * Accept-Encoding) of that name */
	size_t nheaders;
	const char *body;                      /* NULL: none */
	size_t body_len;
};

/* One header of the final answer: the name lower-cased, the values of
 * every line with that name joined with ", " in the order received.  No
 * white space around the value, never a CR or LF. */
struct exchange_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* The final answer's head (interim 1xx answers never reach here);
 * everything borrowed for the length of the callback. */
struct exchange_head {
	int status;                         /* 200..999 */
	const char *reason;                 /* may be empty, not NUL-terminated */
	size_t reason_len;
	const struct exchange_field *fields;   /* in order of first appearance */
	size_t nfields;
	int64_t content_length;             /* body bytes announced; 0: no body
	                                     * (HEAD, 204, 304, Content-Length:
	                                     * 0); -1: not known in advance */
};

/* Why an exchange ended without a whole answer. */
enum exchange_fail_kind {
	EXCHANGE_FAIL_CONNECT,    /* the connection could not be made */
	EXCHANGE_FAIL_TLS,        /* the TLS handshake (or TLS later) failed */
	EXCHANGE_FAIL_RESET,      /* an open connection failed (err says why) */
	EXCHANGE_FAIL_CLOSED,     /* the upstream closed before the end */
	EXCHANGE_FAIL_PROTOCOL,   /* a malformed answer, or over a head cap */
	EXCHANGE_FAIL_REFUSED,    /* the head or body callback refused more */
};

struct exchange_failure {
	enum exchange_fail_kind kind;
	int err;                   /* the real errno, 0 when there is none */
	bool nothing_received;     /* not one byte of the answer had arrived:
	                            * on a reused connection, the upstream had
	                            * closed it as we sent (retryable) */
	bool unprocessed;          /* HTTP/2: the upstream says it never
	                            * processed the request (REFUSED_STREAM,
	                            * above GOAWAY's last stream): it may go
	                            * again whatever its method */
	const char *message;       /* the codec's or the connection's words,
	                            * borrowed for the callback */
};

/* The events of one exchange, in order: ready (once the connection is
 * open and the request is going out), head (once), body (zero or more),
 * then exactly one of end or fail — or fail at any point.  Callbacks may
 * end the exchange (pool_release); data is borrowed for the call. */
struct exchange_ops {
	/* connected (and TLS done): protocol is "http/1.1" or "h2" */
	void (*ready)(void *ctx, const char *protocol);
	/* return -1 to refuse the answer (a size cap): the exchange then ends
	 * in fail (EXCHANGE_FAIL_REFUSED) unless the callback ended it */
	int (*head)(void *ctx, const struct exchange_head *head);
	/* len > 0 bytes of the body as sent (transfer coding undone);
	 * -1 refuses more, as head */
	int (*body)(void *ctx, const char *data, size_t len);
	/* the answer is whole; reusable: the connection may carry another */
	void (*end)(void *ctx, bool reusable);
	void (*fail)(void *ctx, const struct exchange_failure *why);
};

#endif
