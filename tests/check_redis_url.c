/* check_redis_url: unit tests of the [redis] url parser (src/redis_url.c):
 * the forms it takes and the message for each it refuses (never quoting a
 * password), and the parts it fills in for the Redis client: unix path,
 * host (IPv6 bare), port (default 6379), db, user and %XX-decoded password. */
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "redis_url.h"

/* --- helpers ------------------------------------------------------------- */

/* redis_url_parse, its parts thrown away; a refusal must leave none. */
static int check(const char *s, char *msg, size_t len)
{
	struct redis_url u;
	int rc = redis_url_parse(s, &u, msg, len);

	if (rc < 0)
		ck_assert(u.path == NULL && u.host == NULL && u.user == NULL && u.pass == NULL);
	redis_url_clear(&u);
	return rc;
}

struct parts {
	const char *url, *path, *host;
	int port, db;
	const char *user, *pass;
};

static void assert_str_or_null(const char *url, const char *what, const char *got,
                               const char *want)
{
	if (want == NULL)
		ck_assert_msg(got == NULL, "%s: %s is \"%s\", not NULL", url, what, got);
	else
		ck_assert_msg(got != NULL && strcmp(got, want) == 0, "%s: %s is \"%s\", not \"%s\"",
		              url, what, got ? got : "(null)", want);
}

static void assert_parts(const struct parts *p)
{
	struct redis_url u;
	char msg[256];

	ck_assert_msg(redis_url_parse(p->url, &u, msg, sizeof msg) == 0, "%s: %s", p->url, msg);
	assert_str_or_null(p->url, "path", u.path, p->path);
	assert_str_or_null(p->url, "host", u.host, p->host);
	if (p->path == NULL)
		ck_assert_int_eq(u.port, p->port);
	ck_assert_int_eq(u.db, p->db);
	assert_str_or_null(p->url, "user", u.user, p->user);
	assert_str_or_null(p->url, "pass", u.pass, p->pass);
	redis_url_clear(&u);
	ck_assert(u.path == NULL && u.host == NULL && u.user == NULL && u.pass == NULL);
}

/* --- the parts ----------------------------------------------------------- */

START_TEST(test_parts)
{
	static const struct parts cases[] = {
		{ "unix:/run/redis.sock", "/run/redis.sock", NULL, 0, 0, NULL, NULL },
		{ "redis://localhost", NULL, "localhost", 6379, 0, NULL, NULL },
		{ "REDIS://10.0.0.5", NULL, "10.0.0.5", 6379, 0, NULL, NULL },
		{ "redis://h:7000", NULL, "h", 7000, 0, NULL, NULL },
		{ "redis://h/", NULL, "h", 6379, 0, NULL, NULL },
		{ "redis://h/15", NULL, "h", 6379, 15, NULL, NULL },
		{ "redis://h:1/1000000", NULL, "h", 1, 1000000, NULL, NULL },
		{ "redis://[::1]:6380", NULL, "::1", 6380, 0, NULL, NULL },
		{ "redis://[::1]", NULL, "::1", 6379, 0, NULL, NULL },
		{ "redis://[2001:DB8:0::1]:6379/2", NULL, "2001:db8::1", 6379, 2, NULL, NULL },
		{ "redis://user:p%40ss%3Aw+rd@h:6379/1", NULL, "h", 6379, 1, "user", "p@ss:w+rd" },
		{ "redis://%75ser:a:b@h", NULL, "h", 6379, 0, "user", "a:b" },
		{ "redis://secret@h", NULL, "h", 6379, 0, NULL, "secret" },
		{ "redis://:secret@[::1]:7000/3", NULL, "::1", 7000, 3, NULL, "secret" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_parts(&cases[i]);
}
END_TEST

/* --- the forms and the messages ------------------------------------------ */

START_TEST(test_forms)
{
	static const char *const good[] = {
		"redis://127.0.0.1", "redis://127.0.0.1:6379", "redis://127.0.0.1:6379/0",
		"redis://localhost/15", "redis://redis.internal_net-1.example:1/1000000",
		"redis://h/", "REDIS://h", "redis://[::1]", "redis://[::1]:6380/3",
		"redis://[2001:DB8::1]:6379", "redis://:secret@h", "redis://secret@h",
		"redis://user:p%40ss:w;rd!$&'()*+,=~@h:6379/1", "unix:/run/redis.sock", "unix:/x",
		"redis://localhost", "redis://:secret@[::1]:7000/3", "unix:/run/redis/redis.sock",
	};
	static const struct { const char *url, *msg; } bad[] = {
		{ "127.0.0.1:6379", "url: bad Redis URL (use redis://host[:port][/db] or unix:/path)" },
		{ "redis:/h", "url: bad Redis URL (use redis://host[:port][/db] or unix:/path)" },
		{ "rediss://h", "url: unsupported scheme \"rediss\" (use redis://host[:port][/db] or unix:/path)" },
		{ "http://h:6379", "url: unsupported scheme \"http\" (use redis://host[:port][/db] or unix:/path)" },
		{ "redis://", "url: no host in redis:// URL (use redis://host[:port][/db] or unix:/path)" },
		{ "redis://:6379", "url: no host in redis:// URL (use redis://host[:port][/db] or unix:/path)" },
		{ "redis:///0", "url: no host in redis:// URL (use redis://host[:port][/db] or unix:/path)" },
		{ "redis://h:", "url: bad port \"\" in redis:// URL (1..65535)" },
		{ "redis://h:0", "url: bad port \"0\" in redis:// URL (1..65535)" },
		{ "redis://h:65536", "url: bad port \"65536\" in redis:// URL (1..65535)" },
		{ "redis://h:63790000", "url: bad port \"63790000\" in redis:// URL (1..65535)" },
		{ "redis://h:x", "url: bad port \"x\" in redis:// URL (1..65535)" },
		{ "redis://h/x", "url: bad database \"x\" in redis:// URL (a number, 0..1000000)" },
		{ "redis://h/-1", "url: bad database \"-1\" in redis:// URL (a number, 0..1000000)" },
		{ "redis://h/1000001", "url: bad database \"1000001\" in redis:// URL (a number, 0..1000000)" },
		{ "redis://h/00000001", "url: bad database \"00000001\" in redis:// URL (a number, 0..1000000)" },
		{ "redis://h/0/1", "url: bad database \"0/1\" in redis:// URL (a number, 0..1000000)" },
		{ "redis://h/0?x=1", "url: redis:// URL must not have a query or fragment" },
		{ "redis://h#f", "url: redis:// URL must not have a query or fragment" },
		{ "redis://h!st", "url: bad host \"h!st\" in redis:// URL" },
		{ "redis://::1:6379", "url: IPv6 address needs brackets in redis:// URL (e.g. redis://[::1]:6379)" },
		{ "redis://[::g]", "url: bad IPv6 address in redis:// URL" },
		{ "redis://[::1", "url: bad IPv6 address in redis:// URL" },
		{ "redis://[::1]6379", "url: bad redis:// URL (use redis://host[:port][/db] or unix:/path)" },
		{ "redis://user:@h", "url: bad user info in redis:// URL (use [user:]password@, %XX for characters other than letters, digits and -._~!$&'()*+,;=)" },
		{ "redis://:@h", "url: bad user info in redis:// URL (use [user:]password@, %XX for characters other than letters, digits and -._~!$&'()*+,;=)" },
		{ "redis://@h", "url: bad user info in redis:// URL (use [user:]password@, %XX for characters other than letters, digits and -._~!$&'()*+,;=)" },
		{ "redis://p@ss@h", "url: bad user info in redis:// URL (use [user:]password@, %XX for characters other than letters, digits and -._~!$&'()*+,;=)" },
		{ "redis://u:p\"w@h", "url: bad user info in redis:// URL (use [user:]password@, %XX for characters other than letters, digits and -._~!$&'()*+,;=)" },
		{ "redis://u:p%4@h", "url: bad user info in redis:// URL (use [user:]password@, %XX for characters other than letters, digits and -._~!$&'()*+,;=)" },
		{ "redis://u:p%zz@h", "url: bad user info in redis:// URL (use [user:]password@, %XX for characters other than letters, digits and -._~!$&'()*+,;=)" },
		{ "redis://h x", "url: space or control character in Redis URL" },
		{ "redis://h\t", "url: space or control character in Redis URL" },
		{ "unix:", "url: unix socket path must be absolute (unix:/path)" },
		{ "unix:/", "url: unix socket path must be absolute (unix:/path)" },
		{ "unix:run/redis.sock", "url: unix socket path must be absolute (unix:/path)" },
		{ "unix:relative", "url: unix socket path must be absolute (unix:/path)" },
		{ "", "url: bad Redis URL (use redis://host[:port][/db] or unix:/path)" },
		{ "redis://h:-1", "url: bad port \"-1\" in redis:// URL (1..65535)" },
		{ "redis://[v1.x]", "url: bad IPv6 address in redis:// URL" },
		{ "redis://[fe80::1%25eth0]", "url: bad IPv6 address in redis:// URL" },
		{ "redis://%41", "url: bad host \"%41\" in redis:// URL" },
		{ "redis://u:p%00w@h", "url: bad user info in redis:// URL (use [user:]password@, %XX for characters other than letters, digits and -._~!$&'()*+,;=)" },
	};
	char msg[256], path[200];

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		ck_assert_msg(check(good[i], msg, sizeof msg) == 0,
		              "\"%s\" refused: %s", good[i], msg);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		msg[0] = '\0';
		ck_assert_msg(check(bad[i].url, msg, sizeof msg) == -1,
		              "\"%s\" accepted", bad[i].url);
		ck_assert_str_eq(msg, bad[i].msg);
	}
	/* a password is never quoted back */
	ck_assert_int_eq(check("redis://u:hunter2@h:99999", msg, sizeof msg), -1);
	ck_assert_ptr_null(strstr(msg, "hunter2"));
	ck_assert_int_eq(check("redis://u:hun@ter2@h", msg, sizeof msg), -1);
	ck_assert_ptr_null(strstr(msg, "ter2"));
	/* sun_path holds 107 bytes and the NUL */
	memset(path, 'p', sizeof path);
	memcpy(path, "unix:/", 6);
	path[5 + 107] = '\0';
	ck_assert_int_eq(check(path, msg, sizeof msg), 0);
	path[5 + 107] = 'p';
	path[5 + 108] = '\0';
	ck_assert_int_eq(check(path, msg, sizeof msg), -1);
	ck_assert_str_eq(msg, "url: unix socket path too long (at most 107 bytes)");
}
END_TEST

/* --- runner -------------------------------------------------------------- */

static Suite *redis_url_suite(void)
{
	Suite *s = suite_create("redis_url");
	TCase *tc = tcase_create("parts");

	tcase_add_test(tc, test_parts);
	suite_add_tcase(s, tc);

	tc = tcase_create("forms");
	tcase_add_test(tc, test_forms);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(redis_url_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
