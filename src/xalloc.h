/* xalloc: the one out-of-memory policy.  fanoutd cannot answer anyone
 * sensibly without memory, so these allocate or abort(); callers never
 * check for NULL.  (Like git's and OpenSSH's x-functions.) */
#ifndef FANOUTD_XALLOC_H
#define FANOUTD_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n) __attribute__((malloc, returns_nonnull));
void *xcalloc(size_t count, size_t size) __attribute__((malloc, returns_nonnull));
void *xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
char *xstrndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));
char *xasprintf(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), malloc, returns_nonnull));

/* Abort unless p is set: for what a library allocates (event_new,
 * evbuffer_new, json_pack ...), which has its own constructors. */
void *xcheck(void *p) __attribute__((returns_nonnull));

#endif
