#!/usr/bin/env bash
# Files a hostile local user or a careless operator can put in qscaled's
# way: a symbolic link in place of the pid file or a log file, a log or
# pid-file directory others may write in, an @include of a FIFO (at -n
# and on a reload, where the daemon must keep running and still stop at
# once on SIGTERM).
. "$(dirname "$0")/lib.sh"

victim="$T/victim"
echo "precious" >"$victim"
victim_intact() { [ "$(cat "$victim")" = precious ]; }

# conf_with FILE LOGDIR PIDFILE: the test configuration, moved.
conf_with() {
	write_conf "$1" gpu
	sed -i -e "s|^log_dir = .*|log_dir = \"$2\";|" \
	    -e "s|^pid_file = .*|pid_file = \"$3\";|" "$1"
}

# refused NAME CONF PATTERN: qscaled -f fails at start, naming why.
refused() {
	_out=$(timeout 10 "$QSCALED" -f -c "$2" 2>&1)
	_rc=$?
	check "$1: qscaled refuses to start (rc $_rc)" test "$_rc" -eq 1
	if printf '%s' "$_out" | grep -qE -- "$3"; then
		ok "$1: the message says why"
	else
		not_ok "$1: the message says why"
		diag "$_out"
	fi
}

# A symbolic link in place of the main log file.
mkdir -m 700 "$T/l1" "$T/r1"
ln -s "$victim" "$T/l1/qscaled.log"
conf_with "$T/c1.conf" "$T/l1" "$T/r1/qscaled.pid"
refused "a symlinked log file" "$T/c1.conf" \
    "$T/l1/qscaled.log is a symbolic link: qscaled does not follow"
check "the file it points to is untouched" victim_intact

# A symbolic link in place of the pid file.
mkdir -m 700 "$T/l2" "$T/r2"
ln -s "$victim" "$T/r2/qscaled.pid"
conf_with "$T/c2.conf" "$T/l2" "$T/r2/qscaled.pid"
refused "a symlinked pid file" "$T/c2.conf" \
    "pid file: $T/r2/qscaled.pid is a symbolic link"
check "the file it points to is untouched" victim_intact

# Directories others may write in, the log's and the pid file's.
for mode in 777 1777 775; do
	mkdir -m 700 "$T/l$mode" "$T/r$mode"
	chmod "$mode" "$T/l$mode"
	conf_with "$T/c$mode.conf" "$T/l$mode" "$T/r$mode/qscaled.pid"
	refused "a log_dir of mode $mode" "$T/c$mode.conf" \
	    "log_dir $T/l$mode is writable by (every user|its group) \\(mode 0?$mode\\): another user could put a link there"
	check "nothing was written in it" test -z "$(ls -A "$T/l$mode")"
done
mkdir -m 700 "$T/l3" "$T/r3"
chmod 770 "$T/r3"
conf_with "$T/c3.conf" "$T/l3" "$T/r3/qscaled.pid"
refused "a group-writable pid file directory" "$T/c3.conf" \
    "pid file directory $T/r3 is writable by its group"
check "no pid file was made in it" test ! -e "$T/r3/qscaled.pid"

mkdir -m 700 "$T/l6" "$T/r6" "$T/s6"
chmod 777 "$T/s6"
conf_with "$T/c6.conf" "$T/l6" "$T/r6/qscaled.pid"
sed -i "s|^control = .*|control = { socket = \"$T/s6/control.socket\"; };|" \
    "$T/c6.conf"
refused "a control socket directory writable by everyone" "$T/c6.conf" \
    "control socket directory $T/s6 is writable by every user"
check "no socket was made in it" test ! -e "$T/s6/control.socket"

# A directory owned by another user, and one above the log_dir that
# anybody may rename things in.
if id nobody >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
	mkdir -m 700 "$T/l4" "$T/r4"
	chown nobody "$T/l4"
	conf_with "$T/c4.conf" "$T/l4" "$T/r4/qscaled.pid"
	refused "a log_dir owned by another user" "$T/c4.conf" \
	    "log_dir $T/l4 is owned by uid $(id -u nobody), neither root nor qscaled's user"
else
	ok "# SKIP a log_dir owned by another user: needs root"
	ok "# SKIP a log_dir owned by another user: needs root"
fi
mkdir -m 777 "$T/open"
mkdir -m 700 "$T/open/log" "$T/r5"
conf_with "$T/c5.conf" "$T/open/log" "$T/r5/qscaled.pid"
refused "a log_dir inside a world-writable, non-sticky directory" \
    "$T/c5.conf" "the directory $T/open above it is writable by every user and not sticky"

# A safe setup starts; a resource's log file that is a symbolic link is
# not followed, and the main log says why.
mkdir -m 700 "$T/log"; mkdir -p "$T/run"
ln -s "$victim" "$T/log/gpu.log"
write_conf "$T/qscale.conf" gpu
start_qscaled "$T/qscale.conf" || { not_ok "qscaled starts"; exit 1; }
ok "qscaled starts with private directories"
check "a symlinked resource log is refused in the main log" \
    wait_for 10 grep -q "log file of gpu: $T/log/gpu.log is a symbolic link" \
    "$T/log/qscaled.log"
check "and the file it points to is untouched" victim_intact
check "the log files are not readable by others" \
    test "$(($(stat -c 0%a "$T/log/qscaled.log") & 07))" -eq 0

# SIGUSR1 after the main log was moved away and a link put in its place
# (as a local user could, were the directory loose): the link is not
# followed, the old file goes on, and says why.
wait_for 10 test "$(child_state gpu)" = running
mv "$T/log/qscaled.log" "$T/log/qscaled.log.1"
ln -s "$victim" "$T/log/qscaled.log"
kill -USR1 "$SUP_PID"
check "SIGUSR1 does not follow a link put in place of the log" \
    wait_for 5 grep -q "reopening the log files: $T/log/qscaled.log is a symbolic link" \
    "$T/log/qscaled.log.1"
check "the file it points to is untouched" victim_intact
rm "$T/log/qscaled.log"
mv "$T/log/qscaled.log.1" "$T/log/qscaled.log"
kill -USR1 "$SUP_PID"
check "a SIGUSR1 that can reopen says so" \
    wait_for 5 grep -q "log files reopened" "$T/log/qscaled.log"

# @include of a FIFO, at -n: refused at once, naming the include.
mkfifo "$T/fifo.conf"
cp "$T/qscale.conf" "$T/fifo-inc.conf"
sed -i '2i @include "fifo.conf"' "$T/fifo-inc.conf"
t0=$(date +%s%N)
out=$(timeout 10 "$QSCALED" -n -c "$T/fifo-inc.conf" 2>&1)
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "-n with an @include of a FIFO exits 1 (rc $rc)" test "$rc" -eq 1
check "at once (${ms} ms)" test "$ms" -lt 3000
check "naming the include's file and line and what is wrong ($out)" \
    sh -c "printf '%s' \"\$1\" | grep -qF \"$T/fifo-inc.conf:2: @include: cannot read $T/fifo.conf: is a FIFO\"" _ "$out"
out=$(timeout 10 "$QSCALED" -n -c "$T/fifo.conf" 2>&1)
rc=$?
check "-n -c on a FIFO exits 1 at once (rc $rc): $out" test "$rc" -eq 1
out=$(timeout 10 "$QSCALED" -n -c /dev/zero 2>&1)
rc=$?
check "-n -c on a device exits 1 (rc $rc): $out" test "$rc" -eq 1

# The same on a reload: the daemon keeps its configuration and workers,
# and stops promptly when told.
wait_for 10 test "$(child_state gpu)" = running
gpu=$(child_pid gpu)
cp "$T/qscale.conf" "$T/good.conf"
sed -i '2i @include "fifo.conf"' "$T/qscale.conf"
kill -HUP "$SUP_PID"
check "HUP with an @include of a FIFO logs FILE:LINE and why" \
    wait_for 5 grep -qF "$T/qscale.conf:2: @include: cannot read $T/fifo.conf: is a FIFO" \
    "$T/log/qscaled.log"
check "and keeps the running configuration" \
    wait_for 5 grep -q "reload failed; keeping the running configuration" \
    "$T/log/qscaled.log"
check "the daemon still answers" ctl status >/dev/null
check "the worker process keeps its pid" test "$(child_pid gpu)" = "$gpu"
pid=$SUP_PID
t0=$(date +%s%N)
kill -TERM "$pid"
gone() { ! kill -0 "$pid" 2>/dev/null; }
wait_for 10 gone
ms=$((($(date +%s%N) - t0) / 1000000))
check "SIGTERM after it stops the daemon promptly (${ms} ms)" test "$ms" -lt 5000
wait "$pid" 2>/dev/null
SUP_PID=""
check "no secret in the logs" no_secret_in "$T/log" "$T/qscaled.out"
