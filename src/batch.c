/* batch: TaskGroup semantics over a set of fetches.  Mode "all" fails
 * fast: the first failure cancels the queued requests, then aborts the
 * ones in flight, then answers.  Mode "settled" waits for every outcome.
 *
 *
 *   running -> finishing (answer or free scheduled) -> answering -> freed
 *   (a batch whose client went away is freed from finishing).  Every
 *   change goes through set_state(), which checks and traces it. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "clock.h"
#include "batch.h"
#include "fetch.h"
#include "log.h"
#include "xalloc.h"

enum batch_state {
	BATCH_RUNNING,     /* fetches under way */
	BATCH_FINISHING,   /* outcome known; answer (or free) scheduled */
	BATCH_ANSWERING,   /* handed to the caller, which pulls the answer */
};

/* The batch's own limit for one upstream (max_concurrency). */
struct batch_cap {
	struct upstream *up;           /* NULL = free table slot */
	struct limit_sem sem;
};

struct batch {
	enum batch_state state;        /* changed by set_state() only */
	unsigned long id;              /* "b17" in the log */
	struct batch_request req;      /* owned */
	struct outcome *outcomes;      /* owned, one per item */
	struct fetch *fetches;         /* owned, one per item */
	struct batch_cap *caps;        /* owned hash table, NULL without a cap */
	size_t ncaps;                  /* its size: a power of two > items */
	size_t pending;                /* fetches not done */
	uint64_t body_bytes;           /* response bodies held, all fetches */
	bool stopping;                 /* stop_all() under way: start nothing */
	double t_start;
	struct event *deadline;        /* batch timeout */
	struct event *finish_ev;       /* deferred answer + free */
	batch_answer_fn answer;        /* NULL once the client is gone */
	void *answer_arg;
	struct answer_stream stream;   /* the answer, once finished */
};

static void on_finish(evutil_socket_t fd, short what, void *arg);
static void on_deadline(evutil_socket_t fd, short what, void *arg);
static void on_fetch_done(struct fetch *f, void *arg);

/* Batches ever made: names them in the log. */
static unsigned long batch_ids;

static void describe(const void *obj, char *buf, size_t len)
{
	const struct batch *b = obj;

	snprintf(buf, len, "b%lu", b->id);
}

/* (batch_obj() makes the compiler check that b is a batch.) */
static inline const void *batch_obj(const struct batch *b) { return b; }
#define batch_debug(b, ...) \
	log_about(LOG_LEVEL_DEBUG, describe, batch_obj(b), __VA_ARGS__)

/* Every change of b->state: one step forward at a time. */
static void set_state(struct batch *b, enum batch_state to)
{
	static const char *names[] = {
		[BATCH_RUNNING] = "running", [BATCH_FINISHING] = "finishing",
		[BATCH_ANSWERING] = "answering",
	};

	assert(to == b->state + 1);
	batch_debug(b, "%s -> %s", names[b->state], names[to]);
	b->state = to;
}

/* The cap semaphore for u, created on first use (open addressing on the
 * upstream's address: a batch may name thousands of upstreams). */
static struct limit_sem *cap_for(struct batch *b, struct upstream *u)
{
	size_t i = ((uintptr_t)u >> 4) & (b->ncaps - 1);

	while (b->caps[i].up != NULL && b->caps[i].up != u)
		i = (i + 1) & (b->ncaps - 1);
	if (b->caps[i].up == NULL) {
		b->caps[i].up = u;
		limit_sem_init(&b->caps[i].sem, (size_t)b->req.max_concurrency);
	}
	return &b->caps[i].sem;
}

static void make_caps(struct batch *b)
{
	if (b->req.max_concurrency <= 0)
		return;
	b->ncaps = 16;
	while (b->ncaps <= 2 * b->req.n)
		b->ncaps *= 2;
	b->caps = xcalloc(b->ncaps, sizeof *b->caps);
}

struct batch *batch_new(struct batch_request *br, struct upstream_registry *reg,
                        const struct fetch_env *env, const struct batch_settings *bs,
                        batch_answer_fn answer, void *arg)
{
	struct batch *b = xcalloc(1, sizeof *b);
	struct timeval tv;
	long timeout_ms;
	double deadline_ms;
	size_t i, n = br->n;

	b->id = ++batch_ids;
	b->req = *br;
	memset(br, 0, sizeof *br);
	b->outcomes = xcalloc(n, sizeof *b->outcomes);
	b->fetches = xcalloc(n, sizeof *b->fetches);
	make_caps(b);
	timeout_ms = b->req.timeout_ms > 0 ? b->req.timeout_ms : bs->batch_timeout_ms;
	deadline_ms = clock_now_ms() + (double)timeout_ms;
	for (i = 0; i < n; i++) {
		const struct request_item *it = &b->req.items[i];
		struct upstream *u = upstream_get(reg, it->upstream_key, it->host, it->port,
		                                  it->tls);

		outcome_init(&b->outcomes[i]);
		fetch_init(&b->fetches[i], i, it, &b->outcomes[i], u,
		           b->caps ? cap_for(b, u) : NULL, env, on_fetch_done, b);
		b->fetches[i].batch_bytes = &b->body_bytes;
		b->fetches[i].halt = &b->stopping;
		b->fetches[i].batch_id = b->id;
		b->fetches[i].batch_retry = b->req.retry;
		b->fetches[i].deadline_ms = deadline_ms;
	}
	b->pending = n;
	b->answer = answer;
	b->answer_arg = arg;
	b->finish_ev = xcheck(evtimer_new(env->base, on_finish, b));
	b->deadline = xcheck(evtimer_new(env->base, on_deadline, b));
	tv = clock_timeval((double)timeout_ms);
	evtimer_add(b->deadline, &tv);
	return b;
}

size_t batch_size(const struct batch *b)
{
	return b->req.n;
}

bool batch_first_failure(const struct batch *b, size_t *index, enum outcome_type *type)
{
	size_t i;

	for (i = 0; i < b->req.n; i++) {
		if (outcome_is_failure(&b->outcomes[i])) {
			*index = i;
			*type = b->outcomes[i].type;
			return true;
		}
	}
	return false;
}

static void schedule_finish(struct batch *b)
{
	if (b->state != BATCH_RUNNING)
		return;
	set_state(b, BATCH_FINISHING);
	evtimer_del(b->deadline);
	event_active(b->finish_ev, EV_TIMEOUT, 0);
}

/* Stop every fetch not done.  While this runs, a slot that an abort frees
 * may be granted to a queued sibling: b->stopping makes that sibling keep
 * the slot without starting (see acquire() in fetch.c) until its own
 * abort here hands it back. */
static void stop_all(struct batch *b, enum outcome_type type, const char *message)
{
	size_t i;

	b->stopping = true;
	for (i = 0; i < b->req.n; i++)
		fetch_abort(&b->fetches[i], type, message);
	b->pending = 0;
}

static void on_fetch_done(struct fetch *f, void *arg)
{
	struct batch *b = arg;

	b->pending--;
	if (b->state != BATCH_RUNNING)
		return;
	if (b->req.mode == BATCH_MODE_ALL && outcome_is_failure(f->out)) {
		batch_debug(b, "[%zu] failed: cancelling the %zu not done", f->index,
		            b->pending);
		stop_all(b, OUTCOME_CANCELLED, NULL);
		schedule_finish(b);
		return;
	}
	if (b->pending == 0)
		schedule_finish(b);
}

void batch_start(struct batch *b)
{
	size_t i;

	b->t_start = clock_now_ms();
	batch_debug(b, "accepted: %zu request%s, mode %s", b->req.n, b->req.n == 1 ? "" : "s",
	            b->req.mode == BATCH_MODE_ALL ? "all" : "settled");
	for (i = 0; i < b->req.n && b->state == BATCH_RUNNING; i++)
		if (b->fetches[i].state == FETCH_IDLE)
			fetch_start(&b->fetches[i]);
	if (b->req.n == 0)
		schedule_finish(b);
}

/* Every request still queued or in flight at the deadline times out. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct batch *b = arg;

	(void)fd;
	(void)what;
	batch_debug(b, "deadline reached");
	stop_all(b, OUTCOME_TIMEOUT, "batch deadline (timeout_ms / batch_timeout) reached");
	schedule_finish(b);
}

void batch_abandon(struct batch *b)
{
	batch_debug(b, "the client went away");
	b->answer = NULL;
	stop_all(b, OUTCOME_CANCELLED, NULL);
	schedule_finish(b);
}

void batch_cancel(struct batch *b)
{
	batch_debug(b, "shutdown_timeout reached");
	stop_all(b, OUTCOME_CANCELLED, "fanoutd is shutting down");
	schedule_finish(b);
}

void batch_free(struct batch *b)
{
	size_t i;

	for (i = 0; i < b->req.n; i++) {
		fetch_cleanup(&b->fetches[i]);
		upstream_put(b->fetches[i].up);
		outcome_clear(&b->outcomes[i]);
	}
	free(b->fetches);
	free(b->outcomes);
	free(b->caps);
	request_free(&b->req);
	event_free(b->deadline);
	event_free(b->finish_ev);
	free(b);
}

static void on_finish(evutil_socket_t fd, short what, void *arg)
{
	struct batch *b = arg;

	(void)fd;
	(void)what;
	if (b->answer == NULL) {
		batch_debug(b, "freed: nobody to answer");
		batch_free(b);
		return;
	}
	set_state(b, BATCH_ANSWERING);
	answer_stream_init(&b->stream, &b->req, b->outcomes, clock_now_ms() - b->t_start);
	batch_debug(b, "answered %d after %.1f ms", b->stream.status, clock_now_ms() - b->t_start);
	b->answer(b, b->stream.status, b->answer_arg);
}

bool batch_answer_more(struct batch *b, struct evbuffer *out, size_t budget)
{
	return answer_stream_write(&b->stream, out, budget);
}
