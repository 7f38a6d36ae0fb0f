/*
 * supervisor.h: the parent process.  It owns the configuration, forks one
 * worker process per resource, restarts the ones that crash, aggregates
 * their logs and state, enforces what crosses resources and answers
 * qscalectl on the control socket.
 */
#ifndef QSCALE_SUPERVISOR_H
#define QSCALE_SUPERVISOR_H

#include <sys/queue.h>
#include <sys/types.h>

#include <stdint.h>

#include <cjson/cJSON.h>

struct event_base;
struct event;
struct bufferevent;
struct evbuffer;
struct qscale_conf;
struct proto_msg;
struct metrics;
struct report;
struct report_props;
struct cml_client;

#define SUP_BACKOFF_MIN_MS	1000
#define SUP_BACKOFF_MAX_MS	60000
#define SUP_HEALTHY_MS		(5 * 60 * 1000)
#define SUP_STOP_GRACE_MS	15000
#define SUP_EXIT_NORESPAWN	PROTO_EXIT_NORESPAWN

enum sup_child_state {
	CHILD_STARTING,		/* forked, no hello yet */
	CHILD_RUNNING,
	CHILD_STOPPING,		/* asked to stop */
	CHILD_BACKOFF,		/* exited, respawn timer armed */
	CHILD_DISABLED,		/* exited with code 2: not respawned */
};

/* How the supervisor knows a resource's live instances. */
enum sup_live_known {
	LIVE_UNKNOWN,		/* never counted since it was started */
	LIVE_CARRIED,		/* what a process that exited left */
	LIVE_SEEN,		/* read from EC2 by the running process */
};

struct sup_blackout {
	int			 active;
	int64_t			 until_ms;
	char			 origin[80];	/* resource that failed */
	char			 reason[160];
};

struct sup_child {
	TAILQ_ENTRY(sup_child)	 entry;
	struct sup		*sup;
	char			*name;		/* resource name */
	size_t			 index;		/* in the current config */
	uint32_t		 wire_index;	/* index the process was given */
	char			*fingerprint;
	pid_t			 pid;		/* 0 when not running */
	struct bufferevent	*bev;
	enum sup_child_state	 state;
	int			 restarts;
	int64_t			 backoff_ms;
	int64_t			 started_mono;
	int64_t			 started_ms;
	struct event		*ev_respawn;
	int			 log_level;	/* -1: the configured one */
	int			 removed;	/* reload dropped it */
	int			 replace;	/* reload changed it */
	char			 last_exit[96];
	int64_t			 last_exit_ms;
	cJSON			*snapshot;	/* last MSG_STATE body */
	int64_t			 snapshot_ms;
	int			 granted;	/* launches granted, not seen */
	/* the global cap's count: see global.c */
	int			 live;		/* instances last known live */
	int			 bound;		/* max_instances: if unknown */
	enum sup_live_known	 live_known;
	int64_t			 req_id;	/* launch request waiting */
	int			 req_want;	/* 0: none */
	int64_t			 req_mono;
	struct sup_blackout	 blackout;	/* spot_blackout_scope
						   "resource": its own */
};
TAILQ_HEAD(sup_children, sup_child);

/* Instances of resources the configuration no longer has: orphan.c */
struct sup_orphan {
	char			*id;		/* instance id */
	char			*resource;	/* its qscale:resource tag */
	char			*type;		/* instance type */
	char			*state;		/* EC2 state */
	char			*worker;	/* its ClearML worker, or "" */
	char			*task;		/* the task it runs, or "" */
	int64_t			 launch_ms;
	int64_t			 seen_ms;	/* first seen as an orphan */
	int64_t			 idle_since_ms;	/* 0: busy */
	int			 terminating;
	int			 term_sent;
	int			 alive;		/* in the last read */
	int			 fresh;		/* new in the last read */
};

struct sup_orphans {
	int			 known;		/* read since start, removal */
	int			 live;		/* at the last read */
	int			 carried;	/* removed, not yet read */
	uint64_t		 gen;		/* bumped by each removal */
	struct sup_orphan	*list;
	size_t			 n;
	uint64_t		 terminated;	/* since start */
	int64_t			 last_read_ms;
	char			 last_error[256];
	int			 failing;	/* said so in the log */
	void			*watch;		/* orphan.c's state */
};

struct sup {
	struct event_base	*base;
	struct qscale_conf	*conf;
	char			*conf_path;
	int			 debug;
	int			 foreground;
	int			 shutting_down;
	int64_t			 started_ms;
	struct sup_children	 children;
	struct event		*ev_signals[5];
	struct event		*ev_stop_timer;
	struct event		*ev_tick;
	struct event		*ev_blackout;	/* its end; NULL until one */
	struct sup_blackout	 blackout;
	struct report		*report;	/* report.c; NULL: off */
	int			 reloads;
	int			 reload_failures;
	char			 last_reload_error[512];
	struct metrics		*metrics;	/* metrics.c; NULL until used */
	struct sup_orphans	 orphans;
};

/* sup.c */
int		 sup_run(struct sup *);
int		 sup_reload(struct sup *, char **);
void		 sup_shutdown(struct sup *, const char *);
int		 sup_set_log_level(struct sup *, const char *, int);
cJSON		*sup_status_json(struct sup *);

/* child.c */
struct sup_child *sup_child_new(struct sup *, size_t);
void		 sup_child_spawn(struct sup_child *);
void		 sup_child_stop(struct sup_child *);
void		 sup_child_kill(struct sup_child *, const char *);
void		 sup_child_free(struct sup_child *);
void		 sup_child_reap(struct sup *);
int		 sup_child_send(struct sup_child *, uint32_t, cJSON *);
void		 sup_child_set_log_level(struct sup_child *, int);
struct sup_child *sup_child_find(struct sup *, const char *);
const char	*sup_child_state_name(enum sup_child_state);
int		 sup_children_alive(struct sup *);

/* global.c */
#define SUP_GRANT_WAIT_MS	3000	/* for unknown counts; < the worker's */
void		 sup_global_message(struct sup_child *, struct proto_msg *);
void		 sup_global_child_state(struct sup_child *);
void		 sup_global_child_exited(struct sup_child *);
void		 sup_global_child_removed(struct sup_child *);
void		 sup_global_counts_changed(struct sup *);
void		 sup_global_tick(struct sup *);
void		 sup_global_child_started(struct sup_child *);
cJSON		*sup_global_status(struct sup *);
const struct sup_blackout *sup_global_blackout_of(const struct sup_child *);
cJSON		*sup_global_blackout_json(const struct sup_child *);

/* orphan.c: instances of resources no longer configured */
struct ec2_instance;
struct cml_worker;
struct orphan_seen {
	char			*id;
	char			*resource;
	char			*type;
	char			*state;
	int64_t			 launch_ms;
};
int		 orphan_update(struct sup_orphans *, const struct orphan_seen *,
		    size_t, const struct cml_worker *, size_t, int,
		    const char *, int64_t, int64_t);
void		 orphan_sweep(struct sup_orphans *);
void		 orphan_list_clear(struct sup_orphans *);
void		 orphan_seen_clear(struct orphan_seen *, size_t);
size_t		 orphan_pick(const struct qscale_conf *,
		    const struct ec2_instance *, size_t, struct orphan_seen **);
void		 orphan_start(struct sup *);
void		 orphan_stop(struct sup *);
void		 orphan_read_soon(struct sup *);
cJSON		*orphan_status_json(struct sup *);
int		 orphan_dry_run(const struct qscale_conf *);

/* report.c: the autoscaler as a task in its ClearML server */
#define REPORT_MIN_INTERVAL_MS	10000	/* polling_interval, at least */
#define REPORT_MAX_SCALARS	10000	/* kept while the server is away */
#define REPORT_MAX_LOGS		5000	/* log lines kept, and ... */
#define REPORT_MAX_LOG_BYTES	(2 * 1024 * 1024)	/* their text */
#define REPORT_BATCH_EVENTS	500	/* one events.add_batch */
#define REPORT_BATCH_BYTES	(512 * 1024)

struct report_ev {
	TAILQ_ENTRY(report_ev)	 entry;
	uint64_t		 seq;
	int64_t			 ts;		/* epoch ms */
	int64_t			 iter;		/* scalar */
	const char		*metric;	/* scalar, static */
	char			*variant;	/* scalar */
	double			 value;		/* scalar */
	int			 level;		/* log */
	char			*msg;		/* log, masked */
};
TAILQ_HEAD(report_evs, report_ev);

/* What waits for the server, oldest first, bounded. */
struct report_backlog {
	struct report_evs	 scalars;
	struct report_evs	 logs;
	size_t			 nscalars;
	size_t			 nlogs;
	size_t			 log_bytes;
	size_t			 max_scalars;
	size_t			 max_logs;
	size_t			 max_log_bytes;
	uint64_t		 seq;
	uint64_t		 dropped_scalars;	/* not yet told */
	uint64_t		 dropped_logs;
};

/* What one batch carried. */
struct report_sent {
	uint64_t		 scalar_seq;	/* scalars up to this one */
	uint64_t		 log_seq;	/* lines up to this one */
	uint64_t		 dropped_scalars;	/* told in its note */
	uint64_t		 dropped_logs;
	size_t			 nevents;
	int			 full;		/* more was left behind */
};

typedef cJSON	*(*report_status_fn)(void *);	/* sup_status_json */
/* The levels in force: { "": supervisor's, "RESOURCE": its process's } */
typedef cJSON	*(*report_levels_fn)(void *);
/* Sets the level of a resource's process, or of all (NULL); -1: none */
typedef int	 (*report_set_level_fn)(void *, const char *, int);
struct report_env {
	struct event_base	*base;
	const char		*conf_path;
	report_status_fn	 status;
	report_levels_fn	 levels;
	report_set_level_fn	 set_level;
	void			*arg;
};

/* report_logs.c */
#define REPORT_STOP_UPLOAD_MS	1500	/* the logs' upload at a stop */
typedef void	 (*report_logs_done_fn)(void *);
struct report_logs;
struct http_client;
struct report_logs *report_logs_new(struct http_client *, struct cml_client *,
		    const struct qscale_conf *);
void		 report_logs_conf(struct report_logs *,
		    const struct qscale_conf *);
void		 report_logs_free(struct report_logs *);
int		 report_logs_busy(const struct report_logs *);
void		 report_logs_round(struct report_logs *, const char *,
		    const char *, const char *, int, report_logs_done_fn,
		    void *);

/* report_props.c */
struct report_props *report_props_new(const struct report_env *,
		    struct cml_client *);
void		 report_props_free(struct report_props *);
void		 report_props_tick(struct report_props *, const char *);

struct report	*report_start(const struct report_env *,
		    const struct qscale_conf *);
struct report	*report_reload(struct report *, const struct report_env *,
		    const struct qscale_conf *);
void		 report_finish(struct report *);
void		 report_free(struct report *);
cJSON		*report_status_json(const struct report *);
void		 report_backlog_init(struct report_backlog *, size_t, size_t,
		    size_t);
void		 report_backlog_clear(struct report_backlog *);
void		 report_backlog_move(struct report_backlog *,
		    struct report_backlog *);
void		 report_backlog_line(struct report_backlog *, const char *);
size_t		 report_backlog_status(struct report_backlog *, const cJSON *,
		    int64_t, int64_t);
char		*report_batch(const struct report_backlog *, const char *,
		    int64_t, size_t, size_t, struct report_sent *);
void		 report_backlog_sent(struct report_backlog *,
		    const struct report_sent *);

/* logsink.c */
int		 logsink_open(const char *, char *, size_t);
int		 logsink_reopen(void);
void		 logsink_close(void);
void		 logsink_set_stderr(int);
void		 logsink_line(int, int64_t, const char *, const char *);
void		 logsink_sink(int, int64_t, const char *, const char *, void *);
void		 logsink_forget(const char *);
void		 sup_log(const char *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
typedef void	(*logsink_sub_fn)(const char *, void *);
int		 logsink_tail(const char *, size_t, logsink_sub_fn, void *);
void		*logsink_subscribe(const char *, logsink_sub_fn, void *);
void		 logsink_unsubscribe(void *);

/* check.c: where a key was set, for --check's lines */
void		 check_key_where(const struct qscale_conf *,
		    const struct conf_resource *, const char *, char *, size_t);

/* check_clearml.c: the ClearML half of qscaled --check */
struct http_client;
int		 check_clearml(const struct qscale_conf *, struct event_base *,
		    struct http_client *);

/* metrics.c: counters that survive restarts, time series, Prometheus */
#define METRICS_FINE_STEP_MS	5000
#define METRICS_FINE_POINTS	1440	/* 2 hours */
#define METRICS_COARSE_STEP_MS	60000
#define METRICS_COARSE_POINTS	1440	/* 24 hours */
void		 metrics_snapshot(struct sup_child *);
void		 metrics_event(struct sup_child *, const cJSON *);
void		 metrics_duplicate_task(struct sup *);
void		 metrics_sample(struct sup *, int64_t);
char		*metrics_render(struct sup *);
cJSON		*metrics_series_json(struct sup *, int64_t, int64_t);
void		 metrics_free(struct sup *);

/* status.c: the HTTP status server */
int		 status_listen(struct sup *, const char *, char *, size_t);
void		 status_announce(void);
void		 status_close(void);

/* control.c */
int		 control_listen(struct sup *, const char *, char *, size_t);
void		 control_close(void);

/* check.c: qscaled --check */
struct http_client;
int		 check_main(const struct qscale_conf *);
int		 check_aws(const struct qscale_conf *, struct event_base *,
		    struct http_client *);

#endif /* QSCALE_SUPERVISOR_H */
