/* httptoken: RFC 9110's token, the one syntax of methods and header names,
 * checked in one place for the gate, the request parser and h1. */
#ifndef FANOUTD_HTTPTOKEN_H
#define FANOUTD_HTTPTOKEN_H

#include <stdbool.h>
#include <stddef.h>

/* Are s[0..n) a token: n > 0, each a letter, a digit or one of
 * !#$%&'*+-.^_`|~ ? */
bool httptoken_is(const char *s, size_t n);

#endif
