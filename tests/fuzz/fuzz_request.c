/* fuzz_request: request_parse() (src/request.c) on arbitrary bytes — the
 * short form, the long form and everything in between — with a small
 * max_batch_size and no ACL, then request_free().  Checks the contract of
 * request.h cheaply on every input:
 *   success: n <= max_batch_size; every item has url, host, target,
 *            upstream_key and host_header; target starts with '/'; port in
 *            1..65535; upstream_key matches scheme, host and port; headers
 *            are non-NULL strings; timeouts in range; an id is a JSON
 *            string or a number token found in the input as it is;
 *   failure: err is a non-empty NUL-terminated string within errlen and
 *            the batch_request is empty. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz.h"
#include "request.h"
#include "units.h"

#include <arpa/inet.h>
#include <string.h>

#define MAX_BATCH 8
#define MAX_TIMEOUT_MS (24L * 3600 * 1000)

/* The id is JSON text of a string or a number; a number is the client's
 * own token, so it also occurs in the input as it is. */
static void check_id(const struct request_item *it, size_t i, const uint8_t *data, size_t size)
{
	json_t *v;

	if (it->id_json == NULL)
		return;
	v = json_loads(it->id_json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	FUZZ_CHECK(v != NULL && (json_is_string(v) || json_is_number(v)),
	           "item %zu: id \"%s\" is not a JSON string or number", i, it->id_json);
	if (json_is_number(v))
		FUZZ_CHECK(memmem(data, size, it->id_json, strlen(it->id_json)) != NULL,
		           "item %zu: id %s is not the client's text", i, it->id_json);
	json_decref(v);
}

static void check_item(const struct request_item *it, size_t i, const uint8_t *data,
                       size_t size)
{
	char *key, norm[UNITS_UPSTREAM_KEY_MAX], msg[512];
	unsigned char bin[16];

	FUZZ_CHECK(it->url && it->host && it->target && it->upstream_key && it->host_header,
	           "item %zu has a NULL string", i);
	FUZZ_CHECK(it->host[0] != '\0', "item %zu: empty host", i);
	FUZZ_CHECK(it->target[0] == '/', "item %zu: target \"%s\"", i, it->target);
	FUZZ_CHECK(it->port >= 1 && it->port <= 65535, "item %zu: port %d", i, it->port);
	FUZZ_CHECK((unsigned)it->method <= REQUEST_METHOD_PATCH, "item %zu: method %d", i, it->method);
	FUZZ_CHECK(request_method_name(it->method) != NULL, "item %zu", i);
	FUZZ_CHECK(it->timeout_ms == -1 || (it->timeout_ms >= 1 && it->timeout_ms <= MAX_TIMEOUT_MS),
	           "item %zu: timeout_ms %ld", i, it->timeout_ms);
	FUZZ_CHECK(it->nheaders == 0 || it->headers != NULL, "item %zu", i);
	for (size_t h = 0; h < it->nheaders; h++) {
		FUZZ_CHECK(it->headers[h].name && it->headers[h].value,
		           "item %zu header %zu is NULL", i, h);
		FUZZ_CHECK(it->headers[h].name[0] != '\0', "item %zu header %zu: empty name", i, h);
		FUZZ_CHECK(strpbrk(it->headers[h].value, "\r\n") == NULL,
		           "item %zu header %zu: CR or LF in value", i, h);
	}
	FUZZ_CHECK(it->body != NULL || it->body_len == 0, "item %zu: body_len without body", i);
	check_id(it, i, data, size);
	/* the key the pools and the config use: scheme://host:port, [v6] */
	FUZZ_CHECK(asprintf(&key, strchr(it->host, ':') ? "%s://[%s]:%d" : "%s://%s:%d",
	                    it->tls ? "https" : "http", it->host, it->port) > 0, "asprintf");
	FUZZ_CHECK(strcmp(key, it->upstream_key) == 0, "item %zu: upstream_key \"%s\", want \"%s\"",
	           i, it->upstream_key, key);
	free(key);
	/* a bracketed host is an IPv6 address, and the key is in the normal
	 * form of the config's [upstream "..."] sections (upstream.c keys its
	 * per-upstream limits by it) */
	if (strchr(it->upstream_key, '['))
		FUZZ_CHECK(inet_pton(AF_INET6, it->host, bin) == 1,
		           "item %zu: bracketed host \"%s\" is not an IPv6 address", i, it->host);
	if (units_normalise_upstream(it->upstream_key, norm, msg, sizeof msg) == 0)
		FUZZ_CHECK(strcmp(norm, it->upstream_key) == 0,
		           "item %zu: upstream_key \"%s\", config normal form \"%s\"",
		           i, it->upstream_key, norm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request_limits lim = { .max_batch_size = MAX_BATCH, .acl = NULL };
	struct batch_request br;
	char err[256];
	int rc;

	memset(err, 0x55, sizeof err);
	memset(&br, 0xa5, sizeof br);   /* request_parse must fill all of it */
	rc = request_parse((const char *)data, size, &lim, &br, err, sizeof err);
	if (rc == 0) {
		FUZZ_CHECK(br.n <= MAX_BATCH, "n = %zu", br.n);
		FUZZ_CHECK(br.items != NULL, "items NULL with n = %zu", br.n);
		FUZZ_CHECK(br.mode == BATCH_MODE_ALL || br.mode == BATCH_MODE_SETTLED,
		           "mode %d", br.mode);
		FUZZ_CHECK(br.timeout_ms == -1 || (br.timeout_ms >= 1 && br.timeout_ms <= MAX_TIMEOUT_MS),
		           "timeout_ms %ld", br.timeout_ms);
		FUZZ_CHECK(br.max_concurrency == -1 || br.max_concurrency >= 1,
		           "max_concurrency %ld", br.max_concurrency);
		for (size_t i = 0; i < br.n; i++)
			check_item(&br.items[i], i, data, size);
	} else {
		FUZZ_CHECK(rc == -1, "rc %d", rc);
		FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL, "err not NUL-terminated");
		FUZZ_CHECK(err[0] != '\0', "empty err");
		/* "empty": nothing to free (the scalars may be the defaults) */
		FUZZ_CHECK(br.items == NULL && br.n == 0,
		           "batch_request not empty after failure: %s", err);
	}
	request_free(&br);
	FUZZ_CHECK(br.items == NULL && br.n == 0, "request_free left items");
	return 0;
}
