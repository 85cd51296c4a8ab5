/* fetch: the life of one upstream request.
 *
 *   idle -> queued -> (slot) -> resolving -> [nofd] -> connecting
 *        -> [handshake] -> waiting -> receiving -> done
 *   a reused keep-alive connection goes from queued (or nofd) straight to
 *   waiting, and back to resolving, once, if it turns out dead; nofd: the
 *   process is out of file descriptors, and the fetch waits for one; any
 *   state but done may end in done (an outcome or an abort).  Every
 *   change goes through fetch_set_state(), which checks it against this.
 *
 * evhttp has no connect-only timeout and reports no phases, so the fetch
 * keeps its own timer (the connect deadline, then the request deadline),
 * watches the socket for the end of the TCP connect and OpenSSL for the
 * end of the handshake.  The HTTP exchange itself is in fetch_http.c.
 * Re-entrancy: evhttp_cancel_request() runs the error callback before it
 * returns, and dns_resolve() may answer before it returns. */
#include <assert.h>
#include <errno.h>
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
#include "netaddr.h"
#include "xalloc.h"

static void on_timer(evutil_socket_t fd, short what, void *arg);
static void connect_next(struct fetch *f);

/* --- state ------------------------------------------------------------ */

static const char *state_name(enum fetch_state s)
{
	static const char *names[] = {
		[FETCH_IDLE] = "idle", [FETCH_QUEUED] = "queued",
		[FETCH_RESOLVING] = "resolving", [FETCH_NOFD] = "nofd",
		[FETCH_CONNECTING] = "connecting", [FETCH_HANDSHAKE] = "handshake",
		[FETCH_WAITING] = "waiting", [FETCH_RECEIVING] = "receiving",
		[FETCH_DONE] = "done",
	};

	return names[s];
}

#define TO(s) (1u << (s))

/* Where each state may go besides done (the diagram above). */
static bool allowed(enum fetch_state from, enum fetch_state to)
{
	static const unsigned next[] = {
		[FETCH_IDLE] = TO(FETCH_QUEUED),
		[FETCH_QUEUED] = TO(FETCH_RESOLVING) | TO(FETCH_WAITING),
		[FETCH_RESOLVING] = TO(FETCH_CONNECTING) | TO(FETCH_NOFD),
		[FETCH_NOFD] = TO(FETCH_CONNECTING) | TO(FETCH_WAITING),
		[FETCH_CONNECTING] = TO(FETCH_HANDSHAKE) | TO(FETCH_WAITING) | TO(FETCH_NOFD),
		/* receiving: headers came before OpenSSL's callback was seen */
		[FETCH_HANDSHAKE] = TO(FETCH_WAITING) | TO(FETCH_RECEIVING),
		[FETCH_WAITING] = TO(FETCH_RECEIVING) | TO(FETCH_RESOLVING),
		[FETCH_RECEIVING] = 0,
		[FETCH_DONE] = 0,
	};

	if (from == FETCH_DONE)
		return false;
	return to == FETCH_DONE || to == from || (next[from] & TO(to)) != 0;
}

void fetch_describe(const void *obj, char *buf, size_t len)
{
	const struct fetch *f = obj;

	snprintf(buf, len, "b%lu[%zu]", f->batch_id, f->index);
}

void fetch_set_state(struct fetch *f, enum fetch_state to)
{
	assert(allowed(f->state, to));
	if (to == f->state)
		return;   /* another attempt in the same state: connect_next() says so */
	if (to == FETCH_DONE)
		fetch_debug(f, "%s -> done: %s, status %d, %.1f ms%s%s", state_name(f->state),
		            outcome_type_name(f->out->type), f->out->status,
		            f->out->timing.total_ms, f->out->message ? ": " : "",
		            f->out->message ? f->out->message : "");
	else
		fetch_debug(f, "%s -> %s", state_name(f->state), state_name(to));
	f->state = to;
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
		f->timer = xcheck(evtimer_new(f->env->base, on_timer, f));
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
	case FETCH_STAGE_BATCH_CAP:
		if (f->batch_sem != NULL)
			limit_sem_cancel(f->batch_sem, &f->waiter);
		break;
	case FETCH_STAGE_UPSTREAM:
		limit_sem_cancel(&f->up->sem, &f->waiter);
		break;
	case FETCH_STAGE_GLOBAL:
		limit_sem_cancel(f->env->global, &f->waiter);
		break;
	case FETCH_STAGE_TOKEN:
		upstream_cancel_token(f->up, &f->waiter);
		break;
	case FETCH_STAGE_STARTED:
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

	f->stage = FETCH_STAGE_BATCH_CAP;
	if (held > FETCH_STAGE_GLOBAL)
		limit_sem_release(f->env->global);
	if (held > FETCH_STAGE_UPSTREAM)
		limit_sem_release(&f->up->sem);
	if (held > FETCH_STAGE_BATCH_CAP && f->batch_sem != NULL)
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
	fetch_set_state(f, FETCH_DONE);
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
	record(f, type, message ? xstrdup(message) : NULL,
	       type == OUTCOME_TIMEOUT ? phase : NULL);
	fetch_set_state(f, FETCH_DONE);
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
	stop_watch(f);
	f->conn->open = true;
	f->out->timing.connect_ms = clock_now_ms() - f->t_granted;
	fetch_set_state(f, FETCH_WAITING);
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
		fetch_set_state(f, FETCH_HANDSHAKE);   /* the connect deadline still runs */
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
		fetch_fail(f, OUTCOME_TIMEOUT, xasprintf("not started within %ld ms "
		           "(global_concurrency or rate limit)", f->timeout_ms));
		return;
	}
	if (f->state == FETCH_NOFD) {
		fetch_fail(f, OUTCOME_TIMEOUT, xasprintf("no free file descriptor to "
		           "connect with within %ld ms (ulimit -n)", f->timeout_ms));
		return;
	}
	/* the connect may have finished without the watcher seeing it */
	if (f->state == FETCH_CONNECTING && socket_connected(f)) {
		fetch_mark_connected(f);
		if (f->state == FETCH_WAITING)
			return;
	}
	fetch_fail(f, OUTCOME_TIMEOUT, xasprintf("no %s within %ld ms",
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
	f->connect_watch = xcheck(event_new(f->env->base, fd, EV_WRITE, on_connect_ready, f));
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
	char addr[NETADDR_TEXT_MAX];

	netaddr_ip_text((const struct sockaddr *)ss, addr, sizeof addr);
	f->conn = pool_open(f->up->pool, (const struct sockaddr *)ss, f->up->port);
	if (f->conn == NULL && out_of_fds(errno)) {
		fetch_wait_fd(f);
		return;
	}
	if (f->conn == NULL) {
		fetch_fail(f, f->up->tls ? OUTCOME_TLS : OUTCOME_CONNECT,
		           xasprintf("cannot set up a connection to %s", addr));
		return;
	}
	f->conn->on_handshake = on_handshake;
	f->conn->handshake_arg = f;
	f->connect_failed = false;
	fetch_set_state(f, FETCH_CONNECTING);
	fetch_debug(f, "connecting to %s (address %zu of %zu) on c%lu", addr,
	            f->addr_i + 1, f->addrs->n, f->conn->id);
	fetch_send(f);
	if (f->state == FETCH_CONNECTING && f->connect_watch == NULL)
		watch_connect(f);
}

/* An idle kept-alive connection: no connect, straight to the exchange. */
static void send_reused(struct fetch *f, struct pool_conn *c)
{
	f->conn = c;
	f->out->reused = true;
	fetch_set_state(f, FETCH_WAITING);
	fetch_debug(f, "reusing c%lu", c->id);
	arm_timer(f);
	fetch_send(f);
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
		send_reused(f, c);
		return;
	}
	fetch_set_state(f, FETCH_CONNECTING);
	arm_timer(f);
	connect_next(f);
}

void fetch_wait_fd(struct fetch *f)
{
	stop_watch(f);
	drop_conn(f, false);
	fetch_set_state(f, FETCH_NOFD);
	fetch_debug(f, "out of file descriptors: waiting for one to connect to %s",
	            f->up->key);
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
		fetch_fail(f, OUTCOME_DNS, xasprintf("cannot resolve %s: %s",
		           f->item->host, error));
		return;
	}
	f->addrs = xcalloc(1, sizeof *f->addrs);
	/* never connect into deny_networks, however the name got there */
	for (i = 0; i < ans->n; i++)
		if (f->env->acl == NULL ||
		    !acl_addr_denied(f->env->acl, (const struct sockaddr *)&ans->addr[i]))
			f->addrs->addr[f->addrs->n++] = ans->addr[i];
	if (f->addrs->n == 0) {
		fetch_fail(f, OUTCOME_FORBIDDEN, xasprintf("%s resolves into deny_networks; "
		           "nothing was sent", f->item->host));
		return;
	}
	f->addr_i = 0;
	connect_next(f);
}

/* A new connection: resolve the name first (the connect deadline runs). */
static void open_new(struct fetch *f)
{
	struct dns_request *r;

	fetch_set_state(f, FETCH_RESOLVING);
	arm_timer(f);
	if (f->up->tls_error != NULL) {
		fetch_fail(f, OUTCOME_TLS, xstrdup(f->up->tls_error));
		return;
	}
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
	fetch_debug(f, "the kept-alive connection was closed: once more on a new one");
	open_new(f);
}

/* --- start ------------------------------------------------------------- */

static void begin(struct fetch *f)
{
	struct pool_conn *c;

	f->t_granted = clock_now_ms();
	f->t_attempt = f->t_granted;
	f->out->timing.queued_ms = f->t_granted - f->t_start;
	c = pool_take_idle(f->up->pool);
	if (c != NULL) {
		send_reused(f, c);
		return;
	}
	open_new(f);
}

/* Wait for w in the queue of stage s: true if granted at once. */
static bool take(struct fetch *f, enum fetch_stage s)
{
	switch (s) {
	case FETCH_STAGE_BATCH_CAP:
		return f->batch_sem == NULL || limit_sem_acquire(f->batch_sem, &f->waiter);
	case FETCH_STAGE_UPSTREAM:
		return limit_sem_acquire(&f->up->sem, &f->waiter);
	case FETCH_STAGE_GLOBAL:
		return limit_sem_acquire(f->env->global, &f->waiter);
	case FETCH_STAGE_TOKEN:
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
	while (f->stage < FETCH_STAGE_STARTED) {
		if (!take(f, f->stage)) {
			if (f->stage > FETCH_STAGE_UPSTREAM)
				arm_timer(f);
			return;
		}
		f->stage++;
		if (f->stage == FETCH_STAGE_GLOBAL)
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
	if (f->stage == FETCH_STAGE_GLOBAL)
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
	fetch_debug(f, "%s %s", request_method_name(f->item->method), f->item->url);
	fetch_set_state(f, FETCH_QUEUED);
	(*f->env->queued)++;
	acquire(f);
}

void fetch_cleanup(struct fetch *f)
{
	stop_watch(f);
	stop_timer(f);
	free(f->addrs);
	f->addrs = NULL;
}
