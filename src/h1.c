/* h1: HTTP/1.1 answers in (see h1.h for the contract; requests out are
 * h1_request.c's).
 *
 *   answer: bytes -> llhttp (HTTP_RESPONSE) -> the head's names and values
 *   collected in one arena per codec -> joined at headers_complete -> head
 *   event; body pieces straight through; on_message_complete pauses
 *   llhttp, so h1_feed knows where the answer ended and whether anything
 *   followed it (then the connection is never reused).
 * Interim (1xx) answers are parsed and dropped whole. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <llhttp.h>

#include "fields.h"
#include "h1.h"
#include "httptoken.h"
#include "xalloc.h"

/* --- the codec's state ------------------------------------------------------ */

enum h1_state {
	H1_IDLE,      /* between exchanges, fit for one: h1_begin starts it */
	H1_WAITING,   /* begun; not one byte of the answer yet */
	H1_HEAD,      /* reading status lines and headers (1xx included) */
	H1_BODY,      /* the final head delivered; reading the body */
	H1_DEAD,      /* failed, cancelled, not reusable, or bytes out of turn:
	               * the connection must be closed (terminal) */
};

struct h1 {
	llhttp_t parser;
	enum h1_state state;
	const struct h1_ops *ops;         /* borrowed */
	void *ctx;
	const struct h1_limits *lim;      /* borrowed */
	/* this exchange */
	bool head_request;                /* the answer has no body */
	bool interim;                     /* the message being read is 1xx */
	bool in_trailers;                 /* past the head: fields not kept */
	bool complete;                    /* the final answer is whole */
	bool keep_alive;                  /* ... and llhttp allowed another */
	size_t head_bytes;                /* against lim->max_head_bytes */
	/* a failure found in a callback, reported once llhttp returns */
	bool pending;
	enum h1_fail_kind pending_kind;
	char message[160];
	/* the head of the message being read (owned, reused per exchange) */
	char *arena;                      /* reason, then names and values */
	size_t arena_len, arena_cap;
	size_t reason_len;                /* the reason is at arena[0] */
	struct fields_raw *raw;
	size_t nraw, raw_cap;
	bool field_open;                  /* a name is arriving */
	struct fields_joiner joiner;      /* the joined head (owned, reused) */
};

/* Which transitions exist: a bit per target state, per source state. */
#define BIT(s) (1u << (s))
static const unsigned allowed[] = {
	[H1_IDLE] = BIT(H1_WAITING) | BIT(H1_DEAD),
	[H1_WAITING] = BIT(H1_HEAD) | BIT(H1_DEAD),
	[H1_HEAD] = BIT(H1_BODY) | BIT(H1_DEAD),
	[H1_BODY] = BIT(H1_IDLE) | BIT(H1_DEAD),
	[H1_DEAD] = BIT(H1_DEAD),
};

static const char *const state_names[] = {
	[H1_IDLE] = "idle", [H1_WAITING] = "waiting", [H1_HEAD] = "head",
	[H1_BODY] = "body", [H1_DEAD] = "dead",
};

/* The one place the state changes.  A transition not in allowed[] is a
 * bug in the caller (h1_begin on an unfit connection): abort loudly. */
static void set_state(struct h1 *h, enum h1_state to)
{
	if (!(allowed[h->state] & BIT(to))) {
		fprintf(stderr, "h1: no transition from %s to %s\n", state_names[h->state],
		        state_names[to]);
		abort();
	}
	h->state = to;
}

/* Note a failure for h1_feed to report; returns -1 so llhttp stops. */
static int pend(struct h1 *h, enum h1_fail_kind kind, const char *message)
{
	if (h->pending)
		return -1;
	h->pending = true;
	h->pending_kind = kind;
	snprintf(h->message, sizeof h->message, "%s", message);
	return -1;
}

static void report_fail(struct h1 *h, enum h1_fail_kind kind, const char *message,
                        bool nothing_received)
{
	struct h1_failure why = { kind, message, nothing_received };

	set_state(h, H1_DEAD);
	h->ops->fail(h->ctx, &why);
}

/* --- the head as it arrives -------------------------------------------------- */

static void arena_add(struct h1 *h, const char *at, size_t n, bool lower)
{
	size_t i;

	if (n == 0)
		return;
	if (h->arena_len + n > h->arena_cap) {
		h->arena_cap = (h->arena_len + n) * 2 + 256;
		h->arena = xrealloc(h->arena, h->arena_cap);
	}
	if (!lower) {
		memcpy(h->arena + h->arena_len, at, n);
	} else {
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)at[i];

			h->arena[h->arena_len + i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
	}
	h->arena_len += n;
}

static int count_head(struct h1 *h, size_t n)
{
	char msg[120];

	h->head_bytes += n;
	if (h->head_bytes <= h->lim->max_head_bytes)
		return 0;
	snprintf(msg, sizeof msg, "malformed answer: status line and headers over %zu bytes",
	         h->lim->max_head_bytes);
	return pend(h, H1_FAIL_PROTOCOL, msg);
}

static void reset_head(struct h1 *h)
{
	h->arena_len = 0;
	h->reason_len = 0;
	h->nraw = 0;
	h->field_open = false;
	h->in_trailers = false;
	h->interim = false;
}

static int on_message_begin(llhttp_t *p)
{
	struct h1 *h = p->data;

	reset_head(h);
	/* "HTTP/1.1 200 " and the line end, which llhttp passes to no callback */
	return count_head(h, 15);
}

static int on_status(llhttp_t *p, const char *at, size_t n)
{
	struct h1 *h = p->data;

	if (count_head(h, n) < 0)
		return -1;
	arena_add(h, at, n, false);
	h->reason_len += n;
	return 0;
}

static int start_field(struct h1 *h)
{
	char msg[80];

	if (h->nraw == h->lim->max_headers) {
		snprintf(msg, sizeof msg, "malformed answer: more than %zu header lines",
		         h->lim->max_headers);
		return pend(h, H1_FAIL_PROTOCOL, msg);
	}
	if (h->nraw == h->raw_cap) {
		h->raw_cap = h->raw_cap * 2 + 16;
		h->raw = xrealloc(h->raw, h->raw_cap * sizeof *h->raw);
	}
	h->raw[h->nraw].name_off = h->arena_len;
	h->raw[h->nraw].name_len = 0;
	h->field_open = true;
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct h1 *h = p->data;

	if (count_head(h, n) < 0)
		return -1;
	if (h->in_trailers)
		return 0;
	if (!h->field_open && start_field(h) < 0)
		return -1;
	arena_add(h, at, n, true);
	h->raw[h->nraw].name_len += n;
	return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct h1 *h = p->data;
	struct fields_raw *r;

	if (h->in_trailers)
		return 0;
	if (!h->field_open && start_field(h) < 0)   /* an empty name: no bytes came */
		return -1;
	r = &h->raw[h->nraw];
	/* llhttp lets white space into names: "X A" must not pass for a
	 * header, nor " : v" for one without a name */
	if (r->name_len == 0 || !httptoken_is(h->arena + r->name_off, r->name_len))
		return pend(h, H1_FAIL_PROTOCOL, "malformed answer: a header name that is not "
		            "a token (white space before the colon?)");
	h->field_open = false;
	r->value_off = h->arena_len;
	r->value_len = 0;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct h1 *h = p->data;

	if (count_head(h, n) < 0)
		return -1;
	if (h->in_trailers)
		return 0;
	arena_add(h, at, n, false);
	h->raw[h->nraw].value_len += n;
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct h1 *h = p->data;
	struct fields_raw *r;

	if (count_head(h, 4) < 0)   /* ": " and the line end */
		return -1;
	if (h->in_trailers)
		return 0;
	/* llhttp skips the white space before a value, not after it */
	r = &h->raw[h->nraw++];
	while (r->value_len > 0 && (h->arena[r->value_off + r->value_len - 1] == ' ' ||
	                            h->arena[r->value_off + r->value_len - 1] == '\t'))
		r->value_len--;
	return 0;
}

/* --- the final head ---------------------------------------------------------- */

/* What llhttp lets through that fanoutd cannot take: other versions, a
 * status below 100, a Content-Length that int64_t cannot hold. */
static int check_head(struct h1 *h, const llhttp_t *p)
{
	char msg[120];

	if (p->http_major != 1 || p->http_minor > 1) {
		snprintf(msg, sizeof msg, "malformed answer: HTTP version %u.%u (want 1.1 or 1.0)",
		         (unsigned)p->http_major, (unsigned)p->http_minor);
		return pend(h, H1_FAIL_PROTOCOL, msg);
	}
	if (p->status_code < 100) {
		snprintf(msg, sizeof msg, "malformed answer: status %d", (int)p->status_code);
		return pend(h, H1_FAIL_PROTOCOL, msg);
	}
	/* fanoutd never asks to switch protocols: a 101 is no answer */
	if (p->status_code == 101)
		return pend(h, H1_FAIL_PROTOCOL, "malformed answer: 101 Switching Protocols "
		            "that fanoutd did not ask for");
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length > (uint64_t)INT64_MAX)
		return pend(h, H1_FAIL_PROTOCOL, "malformed answer: Content-Length over 2^63");
	return 0;
}

/* Does a body follow this head?  No body for HEAD, 204 and 304 whatever
 * Content-Length says (llhttp would wait for one after a 204 or 304). */
static bool bodiless(const struct h1 *h, const llhttp_t *p)
{
	return h->head_request || p->status_code == 204 || p->status_code == 304;
}

static int64_t content_length(const struct h1 *h, const llhttp_t *p)
{
	if (bodiless(h, p))
		return 0;
	if (p->flags & F_CHUNKED)
		return -1;
	if (p->flags & F_CONTENT_LENGTH)
		return (int64_t)p->content_length;
	return llhttp_message_needs_eof(p) ? -1 : 0;
}

static int deliver_head(struct h1 *h, llhttp_t *p)
{
	struct exchange_head head = {
		.status = p->status_code,
		.reason = h->reason_len ? h->arena : "",
		.reason_len = h->reason_len,
		.content_length = content_length(h, p),
	};

	head.nfields = fields_join(&h->joiner, h->arena, h->arena_len, h->raw, h->nraw);
	head.fields = h->joiner.fields;
	set_state(h, H1_BODY);
	if (h->ops->head(h->ctx, &head) < 0)
		return pend(h, H1_FAIL_TOO_LARGE, "answer refused: over a size cap");
	if (h->state != H1_BODY)   /* cancelled in the callback */
		return -1;
	return bodiless(h, p) ? 1 : 0;   /* 1: llhttp reads no body */
}

static int on_headers_complete(llhttp_t *p)
{
	struct h1 *h = p->data;

	h->in_trailers = true;
	if (check_head(h, p) < 0)
		return -1;
	if (p->status_code < 200) {
		/* an interim answer: dropped whole, never its body or headers */
		h->interim = true;
		return 1;
	}
	return deliver_head(h, p);
}

/* --- the body and the end ---------------------------------------------------- */

static int on_body(llhttp_t *p, const char *at, size_t n)
{
	struct h1 *h = p->data;

	if (h->ops->body(h->ctx, at, n) < 0)
		return pend(h, H1_FAIL_TOO_LARGE, "answer body refused: over a size cap");
	return h->state == H1_BODY ? 0 : -1;
}

static int on_message_complete(llhttp_t *p)
{
	struct h1 *h = p->data;

	if (h->interim) {
		reset_head(h);
		return 0;
	}
	h->complete = true;
	h->keep_alive = llhttp_should_keep_alive(p) != 0;
	/* stop right here: what follows is not this answer's */
	return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
	.on_message_begin = on_message_begin,
	.on_status = on_status,
	.on_header_field = on_header_field,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value = on_header_value,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* --- the codec ------------------------------------------------------------------ */

struct h1 *h1_new(const struct h1_ops *ops, void *ctx, const struct h1_limits *lim)
{
	struct h1 *h = xcalloc(1, sizeof *h);

	h->ops = ops;
	h->ctx = ctx;
	h->lim = lim;
	h->state = H1_IDLE;
	llhttp_init(&h->parser, HTTP_RESPONSE, &settings);
	/* llhttp (built without LLHTTP_STRICT_MODE) swallows every byte after
	 * a message that did not allow keep-alive: after a 1xx saying "close"
	 * the final answer would vanish.  h1 pauses after the final answer and
	 * judges keep-alive itself, so llhttp need never stop on its own. */
	llhttp_set_lenient_keep_alive(&h->parser, 1);
	h->parser.data = h;
	return h;
}

void h1_free(struct h1 *h)
{
	if (h == NULL)
		return;
	free(h->arena);
	free(h->raw);
	fields_joiner_free(&h->joiner);
	free(h);
}

void h1_begin(struct h1 *h, const char *method)
{
	set_state(h, H1_WAITING);   /* aborts unless IDLE */
	/* a fresh parser: the last answer ended at a message boundary */
	llhttp_reset(&h->parser);
	h->head_request = strcmp(method, "HEAD") == 0;
	h->complete = false;
	h->keep_alive = false;
	h->pending = false;
	h->head_bytes = 0;
	reset_head(h);
}

/* The answer is whole; excess: bytes came after it. */
static void finish(struct h1 *h, bool excess)
{
	bool reusable = h->keep_alive && !excess;

	set_state(h, reusable ? H1_IDLE : H1_DEAD);
	h->ops->end(h->ctx, reusable);   /* may h1_begin the next exchange */
}

/* llhttp's reason, where it does not say enough ("Response overflow" is a
 * status of more than three digits). */
static const char *parse_error_reason(const struct h1 *h, llhttp_errno_t err)
{
	switch (err) {
	case HPE_INVALID_STATUS:
		return "invalid status code";
	case HPE_INVALID_CONSTANT:   /* "Expected HTTP/": not a status line */
		return "not an HTTP/1.x answer";
	default:
		return llhttp_get_error_reason(&h->parser);
	}
}

static void fail_parse(struct h1 *h, llhttp_errno_t err)
{
	char msg[160];

	if (h->pending) {
		report_fail(h, h->pending_kind, h->message, false);
		return;
	}
	snprintf(msg, sizeof msg, "malformed answer: %s", parse_error_reason(h, err));
	report_fail(h, H1_FAIL_PROTOCOL, msg, false);
}

/* Bytes out of turn: nothing asked for them. */
static bool unasked(struct h1 *h, size_t len)
{
	if (len > 0 && h->state == H1_IDLE)
		set_state(h, H1_DEAD);
	return false;
}

/* Parse one piece; rest: bytes known to follow it (in later chains). */
static bool feed(struct h1 *h, const char *data, size_t len, size_t rest)
{
	llhttp_errno_t err;
	size_t used;

	if (h->state == H1_IDLE || h->state == H1_DEAD)
		return unasked(h, len + rest);
	if (len == 0)
		return true;
	if (h->state == H1_WAITING)
		set_state(h, H1_HEAD);
	err = llhttp_execute(&h->parser, data, len);
	if (h->state == H1_DEAD)   /* cancelled in a callback */
		return false;
	if (err == HPE_PAUSED && h->complete) {
		used = (size_t)(llhttp_get_error_pos(&h->parser) - data);
		finish(h, used < len || rest > 0);
		return false;
	}
	if (err != HPE_OK) {
		fail_parse(h, err);
		return false;
	}
	return true;
}

bool h1_feed(struct h1 *h, const char *data, size_t len)
{
	return feed(h, data, len, 0);
}

bool h1_feed_buffer(struct h1 *h, struct evbuffer *buf)
{
	size_t total = evbuffer_get_length(buf);
	struct evbuffer_iovec v;
	bool more = true;

	while (more && total > 0 && evbuffer_peek(buf, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		more = feed(h, v.iov_base, v.iov_len, total - v.iov_len);
		evbuffer_drain(buf, v.iov_len);
		total -= v.iov_len;
	}
	if (total > 0) {   /* after the end: never parsed, the connection is unfit */
		unasked(h, total);
		evbuffer_drain(buf, total);
	}
	return more;
}

void h1_eof(struct h1 *h)
{
	switch (h->state) {
	case H1_IDLE:
		set_state(h, H1_DEAD);
		return;
	case H1_DEAD:
		return;
	case H1_WAITING:
		report_fail(h, H1_FAIL_CLOSED, "upstream closed the connection without answering",
		            true);
		return;
	case H1_HEAD:
		report_fail(h, H1_FAIL_CLOSED,
		            "upstream closed the connection before the end of the headers", false);
		return;
	case H1_BODY:
		break;
	}
	/* a close-delimited body ends here; llhttp calls on_message_complete */
	(void)llhttp_finish(&h->parser);
	if (h->state != H1_BODY)
		return;
	if (h->complete)
		finish(h, false);
	else
		report_fail(h, H1_FAIL_CLOSED,
		            "upstream closed the connection before the end of the body", false);
}

void h1_cancel(struct h1 *h)
{
	set_state(h, H1_DEAD);
}

bool h1_reusable(const struct h1 *h)
{
	return h->state == H1_IDLE;
}
