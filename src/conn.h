/* conn: one upstream connection on a libevent bufferevent.  It owns the
 * socket, the non-blocking connect to an address the caller resolved and
 * checked, the TLS handshake (SNI, verification and host checking as tls.c
 * does them, ALPN) and the bytes in and out; it turns them into events for
 * its owner (a codec, a pool).  No timers, no retries: the fetch owns those. */
#ifndef FANOUTD_CONN_H
#define FANOUTD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct event_base;
struct evbuffer;

/* The life of a connection; conn_state() tells where it is. */
enum conn_state {
	CONN_CONNECTING,    /* the TCP connect is under way */
	CONN_HANDSHAKING,   /* connected; the TLS handshake is under way */
	CONN_OPEN,          /* bytes may flow */
	CONN_CLOSED,        /* failed, closed by the peer, or freed: no more events */
};

/* Why a connection failed (the error event).  Each has its own message. */
enum conn_error_kind {
	CONN_ERR_REFUSED,       /* ECONNREFUSED: "connection refused" */
	CONN_ERR_UNREACHABLE,   /* ENETUNREACH, EHOSTUNREACH: "host unreachable" */
	CONN_ERR_RESET,         /* ECONNRESET: "connection reset" */
	CONN_ERR_TIMEOUT,       /* ETIMEDOUT from the kernel, or the caller's own
	                         * timer (conn_error_text): "connection timed out" */
	CONN_ERR_TLS,           /* the handshake failed: tls_failure_message's text */
	CONN_ERR_ALPN,          /* the handshake failed: the server takes none of
	                         * the protocols ALPN offered (its alert's text) */
	CONN_ERR_OTHER,         /* any other errno: strerror */
};

/* An error event; message borrowed for the length of the callback. */
struct conn_error {
	enum conn_error_kind kind;
	int err;               /* the real errno (0 when there is none: TLS) */
	bool connecting;       /* before the connection was open (connect or
	                        * handshake) rather than on an open one */
	const char *message;   /* "connection refused", "certificate does not
	                        * match host", ... */
};

/* The events of a connection, to its owner.  After error or closed no
 * event follows.  Every callback may call conn_free (the memory is freed
 * from the loop later) and conn_send. */
struct conn_ops {
	/* open: connected and, with TLS, the handshake done.  alpn is the
	 * protocol the server selected ("http/1.1"), or NULL when it selected
	 * none (or the connection is plain TCP). */
	void (*connected)(void *ctx, const char *alpn);
	/* bytes arrived in `in`; the owner drains what it has used */
	void (*readable)(void *ctx, struct evbuffer *in);
	/* the connect, the handshake or the open connection failed */
	void (*error)(void *ctx, const struct conn_error *why);
	/* the peer closed the connection (EOF), idle or not */
	void (*closed)(void *ctx);
	/* optional (NULL: not told): what conn_send left waiting for
	 * writability has all been written */
	void (*drained)(void *ctx);
};

/* TLS for one connection; everything borrowed for the call to conn_open. */
struct conn_tls {
	SSL_CTX *ctx;             /* from tls_context() */
	const char *host;         /* SNI and the name (or IP) checked */
	bool verify;              /* as tls_context's verify */
	const char *const *alpn;  /* protocols to offer, NULL-terminated;
	                           * NULL: offer none */
};

/* Counters a group of connections shares (one upstream, say).  Plain
 * fields, owned by the caller, bumped by the connection layer. */
struct conn_counters {
	unsigned long opened;       /* connects started (a socket made) */
	unsigned long handshakes;   /* TLS handshakes completed */
};

struct conn;

/* Start connecting to addr (a resolved address with its port).  tls NULL:
 * plain TCP.  ops and counters (NULL: none) are borrowed and must outlive
 * the connection; ctx is passed to every callback.  Events come from the
 * loop, never from inside this call: an immediate failure (refused at
 * once) is reported by a later error event too.  NULL with errno set only
 * when no socket can be made (EMFILE, ENFILE ...) or TLS cannot be set up
 * (errno 0). */
struct conn *conn_open(struct event_base *base, const struct sockaddr *addr,
                       socklen_t addrlen, const struct conn_tls *tls,
                       const struct conn_ops *ops, void *ctx,
                       struct conn_counters *counters)
	__attribute__((warn_unused_result));

/* Close at once (the socket is closed now, no event follows) and free the
 * memory from the loop: safe from inside c's own callbacks.  NULL: no-op. */
void conn_free(struct conn *c);

/* Send all of data (drained): on a plain connection what the socket takes
 * is written at once, and only the rest waits for writability.  Only when
 * open; a write error comes back as an error event. */
void conn_send(struct conn *c, struct evbuffer *data);

enum conn_state conn_state(const struct conn *c);

/* Bytes conn_send has accepted that are not written to the socket yet. */
size_t conn_unsent(const struct conn *c);

/* The protocol ALPN selected, or NULL (plain TCP, none, not yet open). */
const char *conn_alpn(const struct conn *c);

/* The number that names c in the debug log ("127.0.0.1:8080 c5:"). */
unsigned long conn_id(const struct conn *c);

/* The error for errno err (ECONNREFUSED ...) and its message, as the
 * error event gives them; ETIMEDOUT is also what a caller's own connect
 * timer reports.  The message is static. */
enum conn_error_kind conn_error_kind_of(int err);
const char *conn_error_text(int err);

#endif
