/* listeners: the set of listen sockets and what a reload does to it (see
 * listeners.h).  Owns every listener, live or retired. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listener.h"
#include "listeners.h"
#include "log.h"
#include "xalloc.h"

struct entry {
	struct listener *l;    /* owned */
	evhtp_t *htp;          /* the listener's, for clients_served_by() */
};

struct listeners {
	evhtp_t *(*make)(void *);
	void *arg;
	struct entry live[CONFIG_MAX_LISTEN];
	size_t nlive;
	bool adopted;          /* from systemd: a reload leaves them alone */
	struct entry *retired; /* stopped by a reload, connections left (owned) */
	size_t nretired;
};

struct listeners *listeners_new(evhtp_t *(*make)(void *), void *arg)
{
	struct listeners *ls = xcalloc(1, sizeof *ls);

	ls->make = make;
	ls->arg = arg;
	return ls;
}

/* A new listener on spec, or NULL with err set (the htp is freed then). */
static struct entry bind_one(struct listeners *ls, const char *spec, long mode,
                             char *err, size_t errlen)
{
	struct entry e;

	e.htp = ls->make(ls->arg);
	e.l = listener_bind(e.htp, spec, mode, err, errlen);
	return e;
}

int listeners_bind(struct listeners *ls, const struct config *cfg, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < cfg->nlisten; i++) {
		ls->live[ls->nlive] = bind_one(ls, cfg->listen[i], cfg->socket_mode, err, errlen);
		if (ls->live[ls->nlive].l == NULL)
			return -1;
		ls->nlive++;
	}
	return 0;
}

int listeners_adopt(struct listeners *ls, const int *fds, size_t n, char *err, size_t errlen)
{
	size_t i;

	ls->adopted = true;
	for (i = 0; i < n; i++) {
		if (ls->nlive == CONFIG_MAX_LISTEN) {
			snprintf(err, errlen, "more than %d listeners", CONFIG_MAX_LISTEN);
			return -1;
		}
		ls->live[ls->nlive].htp = ls->make(ls->arg);
		ls->live[ls->nlive].l = listener_adopt(ls->live[ls->nlive].htp, fds[i], err,
		                                       errlen);
		if (ls->live[ls->nlive].l == NULL)
			return -1;
		ls->nlive++;
	}
	return 0;
}

static struct entry *find(struct entry *es, size_t n, const char *spec)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (listener_spec(es[i].l) != NULL && strcmp(listener_spec(es[i].l), spec) == 0)
			return &es[i];
	return NULL;
}

/* Free the retired listeners whose connections are all gone. */
static void reap(struct listeners *ls, const struct clients *cl)
{
	size_t i, kept = 0;

	for (i = 0; i < ls->nretired; i++) {
		if (clients_served_by(cl, ls->retired[i].htp))
			ls->retired[kept++] = ls->retired[i];
		else
			listener_free(ls->retired[i].l);
	}
	ls->nretired = kept;
}

static void retire(struct listeners *ls, struct entry e)
{
	log_info("no longer listening on %s", listener_spec(e.l));
	listener_stop(e.l);
	ls->retired = xrealloc(ls->retired, (ls->nretired + 1) * sizeof *ls->retired);
	ls->retired[ls->nretired++] = e;
}

int listeners_reload(struct listeners *ls, const struct config *cfg,
                     const struct clients *cl, char *err, size_t errlen)
{
	struct entry next[CONFIG_MAX_LISTEN], *old;
	bool fresh[CONFIG_MAX_LISTEN] = { false };
	size_t i, n = 0;

	if (ls->adopted)
		return 0;   /* socket activation: systemd owns the sockets */
	reap(ls, cl);
	for (i = 0; i < cfg->nlisten; i++) {
		if (find(next, n, cfg->listen[i]) != NULL)
			continue;   /* the same address twice */
		old = find(ls->live, ls->nlive, cfg->listen[i]);
		if (old != NULL) {
			next[n++] = *old;
			continue;
		}
		next[n] = bind_one(ls, cfg->listen[i], cfg->socket_mode, err, errlen);
		if (next[n].l == NULL) {
			while (n-- > 0)
				if (fresh[n])
					listener_free(next[n].l);
			return -1;
		}
		fresh[n++] = true;
	}
	for (i = 0; i < ls->nlive; i++)
		if (find(next, n, listener_spec(ls->live[i].l)) == NULL)
			retire(ls, ls->live[i]);
	memcpy(ls->live, next, n * sizeof *next);
	ls->nlive = n;
	return 0;
}

void listeners_stop(struct listeners *ls)
{
	size_t i;

	for (i = 0; i < ls->nlive; i++)
		listener_stop(ls->live[i].l);
}

void listeners_free(struct listeners *ls)
{
	size_t i;

	for (i = 0; i < ls->nlive; i++)
		listener_free(ls->live[i].l);
	for (i = 0; i < ls->nretired; i++)
		listener_free(ls->retired[i].l);
	free(ls->retired);
	free(ls);
}
