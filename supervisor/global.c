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

/*
 * The global cap.  A resource's instances count as live until something
 * proves otherwise: the count its worker process last read from EC2 (a
 * state snapshot, or a launch request, which carries it), and when that
 * process exits, the same count, carried until the next process reads
 * EC2 itself.  Launches granted count until a snapshot shows them.  A
 * resource never counted since it was started (a new daemon, a new
 * resource) is unknown: requests wait up to SUP_GRANT_WAIT_MS for its
 * count, then count it at its max_instances.  Instances of resources
 * that no longer exist count as well (orphans: orphan.c).
 */
static int
global_child_live(struct sup_child *c, int *unknown)
{
	if (c->live_known != LIVE_UNKNOWN)
		return c->live + c->granted;
	/* worth waiting for only from a process that runs */
	if (unknown != NULL && c->pid != 0)
		(*unknown)++;
	return QS_MAX(c->live, c->bound) + c->granted;
}

static int64_t
global_count(struct sup *sup, int *unknown)
{
	struct sup_child	*c;
	int64_t			 n = 0;

	TAILQ_FOREACH(c, &sup->children, entry)
		n += global_child_live(c, unknown);
	/* until a reading after the last removal: the last one, and what
	 * the removed resources had */
	n += sup->orphans.carried + sup->orphans.live;
	if (!sup->orphans.known && !sup->orphans.failing &&
	    sup->orphans.watch != NULL && unknown != NULL)
		(*unknown)++;
	return n;
}

/* For the status: what is known, the unknown at what they showed. */
static int64_t
global_in_use(struct sup *sup, cJSON *uncounted)
{
	struct sup_child	*c;
	int64_t			 n;

	n = sup->orphans.carried + sup->orphans.live;
	TAILQ_FOREACH(c, &sup->children, entry) {
		n += c->live + c->granted;
		if (c->live_known == LIVE_UNKNOWN && uncounted != NULL)
			cJSON_AddItemToArray(uncounted,
			    cJSON_CreateString(c->name));
	}
	return n;
}

/* A state snapshot arrived: counts.live, read from EC2 if ec2_ok. */
void
sup_global_child_state(struct sup_child *c)
{
	cJSON	*counts;
	int64_t	 live;

	counts = cJSON_GetObjectItemCaseSensitive(c->snapshot, "counts");
	if (proto_get_int(counts, "live", 0, 1000000, &live) == -1)
		return;
	/* The snapshot counts what the grants launched. */
	c->granted = 0;
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(counts, "ec2_ok")) ||
	    c->live_known == LIVE_SEEN) {
		c->live = (int)live;
		c->live_known = LIVE_SEEN;
	} else	/* a new process that could not read EC2 yet */
		c->live = QS_MAX(c->live, (int)live);
}

/* The process exited: what it counted stays live, grants included. */
void
sup_global_child_exited(struct sup_child *c)
{
	c->live += c->granted;
	c->granted = 0;
	c->req_want = 0;
	if (c->live_known == LIVE_SEEN)
		c->live_known = LIVE_CARRIED;
}

/* A reload dropped the resource: its instances become orphans. */
void
sup_global_child_removed(struct sup_child *c)
{
	struct sup	*sup = c->sup;

	sup->orphans.carried += global_child_live(c, NULL);
	sup->orphans.known = 0;
	sup->orphans.gen++;
	c->live = c->granted = 0;
	orphan_read_soon(sup);
}

static void
global_answer(struct sup_child *c, int64_t grant)
{
	cJSON	*o = cJSON_CreateObject();

	c->granted += (int)grant;
	c->req_want = 0;
	cJSON_AddNumberToObject(o, "id", (double)c->req_id);
	cJSON_AddNumberToObject(o, "granted", (double)grant);
	sup_child_send(c, MSG_LAUNCH_GRANT, o);
	cJSON_Delete(o);
}

/* Grants what fits; 1 if it answered, 0 if it waits for counts. */
static int
global_try_grant(struct sup_child *c, int64_t now)
{
	struct sup	*sup = c->sup;
	int64_t		 avail, grant;
	int		 unknown = 0, cap = sup->conf->max_instances_total;

	if (cap <= 0) {
		global_answer(c, c->req_want);
		return 1;
	}
	avail = cap - global_count(sup, &unknown);
	if (unknown > 0 && now - c->req_mono < SUP_GRANT_WAIT_MS)
		return 0;
	grant = QS_MAX(0, QS_MIN(c->req_want, avail));
	if (grant < c->req_want)
		sup_log(c->name, LOG_LVL_INFO, "global cap of %d instances: "
		    "%lld of %d launches granted%s", cap, (long long)grant,
		    c->req_want, unknown > 0 ? " (the instances of some "
		    "resource are not known yet: counted at its "
		    "max_instances)" : "");
	global_answer(c, grant);
	return 1;
}

/* Answers the requests that wait, oldest first. */
static void
global_grant_waiting(struct sup *sup, int64_t now)
{
	struct sup_child	*c, *oldest;

	for (;;) {
		oldest = NULL;
		TAILQ_FOREACH(c, &sup->children, entry)
			if (c->req_want > 0 && (oldest == NULL ||
			    c->req_mono < oldest->req_mono))
				oldest = c;
		if (oldest == NULL || !global_try_grant(oldest, now))
			return;
	}
}

static void
global_launch_request(struct sup_child *c, struct proto_msg *m)
{
	int64_t		 id, want, live;

	if (proto_get_int(m->body, "id", 0, INT64_C(1) << 50, &id) == -1 ||
	    proto_get_int(m->body, "want", 0, 100000, &want) == -1) {
		sup_child_kill(c, "malformed launch request");
		return;
	}
	/* the count it planned with, just read from EC2 */
	if (cJSON_GetObjectItemCaseSensitive(m->body, "live") != NULL) {
		if (proto_get_int(m->body, "live", 0, 1000000, &live) == -1) {
			sup_child_kill(c, "malformed launch request");
			return;
		}
		c->live = (int)live;
		c->live_known = LIVE_SEEN;
	}
	c->req_id = id;
	c->req_want = (int)want;
	c->req_mono = mono_ms();
	if (want == 0) {
		global_answer(c, 0);
		return;
	}
	global_grant_waiting(c->sup, c->req_mono);
}

/* Counts changed (a snapshot, an exit, a reload): answer who waits. */
void
sup_global_counts_changed(struct sup *sup)
{
	global_grant_waiting(sup, mono_ms());
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
	global_grant_waiting(sup, mono_ms());
}

cJSON *
sup_global_status(struct sup *sup)
{
	struct sup_child	*c;
	cJSON			*o = cJSON_CreateObject(), *un;
	int			 restarts = 0;

	cJSON_AddItemToObject(o, "blackout", blackout_json(sup,
	    &sup->blackout));
	cJSON_AddNumberToObject(o, "max_instances_total",
	    sup->conf->max_instances_total);
	un = cJSON_CreateArray();
	cJSON_AddNumberToObject(o, "instances_in_use",
	    (double)global_in_use(sup, un));
	/* resources whose instances no process has read yet */
	cJSON_AddItemToObject(o, "not_counted", un);
	TAILQ_FOREACH(c, &sup->children, entry)
		restarts += c->restarts;
	cJSON_AddNumberToObject(o, "restarts", restarts);
	return o;
}
