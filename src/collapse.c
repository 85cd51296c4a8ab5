/* collapse: identical requests in flight joined into one (see collapse.h).
 *
 * Identity: the method, the target, the Host, whether the body is to be
 * decoded, and the request headers after the batch's are merged in, in
 * order, names compared without case — everything that shapes what the
 * upstream answers and what we make of it.  A request with a body, or to
 * a method other than GET and HEAD, never collapses (fetch.c decides).
 * The upstream is the table: the scheme, host and port are its key.
 *
 * A flight lives from its first waiter until it has answered every one
 * (or the last has left); it is out of the table once answered, so a
 * request that comes while the answer is being handed out starts anew. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "collapse.h"
#include "fetch.h"
#include "fetch_internal.h"
#include "keyhash.h"
#include "outcome.h"
#include "request.h"
#include "upstream.h"
#include "xalloc.h"

#define COLLAPSE_BUCKETS 256

struct flight {
	struct flight *next;           /* hash chain */
	char *key;                     /* its identity (owned) */
	struct upstream *up;           /* a reference of its own */
	struct request_item item;      /* what it sends (owned copy) */
	struct outcome out;
	struct fetch fetch;
	uint64_t bytes;                /* its body, for the fetch's batch cap */
	TAILQ_HEAD(, fetch) waiters;   /* the requests it answers (borrowed) */
	unsigned nwaiters;
	bool delivering;               /* answering them: none may abort it */
	struct event *reaper;          /* frees it on the next turn of the loop:
	                                  its fetch may be up the stack */
};

struct collapse_table {
	struct flight *buckets[COLLAPSE_BUCKETS];
};

/* "GET /target\nhost\n1\nname:value\n…": unique per identity, because
 * none of the parts can hold a line break. */
static char *identity(const struct request_item *it)
{
	const char *method = request_method_name(it->method);
	const char *host = it->host_header ? it->host_header : it->host;
	size_t i, n = strlen(method) + strlen(it->target) + strlen(host) + 8;
	char *key, *p;

	for (i = 0; i < it->nheaders; i++)
		n += strlen(it->headers[i].name) + strlen(it->headers[i].value) + 2;
	key = p = xmalloc(n);
	p += snprintf(p, n, "%s %s\n%s\n%d\n", method, it->target, host, it->decompress);
	for (i = 0; i < it->nheaders; i++) {
		const char *c;

		for (c = it->headers[i].name; *c != '\0'; c++)
			*p++ = (char)tolower((unsigned char)*c);
		p += snprintf(p, n - (size_t)(p - key), ":%s\n", it->headers[i].value);
	}
	return key;
}

static void unlink_flight(struct flight *fl)
{
	struct flight **p = &fl->up->flights->buckets[keyhash(fl->key, COLLAPSE_BUCKETS)];

	while (*p != NULL && *p != fl)
		p = &(*p)->next;
	if (*p == fl)
		*p = fl->next;
	fl->next = NULL;
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct flight *fl = arg;
	struct upstream *up = fl->up;

	(void)fd;
	(void)what;
	event_free(fl->reaper);   /* the running event: fine, not persistent */
	fetch_cleanup(&fl->fetch);
	outcome_clear(&fl->out);
	request_item_free(&fl->item);
	free(fl->key);
	free(fl);
	upstream_put(up);   /* last: it may free the table */
}

/* Answered or aborted: out of the table now, freed on the next turn. */
static void reap(struct flight *fl)
{
	struct timeval now = { 0, 0 };

	unlink_flight(fl);
	evtimer_add(fl->reaper, &now);
}

static void add_waiter(struct flight *fl, struct fetch *f)
{
	TAILQ_INSERT_TAIL(&fl->waiters, f, flight_link);
	fl->nwaiters++;
	f->flight = fl;
}

/* The flight's answer (or failure) goes to each waiter in the order they
 * joined; one's batch failing fast may make others leave meanwhile. */
static void on_flight_done(struct fetch *inner, void *arg)
{
	struct flight *fl = arg;
	struct fetch *w;

	(void)inner;
	reap(fl);
	/* every one waiting when it came: one whose batch then fails fast
	 * because of another's answer has been told it was shared */
	fl->out.shared = fl->nwaiters > 1;
	fl->delivering = true;
	while ((w = TAILQ_FIRST(&fl->waiters)) != NULL) {
		TAILQ_REMOVE(&fl->waiters, w, flight_link);
		fl->nwaiters--;
		w->flight = NULL;
		fetch_adopt(w, &fl->out);
	}
}

static void start_flight(struct fetch *f, char *key, struct flight **bucket)
{
	struct upstream *u = f->up;
	struct flight *fl = xcalloc(1, sizeof *fl);

	fl->key = key;
	fl->reaper = xcheck(evtimer_new(f->env->base, on_reap, fl));
	fl->up = upstream_get(u->reg, u->key, u->host, u->port, u->tls);
	request_item_copy(&fl->item, f->item);
	outcome_init(&fl->out);
	TAILQ_INIT(&fl->waiters);
	fl->next = *bucket;
	*bucket = fl;
	add_waiter(fl, f);
	fetch_init(&fl->fetch, f->index, &fl->item, &fl->out, fl->up, NULL, f->env,
	           on_flight_done, fl);
	fl->fetch.batch_id = f->batch_id;
	fl->fetch.inner = true;
	fl->fetch.batch_bytes = &fl->bytes;
	fetch_debug(f, "collapsible: sent for every identical request that comes meanwhile");
	fetch_start(&fl->fetch);   /* may answer, and free fl, before it returns */
}

/* The flight of key in u's table, or NULL; *bucket: where it is or goes. */
static struct flight *find(struct upstream *u, const char *key, struct flight ***bucket)
{
	struct flight *fl;

	if (u->flights == NULL)
		u->flights = xcalloc(1, sizeof *u->flights);
	*bucket = &u->flights->buckets[keyhash(key, COLLAPSE_BUCKETS)];
	for (fl = **bucket; fl != NULL && strcmp(fl->key, key) != 0; fl = fl->next)
		;
	return fl;
}

bool collapse_in_flight(const struct fetch *f)
{
	char *key = identity(f->item);
	struct flight **bucket;
	bool found = find(f->up, key, &bucket) != NULL;

	free(key);
	return found;
}

bool collapse_join(struct fetch *f)
{
	char *key = identity(f->item);
	struct flight **bucket, *fl = find(f->up, key, &bucket);

	if (fl == NULL) {
		start_flight(f, key, bucket);
		return true;
	}
	free(key);
	f->up->collapsed++;
	add_waiter(fl, f);
	fetch_debug(f, "joined an identical request in flight (%u waiting for it)",
	            fl->nwaiters);
	return false;
}

struct flight *collapse_leave(struct fetch *f)
{
	struct flight *fl = f->flight;

	TAILQ_REMOVE(&fl->waiters, f, flight_link);
	fl->nwaiters--;
	f->flight = NULL;
	if (fl->nwaiters > 0 || fl->delivering)
		return NULL;
	unlink_flight(fl);   /* an identical request from now on starts anew */
	return fl;
}

void collapse_abandon(struct flight *fl)
{
	if (fl == NULL)
		return;
	fetch_debug(&fl->fetch, "every request waiting for it left: aborted");
	reap(fl);
	fetch_abort(&fl->fetch, OUTCOME_CANCELLED, "every request waiting for it left");
}

const char *collapse_phase(const struct fetch *f)
{
	return fetch_phase(&f->flight->fetch);
}

void collapse_table_free(struct collapse_table *t)
{
	free(t);
}
