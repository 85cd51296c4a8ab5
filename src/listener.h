/* listener: one socket the local endpoint accepts on.  Owns the evhtp
 * instance serving it, the unix socket file it created (removed at exit)
 * and the timer that pauses accepting when the process is out of file
 * descriptors, instead of spinning on a listening socket it cannot empty. */
#ifndef FANOUTD_LISTENER_H
#define FANOUTD_LISTENER_H

#include <stddef.h>
#include <evhtp/evhtp.h>

struct listener;

/* Bind htp to spec ("127.0.0.1:8642", "[::1]:8642", "*:8642",
 * "localhost:8642", "unix:/path").  A stale unix socket file is replaced;
 * the new one gets socket_mode.  Takes htp (freed on failure, with
 * "cannot listen on SPEC: why" in err). */
struct listener *listener_bind(evhtp_t *htp, const char *spec, long socket_mode,
                               char *err, size_t errlen);

/* Serve htp on an already listening socket (systemd socket activation). */
struct listener *listener_adopt(evhtp_t *htp, int fd, char *err, size_t errlen);

/* The spec it was bound to ("127.0.0.1:8642"), or NULL when adopted. */
const char *listener_spec(const struct listener *l);

/* Stop accepting (shutdown); open connections stay. */
void listener_stop(struct listener *l);

/* Free the evhtp instance and remove the socket file it created. */
void listener_free(struct listener *l);

#endif
