/*
 * common.h: what supervisor, worker processes and qscalectl share:
 * configuration, logging, secret masking, small utilities, HTTP on
 * libevent, the EC2 client and the ClearML client.  The wire protocol
 * between processes is in proto.h.
 */
#ifndef QSCALE_COMMON_H
#define QSCALE_COMMON_H

#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cjson/cJSON.h>

#define QSCALE_VERSION		"0.1.0"

#define QS_ARRAYLEN(a)		(sizeof(a) / sizeof((a)[0]))
#define QS_MIN(a, b)		((a) < (b) ? (a) : (b))
#define QS_MAX(a, b)		((a) > (b) ? (a) : (b))

#define QS_DEFAULT_CONF		"/etc/qscale/qscale.conf"
#define QS_DEFAULT_LOG_DIR	"/var/log/qscale"
#define QS_DEFAULT_PID_FILE	"/run/qscale/qscaled.pid"
#define QS_DEFAULT_SOCKET	"/run/qscale/control.socket"
#define QS_DEFAULT_LISTEN	"127.0.0.1:9800"

/* util.c */
void		*xmalloc(size_t);
void		*xcalloc(size_t, size_t);
void		*xreallocarray(void *, size_t, size_t);
void		*xrealloc_grow(void *, size_t *, size_t);
char		*xstrdup(const char *);
char		*xstrndup(const char *, size_t);
int		 xasprintf(char **, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 freezero_str(char *);
int		 str_eq(const char *, const char *);
struct str_index {
	struct {
		const char	*key;	/* NULL: free */
		size_t		 pos;
	}		*slot;
	size_t		 cap;		/* a power of two, or 0 */
	size_t		 n;
};
ssize_t		 str_index_find(const struct str_index *, const char *);
void		 str_index_add(struct str_index *, const char *, size_t);
void		 str_index_clear(struct str_index *);
int64_t		 now_ms(void);		/* CLOCK_REALTIME in milliseconds */
int64_t		 mono_ms(void);		/* CLOCK_MONOTONIC in milliseconds */
void		 fmt_time_ms(int64_t, char *, size_t);	/* ISO 8601 UTC, ms, Z */
int		 parse_iso8601(const char *, int64_t *);	/* -> epoch ms */
int		 parse_duration(const char *, int64_t *, const char **);
void		 fmt_duration(int64_t, char *, size_t);
int		 set_nonblock(int);
int		 set_cloexec(int);
struct event;
int		 timer_add_ms(struct event *, int64_t);

/* harden.c */
int		 proc_harden(int, char *, size_t);
int		 proc_core_dumps_allowed(void);
int		 dir_check_private(const char *, const char *, char *, size_t);
int		 open_private_file(const char *, int, mode_t, char *, size_t);
FILE		*fopen_regular(const char *, char *, size_t);

/* log.c */
enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG
};

/*
 * Where a formatted, masked line goes.  The supervisor writes its log
 * files; a worker process sends the line to the supervisor.
 */
typedef void	(*log_sink_fn)(int, int64_t, const char *, const char *,
		    void *);

void		 log_init(const char *, int, int);
void		 log_set_procname(const char *);
const char	*log_procname(void);
void		 log_set_level(int);
int		 log_get_level(void);
void		 log_set_stderr(int);
void		 log_set_sink(log_sink_fn, void *);
void		 log_libevent(void);
const char	*log_level_name(int);
int		 log_level_parse(const char *);
void		 log_format_line(char *, size_t, int64_t, int, const char *,
		    const char *);
void		 log_msg(int, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 log_vmsg(int, const char *, va_list);
void		 log_warn(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
void		 log_warnx(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
void		 log_info(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
void		 log_debug(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
void		 fatal(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));
void		 fatalx(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));

/* mask.c: the one place secrets are hidden from any output. */
#define MASK_TEXT	"********"
enum mask_form {
	MASK_FORM_HOCON,	/* clearml.conf: JSON rules, \u for the rest */
	MASK_FORM_JSON,		/* as cJSON prints a string */
	MASK_FORM_LIBCONFIG,	/* qscaled -nv: \xNN */
	MASK_FORM_SHELL_SQ	/* inside '...': ' is '\'' */
};
char		*mask_escape(const char *, enum mask_form);
void		 mask_register(const char *);
void		 mask_unregister(const char *);
void		 mask_clear(void);
char		*mask_dup(const char *);
void		 mask_buf(char *, size_t);

/* config.c, conf_src.c, conf_keys.c, conf_out.c */
struct conf_kv {
	char		*key;
	char		*value;
};

struct conf_ebs {
	char		*device;	/* "/dev/sda1" */
	int		 size_gb;	/* 0: AMI default */
	char		*type;		/* "gp3" */
	int		 iops;		/* 0: the type's baseline */
	int		 throughput;	/* MiB/s, gp3; 0: the baseline */
};

struct conf_iam_profile {
	char		*arn;
	char		*name;
};

struct conf_resource {
	char		*name;
	char		*queue;
	char		*instance_type;
	int		 cpu_mode;
	int		 spot;
	int64_t		 max_idle_time;		/* ms, -1: the global */
	int64_t		 max_spin_up_time;	/* ms, -1: the global */
	int64_t		 spot_rollback_timeout;	/* ms */
	int64_t		 spot_blackout_period;	/* ms */
	char		*availability_zone;
	char		*ami;
	int		 max_instances;
	char		**subnets;
	size_t		 nsubnets;
	char		**security_groups;
	size_t		 nsecurity_groups;
	char		*key_pair;
	struct conf_kv	*tags;
	size_t		 ntags;
	struct conf_ebs	 ebs;
	char		*docker_image;	/* NULL: agent.docker_image */
	struct conf_iam_profile	 iam_instance_profile;	/* NULLs: global */
	cJSON		*custom_launch_spec;	/* its own, or NULL */
	const char	*file;		/* where the block was read */
	int		 line;

	/*
	 * Effective values, resolved at load time and pointing into the
	 * same configuration: what a worker process launches with.
	 */
	const char	*eff_docker_image;	/* or NULL: none */
	const struct conf_iam_profile *eff_iam_instance_profile;
	cJSON		*eff_launch_spec;	/* global + own, or NULL */
};

struct conf_clearml {
	char		*api_server;
	char		*web_server;
	char		*files_server;
	char		*access_key;
	char		*secret_key;		/* secret */
	int64_t		 request_timeout;	/* ms */
	int		 report;
	char		*report_project;
	char		*report_name;		/* default "qscale <name>" */
	int64_t		 report_logs_interval;	/* ms; 0: only at stop */
};

struct conf_aws {
	char		*region;
	int		 use_iam_role;
	char		*access_key_id;
	char		*secret_access_key;	/* secret */
	char		*session_token;		/* secret */
	char		*profile;
	char		*endpoint;
	int		 max_attempts;
	int64_t		 retry_base_delay;	/* ms */
	int64_t		 retry_max_delay;	/* ms */
	int64_t		 request_timeout;	/* ms */
	/* where access_key_id came from ("FILE:LINE", "environment ..."),
	   or NULL: no static keys, use the shared file or the role */
	char		*access_key_source;
};

struct conf_git {
	char		*user;
	char		*password;		/* secret */
};

struct conf_agent {
	char		*docker_image;
	char		*init_script;		/* appended across layers */
	char		*extra_clearml_conf;	/* appended across layers */
	int		 exclude_bashrc;
	char		*agent_version;		/* NULL: latest */
	char		*access_key;		/* NULL: clearml.access_key */
	char		*secret_key;		/* secret */
};

/* Errors collected while loading, each "FILE:LINE: message". */
struct conf_errors {
	char		**msg;
	size_t		 n;
};

/* Where a value came from: "default", "FILE:LINE", "environment VAR". */
struct conf_origin {
	char		*key;		/* "aws.region", "resources.gpu.ami" */
	char		*origin;
};

struct qscale_conf {
	char		*file;
	char		*name;
	char		*workers_prefix;
	int64_t		 polling_interval;	/* ms */
	int64_t		 max_idle_time;		/* ms */
	int64_t		 max_spin_up_time;	/* ms */
	int64_t		 vanished_worker_grace;	/* ms */
	int64_t		 worker_last_seen;	/* ms */
	int		 log_level;
	char		*log_dir;
	char		*pid_file;
	int		 warn_duplicate_tasks;
	int		 ignore_include_errors;
	char		*vault_file;		/* the app's vault text */
	int		 max_instances_total;	/* 0: no global cap */
	char		*spot_blackout_scope;	/* "global" or "resource" */
	int		 max_requeues;
	struct conf_clearml	 clearml;
	struct conf_aws		 aws;
	struct conf_git		 git;
	struct conf_agent	 agent;
	struct conf_iam_profile	 iam_instance_profile;
	cJSON		*custom_launch_spec;	/* object or NULL */
	struct conf_resource	*resources;
	size_t		 nresources;
	char		*status_listen;		/* "host:port"; NULL: off */
	int		 status_loopback;	/* it is a loopback address */
	char		*control_socket;

	struct conf_origin	*origins;
	size_t		 norigins;
	size_t		 origins_cap;
	struct str_index	 origin_index;	/* key -> origins[] */
	char		**srcfiles;		/* files read, main first */
	size_t		 nsrcfiles;
	/*
	 * What loads but does nothing as written, or may not do what was
	 * meant, and the errors of files left out (ignore_include_errors):
	 * "FILE:LINE: message", for qscaled -n and the log.
	 */
	struct conf_errors	 warnings;
};

#define CONF_PRINT_SECRETS	0x01	/* show secrets instead of ******** */
#define CONF_PRINT_NO_ORIGINS	0x02	/* no "# origin" comments */

struct qscale_conf	*conf_load(const char *, struct conf_errors *);
void		 conf_free(struct qscale_conf *);
void		 conf_errors_clear(struct conf_errors *);
void		 conf_register_secrets(const struct qscale_conf *);
void		 conf_log_warnings(const struct qscale_conf *);
char		*conf_print(const struct qscale_conf *, int);
cJSON		*conf_to_json(const struct qscale_conf *, int);
void		 conf_json_merge(cJSON *, const cJSON *);
char		*conf_resource_fingerprint(const struct qscale_conf *,
		    size_t);
const struct conf_resource *conf_resource_find(const struct qscale_conf *,
		    const char *);
const char	*conf_origin(const struct qscale_conf *, const char *);
char		*conf_peek_socket(const char *, char **);

/* http.c */

/* ec2.c */

/* clearml.c */

#endif /* QSCALE_COMMON_H */
