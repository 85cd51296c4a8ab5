/* linger: the lingering close of client sockets (see linger.h).  Owns the
 * sockets handed to it and one timer each. */
#include <stdbool.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "clock.h"
#include "linger.h"
#include "xalloc.h"

struct lingering {
	TAILQ_ENTRY(lingering) link;
	struct lingers *list;
	struct bufferevent *bev;   /* owned */
	struct event *deadline;    /* owned */
	bool shut;                 /* our side is shut for writing */
	bool eof;                  /* the client's side is shut */
};

struct lingers {
	struct event_base *base;
	TAILQ_HEAD(, lingering) all;
	bool hurry;                /* shutting down: close once flushed */
	void (*done)(void *);      /* then call this, once */
	void *done_arg;
};

struct lingers *lingers_new(struct event_base *base)
{
	struct lingers *ls = xcalloc(1, sizeof *ls);

	ls->base = base;
	TAILQ_INIT(&ls->all);
	return ls;
}

static void check_done(struct lingers *ls)
{
	void (*done)(void *) = ls->done;

	if (!ls->hurry || !TAILQ_EMPTY(&ls->all) || done == NULL)
		return;
	ls->done = NULL;
	done(ls->done_arg);
}

static void finish(struct lingering *l)
{
	struct lingers *ls = l->list;

	TAILQ_REMOVE(&ls->all, l, link);
	event_free(l->deadline);
	bufferevent_free(l->bev);
	free(l);
	check_done(ls);
}

void lingers_free(struct lingers *ls)
{
	struct lingering *l;

	ls->done = NULL;
	while ((l = TAILQ_FIRST(&ls->all)) != NULL)
		finish(l);
	free(ls);
}

void lingers_hurry(struct lingers *ls, void (*done)(void *), void *arg)
{
	struct lingering *l, *next;

	ls->hurry = true;
	ls->done = done;
	ls->done_arg = arg;
	for (l = TAILQ_FIRST(&ls->all); l != NULL; l = next) {
		next = TAILQ_NEXT(l, link);
		if (l->shut)
			finish(l);
	}
	check_done(ls);
}

/* All we had to say is out: tell the client we are done, and give it
 * LINGER_MS from now. */
static void shut_writing(struct lingering *l)
{
	struct timeval total = clock_timeval(LINGER_MS), idle = clock_timeval(LINGER_IDLE_MS);

	if (l->shut)
		return;
	l->shut = true;
	shutdown(bufferevent_getfd(l->bev), SHUT_WR);
	bufferevent_disable(l->bev, EV_WRITE);
	bufferevent_set_timeouts(l->bev, &idle, NULL);
	evtimer_add(l->deadline, &total);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	(void)arg;
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct lingering *l = arg;

	(void)bev;
	shut_writing(l);
	if (l->eof || l->list->hurry)
		finish(l);
}

/* An error, LINGER_IDLE_MS of silence, or EOF: a client that shut only
 * its sending side still gets what is queued for it. */
static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct lingering *l = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		l->eof = true;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	finish(l);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg);
}

void linger_start(struct lingers *ls, struct bufferevent *bev)
{
	struct lingering *l = xcalloc(1, sizeof *l);
	struct timeval stalled = clock_timeval(LINGER_STALLED_MS);

	l->list = ls;
	l->bev = bev;
	l->deadline = xcheck(evtimer_new(ls->base, on_deadline, l));
	TAILQ_INSERT_TAIL(&ls->all, l, link);
	bufferevent_setcb(bev, on_read, on_write, on_event, l);
	bufferevent_setwatermark(bev, EV_READ, 0, 0);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(bev, NULL, &stalled);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	shut_writing(l);
	if (ls->hurry)
		finish(l);
}
