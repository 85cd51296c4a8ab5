/* config: the daemon's settings.  Owns struct config and the one table
 * of keys (name, type, section and offset, range, reload, default,
 * description) that defaults, lookups, freeing and config_dump walk.
 * What each type parses and dumps is config_types.c; reading the INI file
 * is config_load.c; the value syntax ("5s", "8M", addresses) is units.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"
#include "units.h"

/* Where a key is stored: its section and the offset in that section's struct. */
#define CFG(f) CONFIG_SECTION_FANOUTD, offsetof(struct config, f)
#define UPS(f) CONFIG_SECTION_UPSTREAM, offsetof(struct config_upstream, f)
#define RED(f) CONFIG_SECTION_REDIS, offsetof(struct config_redis, f)

const struct config_key config_keys[CONFIG_N_KEYS] = {
	/* [fanoutd] */
	{ "listen", CONFIG_KEY_LISTEN, CFG(listen), 0, 0, false, "127.0.0.1:8642",
	  "HOST:PORT, [IPv6]:PORT or unix:/absolute/path; repeat for up to 16" },
	{ "max_batch_size", CONFIG_KEY_INT, CFG(max_batch_size), 1, 1000000, true, "10000",
	  "most requests in one batch (1..1000000); more -> 400" },
	{ "max_request_body", CONFIG_KEY_SIZE, CFG(max_request_body), 1, 1024 * UNITS_GIB, true, "8M",
	  "largest batch request body: bytes or K, M, G, k, m, g (x1024); more -> 413" },
	{ "max_response_body", CONFIG_KEY_SIZE, CFG(max_response_body), 1, 1024 * UNITS_GIB, true, "8M",
	  "largest upstream response body (bytes, K, M, G); more -> error too_large" },
	{ "max_batch_response", CONFIG_KEY_SIZE, CFG(max_batch_response), 1, 1024 * UNITS_GIB, true, "256M",
	  "all response bodies of one batch together; more -> error too_large" },
	{ "max_stream_batch_size", CONFIG_KEY_INT, CFG(max_stream_batch_size), 1, 100000000, true,
	  "1000000", "most requests in one streamed (NDJSON) batch (1..100000000); more -> 400" },
	{ "stream_buffer", CONFIG_KEY_SIZE, CFG(stream_buffer), 1, 1024 * UNITS_GIB, true, "8M",
	  "unsent NDJSON output held for a client before its batch stops starting requests" },
	{ "request_timeout", CONFIG_KEY_DURATION, CFG(request_timeout_ms), 1, UNITS_DAY_MS, true, "5s",
	  "per upstream request: 250ms, 1.5s, 2m, 1h; bare number = seconds; max 24h" },
	{ "connect_timeout", CONFIG_KEY_DURATION, CFG(connect_timeout_ms), 1, UNITS_DAY_MS, true, "5s",
	  "connecting to an upstream, TLS handshake included" },
	{ "batch_timeout", CONFIG_KEY_DURATION, CFG(batch_timeout_ms), 1, UNITS_DAY_MS, true, "60s",
	  "deadline for a whole batch unless the request sets timeout_ms" },
	{ "shutdown_timeout", CONFIG_KEY_DURATION, CFG(shutdown_timeout_ms), 0, UNITS_DAY_MS, true, "30s",
	  "on SIGTERM, running batches get this long to finish; 0 = cancel at once" },
	{ "client_timeout", CONFIG_KEY_DURATION, CFG(client_timeout_ms), 1, UNITS_DAY_MS, true, "10s",
	  "a client that sends its request slower than this is cut off" },
	{ "upstream_concurrency", CONFIG_KEY_INT, CFG(upstream_concurrency), 1, 100000, true, "10",
	  "default per-upstream limit in flight, shared by all batches (1..100000)" },
	{ "global_concurrency", CONFIG_KEY_INT, CFG(global_concurrency), 1, 1000000, true, "1024",
	  "all upstream requests in flight at once (1..1000000)" },
	{ "max_queued", CONFIG_KEY_INT, CFG(max_queued), 1, 100000000, true, "100000",
	  "requests waiting for a slot (1..100000000); more -> 503 overloaded" },
	{ "max_connections", CONFIG_KEY_INT, CFG(max_connections), 0, 100000, true, "0",
	  "connections open at once to one upstream (0..100000); 0 = as many as needed" },
	{ "http2", CONFIG_KEY_HTTP2, CFG(http2), 0, 0, true, "auto",
	  "auto (over https ALPN picks h2 or http/1.1), no (HTTP/1.1) or prior-knowledge (h2)" },
	{ "h2_max_streams", CONFIG_KEY_INT, CFG(h2_max_streams), 1, 1000, true, "100",
	  "streams at once on one HTTP/2 connection (1..1000; fewer if the server says so)" },
	{ "keepalive_timeout", CONFIG_KEY_DURATION, CFG(keepalive_timeout_ms), 1, UNITS_DAY_MS, true, "30s",
	  "idle upstream connections are kept this long for reuse" },
	{ "retries", CONFIG_KEY_INT, CFG(retries), 0, 100, true, "0",
	  "extra attempts after a failure retry_on names (0..100); 0 = no retries" },
	{ "retry_on", CONFIG_KEY_RETRY_ON, CFG(retry_on), 0, 0, true,
	  "connect, timeout, 429, 502, 503, 504",
	  "failures retried: connect, timeout and statuses 400..599, comma-separated" },
	{ "retry_backoff", CONFIG_KEY_DURATION, CFG(retry_backoff_ms), 0, UNITS_DAY_MS, true, "100ms",
	  "wait before the first retry; doubles each retry, full jitter" },
	{ "retry_max_backoff", CONFIG_KEY_DURATION, CFG(retry_max_backoff_ms), 0, UNITS_DAY_MS, true,
	  "5s", "the back-off never waits longer than this" },
	{ "retry_budget", CONFIG_KEY_PERCENT, CFG(retry_budget), 0, 100, true, "20%",
	  "retries waiting or in flight to an upstream: at most this share of its requests (at least 3)" },
	{ "max_retries", CONFIG_KEY_INT, CFG(max_retries), 0, 100, true, "5",
	  "most retries a batch or request may ask for: \"retry\": {\"attempts\"} <= 1 + this" },
	{ "max_retry_after", CONFIG_KEY_DURATION, CFG(max_retry_after_ms), 0, UNITS_DAY_MS, true, "30s",
	  "an upstream's Retry-After is waited for (and pauses it) at most this long" },
	{ "honor_retry_after", CONFIG_KEY_BOOL, CFG(honor_retry_after), 0, 0, true, "yes",
	  "a 429 or 503 with Retry-After pauses that upstream's queue for every batch" },
	{ "breaker_failures", CONFIG_KEY_INT, CFG(breaker_failures), 0, 1000000, true, "0",
	  "consecutive failures that open an upstream's circuit breaker (0..1000000); 0 = off" },
	{ "breaker_cooldown", CONFIG_KEY_DURATION, CFG(breaker_cooldown_ms), 1, UNITS_DAY_MS, true, "10s",
	  "an open breaker fails requests at once this long, then lets one probe through" },
	{ "tls_verify", CONFIG_KEY_BOOL, CFG(tls_verify), 0, 0, true, "yes",
	  "check upstream certificates and host names: yes/no, on/off, true/false, 1/0" },
	{ "ca_file", CONFIG_KEY_PATH, CFG(ca_file), 0, 0, true, "",
	  "PEM CA bundle for upstream TLS; empty = system store; relative to this file" },
	{ "resolv_conf", CONFIG_KEY_PATH, CFG(resolv_conf), 0, 0, false, "/etc/resolv.conf",
	  "nameservers and search domains for upstream host names (hosts file first)" },
	{ "auth_token_file", CONFIG_KEY_PATH, CFG(auth_token_file), 0, 0, true, "",
	  "if set, clients must send Authorization: Bearer <token in this file>" },
	{ "allow_hosts", CONFIG_KEY_HOSTS, CFG(allow_hosts), 0, 0, true, "*",
	  "comma-separated host globs (fnmatch, lower case); other hosts -> 400" },
	{ "deny_networks", CONFIG_KEY_CIDRS, CFG(deny_networks), 0, 0, true, "169.254.0.0/16, fe80::/10",
	  "comma-separated CIDRs never connected to (resolved address); empty = none" },
	{ "access_log", CONFIG_KEY_BOOL, CFG(access_log), 0, 0, true, "yes",
	  "one JSON line per batch on stderr" },
	{ "socket_mode", CONFIG_KEY_MODE, CFG(socket_mode), 0, 0777, false, "0660",
	  "permissions of unix listen sockets, octal" },

	/* [upstream "URL"]: defaults are all unset, the [fanoutd] value applies */
	{ "concurrency", CONFIG_KEY_INT, UPS(concurrency), 1, 100000, true, NULL,
	  "requests in flight to this upstream (1..100000)" },
	{ "max_connections", CONFIG_KEY_INT, UPS(max_connections), 1, 100000, true, NULL,
	  "overrides [fanoutd] max_connections" },
	{ "http2", CONFIG_KEY_HTTP2, UPS(http2), 0, 0, true, NULL,
	  "overrides [fanoutd] http2" },
	{ "h2_max_streams", CONFIG_KEY_INT, UPS(h2_max_streams), 1, 1000, true, NULL,
	  "overrides [fanoutd] h2_max_streams" },
	{ "rate", CONFIG_KEY_RATE, UPS(rate_per_s), 0, 0, true, NULL,
	  "token bucket: N/s, N/m or N/h, N may be decimal, at most 1000000/s" },
	{ "burst", CONFIG_KEY_INT, UPS(burst), 1, 1000000, true, NULL,
	  "token bucket size (1..1000000; needs rate; default: rate rounded up)" },
	{ "request_timeout", CONFIG_KEY_DURATION, UPS(request_timeout_ms), 1, UNITS_DAY_MS, true, NULL,
	  "overrides [fanoutd] request_timeout" },
	{ "connect_timeout", CONFIG_KEY_DURATION, UPS(connect_timeout_ms), 1, UNITS_DAY_MS, true, NULL,
	  "overrides [fanoutd] connect_timeout" },
	{ "retries", CONFIG_KEY_INT, UPS(retries), 0, 100, true, NULL,
	  "overrides [fanoutd] retries" },
	{ "retry_on", CONFIG_KEY_RETRY_ON, UPS(retry_on), 0, 0, true, NULL,
	  "overrides [fanoutd] retry_on" },
	{ "retry_backoff", CONFIG_KEY_DURATION, UPS(retry_backoff_ms), 0, UNITS_DAY_MS, true, NULL,
	  "overrides [fanoutd] retry_backoff" },
	{ "retry_max_backoff", CONFIG_KEY_DURATION, UPS(retry_max_backoff_ms), 0, UNITS_DAY_MS, true,
	  NULL, "overrides [fanoutd] retry_max_backoff" },
	{ "retry_budget", CONFIG_KEY_PERCENT, UPS(retry_budget), 0, 100, true, NULL,
	  "overrides [fanoutd] retry_budget" },
	{ "max_retries", CONFIG_KEY_INT, UPS(max_retries), 0, 100, true, NULL,
	  "overrides [fanoutd] max_retries" },
	{ "max_retry_after", CONFIG_KEY_DURATION, UPS(max_retry_after_ms), 0, UNITS_DAY_MS, true, NULL,
	  "overrides [fanoutd] max_retry_after" },
	{ "honor_retry_after", CONFIG_KEY_TRIBOOL, UPS(honor_retry_after), 0, 0, true, NULL,
	  "overrides [fanoutd] honor_retry_after" },
	{ "breaker_failures", CONFIG_KEY_INT, UPS(breaker_failures), 0, 1000000, true, NULL,
	  "overrides [fanoutd] breaker_failures (0 = off for this upstream)" },
	{ "breaker_cooldown", CONFIG_KEY_DURATION, UPS(breaker_cooldown_ms), 1, UNITS_DAY_MS, true, NULL,
	  "overrides [fanoutd] breaker_cooldown" },
	{ "tls_verify", CONFIG_KEY_TRIBOOL, UPS(tls_verify), 0, 0, true, NULL,
	  "overrides [fanoutd] tls_verify" },
	{ "ca_file", CONFIG_KEY_PATH, UPS(ca_file), 0, 0, true, NULL,
	  "overrides [fanoutd] ca_file" },
	{ "collapse", CONFIG_KEY_TRIBOOL, UPS(collapse), 0, 0, true, NULL,
	  "yes: an identical GET or HEAD already in flight here is joined, not sent again" },
	{ "hedge_after", CONFIG_KEY_HEDGE, UPS(hedge_after_ms), 0, 0, true, NULL,
	  "off, a duration (1ms..1h) or p95: a second attempt of an idempotent request "
	  "with no answer by then" },
	{ "shared", CONFIG_KEY_TRIBOOL, UPS(shared), 0, 0, true, NULL,
	  "yes: concurrency, rate and burst hold across every fanoutd on the same [redis]" },

	/* [redis]: SPEC section 13; no url = no Redis, every limit is local */
	{ "url", CONFIG_KEY_REDIS_URL, RED(url), 0, 0, true, NULL,
	  "redis://host[:port][/db] or unix:/path; empty = no Redis (shared = yes needs one)" },
	{ "key_prefix", CONFIG_KEY_WORD, RED(key_prefix), 1, 64, true, "fanoutd:",
	  "starts every Redis key: daemons with the same one share limits (1..64, no spaces)" },
	{ "timeout", CONFIG_KEY_DURATION, RED(timeout_ms), 1, 10000, true, "100ms",
	  "Redis slower than this to connect or answer: local limits until it answers (1ms..10s)" },
	{ "lease", CONFIG_KEY_DURATION, RED(lease_ms), 100, UNITS_HOUR_MS, true, "30s",
	  "a concurrency slot's lease, renewed at half-life; a dead daemon's expire (100ms..1h)" },
};

_Static_assert(sizeof config_keys / sizeof config_keys[0] == CONFIG_N_KEYS,
               "CONFIG_N_KEYS does not match config_keys");

/* ---- walking the table -------------------------------------------------- */

const struct config_key *config_key_find(enum config_section sec, const char *name)
{
	for (const struct config_key *k = config_keys; k < config_keys + CONFIG_N_KEYS; k++)
		if (k->section == sec && strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

/* Every key of SEC in BASE back to its default (or unset). */
static void reset_section(enum config_section sec, void *base)
{
	struct config_input in = { .value = NULL };
	char msg[256];

	for (const struct config_key *k = config_keys; k < config_keys + CONFIG_N_KEYS; k++) {
		if (k->section != sec)
			continue;
		config_key_clear(k, base);
		if (k->def == NULL)
			continue;
		in.value = k->def;
		if (config_key_set(k, base, &in, msg, sizeof msg) < 0) {
			fprintf(stderr, "fanoutd: bad built-in default: %s\n", msg);
			abort();
		}
	}
}

static void clear_section(enum config_section sec, void *base)
{
	for (const struct config_key *k = config_keys; k < config_keys + CONFIG_N_KEYS; k++)
		if (k->section == sec)
			config_key_clear(k, base);
}

static void dump_section(FILE *out, enum config_section sec, const void *base)
{
	for (const struct config_key *k = config_keys; k < config_keys + CONFIG_N_KEYS; k++)
		if (k->section == sec)
			config_key_dump(out, k, base);
}

/* [redis] as the defaults have it: no url, the rest at their defaults
 * (then config_dump leaves the section out). */
static bool redis_is_default(const struct config_redis *r)
{
	struct config_redis def;
	bool same;

	memset(&def, 0, sizeof def);
	reset_section(CONFIG_SECTION_REDIS, &def);
	same = r->url == NULL && r->key_prefix != NULL &&
	       strcmp(r->key_prefix, def.key_prefix) == 0 &&
	       r->timeout_ms == def.timeout_ms && r->lease_ms == def.lease_ms;
	clear_section(CONFIG_SECTION_REDIS, &def);
	return same;
}

void config_upstream_init(struct config_upstream *u, char *key)
{
	memset(u, 0, sizeof *u);
	u->key = key;
	reset_section(CONFIG_SECTION_UPSTREAM, u);
}

/* ---- public ------------------------------------------------------------- */

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	reset_section(CONFIG_SECTION_FANOUTD, cfg);
	reset_section(CONFIG_SECTION_REDIS, &cfg->redis);
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nupstreams; i++) {
		clear_section(CONFIG_SECTION_UPSTREAM, &cfg->upstreams[i]);
		free(cfg->upstreams[i].key);
	}
	free(cfg->upstreams);
	clear_section(CONFIG_SECTION_REDIS, &cfg->redis);
	clear_section(CONFIG_SECTION_FANOUTD, cfg);
	memset(cfg, 0, sizeof *cfg);
}

/* All or nothing: every address is checked before the first replaces
 * the listeners. */
int config_set_listeners(struct config *cfg, char *const *listen, size_t n,
                         char *err, size_t errlen)
{
	const struct config_key *k = config_key_find(CONFIG_SECTION_FANOUTD, "listen");

	if (n == 0) {
		snprintf(err, errlen, "listen: no address given");
		return -1;
	}
	if (n > CONFIG_MAX_LISTEN) {
		snprintf(err, errlen, "listen: more than %d listeners", CONFIG_MAX_LISTEN);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (units_check_listen(listen[i], err, errlen) < 0)
			return -1;
	for (size_t i = 0; i < n; i++) {
		const struct config_input in = { .value = listen[i], .again = i > 0 };

		if (config_key_set(k, cfg, &in, err, errlen) < 0)
			return -1;
	}
	return 0;
}

bool config_upstream_shared(const struct config_upstream *u)
{
	return u != NULL && u->shared > 0;
}

const struct config_upstream *config_find_upstream(const struct config *cfg,
                                                   const char *key)
{
	char msg[256], norm[UNITS_UPSTREAM_KEY_MAX];

	if (cfg == NULL || key == NULL || units_normalise_upstream(key, norm, msg, sizeof msg) < 0)
		return NULL;
	for (size_t i = 0; i < cfg->nupstreams; i++)
		if (strcmp(cfg->upstreams[i].key, norm) == 0)
			return &cfg->upstreams[i];
	return NULL;
}

void config_dump(const struct config *cfg, FILE *out)
{
	fputs("; fanoutd effective configuration\n[fanoutd]\n", out);
	dump_section(out, CONFIG_SECTION_FANOUTD, cfg);
	if (!redis_is_default(&cfg->redis)) {
		fputs("\n[redis]\n", out);
		dump_section(out, CONFIG_SECTION_REDIS, &cfg->redis);
	}
	for (size_t u = 0; u < cfg->nupstreams; u++) {
		fprintf(out, "\n[upstream \"%s\"]\n", cfg->upstreams[u].key);
		dump_section(out, CONFIG_SECTION_UPSTREAM, &cfg->upstreams[u]);
	}
}
