/* request: parses and validates one batch request body (the short form, a
 * JSON array of URLs, or the long form object) into a struct
 * batch_request.  Pure: no I/O.  Everything is checked here, before any
 * byte goes upstream; the caller owns the result and frees it with
 * request_free(). */
#ifndef FANOUTD_REQUEST_H
#define FANOUTD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct retry_policy;   /* retry.h */

enum batch_mode {
	BATCH_MODE_ALL,        /* fail fast: the first failure cancels the rest */
	BATCH_MODE_SETTLED,    /* wait for every outcome */
};

/* The methods evhttp can send; the order matches nothing outside. */
enum request_method {
	REQUEST_METHOD_GET, REQUEST_METHOD_HEAD, REQUEST_METHOD_POST, REQUEST_METHOD_PUT,
	REQUEST_METHOD_DELETE, REQUEST_METHOD_OPTIONS, REQUEST_METHOD_PATCH,
};

struct request_header {
	const char *name;      /* as the client wrote it; owned or borrowed, */
	const char *value;     /* see request_item.nheaders_owned */
};

struct request_item {
	char *url;             /* as given (owned) */
	char *id_json;         /* client tag as JSON text, or NULL (owned): a
	                        * string, or a number spelled as the client
	                        * wrote it */
	enum request_method method;
	bool tls;              /* https */
	char *host;            /* lower-case, IPv6 without brackets (owned) */
	int port;              /* explicit or the scheme's default */
	char *target;          /* "/path?query", never empty (owned) */
	char *upstream_key;    /* "http://host:port", [v6] bracketed (owned) */
	char *host_header;     /* Host: value, port only if not default (owned) */
	struct request_header *headers; /* batch headers merged in (array owned) */
	size_t nheaders;
	size_t nheaders_owned; /* headers[0..nheaders_owned) own their strings;
	                        * the rest borrow the batch's (batch_headers
	                        * below) or static text, so 10,000 requests do
	                        * not hold 10,000 copies of a batch's token */
	char *body;            /* NULL = no body (owned) */
	size_t body_len;
	long timeout_ms;       /* -1 = the configured request_timeout */
	bool decompress;       /* undo the answer's Content-Encoding (default) */
	bool collapse;         /* may join an identical request in flight
	                        * (collapse = yes upstreams; default true) */
	struct retry_policy *retry;  /* owned; NULL: none given (the batch's
	                              * policy, then the config's, apply) */
};

struct batch_request {
	struct request_item *items;   /* owned array of n items */
	size_t n;
	enum batch_mode mode;
	long timeout_ms;              /* -1 = the configured batch_timeout */
	long max_concurrency;         /* -1 = no per-batch cap */
	bool decompress;              /* the items' default (true) */
	struct retry_policy *retry;   /* owned; NULL: none given.  Not copied
	                               * into the items: an item's own policy
	                               * overrides it field by field */
	struct request_header *batch_headers;   /* owned, strings too; the */
	size_t nbatch_headers;                  /* items' lists point into them */
	long progress_ms;             /* streamed answers: a progress line this
	                               * often; -1 = none */
};

struct acl;

struct request_limits {
	size_t max_batch_size;
	const char *batch_size_key;   /* its config key, for the message;
	                               * NULL = "max_batch_size" */
	const struct acl *acl;        /* allow_hosts / deny_networks, or NULL */
};

/* Parse len bytes of data.  On success returns 0 and fills *out.  On a
 * bad request returns -1, leaves *out empty and writes a message naming
 * the offending element (e.g. `[3]: unsupported scheme "ftp"`) into err.
 * A batch longer than max_batch_size, or whose JSON tree would cost too
 * much memory, is refused from one pass over the bytes (jsonscan.h),
 * before the tree is built.  data is only borrowed: numbers are copied
 * out as the client spelled them. */
int request_parse(const char *data, size_t len, const struct request_limits *lim,
                  struct batch_request *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

void request_free(struct batch_request *br);

/* A request of its own, for what outlives its batch (a collapsed
 * request, collapse.c): every string and header copied (owned), no id,
 * no retry policy, the configured timeout (timeout_ms -1). */
void request_item_copy(struct request_item *dst, const struct request_item *src);
void request_item_free(struct request_item *it);

const char *request_method_name(enum request_method m);

/* Does the item carry this header (names compared without case)? */
bool request_item_has_header(const struct request_item *it, const char *name);

#endif
