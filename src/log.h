/* log: leveled logging to stderr.  Owns the current level; nothing else. */
#ifndef FANOUTD_LOG_H
#define FANOUTD_LOG_H

enum log_level {
	LOG_LEVEL_ERROR = 0,   /* something failed */
	LOG_LEVEL_WARN,        /* something is off but we carry on */
	LOG_LEVEL_INFO,        /* start, stop, reload, listeners */
	LOG_LEVEL_DEBUG,       /* per batch and per request detail */
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A raw line (the JSON access log): written as is, with a newline. */
void log_line(const char *line);

#endif
