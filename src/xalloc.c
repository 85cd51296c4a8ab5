/* xalloc: allocation that aborts when memory runs out (see xalloc.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static void *need(void *p)
{
	if (p == NULL) {
		fputs("fanoutd: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *xmalloc(size_t n)
{
	return need(malloc(n ? n : 1));
}

void *xcalloc(size_t count, size_t size)
{
	return need(calloc(count ? count : 1, size ? size : 1));
}

void *xrealloc(void *p, size_t n)
{
	return need(realloc(p, n ? n : 1));
}

char *xstrdup(const char *s)
{
	return need(strdup(s));
}

char *xstrndup(const char *s, size_t n)
{
	return need(strndup(s, n));
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		s = NULL;
	return need(s);
}

void *xcheck(void *p)
{
	return need(p);
}
