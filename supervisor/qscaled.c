/*
 * qscaled: the autoscaler daemon.  Parses and checks the configuration,
 * takes the pid file lock, daemonizes and hands over to the supervisor.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common.h"
#include "proto.h"
#include "supervisor.h"
#include "worker.h"

struct opts {
	const char	*conf_path;
	int		 foreground;
	int		 debug;
	int		 check_only;
	int		 check_cloud;	/* --check */
	int		 dry_run;	/* --plan */
	int		 verbose;
	int		 allow_core_dumps;
};

#define OPT_CHECK	256
#define OPT_PLAN	257
#define OPT_CORE	258

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: qscaled [-dfnv] [--check | --plan] [--allow-core-dumps] "
	    "[-c file]\n"
	    "  -c file   configuration file (default %s)\n"
	    "  -f        stay in the foreground\n"
	    "  -d        debug: foreground, debug level, log to stderr\n"
	    "  -n        check the configuration and exit\n"
	    "  -v        with -n, print the normalised configuration\n"
	    "  --check   try the configuration against AWS and ClearML\n"
	    "            (credentials, a dry-run launch per resource and\n"
	    "            subnet, the queues) and exit\n"
	    "  --plan    observe once and print what one poll would launch\n"
	    "            or terminate, and why; nothing is changed\n"
	    "  --allow-core-dumps\n"
	    "            debug: let the processes dump core (a core holds\n"
	    "            every secret in clear)\n"
	    "  -V        print the version and exit\n",
	    QS_DEFAULT_CONF);
	exit(1);
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "plan", no_argument, NULL, OPT_PLAN },
		{ "allow-core-dumps", no_argument, NULL, OPT_CORE },
		{ NULL, 0, NULL, 0 }
	};
	int	 ch;

	memset(o, 0, sizeof(*o));
	o->conf_path = QS_DEFAULT_CONF;
	while ((ch = getopt_long(argc, argv, "c:dfhnvV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf_path = optarg;
			break;
		case 'd':
			o->debug = 1;
			o->foreground = 1;
			break;
		case 'f':
			o->foreground = 1;
			break;
		case 'n':
			o->check_only = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'V':
			printf("qscaled %s\n", QSCALE_VERSION);
			exit(0);
		case OPT_CHECK:
			o->check_cloud = 1;
			break;
		case OPT_PLAN:
			o->dry_run = 1;
			break;
		case OPT_CORE:
			o->allow_core_dumps = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc) {
		fprintf(stderr, "qscaled: unexpected argument '%s'\n",
		    argv[optind]);
		usage();
	}
	if (o->check_cloud + o->dry_run + o->check_only > 1) {
		fprintf(stderr, "qscaled: -n, --check and --plan exclude each "
		    "other\n");
		usage();
	}
}

static struct qscale_conf *
load_or_die(const char *path)
{
	struct conf_errors	 errs = { NULL, 0 };
	struct qscale_conf	*conf;
	size_t			 i;

	if ((conf = conf_load(path, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		conf_errors_clear(&errs);
		exit(1);
	}
	conf_errors_clear(&errs);
	for (i = 0; i < conf->warnings.n; i++)
		fprintf(stderr, "%s\n", conf->warnings.msg[i]);
	return conf;
}

/* The configuration's path, absolute, from the current directory. */
static char *
conf_path_absolute(const char *path)
{
	char	*abs, cwd[PATH_MAX];

	if ((abs = realpath(path, NULL)) != NULL)
		return abs;
	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		return xstrdup(path);
	xasprintf(&abs, "%s/%s", cwd, path);
	return abs;
}

/* mkdir -p for the directory of a file, 0755. */
static int
make_parent(const char *file)
{
	char	*copy = xstrdup(file), *dir = dirname(copy), *p;
	int	 rc = 0;

	for (p = dir + 1; rc == 0; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char save = *p;
		*p = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST)
			rc = -1;
		*p = save;
		if (save == '\0')
			break;
	}
	free(copy);
	return rc;
}

/* Takes the pid file lock or says which process holds it. */
static int
pidfile_lock(const char *path)
{
	char	 buf[32], err[512], *copy;
	ssize_t	 n;
	int	 fd, rc;

	if (make_parent(path) == -1) {
		fprintf(stderr, "qscaled: pid file %s: %s\n", path,
		    strerror(errno));
		exit(1);
	}
	copy = xstrdup(path);
	rc = dir_check_private("pid file directory", dirname(copy), err,
	    sizeof(err));
	free(copy);
	if (rc == -1 || (fd = open_private_file(path, O_RDWR | O_CREAT, 0644,
	    err, sizeof(err))) == -1) {
		fprintf(stderr, "qscaled: pid file: %s\n", err);
		exit(1);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		fprintf(stderr, "qscaled: already running (pid %s, lock on "
		    "%s)\n", *buf != '\0' ? buf : "unknown", path);
		exit(1);
	}
	return fd;
}

static void
pidfile_write(int fd)
{
	char	 buf[32];
	int	 n;

	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, n, 0) != n)
		log_warn("writing the pid file");
}

/*
 * Daemonize, but let the parent wait until the daemon is ready (or has
 * failed) so that an init script sees the real outcome.  Returns the
 * fd on which the daemon reports, -1 in the foreground.
 */
static int
daemonize(void)
{
	int	 p[2], fd;
	char	 buf[512];
	ssize_t	 n;

	if (pipe2(p, O_CLOEXEC) == -1)
		fatal("pipe");
	switch (fork()) {
	case -1:
		fatal("fork");
	case 0:
		break;
	default:
		close(p[1]);
		n = read(p[0], buf, sizeof(buf) - 1);
		if (n == 1 && buf[0] == '\0')
			exit(0);
		buf[n > 0 ? n : 0] = '\0';
		fprintf(stderr, "qscaled: %s\n", n > 0 ? buf :
		    "the daemon exited during start-up");
		exit(1);
	}
	close(p[0]);
	if (setsid() == -1)
		fatal("setsid");
	switch (fork()) {
	case -1:
		fatal("fork");
	case 0:
		break;
	default:
		_exit(0);
	}
	if (chdir("/") == -1)
		fatal("chdir /");
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return p[1];
}

static void
report_ready(int fd, const char *err)
{
	if (fd == -1) {
		if (err != NULL)
			fprintf(stderr, "qscaled: %s\n", err);
		return;
	}
	if (err == NULL)
		(void)write(fd, "", 1);
	else
		(void)write(fd, err, strlen(err));
	close(fd);
}

int
main(int argc, char **argv)
{
	struct opts		 o;
	struct sup		 sup;
	struct qscale_conf	*conf;
	char			 err[512];
	char			*pid_path;
	int			 pidfd, readyfd = -1, devnull;

	parse_args(argc, argv, &o);
	log_init("qscaled", LOG_LVL_INFO, 1);
	/* before the first secret is read; worker processes inherit it */
	if (proc_harden(o.allow_core_dumps, err, sizeof(err)) == -1)
		fatalx("%s", err);
	conf = load_or_die(o.conf_path);
	conf_register_secrets(conf);
	if (o.check_cloud) {
		int rc;

		log_set_level(o.debug ? LOG_LVL_DEBUG : LOG_LVL_WARN);
		rc = check_main(conf);
		conf_free(conf);
		return rc;
	}
	if (o.dry_run) {
		int rc;

		log_set_level(o.debug ? LOG_LVL_DEBUG : LOG_LVL_WARN);
		rc = poll_dry_run(conf);
		rc |= orphan_dry_run(conf);
		conf_free(conf);
		return rc;
	}
	if (o.check_only) {
		if (o.verbose) {
			char *text = conf_print(conf, 0);

			fputs(text, stdout);
			free(text);
		}
		printf("configuration OK\n");
		conf_free(conf);
		return 0;
	}

	if (make_parent(conf->control_socket) == -1)
		fprintf(stderr, "qscaled: cannot create the directory of "
		    "%s: %s\n", conf->control_socket, strerror(errno));
	memset(&sup, 0, sizeof(sup));
	/*
	 * The daemon runs in /: a relative path must still reload, so it
	 * is resolved here, before daemonize() changes directory.
	 */
	sup.conf_path = conf_path_absolute(o.conf_path);
	pid_path = xstrdup(conf->pid_file);
	pidfd = pidfile_lock(pid_path);
	if (!o.foreground)
		readyfd = daemonize();
	pidfile_write(pidfd);

	TAILQ_INIT(&sup.children);
	sup.conf = conf;
	sup.debug = o.debug;
	sup.foreground = o.foreground;
	sup.started_ms = now_ms();
	log_libevent();
	if ((sup.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");

	log_set_level(o.debug ? LOG_LVL_DEBUG : conf->log_level);
	if (logsink_open(conf->log_dir, err, sizeof(err)) == -1 ||
	    control_listen(&sup, conf->control_socket, err, sizeof(err))
	    == -1 ||
	    status_listen(&sup, conf->status_listen, err, sizeof(err)) == -1) {
		report_ready(readyfd, err);
		control_close();
		logsink_close();
		unlink(pid_path);
		free(pid_path);
		conf_free(sup.conf);
		free(sup.conf_path);
		event_base_free(sup.base);
		return 1;
	}
	logsink_set_stderr(o.debug);
	log_set_stderr(0);
	log_set_sink(logsink_sink, NULL);
	conf_log_warnings(conf);
	status_announce();
	report_ready(readyfd, NULL);
	if (!o.foreground && (devnull = open("/dev/null", O_WRONLY)) != -1) {
		dup2(devnull, STDERR_FILENO);
		close(devnull);
	}

	sup_run(&sup);

	status_close();
	metrics_free(&sup);
	control_close();
	unlink(pid_path);
	close(pidfd);
	free(pid_path);
	log_set_sink(NULL, NULL);
	logsink_close();
	conf_free(sup.conf);
	free(sup.conf_path);
	event_base_free(sup.base);
	return 0;
}
