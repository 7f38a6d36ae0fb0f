/*
 * spotwarn.c: spot capacity errors said once.  While spot capacity is
 * short, every poll's retry in every subnet fails the same way, each
 * error with its own request id.  The first error of each cause (error
 * code) in an episode is a warning; the next ones are counted, and one
 * line sums them up when the episode ends: the blackout is over, the
 * resource launches on-demand instead, or spot capacity is back.  Pure:
 * the caller logs what it is told to.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "worker.h"

static struct spot_warn *
spot_warn_find(struct spot_warns *sw, const char *code)
{
	size_t	 i;

	for (i = 0; i < sw->n; i++)
		if (strcmp(sw->w[i].code, code) == 0)
			return &sw->w[i];
	return NULL;
}

/*
 * An error of cause code.  Returns 1 when it is the first of its cause
 * in this episode (log it as a warning), 0 when it is only counted.
 */
int
spot_warn_note(struct spot_warns *sw, const char *code, const char *request,
    int64_t now)
{
	struct spot_warn	*w;

	if (code == NULL || *code == '\0')
		code = "unknown";
	if ((w = spot_warn_find(sw, code)) == NULL) {
		if (sw->n == QS_ARRAYLEN(sw->w))
			return 1;	/* that many causes: say each */
		w = &sw->w[sw->n++];
		memset(w, 0, sizeof(*w));
		snprintf(w->code, sizeof(w->code), "%s", code);
		return 1;
	}
	w->more++;
	w->last_ms = now;
	snprintf(w->last_request, sizeof(w->last_request), "%s",
	    request != NULL ? request : "");
	return 0;
}

/*
 * The episode is over (why: "the spot blackout is over", ...).  Writes
 * the line summing up what was only counted, if anything was, and
 * returns how many errors it counts; forgets the episode either way.
 */
uint64_t
spot_warn_end(struct spot_warns *sw, const char *why, char *buf, size_t len)
{
	struct spot_warn	*w;
	uint64_t		 total = 0;
	size_t			 i, off;
	char			 t[40];
	int			 n;

	off = (size_t)snprintf(buf, len, "spot capacity errors not logged "
	    "one by one:");
	for (i = 0; i < sw->n; i++) {
		w = &sw->w[i];
		if (w->more == 0)
			continue;
		fmt_time_ms(w->last_ms, t, sizeof(t));
		n = snprintf(buf + QS_MIN(off, len), len - QS_MIN(off, len),
		    "%s %llu more %s (the last at %s%s%s)", total > 0 ? ";" :
		    "", (unsigned long long)w->more, w->code, t,
		    w->last_request[0] != '\0' ? ", request " : "",
		    w->last_request);
		off += n > 0 ? (size_t)n : 0;
		total += w->more;
	}
	if (len > 0)
		snprintf(buf + QS_MIN(off, len - 1), len - QS_MIN(off, len - 1),
		    "; %s", why);
	sw->n = 0;
	return total;
}
