/*
 * test_util.c: durations, timestamps, masking and log line format.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"

static void
test_durations(void **state)
{
	static const struct {
		const char	*in;
		int64_t		 ms;
	} good[] = {
		{ "45s", 45000 }, { "15m", 900000 }, { "2h", 7200000 },
		{ "1d", 86400000 }, { "500ms", 500 }, { "90", 90000 },
		{ "1h30m", 5400000 }, { "0s", 0 }, { "2m30s", 150000 },
		{ "0", 0 },
	};
	static const char *const bad[] = { "", "s", "15x", "-5s", "1.5h",
	    "15 m", "1h30", "m15", "99999999999999999999d", "1hh" };
	const char	*why;
	int64_t		 v;
	size_t		 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(good); i++) {
		assert_int_equal(parse_duration(good[i].in, &v, &why), 0);
		assert_int_equal(v, good[i].ms);
	}
	for (i = 0; i < QS_ARRAYLEN(bad); i++) {
		assert_int_equal(parse_duration(bad[i], &v, &why), -1);
		assert_non_null(why);
	}
}

static void
test_fmt_duration(void **state)
{
	char	 buf[32];

	(void)state;
	fmt_duration(90000, buf, sizeof(buf));
	assert_string_equal(buf, "90s");
	fmt_duration(900000, buf, sizeof(buf));
	assert_string_equal(buf, "15m");
	fmt_duration(7200000, buf, sizeof(buf));
	assert_string_equal(buf, "2h");
	fmt_duration(1500, buf, sizeof(buf));
	assert_string_equal(buf, "1500ms");
	fmt_duration(0, buf, sizeof(buf));
	assert_string_equal(buf, "0s");
}

static void
test_iso8601(void **state)
{
	int64_t	 ms;

	(void)state;
	assert_int_equal(parse_iso8601("2025-01-13T18:32:13Z", &ms), 0);
	assert_int_equal(ms, INT64_C(1736793133000));
	assert_int_equal(parse_iso8601("2025-01-13T18:32:13.123000+00:00",
	    &ms), 0);
	assert_int_equal(ms, INT64_C(1736793133123));
	assert_int_equal(parse_iso8601("2025-01-13T18:32:13+00:00", &ms), 0);
	assert_int_equal(ms, INT64_C(1736793133000));
	assert_int_equal(parse_iso8601("2025-01-13T20:32:13.5+02:00", &ms),
	    0);
	assert_int_equal(ms, INT64_C(1736793133500));
	assert_int_equal(parse_iso8601("2026-11-22T08:49:03.000Z", &ms), 0);
	assert_int_equal(parse_iso8601("2025-01-13", &ms), -1);
	assert_int_equal(parse_iso8601("2025-13-13T18:32:13Z", &ms), -1);
	assert_int_equal(parse_iso8601("2025-01-13T18:32:13Zjunk", &ms), -1);
	assert_int_equal(parse_iso8601("", &ms), -1);
	assert_int_equal(parse_iso8601(NULL, &ms), -1);
}

static void
test_fmt_time(void **state)
{
	char	 buf[40];

	(void)state;
	fmt_time_ms(INT64_C(1736793133123), buf, sizeof(buf));
	assert_string_equal(buf, "2025-01-13T18:32:13.123Z");
}

static void
test_mask(void **state)
{
	char	*m, buf[64];

	(void)state;
	mask_clear();
	mask_register("s3cr$t`pass");
	mask_register("ab");		/* too short to mask safely */
	m = mask_dup("git pass=s3cr$t`pass, again s3cr$t`pass.");
	assert_string_equal(m, "git pass=" MASK_TEXT ", again " MASK_TEXT ".");
	free(m);
	m = mask_dup("ab cd");
	assert_string_equal(m, "ab cd");
	free(m);
	/* Credentials in authorization headers, even unregistered ones. */
	m = mask_dup("Authorization: Bearer eyJhbGciOi.JIUzI1.NiJ9 ok");
	assert_string_equal(m, "Authorization: Bearer " MASK_TEXT " ok");
	free(m);
	m = mask_dup("Basic dXNlcjpwYXNzd29yZA==");
	assert_string_equal(m, "Basic " MASK_TEXT);
	free(m);
	/* A secret containing another is masked whole. */
	mask_register("pass");
	mask_register("passphrase-long");
	m = mask_dup("x passphrase-long y pass");
	assert_string_equal(m, "x " MASK_TEXT " y " MASK_TEXT);
	free(m);
	snprintf(buf, sizeof(buf), "key s3cr$t`pass");
	mask_buf(buf, sizeof(buf));
	assert_string_equal(buf, "key " MASK_TEXT);
	mask_clear();
	m = mask_dup("s3cr$t`pass");
	assert_string_equal(m, "s3cr$t`pass");
	free(m);
}

static void
test_log_line(void **state)
{
	char	 line[256];

	(void)state;
	log_format_line(line, sizeof(line), INT64_C(1795341600123),
	    LOG_LVL_INFO, "gpu", "message");
	assert_string_equal(line, "2026-11-22T10:00:00.123Z INFO gpu: message");
	assert_int_equal(log_level_parse("debug"), LOG_LVL_DEBUG);
	assert_int_equal(log_level_parse("WARN"), LOG_LVL_WARN);
	assert_int_equal(log_level_parse("warning"), LOG_LVL_WARN);
	assert_int_equal(log_level_parse("loud"), -1);
	assert_int_equal(log_level_parse(NULL), -1);
}

struct captured {
	int	 n;
	char	 text[256];
};

static void
capture_sink(int level, int64_t ts, const char *who, const char *text,
    void *arg)
{
	struct captured	*c = arg;

	(void)level;
	(void)ts;
	(void)who;
	c->n++;
	snprintf(c->text, sizeof(c->text), "%s", text);
}

/* Lines are filtered by level, masked and kept on one line. */
static void
test_log_sink(void **state)
{
	struct captured	 c = { 0, "" };

	(void)state;
	log_init("test", LOG_LVL_INFO, 0);
	log_set_sink(capture_sink, &c);
	mask_register("hunter22");
	log_debug("not shown");
	assert_int_equal(c.n, 0);
	log_info("pw hunter22\nnext line");
	assert_int_equal(c.n, 1);
	assert_string_equal(c.text, "pw " MASK_TEXT " next line");
	log_set_level(LOG_LVL_DEBUG);
	log_debug("shown");
	assert_int_equal(c.n, 2);
	log_set_sink(NULL, NULL);
	mask_clear();
}

/* The index of a table keyed by name: every key found, through growth. */
static void
test_str_index(void **state)
{
	struct str_index	 ix;
	char			 (*keys)[16];
	char			 probe[16];
	size_t			 i, n = 5000;

	(void)state;
	memset(&ix, 0, sizeof(ix));
	assert_int_equal(str_index_find(&ix, "gpu"), -1);
	keys = calloc(n, sizeof(*keys));
	assert_non_null(keys);
	for (i = 0; i < n; i++) {
		snprintf(keys[i], sizeof(keys[i]), "r%zu.ami", i);
		str_index_add(&ix, keys[i], i);
		/* every earlier key is still there after each growth */
		if ((i & (i - 1)) == 0) {
			size_t	 j;

			for (j = 0; j <= i; j++)
				assert_int_equal(str_index_find(&ix,
				    keys[j]), (ssize_t)j);
		}
	}
	assert_int_equal(ix.n, n);
	assert_true(ix.cap >= 2 * n);
	for (i = 0; i < n; i++) {
		snprintf(probe, sizeof(probe), "r%zu.ami", i);
		assert_int_equal(str_index_find(&ix, probe), (ssize_t)i);
	}
	assert_int_equal(str_index_find(&ix, "r5000.ami"), -1);
	assert_int_equal(str_index_find(&ix, "r1.am"), -1);
	assert_int_equal(str_index_find(&ix, ""), -1);
	str_index_clear(&ix);
	assert_int_equal(str_index_find(&ix, keys[0]), -1);
	assert_int_equal(ix.cap, 0);
	free(keys);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_fmt_duration),
		cmocka_unit_test(test_iso8601),
		cmocka_unit_test(test_fmt_time),
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_log_line),
		cmocka_unit_test(test_log_sink),
		cmocka_unit_test(test_str_index),
	};

	log_init("test", LOG_LVL_ERROR, 0);
	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
