/* shared_limit: one upstream's limits held in Redis — its FIFO of
 * waiters, the one acquire call it has in flight (asking for as many slots
 * as it has waiters), the leases it holds (renewed at half their life by
 * one timer, released in one ZREM per loop turn), and the fallback: every
 * waiter granted `local` at once while Redis is down. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "shared_internal.h"
#include "xalloc.h"

struct shared_lease {
	TAILQ_ENTRY(shared_lease) link;  /* l->held */
	TAILQ_ENTRY(shared_lease) ready_link;   /* l->ready while unassigned */
	bool ready;
	uint64_t seq;
	double renewed_ms;               /* when its expiry was last set (as sent) */
};

struct shared_limit {
	TAILQ_ENTRY(shared_limit) link;  /* r->limits */
	struct shared_redis *r;
	char *lease_key, *gcra_key;
	long concurrency;
	double interval_ms, tolerance_ms;   /* GCRA; interval 0: no rate */
	TAILQ_HEAD(, shared_waiter) queue;
	size_t nqueued;
	TAILQ_HEAD(, shared_lease) held;    /* every lease granted, assigned or not */
	size_t nheld;
	TAILQ_HEAD(, shared_lease) ready;   /* granted, not yet given to a waiter */
	size_t nready;
	size_t ready_plain;                 /* rate admissions without a lease */
	uint64_t *released;                 /* members to ZREM at the next pump */
	size_t nreleased, released_cap;
	struct shared_call *inflight;       /* the acquire call, at most one */
	bool waiting_rate;                  /* wait_ev is the rate's delay */
	bool dispatching, free_pending;
	struct event *kick_ev;              /* pump on the next loop turn */
	struct event *wait_ev;              /* ask again after a delay or poll */
	struct event *renew_ev;             /* every lease/4: renew the old */
};

static void limit_kick(struct shared_limit *l);

void shared_limits_kick(struct shared_redis *r)
{
	struct shared_limit *l;

	TAILQ_FOREACH(l, &r->limits, link)
		limit_kick(l);
}

void shared_member(const struct shared_redis *r, uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%" PRIu64, r->id, seq);
}

void shared_waiter_init(struct shared_waiter *w, shared_grant_fn grant, void *arg)
{
	memset(w, 0, sizeof *w);
	w->grant = grant;
	w->arg = arg;
}

static void limit_kick(struct shared_limit *l)
{
	event_active(l->kick_ev, EV_TIMEOUT, 1);
}

static void limit_params(struct shared_limit *l, long concurrency, double rate_per_s,
                         double burst)
{
	l->concurrency = concurrency > 0 ? concurrency : 0;
	if (rate_per_s > 0) {
		l->interval_ms = 1000.0 / rate_per_s;
		l->tolerance_ms = (burst < 1 ? 0 : burst - 1) * l->interval_ms;
	} else {
		l->interval_ms = 0;
		l->tolerance_ms = 0;
	}
}

/* One ZREM for the members released since the last pump (dropped when
 * Redis is not up: those leases expire there by themselves). */
static void limit_flush_releases(struct shared_limit *l)
{
	struct shared_redis *r = l->r;
	struct shared_call *c;
	char m[64];

	if (l->nreleased == 0)
		return;
	if (r->state != SHARED_UP || r->ac == NULL) {
		l->nreleased = 0;
		return;
	}
	c = shared_call_new(r, CALL_RELEASE, (int)l->nreleased + 2);
	shared_call_arg(c, 0, "ZREM");
	shared_call_arg(c, 1, l->lease_key);
	for (size_t i = 0; i < l->nreleased; i++) {
		shared_member(r, l->released[i], m, sizeof m);
		shared_call_arg(c, (int)i + 2, m);
	}
	l->nreleased = 0;
	(void)shared_call_send(r, c);
}

static void limit_note_release(struct shared_limit *l, uint64_t seq)
{
	if (l->nreleased == l->released_cap) {
		l->released_cap = l->released_cap ? 2 * l->released_cap : 16;
		l->released = xrealloc(l->released, l->released_cap * sizeof *l->released);
	}
	l->released[l->nreleased++] = seq;
}

static void lease_drop(struct shared_limit *l, struct shared_lease *lease)
{
	if (lease->ready) {
		TAILQ_REMOVE(&l->ready, lease, ready_link);
		l->nready--;
	}
	TAILQ_REMOVE(&l->held, lease, link);
	l->nheld--;
	limit_note_release(l, lease->seq);
	free(lease);
}

static void limit_send_acquire(struct shared_limit *l)
{
	struct shared_redis *r = l->r;
	struct shared_call *c = shared_call_new(r, CALL_ACQUIRE, 12);
	size_t want = l->nqueued - l->nready - l->ready_plain;

	if (want > SHARED_MAX_BATCH)
		want = SHARED_MAX_BATCH;
	c->script = SCRIPT_ACQUIRE;
	c->l = l;
	c->want = want;
	c->base = r->next_seq;
	c->with_leases = l->concurrency > 0;
	r->next_seq += want;
	shared_call_arg(c, 0, "EVALSHA");
	shared_call_arg(c, 2, "2");
	shared_call_arg(c, 3, l->lease_key);
	shared_call_arg(c, 4, l->gcra_key);
	shared_call_argf(c, 5, "%zu", want);
	shared_call_argf(c, 6, "%ld", l->concurrency);
	shared_call_argf(c, 7, "%.0f", r->lease_ms);
	shared_call_argf(c, 8, "%.3f", l->interval_ms);
	shared_call_argf(c, 9, "%.3f", l->tolerance_ms);
	shared_call_arg(c, 10, r->id);
	shared_call_argf(c, 11, "%" PRIu64, c->base);
	l->inflight = c;
	if (!shared_call_send_eval(r, c))
		l->inflight = NULL;
}

static void limit_grant(struct shared_limit *l, struct shared_waiter *w, bool local,
                        struct shared_lease *lease)
{
	TAILQ_REMOVE(&l->queue, w, link);
	l->nqueued--;
	w->queued = false;
	w->local = local;
	w->lease = lease;
	if (local)
		l->r->stats.fallbacks++;
	w->grant(w, w->arg);
}

/* Give what Redis granted to the queue's head, in order; when Redis is
 * down, every waiter queued now goes local. */
static void limit_dispatch(struct shared_limit *l)
{
	size_t n = l->nqueued;     /* not those that callbacks queue now */
	struct shared_waiter *w;

	while (n > 0 && (w = TAILQ_FIRST(&l->queue)) != NULL) {
		struct shared_lease *lease = TAILQ_FIRST(&l->ready);

		n--;
		if (lease != NULL) {
			TAILQ_REMOVE(&l->ready, lease, ready_link);
			lease->ready = false;
			l->nready--;
			limit_grant(l, w, false, lease);
		} else if (l->ready_plain > 0) {
			l->ready_plain--;
			limit_grant(l, w, false, NULL);
		} else if (l->r->state == SHARED_DOWN) {
			limit_grant(l, w, true, NULL);
		} else {
			break;
		}
	}
}

static void limit_free_now(struct shared_limit *l);

/* On the kick: dispatch, hand back what nobody waits for, flush the
 * releases, and ask Redis for what the queue still needs. */
static void limit_pump(struct shared_limit *l)
{
	struct shared_redis *r = l->r;

	l->dispatching = true;
	limit_dispatch(l);
	l->dispatching = false;
	if (l->free_pending) {
		limit_free_now(l);
		return;
	}
	if (l->nqueued == 0) {
		while (!TAILQ_EMPTY(&l->ready))
			lease_drop(l, TAILQ_FIRST(&l->ready));
		l->ready_plain = 0;
	}
	limit_flush_releases(l);
	/* those that grant callbacks queued just now */
	if (l->nqueued > 0 && (r->state == SHARED_DOWN || l->nready > 0 || l->ready_plain > 0))
		limit_kick(l);
	if (r->state != SHARED_UP || l->inflight != NULL || evtimer_pending(l->wait_ev, NULL))
		return;
	if (l->nqueued > l->nready + l->ready_plain)
		limit_send_acquire(l);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	limit_pump(arg);
}

static void on_wait(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	limit_pump(arg);
}

/* The acquire's connection is gone: what it was granted (if anything)
 * expires in Redis by itself. */
void shared_limit_call_lost(struct shared_call *c)
{
	if (c->l != NULL) {
		c->l->inflight = NULL;
		limit_kick(c->l);
		c->l = NULL;
	}
}

static void limit_arm_wait(struct shared_limit *l, long long delay_ms)
{
	struct timeval tv = clock_timeval(delay_ms > 0 ? (double)delay_ms : SHARED_POLL_MS);

	l->waiting_rate = delay_ms > 0;
	evtimer_add(l->wait_ev, &tv);
}

/* Releases the leases an acquire got after its limit was freed. */
static void orphan_release(struct shared_call *c, long long granted)
{
	struct shared_call *z;
	char m[64];

	if (!c->with_leases || granted <= 0 || c->r->ac == NULL)
		return;
	z = shared_call_new(c->r, CALL_RELEASE, (int)granted + 2);
	shared_call_arg(z, 0, "ZREM");
	shared_call_arg(z, 1, c->argv[3]);
	for (long long i = 0; i < granted; i++) {
		shared_member(c->r, c->base + (uint64_t)i, m, sizeof m);
		shared_call_arg(z, (int)i + 2, m);
	}
	(void)shared_call_send(c->r, z);
}

void shared_limit_acquire_reply(struct shared_call *c, const redisReply *reply)
{
	struct shared_limit *l = c->l;
	long long granted = 0, delay = 0;

	if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
	    reply->element[0]->type == REDIS_REPLY_INTEGER &&
	    reply->element[1]->type == REDIS_REPLY_INTEGER) {
		granted = reply->element[0]->integer;
		delay = reply->element[1]->integer;
	}
	if (granted < 0 || (size_t)granted > c->want)
		granted = 0;
	if (l == NULL) {
		orphan_release(c, granted);
		return;
	}
	l->inflight = NULL;
	c->l = NULL;
	for (long long i = 0; i < granted; i++) {
		if (c->with_leases) {
			struct shared_lease *lease = xcalloc(1, sizeof *lease);

			lease->seq = c->base + (uint64_t)i;
			lease->renewed_ms = c->sent_ms;
			lease->ready = true;
			TAILQ_INSERT_TAIL(&l->held, lease, link);
			TAILQ_INSERT_TAIL(&l->ready, lease, ready_link);
			l->nheld++;
			l->nready++;
		} else {
			l->ready_plain++;
		}
	}
	/* more wanted than Redis gave: wait for the delay it named, or poll */
	if ((size_t)granted < c->want && l->nqueued > l->nready + l->ready_plain)
		limit_arm_wait(l, delay);
	limit_kick(l);
}

/* Every lease/4: one renew call for the leases renewed lease/2 ago or
 * more (so each is renewed with at least a quarter of its lease left). */
static void on_renew(evutil_socket_t fd, short what, void *arg)
{
	struct shared_limit *l = arg;
	struct shared_redis *r = l->r;
	struct shared_lease *lease;
	struct shared_call *c;
	double now = clock_now_ms();
	size_t n = 0;
	char m[64];
	int i;

	(void)fd;
	(void)what;
	if (r->state != SHARED_UP || r->ac == NULL)
		return;
	TAILQ_FOREACH(lease, &l->held, link)
		if (now - lease->renewed_ms >= r->lease_ms / 2)
			n++;
	if (n == 0)
		return;
	c = shared_call_new(r, CALL_RENEW, (int)n + 5);
	c->script = SCRIPT_RENEW;
	shared_call_arg(c, 0, "EVALSHA");
	shared_call_arg(c, 2, "1");
	shared_call_arg(c, 3, l->lease_key);
	shared_call_argf(c, 4, "%.0f", r->lease_ms);
	i = 5;
	TAILQ_FOREACH(lease, &l->held, link) {
		if (now - lease->renewed_ms < r->lease_ms / 2)
			continue;
		shared_member(r, lease->seq, m, sizeof m);
		shared_call_arg(c, i++, m);
		lease->renewed_ms = now;
	}
	(void)shared_call_send_eval(r, c);
}

struct shared_limit *shared_limit_new(struct shared_redis *r, const char *upstream_key,
                                      long concurrency, double rate_per_s, double burst)
{
	struct shared_limit *l = xcalloc(1, sizeof *l);
	struct timeval tv = clock_timeval(r->lease_ms / 4);

	l->r = r;
	l->lease_key = xasprintf("%s{%s}:leases", r->prefix, upstream_key);
	l->gcra_key = xasprintf("%s{%s}:gcra", r->prefix, upstream_key);
	limit_params(l, concurrency, rate_per_s, burst);
	TAILQ_INIT(&l->queue);
	TAILQ_INIT(&l->held);
	TAILQ_INIT(&l->ready);
	l->kick_ev = xcheck(evtimer_new(r->base, on_kick, l));
	l->wait_ev = xcheck(evtimer_new(r->base, on_wait, l));
	l->renew_ev = xcheck(event_new(r->base, -1, EV_PERSIST, on_renew, l));
	event_add(l->renew_ev, &tv);
	TAILQ_INSERT_TAIL(&r->limits, l, link);
	return l;
}

void shared_limit_configure(struct shared_limit *l, long concurrency, double rate_per_s,
                            double burst)
{
	limit_params(l, concurrency, rate_per_s, burst);
	event_del(l->wait_ev);     /* a raised limit may grant now */
	limit_kick(l);
}

static void limit_free_now(struct shared_limit *l)
{
	struct shared_waiter *w;

	while ((w = TAILQ_FIRST(&l->queue)) != NULL) {
		TAILQ_REMOVE(&l->queue, w, link);
		w->queued = false;
	}
	while (!TAILQ_EMPTY(&l->held))
		lease_drop(l, TAILQ_FIRST(&l->held));
	limit_flush_releases(l);
	if (l->inflight != NULL)
		l->inflight->l = NULL;   /* its reply releases what it got */
	TAILQ_REMOVE(&l->r->limits, l, link);
	event_free(l->kick_ev);
	event_free(l->wait_ev);
	event_free(l->renew_ev);
	free(l->released);
	free(l->lease_key);
	free(l->gcra_key);
	free(l);
}

void shared_limit_free(struct shared_limit *l)
{
	if (l == NULL)
		return;
	if (l->dispatching)
		l->free_pending = true;
	else
		limit_free_now(l);
}

void shared_limit_acquire(struct shared_limit *l, struct shared_waiter *w)
{
	w->local = false;
	w->lease = NULL;
	w->queued = true;
	TAILQ_INSERT_TAIL(&l->queue, w, link);
	l->nqueued++;
	limit_kick(l);
}

void shared_limit_cancel(struct shared_limit *l, struct shared_waiter *w)
{
	if (!w->queued)
		return;
	TAILQ_REMOVE(&l->queue, w, link);
	l->nqueued--;
	w->queued = false;
	limit_kick(l);             /* a lease granted for it goes back */
}

void shared_limit_release(struct shared_limit *l, struct shared_lease *lease)
{
	if (lease == NULL)
		return;
	lease_drop(l, lease);
	/* a slot of ours is free: ask at once, unless the rate is what we wait for */
	if (!l->waiting_rate)
		event_del(l->wait_ev);
	limit_kick(l);
}

size_t shared_limit_held(const struct shared_limit *l)
{
	return l->nheld;
}

size_t shared_limit_queued(const struct shared_limit *l)
{
	return l->nqueued;
}
