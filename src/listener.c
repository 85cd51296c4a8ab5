/* listener: binding the local endpoint's sockets (the address read by
 * netaddr_parse_listen, as the config checked it) and keeping them
 * accepting.  When accept() fails for lack of file descriptors the
 * listening socket stays readable, and libevent would call us again at
 * once, forever: we pause accepting for a moment instead. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "listener.h"
#include "log.h"
#include "netaddr.h"
#include "xalloc.h"

#define ACCEPT_PAUSE_MS 100

struct listener {
	evhtp_t *htp;            /* owned */
	char *unix_path;         /* a socket file we created (owned), or NULL */
	char *spec;              /* as in the config (owned), NULL if adopted */
	struct event *resume;    /* re-enables accepting after a pause */
	struct listener *next;   /* in all_listeners */
};

/* libevent hands the accept-error callback evhtp's argument, not ours:
 * find ours in this short list (one entry per listen address). */
static struct listener *all_listeners;

/* "listening on ADDR" with the address the socket really has (the port
 * the kernel chose for :0); spec names it when getsockname cannot.  The
 * integration tests read the port from this line. */
static void log_bound(evhtp_t *htp, const char *spec, const char *how)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char addr[NETADDR_TEXT_MAX];
	evutil_socket_t fd = evconnlistener_get_fd(htp->server);

	memset(&ss, 0, sizeof ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		log_info("listening on %s%s", spec, how);
		return;
	}
	if (netaddr_format((struct sockaddr *)&ss, addr, sizeof addr) == 0)
		log_info("listening on %s%s", addr, how);
	else if (ss.ss_family == AF_UNIX && ((struct sockaddr_un *)&ss)->sun_path[0] != '\0')
		log_info("listening on unix:%s%s", ((struct sockaddr_un *)&ss)->sun_path, how);
	else
		log_info("listening on %s%s", spec, how);   /* abstract, unnamed or other */
}

/* A socket file left behind by a fanoutd that died is removed; a live one
 * (something accepts on it) or a file that is not a socket stays, and the
 * bind then fails with "Address already in use". */
static void remove_stale_socket(const struct sockaddr_un *sun)
{
	struct stat st;
	int fd;

	if (lstat(sun->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (const struct sockaddr *)sun, sizeof *sun) < 0 && errno == ECONNREFUSED) {
		log_info("removing the stale socket file %s", sun->sun_path);
		unlink(sun->sun_path);
	}
	close(fd);
}

/* --- out of file descriptors -------------------------------------------- */

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	if (l->htp->server != NULL)
		evconnlistener_enable(l->htp->server);
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct listener *l = all_listeners;
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
	int e = EVUTIL_SOCKET_ERROR();

	while (l != NULL && l->htp != arg)
		l = l->next;
	if (l == NULL)
		return;
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		log_warn("accept: %s", strerror(e));
		return;
	}
	/* clients wait in the backlog until descriptors are free again */
	log_warn("accept: %s; not accepting for %d ms", strerror(e), ACCEPT_PAUSE_MS);
	evconnlistener_disable(lev);
	evtimer_add(l->resume, &tv);
}

static struct listener *wrap(evhtp_t *htp)
{
	struct listener *l = xcalloc(1, sizeof *l);

	l->htp = htp;
	l->resume = evtimer_new(htp->evbase, on_resume, l);
	evconnlistener_set_error_cb(htp->server, on_accept_error);
	l->next = all_listeners;
	all_listeners = l;
	return l;
}

/* --- binding -------------------------------------------------------------- */

struct listener *listener_bind(evhtp_t *htp, const char *spec, long socket_mode,
                               char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	struct listener *l;
	socklen_t len;
	mode_t old_umask;
	int rc, saved_errno;
	char why[256];

	/* the config checked spec with the same parser: this cannot fail */
	if (netaddr_parse_listen(spec, &ss, &len, why, sizeof why) < 0) {
		snprintf(err, errlen, "cannot listen on %s: bad address", spec);
		evhtp_free(htp);
		return NULL;
	}
	if (ss.ss_family == AF_UNIX)
		remove_stale_socket((struct sockaddr_un *)&ss);
	/* a unix socket is born with socket_mode: no window with the umask's */
	old_umask = umask(0777 & ~(mode_t)socket_mode);
	errno = 0;
	rc = evhtp_bind_sockaddr(htp, (struct sockaddr *)&ss, len, 1024);
	saved_errno = errno;
	umask(old_umask);
	if (rc < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", spec,
		         saved_errno ? strerror(saved_errno) : "bind failed");
		evhtp_free(htp);
		return NULL;
	}
	l = wrap(htp);
	l->spec = xstrdup(spec);
	if (ss.ss_family == AF_UNIX) {
		if (chmod(((struct sockaddr_un *)&ss)->sun_path, (mode_t)socket_mode) < 0)
			log_warn("chmod %s: %s", spec + 5, strerror(errno));
		l->unix_path = xstrdup(((struct sockaddr_un *)&ss)->sun_path);
	}
	log_bound(htp, spec, "");
	return l;
}

struct listener *listener_adopt(evhtp_t *htp, int fd, char *err, size_t errlen)
{
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	/* backlog 0: the socket listens already, with systemd's Backlog= */
	if (evhtp_accept_socket(htp, fd, 0) < 0) {
		snprintf(err, errlen, "cannot listen on fd %d (socket activation): %s",
		         fd, strerror(errno));
		evhtp_free(htp);
		return NULL;
	}
	log_bound(htp, "a passed socket", " (socket activation)");
	return wrap(htp);
}

const char *listener_spec(const struct listener *l)
{
	return l->spec;
}

void listener_stop(struct listener *l)
{
	evtimer_del(l->resume);
	evhtp_unbind_socket(l->htp);   /* closes the socket; NULLs htp->server */
}

void listener_free(struct listener *l)
{
	struct listener **p;

	if (l == NULL)
		return;
	for (p = &all_listeners; *p != NULL; p = &(*p)->next) {
		if (*p == l) {
			*p = l->next;
			break;
		}
	}
	listener_stop(l);   /* evhtp_free alone leaves the socket open */
	event_free(l->resume);
	evhtp_free(l->htp);
	if (l->unix_path != NULL) {
		unlink(l->unix_path);
		free(l->unix_path);
	}
	free(l->spec);
	free(l);
}
