/* check_h1: unit tests of the HTTP/1.1 codec (src/h1.c).  Requests are
 * compared byte for byte.  Every answer is fed whole, byte by byte and in
 * odd splits — as separate h1_feed calls and as the chains of one
 * evbuffer (h1_feed_buffer) — and must give the same transcript of
 * events each time. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/buffer.h>

#include "h1.h"

static const struct h1_limits lim = { .max_headers = 20, .max_head_bytes = 1024 };

/* --- recording events ------------------------------------------------------- */

struct rec {
	char log[8192];          /* the transcript */
	size_t body_cap;         /* refuse past this many body bytes */
	size_t body_total;
	bool refuse_head;        /* head refuses a Content-Length over body_cap */
	bool in_body;            /* a "body " line is open */
	bool quiet_body;         /* log no body bytes (they depend on the split) */
	int heads, finals;       /* finals: end or fail */
	struct h1 *cancel_in;    /* h1_cancel this codec on the first body */
};

static void logf_(struct rec *r, const char *s, size_t n)
{
	size_t len = strlen(r->log);

	ck_assert_uint_lt(len + n, sizeof r->log);
	memcpy(r->log + len, s, n);
	r->log[len + n] = '\0';
}

static void logs(struct rec *r, const char *s)
{
	logf_(r, s, strlen(s));
}

static void close_body(struct rec *r)
{
	if (r->in_body)
		logs(r, "\n");
	r->in_body = false;
}

static int on_head(void *ctx, const struct exchange_head *head)
{
	struct rec *r = ctx;
	char line[80];
	size_t i;

	ck_assert_int_eq(r->heads, 0);
	ck_assert_int_eq(r->finals, 0);
	r->heads++;
	snprintf(line, sizeof line, "head %d cl=%lld [", head->status,
	         (long long)head->content_length);
	logs(r, line);
	logf_(r, head->reason, head->reason_len);
	logs(r, "]\n");
	for (i = 0; i < head->nfields; i++) {
		logf_(r, head->fields[i].name, head->fields[i].name_len);
		logs(r, ": ");
		logf_(r, head->fields[i].value, head->fields[i].value_len);
		logs(r, "\n");
	}
	if (r->refuse_head && head->content_length > (int64_t)r->body_cap)
		return -1;
	return 0;
}

static int on_body(void *ctx, const char *data, size_t len)
{
	struct rec *r = ctx;

	ck_assert_int_eq(r->heads, 1);
	ck_assert_int_eq(r->finals, 0);
	ck_assert_uint_gt(len, 0);
	if (r->cancel_in != NULL) {
		h1_cancel(r->cancel_in);
		logs(r, "cancelled\n");
		return 0;
	}
	if (r->body_total + len > r->body_cap)
		return -1;
	r->body_total += len;
	if (r->quiet_body)
		return 0;
	if (!r->in_body)
		logs(r, "body ");
	r->in_body = true;
	logf_(r, data, len);
	return 0;
}

static void on_end(void *ctx, bool reusable)
{
	struct rec *r = ctx;

	ck_assert_int_eq(r->finals, 0);
	r->finals++;
	close_body(r);
	logs(r, reusable ? "end reusable\n" : "end not-reusable\n");
}

static void on_fail(void *ctx, const struct h1_failure *why)
{
	static const char *const kinds[] = { "protocol", "too_large", "closed" };
	struct rec *r = ctx;

	ck_assert_int_eq(r->finals, 0);
	r->finals++;
	close_body(r);
	logs(r, "fail ");
	logs(r, kinds[why->kind]);
	logs(r, why->nothing_received ? " (nothing) " : " ");
	logs(r, why->message);
	logs(r, "\n");
}

static const struct h1_ops ops = { on_head, on_body, on_end, on_fail };

/* --- feeding ---------------------------------------------------------------- */

enum how { STREAM, CHAINS };

struct answer {
	const char *in;
	size_t len;              /* 0: strlen(in) */
	const char *method;      /* NULL: GET */
	bool eof;                /* the connection closes after in */
	size_t body_cap;         /* 0: 1 MiB */
	bool refuse_head;
	bool quiet_body;
};

/* Feed a to a fresh codec in pieces of step bytes (0: whole); returns the
 * transcript, with "fit" or "unfit" last: h1_reusable() after it all. */
static char *run(const struct answer *a, size_t step, enum how how)
{
	static struct rec r;
	struct h1 *h;
	struct evbuffer *buf = evbuffer_new();
	size_t len = a->len ? a->len : strlen(a->in), off = 0, n;

	memset(&r, 0, sizeof r);
	r.body_cap = a->body_cap ? a->body_cap : 1u << 20;
	r.refuse_head = a->refuse_head;
	r.quiet_body = a->quiet_body;
	h = h1_new(&ops, &r, &lim);
	h1_begin(h, a->method ? a->method : "GET");
	for (off = 0; off < len; off += n) {
		n = step == 0 || step > len - off ? len - off : step;
		if (how == STREAM)
			h1_feed(h, a->in + off, n);
		else
			evbuffer_add_reference(buf, a->in + off, n, NULL, NULL);
	}
	if (how == CHAINS)
		h1_feed_buffer(h, buf);
	ck_assert_uint_eq(evbuffer_get_length(buf), 0);
	if (a->eof)
		h1_eof(h);
	close_body(&r);
	logs(&r, h1_reusable(h) ? "fit\n" : "unfit\n");
	ck_assert_int_le(r.finals, 1);
	h1_free(h);
	evbuffer_free(buf);
	return strdup(r.log);
}

/* The same transcript whatever the split.  Fed as separate h1_feed calls
 * the codec cannot know of bytes after the answer that have not arrived
 * yet: there an answer followed by excess may end "reusable" — but the
 * connection is still unfit once they come. */
static void check_answer(const struct answer *a, const char *want)
{
	static const size_t steps[] = { 0, 1, 2, 3, 7, 13 };
	size_t i;
	int how;

	for (how = STREAM; how <= CHAINS; how++) {
		for (i = 0; i < sizeof steps / sizeof *steps; i++) {
			char *got = run(a, steps[i], (enum how)how);
			char *loose = strstr(got, "end reusable\nunfit\n");

			if (how == STREAM && loose != NULL && strstr(want, "end not-reusable\nunfit\n")) {
				*loose = '\0';
				got = realloc(got, strlen(got) + 32);
				ck_assert_ptr_nonnull(got);
				strcat(got, "end not-reusable\nunfit\n");
			}
			ck_assert_msg(strcmp(got, want) == 0, "%s, step %zu: got\n%s\nwant\n%s",
			              how == STREAM ? "stream" : "chains", steps[i], got, want);
			free(got);
		}
	}
}

static void check(const char *in, const char *want)
{
	struct answer a = { .in = in };

	check_answer(&a, want);
}

/* --- answers ------------------------------------------------------------------- */

START_TEST(test_content_length)
{
	check("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
	      "head 200 cl=5 [OK]\ncontent-type: text/plain\ncontent-length: 5\n"
	      "body hello\nend reusable\nfit\n");
	check("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	      "head 200 cl=0 [OK]\ncontent-length: 0\nend reusable\nfit\n");
	/* no reason phrase at all */
	check("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
	      "head 404 cl=0 []\ncontent-length: 0\nend reusable\nfit\n");
}
END_TEST

START_TEST(test_chunked)
{
	/* extensions and trailers are legal; trailers are not headers */
	check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	      "3;foo=bar\r\nabc\r\n2\r\nde\r\n0;x\r\nX-Trailer: 1\r\n\r\n",
	      "head 200 cl=-1 [OK]\ntransfer-encoding: chunked\nbody abcde\nend reusable\nfit\n");
	check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	      "head 200 cl=-1 [OK]\ntransfer-encoding: chunked\nend reusable\nfit\n");
}
END_TEST

START_TEST(test_close_delimited)
{
	struct answer a = { .in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it",
	                    .eof = true };

	check_answer(&a, "head 200 cl=-1 [OK]\ncontent-type: text/plain\n"
	                 "body all of it\nend not-reusable\nunfit\n");
	/* until EOF it is not over */
	a.eof = false;
	check_answer(&a, "head 200 cl=-1 [OK]\ncontent-type: text/plain\nbody all of it\nunfit\n");
	/* a Transfer-Encoding that is not chunked: the body runs to EOF too */
	a.in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz";
	a.eof = true;
	check_answer(&a, "head 200 cl=-1 [OK]\ntransfer-encoding: gzip\nbody xyz\n"
	                 "end not-reusable\nunfit\n");
}
END_TEST

START_TEST(test_closed_early)
{
	struct answer a = { .in = "", .eof = true };

	check_answer(&a, "fail closed (nothing) upstream closed the connection without "
	                 "answering\nunfit\n");
	a.in = "HTTP/1.1 200 OK\r\nContent-Le";
	check_answer(&a, "fail closed upstream closed the connection before the end of the "
	                 "headers\nunfit\n");
	a.in = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel";
	check_answer(&a, "head 200 cl=5 [OK]\ncontent-length: 5\nbody hel\n"
	                 "fail closed upstream closed the connection before the end of the "
	                 "body\nunfit\n");
	a.in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
	check_answer(&a, "head 200 cl=-1 [OK]\ntransfer-encoding: chunked\nbody hel\n"
	                 "fail closed upstream closed the connection before the end of the "
	                 "body\nunfit\n");
}
END_TEST

START_TEST(test_no_body)
{
	struct answer a = { .in = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
	                    .method = "HEAD" };

	check_answer(&a, "head 200 cl=0 [OK]\ncontent-length: 5\nend reusable\nfit\n");
	/* what follows a HEAD answer is not its body */
	a.in = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
	check_answer(&a, "head 200 cl=0 [OK]\ncontent-length: 5\nend not-reusable\nunfit\n");
	/* 204 and 304 have none, whatever they say (llhttp alone would wait) */
	check("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
	      "head 204 cl=0 [No Content]\ncontent-length: 5\nend reusable\nfit\n");
	check("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: \"x\"\r\n\r\n",
	      "head 304 cl=0 [Not Modified]\ncontent-length: 100\netag: \"x\"\n"
	      "end reusable\nfit\n");
	check("HTTP/1.1 204 No Content\r\n\r\n", "head 204 cl=0 [No Content]\nend reusable\nfit\n");
}
END_TEST

START_TEST(test_interim_skipped)
{
	/* three 103s before the 200: today's client answers "103" */
	check("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
	      "HTTP/1.1 103 Early Hints\r\nLink: </b.css>; rel=preload\r\n\r\n"
	      "HTTP/1.1 103 Early Hints\r\nLink: </c.css>; rel=preload\r\n\r\n"
	      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: yes\r\n\r\nok",
	      "head 200 cl=2 [OK]\ncontent-length: 2\nx-final: yes\nbody ok\nend reusable\nfit\n");
	check("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
	      "head 201 cl=0 [Created]\ncontent-length: 0\nend reusable\nfit\n");
	/* a 1xx has no body whatever it says */
	check("HTTP/1.1 199 Odd\r\nContent-Length: 3\r\n\r\n"
	      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	      "head 200 cl=0 [OK]\ncontent-length: 0\nend reusable\nfit\n");
	/* llhttp alone would swallow the 200 after a 1xx saying close */
	check("HTTP/1.1 103 Early Hints\r\nConnection: close\r\n\r\n"
	      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	      "head 200 cl=0 [OK]\ncontent-length: 0\nend reusable\nfit\n");
	/* never asked for */
	check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n",
	      "fail protocol malformed answer: 101 Switching Protocols that fanoutd did not "
	      "ask for\nunfit\n");
}
END_TEST

START_TEST(test_header_joining)
{
	check("HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-A:  one  \r\nCONTENT-length: 0\r\n"
	      "x-a: two\r\nSet-Cookie: b=2\r\nX-Empty:\r\nX-A: three\r\n\r\n",
	      "head 200 cl=0 [OK]\nset-cookie: a=1, b=2\nx-a: one, two, three\n"
	      "content-length: 0\nx-empty: \nend reusable\nfit\n");
}
END_TEST

START_TEST(test_keep_alive)
{
	check("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
	      "head 200 cl=2 [OK]\nconnection: close\ncontent-length: 2\nbody ok\n"
	      "end not-reusable\nunfit\n");
	check("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	      "head 200 cl=2 [OK]\ncontent-length: 2\nbody ok\nend not-reusable\nunfit\n");
	check("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
	      "head 200 cl=2 [OK]\nconnection: keep-alive\ncontent-length: 2\nbody ok\n"
	      "end reusable\nfit\n");
}
END_TEST

/* --- what today's client gets wrong (issue 15, item 7) --------------------------- */

START_TEST(test_excess_not_reusable)
{
	/* the forged second answer must never reach the next request */
	check("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	      "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged",
	      "head 200 cl=5 [OK]\ncontent-length: 5\nbody hello\nend not-reusable\nunfit\n");
	check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
	      "head 200 cl=-1 [OK]\ntransfer-encoding: chunked\nend not-reusable\nunfit\n");
}
END_TEST

START_TEST(test_protocol_errors)
{
	check("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
	      "fail protocol malformed answer: Duplicate Content-Length\nunfit\n");
	/* (llhttp refuses a repeat of the same length too: RFC 9112 6.3 lets it) */
	check("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	      "fail protocol malformed answer: Duplicate Content-Length\nunfit\n");
	check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	      "head 200 cl=-1 [OK]\ntransfer-encoding: chunked\n"
	      "fail protocol malformed answer: Invalid character in chunk size\nunfit\n");
	check("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	      "fail protocol malformed answer: Invalid character in Content-Length\nunfit\n");
	check("HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
	      "fail protocol malformed answer: invalid status code\nunfit\n");
	check("HTTP/1.1 20x OK\r\nContent-Length: 0\r\n\r\n",
	      "fail protocol malformed answer: invalid status code\nunfit\n");
	check("HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n",
	      "fail protocol malformed answer: status 99\nunfit\n");
	check("HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	      "fail protocol malformed answer: HTTP version 2.0 (want 1.1 or 1.0)\nunfit\n");
	check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
	      "0\r\n\r\n", "fail protocol malformed answer: Content-Length can't be present "
	      "with Transfer-Encoding\nunfit\n");
	check("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
	      "fail protocol malformed answer: Content-Length over 2^63\nunfit\n");
	check("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n",
	      "fail protocol malformed answer: Content-Length over 2^63\nunfit\n");
	check("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
	      "fail protocol malformed answer: Content-Length overflow\nunfit\n");
	/* (no reason phrase, not even its space: fine) */
	check("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	      "head 200 cl=0 []\ncontent-length: 0\nend reusable\nfit\n");
	check("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello",
	      "fail protocol malformed answer: Invalid header field char\nunfit\n");
	/* llhttp lets this one through */
	check("HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 0\r\n\r\n",
	      "fail protocol malformed answer: a header name that is not a token "
	      "(white space before the colon?)\nunfit\n");
	/* a name of nothing (found by fuzz_h1: corpus/h1/empty_name) */
	check("HTTP/1.1 200\r :5oh\n\r\n",
	      "fail protocol malformed answer: a header name that is not a token "
	      "(white space before the colon?)\nunfit\n");
	check("<html>hello</html>", "fail protocol malformed answer: not an HTTP/1.x answer\nunfit\n");
}
END_TEST

START_TEST(test_head_caps)
{
	char in[2048];
	size_t n = 0;
	int i;

	n += (size_t)snprintf(in + n, sizeof in - n, "HTTP/1.1 200 OK\r\n");
	for (i = 0; i < 21; i++)
		n += (size_t)snprintf(in + n, sizeof in - n, "X-%d: v\r\n", i);
	snprintf(in + n, sizeof in - n, "Content-Length: 0\r\n\r\n");
	check(in, "fail protocol malformed answer: more than 20 header lines\nunfit\n");
	snprintf(in, sizeof in, "HTTP/1.1 200 OK\r\nX-Big: %01100d\r\n\r\n", 0);
	check(in, "fail protocol malformed answer: status line and headers over 1024 bytes\n"
	          "unfit\n");
	/* interim answers count against the same budget: no endless 1xx */
	n = 0;
	for (i = 0; i < 40; i++)
		n += (size_t)snprintf(in + n, sizeof in - n, "HTTP/1.1 103 Early Hints\r\n\r\n");
	check(in, "fail protocol malformed answer: status line and headers over 1024 bytes\n"
	          "unfit\n");
}
END_TEST

START_TEST(test_refused)
{
	struct answer a = { .in = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
	                    .body_cap = 4, .quiet_body = true };

	/* the body callback says no: the codec stops, nothing more comes (how
	 * much it took first depends on the split; never more than its cap) */
	check_answer(&a, "head 200 cl=10 [OK]\ncontent-length: 10\n"
	                 "fail too_large answer body refused: over a size cap\nunfit\n");
	a.refuse_head = true;
	check_answer(&a, "head 200 cl=10 [OK]\ncontent-length: 10\n"
	                 "fail too_large answer refused: over a size cap\nunfit\n");
	a.body_cap = 10;
	a.quiet_body = false;
	check_answer(&a, "head 200 cl=10 [OK]\ncontent-length: 10\nbody 0123456789\n"
	                 "end reusable\nfit\n");
}
END_TEST

/* --- the codec over more than one exchange -------------------------------------- */

START_TEST(test_two_exchanges)
{
	static const char a1[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na";
	static const char a2[] = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
	                         "1\r\nb\r\n0\r\n\r\n";
	struct rec r = { .body_cap = 100 };
	struct h1 *h = h1_new(&ops, &r, &lim);

	h1_begin(h, "GET");
	ck_assert(!h1_feed(h, a1, strlen(a1)));
	ck_assert(h1_reusable(h));
	r.heads = r.finals = 0;
	h1_begin(h, "POST");
	ck_assert(h1_feed(h, a2, 10));
	ck_assert(!h1_feed(h, a2 + 10, strlen(a2) - 10));
	ck_assert_str_eq(r.log, "head 200 cl=1 [OK]\ncontent-length: 1\nbody a\nend reusable\n"
	                        "head 404 cl=-1 [Not Found]\ntransfer-encoding: chunked\nbody b\n"
	                        "end reusable\n");
	ck_assert(h1_reusable(h));
	h1_free(h);
}
END_TEST

/* The pool may hand the connection its next request from inside end. */
static struct h1 *begin_again;

static void end_and_begin(void *ctx, bool reusable)
{
	on_end(ctx, reusable);
	if (reusable)
		h1_begin(begin_again, "HEAD");
}

START_TEST(test_begin_inside_end)
{
	static const struct h1_ops again = { on_head, on_body, end_and_begin, on_fail };
	static const char a1[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na";
	static const char a2[] = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n";
	struct rec r = { .body_cap = 100 };
	struct h1 *h = h1_new(&again, &r, &lim);

	begin_again = h;
	h1_begin(h, "GET");
	ck_assert(!h1_feed(h, a1, strlen(a1)));
	ck_assert(!h1_reusable(h));   /* busy with the next exchange */
	r.heads = r.finals = 0;
	ck_assert(!h1_feed(h, a2, strlen(a2)));
	ck_assert_str_eq(r.log, "head 200 cl=1 [OK]\ncontent-length: 1\nbody a\nend reusable\n"
	                        "head 200 cl=0 [OK]\ncontent-length: 7\nend reusable\n");
	h1_free(h);
}
END_TEST

START_TEST(test_unasked_bytes)
{
	struct rec r = { .body_cap = 100 };
	struct h1 *h = h1_new(&ops, &r, &lim);

	/* an idle connection that talks, or closes, is done */
	ck_assert(h1_reusable(h));
	ck_assert(!h1_feed(h, "HTTP/1.1 200 OK\r\n", 17));
	ck_assert(!h1_reusable(h));
	ck_assert_str_eq(r.log, "");
	h1_free(h);
	h = h1_new(&ops, &r, &lim);
	h1_eof(h);
	ck_assert(!h1_reusable(h));
	h1_free(h);
}
END_TEST

START_TEST(test_cancel)
{
	static const char a[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
	struct rec r = { .body_cap = 100 };
	struct h1 *h = h1_new(&ops, &r, &lim);

	/* from inside a callback: nothing follows */
	r.cancel_in = h;
	h1_begin(h, "GET");
	ck_assert(!h1_feed(h, a, strlen(a)));
	ck_assert_str_eq(r.log, "head 200 cl=10 [OK]\ncontent-length: 10\ncancelled\n");
	h1_eof(h);
	ck_assert(!h1_reusable(h));
	h1_free(h);
	/* from outside, between two reads */
	memset(&r, 0, sizeof r);
	r.body_cap = 100;
	h = h1_new(&ops, &r, &lim);
	h1_begin(h, "GET");
	ck_assert(h1_feed(h, a, 20));
	h1_cancel(h);
	ck_assert(!h1_feed(h, a + 20, strlen(a) - 20));
	ck_assert_str_eq(r.log, "");
	h1_free(h);
}
END_TEST

START_TEST(test_begin_on_unfit_aborts)
{
	struct rec r = { .body_cap = 100 };
	struct h1 *h = h1_new(&ops, &r, &lim);

	h1_begin(h, "GET");
	h1_eof(h);
	h1_begin(h, "GET");   /* SIGABRT */
}
END_TEST

/* --- requests ------------------------------------------------------------------- */

static char *written(const struct h1_request *req)
{
	struct evbuffer *out = evbuffer_new();
	size_t n;
	char *s;

	evbuffer_add(out, "x", 1);   /* appends, never replaces */
	h1_write_request(out, req);
	n = evbuffer_get_length(out);
	s = malloc(n + 1);
	ck_assert_ptr_nonnull(s);
	evbuffer_remove(out, s, n);
	s[n] = '\0';
	evbuffer_free(out);
	return s;
}

START_TEST(test_request_block)
{
	static const struct h1_header base[] = {
		{ "Host", "example.com:8080" },
		{ "User-Agent", "fanoutd/1.0" },
		{ "Accept", "*/*" },
	};
	static const struct h1_header own[] = {
		{ "user-agent", "mine" },
		{ "X-Trace", "abc" },
	};
	struct h1_block *b = h1_block_new(base, 3);
	struct h1_request req = { .method = "GET", .target = "/a?b=c", .block = b };
	char *s = written(&req);

	ck_assert_str_eq(s, "xGET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\n"
	                    "User-Agent: fanoutd/1.0\r\nAccept: */*\r\n\r\n");
	free(s);
	/* the request's own headers win, by name whatever the case */
	req.headers = own;
	req.nheaders = 2;
	s = written(&req);
	ck_assert_str_eq(s, "xGET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n"
	                    "user-agent: mine\r\nX-Trace: abc\r\n\r\n");
	free(s);
	/* a name that only starts like a block's overrides nothing */
	req.headers = (const struct h1_header[]){ { "Hostx", "y" } };
	req.nheaders = 1;
	s = written(&req);
	ck_assert_str_eq(s, "xGET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\n"
	                    "User-Agent: fanoutd/1.0\r\nAccept: */*\r\nHostx: y\r\n\r\n");
	free(s);
	h1_block_free(b);
	h1_block_free(NULL);
}
END_TEST

START_TEST(test_request_length)
{
	struct h1_request req = { .method = "POST", .target = "/" };
	char *s = written(&req);

	/* POST, PUT and PATCH always carry one, even for nothing */
	ck_assert_str_eq(s, "xPOST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	free(s);
	req.method = "PATCH";
	req.body = "";
	s = written(&req);
	ck_assert_str_eq(s, "xPATCH / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	free(s);
	req.method = "PUT";
	req.body = "[1,2,3]";
	req.body_len = 7;
	s = written(&req);
	ck_assert_str_eq(s, "xPUT / HTTP/1.1\r\nContent-Length: 7\r\n\r\n[1,2,3]");
	free(s);
	/* GET and HEAD without a body: none */
	req.method = "GET";
	req.body = NULL;
	s = written(&req);
	ck_assert_str_eq(s, "xGET / HTTP/1.1\r\n\r\n");
	free(s);
	req.method = "HEAD";
	s = written(&req);
	ck_assert_str_eq(s, "xHEAD / HTTP/1.1\r\n\r\n");
	free(s);
	/* any other method with a body says so */
	req.method = "DELETE";
	req.body = "1234567890";
	req.body_len = 10;
	s = written(&req);
	ck_assert_str_eq(s, "xDELETE / HTTP/1.1\r\nContent-Length: 10\r\n\r\n1234567890");
	free(s);
}
END_TEST

START_TEST(test_request_binary_body)
{
	static const char body[] = { 'a', 0, '\r', '\n', 'b' };
	struct h1_request req = { .method = "POST", .target = "/x", .body = body,
	                          .body_len = sizeof body };
	struct evbuffer *out = evbuffer_new();
	static const char want[] = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\na\0\r\nb";

	h1_write_request(out, &req);
	ck_assert_uint_eq(evbuffer_get_length(out), sizeof want - 1);
	ck_assert(memcmp(evbuffer_pullup(out, -1), want, sizeof want - 1) == 0);
	evbuffer_free(out);
}
END_TEST

START_TEST(test_request_unsafe_aborts)
{
	static const struct h1_header bad[] = { { "X-A", "1\r\nX-Forged: 2" } };
	struct h1_request req = { .method = "GET", .target = "/", .headers = bad, .nheaders = 1 };
	struct evbuffer *out = evbuffer_new();

	h1_write_request(out, &req);   /* SIGABRT (assert) */
}
END_TEST

static Suite *h1_suite(void)
{
	Suite *s = suite_create("h1");
	TCase *ans = tcase_create("answers");
	TCase *wrong = tcase_create("what today's client gets wrong");
	TCase *life = tcase_create("exchanges");
	TCase *req = tcase_create("requests");

	tcase_add_test(ans, test_content_length);
	tcase_add_test(ans, test_chunked);
	tcase_add_test(ans, test_close_delimited);
	tcase_add_test(ans, test_closed_early);
	tcase_add_test(ans, test_no_body);
	tcase_add_test(ans, test_interim_skipped);
	tcase_add_test(ans, test_header_joining);
	tcase_add_test(ans, test_keep_alive);
	tcase_add_test(ans, test_head_caps);
	tcase_add_test(ans, test_refused);
	tcase_add_test(wrong, test_excess_not_reusable);
	tcase_add_test(wrong, test_protocol_errors);
	tcase_add_test(life, test_two_exchanges);
	tcase_add_test(life, test_begin_inside_end);
	tcase_add_test(life, test_unasked_bytes);
	tcase_add_test(life, test_cancel);
	tcase_add_test_raise_signal(life, test_begin_on_unfit_aborts, SIGABRT);
	tcase_add_test(req, test_request_block);
	tcase_add_test(req, test_request_length);
	tcase_add_test(req, test_request_binary_body);
#ifndef NDEBUG
	tcase_add_test_raise_signal(req, test_request_unsafe_aborts, SIGABRT);
#endif
	suite_add_tcase(s, ans);
	suite_add_tcase(s, wrong);
	suite_add_tcase(s, life);
	suite_add_tcase(s, req);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(h1_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
