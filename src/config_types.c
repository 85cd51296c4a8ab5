/* config_types: the value types of config keys, one row of {parse, dump,
 * clear} each (pgbouncer's setter/getter pairs).  Parsing checks a key's
 * text and range and stores the value at the key's offset; dumping
 * writes lines that parse back to the same value; clearing frees it.
 * The syntax itself ("5s", "8M", addresses) is units.c's. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_internal.h"
#include "redis_url.h"
#include "retry.h"
#include "units.h"
#include "xalloc.h"

#define DUMP_WRAP 150          /* list values are split over lines this long */

/* How a number is kept in its struct. */
enum number_store {
	STORE_LONG,           /* long; -1 = unset (upstream sections) */
	STORE_U64,            /* uint64_t; [fanoutd] only, never unset */
	STORE_INT,            /* int; -1 = unset (upstream sections) */
	STORE_BOOL,           /* bool; [fanoutd] only, never unset */
};

struct config_type {
	/* Parse IN for K into BASE; on failure write MSG ("name: ..."). */
	int (*parse)(const struct config_key *k, void *base, const struct config_input *in,
	             char *msg, size_t len);
	/* Write K's value at BASE as "name = value" lines. */
	void (*dump)(FILE *out, const struct config_key *k, const void *base);
	/* Free what K's value at BASE owns and leave it unset. */
	void (*clear)(const struct config_key *k, void *base);
	bool repeats;         /* a list: given again, it adds */

	/* "bad WHAT \"value\"HINT" */
	const char *what, *hint;

	/* Numbers (parse_number, dump_number): read by one of the scanners,
	 * range-checked with BOUND (NULL: no range), written by FORMAT. */
	int (*scan)(const char *s, long *v);
	int (*scan_size)(const char *s, uint64_t *v);
	void (*format)(long long v, char *buf, size_t len);
	void (*bound)(long long v, char *buf, size_t len);
	enum number_store store;

	/* Lists (parse_list): splits VALUE into a vector. */
	int (*split)(const char *name, const char *value, char ***out, char *msg, size_t len);
};

static const struct config_type *type_of(const struct config_key *k);

/* ---- shared by the types ------------------------------------------------ */

static void *field(void *base, const struct config_key *k)
{
	return (char *)base + k->offset;
}

static const void *cfield(const void *base, const struct config_key *k)
{
	return (const char *)base + k->offset;
}

static int bad_value(const struct config_key *k, const char *value, char *msg, size_t len)
{
	const struct config_type *t = type_of(k);

	snprintf(msg, len, "%s: bad %s \"%s\"%s", k->name, t->what, value, t->hint);
	return -1;
}

/* The room a value has on one "name = value" line of the dump. */
static size_t line_room(const struct config_key *k)
{
	return CONFIG_MAX_LINE - 3 - strlen(k->name);
}

/* TEXT as the value of K; NULL for an unset one, which [fanoutd] and
 * [redis] write as "name =" (none) and an upstream section leaves out
 * (inherited). */
static void put(FILE *out, const struct config_key *k, const char *text)
{
	if (text != NULL)
		fprintf(out, "%s = %s\n", k->name, text);
	else if (k->section != CONFIG_SECTION_UPSTREAM)
		fprintf(out, "%s =\n", k->name);
}

/* ---- numbers: INT, SIZE, DURATION, MODE, BOOL, TRIBOOL, HTTP2 ----------- */

/* Digits only; too many of them is out of range rather than bad. */
static int scan_int(const char *s, long *v)
{
	if (s[0] == '\0' || strspn(s, "0123456789") != strlen(s))
		return -1;
	if (units_parse_long(s, v) < 0)
		*v = LONG_MAX;
	return 0;
}

static int scan_bool(const char *s, long *v)
{
	bool b = false;
	int r = units_parse_bool(s, &b);

	*v = b;
	return r;
}

/* The words of key http2, by enum config_http2; the dump writes these. */
static const char *const http2_names[] = {
	[CONFIG_HTTP2_AUTO] = "auto",
	[CONFIG_HTTP2_NO] = "no",
	[CONFIG_HTTP2_PRIOR] = "prior-knowledge",
};

#define N_HTTP2 (sizeof http2_names / sizeof http2_names[0])

/* One of http2_names, any case. */
static int scan_http2(const char *s, long *v)
{
	for (size_t i = 0; i < N_HTTP2; i++) {
		if (strcasecmp(s, http2_names[i]) == 0) {
			*v = (long)i;
			return 0;
		}
	}
	return -1;
}

/* hedge_after: off, p95 or a duration of 1ms..1h (the range is checked
 * here: the sentinel for p95 is no duration). */
static int scan_hedge(const char *s, long *v)
{
	if (strcasecmp(s, "off") == 0 || strcasecmp(s, "no") == 0) {
		*v = 0;
		return 0;
	}
	if (strcasecmp(s, "p95") == 0) {
		*v = CONFIG_HEDGE_P95;
		return 0;
	}
	if (units_parse_duration_ms(s, v) < 0 || *v < 1 || *v > UNITS_HOUR_MS)
		return -1;
	return 0;
}

/* Numbers pass through long long: none is negative but "unset" (-1), and
 * a size beyond it is out of every range anyway. */
static int scan_number(const struct config_type *t, const char *s, long long *v)
{
	uint64_t u = 0;
	long l = 0;

	if (t->scan_size != NULL) {
		if (t->scan_size(s, &u) < 0)
			return -1;
		*v = u > LLONG_MAX ? LLONG_MAX : (long long)u;
		return 0;
	}
	if (t->scan(s, &l) < 0)
		return -1;
	*v = l;
	return 0;
}

static void store_number(const struct config_type *t, void *p, long long v)
{
	switch (t->store) {
	case STORE_LONG: *(long *)p = (long)v; break;
	case STORE_U64: *(uint64_t *)p = (uint64_t)v; break;
	case STORE_INT: *(int *)p = (int)v; break;
	case STORE_BOOL: *(bool *)p = v > 0; break;
	}
}

/* The number at P; -1 if it is unset. */
static long long load_number(const struct config_type *t, const void *p)
{
	switch (t->store) {
	case STORE_LONG: return *(const long *)p;
	case STORE_U64: return (long long)*(const uint64_t *)p;
	case STORE_INT: return *(const int *)p;
	case STORE_BOOL: return *(const bool *)p;
	}
	return -1;
}

static void format_int(long long v, char *buf, size_t len)
{
	snprintf(buf, len, "%lld", v);
}

static void format_mode(long long v, char *buf, size_t len)
{
	snprintf(buf, len, "%04llo", v);
}

static void format_bool(long long v, char *buf, size_t len)
{
	snprintf(buf, len, "%s", v ? "yes" : "no");
}

static void format_http2(long long v, char *buf, size_t len)
{
	snprintf(buf, len, "%s", v < (long long)N_HTTP2 ? http2_names[v] : "?");
}

static void format_hedge(long long v, char *buf, size_t len)
{
	if (v == 0)
		snprintf(buf, len, "off");
	else if (v == CONFIG_HEDGE_P95)
		snprintf(buf, len, "p95");
	else
		units_format_duration((long)v, buf, len);
}

static void format_size(long long v, char *buf, size_t len)
{
	units_format_size((uint64_t)v, buf, len);
}

/* The dump writes "5s" or "250ms"; a range reads "1ms..24h". */
static void format_duration(long long v, char *buf, size_t len)
{
	units_format_duration((long)v, buf, len);
}

static void format_duration_short(long long v, char *buf, size_t len)
{
	units_format_duration_short((long)v, buf, len);
}

static int parse_number(const struct config_key *k, void *base, const struct config_input *in,
                        char *msg, size_t len)
{
	const struct config_type *t = type_of(k);
	char lo[32], hi[32];
	long long v;

	if (scan_number(t, in->value, &v) < 0)
		return bad_value(k, in->value, msg, len);
	if (t->bound != NULL && (v < k->min || v > k->max)) {
		t->bound(k->min, lo, sizeof lo);
		t->bound(k->max, hi, sizeof hi);
		snprintf(msg, len, "%s: %s is out of range (%s..%s)", k->name, in->value, lo, hi);
		return -1;
	}
	store_number(t, field(base, k), v);
	return 0;
}

static void dump_number(FILE *out, const struct config_key *k, const void *base)
{
	const struct config_type *t = type_of(k);
	long long v = load_number(t, cfield(base, k));
	char buf[64];

	if (v >= 0)
		t->format(v, buf, sizeof buf);
	put(out, k, v >= 0 ? buf : NULL);
}

/* -1 is "unset" where a number can be; the others get their default next. */
static void clear_number(const struct config_key *k, void *base)
{
	store_number(type_of(k), field(base, k), -1);
}

/* ---- RATE: double per second, 0 = unset --------------------------------- */

static int parse_rate(const struct config_key *k, void *base, const struct config_input *in,
                      char *msg, size_t len)
{
	double d;

	if (units_parse_rate(in->value, &d) < 0)
		return bad_value(k, in->value, msg, len);
	if (!(d >= CONFIG_MIN_RATE_PER_S) || d > CONFIG_MAX_RATE_PER_S) {
		snprintf(msg, len, "%s: %s is out of range (at least 0.000001/h, at most %.0f/s)",
		         k->name, in->value, CONFIG_MAX_RATE_PER_S);
		return -1;
	}
	*(double *)field(base, k) = d;
	return 0;
}

static void dump_rate(FILE *out, const struct config_key *k, const void *base)
{
	double v = *(const double *)cfield(base, k);
	char buf[96];

	if (v > 0)
		units_format_rate(v, buf, sizeof buf);
	put(out, k, v > 0 ? buf : NULL);
}

static void clear_rate(const struct config_key *k, void *base)
{
	*(double *)field(base, k) = 0;
}

/* ---- PERCENT: double fraction, -1 = unset ------------------------------- */

static int parse_percent(const struct config_key *k, void *base, const struct config_input *in,
                         char *msg, size_t len)
{
	double d;

	if (units_parse_percent(in->value, &d) < 0)
		return bad_value(k, in->value, msg, len);
	if (d < (double)k->min / 100 || d > (double)k->max / 100) {
		snprintf(msg, len, "%s: %s is out of range (%lld%%..%lld%%)",
		         k->name, in->value, k->min, k->max);
		return -1;
	}
	*(double *)field(base, k) = d;
	return 0;
}

static void dump_percent(FILE *out, const struct config_key *k, const void *base)
{
	double v = *(const double *)cfield(base, k);
	char buf[64];

	if (v >= 0)
		units_format_percent(v, buf, sizeof buf);
	put(out, k, v >= 0 ? buf : NULL);
}

static void clear_percent(const struct config_key *k, void *base)
{
	*(double *)field(base, k) = -1;
}

/* ---- RETRY_ON: struct config_retry_on, !set = unset --------------------- */

/* retry.c reads and writes the list; here it is only stored, and refused
 * when its written form would not fit on the dump's line. */
static int parse_retry_on(const struct config_key *k, void *base, const struct config_input *in,
                          char *msg, size_t len)
{
	struct config_retry_on *p = field(base, k), v = { .set = true };
	char err[256], text[2048];

	if (!retry_on_parse_list(&v.on, in->value, err, sizeof err)) {
		snprintf(msg, len, "%s: %s", k->name, err);
		return -1;
	}
	retry_on_format(&v.on, text, sizeof text);
	if (strlen(text) > line_room(k)) {
		snprintf(msg, len, "%s: list too long (at most %zu characters written as "
		         "\"connect, timeout, 429\")", k->name, line_room(k));
		return -1;
	}
	*p = v;
	return 0;
}

static void dump_retry_on(FILE *out, const struct config_key *k, const void *base)
{
	const struct config_retry_on *p = cfield(base, k);
	char text[2048];

	if (p->set)
		retry_on_format(&p->on, text, sizeof text);
	put(out, k, p->set ? text : NULL);
}

static void clear_retry_on(const struct config_key *k, void *base)
{
	memset(field(base, k), 0, sizeof(struct config_retry_on));
}

/* ---- PATH: char *, NULL = unset ----------------------------------------- */

static int parse_path(const struct config_key *k, void *base, const struct config_input *in,
                      char *msg, size_t len)
{
	const char *value = in->value;
	char **p = field(base, k);
	char *nv = NULL;

	if (units_has_ctrl(value)) {
		snprintf(msg, len, "%s: control character in path", k->name);
		return -1;
	}
	if (value[0] == '/' || (value[0] != '\0' && in->dir == NULL))
		nv = xstrdup(value);
	else if (value[0] != '\0')
		nv = xasprintf("%s/%s", in->dir, value);
	if (nv != NULL && strlen(nv) > line_room(k)) {
		snprintf(msg, len, "%s: path too long (at most %zu characters once made absolute)",
		         k->name, line_room(k));
		free(nv);
		return -1;
	}
	free(*p);
	*p = nv;
	return 0;
}

static void dump_path(FILE *out, const struct config_key *k, const void *base)
{
	put(out, k, *(char *const *)cfield(base, k));
}

static void clear_path(const struct config_key *k, void *base)
{
	char **p = field(base, k);

	free(*p);
	*p = NULL;
}

/* ---- WORD, REDIS_URL: char *, dumped and cleared as PATH ---------------- */

/* min..max characters, each printable ASCII but space and ';' (inih would
 * take " ;" for a comment, and a dumped ";..." value as one). */
static int parse_word(const struct config_key *k, void *base, const struct config_input *in,
                      char *msg, size_t len)
{
	const char *value = in->value;
	size_t n = strlen(value);
	char **p = field(base, k);

	if (n < (size_t)k->min || n > (size_t)k->max) {
		snprintf(msg, len, "%s: length %zu is out of range (%lld..%lld characters)",
		         k->name, n, k->min, k->max);
		return -1;
	}
	if (units_has_ctrl(value)) {
		snprintf(msg, len, "%s: control character in value", k->name);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c == ' ' || c >= 0x7f || c == ';')
			return bad_value(k, value, msg, len);
	}
	free(*p);
	*p = xstrdup(value);
	return 0;
}

/* Checked by the parser the Redis client connects with (redis_url.c), so
 * what loads here connects there; kept as text.  "" = no Redis. */
static int parse_redis_url(const struct config_key *k, void *base, const struct config_input *in,
                           char *msg, size_t len)
{
	char **p = field(base, k);
	struct redis_url u;

	if (in->value[0] != '\0') {
		if (redis_url_parse(in->value, &u, msg, len) < 0)
			return -1;
		redis_url_clear(&u);
	}
	if (strlen(in->value) > line_room(k)) {
		snprintf(msg, len, "%s: too long (at most %zu characters)", k->name, line_room(k));
		return -1;
	}
	free(*p);
	*p = in->value[0] != '\0' ? xstrdup(in->value) : NULL;
	return 0;
}

/* ---- HOSTS, CIDRS: NULL-terminated char ** ------------------------------ */

static int parse_list(const struct config_key *k, void *base, const struct config_input *in,
                      char *msg, size_t len)
{
	char ***p = field(base, k), **v;

	if (type_of(k)->split(k->name, in->value, &v, msg, len) < 0)
		return -1;
	/* config_dump writes at least one element per "name = " line */
	for (size_t i = 0; v[i] != NULL; i++) {
		if (strlen(v[i]) > line_room(k)) {
			snprintf(msg, len, "%s: element too long (at most %zu characters)",
			         k->name, line_room(k));
			units_strv_free(v);
			return -1;
		}
	}
	if (!in->again) {
		units_strv_free(*p);
		*p = v;
		return 0;
	}
	for (size_t i = 0; v[i] != NULL; i++)
		units_strv_push(p, v[i]);
	free(v);
	return 0;
}

static int parse_hosts(const struct config_key *k, void *base, const struct config_input *in,
                       char *msg, size_t len)
{
	if (!in->again && in->value[0] == '\0') {
		snprintf(msg, len, "%s: empty list would refuse every host (use * to allow all)",
		         k->name);
		return -1;
	}
	return parse_list(k, base, in, msg, len);
}

static void dump_list(FILE *out, const struct config_key *k, const void *base)
{
	char *const *v = *(char **const *)cfield(base, k);
	size_t col = 0;

	if (v == NULL || v[0] == NULL) {
		fprintf(out, "%s =\n", k->name);
		return;
	}
	for (size_t i = 0; v[i] != NULL; i++) {
		if (col > 0 && col + strlen(v[i]) + 2 > DUMP_WRAP) {
			fputc('\n', out);
			col = 0;
		}
		if (col == 0)
			col = (size_t)fprintf(out, "%s = %s", k->name, v[i]);
		else
			col += (size_t)fprintf(out, ", %s", v[i]);
	}
	fputc('\n', out);
}

static void clear_list(const struct config_key *k, void *base)
{
	char ***p = field(base, k);

	units_strv_free(*p);
	*p = NULL;
}

/* ---- LISTEN: cfg->listen[] and cfg->nlisten ----------------------------- */

static void clear_listen(const struct config_key *k, void *base)
{
	struct config *cfg = base;

	(void)k;
	for (size_t i = 0; i < cfg->nlisten; i++)
		free(cfg->listen[i]);
	memset(cfg->listen, 0, sizeof cfg->listen);
	cfg->nlisten = 0;
}

static int parse_listen(const struct config_key *k, void *base, const struct config_input *in,
                        char *msg, size_t len)
{
	struct config *cfg = base;

	if (units_check_listen(in->value, msg, len) < 0)
		return -1;
	if (!in->again)
		clear_listen(k, cfg);
	if (cfg->nlisten >= CONFIG_MAX_LISTEN) {
		snprintf(msg, len, "listen: more than %d listeners", CONFIG_MAX_LISTEN);
		return -1;
	}
	cfg->listen[cfg->nlisten++] = xstrdup(in->value);
	return 0;
}

static void dump_listen(FILE *out, const struct config_key *k, const void *base)
{
	const struct config *cfg = base;

	for (size_t i = 0; i < cfg->nlisten; i++)
		put(out, k, cfg->listen[i]);
}

/* ---- the table ---------------------------------------------------------- */

#define NUMBER .parse = parse_number, .dump = dump_number, .clear = clear_number
#define BOOLEAN NUMBER, .what = "boolean", .hint = " (use yes/no, true/false, on/off, 1/0)", \
	.scan = scan_bool, .format = format_bool
#define LIST .dump = dump_list, .clear = clear_list, .repeats = true

static const struct config_type types[CONFIG_KEY_NTYPES] = {
	[CONFIG_KEY_LISTEN] = { .parse = parse_listen, .dump = dump_listen,
	                        .clear = clear_listen, .repeats = true },
	[CONFIG_KEY_INT] = { NUMBER, .what = "number", .hint = "", .scan = scan_int,
	                     .format = format_int, .bound = format_int, .store = STORE_LONG },
	[CONFIG_KEY_SIZE] = { NUMBER, .what = "size", .hint = " (use e.g. 512K, 8M, 1G)",
	                      .scan_size = units_parse_size, .format = format_size,
	                      .bound = format_size, .store = STORE_U64 },
	[CONFIG_KEY_DURATION] = { NUMBER, .what = "duration", .hint = " (use e.g. 250ms, 5s, 2m)",
	                          .scan = units_parse_duration_ms, .format = format_duration,
	                          .bound = format_duration_short, .store = STORE_LONG },
	[CONFIG_KEY_MODE] = { NUMBER, .what = "mode", .hint = " (use octal, e.g. 0660)",
	                      .scan = units_parse_mode, .format = format_mode,
	                      .bound = format_mode, .store = STORE_LONG },
	[CONFIG_KEY_BOOL] = { BOOLEAN, .store = STORE_BOOL },
	[CONFIG_KEY_TRIBOOL] = { BOOLEAN, .store = STORE_INT },
	[CONFIG_KEY_RATE] = { .parse = parse_rate, .dump = dump_rate, .clear = clear_rate,
	                      .what = "rate", .hint = " (use e.g. 20/s, 100/m, 0.5/s)" },
	[CONFIG_KEY_HTTP2] = { NUMBER, .what = "value", .hint = " (use auto, no or prior-knowledge)",
	                       .scan = scan_http2, .format = format_http2, .store = STORE_INT },
	[CONFIG_KEY_HEDGE] = { NUMBER, .what = "value", .hint = " (use off, p95 or a duration "
	                       "of 1ms..1h, e.g. 50ms)", .scan = scan_hedge,
	                       .format = format_hedge, .store = STORE_LONG },
	[CONFIG_KEY_PERCENT] = { .parse = parse_percent, .dump = dump_percent,
	                         .clear = clear_percent,
	                         .what = "percentage", .hint = " (use e.g. 20%, 12.5%)" },
	[CONFIG_KEY_RETRY_ON] = { .parse = parse_retry_on, .dump = dump_retry_on,
	                          .clear = clear_retry_on },
	[CONFIG_KEY_PATH] = { .parse = parse_path, .dump = dump_path, .clear = clear_path },
	[CONFIG_KEY_WORD] = { .parse = parse_word, .dump = dump_path, .clear = clear_path,
	                      .what = "value", .hint = " (printable ASCII, no spaces or ';')" },
	[CONFIG_KEY_REDIS_URL] = { .parse = parse_redis_url, .dump = dump_path,
	                           .clear = clear_path },
	[CONFIG_KEY_HOSTS] = { LIST, .parse = parse_hosts, .split = units_parse_host_list },
	[CONFIG_KEY_CIDRS] = { LIST, .parse = parse_list, .split = units_parse_cidr_list },
};

static const struct config_type *type_of(const struct config_key *k)
{
	return &types[k->type];
}

/* ---- public (config_internal.h) ----------------------------------------- */

bool config_key_repeats(const struct config_key *k)
{
	return type_of(k)->repeats;
}

int config_key_set(const struct config_key *k, void *base, const struct config_input *in,
                   char *msg, size_t len)
{
	return type_of(k)->parse(k, base, in, msg, len);
}

void config_key_clear(const struct config_key *k, void *base)
{
	type_of(k)->clear(k, base);
}

void config_key_dump(FILE *out, const struct config_key *k, const void *base)
{
	type_of(k)->dump(out, k, base);
}
