/* upstream: the per-upstream state shared by all batches.  Live
 * upstreams sit in a chained hash table keyed by "scheme://host:port" and
 * are freed once nothing uses them (never while a fetch points at one or
 * waits in its queues); their series sit in a second table and an array
 * in creation order, and stay until exit, so a forgotten upstream that
 * comes back counts on from where it was. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "answer.h"
#include "clock.h"
#include "collapse.h"
#include "keyhash.h"
#include "log.h"
#include "outcome.h"
#include "tls.h"
#include "upstream.h"
#include "xalloc.h"

#define NBUCKETS 1024
/* The sweep runs every keepalive_timeout, within these bounds. */
#define SWEEP_MIN_MS 100L
#define SWEEP_MAX_MS 60000L

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

/* A Redis a reload replaced, kept while upstreams still hold limits on it. */
struct retired_redis {
	struct shared_redis *redis;
	struct retired_redis *next;
};

struct upstream_registry {
	struct event_base *base;
	struct shared_redis *redis;     /* [redis] url (owned), or NULL */
	struct config_redis redis_cfg;  /* what it was made from (strings borrowed
	                                   from the config that made it) */
	char *redis_url, *redis_prefix; /* ... their owned copies */
	struct retired_redis *retired;
	const struct config *cfg;   /* borrowed; main owns it */
	struct tls_cache *tls;      /* owned */
	struct event *sweep;        /* frees upstreams no longer used (owned) */
	long sweep_ms;              /* its period */
	struct upstream *buckets[NBUCKETS];     /* live upstreams (owned) */
	size_t nlive;
	struct upstream_series *series_buckets[NBUCKETS];   /* named series */
	struct upstream_series **series;        /* the same, in creation order
	                                           (owned array; owns them) */
	size_t nseries, series_alloc;
	size_t nunconfigured;       /* named series made for upstreams without
	                               a section: at most UPSTREAM_MAX_SERIES */
	struct upstream_series other;   /* every upstream past the cap */
	bool other_used;            /* one has counted into it: list it */
};

/* Both tables (live upstreams, series) hash as the DNS cache does. */
static unsigned hash(const char *s)
{
	return keyhash(s, NBUCKETS);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg);

/* Every keepalive_timeout: an upstream can be forgotten that long after
 * its last use, when its last idle connection has just been closed. */
static void arm_sweep(struct upstream_registry *reg)
{
	long ms = reg->cfg->keepalive_timeout_ms;
	struct timeval every;

	ms = ms < SWEEP_MIN_MS ? SWEEP_MIN_MS : ms > SWEEP_MAX_MS ? SWEEP_MAX_MS : ms;
	if (ms == reg->sweep_ms)
		return;
	reg->sweep_ms = ms;
	every = clock_timeval((double)ms);
	event_add(reg->sweep, &every);
}

static size_t configured_limit(const struct config *cfg, const char *key);

/* --- the fleet's Redis ----------------------------------------------------- */

static bool same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The [redis] of the config now, made once and again only when a reload
 * changes it; the one it replaces is retired until no limit is on it. */
static void redis_configure(struct upstream_registry *reg)
{
	const struct config_redis *c = &reg->cfg->redis;
	struct shared_redis_settings rs = {
		.url = c->url, .key_prefix = c->key_prefix,
		.timeout_ms = c->timeout_ms, .lease_ms = c->lease_ms,
	};
	struct retired_redis *old;

	if (same_str(c->url, reg->redis_url) && same_str(c->key_prefix, reg->redis_prefix) &&
	    c->timeout_ms == reg->redis_cfg.timeout_ms && c->lease_ms == reg->redis_cfg.lease_ms)
		return;
	if (reg->redis != NULL) {
		old = xcalloc(1, sizeof *old);
		old->redis = reg->redis;
		old->next = reg->retired;
		reg->retired = old;
	}
	free(reg->redis_url);
	free(reg->redis_prefix);
	reg->redis_url = c->url ? xstrdup(c->url) : NULL;
	reg->redis_prefix = c->key_prefix ? xstrdup(c->key_prefix) : NULL;
	reg->redis_cfg = *c;
	reg->redis = c->url != NULL ? shared_redis_new(reg->base, &rs) : NULL;
}

struct shared_redis *upstream_registry_redis(const struct upstream_registry *reg)
{
	return reg->redis;
}

/* Is any live upstream's limit on r? */
static bool redis_in_use(struct upstream_registry *reg, const struct shared_redis *r)
{
	struct upstream *u;
	size_t b;

	for (b = 0; b < NBUCKETS; b++)
		for (u = reg->buckets[b]; u != NULL; u = u->next)
			if (u->shared != NULL && u->shared_on == r)
				return true;
	return false;
}

/* Free the retired Redis connections nothing uses any more. */
static void reap_retired(struct upstream_registry *reg)
{
	struct retired_redis **p = &reg->retired, *old;

	while ((old = *p) != NULL) {
		if (redis_in_use(reg, old->redis)) {
			p = &old->next;
			continue;
		}
		*p = old->next;
		shared_redis_free(old->redis);
		free(old);
	}
}

static void shared_drop(struct upstream *u)
{
	shared_limit_free(u->shared);
	u->shared = NULL;
	u->shared_on = NULL;
}

/* u's limits in Redis: made, changed or dropped as its section and
 * [redis] say.  A limit still in use on a Redis a reload replaced moves
 * once it is idle (the sweep looks again). */
static void configure_shared(struct upstream_registry *reg, struct upstream *u,
                             const struct config_upstream *cu)
{
	bool want = cu != NULL && config_upstream_shared(cu) && reg->redis != NULL;
	long conc = (long)configured_limit(reg->cfg, u->key);
	double rate = cu != NULL ? cu->rate_per_s : 0;
	double burst = cu != NULL && cu->burst > 0 ? (double)cu->burst : 0;
	bool idle = u->shared == NULL ||
	            (shared_limit_held(u->shared) == 0 && shared_limit_queued(u->shared) == 0);

	if (u->shared != NULL && (!want || u->shared_on != reg->redis) && idle)
		shared_drop(u);
	if (!want)
		return;
	if (u->shared == NULL) {
		u->shared = shared_limit_new(reg->redis, u->key, conc, rate, burst);
		u->shared_on = reg->redis;
		return;
	}
	shared_limit_configure(u->shared, conc, rate, burst);
}

struct shared_limit *upstream_fleet(struct upstream *u)
{
	/* a reload replaced [redis]: move once nothing holds the old one */
	if (u->shared != NULL && u->shared_on != u->reg->redis)
		configure_shared(u->reg, u, config_find_upstream(u->reg->cfg, u->key));
	return u->shared;
}

struct upstream_registry *upstream_registry_new(struct event_base *base,
                                                const struct config *cfg)
{
	struct upstream_registry *reg = xcalloc(1, sizeof *reg);

	reg->base = base;
	reg->cfg = cfg;
	reg->tls = tls_cache_new();
	reg->sweep = xcheck(event_new(base, -1, EV_PERSIST, on_sweep, reg));
	arm_sweep(reg);
	reg->other.key = xstrdup(UPSTREAM_OTHER);
	redis_configure(reg);
	return reg;
}

/* --- series -------------------------------------------------------------- */

static struct upstream_series *series_find(struct upstream_registry *reg, const char *key)
{
	struct upstream_series *s;

	for (s = reg->series_buckets[hash(key)]; s != NULL; s = s->next)
		if (strcmp(s->key, key) == 0)
			return s;
	return NULL;
}

static struct upstream_series *series_new(struct upstream_registry *reg, const char *key)
{
	struct upstream_series *s = xcalloc(1, sizeof *s);
	unsigned b = hash(key);

	s->key = xstrdup(key);
	if (reg->nseries == reg->series_alloc) {
		reg->series_alloc = reg->series_alloc ? 2 * reg->series_alloc : 64;
		reg->series = xrealloc(reg->series, reg->series_alloc * sizeof *reg->series);
	}
	reg->series[reg->nseries++] = s;
	s->next = reg->series_buckets[b];
	reg->series_buckets[b] = s;
	return s;
}

/* Its own series if it has one or may have one, else "other". */
static struct upstream_series *series_for(struct upstream_registry *reg, const char *key)
{
	struct upstream_series *s = series_find(reg, key);

	if (s != NULL)
		return s;
	if (config_find_upstream(reg->cfg, key) != NULL)
		return series_new(reg, key);
	if (reg->nunconfigured >= UPSTREAM_MAX_SERIES) {
		reg->other_used = true;
		return &reg->other;
	}
	reg->nunconfigured++;
	return series_new(reg, key);
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

/* From now on u counts into s; what its pool counted before is not s's. */
static void series_join(struct upstream *u, struct upstream_series *s)
{
	u->series = s;
	u->totals = s->totals;
	counts_now(u, &u->base);
	LIST_INSERT_HEAD(&s->live, u, series_link);
}

/* u stops counting into its series, which keeps what u counted. */
static void series_leave(struct upstream *u)
{
	struct upstream_series *s = u->series;

	counts_add_since(&s->kept, u);
	LIST_REMOVE(u, series_link);
	u->series = NULL;
	u->totals = NULL;
}

/* The concurrency limit of key: its section's, else upstream_concurrency
 * (also what each upstream counting into "other" has). */
static size_t configured_limit(const struct config *cfg, const char *key)
{
	const struct config_upstream *cu = config_find_upstream(cfg, key);

	if (cu != NULL && cu->concurrency > 0)
		return (size_t)cu->concurrency;
	return (size_t)cfg->upstream_concurrency;
}

static void series_stats(const struct upstream_registry *reg,
                         const struct upstream_series *s, struct upstream_stats *st)
{
	const struct upstream *u;

	memset(st, 0, sizeof *st);
	st->p50_ms = st->p95_ms = -1;
	st->key = s->key;
	st->live = !LIST_EMPTY(&s->live);
	st->limit = configured_limit(reg->cfg, s->key);
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

void upstream_foreach_series(struct upstream_registry *reg,
                             void (*fn)(const struct upstream_stats *s, void *arg),
                             void *arg)
{
	struct upstream_stats st;
	size_t i;

	for (i = 0; i < reg->nseries; i++) {
		series_stats(reg, reg->series[i], &st);
		fn(&st, arg);
	}
	if (!reg->other_used)
		return;
	series_stats(reg, &reg->other, &st);
	fn(&st, arg);
}

size_t upstream_live_count(const struct upstream_registry *reg)
{
	return reg->nlive;
}

size_t upstream_series_count(const struct upstream_registry *reg)
{
	return reg->nseries + (reg->other_used ? 1 : 0);
}

static struct pool_settings pool_settings_for(struct upstream_registry *reg,
                                              struct upstream *u,
                                              const struct config_upstream *cu,
                                              const char *ca_file)
{
	static const enum pool_http2 http2[] = {
		[CONFIG_HTTP2_AUTO] = POOL_HTTP2_AUTO,
		[CONFIG_HTTP2_NO] = POOL_HTTP2_NO,
		[CONFIG_HTTP2_PRIOR] = POOL_HTTP2_PRIOR,
	};
	const struct config *cfg = reg->cfg;
	struct pool_settings ps;
	char err[512];

	memset(&ps, 0, sizeof ps);
	ps.keepalive_timeout_ms = cfg->keepalive_timeout_ms;
	ps.max_connections = cfg->max_connections;
	if (cu != NULL && cu->max_connections > 0)
		ps.max_connections = cu->max_connections;
	ps.http2 = http2[cu != NULL && cu->http2 >= 0 ? cu->http2 : cfg->http2];
	ps.h2_max_streams = cu != NULL && cu->h2_max_streams > 0 ? cu->h2_max_streams
	                                                         : cfg->h2_max_streams;
	ps.max_body = cfg->max_response_body > SIZE_MAX ? SIZE_MAX
	                                                : (size_t)cfg->max_response_body;
	free(u->tls_error);
	u->tls_error = NULL;
	if (u->tls) {
		ps.ssl_ctx = tls_context(reg->tls, u->tls_verify, ca_file, err, sizeof err);
		if (ps.ssl_ctx == NULL)
			u->tls_error = xstrdup(err);
		ps.tls_verify = u->tls_verify;
		ps.tls_host = u->host;
	}
	return ps;
}

/* --- rate limit ---------------------------------------------------------- */

/* One timer per upstream: armed for the moment the queue head's token is
 * due, rounded up so it never fires a hair early. */
static void arm_bucket(struct upstream *u)
{
	double ms = limit_bucket_next_ms(&u->bucket, clock_now_ms());
	struct timeval tv;

	if (ms < 0 || u->bucket_timer == NULL)
		return;
	tv = clock_timeval(ms);
	evtimer_add(u->bucket_timer, &tv);
}

static void on_bucket_timer(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;

	(void)fd;
	(void)what;
	limit_bucket_dispatch(&u->bucket, clock_now_ms());
	arm_bucket(u);
}

bool upstream_take_token(struct upstream *u, struct limit_waiter *w)
{
	if (!u->rate_limited)
		return true;
	if (limit_bucket_acquire(&u->bucket, w, clock_now_ms()))
		return true;
	arm_bucket(u);
	return false;
}

void upstream_cancel_token(struct upstream *u, struct limit_waiter *w)
{
	limit_bucket_cancel(&u->bucket, w);
}

/* --- Retry-After pause ------------------------------------------------------ */

const char *upstream_retry_reason_name(enum upstream_retry_reason r)
{
	static const char *names[] = {
		[UPSTREAM_RETRY_CONNECT] = "connect", [UPSTREAM_RETRY_TIMEOUT] = "timeout",
		[UPSTREAM_RETRY_429] = "429", [UPSTREAM_RETRY_500] = "500",
		[UPSTREAM_RETRY_502] = "502", [UPSTREAM_RETRY_503] = "503",
		[UPSTREAM_RETRY_504] = "504", [UPSTREAM_RETRY_OTHER_STATUS] = "other_status",
	};

	return names[r];
}

double upstream_paused_ms(const struct upstream *u)
{
	double left = u->paused_until_ms - clock_now_ms();

	return left > 0 ? left : 0;
}

static void arm_pause(struct upstream *u)
{
	struct timeval tv = clock_timeval(upstream_paused_ms(u));

	evtimer_add(u->pause_timer, &tv);
}

/* The pause is over (or was extended: wait on): the waiters go, oldest
 * first; one of them may meet a new pause, which holds the rest. */
static void on_pause_timer(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;
	struct limit_waiter *w;

	(void)fd;
	(void)what;
	while ((w = TAILQ_FIRST(&u->paused)) != NULL) {
		if (upstream_paused_ms(u) > 0) {
			arm_pause(u);
			return;
		}
		TAILQ_REMOVE(&u->paused, w, link);
		w->queued = false;
		w->grant(w, w->arg);
	}
}

void upstream_pause(struct upstream *u, double ms)
{
	double now = clock_now_ms();
	double until = now + ms;

	if (ms <= 0 || until <= u->paused_until_ms)
		return;
	u->paused_ms += until - (u->paused_until_ms > now ? u->paused_until_ms : now);
	u->paused_until_ms = until;
	if (u->pause_timer == NULL)
		u->pause_timer = xcheck(evtimer_new(u->reg->base, on_pause_timer, u));
	log_debug("%s: paused for %.0f ms (Retry-After)", u->key, ms);
	if (!TAILQ_EMPTY(&u->paused))
		arm_pause(u);
}

bool upstream_pass_pause(struct upstream *u, struct limit_waiter *w)
{
	/* FIFO: nobody overtakes a waiter, even once the time has passed */
	if (upstream_paused_ms(u) <= 0 && TAILQ_EMPTY(&u->paused))
		return true;
	TAILQ_INSERT_TAIL(&u->paused, w, link);
	w->queued = true;
	arm_pause(u);
	return false;
}

void upstream_cancel_pause(struct upstream *u, struct limit_waiter *w)
{
	if (!w->queued)
		return;
	TAILQ_REMOVE(&u->paused, w, link);
	w->queued = false;
}

bool upstream_retry_allowed(const struct upstream *u, bool self)
{
	double in_flight = (double)u->sem.in_use + (double)u->retries_waiting;
	double allowed = u->retry_budget * in_flight;

	if (allowed < 3)
		allowed = 3;
	return (double)u->retries_active + (self ? 0 : 1) <= allowed;
}

/* rate 0 = no limit; burst defaults to the rate rounded up, at least 1 */
static void configure_rate(struct upstream_registry *reg, struct upstream *u,
                           const struct config_upstream *cu)
{
	double rate = cu ? cu->rate_per_s : 0;
	double whole = (double)(long)rate;
	double burst = cu && cu->burst > 0 ? (double)cu->burst
	               : whole + (whole < rate ? 1 : 0);   /* the rate rounded up */

	if (burst < 1)
		burst = 1;
	/* most upstreams never have a rate: no timer for them */
	if (rate > 0 && u->bucket_timer == NULL)
		u->bucket_timer = xcheck(evtimer_new(reg->base, on_bucket_timer, u));
	limit_bucket_set_rate(&u->bucket, rate, burst, clock_now_ms());
	u->rate_limited = rate > 0;
	arm_bucket(u);
}

/* Retries, Retry-After and the breaker (SPEC section 10), as configure()
 * does the timeouts: the policy has every field given, the level a
 * batch's and a request's "retry" fall back to. */
static void configure_retry(struct upstream *u, const struct config *cfg,
                            const struct config_upstream *cu)
{
	u->retry.attempts = 1 + cfg->retries;
	u->retry.backoff_ms = cfg->retry_backoff_ms;
	u->retry.max_backoff_ms = cfg->retry_max_backoff_ms;
	u->retry.on_set = true;
	u->retry.on = cfg->retry_on.on;
	u->max_retries = cfg->max_retries;
	u->retry_budget = cfg->retry_budget;
	u->max_retry_after_ms = cfg->max_retry_after_ms;
	u->honor_retry_after = cfg->honor_retry_after;
	u->breaker_failures = cfg->breaker_failures;
	u->breaker_cooldown_ms = cfg->breaker_cooldown_ms;
	if (cu == NULL)
		return;
	if (cu->retries >= 0)
		u->retry.attempts = 1 + cu->retries;
	if (cu->retry_backoff_ms >= 0)
		u->retry.backoff_ms = cu->retry_backoff_ms;
	if (cu->retry_max_backoff_ms >= 0)
		u->retry.max_backoff_ms = cu->retry_max_backoff_ms;
	if (cu->retry_on.set)
		u->retry.on = cu->retry_on.on;
	if (cu->max_retries >= 0)
		u->max_retries = cu->max_retries;
	if (cu->retry_budget >= 0)
		u->retry_budget = cu->retry_budget;
	if (cu->max_retry_after_ms >= 0)
		u->max_retry_after_ms = cu->max_retry_after_ms;
	if (cu->honor_retry_after >= 0)
		u->honor_retry_after = cu->honor_retry_after;
	if (cu->breaker_failures >= 0)
		u->breaker_failures = cu->breaker_failures;
	if (cu->breaker_cooldown_ms > 0)
		u->breaker_cooldown_ms = cu->breaker_cooldown_ms;
}

/* Settings from the [fanoutd] section, overridden by the upstream's own. */
static void configure(struct upstream_registry *reg, struct upstream *u)
{
	const struct config *cfg = reg->cfg;
	const struct config_upstream *cu = config_find_upstream(cfg, u->key);
	const char *ca_file = cfg->ca_file;
	struct pool_settings ps;

	u->request_timeout_ms = cfg->request_timeout_ms;
	u->connect_timeout_ms = cfg->connect_timeout_ms;
	u->tls_verify = cfg->tls_verify;
	if (cu != NULL) {
		if (cu->request_timeout_ms > 0)
			u->request_timeout_ms = cu->request_timeout_ms;
		if (cu->connect_timeout_ms > 0)
			u->connect_timeout_ms = cu->connect_timeout_ms;
		if (cu->tls_verify >= 0)
			u->tls_verify = cu->tls_verify;
		if (cu->ca_file != NULL)
			ca_file = cu->ca_file;
	}
	configure_retry(u, cfg, cu);
	u->collapse = cu != NULL && cu->collapse > 0;
	u->hedge_after_ms = cu != NULL && cu->hedge_after_ms > 0 ? cu->hedge_after_ms : 0;
	configure_shared(reg, u, cu);
	breaker_configure(&u->breaker, u->breaker_failures, u->breaker_cooldown_ms);
	limit_sem_set_limit(&u->sem, configured_limit(cfg, u->key));
	configure_rate(reg, u, cu);
	ps = pool_settings_for(reg, u, cu, ca_file);
	if (u->pool == NULL)
		u->pool = pool_new(reg->base, &ps);
	else
		pool_configure(u->pool, &ps);
}

/* --- live upstreams ------------------------------------------------------ */

struct upstream *upstream_get(struct upstream_registry *reg, const char *key,
                              const char *host, int port, bool tls)
{
	unsigned b = hash(key);
	struct upstream *u;

	for (u = reg->buckets[b]; u != NULL; u = u->next) {
		if (strcmp(u->key, key) == 0) {
			u->refs++;
			return u;
		}
	}
	u = xcalloc(1, sizeof *u);
	u->key = xstrdup(key);
	u->host = xstrdup(host);
	u->port = port;
	u->tls = tls;
	u->reg = reg;
	limit_sem_init(&u->sem, 1);
	TAILQ_INIT(&u->paused);
	limit_bucket_init(&u->bucket, 0, 1, clock_now_ms());
	configure(reg, u);
	series_join(u, series_for(reg, key));
	u->refs = 1;
	u->next = reg->buckets[b];
	reg->buckets[b] = u;
	reg->nlive++;
	return u;
}

/* Nothing points at it, nothing waits or runs on it, no connection is
 * kept and no section configures it: it holds nothing worth keeping. */
static bool unused(const struct upstream_registry *reg, const struct upstream *u)
{
	return u->refs == 0 && u->sem.in_use == 0 && u->sem.nqueued == 0 &&
	       u->bucket.nqueued == 0 && pool_idle_count(u->pool) == 0 &&
	       config_find_upstream(reg->cfg, u->key) == NULL;
}

/* Unlink u from the live table and free it; its series keeps its counts. */
static void forget(struct upstream_registry *reg, struct upstream *u)
{
	struct upstream **p;

	for (p = &reg->buckets[hash(u->key)]; *p != u; p = &(*p)->next)
		;
	*p = u->next;
	reg->nlive--;
	series_leave(u);
	if (u->shared != NULL)
		shared_drop(u);
	pool_free(u->pool);
	if (u->bucket_timer != NULL)
		event_free(u->bucket_timer);
	if (u->pause_timer != NULL)
		event_free(u->pause_timer);
	collapse_table_free(u->flights);
	free(u->latency);
	free(u->tls_error);
	free(u->key);
	free(u->host);
	free(u);
}

void upstream_note_latency(struct upstream *u, double ms)
{
	if (u->latency == NULL) {
		u->latency = xmalloc(sizeof *u->latency);
		latency_init(u->latency);
	}
	latency_add(u->latency, ms);
}

/* SPEC 15: "a fixed 100 ms before" the window has this many samples */
#define HEDGE_P95_MIN_SAMPLES 100
#define HEDGE_P95_BEFORE_MS 100.0

double upstream_hedge_delay(struct upstream *u)
{
	if (u->hedge_after_ms != CONFIG_HEDGE_P95)
		return (double)u->hedge_after_ms;
	if (u->latency == NULL || latency_samples(u->latency) < HEDGE_P95_MIN_SAMPLES)
		return HEDGE_P95_BEFORE_MS;
	return latency_quantile(u->latency, 0.95);
}

/* An upstream that never opened a connection (its name did not resolve,
 * or resolved into deny_networks) goes at once: a batch of 10,000 such
 * names must not leave 10,000 pools behind until the next sweep. */
void upstream_put(struct upstream *u)
{
	u->refs--;
	u->last_used_ms = clock_now_ms();
	if (pool_opened_count(u->pool) == 0 && unused(u->reg, u))
		forget(u->reg, u);
}

/* One that did is kept for keepalive_timeout after its last use, so an
 * upstream used now and then is not made again for every batch. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_registry *reg = arg;
	double now = clock_now_ms();
	struct upstream *u, *next;
	size_t b;

	(void)fd;
	(void)what;
	for (b = 0; b < NBUCKETS; b++) {
		for (u = reg->buckets[b]; u != NULL; u = next) {
			next = u->next;
			if (unused(reg, u) &&
			    now - u->last_used_ms >= (double)reg->cfg->keepalive_timeout_ms)
				forget(reg, u);
			else if (u->shared != NULL && u->shared_on != reg->redis)
				configure_shared(reg, u, config_find_upstream(reg->cfg, u->key));
		}
	}
	reap_retired(reg);
}

/* An upstream that counted into "other" and now has a section gets its
 * own series: configured upstreams always have one. */
static void reseat(struct upstream_registry *reg, struct upstream *u)
{
	if (u->series != &reg->other || config_find_upstream(reg->cfg, u->key) == NULL)
		return;
	series_leave(u);
	series_join(u, series_for(reg, u->key));
}

void upstream_registry_configure(struct upstream_registry *reg, const struct config *cfg)
{
	struct upstream *u;
	size_t b;

	reg->cfg = cfg;
	arm_sweep(reg);
	redis_configure(reg);
	for (b = 0; b < NBUCKETS; b++) {
		for (u = reg->buckets[b]; u != NULL; u = u->next) {
			configure(reg, u);
			reseat(reg, u);
		}
	}
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

static void free_series(struct upstream_series *s)
{
	free(s->key);
	free(s);
}

void upstream_registry_free(struct upstream_registry *reg)
{
	size_t b, i;

	for (b = 0; b < NBUCKETS; b++)
		while (reg->buckets[b] != NULL)
			forget(reg, reg->buckets[b]);
	for (i = 0; i < reg->nseries; i++)
		free_series(reg->series[i]);
	free(reg->series);
	free(reg->other.key);
	event_free(reg->sweep);
	reap_retired(reg);
	shared_redis_free(reg->redis);
	free(reg->redis_url);
	free(reg->redis_prefix);
	tls_cache_free(reg->tls);
	free(reg);
}
