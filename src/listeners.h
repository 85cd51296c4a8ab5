/* listeners: the sockets the local endpoint listens on, as a set: bound
 * from the config or adopted from systemd, changed by a reload, stopped
 * for shutdown.  A listener a reload drops stops accepting at once but is
 * freed only once no client connection it accepted is left: those point
 * at its evhtp instance. */
#ifndef FANOUTD_LISTENERS_H
#define FANOUTD_LISTENERS_H

#include <stddef.h>
#include <evhtp/evhtp.h>

#include "clients.h"
#include "config.h"

struct listeners;

/* make(arg) gives each new listener its evhtp instance. */
struct listeners *listeners_new(evhtp_t *(*make)(void *), void *arg);

/* Bind every listen address of cfg; on failure "cannot listen on ADDR:
 * why" in err and -1. */
int listeners_bind(struct listeners *ls, const struct config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Socket activation: serve on these listening sockets (owned from now). */
int listeners_adopt(struct listeners *ls, const int *fds, size_t n, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Reload: bind what cfg adds, stop what it drops, keep the rest; all or
 * nothing (on a bind failure nothing changes).  Sockets from systemd are
 * left alone.  Dropped listeners no connection of cl uses any more are
 * freed. */
int listeners_reload(struct listeners *ls, const struct config *cfg,
                     const struct clients *cl, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Stop accepting (shutdown); open connections stay. */
void listeners_stop(struct listeners *ls);

void listeners_free(struct listeners *ls);

#endif
