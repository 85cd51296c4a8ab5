/* fanout_answer: the `fanout` client's reading of fanoutd's answer — the
 * streamed lines of SPEC section 11, or a buffered answer of section 4
 * from a daemon that does not stream — and its three outputs: ndjson (one
 * line per request, in input order as soon as that order allows), json
 * (the whole answer of section 4, built from the lines) and body (each
 * body, in input order).  No network and no terminal: it writes to the
 * FILE it is given and the caller flushes; it borrows the batch sent. */
#ifndef FANOUT_ANSWER_H
#define FANOUT_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

enum fanout_output {
	FANOUT_OUTPUT_NDJSON,    /* each request's object, one a line */
	FANOUT_OUTPUT_JSON,      /* the whole answer, one JSON value */
	FANOUT_OUTPUT_BODY,      /* each request's body, one a line */
};

struct fanout_answer;

/* A reader of the answer to batch (borrowed until destroy), writing
 * output to out; NULL when out of memory. */
struct fanout_answer *fanout_answer_create(const json_t *batch, enum fanout_output output,
                                           FILE *out);
void fanout_answer_destroy(struct fanout_answer *a);

/* One line of a streamed answer (len bytes, no newline): a request's
 * result or error (it is written out as soon as the order allows), a
 * progress line or the last line.  0, or -1 with a message in err (not
 * JSON, an index out of range or seen twice). */
int fanout_answer_line(struct fanout_answer *a, const char *line, size_t len, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

/* A whole buffered answer (SPEC section 4, Content-Type application/json),
 * taken as if it had come as lines: its results and errors, then a last
 * line made from "ok", "error", "message", "completed" and "cancelled"; a
 * request in "completed" that has no result in an error group gets
 * {"index", "url", "completed": true}.  0, or -1 with a message in err. */
int fanout_answer_buffered(struct fanout_answer *a, const char *body, size_t len,
                           char *err, size_t errlen) __attribute__((warn_unused_result));

/* The end of the answer: every request with no line of its own gets
 * {"index", "url", "error": {"type": "cancelled", "message": "cancelled"}},
 * and what is left of the output is written (for json, all of it).  0, or
 * -1 with a message in err when the last line never came. */
int fanout_answer_finish(struct fanout_answer *a, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* After finish: whether every request succeeded (the last line's "ok"). */
bool fanout_answer_ok(const struct fanout_answer *a);

/* Requests answered so far (succeeded or failed), and of those failed. */
size_t fanout_answer_done(const struct fanout_answer *a);
size_t fanout_answer_failed(const struct fanout_answer *a);

/* Whether an entry of "results"/"errors" (or a line) is a failure: it
 * carries "type" (an error group's entry) or "error" (mode settled). */
bool fanout_answer_is_failure(const json_t *entry);

#endif
