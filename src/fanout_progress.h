/* fanout_progress: the text of the `fanout` client's progress bar —
 * done/total, failed, requests per second and the ETA, fitted to the
 * terminal's width — and the escape sequences that draw and clear it.
 * Pure (no I/O, no clock): the caller passes the counts and the time. */
#ifndef FANOUT_PROGRESS_H
#define FANOUT_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>

/* The interval between two redraws: at most 10 a second. */
#define FANOUT_PROGRESS_INTERVAL_MS 100.0

struct fanout_progress {
	size_t total;            /* requests in the batch */
	size_t done;             /* answered (succeeded or failed) */
	size_t failed;           /* of those, failed */
	double elapsed_ms;       /* since the batch was sent */
};

/* The bar's line for p in at most width - 1 columns (never the last
 * column: a terminal wraps there), NUL-terminated in buf (size bytes);
 * returns its length.  E.g.
 *   [#######.............]  3/10  1 failed  12.5 req/s  ETA 0:01 */
size_t fanout_progress_text(char *buf, size_t size, const struct fanout_progress *p,
                            unsigned width);

/* A frame: "\r", the text, then "\033[K" (erase to the end of the line). */
size_t fanout_progress_frame(char *buf, size_t size, const struct fanout_progress *p,
                             unsigned width);

/* What clears the bar's line: "\r\033[K". */
const char *fanout_progress_clear(void);

/* Whether a frame is due at now_ms when the last was drawn at last_ms
 * (negative: none yet): at most one per FANOUT_PROGRESS_INTERVAL_MS. */
bool fanout_progress_due(double last_ms, double now_ms);

/* The ETA as "m:ss" or "h:mm:ss" ("--:--" when unknown: nothing done yet)
 * into buf; returns buf. */
char *fanout_progress_eta(char *buf, size_t size, const struct fanout_progress *p);

#endif
