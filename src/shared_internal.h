/* shared_internal: what shared.c (the connection, the scripts, the calls)
 * and shared_limit.c (each upstream's queue and leases) share.  Not for
 * other modules: they see shared.h. */
#ifndef FANOUTD_SHARED_INTERNAL_H
#define FANOUTD_SHARED_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <event2/dns.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "shared.h"

enum shared_script {
	SCRIPT_ACQUIRE = 0,
	SCRIPT_RENEW,
	NSCRIPTS,
};

enum shared_state {
	SHARED_STARTING = 0,   /* first connection under way: waiters wait
	                          (at most timeout_ms) */
	SHARED_UP,             /* answering: acquisitions go to Redis */
	SHARED_DOWN,           /* unreachable, slow or erroring: waiters are
	                          granted local; a new attempt every second */
};


enum call_kind {
	CALL_SETUP = 0,        /* AUTH, SELECT, PING at connect */
	CALL_LOAD,             /* SCRIPT LOAD */
	CALL_ACQUIRE,          /* EVALSHA acquire */
	CALL_RENEW,            /* EVALSHA renew */
	CALL_RELEASE,          /* ZREM */
};

/* One command sent, until its reply (or its connection's end) comes. */
struct shared_call {
	TAILQ_ENTRY(shared_call) link;   /* r->pending, in send order */
	struct shared_redis *r;
	redisAsyncContext *ac;           /* sent on */
	enum call_kind kind;
	int script;                      /* LOAD, ACQUIRE, RENEW */
	bool last_setup;                 /* its reply completes the connect */
	bool retried;                    /* sent again after NOSCRIPT */
	double sent_ms;
	int argc;
	char **argv;
	size_t *argvlen;
	/* ACQUIRE */
	struct shared_limit *l;          /* NULL once the limit is freed */
	size_t want;
	uint64_t base;                   /* member counter of the first lease */
	bool with_leases;                /* asked with a concurrency limit */
};

struct shared_redis {
	struct event_base *base;
	/* where */
	bool unix_socket;
	char *host;                      /* or the socket's path */
	int port;
	int db;
	char *user, *pass;               /* NULL when none */
	char *display;                   /* for log lines: no password */
	/* settings */
	char *prefix;
	double timeout_ms;
	double lease_ms;
	char id[17];
	/* state */
	enum shared_state state;
	redisAsyncContext *ac;           /* NULL between attempts */
	struct event *retry_ev;          /* the next attempt (down) */
	struct event *timeout_ev;        /* the oldest pending reply's deadline */
	struct evdns_base *dns;          /* resolves a host name (owned; made at
	                                    the first name to resolve) */
	struct evdns_getaddrinfo_request *dns_req;   /* under way, or NULL */
	TAILQ_HEAD(, shared_call) pending;
	TAILQ_HEAD(, shared_limit) limits;
	char sha[NSCRIPTS][41];
	uint64_t next_seq;               /* lease member counter */
	bool freeing;
	struct shared_redis_stats stats;
};

/* --- calls (shared.c) --- */

/* A command of argc arguments, filled with shared_call_arg/argf. */
struct shared_call *shared_call_new(struct shared_redis *r, enum call_kind kind, int argc)
	__attribute__((returns_nonnull));
void shared_call_arg(struct shared_call *c, int i, const char *s);
void shared_call_argf(struct shared_call *c, int i, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Send c on the current connection; false when it cannot be (c is freed,
 * an acquire counted lost). */
bool shared_call_send(struct shared_redis *r, struct shared_call *c);

/* The same with argv[1] set to c->script's SHA1 (for EVALSHA). */
bool shared_call_send_eval(struct shared_redis *r, struct shared_call *c);

/* --- limits (shared_limit.c) --- */

/* A lease's member in the zset: "id:seq". */
void shared_member(const struct shared_redis *r, uint64_t seq, char *buf, size_t len);

/* Every limit of r pumps on the next loop turn (Redis went up or down). */
void shared_limits_kick(struct shared_redis *r);

/* An acquire's connection is gone, or its reply came. */
void shared_limit_call_lost(struct shared_call *c);
void shared_limit_acquire_reply(struct shared_call *c, const redisReply *reply);

#endif
