/* check_conn: unit tests of the connection layer (src/conn.c) on real
 * sockets on 127.0.0.1: plain TCP against listeners the test opens itself
 * (round trip, refused, closed while idle, reset), and TLS against the
 * test upstream (tests/upstream --tls, $UPSTREAM) with a PKI made by the
 * openssl command, and against an in-process server that picks ALPN. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "conn.h"
#include "log.h"
#include "tls.h"

#define WAIT_MS 5000

/* --- what the connection told its owner ------------------------------------ */

struct record {
	int events;                  /* of every kind */
	int connected, closed, errors;
	char alpn[32];               /* "" for none */
	enum conn_error_kind kind;
	int err;
	bool connecting;
	char message[256];
	char data[4096];             /* everything readable delivered */
	size_t len;
	struct conn *free_on_event;  /* conn_free'd inside the callback */
};

static void on_connected(void *ctx, const char *alpn)
{
	struct record *r = ctx;

	r->events++;
	r->connected++;
	snprintf(r->alpn, sizeof r->alpn, "%s", alpn ? alpn : "");
}

static void on_readable(void *ctx, struct evbuffer *in)
{
	struct record *r = ctx;
	size_t n = evbuffer_get_length(in);

	if (n > sizeof r->data - 1 - r->len)
		n = sizeof r->data - 1 - r->len;
	evbuffer_remove(in, r->data + r->len, n);
	r->len += n;
	r->data[r->len] = '\0';
	r->events++;
}

static void on_error(void *ctx, const struct conn_error *why)
{
	struct record *r = ctx;

	r->events++;
	r->errors++;
	r->kind = why->kind;
	r->err = why->err;
	r->connecting = why->connecting;
	snprintf(r->message, sizeof r->message, "%s", why->message);
	conn_free(r->free_on_event);   /* the owner's usual reaction */
	r->free_on_event = NULL;
}

static void on_closed(void *ctx)
{
	struct record *r = ctx;

	r->events++;
	r->closed++;
	conn_free(r->free_on_event);
	r->free_on_event = NULL;
}

static const struct conn_ops ops = {
	.connected = on_connected, .readable = on_readable,
	.error = on_error, .closed = on_closed,
};

/* --- the loop ---------------------------------------------------------------- */

static struct event_base *base;
static struct conn_counters counters;

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Run the loop until *n passes `than` or WAIT_MS pass; true if it did. */
static bool wait_more(const int *n, int than)
{
	bool late = false;
	struct timeval tv = { WAIT_MS / 1000, 0 };
	struct event *t = evtimer_new(base, on_deadline, &late);

	evtimer_add(t, &tv);
	while (*n <= than && !late)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return *n > than;
}

/* Run the loop until r->data holds at least len bytes. */
static bool wait_data(struct record *r, size_t len)
{
	while (r->len < len)
		if (!wait_more(&r->events, r->events))
			return false;
	return true;
}

/* Free c and let the loop take its memory. */
static void drop(struct conn *c)
{
	conn_free(c);
	event_base_loop(base, EVLOOP_NONBLOCK);
}

static void setup_base(void)
{
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	memset(&counters, 0, sizeof counters);
}

static void teardown_base(void)
{
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	base = NULL;
}

/* --- plain TCP peers ------------------------------------------------------------ */

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

static int port_of(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

/* A socket bound to a free port on 127.0.0.1, listening if asked. */
static int bound_socket(bool listening, int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = loopback(0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	if (listening)
		ck_assert_int_eq(listen(fd, 8), 0);
	*port = port_of(fd);
	return fd;
}

static struct conn *open_plain(int port, struct record *r)
{
	struct sockaddr_in sin = loopback(port);
	struct conn *c = conn_open(base, (struct sockaddr *)&sin, sizeof sin, NULL, &ops, r,
	                           &counters);

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(r->events, 0);   /* nothing from inside conn_open */
	return c;
}

/* Connected to a listener of ours; *peer gets the accepted end. */
static struct conn *connect_plain(struct record *r, int *lfd, int *peer)
{
	int port;
	struct conn *c;

	*lfd = bound_socket(true, &port);
	c = open_plain(port, r);
	ck_assert_int_eq(conn_state(c), CONN_CONNECTING);
	ck_assert(wait_more(&r->connected, 0));
	ck_assert_int_eq(conn_state(c), CONN_OPEN);
	*peer = accept(*lfd, NULL, NULL);
	ck_assert_int_ge(*peer, 0);
	return c;
}

START_TEST(test_round_trip)
{
	struct record r = { 0 };
	struct evbuffer *b = evbuffer_new();
	char got[16] = "";
	int lfd, peer;
	struct conn *c = connect_plain(&r, &lfd, &peer);

	ck_assert_str_eq(r.alpn, "");
	ck_assert_ptr_null(conn_alpn(c));
	ck_assert_uint_eq(counters.opened, 1);
	ck_assert_uint_eq(counters.handshakes, 0);
	evbuffer_add(b, "ping", 4);
	conn_send(c, b);
	ck_assert_uint_eq(evbuffer_get_length(b), 0);   /* drained */
	/* out at once: the peer has it without the loop running */
	ck_assert_int_eq(read(peer, got, sizeof got), 4);
	ck_assert_str_eq(got, "ping");
	ck_assert_int_eq(write(peer, "pong!", 5), 5);
	ck_assert(wait_data(&r, 5));
	ck_assert_str_eq(r.data, "pong!");
	ck_assert_int_eq(r.errors + r.closed, 0);
	evbuffer_free(b);
	drop(c);
	close(peer);
	close(lfd);
}
END_TEST

/* A big write: what the socket does not take waits for writability. */
START_TEST(test_big_write)
{
	struct record r = { 0 };
	struct evbuffer *b = evbuffer_new();
	static char chunk[65536], sink[65536];
	size_t total = 0, want = 64 * sizeof chunk;
	int lfd, peer, i;
	struct conn *c = connect_plain(&r, &lfd, &peer);

	memset(chunk, 'x', sizeof chunk);
	for (i = 0; i < 64; i++)
		evbuffer_add(b, chunk, sizeof chunk);
	conn_send(c, b);
	ck_assert_int_ge(fcntl(peer, F_SETFL, O_NONBLOCK), 0);
	while (total < want) {
		ssize_t n = read(peer, sink, sizeof sink);

		if (n > 0)
			total += (size_t)n;
		else
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	ck_assert_uint_eq(total, want);
	ck_assert_int_eq(r.errors + r.closed, 0);
	evbuffer_free(b);
	drop(c);
	close(peer);
	close(lfd);
}
END_TEST

START_TEST(test_refused)
{
	struct record r = { 0 };
	int port, fd = bound_socket(false, &port);   /* bound, never listening */
	struct conn *c;

	c = open_plain(port, &r);
	r.free_on_event = c;   /* freed inside its own error callback */
	ck_assert(wait_more(&r.errors, 0));
	ck_assert_int_eq(r.kind, CONN_ERR_REFUSED);
	ck_assert_int_eq(r.err, ECONNREFUSED);
	ck_assert_str_eq(r.message, "connection refused");
	ck_assert(r.connecting);
	ck_assert_int_eq(r.connected, 0);
	ck_assert_uint_eq(counters.opened, 1);
	event_base_loop(base, EVLOOP_NONBLOCK);   /* takes the memory */
	close(fd);
}
END_TEST

START_TEST(test_closed_while_idle)
{
	struct record r = { 0 };
	int lfd, peer;
	struct conn *c = connect_plain(&r, &lfd, &peer);

	/* a request and its answer first: the events stay on after them */
	ck_assert_int_eq(write(peer, "x", 1), 1);
	ck_assert(wait_data(&r, 1));
	close(peer);
	ck_assert(wait_more(&r.closed, 0));
	ck_assert_int_eq(r.errors, 0);
	ck_assert_int_eq(conn_state(c), CONN_CLOSED);
	drop(c);
	close(lfd);
}
END_TEST

START_TEST(test_reset)
{
	struct record r = { 0 };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int lfd, peer;
	struct conn *c = connect_plain(&r, &lfd, &peer);

	ck_assert_int_eq(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	close(peer);   /* an RST, not a FIN */
	ck_assert(wait_more(&r.errors, 0));
	ck_assert_int_eq(r.kind, CONN_ERR_RESET);
	ck_assert_int_eq(r.err, ECONNRESET);
	ck_assert_str_eq(r.message, "connection reset");
	ck_assert(!r.connecting);
	ck_assert_int_eq(r.closed, 0);
	drop(c);
	close(lfd);
}
END_TEST

/* The RST is there before the loop has seen it, and a write meets it
 * first: the write consumes the socket's error, the read that follows
 * sees only EOF.  Still a reset, not "closed by the peer". */
START_TEST(test_send_after_reset)
{
	struct record r = { 0 };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct evbuffer *b = evbuffer_new();
	int lfd, peer;
	struct conn *c = connect_plain(&r, &lfd, &peer);

	ck_assert_int_eq(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	close(peer);
	usleep(50 * 1000);   /* the RST arrives; the loop does not run */
	evbuffer_add(b, "ping", 4);
	conn_send(c, b);
	ck_assert_int_eq(r.errors + r.closed, 0);   /* nothing from inside conn_send */
	ck_assert(wait_more(&r.errors, 0));
	ck_assert_int_eq(r.kind, CONN_ERR_RESET);
	ck_assert_int_eq(r.err, ECONNRESET);
	ck_assert_int_eq(r.closed, 0);
	evbuffer_free(b);
	drop(c);
	close(lfd);
}
END_TEST

/* A connect that fails inside connect() itself (no route to the
 * broadcast address here: nothing is sent) is still reported from the
 * loop, with connect()'s own errno.  Where connect() does not fail at
 * once, there is nothing to test. */
START_TEST(test_failed_at_once)
{
	struct record r = { 0 };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };
	int probe = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), e;
	struct conn *c;

	sin.sin_addr.s_addr = htonl(INADDR_BROADCAST);
	e = connect(probe, (struct sockaddr *)&sin, sizeof sin) < 0 ? errno : 0;
	close(probe);
	if (e == 0 || e == EINPROGRESS)
		return;
	c = conn_open(base, (struct sockaddr *)&sin, sizeof sin, NULL, &ops, &r, &counters);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(r.events, 0);   /* not from inside conn_open */
	ck_assert(wait_more(&r.errors, 0));
	ck_assert_int_eq(r.err, e);
	ck_assert_int_eq(r.kind, conn_error_kind_of(e));
	ck_assert_str_eq(r.message, conn_error_text(e));
	ck_assert(r.connecting);
	drop(c);
}
END_TEST

START_TEST(test_error_texts)
{
	ck_assert_str_eq(conn_error_text(EHOSTUNREACH), "host unreachable");
	ck_assert_int_eq(conn_error_kind_of(ENETUNREACH), CONN_ERR_UNREACHABLE);
	ck_assert_str_eq(conn_error_text(ETIMEDOUT), "connection timed out");
	ck_assert_int_eq(conn_error_kind_of(ETIMEDOUT), CONN_ERR_TIMEOUT);
	ck_assert_str_eq(conn_error_text(EADDRNOTAVAIL), strerror(EADDRNOTAVAIL));
	ck_assert_int_eq(conn_error_kind_of(EADDRNOTAVAIL), CONN_ERR_OTHER);
}
END_TEST

/* --- TLS ------------------------------------------------------------------------- */

static char pki[64];              /* temp dir: ca.pem, good.pem, good.key */
static pid_t upstream_pid = -1;   /* tests/upstream --tls, ours to kill */
static int upstream_port;

static const char *upstream_bin(void)
{
	const char *u = getenv("UPSTREAM");

	return u != NULL && u[0] != '\0' ? u : "tests/upstream";
}

static void pki_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", pki, name);
}

/* A CA and a certificate it signed for localhost and 127.0.0.1, as
 * tests/t_tls.py makes them. */
static bool make_pki(void)
{
	static const char *const steps[] = {
		"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
		" -keyout ca.key -out ca.pem -days 2 -subj '/CN=check_conn CA'",
		"openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
		" -keyout good.key -out good.csr -subj /CN=localhost",
		"printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > good.ext",
		"openssl x509 -req -in good.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
		" -out good.pem -days 2 -extfile good.ext",
	};
	char cmd[512];
	size_t i;

	snprintf(pki, sizeof pki, "/tmp/check_conn.XXXXXX");
	if (mkdtemp(pki) == NULL)
		return false;
	for (i = 0; i < sizeof steps / sizeof *steps; i++) {
		snprintf(cmd, sizeof cmd, "cd '%s' && (%s) >/dev/null 2>&1", pki, steps[i]);
		if (system(cmd) != 0)
			return false;
	}
	return true;
}

/* The port the upstream printed, or 0. */
static int read_port(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char line[32];
	size_t n = 0;
	ssize_t got;

	while (n < sizeof line - 1 && poll(&p, 1, 10000) == 1) {
		got = read(fd, line + n, 1);
		if (got <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	return atoi(line);
}

/* Unchecked fixture (in the parent, so its teardown runs whatever the
 * tests do): the PKI and one upstream serving good.pem. */
static void start_upstream(void)
{
	char cert[128], key[128];
	int p[2];

	if (!make_pki() || pipe(p) < 0)
		return;
	pki_path(cert, sizeof cert, "good.pem");
	pki_path(key, sizeof key, "good.key");
	upstream_pid = fork();
	if (upstream_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive the test */
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		close(p[1]);
		execl(upstream_bin(), upstream_bin(), "--listen", "127.0.0.1:0", "--tls", cert,
		      key, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if (upstream_pid > 0)
		upstream_port = read_port(p[0]);
	close(p[0]);
}

static void stop_upstream(void)
{
	char cmd[128];

	if (upstream_pid > 0) {
		kill(upstream_pid, SIGTERM);
		waitpid(upstream_pid, NULL, 0);
	}
	upstream_pid = -1;
	if (pki[0] != '\0') {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", pki);
		if (system(cmd) != 0)
			fprintf(stderr, "check_conn: cannot remove %s\n", pki);
	}
}

static const char *const offer_h1[] = { "http/1.1", NULL };

/* A TLS connection to port with this host name and trust. */
static struct conn *open_tls(struct tls_cache *tc, int port, const char *host,
                             bool use_ca, struct record *r)
{
	char ca[128], err[256] = "";
	struct conn_tls tls = { .host = host, .verify = true, .alpn = offer_h1 };
	struct sockaddr_in sin = loopback(port);
	struct conn *c;

	ck_assert_int_gt(port, 0);
	pki_path(ca, sizeof ca, "ca.pem");
	tls.ctx = tls_context(tc, true, use_ca ? ca : NULL, err, sizeof err);
	ck_assert_msg(tls.ctx != NULL, "%s", err);
	c = conn_open(base, (struct sockaddr *)&sin, sizeof sin, &tls, &ops, r, &counters);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(r->events, 0);
	return c;
}

#define REQUEST "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

START_TEST(test_tls_ok)
{
	struct tls_cache *tc = tls_cache_new();
	struct record r = { 0 };
	struct evbuffer *b = evbuffer_new();
	struct conn *c = open_tls(tc, upstream_port, "localhost", true, &r);

	ck_assert(wait_more(&r.events, 0));
	ck_assert_msg(r.connected == 1, "not connected: %s", r.message);
	ck_assert_int_eq(conn_state(c), CONN_OPEN);
	ck_assert_str_eq(r.alpn, "");   /* the upstream selects no protocol */
	ck_assert_ptr_null(conn_alpn(c));
	ck_assert_uint_eq(counters.opened, 1);
	ck_assert_uint_eq(counters.handshakes, 1);
	evbuffer_add(b, REQUEST, strlen(REQUEST));
	conn_send(c, b);
	ck_assert(wait_data(&r, 9));
	ck_assert_msg(strncmp(r.data, "HTTP/1.1 ", 9) == 0, "got %s", r.data);
	ck_assert(wait_more(&r.closed, 0));   /* Connection: close, no close_notify needed */
	ck_assert_int_eq(r.errors, 0);
	evbuffer_free(b);
	drop(c);
	tls_cache_free(tc);
}
END_TEST

START_TEST(test_tls_ip_host)
{
	struct tls_cache *tc = tls_cache_new();
	struct record r = { 0 };
	struct conn *c = open_tls(tc, upstream_port, "127.0.0.1", true, &r);

	ck_assert(wait_more(&r.events, 0));
	ck_assert_msg(r.connected == 1, "not connected: %s", r.message);
	drop(c);
	tls_cache_free(tc);
}
END_TEST

START_TEST(test_tls_wrong_host)
{
	struct tls_cache *tc = tls_cache_new();
	struct record r = { 0 };
	struct conn *c = open_tls(tc, upstream_port, "other.example", true, &r);

	r.free_on_event = c;
	ck_assert(wait_more(&r.events, 0));
	ck_assert_int_eq(r.errors, 1);
	ck_assert_int_eq(r.kind, CONN_ERR_TLS);
	ck_assert_str_eq(r.message, "certificate does not match host");
	ck_assert(r.connecting);
	ck_assert_uint_eq(counters.handshakes, 0);
	event_base_loop(base, EVLOOP_NONBLOCK);
	tls_cache_free(tc);
}
END_TEST

START_TEST(test_tls_untrusted)
{
	struct tls_cache *tc = tls_cache_new();
	struct record r = { 0 };
	struct conn *c = open_tls(tc, upstream_port, "localhost", false, &r);   /* system store */

	ck_assert(wait_more(&r.events, 0));
	ck_assert_int_eq(r.errors, 1);
	ck_assert_int_eq(r.kind, CONN_ERR_TLS);
	ck_assert_msg(strncmp(r.message, "untrusted certificate (", 23) == 0, "got %s",
	              r.message);
	ck_assert_int_eq(conn_state(c), CONN_CLOSED);
	drop(c);
	tls_cache_free(tc);
}
END_TEST

/* An in-process TLS server (same loop) that selects http/1.1 by ALPN. */
struct alpn_server {
	int lfd;
	struct event *accept_ev;
	SSL_CTX *ctx;
	struct bufferevent *bev;
};

static int select_h1(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned inlen, void *arg)
{
	static const unsigned char h1[] = "\x08http/1.1";

	(void)ssl;
	(void)arg;
	return SSL_select_next_proto((unsigned char **)out, outlen, h1, sizeof h1 - 1, in,
	                             inlen) == OPENSSL_NPN_NEGOTIATED
	       ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_NOACK;
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct alpn_server *s = arg;
	int fd = accept(lfd, NULL, NULL);

	(void)what;
	ck_assert_int_ge(fd, 0);
	evutil_make_socket_nonblocking(fd);
	s->bev = bufferevent_openssl_socket_new(base, fd, SSL_new(s->ctx),
	                                        BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(s->bev);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void alpn_server_start(struct alpn_server *s, int *port)
{
	char cert[128], key[128];

	pki_path(cert, sizeof cert, "good.pem");
	pki_path(key, sizeof key, "good.key");
	s->ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(s->ctx, cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(s->ctx, key, SSL_FILETYPE_PEM), 1);
	SSL_CTX_set_alpn_select_cb(s->ctx, select_h1, NULL);
	s->lfd = bound_socket(true, port);
	s->accept_ev = event_new(base, s->lfd, EV_READ, on_accept, s);
	event_add(s->accept_ev, NULL);
}

static void alpn_server_stop(struct alpn_server *s)
{
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	event_free(s->accept_ev);
	close(s->lfd);
	SSL_CTX_free(s->ctx);
}

START_TEST(test_tls_alpn_selected)
{
	struct tls_cache *tc = tls_cache_new();
	struct alpn_server s = { 0 };
	struct record r = { 0 };
	struct conn *c;
	int port;

	alpn_server_start(&s, &port);
	c = open_tls(tc, port, "localhost", true, &r);
	ck_assert(wait_more(&r.events, 0));
	ck_assert_msg(r.connected == 1, "not connected: %s", r.message);
	ck_assert_str_eq(r.alpn, "http/1.1");
	ck_assert_str_eq(conn_alpn(c), "http/1.1");
	ck_assert_uint_eq(counters.handshakes, 1);
	drop(c);
	alpn_server_stop(&s);
	tls_cache_free(tc);
}
END_TEST

/* The TLS tests need the upstream binary: without it they are skipped
 * (said on stderr), not failed. */
static void add_tls_tests(Suite *s)
{
	TCase *tc;

	if (access(upstream_bin(), X_OK) != 0) {
		fprintf(stderr, "check_conn: no %s: TLS tests skipped\n", upstream_bin());
		return;
	}
	tc = tcase_create("tls");
	tcase_add_unchecked_fixture(tc, start_upstream, stop_upstream);
	tcase_add_checked_fixture(tc, setup_base, teardown_base);
	tcase_add_test(tc, test_tls_ok);
	tcase_add_test(tc, test_tls_ip_host);
	tcase_add_test(tc, test_tls_wrong_host);
	tcase_add_test(tc, test_tls_untrusted);
	tcase_add_test(tc, test_tls_alpn_selected);
	suite_add_tcase(s, tc);
}

int main(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("tcp");
	SRunner *sr;
	int failed;

	if (getenv("CHECK_CONN_DEBUG") != NULL)   /* the connections' traces */
		log_set_level(LOG_LEVEL_DEBUG);
	tcase_add_checked_fixture(tc, setup_base, teardown_base);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_big_write);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_closed_while_idle);
	tcase_add_test(tc, test_reset);
	tcase_add_test(tc, test_send_after_reset);
	tcase_add_test(tc, test_failed_at_once);
	tcase_add_test(tc, test_error_texts);
	suite_add_tcase(s, tc);
	add_tls_tests(s);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
