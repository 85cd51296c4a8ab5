/* hedge: the second attempt of a slow idempotent request (see hedge.h).
 *
 *   armed (timer) -> sent (the twin queued, then under way: hedge_began)
 *                 -> parted (freed next turn)
 *
 * A hedge belongs to one attempt of its request: the attempt's end (any
 * result) cancels it, and the twin, if its answer comes first, is taken
 * as that attempt's result (fetch_take_hedge) and the attempt cancelled
 * instead.  A twin that fails is dropped and the attempt goes on; an
 * attempt that fails while its twin goes on waits for it (fetch.c,
 * FETCH_JOINED), and if the twin fails too, its failure is the attempt's
 * (retried if the request's policy says so).  The twin is a fetch marked
 * inner and twin: one attempt, not counted as a client's request.  A
 * hedge is freed on the next turn of the loop, never inside the calls
 * that end it: the twin's own fetch may be up the stack. */
#include <stdlib.h>

#include "clock.h"
#include "fetch.h"
#include "fetch_internal.h"
#include "hedge.h"
#include "outcome.h"
#include "upstream.h"
#include "xalloc.h"

struct hedge {
	struct fetch *primary;     /* the attempt hedged; NULL once parted */
	struct event *timer;       /* hedge_after; once parted, frees the hedge */
	bool sent;                 /* the twin was started (it may still
	                              wait for its slots) */
	bool halted;               /* parted from its attempt: the twin starts
	                              nothing more, even given a slot (the
	                              twin's halt points here) */
	struct fetch twin;
	struct outcome out;        /* the twin's */
	uint64_t bytes;            /* the twin's body: in no batch's count
	                              until it wins */
};

static void free_hedge(struct hedge *h)
{
	event_free(h->timer);
	fetch_cleanup(&h->twin);
	outcome_clear(&h->out);
	free(h);
}

/* The twin ended, inside its own fetch: part from the attempt now, free
 * on the next turn of the loop (so does hedge_drop). */
static void part(struct hedge *h)
{
	struct timeval now = { 0, 0 };

	if (h->primary != NULL)
		h->primary->hedge = NULL;
	h->primary = NULL;
	h->halted = true;
	evtimer_add(h->timer, &now);
}

/* An answer, whatever its status: what the two race for. */
static bool answered(enum outcome_type t)
{
	return t == OUTCOME_OK || t == OUTCOME_HTTP_STATUS || t == OUTCOME_RATE_LIMITED;
}

static void on_twin_done(struct fetch *twin, void *arg)
{
	struct hedge *h = arg;
	struct fetch *f = h->primary;

	(void)twin;
	part(h);
	if (f == NULL)
		return;
	if (answered(h->out.type)) {
		f->up->hedges_won++;
		fetch_debug(f, "its hedge answered first (%s, status %d)",
		            outcome_type_name(h->out.type), h->out.status);
		fetch_take_hedge(f, &h->out, true);
		return;
	}
	if (f->state == FETCH_JOINED) {   /* both failed: the last failure counts */
		fetch_take_hedge(f, &h->out, false);
		return;
	}
	fetch_debug(f, "its hedge failed (%s); the attempt goes on",
	            outcome_type_name(h->out.type));
}

/* Still without an answer: no head yet, nothing decided. */
static bool unanswered(const struct fetch *f)
{
	return (f->state == FETCH_RESOLVING || f->state == FETCH_WAITCONN ||
	        f->state == FETCH_CONNECTING || f->state == FETCH_EXCHANGING) &&
	       f->out->status == 0;
}

static void send_twin(struct hedge *h)
{
	struct fetch *f = h->primary;

	if (!unanswered(f))
		return;
	if (!upstream_retry_allowed(f->up, false)) {
		f->up->budget_exhausted++;
		fetch_debug(f, "not hedged: %s's retry budget is spent", f->up->key);
		return;
	}
	fetch_init(&h->twin, f->index, f->item, &h->out, f->up, NULL, f->env, on_twin_done, h);
	h->twin.batch_id = f->batch_id;
	h->twin.inner = true;
	h->twin.twin = true;
	h->twin.batch_bytes = &h->bytes;
	h->twin.halt = &h->halted;
	h->twin.deadline_ms = f->deadline_ms;
	h->twin.budget_held = true;   /* handed back when the twin ends */
	/* its request had its turn: the twin waits for the next free slot
	 * before the requests queued behind, not after them (a hedge that
	 * comes after the slow answer is no use) */
	h->twin.waiter.ahead = true;
	f->up->retries_active++;
	h->sent = true;
	fetch_debug(f, "no answer %.0f ms after its slot: hedging",
	            clock_now_ms() - f->t_granted);
	fetch_start(&h->twin);   /* may end at once (an open breaker) */
}

void hedge_began(struct fetch *twin)
{
	struct hedge *h = twin->done_arg;
	struct fetch *f = h->primary;

	twin->up->hedges++;
	if (f == NULL)
		return;
	f->out->hedged = true;
	fetch_debug(f, "hedge sent, %.0f ms after its slot", clock_now_ms() - f->t_granted);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct hedge *h = arg;

	(void)fd;
	(void)what;
	if (h->primary == NULL) {
		free_hedge(h);
		return;
	}
	send_twin(h);
}

void hedge_arm(struct fetch *f)
{
	double delay = upstream_hedge_delay(f->up);
	struct timeval tv;
	struct hedge *h;

	hedge_drop(hedge_detach(f));   /* an earlier attempt's: none, normally */
	if (delay <= 0)
		return;
	h = xcalloc(1, sizeof *h);
	h->primary = f;
	h->timer = xcheck(evtimer_new(f->env->base, on_timer, h));
	outcome_init(&h->out);
	tv = clock_timeval(delay);
	evtimer_add(h->timer, &tv);
	f->hedge = h;
}

bool hedge_running(const struct fetch *f)
{
	return f->hedge != NULL && f->hedge->sent && f->hedge->twin.state != FETCH_DONE;
}

struct hedge *hedge_detach(struct fetch *f)
{
	struct hedge *h = f->hedge;

	if (h == NULL)
		return NULL;
	f->hedge = NULL;
	h->primary = NULL;
	/* f's end hands back its slots before the twin is dropped: a queued
	 * twin they reach must not go out */
	h->halted = true;
	return h;
}

void hedge_drop(struct hedge *h)
{
	struct timeval now = { 0, 0 };

	if (h == NULL)
		return;
	evtimer_add(h->timer, &now);   /* frees it: the twin may be up the stack */
	if (h->sent && h->twin.state != FETCH_DONE)
		fetch_abort(&h->twin, OUTCOME_CANCELLED, "the other attempt answered first");
}
