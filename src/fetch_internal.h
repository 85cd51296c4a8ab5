/* fetch_internal: what fetch.c (the life of a fetch: slots, timers, DNS,
 * connect) and fetch_http.c (the HTTP exchange over evhttp) share.
 * Included by nothing else. */
#ifndef FANOUTD_FETCH_INTERNAL_H
#define FANOUTD_FETCH_INTERNAL_H

#include <stdbool.h>

#include "fetch.h"

/* printf into a new string (aborts on out of memory). */
char *fetch_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

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
