/*
 * global.c: what crosses resources.  The spot blackout (a spot capacity
 * failure anywhere stops spot launches everywhere for a while), the
 * global cap on instances (worker processes ask before launching and are
 * granted what fits), and warnings about one task seen on two workers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "proto.h"
#include "supervisor.h"

struct dup_seen {
	char		*key;		/* task id + workers */
	int		 alive;		/* seen in the current scan */
};

static struct dup_seen	*dups;
static size_t		 ndups;

static cJSON *
blackout_json(struct sup *sup)
{
	cJSON	*o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "active", sup->blackout.active);
	cJSON_AddNumberToObject(o, "until", (double)sup->blackout.until_ms);
	cJSON_AddStringToObject(o, "resource", sup->blackout.origin);
	cJSON_AddStringToObject(o, "reason", sup->blackout.reason);
	return o;
}

static void
blackout_broadcast(struct sup *sup)
{
	struct sup_child	*c;
	cJSON			*o = blackout_json(sup);

	TAILQ_FOREACH(c, &sup->children, entry)
		if (c->state == CHILD_RUNNING)
			sup_child_send(c, MSG_BLACKOUT, o);
	cJSON_Delete(o);
}

/* A freshly started worker process learns the blackout in force. */
void
sup_global_child_started(struct sup_child *c)
{
	cJSON	*o;

	if (!c->sup->blackout.active)
		return;
	o = blackout_json(c->sup);
	sup_child_send(c, MSG_BLACKOUT, o);
	cJSON_Delete(o);
}

static void
blackout_start(struct sup_child *c, const char *code)
{
	struct sup		*sup = c->sup;
	const struct conf_resource *r;
	int64_t			 until;

	if ((r = conf_resource_find(sup->conf, c->name)) == NULL ||
	    r->spot_blackout_period <= 0)
		return;
	if (strcmp(sup->conf->spot_blackout_scope, "global") != 0)
		return;
	until = now_ms() + r->spot_blackout_period;
	if (sup->blackout.active && sup->blackout.until_ms >= until)
		return;
	if (!sup->blackout.active)
		log_warnx("spot blackout: %s failed to get spot capacity (%s); "
		    "spot launches of every resource become on-demand for "
		    "%lld s", c->name, code,
		    (long long)(r->spot_blackout_period / 1000));
	sup->blackout.active = 1;
	sup->blackout.until_ms = until;
	snprintf(sup->blackout.origin, sizeof(sup->blackout.origin), "%s",
	    c->name);
	snprintf(sup->blackout.reason, sizeof(sup->blackout.reason), "%s",
	    code);
	blackout_broadcast(sup);
}

static void
global_event(struct sup_child *c, struct proto_msg *m)
{
	const char	*ev = proto_get_str(m->body, "event");
	const char	*code;

	if (ev == NULL) {
		sup_child_kill(c, "event message without an event name");
		return;
	}
	metrics_event(c, m->body);
	if (strcmp(ev, "spot_failure") == 0) {
		code = proto_get_str(m->body, "code");
		blackout_start(c, code != NULL ? code : "unknown");
	}
}

/* Instances alive or granted, across every resource. */
static int64_t
global_in_use(struct sup *sup)
{
	struct sup_child	*c;
	int64_t			 n = 0, live;
	cJSON			*counts;

	TAILQ_FOREACH(c, &sup->children, entry) {
		n += c->granted;
		if (c->snapshot == NULL)
			continue;
		counts = cJSON_GetObjectItemCaseSensitive(c->snapshot,
		    "counts");
		if (proto_get_int(counts, "live", 0, 1000000, &live) == 0)
			n += live;
	}
	return n;
}

static void
global_launch_request(struct sup_child *c, struct proto_msg *m)
{
	struct sup	*sup = c->sup;
	int64_t		 id, want, avail, grant;
	cJSON		*o;

	if (proto_get_int(m->body, "id", 0, INT64_C(1) << 50, &id) == -1 ||
	    proto_get_int(m->body, "want", 0, 100000, &want) == -1) {
		sup_child_kill(c, "malformed launch request");
		return;
	}
	grant = want;
	if (sup->conf->max_instances_total > 0) {
		avail = sup->conf->max_instances_total - global_in_use(sup);
		grant = QS_MAX(0, QS_MIN(want, avail));
		if (grant < want)
			sup_log(c->name, LOG_LVL_INFO,
	    "global cap of %d instances: %lld of %lld "
			    "launches granted",
			    sup->conf->max_instances_total, (long long)grant,
			    (long long)want);
	}
	c->granted += (int)grant;
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "id", (double)id);
	cJSON_AddNumberToObject(o, "granted", (double)grant);
	sup_child_send(c, MSG_LAUNCH_GRANT, o);
	cJSON_Delete(o);
}

void
sup_global_message(struct sup_child *c, struct proto_msg *m)
{
	if (m->hdr.type == MSG_EVENT)
		global_event(c, m);
	else if (m->hdr.type == MSG_LAUNCH_REQ)
		global_launch_request(c, m);
}

static int
dup_mark(const char *key)
{
	size_t	 i;

	for (i = 0; i < ndups; i++)
		if (strcmp(dups[i].key, key) == 0) {
			dups[i].alive = 1;
			return 0;
		}
	dups = xreallocarray(dups, ndups + 1, sizeof(*dups));
	dups[ndups].key = xstrdup(key);
	dups[ndups].alive = 1;
	ndups++;
	return 1;
}

static void
dup_sweep(void)
{
	size_t	 i, j = 0;

	for (i = 0; i < ndups; i++) {
		if (dups[i].alive) {
			dups[i].alive = 0;
			dups[j++] = dups[i];
		} else
			free(dups[i].key);
	}
	ndups = j;
}

/*
 * One task held by two workers is a sign of trouble (a task started twice,
 * a zombie agent): warn once per occurrence, naming the task and both.
 */
static void
global_duplicates(struct sup *sup)
{
	struct sup_child	*c;
	cJSON			*all = cJSON_CreateObject(), *w, *prev;
	const char		*task, *wid;
	char			*key;

	TAILQ_FOREACH(c, &sup->children, entry) {
		if (c->snapshot == NULL)
			continue;
		cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(
		    c->snapshot, "workers")) {
			task = proto_get_str(w, "task");
			wid = proto_get_str(w, "id");
			if (task == NULL || wid == NULL || *task == '\0')
				continue;
			prev = cJSON_GetObjectItemCaseSensitive(all, task);
			if (prev == NULL) {
				cJSON_AddStringToObject(all, task, wid);
				continue;
			}
			xasprintf(&key, "%s %s %s", task, prev->valuestring,
			    wid);
			if (dup_mark(key)) {
				metrics_duplicate_task(sup);
				log_warnx("duplicate task: task %s is reported "
				    "by worker %s and by worker %s", task,
				    prev->valuestring, wid);
			}
			free(key);
		}
	}
	cJSON_Delete(all);
	dup_sweep();
}

/* Once a second: expire the blackout, look for duplicate tasks. */
void
sup_global_tick(struct sup *sup)
{
	if (sup->blackout.active && now_ms() >= sup->blackout.until_ms) {
		sup->blackout.active = 0;
		log_info("spot blackout over: spot launches allowed again");
		blackout_broadcast(sup);
	}
	if (sup->conf->warn_duplicate_tasks)
		global_duplicates(sup);
}

cJSON *
sup_global_status(struct sup *sup)
{
	struct sup_child	*c;
	cJSON			*o = cJSON_CreateObject();
	int			 restarts = 0;

	cJSON_AddItemToObject(o, "blackout", blackout_json(sup));
	cJSON_AddNumberToObject(o, "max_instances_total",
	    sup->conf->max_instances_total);
	cJSON_AddNumberToObject(o, "instances_in_use",
	    (double)global_in_use(sup));
	TAILQ_FOREACH(c, &sup->children, entry)
		restarts += c->restarts;
	cJSON_AddNumberToObject(o, "restarts", restarts);
	return o;
}
