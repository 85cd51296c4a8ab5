/* check_gate: unit tests of the gate (src/gate.c), the llhttp front of the
 * local endpoint.  Client bytes go through gate_feed() whole, byte by byte
 * and in odd splits; the canonical copy evhtp would read is compared
 * exactly, and so are the verdicts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/buffer.h>

#include "gate.h"

static const struct gate_limits lim = { .max_body = 64, .max_head = 256 };

/* What evhtp gets in place of a request refused before its head was whole. */
#define STAND_IN "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"

/* Feed all of in to a fresh gate in pieces of `step` bytes (0: whole),
 * answering each request passed on (gate_next) the way the server would.
 * Returns the canonical copy (malloc'd); *verdict gets the last verdict
 * seen and *held the number of times the gate held a request back. */
static char *run(const char *in, size_t step, struct gate_verdict *verdict, int *held)
{
	struct gate *g = gate_new(&lim);
	struct evbuffer *out = evbuffer_new();
	size_t len = strlen(in), off = 0, n, used;
	char *copy;

	*held = 0;
	verdict->status = 0;
	while (off < len && !gate_closed(g)) {
		n = step == 0 || step > len - off ? len - off : step;
		used = gate_feed(g, in + off, n, out);
		off += used;
		if (used < n) {
			++*held;
			gate_next(g);
		}
	}
	if (gate_verdict(g).status != 0)
		*verdict = gate_verdict(g);
	if (verdict->status != 0) {
		static char msg[256];

		snprintf(msg, sizeof msg, "%s", verdict->message);
		verdict->message = msg;
	}
	n = evbuffer_get_length(out);
	copy = malloc(n + 1);
	ck_assert_ptr_nonnull(copy);
	evbuffer_remove(out, copy, n);
	copy[n] = '\0';
	evbuffer_free(out);
	gate_free(g);
	return copy;
}

/* The same canonical copy and verdict whatever the split. */
static void check(const char *in, const char *want, int status, const char *message)
{
	static const size_t steps[] = { 0, 1, 2, 3, 7, 13 };
	struct gate_verdict v;
	size_t i;
	int held;

	for (i = 0; i < sizeof steps / sizeof *steps; i++) {
		char *got = run(in, steps[i], &v, &held);

		if (want != NULL)
			ck_assert_msg(strcmp(got, want) == 0, "step %zu: got\n%s\nwant\n%s", steps[i],
			              got, want);
		ck_assert_int_eq(v.status, status);
		if (message != NULL)
			ck_assert_str_eq(v.message, message);
		free(got);
	}
}

START_TEST(test_plain_get)
{
	check("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
	      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 0, NULL);
}
END_TEST

START_TEST(test_headers_canonical)
{
	/* white space trimmed, an obs-fold joined (its tab a space, as every
	 * control byte), Content-Type dropped */
	check("POST /v1/batch?x=1 HTTP/1.0\r\nHost:  x \r\nX-Long: a\r\n\tb\r\n"
	      "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 2\r\n\r\n[]",
	      "POST /v1/batch?x=1 HTTP/1.0\r\nHost: x\r\nX-Long: a b\r\n"
	      "Content-Length: 2\r\nConnection: close\r\n\r\n[]", 0, NULL);
}
END_TEST

/* The body of a canonical chunked message (after its head), or NULL if
 * its framing is not plain "SIZE\r\nDATA\r\n" ending in "0\r\n\r\n". */
static char *dechunk(const char *p)
{
	char *body = calloc(1, strlen(p) + 1);
	size_t n = 0, size;
	char *end;

	ck_assert_ptr_nonnull(body);
	for (;;) {
		size = strtoul(p, &end, 16);
		if (end == p || strncmp(end, "\r\n", 2) != 0)
			break;
		p = end + 2;
		if (size == 0)
			return strcmp(p, "\r\n") == 0 ? body : (free(body), NULL);
		if (strlen(p) < size + 2 || strncmp(p + size, "\r\n", 2) != 0)
			break;
		memcpy(body + n, p, size);
		n += size;
		p += size + 2;
	}
	free(body);
	return NULL;
}

/* A chunked upload: evhtp gets head and then plain chunks of the same
 * body, whatever the split (chunk sizes follow the split). */
static void check_chunked(const char *in, const char *head, const char *body, int status)
{
	static const size_t steps[] = { 0, 1, 2, 5, 11 };
	struct gate_verdict v;
	size_t i;
	int held;

	for (i = 0; i < sizeof steps / sizeof *steps; i++) {
		char *got = run(in, steps[i], &v, &held);
		char *dec;

		ck_assert_msg(strncmp(got, head, strlen(head)) == 0, "step %zu: got\n%s", steps[i],
		              got);
		dec = dechunk(got + strlen(head));
		ck_assert_msg(dec != NULL, "step %zu: bad chunks in\n%s", steps[i], got);
		ck_assert_str_eq(dec, body);
		ck_assert_int_eq(v.status, status);
		free(dec);
		free(got);
	}
}

START_TEST(test_rechunked)
{
	/* extensions, a tab before the value and trailers are legal; evhtp
	 * gets plain chunks */
	check_chunked("POST / HTTP/1.1\r\nTransfer-Encoding:\tchunked\r\n\r\n"
	              "3;foo=bar\r\nabc\r\n2\r\nde\r\n0;x\r\nX-Trailer: 1\r\n\r\n",
	              "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "abcde", 0);
	/* whole, the chunks are the client's, less their extensions */
	{
		struct gate_verdict v;
		int held;
		char *got = run("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		                "3;foo=bar\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 0, &v, &held);

		ck_assert_str_eq(got, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		                      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
		free(got);
	}
}
END_TEST

START_TEST(test_one_request_at_a_time)
{
	struct gate_verdict v;
	int held;
	char *got = run("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
	                "GET /c HTTP/1.1\r\nConnection: close\r\n\r\nGET /d HTTP/1.1\r\n\r\n",
	                0, &v, &held);

	/* after "close" nothing more is passed on */
	ck_assert_str_eq(got, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
	                      "GET /c HTTP/1.1\r\nConnection: close\r\n\r\n");
	ck_assert_int_eq(held, 2);
	free(got);
}
END_TEST

START_TEST(test_connection_as_llhttp_read_it)
{
	/* evhtp would read "close, foo" as keep-alive */
	check("GET / HTTP/1.1\r\nConnection: close, foo\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
	      "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0, NULL);
	check("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
	      "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, NULL);
}
END_TEST

START_TEST(test_what_evhtp_cannot_parse)
{
	char in[9100];

	check("OPTIONS * HTTP/1.1\r\n\r\n", STAND_IN, 400,
	      "malformed request: the target must be a path (\"/...\")");
	check("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", STAND_IN, 505, NULL);
	/* (here the 256-byte head limit comes first; t_endpoint.py has the 414) */
	snprintf(in, sizeof in, "GET /%09000d HTTP/1.1\r\n\r\n", 0);
	check(in, STAND_IN, 431, "request line and headers over 256 bytes");
}
END_TEST

START_TEST(test_held_until_next)
{
	const char *in = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
	struct gate *g = gate_new(&lim);
	struct evbuffer *out = evbuffer_new();
	size_t used = gate_feed(g, in, strlen(in), out);

	ck_assert_uint_eq(used, strlen("GET /a HTTP/1.1\r\n\r\n"));
	ck_assert(gate_busy(g));
	ck_assert_uint_eq(gate_feed(g, in + used, strlen(in) - used, out), 0);
	gate_next(g);
	ck_assert(!gate_busy(g));
	ck_assert_uint_eq(gate_feed(g, in + used, strlen(in) - used, out), strlen(in) - used);
	ck_assert_uint_eq(evbuffer_get_length(out), strlen(in));
	evbuffer_free(out);
	gate_free(g);
}
END_TEST


START_TEST(test_refusals)
{
	check("get / HTTP/1.1\r\n\r\n", STAND_IN, 501, NULL);
	check("TRACE / HTTP/1.1\r\n\r\n", STAND_IN, 501, "method TRACE is not implemented");
	check("GET / HTTP/1.2\r\n\r\n", STAND_IN, 505, NULL);
	check("POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\n[]", STAND_IN, 400,
	      "malformed request: Invalid character in Content-Length");
	check("POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n[]", STAND_IN, 400, NULL);
	check("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n[]",
	      STAND_IN, 400, "malformed request: Duplicate Content-Length");
	check("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
	      "\r\n0\r\n\r\n", STAND_IN, 400,
	      "malformed request: Transfer-Encoding other than chunked");
	check("GET / HTTP/1.1\r\nX-A : 1\r\n\r\n", STAND_IN, 400,
	      "malformed request: a header name that is not a token "
	      "(white space before the colon?)");
	/* what follows a refusal is never passed on */
	check("get / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", STAND_IN, 501, NULL);
}
END_TEST

START_TEST(test_refused_mid_body)
{
	/* a bad chunk size after the head went out: the chunked body ends */
	check("POST /v1/batch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	      "POST /v1/batch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
	      "malformed request: Invalid character in chunk size");
}
END_TEST

START_TEST(test_too_large)
{
	/* declared: the head without its body, so the router can still ask
	 * for the token first */
	check("POST /v1/batch HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 65\r\n"
	      "Expect: 100-continue\r\n\r\n",
	      "POST /v1/batch HTTP/1.1\r\nAuthorization: Bearer t\r\nConnection: close\r\n\r\n",
	      413, "request body over max_request_body");
	/* chunked: cut off where it passes max_body (64) */
	check_chunked("POST /v1/batch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "40\r\n" "0123456789012345678901234567890123456789012345678901234567890123"
	              "\r\n1\r\nx\r\n0\r\n\r\n",
	              "POST /v1/batch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
	              "0123456789012345678901234567890123456789012345678901234567890123", 413);
	/* exactly max_body is fine */
	check("POST / HTTP/1.1\r\nContent-Length: 64\r\n\r\n"
	      "0123456789012345678901234567890123456789012345678901234567890123",
	      "POST / HTTP/1.1\r\nContent-Length: 64\r\n\r\n"
	      "0123456789012345678901234567890123456789012345678901234567890123", 0, NULL);
}
END_TEST

START_TEST(test_head_too_large)
{
	char in[600];

	snprintf(in, sizeof in, "GET / HTTP/1.1\r\nX-Big: %0300d\r\n\r\n", 0);
	check(in, STAND_IN, 431, "request line and headers over 256 bytes");
}
END_TEST

static Suite *gate_suite(void)
{
	Suite *s = suite_create("gate");
	TCase *tc = tcase_create("gate");

	tcase_add_test(tc, test_plain_get);
	tcase_add_test(tc, test_headers_canonical);
	tcase_add_test(tc, test_rechunked);
	tcase_add_test(tc, test_one_request_at_a_time);
	tcase_add_test(tc, test_held_until_next);
	tcase_add_test(tc, test_connection_as_llhttp_read_it);
	tcase_add_test(tc, test_what_evhtp_cannot_parse);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_refused_mid_body);
	tcase_add_test(tc, test_too_large);
	tcase_add_test(tc, test_head_too_large);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gate_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
