/*
 * worker.c: the worker process of one resource.  It runs its own event
 * loop, polls on a jittered timer (polls never overlap), sends its log
 * lines and a state snapshot after each poll to the supervisor, and obeys
 * the supervisor's messages.  It exits when told to stop, on SIGTERM, or
 * when the supervisor goes away, after the call in flight.
 */
#include <sys/random.h>
#include <sys/socket.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common.h"
#include "proto.h"
#include "worker.h"

/* Past a timer's expiry, so that plan() sees it expired. */
#define WORKER_WAKE_SLACK_MS	50
#define WORKER_MIN_GAP_MS	250
#define WORKER_STOP_DEADLINE_S	5
/*
 * What may wait for a supervisor that does not read: the kernel's socket
 * buffer, the bufferevent's output (messages go there while it holds
 * less than WORKER_INFLIGHT) and the queue (proto.h), whose droppable
 * part is bounded by WORKER_OUTQ_MAX.
 */
#define WORKER_SNDBUF		(32 * 1024)
#define WORKER_INFLIGHT		(16 * 1024)
#define WORKER_OUTQ_MAX		(64 * 1024)

static int	 worker_logging_action;	/* logging an action line */

static void	worker_schedule(struct wproc *);
static void	worker_stop(struct wproc *, const char *);

/*
 * random() gives the poll jitter and the ClientToken of every launch, so
 * no two worker processes may share a sequence.  They are forked within
 * the same few milliseconds with consecutive pids, so pid ^ time often
 * gives siblings the same seed: their polls align and their launches in
 * the same-numbered poll carry the same token, which EC2 refuses with
 * IdempotentParameterMismatch.  A seed from the kernel practically
 * never collides; pid, index and time mixed apart are the fallback.
 */
static void
worker_seed(size_t index)
{
	unsigned int	 seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (unsigned int)getpid() * 2654435761u ^
		    (unsigned int)index * 40503u ^ (unsigned int)now_ms();
	srandom(seed);
}

static int
worker_queue(struct wproc *w, uint32_t type, enum proto_outq_class cls,
    const cJSON *body)
{
	int	 rc;

	if (w->bev == NULL)
		return -1;
	rc = proto_outq_push(&w->outq, type, (uint32_t)w->index, cls, body);
	if (w->drops_since_ms == 0 &&
	    w->outq.dropped_snapshots + w->outq.dropped_logs > 0)
		w->drops_since_ms = now_ms();
	proto_outq_flush(&w->outq, bufferevent_get_output(w->bev),
	    WORKER_INFLIGHT);
	return rc;
}

/* A state snapshot replaces the one still waiting; nothing else goes. */
int
worker_send(struct wproc *w, uint32_t type, cJSON *body)
{
	return worker_queue(w, type, type == MSG_STATE ? OUTQ_SNAPSHOT :
	    OUTQ_KEEP, body);
}

/* A line about an action: never dropped on the way to the supervisor. */
void
worker_log_action(int level, const char *fmt, ...)
{
	va_list	 ap;

	worker_logging_action = 1;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
	worker_logging_action = 0;
}

/* Log lines travel to the supervisor, which writes the files. */
static void
worker_log_sink(int level, int64_t ts, const char *who, const char *text,
    void *arg)
{
	struct wproc		*w = arg;
	enum proto_outq_class	 cls = OUTQ_LOG;
	cJSON			*o;
	char			 line[8400];

	if (w->bev == NULL) {
		log_format_line(line, sizeof(line), ts, level, who, text);
		fprintf(stderr, "%s\n", line);
		return;
	}
	if (worker_logging_action || level == LOG_LVL_ERROR)
		cls = OUTQ_KEEP;
	else if (level == LOG_LVL_DEBUG)
		cls = OUTQ_DEBUG;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "level", log_level_name(level));
	cJSON_AddNumberToObject(o, "ts", (double)ts);
	cJSON_AddStringToObject(o, "text", text);
	worker_queue(w, MSG_LOG, cls, o);
	cJSON_Delete(o);
}

/*
 * The supervisor reads again (the output has drained): say what was
 * dropped meanwhile, in the log and as an event for /metrics.
 */
static void
worker_report_drops(struct wproc *w)
{
	uint64_t	 snaps = w->outq.dropped_snapshots;
	uint64_t	 logs = w->outq.dropped_logs;
	char		 since[40];
	cJSON		*o;

	if (snaps + logs == 0)
		return;
	w->outq.dropped_snapshots = w->outq.dropped_logs = 0;
	fmt_time_ms(w->drops_since_ms, since, sizeof(since));
	w->drops_since_ms = 0;
	worker_log_action(LOG_LVL_WARN, "the supervisor did not read this "
	    "process's messages for a while: since %s, %llu state "
	    "snapshot%s (the newest was kept) and %llu log line%s were "
	    "dropped", since, (unsigned long long)snaps, snaps == 1 ? "" :
	    "s", (unsigned long long)logs, logs == 1 ? "" : "s");
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "event", "messages_dropped");
	cJSON_AddNumberToObject(o, "ts", (double)now_ms());
	cJSON_AddNumberToObject(o, "snapshots", (double)snaps);
	cJSON_AddNumberToObject(o, "logs", (double)logs);
	worker_send(w, MSG_EVENT, o);
	cJSON_Delete(o);
}

static void
worker_write_cb(struct bufferevent *bev, void *arg)
{
	struct wproc	*w = arg;

	if (proto_outq_flush(&w->outq, bufferevent_get_output(bev),
	    WORKER_INFLIGHT) == 0)
		worker_report_drops(w);
}

static void
worker_exit_when_flushed(struct wproc *w)
{
	static const struct timeval one_second = { 1, 0 };

	if (w->bev != NULL)	/* all that waits, whatever its size */
		proto_outq_flush(&w->outq, bufferevent_get_output(w->bev),
		    SIZE_MAX);
	if (w->bev == NULL ||
	    evbuffer_get_length(bufferevent_get_output(w->bev)) == 0)
		event_base_loopexit(w->base, NULL);
	else	/* let the last lines reach the supervisor */
		event_base_loopexit(w->base, &one_second);
}

static void
worker_stop(struct wproc *w, const char *why)
{
	static const struct timeval deadline = { WORKER_STOP_DEADLINE_S, 0 };

	if (w->stopping)
		return;
	log_info("stopping: %s", why);
	w->stopping = 1;
	evtimer_del(w->ev_poll);
	if (!w->polling) {
		worker_exit_when_flushed(w);
		return;
	}
	/*
	 * The calls in flight finish, but nothing is retried any more, and
	 * past the deadline the process goes anyway: everything it knows
	 * is in EC2's tags and ClearML, so the next one picks it up.
	 */
	poll_stopping(w->poll);
	event_base_loopexit(w->base, &deadline);
}

static void
worker_blackout(struct wproc *w, cJSON *body)
{
	const char	*origin = proto_get_str(body, "resource");
	int64_t		 until = 0;
	int		 was = w->blackout;
	char		 was_origin[sizeof(w->blackout_origin)];
	char		 t[40];

	proto_get_int(body, "until", 0, INT64_MAX, &until);
	snprintf(was_origin, sizeof(was_origin), "%s", w->blackout_origin);
	w->blackout = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body,
	    "active"));
	w->blackout_until_ms = until;
	snprintf(w->blackout_origin, sizeof(w->blackout_origin), "%s",
	    origin != NULL ? origin : "");
	/* each new failure extends it: said when it starts and ends only */
	if (was == w->blackout && (!was ||
	    strcmp(was_origin, w->blackout_origin) == 0))
		return;
	fmt_time_ms(until, t, sizeof(t));
	if (w->blackout)
		log_info("spot blackout until %s (started by %s): launches "
		    "that would be spot are on-demand", t, w->blackout_origin);
	else
		log_info("spot blackout over");
}

static void
worker_dispatch(struct wproc *w, struct proto_msg *m)
{
	const char	*lvl;
	char		 err[128];
	int		 level;

	switch (m->hdr.type) {
	case MSG_WELCOME:
		if (proto_hello_check(m->body, err, sizeof(err)) == -1) {
			log_warnx("supervisor: %s", err);
			worker_stop(w, "protocol mismatch");
		}
		break;
	case MSG_LOG_LEVEL:
		lvl = proto_get_str(m->body, "level");
		if ((level = log_level_parse(lvl)) < 0)
			log_warnx("supervisor sent an unknown log level");
		else
			log_set_level(level);
		break;
	case MSG_STOP:
		worker_stop(w, "asked by the supervisor");
		break;
	case MSG_BLACKOUT:
		worker_blackout(w, m->body);
		poll_message(w, m->hdr.type, m->body);
		break;
	case MSG_LAUNCH_GRANT:
	case MSG_DUPLICATE:
		poll_message(w, m->hdr.type, m->body);
		break;
	default:
		log_warnx("unexpected %s message from the supervisor",
		    proto_type_name(m->hdr.type));
		break;
	}
}

static void
worker_read_cb(struct bufferevent *bev, void *arg)
{
	struct wproc		*w = arg;
	struct proto_msg	 m;
	char			 err[160];
	int			 rc;

	while ((rc = proto_unpack(bufferevent_get_input(bev), &m, err,
	    sizeof(err))) == 1) {
		worker_dispatch(w, &m);
		proto_msg_clear(&m);
	}
	if (rc == -1) {
		log_warnx("malformed message from the supervisor: %s", err);
		bufferevent_free(w->bev);
		w->bev = NULL;
		worker_stop(w, "lost the supervisor");
	}
}

static void
worker_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct wproc	*w = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_free(w->bev);
		w->bev = NULL;
		worker_stop(w, "the supervisor went away");
	}
}

static void
worker_signal_cb(evutil_socket_t sig, short ev, void *arg)
{
	(void)ev;
	worker_stop(arg, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void
worker_poll_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct wproc	*w = arg;

	(void)fd;
	(void)ev;
	if (w->stopping || w->polling)
		return;
	w->polling = 1;
	w->polls++;
	w->poll_start_mono = mono_ms();
	poll_start(w);
}

/* The poll cycle calls this once it has acted and reported. */
void
worker_poll_done(struct wproc *w)
{
	w->polling = 0;
	w->last_poll_ms = now_ms();
	if (w->stopping) {
		worker_exit_when_flushed(w);
		return;
	}
	worker_schedule(w);
}

/*
 * The next poll starts one interval after this one started, minus up to
 * 10% so worker processes do not align (never plus: a task enqueued just
 * after a poll must see a launch within one interval).  A timer that
 * plan() said expires sooner (an idle time, a spin-up time) wakes the
 * poll then instead, so terminations happen on time.
 */
static void
worker_schedule(struct wproc *w)
{
	int64_t	 interval = w->conf->polling_interval, jitter = 0, delay;
	int64_t	 wake;

	if (interval / 10 > 0)
		jitter = (int64_t)(random() % (interval / 10 + 1));
	delay = w->poll_start_mono + interval - jitter - mono_ms();
	if (w->next_wake_ms > 0) {
		wake = w->next_wake_ms - now_ms() + WORKER_WAKE_SLACK_MS;
		if (wake < delay)
			delay = wake;
	}
	timer_add_ms(w->ev_poll, QS_MAX(delay, WORKER_MIN_GAP_MS));
}

int
worker_main(struct qscale_conf *conf, size_t index, int fd)
{
	struct wproc	 w;
	cJSON		*o;
	char		 err[256];
	int		 rc = 0, sndbuf;

	/* inherited from the supervisor; set again, as a process of its own */
	if (proc_harden(proc_core_dumps_allowed(), err, sizeof(err)) == -1)
		log_warnx("%s", err);
	memset(&w, 0, sizeof(w));
	w.conf = conf;
	w.index = index;
	w.res = &conf->resources[index];
	worker_seed(index);
	log_libevent();
	if ((w.base = event_base_new()) == NULL)
		return 1;
	set_nonblock(fd);
	sndbuf = WORKER_SNDBUF;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	proto_outq_init(&w.outq, WORKER_OUTQ_MAX);
	w.bev = bufferevent_socket_new(w.base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(w.bev, worker_read_cb, worker_write_cb,
	    worker_event_cb, &w);
	bufferevent_enable(w.bev, EV_READ | EV_WRITE);
	log_set_stderr(0);
	log_set_sink(worker_log_sink, &w);
	log_set_level(conf->log_level);

	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "version", PROTO_VERSION);
	cJSON_AddStringToObject(o, "resource", w.res->name);
	worker_send(&w, MSG_HELLO, o);
	cJSON_Delete(o);

	w.ev_sig[0] = evsignal_new(w.base, SIGTERM, worker_signal_cb, &w);
	w.ev_sig[1] = evsignal_new(w.base, SIGINT, worker_signal_cb, &w);
	evsignal_add(w.ev_sig[0], NULL);
	evsignal_add(w.ev_sig[1], NULL);
	signal(SIGPIPE, SIG_IGN);
	w.ev_poll = evtimer_new(w.base, worker_poll_cb, &w);
	w.poll = poll_new(&w);
	if (w.poll->init_error[0] != '\0') {
		/* A configuration this process cannot run with: exit code 2,
		 * so the supervisor waits for a reload to try again. */
		log_msg(LOG_LVL_ERROR, "cannot manage resource %s: %s",
		    w.res->name, w.poll->init_error);
		rc = PROTO_EXIT_NORESPAWN;
		worker_exit_when_flushed(&w);
	} else {
		log_info("worker process %d started for queue %s (%s%s)",
		    (int)getpid(), w.res->queue, w.res->instance_type,
		    w.res->spot ? ", spot" : "");
		/* The first poll soon, with a little jitter too. */
		timer_add_ms(w.ev_poll, 100 + random() % 200);
	}

	event_base_dispatch(w.base);

	log_set_sink(NULL, NULL);
	poll_free(w.poll);
	event_free(w.ev_poll);
	event_free(w.ev_sig[0]);
	event_free(w.ev_sig[1]);
	if (w.bev != NULL)
		bufferevent_free(w.bev);
	proto_outq_clear(&w.outq);
	event_base_free(w.base);
	return rc;
}
