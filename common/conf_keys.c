/*
 * conf_keys.c: the one table of configuration keys (path, type, default,
 * bounds, where the value lands, whether it is a secret, which
 * environment variables back it) and the conversion of one node of the
 * file into the field its key names, with every check a single value
 * can fail.  Checks across keys are in config.c.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_int.h"

#define G(f)	offsetof(struct qscale_conf, f)
#define R(f)	offsetof(struct conf_resource, f)
#define MS_S	1000LL
#define MS_M	(60 * MS_S)
#define MS_H	(60 * MS_M)
#define MS_D	(24 * MS_H)

static const char *const spot_scopes[] = { "global", "resource", NULL };
static const char *const ebs_types[] = { "gp2", "gp3", "io1", "io2", "st1",
    "sc1", "standard", NULL };

/*
 * Keys of one group stay together: conf_print() opens a group when the
 * prefix changes.
 */
const struct conf_key conf_global_keys[] = {
	{ "name", CK_STR, "qscale", 0, 0, G(name), 0,
	    CK_NAME | CK_TOPONLY, { NULL }, NULL },
	{ "workers_prefix", CK_STR, "qscale", 0, 0, G(workers_prefix), 0,
	    CK_NAME | CK_TOPONLY, { NULL }, NULL },
	{ "polling_interval", CK_DUR, "30s", 100, MS_H, G(polling_interval),
	    0, 0, { NULL }, NULL },
	{ "max_idle_time", CK_DUR, "15m", 0, 30 * MS_D, G(max_idle_time), 0,
	    0, { NULL }, NULL },
	{ "max_spin_up_time", CK_DUR, "30m", MS_S, MS_D, G(max_spin_up_time),
	    0, 0, { NULL }, NULL },
	{ "vanished_worker_grace", CK_DUR, "5m", 0, MS_D,
	    G(vanished_worker_grace), 0, 0, { NULL }, NULL },
	{ "worker_last_seen", CK_DUR, "90s", MS_S, MS_D, G(worker_last_seen),
	    0, 0, { NULL }, NULL },
	{ "max_requeues", CK_INT, "2", 0, 100, G(max_requeues), 0, 0,
	    { NULL }, NULL },
	{ "max_instances_total", CK_INT, "0", 0, 100000,
	    G(max_instances_total), 0, CK_SUPONLY, { NULL }, NULL },
	{ "warn_duplicate_tasks", CK_BOOL, "true", 0, 0,
	    G(warn_duplicate_tasks), 0, CK_SUPONLY, { NULL }, NULL },
	{ "ignore_include_errors", CK_BOOL, "false", 0, 0,
	    G(ignore_include_errors), 0, CK_SUPONLY | CK_TOPONLY, { NULL },
	    NULL },
	{ "vault_file", CK_STR, NULL, 0, 0, G(vault_file), 0, CK_TOPONLY,
	    { NULL }, NULL },
	{ "spot_blackout_scope", CK_ENUM, "global", 0, 0,
	    G(spot_blackout_scope), 0, 0, { NULL }, spot_scopes },
	{ "log_level", CK_LEVEL, "info", 0, 0, G(log_level), 0, CK_SUPONLY,
	    { NULL }, NULL },
	{ "log_dir", CK_STR, QS_DEFAULT_LOG_DIR, 0, 0, G(log_dir), 0,
	    CK_ABSPATH | CK_SUPONLY, { NULL }, NULL },
	{ "pid_file", CK_STR, QS_DEFAULT_PID_FILE, 0, 0, G(pid_file), 0,
	    CK_ABSPATH | CK_SUPONLY, { NULL }, NULL },

	{ "clearml.api_server", CK_STR, NULL, 0, 0, G(clearml.api_server), 0,
	    CK_URL | CK_REQUIRED, { "CLEARML_API_HOST" }, NULL },
	{ "clearml.web_server", CK_STR, NULL, 0, 0, G(clearml.web_server), 0,
	    CK_URL, { "CLEARML_WEB_HOST" }, NULL },
	{ "clearml.files_server", CK_STR, NULL, 0, 0, G(clearml.files_server),
	    0, CK_URL, { "CLEARML_FILES_HOST" }, NULL },
	{ "clearml.access_key", CK_STR, NULL, 0, 0, G(clearml.access_key), 0,
	    CK_REQUIRED, { "CLEARML_API_ACCESS_KEY" }, NULL },
	{ "clearml.secret_key", CK_STR, NULL, 0, 0, G(clearml.secret_key), 0,
	    CK_REQUIRED | CK_SECRET, { "CLEARML_API_SECRET_KEY" }, NULL },
	{ "clearml.request_timeout", CK_DUR, "30s", 100, 10 * MS_M,
	    G(clearml.request_timeout), 0, 0, { NULL }, NULL },
	{ "clearml.report", CK_BOOL, "false", 0, 0, G(clearml.report), 0, 0,
	    { NULL }, NULL },
	{ "clearml.report_project", CK_STR, "DevOps", 0, 0,
	    G(clearml.report_project), 0, 0, { NULL }, NULL },
	{ "clearml.report_logs_interval", CK_DUR, "10m", 0, 7 * 24 * MS_H,
	    G(clearml.report_logs_interval), 0, CK_SUPONLY, { NULL }, NULL },
	{ "clearml.report_name", CK_STR, NULL, 0, 0, G(clearml.report_name),
	    0, 0, { NULL }, NULL },

	{ "aws.region", CK_STR, NULL, 0, 0, G(aws.region), 0, 0,
	    { "AWS_REGION", "AWS_DEFAULT_REGION" }, NULL },
	{ "aws.endpoint", CK_STR, NULL, 0, 0, G(aws.endpoint), 0, CK_URL,
	    { "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL" }, NULL },
	{ "aws.profile", CK_STR, NULL, 0, 0, G(aws.profile), 0, 0,
	    { "AWS_PROFILE" }, NULL },
	{ "aws.use_iam_role", CK_BOOL, "false", 0, 0, G(aws.use_iam_role), 0,
	    0, { NULL }, NULL },
	/* the environment's keys come as a pair: see config.c */
	{ "aws.access_key_id", CK_STR, NULL, 0, 0, G(aws.access_key_id), 0,
	    0, { NULL }, NULL },
	{ "aws.secret_access_key", CK_STR, NULL, 0, 0,
	    G(aws.secret_access_key), 0, CK_SECRET, { NULL }, NULL },
	{ "aws.session_token", CK_STR, NULL, 0, 0, G(aws.session_token), 0,
	    CK_SECRET, { NULL }, NULL },
	{ "aws.max_attempts", CK_INT, "5", 1, 20, G(aws.max_attempts), 0, 0,
	    { NULL }, NULL },
	{ "aws.retry_base_delay", CK_DUR, "200ms", 1, MS_M,
	    G(aws.retry_base_delay), 0, 0, { NULL }, NULL },
	{ "aws.retry_max_delay", CK_DUR, "20s", 1, 10 * MS_M,
	    G(aws.retry_max_delay), 0, 0, { NULL }, NULL },
	{ "aws.request_timeout", CK_DUR, "30s", 100, 10 * MS_M,
	    G(aws.request_timeout), 0, 0, { NULL }, NULL },

	{ "git.user", CK_STR, NULL, 0, 0, G(git.user), 0, 0, { NULL }, NULL },
	{ "git.password", CK_STR, NULL, 0, 0, G(git.password), 0, CK_SECRET,
	    { NULL }, NULL },

	{ "agent.docker_image", CK_STR, NULL, 0, 0, G(agent.docker_image), 0,
	    0, { NULL }, NULL },
	{ "agent.init_script", CK_STR, NULL, 0, 0, G(agent.init_script), 0,
	    CK_APPEND, { NULL }, NULL },
	{ "agent.extra_clearml_conf", CK_STR, NULL, 0, 0,
	    G(agent.extra_clearml_conf), 0, CK_APPEND, { NULL }, NULL },
	{ "agent.exclude_bashrc", CK_BOOL, "false", 0, 0,
	    G(agent.exclude_bashrc), 0, 0, { NULL }, NULL },
	{ "agent.agent_version", CK_STR, NULL, 0, 0, G(agent.agent_version),
	    0, 0, { NULL }, NULL },
	{ "agent.access_key", CK_STR, NULL, 0, 0, G(agent.access_key), 0, 0,
	    { NULL }, NULL },
	{ "agent.secret_key", CK_STR, NULL, 0, 0, G(agent.secret_key), 0,
	    CK_SECRET, { NULL }, NULL },

	{ "iam_instance_profile.arn", CK_STR, NULL, 0, 0,
	    G(iam_instance_profile.arn), 0, 0, { NULL }, NULL },
	{ "iam_instance_profile.name", CK_STR, NULL, 0, 0,
	    G(iam_instance_profile.name), 0, 0, { NULL }, NULL },
	{ "custom_launch_spec", CK_JSON, NULL, 0, 0, G(custom_launch_spec), 0,
	    0, { NULL }, NULL },

	{ "status.listen", CK_STR, QS_DEFAULT_LISTEN, 0, 0, G(status_listen),
	    0, CK_LISTEN | CK_SUPONLY, { NULL }, NULL },
	{ "control.socket", CK_STR, QS_DEFAULT_SOCKET, 0, 0,
	    G(control_socket), 0, CK_ABSPATH | CK_SUPONLY, { NULL }, NULL },
};
const size_t conf_nglobal_keys = QS_ARRAYLEN(conf_global_keys);

const struct conf_key conf_resource_keys[] = {
	{ "name", CK_STR, NULL, 0, 0, R(name), 0,
	    CK_REQUIRED | CK_NAME | CK_TOPONLY, { NULL }, NULL },
	{ "queue", CK_STR, NULL, 0, 0, R(queue), 0, CK_REQUIRED | CK_TOPONLY,
	    { NULL }, NULL },
	{ "instance_type", CK_STR, NULL, 0, 0, R(instance_type), 0,
	    CK_REQUIRED | CK_NAME, { NULL }, NULL },
	{ "ami", CK_STR, NULL, 0, 0, R(ami), 0, CK_REQUIRED, { NULL }, NULL },
	{ "max_instances", CK_INT, "1", 0, 1000, R(max_instances), 0, 0,
	    { NULL }, NULL },
	{ "cpu_mode", CK_BOOL, "false", 0, 0, R(cpu_mode), 0, 0, { NULL },
	    NULL },
	{ "spot", CK_BOOL, "false", 0, 0, R(spot), 0, 0, { NULL }, NULL },
	/* unset: the global value */
	{ "max_idle_time", CK_DUR, NULL, 0, 30 * MS_D, R(max_idle_time), 0, 0,
	    { NULL }, NULL },
	{ "max_spin_up_time", CK_DUR, NULL, MS_S, MS_D, R(max_spin_up_time),
	    0, 0, { NULL }, NULL },
	{ "spot_rollback_timeout", CK_DUR, "5m", 0, MS_D,
	    R(spot_rollback_timeout), 0, 0, { NULL }, NULL },
	{ "spot_blackout_period", CK_DUR, "10m", 0, MS_D,
	    R(spot_blackout_period), 0, 0, { NULL }, NULL },
	{ "availability_zone", CK_STR, NULL, 0, 0, R(availability_zone), 0, 0,
	    { NULL }, NULL },
	{ "subnets", CK_STRLIST, NULL, 0, 0, R(subnets), R(nsubnets), 0,
	    { NULL }, NULL },
	{ "security_groups", CK_STRLIST, NULL, 0, 0, R(security_groups),
	    R(nsecurity_groups), 0, { NULL }, NULL },
	{ "key_pair", CK_STR, NULL, 0, 0, R(key_pair), 0, 0, { NULL }, NULL },
	{ "docker_image", CK_STR, NULL, 0, 0, R(docker_image), 0, 0,
	    { NULL }, NULL },
	{ "tags", CK_TAGS, NULL, 0, 0, R(tags), R(ntags), 0, { NULL }, NULL },
	{ "ebs.device", CK_STR, "/dev/sda1", 0, 0, R(ebs.device), 0,
	    CK_ABSPATH, { NULL }, NULL },
	{ "ebs.size_gb", CK_INT, "0", 0, 16384, R(ebs.size_gb), 0, 0,
	    { NULL }, NULL },
	{ "ebs.type", CK_ENUM, "gp3", 0, 0, R(ebs.type), 0, 0, { NULL },
	    ebs_types },
	{ "ebs.iops", CK_INT, "0", 0, 256000, R(ebs.iops), 0, 0, { NULL },
	    NULL },
	{ "ebs.throughput", CK_INT, "0", 0, 1000, R(ebs.throughput), 0, 0,
	    { NULL }, NULL },
	{ "iam_instance_profile.arn", CK_STR, NULL, 0, 0,
	    R(iam_instance_profile.arn), 0, 0, { NULL }, NULL },
	{ "iam_instance_profile.name", CK_STR, NULL, 0, 0,
	    R(iam_instance_profile.name), 0, 0, { NULL }, NULL },
	{ "custom_launch_spec", CK_JSON, NULL, 0, 0, R(custom_launch_spec), 0,
	    0, { NULL }, NULL },
};
const size_t conf_nresource_keys = QS_ARRAYLEN(conf_resource_keys);

/* The name ClearML's own autoscaler gives the init script. */
const struct conf_alias conf_aliases[] = {
	{ "agent.extra_vm_bash_script", "agent.init_script" },
};
const size_t conf_naliases = QS_ARRAYLEN(conf_aliases);

const struct conf_key *
ck_find(const struct conf_key *tab, size_t n, const char *path)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(tab[i].path, path) == 0)
			return &tab[i];
	return NULL;
}

/* The key an alias stands for, or NULL. */
const char *
ck_alias_of(const char *path)
{
	size_t	 i;

	for (i = 0; i < conf_naliases; i++)
		if (strcmp(conf_aliases[i].path, path) == 0)
			return conf_aliases[i].to;
	return NULL;
}

/* "clearml" is a prefix of "clearml.api_server": a group of keys. */
int
ck_is_prefix(const struct conf_key *tab, size_t n, const char *path)
{
	size_t	 i, len = strlen(path);

	for (i = 0; i < n; i++)
		if (strncmp(tab[i].path, path, len) == 0 &&
		    tab[i].path[len] == '.')
			return 1;
	return 0;
}

void *
ck_field(const struct conf_key *k, void *base)
{
	return (char *)base + k->off;
}

static size_t *
ck_count(const struct conf_key *k, void *base)
{
	return (size_t *)(void *)((char *)base + k->off_n);
}

/* A resource name or prefix: it ends up in worker ids, tags, globs. */
int
ck_name_ok(const char *s)
{
	size_t	 i, n = strlen(s);

	if (n == 0 || n > CONF_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) &&
		    strchr("_.-", s[i]) == NULL)
			return 0;
	return 1;
}

/* EC2's rules for tag keys, and the prefix qscale keeps for itself. */
int
ck_tag_key_ok(const char *s)
{
	size_t	 n = strlen(s);

	return n > 0 && n <= 128 && strncasecmp(s, "aws:", 4) != 0 &&
	    strncmp(s, "qscale:", 7) != 0;
}

static void
record(struct conf_ld *ld, const struct conf_key *k, const char *sub,
    const struct ck_where *w, int append)
{
	char	*key;

	if (w->origin == NULL)
		return;
	xasprintf(&key, "%s%s%s%s", w->keypfx, k->path, sub ? "." : "",
	    sub ? sub : "");
	conf_origin_set(ld->conf, key, w->origin, append);
	free(key);
}

static int
wrong_type(struct conf_ld *ld, const struct conf_key *k,
    const struct cnode *n, const struct ck_where *w, const char *want)
{
	ld_err_at(ld, n, "%s%s must be %s, not %s", w->show, k->path, want,
	    cnode_type_name(n->type));
	return -1;
}

/* "host:port" or "[v6]:port"; sets *loopback. NULL or why not. */
const char *
ck_listen_check(const char *s, int *loopback)
{
	char		 host[256];
	const char	*colon, *h = s, *p;
	unsigned char	 a[16];
	size_t		 hl;
	long		 port = 0;

	*loopback = 0;
	if (*s == '[') {
		if ((colon = strchr(s, ']')) == NULL || colon[1] != ':')
			return "write an IPv6 address as [::1]:9800";
		h = s + 1;
		hl = (size_t)(colon - h);
		colon++;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return "expected host:port, as in 127.0.0.1:9800";
		hl = (size_t)(colon - s);
		if (memchr(s, ':', hl) != NULL)
			return "write an IPv6 address as [::1]:9800";
	}
	if (hl == 0 || hl >= sizeof(host))
		return "expected host:port, as in 127.0.0.1:9800";
	memcpy(host, h, hl);
	host[hl] = '\0';
	for (p = colon + 1; isdigit((unsigned char)*p) && port <= 65535; p++)
		port = port * 10 + (*p - '0');
	if (p == colon + 1 || *p != '\0' || port < 1 || port > 65535)
		return "the port must be a number from 1 to 65535";
	if (inet_pton(AF_INET6, host, a) == 1)
		*loopback = memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16)
		    == 0;
	else if (*s == '[')
		return "not an IPv6 address";
	else if (inet_pton(AF_INET, host, a) == 1)
		*loopback = a[0] == 127;
	else {
		for (p = host; *p != '\0'; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' &&
			    *p != '-')
				return "not a host name or address";
		*loopback = strcasecmp(host, "localhost") == 0;
	}
	return NULL;
}

static int
url_ok(const char *s)
{
	const char	*host;

	if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else
		return 0;
	return *host != '\0' && *host != '/' && strpbrk(s, " \t\r\n") == NULL;
}

/* The checks one string value must pass; NULL or why not. */
static const char *
str_check(const struct conf_key *k, const char *s, char *buf, size_t len)
{
	int	 lb;
	const char *why;

	if ((k->flags & CK_NAME) && !ck_name_ok(s)) {
		snprintf(buf, len, "\"%s\" must be 1 to %d letters, digits, "
		    "'_', '.' or '-'", s, CONF_NAME_MAX);
		return buf;
	}
	if ((k->flags & CK_URL) && *s != '\0' && !url_ok(s)) {
		snprintf(buf, len, "must be a URL starting with http:// or "
		    "https:// (not \"%s\")", s);
		return buf;
	}
	if ((k->flags & CK_ABSPATH) && s[0] != '/')
		return "must be an absolute path";
	if ((k->flags & CK_LISTEN) && *s != '\0' &&
	    (why = ck_listen_check(s, &lb)) != NULL) {
		snprintf(buf, len, "\"%s\": %s (or \"\" to turn it off)", s,
		    why);
		return buf;
	}
	if (k->choices != NULL) {
		size_t i;

		for (i = 0; k->choices[i] != NULL; i++)
			if (strcmp(k->choices[i], s) == 0)
				return NULL;
		snprintf(buf, len, "must be one of");
		for (i = 0; k->choices[i] != NULL; i++)
			snprintf(buf + strlen(buf), len - strlen(buf), "%s %s",
			    i ? "," : "", k->choices[i]);
		snprintf(buf + strlen(buf), len - strlen(buf), " (not \"%s\")",
		    s);
		return buf;
	}
	return NULL;
}

static int
apply_str(struct conf_ld *ld, const struct conf_key *k, const struct cnode *n,
    void *base, const struct ck_where *w)
{
	char		**f = ck_field(k, base), *v, *joined, buf[512];
	const char	*why;
	struct ld_file	*lf;
	size_t		 len;

	if (n->type == CN_NULL) {
		if (!(k->flags & CK_APPEND)) {
			ck_free(k, base);
			record(ld, k, NULL, w, 0);
		}
		return 0;
	}
	if (n->type != CN_STR)
		return wrong_type(ld, k, n, w, "a string");
	if ((k->flags & CK_SECRET) && strcmp(n->str, MASK_TEXT) == 0) {
		ld_err_at(ld, n, "%s%s is \"%s\": this configuration was "
		    "exported with its secrets masked; set the secret, or "
		    "export it with 'qscalectl export-config --with-secrets'",
		    w->show, k->path, MASK_TEXT);
		return -1;
	}
	if ((k->flags & CK_SECRET) && n->file != NULL && *n->str != '\0') {
		lf = ld_file_of(ld, n->file);
		if (!lf->secrets)
			lf->secret_key = k->path;
		lf->secrets = 1;
	}
	if ((why = str_check(k, n->str, buf, sizeof(buf))) != NULL) {
		ld_err_at(ld, n, "%s%s %s", w->show, k->path, why);
		return -1;
	}
	v = xstrdup(n->str);
	if ((k->flags & CK_URL) && (len = strlen(v)) > 0)
		while (len > 0 && v[len - 1] == '/')
			v[--len] = '\0';
	if ((k->flags & CK_APPEND) && (*v == '\0' || *f != NULL)) {
		if (*v != '\0') {
			xasprintf(&joined, "%s\n%s", *f, v);
			freezero_str(*f);
			*f = joined;
			record(ld, k, NULL, w, 1);
		}
		freezero_str(v);
		return 0;
	}
	if (*v == '\0') {		/* "" is "not set" */
		free(v);
		v = NULL;
	}
	ck_free(k, base);
	*f = v;
	record(ld, k, NULL, w, 0);
	return 0;
}

static int
apply_int(struct conf_ld *ld, const struct conf_key *k, const struct cnode *n,
    void *base, const struct ck_where *w)
{
	int	*f = ck_field(k, base);

	if (n->type != CN_INT)
		return wrong_type(ld, k, n, w, "an integer");
	if (n->ival < k->min || n->ival > k->max) {
		ld_err_at(ld, n, "%s%s must be from %lld to %lld (not %lld)",
		    w->show, k->path, (long long)k->min, (long long)k->max,
		    (long long)n->ival);
		return -1;
	}
	*f = (int)n->ival;
	record(ld, k, NULL, w, 0);
	return 0;
}

static int
apply_bool(struct conf_ld *ld, const struct conf_key *k,
    const struct cnode *n, void *base, const struct ck_where *w)
{
	int	*f = ck_field(k, base);

	if (n->type != CN_BOOL)
		return wrong_type(ld, k, n, w, "true or false");
	*f = n->ival != 0;
	record(ld, k, NULL, w, 0);
	return 0;
}

/* "15": digits alone, not zero (0 reads the same in every unit). */
static int
dur_is_bare(const char *s)
{
	const char	*p;
	int		 nonzero = 0;

	for (p = s; *p >= '0' && *p <= '9'; p++)
		nonzero |= *p != '0';
	return p != s && *p == '\0' && nonzero && p - s <= 15;
}

/*
 * The ClearML app's fields are in minutes, and a copied number read as
 * seconds would terminate machines sixty times too soon: a bare number
 * is refused, with both readings offered.
 */
static int
bare_duration(struct conf_ld *ld, const struct conf_key *k,
    const struct cnode *n, const struct ck_where *w, long long v)
{
	ld_err_at(ld, n, "%s%s = %lld: a duration needs a unit: write "
	    "\"%lldm\" for %lld minutes (as the ClearML app's fields mean "
	    "it) or \"%llds\" for %lld seconds", w->show, k->path, v, v, v,
	    v, v);
	return -1;
}

static int
apply_dur(struct conf_ld *ld, const struct conf_key *k, const struct cnode *n,
    void *base, const struct ck_where *w)
{
	int64_t		*f = ck_field(k, base), v;
	const char	*why;
	char		 lo[32], hi[32], got[32];

	/* a key without a default: "" or null leaves it to the global */
	if (k->def == NULL && (n->type == CN_NULL || (n->type == CN_STR &&
	    *n->str == '\0'))) {
		*f = -1;
		record(ld, k, NULL, w, 0);
		return 0;
	}
	if (n->type == CN_INT) {
		if (n->ival < 0 || n->ival > INT64_MAX / 1000 / 1000) {
			ld_err_at(ld, n, "%s%s: %lld is not a duration",
			    w->show, k->path, (long long)n->ival);
			return -1;
		}
		if (n->ival != 0)
			return bare_duration(ld, k, n, w, n->ival);
		v = 0;
	} else if (n->type == CN_STR) {
		if (dur_is_bare(n->str))
			return bare_duration(ld, k, n, w,
			    strtoll(n->str, NULL, 10));
		if (parse_duration(n->str, &v, &why) == -1) {
			ld_err_at(ld, n, "%s%s: \"%s\" is not a duration: %s",
			    w->show, k->path, n->str, why);
			return -1;
		}
	} else
		return wrong_type(ld, k, n, w,
		    "a duration (\"90s\", \"15m\", \"2h\")");
	if (v < k->min || v > k->max) {
		fmt_duration(k->min, lo, sizeof(lo));
		fmt_duration(k->max, hi, sizeof(hi));
		fmt_duration(v, got, sizeof(got));
		ld_err_at(ld, n, "%s%s must be from %s to %s (not %s)", w->show,
		    k->path, lo, hi, got);
		return -1;
	}
	*f = v;
	record(ld, k, NULL, w, 0);
	return 0;
}

static int
apply_level(struct conf_ld *ld, const struct conf_key *k,
    const struct cnode *n, void *base, const struct ck_where *w)
{
	int	*f = ck_field(k, base), lvl;

	if (n->type != CN_STR)
		return wrong_type(ld, k, n, w, "a string");
	if ((lvl = log_level_parse(n->str)) < 0) {
		ld_err_at(ld, n, "%s%s: unknown level \"%s\" (use error, warn, "
		    "info or debug)", w->show, k->path, n->str);
		return -1;
	}
	*f = lvl;
	record(ld, k, NULL, w, 0);
	return 0;
}

static int
apply_enum(struct conf_ld *ld, const struct conf_key *k,
    const struct cnode *n, void *base, const struct ck_where *w)
{
	char	**f = ck_field(k, base), buf[512];
	const char *why;

	if (n->type != CN_STR)
		return wrong_type(ld, k, n, w, "a string");
	if ((why = str_check(k, n->str, buf, sizeof(buf))) != NULL) {
		ld_err_at(ld, n, "%s%s %s", w->show, k->path, why);
		return -1;
	}
	ck_free(k, base);
	*f = xstrdup(n->str);
	record(ld, k, NULL, w, 0);
	return 0;
}

/*
 * "sg-1, sg-2" as the ClearML app writes a list: its names, blanks around
 * them trimmed; NULL when one is empty.
 */
static char **
split_commas(const char *s, size_t *np)
{
	char		**v = NULL;
	const char	 *p = s, *e, *end;
	size_t		  n = 0;

	for (;;) {
		e = strchr(p, ',');
		end = e != NULL ? e : p + strlen(p);
		while (p < end && isspace((unsigned char)*p))
			p++;
		while (end > p && isspace((unsigned char)end[-1]))
			end--;
		if (end == p)
			break;
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrndup(p, (size_t)(end - p));
		if (e == NULL) {
			*np = n;
			return v;
		}
		p = e + 1;
	}
	while (n > 0)
		free(v[--n]);
	free(v);
	return NULL;
}

static int
apply_strlist(struct conf_ld *ld, const struct conf_key *k,
    const struct cnode *n, void *base, const struct ck_where *w)
{
	char	***f = ck_field(k, base), **v;
	size_t	 i, nv;
	int	 bad = 0;

	if (n->type == CN_NULL) {
		ck_free(k, base);
		record(ld, k, NULL, w, 0);
		return 0;
	}
	if (n->type == CN_STR) {
		if ((v = split_commas(n->str, &nv)) == NULL) {
			ld_err_at(ld, n, "%s%s: \"%s\" has an empty name "
			    "(write \"a,b\" or [\"a\", \"b\"])", w->show,
			    k->path, n->str);
			return -1;
		}
		ck_free(k, base);
		*f = v;
		*ck_count(k, base) = nv;
		record(ld, k, NULL, w, 0);
		return 0;
	}
	if (n->type != CN_LIST)
		return wrong_type(ld, k, n, w, "a list of strings");
	for (i = 0; i < n->nkid; i++) {
		if (n->kid[i]->type != CN_STR || *n->kid[i]->str == '\0') {
			ld_err_at(ld, n->kid[i], "%s%s: element %zu must be a "
			    "non-empty string", w->show, k->path, i + 1);
			bad = 1;
		}
	}
	if (bad)
		return -1;
	v = xcalloc(n->nkid, sizeof(*v));
	for (nv = 0; nv < n->nkid; nv++)
		v[nv] = xstrdup(n->kid[nv]->str);
	ck_free(k, base);
	*f = v;
	*ck_count(k, base) = nv;
	record(ld, k, NULL, w, 0);
	return 0;
}

/* Sets one tag, replacing a value an earlier layer gave. */
static void
tag_set(struct conf_kv **tags, size_t *ntags, const char *key,
    const char *value)
{
	size_t	 i;

	for (i = 0; i < *ntags; i++) {
		if (strcmp((*tags)[i].key, key) == 0) {
			free((*tags)[i].value);
			(*tags)[i].value = xstrdup(value);
			return;
		}
	}
	*tags = xreallocarray(*tags, *ntags + 1, sizeof(**tags));
	(*tags)[*ntags].key = xstrdup(key);
	(*tags)[*ntags].value = xstrdup(value);
	(*ntags)++;
}

static int
tag_check(struct conf_ld *ld, const struct cnode *at, const char *key,
    const struct cnode *val, const struct ck_where *w)
{
	if (!ck_tag_key_ok(key)) {
		ld_err_at(ld, at, "%stags: bad tag key \"%s\" (1 to 128 "
		    "characters, not starting with aws: or qscale:, which "
		    "are reserved)", w->show, key);
		return -1;
	}
	if (val->type != CN_STR) {
		ld_err_at(ld, val, "%stags: the value of \"%s\" must be a "
		    "string, not %s", w->show, key, cnode_type_name(val->type));
		return -1;
	}
	if (strlen(val->str) > 256) {
		ld_err_at(ld, val, "%stags: the value of \"%s\" is longer "
		    "than 256 characters", w->show, key);
		return -1;
	}
	return 0;
}

/* One "key=value" of the app's form; -1 when it is not one. */
static int
tag_pair(struct conf_ld *ld, const struct cnode *n, const char *pair,
    const struct ck_where *w, char **key, char **value)
{
	const char	*eq = strchr(pair, '=');
	const char	*ke, *vs;

	*key = *value = NULL;
	if (eq == NULL || eq == pair) {
		ld_err_at(ld, n, "%stags: \"%s\" is not key=value (write "
		    "\"team=ml,owner=ops\" or a group { team = \"ml\"; })",
		    w->show, pair);
		return -1;
	}
	for (ke = eq; ke > pair && isspace((unsigned char)ke[-1]); ke--)
		;
	for (vs = eq + 1; isspace((unsigned char)*vs); vs++)
		;
	*key = xstrndup(pair, (size_t)(ke - pair));
	*value = xstrdup(vs);
	if (!ck_tag_key_ok(*key)) {
		ld_err_at(ld, n, "%stags: bad tag key \"%s\" (1 to 128 "
		    "characters, not starting with aws: or qscale:, which "
		    "are reserved)", w->show, *key);
		return -1;
	}
	if (strlen(*value) > 256) {
		ld_err_at(ld, n, "%stags: the value of \"%s\" is longer "
		    "than 256 characters", w->show, *key);
		return -1;
	}
	return 0;
}

/* tags = "team=ml,owner=ops": the ClearML app's form. */
static int
apply_tag_string(struct conf_ld *ld, const struct conf_key *k,
    const struct cnode *n, void *base, const struct ck_where *w)
{
	char	**pairs, *key, *value;
	size_t	 i, np = 0;
	int	 bad = 0;

	if (*n->str == '\0')
		return 0;
	if ((pairs = split_commas(n->str, &np)) == NULL) {
		ld_err_at(ld, n, "%stags: \"%s\" has an empty key=value",
		    w->show, n->str);
		return -1;
	}
	for (i = 0; i < np; i++) {
		if (tag_pair(ld, n, pairs[i], w, &key, &value) == 0) {
			tag_set(ck_field(k, base), ck_count(k, base), key,
			    value);
			record(ld, k, key, w, 0);
		} else
			bad = 1;
		free(key);
		free(value);
		free(pairs[i]);
	}
	free(pairs);
	if (np > 0)
		record(ld, k, NULL, w, 1);
	return bad ? -1 : 0;
}

/*
 * tags = { team = "ml"; };  or, for keys libconfig cannot name,
 * tags = ( ("kubernetes.io/cluster", "x"), ... );  merged key by key.
 */
static int
apply_tags(struct conf_ld *ld, const struct conf_key *k,
    const struct cnode *n, void *base, const struct ck_where *w)
{
	struct conf_kv	**f = ck_field(k, base);
	const struct cnode *kid, *key, *val;
	size_t		 i;
	int		 bad = 0;

	if (n->type == CN_NULL)
		return 0;
	if (n->type == CN_STR)
		return apply_tag_string(ld, k, n, base, w);
	if (n->type != CN_GROUP && n->type != CN_LIST)
		return wrong_type(ld, k, n, w, "a group { key = \"value\"; }");
	for (i = 0; i < n->nkid; i++) {
		kid = n->kid[i];
		if (n->type == CN_GROUP) {
			key = kid;
			val = kid;
		} else if (kid->type == CN_LIST && kid->nkid == 2 &&
		    kid->kid[0]->type == CN_STR) {
			key = kid->kid[0];
			val = kid->kid[1];
		} else {
			ld_err_at(ld, kid, "%stags: element %zu must be a pair "
			    "(\"key\", \"value\")", w->show, i + 1);
			bad = 1;
			continue;
		}
		if (tag_check(ld, kid, n->type == CN_GROUP ? key->name :
		    key->str, val, w) == -1) {
			bad = 1;
			continue;
		}
		tag_set(f, ck_count(k, base), n->type == CN_GROUP ?
		    key->name : key->str, val->str);
		record(ld, k, n->type == CN_GROUP ? key->name : key->str, w, 0);
	}
	if (n->nkid > 0)
		record(ld, k, NULL, w, 1);
	return bad ? -1 : 0;
}

/* What qscale sets in every RunInstances call itself. */
static const char *const spec_owned[] = {
	"MinCount", "MaxCount", "UserData", "ClientToken", "DryRun",
	"Action", "Version"
};

/* Member name of a group, element i of a list; else where. */
static const struct cnode *
spec_node(const struct cnode *g, const char *name, int i,
    const struct cnode *where)
{
	const struct cnode	*m;

	if (g == NULL)
		return where;
	if (name != NULL && g->type == CN_GROUP &&
	    (m = cnode_member(g, name)) != NULL)
		return m;
	if (name == NULL && g->type == CN_LIST && i >= 0 &&
	    (size_t)i < g->nkid)
		return g->kid[i];
	return where;
}

/* spec[name], under the SDK's name or the wire's. */
static const cJSON *
spec_item(const cJSON *o, const char *sdk, const char *wire,
    const char **used)
{
	const cJSON	*it;

	*used = sdk;
	if ((it = cJSON_GetObjectItemCaseSensitive(o, sdk)) != NULL)
		return it;
	*used = wire;
	return cJSON_GetObjectItemCaseSensitive(o, wire);
}

/* The tag keys of the spec's TagSpecifications: none may be qscale's. */
static int
spec_tags_check(struct conf_ld *ld, const struct cnode *n, const cJSON *spec,
    const char *show, const char *path)
{
	const cJSON		*ts, *t, *tags, *tag, *key;
	const struct cnode	*tsn, *tn, *tagsn, *at;
	const char		*tsname, *tname;
	int			 i = 0, j, bad = 0;

	if ((ts = spec_item(spec, "TagSpecifications", "TagSpecification",
	    &tsname)) == NULL || !cJSON_IsArray(ts))
		return 0;
	tsn = spec_node(n, tsname, -1, NULL);
	cJSON_ArrayForEach(t, ts) {
		tn = spec_node(tsn, NULL, i++, NULL);
		if ((tags = spec_item(t, "Tags", "Tag", &tname)) == NULL ||
		    !cJSON_IsArray(tags))
			continue;
		tagsn = spec_node(tn, tname, -1, NULL);
		j = 0;
		cJSON_ArrayForEach(tag, tags) {
			at = spec_node(spec_node(tagsn, NULL, j++, NULL),
			    "Key", -1, NULL);
			key = cJSON_GetObjectItemCaseSensitive(tag, "Key");
			if (!cJSON_IsString(key) ||
			    ck_tag_key_ok(key->valuestring))
				continue;
			ld_err_at(ld, at != NULL ? at : n, "%s%s.%s element "
			    "%d, %s element %d: tag key \"%s\" is reserved "
			    "(keys starting with qscale: are how qscale finds "
			    "its instances, aws: is EC2's)", show, path,
			    tsname, i, tname, j, key->valuestring);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

/*
 * What a custom launch spec may not give, found when the configuration
 * is loaded (qscaled -n), not at the first launch: the parameters qscale
 * sets in every call, and tags of its own.  n is the spec's node (a
 * group whose members have lines, or the string that holds the JSON).
 */
int
ck_launch_spec_check(struct conf_ld *ld, const struct cnode *n,
    const cJSON *spec, const char *show, const char *path)
{
	const cJSON	*it;
	size_t		 i;
	int		 bad = 0;

	cJSON_ArrayForEach(it, spec) {
		for (i = 0; i < QS_ARRAYLEN(spec_owned); i++)
			if (strcmp(it->string, spec_owned[i]) == 0)
				break;
		if (i == QS_ARRAYLEN(spec_owned))
			continue;
		ld_err_at(ld, spec_node(n, it->string, -1, n), "%s%s.%s is "
		    "set by qscale in every launch and cannot be given here "
		    "(MinCount and MaxCount follow the demand, UserData is "
		    "the startup script, ClientToken makes a retried call "
		    "launch nothing twice)", show, path, it->string);
		bad = 1;
	}
	if (spec_tags_check(ld, n, spec, show, path) == -1)
		bad = 1;
	return bad ? -1 : 0;
}

static int
apply_json(struct conf_ld *ld, const struct conf_key *k,
    const struct cnode *n, void *base, const struct ck_where *w)
{
	cJSON		**f = ck_field(k, base), *j = NULL;
	const char	*at;

	if (n->type == CN_GROUP)
		j = cnode_to_json(n);
	else if (n->type == CN_STR && *n->str != '\0') {
		if ((j = cJSON_Parse(n->str)) == NULL) {
			at = cJSON_GetErrorPtr();
			ld_err_at(ld, n, "%s%s is not valid JSON (the error is "
			    "on line %d of the string)", w->show, k->path,
			    json_error_line(n->str, at));
			return -1;
		}
		if (!cJSON_IsObject(j)) {
			cJSON_Delete(j);
			ld_err_at(ld, n, "%s%s must be a JSON object { ... }",
			    w->show, k->path);
			return -1;
		}
	} else if (n->type != CN_NULL && n->type != CN_STR)
		return wrong_type(ld, k, n, w,
		    "a group or a string holding a JSON object");
	if (j != NULL && ck_launch_spec_check(ld, n, j, w->show, k->path) ==
	    -1) {
		cJSON_Delete(j);
		return -1;
	}
	ck_free(k, base);
	*f = j;
	record(ld, k, NULL, w, 0);
	return 0;
}

/* Converts node n for key k into its field in base; -1 on error. */
int
ck_apply(struct conf_ld *ld, const struct conf_key *k, const struct cnode *n,
    void *base, const struct ck_where *w)
{
	switch (k->type) {
	case CK_STR:
		return apply_str(ld, k, n, base, w);
	case CK_BOOL:
		return apply_bool(ld, k, n, base, w);
	case CK_INT:
		return apply_int(ld, k, n, base, w);
	case CK_DUR:
		return apply_dur(ld, k, n, base, w);
	case CK_LEVEL:
		return apply_level(ld, k, n, base, w);
	case CK_ENUM:
		return apply_enum(ld, k, n, base, w);
	case CK_STRLIST:
		return apply_strlist(ld, k, n, base, w);
	case CK_TAGS:
		return apply_tags(ld, k, n, base, w);
	case CK_JSON:
		return apply_json(ld, k, n, base, w);
	}
	return -1;
}

void
ck_free(const struct conf_key *k, void *base)
{
	void	*f = ck_field(k, base);
	size_t	 i, *n;

	switch (k->type) {
	case CK_STR:
	case CK_ENUM:
		if (k->flags & CK_SECRET)
			freezero_str(*(char **)f);
		else
			free(*(char **)f);
		*(char **)f = NULL;
		break;
	case CK_STRLIST:
		n = ck_count(k, base);
		for (i = 0; i < *n; i++)
			free((*(char ***)f)[i]);
		free(*(char ***)f);
		*(char ***)f = NULL;
		*n = 0;
		break;
	case CK_TAGS:
		n = ck_count(k, base);
		for (i = 0; i < *n; i++) {
			free((*(struct conf_kv **)f)[i].key);
			free((*(struct conf_kv **)f)[i].value);
		}
		free(*(struct conf_kv **)f);
		*(struct conf_kv **)f = NULL;
		*n = 0;
		break;
	case CK_JSON:
		cJSON_Delete(*(cJSON **)f);
		*(cJSON **)f = NULL;
		break;
	default:
		break;
	}
}

void
ck_free_all(const struct conf_key *tab, size_t n, void *base)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		ck_free(&tab[i], base);
}

int
ck_is_set(const struct conf_key *k, const void *base)
{
	const void	*f = (const char *)base + k->off;

	switch (k->type) {
	case CK_STR:
	case CK_ENUM:
		return *(char *const *)f != NULL;
	case CK_STRLIST:
	case CK_TAGS:
		return *(const size_t *)(const void *)((const char *)base +
		    k->off_n) > 0;
	case CK_JSON:
		return *(cJSON *const *)f != NULL;
	case CK_DUR:
		return *(const int64_t *)f >= 0;
	default:
		return 1;
	}
}

static size_t
edit_distance(const char *a, const char *b)
{
	size_t	 la = strlen(a), lb = strlen(b), i, j, d[129], prev, tmp;

	if (la > 128 || lb > 128)
		return 1000;
	for (j = 0; j <= lb; j++)
		d[j] = j;
	for (i = 1; i <= la; i++) {
		prev = d[0];
		d[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = d[j];
			d[j] = QS_MIN(QS_MIN(d[j] + 1, d[j - 1] + 1), prev +
			    (tolower((unsigned char)a[i - 1]) ==
			    tolower((unsigned char)b[j - 1]) ? 0 : 1));
			prev = tmp;
		}
	}
	return d[lb];
}

static void
consider(const char *cand, size_t clen, const char *name, size_t *best,
    char *buf, size_t len, const char *prefix)
{
	char	 c[128];
	size_t	 d;

	if (clen >= sizeof(c))
		return;
	memcpy(c, cand, clen);
	c[clen] = '\0';
	if ((d = edit_distance(name, c)) < *best) {
		*best = d;
		snprintf(buf, len, "%s%s%s", prefix, *prefix ? "." : "", c);
	}
}

/*
 * The known key nearest to prefix.name: a sibling a typo away, or the
 * same name in another group ("api_server" -> "clearml.api_server").
 */
const char *
ck_suggest(const struct conf_key *tab, size_t n, const char *prefix,
    const char *name, const char *const *extra, char *buf, size_t len)
{
	size_t		 i, pl = strlen(prefix), nl = strlen(name), best;
	size_t		 limit = nl <= 4 ? 1 : nl <= 8 ? 2 : 3;
	const char	*p, *dot, *last;

	best = limit + 1;
	for (i = 0; i < n + conf_naliases; i++) {
		p = i < n ? tab[i].path : conf_aliases[i - n].path;
		if (i >= n && tab != conf_global_keys)
			break;
		if (pl > 0 && (strncmp(p, prefix, pl) != 0 || p[pl] != '.'))
			continue;
		p += pl > 0 ? pl + 1 : 0;
		dot = strchr(p, '.');
		consider(p, dot ? (size_t)(dot - p) : strlen(p), name, &best,
		    buf, len, prefix);
	}
	for (i = 0; extra != NULL && extra[i] != NULL; i++)
		consider(extra[i], strlen(extra[i]), name, &best, buf, len,
		    prefix);
	if (best <= limit)
		return buf;
	for (i = 0; i < n; i++) {
		last = strrchr(tab[i].path, '.');
		if (last != NULL && strcmp(last + 1, name) == 0) {
			snprintf(buf, len, "%s", tab[i].path);
			return buf;
		}
	}
	return NULL;
}
