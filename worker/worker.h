/*
 * worker.h: the worker process, one per resource: its poll cycle, the
 * pure decision function plan(), and the startup script it gives every
 * instance.
 */
#ifndef QSCALE_WORKER_H
#define QSCALE_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct qscale_conf;
struct conf_resource;
struct event_base;
struct event;
struct bufferevent;

/* The worker process's own state; one per process. */
struct wproc {
	struct event_base		*base;
	struct qscale_conf		*conf;
	const struct conf_resource	*res;
	size_t				 index;
	struct bufferevent		*bev;	/* to the supervisor */
	struct event			*ev_poll;
	struct event			*ev_sig[2];
	int				 stopping;
	int				 polling;	/* a poll is under way */
	uint64_t			 polls;
	int64_t				 last_poll_ms;
	int				 blackout;	/* spot blackout elsewhere */
	int64_t				 blackout_until_ms;
	char				 blackout_origin[80];
	struct wpoll			*poll;	/* poll.c's state */
	int64_t				 poll_start_mono;
	int64_t				 next_wake_ms;	/* epoch ms, 0: none */
	struct proto_outq		 outq;	/* waiting to be sent */
	int64_t				 drops_since_ms; /* first drop */
};

/* worker.c */
int		 worker_main(struct qscale_conf *, size_t, int);
int		 worker_send(struct wproc *, uint32_t, struct cJSON *);
void		 worker_log_action(int, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 worker_poll_done(struct wproc *);

/*
 * plan.c: the decision of one poll, a pure function.  No I/O, no clock,
 * no globals: the observation, the settings and the memory come in, the
 * actions go out, and the memory (what this process learned in earlier
 * polls: idle-since times, spot failures, re-queue counts) is updated.
 */
enum plan_state {
	PLAN_ST_PENDING = 0,
	PLAN_ST_RUNNING,
	PLAN_ST_SHUTTING_DOWN,
	PLAN_ST_TERMINATED,
	PLAN_ST_STOPPING,
	PLAN_ST_STOPPED,
	PLAN_ST_OTHER
};

enum plan_reason {
	PLAN_R_NONE = 0,
	PLAN_R_IDLE,		/* idle for max_idle_time */
	PLAN_R_SPIN_UP,		/* never registered within max_spin_up_time */
	PLAN_R_VANISHED,	/* its agent disappeared from ClearML */
	PLAN_R_STOPPED,		/* stopped outside qscale: a stopped one bills */
	PLAN_R_INTERRUPTED,	/* gone without qscale (spot interruption) */
	PLAN_R_MAX
};

/* What the settings of one resource say, in milliseconds. */
struct plan_conf {
	int		 max_instances;
	int		 spot;
	int		 max_requeues;
	int64_t		 max_idle_ms;
	int64_t		 max_spin_up_ms;
	int64_t		 vanished_grace_ms;
	int64_t		 spot_rollback_ms;
	int64_t		 polling_ms;
};

struct plan_obs_instance {
	char		 id[32];
	enum plan_state	 state;
	int		 spot;
	int64_t		 launch_ms;
	char		 state_reason[96];
	char		 subnet[32];
};

struct plan_obs_worker {
	const char	*id;
	char		 instance[32];	/* the last field of the worker id */
	const char	*task;		/* NULL: idle */
	int64_t		 register_ms;
};

/* When the tasks that workers finished since the last poll ended. */
struct plan_obs_task {
	const char	*id;
	int64_t		 ended_ms;	/* 0: unknown */
};

struct plan_obs {
	int64_t				 now_ms;
	int				 queue_ok;
	int				 workers_ok;
	int				 ec2_ok;
	size_t				 pending;	/* tasks in the queue */
	const struct plan_obs_instance	*inst;
	size_t				 ninst;
	const struct plan_obs_worker	*workers;
	size_t				 nworkers;
	const struct plan_obs_task	*tasks;
	size_t				 ntasks;
	const char *const		*entries;	/* the queue's task ids,
							   sorted (strcmp) */
	size_t				 nentries;
	int				 grant;		/* -1: no global cap */
	int				 blackout;	/* spot blackout on here */
	int64_t				 blackout_until_ms;
	const char			*blackout_origin;	/* or NULL */
};

/* One instance as this process knows it. */
struct plan_inst {
	char		 id[32];
	enum plan_state	 state;
	int		 spot;
	int		 adopted;	/* found by its tags, not launched here */
	int		 observed;	/* EC2 has listed it at least once */
	int		 registered;	/* its worker was seen */
	int		 terminating;	/* qscale asked EC2 to terminate it */
	int		 unchecked;	/* ... and could not look at its
					   worker after the call */
	int64_t		 launch_ms;
	int64_t		 seen_ms;	/* launched or adopted by this process */
	int64_t		 idle_since_ms;	/* 0: not idle */
	int64_t		 busy_seen_ms;	/* last poll that saw it busy */
	int64_t		 healthy_ms;	/* last poll that saw it live, its
					   worker listed, before qscale
					   began to terminate it */
	int64_t		 missing_since_ms;
	int64_t		 terminate_ms;
	enum plan_reason reason;	/* why it is being terminated */
	char		 task[40];	/* the task its worker held last */
	char		 worker[160];
	char		 subnet[32];
};

struct plan_requeue {
	char		 task[40];
	int		 count;
	char		 instance[32];	/* lost with this one, last */
};

struct plan_memory {
	struct plan_inst	*inst;
	size_t			 ninst;
	int64_t			 spot_failure_ms;	/* first, for this demand */
	int			 spot_attempt;	/* instances it wanted */
	int64_t			 backoff_until_ms;	/* no launch before */
	int64_t			 backoff_ms;
	int64_t			 last_poll_ms;
	struct plan_requeue	*requeues;
	size_t			 nrequeues;
	char			(*entries)[40];	/* the last poll's queue,
						   sorted */
	size_t			 nentries;
	int			 entries_ok;	/* entries were read */
	struct plan_action	*losses;	/* looks at lost tasks that
						   ClearML failed: again */
	size_t			 nlosses;
};

enum plan_action_type {
	PLAN_LAUNCH = 1,	/* count, spot */
	PLAN_TERMINATE,		/* instance, worker, reason, recheck */
	PLAN_UNREGISTER,	/* worker: a zombie of a gone instance */
	PLAN_REQUEUE,		/* task (or ""), worker, instance, since:
				   the tasks lost with the instance */
	PLAN_FORGET,		/* instance gone: log it (reason, task) */
	PLAN_ADOPT		/* an instance with our tags, now known */
};

struct plan_action {
	enum plan_action_type	 type;
	enum plan_reason	 reason;
	int			 count;
	int			 spot;
	/* of count, those that would be spot but for the rollback or a
	   blackout, and why, for the log */
	int			 by_rollback;
	int			 by_blackout;
	char			 converted[192];
	int			 recheck;	/* terminate only if still idle */
	int			 console;	/* log its console output first */
	int64_t			 since_ms;	/* PLAN_REQUEUE: last healthy */
	int			 tries;		/* PLAN_REQUEUE: looks failed */
	char			 instance[32];
	char			 worker[160];
	char			 task[40];
	char			 why[192];
};

struct plan_output {
	struct plan_action	*actions;
	size_t			 nactions;
	int			 demand;	/* pending - idle - booting */
	int			 live;
	int			 idle;
	int			 busy;
	int			 booting;
	int			 want;		/* launches before the grant */
	int			 unaccounted;	/* tasks gone from the queue
						   that no worker shows */
	int			 spot_market;	/* launches would be spot */
	int64_t			 next_wake_ms;	/* a timer expires then */
	char			 note[192];	/* why nothing was done */
};

void		 plan_conf_from(struct plan_conf *, const struct qscale_conf *,
		    const struct conf_resource *);
void		 plan_resource(const struct plan_obs *, const struct plan_conf *,
		    struct plan_memory *, struct plan_output *);
size_t		 plan_transitions(const struct plan_memory *,
		    const struct plan_obs *, const char **, size_t);
struct plan_inst *plan_memory_find(struct plan_memory *, const char *);
struct plan_inst *plan_memory_add(struct plan_memory *, const char *);
void		 plan_memory_launched(struct plan_memory *, const char *, int,
		    int64_t, const char *, int64_t);
void		 plan_memory_spot_failed(struct plan_memory *, int64_t,
		    int);
void		 plan_memory_backoff(struct plan_memory *, int64_t, int64_t);
void		 plan_memory_terminating(struct plan_memory *, const char *,
		    enum plan_reason, int64_t);
void		 plan_memory_unchecked(struct plan_memory *, const char *);
int		 plan_memory_requeued(struct plan_memory *, const char *,
		    const char *);
void		 plan_memory_unrequeued(struct plan_memory *, const char *);
int		 plan_memory_loss_again(struct plan_memory *,
		    const struct plan_action *);
int		 plan_memory_requeued_for(const struct plan_memory *,
		    const char *, const char *);
size_t		 plan_unaccounted(const char *const *, size_t,
		    const char *const *, size_t, const char *const *, size_t);

/*
 * What ClearML says now of a task lost with an instance, for
 * plan_requeue_verdict(): 1 to put it back in its queue, 0 not, and why.
 */
struct plan_lost_task {
	const char	*status;
	const char	*status_reason;
	int64_t		 status_changed_ms;	/* 0: unknown */
	const char	*holder;	/* the worker that lists it now */
	int		 seen;		/* qscale saw the lost worker hold it */
};

#define PLAN_CLOCK_SLACK_MS	1000	/* ClearML's clock against ours */
#define PLAN_AGENT_ABORT	"user abort"	/* an agent's SIGTERM stop */

int		 plan_requeue_verdict(const struct plan_lost_task *,
		    const char *, int64_t, char *, size_t);
void		 plan_memory_copy(struct plan_memory *,
		    const struct plan_memory *);
void		 plan_memory_clear(struct plan_memory *);
void		 plan_output_clear(struct plan_output *);
const char	*plan_reason_name(enum plan_reason);
enum plan_state	 plan_state_parse(const char *);
const char	*plan_state_name(enum plan_state);
int		 plan_worker_instance(const char *, const char *, char *, size_t);

/*
 * poll.c and act.c: one poll (observe in parallel, decide, act in
 * parallel, report) and the state a worker process keeps across polls.
 */
struct http_client;
struct cml_client;
struct ec2_client;
struct cml_queue;

struct wobs_worker {
	char		*id;
	char		*task;		/* NULL: idle */
	int64_t		 register_ms;
	char		 instance[32];
};

struct wcounters {
	uint64_t	 launched;		/* instances */
	uint64_t	 launch_calls;
	uint64_t	 launch_errors;
	uint64_t	 terminated[8];		/* by enum plan_reason */
	uint64_t	 requeued;
	uint64_t	 converted_rollback;	/* on-demand, not spot */
	uint64_t	 converted_blackout;
	uint64_t	 errors;		/* calls that failed */
	uint64_t	 instance_ms;		/* instance time observed */
};

/* spotwarn.c: spot capacity errors, one warning per cause and episode */
struct spot_warn {
	char		 code[64];
	uint64_t	 more;		/* counted, not logged */
	int64_t		 last_ms;
	char		 last_request[80];
};

struct spot_warns {
	struct spot_warn w[8];
	size_t		 n;
};

int		 spot_warn_note(struct spot_warns *, const char *,
		    const char *, int64_t);
uint64_t	 spot_warn_end(struct spot_warns *, const char *, char *,
		    size_t);

struct wpoll {
	struct wproc		*w;
	struct http_client	*http;
	struct cml_client	*cml;
	struct ec2_client	*ec2;
	int			 dry_run;	/* qscaled --plan: no changes */
	char			 init_error[320];
	char			*user_data;
	char			 prefix_res[160];	/* "<prefix>:<res>" */
	char			 pattern[170];		/* "<prefix>:<res>:*" */
	char			 queue_id[40];
	int			 queue_missing;

	/* the poll under way */
	int			 phase;
	int			 ops;		/* calls in flight */
	int64_t			 start_ms;
	int64_t			 start_mono;
	int			 queue_ok, workers_ok, ec2_ok;
	size_t			 pending;
	int64_t			 oldest_ms;	/* oldest entry's added */
	char			**entry_ids;	/* the queue's, sorted */
	struct wobs_worker	*workers;
	size_t			 nworkers;
	struct plan_obs_instance *inst;
	size_t			 ninst;
	struct plan_obs_task	*ended;
	size_t			 nended;
	char			**ended_ids;
	int			 grant;
	uint64_t		 grant_id;
	int			 grant_waiting;
	struct event		*ev_grant;
	struct plan_memory	 mem;
	struct plan_output	 out;
	char			 obs_error[3][1024];	/* queue, workers, ec2 */

	/* acting */
	int			 act_ops;
	char			**recheck_idle;	/* workers seen idle fresh */
	size_t			 nrecheck_idle;
	int			 recheck_ok;
	char			**recheck_seen;	/* every worker seen fresh */
	size_t			 nrecheck_seen;
	int			 term_ops;

	/* what the status shows */
	struct wcounters	 count;
	char			 last_error[1024];
	int64_t			 last_error_ms;
	struct spot_warns	 spot_warns;
	int64_t			 last_duration_ms;
	char			 last_note[192];
	int64_t			 last_instance_ms;	/* for instance_ms */
	long long		 shown[4];	/* pending, idle, busy, booting */
	int64_t			 shown_ms;	/* when logged at info, or 0 */
	char			 last_converted[208];	/* "N why" */
	int64_t			 last_converted_ms;
};

/* poll.c */
struct wpoll	*poll_new(struct wproc *);
void		 poll_free(struct wpoll *);
void		 poll_start(struct wproc *);
void		 poll_message(struct wproc *, uint32_t, struct cJSON *);
void		 poll_error(struct wpoll *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 poll_event(struct wpoll *, const char *, struct cJSON *);
void		 poll_acted(struct wpoll *);
void		 poll_stopping(struct wpoll *);

/* dryrun.c */
int		 poll_dry_run(struct qscale_conf *);

/* act.c */
void		 act_start(struct wpoll *);
void		 act_op_done(struct wpoll *);
void		 act_spot_episode_end(struct wpoll *, const char *);

/*
 * userdata.c: the startup script of one resource's instances (DESIGN 5).
 * Returns a new string, or NULL with the reason in err.
 */
char		*userdata_build(const struct qscale_conf *, size_t, char *,
		    size_t);

/*
 * launch.c: the RunInstances request of one resource: every field of the
 * resource and the configuration, the ownership tags (qscale:autoscaler,
 * qscale:resource) and the user's tags, the startup script.  The request
 * points into the configuration; launch_spec_clear() frees what the
 * build allocated.  Args: the resource index, the subnet (NULL: none or
 * the availability zone), spot, MaxCount, ClientToken, user data, DryRun.
 */
struct ec2_launch;
int		 launch_spec_build(struct ec2_launch *,
		    const struct qscale_conf *, size_t, const char *, int, int,
		    const char *, const char *, int);
void		 launch_spec_clear(struct ec2_launch *);

#endif /* QSCALE_WORKER_H */
