/* fuzz_gate: the gate (src/gate.c), llhttp in front of evhtp: what any
 * client bytes become in the canonical copy evhtp reads.
 *
 * Input layout: byte 0 picks the split (the input is fed in pieces of
 * 1 + byte0 % 64 bytes; 0 feeds it whole), the rest is what a client
 * sends.  Each request the gate holds back is answered (gate_next), as the
 * server would.
 *
 * Checks: the canonical copy parses with a fresh strict llhttp without
 * error, as exactly the requests the gate passed on (no more: nothing
 * after a refusal or a "close"); no body in it is longer than max_body;
 * no header in it is Content-Type or carries a control byte. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz.h"
#include "gate.h"

#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <llhttp.h>

static const struct gate_limits lim = { .max_body = 4096, .max_head = 2048 };

struct recheck {
	size_t messages;
	size_t body;           /* of the current message */
	size_t field_len;
	char field[32];
};

static int on_begin(llhttp_t *p)
{
	struct recheck *r = p->data;

	r->body = 0;
	return 0;
}

static int on_field(llhttp_t *p, const char *at, size_t n)
{
	struct recheck *r = p->data;

	if (r->field_len + n < sizeof r->field) {
		memcpy(r->field + r->field_len, at, n);
		r->field_len += n;
		r->field[r->field_len] = '\0';
	}
	return 0;
}

static int on_value(llhttp_t *p, const char *at, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)at[i] >= 0x20 && at[i] != 0x7f,
		           "control byte 0x%02x in a canonical header", (unsigned char)at[i]);
	(void)p;
	return 0;
}

static int on_value_done(llhttp_t *p)
{
	struct recheck *r = p->data;

	FUZZ_CHECK(strcasecmp(r->field, "Content-Type") != 0, "Content-Type passed on");
	r->field_len = 0;
	r->field[0] = '\0';
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
	struct recheck *r = p->data;

	(void)at;
	r->body += n;
	FUZZ_CHECK(r->body <= lim.max_body, "a body of %zu bytes passed on", r->body);
	return 0;
}

static int on_complete(llhttp_t *p)
{
	struct recheck *r = p->data;

	r->messages++;
	return 0;
}

static void recheck(struct evbuffer *out, size_t passed)
{
	static const llhttp_settings_t settings = {
		.on_message_begin = on_begin,
		.on_header_field = on_field,
		.on_header_value = on_value,
		.on_header_value_complete = on_value_done,
		.on_body = on_body,
		.on_message_complete = on_complete,
	};
	struct recheck r = { 0 };
	size_t n = evbuffer_get_length(out);
	const char *data = n ? (const char *)evbuffer_pullup(out, -1) : "";
	llhttp_t p;
	llhttp_errno_t err;

	llhttp_init(&p, HTTP_REQUEST, &settings);
	p.data = &r;
	err = llhttp_execute(&p, data, n);
	FUZZ_CHECK(err == HPE_OK, "the canonical copy does not parse: %s",
	           llhttp_get_error_reason(&p));
	/* (passed may count the last one, held at the very end, or not) */
	FUZZ_CHECK(r.messages <= passed + 1 && r.messages + 1 >= passed,
	           "%zu whole requests in the copy, %zu passed on", r.messages, passed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gate *g;
	struct evbuffer *out;
	size_t step, off = 1, n, used, passed = 0;

	if (size < 1)
		return 0;
	step = data[0] == 0 ? size : 1 + (size_t)(data[0] % 64);
	g = gate_new(&lim);
	out = evbuffer_new();
	while (off < size && !gate_closed(g)) {
		n = step < size - off ? step : size - off;
		used = gate_feed(g, (const char *)data + off, n, out);
		off += used;
		if (used < n) {
			passed++;
			gate_next(g);
		}
	}
	/* a request cut short by the end of the input is not whole; one that
	 * closed the gate (refused, or "close") is */
	if (gate_closed(g))
		passed++;
	recheck(out, passed);
	evbuffer_free(out);
	gate_free(g);
	return 0;
}
