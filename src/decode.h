/* decode: undoing a response's Content-Encoding (gzip, deflate, br, zstd)
 * as the body streams in, the way httpx does.  Pure: bytes in, bytes out —
 * no I/O, no clock.  A decoder owns its codings' library state and nothing
 * else; output goes to the caller's sink in pieces of at most DECODE_CHUNK
 * bytes as it is produced, so memory stays bounded whatever the body
 * inflates to (the sink enforces the size cap).
 *
 * Where it differs from httpx (which follows Python's zlib):
 * - gzip: concatenated members are all decoded, as gzip -d does (httpx
 *   keeps only the first); anything else after a member is an error,
 *   "gzip: data after the end of the stream" (httpx drops it silently),
 *   so a body padded with junk does not pass as complete.  The first
 *   member may also be zlib-wrapped (zlib's 15 + 32 detection);
 * - gzip, deflate: a stream cut short is an error at decode_finish (httpx
 *   returns what it has); br and zstd agree with httpx here;
 * - zstd: a frame needing a window over 8 MiB is refused, as RFC 9659
 *   allows (httpx takes 128 MiB, and the window is memory per decoder);
 *   so are the pre-1.0 "legacy" frames libzstd still reads.
 * Like httpx: an empty body is fine whatever the coding; "deflate" is
 * zlib-wrapped unless its first two bytes are not a zlib header, then raw;
 * zstd frames may be concatenated; trailing data after br or deflate is an
 * error. */
#ifndef FANOUTD_DECODE_H
#define FANOUTD_DECODE_H

#include <stddef.h>

/* The most one sink call gets. */
#define DECODE_CHUNK 16384
/* The most codings one Content-Encoding value may list (identity aside). */
#define DECODE_MAX_CODINGS 4

struct decoder;

/* Output sink: len > 0 decoded bytes, borrowed for the call.  Return 0 for
 * more, -1 to stop (a size cap): decode_feed then returns DECODE_STOPPED at
 * once without decoding more. */
typedef int (*decode_sink_fn)(void *arg, const char *data, size_t len);

enum decode_result {
	DECODE_OK = 0,     /* all input taken; decode_finish: the body is whole */
	DECODE_STOPPED,    /* the sink returned -1 */
	DECODE_ERROR,      /* bad or truncated data: decode_error says what */
};

/* A decoder for the value of a Content-Encoding header (len bytes, not
 * NUL-terminated): a comma-separated list of codings, case-insensitive,
 * "gzip", "x-gzip", "deflate", "br", "zstd" ("identity" entries and empty
 * ones skipped), undone last-applied (last listed) first.  NULL when there
 * is nothing to undo, a coding is unknown or there are more than
 * DECODE_MAX_CODINGS: then the body is passed on as sent. */
struct decoder *decode_new(const char *value, size_t len);

/* What d undoes, in the header's order and spelling-normalised ("gzip",
 * "gzip, br"; x-gzip is "gzip"), for the answer's "decoded" field.  Owned
 * by d. */
const char *decode_name(const struct decoder *d);

/* Decode len more bytes of the body into sink.  Once a call has returned
 * DECODE_STOPPED or DECODE_ERROR every later call (decode_finish too)
 * returns the same at once, without calling the sink. */
enum decode_result decode_feed(struct decoder *d, const char *data, size_t len,
                               decode_sink_fn sink, void *arg)
	__attribute__((warn_unused_result));

/* The body ended: DECODE_ERROR if a stream is cut short ("br: truncated
 * stream").  The sink gets whatever a coding still holds back (none of
 * today's do, but a caller must not rely on that). */
enum decode_result decode_finish(struct decoder *d, decode_sink_fn sink, void *arg)
	__attribute__((warn_unused_result));

/* After DECODE_ERROR: the coding and why, e.g. "gzip: invalid data
 * (incorrect header check)", "br: truncated stream", "gzip: data after the
 * end of the stream"; "" before.  Owned by d. */
const char *decode_error(const struct decoder *d);

void decode_free(struct decoder *d);

#endif
