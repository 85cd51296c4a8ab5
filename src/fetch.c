/* fetch: one upstream request through libevent's evhttp client.
 *
 *   queued -> (slot) -> resolving -> connecting -> waiting -> receiving -> done
 *                       (skipped for IP literals and reused connections)
 *
 * evhttp has no connect-only timeout and no phase reporting, so the fetch
 * keeps its own timer and watches the socket for the end of the connect.
 * Re-entrancy: evhttp_cancel_request() runs our error callback before it
 * returns, and evhttp_make_request() may run the response callback before
 * it returns; every such path checks f->state afterwards. */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>

#include "fetch.h"
#include "log.h"

static const enum evhttp_cmd_type evhttp_methods[] = {
	[METHOD_GET] = EVHTTP_REQ_GET,
	[METHOD_HEAD] = EVHTTP_REQ_HEAD,
	[METHOD_POST] = EVHTTP_REQ_POST,
	[METHOD_PUT] = EVHTTP_REQ_PUT,
	[METHOD_DELETE] = EVHTTP_REQ_DELETE,
	[METHOD_OPTIONS] = EVHTTP_REQ_OPTIONS,
	[METHOD_PATCH] = EVHTTP_REQ_PATCH,
};

static void connect_to(struct fetch *f, const char *addr);
static void send_request(struct fetch *f);

double fetch_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static char *format_dup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *format_dup(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

/* The timer exists only while the fetch holds a slot: a batch of 10,000
 * queued requests should not cost 10,000 events. */
static void arm_timer(struct fetch *f, double ms)
{
	struct timeval tv;

	if (f->timer == NULL)
		f->timer = evtimer_new(f->env->base, on_timer, f);
	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms - (double)tv.tv_sec * 1000) * 1000);
	evtimer_add(f->timer, &tv);
}

static const char *phase_of(enum fetch_state s)
{
	switch (s) {
	case FETCH_IDLE:
	case FETCH_QUEUED:
		return "queued";
	case FETCH_RESOLVING:
		return "dns";
	case FETCH_CONNECTING:
		return "connect";
	default:
		return "response";
	}
}

/* --- ending ------------------------------------------------------------ */

static void stop_timer(struct fetch *f)
{
	if (f->timer != NULL) {
		event_free(f->timer);   /* may be the running event: fine, not persistent */
		f->timer = NULL;
	}
}

static void stop_watch(struct fetch *f)
{
	if (f->connect_watch != NULL) {
		event_free(f->connect_watch);
		f->connect_watch = NULL;
	}
}

/* Abort whatever is under way: DNS, connect or exchange.  The connection
 * is closed (evhttp_cancel_request) and dropped, never reused. */
static void stop_exchange(struct fetch *f)
{
	struct evdns_getaddrinfo_request *dr = f->dns_req;
	struct evhttp_request *req = f->req;

	stop_timer(f);
	stop_watch(f);
	if (dr != NULL) {
		f->dns_req = NULL;
		evdns_getaddrinfo_cancel(dr);   /* calls on_resolved(CANCEL) now */
	}
	if (req != NULL) {
		f->req = NULL;
		evhttp_cancel_request(req);     /* calls on_error(CANCEL) now */
	}
	if (f->conn != NULL) {
		pool_release(f->conn, false);
		f->conn = NULL;
	}
}

static void record(struct fetch *f, enum outcome_type type, char *message,
                   const char *phase)
{
	f->out->type = type;
	free(f->out->message);
	f->out->message = message;
	f->out->phase = phase;
	f->out->timing.total_ms = fetch_now_ms() - f->t_start;
	outcome_body_trim(f->out);
	outcome_seal(f->out);
	f->up->totals[type]++;
}

/* Hand back the slots: the shared one first, then the batch's own. */
static void release_slots(struct fetch *f)
{
	if (f->has_slot) {
		f->has_slot = false;
		limit_sem_release(&f->up->sem);
	}
	if (f->has_batch_slot) {
		f->has_batch_slot = false;
		limit_sem_release(f->batch_sem);
	}
}

/* The natural end of a fetch: hand back the connection, tell the batch,
 * then hand back the slot, so a failing batch cancels its own queued
 * requests before the slot could be given to one of them. */
static void finish(struct fetch *f, enum outcome_type type, char *message,
                   const char *phase, bool reusable)
{
	stop_timer(f);
	stop_watch(f);
	if (f->conn != NULL) {
		pool_release(f->conn, reusable);
		f->conn = NULL;
	}
	record(f, type, message, phase);
	f->state = FETCH_DONE;
	f->done(f, f->done_arg);
	release_slots(f);
}

static void fail(struct fetch *f, enum outcome_type type, char *message)
{
	const char *phase = type == OUTCOME_TIMEOUT ? phase_of(f->state) : NULL;

	stop_exchange(f);
	finish(f, type, message, phase, false);
}

void fetch_abort(struct fetch *f, enum outcome_type type, const char *message)
{
	const char *phase = phase_of(f->state);

	if (f->state == FETCH_DONE)
		return;
	if (f->state == FETCH_QUEUED) {
		if (f->batch_sem != NULL && !f->has_batch_slot)
			limit_sem_cancel(f->batch_sem, &f->waiter);
		else
			limit_sem_cancel(&f->up->sem, &f->waiter);
	}
	stop_exchange(f);
	record(f, type, message ? strdup(message) : NULL,
	       type == OUTCOME_TIMEOUT ? phase : NULL);
	f->state = FETCH_DONE;
	release_slots(f);
}

/* --- timers and the connect watcher ------------------------------------ */

static bool socket_connected(struct fetch *f)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	evutil_socket_t fd;

	if (f->conn == NULL)
		return false;
	fd = bufferevent_getfd(evhttp_connection_get_bufferevent(f->conn->evcon));
	return fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
}

static void mark_connected(struct fetch *f)
{
	double now = fetch_now_ms();

	stop_watch(f);
	f->conn->open = true;
	f->t_connected = now;
	f->out->timing.connect_ms = now - f->t_granted;
	f->state = FETCH_WAITING;
	arm_timer(f, (double)f->timeout_ms - (now - f->t_granted));
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;
	long limit = f->timeout_ms;

	(void)fd;
	(void)what;
	/* the connect may have finished without the watcher seeing it */
	if (f->state == FETCH_CONNECTING && socket_connected(f)) {
		mark_connected(f);
		return;
	}
	if (f->state == FETCH_RESOLVING || f->state == FETCH_CONNECTING)
		limit = f->connect_timeout_ms;
	fail(f, OUTCOME_TIMEOUT, format_dup("no %s within %ld ms",
	     f->state == FETCH_RESOLVING ? "DNS answer" :
	     f->state == FETCH_CONNECTING ? "connection" : "complete answer", limit));
}

/* The socket became writable: the connect finished, one way or the other.
 * Don't read SO_ERROR: that would clear the error evhttp is about to see. */
static void on_connect_ready(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	(void)what;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		mark_connected(f);
		return;
	}
	f->refused = true;
	stop_watch(f);
}

static void watch_connect(struct fetch *f)
{
	evutil_socket_t fd;

	fd = bufferevent_getfd(evhttp_connection_get_bufferevent(f->conn->evcon));
	if (fd < 0)
		return;   /* the timer checks the socket instead */
	f->connect_watch = event_new(f->env->base, fd, EV_WRITE, on_connect_ready, f);
	event_add(f->connect_watch, NULL);
}

/* --- DNS and connect --------------------------------------------------- */

static bool is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void on_resolved(int result, struct evutil_addrinfo *ai, void *arg)
{
	struct fetch *f = arg;
	char addr[INET6_ADDRSTRLEN];
	const void *sin;

	f->dns_req = NULL;
	if (result == EVUTIL_EAI_CANCEL)
		return;   /* fetch_abort or a timeout is ending the fetch */
	if (result != 0 || ai == NULL) {
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		fail(f, OUTCOME_DNS, format_dup("cannot resolve %s: %s", f->item->host,
		                                evutil_gai_strerror(result)));
		return;
	}
	if (ai->ai_family == AF_INET6)
		sin = &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
	else
		sin = &((struct sockaddr_in *)ai->ai_addr)->sin_addr;
	inet_ntop(ai->ai_family, sin, addr, sizeof addr);
	evutil_freeaddrinfo(ai);
	connect_to(f, addr);
}

static void resolve(struct fetch *f)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *r;

	f->state = FETCH_RESOLVING;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	/* may answer at once (hosts file) and then returns NULL */
	r = evdns_getaddrinfo(f->env->dns, f->item->host, NULL, &hints, on_resolved, f);
	if (r != NULL)
		f->dns_req = r;
}

static void connect_to(struct fetch *f, const char *addr)
{
	f->conn = pool_open(f->up->pool, addr, f->up->port);
	if (f->conn == NULL) {
		fail(f, OUTCOME_CONNECT, format_dup("cannot create a connection to %s", addr));
		return;
	}
	f->state = FETCH_CONNECTING;
	send_request(f);
	if (f->state == FETCH_CONNECTING && f->connect_watch == NULL)
		watch_connect(f);
}

static void open_new(struct fetch *f)
{
	if (is_ip_literal(f->item->host))
		connect_to(f, f->item->host);
	else
		resolve(f);
}

/* --- the exchange ------------------------------------------------------ */

static int on_headers(struct evhttp_request *req, void *arg)
{
	struct fetch *f = arg;
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evkeyval *kv;
	const char *cl;
	unsigned long long n;

	if (f->state == FETCH_CONNECTING)
		mark_connected(f);
	f->state = FETCH_RECEIVING;
	f->out->timing.ttfb_ms = fetch_now_ms() - f->t_granted;
	f->out->status = evhttp_request_get_response_code(req);
	f->out->headers = json_object();
	TAILQ_FOREACH(kv, h, next)
		answer_add_header(f->out->headers, kv->key, kv->value);
	cl = evhttp_find_header(h, "Content-Length");
	if (cl == NULL)
		return 0;
	if (strtoull(cl, NULL, 10) > f->env->max_response_body) {
		f->pending_type = OUTCOME_TOO_LARGE;
		return -1;   /* evhttp fails the request: on_error, on_response */
	}
	/* size the body buffer once; a lying Content-Length costs at most 1 MiB
	 * up front, past that the buffer grows as bytes really arrive */
	n = strtoull(cl, NULL, 10);
	outcome_body_reserve(f->out, (size_t)(n < (1u << 20) ? n : (1u << 20)));
	return 0;
}

static void on_chunk(struct evhttp_request *req, void *arg)
{
	struct fetch *f = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);

	if (f->state == FETCH_DONE)
		return;
	if (f->body_len + len > f->env->max_response_body) {
		fail(f, OUTCOME_TOO_LARGE, format_dup("answer body over max_response_body "
		     "(%llu bytes)", (unsigned long long)f->env->max_response_body));
		return;
	}
	if (*f->batch_bytes + len > f->env->max_batch_response) {
		fail(f, OUTCOME_TOO_LARGE, format_dup("bodies of the batch over "
		     "max_batch_response (%llu bytes)",
		     (unsigned long long)f->env->max_batch_response));
		return;
	}
	f->body_len += len;
	*f->batch_bytes += len;
	outcome_body_append(f->out, in);
}

static void on_error(enum evhttp_request_error err, void *arg)
{
	struct fetch *f = arg;

	f->evhttp_error = (int)err;
	f->sock_errno = errno;
	f->req = NULL;   /* evhttp frees it */
}

/* Why an exchange produced no answer, from what the callbacks saw. */
static void classify_failure(struct fetch *f, enum outcome_type *type, char **msg)
{
	if (f->pending_type == OUTCOME_TOO_LARGE) {
		*type = OUTCOME_TOO_LARGE;
		*msg = format_dup("Content-Length over max_response_body (%llu bytes)",
		                  (unsigned long long)f->env->max_response_body);
		return;
	}
	if (f->state == FETCH_CONNECTING || f->refused) {
		*type = OUTCOME_CONNECT;
		*msg = format_dup("cannot connect to %s: %s", f->up->key,
		                  f->refused ? "connection refused" : "connection failed");
		return;
	}
	switch (f->evhttp_error) {
	case EVREQ_HTTP_INVALID_HEADER:
		*type = OUTCOME_PROTOCOL;
		*msg = strdup("malformed answer: bad status line or headers");
		return;
	case EVREQ_HTTP_DATA_TOO_LONG:
		if (f->state == FETCH_RECEIVING) {
			*type = OUTCOME_TOO_LARGE;
			*msg = format_dup("answer body over max_response_body (%llu bytes)",
			                  (unsigned long long)f->env->max_response_body);
		} else {
			*type = OUTCOME_PROTOCOL;
			*msg = strdup("malformed answer: headers too large");
		}
		return;
	case EVREQ_HTTP_TIMEOUT:
		*type = OUTCOME_TIMEOUT;
		*msg = strdup("no data from upstream");
		return;
	default:
		break;
	}
	if (f->state == FETCH_RECEIVING) {
		*type = OUTCOME_PROTOCOL;
		*msg = strdup("upstream closed the connection before the end of the body");
	} else if (f->sock_errno == ECONNRESET) {
		*type = OUTCOME_CONNECT;
		*msg = strdup("connection reset by upstream");
	} else {
		*type = OUTCOME_CONNECT;
		*msg = strdup("upstream closed the connection without answering");
	}
}

static bool idempotent(enum request_method m)
{
	return m != METHOD_POST && m != METHOD_PATCH;
}

static void on_response(struct evhttp_request *req, void *arg)
{
	struct fetch *f = arg;
	enum outcome_type type;
	char *msg = NULL;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	const char *ra, *line;

	f->req = NULL;   /* evhttp frees it when we return */
	if (f->state == FETCH_DONE)
		return;
	if (code == 0) {
		/* A kept-alive connection the upstream closed just as we sent:
		 * retry an idempotent request once on a new connection. */
		if (f->out->reused && f->state == FETCH_WAITING && !f->refused &&
		    f->evhttp_error == EVREQ_HTTP_EOF && idempotent(f->item->method)) {
			pool_release(f->conn, false);
			f->conn = NULL;
			f->out->reused = false;
			f->evhttp_error = -1;
			open_new(f);
			return;
		}
		classify_failure(f, &type, &msg);
		finish(f, type, msg, NULL, false);
		return;
	}
	f->out->timing.connect_ms = f->out->reused ? 0 : f->out->timing.connect_ms;
	if (code >= 200 && code < 300) {
		finish(f, OUTCOME_OK, NULL, NULL, true);
		return;
	}
	line = evhttp_request_get_response_code_line(req);
	msg = format_dup("upstream answered %d %s", code, line ? line : "");
	type = code == 429 ? OUTCOME_RATE_LIMITED : OUTCOME_HTTP_STATUS;
	ra = json_string_value(json_object_get(f->out->headers, "retry-after"));
	if (type == OUTCOME_RATE_LIMITED && ra != NULL &&
	    answer_parse_retry_after(ra, time(NULL), &f->out->retry_after_s) < 0)
		f->out->retry_after_s = -1;
	finish(f, type, msg, NULL, true);
}

static bool item_has_header(const struct request_item *it, const char *name)
{
	size_t i;

	for (i = 0; i < it->nheaders; i++)
		if (strcasecmp(it->headers[i].name, name) == 0)
			return true;
	return false;
}

static void add_headers(struct fetch *f, struct evkeyvalq *out)
{
	const struct request_item *it = f->item;
	char len[32];
	size_t i;

	if (!item_has_header(it, "Host"))
		evhttp_add_header(out, "Host", it->host_header);
	if (!item_has_header(it, "User-Agent"))
		evhttp_add_header(out, "User-Agent", "fanoutd/" PACKAGE_VERSION);
	if (!item_has_header(it, "Accept"))
		evhttp_add_header(out, "Accept", "*/*");
	for (i = 0; i < it->nheaders; i++)
		evhttp_add_header(out, it->headers[i].name, it->headers[i].value);
	if (it->body != NULL) {
		snprintf(len, sizeof len, "%zu", it->body_len);
		evhttp_add_header(out, "Content-Length", len);
	}
}

static void send_request(struct fetch *f)
{
	struct evhttp_request *req = evhttp_request_new(on_response, f);

	evhttp_request_set_header_cb(req, on_headers);
	evhttp_request_set_chunked_cb(req, on_chunk);
	evhttp_request_set_error_cb(req, on_error);
	add_headers(f, evhttp_request_get_output_headers(req));
	if (f->item->body != NULL)
		evbuffer_add(evhttp_request_get_output_buffer(req), f->item->body,
		             f->item->body_len);
	f->req = req;
	f->evhttp_error = -1;
	f->t_sent = fetch_now_ms();
	if (evhttp_make_request(f->conn->evcon, req, evhttp_methods[f->item->method],
	                        f->item->target) != 0) {
		f->req = NULL;
		if (f->state != FETCH_DONE)
			fail(f, OUTCOME_CONNECT, strdup("cannot start the request"));
	}
}

/* --- start ------------------------------------------------------------- */

static void begin(struct fetch *f)
{
	f->t_granted = fetch_now_ms();
	f->out->timing.queued_ms = f->t_granted - f->t_start;
	f->conn = pool_take_idle(f->up->pool);
	if (f->conn != NULL) {
		f->out->reused = true;
		f->state = FETCH_WAITING;
		arm_timer(f, (double)f->timeout_ms);
		send_request(f);
		return;
	}
	arm_timer(f, (double)f->connect_timeout_ms);
	open_new(f);
}

/* Take the batch's slot (if it has a cap), then the upstream's; either
 * may queue, and on_grant() comes back here. */
static void acquire(struct fetch *f)
{
	if (f->batch_sem != NULL && !f->has_batch_slot) {
		if (!limit_sem_acquire(f->batch_sem, &f->waiter))
			return;
		f->has_batch_slot = true;
	}
	if (!limit_sem_acquire(&f->up->sem, &f->waiter))
		return;
	f->has_slot = true;
	begin(f);
}

static void on_grant(struct limit_waiter *w, void *arg)
{
	struct fetch *f = arg;

	(void)w;
	if (f->batch_sem != NULL && !f->has_batch_slot) {
		f->has_batch_slot = true;
		acquire(f);
		return;
	}
	f->has_slot = true;
	begin(f);
}

void fetch_init(struct fetch *f, size_t index, const struct request_item *item,
                struct outcome *out, struct upstream *up, struct limit_sem *batch_sem,
                const struct fetch_env *env, fetch_done_fn done, void *done_arg)
{
	memset(f, 0, sizeof *f);
	f->index = index;
	f->item = item;
	f->out = out;
	f->up = up;
	f->batch_sem = batch_sem;
	f->env = env;
	f->done = done;
	f->done_arg = done_arg;
	f->evhttp_error = -1;
	f->timeout_ms = item->timeout_ms > 0 ? item->timeout_ms : up->request_timeout_ms;
	f->connect_timeout_ms = up->connect_timeout_ms < f->timeout_ms
	                        ? up->connect_timeout_ms : f->timeout_ms;
	limit_waiter_init(&f->waiter, on_grant, f);
}

void fetch_start(struct fetch *f)
{
	f->t_start = fetch_now_ms();
	f->state = FETCH_QUEUED;
	acquire(f);
}

bool fetch_is_done(const struct fetch *f)
{
	return f->state == FETCH_DONE;
}

void fetch_cleanup(struct fetch *f)
{
	stop_watch(f);
	stop_timer(f);
}
