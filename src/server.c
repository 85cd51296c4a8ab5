/* server: the local endpoint on libevhtp.
 *
 *   accept -> route -> POST /v1/batch: parse + validate -> pause the client
 *   request -> batch runs -> answer callback: reply + resume
 *
 * A paused evhtp request does not read, so a client that disconnects goes
 * unseen; we re-enable reading on its bufferevent so evhtp's error hook
 * fires, and abandon the batch then (see shared NOTES). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <evhtp/evhtp.h>
#include <openssl/crypto.h>

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
	const char *token;                   /* bearer token, borrowed; NULL = open */
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

/* --- auth ---------------------------------------------------------------- */

enum auth_result {
	AUTH_OK,          /* no token configured, or the right one sent */
	AUTH_MISSING,     /* no "Authorization: Bearer ..." at all */
	AUTH_WRONG,       /* a bearer token, but not ours */
};

/* The token is compared in constant time and never logged. */
static enum auth_result auth_check(const struct server *s, evhtp_request_t *req)
{
	const char *h, *given;
	size_t want, have;
	int differ;

	if (s->token == NULL)
		return AUTH_OK;
	h = evhtp_header_find(req->headers_in, "Authorization");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return AUTH_MISSING;
	given = h + 7;
	while (*given == ' ')
		given++;
	want = strlen(s->token);
	have = strlen(given);
	/* always compare want bytes, so the time says nothing of the content */
	differ = CRYPTO_memcmp(have == want ? given : s->token, s->token, want);
	return have == want && differ == 0 ? AUTH_OK : AUTH_WRONG;
}

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

/* With auth_token_file set, every route but /healthz starts with this:
 * false means it has answered 401. */
static bool check_auth(const struct server *s, evhtp_request_t *req)
{
	enum auth_result why = auth_check(s, req);

	if (why == AUTH_OK)
		return true;
	reply_unauthorized(req, why);
	return false;
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
	struct request_limits lim = { .max_batch_size = (size_t)s->cfg->max_batch_size,
	                              .acl = s->env->acl };
	struct batch_request br;
	char err[512];
	size_t len;
	const char *data;

	if (!check_auth(s, req))
		return;
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
	if (*s->env->queued + br.n > (size_t)s->cfg->max_queued) {
		snprintf(err, sizeof err, "%zu requests are waiting; %zu more would pass "
		         "max_queued (%ld)", *s->env->queued, br.n, s->cfg->max_queued);
		request_free(&br);
		reply_error(req, 503, "overloaded", err);
		return;
	}
	run_batch(s, req, &br);
}

/* Answer 401 or 413 from the headers alone, before the body is read. */
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
	enum auth_result why = auth_check(s, req);

	if (why == AUTH_OK &&
	    (cl == NULL || strtoull(cl, NULL, 10) <= s->cfg->max_request_body))
		return EVHTP_RES_OK;
	/* too big, or from a client without the token: its body is never read */
	evhtp_request_set_keepalive(req, 0);
	if (why != AUTH_OK)
		reply_unauthorized(req, why);
	else
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
	                    "\"connections_opened\":%lu,\"tls_handshakes\":%lu,\"totals\":{",
	                    sep, u->key, u->sem.limit, u->sem.in_use, u->sem.nqueued,
	                    pool_idle_count(u->pool), pool_opened_count(u->pool),
	                    pool_handshake_count(u->pool));
	for (t = OUTCOME_OK; t <= OUTCOME_FORBIDDEN; t++)
		evbuffer_add_printf(out, "%s\"%s\":%lu", t == OUTCOME_OK ? "" : ",",
		                    outcome_type_name((enum outcome_type)t), u->totals[t]);
	evbuffer_add(out, "}}", 2);
}

static void on_upstreams(evhtp_request_t *req, void *arg)
{
	struct server *s = arg;
	struct evbuffer *list, *body;

	if (!check_auth(s, req))
		return;
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

	if (!check_auth(arg, req))
		return;
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

/* "listening on ADDR" with the address the socket really has (the port
 * the kernel chose for :0); spec names it when getsockname cannot.  The
 * integration tests read the port from this line. */
static void log_bound(evhtp_t *htp, const char *spec, const char *how)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char addr[INET6_ADDRSTRLEN];
	evutil_socket_t fd = evconnlistener_get_fd(htp->server);

	memset(&ss, 0, sizeof ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		log_info("listening on %s%s", spec, how);
		return;
	}
	switch (ss.ss_family) {
	case AF_UNIX:
		if (((struct sockaddr_un *)&ss)->sun_path[0] == '\0')
			log_info("listening on %s%s", spec, how);   /* abstract or unnamed */
		else
			log_info("listening on unix:%s%s", ((struct sockaddr_un *)&ss)->sun_path, how);
		return;
	case AF_INET6:
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof addr);
		log_info("listening on [%s]:%d%s", addr,
		         ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), how);
		return;
	case AF_INET:
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof addr);
		log_info("listening on %s:%d%s", addr,
		         ntohs(((struct sockaddr_in *)&ss)->sin_port), how);
		return;
	default:
		log_info("listening on %s%s", spec, how);
	}
}

/* A socket file left behind by a fanoutd that died is removed; a live one
 * (something accepts on it) or a file that is not a socket stays, and the
 * bind then fails with "Address already in use". */
static void remove_stale_socket(const struct sockaddr_un *sun)
{
	struct stat st;
	int fd;

	if (lstat(sun->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (const struct sockaddr *)sun, sizeof *sun) < 0 && errno == ECONNREFUSED) {
		log_info("removing the stale socket file %s", sun->sun_path);
		unlink(sun->sun_path);
	}
	close(fd);
}

static int bind_one(struct server *s, const char *spec, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	evhtp_t *htp;
	mode_t old_umask;
	int rc, saved_errno;

	if (parse_listen(spec, &ss, &len) < 0) {
		snprintf(err, errlen, "cannot listen on %s: bad address", spec);
		return -1;
	}
	if (ss.ss_family == AF_UNIX)
		remove_stale_socket((struct sockaddr_un *)&ss);
	htp = new_htp(s);
	/* a unix socket is born with socket_mode: no window with the umask's */
	old_umask = umask(0777 & ~(mode_t)s->cfg->socket_mode);
	errno = 0;
	rc = evhtp_bind_sockaddr(htp, (struct sockaddr *)&ss, len, 1024);
	saved_errno = errno;
	umask(old_umask);
	if (rc < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", spec,
		         saved_errno ? strerror(saved_errno) : "bind failed");
		evhtp_free(htp);
		return -1;
	}
	if (ss.ss_family == AF_UNIX) {
		if (chmod(((struct sockaddr_un *)&ss)->sun_path, (mode_t)s->cfg->socket_mode) < 0)
			log_warn("chmod %s: %s", spec + 5, strerror(errno));
		s->unix_paths[s->nhtp] = strdup(((struct sockaddr_un *)&ss)->sun_path);
	}
	s->htp[s->nhtp++] = htp;
	log_bound(htp, spec, "");
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

int server_listen_fds(struct server *s, const int *fds, size_t n, char *err, size_t errlen)
{
	evhtp_t *htp;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s->nhtp == CONFIG_MAX_LISTEN) {
			snprintf(err, errlen, "more than %d listeners", CONFIG_MAX_LISTEN);
			return -1;
		}
		evutil_make_socket_nonblocking(fds[i]);
		evutil_make_socket_closeonexec(fds[i]);
		htp = new_htp(s);
		/* backlog 0: the socket listens already, with systemd's Backlog= */
		if (evhtp_accept_socket(htp, fds[i], 0) < 0) {
			snprintf(err, errlen, "cannot listen on fd %d (socket activation): %s",
			         fds[i], strerror(errno));
			evhtp_free(htp);
			return -1;
		}
		s->htp[s->nhtp++] = htp;
		log_bound(htp, "a passed socket", " (socket activation)");
	}
	return 0;
}

void server_configure(struct server *s, const struct config *cfg)
{
	s->cfg = cfg;
}

void server_set_token(struct server *s, const char *token)
{
	s->token = token;
}

/* The longest token accepted; a real one is 32-64 characters. */
#define TOKEN_MAX 4096

int server_token_read(const char *path, char **token, char *err, size_t errlen)
{
	char buf[TOKEN_MAX + 1];
	FILE *f;
	size_t n, i;
	int failed;

	*token = NULL;
	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errlen, "auth_token_file %s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof buf, f);
	failed = ferror(f) ? errno : 0;
	fclose(f);
	if (failed != 0 || n == sizeof buf) {
		snprintf(err, errlen, "auth_token_file %s: %s", path,
		         failed != 0 ? strerror(failed) : "longer than 4096 bytes");
		OPENSSL_cleanse(buf, sizeof buf);
		return -1;
	}
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	for (i = 0; i < n; i++)
		if ((unsigned char)buf[i] <= ' ' || buf[i] == 0x7f)
			break;
	if (n == 0 || i < n) {
		snprintf(err, errlen, "auth_token_file %s: %s", path,
		         n == 0 ? "empty" : "the token holds a space or a control character");
		OPENSSL_cleanse(buf, sizeof buf);
		return -1;
	}
	*token = strndup(buf, n);
	OPENSSL_cleanse(buf, sizeof buf);
	if (*token == NULL)
		abort();
	return 0;
}

void server_token_free(char *token)
{
	if (token == NULL)
		return;
	OPENSSL_cleanse(token, strlen(token));
	free(token);
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
