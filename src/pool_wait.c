/* pool_wait: who gets a pool's next connection (see pool.h).  Owns the
 * FIFO of fetches waiting for a connection and the rules that make them
 * wait — max_connections open, a connection that may speak HTTP/2 being
 * opened (it will carry them), no file descriptor — and the timer that
 * serves them, first come first served, never from inside the callbacks
 * of the connection that made room. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "pool.h"
#include "pool_internal.h"
#include "xalloc.h"

/* While fetches wait for a descriptor, look for one this often: most are
 * freed by this pool's own connections (the reaper looks at once then),
 * but client connections, other pools and other processes (ENFILE) free
 * them too, and nothing tells us. */
#define FD_RETRY_MS 20.0

static void on_wait_timer(evutil_socket_t fd, short what, void *arg);

void pool_wait_setup(struct pool *p)
{
	p->wait_timer = xcheck(evtimer_new(p->base, on_wait_timer, p));
	TAILQ_INIT(&p->waiters);
}

void pool_wait_teardown(struct pool *p)
{
	event_free(p->wait_timer);
}

/* --- may a connection be opened now? ------------------------------------ */

/* May a connection being opened speak HTTP/2?  Then fetches wait for it
 * rather than each opening its own. */
static bool may_speak_h2(const struct pool *p)
{
	switch (p->settings.http2) {
	case POOL_HTTP2_PRIOR:
		return true;
	case POOL_HTTP2_AUTO:
		return p->settings.ssl_ctx != NULL && p->seen != POOL_PROTO_H1;
	default:
		return false;
	}
}

bool pool_opening_h2(const struct pool *p)
{
	return p->nopening > 0 && may_speak_h2(p);
}

bool pool_at_cap(const struct pool *p)
{
	return p->settings.max_connections > 0 &&
	       p->nconns >= (unsigned long)p->settings.max_connections;
}

bool pool_has_waiters(const struct pool *p)
{
	return !TAILQ_EMPTY(&p->waiters);
}

bool pool_must_wait(const struct pool *p)
{
	/* the waiter being granted is the one ahead of everybody */
	if (!p->granting && (pool_has_waiters(p) || pool_opening_h2(p)))
		return true;
	return pool_at_cap(p);
}

/* Could a socket be made now?  Asked of the kernel itself, and only while
 * fetches wait for one: the loop is single-threaded, so the descriptor
 * found free is still free when the waiter makes its socket a moment
 * later.  Only running out says no. */
static bool fd_available(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return errno != EMFILE && errno != ENFILE;
	close(fd);
	return true;
}

/* --- the queue ------------------------------------------------------------ */

static void arm_wait_timer(struct pool *p, double ms)
{
	struct timeval tv = clock_timeval(ms);

	evtimer_add(p->wait_timer, &tv);
}

void pool_serve_waiters(struct pool *p)
{
	if (pool_has_waiters(p))
		arm_wait_timer(p, 0);
}

static void grant(struct pool *p, struct pool_waiter *w, struct pool_conn *c)
{
	TAILQ_REMOVE(&p->waiters, w, link);
	p->nwaiting--;
	w->waiting = false;
	p->granting = true;
	w->ready(w, c, w->arg);
	p->granting = false;
}

/* Serve the waiters, first come first served: with a connection of this
 * pool that can carry one more (idle, or an HTTP/2 stream free), else with
 * leave to open one (under the cap, no HTTP/2 connection opening, and a
 * descriptor free).  Out of descriptors, make room and look again soon;
 * at the cap, a connection that goes idle, frees a stream or closes
 * brings us back, as does an opening one that is open. */
static void on_wait_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	struct pool_waiter *w;
	struct pool_conn *c;
	bool no_fd = false;

	(void)fd;
	(void)what;
	while ((w = TAILQ_FIRST(&p->waiters)) != NULL) {
		c = pool_take_available(p);
		if (c == NULL && (pool_at_cap(p) || pool_opening_h2(p)))
			break;
		if (c == NULL && !fd_available()) {
			no_fd = true;
			break;
		}
		grant(p, w, c);
	}
	if (!no_fd)
		return;
	pool_evict_idle(p, p->nwaiting);
	arm_wait_timer(p, FD_RETRY_MS);
}

void pool_waiter_init(struct pool_waiter *w, pool_ready_fn ready, void *arg)
{
	memset(w, 0, sizeof *w);
	w->ready = ready;
	w->arg = arg;
}

void pool_wait(struct pool *p, struct pool_waiter *w)
{
	if (w->waiting)
		return;
	if (TAILQ_EMPTY(&p->waiters)) {
		if (!pool_at_cap(p) && !pool_opening_h2(p) &&
		    clock_now_ms() - p->warned_ms > 10000.0) {
			log_warn("out of file descriptors: new upstream connections wait for "
			         "one to be freed (raise ulimit -n or LimitNOFILE)");
			p->warned_ms = clock_now_ms();
		}
		arm_wait_timer(p, 0);   /* an idle connection may serve at once */
	}
	TAILQ_INSERT_TAIL(&p->waiters, w, link);
	p->nwaiting++;
	w->waiting = true;
}

void pool_cancel_wait(struct pool *p, struct pool_waiter *w)
{
	if (!w->waiting)
		return;
	TAILQ_REMOVE(&p->waiters, w, link);
	p->nwaiting--;
	w->waiting = false;
	if (TAILQ_EMPTY(&p->waiters))
		evtimer_del(p->wait_timer);
}
