/* fanout_scan: a skipper over JSON values.  Strings are skipped with
 * memchr to the next quote (an odd run of backslashes before it escapes
 * it), containers by depth, scalars to the next delimiter; only the keys
 * of the top-level object are looked at. */
#include "fanout_scan.h"

#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* p at the opening quote: just past the closing one, or NULL. */
static const char *skip_string(const char *p, const char *end)
{
	const char *q = p + 1, *b;

	for (;;) {
		q = memchr(q, '"', (size_t)(end - q));
		if (q == NULL)
			return NULL;
		for (b = q; b > p + 1 && b[-1] == '\\'; b--)
			;
		if ((q - b) % 2 == 0)
			return q + 1;
		q++;
	}
}

/* An object or array: p at its opener; past its closer, or NULL. */
static const char *skip_container(const char *p, const char *end)
{
	int depth = 0;

	while (p < end) {
		switch (*p) {
		case '"':
			p = skip_string(p, end);
			if (p == NULL)
				return NULL;
			continue;
		case '{': case '[':
			depth++;
			break;
		case '}': case ']':
			if (--depth == 0)
				return p + 1;
			break;
		}
		p++;
	}
	return NULL;
}

static const char *skip_value(const char *p, const char *end)
{
	if (p >= end)
		return NULL;
	if (*p == '"')
		return skip_string(p, end);
	if (*p == '{' || *p == '[')
		return skip_container(p, end);
	while (p < end && *p != ',' && *p != '}' && *p != ' ' && *p != '\t' &&
	       *p != '\r' && *p != '\n')
		p++;
	return p;
}

bool fanout_scan_is(const char *value, size_t len, const char *text)
{
	size_t n = strlen(text);

	return len == n + 2 && value[0] == '"' && value[len - 1] == '"' &&
	       memcmp(value + 1, text, n) == 0;
}

/* The key (raw, quotes included) and its value. */
static void note(struct fanout_scan *s, const char *key, size_t klen, const char *v,
                 size_t vlen)
{
	char num[32], *end;

	if (fanout_scan_is(key, klen, "index")) {
		if (vlen == 0 || vlen >= sizeof num)
			return;
		memcpy(num, v, vlen);
		num[vlen] = '\0';
		s->index = strtoll(num, &end, 10);
		s->has_index = *end == '\0' && num[0] != '+';
	} else if (fanout_scan_is(key, klen, "type") || fanout_scan_is(key, klen, "error")) {
		s->failure = true;
	} else if (fanout_scan_is(key, klen, "progress") || fanout_scan_is(key, klen, "done")) {
		s->other = true;
	} else if (fanout_scan_is(key, klen, "body")) {
		s->body = v;
		s->body_len = vlen;
	} else if (fanout_scan_is(key, klen, "encoding")) {
		s->encoding = v;
		s->encoding_len = vlen;
	}
}

int fanout_scan_line(const char *line, size_t len, struct fanout_scan *s)
{
	const char *p = line, *end = line + len, *key, *kend, *v;

	memset(s, 0, sizeof *s);
	p = skip_ws(p, end);
	if (p >= end || *p++ != '{')
		return -1;
	for (;;) {
		p = skip_ws(p, end);
		if (p < end && *p == '}')
			return skip_ws(p + 1, end) == end ? 0 : -1;
		if (p >= end || *p != '"')
			return -1;
		key = p;
		kend = skip_string(p, end);
		if (kend == NULL)
			return -1;
		p = skip_ws(kend, end);
		if (p >= end || *p++ != ':')
			return -1;
		v = skip_ws(p, end);
		p = skip_value(v, end);
		if (p == NULL || p == v)
			return -1;
		note(s, key, (size_t)(kend - key), v, (size_t)(p - v));
		p = skip_ws(p, end);
		if (p < end && *p == ',')
			p++;
		else if (p >= end || *p != '}')
			return -1;
	}
}
