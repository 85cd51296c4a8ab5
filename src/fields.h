/* fields: the header fields of one answer's head, as both codecs hand
 * them to a fetch — names as received (the codecs lower-case them), the
 * values of every line with the same name joined with ", " in the order
 * received, fields in order of first appearance.  A joiner owns the
 * memory of the joined head and reuses it from one head to the next. */
#ifndef FANOUTD_FIELDS_H
#define FANOUTD_FIELDS_H

#include <stddef.h>

#include "exchange.h"

/* One header line as a codec collected it: offsets into its arena. */
struct fields_raw {
	size_t name_off, name_len;
	size_t value_off, value_len;
};

struct fields_entry;

struct fields_joiner {
	struct fields_entry *entries;      /* owned, reused */
	struct exchange_field *fields;     /* owned, reused */
	char *joined;                      /* the joined values (owned, reused) */
	size_t entries_cap, joined_cap;
};

/* Join raw[0..n) (names and values in arena, arena_len bytes) into
 * j->fields; returns how many fields there are.  They point into arena
 * (names) and j (values) until the next call or fields_joiner_free.
 * Sorted rather than searched: thousands of lines cost n log n, not n². */
size_t fields_join(struct fields_joiner *j, const char *arena, size_t arena_len,
                   const struct fields_raw *raw, size_t n);

void fields_joiner_free(struct fields_joiner *j);

#endif
