/*
 * cmlcall: runs ClearML client operations against a server and prints
 * each result as one line of JSON, so that shell tests can drive the
 * client as a program.  Operations run in order on one client (one
 * token, one set of counters), separated by "--":
 *
 *   cmlcall [-v] [-u URL] [-k KEY] [-s SECRET] [-r RETRIES] [-b MS]
 *           [-t MS] OP [ARG...] [-- OP [ARG...]]...
 *   cmlcall [-v] check -c CONF
 *
 *   login | call ENDPOINT [JSON] | resolve NAME | queue QID
 *   workers [PATTERN [LAST_SEEN]] | unregister WORKER | tasks ID...
 *   task ID | stopped TASK [REASON] | enqueue TASK QID [REASON]
 *   requeue TASK QID [REASON] | sleep MS | wait FILE | stats
 *
 * URL, KEY and SECRET default to $QSCALE_SIM_CLEARML_URL (or
 * $CLEARML_API_HOST), $CLEARML_API_ACCESS_KEY, $CLEARML_API_SECRET_KEY.
 * Exits 0 when every operation worked, 1 when one failed, 2 on usage.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "clearml.h"
#include "http.h"
#include "supervisor.h"

#define WAIT_FILE_MS	30000

struct op {
	char	**argv;
	int	  argc;
};

struct run {
	struct event_base	*base;
	struct http_client	*http;
	struct cml_client	*cml;
	struct op		*ops;
	size_t			 nops;
	size_t			 cur;
	struct event		*next;
	int64_t			 wait_until;
	int			 failed;
};

static void	run_next(struct run *);

static void
usage(void)
{
	fprintf(stderr, "usage: cmlcall [-v] [-u url] [-k key] [-s secret] "
	    "[-r retries] [-b backoff_ms] [-t timeout_ms] op [arg ...] "
	    "[-- op ...]\n       cmlcall [-v] check -c conf\n");
	exit(2);
}

/* Prints and frees one result object, masked. */
static void
emit(struct run *r, cJSON *o)
{
	char	*s, *m;

	s = cJSON_PrintUnformatted(o);
	m = mask_dup(s);
	printf("%s\n", m);
	fflush(stdout);
	free(m);
	free(s);
	cJSON_Delete(o);
	(void)r;
}

static cJSON *
result(struct run *r, const struct cml_error *err)
{
	cJSON	*o = cJSON_CreateObject(), *e;

	cJSON_AddStringToObject(o, "op", r->ops[r->cur].argv[0]);
	cJSON_AddBoolToObject(o, "ok", err == NULL);
	if (err == NULL)
		return o;
	r->failed = 1;
	e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(e, "class", cml_err_class_name(err->cls));
	cJSON_AddNumberToObject(e, "http_status", err->http_status);
	cJSON_AddNumberToObject(e, "code", err->code);
	cJSON_AddNumberToObject(e, "subcode", err->subcode);
	cJSON_AddStringToObject(e, "endpoint", err->endpoint);
	cJSON_AddStringToObject(e, "message", err->message);
	return o;
}

/* The next operation starts from the loop, not from a callback. */
static void
step(struct run *r)
{
	r->cur++;
	timer_add_ms(r->next, 0);
}

static void
done_cb(const struct cml_error *err, void *arg)
{
	struct run	*r = arg;

	emit(r, result(r, err));
	step(r);
}

static void
login_cb(const struct cml_error *err, void *arg)
{
	struct run	*r = arg;
	cJSON		*o = result(r, err);

	if (err == NULL) {
		cJSON_AddStringToObject(o, "server_version",
		    cml_server_version(r->cml));
		cJSON_AddStringToObject(o, "api_version",
		    cml_api_version(r->cml));
	}
	emit(r, o);
	step(r);
}

static void
json_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct run	*r = arg;
	cJSON		*o = result(r, err);

	if (err == NULL)
		cJSON_AddItemToObject(o, "data", cJSON_Duplicate(data, 1));
	emit(r, o);
	step(r);
}

static void
id_cb(const struct cml_error *err, const char *id, void *arg)
{
	struct run	*r = arg;
	cJSON		*o = result(r, err);

	if (err == NULL)
		cJSON_AddStringToObject(o, "id", id);
	emit(r, o);
	step(r);
}

static void
add_time(cJSON *o, const char *key, int64_t ms)
{
	char	 buf[40];

	if (ms == 0) {
		cJSON_AddNullToObject(o, key);
		return;
	}
	fmt_time_ms(ms, buf, sizeof(buf));
	cJSON_AddStringToObject(o, key, buf);
}

static void
add_str(cJSON *o, const char *key, const char *s)
{
	if (s != NULL)
		cJSON_AddStringToObject(o, key, s);
	else
		cJSON_AddNullToObject(o, key);
}

static void
queue_cb(const struct cml_error *err, const struct cml_queue *q, void *arg)
{
	struct run	*r = arg;
	cJSON		*o = result(r, err), *qo, *a, *e;
	size_t		 i;

	if (err == NULL) {
		qo = cJSON_AddObjectToObject(o, "queue");
		cJSON_AddStringToObject(qo, "id", q->id);
		add_str(qo, "name", q->name);
		a = cJSON_AddArrayToObject(qo, "entries");
		for (i = 0; i < q->nentries; i++) {
			e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "task", q->entries[i].task);
			add_time(e, "added", q->entries[i].added_ms);
			cJSON_AddNumberToObject(e, "added_ms",
			    (double)q->entries[i].added_ms);
			cJSON_AddItemToArray(a, e);
		}
	}
	emit(r, o);
	step(r);
}

static void
workers_cb(const struct cml_error *err, const struct cml_worker *w, size_t n,
    void *arg)
{
	struct run	*r = arg;
	cJSON		*o = result(r, err), *a, *wo, *qa;
	size_t		 i, j;

	if (err == NULL) {
		a = cJSON_AddArrayToObject(o, "workers");
		for (i = 0; i < n; i++) {
			wo = cJSON_CreateObject();
			cJSON_AddStringToObject(wo, "id", w[i].id);
			add_str(wo, "task", w[i].task);
			add_str(wo, "task_name", w[i].task_name);
			add_time(wo, "register_time", w[i].register_ms);
			add_time(wo, "last_activity_time",
			    w[i].last_activity_ms);
			add_time(wo, "last_report_time", w[i].last_report_ms);
			qa = cJSON_AddArrayToObject(wo, "queues");
			for (j = 0; j < w[i].nqueues; j++)
				cJSON_AddItemToArray(qa,
				    cJSON_CreateString(w[i].queues[j]));
			cJSON_AddItemToArray(a, wo);
		}
	}
	emit(r, o);
	step(r);
}

static void
tasks_cb(const struct cml_error *err, const struct cml_task *t, size_t n,
    void *arg)
{
	struct run	*r = arg;
	cJSON		*o = result(r, err), *a, *to;
	size_t		 i;

	if (err == NULL) {
		a = cJSON_AddArrayToObject(o, "tasks");
		for (i = 0; i < n; i++) {
			to = cJSON_CreateObject();
			cJSON_AddStringToObject(to, "id", t[i].id);
			add_str(to, "name", t[i].name);
			add_str(to, "status", t[i].status);
			add_str(to, "status_reason", t[i].status_reason);
			add_str(to, "comment", t[i].comment);
			add_str(to, "last_worker", t[i].last_worker);
			add_str(to, "queue", t[i].queue[0] != '\0' ?
			    t[i].queue : NULL);
			add_time(to, "last_update", t[i].last_update_ms);
			cJSON_AddItemToArray(a, to);
		}
	}
	emit(r, o);
	step(r);
}

static void
op_stats(struct run *r)
{
	const struct cml_call_stats	*st;
	cJSON				*o = result(r, NULL), *a, *so;
	size_t				 n, i;

	st = cml_client_stats(r->cml, &n);
	a = cJSON_AddObjectToObject(o, "stats");
	for (i = 0; i < n; i++) {
		so = cJSON_AddObjectToObject(a, st[i].endpoint);
		cJSON_AddNumberToObject(so, "calls", (double)st[i].calls);
		cJSON_AddNumberToObject(so, "errors", (double)st[i].errors);
		cJSON_AddNumberToObject(so, "retries", (double)st[i].retries);
		cJSON_AddNumberToObject(so, "latency_ms_sum",
		    (double)st[i].latency_ms_sum);
	}
	emit(r, o);
	step(r);
}

static int
arg_int(const char *s, long *v)
{
	char	*end;

	*v = strtol(s, &end, 10);
	return *s != '\0' && *end == '\0' ? 0 : -1;
}

/* Starts one operation; -1 when its arguments are wrong. */
static int
op_start(struct run *r, struct op *op)
{
	const char	*name = op->argv[0];
	char		**a = op->argv;
	int		 n = op->argc;
	long		 v;
	cJSON		*params;
	int		 rc;

	if (strcmp(name, "login") == 0 && n == 1)
		return cml_login(r->cml, login_cb, r);
	if (strcmp(name, "call") == 0 && (n == 2 || n == 3)) {
		params = n == 3 ? cJSON_Parse(a[2]) : NULL;
		if (n == 3 && params == NULL) {
			fprintf(stderr, "cmlcall: call: not JSON: %s\n", a[2]);
			return -1;
		}
		rc = cml_call(r->cml, a[1], params, json_cb, r);
		cJSON_Delete(params);
		return rc;
	}
	if (strcmp(name, "resolve") == 0 && n == 2)
		return cml_queue_resolve(r->cml, a[1], id_cb, r);
	if (strcmp(name, "queue") == 0 && n == 2)
		return cml_queue_get(r->cml, a[1], queue_cb, r);
	if (strcmp(name, "workers") == 0 && n <= 3) {
		v = 3600;
		if (n == 3 && arg_int(a[2], &v) == -1)
			return -1;
		return cml_workers_get_all(r->cml, n >= 2 ? a[1] : NULL,
		    (int)v, workers_cb, r);
	}
	if (strcmp(name, "unregister") == 0 && n == 2)
		return cml_workers_unregister(r->cml, a[1], done_cb, r);
	if (strcmp(name, "tasks") == 0)
		return cml_tasks_get_all(r->cml, (const char *const *)a + 1,
		    (size_t)n - 1, tasks_cb, r);
	if (strcmp(name, "task") == 0 && n == 2)
		return cml_task_get(r->cml, a[1], tasks_cb, r);
	if (strcmp(name, "stopped") == 0 && (n == 2 || n == 3))
		return cml_task_stopped(r->cml, a[1], n == 3 ? a[2] : NULL,
		    done_cb, r);
	if (strcmp(name, "enqueue") == 0 && (n == 3 || n == 4))
		return cml_task_enqueue(r->cml, a[1], a[2], n == 4 ? a[3] :
		    NULL, done_cb, r);
	if (strcmp(name, "requeue") == 0 && (n == 3 || n == 4))
		return cml_task_requeue(r->cml, a[1], a[2], n == 4 ? a[3] :
		    NULL, done_cb, r);
	return -1;
}

static void
next_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run	*r = arg;

	(void)fd;
	(void)what;
	run_next(r);
}

/* sleep and wait hold the loop's timer, never the loop. */
static int
op_timed(struct run *r, struct op *op)
{
	struct stat	 sb;
	long		 v;

	if (strcmp(op->argv[0], "sleep") == 0 && op->argc == 2) {
		if (arg_int(op->argv[1], &v) == -1 || v < 0)
			return -1;
		emit(r, result(r, NULL));
		r->cur++;
		timer_add_ms(r->next, v);
		return 0;
	}
	if (strcmp(op->argv[0], "wait") == 0 && op->argc == 2) {
		if (r->wait_until == 0)
			r->wait_until = mono_ms() + WAIT_FILE_MS;
		if (stat(op->argv[1], &sb) == 0 || mono_ms() > r->wait_until) {
			r->wait_until = 0;
			emit(r, result(r, NULL));
			step(r);
		} else
			timer_add_ms(r->next, 20);
		return 0;
	}
	return 1;
}

static void
run_next(struct run *r)
{
	struct op	*op;
	int		 rc;

	if (r->cur >= r->nops) {
		event_base_loopbreak(r->base);
		return;
	}
	op = &r->ops[r->cur];
	if (strcmp(op->argv[0], "stats") == 0 && op->argc == 1) {
		op_stats(r);
		return;
	}
	if ((rc = op_timed(r, op)) == 0)
		return;
	if (rc == -1 || op_start(r, op) == -1) {
		fprintf(stderr, "cmlcall: bad operation: %s\n", op->argv[0]);
		r->failed = 2;
		event_base_loopbreak(r->base);
	}
}

static int
run_check(int argc, char **argv)
{
	struct conf_errors	 errs = { NULL, 0 };
	struct qscale_conf	*conf;
	struct event_base	*base;
	struct http_client	*http;
	size_t			 i;
	int			 failures;

	if (argc != 3 || strcmp(argv[1], "-c") != 0)
		usage();
	if ((conf = conf_load(argv[2], &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		conf_errors_clear(&errs);
		return 2;
	}
	conf_errors_clear(&errs);
	conf_register_secrets(conf);
	base = event_base_new();
	http = http_client_new(base);
	failures = check_clearml(conf, base, http);
	printf("%d failed\n", failures);
	http_client_free(http);
	event_base_free(base);
	conf_free(conf);
	return failures > 0 ? 1 : 0;
}

/* Splits the operations at "--". */
static struct op *
split_ops(int argc, char **argv, size_t *nops)
{
	struct op	*ops = xcalloc((size_t)argc + 1, sizeof(*ops));
	int		 i, start = 0;

	*nops = 0;
	for (i = 0; i <= argc; i++) {
		if (i < argc && strcmp(argv[i], "--") != 0)
			continue;
		if (i == start)
			usage();
		ops[*nops].argv = argv + start;
		ops[*nops].argc = i - start;
		(*nops)++;
		if (i < argc)
			argv[i] = NULL;
		start = i + 1;
	}
	return ops;
}

static const char *
env_or(const char *a, const char *b)
{
	const char	*v;

	if ((v = getenv(a)) != NULL && *v != '\0')
		return v;
	if (b != NULL && (v = getenv(b)) != NULL && *v != '\0')
		return v;
	return NULL;
}

int
main(int argc, char **argv)
{
	struct run	 r;
	const char	*url, *key, *secret;
	long		 retries = -1, backoff = 0, timeout = 0;
	int		 ch, verbose = 0;

	url = env_or("QSCALE_SIM_CLEARML_URL", "CLEARML_API_HOST");
	key = env_or("CLEARML_API_ACCESS_KEY", NULL);
	secret = env_or("CLEARML_API_SECRET_KEY", NULL);
	while ((ch = getopt(argc, argv, "+vu:k:s:r:b:t:")) != -1) {
		switch (ch) {
		case 'v':
			verbose = 1;
			break;
		case 'u':
			url = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 's':
			secret = optarg;
			break;
		case 'r':
			if (arg_int(optarg, &retries) == -1)
				usage();
			break;
		case 'b':
			if (arg_int(optarg, &backoff) == -1)
				usage();
			break;
		case 't':
			if (arg_int(optarg, &timeout) == -1)
				usage();
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	log_init("cmlcall", verbose ? LOG_LVL_DEBUG : LOG_LVL_WARN, 1);
	if (secret != NULL)
		mask_register(secret);
	if (strcmp(argv[0], "check") == 0)
		return run_check(argc, argv);
	if (url == NULL || key == NULL || secret == NULL) {
		fprintf(stderr, "cmlcall: need -u, -k and -s (or the "
		    "environment)\n");
		return 2;
	}
	memset(&r, 0, sizeof(r));
	r.ops = split_ops(argc, argv, &r.nops);
	r.base = event_base_new();
	r.http = http_client_new(r.base);
	r.cml = cml_client_new(r.base, r.http, url, key, secret);
	if (r.cml == NULL)
		fatalx("cannot make a client");
	cml_client_set_retry(r.cml, (int)retries, backoff, timeout);
	r.next = evtimer_new(r.base, next_cb, &r);
	timer_add_ms(r.next, 0);
	event_base_dispatch(r.base);
	event_free(r.next);
	cml_client_free(r.cml);
	http_client_free(r.http);
	event_base_free(r.base);
	free(r.ops);
	mask_clear();
	return r.failed;
}
