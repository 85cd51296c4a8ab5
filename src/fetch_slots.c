/* fetch_slots: what a fetch waits through before its request may go out
 * (fetch.h, enum fetch_stage) — its batch's cap, the upstream's FIFO
 * semaphore, the fleet's lease, a global slot, the upstream's Retry-After
 * pause and a rate token, or instead, for a collapsible request, joining
 * the identical one in flight — and handing the slots back.  fetch.c owns
 * the rest of its life. */
#include <stdbool.h>

#include "clock.h"
#include "collapse.h"
#include "fetch.h"
#include "fetch_internal.h"
#include "xalloc.h"

static void acquire(struct fetch *f);

/* Leave whichever queue the waiter is in. */
void fetch_leave_queue(struct fetch *f)
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
	case FETCH_STAGE_FLEET:
		if (f->fleet != NULL)
			shared_limit_cancel(f->fleet, &f->fleet_waiter);
		break;
	case FETCH_STAGE_GLOBAL:
		limit_sem_cancel(f->env->global, &f->waiter);
		break;
	case FETCH_STAGE_PAUSE:
		upstream_cancel_pause(f->up, &f->waiter);
		break;
	case FETCH_STAGE_TOKEN:
		upstream_cancel_token(f->up, &f->waiter);
		break;
	case FETCH_STAGE_STARTED:
		break;
	}
	(*f->env->queued)--;
}

/* Hand back the slots held, the widest first. */
void fetch_release_slots(struct fetch *f)
{
	enum fetch_stage held = f->stage;

	f->stage = FETCH_STAGE_BATCH_CAP;
	if (held > FETCH_STAGE_GLOBAL)
		limit_sem_release(f->env->global);
	if (f->lease != NULL)
		shared_limit_release(f->fleet, f->lease);
	f->lease = NULL;
	f->fleet = NULL;
	f->fleet_local = false;
	if (held > FETCH_STAGE_UPSTREAM)
		limit_sem_release(&f->up->sem);
	if (held > FETCH_STAGE_BATCH_CAP && f->batch_sem != NULL)
		limit_sem_release(f->batch_sem);
}

/* --- the stages --------------------------------------------------------- */

/* Wait for w in the queue of stage s: true if granted at once. */
static bool take(struct fetch *f, enum fetch_stage s)
{
	switch (s) {
	case FETCH_STAGE_BATCH_CAP:
		return f->batch_sem == NULL || limit_sem_acquire(f->batch_sem, &f->waiter);
	case FETCH_STAGE_UPSTREAM:
		return limit_sem_acquire(&f->up->sem, &f->waiter);
	case FETCH_STAGE_FLEET:
		f->fleet = upstream_fleet(f->up);
		if (f->fleet == NULL)
			return true;
		shared_limit_acquire(f->fleet, &f->fleet_waiter);   /* grants later */
		return false;
	case FETCH_STAGE_GLOBAL:
		return limit_sem_acquire(f->env->global, &f->waiter);
	case FETCH_STAGE_PAUSE:
		return upstream_pass_pause(f->up, &f->waiter);
	case FETCH_STAGE_TOKEN:
		/* the fleet's Redis held the rate already, unless it was down */
		if (f->fleet != NULL && !f->fleet_local)
			return true;
		return upstream_take_token(f->up, &f->waiter);
	default:
		return true;
	}
}

/* A GET or HEAD without a body to a collapse = yes upstream (SPEC 15). */
bool fetch_collapsible(const struct fetch *f)
{
	const struct request_item *it = f->item;

	return f->up->collapse && it->collapse && !f->inner && it->body == NULL &&
	       (it->method == REQUEST_METHOD_GET || it->method == REQUEST_METHOD_HEAD);
}

/* Join the identical request in flight, taking no slot of its own (not
 * even of its batch's cap); with none in flight, once past its batch's
 * cap, as the request sent for the others.  True when f has joined (it
 * may even be done).  Its own deadline runs from now. */
static bool try_join(struct fetch *f)
{
	bool holds_cap = f->stage == FETCH_STAGE_UPSTREAM && f->batch_sem != NULL;

	if (!f->collapsing || f->stage > FETCH_STAGE_UPSTREAM)
		return false;
	if (f->stage == FETCH_STAGE_BATCH_CAP && f->batch_sem != NULL && !collapse_in_flight(f))
		return false;   /* it will be sent: its batch's cap first */
	(*f->env->queued)--;
	fetch_set_state(f, FETCH_JOINED);
	f->t_slot = clock_now_ms();
	f->t_granted = f->t_slot;
	f->out->timing.queued_ms = f->t_slot - f->t_start;
	fetch_arm_timer(f);
	if (collapse_join(f))   /* sent for all: may be answered before it returns */
		return true;
	if (holds_cap)   /* one came in flight while it waited for the cap */
		fetch_release_slots(f);
	return true;
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
		if (try_join(f))
			return;
		if (!take(f, f->stage)) {
			if (f->stage > FETCH_STAGE_UPSTREAM)
				fetch_arm_timer(f);
			return;
		}
		f->stage++;
		if (f->stage == FETCH_STAGE_UPSTREAM + 1)
			f->t_slot = clock_now_ms();
	}
	(*f->env->queued)--;
	fetch_begin(f);
}

/* An attempt begins (queued): unless the upstream's breaker is open, then
 * it fails at once and nothing is sent. */
void fetch_start_attempt(struct fetch *f)
{
	double retry_in;

	/* a request that joins another is not sent: that one asks the breaker */
	if (f->collapsing || fetch_retry_admit(f, &retry_in)) {
		acquire(f);
		return;
	}
	f->out->retry_after_s = retry_seconds_up(retry_in);
	fetch_fail(f, OUTCOME_CIRCUIT_OPEN, xasprintf("circuit open: %s failed %ld times in a "
	           "row; nothing was sent", f->up->key, f->up->breaker.threshold));
}

/* The fleet's Redis granted a lease (or, down, leave to go on local limits). */
static void on_fleet_grant(struct shared_waiter *w, void *arg)
{
	struct fetch *f = arg;

	f->fleet_local = w->local;
	f->lease = w->local ? NULL : w->lease;
	f->stage++;
	acquire(f);
}

static void on_grant(struct limit_waiter *w, void *arg)
{
	struct fetch *f = arg;

	(void)w;
	f->stage++;
	if (f->stage == FETCH_STAGE_UPSTREAM + 1)
		f->t_slot = clock_now_ms();
	acquire(f);
}

void fetch_slots_init(struct fetch *f)
{
	limit_waiter_init(&f->waiter, on_grant, f);
	shared_waiter_init(&f->fleet_waiter, on_fleet_grant, f);
}
