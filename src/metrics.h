/* metrics: what GET /metrics reports, in the Prometheus text format 0.0.4.
 * Owns the counts nothing else keeps (batches by outcome, rejected
 * requests, bytes, latency and queue-wait histograms); the per-upstream
 * numbers stay in the upstream registry's series (bounded: see
 * UPSTREAM_MAX_SERIES) and the DNS module, read when rendered.  main owns
 * the one struct metrics; every function takes NULL. */
#ifndef FANOUTD_METRICS_H
#define FANOUTD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/buffer.h>

struct fetch_env;
struct outcome;
struct upstream_registry;

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* How a batch ended for its client. */
enum metrics_batch_outcome {
	METRICS_BATCH_OK = 0,       /* mode all, every request 2xx: 200 */
	METRICS_BATCH_FAILED,       /* mode all, an error group: 502 */
	METRICS_BATCH_SETTLED,      /* mode settled: 200 whatever happened */
	METRICS_BATCH_DRAINING,     /* cancelled by shutdown: 503 */
	METRICS_BATCH_CLIENT_GONE,  /* the client left before its whole answer */
	METRICS_BATCH_NOUTCOMES,
};

struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* "ok", "failed", "settled", "draining", "client_gone". */
const char *metrics_batch_outcome_name(enum metrics_batch_outcome o);

/* The outcome of an answered batch from its HTTP status. */
enum metrics_batch_outcome metrics_batch_outcome_of(int status, bool settled);

void metrics_count_batch(struct metrics *m, enum metrics_batch_outcome o);

/* fanoutd itself refused a request with this error code ("invalid_request",
 * "unauthorized", ...; see answer_write_error). */
void metrics_count_rejected(struct metrics *m, const char *error);

/* Bytes of client request bodies read, and of batch answers sent. */
void metrics_count_bytes_in(struct metrics *m, size_t n);
void metrics_count_bytes_out(struct metrics *m, size_t n);

/* One upstream request is over (called once per request, from the fetch's
 * record).  started: it got its slots and went out; only such requests
 * that ended by themselves (not cancelled) go into the histograms.
 * body_bytes: response body bytes received. */
void metrics_observe_request(struct metrics *m, const struct outcome *o, bool started,
                             uint64_t body_bytes);

/* The whole exposition: our counts, then every upstream of reg and what
 * env points to (DNS queries, the global queue and slots). */
void metrics_render(const struct metrics *m, struct upstream_registry *reg,
                    const struct fetch_env *env, struct evbuffer *out);

#endif
