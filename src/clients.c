/* clients: open connections and their deadlines.  Each connection's fini
 * hook carries its entry, which is how a request finds its connection's
 * entry again (evhtp has no other user pointer on a connection). */
#include <stdlib.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "clients.h"
#include "clock.h"
#include "log.h"

struct client {
	TAILQ_ENTRY(client) link;
	struct clients *list;
	evhtp_connection_t *conn;
	struct event *deadline;          /* a whole request by then, or closed */
	long timeout_ms;
};

struct clients {
	struct event_base *base;
	TAILQ_HEAD(, client) all;
};

struct clients *clients_new(struct event_base *base)
{
	struct clients *cl = calloc(1, sizeof *cl);

	if (cl == NULL)
		abort();
	cl->base = base;
	TAILQ_INIT(&cl->all);
	return cl;
}

static void forget(struct client *c)
{
	TAILQ_REMOVE(&c->list->all, c, link);
	event_free(c->deadline);
	free(c);
}

static evhtp_res on_fini(evhtp_connection_t *conn, void *arg)
{
	(void)conn;
	forget(arg);
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

void clients_accepted(struct clients *cl, evhtp_connection_t *conn, long timeout_ms)
{
	struct client *c = calloc(1, sizeof *c);

	if (c == NULL)
		abort();
	c->list = cl;
	c->conn = conn;
	c->timeout_ms = timeout_ms;
	c->deadline = evtimer_new(cl->base, on_deadline, c);
	TAILQ_INSERT_TAIL(&cl->all, c, link);
	evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini, (evhtp_hook)on_fini, c);
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

void clients_answered(evhtp_request_t *req)
{
	struct client *c = client_of(req);

	if (c != NULL)
		arm(c);
}

void clients_free(struct clients *cl)
{
	struct client *c;

	while ((c = TAILQ_FIRST(&cl->all)) != NULL) {
		evhtp_connection_set_hook(c->conn, evhtp_hook_on_connection_fini, NULL, NULL);
		evhtp_connection_free(c->conn);
		forget(c);
	}
	free(cl);
}

const char *clients_framing_problem(evhtp_headers_t *hdr)
{
	evhtp_header_t *h;
	const char *te = NULL;
	int cls = 0;

	TAILQ_FOREACH(h, hdr, next) {
		if (strcasecmp(h->key, "Content-Length") == 0)
			cls++;
		else if (strcasecmp(h->key, "Transfer-Encoding") == 0)
			te = h->val;
	}
	if (cls > 1)
		return "more than one Content-Length";
	if (te != NULL && cls > 0)
		return "both Content-Length and Transfer-Encoding";
	if (te != NULL && strcasecmp(te, "chunked") != 0)
		return "Transfer-Encoding other than chunked";
	return NULL;
}
