/* server: the local endpoint on libevhtp.
 *
 *   accept -> route -> POST /v1/batch: parse + validate -> pause the client
 *   request -> batch runs -> answer callback: reply + resume
 *
 * A paused evhtp request does not read, so a client that disconnects goes
 * unseen; we re-enable reading on its bufferevent so evhtp's error hook
 * fires, and abandon the batch then (see shared NOTES). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <evhtp/evhtp.h>

#include "answer.h"
#include "batch.h"
#include "log.h"
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
};

/* One open client connection: evhtp keeps no list, so at exit we free
 * the ones still open ourselves. */
struct client_conn {
	TAILQ_ENTRY(client_conn) link;
	struct server *srv;
	evhtp_connection_t *conn;
};

struct server {
	struct event_base *base;
	const struct config *cfg;            /* borrowed; main owns it */
	struct upstream_registry *reg;       /* borrowed */
	const struct fetch_env *env;         /* borrowed */
	evhtp_t *htp[CONFIG_MAX_LISTEN];     /* one per listener, owned */
	char *unix_paths[CONFIG_MAX_LISTEN]; /* to unlink at exit, owned */
	size_t nhtp;
	bool draining;
	size_t unanswered;                   /* batch requests not yet finished */
	TAILQ_HEAD(, client_batch) running;
	TAILQ_HEAD(, client_conn) conns;
	void (*idle_cb)(void *);
	void *idle_arg;
};

static void check_idle(struct server *s)
{
	void (*cb)(void *) = s->idle_cb;

	if (!s->draining || s->unanswered > 0 || cb == NULL)
		return;
	s->idle_cb = NULL;
	cb(s->idle_arg);
}

/* --- replies ----------------------------------------------------------- */

static void add_header(evhtp_request_t *req, const char *name, const char *value)
{
	evhtp_headers_add_header(req->headers_out, evhtp_header_new(name, value, 1, 1));
}

static void reply_json(evhtp_request_t *req, int status, struct evbuffer *body)
{
	add_header(req, "Content-Type", "application/json");
	evbuffer_add_buffer(req->buffer_out, body);
	evhtp_send_reply(req, (evhtp_res)status);
}

static void reply_error(evhtp_request_t *req, int status, const char *error,
                        const char *message)
{
	struct evbuffer *body = evbuffer_new();

	answer_write_error(body, error, message);
	reply_json(req, status, body);
	evbuffer_free(body);
}

/* --- /v1/batch ----------------------------------------------------------- */

static evhtp_res on_request_fini(evhtp_request_t *req, void *arg)
{
	struct server *s = arg;

	(void)req;
	s->unanswered--;
	check_idle(s);
	return EVHTP_RES_OK;
}

/* The answer is out (or the client is gone): let go of everything. */
static void end_answer(struct client_batch *cb)
{
	evhtp_request_t *req = cb->req;

	TAILQ_REMOVE(&cb->srv->running, cb, link);
	if (cb->drained != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(evhtp_request_get_bev(req)),
		                         cb->drained);
	if (cb->pump != NULL)
		event_free(cb->pump);
	batch_free(cb->batch);
	/* the error hook points at cb, which goes now */
	evhtp_request_set_hook(req, evhtp_hook_on_error, NULL, NULL);
	evhtp_request_resume(req);
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
	evhtp_send_reply_chunk(cb->req, piece);
	evbuffer_free(piece);
	if (!done)
		return;
	evhtp_send_reply_chunk_end(cb->req);
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
	tv.tv_sec = s->cfg->client_timeout_ms / 1000;
	tv.tv_usec = (s->cfg->client_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(bev, NULL, &tv);
	cb->pump = event_new(s->base, -1, 0, pump_answer, cb);
	cb->drained = evbuffer_add_cb(bufferevent_get_output(bev), on_output_drained, cb);
}

static void on_batch_answer(struct batch *b, int status, void *arg)
{
	struct client_batch *cb = arg;
	struct evbuffer *first = evbuffer_new();
	bool done;

	cb->answering = true;
	done = batch_answer_more(b, first, ANSWER_WINDOW);
	add_header(cb->req, "Content-Type", "application/json");
	/* an HTTP/1.0 client cannot take chunks: it gets the answer whole */
	while (!done && cb->req->proto == EVHTP_PROTO_10)
		done = batch_answer_more(b, first, ANSWER_WINDOW);
	if (!done) {
		start_stream(cb, status, first);
		evbuffer_free(first);
		return;
	}
	evbuffer_add_buffer(cb->req->buffer_out, first);
	evbuffer_free(first);
	evhtp_send_reply(cb->req, (evhtp_res)status);
	end_answer(cb);
}

static void on_client_error(evhtp_request_t *req, evhtp_error_flags errtype, void *arg)
{
	struct client_batch *cb = arg;

	(void)errtype;
	if (cb->answering) {
		log_debug("client went away while taking its answer");
		end_answer(cb);
		return;
	}
	log_debug("client went away: batch of %zu cancelled", batch_size(cb->batch));
	TAILQ_REMOVE(&cb->srv->running, cb, link);
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
	cb->batch = batch_new(br, s->reg, s->env, &bs, on_batch_answer, cb);
	TAILQ_INSERT_TAIL(&s->running, cb, link);
	s->unanswered++;
	evhtp_request_set_hook(req, evhtp_hook_on_request_fini,
	                       (evhtp_hook)on_request_fini, s);
	evhtp_request_pause(req);
	watch_client(req, cb);
	batch_start(cb->batch);
}

static void on_batch(evhtp_request_t *req, void *arg)
{
	struct server *s = arg;
	struct request_limits lim = { .max_batch_size = (size_t)s->cfg->max_batch_size };
	struct batch_request br;
	char err[512];
	size_t len;
	const char *data;

	if (evhtp_request_get_method(req) != htp_method_POST) {
		add_header(req, "Allow", "POST");
		reply_error(req, 405, "method_not_allowed", "use POST for /v1/batch");
		return;
	}
	if (s->draining) {
		reply_error(req, 503, "draining", "fanoutd is shutting down");
		return;
	}
	len = evbuffer_get_length(req->buffer_in);
	if (len > s->cfg->max_request_body) {
		reply_error(req, 413, "request_too_large", "request body over max_request_body");
		return;
	}
	data = len ? (const char *)evbuffer_pullup(req->buffer_in, -1) : "";
	if (request_parse(data, len, &lim, &br, err, sizeof err) < 0) {
		reply_error(req, 400, "invalid_request", err);
		return;
	}
	run_batch(s, req, &br);
}

/* Answer 413 from the headers alone, before the body is read. */
static void resume_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhtp_request_resume(arg);
}

static evhtp_res on_batch_headers(evhtp_request_t *req, evhtp_headers_t *hdr, void *arg)
{
	struct server *s = arg;
	const char *cl = evhtp_header_find(hdr, "Content-Length");
	struct timeval zero = { 0, 0 };

	if (cl == NULL || strtoull(cl, NULL, 10) <= s->cfg->max_request_body)
		return EVHTP_RES_OK;
	evhtp_request_set_keepalive(req, 0);
	reply_error(req, 413, "request_too_large", "request body over max_request_body");
	event_base_once(s->base, -1, EV_TIMEOUT, resume_later, req, &zero);
	return EVHTP_RES_PAUSE;
}

/* --- the other routes ---------------------------------------------------- */

static void on_healthz(evhtp_request_t *req, void *arg)
{
	struct server *s = arg;
	struct evbuffer *body;

	if (evhtp_request_get_method(req) != htp_method_GET &&
	    evhtp_request_get_method(req) != htp_method_HEAD) {
		add_header(req, "Allow", "GET, HEAD");
		reply_error(req, 405, "method_not_allowed", "use GET for /healthz");
		return;
	}
	body = evbuffer_new();
	evbuffer_add_printf(body, "{\"status\":\"%s\"}", s->draining ? "draining" : "ok");
	reply_json(req, s->draining ? 503 : 200, body);
	evbuffer_free(body);
}

static void put_upstream(struct upstream *u, void *arg)
{
	struct evbuffer *out = arg;
	const char *sep = evbuffer_get_length(out) > 1 ? "," : "";
	size_t t;

	evbuffer_add_printf(out, "%s{\"upstream\":\"%s\",\"limit\":%zu,\"in_flight\":%zu,"
	                    "\"queued\":%zu,\"idle_connections\":%u,"
	                    "\"connections_opened\":%lu,\"totals\":{",
	                    sep, u->key, u->sem.limit, u->sem.in_use, u->sem.nqueued,
	                    pool_idle_count(u->pool), pool_opened_count(u->pool));
	for (t = OUTCOME_OK; t <= OUTCOME_FORBIDDEN; t++)
		evbuffer_add_printf(out, "%s\"%s\":%lu", t == OUTCOME_OK ? "" : ",",
		                    outcome_type_name((enum outcome_type)t), u->totals[t]);
	evbuffer_add(out, "}}", 2);
}

static void on_upstreams(evhtp_request_t *req, void *arg)
{
	struct server *s = arg;
	struct evbuffer *list, *body;

	if (evhtp_request_get_method(req) != htp_method_GET) {
		add_header(req, "Allow", "GET");
		reply_error(req, 405, "method_not_allowed", "use GET for /v1/upstreams");
		return;
	}
	list = evbuffer_new();
	evbuffer_add(list, "[", 1);
	upstream_foreach(s->reg, put_upstream, list);
	evbuffer_add(list, "]", 1);
	body = evbuffer_new();
	evbuffer_add_printf(body, "{\"upstreams\":");
	evbuffer_add_buffer(body, list);
	evbuffer_add(body, "}", 1);
	reply_json(req, 200, body);
	evbuffer_free(list);
	evbuffer_free(body);
}

static void on_unknown(evhtp_request_t *req, void *arg)
{
	char msg[300];

	(void)arg;
	snprintf(msg, sizeof msg, "no such endpoint: %.200s",
	         req->uri && req->uri->path && req->uri->path->full ? req->uri->path->full : "?");
	reply_error(req, 404, "not_found", msg);
}

/* --- listeners ----------------------------------------------------------- */

static evhtp_res on_connection_fini(evhtp_connection_t *conn, void *arg)
{
	struct client_conn *cc = arg;

	(void)conn;
	TAILQ_REMOVE(&cc->srv->conns, cc, link);
	free(cc);
	return EVHTP_RES_OK;
}

static evhtp_res on_accept(evhtp_connection_t *conn, void *arg)
{
	struct server *s = arg;
	struct client_conn *cc = calloc(1, sizeof *cc);

	if (cc == NULL)
		abort();
	cc->srv = s;
	cc->conn = conn;
	TAILQ_INSERT_TAIL(&s->conns, cc, link);
	evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini,
	                          (evhtp_hook)on_connection_fini, cc);
	return EVHTP_RES_OK;
}

static evhtp_t *new_htp(struct server *s)
{
	evhtp_t *htp = evhtp_new(s->base, NULL);
	evhtp_callback_t *cb;
	struct timeval client_tv;

	client_tv.tv_sec = s->cfg->client_timeout_ms / 1000;
	client_tv.tv_usec = (s->cfg->client_timeout_ms % 1000) * 1000;
	evhtp_set_timeouts(htp, &client_tv, &client_tv);
	/* a backstop for chunked uploads; Content-Length is checked first */
	evhtp_set_max_body_size(htp, s->cfg->max_request_body + 1);
	cb = evhtp_set_cb(htp, "/v1/batch", on_batch, s);
	evhtp_callback_set_hook(cb, evhtp_hook_on_headers, (evhtp_hook)on_batch_headers, s);
	evhtp_set_cb(htp, "/healthz", on_healthz, s);
	evhtp_set_cb(htp, "/v1/upstreams", on_upstreams, s);
	evhtp_set_gencb(htp, on_unknown, s);
	evhtp_set_post_accept_cb(htp, on_accept, s);
	return htp;
}

/* "127.0.0.1:8642", "[::1]:8642", "*:8642", "localhost:8642", "unix:/p" */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	char host[256];
	const char *colon;
	long port;

	memset(ss, 0, sizeof *ss);
	if (strncmp(spec, "unix:", 5) == 0) {
		if (strlen(spec + 5) >= sizeof sun->sun_path)
			return -1;
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, spec + 5);
		*len = sizeof *sun;
		return 0;
	}
	colon = strrchr(spec, ':');
	if (colon == NULL || (size_t)(colon - spec) >= sizeof host)
		return -1;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof *sin6;
		return inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) == 1 ? 0 : -1;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	*len = sizeof *sin;
	if (strcmp(host, "*") == 0 || host[0] == '\0') {
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		return 0;
	}
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

static void log_bound(evhtp_t *htp, const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char addr[INET6_ADDRSTRLEN];
	evutil_socket_t fd = evconnlistener_get_fd(htp->server);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family == AF_UNIX) {
		log_info("listening on %s", spec);
		return;
	}
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof addr);
		log_info("listening on [%s]:%d", addr,
		         ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
		return;
	}
	inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof addr);
	log_info("listening on %s:%d", addr, ntohs(((struct sockaddr_in *)&ss)->sin_port));
}

static int bind_one(struct server *s, const char *spec, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	evhtp_t *htp;

	if (parse_listen(spec, &ss, &len) < 0) {
		snprintf(err, errlen, "cannot listen on %s: bad address", spec);
		return -1;
	}
	if (ss.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);   /* a stale socket */
	htp = new_htp(s);
	errno = 0;
	if (evhtp_bind_sockaddr(htp, (struct sockaddr *)&ss, len, 1024) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", spec,
		         errno ? strerror(errno) : "bind failed");
		evhtp_free(htp);
		return -1;
	}
	if (ss.ss_family == AF_UNIX) {
		chmod(((struct sockaddr_un *)&ss)->sun_path, (mode_t)s->cfg->socket_mode);
		s->unix_paths[s->nhtp] = strdup(((struct sockaddr_un *)&ss)->sun_path);
	}
	s->htp[s->nhtp++] = htp;
	log_bound(htp, spec);
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
	TAILQ_INIT(&s->conns);
	return s;
}

int server_listen(struct server *s, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < s->cfg->nlisten; i++)
		if (bind_one(s, s->cfg->listen[i], err, errlen) < 0)
			return -1;
	return 0;
}

void server_configure(struct server *s, const struct config *cfg)
{
	s->cfg = cfg;
}

void server_drain(struct server *s, void (*idle_cb)(void *), void *arg)
{
	size_t i;

	s->draining = true;
	s->idle_cb = idle_cb;
	s->idle_arg = arg;
	for (i = 0; i < s->nhtp; i++)
		evhtp_unbind_socket(s->htp[i]);
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
	struct client_conn *cc;
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
	while ((cc = TAILQ_FIRST(&s->conns)) != NULL) {
		TAILQ_REMOVE(&s->conns, cc, link);
		evhtp_connection_set_hook(cc->conn, evhtp_hook_on_connection_fini, NULL, NULL);
		evhtp_connection_free(cc->conn);
		free(cc);
	}
	for (i = 0; i < s->nhtp; i++) {
		evhtp_free(s->htp[i]);
		if (s->unix_paths[i] != NULL) {
			unlink(s->unix_paths[i]);
			free(s->unix_paths[i]);
		}
	}
	free(s);
}
