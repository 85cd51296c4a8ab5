/* upstream: the per-upstream state shared by all batches, kept in a
 * chained hash table keyed by "scheme://host:port".  Upstreams live until
 * exit: their semaphores must outlive every waiter. */
#include <stdlib.h>
#include <string.h>

#include "tls.h"
#include "upstream.h"

#define NBUCKETS 1024

struct upstream_registry {
	struct event_base *base;
	const struct config *cfg;   /* borrowed; main owns it */
	struct tls_cache *tls;      /* owned */
	struct upstream *buckets[NBUCKETS];
};

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;   /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % NBUCKETS;
}

struct upstream_registry *upstream_registry_new(struct event_base *base,
                                                const struct config *cfg)
{
	struct upstream_registry *reg = calloc(1, sizeof *reg);

	if (reg == NULL)
		abort();
	reg->base = base;
	reg->cfg = cfg;
	reg->tls = tls_cache_new();
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

	for (u = reg->buckets[b]; u != NULL; u = u->next)
		if (strcmp(u->key, key) == 0)
			return u;
	u = calloc(1, sizeof *u);
	if (u == NULL)
		abort();
	u->key = strdup(key);
	u->host = strdup(host);
	u->port = port;
	u->tls = tls;
	limit_sem_init(&u->sem, 1);
	configure(reg, u);
	u->next = reg->buckets[b];
	reg->buckets[b] = u;
	return u;
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
			pool_free(u->pool);
			free(u->tls_error);
			free(u->key);
			free(u->host);
			free(u);
		}
	}
	tls_cache_free(reg->tls);
	free(reg);
}
