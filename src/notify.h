/* notify: what fanoutd tells systemd and takes from it — the sd_notify
 * states (READY, RELOADING, STOPPING) and the listeners of socket
 * activation (LISTEN_FDS).  Without libsystemd every call is a no-op. */
#ifndef FANOUTD_NOTIFY_H
#define FANOUTD_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

/* "READY=1": every listener is up, or a reload is over. */
void notify_ready(void);

/* "RELOADING=1": a SIGHUP reload starts; notify_ready() ends it. */
void notify_reloading(void);

/* "STOPPING=1": shutdown has started. */
void notify_stopping(void);

/* The listening sockets systemd passed (LISTEN_FDS), at most max of them,
 * into fds; returns how many (0: not socket-activated).  The environment
 * variables are unset so children do not inherit them. */
size_t notify_listen_fds(int *fds, size_t max);

/* True when built with libsystemd. */
bool notify_available(void);

#endif
