/*
 * test_sigv4.c: the signer against every vector of the tree's
 * sigv4_vectors.json (botocore's signatures, see data/ec2/record.py) and
 * of the reference samples' when they are there, the choice of signed
 * headers, and the date format.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "common.h"
#include "ec2.h"
#include "samples.h"

static const char *
jstr(const cJSON *o, const char *key)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A request header of the vector, by name in any case. */
static const char *
vheader(const cJSON *vec, const char *name)
{
	const cJSON	*h = cJSON_GetObjectItemCaseSensitive(vec,
			    "request_headers"), *it;

	cJSON_ArrayForEach(it, h)
		if (strcasecmp(it->string, name) == 0 && cJSON_IsString(it))
			return it->valuestring;
	return NULL;
}

/* The path of an URL: what follows the authority. */
static const char *
url_path(const char *url)
{
	const char	*p = strstr(url, "://");

	p = p != NULL ? strchr(p + 3, '/') : NULL;
	return p != NULL ? p : "/";
}

static void
check_vector(const cJSON *vec, const char *set)
{
	struct aws_creds	 cr;
	struct sigv4_req	 r;
	struct sigv4_sig	 sig;
	const char		*name = jstr(vec, "name"), *want;
	char			 keyhex[65];

	/* a vector missing a part fails here, not in a strcmp(NULL) */
	assert_non_null(name);
	assert_non_null(jstr(vec, "url"));
	assert_non_null(jstr(vec, "host"));
	assert_non_null(jstr(vec, "method"));
	assert_non_null(jstr(vec, "region"));
	memset(&cr, 0, sizeof(cr));
	cr.access_key_id = (char *)jstr(vec, "access_key_id");
	cr.secret_access_key = (char *)jstr(vec, "secret_access_key");
	cr.session_token = (char *)jstr(vec, "session_token");
	memset(&r, 0, sizeof(r));
	r.method = jstr(vec, "method");
	r.host = jstr(vec, "host");
	r.path = url_path(jstr(vec, "url"));
	r.query = "";
	r.content_type = vheader(vec, "Content-Type");
	r.amz_date = jstr(vec, "amz_date");
	r.region = jstr(vec, "region");
	r.service = jstr(vec, "service");
	r.body = jstr(vec, "body");
	r.body_len = r.body != NULL ? strlen(r.body) : 0;
	assert_non_null(name);
	assert_string_equal(r.host, vheader(vec, "Host") != NULL ?
	    vheader(vec, "Host") : r.host);
	print_message("# vector %s: %s\n", set, name);
	assert_int_equal(sigv4_sign(&cr, &r, &sig), 0);
	assert_string_equal(sig.canonical_request,
	    jstr(vec, "canonical_request"));
	assert_string_equal(sig.string_to_sign, jstr(vec, "string_to_sign"));
	if ((want = jstr(vec, "signing_key_hex")) != NULL) {
		sigv4_hex(sig.signing_key, 32, keyhex);
		assert_string_equal(keyhex, want);
	}
	assert_string_equal(sig.signature, jstr(vec, "signature"));
	assert_string_equal(sig.authorization, jstr(vec, "authorization"));
	if ((want = vheader(vec, "Authorization")) != NULL)
		assert_string_equal(sig.authorization, want);
	if ((want = vheader(vec, "X-Amz-Date")) != NULL)
		assert_string_equal(r.amz_date, want);
	sigv4_sig_clear(&sig);
}

/* What a file of vectors exercises, beyond the signatures themselves. */
struct coverage {
	int	 n;
	int	 with_token;
	int	 with_port;	/* host:port */
	int	 get;		/* no body, no content type */
	int	 regions;	/* other than us-east-1 */
};

/* Every vector of a JSON array of them, each checked in full. */
static void
check_vectors(const char *text, const char *set, struct coverage *c)
{
	cJSON		*root, *vec;
	const char	*s;

	memset(c, 0, sizeof(*c));
	assert_non_null(text);
	root = cJSON_Parse(text);
	assert_true(cJSON_IsArray(root));
	cJSON_ArrayForEach(vec, root) {
		check_vector(vec, set);
		c->n++;
		if ((s = jstr(vec, "session_token")) != NULL && *s != '\0')
			c->with_token++;
		if (strchr(jstr(vec, "host"), ':') != NULL)
			c->with_port++;
		if (strcmp(jstr(vec, "method"), "GET") == 0)
			c->get++;
		if (strcmp(jstr(vec, "region"), "us-east-1") != 0)
			c->regions++;
	}
	assert_int_equal(c->n, cJSON_GetArraySize(root));
	cJSON_Delete(root);
}

static void
test_vectors(void **state)
{
	struct coverage	 c;
	char		*text;
	int		 ref = samples_dir() != NULL;

	(void)state;
	/* the tree's: seven, botocore's SigV4Auth each, of every kind */
	text = fixture_read("sigv4_vectors.json", NULL);
	check_vectors(text, "tree", &c);
	free(text);
	assert_int_equal(c.n, 7);
	assert_true(c.with_token >= 1);
	assert_true(c.with_port >= 1);
	assert_true(c.get >= 1);
	assert_true(c.regions >= 2);
	if (ref) {
		/* the reference file has seven too */
		text = sample_read("sigv4_vectors.json", NULL);
		check_vectors(text, "reference", &c);
		free(text);
		assert_true(c.n >= 7);
	}
	sets_checked("test_vectors", ref);
}

static void
test_signed_headers(void **state)
{
	struct aws_creds	 cr = { "AKID", "secret", NULL, 0, "" };
	struct sigv4_req	 r = { "POST", "127.0.0.1:5055", "/", "",
				    "application/x-www-form-urlencoded; "
				    "charset=utf-8", "20240101T000000Z",
				    "us-east-1", "ec2", "Action=X", 8 };
	struct sigv4_sig	 sig;

	(void)state;
	assert_int_equal(sigv4_sign(&cr, &r, &sig), 0);
	assert_string_equal(sig.signed_headers, "content-type;host;x-amz-date");
	assert_null(strstr(sig.canonical_request, "user-agent"));
	assert_non_null(strstr(sig.authorization,
	    "Credential=AKID/20240101/us-east-1/ec2/aws4_request, "));
	sigv4_sig_clear(&sig);

	cr.session_token = "tok+en/=";
	assert_int_equal(sigv4_sign(&cr, &r, &sig), 0);
	assert_string_equal(sig.signed_headers,
	    "content-type;host;x-amz-date;x-amz-security-token");
	assert_non_null(strstr(sig.canonical_request,
	    "\nx-amz-security-token:tok+en/=\n"));
	sigv4_sig_clear(&sig);

	/* an empty token is no token */
	cr.session_token = "";
	assert_int_equal(sigv4_sign(&cr, &r, &sig), 0);
	assert_string_equal(sig.signed_headers, "content-type;host;x-amz-date");
	sigv4_sig_clear(&sig);

	/* no secret, or a malformed date: refused, nothing allocated */
	cr.secret_access_key = NULL;
	assert_int_equal(sigv4_sign(&cr, &r, &sig), -1);
	cr.secret_access_key = "secret";
	r.amz_date = "2024-01-01";
	assert_int_equal(sigv4_sign(&cr, &r, &sig), -1);
}

static void
test_header_values_trimmed(void **state)
{
	struct aws_creds	 cr = { "AKID", "secret", NULL, 0, "" };
	struct sigv4_req	 r = { "POST", "  example.com ", "/", "",
				    "a   b", "20240101T000000Z", "us-east-1",
				    "ec2", "", 0 };
	struct sigv4_sig	 sig;

	(void)state;
	assert_int_equal(sigv4_sign(&cr, &r, &sig), 0);
	assert_non_null(strstr(sig.canonical_request,
	    "content-type:a b\nhost:example.com\n"));
	/* SHA-256 of the empty body */
	assert_non_null(strstr(sig.canonical_request, "e3b0c44298fc1c149afb"
	    "f4c8996fb92427ae41e4649b934ca495991b7852b855"));
	sigv4_sig_clear(&sig);
}

static void
test_amz_date(void **state)
{
	char	 buf[32];

	(void)state;
	sigv4_amz_date(1440938160000LL, buf, sizeof(buf));
	assert_string_equal(buf, "20150830T123600Z");
	sigv4_amz_date(1709251199999LL, buf, sizeof(buf));
	assert_string_equal(buf, "20240229T235959Z");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_signed_headers),
		cmocka_unit_test(test_header_values_trimmed),
		cmocka_unit_test(test_amz_date),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
