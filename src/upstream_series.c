/* upstream_series: what each upstream has counted, kept until exit so
 * that a counter never goes back (see upstream.h).  A series belongs to
 * one upstream key — every configured upstream has one, the first
 * UPSTREAM_MAX_SERIES others too — or is UPSTREAM_OTHER for the rest; it
 * keeps what the live upstreams that left it counted and adds what those
 * counting into it now hold.  Also the series as GET /v1/upstreams shows
 * them. */
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "answer.h"
#include "keyhash.h"
#include "outcome.h"
#include "upstream.h"
#include "upstream_internal.h"
#include "xalloc.h"

/* Hashed as the live upstreams' table. */
#define NBUCKETS 1024

/* The counts of one upstream (or of all those folded into "other") that
 * outlive its live part. */
struct upstream_series {
	char *key;                  /* "http://host:port" or UPSTREAM_OTHER (owned) */
	unsigned long totals[OUTCOME_COUNT];   /* by enum outcome_type */
	struct upstream_counts kept;   /* what live upstreams that left it
	                                * (freed or moved) had counted */
	LIST_HEAD(, upstream) live; /* live upstreams counting here */
	struct upstream_series *next;   /* hash chain */
};

/* Every series: by key, and in creation order for the listings. */
struct upstream_series_table {
	struct upstream_series *buckets[NBUCKETS];   /* named series */
	struct upstream_series **all;   /* the same, in creation order (owned
	                                   array; owns them) */
	size_t n, alloc;
	size_t nunconfigured;       /* named series made for upstreams without
	                               a section: at most UPSTREAM_MAX_SERIES */
	struct upstream_series other;   /* every upstream past the cap */
	bool other_used;            /* one has counted into it: list it */
};

struct upstream_series_table *upstream_series_table_new(void)
{
	struct upstream_series_table *t = xcalloc(1, sizeof *t);

	t->other.key = xstrdup(UPSTREAM_OTHER);
	return t;
}

static struct upstream_series *series_find(struct upstream_series_table *t, const char *key)
{
	struct upstream_series *s;

	for (s = t->buckets[keyhash(key, NBUCKETS)]; s != NULL; s = s->next)
		if (strcmp(s->key, key) == 0)
			return s;
	return NULL;
}

static struct upstream_series *series_new(struct upstream_series_table *t, const char *key)
{
	struct upstream_series *s = xcalloc(1, sizeof *s);
	unsigned b = keyhash(key, NBUCKETS);

	s->key = xstrdup(key);
	if (t->n == t->alloc) {
		t->alloc = t->alloc ? 2 * t->alloc : 64;
		t->all = xrealloc(t->all, t->alloc * sizeof *t->all);
	}
	t->all[t->n++] = s;
	s->next = t->buckets[b];
	t->buckets[b] = s;
	return s;
}

/* Its own series if it has one or may have one, else "other". */
static struct upstream_series *series_for(struct upstream_series_table *t,
                                          const struct config *cfg, const char *key)
{
	struct upstream_series *s = series_find(t, key);

	if (s != NULL)
		return s;
	if (config_find_upstream(cfg, key) != NULL)
		return series_new(t, key);
	if (t->nunconfigured >= UPSTREAM_MAX_SERIES) {
		t->other_used = true;
		return &t->other;
	}
	t->nunconfigured++;
	return series_new(t, key);
}

/* What u's pool and fetches have counted so far. */
static void counts_now(const struct upstream *u, struct upstream_counts *c)
{
	struct pool_stats ps;

	pool_get_stats(u->pool, &ps);
	c->opened = pool_opened_count(u->pool);
	c->handshakes = pool_handshake_count(u->pool);
	c->opened_h1 = ps.opened_h1;
	c->opened_h2 = ps.opened_h2;
	c->goaways = ps.goaways;
	c->refused = ps.refused;
	c->retried = u->streams_retried;
	memcpy(c->retries, u->retries, sizeof c->retries);
	c->budget_exhausted = u->budget_exhausted;
	c->paused_ms = (unsigned long)u->paused_ms;
	c->breaker_trips = u->breaker.trips;
	c->collapsed = u->collapsed;
	c->hedges = u->hedges;
	c->hedges_won = u->hedges_won;
}

/* to += what u counted since it joined its series. */
static void counts_add_since(struct upstream_counts *to, const struct upstream *u)
{
	struct upstream_counts now;
	size_t i;

	counts_now(u, &now);
	to->opened += now.opened - u->base.opened;
	to->handshakes += now.handshakes - u->base.handshakes;
	to->opened_h1 += now.opened_h1 - u->base.opened_h1;
	to->opened_h2 += now.opened_h2 - u->base.opened_h2;
	to->goaways += now.goaways - u->base.goaways;
	to->refused += now.refused - u->base.refused;
	to->retried += now.retried - u->base.retried;
	for (i = 0; i < UPSTREAM_RETRY_NREASONS; i++)
		to->retries[i] += now.retries[i] - u->base.retries[i];
	to->budget_exhausted += now.budget_exhausted - u->base.budget_exhausted;
	to->paused_ms += now.paused_ms - u->base.paused_ms;
	to->breaker_trips += now.breaker_trips - u->base.breaker_trips;
	to->collapsed += now.collapsed - u->base.collapsed;
	to->hedges += now.hedges - u->base.hedges;
	to->hedges_won += now.hedges_won - u->base.hedges_won;
}

void upstream_series_join(struct upstream_series_table *t, const struct config *cfg,
                          struct upstream *u)
{
	struct upstream_series *s = series_for(t, cfg, u->key);

	u->series = s;
	u->totals = s->totals;
	counts_now(u, &u->base);
	LIST_INSERT_HEAD(&s->live, u, series_link);
}

void upstream_series_leave(struct upstream *u)
{
	struct upstream_series *s = u->series;

	counts_add_since(&s->kept, u);
	LIST_REMOVE(u, series_link);
	u->series = NULL;
	u->totals = NULL;
}

static void series_stats(const struct config *cfg, const struct upstream_series *s,
                         struct upstream_stats *st)
{
	const struct upstream *u;

	memset(st, 0, sizeof *st);
	st->p50_ms = st->p95_ms = -1;
	st->key = s->key;
	st->live = !LIST_EMPTY(&s->live);
	st->limit = upstream_configured_limit(cfg, s->key);
	st->counts = s->kept;
	st->totals = s->totals;
	LIST_FOREACH(u, &s->live, series_link) {
		struct pool_stats ps;

		pool_get_stats(u->pool, &ps);
		st->in_flight += u->sem.in_use;
		st->queued += u->sem.nqueued;
		st->waiting_token += u->rate_limited ? u->bucket.nqueued : 0;
		st->idle_connections += pool_idle_count(u->pool);
		st->connections += pool_conn_count(u->pool);
		st->streams += ps.streams;
		if (ps.protocol != NULL)
			st->protocol = ps.protocol;
		if (upstream_paused_ms(u) > st->paused_ms)
			st->paused_ms = upstream_paused_ms(u);
		if (u->shared != NULL)
			st->shared = true;
		if (u->breaker.state != BREAKER_CLOSED || st->breaker == NULL)
			st->breaker = breaker_state_name(u->breaker.state);
		counts_add_since(&st->counts, u);
		if (u->latency != NULL && latency_samples(u->latency) > st->latency_samples) {
			st->latency_samples = latency_samples(u->latency);
			st->p50_ms = latency_quantile(u->latency, 0.5);
			st->p95_ms = latency_quantile(u->latency, 0.95);
		}
	}
	st->connections_opened = st->counts.opened;
	st->tls_handshakes = st->counts.handshakes;
}

void upstream_series_table_foreach(struct upstream_series_table *t, const struct config *cfg,
                                   void (*fn)(const struct upstream_stats *s, void *arg),
                                   void *arg)
{
	struct upstream_stats st;
	size_t i;

	for (i = 0; i < t->n; i++) {
		series_stats(cfg, t->all[i], &st);
		fn(&st, arg);
	}
	if (!t->other_used)
		return;
	series_stats(cfg, &t->other, &st);
	fn(&st, arg);
}

size_t upstream_series_table_count(const struct upstream_series_table *t)
{
	return t->n + (t->other_used ? 1 : 0);
}

/* An upstream that counted into "other" and now has a section gets its
 * own series: configured upstreams always have one. */
void upstream_series_reseat(struct upstream_series_table *t, const struct config *cfg,
                            struct upstream *u)
{
	if (u->series != &t->other || config_find_upstream(cfg, u->key) == NULL)
		return;
	upstream_series_leave(u);
	upstream_series_join(t, cfg, u);
}

static void free_series(struct upstream_series *s)
{
	free(s->key);
	free(s);
}

void upstream_series_table_free(struct upstream_series_table *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free_series(t->all[i]);
	free(t->all);
	free(t->other.key);
	free(t);
}

/* --- GET /v1/upstreams --------------------------------------------------- */

/* A latency in ms to 0.1 ms, or null when there is none. */
static json_t *ms_or_null(double ms)
{
	return ms < 0 ? json_null() : json_real((double)(long)(ms * 10 + 0.5) / 10);
}

/* One series as an element of "upstreams"; the key goes through jansson
 * like every string fanoutd sends. */
static json_t *series_json(const struct upstream_stats *s)
{
	json_t *totals = xcheck(json_object());
	size_t t;

	for (t = OUTCOME_OK; t < OUTCOME_COUNT; t++)
		json_object_set_new(totals, outcome_type_name((enum outcome_type)t),
		                    json_integer((json_int_t)s->totals[t]));
	json_t *latency = xcheck(json_pack("{s:I,s:o,s:o}",
	                                   "samples", (json_int_t)s->latency_samples,
	                                   "p50_ms", ms_or_null(s->p50_ms),
	                                   "p95_ms", ms_or_null(s->p95_ms)));

	return xcheck(json_pack("{s:o,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:s,s:b,"
	                        "s:o,s:I,s:I,s:I,s:o}",
	                        "upstream", answer_text(s->key),
	                        "live", (int)s->live,
	                        "limit", (json_int_t)s->limit,
	                        "in_flight", (json_int_t)s->in_flight,
	                        "queued", (json_int_t)s->queued,
	                        "connections", (json_int_t)s->connections,
	                        "idle_connections", (json_int_t)s->idle_connections,
	                        "connections_opened", (json_int_t)s->connections_opened,
	                        "tls_handshakes", (json_int_t)s->tls_handshakes,
	                        "protocol", s->protocol != NULL ? json_string(s->protocol)
	                                                        : json_null(),
	                        "streams", (json_int_t)s->streams,
	                        "goaways", (json_int_t)s->counts.goaways,
	                        "paused_ms", (json_int_t)(s->paused_ms + 0.5),
	                        "breaker", s->breaker != NULL ? s->breaker : "closed",
	                        "shared", (int)s->shared,
	                        "latency", latency,
	                        "collapsed", (json_int_t)s->counts.collapsed,
	                        "hedges", (json_int_t)s->counts.hedges,
	                        "hedges_won", (json_int_t)s->counts.hedges_won,
	                        "totals", totals));
}

static void add_series(const struct upstream_stats *s, void *arg)
{
	json_array_append_new(arg, series_json(s));
}

void upstream_registry_write_json(struct upstream_registry *reg, struct evbuffer *out)
{
	json_t *list = xcheck(json_array());
	json_t *doc;

	upstream_foreach_series(reg, add_series, list);
	doc = xcheck(json_pack("{s:o}", "upstreams", list));
	answer_write_json(out, doc);
	json_decref(doc);
}
