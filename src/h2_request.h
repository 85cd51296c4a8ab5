/* h2_request: the request side of the HTTP/2 codec (see h2.h): one
 * exchange_request as the header list nghttp2 submits — pseudo-headers,
 * the upstream's defaults the request does not override, the request's
 * own headers lower-cased without the ones that belong to one HTTP/1.1
 * connection, and content-length as h1 sends it.  Used by h2.c only. */
#ifndef FANOUTD_H2_REQUEST_H
#define FANOUTD_H2_REQUEST_H

#include <stddef.h>
#include <nghttp2/nghttp2.h>

#include "exchange.h"
#include "request.h"
#include "units.h"

/* A header list and the bytes it points into (owned). */
struct h2_request_fields {
	nghttp2_nv *nv;
	size_t n;
	char *lower;                        /* the request's names, lower-cased */
	char digits[UNITS_UINT_MAX];        /* the content-length value */
};

/* The list for req; req, scheme and defaults are borrowed until
 * h2_request_fields_free (nghttp2 copies what it submits). */
void h2_request_fields(struct h2_request_fields *f, const struct exchange_request *req,
                       const char *scheme, const struct request_header *defaults,
                       size_t ndefaults);
void h2_request_fields_free(struct h2_request_fields *f);

#endif
