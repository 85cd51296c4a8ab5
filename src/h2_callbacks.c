/* h2_callbacks: nghttp2's callbacks for one h2 client session — what the
 * frames received (and our GOAWAY sent) mean for each stream: the answer's
 * head once its final HEADERS is in, body per DATA chunk, end on
 * END_STREAM, fail on RST_STREAM, GOAWAY or a session error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <nghttp2/nghttp2.h>

#include "h2_head.h"
#include "h2_internal.h"

/* --- the head -------------------------------------------------------------------- */

/* One field against the caps; false: the stream has been reset. */
static bool within_caps(struct h2 *h, struct h2_stream *s, size_t nlen, size_t vlen)
{
	char msg[96];

	if (h2_head_count(&s->head, nlen, vlen, s->state == STREAM_WAITING,
	                  h->set.max_header_list, h->set.max_headers, msg, sizeof msg))
		return true;
	h2_reset_stream(h, s, EXCHANGE_FAIL_PROTOCOL, msg);
	return false;
}

static void deliver_head(struct h2 *h, struct h2_stream *s, bool end_stream)
{
	struct exchange_head head;

	h2_head_build(&s->head, &h->joiner, end_stream || s->head_request, &head);
	h2_set_stream_state(h, s, STREAM_BODY);
	if (s->ops->head(s->ctx, &head) < 0 && s->state == STREAM_BODY)
		h2_reset_stream(h, s, EXCHANGE_FAIL_REFUSED, "answer refused: over a size cap");
	if (s->state == STREAM_BODY)
		h2_head_free(&s->head);   /* trailers are only counted */
}

/* A HEADERS frame is in whole. */
static void headers_done(struct h2 *h, struct h2_stream *s, bool end_stream)
{
	if (s->state == STREAM_WAITING) {
		if (s->head.status < 200) {   /* interim: dropped whole */
			h2_head_start(&s->head);
			return;
		}
		deliver_head(h, s, end_stream);
	}
	if (end_stream && s->state == STREAM_BODY)
		h2_stream_end(h, s);
}

/* --- nghttp2's callbacks ------------------------------------------------------------ */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
	struct h2 *h = ud;
	struct h2_stream *s = h2_attached(h, frame->hd.stream_id);

	(void)session;
	if (s != NULL && frame->hd.type == NGHTTP2_HEADERS) {
		s->got_frame = true;
		if (s->state == STREAM_WAITING)
			h2_head_start(&s->head);
	}
	return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct h2 *h = ud;
	struct h2_stream *s = h2_attached(h, frame->hd.stream_id);

	(void)session;
	(void)flags;
	if (s == NULL || !within_caps(h, s, nlen, vlen) || s->state != STREAM_WAITING)
		return 0;   /* gone, over a cap, or trailers */
	h2_head_add(&s->head, name, nlen, value, vlen);
	return 0;
}

static void peer_reset(struct h2 *h, struct h2_stream *s, uint32_t code)
{
	char msg[80];

	/* "never processed" — unless a part of the answer came first */
	if (code == NGHTTP2_REFUSED_STREAM && !s->got_frame) {
		h2_stream_fail(h, s, EXCHANGE_FAIL_PROTOCOL, 0,
		            "stream refused by upstream (REFUSED_STREAM)", true, code);
		return;
	}
	if (strcmp(nghttp2_http2_strerror(code), "unknown") == 0)
		snprintf(msg, sizeof msg, "stream reset by upstream: error 0x%x", (unsigned)code);
	else
		snprintf(msg, sizeof msg, "stream reset by upstream: %s", nghttp2_http2_strerror(code));
	h2_stream_fail(h, s, EXCHANGE_FAIL_PROTOCOL, 0, msg, false, code);
}

/* GOAWAY: no new streams; those above last_stream_id were never processed
 * (a server that had begun to answer one is not believed). */
static void got_goaway(struct h2 *h, int32_t last, uint32_t code)
{
	char msg[120], mid[120];
	struct h2_stream *s;

	if (h->state != H2_DEAD)
		h2_set_state(h, H2_GOAWAY);
	if (h->ops->goaway != NULL)
		h->ops->goaway(h->ctx, last, code);
	snprintf(msg, sizeof msg, "upstream went away (GOAWAY %s, last stream %d) before "
	         "processing the request", nghttp2_http2_strerror(code), (int)last);
	snprintf(mid, sizeof mid, "upstream went away (GOAWAY %s, last stream %d) in the "
	         "middle of the answer", nghttp2_http2_strerror(code), (int)last);
	TAILQ_FOREACH(s, &h->streams, link)
		if (s->state != STREAM_DONE && s->id > last)
			h2_stream_fail(h, s, EXCHANGE_FAIL_PROTOCOL, 0, s->got_frame ? mid : msg,
			            !s->got_frame, code);
}

static void got_settings(struct h2 *h)
{
	if (h->state == H2_STARTING)
		h2_set_state(h, H2_OPEN);
	if (h->ops->settings != NULL)
		h->ops->settings(h->ctx);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
	struct h2 *h = ud;
	struct h2_stream *s;

	(void)session;
	switch (frame->hd.type) {
	case NGHTTP2_SETTINGS:
		if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
			got_settings(h);
		return 0;
	case NGHTTP2_GOAWAY:
		got_goaway(h, frame->goaway.last_stream_id, frame->goaway.error_code);
		return 0;
	case NGHTTP2_RST_STREAM:
		if ((s = h2_attached(h, frame->hd.stream_id)) != NULL)
			peer_reset(h, s, frame->rst_stream.error_code);
		return 0;
	case NGHTTP2_HEADERS:
		if ((s = h2_attached(h, frame->hd.stream_id)) != NULL)
			headers_done(h, s, (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
		return 0;
	case NGHTTP2_DATA:
		s = h2_attached(h, frame->hd.stream_id);
		if (s != NULL && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
		    s->state == STREAM_BODY)
			h2_stream_end(h, s);
		return 0;
	default:
		return 0;
	}
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *ud)
{
	struct h2 *h = ud;
	struct h2_stream *s = h2_attached(h, id);

	(void)session;
	(void)flags;
	if (s == NULL || len == 0 || s->state != STREAM_BODY)
		return 0;
	s->got_frame = true;
	if (s->ops->body(s->ctx, (const char *)data, len) < 0 && s->state == STREAM_BODY)
		h2_reset_stream(h, s, EXCHANGE_FAIL_REFUSED, "answer body refused: over a size cap");
	return 0;
}

/* nghttp2 is done with the stream: tell its owner, if still listening,
 * why it closed before its end, then drop the record. */
static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t code, void *ud)
{
	struct h2 *h = ud;
	struct h2_stream *s = h2_find(h, id);
	char msg[160];

	(void)session;
	if (s == NULL)
		return 0;
	if (s->state != STREAM_DONE && code == NGHTTP2_REFUSED_STREAM && !s->got_frame) {
		/* a request nghttp2 could not send (after GOAWAY) */
		h2_stream_fail(h, s, EXCHANGE_FAIL_PROTOCOL, 0,
		            "request not processed by upstream (REFUSED_STREAM)", true, code);
	} else if (s->state != STREAM_DONE) {
		/* not the server's RST_STREAM (on_frame_recv saw to those):
		 * nghttp2 reset it, finding the answer malformed */
		if (s->reason[0] != '\0')
			snprintf(msg, sizeof msg, "malformed answer: %s", s->reason);
		else if (code != NGHTTP2_NO_ERROR)
			snprintf(msg, sizeof msg, "malformed answer: HTTP/2 stream error (%s)",
			         nghttp2_http2_strerror(code));
		else
			snprintf(msg, sizeof msg, "stream closed before the end of the answer");
		h2_stream_fail(h, s, EXCHANGE_FAIL_PROTOCOL, 0, msg, false, code);
	}
	h2_release(h, s);
	return 0;
}

static void note_reason(struct h2 *h, int lib_error_code)
{
	if (lib_error_code == NGHTTP2_ERR_SETTINGS_EXPECTED)
		snprintf(h->reason, sizeof h->reason,
		         "the upstream does not speak HTTP/2 (no SETTINGS frame first)");
	else
		snprintf(h->reason, sizeof h->reason, "%s", nghttp2_strerror(lib_error_code));
}

static int on_invalid_frame(nghttp2_session *session, const nghttp2_frame *frame,
                            int lib_error_code, void *ud)
{
	struct h2 *h = ud;
	struct h2_stream *s = h2_find(h, frame->hd.stream_id);

	(void)session;
	note_reason(h, lib_error_code);
	if (s != NULL)
		snprintf(s->reason, sizeof s->reason, "%s", nghttp2_strerror(lib_error_code));
	return 0;
}

static int on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                    void *ud)
{
	(void)session;
	(void)msg;   /* may quote the upstream's bytes: the code says enough */
	(void)len;
	note_reason(ud, lib_error_code);
	return 0;
}

/* Our GOAWAY goes out only when nghttp2 ends the session on an error. */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
	struct h2 *h = ud;
	char msg[200];

	(void)session;
	if (frame->hd.type != NGHTTP2_GOAWAY)
		return 0;
	snprintf(msg, sizeof msg, "malformed answer: HTTP/2 connection error: %s",
	         h->reason[0] ? h->reason : nghttp2_http2_strerror(frame->goaway.error_code));
	h2_die(h, EXCHANGE_FAIL_PROTOCOL, 0, msg);
	return 0;
}

nghttp2_session_callbacks *h2_callbacks_new(void)
{
	nghttp2_session_callbacks *cb;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		abort();
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
	nghttp2_session_callbacks_set_error_callback2(cb, on_error);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	return cb;
}
