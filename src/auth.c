/* auth: the bearer token.  Compared with CRYPTO_memcmp over the token's
 * full length whatever was sent, so the time taken says nothing about how
 * much of a guess was right; wiped with OPENSSL_cleanse when freed. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "xalloc.h"

/* The token is compared in constant time and never logged. */
enum auth_result auth_check(const char *token, const char *h)
{
	const char *given;
	size_t want, have;
	int differ;

	if (token == NULL)
		return AUTH_OK;
	/* "Bearer" alone (a field value loses its trailing space) is the
	 * scheme with an empty token: a wrong one, not a missing one */
	if (h != NULL && strcasecmp(h, "Bearer") == 0)
		return AUTH_WRONG;
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return AUTH_MISSING;
	given = h + 7;
	while (*given == ' ')
		given++;
	want = strlen(token);
	have = strlen(given);
	/* always compare want bytes, so the time says nothing of the content */
	differ = CRYPTO_memcmp(have == want ? given : token, token, want);
	return have == want && differ == 0 ? AUTH_OK : AUTH_WRONG;
}

/* The longest token accepted; a real one is 32-64 characters. */
#define TOKEN_MAX 4096

int auth_token_read(const char *path, char **token, char *err, size_t errlen)
{
	char buf[TOKEN_MAX + 1];
	FILE *f;
	size_t n, i;
	int failed;

	*token = NULL;
	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errlen, "auth_token_file %s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof buf, f);
	failed = ferror(f) ? errno : 0;
	fclose(f);
	if (failed != 0 || n == sizeof buf) {
		snprintf(err, errlen, "auth_token_file %s: %s", path,
		         failed != 0 ? strerror(failed) : "longer than 4096 bytes");
		OPENSSL_cleanse(buf, sizeof buf);
		return -1;
	}
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	for (i = 0; i < n; i++)
		if ((unsigned char)buf[i] <= ' ' || buf[i] == 0x7f)
			break;
	if (n == 0 || i < n) {
		snprintf(err, errlen, "auth_token_file %s: %s", path,
		         n == 0 ? "empty" : "the token holds a space or a control character");
		OPENSSL_cleanse(buf, sizeof buf);
		return -1;
	}
	*token = xstrndup(buf, n);
	OPENSSL_cleanse(buf, sizeof buf);
	return 0;
}

void auth_token_free(char *token)
{
	if (token == NULL)
		return;
	OPENSSL_cleanse(token, strlen(token));
	free(token);
}

