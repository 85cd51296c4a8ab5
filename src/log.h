/* log: leveled logging to stderr.  Owns the current level and the shape
 * of a line; the modules own the names of their objects (log_about). */
#ifndef FANOUTD_LOG_H
#define FANOUTD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,   /* something failed */
	LOG_LEVEL_WARN,        /* something is off but we carry on */
	LOG_LEVEL_INFO,        /* start, stop, reload, listeners */
	LOG_LEVEL_DEBUG,       /* the life of each batch, fetch and connection (-v) */
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Would a line at level be written? */
bool log_enabled(enum log_level level);

/* One line at level. */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* Writes the name of obj, as a line about it starts ("b17[3]"), into buf. */
typedef void (*log_describe_fn)(const void *obj, char *buf, size_t len);

/* One line about obj, "name: message" (pgbouncer's slog_*).  When level
 * is not written, nothing is formatted and describe is not called, so a
 * debug line costs a comparison when -v is off.  Each module wraps this
 * for its own objects: batch_debug(b, ...), fetch_debug(f, ...),
 * pool_conn_debug(c, ...). */
void log_about(enum log_level level, log_describe_fn describe, const void *obj,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A raw line (the JSON access log): written as is, with a newline. */
void log_line(const char *line);

#endif
