/* fetch_connect: a fetch's request onto a connection and back (fetch.c
 * owns the rest of its life): an idle one taken from the pool or a new
 * one opened — the name resolved, the deny list applied to its
 * addresses, each address tried in turn, the wait for a connection when
 * none can be had — the request sent, and the one classifier that turns
 * what went wrong in the exchange into an error type and message (or into
 * sending it again: a kept-alive connection that was dead, an HTTP/2
 * stream the upstream never processed). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "acl.h"
#include "clock.h"
#include "fetch.h"
#include "fetch_internal.h"
#include "hedge.h"
#include "netaddr.h"
#include "xalloc.h"

static bool idempotent(enum request_method m)
{
	return m != REQUEST_METHOD_POST && m != REQUEST_METHOD_PATCH;
}

/* A new connection is open and the request going out on it. */
static void on_ready(void *ctx, const char *protocol)
{
	struct fetch *f = ctx;

	f->out->protocol = protocol;
	f->out->timing.connect_ms = clock_now_ms() - f->t_granted;
	fetch_set_state(f, FETCH_EXCHANGING);
	fetch_arm_timer(f);   /* from the connect deadline to the request's */
}

static void reopen(struct fetch *f);
static void resend(struct fetch *f);
static bool next_address(struct fetch *f);

/* HTTP/2 requests the upstream never processed go again (SPEC 9). */
#define MAX_UNPROCESSED_RETRIES 3

/* The one classifier: what went wrong, as an error type and message. */
static void on_fail(void *ctx, const struct exchange_failure *why)
{
	struct fetch *f = ctx;
	bool stale = why->nothing_received && f->out->reused && !f->retried &&
	             idempotent(f->item->method);

	if (why->unprocessed && f->unprocessed_retries < MAX_UNPROCESSED_RETRIES) {
		resend(f);
		return;
	}
	switch (why->kind) {
	case EXCHANGE_FAIL_CONNECT:
		if (next_address(f))   /* the name may have another address */
			return;
		fetch_fail(f, OUTCOME_CONNECT, xasprintf("cannot connect to %s: %s",
		           f->up->key, why->message));
		return;
	case EXCHANGE_FAIL_TLS:
		fetch_fail(f, OUTCOME_TLS, xstrdup(why->message));
		return;
	case EXCHANGE_FAIL_RESET:
	case EXCHANGE_FAIL_CLOSED:
		/* a kept-alive connection the upstream closed just as we sent:
		 * an idempotent request goes once more on a new connection */
		if (stale) {
			reopen(f);
			return;
		}
		if (!why->nothing_received)
			fetch_fail(f, OUTCOME_PROTOCOL, xstrdup(why->kind == EXCHANGE_FAIL_CLOSED
			           ? why->message : "connection reset by upstream before the "
			           "end of the answer"));
		else if (why->kind == EXCHANGE_FAIL_RESET && why->err == ECONNRESET)
			fetch_fail(f, OUTCOME_CONNECT, xstrdup("connection reset by upstream"));
		else if (why->kind == EXCHANGE_FAIL_RESET)
			fetch_fail(f, OUTCOME_CONNECT, xasprintf("connection to %s failed: %s",
			           f->up->key, why->message));
		else
			fetch_fail(f, OUTCOME_CONNECT, xstrdup(why->message));
		return;
	case EXCHANGE_FAIL_PROTOCOL:
		fetch_fail(f, OUTCOME_PROTOCOL, xstrdup(why->message));
		return;
	case EXCHANGE_FAIL_REFUSED:
		fetch_fail(f, OUTCOME_TOO_LARGE, xstrdup(why->message));
		return;
	}
}

static const struct exchange_ops exchange_events = {
	.ready = on_ready, .head = fetch_answer_head, .body = fetch_answer_body,
	.end = fetch_answer_end, .fail = on_fail,
};

/* Put the request on c. */
static void send_request(struct fetch *f, struct pool_conn *c)
{
	const struct request_item *it = f->item;
	struct exchange_request req = {
		.method = it->method, .authority = it->host_header, .target = it->target,
		.headers = it->headers, .nheaders = it->nheaders,
		.body = it->body, .body_len = it->body_len,
	};

	f->body_len = 0;
	pool_exchange(c, &f->x, &req, &exchange_events, f);
}

/* --- connect ------------------------------------------------------------- */

static void wait_conn(struct fetch *f)
{
	fetch_set_state(f, FETCH_WAITCONN);
	fetch_debug(f, "no connection to %s to be had now: waiting for one", f->up->key);
	f->t_waitconn = clock_now_ms();
	fetch_arm_timer(f);   /* the request deadline only: not connecting yet */
	pool_wait(f->up->pool, &f->conn_waiter);
}

/* Open a connection to the current address and send the request on it. */
static void connect_next(struct fetch *f)
{
	const struct sockaddr_storage *ss = &f->addrs->addr[f->addr_i];
	char addr[NETADDR_TEXT_MAX];

	struct pool_conn *c;

	netaddr_ip_text((const struct sockaddr *)ss, addr, sizeof addr);
	c = pool_open(f->up->pool, (const struct sockaddr *)ss, f->up->port);
	if (c == NULL && (errno == EAGAIN || errno == EMFILE || errno == ENFILE)) {
		wait_conn(f);
		return;
	}
	if (c == NULL) {
		fetch_fail(f, f->up->tls ? OUTCOME_TLS : OUTCOME_CONNECT,
		           xasprintf("cannot set up a connection to %s: %s", addr,
		                     errno != 0 ? strerror(errno) : "TLS set-up failed"));
		return;
	}
	fetch_set_state(f, FETCH_CONNECTING);
	fetch_debug(f, "connecting to %s (address %zu of %zu) on c%lu", addr,
	            f->addr_i + 1, f->addrs->n, c->id);
	send_request(f, c);
}

/* An open connection (idle, or HTTP/2 with a stream free): no connect,
 * straight to the exchange. */
static void send_reused(struct fetch *f, struct pool_conn *c)
{
	f->out->reused = true;
	f->out->protocol = pool_conn_protocol(c);
	fetch_set_state(f, FETCH_EXCHANGING);
	fetch_debug(f, "reusing c%lu (%s)", c->id, f->out->protocol);
	fetch_arm_timer(f);
	send_request(f, c);
}

/* A connection to send on, or leave to open one: the wait counts as
 * queued time, not as connecting (the connect deadline starts now), and
 * the request goes on where it stopped. */
void fetch_conn_ready(struct pool_waiter *w, struct pool_conn *c, void *arg)
{
	struct fetch *f = arg;
	double waited = clock_now_ms() - f->t_waitconn;

	(void)w;
	f->out->timing.queued_ms += waited;
	f->t_granted += waited;
	f->t_attempt = clock_now_ms();
	if (c != NULL) {
		send_reused(f, c);
		return;
	}
	connect_next(f);
}

/* The connect to the current address failed: try the next address of
 * the name, if there is one.  True when a new attempt is under way. */
static bool next_address(struct fetch *f)
{
	if (f->addrs == NULL || f->addr_i + 1 >= f->addrs->n)
		return false;
	fetch_drop_conn(f, false);
	f->addr_i++;
	f->t_attempt = clock_now_ms();
	fetch_arm_timer(f);
	connect_next(f);
	return true;
}

static void on_resolved(const char *error, const struct dns_answer *ans, void *arg)
{
	struct fetch *f = arg;
	size_t i;

	f->dns_req = NULL;
	if (error != NULL) {
		fetch_fail(f, OUTCOME_DNS, xasprintf("cannot resolve %s: %s",
		           f->item->host, error));
		return;
	}
	free(f->addrs);   /* a retry's second resolution */
	f->addrs = xcalloc(1, sizeof *f->addrs);
	/* never connect into deny_networks, however the name got there */
	for (i = 0; i < ans->n; i++)
		if (f->env->acl == NULL ||
		    !acl_addr_denied(f->env->acl, (const struct sockaddr *)&ans->addr[i]))
			f->addrs->addr[f->addrs->n++] = ans->addr[i];
	if (f->addrs->n == 0) {
		fetch_fail(f, OUTCOME_FORBIDDEN, xasprintf("%s resolves into deny_networks; "
		           "nothing was sent", f->item->host));
		return;
	}
	f->addr_i = 0;
	connect_next(f);
}

/* A new connection: resolve the name first (the connect deadline runs). */
static void open_new(struct fetch *f)
{
	struct dns_request *r;

	fetch_set_state(f, FETCH_RESOLVING);
	fetch_arm_timer(f);
	if (f->up->tls_error != NULL) {
		fetch_fail(f, OUTCOME_TLS, xstrdup(f->up->tls_error));
		return;
	}
	r = dns_resolve(f->env->dns, f->item->host, on_resolved, f);
	if (r != NULL)
		f->dns_req = r;
}

/* A reused connection turned out dead: do it again on a new one. */
static void reopen(struct fetch *f)
{
	fetch_drop_conn(f, false);
	f->retried = true;
	f->out->reused = false;
	f->out->protocol = NULL;
	f->out->status = 0;
	f->t_attempt = clock_now_ms();
	fetch_debug(f, "the kept-alive connection was closed: once more on a new one");
	open_new(f);
}

/* The upstream never processed the request (HTTP/2 REFUSED_STREAM, or
 * above GOAWAY's last stream): send it again, whatever its method, on
 * another connection or stream, within the same deadlines. */
static void resend(struct fetch *f)
{
	struct pool_conn *c;

	fetch_drop_conn(f, false);
	f->unprocessed_retries++;
	f->up->streams_retried++;
	f->out->reused = false;
	f->out->protocol = NULL;
	f->out->status = 0;
	f->t_attempt = clock_now_ms();
	fetch_debug(f, "not processed by the upstream: sending it again (%u of %d)",
	            f->unprocessed_retries, MAX_UNPROCESSED_RETRIES);
	c = pool_take(f->up->pool);
	if (c != NULL) {
		send_reused(f, c);
		return;
	}
	open_new(f);
}

/* --- the attempt begins -------------------------------------------------- */

void fetch_begin(struct fetch *f)
{
	struct pool_conn *c;

	f->t_granted = clock_now_ms();
	f->t_attempt = f->t_granted;
	f->out->timing.queued_ms = f->t_granted - f->t_start;
	if (f->twin)
		hedge_began(f);
	else if (f->up->hedge_after_ms > 0 && idempotent(f->item->method))
		hedge_arm(f);
	c = pool_take(f->up->pool);
	if (c != NULL) {
		send_reused(f, c);
		return;
	}
	open_new(f);
}
