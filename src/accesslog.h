/* accesslog: the JSON line written to stderr for each batch when
 * access_log = yes: time, client, size, outcome, status, elapsed time and
 * the first failure.  Owns only the formatting; it never sees a token or
 * a body. */
#ifndef FANOUTD_ACCESSLOG_H
#define FANOUTD_ACCESSLOG_H

#include <stddef.h>
#include <sys/socket.h>

#define ACCESSLOG_CLIENT_MAX 64

struct accesslog_entry {
	char client[ACCESSLOG_CLIENT_MAX]; /* "127.0.0.1:51234", "[::1]:51234", "unix" */
	size_t n;                  /* requests in the batch */
	const char *outcome;       /* "ok", "failed", "settled", "draining", "client_gone" */
	int status;                /* HTTP status of the answer; 0 when none was started */
	double elapsed_ms;         /* from the batch's arrival to its end */
	long failed_index;         /* first failed request in input order; -1 none */
	const char *failed_type;   /* its error type, when failed_index >= 0 */
};

/* The client's address as the log shows it ("unknown" for NULL). */
void accesslog_client(char *buf, size_t len, const struct sockaddr *sa);

/* Write the line (one write, valid JSON). */
void accesslog_write(const struct accesslog_entry *e);

#endif
