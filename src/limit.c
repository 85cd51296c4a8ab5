/* limit: the two FIFO limiters of an upstream — the counting semaphore
 * (concurrency) and the token bucket (rate + burst).  Both share the
 * waiter type and the same grant discipline: grants run synchronously
 * (from release() / set_limit() for the semaphore, from dispatch() /
 * set_rate() for the bucket); a grant callback may itself release,
 * acquire or cancel (a request that fails at once, a fetch moving on to
 * its next limiter), so each dispatch is guarded against re-entry and the
 * outer loop picks up the change instead of recursing once per queued
 * waiter. */
#include "limit.h"

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
	w->ahead = false;
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

/* At the tail, or for one marked ahead after the last marked so. */
static void enqueue(struct limit_sem *s, struct limit_waiter *w)
{
	struct limit_waiter *after = NULL, *q;

	if (!w->ahead) {
		TAILQ_INSERT_TAIL(&s->queue, w, link);
		return;
	}
	TAILQ_FOREACH(q, &s->queue, link) {
		if (!q->ahead)
			break;
		after = q;
	}
	if (after != NULL)
		TAILQ_INSERT_AFTER(&s->queue, after, w, link);
	else
		TAILQ_INSERT_HEAD(&s->queue, w, link);
}

bool limit_sem_acquire(struct limit_sem *s, struct limit_waiter *w)
{
	if (s->in_use < s->limit && TAILQ_EMPTY(&s->queue)) {
		s->in_use++;
		return true;
	}
	enqueue(s, w);
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

/* --- token bucket ---------------------------------------------------- */

static double burst_at_least_1(double burst)
{
	return burst >= 1 ? burst : 1;   /* below 1 nothing could ever pass; NaN too */
}

/* The most tokens the bucket may hold.  An idle bucket holds burst.  While
 * waiters are queued, each token is the head's the instant it is whole:
 * a timer that fires late delays the grant but must not lose the token to
 * the cap, or every late wakeup would push all later grants back (drift).
 * Counting the queued waiters in the cap keeps exactly the tokens they
 * would have spent on time. */
static double cap(const struct limit_bucket *b)
{
	return b->burst + (double)b->nqueued;
}

/* Tokens the bucket holds at now_ms, without changing it.  An unlimited
 * bucket is always full; a clock that did not move (or went back) adds
 * nothing. */
static double tokens_at(const struct limit_bucket *b, double now_ms)
{
	double t;

	if (b->rate_per_s <= 0)
		return b->burst;
	if (!(now_ms > b->last_ms))
		return b->tokens;
	t = b->tokens + (now_ms - b->last_ms) * b->rate_per_s / 1000.0;
	return t < cap(b) ? t : cap(b);
}

/* last_ms only moves forward, so time is never counted twice. */
static void refill(struct limit_bucket *b, double now_ms)
{
	b->tokens = tokens_at(b, now_ms);
	if (now_ms > b->last_ms)
		b->last_ms = now_ms;
}

static bool has_token(const struct limit_bucket *b)
{
	return b->rate_per_s <= 0 || b->tokens >= 1 - LIMIT_BUCKET_EPS;
}

/* Only after has_token(): tokens stay >= -EPS. */
static void spend(struct limit_bucket *b)
{
	if (b->rate_per_s > 0)
		b->tokens -= 1;
}

void limit_bucket_init(struct limit_bucket *b, double rate_per_s, double burst,
                       double now_ms)
{
	b->rate_per_s = rate_per_s;
	b->burst = burst_at_least_1(burst);
	b->tokens = b->burst;
	b->last_ms = now_ms;
	b->nqueued = 0;
	b->dispatching = false;
	TAILQ_INIT(&b->queue);
}

bool limit_bucket_acquire(struct limit_bucket *b, struct limit_waiter *w, double now_ms)
{
	refill(b, now_ms);
	if (TAILQ_EMPTY(&b->queue) && has_token(b)) {
		spend(b);
		return true;
	}
	TAILQ_INSERT_TAIL(&b->queue, w, link);
	w->queued = true;
	b->nqueued++;
	return false;
}

double limit_bucket_next_ms(const struct limit_bucket *b, double now_ms)
{
	double t;

	if (TAILQ_EMPTY(&b->queue))
		return -1;
	t = tokens_at(b, now_ms);
	if (b->rate_per_s <= 0 || t >= 1 - LIMIT_BUCKET_EPS)
		return 0;
	return (1 - t) * 1000.0 / b->rate_per_s;
}

/* Refill first, even when re-entered: the outer loop then sees the tokens
 * earned up to the latest time. */
void limit_bucket_dispatch(struct limit_bucket *b, double now_ms)
{
	struct limit_waiter *w;

	refill(b, now_ms);
	if (b->dispatching)
		return;
	b->dispatching = true;
	while (has_token(b) && (w = TAILQ_FIRST(&b->queue)) != NULL) {
		TAILQ_REMOVE(&b->queue, w, link);
		w->queued = false;
		b->nqueued--;
		spend(b);
		w->grant(w, w->arg);
	}
	b->dispatching = false;
}

void limit_bucket_cancel(struct limit_bucket *b, struct limit_waiter *w)
{
	if (!w->queued)
		return;
	TAILQ_REMOVE(&b->queue, w, link);
	w->queued = false;
	b->nqueued--;
	if (b->tokens > cap(b))         /* a token it was owed: not kept past burst */
		b->tokens = cap(b);
}

void limit_bucket_set_rate(struct limit_bucket *b, double rate_per_s, double burst,
                           double now_ms)
{
	bool was_unlimited = b->rate_per_s <= 0;

	refill(b, now_ms);              /* earned so far, at the old rate */
	b->rate_per_s = rate_per_s;
	b->burst = burst_at_least_1(burst);
	/* unlimited is always full, in and out; otherwise cap, never add */
	if (was_unlimited || rate_per_s <= 0)
		b->tokens = b->burst;
	else if (b->tokens > cap(b))
		b->tokens = cap(b);
	limit_bucket_dispatch(b, now_ms);
}
