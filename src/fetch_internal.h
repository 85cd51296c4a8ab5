/* fetch_internal: what fetch.c (the life of a fetch: slots, timers, DNS,
 * connect) and fetch_http.c (the HTTP exchange over evhttp) share.
 * Included by nothing else. */
#ifndef FANOUTD_FETCH_INTERNAL_H
#define FANOUTD_FETCH_INTERNAL_H

#include <stdbool.h>

#include "fetch.h"
#include "log.h"

/* Every change of f->state: asserts that the transition is one of the
 * diagram's (fetch.c) and traces it at debug level. */
void fetch_set_state(struct fetch *f, enum fetch_state to);

/* "b17[3]": the batch and the item a line is about. */
void fetch_describe(const void *f, char *buf, size_t len);

/* A debug line about fetch f: "b17[3]: ...".  (fetch_obj() makes the
 * compiler check that f is a fetch.) */
static inline const void *fetch_obj(const struct fetch *f) { return f; }
#define fetch_debug(f, ...) \
	log_about(LOG_LEVEL_DEBUG, fetch_describe, fetch_obj(f), __VA_ARGS__)

/* The natural end of a fetch (message is owned by the outcome now). */
void fetch_finish(struct fetch *f, enum outcome_type type, char *message,
                  const char *phase, bool reusable);

/* Abort what is under way, then fetch_finish() with this failure. */
void fetch_fail(struct fetch *f, enum outcome_type type, char *message);

/* The connection is up (seen at the first answer byte at the latest). */
void fetch_mark_connected(struct fetch *f);

/* The connect to the current address failed: try the next address of
 * the name, if there is one.  True when a new attempt is under way. */
bool fetch_next_address(struct fetch *f);

/* No file descriptor to connect with: wait for one (FETCH_NOFD), then
 * connect to the current address again. */
void fetch_wait_fd(struct fetch *f);

/* A reused connection turned out dead: do it again on a new one. */
void fetch_reopen(struct fetch *f);

/* "cannot connect to UPSTREAM: why", why from f->sock_errno. */
char *fetch_connect_message(struct fetch *f);

/* Build the request and hand it to evhttp on f->conn (fetch_http.c). */
void fetch_send(struct fetch *f);

#endif
