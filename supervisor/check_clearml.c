/*
 * check_clearml.c: the ClearML half of "qscaled --check".  It logs in
 * with the configured credentials and resolves every resource's queue,
 * printing one line per check, "OK ..." or "FAIL ..." with the error's
 * class and the configuration key to look at.  It runs the loop it is
 * given until its own calls are done.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common.h"
#include "clearml.h"
#include "supervisor.h"

/* Bounded, so that a server that does not answer fails the check soon. */
#define CHECK_RETRIES		1
#define CHECK_BACKOFF_MS	500
#define CHECK_TIMEOUT_MS	10000

struct check_queue {
	int			 done;
	int			 ok;
	char			 id[64];
	struct cml_error	 err;
};

struct check_state {
	const struct qscale_conf	*conf;
	struct event_base		*base;
	struct cml_client		*cml;
	struct check_queue		*q;
	size_t				 pending;
	int				 failures;
};

/* One line on stdout, secrets masked. */
static void
check_print(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
check_print(const char *fmt, ...)
{
	va_list	 ap;
	char	*line, *m;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	m = mask_dup(line);
	printf("%s\n", m);
	fflush(stdout);
	free(m);
	free(line);
}

static const char *
login_key(enum cml_err_class cls)
{
	if (cls == CML_ERR_AUTH)
		return "clearml.access_key, clearml.secret_key";
	return "clearml.api_server";
}

static void
check_queues_print(struct check_state *st)
{
	const struct conf_resource	*r;
	struct check_queue		*q;
	char				 where[512], key[128];
	size_t				 i;

	for (i = 0; i < st->conf->nresources; i++) {
		r = &st->conf->resources[i];
		q = &st->q[i];
		snprintf(key, sizeof(key), "resources.%s.queue", r->name);
		check_key_where(st->conf, r, key, where, sizeof(where));
		if (q->ok) {
			check_print("OK clearml queue \"%s\" of resource "
			    "\"%s\": id %s", r->queue, r->name, q->id);
			continue;
		}
		st->failures++;
		check_print("FAIL clearml queue \"%s\" (resource \"%s\", "
		    "key %s at %s): %s: %s", r->queue, r->name, key, where,
		    cml_err_class_name(q->err.cls), q->err.message);
	}
}

/* What one queue's callback needs: the state and its index. */
struct check_hold {
	struct check_state	*st;
	size_t			 i;
};

static void
check_queue_cb(const struct cml_error *err, const char *id, void *arg)
{
	struct check_hold	*h = arg;
	struct check_state	*st = h->st;
	struct check_queue	*q = &st->q[h->i];

	q->done = 1;
	if (err == NULL) {
		q->ok = 1;
		snprintf(q->id, sizeof(q->id), "%s", id);
	} else
		q->err = *err;
	free(h);
	if (--st->pending > 0)
		return;
	check_queues_print(st);
	event_base_loopbreak(st->base);
}

static void
check_queues_start(struct check_state *st)
{
	const struct conf_resource	*r;
	struct check_hold		*h;
	size_t				 i;

	st->q = xcalloc(st->conf->nresources, sizeof(*st->q));
	for (i = 0; i < st->conf->nresources; i++) {
		r = &st->conf->resources[i];
		h = xcalloc(1, sizeof(*h));
		h->st = st;
		h->i = i;
		if (r->queue == NULL || cml_queue_resolve(st->cml, r->queue,
		    check_queue_cb, h) == -1) {
			free(h);
			st->q[i].done = 1;
			cml_error_set(&st->q[i].err, CML_ERR_INVALID,
			    "queues.get_all", "no queue name");
			continue;
		}
		st->pending++;
	}
	if (st->pending == 0) {
		check_queues_print(st);
		event_base_loopbreak(st->base);
	}
}

static void
check_login_cb(const struct cml_error *err, void *arg)
{
	struct check_state	*st = arg;
	const char		*sv, *av;

	if (err != NULL) {
		st->failures++;
		check_print("FAIL clearml login to %s: %s: %s (key %s)",
		    st->conf->clearml.api_server, cml_err_class_name(err->cls),
		    err->message, login_key(err->cls));
		event_base_loopbreak(st->base);
		return;
	}
	sv = cml_server_version(st->cml);
	av = cml_api_version(st->cml);
	check_print("OK clearml login to %s: server version %s, API version "
	    "%s", st->conf->clearml.api_server, sv[0] != '\0' ? sv : "unknown",
	    av[0] != '\0' ? av : "unknown");
	check_queues_start(st);
}

/* A missing setting fails the check before any call is made. */
static int
check_settings(const struct qscale_conf *conf)
{
	const struct conf_clearml	*cc = &conf->clearml;
	const char			*key = NULL;

	if (cc->api_server == NULL || cc->api_server[0] == '\0')
		key = "clearml.api_server";
	else if (cc->access_key == NULL || cc->access_key[0] == '\0')
		key = "clearml.access_key";
	else if (cc->secret_key == NULL || cc->secret_key[0] == '\0')
		key = "clearml.secret_key";
	if (key == NULL)
		return 0;
	check_print("FAIL clearml login: no %s set (key %s, or the "
	    "environment's CLEARML_API_%s)", key + 8, key,
	    strcmp(key, "clearml.api_server") == 0 ? "HOST" :
	    strcmp(key, "clearml.access_key") == 0 ? "ACCESS_KEY" :
	    "SECRET_KEY");
	return -1;
}

/*
 * Checks that the configured ClearML credentials log in and that every
 * resource's queue exists.  Returns the number of checks that failed.
 */
int
check_clearml(const struct qscale_conf *conf, struct event_base *base,
    struct http_client *http)
{
	struct check_state	 st;

	if (check_settings(conf) == -1)
		return 1;
	memset(&st, 0, sizeof(st));
	st.conf = conf;
	st.base = base;
	st.cml = cml_client_new(base, http, conf->clearml.api_server,
	    conf->clearml.access_key, conf->clearml.secret_key);
	if (st.cml == NULL) {
		check_print("FAIL clearml login: cannot make a client for %s "
		    "(key clearml.api_server)", conf->clearml.api_server);
		return 1;
	}
	cml_client_set_retry(st.cml, CHECK_RETRIES, CHECK_BACKOFF_MS,
	    CHECK_TIMEOUT_MS);
	if (cml_login(st.cml, check_login_cb, &st) == -1)
		fatalx("%s: cannot start the login", __func__);
	event_base_dispatch(base);
	cml_client_free(st.cml);
	free(st.q);
	return st.failures;
}
