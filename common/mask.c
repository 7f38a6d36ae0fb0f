/*
 * mask.c: the single function that hides secrets.  Every secret the
 * process learns (config keys, passwords, session tokens, JWTs) is
 * registered here, and every line that leaves the process (logs, status,
 * printed configuration, console output) goes through mask_dup() or
 * mask_buf().  Credentials in HTTP authorization headers are masked by
 * shape as well, in case one was never registered.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define MASK_MIN_LEN	3

static char	**secrets;
static size_t	  nsecrets;

void
mask_register(const char *s)
{
	size_t	 i;

	if (s == NULL || strlen(s) < MASK_MIN_LEN)
		return;
	for (i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], s) == 0)
			return;
	secrets = xreallocarray(secrets, nsecrets + 1, sizeof(*secrets));
	secrets[nsecrets++] = xstrdup(s);
	/* Longest first, so a secret containing another is masked whole. */
	for (i = nsecrets - 1; i > 0 &&
	    strlen(secrets[i]) > strlen(secrets[i - 1]); i--) {
		char *t = secrets[i];
		secrets[i] = secrets[i - 1];
		secrets[i - 1] = t;
	}
}

/*
 * Forgets a secret that no longer exists anywhere (a session token that
 * was replaced), so that a long-running process that renews its tokens
 * does not mask against an ever longer list.
 */
void
mask_unregister(const char *s)
{
	size_t	 i;

	if (s == NULL)
		return;
	for (i = 0; i < nsecrets; i++) {
		if (strcmp(secrets[i], s) != 0)
			continue;
		freezero_str(secrets[i]);
		memmove(&secrets[i], &secrets[i + 1],
		    (nsecrets - i - 1) * sizeof(*secrets));
		nsecrets--;
		return;
	}
}

void
mask_clear(void)
{
	size_t	 i;

	for (i = 0; i < nsecrets; i++)
		freezero_str(secrets[i]);
	free(secrets);
	secrets = NULL;
	nsecrets = 0;
}

/* Length of a credential that follows "Bearer " or "Basic ", or 0. */
static size_t
auth_token_len(const char *p)
{
	static const char *const schemes[] = { "Bearer ", "Basic " };
	size_t	 i, n, len;

	for (i = 0; i < QS_ARRAYLEN(schemes); i++) {
		n = strlen(schemes[i]);
		if (strncmp(p, schemes[i], n) != 0)
			continue;
		for (len = n; p[len] != '\0' &&
		    (isalnum((unsigned char)p[len]) ||
		    strchr("-._~+/=", p[len]) != NULL); len++)
			;
		if (len - n >= 8)
			return len;
	}
	return 0;
}

/* Returns a new string with every secret replaced by MASK_TEXT. */
char *
mask_dup(const char *in)
{
	size_t	 cap, len = 0, i, n, tl;
	char	*out;
	const char *p;

	if (in == NULL)
		return NULL;
	cap = strlen(in) + 1;
	out = xmalloc(cap);
	for (p = in; *p != '\0';) {
		n = 0;
		for (i = 0; i < nsecrets; i++) {
			tl = strlen(secrets[i]);
			if (strncmp(p, secrets[i], tl) == 0) {
				n = tl;
				break;
			}
		}
		if (n == 0 && (*p == 'B') && (tl = auth_token_len(p)) > 0) {
			/* keep the scheme name, hide the credential */
			const char *sp = strchr(p, ' ');
			size_t keep = (size_t)(sp - p) + 1;

			if (len + keep + sizeof(MASK_TEXT) >= cap)
				out = xrealloc_grow(out, &cap,
				    len + keep + sizeof(MASK_TEXT));
			memcpy(out + len, p, keep);
			len += keep;
			p += keep;
			n = tl - keep;
		}
		if (n > 0) {
			if (len + sizeof(MASK_TEXT) >= cap)
				out = xrealloc_grow(out, &cap,
				    len + sizeof(MASK_TEXT));
			memcpy(out + len, MASK_TEXT, sizeof(MASK_TEXT) - 1);
			len += sizeof(MASK_TEXT) - 1;
			p += n;
			continue;
		}
		if (len + 2 >= cap)
			out = xrealloc_grow(out, &cap, len + 2);
		out[len++] = *p++;
	}
	out[len] = '\0';
	return out;
}

/* Masks a NUL-terminated buffer in place, truncating to fit len. */
void
mask_buf(char *buf, size_t len)
{
	char	*m;

	if (buf == NULL || len == 0)
		return;
	m = mask_dup(buf);
	strncpy(buf, m, len - 1);
	buf[len - 1] = '\0';
	free(m);
}
