/*
 * sigv4.c: AWS Signature Version 4 with OpenSSL's HMAC and SHA-256.
 *
 * Only the headers that botocore (and so moto's check) signs are signed:
 * content-type, host and x-amz-date, plus x-amz-security-token with
 * session credentials.  Signing user-agent would make every signature
 * fail against a server that recomputes it without that header.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "common.h"
#include "ec2.h"

#define SIGV4_ALGO	"AWS4-HMAC-SHA256"

void
sigv4_hex(const unsigned char *in, size_t n, char *out)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static void
sha256_hex(const void *data, size_t n, char out[65])
{
	unsigned char	 md[SHA256_DIGEST_LENGTH];

	SHA256(data, n, md);
	sigv4_hex(md, sizeof(md), out);
}

static int
hmac(const unsigned char *key, size_t keylen, const char *data,
    unsigned char out[32])
{
	unsigned int	 len = 32;

	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data,
	    strlen(data), out, &len) == NULL || len != 32)
		return -1;
	return 0;
}

/* "20150830T123600Z" for an epoch in ms. */
void
sigv4_amz_date(int64_t ms, char *buf, size_t len)
{
	struct tm	 tm;
	time_t		 t = (time_t)(ms / 1000);

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y%m%dT%H%M%SZ", &tm);
}

/* A header value as SigV4 wants it: trimmed, inner runs of spaces one. */
static char *
canon_value(const char *v)
{
	char	*out = xmalloc(strlen(v) + 1), *o = out;
	int	 space = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v != '\0'; v++) {
		if (*v == ' ' || *v == '\t') {
			space = 1;
			continue;
		}
		if (space && o != out)
			*o++ = ' ';
		space = 0;
		*o++ = *v;
	}
	*o = '\0';
	return out;
}

static int
sigv4_check(const struct aws_creds *cr, const struct sigv4_req *r)
{
	if (cr == NULL || cr->access_key_id == NULL ||
	    cr->secret_access_key == NULL || r->method == NULL ||
	    r->host == NULL || r->amz_date == NULL || r->region == NULL ||
	    r->service == NULL || strlen(r->amz_date) != 16)
		return -1;
	return 0;
}

static void
build_canonical(const struct aws_creds *cr, const struct sigv4_req *r,
    struct sigv4_sig *sig)
{
	char		 payload[65];
	char		*ct = NULL, *host, *tok = NULL;
	int		 has_tok = cr->session_token != NULL &&
			    *cr->session_token != '\0';

	sha256_hex(r->body != NULL ? r->body : "", r->body != NULL ?
	    r->body_len : 0, payload);
	host = canon_value(r->host);
	if (r->content_type != NULL)
		ct = canon_value(r->content_type);
	if (has_tok)
		tok = canon_value(cr->session_token);
	xasprintf(&sig->signed_headers, "%shost;x-amz-date%s",
	    ct != NULL ? "content-type;" : "",
	    has_tok ? ";x-amz-security-token" : "");
	xasprintf(&sig->canonical_request,
	    "%s\n%s\n%s\n%s%s%shost:%s\nx-amz-date:%s\n%s%s%s\n%s\n%s",
	    r->method, r->path != NULL && *r->path != '\0' ? r->path : "/",
	    r->query != NULL ? r->query : "",
	    ct != NULL ? "content-type:" : "", ct != NULL ? ct : "",
	    ct != NULL ? "\n" : "", host, r->amz_date,
	    has_tok ? "x-amz-security-token:" : "", has_tok ? tok : "",
	    has_tok ? "\n" : "", sig->signed_headers, payload);
	free(ct);
	free(host);
	freezero_str(tok);
}

/*
 * Computes the canonical request, string to sign, signing key, signature
 * and Authorization header value.  sigv4_sig_clear() frees them.
 */
int
sigv4_sign(const struct aws_creds *cr, const struct sigv4_req *r,
    struct sigv4_sig *sig)
{
	unsigned char	 k[32], tmp[32];
	char		 date[9], hash[65], *kinit;
	int		 rc = 0;

	memset(sig, 0, sizeof(*sig));
	if (sigv4_check(cr, r) == -1)
		return -1;
	memcpy(date, r->amz_date, 8);
	date[8] = '\0';
	build_canonical(cr, r, sig);
	sha256_hex(sig->canonical_request, strlen(sig->canonical_request),
	    hash);
	xasprintf(&sig->string_to_sign, "%s\n%s\n%s/%s/%s/aws4_request\n%s",
	    SIGV4_ALGO, r->amz_date, date, r->region, r->service, hash);

	xasprintf(&kinit, "AWS4%s", cr->secret_access_key);
	if (hmac((unsigned char *)kinit, strlen(kinit), date, k) == -1 ||
	    hmac(k, 32, r->region, tmp) == -1 ||
	    hmac(tmp, 32, r->service, k) == -1 ||
	    hmac(k, 32, "aws4_request", sig->signing_key) == -1 ||
	    hmac(sig->signing_key, 32, sig->string_to_sign, tmp) == -1)
		rc = -1;
	freezero_str(kinit);
	explicit_bzero(k, sizeof(k));
	if (rc == -1) {
		sigv4_sig_clear(sig);
		return -1;
	}
	sigv4_hex(tmp, 32, sig->signature);
	xasprintf(&sig->authorization, "%s Credential=%s/%s/%s/%s/"
	    "aws4_request, SignedHeaders=%s, Signature=%s", SIGV4_ALGO,
	    cr->access_key_id, date, r->region, r->service,
	    sig->signed_headers, sig->signature);
	return 0;
}

void
sigv4_sig_clear(struct sigv4_sig *sig)
{
	free(sig->canonical_request);
	free(sig->string_to_sign);
	free(sig->signed_headers);
	free(sig->authorization);
	explicit_bzero(sig, sizeof(*sig));
}
