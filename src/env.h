/* env: the daemon-wide context that the server, every batch and every
 * fetch borrow — the event loop, the resolver, the deny list, the global
 * slots and queue count, the metrics and the body limits.  main owns the
 * one struct fetch_env and everything it points to. */
#ifndef FANOUTD_ENV_H
#define FANOUTD_ENV_H

#include <stddef.h>
#include <stdint.h>

struct acl;
struct dns;
struct event_base;
struct limit_sem;
struct metrics;

struct fetch_env {
	struct event_base *base;
	struct dns *dns;
	const struct acl *acl;             /* deny_networks on resolved addresses */
	struct limit_sem *global;          /* global_concurrency */
	size_t *queued;                    /* fetches waiting in any queue */
	struct metrics *metrics;           /* counts for /metrics, or NULL */
	uint64_t max_response_body;
	uint64_t max_batch_response;
};

#endif
