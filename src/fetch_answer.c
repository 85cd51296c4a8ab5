/* fetch_answer: the answer of one fetch as it arrives (fetch.c owns the
 * rest of its life): the head into the outcome, the body kept within
 * max_response_body and max_batch_response and its Content-Encoding
 * undone on the way, and at the end what the status makes of it (ok,
 * http_status, rate_limited).  Events of the exchange (exchange.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "decode.h"
#include "fetch.h"
#include "fetch_internal.h"
#include "xalloc.h"

static char *cap_message(const char *what, uint64_t cap, const char *key)
{
	return xasprintf("%s over %s (%llu bytes)", what, key, (unsigned long long)cap);
}

/* A decoder for the answer's Content-Encoding, or NULL (none, or one we
 * do not know: the body is then kept as sent). */
static struct decoder *decoder_for(const struct exchange_head *head)
{
	static const char name[] = "content-encoding";
	size_t i;

	for (i = 0; i < head->nfields; i++)
		if (head->fields[i].name_len == sizeof name - 1 &&
		    memcmp(head->fields[i].name, name, sizeof name - 1) == 0)
			return decode_new(head->fields[i].value, head->fields[i].value_len);
	return NULL;
}

/* RFC 9110's reason phrases (and 429's, RFC 6585), for an answer that
 * came without one — HTTP/2 has none — so that its error message reads
 * as over HTTP/1.1.  NULL for a code without one. */
static const char *standard_reason(int status)
{
	static const struct { int code; const char *text; } table[] = {
		{ 300, "Multiple Choices" }, { 301, "Moved Permanently" }, { 302, "Found" },
		{ 303, "See Other" }, { 304, "Not Modified" }, { 305, "Use Proxy" },
		{ 307, "Temporary Redirect" }, { 308, "Permanent Redirect" },
		{ 400, "Bad Request" }, { 401, "Unauthorized" }, { 402, "Payment Required" },
		{ 403, "Forbidden" }, { 404, "Not Found" }, { 405, "Method Not Allowed" },
		{ 406, "Not Acceptable" }, { 407, "Proxy Authentication Required" },
		{ 408, "Request Timeout" }, { 409, "Conflict" }, { 410, "Gone" },
		{ 411, "Length Required" }, { 412, "Precondition Failed" },
		{ 413, "Content Too Large" }, { 414, "URI Too Long" },
		{ 415, "Unsupported Media Type" }, { 416, "Range Not Satisfiable" },
		{ 417, "Expectation Failed" }, { 421, "Misdirected Request" },
		{ 422, "Unprocessable Content" }, { 426, "Upgrade Required" },
		{ 429, "Too Many Requests" },
		{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
		{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
	};
	size_t i;

	for (i = 0; i < sizeof table / sizeof table[0]; i++)
		if (table[i].code == status)
			return table[i].text;
	return NULL;
}

/* "upstream answered 404 Not Found": the upstream's words, else the
 * standard ones, else the number alone. */
static char *status_message(const struct exchange_head *head)
{
	const char *std = standard_reason(head->status);

	if (head->reason_len > 0)
		return xasprintf("upstream answered %d %.*s", head->status,
		                 (int)head->reason_len, head->reason);
	if (std != NULL)
		return xasprintf("upstream answered %d %s", head->status, std);
	return xasprintf("upstream answered %d", head->status);
}

int fetch_answer_head(void *ctx, const struct exchange_head *head)
{
	struct fetch *f = ctx;

	f->out->timing.ttfb_ms = clock_now_ms() - f->t_granted;
	outcome_set_head(f->out, head);
	free(f->status_message);
	f->status_message = NULL;
	if (head->status < 200 || head->status >= 300)
		f->status_message = status_message(head);
	decode_free(f->decoder);
	f->decoder = f->item->decompress ? decoder_for(head) : NULL;
	f->coded_len = 0;
	/* a coded body's length says little about what it decodes to: the
	 * cap is checked on the decoded bytes as they come */
	if (f->decoder == NULL && head->content_length > 0 &&
	    (uint64_t)head->content_length > f->env->max_response_body) {
		fetch_fail(f, OUTCOME_TOO_LARGE, cap_message("Content-Length",
		           f->env->max_response_body, "max_response_body"));
		return -1;
	}
	/* size the body buffer once; a lying Content-Length costs at most 1 MiB
	 * up front, past that the buffer grows as bytes really arrive */
	if (head->content_length > 0)
		outcome_body_reserve(f->out, (size_t)(head->content_length < (1 << 20)
		                                      ? head->content_length : (1 << 20)));
	return 0;
}

/* Keep len more bytes of the body (decoded, if it was coded), within
 * max_response_body and max_batch_response; -1 past one of them. */
static int keep_body(void *arg, const char *data, size_t len)
{
	struct fetch *f = arg;

	if (f->body_len + len > f->env->max_response_body) {
		f->over_cap = "max_response_body";
		return -1;
	}
	if (*f->batch_bytes + len > f->env->max_batch_response) {
		f->over_cap = "max_batch_response";
		return -1;
	}
	f->body_len += len;
	*f->batch_bytes += len;
	outcome_body_add(f->out, data, len);
	return 0;
}

/* What a piece of the body came to: go on (0), or the fetch has failed
 * (-1: over a cap, or a coded body that does not decode). */
static int body_verdict(struct fetch *f, enum decode_result r)
{
	if (r == DECODE_OK)
		return 0;
	if (r == DECODE_STOPPED && strcmp(f->over_cap, "max_response_body") == 0)
		fetch_fail(f, OUTCOME_TOO_LARGE, cap_message("answer body",
		           f->env->max_response_body, "max_response_body"));
	else if (r == DECODE_STOPPED)
		fetch_fail(f, OUTCOME_TOO_LARGE, cap_message("bodies of the batch",
		           f->env->max_batch_response, "max_batch_response"));
	else
		fetch_fail(f, OUTCOME_PROTOCOL, xasprintf("malformed answer: %s",
		           decode_error(f->decoder)));
	return -1;
}

int fetch_answer_body(void *ctx, const char *data, size_t len)
{
	struct fetch *f = ctx;

	if (f->decoder == NULL)
		return body_verdict(f, keep_body(f, data, len) < 0 ? DECODE_STOPPED : DECODE_OK);
	f->coded_len += len;
	return body_verdict(f, decode_feed(f->decoder, data, len, keep_body, f));
}

/* The end of a coded body: what the decoder still holds, and whether the
 * stream was whole.  -1: the fetch has failed. */
static int finish_decoding(struct fetch *f)
{
	if (f->decoder == NULL)
		return 0;
	if (body_verdict(f, decode_finish(f->decoder, keep_body, f)) < 0)
		return -1;
	if (f->coded_len > 0)   /* something was undone (not a HEAD, not a 304) */
		f->out->decoded = xstrdup(decode_name(f->decoder));
	return 0;
}

void fetch_answer_end(void *ctx, bool reusable)
{
	struct fetch *f = ctx;
	int code = f->out->status;
	enum outcome_type type;
	char *msg;

	if (f->out->reused)
		f->out->timing.connect_ms = 0;
	if (finish_decoding(f) < 0)
		return;
	if (code >= 200 && code < 300) {
		fetch_finish(f, OUTCOME_OK, NULL, NULL, reusable);
		return;
	}
	msg = f->status_message;
	f->status_message = NULL;
	type = code == 429 ? OUTCOME_RATE_LIMITED : OUTCOME_HTTP_STATUS;
	fetch_finish(f, type, msg, NULL, reusable);
}

