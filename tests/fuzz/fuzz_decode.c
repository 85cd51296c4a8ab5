/* fuzz_decode: the Content-Encoding decoders (src/decode.c): what any body
 * an upstream sends becomes, under a 1 MiB cap on the output.
 *
 * Input layout: byte 0: bits 0-2 pick the Content-Encoding (values[]),
 * bits 3-7 the split — 0 feeds the body whole, else they seed the
 * pseudo-random sizes (1 to 2048 bytes) of its pieces.  The rest is the
 * body; then decode_finish.
 *
 * Checks: every sink piece is 1..DECODE_CHUNK bytes and none comes after
 * the sink refused one; a result other than DECODE_OK sticks (a later
 * feed and the finish return it without calling the sink); DECODE_ERROR
 * comes with a message naming one of the decoder's codings; and the split
 * changes nothing that matters: fed whole, the same body decodes (or not)
 * all the same, to the same bytes (as far as both runs took them), and
 * with one coding fails with the same message (see the end for why a
 * list may not). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "decode.h"
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>

#define CAP (1u << 20)

static const char *const values[8] = {
	"gzip", "deflate", "br", "zstd",
	"gzip, br", "deflate, zstd", "br, gzip", "gzip, gzip",
};

struct run {
	char *out;               /* CAP bytes */
	size_t len;              /* taken */
	bool refused;
	enum decode_result result;
	char error[128];
};

static int sink(void *arg, const char *data, size_t len)
{
	struct run *r = arg;

	FUZZ_CHECK(len > 0 && len <= DECODE_CHUNK, "a piece of %zu bytes", len);
	FUZZ_CHECK(!r->refused, "a piece after the sink refused one");
	if (r->len + len > CAP) {
		r->refused = true;
		return -1;
	}
	memcpy(r->out + r->len, data, len);
	r->len += len;
	return 0;
}

/* The next piece size from the split's generator: 1..2048, mostly small. */
static size_t next_step(uint32_t *x)
{
	*x = *x * 1103515245u + 12345u;
	return 1 + (*x >> 16) % (1u << ((*x >> 8) % 12));
}

static void check_sticks(struct decoder *d, struct run *r)
{
	size_t len = r->len;
	bool refused = r->refused;

	/* the sink must not hear of these: make it fail if it does */
	r->refused = true;
	FUZZ_CHECK(decode_feed(d, "\x1f", 1, sink, r) == r->result, "a later feed");
	FUZZ_CHECK(decode_finish(d, sink, r) == r->result, "a later finish");
	FUZZ_CHECK(r->len == len, "output after the end");
	r->refused = refused;
}

static void check_error(const struct decoder *d, const struct run *r)
{
	const char *p = decode_name(d);
	size_t n = strcspn(r->error, ":"), len;

	FUZZ_CHECK(n > 0 && r->error[n] == ':', "error \"%s\" names no coding", r->error);
	/* the coding named is one of the list's ("gzip, br") */
	for (;;) {
		len = strcspn(p, ",");
		if (len == n && strncmp(p, r->error, n) == 0)
			return;
		if (p[len] == '\0')
			break;
		p += len + 2;
	}
	FUZZ_CHECK(false, "error \"%s\" for \"%s\"", r->error, decode_name(d));
}

static void run(struct run *r, const char *value, const uint8_t *body, size_t size,
                unsigned seed)
{
	struct decoder *d = decode_new(value, strlen(value));
	uint32_t x = seed;
	size_t off = 0, n;

	FUZZ_CHECK(d != NULL, "no decoder for \"%s\"", value);
	r->len = 0;
	r->refused = false;
	r->result = DECODE_OK;
	while (off < size && r->result == DECODE_OK) {
		n = seed == 0 ? size - off : next_step(&x);
		n = n < size - off ? n : size - off;
		r->result = decode_feed(d, (const char *)body + off, n, sink, r);
		off += n;
	}
	if (r->result == DECODE_OK)
		r->result = decode_finish(d, sink, r);
	FUZZ_CHECK(r->result != DECODE_STOPPED || r->refused, "stopped unasked");
	FUZZ_CHECK(r->result == DECODE_STOPPED || !r->refused, "a refusal not obeyed");
	snprintf(r->error, sizeof r->error, "%s", decode_error(d));
	FUZZ_CHECK((r->result == DECODE_ERROR) == (r->error[0] != '\0'),
	           "result %d, error \"%s\"", (int)r->result, r->error);
	if (r->result == DECODE_ERROR)
		check_error(d, r);
	if (r->result != DECODE_OK)
		check_sticks(d, r);
	decode_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run split, whole;
	const char *value;
	size_t common;

	if (size < 1)
		return 0;
	if (split.out == NULL) {
		split.out = malloc(CAP);
		whole.out = malloc(CAP);
		FUZZ_CHECK(split.out && whole.out, "out of memory");
	}
	value = values[data[0] & 7];
	run(&split, value, data + 1, size - 1, data[0] >> 3);
	if (data[0] >> 3 == 0)
		return 0;
	run(&whole, value, data + 1, size - 1, 0);
	/* Whether the body decodes does not depend on the split, nor does
	 * what it decodes to.  A fault may show differently: brotli keeps
	 * bytes it decoded but had not written out when it meets bad data,
	 * so in a list the split decides which coding's fault comes first,
	 * and near the cap whether the sink refuses before the fault. */
	FUZZ_CHECK((split.result == DECODE_OK) == (whole.result == DECODE_OK),
	           "%s: split %d (%s), whole %d (%s)", value, (int)split.result, split.error,
	           (int)whole.result, whole.error);
	FUZZ_CHECK(split.result != DECODE_OK || split.len == whole.len,
	           "%s: split gave %zu bytes, whole %zu", value, split.len, whole.len);
	if (split.result == DECODE_ERROR && whole.result == DECODE_ERROR && !strchr(value, ','))
		FUZZ_CHECK(strcmp(split.error, whole.error) == 0, "%s: split \"%s\", whole \"%s\"",
		           value, split.error, whole.error);
	common = split.len < whole.len ? split.len : whole.len;
	FUZZ_CHECK(memcmp(split.out, whole.out, common) == 0, "%s: different bytes", value);
	return 0;
}
