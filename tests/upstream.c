/*
 * upstream.c - the test upstream that fanoutd's integration tests start.
 *
 * A small single-threaded HTTP/1.1 (or, with --tls, HTTPS) server written on
 * raw libevent bufferevents rather than evhttp, because several endpoints
 * misbehave on purpose and need byte-level control of the socket.
 *
 *   upstream [--listen ADDR:PORT] [--tls CERT.pem KEY.pem] [--files DIR]
 *            [--h2 [--h2-only] [--max-streams N] [--goaway-after N]]
 *
 * Listens on 127.0.0.1:0 by default ("[::1]:0" works too), prints the actual
 * port and "\n" on stdout (the only thing ever printed there), and serves
 * until SIGTERM/SIGINT, then frees everything and exits 0.  --files DIR is
 * where /file/NAME reads its files.
 *
 * --h2 adds HTTP/2 (tests/upstream_h2.c).  On plain TCP a connection that
 * opens with the client preface speaks h2c (prior knowledge); any other
 * speaks HTTP/1.1 as before, so an h1 client can still read /stats.  With
 * --tls, ALPN offers "h2" and "http/1.1" and the choice is spoken (no ALPN:
 * HTTP/1.1).  --h2-only (implies --h2): plain TCP is always h2, and ALPN
 * offers only "h2" (a client offering only others gets the alert
 * no_application_protocol; one offering none gets h2).  --max-streams N is
 * the SETTINGS_MAX_CONCURRENT_STREAMS sent (default 100).  --goaway-after N:
 * an h2 connection takes on N streams; once the Nth has been answered it
 * sends GOAWAY(NO_ERROR, last_stream_id = that stream), the streams above it
 * are never processed (nor counted), and it closes when the rest are done.
 *
 * Endpoints (a query string may follow; "?delay=MS" delays any answer except
 * /stats, /stats/reset and /count/KEY by MS first):
 *   /delay/MS      200 {"delay":MS} after MS milliseconds
 *   /status/CODE   CODE (200..599), "status CODE\n"; ?retry_after=R adds
 *                  "Retry-After: R" with R URL-decoded ('+' is a space) and
 *                  otherwise verbatim ("1", "0.5", or an HTTP-date given as
 *                  Wed%2C%2021%20Oct%202015%2007%3A28%3A00%20GMT; empty:
 *                  none; 400 for a bad %-escape or a control character);
 *                  3xx adds Location: /json; 204/304 have no body
 *   /flaky/KEY     ?fail=N&status=S&retry_after=R&reset=1: the first N
 *                  requests with this KEY (any method; default N = 0) get S
 *                  (200..599, default 503) with "flaky KEY attempt I\n"
 *                  (no body for 204/304) and, if given, Retry-After R as for
 *                  /status; with reset=1 they get a TCP reset as /reset does
 *                  instead.  Later ones get 200 {"key":"KEY","attempt":I}.
 *                  I counts from 1 per KEY, at arrival (before ?delay, so
 *                  ?delay=MS makes each attempt answer MS later).  KEY: 1..64
 *                  of [A-Za-z0-9_-], else 400 "bad key"; at most 4096 keys
 *                  (400 "too many flaky keys" beyond)
 *   /tail/KEY      ?every=N&slow=MS&base=MS: a fixed share of slow answers,
 *                  for hedging.  Attempt I (counted as for /flaky, in the
 *                  same table: /flaky/K and /tail/K are one KEY) is slow
 *                  when I % N == 0 (N >= 1, default 20: 5 %) and answers
 *                  200 {"key":"KEY","attempt":I,"slow":true} after slow ms
 *                  (default 500); the others answer "slow":false after base
 *                  ms (default 0).  ?delay=MS comes on top of either.  A bad
 *                  number: 400 "bad every, slow or base"
 *   /count/KEY     {"key":"KEY","count":C,"times_ms":[T,...],
 *                  "max_in_flight":M}: the /flaky/KEY and /tail/KEY requests
 *                  seen, the wall-clock arrival time of the last (at most) 64
 *                  of them, oldest first (ms since the epoch, 0.1 ms
 *                  resolution), and the most of them in flight at once
 *                  (arrival to answered, reset or closed).  Not counted in
 *                  /stats, like /stats
 *   /time          {"now_ms":T}: the wall-clock ms since the epoch (0.1 ms
 *                  resolution) at which this request arrived (before ?delay)
 *   /hang          never answers
 *   /reset         TCP reset (SO_LINGER 0), no bytes
 *   /garbage       "this is not http\r\n\r\n", then close
 *   /bytes/N       N bytes of a..z repeated (N <= 64 MiB)
 *   /binary        the 256 bytes 0x00..0xff
 *   /json          {"name":"Ada","n":[1,2,3]}
 *   /chunked       "hello, chunked world" in 3 chunks, a few ms apart
 *   /headers       "ok" with X-Dup: a, X-Dup: b, X-Mixed-Case: Value
 *   /echo          the request as JSON (method, path, headers, body or
 *                  body_base64 when the body is not UTF-8)
 *   /close         "bye" with Connection: close, then close
 *   /badlength     Content-Length: 100 but 10 bytes, then close
 *   /overlong      "hello" (Content-Length: 5) and, in the same write, a whole
 *                  second answer "forged" (with X-Forged: yes) nobody asked
 *                  for; the connection stays open
 *   /twolengths    Content-Length: 5 and Content-Length: 6, body "hello!"
 *   /earlyhints    three 103 Early Hints (Link: </a.css>; rel=preload), then
 *                  200 "final answer" with X-Final: 1
 *   /badchunk      chunked, with the chunk size line "zz"
 *   /negativelength  Content-Length: -1, body "hello"
 *   /status2000    the status line "HTTP/1.1 2000 OK", body "ok"
 *                  (these six write raw bytes and keep the connection open)
 *   /file/NAME     the bytes of NAME in the --files directory (a plain name:
 *                  no '/', not starting with '.'; 404 if absent), as
 *                  text/plain; ?ce=CODING adds Content-Encoding: CODING
 *                  verbatim; ?chunked=1 sends it chunked (100-byte chunks)
 *                  instead of with Content-Length
 *   /stats         the counters below, as JSON
 *   /stats/reset   zero the counters, answers {}
 *   anything else  404 "not found\n"
 * A malformed request (bad request line or header, head over 64 KiB) gets
 * 400 and the connection is closed.
 *
 * In h2 mode the endpoints are /delay, /status, /hang, /bytes, /json, /echo,
 * /flaky (reset=1: RST_STREAM INTERNAL_ERROR), /tail, /count, /time, /stats,
 * /stats/reset and ?delay=MS as above, sharing the /flaky table with h1
 * (/echo adds "authority",
 * "scheme" and "protocol":"h2"; its "headers" leave out pseudo-headers),
 * anything else 404, plus these faults:
 *   /rst/CODE      RST_STREAM with error code CODE (decimal), no HEADERS
 *   /rst-after-head/CODE  HEADERS 200, DATA "partial", then RST_STREAM CODE
 *   /goaway        GOAWAY(NO_ERROR, last_stream_id = this stream - 2, the
 *                  client's stream before it: nghttp2 refuses an even id);
 *                  this stream is never answered; the connection closes once
 *                  the streams below it are done
 *   /badheader     200 "ok" with the header "X-Bad-Case: yes": an upper-case
 *                  name, which an nghttp2 client resets with PROTOCOL_ERROR
 *
 * Counters (/stats):
 *   requests          requests (headers complete) on paths other than /stats*
 *   in_flight         of those, not yet fully answered and not closed
 *   max_in_flight     the highest in_flight seen (reset to the current value)
 *   connections       TCP connections accepted
 *   open_connections  TCP connections currently open
 *   aborted           requests whose client closed before the full answer
 *   handshakes        completed TLS handshakes
 *   streams_max_per_conn  the most h2 streams open at once on one connection
 *   h2_connections    connections that spoke h2
 *   goaways_sent      GOAWAY frames sent
 *   rst_received      RST_STREAM frames received
 * In h2 mode a request is a stream: counted once its HEADERS are in, aborted
 * if the client resets it or the connection closes before the whole answer
 * (a stream our GOAWAY or RST_STREAM ends is not aborted).
 * A connection whose FIRST request is /stats, /stats/reset or /count/KEY is
 * the test's observer: it is taken back out of connections,
 * open_connections, handshakes and h2_connections, so a test that reads
 * /stats on a fresh connection sees only the connections fanoutd made.
 * /stats/reset zeroes the totals (streams_max_per_conn too); the gauges
 * (in_flight, open_connections) keep their current values.  It also empties
 * the /flaky table: every KEY's attempts, count and times start over (a key
 * with requests in flight keeps them, and its max_in_flight restarts from
 * them).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* strndup, strcasecmp, suseconds_t under -std=c11 */
#endif
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "upstream_h2.h"

#define MAX_HEAD        (64 * 1024)          /* request line + headers */
#define MAX_BODY        (64 * 1024 * 1024)   /* request body */
#define MAX_BYTES       (64LL * 1024 * 1024) /* /bytes/N */
#define MAX_DELAY_MS    (3600LL * 1000)
#define CHUNK_GAP_MS    5                    /* pause between /chunked parts */
#define LINGER_SECONDS  2                    /* wait for EOF after a 400 */
#define PATTERN_LEN     (26 * 2521)          /* ~64 KiB of a..z, whole cycles */
#define REFILL_CHUNKS   16                   /* /bytes: pattern refs per refill */
#define FILE_CHUNK      100                  /* /file/NAME?chunked=1: chunk size */

static char pattern[PATTERN_LEN];
static const char *files_dir;       /* --files: what /file/NAME serves */

struct server {
	struct event_base *base;
	struct evconnlistener *listener;
	SSL_CTX *ssl_ctx;
	struct event *sig_term, *sig_int;
	TAILQ_HEAD(conn_list, conn) conns;
	struct upstream_stats st;
	struct upstream_h2 *h2;         /* --h2, else NULL */
	int h2_only;                    /* --h2-only */
};

struct header {
	char *name;                     /* lower-cased */
	char *value;
};

struct request {
	char *method, *target, *path;   /* path = target without the query */
	int minor;                      /* HTTP/1.minor */
	struct header *hdrs;
	size_t nhdrs, cap;
	size_t head_bytes;
	struct evbuffer *body;
	uint64_t body_left;             /* Content-Length or chunk bytes to go */
	int is_head;
	int counted;                    /* in requests/in_flight, not answered */
	double arrived_ms;              /* wall clock at dispatch (before ?delay) */
	long flaky;                     /* flaky_arrive's handle, or <= 0 */
	long long attempt;              /* ...and the attempt number it gave */
};

enum conn_state {
	ST_HEAD,        /* reading the request line and headers */
	ST_BODY,        /* reading a Content-Length body */
	ST_CHUNK_SIZE,  /* chunked body: size line */
	ST_CHUNK_DATA,  /* chunked body: data */
	ST_CHUNK_CRLF,  /* chunked body: CRLF after the data */
	ST_TRAILERS,    /* chunked body: trailer lines up to the empty one */
	ST_RESPOND,     /* request complete, answer pending or being written */
	ST_CLOSING      /* answer written, waiting for the client's EOF */
};

struct conn {
	struct server *srv;
	struct bufferevent *bev;
	TAILQ_ENTRY(conn) link;
	enum conn_state state;
	struct request req;
	int is_tls;
	int nrequests;                  /* requests seen on this connection */
	int sniff_h2;                   /* --h2 on plain TCP: preface or h1? */

	/* stats bookkeeping for the observer rule */
	int in_open;
	unsigned gen, hs_gen;
	int handshaken;

	/* answer in progress */
	struct event *timer;
	void (*on_timer)(struct conn *);
	long long delay_ms;
	int chunk_step;
	long long stream_left;          /* /bytes: bytes still to queue */
	int finishing;                  /* all queued: done when output drains */
	int close_after;                /* close once the answer is written */
	int drop_next;                  /* /stale: close on the next request */
	int linger;                     /* ...but wait for the client's EOF */
};

static void process_input(struct conn *c);

/* ---------------------------------------------------------------- utils */

int parse_num(const char *s, long long max, long long *out)
{
	long long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

/* Looks up KEY in the query string of TARGET.  Returns 1 and copies the value
 * to OUT if present (an over-long value is copied as ""), else 0. */
int query_param(const char *target, const char *key, char *out,
		size_t outlen)
{
	const char *p = strchr(target, '?');
	size_t klen = strlen(key);

	if (!p)
		return 0;
	for (p++; *p;) {
		const char *end = strchr(p, '&');

		if (!end)
			end = p + strlen(p);
		if ((size_t)(end - p) > klen && !strncmp(p, key, klen) &&
		    p[klen] == '=') {
			size_t vlen = (size_t)(end - p) - klen - 1;

			if (vlen >= outlen)
				vlen = 0;
			memcpy(out, p + klen + 1, vlen);
			out[vlen] = '\0';
			return 1;
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

static int is_tchar(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int is_token(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Does the comma-separated header value LIST contain TOKEN? */
static int has_token(const char *list, const char *token)
{
	size_t tlen = strlen(token);

	while (*list) {
		while (*list == ' ' || *list == '\t' || *list == ',')
			list++;
		size_t n = strcspn(list, ",");
		size_t m = n;
		while (m && (list[m - 1] == ' ' || list[m - 1] == '\t'))
			m--;
		if (m == tlen && !strncasecmp(list, token, tlen))
			return 1;
		list += n;
	}
	return 0;
}

static int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned ch = s[i];
		size_t len;
		unsigned cp;

		if (ch < 0x80) {
			i++;
			continue;
		} else if (ch >= 0xc2 && ch <= 0xdf) {
			len = 2, cp = ch & 0x1f;
		} else if (ch >= 0xe0 && ch <= 0xef) {
			len = 3, cp = ch & 0x0f;
		} else if (ch >= 0xf0 && ch <= 0xf4) {
			len = 4, cp = ch & 0x07;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += len;
	}
	return 1;
}

/* Appends S as a JSON string.  S must be valid UTF-8 unless LATIN1 is set,
 * in which case every byte >= 0x80 is emitted as \u00XX. */
static void json_str(struct evbuffer *o, const char *str, size_t n, int latin1)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t run = 0;     /* start of the pending run of plain bytes */

	evbuffer_add(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned ch = s[i];
		const char *esc = NULL;

		switch (ch) {
		case '"':  esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default:
			if (ch >= 0x20 && ch != 0x7f && (ch < 0x80 || !latin1))
				continue;
		}
		evbuffer_add(o, s + run, i - run);
		run = i + 1;
		if (esc)
			evbuffer_add(o, esc, strlen(esc));
		else
			evbuffer_add_printf(o, "\\u%04x", ch);
	}
	evbuffer_add(o, s + run, n - run);
	evbuffer_add(o, "\"", 1);
}

void json_text(struct evbuffer *o, const char *s)
{
	size_t n = strlen(s);

	json_str(o, s, n, !utf8_valid((const unsigned char *)s, n));
}

static const char *reason(int code)
{
	static const struct { int code; const char *text; } tab[] = {
		{100, "Continue"}, {200, "OK"}, {201, "Created"},
		{202, "Accepted"}, {204, "No Content"}, {205, "Reset Content"},
		{206, "Partial Content"}, {300, "Multiple Choices"},
		{301, "Moved Permanently"}, {302, "Found"}, {303, "See Other"},
		{304, "Not Modified"}, {307, "Temporary Redirect"},
		{308, "Permanent Redirect"}, {400, "Bad Request"},
		{401, "Unauthorized"}, {402, "Payment Required"},
		{403, "Forbidden"}, {404, "Not Found"},
		{405, "Method Not Allowed"}, {406, "Not Acceptable"},
		{408, "Request Timeout"}, {409, "Conflict"}, {410, "Gone"},
		{411, "Length Required"}, {413, "Content Too Large"},
		{414, "URI Too Long"}, {415, "Unsupported Media Type"},
		{418, "I'm a teapot"}, {422, "Unprocessable Content"},
		{429, "Too Many Requests"}, {500, "Internal Server Error"},
		{501, "Not Implemented"}, {502, "Bad Gateway"},
		{503, "Service Unavailable"}, {504, "Gateway Timeout"},
	};

	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (tab[i].code == code)
			return tab[i].text;
	return "Unknown";
}

/* -------------------------------------------------------------- request */

static void request_clear(struct request *r)
{
	free(r->method);
	free(r->target);
	free(r->path);
	for (size_t i = 0; i < r->nhdrs; i++) {
		free(r->hdrs[i].name);
		free(r->hdrs[i].value);
	}
	free(r->hdrs);
	if (r->body)
		evbuffer_free(r->body);
	memset(r, 0, sizeof *r);
}

static const char *req_header(const struct request *r, const char *name)
{
	for (size_t i = 0; i < r->nhdrs; i++)
		if (!strcmp(r->hdrs[i].name, name))
			return r->hdrs[i].value;
	return NULL;
}

int is_observer_path(const char *path)
{
	return !strcmp(path, "/stats") || !strcmp(path, "/stats/reset") ||
	       !strncmp(path, "/count/", 7);
}

static int is_stats_path(const struct request *r)
{
	return is_observer_path(r->path);
}

/* ------------------------------------------- /flaky, /count, /time (shared) */

#define FLAKY_KEYS      4096
#define FLAKY_KEY_MAX   64
#define FLAKY_TIMES     64              /* arrival times kept per key */

/* One /flaky/KEY.  A slot is free when key[0] is NUL; a slot with requests
 * in flight is never freed (their handles point at it). */
struct flaky_entry {
	char key[FLAKY_KEY_MAX + 1];
	long long count;                /* requests seen (attempts so far) */
	long long in_flight, max_in_flight;
	double times[FLAKY_TIMES];      /* ring: the last FLAKY_TIMES arrivals */
};

static struct flaky_entry flaky_tab[FLAKY_KEYS];
static size_t flaky_hw;                 /* slots ever used: [0, flaky_hw) */

double wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int flaky_key_valid(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > FLAKY_KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int ch = (unsigned char)key[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

static struct flaky_entry *flaky_find(const char *key)
{
	for (size_t i = 0; i < flaky_hw; i++)
		if (flaky_tab[i].key[0] && !strcmp(flaky_tab[i].key, key))
			return &flaky_tab[i];
	return NULL;
}

/* The KEY of /flaky/KEY or /tail/KEY (they share the table), else NULL. */
static const char *counted_key(const char *path)
{
	if (!strncmp(path, "/flaky/", 7))
		return path + 7;
	if (!strncmp(path, "/tail/", 6))
		return path + 6;
	return NULL;
}

long flaky_arrive(const char *path, double now, long long *attempt)
{
	const char *key = counted_key(path);
	struct flaky_entry *e;

	if (!key || !flaky_key_valid(key))
		return 0;
	if (!(e = flaky_find(key))) {
		size_t i;

		for (i = 0; i < flaky_hw && flaky_tab[i].key[0]; i++)
			;
		if (i == FLAKY_KEYS)
			return -1;
		if (i == flaky_hw)
			flaky_hw++;
		e = &flaky_tab[i];
		memset(e, 0, sizeof *e);
		strcpy(e->key, key);
	}
	e->times[e->count % FLAKY_TIMES] = now;
	*attempt = ++e->count;
	if (++e->in_flight > e->max_in_flight)
		e->max_in_flight = e->in_flight;
	return (long)(e - flaky_tab) + 1;
}

void flaky_leave(long handle)
{
	if (handle > 0)
		flaky_tab[handle - 1].in_flight--;
}

/* /stats/reset: every key starts over; those with requests in flight keep
 * them (as in_flight does in /stats). */
static void flaky_reset(void)
{
	for (size_t i = 0; i < flaky_hw; i++) {
		struct flaky_entry *e = &flaky_tab[i];

		if (!e->in_flight) {
			e->key[0] = '\0';
			continue;
		}
		e->count = 0;
		e->max_in_flight = e->in_flight;
	}
	while (flaky_hw && !flaky_tab[flaky_hw - 1].key[0])
		flaky_hw--;
}

int count_json(struct evbuffer *o, const char *key)
{
	const struct flaky_entry *e;
	long long first = 0;

	if (!flaky_key_valid(key))
		return -1;
	e = flaky_find(key);
	evbuffer_add_printf(o, "{\"key\":\"%s\",\"count\":%lld,\"times_ms\":[",
			    key, e ? e->count : 0);
	if (e && e->count > FLAKY_TIMES)
		first = e->count - FLAKY_TIMES;
	for (long long i = first; e && i < e->count; i++)
		evbuffer_add_printf(o, "%s%.1f", i > first ? "," : "",
				    e->times[i % FLAKY_TIMES]);
	evbuffer_add_printf(o, "],\"max_in_flight\":%lld}",
			    e ? e->max_in_flight : 0);
	return 0;
}

void time_json(struct evbuffer *o, double ms)
{
	evbuffer_add_printf(o, "{\"now_ms\":%.1f}", ms);
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

int query_header_param(const char *target, const char *key, char *out,
		       size_t outlen)
{
	char *w = out;

	if (!query_param(target, key, out, outlen))
		return 0;
	for (const char *p = out; *p; p++) {
		int ch = (unsigned char)*p;

		if (ch == '%') {
			int hi = hexval((unsigned char)p[1]);
			int lo = hi < 0 ? -1 : hexval((unsigned char)p[2]);

			if (lo < 0)
				return -1;
			ch = hi * 16 + lo;
			p += 2;
		} else if (ch == '+') {
			ch = ' ';
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return -1;      /* no NUL, CR, LF... in a header value */
		*w++ = (char)ch;
	}
	*w = '\0';
	return 1;
}

/* Starts R as a 400 and, if flaky_arrive's HANDLE says the key was bad or
 * the table full, fills in why: 1 if so (R is the answer), else 0. */
static int flaky_bad_key(long handle, struct flaky_reply *r)
{
	memset(r, 0, sizeof *r);
	r->code = 400;
	r->ctype = "text/plain";
	if (handle > 0)
		return 0;
	r->len = (size_t)snprintf(r->body, sizeof r->body, "%s",
				  handle == 0 ? "bad key\n" : "too many flaky keys\n");
	return 1;
}

void flaky_reply(const char *target, const char *key, long handle,
		 long long attempt, struct flaky_reply *r)
{
	char val[32];
	long long fail = 0, code = 503;
	int reset = 0, ra;

	if (flaky_bad_key(handle, r))
		return;
	if (query_param(target, "fail", val, sizeof val) &&
	    parse_num(val, 1000000000, &fail) < 0) {
		r->len = (size_t)snprintf(r->body, sizeof r->body, "bad fail\n");
		return;
	}
	if (query_param(target, "status", val, sizeof val) &&
	    (parse_num(val, 599, &code) < 0 || code < 200)) {
		r->len = (size_t)snprintf(r->body, sizeof r->body,
					  "bad status code\n");
		return;
	}
	if (query_param(target, "reset", val, sizeof val)) {
		if (strcmp(val, "0") && strcmp(val, "1")) {
			r->len = (size_t)snprintf(r->body, sizeof r->body,
						  "bad reset\n");
			return;
		}
		reset = val[0] == '1';
	}
	ra = query_header_param(target, "retry_after", r->retry_after,
				sizeof r->retry_after);
	if (ra < 0) {
		r->retry_after[0] = '\0';
		r->len = (size_t)snprintf(r->body, sizeof r->body,
					  "bad retry_after\n");
		return;
	}
	if (attempt > fail) {
		r->retry_after[0] = '\0';
		r->code = 200;
		r->ctype = "application/json";
		r->len = (size_t)snprintf(r->body, sizeof r->body,
					  "{\"key\":\"%s\",\"attempt\":%lld}",
					  key, attempt);
		return;
	}
	if (reset) {
		r->code = 0;
		return;
	}
	r->code = (int)code;
	if (code == 204 || code == 304) {
		r->ctype = NULL;
		r->no_body = 1;
		return;
	}
	r->len = (size_t)snprintf(r->body, sizeof r->body,
				  "flaky %s attempt %lld\n", key, attempt);
}

/* TARGET's query parameter NAME as a number in [min, max], else DEF when
 * absent: 0, or -1 if present but not such a number. */
static int query_num(const char *target, const char *name, long long min,
		     long long max, long long def, long long *out)
{
	char val[32];

	*out = def;
	if (!query_param(target, name, val, sizeof val))
		return 0;
	return parse_num(val, max, out) < 0 || *out < min ? -1 : 0;
}

void tail_reply(const char *target, const char *key, long handle,
		long long attempt, struct flaky_reply *r, long long *wait_ms)
{
	long long every, slow, base;
	int is_slow;

	*wait_ms = 0;
	if (flaky_bad_key(handle, r))
		return;
	if (query_num(target, "every", 1, 1000000000, 20, &every) < 0 ||
	    query_num(target, "slow", 0, MAX_DELAY_MS, 500, &slow) < 0 ||
	    query_num(target, "base", 0, MAX_DELAY_MS, 0, &base) < 0) {
		r->len = (size_t)snprintf(r->body, sizeof r->body,
					  "bad every, slow or base\n");
		return;
	}
	is_slow = attempt % every == 0;
	*wait_ms = is_slow ? slow : base;
	r->code = 200;
	r->ctype = "application/json";
	r->len = (size_t)snprintf(r->body, sizeof r->body,
				  "{\"key\":\"%s\",\"attempt\":%lld,\"slow\":%s}",
				  key, attempt, is_slow ? "true" : "false");
}

/* ---------------------------------------------------------------- stats */

static void stats_request_begin(struct server *s, struct request *r)
{
	s->st.requests++;
	s->st.in_flight++;
	if (s->st.in_flight > s->st.max_in_flight)
		s->st.max_in_flight = s->st.in_flight;
	r->counted = 1;
}

static void stats_request_end(struct server *s, struct request *r)
{
	if (r->counted)
		s->st.in_flight--;
	r->counted = 0;
	flaky_leave(r->flaky);
	r->flaky = 0;
}

/* The connection turned out to be the test's /stats observer. */
static void stats_forget_conn(struct conn *c)
{
	struct server *s = c->srv;

	if (c->in_open)
		s->st.open_connections--;
	c->in_open = 0;
	if (c->gen == s->st.generation)
		s->st.connections--;
	if (c->handshaken && c->hs_gen == s->st.generation)
		s->st.handshakes--;
}

void stats_reset(struct upstream_stats *st)
{
	st->requests = 0;
	st->connections = 0;
	st->aborted = 0;
	st->handshakes = 0;
	st->max_in_flight = st->in_flight;
	st->streams_max_per_conn = 0;
	st->h2_connections = 0;
	st->goaways_sent = 0;
	st->rst_received = 0;
	st->generation++;
	flaky_reset();
}

void stats_json(struct evbuffer *o, const struct upstream_stats *st)
{
	evbuffer_add_printf(o, "{\"requests\":%lld,\"in_flight\":%lld,"
			    "\"max_in_flight\":%lld,\"connections\":%lld,"
			    "\"open_connections\":%lld,\"aborted\":%lld,"
			    "\"handshakes\":%lld,\"streams_max_per_conn\":%lld,"
			    "\"h2_connections\":%lld,\"goaways_sent\":%lld,"
			    "\"rst_received\":%lld}", st->requests, st->in_flight,
			    st->max_in_flight, st->connections,
			    st->open_connections, st->aborted, st->handshakes,
			    st->streams_max_per_conn, st->h2_connections,
			    st->goaways_sent, st->rst_received);
}

/* ----------------------------------------------------------- connection */

static void conn_free(struct conn *c)
{
	struct server *s = c->srv;

	stats_request_end(s, &c->req);
	if (c->in_open)
		s->st.open_connections--;
	TAILQ_REMOVE(&s->conns, c, link);
	if (c->timer)
		event_free(c->timer);
	if (c->bev)
		bufferevent_free(c->bev);
	request_clear(&c->req);
	free(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	void (*fn)(struct conn *) = c->on_timer;

	(void)fd, (void)what;
	c->on_timer = NULL;
	if (fn)
		fn(c);
}

static void start_timer(struct conn *c, long long ms, void (*fn)(struct conn *))
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	if (!c->timer)
		c->timer = evtimer_new(c->srv->base, timer_cb, c);
	c->on_timer = fn;
	evtimer_add(c->timer, &tv);
}

/* Closes after a fully written answer: at once, or (after a 400) once the
 * client has stopped sending, so that our answer is not lost to an RST. */
static void conn_close_gracefully(struct conn *c)
{
	struct timeval tv = { LINGER_SECONDS, 0 };

	if (c->is_tls) {
		SSL_shutdown(bufferevent_openssl_get_ssl(c->bev));
		ERR_clear_error();
		conn_free(c);
		return;
	}
	if (!c->linger) {
		conn_free(c);
		return;
	}
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	c->state = ST_CLOSING;
	bufferevent_set_timeouts(c->bev, &tv, NULL);
	process_input(c);
}

/* The whole answer has left our buffers. */
static void answer_done(struct conn *c)
{
	stats_request_end(c->srv, &c->req);
	c->finishing = 0;
	if (c->close_after) {
		conn_close_gracefully(c);
		return;
	}
	request_clear(&c->req);
	c->chunk_step = 0;
	c->stream_left = 0;
	c->state = ST_HEAD;
	process_input(c);       /* the next request may already be here */
}

/* ------------------------------------------------------------- answering */

static struct evbuffer *out_of(struct conn *c)
{
	return bufferevent_get_output(c->bev);
}

/* Queues the status line and headers.  CLEN < 0: no Content-Length.  EXTRA:
 * more header lines, each ending in "\r\n", or NULL. */
static void put_head(struct conn *c, int code, const char *ctype,
		     long long clen, const char *extra)
{
	struct evbuffer *out = out_of(c);

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", code, reason(code));
	if (ctype)
		evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
	if (clen >= 0)
		evbuffer_add_printf(out, "Content-Length: %lld\r\n", clen);
	if (extra)
		evbuffer_add(out, extra, strlen(extra));
	evbuffer_add_printf(out, "Connection: %s\r\n\r\n",
			    c->close_after ? "close" : "keep-alive");
}

/* Queues body bytes (none for HEAD). */
static void put_body(struct conn *c, const void *data, size_t len)
{
	if (!c->req.is_head)
		evbuffer_add(out_of(c), data, len);
}

/* Everything is queued; answer_done() runs once it has been written. */
static void finish(struct conn *c)
{
	c->finishing = 1;
}

static void reply(struct conn *c, int code, const char *ctype,
		  const char *body, size_t len, const char *extra)
{
	put_head(c, code, ctype, (long long)len, extra);
	put_body(c, body, len);
	finish(c);
}

static void reply_text(struct conn *c, int code, const char *text)
{
	reply(c, code, "text/plain", text, strlen(text), NULL);
}

static void reply_json_buf(struct conn *c, int code, struct evbuffer *json)
{
	put_head(c, code, "application/json",
		 (long long)evbuffer_get_length(json), NULL);
	if (!c->req.is_head)
		evbuffer_add_buffer(out_of(c), json);
	evbuffer_free(json);
	finish(c);
}

/* A protocol error: answer CODE and close. */
static void reject(struct conn *c, int code, const char *text)
{
	c->state = ST_RESPOND;
	c->close_after = 1;
	c->linger = 1;
	reply_text(c, code, text);
}

/* -------------------------------------------------------------- endpoints */

static void delay_done(struct conn *c)
{
	char body[64];
	int n = snprintf(body, sizeof body, "{\"delay\":%lld}", c->delay_ms);

	reply(c, 200, "application/json", body, (size_t)n, NULL);
}

static void h_delay(struct conn *c, const char *arg)
{
	if (parse_num(arg, MAX_DELAY_MS, &c->delay_ms) < 0) {
		reply_text(c, 400, "bad delay\n");
		return;
	}
	start_timer(c, c->delay_ms, delay_done);
}

static void h_status(struct conn *c, const char *arg)
{
	long long code;
	char ra[RETRY_AFTER_MAX], extra[RETRY_AFTER_MAX + 64] = "", body[32];
	int n;

	if (parse_num(arg, 599, &code) < 0 || code < 200) {
		reply_text(c, 400, "bad status code\n");
		return;
	}
	switch (query_header_param(c->req.target, "retry_after", ra, sizeof ra)) {
	case -1:
		reply_text(c, 400, "bad retry_after\n");
		return;
	case 1:
		if (ra[0])
			snprintf(extra, sizeof extra, "Retry-After: %s\r\n", ra);
		break;
	}
	if (code >= 300 && code < 400)
		strcat(extra, "Location: /json\r\n");
	if (code == 204 || code == 304) {       /* these never have a body */
		put_head(c, (int)code, NULL, -1, extra);
		finish(c);
		return;
	}
	n = code == 205 ? 0 : snprintf(body, sizeof body, "status %lld\n", code);
	reply(c, (int)code, "text/plain", body, (size_t)n, extra);
}

static void h_hang(struct conn *c, const char *arg)
{
	(void)c, (void)arg;     /* never answer; EOF from the client ends it */
}

static void h_reset(struct conn *c, const char *arg)
{
	struct linger lg = { 1, 0 };

	(void)arg;
	if (setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER,
		       &lg, sizeof lg) < 0)
		perror("upstream: SO_LINGER");
	conn_free(c);   /* close() with linger 0 sends the RST */
}

static void h_garbage(struct conn *c, const char *arg)
{
	static const char text[] = "this is not http\r\n\r\n";

	(void)arg;
	c->close_after = 1;
	evbuffer_add(out_of(c), text, sizeof text - 1);
	finish(c);
}

/* Queues the next slice of a /bytes answer; the pattern is referenced, not
 * copied, so a 64 MiB answer never holds more than ~1 MiB of buffers. */
static void bytes_refill(struct conn *c)
{
	struct evbuffer *out = out_of(c);

	for (int i = 0; i < REFILL_CHUNKS && c->stream_left > 0; i++) {
		size_t n = c->stream_left < PATTERN_LEN ?
			   (size_t)c->stream_left : PATTERN_LEN;

		evbuffer_add_reference(out, pattern, n, NULL, NULL);
		c->stream_left -= (long long)n;
	}
	if (c->stream_left == 0)
		finish(c);
}

static void h_bytes(struct conn *c, const char *arg)
{
	long long n;

	if (parse_num(arg, MAX_BYTES, &n) < 0) {
		reply_text(c, 400, "bad byte count\n");
		return;
	}
	put_head(c, 200, "text/plain", n, NULL);
	c->stream_left = c->req.is_head ? 0 : n;
	bytes_refill(c);
}

static void h_binary(struct conn *c, const char *arg)
{
	char body[256];

	(void)arg;
	for (int i = 0; i < 256; i++)
		body[i] = (char)i;
	reply(c, 200, "application/octet-stream", body, sizeof body, NULL);
}

static void h_json(struct conn *c, const char *arg)
{
	static const char body[] = "{\"name\":\"Ada\",\"n\":[1,2,3]}";

	(void)arg;
	reply(c, 200, "application/json", body, sizeof body - 1, NULL);
}

static void chunked_next(struct conn *c)
{
	static const char *const parts[] = { "hello, ", "chunked ", "world" };
	const char *p = parts[c->chunk_step++];

	evbuffer_add_printf(out_of(c), "%zx\r\n%s\r\n", strlen(p), p);
	if (c->chunk_step < 3) {
		start_timer(c, CHUNK_GAP_MS, chunked_next);
		return;
	}
	evbuffer_add(out_of(c), "0\r\n\r\n", 5);
	finish(c);
}

static void h_chunked(struct conn *c, const char *arg)
{
	(void)arg;
	put_head(c, 200, "text/plain", -1, "Transfer-Encoding: chunked\r\n");
	if (c->req.is_head)
		finish(c);
	else
		chunked_next(c);
}

static void h_headers(struct conn *c, const char *arg)
{
	(void)arg;
	reply(c, 200, "text/plain", "ok", 2, "X-Dup: a\r\nX-Dup: b\r\n"
	      "X-Mixed-Case: Value\r\n");
}

/* "headers":{...}: lower-cased names in order of first appearance, repeated
 * headers joined with ", ". */
static void echo_headers(struct evbuffer *o, const struct request *r)
{
	int first = 1;

	evbuffer_add_printf(o, "\"headers\":{");
	for (size_t i = 0; i < r->nhdrs; i++) {
		struct evbuffer *val;
		size_t j;

		for (j = 0; j < i; j++)
			if (!strcmp(r->hdrs[j].name, r->hdrs[i].name))
				break;
		if (j < i)
			continue;       /* already emitted with the first one */
		val = evbuffer_new();
		for (j = i; j < r->nhdrs; j++) {
			if (strcmp(r->hdrs[j].name, r->hdrs[i].name))
				continue;
			if (evbuffer_get_length(val))
				evbuffer_add(val, ", ", 2);
			evbuffer_add(val, r->hdrs[j].value,
				     strlen(r->hdrs[j].value));
		}
		evbuffer_add(val, "", 1);       /* NUL-terminate */
		if (!first)
			evbuffer_add(o, ",", 1);
		first = 0;
		json_text(o, r->hdrs[i].name);
		evbuffer_add(o, ":", 1);
		json_text(o, (const char *)evbuffer_pullup(val, -1));
		evbuffer_free(val);
	}
	evbuffer_add(o, "}", 1);
}

void echo_body(struct evbuffer *o, struct evbuffer *body)
{
	size_t n = body ? evbuffer_get_length(body) : 0;
	const unsigned char *b = n ? evbuffer_pullup(body, -1) :
				     (const unsigned char *)"";
	unsigned char *b64;

	if (utf8_valid(b, n)) {
		evbuffer_add(o, "\"body\":", 7);
		json_str(o, (const char *)b, n, 0);
		return;
	}
	b64 = malloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock(b64, b, (int)n);
	evbuffer_add_printf(o, "\"body_base64\":\"%s\"", (const char *)b64);
	free(b64);
}

static void h_echo(struct conn *c, const char *arg)
{
	struct evbuffer *o = evbuffer_new();

	(void)arg;
	evbuffer_add(o, "{\"method\":", 10);
	json_text(o, c->req.method);
	evbuffer_add(o, ",\"path\":", 8);
	json_text(o, c->req.target);
	evbuffer_add(o, ",", 1);
	echo_headers(o, &c->req);
	evbuffer_add(o, ",", 1);
	echo_body(o, c->req.body);
	evbuffer_add(o, "}", 1);
	reply_json_buf(c, 200, o);
}

static void h_close(struct conn *c, const char *arg)
{
	(void)arg;
	c->close_after = 1;
	reply_text(c, 200, "bye");
}

static void h_badlength(struct conn *c, const char *arg)
{
	(void)arg;
	c->close_after = 1;
	put_head(c, 200, "text/plain", 100, NULL);
	put_body(c, "0123456789", 10);
	finish(c);
}

/* Answers, keeps the connection, then drops it without a word when the
 * next request arrives on it: the race of an upstream that closes an idle
 * keep-alive connection just as the client reuses it. */
static void h_stale(struct conn *c, const char *arg)
{
	(void)arg;
	c->drop_next = 1;
	reply_text(c, 200, "fresh");
}

/* 100 KiB of headers: more than any sane client accepts. */
static void h_bigheaders(struct conn *c, const char *arg)
{
	char *big = malloc(100 * 1024 + 16);
	size_t n = 100 * 1024;

	(void)arg;
	memcpy(big, "X-Big: ", 7);
	memset(big + 7, 'a', n);
	memcpy(big + 7 + n, "\r\n", 3);
	reply(c, 200, "text/plain", "ok", 2, big);
	free(big);
}

/* 2,000 short header lines (about 14 KiB): a flood of lines, not bytes. */
static void h_manyheaders(struct conn *c, const char *arg)
{
	struct evbuffer *h = evbuffer_new();

	(void)arg;
	for (int i = 0; i < 2000; i++)
		evbuffer_add_printf(h, "Set-Cookie: c%d=1\r\n", i);
	evbuffer_add(h, "", 1);
	reply(c, 200, "text/plain", "ok", 2, (const char *)evbuffer_pullup(h, -1));
	evbuffer_free(h);
}

/* A body ended by closing the connection: no Content-Length, not chunked. */
static void h_eof(struct conn *c, const char *arg)
{
	(void)arg;
	c->close_after = 1;
	put_head(c, 200, "text/plain", -1, NULL);
	put_body(c, "until the end", 13);
	finish(c);
}

/* Raw answers that break HTTP/1.1 framing on purpose.  Each is written in
 * one piece and the connection stays open, so a client has to see the fault
 * in the bytes themselves, not in an EOF that follows them. */
static void raw_answer(struct conn *c, const char *bytes)
{
	evbuffer_add(out_of(c), bytes, strlen(bytes));
	finish(c);
}

/* An answer followed by a second one nobody asked for: a client that keeps
 * the connection would hand "forged" to its next request. */
static void h_overlong(struct conn *c, const char *arg)
{
	(void)arg;
	raw_answer(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	           "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Forged: yes\r\n\r\nforged");
}

static void h_twolengths(struct conn *c, const char *arg)
{
	(void)arg;
	raw_answer(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	           "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
}

static void h_earlyhints(struct conn *c, const char *arg)
{
	static const char hint[] = "HTTP/1.1 103 Early Hints\r\n"
	                           "Link: </a.css>; rel=preload\r\n\r\n";

	(void)arg;
	for (int i = 0; i < 3; i++)
		evbuffer_add(out_of(c), hint, sizeof hint - 1);
	raw_answer(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	           "Content-Length: 12\r\nX-Final: 1\r\n\r\nfinal answer");
}

static void h_badchunk(struct conn *c, const char *arg)
{
	(void)arg;
	raw_answer(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	           "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n");
}

static void h_negativelength(struct conn *c, const char *arg)
{
	(void)arg;
	raw_answer(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	           "Content-Length: -1\r\n\r\nhello");
}

static void h_status2000(struct conn *c, const char *arg)
{
	(void)arg;
	raw_answer(c, "HTTP/1.1 2000 OK\r\nContent-Type: text/plain\r\n"
	           "Content-Length: 2\r\n\r\nok");
}

/* The whole of file NAME in files_dir, malloc'ed, or NULL. */
static char *read_file(const char *name, size_t *len)
{
	char path[4096];
	FILE *f;
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (snprintf(path, sizeof path, "%s/%s", files_dir, name) >= (int)sizeof path)
		return NULL;
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	for (;;) {
		if (n == cap) {
			char *b = cap < (size_t)MAX_BYTES ? realloc(buf, cap ? 2 * cap : 65536) : NULL;

			if (!b) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = b;
			cap = cap ? 2 * cap : 65536;
		}
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

static void h_file(struct conn *c, const char *name)
{
	char ce[128], chunked[8], extra[192] = "";
	size_t len;
	char *data;
	int is_chunked;

	if (!files_dir || !*name || name[0] == '.' || strchr(name, '/') ||
	    !(data = read_file(name, &len))) {
		reply_text(c, 404, "not found\n");
		return;
	}
	if (query_param(c->req.target, "ce", ce, sizeof ce) && *ce)
		snprintf(extra, sizeof extra, "Content-Encoding: %s\r\n", ce);
	is_chunked = query_param(c->req.target, "chunked", chunked, sizeof chunked) &&
	             !strcmp(chunked, "1");
	if (!is_chunked) {
		reply(c, 200, "text/plain", data, len, extra);
		free(data);
		return;
	}
	strcat(extra, "Transfer-Encoding: chunked\r\n");
	put_head(c, 200, "text/plain", -1, extra);
	if (!c->req.is_head) {
		for (size_t off = 0; off < len; off += FILE_CHUNK) {
			size_t n = len - off < FILE_CHUNK ? len - off : FILE_CHUNK;

			evbuffer_add_printf(out_of(c), "%zx\r\n", n);
			evbuffer_add(out_of(c), data + off, n);
			evbuffer_add(out_of(c), "\r\n", 2);
		}
		evbuffer_add(out_of(c), "0\r\n\r\n", 5);
	}
	free(data);
	finish(c);
}

static void h_flaky(struct conn *c, const char *key)
{
	struct flaky_reply r;
	char extra[RETRY_AFTER_MAX + 32] = "";

	flaky_reply(c->req.target, key, c->req.flaky, c->req.attempt, &r);
	if (r.code == 0) {
		h_reset(c, key);
		return;
	}
	if (r.retry_after[0])
		snprintf(extra, sizeof extra, "Retry-After: %s\r\n",
			 r.retry_after);
	if (r.no_body) {
		put_head(c, r.code, NULL, -1, extra);
		finish(c);
		return;
	}
	reply(c, r.code, r.ctype, r.body, r.len, extra);
}

/* The answer waits in the timer; tail_reply is asked again when it fires
 * (the same target and attempt give the same answer), so the connection
 * keeps no copy. */
static void tail_done(struct conn *c)
{
	struct flaky_reply r;
	long long wait_ms;

	tail_reply(c->req.target, c->req.path + strlen("/tail/"), c->req.flaky,
		   c->req.attempt, &r, &wait_ms);
	reply(c, r.code, r.ctype, r.body, r.len, NULL);
}

static void h_tail(struct conn *c, const char *key)
{
	struct flaky_reply r;
	long long wait_ms;

	tail_reply(c->req.target, key, c->req.flaky, c->req.attempt, &r, &wait_ms);
	if (r.code != 200) {
		reply(c, r.code, r.ctype, r.body, r.len, NULL);
		return;
	}
	start_timer(c, wait_ms, tail_done);
}

static void h_count(struct conn *c, const char *key)
{
	struct evbuffer *o = evbuffer_new();

	if (count_json(o, key) < 0) {
		evbuffer_free(o);
		reply_text(c, 400, "bad key\n");
		return;
	}
	reply_json_buf(c, 200, o);
}

static void h_time(struct conn *c, const char *arg)
{
	struct evbuffer *o = evbuffer_new();

	(void)arg;
	time_json(o, c->req.arrived_ms);
	reply_json_buf(c, 200, o);
}

static void h_stats(struct conn *c, const char *arg)
{
	struct evbuffer *o = evbuffer_new();

	(void)arg;
	stats_json(o, &c->srv->st);
	reply_json_buf(c, 200, o);
}

static void h_stats_reset(struct conn *c, const char *arg)
{
	(void)arg;
	stats_reset(&c->srv->st);
	reply(c, 200, "application/json", "{}", 2, NULL);
}

static void h_not_found(struct conn *c, const char *arg)
{
	(void)arg;
	reply_text(c, 404, "not found\n");
}

/* A path ending in '/' is a prefix; the rest of the path is the argument. */
static const struct route {
	const char *path;
	void (*fn)(struct conn *, const char *arg);
} routes[] = {
	{ "/delay/", h_delay },       { "/status/", h_status },
	{ "/bytes/", h_bytes },       { "/hang", h_hang },
	{ "/reset", h_reset },        { "/garbage", h_garbage },
	{ "/binary", h_binary },      { "/json", h_json },
	{ "/chunked", h_chunked },    { "/headers", h_headers },
	{ "/echo", h_echo },          { "/close", h_close },
	{ "/badlength", h_badlength }, { "/stats", h_stats },
	{ "/stats/reset", h_stats_reset }, { "/stale", h_stale },
	{ "/bigheaders", h_bigheaders }, { "/manyheaders", h_manyheaders },
	{ "/eof", h_eof },
	{ "/overlong", h_overlong },  { "/twolengths", h_twolengths },
	{ "/earlyhints", h_earlyhints }, { "/badchunk", h_badchunk },
	{ "/negativelength", h_negativelength }, { "/status2000", h_status2000 },
	{ "/file/", h_file },
	{ "/flaky/", h_flaky },       { "/count/", h_count },
	{ "/time", h_time },          { "/tail/", h_tail },
};

static void route(struct conn *c)
{
	const char *path = c->req.path;

	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		const char *p = routes[i].path;
		size_t n = strlen(p);

		if (p[n - 1] == '/' ? !strncmp(path, p, n) : !strcmp(path, p)) {
			routes[i].fn(c, path + (p[n - 1] == '/' ? n : 0));
			return;
		}
	}
	h_not_found(c, path);
}

/* The request is complete: apply ?delay=MS, then route it. */
static void dispatch(struct conn *c)
{
	char val[32];
	long long ms;

	c->state = ST_RESPOND;
	if (c->drop_next) {
		conn_free(c);   /* plain close: the client sees EOF, no answer */
		return;
	}
	c->req.arrived_ms = wall_ms();
	c->req.flaky = flaky_arrive(c->req.path, c->req.arrived_ms,
				    &c->req.attempt);
	if (is_stats_path(&c->req) ||
	    !query_param(c->req.target, "delay", val, sizeof val)) {
		route(c);
		return;
	}
	if (parse_num(val, MAX_DELAY_MS, &ms) < 0) {
		reply_text(c, 400, "bad delay\n");
		return;
	}
	start_timer(c, ms, route);
}

/* ---------------------------------------------------------------- parsing */

/* Parser step results. */
enum { P_MORE, P_PROGRESS, P_COMPLETE, P_ERROR };

static int parse_request_line(struct conn *c, char *line)
{
	struct request *r = &c->req;
	char *sp1 = strchr(line, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	const char *q;

	if (!sp2 || strchr(sp2 + 1, ' '))
		return P_ERROR;
	*sp1 = *sp2 = '\0';
	if (!is_token(line, strlen(line)) || sp1[1] != '/')
		return P_ERROR;
	for (const unsigned char *t = (unsigned char *)sp1 + 1; *t; t++)
		if (*t < 0x21 || *t == 0x7f)
			return P_ERROR;
	if (!strcmp(sp2 + 1, "HTTP/1.1"))
		r->minor = 1;
	else if (!strcmp(sp2 + 1, "HTTP/1.0"))
		r->minor = 0;
	else
		return P_ERROR;
	r->method = strdup(line);
	r->target = strdup(sp1 + 1);
	q = strchr(r->target, '?');
	r->path = strndup(r->target, q ? (size_t)(q - r->target) : strlen(r->target));
	r->is_head = !strcmp(r->method, "HEAD");
	return P_PROGRESS;
}

static int parse_header_line(struct conn *c, char *line)
{
	struct request *r = &c->req;
	char *colon = strchr(line, ':');
	char *v, *end;

	if (!colon || !is_token(line, (size_t)(colon - line)))
		return P_ERROR;         /* also rejects obs-fold and "name :" */
	*colon = '\0';
	for (char *p = line; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (end = v + strlen(v); end > v && (end[-1] == ' ' || end[-1] == '\t'); end--)
		;
	*end = '\0';
	for (const unsigned char *p = (unsigned char *)v; *p; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return P_ERROR;
	if (r->nhdrs == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		struct header *h = realloc(r->hdrs, cap * sizeof *h);

		if (!h)
			return P_ERROR;
		r->hdrs = h;
		r->cap = cap;
	}
	r->hdrs[r->nhdrs].name = strdup(line);
	r->hdrs[r->nhdrs].value = strdup(v);
	r->nhdrs++;
	return P_PROGRESS;
}

/* Content-Length: every instance must agree.  Returns -1 if malformed. */
static long long content_length(const struct request *r)
{
	long long len = 0;
	int seen = 0;

	for (size_t i = 0; i < r->nhdrs; i++) {
		long long v;

		if (strcmp(r->hdrs[i].name, "content-length"))
			continue;
		if (parse_num(r->hdrs[i].value, (1LL << 53), &v) < 0 ||
		    (seen && v != len))
			return -1;
		len = v;
		seen = 1;
	}
	return len;
}

/* The empty line after the headers: decide framing, count the request. */
static int headers_complete(struct conn *c)
{
	struct request *r = &c->req;
	struct server *s = c->srv;
	const char *te = req_header(r, "transfer-encoding");
	const char *conn = req_header(r, "connection");
	const char *expect = req_header(r, "expect");
	long long clen = content_length(r);

	if (clen < 0 || (te && req_header(r, "content-length")))
		return P_ERROR;
	if (te && strcasecmp(te, "chunked")) {
		reject(c, 501, "unsupported transfer-encoding\n");
		return P_MORE;
	}
	if (clen > MAX_BODY) {
		reject(c, 413, "body too large\n");
		return P_MORE;
	}
	if (r->minor == 0)
		c->close_after = !(conn && has_token(conn, "keep-alive"));
	else
		c->close_after = conn && has_token(conn, "close");

	if (c->nrequests++ == 0 && is_stats_path(r))
		stats_forget_conn(c);
	if (!is_stats_path(r))
		stats_request_begin(s, r);

	r->body = evbuffer_new();
	if ((te || clen > 0) && r->minor == 1 && expect &&
	    !strcasecmp(expect, "100-continue"))
		evbuffer_add_printf(out_of(c), "HTTP/1.1 100 Continue\r\n\r\n");
	if (te) {
		c->state = ST_CHUNK_SIZE;
		return P_PROGRESS;
	}
	if (clen > 0) {
		r->body_left = (uint64_t)clen;
		c->state = ST_BODY;
		return P_PROGRESS;
	}
	return P_COMPLETE;
}

/* Reads one line of the head (or trailers) into *LINE, enforcing MAX_HEAD.
 * Returns P_PROGRESS with a line to free, P_MORE, or P_ERROR. */
static int read_head_line(struct conn *c, struct evbuffer *in, char **line,
			  size_t *len)
{
	*line = evbuffer_readln(in, len, EVBUFFER_EOL_CRLF);
	if (!*line)
		return c->req.head_bytes + evbuffer_get_length(in) > MAX_HEAD ?
		       P_ERROR : P_MORE;
	c->req.head_bytes += *len + 2;
	if (c->req.head_bytes > MAX_HEAD || strlen(*line) != *len) {
		free(*line);
		return P_ERROR;
	}
	return P_PROGRESS;
}

static int parse_head(struct conn *c, struct evbuffer *in)
{
	char *line;
	size_t len;
	int r = read_head_line(c, in, &line, &len);

	if (r != P_PROGRESS)
		return r;
	if (!c->req.method)     /* empty lines before a request are ignored */
		r = len ? parse_request_line(c, line) : P_PROGRESS;
	else if (len == 0)
		r = headers_complete(c);
	else
		r = parse_header_line(c, line);
	free(line);
	return r;
}

/* Moves up to body_left bytes of body from IN. */
static size_t take_body(struct conn *c, struct evbuffer *in)
{
	size_t avail = evbuffer_get_length(in);
	size_t n = avail < c->req.body_left ? avail : (size_t)c->req.body_left;

	evbuffer_remove_buffer(in, c->req.body, n);
	c->req.body_left -= n;
	return n;
}

static int read_body(struct conn *c, struct evbuffer *in)
{
	take_body(c, in);
	return c->req.body_left == 0 ? P_COMPLETE : P_MORE;
}

static int read_chunk_size(struct conn *c, struct evbuffer *in)
{
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
	uint64_t size = 0;
	size_t i;

	if (!line)
		return evbuffer_get_length(in) > 1024 ? P_ERROR : P_MORE;
	for (i = 0; i < len && strchr("0123456789abcdefABCDEF", line[i]) && line[i]; i++) {
		int ch = line[i];

		size = size * 16 + (uint64_t)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
		if (size > MAX_BODY)
			break;
	}
	if (i == 0 || (i < len && line[i] != ';' && line[i] != ' ' && line[i] != '\t')) {
		free(line);
		return P_ERROR;
	}
	free(line);
	if (size + evbuffer_get_length(c->req.body) > MAX_BODY) {
		reject(c, 413, "body too large\n");
		return P_MORE;
	}
	c->req.body_left = size;
	c->state = size ? ST_CHUNK_DATA : ST_TRAILERS;
	return P_PROGRESS;
}

static int read_chunk_data(struct conn *c, struct evbuffer *in)
{
	take_body(c, in);
	if (c->req.body_left)
		return P_MORE;
	c->state = ST_CHUNK_CRLF;
	return P_PROGRESS;
}

static int read_chunk_crlf(struct conn *c, struct evbuffer *in)
{
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);

	if (!line)
		return evbuffer_get_length(in) > 2 ? P_ERROR : P_MORE;
	free(line);
	if (len)
		return P_ERROR;
	c->state = ST_CHUNK_SIZE;
	return P_PROGRESS;
}

static int read_trailer(struct conn *c, struct evbuffer *in)
{
	char *line;
	size_t len;
	int r = read_head_line(c, in, &line, &len);

	if (r != P_PROGRESS)
		return r;
	free(line);             /* trailers are read and dropped */
	return len ? P_PROGRESS : P_COMPLETE;
}

/* Runs the parser over whatever input is buffered.  May free C. */
static void process_input(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	for (;;) {
		int r;

		switch (c->state) {
		case ST_HEAD:       r = parse_head(c, in); break;
		case ST_BODY:       r = read_body(c, in); break;
		case ST_CHUNK_SIZE: r = read_chunk_size(c, in); break;
		case ST_CHUNK_DATA: r = read_chunk_data(c, in); break;
		case ST_CHUNK_CRLF: r = read_chunk_crlf(c, in); break;
		case ST_TRAILERS:   r = read_trailer(c, in); break;
		case ST_CLOSING:
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		case ST_RESPOND:
		default:
			return;     /* later bytes wait for the answer to finish */
		}
		if (r == P_MORE)
			return;
		if (r == P_ERROR) {
			reject(c, 400, "bad request\n");
			return;
		}
		if (r == P_COMPLETE) {
			dispatch(c);
			return;
		}
	}
}

/* -------------------------------------------------------- libevent glue */

/* The client preface or ALPN chose HTTP/2: upstream_h2.c takes the socket
 * and its place in the counters, and C goes. */
static void conn_to_h2(struct conn *c)
{
	struct upstream_h2_origin o = { c->in_open, c->gen, c->handshaken,
					c->hs_gen };
	struct upstream_h2 *h2 = c->srv->h2;
	struct bufferevent *bev = c->bev;

	c->bev = NULL;
	c->in_open = 0;
	conn_free(c);
	upstream_h2_adopt(h2, bev, &o);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->sniff_h2) {
		enum upstream_h2_sniff r = upstream_h2_sniff(bufferevent_get_input(bev));

		if (r == UPSTREAM_H2_SNIFF_MORE)
			return;
		c->sniff_h2 = 0;
		if (r == UPSTREAM_H2_SNIFF_H2) {
			conn_to_h2(c);
			return;
		}
	}
	process_input(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	size_t pending = evbuffer_get_length(bufferevent_get_output(bev));

	if (c->stream_left > 0 && pending == 0)
		bytes_refill(c);
	else if (c->finishing && pending == 0)
		answer_done(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct server *s = c->srv;

	if (what & BEV_EVENT_CONNECTED) {       /* TLS handshake done */
		s->st.handshakes++;
		c->handshaken = 1;
		c->hs_gen = s->st.generation;
		if (s->h2 && upstream_h2_alpn_chose_h2(s->h2,
				bufferevent_openssl_get_ssl(bev)))
			conn_to_h2(c);
		return;
	}
	if (c->is_tls && (what & BEV_EVENT_ERROR)) {
		unsigned long e = bufferevent_get_openssl_error(bev);

		char msg[256];

		if (e) {
			ERR_error_string_n(e, msg, sizeof msg);
			fprintf(stderr, "upstream: TLS: %s\n", msg);
		}
	}
	if (c->state != ST_CLOSING && c->req.counted)
		s->st.aborted++;        /* the client gave up on this request */
	conn_free(c);
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct server *s = arg;
	struct conn *c = calloc(1, sizeof *c);
	int one = 1;
	const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;

	(void)lis, (void)sa, (void)salen;
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (s->ssl_ctx) {
		SSL *ssl = SSL_new(s->ssl_ctx);

		c->is_tls = 1;
		c->bev = ssl ? bufferevent_openssl_socket_new(s->base, fd, ssl,
				BUFFEREVENT_SSL_ACCEPTING, opts) : NULL;
	} else {
		c->bev = bufferevent_socket_new(s->base, fd, opts);
	}
	if (!c->bev) {
		fprintf(stderr, "upstream: cannot set up a connection\n");
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->srv = s;
	c->state = ST_HEAD;
	c->in_open = 1;
	c->gen = s->st.generation;
	s->st.connections++;
	s->st.open_connections++;
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (s->h2 && !c->is_tls && s->h2_only)
		conn_to_h2(c);
	else if (s->h2 && !c->is_tls)
		c->sniff_h2 = 1;
}

static void accept_error_cb(struct evconnlistener *lis, void *arg)
{
	(void)lis, (void)arg;
	fprintf(stderr, "upstream: accept: %s\n",
		evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	(void)sig, (void)what;
	event_base_loopbreak(s->base);
}

/* ------------------------------------------------------------------ setup */

static SSL_CTX *tls_context(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char msg[256];

	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_error_string_n(ERR_get_error(), msg, sizeof msg);
		fprintf(stderr, "upstream: cannot use %s / %s: %s\n", cert, key,
			msg);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* "IPv4:PORT" or "[IPv6]:PORT" (port 0 allowed, which
 * evutil_parse_sockaddr_port refuses). */
static int parse_listen_addr(const char *addr, struct sockaddr_storage *ss,
			     int *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(addr, ':');
	char host[64];
	size_t hlen;
	long long port;

	if (!colon || parse_num(colon + 1, 65535, &port) < 0)
		return -1;
	hlen = (size_t)(colon - addr);
	if (addr[0] == '[') {
		if (hlen < 2 || addr[hlen - 1] != ']')
			return -1;
		addr++;
		hlen -= 2;
	}
	if (hlen >= sizeof host)
		return -1;
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = (int)sizeof *sin;
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = (int)sizeof *sin6;
	} else {
		return -1;
	}
	return 0;
}

static int start_listening(struct server *s, const char *addr)
{
	struct sockaddr_storage ss;
	int len;
	socklen_t slen = sizeof ss;
	int port;

	if (parse_listen_addr(addr, &ss, &len) < 0) {
		fprintf(stderr, "upstream: bad listen address '%s'\n", addr);
		return -1;
	}
	s->listener = evconnlistener_new_bind(s->base, accept_cb, s,
			LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
			(struct sockaddr *)&ss, len);
	if (!s->listener) {
		fprintf(stderr, "upstream: cannot listen on %s: %s\n", addr,
			strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(s->listener, accept_error_cb);
	if (getsockname(evconnlistener_get_fd(s->listener),
			(struct sockaddr *)&ss, &slen) < 0)
		return -1;
	port = ss.ss_family == AF_INET6 ?
	       ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
	       ntohs(((struct sockaddr_in *)&ss)->sin_port);
	printf("%d\n", port);
	fflush(stdout);
	return 0;
}

static void server_free(struct server *s)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&s->conns)))
		conn_free(c);
	upstream_h2_free(s->h2);
	if (s->listener)
		evconnlistener_free(s->listener);
	if (s->sig_term)
		event_free(s->sig_term);
	if (s->sig_int)
		event_free(s->sig_int);
	if (s->base)
		event_base_free(s->base);
	SSL_CTX_free(s->ssl_ctx);
}

static void usage(void)
{
	fprintf(stderr, "usage: upstream [--listen ADDR:PORT] "
		"[--tls CERT.pem KEY.pem] [--files DIR]\n"
		"       [--h2 [--h2-only] [--max-streams N] [--goaway-after N]]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct server s;
	const char *addr = "127.0.0.1:0", *cert = NULL, *key = NULL;
	struct upstream_h2_opts h2o = { 0, 100, 0 };
	int h2 = 0, rc = 1;
	long long n;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
			addr = argv[++i];
		} else if (!strcmp(argv[i], "--tls") && i + 2 < argc) {
			cert = argv[++i];
			key = argv[++i];
		} else if (!strcmp(argv[i], "--files") && i + 1 < argc) {
			files_dir = argv[++i];
		} else if (!strcmp(argv[i], "--h2")) {
			h2 = 1;
		} else if (!strcmp(argv[i], "--h2-only")) {
			h2 = h2o.h2_only = 1;
		} else if (!strcmp(argv[i], "--max-streams") && i + 1 < argc &&
			   parse_num(argv[++i], UINT32_MAX, &n) == 0) {
			h2o.max_streams = (unsigned)n;
		} else if (!strcmp(argv[i], "--goaway-after") && i + 1 < argc &&
			   parse_num(argv[++i], INT32_MAX, &n) == 0) {
			h2o.goaway_after = n;
		} else {
			usage();
		}
	}
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < PATTERN_LEN; i++)
		pattern[i] = (char)('a' + i % 26);

	memset(&s, 0, sizeof s);
	TAILQ_INIT(&s.conns);
	s.base = event_base_new();
	if (!s.base)
		goto out;
	if (cert && !(s.ssl_ctx = tls_context(cert, key)))
		goto out;
	if (h2 && !(s.h2 = upstream_h2_new(s.base, &s.st, &h2o)))
		goto out;
	s.h2_only = h2o.h2_only;
	if (s.h2 && s.ssl_ctx)
		upstream_h2_offer_alpn(s.h2, s.ssl_ctx);
	if (start_listening(&s, addr) < 0)
		goto out;
	s.sig_term = evsignal_new(s.base, SIGTERM, signal_cb, &s);
	s.sig_int = evsignal_new(s.base, SIGINT, signal_cb, &s);
	if (!s.sig_term || !s.sig_int || evsignal_add(s.sig_term, NULL) < 0 ||
	    evsignal_add(s.sig_int, NULL) < 0)
		goto out;
	if (event_base_dispatch(s.base) == 0 || event_base_got_break(s.base))
		rc = 0;
out:
	server_free(&s);
	libevent_global_shutdown();
	return rc;
}
