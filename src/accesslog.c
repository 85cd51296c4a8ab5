/* accesslog: one JSON line per batch, built with jansson so it is valid
 * JSON whatever the values, and written with log_line():
 *   {"time":"2026-11-26T01:02:03.456Z","client":"127.0.0.1:51234","n":20,
 *    "outcome":"failed","status":502,"elapsed_ms":23.4,"failed_index":3,
 *    "failed_type":"http_status"} */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <jansson.h>

#include "accesslog.h"
#include "netaddr.h"
#include "log.h"
#include "xalloc.h"

void accesslog_client(char *buf, size_t len, const struct sockaddr *sa)
{
	if (sa != NULL && sa->sa_family == AF_UNIX) {
		snprintf(buf, len, "unix");
		return;
	}
	if (sa == NULL || netaddr_format(sa, buf, len) < 0)
		snprintf(buf, len, "unknown");
}

/* Now in UTC, ISO 8601 with milliseconds. */
static void now_iso(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char secs[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03ldZ", secs, ts.tv_nsec / 1000000);
}

void accesslog_write(const struct accesslog_entry *e)
{
	json_t *line = json_object();
	char when[48];
	char *text;

	now_iso(when, sizeof when);
	json_object_set_new(line, "time", json_string(when));
	json_object_set_new(line, "client", json_string(e->client));
	json_object_set_new(line, "n", json_integer((json_int_t)e->n));
	json_object_set_new(line, "outcome", json_string(e->outcome));
	json_object_set_new(line, "status", json_integer(e->status));
	json_object_set_new(line, "elapsed_ms", json_real((double)(long long)(e->elapsed_ms * 10 + 0.5) / 10));
	if (e->failed_index >= 0) {
		json_object_set_new(line, "failed_index", json_integer(e->failed_index));
		json_object_set_new(line, "failed_type", json_string(e->failed_type));
	}
	text = xcheck(json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER |
	                                JSON_REAL_PRECISION(12)));
	json_decref(line);
	log_line(text);
	free(text);
}
