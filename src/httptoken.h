/* httptoken: RFC 9110's token, the one syntax of methods and header names,
 * checked in one place for the gate, the request parser and h1; and the
 * media ranges of an Accept field. */
#ifndef FANOUTD_HTTPTOKEN_H
#define FANOUTD_HTTPTOKEN_H

#include <stdbool.h>
#include <stddef.h>

/* Are s[0..n) a token: n > 0, each a letter, a digit or one of
 * !#$%&'*+-.^_`|~ ? */
bool httptoken_is(const char *s, size_t n);

/* Does the Accept field value accept (NULL: absent) name the media type
 * type ("application/x-ndjson") itself, without case, parameters aside,
 * and not with q=0?  Wildcards (any type, application/any) do not
 * count: they take what comes by default. */
bool httptoken_accepts(const char *accept, const char *type);

#endif
