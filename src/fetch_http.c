/* fetch_http: the HTTP exchange of one fetch through evhttp: build the
 * request, take the answer's headers and body as they arrive, and turn
 * evhttp's ways of failing into the error types of the answer.
 * Re-entrancy: evhttp_make_request() may call on_response() before it
 * returns (a connect that fails at once); callers check f->state. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>

#include "answer.h"
#include "clock.h"
#include "fetch_internal.h"
#include "tls.h"
#include "xalloc.h"

#define MAX_HEADER_LINES 1000

static const enum evhttp_cmd_type evhttp_methods[] = {
	[REQUEST_METHOD_GET] = EVHTTP_REQ_GET,
	[REQUEST_METHOD_HEAD] = EVHTTP_REQ_HEAD,
	[REQUEST_METHOD_POST] = EVHTTP_REQ_POST,
	[REQUEST_METHOD_PUT] = EVHTTP_REQ_PUT,
	[REQUEST_METHOD_DELETE] = EVHTTP_REQ_DELETE,
	[REQUEST_METHOD_OPTIONS] = EVHTTP_REQ_OPTIONS,
	[REQUEST_METHOD_PATCH] = EVHTTP_REQ_PATCH,
};

/* --- the answer as it arrives ------------------------------------------ */

static int on_headers(struct evhttp_request *req, void *arg)
{
	struct fetch *f = arg;
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evkeyval *kv;
	const char *cl;
	unsigned long long n;
	int lines = 0, code;

	fetch_mark_connected(f);   /* in case the watchers missed it */
	code = evhttp_request_get_response_code(req);
	if (code >= 100 && code < 200)
		return 0;   /* an interim answer: the real one follows */
	fetch_set_state(f, FETCH_RECEIVING);
	f->out->timing.ttfb_ms = clock_now_ms() - f->t_granted;
	f->out->status = code;
	json_decref(f->out->headers);
	f->out->headers = json_object();
	TAILQ_FOREACH(kv, h, next) {
		/* joining repeats costs time per line: a flood of header lines is
		 * an attack on the event loop, not an answer */
		if (++lines > MAX_HEADER_LINES) {
			f->pending_type = OUTCOME_PROTOCOL;
			return -1;
		}
		answer_add_header(f->out->headers, kv->key, kv->value);
	}
	cl = evhttp_find_header(h, "Content-Length");
	/* no body follows whatever Content-Length says */
	if (cl == NULL || f->item->method == REQUEST_METHOD_HEAD || code == 204 || code == 304)
		return 0;
	n = strtoull(cl, NULL, 10);
	if (n > f->env->max_response_body) {
		f->pending_type = OUTCOME_TOO_LARGE;
		return -1;   /* evhttp fails the request: on_error, on_response */
	}
	/* size the body buffer once; a lying Content-Length costs at most 1 MiB
	 * up front, past that the buffer grows as bytes really arrive */
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
		fetch_fail(f, OUTCOME_TOO_LARGE, xasprintf("answer body over "
		           "max_response_body (%llu bytes)",
		           (unsigned long long)f->env->max_response_body));
		return;
	}
	if (*f->batch_bytes + len > f->env->max_batch_response) {
		fetch_fail(f, OUTCOME_TOO_LARGE, xasprintf("bodies of the batch over "
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
	if (err != EVREQ_HTTP_REQUEST_CANCEL)   /* ours: the reason is known */
		f->sock_errno = errno;
	f->req = NULL;   /* evhttp frees it */
}

/* --- why it failed ----------------------------------------------------- */

/* The reason a connect failed.  Our watcher reads it from SO_ERROR when
 * it sees the failure first.  When libevent saw it first, the error was
 * consumed there: the only error libevent fails a connect() with at once
 * and reports later (by a deferred callback, errno by then evhttp's
 * clean-up's, typically ENOTCONN) is ECONNREFUSED, as loopback gives;
 * other immediate failures come back synchronously with errno intact. */
static int connect_errno(int e)
{
	switch (e) {
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ETIMEDOUT:
	case EADDRNOTAVAIL:
	case EMFILE:
	case ENFILE:
		return e;
	default:
		return ECONNREFUSED;
	}
}

char *fetch_connect_message(struct fetch *f)
{
	int e = connect_errno(f->sock_errno);
	const char *why;

	switch (e) {
	case ECONNREFUSED:
		why = "connection refused";
		break;
	case EHOSTUNREACH:
	case ENETUNREACH:
		why = "host unreachable";
		break;
	case ECONNRESET:
		why = "connection reset";
		break;
	case ETIMEDOUT:
		why = "connection timed out";
		break;
	default:
		why = e ? strerror(e) : "connection failed";
		break;
	}
	return xasprintf("cannot connect to %s: %s", f->up->key, why);
}

static char *tls_message(struct fetch *f)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(f->conn->evcon);

	return tls_failure_message(f->conn->ssl, bufferevent_get_openssl_error(bev));
}

/* Why an exchange produced no answer, from what the callbacks saw. */
static void classify_failure(struct fetch *f, enum outcome_type *type, char **msg)
{
	if (f->pending_type == OUTCOME_TOO_LARGE) {
		*type = OUTCOME_TOO_LARGE;
		*msg = xasprintf("Content-Length over max_response_body (%llu bytes)",
		                 (unsigned long long)f->env->max_response_body);
		return;
	}
	if (f->pending_type == OUTCOME_PROTOCOL) {
		*type = OUTCOME_PROTOCOL;
		*msg = xasprintf("malformed answer: more than %d header lines",
		                 MAX_HEADER_LINES);
		return;
	}
	if (f->state == FETCH_CONNECTING || (f->connect_failed && f->state != FETCH_HANDSHAKE)) {
		*type = OUTCOME_CONNECT;
		*msg = fetch_connect_message(f);
		return;
	}
	if (f->state == FETCH_HANDSHAKE) {
		*type = OUTCOME_TLS;
		*msg = tls_message(f);
		return;
	}
	switch (f->evhttp_error) {
	case EVREQ_HTTP_INVALID_HEADER:
		*type = OUTCOME_PROTOCOL;
		*msg = xstrdup("malformed answer: bad status line or headers "
		              "(or more than 64 KiB of them)");
		return;
	case EVREQ_HTTP_DATA_TOO_LONG:
		if (f->state == FETCH_RECEIVING) {
			*type = OUTCOME_TOO_LARGE;
			*msg = xasprintf("answer body over max_response_body (%llu bytes)",
			                 (unsigned long long)f->env->max_response_body);
		} else {
			*type = OUTCOME_PROTOCOL;
			*msg = xstrdup("malformed answer: headers too large");
		}
		return;
	case EVREQ_HTTP_TIMEOUT:
		*type = OUTCOME_TIMEOUT;
		*msg = xstrdup("no data from upstream");
		return;
	default:
		break;
	}
	if (f->state == FETCH_RECEIVING) {
		*type = OUTCOME_PROTOCOL;
		*msg = xstrdup("upstream closed the connection before the end of the body");
	} else if (f->sock_errno == ECONNRESET) {
		*type = OUTCOME_CONNECT;
		*msg = xstrdup("connection reset by upstream");
	} else {
		*type = OUTCOME_CONNECT;
		*msg = xstrdup("upstream closed the connection without answering");
	}
}

/* Was the end of the answer marked (Content-Length, chunked, or no body
 * at all)?  One that ended with the connection cannot be followed by
 * another on it, even if evhttp has not said it is closed yet. */
static bool framed(const struct fetch *f, int code)
{
	const char *te = json_string_value(json_object_get(f->out->headers,
	                                                   "transfer-encoding"));

	if (f->item->method == REQUEST_METHOD_HEAD || code == 204 || code == 304)
		return true;
	return json_object_get(f->out->headers, "content-length") != NULL ||
	       (te != NULL && strcasestr(te, "chunked") != NULL);
}

static bool idempotent(enum request_method m)
{
	return m != REQUEST_METHOD_POST && m != REQUEST_METHOD_PATCH;
}

static void on_failure(struct fetch *f)
{
	enum outcome_type type;
	char *msg;

	/* A kept-alive connection the upstream closed just as we sent:
	 * retry an idempotent request once on a new connection. */
	if (f->out->reused && f->state == FETCH_WAITING && !f->retried &&
	    f->evhttp_error == EVREQ_HTTP_EOF && idempotent(f->item->method)) {
		fetch_reopen(f);
		return;
	}
	/* evhttp could not even make the socket (we asked the pool first,
	 * but another process may have taken the last one: ENFILE) */
	if (f->state == FETCH_CONNECTING &&
	    (f->sock_errno == EMFILE || f->sock_errno == ENFILE)) {
		fetch_wait_fd(f);
		return;
	}
	/* Refused or unreachable: the name may have another address. */
	if (f->state == FETCH_CONNECTING && fetch_next_address(f))
		return;
	classify_failure(f, &type, &msg);
	fetch_finish(f, type, msg, NULL, false);
}

static void on_response(struct evhttp_request *req, void *arg)
{
	struct fetch *f = arg;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	enum outcome_type type;
	const char *ra, *line;
	char *msg;

	if (code == 0 && f->evhttp_error < 0 && !f->connect_failed)
		f->sock_errno = errno;
	f->req = NULL;   /* evhttp frees it when we return */
	if (f->state == FETCH_DONE)
		return;
	if (code == 0) {
		on_failure(f);
		return;
	}
	if (f->out->reused)
		f->out->timing.connect_ms = 0;
	if (code >= 200 && code < 300) {
		fetch_finish(f, OUTCOME_OK, NULL, NULL, framed(f, code));
		return;
	}
	line = evhttp_request_get_response_code_line(req);
	msg = xasprintf("upstream answered %d %s", code, line ? line : "");
	type = code == 429 ? OUTCOME_RATE_LIMITED : OUTCOME_HTTP_STATUS;
	ra = json_string_value(json_object_get(f->out->headers, "retry-after"));
	if (type == OUTCOME_RATE_LIMITED && ra != NULL &&
	    answer_parse_retry_after(ra, time(NULL), &f->out->retry_after_s) < 0)
		f->out->retry_after_s = -1;
	fetch_finish(f, type, msg, NULL, framed(f, code));
}

/* --- the request ------------------------------------------------------- */

static void add_headers(struct fetch *f, struct evkeyvalq *out)
{
	const struct request_item *it = f->item;
	char len[32];
	size_t i;

	if (!request_item_has_header(it, "Host"))
		evhttp_add_header(out, "Host", it->host_header);
	if (!request_item_has_header(it, "User-Agent"))
		evhttp_add_header(out, "User-Agent", "fanoutd/" PACKAGE_VERSION);
	if (!request_item_has_header(it, "Accept"))
		evhttp_add_header(out, "Accept", "*/*");
	for (i = 0; i < it->nheaders; i++)
		evhttp_add_header(out, it->headers[i].name, it->headers[i].value);
	if (it->body != NULL) {
		snprintf(len, sizeof len, "%zu", it->body_len);
		evhttp_add_header(out, "Content-Length", len);
	}
}

void fetch_send(struct fetch *f)
{
	struct evhttp_request *req = xcheck(evhttp_request_new(on_response, f));

	evhttp_request_set_header_cb(req, on_headers);
	evhttp_request_set_chunked_cb(req, on_chunk);
	evhttp_request_set_error_cb(req, on_error);
	add_headers(f, evhttp_request_get_output_headers(req));
	if (f->item->body != NULL)
		evbuffer_add(evhttp_request_get_output_buffer(req), f->item->body,
		             f->item->body_len);
	f->req = req;
	f->evhttp_error = -1;
	f->sock_errno = 0;
	if (evhttp_make_request(f->conn->evcon, req, evhttp_methods[f->item->method],
	                        f->item->target) != 0) {
		f->req = NULL;
		if (f->state != FETCH_DONE)
			fetch_fail(f, OUTCOME_CONNECT, xstrdup("cannot start the request"));
	}
}
