/* check_shared: unit tests of the limits shared through Redis
 * (src/shared.c), against redis-servers this suite starts on free loopback
 * ports ($REDIS_SERVER, else /usr/bin/redis-server) and kills at the end:
 * one for most tests, one to SIGSTOP and one to SIGKILL. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "shared.h"

enum { REDIS_MAIN = 0, REDIS_STOP, REDIS_KILL, NREDIS };

static pid_t redis_pid[NREDIS];
static pid_t suite_pid;            /* the forked tests must not stop them */
static int redis_port[NREDIS];

/* --- the redis-servers ------------------------------------------------------ */

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		perror("check_shared: free port");
		exit(1);
	}
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static redisContext *sync_connect(int port)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

	if (c != NULL && c->err) {
		redisFree(c);
		return NULL;
	}
	return c;
}

static bool redis_ready(int port)
{
	redisContext *c = sync_connect(port);
	redisReply *rep;
	bool ok;

	if (c == NULL)
		return false;
	rep = redisCommand(c, "PING");
	ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
	if (rep != NULL)
		freeReplyObject(rep);
	redisFree(c);
	return ok;
}

static bool redis_start(const char *path, int i)
{
	char port[16];
	pid_t pid;

	redis_port[i] = free_port();
	snprintf(port, sizeof port, "%d", redis_port[i]);
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive the suite */
		dup2(null, 1);
		execl(path, path, "--port", port, "--bind", "127.0.0.1", "--save", "",
		      "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
		      (char *)NULL);
		_exit(127);
	}
	redis_pid[i] = pid;
	for (int tries = 0; tries < 500; tries++) {
		int st;

		if (redis_ready(redis_port[i]))
			return true;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			redis_pid[i] = 0;
			return false;
		}
		usleep(10000);
	}
	return false;
}

static void redis_stop_all(void)
{
	if (getpid() != suite_pid)
		return;
	for (int i = 0; i < NREDIS; i++) {
		if (redis_pid[i] <= 0)
			continue;
		kill(redis_pid[i], SIGKILL);
		waitpid(redis_pid[i], NULL, 0);
		redis_pid[i] = 0;
	}
}

static long long redis_int(int port, const char *cmd, const char *arg)
{
	redisContext *c = sync_connect(port);
	redisReply *rep;
	long long v = -1;

	ck_assert_ptr_nonnull(c);
	rep = redisCommand(c, "%s %s", cmd, arg);
	ck_assert_ptr_nonnull(rep);
	if (rep->type == REDIS_REPLY_INTEGER)
		v = rep->integer;
	else if (rep->type == REDIS_REPLY_STATUS)
		v = 0;
	freeReplyObject(rep);
	redisFree(c);
	return v;
}

/* --- the event loop ----------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

struct loop {
	struct event_base *base;
	struct event *tick;     /* so EVLOOP_ONCE returns every ms */
};

static void loop_init(struct loop *lp)
{
	struct timeval tv = { 0, 1000 };

	lp->base = event_base_new();
	ck_assert_ptr_nonnull(lp->base);
	lp->tick = event_new(lp->base, -1, EV_PERSIST, on_tick, NULL);
	event_add(lp->tick, &tv);
}

static void loop_free(struct loop *lp)
{
	event_free(lp->tick);
	event_base_free(lp->base);
}

typedef bool (*done_fn)(void *arg);

static bool run_until(struct loop *lp, done_fn done, void *arg, double max_ms)
{
	double end = clock_now_ms() + max_ms;

	while (!done(arg)) {
		if (clock_now_ms() >= end)
			return false;
		event_base_loop(lp->base, EVLOOP_ONCE);
	}
	return true;
}

static bool never(void *arg)
{
	(void)arg;
	return false;
}

static void run_for(struct loop *lp, double ms)
{
	(void)run_until(lp, never, NULL, ms);
}

static bool is_up(void *arg)
{
	return shared_redis_up(arg);
}

static bool is_down(void *arg)
{
	return !shared_redis_up(arg);
}

static char prefix[64];

static struct shared_redis *redis_new(struct loop *lp, int which, long timeout_ms,
                                      long lease_ms)
{
	char url[64];
	struct shared_redis_settings s = {
		.url = url, .key_prefix = prefix, .timeout_ms = timeout_ms, .lease_ms = lease_ms,
	};
	struct shared_redis *r;

	snprintf(prefix, sizeof prefix, "t%d:", (int)getpid());
	snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", redis_port[which]);
	r = shared_redis_new(lp->base, &s);
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(run_until(lp, is_up, r, 2000), "redis did not come up");
	return r;
}

static long long zcard(int which, const char *upstream)
{
	char key[128];

	snprintf(key, sizeof key, "%s{%s}:leases", prefix, upstream);
	return redis_int(redis_port[which], "ZCARD", key);
}

/* --- test waiters ------------------------------------------------------------- */

struct tlog {
	int order[256];
	double at[256];
	bool local[256];
	size_t n;
	long inflight, max_inflight;   /* across every limit using this log */
};

struct tw {
	struct shared_waiter w;
	int id;
	struct tlog *log;
	struct shared_limit *l;
	struct event *hold;            /* release after hold_ms */
	double hold_ms;
	bool granted, released;
};

static void on_hold_done(evutil_socket_t fd, short what, void *arg)
{
	struct tw *t = arg;

	(void)fd;
	(void)what;
	t->log->inflight--;
	t->released = true;
	shared_limit_release(t->l, t->w.lease);
	t->w.lease = NULL;
}

static void on_grant(struct shared_waiter *w, void *arg)
{
	struct tw *t = arg;
	struct tlog *g = t->log;

	ck_assert_ptr_eq(w, &t->w);
	ck_assert(!w->queued);
	ck_assert(!t->granted);
	ck_assert_uint_lt(g->n, 256);
	t->granted = true;
	g->order[g->n] = t->id;
	g->at[g->n] = clock_now_ms();
	g->local[g->n] = w->local;
	g->n++;
	g->inflight++;
	if (g->inflight > g->max_inflight)
		g->max_inflight = g->inflight;
	if (t->hold != NULL) {
		struct timeval tv = clock_timeval(t->hold_ms);

		evtimer_add(t->hold, &tv);
	}
}

static void tw_init(struct tw *t, int id, struct tlog *g, struct shared_limit *l)
{
	memset(t, 0, sizeof *t);
	t->id = id;
	t->log = g;
	t->l = l;
	shared_waiter_init(&t->w, on_grant, t);
}

static void tw_hold(struct tw *t, struct loop *lp, double ms)
{
	t->hold = event_new(lp->base, -1, 0, on_hold_done, t);
	t->hold_ms = ms;
}

static void tw_release(struct tw *t)
{
	if (t->granted && !t->released) {
		t->released = true;
		t->log->inflight--;
		shared_limit_release(t->l, t->w.lease);
		t->w.lease = NULL;
	}
}

static void tw_done(struct tw *t)
{
	shared_limit_cancel(t->l, &t->w);
	tw_release(t);
	if (t->hold != NULL)
		event_free(t->hold);
	t->hold = NULL;
}

struct count_arg {
	struct tlog *log;
	size_t n;
};

static bool log_has(void *arg)
{
	struct count_arg *c = arg;

	return c->log->n >= c->n;
}

static bool wait_grants(struct loop *lp, struct tlog *g, size_t n, double max_ms)
{
	struct count_arg c = { g, n };

	return run_until(lp, log_has, &c, max_ms);
}

/* --- tests ---------------------------------------------------------------------- */

/* a bad URL (redis_url.c's tests have the forms): no client, nothing to free */
START_TEST(test_bad_url)
{
	struct loop lp;
	struct shared_redis_settings s = { .url = "redis://127.0.0.1:0" };

	loop_init(&lp);
	ck_assert_ptr_null(shared_redis_new(lp.base, &s));
	loop_free(&lp);
}
END_TEST

/* concurrency 5, 12 waiters: 5 at once, the others as slots come back, FIFO */
START_TEST(test_concurrency_fifo)
{
	struct loop lp;
	struct tlog g = { 0 };
	struct tw t[12];
	struct shared_redis *r;
	struct shared_limit *l;
	struct shared_redis_stats st;

	loop_init(&lp);
	r = redis_new(&lp, REDIS_MAIN, 0, 0);
	ck_assert_uint_eq(strlen(shared_redis_id(r)), 16);
	l = shared_limit_new(r, "fifo", 5, 0, 0);
	for (int i = 0; i < 12; i++) {
		tw_init(&t[i], i, &g, l);
		shared_limit_acquire(l, &t[i].w);
		ck_assert(!t[i].granted);            /* never inside acquire */
	}
	ck_assert(wait_grants(&lp, &g, 5, 1000));
	run_for(&lp, 100);
	ck_assert_uint_eq(g.n, 5);
	ck_assert_uint_eq(shared_limit_queued(l), 7);
	ck_assert_int_eq(zcard(REDIS_MAIN, "fifo"), 5);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(g.order[i], i);
		ck_assert(!g.local[i]);
		ck_assert_ptr_nonnull(t[i].w.lease);
	}
	tw_release(&t[0]);
	ck_assert(wait_grants(&lp, &g, 6, 500));
	ck_assert_int_eq(g.order[5], 5);
	for (int i = 1; i < 5; i++)
		tw_release(&t[i]);
	ck_assert(wait_grants(&lp, &g, 10, 500));
	for (int i = 5; i < 10; i++)
		tw_release(&t[i]);
	ck_assert(wait_grants(&lp, &g, 12, 500));
	for (int i = 0; i < 12; i++) {
		ck_assert_int_eq(g.order[i], i);
		ck_assert(!g.local[i]);
	}
	for (int i = 0; i < 12; i++)
		tw_done(&t[i]);
	ck_assert_uint_eq(shared_limit_held(l), 0);
	run_for(&lp, 50);
	ck_assert_int_eq(zcard(REDIS_MAIN, "fifo"), 0);
	shared_redis_get_stats(r, &st);
	ck_assert_uint_gt(st.commands, 0);
	ck_assert_uint_eq(st.errors, 0);
	ck_assert_uint_eq(st.fallbacks, 0);
	shared_limit_free(l);
	shared_redis_free(r);
	loop_free(&lp);
}
END_TEST

/* two daemons on one key never hold more than the limit together */
START_TEST(test_two_daemons)
{
	struct loop lp;
	struct tlog g = { 0 };
	static struct tw t[2][30];
	struct shared_redis *r[2];
	struct shared_limit *l[2];

	loop_init(&lp);
	for (int d = 0; d < 2; d++) {
		r[d] = redis_new(&lp, REDIS_MAIN, 0, 0);
		l[d] = shared_limit_new(r[d], "pair", 5, 0, 0);
	}
	ck_assert_str_ne(shared_redis_id(r[0]), shared_redis_id(r[1]));
	for (int i = 0; i < 30; i++)
		for (int d = 0; d < 2; d++) {
			tw_init(&t[d][i], d * 100 + i, &g, l[d]);
			tw_hold(&t[d][i], &lp, 10 + (i * 7) % 13);
			shared_limit_acquire(l[d], &t[d][i].w);
		}
	ck_assert_msg(wait_grants(&lp, &g, 60, 10000), "only %zu of 60 granted", g.n);
	ck_assert_int_le(g.max_inflight, 5);
	ck_assert_int_eq(g.max_inflight, 5);
	for (size_t i = 0; i < g.n; i++)
		ck_assert(!g.local[i]);
	/* each daemon's own waiters in FIFO order */
	for (int d = 0; d < 2; d++) {
		int last = -1;

		for (size_t i = 0; i < g.n; i++)
			if (g.order[i] / 100 == d) {
				ck_assert_int_gt(g.order[i], last);
				last = g.order[i];
			}
	}
	run_for(&lp, 50);
	for (int d = 0; d < 2; d++) {
		for (int i = 0; i < 30; i++)
			tw_done(&t[d][i]);
		shared_limit_free(l[d]);
		shared_redis_free(r[d]);
	}
	loop_free(&lp);
}
END_TEST

/* rate 20/s, burst 5, for 1.5 s: 5 at once, then one per 50 ms */
START_TEST(test_rate)
{
	struct loop lp;
	struct tlog g = { 0 };
	static struct tw t[60];
	struct shared_redis *r;
	struct shared_limit *l;
	double t0;

	loop_init(&lp);
	r = redis_new(&lp, REDIS_MAIN, 0, 0);
	l = shared_limit_new(r, "rate", 0, 20, 5);
	t0 = clock_now_ms();
	for (int i = 0; i < 60; i++) {
		tw_init(&t[i], i, &g, l);
		shared_limit_acquire(l, &t[i].w);
	}
	run_for(&lp, 1500);
	/* 5 + 1500 / 50 = 35 at most; a little less for round trips */
	ck_assert_msg(g.n >= 31 && g.n <= 36, "%zu granted in 1.5 s", g.n);
	for (int i = 0; i < 5; i++)
		ck_assert_double_lt(g.at[i] - t0, 50);
	ck_assert_double_gt(g.at[5] - t0, 30);
	for (size_t i = 0; i < g.n; i++) {
		ck_assert_int_eq(g.order[i], (int)i);
		ck_assert(!g.local[i]);
		ck_assert_ptr_null(t[i].w.lease);
	}
	/* GCRA: n grants span at least (n - burst) emission intervals (5 ms
	 * for the loop's jitter) */
	for (size_t j = 0; j < g.n; j++)
		for (size_t i = j + 1; i < g.n; i++)
			ck_assert_msg((double)(i - j + 1) <= 5 + (g.at[i] - g.at[j] + 5) / 50,
			              "grants %zu..%zu within %.1f ms", j, i, g.at[i] - g.at[j]);
	for (int i = 0; i < 60; i++)
		tw_done(&t[i]);
	shared_limit_free(l);
	shared_redis_free(r);
	loop_free(&lp);
}
END_TEST

/* a daemon that dies holding leases loses them when they expire */
START_TEST(test_dead_client)
{
	struct loop lp;
	struct tlog g = { 0 };
	struct tw t[2];
	struct shared_redis *r;
	struct shared_limit *l;
	int fds[2];
	pid_t child;
	char c;
	struct pollfd pfd;
	double t0;

	ck_assert_int_eq(pipe(fds), 0);
	snprintf(prefix, sizeof prefix, "t%d:", (int)getpid());
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		/* the doomed daemon: takes both slots and waits to be killed */
		struct tlog cg = { 0 };
		struct tw ct[2];
		struct loop clp;
		struct shared_redis *cr;
		struct shared_limit *cl;
		char url[64];
		struct shared_redis_settings s = { .url = url, .key_prefix = prefix,
		                                   .lease_ms = 300 };

		snprintf(url, sizeof url, "redis://127.0.0.1:%d", redis_port[REDIS_MAIN]);
		loop_init(&clp);
		cr = shared_redis_new(clp.base, &s);
		cl = shared_limit_new(cr, "dead", 2, 0, 0);
		for (int i = 0; i < 2; i++) {
			tw_init(&ct[i], i, &cg, cl);
			shared_limit_acquire(cl, &ct[i].w);
		}
		if (wait_grants(&clp, &cg, 2, 2000) && !cg.local[0] && !cg.local[1])
			(void)!write(fds[1], "k", 1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	t0 = clock_now_ms();
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(fds[0]);

	loop_init(&lp);
	r = redis_new(&lp, REDIS_MAIN, 0, 300);
	l = shared_limit_new(r, "dead", 2, 0, 0);
	for (int i = 0; i < 2; i++) {
		tw_init(&t[i], i, &g, l);
		shared_limit_acquire(l, &t[i].w);
	}
	run_for(&lp, 150);
	ck_assert_uint_eq(g.n, 0);
	ck_assert(wait_grants(&lp, &g, 2, 1000));
	ck_assert_double_gt(g.at[0] - t0, 200);
	ck_assert_double_lt(g.at[1] - t0, 600);
	ck_assert(!g.local[0] && !g.local[1]);
	for (int i = 0; i < 2; i++)
		tw_done(&t[i]);
	shared_limit_free(l);
	shared_redis_free(r);
	loop_free(&lp);
}
END_TEST

/* a holder renews its 300 ms lease for a whole second; nobody takes it */
START_TEST(test_renewal)
{
	struct loop lp;
	struct tlog ga = { 0 }, gb = { 0 };
	struct tw a, b;
	struct shared_redis *ra, *rb;
	struct shared_limit *la, *lb;
	double t_rel;

	loop_init(&lp);
	ra = redis_new(&lp, REDIS_MAIN, 0, 300);
	rb = redis_new(&lp, REDIS_MAIN, 0, 300);
	la = shared_limit_new(ra, "renew", 1, 0, 0);
	lb = shared_limit_new(rb, "renew", 1, 0, 0);
	tw_init(&a, 0, &ga, la);
	shared_limit_acquire(la, &a.w);
	ck_assert(wait_grants(&lp, &ga, 1, 1000));
	tw_init(&b, 1, &gb, lb);
	shared_limit_acquire(lb, &b.w);
	run_for(&lp, 1000);
	ck_assert_uint_eq(gb.n, 0);
	ck_assert_int_eq(zcard(REDIS_MAIN, "renew"), 1);
	ck_assert_uint_eq(shared_limit_held(la), 1);
	t_rel = clock_now_ms();
	tw_release(&a);
	ck_assert(wait_grants(&lp, &gb, 1, 500));
	ck_assert_double_lt(gb.at[0] - t_rel, 100);
	ck_assert(!gb.local[0]);
	tw_done(&a);
	tw_done(&b);
	shared_limit_free(la);
	shared_limit_free(lb);
	shared_redis_free(ra);
	shared_redis_free(rb);
	loop_free(&lp);
}
END_TEST

/* SCRIPT FLUSH: acquire and renew load their scripts again and go on */
START_TEST(test_noscript)
{
	struct loop lp;
	struct tlog g = { 0 };
	struct tw t[3];
	struct shared_redis *r;
	struct shared_limit *l;
	struct shared_redis_stats st;

	loop_init(&lp);
	r = redis_new(&lp, REDIS_MAIN, 0, 300);
	l = shared_limit_new(r, "noscript", 5, 0, 0);
	tw_init(&t[0], 0, &g, l);
	shared_limit_acquire(l, &t[0].w);
	ck_assert(wait_grants(&lp, &g, 1, 1000));
	ck_assert_int_eq(redis_int(redis_port[REDIS_MAIN], "SCRIPT", "FLUSH"), 0);
	for (int i = 1; i < 3; i++) {
		tw_init(&t[i], i, &g, l);
		shared_limit_acquire(l, &t[i].w);
	}
	ck_assert(wait_grants(&lp, &g, 3, 1000));
	for (int i = 0; i < 3; i++)
		ck_assert(!g.local[i]);
	ck_assert(shared_redis_up(r));
	/* renew too: flushed again, the leases (300 ms) outlive 600 ms */
	ck_assert_int_eq(redis_int(redis_port[REDIS_MAIN], "SCRIPT", "FLUSH"), 0);
	run_for(&lp, 600);
	ck_assert_int_eq(zcard(REDIS_MAIN, "noscript"), 3);
	ck_assert(shared_redis_up(r));
	shared_redis_get_stats(r, &st);
	ck_assert_uint_eq(st.downs, 0);
	ck_assert_uint_eq(st.fallbacks, 0);
	for (int i = 0; i < 3; i++)
		tw_done(&t[i]);
	shared_limit_free(l);
	shared_redis_free(r);
	loop_free(&lp);
}
END_TEST

/* Redis stopped: local within timeout_ms; continued: shared again */
START_TEST(test_sigstop)
{
	struct loop lp;
	struct tlog g = { 0 };
	struct tw t[6];
	struct shared_redis *r;
	struct shared_limit *l;
	struct shared_redis_stats st;
	double t0;

	loop_init(&lp);
	r = redis_new(&lp, REDIS_STOP, 100, 0);
	l = shared_limit_new(r, "stop", 2, 0, 0);
	for (int i = 0; i < 3; i++) {
		tw_init(&t[i], i, &g, l);
		shared_limit_acquire(l, &t[i].w);
	}
	ck_assert(wait_grants(&lp, &g, 2, 1000));
	run_for(&lp, 30);
	ck_assert_uint_eq(g.n, 2);
	ck_assert_int_eq(kill(redis_pid[REDIS_STOP], SIGSTOP), 0);
	t0 = clock_now_ms();
	ck_assert(wait_grants(&lp, &g, 3, 1000));
	ck_assert(g.local[2]);
	ck_assert_msg(g.at[2] - t0 <= 100 + SHARED_POLL_MS + 60, "local after %.0f ms",
	              g.at[2] - t0);
	ck_assert(!shared_redis_up(r));
	/* while down, nothing waits for Redis */
	tw_init(&t[3], 3, &g, l);
	t0 = clock_now_ms();
	shared_limit_acquire(l, &t[3].w);
	ck_assert(wait_grants(&lp, &g, 4, 100));
	ck_assert(g.local[3]);
	ck_assert_double_lt(g.at[3] - t0, 20);
	run_for(&lp, 1200);                   /* attempts time out: still down */
	ck_assert(!shared_redis_up(r));
	ck_assert_int_eq(kill(redis_pid[REDIS_STOP], SIGCONT), 0);
	ck_assert(run_until(&lp, is_up, r, 2500));
	/* the two shared leases go back; the next waiters are shared */
	tw_release(&t[0]);
	tw_release(&t[1]);
	for (int i = 4; i < 6; i++) {
		tw_init(&t[i], i, &g, l);
		shared_limit_acquire(l, &t[i].w);
	}
	ck_assert(wait_grants(&lp, &g, 6, 1000));
	ck_assert(!g.local[4] && !g.local[5]);
	shared_redis_get_stats(r, &st);
	ck_assert_uint_eq(st.downs, 1);
	ck_assert_uint_eq(st.fallbacks, 2);
	ck_assert_uint_gt(st.errors, 0);
	for (int i = 0; i < 6; i++)
		tw_done(&t[i]);
	shared_limit_free(l);
	shared_redis_free(r);
	loop_free(&lp);
}
END_TEST

/* Redis killed: local at once, no crash, attempts go on quietly */
START_TEST(test_sigkill)
{
	struct loop lp;
	struct tlog g = { 0 };
	struct tw t[4];
	struct shared_redis *r;
	struct shared_limit *l;

	loop_init(&lp);
	r = redis_new(&lp, REDIS_KILL, 100, 0);
	l = shared_limit_new(r, "kill", 2, 0, 0);
	for (int i = 0; i < 3; i++) {
		tw_init(&t[i], i, &g, l);
		shared_limit_acquire(l, &t[i].w);
	}
	ck_assert(wait_grants(&lp, &g, 2, 1000));
	ck_assert_int_eq(kill(redis_pid[REDIS_KILL], SIGKILL), 0);
	ck_assert(wait_grants(&lp, &g, 3, 300));
	ck_assert(g.local[2]);
	ck_assert(run_until(&lp, is_down, r, 10));
	tw_init(&t[3], 3, &g, l);
	shared_limit_acquire(l, &t[3].w);
	ck_assert(wait_grants(&lp, &g, 4, 100));
	ck_assert(g.local[3]);
	run_for(&lp, 2200);                   /* two refused attempts */
	ck_assert(!shared_redis_up(r));
	for (int i = 0; i < 4; i++)
		tw_done(&t[i]);
	shared_limit_free(l);
	shared_redis_free(r);
	loop_free(&lp);
}
END_TEST

/* freeing a limit with an acquire in flight and waiters cancelled:
 * what that acquire got goes back (ASan: nothing leaks) */
START_TEST(test_free_in_flight)
{
	struct loop lp;
	struct tlog g = { 0 };
	struct tw t[3];
	struct shared_redis *r;
	struct shared_limit *l;

	loop_init(&lp);
	r = redis_new(&lp, REDIS_MAIN, 0, 0);
	l = shared_limit_new(r, "inflight", 3, 0, 0);
	for (int i = 0; i < 3; i++) {
		tw_init(&t[i], i, &g, l);
		shared_limit_acquire(l, &t[i].w);
	}
	event_base_loop(lp.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);   /* the acquire is sent */
	for (int i = 0; i < 3; i++)
		tw_done(&t[i]);
	shared_limit_free(l);
	run_for(&lp, 100);                           /* its reply comes */
	ck_assert_uint_eq(g.n, 0);
	ck_assert_int_eq(zcard(REDIS_MAIN, "inflight"), 0);
	/* and a limit whose waiters were granted then cancelled */
	l = shared_limit_new(r, "inflight", 3, 0, 0);
	for (int i = 0; i < 3; i++) {
		tw_init(&t[i], i, &g, l);
		shared_limit_acquire(l, &t[i].w);
	}
	ck_assert(wait_grants(&lp, &g, 3, 1000));
	shared_limit_free(l);                        /* holds 3: released */
	run_for(&lp, 50);
	ck_assert_int_eq(zcard(REDIS_MAIN, "inflight"), 0);
	shared_redis_free(r);
	loop_free(&lp);
}
END_TEST

static Suite *shared_suite(void)
{
	Suite *s = suite_create("shared");
	TCase *tc = tcase_create("redis");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_bad_url);
	tcase_add_test(tc, test_concurrency_fifo);
	tcase_add_test(tc, test_two_daemons);
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_dead_client);
	tcase_add_test(tc, test_renewal);
	tcase_add_test(tc, test_noscript);
	tcase_add_test(tc, test_free_in_flight);
	tcase_add_test(tc, test_sigstop);
	tcase_add_test(tc, test_sigkill);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *path = getenv("REDIS_SERVER");
	SRunner *sr;
	int failed;

	if (path == NULL || path[0] == '\0')
		path = "/usr/bin/redis-server";
	if (access(path, X_OK) != 0) {
		fprintf(stderr, "check_shared: FAIL: no redis-server at %s (%s): "
		        "apt-get install redis-server, or set REDIS_SERVER\n", path, strerror(errno));
		return EXIT_FAILURE;
	}
	signal(SIGPIPE, SIG_IGN);
	suite_pid = getpid();
	for (int i = 0; i < NREDIS; i++)
		if (!redis_start(path, i)) {
			fprintf(stderr, "check_shared: FAIL: %s did not start on 127.0.0.1:%d\n",
			        path, redis_port[i]);
			redis_stop_all();
			return EXIT_FAILURE;
		}
	atexit(redis_stop_all);
	sr = srunner_create(shared_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	redis_stop_all();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
