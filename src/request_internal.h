/* request_internal: what the three files of the request module share —
 * request.c (the batch and its items), request_url.c (an item's URL) and
 * request_headers.c (the header lists).  Not for other modules: they use
 * request.h. */
#ifndef FANOUTD_REQUEST_INTERNAL_H
#define FANOUTD_REQUEST_INTERNAL_H

#include <stddef.h>
#include <jansson.h>

#include "request.h"

/* What the header lists of a batch's requests may take: a request's own
 * headers are copies (bytes and heap blocks), the batch's are shared and
 * cost a slot each. */
#define REQUEST_MAX_BATCH_HEADER_BYTES (16u << 20)

/* Write the message into err and return -1. */
int request_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The URL-derived fields of it (tls, host, port, target, upstream_key,
 * host_header) from url, the host checked against lim->acl.  Messages
 * start with path. */
int request_url_parse(struct request_item *it, const char *url, const char *path,
                      const struct request_limits *lim, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* obj is an object of at most 100 headers a client may send: token
 * names, not one fanoutd writes itself, string values without CR, LF or
 * NUL.  Messages start with path. */
int request_headers_check(const json_t *obj, const char *path, char *err, size_t errlen);

/* The batch's headers (checked), copied once for all its requests. */
void request_headers_keep_batch(struct batch_request *br, const json_t *obj);

/* it's own headers (checked, or NULL) copied, then the batch's where not
 * overridden, borrowed. */
void request_headers_merge(struct request_item *it, const json_t *own,
                           const struct batch_request *br);

/* Add a header whose strings live as long as the batch (or forever). */
void request_headers_add_borrowed(struct request_item *it, const char *name,
                                  const char *value);

/* The memory the item's headers take, roughly: a borrowed one only its
 * slot in the list. */
size_t request_headers_bytes(const struct request_item *it);

#endif
