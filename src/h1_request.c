/* h1_request: the request side of the HTTP/1.1 codec (see h1.h): the
 * per-upstream header block, and a request serialised into one evbuffer
 * reservation with memcpy only (no printf per request). */
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "h1.h"
#include "httptoken.h"
#include "units.h"
#include "xalloc.h"

/* --- requests ------------------------------------------------------------ */

struct block_line {
	const char *name;     /* into text: the line starts with the name */
	size_t name_len;
	size_t off, len;      /* the whole line, "Name: value\r\n" */
};

struct h1_block {
	char *text;                 /* every line (owned) */
	size_t len;
	struct block_line *lines;   /* owned */
	size_t n;
};

static bool is_token(const char *s)
{
	return httptoken_is(s, strlen(s));
}

static bool is_line_safe(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

static bool is_target(const char *s)
{
	return *s != '\0' && is_line_safe(s) && strchr(s, ' ') == NULL;
}

static size_t header_line_len(const struct h1_header *h)
{
	return strlen(h->name) + 2 + strlen(h->value) + 2;
}

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

static char *put_header(char *p, const struct h1_header *h)
{
	p = put(p, h->name, strlen(h->name));
	p = put(p, ": ", 2);
	p = put(p, h->value, strlen(h->value));
	return put(p, "\r\n", 2);
}

struct h1_block *h1_block_new(const struct h1_header *headers, size_t n)
{
	struct h1_block *b = xcalloc(1, sizeof *b);
	size_t i, len = 0;
	char *p;

	for (i = 0; i < n; i++) {
		assert(is_token(headers[i].name) && is_line_safe(headers[i].value));
		len += header_line_len(&headers[i]);
	}
	b->text = xmalloc(len + 1);
	b->lines = xcalloc(n ? n : 1, sizeof *b->lines);
	p = b->text;
	for (i = 0; i < n; i++) {
		b->lines[i].name = p;
		b->lines[i].name_len = strlen(headers[i].name);
		b->lines[i].off = (size_t)(p - b->text);
		p = put_header(p, &headers[i]);
		b->lines[i].len = (size_t)(p - b->text) - b->lines[i].off;
	}
	b->len = len;
	b->n = n;
	return b;
}

void h1_block_free(struct h1_block *b)
{
	if (b == NULL)
		return;
	free(b->text);
	free(b->lines);
	free(b);
}

static bool request_has(const struct h1_request *req, const struct block_line *l)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (strncasecmp(req->headers[i].name, l->name, l->name_len) == 0 &&
		    req->headers[i].name[l->name_len] == '\0')
			return true;
	return false;
}

/* POST, PUT and PATCH always say how long their body is, even when it is
 * empty: without it an HTTP/1.1 server may wait for one (RFC 9110 8.6). */
static bool needs_length(const struct h1_request *req)
{
	return req->body != NULL || strcmp(req->method, "POST") == 0 ||
	       strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0;
}

#define REQUEST_VERSION " HTTP/1.1\r\n"
#define CONTENT_LENGTH "Content-Length: "

static size_t request_head_len(const struct h1_request *req, size_t cl_digits)
{
	size_t i, len = strlen(req->method) + 1 + strlen(req->target) + strlen(REQUEST_VERSION);

	for (i = 0; req->block != NULL && i < req->block->n; i++)
		if (!request_has(req, &req->block->lines[i]))
			len += req->block->lines[i].len;
	for (i = 0; i < req->nheaders; i++)
		len += header_line_len(&req->headers[i]);
	if (cl_digits > 0)
		len += strlen(CONTENT_LENGTH) + cl_digits + 2;
	return len + 2;
}

static bool request_is_sane(const struct h1_request *req)
{
	size_t i;

	if (!is_token(req->method) || !is_target(req->target))
		return false;
	for (i = 0; i < req->nheaders; i++)
		if (!is_token(req->headers[i].name) || !is_line_safe(req->headers[i].value))
			return false;
	return true;
}

void h1_write_request(struct evbuffer *out, const struct h1_request *req)
{
	const struct h1_block *b = req->block;
	char digits[24];
	size_t cl_digits = 0, len, i;
	struct evbuffer_iovec v;
	char *p;

	assert(request_is_sane(req));
	if (needs_length(req))
		cl_digits = (size_t)(units_format_uint(digits, req->body != NULL ? req->body_len : 0)
		                     - digits);
	len = request_head_len(req, cl_digits);
	/* the head in one contiguous reservation: no chain per piece */
	if (evbuffer_reserve_space(out, (ev_ssize_t)len, &v, 1) != 1 || v.iov_len < len)
		abort();
	p = v.iov_base;
	p = put(p, req->method, strlen(req->method));
	p = put(p, " ", 1);
	p = put(p, req->target, strlen(req->target));
	p = put(p, REQUEST_VERSION, strlen(REQUEST_VERSION));
	for (i = 0; b != NULL && i < b->n; i++)
		if (!request_has(req, &b->lines[i]))
			p = put(p, b->text + b->lines[i].off, b->lines[i].len);
	for (i = 0; i < req->nheaders; i++)
		p = put_header(p, &req->headers[i]);
	if (cl_digits > 0) {
		p = put(p, CONTENT_LENGTH, strlen(CONTENT_LENGTH));
		p = put(p, digits, cl_digits);
		p = put(p, "\r\n", 2);
	}
	p = put(p, "\r\n", 2);
	assert((size_t)(p - (char *)v.iov_base) == len);
	v.iov_len = len;
	if (evbuffer_commit_space(out, &v, 1) != 0)
		abort();
	if (req->body != NULL && req->body_len > 0 && evbuffer_add(out, req->body, req->body_len) != 0)
		abort();
}

