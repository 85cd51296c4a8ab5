/* outcome: one upstream request's result and the storage of its body and
 * headers (see outcome.h).  Every heap block it points to is its own and
 * goes in outcome_clear, except a body the answer writer took over. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "answer.h"
#include "clock.h"
#include "jsonvalid.h"
#include "outcome.h"
#include "retry.h"
#include "xalloc.h"

static const char *const type_names[] = {
	[OUTCOME_PENDING] = "pending",
	[OUTCOME_OK] = "ok",
	[OUTCOME_CANCELLED] = "cancelled",
	[OUTCOME_HTTP_STATUS] = "http_status",
	[OUTCOME_RATE_LIMITED] = "rate_limited",
	[OUTCOME_TIMEOUT] = "timeout",
	[OUTCOME_CONNECT] = "connect",
	[OUTCOME_DNS] = "dns",
	[OUTCOME_TLS] = "tls",
	[OUTCOME_PROTOCOL] = "protocol",
	[OUTCOME_TOO_LARGE] = "too_large",
	[OUTCOME_FORBIDDEN] = "forbidden",
	[OUTCOME_CIRCUIT_OPEN] = "circuit_open",
};

/* a new type needs a name here before it builds */
_Static_assert(sizeof type_names / sizeof type_names[0] == OUTCOME_COUNT,
               "every outcome type has a name");

const char *outcome_type_name(enum outcome_type t)
{
	return type_names[t];
}

void outcome_init(struct outcome *o)
{
	memset(o, 0, sizeof *o);
	o->retry_after_s = -1;
	o->retry_after_ms = -1;
}

void outcome_next_attempt(struct outcome *o)
{
	unsigned attempts = o->attempts;
	double waited = o->retry_wait_ms;
	bool hedged = o->hedged;

	outcome_clear(o);
	o->attempts = attempts;
	o->retry_wait_ms = waited;
	o->hedged = hedged;
}

void outcome_clear(struct outcome *o)
{
	free(o->message);
	free(o->headers_json);   /* content_type with it */
	outcome_body_release(o);
	free(o->decoded);
	outcome_init(o);
}

void outcome_share_unref(struct outcome_share *s)
{
	if (--s->refs > 0)
		return;
	free(s->data);
	free(s);
}

void outcome_body_release(struct outcome *o)
{
	if (o->share != NULL)
		outcome_share_unref(o->share);
	else
		free(o->body);
	o->share = NULL;
	o->body = NULL;
	o->body_len = o->body_cap = 0;
}

/* The headers block again: its JSON text and the Content-Type after it
 * (the Retry-After text is parsed already). */
static void copy_head(struct outcome *dst, const struct outcome *src)
{
	size_t json = strlen(src->headers_json) + 1;
	size_t ct = src->content_type ? strlen(src->content_type) + 1 : 0;

	dst->headers_json = xmalloc(json + ct);
	memcpy(dst->headers_json, src->headers_json, json);
	dst->content_type = NULL;
	if (ct > 0) {
		memcpy(dst->headers_json + json, src->content_type, ct);
		dst->content_type = dst->headers_json + json;
	}
}

/* The fields that are plain values. */
static void copy_values(struct outcome *dst, const struct outcome *src)
{
	dst->type = src->type;
	dst->status = src->status;
	dst->phase = src->phase;
	dst->retry_after_s = src->retry_after_s;
	dst->retry_after_ms = src->retry_after_ms;
	dst->timing = src->timing;
	dst->reused = src->reused;
	dst->protocol = src->protocol;
	dst->hedged = src->hedged;
}

void outcome_share_result(struct outcome *dst, struct outcome *src)
{
	copy_values(dst, src);
	dst->attempts = src->attempts;
	dst->retry_wait_ms = src->retry_wait_ms;
	dst->message = src->message ? xstrdup(src->message) : NULL;
	dst->decoded = src->decoded ? xstrdup(src->decoded) : NULL;
	if (src->headers_json != NULL)
		copy_head(dst, src);
	if (src->body == NULL)
		return;
	if (src->share == NULL) {   /* the first reader: src's body becomes shared */
		src->share = xmalloc(sizeof *src->share);
		src->share->refs = 1;
		src->share->data = src->body;
		src->share->len = src->body_len;
	}
	src->share->refs++;
	dst->share = src->share;
	dst->body = src->body;
	dst->body_len = dst->body_cap = src->body_len;
}

void outcome_move_result(struct outcome *dst, struct outcome *src)
{
	unsigned attempts = dst->attempts;
	double waited = dst->retry_wait_ms;

	outcome_clear(dst);
	*dst = *src;
	dst->attempts = attempts;
	dst->retry_wait_ms = waited;
	outcome_init(src);
}

/* A field jansson would have kept in the object: a name of valid UTF-8. */
static bool is_kept(const struct exchange_field *f)
{
	return jsonvalid_utf8(f->name, f->name_len);
}

static bool is_named(const struct exchange_field *f, const char *name)
{
	return f->name_len == strlen(name) && memcmp(f->name, name, f->name_len) == 0;
}

/* {"name":"value",...}: its length, and the text at dst (returns the end). */
static size_t headers_json_len(const struct exchange_head *head)
{
	size_t i, n = 2, kept = 0;

	for (i = 0; i < head->nfields; i++) {
		const struct exchange_field *f = &head->fields[i];

		if (is_kept(f))
			n += (kept++ > 0) + answer_text_json_len(f->name, f->name_len) + 1 +
			     answer_text_json_len(f->value, f->value_len);
	}
	return n;
}

static char *add_headers_json(char *dst, const struct exchange_head *head)
{
	size_t i, kept = 0;

	*dst++ = '{';
	for (i = 0; i < head->nfields; i++) {
		const struct exchange_field *f = &head->fields[i];

		if (!is_kept(f))
			continue;
		if (kept++ > 0)
			*dst++ = ',';
		dst = answer_text_json(dst, f->name, f->name_len);
		*dst++ = ':';
		dst = answer_text_json(dst, f->value, f->value_len);
	}
	*dst++ = '}';
	return dst;
}

/* The kept field called name, or NULL. */
static const struct exchange_field *find(const struct exchange_head *head,
                                         const char *name)
{
	size_t i;

	for (i = 0; i < head->nfields; i++)
		if (is_named(&head->fields[i], name) && is_kept(&head->fields[i]))
			return &head->fields[i];
	return NULL;
}

/* A value as answer_textn makes it, NUL-terminated: read as a C string it
 * ends at a NUL of its own, as the jansson string value it replaces did. */
static char *add_clean(char *dst, const struct exchange_field *f)
{
	dst = answer_text_clean(dst, f->value, f->value_len);
	*dst = '\0';
	return dst + 1;
}

/* The block: the JSON text, then the Content-Type and (on a 429 or 503)
 * the Retry-After values, each NUL-terminated. */
void outcome_set_head(struct outcome *o, const struct exchange_head *head)
{
	const struct exchange_field *ct = find(head, "content-type");
	const struct exchange_field *ra = head->status == 429 || head->status == 503
	                                  ? find(head, "retry-after") : NULL;
	char *p;

	free(o->headers_json);
	o->status = head->status;
	o->headers_json = p = xmalloc(headers_json_len(head) + 1 +
	                              (ct ? ct->value_len + 1 : 0) +
	                              (ra ? ra->value_len + 1 : 0));
	p = add_headers_json(p, head);
	*p++ = '\0';
	o->content_type = ct ? p : NULL;
	if (ct != NULL)
		p = add_clean(p, ct);
	o->retry_after_s = -1;
	o->retry_after_ms = -1;
	if (ra != NULL) {
		add_clean(p, ra);
		o->retry_after_ms = retry_after_ms(p, strlen(p), clock_wall_ms());
		if (o->retry_after_ms >= 0)
			o->retry_after_s = retry_seconds_up(o->retry_after_ms);
	}
}

void outcome_body_reserve(struct outcome *o, size_t n)
{
	if (n <= o->body_cap)
		return;
	o->body = xrealloc(o->body, n);
	o->body_cap = n;
}

/* Room for len more bytes: doubling, so a body in many pieces costs
 * log n reallocations. */
static void body_grow(struct outcome *o, size_t len)
{
	size_t cap = o->body_cap ? o->body_cap : 1024;

	while (cap < o->body_len + len)
		cap *= 2;
	outcome_body_reserve(o, cap);
}

void outcome_body_append(struct outcome *o, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);

	body_grow(o, len);
	evbuffer_remove(in, o->body + o->body_len, len);
	o->body_len += len;
}

void outcome_body_add(struct outcome *o, const char *data, size_t len)
{
	body_grow(o, len);
	memcpy(o->body + o->body_len, data, len);
	o->body_len += len;
}

void outcome_body_trim(struct outcome *o)
{
	char *p;

	if (o->body == NULL || o->share != NULL || o->body_cap == o->body_len ||
	    o->body_len == 0)
		return;
	p = realloc(o->body, o->body_len);
	if (p == NULL)
		return;   /* shrinking failed: keeping the larger block is fine */
	o->body = p;
	o->body_cap = o->body_len;
}

bool outcome_is_failure(const struct outcome *o)
{
	return o->type != OUTCOME_PENDING && o->type != OUTCOME_OK &&
	       o->type != OUTCOME_CANCELLED;
}
