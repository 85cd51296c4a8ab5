/* config_load: reading the INI file into struct config.  inih splits the
 * file into lines and key = value pairs; this file checks each line, tracks
 * sections and line numbers itself, and hands each value to the key table
 * (config_key_set).  Errors come out as "FILE:LINE: message". */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"
#include "config_internal.h"
#include "units.h"
#include "xalloc.h"

/* Lines of one section, by index in config_keys. */
struct upstream_lines {
	int header;                    /* line of the section header */
	int key[CONFIG_N_KEYS];        /* first line each key was set, 0 = not */
};

struct load {
	struct config *cfg;
	const char *path;
	char *dir;                     /* for relative paths */
	FILE *f;
	int lineno;                    /* of the line inih is working on */
	int read_errno;
	enum config_section sec;
	size_t cur;                    /* in an upstream section: its index */
	char secname[256];             /* as written, for messages */
	int fanoutd_line;
	int key_line[CONFIG_N_KEYS];   /* of [fanoutd], as upstream_lines.key */
	int redis_line;                /* of the [redis] header, 0 = none yet */
	int redis_key_line[CONFIG_N_KEYS];
	struct upstream_lines *ulines; /* parallel to cfg->upstreams */
	bool failed;
	int err_line;
	char *err;
	size_t errlen;
};

static void fail(struct load *ld, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct load *ld, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (ld->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ld->failed = true;
	ld->err_line = ld->lineno;
	snprintf(ld->err, ld->errlen, "%s:%d: %s", ld->path, ld->lineno, msg);
}

static char *skip_ws(char *p)
{
	while (*p && isspace((unsigned char)*p))
		p++;
	return p;
}

static bool at_line_end(const char *p)
{
	return *p == '\0' || *p == ';' || *p == '#';
}

/* "[fanoutd]", P just past "fanoutd". */
static void start_fanoutd(struct load *ld, char *p)
{
	p = skip_ws(p);
	if (*p != ']') {
		fail(ld, "bad section header (use [fanoutd])");
		return;
	}
	if (!at_line_end(skip_ws(p + 1))) {
		fail(ld, "unexpected text after [fanoutd]");
		return;
	}
	if (ld->fanoutd_line != 0) {
		fail(ld, "duplicate section [fanoutd] (first at line %d)", ld->fanoutd_line);
		return;
	}
	ld->fanoutd_line = ld->lineno;
	ld->sec = CONFIG_SECTION_FANOUTD;
	snprintf(ld->secname, sizeof ld->secname, "[fanoutd]");
}

/* "[redis]", P just past "redis". */
static void start_redis(struct load *ld, char *p)
{
	p = skip_ws(p);
	if (*p != ']') {
		fail(ld, "bad section header (use [redis])");
		return;
	}
	if (!at_line_end(skip_ws(p + 1))) {
		fail(ld, "unexpected text after [redis]");
		return;
	}
	if (ld->redis_line != 0) {
		fail(ld, "duplicate section [redis] (first at line %d)", ld->redis_line);
		return;
	}
	ld->redis_line = ld->lineno;
	ld->sec = CONFIG_SECTION_REDIS;
	snprintf(ld->secname, sizeof ld->secname, "[redis]");
}

/* A new upstream section for KEY (normalised from URL, as written). */
static void add_upstream(struct load *ld, const char *url, const char *key)
{
	struct config *cfg = ld->cfg;
	size_t n = cfg->nupstreams;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(cfg->upstreams[i].key, key) == 0) {
			fail(ld, "duplicate section [upstream \"%s\"] (first at line %d; both are %s)",
			     url, ld->ulines[i].header, key);
			return;
		}
	}
	cfg->upstreams = xrealloc(cfg->upstreams, (n + 1) * sizeof *cfg->upstreams);
	ld->ulines = xrealloc(ld->ulines, (n + 1) * sizeof *ld->ulines);
	config_upstream_init(&cfg->upstreams[n], xstrdup(key));
	memset(&ld->ulines[n], 0, sizeof *ld->ulines);
	ld->ulines[n].header = ld->lineno;
	cfg->nupstreams = n + 1;
	ld->cur = n;
	ld->sec = CONFIG_SECTION_UPSTREAM;
	snprintf(ld->secname, sizeof ld->secname, "[upstream \"%s\"]", url);
}

/* [upstream "URL"], P just past "upstream". */
static void start_upstream(struct load *ld, char *p)
{
	char *url, *q, msg[256], key[UNITS_UPSTREAM_KEY_MAX];

	p = skip_ws(p);
	q = *p == '"' ? strchr(p + 1, '"') : NULL;
	if (q == NULL) {
		fail(ld, "bad section header (put the URL in double quotes: "
		     "[upstream \"https://api.example.com\"])");
		return;
	}
	url = p + 1;
	*q = '\0';
	p = skip_ws(q + 1);
	if (*p != ']') {
		fail(ld, "bad section header [upstream \"%s\" (missing ])", url);
		return;
	}
	if (!at_line_end(skip_ws(p + 1))) {
		fail(ld, "unexpected text after [upstream \"%s\"]", url);
		return;
	}
	if (units_normalise_upstream(url, key, msg, sizeof msg) < 0) {
		fail(ld, "[upstream \"%s\"]: %s", url, msg);
		return;
	}
	/* config_dump writes [upstream "KEY"]: the normal form must fit */
	if (strlen(key) + 13 > CONFIG_MAX_LINE) {
		fail(ld, "[upstream \"%s\"]: URL too long (at most %d characters as %s)",
		     url, CONFIG_MAX_LINE - 13, key);
		return;
	}
	add_upstream(ld, url, key);
}

static bool starts_word(const char *p, const char *word, char next)
{
	size_t n = strlen(word);

	return strncmp(p, word, n) == 0 && (p[n] == next || isspace((unsigned char)p[n]));
}

/* A "[...]" line: switch sections, creating upstream entries. */
static void start_section(struct load *ld, char *line)
{
	char *p = skip_ws(line + 1), *q;

	if (starts_word(p, "fanoutd", ']')) {
		start_fanoutd(ld, p + 7);
		return;
	}
	if (starts_word(p, "upstream", '"')) {
		start_upstream(ld, p + 8);
		return;
	}
	if (starts_word(p, "redis", ']')) {
		start_redis(ld, p + 5);
		return;
	}
	q = p + strcspn(p, "]");
	while (q > p && isspace((unsigned char)q[-1]))
		q--;
	fail(ld, "unknown section [%.*s] (use [fanoutd], [redis] or [upstream \"URL\"])",
	     (int)(q - p), p);
}

/* inih's line reader: counts lines and checks what inih lets through
 * (indented continuation lines, over-long lines, section headers that it
 * would truncate).  Returning NULL stops inih after our first error. */
static char *read_line(char *buf, int size, void *stream)
{
	struct load *ld = stream;
	char *p, *work;
	size_t n;

	if (ld->failed)
		return NULL;
	if (!fgets(buf, size, ld->f)) {
		if (ferror(ld->f))
			ld->read_errno = errno ? errno : EIO;
		return NULL;
	}
	ld->lineno++;
	n = strlen(buf);
	if (n == (size_t)size - 1 && buf[n - 1] != '\n') {
		int c = getc(ld->f);
		if (c != EOF) {
			fail(ld, "line too long (at most %d characters)", size - 2);
			return NULL;
		}
	}
	p = buf;
	if (ld->lineno == 1 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3;
	if (at_line_end(skip_ws(p)))
		return buf;                 /* blank or comment */
	if (isspace((unsigned char)*p)) {
		fail(ld, "indented line (inih would read it as a continuation of the "
		     "previous value); start keys and sections in the first column");
		return NULL;
	}
	if (*p == '[') {
		work = xstrdup(p);
		start_section(ld, work);
		free(work);
		return ld->failed ? NULL : buf;
	}
	/* inih's own test for a key line: '=' or ':' before any inline comment */
	for (char *c = p; *c; c++) {
		if (*c == '=' || *c == ':')
			return buf;
		if (*c == ';' && c > p && isspace((unsigned char)c[-1]))
			break;
	}
	n = strcspn(p, "\r\n");
	fail(ld, "syntax error: expected \"key = value\", \"[section]\" or a comment, got \"%.*s\"",
	     (int)n, p);
	return NULL;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load *ld = user;
	const struct config_key *k;
	struct config_input in = { .value = value, .dir = ld->dir };
	int *line;
	void *base;
	char msg[512];

	(void)section;  /* inih truncates long names; ld->sec is the truth */
	if (ld->failed)
		return 0;
	if (ld->sec == CONFIG_SECTION_NONE) {
		fail(ld, "key \"%s\" outside any section (put it under [fanoutd])", name);
		return 0;
	}
	k = config_key_find(ld->sec, name);
	if (k == NULL) {
		fail(ld, "unknown key \"%s\" in %s", name, ld->secname);
		return 0;
	}
	if (ld->sec == CONFIG_SECTION_FANOUTD) {
		line = &ld->key_line[k - config_keys];
		base = ld->cfg;
	} else if (ld->sec == CONFIG_SECTION_REDIS) {
		line = &ld->redis_key_line[k - config_keys];
		base = &ld->cfg->redis;
	} else {
		line = &ld->ulines[ld->cur].key[k - config_keys];
		base = &ld->cfg->upstreams[ld->cur];
	}
	if (*line != 0 && !config_key_repeats(k)) {
		fail(ld, "%s: set twice (first at line %d)", name, *line);
		return 0;
	}
	in.again = *line != 0;
	if (config_key_set(k, base, &in, msg, sizeof msg) < 0) {
		fail(ld, "%s", msg);
		return 0;
	}
	if (*line == 0)
		*line = ld->lineno;
	return 1;
}

/* Checks that need the whole section, or the whole file ([redis] may
 * come after the upstreams that use it). */
static void check_upstreams(struct load *ld)
{
	const struct config *cfg = ld->cfg;
	const size_t iburst =
		(size_t)(config_key_find(CONFIG_SECTION_UPSTREAM, "burst") - config_keys);
	const size_t ishared =
		(size_t)(config_key_find(CONFIG_SECTION_UPSTREAM, "shared") - config_keys);

	for (size_t i = 0; i < cfg->nupstreams && !ld->failed; i++) {
		if (cfg->upstreams[i].burst >= 0 && cfg->upstreams[i].rate_per_s == 0) {
			ld->lineno = ld->ulines[i].key[iburst];
			fail(ld, "burst: needs rate in the same section");
		} else if (config_upstream_shared(&cfg->upstreams[i]) && cfg->redis.url == NULL) {
			ld->lineno = ld->ulines[i].key[ishared];
			fail(ld, "shared = yes needs [redis] url");
		}
	}
}

static char *config_dir(const char *path)
{
	char *copy = xstrdup(path), *dir, *real;

	dir = dirname(copy);
	real = realpath(dir, NULL);
	if (real == NULL)
		real = xstrdup(dir);
	free(copy);
	return real;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct load ld;
	int ret;

	memset(&ld, 0, sizeof ld);
	ld.cfg = cfg;
	ld.path = path;
	ld.err = err;
	ld.errlen = errlen;
	ld.f = fopen(path, "r");
	if (ld.f == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		config_free(cfg);
		return -1;
	}
	ld.dir = config_dir(path);
	errno = 0;
	ret = ini_parse_stream(read_line, &ld, on_key, &ld);
	if (ret > 0 && (!ld.failed || ret < ld.err_line)) {
		/* inih found an error on a line before ours */
		ld.failed = false;
		ld.lineno = ret;
		fail(&ld, "syntax error");
	} else if (ret < 0 && !ld.failed) {
		snprintf(err, errlen, "%s: out of memory", path);
		ld.failed = true;
	} else if (ld.read_errno && !ld.failed) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(ld.read_errno));
		ld.failed = true;
	}
	if (!ld.failed)
		check_upstreams(&ld);
	fclose(ld.f);
	free(ld.dir);
	free(ld.ulines);
	if (ld.failed) {
		config_free(cfg);
		return -1;
	}
	return 0;
}
