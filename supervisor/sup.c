/*
 * sup.c: the supervisor's main loop.  Signals are libevent events: HUP
 * reloads (parse first, keep the running configuration on error, restart
 * only the worker processes whose resource changed), TERM and INT stop
 * gracefully (workers first), USR1 reopens the log files, CHLD reaps.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "proto.h"
#include "supervisor.h"

static cJSON *
sup_report_status(void *arg)
{
	return sup_status_json(arg);
}

static cJSON *
sup_report_levels(void *arg)
{
	struct sup		*sup = arg;
	struct sup_child	*c;
	cJSON			*o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "", log_level_name(log_get_level()));
	TAILQ_FOREACH(c, &sup->children, entry)
		if (!c->removed)
			cJSON_AddStringToObject(o, c->name, log_level_name(
			    c->log_level >= 0 ? c->log_level :
			    sup->conf->log_level));
	return o;
}

/*
 * The log level of one resource's process, or of every process and the
 * supervisor (RESOURCE NULL), as qscalectl log-level sets it; -1 when no
 * resource has that name.
 */
int
sup_set_log_level(struct sup *sup, const char *resource, int level)
{
	struct sup_child	*c;

	if (resource != NULL) {
		if ((c = sup_child_find(sup, resource)) == NULL)
			return -1;
		c->log_level = level;
		sup_child_set_log_level(c, level);
		return 0;
	}
	log_set_level(level);
	TAILQ_FOREACH(c, &sup->children, entry) {
		c->log_level = level;
		sup_child_set_log_level(c, level);
	}
	return 0;
}

static int
sup_report_set_level(void *arg, const char *resource, int level)
{
	return sup_set_log_level(arg, resource, level);
}

static void
sup_report_env(struct sup *sup, struct report_env *env)
{
	env->base = sup->base;
	env->conf_path = sup->conf_path;
	env->status = sup_report_status;
	env->levels = sup_report_levels;
	env->set_level = sup_report_set_level;
	env->arg = sup;
}

static void
sup_stop_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct sup		*sup = arg;
	struct sup_child	*c;

	(void)fd;
	(void)ev;
	TAILQ_FOREACH(c, &sup->children, entry)
		if (c->pid != 0) {
			sup_log(c->name, LOG_LVL_WARN,
	    "worker process %d did not stop in %d s; "
			    "killing it", (int)c->pid,
			    SUP_STOP_GRACE_MS / 1000);
			kill(c->pid, SIGKILL);
		}
}

void
sup_shutdown(struct sup *sup, const char *why)
{
	struct sup_child	*c;

	if (sup->shutting_down)
		return;
	sup->shutting_down = 1;
	log_info("stopping: %s", why);
	TAILQ_FOREACH(c, &sup->children, entry) {
		evtimer_del(c->ev_respawn);
		if (c->pid != 0)
			sup_child_stop(c);
	}
	if (sup_children_alive(sup) == 0) {
		event_base_loopbreak(sup->base);
		return;
	}
	sup->ev_stop_timer = evtimer_new(sup->base, sup_stop_timeout_cb, sup);
	timer_add_ms(sup->ev_stop_timer, SUP_STOP_GRACE_MS);
}

static char *
join_errors(struct conf_errors *errs)
{
	char	*out = NULL, *tmp;
	size_t	 i;

	for (i = 0; i < errs->n; i++) {
		if (out == NULL)
			out = xstrdup(errs->msg[i]);
		else {
			xasprintf(&tmp, "%s\n%s", out, errs->msg[i]);
			free(out);
			out = tmp;
		}
	}
	return out != NULL ? out : xstrdup("unknown error");
}

/* Match running workers to the new configuration by resource name. */
static void
sup_reload_children(struct sup *sup)
{
	struct sup_child	*c, *next;
	struct qscale_conf	*conf = sup->conf;
	const struct conf_resource *r;
	char			*fp;
	size_t			 i;

	for (c = TAILQ_FIRST(&sup->children); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if ((r = conf_resource_find(conf, c->name)) == NULL) {
			sup_log(c->name, LOG_LVL_INFO,
	    "resource removed; stopping it");
			c->removed = 1;
			if (c->pid != 0)
				sup_child_stop(c);
			else {
				sup_global_child_removed(c);
				logsink_forget(c->name);
				sup_child_free(c);
			}
			continue;
		}
		c->index = (size_t)(r - conf->resources);
		c->bound = r->max_instances;
		fp = conf_resource_fingerprint(conf, c->index);
		if (strcmp(fp, c->fingerprint) == 0 &&
		    c->state != CHILD_DISABLED) {
			free(fp);
			continue;
		}
		free(c->fingerprint);
		c->fingerprint = fp;
		c->backoff_ms = SUP_BACKOFF_MIN_MS;
		if (c->pid != 0) {
			sup_log(c->name, LOG_LVL_INFO,
	    "resource changed; restarting it");
			c->replace = 1;
			sup_child_stop(c);
		} else {
			evtimer_del(c->ev_respawn);
			sup_child_spawn(c);
		}
	}
	for (i = 0; i < conf->nresources; i++) {
		if (sup_child_find(sup, conf->resources[i].name) != NULL)
			continue;
		sup_log(conf->resources[i].name, LOG_LVL_INFO,
		    "new resource; starting it");
		sup_child_spawn(sup_child_new(sup, i));
	}
}

/* HUP or "qscalectl reload".  On error *err says why, nothing changes. */
int
sup_reload(struct sup *sup, char **err)
{
	struct conf_errors	 errs = { NULL, 0 };
	struct qscale_conf	*conf, *old = sup->conf;
	struct sup_child	*c;
	struct report_env	 env;
	char			 lerr[256];
	size_t			 i;

	*err = NULL;
	if (sup->shutting_down) {
		*err = xstrdup("shutting down");
		return -1;
	}
	log_info("reloading %s", sup->conf_path);
	if ((conf = conf_load(sup->conf_path, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			log_warnx("%s", errs.msg[i]);
		*err = join_errors(&errs);
		conf_errors_clear(&errs);
		snprintf(sup->last_reload_error,
		    sizeof(sup->last_reload_error), "%s", *err);
		sup->reload_failures++;
		log_warnx("reload failed; keeping the running configuration");
		return -1;
	}
	conf_errors_clear(&errs);
	conf_register_secrets(conf);
	conf_log_warnings(conf);
	sup->conf = conf;
	sup->reloads++;
	sup->last_reload_error[0] = '\0';
	if (!str_eq(old->log_dir, conf->log_dir) &&
	    logsink_open(conf->log_dir, lerr, sizeof(lerr)) == -1)
		log_warnx("new log_dir: %s", lerr);
	if (!str_eq(old->pid_file, conf->pid_file) ||
	    !str_eq(old->control_socket, conf->control_socket) ||
	    !str_eq(old->status_listen, conf->status_listen))
		log_warnx("pid_file, control.socket and status.listen changes "
		    "take effect at the next restart");
	if (old->log_level != conf->log_level) {
		log_set_level(conf->log_level);
		TAILQ_FOREACH(c, &sup->children, entry)
			if (c->log_level < 0)
				sup_child_set_log_level(c, conf->log_level);
	}
	sup_reload_children(sup);
	orphan_start(sup);	/* with the new name, keys and resources */
	sup_report_env(sup, &env);
	sup->report = report_reload(sup->report, &env, conf);
	conf_free(old);
	log_info("configuration reloaded");
	return 0;
}

static void
sup_signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct sup	*sup = arg;
	char		*err;

	(void)ev;
	switch (sig) {
	case SIGHUP:
		sup_reload(sup, &err);
		free(err);
		break;
	case SIGTERM:
	case SIGINT:
		sup_shutdown(sup, sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	case SIGUSR1:
		if (logsink_reopen() == 0)
			log_info("log files reopened");
		break;
	case SIGCHLD:
		sup_child_reap(sup);
		if (sup->shutting_down && sup_children_alive(sup) == 0)
			event_base_loopbreak(sup->base);
		break;
	}
}

static void
sup_tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	sup_global_tick(arg);
}

static cJSON *
child_status_json(struct sup_child *c)
{
	const struct conf_resource *r = NULL;
	cJSON	*o = cJSON_CreateObject();

	/*
	 * A resource a reload removed is no longer in the configuration,
	 * and its index is stale, until its process has stopped.
	 */
	if (!c->removed && c->index < c->sup->conf->nresources)
		r = &c->sup->conf->resources[c->index];
	cJSON_AddStringToObject(o, "name", c->name);
	cJSON_AddStringToObject(o, "queue", r != NULL ? r->queue : "");
	cJSON_AddStringToObject(o, "instance_type",
	    r != NULL ? r->instance_type : "");
	cJSON_AddBoolToObject(o, "spot", r != NULL && r->spot);
	cJSON_AddNumberToObject(o, "max_instances",
	    r != NULL ? r->max_instances : 0);
	if (c->removed)
		cJSON_AddBoolToObject(o, "removed", 1);
	cJSON_AddNumberToObject(o, "pid", c->pid);
	cJSON_AddStringToObject(o, "state", sup_child_state_name(c->state));
	cJSON_AddNumberToObject(o, "restarts", c->restarts);
	cJSON_AddNumberToObject(o, "started", (double)c->started_ms);
	cJSON_AddStringToObject(o, "last_exit", c->last_exit);
	cJSON_AddNumberToObject(o, "last_exit_time", (double)c->last_exit_ms);
	cJSON_AddStringToObject(o, "log_level", log_level_name(
	    c->log_level >= 0 ? c->log_level : c->sup->conf->log_level));
	cJSON_AddItemToObject(o, "blackout", sup_global_blackout_json(c));
	if (c->snapshot != NULL)
		cJSON_AddItemToObject(o, "worker",
		    cJSON_Duplicate(c->snapshot, 1));
	return o;
}

cJSON *
sup_status_json(struct sup *sup)
{
	struct sup_child	*c;
	cJSON			*o = cJSON_CreateObject(), *arr;

	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddStringToObject(o, "version", QSCALE_VERSION);
	cJSON_AddStringToObject(o, "name", sup->conf->name);
	cJSON_AddNumberToObject(o, "pid", getpid());
	cJSON_AddNumberToObject(o, "started", (double)sup->started_ms);
	cJSON_AddNumberToObject(o, "now", (double)now_ms());
	cJSON_AddStringToObject(o, "config", sup->conf_path);
	cJSON_AddNumberToObject(o, "reloads", sup->reloads);
	cJSON_AddNumberToObject(o, "reload_failures", sup->reload_failures);
	cJSON_AddStringToObject(o, "last_reload_error",
	    sup->last_reload_error);
	cJSON_AddItemToObject(o, "global", sup_global_status(sup));
	cJSON_AddItemToObject(o, "orphans", orphan_status_json(sup));
	if (sup->report != NULL)
		cJSON_AddItemToObject(o, "report",
		    report_status_json(sup->report));
	arr = cJSON_AddArrayToObject(o, "resources");
	TAILQ_FOREACH(c, &sup->children, entry)
		cJSON_AddItemToArray(arr, child_status_json(c));
	return o;
}

/* Spawns every worker process and runs until stopped. */
int
sup_run(struct sup *sup)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGUSR1,
	    SIGCHLD };
	struct sup_child	*c;
	struct report_env	 env;
	size_t			 i;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < QS_ARRAYLEN(sigs); i++) {
		sup->ev_signals[i] = evsignal_new(sup->base, sigs[i],
		    sup_signal_cb, sup);
		evsignal_add(sup->ev_signals[i], NULL);
	}
	sup->ev_tick = event_new(sup->base, -1, EV_PERSIST, sup_tick_cb, sup);
	timer_add_ms(sup->ev_tick, 1000);
	log_info("qscaled %s started (pid %d) with %zu resource%s from %s",
	    QSCALE_VERSION, (int)getpid(), sup->conf->nresources,
	    sup->conf->nresources == 1 ? "" : "s", sup->conf_path);
	for (i = 0; i < sup->conf->nresources; i++)
		sup_child_spawn(sup_child_new(sup, i));
	orphan_start(sup);
	/* after the first fork: no worker process starts with its state */
	sup_report_env(sup, &env);
	sup->report = report_start(&env, sup->conf);

	event_base_dispatch(sup->base);

	/* Reap what is left; nothing may outlive the supervisor. */
	TAILQ_FOREACH(c, &sup->children, entry)
		if (c->pid != 0) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, NULL, 0);
			c->pid = 0;
		}
	report_finish(sup->report);
	sup->report = NULL;
	orphan_stop(sup);
	orphan_list_clear(&sup->orphans);
	while ((c = TAILQ_FIRST(&sup->children)) != NULL)
		sup_child_free(c);
	for (i = 0; i < QS_ARRAYLEN(sigs); i++)
		event_free(sup->ev_signals[i]);
	event_free(sup->ev_tick);
	if (sup->ev_blackout != NULL)
		event_free(sup->ev_blackout);
	if (sup->ev_stop_timer != NULL)
		event_free(sup->ev_stop_timer);
	log_info("stopped");
	return 0;
}
