/* dns: asynchronous name resolution with a cache.  Owns two evdns bases
 * (one that only knows /etc/hosts, one that asks the nameservers of
 * resolv.conf), the cache of answers (kept for their TTL) and the
 * requests waiting for an answer.  Never blocks the event loop. */
#ifndef FANOUTD_DNS_H
#define FANOUTD_DNS_H

#include <stddef.h>
#include <sys/socket.h>
#include <event2/event.h>

#define DNS_MAX_ADDRS 8

struct dns_answer {
	size_t n;
	struct sockaddr_storage addr[DNS_MAX_ADDRS];   /* port 0; IPv4 first */
};

/* error is NULL on success, else the resolver's reason; ans is valid only
 * during the call. */
typedef void (*dns_cb)(const char *error, const struct dns_answer *ans, void *arg);

struct dns;
struct dns_request;

/* resolv_conf: the file to read nameservers and options from. */
struct dns *dns_new(struct event_base *base, const char *resolv_conf);
void dns_free(struct dns *d);

/* Resolve host.  When the answer is at hand (cache, hosts file, an IP
 * literal, a reserved name) cb runs before this returns, and the result
 * is NULL; otherwise the request, which dns_cancel() can withdraw. */
struct dns_request *dns_resolve(struct dns *d, const char *host, dns_cb cb, void *arg);

/* Withdraw a request; its callback will not run. */
void dns_cancel(struct dns_request *r);

/* Lookups sent to the nameservers so far (fanoutd_dns_queries_total in
 * /metrics). */
unsigned long dns_queries(const struct dns *d);

#endif
