/* fetch: one upstream request of a batch, from the wait for a slot to the
 * recorded outcome.  A fetch lives inside its batch's array and borrows
 * the request item and the outcome slot from the batch; it owns only its
 * timers, its DNS request and, while busy, one exchange on a pooled
 * connection (all of an HTTP/1.1 one, one stream of an HTTP/2 one). */
#ifndef FANOUTD_FETCH_H
#define FANOUTD_FETCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <event2/event.h>

#include "clock.h"
#include "dns.h"
#include "env.h"
#include "limit.h"
#include "outcome.h"
#include "pool.h"
#include "request.h"
#include "upstream.h"

enum fetch_state {
	FETCH_IDLE = 0,    /* not started */
	FETCH_QUEUED,      /* waiting for a slot (and a token) */
	FETCH_RESOLVING,   /* slot held; resolving the host name */
	FETCH_WAITCONN,    /* slot held; no connection to be had now
	                      (max_connections, or out of file descriptors):
	                      waits for one (phase "queued") */
	FETCH_CONNECTING,  /* slot held; TCP connect, then the TLS handshake */
	FETCH_EXCHANGING,  /* the request is out on an open connection; the
	                      answer is coming */
	FETCH_BACKOFF,     /* an attempt failed and another will be made: no
	                      slot held, waiting out the back-off or the
	                      upstream's Retry-After */
	FETCH_JOINED,      /* waits for another fetch's result: the identical
	                      request in flight it joined (collapse.c), or,
	                      its own attempt failed, its hedge (hedge.c) */
	FETCH_DONE,        /* outcome recorded; slot and connection handed back */
};

/* What a queued fetch waits for next, in this order; each may queue, FIFO. */
enum fetch_stage {
	FETCH_STAGE_BATCH_CAP = 0,   /* a slot of the batch's max_concurrency (if any) */
	FETCH_STAGE_UPSTREAM,        /* a slot of the upstream's shared semaphore */
	FETCH_STAGE_FLEET,           /* shared = yes: a lease (and a rate token)
	                                from the fleet's Redis */
	FETCH_STAGE_GLOBAL,          /* a slot of global_concurrency */
	FETCH_STAGE_PAUSE,           /* the upstream's Retry-After pause to pass */
	FETCH_STAGE_TOKEN,           /* a token of the upstream's rate limit (if any) */
	FETCH_STAGE_STARTED,         /* all held: the request is under way */
};

struct decoder;
struct fetch;
struct flight;
struct hedge;
struct metrics;
typedef void (*fetch_done_fn)(struct fetch *f, void *arg);

struct fetch {
	enum fetch_state state;            /* changed by fetch_set_state() only */
	unsigned long batch_id;            /* the batch's number, for the log: "b17" */
	size_t index;                      /* position in the batch, for the log */
	const struct request_item *item;   /* borrowed from the batch */
	struct outcome *out;               /* borrowed slot in the batch */
	struct upstream *up;
	const struct fetch_env *env;
	fetch_done_fn done;                /* natural end only, not abort */
	void *done_arg;

	struct limit_sem *batch_sem;       /* the batch's own cap, or NULL */
	const bool *halt;                  /* the batch is stopping: start nothing */
	struct limit_waiter waiter;        /* in the queue of stage, while queued */
	struct shared_waiter fleet_waiter; /* in the fleet limit's queue */
	struct shared_limit *fleet;        /* the limit it waits on or holds */
	struct shared_lease *lease;        /* held from the fleet, or NULL */
	bool fleet_local;                  /* Redis down: local limits only */
	enum fetch_stage stage;            /* the next thing to wait for */
	struct pool_exchange x;            /* the exchange, on x.conn while busy */
	struct dns_request *dns_req;
	struct dns_answer *addrs;          /* while connecting (owned) */
	size_t addr_i;                     /* the address being tried */
	struct event *timer;               /* connect, then request deadline */
	struct pool_waiter conn_waiter;    /* in the pool's queue while FETCH_WAITCONN */

	long timeout_ms;
	long connect_timeout_ms;
	double t_start;                    /* queued */
	double t_slot;                     /* got its slot: the deadline counts from here */
	double t_granted;                  /* started (slot and token) */
	double t_attempt;                  /* this connect attempt began */
	double t_waitconn;                 /* began waiting for a connection */
	uint64_t body_len;
	uint64_t *batch_bytes;             /* the batch's running total of bodies */
	bool retried;                      /* the stale keep-alive retry is spent */
	const struct retry_policy *batch_retry;   /* the batch's "retry", or NULL (borrowed) */
	double deadline_ms;                /* the batch's deadline (monotonic), 0: none */
	struct retry_policy policy;        /* resolved when it starts */
	double t_first;                    /* the first attempt was queued */
	double t_backoff;                  /* began waiting for the next attempt */
	bool budget_held;                  /* a retry: counts in up->retries_active */
	bool probe;                        /* the breaker's half-open probe */
	int retry_reason;                  /* why the next attempt (enum
	                                      upstream_retry_reason), counted
	                                      once it starts */
	unsigned unprocessed_retries;      /* HTTP/2: sent again after the
	                                      upstream said it never processed it */
	struct decoder *decoder;           /* undoes the body's Content-Encoding (owned) */
	uint64_t coded_len;                /* body bytes as sent, when decoding */
	const char *over_cap;              /* the cap keep_body() stopped at */
	char *status_message;              /* "upstream answered 404 Not Found",
	                                      from a non-2xx head to the end (owned) */
	/* collapsing and hedging (SPEC 15) */
	bool inner;                        /* runs for others (a collapsed request,
	                                      a hedge): no client's request, not
	                                      counted as one; its slots go back
	                                      before done, which may free it */
	bool twin;                         /* a hedge: one attempt, never hedged */
	bool collapsing;                   /* joins an identical request in flight
	                                      (decided when it starts) */
	struct flight *flight;             /* the request in flight it joined */
	TAILQ_ENTRY(fetch) flight_link;    /* in that flight's waiters */
	struct hedge *hedge;               /* this attempt's hedge (owned), or NULL */
};

/* batch_sem, when given, is the batch's max_concurrency for this
 * upstream: the fetch takes a slot of it first, then a slot of the
 * upstream's shared semaphore, so the shared FIFO order still holds. */
void fetch_init(struct fetch *f, size_t index, const struct request_item *item,
                struct outcome *out, struct upstream *up, struct limit_sem *batch_sem,
                const struct fetch_env *env, fetch_done_fn done, void *done_arg);

/* Queue for a slot; the request goes out when the slot is granted. */
void fetch_start(struct fetch *f);

/* Stop a fetch that is not done: remove it from its queue or abort its
 * exchange (the connection is closed, not reused) and record type (with
 * the current phase for a timeout).  The done callback is not called. */
void fetch_abort(struct fetch *f, enum outcome_type type, const char *message);

/* f, joined to a collapsed request (collapse.c), ends with its result,
 * src's body shared, not copied; src->shared says whether others got it
 * too.  f's batch's body cap holds. */
void fetch_adopt(struct fetch *f, struct outcome *src);

/* f's hedge (hedge.c) ended first with src (won: an answer; else a
 * failure while f's own attempt had failed already): f's attempt under
 * way, if any, is cancelled and src's result moves into f's outcome, then
 * counts as f's attempt would — retried by f's policy, or the end. */
void fetch_take_hedge(struct fetch *f, struct outcome *src, bool won);

/* "queued", "dns", "connect", "tls", "response": where f is now. */
const char *fetch_phase(const struct fetch *f);

/* Free the timers; the fetch must be done or idle. */
void fetch_cleanup(struct fetch *f);

#endif
