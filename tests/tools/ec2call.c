/*
 * ec2call: drives the EC2 client from the command line, one JSON line
 * per call on stdout, so that shell tests can use the real client
 * against moto or a fault-injecting server.
 *
 *   ec2call [options] describe [-f NAME=V1,V2]...
 *   ec2call [options] run [launch options]
 *   ec2call [options] terminate ID...
 *   ec2call [options] tags -t KEY=VALUE... ID...
 *   ec2call [options] console ID
 *   ec2call [options] creds
 *   ec2call -c FILE [options] resource NAME [--subnet S]
 *	[--spot|--on-demand] [--count N] [--token T] [--user-data-file F]
 *	[--dry-run]		(spot: as the resource says, by default)
 *
 * With -c the configuration file gives the region, endpoint and keys
 * (and the config module the environment's); without it, they come
 * from the environment as the config module would take them.
 * Options: --endpoint URL, --region R (else AWS_ENDPOINT_URL_EC2,
 * AWS_ENDPOINT_URL, AWS_REGION), --iam-role, --profile P, --page-size N,
 * --budget N, --max-body N, --attempts N, --base-delay MS,
 * --max-delay MS, --timeout MS, --repeat N, --interval MS, --tick MS
 * (a timer that must keep firing while calls are in flight),
 * --stop-retries MS (the retry budget goes to 0 then, as when a worker
 * process stops), -v.
 * Exit: 0 when every call worked, 1 when one failed, 2 on usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "common.h"
#include "ec2.h"
#include "http.h"
#include "worker.h"

#define MAX_ITEMS	4096

struct launch_args {
	struct ec2_launch	 l;
	const char		*groups[64];
	struct ec2_tag		 tags[64];
	char			*user_data;
	cJSON			*custom;
};

struct tool {
	struct event_base	*base;
	struct http_client	*http;
	struct ec2_client	*ec2;
	struct qscale_conf	 own;		/* without -c */
	struct qscale_conf	*conf;		/* &own, or the file's */
	const char		*conf_file;
	struct conf_aws		 set;		/* options given */
	const char		*action;
	char			**args;
	int			 nargs;
	struct ec2_filter	 filters[16];
	const char		*fvalues[16][32];
	size_t			 nfilters;
	struct ec2_tag		 tags[64];
	size_t			 ntags;
	struct launch_args	 run;
	size_t			 res_index;
	const char		*res_subnet;
	int			 page_size, budget, repeat, failed, done;
	int64_t			 interval, tick, max_body, stop_after;
	int64_t			 started, last_tick, max_gap;
	uint64_t		 ticks;
	struct event		*ev_tick, *ev_next, *ev_stop;
};

static void	start_call(struct tool *);

static void __attribute__((noreturn))
usage(const char *why)
{
	fprintf(stderr, "ec2call: %s\nusage: ec2call [options] describe|run|"
	    "terminate|tags|console|creds [args]\n", why);
	exit(2);
}

static int64_t
num(const char *s, const char *what)
{
	char	*end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0) {
		fprintf(stderr, "ec2call: %s: not a number: %s\n", what, s);
		exit(2);
	}
	return v;
}

static void
split_kv(char *s, struct ec2_tag *t)
{
	char	*eq = strchr(s, '=');

	if (eq == NULL)
		usage("expected KEY=VALUE");
	*eq = '\0';
	t->key = s;
	t->value = eq + 1;
}

static void
add_filter(struct tool *t, char *spec)
{
	struct ec2_filter	*f;
	char			*eq = strchr(spec, '='), *v, *save;

	if (eq == NULL || t->nfilters == QS_ARRAYLEN(t->filters))
		usage("-f NAME=V1,V2");
	*eq = '\0';
	f = &t->filters[t->nfilters];
	f->name = spec;
	f->values = t->fvalues[t->nfilters];
	for (v = strtok_r(eq + 1, ",", &save); v != NULL && f->nvalues < 32;
	    v = strtok_r(NULL, ",", &save))
		t->fvalues[t->nfilters][f->nvalues++] = v;
	t->nfilters++;
}

static char *
read_file(const char *path)
{
	FILE	*f = fopen(path, "rb");
	char	*buf;
	long	 n;

	if (f == NULL) {
		fprintf(stderr, "ec2call: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = xmalloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		usage("short read");
	buf[n] = '\0';
	fclose(f);
	return buf;
}

enum {
	O_ENDPOINT = 256, O_REGION, O_ROLE, O_PROFILE, O_PAGE, O_BUDGET,
	O_MAXBODY, O_ATTEMPTS, O_BASE, O_MAXDELAY, O_TIMEOUT, O_REPEAT,
	O_INTERVAL, O_TICK, O_STOP,
};

static void
parse_global(struct tool *t, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "endpoint", required_argument, NULL, O_ENDPOINT },
		{ "region", required_argument, NULL, O_REGION },
		{ "iam-role", no_argument, NULL, O_ROLE },
		{ "profile", required_argument, NULL, O_PROFILE },
		{ "page-size", required_argument, NULL, O_PAGE },
		{ "budget", required_argument, NULL, O_BUDGET },
		{ "max-body", required_argument, NULL, O_MAXBODY },
		{ "attempts", required_argument, NULL, O_ATTEMPTS },
		{ "base-delay", required_argument, NULL, O_BASE },
		{ "max-delay", required_argument, NULL, O_MAXDELAY },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "repeat", required_argument, NULL, O_REPEAT },
		{ "interval", required_argument, NULL, O_INTERVAL },
		{ "tick", required_argument, NULL, O_TICK },
		{ "stop-retries", required_argument, NULL, O_STOP },
		{ NULL, 0, NULL, 0 }
	};
	struct conf_aws	*a = &t->set;
	int		 ch;

	while ((ch = getopt_long(argc, argv, "+c:v", lo, NULL)) != -1) {
		switch (ch) {
		case 'c': t->conf_file = optarg; break;
		case O_ENDPOINT: a->endpoint = optarg; break;
		case O_REGION: a->region = optarg; break;
		case O_ROLE: a->use_iam_role = 1; break;
		case O_PROFILE: a->profile = optarg; break;
		case O_PAGE: t->page_size = (int)num(optarg, "page size");
			break;
		case O_BUDGET: t->budget = (int)num(optarg, "budget"); break;
		case O_MAXBODY: t->max_body = num(optarg, "max body"); break;
		case O_ATTEMPTS: a->max_attempts = (int)num(optarg,
			    "attempts"); break;
		case O_BASE: a->retry_base_delay = num(optarg, "delay");
			break;
		case O_MAXDELAY: a->retry_max_delay = num(optarg, "delay");
			break;
		case O_TIMEOUT: a->request_timeout = num(optarg, "timeout");
			break;
		case O_REPEAT: t->repeat = (int)num(optarg, "repeat"); break;
		case O_INTERVAL: t->interval = num(optarg, "interval"); break;
		case O_TICK: t->tick = num(optarg, "tick"); break;
		case O_STOP: t->stop_after = num(optarg, "stop"); break;
		case 'v': log_set_level(LOG_LVL_DEBUG); break;
		default: usage("bad option");
		}
	}
	if (optind >= argc)
		usage("no action");
	t->action = argv[optind];
	t->args = argv + optind + 1;
	t->nargs = argc - optind - 1;
}

/* The keys and place as the config module fills them from the environment. */
static void
conf_from_env(struct qscale_conf *c)
{
	struct conf_aws	*a = &c->aws;
	const char	*v;

	if (a->region == NULL && (a->region = getenv("AWS_REGION")) == NULL)
		a->region = getenv("AWS_DEFAULT_REGION");
	if (a->endpoint == NULL && (a->endpoint =
	    getenv("AWS_ENDPOINT_URL_EC2")) == NULL)
		a->endpoint = getenv("AWS_ENDPOINT_URL");
	if ((v = getenv("AWS_ACCESS_KEY_ID")) != NULL && *v != '\0') {
		a->access_key_id = (char *)v;
		a->secret_access_key = getenv("AWS_SECRET_ACCESS_KEY");
		a->session_token = getenv("AWS_SESSION_TOKEN");
		a->access_key_source = "environment";
	}
	c->name = "ec2call";
}

/* A string option over a loaded configuration's (which owns it). */
static void
override(char **field, const char *value, int owned)
{
	if (value == NULL)
		return;
	if (owned) {
		free(*field);
		*field = xstrdup(value);
	} else
		*field = (char *)value;
}

/* The configuration: the file's (-c), else the environment's. */
static void
conf_setup(struct tool *t)
{
	struct conf_errors	 errs = { NULL, 0 };
	struct conf_aws		*a;
	size_t			 i;
	int			 owned = t->conf_file != NULL;

	if (owned) {
		if ((t->conf = conf_load(t->conf_file, &errs)) == NULL) {
			for (i = 0; i < errs.n; i++)
				fprintf(stderr, "%s\n", errs.msg[i]);
			conf_errors_clear(&errs);
			exit(2);
		}
		conf_errors_clear(&errs);
		conf_register_secrets(t->conf);
	} else {
		t->conf = &t->own;
		conf_from_env(t->conf);
	}
	a = &t->conf->aws;
	override(&a->endpoint, t->set.endpoint, owned);
	override(&a->region, t->set.region, owned);
	override(&a->profile, t->set.profile, owned);
	if (t->set.use_iam_role)
		a->use_iam_role = 1;
	if (t->set.max_attempts > 0)
		a->max_attempts = t->set.max_attempts;
	if (t->set.retry_base_delay > 0)
		a->retry_base_delay = t->set.retry_base_delay;
	if (t->set.retry_max_delay > 0)
		a->retry_max_delay = t->set.retry_max_delay;
	if (t->set.request_timeout > 0)
		a->request_timeout = t->set.request_timeout;
}

/* resource NAME [...]: the launch request launch_spec_build() makes. */
static void
parse_resource(struct tool *t)
{
	static const struct option lo[] = {
		{ "subnet", required_argument, NULL, 's' },
		{ "spot", no_argument, NULL, 'p' },
		{ "on-demand", no_argument, NULL, 'o' },
		{ "count", required_argument, NULL, 'n' },
		{ "token", required_argument, NULL, 'C' },
		{ "user-data-file", required_argument, NULL, 'u' },
		{ "dry-run", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 }
	};
	const struct conf_resource	*r;
	int				 ch, spot = -1, count = 1, dry = 0;
	const char			*token = NULL;

	optind = 0;
	while ((ch = getopt_long(t->nargs + 1, t->args - 1, "", lo, NULL)) !=
	    -1) {
		switch (ch) {
		case 's': t->res_subnet = optarg; break;
		case 'p': spot = 1; break;
		case 'o': spot = 0; break;
		case 'n': count = (int)num(optarg, "count"); break;
		case 'C': token = optarg; break;
		case 'u': t->run.user_data = read_file(optarg); break;
		case 'd': dry = 1; break;
		default: usage("bad resource option");
		}
	}
	if (optind >= t->nargs + 1 || t->conf_file == NULL)
		usage("resource NAME needs -c FILE");
	if ((r = conf_resource_find(t->conf, t->args[optind - 1])) == NULL)
		usage("no such resource");
	t->res_index = (size_t)(r - t->conf->resources);
	if (spot == -1)
		spot = r->spot;
	if (launch_spec_build(&t->run.l, t->conf, t->res_index,
	    t->res_subnet, spot, count, token, t->run.user_data, dry) == -1)
		usage("launch_spec_build refused the resource");
}

static void
parse_run(struct tool *t)
{
	static const struct option lo[] = {
		{ "image", required_argument, NULL, 'i' },
		{ "type", required_argument, NULL, 'T' },
		{ "count", required_argument, NULL, 'n' },
		{ "subnet", required_argument, NULL, 's' },
		{ "az", required_argument, NULL, 'z' },
		{ "sg", required_argument, NULL, 'g' },
		{ "key", required_argument, NULL, 'k' },
		{ "user-data-file", required_argument, NULL, 'u' },
		{ "iam-arn", required_argument, NULL, 'A' },
		{ "iam-name", required_argument, NULL, 'N' },
		{ "ebs-device", required_argument, NULL, 'D' },
		{ "ebs-size", required_argument, NULL, 'S' },
		{ "ebs-type", required_argument, NULL, 'Y' },
		{ "tag", required_argument, NULL, 't' },
		{ "spot", no_argument, NULL, 'p' },
		{ "token", required_argument, NULL, 'C' },
		{ "dry-run", no_argument, NULL, 'd' },
		{ "custom", required_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	struct launch_args	*r = &t->run;
	struct ec2_launch	*l = &r->l;
	int			 ch;

	l->min_count = l->max_count = 1;
	optind = 0;
	while ((ch = getopt_long(t->nargs + 1, t->args - 1, "", lo, NULL)) !=
	    -1) {
		switch (ch) {
		case 'i': l->image_id = optarg; break;
		case 'T': l->instance_type = optarg; break;
		case 'n': l->max_count = (int)num(optarg, "count"); break;
		case 's': l->subnet_id = optarg; break;
		case 'z': l->availability_zone = optarg; break;
		case 'g':
			if (l->nsecurity_groups < QS_ARRAYLEN(r->groups))
				r->groups[l->nsecurity_groups++] = optarg;
			break;
		case 'k': l->key_name = optarg; break;
		case 'u': r->user_data = read_file(optarg); break;
		case 'A': l->iam_profile_arn = optarg; break;
		case 'N': l->iam_profile_name = optarg; break;
		case 'D': l->ebs_device = optarg; break;
		case 'S': l->ebs_size_gb = (int)num(optarg, "size"); break;
		case 'Y': l->ebs_type = optarg; break;
		case 't':
			if (l->ntags < QS_ARRAYLEN(r->tags))
				split_kv(optarg, &r->tags[l->ntags++]);
			break;
		case 'p': l->spot = 1; break;
		case 'C': l->client_token = optarg; break;
		case 'd': l->dry_run = 1; break;
		case 'j':
			if ((r->custom = cJSON_Parse(optarg)) == NULL)
				usage("--custom: not JSON");
			break;
		default: usage("bad run option");
		}
	}
	l->security_groups = r->groups;
	l->user_data = r->user_data;
	l->tags = r->tags;
	l->custom_launch_spec = r->custom;
}

static void
parse_action_args(struct tool *t)
{
	int	 i, j = 0;

	if (strcmp(t->action, "run") == 0) {
		parse_run(t);
		return;
	}
	if (strcmp(t->action, "resource") == 0) {
		parse_resource(t);
		return;
	}
	for (i = 0; i < t->nargs; i++) {
		if (strcmp(t->args[i], "-f") == 0 && i + 1 < t->nargs)
			add_filter(t, t->args[++i]);
		else if (strcmp(t->args[i], "-t") == 0 && i + 1 < t->nargs) {
			if (t->ntags == QS_ARRAYLEN(t->tags))
				usage("too many tags");
			split_kv(t->args[++i], &t->tags[t->ntags++]);
		} else
			t->args[j++] = t->args[i];
	}
	t->nargs = j;
}

static cJSON *
json_error(const struct ec2_error *e)
{
	cJSON	*o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "class", ec2_err_class_name(e->cls));
	cJSON_AddStringToObject(o, "code", e->code);
	cJSON_AddStringToObject(o, "message", e->message);
	cJSON_AddNumberToObject(o, "http_status", e->http_status);
	cJSON_AddStringToObject(o, "request_id", e->request_id);
	cJSON_AddNumberToObject(o, "attempts", e->attempts);
	return o;
}

static cJSON *
json_instance(const struct ec2_instance *in)
{
	cJSON	*o = cJSON_CreateObject(), *tags;
	size_t	 i;

	cJSON_AddStringToObject(o, "id", in->id);
	cJSON_AddStringToObject(o, "state", in->state);
	cJSON_AddNumberToObject(o, "state_code", in->state_code);
	cJSON_AddStringToObject(o, "type", in->type);
	cJSON_AddStringToObject(o, "az", in->az);
	cJSON_AddStringToObject(o, "subnet", in->subnet);
	cJSON_AddStringToObject(o, "image", in->image);
	cJSON_AddStringToObject(o, "private_ip", in->private_ip);
	cJSON_AddStringToObject(o, "state_reason", in->state_reason);
	cJSON_AddStringToObject(o, "client_token", in->client_token);
	cJSON_AddBoolToObject(o, "spot", in->spot);
	cJSON_AddNumberToObject(o, "launch_ms", (double)in->launch_ms);
	tags = cJSON_AddObjectToObject(o, "tags");
	for (i = 0; i < in->ntags; i++)
		cJSON_AddStringToObject(tags, in->tags[i].key,
		    in->tags[i].value);
	return o;
}

static void
stats_json(struct tool *t, cJSON *o)
{
	const struct ec2_call_stats	*s;
	const struct aws_creds		*cr;
	const char			*src;
	cJSON				*st, *a;
	size_t				 n, i;

	st = cJSON_AddObjectToObject(o, "stats");
	s = ec2_client_stats(t->ec2, &n);
	for (i = 0; i < n; i++) {
		if (s[i].calls == 0)
			continue;
		a = cJSON_AddObjectToObject(st, s[i].action);
		cJSON_AddNumberToObject(a, "calls", (double)s[i].calls);
		cJSON_AddNumberToObject(a, "errors", (double)s[i].errors);
		cJSON_AddNumberToObject(a, "retries", (double)s[i].retries);
	}
	cJSON_AddNumberToObject(o, "budget", ec2_client_retry_budget(t->ec2));
	cr = aws_creds_current(ec2_client_creds(t->ec2));
	src = aws_creds_source(ec2_client_creds(t->ec2));
	cJSON_AddStringToObject(o, "creds_source", src != NULL ? src : "");
	cJSON_AddStringToObject(o, "access_key_id", cr != NULL ?
	    cr->access_key_id : "");
	if (t->tick > 0) {
		cJSON_AddNumberToObject(o, "ticks", (double)t->ticks);
		cJSON_AddNumberToObject(o, "max_tick_gap_ms",
		    (double)t->max_gap);
	}
}

/* Prints the result line and starts the next call or stops. */
static void
call_done(struct tool *t, cJSON *o, const struct ec2_error *e)
{
	char	*s;

	cJSON_AddStringToObject(o, "action", t->action);
	cJSON_AddBoolToObject(o, "ok", e == NULL);
	if (e != NULL) {
		cJSON_AddItemToObject(o, "error", json_error(e));
		t->failed = 1;
	}
	cJSON_AddNumberToObject(o, "elapsed_ms", (double)(mono_ms() -
	    t->started));
	stats_json(t, o);
	s = cJSON_PrintUnformatted(o);
	printf("%s\n", s);
	fflush(stdout);
	free(s);
	cJSON_Delete(o);
	if (++t->done < t->repeat)
		timer_add_ms(t->ev_next, t->interval);
	else
		event_base_loopexit(t->base, NULL);
}

static void
instances_cb(const struct ec2_error *e, const struct ec2_instance *v,
    size_t n, void *arg)
{
	struct tool	*t = arg;
	cJSON		*o = cJSON_CreateObject(), *a;
	size_t		 i;

	cJSON_AddNumberToObject(o, "count", (double)n);
	a = cJSON_AddArrayToObject(o, "instances");
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(a, json_instance(&v[i]));
	call_done(t, o, e);
}

static void
terminate_cb(const struct ec2_error *e, const struct ec2_term_result *v,
    size_t n, void *arg)
{
	struct tool	*t = arg;
	cJSON		*o = cJSON_CreateObject(), *a, *r;
	size_t		 i;

	cJSON_AddNumberToObject(o, "count", (double)n);
	a = cJSON_AddArrayToObject(o, "results");
	for (i = 0; i < n; i++) {
		r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "id", v[i].id);
		cJSON_AddStringToObject(r, "previous", v[i].previous_state);
		cJSON_AddStringToObject(r, "current", v[i].current_state);
		cJSON_AddBoolToObject(r, "not_found", v[i].not_found);
		cJSON_AddItemToArray(a, r);
	}
	call_done(t, o, e);
}

static void
done_cb(const struct ec2_error *e, void *arg)
{
	call_done(arg, cJSON_CreateObject(), e);
}

static void
console_cb(const struct ec2_error *e, const char *text, void *arg)
{
	cJSON	*o = cJSON_CreateObject();

	if (text != NULL)
		cJSON_AddStringToObject(o, "output", text);
	call_done(arg, o, e);
}

static void
creds_cb(const char *err, void *arg)
{
	struct tool		*t = arg;
	struct ec2_error	 e;

	memset(&e, 0, sizeof(e));
	if (err != NULL) {
		e.cls = EC2_ERR_AUTH;
		snprintf(e.message, sizeof(e.message), "%s", err);
	}
	call_done(t, cJSON_CreateObject(), err != NULL ? &e : NULL);
}

static void
start_call(struct tool *t)
{
	const char *const	*ids = (const char *const *)t->args;
	int			 rc = 0;

	t->started = mono_ms();
	if (strcmp(t->action, "describe") == 0)
		rc = ec2_describe_instances(t->ec2, t->filters, t->nfilters,
		    instances_cb, t);
	else if (strcmp(t->action, "run") == 0 ||
	    strcmp(t->action, "resource") == 0)
		rc = ec2_run_instances(t->ec2, &t->run.l, instances_cb, t);
	else if (strcmp(t->action, "terminate") == 0)
		rc = ec2_terminate_instances(t->ec2, ids, (size_t)t->nargs,
		    terminate_cb, t);
	else if (strcmp(t->action, "tags") == 0)
		rc = ec2_create_tags(t->ec2, ids, (size_t)t->nargs, t->tags,
		    t->ntags, done_cb, t);
	else if (strcmp(t->action, "console") == 0)
		rc = ec2_get_console_output(t->ec2, t->nargs > 0 ? ids[0] :
		    NULL, console_cb, t);
	else if (strcmp(t->action, "creds") == 0)
		aws_creds_get(ec2_client_creds(t->ec2), creds_cb, t);
	else
		usage("unknown action");
	if (rc == -1)
		usage("the client refused the arguments");
}

static void
next_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start_call(arg);
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tool	*t = arg;

	(void)fd;
	(void)what;
	ec2_client_set_retry_budget(t->ec2, 0);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tool	*t = arg;
	int64_t		 now = mono_ms();

	(void)fd;
	(void)what;
	if (t->last_tick != 0 && now - t->last_tick > t->max_gap)
		t->max_gap = now - t->last_tick;
	t->last_tick = now;
	t->ticks++;
}

int
main(int argc, char **argv)
{
	struct tool	 t;
	struct timeval	 tv;
	char		 err[256];

	memset(&t, 0, sizeof(t));
	t.budget = -1;
	log_init("ec2call", LOG_LVL_INFO, 1);
	parse_global(&t, argc, argv);
	conf_setup(&t);
	parse_action_args(&t);
	if (t.repeat <= 0)
		t.repeat = 1;
	if ((t.base = event_base_new()) == NULL ||
	    (t.http = http_client_new(t.base)) == NULL)
		fatalx("cannot set up the loop");
	if ((t.ec2 = ec2_client_new(t.base, t.http, t.conf, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "ec2call: %s\n", err);
		return 2;
	}
	ec2_client_set_page_size(t.ec2, t.page_size);
	if (t.budget >= 0)
		ec2_client_set_retry_budget(t.ec2, t.budget);
	ec2_client_set_max_body(t.ec2, (size_t)t.max_body);
	t.ev_next = evtimer_new(t.base, next_cb, &t);
	if (t.tick > 0) {
		t.ev_tick = event_new(t.base, -1, EV_PERSIST, tick_cb, &t);
		tv.tv_sec = t.tick / 1000;
		tv.tv_usec = (t.tick % 1000) * 1000;
		event_add(t.ev_tick, &tv);
	}
	if (t.stop_after > 0) {
		t.ev_stop = evtimer_new(t.base, stop_cb, &t);
		timer_add_ms(t.ev_stop, t.stop_after);
	}
	start_call(&t);
	event_base_dispatch(t.base);
	if (t.ev_stop != NULL)
		event_free(t.ev_stop);
	ec2_client_free(t.ec2);
	http_client_free(t.http);
	if (t.ev_tick != NULL)
		event_free(t.ev_tick);
	event_free(t.ev_next);
	event_base_free(t.base);
	if (strcmp(t.action, "resource") == 0)
		launch_spec_clear(&t.run.l);
	free(t.run.user_data);
	cJSON_Delete(t.run.custom);
	if (t.conf != &t.own)
		conf_free(t.conf);
	mask_clear();
	return t.failed ? 1 : 0;
}
