/* gate: llhttp in front of evhtp; see gate.h for what evhtp gets.
 *
 *   client bytes -> llhttp -> callbacks build the canonical head and
 *   body into out -> on_message_complete pauses llhttp (HOLDING) until
 *   evhtp has answered -> gate_next resumes it.
 *
 * A refusal (refuse()) ends the message in a form evhtp can parse and
 * closes the gate: nothing after it is parsed. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <llhttp.h>

#include "gate.h"
#include "httptoken.h"
#include "xalloc.h"

/* What evhtp gets for a request refused before its head was whole: one it
 * parses, routes to "/" and closes after the router's answer. */
#define STAND_IN "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"

enum gate_state {
	GATE_IDLE,       /* between requests: the next byte starts one */
	GATE_READING,    /* a request is being parsed and passed on */
	GATE_HOLDING,    /* a whole request is with evhtp; the next waits */
	GATE_CLOSED,     /* refused, or the client said close: input dropped */
};

struct gate {
	llhttp_t parser;
	enum gate_state state;
	const struct gate_limits *lim;    /* borrowed */
	struct bufferevent *bev;          /* the filter, once wrapped */
	struct evbuffer *out;             /* during gate_feed only (borrowed) */
	/* the current request */
	struct evbuffer *url;             /* the target, as it arrives (owned) */
	struct evbuffer *head;            /* headers kept, canonical (owned) */
	struct evbuffer *field, *value;   /* the header being read (owned) */
	size_t head_bytes;                /* request line and headers so far */
	unsigned te_headers;              /* Transfer-Encoding headers seen */
	bool chunked;
	bool head_sent;                   /* the head is in out */
	bool in_trailers;                 /* headers after the body: dropped */
	size_t body_bytes;
	int status;                       /* the verdict; 0 = fine */
	char message[200];
};

/* --- refusing ------------------------------------------------------------ */

/* End the message where it stands and close: evhtp gets the stand-in (or,
 * mid-body, the end of the chunked body) and the router the verdict. */
static int refuse(struct gate *g, int status, const char *message)
{
	if (g->status != 0)
		return -1;
	g->status = status;
	snprintf(g->message, sizeof g->message, "%s", message);
	if (!g->head_sent)
		evbuffer_add(g->out, STAND_IN, strlen(STAND_IN));
	else if (g->chunked)
		evbuffer_add(g->out, "0\r\n\r\n", 5);
	g->head_sent = true;
	g->state = GATE_CLOSED;
	return -1;   /* llhttp stops (HPE_USER or HPE_CB_*); refuse() once only */
}

/* llhttp's own errors, as answers. */
static void refuse_parse_error(struct gate *g, llhttp_errno_t err)
{
	char msg[160];

	switch (err) {
	case HPE_INVALID_METHOD:
		refuse(g, 501, "not a method fanoutd implements (methods are upper case: "
		       "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)");
		return;
	case HPE_INVALID_VERSION:
	case HPE_PAUSED_H2_UPGRADE:   /* the HTTP/2 preface */
		refuse(g, 505, "HTTP version not supported (want HTTP/1.1 or HTTP/1.0)");
		return;
	default:
		snprintf(msg, sizeof msg, "malformed request: %s",
		         llhttp_get_error_reason(&g->parser));
		refuse(g, 400, msg);
		return;
	}
}

/* --- the head ------------------------------------------------------------ */

/* evhtp's parser takes no token (target, header name or value) longer
 * than 8 KiB: it would drop the connection without an answer. */
#define MAX_TOKEN 8000

static int count_head(struct gate *g, size_t n)
{
	char msg[80];

	g->head_bytes += n;
	if (g->head_bytes <= g->lim->max_head)
		return 0;
	snprintf(msg, sizeof msg, "request line and headers over %zu bytes", g->lim->max_head);
	return refuse(g, 431, msg);
}

static int on_message_begin(llhttp_t *p)
{
	struct gate *g = p->data;

	g->state = GATE_READING;
	evbuffer_drain(g->url, evbuffer_get_length(g->url));
	evbuffer_drain(g->head, evbuffer_get_length(g->head));
	g->head_bytes = 0;
	g->te_headers = 0;
	g->chunked = false;
	g->head_sent = false;
	g->in_trailers = false;
	g->body_bytes = 0;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
	struct gate *g = p->data;

	evbuffer_add(g->url, at, n);
	if (count_head(g, n) < 0)
		return -1;
	if (evbuffer_get_length(g->url) > MAX_TOKEN)
		return refuse(g, 414, "request target over 8000 bytes");
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
	struct gate *g = p->data;

	if (g->in_trailers)
		return 0;
	evbuffer_add(g->field, at, n);
	if (count_head(g, n) < 0)
		return -1;
	if (evbuffer_get_length(g->field) > MAX_TOKEN)
		return refuse(g, 431, "a header name over 8000 bytes");
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
	struct gate *g = p->data;

	if (g->in_trailers)
		return 0;
	/* an obs-fold arrives as the pieces around the line break, the next
	 * one starting with its white space: joined, it is one line */
	evbuffer_add(g->value, at, n);
	if (count_head(g, n) < 0)
		return -1;
	if (evbuffer_get_length(g->value) > MAX_TOKEN)
		return refuse(g, 431, "a header value over 8000 bytes");
	return 0;
}

/* The value without surrounding white space, control bytes as spaces. */
static char *tidy_value(struct evbuffer *v, size_t *len)
{
	static char empty[1];
	size_t n = evbuffer_get_length(v);
	char *s = n ? (char *)evbuffer_pullup(v, -1) : empty;
	size_t i, start = 0;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = ' ';
	while (start < n && s[start] == ' ')
		start++;
	while (n > start && s[n - 1] == ' ')
		n--;
	*len = n - start;
	return s + start;
}

/* One header is whole: check it, and keep it unless the gate rewrites it. */
static int take_header(struct gate *g)
{
	size_t flen = evbuffer_get_length(g->field), vlen;
	char *field = flen ? (char *)evbuffer_pullup(g->field, -1) : NULL;
	char *value = tidy_value(g->value, &vlen);
	int rc = 0;

	if (field == NULL || !httptoken_is(field, flen)) {
		rc = refuse(g, 400, "malformed request: a header name that is not a token "
		            "(white space before the colon?)");
	} else if (flen == 17 && strncasecmp(field, "Transfer-Encoding", 17) == 0) {
		/* llhttp takes the last; one is all a request may have */
		if (++g->te_headers > 1)
			rc = refuse(g, 400, "malformed request: more than one Transfer-Encoding");
		else if (vlen != 7 || strncasecmp(value, "chunked", 7) != 0)
			rc = refuse(g, 400, "malformed request: Transfer-Encoding other than chunked");
	} else if ((flen == 12 && strncasecmp(field, "Content-Type", 12) == 0) ||
	           (flen == 7 && strncasecmp(field, "Upgrade", 7) == 0) ||
	           (flen == 10 && strncasecmp(field, "Connection", 10) == 0)) {
		/* dropped: see gate.h (Connection: the gate says it once, as
		 * llhttp read it, so evhtp cannot read it otherwise) */
	} else {
		evbuffer_add(g->head, field, flen);
		evbuffer_add(g->head, ": ", 2);
		evbuffer_add(g->head, value, vlen);
		evbuffer_add(g->head, "\r\n", 2);
	}
	evbuffer_drain(g->field, flen);
	evbuffer_drain(g->value, evbuffer_get_length(g->value));
	return rc;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct gate *g = p->data;

	if (g->in_trailers)
		return 0;
	if (count_head(g, 4) < 0)   /* ": " and the line end */
		return -1;
	return take_header(g);
}

static bool method_implemented(uint8_t m)
{
	switch (m) {
	case HTTP_GET: case HTTP_HEAD: case HTTP_POST: case HTTP_PUT:
	case HTTP_DELETE: case HTTP_OPTIONS: case HTTP_PATCH:
		return true;
	default:
		return false;
	}
}

static void send_head(struct gate *g, bool with_body)
{
	const char *method = llhttp_method_name(llhttp_get_method(&g->parser));
	char version[16];

	evbuffer_add(g->out, method, strlen(method));
	evbuffer_add(g->out, " ", 1);
	evbuffer_add_buffer(g->out, g->url);
	snprintf(version, sizeof version, " HTTP/1.%u\r\n", (unsigned)g->parser.http_minor);
	evbuffer_add(g->out, version, strlen(version));
	if (with_body) {
		evbuffer_add_buffer(g->out, g->head);
		if (g->chunked)
			evbuffer_add(g->out, "Transfer-Encoding: chunked\r\n", 28);
		if (!llhttp_should_keep_alive(&g->parser))
			evbuffer_add(g->out, "Connection: close\r\n", 19);
		else if (g->parser.http_minor == 0)
			evbuffer_add(g->out, "Connection: keep-alive\r\n", 24);
	} else {
		/* the stand-in of a request too big to read: its own headers
		 * (the router checks the token first) but no body */
		size_t n = evbuffer_get_length(g->head);
		char *h = n ? (char *)evbuffer_pullup(g->head, -1) : NULL;

		while (n > 0) {
			char *eol = memchr(h, '\n', n);
			size_t line = eol ? (size_t)(eol - h) + 1 : n;

			if (strncasecmp(h, "Content-Length:", 15) != 0 &&
			    strncasecmp(h, "Expect:", 7) != 0)
				evbuffer_add(g->out, h, line);
			h += line;
			n -= line;
		}
		evbuffer_add(g->out, "Connection: close\r\n", 19);
	}
	evbuffer_add(g->out, "\r\n", 2);
	g->head_sent = true;
}

static int on_headers_complete(llhttp_t *p)
{
	struct gate *g = p->data;
	uint8_t m = llhttp_get_method(p);

	char msg[80];

	g->in_trailers = true;
	/* evhtp speaks nothing but HTTP/1.x: an Upgrade is not taken up (and
	 * not passed on) */
	p->upgrade = 0;
	if (p->http_major != 1 || p->http_minor > 1)
		return refuse(g, 505, "HTTP version not supported (want HTTP/1.1 or HTTP/1.0)");
	if (!method_implemented(m)) {
		snprintf(msg, sizeof msg, "method %s is not implemented", llhttp_method_name(m));
		return refuse(g, 501, msg);
	}
	/* origin-form only: evhtp parses neither "*" nor an absolute URL */
	if (evbuffer_get_length(g->url) == 0 || *evbuffer_pullup(g->url, 1) != '/')
		return refuse(g, 400, "malformed request: the target must be a path (\"/...\")");
	g->chunked = (p->flags & F_CHUNKED) != 0;
	if (!g->chunked && p->content_length > g->lim->max_body) {
		send_head(g, false);
		return refuse(g, 413, "request body over max_request_body");
	}
	send_head(g, true);
	return 0;
}

/* --- the body ------------------------------------------------------------ */

static int on_body(llhttp_t *p, const char *at, size_t n)
{
	struct gate *g = p->data;
	char size[24];

	g->body_bytes += n;
	if (g->body_bytes > g->lim->max_body)
		return refuse(g, 413, "request body over max_request_body");
	if (!g->chunked) {
		evbuffer_add(g->out, at, n);
		return 0;
	}
	snprintf(size, sizeof size, "%zx\r\n", n);
	evbuffer_add(g->out, size, strlen(size));
	evbuffer_add(g->out, at, n);
	evbuffer_add(g->out, "\r\n", 2);
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct gate *g = p->data;

	if (g->chunked)
		evbuffer_add(g->out, "0\r\n\r\n", 5);
	g->state = llhttp_should_keep_alive(p) ? GATE_HOLDING : GATE_CLOSED;
	return HPE_PAUSED;   /* the next request waits for gate_next() */
}

static const llhttp_settings_t settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* --- the core ------------------------------------------------------------ */

struct gate *gate_new(const struct gate_limits *lim)
{
	struct gate *g = xcalloc(1, sizeof *g);

	g->lim = lim;
	g->url = xcheck(evbuffer_new());
	g->head = xcheck(evbuffer_new());
	g->field = xcheck(evbuffer_new());
	g->value = xcheck(evbuffer_new());
	llhttp_init(&g->parser, HTTP_REQUEST, &settings);
	g->parser.data = g;
	return g;
}

void gate_free(struct gate *g)
{
	if (g == NULL)
		return;
	evbuffer_free(g->url);
	evbuffer_free(g->head);
	evbuffer_free(g->field);
	evbuffer_free(g->value);
	free(g);
}

size_t gate_feed(struct gate *g, const char *data, size_t len, struct evbuffer *out)
{
	llhttp_errno_t err;
	size_t used;

	if (g->state == GATE_CLOSED)
		return len;
	if (g->state == GATE_HOLDING || len == 0)
		return 0;
	g->out = out;
	err = llhttp_execute(&g->parser, data, len);
	used = len;
	if (err == HPE_PAUSED)
		used = (size_t)(llhttp_get_error_pos(&g->parser) - data);
	else if (err != HPE_OK && err != HPE_USER) {
		refuse_parse_error(g, err);
	}
	g->out = NULL;
	if (g->state == GATE_CLOSED)
		return len;
	return used;
}

struct gate_verdict gate_verdict(const struct gate *g)
{
	struct gate_verdict v = { g->status, g->message };

	return v;
}

bool gate_busy(const struct gate *g)
{
	return g->state == GATE_READING || g->state == GATE_HOLDING;
}

bool gate_closed(const struct gate *g)
{
	return g->state == GATE_CLOSED;
}

/* --- as a filter ------------------------------------------------------------ */

static enum bufferevent_filter_result
filter_in(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
          enum bufferevent_flush_mode mode, void *ctx)
{
	struct gate *g = ctx;
	size_t before = evbuffer_get_length(dst);
	struct evbuffer_iovec v;
	size_t used;

	(void)limit;
	(void)mode;
	while (evbuffer_peek(src, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		used = gate_feed(g, v.iov_base, v.iov_len, dst);
		evbuffer_drain(src, used);
		if (used < v.iov_len)
			break;
	}
	return evbuffer_get_length(dst) > before ? BEV_OK : BEV_NEED_MORE;
}

static void free_gate(void *ctx)
{
	gate_free(ctx);
}

struct bufferevent *gate_wrap(struct gate *g, struct bufferevent *under)
{
	/* deferred callbacks, as on a socket: a reply evhtp writes must not
	 * run evhtp's write callback (which frees the request) at once */
	g->bev = xcheck(bufferevent_filter_new(under, filter_in, NULL, BEV_OPT_DEFER_CALLBACKS,
	                                       free_gate, g));
	return g->bev;
}

void gate_next(struct gate *g)
{
	if (g->state != GATE_HOLDING)
		return;
	g->state = GATE_IDLE;
	g->status = 0;
	llhttp_resume(&g->parser);
	if (g->bev == NULL)
		return;
	/* what the client pipelined meanwhile waits in the socket's buffer */
	bufferevent_flush(g->bev, EV_READ, BEV_NORMAL);
	if (evbuffer_get_length(bufferevent_get_input(g->bev)) > 0)
		bufferevent_trigger(g->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

void gate_close(struct gate *g)
{
	g->state = GATE_CLOSED;
	g->bev = NULL;
}
