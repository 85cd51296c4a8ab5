/* fanout: the command-line client of fanoutd (SPEC section 12).  Owns the
 * command line, reading the URLs, the one HTTP exchange with the daemon
 * (libcurl: TCP or a unix socket, the answer read as it streams), the
 * progress bar on standard error and the exit status; the batch is built
 * by fanout_input, the answer read and printed by fanout_answer. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "autoconf.h"
#include "fanout_answer.h"
#include "fanout_input.h"
#include "fanout_progress.h"

/* Exit statuses (fanout.1) */
enum {
	EXIT_ALL_OK = 0,         /* every request succeeded */
	EXIT_BATCH_FAILED = 1,   /* some request failed */
	EXIT_USAGE = 2,          /* bad usage or input, the daemon's 400 and 413 */
	EXIT_DAEMON = 3,         /* the daemon unreachable, refusing (401, 503) or broken */
};

#define DEFAULT_DAEMON "http://127.0.0.1:8642"
#define BAR_PROGRESS_MS 100  /* progress_ms asked for while the bar is on */

struct cli {
	const char *daemon;      /* -d, $FANOUTD_URL or DEFAULT_DAEMON */
	const char *token_file;
	const char *file;        /* -f */
	enum fanout_output output;
	int progress;            /* 1 --progress, 0 --no-progress, -1 a terminal decides */
	struct fanout_batch_opts opts;
	char **urls;             /* the arguments left */
	int nurls;
};

/* The progress bar's state. */
struct bar {
	bool on;
	bool drawn;              /* a frame is on the screen */
	double t0_ms, last_ms;   /* when the batch was sent; the last frame */
	size_t total;
};

/* One exchange with the daemon. */
struct exchange {
	CURL *easy;
	struct fanout_answer *answer;
	struct bar *bar;
	enum { BODY_UNKNOWN, BODY_STREAM, BODY_BUFFERED } kind;
	long status;
	char *buf;               /* a partial line, or the whole buffered body */
	size_t len, cap;
	bool broken;             /* a line did not parse: err says why */
	char err[512];
};

static void bar_clear(struct bar *b);
static struct bar *shown_bar;   /* the bar die() clears first */

static void vsay(const char *fmt, va_list ap)
{
	if (shown_bar != NULL)
		bar_clear(shown_bar);
	fputs("fanout: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* "fanout: …" on standard error, on a line of its own (the bar cleared). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	exit(status);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* --- the command line ------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("usage: fanout [-d DAEMON] [-c N] [-t MS] [--settled] [-X METHOD] [-H 'K: V']...\n"
	      "              [--retries N] [-o ndjson|json|body] [--progress|--no-progress]\n"
	      "              [--token-file FILE] [-f FILE] [URL...]\n"
	      "URLs from the arguments, else -f FILE (lines or a JSON batch), else standard\n"
	      "input (one a line); DAEMON is http://HOST:PORT or unix:/PATH (default\n"
	      "$FANOUTD_URL, else " DEFAULT_DAEMON ").  See fanout(1).\n", f);
}

static long number(const char *opt, const char *arg, long min)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < min || v > INT_MAX)
		die(EXIT_USAGE, "%s %s: expected an integer of at least %ld", opt, arg, min);
	return v;
}

static enum fanout_output output_of(const char *arg)
{
	if (strcmp(arg, "ndjson") == 0)
		return FANOUT_OUTPUT_NDJSON;
	if (strcmp(arg, "json") == 0)
		return FANOUT_OUTPUT_JSON;
	if (strcmp(arg, "body") == 0)
		return FANOUT_OUTPUT_BODY;
	die(EXIT_USAGE, "-o %s: expected ndjson, json or body", arg);
}

enum { OPT_SETTLED = 256, OPT_RETRIES, OPT_PROGRESS, OPT_NO_PROGRESS, OPT_TOKEN_FILE };

static void parse_args(struct cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "daemon", required_argument, NULL, 'd' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "settled", no_argument, NULL, OPT_SETTLED },
		{ "request", required_argument, NULL, 'X' },
		{ "header", required_argument, NULL, 'H' },
		{ "retries", required_argument, NULL, OPT_RETRIES },
		{ "output", required_argument, NULL, 'o' },
		{ "file", required_argument, NULL, 'f' },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[512];
	int ch;

	while ((ch = getopt_long(argc, argv, "d:c:t:X:H:o:f:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': c->daemon = optarg; break;
		case 'c': c->opts.concurrency = number("-c", optarg, 1); break;
		case 't': c->opts.timeout_ms = number("-t", optarg, 1); break;
		case OPT_SETTLED: c->opts.settled = true; break;
		case 'X': c->opts.method = optarg; break;
		case 'H':
			if (fanout_input_header(c->opts.headers, optarg, err, sizeof err) != 0)
				die(EXIT_USAGE, "%s", err);
			break;
		case OPT_RETRIES: c->opts.retries = number("--retries", optarg, 0); break;
		case 'o': c->output = output_of(optarg); break;
		case 'f': c->file = optarg; break;
		case OPT_PROGRESS: c->progress = 1; break;
		case OPT_NO_PROGRESS: c->progress = 0; break;
		case OPT_TOKEN_FILE: c->token_file = optarg; break;
		case 'h': usage(stdout); exit(EXIT_ALL_OK);
		case 'V': printf("fanout %s\n", PACKAGE_VERSION); exit(EXIT_ALL_OK);
		default: usage(stderr); exit(EXIT_USAGE);
		}
	}
	c->urls = argv + optind;
	c->nurls = argc - optind;
	if (c->nurls > 0 && c->file != NULL)
		die(EXIT_USAGE, "URLs as arguments and -f %s: give one or the other", c->file);
}

/* --- the input -------------------------------------------------------- */

/* The whole of f (NUL-terminated; its length in *len). */
static char *slurp(FILE *f, const char *name, size_t *len)
{
	size_t cap = 65536, n = 0, got;
	char *buf = malloc(cap), *bigger;

	while (buf != NULL && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (cap - n - 1 == 0) {
			bigger = realloc(buf, cap * 2);
			if (bigger == NULL)
				free(buf);
			buf = bigger;
			cap *= 2;
		}
	}
	if (buf == NULL)
		die(EXIT_USAGE, "reading %s: out of memory", name);
	if (ferror(f))
		die(EXIT_USAGE, "reading %s: %s", name, strerror(errno));
	buf[n] = '\0';
	*len = n;
	return buf;
}

static json_t *read_batch(const struct cli *c)
{
	char err[512], *text;
	json_t *batch;
	FILE *f;
	size_t len;
	int i;

	if (c->nurls > 0) {
		batch = fanout_input_new();
		for (i = 0; batch != NULL && i < c->nurls; i++)
			if (fanout_input_add_url(batch, c->urls[i]) != 0)
				die(EXIT_USAGE, "%s: not UTF-8", c->urls[i]);
		return batch;
	}
	if (c->file != NULL) {
		f = strcmp(c->file, "-") == 0 ? stdin : fopen(c->file, "rb");
		if (f == NULL)
			die(EXIT_USAGE, "-f %s: %s", c->file, strerror(errno));
		text = slurp(f, c->file, &len);
		if (f != stdin)
			fclose(f);
		batch = fanout_input_parse_file(text, len, err, sizeof err);
		free(text);
		if (batch == NULL)
			die(EXIT_USAGE, "-f %s: %s", c->file, err);
		return batch;
	}
	text = slurp(stdin, "standard input", &len);
	batch = fanout_input_new();
	if (batch == NULL || fanout_input_add_lines(batch, text, len, err, sizeof err) != 0)
		die(EXIT_USAGE, "standard input: %s", batch ? err : "out of memory");
	free(text);
	return batch;
}

/* "Authorization: Bearer TOKEN" from the token file (trailing white
 * space dropped). */
static char *auth_header(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *token, *h, *p;
	size_t len;

	if (f == NULL)
		die(EXIT_USAGE, "--token-file %s: %s", path, strerror(errno));
	token = slurp(f, path, &len);
	fclose(f);
	while (len > 0 && strchr(" \t\r\n", token[len - 1]) != NULL)
		token[--len] = '\0';
	if (len == 0)
		die(EXIT_USAGE, "--token-file %s: empty", path);
	for (p = token; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			die(EXIT_USAGE, "--token-file %s: a space or control character in the token",
			    path);
	h = malloc(len + sizeof "Authorization: Bearer ");
	if (h == NULL)
		die(EXIT_USAGE, "out of memory");
	snprintf(h, len + sizeof "Authorization: Bearer ", "Authorization: Bearer %s", token);
	free(token);
	return h;
}

/* --- the progress bar ------------------------------------------------- */

static unsigned term_width(void)
{
	struct winsize ws;
	const char *cols = getenv("COLUMNS");

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if (cols != NULL && atoi(cols) > 0)
		return (unsigned)atoi(cols);
	return 80;
}

static void bar_draw(struct bar *b, const struct fanout_answer *a, bool force)
{
	struct fanout_progress p;
	char frame[512];
	double now;
	size_t len;

	if (!b->on)
		return;
	now = now_ms();
	if (!force && !fanout_progress_due(b->last_ms, now))
		return;
	p.total = b->total;
	p.done = a ? fanout_answer_done(a) : 0;
	p.failed = a ? fanout_answer_failed(a) : 0;
	p.elapsed_ms = now - b->t0_ms;
	len = fanout_progress_frame(frame, sizeof frame, &p, term_width());
	fwrite(frame, 1, len, stderr);
	fflush(stderr);
	b->last_ms = now;
	b->drawn = true;
}

static void bar_clear(struct bar *b)
{
	if (!b->drawn)
		return;
	fputs(fanout_progress_clear(), stderr);
	fflush(stderr);
	b->drawn = false;
}

/* --- the exchange ----------------------------------------------------- */

static int append(struct exchange *x, const char *data, size_t n)
{
	size_t cap = x->cap ? x->cap : 65536;
	char *bigger;

	while (x->len + n + 1 > cap)
		cap *= 2;
	if (cap != x->cap) {
		bigger = realloc(x->buf, cap);
		if (bigger == NULL)
			return -1;
		x->buf = bigger;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, data, n);
	x->len += n;
	return 0;
}

/* The complete lines in buf; the rest is kept for the next chunk. */
static int take_lines(struct exchange *x)
{
	char *p = x->buf, *end = x->buf + x->len, *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (fanout_answer_line(x->answer, p, (size_t)(nl - p), x->err, sizeof x->err) != 0)
			return -1;
		p = nl + 1;
	}
	x->len = (size_t)(end - p);
	memmove(x->buf, p, x->len);
	return 0;
}

static void decide_kind(struct exchange *x)
{
	char *type = NULL;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &type);
	if (x->status == 200 && type != NULL &&
	    strncasecmp(type, "application/x-ndjson", 20) == 0)
		x->kind = BODY_STREAM;
	else
		x->kind = BODY_BUFFERED;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct exchange *x = arg;
	size_t n = size * nmemb;

	if (x->kind == BODY_UNKNOWN)
		decide_kind(x);
	if (append(x, data, n) != 0) {
		snprintf(x->err, sizeof x->err, "out of memory");
		x->broken = true;
		return 0;
	}
	if (x->kind == BODY_STREAM) {
		if (take_lines(x) != 0) {
			x->broken = true;
			return 0;
		}
		fflush(stdout);
		bar_draw(x->bar, x->answer, false);
	}
	return n;
}

/* Where the batch goes: the URL, and the unix socket's path or NULL. */
static char *batch_url(const char *daemon, const char **unix_path)
{
	size_t len = strlen(daemon);
	char *url;

	*unix_path = NULL;
	if (strncmp(daemon, "unix:", 5) == 0) {
		if (daemon[5] == '\0')
			die(EXIT_USAGE, "-d %s: no path after unix:", daemon);
		*unix_path = daemon + 5;
		return strdup("http://localhost/v1/batch");
	}
	if (strncmp(daemon, "http://", 7) != 0 && strncmp(daemon, "https://", 8) != 0)
		die(EXIT_USAGE, "-d %s: expected http://HOST:PORT or unix:/PATH", daemon);
	while (len > 0 && daemon[len - 1] == '/')
		len--;
	url = malloc(len + sizeof "/v1/batch");
	if (url == NULL)
		die(EXIT_USAGE, "out of memory");
	memcpy(url, daemon, len);
	memcpy(url + len, "/v1/batch", sizeof "/v1/batch");
	return url;
}

/* Runs libcurl's loop until the exchange ends, redrawing the bar on the
 * way; libcurl's result. */
static CURLcode run(struct exchange *x)
{
	CURLM *m = curl_multi_init();
	CURLMcode mc = CURLM_OK;
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	CURLMsg *msg;
	int running = 1, left;

	if (m == NULL || curl_multi_add_handle(m, x->easy) != CURLM_OK)
		die(EXIT_DAEMON, "libcurl: cannot start the exchange");
	while (running && mc == CURLM_OK) {
		mc = curl_multi_perform(m, &running);
		bar_draw(x->bar, x->answer, false);
		if (running && mc == CURLM_OK)
			mc = curl_multi_poll(m, NULL, 0, x->bar->on ? 100 : 1000, NULL);
	}
	while ((msg = curl_multi_info_read(m, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE)
			rc = msg->data.result;
	curl_multi_remove_handle(m, x->easy);
	curl_multi_cleanup(m);
	return rc;
}

/* The message of an answer that is not a batch's (its "message", else its
 * body as text). */
static const char *refusal(struct exchange *x, json_t **owner)
{
	json_error_t je;
	const char *msg;

	*owner = json_loadb(x->buf ? x->buf : "", x->len, 0, &je);
	msg = json_string_value(json_object_get(*owner, "message"));
	if (msg != NULL)
		return msg;
	if (append(x, "", 1) != 0 || x->len <= 1)
		return "(no message)";
	return x->buf;
}

struct outcome {
	int status;              /* the exit status, when not to retry */
	bool retry_without_progress;
};

/* The end of a buffered answer: a batch's (200, 502) or a refusal. */
static int buffered_end(struct exchange *x, bool asked_progress, struct outcome *out)
{
	json_t *owner = NULL;
	const char *msg;

	if (x->status == 200 || x->status == 502) {
		if (fanout_answer_buffered(x->answer, x->buf ? x->buf : "", x->len, x->err,
		                           sizeof x->err) != 0)
			return -1;
		return 0;
	}
	msg = refusal(x, &owner);
	if (x->status == 400 && asked_progress && strstr(msg, "progress_ms") != NULL) {
		/* an older daemon: no "progress_ms"; nothing was sent upstream */
		out->retry_without_progress = true;
		json_decref(owner);
		return 1;
	}
	say("fanoutd answered %ld: %s", x->status, msg);
	json_decref(owner);
	out->status = (x->status == 400 || x->status == 413) ? EXIT_USAGE : EXIT_DAEMON;
	return 1;
}

static void setup_easy(struct exchange *x, const char *url, const char *unix_path,
                       const char *body, struct curl_slist *headers, char *errbuf)
{
	CURL *e = x->easy;

	curl_easy_setopt(e, CURLOPT_URL, url);
	if (unix_path != NULL)
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, unix_path);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "fanout/" PACKAGE_VERSION);
}

/* The exchange's end: the exit status in out, or a retry asked. */
static void finish(struct exchange *x, CURLcode rc, const char *daemon, const char *errbuf,
                   bool asked_progress, struct outcome *out)
{
	int r;

	if (x->broken)
		die(EXIT_DAEMON, "a bad answer from fanoutd at %s: %s", daemon, x->err);
	if (rc != CURLE_OK && x->kind == BODY_UNKNOWN)
		die(EXIT_DAEMON, "cannot reach fanoutd at %s: %s", daemon,
		    errbuf[0] ? errbuf : curl_easy_strerror(rc));
	if (rc != CURLE_OK)
		die(EXIT_DAEMON, "the answer from fanoutd at %s broke off: %s", daemon,
		    errbuf[0] ? errbuf : curl_easy_strerror(rc));
	if (x->kind == BODY_UNKNOWN)
		decide_kind(x);
	if (x->kind == BODY_STREAM) {
		if (x->len > 0 && fanout_answer_line(x->answer, x->buf, x->len, x->err,
		                                     sizeof x->err) != 0)
			die(EXIT_DAEMON, "a bad answer from fanoutd at %s: %s", daemon, x->err);
	} else {
		r = buffered_end(x, asked_progress, out);
		if (r < 0)
			die(EXIT_DAEMON, "a bad answer from fanoutd at %s: %s", daemon, x->err);
		if (r > 0)
			return;
	}
	if (fanout_answer_finish(x->answer, x->err, sizeof x->err) != 0)
		die(EXIT_DAEMON, "fanoutd at %s: %s", daemon, x->err);
	out->status = fanout_answer_ok(x->answer) ? EXIT_ALL_OK : EXIT_BATCH_FAILED;
}

/* Sends the batch and prints the answer; the exit status, or
 * retry_without_progress set. */
static struct outcome send_batch(const struct cli *c, json_t *batch, struct bar *bar,
                                 const char *auth)
{
	struct outcome out = { EXIT_DAEMON, false };
	struct exchange x;
	struct curl_slist *headers = NULL;
	char errbuf[CURL_ERROR_SIZE] = "", *body, *url;
	const char *unix_path;
	bool asked = json_object_get(batch, "progress_ms") != NULL;

	memset(&x, 0, sizeof x);
	url = batch_url(c->daemon, &unix_path);
	body = json_dumps(batch, JSON_COMPACT);
	x.easy = curl_easy_init();
	x.answer = fanout_answer_create(batch, c->output, stdout);
	x.bar = bar;
	if (url == NULL || body == NULL || x.easy == NULL || x.answer == NULL)
		die(EXIT_USAGE, "out of memory");
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Accept: application/x-ndjson");
	headers = curl_slist_append(headers, "Expect:");
	if (auth != NULL)
		headers = curl_slist_append(headers, auth);
	setup_easy(&x, url, unix_path, body, headers, errbuf);
	bar->t0_ms = now_ms();
	bar_draw(bar, x.answer, true);
	finish(&x, run(&x), c->daemon, errbuf, asked, &out);
	bar_clear(bar);
	fanout_answer_destroy(x.answer);
	curl_easy_cleanup(x.easy);
	curl_slist_free_all(headers);
	free(x.buf);
	free(body);
	free(url);
	return out;
}

int main(int argc, char **argv)
{
	struct cli c = { .output = FANOUT_OUTPUT_NDJSON, .progress = -1,
	                 .opts = { .retries = -1 } };
	struct bar bar = { .last_ms = -1.0 };
	struct outcome out;
	char err[512], *auth = NULL;
	json_t *batch;

	c.daemon = getenv("FANOUTD_URL");
	if (c.daemon == NULL || c.daemon[0] == '\0')
		c.daemon = DEFAULT_DAEMON;
	c.opts.headers = json_object();
	if (c.opts.headers == NULL)
		die(EXIT_USAGE, "out of memory");
	parse_args(&c, argc, argv);
	bar.on = c.progress == 1 || (c.progress == -1 && isatty(STDERR_FILENO));
	shown_bar = &bar;
	if (c.token_file != NULL)
		auth = auth_header(c.token_file);
	batch = read_batch(&c);
	bar.total = fanout_input_count(batch);
	c.opts.progress_ms = bar.on ? BAR_PROGRESS_MS : 0;
	if (fanout_input_apply(batch, &c.opts, err, sizeof err) != 0)
		die(EXIT_USAGE, "%s", err);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		die(EXIT_DAEMON, "libcurl: cannot initialise");
	out = send_batch(&c, batch, &bar, auth);
	if (out.retry_without_progress) {
		json_object_del(batch, "progress_ms");
		out = send_batch(&c, batch, &bar, auth);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		die(EXIT_USAGE, "writing standard output: %s", strerror(errno));
	json_decref(batch);
	json_decref(c.opts.headers);
	free(auth);
	curl_global_cleanup();
	return out.status;
}
