/*
 * check.c: qscaled --check.  Before an operator starts the daemon, try
 * what it will do with this configuration, without changing anything:
 * get the AWS credentials (and say where they came from), then for
 * every resource look up its subnets, security groups, AMI and key pair,
 * make a DryRun RunInstances with its full launch request (the real
 * startup script included) in each of its subnets (or its zone), and a
 * DescribeInstances with the ownership tags.  One line per check, OK or
 * FAIL; a failure names the AWS code, its class, and the configuration
 * key at fault with where it was set.  Exit 0 only if everything passed.
 *
 * The checks run in parallel on a loop of their own; lines are printed
 * in a fixed order as soon as the ones before them are done.  Each
 * group of checks (AWS here, ClearML in check_clearml.c) is one entry
 * of check_steps[].
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common.h"
#include "ec2.h"
#include "http.h"
#include "supervisor.h"
#include "worker.h"

#define CHECK_GUARD_MS	(10 * 60 * 1000)	/* nothing may hang */

enum check_kind {
	CK_ACCOUNT,	/* DescribeInstances of the autoscaler */
	CK_SUBNET,
	CK_GROUP,
	CK_AMI,
	CK_KEYPAIR,
	CK_DRYRUN,
	CK_OWNED,	/* DescribeInstances, both ownership tags */
};

struct check_line {
	int		 done;
	int		 failed;	/* 1: FAIL, 0: OK, -1: SKIP */
	char		*text;
};

struct check_aws;

/* One check in flight. */
struct check_op {
	struct check_aws	*ca;
	size_t			 line;
	enum check_kind		 kind;
	ssize_t			 res;	/* resource index, or -1 */
	ssize_t			 item;	/* subnet or group index */
	char			 what[160];	/* for the line */
};

struct check_aws {
	const struct qscale_conf	*conf;
	struct event_base		*base;
	struct ec2_client		*ec2;
	struct check_line		*lines;
	size_t				 nlines;
	size_t				 printed;
	int				 pending;
	int				 failures;
	char				**user_data;	/* of each */
	struct event			*guard;
};

static size_t
line_new(struct check_aws *ca)
{
	ca->lines = xreallocarray(ca->lines, ca->nlines + 1,
	    sizeof(*ca->lines));
	memset(&ca->lines[ca->nlines], 0, sizeof(ca->lines[0]));
	return ca->nlines++;
}

/* Prints every finished line that has no unfinished one before it. */
static void
lines_flush(struct check_aws *ca)
{
	struct check_line	*l;
	char			*m;

	while (ca->printed < ca->nlines && ca->lines[ca->printed].done) {
		l = &ca->lines[ca->printed++];
		m = mask_dup(l->text);
		printf("%s %s\n", l->failed > 0 ? "FAIL" : l->failed < 0 ?
		    "SKIP" : "OK", m);
		free(m);
	}
	fflush(stdout);
}

static void
line_set(struct check_aws *ca, size_t i, int failed, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
line_set(struct check_aws *ca, size_t i, int failed, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	if (vasprintf(&ca->lines[i].text, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	ca->lines[i].failed = failed;
	ca->lines[i].done = 1;
	if (failed > 0)
		ca->failures++;
	lines_flush(ca);
}

static const struct conf_resource *
op_res(const struct check_op *op)
{
	return op->res >= 0 ? &op->ca->conf->resources[op->res] : NULL;
}

/*
 * Where a key was set ("FILE:LINE", "environment VAR"), as the
 * configuration recorded it, else where its resource block starts.
 */
void
check_key_where(const struct qscale_conf *conf, const struct conf_resource *r,
    const char *key, char *buf, size_t len)
{
	const char	*o = key != NULL ? conf_origin(conf, key) : NULL;

	if (o != NULL && strcmp(o, "default") != 0)
		snprintf(buf, len, "%s", o);
	else if (r != NULL && r->file != NULL)
		snprintf(buf, len, "%s:%d", r->file, r->line);
	else
		snprintf(buf, len, "%s", conf->file != NULL ?
		    conf->file : "the configuration");
}

static int
code_is(const char *code, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(code, *set) == 0)
			return 1;
	return 0;
}

static int
code_starts(const char *code, const char *prefix)
{
	return strncmp(code, prefix, strlen(prefix)) == 0;
}

/* The index of the first of n values mentioned in the message, or -1. */
static ssize_t
mentioned(const char *msg, char *const *v, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (v[i] != NULL && *v[i] != '\0' && strstr(msg, v[i]) != NULL)
			return (ssize_t)i;
	return -1;
}

/* "aws.access_key_id and aws.secret_access_key, FILE:LINE" and so on. */
static void
creds_key(struct check_aws *ca, char *buf, size_t len)
{
	const char	*src = aws_creds_source(ec2_client_creds(ca->ec2));

	if (src == NULL)
		src = "";
	if (strncmp(src, "config ", 7) == 0)
		snprintf(buf, len, "aws.access_key_id and "
		    "aws.secret_access_key, %s", src + 7);
	else if (strcmp(src, "config") == 0)
		snprintf(buf, len, "aws.access_key_id and "
		    "aws.secret_access_key, %s", ca->conf->file != NULL ?
		    ca->conf->file : "the configuration");
	else if (strncmp(src, "environment", 11) == 0)
		snprintf(buf, len, "AWS_ACCESS_KEY_ID and "
		    "AWS_SECRET_ACCESS_KEY, environment");
	else
		snprintf(buf, len, "aws credentials, %s", src);
}

static void
profile_key(const struct check_op *op, char *buf, size_t len)
{
	const struct conf_resource	*r = op_res(op);
	const struct conf_iam_profile	*p;
	char				 key[160], where[256];

	if (r != NULL && (r->iam_instance_profile.arn != NULL ||
	    r->iam_instance_profile.name != NULL)) {
		p = &r->iam_instance_profile;
		snprintf(key, sizeof(key), "resources.%s.iam_instance_profile."
		    "%s", r->name, p->arn != NULL ? "arn" : "name");
	} else {
		p = &op->ca->conf->iam_instance_profile;
		snprintf(key, sizeof(key), "iam_instance_profile.%s",
		    p->arn != NULL ? "arn" : "name");
		r = NULL;
	}
	check_key_where(op->ca->conf, r, key, where, sizeof(where));
	snprintf(buf, len, "%s, %s", key, where);
}

/* The resource key an error points at: "subnets[1]", "ami", ... */
static int
res_key(const struct check_op *op, const struct ec2_error *e, char *key,
    size_t len)
{
	const struct conf_resource	*r = op_res(op);
	const char			*c = e->code, *m = e->message;
	ssize_t				 i;

	if (r == NULL)
		return -1;
	if (code_starts(c, "InvalidSubnet")) {
		i = op->kind == CK_SUBNET || op->kind == CK_DRYRUN ? op->item :
		    -1;
		if (i < 0)
			i = mentioned(m, r->subnets, r->nsubnets);
		if (i >= 0)
			snprintf(key, len, "subnets[%zd]", i);
		else
			snprintf(key, len, "subnets");
	} else if (code_starts(c, "InvalidGroup") ||
	    code_starts(c, "InvalidSecurityGroup")) {
		i = op->kind == CK_GROUP ? op->item : mentioned(m,
		    r->security_groups, r->nsecurity_groups);
		if (i >= 0)
			snprintf(key, len, "security_groups[%zd]", i);
		else
			snprintf(key, len, "security_groups");
	} else if (code_starts(c, "InvalidAMIID"))
		snprintf(key, len, "ami");
	else if (code_starts(c, "InvalidKeyPair"))
		snprintf(key, len, "key_pair");
	else if (code_starts(c, "InvalidInstanceType") ||
	    strcmp(c, "Unsupported") == 0 || strcasestr(m, "instance type"))
		snprintf(key, len, "instance_type");
	else if (code_starts(c, "InvalidAvailabilityZone") ||
	    code_starts(c, "InvalidZone") || strcasestr(m, "availability zone"))
		snprintf(key, len, "availability_zone");
	else if (code_starts(c, "InvalidBlockDeviceMapping") ||
	    strcasestr(m, "volume") || strcasestr(m, "device"))
		snprintf(key, len, "ebs");
	else
		return -1;
	return 0;
}

static const char *const auth_codes[] = {
	"AuthFailure", "InvalidClientTokenId", "InvalidAccessKeyId",
	"SignatureDoesNotMatch", "IncompleteSignature", "ExpiredToken",
	"ExpiredTokenException", "RequestExpired", "InvalidSecurity",
	"MissingAuthenticationToken", "AuthMissingFailure",
	"UnrecognizedClientException", NULL
};
static const char *const policy_codes[] = {
	"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", NULL
};

/* The configuration key at fault for an error, in a buffer; "" if none. */
static void
fault_key(const struct check_op *op, const struct ec2_error *e,
    const char *action, char *buf, size_t len)
{
	const struct conf_resource	*r = op_res(op);
	const char			*c = e->code;
	char				 key[64], full[160], where[256];
	char				*bracket;

	buf[0] = '\0';
	if (code_is(c, auth_codes) || (e->cls == EC2_ERR_AUTH && *c == '\0'))
		creds_key(op->ca, buf, len);
	else if (code_is(c, policy_codes))
		snprintf(buf, len, "the IAM policy of these credentials: "
		    "ec2:%s", action);
	else if (strcmp(c, "OptInRequired") == 0)
		snprintf(buf, len, "aws.region %s",
		    ec2_client_region(op->ca->ec2));
	else if (strcmp(c, "NoSuchEntity") == 0 ||
	    strcasestr(e->message, "instance profile") != NULL ||
	    strcasestr(e->message, "iamInstanceProfile") != NULL)
		profile_key(op, buf, len);
	else if (code_starts(c, "InvalidUserData"))
		snprintf(buf, len, "the startup script (agent.*)");
	else if (res_key(op, e, key, sizeof(key)) == 0) {
		/* the origin is recorded for the list, not its elements */
		snprintf(full, sizeof(full), "resources.%s.%s", r->name, key);
		if ((bracket = strchr(full, '[')) != NULL)
			*bracket = '\0';
		check_key_where(op->ca->conf, r, full, where, sizeof(where));
		snprintf(buf, len, "resources.%s.%s, %s", r->name, key, where);
	} else if (r != NULL && (code_starts(c, "InvalidParameter") ||
	    strcmp(c, "UnknownParameter") == 0) &&
	    (r->custom_launch_spec != NULL ||
	    op->ca->conf->custom_launch_spec != NULL)) {
		snprintf(full, sizeof(full), "resources.%s.custom_launch_spec",
		    r->name);
		check_key_where(op->ca->conf, r, r->custom_launch_spec != NULL ? full :
		    "custom_launch_spec", where, sizeof(where));
		snprintf(buf, len, "custom_launch_spec, %s", where);
	}
}

static void
op_failed(struct check_op *op, const struct ec2_error *e, const char *action)
{
	char	 key[512];

	fault_key(op, e, action, key, sizeof(key));
	line_set(op->ca, op->line, 1, "%s: %s%s(%s): %s%s%s%s", op->what,
	    e->code, *e->code != '\0' ? " " : "", ec2_err_class_name(e->cls),
	    e->message, *key != '\0' ? " [" : "", key, *key != '\0' ? "]" : "");
}

static void
op_finish(struct check_op *op)
{
	struct check_aws	*ca = op->ca;

	free(op);
	if (--ca->pending == 0)
		event_base_loopexit(ca->base, NULL);
}

static struct check_op *
op_new(struct check_aws *ca, enum check_kind kind, ssize_t res, ssize_t item)
{
	struct check_op	*op = xcalloc(1, sizeof(*op));

	op->ca = ca;
	op->kind = kind;
	op->res = res;
	op->item = item;
	op->line = line_new(ca);
	ca->pending++;
	return op;
}

/* Instances found: "3 instances (2 running, 1 pending)". */
static void
count_states(const struct ec2_instance *v, size_t n, char *buf, size_t len)
{
	size_t	 i, run = 0, pend = 0;

	for (i = 0; i < n; i++) {
		run += strcmp(v[i].state, "running") == 0;
		pend += strcmp(v[i].state, "pending") == 0;
	}
	snprintf(buf, len, "%zu instance%s (%zu running, %zu pending)", n,
	    n == 1 ? "" : "s", run, pend);
}

static void
describe_cb(const struct ec2_error *e, const struct ec2_instance *v,
    size_t n, void *arg)
{
	struct check_op	*op = arg;
	char		 counts[96];

	if (e != NULL)
		op_failed(op, e, "DescribeInstances");
	else {
		count_states(v, n, counts, sizeof(counts));
		line_set(op->ca, op->line, 0, "%s: %s", op->what, counts);
	}
	op_finish(op);
}

static void
check_describe(struct check_aws *ca, ssize_t res)
{
	static const char *const states[] = { "pending", "running",
	    "stopping", "stopped", "shutting-down" };
	struct check_op		*op = op_new(ca, res < 0 ? CK_ACCOUNT :
				    CK_OWNED, res, -1);
	const char		*name = ca->conf->name != NULL ?
				    ca->conf->name : "";
	const char		*rname = op_res(op) != NULL ?
				    op_res(op)->name : NULL;
	struct ec2_filter	 f[3] = {
		{ "tag:qscale:autoscaler", &name, 1 },
		{ "instance-state-name", states, QS_ARRAYLEN(states) },
		{ "tag:qscale:resource", &rname, 1 },
	};

	if (res < 0)
		snprintf(op->what, sizeof(op->what), "aws: DescribeInstances "
		    "of autoscaler '%s'", name);
	else
		snprintf(op->what, sizeof(op->what), "resource %s: "
		    "DescribeInstances with the ownership tags", rname);
	if (ec2_describe_instances(ca->ec2, f, res < 0 ? 2 : 3, describe_cb,
	    op) == -1) {
		line_set(ca, op->line, 1, "%s: cannot be sent", op->what);
		op_finish(op);
	}
}

/* Existence checks: DescribeSubnets, DescribeSecurityGroups, ... */

static const char *
lookup_action(enum check_kind kind)
{
	switch (kind) {
	case CK_SUBNET:
		return "DescribeSubnets";
	case CK_GROUP:
		return "DescribeSecurityGroups";
	case CK_AMI:
		return "DescribeImages";
	case CK_KEYPAIR:
		return "DescribeKeyPairs";
	default:
		return "";
	}
}

static void
lookup_cb(const struct ec2_error *e, const char *body, size_t len, void *arg)
{
	struct check_op	*op = arg;

	(void)body;
	(void)len;
	if (e == NULL)
		line_set(op->ca, op->line, 0, "%s exists", op->what);
	else if (code_is(e->code, policy_codes))
		/* the daemon does not need this call: not its failure */
		line_set(op->ca, op->line, -1, "%s: cannot look it up: %s "
		    "(no ec2:%s in the IAM policy)", op->what, e->code,
		    lookup_action(op->kind));
	else
		op_failed(op, e, lookup_action(op->kind));
	op_finish(op);
}

static void
check_lookup(struct check_aws *ca, enum check_kind kind, size_t res,
    ssize_t item, const char *value)
{
	struct check_op		*op;
	struct ec2_params	 p = { NULL, NULL, 0 };
	const char		*what = "";

	op = op_new(ca, kind, (ssize_t)res, item);
	switch (kind) {
	case CK_SUBNET:
		ec2_params_add(&p, "SubnetId.1", value);
		what = "subnet";
		break;
	case CK_GROUP:
		ec2_params_add(&p, strncmp(value, "sg-", 3) == 0 ?
		    "GroupId.1" : "GroupName.1", value);
		what = "security group";
		break;
	case CK_AMI:
		ec2_params_add(&p, "ImageId.1", value);
		what = "AMI";
		break;
	default:
		ec2_params_add(&p, "KeyName.1", value);
		what = "key pair";
		break;
	}
	snprintf(op->what, sizeof(op->what), "resource %s: %s %s",
	    ca->conf->resources[res].name, what, value);
	if (ec2_call(ca->ec2, lookup_action(kind), &p, 0, lookup_cb, op) ==
	    -1) {
		line_set(ca, op->line, 1, "%s: cannot be sent", op->what);
		op_finish(op);
	}
	ec2_params_clear(&p);
}

/* DryRun RunInstances */

static void
dryrun_cb(const struct ec2_error *e, const struct ec2_instance *v, size_t n,
    void *arg)
{
	struct check_op	*op = arg;

	(void)v;
	(void)n;
	if (e != NULL)
		op_failed(op, e, "RunInstances");
	else
		line_set(op->ca, op->line, 0, "%s", op->what);
	op_finish(op);
}

static void
check_dryrun(struct check_aws *ca, size_t res, ssize_t item)
{
	const struct conf_resource	*r = &ca->conf->resources[res];
	const char			*subnet = item >= 0 ?
					    r->subnets[item] : NULL;
	struct check_op			*op = op_new(ca, CK_DRYRUN,
					    (ssize_t)res, item);
	struct ec2_launch		 l;

	snprintf(op->what, sizeof(op->what), "resource %s: dry-run "
	    "RunInstances %s%s (%s)", r->name, subnet != NULL ? "in " :
	    r->availability_zone != NULL ? "in zone " : "in the default "
	    "subnet", subnet != NULL ? subnet : r->availability_zone != NULL ?
	    r->availability_zone : "", r->spot ? "spot" : "on-demand");
	if (launch_spec_build(&l, ca->conf, res, subnet, r->spot, 1, NULL,
	    ca->user_data[res], 1) == -1) {
		line_set(ca, op->line, 1, "%s: no launch request can be made",
		    op->what);
		op_finish(op);
		return;
	}
	if (ec2_run_instances(ca->ec2, &l, dryrun_cb, op) == -1) {
		line_set(ca, op->line, 1, "%s: cannot be sent", op->what);
		op_finish(op);
	}
	launch_spec_clear(&l);
}

static void
check_resource(struct check_aws *ca, size_t i)
{
	const struct conf_resource	*r = &ca->conf->resources[i];
	char				 err[512];
	size_t				 j, ln;

	ln = line_new(ca);
	if ((ca->user_data[i] = userdata_build(ca->conf, i, err,
	    sizeof(err))) == NULL) {
		line_set(ca, ln, 1, "resource %s: startup script: %s "
		    "[agent.*, resources.%s]", r->name, err, r->name);
		return;
	}
	line_set(ca, ln, 0, "resource %s: startup script (%zu bytes)",
	    r->name, strlen(ca->user_data[i]));
	for (j = 0; j < r->nsubnets; j++)
		check_lookup(ca, CK_SUBNET, i, (ssize_t)j, r->subnets[j]);
	for (j = 0; j < r->nsecurity_groups; j++)
		check_lookup(ca, CK_GROUP, i, (ssize_t)j,
		    r->security_groups[j]);
	if (r->ami != NULL)
		check_lookup(ca, CK_AMI, i, -1, r->ami);
	if (r->key_pair != NULL)
		check_lookup(ca, CK_KEYPAIR, i, -1, r->key_pair);
	if (r->nsubnets == 0)
		check_dryrun(ca, i, -1);
	for (j = 0; j < r->nsubnets; j++)
		check_dryrun(ca, i, (ssize_t)j);
	check_describe(ca, (ssize_t)i);
}

/* "AKIA****WXYZ": enough to tell keys apart, not the whole id. */
static void
key_id_short(const char *id, char *buf, size_t len)
{
	size_t	 n = strlen(id);

	if (n <= 8)
		snprintf(buf, len, "%s", id);
	else
		snprintf(buf, len, "%.4s****%s", id, id + n - 4);
}

static void
creds_cb(const char *err, void *arg)
{
	struct check_op			*op = arg;
	struct check_aws		*ca = op->ca;
	const struct aws_creds		*cr;
	char				 id[32];
	size_t				 i;

	if (err != NULL) {
		line_set(ca, op->line, 1, "aws credentials: %s", err);
		op_finish(op);
		return;
	}
	cr = aws_creds_current(ec2_client_creds(ca->ec2));
	key_id_short(cr->access_key_id, id, sizeof(id));
	line_set(ca, op->line, 0, "aws credentials: %s%s from %s", id,
	    cr->session_token != NULL ? " with a session token" : "",
	    cr->source);
	check_describe(ca, -1);
	for (i = 0; i < ca->conf->nresources; i++)
		check_resource(ca, i);
	op_finish(op);
}

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct check_aws	*ca = arg;

	(void)fd;
	(void)what;
	event_base_loopexit(ca->base, NULL);
}

static void
check_aws_free(struct check_aws *ca)
{
	size_t	 i;

	ec2_client_free(ca->ec2);
	for (i = 0; i < ca->nlines; i++)
		free(ca->lines[i].text);
	free(ca->lines);
	for (i = 0; ca->user_data != NULL && i < ca->conf->nresources; i++)
		freezero_str(ca->user_data[i]);
	free(ca->user_data);
	if (ca->guard != NULL)
		event_free(ca->guard);
}

/*
 * The AWS checks.  Runs the loop until they are done; returns the
 * number of checks that failed.
 */
int
check_aws(const struct qscale_conf *conf, struct event_base *base,
    struct http_client *http)
{
	struct check_aws	 ca;
	struct check_op		*op;
	char			 err[256];
	size_t			 ln;
	int			 failures;

	memset(&ca, 0, sizeof(ca));
	ca.conf = conf;
	ca.base = base;
	ln = line_new(&ca);
	if ((ca.ec2 = ec2_client_new(base, http, conf, err, sizeof(err))) ==
	    NULL) {
		line_set(&ca, ln, 1, "aws: %s", err);
		failures = ca.failures;
		check_aws_free(&ca);
		return failures;
	}
	line_set(&ca, ln, 0, "aws: region %s, endpoint %s",
	    ec2_client_region(ca.ec2), ec2_client_endpoint(ca.ec2));
	ca.user_data = xcalloc(conf->nresources + 1, sizeof(*ca.user_data));
	op = op_new(&ca, CK_ACCOUNT, -1, -1);
	aws_creds_get(ec2_client_creds(ca.ec2), creds_cb, op);
	ca.guard = evtimer_new(base, guard_cb, &ca);
	timer_add_ms(ca.guard, CHECK_GUARD_MS);
	event_base_dispatch(base);
	for (ln = ca.printed; ln < ca.nlines; ln++)
		if (!ca.lines[ln].done)
			line_set(&ca, ln, 1, "a check did not finish in time");
	failures = ca.failures;
	check_aws_free(&ca);
	return failures;
}

/*
 * Each group of checks runs the loop until its checks are done, prints
 * one line per check and returns how many failed.
 */
static const struct {
	const char	*name;
	int		(*run)(const struct qscale_conf *,
			    struct event_base *, struct http_client *);
} check_steps[] = {
	{ "aws", check_aws },
	{ "clearml", check_clearml },	/* login, every queue, version */
};

/* qscaled --check: exit status 0 only if every check passed. */
int
check_main(const struct qscale_conf *conf)
{
	struct event_base	*base;
	struct http_client	*http;
	size_t			 i;
	int			 failures = 0;

	if ((base = event_base_new()) == NULL ||
	    (http = http_client_new(base)) == NULL) {
		fprintf(stderr, "qscaled: cannot set up the event loop\n");
		return 1;
	}
	for (i = 0; i < QS_ARRAYLEN(check_steps); i++)
		failures += check_steps[i].run(conf, base, http);
	http_client_free(http);
	event_base_free(base);
	if (failures == 0)
		printf("all checks passed\n");
	else
		printf("%d check%s failed\n", failures, failures == 1 ? "" :
		    "s");
	return failures == 0 ? 0 : 1;
}
