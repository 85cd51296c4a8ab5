/* clients: open connections, their gates and their deadlines.  Each
 * connection's fini hook carries its entry, which is how a request finds
 * its connection's entry again (evhtp has no other user pointer on a
 * connection).
 *
 *   socket bufferevent (ours) -> gate filter (evhtp's bev) -> evhtp
 *
 * When evhtp frees a connection it frees the filter only; the socket
 * then goes to linger.c for a lingering close. */
#include <errno.h>
#include <stdlib.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "clients.h"
#include "clock.h"
#include "linger.h"
#include "log.h"
#include "xalloc.h"

/* The socket reads ahead at most this much while the gate holds a request
 * back, and takes at most this much of an answer at once, so the answer
 * streaming in server.c is paced by the client. */
#define SOCKET_READ_AHEAD (64 * 1024)
#define SOCKET_WRITE_WINDOW (64 * 1024)

struct client {
	TAILQ_ENTRY(client) link;
	struct clients *list;
	evhtp_connection_t *conn;
	struct bufferevent *sock;        /* the socket: evhtp reads the gate */
	struct gate *gate;               /* owned by the filter evhtp frees */
	struct event *deadline;          /* a whole request by then, or closed */
	long timeout_ms;
};

/* evhtp's own event callback for its connections (one function for all;
 * its argument is the evhtp connection, as for its read and write ones). */
static bufferevent_event_cb evhtp_event;

struct clients {
	struct event_base *base;
	const struct gate_limits *lim;   /* borrowed */
	struct lingers *lingers;         /* sockets closing (owned) */
	TAILQ_HEAD(, client) all;
};

struct clients *clients_new(struct event_base *base, const struct gate_limits *lim)
{
	struct clients *cl = xcalloc(1, sizeof *cl);

	cl->base = base;
	cl->lim = lim;
	cl->lingers = lingers_new(base);
	TAILQ_INIT(&cl->all);
	return cl;
}

static void forget(struct client *c)
{
	TAILQ_REMOVE(&c->list->all, c, link);
	event_free(c->deadline);
	free(c);
}

/* evhtp lets go of the connection: what it wrote goes to the socket, and
 * the socket lingers. */
static evhtp_res on_fini(evhtp_connection_t *conn, void *arg)
{
	struct client *c = arg;
	struct bufferevent *filter = evhtp_connection_get_bev(conn);

	gate_close(c->gate);
	if (filter != NULL)
		bufferevent_flush(filter, EV_WRITE, BEV_FLUSH);
	linger_start(c->list->lingers, c->sock);
	/* the request's fini hook runs after this one: it finds no entry */
	evhtp_connection_unset_hook(conn, evhtp_hook_on_connection_fini);
	evhtp_connection_unset_hook(conn, evhtp_hook_on_request_fini);
	forget(c);
	return EVHTP_RES_OK;
}

static evhtp_res on_request_fini(evhtp_request_t *req, void *arg)
{
	(void)arg;
	clients_request_done(req);
	return EVHTP_RES_OK;
}

static void arm(struct client *c)
{
	struct timeval tv;

	tv = clock_timeval((double)c->timeout_ms);
	evtimer_add(c->deadline, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	(void)fd;
	(void)what;
	log_debug("client too slow: no whole request within client_timeout; closing");
	evhtp_connection_free(c->conn);   /* on_fini() forgets c */
}

/* evhtp reads the gate's filter from now on, with the socket's timeouts. */
/* evhtp ignores an EOF or error while reading when errno is EAGAIN (for
 * the spurious empty reads of old libevents), but errno here is whatever
 * the last system call of the loop left, an upstream socket's EAGAIN as
 * often as not: the client's close would go unseen until client_timeout.
 * The event itself is the news; errno says nothing about it. */
static void on_gate_event(struct bufferevent *bev, short what, void *arg)
{
	errno = 0;
	evhtp_event(bev, what, arg);
}

static void put_gate(struct client *c, struct clients *cl)
{
	bufferevent_data_cb readcb, writecb;
	bufferevent_event_cb eventcb;
	struct bufferevent *filter;
	struct timeval tv = clock_timeval((double)c->timeout_ms);
	void *cbarg;

	c->sock = evhtp_connection_get_bev(c->conn);
	bufferevent_getcb(c->sock, &readcb, &writecb, &eventcb, &cbarg);
	c->gate = gate_new(cl->lim);
	filter = gate_wrap(c->gate, c->sock);
	bufferevent_set_timeouts(c->sock, NULL, NULL);
	bufferevent_setwatermark(c->sock, EV_READ, 0, SOCKET_READ_AHEAD);
	bufferevent_setwatermark(c->sock, EV_WRITE, SOCKET_WRITE_WINDOW / 2, SOCKET_WRITE_WINDOW);
	evhtp_event = eventcb;
	bufferevent_setcb(filter, readcb, writecb, on_gate_event, cbarg);
	bufferevent_set_timeouts(filter, &tv, &tv);
	evhtp_connection_set_bev(c->conn, filter);
	bufferevent_enable(filter, EV_READ | EV_WRITE);
}

void clients_accepted(struct clients *cl, evhtp_connection_t *conn, long timeout_ms)
{
	struct client *c = xcalloc(1, sizeof *c);

	c->list = cl;
	c->conn = conn;
	c->timeout_ms = timeout_ms;
	c->deadline = xcheck(evtimer_new(cl->base, on_deadline, c));
	TAILQ_INSERT_TAIL(&cl->all, c, link);
	put_gate(c, cl);
	evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini, (evhtp_hook)on_fini, c);
	evhtp_connection_set_hook(conn, evhtp_hook_on_request_fini,
	                          (evhtp_hook)on_request_fini, c);
	arm(c);
}

static struct client *client_of(evhtp_request_t *req)
{
	return req->conn->hooks ? req->conn->hooks->on_connection_fini_arg : NULL;
}

void clients_request_in(evhtp_request_t *req)
{
	struct client *c = client_of(req);

	if (c != NULL)
		evtimer_del(c->deadline);
}

void clients_resume(evhtp_request_t *req)
{
	struct bufferevent *bev = evhtp_request_get_bev(req);

	evhtp_request_resume(req);
	bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
}

void clients_request_done(evhtp_request_t *req)
{
	struct client *c = client_of(req);

	if (c == NULL)
		return;
	arm(c);
	gate_next(c->gate);
}

bool clients_closing(evhtp_request_t *req)
{
	struct client *c = client_of(req);

	return c != NULL && gate_closed(c->gate);
}

bool clients_served_by(const struct clients *cl, const evhtp_t *htp)
{
	const struct client *c;

	TAILQ_FOREACH(c, &cl->all, link)
		if (c->conn->htp == htp)
			return true;
	return false;
}

struct gate_verdict clients_verdict(evhtp_request_t *req)
{
	struct client *c = client_of(req);
	struct gate_verdict none = { 0, "" };

	return c != NULL ? gate_verdict(c->gate) : none;
}

void clients_close_all(struct clients *cl, void (*done)(void *), void *arg)
{
	struct client *c;

	while ((c = TAILQ_FIRST(&cl->all)) != NULL)
		evhtp_connection_free(c->conn);   /* on_fini() lingers and forgets c */
	lingers_hurry(cl->lingers, done, arg);
}

void clients_free(struct clients *cl)
{
	struct client *c;

	while ((c = TAILQ_FIRST(&cl->all)) != NULL) {
		evhtp_connection_unset_hook(c->conn, evhtp_hook_on_connection_fini);
		evhtp_connection_unset_hook(c->conn, evhtp_hook_on_request_fini);
		gate_close(c->gate);
		evhtp_connection_free(c->conn);   /* and the gate's filter */
		bufferevent_free(c->sock);
		forget(c);
	}
	lingers_free(cl->lingers);
	free(cl);
}
