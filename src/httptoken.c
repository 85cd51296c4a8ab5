/* httptoken: the token check (see httptoken.h). */
#include <string.h>
#include <strings.h>

#include "httptoken.h"

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

bool httptoken_is(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

static const char *skip_ows(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* The parameters of one media range, p to end: is one of them q=0
 * (0, 0., 0.0, 0.00, 0.000)? */
static bool has_q_zero(const char *p, const char *end)
{
	const char *v;

	while ((p = memchr(p, ';', (size_t)(end - p))) != NULL) {
		p = skip_ows(p + 1, end);
		if (end - p < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=')
			continue;
		v = p + 2;
		if (v < end && *v == '0') {
			for (v++; v < end && (*v == '.' || *v == '0'); v++)
				;
			v = skip_ows(v, end);
			if (v == end || *v == ';')
				return true;
		}
	}
	return false;
}

bool httptoken_accepts(const char *accept, const char *type)
{
	size_t len = strlen(type), n;
	const char *p = accept, *end, *range_end;

	if (accept == NULL)
		return false;
	for (; *p != '\0'; p = *end ? end + 1 : end) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		p = skip_ows(p, end);
		range_end = memchr(p, ';', (size_t)(end - p));
		if (range_end == NULL)
			range_end = end;
		n = (size_t)(range_end - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == len && strncasecmp(p, type, len) == 0 && !has_q_zero(range_end, end))
			return true;
	}
	return false;
}
