/* dns: names to addresses without blocking.
 *
 *   IP literal or ".invalid"            -> answered at once
 *   /etc/hosts (evdns_getaddrinfo on a base with no nameservers, which
 *   answers from the hosts file at once or not at all)
 *   nameservers: A and AAAA in parallel (evdns_base_resolve_ipv4/6,
 *   which report the TTL that evdns_getaddrinfo hides)
 *
 * One lookup per name at a time: later askers wait on the same entry.
 * Answers are cached for their TTL; failures are not cached. */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "dns.h"
#include "clock.h"
#include "keyhash.h"
#include "log.h"
#include "netaddr.h"
#include "xalloc.h"

#define NBUCKETS 256
#define HOSTS_TTL_MS 60000.0    /* hosts-file answers: re-read every minute */
#define SWEEP_EVERY_S 60        /* expired entries are dropped this often */

struct dns_request {
	struct dns_request *next;
	struct dns_entry *entry;
	dns_cb cb;
	void *arg;
};

struct dns_entry {
	char *host;                     /* lower-case (owned) */
	struct dns_answer ans;
	double expires_ms;              /* 0 = no answer yet */
	bool pending;                   /* a lookup is under way */
	int results;                    /* A/AAAA answers still to come */
	int error;                      /* evdns error of the A query, 0 = none */
	long ttl_s;                     /* smallest TTL seen */
	struct dns_request *waiters;    /* FIFO */
	struct dns_entry *next;         /* hash chain */
	struct dns *dns;
};

struct dns {
	struct evdns_base *hosts;       /* /etc/hosts only (owned) */
	struct evdns_base *ns;          /* the nameservers (owned) */
	struct dns_entry *buckets[NBUCKETS];
	unsigned long queries;
	struct event *sweep;            /* drops expired entries (owned) */
};

static void free_entry(struct dns_entry *e);

/* A cache of every name ever asked for would grow for ever: drop the
 * entries whose answer expired and that nobody is waiting on. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	struct dns_entry **p, *e;
	double now = clock_now_ms();
	size_t b;

	(void)fd;
	(void)what;
	for (b = 0; b < NBUCKETS; b++) {
		for (p = &d->buckets[b]; (e = *p) != NULL;) {
			if (!e->pending && e->waiters == NULL && e->expires_ms < now) {
				*p = e->next;
				free_entry(e);
			} else {
				p = &e->next;
			}
		}
	}
}

struct dns *dns_new(struct event_base *base, const char *resolv_conf)
{
	struct dns *d = xcalloc(1, sizeof *d);
	struct timeval every = { SWEEP_EVERY_S, 0 };
	int rc;

	d->hosts = evdns_base_new(base, 0);
	evdns_base_load_hosts(d->hosts, NULL);
	d->ns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	rc = evdns_base_resolv_conf_parse(d->ns, DNS_OPTION_NAMESERVERS | DNS_OPTION_SEARCH |
	                                  DNS_OPTION_MISC, resolv_conf);
	if (rc != 0)
		log_warn("cannot use %s (evdns error %d): names outside /etc/hosts "
		         "will not resolve", resolv_conf, rc);
	d->sweep = xcheck(event_new(base, -1, EV_PERSIST, on_sweep, d));
	event_add(d->sweep, &every);
	return d;
}

static void free_entry(struct dns_entry *e)
{
	struct dns_request *r, *next;

	for (r = e->waiters; r != NULL; r = next) {
		next = r->next;
		free(r);
	}
	free(e->host);
	free(e);
}

void dns_free(struct dns *d)
{
	struct dns_entry *e, *next;
	size_t b;

	if (d == NULL)
		return;
	event_free(d->sweep);
	/* abort lookups still running, without their callbacks */
	evdns_base_free(d->ns, 0);
	evdns_base_free(d->hosts, 0);
	for (b = 0; b < NBUCKETS; b++) {
		for (e = d->buckets[b]; e != NULL; e = next) {
			next = e->next;
			free_entry(e);
		}
	}
	free(d);
}

unsigned long dns_queries(const struct dns *d)
{
	return d->queries;
}

/* --- answers ----------------------------------------------------------- */

static bool literal(const char *host, struct dns_answer *ans)
{
	memset(ans, 0, sizeof *ans);
	if (!netaddr_parse_ip(host, &ans->addr[0]))
		return false;
	ans->n = 1;
	return true;
}

/* RFC 6761: ".invalid" never resolves; answer so without asking anyone. */
static bool reserved_invalid(const char *host)
{
	size_t n = strlen(host);

	if (n > 0 && host[n - 1] == '.')
		n--;
	return (n == 7 && strncasecmp(host, "invalid", 7) == 0) ||
	       (n > 8 && strncasecmp(host + n - 8, ".invalid", 8) == 0);
}

static void add_addr(struct dns_answer *ans, int family, const void *addr)
{
	struct sockaddr_storage *ss;

	if (ans->n == DNS_MAX_ADDRS)
		return;
	ss = &ans->addr[ans->n++];
	memset(ss, 0, sizeof *ss);
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET)
		memcpy(&((struct sockaddr_in *)ss)->sin_addr, addr, 4);
	else
		memcpy(&((struct sockaddr_in6 *)ss)->sin6_addr, addr, 16);
}

/* Hand the entry's outcome to everyone waiting, first come first served.
 * A callback may resolve again or cancel another waiter: pop one at a
 * time. */
static void deliver(struct dns_entry *e, const char *error)
{
	struct dns_request *r;
	struct dns_answer ans = e->ans;

	e->pending = false;
	while ((r = e->waiters) != NULL) {
		e->waiters = r->next;
		r->cb(error, &ans, r->arg);
		free(r);
	}
}

static void finish_lookup(struct dns_entry *e)
{
	const char *error = NULL;

	if (e->ans.n > 0) {
		e->expires_ms = clock_now_ms() + (double)e->ttl_s * 1000.0;
	} else {
		error = evdns_err_to_string(e->error ? e->error : DNS_ERR_NODATA);
		e->expires_ms = 0;   /* not cached */
	}
	deliver(e, error);
}

static void on_answer(int result, char type, int count, int ttl, void *addresses, void *arg)
{
	struct dns_entry *e = arg;
	int i;

	log_debug("dns: %s type %d result %d count %d ttl %d", e->host, type, result, count, ttl);
	if (result == DNS_ERR_NONE) {
		for (i = 0; i < count; i++)
			add_addr(&e->ans, type == DNS_IPv4_A ? AF_INET : AF_INET6,
			         (const char *)addresses + i * (type == DNS_IPv4_A ? 4 : 16));
		if (ttl >= 0 && ttl < e->ttl_s)
			e->ttl_s = ttl;
	} else if (e->error == 0) {
		e->error = result;   /* failures may not say which query type */
	}
	if (--e->results == 0)
		finish_lookup(e);
}

/* IPv4 first: most upstreams and networks still prefer it. */
static void sort_v4_first(struct dns_answer *ans)
{
	struct dns_answer sorted;
	size_t i;

	memset(&sorted, 0, sizeof sorted);
	for (i = 0; i < ans->n; i++)
		if (ans->addr[i].ss_family == AF_INET)
			sorted.addr[sorted.n++] = ans->addr[i];
	for (i = 0; i < ans->n; i++)
		if (ans->addr[i].ss_family != AF_INET)
			sorted.addr[sorted.n++] = ans->addr[i];
	*ans = sorted;
}

static void on_hosts(int result, struct evutil_addrinfo *ai, void *arg)
{
	struct dns_answer *ans = arg;
	struct evutil_addrinfo *p;

	if (result != 0)
		return;
	for (p = ai; p != NULL; p = p->ai_next) {
		if (p->ai_family == AF_INET)
			add_addr(ans, AF_INET, &((struct sockaddr_in *)p->ai_addr)->sin_addr);
		else if (p->ai_family == AF_INET6)
			add_addr(ans, AF_INET6, &((struct sockaddr_in6 *)p->ai_addr)->sin6_addr);
	}
	evutil_freeaddrinfo(ai);
	sort_v4_first(ans);
}

/* The hosts file answers at once or not at all: a base with no
 * nameservers has nobody else to ask, so a request still open after the
 * call is a miss, withdrawn before anything is sent. */
static bool from_hosts(struct dns *d, const char *host, struct dns_answer *ans)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *r;

	memset(ans, 0, sizeof *ans);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r = evdns_getaddrinfo(d->hosts, host, NULL, &hints, on_hosts, ans);
	if (r != NULL)
		evdns_getaddrinfo_cancel(r);
	return ans->n > 0;
}

/* Ask the nameservers for A and AAAA at once; finish_lookup() runs when
 * both have answered. */
static void start_lookup(struct dns *d, struct dns_entry *e)
{
	e->pending = true;
	memset(&e->ans, 0, sizeof e->ans);
	e->error = 0;
	e->ttl_s = 24 * 3600;
	e->results = 2;
	d->queries++;
	/* NULL: the query could not even be made (e.g. a name too long) */
	if (evdns_base_resolve_ipv4(d->ns, e->host, 0, on_answer, e) == NULL)
		on_answer(DNS_ERR_UNKNOWN, DNS_IPv4_A, 0, 0, NULL, e);
	if (evdns_base_resolve_ipv6(d->ns, e->host, 0, on_answer, e) == NULL)
		on_answer(DNS_ERR_UNKNOWN, DNS_IPv6_AAAA, 0, 0, NULL, e);
}

static struct dns_entry *find_entry(struct dns *d, const char *host, bool create)
{
	unsigned b = keyhash(host, NBUCKETS);
	struct dns_entry *e;

	for (e = d->buckets[b]; e != NULL; e = e->next)
		if (strcmp(e->host, host) == 0)
			return e;
	if (!create)
		return NULL;
	e = xcalloc(1, sizeof *e);
	e->host = xstrdup(host);
	e->dns = d;
	e->next = d->buckets[b];
	d->buckets[b] = e;
	return e;
}

struct dns_request *dns_resolve(struct dns *d, const char *host, dns_cb cb, void *arg)
{
	struct dns_answer ans;
	struct dns_entry *e;
	struct dns_request *r, **tail;

	if (literal(host, &ans)) {
		cb(NULL, &ans, arg);
		return NULL;
	}
	if (reserved_invalid(host)) {
		cb("no such host (.invalid names never resolve, RFC 6761)", NULL, arg);
		return NULL;
	}
	e = find_entry(d, host, true);
	if (!e->pending && e->expires_ms > clock_now_ms()) {
		ans = e->ans;
		cb(NULL, &ans, arg);
		return NULL;
	}
	if (!e->pending && from_hosts(d, host, &e->ans)) {
		e->expires_ms = clock_now_ms() + HOSTS_TTL_MS;
		ans = e->ans;
		cb(NULL, &ans, arg);
		return NULL;
	}
	r = xcalloc(1, sizeof *r);
	r->entry = e;
	r->cb = cb;
	r->arg = arg;
	for (tail = &e->waiters; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = r;
	if (e->pending)
		return r;
	start_lookup(d, e);
	return e->pending ? r : NULL;   /* answered (and r freed) at once */
}

void dns_cancel(struct dns_request *r)
{
	struct dns_request **p;

	for (p = &r->entry->waiters; *p != NULL; p = &(*p)->next) {
		if (*p == r) {
			*p = r->next;
			free(r);
			return;
		}
	}
}
