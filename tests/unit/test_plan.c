/*
 * test_plan.c: the decision function, by a table of cases for every rule
 * and by thousands of random observations checked against invariants.
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
#include "worker.h"

#define SEC	1000
#define MIN	(60 * SEC)
#define T0	((int64_t)1800000000000)	/* an arbitrary epoch ms */
#define PREFIX	"qs:gpu"

struct fixture {
	struct plan_conf		 pc;
	struct plan_memory		 mem;
	struct plan_obs			 obs;
	struct plan_obs_instance	 inst[64];
	struct plan_obs_worker		 workers[64];
	char				 wid[64][160];
	char				 tasks[64][40];
	struct plan_obs_task		 ended[16];
	struct plan_output		 out;
};

static struct fixture	 F;

static void
fx_reset(void)
{
	plan_output_clear(&F.out);
	plan_memory_clear(&F.mem);
	memset(&F, 0, sizeof(F));
	F.pc.max_instances = 5;
	F.pc.max_requeues = 2;
	F.pc.max_idle_ms = 10 * MIN;
	F.pc.max_spin_up_ms = 20 * MIN;
	F.pc.vanished_grace_ms = 5 * MIN;
	F.pc.spot_rollback_ms = 5 * MIN;
	F.pc.polling_ms = 30 * SEC;
}

/* A new observation at time now, everything read fine, no grant limit. */
static void
obs_begin(int64_t now, size_t pending)
{
	memset(&F.obs, 0, sizeof(F.obs));
	F.obs.now_ms = now;
	F.obs.queue_ok = F.obs.workers_ok = F.obs.ec2_ok = 1;
	F.obs.pending = pending;
	F.obs.inst = F.inst;
	F.obs.workers = F.workers;
	F.obs.tasks = F.ended;
	F.obs.grant = -1;
}

static void
obs_inst(const char *id, enum plan_state st, int spot, int64_t launch,
    const char *reason)
{
	struct plan_obs_instance *o = &F.inst[F.obs.ninst++];

	memset(o, 0, sizeof(*o));
	snprintf(o->id, sizeof(o->id), "%s", id);
	o->state = st;
	o->spot = spot;
	o->launch_ms = launch;
	snprintf(o->state_reason, sizeof(o->state_reason), "%s",
	    reason != NULL ? reason : "");
	snprintf(o->subnet, sizeof(o->subnet), "subnet-a");
}

/* A worker of this resource on instance id; task NULL means idle. */
static void
obs_worker(const char *id, const char *task, int64_t registered)
{
	size_t			 i = F.obs.nworkers++;
	struct plan_obs_worker	*w = &F.workers[i];

	snprintf(F.wid[i], sizeof(F.wid[i]), "%s:g4dn.xlarge:%s", PREFIX, id);
	memset(w, 0, sizeof(*w));
	w->id = F.wid[i];
	snprintf(w->instance, sizeof(w->instance), "%s", id);
	if (task != NULL) {
		snprintf(F.tasks[i], sizeof(F.tasks[i]), "%s", task);
		w->task = F.tasks[i];
	}
	w->register_ms = registered;
}

static void
obs_task_ended(const char *task, int64_t at)
{
	struct plan_obs_task	*t = &F.ended[F.obs.ntasks++];

	t->id = task;
	t->ended_ms = at;
}

static void
run(void)
{
	plan_output_clear(&F.out);
	plan_resource(&F.obs, &F.pc, &F.mem, &F.out);
}

static size_t
count_type(enum plan_action_type t)
{
	size_t	 i, n = 0;

	for (i = 0; i < F.out.nactions; i++)
		if (F.out.actions[i].type == t)
			n++;
	return n;
}

static const struct plan_action *
find_action(enum plan_action_type t, const char *instance)
{
	size_t	 i;

	for (i = 0; i < F.out.nactions; i++)
		if (F.out.actions[i].type == t && (instance == NULL ||
		    strcmp(F.out.actions[i].instance, instance) == 0))
			return &F.out.actions[i];
	return NULL;
}

/* Instances launched, spot and on-demand. */
static int
launched(void)
{
	size_t	 i;
	int	 n = 0;

	for (i = 0; i < F.out.nactions; i++)
		if (F.out.actions[i].type == PLAN_LAUNCH)
			n += F.out.actions[i].count;
	return n;
}

/* An instance this process launched at `at`, listed by EC2 as running. */
static void
mem_launched(const char *id, int spot, int64_t at)
{
	plan_memory_launched(&F.mem, id, spot, at, "subnet-a", at);
}

static void
test_nothing_to_do(void **state)
{
	(void)state;
	fx_reset();
	obs_begin(T0, 0);
	run();
	assert_int_equal(F.out.nactions, 0);
	assert_int_equal(F.out.demand, 0);
}

static void
test_scale_from_zero_in_one_call(void **state)
{
	const struct plan_action *a;

	(void)state;
	fx_reset();
	obs_begin(T0, 3);
	run();
	assert_int_equal(count_type(PLAN_LAUNCH), 1);
	a = find_action(PLAN_LAUNCH, NULL);
	assert_int_equal(a->count, 3);
	assert_int_equal(a->spot, 0);
	assert_int_equal(F.out.demand, 3);
}

static void
test_max_instances_cap(void **state)
{
	(void)state;
	fx_reset();
	obs_begin(T0, 10);
	run();
	assert_int_equal(launched(), 5);
	assert_string_equal(F.out.note,
	    "max_instances 5: 0 live, 10 more wanted, 5 launched");

	fx_reset();
	mem_launched("i-1", 0, T0 - MIN);
	mem_launched("i-2", 0, T0 - MIN);
	obs_begin(T0, 10);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - MIN, NULL);
	obs_inst("i-2", PLAN_ST_RUNNING, 0, T0 - MIN, NULL);
	obs_worker("i-1", "t1", T0 - MIN);
	obs_worker("i-2", "t2", T0 - MIN);
	run();
	assert_int_equal(F.out.busy, 2);
	assert_int_equal(launched(), 3);

	fx_reset();
	F.pc.max_instances = 0;
	obs_begin(T0, 4);
	run();
	assert_int_equal(launched(), 0);
}

static void
test_global_grant(void **state)
{
	(void)state;
	fx_reset();
	F.pc.max_instances = 10;
	obs_begin(T0, 6);
	F.obs.grant = 2;
	run();
	assert_int_equal(launched(), 2);
	assert_int_equal(F.out.want, 6);

	fx_reset();
	obs_begin(T0, 6);
	F.obs.grant = 0;
	run();
	assert_int_equal(count_type(PLAN_LAUNCH), 0);
	assert_int_equal(F.out.want, 5);
}

static void
test_booting_and_idle_reduce_demand(void **state)
{
	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0 - MIN);
	mem_launched("i-2", 0, T0 - MIN);
	obs_begin(T0, 2);
	obs_inst("i-1", PLAN_ST_PENDING, 0, T0 - MIN, NULL);
	obs_inst("i-2", PLAN_ST_RUNNING, 0, T0 - MIN, NULL);
	run();
	assert_int_equal(F.out.booting, 2);
	assert_int_equal(launched(), 0);

	fx_reset();
	mem_launched("i-1", 0, T0 - 5 * MIN);
	obs_begin(T0, 3);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 5 * MIN, NULL);
	obs_worker("i-1", NULL, T0 - 4 * MIN);
	run();
	assert_int_equal(F.out.idle, 1);
	assert_int_equal(launched(), 2);
}

static void
test_launched_but_not_listed_counts(void **state)
{
	(void)state;
	fx_reset();
	/* EC2 may list a new instance late: it still counts as booting */
	mem_launched("i-new", 0, T0 - 2 * SEC);
	obs_begin(T0, 1);
	run();
	assert_int_equal(F.out.booting, 1);
	assert_int_equal(F.out.live, 1);
	assert_int_equal(launched(), 0);
	assert_non_null(plan_memory_find(&F.mem, "i-new"));
}

/*
 * Drive two polls: one at `seen` finds the worker idle, registered 10 s
 * earlier (after the last poll), then one at `later`.
 */
static void
idle_worker_at(int64_t seen, int64_t later, size_t pending)
{
	obs_begin(seen, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 3 * MIN, NULL);
	obs_worker("i-1", NULL, seen - 10 * SEC);
	run();
	obs_begin(later, pending);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 3 * MIN, NULL);
	obs_worker("i-1", NULL, seen - 10 * SEC);
	run();
}

static void
test_idle_termination(void **state)
{
	const struct plan_action *a;
	int64_t			  idle = T0 - 10 * SEC;

	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0 - 3 * MIN);
	F.mem.last_poll_ms = T0 - 30 * SEC;
	idle_worker_at(T0, idle + 10 * MIN - 1, 0);
	assert_true(plan_memory_find(&F.mem, "i-1")->idle_since_ms == idle);
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
	/* the poll loop wakes exactly when the idle time is up */
	assert_true(F.out.next_wake_ms == idle + 10 * MIN);

	fx_reset();
	mem_launched("i-1", 0, T0 - 3 * MIN);
	F.mem.last_poll_ms = T0 - 30 * SEC;
	idle_worker_at(T0, idle + 10 * MIN, 0);
	a = find_action(PLAN_TERMINATE, "i-1");
	assert_non_null(a);
	assert_int_equal(a->reason, PLAN_R_IDLE);
	assert_true(a->recheck);
	assert_false(a->console);
	assert_string_equal(a->worker, PREFIX ":g4dn.xlarge:i-1");

	/* a task waiting keeps the only idle worker */
	fx_reset();
	mem_launched("i-1", 0, T0 - 3 * MIN);
	F.mem.last_poll_ms = T0 - 30 * SEC;
	idle_worker_at(T0, idle + 20 * MIN, 1);
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
	assert_int_equal(launched(), 0);
}

static void
test_idle_kept_for_pending(void **state)
{
	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0 - 30 * MIN);
	mem_launched("i-2", 0, T0 - 30 * MIN);
	F.mem.last_poll_ms = T0 - 30 * SEC;
	obs_begin(T0, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_inst("i-2", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_worker("i-1", NULL, T0 - 29 * MIN);
	run();
	/* i-2 goes idle a minute later than i-1 */
	obs_begin(T0 + MIN, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_inst("i-2", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_worker("i-1", NULL, T0 - 29 * MIN);
	obs_worker("i-2", NULL, T0 - 29 * MIN);
	run();
	/* both past max_idle_time, one task waits: the longest idle goes */
	obs_begin(T0 + 20 * MIN, 1);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_inst("i-2", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_worker("i-1", NULL, T0 - 29 * MIN);
	obs_worker("i-2", NULL, T0 - 29 * MIN);
	run();
	assert_int_equal(count_type(PLAN_TERMINATE), 1);
	assert_non_null(find_action(PLAN_TERMINATE, "i-1"));
	assert_int_equal(launched(), 0);

	/* two tasks wait: both idle workers stay */
	obs_begin(T0 + 21 * MIN, 2);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_inst("i-2", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_worker("i-1", NULL, T0 - 29 * MIN);
	obs_worker("i-2", NULL, T0 - 29 * MIN);
	run();
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
}

static void
test_busy_never_terminated(void **state)
{
	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0 - 300 * MIN);
	obs_begin(T0, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 300 * MIN, NULL);
	obs_worker("i-1", "task-long", T0 - 299 * MIN);
	run();
	obs_begin(T0 + 100 * MIN, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 300 * MIN, NULL);
	obs_worker("i-1", "task-long", T0 - 299 * MIN);
	run();
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
	assert_int_equal(F.out.busy, 1);
}

static void
test_idle_since_task_end(void **state)
{
	struct plan_inst	*m;
	const char		*ids[4];

	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0 - 30 * MIN);
	obs_begin(T0, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_worker("i-1", "t1", T0 - 29 * MIN);
	run();
	/* the next poll sees it idle: its task ended 10 s after the last */
	obs_begin(T0 + 30 * SEC, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_worker("i-1", NULL, T0 - 29 * MIN);
	assert_int_equal(plan_transitions(&F.mem, &F.obs, ids, 4), 1);
	assert_string_equal(ids[0], "t1");
	obs_task_ended("t1", T0 + 10 * SEC);
	run();
	m = plan_memory_find(&F.mem, "i-1");
	assert_true(m->idle_since_ms == T0 + 10 * SEC);

	/* an end time before the last poll is clamped to it */
	fx_reset();
	mem_launched("i-1", 0, T0 - 30 * MIN);
	obs_begin(T0, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_worker("i-1", "t1", T0 - 29 * MIN);
	run();
	obs_begin(T0 + 30 * SEC, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_worker("i-1", NULL, T0 - 29 * MIN);
	obs_task_ended("t1", T0 - 10 * MIN);
	run();
	m = plan_memory_find(&F.mem, "i-1");
	assert_true(m->idle_since_ms == T0);
}

static void
test_idle_since_registration(void **state)
{
	struct plan_inst	*m;

	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0 - 2 * MIN);
	F.mem.last_poll_ms = T0 - 30 * SEC;
	obs_begin(T0, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 2 * MIN, NULL);
	obs_worker("i-1", NULL, T0 - 20 * SEC);
	run();
	m = plan_memory_find(&F.mem, "i-1");
	assert_true(m->idle_since_ms == T0 - 20 * SEC);
}

static void
test_spin_up_timeout(void **state)
{
	const struct plan_action *a;

	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0);
	obs_begin(T0 + 20 * MIN - 1, 1);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0, NULL);
	run();
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
	assert_int_equal(F.out.booting, 1);
	assert_true(F.out.next_wake_ms == T0 + 20 * MIN);

	obs_begin(T0 + 20 * MIN, 1);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0, NULL);
	run();
	a = find_action(PLAN_TERMINATE, "i-1");
	assert_non_null(a);
	assert_int_equal(a->reason, PLAN_R_SPIN_UP);
	assert_true(a->console);
	/* no longer booting: the pending task gets another instance */
	assert_int_equal(F.out.booting, 0);
	assert_int_equal(launched(), 1);
}

/*
 * EC2's launch time is truncated to the second: an instance launched
 * here has all of max_spin_up_time from when the launch returned.
 */
static void
test_spin_up_from_launch_return(void **state)
{
	(void)state;
	fx_reset();
	plan_memory_launched(&F.mem, "i-1", 0, T0, "subnet-a", T0 + 900);
	obs_begin(T0 + 20 * MIN + 899, 1);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0, NULL);
	run();
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
	assert_int_equal(F.out.booting, 1);
	assert_true(F.out.next_wake_ms == T0 + 20 * MIN + 900);
	assert_int_equal(launched(), 0);
	obs_begin(T0 + 20 * MIN + 900, 1);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0, NULL);
	run();
	assert_non_null(find_action(PLAN_TERMINATE, "i-1"));
}

static void
test_vanished_agent(void **state)
{
	const struct plan_action *a;

	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0 - 60 * MIN);
	obs_begin(T0, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 60 * MIN, NULL);
	obs_worker("i-1", NULL, T0 - 59 * MIN);
	run();
	obs_begin(T0 + MIN, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 60 * MIN, NULL);
	run();
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
	obs_begin(T0 + 6 * MIN, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 60 * MIN, NULL);
	run();
	a = find_action(PLAN_TERMINATE, "i-1");
	assert_non_null(a);
	assert_int_equal(a->reason, PLAN_R_VANISHED);
	assert_true(a->console);
	assert_true(a->recheck);
}

/* A busy agent that vanished: its task goes with the terminate action. */
static void
test_vanished_busy_agent(void **state)
{
	const struct plan_action *a;

	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0 - 60 * MIN);
	obs_begin(T0, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 60 * MIN, NULL);
	obs_worker("i-1", "t-1", T0 - 59 * MIN);
	run();
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
	obs_begin(T0 + 6 * MIN, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 60 * MIN, NULL);
	run();
	assert_int_equal(count_type(PLAN_TERMINATE), 0);	/* grace */
	obs_begin(T0 + 12 * MIN, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 60 * MIN, NULL);
	run();
	a = find_action(PLAN_TERMINATE, "i-1");
	assert_non_null(a);
	assert_int_equal(a->reason, PLAN_R_VANISHED);
	assert_string_equal(a->task, "t-1");
	assert_non_null(strstr(a->why, "last seen running task t-1"));
	/* and plan() itself re-queues nothing: act does, after the call */
	assert_int_equal(count_type(PLAN_REQUEUE), 0);
}

static void
test_adoption_after_restart(void **state)
{
	struct plan_inst	*m;

	(void)state;
	fx_reset();
	/* a new process: it knows nothing, EC2 lists two of ours */
	obs_begin(T0, 0);
	obs_inst("i-busy", PLAN_ST_RUNNING, 1, T0 - 90 * MIN, NULL);
	obs_inst("i-idle", PLAN_ST_RUNNING, 0, T0 - 90 * MIN, NULL);
	obs_inst("i-old", PLAN_ST_TERMINATED, 0, T0 - 900 * MIN, NULL);
	obs_worker("i-busy", "t1", T0 - 89 * MIN);
	obs_worker("i-idle", NULL, T0 - 89 * MIN);
	run();
	assert_int_equal(count_type(PLAN_ADOPT), 2);
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
	assert_null(plan_memory_find(&F.mem, "i-old"));
	m = plan_memory_find(&F.mem, "i-idle");
	assert_non_null(m);
	assert_true(m->adopted);
	/* a restart never shortens anyone's idle time */
	assert_true(m->idle_since_ms == T0);
	assert_true(plan_memory_find(&F.mem, "i-busy")->spot);

	obs_begin(T0 + 10 * MIN - 1, 0);
	obs_inst("i-busy", PLAN_ST_RUNNING, 1, T0 - 90 * MIN, NULL);
	obs_inst("i-idle", PLAN_ST_RUNNING, 0, T0 - 90 * MIN, NULL);
	obs_worker("i-busy", "t1", T0 - 89 * MIN);
	obs_worker("i-idle", NULL, T0 - 89 * MIN);
	run();
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
	assert_int_equal(count_type(PLAN_ADOPT), 0);
}

static void
test_adopted_unregistered_times_out_from_launch(void **state)
{
	(void)state;
	fx_reset();
	obs_begin(T0, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 15 * MIN, NULL);
	run();
	assert_int_equal(F.out.booting, 1);
	/* the spin-up clock runs from the launch, not the adoption */
	obs_begin(T0 + 5 * MIN - 1, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 15 * MIN, NULL);
	run();
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
	obs_begin(T0 + 5 * MIN, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 15 * MIN, NULL);
	run();
	assert_non_null(find_action(PLAN_TERMINATE, "i-1"));
}

/*
 * Polls that could not read the workers do not count as "the last
 * poll": a worker busy before an outage and idle after it is idle since
 * its task's end, and terminated at the first good poll once that is
 * past max_idle_time.
 */
static void
test_idle_across_outage(void **state)
{
	const char	*ids[4];
	int		 k;

	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0 - 30 * MIN);
	obs_begin(T0, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_worker("i-1", "t1", T0 - 29 * MIN);
	run();
	for (k = 1; k <= 3; k++) {	/* ClearML down */
		obs_begin(T0 + k * 5 * MIN, 0);
		obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
		F.obs.workers_ok = F.obs.queue_ok = 0;
		run();
		assert_int_equal(count_type(PLAN_TERMINATE), 0);
	}
	obs_begin(T0 + 20 * MIN, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 30 * MIN, NULL);
	obs_worker("i-1", NULL, T0 - 29 * MIN);
	assert_int_equal(plan_transitions(&F.mem, &F.obs, ids, 4), 1);
	obs_task_ended("t1", T0 + MIN);
	run();
	assert_true(plan_memory_find(&F.mem, "i-1")->idle_since_ms ==
	    T0 + MIN);
	assert_non_null(find_action(PLAN_TERMINATE, "i-1"));
	assert_string_equal(F.out.note, "");
}

static void
test_failed_observation(void **state)
{
	int	 which;

	(void)state;
	for (which = 0; which < 3; which++) {
		fx_reset();
		mem_launched("i-1", 0, T0 - 90 * MIN);
		mem_launched("i-2", 0, T0 - 90 * MIN);
		F.mem.last_poll_ms = T0 - MIN;
		obs_begin(T0 - 20 * MIN, 0);
		obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 90 * MIN, NULL);
		obs_inst("i-2", PLAN_ST_RUNNING, 0, T0 - 90 * MIN, NULL);
		obs_worker("i-1", NULL, T0 - 89 * MIN);
		run();
		obs_begin(T0, 5);
		obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 90 * MIN, NULL);
		obs_inst("i-2", PLAN_ST_RUNNING, 0, T0 - 90 * MIN, NULL);
		obs_worker("i-1", NULL, T0 - 89 * MIN);
		if (which == 0)
			F.obs.queue_ok = 0;
		else if (which == 1)
			F.obs.workers_ok = 0;
		else
			F.obs.ec2_ok = 0;
		run();
		assert_int_equal(count_type(PLAN_TERMINATE), 0);
		assert_int_equal(count_type(PLAN_LAUNCH), 0);
		assert_non_null(strstr(F.out.note, "observation failed"));
	}
	/* the note names what failed, as a list */
	F.obs.queue_ok = 0;
	F.obs.workers_ok = F.obs.ec2_ok = 1;
	run();
	assert_string_equal(F.out.note, "observation failed (queue): nothing "
	    "launched or terminated");
	F.obs.workers_ok = F.obs.ec2_ok = 0;
	run();
	assert_string_equal(F.out.note, "observation failed (queue, workers, "
	    "instances): nothing launched or terminated");
}

static void
test_interruption_requeues(void **state)
{
	const struct plan_action *a;
	int			 round;

	(void)state;
	fx_reset();
	for (round = 1; round <= 3; round++) {
		char id[32];

		snprintf(id, sizeof(id), "i-%d", round);
		mem_launched(id, 1, T0);
		obs_begin(T0 + round * MIN, 0);
		obs_inst(id, PLAN_ST_RUNNING, 1, T0, NULL);
		obs_worker(id, "task-x", T0 + 1);
		run();
		obs_begin(T0 + round * MIN + 30 * SEC, 0);
		obs_inst(id, PLAN_ST_TERMINATED, 1, T0,
		    "Server.SpotInstanceTermination");
		obs_worker(id, "task-x", T0 + 1);	/* a zombie, still */
		run();
		a = find_action(PLAN_FORGET, id);
		assert_non_null(a);
		assert_int_equal(a->reason, PLAN_R_INTERRUPTED);
		assert_string_equal(a->task, "task-x");
		assert_string_equal(a->why, "Server.SpotInstanceTermination");
		assert_non_null(find_action(PLAN_UNREGISTER, id));
		a = find_action(PLAN_REQUEUE, id);
		assert_non_null(a);
		assert_string_equal(a->task, "task-x");
		/* twice at most, then it is only reported */
		assert_int_equal(a->count, round <= 2 ? round : -1);
		assert_null(plan_memory_find(&F.mem, id));
	}
}

/*
 * A task taken after the last poll, on an instance interrupted before
 * this one: memory never saw it, the worker still listed (a zombie) does.
 */
static void
test_interruption_requeues_unseen_task(void **state)
{
	const struct plan_action *a;

	(void)state;
	fx_reset();
	mem_launched("i-1", 1, T0);
	obs_begin(T0 + MIN, 1);
	obs_inst("i-1", PLAN_ST_RUNNING, 1, T0, NULL);
	obs_worker("i-1", NULL, T0 + 1);
	run();
	obs_begin(T0 + MIN + 30 * SEC, 0);
	obs_inst("i-1", PLAN_ST_TERMINATED, 1, T0,
	    "Server.SpotInstanceTermination");
	obs_worker("i-1", "task-new", T0 + 1);
	run();
	a = find_action(PLAN_REQUEUE, "i-1");
	assert_non_null(a);
	assert_string_equal(a->task, "task-new");
	assert_int_equal(a->count, 1);
	assert_string_equal(find_action(PLAN_FORGET, "i-1")->task, "task-new");

	/* the other way: busy at the last poll, reported idle since */
	fx_reset();
	mem_launched("i-2", 1, T0);
	obs_begin(T0 + MIN, 0);
	obs_inst("i-2", PLAN_ST_RUNNING, 1, T0, NULL);
	obs_worker("i-2", "task-done", T0 + 1);
	run();
	obs_begin(T0 + MIN + 30 * SEC, 0);
	obs_inst("i-2", PLAN_ST_TERMINATED, 1, T0,
	    "Server.SpotInstanceTermination");
	obs_worker("i-2", NULL, T0 + 1);
	run();
	/* no task it holds: only a look for what its agent stopped */
	a = find_action(PLAN_REQUEUE, "i-2");
	assert_non_null(a);
	assert_string_equal(a->task, "");
	assert_int_equal(a->since_ms, T0 + MIN);
	assert_non_null(find_action(PLAN_UNREGISTER, "i-2"));
}

static void
test_terminated_by_us_no_requeue(void **state)
{
	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0);
	obs_begin(T0 + MIN, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0, NULL);
	obs_worker("i-1", "t", T0 + 1);
	run();
	plan_memory_terminating(&F.mem, "i-1", PLAN_R_VANISHED, T0 + MIN);
	obs_begin(T0 + 2 * MIN, 0);
	obs_inst("i-1", PLAN_ST_TERMINATED, 0, T0,
	    "Client.UserInitiatedShutdown");
	run();
	/*
	 * The look after the call re-queued what the worker held then;
	 * what its agent stopped on the way down is looked for, from the
	 * last poll that saw the instance healthy.
	 */
	assert_int_equal(count_type(PLAN_REQUEUE), 1);
	assert_string_equal(find_action(PLAN_REQUEUE, "i-1")->task, "");
	assert_int_equal(find_action(PLAN_REQUEUE, "i-1")->since_ms,
	    T0 + MIN);
	/* its worker was unregistered right after the terminate call */
	assert_int_equal(count_type(PLAN_UNREGISTER), 0);
	assert_int_equal(find_action(PLAN_FORGET, "i-1")->reason,
	    PLAN_R_VANISHED);
}

/*
 * The look at the workers after the terminate call failed: a task the
 * agent took meanwhile is re-queued once EC2 shows the instance gone.
 */
static void
test_terminated_unchecked_requeue(void **state)
{
	const struct plan_action *a;

	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0);
	obs_begin(T0 + MIN, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0, NULL);
	obs_worker("i-1", NULL, T0 + 1);
	run();
	plan_memory_terminating(&F.mem, "i-1", PLAN_R_IDLE, T0 + MIN);
	plan_memory_unchecked(&F.mem, "i-1");
	obs_begin(T0 + 2 * MIN, 0);
	obs_inst("i-1", PLAN_ST_TERMINATED, 0, T0,
	    "Client.UserInitiatedShutdown");
	obs_worker("i-1", "t-late", T0 + 1);
	run();
	a = find_action(PLAN_REQUEUE, "i-1");
	assert_non_null(a);
	assert_string_equal(a->task, "t-late");
	assert_int_equal(a->reason, PLAN_R_IDLE);
	assert_int_equal(a->count, 1);
	/* unregistered once: as the zombie of a terminated instance */
	assert_int_equal(count_type(PLAN_UNREGISTER), 1);

	/* when it holds no task, nothing to re-queue */
	fx_reset();
	mem_launched("i-2", 0, T0);
	obs_begin(T0 + MIN, 0);
	obs_inst("i-2", PLAN_ST_RUNNING, 0, T0, NULL);
	obs_worker("i-2", NULL, T0 + 1);
	run();
	plan_memory_terminating(&F.mem, "i-2", PLAN_R_IDLE, T0 + MIN);
	plan_memory_unchecked(&F.mem, "i-2");
	obs_begin(T0 + 2 * MIN, 0);
	run();				/* not listed any more, nor its worker */
	assert_string_equal(find_action(PLAN_REQUEUE, "i-2")->task, "");
	assert_non_null(find_action(PLAN_UNREGISTER, "i-2"));
}

/*
 * A task re-queued by the look after the terminate call is not put back
 * again for the same loss when EC2 shows the instance gone.
 */
static void
test_requeue_once_per_loss(void **state)
{
	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0);
	obs_begin(T0 + MIN, 0);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0, NULL);
	obs_worker("i-1", "t", T0 + 1);
	run();
	assert_int_equal(plan_memory_requeued(&F.mem, "t", "i-1"), 1);
	assert_true(plan_memory_requeued_for(&F.mem, "t", "i-1"));
	assert_false(plan_memory_requeued_for(&F.mem, "t", "i-9"));
	obs_begin(T0 + 2 * MIN, 0);
	obs_inst("i-1", PLAN_ST_TERMINATED, 0, T0,
	    "Server.SpotInstanceTermination");
	run();
	assert_string_equal(find_action(PLAN_REQUEUE, "i-1")->task, "");
	/* a verdict against it gives the count back */
	plan_memory_unrequeued(&F.mem, "t");
	assert_false(plan_memory_requeued_for(&F.mem, "t", "i-1"));
	assert_int_equal(plan_memory_requeued(&F.mem, "t", "i-2"), 1);
}

/*
 * An instance whose agent registered, took a task and went down between
 * two polls: its worker was never seen, yet what it stopped is looked
 * for (the caller knows the id its agent had), since its launch.
 */
static void
test_requeue_search_unseen_worker(void **state)
{
	const struct plan_action *a;

	(void)state;
	fx_reset();
	mem_launched("i-1", 1, T0);
	obs_begin(T0 + 5 * SEC, 1);
	obs_inst("i-1", PLAN_ST_PENDING, 1, T0, NULL);
	run();
	obs_begin(T0 + 20 * SEC, 0);
	obs_inst("i-1", PLAN_ST_TERMINATED, 1, T0,
	    "Server.SpotInstanceTermination");
	run();
	a = find_action(PLAN_REQUEUE, "i-1");
	assert_non_null(a);
	assert_string_equal(a->task, "");
	assert_string_equal(a->worker, "");
	assert_int_equal(a->since_ms, T0);
}

/*
 * ClearML did not answer the look at what a loss took: the next poll
 * that reads everything looks again, a few times at most.
 */
static void
test_loss_looked_at_again(void **state)
{
	struct plan_action	 a;
	const struct plan_action *r;
	int			 i;

	(void)state;
	fx_reset();
	memset(&a, 0, sizeof(a));
	a.type = PLAN_REQUEUE;
	a.count = 1;
	a.since_ms = T0;
	snprintf(a.task, sizeof(a.task), "t");
	snprintf(a.instance, sizeof(a.instance), "i-1");
	assert_int_equal(plan_memory_loss_again(&F.mem, &a), 0);
	obs_begin(T0 + MIN, 0);
	F.obs.workers_ok = 0;		/* not while ClearML is out */
	run();
	assert_int_equal(count_type(PLAN_REQUEUE), 0);
	obs_begin(T0 + 2 * MIN, 0);
	run();
	r = find_action(PLAN_REQUEUE, "i-1");
	assert_non_null(r);
	assert_string_equal(r->task, "t");
	assert_int_equal(r->count, 1);
	assert_int_equal(r->since_ms, T0);
	assert_int_equal(r->tries, 1);
	obs_begin(T0 + 3 * MIN, 0);
	run();
	assert_int_equal(count_type(PLAN_REQUEUE), 0);	/* once */
	for (i = 1; i < 4; i++) {
		a.tries = i;
		assert_int_equal(plan_memory_loss_again(&F.mem, &a), 0);
	}
	a.tries = 4;
	assert_int_equal(plan_memory_loss_again(&F.mem, &a), -1);
}

/* The verdict on a task lost with an instance, one row per case. */
static void
test_requeue_verdict(void **state)
{
	static const struct {
		const char	*status, *reason, *holder;
		int64_t		 changed;
		int		 seen, want;
		const char	*why;
	} rows[] = {
		/* the agent died silently: still in progress */
		{ "in_progress", "", NULL, T0 - 10 * MIN, 1, 1,
		    "it was running when its instance went" },
		/* ... and its zombie still lists it */
		{ "in_progress", "", "W", T0 - 10 * MIN, 0, 1,
		    "it was running when its instance went" },
		/* taken after the last healthy look, never seen */
		{ "in_progress", "", NULL, T0 + 2 * SEC, 0, 1,
		    "it was running when its instance went" },
		/* last reported by W long ago, in progress elsewhere */
		{ "in_progress", "", NULL, T0 - 10 * MIN, 0, 0,
		    "it is in_progress now" },
		/* another worker holds it now: never from last_worker */
		{ "in_progress", "", "X", T0 + 2 * SEC, 1, 0,
		    "it runs on worker X now" },
		/* the agent's SIGTERM stop, on the way down */
		{ "stopped", "user abort", NULL, T0 + 5 * SEC, 1, 1,
		    "its agent stopped it as its instance went" },
		{ "stopped", "user abort", NULL, T0 + 5 * SEC, 0, 1,
		    "its agent stopped it as its instance went" },
		/* within the clocks' slack */
		{ "stopped", "user abort", NULL, T0 - 500, 1, 1,
		    "its agent stopped it as its instance went" },
		/* a person stopped it while the instance was healthy */
		{ "stopped", "user abort", NULL, T0 - 30 * SEC, 1, 0,
		    "it was stopped (user abort) while its instance was "
		    "healthy" },
		{ "stopped", "task was stopped by tasks.stop", NULL,
		    T0 + 5 * SEC, 1, 0, "it was stopped (task was stopped by "
		    "tasks.stop) while its instance was healthy" },
		{ "stopped", "", NULL, T0 + 5 * SEC, 1, 0, "it was stopped "
		    "(no reason given) while its instance was healthy" },
		{ "stopped", "user abort", NULL, 0, 1, 0, "it was stopped "
		    "(user abort) while its instance was healthy" },
		{ "completed", "", NULL, T0 + 5 * SEC, 1, 0,
		    "it is completed now" },
		{ "queued", "", NULL, T0 + 5 * SEC, 1, 0, "it is queued now" },
		{ NULL, NULL, NULL, 0, 1, 0, "its status is unknown" },
	};
	struct plan_lost_task	 t;
	char			 why[256];
	size_t			 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(rows); i++) {
		memset(&t, 0, sizeof(t));
		t.status = rows[i].status;
		t.status_reason = rows[i].reason;
		t.holder = rows[i].holder;
		t.status_changed_ms = rows[i].changed;
		t.seen = rows[i].seen;
		assert_int_equal(plan_requeue_verdict(&t, "W", T0, why,
		    sizeof(why)), rows[i].want);
		assert_string_equal(why, rows[i].why);
	}
}

/*
 * clearml-agent polls its queue every 5 s: a task waits up to that long
 * beside an idle worker.  Polls every second meanwhile neither launch a
 * second instance for it nor terminate the worker past max_idle_time.
 */
static void
test_idle_worker_not_yet_polled(void **state)
{
	static const char *const q[] = { "t1" };
	int			 i;

	(void)state;
	fx_reset();
	F.pc.max_idle_ms = 10 * SEC;
	mem_launched("i-1", 0, T0);
	for (i = 0; i <= 6; i++) {
		obs_begin(T0 + 8 * SEC + i * SEC, i == 0 ? 0 : 1);
		F.obs.entries = i == 0 ? NULL : q;
		F.obs.nentries = i == 0 ? 0 : 1;
		obs_inst("i-1", PLAN_ST_RUNNING, 0, T0, NULL);
		obs_worker("i-1", NULL, T0 + SEC);
		run();
		assert_int_equal(launched(), 0);
		assert_int_equal(count_type(PLAN_TERMINATE), 0);
		assert_int_equal(F.out.demand, i == 0 ? -1 : 0);
	}
}

/*
 * An agent pops a task, then tells the server (tasks.started, a status
 * report naming it): for that moment its worker looks idle and the task
 * is in no queue.  The idle rule keeps one idle worker per such task.
 */
static void
test_unaccounted_pop_keeps_idle(void **state)
{
	static const char *const q1[] = { "ta", "tb" }, *const q2[] = { "tb" };
	static const char *const none[] = { NULL };

	(void)state;
	fx_reset();
	F.pc.max_idle_ms = MIN;
	mem_launched("i-1", 0, T0);
	mem_launched("i-2", 0, T0);
	obs_begin(T0 + SEC, 2);
	F.obs.entries = q1;
	F.obs.nentries = 2;
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0, NULL);
	obs_inst("i-2", PLAN_ST_RUNNING, 0, T0, NULL);
	obs_worker("i-1", NULL, T0 + 1);
	obs_worker("i-2", NULL, T0 + 1);
	run();
	/* two minutes on: ta left the queue, no worker shows it */
	obs_begin(T0 + 2 * MIN, 1);
	F.obs.entries = q2;
	F.obs.nentries = 1;
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0, NULL);
	obs_inst("i-2", PLAN_ST_RUNNING, 0, T0, NULL);
	obs_worker("i-1", NULL, T0 + 1);
	obs_worker("i-2", NULL, T0 + 1);
	run();
	assert_int_equal(F.out.unaccounted, 1);
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
	assert_int_equal(launched(), 0);	/* no double launch either */
	assert_string_equal(F.out.note, "2 idle workers kept for 1 pending "
	    "task and 1 taken from the queue that no worker shows yet");
	/* the next poll: i-1 reports it; i-2 has been idle long enough */
	obs_begin(T0 + 2 * MIN + 5 * SEC, 1);
	F.obs.entries = q2;
	F.obs.nentries = 1;
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0, NULL);
	obs_inst("i-2", PLAN_ST_RUNNING, 0, T0, NULL);
	obs_worker("i-1", "ta", T0 + 1);
	obs_worker("i-2", NULL, T0 + 1);
	run();
	assert_int_equal(F.out.unaccounted, 0);
	assert_int_equal(count_type(PLAN_TERMINATE), 0);	/* tb */
	/* the pure count: gone, not shown, not still queued */
	{
		static const char *const before[] = { "a", "b", "c", "d" };
		static const char *const now[] = { "b", "e" };
		static const char *const held[] = { NULL, "c", "x" };

		assert_int_equal(plan_unaccounted(before, 4, now, 2, held, 3),
		    2);
		assert_int_equal(plan_unaccounted(before, 4, none, 0, held,
		    0), 4);
		assert_int_equal(plan_unaccounted(before, 0, now, 2, held, 3),
		    0);
	}
}

static void
test_zombie_worker_unregistered(void **state)
{
	(void)state;
	fx_reset();
	obs_begin(T0, 0);
	obs_inst("i-dead", PLAN_ST_TERMINATED, 0, T0 - 60 * MIN, NULL);
	obs_worker("i-dead", NULL, T0 - 59 * MIN);
	run();
	assert_non_null(find_action(PLAN_UNREGISTER, "i-dead"));
	assert_int_equal(F.out.idle, 0);
	/* a zombie is no capacity: a task gets a new instance */
	obs_begin(T0 + SEC, 1);
	obs_inst("i-dead", PLAN_ST_TERMINATED, 0, T0 - 60 * MIN, NULL);
	obs_worker("i-dead", NULL, T0 - 59 * MIN);
	run();
	assert_int_equal(launched(), 1);
}

/* The launch action of one market, or NULL. */
static const struct plan_action *
launch_of(int spot)
{
	size_t	 i;

	for (i = 0; i < F.out.nactions; i++)
		if (F.out.actions[i].type == PLAN_LAUNCH &&
		    F.out.actions[i].spot == spot)
			return &F.out.actions[i];
	return NULL;
}

static int
launched_of(int spot)
{
	const struct plan_action *a = launch_of(spot);

	return a != NULL ? a->count : 0;
}

/* A blackout in force for this resource, as the supervisor says it. */
static void
obs_blackout(int64_t until)
{
	F.obs.blackout = 1;
	F.obs.blackout_until_ms = until;
	F.obs.blackout_origin = "gpu";
}

static void
test_spot_rollback_and_blackout(void **state)
{
	const struct plan_action *od;

	(void)state;
	fx_reset();
	F.pc.spot = 1;
	obs_begin(T0, 2);
	run();
	assert_int_equal(launched_of(1), 2);
	assert_null(launch_of(0));

	/*
	 * That launch of 2 met a spot failure at T0, which started a
	 * blackout of 10 minutes in this resource too.  The attempt that
	 * failed retries spot until spot_rollback_timeout...
	 */
	plan_memory_spot_failed(&F.mem, T0, 2);
	obs_begin(T0 + 5 * MIN - 1, 2);
	obs_blackout(T0 + 10 * MIN);
	run();
	assert_int_equal(launched_of(1), 2);
	assert_null(launch_of(0));
	assert_true(F.out.next_wake_ms == T0 + 5 * MIN);

	/* ... but any launch beyond it is on-demand at once */
	obs_begin(T0 + MIN, 3);
	obs_blackout(T0 + 10 * MIN);
	run();
	assert_int_equal(launched_of(1), 2);
	assert_non_null(od = launch_of(0));
	assert_int_equal(od->count, 1);
	assert_int_equal(od->by_blackout, 1);
	assert_int_equal(od->by_rollback, 0);
	assert_string_equal(od->converted, "on-demand instead of spot: spot "
	    "blackout until 08:10:00Z (started by gpu)");

	/* a second failure does not restart the clock */
	plan_memory_spot_failed(&F.mem, T0 + 4 * MIN, 2);
	obs_begin(T0 + 5 * MIN, 3);
	obs_blackout(T0 + 14 * MIN);
	run();
	assert_null(launch_of(1));
	assert_non_null(od = launch_of(0));
	assert_int_equal(od->count, 3);
	assert_int_equal(od->by_rollback, 2);
	assert_int_equal(od->by_blackout, 1);
	assert_string_equal(od->converted, "on-demand instead of spot: 2 "
	    "after spot_rollback_timeout (spot failing since 08:00:00Z), 1 in "
	    "the spot blackout until 08:14:00Z (started by gpu)");
	/* the attempt is served: over */
	assert_true(F.mem.spot_failure_ms == 0);

	/* new demand in the blackout: on-demand at once, no spot try */
	obs_begin(T0 + 6 * MIN, 1);
	obs_blackout(T0 + 14 * MIN);
	run();
	assert_null(launch_of(1));
	assert_int_equal(launch_of(0)->by_blackout, 1);

	/* the blackout over, spot again */
	obs_begin(T0 + 15 * MIN, 1);
	run();
	assert_int_equal(launched_of(1), 1);
	assert_null(launch_of(0));

	/*
	 * No blackout here (its period 0, or another resource's under
	 * scope "resource"): only the attempt rolls back, the rest is spot.
	 */
	fx_reset();
	F.pc.spot = 1;
	plan_memory_spot_failed(&F.mem, T0, 1);
	obs_begin(T0 + MIN, 3);
	run();
	assert_int_equal(launched_of(1), 3);
	obs_begin(T0 + 5 * MIN, 3);
	run();
	assert_int_equal(launched_of(1), 2);
	assert_int_equal(launch_of(0)->by_rollback, 1);
	assert_string_equal(launch_of(0)->converted, "on-demand instead of "
	    "spot: spot_rollback_timeout passed (spot failing since "
	    "08:00:00Z)");

	/* the demand served before the rollback: the attempt is over */
	fx_reset();
	F.pc.spot = 1;
	plan_memory_spot_failed(&F.mem, T0, 2);
	obs_begin(T0 + MIN, 0);
	run();
	assert_true(F.mem.spot_failure_ms == 0);
	assert_int_equal(F.mem.spot_attempt, 0);
	/* spot capacity back: so is the attempt */
	plan_memory_spot_failed(&F.mem, T0 + 2 * MIN, 2);
	mem_launched("i-1", 1, T0 + 3 * MIN);
	assert_true(F.mem.spot_failure_ms == 0);

	/* an on-demand resource never launches spot, converts nothing */
	fx_reset();
	obs_begin(T0, 1);
	obs_blackout(T0 + 10 * MIN);
	run();
	assert_int_equal(launched_of(0), 1);
	assert_int_equal(launch_of(0)->by_blackout, 0);
	assert_string_equal(launch_of(0)->converted, "");
}

static void
test_backoff(void **state)
{
	(void)state;
	fx_reset();
	plan_memory_backoff(&F.mem, T0, MIN);
	obs_begin(T0 + 30 * SEC, 2);
	run();
	assert_int_equal(count_type(PLAN_LAUNCH), 0);
	assert_non_null(strstr(F.out.note, "held back"));
	assert_true(F.out.next_wake_ms == T0 + MIN);
	obs_begin(T0 + MIN, 2);
	run();
	assert_int_equal(launched(), 2);
	/* repeated errors double the wait, and a reset clears it */
	plan_memory_backoff(&F.mem, T0 + MIN, MIN);
	assert_true(F.mem.backoff_until_ms == T0 + 3 * MIN);
	plan_memory_backoff(&F.mem, T0 + MIN, 0);
	assert_true(F.mem.backoff_until_ms == 0);
}

static void
test_stopped_terminated(void **state)
{
	const struct plan_action *a;

	(void)state;
	fx_reset();
	obs_begin(T0, 0);
	obs_inst("i-1", PLAN_ST_STOPPED, 0, T0 - MIN, NULL);
	run();
	a = find_action(PLAN_TERMINATE, "i-1");
	assert_non_null(a);
	assert_int_equal(a->reason, PLAN_R_STOPPED);
	assert_int_equal(F.out.live, 0);
}

static void
test_terminating_counts_as_live(void **state)
{
	(void)state;
	fx_reset();
	F.pc.max_instances = 1;
	mem_launched("i-1", 0, T0 - 60 * MIN);
	plan_memory_terminating(&F.mem, "i-1", PLAN_R_IDLE, T0 - SEC);
	obs_begin(T0, 1);
	obs_inst("i-1", PLAN_ST_RUNNING, 0, T0 - 60 * MIN, NULL);
	obs_worker("i-1", NULL, T0 - 59 * MIN);
	run();
	assert_int_equal(F.out.live, 1);
	assert_int_equal(F.out.idle, 0);
	assert_int_equal(count_type(PLAN_LAUNCH), 0);
	assert_int_equal(count_type(PLAN_TERMINATE), 0);
}

static void
test_worker_instance_parse(void **state)
{
	char	 id[32];

	(void)state;
	assert_int_equal(plan_worker_instance("qs:gpu:g4dn.xlarge:i-0abc",
	    "qs:gpu", id, sizeof(id)), 0);
	assert_string_equal(id, "i-0abc");
	assert_int_equal(plan_worker_instance("qs:gpu-big:t3:i-1", "qs:gpu",
	    id, sizeof(id)), -1);
	assert_int_equal(plan_worker_instance("qs:gpu", "qs:gpu", id,
	    sizeof(id)), -1);
	assert_int_equal(plan_worker_instance("qs:gpu:t3:", "qs:gpu", id,
	    sizeof(id)), -1);
	assert_int_equal(plan_worker_instance("qs:gpu:i-1", "qs:gpu", id,
	    sizeof(id)), -1);
	assert_int_equal(plan_state_parse("shutting-down"),
	    PLAN_ST_SHUTTING_DOWN);
	assert_int_equal(plan_state_parse("bogus"), PLAN_ST_OTHER);
	assert_string_equal(plan_reason_name(PLAN_R_SPIN_UP),
	    "spin-up timeout");
}

static void
test_memory_copy(void **state)
{
	struct plan_memory	 copy;

	(void)state;
	fx_reset();
	mem_launched("i-1", 0, T0);
	plan_memory_copy(&copy, &F.mem);
	plan_memory_launched(&copy, "i-2", 0, T0, NULL, T0);
	assert_int_equal(copy.ninst, 2);
	assert_int_equal(F.mem.ninst, 1);
	plan_memory_clear(&copy);
}

/*
 * Random observations, thousands of them, each checked against the
 * invariants: never above max_instances or the grant, never more
 * launches than demand, never a busy instance terminated, nothing done
 * on a failed observation, no instance terminated twice in one plan.
 */
static unsigned long	 rnd_state = 88172645463325252UL;

static unsigned
rnd(unsigned n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (unsigned)(rnd_state % n);
}

static int
obs_has(const char *id)
{
	size_t	 i;

	for (i = 0; i < F.obs.ninst; i++)
		if (strcmp(F.inst[i].id, id) == 0)
			return 1;
	return 0;
}

static void
random_observation(int64_t now)
{
	static const enum plan_state states[] = { PLAN_ST_PENDING,
	    PLAN_ST_RUNNING, PLAN_ST_RUNNING, PLAN_ST_RUNNING,
	    PLAN_ST_SHUTTING_DOWN, PLAN_ST_TERMINATED, PLAN_ST_STOPPED };
	size_t	 i, n = rnd(12);
	char	 id[32], task[40];

	obs_begin(now, rnd(4) == 0 ? rnd(40) : rnd(6));
	F.obs.queue_ok = rnd(10) != 0;
	F.obs.workers_ok = rnd(10) != 0;
	F.obs.ec2_ok = rnd(10) != 0;
	F.obs.grant = rnd(3) == 0 ? (int)rnd(4) : -1;
	F.obs.blackout = rnd(5) == 0;
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "i-%u", rnd(16));
		if (obs_has(id))
			continue;
		obs_inst(id, states[rnd(QS_ARRAYLEN(states))], rnd(2),
		    now - (int64_t)rnd(60) * MIN,
		    rnd(3) == 0 ? "Server.SpotInstanceTermination" : "");
		if (rnd(3) != 0) {
			snprintf(task, sizeof(task), "t-%u", rnd(8));
			obs_worker(id, rnd(2) ? task : NULL,
			    now - (int64_t)rnd(50) * MIN);
		}
	}
}

static int	 seen_launches, seen_terminates, seen_requeues;

static void
check_invariants(void)
{
	const struct plan_action	*a;
	size_t				 i, j, k;
	int				 launches = 0;

	for (i = 0; i < F.out.nactions; i++) {
		a = &F.out.actions[i];
		if (a->type == PLAN_LAUNCH)
			launches += a->count;
		seen_requeues += a->type == PLAN_REQUEUE;
		if (a->type != PLAN_TERMINATE)
			continue;
		seen_terminates++;
		assert_true(F.obs.queue_ok && F.obs.workers_ok &&
		    F.obs.ec2_ok);
		for (k = 0; k < F.obs.nworkers; k++)
			if (strcmp(F.workers[k].instance, a->instance) == 0)
				assert_null(F.workers[k].task);
		for (j = i + 1; j < F.out.nactions; j++)
			if (F.out.actions[j].type == PLAN_TERMINATE)
				assert_string_not_equal(a->instance,
				    F.out.actions[j].instance);
	}
	if (!F.obs.queue_ok || !F.obs.workers_ok || !F.obs.ec2_ok)
		assert_int_equal(launches, 0);
	assert_true(launches >= 0);
	seen_launches += launches > 0;
	assert_true(launches <= QS_MAX(0, F.out.demand));
	/* more may live than allowed (adopted, or the cap lowered) */
	if (launches > 0)
		assert_true(F.out.live + launches <= F.pc.max_instances);
	if (F.obs.grant >= 0)
		assert_true(launches <= F.obs.grant);
	assert_true(F.out.demand <= (int)F.obs.pending);
	/*
	 * live goes to the supervisor with each launch request (made only
	 * from a full observation), as the global cap's count: never fewer
	 * than EC2 shows pending or running
	 */
	if (!F.obs.queue_ok || !F.obs.workers_ok || !F.obs.ec2_ok)
		return;
	for (i = 0, k = 0; i < F.obs.ninst; i++)
		k += F.inst[i].state == PLAN_ST_PENDING ||
		    F.inst[i].state == PLAN_ST_RUNNING;
	assert_true(F.out.live >= (int)k);
}

/* Apply the plan as a poll would, so memory stays realistic. */
static void
apply_randomly(int64_t now)
{
	const struct plan_action	*a;
	size_t				 i;
	int				 k;
	char				 id[32];

	for (i = 0; i < F.out.nactions; i++) {
		a = &F.out.actions[i];
		if (a->type == PLAN_TERMINATE && rnd(4) != 0)
			plan_memory_terminating(&F.mem, a->instance, a->reason,
			    now);
		if (a->type == PLAN_LAUNCH)
			for (k = 0; k < a->count; k++) {
				snprintf(id, sizeof(id), "i-%u", rnd(16));
				plan_memory_launched(&F.mem, id, a->spot, now,
				    NULL, now);
			}
	}
	if (rnd(20) == 0)
		plan_memory_spot_failed(&F.mem, now, (int)rnd(4));
	if (rnd(30) == 0)
		plan_memory_backoff(&F.mem, now, MIN);
}

static void
test_random_invariants(void **state)
{
	int	 run_i, poll;
	int64_t	 now;

	(void)state;
	for (run_i = 0; run_i < 300; run_i++) {
		fx_reset();
		F.pc.max_instances = (int)rnd(8);
		F.pc.spot = rnd(2);
		F.pc.max_idle_ms = (int64_t)(1 + rnd(20)) * MIN;
		F.pc.max_spin_up_ms = (int64_t)(1 + rnd(40)) * MIN;
		now = T0;
		for (poll = 0; poll < 20; poll++) {
			now += (int64_t)(1 + rnd(10)) * MIN;
			random_observation(now);
			run();
			check_invariants();
			apply_randomly(now);
		}
	}
	/* the random walk really explored: every kind of decision came up */
	assert_true(seen_launches > 200);
	assert_true(seen_terminates > 200);
	assert_true(seen_requeues > 20);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_to_do),
		cmocka_unit_test(test_scale_from_zero_in_one_call),
		cmocka_unit_test(test_max_instances_cap),
		cmocka_unit_test(test_global_grant),
		cmocka_unit_test(test_booting_and_idle_reduce_demand),
		cmocka_unit_test(test_launched_but_not_listed_counts),
		cmocka_unit_test(test_idle_termination),
		cmocka_unit_test(test_idle_kept_for_pending),
		cmocka_unit_test(test_busy_never_terminated),
		cmocka_unit_test(test_idle_since_task_end),
		cmocka_unit_test(test_idle_since_registration),
		cmocka_unit_test(test_spin_up_timeout),
		cmocka_unit_test(test_spin_up_from_launch_return),
		cmocka_unit_test(test_vanished_agent),
		cmocka_unit_test(test_vanished_busy_agent),
		cmocka_unit_test(test_adoption_after_restart),
		cmocka_unit_test(test_adopted_unregistered_times_out_from_launch),
		cmocka_unit_test(test_failed_observation),
		cmocka_unit_test(test_idle_across_outage),
		cmocka_unit_test(test_interruption_requeues),
		cmocka_unit_test(test_interruption_requeues_unseen_task),
		cmocka_unit_test(test_terminated_by_us_no_requeue),
		cmocka_unit_test(test_terminated_unchecked_requeue),
		cmocka_unit_test(test_requeue_once_per_loss),
		cmocka_unit_test(test_requeue_search_unseen_worker),
		cmocka_unit_test(test_loss_looked_at_again),
		cmocka_unit_test(test_requeue_verdict),
		cmocka_unit_test(test_idle_worker_not_yet_polled),
		cmocka_unit_test(test_unaccounted_pop_keeps_idle),
		cmocka_unit_test(test_zombie_worker_unregistered),
		cmocka_unit_test(test_spot_rollback_and_blackout),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_stopped_terminated),
		cmocka_unit_test(test_terminating_counts_as_live),
		cmocka_unit_test(test_worker_instance_parse),
		cmocka_unit_test(test_memory_copy),
		cmocka_unit_test(test_random_invariants),
	};
	int	 rc;

	rc = cmocka_run_group_tests(tests, NULL, NULL);
	plan_output_clear(&F.out);
	plan_memory_clear(&F.mem);
	return rc;
}
