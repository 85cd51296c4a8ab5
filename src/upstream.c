/* upstream: the per-upstream state shared by all batches, kept in a
 * chained hash table keyed by "scheme://host:port".  Upstreams live until
 * exit: their semaphores must outlive every waiter. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "clock.h"

#include "tls.h"
#include "upstream.h"

#define NBUCKETS 1024
#define SWEEP_EVERY_S 60
#define IDLE_LIFETIME_MS (10 * 60 * 1000.0)

struct upstream_registry {
	struct event_base *base;
	const struct config *cfg;   /* borrowed; main owns it */
	struct tls_cache *tls;      /* owned */
	struct event *sweep;        /* frees upstreams long unused (owned) */
	struct upstream *buckets[NBUCKETS];
};

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;   /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % NBUCKETS;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg);

struct upstream_registry *upstream_registry_new(struct event_base *base,
                                                const struct config *cfg)
{
	struct timeval every = { SWEEP_EVERY_S, 0 };
	struct upstream_registry *reg = calloc(1, sizeof *reg);

	if (reg == NULL)
		abort();
	reg->base = base;
	reg->cfg = cfg;
	reg->tls = tls_cache_new();
	reg->sweep = event_new(base, -1, EV_PERSIST, on_sweep, reg);
	event_add(reg->sweep, &every);
	return reg;
}

static struct pool_settings pool_settings_for(struct upstream_registry *reg,
                                              struct upstream *u, const char *ca_file)
{
	struct pool_settings ps;
	char err[512];

	memset(&ps, 0, sizeof ps);
	ps.keepalive_timeout_ms = reg->cfg->keepalive_timeout_ms;
	ps.max_response_body = reg->cfg->max_response_body;
	/* evhttp's inactivity timeout only backs up our own timers */
	ps.io_timeout_ms = 24L * 3600 * 1000 + 1000;
	free(u->tls_error);
	u->tls_error = NULL;
	if (u->tls) {
		ps.ssl_ctx = tls_context(reg->tls, u->tls_verify, ca_file, err, sizeof err);
		if (ps.ssl_ctx == NULL)
			u->tls_error = strdup(err);
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

	if (ms < 0)
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
	if (u->bucket_timer == NULL) {
		u->bucket_timer = evtimer_new(reg->base, on_bucket_timer, u);
		limit_bucket_init(&u->bucket, rate, burst, clock_now_ms());
	} else {
		limit_bucket_set_rate(&u->bucket, rate, burst, clock_now_ms());
	}
	u->rate_limited = rate > 0;
	arm_bucket(u);
}

/* Settings from the [fanoutd] section, overridden by the upstream's own. */
static void configure(struct upstream_registry *reg, struct upstream *u)
{
	const struct config *cfg = reg->cfg;
	const struct config_upstream *cu = config_find_upstream(cfg, u->key);
	const char *ca_file = cfg->ca_file;
	long limit = cfg->upstream_concurrency;
	struct pool_settings ps;

	u->request_timeout_ms = cfg->request_timeout_ms;
	u->connect_timeout_ms = cfg->connect_timeout_ms;
	u->tls_verify = cfg->tls_verify;
	if (cu != NULL) {
		if (cu->concurrency > 0)
			limit = cu->concurrency;
		if (cu->request_timeout_ms > 0)
			u->request_timeout_ms = cu->request_timeout_ms;
		if (cu->connect_timeout_ms > 0)
			u->connect_timeout_ms = cu->connect_timeout_ms;
		if (cu->tls_verify >= 0)
			u->tls_verify = cu->tls_verify;
		if (cu->ca_file != NULL)
			ca_file = cu->ca_file;
	}
	limit_sem_set_limit(&u->sem, (size_t)limit);
	configure_rate(reg, u, cu);
	ps = pool_settings_for(reg, u, ca_file);
	if (u->pool == NULL)
		u->pool = pool_new(reg->base, &ps);
	else
		pool_configure(u->pool, &ps);
}

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
	u = calloc(1, sizeof *u);
	if (u == NULL)
		abort();
	u->key = strdup(key);
	u->host = strdup(host);
	u->port = port;
	u->tls = tls;
	limit_sem_init(&u->sem, 1);
	configure(reg, u);
	u->refs = 1;
	u->next = reg->buckets[b];
	reg->buckets[b] = u;
	return u;
}

void upstream_put(struct upstream *u)
{
	u->refs--;
	u->last_used_ms = clock_now_ms();
}

static void free_upstream(struct upstream *u)
{
	pool_free(u->pool);
	event_free(u->bucket_timer);
	free(u->tls_error);
	free(u->key);
	free(u->host);
	free(u);
}

/* Nothing points at it, nothing waits or runs on it, no connection is
 * kept, no section configures it, and it has been quiet for a while. */
static bool forgettable(const struct upstream_registry *reg, const struct upstream *u,
                        double now)
{
	return u->refs == 0 && u->sem.in_use == 0 && u->sem.nqueued == 0 &&
	       u->bucket.nqueued == 0 && pool_idle_count(u->pool) == 0 &&
	       config_find_upstream(reg->cfg, u->key) == NULL &&
	       now - u->last_used_ms > IDLE_LIFETIME_MS;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_registry *reg = arg;
	struct upstream **p, *u;
	double now = clock_now_ms();
	size_t b;

	(void)fd;
	(void)what;
	for (b = 0; b < NBUCKETS; b++) {
		for (p = &reg->buckets[b]; (u = *p) != NULL;) {
			if (forgettable(reg, u, now)) {
				*p = u->next;
				free_upstream(u);
			} else {
				p = &u->next;
			}
		}
	}
}

void upstream_registry_configure(struct upstream_registry *reg, const struct config *cfg)
{
	struct upstream *u;
	size_t b;

	reg->cfg = cfg;
	for (b = 0; b < NBUCKETS; b++)
		for (u = reg->buckets[b]; u != NULL; u = u->next)
			configure(reg, u);
}

static void put_upstream(struct upstream *u, void *arg)
{
	struct evbuffer *out = arg;
	const char *sep = evbuffer_get_length(out) > 1 ? "," : "";
	size_t t;

	evbuffer_add_printf(out, "%s{\"upstream\":\"%s\",\"limit\":%zu,\"in_flight\":%zu,"
	                    "\"queued\":%zu,\"idle_connections\":%u,"
	                    "\"connections_opened\":%lu,\"tls_handshakes\":%lu,\"totals\":{",
	                    sep, u->key, u->sem.limit, u->sem.in_use, u->sem.nqueued,
	                    pool_idle_count(u->pool), pool_opened_count(u->pool),
	                    pool_handshake_count(u->pool));
	for (t = OUTCOME_OK; t <= OUTCOME_FORBIDDEN; t++)
		evbuffer_add_printf(out, "%s\"%s\":%lu", t == OUTCOME_OK ? "" : ",",
		                    outcome_type_name((enum outcome_type)t), u->totals[t]);
	evbuffer_add(out, "}}", 2);
}

void upstream_registry_write_json(struct upstream_registry *reg, struct evbuffer *out)
{
	struct evbuffer *list = evbuffer_new();

	evbuffer_add(list, "[", 1);
	upstream_foreach(reg, put_upstream, list);
	evbuffer_add(list, "]", 1);
	evbuffer_add_printf(out, "{\"upstreams\":");
	evbuffer_add_buffer(out, list);
	evbuffer_add(out, "}", 1);
	evbuffer_free(list);
}

void upstream_foreach(struct upstream_registry *reg,
                      void (*fn)(struct upstream *u, void *arg), void *arg)
{
	struct upstream *u;
	size_t b;

	for (b = 0; b < NBUCKETS; b++)
		for (u = reg->buckets[b]; u != NULL; u = u->next)
			fn(u, arg);
}

void upstream_registry_free(struct upstream_registry *reg)
{
	struct upstream *u, *next;
	size_t b;

	for (b = 0; b < NBUCKETS; b++) {
		for (u = reg->buckets[b]; u != NULL; u = next) {
			next = u->next;
			free_upstream(u);
		}
	}
	event_free(reg->sweep);
	tls_cache_free(reg->tls);
	free(reg);
}
