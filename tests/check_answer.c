/* check_answer: unit tests of the JSON answers (src/answer.c).  Outcomes
 * are built by hand for a batch from request_parse(), and the exact bytes
 * written by answer_write_batch() are compared. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <event2/buffer.h>
#include <jansson.h>

#include "answer.h"
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

/* Give outcome o a response: status, optional Content-Type and body. */
static void respond(struct outcome *o, enum outcome_type type, int status,
                    const char *ct, const char *body, size_t len)
{
	o->type = type;
	o->status = status;
	o->headers = json_object();
	if (ct != NULL)
		answer_add_header(o->headers, "Content-Type", ct);
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

#define TIMING_0 "\"elapsed_ms\":20.2,\"timing\":{\"queued_ms\":1.0,\"connect_ms\":2.3," \
                 "\"ttfb_ms\":10.0,\"total_ms\":20.2},\"reused\":false"
#define TIMING_1 "\"elapsed_ms\":5.6,\"timing\":{\"queued_ms\":0.0,\"connect_ms\":0.0," \
                 "\"ttfb_ms\":5.0,\"total_ms\":5.6},\"reused\":true"

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
	};
	size_t i;

	ck_assert_uint_eq(sizeof types / sizeof *types, OUTCOME_COUNT);   /* all listed */
	outcome_init(&o);
	ck_assert_int_eq(o.type, OUTCOME_PENDING);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_null(o.message);
	ck_assert_ptr_null(o.phase);
	ck_assert_int_eq(o.retry_after_s, -1);
	ck_assert_ptr_null(o.headers);
	ck_assert_ptr_null(o.body);
	ck_assert(!o.reused);
	for (i = 0; i < sizeof types / sizeof *types; i++) {
		o.type = types[i].t;
		ck_assert_str_eq(outcome_type_name(types[i].t), types[i].name);
		ck_assert_msg(outcome_is_failure(&o) == types[i].failure, "%s", types[i].name);
	}
	/* clear frees what it owns and leaves a fresh outcome */
	respond(&o, OUTCOME_HTTP_STATUS, 500, "text/plain", "x", 1);
	o.message = strdup("m");
	o.retry_after_s = 3;
	outcome_clear(&o);
	ck_assert_int_eq(o.type, OUTCOME_PENDING);
	ck_assert_ptr_null(o.message);
	ck_assert_ptr_null(o.headers);
	ck_assert_ptr_null(o.body);
	ck_assert_int_eq(o.retry_after_s, -1);
	outcome_clear(&o);      /* twice is harmless */
}
END_TEST

/* --- whole answers ----------------------------------------------------- */

START_TEST(test_all_ok)
{
	short_batch();
	respond(&g_o[0], OUTCOME_OK, 200, "application/json", "{\"name\":\"Ada\"}", 14);
	respond(&g_o[1], OUTCOME_OK, 201, "text/plain; charset=utf-8", "hello\n", 6);
	answer_add_header(g_o[1].headers, "X-Dup", "a");
	answer_add_header(g_o[1].headers, "x-dup", "b");
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
	answer_add_header(g_o[1].headers, "Retry-After", "120");
	g_o[1].message = strdup("upstream answered 429 Too Many Requests");
	g_o[1].retry_after_s = 120;
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
	"\"ttfb_ms\":0.0,\"total_ms\":0.0},\"reused\":false,"
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

START_TEST(test_add_header)
{
	char *s;

	g_json = json_object();
	answer_add_header(g_json, "Content-Type", "text/html");
	answer_add_header(g_json, "X-Dup", "a");
	answer_add_header(g_json, "x-dup", "b");
	answer_add_header(g_json, "X-DUP", "c");
	answer_add_header(g_json, "Set-Cookie", "k=v; Path=/");
	answer_add_header(g_json, "X-Utf8", "caf\xc3\xa9");
	answer_add_header(g_json, "X-Latin1", "caf\xe9");
	answer_add_header(g_json, "X-Empty", "");
	s = json_dumps(g_json, JSON_COMPACT);
	ck_assert_ptr_nonnull(s);
	g_out = s;
	ck_assert_str_eq(s, "{\"content-type\":\"text/html\",\"x-dup\":\"a, b, c\","
	                 "\"set-cookie\":\"k=v; Path=/\",\"x-utf8\":\"caf\xc3\xa9\","
	                 "\"x-latin1\":\"caf?\",\"x-empty\":\"\"}");
}
END_TEST

/* --- Retry-After ------------------------------------------------------- */

START_TEST(test_retry_after)
{
	const time_t now = 1445412480;   /* Wed, 21 Oct 2015 07:28:00 GMT */
	long v;

	v = -2;
	ck_assert_int_eq(answer_parse_retry_after("120", now, &v), 0);
	ck_assert_int_eq(v, 120);
	v = -2;
	ck_assert_int_eq(answer_parse_retry_after(" 7 ", now, &v), 0);
	ck_assert_int_eq(v, 7);
	v = -2;
	ck_assert_int_eq(answer_parse_retry_after("0", now, &v), 0);
	ck_assert_int_eq(v, 0);
	v = -2;
	ck_assert_int_eq(answer_parse_retry_after("\t3", now, &v), 0);
	ck_assert_int_eq(v, 3);

	v = -2;
	ck_assert_int_eq(answer_parse_retry_after("-1", now, &v), -1);
	ck_assert_int_eq(answer_parse_retry_after("abc", now, &v), -1);
	ck_assert_int_eq(answer_parse_retry_after("", now, &v), -1);
	ck_assert_int_eq(answer_parse_retry_after("  ", now, &v), -1);
	ck_assert_int_eq(answer_parse_retry_after("12abc", now, &v), -1);
	ck_assert_int_eq(answer_parse_retry_after("1.5", now, &v), -1);
	ck_assert_int_eq(answer_parse_retry_after("1 2", now, &v), -1);
	ck_assert_int_eq(answer_parse_retry_after("Wed, 21 Oct 2015 07:28:60", now, &v), -1);
	ck_assert_int_eq(v, -2);         /* untouched on error */

	/* HTTP dates */
	ck_assert_int_eq(answer_parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now, &v), 0);
	ck_assert_int_eq(v, 60);
	v = -2;
	ck_assert_int_eq(answer_parse_retry_after("Thu, 22 Oct 2015 07:28:00 GMT", now, &v), 0);
	ck_assert_int_eq(v, 86400);
	v = -2;
	ck_assert_int_eq(answer_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now, &v), 0);
	ck_assert_int_eq(v, 0);
	v = -2;
	ck_assert_int_eq(answer_parse_retry_after("Tue, 20 Oct 2015 07:28:00 GMT", now, &v), 0);
	ck_assert_int_eq(v, 0);          /* in the past: retry now */
	v = -2;
	ck_assert_int_eq(answer_parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", 0, &v), 0);
	ck_assert_int_eq(v, 60);
}
END_TEST

/* RFC 9110 section 5.6.7: a recipient MUST accept all three HTTP-date
 * formats, the obsolete RFC 850 and asctime ones too. */
START_TEST(test_retry_after_obsolete_date_formats)
{
	const time_t now = 1445412480;   /* Wed, 21 Oct 2015 07:28:00 GMT */
	long v;

	v = -2;
	ck_assert_int_eq(answer_parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now, &v), 0);
	ck_assert_int_eq(v, 60);
	v = -2;
	ck_assert_int_eq(answer_parse_retry_after("Wed Oct 21 07:29:00 2015", now, &v), 0);
	ck_assert_int_eq(v, 60);
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
	char *s;

	answer_write_error(g_buf, "draining", "caf\xc3\xa9 / caf\xe9");
	ck_assert_str_eq(output(), "{\"ok\":false,\"error\":\"draining\","
	                 "\"message\":\"caf\xc3\xa9 / caf?\"}");

	json_decref(g_json);   /* the parsed output of the first half */
	g_json = json_object();
	answer_add_header(g_json, "X-Name", "Jos\xc3\xa9");
	answer_add_header(g_json, "X-Name", "Jos\xe9");
	s = json_dumps(g_json, JSON_COMPACT);
	ck_assert_ptr_nonnull(s);
	free(g_out);
	g_out = s;
	ck_assert_str_eq(s, "{\"x-name\":\"Jos\xc3\xa9, Jos?\"}");
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
	tcase_add_test(tc, test_timeout_phase);
	tcase_add_test(tc, test_error_without_message);
	tcase_add_test(tc, test_settled);
	tcase_add_test(tc, test_settled_http_status_and_cancelled);
	tcase_add_test(tc, test_settled_all_ok);
	tcase_add_test(tc, test_draining);
	tcase_add_test(tc, test_draining_all_cancelled);
	tcase_add_test(tc, test_ids_echoed);
	tcase_add_test(tc, test_number_ids_keep_spelling);
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
	tcase_add_test(tc, test_add_header);
	tcase_add_test(tc, test_retry_after);
	tcase_add_test(tc, test_retry_after_obsolete_date_formats);
	tcase_add_test(tc, test_write_error);
	tcase_add_test(tc, test_text_and_write_json);
	tcase_add_test(tc, test_invalid_utf8_only_bad_bytes_replaced);
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
