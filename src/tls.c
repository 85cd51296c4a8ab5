/* tls: client-side OpenSSL for https upstreams.  Verification is on
 * unless an upstream says tls_verify = no (warned about at start); it
 * checks the chain against the system store or ca_file and the host name
 * (or IP address) with OpenSSL's own checks, never by hand. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "netaddr.h"
#include "tls.h"
#include "xalloc.h"

struct tls_entry {
	bool verify;
	char *ca_file;          /* NULL = system store (owned) */
	SSL_CTX *ctx;           /* owned */
	struct tls_entry *next;
};

struct tls_cache {
	struct tls_entry *entries;
};

struct tls_cache *tls_cache_new(void)
{
	return xcalloc(1, sizeof(struct tls_cache));
}

void tls_cache_free(struct tls_cache *tc)
{
	struct tls_entry *e, *next;

	if (tc == NULL)
		return;
	for (e = tc->entries; e != NULL; e = next) {
		next = e->next;
		SSL_CTX_free(e->ctx);
		free(e->ca_file);
		free(e);
	}
	free(tc);
}

static bool same_ca(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static SSL_CTX *new_context(bool verify, const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int ok;

	if (ctx == NULL) {
		snprintf(err, errlen, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* keep-alive reuse makes session resumption of little use; without a
	 * session cache every connection is a full, checked handshake */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
	             : SSL_CTX_set_default_verify_paths(ctx);
	if (!ok) {
		/* a system error (no such file) has no reason string */
		const char *why = ERR_reason_error_string(ERR_get_error());

		snprintf(err, errlen, "cannot load CA certificates from %s: %s",
		         ca_file ? ca_file : "the system store", why ? why : "cannot read it");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *tls_context(struct tls_cache *tc, bool verify, const char *ca_file,
                     char *err, size_t errlen)
{
	struct tls_entry *e;

	for (e = tc->entries; e != NULL; e = e->next)
		if (e->verify == verify && same_ca(e->ca_file, ca_file))
			return e->ctx;
	e = xcalloc(1, sizeof *e);
	e->ctx = new_context(verify, ca_file, err, errlen);
	if (e->ctx == NULL) {
		free(e);
		return NULL;
	}
	e->verify = verify;
	e->ca_file = ca_file ? xstrdup(ca_file) : NULL;
	e->next = tc->entries;
	tc->entries = e;
	return e->ctx;
}

SSL *tls_new_ssl(SSL_CTX *ctx, const char *host, bool verify)
{
	SSL *ssl = SSL_new(ctx);
	struct sockaddr_storage ss;
	bool ip = netaddr_parse_ip(host, &ss);

	if (ssl == NULL)
		return NULL;
	/* RFC 6066: SNI carries host names only */
	if (!ip && !SSL_set_tlsext_host_name(ssl, host))
		goto fail;
	if (verify) {
		X509_VERIFY_PARAM *param = SSL_get0_param(ssl);

		if (ip ? !X509_VERIFY_PARAM_set1_ip_asc(param, host)
		       : !X509_VERIFY_PARAM_set1_host(param, host, 0))
			goto fail;
	}
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

char *tls_failure_message(SSL *ssl, unsigned long err)
{
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	char reason[256] = "";

	if (err != 0)
		ERR_error_string_n(err, reason, sizeof reason);
	switch (v) {
	case X509_V_OK:
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return xstrdup("certificate does not match host");
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return xstrdup("certificate expired");
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return xstrdup("certificate not yet valid");
	default:
		return xasprintf("untrusted certificate (%s)", X509_verify_cert_error_string(v));
	}
	return xasprintf("TLS handshake failed%s%s", reason[0] ? ": " : "", reason);
}
