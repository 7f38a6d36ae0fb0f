/*
 * dryrun.c: qscaled --plan.  One observation of every resource, the plan
 * it leads to, printed with the reasons; no call that changes anything
 * is made.  It shows what a freshly started qscaled would do at its first
 * poll: idle times start at that poll, so it terminates no idle worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common.h"
#include "worker.h"

static void
dry_print_observation(const struct wpoll *p)
{
	size_t	 i, idle = 0, busy = 0;
	int	 states[PLAN_ST_OTHER + 1] = { 0 };

	for (i = 0; i < p->nworkers; i++) {
		if (p->workers[i].task != NULL)
			busy++;
		else
			idle++;
	}
	for (i = 0; i < p->ninst; i++)
		states[p->inst[i].state]++;
	printf("  observed: %zu pending task%s%s, %d pending and %d running "
	    "instance%s, %zu worker%s (%zu idle, %zu busy)\n", p->pending,
	    p->pending == 1 ? "" : "s", p->queue_missing ?
	    " (the queue does not exist)" : "", states[PLAN_ST_PENDING],
	    states[PLAN_ST_RUNNING], states[PLAN_ST_RUNNING] == 1 ? "" : "s",
	    p->nworkers, p->nworkers == 1 ? "" : "s", idle, busy);
	for (i = 0; i < 3; i++)
		if (p->obs_error[i][0] != '\0')
			printf("  FAILED: %s\n", p->obs_error[i]);
}

static void
dry_print_plan(const struct wpoll *p)
{
	const struct plan_action	*a;
	size_t				 i, shown = 0;

	printf("  demand %d = %zu pending - %d idle - %d booting; %d live of "
	    "max_instances %d\n", p->out.demand, p->pending, p->out.idle,
	    p->out.booting, p->out.live, p->w->res->max_instances);
	for (i = 0; i < p->out.nactions; i++) {
		a = &p->out.actions[i];
		switch (a->type) {
		case PLAN_LAUNCH:
			printf("  would launch %d %s instance%s (%s%s%s)\n",
			    a->count, a->spot ? "spot" : "on-demand",
			    a->count == 1 ? "" : "s", a->why,
			    a->converted[0] != '\0' ? "; " : "",
			    a->converted);
			break;
		case PLAN_TERMINATE:
			printf("  would terminate %s (%s): %s\n", a->instance,
			    plan_reason_name(a->reason), a->why);
			break;
		case PLAN_REQUEUE:
			if (a->task[0] != '\0')
				printf("  would re-queue task %s of %s\n",
				    a->task, a->instance);
			printf("  would look for tasks its agent stopped as "
			    "%s went\n", a->instance);
			break;
		case PLAN_UNREGISTER:
			printf("  would unregister worker %s\n", a->worker);
			break;
		case PLAN_ADOPT:
		case PLAN_FORGET:
			continue;
		}
		shown++;
	}
	if (shown == 0)
		printf("  would do nothing\n");
	if (p->out.note[0] != '\0')
		printf("  note: %s\n", p->out.note);
}

static int
dry_run_one(struct qscale_conf *conf, size_t index)
{
	const struct conf_resource	*r = &conf->resources[index];
	struct wproc			 w;
	int				 failed;

	memset(&w, 0, sizeof(w));
	w.conf = conf;
	w.index = index;
	w.res = r;
	printf("resource %s (queue %s, %s, %s, max_instances %d):\n", r->name,
	    r->queue, r->instance_type, r->spot ? "spot" : "on-demand",
	    r->max_instances);
	if ((w.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	w.poll = poll_new(&w);
	w.poll->dry_run = 1;
	if (w.poll->init_error[0] != '\0') {
		printf("  FAILED: %s\n", w.poll->init_error);
		poll_free(w.poll);
		event_base_free(w.base);
		return 1;
	}
	w.polls = 1;
	poll_start(&w);
	event_base_dispatch(w.base);
	dry_print_observation(w.poll);
	failed = !w.poll->queue_ok || !w.poll->workers_ok || !w.poll->ec2_ok;
	if (!failed)
		dry_print_plan(w.poll);
	else
		printf("  nothing would be launched or terminated: the "
		    "observation failed\n");
	poll_free(w.poll);
	event_base_free(w.base);
	return failed;
}

/* Exit status: 0 when every resource could be observed. */
int
poll_dry_run(struct qscale_conf *conf)
{
	size_t	 i;
	int	 failed = 0;

	printf("what a freshly started qscaled would do at its first poll "
	    "(nothing is changed):\n");
	for (i = 0; i < conf->nresources; i++)
		failed += dry_run_one(conf, i);
	return failed > 0;
}
