/*
 * log.c: one line per message, "TIME LEVEL WHO: text", secrets masked.
 * Lines go to a sink (the supervisor's log files, or the socket to the
 * supervisor in a worker process) and, when asked, to stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"

#define LOG_MAX_TEXT	8192

static char		 procname[64] = "qscaled";
static int		 cur_level = LOG_LVL_INFO;
static int		 to_stderr = 1;
static log_sink_fn	 sink;
static void		*sink_arg;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void
log_init(const char *name, int level, int use_stderr)
{
	log_set_procname(name);
	cur_level = level;
	to_stderr = use_stderr;
}

void
log_set_procname(const char *name)
{
	snprintf(procname, sizeof(procname), "%s", name);
}

const char *
log_procname(void)
{
	return procname;
}

void
log_set_level(int level)
{
	if (level >= LOG_LVL_ERROR && level <= LOG_LVL_DEBUG)
		cur_level = level;
}

int
log_get_level(void)
{
	return cur_level;
}

void
log_set_stderr(int on)
{
	to_stderr = on;
}

void
log_set_sink(log_sink_fn fn, void *arg)
{
	sink = fn;
	sink_arg = arg;
}

const char *
log_level_name(int level)
{
	if (level < LOG_LVL_ERROR || level > LOG_LVL_DEBUG)
		return "?";
	return level_names[level];
}

/* "debug", "INFO", "warning", ... -> level, or -1. */
int
log_level_parse(const char *s)
{
	size_t	 i;

	if (s == NULL)
		return -1;
	for (i = 0; i < QS_ARRAYLEN(level_names); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	if (strcasecmp(s, "warning") == 0)
		return LOG_LVL_WARN;
	return -1;
}

void
log_format_line(char *buf, size_t len, int64_t ts, int level, const char *who,
    const char *text)
{
	char	 tbuf[40];

	fmt_time_ms(ts, tbuf, sizeof(tbuf));
	snprintf(buf, len, "%s %s %s: %s", tbuf, log_level_name(level), who,
	    text);
}

/* Newlines and other control characters would break "one line each". */
static void
flatten(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			*s = ' ';
}

/*
 * Masks before cutting to LOG_MAX_TEXT: a secret cut in two at the end
 * of a long line would no longer match, and its first part would show.
 */
static void
log_emit(int level, char *text)
{
	char	*masked, line[LOG_MAX_TEXT + 128];

	masked = mask_dup(text);
	if (strlen(masked) >= LOG_MAX_TEXT)
		masked[LOG_MAX_TEXT - 1] = '\0';
	flatten(masked);
	if (sink != NULL)
		sink(level, now_ms(), procname, masked, sink_arg);
	if (to_stderr) {
		log_format_line(line, sizeof(line), now_ms(), level, procname,
		    masked);
		fprintf(stderr, "%s\n", line);
		fflush(stderr);
	}
	free(masked);
}

/* The whole text, however long; NULL when out of memory. */
static char *
log_format(const char *fmt, va_list ap, int with_errno, int saved)
{
	char	*text, *t;

	if (vasprintf(&text, fmt, ap) == -1)
		return NULL;
	if (with_errno) {
		if (asprintf(&t, "%s: %s", text, strerror(saved)) == -1)
			t = NULL;
		free(text);
		text = t;
	}
	return text;
}

void
log_vmsg(int level, const char *fmt, va_list ap)
{
	char	*text;
	int	 saved = errno;

	if (level > cur_level)
		return;
	if ((text = log_format(fmt, ap, 0, saved)) != NULL) {
		log_emit(level, text);
		freezero_str(text);
	}
	errno = saved;
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

static void
log_verr(int level, const char *fmt, va_list ap, int with_errno)
{
	char	*text;
	int	 saved = errno;

	if (level > cur_level)
		return;
	if ((text = log_format(fmt, ap, with_errno, saved)) != NULL) {
		log_emit(level, text);
		freezero_str(text);
	}
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_verr(LOG_LVL_WARN, fmt, ap, 1);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_verr(LOG_LVL_WARN, fmt, ap, 0);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_DEBUG, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_verr(LOG_LVL_ERROR, fmt, ap, 1);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_verr(LOG_LVL_ERROR, fmt, ap, 0);
	va_end(ap);
	exit(1);
}

/*
 * libevent's own messages join ours instead of going to stderr.  Its
 * warnings (a new event base taking over the signals in a freshly forked
 * worker process, say) are for debugging; its errors are warnings.
 */
static void
log_libevent_cb(int severity, const char *msg)
{
	log_msg(severity >= EVENT_LOG_ERR ? LOG_LVL_WARN : LOG_LVL_DEBUG,
	    "libevent: %s", msg);
}

void
log_libevent(void)
{
	event_set_log_callback(log_libevent_cb);
}
