/* h2: HTTP/2 streams over one nghttp2 client session (see h2.h for the
 * contract): the session and its state, the streams' records and their
 * lifecycle, submit/cancel, and bytes in and out.
 *
 *   in:  bytes -> nghttp2_session_mem_recv -> frame callbacks (h2_callbacks.c)
 *        -> per-stream events
 *   out: submit/cancel queue frames in the session -> want_write -> the
 *        owner's deferred event -> h2_pending_output -> nghttp2_session_mem_send
 *
 * Every stream submitted has a record in h->streams until nghttp2 closes
 * it (on_stream_close) or the codec is freed: nghttp2_session_del frees
 * streams without telling anyone, so failing the attached streams on a
 * lost connection walks this list, never nghttp2's.  A request's header
 * list is h2_request.c's, an answer's head h2_head.c's. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <nghttp2/nghttp2.h>

#include "fields.h"
#include "h2.h"
#include "h2_head.h"
#include "h2_internal.h"
#include "h2_request.h"
#include "units.h"
#include "xalloc.h"

#define WINDOW_MIN 65535u
#define WINDOW_MAX 2147483647u
#define DEFAULT_MAX_STREAMS 100
#define DEFAULT_HEADER_LIST (64 * 1024)
#define DEFAULT_MAX_HEADERS 1000

/* --- state ---------------------------------------------------------------- */

#define BIT(s) (1u << (s))
static const unsigned h2_allowed[] = {
	[H2_STARTING] = BIT(H2_OPEN) | BIT(H2_GOAWAY) | BIT(H2_DEAD),
	[H2_OPEN] = BIT(H2_OPEN) | BIT(H2_GOAWAY) | BIT(H2_DEAD),
	[H2_GOAWAY] = BIT(H2_GOAWAY) | BIT(H2_DEAD),
	[H2_DEAD] = BIT(H2_DEAD),
};
static const unsigned stream_allowed[] = {
	[STREAM_WAITING] = BIT(STREAM_BODY) | BIT(STREAM_DONE),
	[STREAM_BODY] = BIT(STREAM_DONE),
	[STREAM_DONE] = 0,
};

/* The one place the codec's state changes; a transition not in the table
 * is a bug here: abort loudly. */
void h2_set_state(struct h2 *h, enum h2_state to)
{
	if (!(h2_allowed[h->state] & BIT(to))) {
		fprintf(stderr, "h2: no transition from state %d to %d\n", h->state, to);
		abort();
	}
	h->state = to;
}

/* ... and a stream's; DONE also detaches it from its owner. */
void h2_set_stream_state(struct h2 *h, struct h2_stream *s, enum h2_stream_state to)
{
	if (!(stream_allowed[s->state] & BIT(to))) {
		fprintf(stderr, "h2: stream %d: no transition from %d to %d\n", (int)s->id,
		        s->state, to);
		abort();
	}
	s->state = to;
	if (to == STREAM_DONE)
		h->nattached--;
}

static bool accepting(const struct h2 *h)
{
	return h->state == H2_STARTING || h->state == H2_OPEN;
}

/* --- streams ---------------------------------------------------------------- */

struct h2_stream *h2_find(struct h2 *h, int32_t id)
{
	struct h2_stream *s;

	if (id <= 0)
		return NULL;
	s = nghttp2_session_get_stream_user_data(h->session, id);
	if (s != NULL)
		return s;
	/* not opened in nghttp2 yet: its HEADERS still queued */
	TAILQ_FOREACH(s, &h->streams, link)
		if (s->id == id)
			return s;
	return NULL;
}

/* The stream's record if its owner still listens. */
struct h2_stream *h2_attached(struct h2 *h, int32_t id)
{
	struct h2_stream *s = h2_find(h, id);

	return s != NULL && s->state != STREAM_DONE ? s : NULL;
}

static void free_stream(struct h2_stream *s)
{
	h2_head_free(&s->head);
	free(s->body);
	free(s);
}

void h2_release(struct h2 *h, struct h2_stream *s)
{
	if (s->state != STREAM_DONE)
		h2_set_stream_state(h, s, STREAM_DONE);
	TAILQ_REMOVE(&h->streams, s, link);
	free_stream(s);
}

void h2_stream_end(struct h2 *h, struct h2_stream *s)
{
	h2_set_stream_state(h, s, STREAM_DONE);
	h2_head_free(&s->head);
	s->ops->end(s->ctx, true);
}

void h2_stream_fail(struct h2 *h, struct h2_stream *s, enum exchange_fail_kind kind, int err,
                        const char *message, bool unprocessed, uint32_t code)
{
	struct h2_failure why = {
		.why = { .kind = kind, .err = err, .nothing_received = unprocessed || !s->got_frame,
		         .message = message },
		.unprocessed = unprocessed,
		.error_code = code,
	};

	h2_set_stream_state(h, s, STREAM_DONE);
	h2_head_free(&s->head);
	s->ops->fail(s->ctx, &why);
}

/* Fail the stream and tell the server to stop (RST_STREAM CANCEL). */
void h2_reset_stream(struct h2 *h, struct h2_stream *s, enum exchange_fail_kind kind,
                         const char *message)
{
	(void)nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
	h2_stream_fail(h, s, kind, 0, message, false, 0);
}

/* Fail every attached stream once.  Callbacks only detach records (a
 * record is freed by nghttp2's close or h2_free), so the walk is safe. */
static void fail_every(struct h2 *h, enum exchange_fail_kind kind, int err, const char *message)
{
	struct h2_stream *s;

	TAILQ_FOREACH(s, &h->streams, link)
		if (s->state != STREAM_DONE)
			h2_stream_fail(h, s, kind, err, message, false, 0);
}

/* The connection cannot go on: dead first, so no callback opens a stream. */
void h2_die(struct h2 *h, enum exchange_fail_kind kind, int err, const char *message)
{
	if (h->state == H2_DEAD)
		return;
	h2_set_state(h, H2_DEAD);
	fail_every(h, kind, err, message);
}

/* --- the session -------------------------------------------------------------------- */

/* nghttp2 allocates through xalloc: one out-of-memory policy. */
static void *mem_malloc(size_t n, void *ud)
{
	(void)ud;
	return xmalloc(n ? n : 1);
}

static void mem_free(void *p, void *ud)
{
	(void)ud;
	free(p);
}

static void *mem_calloc(size_t n, size_t size, void *ud)
{
	(void)ud;
	return xcalloc(n ? n : 1, size ? size : 1);
}

static void *mem_realloc(void *p, size_t n, void *ud)
{
	(void)ud;
	return xrealloc(p, n ? n : 1);
}

static nghttp2_mem xmem = {   /* (copied by nghttp2) */
	.malloc = mem_malloc, .free = mem_free, .calloc = mem_calloc, .realloc = mem_realloc,
};

static uint32_t clamp_window(size_t v)
{
	if (v < WINDOW_MIN)
		return WINDOW_MIN;
	return v > WINDOW_MAX ? WINDOW_MAX : (uint32_t)v;
}

static void apply_defaults(struct h2_settings *s)
{
	if (s->max_streams == 0)
		s->max_streams = DEFAULT_MAX_STREAMS;
	if (s->max_header_list == 0)
		s->max_header_list = DEFAULT_HEADER_LIST;
	if (s->max_headers == 0)
		s->max_headers = DEFAULT_MAX_HEADERS;
}

/* The preface goes by itself; SETTINGS and the connection window. */
static void queue_settings(struct h2 *h)
{
	uint32_t window = clamp_window(h->set.max_body);
	uint32_t conn = clamp_window((size_t)window * h->set.max_streams);
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
		  h->set.max_header_list > WINDOW_MAX ? WINDOW_MAX : (uint32_t)h->set.max_header_list },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window },
	};

	if (nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
	    nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0,
	                                          (int32_t)conn) != 0)
		abort();
}

struct h2 *h2_new(const struct h2_ops *ops, void *ctx, const struct h2_settings *s)
{
	struct h2 *h = xcalloc(1, sizeof *h);
	nghttp2_session_callbacks *cb = h2_callbacks_new();
	nghttp2_option *opt;

	h->ops = ops;
	h->ctx = ctx;
	h->set = *s;
	apply_defaults(&h->set);
	h->state = H2_STARTING;
	TAILQ_INIT(&h->streams);
	if (nghttp2_option_new(&opt) != 0)
		abort();
	/* one stream until the server's SETTINGS say how many */
	nghttp2_option_set_peer_max_concurrent_streams(opt, 1);
	if (nghttp2_session_client_new3(&h->session, cb, h, opt, &xmem) != 0)
		abort();
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	queue_settings(h);
	h->write_wanted = true;   /* the owner flushes once connected */
	return h;
}

void h2_free(struct h2 *h)
{
	struct h2_stream *s;

	if (h == NULL)
		return;
	assert(!h->busy);
	nghttp2_session_del(h->session);   /* no callbacks */
	while ((s = TAILQ_FIRST(&h->streams)) != NULL) {
		TAILQ_REMOVE(&h->streams, s, link);
		free_stream(s);
	}
	fields_joiner_free(&h->joiner);
	free(h);
}

/* Tell the owner once that frames wait (from public calls only). */
static void hint_write(struct h2 *h)
{
	if (h->write_wanted || !nghttp2_session_want_write(h->session))
		return;
	h->write_wanted = true;
	h->ops->want_write(h->ctx);
}

/* --- requests ------------------------------------------------------------------------- */

static ssize_t read_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *ud)
{
	struct h2_stream *s = source->ptr;
	size_t n = s->body_len - s->body_off;

	(void)session;
	(void)id;
	(void)ud;
	if (n > length)
		n = length;
	memcpy(buf, s->body + s->body_off, n);
	s->body_off += n;
	if (s->body_off == s->body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static struct h2_stream *new_stream(const struct exchange_request *req,
                                 const struct h2_stream_ops *ops, void *ctx)
{
	struct h2_stream *s = xcalloc(1, sizeof *s);

	s->ops = ops;
	s->ctx = ctx;
	s->state = STREAM_WAITING;
	s->head_request = req->method == REQUEST_METHOD_HEAD;
	if (req->body != NULL && req->body_len > 0) {
		s->body = xmalloc(req->body_len);
		memcpy(s->body, req->body, req->body_len);
		s->body_len = req->body_len;
	}
	return s;
}

/* Hand the request to nghttp2 (which copies the fields). */
static int32_t submit(struct h2 *h, struct h2_stream *s, const struct exchange_request *req,
                      const char *scheme)
{
	nghttp2_data_provider body = { .source.ptr = s, .read_callback = read_body };
	struct h2_request_fields f;
	int32_t id;

	h2_request_fields(&f, req, scheme, h->set.defaults, h->set.ndefaults);
	id = nghttp2_submit_request(h->session, NULL, f.nv, f.n, s->body ? &body : NULL, s);
	h2_request_fields_free(&f);
	return id;
}

int32_t h2_submit(struct h2 *h, const struct exchange_request *req, const char *scheme,
                  const struct h2_stream_ops *ops, void *ctx)
{
	struct h2_stream *s;
	int32_t id;

	if (!h2_can_submit(h))
		return -1;
	s = new_stream(req, ops, ctx);
	id = submit(h, s, req, scheme);
	if (id < 0) {
		free_stream(s);
		return -1;
	}
	s->id = id;
	TAILQ_INSERT_TAIL(&h->streams, s, link);
	h->nattached++;
	if (!h->busy)
		hint_write(h);
	return id;
}

void h2_cancel(struct h2 *h, int32_t stream_id)
{
	struct h2_stream *s = h2_attached(h, stream_id);

	if (s == NULL)
		return;
	h2_set_stream_state(h, s, STREAM_DONE);
	h2_head_free(&s->head);
	(void)nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
	if (!h->busy)
		hint_write(h);
}

size_t h2_streams_free(const struct h2 *h)
{
	uint32_t remote;
	size_t cap;

	if (!accepting(h))
		return 0;
	remote = nghttp2_session_get_remote_settings(h->session,
	                                             NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	cap = remote < h->set.max_streams ? remote : h->set.max_streams;
	/* a stream ended or cancelled may still hold a place in nghttp2 a
	 * moment (its RST_STREAM or the rest of its body not yet out): nghttp2
	 * then holds a new request's HEADERS back, so the server's cap holds */
	return cap > h->nattached ? cap - h->nattached : 0;
}

bool h2_can_submit(const struct h2 *h)
{
	return h2_streams_free(h) > 0 && nghttp2_session_check_request_allowed(h->session);
}

size_t h2_streams_attached(const struct h2 *h)
{
	return h->nattached;
}

/* --- input and output -------------------------------------------------------------------- */

/* After input: did nghttp2 end the session on an error of the server's?
 * (It then ignores all input and queues GOAWAY; our streams never close.) */
static bool session_ended(struct h2 *h)
{
	return accepting(h) && !nghttp2_session_check_request_allowed(h->session) &&
	       nghttp2_session_get_next_stream_id(h->session) <= WINDOW_MAX;
}

static void fail_session(struct h2 *h, const char *what, int rv)
{
	char msg[200];

	if (rv == 0)
		snprintf(msg, sizeof msg, "malformed answer: HTTP/2 connection error: %s",
		         h->reason[0] ? h->reason : "protocol error");
	else
		snprintf(msg, sizeof msg, "HTTP/2 session failed %s: %s", what, nghttp2_strerror(rv));
	h2_die(h, EXCHANGE_FAIL_PROTOCOL, 0, msg);
}

bool h2_feed(struct h2 *h, const char *data, size_t len)
{
	ssize_t rv;

	assert(!h->busy);
	if (h->state == H2_DEAD)
		return false;
	h->busy = true;
	rv = nghttp2_session_mem_recv(h->session, (const uint8_t *)data, len);
	h->busy = false;
	if (rv < 0)
		fail_session(h, "reading", (int)rv);
	else if (session_ended(h))
		fail_session(h, "reading", 0);
	hint_write(h);
	return h->state != H2_DEAD;
}

bool h2_feed_buffer(struct h2 *h, struct evbuffer *buf)
{
	struct evbuffer_iovec v;
	bool more = true;

	while (more && evbuffer_peek(buf, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		more = h2_feed(h, v.iov_base, v.iov_len);
		evbuffer_drain(buf, v.iov_len);
	}
	evbuffer_drain(buf, evbuffer_get_length(buf));   /* after a failure: ignored */
	return more;
}

int h2_pending_output(struct h2 *h, struct evbuffer *out, size_t limit)
{
	const uint8_t *p;
	ssize_t n;

	assert(!h->busy);
	h->write_wanted = false;
	for (;;) {
		if (limit > 0 && evbuffer_get_length(out) >= limit)
			return nghttp2_session_want_write(h->session) ? 1 : 0;
		h->busy = true;
		n = nghttp2_session_mem_send(h->session, &p);
		h->busy = false;
		if (n < 0) {
			fail_session(h, "writing", (int)n);
			return -1;
		}
		if (n == 0)
			return 0;
		if (evbuffer_add(out, p, (size_t)n) != 0)
			abort();
	}
}

void h2_eof(struct h2 *h)
{
	assert(!h->busy);
	h2_die(h, EXCHANGE_FAIL_CLOSED, 0, "upstream closed the connection before the end of the answer");
}

void h2_fail_all(struct h2 *h, enum exchange_fail_kind kind, int err, const char *message)
{
	assert(!h->busy);
	h2_die(h, kind, err, message);
}

bool h2_finished(const struct h2 *h)
{
	return h->state == H2_DEAD || (!nghttp2_session_want_read(h->session) &&
	                               !nghttp2_session_want_write(h->session));
}
