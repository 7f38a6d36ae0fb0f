/*
 * global.c: what crosses resources.  The spot blackout (a spot capacity
 * failure anywhere stops spot launches everywhere for a while), the
 * global cap on instances (worker processes ask before launching and are
 * granted what fits), and warnings about one task seen on two workers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common.h"
#include "proto.h"
#include "supervisor.h"

struct dup_seen {
	char		*key;		/* task id + workers */
	int		 alive;		/* seen in the current scan */
};

static struct dup_seen	*dups;
static size_t		 ndups;

static int
blackout_global(const struct sup *sup)
{
	return !str_eq(sup->conf->spot_blackout_scope, "resource");
}

static cJSON *
blackout_json(const struct sup *sup, const struct sup_blackout *b)
{
	cJSON	*o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "active", b->active);
	cJSON_AddNumberToObject(o, "until", (double)b->until_ms);
	cJSON_AddStringToObject(o, "scope", sup->conf->spot_blackout_scope);
	cJSON_AddStringToObject(o, "resource", b->origin);
	cJSON_AddStringToObject(o, "reason", b->reason);
	return o;
}

/* The blackout that holds for c's resource: the global one or its own. */
const struct sup_blackout *
sup_global_blackout_of(const struct sup_child *c)
{
	return blackout_global(c->sup) ? &c->sup->blackout : &c->blackout;
}

cJSON *
sup_global_blackout_json(const struct sup_child *c)
{
	return blackout_json(c->sup, sup_global_blackout_of(c));
}

static void
blackout_send(struct sup_child *c)
{
	cJSON	*o = sup_global_blackout_json(c);

	if (c->state == CHILD_RUNNING)
		sup_child_send(c, MSG_BLACKOUT, o);
	cJSON_Delete(o);
}

static void
blackout_broadcast(struct sup *sup)
{
	struct sup_child	*c;

	TAILQ_FOREACH(c, &sup->children, entry)
		blackout_send(c);
}

/* Ends the blackouts whose time is up, and tells who they held for. */
static void
blackout_expire(struct sup *sup)
{
	struct sup_child	*c;
	int64_t			 now = now_ms();

	if (sup->blackout.active && now >= sup->blackout.until_ms) {
		sup->blackout.active = 0;
		log_info("spot blackout over: spot launches allowed again");
		blackout_broadcast(sup);
	}
	TAILQ_FOREACH(c, &sup->children, entry) {
		if (!c->blackout.active || now < c->blackout.until_ms)
			continue;
		c->blackout.active = 0;
		log_info("spot blackout of %s over: spot launches allowed "
		    "again", c->name);
		if (!blackout_global(sup))
			blackout_send(c);
	}
}

static void
blackout_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	blackout_expire(arg);
}

/* A timer for the end, so that it is on time, not up to a tick late. */
static void
blackout_arm(struct sup *sup, int64_t until)
{
	if (sup->base == NULL)
		return;
	if (sup->ev_blackout == NULL &&
	    (sup->ev_blackout = evtimer_new(sup->base, blackout_timer_cb,
	    sup)) == NULL)
		return;
	evtimer_del(sup->ev_blackout);
	timer_add_ms(sup->ev_blackout, QS_MAX(until - now_ms(), 0) + 1);
}

/* A freshly started worker process learns the blackout in force. */
void
sup_global_child_started(struct sup_child *c)
{
	if (sup_global_blackout_of(c)->active)
		blackout_send(c);
}

/*
 * A spot capacity failure: for spot_blackout_period from now, launches
 * that would be spot are on-demand (but the attempt that failed, which
 * retries spot until its spot_rollback_timeout), in every resource or,
 * with spot_blackout_scope "resource", in the failing one.
 */
static void
blackout_start(struct sup_child *c, const char *code)
{
	struct sup		*sup = c->sup;
	struct sup_blackout	*b;
	const struct conf_resource *r;
	int64_t			 until;
	char			 t[40];
	int			 global = blackout_global(sup);

	if ((r = conf_resource_find(sup->conf, c->name)) == NULL ||
	    r->spot_blackout_period <= 0)
		return;
	b = global ? &sup->blackout : &c->blackout;
	until = now_ms() + r->spot_blackout_period;
	if (b->active && b->until_ms >= until)
		return;
	fmt_time_ms(until, t, sizeof(t));
	if (!b->active)
		log_warnx("spot blackout until %s: %s failed to get spot "
		    "capacity (%s); spot launches of %s become on-demand for "
		    "%lld s", t, c->name, code, global ? "every resource" :
		    "this resource", (long long)(r->spot_blackout_period /
		    1000));
	else
		log_info("spot blackout extended until %s: %s failed again "
		    "(%s)", t, c->name, code);
	b->active = 1;
	b->until_ms = until;
	snprintf(b->origin, sizeof(b->origin), "%s", c->name);
	snprintf(b->reason, sizeof(b->reason), "%s", code);
	if (global)
		blackout_broadcast(sup);
	else
		blackout_send(c);
	blackout_arm(sup, until);
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
 * The same pair in either order is the same occurrence: ClearML lists
 * workers in no particular order, and a list in another order must not
 * warn again.
 */
static void
dup_found(struct sup *sup, const char *task, const char *w1, const char *w2)
{
	const char	*a = w1, *b = w2;
	char		*key;

	if (strcmp(a, b) > 0) {
		a = w2;
		b = w1;
	}
	xasprintf(&key, "%s %s %s", task, a, b);
	if (dup_mark(key)) {
		metrics_duplicate_task(sup);
		log_warnx("duplicate task: task %s is reported by worker %s "
		    "and by worker %s", task, a, b);
	}
	free(key);
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
			dup_found(sup, task, prev->valuestring, wid);
		}
	}
	cJSON_Delete(all);
	dup_sweep();
}

/* Once a second: expire the blackout, look for duplicate tasks. */
void
sup_global_tick(struct sup *sup)
{
	blackout_expire(sup);
	if (sup->conf->warn_duplicate_tasks)
		global_duplicates(sup);
}

cJSON *
sup_global_status(struct sup *sup)
{
	struct sup_child	*c;
	cJSON			*o = cJSON_CreateObject();
	int			 restarts = 0;

	cJSON_AddItemToObject(o, "blackout", blackout_json(sup,
	    &sup->blackout));
	cJSON_AddNumberToObject(o, "max_instances_total",
	    sup->conf->max_instances_total);
	cJSON_AddNumberToObject(o, "instances_in_use",
	    (double)global_in_use(sup));
	TAILQ_FOREACH(c, &sup->children, entry)
		restarts += c->restarts;
	cJSON_AddNumberToObject(o, "restarts", restarts);
	return o;
}
