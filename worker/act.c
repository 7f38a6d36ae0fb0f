/*
 * act.c: carry out what plan() decided, in parallel: one launch chain
 * (subnets tried in order within the poll, spot failures reported for
 * the blackout), one batch of terminations (console output logged first
 * where asked, a fresh look at the workers and the queue just before
 * the call, one TerminateInstances, then workers.unregister), re-queues
 * of tasks lost with an interrupted instance, and unregistering zombie
 * workers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "clearml.h"
#include "ec2.h"
#include "proto.h"
#include "worker.h"

/*
 * Every line this file logs at INFO or WARN is about an action (a launch,
 * a termination, a re-queue, an adoption): it reaches the supervisor even
 * after it has stopped reading for a while, when other lines may be
 * dropped (proto.h, struct proto_outq).
 */
#define log_info(...)	worker_log_action(LOG_LVL_INFO, __VA_ARGS__)
#define log_warnx(...)	worker_log_action(LOG_LVL_WARN, __VA_ARGS__)

#define CONSOLE_MAX_LINES	60

struct act_launch {
	struct wpoll	*p;
	int		 remaining;
	int		 spot;
	size_t		 subnet;	/* next to try */
	size_t		 nsubnets;	/* 0: by availability zone */
	int		 spot_failures;
	int		 attempts;
	int		 by_rollback;	/* on-demand instead of spot */
	int		 by_blackout;
	char		 last_code[96];
};

struct act_term {
	struct wpoll		*p;
	struct plan_action	*a;
	size_t			 n;
	int			 ops;
	int			 recheck_ok;
	int			 queue_ok;	/* queue read again */
	size_t			 pending;	/* its entries then */
	unsigned char		*done;		/* by action */
	char			**fresh_ids;
	char			**fresh_tasks;	/* NULL entries: idle */
	size_t			 nfresh;
	char			**fresh_queue;	/* the queue again, sorted */
};

struct act_console {
	struct act_term		*t;
	struct plan_action	*a;
};

static void	act_launch_next(struct act_launch *);
static void	act_term_step(struct act_term *);
static void	act_requeue(struct wpoll *, const struct plan_action *);

void
act_op_done(struct wpoll *p)
{
	if (--p->act_ops > 0)
		return;
	poll_acted(p);
}

static int
act_stopping(const struct wpoll *p)
{
	return p->w->stopping;
}

/* ---- launches ---- */

/* The first of its cause in an episode is a warning; the rest counted. */
static void
act_spot_error(struct wpoll *p, const struct ec2_error *err,
    const char *text)
{
	p->count.errors++;
	if (spot_warn_note(&p->spot_warns, err->code, err->request_id,
	    now_ms()))
		log_warnx("%s; until the spot blackout is over or spot "
		    "capacity is back, further spot capacity errors of this "
		    "kind are counted, not logged one by one", text);
	else
		log_debug("%s", text);
}

/* The episode of spot capacity errors is over: sum up what was counted. */
void
act_spot_episode_end(struct wpoll *p, const char *why)
{
	char	 line[1024];

	if (spot_warn_end(&p->spot_warns, why, line, sizeof(line)) > 0)
		log_info("%s", line);
}

static int
act_launch_is_spot_capacity(const struct ec2_error *err, int spot)
{
	return spot && (err->cls == EC2_ERR_SPOT_CAPACITY ||
	    err->cls == EC2_ERR_CAPACITY);
}

/*
 * Of n on-demand instances launched, those that would have been spot:
 * counted (the rollback's first), and said in the launched event.
 */
static void
act_launch_converted(struct act_launch *l, int n, cJSON *o)
{
	struct wpoll	*p = l->p;
	cJSON		*c;
	int		 r, b;

	r = QS_MIN(n, l->by_rollback);
	b = QS_MIN(n - r, l->by_blackout);
	if (r + b == 0)
		return;
	l->by_rollback -= r;
	l->by_blackout -= b;
	p->count.converted_rollback += (uint64_t)r;
	p->count.converted_blackout += (uint64_t)b;
	p->last_converted_ms = now_ms();
	c = cJSON_AddObjectToObject(o, "converted");
	cJSON_AddNumberToObject(c, "rollback", r);
	cJSON_AddNumberToObject(c, "blackout", b);
}

static void
act_launch_ok(struct act_launch *l, const struct ec2_instance *in, size_t n,
    const char *subnet)
{
	struct wpoll	*p = l->p;
	cJSON		*o, *ids;
	char		 list[512] = "";
	size_t		 i, len = 0;

	o = cJSON_CreateObject();
	ids = cJSON_AddArrayToObject(o, "ids");
	for (i = 0; i < n; i++) {
		plan_memory_launched(&p->mem, in[i].id, l->spot,
		    in[i].launch_ms, in[i].subnet[0] != '\0' ? in[i].subnet :
		    subnet, now_ms());
		cJSON_AddItemToArray(ids, cJSON_CreateString(in[i].id));
		if (len < sizeof(list) - 40)
			len += (size_t)snprintf(list + len, sizeof(list) - len,
			    "%s%s", i > 0 ? " " : "", in[i].id);
	}
	p->count.launched += n;
	plan_memory_backoff(&p->mem, now_ms(), 0);
	if (l->spot)
		act_spot_episode_end(p, "spot capacity is back");
	log_info("launched %zu %s instance%s%s%s: %s", n, l->spot ? "spot" :
	    "on-demand", n == 1 ? "" : "s", subnet != NULL ? " in " : "",
	    subnet != NULL ? subnet : "", list);
	cJSON_AddNumberToObject(o, "count", (double)n);
	cJSON_AddStringToObject(o, "market", l->spot ? "spot" : "on-demand");
	cJSON_AddStringToObject(o, "subnet", subnet != NULL ? subnet : "");
	cJSON_AddStringToObject(o, "result", "ok");
	act_launch_converted(l, (int)n, o);
	poll_event(p, "launched", o);
	l->remaining -= (int)n;
}

static void
act_launch_failed_event(struct act_launch *l, const struct ec2_error *err,
    const char *subnet)
{
	cJSON	*o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "market", l->spot ? "spot" : "on-demand");
	cJSON_AddStringToObject(o, "code", err->code[0] != '\0' ? err->code :
	    ec2_err_class_name(err->cls));
	cJSON_AddStringToObject(o, "class", ec2_err_class_name(err->cls));
	cJSON_AddStringToObject(o, "subnet", subnet != NULL ? subnet : "");
	poll_event(l->p, "launch_failed", o);
}

/*
 * What a launch error means for the rest of this poll: try the next
 * subnet (capacity there, or a subnet that does not exist), or stop,
 * holding launches back when repeating at once would only fail again.
 */
static int
act_launch_error(struct act_launch *l, const struct ec2_error *err,
    const char *subnet)
{
	struct wpoll	*p = l->p;
	int64_t		 base = p->w->conf->polling_interval;

	char		 text[1024];

	p->count.launch_errors++;
	snprintf(l->last_code, sizeof(l->last_code), "%s", err->code);
	act_launch_failed_event(l, err, subnet);
	snprintf(text, sizeof(text), "RunInstances%s%s (%s, %d instance%s): "
	    "%s %s: %s%s%s", subnet != NULL ? " in " : "", subnet != NULL ?
	    subnet : "", l->spot ? "spot" : "on-demand", l->remaining,
	    l->remaining == 1 ? "" : "s", ec2_err_class_name(err->cls),
	    err->code, err->message, err->request_id[0] != '\0' ?
	    " request " : "", err->request_id);
	if (act_launch_is_spot_capacity(err, l->spot)) {
		act_spot_error(p, err, text);
		l->spot_failures++;
		return 1;
	}
	poll_error(p, "%s", text);
	switch (err->cls) {
	case EC2_ERR_CAPACITY:
	case EC2_ERR_NOT_FOUND:
		return 1;
	case EC2_ERR_THROTTLE:
	case EC2_ERR_TRANSIENT:
		return 0;	/* already retried; the next poll tries again */
	case EC2_ERR_AUTH:
		plan_memory_backoff(&p->mem, now_ms(), 4 * base);
		return 0;
	default:		/* quota, invalid parameter, unknown */
		plan_memory_backoff(&p->mem, now_ms(), 2 * base);
		return 0;
	}
}

static const char *
act_launch_subnet(const struct act_launch *l, size_t i)
{
	const struct conf_resource *r = l->p->w->res;

	return i < r->nsubnets ? r->subnets[i] : NULL;
}

static void
act_launch_cb(const struct ec2_error *err, const struct ec2_instance *in,
    size_t n, void *arg)
{
	struct act_launch	*l = arg;
	const char		*subnet = act_launch_subnet(l, l->subnet - 1);
	int			 next = 0;

	if (err == NULL || err->cls == EC2_OK) {
		act_launch_ok(l, in, n, subnet);
		next = l->remaining > 0;	/* partial: the next subnet */
	} else
		next = act_launch_error(l, err, subnet);
	if (next && l->remaining > 0 && l->subnet < l->nsubnets &&
	    !act_stopping(l->p)) {
		act_launch_next(l);
		return;
	}
	if (l->remaining > 0 && l->spot && l->spot_failures > 0 &&
	    l->spot_failures == l->attempts) {
		cJSON *o = cJSON_CreateObject();

		plan_memory_spot_failed(&l->p->mem, now_ms(), l->remaining);
		cJSON_AddStringToObject(o, "code", l->last_code);
		poll_event(l->p, "spot_failure", o);
	}
	act_op_done(l->p);
	free(l);
}

static void
act_launch_next(struct act_launch *l)
{
	struct wpoll		*p = l->p;
	struct ec2_launch	 spec;
	const char		*subnet = act_launch_subnet(l, l->subnet);
	char			 token[64];

	/* unique per call; the resource's index keeps resources apart */
	snprintf(token, sizeof(token), "qs%zu-%08lx%08lx-%llu-%zu",
	    p->w->index, (unsigned long)random(), (unsigned long)random(),
	    (unsigned long long)p->w->polls, l->subnet);
	l->subnet++;
	l->attempts++;
	p->count.launch_calls++;
	if (launch_spec_build(&spec, p->w->conf, p->w->index, subnet, l->spot,
	    l->remaining, token, p->user_data, 0) == -1) {
		poll_error(p, "cannot build the launch request");
		act_op_done(p);
		free(l);
		return;
	}
	if (ec2_run_instances(p->ec2, &spec, act_launch_cb, l) == -1) {
		poll_error(p, "RunInstances could not be sent");
		act_op_done(p);
		free(l);
	}
	launch_spec_clear(&spec);
}

static void
act_launch(struct wpoll *p, const struct plan_action *a)
{
	struct act_launch	*l = xcalloc(1, sizeof(*l));

	l->p = p;
	l->remaining = a->count;
	l->spot = a->spot;
	l->by_rollback = a->by_rollback;
	l->by_blackout = a->by_blackout;
	l->nsubnets = QS_MAX(p->w->res->nsubnets, 1);
	/* the attempt gave spot up: its refusals are counted now */
	if (!a->spot && p->w->res->spot && a->by_rollback > 0)
		act_spot_episode_end(p, "launching on-demand instead");
	log_info("launching %d %s instance%s: %s%s%s", a->count, a->spot ?
	    "spot" : "on-demand", a->count == 1 ? "" : "s", a->why,
	    a->converted[0] != '\0' ? "; " : "", a->converted);
	if (a->converted[0] != '\0')
		snprintf(p->last_converted, sizeof(p->last_converted), "%d %s",
		    a->by_rollback + a->by_blackout, a->converted);
	p->act_ops++;
	act_launch_next(l);
}

/* ---- terminations ---- */

static void
act_term_free(struct act_term *t)
{
	size_t	 i;

	for (i = 0; i < t->nfresh; i++) {
		free(t->fresh_ids[i]);
		free(t->fresh_tasks[i]);
	}
	free(t->fresh_ids);
	free(t->fresh_tasks);
	for (i = 0; t->fresh_queue != NULL && i < t->pending; i++)
		free(t->fresh_queue[i]);
	free(t->fresh_queue);
	free(t->done);
	free(t->a);
	free(t);
}

static void
act_term_op_done(struct act_term *t)
{
	if (--t->ops > 0)
		return;
	act_term_step(t);
}

static void
act_console_cb(const struct ec2_error *err, const char *text, void *arg)
{
	struct act_console	*c = arg;
	const struct plan_action *a = c->a;
	const char		*p, *nl;
	size_t			 lines = 0, total = 0, skip;

	if (err != NULL && err->cls != EC2_OK)
		log_warnx("console output of %s: %s %s: %s", a->instance,
		    ec2_err_class_name(err->cls), err->code, err->message);
	else if (text == NULL || *text == '\0')
		log_info("console output of %s (%s): empty", a->instance,
		    plan_reason_name(a->reason));
	else {
		for (p = text; *p != '\0'; p = nl + 1, total++)
			if ((nl = strchr(p, '\n')) == NULL)
				break;
		skip = total + 1 > CONSOLE_MAX_LINES ?
		    total + 1 - CONSOLE_MAX_LINES : 0;
		log_info("console output of %s (%s), last %zu lines:",
		    a->instance, plan_reason_name(a->reason),
		    total + 1 - skip);
		for (p = text; *p != '\0'; p = nl + 1, lines++) {
			nl = strchr(p, '\n');
			if (lines >= skip)
				log_info("console %s: %.*s", a->instance,
				    nl != NULL ? (int)(nl - p) : (int)strlen(p),
				    p);
			if (nl == NULL)
				break;
		}
	}
	act_term_op_done(c->t);
	free(c);
}


/* The ids of N workers and the tasks they hold (NULL: idle), copied. */
static void
act_workers_copy(const struct cml_worker *ws, size_t n, char ***ids,
    char ***tasks)
{
	size_t	 i;

	*ids = xcalloc(n + 1, sizeof(char *));
	*tasks = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		(*ids)[i] = xstrdup(ws[i].id);
		(*tasks)[i] = ws[i].task != NULL ? xstrdup(ws[i].task) : NULL;
	}
}

static void
act_recheck_cb(const struct cml_error *err, const struct cml_worker *ws,
    size_t n, void *arg)
{
	struct act_term	*t = arg;

	if (err != NULL && err->cls != CML_OK)
		poll_error(t->p, "fresh look at the workers before "
		    "terminating: %s: %s; terminating none of them",
		    cml_err_class_name(err->cls), err->message);
	else {
		t->recheck_ok = 1;
		act_workers_copy(ws, n, &t->fresh_ids, &t->fresh_tasks);
		t->nfresh = n;
	}
	act_term_op_done(t);
}

/*
 * Tasks enqueued since the observation want the idle workers plan()
 * chose to terminate: a fresh count of the queue's entries.
 */
static int
act_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
act_recheck_queue_cb(const struct cml_error *err, const struct cml_queue *q,
    void *arg)
{
	struct act_term	*t = arg;
	size_t		 i;

	if (err != NULL && err->cls != CML_OK)
		poll_error(t->p, "fresh look at queue %s before terminating: "
		    "%s: %s; terminating no idle worker", t->p->w->res->queue,
		    cml_err_class_name(err->cls), err->message);
	else {
		t->queue_ok = 1;
		t->pending = q->nentries;
		t->fresh_queue = xcalloc(q->nentries + 1, sizeof(char *));
		for (i = 0; i < q->nentries; i++)
			t->fresh_queue[i] = xstrdup(q->entries[i].task);
		qsort(t->fresh_queue, q->nentries, sizeof(char *),
		    act_str_cmp);
	}
	act_term_op_done(t);
}

/* -1: the worker is absent; 0: idle; 1: busy. */
static int
act_fresh_state(const struct act_term *t, const char *instance)
{
	char	 id[32];
	size_t	 i;

	for (i = 0; i < t->nfresh; i++) {
		if (plan_worker_instance(t->fresh_ids[i], t->p->prefix_res, id,
		    sizeof(id)) == -1 || strcmp(id, instance) != 0)
			continue;
		return t->fresh_tasks[i] != NULL ? 1 : 0;
	}
	return -1;
}

/*
 * The fresh look decides: an idle worker must still be there and idle;
 * one that never registered or vanished must still be missing.
 */
static int
act_still_terminable(struct act_term *t, const struct plan_action *a)
{
	int	 st;

	if (!a->recheck || a->reason == PLAN_R_STOPPED)
		return 1;
	if (!t->recheck_ok)
		return 0;
	st = act_fresh_state(t, a->instance);
	if (st == 1) {
		log_info("not terminating %s: its worker took a task just now",
		    a->instance);
		return 0;
	}
	if (a->reason == PLAN_R_IDLE && st == -1) {
		log_info("not terminating %s: its worker is not listed now; "
		    "deciding at the next poll", a->instance);
		return 0;
	}
	if (a->reason != PLAN_R_IDLE && st == 0) {
		log_info("not terminating %s: its worker registered just now",
		    a->instance);
		return 0;
	}
	return 1;
}

struct act_unreg {
	struct wpoll	*p;
	char		*worker;
};

static void
act_unregister_cb(const struct cml_error *err, void *arg)
{
	struct act_unreg	*u = arg;

	if (err != NULL && err->cls != CML_OK)
		log_warnx("workers.unregister %s: %s: %s", u->worker,
		    cml_err_class_name(err->cls), err->message);
	else
		log_debug("unregistered worker %s", u->worker);
	act_op_done(u->p);
	free(u->worker);
	free(u);
}

static void
act_unregister(struct wpoll *p, const char *worker)
{
	struct act_unreg	*u;

	if (worker == NULL || *worker == '\0')
		return;
	u = xcalloc(1, sizeof(*u));
	u->p = p;
	u->worker = xstrdup(worker);
	p->act_ops++;
	if (cml_workers_unregister(p->cml, worker, act_unregister_cb, u) == -1)
		act_unregister_cb(NULL, u);
}

static const struct plan_action *
act_term_find(const struct act_term *t, const char *id)
{
	size_t	 i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->a[i].instance, id) == 0)
			return &t->a[i];
	return NULL;
}

static void
act_terminated(struct act_term *t, const struct plan_action *a,
    const struct ec2_term_result *r)
{
	struct wpoll	*p = t->p;
	cJSON		*o;

	t->done[a - t->a] = 1;
	plan_memory_terminating(&p->mem, a->instance, a->reason, now_ms());
	if (r != NULL && r->not_found) {
		log_info("instance %s is already gone", a->instance);
		return;
	}
	p->count.terminated[a->reason]++;
	log_info("terminated %s (%s): %s", a->instance,
	    plan_reason_name(a->reason), a->why);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", a->instance);
	cJSON_AddStringToObject(o, "reason", plan_reason_name(a->reason));
	cJSON_AddStringToObject(o, "market", a->spot ? "spot" : "on-demand");
	poll_event(p, "terminated", o);
}

/*
 * A worker that took a task between the fresh look and the termination
 * lost it with its instance, as did a vanished agent the task it held:
 * the task goes back to the queue, within max_requeues, as a task lost
 * to an interruption does (if ClearML still has it in progress there).
 */
static void
act_lost_task(struct wpoll *p, const struct plan_action *a,
    const char *worker, const char *task)
{
	struct plan_action	 q = *a;
	int			 n, max = p->w->conf->max_requeues;

	q.type = PLAN_REQUEUE;
	snprintf(q.worker, sizeof(q.worker), "%s", worker);
	snprintf(q.task, sizeof(q.task), "%s", task);
	q.since_ms = p->start_ms;	/* the observation that saw it idle */
	if (a->reason == PLAN_R_VANISHED && strcmp(task, a->task) == 0)
		log_warnx("task %s was last seen running on worker %s, whose "
		    "agent vanished; its instance %s is terminated", task,
		    worker, a->instance);
	else
		log_warnx("task %s was taken by worker %s as its instance %s "
		    "was being terminated (%s)", task, worker, a->instance,
		    plan_reason_name(a->reason));
	if ((n = plan_memory_requeued(&p->mem, task, a->instance)) > max) {
		plan_memory_unrequeued(&p->mem, task);
		q.count = -1;
		snprintf(q.why, sizeof(q.why), "already re-queued %d time%s "
		    "(max_requeues %d)", n - 1, n - 1 == 1 ? "" : "s", max);
	} else
		q.count = n;
	act_requeue(p, &q);
}

/*
 * After the termination, one more look at the workers: a task taken in
 * the meantime is re-queued, then the workers are unregistered so that
 * they do not linger as zombies.
 */
static void
act_after_cb(const struct cml_error *err, const struct cml_worker *ws,
    size_t n, void *arg)
{
	struct act_term			*t = arg;
	const struct plan_action	*a;
	const char			*worker;
	char				 id[32];
	size_t				 i, j;
	int				 looked = 1;

	if (err != NULL && err->cls != CML_OK) {
		log_warnx("look at the workers after terminating: %s: %s; "
		    "the next poll looks for tasks they took",
		    cml_err_class_name(err->cls), err->message);
		n = 0;
		looked = 0;
	}
	for (i = 0; i < t->n; i++) {
		if (!t->done[i])
			continue;
		a = &t->a[i];
		if (!looked)
			/* keep the worker listed for plan() to see its task */
			plan_memory_unchecked(&t->p->mem, a->instance);
		worker = a->worker;
		for (j = 0; j < n; j++) {
			if (plan_worker_instance(ws[j].id, t->p->prefix_res,
			    id, sizeof(id)) == -1 ||
			    strcmp(id, a->instance) != 0)
				continue;
			worker = ws[j].id;
			if (ws[j].task != NULL && !act_stopping(t->p))
				act_lost_task(t->p, a, worker, ws[j].task);
			break;
		}
		if (j == n && a->reason == PLAN_R_VANISHED &&
		    a->task[0] != '\0' && !act_stopping(t->p))
			act_lost_task(t->p, a, worker, a->task);
		if (looked)
			act_unregister(t->p, worker);
	}
	act_op_done(t->p);
	act_term_free(t);
}

static void
act_terminate_cb(const struct ec2_error *err, const struct ec2_term_result *r,
    size_t n, void *arg)
{
	struct act_term			*t = arg;
	const struct plan_action	*a;
	struct cml_error		 cerr;
	size_t				 i, done = 0;

	if (err != NULL && err->cls != EC2_OK)
		poll_error(t->p, "TerminateInstances: %s %s: %s",
		    ec2_err_class_name(err->cls), err->code, err->message);
	for (i = 0; i < n; i++)
		if ((a = act_term_find(t, r[i].id)) != NULL) {
			act_terminated(t, a, &r[i]);
			done++;
		}
	if (done == 0) {
		act_after_cb(NULL, NULL, 0, t);
		return;
	}
	if (cml_workers_get_all(t->p->cml, t->p->pattern,
	    QS_MAX((int)(t->p->w->conf->worker_last_seen / 1000), 1),
	    act_after_cb, t) == 0)
		return;
	memset(&cerr, 0, sizeof(cerr));
	cml_error_set(&cerr, CML_ERR_TRANSIENT, "workers.get_all",
	    "the call could not be sent");
	act_after_cb(&cerr, NULL, 0, t);
}

/*
 * Idle workers to keep for tasks enqueued since the observation, and
 * for tasks taken from the queue since then that no worker shows yet
 * (an agent that popped one looks idle until it reports it): the last
 * of plan()'s choices (the shortest idle) are spared, one per task; all
 * of them when the queue could not be read again.
 */
static size_t
act_term_keep(const struct act_term *t, size_t idle)
{
	size_t	 before = t->p->pending, keep, left = 0;

	if (!t->queue_ok)
		return idle;
	keep = t->pending > before ? t->pending - before : 0;
	if (t->p->entry_ids != NULL)
		left = plan_unaccounted((const char *const *)t->p->entry_ids,
		    before, (const char *const *)t->fresh_queue, t->pending,
		    (const char *const *)t->fresh_tasks, t->nfresh);
	if (left > 0)
		log_info("%zu task%s left the queue since the poll looked "
		    "and no worker shows %s yet", left, left == 1 ? "" : "s",
		    left == 1 ? "it" : "them");
	return QS_MIN(idle, keep + left);
}

/* After the console output and the fresh look: one call for all. */
static void
act_term_step(struct act_term *t)
{
	const char	**ids;
	char		*ok;
	size_t		 i, n = 0, idle = 0, keep;

	ids = xcalloc(t->n + 1, sizeof(*ids));
	ok = xcalloc(t->n + 1, 1);
	for (i = 0; i < t->n; i++)
		if ((ok[i] = act_still_terminable(t, &t->a[i])) &&
		    t->a[i].reason == PLAN_R_IDLE)
			idle++;
	keep = act_term_keep(t, idle);
	for (i = t->n; i-- > 0 && keep > 0;) {
		if (!ok[i] || t->a[i].reason != PLAN_R_IDLE)
			continue;
		ok[i] = 0;
		keep--;
		if (t->queue_ok)
			log_info("not terminating %s: a task came into or "
			    "left the queue just now", t->a[i].instance);
	}
	for (i = 0; i < t->n; i++)
		if (ok[i])
			ids[n++] = t->a[i].instance;
	free(ok);
	if (n == 0 || act_stopping(t->p) ||
	    ec2_terminate_instances(t->p->ec2, ids, n, act_terminate_cb, t) ==
	    -1) {
		if (n > 0 && !act_stopping(t->p))
			poll_error(t->p, "TerminateInstances could not be "
			    "sent");
		act_op_done(t->p);
		act_term_free(t);
	}
	free(ids);
}

static void
act_terminations(struct wpoll *p)
{
	struct act_term		*t;
	struct act_console	*c;
	size_t			 i, n = 0;
	int			 recheck = 0, idle = 0;

	for (i = 0; i < p->out.nactions; i++)
		n += p->out.actions[i].type == PLAN_TERMINATE;
	if (n == 0)
		return;
	t = xcalloc(1, sizeof(*t));
	t->p = p;
	t->a = xcalloc(n, sizeof(*t->a));
	t->done = xcalloc(n, 1);
	for (i = 0; i < p->out.nactions; i++)
		if (p->out.actions[i].type == PLAN_TERMINATE)
			t->a[t->n++] = p->out.actions[i];
	p->act_ops++;
	t->ops = 1;
	for (i = 0; i < t->n; i++) {
		recheck |= t->a[i].recheck;
		idle |= t->a[i].reason == PLAN_R_IDLE;
		if (!t->a[i].console)
			continue;
		c = xcalloc(1, sizeof(*c));
		c->t = t;
		c->a = &t->a[i];
		t->ops++;
		if (ec2_get_console_output(p->ec2, t->a[i].instance,
		    act_console_cb, c) == -1) {
			t->ops--;
			free(c);
		}
	}
	if (recheck) {
		t->ops++;
		if (cml_workers_get_all(p->cml, p->pattern,
		    QS_MAX((int)(p->w->conf->worker_last_seen / 1000), 1),
		    act_recheck_cb, t) == -1)
			t->ops--;
	}
	if (idle && p->queue_id[0] == '\0')
		t->queue_ok = 1;	/* no queue yet: nothing to keep */
	else if (idle) {
		t->ops++;
		if (cml_queue_get(p->cml, p->queue_id, act_recheck_queue_cb,
		    t) == -1)
			t->ops--;
	}
	act_term_op_done(t);
}

/* ---- re-queues ---- */

/*
 * The tasks lost with an instance: what ClearML says of the task its
 * worker held when qscale last looked, of the tasks that worker last
 * reported whose status changed since qscale last saw the instance
 * healthy, and which worker lists each now (workers.get_all, every
 * worker: the current holder).  plan_requeue_verdict() decides; each
 * task to put back is marked stopped (force) and enqueued again.
 */
struct act_lost {
	char		 id[40];
	char		*status;
	char		*reason;
	char		*last_worker;
	int64_t		 changed_ms;
	char		 queue[40];
};

struct act_loss {
	struct wpoll		*p;
	struct plan_action	 a;
	int			 ops;
	int			 seen_ok;
	int			 found_ok;
	int			 hold_ok;
	struct act_lost		*seen;		/* a.task, if ClearML has it */
	struct act_lost		*found;
	size_t			 nfound;
	char			**hold_ids;
	char			**hold_tasks;
	size_t			 nhold;
	char			 error[640];
};

struct act_requeue {
	struct wpoll		*p;
	struct plan_action	 a;
	char			 queue[40];
	int			 stage;
};

static void	act_requeue_step(struct act_requeue *);

static void
act_lost_copy(struct act_lost *l, const struct cml_task *t)
{
	snprintf(l->id, sizeof(l->id), "%s", t->id);
	l->status = t->status != NULL ? xstrdup(t->status) : NULL;
	l->reason = t->status_reason != NULL ? xstrdup(t->status_reason) :
	    NULL;
	l->last_worker = t->last_worker != NULL ? xstrdup(t->last_worker) :
	    NULL;
	l->changed_ms = t->status_changed_ms;
	snprintf(l->queue, sizeof(l->queue), "%s", t->queue);
}

static void
act_lost_clear(struct act_lost *l, size_t n)
{
	size_t	 i;

	for (i = 0; l != NULL && i < n; i++) {
		free(l[i].status);
		free(l[i].reason);
		free(l[i].last_worker);
	}
	free(l);
}

static void
act_loss_free(struct act_loss *L)
{
	size_t	 i;

	act_lost_clear(L->seen, 1);
	act_lost_clear(L->found, L->nfound);
	for (i = 0; i < L->nhold; i++) {
		free(L->hold_ids[i]);
		free(L->hold_tasks[i]);
	}
	free(L->hold_ids);
	free(L->hold_tasks);
	free(L);
}

static void
act_requeue_end(struct act_requeue *q)
{
	act_op_done(q->p);
	free(q);
}

static void
act_requeue_done_cb(const struct cml_error *err, void *arg)
{
	struct act_requeue	*q = arg;

	if (err != NULL && err->cls != CML_OK) {
		poll_error(q->p, "re-queueing task %s: %s: %s", q->a.task,
		    cml_err_class_name(err->cls), err->message);
		act_requeue_end(q);
		return;
	}
	act_requeue_step(q);
}

/* Why the task was lost, for the log and ClearML's status reason. */
static const char *
act_requeue_how(const struct plan_action *a)
{
	if (a->reason == PLAN_R_NONE || a->reason == PLAN_R_INTERRUPTED)
		return "was interrupted while it ran";
	if (a->reason == PLAN_R_VANISHED)
		return "was terminated after its agent vanished";
	return "was terminated as its worker took the task";
}

/* stopped (force), then enqueue: one step per reply. */
static void
act_requeue_step(struct act_requeue *q)
{
	struct wpoll	*p = q->p;
	char		 why[160];
	cJSON		*o;
	int		 rc = -1;

	snprintf(why, sizeof(why), "qscale: instance %s %s", q->a.instance,
	    act_requeue_how(&q->a));
	switch (q->stage++) {
	case 0:
		rc = cml_task_stopped(p->cml, q->a.task, why,
		    act_requeue_done_cb, q);
		break;
	case 1:
		rc = cml_task_enqueue(p->cml, q->a.task, q->queue, why,
		    act_requeue_done_cb, q);
		break;
	default:
		p->count.requeued++;
		log_warnx("task %s re-queued (%d of max_requeues %d): its "
		    "instance %s %s", q->a.task, q->a.count,
		    p->w->conf->max_requeues, q->a.instance,
		    act_requeue_how(&q->a));
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "task", q->a.task);
		cJSON_AddStringToObject(o, "instance", q->a.instance);
		poll_event(p, "requeued", o);
		act_requeue_end(q);
		return;
	}
	if (rc == -1) {
		poll_error(p, "re-queueing task %s: the call could not be "
		    "sent", q->a.task);
		act_requeue_end(q);
	}
}

static void
act_requeue_start(struct act_loss *L, const struct act_lost *t, int count)
{
	struct act_requeue	*q = xcalloc(1, sizeof(*q));

	q->p = L->p;
	q->a = L->a;
	q->a.count = count;
	snprintf(q->a.task, sizeof(q->a.task), "%s", t->id);
	snprintf(q->queue, sizeof(q->queue), "%s", t->queue[0] != '\0' ?
	    t->queue : L->p->queue_id);
	if (q->queue[0] == '\0') {
		poll_error(L->p, "task %s of lost instance %s: no queue to put "
		    "it back in", t->id, L->a.instance);
		free(q);
		return;
	}
	L->p->act_ops++;
	act_requeue_step(q);
}

static const char *
act_loss_holder(const struct act_loss *L, const char *task)
{
	size_t	 i;

	for (i = 0; i < L->nhold; i++)
		if (L->hold_tasks[i] != NULL &&
		    strcmp(L->hold_tasks[i], task) == 0)
			return L->hold_ids[i];
	return NULL;
}

/* One task: the verdict, then the re-queue within max_requeues. */
static void
act_loss_task(struct act_loss *L, const struct act_lost *t, int seen)
{
	struct wpoll		*p = L->p;
	struct plan_lost_task	 lt;
	char			 why[256];
	int			 n, max = p->w->conf->max_requeues;

	memset(&lt, 0, sizeof(lt));
	lt.status = t->status;
	lt.status_reason = t->reason;
	lt.status_changed_ms = t->changed_ms;
	lt.holder = act_loss_holder(L, t->id);
	lt.seen = seen;
	if (!plan_requeue_verdict(&lt, L->a.worker, L->a.since_ms, why,
	    sizeof(why))) {
		log_info("task %s of lost instance %s is not re-queued: %s",
		    t->id, L->a.instance, why);
		if (seen)
			plan_memory_unrequeued(&p->mem, t->id);
		return;
	}
	log_info("task %s of lost instance %s goes back to its queue: %s",
	    t->id, L->a.instance, why);
	if (seen) {
		act_requeue_start(L, t, L->a.count);
		return;
	}
	if ((n = plan_memory_requeued(&p->mem, t->id, L->a.instance)) > max) {
		plan_memory_unrequeued(&p->mem, t->id);
		log_warnx("task %s ran on instance %s, which %s; not "
		    "re-queueing it: already re-queued %d time%s "
		    "(max_requeues %d)", t->id, L->a.instance,
		    act_requeue_how(&L->a), n - 1, n - 1 == 1 ? "" : "s",
		    max);
		return;
	}
	act_requeue_start(L, t, n);
}

static void
act_loss_decide(struct act_loss *L)
{
	struct wpoll	*p = L->p;
	size_t		 i;

	if (L->error[0] != '\0' || !L->hold_ok) {
		if (plan_memory_loss_again(&p->mem, &L->a) == 0) {
			poll_error(p, "tasks lost with instance %s: %s; looking "
			    "again at the next poll", L->a.instance,
			    L->error[0] != '\0' ? L->error : "no answer");
			return;
		}
		poll_error(p, "tasks lost with instance %s: %s; giving up "
		    "after %d tries", L->a.instance, L->error[0] != '\0' ?
		    L->error : "no answer", L->a.tries + 1);
		if (L->a.task[0] != '\0' && L->a.count > 0)
			plan_memory_unrequeued(&p->mem, L->a.task);
		return;
	}
	if (L->a.task[0] != '\0' && L->seen != NULL)
		act_loss_task(L, L->seen, 1);
	else if (L->a.task[0] != '\0')
		log_info("task %s of lost instance %s no longer exists",
		    L->a.task, L->a.instance);
	for (i = 0; i < L->nfound; i++) {
		const struct act_lost *t = &L->found[i];

		if (t->last_worker == NULL ||
		    strcmp(t->last_worker, L->a.worker) != 0 ||
		    strcmp(t->id, L->a.task) == 0 ||
		    plan_memory_requeued_for(&p->mem, t->id, L->a.instance))
			continue;
		act_loss_task(L, t, 0);
	}
}

static void
act_loss_op_done(struct act_loss *L)
{
	if (--L->ops > 0)
		return;
	act_loss_decide(L);
	act_op_done(L->p);
	act_loss_free(L);
}

static void
act_loss_error(struct act_loss *L, const struct cml_error *err)
{
	if (L->error[0] == '\0')
		snprintf(L->error, sizeof(L->error), "%s: %s: %s",
		    err->endpoint, cml_err_class_name(err->cls),
		    err->message);
}

static void
act_loss_seen_cb(const struct cml_error *err, const struct cml_task *t,
    size_t n, void *arg)
{
	struct act_loss	*L = arg;

	if (err != NULL && err->cls != CML_OK)
		act_loss_error(L, err);
	else if (n > 0) {
		L->seen = xcalloc(1, sizeof(*L->seen));
		act_lost_copy(L->seen, &t[0]);
	}
	act_loss_op_done(L);
}

static void
act_loss_found_cb(const struct cml_error *err, const struct cml_task *t,
    size_t n, void *arg)
{
	struct act_loss	*L = arg;
	size_t		 i;

	if (err != NULL && err->cls != CML_OK)
		act_loss_error(L, err);
	else {
		L->found = xcalloc(n + 1, sizeof(*L->found));
		for (i = 0; i < n; i++)
			act_lost_copy(&L->found[L->nfound++], &t[i]);
	}
	act_loss_op_done(L);
}

static void
act_loss_hold_cb(const struct cml_error *err, const struct cml_worker *ws,
    size_t n, void *arg)
{
	struct act_loss	*L = arg;

	if (err != NULL && err->cls != CML_OK)
		act_loss_error(L, err);
	else {
		L->hold_ok = 1;
		act_workers_copy(ws, n, &L->hold_ids, &L->hold_tasks);
		L->nhold = n;
	}
	act_loss_op_done(L);
}

/*
 * The tasks its worker reported whose status changed since the
 * instance was last seen healthy: stopped or in progress.
 */
static int
act_loss_search(struct act_loss *L)
{
	cJSON	*f, *a;
	char	 ts[40], cond[48];
	int	 rc;

	fmt_time_ms(L->a.since_ms - PLAN_CLOCK_SLACK_MS, ts, sizeof(ts));
	snprintf(cond, sizeof(cond), ">=%.19s", ts);
	f = cJSON_CreateObject();
	a = cJSON_AddArrayToObject(f, "status");
	cJSON_AddItemToArray(a, cJSON_CreateString("in_progress"));
	cJSON_AddItemToArray(a, cJSON_CreateString("stopped"));
	a = cJSON_AddArrayToObject(f, "status_changed");
	cJSON_AddItemToArray(a, cJSON_CreateString(cond));
	rc = cml_tasks_query(L->p->cml, f, act_loss_found_cb, L);
	cJSON_Delete(f);
	return rc;
}

static void
act_requeue(struct wpoll *p, const struct plan_action *a)
{
	struct act_loss	*L;
	const char	*ids[1];
	int		 last_seen;

	if (a->count < 0)
		log_warnx("task %s ran on instance %s, which %s; not "
		    "re-queueing it: %s", a->task, a->instance,
		    act_requeue_how(a), a->why);
	L = xcalloc(1, sizeof(*L));
	L->p = p;
	L->a = *a;
	if (L->a.worker[0] == '\0' && (size_t)snprintf(L->a.worker,
	    sizeof(L->a.worker), "%.100s:%.24s:%.30s", p->prefix_res,
	    p->w->res->instance_type, a->instance) >= sizeof(L->a.worker))
		L->a.worker[0] = '\0';	/* the id its agent would have */
	if (a->count < 0)
		L->a.task[0] = '\0';	/* only the others, if any */
	p->act_ops++;
	L->ops = 1;
	ids[0] = L->a.task;
	if (L->a.task[0] != '\0') {
		L->ops++;
		if (cml_tasks_get_all(p->cml, ids, 1, act_loss_seen_cb, L) ==
		    -1)
			L->ops--;
	}
	if (L->a.worker[0] != '\0' && L->a.since_ms > 0) {
		L->ops++;
		if (act_loss_search(L) == -1)
			L->ops--;
	}
	L->ops++;
	last_seen = (int)(p->w->conf->worker_last_seen / 1000);
	if (cml_workers_get_all(p->cml, NULL, QS_MAX(last_seen, 1),
	    act_loss_hold_cb, L) == -1)
		L->ops--;
	act_loss_op_done(L);
}

/* ---- the rest ---- */

static void
act_note(struct wpoll *p, const struct plan_action *a)
{
	cJSON	*o;

	if (a->type == PLAN_ADOPT) {
		log_info("adopted instance %s (%s, %s): it carries this "
		    "resource's tags", a->instance, a->why, a->spot ? "spot" :
		    "on-demand");
		return;
	}
	if (a->reason != PLAN_R_INTERRUPTED) {
		log_info("instance %s is gone (%s)", a->instance,
		    a->why[0] != '\0' ? a->why : plan_reason_name(a->reason));
		return;
	}
	p->count.terminated[PLAN_R_INTERRUPTED]++;
	log_warnx("instance %s was terminated outside qscale (%s)%s%s",
	    a->instance, a->why[0] != '\0' ? a->why : "no reason given",
	    a->task[0] != '\0' ? " while running task " : "", a->task);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", a->instance);
	cJSON_AddStringToObject(o, "reason", plan_reason_name(a->reason));
	cJSON_AddStringToObject(o, "state_reason", a->why);
	poll_event(p, "terminated", o);
}

void
act_start(struct wpoll *p)
{
	const struct plan_action	*a;
	size_t				 i;

	if (p->dry_run) {	/* qscaled --plan: print, change nothing */
		poll_acted(p);
		return;
	}
	p->act_ops = 1;
	for (i = 0; i < p->out.nactions; i++) {
		a = &p->out.actions[i];
		switch (a->type) {
		case PLAN_ADOPT:
		case PLAN_FORGET:
			act_note(p, a);
			break;
		case PLAN_UNREGISTER:
			if (!act_stopping(p))
				act_unregister(p, a->worker);
			break;
		case PLAN_REQUEUE:
			if (!act_stopping(p))
				act_requeue(p, a);
			break;
		case PLAN_LAUNCH:
			if (!act_stopping(p))
				act_launch(p, a);
			break;
		case PLAN_TERMINATE:
			break;
		}
	}
	if (!act_stopping(p))
		act_terminations(p);
	act_op_done(p);
}
