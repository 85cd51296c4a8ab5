/* server: the local HTTP endpoint (libevhtp).  Owns the routing and the
 * replies, and through their modules the listeners (listeners.h), the
 * client connections (clients.h) and the running batches
 * (client_batch.h).  Borrows the config, the upstream registry and the
 * fetch environment from main. */
#ifndef FANOUTD_SERVER_H
#define FANOUTD_SERVER_H

#include <stdbool.h>
#include <event2/event.h>

#include "config.h"
#include "env.h"
#include "upstream.h"

struct server;

struct server *server_new(struct event_base *base, const struct config *cfg,
                          struct upstream_registry *reg, const struct fetch_env *env);

/* Bind every listener of cfg; on failure writes "cannot listen on ADDR:
 * <errno text>" into err and returns -1. */
int server_listen(struct server *s, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Socket activation: serve on these already listening sockets (from
 * systemd's LISTEN_FDS) instead of the config's listeners; the server owns
 * them from now on.  Logs "listening on ADDR (socket activation)". */
int server_listen_fds(struct server *s, const int *fds, size_t n, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Reload: bind the listeners of cfg that are not open yet and close the
 * ones cfg no longer has; the others keep their sockets.  All or nothing:
 * on a bind failure nothing changes and err says why.  Listeners that
 * came from socket activation are left alone. */
int server_relisten(struct server *s, const struct config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Use a new config for requests that arrive from now on (reload). */
void server_configure(struct server *s, const struct config *cfg);

/* Require "Authorization: Bearer <token>" on every endpoint but /healthz
 * (NULL: no auth).  The token is borrowed; main owns it (auth.h). */
void server_set_token(struct server *s, const char *token);

/* Stop accepting; new batches on open connections get 503 draining.
 * idle_cb runs once no batch is left running (maybe at once). */
void server_drain(struct server *s, void (*idle_cb)(void *), void *arg);

/* Cancel every running batch: each gets its error group now. */
void server_cancel_all(struct server *s);

void server_free(struct server *s);

/* Batch requests not finished yet (what a forced exit cuts off). */
size_t server_running(const struct server *s);

#endif
