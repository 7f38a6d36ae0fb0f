/*
 * harden.c: what keeps other local users and stray readers away from
 * qscale's secrets and files.  The directories the daemon writes its
 * pid file and logs in are checked as sshd's StrictModes checks a home
 * directory, the files in them are opened without following links, and
 * every process is kept from dumping core (a core holds every secret in
 * clear) unless an operator asks for cores to debug.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static int	core_dumps_allowed;

/*
 * No core dump, and no ptrace or /proc/PID/mem reading by other
 * processes of the same user: PR_SET_DUMPABLE 0 does both.  Forked
 * processes inherit it; worker processes set it again all the same.
 * With allow set (qscaled --allow-core-dumps), the process keeps the
 * limits it was started with.
 */
int
proc_harden(int allow, char *err, size_t errlen)
{
	struct rlimit	 rl = { 0, 0 };

	core_dumps_allowed = allow;
	if (allow)
		return 0;
	if (setrlimit(RLIMIT_CORE, &rl) == -1) {
		snprintf(err, errlen, "setting the core file size limit to "
		    "0: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1) {
		snprintf(err, errlen, "prctl(PR_SET_DUMPABLE, 0): %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* What proc_harden() was last told, for the processes forked later. */
int
proc_core_dumps_allowed(void)
{
	return core_dumps_allowed;
}

static int
uid_trusted(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/*
 * A directory above the one qscaled writes in: if another user could
 * rename what is in it, that user could put a directory of theirs, or
 * a link, in place of the one that was checked.  The sticky bit (/tmp)
 * prevents that for entries the other user does not own.
 */
static int
dir_check_above(const char *what, const char *dir, const char *above,
    char *err, size_t errlen)
{
	struct stat	 st;

	if (lstat(above, &st) == -1) {
		snprintf(err, errlen, "%s %s: %s: %s", what, dir, above,
		    strerror(errno));
		return -1;
	}
	if (!uid_trusted(st.st_uid)) {
		snprintf(err, errlen, "%s %s: the directory %s above it is "
		    "owned by uid %u, neither root nor qscaled's user (uid "
		    "%u): that user could swap %s for a directory of their "
		    "own and have qscaled write over any file", what, dir,
		    above, (unsigned)st.st_uid, (unsigned)geteuid(), dir);
		return -1;
	}
	if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
		snprintf(err, errlen, "%s %s: the directory %s above it is "
		    "writable by every user and not sticky (mode %04o): any "
		    "user could swap %s for a directory of their own and have "
		    "qscaled write over any file; chmod o-w or +t %s", what,
		    dir, above, (unsigned)(st.st_mode & 07777), dir, above);
		return -1;
	}
	return 0;
}

/* The directory itself: nobody else may create or rename in it. */
static int
dir_check_self(const char *what, const char *dir, const char *real,
    char *err, size_t errlen)
{
	struct stat	 st;

	if (lstat(real, &st) == -1) {
		snprintf(err, errlen, "%s %s: %s", what, dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s %s: not a directory", what, dir);
		return -1;
	}
	if (!uid_trusted(st.st_uid)) {
		snprintf(err, errlen, "%s %s is owned by uid %u, neither root "
		    "nor qscaled's user (uid %u): that user could put a link "
		    "there in place of a file qscaled writes and have it "
		    "write over any file; chown it", what, dir,
		    (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	/* even sticky: others could still create a link under our name */
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "%s %s is writable by %s (mode %04o): "
		    "another user could put a link there in place of a file "
		    "qscaled writes and have it write over any file; chmod "
		    "go-w %s", what, dir, (st.st_mode & S_IWOTH) ?
		    "every user" : "its group", (unsigned)(st.st_mode & 07777),
		    dir);
		return -1;
	}
	return 0;
}

/*
 * Refuses a directory qscaled writes files in (log_dir, the pid file's)
 * when another local user could make those writes land elsewhere: as
 * sshd's StrictModes, the directory must be owned by root or qscaled's
 * user and writable by its owner only, and every directory above it
 * owned by root or qscaled's user and not writable by everyone unless
 * sticky.  A group-writable directory above is accepted: distributions
 * ship /var/log as root:syslog 0775.  Symbolic links in the path are
 * resolved and the directories they lead to are checked.
 */
int
dir_check_private(const char *what, const char *dir, char *err,
    size_t errlen)
{
	char	*real, *slash;
	int	 rc;

	if ((real = realpath(dir, NULL)) == NULL) {
		snprintf(err, errlen, "%s %s: %s", what, dir, strerror(errno));
		return -1;
	}
	rc = dir_check_self(what, dir, real, err, errlen);
	while (rc == 0 && (slash = strrchr(real, '/')) != NULL) {
		if (slash == real) {
			if (real[1] == '\0')
				break;
			real[1] = '\0';	/* "/" itself */
		} else
			*slash = '\0';
		rc = dir_check_above(what, dir, real, err, errlen);
	}
	free(real);
	return rc;
}

/*
 * Opens a file to read, refusing what is not a regular file before
 * reading: opening a FIFO would wait for a writer, and the process with
 * it.  NULL with err set and errno kept (ENOENT: not there).
 */
FILE *
fopen_regular(const char *path, char *err, size_t errlen)
{
	struct stat	 st;
	FILE		*f;
	int		 fd, saved;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		saved = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(saved));
		if (fd != -1)
			close(fd);
		errno = saved;
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: %s, not a regular file", path,
		    S_ISDIR(st.st_mode) ? "a directory" :
		    S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)" :
		    S_ISSOCK(st.st_mode) ? "a socket" : "a device");
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if ((f = fdopen(fd, "r")) == NULL) {
		saved = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(saved));
		close(fd);
		errno = saved;
	}
	return f;
}

/*
 * Opens a file qscaled writes (a log, the pid file) in a checked
 * directory: never through a symbolic link, never anything but a
 * regular file with no other name (O_NONBLOCK so that a FIFO put there
 * cannot stall the open).  Returns the descriptor, close-on-exec, or -1
 * with err saying why.
 */
int
open_private_file(const char *path, int flags, mode_t mode, char *err,
    size_t errlen)
{
	struct stat	 st;
	int		 fd;

	fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
	if (fd == -1) {
		if (errno == ELOOP)
			snprintf(err, errlen, "%s is a symbolic link: qscaled "
			    "does not follow one there (it could lead to any "
			    "file); remove it", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink > 1) {
		snprintf(err, errlen, "%s is %s: qscaled writes only a "
		    "regular file of its own there; remove it", path,
		    !S_ISREG(st.st_mode) ? "not a regular file" :
		    "a hard link to another file");
		close(fd);
		return -1;
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}
