/* request_headers: the header lists of a batch request.  Which headers a
 * client may send (token names, values without CR, LF or NUL, none of
 * those fanoutd writes itself), and each request's list: its own headers
 * copied, then the batch's where not overridden, borrowed from the one
 * copy the batch keeps.  Part of the request module (request_internal.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "request.h"
#include "httptoken.h"
#include "request_internal.h"
#include "xalloc.h"

#define MAX_HEADER_VALUE 8192
/* Per object of headers, as Apache's LimitRequestFields: merging the
 * batch's into each request compares every pair, so 100,000 headers
 * would cost 10^10 comparisons a request. */
#define MAX_HEADERS 100
/* The heap blocks of a copied header, counted with its bytes: or 100,000
 * one-letter headers would pass for 200 KB (REQUEST_MAX_BATCH_HEADER_BYTES). */
#define HEADER_OVERHEAD 80

/* Headers fanoutd writes itself: a client value would break the framing
 * of the upstream connection or its reuse. */
static const char *const reserved_headers[] = {
	"content-length", "transfer-encoding", "connection", "keep-alive",
	"upgrade", "te", "trailer", "proxy-connection",
};

/* Headers asking for an exchange fanoutd does not hold: with Expect:
 * 100-continue the upstream waits for a body that waits for its interim
 * answer, until the request times out. */
static const char *const unsupported_headers[] = {
	"expect",
};

static int check_header(const char *path, const char *name, const json_t *value,
                        char *err, size_t errlen)
{
	const char *v;
	size_t i;

	if (name[0] == '\0')
		return request_fail(err, errlen, "%s: empty header name", path);
	if (!httptoken_is(name, strlen(name)))
		return request_fail(err, errlen, "%s.%s: invalid character in header name",
		                    path, name);
	for (i = 0; i < sizeof reserved_headers / sizeof *reserved_headers; i++)
		if (strcasecmp(name, reserved_headers[i]) == 0)
			return request_fail(err, errlen, "%s.%s: header is set by fanoutd",
			                    path, name);
	for (i = 0; i < sizeof unsupported_headers / sizeof *unsupported_headers; i++)
		if (strcasecmp(name, unsupported_headers[i]) == 0)
			return request_fail(err, errlen, "%s.%s: header is not supported "
			                    "(fanoutd sends the body at once)", path, name);
	if (!json_is_string(value))
		return request_fail(err, errlen, "%s.%s: header value must be a string",
		                    path, name);
	v = json_string_value(value);
	if (strlen(v) != json_string_length(value) || strpbrk(v, "\r\n") != NULL)
		return request_fail(err, errlen, "%s.%s: CR, LF or NUL in header value",
		                    path, name);
	if (strlen(v) > MAX_HEADER_VALUE)
		return request_fail(err, errlen, "%s.%s: header value longer than %d bytes", path, name,
		                    MAX_HEADER_VALUE);
	return 0;
}

int request_headers_check(const json_t *obj, const char *path, char *err, size_t errlen)
{
	const char *name;
	json_t *value;

	if (!json_is_object(obj))
		return request_fail(err, errlen, "%s: must be an object of strings", path);
	if (json_object_size(obj) > MAX_HEADERS)
		return request_fail(err, errlen, "%s: more than %d headers", path, MAX_HEADERS);
	json_object_foreach((json_t *)obj, name, value)
		if (check_header(path, name, value, err, errlen) < 0)
			return -1;
	return 0;
}

bool request_item_has_header(const struct request_item *it, const char *name)
{
	size_t i;

	for (i = 0; i < it->nheaders; i++)
		if (strcasecmp(it->headers[i].name, name) == 0)
			return true;
	return false;
}

/* Room for n more headers. */
static void reserve_headers(struct request_item *it, size_t n)
{
	it->headers = xrealloc(it->headers, (it->nheaders + n) * sizeof *it->headers);
}

/* A copy of the request's own header; the owned ones come first. */
static void add_own_header(struct request_item *it, const char *name, const char *value)
{
	if (it->nheaders != it->nheaders_owned)
		abort();   /* a bug: borrowed ones are already in the list */
	reserve_headers(it, 1);
	it->headers[it->nheaders].name = xstrdup(name);
	it->headers[it->nheaders].value = xstrdup(value);
	it->nheaders++;
	it->nheaders_owned++;
}

/* A header whose strings live as long as the batch (or forever). */
void request_headers_add_borrowed(struct request_item *it, const char *name, const char *value)
{
	reserve_headers(it, 1);
	it->headers[it->nheaders].name = name;
	it->headers[it->nheaders].value = value;
	it->nheaders++;
}

/* Per-request headers first, then the batch's where not overridden. */
void request_headers_merge(struct request_item *it, const json_t *own,
                           const struct batch_request *br)
{
	const char *name;
	json_t *value;
	size_t i;

	if (own != NULL)
		json_object_foreach((json_t *)own, name, value)
			add_own_header(it, name, json_string_value(value));
	for (i = 0; i < br->nbatch_headers; i++)
		if (!request_item_has_header(it, br->batch_headers[i].name))
			request_headers_add_borrowed(it, br->batch_headers[i].name,
			                             br->batch_headers[i].value);
}

/* The batch's headers, copied once for all its requests. */
void request_headers_keep_batch(struct batch_request *br, const json_t *obj)
{
	const char *name;
	json_t *value;
	size_t i = 0;

	br->batch_headers = xcalloc(json_object_size(obj), sizeof *br->batch_headers);
	json_object_foreach((json_t *)obj, name, value) {
		br->batch_headers[i].name = xstrdup(name);
		br->batch_headers[i].value = xstrdup(json_string_value(value));
		br->nbatch_headers = ++i;
	}
}

/* The memory the item's headers take, roughly: a borrowed one only its
 * slot in the list. */
size_t request_headers_bytes(const struct request_item *it)
{
	size_t i, n = it->nheaders * sizeof *it->headers;

	for (i = 0; i < it->nheaders_owned; i++)
		n += strlen(it->headers[i].name) + strlen(it->headers[i].value) +
		     HEADER_OVERHEAD;
	return n;
}
