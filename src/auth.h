/* auth: the bearer token of auth_token_file.  Reads it (the caller owns
 * the string and wipes it with auth_token_free) and checks a request's
 * Authorization header against it in constant time.  Nothing here logs
 * the token. */
#ifndef FANOUTD_AUTH_H
#define FANOUTD_AUTH_H

#include <stddef.h>

enum auth_result {
	AUTH_OK,          /* no token configured, or the right one sent */
	AUTH_MISSING,     /* no "Authorization: Bearer ..." at all */
	AUTH_WRONG,       /* a bearer token, but not ours */
};

/* header: the Authorization value or NULL; token NULL = no auth. */
enum auth_result auth_check(const char *token, const char *header);

/* Read the token into *token, trailing whitespace trimmed.  An unreadable
 * or empty file, or a token with a space or control character in it,
 * gives -1 and "auth_token_file PATH: why" in err. */
int auth_token_read(const char *path, char **token, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Wipe and free a token from auth_token_read (NULL is fine). */
void auth_token_free(char *token);

#endif
