/* h2_internal: what h2.c (the session, its streams' records and their
 * lifecycle, the public calls) and h2_callbacks.c (nghttp2's callbacks:
 * frames in -> stream events) share.  Included by nothing else. */
#ifndef FANOUTD_H2_INTERNAL_H
#define FANOUTD_H2_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <nghttp2/nghttp2.h>

#include "exchange.h"
#include "fields.h"
#include "h2.h"
#include "h2_head.h"

enum h2_state {
	H2_STARTING,   /* the server's first SETTINGS not in: one stream at most */
	H2_OPEN,       /* streams up to min(server's cap, max_streams) */
	H2_GOAWAY,     /* GOAWAY received: open streams finish, no new ones */
	H2_DEAD,       /* a connection error, EOF or h2_fail_all (terminal) */
};

enum h2_stream_state {
	STREAM_WAITING,   /* submitted; no final head yet (1xx skipped) */
	STREAM_BODY,      /* head delivered; body until END_STREAM */
	STREAM_DONE,      /* ended, failed or cancelled: the owner hears no
	                   * more; the record waits for nghttp2 to close it */
};

struct h2_stream {
	TAILQ_ENTRY(h2_stream) link;
	int32_t id;
	enum h2_stream_state state;
	const struct h2_stream_ops *ops;   /* borrowed */
	void *ctx;
	bool head_request;                 /* the answer has no body */
	bool got_frame;                    /* a frame of the answer came */
	char *body;                        /* the request body (owned) */
	size_t body_len, body_off;
	struct h2_head head;               /* the answer's head being read */
	char reason[96];                   /* why nghttp2 found a frame bad */
};

struct h2 {
	nghttp2_session *session;          /* owned */
	enum h2_state state;
	const struct h2_ops *ops;          /* borrowed */
	void *ctx;
	struct h2_settings set;
	TAILQ_HEAD(, h2_stream) streams;   /* every record (owned) */
	size_t nattached;                  /* records not STREAM_DONE */
	bool write_wanted;                 /* want_write told, not yet flushed */
	bool busy;                         /* inside nghttp2 (no re-entry) */
	char reason[128];                  /* the last connection error told */
	struct fields_joiner joiner;       /* joining a head (owned, reused) */
};

/* h2.c's, for h2_callbacks.c. */

/* The one place the codec's state changes (aborts on a bad transition). */
void h2_set_state(struct h2 *h, enum h2_state to);
/* ... and a stream's; DONE also detaches it from its owner. */
void h2_set_stream_state(struct h2 *h, struct h2_stream *s, enum h2_stream_state to);
/* A stream's record, or NULL. */
struct h2_stream *h2_find(struct h2 *h, int32_t id);
/* The stream's record if its owner still listens. */
struct h2_stream *h2_attached(struct h2 *h, int32_t id);
/* nghttp2 closed the stream: detach it if need be, free its record. */
void h2_release(struct h2 *h, struct h2_stream *s);
/* The answer is whole / the stream failed: the owner hears it, once. */
void h2_stream_end(struct h2 *h, struct h2_stream *s);
void h2_stream_fail(struct h2 *h, struct h2_stream *s, enum exchange_fail_kind kind, int err,
                    const char *message, bool unprocessed, uint32_t code);
/* Fail the stream and tell the server to stop (RST_STREAM CANCEL). */
void h2_reset_stream(struct h2 *h, struct h2_stream *s, enum exchange_fail_kind kind,
                     const char *message);
/* The connection cannot go on: every attached stream fails. */
void h2_die(struct h2 *h, enum exchange_fail_kind kind, int err, const char *message);

/* h2_callbacks.c's, for h2.c: the session's callbacks (the caller frees
 * them with nghttp2_session_callbacks_del). */
nghttp2_session_callbacks *h2_callbacks_new(void);

#endif
