/* metrics: the counts behind GET /metrics and their Prometheus text
 * exposition (format 0.0.4: "# HELP", "# TYPE", one family's samples
 * together, label values escaped).  Counters only grow; per-upstream
 * values are read from the upstream registry's series at render time,
 * never copied. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns.h"
#include "clock.h"
#include "env.h"
#include "metrics.h"
#include "outcome.h"
#include "notify.h"
#include "upstream.h"
#include "xalloc.h"

/* Histogram bucket bounds: milliseconds to compare, seconds to print. */
static const double bucket_ms[] = { 1, 2.5, 5, 10, 25, 50, 100, 250, 500,
                                    1000, 2500, 5000, 10000 };
static const char *const bucket_le[] = { "0.001", "0.0025", "0.005", "0.01", "0.025",
                                         "0.05", "0.1", "0.25", "0.5", "1", "2.5",
                                         "5", "10" };
#define NBUCKETS (sizeof bucket_ms / sizeof bucket_ms[0])

struct histogram {
	unsigned long in_bucket[NBUCKETS + 1];   /* not cumulative; last = over all bounds */
	unsigned long count;
	double sum_ms;
};

static const char *const rejected_names[] = {
	"invalid_request", "request_too_large", "unauthorized", "overloaded", "draining",
	"not_found", "method_not_allowed",
};
#define NREJECTED (sizeof rejected_names / sizeof rejected_names[0])

static const char *const outcome_names[METRICS_BATCH_NOUTCOMES] = {
	[METRICS_BATCH_OK] = "ok",
	[METRICS_BATCH_FAILED] = "failed",
	[METRICS_BATCH_SETTLED] = "settled",
	[METRICS_BATCH_DRAINING] = "draining",
	[METRICS_BATCH_CLIENT_GONE] = "client_gone",
};

struct metrics {
	double t_start;                                  /* monotonic ms */
	unsigned long batches[METRICS_BATCH_NOUTCOMES];
	unsigned long rejected[NREJECTED];
	uint64_t bytes_in, bytes_out, upstream_bytes_in;
	struct histogram latency, queue_wait;
};

struct metrics *metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof *m);

	m->t_start = clock_now_ms();
	return m;
}

void metrics_free(struct metrics *m)
{
	free(m);
}

const char *metrics_batch_outcome_name(enum metrics_batch_outcome o)
{
	return outcome_names[o];
}

enum metrics_batch_outcome metrics_batch_outcome_of(int status, bool settled)
{
	if (status == 200)
		return settled ? METRICS_BATCH_SETTLED : METRICS_BATCH_OK;
	return status == 502 ? METRICS_BATCH_FAILED : METRICS_BATCH_DRAINING;
}

/* --- counting ------------------------------------------------------------ */

void metrics_count_batch(struct metrics *m, enum metrics_batch_outcome o)
{
	if (m != NULL)
		m->batches[o]++;
}

void metrics_count_rejected(struct metrics *m, const char *error)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < NREJECTED; i++)
		if (strcmp(error, rejected_names[i]) == 0)
			m->rejected[i]++;
}

void metrics_count_bytes_in(struct metrics *m, size_t n)
{
	if (m != NULL)
		m->bytes_in += n;
}

void metrics_count_bytes_out(struct metrics *m, size_t n)
{
	if (m != NULL)
		m->bytes_out += n;
}

static void observe(struct histogram *h, double ms)
{
	size_t i = 0;

	if (ms < 0)
		ms = 0;
	while (i < NBUCKETS && ms > bucket_ms[i])
		i++;
	h->in_bucket[i]++;
	h->count++;
	h->sum_ms += ms;
}

void metrics_observe_request(struct metrics *m, const struct outcome *o, bool started,
                             uint64_t body_bytes)
{
	if (m == NULL)
		return;
	m->upstream_bytes_in += body_bytes;
	if (!started || o->type == OUTCOME_CANCELLED)
		return;
	observe(&m->latency, o->timing.total_ms - o->timing.queued_ms);
	observe(&m->queue_wait, o->timing.queued_ms);
}

/* --- the exposition ------------------------------------------------------ */

static void family(struct evbuffer *out, const char *name, const char *type,
                   const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void put_value(struct evbuffer *out, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			evbuffer_add(out, "\\\\", 2);
		else if (*v == '"')
			evbuffer_add(out, "\\\"", 2);
		else if (*v == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, v, 1);
	}
}

/* name{label="value"} n */
static void sample(struct evbuffer *out, const char *name, const char *label,
                   const char *value, unsigned long long n)
{
	evbuffer_add_printf(out, "%s{%s=\"", name, label);
	put_value(out, value);
	evbuffer_add_printf(out, "\"} %llu\n", n);
}

static void scalar(struct evbuffer *out, const char *name, const char *type,
                   const char *help, unsigned long long n)
{
	family(out, name, type, help);
	evbuffer_add_printf(out, "%s %llu\n", name, n);
}

static void histogram(struct evbuffer *out, const char *name, const char *help,
                      const struct histogram *h)
{
	unsigned long cumulative = 0;
	size_t i;

	family(out, name, "histogram", help);
	for (i = 0; i < NBUCKETS; i++) {
		cumulative += h->in_bucket[i];
		evbuffer_add_printf(out, "%s_bucket{le=\"%s\"} %lu\n", name, bucket_le[i],
		                    cumulative);
	}
	evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %lu\n", name, h->count);
	evbuffer_add_printf(out, "%s_sum %.9g\n%s_count %lu\n", name, h->sum_ms / 1000.0,
	                    name, h->count);
}

/* One per-upstream family: a value of the series. */
struct upstream_family {
	const char *name, *type, *help;
	unsigned long (*value)(const struct upstream_stats *s);
};

static unsigned long u_limit(const struct upstream_stats *s) { return s->limit; }
static unsigned long u_in_flight(const struct upstream_stats *s) { return s->in_flight; }
static unsigned long u_queued(const struct upstream_stats *s)
{
	return s->queued + s->waiting_token;
}
static unsigned long u_idle(const struct upstream_stats *s) { return s->idle_connections; }
static unsigned long u_conns(const struct upstream_stats *s) { return s->connections; }
static unsigned long u_opened(const struct upstream_stats *s)
{
	return s->connections_opened;
}
static unsigned long u_handshakes(const struct upstream_stats *s)
{
	return s->tls_handshakes;
}

static unsigned long u_streams(const struct upstream_stats *s) { return s->streams; }
static unsigned long u_goaways(const struct upstream_stats *s) { return s->counts.goaways; }
static unsigned long u_refused(const struct upstream_stats *s) { return s->counts.refused; }
static unsigned long u_retried(const struct upstream_stats *s) { return s->counts.retried; }
static unsigned long u_exhausted(const struct upstream_stats *s)
{
	return s->counts.budget_exhausted;
}
static unsigned long u_trips(const struct upstream_stats *s) { return s->counts.breaker_trips; }
static unsigned long u_collapsed(const struct upstream_stats *s) { return s->counts.collapsed; }
static unsigned long u_hedges(const struct upstream_stats *s) { return s->counts.hedges; }
static unsigned long u_hedges_won(const struct upstream_stats *s) { return s->counts.hedges_won; }
static unsigned long u_breaker(const struct upstream_stats *s)
{
	if (s->breaker != NULL && strcmp(s->breaker, "open") == 0)
		return 1;
	return s->breaker != NULL && strcmp(s->breaker, "half_open") == 0 ? 2 : 0;
}

static const struct upstream_family upstream_families[] = {
	{ "fanoutd_upstream_limit", "gauge",
	  "Concurrency limit of the upstream (its shared semaphore).", u_limit },
	{ "fanoutd_upstream_in_flight", "gauge",
	  "Requests holding a slot of the upstream's semaphore.", u_in_flight },
	{ "fanoutd_upstream_queued", "gauge",
	  "Requests waiting for a slot or a rate-limit token of the upstream.", u_queued },
	{ "fanoutd_upstream_connections", "gauge",
	  "Connections to the upstream open or opening now, busy or idle.", u_conns },
	{ "fanoutd_upstream_idle_connections", "gauge",
	  "Keep-alive connections to the upstream waiting for a request.", u_idle },
	{ "fanoutd_upstream_connections_opened_total", "counter",
	  "Connections opened to the upstream.", u_opened },
	{ "fanoutd_upstream_tls_handshakes_total", "counter",
	  "TLS handshakes completed with the upstream.", u_handshakes },
	{ "fanoutd_upstream_h2_streams", "gauge",
	  "HTTP/2 streams to the upstream in flight now.", u_streams },
	{ "fanoutd_upstream_h2_goaways_total", "counter",
	  "HTTP/2 GOAWAY frames received from the upstream.", u_goaways },
	{ "fanoutd_upstream_h2_streams_refused_total", "counter",
	  "HTTP/2 streams the upstream never processed (REFUSED_STREAM, or above "
	  "GOAWAY's last stream).", u_refused },
	{ "fanoutd_upstream_h2_streams_retried_total", "counter",
	  "Requests sent again because the upstream never processed them.", u_retried },
	{ "fanoutd_upstream_retry_budget_exhausted_total", "counter",
	  "Retries not made because retry_budget was spent.", u_exhausted },
	{ "fanoutd_upstream_breaker_state", "gauge",
	  "The circuit breaker: 0 closed, 1 open, 2 half open.", u_breaker },
	{ "fanoutd_upstream_breaker_trips_total", "counter",
	  "Times the circuit breaker opened.", u_trips },
	{ "fanoutd_upstream_collapsed_total", "counter",
	  "Requests that joined an identical one in flight instead of being sent "
	  "(collapse = yes).", u_collapsed },
	{ "fanoutd_upstream_hedges_total", "counter",
	  "Second attempts sent for requests without an answer after hedge_after.", u_hedges },
	{ "fanoutd_upstream_hedges_won_total", "counter",
	  "Hedges whose answer came first and was used.", u_hedges_won },
};

struct render_ctx {
	struct evbuffer *out;
	const struct upstream_family *fam;
};

static void put_upstream_value(const struct upstream_stats *s, void *arg)
{
	struct render_ctx *rc = arg;

	sample(rc->out, rc->fam->name, "upstream", s->key, rc->fam->value(s));
}

static void put_upstream_protocols(const struct upstream_stats *s, void *arg)
{
	struct render_ctx *rc = arg;
	static const char *names[] = { "http/1.1", "h2" };
	unsigned long n[] = { s->counts.opened_h1, s->counts.opened_h2 };
	size_t i;

	for (i = 0; i < 2; i++) {
		evbuffer_add_printf(rc->out, "fanoutd_upstream_connections_by_protocol_total{upstream=\"");
		put_value(rc->out, s->key);
		evbuffer_add_printf(rc->out, "\",protocol=\"%s\"} %lu\n", names[i], n[i]);
	}
}

static void put_upstream_retries(const struct upstream_stats *s, void *arg)
{
	struct render_ctx *rc = arg;
	size_t r;

	for (r = 0; r < UPSTREAM_RETRY_NREASONS; r++) {
		evbuffer_add_printf(rc->out, "fanoutd_upstream_retries_total{upstream=\"");
		put_value(rc->out, s->key);
		evbuffer_add_printf(rc->out, "\",reason=\"%s\"} %lu\n",
		                    upstream_retry_reason_name((enum upstream_retry_reason)r),
		                    s->counts.retries[r]);
	}
}

static void put_upstream_paused(const struct upstream_stats *s, void *arg)
{
	struct render_ctx *rc = arg;

	evbuffer_add_printf(rc->out, "fanoutd_upstream_paused_seconds_total{upstream=\"");
	put_value(rc->out, s->key);
	evbuffer_add_printf(rc->out, "\"} %.3f\n", (double)s->counts.paused_ms / 1000.0);
}

static void put_upstream_requests(const struct upstream_stats *s, void *arg)
{
	struct render_ctx *rc = arg;
	int t;

	for (t = OUTCOME_OK; t < OUTCOME_COUNT; t++) {
		evbuffer_add_printf(rc->out, "fanoutd_upstream_requests_total{upstream=\"");
		put_value(rc->out, s->key);
		evbuffer_add_printf(rc->out, "\",outcome=\"%s\"} %lu\n",
		                    outcome_type_name((enum outcome_type)t), s->totals[t]);
	}
}

/* One series per configured upstream, per other upstream up to
 * UPSTREAM_MAX_SERIES, and "other" for the rest: bounded whatever names
 * the clients send. */
static void render_upstreams(struct evbuffer *out, struct upstream_registry *reg)
{
	struct render_ctx rc = { .out = out };
	size_t i;

	scalar(out, "fanoutd_live_upstreams", "gauge",
	       "Upstreams whose semaphore, queue and connection pool are held now.",
	       upstream_live_count(reg));
	scalar(out, "fanoutd_upstream_series", "gauge",
	       "Values of the upstream label: every configured upstream, up to 1000 others, "
	       "and other for the rest.", upstream_series_count(reg));
	family(out, "fanoutd_upstream_requests_total", "counter",
	       "Upstream requests finished, by upstream and outcome type.");
	upstream_foreach_series(reg, put_upstream_requests, &rc);
	family(out, "fanoutd_upstream_connections_by_protocol_total", "counter",
	       "Connections to the upstream that opened, by the protocol they spoke.");
	upstream_foreach_series(reg, put_upstream_protocols, &rc);
	family(out, "fanoutd_upstream_retries_total", "counter",
	       "Retries made (attempts after the first), by upstream and reason.");
	upstream_foreach_series(reg, put_upstream_retries, &rc);
	family(out, "fanoutd_upstream_paused_seconds_total", "counter",
	       "Seconds the upstream was paused by a Retry-After (429 or 503).");
	upstream_foreach_series(reg, put_upstream_paused, &rc);
	for (i = 0; i < sizeof upstream_families / sizeof upstream_families[0]; i++) {
		rc.fam = &upstream_families[i];
		family(out, rc.fam->name, rc.fam->type, rc.fam->help);
		upstream_foreach_series(reg, put_upstream_value, &rc);
	}
}

/* The fleet's Redis ([redis]; SPEC 13): up, and what was asked of it. */
static void render_redis(struct evbuffer *out, const struct shared_redis *r)
{
	struct shared_redis_stats st;

	memset(&st, 0, sizeof st);
	if (r != NULL)
		shared_redis_get_stats(r, &st);
	scalar(out, "fanoutd_redis_up", "gauge",
	       "1 while the fleet's Redis answers within [redis] timeout; 0 when it does "
	       "not (shared upstreams then use their local limits) or none is set.",
	       r != NULL && shared_redis_up(r));
	scalar(out, "fanoutd_redis_commands_total", "counter",
	       "Commands sent to the fleet's Redis.", st.commands);
	scalar(out, "fanoutd_redis_errors_total", "counter",
	       "Redis error replies, timeouts and lost connections.", st.errors);
	scalar(out, "fanoutd_redis_fallbacks_total", "counter",
	       "Requests to shared upstreams let through on local limits because Redis "
	       "was down.", st.fallbacks);
}

void metrics_render(const struct metrics *m, struct upstream_registry *reg,
                    const struct fetch_env *env, struct evbuffer *out)
{
	size_t i;

	family(out, "fanoutd_build_info", "gauge", "Always 1; the labels say which build.");
	evbuffer_add_printf(out, "fanoutd_build_info{version=\"%s\",systemd=\"%s\"} 1\n",
	                    PACKAGE_VERSION, notify_available() ? "yes" : "no");
	family(out, "fanoutd_uptime_seconds", "gauge", "Seconds since fanoutd started.");
	evbuffer_add_printf(out, "fanoutd_uptime_seconds %.6f\n",
	                    m ? (clock_now_ms() - m->t_start) / 1000.0 : 0.0);
	if (m != NULL) {
		family(out, "fanoutd_batches_total", "counter",
		       "Batches finished, by how they ended for the client.");
		for (i = 0; i < METRICS_BATCH_NOUTCOMES; i++)
			sample(out, "fanoutd_batches_total", "outcome", outcome_names[i],
			       m->batches[i]);
		family(out, "fanoutd_rejected_requests_total", "counter",
		       "Requests fanoutd answered with an error of its own, by error code.");
		for (i = 0; i < NREJECTED; i++)
			sample(out, "fanoutd_rejected_requests_total", "error", rejected_names[i],
			       m->rejected[i]);
		scalar(out, "fanoutd_client_request_bytes_total", "counter",
		       "Bytes of batch request bodies read from clients.", m->bytes_in);
		scalar(out, "fanoutd_client_answer_bytes_total", "counter",
		       "Bytes of batch answer bodies sent to clients.", m->bytes_out);
		scalar(out, "fanoutd_upstream_response_bytes_total", "counter",
		       "Bytes of response bodies received from upstreams.", m->upstream_bytes_in);
		histogram(out, "fanoutd_upstream_request_duration_seconds",
		          "Upstream request time from its start to its end, queue excluded.",
		          &m->latency);
		histogram(out, "fanoutd_upstream_queue_wait_seconds",
		          "Time upstream requests waited for a slot or a rate-limit token.",
		          &m->queue_wait);
	}
	if (env != NULL && env->queued != NULL)
		scalar(out, "fanoutd_queued_requests", "gauge",
		       "Upstream requests waiting in any queue.", *env->queued);
	if (env != NULL && env->global != NULL)
		scalar(out, "fanoutd_in_flight_requests", "gauge",
		       "Upstream requests holding a global_concurrency slot.", env->global->in_use);
	if (env != NULL && env->dns != NULL)
		scalar(out, "fanoutd_dns_queries_total", "counter",
		       "Lookups sent to the nameservers.", dns_queries(env->dns));
	render_upstreams(out, reg);
	render_redis(out, upstream_registry_redis(reg));
}
