/* linger: closes client sockets the way nginx's lingering close does.
 * What is queued goes out (as long as the client takes some of it every
 * LINGER_STALLED_MS), the write side is shut, and whatever the client
 * still sends (the rest of an upload we answered 413, pipelined requests
 * after a refused one) is read and dropped until it closes, for LINGER_MS
 * at most: closing with unread input would make the kernel send a reset,
 * and the client would lose the answer we sent. */
#ifndef FANOUTD_LINGER_H
#define FANOUTD_LINGER_H

struct bufferevent;
struct event_base;

/* Reading after the shut: at most this long, and at most LINGER_IDLE_MS
 * without a byte.  Writing before it: LINGER_STALLED_MS without progress. */
#define LINGER_MS 5000
#define LINGER_IDLE_MS 2000
#define LINGER_STALLED_MS 10000

struct lingers;

struct lingers *lingers_new(struct event_base *base);

/* Close every socket still lingering, then the list. */
void lingers_free(struct lingers *ls);

/* Shutting down: from now on a socket closes as soon as its output is
 * out, and done(arg) is called once none is left (at once if none is). */
void lingers_hurry(struct lingers *ls, void (*done)(void *), void *arg);

/* Take bev (a socket bufferevent that frees its socket) and close it as
 * above; it is freed when done. */
void linger_start(struct lingers *ls, struct bufferevent *bev);

#endif
