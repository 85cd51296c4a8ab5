/* outcome: one upstream request's result and the storage of its body and
 * headers (see outcome.h).  Every heap block it points to is its own and
 * goes in outcome_clear, except a body the answer writer took over. */
#include <stdlib.h>
#include <string.h>

#include "outcome.h"
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
}

void outcome_clear(struct outcome *o)
{
	free(o->message);
	json_decref(o->headers);
	free(o->headers_json);
	free(o->content_type);
	free(o->body);
	outcome_init(o);
}

void outcome_seal(struct outcome *o)
{
	const char *ct;

	if (o->headers == NULL)
		return;
	ct = json_string_value(json_object_get(o->headers, "content-type"));
	o->content_type = ct ? xstrdup(ct) : NULL;
	o->headers_json = xcheck(json_dumps(o->headers, JSON_COMPACT));
	json_decref(o->headers);
	o->headers = NULL;
}

void outcome_body_reserve(struct outcome *o, size_t n)
{
	if (n <= o->body_cap)
		return;
	o->body = xrealloc(o->body, n);
	o->body_cap = n;
}

void outcome_body_append(struct outcome *o, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	size_t cap = o->body_cap ? o->body_cap : 1024;

	while (cap < o->body_len + len)
		cap *= 2;
	outcome_body_reserve(o, cap);
	evbuffer_remove(in, o->body + o->body_len, len);
	o->body_len += len;
}

void outcome_body_trim(struct outcome *o)
{
	char *p;

	if (o->body == NULL || o->body_cap == o->body_len || o->body_len == 0)
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
