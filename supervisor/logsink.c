/*
 * logsink.c: where every line of every process ends up.  The supervisor
 * writes log_dir/qscaled.log (everything) and log_dir/<resource>.log (that
 * resource only), keeps the last lines of each in memory for
 * "qscalectl tail" and the dashboard, and streams new lines to followers.
 */
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "supervisor.h"

#define RING_LINES	2000
#define ALL_STREAM	"*"
#define MAIN_LOG	"qscaled"

struct ring {
	char		*line[RING_LINES];
	size_t		 head;		/* next slot */
	size_t		 count;
};

struct stream {
	TAILQ_ENTRY(stream)	 entry;
	char			*name;	/* resource, "qscaled" or "*" */
	int			 fd;	/* -1 for "*" and when closed */
	struct ring		 ring;
};

struct sub {
	TAILQ_ENTRY(sub)	 entry;
	char			*name;
	logsink_sub_fn		 fn;
	void			*arg;
};

static TAILQ_HEAD(, stream)	streams = TAILQ_HEAD_INITIALIZER(streams);
static TAILQ_HEAD(, sub)	subs = TAILQ_HEAD_INITIALIZER(subs);
static char			*log_dir;
static int			 main_fd = -1;
static int			 to_stderr;

/*
 * A log file in the checked log_dir, never through a link.  Why a
 * resource's file cannot be opened goes to the main log (or, for the
 * main log itself, to err).
 */
static int
open_log(const char *name, char *err, size_t errlen)
{
	char	*path, why[512], line[640];
	int	 fd;

	if (log_dir == NULL)
		return -1;
	xasprintf(&path, "%s/%s.log", log_dir, name);
	fd = open_private_file(path, O_WRONLY | O_APPEND | O_CREAT, 0640,
	    why, sizeof(why));
	free(path);
	if (fd != -1)
		return fd;
	if (err != NULL)
		snprintf(err, errlen, "%s", why);
	else {
		snprintf(line, sizeof(line), "log file of %s: %s", name, why);
		logsink_line(LOG_LVL_WARN, now_ms(), MAIN_LOG, line);
	}
	return -1;
}

static struct stream *
stream_get(const char *name, int create)
{
	struct stream	*s;

	TAILQ_FOREACH(s, &streams, entry)
		if (strcmp(s->name, name) == 0)
			return s;
	if (!create)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->name = xstrdup(name);
	s->fd = -1;
	TAILQ_INSERT_TAIL(&streams, s, entry);
	if (strcmp(name, ALL_STREAM) != 0 && strcmp(name, MAIN_LOG) != 0)
		s->fd = open_log(name, NULL, 0);
	return s;
}

/*
 * Opens log_dir/qscaled.log and the resources' files; on failure says
 * why in err and keeps writing the files open until then, if any.
 */
int
logsink_open(const char *dir, char *err, size_t errlen)
{
	struct stream	*s;
	char		*old = log_dir;
	int		 fd;

	if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "log_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (dir_check_private("log_dir", dir, err, errlen) == -1)
		return -1;
	log_dir = xstrdup(dir);	/* a reopen passes log_dir itself */
	if ((fd = open_log(MAIN_LOG, err, errlen)) == -1) {
		free(log_dir);
		log_dir = old;
		return -1;
	}
	free(old);
	if (main_fd != -1)
		close(main_fd);
	main_fd = fd;
	TAILQ_FOREACH(s, &streams, entry) {
		if (s->fd != -1)
			close(s->fd);
		s->fd = -1;
		if (strcmp(s->name, ALL_STREAM) != 0 &&
		    strcmp(s->name, MAIN_LOG) != 0)
			s->fd = open_log(s->name, NULL, 0);
	}
	return 0;
}

/* SIGUSR1, after logrotate moved the files away.  0, or -1 (logged). */
int
logsink_reopen(void)
{
	char	 err[512];

	if (log_dir == NULL || logsink_open(log_dir, err, sizeof(err)) == 0)
		return 0;
	log_warnx("reopening the log files: %s; still writing the old ones",
	    err);
	return -1;
}

void
logsink_close(void)
{
	struct stream	*s;
	struct sub	*u;
	size_t		 i;

	while ((u = TAILQ_FIRST(&subs)) != NULL) {
		TAILQ_REMOVE(&subs, u, entry);
		free(u->name);
		free(u);
	}
	while ((s = TAILQ_FIRST(&streams)) != NULL) {
		TAILQ_REMOVE(&streams, s, entry);
		if (s->fd != -1)
			close(s->fd);
		for (i = 0; i < RING_LINES; i++)
			free(s->ring.line[i]);
		free(s->name);
		free(s);
	}
	if (main_fd != -1)
		close(main_fd);
	main_fd = -1;
	free(log_dir);
	log_dir = NULL;
}

void
logsink_set_stderr(int on)
{
	to_stderr = on;
}

/* A resource went away with a reload: close its file, keep nothing. */
void
logsink_forget(const char *name)
{
	struct stream	*s;

	if ((s = stream_get(name, 0)) != NULL && s->fd != -1) {
		close(s->fd);
		s->fd = -1;
	}
}

static void
ring_add(struct ring *r, const char *line)
{
	free(r->line[r->head]);
	r->line[r->head] = xstrdup(line);
	r->head = (r->head + 1) % RING_LINES;
	if (r->count < RING_LINES)
		r->count++;
}

static void
write_line(int fd, const char *line)
{
	struct iovec	 iov[2];

	if (fd == -1)
		return;
	iov[0].iov_base = (void *)line;
	iov[0].iov_len = strlen(line);
	iov[1].iov_base = "\n";
	iov[1].iov_len = 1;
	(void)writev(fd, iov, 2);
}

static void
publish(struct stream *s, const char *line)
{
	struct sub	*u, *next;

	ring_add(&s->ring, line);
	for (u = TAILQ_FIRST(&subs); u != NULL; u = next) {
		next = TAILQ_NEXT(u, entry);	/* fn may unsubscribe */
		if (strcmp(u->name, s->name) == 0)
			u->fn(line, u->arg);
	}
}

/* One line from a process: who is a resource name or "qscaled". */
void
logsink_line(int level, int64_t ts, const char *who, const char *text)
{
	char		 line[8400];
	char		*masked;
	struct stream	*s;

	masked = mask_dup(text);
	log_format_line(line, sizeof(line), ts, level, who, masked);
	free(masked);
	write_line(main_fd, line);
	if (to_stderr) {
		fprintf(stderr, "%s\n", line);
		fflush(stderr);
	}
	s = stream_get(who, 1);
	write_line(s->fd, line);
	publish(s, line);
	publish(stream_get(ALL_STREAM, 1), line);
}

/*
 * The supervisor's lines about one resource (its worker process exited,
 * was respawned...) belong in that resource's log too.
 */
void
sup_log(const char *who, int level, const char *fmt, ...)
{
	char	*text;
	va_list	 ap;
	int	 n;

	if (level > log_get_level())
		return;
	/* whole, so that it is masked before anything cuts it */
	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n == -1)
		return;
	if (main_fd == -1 && !to_stderr)
		/* not set up yet: the plain logger knows where to go */
		log_msg(level, "%s: %s", who, text);
	else
		logsink_line(level, now_ms(), who, text);
	freezero_str(text);
}

/* The sink the supervisor's own log_*() calls go to. */
void
logsink_sink(int level, int64_t ts, const char *who, const char *text,
    void *arg)
{
	(void)arg;
	logsink_line(level, ts, who, text);
}

/* Calls fn with the last n lines of a stream ("*" for all); -1 if none. */
int
logsink_tail(const char *name, size_t n, logsink_sub_fn fn, void *arg)
{
	struct stream	*s;
	size_t		 i, start;

	if ((s = stream_get(name, 0)) == NULL)
		return 0;
	if (n > s->ring.count)
		n = s->ring.count;
	start = (s->ring.head + RING_LINES - n) % RING_LINES;
	for (i = 0; i < n; i++)
		fn(s->ring.line[(start + i) % RING_LINES], arg);
	return (int)n;
}

void *
logsink_subscribe(const char *name, logsink_sub_fn fn, void *arg)
{
	struct sub	*u;

	u = xcalloc(1, sizeof(*u));
	u->name = xstrdup(name);
	u->fn = fn;
	u->arg = arg;
	TAILQ_INSERT_TAIL(&subs, u, entry);
	return u;
}

void
logsink_unsubscribe(void *p)
{
	struct sub	*u = p;

	if (u == NULL)
		return;
	TAILQ_REMOVE(&subs, u, entry);
	free(u->name);
	free(u);
}
