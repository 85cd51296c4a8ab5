/* memtrim: malloc_trim a second after the last batch (see memtrim.h).
 * Owns one timer. */
#include <malloc.h>
#include <stdlib.h>

#include <event2/event.h>

#include "memtrim.h"
#include "xalloc.h"

struct memtrim {
	struct event *timer;   /* owned */
};

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	malloc_trim(0);
}

struct memtrim *memtrim_new(struct event_base *base)
{
	struct memtrim *t = xcalloc(1, sizeof *t);

	t->timer = xcheck(evtimer_new(base, on_timer, t));
	return t;
}

void memtrim_free(struct memtrim *t)
{
	event_free(t->timer);
	free(t);
}

void memtrim_idle(struct memtrim *t)
{
	struct timeval second = { 1, 0 };

	evtimer_add(t->timer, &second);
}

void memtrim_busy(struct memtrim *t)
{
	evtimer_del(t->timer);
}
