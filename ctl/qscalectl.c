/*
 * qscalectl: talks to qscaled over its control socket.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define CTL_MAX_LINE	(16 * 1024 * 1024)

static const char *socket_path;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: qscalectl [-s socket | -c config] command [arguments]\n"
	    "commands:\n"
	    "  status [-j]                   resources, workers and counters\n"
	    "  reload                        reload the configuration\n"
	    "  tail [RESOURCE] [-n N] [-f]   last log lines, then live\n"
	    "  log-level LEVEL [RESOURCE]    error, warn, info or debug\n"
	    "  export-config [--with-secrets] running configuration as JSON\n"
	    "  stop                          stop the daemon\n");
	exit(2);
}

static int
ctl_connect(void)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "qscalectl: socket path too long: %s\n",
		    socket_path);
		exit(1);
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", socket_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "qscalectl: no qscaled answers on %s: %s\n",
		    socket_path, strerror(errno));
		exit(1);
	}
	return fd;
}

static void
ctl_write(int fd, cJSON *req)
{
	char	*text = cJSON_PrintUnformatted(req);
	size_t	 len = strlen(text), off = 0;
	ssize_t	 n;

	text = realloc(text, len + 2);
	if (text == NULL)
		fatal("realloc");
	text[len++] = '\n';
	while (off < len) {
		if ((n = write(fd, text + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "qscalectl: %s: %s\n", socket_path,
			    strerror(errno));
			exit(1);
		}
		off += (size_t)n;
	}
	free(text);
}

/* Reads one JSON line; NULL at the end of the stream. */
static cJSON *
ctl_read(FILE *fp)
{
	static char	*line;
	static size_t	 cap;
	ssize_t		 n;
	cJSON		*o;

	if ((n = getline(&line, &cap, fp)) <= 0)
		return NULL;
	if (n > CTL_MAX_LINE || (o = cJSON_Parse(line)) == NULL ||
	    !cJSON_IsObject(o)) {
		fprintf(stderr, "qscalectl: unreadable answer from qscaled\n");
		exit(1);
	}
	return o;
}

/* Sends one request, returns the header of the answer (ok checked). */
static cJSON *
ctl_call(cJSON *req, FILE **fpp)
{
	cJSON		*hdr;
	const char	*err;
	FILE		*fp;
	int		 fd;

	fd = ctl_connect();
	ctl_write(fd, req);
	cJSON_Delete(req);
	if ((fp = fdopen(fd, "r")) == NULL)
		fatal("fdopen");
	if ((hdr = ctl_read(fp)) == NULL) {
		fprintf(stderr, "qscalectl: qscaled closed the connection "
		    "without answering\n");
		exit(1);
	}
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hdr, "ok"))) {
		err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		    hdr, "error"));
		fprintf(stderr, "qscalectl: %s\n", err != NULL ? err :
		    "request failed");
		exit(1);
	}
	if (fpp != NULL)
		*fpp = fp;
	else
		fclose(fp);
	return hdr;
}

static cJSON *
request(const char *cmd)
{
	cJSON	*o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "cmd", cmd);
	return o;
}

static double
num(const cJSON *o, const char *key)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *
str(const cJSON *o, const char *key)
{
	const char	*s = cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(o, key));

	return s != NULL ? s : "";
}

static void
fmt_ago(double then_ms, double now, char *buf, size_t len)
{
	double	 s;

	if (then_ms <= 0) {
		snprintf(buf, len, "never");
		return;
	}
	s = (now - then_ms) / 1000;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, len, "%.0fs ago", s);
	else if (s < 7200)
		snprintf(buf, len, "%.0fm ago", s / 60);
	else
		snprintf(buf, len, "%.0fh ago", s / 3600);
}

/*
 * A resource's own spot blackout (spot_blackout_scope "resource"; the
 * global one is shown above the table), and the launches the spot
 * rules turned to on-demand.
 */
static void
print_spot(const cJSON *r, const cJSON *w, double now)
{
	const cJSON	*b = cJSON_GetObjectItemCaseSensitive(r, "blackout");
	const cJSON	*s = cJSON_GetObjectItemCaseSensitive(w, "spot");
	const cJSON	*cv;
	char		 t[40];

	cv = cJSON_GetObjectItemCaseSensitive(s, "converted");
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "active")) &&
	    strcmp(str(b, "scope"), "resource") == 0) {
		fmt_time_ms((int64_t)num(b, "until"), t, sizeof(t));
		printf("  %s: spot blackout until %s (%.0fs left): %s\n",
		    str(r, "name"), t, (num(b, "until") - now) / 1000,
		    str(b, "reason"));
	}
	if (num(cv, "rollback") + num(cv, "blackout") > 0)
		printf("  %s: on-demand instead of spot: %.0f after "
		    "spot_rollback_timeout, %.0f in a blackout; last: %s\n",
		    str(r, "name"), num(cv, "rollback"), num(cv, "blackout"),
		    str(s, "last_converted"));
}

static void
print_resource(const cJSON *r, double now)
{
	const cJSON	*w = cJSON_GetObjectItemCaseSensitive(r, "worker");
	const cJSON	*c = cJSON_GetObjectItemCaseSensitive(w, "counts");
	char		 ago[32], inst[32], market[32];
	const char	*state = *str(w, "state") != '\0' ? str(w, "state") :
			    str(r, "state");

	fmt_ago(num(w, "last_poll"), now, ago, sizeof(ago));
	snprintf(inst, sizeof(inst), "%.0f/%.0f", num(c, "live"),
	    num(r, "max_instances"));
	snprintf(market, sizeof(market), "%.0f/%.0f", num(c, "spot"),
	    num(c, "on_demand"));
	printf("%-14s %-7.0f %-11s %-4.0f %-9s %-5.0f %-9s %-7s %-4.0f "
	    "%-4.0f %-7.0f %.0f\n", str(r, "name"), num(r, "pid"),
	    strcmp(str(r, "state"), "running") == 0 ? state : str(r, "state"),
	    num(r, "restarts"), ago, num(c, "pending"), inst, market,
	    num(c, "idle"), num(c, "busy"), num(c, "booting"),
	    num(c, "errors"));
	if (*str(w, "note") != '\0')
		printf("  %s: %s\n", str(r, "name"), str(w, "note"));
	if (*str(w, "last_error") != '\0' &&
	    now - num(w, "last_error_time") < 10 * 60 * 1000)
		printf("  %s: last error: %s\n", str(r, "name"),
		    str(w, "last_error"));
	if (*str(r, "last_exit") != '\0')
		printf("  %s: last exit: %s\n", str(r, "name"),
		    str(r, "last_exit"));
	print_spot(r, w, now);
}

/* The global cap, and the resources not counted yet. */
static void
print_cap(const cJSON *g)
{
	const cJSON	*un = cJSON_GetObjectItemCaseSensitive(g,
			    "not_counted"), *e;
	const char	*sep = " (not counted yet: ";

	printf("instances: %.0f of %.0f allowed in total",
	    num(g, "instances_in_use"), num(g, "max_instances_total"));
	cJSON_ArrayForEach(e, un) {
		if (cJSON_IsString(e))
			printf("%s%s", sep, e->valuestring);
		sep = ", ";
	}
	printf("%s\n", cJSON_GetArraySize(un) > 0 ? ")" : "");
}

/* Instances of resources no longer configured, watched by the daemon. */
static void
print_orphans(const cJSON *o, double now)
{
	const cJSON	*e, *list = cJSON_GetObjectItemCaseSensitive(o,
			    "instances");
	char		 what[160], ago[32];
	int		 n = cJSON_GetArraySize(list);

	if (n > 0)
		printf("orphans: %d instance%s of resources not in the "
		    "configuration, terminated once idle for %.0fs:\n", n,
		    n == 1 ? "" : "s", num(o, "max_idle_time"));
	cJSON_ArrayForEach(e, list) {
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e,
		    "terminating")))
			snprintf(what, sizeof(what), "terminating");
		else if (*str(e, "task") != '\0')
			snprintf(what, sizeof(what), "busy with task %s",
			    str(e, "task"));
		else {
			fmt_ago(num(e, "idle_since"), now, ago, sizeof(ago));
			snprintf(what, sizeof(what), "idle since %s", ago);
		}
		printf("  %s %s (resource %s, %s): %s\n", str(e, "id"),
		    str(e, "instance_type"), str(e, "resource"),
		    str(e, "state"), what);
	}
	if (*str(o, "last_error") != '\0')
		printf("orphans: last error: %s\n", str(o, "last_error"));
}

static int
cmd_status(int argc, char **argv)
{
	cJSON		*st, *r, *g, *b;
	double		 now;
	int		 json = argc > 1 && strcmp(argv[1], "-j") == 0;
	char		*text, until[40];

	st = ctl_call(request("status"), NULL);
	if (json) {
		text = cJSON_Print(st);
		printf("%s\n", text);
		free(text);
		cJSON_Delete(st);
		return 0;
	}
	now = num(st, "now");
	g = cJSON_GetObjectItemCaseSensitive(st, "global");
	b = cJSON_GetObjectItemCaseSensitive(g, "blackout");
	printf("qscaled %s, pid %.0f, %s, config %s\n", str(st, "version"),
	    num(st, "pid"), str(st, "name"), str(st, "config"));
	if (num(g, "max_instances_total") > 0)
		print_cap(g);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "active"))) {
		fmt_time_ms((int64_t)num(b, "until"), until, sizeof(until));
		printf("spot blackout: active until %s (%.0fs left), started "
		    "by %s (%s): launches that would be spot are on-demand\n",
		    until, (num(b, "until") - now) / 1000, str(b, "resource"),
		    str(b, "reason"));
	}
	if (*str(st, "last_reload_error") != '\0')
		printf("last reload failed:\n%s\n", str(st,
		    "last_reload_error"));
	printf("%-14s %-7s %-11s %-4s %-9s %-5s %-9s %-7s %-4s %-4s %-7s "
	    "%s\n", "RESOURCE", "PID", "STATE", "RST", "LAST POLL", "QUEUE",
	    "INSTANCES", "SPOT/OD", "IDLE", "BUSY", "BOOTING", "ERRORS");
	cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(st,
	    "resources"))
		print_resource(r, now);
	print_orphans(cJSON_GetObjectItemCaseSensitive(st, "orphans"), now);
	cJSON_Delete(st);
	return 0;
}

static int
cmd_tail(int argc, char **argv)
{
	cJSON		*req = request("tail"), *o;
	const char	*resource = NULL;
	long		 n = 20;
	int		 follow = 0, i;
	char		*end;
	FILE		*fp;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0)
			follow = 1;
		else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			n = strtol(argv[++i], &end, 10);
			if (*end != '\0' || n < 0 || n > 100000) {
				fprintf(stderr, "qscalectl: -n wants a number "
				    "from 0 to 100000\n");
				return 2;
			}
		} else if (argv[i][0] != '-' && resource == NULL)
			resource = argv[i];
		else
			usage();
	}
	if (resource != NULL)
		cJSON_AddStringToObject(req, "resource", resource);
	cJSON_AddNumberToObject(req, "lines", (double)n);
	cJSON_AddBoolToObject(req, "follow", follow);
	cJSON_Delete(ctl_call(req, &fp));
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((o = ctl_read(fp)) != NULL) {
		printf("%s\n", str(o, "line"));
		cJSON_Delete(o);
	}
	fclose(fp);
	return 0;
}

static int
cmd_simple(const char *cmd, cJSON *req)
{
	cJSON	*hdr;

	(void)cmd;
	hdr = ctl_call(req, NULL);
	if (*str(hdr, "message") != '\0')
		printf("%s\n", str(hdr, "message"));
	cJSON_Delete(hdr);
	return 0;
}

static int
cmd_log_level(int argc, char **argv)
{
	cJSON	*req;

	if (argc < 2 || argc > 3)
		usage();
	if (log_level_parse(argv[1]) < 0) {
		fprintf(stderr, "qscalectl: unknown log level '%s' (use "
		    "error, warn, info or debug)\n", argv[1]);
		return 2;
	}
	req = request("log-level");
	cJSON_AddStringToObject(req, "level", argv[1]);
	if (argc == 3)
		cJSON_AddStringToObject(req, "resource", argv[2]);
	return cmd_simple("log-level", req);
}

static int
cmd_export(int argc, char **argv)
{
	cJSON	*req = request("export-config"), *hdr;
	char	*text;

	if (argc == 2 && strcmp(argv[1], "--with-secrets") == 0)
		cJSON_AddBoolToObject(req, "with_secrets", 1);
	else if (argc != 1)
		usage();
	hdr = ctl_call(req, NULL);
	text = cJSON_Print(cJSON_GetObjectItemCaseSensitive(hdr, "config"));
	printf("%s\n", text != NULL ? text : "{}");
	free(text);
	cJSON_Delete(hdr);
	return 0;
}

/*
 * -c: the socket named in a configuration file.  Only that is read: a
 * file with an error elsewhere (half-way through an edit) must not lock
 * the operator out of status and stop.
 */
static const char *
socket_from_config(const char *path)
{
	char	*s, *note;

	s = conf_peek_socket(path, &note);
	if (note != NULL) {
		fprintf(stderr, "qscalectl: note: %s\n", note);
		free(note);
	}
	return s;
}

int
main(int argc, char **argv)
{
	const char	*cmd;
	char		 err[256];
	int		 ch;

	log_init("qscalectl", LOG_LVL_WARN, 1);
	/* -c and export-config --with-secrets bring secrets in: no core */
	if (proc_harden(0, err, sizeof(err)) == -1)
		fatalx("%s", err);
	socket_path = getenv("QSCALE_SOCKET");
	while ((ch = getopt(argc, argv, "+c:s:h")) != -1) {
		switch (ch) {
		case 'c':
			socket_path = socket_from_config(optarg);
			break;
		case 's':
			socket_path = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	if (socket_path == NULL)
		socket_path = QS_DEFAULT_SOCKET;
	cmd = argv[0];
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc, argv);
	if (strcmp(cmd, "tail") == 0)
		return cmd_tail(argc, argv);
	if (strcmp(cmd, "log-level") == 0)
		return cmd_log_level(argc, argv);
	if (strcmp(cmd, "export-config") == 0)
		return cmd_export(argc, argv);
	if ((strcmp(cmd, "reload") == 0 || strcmp(cmd, "stop") == 0) &&
	    argc == 1)
		return cmd_simple(cmd, request(cmd));
	fprintf(stderr, "qscalectl: unknown command '%s'\n", cmd);
	usage();
}
