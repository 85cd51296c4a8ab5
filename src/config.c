/* config: the daemon's settings.  One table per section lists every key
 * (type, storage, range, default, description); defaults, setting a value,
 * lookups and config_dump all work from it.  Reading the INI file is in
 * config_load.c; the value syntax ("5s", "8M", addresses) is in units.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "config.h"
#include "config_internal.h"
#include "units.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RATE_PER_S 1000000.0
#define MIN_RATE_PER_S (0.000001 / 3600)   /* 0.000001/h; much less dumps as 0/s */
#define DUMP_WRAP 150          /* list values are split over lines this long */

#define CFG(f) offsetof(struct config, f)
#define UPS(f) offsetof(struct config_upstream, f)

const struct config_key config_fanoutd_keys[] = {
	{ "listen", CONFIG_KEY_LISTEN, 0, 0, 0, false, "127.0.0.1:8642",
	  "HOST:PORT, [IPv6]:PORT or unix:/absolute/path; repeat for up to 16" },
	{ "max_batch_size", CONFIG_KEY_INT, CFG(max_batch_size), 1, 1000000, true, "10000",
	  "most requests in one batch (1..1000000); more -> 400" },
	{ "max_request_body", CONFIG_KEY_SIZE, CFG(max_request_body), 1, 1024 * UNITS_GIB, true, "8M",
	  "largest batch request body: bytes or K, M, G, k, m, g (x1024); more -> 413" },
	{ "max_response_body", CONFIG_KEY_SIZE, CFG(max_response_body), 1, 1024 * UNITS_GIB, true, "8M",
	  "largest upstream response body (bytes, K, M, G); more -> error too_large" },
	{ "max_batch_response", CONFIG_KEY_SIZE, CFG(max_batch_response), 1, 1024 * UNITS_GIB, true, "256M",
	  "all response bodies of one batch together; more -> error too_large" },
	{ "request_timeout", CONFIG_KEY_DURATION, CFG(request_timeout_ms), 1, UNITS_DAY_MS, true, "5s",
	  "per upstream request: 250ms, 1.5s, 2m, 1h; bare number = seconds; max 24h" },
	{ "connect_timeout", CONFIG_KEY_DURATION, CFG(connect_timeout_ms), 1, UNITS_DAY_MS, true, "5s",
	  "connecting to an upstream, TLS handshake included" },
	{ "batch_timeout", CONFIG_KEY_DURATION, CFG(batch_timeout_ms), 1, UNITS_DAY_MS, true, "60s",
	  "deadline for a whole batch unless the request sets timeout_ms" },
	{ "shutdown_timeout", CONFIG_KEY_DURATION, CFG(shutdown_timeout_ms), 0, UNITS_DAY_MS, true, "30s",
	  "on SIGTERM, running batches get this long to finish; 0 = cancel at once" },
	{ "client_timeout", CONFIG_KEY_DURATION, CFG(client_timeout_ms), 1, UNITS_DAY_MS, true, "10s",
	  "a client that sends its request slower than this is cut off" },
	{ "upstream_concurrency", CONFIG_KEY_INT, CFG(upstream_concurrency), 1, 100000, true, "10",
	  "default per-upstream limit in flight, shared by all batches (1..100000)" },
	{ "global_concurrency", CONFIG_KEY_INT, CFG(global_concurrency), 1, 1000000, true, "1024",
	  "all upstream requests in flight at once (1..1000000)" },
	{ "max_queued", CONFIG_KEY_INT, CFG(max_queued), 1, 100000000, true, "100000",
	  "requests waiting for a slot (1..100000000); more -> 503 overloaded" },
	{ "keepalive_timeout", CONFIG_KEY_DURATION, CFG(keepalive_timeout_ms), 1, UNITS_DAY_MS, true, "30s",
	  "idle upstream connections are kept this long for reuse" },
	{ "tls_verify", CONFIG_KEY_BOOL, CFG(tls_verify), 0, 0, true, "yes",
	  "check upstream certificates and host names: yes/no, on/off, true/false, 1/0" },
	{ "ca_file", CONFIG_KEY_PATH, CFG(ca_file), 0, 0, true, "",
	  "PEM CA bundle for upstream TLS; empty = system store; relative to this file" },
	{ "resolv_conf", CONFIG_KEY_PATH, CFG(resolv_conf), 0, 0, false, "/etc/resolv.conf",
	  "nameservers and search domains for upstream host names (hosts file first)" },
	{ "auth_token_file", CONFIG_KEY_PATH, CFG(auth_token_file), 0, 0, true, "",
	  "if set, clients must send Authorization: Bearer <token in this file>" },
	{ "allow_hosts", CONFIG_KEY_HOSTS, CFG(allow_hosts), 0, 0, true, "*",
	  "comma-separated host globs (fnmatch, lower case); other hosts -> 400" },
	{ "deny_networks", CONFIG_KEY_CIDRS, CFG(deny_networks), 0, 0, true, "169.254.0.0/16, fe80::/10",
	  "comma-separated CIDRs never connected to (resolved address); empty = none" },
	{ "access_log", CONFIG_KEY_BOOL, CFG(access_log), 0, 0, true, "yes",
	  "one JSON line per batch on stderr" },
	{ "socket_mode", CONFIG_KEY_MODE, CFG(socket_mode), 0, 0777, false, "0660",
	  "permissions of unix listen sockets, octal" },
};

/* Defaults here are all "unset": the [fanoutd] value applies. */
const struct config_key config_upstream_keys[] = {
	{ "concurrency", CONFIG_KEY_INT, UPS(concurrency), 1, 100000, true, "",
	  "requests in flight to this upstream (1..100000)" },
	{ "rate", CONFIG_KEY_RATE, UPS(rate_per_s), 0, 0, true, "",
	  "token bucket: N/s, N/m or N/h, N may be decimal, at most 1000000/s" },
	{ "burst", CONFIG_KEY_INT, UPS(burst), 1, 1000000, true, "",
	  "token bucket size (1..1000000; needs rate; default: rate rounded up)" },
	{ "request_timeout", CONFIG_KEY_DURATION, UPS(request_timeout_ms), 1, UNITS_DAY_MS, true, "",
	  "overrides [fanoutd] request_timeout" },
	{ "connect_timeout", CONFIG_KEY_DURATION, UPS(connect_timeout_ms), 1, UNITS_DAY_MS, true, "",
	  "overrides [fanoutd] connect_timeout" },
	{ "tls_verify", CONFIG_KEY_TRIBOOL, UPS(tls_verify), 0, 0, true, "",
	  "overrides [fanoutd] tls_verify" },
	{ "ca_file", CONFIG_KEY_PATH, UPS(ca_file), 0, 0, true, "",
	  "overrides [fanoutd] ca_file" },
};

#define NKEYS(t) (sizeof(t) / sizeof((t)[0]))
_Static_assert(NKEYS(config_fanoutd_keys) == CONFIG_N_FANOUTD_KEYS,
               "CONFIG_N_FANOUTD_KEYS does not match config_fanoutd_keys");
_Static_assert(NKEYS(config_upstream_keys) == CONFIG_N_UPSTREAM_KEYS,
               "CONFIG_N_UPSTREAM_KEYS does not match config_upstream_keys");

/* ---- small helpers ---------------------------------------------------- */

static void *field(void *base, const struct config_key *k)
{
	return (char *)base + k->offset;
}

static const void *cfield(const void *base, const struct config_key *k)
{
	return (const char *)base + k->offset;
}

/* ---- setting one key -------------------------------------------------- */

static void clear_listen(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nlisten; i++)
		free(cfg->listen[i]);
	memset(cfg->listen, 0, sizeof cfg->listen);
	cfg->nlisten = 0;
}

static void range_text(const struct config_key *k, char *buf, size_t len)
{
	char lo[32], hi[32];

	switch (k->type) {
	case CONFIG_KEY_DURATION:
		units_format_duration_short((long)k->min, lo, sizeof lo);
		units_format_duration_short((long)k->max, hi, sizeof hi);
		break;
	case CONFIG_KEY_SIZE:
		units_format_size((uint64_t)k->min, lo, sizeof lo);
		units_format_size((uint64_t)k->max, hi, sizeof hi);
		break;
	case CONFIG_KEY_MODE:
		snprintf(lo, sizeof lo, "%04llo", k->min);
		snprintf(hi, sizeof hi, "%04llo", k->max);
		break;
	default:
		snprintf(lo, sizeof lo, "%lld", k->min);
		snprintf(hi, sizeof hi, "%lld", k->max);
		break;
	}
	snprintf(buf, len, "%s..%s", lo, hi);
}

/* Parse VALUE for key K and store it at BASE; see config_internal.h. */
int config_set_value(const struct config_key *k, void *base, const char *value,
                     bool append, const char *dir, char *msg, size_t len)
{
	char range[80];
	long l;
	uint64_t u;
	double d;
	bool b;

	switch (k->type) {
	case CONFIG_KEY_LISTEN: {
		struct config *cfg = base;
		if (units_check_listen(value, msg, len) < 0)
			return -1;
		if (!append)
			clear_listen(cfg);
		if (cfg->nlisten >= CONFIG_MAX_LISTEN) {
			snprintf(msg, len, "listen: more than %d listeners", CONFIG_MAX_LISTEN);
			return -1;
		}
		cfg->listen[cfg->nlisten++] = units_xstrdup(value);
		return 0;
	}
	case CONFIG_KEY_INT:
		if (!value[0] || strspn(value, "0123456789") != strlen(value)) {
			snprintf(msg, len, "%s: bad number \"%s\"", k->name, value);
			return -1;
		}
		if (units_parse_long(value, &l) < 0 || l < k->min || l > k->max) {
			range_text(k, range, sizeof range);
			snprintf(msg, len, "%s: %s is out of range (%s)", k->name, value, range);
			return -1;
		}
		*(long *)field(base, k) = l;
		return 0;
	case CONFIG_KEY_SIZE:
		if (units_parse_size(value, &u) < 0) {
			snprintf(msg, len, "%s: bad size \"%s\" (use e.g. 512K, 8M, 1G)", k->name, value);
			return -1;
		}
		if (u < (uint64_t)k->min || u > (uint64_t)k->max) {
			range_text(k, range, sizeof range);
			snprintf(msg, len, "%s: %s is out of range (%s)", k->name, value, range);
			return -1;
		}
		*(uint64_t *)field(base, k) = u;
		return 0;
	case CONFIG_KEY_DURATION:
		if (units_parse_duration_ms(value, &l) < 0) {
			snprintf(msg, len, "%s: bad duration \"%s\" (use e.g. 250ms, 5s, 2m)", k->name, value);
			return -1;
		}
		if (l < k->min || l > k->max) {
			range_text(k, range, sizeof range);
			snprintf(msg, len, "%s: %s is out of range (%s)", k->name, value, range);
			return -1;
		}
		*(long *)field(base, k) = l;
		return 0;
	case CONFIG_KEY_BOOL:
	case CONFIG_KEY_TRIBOOL:
		if (units_parse_bool(value, &b) < 0) {
			snprintf(msg, len, "%s: bad boolean \"%s\" (use yes/no, true/false, on/off, 1/0)",
			         k->name, value);
			return -1;
		}
		if (k->type == CONFIG_KEY_BOOL)
			*(bool *)field(base, k) = b;
		else
			*(int *)field(base, k) = b;
		return 0;
	case CONFIG_KEY_PATH: {
		char **p = field(base, k);
		char *nv = NULL;
		if (units_has_ctrl(value)) {
			snprintf(msg, len, "%s: control character in path", k->name);
			return -1;
		}
		if (value[0] == '/' || (value[0] && !dir))
			nv = units_xstrdup(value);
		else if (value[0] && asprintf(&nv, "%s/%s", dir, value) < 0)
			abort();
		/* config_dump writes "name = /absolute/path" on one line */
		if (nv && strlen(k->name) + 3 + strlen(nv) > CONFIG_MAX_LINE) {
			snprintf(msg, len, "%s: path too long (at most %zu characters once made absolute)",
			         k->name, CONFIG_MAX_LINE - 3 - strlen(k->name));
			free(nv);
			return -1;
		}
		free(*p);
		*p = nv;
		return 0;
	}
	case CONFIG_KEY_HOSTS:
	case CONFIG_KEY_CIDRS: {
		char ***p = field(base, k), **v;
		if (k->type == CONFIG_KEY_HOSTS && !append && !value[0]) {
			snprintf(msg, len, "%s: empty list would refuse every host (use * to allow all)", k->name);
			return -1;
		}
		if (k->type == CONFIG_KEY_HOSTS
		    ? units_parse_host_list(k->name, value, &v, msg, len) < 0
		    : units_parse_cidr_list(k->name, value, &v, msg, len) < 0)
			return -1;
		/* config_dump writes at least one element per "name = " line */
		for (size_t i = 0; v[i]; i++) {
			if (strlen(k->name) + 3 + strlen(v[i]) > CONFIG_MAX_LINE) {
				snprintf(msg, len, "%s: element too long (at most %zu characters)",
				         k->name, CONFIG_MAX_LINE - 3 - strlen(k->name));
				units_strv_free(v);
				return -1;
			}
		}
		if (append) {
			for (size_t i = 0; v[i]; i++)
				units_strv_push(p, v[i]);
			free(v);
		} else {
			units_strv_free(*p);
			*p = v;
		}
		return 0;
	}
	case CONFIG_KEY_MODE:
		if (units_parse_mode(value, &l) < 0) {
			snprintf(msg, len, "%s: bad mode \"%s\" (use octal, e.g. 0660)", k->name, value);
			return -1;
		}
		if (l < k->min || l > k->max) {
			range_text(k, range, sizeof range);
			snprintf(msg, len, "%s: %s is out of range (%s)", k->name, value, range);
			return -1;
		}
		*(long *)field(base, k) = l;
		return 0;
	case CONFIG_KEY_RATE:
		if (units_parse_rate(value, &d) < 0) {
			snprintf(msg, len, "%s: bad rate \"%s\" (use e.g. 20/s, 100/m, 0.5/s)", k->name, value);
			return -1;
		}
		if (!(d >= MIN_RATE_PER_S) || d > MAX_RATE_PER_S) {
			snprintf(msg, len, "%s: %s is out of range (at least 0.000001/h, at most %.0f/s)",
			         k->name, value, MAX_RATE_PER_S);
			return -1;
		}
		*(double *)field(base, k) = d;
		return 0;
	}
	snprintf(msg, len, "%s: internal error: unknown key type", k->name);
	return -1;
}

/* ---- public: defaults, free, listeners, lookup ------------------------ */

void config_defaults(struct config *cfg)
{
	char msg[256];

	memset(cfg, 0, sizeof *cfg);
	for (size_t i = 0; i < CONFIG_N_FANOUTD_KEYS; i++) {
		const struct config_key *k = &config_fanoutd_keys[i];
		if (config_set_value(k, cfg, k->def, false, NULL, msg, sizeof msg) < 0) {
			fprintf(stderr, "fanoutd: bad built-in default: %s\n", msg);
			abort();
		}
	}
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	clear_listen(cfg);
	free(cfg->ca_file);
	free(cfg->resolv_conf);
	free(cfg->auth_token_file);
	units_strv_free(cfg->allow_hosts);
	units_strv_free(cfg->deny_networks);
	for (size_t i = 0; i < cfg->nupstreams; i++) {
		free(cfg->upstreams[i].key);
		free(cfg->upstreams[i].ca_file);
	}
	free(cfg->upstreams);
	memset(cfg, 0, sizeof *cfg);
}

int config_set_listeners(struct config *cfg, char *const *listen, size_t n,
                         char *err, size_t errlen)
{
	if (n == 0) {
		snprintf(err, errlen, "listen: no address given");
		return -1;
	}
	if (n > CONFIG_MAX_LISTEN) {
		snprintf(err, errlen, "listen: more than %d listeners", CONFIG_MAX_LISTEN);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (units_check_listen(listen[i], err, errlen) < 0)
			return -1;
	clear_listen(cfg);
	for (size_t i = 0; i < n; i++)
		cfg->listen[i] = units_xstrdup(listen[i]);
	cfg->nlisten = n;
	return 0;
}

const struct config_upstream *config_find_upstream(const struct config *cfg,
                                                   const char *key)
{
	char msg[256], norm[UNITS_UPSTREAM_KEY_MAX];

	if (!cfg || !key || units_normalise_upstream(key, norm, msg, sizeof msg) < 0)
		return NULL;
	for (size_t i = 0; i < cfg->nupstreams; i++)
		if (strcmp(cfg->upstreams[i].key, norm) == 0)
			return &cfg->upstreams[i];
	return NULL;
}

/* ---- dump ------------------------------------------------------------- */

static void dump_list(FILE *out, const char *name, char *const *v)
{
	size_t col = 0;

	if (!v || !v[0]) {
		fprintf(out, "%s =\n", name);
		return;
	}
	for (size_t i = 0; v[i]; i++) {
		if (col && col + strlen(v[i]) + 2 > DUMP_WRAP) {
			fputc('\n', out);
			col = 0;
		}
		if (col == 0)
			col = (size_t)fprintf(out, "%s = %s", name, v[i]);
		else
			col += (size_t)fprintf(out, ", %s", v[i]);
	}
	fputc('\n', out);
}

/* Print one key; upstream keys that are unset are left out. */
static void dump_key(FILE *out, const struct config_key *k, const void *base, bool upstream)
{
	char buf[96];

	switch (k->type) {
	case CONFIG_KEY_LISTEN: {
		const struct config *cfg = base;
		for (size_t i = 0; i < cfg->nlisten; i++)
			fprintf(out, "listen = %s\n", cfg->listen[i]);
		return;
	}
	case CONFIG_KEY_INT:
	case CONFIG_KEY_MODE: {
		long v = *(const long *)cfield(base, k);
		if (upstream && v < 0)
			return;
		if (k->type == CONFIG_KEY_MODE)
			fprintf(out, "%s = %04lo\n", k->name, v);
		else
			fprintf(out, "%s = %ld\n", k->name, v);
		return;
	}
	case CONFIG_KEY_SIZE:
		units_format_size(*(const uint64_t *)cfield(base, k), buf, sizeof buf);
		fprintf(out, "%s = %s\n", k->name, buf);
		return;
	case CONFIG_KEY_DURATION: {
		long v = *(const long *)cfield(base, k);
		if (upstream && v < 0)
			return;
		units_format_duration(v, buf, sizeof buf);
		fprintf(out, "%s = %s\n", k->name, buf);
		return;
	}
	case CONFIG_KEY_BOOL:
		fprintf(out, "%s = %s\n", k->name, *(const bool *)cfield(base, k) ? "yes" : "no");
		return;
	case CONFIG_KEY_TRIBOOL: {
		int v = *(const int *)cfield(base, k);
		if (v >= 0)
			fprintf(out, "%s = %s\n", k->name, v ? "yes" : "no");
		return;
	}
	case CONFIG_KEY_PATH: {
		const char *v = *(char *const *)cfield(base, k);
		if (v)
			fprintf(out, "%s = %s\n", k->name, v);
		else if (!upstream)
			fprintf(out, "%s =\n", k->name);
		return;
	}
	case CONFIG_KEY_HOSTS:
	case CONFIG_KEY_CIDRS:
		dump_list(out, k->name, *(char **const *)cfield(base, k));
		return;
	case CONFIG_KEY_RATE: {
		double v = *(const double *)cfield(base, k);
		if (v > 0) {
			units_format_rate(v, buf, sizeof buf);
			fprintf(out, "%s = %s\n", k->name, buf);
		}
		return;
	}
	}
}

void config_dump(const struct config *cfg, FILE *out)
{
	fputs("; fanoutd effective configuration\n[fanoutd]\n", out);
	for (size_t i = 0; i < CONFIG_N_FANOUTD_KEYS; i++)
		dump_key(out, &config_fanoutd_keys[i], cfg, false);
	for (size_t u = 0; u < cfg->nupstreams; u++) {
		fprintf(out, "\n[upstream \"%s\"]\n", cfg->upstreams[u].key);
		for (size_t i = 0; i < CONFIG_N_UPSTREAM_KEYS; i++)
			dump_key(out, &config_upstream_keys[i], &cfg->upstreams[u], true);
	}
}
