/* config: the daemon's settings.  Owns struct config and everything hung
 * off it (listener strings, upstream sections, lists); parses the INI file
 * with inih against one table of keys, and writes it back (config_dump).
 * The value syntax ("5s", "250ms", "8M", "20/s", addresses) is units.h. */
#ifndef FANOUTD_CONFIG_H
#define FANOUTD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "retry.h"

#define CONFIG_MAX_LISTEN 16

/* The rates an upstream section may set: at most 1000000/s, at least
 * 0.000001/h (much less would dump as 0/s). */
#define CONFIG_MAX_RATE_PER_S 1000000.0
#define CONFIG_MIN_RATE_PER_S (0.000001 / 3600)

/* hedge_after = p95 (SPEC 15): the upstream's rolling p95, not a fixed delay. */
#define CONFIG_HEDGE_P95 LONG_MAX

/* Key http2 (SPEC section 9): which protocol is spoken to an upstream. */
enum config_http2 {
	CONFIG_HTTP2_AUTO = 0,     /* "auto": https offers h2 and http/1.1 by ALPN
	                            * and speaks what the server picks; http: HTTP/1.1 */
	CONFIG_HTTP2_NO,           /* "no": HTTP/1.1 only */
	CONFIG_HTTP2_PRIOR,        /* "prior-knowledge": h2 without negotiation */
};

/* Key retry_on (SPEC section 10): the failures that are retried.  Always
 * set in [fanoutd]; unset in an upstream section that leaves it out. */
struct config_retry_on {
	bool set;
	struct retry_on on;
};

/* One [upstream "scheme://host[:port]"] section.  Fields left at -1 (or
 * rate_per_s 0, retry_on not set) fall back to the [fanoutd] values. */
struct config_upstream {
	char *key;                 /* normalised "scheme://host:port", owned */
	long concurrency;          /* -1 = use upstream_concurrency */
	long max_connections;      /* -1 = use [fanoutd] max_connections */
	int http2;                 /* enum config_http2; -1 = use [fanoutd] http2 */
	long h2_max_streams;       /* -1 = use [fanoutd] h2_max_streams */
	double rate_per_s;         /* 0 = no rate limit */
	long burst;                /* -1 = ceil(rate_per_s), at least 1 */
	long request_timeout_ms;   /* -1 = global */
	long connect_timeout_ms;   /* -1 = global */
	/* retries, Retry-After, the breaker: -1 (retry_on: !set) = [fanoutd]'s */
	long retries;
	struct config_retry_on retry_on;
	long retry_backoff_ms;
	long retry_max_backoff_ms;
	double retry_budget;       /* a fraction, 0.2 for "20%"; -1 = global */
	long max_retries;
	long max_retry_after_ms;
	int honor_retry_after;     /* -1 = global, 0 or 1 */
	long breaker_failures;     /* 0 = off for this upstream */
	long breaker_cooldown_ms;
	int tls_verify;            /* -1 = global, 0 or 1 */
	char *ca_file;             /* NULL = global, owned */
	int collapse;              /* 1: identical GET/HEAD in flight are joined
	                            * (SPEC 15); -1 (unset) or 0: never */
	long hedge_after_ms;       /* a second attempt after this long without
	                            * an answer; CONFIG_HEDGE_P95: the rolling
	                            * p95; 0 or -1 (unset): never */
	int shared;                /* 1: concurrency and rate held in Redis
	                            * ([redis], SPEC section 13); -1 (unset) or
	                            * 0: local only.  See config_upstream_shared */
};

/* The [redis] section (SPEC section 13): where the limits of upstreams
 * with shared = yes are held for a whole fleet. */
struct config_redis {
	char *url;                 /* redis://[[user]:password@]host[:port][/db]
	                            * or unix:/path; NULL = no Redis, owned */
	char *key_prefix;          /* of every Redis key, "fanoutd:"; owned */
	long timeout_ms;           /* connect and reply; slower = Redis down */
	long lease_ms;             /* a concurrency slot's lease, renewed at
	                            * half-life */
};

struct config {
	char *listen[CONFIG_MAX_LISTEN];   /* owned strings */
	size_t nlisten;
	long max_batch_size;
	uint64_t max_request_body;         /* bytes */
	uint64_t max_response_body;        /* bytes */
	uint64_t max_batch_response;       /* bytes, all bodies of one batch */
	long max_stream_batch_size;        /* max_batch_size of streamed batches */
	uint64_t stream_buffer;            /* bytes of unsent NDJSON output that
	                                    * hold a streamed batch's starts */
	long request_timeout_ms;
	long connect_timeout_ms;
	long batch_timeout_ms;
	long shutdown_timeout_ms;
	long client_timeout_ms;
	long upstream_concurrency;
	long global_concurrency;
	long max_queued;
	long max_connections;              /* per upstream; 0 = as many as needed */
	int http2;                         /* enum config_http2 */
	long h2_max_streams;               /* streams per HTTP/2 connection */
	long keepalive_timeout_ms;
	/* SPEC section 10, the defaults of every upstream */
	long retries;                      /* extra attempts; 0 = no retry */
	struct config_retry_on retry_on;   /* which failures are retried */
	long retry_backoff_ms;             /* first back-off, doubles each retry */
	long retry_max_backoff_ms;         /* the back-off's ceiling */
	double retry_budget;               /* a fraction, 0.2 for "20%": retries
	                                    * <= this share of requests in flight */
	long max_retries;                  /* ceiling of a batch's "retry": attempts
	                                    * <= 1 + max_retries */
	long max_retry_after_ms;           /* Retry-After is cut to this */
	bool honor_retry_after;            /* 429/503 + Retry-After pauses the queue */
	long breaker_failures;             /* consecutive failures that open it; 0 = off */
	long breaker_cooldown_ms;          /* how long it stays open */
	bool tls_verify;
	char *ca_file;                     /* NULL = system store, owned */
	char *resolv_conf;                 /* nameservers, owned */
	char *auth_token_file;             /* NULL = no auth, owned */
	char **allow_hosts;                /* NULL-terminated globs, owned */
	char **deny_networks;              /* NULL-terminated CIDRs, owned */
	bool access_log;
	long socket_mode;                  /* unix listener mode, e.g. 0660 */

	struct config_redis redis;         /* [redis] */

	struct config_upstream *upstreams; /* owned array */
	size_t nupstreams;
};

/* Fill *cfg with the embedded defaults.  Never fails. */
void config_defaults(struct config *cfg);

/* Free everything *cfg owns and zero it. */
void config_free(struct config *cfg);

/* Read FILE on top of the defaults into *cfg (which must be freshly
 * initialised with config_defaults).  On failure returns -1 and writes
 * "FILE:LINE: message" into err; *cfg is then freed. */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Replace the listeners with the given list (from -l). */
int config_set_listeners(struct config *cfg, char *const *listen, size_t n,
                         char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The section for an upstream key ("http://127.0.0.1:8080"), or NULL. */
const struct config_upstream *config_find_upstream(const struct config *cfg,
                                                   const char *key);

/* Does U hold its limits in Redis (shared = yes)?  config_load refuses
 * shared = yes without a [redis] url. */
bool config_upstream_shared(const struct config_upstream *u);

/* Print the effective configuration as an INI file that loads back to
 * the same configuration (fanoutd -t -v). */
void config_dump(const struct config *cfg, FILE *out);

#endif
