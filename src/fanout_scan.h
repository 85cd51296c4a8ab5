/* fanout_scan: a quick look at the top-level keys of one line of a
 * streamed answer without building it — the request's index, whether it
 * is a failure, and where its body and encoding are — so the `fanout`
 * client prints a 100,000-line answer without parsing every body.  Pure;
 * it does not validate the line: a line it cannot follow is parsed
 * properly by the caller. */
#ifndef FANOUT_SCAN_H
#define FANOUT_SCAN_H

#include <stdbool.h>
#include <stddef.h>

struct fanout_scan {
	bool has_index;          /* "index" is there, an integer */
	long long index;
	bool failure;            /* "type" (mode all) or "error" (settled) is there */
	bool other;              /* "progress" or "done" is there: not an entry */
	const char *body;        /* the raw value of "body" (NULL: absent) */
	size_t body_len;
	const char *encoding;    /* the raw value of "encoding", quotes included */
	size_t encoding_len;
};

/* Scans a line holding one JSON object.  0, or -1 when it is not an
 * object this scan can follow (the caller parses it instead). */
int fanout_scan_line(const char *line, size_t len, struct fanout_scan *s)
	__attribute__((warn_unused_result));

/* Whether the raw value (len bytes) is the JSON string "text", exactly. */
bool fanout_scan_is(const char *value, size_t len, const char *text);

#endif
