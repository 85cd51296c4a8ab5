/* answer_text: JSON text without JSON values (see answer_text.c):
 * strings escaped as jansson does, milliseconds as printf's "%.1f". */
#ifndef FANOUTD_ANSWER_TEXT_H
#define FANOUTD_ANSWER_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <event2/buffer.h>

/* A JSON string for text that should be UTF-8 but may not be (upstream
 * header values, reason phrases, upstream keys): bytes that would break
 * it become '?'.  The caller owns the result. */
json_t *answer_text(const char *s);
/* The same for len bytes (not NUL-terminated).  Valid UTF-8 is kept as
 * it is, NUL bytes too; in text that is not, each byte that breaks it
 * and each NUL becomes '?'. */
json_t *answer_textn(const char *s, size_t len);

/* The same text without a json_t: the bytes answer_textn would hold
 * (len of them at dst; returns the end), and the JSON string, quotes
 * included, that jansson's json_dumps writes for it (its length, and the
 * bytes at dst; returns the end).  Escaped as jansson does: ", \ and
 * control characters (\b \f \n \r \t, else \u00XX); '/', DEL and
 * non-ASCII as they are. */
char *answer_text_clean(char *dst, const char *s, size_t len);
size_t answer_text_json_len(const char *s, size_t len);
char *answer_text_json(char *dst, const char *s, size_t len);

/* Milliseconds as the answer spells them, without printf: what printf's
 * "%.1f" does for v (the same bytes, rounding half to even on v's exact
 * value, "-0.0" for a negative zero) into at least ANSWER_MS_MAX bytes at
 * dst.  Returns the end (no NUL terminator).  Integers: units_format_uint. */
#define ANSWER_MS_MAX 320    /* "-" DBL_MAX's 309 digits ".0", and a NUL */
char *answer_format_ms(char *dst, double v);

/* The JSON string, quotes included, for len bytes of text into out:
 * clean (they are valid UTF-8) escaped as they are, else made valid as
 * answer_text_clean does on the way. */
void answer_text_put(struct evbuffer *out, const char *s, size_t len, bool clean);

#endif
