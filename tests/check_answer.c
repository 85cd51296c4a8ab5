/* check_answer: unit tests of the JSON answers (src/answer.c), the
 * outcome's head (src/outcome.c) and the JSON checker (src/jsonvalid.c).
 * Outcomes are built by hand for a batch from request_parse(), and the
 * exact bytes written by answer_write_batch() are compared.  What used to
 * be jansson's or printf's work is compared with jansson and snprintf
 * themselves, on generated and mutated inputs. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <event2/buffer.h>
#include <jansson.h>

#include "answer.h"
#include "clock.h"
#include "retry.h"
#include "units.h"
#include "jsonvalid.h"
#include "outcome.h"
#include "request.h"

#define NOUT 2

/* Global state, released by the teardown even when an assertion fails. */
static struct batch_request g_br;
static struct outcome g_o[NOUT];
static struct evbuffer *g_buf;
static char *g_out;
static json_t *g_json;

static void setup(void)
{
	size_t i;

	memset(&g_br, 0, sizeof g_br);
	for (i = 0; i < NOUT; i++)
		outcome_init(&g_o[i]);
	g_buf = evbuffer_new();
	ck_assert_ptr_nonnull(g_buf);
	g_out = NULL;
	g_json = NULL;
}

static void teardown(void)
{
	size_t i;

	request_free(&g_br);
	for (i = 0; i < NOUT; i++)
		outcome_clear(&g_o[i]);
	evbuffer_free(g_buf);
	g_buf = NULL;
	free(g_out);
	g_out = NULL;
	json_decref(g_json);
	g_json = NULL;
}

static void batch(const char *doc)
{
	static const struct request_limits lim = { .max_batch_size = 100 };
	char err[256];

	request_free(&g_br);
	if (request_parse(doc, strlen(doc), &lim, &g_br, err, sizeof err) != 0)
		ck_abort_msg("request_parse(%s): %s", doc, err);
}

static void short_batch(void)
{
	batch("[\"http://a.example/x\", \"https://b.example/y?z=1\"]");
	ck_assert_uint_eq(g_br.n, 2);
}

#define MAX_FIELDS 16

/* o's head as the codec hands it over: status, then name/value pairs
 * (names lower-case, repeats joined already) up to a NULL name. */
static void set_head(struct outcome *o, int status, ...)
{
	struct exchange_field fields[MAX_FIELDS];
	struct exchange_head head = { .status = status, .fields = fields,
	                              .content_length = -1 };
	const char *name, *value;
	va_list ap;

	va_start(ap, status);
	while ((name = va_arg(ap, const char *)) != NULL) {
		value = va_arg(ap, const char *);
		ck_assert_uint_lt(head.nfields, MAX_FIELDS);
		fields[head.nfields++] = (struct exchange_field){ name, strlen(name),
		                                                  value, strlen(value) };
	}
	va_end(ap);
	outcome_set_head(o, &head);
}

/* Give outcome o a response: status, optional Content-Type and body. */
static void respond(struct outcome *o, enum outcome_type type, int status,
                    const char *ct, const char *body, size_t len)
{
	o->type = type;
	if (ct != NULL)
		set_head(o, status, "content-type", ct, NULL);
	else
		set_head(o, status, NULL);
	if (body != NULL) {
		struct evbuffer *in = evbuffer_new();

		ck_assert_ptr_nonnull(in);
		ck_assert_int_eq(evbuffer_add(in, body, len), 0);
		outcome_body_append(o, in);
		outcome_body_trim(o);
		ck_assert_uint_eq(evbuffer_get_length(in), 0);
		ck_assert_uint_eq(o->body_len, len);
		evbuffer_free(in);
	}
}

static void fail_with(struct outcome *o, enum outcome_type type, int status,
                      const char *message)
{
	o->type = type;
	o->status = status;
	o->message = strdup(message);
	ck_assert_ptr_nonnull(o->message);
}

static void timing(struct outcome *o, double queued, double connect, double ttfb,
                   double total, bool reused)
{
	o->timing.queued_ms = queued;
	o->timing.connect_ms = connect;
	o->timing.ttfb_ms = ttfb;
	o->timing.total_ms = total;
	o->reused = reused;
}

/* Everything written to g_buf so far, as a string; also checks that it is
 * one well-formed JSON document. */
static const char *output(void)
{
	size_t len = evbuffer_get_length(g_buf);
	json_error_t jerr;

	free(g_out);
	g_out = malloc(len + 1);
	ck_assert_ptr_nonnull(g_out);
	ck_assert_int_eq(evbuffer_remove(g_buf, g_out, len), (int)len);
	g_out[len] = '\0';
	json_decref(g_json);
	g_json = json_loadb(g_out, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
	ck_assert_msg(g_json != NULL, "not JSON (%s): %s", jerr.text, g_out);
	return g_out;
}

static const char *write_batch(double elapsed_ms, int want_status)
{
	ck_assert_int_eq(answer_write_batch(g_buf, &g_br, g_o, elapsed_ms), want_status);
	return output();
}

/* What put_timing writes for std_timing()'s two outcomes: the timing,
 * "reused", "protocol" (TIMING_n_PROTO, once the request got a
 * connection), then "attempts" and "retry_wait_ms" (SPEC 10: on every
 * result and error; 1 and 0.0 without retries). */
#define REUSED_0 "\"elapsed_ms\":20.2,\"timing\":{\"queued_ms\":1.0,\"connect_ms\":2.3," \
                 "\"ttfb_ms\":10.0,\"total_ms\":20.2},\"reused\":false"
#define REUSED_1 "\"elapsed_ms\":5.6,\"timing\":{\"queued_ms\":0.0,\"connect_ms\":0.0," \
                 "\"ttfb_ms\":5.0,\"total_ms\":5.6},\"reused\":true"
#define ATTEMPTS_1 ",\"attempts\":1,\"retry_wait_ms\":0.0"
#define TIMING_0 REUSED_0 ATTEMPTS_1
#define TIMING_1 REUSED_1 ATTEMPTS_1
#define TIMING_0_PROTO(p) REUSED_0 ",\"protocol\":\"" p "\"" ATTEMPTS_1
#define TIMING_1_PROTO(p) REUSED_1 ",\"protocol\":\"" p "\"" ATTEMPTS_1

static void std_timing(void)
{
	timing(&g_o[0], 1.0, 2.26, 10.04, 20.16, false);
	timing(&g_o[1], 0.0, 0.0, 5.0, 5.56, true);
}

/* --- outcome ----------------------------------------------------------- */

START_TEST(test_outcome_basics)
{
	struct outcome o;
	static const struct { enum outcome_type t; const char *name; bool failure; } types[] = {
		{ OUTCOME_PENDING, "pending", false },
		{ OUTCOME_OK, "ok", false },
		{ OUTCOME_CANCELLED, "cancelled", false },
		{ OUTCOME_HTTP_STATUS, "http_status", true },
		{ OUTCOME_RATE_LIMITED, "rate_limited", true },
		{ OUTCOME_TIMEOUT, "timeout", true },
		{ OUTCOME_CONNECT, "connect", true },
		{ OUTCOME_DNS, "dns", true },
		{ OUTCOME_TLS, "tls", true },
		{ OUTCOME_PROTOCOL, "protocol", true },
		{ OUTCOME_TOO_LARGE, "too_large", true },
		{ OUTCOME_FORBIDDEN, "forbidden", true },
		{ OUTCOME_CIRCUIT_OPEN, "circuit_open", true },
	};
	size_t i;

	ck_assert_uint_eq(sizeof types / sizeof *types, OUTCOME_COUNT);   /* all listed */
	outcome_init(&o);
	ck_assert_int_eq(o.type, OUTCOME_PENDING);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_null(o.message);
	ck_assert_ptr_null(o.phase);
	ck_assert_int_eq(o.retry_after_s, -1);
	ck_assert(o.retry_after_ms == -1);
	ck_assert_ptr_null(o.headers_json);
	ck_assert_ptr_null(o.content_type);
	ck_assert_ptr_null(o.body);
	ck_assert(!o.reused);
	ck_assert_ptr_null(o.protocol);
	ck_assert_uint_eq(o.attempts, 0);       /* written as 1 */
	ck_assert(o.retry_wait_ms == 0);
	for (i = 0; i < sizeof types / sizeof *types; i++) {
		o.type = types[i].t;
		ck_assert_str_eq(outcome_type_name(types[i].t), types[i].name);
		ck_assert_msg(outcome_is_failure(&o) == types[i].failure, "%s", types[i].name);
	}
	/* clear frees what it owns and leaves a fresh outcome */
	respond(&o, OUTCOME_HTTP_STATUS, 500, "text/plain", "x", 1);
	o.message = strdup("m");
	o.retry_after_s = 3;
	o.protocol = "http/1.1";
	outcome_clear(&o);
	ck_assert_int_eq(o.type, OUTCOME_PENDING);
	ck_assert_ptr_null(o.protocol);
	ck_assert_ptr_null(o.message);
	ck_assert_ptr_null(o.headers_json);
	ck_assert_ptr_null(o.content_type);
	ck_assert_ptr_null(o.body);
	ck_assert_int_eq(o.retry_after_s, -1);
	ck_assert(o.retry_after_ms == -1);
	outcome_clear(&o);      /* twice is harmless */

	/* the next attempt forgets the failed one's answer, timing and
	 * connection facts (an error is its last attempt's) but keeps the
	 * attempts and the wait so far */
	respond(&o, OUTCOME_RATE_LIMITED, 429, "text/plain", "x", 1);
	set_head(&o, 429, "retry-after", "2", NULL);
	o.message = strdup("m");
	o.protocol = "h2";
	o.reused = true;
	o.timing.queued_ms = 4.5;
	o.timing.total_ms = 9.0;
	o.attempts = 2;
	o.retry_wait_ms = 100.5;
	outcome_next_attempt(&o);
	ck_assert_int_eq(o.type, OUTCOME_PENDING);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_null(o.message);
	ck_assert_ptr_null(o.headers_json);
	ck_assert_ptr_null(o.body);
	ck_assert_ptr_null(o.protocol);
	ck_assert(!o.reused);
	ck_assert_int_eq(o.retry_after_s, -1);
	ck_assert(o.retry_after_ms == -1);
	ck_assert(o.timing.queued_ms == 0);
	ck_assert(o.timing.total_ms == 0);
	ck_assert_uint_eq(o.attempts, 2);
	ck_assert(o.retry_wait_ms == 100.5);
	outcome_clear(&o);
	ck_assert_uint_eq(o.attempts, 0);
	ck_assert(o.retry_wait_ms == 0);
}
END_TEST

/* --- whole answers ----------------------------------------------------- */

START_TEST(test_all_ok)
{
	short_batch();
	respond(&g_o[0], OUTCOME_OK, 200, "application/json", "{\"name\":\"Ada\"}", 14);
	respond(&g_o[1], OUTCOME_OK, 201, "text/plain; charset=utf-8", "hello\n", 6);
	/* again: the head of a retried request replaces the first */
	set_head(&g_o[1], 201, "content-type", "text/plain; charset=utf-8", "x-dup", "a, b", NULL);
	std_timing();
	ck_assert_str_eq(write_batch(23.44, 200),
		"{\"ok\":true,\"elapsed_ms\":23.4,\"results\":["
		"{\"index\":0,\"url\":\"http://a.example/x\",\"status\":200," TIMING_0 ","
		"\"headers\":{\"content-type\":\"application/json\"},"
		"\"body\":{\"name\":\"Ada\"},\"encoding\":\"json\"},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"status\":201," TIMING_1 ","
		"\"headers\":{\"content-type\":\"text/plain; charset=utf-8\",\"x-dup\":\"a, b\"},"
		"\"body\":\"hello\\n\",\"encoding\":\"text\"}]}");
}
END_TEST

START_TEST(test_empty_batch)
{
	batch("[]");
	ck_assert_str_eq(write_batch(0.04, 200), "{\"ok\":true,\"elapsed_ms\":0.0,\"results\":[]}");
	batch("{\"requests\": [], \"mode\": \"settled\"}");
	ck_assert_str_eq(write_batch(1.0, 200), "{\"ok\":true,\"elapsed_ms\":1.0,\"results\":[]}");
}
END_TEST

START_TEST(test_group_failure_and_cancelled)
{
	short_batch();
	respond(&g_o[0], OUTCOME_HTTP_STATUS, 401, "text/plain", "nope", 4);
	g_o[0].message = strdup("upstream answered 401 Unauthorized");
	g_o[1].type = OUTCOME_CANCELLED;
	std_timing();
	ck_assert_str_eq(write_batch(31.04, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"1 of 2 requests failed, 1 cancelled\",\"elapsed_ms\":31.0,"
		"\"errors\":[{\"index\":0,\"url\":\"http://a.example/x\",\"type\":\"http_status\","
		"\"status\":401,\"message\":\"upstream answered 401 Unauthorized\"," TIMING_0 ","
		"\"headers\":{\"content-type\":\"text/plain\"},\"body\":\"nope\",\"encoding\":\"text\"}],"
		"\"completed\":[],\"cancelled\":[1]}");
}
END_TEST

START_TEST(test_group_completed_and_failed)
{
	short_batch();
	respond(&g_o[0], OUTCOME_OK, 204, NULL, NULL, 0);
	fail_with(&g_o[1], OUTCOME_DNS, 0, "cannot resolve b.example: name not found");
	std_timing();
	ck_assert_str_eq(write_batch(7.0, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"1 of 2 requests failed, 0 cancelled\",\"elapsed_ms\":7.0,"
		"\"errors\":[{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"type\":\"dns\","
		"\"message\":\"cannot resolve b.example: name not found\"," TIMING_1 "}],"
		"\"completed\":[0],\"cancelled\":[]}");
}
END_TEST

START_TEST(test_group_two_failures)
{
	short_batch();
	fail_with(&g_o[0], OUTCOME_TLS, 0, "certificate verify failed");
	fail_with(&g_o[1], OUTCOME_TOO_LARGE, 200, "body over max_response_body");
	std_timing();
	ck_assert_str_eq(write_batch(3.0, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"2 of 2 requests failed, 0 cancelled\",\"elapsed_ms\":3.0,"
		"\"errors\":[{\"index\":0,\"url\":\"http://a.example/x\",\"type\":\"tls\","
		"\"message\":\"certificate verify failed\"," TIMING_0 "},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"type\":\"too_large\","
		"\"status\":200,\"message\":\"body over max_response_body\"," TIMING_1 "}],"
		"\"completed\":[],\"cancelled\":[]}");
}
END_TEST

START_TEST(test_rate_limited)
{
	short_batch();
	respond(&g_o[0], OUTCOME_OK, 200, "text/plain", "ok", 2);
	respond(&g_o[1], OUTCOME_RATE_LIMITED, 429, "text/plain", "slow down", 9);
	set_head(&g_o[1], 429, "content-type", "text/plain", "retry-after", "120", NULL);
	ck_assert_int_eq(g_o[1].retry_after_s, 120);
	g_o[1].message = strdup("upstream answered 429 Too Many Requests");
	std_timing();
	ck_assert_str_eq(write_batch(6.0, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"1 of 2 requests failed, 0 cancelled\",\"elapsed_ms\":6.0,"
		"\"errors\":[{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"type\":\"rate_limited\","
		"\"status\":429,\"message\":\"upstream answered 429 Too Many Requests\","
		"\"retry_after_s\":120," TIMING_1 ","
		"\"headers\":{\"content-type\":\"text/plain\",\"retry-after\":\"120\"},"
		"\"body\":\"slow down\",\"encoding\":\"text\"}],"
		"\"completed\":[0],\"cancelled\":[]}");
}
END_TEST

START_TEST(test_rate_limited_without_retry_after)
{
	short_batch();
	fail_with(&g_o[0], OUTCOME_RATE_LIMITED, 429, "upstream answered 429 Too Many Requests");
	g_o[1].type = OUTCOME_CANCELLED;
	std_timing();
	ck_assert_str_eq(write_batch(6.0, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"1 of 2 requests failed, 1 cancelled\",\"elapsed_ms\":6.0,"
		"\"errors\":[{\"index\":0,\"url\":\"http://a.example/x\",\"type\":\"rate_limited\","
		"\"status\":429,\"message\":\"upstream answered 429 Too Many Requests\","
		TIMING_0 "}],\"completed\":[],\"cancelled\":[1]}");
}
END_TEST

/* Retry-After is parsed on a 503 too (it pauses the upstream), and as
 * decimal seconds; retry_after_s is written for rate_limited only (and
 * circuit_open), rounded up to whole seconds. */
START_TEST(test_retry_after_decimal_and_503)
{
	short_batch();
	respond(&g_o[0], OUTCOME_HTTP_STATUS, 503, "text/plain", "busy", 4);
	set_head(&g_o[0], 503, "content-type", "text/plain", "retry-after", "1.5", NULL);
	ck_assert(g_o[0].retry_after_ms == 1500);
	ck_assert_int_eq(g_o[0].retry_after_s, 2);      /* parsed, not written */
	g_o[0].message = strdup("upstream answered 503 Service Unavailable");
	respond(&g_o[1], OUTCOME_RATE_LIMITED, 429, "text/plain", "", 0);
	set_head(&g_o[1], 429, "content-type", "text/plain", "retry-after", "0.25", NULL);
	ck_assert(g_o[1].retry_after_ms == 250);
	ck_assert_int_eq(g_o[1].retry_after_s, 1);      /* 0.25 s rounds up to 1 */
	g_o[1].message = strdup("upstream answered 429 Too Many Requests");
	std_timing();
	ck_assert_str_eq(write_batch(6.0, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"2 of 2 requests failed, 0 cancelled\",\"elapsed_ms\":6.0,"
		"\"errors\":[{\"index\":0,\"url\":\"http://a.example/x\",\"type\":\"http_status\","
		"\"status\":503,\"message\":\"upstream answered 503 Service Unavailable\","
		TIMING_0 ","
		"\"headers\":{\"content-type\":\"text/plain\",\"retry-after\":\"1.5\"},"
		"\"body\":\"busy\",\"encoding\":\"text\"},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"type\":\"rate_limited\","
		"\"status\":429,\"message\":\"upstream answered 429 Too Many Requests\","
		"\"retry_after_s\":1," TIMING_1 ","
		"\"headers\":{\"content-type\":\"text/plain\",\"retry-after\":\"0.25\"},"
		"\"body\":\"\",\"encoding\":\"text\"}],"
		"\"completed\":[],\"cancelled\":[]}");

	/* settled: the same rule inside the error object */
	outcome_clear(&g_o[0]);
	outcome_clear(&g_o[1]);
	batch("{\"mode\": \"settled\", \"requests\": [\"http://a.example/x\","
	      " \"https://b.example/y?z=1\"]}");
	respond(&g_o[0], OUTCOME_RATE_LIMITED, 429, NULL, "", 0);
	set_head(&g_o[0], 429, "retry-after", "1.5", NULL);
	ck_assert_int_eq(g_o[0].retry_after_s, 2);
	g_o[0].message = strdup("upstream answered 429 Too Many Requests");
	respond(&g_o[1], OUTCOME_HTTP_STATUS, 503, NULL, "", 0);
	set_head(&g_o[1], 503, "retry-after", "7", NULL);
	ck_assert_int_eq(g_o[1].retry_after_s, 7);
	g_o[1].message = strdup("upstream answered 503 Service Unavailable");
	std_timing();
	ck_assert_str_eq(write_batch(9.0, 200),
		"{\"ok\":false,\"elapsed_ms\":9.0,\"results\":["
		"{\"index\":0,\"url\":\"http://a.example/x\",\"error\":{\"type\":\"rate_limited\","
		"\"status\":429,\"message\":\"upstream answered 429 Too Many Requests\","
		"\"retry_after_s\":2,\"headers\":{\"retry-after\":\"1.5\"},\"body\":\"\","
		"\"encoding\":\"text\"}," TIMING_0 "},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"error\":{\"type\":\"http_status\","
		"\"status\":503,\"message\":\"upstream answered 503 Service Unavailable\","
		"\"headers\":{\"retry-after\":\"7\"},\"body\":\"\",\"encoding\":\"text\"},"
		TIMING_1 "}]}");
}
END_TEST

/* A request that was retried: "attempts" and "retry_wait_ms" after
 * "reused" and "protocol", in every shape. */
START_TEST(test_attempts)
{
	short_batch();
	respond(&g_o[0], OUTCOME_OK, 200, NULL, "a", 1);
	respond(&g_o[1], OUTCOME_OK, 200, NULL, "b", 1);
	std_timing();
	g_o[0].attempts = 3;
	g_o[0].retry_wait_ms = 250.5;
	g_o[0].protocol = "h2";
	g_o[1].attempts = 2;
	g_o[1].retry_wait_ms = 0.04;
	ck_assert_str_eq(write_batch(9.0, 200),
		"{\"ok\":true,\"elapsed_ms\":9.0,\"results\":["
		"{\"index\":0,\"url\":\"http://a.example/x\",\"status\":200," REUSED_0
		",\"protocol\":\"h2\",\"attempts\":3,\"retry_wait_ms\":250.5,"
		"\"headers\":{},\"body\":\"a\",\"encoding\":\"text\"},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"status\":200," REUSED_1
		",\"attempts\":2,\"retry_wait_ms\":0.0,"
		"\"headers\":{},\"body\":\"b\",\"encoding\":\"text\"}]}");

	/* the error group: the last attempt's error, with every attempt counted */
	outcome_clear(&g_o[0]);
	outcome_clear(&g_o[1]);
	respond(&g_o[0], OUTCOME_HTTP_STATUS, 503, NULL, "", 0);
	g_o[0].message = strdup("upstream answered 503 Service Unavailable");
	g_o[1].type = OUTCOME_CANCELLED;
	std_timing();
	g_o[0].attempts = 3;
	g_o[0].retry_wait_ms = 250.5;
	g_o[0].protocol = "http/1.1";
	ck_assert_str_eq(write_batch(300.0, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"1 of 2 requests failed, 1 cancelled\",\"elapsed_ms\":300.0,"
		"\"errors\":[{\"index\":0,\"url\":\"http://a.example/x\",\"type\":\"http_status\","
		"\"status\":503,\"message\":\"upstream answered 503 Service Unavailable\","
		REUSED_0 ",\"protocol\":\"http/1.1\",\"attempts\":3,\"retry_wait_ms\":250.5,"
		"\"headers\":{},\"body\":\"\",\"encoding\":\"text\"}],"
		"\"completed\":[],\"cancelled\":[1]}");

	/* settled: after the error object, as the timing */
	outcome_clear(&g_o[0]);
	outcome_clear(&g_o[1]);
	batch("{\"mode\": \"settled\", \"requests\": [\"http://a.example/x\","
	      " \"https://b.example/y?z=1\"]}");
	fail_with(&g_o[0], OUTCOME_CONNECT, 0, "connection refused");
	respond(&g_o[1], OUTCOME_OK, 200, NULL, "", 0);
	std_timing();
	g_o[0].attempts = 3;
	g_o[0].retry_wait_ms = 250.5;
	g_o[1].attempts = 3;
	g_o[1].retry_wait_ms = 1234.56;
	ck_assert_str_eq(write_batch(9.0, 200),
		"{\"ok\":false,\"elapsed_ms\":9.0,\"results\":["
		"{\"index\":0,\"url\":\"http://a.example/x\","
		"\"error\":{\"type\":\"connect\",\"message\":\"connection refused\"},"
		REUSED_0 ",\"attempts\":3,\"retry_wait_ms\":250.5},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"status\":200," REUSED_1
		",\"attempts\":3,\"retry_wait_ms\":1234.6,"
		"\"headers\":{},\"body\":\"\",\"encoding\":\"text\"}]}");
}
END_TEST

/* The breaker was open: nothing was sent, no connection, and the error
 * says when to come back. */
START_TEST(test_circuit_open)
{
	short_batch();
	respond(&g_o[0], OUTCOME_OK, 200, NULL, "", 0);
	fail_with(&g_o[1], OUTCOME_CIRCUIT_OPEN, 0, "circuit open: https://b.example:443 "
	          "failed 5 times in a row; nothing was sent");
	g_o[1].retry_after_s = 8;
	std_timing();
	ck_assert_str_eq(write_batch(1.0, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"1 of 2 requests failed, 0 cancelled\",\"elapsed_ms\":1.0,"
		"\"errors\":[{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"type\":\"circuit_open\","
		"\"message\":\"circuit open: https://b.example:443 failed 5 times in a row; "
		"nothing was sent\",\"retry_after_s\":8," TIMING_1 "}],"
		"\"completed\":[0],\"cancelled\":[]}");

	/* settled; without a time left (-1) there is no retry_after_s */
	outcome_clear(&g_o[0]);
	outcome_clear(&g_o[1]);
	batch("{\"mode\": \"settled\", \"requests\": [\"http://a.example/x\","
	      " \"https://b.example/y?z=1\"]}");
	fail_with(&g_o[0], OUTCOME_CIRCUIT_OPEN, 0, "circuit open");
	g_o[0].retry_after_s = 0;
	fail_with(&g_o[1], OUTCOME_CIRCUIT_OPEN, 0, "circuit open");
	std_timing();
	ck_assert_str_eq(write_batch(1.0, 200),
		"{\"ok\":false,\"elapsed_ms\":1.0,\"results\":["
		"{\"index\":0,\"url\":\"http://a.example/x\",\"error\":{\"type\":\"circuit_open\","
		"\"message\":\"circuit open\",\"retry_after_s\":0}," TIMING_0 "},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"error\":{\"type\":\"circuit_open\","
		"\"message\":\"circuit open\"}," TIMING_1 "}]}");
}
END_TEST

START_TEST(test_timeout_phase)
{
	short_batch();
	fail_with(&g_o[0], OUTCOME_TIMEOUT, 0, "no response within 2000 ms");
	g_o[0].phase = "response";
	/* g_o[1] still PENDING: counted as cancelled */
	std_timing();
	ck_assert_str_eq(write_batch(2000.46, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"1 of 2 requests failed, 1 cancelled\",\"elapsed_ms\":2000.5,"
		"\"errors\":[{\"index\":0,\"url\":\"http://a.example/x\",\"type\":\"timeout\","
		"\"message\":\"no response within 2000 ms\",\"phase\":\"response\"," TIMING_0 "}],"
		"\"completed\":[],\"cancelled\":[1]}");
}
END_TEST

/* Without a message, the type name stands in. */
START_TEST(test_error_without_message)
{
	short_batch();
	g_o[0].type = OUTCOME_CONNECT;
	g_o[1].type = OUTCOME_OK;
	g_o[1].status = 200;
	std_timing();
	ck_assert_str_eq(write_batch(1.0, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"1 of 2 requests failed, 0 cancelled\",\"elapsed_ms\":1.0,"
		"\"errors\":[{\"index\":0,\"url\":\"http://a.example/x\",\"type\":\"connect\","
		"\"message\":\"connect\"," TIMING_0 "}],"
		"\"completed\":[1],\"cancelled\":[]}");
}
END_TEST

START_TEST(test_settled)
{
	batch("{\"mode\": \"settled\", \"requests\": [\"http://a.example/x\","
	      " \"https://b.example/y?z=1\"]}");
	respond(&g_o[0], OUTCOME_OK, 200, "text/plain", "fine", 4);
	fail_with(&g_o[1], OUTCOME_CONNECT, 0, "connection refused");
	std_timing();
	ck_assert_str_eq(write_batch(9.0, 200),
		"{\"ok\":false,\"elapsed_ms\":9.0,\"results\":["
		"{\"index\":0,\"url\":\"http://a.example/x\",\"status\":200," TIMING_0 ","
		"\"headers\":{\"content-type\":\"text/plain\"},\"body\":\"fine\",\"encoding\":\"text\"},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\","
		"\"error\":{\"type\":\"connect\",\"message\":\"connection refused\"}," TIMING_1 "}]}");
}
END_TEST

START_TEST(test_settled_http_status_and_cancelled)
{
	batch("{\"mode\": \"settled\", \"requests\": [\"http://a.example/x\","
	      " \"https://b.example/y?z=1\"]}");
	respond(&g_o[0], OUTCOME_HTTP_STATUS, 404, "application/json", "{\"e\":1}", 7);
	g_o[0].message = strdup("upstream answered 404 Not Found");
	g_o[1].type = OUTCOME_CANCELLED;
	std_timing();
	ck_assert_str_eq(write_batch(9.0, 200),
		"{\"ok\":false,\"elapsed_ms\":9.0,\"results\":["
		"{\"index\":0,\"url\":\"http://a.example/x\","
		"\"error\":{\"type\":\"http_status\",\"status\":404,"
		"\"message\":\"upstream answered 404 Not Found\","
		"\"headers\":{\"content-type\":\"application/json\"},\"body\":{\"e\":1},"
		"\"encoding\":\"json\"}," TIMING_0 "},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\","
		"\"error\":{\"type\":\"cancelled\",\"message\":\"cancelled\"}," TIMING_1 "}]}");
}
END_TEST

START_TEST(test_settled_all_ok)
{
	batch("{\"mode\": \"settled\", \"requests\": [\"http://a.example/x\","
	      " \"https://b.example/y?z=1\"]}");
	respond(&g_o[0], OUTCOME_OK, 200, NULL, "a", 1);
	respond(&g_o[1], OUTCOME_OK, 200, NULL, "b", 1);
	std_timing();
	ck_assert_str_eq(write_batch(9.0, 200),
		"{\"ok\":true,\"elapsed_ms\":9.0,\"results\":["
		"{\"index\":0,\"url\":\"http://a.example/x\",\"status\":200," TIMING_0 ","
		"\"headers\":{},\"body\":\"a\",\"encoding\":\"text\"},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"status\":200," TIMING_1 ","
		"\"headers\":{},\"body\":\"b\",\"encoding\":\"text\"}]}");
}
END_TEST

START_TEST(test_draining)
{
	short_batch();
	respond(&g_o[0], OUTCOME_OK, 200, "text/plain", "ok", 2);
	g_o[1].type = OUTCOME_CANCELLED;
	std_timing();
	ck_assert_str_eq(write_batch(30000.0, 503),
		"{\"ok\":false,\"error\":\"draining\","
		"\"message\":\"fanoutd is shutting down: 1 of 2 requests cancelled\","
		"\"elapsed_ms\":30000.0,\"errors\":[],\"completed\":[0],\"cancelled\":[1]}");
}
END_TEST

START_TEST(test_draining_all_cancelled)
{
	short_batch();
	g_o[0].type = OUTCOME_CANCELLED;
	g_o[1].type = OUTCOME_CANCELLED;
	ck_assert_str_eq(write_batch(1.0, 503),
		"{\"ok\":false,\"error\":\"draining\","
		"\"message\":\"fanoutd is shutting down: 2 of 2 requests cancelled\","
		"\"elapsed_ms\":1.0,\"errors\":[],\"completed\":[],\"cancelled\":[0,1]}");
}
END_TEST

START_TEST(test_ids_echoed)
{
	batch("{\"requests\": [{\"url\": \"http://a.example/x\", \"id\": \"user \\\"1\\\"\"},"
	      " {\"url\": \"https://b.example/y?z=1\", \"id\": 7}]}");
	respond(&g_o[0], OUTCOME_OK, 200, NULL, "", 0);
	respond(&g_o[1], OUTCOME_OK, 200, NULL, "", 0);
	std_timing();
	ck_assert_str_eq(write_batch(1.0, 200),
		"{\"ok\":true,\"elapsed_ms\":1.0,\"results\":["
		"{\"index\":0,\"id\":\"user \\\"1\\\"\",\"url\":\"http://a.example/x\",\"status\":200,"
		TIMING_0 ",\"headers\":{},\"body\":\"\",\"encoding\":\"text\"},"
		"{\"index\":1,\"id\":7,\"url\":\"https://b.example/y?z=1\",\"status\":200,"
		TIMING_1 ",\"headers\":{},\"body\":\"\",\"encoding\":\"text\"}]}");

	/* ids in the error group and the settled list too */
	outcome_clear(&g_o[0]);
	outcome_clear(&g_o[1]);
	batch("{\"mode\": \"settled\", \"requests\": [{\"url\": \"http://a.example/x\", \"id\": 2.5},"
	      " {\"url\": \"https://b.example/y?z=1\", \"id\": \"t\"}]}");
	fail_with(&g_o[0], OUTCOME_FORBIDDEN, 0, "a.example resolved into deny_networks");
	g_o[1].type = OUTCOME_CANCELLED;
	std_timing();
	ck_assert_str_eq(write_batch(1.0, 200),
		"{\"ok\":false,\"elapsed_ms\":1.0,\"results\":["
		"{\"index\":0,\"id\":2.5,\"url\":\"http://a.example/x\",\"error\":{\"type\":\"forbidden\","
		"\"message\":\"a.example resolved into deny_networks\"}," TIMING_0 "},"
		"{\"index\":1,\"id\":\"t\",\"url\":\"https://b.example/y?z=1\",\"error\":{"
		"\"type\":\"cancelled\",\"message\":\"cancelled\"}," TIMING_1 "}]}");

	batch("{\"requests\": [{\"url\": \"http://a.example/x\", \"id\": \"first\"},"
	      " {\"url\": \"https://b.example/y?z=1\", \"id\": 7}]}");
	std_timing();
	ck_assert_str_eq(write_batch(1.0, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"1 of 2 requests failed, 1 cancelled\",\"elapsed_ms\":1.0,"
		"\"errors\":[{\"index\":0,\"id\":\"first\",\"url\":\"http://a.example/x\","
		"\"type\":\"forbidden\",\"message\":\"a.example resolved into deny_networks\","
		TIMING_0 "}],\"completed\":[],\"cancelled\":[1]}");
}
END_TEST

/* "protocol" follows "reused" in every shape once the request got a
 * connection, and is left out when it got none. */
START_TEST(test_protocol)
{
	short_batch();
	respond(&g_o[0], OUTCOME_OK, 200, NULL, "a", 1);
	respond(&g_o[1], OUTCOME_OK, 200, NULL, "b", 1);
	std_timing();
	g_o[0].protocol = "http/1.1";
	g_o[1].protocol = "h2";
	ck_assert_str_eq(write_batch(9.0, 200),
		"{\"ok\":true,\"elapsed_ms\":9.0,\"results\":["
		"{\"index\":0,\"url\":\"http://a.example/x\",\"status\":200," TIMING_0_PROTO("http/1.1")
		",\"headers\":{},\"body\":\"a\",\"encoding\":\"text\"},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"status\":200," TIMING_1_PROTO("h2")
		",\"headers\":{},\"body\":\"b\",\"encoding\":\"text\"}]}");

	/* the error group: an answer over h2, a connection never made */
	outcome_clear(&g_o[0]);
	outcome_clear(&g_o[1]);
	respond(&g_o[0], OUTCOME_HTTP_STATUS, 503, NULL, "", 0);
	g_o[0].message = strdup("upstream answered 503 Service Unavailable");
	fail_with(&g_o[1], OUTCOME_CONNECT, 0, "connection refused");
	std_timing();
	g_o[0].protocol = "h2";
	ck_assert_str_eq(write_batch(3.0, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"2 of 2 requests failed, 0 cancelled\",\"elapsed_ms\":3.0,"
		"\"errors\":[{\"index\":0,\"url\":\"http://a.example/x\",\"type\":\"http_status\","
		"\"status\":503,\"message\":\"upstream answered 503 Service Unavailable\","
		TIMING_0_PROTO("h2") ",\"headers\":{},\"body\":\"\",\"encoding\":\"text\"},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"type\":\"connect\","
		"\"message\":\"connection refused\"," TIMING_1 "}],"
		"\"completed\":[],\"cancelled\":[]}");

	/* settled: after the error object, with the timing */
	outcome_clear(&g_o[0]);
	outcome_clear(&g_o[1]);
	batch("{\"mode\": \"settled\", \"requests\": [\"http://a.example/x\","
	      " \"https://b.example/y?z=1\"]}");
	fail_with(&g_o[0], OUTCOME_TIMEOUT, 0, "no complete answer within 100 ms");
	g_o[0].phase = "response";
	fail_with(&g_o[1], OUTCOME_TIMEOUT, 0, "no TLS handshake within 100 ms");
	g_o[1].phase = "tls";
	std_timing();
	g_o[0].protocol = "http/1.1";
	ck_assert_str_eq(write_batch(9.0, 200),
		"{\"ok\":false,\"elapsed_ms\":9.0,\"results\":["
		"{\"index\":0,\"url\":\"http://a.example/x\",\"error\":{\"type\":\"timeout\","
		"\"message\":\"no complete answer within 100 ms\",\"phase\":\"response\"},"
		TIMING_0_PROTO("http/1.1") "},"
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"error\":{\"type\":\"timeout\","
		"\"message\":\"no TLS handshake within 100 ms\",\"phase\":\"tls\"}," TIMING_1 "}]}");
}
END_TEST

/* A number id comes back as the client wrote it, not as jansson prints
 * the double it became (0.10000000000000001, 1000.0). */
START_TEST(test_number_ids_keep_spelling)
{
	batch("{\"requests\": [{\"url\": \"http://a.example/x\", \"id\": 0.1},"
	      " {\"url\": \"https://b.example/y?z=1\", \"id\": 1e3}]}");
	respond(&g_o[0], OUTCOME_OK, 200, NULL, "", 0);
	respond(&g_o[1], OUTCOME_OK, 200, NULL, "", 0);
	std_timing();
	ck_assert_str_eq(write_batch(1.0, 200),
		"{\"ok\":true,\"elapsed_ms\":1.0,\"results\":["
		"{\"index\":0,\"id\":0.1,\"url\":\"http://a.example/x\",\"status\":200,"
		TIMING_0 ",\"headers\":{},\"body\":\"\",\"encoding\":\"text\"},"
		"{\"index\":1,\"id\":1e3,\"url\":\"https://b.example/y?z=1\",\"status\":200,"
		TIMING_1 ",\"headers\":{},\"body\":\"\",\"encoding\":\"text\"}]}");

	outcome_clear(&g_o[0]);
	outcome_clear(&g_o[1]);
	batch("{\"requests\": [{\"url\": \"http://a.example/x\", \"id\": -0.50},"
	      " {\"url\": \"https://b.example/y?z=1\", \"id\": 12345678901234567890.0}]}");
	fail_with(&g_o[0], OUTCOME_FORBIDDEN, 0, "a.example resolved into deny_networks");
	g_o[1].type = OUTCOME_CANCELLED;
	std_timing();
	ck_assert_str_eq(write_batch(1.0, 502),
		"{\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"1 of 2 requests failed, 1 cancelled\",\"elapsed_ms\":1.0,"
		"\"errors\":[{\"index\":0,\"id\":-0.50,\"url\":\"http://a.example/x\","
		"\"type\":\"forbidden\",\"message\":\"a.example resolved into deny_networks\","
		TIMING_0 "}],\"completed\":[],\"cancelled\":[1]}");
}
END_TEST

/* --- body encodings ---------------------------------------------------- */

/* The answer for one 200 response with content type ct and body (len
 * bytes, or strlen(body) when len is SIZE_MAX). */
static const char *one(const char *ct, const char *body, size_t len)
{
	if (body != NULL && len == SIZE_MAX)
		len = strlen(body);
	batch("[\"http://a/\"]");
	outcome_clear(&g_o[0]);
	respond(&g_o[0], OUTCOME_OK, 200, ct, body, len);
	return write_batch(1.0, 200);
}

#define ONE_HEAD "{\"ok\":true,\"elapsed_ms\":1.0,\"results\":[{\"index\":0,\"url\":\"http://a/\"," \
	"\"status\":200,\"elapsed_ms\":0.0,\"timing\":{\"queued_ms\":0.0,\"connect_ms\":0.0," \
	"\"ttfb_ms\":0.0,\"total_ms\":0.0},\"reused\":false,\"attempts\":1,\"retry_wait_ms\":0.0,"
#define ONE_TAIL "}]}"

START_TEST(test_encoding_json_verbatim)
{
	ck_assert_str_eq(one("application/json", "{\"a\": 1.10, \"b\": [1e2, -0.0]}", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/json\"},"
		"\"body\":{\"a\": 1.10, \"b\": [1e2, -0.0]},\"encoding\":\"json\"" ONE_TAIL);
	ck_assert_str_eq(one("Application/JSON; charset=utf-8", "[1,\"\\u00e9\"]", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"Application/JSON; charset=utf-8\"},"
		"\"body\":[1,\"\\u00e9\"],\"encoding\":\"json\"" ONE_TAIL);
	ck_assert_str_eq(one("application/json", "\"str\"", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/json\"},"
		"\"body\":\"str\",\"encoding\":\"json\"" ONE_TAIL);
	ck_assert_str_eq(one("application/json", "null", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/json\"},"
		"\"body\":null,\"encoding\":\"json\"" ONE_TAIL);
}
END_TEST

START_TEST(test_encoding_plus_json)
{
	ck_assert_str_eq(one("application/problem+json",
	                     "{\"title\":\"Not Found\",\"status\":404}", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/problem+json\"},"
		"\"body\":{\"title\":\"Not Found\",\"status\":404},\"encoding\":\"json\"" ONE_TAIL);
	ck_assert_str_eq(one("application/vnd.api+json; charset=utf-8", "{}", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/vnd.api+json; charset=utf-8\"},"
		"\"body\":{},\"encoding\":\"json\"" ONE_TAIL);
}
END_TEST

START_TEST(test_encoding_json_type_not_json_body)
{
	ck_assert_str_eq(one("application/json", "not json", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/json\"},"
		"\"body\":\"not json\",\"encoding\":\"text\"" ONE_TAIL);
	/* a truncated document */
	ck_assert_str_eq(one("application/json", "{\"a\":", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/json\"},"
		"\"body\":\"{\\\"a\\\":\",\"encoding\":\"text\"" ONE_TAIL);
	/* valid JSON followed by a NUL and more: must not be embedded */
	ck_assert_str_eq(one("application/json", "{}\0{}", 5),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/json\"},"
		"\"body\":\"{}\\u0000{}\",\"encoding\":\"text\"" ONE_TAIL);
}
END_TEST

START_TEST(test_encoding_not_json_types)
{
	ck_assert_str_eq(one(NULL, "{\"a\":1}", SIZE_MAX),
		ONE_HEAD "\"headers\":{},\"body\":\"{\\\"a\\\":1}\",\"encoding\":\"text\"" ONE_TAIL);
	ck_assert_str_eq(one("text/json", "{\"a\":1}", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"text/json\"},"
		"\"body\":\"{\\\"a\\\":1}\",\"encoding\":\"text\"" ONE_TAIL);
	ck_assert_str_eq(one("application/json-seq", "{\"a\":1}", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/json-seq\"},"
		"\"body\":\"{\\\"a\\\":1}\",\"encoding\":\"text\"" ONE_TAIL);
}
END_TEST

START_TEST(test_encoding_text)
{
	ck_assert_str_eq(one("text/plain; charset=utf-8", "caf\xc3\xa9 \"q\"\t\\\n", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"text/plain; charset=utf-8\"},"
		"\"body\":\"caf\xc3\xa9 \\\"q\\\"\\t\\\\\\n\",\"encoding\":\"text\"" ONE_TAIL);
	/* NUL is valid UTF-8 */
	ck_assert_str_eq(one("application/octet-stream", "a\0b", 3),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/octet-stream\"},"
		"\"body\":\"a\\u0000b\",\"encoding\":\"text\"" ONE_TAIL);
}
END_TEST

START_TEST(test_encoding_base64)
{
	ck_assert_str_eq(one("application/octet-stream", "\xff\xfe\x00" "a", 4),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/octet-stream\"},"
		"\"body\":\"//4AYQ==\",\"encoding\":\"base64\"" ONE_TAIL);
	/* Latin-1 text is not UTF-8 */
	ck_assert_str_eq(one("text/plain", "caf\xe9", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"text/plain\"},"
		"\"body\":\"Y2Fm6Q==\",\"encoding\":\"base64\"" ONE_TAIL);
	/* a JSON type with a non-UTF-8 body */
	ck_assert_str_eq(one("application/json", "\"\xff\"", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/json\"},"
		"\"body\":\"Iv8i\",\"encoding\":\"base64\"" ONE_TAIL);
}
END_TEST

START_TEST(test_encoding_empty_body)
{
	ck_assert_str_eq(one("application/json", "", 0),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/json\"},"
		"\"body\":\"\",\"encoding\":\"text\"" ONE_TAIL);
	/* no body buffer at all (HEAD, 204) */
	ck_assert_str_eq(one("text/plain", NULL, 0),
		ONE_HEAD "\"headers\":{\"content-type\":\"text/plain\"},"
		"\"body\":\"\",\"encoding\":\"text\"" ONE_TAIL);
}
END_TEST

/* A JSON body that parses as JSON everywhere: 64-bit unsigned numbers
 * are valid JSON, and the body is embedded verbatim anyway. */
START_TEST(test_encoding_json_big_integer)
{
	ck_assert_str_eq(one("application/json", "{\"id\":18446744073709551615}", SIZE_MAX),
		ONE_HEAD "\"headers\":{\"content-type\":\"application/json\"},"
		"\"body\":{\"id\":18446744073709551615},\"encoding\":\"json\"" ONE_TAIL);
}
END_TEST

/* --- headers ----------------------------------------------------------- */

/* What fetch.c and outcome_seal made of a head before outcome_set_head:
 * a jansson object of answer_textn values, dumped JSON_COMPACT; its
 * Content-Type, and on a 429 or 503 its Retry-After parsed (retry.h) and
 * rounded up to whole seconds. */
static char *old_headers_json(const struct exchange_head *head, char **ct, long *ra)
{
	json_t *obj = json_object();
	const char *v;
	char *text;
	size_t i;

	ck_assert_ptr_nonnull(obj);
	for (i = 0; i < head->nfields; i++)
		json_object_setn_new(obj, head->fields[i].name, head->fields[i].name_len,
		                     answer_textn(head->fields[i].value, head->fields[i].value_len));
	v = json_string_value(json_object_get(obj, "content-type"));
	*ct = v ? strdup(v) : NULL;
	*ra = -1;
	v = json_string_value(json_object_get(obj, "retry-after"));
	if ((head->status == 429 || head->status == 503) && v != NULL) {
		double ms = retry_after_ms(v, strlen(v), clock_wall_ms());

		if (ms >= 0)
			*ra = (long)ceil(ms / 1000.0);
	}
	text = json_dumps(obj, JSON_COMPACT);
	ck_assert_ptr_nonnull(text);
	json_decref(obj);
	return text;
}

/* outcome_set_head on o is what the jansson object made of head. */
static void check_head_as_before(struct outcome *o, const struct exchange_head *head)
{
	char *want, *ct;
	long ra;

	outcome_set_head(o, head);
	want = old_headers_json(head, &ct, &ra);
	ck_assert_int_eq(o->status, head->status);
	ck_assert_msg(strcmp(o->headers_json, want) == 0, "headers %s, want %s",
	              o->headers_json, want);
	if (ct == NULL)
		ck_assert_ptr_null(o->content_type);
	else
		ck_assert_str_eq(o->content_type, ct);
	ck_assert_int_eq(o->retry_after_s, ra);
	free(want);
	free(ct);
}

START_TEST(test_set_head)
{
	struct outcome o;
	struct exchange_field f[4];
	struct exchange_head head = { .status = 200, .fields = f, .nfields = 4 };

	outcome_init(&o);
	set_head(&o, 200, "content-type", "text/html", "x-dup", "a, b, c",
	         "set-cookie", "k=v; Path=/", "x-utf8", "caf\xc3\xa9", "x-latin1", "caf\xe9",
	         "x-empty", "", "retry-after", "120", NULL);
	ck_assert_int_eq(o.status, 200);
	ck_assert_str_eq(o.headers_json, "{\"content-type\":\"text/html\",\"x-dup\":\"a, b, c\","
	                 "\"set-cookie\":\"k=v; Path=/\",\"x-utf8\":\"caf\xc3\xa9\","
	                 "\"x-latin1\":\"caf?\",\"x-empty\":\"\",\"retry-after\":\"120\"}");
	ck_assert_str_eq(o.content_type, "text/html");
	ck_assert_int_eq(o.retry_after_s, -1);          /* only on a 429 or 503 */
	ck_assert(o.retry_after_ms == -1);
	set_head(&o, 500, "retry-after", "120", NULL);
	ck_assert_int_eq(o.retry_after_s, -1);
	ck_assert(o.retry_after_ms == -1);
	set_head(&o, 503, "retry-after", "120", NULL);
	ck_assert_int_eq(o.retry_after_s, 120);
	ck_assert(o.retry_after_ms == 120000);
	set_head(&o, 503, "retry-after", "1.5", NULL);   /* decimal seconds, rounded up */
	ck_assert_int_eq(o.retry_after_s, 2);
	ck_assert(o.retry_after_ms == 1500);
	set_head(&o, 503, NULL);                         /* a later head replaces it */
	ck_assert_int_eq(o.retry_after_s, -1);
	ck_assert(o.retry_after_ms == -1);

	/* escaped as jansson does: '/' and DEL as they are */
	set_head(&o, 429, "retry-after", " 7 ", "x-esc", "\"a\\b\"\t\b\f\n\r\x01\x1f/\x7f", NULL);
	ck_assert_str_eq(o.headers_json, "{\"retry-after\":\" 7 \",\"x-esc\":"
	                 "\"\\\"a\\\\b\\\"\\t\\b\\f\\n\\r\\u0001\\u001F/\x7f\"}");
	ck_assert_ptr_null(o.content_type);
	ck_assert_int_eq(o.retry_after_s, 7);
	ck_assert(o.retry_after_ms == 7000);
	set_head(&o, 429, "retry-after", "soon", NULL);
	ck_assert_int_eq(o.retry_after_s, -1);
	ck_assert(o.retry_after_ms == -1);
	set_head(&o, 429, "retry-after", "Thu, 01 Jan 1970 00:01:00 GMT", NULL);
	ck_assert_int_eq(o.retry_after_s, 0);           /* in the past */
	ck_assert(o.retry_after_ms == 0);
	set_head(&o, 429, "retry-after", "0.001", NULL);
	ck_assert_int_eq(o.retry_after_s, 1);           /* up, never down to 0 */
	set_head(&o, 429, "retry-after", "2.0", NULL);
	ck_assert_int_eq(o.retry_after_s, 2);
	set_head(&o, 429, "retry-after", "2.01", NULL);
	ck_assert_int_eq(o.retry_after_s, 3);
	set_head(&o, 204, NULL);
	ck_assert_str_eq(o.headers_json, "{}");
	ck_assert_ptr_null(o.content_type);

	/* NUL bytes: kept in valid UTF-8 (and a C string ends there), '?' in
	 * text that is not; a name that is not UTF-8 is left out */
	f[0] = (struct exchange_field){ "content-type", 12, "application/json\0; x", 20 };
	f[1] = (struct exchange_field){ "x-\xff", 3, "v", 1 };
	f[2] = (struct exchange_field){ "x-a", 3, "a\0b", 3 };
	f[3] = (struct exchange_field){ "x-b", 3, "a\0\xff", 3 };
	outcome_set_head(&o, &head);
	ck_assert_str_eq(o.headers_json, "{\"content-type\":\"application/json\\u0000; x\","
	                 "\"x-a\":\"a\\u0000b\",\"x-b\":\"a??\"}");
	ck_assert_str_eq(o.content_type, "application/json");
	check_head_as_before(&o, &head);
	head.status = 429;
	f[1] = (struct exchange_field){ "retry-after", 11, "12\0x", 4 };
	check_head_as_before(&o, &head);
	ck_assert_int_eq(o.retry_after_s, 12);
	f[3] = (struct exchange_field){ "x-b", 3, "\xe9", 1 };
	f[1] = (struct exchange_field){ "retry-after", 11, "12\0\xff", 4 };
	check_head_as_before(&o, &head);
	ck_assert_int_eq(o.retry_after_s, -1);          /* "12??" */
	outcome_clear(&o);
}
END_TEST

/* --- small error bodies ------------------------------------------------ */

START_TEST(test_write_error)
{
	answer_write_error(g_buf, "invalid_request", "[3]: unsupported scheme \"ftp\"");
	ck_assert_str_eq(output(), "{\"ok\":false,\"error\":\"invalid_request\","
	                 "\"message\":\"[3]: unsupported scheme \\\"ftp\\\"\"}");
	answer_write_error(g_buf, "not_found", "no such path: /x\nline \\ two\r\t\x01");
	ck_assert_str_eq(output(), "{\"ok\":false,\"error\":\"not_found\","
	                 "\"message\":\"no such path: /x\\nline \\\\ two\\r\\t\\u0001\"}");
	answer_write_error(g_buf, "draining", "caf\xc3\xa9 \xe2\x82\xac");
	ck_assert_str_eq(output(), "{\"ok\":false,\"error\":\"draining\","
	                 "\"message\":\"caf\xc3\xa9 \xe2\x82\xac\"}");
	answer_write_error(g_buf, "draining", "caf\xe9");
	ck_assert_str_eq(output(), "{\"ok\":false,\"error\":\"draining\","
	                 "\"message\":\"caf?\"}");
	answer_write_error(g_buf, "request_too_large", "");
	ck_assert_str_eq(output(), "{\"ok\":false,\"error\":\"request_too_large\",\"message\":\"\"}");
}
END_TEST

/* answer_text and answer_write_json: what other modules (the upstream
 * list) send strings through, escaped and made valid UTF-8. */
START_TEST(test_text_and_write_json)
{
	json_t *v = json_pack("[o]", answer_text("http://a\"b\\c:80\xff"));

	answer_write_json(g_buf, v);
	json_decref(v);
	ck_assert_str_eq(output(), "[\"http://a\\\"b\\\\c:80?\"]");
}
END_TEST

/* Text that is not valid UTF-8: only the bytes that break it become '?'
 * (answer.c's own contract for answer_text); valid characters around them
 * are kept. */
START_TEST(test_invalid_utf8_only_bad_bytes_replaced)
{
	answer_write_error(g_buf, "draining", "caf\xc3\xa9 / caf\xe9");
	ck_assert_str_eq(output(), "{\"ok\":false,\"error\":\"draining\","
	                 "\"message\":\"caf\xc3\xa9 / caf?\"}");

	set_head(&g_o[0], 200, "x-name", "Jos\xc3\xa9, Jos\xe9", NULL);
	ck_assert_str_eq(g_o[0].headers_json, "{\"x-name\":\"Jos\xc3\xa9, Jos?\"}");
}
END_TEST

/* --- against jansson and snprintf -------------------------------------- */

/* xorshift64*: the same inputs on every run. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static size_t pick(size_t n)
{
	return (size_t)(rnd() % n);
}

/* A growing test input; what does not fit is dropped. */
struct gen {
	char buf[4096];
	size_t len;
};

static void gen_add(struct gen *g, const char *s, size_t n)
{
	if (n > sizeof g->buf - g->len)
		n = sizeof g->buf - g->len;
	memcpy(g->buf + g->len, s, n);
	g->len += n;
}

static void gen_str(struct gen *g, const char *s)
{
	gen_add(g, s, strlen(s));
}

static void gen_one_of(struct gen *g, const char *const *list, size_t n)
{
	gen_str(g, list[pick(n)]);
}

#define ONE_OF(g, ...) do {                                                      \
		static const char *const list_[] = { __VA_ARGS__ };                    \
		gen_one_of((g), list_, sizeof list_ / sizeof *list_);                   \
	} while (0)

/* Text that is mostly UTF-8: ASCII, what needs escaping, multi-byte
 * characters and now and then a byte or sequence that breaks it. */
static void gen_text(struct gen *g, size_t pieces)
{
	char c;

	while (pieces-- > 0) {
		switch (pick(8)) {
		case 0: case 1: case 2:
			c = (char)(0x20 + pick(0x5f));
			gen_add(g, &c, 1);
			break;
		case 3:
			c = (char)pick(0x20);   /* control characters, NUL too */
			gen_add(g, &c, 1);
			break;
		case 4:
			ONE_OF(g, "\"", "\\", "/", "\x7f", "?", " ");
			break;
		case 5: case 6:
			ONE_OF(g, "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
			       "\xc2\x80", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf");
			break;
		default:
			if (pick(3) == 0)
				ONE_OF(g, "\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xf5\x80\x80\x80",
				       "\xff", "\xe2\x82", "\xed\xa0\x80", "\xe0\x80\x80",
				       "\xf4\x90\x80\x80", "\xf0\x8f\xbf\xbf", "\xc3");
			break;
		}
	}
}

START_TEST(test_text_json_matches_jansson)
{
	struct gen g;
	char out[6 * sizeof g.buf + 2], clean[sizeof g.buf];
	json_t *v;
	char *want;
	size_t i, n, invalid = 0;

	rng_state = 0x9e3779b97f4a7c15ULL;
	for (i = 0; i < 3000; i++) {
		g.len = 0;
		gen_text(&g, pick(24));
		v = answer_textn(g.buf, g.len);
		ck_assert_ptr_nonnull(v);
		want = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		ck_assert_ptr_nonnull(want);
		n = answer_text_json_len(g.buf, g.len);
		ck_assert_uint_eq(n, strlen(want));
		ck_assert_ptr_eq(answer_text_json(out, g.buf, g.len), out + n);
		out[n] = '\0';
		ck_assert_msg(strcmp(out, want) == 0, "input %zu: %s, want %s", i, out, want);
		ck_assert_ptr_eq(answer_text_clean(clean, g.buf, g.len), clean + g.len);
		ck_assert_uint_eq(json_string_length(v), g.len);
		ck_assert(memcmp(clean, json_string_value(v), g.len) == 0);
		free(want);
		json_decref(v);
		v = json_stringn(g.buf, g.len);
		ck_assert(jsonvalid_utf8(g.buf, g.len) == (v != NULL));
		json_decref(v);
		invalid += !jsonvalid_utf8(g.buf, g.len);
	}
	ck_assert_uint_gt(invalid, 300);    /* both kinds were tried */
	ck_assert_uint_lt(invalid, 2700);
}
END_TEST

/* Random heads, names from the codec (lower-case tokens) and not (upper
 * case, NUL, not UTF-8); values anything. */
START_TEST(test_set_head_matches_jansson)
{
	static const char *const names[] = {
		"content-type", "retry-after", "server", "date", "x-a", "x-b", "set-cookie",
		"Content-Type", "x-\xff", "x-\xc3\xa9", "x\"q", "x\\", "x/y", "x\x01",
	};
	struct gen text[MAX_FIELDS];
	struct exchange_field f[MAX_FIELDS];
	struct exchange_head head = { .fields = f };
	struct outcome o;
	bool used[sizeof names / sizeof *names];
	size_t i, k, j;

	rng_state = 0x243f6a8885a308d3ULL;
	outcome_init(&o);
	for (i = 0; i < 1000; i++) {
		memset(used, 0, sizeof used);
		head.status = pick(3) == 0 ? 200 : pick(2) ? 429 : 503;
		head.nfields = pick(8);
		for (k = 0; k < head.nfields; k++) {
			do
				j = pick(sizeof names / sizeof *names);
			while (used[j]);   /* the codec joins repeats: names unique */
			used[j] = true;
			text[k].len = 0;
			if (strcmp(names[j], "retry-after") == 0 && pick(2))
				ONE_OF(&text[k], "120", " 7", "0", "-1", "1e3", "1.5", "0.25", "3.",
				       "Thu, 01 Jan 1970 00:00:00 GMT");
			else
				gen_text(&text[k], pick(12));
			f[k] = (struct exchange_field){ names[j], strlen(names[j]),
			                                text[k].buf, text[k].len };
		}
		check_head_as_before(&o, &head);
	}
	outcome_clear(&o);
}
END_TEST

/* answer_format_ms(v) is snprintf's "%.1f" of v; ms_tried counts. */
static size_t ms_tried;

static void check_ms(double v)
{
	char want[ANSWER_MS_MAX + 8], got[ANSWER_MS_MAX + 8];
	int n = snprintf(want, sizeof want, "%.1f", v);
	char *end = answer_format_ms(got, v);

	/* not ck_assert: a check per value would cost more than the value */
	if (n < 0 || (size_t)(end - got) != (size_t)n || memcmp(got, want, (size_t)n) != 0)
		ck_abort_msg("%.17g: \"%.*s\", want \"%s\"", v, (int)(end - got), got, want);
	ms_tried++;
}

static void check_ms_both(double v)
{
	check_ms(v);
	check_ms(-v);
}

START_TEST(test_format_ms_matches_printf)
{
	static const double fixed[] = {
		0.0, 0.04, 0.05, 0.049999999999999996, 0.05000000000000001, 0.15, 0.25,
		0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 0.9500000000000001, 1.25, 2.25,
		2.5, 9.95, 9.96, 99.95, 20.16, 10.04, 2.26, 5.56, 23.44, 31.04, 2000.46,
		30000.0, 1e-300, 5e-324, 2.2250738585072014e-308, 0x1p-7, 0x1p-8, 0x1.fffp-9,
		0x1p-60, 0x1p-61, 0x1p52, 0x1p52 + 1, 0x1p53 - 1, 0x1p53 - 0.5, 0x1p51 + 0.5,
		0x1p50 + 0.25, 0x1p50 + 0.75, 0x1p49 + 0.125, 0x1p53, 0x1p53 + 2, 1e15 + 0.05,
		1e16, 1e20, 1e300, DBL_MAX, 4503599627370495.5, 1125899906842624.25,
	};
	size_t i;
	uint64_t bits;
	double v;

	ms_tried = 0;
	for (i = 0; i < sizeof fixed / sizeof *fixed; i++)
		check_ms_both(fixed[i]);
	check_ms(NAN);
	check_ms(INFINITY);
	check_ms(-INFINITY);
	/* every tie and near-tie of the first decimal up to 10,000 ms */
	for (i = 0; i <= 200000; i++) {
		check_ms_both((double)i / 20);
		check_ms_both((double)i / 4);
	}
	for (i = 0; i <= 100000; i++) {
		check_ms((double)i / 100);
		check_ms((double)i / 1000);
		check_ms(nextafter((double)i / 20, 0));
		check_ms(nextafter((double)i / 20, INFINITY));
	}
	/* random times, random magnitudes, random bit patterns */
	rng_state = 0x13198a2e03707344ULL;
	for (i = 0; i < 200000; i++) {
		check_ms((double)(rnd() >> 11) / 0x1p53 * 1e7);
		check_ms_both(ldexp((double)(rnd() >> 11), (int)pick(130) - 120));
		bits = rnd();
		memcpy(&v, &bits, sizeof v);
		check_ms(v);
	}
	ck_assert_uint_gt(ms_tried, 2000000);
}
END_TEST

START_TEST(test_format_uint_matches_printf)
{
	char want[32], got[UNITS_UINT_MAX];
	uintmax_t v, p;
	size_t i;
	int n;

	rng_state = 0xa4093822299f31d0ULL;
	for (i = 0; i < 20000; i++) {
		if (i < 1000)
			v = i;
		else if (i < 1040)
			v = UINTMAX_MAX - (i - 1000);
		else
			v = rnd() >> pick(64);
		for (p = 1; p != 0 && i == 0; p = p * 10 > p ? p * 10 : 0) {
			/* the powers of ten and their neighbours, once */
			n = snprintf(want, sizeof want, "%ju", p - 1);
			ck_assert(units_format_uint(got, p - 1) - got == n && memcmp(got, want, (size_t)n) == 0);
			n = snprintf(want, sizeof want, "%ju", p);
			ck_assert(units_format_uint(got, p) - got == n && memcmp(got, want, (size_t)n) == 0);
		}
		n = snprintf(want, sizeof want, "%ju", v);
		if (units_format_uint(got, v) - got != n || memcmp(got, want, (size_t)n) != 0)
			ck_abort_msg("%ju", v);
	}
}
END_TEST

/* --- jsonvalid --------------------------------------------------------- */

#define JSON_DEPTH 512   /* answer.c's ANSWER_MAX_JSON_DEPTH */

/* Nesting depth of a JSON text: brackets outside strings (the check
 * answer.c made before jsonvalid). */
static size_t bracket_depth(const char *p, size_t len)
{
	size_t i, depth = 0, max = 0;
	bool in_string = false;

	for (i = 0; i < len; i++) {
		if (in_string) {
			if (p[i] == '\\')
				i++;
			else if (p[i] == '"')
				in_string = false;
		} else if (p[i] == '"') {
			in_string = true;
		} else if (p[i] == '[' || p[i] == '{') {
			if (++depth > max)
				max = depth;
		} else if ((p[i] == ']' || p[i] == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

/* What answer.c did before jsonvalid: jansson parses it, nested at most
 * max_depth deep; and, the one difference, no NUL byte. */
static bool jansson_valid(const char *p, size_t len, size_t max_depth)
{
	json_t *v;

	if (memchr(p, '\0', len) != NULL || bracket_depth(p, len) > max_depth)
		return false;
	v = json_loadb(p, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
	json_decref(v);
	return v != NULL;
}

static void check_json(const char *p, size_t len, size_t *valid)
{
	bool want = jansson_valid(p, len, JSON_DEPTH);

	if (jsonvalid_check(p, len, JSON_DEPTH) != want)
		ck_abort_msg("jsonvalid_check(\"%.*s\") is %d, jansson %d",
		             (int)(len < 300 ? len : 300), p, !want, want);
	*valid += want;
}

static void gen_space(struct gen *g)
{
	if (pick(3) == 0)
		ONE_OF(g, " ", "\t", "\n", "\r", "  ", "\r\n", " \t ");
	else if (pick(60) == 0)
		ONE_OF(g, "\f", "\v", "\xc2\xa0");   /* not JSON's white space */
}

static void gen_json_string(struct gen *g)
{
	size_t n = pick(6);

	gen_str(g, "\"");
	while (n-- > 0) {
		switch (pick(6)) {
		case 0:
			ONE_OF(g, "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t",
			       "\\u00e9", "\\u0041", "\\u20AC", "\\uFFFF", "\\ud83d\\ude00",
			       "\\uD834\\uDD1E", "\\udbff\\udfff", "\\u0001");
			break;
		case 1:
			if (pick(4) == 0)
				ONE_OF(g, "\\ud800", "\\udc00", "\\ud800\\u0041", "\\ud800x",
				       "\\ud800\\ud800", "\\udfff\\ud800", "\\u0000", "\\x", "\\u12G4",
				       "\\U0041", "\\u12", "\\", "\\'", "\t", "\n");
			break;
		default:
			gen_text(g, 1 + pick(4));
			break;
		}
	}
	if (pick(40) > 0)
		gen_str(g, "\"");
}

static void gen_json_number(struct gen *g)
{
	char digits[24];
	size_t i, n;

	if (pick(12) == 0) {
		ONE_OF(g, "1e309", "1e308", "-1e309", "1e-400", "-0", "0e999999999999999999999",
		       "01", "-01", "1.", ".5", "+1", "1e", "1e+", "-", "0x1F", "1.5e3.2", "00",
		       "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308",
		       "17976931348623158e292", "17976931348623159e292", "0.00017976931348623159e312",
		       "179769313486231580793728971405303415079934132710037826936173778980444968"
		       "292764750946649017977587207096330286416692887910946555547851940402630657"
		       "488671505820681908902000708383676273854845817711531764475730270069855571"
		       "366959622842914819860834936475292719074168444365510704342711559699508093"
		       "042880177904174497791",
		       "179769313486231580793728971405303415079934132710037826936173778980444968"
		       "292764750946649017977587207096330286416692887910946555547851940402630657"
		       "488671505820681908902000708383676273854845817711531764475730270069855571"
		       "366959622842914819860834936475292719074168444365510704342711559699508093"
		       "042880177904174497792.0e-0",
		       "18446744073709551616", "1E400", "1e-99999999999999999999", "-0.0e-0");
		return;
	}
	if (pick(3) == 0)
		gen_str(g, "-");
	n = 1 + pick(pick(4) == 0 ? 20 : 4);
	for (i = 0; i < n; i++)
		digits[i] = (char)('0' + (i == 0 && n > 1 ? 1 + pick(9) : pick(10)));
	gen_add(g, digits, n);
	if (pick(3) == 0) {
		gen_str(g, ".");
		n = 1 + pick(6);
		for (i = 0; i < n; i++)
			digits[i] = (char)('0' + pick(10));
		gen_add(g, digits, n);
	}
	if (pick(4) == 0) {
		ONE_OF(g, "e", "E", "e+", "e-", "E-", "E+");
		snprintf(digits, sizeof digits, "%zu", pick(3) ? pick(40) : pick(400));
		gen_str(g, digits);
	}
}

static void gen_json(struct gen *g, size_t depth)
{
	size_t n, i;
	size_t kind = depth > 5 ? 4 + pick(6) : pick(10);

	gen_space(g);
	switch (kind) {
	case 0: case 1:
		gen_str(g, "[");
		n = pick(5);
		for (i = 0; i < n; i++) {
			if (i > 0)
				gen_str(g, pick(50) ? "," : ",,");
			gen_json(g, depth + 1);
		}
		if (pick(50) == 0)
			gen_str(g, ",");
		gen_space(g);
		gen_str(g, pick(60) ? "]" : "}");
		break;
	case 2: case 3:
		gen_str(g, "{");
		n = pick(5);
		for (i = 0; i < n; i++) {
			if (i > 0)
				gen_str(g, pick(50) ? "," : ",,");
			gen_space(g);
			if (pick(60) == 0)
				gen_json(g, depth + 1);   /* a key that is not a string */
			else
				gen_json_string(g);
			gen_space(g);
			gen_str(g, pick(60) ? ":" : "=");
			gen_json(g, depth + 1);
		}
		gen_space(g);
		gen_str(g, pick(60) ? "}" : "]");
		break;
	case 4: case 5:
		gen_json_string(g);
		break;
	case 6: case 7:
		gen_json_number(g);
		break;
	default:
		ONE_OF(g, "true", "false", "null", "true", "false", "null",
		       "tru", "nul", "True", "nulll", "falsey", "NaN", "Infinity");
		break;
	}
	gen_space(g);
}

/* Mutants of a text: a byte replaced, dropped or added, or the text cut. */
static void mutate(struct gen *g)
{
	static const char bytes[] = "\0\"\\[]{},:0-e.+ \xff\x80ut\n\x01";
	size_t at = g->len ? pick(g->len) : 0;
	char c = bytes[pick(sizeof bytes - 1)];

	switch (pick(4)) {
	case 0:
		if (g->len > 0)
			g->buf[at] = c;
		break;
	case 1:
		if (g->len > 0) {
			memmove(g->buf + at, g->buf + at + 1, g->len - at - 1);
			g->len--;
		}
		break;
	case 2:
		if (g->len < sizeof g->buf) {
			memmove(g->buf + at + 1, g->buf + at, g->len - at);
			g->buf[at] = c;
			g->len++;
		}
		break;
	default:
		g->len = at;
		break;
	}
}

START_TEST(test_jsonvalid_matches_jansson)
{
	struct gen g, m;
	size_t i, k, tried = 0, valid = 0;

	rng_state = 0x082efa98ec4e6c89ULL;
	for (i = 0; i < 4000; i++) {
		g.len = 0;
		gen_json(&g, 0);
		if (pick(30) == 0)
			ONE_OF(&g, "x", "1", "\"", "]", "\xff", " 0");   /* trailing junk */
		check_json(g.buf, g.len, &valid);
		tried++;
		for (k = 0; k < 3; k++) {
			m = g;
			mutate(&m);
			if (pick(2))
				mutate(&m);
			check_json(m.buf, m.len, &valid);
			tried++;
		}
	}
	/* the generator reaches both sides */
	ck_assert_uint_gt(valid, tried / 10);
	ck_assert_uint_lt(valid, tried - tried / 10);
}
END_TEST

/* n arrays or objects deep around a value, into buf. */
static size_t nest(char *buf, size_t n, bool objects, const char *inner)
{
	size_t i, len = 0;

	for (i = 0; i < n; i++)
		len += (size_t)sprintf(buf + len, objects ? "{\"k\":" : "[");
	len += (size_t)sprintf(buf + len, "%s", inner);
	for (i = 0; i < n; i++)
		buf[len++] = objects ? '}' : ']';
	return len;
}

START_TEST(test_jsonvalid_cases)
{
	static const struct { const char *text; size_t len; bool ok; } cases[] = {
#define C(lit, ok) { lit, sizeof lit - 1, ok }
		C("{}", true), C(" [ ] ", true), C("\"\"", true), C("0", true), C("-0.0e+0", true),
		C("true", true), C(" \t\r\nnull\n", true), C("{\"a\":[1,{\"b\":null}],\"a\":2}", true),
		C("\"\\ud83d\\ude00 \xf0\x9f\x98\x80 \\/ \x7f\"", true), C("1e-400", true),
		C("1.7976931348623158e308", true), C("18446744073709551615", true),
		C("", false), C(" ", false), C("[", false), C("]", false), C("[1,]", false),
		C("{\"a\"}", false), C("{\"a\":1,}", false), C("{1:2}", false), C("'a'", false),
		C("\"\\ud800\"", false), C("\"\\udc00\"", false), C("\"\\ud800\\u0041\"", false),
		C("\"\\u0000\"", false), C("{\"\\u0000\":1}", false), C("\"a\0\"", false),
		C("1\0", false), C("[1\0]", false), C("true\0", false), C("\0", false),
		C("\"\xff\"", false), C("\"\xed\xa0\x80\"", false), C("\"\xc3\"", false),
		C("1e309", false), C("-1e309", false), C("1.7976931348623159e308", false),
		C("01", false), C("1.", false), C(".1", false), C("+1", false), C("1 2", false),
		C("\"a\"\"b\"", false), C("nul", false), C("truex", false), C("\"\t\"", false),
		C("\f1", false), C("\xef\xbb\xbf{}", false),
#undef C
	};
	static char buf[2 * 2100 * 5 + 16];
	size_t i, len, valid = 0;

	for (i = 0; i < sizeof cases / sizeof *cases; i++) {
		ck_assert_msg(jsonvalid_check(cases[i].text, cases[i].len, JSON_DEPTH) == cases[i].ok,
		              "case %zu: %s", i, cases[i].text);
		check_json(cases[i].text, cases[i].len, &valid);
	}
	/* the nesting limit, and jansson's own (2048) past it */
	for (i = 0; i < 2; i++) {
		len = nest(buf, 512, i, "1");
		ck_assert(jsonvalid_check(buf, len, 512));
		ck_assert(!jsonvalid_check(buf, len, 511));
		check_json(buf, len, &valid);
		len = nest(buf, 513, i, "[]");
		ck_assert(!jsonvalid_check(buf, len, 512));
		ck_assert(jsonvalid_check(buf, len, 514));
		check_json(buf, len, &valid);
		len = nest(buf, 2047, i, "1");
		ck_assert(jsonvalid_check(buf, len, 2047));
		ck_assert(jsonvalid_check(buf, len, SIZE_MAX));
		len = nest(buf, 2049, i, "1");
		ck_assert(!jsonvalid_check(buf, len, SIZE_MAX));   /* capped at 2048 */
		ck_assert(jsonvalid_check("1", 1, 0));
		ck_assert(!jsonvalid_check("[]", 2, 0));
	}
}
END_TEST

/* --- streamed lines (SPEC 11) ---------------------------------------------- */

/* Everything written to g_buf so far: one line, "\n" at its end only,
 * holding one JSON object. */
static const char *output_line(void)
{
	size_t len = evbuffer_get_length(g_buf);
	json_error_t jerr;

	free(g_out);
	g_out = malloc(len + 1);
	ck_assert_ptr_nonnull(g_out);
	ck_assert_int_eq(evbuffer_remove(g_buf, g_out, len), (int)len);
	g_out[len] = '\0';
	ck_assert_msg(len > 0 && g_out[len - 1] == '\n', "no newline: %s", g_out);
	ck_assert_ptr_eq(strchr(g_out, '\n'), g_out + len - 1);
	json_decref(g_json);
	g_json = json_loadb(g_out, len - 1, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
	ck_assert_msg(json_is_object(g_json), "not a JSON object (%s): %s", jerr.text, g_out);
	return g_out;
}

START_TEST(test_line_success)
{
	short_batch();
	respond(&g_o[1], OUTCOME_OK, 200, "application/json", "{\"n\": 1.50}", 11);
	std_timing();
	answer_write_line(g_buf, &g_br, 1, &g_o[1]);
	ck_assert_str_eq(output_line(),
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"status\":200," TIMING_1 ","
		"\"headers\":{\"content-type\":\"application/json\"},\"body\":{\"n\": 1.50},"
		"\"encoding\":\"json\"}\n");
	/* the body is consumed as in the buffered answer */
	ck_assert_ptr_null(g_o[1].body);
	ck_assert_uint_eq(g_o[1].body_len, 0);
}
END_TEST

/* A pretty-printed JSON body stays JSON, on one line; text keeps its
 * line breaks (escaped). */
/* --- collapsed and hedged (SPEC 15) ---------------------------------------- */

/* A JSON body over ANSWER_COPY_BELOW (4096) with line breaks in it. */
static char *big_json(size_t *len)
{
	size_t n = 6000, i = 0, k;
	char *p = malloc(n + 8);

	ck_assert_ptr_nonnull(p);
	p[i++] = '[';
	for (k = 0; i < n; k++) {
		p[i++] = '1';
		p[i++] = ',';
		if (k % 50 == 49)
			p[i++] = '\n';
	}
	p[i++] = '2';
	p[i++] = ']';
	p[i] = '\0';
	*len = i;
	return p;
}

START_TEST(test_shared_body_read_by_every_answer)
{
	struct outcome src, copy;
	size_t len;
	char *doc = big_json(&len);
	const char *out;

	short_batch();
	outcome_init(&src);
	outcome_init(&copy);
	respond(&src, OUTCOME_OK, 200, "application/json", doc, len);
	src.attempts = 2;
	outcome_share_result(&g_o[0], &src);
	outcome_share_result(&g_o[1], &src);
	outcome_share_result(&copy, &src);
	ck_assert_ptr_nonnull(src.share);
	ck_assert_uint_eq(src.share->refs, 4);
	ck_assert_ptr_eq(g_o[0].body, src.body);   /* shared, not copied */
	ck_assert_uint_eq(g_o[1].attempts, 2);
	g_o[0].shared = g_o[1].shared = true;
	/* a line flattens a copy: the others still read the line breaks */
	answer_write_line(g_buf, &g_br, 0, &g_o[0]);
	out = output_line();
	ck_assert_ptr_nonnull(strstr(out, "\"attempts\":2,\"retry_wait_ms\":0.0,\"shared\":true,"));
	ck_assert_ptr_null(strchr(out, '\r'));
	ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
	ck_assert_uint_eq(src.share->refs, 3);
	ck_assert_int_eq(memcmp(src.body, doc, len), 0);
	/* the buffered answer references it; the evbuffer drops that */
	ck_assert_int_eq(answer_write_batch(g_buf, &g_br, g_o, 1.0), 200);
	ck_assert_ptr_null(g_o[1].body);
	ck_assert_uint_eq(src.share->refs, 3);   /* src, copy, g_buf */
	output();
	ck_assert_ptr_nonnull(strstr(g_out, doc));
	ck_assert_uint_eq(src.share->refs, 2);
	outcome_clear(&src);   /* the last reader frees it */
	ck_assert_int_eq(memcmp(copy.body, doc, len), 0);
	outcome_clear(&copy);
	free(doc);
}
END_TEST

START_TEST(test_small_shared_body_and_headers_copied)
{
	struct outcome src;

	short_batch();
	outcome_init(&src);
	respond(&src, OUTCOME_HTTP_STATUS, 404, "text/plain", "gone", 4);
	src.message = strdup("upstream answered 404 Not Found");
	src.decoded = strdup("gzip");
	outcome_share_result(&g_o[0], &src);
	outcome_clear(&src);   /* g_o[0] owns its own copies */
	ck_assert_str_eq(g_o[0].message, "upstream answered 404 Not Found");
	ck_assert_str_eq(g_o[0].content_type, "text/plain");
	ck_assert_str_eq(g_o[0].headers_json, "{\"content-type\":\"text/plain\"}");
	ck_assert_int_eq(g_o[0].type, OUTCOME_HTTP_STATUS);
	ck_assert_int_eq(memcmp(g_o[0].body, "gone", 4), 0);
	respond(&g_o[1], OUTCOME_OK, 200, NULL, NULL, 0);
}
END_TEST

START_TEST(test_move_result_keeps_attempts)
{
	struct outcome twin;

	short_batch();
	outcome_init(&twin);
	respond(&twin, OUTCOME_OK, 200, "application/json", "{\"a\":1}", 7);
	twin.attempts = 1;
	twin.timing.ttfb_ms = 3.0;
	g_o[0].attempts = 3;
	g_o[0].retry_wait_ms = 12.5;
	g_o[0].message = strdup("an earlier attempt's");
	outcome_move_result(&g_o[0], &twin);
	g_o[0].hedged = true;
	ck_assert_ptr_null(twin.body);
	ck_assert_ptr_null(twin.headers_json);
	ck_assert_ptr_null(g_o[0].message);
	ck_assert_uint_eq(g_o[0].attempts, 3);
	ck_assert_double_eq(g_o[0].retry_wait_ms, 12.5);
	ck_assert_double_eq(g_o[0].timing.ttfb_ms, 3.0);
	respond(&g_o[1], OUTCOME_OK, 200, NULL, NULL, 0);
	ck_assert_int_eq(answer_write_batch(g_buf, &g_br, g_o, 1.0), 200);
	ck_assert_ptr_nonnull(strstr(output(), "\"attempts\":3,\"retry_wait_ms\":12.5,"
	                             "\"hedged\":true,\"headers\":{\"content-type\":"
	                             "\"application/json\"},\"body\":{\"a\":1}"));
	outcome_clear(&twin);
}
END_TEST

START_TEST(test_line_json_body_on_one_line)
{
	short_batch();
	respond(&g_o[0], OUTCOME_OK, 200, "application/json", "{\n\t\"a\": [1,\r\n 2]\n}\n", 19);
	respond(&g_o[1], OUTCOME_OK, 200, "text/plain", "a\nb\r\n", 5);
	std_timing();
	answer_write_line(g_buf, &g_br, 0, &g_o[0]);
	ck_assert_str_eq(output_line(),
		"{\"index\":0,\"url\":\"http://a.example/x\",\"status\":200," TIMING_0 ","
		"\"headers\":{\"content-type\":\"application/json\"},"
		"\"body\":{ \t\"a\": [1,   2] } ,\"encoding\":\"json\"}\n");
	answer_write_line(g_buf, &g_br, 1, &g_o[1]);
	ck_assert_str_eq(output_line(),
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\",\"status\":200," TIMING_1 ","
		"\"headers\":{\"content-type\":\"text/plain\"},"
		"\"body\":\"a\\nb\\r\\n\",\"encoding\":\"text\"}\n");
}
END_TEST

START_TEST(test_line_group_error)
{
	batch("{\"requests\": [{\"url\": \"http://a.example/x\", \"id\": \"t\"},"
	      " \"https://b.example/y?z=1\"]}");
	respond(&g_o[0], OUTCOME_HTTP_STATUS, 401, "text/plain", "no", 2);
	g_o[0].message = strdup("upstream answered 401 Unauthorized");
	std_timing();
	answer_write_line(g_buf, &g_br, 0, &g_o[0]);
	ck_assert_str_eq(output_line(),
		"{\"index\":0,\"id\":\"t\",\"url\":\"http://a.example/x\","
		"\"type\":\"http_status\",\"status\":401,"
		"\"message\":\"upstream answered 401 Unauthorized\"," TIMING_0 ","
		"\"headers\":{\"content-type\":\"text/plain\"},\"body\":\"no\","
		"\"encoding\":\"text\"}\n");
}
END_TEST

START_TEST(test_line_settled_error)
{
	batch("{\"mode\": \"settled\", \"requests\": [\"http://a.example/x\","
	      " \"https://b.example/y?z=1\"]}");
	respond(&g_o[0], OUTCOME_HTTP_STATUS, 404, "application/json", "{\"e\":1}", 7);
	g_o[0].message = strdup("upstream answered 404 Not Found");
	fail_with(&g_o[1], OUTCOME_TIMEOUT, 0, "timed out");
	g_o[1].phase = "connect";
	std_timing();
	answer_write_line(g_buf, &g_br, 0, &g_o[0]);
	ck_assert_str_eq(output_line(),
		"{\"index\":0,\"url\":\"http://a.example/x\","
		"\"error\":{\"type\":\"http_status\",\"status\":404,"
		"\"message\":\"upstream answered 404 Not Found\","
		"\"headers\":{\"content-type\":\"application/json\"},\"body\":{\"e\":1},"
		"\"encoding\":\"json\"}," TIMING_0 "}\n");
	answer_write_line(g_buf, &g_br, 1, &g_o[1]);
	ck_assert_str_eq(output_line(),
		"{\"index\":1,\"url\":\"https://b.example/y?z=1\","
		"\"error\":{\"type\":\"timeout\",\"message\":\"timed out\","
		"\"phase\":\"connect\"}," TIMING_1 "}\n");
}
END_TEST

/* A line is byte for byte the entry of the buffered answer. */
START_TEST(test_line_is_the_buffered_entry)
{
	static const char *const modes[] = { "all", "settled" };
	struct outcome o[2];
	char doc[256], *answer, *line;
	size_t m, len;

	for (m = 0; m < 2; m++) {
		snprintf(doc, sizeof doc, "{\"mode\": \"%s\", \"requests\": "
		         "[\"http://a.example/x\", \"http://a.example/%%22?a=1\"]}", modes[m]);
		batch(doc);
		for (int k = 0; k < 2; k++) {
			outcome_init(&o[k]);
			respond(&o[k], k ? OUTCOME_HTTP_STATUS : OUTCOME_OK, k ? 500 : 200,
			        "text/plain", "\xff\x00x", 3);
			timing(&o[k], 1.0, 2.0, 3.0, 4.0, k == 1);
			respond(&g_o[k], k ? OUTCOME_HTTP_STATUS : OUTCOME_OK, k ? 500 : 200,
			        "text/plain", "\xff\x00x", 3);
			timing(&g_o[k], 1.0, 2.0, 3.0, 4.0, k == 1);
		}
		o[1].message = strdup("boom");
		g_o[1].message = strdup("boom");
		answer_write_batch(g_buf, &g_br, g_o, 1.0);
		len = evbuffer_get_length(g_buf);
		answer = calloc(1, len + 1);
		ck_assert_ptr_nonnull(answer);
		evbuffer_remove(g_buf, answer, len);
		for (int k = 0; k < 2; k++) {
			if (m == 0 && k == 0)
				continue;   /* an error group lists no success */
			answer_write_line(g_buf, &g_br, (size_t)k, &o[k]);
			line = (char *)output_line();
			line[strlen(line) - 1] = '\0';
			ck_assert_msg(strstr(answer, line) != NULL, "%s not in %s", line, answer);
		}
		free(answer);
		for (int k = 0; k < 2; k++) {
			outcome_clear(&o[k]);
			outcome_clear(&g_o[k]);
			outcome_init(&g_o[k]);
		}
	}
}
END_TEST

START_TEST(test_progress_line)
{
	struct answer_progress p = { .total = 10000, .done = 12, .failed = 1,
	                             .in_flight = 64, .queued = 9924, .elapsed_ms = 500.04 };

	answer_write_progress(g_buf, &p);
	ck_assert_str_eq(output_line(),
		"{\"progress\":{\"total\":10000,\"done\":12,\"failed\":1,\"in_flight\":64,"
		"\"queued\":9924,\"elapsed_ms\":500.0}}\n");
}
END_TEST

START_TEST(test_last_line)
{
	unsigned char ok[2] = { OUTCOME_OK, OUTCOME_OK };
	unsigned char failed[2] = { OUTCOME_CANCELLED, OUTCOME_TOO_LARGE };
	unsigned char draining[2] = { OUTCOME_OK, OUTCOME_PENDING };

	short_batch();
	answer_write_last(g_buf, &g_br, ok, 12.34);
	ck_assert_str_eq(output_line(),
		"{\"done\":true,\"ok\":true,\"elapsed_ms\":12.3,\"completed\":[0,1],"
		"\"failed\":[],\"cancelled\":[]}\n");
	answer_write_last(g_buf, &g_br, failed, 1.0);
	ck_assert_str_eq(output_line(),
		"{\"done\":true,\"ok\":false,\"error\":\"batch_failed\","
		"\"message\":\"1 of 2 requests failed, 1 cancelled\",\"elapsed_ms\":1.0,"
		"\"completed\":[],\"failed\":[1],\"cancelled\":[0]}\n");
	answer_write_last(g_buf, &g_br, draining, -0.5);
	ck_assert_str_eq(output_line(),
		"{\"done\":true,\"ok\":false,\"error\":\"draining\","
		"\"message\":\"fanoutd is shutting down: 1 of 2 requests cancelled\","
		"\"elapsed_ms\":0.0,\"completed\":[0],\"failed\":[],\"cancelled\":[1]}\n");
	/* mode settled never carries an error */
	batch("{\"mode\": \"settled\", \"requests\": [\"http://a.example/x\","
	      " \"https://b.example/y?z=1\"]}");
	answer_write_last(g_buf, &g_br, failed, 2.0);
	ck_assert_str_eq(output_line(),
		"{\"done\":true,\"ok\":false,\"elapsed_ms\":2.0,\"completed\":[],"
		"\"failed\":[1],\"cancelled\":[0]}\n");
}
END_TEST

/* Index lists longer than the writer's piece buffer. */
START_TEST(test_last_line_long)
{
	enum { N = 3000 };
	static const struct request_limits lim = { .max_batch_size = N };
	unsigned char *types = malloc(N);
	json_t *completed, *failed;
	char doc[64];
	size_t i, len;
	char *text;
	struct evbuffer *b;

	ck_assert_ptr_nonnull(types);
	b = evbuffer_new();
	evbuffer_add(b, "[", 1);
	for (i = 0; i < N; i++) {
		evbuffer_add_printf(b, "%s\"http://a.example/%zu\"", i ? "," : "", i);
		types[i] = i % 3 == 0 ? OUTCOME_OK : i % 3 == 1 ? OUTCOME_TIMEOUT : OUTCOME_CANCELLED;
	}
	evbuffer_add(b, "]", 1);
	len = evbuffer_get_length(b);
	text = calloc(1, len + 1);
	evbuffer_remove(b, text, len);
	evbuffer_free(b);
	request_free(&g_br);
	ck_assert_int_eq(request_parse(text, len, &lim, &g_br, doc, sizeof doc), 0);
	free(text);
	answer_write_last(g_buf, &g_br, types, 1.0);
	output_line();
	completed = json_object_get(g_json, "completed");
	failed = json_object_get(g_json, "failed");
	ck_assert_uint_eq(json_array_size(completed), N / 3);
	ck_assert_uint_eq(json_array_size(failed), N / 3);
	ck_assert_uint_eq(json_array_size(json_object_get(g_json, "cancelled")), N / 3);
	for (i = 0; i < N / 3; i++) {
		ck_assert_int_eq((int)json_real_value(json_array_get(completed, i)), (int)(3 * i));
		ck_assert_int_eq((int)json_real_value(json_array_get(failed, i)), (int)(3 * i + 1));
	}
	snprintf(doc, sizeof doc, "%zu of %d requests failed, %zu cancelled", (size_t)N / 3, N,
	         (size_t)N / 3);
	ck_assert_str_eq(json_string_value(json_object_get(g_json, "message")), doc);
	free(types);
}
END_TEST

static Suite *answer_suite(void)
{
	Suite *s = suite_create("answer");
	TCase *tc;

	tc = tcase_create("outcome");
	tcase_add_test(tc, test_outcome_basics);
	suite_add_tcase(s, tc);

	tc = tcase_create("batch");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_all_ok);
	tcase_add_test(tc, test_empty_batch);
	tcase_add_test(tc, test_group_failure_and_cancelled);
	tcase_add_test(tc, test_group_completed_and_failed);
	tcase_add_test(tc, test_group_two_failures);
	tcase_add_test(tc, test_rate_limited);
	tcase_add_test(tc, test_rate_limited_without_retry_after);
	tcase_add_test(tc, test_retry_after_decimal_and_503);
	tcase_add_test(tc, test_attempts);
	tcase_add_test(tc, test_circuit_open);
	tcase_add_test(tc, test_timeout_phase);
	tcase_add_test(tc, test_error_without_message);
	tcase_add_test(tc, test_settled);
	tcase_add_test(tc, test_settled_http_status_and_cancelled);
	tcase_add_test(tc, test_settled_all_ok);
	tcase_add_test(tc, test_draining);
	tcase_add_test(tc, test_draining_all_cancelled);
	tcase_add_test(tc, test_ids_echoed);
	tcase_add_test(tc, test_number_ids_keep_spelling);
	tcase_add_test(tc, test_protocol);
	suite_add_tcase(s, tc);

	tc = tcase_create("lines");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_line_success);
	tcase_add_test(tc, test_line_json_body_on_one_line);
	tcase_add_test(tc, test_shared_body_read_by_every_answer);
	tcase_add_test(tc, test_small_shared_body_and_headers_copied);
	tcase_add_test(tc, test_move_result_keeps_attempts);
	tcase_add_test(tc, test_line_group_error);
	tcase_add_test(tc, test_line_settled_error);
	tcase_add_test(tc, test_line_is_the_buffered_entry);
	tcase_add_test(tc, test_progress_line);
	tcase_add_test(tc, test_last_line);
	tcase_add_test(tc, test_last_line_long);
	suite_add_tcase(s, tc);

	tc = tcase_create("encoding");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_encoding_json_verbatim);
	tcase_add_test(tc, test_encoding_plus_json);
	tcase_add_test(tc, test_encoding_json_type_not_json_body);
	tcase_add_test(tc, test_encoding_not_json_types);
	tcase_add_test(tc, test_encoding_text);
	tcase_add_test(tc, test_encoding_base64);
	tcase_add_test(tc, test_encoding_empty_body);
	tcase_add_test(tc, test_encoding_json_big_integer);
	suite_add_tcase(s, tc);

	tc = tcase_create("misc");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_set_head);
	tcase_add_test(tc, test_write_error);
	tcase_add_test(tc, test_text_and_write_json);
	tcase_add_test(tc, test_invalid_utf8_only_bad_bytes_replaced);
	suite_add_tcase(s, tc);

	tc = tcase_create("as_before");
	tcase_add_test(tc, test_text_json_matches_jansson);
	tcase_add_test(tc, test_set_head_matches_jansson);
	tcase_add_test(tc, test_format_ms_matches_printf);
	tcase_add_test(tc, test_format_uint_matches_printf);
	tcase_add_test(tc, test_jsonvalid_matches_jansson);
	tcase_add_test(tc, test_jsonvalid_cases);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(answer_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
