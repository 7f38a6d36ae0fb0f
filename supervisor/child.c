/*
 * child.c: the child table.  One worker process per resource, forked
 * from the supervisor, talking over a socketpair with the messages of
 * proto.h.  A worker process that crashes is respawned after a backoff
 * (1 s doubling to 60 s, reset after 5 minutes of health); one that exits
 * with code 2 is not; one that sends a malformed message is killed.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common.h"
#include "proto.h"
#include "supervisor.h"
#include "worker.h"

/*
 * A worker process leaves with _exit(): the supervisor's atexit handlers
 * and stdio buffers are not its own.  _exit() skips LeakSanitizer's check
 * too, so a sanitizer build runs that check first.
 */
#if defined(__SANITIZE_ADDRESS__)
#define CHILD_LEAK_CHECK	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define CHILD_LEAK_CHECK	1
#endif
#endif
#ifdef CHILD_LEAK_CHECK
#include <sanitizer/lsan_interface.h>
#endif

static void	child_read_cb(struct bufferevent *, void *);
static void	child_event_cb(struct bufferevent *, short, void *);
static void	child_respawn_cb(evutil_socket_t, short, void *);

const char *
sup_child_state_name(enum sup_child_state st)
{
	switch (st) {
	case CHILD_STARTING:
		return "starting";
	case CHILD_RUNNING:
		return "running";
	case CHILD_STOPPING:
		return "stopping";
	case CHILD_BACKOFF:
		return "backoff";
	case CHILD_DISABLED:
		return "disabled";
	}
	return "?";
}

struct sup_child *
sup_child_new(struct sup *sup, size_t index)
{
	struct sup_child	*c;

	c = xcalloc(1, sizeof(*c));
	c->sup = sup;
	c->index = index;
	c->name = xstrdup(sup->conf->resources[index].name);
	c->fingerprint = conf_resource_fingerprint(sup->conf, index);
	c->bound = sup->conf->resources[index].max_instances;
	c->backoff_ms = SUP_BACKOFF_MIN_MS;
	c->log_level = -1;
	c->ev_respawn = evtimer_new(sup->base, child_respawn_cb, c);
	TAILQ_INSERT_TAIL(&sup->children, c, entry);
	return c;
}

void
sup_child_free(struct sup_child *c)
{
	TAILQ_REMOVE(&c->sup->children, c, entry);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	event_free(c->ev_respawn);
	cJSON_Delete(c->snapshot);
	free(c->fingerprint);
	free(c->name);
	free(c);
}

struct sup_child *
sup_child_find(struct sup *sup, const char *name)
{
	struct sup_child	*c;

	TAILQ_FOREACH(c, &sup->children, entry)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int
sup_children_alive(struct sup *sup)
{
	struct sup_child	*c;
	int			 n = 0;

	TAILQ_FOREACH(c, &sup->children, entry)
		if (c->pid != 0)
			n++;
	return n;
}

/*
 * In the new process: drop everything of the supervisor's (its event
 * base, sockets, log files, pid file lock) and become the worker.
 */
static void __attribute__((noreturn))
child_become_worker(struct sup_child *c, int fd)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGUSR1,
	    SIGCHLD, SIGPIPE };
	struct sigaction	 sa;
	sigset_t		 set;
	size_t			 i;
	pid_t			 parent = getppid();
	int			 rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (i = 0; i < QS_ARRAYLEN(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	/* A worker must not outlive its supervisor. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);
	if (fd != 3) {
		if (dup2(fd, 3) == -1)
			_exit(1);
		close(fd);
	}
	close_range(4, ~0U, 0);
	log_set_sink(NULL, NULL);
	log_set_procname(c->name);
	rc = worker_main(c->sup->conf, c->index, 3);
#ifdef CHILD_LEAK_CHECK
	__lsan_do_leak_check();
#endif
	_exit(rc);
}

void
sup_child_spawn(struct sup_child *c)
{
	struct sup	*sup = c->sup;
	int		 sv[2];
	pid_t		 pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("%s: socketpair", c->name);
		goto retry;
	}
	fflush(NULL);
	switch ((pid = fork())) {
	case -1:
		log_warn("%s: fork", c->name);
		close(sv[0]);
		close(sv[1]);
		goto retry;
	case 0:
		close(sv[0]);
		child_become_worker(c, sv[1]);
	default:
		break;
	}
	close(sv[1]);
	set_nonblock(sv[0]);
	c->pid = pid;
	c->wire_index = (uint32_t)c->index;
	c->state = CHILD_STARTING;
	c->started_mono = mono_ms();
	c->started_ms = now_ms();
	c->replace = 0;
	c->bev = bufferevent_socket_new(sup->base, sv[0],
	    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, child_read_cb, NULL, child_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	sup_log(c->name, LOG_LVL_INFO,
	    "started worker process %d", (int)pid);
	return;
retry:
	c->state = CHILD_BACKOFF;
	timer_add_ms(c->ev_respawn, 1000);
}

int
sup_child_send(struct sup_child *c, uint32_t type, cJSON *body)
{
	int	 rc;

	if (c->bev == NULL || c->pid == 0)
		return -1;
	rc = proto_pack(bufferevent_get_output(c->bev), type, c->wire_index,
	    body);
	if (rc == -1)
		sup_log(c->name, LOG_LVL_WARN,
	    "cannot send %s message",
		    proto_type_name(type));
	return rc;
}

void
sup_child_set_log_level(struct sup_child *c, int level)
{
	cJSON	*o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "level", log_level_name(level));
	sup_child_send(c, MSG_LOG_LEVEL, o);
	cJSON_Delete(o);
}

static int
child_effective_level(struct sup_child *c)
{
	return c->log_level >= 0 ? c->log_level : c->sup->conf->log_level;
}

/* Ask the process to finish its call in flight and exit. */
void
sup_child_stop(struct sup_child *c)
{
	if (c->pid == 0) {
		evtimer_del(c->ev_respawn);
		return;
	}
	c->state = CHILD_STOPPING;
	if (sup_child_send(c, MSG_STOP, NULL) == -1 || c->bev == NULL)
		kill(c->pid, SIGTERM);
}

/* Misbehaving process: kill it, the exit path decides what follows. */
void
sup_child_kill(struct sup_child *c, const char *why)
{
	sup_log(c->name, LOG_LVL_WARN,
	    "stopping worker process %d: %s", (int)c->pid,
	    why);
	if (c->pid != 0)
		kill(c->pid, SIGKILL);
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
}

static void
child_hello(struct sup_child *c, struct proto_msg *m)
{
	cJSON	*o;
	char	 why[128];

	if (proto_hello_check(m->body, why, sizeof(why)) == -1) {
		sup_child_kill(c, why);
		return;
	}
	if (c->state == CHILD_STARTING)
		c->state = CHILD_RUNNING;
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "version", PROTO_VERSION);
	sup_child_send(c, MSG_WELCOME, o);
	cJSON_Delete(o);
	sup_child_set_log_level(c, child_effective_level(c));
	sup_global_child_started(c);
}

static void
child_log(struct sup_child *c, struct proto_msg *m)
{
	const char	*text, *lvl;
	int64_t		 ts;
	int		 level;

	text = proto_get_str(m->body, "text");
	lvl = proto_get_str(m->body, "level");
	if (text == NULL || lvl == NULL || (level = log_level_parse(lvl)) < 0 ||
	    proto_get_int(m->body, "ts", 0, INT64_C(1) << 50, &ts) == -1) {
		sup_child_kill(c, "malformed log message");
		return;
	}
	logsink_line(level, ts, c->name, text);
}

static void
child_state(struct sup_child *c, struct proto_msg *m)
{
	cJSON_Delete(c->snapshot);
	c->snapshot = m->body;
	m->body = NULL;
	c->snapshot_ms = now_ms();
	sup_global_child_state(c);
	metrics_snapshot(c);
	sup_global_counts_changed(c->sup);
}

static void
child_dispatch(struct sup_child *c, struct proto_msg *m)
{
	char	 why[128];

	if (m->hdr.pid != (uint32_t)c->pid ||
	    m->hdr.resource != c->wire_index) {
		snprintf(why, sizeof(why), "message claims pid %u resource "
		    "%u", m->hdr.pid, m->hdr.resource);
		sup_child_kill(c, why);
		return;
	}
	if (m->hdr.type != MSG_HELLO && c->state == CHILD_STARTING) {
		sup_child_kill(c, "message before hello");
		return;
	}
	switch (m->hdr.type) {
	case MSG_HELLO:
		child_hello(c, m);
		break;
	case MSG_LOG:
		child_log(c, m);
		break;
	case MSG_STATE:
		child_state(c, m);
		break;
	case MSG_EVENT:
	case MSG_LAUNCH_REQ:
		sup_global_message(c, m);
		break;
	default:
		snprintf(why, sizeof(why), "unexpected %s message",
		    proto_type_name(m->hdr.type));
		sup_child_kill(c, why);
		break;
	}
}

static void
child_read_cb(struct bufferevent *bev, void *arg)
{
	struct sup_child	*c = arg;
	struct proto_msg	 m;
	char			 err[160];
	int			 rc;

	for (;;) {
		rc = proto_unpack(bufferevent_get_input(bev), &m, err,
		    sizeof(err));
		if (rc == 0)
			return;
		if (rc == -1) {
			sup_child_kill(c, err);
			return;
		}
		child_dispatch(c, &m);
		proto_msg_clear(&m);
		if (c->bev == NULL)	/* killed while dispatching */
			return;
	}
}

static void
child_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sup_child	*c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* The exit status arrives with SIGCHLD. */
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
}

static void
child_respawn_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct sup_child	*c = arg;

	(void)fd;
	(void)ev;
	if (c->sup->shutting_down || c->pid != 0)
		return;
	c->restarts++;
	sup_child_spawn(c);
}

static void
child_describe_exit(struct sup_child *c, int status)
{
	if (WIFEXITED(status))
		snprintf(c->last_exit, sizeof(c->last_exit), "exit code %d",
		    WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(c->last_exit, sizeof(c->last_exit), "killed by "
		    "signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		snprintf(c->last_exit, sizeof(c->last_exit), "status %d",
		    status);
	c->last_exit_ms = now_ms();
}

/* Decide what follows an exit: nothing, a respawn now, or later. */
static void
child_exited(struct sup_child *c, int status)
{
	struct sup	*sup = c->sup;
	int64_t		 ran = mono_ms() - c->started_mono;
	int		 stopping = c->state == CHILD_STOPPING;

	child_describe_exit(c, status);
	sup_log(c->name, stopping ? LOG_LVL_INFO : LOG_LVL_WARN,
	    "worker process %d exited: %s", (int)c->pid, c->last_exit);
	c->pid = 0;
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	cJSON_Delete(c->snapshot);
	c->snapshot = NULL;
	sup_global_child_exited(c);
	if (sup->shutting_down)
		return;
	if (c->removed) {
		sup_global_child_removed(c);
		logsink_forget(c->name);
		sup_child_free(c);
		return;
	}
	if (c->replace) {
		c->backoff_ms = SUP_BACKOFF_MIN_MS;
		sup_child_spawn(c);
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == SUP_EXIT_NORESPAWN) {
		c->state = CHILD_DISABLED;
		sup_log(c->name, LOG_LVL_WARN,
	    "not respawning: the worker process exited with "
		    "code 2 (configuration it cannot run with); fix it and "
		    "reload");
		return;
	}
	if (ran >= SUP_HEALTHY_MS)
		c->backoff_ms = SUP_BACKOFF_MIN_MS;
	c->state = CHILD_BACKOFF;
	sup_log(c->name, LOG_LVL_INFO,
	    "respawning in %lld ms",
	    (long long)c->backoff_ms);
	timer_add_ms(c->ev_respawn, c->backoff_ms);
	c->backoff_ms = QS_MIN(c->backoff_ms * 2, SUP_BACKOFF_MAX_MS);
}

/* SIGCHLD: reap every exited process. */
void
sup_child_reap(struct sup *sup)
{
	struct sup_child	*c;
	pid_t			 pid;
	int			 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		TAILQ_FOREACH(c, &sup->children, entry)
			if (c->pid == pid)
				break;
		if (c == NULL) {
			log_debug("reaped unknown process %d", (int)pid);
			continue;
		}
		child_exited(c, status);
	}
}
