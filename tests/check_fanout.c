/* check_fanout: unit tests of the fanout client's pure modules — reading
 * URLs and JSON batches and laying the options over them
 * (src/fanout_input.c), re-ordering lines into input order
 * (src/fanout_order.c), the progress bar's text (src/fanout_progress.c),
 * the quick look at a line (src/fanout_scan.c) and the outputs made from
 * an answer's lines (src/fanout_answer.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "fanout_answer.h"
#include "fanout_input.h"
#include "fanout_order.h"
#include "fanout_progress.h"
#include "fanout_scan.h"

/* --- fanout_input ------------------------------------------------------- */

static json_t *lines(const char *text)
{
	char err[256] = "";
	json_t *b = fanout_input_new();

	ck_assert_int_eq(fanout_input_add_lines(b, text, strlen(text), err, sizeof err), 0);
	return b;
}

static void assert_json(const json_t *v, const char *want)
{
	char *got = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(lines_skip_blank_and_comments)
{
	json_t *b = lines("http://a/1\n\n  # a comment\n\t http://a/2  \r\n#x\nhttp://a/3");

	assert_json(b, "{\"requests\":[\"http://a/1\",\"http://a/2\",\"http://a/3\"]}");
	ck_assert_uint_eq(fanout_input_count(b), 3);
	ck_assert_str_eq(fanout_input_url(b, 1), "http://a/2");
	ck_assert_ptr_null(fanout_input_url(b, 3));
	json_decref(b);
}
END_TEST

START_TEST(lines_empty)
{
	json_t *b = lines("\n\n# nothing\n");

	ck_assert_uint_eq(fanout_input_count(b), 0);
	json_decref(b);
}
END_TEST

START_TEST(lines_bad_utf8_names_the_line)
{
	char err[256] = "";
	json_t *b = fanout_input_new();
	const char text[] = "http://a/1\nhttp://a/\xff\n";

	ck_assert_int_eq(fanout_input_add_lines(b, text, sizeof text - 1, err, sizeof err), -1);
	ck_assert_str_eq(err, "line 2: not UTF-8");
	json_decref(b);
}
END_TEST

START_TEST(file_lines_or_json)
{
	char err[256] = "";
	const char *t1 = "http://a/1\nhttp://a/2\n";
	const char *t2 = "  \n[\"http://a/1\", {\"url\": \"http://a/2\", \"id\": 7}]";
	const char *t3 = "{\"requests\": [\"http://a/1\"], \"mode\": \"settled\"}";
	json_t *b;

	b = fanout_input_parse_file(t1, strlen(t1), err, sizeof err);
	assert_json(b, "{\"requests\":[\"http://a/1\",\"http://a/2\"]}");
	json_decref(b);
	b = fanout_input_parse_file(t2, strlen(t2), err, sizeof err);
	ck_assert_uint_eq(fanout_input_count(b), 2);
	ck_assert_str_eq(fanout_input_url(b, 1), "http://a/2");
	assert_json(fanout_input_id(b, 1), "7");
	ck_assert_ptr_null(fanout_input_id(b, 0));
	ck_assert(!fanout_input_settled(b));
	json_decref(b);
	b = fanout_input_parse_file(t3, strlen(t3), err, sizeof err);
	ck_assert(fanout_input_settled(b));
	json_decref(b);
}
END_TEST

START_TEST(file_bad_json)
{
	char err[256] = "";
	const char *t1 = "[\"http://a/1\",", *t2 = "{\"mode\": \"all\"}";

	ck_assert_ptr_null(fanout_input_parse_file(t1, strlen(t1), err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "line 1"));
	ck_assert_ptr_null(fanout_input_parse_file(t2, strlen(t2), err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "\"requests\""));
}
END_TEST

START_TEST(apply_every_option)
{
	struct fanout_batch_opts o = { .concurrency = 4, .timeout_ms = 1500, .settled = true,
	                               .method = "POST", .retries = 1, .progress_ms = 100 };
	char err[256] = "";
	json_t *b = lines("http://a/1\n");

	o.headers = json_object();
	ck_assert_int_eq(fanout_input_header(o.headers, "X-A:  one two ", err, sizeof err), 0);
	ck_assert_int_eq(fanout_input_apply(b, &o, err, sizeof err), 0);
	assert_json(b, "{\"requests\":[{\"url\":\"http://a/1\",\"method\":\"POST\","
	            "\"timeout_ms\":1500}],\"headers\":{\"X-A\":\"one two\"},"
	            "\"max_concurrency\":4,\"mode\":\"settled\",\"retry\":{\"attempts\":2},"
	            "\"progress_ms\":100}");
	json_decref(o.headers);
	json_decref(b);
}
END_TEST

START_TEST(apply_nothing_given)
{
	struct fanout_batch_opts o = { .retries = -1 };
	char err[256] = "";
	json_t *b = lines("http://a/1\n");

	ck_assert_int_eq(fanout_input_apply(b, &o, err, sizeof err), 0);
	assert_json(b, "{\"requests\":[\"http://a/1\"]}");
	json_decref(b);
}
END_TEST

START_TEST(apply_keeps_a_request_own_settings)
{
	const char *t = "{\"requests\": [{\"url\": \"http://a/1\", \"method\": \"PUT\"}, "
	                "\"http://a/2\"], \"headers\": {\"x-a\": \"old\", \"X-B\": \"b\"}, "
	                "\"max_concurrency\": 9}";
	struct fanout_batch_opts o = { .method = "DELETE", .retries = -1, .concurrency = 2 };
	char err[256] = "";
	json_t *b = fanout_input_parse_file(t, strlen(t), err, sizeof err);

	o.headers = json_object();
	ck_assert_int_eq(fanout_input_header(o.headers, "X-A: new", err, sizeof err), 0);
	ck_assert_int_eq(fanout_input_apply(b, &o, err, sizeof err), 0);
	assert_json(b, "{\"requests\":[{\"url\":\"http://a/1\",\"method\":\"PUT\"},"
	            "{\"url\":\"http://a/2\",\"method\":\"DELETE\"}],"
	            "\"headers\":{\"X-B\":\"b\",\"X-A\":\"new\"},\"max_concurrency\":2}");
	json_decref(o.headers);
	json_decref(b);
}
END_TEST

START_TEST(header_arguments)
{
	char err[256] = "";
	json_t *h = json_object();

	ck_assert_int_eq(fanout_input_header(h, "Accept:text/plain", err, sizeof err), 0);
	ck_assert_int_eq(fanout_input_header(h, "X-Empty:", err, sizeof err), 0);
	assert_json(h, "{\"Accept\":\"text/plain\",\"X-Empty\":\"\"}");
	ck_assert_int_eq(fanout_input_header(h, "no colon", err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "expected 'Name: value'"));
	ck_assert_int_eq(fanout_input_header(h, ": v", err, sizeof err), -1);
	ck_assert_int_eq(fanout_input_header(h, "Bad Name: v", err, sizeof err), -1);
	json_decref(h);
}
END_TEST

/* --- fanout_order ------------------------------------------------------- */

/* Takes everything the order allows now, joined with '|'. */
static char *take_all(struct fanout_order *o, char *buf, size_t size)
{
	const char *line;
	size_t len, n = 0;

	buf[0] = '\0';
	while ((line = fanout_order_next(o, &len)) != NULL) {
		ck_assert_uint_lt(n + len + 2, size);
		if (n > 0)
			buf[n++] = '|';
		memcpy(buf + n, line, len);
		n += len;
		buf[n] = '\0';
	}
	return buf;
}

static void put(struct fanout_order *o, size_t i, const char *s)
{
	ck_assert_int_eq(fanout_order_put(o, i, s, strlen(s)), 0);
}

START_TEST(order_in_input_order_as_soon_as_allowed)
{
	struct fanout_order *o = fanout_order_create(5);
	char buf[256];

	put(o, 2, "c");
	put(o, 1, "b");
	ck_assert_str_eq(take_all(o, buf, sizeof buf), "");
	ck_assert_uint_eq(fanout_order_held(o), 2);
	put(o, 0, "a");
	ck_assert_str_eq(take_all(o, buf, sizeof buf), "a|b|c");
	ck_assert_uint_eq(fanout_order_position(o), 3);
	ck_assert_uint_eq(fanout_order_held(o), 0);
	put(o, 4, "e");
	ck_assert_str_eq(take_all(o, buf, sizeof buf), "");
	put(o, 3, "d");
	ck_assert_str_eq(take_all(o, buf, sizeof buf), "d|e");
	ck_assert_uint_eq(fanout_order_position(o), 5);
	ck_assert_ptr_null(fanout_order_next(o, &(size_t){ 0 }));
	fanout_order_destroy(o);
}
END_TEST

START_TEST(order_refuses_repeats_and_out_of_range)
{
	struct fanout_order *o = fanout_order_create(2);
	char buf[64];

	put(o, 0, "a");
	ck_assert_int_eq(fanout_order_put(o, 0, "x", 1), -1);
	ck_assert_str_eq(take_all(o, buf, sizeof buf), "a");
	/* taken and freed, still refused */
	ck_assert_int_eq(fanout_order_put(o, 0, "x", 1), -1);
	ck_assert_int_eq(fanout_order_put(o, 2, "x", 1), -1);
	ck_assert(fanout_order_has(o, 0));
	ck_assert(!fanout_order_has(o, 1));
	ck_assert(!fanout_order_has(o, 99));
	fanout_order_destroy(o);
}
END_TEST

START_TEST(order_reverse_many)
{
	enum { N = 1000 };
	struct fanout_order *o = fanout_order_create(N);
	const char *line;
	size_t i, len;
	char s[16];

	for (i = N; i-- > 1;) {
		snprintf(s, sizeof s, "%zu", i);
		put(o, i, s);
	}
	ck_assert_ptr_null(fanout_order_next(o, &len));
	put(o, 0, "0");
	for (i = 0; i < N; i++) {
		line = fanout_order_next(o, &len);
		ck_assert_ptr_nonnull(line);
		snprintf(s, sizeof s, "%zu", i);
		ck_assert_str_eq(line, s);
	}
	fanout_order_destroy(o);
}
END_TEST

START_TEST(order_destroy_frees_what_it_holds)
{
	struct fanout_order *o = fanout_order_create(3);

	put(o, 2, "held");
	put(o, 1, "held too");
	fanout_order_destroy(o);   /* ASan's leak check in the sanitizer build */
	o = fanout_order_create(0);
	ck_assert_ptr_null(fanout_order_next(o, &(size_t){ 0 }));
	fanout_order_destroy(o);
}
END_TEST

/* --- fanout_progress ---------------------------------------------------- */

START_TEST(progress_text)
{
	struct fanout_progress p = { .total = 10, .done = 3, .failed = 1, .elapsed_ms = 1500 };
	char buf[256];
	size_t len = fanout_progress_text(buf, sizeof buf, &p, 80);

	ck_assert_uint_eq(len, strlen(buf));
	ck_assert_uint_le(len, 79);
	ck_assert_ptr_nonnull(strstr(buf, "3/10"));
	ck_assert_ptr_nonnull(strstr(buf, "1 failed"));
	ck_assert_ptr_nonnull(strstr(buf, "2.0 req/s"));
	ck_assert_ptr_nonnull(strstr(buf, "ETA 0:04"));
	ck_assert(buf[0] == '[');
	/* 3 of 10 of the bar filled */
	ck_assert_ptr_nonnull(strstr(buf, "[############............................]"));
}
END_TEST

START_TEST(progress_text_no_failures_no_rate)
{
	struct fanout_progress p = { .total = 5, .done = 0, .elapsed_ms = 0 };
	char buf[256];

	fanout_progress_text(buf, sizeof buf, &p, 100);
	ck_assert_ptr_null(strstr(buf, "failed"));
	ck_assert_ptr_nonnull(strstr(buf, "0/5  0.0 req/s  ETA --:--"));
}
END_TEST

START_TEST(progress_text_narrow)
{
	struct fanout_progress p = { .total = 100, .done = 50, .elapsed_ms = 1000 };
	char buf[256];

	/* too narrow for the bar: the counts alone */
	fanout_progress_text(buf, sizeof buf, &p, 40);
	ck_assert_str_eq(buf, "50/100  50.0 req/s  ETA 0:01");
	/* narrower than the counts: cut, never the last column */
	ck_assert_uint_eq(fanout_progress_text(buf, sizeof buf, &p, 10), 9);
	ck_assert_str_eq(buf, "50/100  5");
	ck_assert_uint_eq(fanout_progress_text(buf, sizeof buf, &p, 0), 0);
	/* and a small buffer */
	ck_assert_uint_eq(fanout_progress_text(buf, 4, &p, 80), 3);
}
END_TEST

START_TEST(progress_eta)
{
	struct fanout_progress p = { .total = 10000, .done = 1, .elapsed_ms = 1000 };
	char buf[32];

	ck_assert_str_eq(fanout_progress_eta(buf, sizeof buf, &p), "2:46:39");
	p.done = 10000;
	ck_assert_str_eq(fanout_progress_eta(buf, sizeof buf, &p), "0:00");
	p.done = 5000;
	p.elapsed_ms = 30000;
	ck_assert_str_eq(fanout_progress_eta(buf, sizeof buf, &p), "0:30");
}
END_TEST

START_TEST(progress_frame_and_clear)
{
	struct fanout_progress p = { .total = 2, .done = 1, .elapsed_ms = 100 };
	char buf[256], text[256];
	size_t len = fanout_progress_frame(buf, sizeof buf, &p, 80);
	size_t tlen = fanout_progress_text(text, sizeof text, &p, 80);

	ck_assert_uint_eq(len, tlen + 4);
	ck_assert(buf[0] == '\r');
	ck_assert(memcmp(buf + 1, text, tlen) == 0);
	ck_assert_str_eq(buf + 1 + tlen, "\033[K");
	ck_assert_str_eq(fanout_progress_clear(), "\r\033[K");
	/* too small for anything */
	ck_assert_uint_eq(fanout_progress_frame(buf, 4, &p, 80), 0);
	/* a small buffer still ends with the erase */
	len = fanout_progress_frame(buf, 10, &p, 80);
	ck_assert_uint_eq(len, 9);
	ck_assert_str_eq(buf + 6, "\033[K");
}
END_TEST

START_TEST(progress_due)
{
	ck_assert(fanout_progress_due(-1.0, 0.0));
	ck_assert(!fanout_progress_due(1000.0, 1099.9));
	ck_assert(fanout_progress_due(1000.0, 1100.0));
}
END_TEST

/* --- fanout_scan -------------------------------------------------------- */

static int scan(const char *line, struct fanout_scan *s)
{
	return fanout_scan_line(line, strlen(line), s);
}

START_TEST(scan_entries)
{
	struct fanout_scan s;
	const char *l = "{\"index\":12,\"id\":{\"a\":[1,\"}\"]},\"url\":\"http://a/\\\"x\","
	                "\"status\":200,\"headers\":{\"type\":\"not a key here\"},"
	                "\"body\":\"say \\\"hi\\\\\",\"encoding\":\"text\"}";

	ck_assert_int_eq(scan(l, &s), 0);
	ck_assert(s.has_index);
	ck_assert_int_eq(s.index, 12);
	ck_assert(!s.failure);
	ck_assert(!s.other);
	ck_assert_uint_eq(s.body_len, strlen("\"say \\\"hi\\\\\""));
	ck_assert(memcmp(s.body, "\"say", 4) == 0);
	ck_assert(fanout_scan_is(s.encoding, s.encoding_len, "text"));
	ck_assert_int_eq(scan(" { \"index\" : 3 , \"type\" : \"timeout\" } ", &s), 0);
	ck_assert(s.has_index && s.index == 3 && s.failure);
	ck_assert_int_eq(scan("{\"index\":0,\"error\":{\"type\":\"x\"}}", &s), 0);
	ck_assert(s.failure);
	ck_assert_int_eq(scan("{\"progress\":{\"done\":1}}", &s), 0);
	ck_assert(s.other && !s.has_index);
	ck_assert_int_eq(scan("{\"done\":true,\"ok\":true}", &s), 0);
	ck_assert(s.other);
	ck_assert_int_eq(scan("{}", &s), 0);
	ck_assert_int_eq(scan("{\"index\":1.5}", &s), 0);
	ck_assert(!s.has_index);
}
END_TEST

START_TEST(scan_refuses_what_it_cannot_follow)
{
	struct fanout_scan s;
	static const char *const bad[] = {
		"", "[1]", "nope", "{", "{\"index\"}", "{\"index\":}", "{\"a\":\"open}",
		"{\"a\":[1,2}", "{\"a\":1 \"b\":2}", "{\"a\":1} x", "{index:1}",
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_msg(scan(bad[i], &s) == -1, "%s", bad[i]);
}
END_TEST

/* --- fanout_answer ------------------------------------------------------ */

struct run {
	json_t *batch;
	struct fanout_answer *a;
	char *out;
	size_t outlen;
	FILE *f;
};

static void run_start(struct run *r, const char *urls, bool settled,
                      enum fanout_output output)
{
	struct fanout_batch_opts o = { .retries = -1, .settled = settled };
	char err[256];

	r->batch = lines(urls);
	ck_assert_int_eq(fanout_input_apply(r->batch, &o, err, sizeof err), 0);
	r->f = open_memstream(&r->out, &r->outlen);
	r->a = fanout_answer_create(r->batch, output, r->f);
	ck_assert_ptr_nonnull(r->a);
}

static void feed(struct run *r, const char *line)
{
	char err[256] = "";

	ck_assert_msg(fanout_answer_line(r->a, line, strlen(line), err, sizeof err) == 0,
	              "%s", err);
}

static const char *output(struct run *r)
{
	fflush(r->f);
	return r->out;
}

static void run_end(struct run *r)
{
	fanout_answer_destroy(r->a);
	fclose(r->f);
	free(r->out);
	json_decref(r->batch);
}

#define OK0 "{\"index\":0,\"url\":\"http://a/0\",\"status\":200,\"body\":\"zero\",\"encoding\":\"text\"}"
#define OK1 "{\"index\":1,\"url\":\"http://a/1\",\"status\":200,\"body\":{\"n\":1},\"encoding\":\"json\"}"
#define OK2 "{\"index\":2,\"url\":\"http://a/2\",\"status\":200,\"body\":\"AAE=\",\"encoding\":\"base64\"}"
#define ERR1 "{\"index\":1,\"url\":\"http://a/1\",\"type\":\"http_status\",\"status\":500," \
	"\"message\":\"upstream answered 500 Internal Server Error\"}"
#define URLS3 "http://a/0\nhttp://a/1\nhttp://a/2\n"

START_TEST(answer_ndjson_in_input_order)
{
	struct run r;
	char err[256];

	run_start(&r, URLS3, false, FANOUT_OUTPUT_NDJSON);
	feed(&r, OK2);
	ck_assert_str_eq(output(&r), "");
	feed(&r, "{\"progress\":{\"total\":3,\"done\":1,\"failed\":0}}");
	feed(&r, OK0);
	ck_assert_str_eq(output(&r), OK0 "\n");
	ck_assert_uint_eq(fanout_answer_done(&*r.a), 2);
	feed(&r, OK1);
	ck_assert_str_eq(output(&r), OK0 "\n" OK1 "\n" OK2 "\n");
	feed(&r, "{\"done\":true,\"ok\":true,\"elapsed_ms\":3.5,\"completed\":[0,1,2],"
	     "\"failed\":[],\"cancelled\":[]}");
	ck_assert_int_eq(fanout_answer_finish(r.a, err, sizeof err), 0);
	ck_assert(fanout_answer_ok(r.a));
	ck_assert_str_eq(output(&r), OK0 "\n" OK1 "\n" OK2 "\n");
	run_end(&r);
}
END_TEST

START_TEST(answer_ndjson_fail_fast_cancelled_at_the_end)
{
	struct run r;
	char err[256];

	run_start(&r, URLS3, false, FANOUT_OUTPUT_NDJSON);
	feed(&r, OK0);
	feed(&r, ERR1);
	feed(&r, "{\"done\":true,\"ok\":false,\"error\":\"batch_failed\",\"message\":\"1 of 3 "
	     "requests failed, 1 cancelled\",\"elapsed_ms\":2,\"completed\":[0],"
	     "\"failed\":[1],\"cancelled\":[2]}");
	ck_assert_str_eq(output(&r), OK0 "\n" ERR1 "\n");
	ck_assert_int_eq(fanout_answer_finish(r.a, err, sizeof err), 0);
	ck_assert(!fanout_answer_ok(r.a));
	ck_assert_uint_eq(fanout_answer_failed(r.a), 1);
	ck_assert_str_eq(output(&r), OK0 "\n" ERR1 "\n"
	                 "{\"index\":2,\"url\":\"http://a/2\",\"error\":{\"type\":\"cancelled\","
	                 "\"message\":\"cancelled\"}}\n");
	run_end(&r);
}
END_TEST

START_TEST(answer_json_error_group)
{
	struct run r;
	char err[256];

	run_start(&r, URLS3, false, FANOUT_OUTPUT_JSON);
	feed(&r, OK0);
	feed(&r, ERR1);
	feed(&r, "{\"done\":true,\"ok\":false,\"error\":\"batch_failed\",\"message\":\"m\","
	     "\"elapsed_ms\":2.5,\"completed\":[0],\"failed\":[1],\"cancelled\":[2]}");
	ck_assert_str_eq(output(&r), "");
	ck_assert_int_eq(fanout_answer_finish(r.a, err, sizeof err), 0);
	ck_assert_str_eq(output(&r), "{\"ok\":false,\"error\":\"batch_failed\",\"message\":\"m\","
	                 "\"elapsed_ms\":2.5,\"errors\":[" ERR1 "],\"completed\":[0],"
	                 "\"cancelled\":[2]}\n");
	run_end(&r);
}
END_TEST

START_TEST(answer_json_results_and_settled)
{
	struct run r;
	char err[256];

	run_start(&r, URLS3, false, FANOUT_OUTPUT_JSON);
	feed(&r, OK2);
	feed(&r, OK1);
	feed(&r, OK0);
	feed(&r, "{\"done\":true,\"ok\":true,\"elapsed_ms\":1}");
	ck_assert_int_eq(fanout_answer_finish(r.a, err, sizeof err), 0);
	ck_assert_str_eq(output(&r), "{\"ok\":true,\"elapsed_ms\":1,\"results\":["
	                 OK0 "," OK1 "," OK2 "]}\n");
	run_end(&r);

	run_start(&r, URLS3, true, FANOUT_OUTPUT_JSON);
	feed(&r, "{\"index\":1,\"url\":\"http://a/1\",\"error\":{\"type\":\"connect\","
	     "\"message\":\"refused\"}}");
	feed(&r, OK0);
	feed(&r, OK2);
	feed(&r, "{\"done\":true,\"ok\":false,\"elapsed_ms\":1}");
	ck_assert_int_eq(fanout_answer_finish(r.a, err, sizeof err), 0);
	ck_assert(!fanout_answer_ok(r.a));
	ck_assert_str_eq(output(&r), "{\"ok\":false,\"elapsed_ms\":1,\"results\":[" OK0 ","
	                 "{\"index\":1,\"url\":\"http://a/1\",\"error\":{\"type\":\"connect\","
	                 "\"message\":\"refused\"}}," OK2 "]}\n");
	run_end(&r);
}
END_TEST

START_TEST(answer_body)
{
	struct run r;
	char err[256];

	run_start(&r, URLS3, true, FANOUT_OUTPUT_BODY);
	feed(&r, OK2);
	feed(&r, "{\"index\":1,\"url\":\"http://a/1\",\"error\":{\"type\":\"http_status\","
	     "\"status\":404,\"message\":\"m\",\"body\":\"not here\",\"encoding\":\"text\"}}");
	feed(&r, OK0);
	feed(&r, "{\"done\":true,\"ok\":false}");
	ck_assert_int_eq(fanout_answer_finish(r.a, err, sizeof err), 0);
	ck_assert_str_eq(output(&r), "zero\nnot here\nAAE=\n");
	run_end(&r);

	run_start(&r, "http://a/0\nhttp://a/1\n", false, FANOUT_OUTPUT_BODY);
	feed(&r, OK1);
	feed(&r, "{\"index\":0,\"url\":\"http://a/0\",\"status\":200,\"body\":\"s\","
	     "\"encoding\":\"json\"}");
	feed(&r, "{\"done\":true,\"ok\":true}");
	ck_assert_int_eq(fanout_answer_finish(r.a, err, sizeof err), 0);
	ck_assert_str_eq(output(&r), "\"s\"\n{\"n\":1}\n");
	run_end(&r);

	/* escapes in a text body are decoded; a JSON body is made compact */
	run_start(&r, "http://a/0\nhttp://a/1\nhttp://a/2\n", false, FANOUT_OUTPUT_BODY);
	feed(&r, "{\"index\":0,\"status\":200,\"body\":\"a\\nb \\u00e9\\\"\","
	     "\"encoding\":\"text\"}");
	feed(&r, "{\"index\":1,\"status\":200,\"body\": { \"k\" : [ 1 , 2 ] },"
	     "\"encoding\":\"json\"}");
	feed(&r, "{\"index\":2,\"status\":204,\"body\":\"\",\"encoding\":\"text\"}");
	feed(&r, "{\"done\":true,\"ok\":true}");
	ck_assert_int_eq(fanout_answer_finish(r.a, err, sizeof err), 0);
	ck_assert_str_eq(output(&r), "a\nb \xc3\xa9\"\n{\"k\":[1,2]}\n\n");
	run_end(&r);
}
END_TEST

START_TEST(answer_bad_lines)
{
	struct run r;
	char err[256] = "";

	run_start(&r, URLS3, false, FANOUT_OUTPUT_NDJSON);
	ck_assert_int_eq(fanout_answer_line(r.a, "nope", 4, err, sizeof err), -1);
	ck_assert_int_eq(fanout_answer_line(r.a, "{\"index\":3}", 11, err, sizeof err), -1);
	feed(&r, OK0);
	ck_assert_int_eq(fanout_answer_line(r.a, OK0, strlen(OK0), err, sizeof err), -1);
	ck_assert_str_eq(err, "an entry with a bad or repeated index");
	feed(&r, "");      /* an empty line is nothing */
	/* no last line */
	ck_assert_int_eq(fanout_answer_finish(r.a, err, sizeof err), -1);
	ck_assert_str_eq(err, "the answer ended before its last line");
	run_end(&r);
}
END_TEST

START_TEST(answer_buffered_group)
{
	const char *body = "{\"ok\":false,\"error\":\"batch_failed\",\"message\":\"m\","
	                   "\"elapsed_ms\":4,\"errors\":[" ERR1 "],\"completed\":[0],"
	                   "\"cancelled\":[2]}";
	struct run r;
	char err[256];

	run_start(&r, URLS3, false, FANOUT_OUTPUT_NDJSON);
	ck_assert_int_eq(fanout_answer_buffered(r.a, body, strlen(body), err, sizeof err), 0);
	ck_assert_int_eq(fanout_answer_finish(r.a, err, sizeof err), 0);
	ck_assert(!fanout_answer_ok(r.a));
	ck_assert_str_eq(output(&r),
	                 "{\"index\":0,\"url\":\"http://a/0\",\"completed\":true}\n" ERR1 "\n"
	                 "{\"index\":2,\"url\":\"http://a/2\",\"error\":{\"type\":\"cancelled\","
	                 "\"message\":\"cancelled\"}}\n");
	run_end(&r);

	/* json from a buffered group is that group again */
	run_start(&r, URLS3, false, FANOUT_OUTPUT_JSON);
	ck_assert_int_eq(fanout_answer_buffered(r.a, body, strlen(body), err, sizeof err), 0);
	ck_assert_int_eq(fanout_answer_finish(r.a, err, sizeof err), 0);
	ck_assert_str_eq(output(&r), "{\"ok\":false,\"error\":\"batch_failed\",\"message\":\"m\","
	                 "\"elapsed_ms\":4,\"errors\":[" ERR1 "],\"completed\":[0],"
	                 "\"cancelled\":[2]}\n");
	run_end(&r);
}
END_TEST

START_TEST(answer_buffered_results)
{
	const char *body = "{\"ok\":true,\"elapsed_ms\":4,\"results\":[" OK0 "," OK1 "," OK2 "]}";
	struct run r;
	char err[256];

	run_start(&r, URLS3, false, FANOUT_OUTPUT_NDJSON);
	ck_assert_int_eq(fanout_answer_buffered(r.a, body, strlen(body), err, sizeof err), 0);
	ck_assert_int_eq(fanout_answer_finish(r.a, err, sizeof err), 0);
	ck_assert(fanout_answer_ok(r.a));
	ck_assert_str_eq(output(&r), OK0 "\n" OK1 "\n" OK2 "\n");
	run_end(&r);

	run_start(&r, URLS3, false, FANOUT_OUTPUT_NDJSON);
	ck_assert_int_eq(fanout_answer_buffered(r.a, "[]", 2, err, sizeof err), -1);
	run_end(&r);
}
END_TEST

static Suite *fanout_suite(void)
{
	Suite *s = suite_create("fanout");
	TCase *in = tcase_create("input"), *ord = tcase_create("order"),
	      *prog = tcase_create("progress"), *ans = tcase_create("answer"),
	      *scn = tcase_create("scan");

	tcase_add_test(in, lines_skip_blank_and_comments);
	tcase_add_test(in, lines_empty);
	tcase_add_test(in, lines_bad_utf8_names_the_line);
	tcase_add_test(in, file_lines_or_json);
	tcase_add_test(in, file_bad_json);
	tcase_add_test(in, apply_every_option);
	tcase_add_test(in, apply_nothing_given);
	tcase_add_test(in, apply_keeps_a_request_own_settings);
	tcase_add_test(in, header_arguments);
	tcase_add_test(ord, order_in_input_order_as_soon_as_allowed);
	tcase_add_test(ord, order_refuses_repeats_and_out_of_range);
	tcase_add_test(ord, order_reverse_many);
	tcase_add_test(ord, order_destroy_frees_what_it_holds);
	tcase_add_test(prog, progress_text);
	tcase_add_test(prog, progress_text_no_failures_no_rate);
	tcase_add_test(prog, progress_text_narrow);
	tcase_add_test(prog, progress_eta);
	tcase_add_test(prog, progress_frame_and_clear);
	tcase_add_test(prog, progress_due);
	tcase_add_test(scn, scan_entries);
	tcase_add_test(scn, scan_refuses_what_it_cannot_follow);
	tcase_add_test(ans, answer_ndjson_in_input_order);
	tcase_add_test(ans, answer_ndjson_fail_fast_cancelled_at_the_end);
	tcase_add_test(ans, answer_json_error_group);
	tcase_add_test(ans, answer_json_results_and_settled);
	tcase_add_test(ans, answer_body);
	tcase_add_test(ans, answer_bad_lines);
	tcase_add_test(ans, answer_buffered_group);
	tcase_add_test(ans, answer_buffered_results);
	suite_add_tcase(s, in);
	suite_add_tcase(s, ord);
	suite_add_tcase(s, prog);
	suite_add_tcase(s, scn);
	suite_add_tcase(s, ans);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fanout_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
