/*
 * report.c: the autoscaler as a task in the user's ClearML server
 * (clearml.report = true), as ClearML's own autoscaler appears there.
 *
 * In the supervisor's loop, never blocking it: log in with the
 * autoscaler's credentials, find or create the project, find the task by
 * name in it (one task per autoscaler, reused across restarts) or create
 * it, and mark it started.  Then, every reporting interval, one
 * events.add_batch with the scalars of that interval (queue length, idle
 * and busy workers, instances, booting, per resource; instances in use of
 * the global cap) and every log line since the last batch.  The backlog
 * is bounded: while the server is away the oldest events go first, and a
 * note in the console says how many.  Errors are logged once per change;
 * a failed setup is retried with backoff, a failed batch is sent again.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "clearml.h"
#include "http.h"
#include "supervisor.h"

#define REPORT_BACKOFF_MIN_MS	2000
#define REPORT_BACKOFF_MAX_MS	60000
#define REPORT_FIRST_CHECK_MS	1000
#define REPORT_TIMEOUT_MS	15000	/* one call, at most */
#define REPORT_STOP_MS		3000	/* the final batch and stop */
#define REPORT_TASK_TYPE	"application"

enum report_state {
	RS_SETUP,		/* a setup call is under way */
	RS_WAIT,		/* the retry timer starts setup again */
	RS_READY,
	RS_STOPPING,		/* the last batch, then tasks.stopped */
	RS_DONE
};

struct report {
	struct report_env	 env;
	struct http_client	*http;
	struct cml_client	*cml;
	char			*api_server;
	char			*access_key;
	char			*secret_key;
	char			*project;
	char			*name;
	char			*comment;
	int64_t			 interval_ms;
	enum report_state	 state;
	const char		*step;		/* the setup call under way */
	char			 project_id[40];
	char			 task_id[40];
	int64_t			 iter;		/* the last one recorded */
	int64_t			 backoff_ms;
	int			 inflight;	/* a batch is under way */
	int			 first_sent;	/* since the task was ready */
	int			 ever_ready;
	int64_t			 ready_mono;
	struct event		*ev_tick;	/* every interval */
	struct event		*ev_retry;	/* setup, resend, first batch */
	struct report_backlog	 bl;
	struct report_sent	 sent;		/* what is in flight */
	const char		*stop_reason;	/* for tasks.stopped */
	struct event		*ev_retire;	/* frees a retired reporter */
	LIST_ENTRY(report)	 retired;	/* while it is retiring */
	void			*sub;		/* logsink subscription */
	struct report_props	*props;		/* log_level user property */
	struct report_logs	*logs;		/* the log files, uploaded */
	char			 err_key[200];	/* the error last logged */
};

/*
 * Reporters a reload replaced (another server or task, or reporting
 * turned off) mark their task stopped on their own, then free
 * themselves; report_finish() waits for them too.
 */
static LIST_HEAD(, report) retired = LIST_HEAD_INITIALIZER(retired);

static void	setup_start(struct report *);
static void	flush(struct report *);

/* The backlog: pure, unit-tested */

void
report_backlog_init(struct report_backlog *bl, size_t max_scalars,
    size_t max_logs, size_t max_log_bytes)
{
	memset(bl, 0, sizeof(*bl));
	TAILQ_INIT(&bl->scalars);
	TAILQ_INIT(&bl->logs);
	bl->max_scalars = max_scalars;
	bl->max_logs = max_logs;
	bl->max_log_bytes = max_log_bytes;
}

static void
ev_free(struct report_ev *ev)
{
	free(ev->variant);
	free(ev->msg);
	free(ev);
}

static void
drop_scalar(struct report_backlog *bl)
{
	struct report_ev	*ev = TAILQ_FIRST(&bl->scalars);

	TAILQ_REMOVE(&bl->scalars, ev, entry);
	bl->nscalars--;
	ev_free(ev);
}

static void
drop_log(struct report_backlog *bl)
{
	struct report_ev	*ev = TAILQ_FIRST(&bl->logs);

	TAILQ_REMOVE(&bl->logs, ev, entry);
	bl->nlogs--;
	bl->log_bytes -= strlen(ev->msg);
	ev_free(ev);
}

void
report_backlog_clear(struct report_backlog *bl)
{
	while (!TAILQ_EMPTY(&bl->scalars))
		drop_scalar(bl);
	while (!TAILQ_EMPTY(&bl->logs))
		drop_log(bl);
	bl->dropped_scalars = bl->dropped_logs = 0;
}

static uint64_t
renumber(struct report_evs *evs, uint64_t seq)
{
	struct report_ev	*ev;

	TAILQ_FOREACH(ev, evs, entry)
		ev->seq = ++seq;
	return seq;
}

/*
 * Puts what from holds (older) before what to holds (a reporter started
 * again); nothing of either may be in flight.
 */
void
report_backlog_move(struct report_backlog *to, struct report_backlog *from)
{
	TAILQ_CONCAT(&from->scalars, &to->scalars, entry);
	TAILQ_CONCAT(&to->scalars, &from->scalars, entry);
	TAILQ_CONCAT(&from->logs, &to->logs, entry);
	TAILQ_CONCAT(&to->logs, &from->logs, entry);
	to->seq = renumber(&to->logs, renumber(&to->scalars, 0));
	from->seq = 0;
	to->nscalars += from->nscalars;
	to->nlogs += from->nlogs;
	to->log_bytes += from->log_bytes;
	to->dropped_scalars += from->dropped_scalars;
	to->dropped_logs += from->dropped_logs;
	from->nscalars = from->nlogs = from->log_bytes = 0;
	from->dropped_scalars = from->dropped_logs = 0;
	while (to->nscalars > to->max_scalars) {
		drop_scalar(to);
		to->dropped_scalars++;
	}
	while (to->nlogs > 0 && (to->nlogs > to->max_logs ||
	    to->log_bytes > to->max_log_bytes)) {
		drop_log(to);
		to->dropped_logs++;
	}
}

/*
 * One line of the log sink, "TIME LEVEL WHO: TEXT", masked again (a
 * secret registered after the line was written is hidden too).  The
 * oldest lines go when the backlog is full.
 */
void
report_backlog_line(struct report_backlog *bl, const char *line)
{
	struct report_ev	*ev;
	const char		*sp, *rest = line;
	char			 ts[40], lvl[16];
	size_t			 n;

	int			 level;

	ev = xcalloc(1, sizeof(*ev));
	ev->ts = now_ms();
	ev->level = LOG_LVL_INFO;
	if ((sp = strchr(line, ' ')) != NULL &&
	    (n = (size_t)(sp - line)) < sizeof(ts)) {
		memcpy(ts, line, n);
		ts[n] = '\0';
		if (parse_iso8601(ts, &ev->ts) == -1)
			ev->ts = now_ms();
		else
			rest = sp + 1;
	}
	if (rest != line && (n = strcspn(rest, " ")) < sizeof(lvl)) {
		memcpy(lvl, rest, n);
		lvl[n] = '\0';
		if ((level = log_level_parse(lvl)) >= 0)
			ev->level = level;
	}
	ev->msg = mask_dup(rest);
	ev->seq = ++bl->seq;
	TAILQ_INSERT_TAIL(&bl->logs, ev, entry);
	bl->nlogs++;
	bl->log_bytes += strlen(ev->msg);
	while (bl->nlogs > 0 && (bl->nlogs > bl->max_logs ||
	    bl->log_bytes > bl->max_log_bytes)) {
		drop_log(bl);
		bl->dropped_logs++;
	}
}

static void
add_scalar(struct report_backlog *bl, const char *metric,
    const char *variant, const cJSON *value, int64_t iter, int64_t ts)
{
	struct report_ev	*ev;

	if (!cJSON_IsNumber(value))
		return;
	ev = xcalloc(1, sizeof(*ev));
	ev->ts = ts;
	ev->iter = iter;
	ev->metric = metric;
	ev->variant = xstrdup(variant);
	ev->value = value->valuedouble;
	ev->seq = ++bl->seq;
	TAILQ_INSERT_TAIL(&bl->scalars, ev, entry);
	bl->nscalars++;
	while (bl->nscalars > bl->max_scalars) {
		drop_scalar(bl);
		bl->dropped_scalars++;
	}
}

static const cJSON *
get(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* The scalars of one resource; none while it has no snapshot. */
static size_t
resource_scalars(struct report_backlog *bl, const cJSON *res, int64_t iter,
    int64_t ts)
{
	const cJSON	*name = get(res, "name");
	const cJSON	*counts = get(get(res, "worker"), "counts");
	char		*allowed;
	size_t		 before = bl->seq;

	if (!cJSON_IsString(name) || !cJSON_IsObject(counts))
		return 0;
	add_scalar(bl, "queue length", name->valuestring,
	    get(counts, "pending"), iter, ts);
	add_scalar(bl, "idle workers", name->valuestring,
	    get(counts, "idle"), iter, ts);
	add_scalar(bl, "busy workers", name->valuestring,
	    get(counts, "busy"), iter, ts);
	add_scalar(bl, "booting", name->valuestring, get(counts, "booting"),
	    iter, ts);
	add_scalar(bl, "instances", name->valuestring, get(counts, "live"),
	    iter, ts);
	xasprintf(&allowed, "%s allowed", name->valuestring);
	add_scalar(bl, "instances", allowed, get(res, "max_instances"), iter,
	    ts);
	free(allowed);
	return (size_t)(bl->seq - before);
}

/*
 * The scalars of one interval from the supervisor's status (what
 * sup_status_json gives), all with iteration iter; returns how many.
 */
size_t
report_backlog_status(struct report_backlog *bl, const cJSON *status,
    int64_t iter, int64_t ts)
{
	const cJSON	*res, *global = get(status, "global"), *cap;
	size_t		 n = 0;
	uint64_t	 before;

	cJSON_ArrayForEach(res, get(status, "resources"))
		n += resource_scalars(bl, res, iter, ts);
	if (n == 0)
		return 0;	/* no resource has polled yet */
	before = bl->seq;
	add_scalar(bl, "instances total", "in use",
	    get(global, "instances_in_use"), iter, ts);
	cap = get(global, "max_instances_total");
	if (cJSON_IsNumber(cap) && cap->valuedouble > 0)
		add_scalar(bl, "instances total", "cap", cap, iter, ts);
	return n + (size_t)(bl->seq - before);
}

static const char *
clearml_level(int level)
{
	switch (level) {
	case LOG_LVL_ERROR:
		return "error";
	case LOG_LVL_WARN:
		return "warning";
	case LOG_LVL_DEBUG:
		return "debug";
	}
	return "info";
}

static cJSON *
scalar_json(const struct report_ev *ev, const char *task)
{
	cJSON	*o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "type", "training_stats_scalar");
	cJSON_AddStringToObject(o, "task", task);
	cJSON_AddNumberToObject(o, "timestamp", (double)ev->ts);
	cJSON_AddNumberToObject(o, "iter", (double)ev->iter);
	cJSON_AddStringToObject(o, "metric", ev->metric);
	cJSON_AddStringToObject(o, "variant", ev->variant);
	cJSON_AddNumberToObject(o, "value", ev->value);
	return o;
}

static cJSON *
log_json(int64_t ts, int level, const char *msg, const char *task)
{
	cJSON	*o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "type", "log");
	cJSON_AddStringToObject(o, "task", task);
	cJSON_AddNumberToObject(o, "timestamp", (double)ts);
	cJSON_AddStringToObject(o, "level", clearml_level(level));
	cJSON_AddStringToObject(o, "msg", msg);
	return o;
}

/* A batch body under construction: JSON lines, bounded. */
struct batch {
	char		*buf;
	size_t		 len;
	size_t		 cap;
	size_t		 n;
	size_t		 max_events;
	size_t		 max_bytes;
};

/* Appends one event unless the batch is full (the first always fits). */
static int
batch_add(struct batch *b, cJSON *o)
{
	char	*s = cJSON_PrintUnformatted(o);
	size_t	 n;

	cJSON_Delete(o);
	if (s == NULL)
		fatalx("%s: cannot print an event", __func__);
	n = strlen(s);
	if (b->n > 0 && (b->n >= b->max_events ||
	    b->len + n + 1 > b->max_bytes)) {
		free(s);
		return -1;
	}
	if (b->len + n + 2 > b->cap)
		b->buf = xrealloc_grow(b->buf, &b->cap, b->len + n + 2);
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len++] = '\n';
	b->buf[b->len] = '\0';
	b->n++;
	free(s);
	return 0;
}

static void
note_text(char *buf, size_t len, uint64_t logs, uint64_t scalars)
{
	char	 l[64] = "", s[64] = "";

	if (logs > 0)
		snprintf(l, sizeof(l), "%llu log line%s",
		    (unsigned long long)logs, logs == 1 ? "" : "s");
	if (scalars > 0)
		snprintf(s, sizeof(s), "%llu scalar value%s",
		    (unsigned long long)scalars, scalars == 1 ? "" : "s");
	snprintf(buf, len, "WARN qscaled: %s%s%s of this autoscaler were "
	    "dropped while the ClearML server could not be reached", l,
	    logs > 0 && scalars > 0 ? " and " : "", s);
}

/*
 * The body of the next events.add_batch for task: a note when events
 * were dropped, then scalars and log lines, oldest first, at most
 * max_events and about max_bytes.  NULL when there is nothing to send.
 * sent says what the batch holds, for report_backlog_sent().
 */
char *
report_batch(const struct report_backlog *bl, const char *task, int64_t now,
    size_t max_events, size_t max_bytes, struct report_sent *sent)
{
	struct batch		 b;
	struct report_ev	*ev;
	char			 note[256];
	int64_t			 ts = now;

	memset(sent, 0, sizeof(*sent));
	memset(&b, 0, sizeof(b));
	b.max_events = QS_MAX(max_events, 1);
	b.max_bytes = max_bytes;
	if (bl->dropped_logs > 0 || bl->dropped_scalars > 0) {
		/* in its place in time: just before what is left */
		if ((ev = TAILQ_FIRST(&bl->logs)) != NULL)
			ts = ev->ts;
		note_text(note, sizeof(note), bl->dropped_logs,
		    bl->dropped_scalars);
		batch_add(&b, log_json(ts, LOG_LVL_WARN, note, task));
		sent->dropped_logs = bl->dropped_logs;
		sent->dropped_scalars = bl->dropped_scalars;
	}
	TAILQ_FOREACH(ev, &bl->scalars, entry) {
		if (batch_add(&b, scalar_json(ev, task)) == -1)
			goto full;
		sent->scalar_seq = ev->seq;
	}
	TAILQ_FOREACH(ev, &bl->logs, entry) {
		if (batch_add(&b, log_json(ev->ts, ev->level, ev->msg,
		    task)) == -1)
			goto full;
		sent->log_seq = ev->seq;
	}
	sent->nevents = b.n;
	return b.buf;
full:
	sent->nevents = b.n;
	sent->full = 1;
	return b.buf;
}

/* The batch described by sent arrived: forget what it carried. */
void
report_backlog_sent(struct report_backlog *bl, const struct report_sent *sent)
{
	struct report_ev	*ev;

	while ((ev = TAILQ_FIRST(&bl->scalars)) != NULL &&
	    ev->seq <= sent->scalar_seq)
		drop_scalar(bl);
	while ((ev = TAILQ_FIRST(&bl->logs)) != NULL &&
	    ev->seq <= sent->log_seq)
		drop_log(bl);
	bl->dropped_logs -= QS_MIN(bl->dropped_logs, sent->dropped_logs);
	bl->dropped_scalars -= QS_MIN(bl->dropped_scalars,
	    sent->dropped_scalars);
}

/* Errors, once per change */

static void
report_error(struct report *r, const char *what, const struct cml_error *err)
{
	char	 key[sizeof(r->err_key)];

	snprintf(key, sizeof(key), "%s %d %d %d %d", what, (int)err->cls,
	    err->http_status, err->code, err->subcode);
	if (strcmp(key, r->err_key) == 0)
		return;
	snprintf(r->err_key, sizeof(r->err_key), "%s", key);
	log_warnx("ClearML reporting: %s failed (%s): %s; trying again in "
	    "the background", what, cml_err_class_name(err->cls),
	    err->message);
}

static void
report_ok(struct report *r)
{
	if (r->err_key[0] == '\0')
		return;
	r->err_key[0] = '\0';
	log_info("ClearML reporting works again (task %s)", r->task_id);
}

static int64_t
next_backoff(struct report *r)
{
	int64_t	 ms = r->backoff_ms;

	r->backoff_ms = QS_MIN(r->backoff_ms * 2, REPORT_BACKOFF_MAX_MS);
	return ms;
}

/* Setup: login, project, task, started */

static void
setup_failed(struct report *r, const struct cml_error *err)
{
	report_error(r, r->step, err);
	r->state = RS_WAIT;
	timer_add_ms(r->ev_retry, next_backoff(r));
}

/* A well-formed answer we cannot use: an error of our own. */
static void
setup_bad(struct report *r, const char *why)
{
	struct cml_error	 err;

	memset(&err, 0, sizeof(err));
	err.http_status = 200;
	err.code = 200;
	cml_error_set(&err, CML_ERR_SERVER, r->step, "%s", why);
	setup_failed(r, &err);
}

static void
setup_call(struct report *r, const char *endpoint, cJSON *params,
    cml_json_fn fn)
{
	const char	*list = NULL;
	int		 rc;

	r->state = RS_SETUP;
	r->step = endpoint;
	/* a list the server cuts at 500 items is read page by page */
	if (strcmp(endpoint, "tasks.get_all") == 0)
		list = "tasks";
	else if (strcmp(endpoint, "projects.get_all") == 0)
		list = "projects";
	rc = list != NULL ? cml_call_pages(r->cml, endpoint, params, list, 0,
	    fn, r) : cml_call(r->cml, endpoint, params, fn, r);
	if (rc == -1)
		fatalx("%s: cannot call %s", __func__, endpoint);
	cJSON_Delete(params);
}

static cJSON *
str_array(const char *const *v, size_t n)
{
	cJSON	*a = cJSON_CreateArray();
	size_t	 i;

	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	return a;
}

static char *
exact_regex(const char *name)
{
	char	*esc = cml_regex_escape(name), *re;

	xasprintf(&re, "^%s$", esc);
	free(esc);
	return re;
}

static void
ready(struct report *r)
{
	r->state = RS_READY;
	r->backoff_ms = REPORT_BACKOFF_MIN_MS;
	r->first_sent = 0;
	r->ready_mono = mono_ms();
	if (!r->ever_ready)
		log_info("reporting to ClearML task %s (\"%s\" in project "
		    "\"%s\"), every %lld s", r->task_id, r->name, r->project,
		    (long long)(r->interval_ms / 1000));
	else
		report_ok(r);
	r->ever_ready = 1;
	r->err_key[0] = '\0';	/* a failed tasks.edit, say, is past */
	timer_add_ms(r->ev_retry, 0);
}

static void
started_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct report	*r = arg;

	(void)data;
	if (err != NULL) {
		setup_failed(r, err);
		return;
	}
	ready(r);
}

static void
task_started(struct report *r)
{
	cJSON	*p = cJSON_CreateObject();

	cJSON_AddStringToObject(p, "task", r->task_id);
	cJSON_AddBoolToObject(p, "force", 1);
	cJSON_AddStringToObject(p, "status_reason", "qscaled started");
	cJSON_AddStringToObject(p, "status_message", r->comment);
	setup_call(r, "tasks.started", p, started_cb);
}

static void
edited_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct report	*r = arg;

	(void)data;
	if (err != NULL)	/* only the comment: carry on */
		report_error(r, "tasks.edit", err);
	task_started(r);
}

static void
task_edit(struct report *r)
{
	cJSON	*p = cJSON_CreateObject();

	cJSON_AddStringToObject(p, "task", r->task_id);
	cJSON_AddBoolToObject(p, "force", 1);
	cJSON_AddStringToObject(p, "comment", r->comment);
	setup_call(r, "tasks.edit", p, edited_cb);
}

static int
set_id(char *dst, size_t len, const cJSON *id)
{
	if (!cJSON_IsString(id) || id->valuestring[0] == '\0' ||
	    strlen(id->valuestring) >= len)
		return -1;
	snprintf(dst, len, "%s", id->valuestring);
	return 0;
}

static void
created_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct report	*r = arg;

	if (err != NULL) {
		setup_failed(r, err);
		return;
	}
	if (set_id(r->task_id, sizeof(r->task_id), get(data, "id")) == -1) {
		setup_bad(r, "data.id: expected a task id");
		return;
	}
	log_info("created ClearML task %s (\"%s\" in project \"%s\")",
	    r->task_id, r->name, r->project);
	task_started(r);
}

static void
task_create(struct report *r)
{
	cJSON	*p = cJSON_CreateObject();

	cJSON_AddStringToObject(p, "name", r->name);
	cJSON_AddStringToObject(p, "type", REPORT_TASK_TYPE);
	cJSON_AddStringToObject(p, "project", r->project_id);
	cJSON_AddStringToObject(p, "comment", r->comment);
	cJSON_AddItemToObject(p, "tags", str_array((const char *[]){
	    "qscale", "autoscaler" }, 2));
	setup_call(r, "tasks.create", p, created_cb);
}

/* A task this reporter can write to: ours by name, not locked. */
static int
task_usable(const cJSON *t, const char *name)
{
	const cJSON	*n = get(t, "name"), *st = get(t, "status"), *tag;

	if (!cJSON_IsString(n) || strcmp(n->valuestring, name) != 0)
		return 0;
	/* published tasks take no events; an archived one was retired */
	if (cJSON_IsString(st) && (strcmp(st->valuestring, "published") == 0 ||
	    strcmp(st->valuestring, "publishing") == 0))
		return 0;
	cJSON_ArrayForEach(tag, get(t, "system_tags"))
		if (cJSON_IsString(tag) &&
		    strcmp(tag->valuestring, "archived") == 0)
			return 0;
	return 1;
}

static void
tasks_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct report	*r = arg;
	const cJSON	*t, *it;

	if (err != NULL) {
		setup_failed(r, err);
		return;
	}
	if (!cJSON_IsArray(get(data, "tasks"))) {
		setup_bad(r, "data.tasks: expected an array");
		return;
	}
	cJSON_ArrayForEach(t, get(data, "tasks")) {
		if (!task_usable(t, r->name) ||
		    set_id(r->task_id, sizeof(r->task_id), get(t, "id")) == -1)
			continue;
		/* the iterations go on from where the task stands */
		it = get(t, "last_iteration");
		if (cJSON_IsNumber(it) && it->valuedouble > (double)r->iter)
			r->iter = (int64_t)it->valuedouble;
		log_debug("ClearML reporting: reusing task %s at iteration "
		    "%lld", r->task_id, (long long)r->iter);
		task_edit(r);
		return;
	}
	task_create(r);
}

static void
task_find(struct report *r)
{
	static const char *const fields[] = { "id", "name", "status",
	    "last_iteration", "system_tags" };
	cJSON	*p = cJSON_CreateObject();
	char	*re = exact_regex(r->name);

	r->task_id[0] = '\0';
	cJSON_AddItemToObject(p, "project", str_array((const char *[]){
	    r->project_id }, 1));
	cJSON_AddStringToObject(p, "name", re);
	cJSON_AddItemToObject(p, "only_fields", str_array(fields,
	    QS_ARRAYLEN(fields)));
	cJSON_AddItemToObject(p, "order_by", str_array((const char *[]){
	    "-last_update" }, 1));
	cJSON_AddBoolToObject(p, "search_hidden", 1);
	free(re);
	setup_call(r, "tasks.get_all", p, tasks_cb);
}

static void
project_created_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct report	*r = arg;

	if (err != NULL) {
		setup_failed(r, err);
		return;
	}
	if (set_id(r->project_id, sizeof(r->project_id),
	    get(data, "id")) == -1) {
		setup_bad(r, "data.id: expected a project id");
		return;
	}
	log_info("created ClearML project \"%s\"", r->project);
	task_find(r);
}

static void
projects_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct report	*r = arg;
	const cJSON	*p, *n;
	cJSON		*params;

	if (err != NULL) {
		setup_failed(r, err);
		return;
	}
	if (!cJSON_IsArray(get(data, "projects"))) {
		setup_bad(r, "data.projects: expected an array");
		return;
	}
	/* the name is a regex to the server: compare exactly here */
	cJSON_ArrayForEach(p, get(data, "projects")) {
		n = get(p, "name");
		if (cJSON_IsString(n) && strcmp(n->valuestring,
		    r->project) == 0 && set_id(r->project_id,
		    sizeof(r->project_id), get(p, "id")) == 0) {
			task_find(r);
			return;
		}
	}
	params = cJSON_CreateObject();
	cJSON_AddStringToObject(params, "name", r->project);
	cJSON_AddStringToObject(params, "description",
	    "qscale autoscalers: their scalars and console logs");
	setup_call(r, "projects.create", params, project_created_cb);
}

static void
login_cb(const struct cml_error *err, void *arg)
{
	struct report	*r = arg;
	static const char *const fields[] = { "id", "name" };
	cJSON		*p;
	char		*re;

	if (err != NULL) {
		setup_failed(r, err);
		return;
	}
	p = cJSON_CreateObject();
	re = exact_regex(r->project);
	cJSON_AddStringToObject(p, "name", re);
	cJSON_AddItemToObject(p, "only_fields", str_array(fields,
	    QS_ARRAYLEN(fields)));
	free(re);
	setup_call(r, "projects.get_all", p, projects_cb);
}

static void
setup_start(struct report *r)
{
	r->state = RS_SETUP;
	r->step = "auth.login";
	if (cml_login(r->cml, login_cb, r) == -1)
		fatalx("%s: cannot log in", __func__);
}

/* Batches */

/* The task is stopped, or will not be: a retired reporter goes now. */
static void
stop_done(struct report *r)
{
	r->state = RS_DONE;
	if (r->ev_retire != NULL)
		event_active(r->ev_retire, EV_TIMEOUT, 1);
}

static void
stopped_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct report	*r = arg;

	(void)data;
	if (err != NULL)
		report_error(r, "tasks.stopped", err);
	else if (r->ev_retire != NULL)
		log_info("ClearML reporting: task %s marked stopped",
		    r->task_id);
	stop_done(r);
}

static void	task_stop(struct report *);

static void
logs_done_cb(void *arg)
{
	task_stop(arg);
}

/*
 * The last batch is out (or could not be): at a graceful stop the log
 * files go first, as a stopped task takes no artifacts; then the task is
 * marked stopped.  A retired reporter's task only gets marked.
 */
static void
stop_after_logs(struct report *r)
{
	if (r->ev_retire != NULL)
		task_stop(r);
	else
		report_logs_round(r->logs, r->task_id, r->project, r->name, 1,
		    logs_done_cb, r);
}

static void
task_stop(struct report *r)
{
	cJSON	*p = cJSON_CreateObject();

	cJSON_AddStringToObject(p, "task", r->task_id);
	cJSON_AddBoolToObject(p, "force", 1);	/* whatever the UI made of it */
	cJSON_AddStringToObject(p, "status_reason", r->stop_reason != NULL ?
	    r->stop_reason : "qscaled stopped");
	cJSON_AddStringToObject(p, "status_message", r->comment);
	if (cml_call(r->cml, "tasks.stopped", p, stopped_cb, r) == -1)
		stop_done(r);
	cJSON_Delete(p);
}

/* errors_info of a partly refused batch, once per change. */
static void
batch_refused(struct report *r, const cJSON *data)
{
	struct cml_error	 err;
	char			*info;

	info = cJSON_PrintUnformatted(get(data, "errors_info"));
	memset(&err, 0, sizeof(err));
	err.http_status = 200;
	err.code = 200;
	cml_error_set(&err, CML_ERR_INVALID, "events.add_batch",
	    "%g events refused: %s", get(data, "errors")->valuedouble,
	    info != NULL ? info : "?");
	free(info);
	report_error(r, "events.add_batch", &err);
}

/* A batch the server will never take: drop it rather than stall. */
static int
batch_hopeless(const struct cml_error *err)
{
	if (err->cls != CML_ERR_INVALID)
		return 0;
	/* 400/131 "events not added: Invalid task id": the task is gone */
	return !(err->subcode == 131 && strstr(err->message, "task") != NULL);
}

static void
batch_failed(struct report *r, const struct cml_error *err)
{
	int64_t	 ms;

	report_error(r, "events.add_batch", err);
	if (r->state == RS_STOPPING) {
		/* the task is still to be stopped, its last lines or not */
		stop_after_logs(r);
		return;
	}
	if (batch_hopeless(err)) {
		report_backlog_sent(&r->bl, &r->sent);
		timer_add_ms(r->ev_retry, 0);
		return;
	}
	if (err->cls == CML_ERR_INVALID || err->cls == CML_ERR_NOT_FOUND) {
		/* the task or its project was deleted: set up again */
		r->state = RS_WAIT;
		timer_add_ms(r->ev_retry, next_backoff(r));
		return;
	}
	ms = next_backoff(r);	/* not inside QS_MIN: it has effects */
	timer_add_ms(r->ev_retry, QS_MIN(ms, r->interval_ms));
}

static void
batch_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct report	*r = arg;
	const cJSON	*nerr;

	r->inflight = 0;
	if (err != NULL) {
		batch_failed(r, err);
		return;
	}
	report_backlog_sent(&r->bl, &r->sent);
	nerr = get(data, "errors");
	if (cJSON_IsNumber(nerr) && nerr->valuedouble > 0)
		batch_refused(r, data);
	else
		report_ok(r);
	r->backoff_ms = REPORT_BACKOFF_MIN_MS;
	/*
	 * The rest of a backlog goes at once; lines that came while this
	 * batch was under way (its own debug line, say) wait for the next
	 * interval, or the calls would feed themselves.
	 */
	if (r->sent.full)
		flush(r);
	else if (r->state == RS_STOPPING)
		stop_after_logs(r);
}

/* Sends the next batch, one at a time. */
static void
flush(struct report *r)
{
	char	*body;

	if (r->inflight || (r->state != RS_READY && r->state != RS_STOPPING))
		return;
	body = report_batch(&r->bl, r->task_id, now_ms(), REPORT_BATCH_EVENTS,
	    REPORT_BATCH_BYTES, &r->sent);
	if (body == NULL) {
		if (r->state == RS_STOPPING)
			stop_after_logs(r);
		return;
	}
	if (cml_call_lines(r->cml, "events.add_batch", body, batch_cb,
	    r) == -1)
		fatalx("%s: cannot send a batch", __func__);
	r->inflight = 1;
	free(body);
}

/* Every running worker process has reported a poll. */
static int
status_complete(const cJSON *status)
{
	const cJSON	*res, *st;
	int		 n = 0;

	cJSON_ArrayForEach(res, get(status, "resources")) {
		st = get(res, "state");
		if (!cJSON_IsString(st) ||
		    strcmp(st->valuestring, "running") != 0)
			continue;
		if (get(res, "worker") == NULL)
			return 0;
		n++;
	}
	return n > 0;
}

/* One interval: its scalars, then the batch. */
static void
record(struct report *r, cJSON *status)
{
	if (report_backlog_status(&r->bl, status, r->iter + 1, now_ms()) > 0)
		r->iter++;
	flush(r);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct report	*r = arg;
	cJSON		*status;

	(void)fd;
	(void)what;
	if (r->state != RS_READY || !r->first_sent)
		return;
	status = r->env.status(r->env.arg);
	record(r, status);
	cJSON_Delete(status);
	report_props_tick(r->props, r->task_id);
	report_logs_round(r->logs, r->task_id, r->project, r->name, 0, NULL,
	    NULL);
}

/*
 * The first batch after setup goes as soon as every worker process has
 * polled (or after one interval): what the autoscaler sees is in the UI
 * at once, not an interval later.
 */
static void
first_batch(struct report *r)
{
	cJSON	*status = r->env.status(r->env.arg);

	if (!status_complete(status) &&
	    mono_ms() - r->ready_mono < r->interval_ms) {
		cJSON_Delete(status);
		timer_add_ms(r->ev_retry, REPORT_FIRST_CHECK_MS);
		return;
	}
	r->first_sent = 1;
	evtimer_del(r->ev_tick);
	timer_add_ms(r->ev_tick, r->interval_ms);
	record(r, status);
	cJSON_Delete(status);
	report_props_tick(r->props, r->task_id);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct report	*r = arg;

	(void)fd;
	(void)what;
	if (r->state == RS_WAIT)
		setup_start(r);
	else if (r->state == RS_READY && !r->first_sent)
		first_batch(r);
	else
		flush(r);
}

static void
line_cb(const char *line, void *arg)
{
	struct report	*r = arg;

	report_backlog_line(&r->bl, line);
}

static void
tail_cb(const char *line, void *arg)
{
	report_backlog_line(arg, line);
}

/* Life */

static int64_t
report_interval(const struct qscale_conf *conf)
{
	return QS_MAX(conf->polling_interval, REPORT_MIN_INTERVAL_MS);
}

static char *
make_comment(const struct report_env *env)
{
	char	 host[256], *s;

	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "?");
	host[sizeof(host) - 1] = '\0';
	xasprintf(&s, "qscale %s autoscaler on %s, configuration %s",
	    QSCALE_VERSION, host, env->conf_path != NULL ? env->conf_path :
	    "?");
	return s;
}

static struct report *
report_create(const struct report_env *env, const struct qscale_conf *conf)
{
	const struct conf_clearml	*cc = &conf->clearml;
	struct report			*r;

	if (cc->api_server == NULL || cc->access_key == NULL ||
	    cc->secret_key == NULL || cc->report_project == NULL ||
	    cc->report_name == NULL) {
		log_warnx("clearml.report: needs clearml.api_server, "
		    "access_key, secret_key, report_project and report_name; "
		    "not reporting");
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->env = *env;
	r->env.conf_path = env->conf_path != NULL ?
	    xstrdup(env->conf_path) : NULL;
	r->api_server = xstrdup(cc->api_server);
	r->access_key = xstrdup(cc->access_key);
	r->secret_key = xstrdup(cc->secret_key);
	r->project = xstrdup(cc->report_project);
	r->name = xstrdup(cc->report_name);
	r->comment = make_comment(env);
	r->interval_ms = report_interval(conf);
	r->backoff_ms = REPORT_BACKOFF_MIN_MS;
	r->http = http_client_new(env->base);
	r->cml = cml_client_new(env->base, r->http, r->api_server,
	    r->access_key, r->secret_key);
	if (r->http == NULL || r->cml == NULL)
		fatalx("%s: cannot make a ClearML client", __func__);
	/* a failed call is sent again with the next batch anyway */
	cml_client_set_retry(r->cml, 0, 0, QS_MIN(cc->request_timeout > 0 ?
	    cc->request_timeout : REPORT_TIMEOUT_MS, REPORT_TIMEOUT_MS));
	r->ev_tick = event_new(env->base, -1, EV_PERSIST, tick_cb, r);
	r->ev_retry = evtimer_new(env->base, retry_cb, r);
	report_backlog_init(&r->bl, REPORT_MAX_SCALARS, REPORT_MAX_LOGS,
	    REPORT_MAX_LOG_BYTES);
	r->sub = logsink_subscribe("*", line_cb, r);
	r->props = report_props_new(&r->env, r->cml);
	r->logs = report_logs_new(r->http, r->cml, conf);
	return r;
}

/*
 * Starts reporting when the configuration asks for it (NULL when not),
 * with the log lines written so far.
 */
struct report *
report_start(const struct report_env *env, const struct qscale_conf *conf)
{
	struct report	*r;

	if (!conf->clearml.report || (r = report_create(env, conf)) == NULL)
		return NULL;
	logsink_tail("*", REPORT_MAX_LOGS, tail_cb, &r->bl);
	setup_start(r);
	return r;
}

/* Drops everything at once, calls under way included. */
void
report_free(struct report *r)
{
	if (r == NULL)
		return;
	logsink_unsubscribe(r->sub);
	cml_client_free(r->cml);
	report_props_free(r->props);
	http_client_free(r->http);
	r->http = NULL;
	report_logs_free(r->logs);
	event_free(r->ev_tick);
	event_free(r->ev_retry);
	if (r->ev_retire != NULL) {
		event_free(r->ev_retire);
		LIST_REMOVE(r, retired);
	}
	report_backlog_clear(&r->bl);
	free(r->api_server);
	freezero_str(r->access_key);
	freezero_str(r->secret_key);
	free(r->project);
	free(r->name);
	free(r->comment);
	free((char *)r->env.conf_path);
	free(r);
}

/* The same task on the same server, whatever the credentials. */
static int
same_task(const struct report *r, const struct conf_clearml *cc)
{
	return str_eq(r->api_server, cc->api_server) &&
	    str_eq(r->project, cc->report_project) &&
	    str_eq(r->name, cc->report_name);
}

static int
same_target(const struct report *r, const struct conf_clearml *cc)
{
	return same_task(r, cc) && str_eq(r->access_key, cc->access_key) &&
	    str_eq(r->secret_key, cc->secret_key);
}

static void
retire_cb(evutil_socket_t fd, short what, void *arg)
{
	struct report	*r = arg;

	(void)fd;
	(void)what;
	if (r->state != RS_DONE)
		log_warnx("ClearML reporting: task %s not marked stopped "
		    "within %ds; left as it is", r->task_id,
		    REPORT_STOP_MS / 1000);
	report_free(r);
}

/*
 * A reporter that a reload replaces: it takes no more lines, marks its
 * task stopped (after the batch under way, if one is) and frees itself,
 * within REPORT_STOP_MS, without holding up the loop.  One that has no
 * task ready yet goes at once.
 */
static void
report_retire(struct report *r, const char *why)
{
	if (r->state != RS_READY) {
		report_free(r);
		return;
	}
	logsink_unsubscribe(r->sub);
	r->sub = NULL;
	evtimer_del(r->ev_tick);
	evtimer_del(r->ev_retry);
	r->state = RS_STOPPING;
	r->stop_reason = why;
	if ((r->ev_retire = evtimer_new(r->env.base, retire_cb, r)) == NULL)
		fatalx("%s: evtimer_new", __func__);
	LIST_INSERT_HEAD(&retired, r, retired);
	timer_add_ms(r->ev_retire, REPORT_STOP_MS);
	log_info("ClearML reporting: marking task %s stopped (%s)",
	    r->task_id, why);
	flush(r);
}

/*
 * A reload: the same reporter when the server, credentials, project and
 * task name are the same (the interval follows polling_interval), else a
 * new one that keeps the backlog and the iterations of the old.
 */
struct report *
report_reload(struct report *old, const struct report_env *env,
    const struct qscale_conf *conf)
{
	struct report	*r;

	if (old == NULL)
		return report_start(env, conf);
	if (!conf->clearml.report) {
		log_info("ClearML reporting turned off");
		report_retire(old, "reporting turned off");
		return NULL;
	}
	if (same_target(old, &conf->clearml)) {
		report_logs_conf(old->logs, conf);
		if (old->interval_ms == report_interval(conf))
			return old;
		old->interval_ms = report_interval(conf);
		if (old->state == RS_READY && old->first_sent) {
			evtimer_del(old->ev_tick);
			timer_add_ms(old->ev_tick, old->interval_ms);
		}
		return old;
	}
	log_info("ClearML reporting: the server, credentials or task "
	    "changed; starting again");
	if ((r = report_create(env, conf)) == NULL) {
		report_retire(old, "reporting elsewhere");
		return NULL;
	}
	report_backlog_move(&r->bl, &old->bl);
	r->iter = old->iter;
	/* new credentials for the same task: the new reporter takes it on */
	if (same_task(old, &conf->clearml))
		report_free(old);
	else
		report_retire(old, "reporting elsewhere");
	setup_start(r);
	return r;
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/*
 * A graceful stop, after the supervisor's loop ended: the last lines,
 * then the task marked stopped, for at most REPORT_STOP_MS, while those
 * a reload retired finish theirs; then frees them all.
 */
void
report_finish(struct report *r)
{
	struct event_base	*base = NULL;
	struct event		*deadline;
	struct report		*o;
	int			 late = 0;

	if (r != NULL && r->state == RS_READY) {
		r->state = RS_STOPPING;
		evtimer_del(r->ev_tick);
		evtimer_del(r->ev_retry);
		flush(r);
	}
	if (r != NULL && r->state == RS_STOPPING)
		base = r->env.base;
	else if (!LIST_EMPTY(&retired))
		base = LIST_FIRST(&retired)->env.base;
	if (base != NULL) {
		if ((deadline = evtimer_new(base, deadline_cb, &late)) == NULL)
			fatalx("%s: evtimer_new", __func__);
		timer_add_ms(deadline, REPORT_STOP_MS);
		while (!late && ((r != NULL && r->state == RS_STOPPING) ||
		    !LIST_EMPTY(&retired)))
			event_base_loop(base, EVLOOP_ONCE);
		event_free(deadline);
	}
	while ((o = LIST_FIRST(&retired)) != NULL)
		report_free(o);
	report_free(r);
}

/* For the status: where the reports go and how they fare. */
cJSON *
report_status_json(const struct report *r)
{
	static const char *const names[] = { "setting up", "waiting",
	    "reporting", "stopping", "stopped" };
	cJSON	*o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "state", names[r->state]);
	cJSON_AddStringToObject(o, "project", r->project);
	cJSON_AddStringToObject(o, "name", r->name);
	cJSON_AddStringToObject(o, "task", r->task_id);
	cJSON_AddNumberToObject(o, "iteration", (double)r->iter);
	cJSON_AddNumberToObject(o, "backlog_scalars", (double)r->bl.nscalars);
	cJSON_AddNumberToObject(o, "backlog_lines", (double)r->bl.nlogs);
	cJSON_AddBoolToObject(o, "failing", r->err_key[0] != '\0');
	return o;
}
