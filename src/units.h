/* units: the value syntax of the config file.  Parses and formats
 * durations ("250ms", "5s"), sizes ("8M"), rates ("20/s"), percentages
 * ("20%"), booleans and octal modes; checks listen addresses (Redis
 * URLs: redis_url.h); normalises upstream URLs, CIDR lists and host globs (the address
 * syntax itself is netaddr.h's); forms the upstream key.  Memory runs
 * out by xalloc.h's policy. */
#ifndef FANOUTD_UNITS_H
#define FANOUTD_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UNITS_KIB 1024ULL
#define UNITS_MIB (1024ULL * UNITS_KIB)
#define UNITS_GIB (1024ULL * UNITS_MIB)
#define UNITS_HOUR_MS 3600000L
#define UNITS_DAY_MS (24 * UNITS_HOUR_MS)

/* Size of the buffer units_normalise_upstream writes. */
#define UNITS_UPSTREAM_KEY_MAX 288

/* ---- string helpers ---------------------------------------------------- */

/* True if S has a control character (below 0x20, or DEL). */
bool units_has_ctrl(const char *s);

/* NULL-terminated string vectors; a NULL vector is empty. */
void units_strv_free(char **v);
void units_strv_push(char ***v, char *s);

/* ---- parsers: 0 on success, -1 on a bad value -------------------------- */

/* Decimal digits only, no sign or space, up to LONG_MAX. */
int units_parse_long(const char *s, long *out);

/* Durations: a number with ms, s, m or h (a bare number is seconds, like
 * nginx); up to 9 decimals if the result is whole ms.  Sizes:
 * bytes with optional K, M or G (either case, powers of 1024).  Rates: N/s,
 * N/m or N/h (N may be decimal), stored per second.  Booleans: yes/no,
 * true/false, on/off, 1/0 in any case.  Modes: up to 5 octal digits. */
int units_parse_duration_ms(const char *s, long *out);
int units_parse_size(const char *s, uint64_t *out);
int units_parse_rate(const char *s, double *out);
int units_parse_bool(const char *s, bool *out);
int units_parse_mode(const char *s, long *out);
/* Percentages: "N%" or "N.D%" (up to 9 decimals), stored as a fraction:
 * "20%" is 0.2. */
int units_parse_percent(const char *s, double *out);

/* ---- formatting: each writes text the parsers read back ---------------- */

/* Whole seconds as "Ns", else "Nms". */
void units_format_duration(long ms, char *buf, size_t len);
/* The largest exact unit, for messages: "0", "1ms", "5s", "2m", "24h". */
void units_format_duration_short(long ms, char *buf, size_t len);
/* The largest exact unit of G, M, K, else bytes. */
void units_format_size(uint64_t v, char *buf, size_t len);
/* The shortest fixed-point "N/s" that reads back as exactly V. */
void units_format_rate(double v, char *buf, size_t len);
/* The shortest fixed-point "N%" that reads back as exactly the fraction V. */
void units_format_percent(double v, char *buf, size_t len);

/* ---- addresses: on failure write a message (prefixed as noted) to MSG -- */

/* A listen address: HOST:PORT, [IPv6]:PORT or unix:/absolute/path, as
 * netaddr_parse_listen() reads it.  Messages start with "listen: ". */
int units_check_listen(const char *s, char *msg, size_t len);

/* The key of an upstream, "scheme://host:port" (host lower-case, an IPv6
 * one canonical and unbracketed as given: the brackets are added here),
 * as snprintf into OUT of LEN bytes; returns the length it needs.  What
 * config sections, the upstream registry and the metrics are keyed by. */
size_t units_upstream_key(char *out, size_t len, bool tls, const char *host, long port);

/* "scheme://host[:port][/]" -> "scheme://host:port" in OUT (at least
 * UNITS_UPSTREAM_KEY_MAX bytes): lower case, default port filled in, IPv6
 * in brackets and in canonical form.  No allocation: lookups use it too. */
int units_normalise_upstream(const char *url, char *out, char *msg, size_t len);

/* Comma-separated lists into a new NULL-terminated vector in *OUT: host
 * globs (lower-cased) or CIDRs (canonical "addr/len", host bits must be
 * clear).  An empty VALUE gives an empty vector.  Messages start with
 * "NAME: ". */
int units_parse_host_list(const char *name, const char *value, char ***out,
                          char *msg, size_t len);
int units_parse_cidr_list(const char *name, const char *value, char ***out,
                          char *msg, size_t len);

/* v in decimal, what printf's "%ju" writes, into at least UNITS_UINT_MAX
 * bytes at dst, without printf (it runs for every request); returns the
 * end (no NUL terminator). */
#define UNITS_UINT_MAX 20   /* UINT64_MAX's digits */
char *units_format_uint(char *dst, uintmax_t v);

#endif
