/* answer_text: JSON text as fanoutd writes it without building JSON
 * values — strings escaped exactly as jansson's encoder does (text that
 * should be UTF-8 but may not be made valid on the way) and milliseconds
 * formatted exactly as printf's "%.1f" — for the answers (answer.c), the
 * headers block of an outcome (outcome.c) and every string that goes
 * through jansson (answer_text).  tests/check_answer.c holds each to
 * jansson and snprintf. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer_text.h"
#include "jsonvalid.h"
#include "units.h"
#include "xalloc.h"

/* --- text ------------------------------------------------------------- */

json_t *answer_text(const char *s)
{
	return answer_textn(s, strlen(s));
}

json_t *answer_textn(const char *s, size_t len)
{
	json_t *v = json_stringn(s, len);
	char *copy;

	if (v != NULL)
		return v;
	copy = xmalloc(len + 1);
	answer_text_clean(copy, s, len);
	v = json_stringn(copy, len);
	free(copy);
	return v;
}

char *answer_text_clean(char *dst, const char *s, size_t len)
{
	size_t i, n;

	if (jsonvalid_utf8(s, len)) {
		memcpy(dst, s, len);
		return dst + len;
	}
	for (i = 0; i < len; i += n) {
		n = s[i] == '\0' ? 0 : jsonvalid_utf8_len(s + i, len - i);
		if (n == 0) {
			dst[i] = '?';
			n = 1;
		} else {
			memcpy(dst + i, s + i, n);
		}
	}
	return dst + len;
}

/* Where escaped text goes, a run of bytes at a time. */
typedef void emit_fn(void *ctx, const char *p, size_t n);

static void emit_count(void *ctx, const char *p, size_t n)
{
	(void)p;
	*(size_t *)ctx += n;
}

static void emit_copy(void *ctx, const char *p, size_t n)
{
	char **dst = ctx;

	memcpy(*dst, p, n);
	*dst += n;
}

static void emit_buffer(void *ctx, const char *p, size_t n)
{
	evbuffer_add(ctx, p, n);
}

/* The escape for byte c of a JSON string, jansson's way, into esc (at
 * least 6 bytes); returns its length, 0 when c goes as it is. */
static size_t escape_of(unsigned char c, char *esc)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char named[0x20] = {
		['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
	};

	if (c == '"' || c == '\\') {
		esc[0] = '\\';
		esc[1] = (char)c;
		return 2;
	}
	if (c >= 0x20)
		return 0;
	esc[0] = '\\';
	if (named[c] != 0) {
		esc[1] = named[c];
		return 2;
	}
	memcpy(esc + 1, "u00", 3);
	esc[4] = hex[c >> 4];
	esc[5] = hex[c & 0xf];
	return 6;
}

/* The JSON string, quotes included, for len bytes of text: valid UTF-8
 * escaped as it is (clean), or else with each byte that breaks it and
 * each NUL made '?' on the way (answer_text_clean). */
static void escape(const char *s, size_t len, bool clean, emit_fn *emit, void *ctx)
{
	size_t i = 0, run = 0, n, e;
	char esc[6];

	emit(ctx, "\"", 1);
	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		n = 1;
		if (c >= 0x80) {
			if (clean || (n = jsonvalid_utf8_len(s + i, len - i)) > 0) {
				i += n;
				continue;
			}
			esc[0] = '?';
			e = n = 1;
		} else if (c == '\0' && !clean) {
			esc[0] = '?';
			e = 1;
		} else if ((e = escape_of(c, esc)) == 0) {
			i++;
			continue;
		}
		if (i > run)
			emit(ctx, s + run, i - run);
		emit(ctx, esc, e);
		i += n;
		run = i;
	}
	if (i > run)
		emit(ctx, s + run, i - run);
	emit(ctx, "\"", 1);
}

void answer_text_put(struct evbuffer *out, const char *s, size_t len, bool clean)
{
	escape(s, len, clean, emit_buffer, out);
}

size_t answer_text_json_len(const char *s, size_t len)
{
	size_t n = 0;

	escape(s, len, jsonvalid_utf8(s, len), emit_count, &n);
	return n;
}

char *answer_text_json(char *dst, const char *s, size_t len)
{
	escape(s, len, jsonvalid_utf8(s, len), emit_copy, &dst);
	return dst;
}

/* --- numbers ----------------------------------------------------------- */

char *answer_format_ms(char *dst, double v)
{
	uint64_t bits, m, frac, tenths, rest, half, whole = 0;
	unsigned digit = 0, shift;
	int e;

	memcpy(&bits, &v, sizeof bits);
	e = (int)(bits >> 52 & 0x7ff);
	m = bits & (((uint64_t)1 << 52) - 1);
	/* from 2^53 ms (285,000 years) on, and NaN and infinities, printf's
	 * own text: never a real time, and out of the reach of one uint64 */
	if (e >= 1075 + 1)
		return dst + snprintf(dst, ANSWER_MS_MAX, "%.1f", v);
	if (bits >> 63)
		*dst++ = '-';
	/* v = m * 2^-shift exactly */
	if (e == 0) {
		e = 1;   /* subnormal */
	} else {
		m |= (uint64_t)1 << 52;
	}
	shift = (unsigned)(1075 - e);
	if (shift == 0) {
		whole = m;
	} else if (shift <= 60) {
		/* the first decimal of the fraction, and what is left after
		 * it, in units of 2^-shift: rounded to nearest, ties to even */
		whole = m >> shift;
		frac = m & (((uint64_t)1 << shift) - 1);
		tenths = frac * 10;
		digit = (unsigned)(tenths >> shift);
		rest = tenths & (((uint64_t)1 << shift) - 1);
		half = (uint64_t)1 << (shift - 1);
		if (rest > half || (rest == half && digit % 2 == 1))
			digit++;
		if (digit == 10) {
			digit = 0;
			whole++;
		}
	}
	/* shift > 60: v < 2^-8, "0.0" */
	dst = units_format_uint(dst, whole);
	dst[0] = '.';
	dst[1] = (char)('0' + digit);
	return dst + 2;
}
