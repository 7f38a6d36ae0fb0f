#!/usr/bin/env bash
# qscaled's command line: -n and -nv on good and broken files, the secrecy
# check, the pid file lock, and a real daemonized start and stop.
. "$(dirname "$0")/lib.sh"

write_conf "$T/qscale.conf" gpu cpu
out=$("$QSCALED" -n -c "$T/qscale.conf" 2>&1)
rc=$?
check "-n on a good file exits 0" test "$rc" -eq 0
check "-n on a good file prints 'configuration OK'" test "$out" = "configuration OK"

"$QSCALED" -nv -c "$T/qscale.conf" >"$T/nv.out" 2>&1
rc=$?
check "-nv exits 0" test "$rc" -eq 0
check "-nv prints the configuration back" grep -q 'gpu' "$T/nv.out"
check "-nv ends with 'configuration OK'" test "$(tail -n 1 "$T/nv.out")" = "configuration OK"
check "-nv masks every secret" no_secret_in "$T/nv.out"
check "-nv shows that secrets are set" grep -q '\*\*\*\*\*\*\*\*' "$T/nv.out"

cp "$T/qscale.conf" "$T/broken.conf"
sed -i 's/^polling_interval = "1s";/polling_interval = "soon";/' "$T/broken.conf"
line=$(grep -n '^polling_interval' "$T/broken.conf" | cut -d: -f1)
out=$("$QSCALED" -n -c "$T/broken.conf" 2>&1)
rc=$?
check "-n on a broken file exits 1" test "$rc" -eq 1
check "-n names the file and line ($out)" \
    sh -c "printf '%s' \"\$1\" | grep -q \"^$T/broken.conf:$line: \"" _ "$out"

printf 'resources = (\n' >"$T/syntax.conf"
chmod 600 "$T/syntax.conf"
out=$("$QSCALED" -n -c "$T/syntax.conf" 2>&1)
check "a syntax error names its file and line" \
    sh -c "printf '%s' \"\$1\" | grep -qE \"^$T/syntax.conf:[0-9]+: \"" _ "$out"

chmod 644 "$T/qscale.conf"
out=$("$QSCALED" -n -c "$T/qscale.conf" 2>&1)
rc=$?
check "a readable file with secrets is refused" test "$rc" -eq 1
check "the refusal says chmod 600" sh -c "printf '%s' \"\$1\" | grep -q 'chmod 600'" _ "$out"
chmod 600 "$T/qscale.conf"

out=$("$QSCALED" -n -c "$T/none.conf" 2>&1)
check "a missing file is reported" sh -c "printf '%s' \"\$1\" | grep -q 'none.conf'" _ "$out"
"$QSCALED" -Z >/dev/null 2>&1
check "an unknown flag exits non-zero" test $? -ne 0

# Daemonized: returns once ready, then runs on its own.
"$QSCALED" -c "$T/qscale.conf" >"$T/daemon.out" 2>&1
rc=$?
check "qscaled daemonizes and exits 0 once ready" test "$rc" -eq 0
DPID=$(cat "$T/run/qscaled.pid" 2>/dev/null)
on_exit "kill -9 $DPID; pkill -9 -P $DPID"
check "the daemon runs with the pid in the pid file" kill -0 "$DPID"
check "the daemon left the caller's session" \
    test "$(ps -o sid= -p "$DPID")" != "$(ps -o sid= -p $$)"
running() { [ "$(child_state gpu)" = running ] && [ "$(child_state cpu)" = running ]; }
check "the daemon runs its worker processes" wait_for 10 running

out=$("$QSCALED" -f -c "$T/qscale.conf" 2>&1)
rc=$?
check "a second instance refuses to start" test "$rc" -ne 0
check "and says which pid runs ($out)" sh -c "printf '%s' \"\$1\" | grep -q \"already running (pid $DPID\"" _ "$out"

kids=$(children_of "$DPID")
kill -TERM "$DPID"
gone() { ! kill -0 "$DPID" 2>/dev/null; }
check "TERM stops the daemon" wait_for 10 gone
left=""
for k in $kids; do kill -0 "$k" 2>/dev/null && left="$left $k"; done
check "no worker process is left" test -z "$left"
check "the pid file is removed" test ! -e "$T/run/qscaled.pid"

# A relative path, daemonized: resolved before the daemon leaves the
# directory, so that every reload finds the file.
(cd "$T" && "$QSCALED" -c qscale.conf >"$T/daemon-rel.out" 2>&1)
check "daemonized with a relative -c path" test $? -eq 0
DPID=$(cat "$T/run/qscaled.pid" 2>/dev/null)
on_exit "kill -9 $DPID; pkill -9 -P $DPID"
wait_for 10 running
check "reload of a relative -c path succeeds" ctl reload
ctl status -j >"$T/rel-status.json"
check "status names the file by its absolute path, reloaded once" \
    jq -e --arg f "$T/qscale.conf" '.config == $f and .reloads == 1 and
    .reload_failures == 0' "$T/rel-status.json"
kill -TERM "$DPID"
check "TERM stops it" wait_for 10 gone

# USR1 reopens the log files (logrotate moves them away first).
start_qscaled "$T/qscale.conf"
wait_for 10 running
mv "$T/log/qscaled.log" "$T/log/qscaled.log.1"
kill -USR1 "$SUP_PID"
check "USR1 reopens qscaled.log" wait_for 5 grep -q "log files reopened" "$T/log/qscaled.log"
stop_qscaled
check "no secret in any output" no_secret_in "$T/log" "$T/daemon.out" "$T/qscaled.out"
