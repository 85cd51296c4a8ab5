/* client_batch: one running batch and the client request waiting for it.
 *
 *   run: pause the request, watch the client -> the batch runs ->
 *   on_answer: the answer whole, or its first piece and then pump() as the
 *   client reads -> finish(): count, log, free, resume the request
 *
 * A streamed batch (NDJSON) sends its head at once and pump() writes its
 * lines as they come (on_lines), the last one after on_answer; while more
 * than stream_buffer waits for the client the batch is held (batch_hold).
 *
 * A paused evhtp request does not read, so a client that disconnects goes
 * unseen; reading stays on for it (watch_client), so evhtp's error hook
 * fires and the batch is abandoned then. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "accesslog.h"
#include "batch.h"
#include "client_batch.h"
#include "clients.h"
#include "clock.h"
#include "log.h"
#include "memtrim.h"
#include "metrics.h"
#include "xalloc.h"

/* The answer goes out in pieces of about this size, the next one only
 * when the client has taken most of the last: a 10,000-entry answer is
 * never held whole. */
#define ANSWER_WINDOW (64 * 1024)

struct client_batch {
	TAILQ_ENTRY(client_batch) link;
	struct client_batches *list;
	evhtp_request_t *req;
	struct batch *batch;               /* owned */
	bool answering;                    /* the answer is going out */
	bool streamed;                     /* NDJSON lines as requests finish */
	bool head_sent;                    /* streamed: the 200 and its headers */
	int result_status;                 /* the buffered answer's status (200,
	                                    * 502, 503), for the count */
	struct event *pump;                /* writes the next piece (owned) */
	struct evbuffer_cb_entry *drained; /* on the client's output buffer */
	bool settled;                      /* mode "settled", for the outcome */
	double t_start;                    /* arrival, for elapsed_ms */
	struct accesslog_entry log;        /* client, n, status; the rest at the end */
};

struct client_batches {
	struct event_base *base;
	struct upstream_registry *reg;     /* borrowed */
	const struct fetch_env *env;       /* borrowed */
	const struct config *cfg;          /* borrowed */
	TAILQ_HEAD(, client_batch) running;
	size_t unanswered;
	struct memtrim *trim;              /* owned */
	void (*finished)(void *);
	void *finished_arg;
};

/* How a batch ends for its client. */
enum client_batch_end {
	END_ANSWERED,      /* the whole answer is written */
	END_CLIENT_GONE,   /* the client went away first */
	END_EXIT,          /* fanoutd exits: neither counted nor logged */
};

/* --- the end, in one place ---------------------------------------------- */

/* Count the batch, and log it (access_log). */
static void count(struct client_batch *cb, enum metrics_batch_outcome how)
{
	struct client_batches *l = cb->list;
	enum outcome_type type;
	size_t i;

	metrics_count_batch(l->env->metrics, how);
	if (!l->cfg->access_log)
		return;
	cb->log.outcome = metrics_batch_outcome_name(how);
	cb->log.elapsed_ms = clock_now_ms() - cb->t_start;
	cb->log.failed_index = -1;
	if (batch_first_failure(cb->batch, &i, &type)) {
		cb->log.failed_index = (long)i;
		cb->log.failed_type = outcome_type_name(type);
	}
	accesslog_write(&cb->log);
}

static void finish(struct client_batch *cb, enum client_batch_end end)
{
	struct client_batches *l = cb->list;
	evhtp_request_t *req = cb->req;

	if (end == END_ANSWERED)
		count(cb, metrics_batch_outcome_of(cb->result_status, cb->settled));
	else if (end == END_CLIENT_GONE)
		count(cb, METRICS_BATCH_CLIENT_GONE);
	TAILQ_REMOVE(&l->running, cb, link);
	if (TAILQ_EMPTY(&l->running))
		memtrim_idle(l->trim);
	if (cb->drained != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(evhtp_request_get_bev(req)),
		                         cb->drained);
	if (cb->pump != NULL)
		event_free(cb->pump);
	/* a batch still running may have fetches in callbacks: it frees itself */
	if (cb->answering)
		batch_free(cb->batch);
	else
		batch_abandon(cb->batch);
	/* the error hook points at cb, which goes now; watch_client's
	 * watermark goes too */
	evhtp_request_set_hook(req, evhtp_hook_on_error, NULL, NULL);
	bufferevent_setwatermark(evhtp_request_get_bev(req), EV_READ, 0, 0);
	if (end == END_EXIT)   /* the list goes too, before the connections */
		evhtp_request_set_hook(req, evhtp_hook_on_request_fini, NULL, NULL);
	if (end != END_EXIT || cb->answering)
		clients_resume(req);
	free(cb);
}

/* --- the answer ----------------------------------------------------------- */

/* One chunk, queued for the client.  Not evhtp_send_reply_chunk(): it
 * flushes, which through the gate's filter would move the whole answer
 * into the socket's buffer at once, whatever the client reads. */
static void put_chunk(evhtp_request_t *req, struct evbuffer *piece)
{
	struct evbuffer *out = bufferevent_get_output(evhtp_request_get_bev(req));
	char size[24];

	if (evbuffer_get_length(piece) == 0)
		return;
	snprintf(size, sizeof size, "%zx\r\n", evbuffer_get_length(piece));
	evbuffer_add(out, size, strlen(size));
	evbuffer_add_buffer(out, piece);
	evbuffer_add(out, "\r\n", 2);
}

static void on_output_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                              void *arg);

static struct evbuffer *client_output(const struct client_batch *cb)
{
	return bufferevent_get_output(evhtp_request_get_bev(cb->req));
}

static void send_lines_head(struct client_batch *cb)
{
	struct bufferevent *bev = evhtp_request_get_bev(cb->req);
	struct timeval tv = clock_timeval((double)cb->list->cfg->client_timeout_ms);

	evhtp_headers_add_header(cb->req->headers_out,
	                         evhtp_header_new("Content-Type", "application/x-ndjson", 0, 0));
	evhtp_send_reply_chunk_start(cb->req, EVHTP_RES_OK);
	bufferevent_set_timeouts(bev, NULL, &tv);
	cb->drained = xcheck(evbuffer_add_cb(bufferevent_get_output(bev), on_output_drained, cb));
	cb->head_sent = true;
}

/* The lines due, as one chunk; then hold the batch or let it go on by
 * what waits for the client. */
static void pump_lines(struct client_batch *cb)
{
	struct evbuffer *piece = xcheck(evbuffer_new());
	enum batch_lines_result r;
	bool full;

	if (!cb->head_sent)
		send_lines_head(cb);
	r = batch_lines(cb->batch, piece, ANSWER_WINDOW);
	metrics_count_bytes_out(cb->list->env->metrics, evbuffer_get_length(piece));
	put_chunk(cb->req, piece);
	evbuffer_free(piece);
	if (r == BATCH_LINES_DONE) {
		evhtp_send_reply_chunk_end(cb->req);
		finish(cb, END_ANSWERED);
		return;
	}
	full = evbuffer_get_length(client_output(cb)) >= cb->list->cfg->stream_buffer;
	if (r == BATCH_LINES_MORE && !full)
		event_active(cb->pump, EV_TIMEOUT, 0);
	batch_hold(cb->batch, full);
}

static void pump(evutil_socket_t fd, short what, void *arg)
{
	struct client_batch *cb = arg;
	struct evbuffer *piece;
	bool done;

	(void)fd;
	(void)what;
	if (cb->streamed) {
		pump_lines(cb);
		return;
	}
	piece = xcheck(evbuffer_new());
	done = batch_answer_more(cb->batch, piece, ANSWER_WINDOW);
	metrics_count_bytes_out(cb->list->env->metrics, evbuffer_get_length(piece));
	put_chunk(cb->req, piece);
	evbuffer_free(piece);
	if (!done)
		return;
	evhtp_send_reply_chunk_end(cb->req);
	finish(cb, END_ANSWERED);
}

static void on_output_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                              void *arg)
{
	struct client_batch *cb = arg;
	size_t below = cb->streamed ? cb->list->cfg->stream_buffer : ANSWER_WINDOW / 2;

	if (info->n_deleted > 0 && evbuffer_get_length(buf) < below)
		event_active(cb->pump, EV_TIMEOUT, 0);
}

/* Stream the rest with chunked encoding, paced by the client's reading; a
 * client that stops reading for client_timeout is cut off. */
static void start_stream(struct client_batch *cb, int status, struct evbuffer *first)
{
	struct bufferevent *bev = evhtp_request_get_bev(cb->req);
	struct evbuffer *out = bufferevent_get_output(bev);
	struct timeval tv = clock_timeval((double)cb->list->cfg->client_timeout_ms);

	evhtp_send_reply_chunk_start(cb->req, (evhtp_res)status);
	put_chunk(cb->req, first);
	bufferevent_set_timeouts(bev, NULL, &tv);
	cb->pump = xcheck(event_new(cb->list->base, -1, 0, pump, cb));
	cb->drained = xcheck(evbuffer_add_cb(out, on_output_drained, cb));
	/* the gate's filter may have passed the first piece on already */
	if (evbuffer_get_length(out) < ANSWER_WINDOW / 2)
		event_active(cb->pump, EV_TIMEOUT, 0);
}

static void on_answer(struct batch *b, int status, void *arg)
{
	struct client_batch *cb = arg;
	struct evbuffer *first = xcheck(evbuffer_new());
	bool done;

	cb->answering = true;
	cb->result_status = status;
	if (cb->streamed) {   /* the rest of the lines, the last one */
		evbuffer_free(first);
		event_active(cb->pump, EV_TIMEOUT, 0);
		return;
	}
	cb->log.status = status;
	done = batch_answer_more(b, first, ANSWER_WINDOW);
	evhtp_headers_add_header(cb->req->headers_out,
	                         evhtp_header_new("Content-Type", "application/json", 0, 0));
	/* an HTTP/1.0 client cannot take chunks: it gets the answer whole */
	while (!done && cb->req->proto == EVHTP_PROTO_10)
		done = batch_answer_more(b, first, ANSWER_WINDOW);
	metrics_count_bytes_out(cb->list->env->metrics, evbuffer_get_length(first));
	if (!done) {
		start_stream(cb, status, first);
		evbuffer_free(first);
		return;
	}
	evbuffer_add_buffer(cb->req->buffer_out, first);
	evbuffer_free(first);
	evhtp_send_reply(cb->req, (evhtp_res)status);
	finish(cb, END_ANSWERED);
}

/* --- the client ------------------------------------------------------------ */

static void on_client_error(evhtp_request_t *req, evhtp_error_flags errtype, void *arg)
{
	struct client_batch *cb = arg;

	(void)req;
	(void)errtype;
	log_debug("client went away %s: batch of %zu %s",
	          cb->answering ? "while taking its answer" : "before its answer",
	          batch_size(cb->batch), cb->answering ? "ends" : "cancelled");
	finish(cb, END_CLIENT_GONE);
}

/* Keep reading the paused request's socket, so a disconnect is seen. */
static void watch_client(evhtp_request_t *req, struct client_batch *cb)
{
	struct bufferevent *bev = evhtp_request_get_bev(req);

	evhtp_request_set_hook(req, evhtp_hook_on_error,
	                       (evhtp_hook)(void (*)(void))on_client_error, cb);
	bufferevent_setwatermark(bev, EV_READ, 0, 65536);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_enable(bev, EV_READ);
}

/* evhtp is done with the request: it and its connection may go on. */
static evhtp_res on_request_fini(evhtp_request_t *req, void *arg)
{
	struct client_batches *l = arg;

	clients_request_done(req);   /* this hook hides the connection's */
	l->unanswered--;
	l->finished(l->finished_arg);
	return EVHTP_RES_OK;
}

/* --- the list ---------------------------------------------------------------- */

struct client_batches *client_batches_new(struct event_base *base,
                                          struct upstream_registry *reg,
                                          const struct fetch_env *env,
                                          void (*finished)(void *), void *arg)
{
	struct client_batches *l = xcalloc(1, sizeof *l);

	l->base = base;
	l->reg = reg;
	l->env = env;
	l->finished = finished;
	l->finished_arg = arg;
	TAILQ_INIT(&l->running);
	l->trim = memtrim_new(base);
	return l;
}

void client_batches_configure(struct client_batches *l, const struct config *cfg)
{
	l->cfg = cfg;
}

static void on_lines(struct batch *b, void *arg)
{
	struct client_batch *cb = arg;

	(void)b;
	event_active(cb->pump, EV_TIMEOUT, 0);
}

/* A streamed answer: the pump sends its head at once (not from inside
 * evhtp's request callback), then its lines as they come. */
static void start_lines(struct client_batch *cb)
{
	cb->log.status = 200;
	cb->pump = xcheck(event_new(cb->list->base, -1, 0, pump, cb));
	batch_on_lines(cb->batch, on_lines, cb);
	event_active(cb->pump, EV_TIMEOUT, 0);
}

void client_batch_run(struct client_batches *l, evhtp_request_t *req,
                      struct batch_request *br, bool streamed)
{
	struct client_batch *cb = xcalloc(1, sizeof *cb);
	struct batch_settings bs = { .batch_timeout_ms = l->cfg->batch_timeout_ms };

	cb->streamed = streamed;
	if (streamed)
		bs.stream_window = batch_stream_window(l->cfg->global_concurrency);

	cb->list = l;
	cb->req = req;
	cb->settled = br->mode == BATCH_MODE_SETTLED;
	cb->t_start = clock_now_ms();
	cb->log.n = br->n;
	accesslog_client(cb->log.client, sizeof cb->log.client,
	                 evhtp_request_get_connection(req)->saddr);
	cb->batch = batch_new(br, l->reg, l->env, &bs, on_answer, cb);
	TAILQ_INSERT_TAIL(&l->running, cb, link);
	memtrim_busy(l->trim);
	l->unanswered++;
	evhtp_request_set_hook(req, evhtp_hook_on_request_fini,
	                       (evhtp_hook)on_request_fini, l);
	evhtp_request_pause(req);
	watch_client(req, cb);
	if (streamed)
		start_lines(cb);
	batch_start(cb->batch);
}

size_t client_batches_unanswered(const struct client_batches *l)
{
	return l->unanswered;
}

void client_batches_cancel_all(struct client_batches *l)
{
	struct client_batch *cb;

	TAILQ_FOREACH(cb, &l->running, link)
		batch_cancel(cb->batch);
}

void client_batches_free(struct client_batches *l)
{
	struct client_batch *cb;

	while ((cb = TAILQ_FIRST(&l->running)) != NULL)
		finish(cb, END_EXIT);
	memtrim_free(l->trim);
	free(l);
}
