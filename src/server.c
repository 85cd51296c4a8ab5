/* server: the local endpoint on libevhtp.  Every request goes one way:
 *
 *   clients (the gate) -> dispatch -> route: refused? token? path?
 *   method? -> a handler: /v1/batch parses and validates, then
 *   client_batch runs it; the others answer at once
 *
 * It owns the routing, the replies, and the shutdown order (draining:
 * stop accepting, let the batches finish, close the connections). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <evhtp/evhtp.h>
#include <jansson.h>

#include "answer.h"
#include "batch.h"
#include "auth.h"
#include "client_batch.h"
#include "clients.h"
#include "clock.h"
#include "httptoken.h"
#include "listeners.h"
#include "metrics.h"
#include "request.h"
#include "server.h"
#include "xalloc.h"

/* The longest request line and headers the gate passes on. */
#define MAX_REQUEST_HEAD (64 * 1024)

struct server {
	struct event_base *base;
	const struct config *cfg;            /* borrowed; main owns it */
	struct upstream_registry *reg;       /* borrowed */
	const struct fetch_env *env;         /* borrowed */
	const char *token;                   /* bearer token, borrowed; NULL = open */
	struct gate_limits gate_lim;         /* what every client's gate reads */
	struct listeners *listeners;         /* owned */
	struct clients *clients;             /* open connections (owned) */
	struct client_batches *batches;      /* running batches (owned) */
	bool draining;
	bool closing;                        /* drained: client connections closing */
	struct event *closer;                /* runs close_clients() (owned) */
	void (*idle_cb)(void *);
	void *idle_arg;
};

/* --- shutdown ------------------------------------------------------------ */

/* Draining and every batch answered: close the client connections (from
 * the loop, not from inside evhtp's callbacks), and say so once their
 * sockets have sent the last answers. */
static void close_clients(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	clients_close_all(s->clients, s->idle_cb, s->idle_arg);
}

static void check_idle(void *arg)
{
	struct server *s = arg;

	if (!s->draining || client_batches_unanswered(s->batches) > 0 ||
	    s->idle_cb == NULL || s->closing)
		return;
	s->closing = true;
	event_active(s->closer, EV_TIMEOUT, 0);
}

/* --- replies ------------------------------------------------------------- */

static void add_header(evhtp_request_t *req, const char *name, const char *value)
{
	evhtp_headers_add_header(req->headers_out, evhtp_header_new(name, value, 1, 1));
}

/* The connection closes once this answer is out.  (evhtp 1.2.18's
 * evhtp_request_set_keepalive(req, 0) does nothing.) */
static void close_after_reply(evhtp_request_t *req)
{
	req->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;
}

/* Every whole answer goes out here.  A HEAD gets the headers a GET would
 * get, Content-Length included, and no body (RFC 9110 9.3.2). */
static void send_reply(evhtp_request_t *req, int status)
{
	char len[24];

	if (evhtp_request_get_method(req) == htp_method_HEAD) {
		snprintf(len, sizeof len, "%zu", evbuffer_get_length(req->buffer_out));
		add_header(req, "Content-Length", len);
		evbuffer_drain(req->buffer_out, evbuffer_get_length(req->buffer_out));
	}
	evhtp_send_reply(req, (evhtp_res)status);
}

static void reply_json(evhtp_request_t *req, int status, struct evbuffer *body)
{
	add_header(req, "Content-Type", "application/json");
	evbuffer_add_buffer(req->buffer_out, body);
	send_reply(req, status);
}

static void reply_error(struct server *s, evhtp_request_t *req, int status,
                        const char *error, const char *message)
{
	struct evbuffer *body = xcheck(evbuffer_new());

	metrics_count_rejected(s->env->metrics, error);
	answer_write_error(body, error, message);
	reply_json(req, status, body);
	evbuffer_free(body);
}

/* false means it has answered 401. */
static bool check_auth(struct server *s, evhtp_request_t *req)
{
	enum auth_result why = auth_check(s->token,
	                                  evhtp_header_find(req->headers_in, "Authorization"));

	if (why == AUTH_OK)
		return true;
	if (why == AUTH_MISSING) {
		add_header(req, "WWW-Authenticate", "Bearer");
		reply_error(s, req, 401, "unauthorized", "send \"Authorization: Bearer <token>\"");
		return false;
	}
	add_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	reply_error(s, req, 401, "unauthorized", "wrong bearer token");
	return false;
}

/* --- the handlers ---------------------------------------------------------- */

/* The client asks for a streamed answer (SPEC 11): NDJSON over chunks,
 * which an HTTP/1.0 client cannot take (it gets the JSON answer). */
static bool wants_lines(evhtp_request_t *req)
{
	return req->proto != EVHTP_PROTO_10 &&
	       httptoken_accepts(evhtp_header_find(req->headers_in, "Accept"),
	                         "application/x-ndjson");
}

static void on_batch(struct server *s, evhtp_request_t *req)
{
	bool streamed = wants_lines(req);
	struct request_limits lim = { .max_batch_size = (size_t)s->cfg->max_batch_size,
	                              .acl = s->env->acl };
	struct batch_request br;
	char err[512];
	size_t len, queues;
	const char *data;

	if (streamed) {
		lim.max_batch_size = (size_t)s->cfg->max_stream_batch_size;
		lim.batch_size_key = "max_stream_batch_size";
	}

	if (s->draining) {
		reply_error(s, req, 503, "draining", "fanoutd is shutting down");
		return;
	}
	len = evbuffer_get_length(req->buffer_in);
	metrics_count_bytes_in(s->env->metrics, len);
	data = len ? (const char *)evbuffer_pullup(req->buffer_in, -1) : "";
	if (request_parse(data, len, &lim, &br, err, sizeof err) < 0) {
		reply_error(s, req, 400, "invalid_request", err);
		return;
	}
	/* a streamed batch queues at most its window at once */
	queues = br.n;
	if (streamed && queues > batch_stream_window(s->cfg->global_concurrency))
		queues = batch_stream_window(s->cfg->global_concurrency);
	if (*s->env->queued + queues > (size_t)s->cfg->max_queued) {
		if (queues > (size_t)s->cfg->max_queued)
			snprintf(err, sizeof err, "a batch of %zu requests can never fit: "
			         "max_queued is %ld", br.n, s->cfg->max_queued);
		else
			snprintf(err, sizeof err, "%zu requests are waiting; %zu more would pass "
			         "max_queued (%ld)", *s->env->queued, queues, s->cfg->max_queued);
		request_free(&br);
		reply_error(s, req, 503, "overloaded", err);
		return;
	}
	client_batch_run(s->batches, req, &br, streamed);
}

static void on_healthz(struct server *s, evhtp_request_t *req)
{
	json_t *body = xcheck(json_pack("{ss}", "status", s->draining ? "draining" : "ok"));
	char *text = xcheck(json_dumps(body, JSON_COMPACT));
	struct evbuffer *out = xcheck(evbuffer_new());

	evbuffer_add(out, text, strlen(text));
	free(text);
	json_decref(body);
	reply_json(req, s->draining ? 503 : 200, out);
	evbuffer_free(out);
}

static void on_upstreams(struct server *s, evhtp_request_t *req)
{
	struct evbuffer *body = xcheck(evbuffer_new());

	upstream_registry_write_json(s->reg, body);
	reply_json(req, 200, body);
	evbuffer_free(body);
}

static void on_metrics(struct server *s, evhtp_request_t *req)
{
	metrics_render(s->env->metrics, s->reg, s->env, req->buffer_out);
	add_header(req, "Content-Type", METRICS_CONTENT_TYPE);
	send_reply(req, 200);
}

/* --- routing ------------------------------------------------------------- */

#define M_GET (1u << htp_method_GET)
#define M_HEAD (1u << htp_method_HEAD)
#define M_POST (1u << htp_method_POST)

/* Paths match exactly ("/v1/batchx" and "/v1/batch;x" are 404); the
 * query string is not part of the path. */
struct route {
	const char *path;
	unsigned methods;      /* M_* bits */
	const char *allow;     /* the Allow header of a 405 */
	bool open;             /* served without the bearer token */
	void (*handle)(struct server *, evhtp_request_t *);
};

static const struct route routes[] = {
	{ "/v1/batch", M_POST, "POST", false, on_batch },
	{ "/healthz", M_GET | M_HEAD, "GET, HEAD", true, on_healthz },
	{ "/v1/upstreams", M_GET | M_HEAD, "GET, HEAD", false, on_upstreams },
	{ "/metrics", M_GET | M_HEAD, "GET, HEAD", false, on_metrics },
};

static const struct route *find_route(const char *path)
{
	size_t i;

	for (i = 0; i < sizeof routes / sizeof *routes; i++)
		if (strcmp(routes[i].path, path) == 0)
			return &routes[i];
	return NULL;
}

static const char *path_of(evhtp_request_t *req)
{
	if (req->uri && req->uri->path && req->uri->path->full)
		return req->uri->path->full;
	return "?";
}

/* The gate refused the request; its verdict is the answer. */
static void reply_refused(struct server *s, evhtp_request_t *req, struct gate_verdict v)
{
	const char *error = v.status == 413 || v.status == 414 || v.status == 431
	                    ? "request_too_large" : "invalid_request";

	reply_error(s, req, v.status, error, v.message);
}

/* What every request goes through, in this order: a request the gate
 * refused as malformed; the token (so a client without it learns nothing,
 * not even which paths exist); the path; the body size; the method. */
static void route(struct server *s, evhtp_request_t *req)
{
	struct gate_verdict v = clients_verdict(req);
	const struct route *r;
	char msg[300];
	unsigned m = 1u << evhtp_request_get_method(req);

	if (v.status != 0 && v.status != 413) {
		reply_refused(s, req, v);
		return;
	}
	r = find_route(path_of(req));
	if ((r == NULL || !r->open) && !check_auth(s, req))
		return;
	if (r == NULL) {
		snprintf(msg, sizeof msg, "no such endpoint: %.200s", path_of(req));
		reply_error(s, req, 404, "not_found", msg);
		return;
	}
	if (v.status != 0) {
		reply_refused(s, req, v);
		return;
	}
	if (evhtp_request_get_method(req) > htp_method_PATCH || !(r->methods & m)) {
		add_header(req, "Allow", r->allow);
		snprintf(msg, sizeof msg, "use %s for %s", r->allow, r->path);
		reply_error(s, req, 405, "method_not_allowed", msg);
		return;
	}
	r->handle(s, req);
}

/* Every request: it is whole (stop the slow-client clock), and routed.
 * The clock runs again once evhtp is done with it (clients.c). */
static void dispatch(evhtp_request_t *req, void *arg)
{
	struct server *s = arg;

	clients_request_in(req);
	/* the gate passes nothing more: the answer says the connection closes */
	if (clients_closing(req))
		close_after_reply(req);
	route(s, req);
}

static evhtp_res on_accept(evhtp_connection_t *conn, void *arg)
{
	struct server *s = arg;

	clients_accepted(s->clients, conn, s->cfg->client_timeout_ms);
	return EVHTP_RES_OK;
}

/* One callback for every path: route() matches paths exactly, where
 * evhtp_set_cb() would match prefixes.  The body size is the gate's to
 * check (it reads max_request_body per request, so a reload applies). */
static evhtp_t *new_htp(void *arg)
{
	struct server *s = arg;
	evhtp_t *htp = xcheck(evhtp_new(s->base, s));
	struct timeval client_tv = clock_timeval((double)s->cfg->client_timeout_ms);

	evhtp_set_timeouts(htp, &client_tv, &client_tv);
	evhtp_set_gencb(htp, dispatch, s);
	evhtp_set_post_accept_cb(htp, on_accept, s);
	return htp;
}

/* --- the server ---------------------------------------------------------- */

struct server *server_new(struct event_base *base, const struct config *cfg,
                          struct upstream_registry *reg, const struct fetch_env *env)
{
	struct server *s = xcalloc(1, sizeof *s);

	s->base = base;
	s->reg = reg;
	s->env = env;
	s->listeners = listeners_new(new_htp, s);
	s->clients = clients_new(base, &s->gate_lim);
	s->batches = client_batches_new(base, reg, env, check_idle, s);
	s->closer = xcheck(evtimer_new(base, close_clients, s));
	server_configure(s, cfg);
	return s;
}

int server_listen(struct server *s, char *err, size_t errlen)
{
	return listeners_bind(s->listeners, s->cfg, err, errlen);
}

int server_listen_fds(struct server *s, const int *fds, size_t n, char *err, size_t errlen)
{
	return listeners_adopt(s->listeners, fds, n, err, errlen);
}

int server_relisten(struct server *s, const struct config *cfg, char *err, size_t errlen)
{
	return listeners_reload(s->listeners, cfg, s->clients, err, errlen);
}

void server_configure(struct server *s, const struct config *cfg)
{
	s->cfg = cfg;
	s->gate_lim.max_body = cfg->max_request_body;
	s->gate_lim.max_head = MAX_REQUEST_HEAD;
	client_batches_configure(s->batches, cfg);
}

void server_set_token(struct server *s, const char *token)
{
	s->token = token;
}

void server_drain(struct server *s, void (*idle_cb)(void *), void *arg)
{
	s->draining = true;
	s->idle_cb = idle_cb;
	s->idle_arg = arg;
	listeners_stop(s->listeners);
	check_idle(s);
}

void server_cancel_all(struct server *s)
{
	client_batches_cancel_all(s->batches);
}

void server_free(struct server *s)
{
	client_batches_free(s->batches);
	clients_free(s->clients);
	event_free(s->closer);
	listeners_free(s->listeners);
	free(s);
}

/* Batch requests not finished yet: answered in full, or their client gone. */
size_t server_running(const struct server *s)
{
	return client_batches_unanswered(s->batches);
}
