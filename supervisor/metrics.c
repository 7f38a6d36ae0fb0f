/*
 * metrics.c: what the status server shows about the past.  Counters that
 * never go backwards although worker processes restart (events add to a
 * per-resource total; the cumulative counters of a process's snapshots
 * are added to a base when another process takes over), bounded time
 * series for the dashboard's plots, and the Prometheus text exposition.
 *
 * Everything here reads the supervisor's memory only; values that come
 * from a worker process are checked and bounded before they are kept.
 */
#include <sys/types.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "supervisor.h"

#define MX_LABEL_MAX	64	/* longest label value kept */
#define MX_KEYS_MAX	64	/* label sets per resource and family */
#define MX_BUCKETS	12	/* EC2_LATENCY_BOUNDS_MS and +Inf */
#define MX_FIELDS	5

enum { MX_SPOT, MX_ONDEMAND, MX_MARKETS };
enum { MXF_PENDING, MXF_IDLE, MXF_BUSY, MXF_BOOTING, MXF_LIVE };
enum { MXG_IN_USE, MXG_CAP, MXG_BLACKOUT };

static const char *const mx_markets[MX_MARKETS] = { "spot", "on-demand" };
static const double mx_bounds_ms[MX_BUCKETS - 1] = { 5, 10, 25, 50, 100,
	250, 500, 1000, 2500, 5000, 10000 };

/* The snapshot's names of a termination reason, and the metric's. */
static const char *const mx_reasons[][2] = {
	{ "idle", "idle" },
	{ "spin-up timeout", "spin_up_timeout" },
	{ "vanished agent", "vanished_agent" },
	{ "stopped", "stopped" },
	{ "interrupted", "interrupted" },
};
#define MX_REASONS	QS_ARRAYLEN(mx_reasons)

static const char *const mx_field_names[MX_FIELDS] = { "pending", "idle",
	"busy", "booting", "instances" };
static const char *const mx_global_names[] = { "in_use", "cap",
	"blackout" };

/* One API action's counters, cumulative within one process. */
struct mx_api {
	char		 api[8];		/* "ec2", "clearml" */
	char		 action[MX_LABEL_MAX];
	double		 calls;
	double		 errors;
	double		 retries;
	double		 sum_ms;
	double		 hist[MX_BUCKETS];	/* per bucket, not cumulative */
};

/* What a process counts from its start, as its snapshots say. */
struct mx_proc {
	double		 polls;
	double		 instance_seconds;
	struct mx_api	*api;
	size_t		 napi;
};

struct mx_launch {
	int		 market;
	char		 result[MX_LABEL_MAX];	/* "ok" or the error code */
	double		 n;
};

struct mx_point {
	int64_t		 t;
	int32_t		 v[MX_FIELDS];	/* -1: unknown */
};

/* A ring of points, allocated as it fills. */
struct mx_tier {
	struct mx_point	*p;
	size_t		 cap;
	size_t		 alloc;
	size_t		 n;
	size_t		 head;		/* the oldest once full */
};

/* Fine points for the last hours, and coarser ones (maxima) before. */
struct mx_series {
	struct mx_tier	 fine;
	struct mx_tier	 coarse;
	struct mx_point	 acc;
	int64_t		 acc_slot;
	int		 nacc;
};

struct mx_res {
	char		*name;
	pid_t		 pid;		/* the process whose values are cur */
	struct mx_proc	 base;		/* processes that came before */
	struct mx_proc	 cur;
	struct mx_launch *launches;
	size_t		 nlaunches;
	double		 launched[MX_MARKETS];
	double		 converted[2];	/* rollback, blackout */
	double		 terminated[MX_REASONS];
	double		 requeues;
	double		 dropped[2];	/* state snapshots, logs */
	struct mx_series series;
	int		 seen;
};

struct metrics {
	struct mx_res	**res;
	size_t		 nres;
	double		 duplicates;
	struct mx_series global;
};

/* ---- small helpers ---- */

static struct metrics *
mx_get(struct sup *sup)
{
	if (sup->metrics == NULL)
		sup->metrics = xcalloc(1, sizeof(*sup->metrics));
	return sup->metrics;
}

/* A count from a worker process: a finite number >= 0, else 0. */
static double
mx_num(const cJSON *o, const char *key)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
	    v->valuedouble < 0 || v->valuedouble > 1e15)
		return 0;
	return v->valuedouble;
}

static int32_t
mx_gauge(const cJSON *o, const char *key)
{
	return (int32_t)QS_MIN(mx_num(o, key), (double)INT32_MAX);
}

/* A label value from a worker process: a string of sane length. */
static const char *
mx_label(const cJSON *o, const char *key)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsString(v) || v->valuestring[0] == '\0' ||
	    strlen(v->valuestring) >= MX_LABEL_MAX)
		return NULL;
	return v->valuestring;
}

static int
mx_market(const char *s)
{
	if (s == NULL)
		return -1;
	if (strcmp(s, "spot") == 0)
		return MX_SPOT;
	if (strcmp(s, "on-demand") == 0)
		return MX_ONDEMAND;
	return -1;
}

static void
mx_proc_clear(struct mx_proc *p)
{
	free(p->api);
	memset(p, 0, sizeof(*p));
}

static struct mx_api *
mx_api_get(struct mx_proc *p, const char *api, const char *action)
{
	struct mx_api	*a;
	size_t		 i;

	for (i = 0; i < p->napi; i++)
		if (strcmp(p->api[i].api, api) == 0 &&
		    strcmp(p->api[i].action, action) == 0)
			return &p->api[i];
	if (p->napi >= 2 * MX_KEYS_MAX)
		return NULL;
	p->api = xreallocarray(p->api, p->napi + 1, sizeof(*p->api));
	a = &p->api[p->napi++];
	memset(a, 0, sizeof(*a));
	snprintf(a->api, sizeof(a->api), "%s", api);
	snprintf(a->action, sizeof(a->action), "%s", action);
	return a;
}

/* dst += src, action by action. */
static void
mx_proc_add(struct mx_proc *dst, const struct mx_proc *src)
{
	const struct mx_api	*s;
	struct mx_api		*d;
	size_t			 i, b;

	dst->polls += src->polls;
	dst->instance_seconds += src->instance_seconds;
	for (i = 0; i < src->napi; i++) {
		s = &src->api[i];
		if ((d = mx_api_get(dst, s->api, s->action)) == NULL)
			continue;
		d->calls += s->calls;
		d->errors += s->errors;
		d->retries += s->retries;
		d->sum_ms += s->sum_ms;
		for (b = 0; b < MX_BUCKETS; b++)
			d->hist[b] += s->hist[b];
	}
}

static struct mx_res *
mx_res_get(struct metrics *m, const char *name)
{
	struct mx_res	*r;
	size_t		 i;

	for (i = 0; i < m->nres; i++)
		if (strcmp(m->res[i]->name, name) == 0)
			return m->res[i];
	r = xcalloc(1, sizeof(*r));
	r->name = xstrdup(name);
	r->series.fine.cap = METRICS_FINE_POINTS;
	r->series.coarse.cap = METRICS_COARSE_POINTS;
	m->res = xreallocarray(m->res, m->nres + 1, sizeof(*m->res));
	m->res[m->nres++] = r;
	return r;
}

static void
mx_res_free(struct mx_res *r)
{
	mx_proc_clear(&r->base);
	mx_proc_clear(&r->cur);
	free(r->launches);
	free(r->series.fine.p);
	free(r->series.coarse.p);
	free(r->name);
	free(r);
}

void
metrics_free(struct sup *sup)
{
	struct metrics	*m = sup->metrics;
	size_t		 i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nres; i++)
		mx_res_free(m->res[i]);
	free(m->res);
	free(m->global.fine.p);
	free(m->global.coarse.p);
	free(m);
	sup->metrics = NULL;
}

/* ---- what the worker processes report ---- */

static void
mx_api_parse(struct mx_proc *p, const cJSON *arr, const char *api,
    const char *key)
{
	const cJSON	*e, *h;
	struct mx_api	*a;
	const char	*action;
	int		 b;

	cJSON_ArrayForEach(e, arr) {
		if ((action = mx_label(e, key)) == NULL ||
		    (a = mx_api_get(p, api, action)) == NULL)
			continue;
		a->calls = mx_num(e, "calls");
		a->errors = mx_num(e, "errors");
		a->retries = mx_num(e, "retries");
		a->sum_ms = mx_num(e, "latency_ms_sum");
		h = cJSON_GetObjectItemCaseSensitive(e, "latency_hist");
		memset(a->hist, 0, sizeof(a->hist));
		for (b = 0; b < MX_BUCKETS && b < cJSON_GetArraySize(h); b++) {
			const cJSON *v = cJSON_GetArrayItem(h, b);

			if (cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
			    v->valuedouble >= 0)
				a->hist[b] = v->valuedouble;
		}
	}
}

/*
 * A snapshot arrived.  Its counters count from the start of its process:
 * when another process sends one (new pid, or fewer polls than before),
 * the last values of the one before join the base.
 */
void
metrics_snapshot(struct sup_child *c)
{
	struct mx_res	*r = mx_res_get(mx_get(c->sup), c->name);
	const cJSON	*s = c->snapshot, *totals, *api;
	double		 polls = mx_num(s, "polls");

	if (r->pid != c->pid || polls < r->cur.polls) {
		mx_proc_add(&r->base, &r->cur);
		mx_proc_clear(&r->cur);
		r->pid = c->pid;
	}
	r->cur.polls = polls;
	totals = cJSON_GetObjectItemCaseSensitive(s, "totals");
	r->cur.instance_seconds = mx_num(totals, "instance_seconds");
	api = cJSON_GetObjectItemCaseSensitive(s, "api");
	mx_api_parse(&r->cur, cJSON_GetObjectItemCaseSensitive(api, "ec2"),
	    "ec2", "action");
	mx_api_parse(&r->cur, cJSON_GetObjectItemCaseSensitive(api,
	    "clearml"), "clearml", "endpoint");
}

/* The counter of one (market, result); past the bound, "other". */
static struct mx_launch *
mx_launch_slot(struct mx_res *r, int market, const char *result)
{
	struct mx_launch	*l;
	size_t			 i;

	for (i = 0; i < r->nlaunches; i++)
		if (r->launches[i].market == market &&
		    strcmp(r->launches[i].result, result) == 0)
			return &r->launches[i];
	if (r->nlaunches >= MX_KEYS_MAX && strcmp(result, "other") != 0 &&
	    strcmp(result, "ok") != 0)
		return mx_launch_slot(r, market, "other");
	r->launches = xreallocarray(r->launches, r->nlaunches + 1,
	    sizeof(*r->launches));
	l = &r->launches[r->nlaunches++];
	memset(l, 0, sizeof(*l));
	l->market = market;
	snprintf(l->result, sizeof(l->result), "%s", result);
	return l;
}

static void
mx_terminated(struct mx_res *r, const char *reason)
{
	size_t	 i;

	for (i = 0; reason != NULL && i < MX_REASONS; i++)
		if (strcmp(reason, mx_reasons[i][0]) == 0 ||
		    strcmp(reason, mx_reasons[i][1]) == 0) {
			r->terminated[i]++;
			return;
		}
	log_debug("%s: termination with unknown reason '%s' not counted",
	    r->name, reason != NULL ? reason : "");
}

/* An event of a worker process (launched, terminated, ...). */
void
metrics_event(struct sup_child *c, const cJSON *ev)
{
	struct mx_res	*r = mx_res_get(mx_get(c->sup), c->name);
	const char	*name = mx_label(ev, "event"), *code;
	int		 market = mx_market(mx_label(ev, "market"));
	const cJSON	*conv;

	if (name == NULL)
		return;
	if (strcmp(name, "launched") == 0 && market >= 0) {
		mx_launch_slot(r, market, "ok")->n++;
		r->launched[market] += QS_MIN(mx_num(ev, "count"), 1e6);
		conv = cJSON_GetObjectItemCaseSensitive(ev, "converted");
		r->converted[0] += QS_MIN(mx_num(conv, "rollback"), 1e6);
		r->converted[1] += QS_MIN(mx_num(conv, "blackout"), 1e6);
	} else if (strcmp(name, "launch_failed") == 0 && market >= 0) {
		code = mx_label(ev, "code");
		mx_launch_slot(r, market, code != NULL ? code :
		    "unknown")->n++;
	} else if (strcmp(name, "terminated") == 0)
		mx_terminated(r, mx_label(ev, "reason"));
	else if (strcmp(name, "requeued") == 0)
		r->requeues++;
	else if (strcmp(name, "messages_dropped") == 0) {
		r->dropped[0] += mx_num(ev, "snapshots");
		r->dropped[1] += mx_num(ev, "logs");
	}
}

void
metrics_duplicate_task(struct sup *sup)
{
	mx_get(sup)->duplicates++;
}

/* A spot blackout holds somewhere: the global one, or a resource's. */
static int
mx_blackout_any(struct sup *sup)
{
	struct sup_child	*c;

	TAILQ_FOREACH(c, &sup->children, entry)
		if (sup_global_blackout_of(c)->active)
			return 1;
	return sup->blackout.active;
}

/* ---- time series ---- */

static void
mx_tier_push(struct mx_tier *t, const struct mx_point *pt)
{
	if (t->n < t->cap) {
		if (t->n == t->alloc) {
			t->alloc = QS_MIN(t->cap, QS_MAX(t->alloc * 2, 16));
			t->p = xreallocarray(t->p, t->alloc, sizeof(*t->p));
		}
		t->p[t->n++] = *pt;
		return;
	}
	t->p[t->head] = *pt;
	t->head = (t->head + 1) % t->cap;
}

static const struct mx_point *
mx_tier_at(const struct mx_tier *t, size_t i)
{
	return &t->p[(t->head + i) % t->cap];
}

/* A coarse point keeps the highest value of its minute. */
static void
mx_series_add(struct mx_series *s, int64_t t, const int32_t *v)
{
	struct mx_point	 pt;
	int64_t		 slot = t / METRICS_COARSE_STEP_MS;
	int		 i;

	if (s->fine.cap == 0) {
		s->fine.cap = METRICS_FINE_POINTS;
		s->coarse.cap = METRICS_COARSE_POINTS;
	}
	pt.t = t;
	memcpy(pt.v, v, sizeof(pt.v));
	mx_tier_push(&s->fine, &pt);
	if (s->nacc > 0 && slot != s->acc_slot) {
		s->acc.t = s->acc_slot * METRICS_COARSE_STEP_MS;
		mx_tier_push(&s->coarse, &s->acc);
		s->nacc = 0;
	}
	if (s->nacc == 0) {
		s->acc = pt;
		s->acc_slot = slot;
	}
	for (i = 0; i < MX_FIELDS; i++)
		s->acc.v[i] = QS_MAX(s->acc.v[i], v[i]);
	s->nacc++;
}

static int
mx_has_child(struct sup *sup, const char *name)
{
	struct sup_child	*c;

	TAILQ_FOREACH(c, &sup->children, entry)
		if (strcmp(c->name, name) == 0)
			return 1;
	return 0;
}

/* A resource gone with a reload takes its counters and series along. */
static void
mx_prune(struct sup *sup, struct metrics *m)
{
	size_t	 i, j = 0;

	for (i = 0; i < m->nres; i++) {
		if (mx_has_child(sup, m->res[i]->name))
			m->res[j++] = m->res[i];
		else
			mx_res_free(m->res[i]);
	}
	m->nres = j;
}

static const struct conf_resource *
mx_conf(const struct sup_child *c)
{
	const struct qscale_conf *conf = c->sup->conf;

	if (c->index < conf->nresources &&
	    strcmp(conf->resources[c->index].name, c->name) == 0)
		return &conf->resources[c->index];
	return NULL;
}

/* Every METRICS_FINE_STEP_MS: one point per resource, one global. */
void
metrics_sample(struct sup *sup, int64_t now)
{
	struct metrics		*m = mx_get(sup);
	struct sup_child	*c;
	const struct conf_resource *cr;
	const cJSON		*counts;
	int32_t			 v[MX_FIELDS], g[MX_FIELDS] = { 0, 0, 0, 0, 0 };
	int			 i, sum_max = 0;

	mx_prune(sup, m);
	TAILQ_FOREACH(c, &sup->children, entry) {
		for (i = 0; i < MX_FIELDS; i++)
			v[i] = -1;
		if (c->snapshot != NULL) {
			counts = cJSON_GetObjectItemCaseSensitive(c->snapshot,
			    "counts");
			v[MXF_PENDING] = mx_gauge(counts, "pending");
			v[MXF_IDLE] = mx_gauge(counts, "idle");
			v[MXF_BUSY] = mx_gauge(counts, "busy");
			v[MXF_BOOTING] = mx_gauge(counts, "booting");
			v[MXF_LIVE] = mx_gauge(counts, "live");
			g[MXG_IN_USE] += v[MXF_LIVE];
		}
		if ((cr = mx_conf(c)) != NULL)
			sum_max += cr->max_instances;
		mx_series_add(&mx_res_get(m, c->name)->series, now, v);
	}
	g[MXG_IN_USE] += sup->orphans.live;
	g[MXG_CAP] = sup->conf->max_instances_total > 0 ?
	    sup->conf->max_instances_total : sum_max;
	g[MXG_BLACKOUT] = mx_blackout_any(sup);
	mx_series_add(&m->global, now, g);
}

static cJSON *
mx_value_json(int32_t v)
{
	return v < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

/* Coarse points older than the fine ones, then the fine ones. */
static cJSON *
mx_series_json(const struct mx_series *s, int64_t since,
    const char *const *names, int nfields)
{
	const struct mx_tier	*tiers[2] = { &s->coarse, &s->fine };
	const struct mx_point	*pt;
	cJSON			*o = cJSON_CreateObject(), *t, *f[MX_FIELDS];
	int64_t			 fine_start = INT64_MAX;
	size_t			 i, k;
	int			 j;

	if (s->fine.n > 0)
		fine_start = mx_tier_at(&s->fine, 0)->t;
	t = cJSON_AddArrayToObject(o, "t");
	for (j = 0; j < nfields; j++)
		f[j] = cJSON_AddArrayToObject(o, names[j]);
	for (k = 0; k < 2; k++)
		for (i = 0; i < tiers[k]->n; i++) {
			pt = mx_tier_at(tiers[k], i);
			if (pt->t < since || (k == 0 && pt->t >= fine_start))
				continue;
			cJSON_AddItemToArray(t, cJSON_CreateNumber(
			    (double)pt->t));
			for (j = 0; j < nfields; j++)
				cJSON_AddItemToArray(f[j],
				    mx_value_json(pt->v[j]));
		}
	return o;
}

/* The series of the last range_ms before now, for the dashboard. */
cJSON *
metrics_series_json(struct sup *sup, int64_t now, int64_t range_ms)
{
	struct metrics		*m = mx_get(sup);
	struct sup_child	*c;
	const struct conf_resource *cr;
	cJSON			*o = cJSON_CreateObject(), *arr, *e;
	int64_t			 since = now - range_ms;

	cJSON_AddNumberToObject(o, "now", (double)now);
	cJSON_AddNumberToObject(o, "range_s", (double)(range_ms / 1000));
	cJSON_AddNumberToObject(o, "fine_step_s",
	    METRICS_FINE_STEP_MS / 1000);
	cJSON_AddNumberToObject(o, "coarse_step_s",
	    METRICS_COARSE_STEP_MS / 1000);
	cJSON_AddItemToObject(o, "global", mx_series_json(&m->global, since,
	    mx_global_names, QS_ARRAYLEN(mx_global_names)));
	arr = cJSON_AddArrayToObject(o, "resources");
	TAILQ_FOREACH(c, &sup->children, entry) {
		e = mx_series_json(&mx_res_get(m, c->name)->series, since,
		    mx_field_names, MX_FIELDS);
		cJSON_AddStringToObject(e, "name", c->name);
		cr = mx_conf(c);
		cJSON_AddStringToObject(e, "queue", cr != NULL ? cr->queue :
		    "");
		cJSON_AddNumberToObject(e, "max_instances", cr != NULL ?
		    cr->max_instances : 0);
		cJSON_AddItemToArray(arr, e);
	}
	return o;
}

/* ---- Prometheus text exposition, format 0.0.4 ---- */

static void
px_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
px_escape(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void
px_value(FILE *f, double v)
{
	if (isnan(v))
		fputs("NaN", f);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", f);
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		fprintf(f, "%lld", (long long)v);
	else
		fprintf(f, "%.15g", v);
}

/*
 * One sample: labels come as name/value pairs ending with NULL; a NULL
 * value ends them early too.
 */
static void
px_sample(FILE *f, const char *name, double v, ...)
{
	const char	*k, *val;
	va_list		 ap;
	int		 n = 0;

	fputs(name, f);
	va_start(ap, v);
	while ((k = va_arg(ap, const char *)) != NULL &&
	    (val = va_arg(ap, const char *)) != NULL) {
		fprintf(f, "%s%s=\"", n++ == 0 ? "{" : ",", k);
		px_escape(f, val);
		fputc('"', f);
	}
	va_end(ap);
	fputs(n > 0 ? "} " : " ", f);
	px_value(f, v);
	fputc('\n', f);
}

static const cJSON *
px_counts(const struct sup_child *c)
{
	return cJSON_GetObjectItemCaseSensitive(c->snapshot, "counts");
}

struct px_inst {
	char		 state[24];
	int		 market;
	double		 n;
};

static void
px_instances_of(FILE *f, const struct sup_child *c)
{
	struct px_inst	 k[32] = {
		{ "pending", MX_SPOT, 0 }, { "pending", MX_ONDEMAND, 0 },
		{ "running", MX_SPOT, 0 }, { "running", MX_ONDEMAND, 0 },
	};
	size_t		 nk = 4, i;
	const cJSON	*e;
	const char	*st;
	int		 mk;

	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c->snapshot,
	    "instances")) {
		st = mx_label(e, "state");
		if (st == NULL || strlen(st) >= sizeof(k[0].state) ||
		    (mk = mx_market(mx_label(e, "market"))) < 0)
			continue;
		for (i = 0; i < nk; i++)
			if (k[i].market == mk && strcmp(k[i].state, st) == 0)
				break;
		if (i == nk) {
			if (nk == QS_ARRAYLEN(k))
				continue;
			snprintf(k[nk].state, sizeof(k[nk].state), "%s", st);
			k[nk++].market = mk;
		}
		k[i].n++;
	}
	for (i = 0; i < nk; i++)
		px_sample(f, "qscale_instances", k[i].n, "resource", c->name,
		    "state", k[i].state, "market", mx_markets[k[i].market],
		    NULL);
}

static void
px_gauges(FILE *f, struct sup *sup)
{
	struct sup_child	*c;
	const struct conf_resource *cr;

	px_family(f, "qscale_instances", "gauge", "Instances of the "
	    "resource by EC2 state and market, as its last poll saw them.");
	TAILQ_FOREACH(c, &sup->children, entry)
		if (c->snapshot != NULL)
			px_instances_of(f, c);
	px_family(f, "qscale_queue_pending", "gauge", "Tasks waiting in the "
	    "resource's ClearML queue.");
	TAILQ_FOREACH(c, &sup->children, entry)
		if (c->snapshot != NULL && (cr = mx_conf(c)) != NULL)
			px_sample(f, "qscale_queue_pending", mx_num(px_counts(c),
			    "pending"), "resource", c->name, "queue",
			    cr->queue, NULL);
	px_family(f, "qscale_queue_oldest_wait_seconds", "gauge", "How long "
	    "the oldest task in the queue has waited.");
	TAILQ_FOREACH(c, &sup->children, entry)
		if (c->snapshot != NULL && (cr = mx_conf(c)) != NULL)
			px_sample(f, "qscale_queue_oldest_wait_seconds",
			    mx_num(c->snapshot, "oldest_wait_s"), "resource",
			    c->name, "queue", cr->queue, NULL);
	px_family(f, "qscale_workers", "gauge", "ClearML workers of the "
	    "resource, idle or busy.");
	TAILQ_FOREACH(c, &sup->children, entry) {
		if (c->snapshot == NULL)
			continue;
		px_sample(f, "qscale_workers", mx_num(px_counts(c), "idle"),
		    "resource", c->name, "state", "idle", NULL);
		px_sample(f, "qscale_workers", mx_num(px_counts(c), "busy"),
		    "resource", c->name, "state", "busy", NULL);
	}
	px_family(f, "qscale_instances_booting", "gauge", "Instances "
	    "launched whose agent has not registered yet.");
	TAILQ_FOREACH(c, &sup->children, entry)
		if (c->snapshot != NULL)
			px_sample(f, "qscale_instances_booting",
			    mx_num(px_counts(c), "booting"), "resource",
			    c->name, NULL);
	px_family(f, "qscale_max_instances", "gauge", "The resource's "
	    "max_instances.");
	TAILQ_FOREACH(c, &sup->children, entry)
		if ((cr = mx_conf(c)) != NULL)
			px_sample(f, "qscale_max_instances", cr->max_instances,
			    "resource", c->name, NULL);
	px_family(f, "qscale_global_max_instances", "gauge", "The global cap "
	    "on instances across resources (max_instances_total; 0: none).");
	px_sample(f, "qscale_global_max_instances",
	    sup->conf->max_instances_total, NULL);
}

static void
px_launches(FILE *f, struct sup *sup, struct metrics *m)
{
	struct sup_child	*c;
	struct mx_res		*r;
	size_t			 i;
	int			 k;

	px_family(f, "qscale_launches_total", "counter", "RunInstances "
	    "calls by market and result (\"ok\" or the AWS error code).");
	TAILQ_FOREACH(c, &sup->children, entry) {
		r = mx_res_get(m, c->name);
		for (k = 0; k < MX_MARKETS; k++)	/* ok: always there */
			mx_launch_slot(r, k, "ok");
		for (i = 0; i < r->nlaunches; i++)
			px_sample(f, "qscale_launches_total",
			    r->launches[i].n, "resource", c->name, "market",
			    mx_markets[r->launches[i].market], "result",
			    r->launches[i].result, NULL);
	}
	px_family(f, "qscale_launched_instances_total", "counter",
	    "Instances launched, by market.");
	TAILQ_FOREACH(c, &sup->children, entry) {
		r = mx_res_get(m, c->name);
		for (k = 0; k < MX_MARKETS; k++)
			px_sample(f, "qscale_launched_instances_total",
			    r->launched[k], "resource", c->name, "market",
			    mx_markets[k], NULL);
	}
}

static void
px_events(FILE *f, struct sup *sup, struct metrics *m)
{
	struct sup_child	*c;
	struct mx_res		*r;
	size_t			 i;

	px_launches(f, sup, m);
	px_family(f, "qscale_terminations_total", "counter", "Instances "
	    "terminated by qscale or lost, by reason.");
	TAILQ_FOREACH(c, &sup->children, entry) {
		r = mx_res_get(m, c->name);
		for (i = 0; i < MX_REASONS; i++)
			px_sample(f, "qscale_terminations_total",
			    r->terminated[i], "resource", c->name, "reason",
			    mx_reasons[i][1], NULL);
	}
	px_family(f, "qscale_requeues_total", "counter", "Tasks put back in "
	    "their queue after their instance was interrupted.");
	TAILQ_FOREACH(c, &sup->children, entry)
		px_sample(f, "qscale_requeues_total",
		    mx_res_get(m, c->name)->requeues, "resource", c->name,
		    NULL);
	px_family(f, "qscale_child_messages_dropped_total", "counter",
	    "Messages a worker process dropped while the supervisor did not "
	    "read them, by kind (older state snapshots, log lines).");
	TAILQ_FOREACH(c, &sup->children, entry) {
		r = mx_res_get(m, c->name);
		px_sample(f, "qscale_child_messages_dropped_total",
		    r->dropped[0], "resource", c->name, "kind", "state", NULL);
		px_sample(f, "qscale_child_messages_dropped_total",
		    r->dropped[1], "resource", c->name, "kind", "log", NULL);
	}
}

/* The counters of every process of the resource so far. */
static void
px_totals(struct mx_res *r, struct mx_proc *tot)
{
	memset(tot, 0, sizeof(*tot));
	mx_proc_add(tot, &r->base);
	mx_proc_add(tot, &r->cur);
}

enum { PX_CALLS, PX_ERRORS, PX_RETRIES };

static double
px_api_field(const struct mx_api *a, int which)
{
	switch (which) {
	case PX_CALLS:
		return a->calls;
	case PX_ERRORS:
		return a->errors;
	default:
		return a->retries;
	}
}

static void
px_api_family(FILE *f, struct sup *sup, struct metrics *m, const char *name,
    const char *help, int which)
{
	struct sup_child	*c;
	struct mx_proc		 tot;
	size_t			 i;

	px_family(f, name, "counter", help);
	TAILQ_FOREACH(c, &sup->children, entry) {
		px_totals(mx_res_get(m, c->name), &tot);
		for (i = 0; i < tot.napi; i++)
			px_sample(f, name, px_api_field(&tot.api[i], which),
			    "resource", c->name, "api", tot.api[i].api,
			    "action", tot.api[i].action, NULL);
		mx_proc_clear(&tot);
	}
}

static void
px_histogram(FILE *f, const char *res, const struct mx_api *a)
{
	char	 le[32];
	double	 cum = 0;
	int	 b;

	for (b = 0; b < MX_BUCKETS; b++) {
		cum += a->hist[b];
		if (b < MX_BUCKETS - 1)
			snprintf(le, sizeof(le), "%g", mx_bounds_ms[b] / 1000);
		else
			snprintf(le, sizeof(le), "+Inf");
		px_sample(f, "qscale_api_latency_seconds_bucket", cum,
		    "resource", res, "api", a->api, "action", a->action,
		    "le", le, NULL);
	}
	px_sample(f, "qscale_api_latency_seconds_sum", a->sum_ms / 1000,
	    "resource", res, "api", a->api, "action", a->action, NULL);
	px_sample(f, "qscale_api_latency_seconds_count", cum, "resource", res,
	    "api", a->api, "action", a->action, NULL);
}

static void
px_api(FILE *f, struct sup *sup, struct metrics *m)
{
	struct sup_child	*c;
	struct mx_proc		 tot;
	size_t			 i;

	px_api_family(f, sup, m, "qscale_api_calls_total", "Calls to the EC2 "
	    "and ClearML APIs (HTTP requests, retries included).",
	    PX_CALLS);
	px_api_family(f, sup, m, "qscale_api_errors_total", "API calls that "
	    "ended in an error.", PX_ERRORS);
	px_api_family(f, sup, m, "qscale_api_retries_total", "API calls "
	    "retried after a throttling or transient error.",
	    PX_RETRIES);
	px_family(f, "qscale_api_latency_seconds", "histogram", "Latency of "
	    "API calls.");
	TAILQ_FOREACH(c, &sup->children, entry) {
		px_totals(mx_res_get(m, c->name), &tot);
		for (i = 0; i < tot.napi; i++)
			px_histogram(f, c->name, &tot.api[i]);
		mx_proc_clear(&tot);
	}
}

static void
px_process(FILE *f, struct sup *sup, struct metrics *m)
{
	struct sup_child	*c;
	struct mx_proc		 tot;
	double			 last;

	px_family(f, "qscale_child_restarts_total", "counter", "Times the "
	    "resource's worker process was respawned after it exited.");
	TAILQ_FOREACH(c, &sup->children, entry)
		px_sample(f, "qscale_child_restarts_total", c->restarts,
		    "resource", c->name, NULL);
	px_family(f, "qscale_child_up", "gauge", "1 when the resource's "
	    "worker process is running.");
	TAILQ_FOREACH(c, &sup->children, entry)
		px_sample(f, "qscale_child_up", c->pid != 0 &&
		    c->state == CHILD_RUNNING, "resource", c->name, NULL);
	px_family(f, "qscale_polls_total", "counter", "Polls done by the "
	    "resource's worker processes.");
	TAILQ_FOREACH(c, &sup->children, entry) {
		px_totals(mx_res_get(m, c->name), &tot);
		px_sample(f, "qscale_polls_total", tot.polls, "resource",
		    c->name, NULL);
		mx_proc_clear(&tot);
	}
	px_family(f, "qscale_last_poll_timestamp_seconds", "gauge", "When "
	    "the resource's last poll started (Unix time).");
	TAILQ_FOREACH(c, &sup->children, entry)
		if (c->snapshot != NULL &&
		    (last = mx_num(c->snapshot, "last_poll")) > 0)
			px_sample(f, "qscale_last_poll_timestamp_seconds",
			    last / 1000, "resource", c->name, NULL);
	px_family(f, "qscale_instance_seconds_total", "counter", "Instance "
	    "time observed: seconds summed over the resource's live "
	    "instances.");
	TAILQ_FOREACH(c, &sup->children, entry) {
		px_totals(mx_res_get(m, c->name), &tot);
		px_sample(f, "qscale_instance_seconds_total",
		    tot.instance_seconds, "resource", c->name, NULL);
		mx_proc_clear(&tot);
	}
}

/*
 * The spot blackout (global, and where it holds, until when) and the
 * launches it and spot_rollback_timeout turned to on-demand.
 */
static void
px_spot(FILE *f, struct sup *sup, struct metrics *m)
{
	static const char *const why[2] = { "rollback", "blackout" };
	const struct sup_blackout	*b;
	struct sup_child		*c;
	struct mx_res			*r;
	int				 k;

	px_family(f, "qscale_spot_blackout_active", "gauge", "1 while a spot "
	    "capacity failure keeps spot launches on-demand (every "
	    "resource's, or with spot_blackout_scope \"resource\" one's).");
	px_sample(f, "qscale_spot_blackout_active", mx_blackout_any(sup),
	    NULL);
	px_family(f, "qscale_spot_blackout_until_seconds", "gauge", "When "
	    "the spot blackout that holds for the resource ends, in Unix "
	    "seconds; 0: none.");
	TAILQ_FOREACH(c, &sup->children, entry) {
		b = sup_global_blackout_of(c);
		px_sample(f, "qscale_spot_blackout_until_seconds", b->active ?
		    (double)b->until_ms / 1000.0 : 0, "resource", c->name,
		    NULL);
	}
	px_family(f, "qscale_spot_converted_instances_total", "counter",
	    "Instances launched on-demand that would have been spot: after "
	    "spot_rollback_timeout, or in a spot blackout.");
	TAILQ_FOREACH(c, &sup->children, entry) {
		r = mx_res_get(m, c->name);
		for (k = 0; k < 2; k++)
			px_sample(f, "qscale_spot_converted_instances_total",
			    r->converted[k], "resource", c->name, "reason",
			    why[k], NULL);
	}
}

/* The whole exposition; the caller frees it. */
/* Instances of resources no longer configured (orphan.c). */
static void
px_orphans(FILE *f, struct sup *sup)
{
	const struct sup_orphans *o = &sup->orphans;
	size_t			 i;
	int			 busy = 0;

	for (i = 0; i < o->n; i++)
		busy += *o->list[i].task != '\0';
	px_family(f, "qscale_orphan_instances", "gauge", "Instances of "
	    "resources no longer in the configuration, idle or busy; "
	    "terminated once idle for max_idle_time.");
	px_sample(f, "qscale_orphan_instances", (double)o->n - busy, "state",
	    "idle", NULL);
	px_sample(f, "qscale_orphan_instances", busy, "state", "busy", NULL);
	px_family(f, "qscale_orphans_terminated_total", "counter", "Orphan "
	    "instances terminated since the daemon started.");
	px_sample(f, "qscale_orphans_terminated_total", (double)o->terminated,
	    NULL);
}

char *
metrics_render(struct sup *sup)
{
	struct metrics	*m = mx_get(sup);
	char		*buf = NULL;
	size_t		 len = 0;
	FILE		*f;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return NULL;
	px_gauges(f, sup);
	px_events(f, sup, m);
	px_api(f, sup, m);
	px_process(f, sup, m);
	px_spot(f, sup, m);
	px_family(f, "qscale_duplicate_tasks_total", "counter", "Times one "
	    "task was seen held by two workers.");
	px_sample(f, "qscale_duplicate_tasks_total", m->duplicates, NULL);
	px_orphans(f, sup);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
