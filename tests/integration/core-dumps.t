#!/usr/bin/env bash
# A core dump holds every secret in clear: no process of qscale may
# dump core (PR_SET_DUMPABLE 0, RLIMIT_CORE 0) unless qscaled is started
# with --allow-core-dumps.  Read from outside, as an operator would: the
# core limit in /proc/PID/limits, and the owner of /proc/PID/status,
# which the kernel makes root for a process that is not dumpable (so the
# daemon runs as an unprivileged user for that part).
. "$(dirname "$0")/lib.sh"

core_limit() { awk '/^Max core file size/ { print $5 " " $6 }' "/proc/$1/limits"; }
all_pids() { echo "$SUP_PID"; children_of "$SUP_PID"; }
two_running() {
	[ "$(child_state gpu)" = running ] && [ "$(child_state cpu)" = running ]
}

# As root: the core limit of every process, and qscalectl's.
write_conf "$T/qscale.conf" gpu cpu
(ulimit -c unlimited && start_qscaled "$T/qscale.conf") ||
    { not_ok "qscaled starts"; exit 1; }
SUP_PID=$(cat "$T/run/qscaled.pid")
on_exit "stop_qscaled"
check "two worker processes run" wait_for 10 two_running
for p in $(all_pids); do
	check "process $p: no core file, however large the limit it was given" \
	    test "$(core_limit "$p")" = "0 0"
done
"$QSCALECTL" -s "$T/run/control.socket" tail gpu -f >/dev/null 2>&1 &
ctlpid=$!
on_exit "kill $ctlpid"
sleep 0.5
check "qscalectl: no core file either" test "$(core_limit "$ctlpid")" = "0 0"
kill "$ctlpid"
stop_qscaled

# The dumpable flag, seen as the owner of /proc/PID/status.
if [ "$(id -u)" -ne 0 ] || ! id nobody >/dev/null 2>&1; then
	ok "# SKIP dumpable flag: needs root and a user 'nobody'"
	exit 0
fi
if ! runuser -u nobody -- test -x "$QSCALED" 2>/dev/null; then
	ok "# SKIP dumpable flag: 'nobody' cannot run $QSCALED"
	exit 0
fi
nobody=$(id -u nobody)
chmod 711 "$T"
on_exit "chmod 700 '$T'"
mkdir -m 700 "$T/nb"
write_conf "$T/nb/qscale.conf" gpu cpu
sed -i "s|$T/|$T/nb/|g" "$T/nb/qscale.conf"
chown -R nobody "$T/nb"
proc_owner() { stat -c %u "/proc/$1/status"; }

# start_as_nobody ARGS...: SUP_PID is the daemon's pid.
start_as_nobody() {
	runuser -u nobody -- sh -c 'ulimit -c unlimited && exec "$@"' _ \
	    "$QSCALED" -f -c "$T/nb/qscale.conf" "$@" >>"$T/nb.out" 2>&1 &
	wait_for 10 test -s "$T/nb/run/qscaled.pid" || return 1
	SUP_PID=$(cat "$T/nb/run/qscaled.pid")
	wait_for 10 test "$(children_of "$SUP_PID" | wc -l)" -eq 2
}
nb_ctl() { runuser -u nobody -- "$QSCALECTL" -s "$T/nb/run/control.socket" "$@"; }

start_as_nobody || { not_ok "qscaled starts as nobody"; exit 1; }
ok "qscaled starts as nobody"
for p in $(all_pids); do
	check "process $p (uid $(awk '/^Uid:/ { print $2 }' "/proc/$p/status")) is not dumpable" \
	    test "$(proc_owner "$p")" -eq 0
done
nb_ctl tail gpu -f >/dev/null 2>&1 &
sleep 0.5
ctlpid=$(pgrep -u nobody -f "qscalectl -s $T/nb/run/control.socket tail" | head -n 1)
check "qscalectl run by nobody is not dumpable" \
    test -n "$ctlpid" -a "$(proc_owner "${ctlpid:-1}")" -eq 0
[ -n "$ctlpid" ] && kill "$ctlpid"
stop_qscaled

# The debug option gives cores back, so the checks above can fail.
rm -f "$T/nb/run/qscaled.pid"
start_as_nobody --allow-core-dumps ||
    { not_ok "qscaled --allow-core-dumps starts"; exit 1; }
ok "qscaled --allow-core-dumps starts"
for p in $(all_pids); do
	check "with --allow-core-dumps, process $p is dumpable" \
	    test "$(proc_owner "$p")" -eq "$nobody"
	check "with --allow-core-dumps, process $p keeps its core limit" \
	    test "$(core_limit "$p")" = "unlimited unlimited"
done
stop_qscaled
check "no secret in the logs" no_secret_in "$T/nb/log" "$T/nb.out"
