/* fetch: the life of one upstream request.
 *
 *   queued -> (slot) -> resolving -> [nofd] -> connecting -> [handshake]
 *          -> waiting -> receiving -> done
 *   (a reused keep-alive connection goes straight to waiting; nofd: the
 *   process is out of file descriptors, and the fetch waits for one)
 *
 * evhttp has no connect-only timeout and reports no phases, so the fetch
 * keeps its own timer (the connect deadline, then the request deadline),
 * watches the socket for the end of the TCP connect and OpenSSL for the
 * end of the handshake.  The HTTP exchange itself is in fetch_http.c.
 * Re-entrancy: evhttp_cancel_request() runs the error callback before it
 * returns, and dns_resolve() may answer before it returns. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/bufferevent.h>

#include "acl.h"
#include "clock.h"
#include "fetch_internal.h"
#include "log.h"
#include "metrics.h"

static void on_timer(evutil_socket_t fd, short what, void *arg);
static void connect_next(struct fetch *f);

char *fetch_format(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

static bool connecting(enum fetch_state s)
{
	return s == FETCH_RESOLVING || s == FETCH_CONNECTING || s == FETCH_HANDSHAKE;
}

static const char *phase_of(enum fetch_state s)
{
	switch (s) {
	case FETCH_IDLE:
	case FETCH_QUEUED:
	case FETCH_NOFD:      /* a local shortage, like a slot: not the upstream's */
		return "queued";
	case FETCH_RESOLVING:
		return "dns";
	case FETCH_CONNECTING:
		return "connect";
	case FETCH_HANDSHAKE:
		return "tls";
	default:
		return "response";
	}
}

/* --- timers ------------------------------------------------------------ */

/* Fire at the connect deadline while connecting, then at the request
 * deadline; both count from the moment the fetch got its slot.  The event
 * exists only while the fetch holds a slot: 10,000 queued requests should
 * not cost 10,000 events. */
static void arm_timer(struct fetch *f)
{
	double deadline = f->t_slot + (double)f->timeout_ms;
	double ms;
	struct timeval tv;

	if (connecting(f->state) && f->t_attempt + (double)f->connect_timeout_ms < deadline)
		deadline = f->t_attempt + (double)f->connect_timeout_ms;
	ms = deadline - clock_now_ms();
	if (f->timer == NULL)
		f->timer = evtimer_new(f->env->base, on_timer, f);
	if (ms < 0)
		ms = 0;
	tv = clock_timeval(ms);
	evtimer_add(f->timer, &tv);
}

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

/* --- ending ------------------------------------------------------------ */

static void drop_conn(struct fetch *f, bool reusable)
{
	if (f->conn == NULL)
		return;
	f->conn->on_handshake = NULL;
	/* a reload may have denied its address while it was busy */
	if (reusable && f->env->acl != NULL &&
	    acl_addr_denied(f->env->acl, (const struct sockaddr *)&f->conn->peer))
		reusable = false;
	pool_release(f->conn, reusable);
	f->conn = NULL;
}

/* Leave whichever queue the waiter is in. */
static void leave_queue(struct fetch *f)
{
	if (f->state != FETCH_QUEUED)
		return;
	switch (f->stage) {
	case STAGE_BATCH_CAP:
		if (f->batch_sem != NULL)
			limit_sem_cancel(f->batch_sem, &f->waiter);
		break;
	case STAGE_UPSTREAM:
		limit_sem_cancel(&f->up->sem, &f->waiter);
		break;
	case STAGE_GLOBAL:
		limit_sem_cancel(f->env->global, &f->waiter);
		break;
	case STAGE_TOKEN:
		upstream_cancel_token(f->up, &f->waiter);
		break;
	case STAGE_STARTED:
		break;
	}
	(*f->env->queued)--;
}

/* Abort whatever is under way: queue, DNS, connect or exchange.  The
 * connection is closed (evhttp_cancel_request) and dropped, never reused. */
static void stop_exchange(struct fetch *f)
{
	struct evhttp_request *req = f->req;

	leave_queue(f);
	pool_cancel_wait(f->up->pool, &f->fd_waiter);
	stop_timer(f);
	stop_watch(f);
	if (f->dns_req != NULL) {
		dns_cancel(f->dns_req);
		f->dns_req = NULL;
	}
	if (req != NULL) {
		f->req = NULL;
		evhttp_cancel_request(req);     /* calls on_error(CANCEL) now */
	}
	drop_conn(f, false);
}

static void record(struct fetch *f, enum outcome_type type, char *message,
                   const char *phase)
{
	f->out->type = type;
	free(f->out->message);
	f->out->message = message;
	f->out->phase = phase;
	f->out->timing.total_ms = clock_now_ms() - f->t_start;
	outcome_body_trim(f->out);
	outcome_seal(f->out);
	free(f->addrs);
	f->addrs = NULL;
	f->up->totals[type]++;
	metrics_observe_request(f->env->metrics, f->out, f->t_granted > 0, f->body_len);
}

/* Hand back the slots held, the widest first. */
static void release_slots(struct fetch *f)
{
	enum fetch_stage held = f->stage;

	f->stage = STAGE_BATCH_CAP;
	if (held > STAGE_GLOBAL)
		limit_sem_release(f->env->global);
	if (held > STAGE_UPSTREAM)
		limit_sem_release(&f->up->sem);
	if (held > STAGE_BATCH_CAP && f->batch_sem != NULL)
		limit_sem_release(f->batch_sem);
}

/* Hand back the connection, tell the batch, then hand back the slot, so
 * a failing batch cancels its own queued requests before the slot could
 * be given to one of them. */
void fetch_finish(struct fetch *f, enum outcome_type type, char *message,
                  const char *phase, bool reusable)
{
	stop_timer(f);
	stop_watch(f);
	drop_conn(f, reusable);
	record(f, type, message, phase);
	f->state = FETCH_DONE;
	f->done(f, f->done_arg);
	release_slots(f);
}

void fetch_fail(struct fetch *f, enum outcome_type type, char *message)
{
	const char *phase = type == OUTCOME_TIMEOUT ? phase_of(f->state) : NULL;

	stop_exchange(f);
	fetch_finish(f, type, message, phase, false);
}

void fetch_abort(struct fetch *f, enum outcome_type type, const char *message)
{
	const char *phase = phase_of(f->state);

	if (f->state == FETCH_DONE)
		return;
	stop_exchange(f);
	record(f, type, message ? strdup(message) : NULL,
	       type == OUTCOME_TIMEOUT ? phase : NULL);
	f->state = FETCH_DONE;
	release_slots(f);
}

/* --- connect and handshake --------------------------------------------- */

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

/* Connected and, for https, the handshake done: the request is on. */
static void mark_ready(struct fetch *f)
{
	double now = clock_now_ms();

	stop_watch(f);
	f->conn->open = true;
	f->t_connected = now;
	f->out->timing.connect_ms = now - f->t_granted;
	f->state = FETCH_WAITING;
	arm_timer(f);
}

static void on_handshake(struct pool_conn *c, void *arg)
{
	struct fetch *f = arg;

	(void)c;
	if (f->state == FETCH_HANDSHAKE || f->state == FETCH_CONNECTING)
		mark_ready(f);
}

void fetch_mark_connected(struct fetch *f)
{
	if (f->state != FETCH_CONNECTING && f->state != FETCH_HANDSHAKE)
		return;
	stop_watch(f);
	f->conn->open = true;
	if (f->conn->ssl != NULL && !f->conn->handshake_done) {
		f->state = FETCH_HANDSHAKE;   /* the connect deadline still runs */
		return;
	}
	mark_ready(f);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;
	long limit = connecting(f->state) ? f->connect_timeout_ms : f->timeout_ms;

	(void)fd;
	(void)what;
	if (f->state == FETCH_QUEUED) {   /* still waiting: a global slot or a token */
		fetch_fail(f, OUTCOME_TIMEOUT, fetch_format("not started within %ld ms "
		           "(global_concurrency or rate limit)", f->timeout_ms));
		return;
	}
	if (f->state == FETCH_NOFD) {
		fetch_fail(f, OUTCOME_TIMEOUT, fetch_format("no free file descriptor to "
		           "connect with within %ld ms (ulimit -n)", f->timeout_ms));
		return;
	}
	/* the connect may have finished without the watcher seeing it */
	if (f->state == FETCH_CONNECTING && socket_connected(f)) {
		fetch_mark_connected(f);
		if (f->state == FETCH_WAITING)
			return;
	}
	fetch_fail(f, OUTCOME_TIMEOUT, fetch_format("no %s within %ld ms",
	           f->state == FETCH_RESOLVING ? "DNS answer" :
	           f->state == FETCH_CONNECTING ? "connection" :
	           f->state == FETCH_HANDSHAKE ? "TLS handshake" : "complete answer", limit));
}

/* The socket became writable: the connect finished, one way or the other.
 * This runs before libevent's own write callback on the same socket (the
 * event added last is activated first), so on a failure we read the real
 * reason (SO_ERROR: refused, unreachable, ...) before evhttp's clean-up
 * clobbers errno, and end the attempt ourselves; cancelling the request
 * also removes libevent's pending callback. */
static void on_connect_ready(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int e = 0;
	socklen_t elen = sizeof e;

	(void)what;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		fetch_mark_connected(f);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0 || e == 0) {
		event_add(f->connect_watch, NULL);   /* not finished after all */
		return;
	}
	stop_watch(f);
	f->connect_failed = true;
	if (f->req != NULL) {
		struct evhttp_request *req = f->req;

		f->req = NULL;
		evhttp_cancel_request(req);
	}
	f->sock_errno = e;   /* after the cancel, which runs on_error */
	if (fetch_next_address(f))
		return;
	fetch_fail(f, OUTCOME_CONNECT, fetch_connect_message(f));
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

static bool out_of_fds(int e)
{
	return e == EMFILE || e == ENFILE;
}

/* Open a connection to the current address and send the request on it. */
static void connect_next(struct fetch *f)
{
	const struct sockaddr_storage *ss = &f->addrs->addr[f->addr_i];
	char addr[INET6_ADDRSTRLEN];

	f->conn = pool_open(f->up->pool, (const struct sockaddr *)ss, f->up->port);
	if (f->conn == NULL && out_of_fds(errno)) {
		fetch_wait_fd(f);
		return;
	}
	if (f->conn == NULL) {
		if (ss->ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr,
			          addr, sizeof addr);
		else
			inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
			          addr, sizeof addr);
		fetch_fail(f, f->up->tls ? OUTCOME_TLS : OUTCOME_CONNECT,
		           fetch_format("cannot set up a connection to %s", addr));
		return;
	}
	f->conn->on_handshake = on_handshake;
	f->conn->handshake_arg = f;
	f->connect_failed = false;
	f->state = FETCH_CONNECTING;
	fetch_send(f);
	if (f->state == FETCH_CONNECTING && f->connect_watch == NULL)
		watch_connect(f);
}

/* A descriptor is free, or a kept-alive connection to send on: the wait
 * counts as queued time, not as connecting (the connect deadline starts
 * now), and the request goes on where it stopped. */
static void on_fd_ready(struct pool_waiter *w, struct pool_conn *c, void *arg)
{
	struct fetch *f = arg;
	double waited = clock_now_ms() - f->t_nofd;

	(void)w;
	f->out->timing.queued_ms += waited;
	f->t_granted += waited;
	f->t_attempt = clock_now_ms();
	if (c != NULL) {
		f->conn = c;
		f->out->reused = true;
		f->state = FETCH_WAITING;
		arm_timer(f);
		fetch_send(f);
		return;
	}
	f->state = FETCH_CONNECTING;
	arm_timer(f);
	connect_next(f);
}

void fetch_wait_fd(struct fetch *f)
{
	log_debug("fetch %zu: out of file descriptors; waiting for one to connect to %s",
	          f->index, f->up->key);
	stop_watch(f);
	drop_conn(f, false);
	f->state = FETCH_NOFD;
	f->t_nofd = clock_now_ms();
	arm_timer(f);   /* the request deadline only: not connecting yet */
	pool_wait_fd(f->up->pool, &f->fd_waiter);
}

bool fetch_next_address(struct fetch *f)
{
	if (f->addrs == NULL || f->addr_i + 1 >= f->addrs->n)
		return false;
	stop_watch(f);
	drop_conn(f, false);
	f->addr_i++;
	connect_next(f);
	return true;
}

static void on_resolved(const char *error, const struct dns_answer *ans, void *arg)
{
	struct fetch *f = arg;
	size_t i;

	f->dns_req = NULL;
	if (error != NULL) {
		fetch_fail(f, OUTCOME_DNS, fetch_format("cannot resolve %s: %s",
		           f->item->host, error));
		return;
	}
	f->addrs = calloc(1, sizeof *f->addrs);
	if (f->addrs == NULL)
		abort();
	/* never connect into deny_networks, however the name got there */
	for (i = 0; i < ans->n; i++)
		if (f->env->acl == NULL ||
		    !acl_addr_denied(f->env->acl, (const struct sockaddr *)&ans->addr[i]))
			f->addrs->addr[f->addrs->n++] = ans->addr[i];
	if (f->addrs->n == 0) {
		fetch_fail(f, OUTCOME_FORBIDDEN, fetch_format("%s resolves into deny_networks; "
		           "nothing was sent", f->item->host));
		return;
	}
	f->addr_i = 0;
	connect_next(f);
}

static void open_new(struct fetch *f)
{
	struct dns_request *r;

	if (f->up->tls_error != NULL) {
		fetch_fail(f, OUTCOME_TLS, strdup(f->up->tls_error));
		return;
	}
	f->state = FETCH_RESOLVING;
	r = dns_resolve(f->env->dns, f->item->host, on_resolved, f);
	if (r != NULL)
		f->dns_req = r;
}

void fetch_reopen(struct fetch *f)
{
	drop_conn(f, false);
	f->retried = true;
	f->out->reused = false;
	f->t_attempt = clock_now_ms();
	f->state = FETCH_RESOLVING;
	arm_timer(f);
	open_new(f);
}

/* --- start ------------------------------------------------------------- */

static void begin(struct fetch *f)
{
	f->t_granted = clock_now_ms();
	f->t_attempt = f->t_granted;
	f->out->timing.queued_ms = f->t_granted - f->t_start;
	f->conn = pool_take_idle(f->up->pool);
	if (f->conn != NULL) {
		f->out->reused = true;
		f->state = FETCH_WAITING;
		arm_timer(f);
		fetch_send(f);
		return;
	}
	f->state = FETCH_RESOLVING;
	arm_timer(f);
	open_new(f);
}

/* Wait for w in the queue of stage s: true if granted at once. */
static bool take(struct fetch *f, enum fetch_stage s)
{
	switch (s) {
	case STAGE_BATCH_CAP:
		return f->batch_sem == NULL || limit_sem_acquire(f->batch_sem, &f->waiter);
	case STAGE_UPSTREAM:
		return limit_sem_acquire(&f->up->sem, &f->waiter);
	case STAGE_GLOBAL:
		return limit_sem_acquire(f->env->global, &f->waiter);
	case STAGE_TOKEN:
		return upstream_take_token(f->up, &f->waiter);
	default:
		return true;
	}
}

/* Go through the stages in order; a stage that queues comes back through
 * on_grant().  The token comes last so that requests start no faster
 * than the rate; the request deadline runs from the upstream slot on, so
 * the wait for a global slot or a token counts against it (phase
 * "queued"). */
static void acquire(struct fetch *f)
{
	/* a slot freed while the batch cancels itself may reach one of its
	 * own queued requests: it keeps the slot until stop_all() aborts it */
	if (f->halt != NULL && *f->halt)
		return;
	while (f->stage < STAGE_STARTED) {
		if (!take(f, f->stage)) {
			if (f->stage > STAGE_UPSTREAM)
				arm_timer(f);
			return;
		}
		f->stage++;
		if (f->stage == STAGE_GLOBAL)
			f->t_slot = clock_now_ms();
	}
	(*f->env->queued)--;
	begin(f);
}

static void on_grant(struct limit_waiter *w, void *arg)
{
	struct fetch *f = arg;

	(void)w;
	f->stage++;
	if (f->stage == STAGE_GLOBAL)
		f->t_slot = clock_now_ms();
	acquire(f);
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
	pool_waiter_init(&f->fd_waiter, on_fd_ready, f);
}

void fetch_start(struct fetch *f)
{
	f->t_start = clock_now_ms();
	f->state = FETCH_QUEUED;
	(*f->env->queued)++;
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
	free(f->addrs);
	f->addrs = NULL;
}
