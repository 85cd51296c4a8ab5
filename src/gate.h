/* gate: the first reader of every client connection.  llhttp parses what
 * the client sends and evhtp, whose own parser refuses legal input (chunk
 * extensions, a tab before a value), loses pipelined requests and parses
 * form bodies into stack arrays, only ever reads a canonical copy:
 *   - one request at a time: the next is parsed once evhtp has finished
 *     the one before (gate_next);
 *   - every header as "Name: value" on one line, no Content-Type (nothing
 *     here reads it, and evhtp would parse a form body), no Upgrade (evhtp
 *     speaks HTTP/1.x only), one Connection header saying what llhttp
 *     made of the client's (evhtp would read "close, foo" as keep-alive);
 *   - a chunked body re-chunked without extensions or trailers;
 *   - a request the gate refuses reaches evhtp as a bodiless stand-in, and
 *     its verdict (400, 413, 414, 431, 501, 505) is what the router answers, in
 *     its place among the pipelined answers; the connection then closes.
 * The parsing core (gate_feed) does no I/O, so unit tests and the fuzzer
 * drive it directly; gate_wrap puts it between a socket and evhtp as a
 * libevent filter. */
#ifndef FANOUTD_GATE_H
#define FANOUTD_GATE_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct evbuffer;

/* What the gate enforces; borrowed, so a reload that changes the struct
 * applies to the next request. */
struct gate_limits {
	size_t max_body;       /* max_request_body */
	size_t max_head;       /* request line plus headers */
};

/* Why the current request was refused. */
struct gate_verdict {
	int status;            /* 0: not refused */
	const char *message;   /* borrowed from the gate, valid until gate_next */
};

struct gate;

struct gate *gate_new(const struct gate_limits *lim);
void gate_free(struct gate *g);

/* Parse len bytes of client input, appending the canonical copy to out.
 * Returns how many bytes were used: fewer than len when a whole request
 * has been passed on and the rest must wait for gate_next(). */
size_t gate_feed(struct gate *g, const char *data, size_t len, struct evbuffer *out);

/* The verdict on the request most recently passed on. */
struct gate_verdict gate_verdict(const struct gate *g);

/* Is a request being passed on or waiting to be answered?  false between
 * requests, and once the connection is closing. */
bool gate_busy(const struct gate *g);

/* Has the gate stopped passing requests (refused one, or the client
 * asked to close)?  Whatever the client sends from then on is dropped. */
bool gate_closed(const struct gate *g);

/* A filter bufferevent over under that evhtp reads instead of under.
 * The filter owns the gate (freed with it) but not under, so a closing
 * connection's socket can outlive evhtp's filter (see linger.h). */
struct bufferevent *gate_wrap(struct gate *g, struct bufferevent *under);

/* evhtp is done with the current request: parse the next one, and have
 * evhtp read it from the next loop iteration on. */
void gate_next(struct gate *g);

/* The connection is closing: pass nothing more, touch no bufferevent. */
void gate_close(struct gate *g);

#endif
