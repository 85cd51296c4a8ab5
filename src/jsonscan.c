/* jsonscan: the pass over a batch body before jansson (see jsonscan.h),
 * and the JSON writer that puts the client's number tokens back.  The
 * pass tracks only what it needs: the nesting (to tell keys from values
 * and to find the batch array), the strings (so brackets inside them do
 * not count) and the tokens.  Whether the bytes are valid JSON is
 * jansson's business, after this pass. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonscan.h"
#include "xalloc.h"

/* jansson's JSON_PARSER_MAX_DEPTH (load.c): it counts every value, the
 * root at depth 1, and gives up on a value deeper than this, having built
 * what came before it; the scan stops there too. */
#define MAX_DEPTH 2048

/* Bytes jansson 2.14 allocates per node on glibc x86_64, rounded up and
 * with the parent's slot (arrays grow by doubling); measured with
 * json_set_alloc_funcs().  A number also pays for its entries in
 * numbers[] and pairs[] here. */
#define COST_SCALAR 16      /* true, false, null are shared: only the slot */
#define COST_NUMBER 72      /* the node 48, numbers[] 8, pairs[] 16 */
#define COST_STRING 96      /* plus the bytes of the string */
#define COST_KEY 96         /* the object's pair and bucket, plus the key */
#define COST_ARRAY 144
#define COST_OBJECT 240

struct jsonscan_pair {
	const json_t *node;
	size_t at;              /* offset of its token in data */
};

struct scanner {
	struct jsonscan *s;
	size_t budget;
	size_t cap;             /* entries allocated in s->numbers */
	bool recording;         /* still keeping number offsets */
	bool stopped;           /* past jansson's depth or a stray bracket */
	size_t depth;           /* containers open */
	char kind[MAX_DEPTH + 1];   /* kind[d]: '[' or '{', the container at depth d */
	bool expect_key;        /* in an object, where its next key goes */
	bool requests_key;      /* the root object's last key was "requests" */
	size_t batch_depth;     /* depth of the batch array while in it, else 0 */
};

static bool is_number_char(char c)
{
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' ||
	       c == 'E';
}

static size_t number_len(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && is_number_char(p[i]))
		i++;
	return i;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One character of a JSON string body at p[*i], escapes decoded as far as
 * an ASCII comparison needs: anything else, a broken escape included,
 * comes back as NOT_ASCII. */
#define NOT_ASCII 0x100u

static unsigned next_char(const char *p, size_t n, size_t *i)
{
	static const char escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
	unsigned c = 0;
	const char *e;
	size_t k;
	int h;

	if (p[*i] != '\\')
		return (unsigned char)p[(*i)++];
	if (*i + 1 < n && p[*i + 1] != 'u') {
		for (e = escapes; *e && *e != p[*i + 1]; e += 2)
			;
		*i += 2;
		return *e ? (unsigned char)e[1] : NOT_ASCII;
	}
	if (*i + 6 > n) {
		*i = n;
		return NOT_ASCII;
	}
	for (k = 2; k < 6; k++) {
		h = hex_value(p[*i + k]);
		if (h < 0)
			break;
		c = c * 16 + (unsigned)h;
	}
	*i += 6;
	return k == 6 ? c : NOT_ASCII;
}

/* Is the string body p[0..n) (escapes and all) the ASCII text want?
 * "requ\u0065sts" is "requests" to jansson, so it is to us. */
static bool string_is(const char *p, size_t n, const char *want)
{
	size_t i = 0;

	for (; *want != '\0'; want++)
		if (i >= n || next_char(p, n, &i) != (unsigned char)*want)
			return false;
	return i == n;
}

static void add_cost(struct scanner *sc, size_t cost)
{
	sc->s->cost += cost;
	if (sc->recording && sc->s->cost > sc->budget) {
		/* refused anyway: the offsets would only cost more */
		free(sc->s->numbers);
		sc->s->numbers = NULL;
		sc->s->nnumbers = 0;
		sc->recording = false;
	}
}

static void record_number(struct scanner *sc, size_t at)
{
	struct jsonscan *s = sc->s;

	if (!sc->recording)
		return;
	if (s->nnumbers == sc->cap) {
		sc->cap = sc->cap ? 2 * sc->cap : 64;
		s->numbers = xrealloc(s->numbers, sc->cap * sizeof *s->numbers);
	}
	s->numbers[s->nnumbers++] = at;
}

/* A value begins here (c is its first byte); false when it is deeper
 * than jansson goes, and the scan stops. */
static bool value_start(struct scanner *sc, char c)
{
	if (sc->depth >= MAX_DEPTH) {
		sc->s->too_deep = true;
		sc->stopped = true;
		return false;
	}
	sc->s->values++;
	if (sc->batch_depth != 0 && sc->depth == sc->batch_depth)
		sc->s->batch_len++;
	if (sc->depth == 1 && sc->kind[1] == '{') {
		if (sc->requests_key && c == '[') {
			/* the batch array opens next (a later "requests" wins, as
			 * in jansson when duplicates are let through) */
			sc->batch_depth = 2;
			sc->s->batch_found = true;
			sc->s->batch_len = 0;
		}
		sc->requests_key = false;
	}
	return true;
}

/* '[' or '{'. */
static void open_container(struct scanner *sc, char c)
{
	if (!value_start(sc, c))
		return;
	add_cost(sc, c == '[' ? COST_ARRAY : COST_OBJECT);
	if (sc->depth == 0 && sc->s->root == 0)
		sc->s->root = c;
	sc->kind[++sc->depth] = c;
	if (sc->depth == 1 && c == '[') {
		sc->batch_depth = 1;
		sc->s->batch_found = true;
	}
	sc->expect_key = c == '{';
}

/* ']' or '}'; a stray one stops the scan (jansson will say where). */
static void close_container(struct scanner *sc)
{
	if (sc->depth == 0) {
		sc->stopped = true;
		return;
	}
	if (sc->depth == sc->batch_depth)
		sc->batch_depth = 0;
	sc->depth--;
	sc->expect_key = false;
}

/* The string whose opening quote is at data[i]; returns the index after
 * its closing quote (or the end of data). */
static size_t scan_string(struct scanner *sc, size_t i)
{
	const char *p = sc->s->data;
	size_t n = sc->s->len, start = i + 1, end;
	bool key = sc->expect_key;

	for (end = start; end < n && p[end] != '"'; end++)
		if (p[end] == '\\')
			end++;
	if (end > n)
		end = n;
	if (key) {
		add_cost(sc, COST_KEY + (end - start));
		if (sc->depth == 1 && sc->kind[1] == '{')
			sc->requests_key = string_is(p + start, end - start, "requests");
		sc->expect_key = false;
	} else if (value_start(sc, '"')) {
		add_cost(sc, COST_STRING + (end - start));
	}
	return end < n ? end + 1 : n;
}

/* A number, true, false, null (or junk) at data[i]; returns the index
 * after it. */
static size_t scan_scalar(struct scanner *sc, size_t i)
{
	const char *p = sc->s->data;
	size_t n = sc->s->len, j = i;

	if (!value_start(sc, p[i]))
		return n;
	if (p[i] == '-' || (p[i] >= '0' && p[i] <= '9')) {
		add_cost(sc, COST_NUMBER);
		record_number(sc, i);
		return i + number_len(p + i, n - i);
	}
	add_cost(sc, COST_SCALAR);
	while (j < n && isalnum((unsigned char)p[j]))
		j++;
	return j > i ? j : i + 1;
}

void jsonscan_run(struct jsonscan *s, const char *data, size_t len, size_t budget)
{
	struct scanner sc = { .s = s, .budget = budget, .recording = true };
	size_t i = 0;
	char c;

	memset(s, 0, sizeof *s);
	s->data = data;
	s->len = len;
	while (i < len && !sc.stopped) {
		c = data[i];
		if (c == '"') {
			i = scan_string(&sc, i);
		} else if (isalnum((unsigned char)c) || c == '-') {
			i = scan_scalar(&sc, i);
		} else {
			if (c == '[' || c == '{')
				open_container(&sc, c);
			else if (c == ']' || c == '}')
				close_container(&sc);
			else if (c == ',')
				sc.expect_key = sc.depth > 0 && sc.kind[sc.depth] == '{';
			else if (c == ':')
				sc.expect_key = false;
			i++;
		}
	}
}

/* --- pairing ----------------------------------------------------------- */

/* Number nodes of v in document order: pairs[k] for the k-th, while k is
 * within nnumbers; *k counts them all. */
static void collect(struct jsonscan *s, const json_t *v, size_t *k)
{
	const char *key;
	json_t *elem;
	size_t i;

	if (json_is_number(v)) {
		if (*k < s->nnumbers) {
			s->pairs[*k].node = v;
			s->pairs[*k].at = s->numbers[*k];
		}
		(*k)++;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, elem)
			collect(s, elem, k);
	} else if (json_is_object(v)) {
		/* jansson keeps insertion order: the order of the text */
		json_object_foreach((json_t *)v, key, elem)
			collect(s, elem, k);
	}
}

static int by_node(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct jsonscan_pair *)a)->node;
	uintptr_t y = (uintptr_t)((const struct jsonscan_pair *)b)->node;

	return x < y ? -1 : x > y;
}

void jsonscan_pair(struct jsonscan *s, const json_t *root)
{
	size_t k = 0;

	if (s->nnumbers > 0) {
		s->pairs = xcalloc(s->nnumbers, sizeof *s->pairs);
	}
	collect(s, root, &k);
	free(s->numbers);
	s->numbers = NULL;
	if (k != s->nnumbers) {
		/* cannot happen with duplicates refused; if it does, fall back
		 * to jansson's spelling rather than pair the wrong tokens */
		free(s->pairs);
		s->pairs = NULL;
		k = 0;
	}
	s->nnumbers = 0;
	s->npairs = k;
	if (k > 1)
		qsort(s->pairs, k, sizeof *s->pairs, by_node);
}

const char *jsonscan_number_text(const struct jsonscan *s, const json_t *v, size_t *len)
{
	struct jsonscan_pair key = { .node = v };
	const struct jsonscan_pair *p;

	if (s == NULL || s->npairs == 0)
		return NULL;
	p = bsearch(&key, s->pairs, s->npairs, sizeof *s->pairs, by_node);
	if (p == NULL)
		return NULL;
	*len = number_len(s->data + p->at, s->len - p->at);
	return s->data + p->at;
}

/* --- JSON text with the client's numbers --------------------------------- */

/* jansson prints reals with %.17g, so 1.1 would reach the upstream as
 * 1.1000000000000001; print the shortest form that reads back the same.
 * Only when the client's own text is not known (see write_number). */
static void write_real(FILE *out, double d)
{
	char buf[40];
	int prec;

	for (prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	/* keep it a real: "2" would read back as an integer */
	fprintf(out, "%s%s", buf, strpbrk(buf, ".eEn") ? "" : ".0");
}

/* A number as the client spelled it: 0.1 stays 0.1 and 1e3 stays 1e3
 * (jansson would print 0.10000000000000001 and 1000.0). */
static void write_number(FILE *out, const json_t *v, const struct jsonscan *scan)
{
	size_t len;
	const char *text = jsonscan_number_text(scan, v, &len);

	if (text != NULL)
		fwrite(text, 1, len, out);
	else if (json_is_real(v))
		write_real(out, json_real_value(v));
	else
		fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
}

static void write_json(FILE *out, const json_t *v, const struct jsonscan *scan)
{
	const char *key;
	json_t *elem;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		fputc('{', out);
		i = 0;
		json_object_foreach((json_t *)v, key, elem) {
			json_t *k = json_string(key);

			if (i++ > 0)
				fputc(',', out);
			json_dumpf(k, out, JSON_ENCODE_ANY);
			json_decref(k);
			fputc(':', out);
			write_json(out, elem, scan);
		}
		fputc('}', out);
		return;
	case JSON_ARRAY:
		fputc('[', out);
		json_array_foreach(v, i, elem) {
			if (i > 0)
				fputc(',', out);
			write_json(out, elem, scan);
		}
		fputc(']', out);
		return;
	case JSON_REAL:
	case JSON_INTEGER:
		write_number(out, v, scan);
		return;
	default:
		json_dumpf(v, out, JSON_ENCODE_ANY | JSON_COMPACT);
		return;
	}
}

char *jsonscan_dump(const json_t *v, const struct jsonscan *scan, size_t *len)
{
	char *buf = NULL;
	FILE *out = xcheck(open_memstream(&buf, len));

	write_json(out, v, scan);
	if (fclose(out) != 0)
		buf = NULL;   /* open_memstream only fails for want of memory */
	return xcheck(buf);
}

void jsonscan_free(struct jsonscan *s)
{
	free(s->numbers);
	free(s->pairs);
	memset(s, 0, sizeof *s);
}
