/* jsonvalid: is a run of bytes one JSON text, and is it UTF-8?  Checks
 * only, in one pass, without a tree and without allocating: the answer
 * writer asks it of every upstream body it may embed verbatim, and of
 * every string it escapes. */
#ifndef FANOUTD_JSONVALID_H
#define FANOUTD_JSONVALID_H

#include <stdbool.h>
#include <stddef.h>

/* The deepest nesting jsonvalid_check can follow (jansson's own parser
 * limit); a larger max_depth counts as this. */
#define JSONVALID_MAX_DEPTH 2048

/* True when the len bytes at p are one JSON text (RFC 8259: any value,
 * white space around it) nested at most max_depth arrays and objects
 * deep — exactly what jansson 2.14's json_loadb(p, len, JSON_DECODE_ANY |
 * JSON_DECODE_INT_AS_REAL) accepts (strings of valid UTF-8 without a NUL,
 * raw or as \u0000; \u escapes of surrogates only as a high-low pair;
 * numbers a double can hold, underflow allowed), with one difference:
 * a NUL byte anywhere is refused (jansson lets one through after a number
 * or a literal, "1\0", which would break an answer it is copied into). */
bool jsonvalid_check(const char *p, size_t len, size_t max_depth);

/* The length of the valid UTF-8 sequence (RFC 3629: no overlong forms,
 * no surrogates, nothing past U+10FFFF) that starts at p within avail > 0
 * bytes, or 0 when there is none.  An ASCII byte, NUL too, is 1. */
size_t jsonvalid_utf8_len(const char *p, size_t avail);

/* True when all len bytes at p are valid UTF-8 (NUL bytes included), as
 * jansson's json_stringn checks it. */
bool jsonvalid_utf8(const char *p, size_t len);

#endif
