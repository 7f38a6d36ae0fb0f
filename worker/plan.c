/*
 * plan.c: what one poll decides, as a pure function of the observation,
 * the resource's settings and the process's memory.  No I/O, no clock,
 * no globals, so that tables and random observations can test it.
 *
 * The rules (DESIGN 3 and 4):
 * - demand = pending tasks - idle workers - instances still booting;
 *   launch min(demand, max_instances - live, grant), never more;
 * - an idle worker is terminated once idle for max_idle_time, but only
 *   as many as the queue does not need, and only if a fresh look just
 *   before the call still shows it idle (the caller does that look);
 * - an instance that never registered within max_spin_up_time, or whose
 *   agent vanished for longer than the grace period, is terminated with
 *   its console output logged first;
 * - an instance carrying our tags that this process does not know is
 *   adopted, never killed for being unknown;
 * - nothing is terminated (or launched) when any part of the
 *   observation failed;
 * - an instance gone without qscale while its worker ran a task gets
 *   that task put back in the queue, at most max_requeues times.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "worker.h"

/* Instances EC2 has not listed yet are forgotten after this long. */
#define PLAN_UNSEEN_FORGET_MS	(10 * 60 * 1000)
#define PLAN_BACKOFF_MAX_MS	(10 * 60 * 1000)
#define PLAN_LOSS_TRIES		5	/* looks at what a loss took */

static const char *const reason_names[PLAN_R_MAX] = {
	"none", "idle", "spin-up timeout", "vanished agent", "stopped",
	"interrupted"
};

static const char *const state_names[] = {
	"pending", "running", "shutting-down", "terminated", "stopping",
	"stopped", "other"
};

const char *
plan_reason_name(enum plan_reason r)
{
	if (r < 0 || r >= PLAN_R_MAX)
		return "?";
	return reason_names[r];
}

const char *
plan_state_name(enum plan_state st)
{
	if (st < 0 || st > PLAN_ST_OTHER)
		return "?";
	return state_names[st];
}

enum plan_state
plan_state_parse(const char *s)
{
	size_t	 i;

	for (i = 0; s != NULL && i < QS_ARRAYLEN(state_names) - 1; i++)
		if (strcmp(s, state_names[i]) == 0)
			return (enum plan_state)i;
	return PLAN_ST_OTHER;
}

static int
plan_live_state(enum plan_state st)
{
	return st == PLAN_ST_PENDING || st == PLAN_ST_RUNNING;
}

/*
 * The instance id in a worker id "<prefix>:<resource>:<type>:<id>", when
 * the worker belongs to this prefix and resource.  Returns 0 or -1.
 */
int
plan_worker_instance(const char *worker, const char *prefix_res, char *out,
    size_t len)
{
	size_t		 n = strlen(prefix_res);
	const char	*rest, *last;

	if (strncmp(worker, prefix_res, n) != 0 || worker[n] != ':')
		return -1;
	rest = worker + n + 1;
	if ((last = strrchr(rest, ':')) == NULL || last == rest ||
	    last[1] == '\0' || strlen(last + 1) >= len)
		return -1;
	snprintf(out, len, "%s", last + 1);
	return 0;
}

void
plan_conf_from(struct plan_conf *pc, const struct qscale_conf *conf,
    const struct conf_resource *r)
{
	memset(pc, 0, sizeof(*pc));
	pc->max_instances = r->max_instances;
	pc->spot = r->spot;
	pc->max_requeues = conf->max_requeues;
	pc->max_idle_ms = r->max_idle_time >= 0 ? r->max_idle_time :
	    conf->max_idle_time;
	pc->max_spin_up_ms = r->max_spin_up_time >= 0 ? r->max_spin_up_time :
	    conf->max_spin_up_time;
	pc->vanished_grace_ms = conf->vanished_worker_grace;
	pc->spot_rollback_ms = r->spot_rollback_timeout;
	pc->polling_ms = conf->polling_interval;
}

struct plan_inst *
plan_memory_find(struct plan_memory *mem, const char *id)
{
	size_t	 i;

	for (i = 0; i < mem->ninst; i++)
		if (strcmp(mem->inst[i].id, id) == 0)
			return &mem->inst[i];
	return NULL;
}

struct plan_inst *
plan_memory_add(struct plan_memory *mem, const char *id)
{
	struct plan_inst	*m;

	if ((m = plan_memory_find(mem, id)) != NULL)
		return m;
	mem->inst = xreallocarray(mem->inst, mem->ninst + 1,
	    sizeof(*mem->inst));
	m = &mem->inst[mem->ninst++];
	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	return m;
}

static void
plan_memory_remove(struct plan_memory *mem, size_t i)
{
	mem->inst[i] = mem->inst[mem->ninst - 1];
	mem->ninst--;
}

/* A RunInstances call returned this instance. */
void
plan_memory_launched(struct plan_memory *mem, const char *id, int spot,
    int64_t launch_ms, const char *subnet, int64_t now)
{
	struct plan_inst	*m = plan_memory_add(mem, id);

	m->state = PLAN_ST_PENDING;
	m->spot = spot;
	m->launch_ms = launch_ms > 0 ? launch_ms : now;
	m->seen_ms = now;
	if (subnet != NULL)
		snprintf(m->subnet, sizeof(m->subnet), "%s", subnet);
	if (!spot)
		return;
	/* spot capacity came back: the rollback clock starts over */
	mem->spot_failure_ms = 0;
	mem->spot_attempt = 0;
}

/*
 * A spot launch of count instances met a capacity failure: that attempt
 * retries spot until spot_rollback_timeout from its first failure.
 */
void
plan_memory_spot_failed(struct plan_memory *mem, int64_t now, int count)
{
	if (mem->spot_failure_ms == 0)
		mem->spot_failure_ms = now;
	mem->spot_attempt = QS_MAX(mem->spot_attempt, QS_MAX(count, 1));
}

/* A launch error that retrying at once would only repeat. */
void
plan_memory_backoff(struct plan_memory *mem, int64_t now, int64_t base_ms)
{
	if (base_ms <= 0) {
		mem->backoff_ms = 0;
		mem->backoff_until_ms = 0;
		return;
	}
	mem->backoff_ms = mem->backoff_ms > 0 ?
	    QS_MIN(mem->backoff_ms * 2, PLAN_BACKOFF_MAX_MS) : base_ms;
	mem->backoff_until_ms = now + mem->backoff_ms;
}

void
plan_memory_terminating(struct plan_memory *mem, const char *id,
    enum plan_reason reason, int64_t now)
{
	struct plan_inst	*m;

	if ((m = plan_memory_find(mem, id)) == NULL)
		return;
	m->terminating = 1;
	m->reason = reason;
	m->terminate_ms = now;
}

/*
 * The look at the workers after terminating it failed: a task its agent
 * took meanwhile is found, and put back, once the instance is gone.
 */
void
plan_memory_unchecked(struct plan_memory *mem, const char *id)
{
	struct plan_inst	*m;

	if ((m = plan_memory_find(mem, id)) != NULL)
		m->unchecked = 1;
}

static struct plan_requeue *
plan_requeue_find(const struct plan_memory *mem, const char *task)
{
	size_t	 i;

	for (i = 0; i < mem->nrequeues; i++)
		if (strcmp(mem->requeues[i].task, task) == 0)
			return &mem->requeues[i];
	return NULL;
}

/*
 * Counts one more re-queue of a task, lost with this instance; returns
 * how many it has had.
 */
int
plan_memory_requeued(struct plan_memory *mem, const char *task,
    const char *instance)
{
	struct plan_requeue	*r;

	if ((r = plan_requeue_find(mem, task)) == NULL) {
		mem->requeues = xreallocarray(mem->requeues,
		    mem->nrequeues + 1, sizeof(*mem->requeues));
		r = &mem->requeues[mem->nrequeues++];
		memset(r, 0, sizeof(*r));
		snprintf(r->task, sizeof(r->task), "%s", task);
	}
	snprintf(r->instance, sizeof(r->instance), "%s",
	    instance != NULL ? instance : "");
	return ++r->count;
}

/* A re-queue counted that ClearML's answer called off. */
void
plan_memory_unrequeued(struct plan_memory *mem, const char *task)
{
	struct plan_requeue	*r;

	if ((r = plan_requeue_find(mem, task)) == NULL || r->count == 0)
		return;
	r->count--;
	r->instance[0] = '\0';
}

/*
 * The look at what was lost with an instance failed (ClearML did not
 * answer): the next good poll looks again, a few times at most.
 * Returns 0, or -1 when it has been tried enough.
 */
int
plan_memory_loss_again(struct plan_memory *mem, const struct plan_action *a)
{
	if (a->tries + 1 >= PLAN_LOSS_TRIES)
		return -1;
	mem->losses = xreallocarray(mem->losses, mem->nlosses + 1,
	    sizeof(*mem->losses));
	mem->losses[mem->nlosses] = *a;
	mem->losses[mem->nlosses++].tries++;
	return 0;
}

/* Was the task already put back for its loss with this instance? */
int
plan_memory_requeued_for(const struct plan_memory *mem, const char *task,
    const char *instance)
{
	const struct plan_requeue	*r = plan_requeue_find(mem, task);

	return r != NULL && r->count > 0 && instance != NULL &&
	    strcmp(r->instance, instance) == 0;
}

static int
plan_requeue_count(const struct plan_memory *mem, const char *task)
{
	const struct plan_requeue	*r = plan_requeue_find(mem, task);

	return r != NULL ? r->count : 0;
}

/* A scratch copy, to ask "what would you do" without changing mem. */
void
plan_memory_copy(struct plan_memory *dst, const struct plan_memory *src)
{
	*dst = *src;
	dst->inst = xcalloc(src->ninst + 1, sizeof(*dst->inst));
	if (src->ninst > 0)
		memcpy(dst->inst, src->inst, src->ninst * sizeof(*dst->inst));
	dst->requeues = xcalloc(src->nrequeues + 1, sizeof(*dst->requeues));
	if (src->nrequeues > 0)
		memcpy(dst->requeues, src->requeues,
		    src->nrequeues * sizeof(*dst->requeues));
	dst->entries = xcalloc(src->nentries + 1, sizeof(*dst->entries));
	if (src->nentries > 0)
		memcpy(dst->entries, src->entries,
		    src->nentries * sizeof(*dst->entries));
	dst->losses = xcalloc(src->nlosses + 1, sizeof(*dst->losses));
	if (src->nlosses > 0)
		memcpy(dst->losses, src->losses,
		    src->nlosses * sizeof(*dst->losses));
}

void
plan_memory_clear(struct plan_memory *mem)
{
	free(mem->inst);
	free(mem->requeues);
	free(mem->entries);
	free(mem->losses);
	memset(mem, 0, sizeof(*mem));
}

static struct plan_action *
plan_add(struct plan_output *out, enum plan_action_type type)
{
	struct plan_action	*a;

	out->actions = xreallocarray(out->actions, out->nactions + 1,
	    sizeof(*out->actions));
	a = &out->actions[out->nactions++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	return a;
}

void
plan_output_clear(struct plan_output *out)
{
	free(out->actions);
	memset(out, 0, sizeof(*out));
}

static void
plan_wake(struct plan_output *out, int64_t at, int64_t now)
{
	if (at <= now)
		return;
	if (out->next_wake_ms == 0 || at < out->next_wake_ms)
		out->next_wake_ms = at;
}

static const struct plan_obs_worker *
plan_worker_of(const struct plan_obs *obs, const char *instance)
{
	size_t	 i;

	for (i = 0; i < obs->nworkers; i++)
		if (strcmp(obs->workers[i].instance, instance) == 0)
			return &obs->workers[i];
	return NULL;
}

static const struct plan_obs_instance *plan_obs_find(const struct plan_obs *,
    const char *);

/* EC2 lists the instance as going or gone: its workers are zombies. */
static int
plan_zombie(const struct plan_obs *obs, const char *id)
{
	const struct plan_obs_instance	*o = plan_obs_find(obs, id);

	return o != NULL && (o->state == PLAN_ST_TERMINATED ||
	    o->state == PLAN_ST_SHUTTING_DOWN);
}

/*
 * An instance we knew is gone (terminated, or no longer listed).  The
 * tasks lost with it go back to the queue, within max_requeues: the
 * caller looks at ClearML for them (plan_requeue_verdict) from the task
 * its worker held when last seen, and from the tasks its worker last
 * reported whose status changed after the last poll that saw the
 * instance healthy (an agent stopped by the shutdown marks its task
 * stopped, and unregisters).  What the worker holds is what this
 * observation lists, when it lists it: a worker that took a task after
 * the last poll and lost its instance before this one is still listed
 * (nothing unregistered it) with that task, which memory never saw.
 */
static void
plan_gone(const struct plan_obs *obs, struct plan_memory *mem,
    const struct plan_conf *pc, struct plan_inst *m,
    const char *state_reason, struct plan_output *out)
{
	const struct plan_obs_worker	*w = NULL;
	struct plan_action		*a;
	int				 n;

	if (obs->workers_ok && (w = plan_worker_of(obs, m->id)) != NULL) {
		snprintf(m->worker, sizeof(m->worker), "%s", w->id);
		snprintf(m->task, sizeof(m->task), "%s",
		    w->task != NULL ? w->task : "");
	}
	a = plan_add(out, PLAN_FORGET);
	snprintf(a->instance, sizeof(a->instance), "%s", m->id);
	snprintf(a->worker, sizeof(a->worker), "%s", m->worker);
	snprintf(a->task, sizeof(a->task), "%s", m->task);
	a->reason = m->terminating ? m->reason : PLAN_R_INTERRUPTED;
	snprintf(a->why, sizeof(a->why), "%s", state_reason);
	/*
	 * One qscale terminated was unregistered right after the call, and
	 * a task its agent took by then re-queued, unless that look failed:
	 * then what the workers list now decides.
	 */
	if (m->worker[0] != '\0' && (!m->terminating || m->unchecked) &&
	    !(w != NULL && plan_zombie(obs, m->id))) {
		a = plan_add(out, PLAN_UNREGISTER);
		snprintf(a->worker, sizeof(a->worker), "%s", m->worker);
		snprintf(a->instance, sizeof(a->instance), "%s", m->id);
	}
	/*
	 * A worker qscale never saw (its agent registered, took a task and
	 * went down between two polls) is looked for by the id it would
	 * have: the caller knows it.
	 */
	if ((m->terminating && !(m->unchecked && w != NULL &&
	    w->task != NULL)) || plan_memory_requeued_for(mem, m->task, m->id))
		m->task[0] = '\0';	/* the look after the call had it */
	a = plan_add(out, PLAN_REQUEUE);
	a->reason = m->terminating ? m->reason : PLAN_R_INTERRUPTED;
	snprintf(a->task, sizeof(a->task), "%s", m->task);
	snprintf(a->worker, sizeof(a->worker), "%s", m->worker);
	snprintf(a->instance, sizeof(a->instance), "%s", m->id);
	a->since_ms = m->healthy_ms > 0 ? m->healthy_ms : m->seen_ms;
	if (m->task[0] == '\0')
		return;		/* only the tasks its worker reported */
	n = plan_requeue_count(mem, m->task);
	if (n >= pc->max_requeues) {
		/* keep the action so the caller logs it, but do nothing */
		a->count = -1;
		snprintf(a->why, sizeof(a->why), "already re-queued %d time%s "
		    "(max_requeues %d)", n, n == 1 ? "" : "s",
		    pc->max_requeues);
		return;
	}
	a->count = plan_memory_requeued(mem, m->task, m->id);
}

static const struct plan_obs_instance *
plan_obs_find(const struct plan_obs *obs, const char *id)
{
	size_t	 i;

	for (i = 0; i < obs->ninst; i++)
		if (strcmp(obs->inst[i].id, id) == 0)
			return &obs->inst[i];
	return NULL;
}

/* EC2 says which instances exist: adopt, update, forget. */
static void
plan_sync_instances(const struct plan_obs *obs, const struct plan_conf *pc,
    struct plan_memory *mem, struct plan_output *out)
{
	const struct plan_obs_instance	*o;
	struct plan_inst		*m;
	struct plan_action		*a;
	size_t				 i;
	int64_t				 now = obs->now_ms;

	for (i = 0; i < obs->ninst; i++) {
		o = &obs->inst[i];
		if ((m = plan_memory_find(mem, o->id)) == NULL) {
			if (!plan_live_state(o->state) &&
			    o->state != PLAN_ST_STOPPED &&
			    o->state != PLAN_ST_STOPPING)
				continue;	/* an old one, long gone */
			m = plan_memory_add(mem, o->id);
			m->adopted = 1;
			m->seen_ms = now;
			a = plan_add(out, PLAN_ADOPT);
			snprintf(a->instance, sizeof(a->instance), "%s", o->id);
			snprintf(a->why, sizeof(a->why), "%s",
			    plan_state_name(o->state));
			a->spot = o->spot;
		}
		m->observed = 1;
		m->state = o->state;
		m->spot = o->spot;
		if (o->launch_ms > 0)
			m->launch_ms = o->launch_ms;
		if (o->subnet[0] != '\0')
			snprintf(m->subnet, sizeof(m->subnet), "%s", o->subnet);
	}
	for (i = 0; i < mem->ninst;) {
		m = &mem->inst[i];
		o = plan_obs_find(obs, m->id);
		if ((o != NULL && (o->state == PLAN_ST_TERMINATED ||
		    o->state == PLAN_ST_SHUTTING_DOWN)) ||
		    (o == NULL && m->observed) ||
		    (o == NULL && now - m->seen_ms > PLAN_UNSEEN_FORGET_MS)) {
			plan_gone(obs, mem, pc, m, o != NULL ?
			    o->state_reason : "no longer listed by EC2", out);
			plan_memory_remove(mem, i);
			continue;
		}
		i++;
	}
}

static int64_t
plan_task_end(const struct plan_obs *obs, const char *task)
{
	size_t	 i;

	for (i = 0; i < obs->ntasks; i++)
		if (strcmp(obs->tasks[i].id, task) == 0)
			return obs->tasks[i].ended_ms;
	return 0;
}

/*
 * When did this worker become idle?  Never earlier than the last poll
 * (which saw it busy or not at all) or than this process first knew the
 * instance (so a restart never shortens anyone's idle time), never later
 * than now; within that, the end of its last task or its registration.
 */
static int64_t
plan_idle_start(const struct plan_obs *obs, const struct plan_memory *mem,
    const struct plan_inst *m, const struct plan_obs_worker *w,
    int was_registered)
{
	int64_t	 now = obs->now_ms, lo, t = now;

	if (mem->last_poll_ms == 0)
		return now;
	lo = QS_MAX(mem->last_poll_ms, m->seen_ms);
	if (m->task[0] != '\0' && m->busy_seen_ms == mem->last_poll_ms)
		t = plan_task_end(obs, m->task);
	else if (!was_registered && !m->adopted)
		t = w->register_ms;
	if (t <= 0)
		t = now;
	return QS_MIN(QS_MAX(t, lo), now);
}

/* ClearML says which instances have a worker, busy or idle. */
static void
plan_sync_workers(const struct plan_obs *obs, struct plan_memory *mem,
    struct plan_output *out)
{
	const struct plan_obs_worker	*w;
	struct plan_inst		*m;
	struct plan_action		*a;
	size_t				 i;
	int				 was;

	for (i = 0; i < mem->ninst; i++) {
		m = &mem->inst[i];
		if ((w = plan_worker_of(obs, m->id)) == NULL) {
			if (m->registered && m->missing_since_ms == 0)
				m->missing_since_ms = obs->now_ms;
			continue;
		}
		was = m->registered;
		m->registered = 1;
		m->missing_since_ms = 0;
		if (plan_live_state(m->state) && !m->terminating)
			m->healthy_ms = obs->now_ms;
		snprintf(m->worker, sizeof(m->worker), "%s", w->id);
		if (w->task != NULL) {
			snprintf(m->task, sizeof(m->task), "%s", w->task);
			m->idle_since_ms = 0;
			m->busy_seen_ms = obs->now_ms;
			continue;
		}
		if (m->idle_since_ms == 0)
			m->idle_since_ms = plan_idle_start(obs, mem, m, w, was);
		m->task[0] = '\0';
	}
	/* Workers of instances EC2 shows gone: zombies to unregister. */
	for (i = 0; i < obs->nworkers; i++) {
		w = &obs->workers[i];
		if (!plan_zombie(obs, w->instance))
			continue;
		a = plan_add(out, PLAN_UNREGISTER);
		snprintf(a->worker, sizeof(a->worker), "%s", w->id);
		snprintf(a->instance, sizeof(a->instance), "%s", w->instance);
	}
}

static void
plan_terminate(struct plan_output *out, const struct plan_inst *m,
    enum plan_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
plan_terminate(struct plan_output *out, const struct plan_inst *m,
    enum plan_reason reason, const char *fmt, ...)
{
	struct plan_action	*a = plan_add(out, PLAN_TERMINATE);
	va_list			 ap;

	a->reason = reason;
	a->recheck = 1;
	a->console = reason == PLAN_R_SPIN_UP || reason == PLAN_R_VANISHED;
	a->spot = m->spot;
	snprintf(a->instance, sizeof(a->instance), "%s", m->id);
	snprintf(a->worker, sizeof(a->worker), "%s", m->worker);
	/* the task a vanished agent last held dies with the instance */
	if (reason == PLAN_R_VANISHED)
		snprintf(a->task, sizeof(a->task), "%s", m->task);
	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
}

static int
plan_idle_cmp(const void *a, const void *b)
{
	const struct plan_inst	*x = *(const struct plan_inst *const *)a;
	const struct plan_inst	*y = *(const struct plan_inst *const *)b;

	if (x->idle_since_ms != y->idle_since_ms)
		return x->idle_since_ms < y->idle_since_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

/*
 * Idle workers past max_idle_time, longest idle first, but never so many
 * that the queue's pending tasks would lack a worker.
 */
static void
plan_idle_terminations(const struct plan_obs *obs, const struct plan_conf *pc,
    struct plan_memory *mem, struct plan_output *out)
{
	struct plan_inst	**idle;
	size_t			 i, n = 0;
	int64_t			 now = obs->now_ms, spare;

	idle = xcalloc(mem->ninst + 1, sizeof(*idle));
	for (i = 0; i < mem->ninst; i++) {
		struct plan_inst *m = &mem->inst[i];

		if (!plan_live_state(m->state) || m->terminating ||
		    !m->registered || m->missing_since_ms != 0 ||
		    m->idle_since_ms == 0)
			continue;
		if (now - m->idle_since_ms >= pc->max_idle_ms)
			idle[n++] = m;
		else
			plan_wake(out, m->idle_since_ms + pc->max_idle_ms, now);
	}
	qsort(idle, n, sizeof(*idle), plan_idle_cmp);
	spare = (int64_t)out->idle - (int64_t)obs->pending -
	    (int64_t)out->unaccounted;
	for (i = 0; i < n && (int64_t)i < spare; i++)
		plan_terminate(out, idle[i], PLAN_R_IDLE, "idle for %llds "
		    "(max_idle_time %llds)",
		    (long long)((now - idle[i]->idle_since_ms) / 1000),
		    (long long)(pc->max_idle_ms / 1000));
	if (n > 0 && (int64_t)n > spare && out->unaccounted > 0)
		snprintf(out->note, sizeof(out->note), "%lld idle worker%s "
		    "kept for %zu pending task%s and %d taken from the queue "
		    "that no worker shows yet", (long long)(n -
		    QS_MAX(spare, 0)), n - QS_MAX(spare, 0) == 1 ? "" : "s",
		    obs->pending, obs->pending == 1 ? "" : "s",
		    out->unaccounted);
	else if (n > 0 && (int64_t)n > spare)
		snprintf(out->note, sizeof(out->note), "%lld idle worker%s "
		    "kept for %zu pending task%s", (long long)(n -
		    QS_MAX(spare, 0)), n - QS_MAX(spare, 0) == 1 ? "" : "s",
		    obs->pending, obs->pending == 1 ? "" : "s");
	free(idle);
}

/* Count what lives, and terminate what boots or vanished too long. */
static void
plan_count(const struct plan_obs *obs, const struct plan_conf *pc,
    struct plan_memory *mem, struct plan_output *out)
{
	struct plan_inst	*m;
	size_t			 i;
	int64_t			 now = obs->now_ms, born;

	for (i = 0; i < mem->ninst; i++) {
		m = &mem->inst[i];
		if (m->state == PLAN_ST_STOPPED && !m->terminating &&
		    m->task[0] == '\0') {
			plan_terminate(out, m, PLAN_R_STOPPED, "stopped "
			    "outside qscale");
			continue;
		}
		if (!plan_live_state(m->state))
			continue;
		out->live++;
		if (m->terminating)
			continue;
		if (m->registered && m->missing_since_ms == 0) {
			if (m->idle_since_ms != 0)
				out->idle++;
			else
				out->busy++;
			continue;
		}
		if (m->registered) {
			if (now - m->missing_since_ms >= pc->vanished_grace_ms)
				plan_terminate(out, m, PLAN_R_VANISHED,
				    "its worker %s has been missing from "
				    "ClearML for %llds%s%s", m->worker,
				    (long long)((now - m->missing_since_ms) /
				    1000), m->task[0] != '\0' ? ", last seen "
				    "running task " : "", m->task);
			else
				plan_wake(out, m->missing_since_ms +
				    pc->vanished_grace_ms, now);
			continue;
		}
		/*
		 * EC2 gives launch times in whole seconds: an instance
		 * launched here counts from when its launch returned, if
		 * later, so that it has all of max_spin_up_time.
		 */
		born = m->launch_ms > 0 ? m->launch_ms : m->seen_ms;
		if (!m->adopted)
			born = QS_MAX(born, m->seen_ms);
		if (now - born < pc->max_spin_up_ms) {
			out->booting++;
			plan_wake(out, born + pc->max_spin_up_ms, now);
		} else
			plan_terminate(out, m, PLAN_R_SPIN_UP, "no worker "
			    "registered %llds after launch (max_spin_up_time "
			    "%llds)", (long long)((now - born) / 1000),
			    (long long)(pc->max_spin_up_ms / 1000));
	}
}

/* "12:04:05Z": a time of day for the log, from epoch ms. */
static void
plan_clock(int64_t ms, char *buf, size_t len)
{
	time_t		 t = (time_t)(ms / 1000);
	struct tm	 tm;

	if (gmtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "?");
	else
		strftime(buf, len, "%H:%M:%SZ", &tm);
}

/*
 * The spot rules of the ClearML app (DESIGN 4).  The attempt that met a
 * spot failure (its spot_attempt instances) retries spot until
 * spot_rollback_timeout has passed since that failure, then launches
 * on-demand.  While a blackout is on for this resource, every additional
 * launch that would be spot is on-demand at once, here too.  Splits the
 * n launches of this poll into a spot and an on-demand action.
 */
static void
plan_spot_split(const struct plan_obs *obs, const struct plan_conf *pc,
    struct plan_memory *mem, int n, struct plan_action *sp,
    struct plan_action *od)
{
	int64_t	 now = obs->now_ms;
	int	 attempt = 0, rolled_back;
	char	 t1[16], t2[16];

	sp->count = od->count = 0;
	if (!pc->spot) {
		od->count = n;
		return;
	}
	if (mem->spot_failure_ms != 0)
		attempt = QS_MIN(n, QS_MAX(mem->spot_attempt, 1));
	rolled_back = mem->spot_failure_ms != 0 &&
	    now - mem->spot_failure_ms >= pc->spot_rollback_ms;
	if (rolled_back)
		od->by_rollback = attempt;
	else
		sp->count = attempt;
	if (obs->blackout)
		od->by_blackout = n - attempt;
	else
		sp->count += n - attempt;
	od->count = od->by_rollback + od->by_blackout;
	plan_clock(mem->spot_failure_ms, t1, sizeof(t1));
	plan_clock(obs->blackout_until_ms, t2, sizeof(t2));
	if (od->by_rollback > 0 && od->by_blackout > 0)
		snprintf(od->converted, sizeof(od->converted), "on-demand "
		    "instead of spot: %d after spot_rollback_timeout (spot "
		    "failing since %s), %d in the spot blackout until %s "
		    "(started by %s)", od->by_rollback, t1, od->by_blackout,
		    t2, obs->blackout_origin ? obs->blackout_origin : "?");
	else if (od->by_rollback > 0)
		snprintf(od->converted, sizeof(od->converted), "on-demand "
		    "instead of spot: spot_rollback_timeout passed (spot "
		    "failing since %s)", t1);
	else if (od->by_blackout > 0)
		snprintf(od->converted, sizeof(od->converted), "on-demand "
		    "instead of spot: spot blackout until %s (started by %s)",
		    t2, obs->blackout_origin ? obs->blackout_origin : "?");
	/* the attempt is served on-demand: it is over */
	if (od->by_rollback > 0 && (mem->spot_attempt -= od->by_rollback) <=
	    0) {
		mem->spot_failure_ms = 0;
		mem->spot_attempt = 0;
	}
}

static void
plan_launch_add(const struct plan_obs *obs, struct plan_output *out,
    const struct plan_action *la, int spot)
{
	struct plan_action	*a;

	if (la->count <= 0)
		return;
	a = plan_add(out, PLAN_LAUNCH);
	*a = *la;
	a->type = PLAN_LAUNCH;
	a->spot = spot;
	snprintf(a->why, sizeof(a->why), "%zu pending, %d idle, %d booting",
	    obs->pending, out->idle, out->booting);
}

static void
plan_launch(const struct plan_obs *obs, const struct plan_conf *pc,
    struct plan_memory *mem, struct plan_output *out)
{
	struct plan_action	 sp, od;
	int64_t			 now = obs->now_ms;
	int			 room, n, rolled_back;

	rolled_back = mem->spot_failure_ms != 0 &&
	    now - mem->spot_failure_ms >= pc->spot_rollback_ms;
	out->spot_market = pc->spot && !obs->blackout;
	if (pc->spot && mem->spot_failure_ms != 0 && !rolled_back)
		plan_wake(out, mem->spot_failure_ms + pc->spot_rollback_ms,
		    now);
	if (out->demand <= 0) {
		mem->spot_failure_ms = 0;	/* this demand is served */
		mem->spot_attempt = 0;
		return;
	}
	if (now < mem->backoff_until_ms) {
		plan_wake(out, mem->backoff_until_ms, now);
		snprintf(out->note, sizeof(out->note), "launches held back "
		    "for %llds after an error",
		    (long long)((mem->backoff_until_ms - now + 999) / 1000));
		return;
	}
	room = pc->max_instances - out->live;
	out->want = QS_MAX(0, QS_MIN(out->demand, room));
	n = obs->grant < 0 ? out->want : QS_MIN(out->want, obs->grant);
	if (out->want < out->demand)
		snprintf(out->note, sizeof(out->note), "max_instances %d: "
		    "%d live, %d more wanted, %d launched", pc->max_instances,
		    out->live, out->demand, out->want);
	else if (n < out->want)
		snprintf(out->note, sizeof(out->note), "global cap: %d of %d "
		    "launches granted", n, out->want);
	if (n <= 0)
		return;
	memset(&sp, 0, sizeof(sp));
	memset(&od, 0, sizeof(od));
	plan_spot_split(obs, pc, mem, n, &sp, &od);
	plan_launch_add(obs, out, &sp, 1);
	plan_launch_add(obs, out, &od, 0);
}

/*
 * The one rule that must hold whatever the others say: an instance whose
 * worker holds a task is never terminated.
 */
static void
plan_spare_busy(const struct plan_obs *obs, struct plan_output *out)
{
	const struct plan_obs_worker	*w;
	size_t				 i, j = 0;

	for (i = 0; i < out->nactions; i++) {
		const struct plan_action *a = &out->actions[i];

		if (a->type == PLAN_TERMINATE &&
		    (w = plan_worker_of(obs, a->instance)) != NULL &&
		    w->task != NULL)
			continue;
		out->actions[j++] = *a;
	}
	out->nactions = j;
}

/* "observation failed (queue, workers): ..." */
static void
plan_failed_note(const struct plan_obs *obs, struct plan_output *out)
{
	const char	*what[3];
	size_t		 n = 0;

	if (!obs->queue_ok)
		what[n++] = "queue";
	if (!obs->workers_ok)
		what[n++] = "workers";
	if (!obs->ec2_ok)
		what[n++] = "instances";
	snprintf(out->note, sizeof(out->note), "observation failed "
	    "(%s%s%s%s%s): nothing launched or terminated", n > 0 ? what[0] :
	    "", n > 1 ? ", " : "", n > 1 ? what[1] : "", n > 2 ? ", " : "",
	    n > 2 ? what[2] : "");
}

static size_t	plan_queue_left(const struct plan_obs *,
		    const struct plan_memory *);

/* Looks at lost tasks that failed last time, once ClearML answers. */
static void
plan_losses_again(struct plan_memory *mem, struct plan_output *out)
{
	size_t	 i;

	for (i = 0; i < mem->nlosses; i++)
		*plan_add(out, PLAN_REQUEUE) = mem->losses[i];
	free(mem->losses);
	mem->losses = NULL;
	mem->nlosses = 0;
}

/* The queue as this poll read it, for the next poll's comparison. */
static void
plan_remember_queue(const struct plan_obs *obs, struct plan_memory *mem)
{
	size_t	 i;

	free(mem->entries);
	mem->entries = xcalloc(obs->nentries + 1, sizeof(*mem->entries));
	for (i = 0; i < obs->nentries; i++)
		snprintf(mem->entries[i], sizeof(mem->entries[i]), "%s",
		    obs->entries[i]);
	mem->nentries = obs->nentries;
	mem->entries_ok = 1;
}

void
plan_resource(const struct plan_obs *obs, const struct plan_conf *pc,
    struct plan_memory *mem, struct plan_output *out)
{
	memset(out, 0, sizeof(*out));
	if (obs->ec2_ok)
		plan_sync_instances(obs, pc, mem, out);
	if (obs->ec2_ok && obs->workers_ok)
		plan_sync_workers(obs, mem, out);
	if (!obs->ec2_ok || !obs->workers_ok || !obs->queue_ok) {
		plan_failed_note(obs, out);
		/*
		 * The last poll is the last that saw the workers: a worker
		 * busy then and idle at the next good poll has its idle
		 * time counted from its task's end, not from the outage's.
		 */
		if (obs->ec2_ok && obs->workers_ok)
			mem->last_poll_ms = obs->now_ms;
		return;
	}
	plan_losses_again(mem, out);
	plan_count(obs, pc, mem, out);
	out->demand = (int)obs->pending - out->idle - out->booting;
	out->unaccounted = (int)plan_queue_left(obs, mem);
	plan_idle_terminations(obs, pc, mem, out);
	plan_launch(obs, pc, mem, out);
	plan_spare_busy(obs, out);
	plan_remember_queue(obs, mem);
	mem->last_poll_ms = obs->now_ms;
}

/*
 * Tasks whose workers were busy at the last poll and are idle now: the
 * caller fetches when they ended, so idle time counts from then.
 */
size_t
plan_transitions(const struct plan_memory *mem, const struct plan_obs *obs,
    const char **ids, size_t max)
{
	const struct plan_obs_worker	*w;
	size_t				 i, n = 0;

	for (i = 0; i < mem->ninst && n < max; i++) {
		const struct plan_inst *m = &mem->inst[i];

		if (m->task[0] == '\0' || m->busy_seen_ms == 0 ||
		    m->busy_seen_ms != mem->last_poll_ms)
			continue;
		if ((w = plan_worker_of(obs, m->id)) != NULL && w->task == NULL)
			ids[n++] = m->task;
	}
	return n;
}

static int
plan_str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Tasks gone from the queue since the last poll that no worker shows. */
static size_t
plan_queue_left(const struct plan_obs *obs, const struct plan_memory *mem)
{
	const char	**before, **held;
	size_t		 i, n;

	if (!mem->entries_ok || mem->nentries == 0)
		return 0;
	before = xcalloc(mem->nentries, sizeof(*before));
	held = xcalloc(obs->nworkers + 1, sizeof(*held));
	for (i = 0; i < mem->nentries; i++)
		before[i] = mem->entries[i];
	for (i = 0; i < obs->nworkers; i++)
		held[i] = obs->workers[i].task;
	n = plan_unaccounted(before, mem->nentries, obs->entries,
	    obs->nentries, held, obs->nworkers);
	free(before);
	free(held);
	return n;
}

/*
 * Tasks that left the queue since the last look (in before, not in now:
 * now sorted) and that no worker shows (held): an agent pops a task and
 * only then tells the server it runs it (tasks.started, then a status
 * report naming it), so for that moment its worker looks idle.  Each is
 * a worker that may not be idle.
 */
size_t
plan_unaccounted(const char *const *before, size_t nbefore,
    const char *const *now, size_t nnow, const char *const *held,
    size_t nheld)
{
	size_t	 i, j, n = 0;

	for (i = 0; i < nbefore; i++) {
		if (nnow > 0 && bsearch(&before[i], now, nnow, sizeof(*now),
		    plan_str_cmp) != NULL)
			continue;
		for (j = 0; j < nheld; j++)
			if (held[j] != NULL && strcmp(held[j], before[i]) == 0)
				break;
		if (j == nheld)
			n++;
	}
	return n;
}

/*
 * Is a task lost with an instance to go back to its queue?  Only what
 * qscale saw decides, with what ClearML says of the task now: never the
 * task's last_worker as "who runs it now" (only a status report sets it,
 * so it names the old worker until the new one reports).
 * - a task another worker lists now runs there: not;
 * - in progress, held by the lost worker when qscale last looked (or
 *   listed by its zombie): its agent died silently with the instance;
 * - in progress and started after qscale last saw the instance healthy:
 *   taken by the agent as the instance went;
 * - stopped by its agent's SIGTERM ("user abort") after qscale last saw
 *   the instance healthy: the agent stopped it on the way down;
 * - anything else (stopped by a person while the instance was healthy,
 *   completed, failed, queued again) stays as it is.
 */
int
plan_requeue_verdict(const struct plan_lost_task *t, const char *worker,
    int64_t since_ms, char *why, size_t len)
{
	int	 after = t->status_changed_ms > 0 &&
	    t->status_changed_ms >= since_ms - PLAN_CLOCK_SLACK_MS;

	if (t->holder != NULL && (worker == NULL ||
	    strcmp(t->holder, worker) != 0)) {
		snprintf(why, len, "it runs on worker %s now", t->holder);
		return 0;
	}
	if (t->status == NULL) {
		snprintf(why, len, "its status is unknown");
		return 0;
	}
	if (strcmp(t->status, "in_progress") == 0 &&
	    (t->seen || t->holder != NULL || after)) {
		snprintf(why, len, "it was running when its instance went");
		return 1;
	}
	if (strcmp(t->status, "stopped") == 0 && after &&
	    t->status_reason != NULL &&
	    strcmp(t->status_reason, PLAN_AGENT_ABORT) == 0) {
		snprintf(why, len, "its agent stopped it as its instance went");
		return 1;
	}
	if (strcmp(t->status, "stopped") == 0)
		snprintf(why, len, "it was stopped (%s) while its instance "
		    "was healthy", t->status_reason != NULL &&
		    t->status_reason[0] != '\0' ? t->status_reason :
		    "no reason given");
	else
		snprintf(why, len, "it is %s now", t->status);
	return 0;
}
