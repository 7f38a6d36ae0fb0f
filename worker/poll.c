/*
 * poll.c: one poll of a worker process.  Observe in parallel (the queue's
 * entries, this resource's workers, this resource's instances by their
 * tags), decide with plan(), let act.c carry the actions out, then
 * report a state snapshot to the supervisor.  Every call is asynchronous
 * on the process's event loop; a poll never overlaps the next one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common.h"
#include "clearml.h"
#include "ec2.h"
#include "http.h"
#include "proto.h"
#include "worker.h"

#define GRANT_TIMEOUT_MS	5000
#define MAX_ENDED		64

enum {
	PHASE_IDLE = 0,
	PHASE_OBSERVE,
	PHASE_ENDED,
	PHASE_GRANT,
	PHASE_ACT
};

static void	poll_observed(struct wpoll *);
static void	poll_decide(struct wpoll *);
static void	poll_finish(struct wpoll *);

/* Errors are logged when they change, counted always. */
void
poll_error(struct wpoll *p, const char *fmt, ...)
{
	char	 buf[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p->count.errors++;
	if (strcmp(buf, p->last_error) != 0 ||
	    now_ms() - p->last_error_ms > 10 * 60 * 1000) {
		log_warnx("%s", buf);
		p->last_error_ms = now_ms();
	} else
		log_debug("%s", buf);
	snprintf(p->last_error, sizeof(p->last_error), "%s", buf);
}

/* An event for the supervisor: counters, blackout, metrics. */
void
poll_event(struct wpoll *p, const char *name, cJSON *o)
{
	if (o == NULL)
		o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "event", name);
	cJSON_AddNumberToObject(o, "ts", (double)now_ms());
	if (!p->dry_run)
		worker_send(p->w, MSG_EVENT, o);
	cJSON_Delete(o);
}

static void
poll_clear_observation(struct wpoll *p)
{
	size_t	 i;

	for (i = 0; i < p->nworkers; i++) {
		free(p->workers[i].id);
		free(p->workers[i].task);
	}
	free(p->workers);
	p->workers = NULL;
	p->nworkers = 0;
	free(p->inst);
	p->inst = NULL;
	p->ninst = 0;
	free(p->ended);
	p->ended = NULL;
	p->nended = 0;
	free(p->ended_ids);
	p->ended_ids = NULL;
	for (i = 0; p->entry_ids != NULL && i < p->pending; i++)
		free(p->entry_ids[i]);
	free(p->entry_ids);
	p->entry_ids = NULL;
	p->pending = 0;
	p->oldest_ms = 0;
	p->queue_ok = p->workers_ok = p->ec2_ok = 0;
	memset(p->obs_error, 0, sizeof(p->obs_error));
	plan_output_clear(&p->out);
}

struct wpoll *
poll_new(struct wproc *w)
{
	struct wpoll		*p = xcalloc(1, sizeof(*p));
	struct qscale_conf	*conf = w->conf;
	const struct conf_resource *r = w->res;
	char			 err[256];

	p->w = w;
	snprintf(p->prefix_res, sizeof(p->prefix_res), "%s:%s",
	    conf->workers_prefix, r->name);
	snprintf(p->pattern, sizeof(p->pattern), "%s:*", p->prefix_res);
	if ((p->http = http_client_new(w->base)) == NULL) {
		snprintf(p->init_error, sizeof(p->init_error), "cannot set "
		    "up curl");
		return p;
	}
	p->cml = cml_client_new(w->base, p->http, conf->clearml.api_server,
	    conf->clearml.access_key, conf->clearml.secret_key);
	if (p->cml != NULL)
		cml_client_set_retry(p->cml, -1, 0,
		    conf->clearml.request_timeout);
	p->ec2 = ec2_client_new(w->base, p->http, conf, err, sizeof(err));
	if (p->ec2 == NULL)
		snprintf(p->init_error, sizeof(p->init_error), "EC2 client: "
		    "%s", err);
	else if (p->cml == NULL)
		snprintf(p->init_error, sizeof(p->init_error), "ClearML "
		    "client: cannot set up");
	if ((p->user_data = userdata_build(conf, w->index, err,
	    sizeof(err))) == NULL)
		snprintf(p->init_error, sizeof(p->init_error), "startup "
		    "script: %s", err);
	p->ev_grant = evtimer_new(w->base, NULL, NULL);
	return p;
}

void
poll_free(struct wpoll *p)
{
	if (p == NULL)
		return;
	poll_clear_observation(p);
	plan_memory_clear(&p->mem);
	cml_client_free(p->cml);
	ec2_client_free(p->ec2);
	http_client_free(p->http);
	if (p->ev_grant != NULL)
		event_free(p->ev_grant);
	freezero_str(p->user_data);
	free(p);
}

static void
poll_op_done(struct wpoll *p)
{
	if (--p->ops > 0)
		return;
	if (p->phase == PHASE_OBSERVE)
		poll_observed(p);
	else if (p->phase == PHASE_ENDED)
		poll_decide(p);
}

static int
poll_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
poll_queue_cb(const struct cml_error *err, const struct cml_queue *q,
    void *arg)
{
	struct wpoll	*p = arg;
	size_t		 i;

	if (err != NULL && err->cls != CML_OK) {
		snprintf(p->obs_error[0], sizeof(p->obs_error[0]), "queue %s: "
		    "%s: %s", p->w->res->queue, cml_err_class_name(err->cls),
		    err->message);
		if (err->cls == CML_ERR_NOT_FOUND)
			p->queue_id[0] = '\0';	/* deleted: resolve again */
	} else {
		p->queue_ok = 1;
		p->pending = q->nentries;
		p->entry_ids = xcalloc(q->nentries + 1, sizeof(char *));
		for (i = 0; i < q->nentries; i++) {
			p->entry_ids[i] = xstrdup(q->entries[i].task);
			if (p->oldest_ms == 0 ||
			    q->entries[i].added_ms < p->oldest_ms)
				p->oldest_ms = q->entries[i].added_ms;
		}
		qsort(p->entry_ids, q->nentries, sizeof(char *), poll_str_cmp);
	}
	poll_op_done(p);
}

static void
poll_resolve_cb(const struct cml_error *err, const char *id, void *arg)
{
	struct wpoll	*p = arg;
	const char	*queue = p->w->res->queue;

	if ((err == NULL || err->cls == CML_OK) && id != NULL) {
		snprintf(p->queue_id, sizeof(p->queue_id), "%s", id);
		if (p->queue_missing)
			log_info("queue %s exists now (%s)", queue, id);
		p->queue_missing = 0;
		if (cml_queue_get(p->cml, p->queue_id, poll_queue_cb, p) == 0)
			return;
		snprintf(p->obs_error[0], sizeof(p->obs_error[0]), "queue %s: "
		    "cannot start the call", queue);
	} else if (err == NULL || err->cls == CML_OK ||
	    err->cls == CML_ERR_NOT_FOUND) {
		/* no queue, no tasks: a valid observation of an empty one */
		if (!p->queue_missing)
			log_warnx("queue %s does not exist in ClearML; it "
			    "counts as empty until it does", queue);
		p->queue_missing = 1;
		p->queue_ok = 1;
	} else
		snprintf(p->obs_error[0], sizeof(p->obs_error[0]), "resolving "
		    "queue %s: %s: %s", queue, cml_err_class_name(err->cls),
		    err->message);
	poll_op_done(p);
}

static void
poll_workers_cb(const struct cml_error *err, const struct cml_worker *ws,
    size_t n, void *arg)
{
	struct wpoll		*p = arg;
	struct wobs_worker	*o;
	size_t			 i;

	if (err != NULL && err->cls != CML_OK) {
		snprintf(p->obs_error[1], sizeof(p->obs_error[1]), "workers: "
		    "%s: %s", cml_err_class_name(err->cls), err->message);
		poll_op_done(p);
		return;
	}
	p->workers_ok = 1;
	p->workers = xcalloc(n + 1, sizeof(*p->workers));
	for (i = 0; i < n; i++) {
		o = &p->workers[p->nworkers];
		if (plan_worker_instance(ws[i].id, p->prefix_res, o->instance,
		    sizeof(o->instance)) == -1)
			continue;	/* not one of ours */
		o->id = xstrdup(ws[i].id);
		o->task = ws[i].task != NULL ? xstrdup(ws[i].task) : NULL;
		o->register_ms = ws[i].register_ms;
		p->nworkers++;
	}
	poll_op_done(p);
}

static void
poll_instances_cb(const struct ec2_error *err, const struct ec2_instance *in,
    size_t n, void *arg)
{
	struct wpoll			*p = arg;
	struct plan_obs_instance	*o;
	size_t				 i;

	if (err != NULL && err->cls != EC2_OK) {
		snprintf(p->obs_error[2], sizeof(p->obs_error[2]), "instances: "
		    "%s %s: %s", ec2_err_class_name(err->cls), err->code,
		    err->message);
		poll_op_done(p);
		return;
	}
	p->ec2_ok = 1;
	p->inst = xcalloc(n + 1, sizeof(*p->inst));
	for (i = 0; i < n; i++) {
		o = &p->inst[p->ninst++];
		snprintf(o->id, sizeof(o->id), "%s", in[i].id);
		o->state = plan_state_parse(in[i].state);
		o->spot = in[i].spot;
		o->launch_ms = in[i].launch_ms;
		snprintf(o->state_reason, sizeof(o->state_reason), "%s",
		    in[i].state_reason);
		snprintf(o->subnet, sizeof(o->subnet), "%s", in[i].subnet);
	}
	poll_op_done(p);
}

static void
poll_observe(struct wpoll *p)
{
	static const char *const states[] = { "pending", "running",
	    "shutting-down", "terminated", "stopping", "stopped" };
	const char		*name = p->w->conf->name;
	const char		*res = p->w->res->name;
	struct ec2_filter	 f[3] = {
		{ "tag:qscale:autoscaler", &name, 1 },
		{ "tag:qscale:resource", &res, 1 },
		{ "instance-state-name", states, QS_ARRAYLEN(states) },
	};
	int			 last_seen;

	p->phase = PHASE_OBSERVE;
	p->ops = 3;
	if (p->queue_id[0] == '\0') {
		if (cml_queue_resolve(p->cml, p->w->res->queue,
		    poll_resolve_cb, p) == -1)
			p->ops--;
	} else if (cml_queue_get(p->cml, p->queue_id, poll_queue_cb, p) == -1)
		p->ops--;
	last_seen = (int)(p->w->conf->worker_last_seen / 1000);
	if (cml_workers_get_all(p->cml, p->pattern, QS_MAX(last_seen, 1),
	    poll_workers_cb, p) == -1)
		p->ops--;
	if (ec2_describe_instances(p->ec2, f, QS_ARRAYLEN(f),
	    poll_instances_cb, p) == -1)
		p->ops--;
	if (p->ops == 0) {
		p->ops = 1;
		poll_op_done(p);
	}
}

static void
poll_build_obs(struct wpoll *p, struct plan_obs *obs,
    struct plan_obs_worker *ws)
{
	size_t	 i;

	memset(obs, 0, sizeof(*obs));
	obs->now_ms = p->start_ms;
	obs->queue_ok = p->queue_ok;
	obs->workers_ok = p->workers_ok;
	obs->ec2_ok = p->ec2_ok;
	obs->pending = p->pending;
	obs->entries = (const char *const *)p->entry_ids;
	obs->nentries = p->entry_ids != NULL ? p->pending : 0;
	obs->inst = p->inst;
	obs->ninst = p->ninst;
	for (i = 0; i < p->nworkers; i++) {
		ws[i].id = p->workers[i].id;
		ws[i].task = p->workers[i].task;
		ws[i].register_ms = p->workers[i].register_ms;
		snprintf(ws[i].instance, sizeof(ws[i].instance), "%s",
		    p->workers[i].instance);
	}
	obs->workers = ws;
	obs->nworkers = p->nworkers;
	obs->tasks = p->ended;
	obs->ntasks = p->nended;
	obs->grant = p->grant;
	/* in the resource that failed too: only its attempt retries spot */
	obs->blackout = p->w->blackout && (p->w->blackout_until_ms == 0 ||
	    obs->now_ms < p->w->blackout_until_ms);
	obs->blackout_until_ms = p->w->blackout_until_ms;
	obs->blackout_origin = p->w->blackout_origin;
}

static void
poll_ended_cb(const struct cml_error *err, const struct cml_task *t,
    size_t n, void *arg)
{
	struct wpoll	*p = arg;
	size_t		 i, j;

	if (err != NULL && err->cls != CML_OK)
		log_debug("end times of finished tasks: %s",
		    err->message);
	else
		for (i = 0; i < n; i++)
			for (j = 0; j < p->nended; j++)
				if (strcmp(p->ended[j].id, t[i].id) == 0)
					p->ended[j].ended_ms =
					    t[i].last_update_ms;
	poll_op_done(p);
}

/*
 * Workers that finished a task since the last poll: ask ClearML when
 * the task ended, so their idle time counts from then.
 */
static void
poll_observed(struct wpoll *p)
{
	struct plan_obs		 obs;
	struct plan_obs_worker	*ws;
	const char		*ids[MAX_ENDED];
	size_t			 n, i;

	p->phase = PHASE_ENDED;
	ws = xcalloc(p->nworkers + 1, sizeof(*ws));
	poll_build_obs(p, &obs, ws);
	n = plan_transitions(&p->mem, &obs, ids, MAX_ENDED);
	free(ws);
	if (n == 0 || p->w->stopping) {
		poll_decide(p);
		return;
	}
	p->ended = xcalloc(n, sizeof(*p->ended));
	p->ended_ids = xcalloc(n, sizeof(*p->ended_ids));
	for (i = 0; i < n; i++) {
		p->ended_ids[i] = (char *)ids[i];
		p->ended[i].id = ids[i];
	}
	p->nended = n;
	p->ops = 1;
	if (cml_tasks_get_all(p->cml, (const char *const *)p->ended_ids, n,
	    poll_ended_cb, p) == -1)
		poll_op_done(p);
}

static void
poll_plan(struct wpoll *p, struct plan_memory *mem, struct plan_output *out)
{
	struct plan_obs		 obs;
	struct plan_obs_worker	*ws;
	struct plan_conf	 pc;

	ws = xcalloc(p->nworkers + 1, sizeof(*ws));
	poll_build_obs(p, &obs, ws);
	plan_conf_from(&pc, p->w->conf, p->w->res);
	plan_resource(&obs, &pc, mem, out);
	free(ws);
}

static void
poll_grant_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct wpoll	*p = arg;

	(void)fd;
	(void)ev;
	if (!p->grant_waiting)
		return;
	p->grant_waiting = 0;
	poll_error(p, "the supervisor did not answer a launch request in "
	    "%d s; launching nothing this poll", GRANT_TIMEOUT_MS / 1000);
	p->grant = 0;
	poll_plan(p, &p->mem, &p->out);
	act_start(p);
}

/*
 * With a global cap, ask the supervisor how many launches fit before
 * deciding for real: plan on a scratch copy of the memory to learn how
 * many this resource wants.
 */
static void
poll_decide(struct wpoll *p)
{
	struct plan_memory	 scratch;
	struct plan_output	 what;
	cJSON			*o;
	int			 want, live;

	p->grant = -1;
	if (p->w->conf->max_instances_total > 0 && !p->dry_run) {
		plan_memory_copy(&scratch, &p->mem);
		poll_plan(p, &scratch, &what);
		want = what.want;
		live = what.live;
		plan_output_clear(&what);
		plan_memory_clear(&scratch);
		if (want > 0) {
			p->phase = PHASE_GRANT;
			p->grant_waiting = 1;
			o = cJSON_CreateObject();
			cJSON_AddNumberToObject(o, "id", (double)++p->grant_id);
			cJSON_AddNumberToObject(o, "want", want);
			/* read from EC2 just now: the supervisor's count */
			cJSON_AddNumberToObject(o, "live", live);
			worker_send(p->w, MSG_LAUNCH_REQ, o);
			cJSON_Delete(o);
			event_assign(p->ev_grant, p->w->base, -1, 0,
			    poll_grant_timeout_cb, p);
			timer_add_ms(p->ev_grant, GRANT_TIMEOUT_MS);
			return;
		}
	}
	poll_plan(p, &p->mem, &p->out);
	p->phase = PHASE_ACT;
	act_start(p);
}

static void
poll_grant(struct wpoll *p, cJSON *body)
{
	int64_t	 id, granted;

	if (proto_get_int(body, "id", 0, INT64_MAX, &id) == -1 ||
	    proto_get_int(body, "granted", 0, 1000000, &granted) == -1) {
		log_warnx("malformed launch grant from the supervisor");
		return;
	}
	if (!p->grant_waiting || (uint64_t)id != p->grant_id)
		return;	/* late, for a poll that gave up waiting */
	p->grant_waiting = 0;
	evtimer_del(p->ev_grant);
	p->grant = (int)granted;
	poll_plan(p, &p->mem, &p->out);
	p->phase = PHASE_ACT;
	act_start(p);
}

void
poll_message(struct wproc *w, uint32_t type, cJSON *body)
{
	if (w->poll == NULL)
		return;
	if (type == MSG_LAUNCH_GRANT)
		poll_grant(w->poll, body);
	else if (type == MSG_BLACKOUT && !w->blackout)
		act_spot_episode_end(w->poll, "the spot blackout is over");
}

/* The process is stopping: let the calls in flight end, retry nothing. */
void
poll_stopping(struct wpoll *p)
{
	if (p->ec2 != NULL)
		ec2_client_set_retry_budget(p->ec2, 0);
	if (p->cml != NULL)
		cml_client_set_retry(p->cml, 0, 0, 0);
}

void
poll_start(struct wproc *w)
{
	struct wpoll	*p = w->poll;

	p->start_ms = now_ms();
	p->start_mono = mono_ms();
	poll_clear_observation(p);
	if (p->init_error[0] != '\0') {
		poll_error(p, "%s", p->init_error);
		poll_finish(p);
		return;
	}
	poll_observe(p);
}

static cJSON *
poll_hist_json(const uint64_t *h, size_t n)
{
	cJSON	*arr = cJSON_CreateArray();
	size_t	 i;

	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)h[i]));
	return arr;
}

static cJSON *
poll_api_json(const struct wpoll *p)
{
	const struct ec2_call_stats	*es = NULL;
	const struct cml_call_stats	*cs = NULL;
	cJSON				*o = cJSON_CreateObject(), *arr, *e;
	size_t				 i, n = 0;

	arr = cJSON_AddArrayToObject(o, "ec2");
	if (p->ec2 != NULL)
		es = ec2_client_stats(p->ec2, &n);
	for (i = 0; es != NULL && i < n; i++) {
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "action", es[i].action);
		cJSON_AddNumberToObject(e, "calls", (double)es[i].calls);
		cJSON_AddNumberToObject(e, "errors", (double)es[i].errors);
		cJSON_AddNumberToObject(e, "retries", (double)es[i].retries);
		cJSON_AddNumberToObject(e, "latency_ms_sum",
		    (double)es[i].latency_ms_sum);
		cJSON_AddItemToObject(e, "latency_hist", poll_hist_json(
		    es[i].latency_hist, QS_ARRAYLEN(es[i].latency_hist)));
		cJSON_AddItemToArray(arr, e);
	}
	arr = cJSON_AddArrayToObject(o, "clearml");
	n = 0;
	if (p->cml != NULL)
		cs = cml_client_stats(p->cml, &n);
	for (i = 0; cs != NULL && i < n; i++) {
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "endpoint", cs[i].endpoint);
		cJSON_AddNumberToObject(e, "calls", (double)cs[i].calls);
		cJSON_AddNumberToObject(e, "errors", (double)cs[i].errors);
		cJSON_AddNumberToObject(e, "latency_ms_sum",
		    (double)cs[i].latency_ms_sum);
		cJSON_AddItemToObject(e, "latency_hist", poll_hist_json(
		    cs[i].latency_hist, QS_ARRAYLEN(cs[i].latency_hist)));
		cJSON_AddItemToArray(arr, e);
	}
	return o;
}

static cJSON *
poll_instances_json(const struct wpoll *p, cJSON *counts)
{
	cJSON		*arr = cJSON_CreateArray(), *o;
	size_t		 i;
	int		 spot = 0, ondemand = 0, pend = 0, run = 0, boot = 0;

	for (i = 0; i < p->mem.ninst; i++) {
		const struct plan_inst *m = &p->mem.inst[i];

		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", m->id);
		cJSON_AddStringToObject(o, "state", plan_state_name(m->state));
		cJSON_AddStringToObject(o, "market", m->spot ? "spot" :
		    "on-demand");
		cJSON_AddNumberToObject(o, "launched", (double)m->launch_ms);
		cJSON_AddStringToObject(o, "subnet", m->subnet);
		cJSON_AddStringToObject(o, "worker", m->worker);
		cJSON_AddStringToObject(o, "task", m->task);
		cJSON_AddNumberToObject(o, "idle_since",
		    (double)m->idle_since_ms);
		cJSON_AddBoolToObject(o, "registered", m->registered);
		cJSON_AddBoolToObject(o, "adopted", m->adopted);
		cJSON_AddBoolToObject(o, "terminating", m->terminating);
		cJSON_AddItemToArray(arr, o);
		if (m->state != PLAN_ST_PENDING && m->state != PLAN_ST_RUNNING)
			continue;
		if (m->spot)
			spot++;
		else
			ondemand++;
		if (m->state == PLAN_ST_PENDING)
			pend++;
		else
			run++;
		if (!m->registered && !m->terminating)
			boot++;
	}
	/* after acting: what was just launched counts already */
	cJSON_ReplaceItemInObject(counts, "live",
	    cJSON_CreateNumber(spot + ondemand));
	cJSON_ReplaceItemInObject(counts, "booting", cJSON_CreateNumber(boot));
	cJSON_AddNumberToObject(counts, "spot", spot);
	cJSON_AddNumberToObject(counts, "on_demand", ondemand);
	cJSON_AddNumberToObject(counts, "ec2_pending", pend);
	cJSON_AddNumberToObject(counts, "ec2_running", run);
	return arr;
}

static cJSON *
poll_counters_json(const struct wpoll *p)
{
	cJSON	*o = cJSON_CreateObject(), *t;
	int	 r;

	cJSON_AddNumberToObject(o, "launched", (double)p->count.launched);
	cJSON_AddNumberToObject(o, "launch_calls",
	    (double)p->count.launch_calls);
	cJSON_AddNumberToObject(o, "launch_errors",
	    (double)p->count.launch_errors);
	cJSON_AddNumberToObject(o, "requeued", (double)p->count.requeued);
	cJSON_AddNumberToObject(o, "errors", (double)p->count.errors);
	cJSON_AddNumberToObject(o, "instance_seconds",
	    (double)p->count.instance_ms / 1000.0);
	t = cJSON_AddObjectToObject(o, "terminated");
	for (r = PLAN_R_IDLE; r < PLAN_R_MAX; r++)
		cJSON_AddNumberToObject(t, plan_reason_name(r),
		    (double)p->count.terminated[r]);
	return o;
}

/*
 * The spot rules as they stand: the blackout in force here and until
 * when, the attempt retrying spot and when it rolls back, and the
 * launches converted to on-demand.
 */
static cJSON *
poll_spot_json(struct wpoll *p)
{
	const struct conf_resource	*r = p->w->res;
	cJSON				*e = cJSON_CreateObject(), *c;
	int				 on = p->w->blackout &&
					    now_ms() < p->w->blackout_until_ms;

	cJSON_AddBoolToObject(e, "enabled", r->spot);
	cJSON_AddBoolToObject(e, "blackout", on);
	cJSON_AddNumberToObject(e, "blackout_until", on ?
	    (double)p->w->blackout_until_ms : 0);
	cJSON_AddStringToObject(e, "blackout_origin", on ?
	    p->w->blackout_origin : "");
	cJSON_AddNumberToObject(e, "failure_since",
	    (double)p->mem.spot_failure_ms);
	cJSON_AddNumberToObject(e, "attempt", p->mem.spot_failure_ms != 0 ?
	    p->mem.spot_attempt : 0);
	cJSON_AddNumberToObject(e, "rollback_at", p->mem.spot_failure_ms != 0 ?
	    (double)(p->mem.spot_failure_ms + r->spot_rollback_timeout) : 0);
	cJSON_AddStringToObject(e, "market", p->out.spot_market ? "spot" :
	    "on-demand");
	c = cJSON_AddObjectToObject(e, "converted");
	cJSON_AddNumberToObject(c, "rollback",
	    (double)p->count.converted_rollback);
	cJSON_AddNumberToObject(c, "blackout",
	    (double)p->count.converted_blackout);
	cJSON_AddStringToObject(e, "last_converted", p->last_converted);
	cJSON_AddNumberToObject(e, "last_converted_time",
	    (double)p->last_converted_ms);
	return e;
}

/* The snapshot the supervisor keeps: status, metrics, global rules. */
static cJSON *
poll_snapshot(struct wpoll *p)
{
	cJSON	*o = cJSON_CreateObject(), *c, *ws, *e;
	int	 failed = !p->queue_ok || !p->workers_ok || !p->ec2_ok;
	size_t	 i;

	cJSON_AddStringToObject(o, "state", p->init_error[0] != '\0' ?
	    "not scaling" : failed ? "degraded" : "scaling");
	cJSON_AddStringToObject(o, "note", p->init_error[0] != '\0' ?
	    p->init_error : p->out.note);
	cJSON_AddNumberToObject(o, "polls", (double)p->w->polls);
	cJSON_AddNumberToObject(o, "last_poll", (double)p->start_ms);
	cJSON_AddNumberToObject(o, "poll_ms", (double)p->last_duration_ms);
	cJSON_AddStringToObject(o, "queue", p->w->res->queue);
	cJSON_AddStringToObject(o, "queue_id", p->queue_id);
	cJSON_AddBoolToObject(o, "queue_missing", p->queue_missing);
	cJSON_AddNumberToObject(o, "oldest_wait_s", p->oldest_ms > 0 ?
	    (double)(p->start_ms - p->oldest_ms) / 1000.0 : 0);
	c = cJSON_AddObjectToObject(o, "counts");
	cJSON_AddNumberToObject(c, "pending", (double)p->pending);
	cJSON_AddNumberToObject(c, "live", p->out.live);
	cJSON_AddNumberToObject(c, "idle", p->out.idle);
	cJSON_AddNumberToObject(c, "busy", p->out.busy);
	cJSON_AddNumberToObject(c, "booting", p->out.booting);
	cJSON_AddNumberToObject(c, "demand", p->out.demand);
	cJSON_AddNumberToObject(c, "errors", (double)p->count.errors);
	/* live was read from EC2 this poll, not only remembered */
	cJSON_AddBoolToObject(c, "ec2_ok", p->ec2_ok);
	cJSON_AddItemToObject(o, "instances", poll_instances_json(p, c));
	ws = cJSON_AddArrayToObject(o, "workers");
	for (i = 0; i < p->nworkers; i++) {
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "id", p->workers[i].id);
		if (p->workers[i].task != NULL)
			cJSON_AddStringToObject(e, "task", p->workers[i].task);
		cJSON_AddItemToArray(ws, e);
	}
	cJSON_AddItemToObject(o, "spot", poll_spot_json(p));
	cJSON_AddStringToObject(o, "last_error", p->last_error);
	cJSON_AddNumberToObject(o, "last_error_time",
	    (double)p->last_error_ms);
	cJSON_AddItemToObject(o, "totals", poll_counters_json(p));
	cJSON_AddItemToObject(o, "api", poll_api_json(p));
	return o;
}

/* Instance time, for the status and the metrics: live ones since last. */
static void
poll_account_time(struct wpoll *p)
{
	int64_t	 now = p->start_ms, dt;

	if (p->last_instance_ms > 0 && p->ec2_ok) {
		dt = now - p->last_instance_ms;
		p->count.instance_ms += (uint64_t)(QS_MAX(dt, 0) *
		    p->out.live);
	}
	if (p->ec2_ok)
		p->last_instance_ms = now;
}

/*
 * The console line an operator reads, as ClearML's app shows its polls:
 * the queue's length and the idle, busy and booting counts, at level
 * info whenever one of them changes and at least every POLL_SHOW_MS.
 * Only a poll that saw ClearML and EC2 has counts worth showing.
 */
#define POLL_SHOW_MS	(5 * 60 * 1000)

static void
poll_show_counts(struct wpoll *p)
{
	long long	now[4];

	if (p->dry_run || !p->queue_ok || !p->workers_ok || !p->ec2_ok)
		return;
	now[0] = (long long)p->pending;
	now[1] = p->out.idle;
	now[2] = p->out.busy;
	now[3] = p->out.booting;
	if (p->shown_ms != 0 && memcmp(now, p->shown, sizeof(now)) == 0 &&
	    p->start_ms - p->shown_ms < POLL_SHOW_MS)
		return;
	log_info("queue %s: %lld pending; workers: %lld idle, %lld busy, "
	    "%lld booting", p->w->res->queue, now[0], now[1], now[2], now[3]);
	memcpy(p->shown, now, sizeof(p->shown));
	p->shown_ms = p->start_ms;
}

static void
poll_finish(struct wpoll *p)
{
	cJSON	*o;
	size_t	 i;

	p->phase = PHASE_IDLE;
	p->last_duration_ms = mono_ms() - p->start_mono;
	for (i = 0; i < 3; i++)
		if (p->obs_error[i][0] != '\0')
			poll_error(p, "%s", p->obs_error[i]);
	poll_account_time(p);
	if (strcmp(p->out.note, p->last_note) != 0 && p->out.note[0] != '\0')
		log_info("%s", p->out.note);
	snprintf(p->last_note, sizeof(p->last_note), "%s", p->out.note);
	poll_show_counts(p);
	log_debug("poll %llu: %zu pending, %d live, %d idle, %d busy, "
	    "%d booting, demand %d (%lld ms)", (unsigned long long)p->w->polls,
	    p->pending, p->out.live, p->out.idle, p->out.busy,
	    p->out.booting, p->out.demand, (long long)p->last_duration_ms);
	if (p->dry_run) {
		event_base_loopexit(p->w->base, NULL);
		return;
	}
	o = poll_snapshot(p);
	worker_send(p->w, MSG_STATE, o);
	cJSON_Delete(o);
	p->w->next_wake_ms = p->out.next_wake_ms;
	worker_poll_done(p->w);
}

/* act.c says every action is done. */
void
poll_acted(struct wpoll *p)
{
	poll_finish(p);
}
