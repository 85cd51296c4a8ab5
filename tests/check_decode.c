/* check_decode: unit tests of the Content-Encoding decoders (src/decode.c).
 * Inputs are made here with the libraries' own encoders (zlib's deflate,
 * BrotliEncoderCompress, ZSTD_compress).  Every body is fed whole, byte by
 * byte and in odd splits and must decode, or fail, the same way each time. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/encode.h>
#include <check.h>
#include <zlib.h>
#include <zstd.h>

#include "decode.h"

/* --- bodies -------------------------------------------------------------- */

struct blob {
	unsigned char *p;
	size_t len;
};

static struct blob blob_alloc(size_t len)
{
	struct blob b = { malloc(len ? len : 1), len };

	ck_assert_ptr_nonnull(b.p);
	return b;
}

static struct blob blob_mem(const char *s, size_t len)
{
	struct blob b = blob_alloc(len);

	memcpy(b.p, s, len);
	return b;
}

static struct blob blob_of(const char *s)
{
	return blob_mem(s, strlen(s));
}

/* a followed by b; frees both */
static struct blob blob_cat(struct blob a, struct blob b)
{
	struct blob c = blob_alloc(a.len + b.len);

	memcpy(c.p, a.p, a.len);
	memcpy(c.p + a.len, b.p, b.len);
	free(a.p);
	free(b.p);
	return c;
}

static struct blob blob_copy(struct blob a)
{
	struct blob c = blob_alloc(a.len);

	memcpy(c.p, a.p, a.len);
	return c;
}

/* Text from a small vocabulary (compresses well, spans many chunks) and
 * then random bytes (stored blocks, literals). */
static struct blob sample(size_t text, size_t noise)
{
	static const char *const words[] = { "fan", "out ", "proxy", " daemon",
		"\n", "gzip ", "brotli", " zstd ", "{\"ok\":true}", "deflate, " };
	struct blob b = blob_alloc(text + noise);
	uint32_t x = 12345;
	size_t off = 0, n;

	while (off < text) {
		x = x * 1103515245u + 12345u;
		n = strlen(words[(x >> 16) % 10]);
		n = n < text - off ? n : text - off;
		memcpy(b.p + off, words[(x >> 16) % 10], n);
		off += n;
	}
	for (; off < text + noise; off++) {
		x = x * 1103515245u + 12345u;
		b.p[off] = (unsigned char)(x >> 24);
	}
	return b;
}

/* zlib's deflate: bits 15 + 16 gzip, 15 zlib-wrapped, -15 raw */
static struct blob zlib_pack(struct blob in, int bits)
{
	z_stream z;
	struct blob out;

	memset(&z, 0, sizeof z);
	ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
	out = blob_alloc(deflateBound(&z, in.len) + 32);
	z.next_in = in.p;
	z.avail_in = (uInt)in.len;
	z.next_out = out.p;
	z.avail_out = (uInt)out.len;
	ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	out.len = z.total_out;
	deflateEnd(&z);
	return out;
}

static struct blob gzip_pack(struct blob in)
{
	return zlib_pack(in, 15 + 16);
}

static struct blob br_pack(struct blob in, int quality)
{
	struct blob out = blob_alloc(BrotliEncoderMaxCompressedSize(in.len));

	ck_assert(BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC,
	                                in.len, in.p, &out.len, out.p));
	return out;
}

static struct blob zstd_pack(struct blob in, int level)
{
	struct blob out = blob_alloc(ZSTD_compressBound(in.len));

	out.len = ZSTD_compress(out.p, out.len, in.p, in.len, level);
	ck_assert(!ZSTD_isError(out.len));
	return out;
}

/* A zstd frame with window log wlog (the frame header's window) */
static struct blob zstd_pack_window(struct blob in, int wlog)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	struct blob out = blob_alloc(ZSTD_compressBound(in.len));

	ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1)));
	ck_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, wlog)));
	out.len = ZSTD_compress2(c, out.p, out.len, in.p, in.len);
	ck_assert(!ZSTD_isError(out.len));
	ZSTD_freeCCtx(c);
	return out;
}

/* A zstd skippable frame (RFC 8878 3.1.2) of n payload bytes */
static struct blob zstd_skippable(size_t n)
{
	struct blob b = blob_alloc(8 + n);

	memcpy(b.p, "\x50\x2a\x4d\x18", 4);
	b.p[4] = (unsigned char)n;
	b.p[5] = (unsigned char)(n >> 8);
	b.p[6] = 0;
	b.p[7] = 0;
	memset(b.p + 8, 'x', n);
	return b;
}

/* --- decoding ------------------------------------------------------------- */

struct sink {
	unsigned char *p;
	size_t len, cap;
	size_t limit;        /* refuse a piece past this total (0: none) */
	size_t seen;         /* bytes offered, the refused piece too */
	size_t calls;
	bool discard;        /* count only */
};

static int collect(void *arg, const char *data, size_t len)
{
	struct sink *k = arg;

	ck_assert_uint_gt(len, 0);
	ck_assert_uint_le(len, DECODE_CHUNK);
	k->calls++;
	k->seen += len;
	if (k->limit && k->len + len > k->limit)
		return -1;
	if (!k->discard) {
		if (k->len + len > k->cap) {
			k->cap = (k->len + len) * 2;
			k->p = realloc(k->p, k->cap);
			ck_assert_ptr_nonnull(k->p);
		}
		memcpy(k->p + k->len, data, len);
	}
	k->len += len;
	return 0;
}

/* Piece sizes, cycled; {0} feeds it whole. */
struct split {
	const char *name;
	size_t steps[6];
	size_t n;
};

static const struct split splits[] = {
	{ "whole", { 0 }, 1 },
	{ "bytes", { 1 }, 1 },
	{ "odd", { 7, 1, 13, 4093, 2, 16391 }, 6 },
	{ "pairs", { 2 }, 1 },
};
#define NSPLITS (sizeof splits / sizeof splits[0])

struct outcome {
	enum decode_result result;
	bool at_finish;          /* the result is decode_finish's */
	char error[128];
	struct sink out;
};

static void outcome_free(struct outcome *o)
{
	free(o->out.p);
}

/* Feed in to a fresh decoder for value, as sp says, then finish: the first
 * result that is not DECODE_OK (or finish's), and that it sticks. */
static void run(struct outcome *o, const char *value, struct blob in,
                const struct split *sp, size_t limit)
{
	struct decoder *d = decode_new(value, strlen(value));
	size_t off = 0, n, k = 0, calls;

	ck_assert_msg(d != NULL, "no decoder for \"%s\"", value);
	memset(o, 0, sizeof *o);
	o->out.limit = limit;
	o->out.discard = limit > 0;
	o->result = DECODE_OK;
	while (off < in.len && o->result == DECODE_OK) {
		n = sp->steps[k++ % sp->n];
		n = n == 0 || n > in.len - off ? in.len - off : n;
		o->result = decode_feed(d, (const char *)in.p + off, n, collect, &o->out);
		off += n;
	}
	if (o->result == DECODE_OK) {
		o->result = decode_finish(d, collect, &o->out);
		o->at_finish = true;
	}
	snprintf(o->error, sizeof o->error, "%s", decode_error(d));
	if (o->result != DECODE_OK) {
		/* sticky, and the sink hears nothing more */
		calls = o->out.calls;
		ck_assert_int_eq(decode_feed(d, "x", 1, collect, &o->out), o->result);
		ck_assert_int_eq(decode_finish(d, collect, &o->out), o->result);
		ck_assert_uint_eq(o->out.calls, calls);
	}
	ck_assert_int_eq(o->result == DECODE_ERROR, o->error[0] != '\0');
	decode_free(d);
}

/* value decodes in to want, whatever the split */
static void check_decodes(const char *value, struct blob in, struct blob want)
{
	struct outcome o;
	size_t s;

	for (s = 0; s < NSPLITS; s++) {
		run(&o, value, in, &splits[s], 0);
		ck_assert_msg(o.result == DECODE_OK, "%s, %s: result %d (%s)", value,
		              splits[s].name, (int)o.result, o.error);
		ck_assert_msg(o.out.len == want.len, "%s, %s: %zu bytes, want %zu", value,
		              splits[s].name, o.out.len, want.len);
		ck_assert(want.len == 0 || memcmp(o.out.p, want.p, want.len) == 0);
		outcome_free(&o);
	}
}

/* value fails on in with the error message msg, at decode_finish or at a
 * feed, whatever the split; what came out before is a prefix of want
 * (and, for a fault at the end, all of it) */
static void check_fails(const char *value, struct blob in, const char *msg,
                        bool at_finish, struct blob want)
{
	struct outcome o;
	size_t s;

	for (s = 0; s < NSPLITS; s++) {
		run(&o, value, in, &splits[s], 0);
		ck_assert_msg(o.result == DECODE_ERROR, "%s, %s: result %d", value,
		              splits[s].name, (int)o.result);
		ck_assert_msg(strcmp(o.error, msg) == 0, "%s, %s: error \"%s\", want \"%s\"",
		              value, splits[s].name, o.error, msg);
		ck_assert_int_eq(o.at_finish, at_finish);
		ck_assert_uint_le(o.out.len, want.len);
		ck_assert(o.out.len == 0 || memcmp(o.out.p, want.p, o.out.len) == 0);
		outcome_free(&o);
	}
}

static const struct blob nothing = { NULL, 0 };

/* --- round trips ---------------------------------------------------------- */

START_TEST(test_gzip)
{
	struct blob text = sample(200000, 20000), gz = gzip_pack(text);
	struct blob zl = zlib_pack(text, 15);

	check_decodes("gzip", gz, text);
	check_decodes("x-gzip", gz, text);
	check_decodes("GZip", gz, text);
	check_decodes(" \tgzip\t ", gz, text);
	check_decodes("gzip, identity", gz, text);
	/* 15 + 32 takes a zlib header too */
	check_decodes("gzip", zl, text);
	free(text.p);
	free(gz.p);
	free(zl.p);
}
END_TEST

START_TEST(test_deflate)
{
	struct blob text = sample(200000, 20000), zl = zlib_pack(text, 15);
	struct blob raw = zlib_pack(text, -15), small = blob_of("a");
	struct blob small_zl = zlib_pack(small, 15), small_raw = zlib_pack(small, -15);

	check_decodes("deflate", zl, text);
	check_decodes("deflate", raw, text);
	check_decodes("Deflate", small_zl, small);
	check_decodes("deflate", small_raw, small);
	free(text.p);
	free(zl.p);
	free(raw.p);
	free(small.p);
	free(small_zl.p);
	free(small_raw.p);
}
END_TEST

START_TEST(test_br)
{
	struct blob text = sample(200000, 20000), br = br_pack(text, 5);
	struct blob br11 = br_pack(text, 11);

	check_decodes("br", br, text);
	check_decodes("BR", br11, text);
	free(text.p);
	free(br.p);
	free(br11.p);
}
END_TEST

START_TEST(test_zstd)
{
	struct blob text = sample(200000, 20000), zs = zstd_pack(text, 3);
	struct blob a = blob_of("first frame, "), b = blob_of("second frame");
	struct blob two = blob_cat(zstd_pack(a, 1), zstd_skippable(300));
	struct blob both = blob_cat(blob_copy(a), blob_copy(b));

	check_decodes("zstd", zs, text);
	/* concatenated frames, a skippable one between them */
	two = blob_cat(two, zstd_pack(b, 19));
	check_decodes("zstd", two, both);
	free(text.p);
	free(zs.p);
	free(a.p);
	free(b.p);
	free(two.p);
	free(both.p);
}
END_TEST

/* Output that ends just past a chunk: the decoders hold the rest after
 * taking the last input byte, and must still hand it on. */
START_TEST(test_chunk_edges)
{
	struct blob zeros = blob_alloc(2 * DECODE_CHUNK), body, want;
	size_t n;

	memset(zeros.p, 0, zeros.len);
	for (n = DECODE_CHUNK - 8; n < DECODE_CHUNK + 300; n++) {
		want = zeros;
		want.len = n;
		body = zlib_pack(want, -15);
		check_decodes("deflate", body, want);
		free(body.p);
		body = gzip_pack(want);
		check_decodes("gzip", body, want);
		free(body.p);
		body = br_pack(want, 5);
		check_decodes("br", body, want);
		free(body.p);
		body = zstd_pack(want, 3);
		check_decodes("zstd", body, want);
		free(body.p);
	}
	free(zeros.p);
}
END_TEST

START_TEST(test_gzip_members)
{
	struct blob a = sample(30000, 100), b = blob_of("and the second member");
	struct blob body = blob_cat(gzip_pack(a), gzip_pack(b));
	struct blob want = blob_cat(blob_copy(a), blob_copy(b));

	/* and an empty member last, as gzip -d takes */
	body = blob_cat(body, gzip_pack(nothing));
	check_decodes("gzip", body, want);
	free(a.p);
	free(b.p);
	free(body.p);
	free(want.p);
}
END_TEST

START_TEST(test_list)
{
	struct blob text = sample(100000, 5000), gz = gzip_pack(text);
	struct blob gz_br = br_pack(gz, 5), four;

	/* applied gzip first, then br: undone br first */
	check_decodes("gzip, br", gz_br, text);
	check_decodes("gzip,identity,,br", gz_br, text);
	four = zstd_pack(gz_br, 3);
	{
		struct blob t = four;

		four = zlib_pack(t, -15);
		free(t.p);
	}
	check_decodes("gzip, br, zstd, deflate", four, text);
	free(text.p);
	free(gz.p);
	free(gz_br.p);
	free(four.p);
}
END_TEST

/* --- the header value ----------------------------------------------------- */

static void check_name(const char *value, const char *want)
{
	struct decoder *d = decode_new(value, strlen(value));

	ck_assert_msg(d != NULL, "no decoder for \"%s\"", value);
	ck_assert_str_eq(decode_name(d), want);
	ck_assert_str_eq(decode_error(d), "");
	decode_free(d);
}

START_TEST(test_names)
{
	check_name("gzip", "gzip");
	check_name("x-gzip", "gzip");
	check_name("X-GZIP", "gzip");
	check_name("GZip ,BR", "gzip, br");
	check_name("identity, zstd", "zstd");
	check_name(", deflate ,", "deflate");
	check_name("deflate, deflate, deflate, deflate", "deflate, deflate, deflate, deflate");
	check_name("br, identity, br, identity, br, br", "br, br, br, br");
}
END_TEST

START_TEST(test_no_decoder)
{
	static const char *const values[] = {
		"", " ", ",", " , ,", "identity", "IDENTITY", "identity, identity",
		"compress", "x-compress", "gzip, compress", "compress, gzip", "gzip;q=1",
		"gzi", "gzipx", "g zip", "br br", "gzip, br, zstd, deflate, gzip",
	};
	size_t i;

	for (i = 0; i < sizeof values / sizeof values[0]; i++)
		ck_assert_msg(decode_new(values[i], strlen(values[i])) == NULL,
		              "a decoder for \"%s\"", values[i]);
	/* the length is what counts, not a NUL */
	ck_assert_ptr_null(decode_new("gzip", 3));
	ck_assert_ptr_null(decode_new("gzip\0", 5));
	ck_assert_ptr_null(decode_new(NULL, 0));
	decode_free(NULL);
}
END_TEST

/* --- faults --------------------------------------------------------------- */

START_TEST(test_empty_body)
{
	static const char *const values[] = { "gzip", "deflate", "br", "zstd", "gzip, br" };
	struct outcome o;
	size_t i;

	/* as httpx: no bytes at all is an empty body, whatever the coding */
	for (i = 0; i < sizeof values / sizeof values[0]; i++) {
		run(&o, values[i], nothing, &splits[0], 0);
		ck_assert_int_eq(o.result, DECODE_OK);
		ck_assert_uint_eq(o.out.calls, 0);
		outcome_free(&o);
	}
}
END_TEST

/* in less its last cut bytes */
static struct blob cut(struct blob in, size_t cut_bytes)
{
	struct blob c = blob_copy(in);

	c.len -= cut_bytes;
	return c;
}

START_TEST(test_truncated)
{
	struct blob text = sample(50000, 2000);
	struct blob gz = gzip_pack(text), zl = zlib_pack(text, 15), raw = zlib_pack(text, -15);
	struct blob br = br_pack(text, 5), zs = zstd_pack(text, 3), t;

	t = cut(gz, 1);
	check_fails("gzip", t, "gzip: truncated stream", true, text);
	free(t.p);
	t = cut(gz, gz.len / 2);
	check_fails("gzip", t, "gzip: truncated stream", true, text);
	free(t.p);
	t = cut(zl, 1);
	check_fails("deflate", t, "deflate: truncated stream", true, text);
	free(t.p);
	t = cut(raw, 1);
	check_fails("deflate", t, "deflate: truncated stream", true, text);
	free(t.p);
	t = cut(zl, zl.len - 1);             /* one byte: the sniff never ended */
	check_fails("deflate", t, "deflate: truncated stream", true, text);
	free(t.p);
	t = cut(br, 1);
	check_fails("br", t, "br: truncated stream", true, text);
	free(t.p);
	t = cut(zs, 1);
	check_fails("zstd", t, "zstd: truncated stream", true, text);
	free(t.p);
	t = cut(zs, zs.len - 2);             /* inside the magic */
	check_fails("zstd", t, "zstd: truncated stream", true, text);
	free(t.p);
	t = cut(zs, zs.len - 5);             /* inside the frame header */
	check_fails("zstd", t, "zstd: truncated stream", true, text);
	free(t.p);
	t = blob_cat(blob_copy(zs), blob_of("\x28\xb5\x2f"));
	check_fails("zstd", t, "zstd: truncated stream", true, text);
	free(t.p);
	/* the inner gzip cut short inside a whole br stream */
	t = cut(gz, 5);
	{
		struct blob wrapped = br_pack(t, 5);

		check_fails("gzip, br", wrapped, "gzip: truncated stream", true, text);
		free(wrapped.p);
	}
	free(t.p);
	/* a member, then only the first byte of a next one's magic */
	t = blob_cat(blob_copy(gz), blob_of("\x1f"));
	check_fails("gzip", t, "gzip: truncated stream", true, text);
	free(t.p);
	free(text.p);
	free(gz.p);
	free(zl.p);
	free(raw.p);
	free(br.p);
	free(zs.p);
}
END_TEST

START_TEST(test_corrupt)
{
	struct blob text = sample(50000, 2000), gz = gzip_pack(text), bad;
	struct blob junk = blob_of("this is not compressed at all");

	check_fails("gzip", junk, "gzip: invalid data (incorrect header check)", false, nothing);
	check_fails("x-gzip", junk, "gzip: invalid data (incorrect header check)", false, nothing);
	/* not a zlib header, so raw deflate: block type 3 does not exist */
	bad = blob_of("\xff\xff\xff");
	check_fails("deflate", bad, "deflate: invalid data (invalid block type)", false, nothing);
	free(bad.p);
	/* a zlib header asking for a preset dictionary */
	bad = blob_mem("\x78\xbb\x00\x00\x00\x01", 6);
	check_fails("deflate", bad, "deflate: invalid data (needs a preset dictionary)", false,
	            nothing);
	free(bad.p);
	/* brotli window bits 0b0010001: the large-window marker, not allowed */
	bad = blob_mem("\x11\x00\x00\x00", 4);
	check_fails("br", bad, "br: invalid data", false, nothing);
	free(bad.p);
	check_fails("zstd", junk, "zstd: invalid data (not a zstd frame)", false, nothing);
	/* a pre-1.0 (v0.6) frame: libzstd reads them, RFC 8878 does not */
	bad = blob_mem("\x26\xb5\x2f\xfd\x04\x26\x68\x52\x16\x06\x8b", 11);
	check_fails("zstd", bad, "zstd: invalid data (not a zstd frame)", false, nothing);
	free(bad.p);
	/* a frame whose descriptor, window and content size read as a
	 * skippable frame's magic: libzstd's single-pass shortcut mistook it
	 * for one when the header came split */
	bad = blob_mem("\x28\xb5\x2f\xfd\x50\x2a\x4d\x18\x03\x00\x00\x00\x61\x62\x63"
	               "\x28\xb5\x2f\xfd\x04\x28\x58\xe1\x01\x00\x6d\x6d\x3f\x6d\x6d", 30);
	check_fails("zstd", bad, "zstd: invalid data (Data corruption detected)", false, nothing);
	free(bad.p);
	/* the CRC-32 in the trailer, then the length */
	bad = blob_copy(gz);
	bad.p[bad.len - 5] ^= 0x01;
	check_fails("gzip", bad, "gzip: invalid data (incorrect data check)", false, text);
	bad.p[bad.len - 5] ^= 0x01;
	bad.p[bad.len - 1] ^= 0x01;
	check_fails("gzip", bad, "gzip: invalid data (incorrect length check)", false, text);
	free(bad.p);
	/* the inner coding's fault names the inner coding */
	bad = br_pack(junk, 5);
	check_fails("gzip, br", bad, "gzip: invalid data (incorrect header check)", false,
	            nothing);
	free(bad.p);
	free(text.p);
	free(gz.p);
	free(junk.p);
}
END_TEST

START_TEST(test_zstd_window)
{
	struct blob zeros = blob_alloc(20u << 20), big, ok;

	memset(zeros.p, 0, zeros.len);
	/* RFC 9659's 8 MiB is taken ... */
	ok = zstd_pack_window(zeros, 23);
	check_decodes("zstd", ok, zeros);
	/* ... 16 MiB is not */
	big = zstd_pack_window(zeros, 24);
	check_fails("zstd", big, "zstd: invalid data (window over 8 MiB, see RFC 9659)", false,
	            zeros);
	free(zeros.p);
	free(big.p);
	free(ok.p);
}
END_TEST

/* --- after the end ---------------------------------------------------------- */

START_TEST(test_trailing)
{
	struct blob text = sample(50000, 2000), t;
	struct blob gz = gzip_pack(text), zl = zlib_pack(text, 15), raw = zlib_pack(text, -15);
	struct blob br = br_pack(text, 5), zs = zstd_pack(text, 3);

	/* all the data comes out, then the error */
	t = blob_cat(blob_copy(gz), blob_of("junk"));
	check_fails("gzip", t, "gzip: data after the end of the stream", false, text);
	free(t.p);
	t = blob_cat(blob_copy(gz), blob_of("\x1f\x8a"));
	check_fails("gzip", t, "gzip: data after the end of the stream", false, text);
	free(t.p);
	t = blob_cat(blob_copy(gz), blob_alloc(1));
	t.p[t.len - 1] = 0;
	check_fails("gzip", t, "gzip: data after the end of the stream", false, text);
	free(t.p);
	/* a second member that is no gzip member past its magic */
	t = blob_cat(blob_copy(gz), blob_of("\x1f\x8b\x07\x01"));
	check_fails("gzip", t, "gzip: invalid data (unknown compression method)", false, text);
	free(t.p);
	/* deflate and br streams do not concatenate */
	t = blob_cat(blob_copy(zl), blob_copy(zl));
	check_fails("deflate", t, "deflate: data after the end of the stream", false, text);
	free(t.p);
	t = blob_cat(blob_copy(raw), blob_of("x"));
	check_fails("deflate", t, "deflate: data after the end of the stream", false, text);
	free(t.p);
	t = blob_cat(blob_copy(br), blob_copy(br));
	check_fails("br", t, "br: data after the end of the stream", false, text);
	free(t.p);
	t = blob_cat(blob_copy(zs), blob_of("junk"));
	check_fails("zstd", t, "zstd: data after the end of the stream", false, text);
	free(t.p);
	free(text.p);
	free(gz.p);
	free(zl.p);
	free(raw.p);
	free(br.p);
	free(zs.p);
}
END_TEST

/* --- the size cap ----------------------------------------------------------- */

#define BOMB_SIZE (64u << 20)
#define CAP (1u << 20)

static void check_stops(const char *value, struct blob body)
{
	struct outcome o;
	size_t s;

	for (s = 0; s < NSPLITS; s++) {
		if (splits[s].steps[0] == 1 && body.len > 200000)
			continue;        /* byte by byte is slow and proves nothing more */
		run(&o, value, body, &splits[s], CAP);
		ck_assert_msg(o.result == DECODE_STOPPED, "%s, %s: result %d (%s)", value,
		              splits[s].name, (int)o.result, o.error);
		ck_assert_msg(o.out.seen <= CAP + DECODE_CHUNK, "%s, %s: %zu bytes seen", value,
		              splits[s].name, o.out.seen);
		ck_assert_uint_le(o.out.len, CAP);
		ck_assert_uint_gt(o.out.len, CAP - DECODE_CHUNK);
		outcome_free(&o);
	}
}

START_TEST(test_bomb)
{
	struct blob zeros = blob_alloc(BOMB_SIZE), gz, zl, br, zs, gz_gz;

	memset(zeros.p, 0, zeros.len);
	gz = gzip_pack(zeros);
	zl = zlib_pack(zeros, 15);
	br = br_pack(zeros, 1);
	zs = zstd_pack(zeros, 3);
	gz_gz = gzip_pack(gz);
	free(zeros.p);
	check_stops("gzip", gz);
	check_stops("deflate", zl);
	check_stops("br", br);
	check_stops("zstd", zs);
	check_stops("gzip, gzip", gz_gz);
	free(gz.p);
	free(zl.p);
	free(br.p);
	free(zs.p);
	free(gz_gz.p);
}
END_TEST

static int refuse(void *arg, const char *data, size_t len)
{
	(void)data;
	(void)len;
	++*(int *)arg;
	return -1;
}

START_TEST(test_stop_at_once)
{
	struct blob text = sample(100000, 0), gz = gzip_pack(text);
	struct decoder *d = decode_new("gzip", 4);
	int calls = 0;

	ck_assert_int_eq(decode_feed(d, (const char *)gz.p, gz.len, refuse, &calls),
	                 DECODE_STOPPED);
	ck_assert_int_eq(calls, 1);
	ck_assert_int_eq(decode_finish(d, refuse, &calls), DECODE_STOPPED);
	ck_assert_int_eq(calls, 1);
	ck_assert_str_eq(decode_error(d), "");
	decode_free(d);
	free(text.p);
	free(gz.p);
}
END_TEST

START_TEST(test_free_unfinished)
{
	struct blob text = sample(100000, 0), zs = zstd_pack(text, 3);
	static const char *const values[] = { "gzip", "deflate", "br", "zstd" };
	struct sink k = { 0 };
	struct decoder *d;
	size_t i;

	/* freed half way (or never fed): nothing leaks (ASan) */
	for (i = 0; i < 4; i++)
		decode_free(decode_new(values[i], strlen(values[i])));
	d = decode_new("zstd", 4);
	ck_assert_int_eq(decode_feed(d, (const char *)zs.p, zs.len / 2, collect, &k), DECODE_OK);
	decode_free(d);
	free(k.p);
	free(text.p);
	free(zs.p);
}
END_TEST

static Suite *decode_suite(void)
{
	Suite *s = suite_create("decode");
	TCase *trip = tcase_create("round trip");
	TCase *value = tcase_create("header value");
	TCase *fault = tcase_create("faults");
	TCase *cap = tcase_create("size cap");

	tcase_add_test(trip, test_gzip);
	tcase_add_test(trip, test_deflate);
	tcase_add_test(trip, test_br);
	tcase_add_test(trip, test_zstd);
	tcase_add_test(trip, test_chunk_edges);
	tcase_add_test(trip, test_gzip_members);
	tcase_add_test(trip, test_list);
	tcase_add_test(value, test_names);
	tcase_add_test(value, test_no_decoder);
	tcase_add_test(fault, test_empty_body);
	tcase_add_test(fault, test_truncated);
	tcase_add_test(fault, test_corrupt);
	tcase_add_test(fault, test_zstd_window);
	tcase_add_test(fault, test_trailing);
	tcase_add_test(cap, test_bomb);
	tcase_add_test(cap, test_stop_at_once);
	tcase_add_test(cap, test_free_unfinished);
	tcase_set_timeout(cap, 120);
	tcase_set_timeout(trip, 120);
	tcase_set_timeout(fault, 120);
	suite_add_tcase(s, trip);
	suite_add_tcase(s, value);
	suite_add_tcase(s, fault);
	suite_add_tcase(s, cap);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(decode_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
