/* log: leveled logging to stderr, one line per call,
 * "fanoutd: level: [name: ]msg".  stderr is line-buffered under systemd's
 * journal and unbuffered on a tty; each line is built first and written
 * with one call so lines never mix. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static enum log_level current_level = LOG_LEVEL_INFO;

void log_set_level(enum log_level level) { current_level = level; }
enum log_level log_get_level(void) { return current_level; }
bool log_enabled(enum log_level level) { return level <= current_level; }

/* name (or NULL) is the object the line is about. */
static void log_v(enum log_level level, const char *name, const char *fmt, va_list ap)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	char line[2048];
	size_t n;

	n = (size_t)snprintf(line, sizeof line, "fanoutd: %s: %s%s", names[level],
	                     name ? name : "", name ? ": " : "");
	if (n >= sizeof line)
		n = sizeof line - 1;
	vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	n = strlen(line);
	line[n] = '\n';
	fwrite(line, 1, n + 1, stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	log_v(level, NULL, fmt, ap);
	va_end(ap);
}

void log_about(enum log_level level, log_describe_fn describe, const void *obj,
               const char *fmt, ...)
{
	char name[128];
	va_list ap;

	if (!log_enabled(level))
		return;
	describe(obj, name, sizeof name);
	va_start(ap, fmt);
	log_v(level, name, fmt, ap);
	va_end(ap);
}

void log_line(const char *line)
{
	fprintf(stderr, "%s\n", line);
}
