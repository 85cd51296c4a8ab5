/* shared: limits that hold across a fleet, in Redis — the connection.
 * Owns the one hiredis connection (its state: starting, up, down;
 * reconnection every second; a deadline on every reply), the Lua scripts
 * (loaded at connect, called with EVALSHA, loaded again on NOSCRIPT) and
 * the calls in flight.  Each upstream's queue and leases: shared_limit.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/dns.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "clock.h"
#include "log.h"
#include "redis_url.h"
#include "shared_internal.h"
#include "xalloc.h"

#define SHARED_DEFAULT_PREFIX "fanoutd:"
#define SHARED_DEFAULT_TIMEOUT_MS 100
#define SHARED_DEFAULT_LEASE_MS 30000
#define SHARED_RETRY_MS 1000

/* --- the scripts ----------------------------------------------------------
 *
 * Both take the time from the Redis server (TIME), never from a daemon's
 * clock: the fleet's clocks need not agree.  Times are in ms.
 *
 * acquire  KEYS: leases zset, GCRA key
 *          ARGV: want, concurrency (0: none), lease, emission interval
 *                (0: no rate), tolerance, daemon id, member counter base
 *          -> {granted, ms until the rate allows the next (0: unknown, or
 *              limited by concurrency)}
 *          Leases granted are members "id:base+i" scored by their expiry. */
static const char ACQUIRE_LUA[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000\n"
	"local want = tonumber(ARGV[1])\n"
	"local limit = tonumber(ARGV[2])\n"
	"local lease = tonumber(ARGV[3])\n"
	"local interval = tonumber(ARGV[4])\n"
	"local tolerance = tonumber(ARGV[5])\n"
	"local n = want\n"
	"local delay = 0\n"
	"if limit > 0 then\n"
	"  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
	"  local held = redis.call('ZCARD', KEYS[1])\n"
	"  n = math.max(math.min(n, limit - held), 0)\n"
	"end\n"
	"if interval > 0 and n > 0 then\n"
	"  local tat = tonumber(redis.call('GET', KEYS[2]) or 0) or 0\n"
	"  if tat < now then tat = now end\n"
	"  local allowed = 0\n"
	"  while allowed < n and tat - now <= tolerance + 0.001 do\n"
	"    tat = tat + interval\n"
	"    allowed = allowed + 1\n"
	"  end\n"
	"  if allowed < n then delay = math.max(math.ceil(tat - now - tolerance), 1) end\n"
	"  n = allowed\n"
	"  if allowed > 0 then\n"
	"    redis.call('SET', KEYS[2], string.format('%.3f', tat), 'PX',\n"
	"               math.ceil(tat - now) + 1)\n"
	"  end\n"
	"end\n"
	"if limit > 0 and n > 0 then\n"
	"  local args = {}\n"
	"  local base = tonumber(ARGV[7])\n"
	"  for i = 0, n - 1 do\n"
	"    args[#args + 1] = now + lease\n"
	"    args[#args + 1] = ARGV[6] .. ':' .. string.format('%d', base + i)\n"
	"  end\n"
	"  redis.call('ZADD', KEYS[1], unpack(args))\n"
	"  redis.call('PEXPIRE', KEYS[1], math.ceil(lease * 2))\n"
	"end\n"
	"return {n, delay}\n";

/* renew    KEYS: leases zset;  ARGV: lease, members...
 *          -> how many were still held (an expired lease is never
 *             brought back: it may have been granted to another daemon) */
static const char RENEW_LUA[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000\n"
	"local lease = tonumber(ARGV[1])\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
	"local args = {}\n"
	"for i = 2, #ARGV do\n"
	"  args[#args + 1] = now + lease\n"
	"  args[#args + 1] = ARGV[i]\n"
	"end\n"
	"local n = redis.call('ZADD', KEYS[1], 'XX', 'CH', unpack(args))\n"
	"redis.call('PEXPIRE', KEYS[1], math.ceil(lease * 2))\n"
	"return n\n";

/* Release is a plain ZREM: no script. */


static const char *const script_text[NSCRIPTS] = { ACQUIRE_LUA, RENEW_LUA };

static const char *const state_name[] = { "starting", "up", "down" };

static void redis_connect(struct shared_redis *r);

/* --- calls ------------------------------------------------------------------ */

struct shared_call *shared_call_new(struct shared_redis *r, enum call_kind kind, int argc)
{
	struct shared_call *c = xcalloc(1, sizeof *c);

	c->r = r;
	c->kind = kind;
	c->script = -1;
	c->argc = argc;
	c->argv = xcalloc((size_t)argc, sizeof *c->argv);
	c->argvlen = xcalloc((size_t)argc, sizeof *c->argvlen);
	return c;
}

void shared_call_arg(struct shared_call *c, int i, const char *s)
{
	c->argv[i] = xstrdup(s);
	c->argvlen[i] = strlen(s);
}

void shared_call_argf(struct shared_call *c, int i, const char *fmt, ...)
{
	va_list ap;
	char buf[64];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	shared_call_arg(c, i, buf);
}

static void call_free(struct shared_call *c)
{
	for (int i = 0; i < c->argc; i++)
		free(c->argv[i]);
	free(c->argv);
	free(c->argvlen);
	free(c);
}

static void timeout_arm(struct shared_redis *r)
{
	struct shared_call *head = TAILQ_FIRST(&r->pending);
	struct timeval tv;

	if (head == NULL || r->ac == NULL || head->ac != r->ac) {
		event_del(r->timeout_ev);
		return;
	}
	tv = clock_timeval(head->sent_ms + r->timeout_ms - clock_now_ms());
	event_add(r->timeout_ev, &tv);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv);

/* Send c on the current connection; false (c freed or lost) when it
 * cannot be. */
bool shared_call_send(struct shared_redis *r, struct shared_call *c)
{
	if (r->ac == NULL ||
	    redisAsyncCommandArgv(r->ac, on_reply, c, c->argc, (const char **)c->argv,
	                          c->argvlen) != REDIS_OK) {
		if (c->kind == CALL_ACQUIRE)
			shared_limit_call_lost(c);
		call_free(c);
		return false;
	}
	c->ac = r->ac;
	c->sent_ms = clock_now_ms();
	r->stats.commands++;
	TAILQ_INSERT_TAIL(&r->pending, c, link);
	if (TAILQ_FIRST(&r->pending) == c)
		timeout_arm(r);
	return true;
}

bool shared_call_send_eval(struct shared_redis *r, struct shared_call *c)
{
	shared_call_arg(c, 1, r->sha[c->script]);
	return shared_call_send(r, c);
}

static void send_load(struct shared_redis *r, int script, bool last_setup)
{
	struct shared_call *c = shared_call_new(r, CALL_LOAD, 3);

	shared_call_arg(c, 0, "SCRIPT");
	shared_call_arg(c, 1, "LOAD");
	shared_call_arg(c, 2, script_text[script]);
	c->script = script;
	c->last_setup = last_setup;
	(void)shared_call_send(r, c);
}

static void send_setup(struct shared_redis *r, int argc, const char *a0, const char *a1,
                       const char *a2)
{
	struct shared_call *c = shared_call_new(r, CALL_SETUP, argc);
	const char *a[3] = { a0, a1, a2 };

	for (int i = 0; i < argc; i++)
		shared_call_arg(c, i, a[i]);
	(void)shared_call_send(r, c);
}

/* --- state ----------------------------------------------------------------- */

/* The one function that changes r->state. */
static void redis_set_state(struct shared_redis *r, enum shared_state to, const char *why)
{
	enum shared_state from = r->state;

	if (from == to)
		return;
	r->state = to;
	if (to == SHARED_DOWN) {
		r->stats.downs++;
		log_warn("redis %s: %s (%s); shared limits fall back to local ones until it answers",
		         r->display, from == SHARED_STARTING ? "cannot connect" : "down", why);
	} else if (to == SHARED_UP) {
		log_info("redis %s: %s; shared limits are held in Redis", r->display,
		         from == SHARED_STARTING ? "connected" : "back up");
	}
	log_debug("redis %s: %s -> %s", r->display, state_name[from], state_name[to]);
	shared_limits_kick(r);
}

/* The connection failed or is dropped.  free_ac: free it here (false when
 * hiredis is freeing it already: an error it saw itself). */
static void redis_fail(struct shared_redis *r, const char *why, bool free_ac)
{
	redisAsyncContext *ac = r->ac;

	r->ac = NULL;
	event_del(r->timeout_ev);
	if (ac != NULL && free_ac)
		redisAsyncFree(ac);   /* inside one of its callbacks: after it returns */
	if (r->freeing)
		return;
	if (!evtimer_pending(r->retry_ev, NULL)) {
		struct timeval tv = clock_timeval(SHARED_RETRY_MS);

		evtimer_add(r->retry_ev, &tv);
	}
	redis_set_state(r, SHARED_DOWN, why);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct shared_redis *r = arg;
	struct shared_call *head = TAILQ_FIRST(&r->pending);
	char why[64];

	(void)fd;
	(void)what;
	if (r->dns_req != NULL) {   /* the name's lookup took too long */
		evdns_getaddrinfo_cancel(r->dns_req);
		r->dns_req = NULL;
		r->stats.errors++;
		snprintf(why, sizeof why, "no address for its name in %.0f ms", r->timeout_ms);
		redis_fail(r, why, false);
		return;
	}
	if (head == NULL || r->ac == NULL)
		return;
	if (clock_now_ms() < head->sent_ms + r->timeout_ms) {
		timeout_arm(r);
		return;
	}
	r->stats.errors++;
	snprintf(why, sizeof why, "no reply in %.0f ms", r->timeout_ms);
	redis_fail(r, why, true);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct shared_redis *r = arg;

	(void)fd;
	(void)what;
	if (r->ac == NULL && r->dns_req == NULL)
		redis_connect(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct shared_redis *r = ac->data;

	if (status != REDIS_OK && ac == r->ac) {
		r->stats.errors++;
		redis_fail(r, ac->errstr, false);
	}
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct shared_redis *r = ac->data;

	(void)status;
	if (ac == r->ac) {
		r->stats.errors++;
		redis_fail(r, ac->err ? ac->errstr : "connection closed", false);
	}
}

static void connect_to(struct shared_redis *r, const char *addr);

static bool is_ip_literal(const char *h)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

/* The host name's address came (or not): connect to it.  hiredis 0.14
 * would resolve a name itself with a blocking getaddrinfo. */
static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct shared_redis *r = arg;
	char ip[INET6_ADDRSTRLEN], why[200];
	const void *a;

	if (result == EVUTIL_EAI_CANCEL) {   /* r may be gone: touch nothing */
		if (res != NULL)
			evutil_freeaddrinfo(res);
		return;
	}
	r->dns_req = NULL;
	event_del(r->timeout_ev);
	if (result != 0 || res == NULL) {
		snprintf(why, sizeof why, "cannot resolve %s: %s", r->host,
		         evutil_gai_strerror(result));
		if (res != NULL)
			evutil_freeaddrinfo(res);
		r->stats.errors++;
		redis_fail(r, why, false);
		return;
	}
	a = res->ai_family == AF_INET6
	    ? (const void *)&((const struct sockaddr_in6 *)res->ai_addr)->sin6_addr
	    : (const void *)&((const struct sockaddr_in *)res->ai_addr)->sin_addr;
	if (inet_ntop(res->ai_family, a, ip, sizeof ip) == NULL) {
		evutil_freeaddrinfo(res);
		redis_fail(r, "cannot use the address its name resolved to", false);
		return;
	}
	evutil_freeaddrinfo(res);
	connect_to(r, ip);
}

/* One attempt: resolve a host name first (asynchronously, within
 * timeout_ms), then connect_to. */
static void redis_connect(struct shared_redis *r)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	struct timeval tv = clock_timeval(r->timeout_ms);

	if (r->unix_socket || is_ip_literal(r->host)) {
		connect_to(r, r->host);
		return;
	}
	if (r->dns == NULL) {
		r->dns = evdns_base_new(r->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
		if (r->dns != NULL)
			(void)evdns_base_load_hosts(r->dns, NULL);
	}
	if (r->dns == NULL) {
		redis_fail(r, "cannot set up DNS", false);
		return;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	evtimer_add(r->timeout_ev, &tv);   /* the lookup counts against the attempt */
	req = evdns_getaddrinfo(r->dns, r->host, NULL, &hints, on_resolved, r);
	r->dns_req = req;   /* NULL when it answered at once (/etc/hosts) */
}

/* One attempt's connection: then AUTH / SELECT, a PING and the scripts,
 * all pipelined; the reply to the last SCRIPT LOAD brings it up. */
static void connect_to(struct shared_redis *r, const char *addr)
{
	redisAsyncContext *ac;
	char db[16];

	ac = r->unix_socket ? redisAsyncConnectUnix(addr) : redisAsyncConnect(addr, r->port);
	if (ac == NULL) {
		redis_fail(r, "out of memory", false);
		return;
	}
	if (ac->err) {
		char why[128];

		snprintf(why, sizeof why, "%s", ac->errstr);
		redisAsyncFree(ac);
		r->stats.errors++;
		redis_fail(r, why, false);
		return;
	}
	ac->data = r;
	if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
		redisAsyncFree(ac);
		redis_fail(r, "cannot attach to the event loop", false);
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	r->ac = ac;
	if (r->pass != NULL && r->user != NULL)
		send_setup(r, 3, "AUTH", r->user, r->pass);
	else if (r->pass != NULL)
		send_setup(r, 2, "AUTH", r->pass, NULL);
	if (r->db != 0) {
		snprintf(db, sizeof db, "%d", r->db);
		send_setup(r, 2, "SELECT", db, NULL);
	}
	send_setup(r, 1, "PING", NULL, NULL);
	for (int s = 0; s < NSCRIPTS; s++)
		send_load(r, s, s == NSCRIPTS - 1);
}

static bool is_noscript(const redisReply *reply)
{
	return reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0;
}

/* The reply to c came (reply == NULL: its connection is gone). */
static void on_reply(redisAsyncContext *ac, void *reply_, void *priv)
{
	struct shared_call *c = priv;
	struct shared_redis *r = c->r;
	const redisReply *reply = reply_;

	TAILQ_REMOVE(&r->pending, c, link);
	if (reply == NULL || ac != r->ac) {
		if (reply == NULL && ac == r->ac) {   /* hiredis saw the error */
			r->stats.errors++;
			redis_fail(r, ac->err ? ac->errstr : "connection lost", false);
		}
		if (c->kind == CALL_ACQUIRE)
			shared_limit_call_lost(c);
		call_free(c);
		return;
	}
	r->stats.replies++;
	timeout_arm(r);
	if (is_noscript(reply) && !c->retried &&
	    (c->kind == CALL_ACQUIRE || c->kind == CALL_RENEW)) {
		log_info("redis %s: scripts gone (NOSCRIPT): loading them again", r->display);
		send_load(r, c->script, false);
		c->retried = true;
		(void)shared_call_send(r, c);   /* after the load: Redis runs them in order */
		return;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		char why[160];

		r->stats.errors++;
		snprintf(why, sizeof why, "error reply: %s", reply->str);
		if (c->kind == CALL_ACQUIRE)
			shared_limit_call_lost(c);
		call_free(c);
		redis_fail(r, why, true);
		return;
	}
	switch (c->kind) {
	case CALL_LOAD:
		if (reply->type == REDIS_REPLY_STRING && reply->len == 40)
			memcpy(r->sha[c->script], reply->str, 41);
		if (c->last_setup)
			redis_set_state(r, SHARED_UP, "");
		break;
	case CALL_ACQUIRE:
		shared_limit_acquire_reply(c, reply);
		break;
	case CALL_SETUP:
	case CALL_RENEW:
	case CALL_RELEASE:
		break;
	}
	call_free(c);
}

/* --- shared_redis ------------------------------------------------------------ */

static void make_id(char id[17])
{
	unsigned char b[8];

	if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
		uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
		             (uint64_t)(clock_now_ms() * 1000.0);

		memcpy(b, &x, sizeof b);
	}
	for (size_t i = 0; i < sizeof b; i++)
		snprintf(id + 2 * i, 3, "%02x", b[i]);
}

static char *make_display(const struct redis_url *u)
{
	if (u->path != NULL)
		return xasprintf("unix:%s", u->path);
	if (strchr(u->host, ':') != NULL)
		return xasprintf("[%s]:%d/%d", u->host, u->port, u->db);
	return xasprintf("%s:%d/%d", u->host, u->port, u->db);
}

struct shared_redis *shared_redis_new(struct event_base *base,
                                      const struct shared_redis_settings *s)
{
	struct shared_redis *r;
	struct redis_url u;
	char err[256];

	if (redis_url_parse(s->url, &u, err, sizeof err) < 0) {
		log_error("[redis] %s", err);
		return NULL;
	}
	r = xcalloc(1, sizeof *r);
	r->base = base;
	r->display = make_display(&u);
	/* r takes u's strings (freed in shared_redis_free) */
	r->unix_socket = u.path != NULL;
	r->host = u.path != NULL ? u.path : u.host;
	r->port = u.port;
	r->db = u.db;
	r->user = u.user;
	r->pass = u.pass;
	r->prefix = xstrdup(s->key_prefix != NULL ? s->key_prefix : SHARED_DEFAULT_PREFIX);
	r->timeout_ms = s->timeout_ms > 0 ? (double)s->timeout_ms : SHARED_DEFAULT_TIMEOUT_MS;
	r->lease_ms = s->lease_ms > 0 ? (double)s->lease_ms : SHARED_DEFAULT_LEASE_MS;
	make_id(r->id);
	r->next_seq = 1;
	r->state = SHARED_STARTING;
	TAILQ_INIT(&r->pending);
	TAILQ_INIT(&r->limits);
	r->retry_ev = xcheck(evtimer_new(base, on_retry, r));
	r->timeout_ev = xcheck(evtimer_new(base, on_timeout, r));
	redis_connect(r);
	return r;
}

void shared_redis_free(struct shared_redis *r)
{
	if (r == NULL)
		return;
	while (!TAILQ_EMPTY(&r->limits))   /* the caller's job; do not leak */
		shared_limit_free(TAILQ_FIRST(&r->limits));
	r->freeing = true;
	if (r->dns_req != NULL)
		evdns_getaddrinfo_cancel(r->dns_req);
	r->dns_req = NULL;
	redis_fail(r, "freed", true);      /* lost calls run now, with NULL */
	if (r->dns != NULL)
		evdns_base_free(r->dns, 0);
	event_free(r->retry_ev);
	event_free(r->timeout_ev);
	free(r->host);
	free(r->user);
	free(r->pass);
	free(r->display);
	free(r->prefix);
	free(r);
}

bool shared_redis_up(const struct shared_redis *r)
{
	return r->state == SHARED_UP;
}

void shared_redis_get_stats(const struct shared_redis *r, struct shared_redis_stats *out)
{
	*out = r->stats;
}

const char *shared_redis_id(const struct shared_redis *r)
{
	return r->id;
}
