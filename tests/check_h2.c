/* check_h2: unit tests of the HTTP/2 codec (src/h2.c), driven against a
 * real nghttp2 SERVER session inside the test: bytes are pumped both ways
 * in memory.  Every scenario runs with the server's bytes fed to the
 * client whole, byte by byte and in odd splits — as h2_feed calls and as
 * the chains of one evbuffer (h2_feed_buffer) — and each stream's
 * transcript of events must be the same every time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/buffer.h>
#include <nghttp2/nghttp2.h>

#include "h2.h"

/* --- one stream's events, as text ------------------------------------------------- */

struct rec {
	char log[4096];
	size_t body_cap;          /* refuse past this many body bytes (0: 1 MiB) */
	size_t body_total;
	bool refuse_head;
	bool in_body;
	int heads, finals;
	struct h2 *cancel_on_head;   /* h2_cancel(cancel_id) from the head callback */
	int32_t cancel_id;
	struct h2_failure last;      /* the fail event's (message not kept) */
};

static void logn(struct rec *r, const char *s, size_t n)
{
	size_t len = strlen(r->log);

	ck_assert_uint_lt(len + n, sizeof r->log);
	memcpy(r->log + len, s, n);
	r->log[len + n] = '\0';
}

static void logs(struct rec *r, const char *s)
{
	logn(r, s, strlen(s));
}

static void close_body(struct rec *r)
{
	if (r->in_body)
		logs(r, "\n");
	r->in_body = false;
}

static int on_head(void *ctx, const struct exchange_head *head)
{
	struct rec *r = ctx;
	char line[80];
	size_t i;

	ck_assert_int_eq(r->heads, 0);
	ck_assert_int_eq(r->finals, 0);
	ck_assert_uint_eq(head->reason_len, 0);
	r->heads++;
	snprintf(line, sizeof line, "head %d cl=%lld\n", head->status,
	         (long long)head->content_length);
	logs(r, line);
	for (i = 0; i < head->nfields; i++) {
		logn(r, head->fields[i].name, head->fields[i].name_len);
		logs(r, ": ");
		logn(r, head->fields[i].value, head->fields[i].value_len);
		logs(r, "\n");
	}
	if (r->cancel_on_head != NULL) {
		h2_cancel(r->cancel_on_head, r->cancel_id);
		logs(r, "cancelled\n");
	}
	return r->refuse_head ? -1 : 0;
}

static int on_body(void *ctx, const char *data, size_t len)
{
	struct rec *r = ctx;
	size_t cap = r->body_cap ? r->body_cap : 1u << 20;

	ck_assert_int_eq(r->heads, 1);
	ck_assert_int_eq(r->finals, 0);
	ck_assert_uint_gt(len, 0);
	if (r->body_total + len > cap)
		return -1;
	r->body_total += len;
	if (!r->in_body)
		logs(r, "body ");
	r->in_body = true;
	logn(r, data, len > 200 ? 0 : len);   /* big bodies: counted, not logged */
	return 0;
}

static void on_end(void *ctx, bool reusable)
{
	struct rec *r = ctx;

	ck_assert_int_eq(r->finals, 0);
	ck_assert(reusable);
	r->finals++;
	close_body(r);
	logs(r, "end\n");
}

static void on_fail(void *ctx, const struct h2_failure *why)
{
	static const char *const kinds[] = {
		[EXCHANGE_FAIL_CONNECT] = "connect", [EXCHANGE_FAIL_TLS] = "tls",
		[EXCHANGE_FAIL_RESET] = "reset", [EXCHANGE_FAIL_CLOSED] = "closed",
		[EXCHANGE_FAIL_PROTOCOL] = "protocol", [EXCHANGE_FAIL_REFUSED] = "refused",
	};
	struct rec *r = ctx;

	ck_assert_int_eq(r->finals, 0);
	ck_assert_ptr_nonnull(why->why.message);
	r->finals++;
	r->last = *why;
	r->last.why.message = NULL;
	close_body(r);
	logs(r, "fail ");
	logs(r, kinds[why->why.kind]);
	logs(r, why->unprocessed ? " unprocessed: " : ": ");
	logs(r, why->why.message);
	logs(r, "\n");
}

static const struct h2_stream_ops stream_ops = { on_head, on_body, on_end, on_fail };

/* --- the server ------------------------------------------------------------------- */

struct t;

struct sreq {
	int32_t id;
	char fields[2048];         /* "name: value\n" as received, pseudo first */
	char *body;                /* owned */
	size_t body_len;
	bool done;                 /* END_STREAM came */
	/* the answer's body, served chunk bytes per DATA frame */
	const char *resp;
	size_t resp_len, resp_off, chunk;
	bool trailers;             /* end with a trailer block */
};

struct server {
	nghttp2_session *s;
	uint32_t mcs;              /* MAX_CONCURRENT_STREAMS to announce; 0: none */
	struct sreq reqs[64];
	int nreqs;
	int open, max_open;        /* streams open at once on the server */
	int nrst;
	int32_t rst_id[64];
	uint32_t rst_code[64];
	void (*on_request)(struct t *t, struct sreq *r);   /* END_STREAM of a request */
};

struct t {
	struct h2 *h;
	struct server srv;
	size_t step;               /* the client is fed pieces of step bytes (0: whole) */
	bool chains;               /* ... as one evbuffer's chains */
	struct evbuffer *c2s, *s2c;
	int want_writes, settings_events, goaways;
	int32_t goaway_last;
	uint32_t goaway_code;
	bool alive;                /* what the last h2_feed said */
	int out_rc;                /* the last h2_pending_output */
	int max_attached;
};

static struct sreq *sreq_of(struct server *srv, int32_t id)
{
	int i;

	for (i = 0; i < srv->nreqs; i++)
		if (srv->reqs[i].id == id)
			return &srv->reqs[i];
	return NULL;
}

static void sappend(char *buf, size_t cap, const uint8_t *s, size_t n)
{
	size_t len = strlen(buf);

	ck_assert_uint_lt(len + n, cap);
	memcpy(buf + len, s, n);
	buf[len + n] = '\0';
}

static int s_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct t *t = ud;
	struct sreq *r;

	(void)s;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	ck_assert_int_lt(t->srv.nreqs, 64);
	r = &t->srv.reqs[t->srv.nreqs++];
	memset(r, 0, sizeof *r);
	r->id = f->hd.stream_id;
	t->srv.open++;
	if (t->srv.open > t->srv.max_open)
		t->srv.max_open = t->srv.open;
	return 0;
}

static int s_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct t *t = ud;
	struct sreq *r = sreq_of(&t->srv, f->hd.stream_id);

	(void)s;
	(void)flags;
	if (r == NULL)
		return 0;
	sappend(r->fields, sizeof r->fields, name, nlen);
	sappend(r->fields, sizeof r->fields, (const uint8_t *)": ", 2);
	sappend(r->fields, sizeof r->fields, value, vlen);
	sappend(r->fields, sizeof r->fields, (const uint8_t *)"\n", 1);
	return 0;
}

static int s_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                  void *ud)
{
	struct t *t = ud;
	struct sreq *r = sreq_of(&t->srv, id);

	(void)s;
	(void)flags;
	if (r == NULL)
		return 0;
	r->body = realloc(r->body, r->body_len + len + 1);
	ck_assert_ptr_nonnull(r->body);
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static int s_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct t *t = ud;
	struct sreq *r;

	(void)s;
	if (f->hd.type == NGHTTP2_RST_STREAM) {
		ck_assert_int_lt(t->srv.nrst, 64);
		t->srv.rst_id[t->srv.nrst] = f->hd.stream_id;
		t->srv.rst_code[t->srv.nrst++] = f->rst_stream.error_code;
		return 0;
	}
	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	r = sreq_of(&t->srv, f->hd.stream_id);
	if (r == NULL)
		return 0;
	r->done = true;
	if (t->srv.on_request != NULL)
		t->srv.on_request(t, r);
	return 0;
}

static int s_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct t *t = ud;

	(void)s;
	(void)id;
	(void)code;
	t->srv.open--;
	return 0;
}

static ssize_t s_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                      uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct sreq *r = src->ptr;
	size_t n = r->resp_len - r->resp_off;

	(void)s;
	(void)id;
	(void)ud;
	if (r->chunk && n > r->chunk)
		n = r->chunk;
	if (n > length)
		n = length;
	memcpy(buf, r->resp + r->resp_off, n);
	r->resp_off += n;
	if (r->resp_off == r->resp_len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (r->trailers) {
			nghttp2_nv tr[] = { { (uint8_t *)"x-checksum", (uint8_t *)"abc", 10, 3, 0 } };

			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			ck_assert_int_eq(nghttp2_submit_trailer(s, id, tr, 1), 0);
		}
	}
	return (ssize_t)n;
}

/* fields: "name", "value", ..., NULL; body NULL: none (END_STREAM on HEADERS) */
static void respond(struct t *t, struct sreq *r, const char *status, const char *const *fields,
                    const char *body)
{
	nghttp2_nv nva[80];
	size_t n = 0, i;
	nghttp2_data_provider prd = { .source.ptr = r, .read_callback = s_read };

	nva[n++] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)status, 7, strlen(status), 0 };
	for (i = 0; fields != NULL && fields[i] != NULL; i += 2) {
		ck_assert_uint_lt(n, sizeof nva / sizeof nva[0]);
		nva[n++] = (nghttp2_nv){ (uint8_t *)fields[i], (uint8_t *)fields[i + 1],
		                         strlen(fields[i]), strlen(fields[i + 1]), 0 };
	}
	r->resp = body;
	r->resp_len = body ? strlen(body) : 0;
	ck_assert_int_eq(nghttp2_submit_response(t->srv.s, r->id, nva, n, body ? &prd : NULL), 0);
}

static void server_new(struct t *t)
{
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, t->srv.mcs } };

	ck_assert_int_eq(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, s_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, s_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, s_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, s_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, s_close);
	ck_assert_int_eq(nghttp2_session_server_new(&t->srv.s, cb, t), 0);
	nghttp2_session_callbacks_del(cb);
	ck_assert_int_eq(nghttp2_submit_settings(t->srv.s, NGHTTP2_FLAG_NONE, iv, t->srv.mcs ? 1 : 0),
	                 0);
}

/* --- the client and the pump ---------------------------------------------------------- */

static void c_want_write(void *ctx)
{
	((struct t *)ctx)->want_writes++;
}

static void c_settings(void *ctx)
{
	((struct t *)ctx)->settings_events++;
}

static void c_goaway(void *ctx, int32_t last, uint32_t code)
{
	struct t *t = ctx;

	t->goaways++;
	t->goaway_last = last;
	t->goaway_code = code;
}

static const struct h2_ops conn_ops = { c_want_write, c_settings, c_goaway };

static const struct request_header defaults[] = {
	{ "user-agent", "fanoutd/test" },
	{ "accept", "*/*" },
	{ "accept-encoding", "gzip, deflate, br, zstd" },
};

static struct h2_settings client_settings(size_t max_streams)
{
	struct h2_settings s = {
		.max_streams = max_streams, .max_body = 1 << 20, .max_header_list = 4096,
		.max_headers = 50, .defaults = defaults, .ndefaults = 3,
	};

	return s;
}

static void setup(struct t *t, size_t step, bool chains, uint32_t mcs, size_t max_streams)
{
	struct h2_settings s = client_settings(max_streams);

	memset(t, 0, sizeof *t);
	t->step = step;
	t->chains = chains;
	t->srv.mcs = mcs;
	t->alive = true;
	t->c2s = evbuffer_new();
	t->s2c = evbuffer_new();
	server_new(t);
	t->h = h2_new(&conn_ops, t, &s);
}

static void teardown(struct t *t)
{
	int i;

	h2_free(t->h);
	nghttp2_session_del(t->srv.s);
	for (i = 0; i < t->srv.nreqs; i++)
		free(t->srv.reqs[i].body);
	evbuffer_free(t->c2s);
	evbuffer_free(t->s2c);
}

static void feed_client(struct t *t)
{
	size_t len = evbuffer_get_length(t->s2c), off, n;
	char *all = malloc(len ? len : 1);
	struct evbuffer *buf = evbuffer_new();

	ck_assert_int_eq(evbuffer_remove(t->s2c, all, len), (int)len);
	for (off = 0; off < len; off += n) {
		n = t->step == 0 || t->step > len - off ? len - off : t->step;
		if (t->chains)
			evbuffer_add_reference(buf, all + off, n, NULL, NULL);   /* a chain each */
		else
			t->alive = h2_feed(t->h, all + off, n);
	}
	if (t->chains) {
		t->alive = h2_feed_buffer(t->h, buf);
		ck_assert_uint_eq(evbuffer_get_length(buf), 0);
	}
	evbuffer_free(buf);
	free(all);
}

static void note_attached(struct t *t)
{
	int n = (int)h2_streams_attached(t->h);

	if (n > t->max_attached)
		t->max_attached = n;
}

/* Bytes both ways until neither side has any. */
static void pump(struct t *t)
{
	const uint8_t *p;
	ssize_t n;
	int i;

	for (i = 0; i < 10000; i++) {
		bool moved = false;
		size_t len;

		note_attached(t);
		t->out_rc = h2_pending_output(t->h, t->c2s, 0);
		ck_assert_int_ne(t->out_rc, 1);
		len = evbuffer_get_length(t->c2s);
		if (len > 0) {
			n = nghttp2_session_mem_recv(t->srv.s, evbuffer_pullup(t->c2s, -1), len);
			ck_assert_int_eq(n, (ssize_t)len);
			evbuffer_drain(t->c2s, len);
			moved = true;
		}
		while ((n = nghttp2_session_mem_send(t->srv.s, &p)) > 0)
			evbuffer_add(t->s2c, p, (size_t)n);
		ck_assert_int_ge(n, 0);
		if (evbuffer_get_length(t->s2c) > 0) {
			feed_client(t);
			moved = true;
		}
		if (!moved)
			return;
	}
	ck_abort_msg("the pump never went quiet");
}

static struct exchange_request get(const char *target)
{
	struct exchange_request req = {
		.method = REQUEST_METHOD_GET, .authority = "example.com", .target = target,
	};

	return req;
}

static int32_t submit(struct t *t, const struct exchange_request *req, struct rec *r)
{
	int32_t id = h2_submit(t->h, req, "https", &stream_ops, r);

	ck_assert_int_gt(id, 0);
	return id;
}

static int32_t submit_get(struct t *t, const char *target, struct rec *r)
{
	struct exchange_request req = get(target);

	return submit(t, &req, r);
}

/* The handshake: preface and SETTINGS both ways. */
static void handshake(struct t *t)
{
	ck_assert_uint_eq(h2_streams_free(t->h), 1);
	pump(t);
	ck_assert_int_ge(t->settings_events, 1);
}

/* Run a scenario with every way of feeding the client. */
typedef void scenario_fn(size_t step, bool chains);

static void each_split(scenario_fn *fn)
{
	static const size_t steps[] = { 0, 1, 2, 7, 13 };
	size_t i;

	for (i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		fn(steps[i], false);
		fn(steps[i], true);
	}
}

static void server_say(struct t *t)
{
	const uint8_t *p;
	ssize_t n;

	while ((n = nghttp2_session_mem_send(t->srv.s, &p)) > 0)
		evbuffer_add(t->s2c, p, (size_t)n);
	feed_client(t);
}

/* --- answers ---------------------------------------------------------------------------- */

/* A head, nothing more (yet). */
static void answer_partial(struct t *t, struct sreq *r)
{
	nghttp2_nv nva[] = { { (uint8_t *)":status", (uint8_t *)"200", 7, 3, 0 } };

	ck_assert_int_eq(nghttp2_submit_headers(t->srv.s, 0, r->id, NULL, nva, 1, NULL), 0);
}


static void answer_hello(struct t *t, struct sreq *r)
{
	static const char *const f[] = {
		"content-type", "text/plain", "x-a", "one", "content-length", "11",
		"set-cookie", "a=1", "x-a", "two", "set-cookie", "b=2", NULL,
	};

	r->chunk = 4;   /* three DATA frames */
	respond(t, r, "200", f, "hello world");
}

static void sc_get(size_t step, bool chains)
{
	struct t t;
	struct rec r = { 0 };
	struct exchange_request req = get("/a?b=1");
	struct request_header own[] = {
		{ "X-Token", "abc" }, { "Connection", "close" }, { "TE", "gzip" },
		{ "Accept", "text/html" }, { "keep-alive", "5" },
	};

	req.headers = own;
	req.nheaders = sizeof own / sizeof own[0];
	setup(&t, step, chains, 0, 100);
	t.srv.on_request = answer_hello;
	handshake(&t);
	(void)submit(&t, &req, &r);
	pump(&t);
	ck_assert_str_eq(r.log, "head 200 cl=11\ncontent-type: text/plain\nx-a: one, two\n"
	                        "content-length: 11\nset-cookie: a=1, b=2\nbody hello world\nend\n");
	ck_assert_int_eq(t.srv.nreqs, 1);
	ck_assert_str_eq(t.srv.reqs[0].fields,
	                 ":method: GET\n:scheme: https\n:authority: example.com\n:path: /a?b=1\n"
	                 "user-agent: fanoutd/test\naccept-encoding: gzip, deflate, br, zstd\n"
	                 "x-token: abc\naccept: text/html\n");
	ck_assert_uint_eq(h2_streams_attached(t.h), 0);
	ck_assert(!h2_finished(t.h));
	ck_assert(t.alive);
	teardown(&t);
}

START_TEST(test_get)
{
	each_split(sc_get);
}
END_TEST

/* The request's Host becomes :authority; te: trailers stays. */
START_TEST(test_request_host)
{
	struct t t;
	struct rec r = { 0 };
	struct exchange_request req = get("/");
	struct request_header own[] = {
		{ "Host", "other.example:8443" }, { "TE", "trailers" }, { "User-Agent", "mine/1" },
	};

	req.headers = own;
	req.nheaders = 3;
	req.method = REQUEST_METHOD_DELETE;
	setup(&t, 0, false, 0, 100);
	t.srv.on_request = answer_hello;
	handshake(&t);
	(void)submit(&t, &req, &r);
	pump(&t);
	ck_assert_str_eq(t.srv.reqs[0].fields,
	                 ":method: DELETE\n:scheme: https\n:authority: other.example:8443\n:path: /\n"
	                 "accept: */*\naccept-encoding: gzip, deflate, br, zstd\n"
	                 "te: trailers\nuser-agent: mine/1\n");
	ck_assert_str_eq(r.log + strlen(r.log) - 4, "end\n");
	teardown(&t);
}
END_TEST

/* --- many streams ---------------------------------------------------------------------- */

/* Answered only once all ten are in, last first, in interleaved DATA frames. */
static void answer_when_ten(struct t *t, struct sreq *r)
{
	static char bodies[10][32];
	int i;

	(void)r;
	if (t->srv.nreqs < 10)
		return;
	for (i = 0; i < 10; i++)
		if (!t->srv.reqs[i].done)
			return;
	for (i = 9; i >= 0; i--) {
		struct sreq *q = &t->srv.reqs[i];

		snprintf(bodies[i], sizeof bodies[i], "body of stream %d", (int)q->id);
		q->chunk = 5;
		respond(t, q, i % 2 ? "200" : "404", NULL, bodies[i]);
	}
}

static void sc_ten(size_t step, bool chains)
{
	struct t t;
	struct rec r[10];
	int32_t id[10];
	char path[10][16], want[128];
	int i;

	memset(r, 0, sizeof r);
	setup(&t, step, chains, 0, 100);
	t.srv.on_request = answer_when_ten;
	snprintf(path[0], sizeof path[0], "/0");
	id[0] = submit(&t, &(struct exchange_request){ .method = REQUEST_METHOD_GET,
	                                               .authority = "e", .target = path[0] }, &r[0]);
	/* one stream until the server's SETTINGS */
	ck_assert(!h2_can_submit(t.h));
	{
		struct exchange_request x = get("/x");

		ck_assert_int_eq(h2_submit(t.h, &x, "https", &stream_ops, &r[1]), -1);
	}
	pump(&t);
	ck_assert_int_ge(t.settings_events, 1);
	ck_assert_uint_eq(h2_streams_free(t.h), 99);
	for (i = 1; i < 10; i++) {
		snprintf(path[i], sizeof path[i], "/%d", i);
		id[i] = submit(&t, &(struct exchange_request){ .method = REQUEST_METHOD_GET,
		                                               .authority = "e", .target = path[i] },
		               &r[i]);
	}
	pump(&t);
	ck_assert_int_eq(t.srv.max_open, 10);
	for (i = 0; i < 10; i++) {
		/* the server numbered its bodies by the stream it answered on */
		struct sreq *q = sreq_of(&t.srv, id[i]);

		ck_assert_ptr_nonnull(q);
		ck_assert_ptr_nonnull(strstr(q->fields, path[i]));
		snprintf(want, sizeof want, "head %s cl=-1\nbody body of stream %d\nend\n",
		         (q - t.srv.reqs) % 2 ? "200" : "404", (int)id[i]);
		ck_assert_str_eq(r[i].log, want);
	}
	teardown(&t);
}

START_TEST(test_ten_streams)
{
	each_split(sc_ten);
}
END_TEST

static void answer_now(struct t *t, struct sreq *r)
{
	respond(t, r, "200", NULL, "x");
}

/* Server cap 2: never more than 2 open at once, and 2 do open at once. */
START_TEST(test_server_cap)
{
	struct t t;
	struct rec r[8];
	int started = 0, i, done;

	memset(r, 0, sizeof r);
	setup(&t, 3, false, 2, 100);
	t.srv.on_request = answer_now;
	ck_assert_uint_eq(h2_streams_free(t.h), 1);
	(void)submit_get(&t, "/first", &r[started++]);
	ck_assert_uint_eq(h2_streams_free(t.h), 0);
	pump(&t);   /* SETTINGS in; the first answered */
	ck_assert_int_ge(t.settings_events, 1);
	ck_assert_str_eq(r[0].log, "head 200 cl=-1\nbody x\nend\n");
	ck_assert_uint_eq(h2_streams_free(t.h), 2);
	t.srv.on_request = NULL;   /* hold the next answers */
	while (h2_can_submit(t.h))
		(void)submit_get(&t, "/more", &r[started++]);
	ck_assert_int_eq(started, 3);
	pump(&t);
	ck_assert_int_eq(t.srv.open, 2);
	/* answer them, and refill as streams end */
	t.srv.on_request = answer_now;
	for (i = 0; i < t.srv.nreqs; i++)
		if (t.srv.reqs[i].done && t.srv.reqs[i].resp == NULL)
			answer_now(&t, &t.srv.reqs[i]);
	while (started < 8) {
		pump(&t);
		while (started < 8 && h2_can_submit(t.h))
			(void)submit_get(&t, "/more", &r[started++]);
	}
	pump(&t);
	ck_assert_int_eq(t.srv.max_open, 2);
	ck_assert_int_le(t.max_attached, 2);
	for (done = 0, i = 0; i < 8; i++)
		done += strcmp(r[i].log, "head 200 cl=-1\nbody x\nend\n") == 0;
	ck_assert_int_eq(done, 8);
	teardown(&t);
}
END_TEST

/* h2_max_streams below the server's cap wins. */
START_TEST(test_local_cap)
{
	struct t t;
	struct rec r[4];
	int before;

	memset(r, 0, sizeof r);
	setup(&t, 0, false, 100, 3);
	handshake(&t);
	before = t.want_writes;
	ck_assert_uint_eq(h2_streams_free(t.h), 3);
	(void)submit_get(&t, "/", &r[0]);
	(void)submit_get(&t, "/", &r[1]);
	(void)submit_get(&t, "/", &r[2]);
	ck_assert(!h2_can_submit(t.h));
	ck_assert_uint_eq(h2_streams_free(t.h), 0);
	/* one want_write for all three until the owner flushes */
	ck_assert_int_eq(t.want_writes, before + 1);
	teardown(&t);
}
END_TEST

/* --- bodies ------------------------------------------------------------------------------ */

static char big[100000];

static void answer_echo_length(struct t *t, struct sreq *r)
{
	static char len[32];

	snprintf(len, sizeof len, "%zu", r->body_len);
	respond(t, r, "201", (const char *const[]){ "x-got", len, NULL }, NULL);
}

static void sc_post(size_t step, bool chains)
{
	struct t t;
	struct rec r[3];
	struct exchange_request req = get("/post");

	memset(r, 0, sizeof r);
	memset(big, 'b', sizeof big);
	setup(&t, step, chains, 0, 100);
	t.srv.on_request = answer_echo_length;
	handshake(&t);
	req.method = REQUEST_METHOD_POST;
	req.body = "x=1&y=2";
	req.body_len = 7;
	(void)submit(&t, &req, &r[0]);
	/* a body over the server's 65,535-byte window: WINDOW_UPDATEs */
	req.body = big;
	req.body_len = sizeof big;
	(void)submit(&t, &req, &r[1]);
	/* POST without a body still says how long */
	req.body = NULL;
	req.body_len = 0;
	(void)submit(&t, &req, &r[2]);
	pump(&t);
	ck_assert_str_eq(r[0].log, "head 201 cl=0\nx-got: 7\nend\n");
	ck_assert_str_eq(r[1].log, "head 201 cl=0\nx-got: 100000\nend\n");
	ck_assert_str_eq(r[2].log, "head 201 cl=0\nx-got: 0\nend\n");
	ck_assert_str_eq(t.srv.reqs[0].body, "x=1&y=2");
	ck_assert_ptr_nonnull(strstr(t.srv.reqs[0].fields, "content-length: 7\n"));
	ck_assert_uint_eq(t.srv.reqs[1].body_len, sizeof big);
	ck_assert(memcmp(t.srv.reqs[1].body, big, sizeof big) == 0);
	ck_assert_ptr_nonnull(strstr(t.srv.reqs[2].fields, ":method: POST\n"));
	ck_assert_ptr_nonnull(strstr(t.srv.reqs[2].fields, "content-length: 0\n"));
	ck_assert_uint_eq(t.srv.reqs[2].body_len, 0);
	teardown(&t);
}

START_TEST(test_post)
{
	each_split(sc_post);
}
END_TEST

static void answer_bodiless(struct t *t, struct sreq *r)
{
	if (strstr(r->fields, ":path: /204\n"))
		respond(t, r, "204", NULL, NULL);
	else if (strstr(r->fields, ":path: /304\n"))
		respond(t, r, "304", (const char *const[]){ "etag", "\"x\"", NULL }, NULL);
	else   /* HEAD: the length of the body it would have */
		respond(t, r, "200", (const char *const[]){ "content-length", "5", NULL }, NULL);
}

static void sc_bodiless(size_t step, bool chains)
{
	struct t t;
	struct rec r[3];
	struct exchange_request req = get("/head");

	memset(r, 0, sizeof r);
	setup(&t, step, chains, 0, 100);
	t.srv.on_request = answer_bodiless;
	handshake(&t);
	req.method = REQUEST_METHOD_HEAD;
	(void)submit(&t, &req, &r[0]);
	(void)submit_get(&t, "/204", &r[1]);
	(void)submit_get(&t, "/304", &r[2]);
	pump(&t);
	ck_assert_str_eq(r[0].log, "head 200 cl=0\ncontent-length: 5\nend\n");
	ck_assert_str_eq(r[1].log, "head 204 cl=0\nend\n");
	ck_assert_str_eq(r[2].log, "head 304 cl=0\netag: \"x\"\nend\n");
	teardown(&t);
}

START_TEST(test_bodiless)
{
	each_split(sc_bodiless);
}
END_TEST

/* Two 103s and a 100 before the 200: none reaches the owner. */
static void answer_interim(struct t *t, struct sreq *r)
{
	nghttp2_nv e1[] = { { (uint8_t *)":status", (uint8_t *)"103", 7, 3, 0 },
	                    { (uint8_t *)"link", (uint8_t *)"</a.css>", 4, 8, 0 } };
	nghttp2_nv e2[] = { { (uint8_t *)":status", (uint8_t *)"100", 7, 3, 0 } };

	ck_assert_int_eq(nghttp2_submit_headers(t->srv.s, 0, r->id, NULL, e1, 2, NULL), 0);
	ck_assert_int_eq(nghttp2_submit_headers(t->srv.s, 0, r->id, NULL, e1, 2, NULL), 0);
	ck_assert_int_eq(nghttp2_submit_headers(t->srv.s, 0, r->id, NULL, e2, 1, NULL), 0);
	respond(t, r, "200", (const char *const[]){ "x-final", "yes", NULL }, "ok");
}

static void sc_interim(size_t step, bool chains)
{
	struct t t;
	struct rec r = { 0 };

	setup(&t, step, chains, 0, 100);
	t.srv.on_request = answer_interim;
	handshake(&t);
	(void)submit_get(&t, "/", &r);
	pump(&t);
	ck_assert_str_eq(r.log, "head 200 cl=-1\nx-final: yes\nbody ok\nend\n");
	teardown(&t);
}

START_TEST(test_interim)
{
	each_split(sc_interim);
}
END_TEST

static void answer_trailers(struct t *t, struct sreq *r)
{
	r->trailers = true;
	respond(t, r, "200", (const char *const[]){ "trailer", "x-checksum", NULL }, "data");
}

static void sc_trailers(size_t step, bool chains)
{
	struct t t;
	struct rec r = { 0 };

	setup(&t, step, chains, 0, 100);
	t.srv.on_request = answer_trailers;
	handshake(&t);
	(void)submit_get(&t, "/", &r);
	pump(&t);
	ck_assert_str_eq(r.log, "head 200 cl=-1\ntrailer: x-checksum\nbody data\nend\n");
	teardown(&t);
}

START_TEST(test_trailers)
{
	each_split(sc_trailers);
}
END_TEST

/* --- resets ------------------------------------------------------------------------------- */

static void answer_by_path(struct t *t, struct sreq *r)
{
	if (strstr(r->fields, ":path: /refuse\n")) {
		ck_assert_int_eq(nghttp2_submit_rst_stream(t->srv.s, 0, r->id, NGHTTP2_REFUSED_STREAM), 0);
	} else if (strstr(r->fields, ":path: /internal\n")) {
		ck_assert_int_eq(nghttp2_submit_rst_stream(t->srv.s, 0, r->id, NGHTTP2_INTERNAL_ERROR), 0);
	} else if (strstr(r->fields, ":path: /half\n") || strstr(r->fields, ":path: /late\n")) {
		/* a head now, the reset later (sc_resets) */
		nghttp2_nv nva[] = { { (uint8_t *)":status", (uint8_t *)"200", 7, 3, 0 } };

		ck_assert_int_eq(nghttp2_submit_headers(t->srv.s, 0, r->id, NULL, nva, 1, NULL), 0);
	} else {
		respond(t, r, "200", NULL, "fine");
	}
}

static void sc_resets(size_t step, bool chains)
{
	struct t t;
	struct rec r[5];

	memset(r, 0, sizeof r);
	setup(&t, step, chains, 0, 100);
	t.srv.on_request = answer_by_path;
	handshake(&t);
	(void)submit_get(&t, "/refuse", &r[0]);
	(void)submit_get(&t, "/internal", &r[1]);
	(void)submit_get(&t, "/half", &r[2]);
	(void)submit_get(&t, "/ok", &r[3]);
	(void)submit_get(&t, "/late", &r[4]);
	pump(&t);
	ck_assert_int_eq(nghttp2_submit_rst_stream(t.srv.s, 0, t.srv.reqs[2].id, 0x99), 0);
	ck_assert_int_eq(nghttp2_submit_rst_stream(t.srv.s, 0, t.srv.reqs[4].id,
	                                           NGHTTP2_REFUSED_STREAM), 0);
	pump(&t);
	ck_assert_str_eq(r[0].log, "fail protocol unprocessed: stream refused by upstream "
	                           "(REFUSED_STREAM)\n");
	ck_assert(r[0].last.unprocessed);
	ck_assert_uint_eq(r[0].last.error_code, NGHTTP2_REFUSED_STREAM);
	ck_assert(r[0].last.why.nothing_received);
	ck_assert_str_eq(r[1].log, "fail protocol: stream reset by upstream: INTERNAL_ERROR\n");
	ck_assert(!r[1].last.unprocessed);
	ck_assert_uint_eq(r[1].last.error_code, NGHTTP2_INTERNAL_ERROR);
	ck_assert_str_eq(r[2].log, "head 200 cl=-1\nfail protocol: stream reset by upstream: "
	                           "error 0x99\n");
	ck_assert(!r[2].last.why.nothing_received);
	ck_assert_str_eq(r[3].log, "head 200 cl=-1\nbody fine\nend\n");
	/* REFUSED_STREAM after a head: not believed (found by fuzz_h2) */
	ck_assert_str_eq(r[4].log, "head 200 cl=-1\nfail protocol: stream reset by upstream: "
	                           "REFUSED_STREAM\n");
	ck_assert(!r[4].last.unprocessed);
	/* the connection goes on */
	ck_assert(t.alive);
	ck_assert(h2_can_submit(t.h));
	teardown(&t);
}

START_TEST(test_resets)
{
	each_split(sc_resets);
}
END_TEST

/* GOAWAY last_stream_id 3: stream 1 and 3 complete, 5 and 7 never ran. */
static void answer_goaway(struct t *t, struct sreq *r)
{
	if (t->srv.nreqs < 4 || r->id != 7)
		return;
	ck_assert_int_eq(nghttp2_submit_goaway(t->srv.s, 0, 3, NGHTTP2_NO_ERROR, NULL, 0), 0);
	respond(t, &t->srv.reqs[0], "200", NULL, "one");
	respond(t, &t->srv.reqs[1], "200", NULL, "three");
}

static void sc_goaway(size_t step, bool chains)
{
	struct t t;
	struct rec r[4];
	int32_t id[4];
	int i;

	memset(r, 0, sizeof r);
	setup(&t, step, chains, 0, 100);
	t.srv.on_request = answer_goaway;
	handshake(&t);
	for (i = 0; i < 4; i++)
		id[i] = submit_get(&t, "/", &r[i]);
	ck_assert_int_eq(id[0], 1);
	ck_assert_int_eq(id[3], 7);
	pump(&t);
	ck_assert_int_eq(t.goaways, 1);
	ck_assert_int_eq(t.goaway_last, 3);
	ck_assert_uint_eq(t.goaway_code, 0);
	ck_assert_str_eq(r[0].log, "head 200 cl=-1\nbody one\nend\n");
	ck_assert_str_eq(r[1].log, "head 200 cl=-1\nbody three\nend\n");
	for (i = 2; i < 4; i++) {
		ck_assert_str_eq(r[i].log, "fail protocol unprocessed: upstream went away (GOAWAY "
		                           "NO_ERROR, last stream 3) before processing the request\n");
		ck_assert(r[i].last.unprocessed);
	}
	ck_assert(!h2_can_submit(t.h));
	ck_assert_uint_eq(h2_streams_free(t.h), 0);
	{
		struct exchange_request late = get("/late");

		ck_assert_int_eq(h2_submit(t.h, &late, "https", &stream_ops, &r[0]), -1);
	}
	ck_assert(h2_finished(t.h));
	teardown(&t);
}

START_TEST(test_goaway)
{
	each_split(sc_goaway);
}
END_TEST

/* A server that began to answer stream 3, then says it never saw it. */
START_TEST(test_goaway_mid_answer)
{
	struct t t;
	struct rec r[2];

	memset(r, 0, sizeof r);
	setup(&t, 0, false, 0, 100);
	handshake(&t);
	(void)submit_get(&t, "/", &r[0]);
	(void)submit_get(&t, "/", &r[1]);
	pump(&t);
	answer_partial(&t, &t.srv.reqs[1]);
	pump(&t);
	ck_assert_int_eq(nghttp2_submit_goaway(t.srv.s, 0, 1, NGHTTP2_NO_ERROR, NULL, 0), 0);
	pump(&t);
	ck_assert_str_eq(r[1].log, "head 200 cl=-1\nfail protocol: upstream went away (GOAWAY "
	                           "NO_ERROR, last stream 1) in the middle of the answer\n");
	ck_assert(!r[1].last.unprocessed);
	ck_assert_int_eq(r[0].finals, 0);
	teardown(&t);
}
END_TEST

/* What the client's SETTINGS and WINDOW_UPDATE told the server. */
START_TEST(test_settings_sent)
{
	struct t t;
	nghttp2_session *srv;

	setup(&t, 0, false, 0, 4);
	handshake(&t);
	srv = t.srv.s;
	ck_assert_uint_eq(nghttp2_session_get_remote_settings(srv, NGHTTP2_SETTINGS_ENABLE_PUSH), 0);
	ck_assert_uint_eq(nghttp2_session_get_remote_settings(srv,
	                  NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE), 4096);
	ck_assert_uint_eq(nghttp2_session_get_remote_settings(srv,
	                  NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE), 1 << 20);
	/* the connection window: the stream window times max_streams */
	ck_assert_int_eq(nghttp2_session_get_remote_window_size(srv), 4 << 20);
	teardown(&t);
}
END_TEST

/* A request submitted but never flushed when GOAWAY comes: unprocessed. */
START_TEST(test_goaway_unsent)
{
	struct t t;
	struct rec r[2];

	memset(r, 0, sizeof r);
	setup(&t, 0, false, 0, 100);
	handshake(&t);
	(void)submit_get(&t, "/sent", &r[0]);
	pump(&t);
	(void)submit_get(&t, "/unsent", &r[1]);
	ck_assert_int_eq(nghttp2_submit_goaway(t.srv.s, 0, 1, NGHTTP2_NO_ERROR, NULL, 0), 0);
	server_say(&t);
	ck_assert(r[1].last.unprocessed);
	ck_assert_int_eq(r[1].finals, 1);
	ck_assert_int_eq(r[0].finals, 0);
	/* the flush no longer sends it, nor tells anyone twice */
	ck_assert_int_eq(h2_pending_output(t.h, t.c2s, 0), 0);
	ck_assert_int_eq(r[1].finals, 1);
	teardown(&t);
}
END_TEST

/* --- refusing and cancelling -------------------------------------------------------------- */

static void answer_long(struct t *t, struct sreq *r)
{
	r->chunk = 3;
	respond(t, r, "200", (const char *const[]){ "content-length", "12", NULL }, "abcdefghijkl");
}

static int32_t rst_code_for(const struct t *t, int32_t id)
{
	int i;

	for (i = 0; i < t->srv.nrst; i++)
		if (t->srv.rst_id[i] == id)
			return (int32_t)t->srv.rst_code[i];
	return -1;
}

static void sc_refuse(size_t step, bool chains)
{
	struct t t;
	struct rec r[3];
	int32_t id[3];

	memset(r, 0, sizeof r);
	r[0].body_cap = 3;          /* the body callback says no after the first frame */
	r[1].refuse_head = true;    /* the head callback says no */
	setup(&t, step, chains, 0, 100);
	t.srv.on_request = answer_long;
	handshake(&t);
	id[0] = submit_get(&t, "/", &r[0]);
	id[1] = submit_get(&t, "/", &r[1]);
	id[2] = submit_get(&t, "/", &r[2]);
	pump(&t);
	ck_assert_str_eq(r[0].log, "head 200 cl=12\ncontent-length: 12\nbody abc\n"
	                           "fail refused: answer body refused: over a size cap\n");
	ck_assert_str_eq(r[1].log, "head 200 cl=12\ncontent-length: 12\n"
	                           "fail refused: answer refused: over a size cap\n");
	ck_assert_str_eq(r[2].log, "head 200 cl=12\ncontent-length: 12\nbody abcdefghijkl\nend\n");
	/* the server heard about both */
	ck_assert_int_eq(rst_code_for(&t, id[0]), NGHTTP2_CANCEL);
	ck_assert_int_eq(rst_code_for(&t, id[1]), NGHTTP2_CANCEL);
	ck_assert_int_eq(rst_code_for(&t, id[2]), -1);
	ck_assert(t.alive);
	teardown(&t);
}

START_TEST(test_refuse)
{
	each_split(sc_refuse);
}
END_TEST

static void sc_cancel(size_t step, bool chains)
{
	struct t t;
	struct rec r[3];
	int32_t id[3];

	memset(r, 0, sizeof r);
	setup(&t, step, chains, 0, 100);
	handshake(&t);   /* the server holds its answers */
	id[0] = submit_get(&t, "/", &r[0]);
	id[1] = submit_get(&t, "/", &r[1]);
	id[2] = submit_get(&t, "/", &r[2]);
	pump(&t);
	h2_cancel(t.h, id[0]);
	h2_cancel(t.h, id[0]);       /* twice: nothing more */
	h2_cancel(t.h, 12345);       /* unknown: ignored */
	ck_assert_uint_eq(h2_streams_attached(t.h), 2);
	r[1].cancel_on_head = t.h;   /* the head callback cancels stream 3 */
	r[1].cancel_id = id[2];
	pump(&t);
	ck_assert_int_eq(rst_code_for(&t, id[0]), NGHTTP2_CANCEL);
	/* answer the other two: only the second hears */
	respond(&t, &t.srv.reqs[1], "200", NULL, "one");
	respond(&t, &t.srv.reqs[2], "200", NULL, "two");
	pump(&t);
	ck_assert_str_eq(r[0].log, "");
	ck_assert_str_eq(r[1].log, "head 200 cl=-1\ncancelled\nbody one\nend\n");
	ck_assert_int_eq(r[2].heads, 0);
	ck_assert_int_eq(r[2].finals, 0);
	ck_assert_uint_eq(h2_streams_attached(t.h), 0);
	ck_assert(t.alive);
	teardown(&t);
}

START_TEST(test_cancel)
{
	each_split(sc_cancel);
}
END_TEST

/* A cancel before the HEADERS went out: the server never sees the stream. */
START_TEST(test_cancel_unsent)
{
	struct t t;
	struct rec r = { 0 };
	int32_t id;

	setup(&t, 0, false, 0, 100);
	handshake(&t);
	id = submit_get(&t, "/", &r);
	h2_cancel(t.h, id);
	ck_assert(h2_can_submit(t.h));
	pump(&t);
	ck_assert_int_eq(t.srv.nreqs, 0);
	ck_assert_str_eq(r.log, "");
	teardown(&t);
}
END_TEST

/* --- caps ---------------------------------------------------------------------------------- */

static void answer_fat_head(struct t *t, struct sreq *r)
{
	static char v[1500];

	memset(v, 'v', sizeof v - 1);
	if (strstr(r->fields, ":path: /many\n")) {
		static char names[60][8];
		const char *f[121];
		int i;

		for (i = 0; i < 60; i++) {
			snprintf(names[i], sizeof names[i], "x-%d", i);
			f[2 * i] = names[i];
			f[2 * i + 1] = "1";
		}
		f[120] = NULL;
		respond(t, r, "200", f, "x");
	} else {
		respond(t, r, "200", (const char *const[]){ "a", v, "b", v, "c", v, NULL }, "x");
	}
}

static void sc_caps(size_t step, bool chains)
{
	struct t t;
	struct rec r[2];
	int32_t id[2];

	memset(r, 0, sizeof r);
	setup(&t, step, chains, 0, 100);
	t.srv.on_request = answer_fat_head;
	handshake(&t);
	id[0] = submit_get(&t, "/fat", &r[0]);
	id[1] = submit_get(&t, "/many", &r[1]);
	pump(&t);
	ck_assert_str_eq(r[0].log, "fail protocol: malformed answer: header fields over 4096 bytes\n");
	ck_assert_str_eq(r[1].log, "fail protocol: malformed answer: more than 50 header fields\n");
	ck_assert_int_eq(rst_code_for(&t, id[0]), NGHTTP2_CANCEL);
	ck_assert_int_eq(rst_code_for(&t, id[1]), NGHTTP2_CANCEL);
	ck_assert(t.alive);
	teardown(&t);
}

START_TEST(test_caps)
{
	each_split(sc_caps);
}
END_TEST

/* --- the connection failing ------------------------------------------------------------------ */

static void sc_garbage(size_t step, bool chains)
{
	struct t t;
	struct rec r[2];
	static const char junk[] = "\x00\x00\x04\x99\x00\x00\x00\x00\x00garbage!";

	memset(r, 0, sizeof r);
	setup(&t, step, chains, 0, 100);
	handshake(&t);
	(void)submit_get(&t, "/", &r[0]);
	(void)submit_get(&t, "/", &r[1]);
	pump(&t);
	/* a frame of an unknown type is ignored; a DATA frame on stream 0 is not */
	evbuffer_add(t.s2c, junk, sizeof junk - 1);
	evbuffer_add(t.s2c, "\x00\x00\x01\x00\x00\x00\x00\x00\x00X", 10);
	feed_client(&t);
	ck_assert(!t.alive);
	ck_assert_int_eq(r[0].finals, 1);
	ck_assert_int_eq(r[1].finals, 1);
	ck_assert_int_eq(r[0].last.why.kind, EXCHANGE_FAIL_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(r[0].log, "fail protocol: malformed answer: HTTP/2 connection "
	                                       "error"));
	ck_assert(!h2_can_submit(t.h));
	ck_assert(h2_finished(t.h));
	/* a GOAWAY goes out; nothing is told twice */
	ck_assert_int_eq(h2_pending_output(t.h, t.c2s, 0), 0);
	ck_assert_uint_gt(evbuffer_get_length(t.c2s), 0);
	ck_assert_int_eq(r[0].finals, 1);
	ck_assert(!h2_feed(t.h, "more", 4));
	teardown(&t);
}

START_TEST(test_garbage)
{
	each_split(sc_garbage);
}
END_TEST

static void answer_malformed(struct t *t, struct sreq *r)
{
	if (strstr(r->fields, ":path: /length\n"))
		respond(t, r, "200", (const char *const[]){ "content-length", "3", NULL }, "12345");
	else
		respond(t, r, "200", (const char *const[]){ "connection", "close", NULL }, "x");
}

/* Answers nghttp2 itself finds malformed: that stream is reset, the
 * connection goes on. */
START_TEST(test_malformed_stream)
{
	struct t t;
	struct rec r[3];
	int32_t id[2];
	const char *fail;

	memset(r, 0, sizeof r);
	setup(&t, 0, false, 0, 100);
	t.srv.on_request = answer_malformed;
	handshake(&t);
	id[0] = submit_get(&t, "/length", &r[0]);
	id[1] = submit_get(&t, "/conn", &r[1]);
	pump(&t);
	/* (how much of the body came first depends on the split) */
	fail = strstr(r[0].log, "fail ");
	ck_assert_ptr_nonnull(fail);
	ck_assert_str_eq(fail, "fail protocol: malformed answer: HTTP/2 stream error "
	                       "(PROTOCOL_ERROR)\n");
	ck_assert_str_eq(r[1].log, "fail protocol: malformed answer: Invalid HTTP header field "
	                           "was received\n");
	ck_assert_int_eq(rst_code_for(&t, id[0]), NGHTTP2_PROTOCOL_ERROR);
	ck_assert_int_eq(rst_code_for(&t, id[1]), NGHTTP2_PROTOCOL_ERROR);
	ck_assert(t.alive);
	(void)submit_get(&t, "/after", &r[2]);
	t.srv.on_request = answer_hello;
	pump(&t);
	ck_assert_str_eq(r[2].log + strlen(r[2].log) - 4, "end\n");
	teardown(&t);
}
END_TEST

/* A connection error after GOAWAY: the streams it kept fail when our
 * GOAWAY goes out. */
START_TEST(test_error_after_goaway)
{
	struct t t;
	struct rec r[2];

	memset(r, 0, sizeof r);
	setup(&t, 0, false, 0, 100);
	handshake(&t);
	(void)submit_get(&t, "/", &r[0]);
	(void)submit_get(&t, "/", &r[1]);
	pump(&t);
	ck_assert_int_eq(nghttp2_submit_goaway(t.srv.s, 0, 3, NGHTTP2_NO_ERROR, NULL, 0), 0);
	server_say(&t);
	ck_assert_int_eq(t.goaways, 1);
	ck_assert_int_eq(r[0].finals + r[1].finals, 0);
	/* DATA on stream 0 */
	evbuffer_add(t.s2c, "\x00\x00\x01\x00\x00\x00\x00\x00\x00X", 10);
	feed_client(&t);
	ck_assert_int_eq(h2_pending_output(t.h, t.c2s, 0), 0);
	ck_assert_int_eq(r[0].finals, 1);
	ck_assert_int_eq(r[1].finals, 1);
	ck_assert_ptr_nonnull(strstr(r[0].log, "fail protocol: malformed answer: HTTP/2 "
	                                       "connection error: "));
	ck_assert(h2_finished(t.h));
	ck_assert_uint_eq(h2_streams_attached(t.h), 0);
	teardown(&t);
}
END_TEST

/* An HTTP/1.1 server answering the preface. */
START_TEST(test_not_h2)
{
	struct t t;
	struct rec r = { 0 };
	static const char h1[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

	setup(&t, 0, false, 0, 100);
	(void)submit_get(&t, "/", &r);
	ck_assert_int_eq(h2_pending_output(t.h, t.c2s, 0), 0);
	ck_assert_uint_gt(evbuffer_get_length(t.c2s), 24);
	ck_assert(memcmp(evbuffer_pullup(t.c2s, 24), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24) == 0);
	ck_assert(!h2_feed(t.h, h1, sizeof h1 - 1));
	ck_assert_str_eq(r.log, "fail protocol: malformed answer: HTTP/2 connection error: the "
	                        "upstream does not speak HTTP/2 (no SETTINGS frame first)\n");
	teardown(&t);
}
END_TEST

static void sc_eof(size_t step, bool chains)
{
	struct t t;
	struct rec r[2];

	memset(r, 0, sizeof r);
	setup(&t, step, chains, 0, 100);
	handshake(&t);
	(void)submit_get(&t, "/", &r[0]);
	(void)submit_get(&t, "/", &r[1]);
	pump(&t);
	answer_partial(&t, &t.srv.reqs[0]);
	pump(&t);
	h2_eof(t.h);
	ck_assert_str_eq(r[0].log, "head 200 cl=-1\nfail closed: upstream closed the connection "
	                           "before the end of the answer\n");
	ck_assert(!r[0].last.why.nothing_received);
	ck_assert_str_eq(r[1].log, "fail closed: upstream closed the connection before the end of "
	                           "the answer\n");
	ck_assert(r[1].last.why.nothing_received);
	ck_assert(!r[1].last.unprocessed);
	ck_assert(h2_finished(t.h));
	ck_assert_uint_eq(h2_streams_free(t.h), 0);
	h2_eof(t.h);   /* once only */
	ck_assert_int_eq(r[0].finals, 1);
	teardown(&t);
}

START_TEST(test_eof)
{
	each_split(sc_eof);
}
END_TEST

START_TEST(test_fail_all)
{
	struct t t;
	struct rec r[3];
	int32_t id;

	memset(r, 0, sizeof r);
	setup(&t, 0, false, 0, 100);
	handshake(&t);
	(void)submit_get(&t, "/", &r[0]);
	id = submit_get(&t, "/", &r[1]);
	(void)submit_get(&t, "/", &r[2]);
	h2_cancel(t.h, id);
	h2_fail_all(t.h, EXCHANGE_FAIL_RESET, ECONNRESET, "connection reset");
	ck_assert_str_eq(r[0].log, "fail reset: connection reset\n");
	ck_assert_int_eq(r[0].last.why.err, ECONNRESET);
	ck_assert_str_eq(r[1].log, "");
	ck_assert_str_eq(r[2].log, "fail reset: connection reset\n");
	h2_fail_all(t.h, EXCHANGE_FAIL_RESET, 0, "again");
	ck_assert_int_eq(r[0].finals, 1);
	ck_assert_uint_eq(h2_streams_attached(t.h), 0);
	teardown(&t);
}
END_TEST

/* The owner may hold output back: a limit, then the rest. */
START_TEST(test_output_limit)
{
	struct t t;
	struct rec r = { 0 };
	struct exchange_request req = get("/up");

	memset(big, 'q', sizeof big);
	setup(&t, 0, false, 0, 100);
	handshake(&t);
	req.method = REQUEST_METHOD_PUT;
	req.body = big;
	req.body_len = 30000;
	(void)submit(&t, &req, &r);
	ck_assert_int_eq(h2_pending_output(t.h, t.c2s, 100), 1);
	ck_assert_uint_lt(evbuffer_get_length(t.c2s), 30000);
	t.srv.on_request = answer_echo_length;
	pump(&t);
	ck_assert_str_eq(r.log, "head 201 cl=0\nx-got: 30000\nend\n");
	teardown(&t);
}
END_TEST

static Suite *h2_suite(void)
{
	Suite *s = suite_create("h2");
	TCase *basic = tcase_create("answers");
	TCase *many = tcase_create("streams");
	TCase *fail = tcase_create("failures");

	tcase_set_timeout(basic, 60);
	tcase_set_timeout(many, 60);
	tcase_set_timeout(fail, 60);
	tcase_add_test(basic, test_get);
	tcase_add_test(basic, test_request_host);
	tcase_add_test(basic, test_post);
	tcase_add_test(basic, test_bodiless);
	tcase_add_test(basic, test_interim);
	tcase_add_test(basic, test_trailers);
	tcase_add_test(basic, test_output_limit);
	tcase_add_test(many, test_ten_streams);
	tcase_add_test(many, test_server_cap);
	tcase_add_test(many, test_local_cap);
	tcase_add_test(many, test_cancel);
	tcase_add_test(many, test_cancel_unsent);
	tcase_add_test(fail, test_resets);
	tcase_add_test(fail, test_goaway);
	tcase_add_test(fail, test_goaway_unsent);
	tcase_add_test(fail, test_goaway_mid_answer);
	tcase_add_test(basic, test_settings_sent);
	tcase_add_test(fail, test_refuse);
	tcase_add_test(fail, test_caps);
	tcase_add_test(fail, test_garbage);
	tcase_add_test(fail, test_not_h2);
	tcase_add_test(fail, test_malformed_stream);
	tcase_add_test(fail, test_error_after_goaway);
	tcase_add_test(fail, test_eof);
	tcase_add_test(fail, test_fail_all);
	suite_add_tcase(s, basic);
	suite_add_tcase(s, many);
	suite_add_tcase(s, fail);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(h2_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
