/*
 * util.c: allocation wrappers that abort, time and duration helpers.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "common.h"

void *
xmalloc(size_t n)
{
	void	*p;

	if (n == 0)
		n = 1;
	if ((p = malloc(n)) == NULL)
		fatal("malloc %zu", n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if (n == 0 || size == 0)
		n = size = 1;
	if ((p = calloc(n, size)) == NULL)
		fatal("calloc %zu x %zu", n, size);
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	void	*q;

	if (n == 0 || size == 0)
		n = size = 1;
	if ((q = reallocarray(p, n, size)) == NULL)
		fatal("reallocarray %zu x %zu", n, size);
	return q;
}

/* Grows a buffer of *cap bytes to hold at least need bytes. */
void *
xrealloc_grow(void *p, size_t *cap, size_t need)
{
	size_t	 n = *cap > 0 ? *cap : 64;

	while (n < need)
		n *= 2;
	p = xreallocarray(p, n, 1);
	*cap = n;
	return p;
}

/*
 * An index from strings to positions in an array, so that tables keyed
 * by name (a configuration's origins) are found in constant time:
 * open addressing, linear probing, at most half full.  The keys are the
 * array's own strings, which must outlive the index.
 */
static size_t
str_hash(const char *s)
{
	uint64_t	 h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)h;
}

static void
str_index_put(struct str_index *ix, const char *key, size_t pos)
{
	size_t	 i = str_hash(key) & (ix->cap - 1);

	while (ix->slot[i].key != NULL)
		i = (i + 1) & (ix->cap - 1);
	ix->slot[i].key = key;
	ix->slot[i].pos = pos;
	ix->n++;
}

/* Where key is in the array, or -1. */
ssize_t
str_index_find(const struct str_index *ix, const char *key)
{
	size_t	 i;

	if (ix->cap == 0)
		return -1;
	for (i = str_hash(key) & (ix->cap - 1); ix->slot[i].key != NULL;
	    i = (i + 1) & (ix->cap - 1))
		if (strcmp(ix->slot[i].key, key) == 0)
			return (ssize_t)ix->slot[i].pos;
	return -1;
}

/* Adds a key not in the index yet, at position pos of the array. */
void
str_index_add(struct str_index *ix, const char *key, size_t pos)
{
	struct str_index	 old = *ix;
	size_t			 i;

	if (2 * (ix->n + 1) > ix->cap) {
		ix->cap = old.cap > 0 ? 2 * old.cap : 64;
		ix->slot = xcalloc(ix->cap, sizeof(*ix->slot));
		ix->n = 0;
		for (i = 0; i < old.cap; i++)
			if (old.slot[i].key != NULL)
				str_index_put(ix, old.slot[i].key,
				    old.slot[i].pos);
		free(old.slot);
	}
	str_index_put(ix, key, pos);
}

void
str_index_clear(struct str_index *ix)
{
	free(ix->slot);
	memset(ix, 0, sizeof(*ix));
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p;

	if ((p = strndup(s, n)) == NULL)
		fatal("strndup");
	return p;
}

int
xasprintf(char **ret, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(ret, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("vasprintf");
	return n;
}

/* Free a string that may hold a secret, wiping it first. */
void
freezero_str(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

int64_t
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 2026-11-22T10:00:00.123Z */
void
fmt_time_ms(int64_t ms, char *buf, size_t len)
{
	struct tm	 tm;
	time_t		 t = ms / 1000;
	char		 tmp[32];

	gmtime_r(&t, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", tmp, (int)(ms % 1000));
}

static int
parse_digits(const char **pp, int n, int *out)
{
	const char	*p = *pp;
	int		 v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*pp = p + n;
	*out = v;
	return 0;
}

/*
 * ISO 8601 in UTC as ClearML and EC2 write it: "2025-01-13T18:32:13Z",
 * with an optional fraction and "Z", "+00:00" or another offset.
 */
int
parse_iso8601(const char *s, int64_t *ms)
{
	struct tm	 tm;
	const char	*p = s;
	int		 y, mo, d, h, mi, sec, frac = 0, scale = 1000;
	int		 oh = 0, om = 0, sign = 0;
	time_t		 t;

	if (s == NULL)
		return -1;
	if (parse_digits(&p, 4, &y) || *p++ != '-' ||
	    parse_digits(&p, 2, &mo) || *p++ != '-' ||
	    parse_digits(&p, 2, &d) || (*p != 'T' && *p != ' '))
		return -1;
	p++;
	if (parse_digits(&p, 2, &h) || *p++ != ':' ||
	    parse_digits(&p, 2, &mi) || *p++ != ':' ||
	    parse_digits(&p, 2, &sec))
		return -1;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p)) {
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
			p++;
		}
	}
	if (*p == 'Z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (parse_digits(&p, 2, &oh))
			return -1;
		if (*p == ':')
			p++;
		if (parse_digits(&p, 2, &om))
			return -1;
	}
	if (*p != '\0')
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	t -= sign * (oh * 3600 + om * 60);
	*ms = (int64_t)t * 1000 + frac;
	return 0;
}

/*
 * Durations: a number with a unit ("500ms", "45s", "15m", "2h", "1d"),
 * several in a row ("1h30m"), or a plain number of seconds.  Returns
 * milliseconds; on error sets *why and returns -1.
 */
int
parse_duration(const char *s, int64_t *out, const char **why)
{
	static const struct {
		const char	*unit;
		int64_t		 ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	const char	*p = s;
	int64_t		 total = 0, v;
	size_t		 i, ulen;
	int		 parts = 0;

	*why = NULL;
	if (s == NULL || *s == '\0') {
		*why = "empty duration";
		return -1;
	}
	while (*p != '\0') {
		if (!isdigit((unsigned char)*p)) {
			*why = "expected a number, as in 45s, 15m or 2h";
			return -1;
		}
		v = 0;
		while (isdigit((unsigned char)*p)) {
			if (v > INT64_MAX / 10 / 86400000) {
				*why = "duration too large";
				return -1;
			}
			v = v * 10 + (*p++ - '0');
		}
		if (*p == '\0') {
			if (parts > 0) {
				*why = "missing unit after the last number";
				return -1;
			}
			total = v * 1000;
			break;
		}
		for (i = 0; i < QS_ARRAYLEN(units); i++) {
			ulen = strlen(units[i].unit);
			if (strncmp(p, units[i].unit, ulen) == 0 &&
			    (p[ulen] == '\0' || isdigit((unsigned char)p[ulen])))
				break;
		}
		if (i == QS_ARRAYLEN(units)) {
			*why = "unknown unit (use ms, s, m, h or d)";
			return -1;
		}
		total += v * units[i].ms;
		p += ulen;
		parts++;
	}
	*out = total;
	return 0;
}

/* The shortest exact form: 90000 -> "90s", 900000 -> "15m". */
void
fmt_duration(int64_t ms, char *buf, size_t len)
{
	if (ms == 0)
		snprintf(buf, len, "0s");
	else if (ms % 86400000 == 0)
		snprintf(buf, len, "%lldd", (long long)(ms / 86400000));
	else if (ms % 3600000 == 0)
		snprintf(buf, len, "%lldh", (long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%lldm", (long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, len, "%lldms", (long long)ms);
}

int
set_nonblock(int fd)
{
	int	 fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return -1;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int
set_cloexec(int fd)
{
	int	 fl;

	if ((fl = fcntl(fd, F_GETFD)) == -1)
		return -1;
	return fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/* Arms a libevent timer for ms milliseconds from now. */
int
timer_add_ms(struct event *ev, int64_t ms)
{
	struct timeval	 tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return evtimer_add(ev, &tv);
}
