/* h2_head: the answer side of the HTTP/2 codec's header lists (see h2.h):
 * one stream's header blocks as nghttp2 hands over their fields — the
 * :status and fields of a block kept (other pseudo-headers ignored, a
 * 1xx block dropped whole when the next begins), every block counted
 * against the header list cap and the final head against the field cap,
 * then that head joined into the exchange_head a fetch gets, with the
 * body length it announces.  Used by h2.c and h2_callbacks.c only. */
#ifndef FANOUTD_H2_HEAD_H
#define FANOUTD_H2_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exchange.h"
#include "fields.h"

/* One stream's head as it is read (zeroed to begin; owns its memory). */
struct h2_head {
	int status;                        /* the block's :status; 0: none yet */
	size_t bytes;                      /* every block's so far, against the cap */
	char *arena;                       /* the kept names and values */
	size_t arena_len, arena_cap;
	struct fields_raw *raw;
	size_t nraw, raw_cap;
};

/* A header block begins (interim or final): the last one's status and
 * fields are dropped; its bytes still count. */
void h2_head_start(struct h2_head *hd);

/* Count one field of any block (trailers too): false when the blocks
 * are over max_list bytes (32 per field included, RFC 9113 6.5.2) or,
 * while keeping (the final head not in yet), the head already holds
 * max_fields fields; msg then says which, as "malformed answer: ...". */
bool h2_head_count(struct h2_head *hd, size_t nlen, size_t vlen, bool keeping,
                   size_t max_list, size_t max_fields, char *msg, size_t msglen)
	__attribute__((warn_unused_result));

/* One field of the block being kept: :status read, other pseudo-headers
 * ignored, the rest kept as received. */
void h2_head_add(struct h2_head *hd, const uint8_t *name, size_t nlen, const uint8_t *value,
                 size_t vlen);

/* The head kept, as a fetch gets it: repeated names joined in j (the
 * fields point into hd and j until either changes).  no_body: the
 * answer has none whatever it announces (HEAD, END_STREAM on the
 * HEADERS); 204 and 304 have none either. */
void h2_head_build(const struct h2_head *hd, struct fields_joiner *j, bool no_body,
                   struct exchange_head *out);

/* Free the fields kept (status and bytes stay: trailers are counted). */
void h2_head_free(struct h2_head *hd);

#endif
