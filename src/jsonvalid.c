/* jsonvalid: a JSON text checker that builds nothing (see jsonvalid.h).
 * One forward scan; what is open (array or object) is one bit per level
 * on the C stack, so the nesting costs no allocation and no recursion.
 * Where jansson 2.14 has a rule of its own (\u0000, surrogates, numbers
 * too big for a double) this follows it; tests/check_answer.c and
 * tests/fuzz/fuzz_answer.c compare the two. */
#include <stdint.h>
#include <string.h>

#include "jsonvalid.h"

size_t jsonvalid_utf8_len(const char *p, size_t avail)
{
	const unsigned char *u = (const unsigned char *)p;
	unsigned lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (u[0] < 0x80)
		return 1;
	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		n = 2;
	else if (u[0] >= 0xe0 && u[0] <= 0xef)
		n = 3;
	else if (u[0] >= 0xf0 && u[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (avail < n)
		return 0;
	/* the second byte's range excludes overlongs, surrogates, > U+10FFFF */
	if (u[0] == 0xe0)
		lo = 0xa0;
	else if (u[0] == 0xed)
		hi = 0x9f;
	else if (u[0] == 0xf0)
		lo = 0x90;
	else if (u[0] == 0xf4)
		hi = 0x8f;
	if (u[1] < lo || u[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (u[i] < 0x80 || u[i] > 0xbf)
			return 0;
	return n;
}

bool jsonvalid_utf8(const char *p, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if ((unsigned char)p[i] < 0x80) {
			i++;
			continue;
		}
		n = jsonvalid_utf8_len(p + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* --- the scanner ------------------------------------------------------- */

struct scan {
	const unsigned char *p, *end;
	unsigned char in_object[JSONVALID_MAX_DEPTH / 8];   /* bit per level */
	size_t depth, max_depth;
};

static bool at(const struct scan *s, unsigned char c)
{
	return s->p < s->end && *s->p == c;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static void skip_space(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' ||
	                         *s->p == '\r'))
		s->p++;
}

/* Four hex digits into *out. */
static bool scan_hex4(struct scan *s, unsigned *out)
{
	unsigned v = 0, c;
	int i;

	if (s->end - s->p < 4)
		return false;
	for (i = 0; i < 4; i++) {
		c = *s->p++;
		if (is_digit((unsigned char)c))
			c -= '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			c = (c | 0x20) - 'a' + 10;
		else
			return false;
		v = v << 4 | c;
	}
	*out = v;
	return true;
}

/* After a backslash.  jansson refuses \u0000 (without JSON_ALLOW_NUL) and
 * any surrogate but a high one followed at once by a low one. */
static bool scan_escape(struct scan *s)
{
	unsigned u, low;

	if (s->p == s->end)
		return false;
	switch (*s->p++) {
	case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
		return true;
	case 'u':
		break;
	default:
		return false;
	}
	if (!scan_hex4(s, &u) || u == 0 || (u >= 0xdc00 && u <= 0xdfff))
		return false;
	if (u < 0xd800 || u > 0xdbff)
		return true;
	if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
		return false;
	s->p += 2;
	return scan_hex4(s, &low) && low >= 0xdc00 && low <= 0xdfff;
}

/* A string, from its opening quote. */
static bool scan_string(struct scan *s)
{
	size_t n;

	s->p++;
	while (s->p < s->end) {
		if (*s->p == '"') {
			s->p++;
			return true;
		}
		if (*s->p < 0x20)   /* control characters, NUL too */
			return false;
		if (*s->p == '\\') {
			s->p++;
			if (!scan_escape(s))
				return false;
		} else if (*s->p < 0x80) {
			s->p++;
		} else {
			n = jsonvalid_utf8_len((const char *)s->p, (size_t)(s->end - s->p));
			if (n == 0)
				return false;
			s->p += n;
		}
	}
	return false;
}

/* The digits of a number, integer part then fraction, without the point. */
struct digits {
	const unsigned char *p, *int_end, *frac, *end;
};

static bool next_digit(struct digits *d, unsigned char *c)
{
	if (d->p == d->int_end)
		d->p = d->frac;
	if (d->p == NULL || d->p >= d->end)
		return false;
	*c = *d->p++;
	return true;
}

/* 2^1024 - 2^970: the least value strtod rounds to infinity (halfway
 * between DBL_MAX and 2^1024, and DBL_MAX's last bit is odd). */
static const char overflow_digits[] =
	"17976931348623158079372897140530341507993413271003782693617377898044"
	"49682927647509466490179775872070963302864166928879109465555478519404"
	"02630657488671505820681908902000708383676273854845817711531764475730"
	"27006985557136695962284291481986083493647529271907416844436551070434"
	"2711559699508093042880177904174497792";

#define EXP_CLAMP ((int64_t)1 << 52)

/* Whether strtod overflows on the number whose digits are d (integer part
 * without leading zeros but a lone 0) times 10^exp: jansson refuses it
 * ("real number overflow"); underflow it lets through. */
static bool overflows(struct digits d, int64_t exp)
{
	int64_t point;   /* the value is 0.D x 10^point, D from its first non-zero digit */
	unsigned char c = '0';
	size_t i;

	if (d.int_end - d.p == 1 && *d.p == '0') {
		point = exp;
		d.p = d.int_end;
		while (next_digit(&d, &c) && c == '0')
			point--;
		if (c == '0')
			return false;   /* zero */
		d.p--;
	} else {
		int64_t n = d.int_end - d.p;

		point = (n < EXP_CLAMP ? n : EXP_CLAMP) + exp;
	}
	if (point != 309)
		return point > 309;
	for (i = 0; i < sizeof overflow_digits - 1; i++) {
		if (!next_digit(&d, &c))
			c = '0';
		if (c != (unsigned char)overflow_digits[i])
			return c > (unsigned char)overflow_digits[i];
	}
	return true;   /* at or past the bound */
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? that a double can hold. */
static bool scan_number(struct scan *s)
{
	struct digits d = { 0 };
	int64_t exp = 0;
	bool negative = false;

	if (at(s, '-'))
		s->p++;
	d.p = s->p;
	if (at(s, '0'))
		s->p++;
	else if (s->p < s->end && is_digit(*s->p))
		while (s->p < s->end && is_digit(*s->p))
			s->p++;
	else
		return false;
	d.int_end = d.end = s->p;
	if (at(s, '.')) {
		d.frac = ++s->p;
		if (s->p == s->end || !is_digit(*s->p))
			return false;
		while (s->p < s->end && is_digit(*s->p))
			s->p++;
		d.end = s->p;
	}
	if (s->p < s->end && (*s->p | 0x20) == 'e') {
		s->p++;
		if (at(s, '+') || at(s, '-'))
			negative = *s->p++ == '-';
		if (s->p == s->end || !is_digit(*s->p))
			return false;
		for (; s->p < s->end && is_digit(*s->p); s->p++)
			if (exp < EXP_CLAMP)
				exp = exp * 10 + (*s->p - '0');
		if (negative)
			exp = -exp;
	}
	return !overflows(d, exp);
}

static bool scan_word(struct scan *s, const char *word, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return false;
	s->p += n;
	return true;
}

/* A string, number or literal. */
static bool scan_scalar(struct scan *s)
{
	if (s->p == s->end)
		return false;
	switch (*s->p) {
	case '"':
		return scan_string(s);
	case 't':
		return scan_word(s, "true", 4);
	case 'f':
		return scan_word(s, "false", 5);
	case 'n':
		return scan_word(s, "null", 4);
	default:
		return scan_number(s);
	}
}

/* An object's key and its colon, white space around them. */
static bool scan_key(struct scan *s)
{
	skip_space(s);
	if (!at(s, '"') || !scan_string(s))
		return false;
	skip_space(s);
	if (!at(s, ':'))
		return false;
	s->p++;
	return true;
}

static bool top_is_object(const struct scan *s)
{
	size_t i = s->depth - 1;

	return s->in_object[i / 8] >> (i % 8) & 1;
}

/* An opening bracket: one level deeper, if that is allowed. */
static bool open_level(struct scan *s)
{
	size_t i = s->depth;
	unsigned char bit = (unsigned char)(1u << (i % 8));

	if (s->depth == s->max_depth)
		return false;
	if (*s->p++ == '{')
		s->in_object[i / 8] |= bit;
	else
		s->in_object[i / 8] &= (unsigned char)~bit;
	s->depth++;
	return true;
}

enum step {
	STEP_VALUE,   /* a value is due next */
	STEP_DONE,    /* the text is whole */
	STEP_FAIL,
};

/* After a value: the end of the text, or closing brackets and then a
 * comma (and, in an object, the next key). */
static enum step after_value(struct scan *s)
{
	for (;;) {
		skip_space(s);
		if (s->depth == 0)
			return s->p == s->end ? STEP_DONE : STEP_FAIL;
		if (at(s, ','))
			break;
		if (!at(s, top_is_object(s) ? '}' : ']'))
			return STEP_FAIL;
		s->p++;
		s->depth--;
	}
	s->p++;
	if (top_is_object(s) && !scan_key(s))
		return STEP_FAIL;
	return STEP_VALUE;
}

/* The start of a value: an array or object opens (and may close at once),
 * or a scalar is scanned whole. */
static enum step value(struct scan *s)
{
	skip_space(s);
	if (!at(s, '[') && !at(s, '{'))
		return scan_scalar(s) ? after_value(s) : STEP_FAIL;
	if (!open_level(s))
		return STEP_FAIL;
	skip_space(s);
	if (at(s, top_is_object(s) ? '}' : ']')) {
		s->p++;
		s->depth--;
		return after_value(s);
	}
	if (top_is_object(s) && !scan_key(s))
		return STEP_FAIL;
	return STEP_VALUE;
}

bool jsonvalid_check(const char *p, size_t len, size_t max_depth)
{
	struct scan s;
	enum step step;

	s.p = (const unsigned char *)p;
	s.end = s.p + len;
	s.depth = 0;
	s.max_depth = max_depth < JSONVALID_MAX_DEPTH ? max_depth : JSONVALID_MAX_DEPTH;
	do
		step = value(&s);
	while (step == STEP_VALUE);
	return step == STEP_DONE;
}
