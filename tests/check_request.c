/* check_request: unit tests of batch request parsing and validation
 * (src/request.c, src/request_headers.c, "retry" objects with the names
 * of src/retry.c) and of the address parsers it
 * shares with the config (src/netaddr.c).  Every error case asserts the
 * exact message and that the batch is left empty. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <check.h>
#include <jansson.h>

#include "httptoken.h"
#include "netaddr.h"
#include "request.h"
#include "retry.h"

static const struct request_limits lim = { .max_batch_size = 100 };

static void parse_ok_n(const char *data, size_t len, struct batch_request *br)
{
	char err[1024] = "";

	if (request_parse(data, len, &lim, br, err, sizeof err) != 0)
		ck_abort_msg("request_parse(%s) failed: %s", data, err);
}

static void parse_ok(const char *data, struct batch_request *br)
{
	parse_ok_n(data, strlen(data), br);
}

/* Parse with limits l, expect failure; returns the message (static). */
static const char *parse_err_lim(const char *data, size_t len,
                                 const struct request_limits *l)
{
	static char err[1024];
	struct batch_request br;
	int rc;

	strcpy(err, "(untouched)");
	rc = request_parse(data, len, l, &br, err, sizeof err);
	if (rc == 0) {
		request_free(&br);
		ck_abort_msg("request_parse(%s) succeeded, expected an error", data);
	}
	ck_assert_int_eq(rc, -1);
	/* nothing is left behind after an error */
	ck_assert_uint_eq(br.n, 0);
	ck_assert_ptr_null(br.items);
	return err;
}

static const char *parse_err(const char *data)
{
	return parse_err_lim(data, strlen(data), &lim);
}

static void expect_err(const char *data, const char *msg)
{
	ck_assert_str_eq(parse_err(data), msg);
}

/* Value of header name (exact spelling) of it, NULL if absent. */
static const char *hdr(const struct request_item *it, const char *name)
{
	size_t i;

	for (i = 0; i < it->nheaders; i++)
		if (strcmp(it->headers[i].name, name) == 0)
			return it->headers[i].value;
	return NULL;
}

/* --- short form ------------------------------------------------------- */

START_TEST(test_short_form_fields)
{
	struct batch_request br;
	const struct request_item *it;

	parse_ok("[\"http://Example.COM\", \"https://api.example.com:8443/a/b?x=1&y=%20\","
	         " \"http://h.example:80/p\", \"HTTPS://H.example:443\"]", &br);
	ck_assert_uint_eq(br.n, 4);
	ck_assert_int_eq(br.mode, BATCH_MODE_ALL);
	ck_assert_int_eq(br.timeout_ms, -1);
	ck_assert_int_eq(br.max_concurrency, -1);

	it = &br.items[0];
	ck_assert_str_eq(it->url, "http://Example.COM");
	ck_assert(!it->tls);
	ck_assert_str_eq(it->host, "example.com");
	ck_assert_int_eq(it->port, 80);
	ck_assert_str_eq(it->target, "/");
	ck_assert_str_eq(it->upstream_key, "http://example.com:80");
	ck_assert_str_eq(it->host_header, "example.com");
	ck_assert_int_eq(it->method, REQUEST_METHOD_GET);
	ck_assert_ptr_null(it->id_json);
	ck_assert_uint_eq(it->nheaders, 0);
	ck_assert_ptr_null(it->body);
	ck_assert_uint_eq(it->body_len, 0);
	ck_assert_int_eq(it->timeout_ms, -1);

	it = &br.items[1];
	ck_assert_str_eq(it->url, "https://api.example.com:8443/a/b?x=1&y=%20");
	ck_assert(it->tls);
	ck_assert_str_eq(it->host, "api.example.com");
	ck_assert_int_eq(it->port, 8443);
	ck_assert_str_eq(it->target, "/a/b?x=1&y=%20");
	ck_assert_str_eq(it->upstream_key, "https://api.example.com:8443");
	ck_assert_str_eq(it->host_header, "api.example.com:8443");

	/* an explicit default port is left out of Host */
	it = &br.items[2];
	ck_assert_int_eq(it->port, 80);
	ck_assert_str_eq(it->target, "/p");
	ck_assert_str_eq(it->upstream_key, "http://h.example:80");
	ck_assert_str_eq(it->host_header, "h.example");

	/* the scheme is case-insensitive; the key uses the lower-case one */
	it = &br.items[3];
	ck_assert(it->tls);
	ck_assert_int_eq(it->port, 443);
	ck_assert_str_eq(it->host, "h.example");
	ck_assert_str_eq(it->upstream_key, "https://h.example:443");
	ck_assert_str_eq(it->host_header, "h.example");
	ck_assert_str_eq(it->target, "/");
	request_free(&br);
	ck_assert_uint_eq(br.n, 0);
	ck_assert_ptr_null(br.items);
}
END_TEST

START_TEST(test_short_form_query_fragment)
{
	struct batch_request br;

	parse_ok("[\"http://h/?q=1\", \"http://h?q=2\", \"http://h/x#frag\", "
	         "\"https://h:80/\", \"http://h:443/\"]", &br);
	ck_assert_uint_eq(br.n, 5);
	ck_assert_str_eq(br.items[0].target, "/?q=1");
	ck_assert_str_eq(br.items[1].target, "/?q=2");
	ck_assert_str_eq(br.items[2].target, "/x");          /* never sent */
	/* the other scheme's default port is not a default */
	ck_assert_str_eq(br.items[3].upstream_key, "https://h:80");
	ck_assert_str_eq(br.items[3].host_header, "h:80");
	ck_assert_str_eq(br.items[4].upstream_key, "http://h:443");
	ck_assert_str_eq(br.items[4].host_header, "h:443");
	request_free(&br);
}
END_TEST

START_TEST(test_short_form_ipv6)
{
	struct batch_request br;
	const struct request_item *it;

	parse_ok("[\"http://[::1]:8080/x\", \"https://[2001:DB8::1]/\", "
	         "\"http://127.0.0.1:9/\"]", &br);
	ck_assert_uint_eq(br.n, 3);
	it = &br.items[0];
	ck_assert_str_eq(it->host, "::1");
	ck_assert_int_eq(it->port, 8080);
	ck_assert_str_eq(it->target, "/x");
	ck_assert_str_eq(it->upstream_key, "http://[::1]:8080");
	ck_assert_str_eq(it->host_header, "[::1]:8080");
	it = &br.items[1];
	ck_assert_str_eq(it->host, "2001:db8::1");
	ck_assert_int_eq(it->port, 443);
	ck_assert_str_eq(it->upstream_key, "https://[2001:db8::1]:443");
	ck_assert_str_eq(it->host_header, "[2001:db8::1]");
	it = &br.items[2];
	ck_assert_str_eq(it->host, "127.0.0.1");
	ck_assert_str_eq(it->upstream_key, "http://127.0.0.1:9");
	ck_assert_str_eq(it->host_header, "127.0.0.1:9");
	request_free(&br);
}
END_TEST

START_TEST(test_empty_array)
{
	struct batch_request br;

	parse_ok("[]", &br);
	ck_assert_uint_eq(br.n, 0);
	request_free(&br);
	parse_ok(" [ ] \n", &br);
	ck_assert_uint_eq(br.n, 0);
	request_free(&br);
	parse_ok("{\"requests\": []}", &br);
	ck_assert_uint_eq(br.n, 0);
	request_free(&br);
}
END_TEST

START_TEST(test_invalid_json)
{
	const char *e;

	e = parse_err("[\"http://h/\",");
	ck_assert_msg(strncmp(e, "invalid JSON at line 1, column ", 31) == 0, "got: %s", e);
	e = parse_err("");
	ck_assert_msg(strncmp(e, "invalid JSON at line 1", 22) == 0, "got: %s", e);
	e = parse_err("[\"http://h/\"]\n[\"x\"]");
	ck_assert_msg(strncmp(e, "invalid JSON at line 2", 22) == 0, "got: %s", e);
	e = parse_err("[\"http://h/\" \"http://i/\"]");
	ck_assert_msg(strncmp(e, "invalid JSON at line 1, column ", 31) == 0, "got: %s", e);
	e = parse_err("[\"http://h/\",");
	ck_assert_msg(strncmp(e, "invalid JSON at line 1, column 13: ", 35) == 0, "got: %s", e);
	/* trailing bytes: not a prefix of a valid document */
	e = parse_err_lim("[]\0[", 4, &lim);
	ck_assert_msg(strncmp(e, "invalid JSON at line 1", 22) == 0, "got: %s", e);
}
END_TEST

START_TEST(test_top_level_not_array_or_object)
{
	const char *msg = "the batch must be a JSON array of URLs "
	                  "or an object with \"requests\"";

	expect_err("42", msg);
	expect_err("\"http://example.com/\"", msg);
	expect_err("null", msg);
	expect_err("true", msg);
}
END_TEST

START_TEST(test_short_form_element_errors)
{
	expect_err("[1]", "[0]: must be a URL string");
	expect_err("[\"http://a/\", {\"url\": \"http://b/\"}]", "[1]: must be a URL string");
	expect_err("[\"http://a/\", null]", "[1]: must be a URL string");
	expect_err("[[\"http://a/\"]]", "[0]: must be a URL string");
	expect_err("[\"http://a/\\u0000\"]", "[0]: must be a URL string");
	expect_err("[\"http://a/\", \"http://b/c d\"]", "[1]: cannot parse URL \"http://b/c d\"");
	expect_err("[\"http://h:99999/\"]", "[0]: cannot parse URL \"http://h:99999/\"");
	expect_err("[\"http://[::1/\"]", "[0]: cannot parse URL \"http://[::1/\"");
	expect_err("[\"/relative/path\"]",
	           "[0]: not an absolute URL \"/relative/path\" (want http:// or https://)");
	expect_err("[\"example.com/x\"]",
	           "[0]: not an absolute URL \"example.com/x\" (want http:// or https://)");
	expect_err("[\"//example.com/x\"]",
	           "[0]: not an absolute URL \"//example.com/x\" (want http:// or https://)");
	expect_err("[\"http://a/\", \"http://b/\", \"http://c/\", \"ftp://d/x\"]",
	           "[3]: unsupported scheme \"ftp\"");
	expect_err("[\"file:///etc/passwd\"]", "[0]: unsupported scheme \"file\"");
	expect_err("[\"http:///x\"]", "[0]: URL has no host \"http:///x\"");
	expect_err("[\"http:/x\"]", "[0]: URL has no host \"http:/x\"");
	expect_err("[\"https://user:pw@h/\"]",
	           "[0]: credentials in the URL are not supported; send an Authorization header");
	expect_err("[\"http://h:0/\"]", "[0]: port 0 in \"http://h:0/\"");
}
END_TEST

/* CR/LF cannot reach the request line through the URL. */
START_TEST(test_url_crlf_rejected)
{
	expect_err("[\"http://h/a\\r\\nX-Evil: 1\"]",
	           "[0]: cannot parse URL \"http://h/a\r\nX-Evil: 1\"");
	expect_err("[\"http://h/a\\tb\"]", "[0]: cannot parse URL \"http://h/a\tb\"");
}
END_TEST

START_TEST(test_url_too_long)
{
	size_t n = 9000;
	char *doc = malloc(n + 16);
	char *p;

	ck_assert_ptr_nonnull(doc);
	p = doc + sprintf(doc, "[\"http://h/");
	memset(p, 'a', n - 10);
	strcpy(p + n - 10, "\"]");
	expect_err(doc, "[0]: URL longer than 8192 bytes");
	free(doc);
}
END_TEST

START_TEST(test_max_batch_size)
{
	const struct request_limits two = { .max_batch_size = 2 };
	struct batch_request br;
	char err[256];
	const char *e;

	ck_assert_int_eq(request_parse("[\"http://a/\",\"http://b/\"]", 25, &two, &br,
	                               err, sizeof err), 0);
	ck_assert_uint_eq(br.n, 2);
	request_free(&br);
	e = parse_err_lim("[\"http://a/\",\"http://b/\",\"http://c/\"]", 37, &two);
	ck_assert_str_eq(e, "batch: too many requests: 3 (max_batch_size is 2)");
	ck_assert_ptr_nonnull(strstr(e, "max_batch_size"));
	e = parse_err_lim("{\"requests\":[\"http://a/\",\"http://b/\",\"http://c/\"]}", 50, &two);
	ck_assert_str_eq(e, "requests: too many requests: 3 (max_batch_size is 2)");
}
END_TEST

/* A streamed batch's limit names its own key. */
START_TEST(test_max_stream_batch_size)
{
	const struct request_limits two = { .max_batch_size = 2,
	                                    .batch_size_key = "max_stream_batch_size" };
	const char *e;

	e = parse_err_lim("[\"http://a/\",\"http://b/\",\"http://c/\"]", 37, &two);
	ck_assert_str_eq(e, "batch: too many requests: 3 (max_stream_batch_size is 2)");
}
END_TEST

START_TEST(test_progress_ms)
{
	struct batch_request br;

	parse_ok("[\"http://a/\"]", &br);
	ck_assert_int_eq(br.progress_ms, -1);
	request_free(&br);
	parse_ok("{\"requests\": [], \"progress_ms\": 10}", &br);
	ck_assert_int_eq(br.progress_ms, 10);
	request_free(&br);
	parse_ok("{\"requests\": [], \"progress_ms\": 3600000}", &br);
	ck_assert_int_eq(br.progress_ms, 3600000);
	request_free(&br);
	expect_err("{\"requests\": [], \"progress_ms\": 9}",
	           "progress_ms: 9 out of range 10..3600000");
	expect_err("{\"requests\": [], \"progress_ms\": 3600001}",
	           "progress_ms: 3600001 out of range 10..3600000");
	expect_err("{\"requests\": [], \"progress_ms\": 100.0}", "progress_ms: must be an integer");
	expect_err("{\"requests\": [], \"progress_ms\": \"100\"}",
	           "progress_ms: must be an integer");
	expect_err("{\"requests\": [], \"progress_ms\": null}", "progress_ms: must be an integer");
}
END_TEST

START_TEST(test_accepts)
{
	static const char *const yes[] = {
		"application/x-ndjson", "Application/X-NDJSON", "application/json, application/x-ndjson",
		" application/x-ndjson ;q=0.5", "text/plain,application/x-ndjson;charset=utf-8",
		"application/x-ndjson;q=0.001", "application/x-ndjson; Q=1", "a/b,,application/x-ndjson",
	};
	static const char *const no[] = {
		"", "*/*", "application/*", "application/json", "application/x-ndjsonx",
		"application/x-ndjso", "application/x-ndjson;q=0", "application/x-ndjson; q=0.000",
		"application/x-ndjson;q=0.", "x application/x-ndjson", "application/x-ndjson x",
	};
	size_t i;

	for (i = 0; i < sizeof yes / sizeof *yes; i++)
		ck_assert_msg(httptoken_accepts(yes[i], "application/x-ndjson"), "%s", yes[i]);
	for (i = 0; i < sizeof no / sizeof *no; i++)
		ck_assert_msg(!httptoken_accepts(no[i], "application/x-ndjson"), "%s", no[i]);
	ck_assert(!httptoken_accepts(NULL, "application/x-ndjson"));
}
END_TEST

/* The error names the first bad element; the good ones before it are freed. */
START_TEST(test_error_after_good_items)
{
	expect_err("[\"http://a/\", \"https://b:8443/x?y\", \"http://[::1]/\", \"gopher://c/\"]",
	           "[3]: unsupported scheme \"gopher\"");
	expect_err("{\"headers\": {\"X-A\": \"1\"}, \"requests\": ["
	           "{\"url\": \"http://a/\", \"json\": {\"k\": [1]}, \"id\": \"t\"},"
	           "\"http://b/\", {\"url\": \"http://c/\", \"method\": \"BREW\"}]}",
	           "requests[2].method: unsupported method \"BREW\" "
	           "(GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)");
}
END_TEST

/* --- long form --------------------------------------------------------- */

START_TEST(test_long_form_defaults)
{
	struct batch_request br;

	parse_ok("{\"requests\": [\"http://a/\", {\"url\": \"https://b/x\"}]}", &br);
	ck_assert_uint_eq(br.n, 2);
	ck_assert_int_eq(br.mode, BATCH_MODE_ALL);
	ck_assert_int_eq(br.timeout_ms, -1);
	ck_assert_int_eq(br.max_concurrency, -1);
	ck_assert_str_eq(br.items[0].url, "http://a/");
	ck_assert_str_eq(br.items[0].upstream_key, "http://a:80");
	ck_assert_int_eq(br.items[0].method, REQUEST_METHOD_GET);
	ck_assert_int_eq(br.items[0].timeout_ms, -1);
	ck_assert_str_eq(br.items[1].url, "https://b/x");
	ck_assert_str_eq(br.items[1].upstream_key, "https://b:443");
	ck_assert_str_eq(br.items[1].target, "/x");
	ck_assert_int_eq(br.items[1].method, REQUEST_METHOD_GET);
	ck_assert_int_eq(br.items[1].timeout_ms, -1);
	ck_assert_ptr_null(br.items[1].body);
	ck_assert_ptr_null(br.items[1].id_json);
	ck_assert_uint_eq(br.items[1].nheaders, 0);
	request_free(&br);
}
END_TEST

START_TEST(test_long_form_batch_fields)
{
	struct batch_request br;

	parse_ok("{\"requests\": [\"http://a/\"], \"mode\": \"settled\", "
	         "\"timeout_ms\": 30000, \"max_concurrency\": 5}", &br);
	ck_assert_int_eq(br.mode, BATCH_MODE_SETTLED);
	ck_assert_int_eq(br.timeout_ms, 30000);
	ck_assert_int_eq(br.max_concurrency, 5);
	request_free(&br);
	parse_ok("{\"mode\": \"all\", \"requests\": [], \"timeout_ms\": 86400000, "
	         "\"max_concurrency\": 100000}", &br);
	ck_assert_int_eq(br.mode, BATCH_MODE_ALL);
	ck_assert_int_eq(br.timeout_ms, 86400000);
	ck_assert_int_eq(br.max_concurrency, 100000);
	request_free(&br);
	parse_ok("{\"requests\": [], \"timeout_ms\": 1, \"max_concurrency\": 1}", &br);
	ck_assert_int_eq(br.timeout_ms, 1);
	ck_assert_int_eq(br.max_concurrency, 1);
	request_free(&br);
}
END_TEST

START_TEST(test_long_form_batch_errors)
{
	expect_err("{}", "requests: missing (the list of URLs or request objects)");
	expect_err("{\"mode\": \"all\"}",
	           "requests: missing (the list of URLs or request objects)");
	expect_err("{\"requests\": \"http://a/\"}", "requests: must be an array");
	expect_err("{\"requests\": {}}", "requests: must be an array");
	expect_err("{\"requests\": [], \"extra\": 1}", "unknown key \"extra\"");
	expect_err("{\"requests\": [], \"Mode\": \"all\"}", "unknown key \"Mode\"");
	expect_err("{\"requests\": [], \"mode\": \"race\"}", "mode: must be \"all\" or \"settled\"");
	expect_err("{\"requests\": [], \"mode\": \"ALL\"}", "mode: must be \"all\" or \"settled\"");
	expect_err("{\"requests\": [], \"mode\": 1}", "mode: must be \"all\" or \"settled\"");
	expect_err("{\"requests\": [], \"timeout_ms\": 0}", "timeout_ms: 0 out of range 1..86400000");
	expect_err("{\"requests\": [], \"timeout_ms\": -5}", "timeout_ms: -5 out of range 1..86400000");
	expect_err("{\"requests\": [], \"timeout_ms\": 86400001}",
	           "timeout_ms: 86400001 out of range 1..86400000");
	expect_err("{\"requests\": [], \"timeout_ms\": 1.5}", "timeout_ms: must be an integer");
	expect_err("{\"requests\": [], \"timeout_ms\": \"100\"}", "timeout_ms: must be an integer");
	expect_err("{\"requests\": [], \"max_concurrency\": 0}",
	           "max_concurrency: 0 out of range 1..100000");
	expect_err("{\"requests\": [], \"max_concurrency\": 100001}",
	           "max_concurrency: 100001 out of range 1..100000");
	expect_err("{\"requests\": [], \"max_concurrency\": 2.0}",
	           "max_concurrency: must be an integer");
	expect_err("{\"requests\": [], \"headers\": [\"X-A: 1\"]}",
	           "headers: must be an object of strings");
	expect_err("{\"requests\": [], \"headers\": {\"X-A\": 1}}",
	           "headers.X-A: header value must be a string");
	expect_err("{\"requests\": [], \"headers\": {\"X-A\": \"a\\nb\"}}",
	           "headers.X-A: CR, LF or NUL in header value");
	expect_err("{\"requests\": [], \"headers\": {\"Connection\": \"close\"}}",
	           "headers.Connection: header is set by fanoutd");
}
END_TEST

START_TEST(test_method)
{
	struct batch_request br;

	parse_ok("{\"requests\": ["
	         "{\"url\": \"http://a/\", \"method\": \"get\"},"
	         "{\"url\": \"http://a/\", \"method\": \"Head\"},"
	         "{\"url\": \"http://a/\", \"method\": \"post\"},"
	         "{\"url\": \"http://a/\", \"method\": \"PUT\"},"
	         "{\"url\": \"http://a/\", \"method\": \"delete\"},"
	         "{\"url\": \"http://a/\", \"method\": \"options\"},"
	         "{\"url\": \"http://a/\", \"method\": \"pAtCh\"}]}", &br);
	ck_assert_uint_eq(br.n, 7);
	ck_assert_int_eq(br.items[0].method, REQUEST_METHOD_GET);
	ck_assert_int_eq(br.items[1].method, REQUEST_METHOD_HEAD);
	ck_assert_int_eq(br.items[2].method, REQUEST_METHOD_POST);
	ck_assert_int_eq(br.items[3].method, REQUEST_METHOD_PUT);
	ck_assert_int_eq(br.items[4].method, REQUEST_METHOD_DELETE);
	ck_assert_int_eq(br.items[5].method, REQUEST_METHOD_OPTIONS);
	ck_assert_int_eq(br.items[6].method, REQUEST_METHOD_PATCH);
	ck_assert_str_eq(request_method_name(br.items[1].method), "HEAD");
	ck_assert_str_eq(request_method_name(br.items[6].method), "PATCH");
	ck_assert_str_eq(request_method_name(REQUEST_METHOD_GET), "GET");
	ck_assert_str_eq(request_method_name(REQUEST_METHOD_POST), "POST");
	ck_assert_str_eq(request_method_name(REQUEST_METHOD_PUT), "PUT");
	ck_assert_str_eq(request_method_name(REQUEST_METHOD_DELETE), "DELETE");
	ck_assert_str_eq(request_method_name(REQUEST_METHOD_OPTIONS), "OPTIONS");
	request_free(&br);

	expect_err("{\"requests\": [\"http://a/\", {\"url\": \"http://a/\", \"method\": \"TRACE\"}]}",
	           "requests[1].method: unsupported method \"TRACE\" "
	           "(GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"method\": \"CONNECT\"}]}",
	           "requests[0].method: unsupported method \"CONNECT\" "
	           "(GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"method\": \"\"}]}",
	           "requests[0].method: unsupported method \"\" "
	           "(GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"method\": 1}]}",
	           "requests[0].method: must be a string");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"method\": \"GET\\u0000\"}]}",
	           "requests[0].method: must be a string");
}
END_TEST

START_TEST(test_headers_merged)
{
	struct batch_request br;
	const struct request_item *it;

	parse_ok("{\"headers\": {\"Authorization\": \"Bearer T\", \"X-Batch\": \"b\"},"
	         " \"requests\": [\"http://a/\","
	         " {\"url\": \"http://b/\", \"headers\": {\"authorization\": \"Bearer U\","
	         "  \"Accept\": \"text/plain\"}},"
	         " {\"url\": \"http://c/\", \"headers\": {}},"
	         " {\"url\": \"http://d/\"}]}", &br);
	ck_assert_uint_eq(br.n, 4);

	it = &br.items[0];     /* plain string element: batch headers only */
	ck_assert_uint_eq(it->nheaders, 2);
	ck_assert_str_eq(it->headers[0].name, "Authorization");
	ck_assert_str_eq(it->headers[0].value, "Bearer T");
	ck_assert_str_eq(it->headers[1].name, "X-Batch");
	ck_assert_str_eq(it->headers[1].value, "b");

	it = &br.items[1];     /* own headers first, override case-insensitive */
	ck_assert_uint_eq(it->nheaders, 3);
	ck_assert_str_eq(it->headers[0].name, "authorization");
	ck_assert_str_eq(it->headers[0].value, "Bearer U");
	ck_assert_str_eq(it->headers[1].name, "Accept");
	ck_assert_str_eq(it->headers[1].value, "text/plain");
	ck_assert_str_eq(it->headers[2].name, "X-Batch");
	ck_assert_str_eq(it->headers[2].value, "b");
	ck_assert_ptr_null(hdr(it, "Authorization"));

	ck_assert_uint_eq(br.items[2].nheaders, 2);
	ck_assert_str_eq(hdr(&br.items[2], "Authorization"), "Bearer T");
	ck_assert_uint_eq(br.items[3].nheaders, 2);
	ck_assert_str_eq(hdr(&br.items[3], "X-Batch"), "b");
	request_free(&br);
}
END_TEST

START_TEST(test_header_values_allowed)
{
	struct batch_request br;

	parse_ok("{\"requests\": [{\"url\": \"http://a/\", \"headers\": {"
	         "\"X-Empty\": \"\", \"X-Tab\": \"a\\tb\", \"X-Utf8\": \"caf\\u00e9\","
	         " \"!#$%&'*+-.^_`|~09azAZ\": \"v\"}}]}", &br);
	ck_assert_uint_eq(br.items[0].nheaders, 4);
	ck_assert_str_eq(hdr(&br.items[0], "X-Empty"), "");
	ck_assert_str_eq(hdr(&br.items[0], "X-Tab"), "a\tb");
	ck_assert_str_eq(hdr(&br.items[0], "X-Utf8"), "caf\xc3\xa9");
	ck_assert_str_eq(hdr(&br.items[0], "!#$%&'*+-.^_`|~09azAZ"), "v");
	request_free(&br);
}
END_TEST

START_TEST(test_reserved_headers)
{
	static const char *const names[] = {
		"Content-Length", "content-length", "Transfer-Encoding", "Connection",
		"Keep-Alive", "Upgrade", "TE", "Trailer", "Proxy-Connection",
	};
	char doc[256], msg[256];
	size_t i;

	for (i = 0; i < sizeof names / sizeof *names; i++) {
		snprintf(doc, sizeof doc, "{\"requests\": [\"http://a/\", {\"url\": \"http://b/\","
		         " \"headers\": {\"X-Ok\": \"1\", \"%s\": \"5\"}}]}", names[i]);
		snprintf(msg, sizeof msg, "requests[1].headers.%s: header is set by fanoutd",
		         names[i]);
		expect_err(doc, msg);
		snprintf(doc, sizeof doc, "{\"headers\": {\"%s\": \"5\"}, \"requests\": []}",
		         names[i]);
		snprintf(msg, sizeof msg, "headers.%s: header is set by fanoutd", names[i]);
		expect_err(doc, msg);
	}
}
END_TEST

/* Expect: 100-continue would make the upstream wait for a body that waits
 * for the upstream's interim answer: refused, per request or per batch. */
START_TEST(test_expect_header)
{
	expect_err("{\"requests\": [\"http://a/\", {\"url\": \"http://b/\", \"method\": \"POST\","
	           " \"body\": \"x\", \"headers\": {\"Expect\": \"100-continue\"}}]}",
	           "requests[1].headers.Expect: header is not supported "
	           "(fanoutd sends the body at once)");
	expect_err("{\"headers\": {\"eXpEcT\": \"100-continue\"}, \"requests\": [\"http://a/\"]}",
	           "headers.eXpEcT: header is not supported (fanoutd sends the body at once)");
}
END_TEST

START_TEST(test_header_errors)
{
	expect_err("{\"requests\": [\"http://a/\", {\"url\": \"http://b/\","
	           " \"headers\": {\"X-A\": \"1\\r\\nX-B: 2\"}}]}",
	           "requests[1].headers.X-A: CR, LF or NUL in header value");
	expect_err("{\"requests\": [{\"url\": \"http://b/\", \"headers\": {\"X-A\": \"1\\r\"}}]}",
	           "requests[0].headers.X-A: CR, LF or NUL in header value");
	expect_err("{\"requests\": [{\"url\": \"http://b/\", \"headers\": {\"X-A\": \"\\n\"}}]}",
	           "requests[0].headers.X-A: CR, LF or NUL in header value");
	expect_err("{\"requests\": [{\"url\": \"http://b/\", \"headers\": {\"X-A\": \"a\\u0000b\"}}]}",
	           "requests[0].headers.X-A: CR, LF or NUL in header value");
	expect_err("{\"requests\": [{\"url\": \"http://b/\", \"headers\": {\"X A\": \"1\"}}]}",
	           "requests[0].headers.X A: invalid character in header name");
	expect_err("{\"requests\": [{\"url\": \"http://b/\", \"headers\": {\"X:A\": \"1\"}}]}",
	           "requests[0].headers.X:A: invalid character in header name");
	expect_err("{\"requests\": [{\"url\": \"http://b/\", \"headers\": {\"X-A\\r\\nY\": \"1\"}}]}",
	           "requests[0].headers.X-A\r\nY: invalid character in header name");
	expect_err("{\"requests\": [{\"url\": \"http://b/\", \"headers\": {\"caf\\u00e9\": \"1\"}}]}",
	           "requests[0].headers.caf\xc3\xa9: invalid character in header name");
	expect_err("{\"requests\": [{\"url\": \"http://b/\", \"headers\": {\"\": \"1\"}}]}",
	           "requests[0].headers: empty header name");
	expect_err("{\"requests\": [{\"url\": \"http://b/\", \"headers\": {\"X-A\": 1}}]}",
	           "requests[0].headers.X-A: header value must be a string");
	expect_err("{\"requests\": [{\"url\": \"http://b/\", \"headers\": {\"X-A\": null}}]}",
	           "requests[0].headers.X-A: header value must be a string");
	expect_err("{\"requests\": [{\"url\": \"http://b/\", \"headers\": {\"X-A\": [\"1\"]}}]}",
	           "requests[0].headers.X-A: header value must be a string");
	expect_err("{\"requests\": [{\"url\": \"http://b/\", \"headers\": \"X-A: 1\"}]}",
	           "requests[0].headers: must be an object of strings");
	/* batch headers are checked even when the list is empty */
	expect_err("{\"requests\": [], \"headers\": {\"X-A\": \"\\u0000\"}}",
	           "headers.X-A: CR, LF or NUL in header value");
}
END_TEST

START_TEST(test_body_string)
{
	struct batch_request br;
	const struct request_item *it;

	parse_ok("{\"requests\": [{\"url\": \"http://a/\", \"method\": \"POST\","
	         " \"body\": \"a\\u0000b\\n\\u00e9\"},"
	         " {\"url\": \"http://a/\", \"method\": \"PUT\", \"body\": \"\"}]}", &br);
	it = &br.items[0];
	ck_assert_ptr_nonnull(it->body);
	ck_assert_uint_eq(it->body_len, 6);
	ck_assert_mem_eq(it->body, "a\0b\n\xc3\xa9", 6);
	ck_assert_uint_eq(it->nheaders, 0);       /* no Content-Type invented */
	it = &br.items[1];
	ck_assert_ptr_nonnull(it->body);           /* empty body, not no body */
	ck_assert_uint_eq(it->body_len, 0);
	ck_assert_str_eq(it->body, "");
	request_free(&br);
}
END_TEST

START_TEST(test_body_json)
{
	struct batch_request br;
	const struct request_item *it;

	parse_ok("{\"requests\": ["
	         " {\"url\": \"http://a/\", \"method\": \"POST\","
	         "  \"json\": {\"name\" : \"Ada\",  \"n\": [1, 2, 3], \"t\": true, \"z\": null}},"
	         " {\"url\": \"http://a/\", \"method\": \"POST\", \"json\": \"x\","
	         "  \"headers\": {\"content-type\": \"application/vnd.x+json\"}},"
	         " {\"url\": \"http://a/\", \"method\": \"POST\", \"json\": 42},"
	         " {\"url\": \"http://a/\", \"json\": null}]}", &br);
	it = &br.items[0];
	ck_assert_str_eq(it->body, "{\"name\":\"Ada\",\"n\":[1,2,3],\"t\":true,\"z\":null}");
	ck_assert_uint_eq(it->body_len, strlen(it->body));
	ck_assert_uint_eq(it->nheaders, 1);
	ck_assert_str_eq(it->headers[0].name, "Content-Type");
	ck_assert_str_eq(it->headers[0].value, "application/json");
	it = &br.items[1];
	ck_assert_str_eq(it->body, "\"x\"");
	ck_assert_uint_eq(it->body_len, 3);
	ck_assert_uint_eq(it->nheaders, 1);
	ck_assert_str_eq(it->headers[0].name, "content-type");
	ck_assert_str_eq(it->headers[0].value, "application/vnd.x+json");
	it = &br.items[2];
	ck_assert_str_eq(it->body, "42");
	ck_assert_uint_eq(it->body_len, 2);
	it = &br.items[3];
	ck_assert_str_eq(it->body, "null");
	ck_assert_str_eq(hdr(it, "Content-Type"), "application/json");
	request_free(&br);

	/* a batch Content-Type counts as given */
	parse_ok("{\"headers\": {\"Content-Type\": \"text/x-json\"}, \"requests\": ["
	         " {\"url\": \"http://a/\", \"json\": [\"\\u00e9\", \"\\n\"]}]}", &br);
	it = &br.items[0];
	ck_assert_str_eq(it->body, "[\"\xc3\xa9\",\"\\n\"]");
	ck_assert_uint_eq(it->nheaders, 1);
	ck_assert_str_eq(hdr(it, "Content-Type"), "text/x-json");
	request_free(&br);
}
END_TEST

/* A JSON body must reach the upstream with the numbers the client wrote:
 * 1.1 must not turn into 1.1000000000000001 (jansson's %.17g), nor 1e2
 * into 100.0. */
START_TEST(test_body_json_real_spelling)
{
	struct batch_request br;
	char body[256];

	parse_ok("{\"requests\": [{\"url\": \"http://a/\", \"method\": \"POST\","
	         " \"json\": {\"price\": 1.1, \"r\": [0.1, 2.5, 1e-3]}}]}", &br);
	snprintf(body, sizeof body, "%s", br.items[0].body);
	request_free(&br);     /* before asserting: a failure must not leak */
	ck_assert_str_eq(body, "{\"price\":1.1,\"r\":[0.1,2.5,1e-3]}");
}
END_TEST

/* Every number keeps its text, wherever it sits: in the body, in the id,
 * before and after other numbers of the batch (timeout_ms, other items),
 * in keys' insertion order, not jansson's hash order. */
START_TEST(test_numbers_keep_spelling)
{
	struct batch_request br;
	char body0[256], body2[256], id0[64], id1[64], id2[64];

	parse_ok("{\"timeout_ms\": 5000, \"requests\": ["
	         " {\"id\": 0.1, \"url\": \"http://a/\", \"method\": \"POST\", \"timeout_ms\": 100,"
	         "  \"json\": {\"big\": 1e2, \"z\": -0, \"y\": [1E+3, 0.10000, 1.0, -0.0, 7],"
	         "   \"x\": {\"n\": 12345678901234567890e-10, \"m\": 9223372036854775807}}},"
	         " {\"url\": \"http://a/\", \"id\": 1e3},"
	         " {\"url\": \"http://a/\", \"json\": 2.50, \"id\": -12}],"
	         " \"max_concurrency\": 3}", &br);
	snprintf(body0, sizeof body0, "%s", br.items[0].body);
	snprintf(body2, sizeof body2, "%s", br.items[2].body);
	snprintf(id0, sizeof id0, "%s", br.items[0].id_json);
	snprintf(id1, sizeof id1, "%s", br.items[1].id_json);
	snprintf(id2, sizeof id2, "%s", br.items[2].id_json);
	ck_assert_int_eq(br.timeout_ms, 5000);
	ck_assert_int_eq(br.items[0].timeout_ms, 100);
	ck_assert_int_eq(br.max_concurrency, 3);
	request_free(&br);
	ck_assert_str_eq(body0, "{\"big\":1e2,\"z\":-0,\"y\":[1E+3,0.10000,1.0,-0.0,7],"
	                 "\"x\":{\"n\":12345678901234567890e-10,\"m\":9223372036854775807}}");
	ck_assert_str_eq(body2, "2.50");
	ck_assert_str_eq(id0, "0.1");
	ck_assert_str_eq(id1, "1e3");
	ck_assert_str_eq(id2, "-12");

	/* a number as the whole body, and numbers next to strings that look
	 * like them */
	parse_ok("{\"requests\": [{\"url\": \"http://a/\", \"json\": [\"1.0\", 1.50, \"2e1\", 2E1]}]}",
	         &br);
	snprintf(body0, sizeof body0, "%s", br.items[0].body);
	request_free(&br);
	ck_assert_str_eq(body0, "[\"1.0\",1.50,\"2e1\",2E1]");
}
END_TEST

/* Duplicate keys are refused: the client and fanoutd (jansson keeps the
 * last) might not agree on which value counts. */
START_TEST(test_duplicate_keys)
{
	const char *e;

	e = parse_err("{\"requests\": [{\"url\": \"http://a/\", \"json\": {\"a\": 1, \"a\": 2}}]}");
	ck_assert_str_eq(e, "invalid JSON at line 1, column 55: duplicate object key near '\"a\"'");
	e = parse_err("{\"requests\": [\"http://a/\"], \"requests\": [\"http://evil/\"]}");
	ck_assert_str_eq(e, "invalid JSON at line 1, column 38: duplicate object key near "
	                 "'\"requests\"'");
	e = parse_err("{\"requests\": [{\"url\": \"http://a/\", \"url\": \"http://b/\"}]}");
	ck_assert_str_eq(e, "invalid JSON at line 1, column 40: duplicate object key near '\"url\"'");
}
END_TEST

/* jansson keeps integers in 64 bits: a bigger one is refused with a clear
 * message (documented in fanoutd(8)) rather than silently rounded. */
START_TEST(test_body_json_big_integer)
{
	struct batch_request br;
	char err[512];
	int rc;

	rc = request_parse("{\"requests\": [{\"url\": \"http://a/\", \"method\": \"POST\","
	                   " \"json\": {\"id\": 18446744073709551615}}]}",
	                   strlen("{\"requests\": [{\"url\": \"http://a/\", \"method\": \"POST\","
	                          " \"json\": {\"id\": 18446744073709551615}}]}"),
	                   &lim, &br, err, sizeof err);
	ck_assert_int_eq(rc, -1);
	ck_assert_uint_eq(br.n, 0);
	ck_assert_msg(strstr(err, "too big integer") != NULL, "got: %s", err);
	ck_assert_msg(strncmp(err, "invalid JSON at line 1, column ", 31) == 0, "got: %s", err);
}
END_TEST

START_TEST(test_body_errors)
{
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"body\": \"x\", \"json\": {}}]}",
	           "requests[0]: give either body or json, not both");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"body\": \"x\", \"json\": null}]}",
	           "requests[0]: give either body or json, not both");
	expect_err("{\"requests\": [\"http://a/\", {\"url\": \"http://a/\", \"body\": {\"a\": 1}}]}",
	           "requests[1].body: must be a string (use json for JSON)");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"body\": null}]}",
	           "requests[0].body: must be a string (use json for JSON)");
}
END_TEST

START_TEST(test_item_timeout)
{
	struct batch_request br;

	parse_ok("{\"requests\": [{\"url\": \"http://a/\", \"timeout_ms\": 2000},"
	         " {\"url\": \"http://a/\", \"timeout_ms\": 86400000},"
	         " {\"url\": \"http://a/\", \"timeout_ms\": 1}]}", &br);
	ck_assert_int_eq(br.items[0].timeout_ms, 2000);
	ck_assert_int_eq(br.items[1].timeout_ms, 86400000);
	ck_assert_int_eq(br.items[2].timeout_ms, 1);
	request_free(&br);

	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"timeout_ms\": 0}]}",
	           "requests[0].timeout_ms: 0 out of range 1..86400000");
	expect_err("{\"requests\": [\"http://a/\", {\"url\": \"http://a/\", \"timeout_ms\": -1}]}",
	           "requests[1].timeout_ms: -1 out of range 1..86400000");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"timeout_ms\": 86400001}]}",
	           "requests[0].timeout_ms: 86400001 out of range 1..86400000");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"timeout_ms\": 100.5}]}",
	           "requests[0].timeout_ms: must be an integer");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"timeout_ms\": \"5s\"}]}",
	           "requests[0].timeout_ms: must be an integer");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"timeout_ms\": null}]}",
	           "requests[0].timeout_ms: must be an integer");
}
END_TEST

START_TEST(test_id)
{
	struct batch_request br;

	parse_ok("{\"requests\": [{\"url\": \"http://a/\", \"id\": \"user-1\"},"
	         " {\"url\": \"http://a/\", \"id\": 17},"
	         " {\"url\": \"http://a/\", \"id\": 2.5},"
	         " {\"url\": \"http://a/\"}]}", &br);
	ck_assert_str_eq(br.items[0].id_json, "\"user-1\"");
	ck_assert_str_eq(br.items[1].id_json, "17");
	ck_assert_str_eq(br.items[2].id_json, "2.5");
	ck_assert_ptr_null(br.items[3].id_json);
	request_free(&br);

	/* strings as jansson writes them, escapes and all */
	parse_ok("{\"requests\": [{\"url\": \"http://a/\", \"id\": \"a\\\"b\\u00e9\\n\"}]}", &br);
	ck_assert_str_eq(br.items[0].id_json, "\"a\\\"b\xc3\xa9\\n\"");
	request_free(&br);

	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"id\": {\"k\": 1}}]}",
	           "requests[0].id: must be a string or a number");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"id\": [1]}]}",
	           "requests[0].id: must be a string or a number");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"id\": true}]}",
	           "requests[0].id: must be a string or a number");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"id\": null}]}",
	           "requests[0].id: must be a string or a number");
}
END_TEST

START_TEST(test_item_errors)
{
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"methd\": \"GET\"}]}",
	           "requests[0]: unknown key \"methd\"");
	expect_err("{\"requests\": [\"http://a/\", {\"method\": \"GET\"}]}",
	           "requests[1]: missing url");
	expect_err("{\"requests\": [{}]}", "requests[0]: missing url");
	expect_err("{\"requests\": [{\"url\": 5}]}", "requests[0].url: must be a string");
	expect_err("{\"requests\": [{\"url\": \"http://a/\\u0000\"}]}",
	           "requests[0].url: must be a string");
	expect_err("{\"requests\": [\"http://a/\", \"http://b/\", \"http://c/\","
	           " {\"url\": \"ftp://d/\"}]}",
	           "requests[3].url: unsupported scheme \"ftp\"");
	expect_err("{\"requests\": [{\"url\": \"http://u@a/\"}]}",
	           "requests[0].url: credentials in the URL are not supported; "
	           "send an Authorization header");
	expect_err("{\"requests\": [{\"url\": \"rel/x\"}]}",
	           "requests[0].url: not an absolute URL \"rel/x\" (want http:// or https://)");
	expect_err("{\"requests\": [\"ftp://a/\"]}", "requests[0]: unsupported scheme \"ftp\"");
	expect_err("{\"requests\": [\"http://a:0/\"]}", "requests[0]: port 0 in \"http://a:0/\"");
	expect_err("{\"requests\": [1]}", "requests[0]: must be a URL string or a request object");
	expect_err("{\"requests\": [\"http://a/\", null]}",
	           "requests[1]: must be a URL string or a request object");
	expect_err("{\"requests\": [[\"http://a/\"]]}",
	           "requests[0]: must be a URL string or a request object");
}
END_TEST

/* Element strings in the long form are full requests with the batch
 * headers. */
START_TEST(test_long_form_string_elements)
{
	struct batch_request br;
	const struct request_item *it;

	parse_ok("{\"requests\": [\"https://[::1]:8443/a?b\", \"http://X.example/\"],"
	         " \"headers\": {\"X-T\": \"1\"}}", &br);
	ck_assert_uint_eq(br.n, 2);
	it = &br.items[0];
	ck_assert_str_eq(it->url, "https://[::1]:8443/a?b");
	ck_assert_str_eq(it->host, "::1");
	ck_assert_str_eq(it->upstream_key, "https://[::1]:8443");
	ck_assert_str_eq(it->host_header, "[::1]:8443");
	ck_assert_str_eq(it->target, "/a?b");
	ck_assert_uint_eq(it->nheaders, 1);
	ck_assert_str_eq(it->headers[0].name, "X-T");
	ck_assert_str_eq(it->headers[0].value, "1");
	ck_assert_ptr_null(it->body);
	it = &br.items[1];
	ck_assert_str_eq(it->host, "x.example");
	ck_assert_str_eq(it->host_header, "x.example");
	request_free(&br);
}
END_TEST

START_TEST(test_request_free_twice)
{
	struct batch_request br;

	parse_ok("[\"http://a/\"]", &br);
	request_free(&br);
	request_free(&br);      /* emptied by the first call: harmless */
	ck_assert_uint_eq(br.n, 0);
}
END_TEST

/* Every spelling of an IPv6 address is one upstream (one key, one limit). */
START_TEST(test_ipv6_canonical)
{
	struct batch_request br;

	parse_ok("[\"http://[0:0::1]:8080/a\", \"http://[::1]:8080/b\", "
	         "\"http://[2001:DB8::0001]/\"]", &br);
	ck_assert_str_eq(br.items[0].upstream_key, "http://[::1]:8080");
	ck_assert_str_eq(br.items[1].upstream_key, "http://[::1]:8080");
	ck_assert_str_eq(br.items[0].host, "::1");
	ck_assert_str_eq(br.items[2].upstream_key, "http://[2001:db8::1]:80");
	ck_assert_str_eq(br.items[2].host_header, "[2001:db8::1]");
	request_free(&br);
	expect_err("[\"http://[v1.example.com]/\"]",
	           "[0]: bad IPv6 address in \"http://[v1.example.com]/\"");
}
END_TEST

/* Hosts that resolvers read as different IPv4 addresses: glibc and curl
 * take 0177 as octal, libevent as decimal; refused, naming the element. */
START_TEST(test_ipv4_ambiguous)
{
	static const char *const hosts[] = {
		"0177.0.0.1", "0010.0.0.1", "+127.0.0.1", "127.000.000.001", "0x7f.1",
		"0X7F.0.0.1", "2130706433", "127.1", "1.2.3.4.", "127.0.0.+1", "0x7f000001",
		"999.1.1.1", "1.2.3.04", "0", "1.2.3.4.5", "example.123", "a.0x10",
		"256.0.0.1", "%31%32%37.0.0.1",
	};
	char doc[256], msg[256];
	size_t i;

	for (i = 0; i < sizeof hosts / sizeof *hosts; i++) {
		snprintf(doc, sizeof doc, "[\"http://a/\", \"http://%s:8080/x\"]", hosts[i]);
		snprintf(msg, sizeof msg, "[1]: ambiguous IPv4 address \"%s\": write four "
		         "decimal numbers 0-255 without leading zeros", hosts[i]);
		expect_err(doc, msg);
	}
	expect_err("{\"requests\": [{\"url\": \"https://0177.0.0.1/\"}]}",
	           "requests[0].url: ambiguous IPv4 address \"0177.0.0.1\": write four "
	           "decimal numbers 0-255 without leading zeros");
}
END_TEST

/* Names that only start with digits, or have numbers inside, are names;
 * canonical addresses are addresses. */
START_TEST(test_ipv4_canonical_and_names)
{
	static const char *const hosts[] = {
		"1password.com", "123.example.com", "1e100.net", "0x.example", "127.0.0.1",
		"10.0.0.1", "255.255.255.255", "0.0.0.0", "1.2.3.4a", "localhost", "a1",
		"127.0.0.1.nip.io", "x.y1",
	};
	struct batch_request br;
	char doc[256];
	size_t i;

	for (i = 0; i < sizeof hosts / sizeof *hosts; i++) {
		snprintf(doc, sizeof doc, "[\"http://%s/\"]", hosts[i]);
		parse_ok(doc, &br);
		ck_assert_str_eq(br.items[0].host, hosts[i]);
		request_free(&br);
	}
}
END_TEST

/* --- parse amplification ------------------------------------------------ */

/* What jansson holds at its peak, through json_set_alloc_funcs. */
static size_t j_live, j_peak;

static void *count_malloc(size_t n)
{
	void *p = malloc(n);

	if (p != NULL) {
		j_live += malloc_usable_size(p);
		if (j_live > j_peak)
			j_peak = j_live;
	}
	return p;
}

static void count_free(void *p)
{
	if (p != NULL)
		j_live -= malloc_usable_size(p);
	free(p);
}

/* head, n times unit, then last and tail (malloc'd; *len set). */
static char *repeat(const char *head, const char *unit, size_t n, const char *last,
                    const char *tail, size_t *len)
{
	size_t hl = strlen(head), ul = strlen(unit), ll = strlen(last), tl = strlen(tail);
	char *doc = malloc(hl + ul * n + ll + tl + 1), *p = doc;
	size_t i;

	ck_assert_ptr_nonnull(doc);
	memcpy(p, head, hl);
	p += hl;
	for (i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, last, ll);
	p += ll;
	memcpy(p, tail, tl + 1);
	*len = (size_t)(p - doc) + tl;
	return doc;
}

/* Parse doc (freed here) expecting message msg, with jansson never
 * holding more than max_peak bytes. */
static void expect_cheap_err(char *doc, const size_t *len, const struct request_limits *l,
                             const char *msg, size_t max_peak)
{
	const char *e;

	j_live = j_peak = 0;
	json_set_alloc_funcs(count_malloc, count_free);
	e = parse_err_lim(doc, *len, l);   /* *len: set by repeat() in our argument list */
	json_set_alloc_funcs(malloc, free);
	free(doc);
	ck_assert_str_eq(e, msg);
	ck_assert_msg(j_peak <= max_peak, "jansson peaked at %zu bytes", j_peak);
}

/* An over-long batch is refused from the count, before any tree is built:
 * 4M zeros used to cost 130 MB first. */
START_TEST(test_scan_too_many)
{
	size_t len;

	expect_cheap_err(repeat("[", "0,", 4194303, "0", "]", &len), &len, &lim,
	                 "batch: too many requests: 4194304 (max_batch_size is 100)", 0);
	expect_cheap_err(repeat("[", "[],", 2796201, "[]", "]", &len), &len, &lim,
	                 "batch: too many requests: 2796202 (max_batch_size is 100)", 0);
	expect_cheap_err(repeat(" \n{\"mode\": \"all\", \"requests\": [", "\"http://a/\",", 100,
	                        "\"http://a/\"", "], \"timeout_ms\": 5}", &len), &len, &lim,
	                 "requests: too many requests: 101 (max_batch_size is 100)", 0);
	/* the key as jansson reads it, escapes decoded */
	expect_cheap_err(repeat("{\"requ\\u0065sts\": [", "{\"url\": \"http://a/\", \"id\": [\"]\"]},",
	                        100, "\"http://a/\"", "]}", &len), &len, &lim,
	                 "requests: too many requests: 101 (max_batch_size is 100)", 0);
	/* other arrays do not count, nor brackets in strings */
	expect_cheap_err(repeat("{\"headers\": {\"X-A\": \"[[[,,,\"}, \"x\": [", "1,", 200, "1",
	                        "], \"requests\": [[1,2,3]]}", &len), &len, &lim,
	                 "unknown key \"x\"", 1u << 20);
}
END_TEST

/* A body that is not too long but whose tree would cost far more than its
 * size is refused before it is built; jansson's depth message stays. */
START_TEST(test_scan_too_complex)
{
#define TOO_COMPLEX "JSON too complex: its %zu values would take more than 32 MiB " \
                    "of memory once parsed"
	char want[256], deep[3000];
	size_t len;

	snprintf(want, sizeof want, TOO_COMPLEX, (size_t)2796203);
	expect_cheap_err(repeat("[[", "[],", 2796200, "[]", "]]", &len), &len, &lim, want, 0);
	snprintf(want, sizeof want, TOO_COMPLEX, (size_t)2000004);
	expect_cheap_err(repeat("{\"requests\": [\"http://a/\"], \"x\": [", "{},", 1999999, "{}",
	                        "]}", &len), &len, &lim, want, 0);
	snprintf(want, sizeof want, TOO_COMPLEX, (size_t)3000005);
	expect_cheap_err(repeat("{\"requests\": [{\"url\": \"http://a/\", \"json\": [", "0,",
	                        2999999, "0", "]}]}", &len), &len, &lim, want, 0);
	snprintf(want, sizeof want, TOO_COMPLEX, (size_t)1000003);
	expect_cheap_err(repeat("{\"requests\": [], \"x\": {", "\"k\": \"\",", 999999,
	                        "\"k\": \"\"", "}}", &len), &len, &lim, want, 0);
	/* too deep: jansson says so, having built little */
	expect_cheap_err(repeat("", "[", 100000, "", "", &len), &len, &lim,
	                 "invalid JSON at line 1, column 2049: maximum parsing depth reached "
	                 "near '['", 1u << 20);
	/* what comes before the depth counts */
	memset(deep, '[', sizeof deep - 1);
	deep[sizeof deep - 1] = '\0';
	snprintf(want, sizeof want, TOO_COMPLEX, (size_t)1 + 2000000 + 2047);
	expect_cheap_err(repeat("[", "[],", 2000000, "", deep, &len), &len, &lim, want, 0);
}
END_TEST

/* The budget grows with max_batch_size (512 bytes a request), so an
 * operator who allows big batches can send them. */
START_TEST(test_scan_budget_follows_batch_size)
{
	const struct request_limits big = { .max_batch_size = 100000 };
	size_t len;

	/* 250,000 arrays: about 34 MiB, over 32 MiB but within 48 MiB */
	expect_cheap_err(repeat("{\"requests\": [], \"x\": [", "[],", 249999, "[]", "]}", &len), &len,
	                 &lim, "JSON too complex: its 250003 values would take more than 32 MiB "
	                 "of memory once parsed", 0);
	expect_cheap_err(repeat("{\"requests\": [], \"x\": [", "[],", 249999, "[]", "]}", &len), &len,
	                 &big, "unknown key \"x\"", 64u << 20);
}
END_TEST

/* The cap on header lists counts what a copy costs, not only its bytes:
 * 100 headers of 50 bytes times 1,200 requests take 18 MB, and would pass
 * a cap that counted 6.4 MB of bytes. */
START_TEST(test_header_copies_counted)
{
	const struct request_limits many = { .max_batch_size = 10000 };
	char *doc = malloc(8u << 20), *p = doc;
	size_t i, j;

	ck_assert_ptr_nonnull(doc);
	p += sprintf(p, "{\"requests\": [");
	for (i = 0; i < 1200; i++) {
		p += sprintf(p, "%s{\"url\": \"http://a/\", \"headers\": {", i ? "," : "");
		for (j = 0; j < 100; j++)
			p += sprintf(p, "%s\"h%zu\": \"%050zu\"", j ? "," : "", j, j);
		p += sprintf(p, "}}");
	}
	p += sprintf(p, "]}");
	ck_assert_str_eq(parse_err_lim(doc, (size_t)(p - doc), &many),
	                 "requests: the headers of the requests add up to more than 16 MiB "
	                 "in memory");
	free(doc);
}
END_TEST

/* Batch headers are kept once and shared by every request's list, so a
 * token of 8 KiB for 10,000 requests is 8 KiB, not 80 MB. */
START_TEST(test_batch_headers_shared)
{
	struct batch_request br;
	const struct request_item *it;
	size_t i;

	parse_ok("{\"headers\": {\"Authorization\": \"Bearer t\", \"X-B\": \"b\"}, \"requests\": ["
	         " \"http://a/\", {\"url\": \"http://b/\", \"headers\": {\"x-b\": \"own\"}},"
	         " {\"url\": \"http://c/\", \"json\": 1}]}", &br);
	ck_assert_uint_eq(br.nbatch_headers, 2);
	for (i = 0; i < br.n; i++) {
		it = &br.items[i];
		ck_assert_ptr_eq(hdr(it, "Authorization"), br.batch_headers[0].value);
	}
	it = &br.items[0];
	ck_assert_uint_eq(it->nheaders, 2);
	ck_assert_uint_eq(it->nheaders_owned, 0);
	ck_assert_ptr_eq(it->headers[1].name, br.batch_headers[1].name);
	it = &br.items[1];
	ck_assert_uint_eq(it->nheaders, 2);
	ck_assert_uint_eq(it->nheaders_owned, 1);
	ck_assert_str_eq(it->headers[0].name, "x-b");
	ck_assert_str_eq(it->headers[0].value, "own");
	ck_assert_str_eq(it->headers[1].name, "Authorization");
	it = &br.items[2];
	ck_assert_uint_eq(it->nheaders, 3);
	ck_assert_uint_eq(it->nheaders_owned, 0);
	ck_assert_str_eq(hdr(it, "Content-Type"), "application/json");
	request_free(&br);
	ck_assert_ptr_null(br.batch_headers);
	ck_assert_uint_eq(br.nbatch_headers, 0);
}
END_TEST

/* At most 100 headers an object: merging compares each pair. */
START_TEST(test_header_count)
{
	char *doc = malloc(100000), *p;
	size_t i, n;

	ck_assert_ptr_nonnull(doc);
	for (n = 100; n <= 101; n++) {
		p = doc + sprintf(doc, "{\"headers\": {");
		for (i = 0; i < n; i++)
			p += sprintf(p, "%s\"h%zu\": \"v\"", i ? "," : "", i);
		p += sprintf(p, "}, \"requests\": [{\"url\": \"http://a/\", \"headers\": {");
		for (i = 0; i < n; i++)
			p += sprintf(p, "%s\"o%zu\": \"v\"", i ? "," : "", i);
		sprintf(p, "}}]}");
		if (n == 100) {
			struct batch_request br;

			parse_ok(doc, &br);
			ck_assert_uint_eq(br.items[0].nheaders, 200);
			request_free(&br);
		} else {
			expect_err(doc, "headers: more than 100 headers");
		}
	}
	/* a request's own count too */
	p = doc + sprintf(doc, "{\"requests\": [{\"url\": \"http://a/\", \"headers\": {");
	for (i = 0; i < 101; i++)
		p += sprintf(p, "%s\"o%zu\": \"v\"", i ? "," : "", i);
	sprintf(p, "}}]}");
	expect_err(doc, "requests[0].headers: more than 100 headers");
	free(doc);
}
END_TEST

/* --- retry policies ----------------------------------------------------- */

/* A request's retry policy, as parsed (not resolved). */
static void expect_policy(const struct retry_policy *p, long attempts, long backoff_ms,
                          long max_backoff_ms, bool on_set)
{
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(p->attempts, attempts);
	ck_assert_int_eq(p->backoff_ms, backoff_ms);
	ck_assert_int_eq(p->max_backoff_ms, max_backoff_ms);
	ck_assert(p->on_set == on_set);
}

/* A batch's policy and a request's own, which overrides it field by
 * field later; requests without their own keep NULL. */
START_TEST(test_retry_batch_and_item)
{
	struct batch_request br;
	const struct retry_policy *p;

	parse_ok("{\"retry\": {\"attempts\": 3, \"backoff_ms\": 100, \"max_backoff_ms\": 2000,"
	         " \"on\": [\"connect\", 503]}, \"requests\": ["
	         " \"http://a/\","
	         " {\"url\": \"http://a/\"},"
	         " {\"url\": \"http://a/\", \"retry\": {\"attempts\": 1}},"
	         " {\"url\": \"http://a/\", \"retry\": {\"on\": [\"timeout\"], \"backoff_ms\": 0}},"
	         " {\"url\": \"http://a/\", \"retry\": {}}]}", &br);
	ck_assert_uint_eq(br.n, 5);
	p = br.retry;
	expect_policy(p, 3, 100, 2000, true);
	ck_assert(p->on.connect);
	ck_assert(!p->on.timeout);
	ck_assert(retry_on_status(&p->on, 503));
	ck_assert(!retry_on_status(&p->on, 429));
	ck_assert_ptr_null(br.items[0].retry);
	ck_assert_ptr_null(br.items[1].retry);
	expect_policy(br.items[2].retry, 1, -1, -1, false);
	p = br.items[3].retry;
	expect_policy(p, -1, 0, -1, true);
	ck_assert(p->on.timeout);
	ck_assert(!p->on.connect);
	ck_assert(!retry_on_status(&p->on, 503));
	expect_policy(br.items[4].retry, -1, -1, -1, false);
	request_free(&br);
	ck_assert_ptr_null(br.retry);

	/* a request's own without one for the batch; the bounds */
	parse_ok("{\"requests\": [{\"url\": \"http://a/\", \"retry\": {\"attempts\": 1000,"
	         " \"backoff_ms\": 3600000, \"max_backoff_ms\": 0}}, \"http://b/\"]}", &br);
	ck_assert_ptr_null(br.retry);
	expect_policy(br.items[0].retry, 1000, 3600000, 0, false);
	ck_assert_ptr_null(br.items[1].retry);
	request_free(&br);

	/* no "retry" anywhere: nothing allocated */
	parse_ok("{\"requests\": [{\"url\": \"http://a/\"}]}", &br);
	ck_assert_ptr_null(br.retry);
	ck_assert_ptr_null(br.items[0].retry);
	request_free(&br);
	parse_ok("[\"http://a/\"]", &br);
	ck_assert_ptr_null(br.retry);
	ck_assert_ptr_null(br.items[0].retry);
	request_free(&br);
}
END_TEST

/* "on" takes names as strings and statuses as strings or integers. */
START_TEST(test_retry_on_names)
{
	struct batch_request br;
	const struct retry_policy *p;
	int s;

	parse_ok("{\"requests\": [], \"retry\": {\"on\": [\"timeout\", \"connect\", 429, \"503\","
	         " 400, \"599\", 429, \"connect\"]}}", &br);
	p = br.retry;
	expect_policy(p, -1, -1, -1, true);
	ck_assert(p->on.connect);
	ck_assert(p->on.timeout);
	for (s = RETRY_STATUS_MIN; s <= RETRY_STATUS_MAX; s++)
		ck_assert_msg(retry_on_status(&p->on, s) ==
		              (s == 400 || s == 429 || s == 503 || s == 599), "status %d", s);
	request_free(&br);

	parse_ok("{\"requests\": [], \"retry\": {\"on\": [502]}}", &br);
	ck_assert(!br.retry->on.connect);
	ck_assert(!br.retry->on.timeout);
	ck_assert(retry_on_status(&br.retry->on, 502));
	request_free(&br);
}
END_TEST

START_TEST(test_retry_errors)
{
#define WANT "\"connect\", \"timeout\" or a status 400..599"
	/* "retry" itself, at both levels */
	expect_err("{\"requests\": [], \"retry\": 3}", "retry: must be an object");
	expect_err("{\"requests\": [], \"retry\": null}", "retry: must be an object");
	expect_err("{\"requests\": [], \"retry\": [\"connect\"]}", "retry: must be an object");
	expect_err("{\"requests\": [\"http://a/\", {\"url\": \"http://a/\", \"retry\": true}]}",
	           "requests[1].retry: must be an object");
	expect_err("{\"requests\": [], \"retry\": {\"attempts\": 2, \"tries\": 2}}",
	           "retry: unknown key \"tries\"");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"retry\": {\"Attempts\": 2}}]}",
	           "requests[0].retry: unknown key \"Attempts\"");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"retry\": {\"max_retries\": 2}}]}",
	           "requests[0].retry: unknown key \"max_retries\"");

	/* attempts */
	expect_err("{\"requests\": [], \"retry\": {\"attempts\": 0}}",
	           "retry.attempts: 0 out of range 1..1000");
	expect_err("{\"requests\": [], \"retry\": {\"attempts\": -1}}",
	           "retry.attempts: -1 out of range 1..1000");
	expect_err("{\"requests\": [], \"retry\": {\"attempts\": 1001}}",
	           "retry.attempts: 1001 out of range 1..1000");
	expect_err("{\"requests\": [\"http://a/\", \"http://a/\", \"http://a/\","
	           " {\"url\": \"http://a/\", \"retry\": {\"attempts\": 1e9}}]}",
	           "requests[3].retry.attempts: must be an integer");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"retry\": {\"attempts\": 2.0}}]}",
	           "requests[0].retry.attempts: must be an integer");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"retry\": {\"attempts\": \"3\"}}]}",
	           "requests[0].retry.attempts: must be an integer");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"retry\": {\"attempts\": null}}]}",
	           "requests[0].retry.attempts: must be an integer");

	/* back-off */
	expect_err("{\"requests\": [], \"retry\": {\"backoff_ms\": -1}}",
	           "retry.backoff_ms: -1 out of range 0..3600000");
	expect_err("{\"requests\": [], \"retry\": {\"backoff_ms\": 3600001}}",
	           "retry.backoff_ms: 3600001 out of range 0..3600000");
	expect_err("{\"requests\": [], \"retry\": {\"backoff_ms\": \"100ms\"}}",
	           "retry.backoff_ms: must be an integer");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"retry\": {\"max_backoff_ms\": -5}}]}",
	           "requests[0].retry.max_backoff_ms: -5 out of range 0..3600000");
	expect_err("{\"requests\": [], \"retry\": {\"max_backoff_ms\": 9223372036854775807}}",
	           "retry.max_backoff_ms: 9223372036854775807 out of range 0..3600000");
	expect_err("{\"requests\": [], \"retry\": {\"max_backoff_ms\": 0.5}}",
	           "retry.max_backoff_ms: must be an integer");

	/* on */
	expect_err("{\"requests\": [], \"retry\": {\"on\": []}}",
	           "retry.on: must be a non-empty array such as [\"connect\", \"timeout\", 503]");
	expect_err("{\"requests\": [], \"retry\": {\"on\": \"connect\"}}",
	           "retry.on: must be a non-empty array such as [\"connect\", \"timeout\", 503]");
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"retry\": {\"on\": null}}]}",
	           "requests[0].retry.on: must be a non-empty array such as "
	           "[\"connect\", \"timeout\", 503]");
	expect_err("{\"requests\": [], \"retry\": {\"on\": [\"connect\", \"reset\"]}}",
	           "retry.on[1]: \"reset\" is not " WANT);
	expect_err("{\"requests\": [], \"retry\": {\"on\": [\"Connect\"]}}",
	           "retry.on[0]: \"Connect\" is not " WANT);
	expect_err("{\"requests\": [], \"retry\": {\"on\": [\"\"]}}",
	           "retry.on[0]: \"\" is not " WANT);
	expect_err("{\"requests\": [], \"retry\": {\"on\": [\"600\"]}}",
	           "retry.on[0]: \"600\" is not " WANT);
	expect_err("{\"requests\": [], \"retry\": {\"on\": [\"0503\"]}}",
	           "retry.on[0]: \"0503\" is not " WANT);
	expect_err("{\"requests\": [], \"retry\": {\"on\": [\"5xx\"]}}",
	           "retry.on[0]: \"5xx\" is not " WANT);
	expect_err("{\"requests\": [], \"retry\": {\"on\": [\"503\\u0000\"]}}",
	           "retry.on[0]: must be " WANT);
	expect_err("{\"requests\": [], \"retry\": {\"on\": [\"connect, timeout\"]}}",
	           "retry.on[0]: \"connect, timeout\" is not " WANT);
	/* a long name: 32 bytes of it */
	expect_err("{\"requests\": [], \"retry\": {\"on\":"
	           " [\"abcdefghijklmnopqrstuvwxyz0123456789\"]}}",
	           "retry.on[0]: \"abcdefghijklmnopqrstuvwxyz012345\" is not " WANT);
	expect_err("{\"requests\": [], \"retry\": {\"on\": [399]}}",
	           "retry.on[0]: 399 is not " WANT);
	expect_err("{\"requests\": [], \"retry\": {\"on\": [429, 600]}}",
	           "retry.on[1]: 600 is not " WANT);
	expect_err("{\"requests\": [], \"retry\": {\"on\": [-503]}}",
	           "retry.on[0]: -503 is not " WANT);
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"retry\": {\"on\": [503.0]}}]}",
	           "requests[0].retry.on[0]: must be " WANT);
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"retry\": {\"on\": [[503]]}}]}",
	           "requests[0].retry.on[0]: must be " WANT);
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"retry\": {\"on\": [true]}}]}",
	           "requests[0].retry.on[0]: must be " WANT);
	expect_err("{\"requests\": [{\"url\": \"http://a/\", \"retry\": {\"on\": [null]}}]}",
	           "requests[0].retry.on[0]: must be " WANT);
	/* the short form has no objects, so no "retry" */
	expect_err("[{\"url\": \"http://a/\", \"retry\": {}}]",
	           "[0]: must be a URL string");
	/* an error after a good policy leaves nothing behind */
	expect_err("{\"retry\": {\"attempts\": 2}, \"requests\": [{\"url\": \"http://a/\","
	           " \"retry\": {\"attempts\": 2}}, {\"url\": \"http://a/\","
	           " \"retry\": {\"attempts\": 2, \"on\": [\"x\"]}}]}",
	           "requests[1].retry.on[0]: \"x\" is not " WANT);
#undef WANT
}
END_TEST

/* 10,000 retried POSTs, each with a whole policy of its own: within the
 * JSON budget (jsonscan puts one at 2.8 KiB, the policy 1.6 KiB of it, of
 * the 3.3 KiB a request 32 MiB leaves); and with the batch's policy only,
 * not one allocated per request. */
START_TEST(test_retry_10000)
{
#define POLICY "\"retry\": {\"attempts\": 4, \"backoff_ms\": 250, \"max_backoff_ms\": 10000," \
               " \"on\": [\"connect\", \"timeout\", 429, 502, 503, \"504\"]}"
#define ITEM "{\"url\": \"http://a/\", \"method\": \"POST\", \"headers\":" \
             " {\"Idempotency-Key\": \"8e03978e-40d5-43e8-bc93-6894a57f9324\"}, " POLICY "}"
	const struct request_limits many = { .max_batch_size = 10000 };
	struct batch_request br;
	char err[1024] = "", *doc;
	size_t len, i;

	doc = repeat("{\"requests\": [", ITEM ",", 9999, ITEM, "]}", &len);
	j_live = j_peak = 0;
	json_set_alloc_funcs(count_malloc, count_free);
	ck_assert_msg(request_parse(doc, len, &many, &br, err, sizeof err) == 0, "%s", err);
	json_set_alloc_funcs(malloc, free);
	free(doc);
	ck_assert_msg(j_peak <= 32u << 20, "jansson peaked at %zu bytes", j_peak);
	ck_assert_uint_eq(br.n, 10000);
	ck_assert_ptr_null(br.retry);
	for (i = 0; i < br.n; i++) {
		expect_policy(br.items[i].retry, 4, 250, 10000, true);
		ck_assert(retry_on_status(&br.items[i].retry->on, 504));
	}
	request_free(&br);

	doc = repeat("{" POLICY ", \"requests\": [", "{\"url\": \"http://a/\"},", 9999,
	             "{\"url\": \"http://a/\"}", "]}", &len);
	ck_assert_msg(request_parse(doc, len, &many, &br, err, sizeof err) == 0, "%s", err);
	free(doc);
	ck_assert_uint_eq(br.n, 10000);
	expect_policy(br.retry, 4, 250, 10000, true);
	for (i = 0; i < br.n; i++)
		ck_assert_ptr_null(br.items[i].retry);
	request_free(&br);
#undef ITEM
#undef POLICY
}
END_TEST

/* --- netaddr: the address parsers request.c, acl.c, dns.c, units.c and
 * listener.c share ------------------------------------------------------ */

START_TEST(test_netaddr_listen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char msg[256], text[NETADDR_TEXT_MAX];

	ck_assert_int_eq(netaddr_parse_listen("127.0.0.1:8642", &ss, &len, msg, sizeof msg), 0);
	ck_assert_int_eq(netaddr_format((struct sockaddr *)&ss, text, sizeof text), 0);
	ck_assert_str_eq(text, "127.0.0.1:8642");
	ck_assert_int_eq(netaddr_parse_listen("localhost:1", &ss, &len, msg, sizeof msg), 0);
	netaddr_format((struct sockaddr *)&ss, text, sizeof text);
	ck_assert_str_eq(text, "127.0.0.1:1");
	ck_assert_int_eq(netaddr_parse_listen("*:0", &ss, &len, msg, sizeof msg), 0);
	netaddr_format((struct sockaddr *)&ss, text, sizeof text);
	ck_assert_str_eq(text, "0.0.0.0:0");
	ck_assert_int_eq(netaddr_parse_listen("[0::1]:80", &ss, &len, msg, sizeof msg), 0);
	netaddr_format((struct sockaddr *)&ss, text, sizeof text);
	ck_assert_str_eq(text, "[::1]:80");
	ck_assert_int_eq(netaddr_parse_listen("unix:/run/f.sock", &ss, &len, msg, sizeof msg), 0);
	ck_assert_int_eq(ss.ss_family, AF_UNIX);
	ck_assert_int_eq(netaddr_format((struct sockaddr *)&ss, text, sizeof text), -1);
	ck_assert_int_eq(netaddr_parse_listen("::1:80", &ss, &len, msg, sizeof msg), -1);
	ck_assert_str_eq(msg, "listen: IPv6 address needs brackets in \"::1:80\" (e.g. [::1]:8642)");
	ck_assert_int_eq(netaddr_parse_listen(":80", &ss, &len, msg, sizeof msg), -1);
	ck_assert_int_eq(netaddr_parse_listen("1.2.3.4:65536", &ss, &len, msg, sizeof msg), -1);
	ck_assert_str_eq(msg, "listen: bad port in \"1.2.3.4:65536\" (0..65535)");
	ck_assert_int_eq(netaddr_parse_listen("unix:rel", &ss, &len, msg, sizeof msg), -1);
}
END_TEST

START_TEST(test_netaddr_cidr)
{
	struct netaddr_cidr c;
	char text[NETADDR_TEXT_MAX];

	ck_assert_int_eq(netaddr_parse_cidr("FD00:0::/8", &c), 0);
	netaddr_format_cidr(&c, text, sizeof text);
	ck_assert_str_eq(text, "fd00::/8");
	ck_assert_int_eq(netaddr_parse_cidr("192.168.1.1", &c), 0);
	netaddr_format_cidr(&c, text, sizeof text);
	ck_assert_str_eq(text, "192.168.1.1/32");
	ck_assert_int_eq(netaddr_parse_cidr("10.0.0.1/8", &c), -2);
	ck_assert_int_eq(netaddr_parse_cidr("10.0.0.0/33", &c), -1);
	ck_assert_int_eq(netaddr_parse_cidr("10.0.0.0/", &c), -1);
	ck_assert_int_eq(netaddr_parse_cidr("10.0.0.0/+8", &c), -1);
	ck_assert_int_eq(netaddr_parse_cidr("example.com/8", &c), -1);
}
END_TEST

START_TEST(test_netaddr_ip)
{
	struct sockaddr_storage ss;
	char text[NETADDR_TEXT_MAX];

	ck_assert(netaddr_parse_ip("10.1.2.3", &ss));
	netaddr_ip_text((struct sockaddr *)&ss, text, sizeof text);
	ck_assert_str_eq(text, "10.1.2.3");
	ck_assert(netaddr_parse_ip("::ffff:1.2.3.4", &ss));
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ck_assert(!netaddr_parse_ip("[::1]", &ss));
	ck_assert(!netaddr_parse_ip("127.1", &ss));
	ck_assert(!netaddr_parse_ip("example.com", &ss));
	ck_assert(netaddr_canonical_ipv6("0:0::1", 6, text, sizeof text));
	ck_assert_str_eq(text, "::1");
	ck_assert(!netaddr_canonical_ipv6("v1.x", 4, text, sizeof text));
	ck_assert(netaddr_ambiguous_ipv4("127.1"));
	ck_assert(netaddr_ambiguous_ipv4("2130706433"));
	ck_assert(!netaddr_ambiguous_ipv4("127.0.0.1"));
	ck_assert(!netaddr_ambiguous_ipv4("1password.com"));
}
END_TEST

static Suite *request_suite(void)
{
	Suite *s = suite_create("request");
	TCase *tc;

	tc = tcase_create("short");
	tcase_add_test(tc, test_short_form_fields);
	tcase_add_test(tc, test_short_form_query_fragment);
	tcase_add_test(tc, test_short_form_ipv6);
	tcase_add_test(tc, test_empty_array);
	tcase_add_test(tc, test_invalid_json);
	tcase_add_test(tc, test_top_level_not_array_or_object);
	tcase_add_test(tc, test_short_form_element_errors);
	tcase_add_test(tc, test_url_crlf_rejected);
	tcase_add_test(tc, test_url_too_long);
	tcase_add_test(tc, test_max_batch_size);
	tcase_add_test(tc, test_error_after_good_items);
	tcase_add_test(tc, test_request_free_twice);
	suite_add_tcase(s, tc);

	tc = tcase_create("long");
	tcase_add_test(tc, test_long_form_defaults);
	tcase_add_test(tc, test_long_form_batch_fields);
	tcase_add_test(tc, test_long_form_batch_errors);
	tcase_add_test(tc, test_max_stream_batch_size);
	tcase_add_test(tc, test_progress_ms);
	tcase_add_test(tc, test_accepts);
	tcase_add_test(tc, test_method);
	tcase_add_test(tc, test_headers_merged);
	tcase_add_test(tc, test_header_values_allowed);
	tcase_add_test(tc, test_reserved_headers);
	tcase_add_test(tc, test_header_errors);
	tcase_add_test(tc, test_body_string);
	tcase_add_test(tc, test_body_json);
	tcase_add_test(tc, test_body_json_real_spelling);
	tcase_add_test(tc, test_ipv6_canonical);
	tcase_add_test(tc, test_ipv4_ambiguous);
	tcase_add_test(tc, test_ipv4_canonical_and_names);
	tcase_add_test(tc, test_expect_header);
	tcase_add_test(tc, test_numbers_keep_spelling);
	tcase_add_test(tc, test_duplicate_keys);
	tcase_add_test(tc, test_scan_too_many);
	tcase_add_test(tc, test_scan_too_complex);
	tcase_add_test(tc, test_scan_budget_follows_batch_size);
	tcase_add_test(tc, test_header_copies_counted);
	tcase_add_test(tc, test_batch_headers_shared);
	tcase_add_test(tc, test_header_count);
	tcase_add_test(tc, test_body_json_big_integer);
	tcase_add_test(tc, test_body_errors);
	tcase_add_test(tc, test_item_timeout);
	tcase_add_test(tc, test_id);
	tcase_add_test(tc, test_item_errors);
	tcase_add_test(tc, test_long_form_string_elements);
	suite_add_tcase(s, tc);

	tc = tcase_create("retry");
	tcase_add_test(tc, test_retry_batch_and_item);
	tcase_add_test(tc, test_retry_on_names);
	tcase_add_test(tc, test_retry_errors);
	tcase_add_test(tc, test_retry_10000);
	suite_add_tcase(s, tc);

	tc = tcase_create("netaddr");
	tcase_add_test(tc, test_netaddr_listen);
	tcase_add_test(tc, test_netaddr_cidr);
	tcase_add_test(tc, test_netaddr_ip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(request_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
