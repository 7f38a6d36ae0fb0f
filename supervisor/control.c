/*
 * control.c: the control socket qscalectl talks to.  A client sends one
 * JSON request on one line; the supervisor answers with JSON lines: a
 * header {"ok": true|false, ...} and, for "tail", one {"line": ...} per log
 * line, live ones too when it follows.  The socket is mode 0600, so only
 * its owner (and root) can use it.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common.h"
#include "proto.h"
#include "supervisor.h"

#define CTL_MAX_REQUEST		(64 * 1024)
#define CTL_MAX_BACKLOG		(4 * 1024 * 1024)
#define CTL_DEFAULT_LINES	20

struct ctl_conn {
	TAILQ_ENTRY(ctl_conn)	 entry;
	struct sup		*sup;
	struct bufferevent	*bev;
	void			*sub;
	int			 closing;
	uid_t			 uid;
};

static struct evconnlistener	*listener;
static char			*socket_path;
/* Every open connection, to be closed with the socket. */
static TAILQ_HEAD(, ctl_conn)	 conns = TAILQ_HEAD_INITIALIZER(conns);

static void	ctl_free(struct ctl_conn *);

static void
ctl_send(struct ctl_conn *cc, cJSON *o)
{
	char	*text = cJSON_PrintUnformatted(o);

	if (text == NULL)
		return;
	bufferevent_write(cc->bev, text, strlen(text));
	bufferevent_write(cc->bev, "\n", 1);
	free(text);
}

static void
ctl_reply(struct ctl_conn *cc, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A one-line answer, then the connection closes. */
static void
ctl_reply(struct ctl_conn *cc, int ok, const char *fmt, ...)
{
	cJSON	*o = cJSON_CreateObject();
	char	*msg;
	va_list	 ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	cJSON_AddBoolToObject(o, "ok", ok);
	cJSON_AddStringToObject(o, ok ? "message" : "error",
	    msg != NULL ? msg : "");
	ctl_send(cc, o);
	cJSON_Delete(o);
	free(msg);
	cc->closing = 1;
}

static void
ctl_tail_line(const char *line, void *arg)
{
	struct ctl_conn	*cc = arg;
	cJSON		*o;

	if (evbuffer_get_length(bufferevent_get_output(cc->bev)) >
	    CTL_MAX_BACKLOG) {
		/* A follower that does not read: drop it, not the daemon. */
		logsink_unsubscribe(cc->sub);
		cc->sub = NULL;
		cc->closing = 1;
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "line", line);
	ctl_send(cc, o);
	cJSON_Delete(o);
}

static void
ctl_tail(struct ctl_conn *cc, cJSON *req)
{
	const char	*name = proto_get_str(req, "resource");
	int64_t		 n = CTL_DEFAULT_LINES;
	cJSON		*o, *follow;

	if (name == NULL || *name == '\0' || strcmp(name, "all") == 0)
		name = "*";
	else if (strcmp(name, "qscaled") != 0 &&
	    sup_child_find(cc->sup, name) == NULL) {
		ctl_reply(cc, 0, "no resource named '%s'", name);
		return;
	}
	if (cJSON_GetObjectItemCaseSensitive(req, "lines") != NULL &&
	    proto_get_int(req, "lines", 0, 100000, &n) == -1) {
		ctl_reply(cc, 0, "lines must be a number from 0 to 100000");
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	ctl_send(cc, o);
	cJSON_Delete(o);
	logsink_tail(name, (size_t)n, ctl_tail_line, cc);
	follow = cJSON_GetObjectItemCaseSensitive(req, "follow");
	if (cJSON_IsTrue(follow))
		cc->sub = logsink_subscribe(name, ctl_tail_line, cc);
	else
		cc->closing = 1;
}

static void
ctl_log_level(struct ctl_conn *cc, cJSON *req)
{
	const char		*lvl = proto_get_str(req, "level");
	const char		*name = proto_get_str(req, "resource");
	int			 level;

	if ((level = log_level_parse(lvl)) < 0) {
		ctl_reply(cc, 0, "unknown log level '%s' (use error, warn, "
		    "info or debug)", lvl != NULL ? lvl : "");
		return;
	}
	if (name != NULL && *name != '\0') {
		if (sup_set_log_level(cc->sup, name, level) == -1) {
			ctl_reply(cc, 0, "no resource named '%s'", name);
			return;
		}
		log_info("log level of %s set to %s", name,
		    log_level_name(level));
		ctl_reply(cc, 1, "log level of %s is %s", name,
		    log_level_name(level));
		return;
	}
	sup_set_log_level(cc->sup, NULL, level);
	log_info("log level set to %s everywhere", log_level_name(level));
	ctl_reply(cc, 1, "log level is %s everywhere", log_level_name(level));
}

static void
ctl_reload(struct ctl_conn *cc)
{
	char	*err = NULL;

	if (sup_reload(cc->sup, &err) == 0)
		ctl_reply(cc, 1, "configuration reloaded");
	else
		ctl_reply(cc, 0, "%s", err != NULL ? err : "reload failed");
	free(err);
}

static void
ctl_export(struct ctl_conn *cc, cJSON *req)
{
	int	 secrets = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req,
		    "with_secrets"));
	cJSON	*o;

	if (secrets && cc->uid != geteuid()) {
		ctl_reply(cc, 0, "--with-secrets is only for the owner of the "
		    "control socket");
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddItemToObject(o, "config", conf_to_json(cc->sup->conf,
	    secrets));
	ctl_send(cc, o);
	cJSON_Delete(o);
	cc->closing = 1;
}

static void
ctl_request(struct ctl_conn *cc, const char *line)
{
	cJSON		*req, *o;
	const char	*cmd;

	if ((req = cJSON_Parse(line)) == NULL || !cJSON_IsObject(req) ||
	    (cmd = proto_get_str(req, "cmd")) == NULL) {
		ctl_reply(cc, 0, "malformed request: expected a JSON object "
		    "with a \"cmd\"");
		cJSON_Delete(req);
		return;
	}
	if (strcmp(cmd, "status") == 0) {
		o = sup_status_json(cc->sup);
		ctl_send(cc, o);
		cJSON_Delete(o);
		cc->closing = 1;
	} else if (strcmp(cmd, "reload") == 0)
		ctl_reload(cc);
	else if (strcmp(cmd, "tail") == 0)
		ctl_tail(cc, req);
	else if (strcmp(cmd, "log-level") == 0)
		ctl_log_level(cc, req);
	else if (strcmp(cmd, "export-config") == 0)
		ctl_export(cc, req);
	else if (strcmp(cmd, "stop") == 0) {
		ctl_reply(cc, 1, "stopping");
		sup_shutdown(cc->sup, "stop requested through qscalectl");
	} else
		ctl_reply(cc, 0, "unknown command '%s'", cmd);
	cJSON_Delete(req);
}

static void
ctl_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn	*cc = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	char		*line;
	size_t		 len;

	if (cc->closing || cc->sub != NULL) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > CTL_MAX_REQUEST)
			ctl_reply(cc, 0, "request too long");
		return;
	}
	ctl_request(cc, line);
	free(line);
	if (cc->closing &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		ctl_free(cc);
}

static void
ctl_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn	*cc = arg;

	(void)bev;
	if (cc->closing)
		ctl_free(cc);
}

static void
ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		ctl_free(arg);
}

static void
ctl_free(struct ctl_conn *cc)
{
	TAILQ_REMOVE(&conns, cc, entry);
	logsink_unsubscribe(cc->sub);
	bufferevent_free(cc->bev);
	free(cc);
}

static void
ctl_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct ctl_conn	*cc;
	struct ucred	 cred;
	socklen_t	 len = sizeof(cred);

	(void)l;
	(void)sa;
	(void)salen;
	cc = xcalloc(1, sizeof(*cc));
	TAILQ_INSERT_TAIL(&conns, cc, entry);
	cc->sup = arg;
	cc->uid = (uid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		cc->uid = cred.uid;
	cc->bev = bufferevent_socket_new(cc->sup->base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(cc->bev, ctl_read_cb, ctl_write_cb, ctl_event_cb,
	    cc);
	bufferevent_enable(cc->bev, EV_READ | EV_WRITE);
}

/* A socket file nobody answers on is left over from a crash. */
static int
stale_socket(const struct sockaddr_un *sun)
{
	int	 fd, rc;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	close(fd);
	return rc == -1 && errno == ECONNREFUSED;
}

int
control_listen(struct sup *sup, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un	 sun;
	mode_t			 old;
	char			*dir;
	size_t			 len;
	int			 rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	len = strlen(path);
	if (len >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control socket path too long: %s",
		    path);
		return -1;
	}
	/*
	 * The length is known: a copy, not a snprintf that gcc's
	 * -Wformat-truncation flags under -fsanitize=undefined.
	 */
	memcpy(sun.sun_path, path, len + 1);
	/* another user's link in its place would take the chmod below */
	dir = xstrdup(path);
	rc = dir_check_private("control socket directory", dirname(dir), err,
	    errlen);
	free(dir);
	if (rc == -1)
		return -1;
	if (access(path, F_OK) == 0) {
		if (!stale_socket(&sun)) {
			snprintf(err, errlen, "control socket %s is in use",
			    path);
			return -1;
		}
		unlink(path);
	}
	old = umask(0177);
	listener = evconnlistener_new_bind(sup->base, ctl_accept_cb, sup,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	    (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (listener == NULL) {
		snprintf(err, errlen, "control socket %s: %s", path,
		    strerror(errno));
		return -1;
	}
	chmod(path, 0600);
	socket_path = xstrdup(path);
	return 0;
}

/*
 * At exit: what is still open (a "tail -f", the answer to "stop") gets
 * what can be written at once, then is closed.
 */
void
control_close(void)
{
	struct ctl_conn	*cc;

	while ((cc = TAILQ_FIRST(&conns)) != NULL) {
		evbuffer_write(bufferevent_get_output(cc->bev),
		    bufferevent_getfd(cc->bev));
		ctl_free(cc);
	}
	if (listener != NULL)
		evconnlistener_free(listener);
	listener = NULL;
	if (socket_path != NULL)
		unlink(socket_path);
	free(socket_path);
	socket_path = NULL;
}
