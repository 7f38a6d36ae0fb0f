#!/usr/bin/env bash
# contrib/qscaled.init driven for real, in a temporary root: a defaults
# file points DAEMON, CONF and PIDFILE into $T.  start, status, reload
# with a good and a broken configuration, start while running, stop, the
# LSB exit codes, a stale pid file, the KILL after the stop timeout, a
# run without /lib/lsb/init-functions and one as an unprivileged user.
. "$(dirname "$0")/lib.sh"

INIT=$QSCALE_TOP/contrib/qscaled.init
CONF=$T/qscale.conf
PIDF=$T/run/qscaled.pid
write_conf "$CONF" gpu cpu
cp "$CONF" "$T/good.conf"
cat >"$T/default" <<EOF
CONF=$CONF
DAEMON=$QSCALED
PIDFILE=$PIDF
STOP_TIMEOUT=10
EOF
export QSCALED_DEFAULTS=$T/default
touch "$T/marker"

# The daemons this test starts, whatever happens: by the pids it saw.
started=""
remember() { [ -n "$1" ] && started="$started $1"; }
cleanup() {
	for p in $started; do
		kill -0 "$p" 2>/dev/null || continue
		kill -CONT "$p"
		pkill -KILL -P "$p"
		kill -KILL "$p"
	done
}
on_exit cleanup

# svc COMMAND: runs the init script; its output in $T/svc.out, exit in rc.
svc() {
	"$INIT" "$@" >"$T/svc.out" 2>&1
	rc=$?
	diag "$INIT $* -> $rc" "$(sed 's/^/  /' "$T/svc.out")"
	return 0
}
daemon_pid() { cat "$PIDF" 2>/dev/null; }
running() { [ "$(child_state gpu)" = running ] && [ "$(child_state cpu)" = running ]; }
said() { grep -q -- "$1" "$T/svc.out"; }
# Ended: no such process, or a zombie that init has yet to reap.
gone() {
	kill -0 "$1" 2>/dev/null || return 0
	[ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" = Z ]
}
reloads() { grep -c 'reloading ' "$T/log/qscaled.log"; }

svc status
check "status before start exits 3 (not running)" test "$rc" -eq 3

svc start
check "start exits 0" test "$rc" -eq 0
pid=$(daemon_pid)
remember "$pid"
check "start wrote the pid file" test -n "$pid"
check "the daemon runs with that pid" kill -0 "$pid"
check "start returned with the daemon ready (control socket up)" \
    test -S "$T/run/control.socket"
check "the daemon runs its worker processes" wait_for 10 running
kids=$(children_of "$pid")

svc status
check "status while running exits 0" test "$rc" -eq 0
check "status names the pid" said "$pid"

# A good change: reload takes it, the same daemon logs it.
sed -i 's/^polling_interval = "1s";/polling_interval = "2s";/' "$CONF"
n=$(reloads)
svc reload
check "reload with a good configuration exits 0" test "$rc" -eq 0
check "the daemon logged the reload" \
    wait_for 5 grep -q 'configuration reloaded' "$T/log/qscaled.log"
check "the daemon keeps its pid across the reload" test "$(daemon_pid)" = "$pid"
check "the daemon was sent one HUP" test "$(reloads)" -eq $((n + 1))

# A broken one: refused before any signal, with qscaled's FILE:LINE.
sed -i 's/^polling_interval = "2s";/polling_interval = "soon";/' "$CONF"
line=$(grep -n '^polling_interval' "$CONF" | cut -d: -f1)
n=$(reloads)
svc reload
check "reload with a broken configuration exits non-zero" test "$rc" -ne 0
check "and prints the error as FILE:LINE" said "^$CONF:$line: polling_interval"
sleep 0.5
check "the daemon keeps running" kill -0 "$pid"
check "with the same pid" test "$(daemon_pid)" = "$pid"
check "and was not signalled" test "$(reloads)" -eq "$n"

svc restart
check "restart with a broken configuration is refused" test "$rc" -ne 0
check "restart prints the error" said "^$CONF:$line:"
check "and leaves the daemon running with the same pid" \
    sh -c "kill -0 $pid && test \"\$(cat '$PIDF')\" = $pid"

svc force-reload
check "force-reload with a broken configuration is refused" test "$rc" -ne 0
check "and the daemon still runs" kill -0 "$pid"
cp "$T/good.conf" "$CONF"

# The daemon and its worker processes share one command line.
procs() { pgrep -fc -- "$QSCALED -c $CONF"; }
before=$(procs)
svc start
check "start while running exits 0" test "$rc" -eq 0
check "and says it already runs" said "already running (pid $pid)"
check "the pid file still names the same daemon" test "$(daemon_pid)" = "$pid"
sleep 0.5
check "no second daemon was started ($before processes, now $(procs))" \
    test "$(procs)" -eq "$before"

svc stop
check "stop exits 0" test "$rc" -eq 0
check "the daemon is gone when stop returns" gone "$pid"
left=""
for k in $kids; do kill -0 "$k" 2>/dev/null && left="$left $k"; done
check "no worker process is left" test -z "$left"
check "the pid file is removed" test ! -e "$PIDF"
check "the daemon logged a clean stop" grep -q 'INFO qscaled: stopped' "$T/log/qscaled.log"

svc status
check "status after stop exits 3" test "$rc" -eq 3
svc stop
check "stop when stopped exits 0" test "$rc" -eq 0

# Pid files that do not name a running qscaled.
sleep 0 & dead=$!
wait "$dead"
mkdir -p "$T/run"
echo "$dead" >"$PIDF"
svc status
check "status with a dead pid in the pid file exits 1" test "$rc" -eq 1
sleep 30 & stranger=$!
on_exit "kill $stranger"
echo "$stranger" >"$PIDF"
svc status
check "status does not take another process for qscaled" test "$rc" -eq 1
svc stop
check "stop leaves that process alone" kill -0 "$stranger"
check "and removes the stale pid file" test ! -e "$PIDF"
kill "$stranger"

# start with a broken configuration: nothing runs.
sed -i 's/^polling_interval = "1s";/polling_interval = "soon";/' "$CONF"
svc start
check "start with a broken configuration exits non-zero" test "$rc" -ne 0
check "and prints the error as FILE:LINE" said "^$CONF:$line:"
check "and starts nothing" test ! -e "$PIDF"
cp "$T/good.conf" "$CONF"

# PIDFILE must be the configuration's pid_file, or status would lie.
QSCALED_DEFAULTS=$T/default.other
sed "s|^PIDFILE=.*|PIDFILE=$T/elsewhere.pid|" "$T/default" >"$QSCALED_DEFAULTS"
export QSCALED_DEFAULTS
svc start
check "start refuses a PIDFILE that is not the configuration's pid_file" \
    test "$rc" -ne 0
check "and says which two differ" said "$T/elsewhere.pid"
check "and starts nothing" test ! -e "$PIDF"
export QSCALED_DEFAULTS=$T/default

# stop's timeout: a daemon that does not react to TERM gets KILL, with
# its worker processes.
cp "$T/default" "$T/default.slow"
sed -i 's/^STOP_TIMEOUT=.*/STOP_TIMEOUT=1/' "$T/default.slow"
export QSCALED_DEFAULTS=$T/default.slow
svc start
pid=$(daemon_pid)
remember "$pid"
wait_for 10 running
kids=$(children_of "$pid")
kill -STOP "$pid"
svc stop
check "stop of a daemon deaf to TERM exits 0" test "$rc" -eq 0
check "it was killed" gone "$pid"
left=""
for k in $kids; do wait_for 5 gone "$k" || left="$left $k"; done
check "its worker processes too" test -z "$left"
check "the pid file is removed" test ! -e "$PIDF"
svc status
check "status after that exits 3" test "$rc" -eq 3
export QSCALED_DEFAULTS=$T/default

# Without /lib/lsb/init-functions, the same exit codes.
export QSCALED_INIT_FUNCTIONS=$T/no-such-file
svc start
check "without init-functions: start exits 0" test "$rc" -eq 0
pid=$(daemon_pid)
remember "$pid"
svc status
check "without init-functions: status exits 0" test "$rc" -eq 0
svc reload
check "without init-functions: reload exits 0" test "$rc" -eq 0
svc stop
check "without init-functions: stop exits 0" test "$rc" -eq 0
check "without init-functions: the daemon is gone" gone "$pid"
svc status
check "without init-functions: status exits 3" test "$rc" -eq 3
unset QSCALED_INIT_FUNCTIONS

svc bogus
check "an unknown command exits 2" test "$rc" -eq 2

# As an unprivileged user: the directories are made for it.
if [ "$(id -u)" -ne 0 ] || ! id nobody >/dev/null 2>&1; then
	ok "# SKIP QSCALED_USER: needs root and a user 'nobody'"
elif ! runuser -u nobody -- test -x "$QSCALED" 2>/dev/null; then
	ok "# SKIP QSCALED_USER: 'nobody' cannot run $QSCALED"
else
	chmod 711 "$T"
	rm -rf "$T/run" "$T/log"
	chown nobody "$CONF"
	echo "QSCALED_USER=nobody" >>"$T/default"
	svc start
	check "QSCALED_USER=nobody: start exits 0" test "$rc" -eq 0
	pid=$(daemon_pid)
	remember "$pid"
	check "the daemon runs as nobody" \
	    test "$(ps -o user= -p "$pid" 2>/dev/null)" = nobody
	check "the pid file's directory was made for it" \
	    test "$(stat -c %U "$T/run")" = nobody
	check "so was the log directory" test "$(stat -c %U "$T/log")" = nobody
	svc stop
	check "QSCALED_USER=nobody: stop exits 0" test "$rc" -eq 0
	check "the daemon is gone" gone "$pid"
	chmod 700 "$T"
fi

outside=$(find /run /var /etc -name '*qscale*' -newer "$T/marker" 2>/dev/null)
check "nothing outside $T was touched ($outside)" test -z "$outside"
check "no secret in the script's output or the logs" \
    no_secret_in "$T/svc.out" "$T/log"
