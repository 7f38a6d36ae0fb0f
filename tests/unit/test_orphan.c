/*
 * test_orphan.c: what the supervisor decides about the instances of a
 * resource the configuration no longer has: which instances are orphans,
 * how their workers are found by the worker id convention, when an idle
 * one is terminated (idle for max_idle_time since the supervisor first
 * saw it), and that a busy one, or one whose worker could not be read,
 * never is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "clearml.h"
#include "ec2.h"
#include "supervisor.h"

#define SEC	1000
#define T0	((int64_t)1800000000000)
#define IDLE	(60 * SEC)

static struct orphan_seen	 seen[4];
static struct cml_worker	 ws[4];
static struct sup_orphans	 O;

static void
set_seen(int i, const char *id, const char *res, const char *state)
{
	seen[i].id = (char *)id;
	seen[i].resource = (char *)res;
	seen[i].type = (char *)"c5.large";
	seen[i].state = (char *)state;
	seen[i].launch_ms = T0 - 3600 * SEC;	/* long before */
}

static void
set_worker(int i, const char *id, const char *task)
{
	memset(&ws[i], 0, sizeof(ws[i]));
	ws[i].id = (char *)id;
	ws[i].task = (char *)task;
}

static int
reset(void **state)
{
	(void)state;
	orphan_list_clear(&O);
	memset(&O, 0, sizeof(O));
	return 0;
}

/* One reading at time now: how many are marked for termination. */
static int
update(size_t nseen, size_t nws, int workers_ok, int64_t now)
{
	int	 n;

	n = orphan_update(&O, seen, nseen, ws, nws, workers_ok, "qs", IDLE,
	    now);
	orphan_sweep(&O);
	return n;
}

static const struct sup_orphan *
find(const char *id)
{
	size_t	 i;

	for (i = 0; i < O.n; i++)
		if (strcmp(O.list[i].id, id) == 0)
			return &O.list[i];
	return NULL;
}

/*
 * Idle since it was first seen, not since its launch an hour ago: a
 * reload or a restart never shortens idle time.  Terminated once.
 */
static void
test_idle_terminated_after_max_idle(void **state)
{
	(void)state;
	set_seen(0, "i-1", "old", "running");
	set_worker(0, "qs:old:c5.large:i-1", NULL);
	assert_int_equal(update(1, 1, 1, T0), 0);
	assert_int_equal(O.live, 1);
	assert_int_equal(update(1, 1, 1, T0 + IDLE - 1), 0);
	assert_int_equal(update(1, 1, 1, T0 + IDLE), 1);
	assert_true(find("i-1")->terminating);
	assert_int_equal(update(1, 1, 1, T0 + IDLE + SEC), 0);
	/* gone from EC2: dropped */
	assert_int_equal(update(0, 0, 1, T0 + IDLE + 2 * SEC), 0);
	assert_null(find("i-1"));
	assert_int_equal(O.live, 0);
}

/* Busy: never, however long; idle time starts when its task ends. */
static void
test_busy_never_terminated(void **state)
{
	int64_t	 t;

	(void)state;
	set_seen(0, "i-2", "old", "running");
	set_worker(0, "qs:old:c5.large:i-2", "task-1");
	for (t = T0; t < T0 + 10 * IDLE; t += 10 * SEC)
		assert_int_equal(update(1, 1, 1, t), 0);
	assert_string_equal(find("i-2")->task, "task-1");
	assert_int_equal(find("i-2")->idle_since_ms, 0);
	set_worker(0, "qs:old:c5.large:i-2", NULL);
	assert_int_equal(update(1, 1, 1, t), 0);
	assert_int_equal(update(1, 1, 1, t + IDLE - 1), 0);
	assert_int_equal(update(1, 1, 1, t + IDLE), 1);
}

/* Workers unreadable: nothing is terminated, the clock is not reset. */
static void
test_workers_unreadable(void **state)
{
	(void)state;
	set_seen(0, "i-3", "old", "running");
	set_worker(0, "qs:old:c5.large:i-3", NULL);
	assert_int_equal(update(1, 1, 1, T0), 0);
	assert_int_equal(update(1, 0, 0, T0 + 5 * IDLE), 0);
	assert_false(find("i-3")->terminating);
	assert_int_equal(find("i-3")->idle_since_ms, T0);
	assert_int_equal(update(1, 1, 1, T0 + 5 * IDLE), 1);
}

/*
 * The worker is found by <prefix>:<resource>:<type>:<instance id>: a busy
 * worker of another resource or prefix with the same instance id is not
 * this orphan's.  No worker at all counts as idle.
 */
static void
test_worker_convention(void **state)
{
	(void)state;
	set_seen(0, "i-4", "old", "running");
	set_seen(1, "i-5", "old", "pending");
	set_worker(0, "qs:other:c5.large:i-4", "task-x");
	set_worker(1, "qs2:old:c5.large:i-4", "task-y");
	set_worker(2, "qs:old:c5.large:i-40", "task-z");
	assert_int_equal(update(2, 3, 1, T0), 0);
	assert_string_equal(find("i-4")->worker, "");
	assert_int_equal(find("i-4")->idle_since_ms, T0);
	assert_int_equal(O.live, 2);
	assert_int_equal(update(2, 3, 1, T0 + IDLE), 2);
	/* and a busy worker of its own keeps it */
	reset(NULL);
	set_worker(3, "qs:old:c5.large:i-4", "task-w");
	assert_int_equal(update(1, 4, 1, T0), 0);
	assert_int_equal(update(1, 4, 1, T0 + IDLE), 0);
	assert_string_equal(find("i-4")->worker, "qs:old:c5.large:i-4");
}

/* Failed termination: marked again at the next reading. */
static void
test_terminate_again(void **state)
{
	(void)state;
	set_seen(0, "i-6", "old", "running");
	assert_int_equal(update(1, 0, 1, T0), 0);
	assert_int_equal(update(1, 0, 1, T0 + IDLE), 1);
	O.list[0].terminating = 0;	/* what a failed call does */
	assert_int_equal(update(1, 0, 1, T0 + IDLE + SEC), 1);
}

/* Orphans are the instances of no configured resource. */
static void
test_pick(void **state)
{
	struct conf_resource	 res[2];
	struct qscale_conf	 conf;
	struct ec2_instance	 in[4];
	struct ec2_tag		 tags[4][1] = {
		{ { "qscale:resource", "gpu" } },
		{ { "qscale:resource", "old" } },
		{ { "team", "x" } },
		{ { "qscale:resource", "cpu" } },
	};
	struct orphan_seen	*s;
	size_t			 i, n;

	(void)state;
	memset(res, 0, sizeof(res));
	memset(&conf, 0, sizeof(conf));
	memset(in, 0, sizeof(in));
	res[0].name = "gpu";
	res[1].name = "cpu";
	conf.resources = res;
	conf.nresources = 2;
	for (i = 0; i < 4; i++) {
		snprintf(in[i].id, sizeof(in[i].id), "i-%zu", i);
		snprintf(in[i].state, sizeof(in[i].state), "running");
		in[i].tags = tags[i];
		in[i].ntags = 1;
	}
	n = orphan_pick(&conf, in, 4, &s);
	assert_int_equal(n, 1);
	assert_string_equal(s[0].id, "i-1");
	assert_string_equal(s[0].resource, "old");
	orphan_seen_clear(s, n);
	/* with no resource left, both tagged ones are orphans */
	conf.nresources = 0;
	n = orphan_pick(&conf, in, 4, &s);
	assert_int_equal(n, 3);
	orphan_seen_clear(s, n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_idle_terminated_after_max_idle,
		    reset),
		cmocka_unit_test_setup(test_busy_never_terminated, reset),
		cmocka_unit_test_setup(test_workers_unreadable, reset),
		cmocka_unit_test_setup(test_worker_convention, reset),
		cmocka_unit_test_setup(test_terminate_again, reset),
		cmocka_unit_test_setup(test_pick, reset),
	};
	int	 rc;

	rc = cmocka_run_group_tests(tests, NULL, NULL);
	reset(NULL);
	return rc;
}
