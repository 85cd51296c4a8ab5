/* h2_request: a request as an HTTP/2 header list (see h2_request.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h2_request.h"
#include "xalloc.h"

static bool name_is(const char *name, const char *lower)
{
	return strcasecmp(name, lower) == 0;
}

/* Headers that belong to one HTTP/1.1 connection, or that h2 writes itself. */
static bool dropped(const struct request_header *hd)
{
	static const char *const names[] = {
		"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
		"host", "content-length",
	};
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (name_is(hd->name, names[i]))
			return true;
	return name_is(hd->name, "te") && strcasecmp(hd->value, "trailers") != 0;
}

static bool request_has(const struct exchange_request *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (name_is(req->headers[i].name, name))
			return true;
	return false;
}

static nghttp2_nv nv(const char *name, size_t nlen, const char *value, size_t vlen)
{
	return (nghttp2_nv){ (uint8_t *)name, (uint8_t *)value, nlen, vlen, NGHTTP2_NV_FLAG_NONE };
}

static nghttp2_nv nvs(const char *name, const char *value)
{
	return nv(name, strlen(name), value, strlen(value));
}

/* What the request's own Host says, else the authority given. */
static const char *authority(const struct exchange_request *req)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (name_is(req->headers[i].name, "host"))
			return req->headers[i].value;
	return req->authority;
}

static bool wants_length(const struct exchange_request *req)
{
	return req->body != NULL || req->method == REQUEST_METHOD_POST ||
	       req->method == REQUEST_METHOD_PUT || req->method == REQUEST_METHOD_PATCH;
}

/* The request's header names lower-cased, one after another in lower. */
static size_t add_own_headers(const struct exchange_request *req, char *lower, nghttp2_nv *out)
{
	size_t i, k, n = 0, len;

	for (i = 0; i < req->nheaders; i++) {
		if (dropped(&req->headers[i]))
			continue;
		len = strlen(req->headers[i].name);
		for (k = 0; k < len; k++) {
			unsigned char c = (unsigned char)req->headers[i].name[k];

			lower[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		out[n++] = nv(lower, len, req->headers[i].value, strlen(req->headers[i].value));
		lower += len;
	}
	return n;
}

static size_t names_len(const struct exchange_request *req)
{
	size_t i, len = 0;

	for (i = 0; i < req->nheaders; i++)
		len += strlen(req->headers[i].name);
	return len;
}

void h2_request_fields(struct h2_request_fields *f, const struct exchange_request *req,
                       const char *scheme, const struct request_header *defaults,
                       size_t ndefaults)
{
	size_t max = 5 + ndefaults + req->nheaders, i;
	char *end;

	f->nv = xcalloc(max, sizeof *f->nv);
	f->lower = xmalloc(names_len(req) + 1);
	f->n = 0;
	f->nv[f->n++] = nvs(":method", request_method_name(req->method));
	f->nv[f->n++] = nvs(":scheme", scheme);
	f->nv[f->n++] = nvs(":authority", authority(req));
	f->nv[f->n++] = nvs(":path", req->target);
	for (i = 0; i < ndefaults; i++)
		if (!request_has(req, defaults[i].name))
			f->nv[f->n++] = nvs(defaults[i].name, defaults[i].value);
	f->n += add_own_headers(req, f->lower, f->nv + f->n);
	if (wants_length(req)) {
		end = units_format_uint(f->digits, req->body != NULL ? req->body_len : 0);
		f->nv[f->n++] = nv("content-length", 14, f->digits, (size_t)(end - f->digits));
	}
}

void h2_request_fields_free(struct h2_request_fields *f)
{
	free(f->nv);
	free(f->lower);
	f->nv = NULL;
	f->lower = NULL;
	f->n = 0;
}
