/* clients: the open client connections of the local endpoint.  evhtp
 * keeps no list of them, so this module does: it frees those still open
 * at exit, and holds each one to a deadline (a whole request within
 * client_timeout of connecting or of its previous answer), which a client
 * trickling a byte now and then would otherwise never meet. */
#ifndef FANOUTD_CLIENTS_H
#define FANOUTD_CLIENTS_H

#include <evhtp/evhtp.h>

struct clients;

struct clients *clients_new(struct event_base *base);

/* Close and free every connection still open, then the list. */
void clients_free(struct clients *cl);

/* A new connection: tracked, and its deadline starts now. */
void clients_accepted(struct clients *cl, evhtp_connection_t *conn, long timeout_ms);

/* The request is whole: its connection's clock stops. */
void clients_request_in(evhtp_request_t *req);

/* The request is answered: the clock runs again for the next one. */
void clients_answered(evhtp_request_t *req);

/* Why a request's framing is ambiguous (two Content-Lengths, CL and TE,
 * TE other than chunked), or NULL: such a request could be read two ways
 * by a proxy in front of us, the start of request smuggling. */
const char *clients_framing_problem(evhtp_headers_t *hdr);

#endif
