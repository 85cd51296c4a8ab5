/* server: the local endpoint on libevhtp.
 *
 *   accept -> route -> POST /v1/batch: parse + validate -> pause the client
 *   request -> batch runs -> answer callback: reply + resume
 *
 * A paused evhtp request does not read, so a client that disconnects goes
 * unseen; we re-enable reading on its bufferevent so evhtp's error hook
 * fires, and abandon the batch then (see shared NOTES). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <evhtp/evhtp.h>
#include <jansson.h>

#include "accesslog.h"
#include "answer.h"
#include "auth.h"
#include "batch.h"
#include "clients.h"
#include "clock.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "server.h"

/* The answer goes out in pieces of about this size, the next one only
 * when the client has taken most of the last: a 10,000-entry answer is
 * never held whole. */
#define ANSWER_WINDOW (64 * 1024)

/* One running batch and the client request waiting for it. */
struct client_batch {
	TAILQ_ENTRY(client_batch) link;
	struct server *srv;
	evhtp_request_t *req;
	struct batch *batch;             /* ours once answering */
	bool answering;                  /* the answer is being streamed */
	struct event *pump;              /* writes the next piece */
	struct evbuffer_cb_entry *drained; /* on the client's output buffer */
	bool settled;                    /* mode "settled", for the outcome */
	double t_start;                  /* arrival, for elapsed_ms */
	struct accesslog_entry log;      /* client, n, status; the rest at the end */
};

/* The longest request line and headers the gate passes on. */
#define MAX_REQUEST_HEAD (64 * 1024)

struct server {
	struct event_base *base;
	const struct config *cfg;            /* borrowed; main owns it */
	struct upstream_registry *reg;       /* borrowed */
	const struct fetch_env *env;         /* borrowed */
	const char *token;                   /* bearer token, borrowed; NULL = open */
	struct gate_limits gate_lim;         /* what every client's gate reads */
	struct listener *listeners[CONFIG_MAX_LISTEN];   /* owned */
	size_t nlisteners;
	/* dropped by a reload: stopped, but their connections still point at
	 * their evhtp instances, so they are freed only at exit (owned) */
	struct listener *retired[4 * CONFIG_MAX_LISTEN];
	size_t nretired;
	bool draining;
	bool closing;                        /* drained: client connections closing */
	struct event *closer;                /* runs close_clients() (owned) */
	size_t unanswered;                   /* batch requests not yet finished */
	TAILQ_HEAD(, client_batch) running;
	struct clients *clients;             /* open connections (owned) */
	struct event *trim;                  /* hands freed memory back when idle */
	void (*idle_cb)(void *);
	void *idle_arg;
};

/* A big batch leaves its memory in malloc's free lists: a second after
 * the last batch ends, hand it back to the kernel (an idle sidecar should
 * look idle), unless work came in meanwhile. */
static void on_trim(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	if (TAILQ_EMPTY(&s->running))
		malloc_trim(0);
}

static void batch_gone(struct server *s)
{
	struct timeval second = { 1, 0 };

	if (TAILQ_EMPTY(&s->running))
		evtimer_add(s->trim, &second);
}

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

static void check_idle(struct server *s)
{
	if (!s->draining || s->unanswered > 0 || s->idle_cb == NULL || s->closing)
		return;
	s->closing = true;
	event_active(s->closer, EV_TIMEOUT, 0);
}

/* --- replies ----------------------------------------------------------- */

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

static void reply_error(evhtp_request_t *req, int status, const char *error,
                        const char *message)
{
	struct server *s = req->htp->arg;   /* see new_htp() */
	struct evbuffer *body = evbuffer_new();

	metrics_count_rejected(s->env->metrics, error);
	answer_write_error(body, error, message);
	reply_json(req, status, body);
	evbuffer_free(body);
}

/* --- auth ---------------------------------------------------------------- */

static void reply_unauthorized(evhtp_request_t *req, enum auth_result why)
{
	if (why == AUTH_MISSING) {
		add_header(req, "WWW-Authenticate", "Bearer");
		reply_error(req, 401, "unauthorized", "send \"Authorization: Bearer <token>\"");
		return;
	}
	add_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	reply_error(req, 401, "unauthorized", "wrong bearer token");
}

/* false means it has answered 401. */
static bool check_auth(const struct server *s, evhtp_request_t *req)
{
	enum auth_result why = auth_check(s->token,
	                                  evhtp_header_find(req->headers_in, "Authorization"));

	if (why == AUTH_OK)
		return true;
	reply_unauthorized(req, why);
	return false;
}

/* --- /v1/batch ----------------------------------------------------------- */

static evhtp_res on_request_fini(evhtp_request_t *req, void *arg)
{
	struct server *s = arg;

	clients_request_done(req);   /* this hook hides the connection's */
	s->unanswered--;
	check_idle(s);
	return EVHTP_RES_OK;
}

/* The batch is over for its client: count it, and log it (access_log). */
static void batch_over(struct client_batch *cb, enum metrics_batch_outcome how)
{
	enum outcome_type type;
	size_t i;

	metrics_count_batch(cb->srv->env->metrics, how);
	if (!cb->srv->cfg->access_log)
		return;
	cb->log.outcome = metrics_batch_outcome_name(how);
	cb->log.elapsed_ms = clock_now_ms() - cb->t_start;
	cb->log.failed_index = -1;
	if (batch_first_failure(cb->batch, &i, &type)) {
		cb->log.failed_index = (long)i;
		cb->log.failed_type = outcome_type_name(type);
	}
	accesslog_write(&cb->log);
}

/* The answer is out (or the client is gone): let go of everything. */
static void end_answer(struct client_batch *cb)
{
	evhtp_request_t *req = cb->req;

	TAILQ_REMOVE(&cb->srv->running, cb, link);
	batch_gone(cb->srv);
	if (cb->drained != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(evhtp_request_get_bev(req)),
		                         cb->drained);
	if (cb->pump != NULL)
		event_free(cb->pump);
	batch_free(cb->batch);
	/* the error hook points at cb, which goes now */
	evhtp_request_set_hook(req, evhtp_hook_on_error, NULL, NULL);
	clients_answered(req);
	clients_resume(req);
	free(cb);
}

static void pump_answer(evutil_socket_t fd, short what, void *arg)
{
	struct client_batch *cb = arg;
	struct evbuffer *piece = evbuffer_new();
	bool done;

	(void)fd;
	(void)what;
	done = batch_answer_more(cb->batch, piece, ANSWER_WINDOW);
	metrics_count_bytes_out(cb->srv->env->metrics, evbuffer_get_length(piece));
	evhtp_send_reply_chunk(cb->req, piece);
	evbuffer_free(piece);
	if (!done)
		return;
	evhtp_send_reply_chunk_end(cb->req);
	batch_over(cb, metrics_batch_outcome_of(cb->log.status, cb->settled));
	end_answer(cb);
}

static void on_output_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                              void *arg)
{
	struct client_batch *cb = arg;

	if (info->n_deleted > 0 && evbuffer_get_length(buf) < ANSWER_WINDOW / 2)
		event_active(cb->pump, EV_TIMEOUT, 0);
}

/* Stream the rest with chunked encoding, paced by the client's reading; a
 * client that stops reading for client_timeout is cut off. */
static void start_stream(struct client_batch *cb, int status, struct evbuffer *first)
{
	struct server *s = cb->srv;
	struct bufferevent *bev = evhtp_request_get_bev(cb->req);
	struct timeval tv;

	evhtp_send_reply_chunk_start(cb->req, (evhtp_res)status);
	evhtp_send_reply_chunk(cb->req, first);
	tv = clock_timeval((double)s->cfg->client_timeout_ms);
	bufferevent_set_timeouts(bev, NULL, &tv);
	cb->pump = event_new(s->base, -1, 0, pump_answer, cb);
	cb->drained = evbuffer_add_cb(bufferevent_get_output(bev), on_output_drained, cb);
	/* the gate's filter may have taken the first piece already */
	if (evbuffer_get_length(bufferevent_get_output(bev)) < ANSWER_WINDOW / 2)
		event_active(cb->pump, EV_TIMEOUT, 0);
}

static void on_batch_answer(struct batch *b, int status, void *arg)
{
	struct client_batch *cb = arg;
	struct evbuffer *first = evbuffer_new();
	bool done;

	cb->answering = true;
	cb->log.status = status;
	done = batch_answer_more(b, first, ANSWER_WINDOW);
	add_header(cb->req, "Content-Type", "application/json");
	/* an HTTP/1.0 client cannot take chunks: it gets the answer whole */
	while (!done && cb->req->proto == EVHTP_PROTO_10)
		done = batch_answer_more(b, first, ANSWER_WINDOW);
	metrics_count_bytes_out(cb->srv->env->metrics, evbuffer_get_length(first));
	if (!done) {
		start_stream(cb, status, first);
		evbuffer_free(first);
		return;
	}
	evbuffer_add_buffer(cb->req->buffer_out, first);
	evbuffer_free(first);
	evhtp_send_reply(cb->req, (evhtp_res)status);
	batch_over(cb, metrics_batch_outcome_of(status, cb->settled));
	end_answer(cb);
}

static void on_client_error(evhtp_request_t *req, evhtp_error_flags errtype, void *arg)
{
	struct client_batch *cb = arg;

	(void)errtype;
	if (cb->answering) {
		log_debug("client went away while taking its answer");
		batch_over(cb, METRICS_BATCH_CLIENT_GONE);
		end_answer(cb);
		return;
	}
	log_debug("client went away: batch of %zu cancelled", batch_size(cb->batch));
	batch_over(cb, METRICS_BATCH_CLIENT_GONE);
	TAILQ_REMOVE(&cb->srv->running, cb, link);
	batch_gone(cb->srv);
	batch_abandon(cb->batch);
	evhtp_request_set_hook(req, evhtp_hook_on_error, NULL, NULL);
	evhtp_request_resume(req);
	free(cb);
}

/* Keep reading the paused request's socket, so a disconnect is seen. */
static void watch_client(evhtp_request_t *req, struct client_batch *cb)
{
	struct bufferevent *bev = evhtp_request_get_bev(req);

	evhtp_request_set_hook(req, evhtp_hook_on_error,
	                       (evhtp_hook)(void (*)(void))on_client_error, cb);
	bufferevent_setwatermark(bev, EV_READ, 0, 65536);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_enable(bev, EV_READ);
}

static void run_batch(struct server *s, evhtp_request_t *req, struct batch_request *br)
{
	struct client_batch *cb = calloc(1, sizeof *cb);
	struct batch_settings bs = { .batch_timeout_ms = s->cfg->batch_timeout_ms };

	if (cb == NULL)
		abort();
	cb->srv = s;
	cb->req = req;
	cb->settled = br->mode == BATCH_MODE_SETTLED;
	cb->t_start = clock_now_ms();
	cb->log.n = br->n;
	accesslog_client(cb->log.client, sizeof cb->log.client,
	                 evhtp_request_get_connection(req)->saddr);
	cb->batch = batch_new(br, s->reg, s->env, &bs, on_batch_answer, cb);
	TAILQ_INSERT_TAIL(&s->running, cb, link);
	s->unanswered++;
	evhtp_request_set_hook(req, evhtp_hook_on_request_fini,
	                       (evhtp_hook)on_request_fini, s);
	evhtp_request_pause(req);
	watch_client(req, cb);
	batch_start(cb->batch);
}

static void on_batch(struct server *s, evhtp_request_t *req)
{
	struct request_limits lim = { .max_batch_size = (size_t)s->cfg->max_batch_size,
	                              .acl = s->env->acl };
	struct batch_request br;
	char err[512];
	size_t len;
	const char *data;

	if (s->draining) {
		reply_error(req, 503, "draining", "fanoutd is shutting down");
		return;
	}
	len = evbuffer_get_length(req->buffer_in);
	metrics_count_bytes_in(s->env->metrics, len);
	data = len ? (const char *)evbuffer_pullup(req->buffer_in, -1) : "";
	if (request_parse(data, len, &lim, &br, err, sizeof err) < 0) {
		reply_error(req, 400, "invalid_request", err);
		return;
	}
	if (*s->env->queued + br.n > (size_t)s->cfg->max_queued) {
		if (br.n > (size_t)s->cfg->max_queued)
			snprintf(err, sizeof err, "a batch of %zu requests can never fit: "
			         "max_queued is %ld", br.n, s->cfg->max_queued);
		else
			snprintf(err, sizeof err, "%zu requests are waiting; %zu more would pass "
			         "max_queued (%ld)", *s->env->queued, br.n, s->cfg->max_queued);
		request_free(&br);
		reply_error(req, 503, "overloaded", err);
		return;
	}
	run_batch(s, req, &br);
}

/* --- the other routes ---------------------------------------------------- */

static void on_healthz(struct server *s, evhtp_request_t *req)
{
	json_t *body = json_pack("{ss}", "status", s->draining ? "draining" : "ok");
	char *text = json_dumps(body, JSON_COMPACT);
	struct evbuffer *out = evbuffer_new();

	if (text == NULL || out == NULL)
		abort();
	evbuffer_add(out, text, strlen(text));
	free(text);
	json_decref(body);
	reply_json(req, s->draining ? 503 : 200, out);
	evbuffer_free(out);
}

static void on_upstreams(struct server *s, evhtp_request_t *req)
{
	struct evbuffer *body = evbuffer_new();

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

/* The gate refused the request; its verdict is the answer, and the
 * connection closes after it. */
static void reply_refused(evhtp_request_t *req, struct gate_verdict v)
{
	close_after_reply(req);
	reply_error(req, v.status, v.status == 413 || v.status == 431 ? "request_too_large"
	                                                               : "invalid_request",
	            v.message);
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
		reply_refused(req, v);
		return;
	}
	r = find_route(path_of(req));
	if ((r == NULL || !r->open) && !check_auth(s, req))
		return;
	if (r == NULL) {
		snprintf(msg, sizeof msg, "no such endpoint: %.200s", path_of(req));
		reply_error(req, 404, "not_found", msg);
		return;
	}
	if (v.status != 0) {
		reply_refused(req, v);
		return;
	}
	if (evhtp_request_get_method(req) > htp_method_PATCH || !(r->methods & m)) {
		add_header(req, "Allow", r->allow);
		snprintf(msg, sizeof msg, "use %s for %s", r->allow, r->path);
		reply_error(req, 405, "method_not_allowed", msg);
		return;
	}
	r->handle(s, req);
}

/* --- listeners ----------------------------------------------------------- */

static evhtp_res on_accept(evhtp_connection_t *conn, void *arg)
{
	struct server *s = arg;

	clients_accepted(s->clients, conn, s->cfg->client_timeout_ms);
	return EVHTP_RES_OK;
}

/* Every request: it is whole (stop the slow-client clock), route it, and
 * restart the clock unless it now waits for a batch (end_answer()
 * restarts it then). */
static void dispatch(evhtp_request_t *req, void *arg)
{
	struct server *s = arg;

	clients_request_in(req);
	route(s, req);
	if (req->status != EVHTP_RES_PAUSE)
		clients_answered(req);
}

/* One callback for every path: route() matches paths exactly, where
 * evhtp_set_cb() would match prefixes.  The body size is the gate's to
 * check (it reads max_request_body per request, so a reload applies). */
static evhtp_t *new_htp(struct server *s)
{
	evhtp_t *htp = evhtp_new(s->base, s);   /* reply_error() finds s there */
	struct timeval client_tv;

	client_tv = clock_timeval((double)s->cfg->client_timeout_ms);
	evhtp_set_timeouts(htp, &client_tv, &client_tv);
	evhtp_set_gencb(htp, dispatch, s);
	evhtp_set_post_accept_cb(htp, on_accept, s);
	return htp;
}

static int add_listener(struct server *s, struct listener *l)
{
	if (l == NULL)
		return -1;
	s->listeners[s->nlisteners++] = l;
	return 0;
}

struct server *server_new(struct event_base *base, const struct config *cfg,
                          struct upstream_registry *reg, const struct fetch_env *env)
{
	struct server *s = calloc(1, sizeof *s);

	if (s == NULL)
		abort();
	s->base = base;
	s->cfg = cfg;
	s->reg = reg;
	s->env = env;
	TAILQ_INIT(&s->running);
	server_configure(s, cfg);
	s->clients = clients_new(base, &s->gate_lim);
	s->trim = evtimer_new(base, on_trim, s);
	s->closer = evtimer_new(base, close_clients, s);
	return s;
}

int server_listen(struct server *s, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < s->cfg->nlisten; i++)
		if (add_listener(s, listener_bind(new_htp(s), s->cfg->listen[i],
		                                  s->cfg->socket_mode, err, errlen)) < 0)
			return -1;
	return 0;
}

int server_listen_fds(struct server *s, const int *fds, size_t n, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s->nlisteners == CONFIG_MAX_LISTEN) {
			snprintf(err, errlen, "more than %d listeners", CONFIG_MAX_LISTEN);
			return -1;
		}
		if (add_listener(s, listener_adopt(new_htp(s), fds[i], err, errlen)) < 0)
			return -1;
	}
	return 0;
}

int server_relisten(struct server *s, const struct config *cfg, char *err, size_t errlen)
{
	struct listener *next[CONFIG_MAX_LISTEN], *l;
	bool fresh[CONFIG_MAX_LISTEN] = { false };
	size_t i, j, n = 0;

	if (s->nlisteners > 0 && listener_spec(s->listeners[0]) == NULL)
		return 0;   /* socket activation: systemd owns the sockets */
	for (i = 0; i < cfg->nlisten; i++) {
		if (listener_find(next, n, cfg->listen[i]) != NULL)
			continue;   /* the same address twice */
		next[n] = listener_find(s->listeners, s->nlisteners, cfg->listen[i]);
		if (next[n] == NULL) {
			next[n] = listener_bind(new_htp(s), cfg->listen[i], cfg->socket_mode,
			                        err, errlen);
			fresh[n] = true;
		}
		if (next[n] == NULL) {
			for (j = 0; j < n; j++)
				if (fresh[j])
					listener_free(next[j]);
			return -1;
		}
		n++;
	}
	for (i = 0; i < s->nlisteners; i++) {
		l = s->listeners[i];
		if (listener_find(next, n, listener_spec(l)) != NULL)
			continue;
		log_info("no longer listening on %s", listener_spec(l));
		listener_stop(l);
		if (s->nretired < sizeof s->retired / sizeof *s->retired)
			s->retired[s->nretired++] = l;
		/* else: kept stopped and unfreed; reloads dropping 64 listeners */
	}
	memcpy(s->listeners, next, n * sizeof *next);
	s->nlisteners = n;
	return 0;
}

void server_configure(struct server *s, const struct config *cfg)
{
	s->cfg = cfg;
	s->gate_lim.max_body = cfg->max_request_body;
	s->gate_lim.max_head = MAX_REQUEST_HEAD;
}

void server_set_token(struct server *s, const char *token)
{
	s->token = token;
}

void server_drain(struct server *s, void (*idle_cb)(void *), void *arg)
{
	size_t i;

	s->draining = true;
	s->idle_cb = idle_cb;
	s->idle_arg = arg;
	for (i = 0; i < s->nlisteners; i++)
		listener_stop(s->listeners[i]);
	check_idle(s);
}

void server_cancel_all(struct server *s)
{
	struct client_batch *cb;

	TAILQ_FOREACH(cb, &s->running, link)
		batch_cancel(cb->batch);
}

void server_free(struct server *s)
{
	struct client_batch *cb;
	size_t i;

	while ((cb = TAILQ_FIRST(&s->running)) != NULL) {
		if (cb->answering) {
			end_answer(cb);
			continue;
		}
		TAILQ_REMOVE(&s->running, cb, link);
		evhtp_request_set_hook(cb->req, evhtp_hook_on_error, NULL, NULL);
		batch_abandon(cb->batch);
		free(cb);
	}
	clients_free(s->clients);
	event_free(s->trim);
	event_free(s->closer);
	for (i = 0; i < s->nlisteners; i++)
		listener_free(s->listeners[i]);
	for (i = 0; i < s->nretired; i++)
		listener_free(s->retired[i]);
	free(s);
}

/* Batch requests not finished yet: answered in full, or their client gone. */
size_t server_running(const struct server *s)
{
	return s->unanswered;
}
