/*
 * worker.h: the worker process, one per resource: its poll cycle, the
 * pure decision function plan(), and the startup script it gives every
 * instance.
 */
#ifndef QSCALE_WORKER_H
#define QSCALE_WORKER_H

#include <stddef.h>
#include <stdint.h>

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
};

/* worker.c */
int		 worker_main(struct qscale_conf *, size_t, int);
int		 worker_send(struct wproc *, uint32_t, struct cJSON *);
void		 worker_poll_done(struct wproc *);

/* poll.c */
struct wpoll	*poll_new(struct wproc *);
void		 poll_free(struct wpoll *);
void		 poll_start(struct wproc *);
void		 poll_message(struct wproc *, uint32_t, struct cJSON *);

/* plan.c */

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
