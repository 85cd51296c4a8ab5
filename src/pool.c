/* pool: keep-alive evhttp connections of one upstream.  An idle
 * connection is reused LIFO (the most recently used is the least likely
 * to have been closed by the upstream); it is dropped when its idle
 * timer fires or when the upstream closes it (evhttp's closecb). */
#include <stdlib.h>

#include <event2/bufferevent_ssl.h>

#include "clock.h"
#include "log.h"
#include "pool.h"
#include "tls.h"

struct pool {
	struct event_base *base;
	struct pool_settings settings;
	struct pool_conn *idle_head;       /* most recently released first */
	unsigned nidle;
	unsigned long opened;
	unsigned long handshakes;
	struct pool_conn *dead;            /* waiting for the reaper */
	struct event *reaper;
};

static void reap(evutil_socket_t fd, short what, void *arg);

struct pool *pool_new(struct event_base *base, const struct pool_settings *ps)
{
	struct pool *p = calloc(1, sizeof *p);

	if (p == NULL)
		abort();
	p->base = base;
	p->settings = *ps;
	p->reaper = evtimer_new(base, reap, p);
	return p;
}

void pool_configure(struct pool *p, const struct pool_settings *ps)
{
	p->settings = *ps;
}

static void free_conn(struct pool_conn *c)
{
	if (c->ssl != NULL)
		SSL_set_app_data(c->ssl, NULL);   /* the SSL may outlive c briefly */
	evhttp_connection_free(c->evcon);
	event_free(c->idle_timer);
	free(c);
}

static void unlink_idle(struct pool_conn *c)
{
	struct pool *p = c->pool;

	if (!c->idle)
		return;
	if (c->prev_idle != NULL)
		c->prev_idle->next_idle = c->next_idle;
	else
		p->idle_head = c->next_idle;
	if (c->next_idle != NULL)
		c->next_idle->prev_idle = c->prev_idle;
	c->next_idle = c->prev_idle = NULL;
	c->idle = false;
	p->nidle--;
	evtimer_del(c->idle_timer);
}

/* Free later: we may be inside one of this connection's callbacks. */
static void retire(struct pool_conn *c)
{
	struct pool *p = c->pool;

	unlink_idle(c);
	c->open = false;
	c->next_dead = p->dead;
	p->dead = c;
	event_active(p->reaper, EV_TIMEOUT, 0);
}

static void reap(evutil_socket_t fd, short what, void *arg)
{
	struct pool *p = arg;
	struct pool_conn *c;

	(void)fd;
	(void)what;
	while ((c = p->dead) != NULL) {
		p->dead = c->next_dead;
		free_conn(c);
	}
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct pool_conn *c = arg;

	(void)evcon;
	c->open = false;
	if (c->idle)
		retire(c);
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	retire(arg);
}

struct pool_conn *pool_take_idle(struct pool *p)
{
	struct pool_conn *c = p->idle_head;

	if (c == NULL)
		return NULL;
	unlink_idle(c);
	c->in_use = true;
	return c;
}

/* OpenSSL tells us the moment the handshake is done: that ends the
 * connect phase of an https request. */
static void on_ssl_info(const SSL *ssl, int where, int ret)
{
	struct pool_conn *c = SSL_get_app_data(ssl);

	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_DONE) || c == NULL || c->handshake_done)
		return;
	c->handshake_done = true;
	c->pool->handshakes++;
	if (c->on_handshake != NULL)
		c->on_handshake(c, c->handshake_arg);
}

/* An evhttp connection over TLS: evhttp connects the socket of an
 * OpenSSL bufferevent, which then runs the handshake. */
static struct evhttp_connection *new_tls_evcon(struct pool *p, struct pool_conn *c,
                                               const char *addr, int port)
{
	struct bufferevent *bev;
	SSL *ssl = tls_new_ssl(p->settings.ssl_ctx, p->settings.tls_host,
	                       p->settings.tls_verify);

	if (ssl == NULL)
		return NULL;
	SSL_set_app_data(ssl, c);
	SSL_set_info_callback(ssl, on_ssl_info);
	bev = bufferevent_openssl_socket_new(p->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	c->ssl = ssl;
	return evhttp_connection_base_bufferevent_new(p->base, NULL, bev, addr,
	                                              (unsigned short)port);
}

struct pool_conn *pool_open(struct pool *p, const char *addr, int port)
{
	struct pool_conn *c = calloc(1, sizeof *c);
	struct timeval tv;

	if (c == NULL)
		abort();
	c->pool = p;
	if (p->settings.ssl_ctx != NULL)
		c->evcon = new_tls_evcon(p, c, addr, port);
	else
		c->evcon = evhttp_connection_base_new(p->base, NULL, addr, (unsigned short)port);
	if (c->evcon == NULL) {
		free(c);
		return NULL;
	}
	c->idle_timer = evtimer_new(p->base, on_idle_timeout, c);
	c->in_use = true;
	tv = clock_timeval((double)p->settings.io_timeout_ms);
	evhttp_connection_set_timeout_tv(c->evcon, &tv);
	evhttp_connection_set_max_body_size(c->evcon, (ev_ssize_t)p->settings.max_response_body);
	evhttp_connection_set_max_headers_size(c->evcon, 64 * 1024);
	evhttp_connection_set_closecb(c->evcon, on_close, c);
	p->opened++;
	return c;
}

void pool_release(struct pool_conn *c, bool reusable)
{
	struct pool *p = c->pool;
	struct timeval tv;

	c->in_use = false;
	c->used = true;
	if (!reusable || !c->open) {
		retire(c);
		return;
	}
	c->idle = true;
	c->prev_idle = NULL;
	c->next_idle = p->idle_head;
	if (p->idle_head != NULL)
		p->idle_head->prev_idle = c;
	p->idle_head = c;
	p->nidle++;
	tv = clock_timeval((double)p->settings.keepalive_timeout_ms);
	evtimer_add(c->idle_timer, &tv);
}

unsigned pool_idle_count(const struct pool *p)
{
	return p->nidle;
}

unsigned long pool_opened_count(const struct pool *p)
{
	return p->opened;
}

unsigned long pool_handshake_count(const struct pool *p)
{
	return p->handshakes;
}

/* Only called once no fetch holds a connection (at exit). */
void pool_free(struct pool *p)
{
	struct pool_conn *c;

	while ((c = p->idle_head) != NULL) {
		unlink_idle(c);
		free_conn(c);
	}
	reap(-1, 0, p);
	event_free(p->reaper);
	free(p);
}
