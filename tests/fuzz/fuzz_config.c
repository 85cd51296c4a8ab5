/* fuzz_config: the config file parser (src/config_load.c, src/config.c,
 * src/config_types.c) and the value syntax (src/units.c).
 *
 * The input is written to a file in a private temp directory and loaded
 * with config_load() on top of config_defaults().  On success the
 * effective configuration is dumped (config_dump, what `fanoutd -t -v`
 * prints), the dump is loaded again and must load and dump identically;
 * on failure err must read "FILE:..." and the config must be zeroed.
 *
 * The input as a string (up to its first NUL) also goes to the units
 * parsers, each with a round trip: what a parser accepts, the matching
 * formatter writes and the parser reads back as the same value. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz.h"
#include "config.h"
#include "units.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char path1[96], path2[96];

static void cleanup(void)
{
	unlink(path1);
	unlink(path2);
	if (dir[0])
		rmdir(dir);
}

/* A short private directory: /dev/shm if there is one (no disk I/O). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof dir, "/dev/shm/fuzzcfg.XXXXXX");
	if (!mkdtemp(dir)) {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/fuzzcfg.XXXXXX", t && *t && strlen(t) < 40 ? t : "/tmp");
		if (!mkdtemp(dir)) {
			perror("fuzz_config: mkdtemp");
			abort();
		}
	}
	snprintf(path1, sizeof path1, "%s/in.conf", dir);
	snprintf(path2, sizeof path2, "%s/dump.conf", dir);
	atexit(cleanup);
	return 0;
}

static void write_file(const char *path, const void *data, size_t size)
{
	FILE *f = fopen(path, "wb");

	FUZZ_CHECK(f != NULL, "%s: %s", path, strerror(errno));
	FUZZ_CHECK(fwrite(data, 1, size, f) == size || size == 0, "%s: short write", path);
	FUZZ_CHECK(fclose(f) == 0, "%s: %s", path, strerror(errno));
}

static char *dump(const struct config *cfg, size_t *len)
{
	char *buf = NULL;
	FILE *out = open_memstream(&buf, len);

	FUZZ_CHECK(out != NULL, "open_memstream");
	config_dump(cfg, out);
	FUZZ_CHECK(fclose(out) == 0, "memstream");
	return buf;
}

static bool is_zeroed(const struct config *cfg)
{
	static const struct config zero;
	return memcmp(cfg, &zero, sizeof zero) == 0;
}

static void fuzz_load(const uint8_t *data, size_t size)
{
	struct config cfg, again;
	char err[1024];
	char *d1, *d2;
	size_t n1, n2;

	write_file(path1, data, size);
	config_defaults(&cfg);
	memset(err, 0x55, sizeof err);
	if (config_load(&cfg, path1, err, sizeof err) < 0) {
		FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL, "err not NUL-terminated");
		FUZZ_CHECK(strncmp(err, path1, strlen(path1)) == 0 && err[strlen(path1)] == ':',
		           "err does not start with the file name: %s", err);
		FUZZ_CHECK(is_zeroed(&cfg), "config not freed after: %s", err);
		config_free(&cfg);
		return;
	}
	FUZZ_CHECK(cfg.nlisten >= 1 && cfg.nlisten <= CONFIG_MAX_LISTEN, "nlisten %zu", cfg.nlisten);
	for (size_t i = 0; i < cfg.nupstreams; i++) {
		FUZZ_CHECK(config_find_upstream(&cfg, cfg.upstreams[i].key) == &cfg.upstreams[i],
		           "config_find_upstream(\"%s\")", cfg.upstreams[i].key);
	}

	/* the dump is a config file that gives the same configuration */
	d1 = dump(&cfg, &n1);
	write_file(path2, d1, n1);
	config_defaults(&again);
	memset(err, 0, sizeof err);
	FUZZ_CHECK(config_load(&again, path2, err, sizeof err) == 0,
	           "the dump does not load: %s\n--- dump:\n%s", err, d1);
	d2 = dump(&again, &n2);
	FUZZ_CHECK(n1 == n2 && memcmp(d1, d2, n1) == 0,
	           "the dump of the dump differs\n--- first:\n%s--- second:\n%s", d1, d2);
	free(d1);
	free(d2);
	config_free(&again);
	config_free(&cfg);
	FUZZ_CHECK(is_zeroed(&cfg), "config_free left something");
}

static void fuzz_units(const char *s)
{
	char buf[128], buf2[UNITS_UPSTREAM_KEY_MAX], norm[UNITS_UPSTREAM_KEY_MAX], msg[512];
	char **v = NULL, **w = NULL;
	long l, l2;
	uint64_t u, u2;
	double d, d2;
	bool b;

	if (units_parse_duration_ms(s, &l) == 0) {
		FUZZ_CHECK(l >= 0, "duration %ld", l);
		units_format_duration(l, buf, sizeof buf);
		FUZZ_CHECK(units_parse_duration_ms(buf, &l2) == 0 && l2 == l,
		           "duration %ld formats as \"%s\"", l, buf);
		units_format_duration_short(l, buf, sizeof buf);
		FUZZ_CHECK(buf[0] != '\0', "empty short duration");
	}
	if (units_parse_size(s, &u) == 0) {
		units_format_size(u, buf, sizeof buf);
		FUZZ_CHECK(units_parse_size(buf, &u2) == 0 && u2 == u,
		           "size %llu formats as \"%s\"", (unsigned long long)u, buf);
	}
	if (units_parse_rate(s, &d) == 0) {
		FUZZ_CHECK(d >= 0 && d == d, "rate %g", d);
		/* rates a config may hold must dump as themselves (far smaller
		 * ones do not fit in units_format_rate's 60 decimals) */
		if (d >= CONFIG_MIN_RATE_PER_S && d <= CONFIG_MAX_RATE_PER_S) {
			units_format_rate(d, buf, sizeof buf);
			FUZZ_CHECK(units_parse_rate(buf, &d2) == 0 && d2 == d,
			           "rate %.17g/s (from \"%s\") formats as \"%s\"", d, s, buf);
		}
	}
	if (units_parse_percent(s, &d) == 0) {
		FUZZ_CHECK(d >= 0 && d == d, "percent %g", d);
		/* the percentages a config may hold (0..100%) dump as themselves */
		if (d <= 1) {
			units_format_percent(d, buf, sizeof buf);
			FUZZ_CHECK(units_parse_percent(buf, &d2) == 0 && d2 == d,
			           "percent %.17g (from \"%s\") formats as \"%s\"", d, s, buf);
		}
	}
	if (units_parse_bool(s, &b) == 0)
		FUZZ_CHECK(strlen(s) <= 5, "bool \"%s\"", s);
	if (units_parse_long(s, &l) == 0)
		FUZZ_CHECK(l >= 0, "long %ld", l);
	if (strlen(s) < 64 && units_parse_mode(s, &l) == 0)
		FUZZ_CHECK(l >= 0 && l <= 077777, "mode %lo", l);

	msg[0] = '\0';
	if (units_check_listen(s, msg, sizeof msg) < 0)
		FUZZ_CHECK(strncmp(msg, "listen: ", 8) == 0, "listen message \"%s\"", msg);

	/* normalising an upstream URL is idempotent */
	if (units_normalise_upstream(s, norm, msg, sizeof msg) == 0) {
		FUZZ_CHECK(units_normalise_upstream(norm, buf2, msg, sizeof msg) == 0,
		           "\"%s\" -> \"%s\" does not normalise: %s", s, norm, msg);
		FUZZ_CHECK(strcmp(norm, buf2) == 0, "\"%s\" -> \"%s\" -> \"%s\"", s, norm, buf2);
	}

	/* lists: the normal form parses to itself */
	if (units_parse_host_list("allow_hosts", s, &v, msg, sizeof msg) == 0) {
		for (size_t i = 0; v[i]; i++) {
			FUZZ_CHECK(units_parse_host_list("allow_hosts", v[i], &w, msg, sizeof msg) == 0 &&
			           w[0] && !w[1] && strcmp(w[0], v[i]) == 0, "host glob \"%s\"", v[i]);
			units_strv_free(w);
			w = NULL;
		}
		units_strv_free(v);
		v = NULL;
	}
	if (units_parse_cidr_list("deny_networks", s, &v, msg, sizeof msg) == 0) {
		for (size_t i = 0; v[i]; i++) {
			FUZZ_CHECK(units_parse_cidr_list("deny_networks", v[i], &w, msg, sizeof msg) == 0 &&
			           w[0] && !w[1] && strcmp(w[0], v[i]) == 0, "CIDR \"%s\"", v[i]);
			units_strv_free(w);
			w = NULL;
		}
		units_strv_free(v);
		v = NULL;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (!dir[0])
		LLVMFuzzerInitialize(NULL, NULL);
	fuzz_load(data, size);

	s = malloc(size + 1);
	FUZZ_CHECK(s != NULL, "malloc");
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_units(s);
	/* and each line by itself, so a corpus config file feeds its values */
	if (memchr(s, '\n', size) && size < 4096) {
		char *save = NULL;
		for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char *eq = strchr(line, '=');
			char *val = eq ? eq + 1 : line;
			while (*val == ' ')
				val++;
			fuzz_units(val);
		}
	}
	free(s);
	return 0;
}
