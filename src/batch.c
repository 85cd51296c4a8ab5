/* batch: TaskGroup semantics over a set of fetches.  Mode "all" fails
 * fast: the first failure cancels the queued requests, then aborts the
 * ones in flight, then answers.  Mode "settled" waits for every outcome.
 * A buffered answer has a fetch and an outcome per item, all started at
 * once; a streamed one a window of slots (fetch + outcome), each item
 * started in input order as a slot is free, its line written and the
 * slot reused once it is done (batch_lines).
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

/* What a streamed batch has besides its slots. */
struct batch_stream {
	unsigned char *types;          /* owned: each item's enum outcome_type */
	size_t *slot_item;             /* owned: the item in each slot, or NO_ITEM */
	size_t *free_slots;            /* owned stack of the slots not in use */
	size_t nfree;
	size_t *due;                   /* owned ring of slots whose line is due */
	size_t due_head, due_len;
	size_t next_item;              /* the next item to start */
	size_t synth_next, synth_end;  /* items the deadline caught unstarted:
	                                * their timeout lines still to write */
	size_t done, failed;           /* for the progress lines */
	bool held;                     /* back-pressure: start nothing */
	bool progress_due;
	struct event *progress;        /* every progress_ms, or NULL */
	struct event *lines_ev;        /* deferred: calls ready */
	batch_lines_fn ready;          /* NULL once the client is gone */
	void *ready_arg;
	bool last_written;
};

#define NO_ITEM SIZE_MAX

struct batch {
	enum batch_state state;        /* changed by set_state() only */
	unsigned long id;              /* "b17" in the log */
	struct batch_request req;      /* owned */
	struct outcome *outcomes;      /* owned, one per slot */
	struct fetch *fetches;         /* owned, one per slot */
	size_t nslots;                 /* n buffered, the window streamed */
	struct upstream_registry *reg; /* borrowed */
	const struct fetch_env *env;   /* borrowed */
	double deadline_ms;
	double elapsed_ms;             /* at the end */
	struct batch_stream *st;       /* owned; NULL: a buffered answer */
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

size_t batch_stream_window(long global_concurrency)
{
	size_t w = global_concurrency > 0 ? 2 * (size_t)global_concurrency : 0;

	return w < 256 ? 256 : w > 65536 ? 65536 : w;
}

/* Slot k, for item i: a fetch ready to start. */
static void init_slot(struct batch *b, size_t k, size_t i)
{
	const struct request_item *it = &b->req.items[i];
	struct upstream *u = upstream_get(b->reg, it->upstream_key, it->host, it->port, it->tls);
	struct fetch *f = &b->fetches[k];

	outcome_init(&b->outcomes[k]);
	fetch_init(f, i, it, &b->outcomes[k], u, b->caps ? cap_for(b, u) : NULL, b->env,
	           on_fetch_done, b);
	f->batch_bytes = &b->body_bytes;
	f->halt = &b->stopping;
	f->batch_id = b->id;
	f->batch_retry = b->req.retry;
	f->deadline_ms = b->deadline_ms;
}

static void on_lines_ev(evutil_socket_t fd, short what, void *arg);
static void on_progress(evutil_socket_t fd, short what, void *arg);

static struct batch_stream *stream_new(struct batch *b, size_t window)
{
	struct batch_stream *st = xcalloc(1, sizeof *st);
	size_t k, n = b->req.n;

	b->nslots = n < window ? n : window;
	st->types = xcalloc(n ? n : 1, 1);
	st->slot_item = xcalloc(b->nslots ? b->nslots : 1, sizeof *st->slot_item);
	st->free_slots = xcalloc(b->nslots ? b->nslots : 1, sizeof *st->free_slots);
	st->due = xcalloc(b->nslots ? b->nslots : 1, sizeof *st->due);
	for (k = 0; k < b->nslots; k++) {
		st->slot_item[k] = NO_ITEM;
		st->free_slots[st->nfree++] = b->nslots - 1 - k;   /* slot 0 first */
	}
	st->lines_ev = xcheck(event_new(b->env->base, -1, 0, on_lines_ev, b));
	if (b->req.progress_ms > 0)
		st->progress = xcheck(event_new(b->env->base, -1, EV_PERSIST, on_progress, b));
	return st;
}

struct batch *batch_new(struct batch_request *br, struct upstream_registry *reg,
                        const struct fetch_env *env, const struct batch_settings *bs,
                        batch_answer_fn answer, void *arg)
{
	struct batch *b = xcalloc(1, sizeof *b);
	struct timeval tv;
	long timeout_ms;
	size_t i, n = br->n;

	b->id = ++batch_ids;
	b->req = *br;
	memset(br, 0, sizeof *br);
	b->reg = reg;
	b->env = env;
	timeout_ms = b->req.timeout_ms > 0 ? b->req.timeout_ms : bs->batch_timeout_ms;
	b->deadline_ms = clock_now_ms() + (double)timeout_ms;
	make_caps(b);
	if (bs->stream_window > 0)
		b->st = stream_new(b, bs->stream_window);
	else
		b->nslots = n;
	b->outcomes = xcalloc(b->nslots ? b->nslots : 1, sizeof *b->outcomes);
	b->fetches = xcalloc(b->nslots ? b->nslots : 1, sizeof *b->fetches);
	if (b->st == NULL)
		for (i = 0; i < n; i++)
			init_slot(b, i, i);
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

/* Item i's outcome type, wherever it is kept. */
static enum outcome_type type_of(const struct batch *b, size_t i)
{
	return b->st ? (enum outcome_type)b->st->types[i] : b->outcomes[i].type;
}

static bool is_failure(enum outcome_type t)
{
	return t != OUTCOME_PENDING && t != OUTCOME_OK && t != OUTCOME_CANCELLED;
}

bool batch_first_failure(const struct batch *b, size_t *index, enum outcome_type *type)
{
	size_t i;

	for (i = 0; i < b->req.n; i++) {
		if (is_failure(type_of(b, i))) {
			*index = i;
			*type = type_of(b, i);
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
	if (b->st != NULL && b->st->progress != NULL)
		evtimer_del(b->st->progress);
	event_active(b->finish_ev, EV_TIMEOUT, 0);
}

/* Stop every fetch not done.  While this runs, a slot that an abort frees
 * may be granted to a queued sibling: b->stopping makes that sibling keep
 * the slot without starting (see acquire() in fetch.c) until its own
 * abort here hands it back. */
/* --- streamed batches: slots and lines --------------------------------- */

/* Slot k's line is due: queue it (FIFO, completion order). */
static void line_due(struct batch *b, size_t k)
{
	struct batch_stream *st = b->st;

	st->due[(st->due_head + st->due_len++) % b->nslots] = k;
	event_active(st->lines_ev, EV_TIMEOUT, 0);
}

/* Start items in input order while slots are free and nothing holds. */
static void start_more(struct batch *b)
{
	struct batch_stream *st = b->st;
	size_t k, i;

	while (b->state == BATCH_RUNNING && !b->stopping && !st->held && st->nfree > 0 &&
	       st->next_item < b->req.n) {
		k = st->free_slots[--st->nfree];
		i = st->next_item++;
		st->slot_item[k] = i;
		init_slot(b, k, i);
		fetch_start(&b->fetches[k]);
	}
}

/* Slot k is written out: free what it holds for the next item. */
static void reuse_slot(struct batch *b, size_t k)
{
	struct fetch *f = &b->fetches[k];

	b->body_bytes -= f->body_len < b->body_bytes ? f->body_len : b->body_bytes;
	fetch_cleanup(f);
	upstream_put(f->up);
	outcome_clear(&b->outcomes[k]);
	b->st->slot_item[k] = NO_ITEM;
	b->st->free_slots[b->st->nfree++] = k;
}

static void on_lines_ev(evutil_socket_t fd, short what, void *arg)
{
	struct batch *b = arg;

	(void)fd;
	(void)what;
	if (b->st->ready != NULL)
		b->st->ready(b, b->st->ready_arg);
}

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
	struct batch *b = arg;

	(void)fd;
	(void)what;
	b->st->progress_due = true;
	event_active(b->st->lines_ev, EV_TIMEOUT, 0);
}

static void put_progress(struct batch *b, struct evbuffer *out)
{
	struct batch_stream *st = b->st;
	struct answer_progress pr = { .total = b->req.n, .done = st->done,
	                              .failed = st->failed };
	size_t k;

	for (k = 0; k < b->nslots; k++) {
		if (st->slot_item[k] == NO_ITEM)
			continue;
		switch (b->fetches[k].state) {
		case FETCH_RESOLVING: case FETCH_WAITCONN: case FETCH_CONNECTING:
		case FETCH_EXCHANGING:
			pr.in_flight++;
			break;
		default:
			break;
		}
	}
	pr.queued = pr.total - pr.done - pr.in_flight;
	pr.elapsed_ms = clock_now_ms() - b->t_start;
	answer_write_progress(out, &pr);
	st->progress_due = false;
}

/* The line of an item the deadline caught before it started: a timeout
 * in phase "queued", as its buffered answer has it. */
static void put_synth_line(struct batch *b, struct evbuffer *out, size_t i)
{
	struct outcome o;

	outcome_init(&o);
	o.type = OUTCOME_TIMEOUT;
	o.phase = "queued";
	o.message = (char *)"batch deadline (timeout_ms / batch_timeout) reached";
	answer_write_line(out, &b->req, i, &o);
}

enum batch_lines_result batch_lines(struct batch *b, struct evbuffer *out, size_t budget)
{
	struct batch_stream *st = b->st;
	size_t goal = evbuffer_get_length(out) + budget, k;

	if (st->last_written)
		return BATCH_LINES_DONE;
	if (st->progress_due && b->state == BATCH_RUNNING)
		put_progress(b, out);
	while (st->due_len > 0) {
		if (evbuffer_get_length(out) >= goal)
			return BATCH_LINES_MORE;
		k = st->due[st->due_head];
		st->due_head = (st->due_head + 1) % b->nslots;
		st->due_len--;
		answer_write_line(out, &b->req, st->slot_item[k], &b->outcomes[k]);
		reuse_slot(b, k);
	}
	while (st->synth_next < st->synth_end) {
		if (evbuffer_get_length(out) >= goal)
			return BATCH_LINES_MORE;
		put_synth_line(b, out, st->synth_next++);
	}
	start_more(b);
	if (b->state != BATCH_ANSWERING)
		return BATCH_LINES_WAIT;
	answer_write_last(out, &b->req, st->types, b->elapsed_ms);
	st->last_written = true;
	return BATCH_LINES_DONE;
}

void batch_on_lines(struct batch *b, batch_lines_fn ready, void *arg)
{
	b->st->ready = ready;
	b->st->ready_arg = arg;
}

void batch_hold(struct batch *b, bool hold)
{
	if (b->st == NULL || b->st->held == hold)
		return;
	batch_debug(b, "%s", hold ? "stream_buffer full: holding the starts" : "resuming");
	b->st->held = hold;
	if (!hold)
		start_more(b);
}

/* A streamed batch stops: the items in slots not done get type (a timeout
 * is a failure with a line of its own; cancelled ones get none), the
 * items not started too. */
static void stop_stream(struct batch *b, enum outcome_type type, const char *message)
{
	struct batch_stream *st = b->st;
	size_t k, i;

	for (k = 0; k < b->nslots; k++) {
		if (st->slot_item[k] == NO_ITEM || b->fetches[k].state == FETCH_DONE)
			continue;
		fetch_abort(&b->fetches[k], type, message);
		st->types[st->slot_item[k]] = (unsigned char)b->outcomes[k].type;
		if (type == OUTCOME_TIMEOUT)
			line_due(b, k);
	}
	for (i = st->next_item; i < b->req.n; i++)
		st->types[i] = (unsigned char)type;
	if (type == OUTCOME_TIMEOUT) {
		st->synth_next = st->next_item;
		st->synth_end = b->req.n;
		if (st->synth_end > st->synth_next)
			event_active(st->lines_ev, EV_TIMEOUT, 0);
	}
	st->next_item = b->req.n;
}

/* Stop every fetch not done.  While this runs, a slot that an abort frees
 * may be granted to a queued sibling: b->stopping makes that sibling keep
 * the slot without starting (see acquire() in fetch.c) until its own
 * abort here hands it back. */
static void stop_all(struct batch *b, enum outcome_type type, const char *message)
{
	size_t i;

	b->stopping = true;
	if (b->st != NULL) {
		stop_stream(b, type, message);
	} else {
		for (i = 0; i < b->req.n; i++)
			fetch_abort(&b->fetches[i], type, message);
	}
	b->pending = 0;
}

static void on_fetch_done(struct fetch *f, void *arg)
{
	struct batch *b = arg;

	b->pending--;
	if (b->st != NULL) {
		b->st->types[f->index] = (unsigned char)f->out->type;
		b->st->done++;
		b->st->failed += outcome_is_failure(f->out);
		line_due(b, (size_t)(f - b->fetches));
	}
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
	if (b->st != NULL && b->st->progress != NULL) {
		struct timeval tv = clock_timeval((double)b->req.progress_ms);

		evtimer_add(b->st->progress, &tv);
	}
	if (b->st != NULL)
		start_more(b);
	else
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
	if (b->st != NULL)
		b->st->ready = NULL;
	stop_all(b, OUTCOME_CANCELLED, NULL);
	schedule_finish(b);
}

void batch_cancel(struct batch *b)
{
	batch_debug(b, "shutdown_timeout reached");
	stop_all(b, OUTCOME_CANCELLED, "fanoutd is shutting down");
	schedule_finish(b);
}

static void stream_free(struct batch *b)
{
	struct batch_stream *st = b->st;
	size_t k;

	for (k = 0; k < b->nslots; k++) {
		if (st->slot_item[k] == NO_ITEM)
			continue;
		fetch_cleanup(&b->fetches[k]);
		upstream_put(b->fetches[k].up);
		outcome_clear(&b->outcomes[k]);
	}
	if (st->progress != NULL)
		event_free(st->progress);
	event_free(st->lines_ev);
	free(st->types);
	free(st->slot_item);
	free(st->free_slots);
	free(st->due);
	free(st);
}

void batch_free(struct batch *b)
{
	size_t i;

	if (b->st != NULL) {
		stream_free(b);
	} else {
		for (i = 0; i < b->req.n; i++) {
			fetch_cleanup(&b->fetches[i]);
			upstream_put(b->fetches[i].up);
			outcome_clear(&b->outcomes[i]);
		}
	}
	free(b->fetches);
	free(b->outcomes);
	free(b->caps);
	request_free(&b->req);
	event_free(b->deadline);
	event_free(b->finish_ev);
	free(b);
}

/* What the buffered answer's status would be (for the count and the log
 * of a streamed one, whose HTTP status is 200). */
static int stream_status(const struct batch *b)
{
	size_t i, cancelled = 0;

	if (b->req.mode == BATCH_MODE_SETTLED)
		return 200;
	for (i = 0; i < b->req.n; i++) {
		if (is_failure(type_of(b, i)))
			return 502;
		cancelled += type_of(b, i) != OUTCOME_OK;
	}
	return cancelled > 0 ? 503 : 200;
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
	b->elapsed_ms = clock_now_ms() - b->t_start;
	if (b->st != NULL) {
		int status = stream_status(b);

		batch_debug(b, "streamed, done (%d) after %.1f ms", status, b->elapsed_ms);
		b->answer(b, status, b->answer_arg);
		return;
	}
	answer_stream_init(&b->stream, &b->req, b->outcomes, b->elapsed_ms);
	batch_debug(b, "answered %d after %.1f ms", b->stream.status, b->elapsed_ms);
	b->answer(b, b->stream.status, b->answer_arg);
}

bool batch_answer_more(struct batch *b, struct evbuffer *out, size_t budget)
{
	return answer_stream_write(&b->stream, out, budget);
}
