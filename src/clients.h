/* clients: the open client connections of the local endpoint.  evhtp
 * keeps no list of them, so this module does: it puts a gate (gate.h)
 * between each socket and evhtp, frees the connections still open at
 * exit, closes the others with a lingering close (linger.h), and holds
 * each one to a deadline (a whole request within client_timeout of
 * connecting or of its previous answer), which a client trickling a byte
 * now and then would otherwise never meet. */
#ifndef FANOUTD_CLIENTS_H
#define FANOUTD_CLIENTS_H

#include <stdbool.h>
#include <evhtp/evhtp.h>

#include "gate.h"

struct clients;

/* lim is borrowed: the gate of every connection reads it per request. */
struct clients *clients_new(struct event_base *base, const struct gate_limits *lim);

/* Close and free every connection still open, then the list. */
void clients_free(struct clients *cl);

/* Close every connection (shutdown: no batch is running), and call
 * done(arg) once their sockets have sent all they had. */
void clients_close_all(struct clients *cl, void (*done)(void *), void *arg);

/* A new connection: gated, tracked, and its deadline starts now. */
void clients_accepted(struct clients *cl, evhtp_connection_t *conn, long timeout_ms);

/* The request is whole: its connection's clock stops. */
void clients_request_in(evhtp_request_t *req);

/* Resume a paused request that has been answered.  Its answer may have
 * left evhtp's buffer for the socket's already, so evhtp would wait for a
 * write event that never comes: one is raised too. */
void clients_resume(evhtp_request_t *req);

/* evhtp is done with the request (its fini hook: the answer has left
 * evhtp): the clock runs again for the next one, and the next pipelined
 * request may go in. */
void clients_request_done(evhtp_request_t *req);

/* Will the connection close after this request (the gate passes nothing
 * more: refused, or the client asked)? */
bool clients_closing(evhtp_request_t *req);

/* Is a connection accepted by htp still open? */
bool clients_served_by(const struct clients *cl, const evhtp_t *htp);

/* The gate's verdict on the request (status 0: not refused). */
struct gate_verdict clients_verdict(evhtp_request_t *req);

#endif
