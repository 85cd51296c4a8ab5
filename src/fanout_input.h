/* fanout_input: what the `fanout` client sends — URLs from its arguments,
 * from lines of text (standard input or -f FILE: blank lines and #
 * comments skipped) or a JSON batch (SPEC section 3) in -f FILE, and the
 * command-line options laid over it.  Pure (no I/O): the caller reads the
 * text; a batch is always held in its long form, {"requests": [...]}. */
#ifndef FANOUT_INPUT_H
#define FANOUT_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* The options that shape the batch; each "not given" leaves the batch's
 * own setting (or the daemon's default). */
struct fanout_batch_opts {
	long concurrency;        /* -c N: "max_concurrency"; 0: not given */
	long timeout_ms;         /* -t MS: each request's "timeout_ms"; 0: not given */
	bool settled;            /* --settled: "mode": "settled" */
	const char *method;      /* -X METHOD: each request's "method"; NULL: not given */
	json_t *headers;         /* -H 'K: V'...: merged into "headers"; NULL: none */
	long retries;            /* --retries N: "retry": {"attempts": N + 1}; <0: not given */
	long progress_ms;        /* "progress_ms" (the bar asks for it); 0: not asked */
};

/* A new empty batch, {"requests": []}; NULL when out of memory. */
json_t *fanout_input_new(void);

/* Appends one URL; -1 when it is not UTF-8 (or out of memory). */
int fanout_input_add_url(json_t *batch, const char *url) __attribute__((warn_unused_result));

/* Appends the URLs of len bytes of text, one per line: surrounding white
 * space trimmed, blank lines and lines starting with # skipped, CRLF
 * accepted.  0, or -1 with a message naming the line in err. */
int fanout_input_add_lines(json_t *batch, const char *text, size_t len, char *err,
                           size_t errlen) __attribute__((warn_unused_result));

/* The batch of a -f FILE's text: a JSON batch when its first non-blank
 * character is [ or { (a list of URLs or request objects, or the long
 * form), else lines as for fanout_input_add_lines().  NULL with a message
 * in err when it does not parse. */
json_t *fanout_input_parse_file(const char *text, size_t len, char *err, size_t errlen);

/* Lays the options over the batch: -X and -t set the method and
 * timeout_ms of each request that does not set its own (a URL string
 * becomes {"url": …}); -H headers replace the batch's of the same name
 * (case-insensitive); -c, --settled, --retries and progress_ms replace the
 * batch's keys.  0, or -1 with a message in err. */
int fanout_input_apply(json_t *batch, const struct fanout_batch_opts *o, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

/* Parses -H's argument "Name: value" into headers (an object).  0, or -1
 * with a message in err (no colon, an empty name, white space in it). */
int fanout_input_header(json_t *headers, const char *arg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Requests in the batch. */
size_t fanout_input_count(const json_t *batch);
/* Request i's URL and id (NULL when it has none). */
const char *fanout_input_url(const json_t *batch, size_t i);
const json_t *fanout_input_id(const json_t *batch, size_t i);
/* Whether the batch runs in mode "settled". */
bool fanout_input_settled(const json_t *batch);

#endif
