/* conn: one upstream connection.  It owns the socket, the SSL and the
 * bufferevent over them (the bufferevent closes and frees neither, so
 * there is one owner of each), and one event that reports an immediate
 * failure and frees the memory, both from the loop. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>

#include "conn.h"
#include "log.h"
#include "netaddr.h"
#include "tls.h"
#include "xalloc.h"

/* The longest ALPN protocol list offered (wire format). */
#define ALPN_MAX 256

struct conn {
	struct event_base *base;                /* borrowed */
	enum conn_state state;
	unsigned long id;
	struct sockaddr_storage peer;
	evutil_socket_t fd;                     /* owned: closed by close_now */
	SSL *ssl;                               /* owned; NULL: plain TCP */
	struct bufferevent *bev;                /* owned; over fd (and ssl) */
	struct event *later;                    /* owned: pending_err, then the free */
	const struct conn_ops *ops;             /* borrowed */
	void *ctx;
	struct conn_counters *counters;         /* borrowed; may be NULL */
	int pending_err;                        /* a failure to report from the loop */
	bool pending_eof;                       /* an EOF to report from the loop */
	bool in_send;                           /* inside conn_send */
	bool freed;                             /* conn_free was called */
	char alpn[ALPN_MAX];                    /* selected; "" for none */
};

/* Connections ever made: names them in the log. */
static unsigned long conn_ids;

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* --- logging and state -------------------------------------------------- */

/* "127.0.0.1:8080 c5": the peer and the connection. */
static void describe(const void *obj, char *buf, size_t len)
{
	const struct conn *c = obj;
	char addr[NETADDR_TEXT_MAX];

	if (netaddr_format((const struct sockaddr *)&c->peer, addr, sizeof addr) < 0)
		snprintf(addr, sizeof addr, "?");
	snprintf(buf, len, "%s c%lu", addr, c->id);
}

/* (conn_obj() makes the compiler check that c is a connection.) */
static inline const void *conn_obj(const struct conn *c) { return c; }
#define conn_debug(c, ...) log_about(LOG_LEVEL_DEBUG, describe, conn_obj(c), __VA_ARGS__)

static const char *state_name(enum conn_state s)
{
	static const char *names[] = {
		[CONN_CONNECTING] = "connecting", [CONN_HANDSHAKING] = "handshaking",
		[CONN_OPEN] = "open", [CONN_CLOSED] = "closed",
	};

	return names[s];
}

/* connecting -> [handshaking] -> open, and any of them -> closed. */
static bool may_become(enum conn_state from, enum conn_state to)
{
	switch (to) {
	case CONN_HANDSHAKING:
		return from == CONN_CONNECTING;
	case CONN_OPEN:
		return from == CONN_CONNECTING || from == CONN_HANDSHAKING;
	case CONN_CLOSED:
		return from != CONN_CLOSED;
	default:
		return false;
	}
}

/* Every change of c->state. */
static void set_state(struct conn *c, enum conn_state to, const char *why)
{
	assert(may_become(c->state, to));
	conn_debug(c, "%s -> %s: %s", state_name(c->state), state_name(to), why);
	c->state = to;
}

/* --- errors -------------------------------------------------------------- */

enum conn_error_kind conn_error_kind_of(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return CONN_ERR_REFUSED;
	case ENETUNREACH:
	case EHOSTUNREACH:
		return CONN_ERR_UNREACHABLE;
	case ECONNRESET:
		return CONN_ERR_RESET;
	case ETIMEDOUT:
		return CONN_ERR_TIMEOUT;
	default:
		return CONN_ERR_OTHER;
	}
}

const char *conn_error_text(int err)
{
	switch (conn_error_kind_of(err)) {
	case CONN_ERR_REFUSED:
		return "connection refused";
	case CONN_ERR_UNREACHABLE:
		return "host unreachable";
	case CONN_ERR_RESET:
		return "connection reset";
	case CONN_ERR_TIMEOUT:
		return "connection timed out";
	default:
		return err != 0 ? strerror(err) : "connection failed";
	}
}

/* Close the socket now: no event comes after this. */
static void close_now(struct conn *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0)
		evutil_closesocket(c->fd);
	c->fd = -1;
}

/* The end of c: closed, then the owner told (it may conn_free at once). */
static void report(struct conn *c, enum conn_error_kind kind, int err, const char *msg)
{
	struct conn_error why = {
		.kind = kind, .err = err, .message = msg,
		.connecting = c->state != CONN_OPEN,
	};

	conn_debug(c, "%s (errno %d)", msg, err);
	close_now(c);
	set_state(c, CONN_CLOSED, "error");
	c->ops->error(c->ctx, &why);
}

static void fail_errno(struct conn *c, int err)
{
	report(c, conn_error_kind_of(err), err, conn_error_text(err));
}

/* The handshake (or TLS on an open connection) failed: the text is
 * tls.c's, from the verify result and OpenSSL's queued reason. */
static void fail_tls(struct conn *c, int err)
{
	unsigned long e = bufferevent_get_openssl_error(c->bev);
	char *msg = tls_failure_message(c->ssl, e);
	/* the server takes none of the protocols ALPN offered: not a TLS
	 * failure but the answer to the question ALPN asked */
	bool alpn = ERR_GET_REASON(e) == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL;

	report(c, alpn ? CONN_ERR_ALPN : CONN_ERR_TLS, err, msg);
	free(msg);
}

static void close_by_peer(struct conn *c)
{
	close_now(c);
	set_state(c, CONN_CLOSED, "closed by the peer");
	c->ops->closed(c->ctx);
}

/* A failure found inside a call of the owner's: told from the loop. */
static void fail_later(struct conn *c, int err)
{
	static const struct timeval now = { 0, 0 };

	c->pending_err = err != 0 ? err : EIO;
	evtimer_add(c->later, &now);
}

/* --- the loop's part: immediate failures and the free ------------------ */

static void on_later(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	int err = c->pending_err;

	(void)fd;
	(void)what;
	if (c->freed) {
		event_free(c->later);
		free(c);
		return;
	}
	c->pending_err = 0;
	if (c->state == CONN_CLOSED || err == 0)
		return;
	if (c->pending_eof)
		close_by_peer(c);
	else
		fail_errno(c, err);
}

void conn_free(struct conn *c)
{
	static const struct timeval now = { 0, 0 };

	if (c == NULL || c->freed)
		return;
	close_now(c);
	if (c->state != CONN_CLOSED)
		set_state(c, CONN_CLOSED, "freed");
	c->freed = true;
	evtimer_add(c->later, &now);
}

/* --- TLS ------------------------------------------------------------------ */

/* protos as ALPN's wire format: each name after its length byte. */
static size_t alpn_wire(const char *const *protos, unsigned char *out, size_t room)
{
	size_t n = 0, len;

	for (; *protos != NULL; protos++) {
		len = strlen(*protos);
		if (len == 0 || len > 255 || n + 1 + len > room)
			return 0;
		out[n++] = (unsigned char)len;
		memcpy(out + n, *protos, len);
		n += len;
	}
	return n;
}

/* The SSL of one connection, as tls.c makes them, offering tls->alpn. */
static SSL *new_ssl(const struct conn_tls *tls)
{
	SSL *ssl = tls_new_ssl(tls->ctx, tls->host, tls->verify);
	unsigned char wire[ALPN_MAX];
	size_t n;

	if (ssl == NULL || tls->alpn == NULL || tls->alpn[0] == NULL)
		return ssl;
	n = alpn_wire(tls->alpn, wire, sizeof wire);
	/* SSL_set_alpn_protos returns 0 on success, unlike its neighbours */
	if (n == 0 || SSL_set_alpn_protos(ssl, wire, (unsigned)n) != 0) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* TCP is up: run the handshake on the socket through an OpenSSL
 * bufferevent in place of the plain one. */
static void start_tls(struct conn *c)
{
	bufferevent_free(c->bev);
	c->bev = bufferevent_openssl_socket_new(c->base, c->fd, c->ssl,
	                                        BUFFEREVENT_SSL_CONNECTING, 0);
	if (c->bev == NULL) {
		report(c, CONN_ERR_TLS, 0, "TLS handshake failed: cannot set it up");
		return;
	}
	/* a peer that closes without close_notify has closed, not failed */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	set_state(c, CONN_HANDSHAKING, "connected");
}

static void note_alpn(struct conn *c)
{
	const unsigned char *p = NULL;
	unsigned len = 0;

	SSL_get0_alpn_selected(c->ssl, &p, &len);
	if (p == NULL || len >= sizeof c->alpn)
		len = 0;
	if (len > 0)
		memcpy(c->alpn, p, len);
	c->alpn[len] = '\0';
}

/* --- events ----------------------------------------------------------------- */

static void become_open(struct conn *c, const char *why)
{
	/* read events stay on from here to the end: EOF on an idle
	 * connection is seen, and no request costs an epoll_ctl */
	bufferevent_enable(c->bev, EV_READ);
	set_state(c, CONN_OPEN, why);
	c->ops->connected(c->ctx, c->alpn[0] != '\0' ? c->alpn : NULL);
}

static void on_connected(struct conn *c)
{
	if (c->state == CONN_CONNECTING && c->ssl != NULL) {
		start_tls(c);
		return;
	}
	if (c->state == CONN_HANDSHAKING) {
		if (c->counters != NULL)
			c->counters->handshakes++;
		note_alpn(c);
		conn_debug(c, "TLS handshake done, ALPN %s", c->alpn[0] ? c->alpn : "none");
		become_open(c, "handshake done");
		return;
	}
	become_open(c, "connected");
}

static void on_failure(struct conn *c, short what, int err)
{
	if (c->state == CONN_HANDSHAKING) {
		fail_tls(c, err);
		return;
	}
	if (c->ssl != NULL && bufferevent_get_openssl_error(c->bev) != 0) {
		fail_tls(c, err);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		close_by_peer(c);
		return;
	}
	fail_errno(c, err);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	/* first, before any call can change it: libevent leaves the failed
	 * connect's SO_ERROR (or the failed read's errno) here */
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		on_connected(c);
		return;
	}
	if (!(what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)))
		return;
	if (c->pending_err != 0 && !c->pending_eof && !c->in_send) {
		/* a write failed first (ECONNRESET, EPIPE) and consumed the
		 * socket's error: the EOF that follows is its echo, not news */
		err = c->pending_err;
		c->pending_err = 0;
		fail_errno(c, err);
		return;
	}
	if (c->in_send) {   /* the owner is inside conn_send: tell it later */
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		c->pending_eof = (what & BEV_EVENT_EOF) != 0;
		fail_later(c, err);
		return;
	}
	on_failure(c, what, err);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state == CONN_OPEN)
		c->ops->readable(c->ctx, bufferevent_get_input(bev));
}

/* The output buffer drained (the bufferevent's low watermark is 0). */
static void on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->state == CONN_OPEN && c->ops->drained != NULL)
		c->ops->drained(c->ctx);
}

/* --- opening ------------------------------------------------------------------ */

/* A non-blocking socket with connect() started; -1 with errno if none
 * could be made.  *err gets connect()'s own errno (0 or EINPROGRESS: under
 * way). */
static evutil_socket_t start_connect(const struct sockaddr *addr, socklen_t len, int *err)
{
	evutil_socket_t fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	/* requests and HTTP/2 frames are written whole: Nagle would only hold
	 * the next one back until the upstream's delayed ACK (40 ms) */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	*err = connect(fd, addr, len) < 0 ? errno : 0;
	return fd;
}

static struct conn *new_conn(struct event_base *base, const struct sockaddr *addr,
                             socklen_t addrlen, const struct conn_ops *ops, void *ctx)
{
	struct conn *c = xcalloc(1, sizeof *c);

	c->base = base;
	c->state = CONN_CONNECTING;
	c->fd = -1;
	c->ops = ops;
	c->ctx = ctx;
	c->id = ++conn_ids;
	memcpy(&c->peer, addr, addrlen <= sizeof c->peer ? addrlen : sizeof c->peer);
	c->later = xcheck(evtimer_new(base, on_later, c));
	return c;
}

struct conn *conn_open(struct event_base *base, const struct sockaddr *addr,
                       socklen_t addrlen, const struct conn_tls *tls,
                       const struct conn_ops *ops, void *ctx,
                       struct conn_counters *counters)
{
	SSL *ssl = tls != NULL ? new_ssl(tls) : NULL;
	evutil_socket_t fd;
	struct conn *c;
	int err = 0;

	if (tls != NULL && ssl == NULL) {
		errno = 0;
		return NULL;
	}
	fd = start_connect(addr, addrlen, &err);
	if (fd < 0) {
		int e = errno;

		SSL_free(ssl);
		errno = e;
		return NULL;
	}
	c = new_conn(base, addr, addrlen, ops, ctx);
	c->counters = counters;
	c->fd = fd;
	c->ssl = ssl;
	/* not deferred: the connect's errno must still be there in on_event */
	c->bev = xcheck(bufferevent_socket_new(base, fd, 0));
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	if (counters != NULL)
		counters->opened++;
	conn_debug(c, "connecting%s", ssl != NULL ? " (TLS)" : "");
	if (err != 0 && err != EINPROGRESS) {
		fail_later(c, err);   /* refused at once: said from the loop */
		return c;
	}
	/* libevent watches for the end of the connect we started */
	if (bufferevent_socket_connect(c->bev, NULL, 0) < 0)
		fail_later(c, errno);
	return c;
}

/* --- sending --------------------------------------------------------------------- */

/* Write what the socket takes now, straight from data (MSG_NOSIGNAL: a
 * peer gone is an error, not a SIGPIPE).  -1 with errno on a hard error. */
static int write_now(struct conn *c, struct evbuffer *data)
{
	struct evbuffer_iovec v[16];
	struct msghdr m;
	ssize_t n;

	while (evbuffer_get_length(data) > 0) {
		memset(&m, 0, sizeof m);
		/* evbuffer_iovec is laid out as struct iovec on POSIX systems */
		m.msg_iov = (struct iovec *)v;
		m.msg_iovlen = (size_t)evbuffer_peek(data, -1, NULL, v, 16);
		if (m.msg_iovlen > 16)
			m.msg_iovlen = 16;
		n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
		evbuffer_drain(data, (size_t)n);
	}
	return 0;
}

void conn_send(struct conn *c, struct evbuffer *data)
{
	struct evbuffer *out;

	if (c->state != CONN_OPEN || c->pending_err != 0) {
		evbuffer_drain(data, evbuffer_get_length(data));
		return;
	}
	out = bufferevent_get_output(c->bev);
	if (c->ssl == NULL && evbuffer_get_length(out) == 0 && write_now(c, data) < 0) {
		int err = errno;

		evbuffer_drain(data, evbuffer_get_length(data));
		fail_later(c, err);
		return;
	}
	if (evbuffer_get_length(data) == 0)
		return;
	/* the rest waits for writability (TLS: OpenSSL's bufferevent writes
	 * at once itself and may fail inside this call: on_event defers it) */
	c->in_send = true;
	evbuffer_add_buffer(out, data);
	c->in_send = false;
}

/* --- getters ------------------------------------------------------------------------ */

enum conn_state conn_state(const struct conn *c)
{
	return c->state;
}

size_t conn_unsent(const struct conn *c)
{
	return c->bev != NULL ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

const char *conn_alpn(const struct conn *c)
{
	return c->state == CONN_OPEN && c->alpn[0] != '\0' ? c->alpn : NULL;
}

unsigned long conn_id(const struct conn *c)
{
	return c->id;
}
