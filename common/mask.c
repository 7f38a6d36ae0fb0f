/*
 * mask.c: the single function that hides secrets.  Every secret the
 * process learns (config keys, passwords, session tokens, JWTs) is
 * registered here, and every line that leaves the process (logs, status,
 * printed configuration, console output) goes through mask_dup() or
 * mask_buf().  A secret is masked in every form qscale itself writes it
 * in: as it is, quoted for HOCON (clearml.conf in the startup script),
 * JSON, libconfig (qscaled -nv) and the shell, and the base64 of each
 * (EC2 user data), since an instance's console output echoes such text
 * back into the logs.  Credentials in HTTP authorization headers are
 * masked by shape as well, in case one was never registered.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common.h"

#define MASK_MIN_LEN	3
#define MASK_MIN_B64	12	/* shorter base64 runs match too much */

static const enum mask_form quoted_forms[] = { MASK_FORM_HOCON,
    MASK_FORM_JSON, MASK_FORM_LIBCONFIG, MASK_FORM_SHELL_SQ };

/* The secrets as registered, and every form of them, longest first. */
static char	**secrets;
static size_t	  nsecrets;
struct form {
	char	*text;
	size_t	 len;
	int	 b64;	/* the edges go too: they hold bits of it */
};
static struct form *forms;
static size_t	  nforms;
static unsigned char first_byte[256];	/* some form starts with it */

/* The escape of one byte in a quoted form, or NULL: as it is. */
static const char *
escape_byte(unsigned char c, enum mask_form form, char *hex, size_t hexlen)
{
	if (form == MASK_FORM_SHELL_SQ)
		return c == '\'' ? "'\\''" : NULL;
	switch (c) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\n':
		return "\\n";
	case '\t':
		return "\\t";
	case '\r':
		return "\\r";
	case '\f':
		if (form != MASK_FORM_HOCON)
			return "\\f";
		break;
	case '\b':
		if (form == MASK_FORM_JSON)
			return "\\b";
		break;
	}
	if (c >= 0x20 && (c != 0x7f || form == MASK_FORM_JSON))
		return NULL;
	snprintf(hex, hexlen, form == MASK_FORM_LIBCONFIG ? "\\x%02x" :
	    "\\u%04x", c);
	return hex;
}

/*
 * The text of s inside the quotes of one form: HOCON as the startup
 * script writes clearml.conf, JSON as cJSON prints, libconfig as
 * conf_print(), the shell as a single-quoted word.  The writers use it
 * too, so that a form masked and a form written never differ.
 */
char *
mask_escape(const char *s, enum mask_form form)
{
	size_t			 len = 0, n;
	char			*out = xmalloc(strlen(s) * 6 + 1);
	const unsigned char	*p;
	const char		*e;
	char			 hex[8];

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((e = escape_byte(*p, form, hex, sizeof(hex))) == NULL) {
			out[len++] = (char)*p;
			continue;
		}
		n = strlen(e);
		memcpy(out + len, e, n);
		len += n;
	}
	out[len] = '\0';
	return out;
}

/* Takes f; keeps the list longest first, so the longest form wins. */
static void
form_add(char *f, int b64)
{
	size_t	 i, n = strlen(f);

	for (i = 0; i < nforms; i++) {
		if (strcmp(forms[i].text, f) == 0) {
			freezero_str(f);
			return;
		}
	}
	forms = xreallocarray(forms, nforms + 1, sizeof(*forms));
	for (i = nforms; i > 0 && forms[i - 1].len < n; i--)
		forms[i] = forms[i - 1];
	forms[i].text = f;
	forms[i].len = n;
	forms[i].b64 = b64;
	nforms++;
	first_byte[(unsigned char)f[0]] = 1;
}

/*
 * The base64 of a text that holds t at any offset contains one of three
 * runs that depend on t alone: those of the whole 3-byte groups from
 * t[0], t[1] or t[2] on.  The characters at their edges mix in the
 * neighbouring bytes and give away a few bits at most.
 */
static void
form_add_base64(const char *t)
{
	size_t	 j, n, len = strlen(t);
	char	*b;

	for (j = 0; j < 3 && j < len; j++) {
		n = (len - j) / 3 * 3;
		if (n / 3 * 4 < MASK_MIN_B64)
			continue;
		b = xmalloc(n / 3 * 4 + 1);
		EVP_EncodeBlock((unsigned char *)b,
		    (const unsigned char *)t + j, (int)n);
		form_add(b, 1);
	}
}

static void
forms_of(const char *s)
{
	char	*t[1 + QS_ARRAYLEN(quoted_forms)];
	size_t	 i;

	t[0] = xstrdup(s);
	for (i = 0; i < QS_ARRAYLEN(quoted_forms); i++)
		t[i + 1] = mask_escape(s, quoted_forms[i]);
	for (i = 0; i < QS_ARRAYLEN(t); i++) {
		form_add_base64(t[i]);
		form_add(t[i], 0);
	}
}

static void
forms_clear(void)
{
	size_t	 i;

	for (i = 0; i < nforms; i++)
		freezero_str(forms[i].text);
	free(forms);
	forms = NULL;
	nforms = 0;
	memset(first_byte, 0, sizeof(first_byte));
}

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
	forms_of(s);
}

/*
 * Forgets a secret that no longer exists anywhere (a session token that
 * was replaced), so that a long-running process that renews its tokens
 * does not mask against an ever longer list.  The forms are made again
 * from the secrets left, so that one shared with another stays.
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
		forms_clear();
		for (i = 0; i < nsecrets; i++)
			forms_of(secrets[i]);
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
	forms_clear();
}

static int
b64_char(char c)
{
	return isalnum((unsigned char)c) || c == '+' || c == '/';
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
	size_t	 cap, len = 0, i, n, tl, raw = 0, e;
	char	*out;
	const char *p;

	if (in == NULL)
		return NULL;
	cap = strlen(in) + 1;
	out = xmalloc(cap);
	for (p = in; *p != '\0';) {
		n = 0;
		for (i = 0; first_byte[(unsigned char)*p] && i < nforms; i++) {
			if (strncmp(p, forms[i].text, forms[i].len) == 0) {
				n = forms[i].len;
				break;
			}
		}
		if (n > 0 && forms[i].b64) {
			/* the two characters either side hold 4 bits each */
			for (e = 0; e < 2 && raw > 0 && b64_char(out[len - 1]);
			    e++, raw--)
				len--;
			for (e = 0; e < 2 && b64_char(p[n]); e++)
				n++;
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
			raw = 0;
			continue;
		}
		if (len + 2 >= cap)
			out = xrealloc_grow(out, &cap, len + 2);
		out[len++] = *p++;
		raw++;
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
