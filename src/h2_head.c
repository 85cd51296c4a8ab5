/* h2_head: an HTTP/2 answer's header blocks into its head (see
 * h2_head.h).  nghttp2 has checked the syntax (one three-digit :status,
 * one numeric content-length); what is left is keeping, counting and
 * joining. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_head.h"
#include "xalloc.h"

/* what RFC 9113 6.5.2 counts for each field beyond its bytes */
#define FIELD_OVERHEAD 32

void h2_head_start(struct h2_head *hd)
{
	hd->status = 0;
	hd->arena_len = 0;
	hd->nraw = 0;
}

bool h2_head_count(struct h2_head *hd, size_t nlen, size_t vlen, bool keeping,
                   size_t max_list, size_t max_fields, char *msg, size_t msglen)
{
	hd->bytes += nlen + vlen + FIELD_OVERHEAD;
	if (hd->bytes > max_list) {
		snprintf(msg, msglen, "malformed answer: header fields over %zu bytes", max_list);
		return false;
	}
	if (keeping && hd->nraw >= max_fields) {
		snprintf(msg, msglen, "malformed answer: more than %zu header fields", max_fields);
		return false;
	}
	return true;
}

static void arena_add(struct h2_head *hd, const uint8_t *at, size_t n)
{
	if (hd->arena_len + n > hd->arena_cap) {
		hd->arena_cap = (hd->arena_len + n) * 2 + 256;
		hd->arena = xrealloc(hd->arena, hd->arena_cap);
	}
	if (n > 0)
		memcpy(hd->arena + hd->arena_len, at, n);
	hd->arena_len += n;
}

/* ":status" as the number, or 0 (nghttp2 checks it is three digits). */
static int parse_status(const uint8_t *v, size_t n)
{
	if (n != 3 || v[0] < '1' || v[0] > '9' || v[1] < '0' || v[1] > '9' || v[2] < '0' ||
	    v[2] > '9')
		return 0;
	return (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
}

static void add_field(struct h2_head *hd, const uint8_t *name, size_t nlen,
                      const uint8_t *value, size_t vlen)
{
	struct fields_raw *r;

	if (hd->nraw == hd->raw_cap) {
		hd->raw_cap = hd->raw_cap * 2 + 16;
		hd->raw = xrealloc(hd->raw, hd->raw_cap * sizeof *hd->raw);
	}
	r = &hd->raw[hd->nraw++];
	r->name_off = hd->arena_len;
	r->name_len = nlen;
	arena_add(hd, name, nlen);
	r->value_off = hd->arena_len;
	r->value_len = vlen;
	arena_add(hd, value, vlen);
}

void h2_head_add(struct h2_head *hd, const uint8_t *name, size_t nlen, const uint8_t *value,
                 size_t vlen)
{
	if (nlen == 7 && memcmp(name, ":status", 7) == 0)
		hd->status = parse_status(value, vlen);
	else if (nlen > 0 && name[0] != ':')
		add_field(hd, name, nlen, value, vlen);
}

/* content-length as announced (nghttp2 has checked it is one number), or -1. */
static int64_t announced_length(const struct exchange_field *f, size_t n)
{
	size_t i, k;
	int64_t v = 0;

	for (i = 0; i < n; i++) {
		if (f[i].name_len != 14 || memcmp(f[i].name, "content-length", 14) != 0)
			continue;
		if (f[i].value_len == 0 || f[i].value_len > 18)
			return -1;
		for (k = 0; k < f[i].value_len; k++) {
			if (f[i].value[k] < '0' || f[i].value[k] > '9')
				return -1;
			v = v * 10 + (f[i].value[k] - '0');
		}
		return v;
	}
	return -1;
}

void h2_head_build(const struct h2_head *hd, struct fields_joiner *j, bool no_body,
                   struct exchange_head *out)
{
	*out = (struct exchange_head){ .status = hd->status, .reason = "", .reason_len = 0 };
	out->nfields = fields_join(j, hd->arena, hd->arena_len, hd->raw, hd->nraw);
	out->fields = j->fields;
	if (no_body || hd->status == 204 || hd->status == 304)
		out->content_length = 0;
	else
		out->content_length = announced_length(out->fields, out->nfields);
}

void h2_head_free(struct h2_head *hd)
{
	free(hd->arena);
	free(hd->raw);
	hd->arena = NULL;
	hd->raw = NULL;
	hd->arena_len = hd->arena_cap = hd->nraw = hd->raw_cap = 0;
}
