/* server: the local HTTP endpoint (libevhtp).  Owns the listeners, the
 * routing, and one small context per running batch that ties the client's
 * paused request to its batch.  Borrows the config, the upstream registry
 * and the fetch environment from main. */
#ifndef FANOUTD_SERVER_H
#define FANOUTD_SERVER_H

#include <stdbool.h>
#include <event2/event.h>

#include "config.h"
#include "fetch.h"
#include "upstream.h"

struct server;

struct server *server_new(struct event_base *base, const struct config *cfg,
                          struct upstream_registry *reg, const struct fetch_env *env);

/* Bind every listener of cfg; on failure writes "cannot listen on ADDR:
 * <errno text>" into err and returns -1. */
int server_listen(struct server *s, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Use a new config for requests that arrive from now on (reload). */
void server_configure(struct server *s, const struct config *cfg);

/* Stop accepting; new batches on open connections get 503 draining.
 * idle_cb runs once no batch is left running (maybe at once). */
void server_drain(struct server *s, void (*idle_cb)(void *), void *arg);

/* Cancel every running batch: each gets its error group now. */
void server_cancel_all(struct server *s);

void server_free(struct server *s);

#endif
