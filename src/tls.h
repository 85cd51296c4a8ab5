/* tls: OpenSSL client contexts and per-connection set-up for https
 * upstreams.  Owns a small cache of SSL_CTX keyed by (verify, ca_file):
 * every upstream with the same settings shares one context.  Also turns
 * a failed handshake into the message the user sees. */
#ifndef FANOUTD_TLS_H
#define FANOUTD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

struct tls_cache;

struct tls_cache *tls_cache_new(void);
void tls_cache_free(struct tls_cache *tc);

/* The context for these settings, created on first use (TLS >= 1.2,
 * peer verification against ca_file or the system store unless verify
 * is false).  Borrowed: the cache owns it.  NULL with err set when the
 * CA file cannot be loaded. */
SSL_CTX *tls_context(struct tls_cache *tc, bool verify, const char *ca_file,
                     char *err, size_t errlen);

/* A new SSL for one connection to host: SNI (for names, not IP literals)
 * and host-name or IP checking of the certificate.  NULL on failure. */
SSL *tls_new_ssl(SSL_CTX *ctx, const char *host, bool verify);

/* Why the handshake on ssl failed: "untrusted certificate (…)",
 * "certificate does not match host", "certificate expired", or
 * "TLS handshake failed: …" with OpenSSL's reason (err, from the
 * bufferevent, 0 if unknown).  Returns a malloc'd string. */
char *tls_failure_message(SSL *ssl, unsigned long err);

#endif
