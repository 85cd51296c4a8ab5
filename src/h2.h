/* h2: the HTTP/2 codec of one upstream connection, on libnghttp2 (1.52,
 * the ssize_t API).  One client session per connection carrying many
 * streams; each stream reports its head, body, end or failure to its own
 * (ops, ctx) pair.  A codec only turns bytes into events and events into
 * bytes: no sockets, no timers, no retries.  Output waits inside the
 * session until the owner asks for it (h2_pending_output) from ONE
 * deferred event, after want_write told it there is some: nghttp2 must
 * never be driven from inside its own callbacks. */
#ifndef FANOUTD_H2_H
#define FANOUTD_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exchange.h"
#include "request.h"

struct evbuffer;

/* Copied by h2_new, except defaults (borrowed: must outlive the codec). */
struct h2_settings {
	size_t max_streams;        /* h2_max_streams: at once, whatever the
	                            * server allows (0: 100) */
	size_t max_body;           /* max_response_body: the stream window
	                            * (and connection window x max_streams),
	                            * within 65,535 .. 2^31-1 */
	size_t max_header_list;    /* bytes of one answer's header blocks, 32
	                            * per field included (RFC 9113 6.5.2); 1xx
	                            * and trailers count; sent as
	                            * SETTINGS_MAX_HEADER_LIST_SIZE (0: 64 KiB) */
	size_t max_headers;        /* fields of one answer (0: 1000) */
	/* sent by every request without a header of that name (user-agent,
	 * accept, accept-encoding); names lower-case */
	const struct request_header *defaults;
	size_t ndefaults;
};

/* The connection's events; want_write is required, the others may be NULL. */
struct h2_ops {
	/* the session has frames to send: call h2_pending_output soon, from a
	 * deferred event (never from inside an h2 callback) */
	void (*want_write)(void *ctx);
	/* the server's SETTINGS arrived: h2_streams_free may have changed
	 * (a new connection carries one stream until the first) */
	void (*settings)(void *ctx);
	/* GOAWAY: no new streams; the streams above last_stream_id have failed
	 * as unprocessed just before this call returns */
	void (*goaway)(void *ctx, int32_t last_stream_id, uint32_t error_code);
};

/* Why a stream ended without a whole answer.  why.message is borrowed for
 * the call.  why.kind: PROTOCOL (malformed, reset by the upstream, an
 * HTTP/2 connection error), REFUSED (the head or body callback said no:
 * the stream was reset with CANCEL), CLOSED (h2_eof), or what h2_fail_all
 * was given. */
struct h2_failure {
	struct exchange_failure why;
	bool unprocessed;      /* the upstream never processed the request
	                        * (REFUSED_STREAM or above GOAWAY's
	                        * last_stream_id, before any of the answer; or
	                        * never sent): it may go again on another
	                        * connection whatever its method (kind PROTOCOL,
	                        * nothing_received true) */
	uint32_t error_code;   /* the RST_STREAM or GOAWAY code; 0: none */
};

/* One stream's events, in order: head (once), body (zero or more), then
 * exactly one of end or fail — or just fail.  head and body are shaped as
 * exchange_ops'.  Callbacks may h2_cancel any stream and h2_submit new
 * ones; they must not feed, flush or free the codec.  Data is borrowed
 * for the call. */
struct h2_stream_ops {
	/* the final answer (1xx skipped): names lower-case as received, values
	 * of repeated names joined with ", ", reason empty; -1 refuses it */
	int (*head)(void *ctx, const struct exchange_head *head);
	/* len > 0 bytes of the body; -1 refuses more */
	int (*body)(void *ctx, const char *data, size_t len);
	/* the answer is whole (trailers ignored); reusable is always true:
	 * the connection goes on */
	void (*end)(void *ctx, bool reusable);
	void (*fail)(void *ctx, const struct h2_failure *why);
};

struct h2;

/* A client session for a new connection: the preface and SETTINGS (push
 * off, the header list cap, the windows) are queued; want_write is not
 * called for them, nor for requests submitted before the first flush: the
 * owner flushes once connected.  ops is borrowed. */
struct h2 *h2_new(const struct h2_ops *ops, void *ctx, const struct h2_settings *s);

/* Free the codec.  No callback; streams still attached hear nothing (call
 * h2_fail_all first if they must). */
void h2_free(struct h2 *h);

/* Open a stream: :method, :scheme ("http" or "https"), :authority (the
 * request's own Host, else req->authority), :path (req->target), the
 * defaults the request does not override, the request's headers
 * lower-cased less the connection-specific ones (connection, keep-alive,
 * proxy-connection, transfer-encoding, upgrade, host, te but "trailers",
 * content-length), content-length for a body and for POST, PUT and PATCH,
 * then the body (copied).  Returns the stream id, or -1 when no stream
 * can be opened (h2_can_submit false). */
int32_t h2_submit(struct h2 *h, const struct exchange_request *req, const char *scheme,
                  const struct h2_stream_ops *ops, void *ctx)
	__attribute__((warn_unused_result));

/* Abandon a stream (fail fast, timeout, client gone): RST_STREAM CANCEL,
 * no callback for it any more; unknown or finished ids are ignored. */
void h2_cancel(struct h2 *h, int32_t stream_id);

/* Streams that may be opened now: min(the server's
 * MAX_CONCURRENT_STREAMS — 1 until its first SETTINGS — and max_streams)
 * less the streams attached; 0 after GOAWAY or a failure.  (A stream just
 * ended or cancelled may hold its place in nghttp2 until the next flush:
 * nghttp2 then holds a new request back, so the server's cap holds.) */
size_t h2_streams_free(const struct h2 *h);
bool h2_can_submit(const struct h2 *h);

/* Streams attached (submitted, not yet ended, failed or cancelled). */
size_t h2_streams_attached(const struct h2 *h);

/* Parse bytes from the connection; stream and connection callbacks run
 * from here.  Returns true while the connection can go on; false once it
 * cannot (an HTTP/2 connection error: every stream has failed PROTOCOL,
 * and want_write asks for the GOAWAY to go out before the close) — and
 * ever after.  Never from inside an h2 callback. */
bool h2_feed(struct h2 *h, const char *data, size_t len) __attribute__((warn_unused_result));

/* As h2_feed over every byte of buf, draining it. */
bool h2_feed_buffer(struct h2 *h, struct evbuffer *buf) __attribute__((warn_unused_result));

/* Move the session's frames into out, until out holds at least limit
 * bytes (0: no limit) or none are left.  Returns 1 when some are still
 * left (call again once out has drained), 0 when none, -1 on a session
 * failure (every stream has failed).  Stream callbacks may run here (a
 * request that can no longer be sent fails unprocessed; a connection
 * error found after a GOAWAY fails the rest).  Never from inside an h2
 * callback. */
int h2_pending_output(struct h2 *h, struct evbuffer *out, size_t limit)
	__attribute__((warn_unused_result));

/* The connection reached EOF: every attached stream fails CLOSED. */
void h2_eof(struct h2 *h);

/* The connection failed (reset, TLS): every attached stream fails once
 * with this kind, errno and message; the codec is dead. */
void h2_fail_all(struct h2 *h, enum exchange_fail_kind kind, int err, const char *message);

/* Nothing more will happen on this connection (after GOAWAY and its last
 * stream, a connection error, EOF): close it once the output is out. */
bool h2_finished(const struct h2 *h);

#endif
