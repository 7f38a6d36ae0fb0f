/*
 * test_global.c: the global cap (max_instances_total) as the supervisor
 * keeps it, against a model of the cloud.  Cases for the defects seen
 * (a worker process that dies takes its instances out of the count), then
 * thousands of random sequences of polls, launch requests, launches,
 * terminations, crashes, restarts and reloads (resources removed, added
 * back, the cap changed): no grant ever lets the instances that exist
 * plus the launches granted exceed the cap.
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
#include "proto.h"
#include "supervisor.h"

#define NRES	3

static const char *const names[NRES] = { "gpu", "cpu", "spot" };

/* The cloud, and each resource's worker process as the model sees it. */
struct model {
	int		 configured;	/* in the configuration */
	int		 truth;		/* its instances alive in EC2 */
	int		 proc;		/* a worker process runs */
	int		 read;		/* that process has read EC2 */
	int		 memory;	/* what it remembers */
	int		 owed;		/* granted to it, not launched yet */
	int		 waiting;	/* its request is not answered */
};

static struct sup		 S;
static struct qscale_conf	 C;
static struct conf_resource	 R[NRES];
static struct sup_child		*child[NRES];
static struct model		 M[NRES];
static int			 orphans_truth;
static int			 grants_seen, waits_seen, bounds_seen;
static int			 max_reached;

static unsigned long	 rnd_state = 2463534242UL;

static unsigned
rnd(unsigned n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (unsigned)(rnd_state % n);
}

/* The configuration holds the resources marked configured. */
static void
conf_sync(void)
{
	size_t	 i, n = 0;

	for (i = 0; i < NRES; i++)
		if (M[i].configured) {
			R[n].name = (char *)names[i];
			R[n].max_instances = 4;
			n++;
		}
	C.nresources = n;
}

static void
fx_reset(int cap)
{
	size_t	 i;

	for (i = 0; i < NRES; i++)
		free(child[i]);
	memset(&S, 0, sizeof(S));
	memset(&C, 0, sizeof(C));
	memset(R, 0, sizeof(R));
	memset(child, 0, sizeof(child));
	memset(M, 0, sizeof(M));
	TAILQ_INIT(&S.children);
	S.conf = &C;
	C.resources = R;
	C.max_instances_total = cap;
	orphans_truth = 0;
}

/* A resource enters the child table (start, or added by a reload). */
static void
add_child(int i)
{
	struct sup_child	*c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->sup = &S;
	c->name = (char *)names[i];
	c->bound = 4;
	TAILQ_INSERT_TAIL(&S.children, c, entry);
	child[i] = c;
	M[i].configured = 1;
	conf_sync();
}

static void
start_process(int i)
{
	child[i]->pid = 100 + i;
	child[i]->state = CHILD_RUNNING;
	M[i].proc = 1;
	M[i].read = 0;
	M[i].memory = 0;
}

static int
total_truth(void)
{
	int	 i, n = orphans_truth;

	for (i = 0; i < NRES; i++)
		n += M[i].truth + M[i].owed;
	return n;
}

/* Grants answered since the last look: checked against the cloud. */
static void
collect(int before[NRES])
{
	int	 i, g;

	for (i = 0; i < NRES; i++) {
		if (child[i] == NULL || !M[i].waiting ||
		    child[i]->req_want != 0)
			continue;
		g = child[i]->granted - before[i];
		assert_true(g >= 0);
		M[i].waiting = 0;
		M[i].owed += g;
		grants_seen += g > 0;
		if (g > 0)
			assert_true(total_truth() <= C.max_instances_total);
		if (total_truth() == C.max_instances_total)
			max_reached++;
	}
}

static void
snapshot_granted(int before[NRES])
{
	int	 i;

	for (i = 0; i < NRES; i++)
		before[i] = child[i] != NULL ? child[i]->granted : 0;
}

static void
send_state(int i, int ec2_ok)
{
	char	 text[128];

	if (ec2_ok) {
		M[i].read = 1;
		M[i].memory = M[i].truth;
	}
	snprintf(text, sizeof(text), "{\"counts\":{\"live\":%d,\"ec2_ok\":%s}}",
	    M[i].memory, ec2_ok ? "true" : "false");
	child[i]->snapshot = cJSON_Parse(text);
	assert_non_null(child[i]->snapshot);
	sup_global_child_state(child[i]);
	cJSON_Delete(child[i]->snapshot);
	child[i]->snapshot = NULL;
	sup_global_counts_changed(&S);
}

static void
send_request(int i, int want)
{
	struct proto_msg	 m;
	char			 text[128];

	M[i].read = 1;
	M[i].memory = M[i].truth;
	memset(&m, 0, sizeof(m));
	m.hdr.type = MSG_LAUNCH_REQ;
	snprintf(text, sizeof(text), "{\"id\":%d,\"want\":%d,\"live\":%d}",
	    (int)rnd(1000), want, M[i].truth);
	m.body = cJSON_Parse(text);
	M[i].waiting = 1;
	sup_global_message(child[i], &m);
	cJSON_Delete(m.body);
}

/* The process acts on its grant: launches, or not (capacity, errors). */
static void
launch(int i)
{
	int	 n = M[i].owed - (int)rnd(2);

	n = QS_MAX(n, 0);
	M[i].truth += n;
	M[i].memory += n;
	M[i].owed = 0;
}

static void
crash(int i)
{
	/* a RunInstances in flight may still go through */
	if (M[i].owed > 0 && rnd(2))
		M[i].truth += M[i].owed;
	M[i].owed = 0;
	M[i].waiting = 0;
	M[i].proc = 0;
	child[i]->pid = 0;
	child[i]->state = CHILD_BACKOFF;
	sup_global_child_exited(child[i]);
}

/* A reload without resource i: its instances become orphans. */
static void
remove_resource(int i)
{
	if (M[i].proc)
		crash(i);	/* stopped; the exit is what follows */
	sup_global_child_removed(child[i]);
	TAILQ_REMOVE(&S.children, child[i], entry);
	free(child[i]);
	child[i] = NULL;
	M[i].configured = 0;
	orphans_truth += M[i].truth;
	M[i].truth = 0;
	conf_sync();
	sup_global_counts_changed(&S);
}

/* Added back by a reload: its orphans are its own again. */
static void
add_resource(int i)
{
	/* (no more than its max_instances: an unknown count is bounded
	 * by that) */
	int	 back = (int)rnd((unsigned)QS_MIN(orphans_truth, 4) + 1);

	orphans_truth -= back;
	M[i].truth = back;
	add_child(i);
	start_process(i);
	sup_global_counts_changed(&S);
}

/* The supervisor's reading of the orphans, begun at gen. */
static void
orphans_read(uint64_t gen, int seen)
{
	S.orphans.live = seen;
	if (gen == S.orphans.gen) {
		S.orphans.known = 1;
		S.orphans.carried = 0;
	}
	sup_global_counts_changed(&S);
}

static void
step(void)
{
	int		 i = (int)rnd(NRES), k = (int)rnd(100), before[NRES];
	uint64_t	 gen;
	int		 seen;

	snapshot_granted(before);
	if (child[i] == NULL) {
		if (k < 10)
			add_resource(i);
	} else if (!M[i].proc) {
		if (k < 40)
			start_process(i);
		else if (k < 45)
			remove_resource(i);
	} else if (M[i].owed > 0) {
		if (k < 70)
			launch(i);
		else if (k < 80)
			crash(i);
	} else if (M[i].waiting) {
		if (k < 10)
			crash(i);
		else if (k < 20) {	/* waited long: bounded by the max */
			child[i]->req_mono -= 10 * SUP_GRANT_WAIT_MS;
			bounds_seen++;
			sup_global_counts_changed(&S);
		}
	} else if (k < 30)
		send_state(i, rnd(10) != 0);
	else if (k < 55 && M[i].read + rnd(2) > 0)
		send_request(i, 1 + (int)rnd(4));
	else if (k < 65 && M[i].truth > 0) {
		M[i].truth--;	/* terminated, idle */
	} else if (k < 72)
		crash(i);
	else if (k < 76)
		remove_resource(i);
	else if (k < 80) {
		C.max_instances_total = 1 + (int)rnd(10);	/* reload */
		sup_global_counts_changed(&S);
	} else if (k < 90) {
		gen = S.orphans.gen;
		seen = orphans_truth;
		if (orphans_truth > 0 && rnd(2))
			orphans_truth--;	/* an orphan terminated */
		orphans_read(gen, QS_MIN(seen, orphans_truth));
	}
	collect(before);
	for (i = 0; i < NRES; i++)
		waits_seen += M[i].waiting;
}

static void
test_random_sequences(void **state)
{
	int	 run, n, i;

	(void)state;
	log_set_level(LOG_LVL_ERROR);
	for (run = 0; run < 400; run++) {
		fx_reset(1 + (int)rnd(8));
		for (i = 0; i < NRES; i++) {
			add_child(i);
			start_process(i);
			/* instances left by an earlier daemon */
			M[i].truth = (int)rnd(3);
		}
		for (n = 0; n < 300; n++)
			step();
	}
	fx_reset(1);
	/* the walk explored: grants, waits, the bound, the cap reached */
	assert_true(grants_seen > 1000);
	assert_true(waits_seen > 100);
	assert_true(bounds_seen > 100);
	assert_true(max_reached > 1000);
}

/*
 * The defect: a worker process dies with its instances up; the others
 * must not be granted them.  Cap 5: gpu has 3, cpu 2; gpu dies; cpu
 * asks for 3 and gets none, until gpu's new process reads EC2.
 */
/* What the status says: instances_in_use, and who is not counted. */
static int
status_in_use(int *not_counted)
{
	cJSON	*o = sup_global_status(&S);
	int	 n;

	n = cJSON_GetObjectItem(o, "instances_in_use")->valueint;
	*not_counted = cJSON_GetArraySize(cJSON_GetObjectItem(o,
	    "not_counted"));
	cJSON_Delete(o);
	return n;
}

static void
test_dead_process_still_counts(void **state)
{
	int	 before[NRES], un;

	(void)state;
	log_set_level(LOG_LVL_ERROR);
	fx_reset(5);
	add_child(0);
	add_child(1);
	start_process(0);
	start_process(1);
	S.orphans.known = 1;
	M[0].truth = 3;
	M[1].truth = 2;
	send_state(0, 1);
	send_state(1, 1);
	crash(0);
	assert_int_equal(status_in_use(&un), 5);	/* was 2 */
	assert_int_equal(un, 0);
	snapshot_granted(before);
	send_request(1, 3);
	collect(before);
	assert_int_equal(child[1]->granted, 0);
	/* the new process could not read EC2: still counted */
	start_process(0);
	send_state(0, 0);
	send_request(1, 3);
	assert_int_equal(child[1]->granted, 0);
	/* it reads EC2: one of its three was terminated meanwhile */
	M[0].truth = 2;
	send_state(0, 1);
	snapshot_granted(before);
	send_request(1, 3);
	assert_int_equal(child[1]->granted, 1);
	collect(before);
	fx_reset(1);
}

/* A new daemon: one resource's count unknown makes the others wait. */
static void
test_unknown_waits(void **state)
{
	int	 before[NRES], un;

	(void)state;
	log_set_level(LOG_LVL_ERROR);
	fx_reset(5);
	add_child(0);
	add_child(1);
	start_process(0);
	start_process(1);
	S.orphans.known = 1;
	M[0].truth = 4;
	snapshot_granted(before);
	send_request(1, 3);
	assert_int_equal(child[1]->req_want, 3);	/* waits */
	assert_int_equal(status_in_use(&un), 0);	/* gpu: not counted */
	assert_int_equal(un, 1);
	send_state(0, 1);			/* gpu's count arrives */
	assert_int_equal(child[1]->req_want, 0);
	assert_int_equal(child[1]->granted, 1);
	collect(before);
	fx_reset(1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dead_process_still_counts),
		cmocka_unit_test(test_unknown_waits),
		cmocka_unit_test(test_random_sequences),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
