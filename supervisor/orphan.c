/*
 * orphan.c: instances this autoscaler launched (qscale:autoscaler is its
 * name) for a resource the configuration no longer has, renamed or
 * removed by a reload, or dropped before a restart.  No worker process
 * looks after them, so the supervisor does: every polling_interval it
 * reads them from EC2 and their workers from ClearML (the worker id is
 * <prefix>:<resource>:<type>:<instance id>), all of it asynchronous on
 * its loop, and terminates an orphan once it has been idle for
 * max_idle_time, never while its worker holds a task.  Idle time starts
 * when the supervisor first sees the orphan, so a reload or a restart
 * never shortens it.  Orphans count against max_instances_total.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common.h"
#include "clearml.h"
#include "ec2.h"
#include "http.h"
#include "supervisor.h"
#include "worker.h"

#define ORPHAN_QUIET_ROUNDS	10	/* polling intervals, none known */
#define ORPHAN_FIRST_MS		1000

struct orphan_watch {
	struct sup		*sup;
	struct http_client	*http;
	struct ec2_client	*ec2;
	struct cml_client	*cml;
	struct event		*ev_tick;	/* every polling_interval */
	struct event		*ev_soon;	/* a round out of turn */
	int64_t			 interval_ms;
	int			 busy;		/* a round in flight */
	int			 again;		/* another right after it */
	uint64_t		 gen;		/* orphans.gen at its start */
	struct orphan_seen	*seen;
	size_t			 nseen;
	char			**term;		/* ids being terminated */
	size_t			 nterm;
};

static int
orphan_live_state(const char *state)
{
	return strcmp(state, "pending") == 0 || strcmp(state, "running") == 0;
}

static struct sup_orphan *
orphan_find(struct sup_orphans *o, const char *id)
{
	size_t	 i;

	for (i = 0; i < o->n; i++)
		if (strcmp(o->list[i].id, id) == 0)
			return &o->list[i];
	return NULL;
}

static void
orphan_entry_free(struct sup_orphan *e)
{
	free(e->id);
	free(e->resource);
	free(e->type);
	free(e->state);
	free(e->worker);
	free(e->task);
}

static void
orphan_set(char **field, const char *value)
{
	free(*field);
	*field = xstrdup(value != NULL ? value : "");
}

static struct sup_orphan *
orphan_add(struct sup_orphans *o, const struct orphan_seen *s, int64_t now)
{
	struct sup_orphan	*e;

	o->list = xreallocarray(o->list, o->n + 1, sizeof(*o->list));
	e = &o->list[o->n++];
	memset(e, 0, sizeof(*e));
	e->id = xstrdup(s->id);
	e->resource = xstrdup(s->resource);
	e->worker = xstrdup("");
	e->task = xstrdup("");
	e->seen_ms = now;
	e->idle_since_ms = now;		/* idle time starts at adoption */
	e->fresh = 1;
	return e;
}

/* Its worker in the list, by the worker id convention. */
static const struct cml_worker *
orphan_worker(const struct sup_orphan *e, const struct cml_worker *ws,
    size_t nws, const char *prefix)
{
	char	 pr[256], inst[64];
	size_t	 i;

	snprintf(pr, sizeof(pr), "%s:%s", prefix, e->resource);
	for (i = 0; i < nws; i++)
		if (plan_worker_instance(ws[i].id, pr, inst,
		    sizeof(inst)) == 0 && strcmp(inst, e->id) == 0)
			return &ws[i];
	return NULL;
}

/*
 * One reading merged into the list: the orphans seen (EC2), their workers
 * (ClearML; workers_ok 0 when they could not be read).  Marks the ones to
 * terminate now (terminating set, returns how many): idle for max_idle_ms
 * in a reading of both.  Entries not seen are left with alive 0 for
 * orphan_sweep().  Pure: no I/O, no clock.
 */
int
orphan_update(struct sup_orphans *o, const struct orphan_seen *seen,
    size_t nseen, const struct cml_worker *ws, size_t nws, int workers_ok,
    const char *prefix, int64_t max_idle_ms, int64_t now)
{
	struct sup_orphan	*e;
	const struct cml_worker	*w;
	size_t			 i;
	int			 n = 0;

	for (i = 0; i < o->n; i++)
		o->list[i].alive = 0;
	o->live = 0;
	for (i = 0; i < nseen; i++) {
		if ((e = orphan_find(o, seen[i].id)) == NULL)
			e = orphan_add(o, &seen[i], now);
		e->alive = 1;
		orphan_set(&e->type, seen[i].type);
		orphan_set(&e->state, seen[i].state);
		e->launch_ms = seen[i].launch_ms;
		if (orphan_live_state(e->state))
			o->live++;
		if (!workers_ok)
			continue;
		w = orphan_worker(e, ws, nws, prefix);
		orphan_set(&e->worker, w != NULL ? w->id : "");
		orphan_set(&e->task, w != NULL ? w->task : "");
		if (*e->task != '\0')
			e->idle_since_ms = 0;
		else if (e->idle_since_ms == 0)
			e->idle_since_ms = now;
		if (e->terminating || *e->task != '\0' ||
		    !orphan_live_state(e->state) ||
		    now - e->idle_since_ms < max_idle_ms)
			continue;
		e->terminating = 1;
		n++;
	}
	return n;
}

/* Drops the entries the last reading did not see. */
void
orphan_sweep(struct sup_orphans *o)
{
	size_t	 i, j = 0;

	for (i = 0; i < o->n; i++) {
		o->list[i].fresh = 0;
		if (o->list[i].alive)
			o->list[j++] = o->list[i];
		else
			orphan_entry_free(&o->list[i]);
	}
	o->n = j;
}

void
orphan_list_clear(struct sup_orphans *o)
{
	size_t	 i;

	for (i = 0; i < o->n; i++)
		orphan_entry_free(&o->list[i]);
	free(o->list);
	o->list = NULL;
	o->n = 0;
}

void
orphan_seen_clear(struct orphan_seen *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		free(s[i].id);
		free(s[i].resource);
		free(s[i].type);
		free(s[i].state);
	}
	free(s);
}

/*
 * The instances of the reading that belong to no resource of conf; those
 * without a qscale:resource tag are not ours to judge.
 */
size_t
orphan_pick(const struct qscale_conf *conf, const struct ec2_instance *in,
    size_t n, struct orphan_seen **out)
{
	struct orphan_seen	*s = xcalloc(n + 1, sizeof(*s));
	const char		*res;
	size_t			 i, k = 0;

	for (i = 0; i < n; i++) {
		res = ec2_instance_tag(&in[i], "qscale:resource");
		if (res == NULL || *res == '\0' ||
		    conf_resource_find(conf, res) != NULL)
			continue;
		s[k].id = xstrdup(in[i].id);
		s[k].resource = xstrdup(res);
		s[k].type = xstrdup(in[i].type);
		s[k].state = xstrdup(in[i].state);
		s[k].launch_ms = in[i].launch_ms;
		k++;
	}
	*out = s;
	return k;
}

/* ---- the watcher, on the supervisor's loop ----------------------------- */

static void	orphan_round_end(struct orphan_watch *, int, int);

static void
orphan_log_changes(struct sup *sup)
{
	struct sup_orphans	*o = &sup->orphans;
	const struct sup_orphan	*e;
	size_t			 i;

	for (i = 0; i < o->n; i++) {
		e = &o->list[i];
		if (!e->alive && conf_resource_find(sup->conf,
		    e->resource) != NULL)
			log_info("orphan %s: resource \"%s\" is in the "
			    "configuration again; its worker process looks "
			    "after it", e->id, e->resource);
		else if (!e->alive)
			log_info("orphan %s of resource \"%s\" is gone (no "
			    "longer pending or running)", e->id, e->resource);
		else if (e->fresh)
			log_warnx("orphan: instance %s (%s) belongs to "
			    "resource \"%s\", which is not in the "
			    "configuration; watching it: it is terminated "
			    "once idle for %lld s (max_idle_time), never "
			    "while busy", e->id,
			    e->type, e->resource, (long long)
			    (sup->conf->max_idle_time / 1000));
	}
	orphan_sweep(o);
}

static void
orphan_unregister_cb(const struct cml_error *err, void *arg)
{
	(void)err;
	(void)arg;
}

static void
orphan_terminate_cb(const struct ec2_error *err,
    const struct ec2_term_result *res, size_t n, void *arg)
{
	struct orphan_watch	*ow = arg;
	struct sup_orphans	*o = &ow->sup->orphans;
	struct sup_orphan	*e;
	size_t			 i;

	(void)res;
	(void)n;
	for (i = 0; i < ow->nterm; i++) {
		if ((e = orphan_find(o, ow->term[i])) == NULL)
			continue;
		if (err != NULL && err->cls != EC2_OK) {
			e->terminating = 0;	/* tried again next round */
			e->term_sent = 0;
			continue;
		}
		o->terminated++;
		if (*e->worker != '\0')
			cml_workers_unregister(ow->cml, e->worker,
			    orphan_unregister_cb, NULL);
	}
	if (err != NULL && err->cls != EC2_OK)
		log_warnx("orphans: TerminateInstances failed: %s %s: %s",
		    ec2_err_class_name(err->cls), err->code, err->message);
	orphan_round_end(ow, 1, 1);
}

/* Terminates what orphan_update() marked, saying why. */
static int
orphan_terminate(struct orphan_watch *ow, int64_t now)
{
	struct sup_orphans	*o = &ow->sup->orphans;
	const struct sup_orphan	*e;
	size_t			 i;

	ow->term = xcalloc(o->n + 1, sizeof(*ow->term));
	for (i = 0; i < o->n; i++) {
		e = &o->list[i];
		if (!e->terminating || !e->alive ||
		    !orphan_live_state(e->state) || e->term_sent)
			continue;
		o->list[i].term_sent = 1;
		log_info("orphan: terminating instance %s of removed resource "
		    "\"%s\": idle for %lld s (max_idle_time %lld s), no task "
		    "on worker %s", e->id, e->resource,
		    (long long)((now - e->idle_since_ms) / 1000),
		    (long long)(ow->sup->conf->max_idle_time / 1000),
		    *e->worker != '\0' ? e->worker : "(none registered)");
		ow->term[ow->nterm++] = e->id;
	}
	if (ow->nterm == 0)
		return 0;
	if (ec2_terminate_instances(ow->ec2, (const char *const *)ow->term,
	    ow->nterm, orphan_terminate_cb, ow) == -1) {
		log_warnx("orphans: TerminateInstances could not be sent");
		for (i = 0; i < o->n; i++)	/* decided again next round */
			if (o->list[i].term_sent)
				o->list[i].terminating =
				    o->list[i].term_sent = 0;
		return 0;
	}
	return 1;
}

static void
orphan_workers_cb(const struct cml_error *err, const struct cml_worker *ws,
    size_t n, void *arg)
{
	struct orphan_watch	*ow = arg;
	struct sup		*sup = ow->sup;
	int			 ok = err == NULL || err->cls == CML_OK;
	int64_t			 now = now_ms();

	if (!ok) {
		snprintf(sup->orphans.last_error,
		    sizeof(sup->orphans.last_error), "workers: %s: %.180s",
		    cml_err_class_name(err->cls), err->message);
		ws = NULL;
		n = 0;
	}
	orphan_update(&sup->orphans, ow->seen, ow->nseen, ws, n, ok,
	    sup->conf->workers_prefix, sup->conf->max_idle_time, now);
	orphan_log_changes(sup);
	if (ok && orphan_terminate(ow, now))
		return;
	orphan_round_end(ow, 1, ok);
}

static void
orphan_instances_cb(const struct ec2_error *err, const struct ec2_instance *in,
    size_t n, void *arg)
{
	struct orphan_watch	*ow = arg;
	struct sup		*sup = ow->sup;
	struct cml_error	 cerr;
	int			 last_seen;
	char			 pattern[128];

	if (err != NULL && err->cls != EC2_OK) {
		snprintf(sup->orphans.last_error,
		    sizeof(sup->orphans.last_error), "instances: %s %.40s: "
		    "%.160s", ec2_err_class_name(err->cls), err->code,
		    err->message);
		orphan_round_end(ow, 0, 0);
		return;
	}
	ow->nseen = orphan_pick(sup->conf, in, n, &ow->seen);
	if (ow->nseen == 0) {
		orphan_update(&sup->orphans, NULL, 0, NULL, 0, 1,
		    sup->conf->workers_prefix, sup->conf->max_idle_time,
		    now_ms());
		orphan_log_changes(sup);
		orphan_round_end(ow, 1, 1);
		return;
	}
	snprintf(pattern, sizeof(pattern), "%s:*", sup->conf->workers_prefix);
	last_seen = (int)(sup->conf->worker_last_seen / 1000);
	if (cml_workers_get_all(ow->cml, pattern, QS_MAX(last_seen, 1),
	    orphan_workers_cb, ow) == -1) {
		memset(&cerr, 0, sizeof(cerr));
		cerr.cls = CML_ERR_TRANSIENT;
		snprintf(cerr.message, sizeof(cerr.message), "cannot start "
		    "the call");
		orphan_workers_cb(&cerr, NULL, 0, ow);
	}
}

/*
 * The round is over.  What EC2 showed (counted) holds for the cap if no
 * resource was removed since the round started.
 */
static void
orphan_round_end(struct orphan_watch *ow, int counted, int ok)
{
	struct sup	*sup = ow->sup;

	if (counted && ow->gen == sup->orphans.gen) {
		sup->orphans.known = 1;
		sup->orphans.carried = 0;
	}
	if (ok) {
		if (sup->orphans.failing)
			log_info("orphans: reading them works again");
		sup->orphans.failing = 0;
		sup->orphans.last_error[0] = '\0';
		sup->orphans.last_read_ms = now_ms();
	} else if (!sup->orphans.failing) {
		/* once per outage: the worker processes say the rest */
		log_warnx("orphans: cannot read them (%s); none is terminated "
		    "until it can", sup->orphans.last_error);
		sup->orphans.failing = 1;
	}
	orphan_seen_clear(ow->seen, ow->nseen);
	ow->seen = NULL;
	ow->nseen = 0;
	free(ow->term);
	ow->term = NULL;
	ow->nterm = 0;
	ow->busy = 0;
	if (ow->again) {
		ow->again = 0;
		timer_add_ms(ow->ev_soon, 0);
	}
	sup_global_counts_changed(sup);
}

/* A resource was removed: read the orphans now, or after this round. */
void
orphan_read_soon(struct sup *sup)
{
	struct orphan_watch	*ow = sup->orphans.watch;

	if (ow == NULL || ow->ev_soon == NULL)
		return;
	if (ow->busy)
		ow->again = 1;
	else
		timer_add_ms(ow->ev_soon, 0);
}

static void
orphan_round(struct orphan_watch *ow)
{
	static const char *const states[] = { "pending", "running" };
	struct sup		*sup = ow->sup;
	const char		*name = sup->conf->name;
	struct ec2_filter	 f[2] = {
		{ "tag:qscale:autoscaler", &name, 1 },
		{ "instance-state-name", states, QS_ARRAYLEN(states) },
	};

	if (sup->shutting_down)
		return;
	if (ow->busy) {
		ow->again = 1;
		return;
	}
	ow->busy = 1;
	ow->gen = sup->orphans.gen;
	if (ec2_describe_instances(ow->ec2, f, QS_ARRAYLEN(f),
	    orphan_instances_cb, ow) == -1) {
		snprintf(sup->orphans.last_error,
		    sizeof(sup->orphans.last_error), "instances: cannot "
		    "start the call");
		ow->busy = 0;
	}
}

/*
 * Every polling_interval while there are orphans (idle precision) or
 * their count is not known; otherwise every ORPHAN_QUIET_ROUNDS of them,
 * since new orphans come from a start, a reload or a removal, each of
 * which reads at once.
 */
static void
orphan_tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct orphan_watch	*ow = arg;
	struct sup_orphans	*o = &ow->sup->orphans;

	(void)fd;
	(void)ev;
	if (o->n == 0 && o->known && !o->failing && now_ms() -
	    o->last_read_ms < ORPHAN_QUIET_ROUNDS * ow->interval_ms - 500)
		return;
	orphan_round(ow);
}

static void
orphan_soon_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	orphan_round(arg);
}

/*
 * Starts watching, the first round in a second (after the worker
 * processes' first look); again after a reload.
 */
void
orphan_start(struct sup *sup)
{
	struct orphan_watch	*ow;
	char			 err[256];
	struct timeval		 tv;
	int64_t			 ms = QS_MAX(sup->conf->polling_interval, 1000);

	orphan_stop(sup);
	ow = xcalloc(1, sizeof(*ow));
	ow->sup = sup;
	if ((ow->http = http_client_new(sup->base)) == NULL ||
	    (ow->ec2 = ec2_client_new(sup->base, ow->http, sup->conf, err,
	    sizeof(err))) == NULL ||
	    (ow->cml = cml_client_new(sup->base, ow->http,
	    sup->conf->clearml.api_server, sup->conf->clearml.access_key,
	    sup->conf->clearml.secret_key)) == NULL) {
		snprintf(sup->orphans.last_error,
		    sizeof(sup->orphans.last_error), "cannot watch orphans: "
		    "%.200s", ow->http == NULL ? "curl" : ow->ec2 == NULL ?
		    err : "ClearML client");
		log_warnx("%s", sup->orphans.last_error);
	} else
		cml_client_set_retry(ow->cml, 0, 0,
		    sup->conf->clearml.request_timeout);
	sup->orphans.watch = ow;
	if (ow->ec2 == NULL || ow->cml == NULL)
		return;
	ow->interval_ms = ms;
	ow->ev_tick = event_new(sup->base, -1, EV_PERSIST, orphan_tick_cb, ow);
	ow->ev_soon = evtimer_new(sup->base, orphan_soon_cb, ow);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(ow->ev_tick, &tv);
	timer_add_ms(ow->ev_soon, QS_MIN(ms, ORPHAN_FIRST_MS));
}

/* Stops watching; calls in flight are dropped. */
void
orphan_stop(struct sup *sup)
{
	struct orphan_watch	*ow = sup->orphans.watch;
	size_t			 i;

	if (ow == NULL)
		return;
	/* a termination dropped here is decided again by the next round */
	for (i = 0; i < sup->orphans.n; i++)
		sup->orphans.list[i].terminating =
		    sup->orphans.list[i].term_sent = 0;
	if (ow->ev_tick != NULL)
		event_free(ow->ev_tick);
	if (ow->ev_soon != NULL)
		event_free(ow->ev_soon);
	cml_client_free(ow->cml);
	ec2_client_free(ow->ec2);
	http_client_free(ow->http);
	orphan_seen_clear(ow->seen, ow->nseen);
	free(ow->term);
	free(ow);
	sup->orphans.watch = NULL;
}

cJSON *
orphan_status_json(struct sup *sup)
{
	const struct sup_orphans *o = &sup->orphans;
	const struct sup_orphan	*e;
	cJSON			*j = cJSON_CreateObject(), *arr, *x;
	size_t			 i;

	cJSON_AddBoolToObject(j, "known", o->known);
	cJSON_AddNumberToObject(j, "live", o->live + o->carried);
	cJSON_AddNumberToObject(j, "terminated", (double)o->terminated);
	cJSON_AddNumberToObject(j, "last_read", (double)o->last_read_ms);
	cJSON_AddStringToObject(j, "last_error", o->last_error);
	cJSON_AddNumberToObject(j, "max_idle_time",
	    (double)(sup->conf->max_idle_time / 1000));
	arr = cJSON_AddArrayToObject(j, "instances");
	for (i = 0; i < o->n; i++) {
		e = &o->list[i];
		x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "id", e->id);
		cJSON_AddStringToObject(x, "resource", e->resource);
		cJSON_AddStringToObject(x, "instance_type", e->type);
		cJSON_AddStringToObject(x, "state", e->state);
		cJSON_AddStringToObject(x, "worker", e->worker);
		cJSON_AddStringToObject(x, "task", e->task);
		cJSON_AddNumberToObject(x, "launched", (double)e->launch_ms);
		cJSON_AddNumberToObject(x, "seen", (double)e->seen_ms);
		cJSON_AddNumberToObject(x, "idle_since",
		    (double)e->idle_since_ms);
		cJSON_AddBoolToObject(x, "terminating", e->terminating);
		cJSON_AddItemToArray(arr, x);
	}
	return j;
}

/* ---- qscaled --plan ----------------------------------------------------- */

struct orphan_dry {
	const struct qscale_conf *conf;
	struct event_base	*base;
	struct cml_client	*cml;
	struct orphan_seen	*seen;
	size_t			 nseen;
	int			 failed;
};

static void
orphan_dry_workers_cb(const struct cml_error *err,
    const struct cml_worker *ws, size_t n, void *arg)
{
	struct orphan_dry	*d = arg;
	struct sup_orphans	 o;
	const struct sup_orphan	*e;
	int			 ok = err == NULL || err->cls == CML_OK;
	size_t			 i;

	if (!ok) {
		printf("  FAILED: workers: %s: %s\n",
		    cml_err_class_name(err->cls), err->message);
		d->failed = 1;
	}
	memset(&o, 0, sizeof(o));
	orphan_update(&o, d->seen, d->nseen, ok ? ws : NULL, ok ? n : 0, ok,
	    d->conf->workers_prefix, d->conf->max_idle_time, 0);
	for (i = 0; i < o.n; i++) {
		e = &o.list[i];
		printf("  %s %s of resource \"%s\" (%s): ", e->id, e->type,
		    e->resource, e->state);
		if (!ok)
			printf("left alone: its worker could not be read\n");
		else if (*e->task != '\0')
			printf("busy with task %s on %s: kept while busy\n",
			    e->task, e->worker);
		else
			printf("idle%s: would be terminated once idle for "
			    "%lld s (max_idle_time, counted from the first "
			    "poll)\n", *e->worker == '\0' ?
			    " (no worker registered)" : "",
			    (long long)(d->conf->max_idle_time / 1000));
	}
	orphan_list_clear(&o);
	event_base_loopexit(d->base, NULL);
}

static void
orphan_dry_instances_cb(const struct ec2_error *err,
    const struct ec2_instance *in, size_t n, void *arg)
{
	struct orphan_dry	*d = arg;
	char			 pattern[128];

	if (err != NULL && err->cls != EC2_OK) {
		printf("  FAILED: instances: %s %s: %s\n",
		    ec2_err_class_name(err->cls), err->code, err->message);
		d->failed = 1;
		event_base_loopexit(d->base, NULL);
		return;
	}
	d->nseen = orphan_pick(d->conf, in, n, &d->seen);
	if (d->nseen == 0) {
		printf("  none\n");
		event_base_loopexit(d->base, NULL);
		return;
	}
	snprintf(pattern, sizeof(pattern), "%s:*", d->conf->workers_prefix);
	if (cml_workers_get_all(d->cml, pattern, QS_MAX((int)
	    (d->conf->worker_last_seen / 1000), 1), orphan_dry_workers_cb,
	    d) == -1) {
		printf("  FAILED: workers: cannot start the call\n");
		d->failed = 1;
		event_base_loopexit(d->base, NULL);
	}
}

/*
 * What a freshly started qscaled would do with the orphans: read them
 * once, change nothing.  Returns 1 when they could not be read.
 */
int
orphan_dry_run(const struct qscale_conf *conf)
{
	static const char *const states[] = { "pending", "running" };
	const char		*name = conf->name;
	struct ec2_filter	 f[2] = {
		{ "tag:qscale:autoscaler", &name, 1 },
		{ "instance-state-name", states, QS_ARRAYLEN(states) },
	};
	struct orphan_dry	 d;
	struct http_client	*http;
	struct ec2_client	*ec2 = NULL;
	char			 err[256];

	memset(&d, 0, sizeof(d));
	d.conf = conf;
	printf("orphans (instances of \"%s\" whose resource is not in the "
	    "configuration):\n", conf->name);
	if ((d.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	if ((http = http_client_new(d.base)) == NULL ||
	    (ec2 = ec2_client_new(d.base, http, conf, err,
	    sizeof(err))) == NULL ||
	    (d.cml = cml_client_new(d.base, http, conf->clearml.api_server,
	    conf->clearml.access_key, conf->clearml.secret_key)) == NULL ||
	    ec2_describe_instances(ec2, f, QS_ARRAYLEN(f),
	    orphan_dry_instances_cb, &d) == -1) {
		printf("  FAILED: cannot read them\n");
		d.failed = 1;
	} else
		event_base_dispatch(d.base);
	orphan_seen_clear(d.seen, d.nseen);
	cml_client_free(d.cml);
	ec2_client_free(ec2);
	http_client_free(http);
	event_base_free(d.base);
	return d.failed;
}
