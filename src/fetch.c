/* fetch: the life of one upstream request.
 *
 *   idle -> queued -> (slot) -> resolving -> [waitconn] -> connecting
 *        -> exchanging -> done
 *   an idle kept-alive connection goes from queued (or waitconn) straight
 *   to exchanging, and back to resolving, once, if it turns out dead;
 *   waitconn: max_connections are open, the process is out of file
 *   descriptors or an HTTP/2 connection is being opened, and the fetch
 *   waits for a connection; an attempt that failed in a way its retry
 *   policy retries goes to backoff (no slot held) and from there back to
 *   queued; joined (SPEC 15): from queued, a request that joins an
 *   identical one in flight (collapse.c), or from an attempt under way
 *   that failed, one that waits for its hedge (hedge.c); any state but
 *   done may end in done (an outcome or an abort).  Every change goes
 *   through fetch_set_state(), which checks it against this.
 *
 * The fetch owns its state, the timers (the connect deadline, then the
 * request deadline), its retries, and every way it ends; the stages it
 * waits through for its slots are fetch_slots.c's, getting the request
 * onto a connection (DNS, the deny list, connect) and the classifier of
 * what went wrong there fetch_connect.c's, the answer's head, body and end fetch_answer.c's,
 * what an attempt's end means for the next fetch_retry.c's.  The exchange
 * itself is the pool's connection and codec (exchange.h), which report
 * back through exchange_ops; no event comes from inside a call of ours
 * but dns_resolve(), which may answer before it returns. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "acl.h"
#include "breaker.h"
#include "clock.h"
#include "collapse.h"
#include "decode.h"
#include "fetch.h"
#include "fetch_internal.h"
#include "hedge.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

static void on_timer(evutil_socket_t fd, short what, void *arg);
static void next_attempt(struct fetch *f);

/* --- state ------------------------------------------------------------ */

void fetch_describe(const void *obj, char *buf, size_t len)
{
	const struct fetch *f = obj;

	snprintf(buf, len, "b%lu[%zu]", f->batch_id, f->index);
}

static const char *state_name(enum fetch_state s)
{
	static const char *names[] = {
		[FETCH_IDLE] = "idle", [FETCH_QUEUED] = "queued",
		[FETCH_RESOLVING] = "resolving", [FETCH_WAITCONN] = "waitconn",
		[FETCH_CONNECTING] = "connecting", [FETCH_EXCHANGING] = "exchanging",
		[FETCH_BACKOFF] = "backoff", [FETCH_JOINED] = "joined", [FETCH_DONE] = "done",
	};

	return names[s];
}

#define TO(s) (1u << (s))

/* Where each state may go besides done (the diagram above). */
static bool allowed(enum fetch_state from, enum fetch_state to)
{
	static const unsigned next[] = {
		[FETCH_IDLE] = TO(FETCH_QUEUED),
		[FETCH_QUEUED] = TO(FETCH_RESOLVING) | TO(FETCH_EXCHANGING) | TO(FETCH_JOINED),
		[FETCH_RESOLVING] = TO(FETCH_CONNECTING) | TO(FETCH_WAITCONN),
		[FETCH_WAITCONN] = TO(FETCH_CONNECTING) | TO(FETCH_EXCHANGING),
		[FETCH_CONNECTING] = TO(FETCH_EXCHANGING) | TO(FETCH_WAITCONN),
		[FETCH_EXCHANGING] = TO(FETCH_RESOLVING),
		[FETCH_BACKOFF] = TO(FETCH_QUEUED),
		[FETCH_JOINED] = 0,
		[FETCH_DONE] = 0,
	};

	if (from == FETCH_DONE)
		return false;
	if (to == FETCH_BACKOFF)   /* joined: its hedge's answer is retried */
		return from != FETCH_IDLE && from != FETCH_BACKOFF;
	/* an attempt under way that failed waits for its hedge */
	if (to == FETCH_JOINED && from != FETCH_QUEUED)
		return from == FETCH_RESOLVING || from == FETCH_WAITCONN ||
		       from == FETCH_CONNECTING || from == FETCH_EXCHANGING;
	return to == FETCH_DONE || to == from || (next[from] & TO(to)) != 0;
}

/* Every change of f->state: checked against the diagram, traced. */
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
	return s == FETCH_RESOLVING || s == FETCH_CONNECTING;
}

static const char *phase_of(const struct fetch *f)
{
	switch (f->state) {
	case FETCH_JOINED:   /* where what it waits for is (it may be queued) */
		return f->flight != NULL ? collapse_phase(f) : "response";
	case FETCH_IDLE:
	case FETCH_QUEUED:
	case FETCH_BACKOFF:
	case FETCH_WAITCONN:   /* a local shortage, like a slot: not the upstream's */
		return "queued";
	case FETCH_RESOLVING:
		return "dns";
	case FETCH_CONNECTING:
		return f->x.conn != NULL && pool_conn_handshaking(f->x.conn) ? "tls" : "connect";
	default:
		return "response";
	}
}

const char *fetch_phase(const struct fetch *f)
{
	return phase_of(f);
}

/* --- timers ------------------------------------------------------------ */

/* Fire at the connect deadline while connecting, then at the request
 * deadline; both count from the moment the fetch got its slot.  The event
 * exists only while the fetch holds a slot: 10,000 queued requests should
 * not cost 10,000 events. */
void fetch_arm_timer(struct fetch *f)
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

/* --- ending ------------------------------------------------------------ */

/* Hand the connection back; an exchange still under way is cancelled. */
void fetch_drop_conn(struct fetch *f, bool reusable)
{
	if (f->x.conn == NULL)
		return;
	/* a reload may have denied its address while it was busy */
	if (reusable && f->env->acl != NULL &&
	    acl_addr_denied(f->env->acl, (const struct sockaddr *)&f->x.conn->peer))
		reusable = false;
	pool_release(&f->x, reusable);
}

/* Abort whatever is under way: queue, DNS, connect or exchange.  The
 * connection is closed, never reused. */
static void stop_exchange(struct fetch *f)
{
	fetch_leave_queue(f);
	pool_cancel_wait(f->up->pool, &f->conn_waiter);
	stop_timer(f);
	if (f->dns_req != NULL) {
		dns_cancel(f->dns_req);
		f->dns_req = NULL;
	}
	fetch_drop_conn(f, false);
}

/* What one attempt held besides its outcome: the addresses, the status
 * line's message, the decoder. */
static void forget_attempt(struct fetch *f)
{
	free(f->addrs);
	f->addrs = NULL;
	free(f->status_message);
	f->status_message = NULL;
	decode_free(f->decoder);
	f->decoder = NULL;
}

/* One client's request finished: its upstream's totals and /metrics. */
static void count(struct fetch *f)
{
	if (f->inner)   /* its waiters, or the request it hedges, count */
		return;
	f->up->totals[f->out->type]++;
	metrics_observe_request(f->env->metrics, f->out, f->t_granted > 0, f->body_len);
}

static void record(struct fetch *f, enum outcome_type type, char *message,
                   const char *phase)
{
	f->out->type = type;
	free(f->out->message);
	f->out->message = message;
	f->out->phase = phase;
	f->out->timing.total_ms = clock_now_ms() - f->t_first;
	outcome_body_trim(f->out);
	forget_attempt(f);
	count(f);
}

/* Recorded: tell the batch, then hand back the slots, so a failing batch
 * cancels its own queued requests before a slot could be given to one of
 * them.  Handing back a slot may run another request that ends at once
 * and makes its batch fail fast: nothing of f is touched after. */
static void end(struct fetch *f)
{
	fetch_set_state(f, FETCH_DONE);
	f->done(f, f->done_arg);
	fetch_release_slots(f);
}

/* A retry no longer waits or runs: its place in the budget is free. */
static void release_budget(struct fetch *f)
{
	if (!f->budget_held)
		return;
	f->budget_held = false;
	f->up->retries_active--;
}

/* Wait ms for the next attempt, holding no slot (others may go) and
 * nothing of this attempt's answer; the batch is not told. */
static void back_off(struct fetch *f, double ms)
{
	struct timeval tv = clock_timeval(ms);

	forget_attempt(f);
	if (f->batch_bytes != NULL)
		*f->batch_bytes -= f->out->body_len;   /* the answer kept no longer */
	outcome_next_attempt(f->out);
	f->out->retry_wait_ms += ms;
	if (!f->budget_held)
		f->up->retries_active++;
	f->budget_held = true;
	f->up->retries_waiting++;
	fetch_set_state(f, FETCH_BACKOFF);
	f->t_backoff = clock_now_ms();
	if (f->timer == NULL)
		f->timer = xcheck(evtimer_new(f->env->base, on_timer, f));
	evtimer_add(f->timer, &tv);
	fetch_release_slots(f);
}

/* The back-off is over: queue again, at the end of the line, as a new
 * attempt with its own timeout. */
static void next_attempt(struct fetch *f)
{
	f->up->retries_waiting--;
	f->up->retries[f->retry_reason]++;
	f->out->attempts++;
	f->retried = false;
	f->unprocessed_retries = 0;
	f->t_start = clock_now_ms();
	fetch_set_state(f, FETCH_QUEUED);
	(*f->env->queued)++;
	fetch_start_attempt(f);
}

/* An answer from the upstream, whatever its status: what a hedge races
 * for and the rolling latency measures. */
static bool answered(enum outcome_type type)
{
	return type == OUTCOME_OK || type == OUTCOME_HTTP_STATUS ||
	       type == OUTCOME_RATE_LIMITED;
}

/* The attempt failed while its hedge goes on: wait for that, holding no
 * slot, until the request's own deadline. */
static void wait_for_hedge(struct fetch *f)
{
	fetch_debug(f, "attempt failed; its hedge goes on");
	fetch_set_state(f, FETCH_JOINED);
	fetch_arm_timer(f);   /* before the slots go back: that may end f */
	fetch_release_slots(f);
}

/* An attempt's result: another attempt after a back-off, or the end. */
static void settle(struct fetch *f, enum outcome_type type, char *message,
                   const char *phase)
{
	double wait;

	if (type != OUTCOME_OK && fetch_retry_wait(f, type, phase, &wait)) {
		fetch_debug(f, "attempt %u: %s%s%s; attempt %u in %.0f ms", f->out->attempts,
		            outcome_type_name(type), message ? ": " : "", message ? message : "",
		            f->out->attempts + 1, wait);
		free(message);
		back_off(f, wait);
		return;
	}
	release_budget(f);
	record(f, type, message, phase);
	end(f);
}

void fetch_finish(struct fetch *f, enum outcome_type type, char *message,
                  const char *phase, bool reusable)
{
	struct hedge *h;

	stop_timer(f);
	fetch_drop_conn(f, reusable);
	/* a twin's answers are the fast ones: the window takes its request's
	 * wait instead (fetch_take_hedge) */
	if (answered(type) && f->t_granted > 0 && !f->twin)
		upstream_note_latency(f->up, clock_now_ms() - f->t_granted);
	fetch_retry_note(f, type, phase);
	if (!answered(type) && hedge_running(f)) {
		free(message);
		wait_for_hedge(f);
		return;
	}
	h = hedge_detach(f);
	settle(f, type, message, phase);
	hedge_drop(h);   /* last: cancelling the twin hands back its slots */
}

/* A joined fetch ends by itself (its own deadline): it leaves what it
 * waited for, which goes on for the others (or is dropped, once f is
 * done, if f was the last). */
static void end_joined(struct fetch *f, enum outcome_type type, char *message)
{
	const char *phase = phase_of(f);
	struct flight *fl = f->flight != NULL ? collapse_leave(f) : NULL;
	struct hedge *h = hedge_detach(f);

	stop_timer(f);
	release_budget(f);
	record(f, type, message, phase);
	end(f);
	hedge_drop(h);
	collapse_abandon(fl);
}

/* What an adopted answer costs its batch: over max_batch_response it is
 * too_large instead. */
static void charge_body(struct fetch *f)
{
	f->body_len = f->out->body_len;
	if (f->batch_bytes == NULL)
		return;
	if (*f->batch_bytes + f->body_len <= f->env->max_batch_response) {
		*f->batch_bytes += f->body_len;
		return;
	}
	outcome_body_release(f->out);
	f->body_len = 0;
	free(f->out->message);
	f->out->message = xasprintf("bodies of the batch over max_batch_response (%llu bytes)",
	                            (unsigned long long)f->env->max_batch_response);
	f->out->type = OUTCOME_TOO_LARGE;
}

void fetch_adopt(struct fetch *f, struct outcome *src)
{
	assert(f->state == FETCH_JOINED && f->flight == NULL && f->hedge == NULL);
	stop_timer(f);
	outcome_clear(f->out);
	outcome_share_result(f->out, src);
	f->out->shared = src->shared;
	f->out->timing.total_ms = clock_now_ms() - f->t_first;
	charge_body(f);
	count(f);
	end(f);
}

void fetch_take_hedge(struct fetch *f, struct outcome *src, bool won)
{
	enum outcome_type type = src->type;
	const char *phase = src->phase;
	char *message = src->message;
	bool hedged = f->out->hedged;

	assert(f->hedge == NULL);
	src->message = NULL;
	stop_exchange(f);   /* the attempt still under way, if any, is the loser */
	if (won && f->t_granted > 0)   /* at least this long, had it been waited for */
		upstream_note_latency(f->up, clock_now_ms() - f->t_granted);
	if (f->batch_bytes != NULL)
		*f->batch_bytes -= f->out->body_len;   /* a part its own attempt got */
	forget_attempt(f);
	outcome_move_result(f->out, src);   /* attempts stay f's */
	f->out->hedged = hedged;
	charge_body(f);
	if (f->out->type == OUTCOME_TOO_LARGE && type != OUTCOME_TOO_LARGE) {
		free(message);
		message = f->out->message;
		f->out->message = NULL;
		type = OUTCOME_TOO_LARGE;
	}
	settle(f, type, message, phase);   /* the request's retries, as for its own */
}

void fetch_fail(struct fetch *f, enum outcome_type type, char *message)
{
	const char *phase = type == OUTCOME_TIMEOUT ? phase_of(f) : NULL;

	stop_exchange(f);
	fetch_finish(f, type, message, phase, false);
}

void fetch_abort(struct fetch *f, enum outcome_type type, const char *message)
{
	const char *phase = phase_of(f);

	struct flight *fl;
	struct hedge *h;

	if (f->state == FETCH_DONE)
		return;
	if (f->state == FETCH_BACKOFF)
		f->up->retries_waiting--;
	/* out of what it waits for first; what it leaves goes once it is done */
	fl = f->flight != NULL ? collapse_leave(f) : NULL;
	h = hedge_detach(f);
	stop_exchange(f);
	release_budget(f);
	if (f->probe)
		breaker_probe_abandoned(&f->up->breaker);
	f->probe = false;
	record(f, type, message ? xstrdup(message) : NULL,
	       type == OUTCOME_TIMEOUT ? phase : NULL);
	fetch_set_state(f, FETCH_DONE);
	fetch_release_slots(f);
	hedge_drop(h);
	collapse_abandon(fl);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;
	long limit = connecting(f->state) ? f->connect_timeout_ms : f->timeout_ms;
	const char *what_missing;

	(void)fd;
	(void)what;
	if (f->state == FETCH_BACKOFF) {
		next_attempt(f);
		return;
	}
	if (f->state == FETCH_JOINED) {
		end_joined(f, OUTCOME_TIMEOUT, xasprintf("no complete answer within %ld ms "
		           "(%s)", f->timeout_ms, f->flight != NULL ? "an identical request "
		           "in flight was joined" : "the attempt failed, its hedge did not answer"));
		return;
	}
	if (f->state == FETCH_QUEUED && f->stage == FETCH_STAGE_PAUSE) {
		fetch_fail(f, OUTCOME_TIMEOUT, xasprintf("not started within %ld ms: %s is "
		           "paused by its Retry-After", f->timeout_ms, f->up->key));
		return;
	}
	if (f->state == FETCH_QUEUED) {   /* still waiting: a global slot or a token */
		fetch_fail(f, OUTCOME_TIMEOUT, xasprintf("not started within %ld ms "
		           "(%s)", f->timeout_ms, f->stage == FETCH_STAGE_FLEET
		           ? "the fleet's shared limit" : "global_concurrency or rate limit"));
		return;
	}
	if (f->state == FETCH_WAITCONN && pool_opening_h2(f->up->pool)) {
		fetch_fail(f, OUTCOME_TIMEOUT, xasprintf("no HTTP/2 connection to %s open "
		           "within %ld ms", f->up->key, f->timeout_ms));
		return;
	}
	if (f->state == FETCH_WAITCONN && pool_at_cap(f->up->pool)) {
		fetch_fail(f, OUTCOME_TIMEOUT, xasprintf("no connection to %s free within "
		           "%ld ms (max_connections)", f->up->key, f->timeout_ms));
		return;
	}
	if (f->state == FETCH_WAITCONN) {
		fetch_fail(f, OUTCOME_TIMEOUT, xasprintf("no free file descriptor to "
		           "connect with within %ld ms (ulimit -n)", f->timeout_ms));
		return;
	}
	if (f->state == FETCH_RESOLVING)
		what_missing = "DNS answer";
	else if (f->state == FETCH_CONNECTING)
		what_missing = strcmp(phase_of(f), "tls") == 0 ? "TLS handshake" : "connection";
	else
		what_missing = "complete answer";
	fetch_fail(f, OUTCOME_TIMEOUT, xasprintf("no %s within %ld ms", what_missing, limit));
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
	f->timeout_ms = item->timeout_ms > 0 ? item->timeout_ms : up->request_timeout_ms;
	f->connect_timeout_ms = up->connect_timeout_ms < f->timeout_ms
	                        ? up->connect_timeout_ms : f->timeout_ms;
	fetch_slots_init(f);
	pool_waiter_init(&f->conn_waiter, fetch_conn_ready, f);
}

void fetch_start(struct fetch *f)
{
	f->t_start = clock_now_ms();
	f->t_first = f->t_start;
	f->out->attempts = 1;
	retry_policy_resolve(&f->policy, &f->up->retry, f->batch_retry, f->item->retry,
	                     f->up->max_retries);
	if (f->twin)   /* a hedge is one more attempt already */
		f->policy.attempts = 1;
	f->collapsing = fetch_collapsible(f);   /* once: a reload may change the key */
	fetch_debug(f, "%s %s", request_method_name(f->item->method), f->item->url);
	fetch_set_state(f, FETCH_QUEUED);
	(*f->env->queued)++;
	fetch_start_attempt(f);
}

void fetch_cleanup(struct fetch *f)
{
	stop_timer(f);
	forget_attempt(f);
}
