/*
 * test_spotwarn.c: spot capacity errors, one warning per cause and
 * episode, the others counted and summed up in one line at its end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "worker.h"

#define T0	((int64_t)1800000000000)	/* 2027-01-15T08:00:00Z */

/* 25 refusals in 47 s, each with its own request id: one warning. */
static void
test_one_warning_per_episode(void **state)
{
	struct spot_warns	 sw;
	char			 req[40], line[1024];
	int			 i, warned = 0;

	(void)state;
	memset(&sw, 0, sizeof(sw));
	for (i = 0; i < 25; i++) {
		snprintf(req, sizeof(req), "r-%02d", i);
		warned += spot_warn_note(&sw, "InsufficientInstanceCapacity",
		    req, T0 + i * 1900);
	}
	assert_int_equal(warned, 1);
	assert_int_equal(spot_warn_end(&sw, "the spot blackout is over", line,
	    sizeof(line)), 24);
	assert_string_equal(line, "spot capacity errors not logged one by "
	    "one: 24 more InsufficientInstanceCapacity (the last at "
	    "2027-01-15T08:00:45.600Z, request r-24); the spot blackout is "
	    "over");
	/* a new episode warns again */
	assert_int_equal(spot_warn_note(&sw, "InsufficientInstanceCapacity",
	    "r-99", T0 + 60000), 1);
	assert_int_equal(spot_warn_end(&sw, "spot capacity is back", line,
	    sizeof(line)), 0);
	assert_int_equal(sw.n, 0);
}

/* Each cause warns once; the summary names each with its count. */
static void
test_causes(void **state)
{
	struct spot_warns	 sw;
	char			 line[1024];

	(void)state;
	memset(&sw, 0, sizeof(sw));
	assert_int_equal(spot_warn_note(&sw, "InsufficientInstanceCapacity",
	    "a", T0), 1);
	assert_int_equal(spot_warn_note(&sw, "SpotMaxPriceTooLow", "b", T0),
	    1);
	assert_int_equal(spot_warn_note(&sw, "InsufficientInstanceCapacity",
	    "c", T0 + 1000), 0);
	assert_int_equal(spot_warn_note(&sw, "SpotMaxPriceTooLow", "", T0 +
	    2000), 0);
	assert_int_equal(spot_warn_note(&sw, "SpotMaxPriceTooLow", NULL, T0 +
	    3000), 0);
	assert_int_equal(spot_warn_note(&sw, "", "d", T0), 1);
	assert_int_equal(spot_warn_note(&sw, NULL, "e", T0 + 4000), 0);
	assert_int_equal(spot_warn_end(&sw, "launching on-demand instead",
	    line, sizeof(line)), 4);
	assert_string_equal(line, "spot capacity errors not logged one by "
	    "one: 1 more InsufficientInstanceCapacity (the last at "
	    "2027-01-15T08:00:01.000Z, request c); 2 more SpotMaxPriceTooLow "
	    "(the last at 2027-01-15T08:00:03.000Z); 1 more unknown (the last "
	    "at 2027-01-15T08:00:04.000Z, request e); launching on-demand "
	    "instead");
}

/* More causes than the table holds: those are said each time. */
static void
test_full_table_and_short_buffer(void **state)
{
	struct spot_warns	 sw;
	char			 code[32], line[1024], small[24];
	int			 i;

	(void)state;
	memset(&sw, 0, sizeof(sw));
	for (i = 0; i < 8; i++) {
		snprintf(code, sizeof(code), "Code%d", i);
		assert_int_equal(spot_warn_note(&sw, code, "r", T0), 1);
		assert_int_equal(spot_warn_note(&sw, code, "r", T0), 0);
	}
	assert_int_equal(spot_warn_note(&sw, "Code8", "r", T0), 1);
	assert_int_equal(spot_warn_note(&sw, "Code8", "r", T0), 1);
	assert_int_equal(spot_warn_end(&sw, "over", small, sizeof(small)), 8);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(spot_warn_end(&sw, "over", line, sizeof(line)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_warning_per_episode),
		cmocka_unit_test(test_causes),
		cmocka_unit_test(test_full_table_and_short_buffer),
	};

	return cmocka_run_group_tests_name("spotwarn", tests, NULL, NULL);
}
