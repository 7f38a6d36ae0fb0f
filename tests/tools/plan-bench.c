/*
 * plan-bench: what plan_resource() costs on a realistic fleet of N
 * instances, for make bench.
 *
 *   plan-bench [-i CALLS] N...
 *
 * For each N, one line:
 *
 *   plan n=N calls=C ns_min=X ns_median=Y actions=A live=L idle=I
 *       busy=B booting=O terminate=T
 *
 * Without -i, the number of calls is chosen so that one round takes
 * about 0.2 s; the best and the median of five rounds are printed.  With
 * -i, one round of exactly CALLS calls: that is for callgrind, run with
 * --collect-atstart=no --toggle-collect=bench_calls, so that only the
 * timed calls are counted, not building the fleet or the first polls.
 *
 * The fleet, in twentieths, as a poll of a busy resource sees it (at
 * N = 10, every other twentieth): 12 of 20 running with a worker on a
 * task; 2 idle for 20 minutes (past max_idle_time); 2 idle for 6
 * minutes, whose tasks ended between two polls; 2 pending, launched a
 * minute ago, not registered yet; 1 whose worker vanished from ClearML;
 * 1 gone in a spot interruption while its worker held a task, the
 * worker still listed (a zombie to unregister).  Half are spot.  The
 * queue holds N/20 tasks (at least one).
 *
 * The memory is built by three polls (20 and 5 minutes ago, and now)
 * before the timed calls, which all see the same observation as the
 * last of them, so every timed call does the same work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "worker.h"

#define SEC		1000
#define MIN		(60 * SEC)
#define T0		((int64_t)1800000000000)	/* any epoch ms */
#define PREFIX		"qbench:gpu:g4dn.xlarge"
#define ROUNDS		5
#define ROUND_NS	200000000LL

struct fleet {
	size_t				 n;
	struct plan_conf		 pc;
	struct plan_memory		 mem;
	struct plan_obs			 obs;
	struct plan_obs_instance	*inst;
	struct plan_obs_worker		*workers;
	struct plan_obs_task		*ended;
	char				(*iid)[32];
	char				(*wid)[160];
	char				(*tid)[40];
};

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: plan-bench [-i CALLS] N...\n");
	exit(2);
}

static int64_t
ns_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
fleet_init(struct fleet *f, size_t n)
{
	size_t	 i;

	memset(f, 0, sizeof(*f));
	f->n = n;
	f->inst = xcalloc(n, sizeof(*f->inst));
	f->workers = xcalloc(n, sizeof(*f->workers));
	f->ended = xcalloc(n, sizeof(*f->ended));
	f->iid = xcalloc(n, sizeof(*f->iid));
	f->wid = xcalloc(n, sizeof(*f->wid));
	f->tid = xcalloc(n, sizeof(*f->tid));
	for (i = 0; i < n; i++) {
		/* ids shaped like EC2's and ClearML's */
		snprintf(f->iid[i], sizeof(f->iid[i]), "i-%017llx",
		    (unsigned long long)((0x0a1b2c3d4e5f6071ULL ^
		    (i * 0x9e3779b97f4a7c15ULL)) & 0xfffffffffffffffULL));
		snprintf(f->wid[i], sizeof(f->wid[i]), "%s:%s", PREFIX,
		    f->iid[i]);
		snprintf(f->tid[i], sizeof(f->tid[i]), "%08x%024llx",
		    (unsigned)i, (unsigned long long)(i * 2654435761ULL));
	}
	f->pc.max_instances = (int)(n + n / 10 + 1);
	f->pc.spot = 1;
	f->pc.max_requeues = 2;
	f->pc.max_idle_ms = 15 * MIN;
	f->pc.max_spin_up_ms = 30 * MIN;
	f->pc.vanished_grace_ms = 5 * MIN;
	f->pc.spot_rollback_ms = 5 * MIN;
	f->pc.polling_ms = 30 * SEC;
}

static void
fleet_free(struct fleet *f)
{
	plan_memory_clear(&f->mem);
	free(f->inst);
	free(f->workers);
	free(f->ended);
	free(f->iid);
	free(f->wid);
	free(f->tid);
}

static void
fleet_worker(struct fleet *f, size_t i, int busy)
{
	struct plan_obs_worker	*w = &f->workers[f->obs.nworkers++];

	w->id = f->wid[i];
	snprintf(w->instance, sizeof(w->instance), "%s", f->iid[i]);
	w->task = busy ? f->tid[i] : NULL;
	w->register_ms = T0 - 40 * MIN;
}

/* The observation of poll 0 (20 minutes ago), 1 (5 minutes ago) or 2. */
static void
fleet_observe(struct fleet *f, int phase)
{
	struct plan_obs_instance	*o;
	size_t				 i, k, ninst = 0;
	static const int64_t		 at[] = { T0 - 20 * MIN, T0 - 5 * MIN,
					    T0 };

	memset(&f->obs, 0, sizeof(f->obs));
	f->obs.now_ms = at[phase];
	f->obs.queue_ok = f->obs.workers_ok = f->obs.ec2_ok = 1;
	f->obs.pending = (f->n + 19) / 20;
	f->obs.grant = -1;
	f->obs.workers = f->workers;
	f->obs.tasks = f->ended;
	for (i = 0; i < f->n; i++) {
		k = i * 20 / f->n;	/* the same shares at every size */
		if ((k == 16 || k == 17) && phase < 2)
			continue;	/* not launched yet */
		o = &f->inst[ninst++];
		memset(o, 0, sizeof(*o));
		snprintf(o->id, sizeof(o->id), "%s", f->iid[i]);
		o->spot = (int)(i & 1);
		o->state = PLAN_ST_RUNNING;
		o->launch_ms = T0 - 45 * MIN;
		snprintf(o->subnet, sizeof(o->subnet), "subnet-0%07zx", i % 3);
		if (k == 16 || k == 17) {
			o->state = PLAN_ST_PENDING;
			o->launch_ms = T0 - MIN;
		} else if (k == 19 && phase == 2) {
			o->state = PLAN_ST_TERMINATED;
			snprintf(o->state_reason, sizeof(o->state_reason),
			    "Server.SpotInstanceTermination: Spot instance "
			    "termination");
		}
		if (k < 12 || (k >= 14 && k <= 15 && phase == 0) ||
		    (k == 18 && phase < 2) || k == 19)
			fleet_worker(f, i, 1);
		else if (k >= 12 && k <= 15)
			fleet_worker(f, i, 0);
		if (k >= 14 && k <= 15 && phase == 1) {
			f->ended[f->obs.ntasks].id = f->tid[i];
			f->ended[f->obs.ntasks++].ended_ms = T0 - 6 * MIN;
		}
	}
	f->obs.inst = f->inst;
	f->obs.ninst = ninst;
}

static void __attribute__((noinline))
bench_calls(struct fleet *f, long calls, struct plan_output *last)
{
	struct plan_output	 out;
	long			 i;

	for (i = 0; i < calls; i++) {
		plan_resource(&f->obs, &f->pc, &f->mem, &out);
		if (i + 1 < calls)
			plan_output_clear(&out);
	}
	*last = out;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static size_t
count_terminations(const struct plan_output *out)
{
	size_t	 i, n = 0;

	for (i = 0; i < out->nactions; i++)
		n += out->actions[i].type == PLAN_TERMINATE;
	return n;
}

/* Three polls build the memory, then the timed rounds. */
static void
bench_one(size_t n, long fixed_calls)
{
	struct fleet		 f;
	struct plan_output	 out;
	int64_t			 ns[ROUNDS], t;
	long			 calls = fixed_calls > 0 ? fixed_calls : 1;
	int			 phase, r, rounds;

	fleet_init(&f, n);
	for (phase = 0; phase < 3; phase++) {
		fleet_observe(&f, phase);
		plan_resource(&f.obs, &f.pc, &f.mem, &out);
		plan_output_clear(&out);
	}
	if (fixed_calls <= 0) {
		/* calibrate: double until one round takes ROUND_NS / 4 */
		for (;;) {
			t = ns_now();
			bench_calls(&f, calls, &out);
			t = ns_now() - t;
			plan_output_clear(&out);
			if (t >= ROUND_NS / 4 || calls > (1L << 28))
				break;
			calls *= 2;
		}
		calls = (long)((double)calls * ROUND_NS /
		    (double)QS_MAX(t, 1));
		calls = QS_MAX(calls, 1);
	}
	rounds = fixed_calls > 0 ? 1 : ROUNDS;
	for (r = 0; r < rounds; r++) {
		t = ns_now();
		bench_calls(&f, calls, &out);
		ns[r] = (ns_now() - t) / calls;
		if (r + 1 < rounds)
			plan_output_clear(&out);
	}
	qsort(ns, (size_t)rounds, sizeof(ns[0]), cmp_i64);
	printf("plan n=%zu calls=%ld ns_min=%lld ns_median=%lld actions=%zu "
	    "live=%d idle=%d busy=%d booting=%d terminate=%zu\n", n, calls,
	    (long long)ns[0], (long long)ns[rounds / 2], out.nactions,
	    out.live, out.idle, out.busy, out.booting,
	    count_terminations(&out));
	plan_output_clear(&out);
	fleet_free(&f);
}

int
main(int argc, char **argv)
{
	long	 calls = 0, n;
	char	*end;
	int	 ch, i;

	while ((ch = getopt(argc, argv, "i:")) != -1) {
		if (ch != 'i')
			usage();
		calls = strtol(optarg, &end, 10);
		if (*end != '\0' || calls < 1) {
			fprintf(stderr, "plan-bench: -i %s: not a positive "
			    "number\n", optarg);
			return 2;
		}
	}
	if (optind == argc)
		usage();
	for (i = optind; i < argc; i++) {
		n = strtol(argv[i], &end, 10);
		if (*end != '\0' || n < 20 / 2 || n > 1000000) {
			fprintf(stderr, "plan-bench: %s: give a fleet size "
			    "from 10 to 1000000\n", argv[i]);
			return 2;
		}
		bench_one((size_t)n, calls);
	}
	return 0;
}
