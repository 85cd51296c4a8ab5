/* decode: the Content-Encoding decoders (see decode.h).  A decoder is a
 * chain of up to DECODE_MAX_CODINGS stages, the last-applied coding first;
 * each stage decodes into a DECODE_CHUNK buffer on the stack and hands it
 * to the next stage or, from the last, to the caller's sink, so nothing
 * here grows with the output.  It owns the zlib, brotli and zstd state. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "decode.h"
#include "xalloc.h"

/* RFC 9659: decoders must support zstd windows up to 8 MiB and may refuse
 * larger ones; zstd's own default (128 MiB) is too much per fetch. */
#define ZSTD_WINDOW_LOG_MAX 23

/* Bytes handed to zlib per call: its counters are uInt. */
#define ZLIB_MAX_IN (1u << 30)

enum coding {
	CODING_GZIP,
	CODING_DEFLATE,
	CODING_BR,
	CODING_ZSTD,
};

static const char *const coding_names[] = {
	[CODING_GZIP] = "gzip",
	[CODING_DEFLATE] = "deflate",
	[CODING_BR] = "br",
	[CODING_ZSTD] = "zstd",
};

/* Where a stage is in its input.  Only EMPTY and ENDED may end the body. */
enum stage_state {
	STAGE_EMPTY,     /* no byte yet: an empty body is fine (as httpx) */
	STAGE_SNIFF,     /* deflate: first byte held until the second tells
	                  * a zlib header from raw deflate */
	STAGE_INSIDE,    /* inside a stream (member, frame) */
	STAGE_ENDED,     /* a complete stream decoded, nothing after it yet */
	STAGE_HEADER,    /* gzip: after a member, the 1f of the next seen;
	                  * zstd: a frame's header being gathered */
};

struct stage {
	enum coding coding;
	enum stage_state state;
	unsigned char held[18];    /* deflate's first byte (STAGE_SNIFF), a
	                            * zstd frame's header (STAGE_HEADER) */
	size_t nheld;
	unsigned frames;           /* zstd: frames completed */
	union {
		z_stream z;                 /* gzip, deflate */
		BrotliDecoderState *br;
		ZSTD_DStream *zstd;
	} u;
};

struct decoder {
	struct stage stages[DECODE_MAX_CODINGS];   /* undo order */
	size_t n;
	enum decode_result result;   /* sticky once not DECODE_OK */
	decode_sink_fn sink;         /* of the current call */
	void *arg;
	char name[DECODE_MAX_CODINGS * sizeof ", deflate"];
	char error[128];
};

static enum decode_result stage_feed(struct decoder *d, size_t i,
                                     const unsigned char *in, size_t len);

/* --- parsing the header value ------------------------------------------- */

static const struct {
	const char *token;
	int coding;                  /* -1: identity */
} tokens[] = {
	{ "gzip", CODING_GZIP },
	{ "x-gzip", CODING_GZIP },   /* RFC 9110 8.4.1.3: same as gzip */
	{ "deflate", CODING_DEFLATE },
	{ "br", CODING_BR },
	{ "zstd", CODING_ZSTD },
	{ "identity", -1 },
};

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* The coding s[0..len) names, -1 for identity, -2 if unknown. */
static int lookup_coding(const char *s, size_t len)
{
	size_t k;

	for (k = 0; k < sizeof tokens / sizeof tokens[0]; k++)
		if (strlen(tokens[k].token) == len && strncasecmp(s, tokens[k].token, len) == 0)
			return tokens[k].coding;
	return -2;
}

/* The codings of a list in the order listed; -1 if one is unknown or
 * there are too many. */
static int parse_codings(const char *value, size_t len, enum coding *out, size_t *n)
{
	size_t pos = 0, start, end;
	int c;

	*n = 0;
	while (pos <= len) {
		start = pos;
		while (pos < len && value[pos] != ',')
			pos++;
		end = pos++;
		while (start < end && is_ows(value[start]))
			start++;
		while (end > start && is_ows(value[end - 1]))
			end--;
		if (start == end)
			continue;            /* an empty list element (RFC 9110 5.6.1) */
		c = lookup_coding(value + start, end - start);
		if (c == -2 || (c >= 0 && *n == DECODE_MAX_CODINGS))
			return -1;
		if (c >= 0)
			out[(*n)++] = (enum coding)c;
	}
	return 0;
}

/* --- failing and emitting ------------------------------------------------ */

static enum decode_result fail(struct decoder *d, size_t i, const char *what,
                               const char *detail)
{
	const char *name = coding_names[d->stages[i].coding];

	if (detail && detail[0])
		snprintf(d->error, sizeof d->error, "%s: %s (%s)", name, what, detail);
	else
		snprintf(d->error, sizeof d->error, "%s: %s", name, what);
	return DECODE_ERROR;
}

/* n bytes stage i decoded go on to the next stage, or from the last to the
 * caller's sink. */
static enum decode_result emit(struct decoder *d, size_t i, const char *buf, size_t n)
{
	if (n == 0)
		return DECODE_OK;
	if (i + 1 < d->n)
		return stage_feed(d, i + 1, (const unsigned char *)buf, n);
	return d->sink(d->arg, buf, n) < 0 ? DECODE_STOPPED : DECODE_OK;
}

/* --- gzip and deflate (zlib) --------------------------------------------- */

/* zlib and brotli allocate through xalloc, so running out of memory inside
 * them aborts like everywhere else instead of passing for bad data. */
static voidpf zlib_alloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	return xcalloc(items, size);
}

static void zlib_free(voidpf opaque, voidpf p)
{
	(void)opaque;
	free(p);
}

static void zlib_init(struct stage *s)
{
	/* gzip: 15 + 32 detects a gzip or zlib header; deflate starts as zlib
	 * and becomes raw deflate (-15) if the sniff says so */
	int bits = s->coding == CODING_GZIP ? 15 + 32 : 15;

	s->u.z.zalloc = zlib_alloc;
	s->u.z.zfree = zlib_free;
	if (inflateInit2(&s->u.z, bits) != Z_OK)
		abort();        /* only Z_MEM_ERROR (aborted already) or a bad build */
}

/* Inflate from in until it is used up or the stream ends; *used: how much
 * was taken. */
static enum decode_result zlib_run(struct decoder *d, size_t i, const unsigned char *in,
                                   size_t len, size_t *used)
{
	struct stage *s = &d->stages[i];
	char out[DECODE_CHUNK];
	enum decode_result r;
	int rc;

	s->u.z.next_in = (unsigned char *)in;
	s->u.z.avail_in = len < ZLIB_MAX_IN ? (uInt)len : ZLIB_MAX_IN;
	s->state = STAGE_INSIDE;
	do {
		s->u.z.next_out = (unsigned char *)out;
		s->u.z.avail_out = sizeof out;
		rc = inflate(&s->u.z, Z_NO_FLUSH);
		*used = (size_t)(s->u.z.next_in - in);
		/* what came before a fault is good data: hand it on first */
		r = emit(d, i, out, sizeof out - s->u.z.avail_out);
		if (r != DECODE_OK)
			return r;
		if (rc == Z_STREAM_END) {
			s->state = STAGE_ENDED;
			return DECODE_OK;
		}
		if (rc == Z_NEED_DICT)
			return fail(d, i, "invalid data", "needs a preset dictionary");
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return fail(d, i, "invalid data", s->u.z.msg);
	} while (s->u.z.avail_out == 0);    /* zlib may hold more output */
	return DECODE_OK;
}

/* After a stream: nothing may follow a deflate stream, and only another
 * member a gzip member (gzip -d reads them all) — its magic 1f 8b, checked
 * here since it may come split, then replayed into the reset inflate.
 * *used: bytes of in taken. */
static enum decode_result zlib_after_end(struct decoder *d, size_t i,
                                         const unsigned char *in, size_t len,
                                         size_t *used)
{
	static const unsigned char magic[2] = { 0x1f, 0x8b };
	struct stage *s = &d->stages[i];
	size_t seen = s->state == STAGE_HEADER ? 1 : 0, n;

	*used = 0;
	if (s->coding != CODING_GZIP)
		return fail(d, i, "data after the end of the stream", NULL);
	while (seen < 2 && *used < len) {
		if (in[*used] != magic[seen])
			return fail(d, i, "data after the end of the stream", NULL);
		seen++;
		(*used)++;
	}
	if (seen < 2) {
		s->state = STAGE_HEADER;
		return DECODE_OK;
	}
	inflateReset(&s->u.z);
	return zlib_run(d, i, magic, sizeof magic, &n);
}

/* deflate: the first two bytes decide, as httpx does by trying zlib first,
 * whether this is zlib-wrapped (RFC 1950 header: method 8, window at most
 * 32 KiB, check bits) or raw deflate (RFC 1951).  in holds at least one
 * byte; *used: bytes taken. */
static enum decode_result deflate_sniff(struct decoder *d, size_t i,
                                        const unsigned char *in, size_t *used)
{
	struct stage *s = &d->stages[i];
	unsigned cmf, flg;
	size_t n;

	if (s->state == STAGE_EMPTY) {
		s->held[0] = in[0];
		s->state = STAGE_SNIFF;
		*used = 1;
		return DECODE_OK;
	}
	*used = 0;
	cmf = s->held[0];
	flg = in[0];
	if ((cmf & 0x0f) != Z_DEFLATED || (cmf >> 4) > 7 || ((cmf << 8) | flg) % 31 != 0)
		inflateReset2(&s->u.z, -15);
	return zlib_run(d, i, s->held, 1, &n);
}

static enum decode_result zlib_feed(struct decoder *d, size_t i, const unsigned char *in,
                                    size_t len)
{
	struct stage *s = &d->stages[i];
	enum decode_result r = DECODE_OK;
	size_t used;

	while (len > 0 && r == DECODE_OK) {
		if (s->coding == CODING_DEFLATE &&
		    (s->state == STAGE_EMPTY || s->state == STAGE_SNIFF))
			r = deflate_sniff(d, i, in, &used);
		else if (s->state == STAGE_ENDED || s->state == STAGE_HEADER)
			r = zlib_after_end(d, i, in, len, &used);
		else
			r = zlib_run(d, i, in, len, &used);
		in += used;
		len -= used;
	}
	return r;
}

/* --- br (brotli) --------------------------------------------------------- */

static void *br_alloc(void *opaque, size_t size)
{
	(void)opaque;
	return xmalloc(size);
}

static void br_free(void *opaque, void *p)
{
	(void)opaque;
	free(p);
}

static enum decode_result br_feed(struct decoder *d, size_t i, const unsigned char *in,
                                  size_t len)
{
	struct stage *s = &d->stages[i];
	char out[DECODE_CHUNK];
	size_t avail_out;
	uint8_t *next_out;
	enum decode_result r;
	BrotliDecoderResult rc;

	if (s->state == STAGE_ENDED)
		return fail(d, i, "data after the end of the stream", NULL);
	s->state = STAGE_INSIDE;
	for (;;) {
		avail_out = sizeof out;
		next_out = (uint8_t *)out;
		rc = BrotliDecoderDecompressStream(s->u.br, &len, &in, &avail_out, &next_out, NULL);
		r = emit(d, i, out, sizeof out - avail_out);
		if (r != DECODE_OK)
			return r;
		switch (rc) {
		case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
			continue;
		case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
			return DECODE_OK;
		case BROTLI_DECODER_RESULT_SUCCESS:
			s->state = STAGE_ENDED;
			/* a brotli stream cannot be followed by another */
			return len ? fail(d, i, "data after the end of the stream", NULL) : DECODE_OK;
		default:
			return fail(d, i, "invalid data", NULL);
		}
	}
}

/* --- zstd ---------------------------------------------------------------- */

static enum decode_result zstd_fail(struct decoder *d, size_t i, size_t ret)
{
	switch (ZSTD_getErrorCode(ret)) {
	case ZSTD_error_memory_allocation:
		abort();                 /* the out-of-memory policy (xalloc.h) */
	case ZSTD_error_frameParameter_windowTooLarge:
		return fail(d, i, "invalid data", "window over 8 MiB, see RFC 9659");
	default:
		return fail(d, i, "invalid data", ZSTD_getErrorName(ret));
	}
}

/* RFC 8878's frame magic or a skippable frame's.  libzstd also reads the
 * pre-1.0 "legacy" formats, which are not the zstd content coding. */
static bool zstd_magic_ok(const unsigned char *m)
{
	return memcmp(m, "\x28\xb5\x2f\xfd", 4) == 0 ||
	       ((m[0] & 0xf0) == 0x50 && memcmp(m + 1, "\x2a\x4d\x18", 3) == 0);
}

/* The size of the frame header h starts (5 bytes of it known): magic,
 * descriptor, window, dictionary id, content size (RFC 8878 3.1.1.1); a
 * skippable frame's magic and size. */
static size_t zstd_header_size(const unsigned char *h)
{
	static const size_t dict_id[4] = { 0, 1, 2, 4 }, content_size[4] = { 0, 2, 4, 8 };
	unsigned fhd = h[4];
	bool single = fhd & 0x20;

	if (h[0] != 0x28)
		return 8;
	return 5 + !single + dict_id[fhd & 3] +
	       (fhd >> 6 == 0 ? (size_t)single : content_size[fhd >> 6]);
}

/* Decode from in until it is used up or a frame ends (ZSTD_decompressStream
 * returns 0 when one is complete and flushed, and stops there); *used: how
 * much was taken. */
static enum decode_result zstd_run(struct decoder *d, size_t i, const unsigned char *in,
                                   size_t len, size_t *used)
{
	struct stage *s = &d->stages[i];
	char out[DECODE_CHUNK];
	ZSTD_inBuffer zin = { in, len, 0 };
	ZSTD_outBuffer zout;
	enum decode_result r;
	size_t ret;

	s->state = STAGE_INSIDE;
	do {
		zout = (ZSTD_outBuffer){ out, sizeof out, 0 };
		ret = ZSTD_decompressStream(s->u.zstd, &zout, &zin);
		*used = zin.pos;
		if (ZSTD_isError(ret))
			return zstd_fail(d, i, ret);
		r = emit(d, i, out, zout.pos);
		if (r != DECODE_OK)
			return r;
		if (ret == 0) {
			s->frames++;
			s->state = STAGE_ENDED;
			return DECODE_OK;
		}
	} while (zin.pos < zin.size || zout.pos == zout.size);   /* or more output */
	return DECODE_OK;
}

/* A frame starts: its header is gathered here and given to libzstd in one
 * call.  Given a header split across calls, libzstd 1.5's single-pass
 * shortcut sizes the frame from the second call's bytes, not the header's,
 * so a crafted body would decode one way or another depending on how it
 * arrived.  The magic is checked first.  *used: bytes of in taken. */
static enum decode_result zstd_frame_start(struct decoder *d, size_t i,
                                           const unsigned char *in, size_t len,
                                           size_t *used)
{
	struct stage *s = &d->stages[i];
	size_t need = s->nheld < 5 ? 5 : zstd_header_size(s->held), n;

	*used = len < need - s->nheld ? len : need - s->nheld;
	memcpy(s->held + s->nheld, in, *used);
	s->nheld += *used;
	s->state = STAGE_HEADER;
	if (s->nheld >= 4 && !zstd_magic_ok(s->held))
		return s->frames ? fail(d, i, "data after the end of the stream", NULL)
		                 : fail(d, i, "invalid data", "not a zstd frame");
	if (s->nheld < 5 || s->nheld < zstd_header_size(s->held))
		return DECODE_OK;        /* more of it to come */
	n = s->nheld;
	s->nheld = 0;
	return zstd_run(d, i, s->held, n, &n);
}

/* Frames may follow each other, skippable ones too (RFC 8878 3.1). */
static enum decode_result zstd_feed(struct decoder *d, size_t i, const unsigned char *in,
                                    size_t len)
{
	struct stage *s = &d->stages[i];
	enum decode_result r = DECODE_OK;
	size_t used;

	while (len > 0 && r == DECODE_OK) {
		if (s->state == STAGE_INSIDE)
			r = zstd_run(d, i, in, len, &used);
		else
			r = zstd_frame_start(d, i, in, len, &used);
		in += used;
		len -= used;
	}
	return r;
}

/* --- stages -------------------------------------------------------------- */

static void stage_init(struct stage *s, enum coding coding)
{
	memset(s, 0, sizeof *s);
	s->coding = coding;
	s->state = STAGE_EMPTY;
	switch (coding) {
	case CODING_GZIP:
	case CODING_DEFLATE:
		zlib_init(s);
		break;
	case CODING_BR:
		s->u.br = xcheck(BrotliDecoderCreateInstance(br_alloc, br_free, NULL));
		break;
	case CODING_ZSTD:
		s->u.zstd = xcheck(ZSTD_createDStream());
		if (ZSTD_isError(ZSTD_DCtx_setParameter(s->u.zstd, ZSTD_d_windowLogMax,
		                                        ZSTD_WINDOW_LOG_MAX)))
			abort();     /* a libzstd older than configure asks for */
		break;
	}
}

static void stage_end(struct stage *s)
{
	switch (s->coding) {
	case CODING_GZIP:
	case CODING_DEFLATE:
		inflateEnd(&s->u.z);
		break;
	case CODING_BR:
		BrotliDecoderDestroyInstance(s->u.br);
		break;
	case CODING_ZSTD:
		ZSTD_freeDStream(s->u.zstd);
		break;
	}
}

static enum decode_result stage_feed(struct decoder *d, size_t i,
                                     const unsigned char *in, size_t len)
{
	switch (d->stages[i].coding) {
	case CODING_GZIP:
	case CODING_DEFLATE:
		return zlib_feed(d, i, in, len);
	case CODING_BR:
		return br_feed(d, i, in, len);
	case CODING_ZSTD:
		return zstd_feed(d, i, in, len);
	}
	abort();
}

/* --- the API ------------------------------------------------------------- */

/* Append len bytes of s to the name at *at: name holds the longest list
 * (DECODE_MAX_CODINGS times ", deflate"), so this never runs past it. */
static void name_put(struct decoder *d, size_t *at, const char *s, size_t len)
{
	if (*at + len >= sizeof d->name)
		abort();
	memcpy(d->name + *at, s, len);
	*at += len;
}

static void build_name(struct decoder *d, const enum coding *listed, size_t n)
{
	size_t k, at = 0;

	for (k = 0; k < n; k++) {
		if (k > 0)
			name_put(d, &at, ", ", 2);
		name_put(d, &at, coding_names[listed[k]], strlen(coding_names[listed[k]]));
	}
	d->name[at] = '\0';
}

struct decoder *decode_new(const char *value, size_t len)
{
	enum coding listed[DECODE_MAX_CODINGS];
	struct decoder *d;
	size_t n, k;

	if (parse_codings(value, len, listed, &n) < 0 || n == 0)
		return NULL;
	d = xcalloc(1, sizeof *d);
	d->n = n;
	/* the last coding listed was applied last, so it is undone first */
	for (k = 0; k < n; k++)
		stage_init(&d->stages[k], listed[n - 1 - k]);
	build_name(d, listed, n);
	return d;
}

const char *decode_name(const struct decoder *d)
{
	return d->name;
}

enum decode_result decode_feed(struct decoder *d, const char *data, size_t len,
                               decode_sink_fn sink, void *arg)
{
	if (d->result != DECODE_OK || len == 0)
		return d->result;
	d->sink = sink;
	d->arg = arg;
	d->result = stage_feed(d, 0, (const unsigned char *)data, len);
	return d->result;
}

enum decode_result decode_finish(struct decoder *d, decode_sink_fn sink, void *arg)
{
	size_t i;

	if (d->result != DECODE_OK)
		return d->result;
	d->sink = sink;
	d->arg = arg;
	/* every stage drained its output as it went, so only check that each
	 * ended where a stream may end, the first one decoded first */
	for (i = 0; i < d->n; i++) {
		enum stage_state st = d->stages[i].state;

		if (st != STAGE_EMPTY && st != STAGE_ENDED) {
			d->result = fail(d, i, "truncated stream", NULL);
			break;
		}
	}
	return d->result;
}

const char *decode_error(const struct decoder *d)
{
	return d->error;
}

void decode_free(struct decoder *d)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->n; i++)
		stage_end(&d->stages[i]);
	free(d);
}
