/*
 * test_config.c: the configuration module.  Every key lands in its
 * field; every kind of error reads FILE:LINE: message with the right
 * file and line; durations; the JSON form; the environment and its
 * precedence; the secrecy check; defaults, match blocks and @include;
 * conf_print() output that loads again; export and import; fingerprints.
 * Files are written under a mkdtemp directory.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "conf_int.h"
#include "worker.h"

static char	 tmpdir[256];

static const char *const env_vars[] = {
	"CLEARML_API_HOST", "CLEARML_WEB_HOST", "CLEARML_FILES_HOST",
	"CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY", "AWS_REGION",
	"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_PROFILE",
};

#define CML	"clearml = { api_server = \"http://127.0.0.1:8008\"; " \
		"access_key = \"AK\"; secret_key = \"SECRET-cml-1\"; };\n"
#define RES(n, q) "{ name = \"" n "\"; queue = \"" q "\"; " \
		"instance_type = \"t3.micro\"; ami = \"ami-1\"; }"
#define ONE	"resources = ( " RES("gpu", "gpu") " );\n"

static int
clean_env(void **state)
{
	size_t	 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(env_vars); i++)
		unsetenv(env_vars[i]);
	mask_clear();
	return 0;
}

/* A path in the temporary directory; a few stay valid at once. */
static const char *
tpath(const char *name)
{
	static char	 buf[8][512];
	static int	 next;
	char		*p = buf[next++ % 8];

	snprintf(p, 512, "%s/%s", tmpdir, name);
	return p;
}

static const char *
put(const char *name, mode_t mode, const char *text)
{
	const char	*path = tpath(name);
	int		 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static char *
slurp(const char *path)
{
	FILE	*f = fopen(path, "r");
	char	*buf;
	long	 n;

	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = xmalloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A file of the source tree, copied into tmpdir with mode 0600. */
static const char *
put_src(const char *rel, const char *name)
{
	const char	*top = getenv("QSCALE_TOP");
	char		 src[512], *text;
	const char	*p;

	snprintf(src, sizeof(src), "%s/%s", top != NULL ? top : ".", rel);
	text = slurp(src);
	p = put(name, 0600, text);
	free(text);
	return p;
}

/* A file of tests/unit/data/conf. */
static const char *
put_data(const char *name)
{
	char	 rel[256];

	snprintf(rel, sizeof(rel), "tests/unit/data/conf/%s", name);
	return put_src(rel, name);
}

/* The line of the first occurrence of marker in text. */
static int
line_of(const char *text, const char *marker)
{
	const char	*at = strstr(text, marker), *p;
	int		 line = 1;

	if (at == NULL)
		fail_msg("marker \"%s\" not in the text", marker);
	for (p = text; p < at; p++)
		if (*p == '\n')
			line++;
	return line;
}

static struct qscale_conf *
must_load(const char *path)
{
	struct conf_errors	 errs = { NULL, 0 };
	struct qscale_conf	*c;
	size_t			 i;

	if ((c = conf_load(path, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			print_message("%s\n", errs.msg[i]);
		conf_errors_clear(&errs);
		fail_msg("%s did not load", path);
	}
	assert_int_equal(errs.n, 0);
	return c;
}

/* ERRS holds a message that reads exactly WANT. */
static int
has_msg(const struct conf_errors *errs, const char *want)
{
	size_t	 i;

	for (i = 0; i < errs->n; i++)
		if (strcmp(errs->msg[i], want) == 0)
			return 1;
	return 0;
}

/* Loading fails, and one of the errors reads exactly want. */
static void
must_fail_with(const char *path, const char *want)
{
	struct conf_errors	 errs = { NULL, 0 };
	struct qscale_conf	*c;
	size_t			 i;
	int			 found = 0;

	c = conf_load(path, &errs);
	if (c != NULL) {
		conf_free(c);
		fail_msg("%s loaded; expected: %s", path, want);
	}
	for (i = 0; i < errs.n; i++)
		if (strcmp(errs.msg[i], want) == 0)
			found = 1;
	if (!found) {
		print_message("expected: %s\n", want);
		for (i = 0; i < errs.n; i++)
			print_message("got:      %s\n", errs.msg[i]);
	}
	conf_errors_clear(&errs);
	assert_true(found);
}

static void
fail_at(const char *name, const char *text, const char *marker,
    const char *msg)
{
	const char	*path = put(name, 0600, text);
	char		*want;

	xasprintf(&want, "%s:%d: %s", path, line_of(text, marker), msg);
	must_fail_with(path, want);
	free(want);
}

static char *
json_text(const struct qscale_conf *c, int secrets)
{
	cJSON	*j = conf_to_json(c, secrets);
	char	*s = cJSON_Print(j);

	cJSON_Delete(j);
	return s;
}

static void
test_every_key(void **state)
{
	struct qscale_conf	*c;
	const struct conf_resource *r;
	char			*s;

	(void)state;
	c = must_load(put_data("every-key.conf"));
	assert_string_equal(c->name, "every");
	assert_string_equal(c->workers_prefix, "ek-prefix");
	assert_int_equal(c->polling_interval, 45000);
	assert_int_equal(c->max_idle_time, 5400000);
	assert_int_equal(c->max_spin_up_time, 1200000);
	assert_int_equal(c->vanished_worker_grace, 120000);
	assert_int_equal(c->worker_last_seen, 120000);
	assert_int_equal(c->max_requeues, 4);
	assert_int_equal(c->max_instances_total, 12);
	assert_int_equal(c->warn_duplicate_tasks, 0);
	assert_string_equal(c->spot_blackout_scope, "resource");
	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	assert_string_equal(c->log_dir, "/tmp/qscale-ek/log");
	assert_string_equal(c->pid_file, "/tmp/qscale-ek/qscaled.pid");
	/* the trailing slash goes: callers append "/auth.login" */
	assert_string_equal(c->clearml.api_server, "https://api.example.org");
	assert_string_equal(c->clearml.web_server, "https://app.example.org");
	assert_string_equal(c->clearml.files_server,
	    "https://files.example.org");
	assert_string_equal(c->clearml.access_key, "EK-ACCESS");
	assert_string_equal(c->clearml.secret_key, "EK-cml-secret-1");
	assert_int_equal(c->clearml.request_timeout, 500);
	assert_int_equal(c->clearml.report, 1);
	assert_string_equal(c->clearml.report_project, "Ops");
	assert_string_equal(c->clearml.report_name, "ek report");
	assert_string_equal(c->aws.region, "eu-central-1");
	assert_string_equal(c->aws.endpoint, "http://127.0.0.1:5000");
	assert_string_equal(c->aws.profile, "ekprof");
	assert_int_equal(c->aws.use_iam_role, 1);
	assert_string_equal(c->aws.access_key_id, "AKIAEKEKEK");
	assert_string_equal(c->aws.secret_access_key, "EK-aws-secret-2");
	assert_string_equal(c->aws.session_token, "EK-aws-token-3");
	assert_int_equal(c->aws.max_attempts, 7);
	assert_int_equal(c->aws.retry_base_delay, 100);
	assert_int_equal(c->aws.retry_max_delay, 5000);
	assert_int_equal(c->aws.request_timeout, 10000);
	assert_non_null(c->aws.access_key_source);
	assert_non_null(strstr(c->aws.access_key_source, "every-key.conf:32"));
	assert_string_equal(c->git.user, "ekbot");
	assert_string_equal(c->git.password, "EK-git-secret-4");
	assert_string_equal(c->agent.docker_image, "ubuntu:22.04");
	assert_string_equal(c->agent.init_script, "echo one\necho \"two\"");
	assert_string_equal(c->agent.extra_clearml_conf, "agent.x = 1");
	assert_int_equal(c->agent.exclude_bashrc, 1);
	assert_string_equal(c->agent.agent_version, "1.9.2");
	assert_string_equal(c->agent.access_key, "EK-AGENT-ACCESS");
	assert_string_equal(c->agent.secret_key, "EK-agent-secret-5");
	assert_string_equal(c->iam_instance_profile.arn,
	    "arn:aws:iam::1:instance-profile/ek");
	assert_string_equal(c->iam_instance_profile.name, "ek");
	s = cJSON_PrintUnformatted(c->custom_launch_spec);
	assert_string_equal(s, "{\"MetadataOptions\":{\"HttpPutResponseHopLimit"
	    "\":2},\"TagSpecifications\":[{\"ResourceType\":\"volume\","
	    "\"Tags\":[{\"Key\":\"a\",\"Value\":\"b\"}]}]}");
	free(s);
	assert_string_equal(c->status_listen, "0.0.0.0:9811");
	assert_int_equal(c->status_loopback, 0);
	assert_string_equal(c->control_socket, "/tmp/qscale-ek/control.socket");

	assert_int_equal(c->nresources, 2);
	r = &c->resources[0];
	assert_string_equal(r->name, "gpu");
	assert_string_equal(r->queue, "gpu-queue");
	assert_string_equal(r->instance_type, "g4dn.xlarge");
	assert_string_equal(r->ami, "ami-0aaa");
	assert_int_equal(r->max_instances, 7);
	assert_int_equal(r->cpu_mode, 1);
	assert_int_equal(r->spot, 1);
	assert_int_equal(r->spot_rollback_timeout, 90000);
	assert_int_equal(r->spot_blackout_period, 1800000);
	assert_string_equal(r->availability_zone, "eu-central-1a");
	assert_int_equal(r->nsubnets, 2);
	assert_string_equal(r->subnets[1], "subnet-2");
	assert_int_equal(r->nsecurity_groups, 3);
	assert_string_equal(r->security_groups[2], "sg-3");
	assert_string_equal(r->key_pair, "ek-key");
	assert_string_equal(r->docker_image, "nvidia/cuda:12");
	assert_string_equal(r->eff_docker_image, "nvidia/cuda:12");
	assert_int_equal(r->ntags, 2);
	assert_string_equal(r->tags[0].key, "team");
	assert_string_equal(r->tags[0].value, "ml");
	assert_string_equal(r->tags[1].key, "cost-center");
	assert_string_equal(r->tags[1].value, "42");
	assert_string_equal(r->ebs.device, "/dev/xvda");
	assert_int_equal(r->ebs.size_gb, 100);
	assert_string_equal(r->ebs.type, "io2");
	assert_int_equal(r->ebs.iops, 20000);
	assert_int_equal(r->ebs.throughput, 0);
	assert_int_equal(r->max_idle_time, 45 * 60000);
	assert_int_equal(r->max_spin_up_time, 20 * 60000);
	assert_null(r->iam_instance_profile.arn);
	assert_string_equal(r->iam_instance_profile.name, "gpu-prof");
	assert_ptr_equal(r->eff_iam_instance_profile, &r->iam_instance_profile);
	s = cJSON_PrintUnformatted(r->custom_launch_spec);
	assert_string_equal(s, "{\"MetadataOptions\":{\"HttpTokens\":"
	    "\"required\",\"X\":[1,2]}}");
	free(s);
	/* the resource's spec merged over the global one, key by key */
	s = cJSON_PrintUnformatted(r->eff_launch_spec);
	assert_string_equal(s, "{\"MetadataOptions\":{\"HttpPutResponseHopLimit"
	    "\":2,\"HttpTokens\":\"required\",\"X\":[1,2]},"
	    "\"TagSpecifications\":[{\"ResourceType\":\"volume\","
	    "\"Tags\":[{\"Key\":\"a\",\"Value\":\"b\"}]}]}");
	free(s);
	assert_string_equal(r->file, tpath("every-key.conf"));
	assert_int_equal(r->line, 58);		/* its opening brace */

	r = &c->resources[1];
	assert_string_equal(r->name, "cpu.small");
	assert_string_equal(r->ami, "resolve:ssm:/aws/service/x");
	assert_int_equal(r->ntags, 1);
	assert_string_equal(r->tags[0].key, "kubernetes.io/cluster");
	assert_string_equal(r->tags[0].value, "owned");
	assert_string_equal(r->eff_docker_image, "ubuntu:22.04");
	assert_ptr_equal(r->eff_iam_instance_profile, &c->iam_instance_profile);
	assert_null(r->custom_launch_spec);
	assert_true(cJSON_Compare(r->eff_launch_spec, c->custom_launch_spec,
	    1));
	assert_int_equal(r->max_instances, 1);

	assert_ptr_equal(conf_resource_find(c, "cpu.small"), r);
	assert_null(conf_resource_find(c, "nosuch"));
	conf_free(c);
}

static void
test_defaults(void **state)
{
	struct qscale_conf	*c;
	const struct conf_resource *r;

	(void)state;
	c = must_load(put("min.conf", 0600, CML ONE));
	assert_string_equal(c->name, "qscale");
	assert_string_equal(c->workers_prefix, "qscale");
	assert_int_equal(c->polling_interval, 30000);
	assert_int_equal(c->max_idle_time, 900000);
	assert_int_equal(c->max_spin_up_time, 1800000);
	assert_int_equal(c->vanished_worker_grace, 300000);
	assert_int_equal(c->worker_last_seen, 90000);
	assert_int_equal(c->log_level, LOG_LVL_INFO);
	assert_string_equal(c->log_dir, "/var/log/qscale");
	assert_string_equal(c->pid_file, "/run/qscale/qscaled.pid");
	assert_int_equal(c->warn_duplicate_tasks, 1);
	assert_int_equal(c->max_instances_total, 0);
	assert_string_equal(c->spot_blackout_scope, "global");
	assert_int_equal(c->max_requeues, 2);
	assert_string_equal(c->status_listen, "127.0.0.1:9800");
	assert_int_equal(c->status_loopback, 1);
	assert_string_equal(c->control_socket, "/run/qscale/control.socket");
	assert_int_equal(c->clearml.request_timeout, 30000);
	assert_int_equal(c->clearml.report, 0);
	assert_string_equal(c->clearml.report_project, "DevOps");
	assert_string_equal(c->clearml.report_name, "qscale qscale");
	assert_null(c->clearml.web_server);
	assert_int_equal(c->aws.max_attempts, 5);
	assert_int_equal(c->aws.retry_base_delay, 200);
	assert_int_equal(c->aws.retry_max_delay, 20000);
	assert_int_equal(c->aws.request_timeout, 30000);
	assert_null(c->aws.region);
	assert_null(c->aws.access_key_id);
	assert_null(c->aws.access_key_source);
	assert_int_equal(c->aws.use_iam_role, 0);
	assert_null(c->agent.init_script);
	assert_null(c->agent.docker_image);
	assert_null(c->custom_launch_spec);
	r = &c->resources[0];
	assert_int_equal(r->cpu_mode, 0);
	assert_int_equal(r->spot, 0);
	assert_int_equal(r->spot_rollback_timeout, 300000);
	assert_int_equal(r->spot_blackout_period, 600000);
	assert_int_equal(r->max_instances, 1);
	assert_int_equal(r->nsubnets, 0);
	assert_int_equal(r->ntags, 0);
	assert_string_equal(r->ebs.device, "/dev/sda1");
	assert_int_equal(r->ebs.size_gb, 0);
	assert_string_equal(r->ebs.type, "gp3");
	assert_null(r->eff_docker_image);
	assert_null(r->eff_launch_spec);
	assert_string_equal(conf_origin(c, "polling_interval"), "default");
	assert_string_equal(conf_origin(c, "resources.gpu.ebs.type"),
	    "default");
	assert_null(conf_origin(c, "no.such.key"));
	conf_free(c);
}

static void
test_durations(void **state)
{
	static const struct {
		const char	*text;
		int64_t		 ms;
	} good[] = {
		{ "\"500ms\"", 500 }, { "\"45s\"", 45000 },
		{ "\"15m\"", 900000 }, { "\"2h\"", 7200000 },
		{ "\"1h30m\"", 5400000 }, { "0", 0 }, { "\"0\"", 0 },
		{ "\"1d\"", 86400000 },
	};
	struct qscale_conf	*c;
	char			*text;
	size_t			 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(good); i++) {
		xasprintf(&text, CML ONE "max_idle_time = %s;\n", good[i].text);
		c = must_load(put("dur.conf", 0600, text));
		assert_int_equal(c->max_idle_time, good[i].ms);
		conf_free(c);
		free(text);
	}
	fail_at("d1.conf", CML ONE "max_idle_time = \"soon\";\n",
	    "max_idle_time", "max_idle_time: \"soon\" is not a duration: "
	    "expected a number, as in 45s, 15m or 2h");
	fail_at("d2.conf", CML ONE "max_idle_time = \"15x\";\n",
	    "max_idle_time", "max_idle_time: \"15x\" is not a duration: "
	    "unknown unit (use ms, s, m, h or d)");
	/* the ClearML app's fields are minutes: a bare number is refused */
	fail_at("d7.conf", CML ONE "max_idle_time = 15;\n", "max_idle_time",
	    "max_idle_time = 15: a duration needs a unit: write \"15m\" for "
	    "15 minutes (as the ClearML app's fields mean it) or \"15s\" for "
	    "15 seconds");
	fail_at("d8.conf", CML ONE "polling_interval = \"90\";\n",
	    "polling_interval", "polling_interval = 90: a duration needs a "
	    "unit: write \"90m\" for 90 minutes (as the ClearML app's fields "
	    "mean it) or \"90s\" for 90 seconds");
	fail_at("d9.conf", CML "resources = ( { name = \"a\"; queue = \"a\"; "
	    "instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
	    "spot_rollback_timeout = 5; } );\n", "spot_rollback_timeout",
	    "resource \"a\": spot_rollback_timeout = 5: a duration needs a "
	    "unit: write \"5m\" for 5 minutes (as the ClearML app's fields "
	    "mean it) or \"5s\" for 5 seconds");
	fail_at("d3.conf", CML ONE "max_idle_time = -5;\n", "max_idle_time",
	    "max_idle_time: -5 is not a duration");
	fail_at("d4.conf", CML ONE "max_idle_time = 1.5;\n", "max_idle_time",
	    "max_idle_time must be a duration (\"90s\", \"15m\", \"2h\"), "
	    "not a number with a fraction");
	fail_at("d5.conf", CML ONE "polling_interval = \"2h\";\n",
	    "polling_interval", "polling_interval must be from 100ms to 1h "
	    "(not 2h)");
	fail_at("d6.conf", CML ONE "polling_interval = \"50ms\";\n",
	    "polling_interval", "polling_interval must be from 100ms to 1h "
	    "(not 50ms)");
}

struct err_case {
	const char	*text;
	const char	*marker;	/* on the line the error names */
	const char	*msg;
};

static void
test_errors(void **state)
{
	static const struct err_case cases[] = {
		{ CML ONE "name = \"x\";\nfoo = ;\n", "foo", "syntax error" },
		{ CML ONE "name = \"x\"\n \"y\nz;\n", "\"y", "unterminated "
		    "string (it starts on this line)" },
		{ CML ONE "/* a\n * b\n", "/* a", "unterminated comment (it "
		    "starts on this line)" },
		{ CML "resources = ( { name = \"gpu\"; queue = \"gpu\"; "
		    "instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
		    "  max_instances = \"two\"; } );\n", "max_instances",
		    "resource \"gpu\": max_instances must be an integer, not "
		    "a string" },
		{ CML "resources = ( { name = \"gpu\"; queue = \"gpu\"; "
		    "instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
		    "  spot = 1; } );\n", "spot", "resource \"gpu\": spot must "
		    "be true or false, not an integer" },
		{ CML ONE "name = 5;\n", "name = 5", "name must be a string, "
		    "not an integer" },
		{ CML "resources = ( { name = \"gpu\"; queue = \"gpu\"; "
		    "instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
		    "  max_instances = 1001; } );\n", "max_instances",
		    "resource \"gpu\": max_instances must be from 0 to 1000 "
		    "(not 1001)" },
		{ CML "resources = ( { name = \"gpu\"; queue = \"gpu\"; "
		    "instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
		    "  ebs = { size_gb = 20000; }; } );\n", "ebs",
		    "resource \"gpu\": ebs.size_gb must be from 0 to 16384 "
		    "(not 20000)" },
		{ CML "resources = ( { name = \"gpu\"; queue = \"gpu\"; "
		    "instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
		    "  ebs = { type = \"gp9\"; }; } );\n", "ebs",
		    "resource \"gpu\": ebs.type must be one of gp2, gp3, io1, "
		    "io2, st1, sc1, standard (not \"gp9\")" },
		{ CML "resources = (\n  { name = \"gpu\"; queue = \"gpu\"; "
		    "instance_type = \"t3.micro\"; }\n);\n", "{ name",
		    "resource \"gpu\": ami is required" },
		{ CML "resources = (\n  { queue = \"gpu\"; instance_type = "
		    "\"t3.micro\"; ami = \"ami-1\"; }\n);\n", "{ queue",
		    "resource 1: name is required" },
		{ "\nclearml = { api_server = \"http://x\"; access_key = "
		    "\"AK\"; };\n" ONE, "clearml", "clearml.secret_key is "
		    "required: set it here or in the environment "
		    "(CLEARML_API_SECRET_KEY)" },
		{ ONE, "resources", "clearml.api_server is required: set it "
		    "here or in the environment (CLEARML_API_HOST)" },
		{ CML ONE "polling_intervl = \"1s\";\n", "polling_intervl",
		    "unknown key 'polling_intervl' (did you mean "
		    "'polling_interval'?)" },
		{ CML ONE "aws = { regin = \"x\"; };\n", "regin",
		    "unknown key 'aws.regin' (did you mean 'aws.region'?)" },
		{ CML ONE "api_server = \"http://x\";\n",
		    "api_server = \"http://x",
		    "unknown key 'api_server' (did you mean "
		    "'clearml.api_server'?)" },
		{ CML "resources = ( { name = \"gpu\"; queue = \"gpu\"; "
		    "instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
		    "  instnce_type = \"x\"; } );\n", "instnce",
		    "unknown key 'instnce_type' in resource \"gpu\" (did you "
		    "mean 'instance_type'?)" },
		{ CML ONE "zzz = 1;\n", "zzz", "unknown key 'zzz'" },
		{ CML ONE "git = { password = \"********\"; };\n", "git",
		    "git.password is \"********\": this configuration was "
		    "exported with its secrets masked; set the secret, or "
		    "export it with 'qscalectl export-config "
		    "--with-secrets'" },
		{ CML ONE "custom_launch_spec = \"{not json\";\n",
		    "custom_launch_spec", "custom_launch_spec is not valid "
		    "JSON (the error is on line 1 of the string)" },
		{ CML ONE "custom_launch_spec = \"[1, 2]\";\n",
		    "custom_launch_spec", "custom_launch_spec must be a JSON "
		    "object { ... }" },
		{ CML ONE "custom_launch_spec = 5;\n", "custom_launch_spec",
		    "custom_launch_spec must be a group or a string holding "
		    "a JSON object, not an integer" },
		{ CML ONE "custom_launch_spec = {\n TagSpecifications = ( { "
		    "ResourceType = \"instance\"; Tags = ( { Key = "
		    "\"qscale:resource\"; Value = \"x\"; } ); } ); };\n",
		    "TagSpecifications", "custom_launch_spec."
		    "TagSpecifications element 1, Tags element 1: tag key "
		    "\"qscale:resource\" is reserved (keys starting with qscale: "
		    "are how qscale finds its instances, aws: is EC2's)" },
		{ CML "resources = ( { name = \"gpu\"; queue = \"gpu\"; "
		    "instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
		    "  custom_launch_spec = \"{\\\"TagSpecification\\\": [{"
		    "\\\"Tag\\\": [{\\\"Key\\\": \\\"qscale:autoscaler\\\"}]}]}\"; "
		    "} );\n", "custom_launch_spec", "resource \"gpu\": "
		    "custom_launch_spec.TagSpecification element 1, Tag element "
		    "1: tag key \"qscale:autoscaler\" is reserved (keys starting "
		    "with qscale: are how qscale finds its instances, aws: is "
		    "EC2's)" },
		{ CML ONE "workers_prefix = \"a:b\";\n", "workers_prefix",
		    "workers_prefix \"a:b\" must be 1 to 64 letters, digits, "
		    "'_', '.' or '-'" },
		{ CML "resources = (\n " RES("gp*", "gpu") "\n);\n", "gp*",
		    "resource 1: name \"gp*\" must be 1 to 64 letters, digits, "
		    "'_', '.' or '-'" },
		{ "clearml = {\n api_server = \"api.clear.ml\"; access_key = "
		    "\"AK\"; secret_key = \"S-1\"; };\n" ONE, "api_server",
		    "clearml.api_server must be a URL starting with http:// "
		    "or https:// (not \"api.clear.ml\")" },
		{ CML ONE "status = { listen = \"127.0.0.1\"; };\n", "status",
		    "status.listen \"127.0.0.1\": expected host:port, as in "
		    "127.0.0.1:9800 (or \"\" to turn it off)" },
		{ CML ONE "status = { listen = \"127.0.0.1:70000\"; };\n",
		    "status", "status.listen \"127.0.0.1:70000\": the port "
		    "must be a number from 1 to 65535 (or \"\" to turn it "
		    "off)" },
		{ CML ONE "log_level = \"loud\";\n", "log_level",
		    "log_level: unknown level \"loud\" (use error, warn, info "
		    "or debug)" },
		{ CML ONE "spot_blackout_scope = \"everywhere\";\n", "spot_",
		    "spot_blackout_scope must be one of global, resource (not "
		    "\"everywhere\")" },
		{ CML ONE "max_requeues = 99999999999;\n", "max_requeues",
		    "integer 99999999999 is too large (the largest is "
		    "2147483647)" },
		{ CML ONE "max_requeues = -99999999999;\n", "max_requeues",
		    "integer 99999999999 is too large (the largest is "
		    "2147483647)" },
		{ CML ONE "max_requeues = 0x80000000;\n", "max_requeues",
		    "integer 0x80000000 is too large (the largest is "
		    "2147483647)" },
		{ CML, "clearml", "no resources: define at least one, as in "
		    "resources = ( { name = \"gpu\"; queue = \"gpu\"; "
		    "instance_type = \"g4dn.xlarge\"; ami = \"ami-...\"; } )" },
		{ CML "resources = { };\n", "resources", "resources must be a "
		    "list ( { ... }, ... ), not a group" },
		{ CML "resources = ( { name = \"gpu\"; queue = \"gpu\"; "
		    "instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
		    "  tags = ( ( \"aws:x\", \"v\" ) ); } );\n", "tags",
		    "resource \"gpu\": tags: bad tag key \"aws:x\" (1 to 128 "
		    "characters, not starting with aws: or qscale:, which are "
		    "reserved)" },
		{ CML "resources = ( { name = \"gpu\"; queue = \"gpu\"; "
		    "instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
		    "  subnets = [ 1 ]; } );\n", "subnets", "resource \"gpu\": "
		    "subnets: element 1 must be a non-empty string" },
		{ CML ONE "aws = 5;\n", "aws = 5", "'aws' must be a group "
		    "{ ... }, not an integer" },
		{ CML ONE "defaults = { name = \"x\"; };\n", "defaults",
		    "'name' cannot be set in defaults, only at the top level" },
		{ CML ONE "defaults = { resources = (); };\n", "defaults",
		    "'resources' cannot be set in defaults" },
		{ CML ONE "defaults = {\n resource = { queue = \"q\"; }; };\n",
		    "resource =", "'queue' cannot be set in defaults.resource, "
		    "only in each resource" },
		{ CML ONE "defaults = { polling_intervl = 5; };\n", "defaults",
		    "unknown key 'polling_intervl' in defaults (did you mean "
		    "'polling_interval'?)" },
		{ CML ONE "match = ( { max_idle_time = \"1m\"; } );\n", "match",
		    "match: each block needs workers_prefix = \"REGEX\" (a "
		    "POSIX extended regular expression)" },
		{ CML ONE "match = ( {\n workers_prefix = \"^x$\";\n "
		    "max_idle_time = \"soon\"; } );\n", "max_idle_time",
		    "max_idle_time: \"soon\" is not a duration: expected a "
		    "number, as in 45s, 15m or 2h" },
		{ CML ONE "aws = {\n access_key_id = \"AKIA\"; };\n",
		    "access_key_id", "aws.access_key_id and "
		    "aws.secret_access_key go together: set both or neither" },
		{ CML ONE "aws = {\n retry_base_delay = \"30s\";\n };\n",
		    "retry_base", "aws.retry_base_delay is longer than "
		    "aws.retry_max_delay" },
		{ CML ONE "log_dir = \"log\";\n", "log_dir", "log_dir must be "
		    "an absolute path" },
		{ CML ONE "@include site.conf\n", "@include", "malformed "
		    "@include: write @include \"file\" alone on its line" },
		{ CML "resources = ( { name = \"gpu\"; queue = \"gpu\"; "
		    "instance_type = \"g4:x\"; ami = \"ami-1\"; } );\n", "g4:x",
		    "resource \"gpu\": instance_type \"g4:x\" must be 1 to 64 "
		    "letters, digits, '_', '.' or '-'" },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(cases); i++)
		fail_at("err.conf", cases[i].text, cases[i].marker,
		    cases[i].msg);
}

static void
test_bad_regex(void **state)
{
	struct conf_errors	 errs = { NULL, 0 };
	const char		*text = CML ONE "match = (\n { workers_prefix "
	    "= \"([\"; } );\n";
	const char		*path = put("re.conf", 0600, text);
	char			*want;

	(void)state;
	assert_null(conf_load(path, &errs));
	assert_int_equal(errs.n, 1);
	xasprintf(&want, "%s:%d: match: bad regular expression \"([\": ", path,
	    line_of(text, "workers_prefix"));
	assert_memory_equal(errs.msg[0], want, strlen(want));
	assert_true(strlen(errs.msg[0]) > strlen(want));
	free(want);
	conf_errors_clear(&errs);
}

static void
test_duplicates(void **state)
{
	const char	*text = CML "resources = (\n  " RES("gpu", "q1")
	    ",\n  " RES("cpu", "q2") ",\n  " RES("gpu", "q3") ",\n  "
	    RES("cpu2", "q1") "\n);\n";
	const char	*path = put("dup.conf", 0600, text);
	char		*want;

	(void)state;
	xasprintf(&want, "%s:5: resource name \"gpu\" is used twice (first at "
	    "%s:3)", path, path);
	must_fail_with(path, want);
	free(want);
	xasprintf(&want, "%s:6: resources \"gpu\" (%s:3) and \"cpu2\" (%s:6) "
	    "both use queue \"q1\": each resource needs its own queue", path,
	    path, path);
	must_fail_with(path, want);
	free(want);
}

/*
 * Many resources, one a line: each key's origin is its own line (the
 * origins are indexed, not searched), and a name or queue used again far
 * down is still caught, citing the first.
 */
static void
test_many_resources(void **state)
{
	struct qscale_conf	*c;
	char			*text, *more, *key, *want;
	const char		*path;
	size_t			 i, n = 2000;

	(void)state;
	text = xstrdup(CML "resources = (\n");
	for (i = 0; i < n; i++) {
		xasprintf(&more, "%s%s{ name = \"r%zu\"; queue = \"q%zu\"; "
		    "instance_type = \"t3.micro\"; ami = \"ami-%zu\"; }\n",
		    text, i > 0 ? "," : "", i, i, i);
		free(text);
		text = more;
	}
	xasprintf(&more, "%s);\n", text);
	free(text);
	path = put("many.conf", 0600, more);
	c = must_load(path);
	assert_int_equal(c->nresources, n);
	for (i = 0; i < n; i += 97) {
		xasprintf(&key, "resources.r%zu.ami", i);
		xasprintf(&want, "%s:%zu", path, i + 3);
		assert_string_equal(conf_origin(c, key), want);
		assert_int_equal(strtoul(c->resources[i].ami + 4, NULL, 10),
		    i);
		free(key);
		free(want);
	}
	assert_string_equal(conf_origin(c, "resources.r1999.spot"),
	    "default");
	assert_null(conf_origin(c, "resources.r2000.ami"));
	conf_free(c);

	/* the last two reuse the first name and the first queue */
	more[strlen(more) - 3] = '\0';
	xasprintf(&text, "%s,{ name = \"r0\"; queue = \"qx\"; instance_type "
	    "= \"t3.micro\"; ami = \"ami-1\"; }\n,{ name = \"rx\"; queue = "
	    "\"q0\"; instance_type = \"t3.micro\"; ami = \"ami-1\"; }\n);\n",
	    more);
	path = put("many-dup.conf", 0600, text);
	xasprintf(&want, "%s:%zu: resource name \"r0\" is used twice (first "
	    "at %s:3)", path, n + 3, path);
	must_fail_with(path, want);
	free(want);
	xasprintf(&want, "%s:%zu: resources \"r0\" (%s:3) and \"rx\" (%s:%zu) "
	    "both use queue \"q0\": each resource needs its own queue", path,
	    n + 4, path, path, n + 4);
	must_fail_with(path, want);
	free(want);
	free(text);
	free(more);
}

/* Numbers that are not too large for libconfig, whatever they look like. */
static void
test_big_integers(void **state)
{
	struct qscale_conf	*c;

	(void)state;
	c = must_load(put("big.conf", 0600, CML "resources = ( { name = "
	    "\"gpu\"; queue = \"gpu\"; instance_type = \"t3.micro\"; "
	    "ami = \"ami-1\";\n tags = { build-20240101123 = \"x\"; "
	    "b_99999999999 = \"y\"; }; } );\ncustom_launch_spec = { A = "
	    "99999999999L; B = 1.5e12; C = 99999999999.0; D = 2147483647; "
	    "E = -2147483648; };\n"));
	assert_int_equal(c->resources[0].ntags, 2);
	assert_string_equal(c->resources[0].tags[0].key, "build-20240101123");
	assert_true(cJSON_GetObjectItem(c->custom_launch_spec,
	    "A")->valuedouble == 99999999999.0);
	assert_true(cJSON_GetObjectItem(c->custom_launch_spec,
	    "E")->valuedouble == -2147483648.0);
	conf_free(c);
}

/* Every error is collected, in line order, not only the first. */
static void
test_all_errors(void **state)
{
	struct conf_errors	 errs = { NULL, 0 };
	const char		*text = CML "polling_interval = \"soon\";\n"
	    "max_requeues = 1000;\nlog_levl = \"info\";\n" ONE;
	const char		*path = put("many.conf", 0600, text);
	char			*want;

	(void)state;
	assert_null(conf_load(path, &errs));
	assert_int_equal(errs.n, 3);
	xasprintf(&want, "%s:2: polling_interval: \"soon\" is not a duration: "
	    "expected a number, as in 45s, 15m or 2h", path);
	assert_string_equal(errs.msg[0], want);
	free(want);
	xasprintf(&want, "%s:3: max_requeues must be from 0 to 100 (not 1000)",
	    path);
	assert_string_equal(errs.msg[1], want);
	free(want);
	xasprintf(&want, "%s:4: unknown key 'log_levl' (did you mean "
	    "'log_level'?)", path);
	assert_string_equal(errs.msg[2], want);
	free(want);
	conf_errors_clear(&errs);

	/* a missing file */
	assert_null(conf_load(tpath("nosuch.conf"), &errs));
	assert_int_equal(errs.n, 1);
	xasprintf(&want, "%s: cannot read the configuration: No such file or "
	    "directory", tpath("nosuch.conf"));
	assert_string_equal(errs.msg[0], want);
	free(want);
	conf_errors_clear(&errs);
}

static void
test_json_form(void **state)
{
	struct qscale_conf	*a, *b;
	char			*ja, *jb, *want;
	const char		*text, *path;

	(void)state;
	/* the hand-written JSON twin gives the same configuration */
	a = must_load(put_data("every-key.conf"));
	b = must_load(put_data("every-key.json"));
	ja = json_text(a, 1);
	jb = json_text(b, 1);
	assert_string_equal(ja, jb);
	free(ja);
	free(jb);
	assert_string_equal(conf_origin(b, "max_idle_time"),
	    tpath("every-key.json:5") + 0);
	conf_free(a);
	conf_free(b);

	text = "{\n  \"name\": \"x\",\n  \"resources\": [ }\n}\n";
	fail_at("bad.json", text, "\"resources\"", "JSON syntax error "
	    "(column 18)");
	/* cut short: the error is at the end, on the line after the last */
	path = put("eof.json", 0600, "{\n  \"name\": \"x\",\n");
	xasprintf(&want, "%s:3: JSON syntax error (column 1)", path);
	must_fail_with(path, want);
	free(want);
	fail_at("arr.json", "[1, 2]\n", "[", "a JSON configuration is one "
	    "object { ... }");
	text = "{\n \"clearml\": { \"api_server\": \"http://x\",\n"
	    "   \"access_key\": \"a\", \"secret_key\": \"s-1\" },\n"
	    " \"max_idle_time\":\n   \"soon\",\n \"resources\": [\n"
	    "  { \"name\": \"gpu\", \"queue\": \"gpu\",\n"
	    "    \"instance_type\": \"t3.micro\", \"ami\": \"ami-1\",\n"
	    "    \"max_instances\": \"two\" } ] }\n";
	fail_at("keys.json", text, "\"max_idle_time\"", "max_idle_time: "
	    "\"soon\" is not a duration: expected a number, as in 45s, 15m "
	    "or 2h");
	fail_at("keys.json", text, "\"max_instances\"", "resource \"gpu\": "
	    "max_instances must be an integer, not a string");
	text = "{\n \"clearml\": { \"api_server\": \"http://x\",\n"
	    "   \"access_key\": \"a\", \"secret_key\": \"s-1\" },\n"
	    " \"max_spin_up_time\": 20,\n \"resources\": [\n"
	    "  { \"name\": \"gpu\", \"queue\": \"gpu\",\n"
	    "    \"instance_type\": \"t3.micro\", \"ami\": \"ami-1\" } ] }\n";
	fail_at("bare.json", text, "\"max_spin_up_time\"", "max_spin_up_time "
	    "= 20: a duration needs a unit: write \"20m\" for 20 minutes (as "
	    "the ClearML app's fields mean it) or \"20s\" for 20 seconds");
	text = "{\n \"clearml\": { \"api_server\": \"http://x\",\n"
	    "   \"access_key\": \"a\", \"secret_key\": \"s-1\" },\n"
	    " \"name\": \"a\",\n \"name\": \"b\",\n \"resources\": [\n"
	    "  { \"name\": \"gpu\", \"queue\": \"gpu\", "
	    "\"instance_type\": \"t3.micro\", \"ami\": \"ami-1\",\n"
	    "    \"tags\": { \"a\": 1 }, \"polling\": 1 } ] }\n";
	fail_at("dupkey.json", text, "\"name\": \"b\"", "duplicate key 'name' "
	    "(first at line 4)");
	fail_at("dupkey.json", text, "\"tags\"", "resource \"gpu\": tags: the "
	    "value of \"a\" must be a string, not an integer");
	fail_at("dupkey.json", text, "\"tags\"", "unknown key 'polling' in "
	    "resource \"gpu\"");
	fail_at("dot.json", "{\n \"clearml.api_server\": \"http://x\" }\n",
	    "clearml.", "bad key 'clearml.api_server': write nested keys as "
	    "groups, as in clearml = { api_server = ...; }");
}

static void	check_print_reloads(const char *);

/* The ClearML app's comma lists and key=value tags. */
static void
test_app_lists(void **state)
{
	struct qscale_conf		*c;
	const struct conf_resource	*r;
	char				*s;

	(void)state;
	c = must_load(put("lists.conf", 0600, CML "resources = ( { name = "
	    "\"gpu\"; queue = \"gpu\";\n instance_type = \"t3.micro\"; "
	    "ami = \"ami-1\";\n subnets = \"subnet-1, subnet-2,subnet-3\";\n"
	    " security_groups = \"sg-1\";\n"
	    " tags = \"team=ml, owner = ops,empty=\"; } );\n"));
	r = &c->resources[0];
	assert_int_equal(r->nsubnets, 3);
	assert_string_equal(r->subnets[0], "subnet-1");
	assert_string_equal(r->subnets[1], "subnet-2");
	assert_string_equal(r->subnets[2], "subnet-3");
	assert_int_equal(r->nsecurity_groups, 1);
	assert_string_equal(r->security_groups[0], "sg-1");
	assert_int_equal(r->ntags, 3);
	assert_string_equal(r->tags[0].key, "team");
	assert_string_equal(r->tags[0].value, "ml");
	assert_string_equal(r->tags[1].key, "owner");
	assert_string_equal(r->tags[1].value, "ops");
	assert_string_equal(r->tags[2].key, "empty");
	assert_string_equal(r->tags[2].value, "");
	/* printed back as the lists they mean */
	s = json_text(c, 0);
	assert_non_null(strstr(s, "\"subnet-1\", \"subnet-2\", \"subnet-3\""));
	free(s);
	conf_free(c);
	fail_at("l1.conf", CML "resources = ( { name = \"gpu\"; queue = "
	    "\"gpu\";\n instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
	    " security_groups = \"sg-1,,sg-2\"; } );\n", "security_groups",
	    "resource \"gpu\": security_groups: \"sg-1,,sg-2\" has an empty "
	    "name (write \"a,b\" or [\"a\", \"b\"])");
	fail_at("l2.conf", CML "resources = ( { name = \"gpu\"; queue = "
	    "\"gpu\";\n instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
	    " tags = \"team=ml,owner\"; } );\n", "tags", "resource \"gpu\": "
	    "tags: \"owner\" is not key=value (write \"team=ml,owner=ops\" "
	    "or a group { team = \"ml\"; })");
	fail_at("l3.conf", CML "resources = ( { name = \"gpu\"; queue = "
	    "\"gpu\";\n instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
	    " tags = \"qscale:resource=x\"; } );\n", "tags", "resource "
	    "\"gpu\": tags: bad tag key \"qscale:resource\" (1 to 128 "
	    "characters, not starting with aws: or qscale:, which are "
	    "reserved)");
}

/* max_idle_time and max_spin_up_time per resource, else the global. */
static void
test_resource_timeouts(void **state)
{
	struct qscale_conf	*c;
	struct plan_conf	 pc;
	char			*s;

	(void)state;
	c = must_load(put("rt.conf", 0600, CML "max_idle_time = \"20m\";\n"
	    "defaults = { resource = { max_spin_up_time = \"40m\"; }; };\n"
	    "resources = ( " RES("a", "a") ",\n"
	    "{ name = \"b\"; queue = \"b\"; instance_type = \"t3.micro\"; "
	    "ami = \"ami-1\";\n max_idle_time = \"2m\"; "
	    "max_spin_up_time = \"5m\"; } );\n"));
	assert_int_equal(c->resources[0].max_idle_time, -1);
	assert_int_equal(c->resources[0].max_spin_up_time, 40 * 60000);
	assert_int_equal(c->resources[1].max_idle_time, 2 * 60000);
	plan_conf_from(&pc, c, &c->resources[0]);
	assert_int_equal(pc.max_idle_ms, 20 * 60000);
	assert_int_equal(pc.max_spin_up_ms, 40 * 60000);
	plan_conf_from(&pc, c, &c->resources[1]);
	assert_int_equal(pc.max_idle_ms, 2 * 60000);
	assert_int_equal(pc.max_spin_up_ms, 5 * 60000);
	/* unset prints as "", which loads back as unset */
	s = json_text(c, 1);
	assert_non_null(strstr(s, "\"max_idle_time\":\tnull"));
	free(s);
	check_print_reloads(put("rt2.conf", 0600, CML "resources = ( "
	    RES("a", "a") " );\n"));
	conf_free(c);
	fail_at("rt3.conf", CML "resources = ( { name = \"b\"; queue = "
	    "\"b\";\n instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
	    " max_idle_time = 10; } );\n", "max_idle_time", "resource \"b\": "
	    "max_idle_time = 10: a duration needs a unit: write \"10m\" for "
	    "10 minutes (as the ClearML app's fields mean it) or \"10s\" for "
	    "10 seconds");
}

/* What qscale owns in a launch is refused at load, with its line. */
static void
test_launch_spec_owned(void **state)
{
	const char	*text;

	(void)state;
	text = CML "custom_launch_spec = {\n  EbsOptimized = true;\n"
	    "  MaxCount = 10;\n  TagSpecifications = ( { ResourceType = "
	    "\"instance\";\n    Tags = ( { Key = \"team\"; Value = \"x\"; },"
	    "\n      { Key = \"qscale:resource\"; Value = \"y\"; } ); } );\n"
	    "};\n" ONE;
	fail_at("ls1.conf", text, "MaxCount", "custom_launch_spec.MaxCount is "
	    "set by qscale in every launch and cannot be given here (MinCount "
	    "and MaxCount follow the demand, UserData is the startup script, "
	    "ClientToken makes a retried call launch nothing twice)");
	fail_at("ls1.conf", text, "Key = \"qscale:", "custom_launch_spec."
	    "TagSpecifications element 1, Tags element 2: tag key "
	    "\"qscale:resource\" is reserved (keys starting with qscale: are "
	    "how qscale finds its instances, aws: is EC2's)");
	/* a string of JSON: its line; a resource's own names the resource */
	text = CML "resources = ( { name = \"gpu\"; queue = \"gpu\";\n"
	    " instance_type = \"t3.micro\"; ami = \"ami-1\";\n"
	    " custom_launch_spec = \"{\\\"UserData\\\": \\\"IyEK\\\"}\"; } );\n";
	fail_at("ls2.conf", text, "custom_launch_spec", "resource \"gpu\": "
	    "custom_launch_spec.UserData is set by qscale in every launch and "
	    "cannot be given here (MinCount and MaxCount follow the demand, "
	    "UserData is the startup script, ClientToken makes a retried call "
	    "launch nothing twice)");
	/* the JSON form: the key's own line */
	text = "{\n \"clearml\": { \"api_server\": \"http://x\",\n"
	    "   \"access_key\": \"a\", \"secret_key\": \"s-1\" },\n"
	    " \"custom_launch_spec\": { \"Monitoring\": {\"Enabled\": true},\n"
	    "   \"ClientToken\": \"x\" },\n \"resources\": [\n"
	    "  { \"name\": \"gpu\", \"queue\": \"gpu\",\n"
	    "    \"instance_type\": \"t3.micro\", \"ami\": \"ami-1\" } ] }\n";
	fail_at("ls3.json", text, "\"ClientToken\"", "custom_launch_spec."
	    "ClientToken is set by qscale in every launch and cannot be given "
	    "here (MinCount and MaxCount follow the demand, UserData is the "
	    "startup script, ClientToken makes a retried call launch nothing "
	    "twice)");
	/* in a defaults block too, though no resource is named there */
	text = CML "defaults = { resource = { custom_launch_spec = {\n"
	    "  MinCount = 2; }; }; };\n" ONE;
	fail_at("ls4.conf", text, "MinCount", "custom_launch_spec.MinCount is "
	    "set by qscale in every launch and cannot be given here (MinCount "
	    "and MaxCount follow the demand, UserData is the startup script, "
	    "ClientToken makes a retried call launch nothing twice)");
}

#define GPU_AT	"resources = ( { name = \"gpu\"; queue = \"gpu\";\n" \
		" instance_type = \"t3.micro\"; ami = \"ami-1\";\n"

/* Loads text; its one warning reads want, at the line of marker. */
static void
warns_with(const char *name, const char *text, const char *marker,
    const char *want)
{
	struct qscale_conf	*c;
	const char		*path = put(name, 0600, text);
	char			*full;

	c = must_load(path);
	xasprintf(&full, "%s:%d: %s", path, line_of(text, marker), want);
	if (c->warnings.n != 1 || strcmp(c->warnings.msg[0], full) != 0) {
		print_message("expected: %s\n", full);
		if (c->warnings.n > 0)
			print_message("got:      %s\n", c->warnings.msg[0]);
		fail_msg("%zu warnings", c->warnings.n);
	}
	free(full);
	conf_free(c);
}

/* Settings that would do nothing are said; EBS settings EC2 refuses. */
static void
test_noops(void **state)
{
	struct qscale_conf	*c;

	(void)state;
	c = must_load(put("quiet.conf", 0600, CML ONE));
	assert_int_equal(c->warnings.n, 0);
	conf_free(c);
	warns_with("n1.conf", CML GPU_AT " ebs = { type = \"io2\"; }; } );\n",
	    "ebs =", "resource \"gpu\": ebs settings do nothing without "
	    "ebs.size_gb: the AMI's root volume is used as it is (set "
	    "ebs.size_gb to give it a size, a type and its IOPS)");
	warns_with("n2.conf", CML GPU_AT " subnets = \"subnet-1\";\n"
	    " availability_zone = \"us-east-1a\"; } );\n", "availability_zone",
	    "resource \"gpu\": availability_zone \"us-east-1a\" is not used: "
	    "subnets are set, and each subnet lies in one zone");
	/* the spec's market options on an on-demand resource */
	warns_with("n2b.conf", CML "custom_launch_spec = {\n"
	    " InstanceMarketOptions = { MarketType = \"spot\"; }; };\n" ONE,
	    "custom_launch_spec", "resource \"gpu\": custom_launch_spec."
	    "InstanceMarketOptions does nothing while spot is false: qscale "
	    "launches on-demand without it (set spot = true for spot)");
	/* from a defaults block: that line */
	warns_with("n3.conf", CML "defaults = { resource = {\n"
	    "  availability_zone = \"us-east-1b\"; }; };\n" GPU_AT
	    " subnets = [ \"subnet-1\" ]; } );\n", "availability_zone",
	    "resource \"gpu\": availability_zone \"us-east-1b\" is not used: "
	    "subnets are set, and each subnet lies in one zone");
	fail_at("n4.conf", CML GPU_AT " ebs = { size_gb = 50;\n"
	    " type = \"io1\"; }; } );\n", " type = \"io1",
	    "resource \"gpu\": ebs.type io1 needs ebs.iops (100 to 64000): "
	    "EC2 refuses the launch without it");
	fail_at("n5.conf", CML GPU_AT " ebs = { size_gb = 50; type = \"gp2\";"
	    "\n iops = 5000; }; } );\n", "iops", "resource \"gpu\": ebs.iops "
	    "is for io1, io2 and gp3 volumes, not gp2");
	fail_at("n6.conf", CML GPU_AT " ebs = { size_gb = 50;\n"
	    " throughput = 2000; }; } );\n", "throughput", "resource \"gpu\": "
	    "ebs.throughput must be from 0 to 1000 (not 2000)");
	fail_at("n7.conf", CML GPU_AT " ebs = { size_gb = 50; type = \"io2\";"
	    "\n iops = 3000; throughput = 500; }; } );\n", "throughput",
	    "resource \"gpu\": ebs.throughput is for gp3 volumes, not io2");
	fail_at("n8.conf", CML GPU_AT " ebs = { size_gb = 50;\n"
	    " iops = 1000; }; } );\n", "iops", "resource \"gpu\": ebs.iops "
	    "must be from 3000 to 16000 for gp3 (not 1000)");
	/* what gp3 may need: IOPS for its throughput, size for its IOPS */
	fail_at("n10.conf", CML GPU_AT " ebs = { size_gb = 50;\n"
	    " throughput = 1000; }; } );\n", "throughput", "resource \"gpu\": "
	    "ebs.throughput 1000 MiB/s needs ebs.iops of at least 4000 (gp3 "
	    "gives 0.25 MiB/s per IOPS; its baseline is 3000)");
	fail_at("n11.conf", CML GPU_AT " ebs = { size_gb = 8; type = \"io1\";"
	    "\n iops = 1000; }; } );\n", "iops", "resource \"gpu\": ebs.iops "
	    "1000 needs ebs.size_gb of at least 20 (io1 allows 50 IOPS per "
	    "GiB)");
	c = must_load(put("n9.conf", 0600, CML GPU_AT " ebs = { size_gb = 50; "
	    "iops = 6000; throughput = 250; }; } );\n"));
	assert_int_equal(c->warnings.n, 0);
	assert_int_equal(c->resources[0].ebs.iops, 6000);
	assert_int_equal(c->resources[0].ebs.throughput, 250);
	conf_free(c);
}

/* qscalectl -c: the socket alone, whatever else the file holds. */
static void
test_peek_socket(void **state)
{
	char	*s, *note, *want;
	const char *path;

	(void)state;
	/* the rest need not load: a bad value, no resources */
	s = conf_peek_socket(put("p1.conf", 0644, "max_idle_time = 15;\n"
	    "control = { socket = \"/run/x.sock\"; };\n"), &note);
	assert_string_equal(s, "/run/x.sock");
	assert_null(note);
	free(s);
	/* through the layers: a matching match block over defaults */
	s = conf_peek_socket(put("p2.conf", 0600, "workers_prefix = "
	    "\"prod-a\";\ndefaults = { control = { socket = \"/d\"; }; };\n"
	    "match = ( { workers_prefix = \"^prod-\"; control = { socket = "
	    "\"/m\"; }; }, { workers_prefix = \"^dev-\"; control = { "
	    "socket = \"/n\"; }; } );\n"), &note);
	assert_string_equal(s, "/m");
	assert_null(note);
	free(s);
	/* unset: the default, no note (the file said nothing) */
	s = conf_peek_socket(put("p3.conf", 0600, "name = \"x\";\n"), &note);
	assert_string_equal(s, QS_DEFAULT_SOCKET);
	assert_null(note);
	free(s);
	/* half-way through an edit: found in the text, with a note */
	path = put("p4.conf", 0600, "control = {\n  socket = \"/run/q.sock\";"
	    "\n};\nresources = ( { name = \n");
	s = conf_peek_socket(path, &note);
	assert_string_equal(s, "/run/q.sock");
	assert_non_null(note);
	xasprintf(&want, "%s:", path);
	assert_true(strncmp(note, want, strlen(want)) == 0);
	assert_non_null(strstr(note, "; control.socket /run/q.sock found in "
	    "its text"));
	free(want);
	free(note);
	free(s);
	/* the JSON form, broken too */
	s = conf_peek_socket(put("p5.json", 0600, "{ \"control\": { "
	    "\"socket\": \"/j.sock\" },\n \"name\": }\n"), &note);
	assert_string_equal(s, "/j.sock");
	assert_non_null(note);
	free(note);
	free(s);
	/* nothing to go by: the default, and the note says so */
	s = conf_peek_socket(put("p6.conf", 0600, "resources = (\n"), &note);
	assert_string_equal(s, QS_DEFAULT_SOCKET);
	assert_non_null(strstr(note, "no control.socket found in it: using "
	    "the default " QS_DEFAULT_SOCKET));
	free(note);
	free(s);
}

static void
test_env(void **state)
{
	struct qscale_conf	*c;
	const char		*path, *text;
	char			*want;

	(void)state;
	/* clearml from the environment, when the file has none of it */
	setenv("CLEARML_API_HOST", "http://env-api:8008", 1);
	setenv("CLEARML_WEB_HOST", "http://env-web", 1);
	setenv("CLEARML_FILES_HOST", "http://env-files", 1);
	setenv("CLEARML_API_ACCESS_KEY", "ENVAK", 1);
	setenv("CLEARML_API_SECRET_KEY", "env-secret-1", 1);
	setenv("AWS_DEFAULT_REGION", "eu-west-3", 1);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
	setenv("AWS_PROFILE", "envprof", 1);
	/* no secret in the file: group-readable is fine */
	path = put("env.conf", 0644, ONE);
	c = must_load(path);
	assert_string_equal(c->clearml.api_server, "http://env-api:8008");
	assert_string_equal(c->clearml.web_server, "http://env-web");
	assert_string_equal(c->clearml.files_server, "http://env-files");
	assert_string_equal(c->clearml.access_key, "ENVAK");
	assert_string_equal(c->clearml.secret_key, "env-secret-1");
	assert_string_equal(conf_origin(c, "clearml.secret_key"),
	    "environment CLEARML_API_SECRET_KEY");
	assert_string_equal(c->aws.region, "eu-west-3");
	assert_string_equal(conf_origin(c, "aws.region"),
	    "environment AWS_DEFAULT_REGION");
	assert_string_equal(c->aws.endpoint, "http://127.0.0.1:1");
	assert_string_equal(c->aws.profile, "envprof");
	/* one half of the key pair is not taken */
	assert_null(c->aws.access_key_id);
	assert_null(c->aws.access_key_source);
	conf_free(c);

	/* AWS_REGION before AWS_DEFAULT_REGION, _EC2 before the plain one */
	setenv("AWS_REGION", "us-west-2", 1);
	setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:2", 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-aws-secret-2", 1);
	setenv("AWS_SESSION_TOKEN", "env-aws-token-3", 1);
	c = must_load(path);
	assert_string_equal(c->aws.region, "us-west-2");
	assert_string_equal(conf_origin(c, "aws.region"),
	    "environment AWS_REGION");
	assert_string_equal(c->aws.endpoint, "http://127.0.0.1:2");
	assert_string_equal(c->aws.access_key_id, "AKIAENV");
	assert_string_equal(c->aws.secret_access_key, "env-aws-secret-2");
	assert_string_equal(c->aws.session_token, "env-aws-token-3");
	assert_string_equal(c->aws.access_key_source,
	    "environment AWS_ACCESS_KEY_ID");
	conf_free(c);

	/* the file wins, key by key; the pair only as a pair */
	text = CML ONE "aws = {\n region = \"file-region\";\n"
	    " access_key_id = \"AKIAFILE\";\n secret_access_key = \"f-s-2\"; };"
	    "\n";
	path = put("envfile.conf", 0600, text);
	c = must_load(path);
	assert_string_equal(c->clearml.api_server, "http://127.0.0.1:8008");
	assert_string_equal(c->clearml.secret_key, "SECRET-cml-1");
	assert_string_equal(c->clearml.web_server, "http://env-web");
	assert_string_equal(c->aws.region, "file-region");
	assert_string_equal(c->aws.access_key_id, "AKIAFILE");
	assert_null(c->aws.session_token);
	xasprintf(&want, "%s:%d", path, line_of(text, "access_key_id"));
	assert_string_equal(c->aws.access_key_source, want);
	assert_string_equal(conf_origin(c, "aws.access_key_id"), want);
	free(want);
	conf_free(c);

	/* a key set in defaults counts as set by the file */
	c = must_load(put("envdef.conf", 0600, CML ONE
	    "defaults = { aws = { region = \"def-region\"; }; };\n"));
	assert_string_equal(c->aws.region, "def-region");
	conf_free(c);

	/* a bad value from the environment names the variable */
	setenv("CLEARML_API_HOST", "env-api:8008", 1);
	path = put("envbad.conf", 0600, ONE);
	xasprintf(&want, "%s: environment CLEARML_API_HOST: clearml.api_server "
	    "must be a URL starting with http:// or https:// (not "
	    "\"env-api:8008\")", path);
	must_fail_with(path, want);
	free(want);
	clean_env(NULL);
}

static void
test_secrecy(void **state)
{
	struct qscale_conf	*c;
	const char		*path, *inc;
	char			*want;

	(void)state;
	path = put("open.conf", 0644, CML ONE);
	xasprintf(&want, "%s: holds secrets but is readable by group or "
	    "others: run chmod 600 %s", path, path);
	must_fail_with(path, want);
	assert_int_equal(chmod(path, 0640), 0);
	must_fail_with(path, want);
	assert_int_equal(chmod(path, 0604), 0);
	must_fail_with(path, want);
	free(want);
	assert_int_equal(chmod(path, 0600), 0);
	c = must_load(path);
	conf_free(c);

	/* the included file that holds the secret is the one named */
	inc = put("secret-inc.conf", 0644, CML);
	path = put("main-inc.conf", 0600, "@include \"secret-inc.conf\"\n"
	    ONE);
	xasprintf(&want, "%s: holds secrets but is readable by group or "
	    "others: run chmod 600 %s", inc, inc);
	must_fail_with(path, want);
	free(want);
	/* a readable include without secrets is fine */
	put("plain-inc.conf", 0644, ONE);
	path = put("main-inc2.conf", 0600, CML
	    "@include \"plain-inc.conf\"\n");
	c = must_load(path);
	conf_free(c);

	/* JSON too, and a secret in a match block that does not apply */
	path = put("open.json", 0644, "{ \"git\": { \"password\": \"p-1\" } }");
	xasprintf(&want, "%s: holds secrets but is readable by group or "
	    "others: run chmod 600 %s", path, path);
	must_fail_with(path, want);
	free(want);
	setenv("CLEARML_API_HOST", "http://x", 1);
	setenv("CLEARML_API_ACCESS_KEY", "a", 1);
	setenv("CLEARML_API_SECRET_KEY", "env-s-1", 1);
	path = put("open-match.conf", 0644, ONE "match = ( { workers_prefix = "
	    "\"^nomatch$\"; git = { password = \"p-2\"; }; } );\n");
	xasprintf(&want, "%s: holds secrets but is readable by group or "
	    "others: run chmod 600 %s", path, path);
	must_fail_with(path, want);
	free(want);
	clean_env(NULL);
}

static void
test_include(void **state)
{
	struct qscale_conf	*c;
	const char		*path, *text;
	char			*want;

	(void)state;
	mkdir(tpath("inc"), 0700);
	mkdir(tpath("inc/sub"), 0700);
	/* relative to the including file, at every level */
	put("inc/sub/b.conf", 0600, "max_requeues = 7;\n");
	put("inc/sub/a.conf", 0600, "# a\n@include \"b.conf\"\n"
	    "max_idle_time = \"3m\";\n");
	text = "@include \"sub/a.conf\"\n" CML ONE "polling_intervl = 1;\n";
	path = put("inc/main.conf", 0600, text);
	xasprintf(&want, "%s:%d: unknown key 'polling_intervl' (did you mean "
	    "'polling_interval'?)", path, line_of(text, "polling_intervl"));
	must_fail_with(path, want);
	free(want);
	path = put("inc/main.conf", 0600, "@include \"sub/a.conf\"\n" CML ONE);
	c = must_load(path);
	assert_int_equal(c->max_requeues, 7);
	assert_int_equal(c->max_idle_time, 180000);
	xasprintf(&want, "%s:3", tpath("inc/sub/a.conf"));
	assert_string_equal(conf_origin(c, "max_idle_time"), want);
	free(want);
	assert_int_equal(c->nsrcfiles, 3);
	conf_free(c);

	/* errors in an included file name that file and its line */
	put("inc/sub/bad.conf", 0600, "\n\nmax_idle_time = \"soon\";\n");
	path = put("inc/main2.conf", 0600, CML "@include \"sub/bad.conf\"\n"
	    ONE);
	xasprintf(&want, "%s:3: max_idle_time: \"soon\" is not a duration: "
	    "expected a number, as in 45s, 15m or 2h",
	    tpath("inc/sub/bad.conf"));
	must_fail_with(path, want);
	free(want);
	put("inc/sub/syntax.conf", 0600, "x = 1;\ny = = 2;\n");
	path = put("inc/main3.conf", 0600, CML "@include \"sub/syntax.conf\"\n"
	    ONE);
	xasprintf(&want, "%s:2: syntax error", tpath("inc/sub/syntax.conf"));
	must_fail_with(path, want);
	free(want);

	/* a missing include, and a cycle */
	path = put("inc/main4.conf", 0600, CML ONE "@include \"none.conf\"\n");
	xasprintf(&want, "%s:3: @include: cannot read %s: No such file or "
	    "directory", path, tpath("inc/none.conf"));
	must_fail_with(path, want);
	free(want);
	put("inc/loop1.conf", 0600, "@include \"loop2.conf\"\n");
	put("inc/loop2.conf", 0600, "\n@include \"loop1.conf\"\n");
	path = put("inc/main5.conf", 0600, CML ONE "@include \"loop1.conf\"\n");
	xasprintf(&want, "%s:2: @include \"loop1.conf\": includes itself "
	    "(through %s)", tpath("inc/loop2.conf"), tpath("inc/loop2.conf"));
	must_fail_with(path, want);
	free(want);

	/* "@include" inside a string or a comment is not an include */
	c = must_load(put("inc/main6.conf", 0600, CML ONE
	    "agent = { init_script = \"a\n@include \\\"x\\\"\"; };\n"
	    "/* \n@include \"x\"\n */\n"));
	assert_string_equal(c->agent.init_script, "a\n@include \"x\"");
	conf_free(c);
}

/* ignore_include_errors: broken site files are left out, with warnings. */
static void
test_ignore_include_errors(void **state)
{
	struct qscale_conf	*c;
	const char		*path;
	char			*want;
	size_t			 i;

	(void)state;
	mkdir(tpath("ign"), 0700);
	put("ign/good.conf", 0600, "defaults = { max_requeues = 4; };\n");
	put("ign/syntax.conf", 0600, "\nlog_level = = \"debug\";\n");
	put("ign/keys.conf", 0600, "\nmax_idle_time = \"soon\";\n"
	    "agent = { init_script = \"echo keys\"; };\n");
	put("ign/inner.conf", 0600, "max_spin_up_time = \"nope\";\n");
	put("ign/outer.conf", 0600, "polling_interval = \"7s\";\n"
	    "@include \"inner.conf\"\n");

	/* off (the default): the errors stop the load, as before */
	path = put("ign/off.conf", 0600, CML ONE
	    "@include \"good.conf\"\n@include \"syntax.conf\"\n");
	xasprintf(&want, "%s:2: syntax error", tpath("ign/syntax.conf"));
	must_fail_with(path, want);
	free(want);

	/* on: a syntax error, a bad value, a missing file, a nested one */
	path = put("ign/on.conf", 0600, CML ONE
	    "ignore_include_errors = true;\n"
	    "@include \"good.conf\"\n@include \"syntax.conf\"\n"
	    "@include \"keys.conf\"\n@include \"none.conf\"\n"
	    "@include \"outer.conf\"\n");
	c = must_load(path);
	assert_int_equal(c->ignore_include_errors, 1);
	assert_int_equal(c->max_requeues, 4);		/* good.conf stays */
	assert_int_equal(c->max_idle_time, 15 * 60000);	/* keys.conf gone */
	assert_null(c->agent.init_script);
	assert_int_equal(c->polling_interval, 7000);	/* outer.conf stays */
	assert_int_equal(c->max_spin_up_time, 30 * 60000);
	for (i = 0; i < c->warnings.n; i++)
		print_message("warning: %s\n", c->warnings.msg[i]);
	xasprintf(&want, "%s:2: syntax error", tpath("ign/syntax.conf"));
	assert_true(has_msg(&c->warnings, want));
	free(want);
	xasprintf(&want, "%s:2: max_idle_time: \"soon\" is not a duration: "
	    "expected a number, as in 45s, 15m or 2h", tpath("ign/keys.conf"));
	assert_true(has_msg(&c->warnings, want));
	free(want);
	xasprintf(&want, "%s:1: max_spin_up_time: \"nope\" is not a "
	    "duration: expected a number, as in 45s, 15m or 2h",
	    tpath("ign/inner.conf"));
	assert_true(has_msg(&c->warnings, want));
	free(want);
	xasprintf(&want, "%s: left out, with its errors above "
	    "(ignore_include_errors = true)", tpath("ign/none.conf"));
	assert_true(has_msg(&c->warnings, want));
	free(want);
	xasprintf(&want, "%s: left out, with its errors above "
	    "(ignore_include_errors = true)", tpath("ign/keys.conf"));
	assert_true(has_msg(&c->warnings, want));
	free(want);
	conf_free(c);

	/* an error in the main file itself is never ignored */
	path = put("ign/main-bad.conf", 0600, CML ONE
	    "ignore_include_errors = true;\nmax_requeues = \"x\";\n"
	    "@include \"syntax.conf\"\n");
	c = conf_load(path, NULL);
	assert_null(c);

	/* nor when the key itself is only in a file that is left out */
	put("ign/key-in-bad.conf", 0600, "ignore_include_errors = true;\n"
	    "max_requeues = = 1;\n");
	path = put("ign/key-elsewhere.conf", 0600, CML ONE
	    "@include \"key-in-bad.conf\"\n");
	c = conf_load(path, NULL);
	assert_null(c);
}

/* vault_file: the app's vault text, with its own key names. */
static void
test_vault(void **state)
{
	struct qscale_conf	*c;
	const char		*path, *vault;
	char			*want;

	(void)state;
	mkdir(tpath("vault"), 0700);
	vault = "# the team's vault, as kept in ClearML\n"		/* 1 */
	    "sdk { aws { s3 { region: \"x\" } } }\n"		/* 2 */
	    "auto_scaler.v1.aws {\n"				/* 3 */
	    "   aws_region: \"eu-west-1\"\n"			/* 4 */
	    "   aws_access_key_id: AKIAVAULT\n"			/* 5 */
	    "   aws_secret_access_key = \"vault-SECRET\"\n"	/* 6 */
	    "   extra_vm_bash_script: \"\"\"\n"			/* 7 */
	    "echo \"vault\"\n"					/* 8 */
	    "\"\"\"\n"						/* 9 */
	    "   extra_clearml_conf: \"agent.x: 1\", // a comment\n"	/* 10 */
	    "   match {\n"						/* 11 */
	    "      \"^prod-\": { extra_vm_bash_script: \"echo prod\" }\n"
	    "      \"^dev-\" { aws_region: \"us-east-2\" }\n"	/* 13 */
	    "   }\n"						/* 14 */
	    "}\n"						/* 15 */
	    "auto_scaler.v1.aws.extra_clearml_conf: \"agent.y: 2\"\n";
	put("vault/vault.hocon", 0600, vault);
	path = put("vault/main.conf", 0600, CML ONE
	    "workers_prefix = \"prod-eu\";\n"
	    "vault_file = \"vault.hocon\";\n"
	    "agent = { init_script = \"echo form\"; };\n");
	c = must_load(path);
	assert_string_equal(c->aws.region, "eu-west-1");
	assert_string_equal(c->aws.access_key_id, "AKIAVAULT");
	assert_string_equal(c->aws.secret_access_key, "vault-SECRET");
	/* the form's text first, then the vault's, then its match */
	assert_string_equal(c->agent.init_script,
	    "echo form\n\necho \"vault\"\n\necho prod");
	/* the later setting of the same key replaces the earlier */
	assert_string_equal(c->agent.extra_clearml_conf, "agent.y: 2");
	xasprintf(&want, "vault %s:4", tpath("vault/vault.hocon"));
	assert_string_equal(conf_origin(c, "aws.region"), want);
	free(want);
	conf_free(c);

	/* the dev block applies to another prefix, over the vault's top */
	path = put("vault/dev.conf", 0600, CML ONE
	    "workers_prefix = \"dev-1\";\nvault_file = \"vault.hocon\";\n");
	c = must_load(path);
	assert_string_equal(c->aws.region, "us-east-2");
	conf_free(c);

	/* the file's own top level wins over the vault for a value */
	path = put("vault/own.conf", 0600, CML ONE
	    "vault_file = \"vault.hocon\";\naws = { region = \"ap-south-1\"; };\n");
	c = must_load(path);
	assert_string_equal(c->aws.region, "ap-south-1");
	conf_free(c);

	/* a vault holding secrets must not be readable by others */
	put("vault/open.hocon", 0644, vault);
	path = put("vault/open.conf", 0600, CML ONE
	    "vault_file = \"open.hocon\";\n");
	xasprintf(&want, "%s: holds secrets but is readable by group or "
	    "others: run chmod 600 %s", tpath("vault/open.hocon"),
	    tpath("vault/open.hocon"));
	must_fail_with(path, want);
	free(want);

	/* unknown and unsupported keys, with FILE:LINE */
	put("vault/bad.hocon", 0600, "auto_scaler.v1.aws {\n"
	    "  aws_regoin: \"x\"\n"
	    "  environment { A: \"b\" }\n"
	    "  match { \"^p\": { polling: 1 } }\n"
	    "}\n");
	path = put("vault/bad.conf", 0600, CML ONE
	    "vault_file = \"bad.hocon\";\n");
	xasprintf(&want, "%s:2: vault: unknown key 'aws_regoin' (qscale reads "
	    "aws_region, aws_access_key_id, aws_secret_access_key, "
	    "extra_vm_bash_script, extra_clearml_conf and match)",
	    tpath("vault/bad.hocon"));
	must_fail_with(path, want);
	free(want);
	xasprintf(&want, "%s:3: vault: environment: not supported: it sets "
	    "the environment of the app's own container; set it in qscaled's "
	    "service environment instead (/etc/default/qscaled or the "
	    "systemd unit)", tpath("vault/bad.hocon"));
	must_fail_with(path, want);
	free(want);
	xasprintf(&want, "%s:4: vault: match \"^p\": unknown key 'polling' "
	    "(qscale reads aws_region, aws_access_key_id, "
	    "aws_secret_access_key, extra_vm_bash_script, extra_clearml_conf "
	    "and match)", tpath("vault/bad.hocon"));
	must_fail_with(path, want);
	free(want);

	/* syntax: where it breaks */
	put("vault/syntax.hocon", 0600, "auto_scaler.v1.aws {\n"
	    "  aws_region: \"x\n}\n");
	path = put("vault/syntax.conf", 0600, CML ONE
	    "vault_file = \"syntax.hocon\";\n");
	xasprintf(&want, "%s:2: vault: unterminated string",
	    tpath("vault/syntax.hocon"));
	must_fail_with(path, want);
	free(want);
	put("vault/open-brace.hocon", 0600, "auto_scaler.v1.aws {\n"
	    "  extra_vm_bash_script: \"\"\"\n  echo\n");
	path = put("vault/ob.conf", 0600, CML ONE
	    "vault_file = \"open-brace.hocon\";\n");
	xasprintf(&want, "%s:2: vault: unterminated \"\"\" string (it starts "
	    "on this line)", tpath("vault/open-brace.hocon"));
	must_fail_with(path, want);
	free(want);
	put("vault/none.hocon", 0600, "sdk { x: 1 }\n");
	path = put("vault/none.conf", 0600, CML ONE
	    "vault_file = \"none.hocon\";\n");
	xasprintf(&want, "%s: vault: no auto_scaler.v1.aws { ... } object: "
	    "that is where the AWS Autoscaler's vault settings go",
	    tpath("vault/none.hocon"));
	must_fail_with(path, want);
	free(want);
	path = put("vault/missing.conf", 0600, CML ONE
	    "vault_file = \"nowhere.hocon\";\n");
	xasprintf(&want, "%s:3: vault_file: cannot read %s: No such file or "
	    "directory", path, tpath("vault/nowhere.hocon"));
	must_fail_with(path, want);
	free(want);

	/* and a broken vault is left out with ignore_include_errors */
	path = put("vault/ign.conf", 0600, CML ONE
	    "vault_file = \"syntax.hocon\";\nignore_include_errors = true;\n");
	c = must_load(path);
	assert_null(c->aws.region);
	xasprintf(&want, "%s:2: vault: unterminated string",
	    tpath("vault/syntax.hocon"));
	assert_true(has_msg(&c->warnings, want));
	free(want);
	conf_free(c);
}

static void
test_layers(void **state)
{
	struct qscale_conf	*c;
	const struct conf_resource *r;
	const char		*site, *path;
	char			*want;

	(void)state;
	mkdir(tpath("lay"), 0700);
	site = "defaults = {\n"				/* 1 */
	    "  polling_interval = \"10s\";\n"		/* 2 */
	    "  max_idle_time = \"5m\";\n"		/* 3 */
	    "  agent = { init_script = \"echo site\"; };\n"	/* 4 */
	    "  resource = { ami = \"ami-site\"; max_instances = 3;\n" /* 5 */
	    "    tags = { team = \"site\"; cost = \"x\"; }; };\n"	/* 6 */
	    "};\n"					/* 7 */
	    "match = (\n"				/* 8 */
	    "  { workers_prefix = \"^prod-\";\n"	/* 9 */
	    "    max_idle_time = \"1h\";\n"		/* 10 */
	    "    max_requeues = 5;\n"			/* 11 */
	    "    agent = { extra_vm_bash_script = \"echo prod\"; };\n" /* 12 */
	    "    resource = { spot = true; tags = { env = \"prod\"; }; }; },\n"
	    "  { workers_prefix = \"^dev-\"; max_idle_time = \"2m\";\n" /* 14 */
	    "    agent = { init_script = \"echo dev\"; }; },\n"	/* 15 */
	    "  { workers_prefix = \"-eu$\"; max_requeues = 6;\n"	/* 16 */
	    "    agent = { extra_clearml_conf = \"x = 1\"; }; }\n"	/* 17 */
	    ");\n";
	put("lay/site.conf", 0600, site);
	path = put("lay/main.conf", 0600,
	    "@include \"site.conf\"\n"			/* 1 */
	    "workers_prefix = \"prod-eu\";\n"		/* 2 */
	    CML						/* 3 */
	    "max_requeues = 1;\n"			/* 4 */
	    "agent = { init_script = \"echo main\";\n"	/* 5 */
	    "  extra_clearml_conf = \"y = 2\"; };\n"	/* 6 */
	    "resources = (\n"				/* 7 */
	    "  { name = \"gpu\"; queue = \"gpu\"; instance_type = \"g\";\n"
	    "    tags = { team = \"ml\"; }; },\n"	/* 9 */
	    "  { name = \"cpu\"; queue = \"cpu\"; instance_type = \"c\";\n"
	    "    ami = \"ami-own\"; spot = false; }\n"	/* 11 */
	    ");\n");
	c = must_load(path);
	/* built-in < defaults < matching blocks in order < top level */
	assert_int_equal(c->polling_interval, 10000);
	assert_int_equal(c->max_idle_time, 3600000);
	assert_int_equal(c->max_requeues, 1);
	assert_int_equal(c->max_spin_up_time, 1800000);
	xasprintf(&want, "defaults %s:2", tpath("lay/site.conf"));
	assert_string_equal(conf_origin(c, "polling_interval"), want);
	free(want);
	xasprintf(&want, "match \"^prod-\" %s:10", tpath("lay/site.conf"));
	assert_string_equal(conf_origin(c, "max_idle_time"), want);
	free(want);
	assert_string_equal(conf_origin(c, "max_spin_up_time"), "default");
	/*
	 * appended as the app appends its vault: the top level first, then
	 * defaults, then the matching blocks, so the most specific text is
	 * last (and wins in clearml.conf); the synonym is the same key
	 */
	assert_string_equal(c->agent.init_script,
	    "echo main\necho site\necho prod");
	xasprintf(&want, "%s:5, defaults %s:4, match \"^prod-\" %s:12",
	    path, tpath("lay/site.conf"), tpath("lay/site.conf"));
	assert_string_equal(conf_origin(c, "agent.init_script"), want);
	free(want);
	assert_string_equal(c->agent.extra_clearml_conf, "y = 2\nx = 1");

	assert_int_equal(c->nresources, 2);
	r = &c->resources[0];
	assert_string_equal(r->ami, "ami-site");
	assert_int_equal(r->max_instances, 3);
	assert_int_equal(r->spot, 1);
	assert_int_equal(r->ntags, 3);
	assert_string_equal(r->tags[0].key, "team");
	assert_string_equal(r->tags[0].value, "ml");
	assert_string_equal(r->tags[1].key, "cost");
	assert_string_equal(r->tags[2].key, "env");
	xasprintf(&want, "match \"^prod-\" %s:13", tpath("lay/site.conf"));
	assert_string_equal(conf_origin(c, "resources.gpu.tags.env"), want);
	assert_string_equal(conf_origin(c, "resources.gpu.spot"), want);
	free(want);
	xasprintf(&want, "%s:9", path);
	assert_string_equal(conf_origin(c, "resources.gpu.tags.team"), want);
	free(want);
	r = &c->resources[1];
	assert_string_equal(r->ami, "ami-own");
	assert_int_equal(r->spot, 0);
	assert_int_equal(r->max_instances, 3);
	assert_int_equal(r->ntags, 3);
	conf_free(c);

	/* another prefix picks other blocks */
	path = put("lay/dev.conf", 0600, "@include \"site.conf\"\n"
	    "workers_prefix = \"dev-x\";\n" CML ONE);
	c = must_load(path);
	assert_int_equal(c->max_idle_time, 120000);
	assert_int_equal(c->max_requeues, 2);
	assert_string_equal(c->agent.init_script, "echo site\necho dev");
	assert_int_equal(c->resources[0].spot, 0);
	assert_string_equal(c->resources[0].ami, "ami-1");
	conf_free(c);
}

/* conf_print()'s text loads again into the same configuration. */
static void
check_print_reloads(const char *path)
{
	struct qscale_conf	*a, *b;
	struct conf_errors	 errs = { NULL, 0 };
	char			*text, *ja, *jb, *pa, *pb;
	const char		*p2;
	size_t			 i;

	a = must_load(path);
	text = conf_print(a, CONF_PRINT_SECRETS);
	p2 = put("printed.conf", 0600, text);
	free(text);
	b = must_load(p2);
	ja = json_text(a, 1);
	jb = json_text(b, 1);
	assert_string_equal(ja, jb);
	free(ja);
	free(jb);
	/* and prints the same again, origins aside */
	pa = conf_print(a, CONF_PRINT_SECRETS | CONF_PRINT_NO_ORIGINS);
	pb = conf_print(b, CONF_PRINT_SECRETS | CONF_PRINT_NO_ORIGINS);
	assert_string_equal(strchr(pa, '\n'), strchr(pb, '\n'));
	free(pa);
	free(pb);
	conf_free(b);

	/* masked, it loads but for the secrets */
	text = conf_print(a, 0);
	p2 = put("printed-masked.conf", 0600, text);
	free(text);
	assert_null(conf_load(p2, &errs));
	assert_true(errs.n > 0);
	for (i = 0; i < errs.n; i++)
		assert_non_null(strstr(errs.msg[i], "exported with its "
		    "secrets masked"));
	conf_errors_clear(&errs);
	conf_free(a);
}

static void
test_print(void **state)
{
	struct qscale_conf	*c;
	const char		*path;
	char			*text, *want;

	(void)state;
	setenv("AWS_REGION", "ap-south-1", 1);
	path = put_data("every-key.conf");
	c = must_load(path);
	conf_register_secrets(c);
	text = conf_print(c, 0);
	assert_null(strstr(text, "EK-cml-secret-1"));
	assert_null(strstr(text, "EK-aws-secret-2"));
	assert_null(strstr(text, "EK-aws-token-3"));
	assert_null(strstr(text, "EK-git-secret-4"));
	assert_null(strstr(text, "EK-agent-secret-5"));
	assert_non_null(strstr(text, "  secret_key = \"********\";  # "));
	assert_non_null(strstr(text, "max_idle_time = \"90m\";  # "));
	assert_non_null(strstr(text, "request_timeout = \"500ms\";  # "));
	xasprintf(&want, "polling_interval = \"45s\";  # %s:4\n", path);
	assert_non_null(strstr(text, want));
	free(want);
	assert_non_null(strstr(text, "init_script = \"echo one\\necho "
	    "\\\"two\\\"\";"));
	assert_non_null(strstr(text, "( \"kubernetes.io/cluster\", "
	    "\"owned\" )"));
	free(text);
	conf_free(c);
	mask_clear();

	/* where values came from: default, file:line, environment, match */
	path = put("origins.conf", 0600, "workers_prefix = \"prod-1\";\n"
	    "match = ( { workers_prefix = \"^prod-\";\n"
	    "  max_idle_time = \"1h\"; } );\n" CML ONE);
	c = must_load(path);
	text = conf_print(c, 0);
	assert_non_null(strstr(text, "max_spin_up_time = \"30m\";  # "
	    "default\n"));
	assert_non_null(strstr(text, "region = \"ap-south-1\";  # environment "
	    "AWS_REGION\n"));
	xasprintf(&want, "max_idle_time = \"1h\";  # match \"^prod-\" %s:3\n",
	    path);
	assert_non_null(strstr(text, want));
	free(want);
	xasprintf(&want, "workers_prefix = \"prod-1\";  # %s:1\n", path);
	assert_non_null(strstr(text, want));
	free(want);
	free(text);
	conf_free(c);
	clean_env(NULL);

	check_print_reloads(put_data("every-key.conf"));
	check_print_reloads(path);
	check_print_reloads(put("min.conf", 0600, CML ONE
	    "status = { listen = \"\"; };\n"));
}

static void
test_export(void **state)
{
	struct qscale_conf	*a, *b, *m;
	struct conf_errors	 errs = { NULL, 0 };
	char			*ja, *jb, *ma, *mb;
	const char		*p;
	cJSON			*j;

	(void)state;
	a = must_load(put_data("every-key.conf"));
	ja = json_text(a, 1);
	p = put("exported.json", 0600, ja);
	b = must_load(p);
	jb = json_text(b, 1);
	assert_string_equal(ja, jb);		/* load, export, load, export */
	/* the same without secrets */
	ma = json_text(a, 0);
	mb = json_text(b, 0);
	assert_string_equal(ma, mb);
	assert_null(strstr(ma, "EK-cml-secret-1"));
	assert_null(strstr(ma, "EK-agent-secret-5"));
	assert_non_null(strstr(ma, "\"secret_key\":\t\"********\""));
	/* a masked export does not load: it says why, at each secret */
	p = put("masked.json", 0600, ma);
	assert_null(conf_load(p, &errs));
	assert_int_equal(errs.n, 5);
	assert_non_null(strstr(errs.msg[0], "clearml.secret_key is "
	    "\"********\": this configuration was exported with its secrets "
	    "masked"));
	assert_int_equal(strncmp(errs.msg[0], p, strlen(p)), 0);
	conf_errors_clear(&errs);
	/* the fields came through, not only the text */
	assert_int_equal(b->max_idle_time, 5400000);
	assert_string_equal(b->resources[1].tags[0].key,
	    "kubernetes.io/cluster");
	j = conf_to_json(b, 1);
	assert_true(cJSON_IsObject(cJSON_GetObjectItem(j,
	    "custom_launch_spec")));
	cJSON_Delete(j);
	free(ja);
	free(jb);
	free(ma);
	free(mb);
	conf_free(b);
	conf_free(a);

	/* a secret that also sits in another value is masked there too */
	m = must_load(put("embedded.conf", 0600, CML
	    "git = { user = \"bot\"; password = \"EMB-git-pw-77\"; };\n"
	    "agent = { init_script = \"git clone https://bot:EMB-git-pw-77@"
	    "example.org/x\"; };\n" ONE));
	conf_register_secrets(m);
	ma = json_text(m, 0);
	assert_null(strstr(ma, "EMB-git-pw-77"));
	assert_non_null(strstr(ma, "https://bot:********@example.org/x"));
	free(ma);
	ma = json_text(m, 1);			/* --with-secrets: all of it */
	assert_non_null(strstr(ma, "https://bot:EMB-git-pw-77@example.org"));
	free(ma);
	conf_free(m);
	mask_clear();

	/* a minimal configuration round-trips too, unset keys as null */
	m = must_load(put("min.conf", 0600, CML ONE));
	ja = json_text(m, 1);
	assert_non_null(strstr(ja, "\"web_server\":\tnull"));
	b = must_load(put("min.json", 0600, ja));
	jb = json_text(b, 1);
	assert_string_equal(ja, jb);
	free(ja);
	free(jb);
	conf_free(b);
	conf_free(m);
}

static char *
fp_of(const char *text, const char *res)
{
	struct qscale_conf	*c = must_load(put("fp.conf", 0600, text));
	const struct conf_resource *r = conf_resource_find(c, res);
	char			*fp;

	assert_non_null(r);
	fp = conf_resource_fingerprint(c, (size_t)(r - c->resources));
	conf_free(c);
	return fp;
}

static void
test_fingerprint(void **state)
{
	static const char *const same[] = {	/* the supervisor's own keys */
		"log_level = \"debug\";", "log_dir = \"/tmp/x\";",
		"pid_file = \"/tmp/x.pid\";", "control = { socket = \"/x\"; };",
		"status = { listen = \"\"; };", "max_instances_total = 9;",
		"warn_duplicate_tasks = false;",
	};
	static const char *const all[] = {	/* what every worker reads */
		"polling_interval = \"5s\";", "max_idle_time = \"1m\";",
		"name = \"other\";", "workers_prefix = \"w2\";",
		"clearml = { api_server = \"http://127.0.0.1:8008\"; "
		    "access_key = \"AK\"; secret_key = \"SECRET-cml-2\"; };",
		"aws = { region = \"eu-north-1\"; };",
		"agent = { init_script = \"echo\"; };",
		"git = { user = \"u\"; };",
		"iam_instance_profile = { name = \"p\"; };",
		"custom_launch_spec = { A = 1; };", "max_requeues = 3;",
		"vanished_worker_grace = \"1m\";",
		"spot_blackout_scope = \"resource\";",
	};
	const char	*base_res = "resources = (\n " RES("gpu", "gpu") ",\n "
	    RES("cpu", "cpu") "\n);\n";
	char		*text, *g0, *c0, *g1, *c1;
	size_t		 i;

	(void)state;
	xasprintf(&text, "%s%s%s", CML, "max_idle_time = \"15m\";\n",
	    base_res);
	g0 = fp_of(text, "gpu");
	c0 = fp_of(text, "cpu");
	assert_string_not_equal(g0, c0);
	g1 = fp_of(text, "gpu");
	assert_string_equal(g0, g1);		/* deterministic */
	free(g1);
	free(text);
	for (i = 0; i < QS_ARRAYLEN(same); i++) {
		xasprintf(&text, "%s%s\n%s", CML, same[i], base_res);
		g1 = fp_of(text, "gpu");
		c1 = fp_of(text, "cpu");
		if (strcmp(g0, g1) != 0)
			fail_msg("'%s' changed the fingerprint", same[i]);
		assert_string_equal(c0, c1);
		free(g1);
		free(c1);
		free(text);
	}
	for (i = 0; i < QS_ARRAYLEN(all); i++) {
		xasprintf(&text, "%s%s\n%s", strstr(all[i], "clearml") ==
		    all[i] ? "" : CML, all[i], base_res);
		g1 = fp_of(text, "gpu");
		c1 = fp_of(text, "cpu");
		if (strcmp(g0, g1) == 0 || strcmp(c0, c1) == 0)
			fail_msg("'%s' did not change the fingerprints",
			    all[i]);
		free(g1);
		free(c1);
		free(text);
	}
	/* one resource's change is that resource's alone */
	xasprintf(&text, "%sresources = (\n " RES("gpu", "gpu") ",\n { name = "
	    "\"cpu\"; queue = \"cpu\"; instance_type = \"c5.large\"; ami = "
	    "\"ami-1\"; }\n);\n", CML);
	g1 = fp_of(text, "gpu");
	c1 = fp_of(text, "cpu");
	assert_string_equal(g0, g1);
	assert_string_not_equal(c0, c1);
	free(g1);
	free(c1);
	free(text);
	/* nor does the order of the resources matter */
	xasprintf(&text, "%sresources = (\n " RES("cpu", "cpu") ",\n "
	    RES("gpu", "gpu") "\n);\n", CML);
	g1 = fp_of(text, "gpu");
	assert_string_equal(g0, g1);
	free(g1);
	free(text);
	free(g0);
	free(c0);
}

static void
test_listen_and_names(void **state)
{
	static const struct {
		const char	*listen;
		int		 loopback;
	} good[] = {
		{ "127.0.0.1:9800", 1 }, { "127.1.2.3:1", 1 },
		{ "localhost:80", 1 }, { "[::1]:9800", 1 },
		{ "0.0.0.0:9800", 0 }, { "10.1.2.3:80", 0 },
		{ "[::]:9800", 0 }, { "status.example.org:8080", 0 },
	};
	static const char *const bad[] = { "127.0.0.1", ":80", "::1:80",
	    "127.0.0.1:0", "127.0.0.1:x", "[::1]80", "[nothex]:80",
	    "a b:80" };
	struct qscale_conf	*c;
	struct conf_errors	 errs = { NULL, 0 };
	char			*text;
	size_t			 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(good); i++) {
		xasprintf(&text, CML ONE "status = { listen = \"%s\"; };\n",
		    good[i].listen);
		c = must_load(put("l.conf", 0600, text));
		assert_string_equal(c->status_listen, good[i].listen);
		assert_int_equal(c->status_loopback, good[i].loopback);
		conf_free(c);
		free(text);
	}
	for (i = 0; i < QS_ARRAYLEN(bad); i++) {
		xasprintf(&text, CML ONE "status = { listen = \"%s\"; };\n",
		    bad[i]);
		assert_null(conf_load(put("l.conf", 0600, text), &errs));
		assert_int_equal(errs.n, 1);
		assert_non_null(strstr(errs.msg[0], "status.listen"));
		conf_errors_clear(&errs);
		free(text);
	}
	/* "" turns the status server off */
	c = must_load(put("l.conf", 0600, CML ONE
	    "status = { listen = \"\"; };\n"));
	assert_null(c->status_listen);
	conf_free(c);
	/* names that may go into worker ids, tags and globs */
	c = must_load(put("n.conf", 0600, CML "workers_prefix = \"a.B-9_x\";\n"
	    "resources = ( " RES("Gpu.big-1_x", "q") " );\n"));
	assert_string_equal(c->workers_prefix, "a.B-9_x");
	conf_free(c);
	for (i = 0; i < 4; i++) {
		xasprintf(&text, CML ONE "workers_prefix = \"%s\";\n",
		    (const char *[]){ "a*", "a?", "a[", "" }[i]);
		assert_null(conf_load(put("n.conf", 0600, text), &errs));
		assert_int_equal(errs.n, 1);
		conf_errors_clear(&errs);
		free(text);
	}
}

/* The example is valid and documents every key. */
static void
test_example(void **state)
{
	struct qscale_conf	*c;
	const char		*path, *leaf;
	char			*text, *want;
	size_t			 i;

	(void)state;
	path = put_src("etc/qscale.conf.example", "example.conf");
	c = must_load(path);
	assert_int_equal(c->nresources, 1);
	conf_free(c);
	text = slurp(path);
	for (i = 0; i < conf_nglobal_keys + conf_nresource_keys; i++) {
		leaf = i < conf_nglobal_keys ? conf_global_keys[i].path :
		    conf_resource_keys[i - conf_nglobal_keys].path;
		if (strrchr(leaf, '.') != NULL)
			leaf = strrchr(leaf, '.') + 1;
		xasprintf(&want, " %s = ", leaf);
		if (strstr(text, want) == NULL && strncmp(text, want + 1,
		    strlen(want + 1)) != 0 && strstr(text, want + 1) == NULL)
			fail_msg("the example does not document %s", leaf);
		free(want);
	}
	assert_non_null(strstr(text, "extra_vm_bash_script"));
	assert_non_null(strstr(text, "@include"));
	assert_non_null(strstr(text, "match = ("));
	free(text);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_every_key, clean_env),
		cmocka_unit_test_setup(test_defaults, clean_env),
		cmocka_unit_test_setup(test_durations, clean_env),
		cmocka_unit_test_setup(test_errors, clean_env),
		cmocka_unit_test_setup(test_bad_regex, clean_env),
		cmocka_unit_test_setup(test_many_resources, clean_env),
		cmocka_unit_test_setup(test_duplicates, clean_env),
		cmocka_unit_test_setup(test_big_integers, clean_env),
		cmocka_unit_test_setup(test_all_errors, clean_env),
		cmocka_unit_test_setup(test_json_form, clean_env),
		cmocka_unit_test_setup(test_app_lists, clean_env),
		cmocka_unit_test_setup(test_resource_timeouts, clean_env),
		cmocka_unit_test_setup(test_launch_spec_owned, clean_env),
		cmocka_unit_test_setup(test_noops, clean_env),
		cmocka_unit_test_setup(test_peek_socket, clean_env),
		cmocka_unit_test_setup(test_env, clean_env),
		cmocka_unit_test_setup(test_secrecy, clean_env),
		cmocka_unit_test_setup(test_include, clean_env),
		cmocka_unit_test_setup(test_ignore_include_errors, clean_env),
		cmocka_unit_test_setup(test_vault, clean_env),
		cmocka_unit_test_setup(test_layers, clean_env),
		cmocka_unit_test_setup(test_print, clean_env),
		cmocka_unit_test_setup(test_export, clean_env),
		cmocka_unit_test_setup(test_fingerprint, clean_env),
		cmocka_unit_test_setup(test_listen_and_names, clean_env),
		cmocka_unit_test_setup(test_example, clean_env),
	};
	int	 rc;

	snprintf(tmpdir, sizeof(tmpdir), "%s/qscale-conf.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	umask(022);
	log_init("test_config", LOG_LVL_WARN, 1);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	mask_clear();
	return rc;
}
