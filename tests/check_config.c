/* check_config: unit tests of the config module — units parsers, every key,
 * every error with its line number, upstream sections, listeners, the
 * shipped etc/fanoutd.conf and config_dump round trips. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "config.h"
#include "units.h"
#include "upstream.h"

#include <check.h>
#include <event2/event.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------- */

static char tmp_path[64];

/* Write CONTENT to a fresh temp file named in tmp_path. */
static void write_tmp(const char *content)
{
	size_t n = strlen(content);
	int fd;

	snprintf(tmp_path, sizeof tmp_path, "/tmp/check_config.XXXXXX");
	fd = mkstemp(tmp_path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, content, n), (ssize_t)n);
	ck_assert_int_eq(close(fd), 0);
}

static int load_str(struct config *cfg, const char *content, char *err, size_t errlen)
{
	int r;

	write_tmp(content);
	config_defaults(cfg);
	r = config_load(cfg, tmp_path, err, errlen);
	unlink(tmp_path);
	return r;
}

static void load_ok(struct config *cfg, const char *content)
{
	char err[1024] = "";

	ck_assert_msg(load_str(cfg, content, err, sizeof err) == 0,
	              "load failed: %s\n--- file:\n%s", err, content);
}

static bool is_zeroed(const struct config *cfg)
{
	static const struct config zero;
	return memcmp(cfg, &zero, sizeof zero) == 0;
}

/* Loading CONTENT must fail with "FILE:LINE: MSG" and leave cfg zeroed. */
static void expect_error(const char *content, int line, const char *msg)
{
	struct config cfg;
	char err[1024] = "", want[1024];

	ck_assert_msg(load_str(&cfg, content, err, sizeof err) == -1,
	              "loaded but should not have:\n%s", content);
	snprintf(want, sizeof want, "%s:%d: %s", tmp_path, line, msg);
	ck_assert_str_eq(err, want);
	ck_assert(is_zeroed(&cfg));
	config_free(&cfg);
}

static size_t strv_len_for_test(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

static void assert_strv_eq(char *const *a, char *const *b)
{
	size_t i;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	for (i = 0; a[i] && b[i]; i++)
		ck_assert_str_eq(a[i], b[i]);
	ck_assert_ptr_eq(a[i], b[i]);   /* both ended */
}

static void assert_optstr_eq(const char *a, const char *b)
{
	if (!a || !b)
		ck_assert_ptr_eq(a, b);
	else
		ck_assert_str_eq(a, b);
}

static void assert_retry_on_eq(const struct config_retry_on *a, const struct config_retry_on *b)
{
	ck_assert_int_eq(a->set, b->set);
	ck_assert_int_eq(a->on.connect, b->on.connect);
	ck_assert_int_eq(a->on.timeout, b->on.timeout);
	ck_assert(memcmp(a->on.status, b->on.status, sizeof a->on.status) == 0);
}

/* A retry_on as the config stores it: connect, timeout, then the statuses
 * up to a 0. */
static struct config_retry_on retry_on_of(bool connect, bool timeout, ...)
{
	struct config_retry_on r = { .set = true };
	va_list ap;
	int st;

	r.on.connect = connect;
	r.on.timeout = timeout;
	va_start(ap, timeout);
	while ((st = va_arg(ap, int)) != 0)
		retry_on_add_status(&r.on, st);
	va_end(ap);
	return r;
}

static void assert_config_eq(const struct config *a, const struct config *b)
{
	ck_assert_uint_eq(a->nlisten, b->nlisten);
	for (size_t i = 0; i < a->nlisten; i++)
		ck_assert_str_eq(a->listen[i], b->listen[i]);
	ck_assert_int_eq(a->max_batch_size, b->max_batch_size);
	ck_assert_uint_eq(a->max_request_body, b->max_request_body);
	ck_assert_uint_eq(a->max_response_body, b->max_response_body);
	ck_assert_uint_eq(a->max_batch_response, b->max_batch_response);
	ck_assert_int_eq(a->max_stream_batch_size, b->max_stream_batch_size);
	ck_assert_uint_eq(a->stream_buffer, b->stream_buffer);
	ck_assert_int_eq(a->request_timeout_ms, b->request_timeout_ms);
	ck_assert_int_eq(a->connect_timeout_ms, b->connect_timeout_ms);
	ck_assert_int_eq(a->batch_timeout_ms, b->batch_timeout_ms);
	ck_assert_int_eq(a->shutdown_timeout_ms, b->shutdown_timeout_ms);
	ck_assert_int_eq(a->client_timeout_ms, b->client_timeout_ms);
	ck_assert_int_eq(a->upstream_concurrency, b->upstream_concurrency);
	ck_assert_int_eq(a->global_concurrency, b->global_concurrency);
	ck_assert_int_eq(a->max_queued, b->max_queued);
	ck_assert_int_eq(a->max_connections, b->max_connections);
	ck_assert_int_eq(a->http2, b->http2);
	ck_assert_int_eq(a->h2_max_streams, b->h2_max_streams);
	ck_assert_int_eq(a->keepalive_timeout_ms, b->keepalive_timeout_ms);
	ck_assert_int_eq(a->retries, b->retries);
	assert_retry_on_eq(&a->retry_on, &b->retry_on);
	ck_assert_int_eq(a->retry_backoff_ms, b->retry_backoff_ms);
	ck_assert_int_eq(a->retry_max_backoff_ms, b->retry_max_backoff_ms);
	ck_assert_msg(a->retry_budget == b->retry_budget, "retry_budget %.17g != %.17g",
	              a->retry_budget, b->retry_budget);
	ck_assert_int_eq(a->max_retries, b->max_retries);
	ck_assert_int_eq(a->max_retry_after_ms, b->max_retry_after_ms);
	ck_assert_int_eq(a->honor_retry_after, b->honor_retry_after);
	ck_assert_int_eq(a->breaker_failures, b->breaker_failures);
	ck_assert_int_eq(a->breaker_cooldown_ms, b->breaker_cooldown_ms);
	ck_assert_int_eq(a->tls_verify, b->tls_verify);
	assert_optstr_eq(a->ca_file, b->ca_file);
	assert_optstr_eq(a->resolv_conf, b->resolv_conf);
	assert_optstr_eq(a->auth_token_file, b->auth_token_file);
	assert_strv_eq(a->allow_hosts, b->allow_hosts);
	assert_strv_eq(a->deny_networks, b->deny_networks);
	ck_assert_int_eq(a->access_log, b->access_log);
	ck_assert_int_eq(a->socket_mode, b->socket_mode);
	assert_optstr_eq(a->redis.url, b->redis.url);
	assert_optstr_eq(a->redis.key_prefix, b->redis.key_prefix);
	ck_assert_int_eq(a->redis.timeout_ms, b->redis.timeout_ms);
	ck_assert_int_eq(a->redis.lease_ms, b->redis.lease_ms);
	ck_assert_uint_eq(a->nupstreams, b->nupstreams);
	for (size_t i = 0; i < a->nupstreams; i++) {
		const struct config_upstream *x = &a->upstreams[i], *y = &b->upstreams[i];
		ck_assert_str_eq(x->key, y->key);
		ck_assert_int_eq(x->concurrency, y->concurrency);
		ck_assert_int_eq(x->max_connections, y->max_connections);
		ck_assert_int_eq(x->http2, y->http2);
		ck_assert_int_eq(x->h2_max_streams, y->h2_max_streams);
		ck_assert_msg(x->rate_per_s == y->rate_per_s, "rate %.17g != %.17g",
		              x->rate_per_s, y->rate_per_s);
		ck_assert_int_eq(x->burst, y->burst);
		ck_assert_int_eq(x->request_timeout_ms, y->request_timeout_ms);
		ck_assert_int_eq(x->connect_timeout_ms, y->connect_timeout_ms);
		ck_assert_int_eq(x->retries, y->retries);
		assert_retry_on_eq(&x->retry_on, &y->retry_on);
		ck_assert_int_eq(x->retry_backoff_ms, y->retry_backoff_ms);
		ck_assert_int_eq(x->retry_max_backoff_ms, y->retry_max_backoff_ms);
		ck_assert_msg(x->retry_budget == y->retry_budget, "retry_budget %.17g != %.17g",
		              x->retry_budget, y->retry_budget);
		ck_assert_int_eq(x->max_retries, y->max_retries);
		ck_assert_int_eq(x->max_retry_after_ms, y->max_retry_after_ms);
		ck_assert_int_eq(x->honor_retry_after, y->honor_retry_after);
		ck_assert_int_eq(x->breaker_failures, y->breaker_failures);
		ck_assert_int_eq(x->breaker_cooldown_ms, y->breaker_cooldown_ms);
		ck_assert_int_eq(x->tls_verify, y->tls_verify);
		assert_optstr_eq(x->ca_file, y->ca_file);
		ck_assert_int_eq(x->shared, y->shared);
		ck_assert_int_eq(x->collapse, y->collapse);
		ck_assert_int_eq(x->hedge_after_ms, y->hedge_after_ms);
	}
}

/* config_dump into a malloc'd string. */
static char *dump_str(const struct config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	config_dump(cfg, f);
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

/* Dump CFG, load the dump, and compare. */
static void assert_dump_reloads(const struct config *cfg)
{
	struct config again;
	char *text = dump_str(cfg);

	load_ok(&again, text);
	assert_config_eq(cfg, &again);
	config_free(&again);
	free(text);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static const char *shipped_conf(void)
{
	static char path[4096];
	const char *dir = getenv("SRCDIR");

	if (!dir)
		dir = getenv("srcdir");    /* what automake's test driver sets */
	if (!dir)
		dir = ".";
	snprintf(path, sizeof path, "%s/etc/fanoutd.conf", dir);
	return path;
}

/* ---- unit parsers ----------------------------------------------------- */

START_TEST(duration_good)
{
	static const struct { const char *in; long ms; } t[] = {
		{ "250ms", 250 }, { "0ms", 0 }, { "5s", 5000 }, { "2m", 120000 },
		{ "1h", 3600000 }, { "24h", 86400000 }, { "1.5s", 1500 },
		{ "0.25s", 250 }, { "0.001s", 1 }, { "1.5m", 90000 },
		{ "0.5h", 1800000 }, { "5", 5000 }, { "1.5", 1500 }, { "0", 0 },
		{ "007s", 7000 }, { "2.000s", 2000 }, { "1.000000000s", 1000 },
		{ "9223372036854775807ms", 9223372036854775807L },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		long ms = -1;
		ck_assert_msg(units_parse_duration_ms(t[i].in, &ms) == 0, "\"%s\" refused", t[i].in);
		ck_assert_msg(ms == t[i].ms, "\"%s\" gave %ld, want %ld", t[i].in, ms, t[i].ms);
	}
}
END_TEST

START_TEST(duration_bad)
{
	static const char *const t[] = {
		"", "-1s", "-1", "+1s", "5x", "5 s", " 5s", "5s ", "5S", "5sec",
		"5ss", "ms", "s", ".5s", "5.s", "1.2.3s", "1e3", "1e3s", "0x10s",
		"inf", "nan", "1h30m", "1,5s",
		"1.5ms",                    /* finer than a millisecond */
		"0.0001s",
		"1.0000000001s",            /* more than 9 decimals */
		"99999999999999999999s",    /* overflows the number */
		"9223372036854775807s",     /* overflows the milliseconds */
		"9223372036854775808ms",
		"2562047788015216h",
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		long ms = 42;
		ck_assert_msg(units_parse_duration_ms(t[i], &ms) == -1, "\"%s\" accepted", t[i]);
		ck_assert_int_eq(ms, 42);
	}
}
END_TEST

START_TEST(size_good)
{
	static const struct { const char *in; uint64_t v; } t[] = {
		{ "0", 0 }, { "1", 1 }, { "512", 512 }, { "1048576", 1048576 },
		{ "1K", 1024 }, { "1k", 1024 }, { "8M", 8388608 }, { "8m", 8388608 },
		{ "2G", 2147483648ULL }, { "2g", 2147483648ULL }, { "0K", 0 },
		{ "1024G", 1099511627776ULL },
		{ "18446744073709551615", 18446744073709551615ULL },
		{ "17179869183G", 17179869183ULL * 1073741824ULL },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		uint64_t v = 1;
		ck_assert_msg(units_parse_size(t[i].in, &v) == 0, "\"%s\" refused", t[i].in);
		ck_assert_msg(v == t[i].v, "\"%s\" gave %llu", t[i].in, (unsigned long long)v);
	}
}
END_TEST

START_TEST(size_bad)
{
	static const char *const t[] = {
		"", "-1", "+1", "1.5M", "8MB", "8KB", "8Kb", "1T", "K", "8 M", " 8",
		"8 ", "0x10", "8MM", "1e6",
		"18446744073709551616",     /* 2^64 */
		"17179869184G",             /* 2^64 after the multiply */
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		uint64_t v = 42;
		ck_assert_msg(units_parse_size(t[i], &v) == -1, "\"%s\" accepted", t[i]);
		ck_assert_uint_eq(v, 42);
	}
}
END_TEST

START_TEST(rate_good)
{
	static const struct { const char *in; double v; } t[] = {
		{ "20/s", 20 }, { "60/m", 1 }, { "3600/h", 1 }, { "0.5/s", 0.5 },
		{ "1.5/m", 0.025 }, { "90/m", 1.5 }, { "0/s", 0 }, { "007/s", 7 },
		{ "20/m", 20.0 / 60 }, { "1/h", 1.0 / 3600 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		double v = -1;
		ck_assert_msg(units_parse_rate(t[i].in, &v) == 0, "\"%s\" refused", t[i].in);
		ck_assert_msg(v == t[i].v, "\"%s\" gave %.17g", t[i].in, v);
	}
}
END_TEST

START_TEST(rate_bad)
{
	static const char *const t[] = {
		"", "20", "20/", "20/x", "/s", "-1/s", "+1/s", "1e3/s", "inf/s",
		"nan/s", "0x10/s", "20/s ", " 20/s", "20 /s", "20/ s", "20/sec",
		"20/S", ".5/s", "5./s", "20/s/s", "1,5/s",
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		double v = 42;
		ck_assert_msg(units_parse_rate(t[i], &v) == -1, "\"%s\" accepted", t[i]);
		ck_assert(v == 42);
	}
}
END_TEST

START_TEST(percent_good)
{
	static const struct { const char *in; double v; const char *out; } t[] = {
		{ "20%", 0.2, "20%" }, { "0%", 0, "0%" }, { "100%", 1, "100%" },
		{ "12.5%", 0.125, "12.5%" }, { "007%", 0.07, "7%" }, { "33.33%", 33.33 / 100, "33.33%" },
		{ "0.000000001%", 0.000000001 / 100, "0.000000001%" }, { "5.000%", 0.05, "5%" },
		{ "99.999999999%", 99.999999999 / 100, "99.999999999%" }, { "150%", 1.5, "150%" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		double v = -1;
		char buf[64];
		ck_assert_msg(units_parse_percent(t[i].in, &v) == 0, "\"%s\" refused", t[i].in);
		ck_assert_msg(v == t[i].v, "\"%s\" gave %.17g", t[i].in, v);
		units_format_percent(v, buf, sizeof buf);
		ck_assert_str_eq(buf, t[i].out);
	}
}
END_TEST

START_TEST(percent_bad)
{
	static const char *const t[] = {
		"", "%", "20", "0.2", "20 %", " 20%", "20% ", "-1%", "+1%", "20%%", "20%x",
		".5%", "5.%", "1e1%", "inf%", "nan%", "0x10%", "1,5%", "20 percent",
		"0.0000000001%",            /* more than 9 decimals */
		"99999999999999999999%",    /* overflows the number */
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		double v = 42;
		ck_assert_msg(units_parse_percent(t[i], &v) == -1, "\"%s\" accepted", t[i]);
		ck_assert(v == 42);
	}
}
END_TEST

START_TEST(bool_forms)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "YES", "True", "On" };
	static const char *const no[] = { "no", "false", "off", "0", "NO", "False", "OFF" };
	static const char *const bad[] = { "", "2", "y", "n", "maybe", " yes", "yes ", "enabled" };
	bool b;

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		b = false;
		ck_assert_int_eq(units_parse_bool(yes[i], &b), 0);
		ck_assert(b);
	}
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		b = true;
		ck_assert_int_eq(units_parse_bool(no[i], &b), 0);
		ck_assert(!b);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(units_parse_bool(bad[i], &b) == -1, "\"%s\" accepted", bad[i]);
}
END_TEST

/* ---- defaults and loading --------------------------------------------- */

START_TEST(defaults)
{
	struct config cfg;

	config_defaults(&cfg);
	ck_assert_uint_eq(cfg.nlisten, 1);
	ck_assert_str_eq(cfg.listen[0], "127.0.0.1:8642");
	ck_assert_int_eq(cfg.max_batch_size, 10000);
	ck_assert_uint_eq(cfg.max_request_body, 8 << 20);
	ck_assert_uint_eq(cfg.max_response_body, 8 << 20);
	ck_assert_uint_eq(cfg.max_batch_response, 256 << 20);
	ck_assert_int_eq(cfg.max_stream_batch_size, 1000000);
	ck_assert_uint_eq(cfg.stream_buffer, 8 << 20);
	ck_assert_int_eq(cfg.request_timeout_ms, 5000);
	ck_assert_int_eq(cfg.connect_timeout_ms, 5000);
	ck_assert_int_eq(cfg.batch_timeout_ms, 60000);
	ck_assert_int_eq(cfg.shutdown_timeout_ms, 30000);
	ck_assert_int_eq(cfg.client_timeout_ms, 10000);
	ck_assert_int_eq(cfg.upstream_concurrency, 10);
	ck_assert_int_eq(cfg.global_concurrency, 1024);
	ck_assert_int_eq(cfg.max_queued, 100000);
	ck_assert_int_eq(cfg.max_connections, 0);
	ck_assert_int_eq(cfg.http2, CONFIG_HTTP2_AUTO);
	ck_assert_int_eq(cfg.h2_max_streams, 100);
	ck_assert_int_eq(cfg.keepalive_timeout_ms, 30000);
	ck_assert_int_eq(cfg.retries, 0);
	{
		struct config_retry_on def = { .set = true };
		retry_on_default(&def.on);
		assert_retry_on_eq(&cfg.retry_on, &def);
		def = retry_on_of(true, true, 429, 502, 503, 504, 0);
		assert_retry_on_eq(&cfg.retry_on, &def);
	}
	ck_assert_int_eq(cfg.retry_backoff_ms, 100);
	ck_assert_int_eq(cfg.retry_max_backoff_ms, 5000);
	ck_assert(cfg.retry_budget == 0.2);
	ck_assert_int_eq(cfg.max_retries, 5);
	ck_assert_int_eq(cfg.max_retry_after_ms, 30000);
	ck_assert(cfg.honor_retry_after);
	ck_assert_int_eq(cfg.breaker_failures, 0);
	ck_assert_int_eq(cfg.breaker_cooldown_ms, 10000);
	ck_assert(cfg.tls_verify);
	ck_assert_ptr_null(cfg.ca_file);
	ck_assert_str_eq(cfg.resolv_conf, "/etc/resolv.conf");
	ck_assert_ptr_null(cfg.auth_token_file);
	assert_strv_eq(cfg.allow_hosts, (char *[]){ "*", NULL });
	assert_strv_eq(cfg.deny_networks, (char *[]){ "169.254.0.0/16", "fe80::/10", NULL });
	ck_assert(cfg.access_log);
	ck_assert_int_eq(cfg.socket_mode, 0660);
	ck_assert_ptr_null(cfg.redis.url);
	ck_assert_str_eq(cfg.redis.key_prefix, "fanoutd:");
	ck_assert_int_eq(cfg.redis.timeout_ms, 100);
	ck_assert_int_eq(cfg.redis.lease_ms, 30000);
	ck_assert_uint_eq(cfg.nupstreams, 0);
	ck_assert_ptr_null(cfg.upstreams);
	ck_assert_ptr_null(config_find_upstream(&cfg, "http://127.0.0.1:8080"));
	config_free(&cfg);
}
END_TEST

START_TEST(every_key)
{
	struct config cfg;
	char dir[4096], want[4200];

	load_ok(&cfg,
	        "[fanoutd]\n"
	        "listen = 0.0.0.0:9000\n"
	        "listen = [::1]:9001\n"
	        "listen = unix:/run/fanoutd/fanoutd.sock\n"
	        "max_batch_size = 50\n"
	        "max_request_body = 1G\n"
	        "max_response_body = 512k\n"
	        "max_batch_response = 2M\n"
	        "max_stream_batch_size = 20000\n"
	        "stream_buffer = 64K\n"
	        "request_timeout = 1.5s\n"
	        "connect_timeout = 250ms\n"
	        "batch_timeout = 2m\n"
	        "shutdown_timeout = 0\n"
	        "client_timeout = 3\n"
	        "upstream_concurrency = 4\n"
	        "global_concurrency = 100\n"
	        "max_queued = 1000\n"
	        "max_connections = 3\n"
	        "http2 = prior-knowledge\n"
	        "h2_max_streams = 7\n"
	        "keepalive_timeout = 1h\n"
	        "retries = 3\n"
	        "retry_on = 500, timeout\n"
	        "retry_backoff = 50ms\n"
	        "retry_max_backoff = 1s\n"
	        "retry_budget = 12.5%\n"
	        "max_retries = 4\n"
	        "max_retry_after = 1m\n"
	        "honor_retry_after = no\n"
	        "breaker_failures = 7\n"
	        "breaker_cooldown = 2.5s\n"
	        "tls_verify = no\n"
	        "ca_file = /etc/ssl/ca.pem\n"
	        "resolv_conf = /tmp/resolv.conf\n"
	        "auth_token_file = token.txt\n"
	        "allow_hosts = *.Example.com, api.test ,10.0.0.?\n"
	        "deny_networks = 10.0.0.0/8, FD00:0::/8,192.168.1.1\n"
	        "access_log = off\n"
	        "socket_mode = 0600\n");
	ck_assert_uint_eq(cfg.nlisten, 3);
	ck_assert_str_eq(cfg.listen[0], "0.0.0.0:9000");
	ck_assert_str_eq(cfg.listen[1], "[::1]:9001");
	ck_assert_str_eq(cfg.listen[2], "unix:/run/fanoutd/fanoutd.sock");
	ck_assert_int_eq(cfg.max_batch_size, 50);
	ck_assert_uint_eq(cfg.max_request_body, 1ULL << 30);
	ck_assert_uint_eq(cfg.max_response_body, 512 * 1024);
	ck_assert_uint_eq(cfg.max_batch_response, 2 << 20);
	ck_assert_int_eq(cfg.max_stream_batch_size, 20000);
	ck_assert_uint_eq(cfg.stream_buffer, 64 * 1024);
	ck_assert_int_eq(cfg.request_timeout_ms, 1500);
	ck_assert_int_eq(cfg.connect_timeout_ms, 250);
	ck_assert_int_eq(cfg.batch_timeout_ms, 120000);
	ck_assert_int_eq(cfg.shutdown_timeout_ms, 0);
	ck_assert_int_eq(cfg.client_timeout_ms, 3000);
	ck_assert_int_eq(cfg.upstream_concurrency, 4);
	ck_assert_int_eq(cfg.global_concurrency, 100);
	ck_assert_int_eq(cfg.max_queued, 1000);
	ck_assert_int_eq(cfg.max_connections, 3);
	ck_assert_int_eq(cfg.http2, CONFIG_HTTP2_PRIOR);
	ck_assert_int_eq(cfg.h2_max_streams, 7);
	ck_assert_int_eq(cfg.keepalive_timeout_ms, 3600000);
	ck_assert_int_eq(cfg.retries, 3);
	{
		struct config_retry_on want_on = retry_on_of(false, true, 500, 0);
		assert_retry_on_eq(&cfg.retry_on, &want_on);
	}
	ck_assert_int_eq(cfg.retry_backoff_ms, 50);
	ck_assert_int_eq(cfg.retry_max_backoff_ms, 1000);
	ck_assert(cfg.retry_budget == 0.125);
	ck_assert_int_eq(cfg.max_retries, 4);
	ck_assert_int_eq(cfg.max_retry_after_ms, 60000);
	ck_assert(!cfg.honor_retry_after);
	ck_assert_int_eq(cfg.breaker_failures, 7);
	ck_assert_int_eq(cfg.breaker_cooldown_ms, 2500);
	ck_assert(!cfg.tls_verify);
	ck_assert_str_eq(cfg.ca_file, "/etc/ssl/ca.pem");
	ck_assert_str_eq(cfg.resolv_conf, "/tmp/resolv.conf");
	/* relative paths are taken from the config file's directory */
	ck_assert_ptr_nonnull(realpath("/tmp", dir));
	snprintf(want, sizeof want, "%s/token.txt", dir);
	ck_assert_str_eq(cfg.auth_token_file, want);
	assert_strv_eq(cfg.allow_hosts, (char *[]){ "*.example.com", "api.test", "10.0.0.?", NULL });
	assert_strv_eq(cfg.deny_networks,
	               (char *[]){ "10.0.0.0/8", "fd00::/8", "192.168.1.1/32", NULL });
	ck_assert(!cfg.access_log);
	ck_assert_int_eq(cfg.socket_mode, 0600);
	ck_assert_uint_eq(cfg.nupstreams, 0);
	assert_dump_reloads(&cfg);
	config_free(&cfg);
}
END_TEST

START_TEST(limits_of_ranges)
{
	struct config cfg;

	load_ok(&cfg,
	        "[fanoutd]\n"
	        "max_batch_size = 1000000\n"
	        "max_request_body = 1\n"
	        "max_response_body = 1024G\n"
	        "request_timeout = 24h\n"
	        "connect_timeout = 1ms\n"
	        "batch_timeout = 86400\n"
	        "shutdown_timeout = 0ms\n"
	        "upstream_concurrency = 100000\n"
	        "global_concurrency = 1\n"
	        "max_queued = 100000000\n"
	        "h2_max_streams = 1000\n"
	        "retries = 100\n"
	        "retry_backoff = 0\n"
	        "retry_max_backoff = 24h\n"
	        "retry_budget = 100%\n"
	        "max_retries = 100\n"
	        "max_retry_after = 0ms\n"
	        "breaker_failures = 1000000\n"
	        "breaker_cooldown = 1ms\n"
	        "socket_mode = 0\n"
	        "deny_networks =\n");
	ck_assert_int_eq(cfg.max_batch_size, 1000000);
	ck_assert_uint_eq(cfg.max_request_body, 1);
	ck_assert_uint_eq(cfg.max_response_body, 1ULL << 40);
	ck_assert_int_eq(cfg.request_timeout_ms, 86400000);
	ck_assert_int_eq(cfg.connect_timeout_ms, 1);
	ck_assert_int_eq(cfg.batch_timeout_ms, 86400000);
	ck_assert_int_eq(cfg.shutdown_timeout_ms, 0);
	ck_assert_int_eq(cfg.upstream_concurrency, 100000);
	ck_assert_int_eq(cfg.global_concurrency, 1);
	ck_assert_int_eq(cfg.max_queued, 100000000);
	ck_assert_int_eq(cfg.h2_max_streams, 1000);
	ck_assert_int_eq(cfg.retries, 100);
	ck_assert_int_eq(cfg.retry_backoff_ms, 0);
	ck_assert_int_eq(cfg.retry_max_backoff_ms, 86400000);
	ck_assert(cfg.retry_budget == 1.0);
	ck_assert_int_eq(cfg.max_retries, 100);
	ck_assert_int_eq(cfg.max_retry_after_ms, 0);
	ck_assert_int_eq(cfg.breaker_failures, 1000000);
	ck_assert_int_eq(cfg.breaker_cooldown_ms, 1);
	ck_assert_int_eq(cfg.socket_mode, 0);
	ck_assert_ptr_nonnull(cfg.deny_networks);
	ck_assert_ptr_null(cfg.deny_networks[0]);   /* empty value = none */
	assert_dump_reloads(&cfg);
	config_free(&cfg);

	/* the other ends */
	load_ok(&cfg,
	        "[fanoutd]\n"
	        "retry_budget = 0%\n"
	        "max_retries = 0\n"
	        "retry_max_backoff = 0\n"
	        "max_retry_after = 24h\n"
	        "breaker_cooldown = 24h\n");
	ck_assert(cfg.retry_budget == 0);
	ck_assert_int_eq(cfg.max_retries, 0);
	ck_assert_int_eq(cfg.retry_max_backoff_ms, 0);
	ck_assert_int_eq(cfg.max_retry_after_ms, 86400000);
	ck_assert_int_eq(cfg.breaker_cooldown_ms, 86400000);
	assert_dump_reloads(&cfg);
	config_free(&cfg);
}
END_TEST

START_TEST(ini_syntax_forms)
{
	struct config cfg;

	/* inline " ;" comments (inih), start-of-line ; and # comments,
	 * indented comments, "key: value", blank lines, no final newline */
	load_ok(&cfg,
	        "# a comment\n"
	        "; another\n"
	        "\n"
	        "[fanoutd] ; the main section\n"
	        "request_timeout = 7s ; seven seconds\n"
	        "   ; an indented comment\n"
	        "max_batch_size: 5\n"
	        "socket_mode=0640\n"
	        "\t\n"
	        "max_queued = 9");
	ck_assert_int_eq(cfg.request_timeout_ms, 7000);
	ck_assert_int_eq(cfg.max_batch_size, 5);
	ck_assert_int_eq(cfg.socket_mode, 0640);
	ck_assert_int_eq(cfg.max_queued, 9);
	/* ';' not after whitespace is not a comment, and not a glob char */
	config_free(&cfg);
	expect_error("[fanoutd]\nallow_hosts = a.test;b.test\n", 2,
	             "allow_hosts: bad host glob \"a.test;b.test\"");

	/* CRLF line ends and a UTF-8 byte order mark */
	load_ok(&cfg, "\xEF\xBB\xBF[fanoutd]\r\nmax_queued = 77\r\n\r\n[upstream \"http://a\"]\r\nrate = 2/s\r\n");
	ck_assert_int_eq(cfg.max_queued, 77);
	ck_assert_uint_eq(cfg.nupstreams, 1);
	ck_assert_str_eq(cfg.upstreams[0].key, "http://a:80");
	ck_assert(cfg.upstreams[0].rate_per_s == 2);
	config_free(&cfg);

	/* an empty file and a comment-only file give the defaults */
	{
		struct config def;
		config_defaults(&def);
		load_ok(&cfg, "");
		assert_config_eq(&cfg, &def);
		config_free(&cfg);
		load_ok(&cfg, "; nothing\n[fanoutd]\n");
		assert_config_eq(&cfg, &def);
		config_free(&cfg);
		config_free(&def);
	}
}
END_TEST

START_TEST(free_is_idempotent)
{
	struct config cfg;

	config_defaults(&cfg);
	config_free(&cfg);
	ck_assert(is_zeroed(&cfg));
	config_free(&cfg);
	ck_assert(is_zeroed(&cfg));
	config_free(NULL);

	load_ok(&cfg, "[fanoutd]\nca_file = /x\n[upstream \"http://a\"]\nca_file = /y\n");
	config_free(&cfg);
	ck_assert(is_zeroed(&cfg));
	config_free(&cfg);
}
END_TEST

/* ---- errors ----------------------------------------------------------- */

START_TEST(error_unknown_key)
{
	expect_error("[fanoutd]\nlisten = 127.0.0.1:1\n\nfoo = 1\n", 4,
	             "unknown key \"foo\" in [fanoutd]");
	expect_error("[fanoutd]\nRequest_Timeout = 5s\n", 2,
	             "unknown key \"Request_Timeout\" in [fanoutd]");
	expect_error("[fanoutd]\n= 5\n", 2, "unknown key \"\" in [fanoutd]");
	/* a [fanoutd]-only key in an upstream section */
	expect_error("[upstream \"http://a\"]\nconcurrency = 2\nmax_queued = 5\n", 3,
	             "unknown key \"max_queued\" in [upstream \"http://a\"]");
}
END_TEST

START_TEST(error_unknown_section)
{
	expect_error("[fanoutd]\nmax_queued = 5\n[fanout]\n", 3,
	             "unknown section [fanout] (use [fanoutd], [redis] or [upstream \"URL\"])");
	expect_error("[ FANOUTD ]\n", 1,
	             "unknown section [FANOUTD] (use [fanoutd], [redis] or [upstream \"URL\"])");
	expect_error("\n[]\n", 2, "unknown section [] (use [fanoutd], [redis] or [upstream \"URL\"])");
	expect_error("[upstreams \"http://a\"]\n", 1,
	             "unknown section [upstreams \"http://a\"] (use [fanoutd], [redis] or [upstream \"URL\"])");
}
END_TEST

START_TEST(error_key_outside_section)
{
	expect_error("; header\nmax_queued = 5\n[fanoutd]\n", 2,
	             "key \"max_queued\" outside any section (put it under [fanoutd])");
}
END_TEST

START_TEST(error_bad_values)
{
	expect_error("[fanoutd]\n\n\nrequest_timeout = 5x\n", 4,
	             "request_timeout: bad duration \"5x\" (use e.g. 250ms, 5s, 2m)");
	expect_error("[fanoutd]\nrequest_timeout = -1s\n", 2,
	             "request_timeout: bad duration \"-1s\" (use e.g. 250ms, 5s, 2m)");
	expect_error("[fanoutd]\nrequest_timeout =\n", 2,
	             "request_timeout: bad duration \"\" (use e.g. 250ms, 5s, 2m)");
	expect_error("[fanoutd]\nmax_request_body = 8MB\n", 2,
	             "max_request_body: bad size \"8MB\" (use e.g. 512K, 8M, 1G)");
	expect_error("[fanoutd]\nmax_batch_size = ten\n", 2,
	             "max_batch_size: bad number \"ten\"");
	expect_error("[fanoutd]\nmax_batch_size = -5\n", 2,
	             "max_batch_size: bad number \"-5\"");
	expect_error("[fanoutd]\nmax_batch_size = 1e3\n", 2,
	             "max_batch_size: bad number \"1e3\"");
	expect_error("[fanoutd]\ntls_verify = maybe\n", 2,
	             "tls_verify: bad boolean \"maybe\" (use yes/no, true/false, on/off, 1/0)");
	expect_error("[fanoutd]\naccess_log =\n", 2,
	             "access_log: bad boolean \"\" (use yes/no, true/false, on/off, 1/0)");
	expect_error("[fanoutd]\nh2_max_streams = many\n", 2,
	             "h2_max_streams: bad number \"many\"");
	expect_error("[upstream \"http://a\"]\nh2_max_streams = -1\n", 2,
	             "h2_max_streams: bad number \"-1\"");
	expect_error("[fanoutd]\nretries = some\n", 2, "retries: bad number \"some\"");
	expect_error("[fanoutd]\nretry_backoff = fast\n", 2,
	             "retry_backoff: bad duration \"fast\" (use e.g. 250ms, 5s, 2m)");
	expect_error("[fanoutd]\nretry_budget = 0.2\n", 2,
	             "retry_budget: bad percentage \"0.2\" (use e.g. 20%, 12.5%)");
	expect_error("[fanoutd]\nhonor_retry_after = always\n", 2,
	             "honor_retry_after: bad boolean \"always\" (use yes/no, true/false, on/off, 1/0)");
	expect_error("[fanoutd]\nretry_on = connect, 5xx\n", 2,
	             "retry_on: \"5xx\" is not connect, timeout or a status 400..599");
	expect_error("[fanoutd]\nsocket_mode = 0999\n", 2,
	             "socket_mode: bad mode \"0999\" (use octal, e.g. 0660)");
	expect_error("[fanoutd]\nsocket_mode = rw\n", 2,
	             "socket_mode: bad mode \"rw\" (use octal, e.g. 0660)");
	expect_error("[upstream \"http://a\"]\ntls_verify = maybe\n", 2,
	             "tls_verify: bad boolean \"maybe\" (use yes/no, true/false, on/off, 1/0)");
	expect_error("[fanoutd]\nca_file = a\tb\n", 2,
	             "ca_file: control character in path");
	expect_error("[fanoutd]\nallow_hosts =\n", 2,
	             "allow_hosts: empty list would refuse every host (use * to allow all)");
	expect_error("[fanoutd]\nallow_hosts = a.test,,b.test\n", 2,
	             "allow_hosts: empty element in \"a.test,,b.test\"");
	expect_error("[fanoutd]\nallow_hosts = a.test,\n", 2,
	             "allow_hosts: empty element in \"a.test,\"");
	expect_error("[fanoutd]\nallow_hosts = a test\n", 2,
	             "allow_hosts: bad host glob \"a test\"");
	expect_error("[fanoutd]\nallow_hosts = http://a.test\n", 2,
	             "allow_hosts: bad host glob \"http://a.test\"");
	expect_error("[fanoutd]\ndeny_networks = 10.0.0.0/33\n", 2,
	             "deny_networks: bad CIDR \"10.0.0.0/33\" (use e.g. 10.0.0.0/8 or fd00::/8)");
	expect_error("[fanoutd]\ndeny_networks = fe80::/129\n", 2,
	             "deny_networks: bad CIDR \"fe80::/129\" (use e.g. 10.0.0.0/8 or fd00::/8)");
	expect_error("[fanoutd]\ndeny_networks = 300.0.0.0/8\n", 2,
	             "deny_networks: bad CIDR \"300.0.0.0/8\" (use e.g. 10.0.0.0/8 or fd00::/8)");
	expect_error("[fanoutd]\ndeny_networks = 10.0.0.0/\n", 2,
	             "deny_networks: bad CIDR \"10.0.0.0/\" (use e.g. 10.0.0.0/8 or fd00::/8)");
	expect_error("[fanoutd]\ndeny_networks = 10.0.0.0/-1\n", 2,
	             "deny_networks: bad CIDR \"10.0.0.0/-1\" (use e.g. 10.0.0.0/8 or fd00::/8)");
	expect_error("[fanoutd]\ndeny_networks = metadata.internal\n", 2,
	             "deny_networks: bad CIDR \"metadata.internal\" (use e.g. 10.0.0.0/8 or fd00::/8)");
	expect_error("[fanoutd]\ndeny_networks = 10.0.0.0/8, 10.1.2.3/8\n", 2,
	             "deny_networks: \"10.1.2.3/8\" has bits set after the prefix length");
	expect_error("[fanoutd]\ndeny_networks = fe80::1/10\n", 2,
	             "deny_networks: \"fe80::1/10\" has bits set after the prefix length");
}
END_TEST

START_TEST(error_out_of_range)
{
	expect_error("[fanoutd]\nrequest_timeout = 25h\n", 2,
	             "request_timeout: 25h is out of range (1ms..24h)");
	expect_error("[fanoutd]\nrequest_timeout = 86400.001\n", 2,
	             "request_timeout: 86400.001 is out of range (1ms..24h)");
	expect_error("[fanoutd]\nconnect_timeout = 0\n", 2,
	             "connect_timeout: 0 is out of range (1ms..24h)");
	expect_error("[fanoutd]\nkeepalive_timeout = 0ms\n", 2,
	             "keepalive_timeout: 0ms is out of range (1ms..24h)");
	expect_error("[fanoutd]\nshutdown_timeout = 1441m\n", 2,
	             "shutdown_timeout: 1441m is out of range (0..24h)");
	expect_error("[fanoutd]\nmax_batch_size = 0\n", 2,
	             "max_batch_size: 0 is out of range (1..1000000)");
	expect_error("[fanoutd]\nmax_stream_batch_size = 0\n", 2,
	             "max_stream_batch_size: 0 is out of range (1..100000000)");
	expect_error("[fanoutd]\nmax_batch_size = 1000001\n", 2,
	             "max_batch_size: 1000001 is out of range (1..1000000)");
	expect_error("[fanoutd]\nmax_batch_size = 99999999999999999999\n", 2,
	             "max_batch_size: 99999999999999999999 is out of range (1..1000000)");
	expect_error("[fanoutd]\nupstream_concurrency = 100001\n", 2,
	             "upstream_concurrency: 100001 is out of range (1..100000)");
	expect_error("[fanoutd]\nglobal_concurrency = 0\n", 2,
	             "global_concurrency: 0 is out of range (1..1000000)");
	expect_error("[fanoutd]\nmax_queued = 100000001\n", 2,
	             "max_queued: 100000001 is out of range (1..100000000)");
	expect_error("[fanoutd]\nmax_request_body = 0\n", 2,
	             "max_request_body: 0 is out of range (1..1024G)");
	expect_error("[fanoutd]\nstream_buffer = 0\n", 2,
	             "stream_buffer: 0 is out of range (1..1024G)");
	expect_error("[fanoutd]\nmax_response_body = 1025G\n", 2,
	             "max_response_body: 1025G is out of range (1..1024G)");
	expect_error("[fanoutd]\nh2_max_streams = 0\n", 2,
	             "h2_max_streams: 0 is out of range (1..1000)");
	expect_error("[fanoutd]\nh2_max_streams = 1001\n", 2,
	             "h2_max_streams: 1001 is out of range (1..1000)");
	expect_error("[upstream \"http://a\"]\nh2_max_streams = 0\n", 2,
	             "h2_max_streams: 0 is out of range (1..1000)");
	expect_error("[upstream \"http://a\"]\nh2_max_streams = 1001\n", 2,
	             "h2_max_streams: 1001 is out of range (1..1000)");
	expect_error("[fanoutd]\nsocket_mode = 1777\n", 2,
	             "socket_mode: 1777 is out of range (0000..0777)");
	expect_error("[fanoutd]\nretries = 101\n", 2, "retries: 101 is out of range (0..100)");
	expect_error("[fanoutd]\nmax_retries = 101\n", 2,
	             "max_retries: 101 is out of range (0..100)");
	expect_error("[fanoutd]\nretry_budget = 100.5%\n", 2,
	             "retry_budget: 100.5% is out of range (0%..100%)");
	expect_error("[fanoutd]\nbreaker_cooldown = 0\n", 2,
	             "breaker_cooldown: 0 is out of range (1ms..24h)");
	expect_error("[fanoutd]\nbreaker_failures = 1000001\n", 2,
	             "breaker_failures: 1000001 is out of range (0..1000000)");
}
END_TEST

START_TEST(error_set_twice)
{
	expect_error("[fanoutd]\nmax_queued = 5\nrequest_timeout = 1s\nmax_queued = 6\n", 4,
	             "max_queued: set twice (first at line 2)");
	expect_error("[upstream \"http://a\"]\nrate = 1/s\n\nrate = 2/s\n", 4,
	             "rate: set twice (first at line 2)");
	expect_error("[fanoutd]\nhttp2 = no\nhttp2 = auto\n", 3,
	             "http2: set twice (first at line 2)");
	expect_error("[upstream \"http://a\"]\nhttp2 = no\nhttp2 = no\n", 3,
	             "http2: set twice (first at line 2)");
	/* retry_on is one list: a second line is an error, not an addition */
	expect_error("[fanoutd]\nretry_on = 502\nretry_on = 503\n", 3,
	             "retry_on: set twice (first at line 2)");
	expect_error("[upstream \"http://a\"]\nretry_on = 502\nretry_on = 502\n", 3,
	             "retry_on: set twice (first at line 2)");
}
END_TEST

START_TEST(error_syntax)
{
	expect_error("[fanoutd]\nmax_queued = 5\nnoequals\n", 3,
	             "syntax error: expected \"key = value\", \"[section]\" or a comment, got \"noequals\"");
	expect_error("[fanoutd]\nmax_queued ; = 5\n", 2,
	             "syntax error: expected \"key = value\", \"[section]\" or a comment, got \"max_queued ; = 5\"");
	expect_error("[fanoutd\n", 1, "bad section header (use [fanoutd])");
	expect_error("[fanoutd] x\n", 1, "unexpected text after [fanoutd]");
	/* inih reads indented lines as continuations of the previous value */
	expect_error("[fanoutd]\nmax_queued = 5\n  max_batch_size = 6\n", 3,
	             "indented line (inih would read it as a continuation of the previous value); "
	             "start keys and sections in the first column");
	expect_error("[fanoutd]\n\tmax_queued = 5\n", 2,
	             "indented line (inih would read it as a continuation of the previous value); "
	             "start keys and sections in the first column");
}
END_TEST

START_TEST(error_long_line)
{
	char text[1024], msg[128];
	int max;

	/* inih reads lines of up to its buffer size (200 in Debian's build);
	 * a longer one would be split, so it is refused, comments too */
	for (max = 100; max < 900; max++) {
		struct config cfg;
		char err[1024];
		snprintf(text, sizeof text, "[fanoutd]\n;%0*d\n", max - 1, 0);
		if (load_str(&cfg, text, err, sizeof err) < 0)
			break;
		config_free(&cfg);
	}
	ck_assert_int_lt(max, 900);
	ck_assert_int_ge(max, 150);
	snprintf(msg, sizeof msg, "line too long (at most %d characters)", max - 1);
	snprintf(text, sizeof text, "[fanoutd]\nmax_queued = 5\n;%0*d\n", max - 1, 0);
	expect_error(text, 3, msg);
	snprintf(text, sizeof text, "[fanoutd]\nallow_hosts = %0*d.test\n", max + 10, 0);
	expect_error(text, 2, msg);
}
END_TEST

START_TEST(error_file)
{
	struct config cfg;
	char err[256];

	config_defaults(&cfg);
	ck_assert_int_eq(config_load(&cfg, "/nonexistent/fanoutd.conf", err, sizeof err), -1);
	ck_assert_str_eq(err, "/nonexistent/fanoutd.conf: cannot open: No such file or directory");
	ck_assert(is_zeroed(&cfg));

	config_defaults(&cfg);
	ck_assert_int_eq(config_load(&cfg, "/tmp", err, sizeof err), -1);
	ck_assert_str_eq(err, "/tmp: cannot read: Is a directory");
	ck_assert(is_zeroed(&cfg));
	config_free(&cfg);
}
END_TEST

START_TEST(error_small_buffer)
{
	struct config cfg;
	char err[16];

	ck_assert_int_eq(load_str(&cfg, "[fanoutd]\nfoo = 1\n", err, sizeof err), -1);
	ck_assert_uint_eq(strlen(err), sizeof err - 1);
	ck_assert(strncmp(err, tmp_path, sizeof err - 1) == 0);
}
END_TEST

/* ---- upstream sections ------------------------------------------------ */

START_TEST(upstream_sections)
{
	struct config cfg;
	const struct config_upstream *u;

	load_ok(&cfg,
	        "[upstream \"HTTPS://API.Example.COM\"]\n"
	        "concurrency = 5\n"
	        "rate = 20/m\n"
	        "burst = 3\n"
	        "request_timeout = 2s\n"
	        "connect_timeout = 500ms\n"
	        "tls_verify = no\n"
	        "ca_file = /etc/ca.pem\n"
	        "\n"
	        "[upstream \"http://[0:0::1]:8080/\"]\n"
	        "[fanoutd]\n"
	        "upstream_concurrency = 3\n"
	        "[upstream \"http://127.0.0.1\"] ; default port\n"
	        "rate = 0.5/s\n"
	        "tls_verify = on\n"
	        "[upstream \"https://a-very-long-host-name.subdomain.example.com:8443\"]\n"
	        "concurrency = 1\n"
	        "[upstream   \"https://[2001:DB8::1]\"  ]\n");
	ck_assert_int_eq(cfg.upstream_concurrency, 3);
	ck_assert_uint_eq(cfg.nupstreams, 5);

	u = &cfg.upstreams[0];
	ck_assert_str_eq(u->key, "https://api.example.com:443");
	ck_assert_int_eq(u->concurrency, 5);
	ck_assert(u->rate_per_s == 20.0 / 60);
	ck_assert_int_eq(u->burst, 3);
	ck_assert_int_eq(u->request_timeout_ms, 2000);
	ck_assert_int_eq(u->connect_timeout_ms, 500);
	ck_assert_int_eq(u->tls_verify, 0);
	ck_assert_str_eq(u->ca_file, "/etc/ca.pem");

	u = &cfg.upstreams[1];      /* nothing set: every field falls back */
	ck_assert_str_eq(u->key, "http://[::1]:8080");
	ck_assert_int_eq(u->concurrency, -1);
	ck_assert(u->rate_per_s == 0);
	ck_assert_int_eq(u->burst, -1);
	ck_assert_int_eq(u->request_timeout_ms, -1);
	ck_assert_int_eq(u->connect_timeout_ms, -1);
	ck_assert_int_eq(u->retries, -1);
	ck_assert(!u->retry_on.set);
	ck_assert_int_eq(u->retry_backoff_ms, -1);
	ck_assert_int_eq(u->retry_max_backoff_ms, -1);
	ck_assert(u->retry_budget == -1);
	ck_assert_int_eq(u->max_retries, -1);
	ck_assert_int_eq(u->max_retry_after_ms, -1);
	ck_assert_int_eq(u->honor_retry_after, -1);
	ck_assert_int_eq(u->breaker_failures, -1);
	ck_assert_int_eq(u->breaker_cooldown_ms, -1);
	ck_assert_int_eq(u->tls_verify, -1);
	ck_assert_ptr_null(u->ca_file);
	ck_assert_int_eq(u->shared, -1);
	ck_assert(!config_upstream_shared(u));

	u = &cfg.upstreams[2];
	ck_assert_str_eq(u->key, "http://127.0.0.1:80");
	ck_assert(u->rate_per_s == 0.5);
	ck_assert_int_eq(u->burst, -1);
	ck_assert_int_eq(u->tls_verify, 1);

	/* longer than inih's own 50-byte section buffer */
	ck_assert_str_eq(cfg.upstreams[3].key,
	                 "https://a-very-long-host-name.subdomain.example.com:8443");
	ck_assert_int_eq(cfg.upstreams[3].concurrency, 1);
	ck_assert_str_eq(cfg.upstreams[4].key, "https://[2001:db8::1]:443");

	/* lookups normalise the key they are given */
	ck_assert_ptr_eq(config_find_upstream(&cfg, "https://api.example.com:443"), &cfg.upstreams[0]);
	ck_assert_ptr_eq(config_find_upstream(&cfg, "https://api.example.com"), &cfg.upstreams[0]);
	ck_assert_ptr_eq(config_find_upstream(&cfg, "HTTPS://Api.Example.Com/"), &cfg.upstreams[0]);
	ck_assert_ptr_null(config_find_upstream(&cfg, "http://api.example.com"));
	ck_assert_ptr_null(config_find_upstream(&cfg, "https://api.example.com:8443"));
	ck_assert_ptr_eq(config_find_upstream(&cfg, "http://[::1]:8080"), &cfg.upstreams[1]);
	ck_assert_ptr_eq(config_find_upstream(&cfg, "http://[0::1]:8080"), &cfg.upstreams[1]);
	ck_assert_ptr_null(config_find_upstream(&cfg, "http://[::1]"));
	ck_assert_ptr_eq(config_find_upstream(&cfg, "http://127.0.0.1:80"), &cfg.upstreams[2]);
	ck_assert_ptr_eq(config_find_upstream(&cfg, "http://127.0.0.1"), &cfg.upstreams[2]);
	ck_assert_ptr_eq(config_find_upstream(&cfg, "https://[2001:db8:0::1]:443"), &cfg.upstreams[4]);
	ck_assert_ptr_null(config_find_upstream(&cfg, "garbage"));
	ck_assert_ptr_null(config_find_upstream(&cfg, ""));
	ck_assert_ptr_null(config_find_upstream(&cfg, NULL));

	assert_dump_reloads(&cfg);
	config_free(&cfg);
}
END_TEST

START_TEST(collapse_and_hedge)
{
	struct config cfg;

	load_ok(&cfg, "[upstream \"http://a\"]\ncollapse = yes\nhedge_after = P95\n"
	              "[upstream \"http://b\"]\nhedge_after = 50ms\ncollapse = no\n"
	              "[upstream \"http://c\"]\nhedge_after = off\n"
	              "[upstream \"http://d\"]\nhedge_after = 1h\n"
	              "[upstream \"http://e\"]\nconcurrency = 3\n");
	ck_assert_int_eq(cfg.upstreams[0].collapse, 1);
	ck_assert_int_eq(cfg.upstreams[0].hedge_after_ms, CONFIG_HEDGE_P95);
	ck_assert_int_eq(cfg.upstreams[1].collapse, 0);
	ck_assert_int_eq(cfg.upstreams[1].hedge_after_ms, 50);
	ck_assert_int_eq(cfg.upstreams[2].hedge_after_ms, 0);
	ck_assert_int_eq(cfg.upstreams[3].hedge_after_ms, 3600000);
	ck_assert_int_eq(cfg.upstreams[4].collapse, -1);
	ck_assert_int_eq(cfg.upstreams[4].hedge_after_ms, -1);
	assert_dump_reloads(&cfg);
	config_free(&cfg);
	expect_error("[upstream \"http://a\"]\nhedge_after = 0ms\n", 2,
	             "hedge_after: bad value \"0ms\" (use off, p95 or a duration of 1ms..1h, "
	             "e.g. 50ms)");
	expect_error("[upstream \"http://a\"]\nhedge_after = 2h\n", 2,
	             "hedge_after: bad value \"2h\" (use off, p95 or a duration of 1ms..1h, "
	             "e.g. 50ms)");
	expect_error("[upstream \"http://a\"]\nhedge_after = p99\n", 2,
	             "hedge_after: bad value \"p99\" (use off, p95 or a duration of 1ms..1h, "
	             "e.g. 50ms)");
	expect_error("[upstream \"http://a\"]\ncollapse = maybe\n", 2,
	             "collapse: bad boolean \"maybe\" (use yes/no, true/false, on/off, 1/0)");
	expect_error("[fanoutd]\ncollapse = yes\n", 2, "unknown key \"collapse\" in [fanoutd]");
}
END_TEST

START_TEST(upstream_errors)
{
	expect_error("[fanoutd]\n[upstream \"http://a\"]\n[upstream \"HTTP://A:80/\"]\n", 3,
	             "duplicate section [upstream \"HTTP://A:80/\"] (first at line 2; both are http://a:80)");
	expect_error("[upstream \"https://[::1]\"]\n[upstream \"https://[0::1]:443\"]\n", 2,
	             "duplicate section [upstream \"https://[0::1]:443\"] (first at line 1; both are https://[::1]:443)");
	expect_error("[fanoutd]\nmax_queued = 1\n[fanoutd]\n", 3,
	             "duplicate section [fanoutd] (first at line 1)");
	expect_error("[upstream http://a]\n", 1,
	             "bad section header (put the URL in double quotes: [upstream \"https://api.example.com\"])");
	expect_error("[upstream \"http://a]\n", 1,
	             "bad section header (put the URL in double quotes: [upstream \"https://api.example.com\"])");
	expect_error("[upstream \"http://a\"\n", 1, "bad section header [upstream \"http://a\" (missing ])");
	expect_error("[upstream \"http://a\"] x\n", 1, "unexpected text after [upstream \"http://a\"]");
	expect_error("\n[upstream \"ftp://a\"]\n", 2,
	             "[upstream \"ftp://a\"]: unsupported scheme \"ftp\" in upstream URL \"ftp://a\" (use http or https)");
	expect_error("[upstream \"api.example.com\"]\n", 1,
	             "[upstream \"api.example.com\"]: bad upstream URL \"api.example.com\" "
	             "(use e.g. https://api.example.com or http://[::1]:8080)");
	expect_error("[upstream \"https://\"]\n", 1,
	             "[upstream \"https://\"]: upstream URL \"https://\" has no host");
	expect_error("[upstream \"https://:443\"]\n", 1,
	             "[upstream \"https://:443\"]: upstream URL \"https://:443\" has no host");
	expect_error("[upstream \"https://a/v1\"]\n", 1,
	             "[upstream \"https://a/v1\"]: upstream URL \"https://a/v1\" must not have a path, query or fragment");
	expect_error("[upstream \"https://a?x=1\"]\n", 1,
	             "[upstream \"https://a?x=1\"]: upstream URL \"https://a?x=1\" must not have a path, query or fragment");
	expect_error("[upstream \"https://u:p@a\"]\n", 1,
	             "[upstream \"https://u:p@a\"]: upstream URL \"https://u:p@a\" must not have user info");
	expect_error("[upstream \"http://a:0\"]\n", 1,
	             "[upstream \"http://a:0\"]: bad port in upstream URL \"http://a:0\" (1..65535)");
	expect_error("[upstream \"http://a:65536\"]\n", 1,
	             "[upstream \"http://a:65536\"]: bad port in upstream URL \"http://a:65536\" (1..65535)");
	expect_error("[upstream \"http://a:\"]\n", 1,
	             "[upstream \"http://a:\"]: bad port in upstream URL \"http://a:\" (1..65535)");
	expect_error("[upstream \"http://::1:80\"]\n", 1,
	             "[upstream \"http://::1:80\"]: upstream URL \"http://::1:80\" has no host");
	expect_error("[upstream \"http://fe80::1\"]\n", 1,
	             "[upstream \"http://fe80::1\"]: IPv6 address needs brackets in upstream URL \"http://fe80::1\"");
	expect_error("[upstream \"http://[fe80::zz]\"]\n", 1,
	             "[upstream \"http://[fe80::zz]\"]: bad IPv6 address in upstream URL \"http://[fe80::zz]\"");
	expect_error("[upstream \"http://a b\"]\n", 1,
	             "[upstream \"http://a b\"]: bad host in upstream URL \"http://a b\"");

	expect_error("[upstream \"http://a\"]\nconcurrency = 0\n", 2,
	             "concurrency: 0 is out of range (1..100000)");
	expect_error("[upstream \"http://a\"]\nrate = 20\n", 2,
	             "rate: bad rate \"20\" (use e.g. 20/s, 100/m, 0.5/s)");
	expect_error("[upstream \"http://a\"]\nrate = 0/s\n", 2,
	             "rate: 0/s is out of range (at least 0.000001/h, at most 1000000/s)");
	expect_error("[upstream \"http://a\"]\nrate = 1000001/s\n", 2,
	             "rate: 1000001/s is out of range (at least 0.000001/h, at most 1000000/s)");
	expect_error("[upstream \"http://a\"]\nburst = 1000001\n", 2,
	             "burst: 1000001 is out of range (1..1000000)");
	expect_error("[upstream \"http://a\"]\ntls_verify = sometimes\n", 2,
	             "tls_verify: bad boolean \"sometimes\" (use yes/no, true/false, on/off, 1/0)");
	expect_error("[upstream \"http://a\"]\nrequest_timeout = 0\n", 2,
	             "request_timeout: 0 is out of range (1ms..24h)");
	expect_error("[upstream \"http://a\"]\nconcurrency = 2\nburst = 5\n[upstream \"http://b\"]\n", 3,
	             "burst: needs rate in the same section");
}
END_TEST

/* ---- http2 and h2_max_streams ----------------------------------------- */

START_TEST(http2_values)
{
	static const struct { const char *in; int v; const char *dump; } t[] = {
		{ "auto", CONFIG_HTTP2_AUTO, "auto" },
		{ "no", CONFIG_HTTP2_NO, "no" },
		{ "prior-knowledge", CONFIG_HTTP2_PRIOR, "prior-knowledge" },
		{ "AUTO", CONFIG_HTTP2_AUTO, "auto" },
		{ "No", CONFIG_HTTP2_NO, "no" },
		{ "Prior-Knowledge", CONFIG_HTTP2_PRIOR, "prior-knowledge" },
	};

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct config cfg;
		char text[256], want[64], *dump;

		/* in [fanoutd] */
		snprintf(text, sizeof text, "[fanoutd]\nhttp2 = %s\n", t[i].in);
		load_ok(&cfg, text);
		ck_assert_int_eq(cfg.http2, t[i].v);
		dump = dump_str(&cfg);
		snprintf(want, sizeof want, "\nhttp2 = %s\n", t[i].dump);
		ck_assert_msg(strstr(dump, want) != NULL, "dump lacks \"%s\":\n%s", want + 1, dump);
		free(dump);
		assert_dump_reloads(&cfg);
		config_free(&cfg);

		/* in an upstream section, [fanoutd] left at its default */
		snprintf(text, sizeof text, "[upstream \"https://a\"]\nhttp2 = %s\n", t[i].in);
		load_ok(&cfg, text);
		ck_assert_int_eq(cfg.http2, CONFIG_HTTP2_AUTO);
		ck_assert_int_eq(cfg.upstreams[0].http2, t[i].v);
		ck_assert_int_eq(cfg.upstreams[0].h2_max_streams, -1);
		dump = dump_str(&cfg);
		snprintf(want, sizeof want, "[upstream \"https://a:443\"]\nhttp2 = %s\n", t[i].dump);
		ck_assert_msg(strstr(dump, want) != NULL, "dump lacks \"%s\":\n%s", want, dump);
		free(dump);
		assert_dump_reloads(&cfg);
		config_free(&cfg);
	}
}
END_TEST

START_TEST(h2_max_streams_values)
{
	struct config cfg;
	char *dump;

	load_ok(&cfg, "[fanoutd]\nh2_max_streams = 1\n");
	ck_assert_int_eq(cfg.h2_max_streams, 1);
	config_free(&cfg);
	load_ok(&cfg, "[fanoutd]\nh2_max_streams = 1000\n");
	ck_assert_int_eq(cfg.h2_max_streams, 1000);
	dump = dump_str(&cfg);
	ck_assert_ptr_nonnull(strstr(dump, "\nh2_max_streams = 1000\n"));
	free(dump);
	config_free(&cfg);

	load_ok(&cfg, "[upstream \"http://a\"]\nh2_max_streams = 1\n"
	              "[upstream \"http://b\"]\nh2_max_streams = 1000\n");
	ck_assert_int_eq(cfg.h2_max_streams, 100);
	ck_assert_int_eq(cfg.upstreams[0].h2_max_streams, 1);
	ck_assert_int_eq(cfg.upstreams[0].http2, -1);
	ck_assert_int_eq(cfg.upstreams[1].h2_max_streams, 1000);
	dump = dump_str(&cfg);
	ck_assert_ptr_nonnull(strstr(dump, "[upstream \"http://a:80\"]\nh2_max_streams = 1\n"));
	free(dump);
	assert_dump_reloads(&cfg);
	config_free(&cfg);
}
END_TEST

/* [fanoutd] sets the default for every upstream; a section overrides it
 * (and only its own upstream); a section that leaves a key out inherits. */
START_TEST(http2_override)
{
	struct config cfg;
	const struct config_upstream *u;
	char *dump;

	load_ok(&cfg,
	        "[fanoutd]\n"
	        "http2 = no\n"
	        "h2_max_streams = 50\n"
	        "max_connections = 4\n"
	        "[upstream \"http://h2c.test:8080\"]\n"
	        "http2 = prior-knowledge\n"
	        "h2_max_streams = 8\n"
	        "max_connections = 1\n"
	        "[upstream \"https://auto.test\"]\n"
	        "http2 = auto\n"
	        "[upstream \"https://plain.test\"]\n"
	        "concurrency = 2\n");
	ck_assert_int_eq(cfg.http2, CONFIG_HTTP2_NO);
	ck_assert_int_eq(cfg.h2_max_streams, 50);
	ck_assert_int_eq(cfg.max_connections, 4);

	u = config_find_upstream(&cfg, "http://h2c.test:8080");
	ck_assert_ptr_nonnull(u);
	ck_assert_int_eq(u->http2, CONFIG_HTTP2_PRIOR);
	ck_assert_int_eq(u->h2_max_streams, 8);
	ck_assert_int_eq(u->max_connections, 1);

	u = config_find_upstream(&cfg, "https://auto.test");
	ck_assert_ptr_nonnull(u);
	ck_assert_int_eq(u->http2, CONFIG_HTTP2_AUTO);   /* set, not inherited */
	ck_assert_int_eq(u->h2_max_streams, -1);
	ck_assert_int_eq(u->max_connections, -1);

	u = config_find_upstream(&cfg, "https://plain.test");
	ck_assert_ptr_nonnull(u);
	ck_assert_int_eq(u->http2, -1);
	ck_assert_int_eq(u->h2_max_streams, -1);

	/* the dump keeps the difference between "auto" and unset */
	dump = dump_str(&cfg);
	ck_assert_ptr_nonnull(strstr(dump, "\nmax_connections = 4\nhttp2 = no\nh2_max_streams = 50\n"));
	ck_assert_ptr_nonnull(strstr(dump, "[upstream \"http://h2c.test:8080\"]\nmax_connections = 1\n"
	                                   "http2 = prior-knowledge\nh2_max_streams = 8\n\n"));
	ck_assert_ptr_nonnull(strstr(dump, "[upstream \"https://auto.test:443\"]\nhttp2 = auto\n\n"));
	ck_assert_ptr_nonnull(strstr(dump, "[upstream \"https://plain.test:443\"]\nconcurrency = 2\n"));
	free(dump);
	assert_dump_reloads(&cfg);
	config_free(&cfg);
}
END_TEST

START_TEST(http2_errors)
{
	static const char *const bad[] = {
		"maybe", "", "yes", "off", "h2", "h2c", "http/1.1", "1", "prior", "prior knowledge",
		"prior_knowledge", "auto,no",
	};
	char text[256], msg[256];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(msg, sizeof msg,
		         "http2: bad value \"%s\" (use auto, no or prior-knowledge)", bad[i]);
		snprintf(text, sizeof text, "[fanoutd]\nmax_queued = 5\nhttp2 = %s\n", bad[i]);
		expect_error(text, 3, msg);
		snprintf(text, sizeof text, "[fanoutd]\n[upstream \"https://a\"]\nhttp2 = %s\n", bad[i]);
		expect_error(text, 3, msg);
	}
	/* an inline comment is not part of the value */
	{
		struct config cfg;
		load_ok(&cfg, "[fanoutd]\nhttp2 = no ; HTTP/1.1 only\n");
		ck_assert_int_eq(cfg.http2, CONFIG_HTTP2_NO);
		config_free(&cfg);
	}
}
END_TEST

/* ---- retries, Retry-After, the breaker (SPEC section 10) -------------- */

/* Each key in [fanoutd] and in an upstream section: the value is taken,
 * dumped in its normal form, and an upstream's leaves [fanoutd] alone. */
START_TEST(retry_keys_each_section)
{
	static const struct { const char *line, *dump; } t[] = {
		{ "retries = 2", "retries = 2" },
		{ "retries = 0", "retries = 0" },
		{ "retry_on = 503", "retry_on = 503" },
		{ "retry_on = 504 503,connect\ttimeout", "retry_on = connect, timeout, 503, 504" },
		{ "retry_on = 429, 429,", "retry_on = 429" },
		{ "retry_on = timeout", "retry_on = timeout" },
		{ "retry_backoff = 0.25s", "retry_backoff = 250ms" },
		{ "retry_backoff = 0", "retry_backoff = 0s" },
		{ "retry_max_backoff = 1m", "retry_max_backoff = 60s" },
		{ "retry_budget = 50%", "retry_budget = 50%" },
		{ "retry_budget = 7.50%", "retry_budget = 7.5%" },
		{ "retry_budget = 0%", "retry_budget = 0%" },
		{ "max_retries = 10", "max_retries = 10" },
		{ "max_retry_after = 2m", "max_retry_after = 120s" },
		{ "honor_retry_after = off", "honor_retry_after = no" },
		{ "honor_retry_after = 1", "honor_retry_after = yes" },
		{ "breaker_failures = 5", "breaker_failures = 5" },
		{ "breaker_failures = 0", "breaker_failures = 0" },
		{ "breaker_cooldown = 1h", "breaker_cooldown = 3600s" },
	};
	struct config def;

	config_defaults(&def);
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct config cfg;
		char text[256], want[256], *dump;

		snprintf(text, sizeof text, "[fanoutd]\n%s\n", t[i].line);
		load_ok(&cfg, text);
		dump = dump_str(&cfg);
		snprintf(want, sizeof want, "\n%s\n", t[i].dump);
		ck_assert_msg(strstr(dump, want) != NULL, "dump lacks \"%s\":\n%s", t[i].dump, dump);
		free(dump);
		assert_dump_reloads(&cfg);
		config_free(&cfg);

		snprintf(text, sizeof text, "[upstream \"http://a\"]\n%s\n", t[i].line);
		load_ok(&cfg, text);
		ck_assert_uint_eq(cfg.nupstreams, 1);
		cfg.nupstreams = 0;
		assert_config_eq(&cfg, &def);
		cfg.nupstreams = 1;
		dump = dump_str(&cfg);
		snprintf(want, sizeof want, "[upstream \"http://a:80\"]\n%s\n", t[i].dump);
		ck_assert_msg(strlen(dump) >= strlen(want) &&
		              strcmp(dump + strlen(dump) - strlen(want), want) == 0,
		              "dump does not end in \"%s\":\n%s", want, dump);
		free(dump);
		assert_dump_reloads(&cfg);
		config_free(&cfg);
	}
	config_free(&def);
}
END_TEST

/* [fanoutd] sets every upstream's default; a section overrides what it
 * sets (0 too: no retries, no breaker for it) and inherits the rest. */
START_TEST(retry_override)
{
	struct config cfg;
	const struct config_upstream *u;
	struct config_retry_on want;
	char *dump;

	load_ok(&cfg,
	        "[fanoutd]\n"
	        "retries = 2\n"
	        "retry_on = connect, 503\n"
	        "retry_budget = 30%\n"
	        "breaker_failures = 5\n"
	        "[upstream \"http://fragile.test\"]\n"
	        "retries = 0\n"
	        "breaker_failures = 0\n"
	        "honor_retry_after = no\n"
	        "[upstream \"https://api.test\"]\n"
	        "retries = 4\n"
	        "retry_on = timeout 429\n"
	        "retry_backoff = 1s\n"
	        "retry_max_backoff = 8s\n"
	        "retry_budget = 100%\n"
	        "max_retries = 9\n"
	        "max_retry_after = 5s\n"
	        "honor_retry_after = yes\n"
	        "breaker_failures = 3\n"
	        "breaker_cooldown = 1m\n"
	        "[upstream \"http://plain.test\"]\n"
	        "concurrency = 2\n");
	ck_assert_int_eq(cfg.retries, 2);
	want = retry_on_of(true, false, 503, 0);
	assert_retry_on_eq(&cfg.retry_on, &want);
	ck_assert(cfg.retry_budget == 0.3);
	ck_assert_int_eq(cfg.breaker_failures, 5);

	u = config_find_upstream(&cfg, "http://fragile.test");
	ck_assert_ptr_nonnull(u);
	ck_assert_int_eq(u->retries, 0);                 /* set, not inherited */
	ck_assert_int_eq(u->breaker_failures, 0);
	ck_assert_int_eq(u->honor_retry_after, 0);
	ck_assert(!u->retry_on.set);
	ck_assert(u->retry_budget == -1);

	u = config_find_upstream(&cfg, "https://api.test");
	ck_assert_ptr_nonnull(u);
	ck_assert_int_eq(u->retries, 4);
	want = retry_on_of(false, true, 429, 0);
	assert_retry_on_eq(&u->retry_on, &want);
	ck_assert_int_eq(u->retry_backoff_ms, 1000);
	ck_assert_int_eq(u->retry_max_backoff_ms, 8000);
	ck_assert(u->retry_budget == 1.0);
	ck_assert_int_eq(u->max_retries, 9);
	ck_assert_int_eq(u->max_retry_after_ms, 5000);
	ck_assert_int_eq(u->honor_retry_after, 1);
	ck_assert_int_eq(u->breaker_failures, 3);
	ck_assert_int_eq(u->breaker_cooldown_ms, 60000);

	u = config_find_upstream(&cfg, "http://plain.test");
	ck_assert_ptr_nonnull(u);
	ck_assert_int_eq(u->retries, -1);
	ck_assert(!u->retry_on.set);
	ck_assert_int_eq(u->breaker_failures, -1);
	ck_assert_int_eq(u->honor_retry_after, -1);

	/* the dump keeps "0" apart from unset, in table order */
	dump = dump_str(&cfg);
	ck_assert_ptr_nonnull(strstr(dump, "\nkeepalive_timeout = 30s\nretries = 2\n"
	                                   "retry_on = connect, 503\nretry_backoff = 100ms\n"
	                                   "retry_max_backoff = 5s\nretry_budget = 30%\n"
	                                   "max_retries = 5\nmax_retry_after = 30s\n"
	                                   "honor_retry_after = yes\nbreaker_failures = 5\n"
	                                   "breaker_cooldown = 10s\ntls_verify = yes\n"));
	ck_assert_ptr_nonnull(strstr(dump, "[upstream \"http://fragile.test:80\"]\nretries = 0\n"
	                                   "honor_retry_after = no\nbreaker_failures = 0\n\n"));
	ck_assert_ptr_nonnull(strstr(dump, "[upstream \"https://api.test:443\"]\nretries = 4\n"
	                                   "retry_on = timeout, 429\nretry_backoff = 1s\n"
	                                   "retry_max_backoff = 8s\nretry_budget = 100%\n"
	                                   "max_retries = 9\nmax_retry_after = 5s\n"
	                                   "honor_retry_after = yes\nbreaker_failures = 3\n"
	                                   "breaker_cooldown = 60s\n\n"));
	ck_assert_ptr_nonnull(strstr(dump, "[upstream \"http://plain.test:80\"]\nconcurrency = 2\n"));
	free(dump);
	assert_dump_reloads(&cfg);
	config_free(&cfg);
}
END_TEST

/* Every key refuses bad values with file:line in both sections. */
START_TEST(retry_errors)
{
	static const struct { const char *line, *msg; } t[] = {
		{ "retries = -1", "retries: bad number \"-1\"" },
		{ "retries = 1.5", "retries: bad number \"1.5\"" },
		{ "retries = 101", "retries: 101 is out of range (0..100)" },
		{ "retries =", "retries: bad number \"\"" },
		{ "retry_on = 5xx", "retry_on: \"5xx\" is not connect, timeout or a status 400..599" },
		{ "retry_on = 503, Connect", "retry_on: \"Connect\" is not connect, timeout or a status 400..599" },
		{ "retry_on = 600", "retry_on: \"600\" is not connect, timeout or a status 400..599" },
		{ "retry_on = 399", "retry_on: \"399\" is not connect, timeout or a status 400..599" },
		{ "retry_on = 0503", "retry_on: \"0503\" is not connect, timeout or a status 400..599" },
		{ "retry_on = 503;504", "retry_on: \"503;504\" is not connect, timeout or a status 400..599" },
		{ "retry_on =", "retry_on: names nothing to retry on" },
		{ "retry_on = , ,", "retry_on: names nothing to retry on" },
		{ "retry_backoff = -1s", "retry_backoff: bad duration \"-1s\" (use e.g. 250ms, 5s, 2m)" },
		{ "retry_backoff = 25h", "retry_backoff: 25h is out of range (0..24h)" },
		{ "retry_max_backoff = 1.5ms",
		  "retry_max_backoff: bad duration \"1.5ms\" (use e.g. 250ms, 5s, 2m)" },
		{ "retry_budget = 20", "retry_budget: bad percentage \"20\" (use e.g. 20%, 12.5%)" },
		{ "retry_budget = -5%", "retry_budget: bad percentage \"-5%\" (use e.g. 20%, 12.5%)" },
		{ "retry_budget = 20 %", "retry_budget: bad percentage \"20 %\" (use e.g. 20%, 12.5%)" },
		{ "retry_budget = 101%", "retry_budget: 101% is out of range (0%..100%)" },
		{ "max_retries = 1000", "max_retries: 1000 is out of range (0..100)" },
		{ "max_retry_after = forever",
		  "max_retry_after: bad duration \"forever\" (use e.g. 250ms, 5s, 2m)" },
		{ "max_retry_after = 48h", "max_retry_after: 48h is out of range (0..24h)" },
		{ "honor_retry_after = maybe",
		  "honor_retry_after: bad boolean \"maybe\" (use yes/no, true/false, on/off, 1/0)" },
		{ "breaker_failures = -1", "breaker_failures: bad number \"-1\"" },
		{ "breaker_failures = 1000001", "breaker_failures: 1000001 is out of range (0..1000000)" },
		{ "breaker_cooldown = 0ms", "breaker_cooldown: 0ms is out of range (1ms..24h)" },
		{ "breaker_cooldown = 10", "" },   /* a bare number is seconds: fine */
	};
	char text[256];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (t[i].msg[0] == '\0') {
			struct config cfg;
			snprintf(text, sizeof text, "[upstream \"http://a\"]\n%s\n", t[i].line);
			load_ok(&cfg, text);
			config_free(&cfg);
			continue;
		}
		snprintf(text, sizeof text, "[fanoutd]\nretries = 1\n%s\n", t[i].line);
		if (strncmp(t[i].line, "retries ", 8) == 0)
			snprintf(text, sizeof text, "[fanoutd]\nmax_retries = 1\n%s\n", t[i].line);
		expect_error(text, 3, t[i].msg);
		snprintf(text, sizeof text, "[fanoutd]\n[upstream \"http://a\"]\n%s\n", t[i].line);
		expect_error(text, 3, t[i].msg);
	}
}
END_TEST

/* retry_on's dump must fit on one line: a list that would not is refused. */
START_TEST(retry_on_too_long)
{
	struct config cfg;
	char text[512], msg[256];
	size_t n, room = 198 - 3 - strlen("retry_on");
	int st;

	/* "retry_on = " and statuses with one comma between: the dump writes
	 * ", " between them, so the longest list that loads has (room + 2) / 5 */
	n = (size_t)snprintf(text, sizeof text, "[fanoutd]\nretry_on = 400");
	for (st = 401; (size_t)(st - 400 + 1) * 5 - 2 <= room; st++)
		n += (size_t)snprintf(text + n, sizeof text - n, ",%d", st);
	snprintf(text + n, sizeof text - n, "\n");
	load_ok(&cfg, text);
	ck_assert(retry_on_status(&cfg.retry_on.on, st - 1));
	assert_dump_reloads(&cfg);
	config_free(&cfg);

	snprintf(text + n, sizeof text - n, ",%d\n", st);
	snprintf(msg, sizeof msg, "retry_on: list too long (at most %zu characters written as "
	         "\"connect, timeout, 429\")", room);
	expect_error(text, 2, msg);
}
END_TEST

/* What an upstream runs with (upstream.c's configure()): its section's
 * value, else [fanoutd]'s; a reload applies the new file. */
START_TEST(retry_settings_reach_the_upstream)
{
	struct event_base *base = event_base_new();
	struct upstream_registry *reg;
	struct upstream *a, *b;
	struct config cfg, cfg2;
	struct config_retry_on want;

	ck_assert_ptr_nonnull(base);
	load_ok(&cfg,
	        "[fanoutd]\n"
	        "retries = 2\n"
	        "retry_on = connect, 503\n"
	        "retry_backoff = 50ms\n"
	        "retry_max_backoff = 2s\n"
	        "retry_budget = 25%\n"
	        "max_retries = 4\n"
	        "max_retry_after = 20s\n"
	        "breaker_failures = 6\n"
	        "breaker_cooldown = 3s\n"
	        "[upstream \"http://a.test\"]\n"
	        "retries = 0\n"
	        "retry_on = 429\n"
	        "retry_backoff = 0\n"
	        "retry_max_backoff = 1s\n"
	        "retry_budget = 50%\n"
	        "max_retries = 1\n"
	        "max_retry_after = 1s\n"
	        "honor_retry_after = no\n"
	        "breaker_failures = 0\n"
	        "breaker_cooldown = 1m\n");
	reg = upstream_registry_new(base, &cfg);
	a = upstream_get(reg, "http://a.test:80", "a.test", 80, false);
	b = upstream_get(reg, "http://b.test:80", "b.test", 80, false);

	ck_assert_int_eq(a->retry.attempts, 1);
	ck_assert_int_eq(a->retry.backoff_ms, 0);
	ck_assert_int_eq(a->retry.max_backoff_ms, 1000);
	ck_assert(a->retry.on_set);
	want = retry_on_of(false, false, 429, 0);
	ck_assert(memcmp(&a->retry.on, &want.on, sizeof want.on) == 0);
	ck_assert_int_eq(a->max_retries, 1);
	ck_assert(a->retry_budget == 0.5);
	ck_assert_int_eq(a->max_retry_after_ms, 1000);
	ck_assert(!a->honor_retry_after);
	ck_assert_int_eq(a->breaker_failures, 0);
	ck_assert_int_eq(a->breaker_cooldown_ms, 60000);

	/* b has no section: [fanoutd]'s */
	ck_assert_int_eq(b->retry.attempts, 3);
	ck_assert_int_eq(b->retry.backoff_ms, 50);
	ck_assert_int_eq(b->retry.max_backoff_ms, 2000);
	ck_assert(b->retry.on_set);
	want = retry_on_of(true, false, 503, 0);
	ck_assert(memcmp(&b->retry.on, &want.on, sizeof want.on) == 0);
	ck_assert_int_eq(b->max_retries, 4);
	ck_assert(b->retry_budget == 0.25);
	ck_assert_int_eq(b->max_retry_after_ms, 20000);
	ck_assert(b->honor_retry_after);
	ck_assert_int_eq(b->breaker_failures, 6);
	ck_assert_int_eq(b->breaker_cooldown_ms, 3000);

	/* a reload to the defaults */
	config_defaults(&cfg2);
	upstream_registry_configure(reg, &cfg2);
	ck_assert_int_eq(a->retry.attempts, 1);
	ck_assert_int_eq(a->retry.backoff_ms, 100);
	ck_assert_int_eq(a->retry.max_backoff_ms, 5000);
	want = retry_on_of(true, true, 429, 502, 503, 504, 0);
	ck_assert(memcmp(&a->retry.on, &want.on, sizeof want.on) == 0);
	ck_assert_int_eq(a->max_retries, 5);
	ck_assert(a->retry_budget == 0.2);
	ck_assert_int_eq(a->max_retry_after_ms, 30000);
	ck_assert(a->honor_retry_after);
	ck_assert_int_eq(a->breaker_failures, 0);
	ck_assert_int_eq(a->breaker_cooldown_ms, 10000);
	ck_assert_int_eq(b->retry.attempts, 1);
	ck_assert_int_eq(b->breaker_failures, 0);
	ck_assert(memcmp(&b->retry.on, &want.on, sizeof want.on) == 0);

	upstream_put(a);
	upstream_put(b);
	upstream_registry_free(reg);
	event_base_free(base);
	config_free(&cfg2);
	config_free(&cfg);
}
END_TEST

/* ---- [redis] and shared = yes (SPEC section 13) ----------------------- */

START_TEST(redis_keys)
{
	struct config cfg;
	char *text;

	load_ok(&cfg,
	        "[fanoutd]\nupstream_concurrency = 4\n\n"
	        "[redis]\n"
	        "url = redis://10.0.0.5:6380/2\n"
	        "key_prefix = fleet-a:{limits}:\n"
	        "timeout = 250ms\n"
	        "lease = 1.5s\n"
	        "\n"
	        "[upstream \"https://api.example.com\"]\n"
	        "concurrency = 5\n"
	        "shared = yes\n"
	        "[upstream \"http://b\"]\n"
	        "shared = no\n"
	        "[upstream \"http://c\"]\n");
	ck_assert_str_eq(cfg.redis.url, "redis://10.0.0.5:6380/2");
	ck_assert_str_eq(cfg.redis.key_prefix, "fleet-a:{limits}:");
	ck_assert_int_eq(cfg.redis.timeout_ms, 250);
	ck_assert_int_eq(cfg.redis.lease_ms, 1500);
	ck_assert_uint_eq(cfg.nupstreams, 3);
	ck_assert_int_eq(cfg.upstreams[0].shared, 1);
	ck_assert(config_upstream_shared(&cfg.upstreams[0]));
	ck_assert_int_eq(cfg.upstreams[1].shared, 0);
	ck_assert(!config_upstream_shared(&cfg.upstreams[1]));
	ck_assert_int_eq(cfg.upstreams[2].shared, -1);
	ck_assert(!config_upstream_shared(&cfg.upstreams[2]));
	ck_assert(!config_upstream_shared(NULL));
	text = dump_str(&cfg);
	ck_assert_ptr_nonnull(strstr(text, "\nsocket_mode = 0660\n\n[redis]\n"
	                                   "url = redis://10.0.0.5:6380/2\n"
	                                   "key_prefix = fleet-a:{limits}:\n"
	                                   "timeout = 250ms\nlease = 1500ms\n\n"
	                                   "[upstream \"https://api.example.com:443\"]\n"
	                                   "concurrency = 5\nshared = yes\n\n"
	                                   "[upstream \"http://b:80\"]\nshared = no\n\n"
	                                   "[upstream \"http://c:80\"]\n"));
	free(text);
	assert_dump_reloads(&cfg);
	config_free(&cfg);

	/* [redis] after the upstreams that use it; a unix socket; the ends of
	 * the ranges; "url =" is none */
	load_ok(&cfg,
	        "[upstream \"http://a\"]\nshared = on\n"
	        "[redis]\nurl = unix:/run/redis/redis.sock\n"
	        "key_prefix = x\ntimeout = 10s\nlease = 100ms\n");
	ck_assert_str_eq(cfg.redis.url, "unix:/run/redis/redis.sock");
	ck_assert_str_eq(cfg.redis.key_prefix, "x");
	ck_assert_int_eq(cfg.redis.timeout_ms, 10000);
	ck_assert_int_eq(cfg.redis.lease_ms, 100);
	ck_assert_int_eq(cfg.upstreams[0].shared, 1);
	assert_dump_reloads(&cfg);
	config_free(&cfg);
	load_ok(&cfg, "[redis]\ntimeout = 1ms\nlease = 1h\nurl =\n"
	              "key_prefix = 0123456789012345678901234567890123456789012345678901234567890123\n");
	ck_assert_ptr_null(cfg.redis.url);
	ck_assert_int_eq(cfg.redis.timeout_ms, 1);
	ck_assert_int_eq(cfg.redis.lease_ms, 3600000);
	ck_assert_uint_eq(strlen(cfg.redis.key_prefix), 64);
	/* no url but other keys changed: the dump keeps them */
	text = dump_str(&cfg);
	ck_assert_ptr_nonnull(strstr(text, "\n[redis]\nurl =\nkey_prefix = 0123"));
	free(text);
	assert_dump_reloads(&cfg);
	config_free(&cfg);

	/* the defaults, or an empty [redis]: no [redis] in the dump */
	load_ok(&cfg, "[redis]\n");
	ck_assert_ptr_null(cfg.redis.url);
	ck_assert_str_eq(cfg.redis.key_prefix, "fanoutd:");
	text = dump_str(&cfg);
	ck_assert_ptr_null(strstr(text, "[redis]"));
	ck_assert_ptr_null(strstr(text, "shared"));
	free(text);
	config_free(&cfg);
}
END_TEST

START_TEST(redis_errors)
{
	char text[512];

	expect_error("[redis]\nurl = redis://a\n\n[redis]\n", 4,
	             "duplicate section [redis] (first at line 1)");
	expect_error("[redis]\n[fanoutd]\n[redis ]\n", 3,
	             "duplicate section [redis] (first at line 1)");
	expect_error("[redis\n", 1, "bad section header (use [redis])");
	expect_error("[redis] x\n", 1, "unexpected text after [redis]");
	expect_error("[rediss]\n", 1,
	             "unknown section [rediss] (use [fanoutd], [redis] or [upstream \"URL\"])");
	expect_error("[redis]\nurl = redis://a\nurl = redis://b\n", 3,
	             "url: set twice (first at line 2)");
	expect_error("[redis]\nconcurrency = 5\n", 2, "unknown key \"concurrency\" in [redis]");
	expect_error("[redis]\nshared = yes\n", 2, "unknown key \"shared\" in [redis]");
	expect_error("[fanoutd]\nkey_prefix = x\n", 2, "unknown key \"key_prefix\" in [fanoutd]");
	expect_error("[fanoutd]\nshared = yes\n", 2, "unknown key \"shared\" in [fanoutd]");
	expect_error("[upstream \"http://a\"]\nlease = 1s\n", 2,
	             "unknown key \"lease\" in [upstream \"http://a\"]");

	/* url */
	expect_error("[redis]\n\nurl = 127.0.0.1:6379\n", 3,
	             "url: bad Redis URL (use redis://host[:port][/db] or unix:/path)");
	expect_error("[redis]\nurl = redis://h:70000/0\n", 2,
	             "url: bad port \"70000\" in redis:// URL (1..65535)");
	expect_error("[redis]\nurl = unix:redis.sock\n", 2,
	             "url: unix socket path must be absolute (unix:/path)");
	expect_error("[redis]\nurl = redis://h/db1\n", 2,
	             "url: bad database \"db1\" in redis:// URL (a number, 0..1000000)");
	/* "url=" leaves room for a value the dump's "url = " would not */
	snprintf(text, sizeof text, "[redis]\nurl=redis://%0185d\n", 0);
	expect_error(text, 2, "url: too long (at most 192 characters)");

	/* key_prefix */
	expect_error("[redis]\nkey_prefix =\n", 2,
	             "key_prefix: length 0 is out of range (1..64 characters)");
	expect_error("[redis]\nkey_prefix = 01234567890123456789012345678901234567890123456789012345678901234\n",
	             2, "key_prefix: length 65 is out of range (1..64 characters)");
	expect_error("[redis]\nkey_prefix = fan outd:\n", 2,
	             "key_prefix: bad value \"fan outd:\" (printable ASCII, no spaces or ';')");
	expect_error("[redis]\nkey_prefix =;x\n", 2,
	             "key_prefix: bad value \";x\" (printable ASCII, no spaces or ';')");
	expect_error("[redis]\nkey_prefix = caf\xc3\xa9\n", 2,
	             "key_prefix: bad value \"caf\xc3\xa9\" (printable ASCII, no spaces or ';')");
	expect_error("[redis]\nkey_prefix = a\x01\n", 2, "key_prefix: control character in value");

	/* timeout, lease */
	expect_error("[redis]\ntimeout = 0\n", 2, "timeout: 0 is out of range (1ms..10s)");
	expect_error("[redis]\ntimeout = 10001ms\n", 2, "timeout: 10001ms is out of range (1ms..10s)");
	expect_error("[redis]\ntimeout = fast\n", 2,
	             "timeout: bad duration \"fast\" (use e.g. 250ms, 5s, 2m)");
	expect_error("[redis]\nlease = 99ms\n", 2, "lease: 99ms is out of range (100ms..1h)");
	expect_error("[redis]\nlease = 61m\n", 2, "lease: 61m is out of range (100ms..1h)");

	/* shared */
	expect_error("[upstream \"http://a\"]\nshared = maybe\n", 2,
	             "shared: bad boolean \"maybe\" (use yes/no, true/false, on/off, 1/0)");
	expect_error("[upstream \"http://a\"]\nshared = no\nshared = no\n", 3,
	             "shared: set twice (first at line 2)");
	expect_error("[fanoutd]\n[upstream \"http://a\"]\nshared = no\n"
	             "[upstream \"http://b\"]\nconcurrency = 2\nshared = yes\n", 6,
	             "shared = yes needs [redis] url");
	expect_error("[redis]\nkey_prefix = f:\n[upstream \"http://a\"]\nshared = yes\n", 4,
	             "shared = yes needs [redis] url");
	expect_error("[redis]\nurl =\n[upstream \"http://a\"]\nshared = 1\n", 4,
	             "shared = yes needs [redis] url");
}
END_TEST

/* ---- listeners -------------------------------------------------------- */

START_TEST(listen_rules)
{
	struct config cfg;
	char text[2048];
	size_t n;

	/* the first listen in the file replaces the default ... */
	load_ok(&cfg, "[fanoutd]\nlisten = [::]:80\n");
	ck_assert_uint_eq(cfg.nlisten, 1);
	ck_assert_str_eq(cfg.listen[0], "[::]:80");
	config_free(&cfg);

	/* ... later ones append, wherever they are */
	load_ok(&cfg, "[fanoutd]\nlisten = *:8642\nmax_queued = 5\nlisten = localhost:0\n"
	              "listen = unix:/tmp/f.sock\nlisten = 10.1.2.3:65535\n");
	ck_assert_uint_eq(cfg.nlisten, 4);
	ck_assert_str_eq(cfg.listen[0], "*:8642");
	ck_assert_str_eq(cfg.listen[1], "localhost:0");
	ck_assert_str_eq(cfg.listen[2], "unix:/tmp/f.sock");
	ck_assert_str_eq(cfg.listen[3], "10.1.2.3:65535");
	config_free(&cfg);

	/* the same rule for the list keys */
	load_ok(&cfg, "[fanoutd]\nallow_hosts = a.test\nallow_hosts = b.test, c.test\n"
	              "deny_networks = 10.0.0.0/8\ndeny_networks =\ndeny_networks = ::1/128\n");
	assert_strv_eq(cfg.allow_hosts, (char *[]){ "a.test", "b.test", "c.test", NULL });
	assert_strv_eq(cfg.deny_networks, (char *[]){ "10.0.0.0/8", "::1/128", NULL });
	config_free(&cfg);

	/* at most CONFIG_MAX_LISTEN */
	n = (size_t)snprintf(text, sizeof text, "[fanoutd]\n");
	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "listen = 127.0.0.1:%d\n", 9000 + i);
	load_ok(&cfg, text);
	ck_assert_uint_eq(cfg.nlisten, CONFIG_MAX_LISTEN);
	config_free(&cfg);
	snprintf(text + n, sizeof text - n, "listen = 127.0.0.1:1\n");
	expect_error(text, CONFIG_MAX_LISTEN + 2, "listen: more than 16 listeners");
}
END_TEST

START_TEST(listen_errors)
{
	static const struct { const char *value, *msg; } t[] = {
		{ "", "listen: missing port in \"\" (use HOST:PORT, [IPv6]:PORT or unix:/absolute/path)" },
		{ "8642", "listen: missing port in \"8642\" (use HOST:PORT, [IPv6]:PORT or unix:/absolute/path)" },
		{ "127.0.0.1", "listen: missing port in \"127.0.0.1\" (use HOST:PORT, [IPv6]:PORT or unix:/absolute/path)" },
		{ "127.0.0.1:", "listen: bad port in \"127.0.0.1:\" (0..65535)" },
		{ "127.0.0.1:65536", "listen: bad port in \"127.0.0.1:65536\" (0..65535)" },
		{ "127.0.0.1:-1", "listen: bad port in \"127.0.0.1:-1\" (0..65535)" },
		{ "127.0.0.1:http", "listen: bad port in \"127.0.0.1:http\" (0..65535)" },
		{ "127.0.0.1:000080", "listen: bad port in \"127.0.0.1:000080\" (0..65535)" },
		{ ":8642", "listen: bad host in \":8642\" (use an IPv4 or [IPv6] address, localhost or *)" },
		{ "example.com:80", "listen: bad host in \"example.com:80\" (use an IPv4 or [IPv6] address, localhost or *)" },
		{ "256.0.0.1:80", "listen: bad host in \"256.0.0.1:80\" (use an IPv4 or [IPv6] address, localhost or *)" },
		{ "::1:8642", "listen: IPv6 address needs brackets in \"::1:8642\" (e.g. [::1]:8642)" },
		{ "[::1]", "listen: bad address \"[::1]\" (use HOST:PORT, [IPv6]:PORT or unix:/absolute/path)" },
		{ "[::1]8642", "listen: bad address \"[::1]8642\" (use HOST:PORT, [IPv6]:PORT or unix:/absolute/path)" },
		{ "[127.0.0.1]:80", "listen: bad IPv6 address in \"[127.0.0.1]:80\"" },
		{ "[::g]:80", "listen: bad IPv6 address in \"[::g]:80\"" },
		{ "unix:run/f.sock", "listen: unix socket path must be absolute in \"unix:run/f.sock\"" },
		{ "unix:", "listen: unix socket path must be absolute in \"unix:\"" },
	};
	char text[512], longpath[160];

	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		snprintf(text, sizeof text, "[fanoutd]\nlisten = %s\n", t[i].value);
		expect_error(text, 2, t[i].msg);
	}
	memset(longpath, 'x', sizeof longpath - 1);
	longpath[sizeof longpath - 1] = '\0';
	snprintf(text, sizeof text, "[fanoutd]\nlisten = unix:/%s\n", longpath);
	{
		char msg[512];
		snprintf(msg, sizeof msg,
		         "listen: unix socket path too long in \"unix:/%s\" (at most 107 bytes)", longpath);
		expect_error(text, 2, msg);
	}
}
END_TEST

START_TEST(set_listeners)
{
	struct config cfg;
	char err[256];
	char *good[] = { "[::1]:8642", "unix:/run/fanoutd/fanoutd.sock" };
	char *bad[] = { "127.0.0.1:1", "nope" };
	char *many[CONFIG_MAX_LISTEN + 1];

	config_defaults(&cfg);
	ck_assert_int_eq(config_set_listeners(&cfg, good, 2, err, sizeof err), 0);
	ck_assert_uint_eq(cfg.nlisten, 2);
	ck_assert_str_eq(cfg.listen[0], "[::1]:8642");
	ck_assert_str_eq(cfg.listen[1], "unix:/run/fanoutd/fanoutd.sock");
	ck_assert_ptr_ne(cfg.listen[0], good[0]);      /* copied */

	/* a bad list changes nothing */
	ck_assert_int_eq(config_set_listeners(&cfg, bad, 2, err, sizeof err), -1);
	ck_assert_str_eq(err, "listen: missing port in \"nope\" (use HOST:PORT, [IPv6]:PORT or unix:/absolute/path)");
	ck_assert_uint_eq(cfg.nlisten, 2);
	ck_assert_str_eq(cfg.listen[0], "[::1]:8642");

	ck_assert_int_eq(config_set_listeners(&cfg, good, 0, err, sizeof err), -1);
	ck_assert_str_eq(err, "listen: no address given");
	for (int i = 0; i <= CONFIG_MAX_LISTEN; i++)
		many[i] = "127.0.0.1:0";
	ck_assert_int_eq(config_set_listeners(&cfg, many, CONFIG_MAX_LISTEN + 1, err, sizeof err), -1);
	ck_assert_str_eq(err, "listen: more than 16 listeners");
	ck_assert_int_eq(config_set_listeners(&cfg, many, CONFIG_MAX_LISTEN, err, sizeof err), 0);
	ck_assert_uint_eq(cfg.nlisten, CONFIG_MAX_LISTEN);

	/* after a file: -l replaces what the file said */
	ck_assert_int_eq(config_set_listeners(&cfg, good + 1, 1, err, sizeof err), 0);
	ck_assert_uint_eq(cfg.nlisten, 1);
	ck_assert_str_eq(cfg.listen[0], "unix:/run/fanoutd/fanoutd.sock");
	assert_dump_reloads(&cfg);
	config_free(&cfg);
}
END_TEST

/* ---- dump ------------------------------------------------------------- */

START_TEST(dump_defaults)
{
	struct config cfg;
	char *text;

	config_defaults(&cfg);
	text = dump_str(&cfg);
	ck_assert_ptr_nonnull(strstr(text, "\n[fanoutd]\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nlisten = 127.0.0.1:8642\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nrequest_timeout = 5s\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nbatch_timeout = 60s\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmax_request_body = 8M\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nsocket_mode = 0660\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nca_file =\n"));
	ck_assert_ptr_nonnull(strstr(text, "\ndeny_networks = 169.254.0.0/16, fe80::/10\n"));
	ck_assert_ptr_null(strstr(text, "[upstream"));
	free(text);
	assert_dump_reloads(&cfg);
	config_free(&cfg);
}
END_TEST

/* An upstream section dumps what it sets, in table order, and no more. */
START_TEST(dump_upstream_sections)
{
	struct config cfg;
	char *text;

	load_ok(&cfg,
	        "[upstream \"http://a\"]\ntls_verify = no\n"
	        "[upstream \"http://b\"]\nca_file = /ca.pem\ntls_verify = 1\n"
	        "connect_timeout = 2m\nrequest_timeout = 1.5s\nburst = 4\nrate = 2/s\n"
	        "concurrency = 7\n");
	text = dump_str(&cfg);
	ck_assert_ptr_nonnull(strstr(text, "\nsocket_mode = 0660\n\n"
	                                   "[upstream \"http://a:80\"]\ntls_verify = no\n\n"
	                                   "[upstream \"http://b:80\"]\nconcurrency = 7\n"
	                                   "rate = 2/s\nburst = 4\nrequest_timeout = 1500ms\n"
	                                   "connect_timeout = 120s\ntls_verify = yes\n"
	                                   "ca_file = /ca.pem\n"));
	ck_assert_str_eq(text + strlen(text) - strlen("ca_file = /ca.pem\n"), "ca_file = /ca.pem\n");
	free(text);
	assert_dump_reloads(&cfg);
	config_free(&cfg);
}
END_TEST

START_TEST(dump_reloads)
{
	struct config cfg;
	char text[8192], *dump;
	size_t n;

	n = (size_t)snprintf(text, sizeof text,
	        "[fanoutd]\n"
	        "listen = unix:/run/x.sock\n"
	        "listen = [fe80::1]:1\n"
	        "max_request_body = 1536\n"
	        "max_response_body = 3K\n"
	        "request_timeout = 0.001s\n"
	        "connect_timeout = 1.25m\n"
	        "tls_verify = false\n"
	        "auth_token_file = /etc/fanoutd/token\n"
	        "deny_networks =\n"
	        "socket_mode = 600\n");
	/* a list longer than one line can hold: the dump must wrap it */
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(text + n, sizeof text - n,
		                      "allow_hosts = host-number-%02d.example.com\n", i);
	snprintf(text + n, sizeof text - n,
	        "[upstream \"http://[::1]:8080\"]\n"
	        "rate = 20/m\n"
	        "[upstream \"https://b.test\"]\n"
	        "rate = 0.000001/h\n"
	        "burst = 7\n"
	        "tls_verify = yes\n"
	        "ca_file = /ca.pem\n"
	        "request_timeout = 100ms\n"
	        "connect_timeout = 3s\n"
	        "concurrency = 99\n"
	        "[upstream \"http://c.test:81\"]\n"
	        "rate = 1000000/s\n");
	load_ok(&cfg, text);
	ck_assert_uint_eq(strv_len_for_test(cfg.allow_hosts), 40);
	dump = dump_str(&cfg);
	ck_assert_ptr_nonnull(strstr(dump, "\n[upstream \"http://[::1]:8080\"]\nrate = "));
	ck_assert_ptr_nonnull(strstr(dump, "\nmax_response_body = 3K\n"));
	ck_assert_ptr_nonnull(strstr(dump, "\nmax_request_body = 1536\n"));
	ck_assert_ptr_nonnull(strstr(dump, "\nrequest_timeout = 1ms\n"));
	ck_assert_ptr_nonnull(strstr(dump, "\nconnect_timeout = 75s\n"));
	ck_assert_ptr_nonnull(strstr(dump, "\nsocket_mode = 0600\n"));
	ck_assert_ptr_nonnull(strstr(dump, "\ndeny_networks =\n"));
	ck_assert_ptr_nonnull(strstr(dump, "\nrate = 1000000/s\n"));
	free(dump);
	assert_dump_reloads(&cfg);
	config_free(&cfg);
}
END_TEST

/* ---- the shipped etc/fanoutd.conf ------------------------------------- */

START_TEST(shipped_conf_is_defaults)
{
	struct config cfg, def;
	char err[1024];
	const char *path = shipped_conf();

	config_defaults(&def);
	config_defaults(&cfg);
	ck_assert_msg(config_load(&cfg, path, err, sizeof err) == 0, "%s", err);
	assert_config_eq(&cfg, &def);
	config_free(&cfg);
	config_free(&def);
}
END_TEST

/* Uncommented, the example lines load too and still give the defaults;
 * every key of the dump is there, with the same value text. */
START_TEST(shipped_conf_lists_every_key)
{
	struct config cfg, def;
	char *text = read_file(shipped_conf()), *out, *dump, *line, *save = NULL;
	size_t n = 0, keys_in_file = 0, keys_in_dump = 0;
	bool in_fanoutd = false;
	const struct config_upstream *u;

	out = malloc(strlen(text) + 1);
	ck_assert_ptr_nonnull(out);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* ";key = value" and ";[section]" are examples, "; text" prose */
		if (line[0] == ';' && (line[1] == '[' || (line[1] >= 'a' && line[1] <= 'z'))) {
			line++;
			if (in_fanoutd && line[0] != '[')
				keys_in_file++;
		}
		if (line[0] == '[')
			in_fanoutd = strcmp(line, "[fanoutd]") == 0;
		n += (size_t)sprintf(out + n, "%s\n", line);
	}
	load_ok(&cfg, out);
	config_defaults(&def);
	ck_assert_uint_eq(cfg.nupstreams, 1);
	u = config_find_upstream(&cfg, "https://api.example.com");
	ck_assert_ptr_nonnull(u);
	ck_assert_int_gt(u->concurrency, 0);
	ck_assert(u->rate_per_s > 0);
	ck_assert_int_eq(u->http2, CONFIG_HTTP2_NO);
	ck_assert_int_gt(u->h2_max_streams, 0);
	ck_assert_int_eq(u->shared, 0);
	/* [redis] has an example url, its other keys are the defaults */
	ck_assert_ptr_nonnull(cfg.redis.url);
	ck_assert_str_eq(cfg.redis.url, "redis://127.0.0.1:6379/0");
	free(cfg.redis.url);
	cfg.redis.url = NULL;
	/* the [fanoutd] part equals the defaults */
	cfg.nupstreams = 0;
	assert_config_eq(&cfg, &def);
	cfg.nupstreams = 1;

	/* and says exactly what the dump of the defaults says */
	free(text);
	text = read_file(shipped_conf());
	dump = dump_str(&def);
	save = NULL;
	for (line = strtok_r(dump, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char want[512];
		if (line[0] == ';' || line[0] == '[')
			continue;
		keys_in_dump++;
		snprintf(want, sizeof want, "\n;%s\n", line);
		ck_assert_msg(strstr(text, want) != NULL, "etc/fanoutd.conf lacks \"%s\"", want + 1);
	}
	ck_assert_uint_eq(keys_in_file, keys_in_dump);
	free(dump);

	/* and the [redis] of the defaults with a url: every key */
	free(def.redis.url);
	def.redis.url = strdup("redis://127.0.0.1:6379/0");
	dump = dump_str(&def);
	line = strstr(dump, "\n[redis]\n");
	ck_assert_ptr_nonnull(line);
	keys_in_dump = 0;
	save = NULL;
	for (line = strtok_r(line + strlen("\n[redis]\n"), "\n", &save); line && line[0] != '[';
	     line = strtok_r(NULL, "\n", &save)) {
		char want[512];
		keys_in_dump++;
		snprintf(want, sizeof want, "\n;%s\n", line);
		ck_assert_msg(strstr(text, want) != NULL, "etc/fanoutd.conf lacks \"%s\"", want + 1);
	}
	ck_assert_uint_eq(keys_in_dump, 4);
	ck_assert_ptr_nonnull(strstr(text, "\n;[redis]\n"));
	ck_assert_ptr_nonnull(strstr(text, "\n;shared = no\n"));
	free(dump);
	free(text);
	free(out);
	config_free(&cfg);
	config_free(&def);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("units");
	tcase_add_test(tc, collapse_and_hedge);
	tcase_add_test(tc, duration_good);
	tcase_add_test(tc, duration_bad);
	tcase_add_test(tc, size_good);
	tcase_add_test(tc, size_bad);
	tcase_add_test(tc, rate_good);
	tcase_add_test(tc, rate_bad);
	tcase_add_test(tc, percent_good);
	tcase_add_test(tc, percent_bad);
	tcase_add_test(tc, bool_forms);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, every_key);
	tcase_add_test(tc, limits_of_ranges);
	tcase_add_test(tc, ini_syntax_forms);
	tcase_add_test(tc, free_is_idempotent);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, error_unknown_key);
	tcase_add_test(tc, error_unknown_section);
	tcase_add_test(tc, error_key_outside_section);
	tcase_add_test(tc, error_bad_values);
	tcase_add_test(tc, error_out_of_range);
	tcase_add_test(tc, error_set_twice);
	tcase_add_test(tc, error_syntax);
	tcase_add_test(tc, error_long_line);
	tcase_add_test(tc, error_file);
	tcase_add_test(tc, error_small_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("upstream");
	tcase_add_test(tc, upstream_sections);
	tcase_add_test(tc, upstream_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("http2");
	tcase_add_test(tc, http2_values);
	tcase_add_test(tc, h2_max_streams_values);
	tcase_add_test(tc, http2_override);
	tcase_add_test(tc, http2_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("retry");
	tcase_add_test(tc, retry_keys_each_section);
	tcase_add_test(tc, retry_override);
	tcase_add_test(tc, retry_errors);
	tcase_add_test(tc, retry_on_too_long);
	tcase_add_test(tc, retry_settings_reach_the_upstream);
	suite_add_tcase(s, tc);

	tc = tcase_create("redis");
	tcase_add_test(tc, redis_keys);
	tcase_add_test(tc, redis_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("listen");
	tcase_add_test(tc, listen_rules);
	tcase_add_test(tc, listen_errors);
	tcase_add_test(tc, set_listeners);
	suite_add_tcase(s, tc);

	tc = tcase_create("dump");
	tcase_add_test(tc, dump_defaults);
	tcase_add_test(tc, dump_upstream_sections);
	tcase_add_test(tc, dump_reloads);
	suite_add_tcase(s, tc);

	tc = tcase_create("shipped");
	tcase_add_test(tc, shipped_conf_is_defaults);
	tcase_add_test(tc, shipped_conf_lists_every_key);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
