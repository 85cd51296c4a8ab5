/* upstream_h2: the HTTP/2 side of the test upstream (tests/upstream.c), on
 * libnghttp2's server session (1.52, the ssize_t API), and what the two
 * sides share: the /stats counters and a few helpers of upstream.c.  The h1
 * side accepts every connection; once the client preface (plain TCP) or
 * ALPN (TLS) says HTTP/2 it hands the socket over with upstream_h2_adopt. */
#ifndef FANOUTD_TESTS_UPSTREAM_H2_H
#define FANOUTD_TESTS_UPSTREAM_H2_H

#include <stddef.h>

#include <openssl/ssl.h>

struct bufferevent;
struct event_base;
struct evbuffer;

/* The /stats counters, one set for both protocols (meanings: the comment at
 * the top of upstream.c). */
struct upstream_stats {
	long long requests, in_flight, max_in_flight;
	long long connections, open_connections, aborted, handshakes;
	long long streams_max_per_conn, h2_connections, goaways_sent;
	long long rst_received;
	unsigned generation;            /* bumped by /stats/reset */
};

/* Defined in upstream.c, shared so both sides parse, echo and count alike. */
int parse_num(const char *s, long long max, long long *out);
int query_param(const char *target, const char *key, char *out, size_t outlen);
void json_text(struct evbuffer *o, const char *s);
void echo_body(struct evbuffer *o, struct evbuffer *body);
void stats_json(struct evbuffer *o, const struct upstream_stats *st);
void stats_reset(struct upstream_stats *st);     /* and the flaky table */

/* /stats*, /count/KEY: not counted, no ?delay, the observer rule. */
int is_observer_path(const char *path);

/* /flaky/KEY, /tail/KEY, /count/KEY, /time: one table for both protocols. */
#define RETRY_AFTER_MAX 256             /* a Retry-After value, with NUL */
double wall_ms(void);                   /* ms since the epoch, fractional */
/* Looks KEY up in TARGET's query and URL-decodes it ('+' is a space) into
 * OUT for use as a header value: 1 if present, 0 if absent, -1 if it has a
 * bad %-escape or a control character. */
int query_header_param(const char *target, const char *key, char *out,
		       size_t outlen);
/* A request on PATH arrived at NOW (wall_ms): if PATH is /flaky/KEY or
 * /tail/KEY with a good KEY, counts it, sets *ATTEMPT (1, 2, ...) and
 * returns a handle > 0 that flaky_leave must get once the request is
 * answered or gone; else 0 (neither, or a bad key) or -1 (table full),
 * nothing to leave. */
long flaky_arrive(const char *path, double now, long long *attempt);
void flaky_leave(long handle);          /* ignores handles <= 0 */
/* The answer to /flaky/KEY (TARGET: its whole target, for the query). */
struct flaky_reply {
	int code;                       /* 0: reset instead of answering */
	const char *ctype;              /* NULL with no_body */
	int no_body;                    /* 204/304 */
	char body[160];
	size_t len;
	char retry_after[RETRY_AFTER_MAX];  /* "" for none */
};
void flaky_reply(const char *target, const char *key, long handle,
		 long long attempt, struct flaky_reply *r);
/* The answer to /tail/KEY (flaky_arrive's HANDLE and ATTEMPT): a 400 to
 * send at once, or the 200 to send after *WAIT_MS. */
void tail_reply(const char *target, const char *key, long handle,
		long long attempt, struct flaky_reply *r, long long *wait_ms);
/* /count/KEY's JSON, or -1 (nothing added) for a bad KEY. */
int count_json(struct evbuffer *o, const char *key);
void time_json(struct evbuffer *o, double ms);  /* /time */

struct upstream_h2_opts {
	int h2_only;                    /* --h2-only: never HTTP/1.1 */
	unsigned max_streams;           /* --max-streams (SETTINGS) */
	long long goaway_after;         /* --goaway-after N (0: never) */
};

/* Where an adopted connection stands in the counters: the h1 side counted
 * it in connections (and open_connections if IN_OPEN) in generation GEN,
 * and in handshakes in generation HS_GEN if HANDSHAKEN. */
struct upstream_h2_origin {
	int in_open;
	unsigned gen;
	int handshaken;
	unsigned hs_gen;
};

struct upstream_h2;

/* NULL if out of memory.  ST is borrowed and must outlive the result. */
struct upstream_h2 *upstream_h2_new(struct event_base *base,
				    struct upstream_stats *st,
				    const struct upstream_h2_opts *opts)
	__attribute__((warn_unused_result));
/* Closes every HTTP/2 connection (not counted as aborted) and frees H2. */
void upstream_h2_free(struct upstream_h2 *h2);

/* Offers ALPN "h2" (and "http/1.1" unless h2_only) on CTX's handshakes. */
void upstream_h2_offer_alpn(struct upstream_h2 *h2, SSL_CTX *ctx);
/* After the handshake: does this connection speak HTTP/2? */
int upstream_h2_alpn_chose_h2(const struct upstream_h2 *h2, SSL *ssl);

/* Plain TCP: do the bytes in IN so far start with the client preface? */
enum upstream_h2_sniff {
	UPSTREAM_H2_SNIFF_MORE,         /* a prefix of it: wait for more */
	UPSTREAM_H2_SNIFF_H1,           /* not the preface: HTTP/1.1 */
	UPSTREAM_H2_SNIFF_H2            /* the whole preface */
};
enum upstream_h2_sniff upstream_h2_sniff(struct evbuffer *in);

/* Takes BEV (and any bytes in its input buffer) in every case, with its
 * place in the counters; on failure the connection is closed. */
void upstream_h2_adopt(struct upstream_h2 *h2, struct bufferevent *bev,
		       const struct upstream_h2_origin *origin);

#endif
