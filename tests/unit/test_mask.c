/*
 * test_mask.c: a secret is masked in every form qscale writes it in.
 * Table-driven over nasty secrets (quotes, backslashes, control
 * characters, non-ASCII text).  Each form comes from its real writer,
 * not from the masking's own idea of it: the startup script (HOCON),
 * cJSON, qscaled -nv (libconfig), a shell single-quoted word, and the
 * base64 of the user data at every alignment.  A writer's output with
 * the nasty secret, once masked, must equal its output with a plain
 * placeholder secret, once masked: same text, ******** in the same
 * places.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "common.h"
#include "worker.h"

#define PLAIN	"PlainPlaceholderSecret42"

static const char *const nasty[] = {
	"pa\"ss\\word-1",
	"tab\there\nnew\rline",
	"ctl\x01\x02\x1f\x7f-del",
	"it's 'quoted' too",
	"ends with a backslash\\",
	"\"\\\"\\\\\"",
	"bs\b ff\f vt\v esc\x1b" "[0m",
	"\xc3\xbc" "n\xc3\xaf" "c\xc3\xb8" "d\xc3\xa9 \"\xe2\x82\xac\"",
	"$(touch /tmp/x) `id` ${HOME} \\n",
	"a-long-secret-with-\"quotes\"-and-\\backslashes\\-to-cut-in-base64",
};

static void
setup_secrets(const char *s)
{
	mask_clear();
	mask_register(s);
	mask_register(PLAIN);
}

/* What a writer made from s and from PLAIN masks to the same text. */
static void
assert_masked_alike(const char *with_s, const char *with_plain,
    const char *what, size_t i)
{
	char	*a = mask_dup(with_s), *b = mask_dup(with_plain);

	if (strcmp(a, b) != 0)
		fail_msg("%s of secret #%zu: masked text differs:\n%s\n---\n%s",
		    what, i, a, b);
	assert_non_null(strstr(a, MASK_TEXT));
	free(a);
	free(b);
}

/* The raw secret, in a line of text. */
static void
test_raw(void **state)
{
	char	*a, *b;
	size_t	 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(nasty); i++) {
		setup_secrets(nasty[i]);
		xasprintf(&a, "before %s after", nasty[i]);
		xasprintf(&b, "before %s after", PLAIN);
		assert_masked_alike(a, b, "raw", i);
		free(a);
		free(b);
	}
	mask_clear();
}

static struct conf_resource	 res;
static struct qscale_conf	 conf;

static char *
script_with(const char *secret)
{
	char	 err[256];
	char	*s, *dup = xstrdup(secret);

	memset(&conf, 0, sizeof(conf));
	memset(&res, 0, sizeof(res));
	conf.workers_prefix = "qs";
	conf.clearml.api_server = "https://api.example.com";
	conf.clearml.access_key = "SCALERKEY";
	conf.clearml.secret_key = "scaler-SECRET-1";
	conf.agent.access_key = "AGENTKEY";
	conf.agent.secret_key = dup;
	conf.git.user = "bot";
	conf.git.password = dup;
	res.name = "gpu";
	res.queue = "q";
	res.instance_type = "g4dn.xlarge";
	conf.resources = &res;
	conf.nresources = 1;
	if ((s = userdata_build(&conf, 0, err, sizeof(err))) == NULL)
		fail_msg("userdata_build: %s", err);
	free(dup);
	return s;
}

/* clearml.conf in the startup script: HOCON quoted strings. */
static void
test_userdata_hocon(void **state)
{
	char	*a, *b;
	size_t	 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(nasty); i++) {
		setup_secrets(nasty[i]);
		a = script_with(nasty[i]);
		b = script_with(PLAIN);
		assert_masked_alike(a, b, "startup script", i);
		free(a);
		free(b);
	}
	mask_clear();
}

/* A JSON string as cJSON prints it (status, export, API bodies). */
static void
test_json(void **state)
{
	cJSON	*o;
	char	*a, *b;
	size_t	 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(nasty); i++) {
		setup_secrets(nasty[i]);
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "secret", nasty[i]);
		a = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "secret", PLAIN);
		b = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		assert_masked_alike(a, b, "JSON", i);
		free(a);
		free(b);
	}
	mask_clear();
}

/* qscaled -nv prints a secret that sits inside another value escaped. */
static char *
printed_with(const char *secret)
{
	struct conf_errors	 errs = { NULL, 0 };
	struct qscale_conf	*c;
	char			 path[] = "/tmp/qscale-mask-XXXXXX.json";
	char			*text, *out;
	cJSON			*o, *r, *rs;
	int			 fd;

	o = cJSON_CreateObject();
	cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "clearml"),
	    "api_server", "http://127.0.0.1:9");
	cJSON_AddStringToObject(cJSON_GetObjectItem(o, "clearml"),
	    "access_key", "KEY");
	cJSON_AddStringToObject(cJSON_GetObjectItem(o, "clearml"),
	    "secret_key", secret);
	xasprintf(&text, "echo '%s'\n", secret);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "agent"),
	    "init_script", text);
	free(text);
	rs = cJSON_AddArrayToObject(o, "resources");
	r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "name", "gpu");
	cJSON_AddStringToObject(r, "queue", "q");
	cJSON_AddStringToObject(r, "instance_type", "t3.micro");
	cJSON_AddStringToObject(r, "ami", "ami-12345678");
	cJSON_AddItemToArray(rs, r);
	text = cJSON_Print(o);
	cJSON_Delete(o);
	assert_true((fd = mkstemps(path, 5)) != -1);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	free(text);
	if ((c = conf_load(path, &errs)) == NULL)
		fail_msg("%s: %s", path, errs.n > 0 ? errs.msg[0] : "?");
	conf_errors_clear(&errs);
	unlink(path);
	text = conf_print(c, CONF_PRINT_SECRETS | CONF_PRINT_NO_ORIGINS);
	conf_free(c);
	/* the first line names the (temporary) file */
	out = xstrdup(strchr(text, '\n') + 1);
	free(text);
	return out;
}

static void
test_libconfig(void **state)
{
	char	*a, *b;
	size_t	 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(nasty); i++) {
		setup_secrets(nasty[i]);
		a = printed_with(nasty[i]);
		b = printed_with(PLAIN);
		assert_masked_alike(a, b, "printed configuration", i);
		free(a);
		free(b);
	}
	mask_clear();
}

/* A single-quoted shell word, as bash's own quoting would have it. */
static void
test_shell(void **state)
{
	char	 cmd[512], *a, *b;
	FILE	*f;
	size_t	 i, n;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(nasty); i++) {
		setup_secrets(nasty[i]);
		/* the word as written, checked by bash reading it back */
		a = mask_escape(nasty[i], MASK_FORM_SHELL_SQ);
		snprintf(cmd, sizeof(cmd), "printf '%%s' '%s'", a);
		assert_non_null(f = popen(cmd, "r"));
		b = xmalloc(512);
		n = fread(b, 1, 511, f);
		b[n] = '\0';
		pclose(f);
		assert_string_equal(b, nasty[i]);
		free(b);
		xasprintf(&b, "x='%s'", a);
		free(a);
		assert_masked_alike(b, "x='" PLAIN "'", "shell word", i);
		free(b);
	}
	mask_clear();
}

/*
 * The base64 of text around a form of the secret, at every alignment:
 * no character that depends on the secret alone stays visible.
 */
static void
check_b64(const char *form, size_t pre, size_t i)
{
	size_t	 flen = strlen(form), len = pre + flen + 7, blen, c;
	size_t	 first, last, p, q;
	char	*plain = xmalloc(len + 1), *b64, *m, *at;

	memset(plain, 'A', pre);
	memcpy(plain + pre, form, flen);
	memcpy(plain + pre + flen, "\" xyz\n", 7);
	len--;
	b64 = xmalloc(len / 3 * 4 + 8);
	blen = (size_t)EVP_EncodeBlock((unsigned char *)b64,
	    (unsigned char *)plain, (int)len);
	m = mask_dup(b64);
	if ((at = strstr(m, MASK_TEXT)) == NULL)
		fail_msg("base64 of secret #%zu at %zu not masked: %s", i, pre,
		    m);
	p = (size_t)(at - m);
	q = blen - strlen(at + strlen(MASK_TEXT));
	assert_memory_equal(m, b64, p);
	assert_string_equal(at + strlen(MASK_TEXT), b64 + q);
	/* characters c whose 6 bits are all in bytes [pre, pre + flen) */
	first = ((pre * 8) + 5) / 6;
	last = ((pre + flen) * 8) / 6;	/* one past */
	for (c = first; c < last; c++)
		if (c < p || c >= q)
			fail_msg("base64 of secret #%zu at %zu: character %zu "
			    "shows (masked %zu..%zu): %s", i, pre, c, p, q, m);
	free(m);
	free(b64);
	free(plain);
}

static void
test_base64(void **state)
{
	char	*hocon;
	size_t	 i, pre;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(nasty); i++) {
		if (strlen(nasty[i]) < 12)
			continue;	/* too short to mask in base64 */
		setup_secrets(nasty[i]);
		hocon = mask_escape(nasty[i], MASK_FORM_HOCON);
		for (pre = 0; pre < 6; pre++) {
			check_b64(nasty[i], pre, i);
			check_b64(hocon, pre, i);
		}
		free(hocon);
	}
	mask_clear();
}

/* A secret forgotten leaves none of its forms; another keeps its own. */
static void
test_unregister(void **state)
{
	char	*m;

	(void)state;
	mask_clear();
	mask_register("tok\"en-one");
	mask_register("other\\secret");
	mask_unregister("tok\"en-one");
	m = mask_dup("tok\\\"en-one other\\\\secret other\\secret");
	assert_string_equal(m, "tok\\\"en-one " MASK_TEXT " " MASK_TEXT);
	free(m);
	mask_clear();
}

/* A secret at the end of a very long log line is not cut in two. */
static char	 sunk[16384];

static void
sink(int level, int64_t ts, const char *who, const char *text, void *arg)
{
	(void)level;
	(void)ts;
	(void)who;
	(void)arg;
	snprintf(sunk, sizeof(sunk), "%s", text);
}

static void
test_long_line(void **state)
{
	char	*pad;
	size_t	 n;

	(void)state;
	mask_clear();
	mask_register("cut-me-not-secret");
	log_init("test", LOG_LVL_INFO, 0);
	log_set_sink(sink, NULL);
	for (n = 8170; n < 8200; n++) {
		pad = xmalloc(n + 1);
		memset(pad, 'x', n);
		pad[n] = '\0';
		log_info("%s%s", pad, "cut-me-not-secret");
		assert_null(strstr(sunk, "cut-me"));
		free(pad);
	}
	log_set_sink(NULL, NULL);
	mask_clear();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_userdata_hocon),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_libconfig),
		cmocka_unit_test(test_shell),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_unregister),
		cmocka_unit_test(test_long_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
