/* upstream: the per-upstream state shared by all batches — its limits
 * (semaphore, rate, Retry-After pause, retry budget, its share of the
 * fleet's Redis), its settings, its pool — and the registry.  Live
 * upstreams sit in a chained hash table keyed by "scheme://host:port" and
 * are freed once nothing uses them (never while a fetch points at one or
 * waits in its queues); the series they count into are
 * upstream_series.c's and stay until exit. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "collapse.h"
#include "keyhash.h"
#include "log.h"
#include "tls.h"
#include "upstream.h"
#include "upstream_internal.h"
#include "xalloc.h"

#define NBUCKETS 1024
/* The sweep runs every keepalive_timeout, within these bounds. */
#define SWEEP_MIN_MS 100L
#define SWEEP_MAX_MS 60000L

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
	struct upstream_series_table *series;   /* every series (owned) */
};

/* The live table hashes as the DNS cache does. */
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
	long conc = (long)upstream_configured_limit(reg->cfg, u->key);
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
	reg->series = upstream_series_table_new();
	redis_configure(reg);
	return reg;
}

/* (also what each upstream counting into "other" has) */
size_t upstream_configured_limit(const struct config *cfg, const char *key)
{
	const struct config_upstream *cu = config_find_upstream(cfg, key);

	if (cu != NULL && cu->concurrency > 0)
		return (size_t)cu->concurrency;
	return (size_t)cfg->upstream_concurrency;
}

/* --- the series (upstream_series.c) ------------------------------------ */

void upstream_foreach_series(struct upstream_registry *reg,
                             void (*fn)(const struct upstream_stats *s, void *arg),
                             void *arg)
{
	upstream_series_table_foreach(reg->series, reg->cfg, fn, arg);
}

size_t upstream_series_count(const struct upstream_registry *reg)
{
	return upstream_series_table_count(reg->series);
}

size_t upstream_live_count(const struct upstream_registry *reg)
{
	return reg->nlive;
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
	limit_sem_set_limit(&u->sem, upstream_configured_limit(cfg, u->key));
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
	upstream_series_join(reg->series, reg->cfg, u);
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
	upstream_series_leave(u);
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
			upstream_series_reseat(reg->series, reg->cfg, u);
		}
	}
}

void upstream_registry_free(struct upstream_registry *reg)
{
	size_t b;

	for (b = 0; b < NBUCKETS; b++)
		while (reg->buckets[b] != NULL)
			forget(reg, reg->buckets[b]);
	upstream_series_table_free(reg->series);
	event_free(reg->sweep);
	reap_retired(reg);
	shared_redis_free(reg->redis);
	free(reg->redis_url);
	free(reg->redis_prefix);
	tls_cache_free(reg->tls);
	free(reg);
}
