/* limits: FIFO counting semaphore.  Grants run synchronously from
 * release(); a grant callback may itself release (a request that fails
 * at once), so dispatch() is guarded against re-entry and the outer loop
 * picks up the freed slot instead of recursing once per queued waiter. */
#include "limits.h"

void limit_sem_init(struct limit_sem *s, size_t limit)
{
	s->limit = limit;
	s->in_use = 0;
	s->nqueued = 0;
	s->dispatching = false;
	TAILQ_INIT(&s->queue);
}

void limit_waiter_init(struct limit_waiter *w, limit_grant_fn grant, void *arg)
{
	w->grant = grant;
	w->arg = arg;
	w->queued = false;
}

static void dispatch(struct limit_sem *s)
{
	struct limit_waiter *w;

	if (s->dispatching)
		return;
	s->dispatching = true;
	while (s->in_use < s->limit && (w = TAILQ_FIRST(&s->queue)) != NULL) {
		TAILQ_REMOVE(&s->queue, w, link);
		w->queued = false;
		s->nqueued--;
		s->in_use++;
		w->grant(w, w->arg);
	}
	s->dispatching = false;
}

bool limit_sem_acquire(struct limit_sem *s, struct limit_waiter *w)
{
	if (s->in_use < s->limit && TAILQ_EMPTY(&s->queue)) {
		s->in_use++;
		return true;
	}
	TAILQ_INSERT_TAIL(&s->queue, w, link);
	w->queued = true;
	s->nqueued++;
	return false;
}

void limit_sem_release(struct limit_sem *s)
{
	if (s->in_use > 0)
		s->in_use--;
	dispatch(s);
}

void limit_sem_cancel(struct limit_sem *s, struct limit_waiter *w)
{
	if (!w->queued)
		return;
	TAILQ_REMOVE(&s->queue, w, link);
	w->queued = false;
	s->nqueued--;
}

void limit_sem_set_limit(struct limit_sem *s, size_t limit)
{
	s->limit = limit;
	dispatch(s);
}
