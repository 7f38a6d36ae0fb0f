#!/usr/bin/env bash
# qscalectl as an operator uses it: status, tail (of one resource only,
# live), log-level per resource without a restart, stop, and the errors.
. "$(dirname "$0")/lib.sh"

out=$("$QSCALECTL" -s "$T/nobody.socket" status 2>&1)
rc=$?
check "no daemon: qscalectl fails" test "$rc" -ne 0
check "no daemon: one clear line" \
    test "$(printf '%s\n' "$out" | wc -l)" -eq 1
check "no daemon: it names the socket" \
    sh -c "printf '%s' '$out' | grep -q 'no qscaled answers on $T/nobody.socket'"

write_conf "$T/qscale.conf" gpu cpu
start_qscaled "$T/qscale.conf" || { not_ok "qscaled starts"; exit 1; }
running() { [ "$(child_state gpu)" = running ] && [ "$(child_state cpu)" = running ]; }
wait_for 10 running

# tail -f of gpu shows gpu's lines, live, and nothing of cpu's.
ctl log-level debug >/dev/null
ctl tail gpu -f >"$T/tail.out" 2>&1 &
tailpid=$!
on_exit "kill $tailpid"
sleep 3.5
kill "$tailpid"
wait "$tailpid" 2>/dev/null
check "tail -f gpu shows gpu's live lines" grep -q ' DEBUG gpu: poll' "$T/tail.out"
check "tail -f gpu shows no other resource's lines" \
    sh -c "! grep -v ' [A-Z]* gpu: ' '$T/tail.out'"
check "meanwhile cpu was logging too" grep -q ' DEBUG cpu: poll' "$T/log/qscaled.log"
check "tail -n 3 prints exactly 3 lines" \
    test "$(ctl tail gpu -n 3 | wc -l)" -eq 3
check "tail of an unknown resource fails" sh -c "! '$QSCALECTL' -s '$T/run/control.socket' tail nosuch"

# log-level debug gpu: gpu's debug lines appear, no one else's.
ctl log-level info >/dev/null
sleep 1.5
mark=$(wc -l <"$T/log/qscaled.log")
check "log-level debug gpu is accepted" ctl log-level debug gpu
sleep 3
tail -n +"$((mark + 1))" "$T/log/qscaled.log" >"$T/after.log"
check "gpu's debug lines appear at once" grep -q ' DEBUG gpu: ' "$T/after.log"
check "no other resource logs at debug" sh -c "! grep -q ' DEBUG cpu: ' '$T/after.log'"
check "the change needed no restart" \
    test "$(ctl status -j | jq '[.resources[].restarts]|add')" -eq 0
check "status shows gpu's level" \
    test "$(ctl status -j | jq -r '.resources[]|select(.name=="gpu")|.log_level')" = DEBUG
check "an unknown level is refused" sh -c "! '$QSCALECTL' -s '$T/run/control.socket' log-level loud"
check "an unknown resource is refused" sh -c "! '$QSCALECTL' -s '$T/run/control.socket' log-level debug nosuch"

check "status as a table has a header" sh -c "'$QSCALECTL' -s '$T/run/control.socket' status | grep -q '^RESOURCE'"
check "no secret in status" sh -c "'$QSCALECTL' -s '$T/run/control.socket' status -j > '$T/status.json' && ! grep -qE 'SECRET-value' '$T/status.json'"

# -c reads only the control socket: a file half-way through an edit
# still reaches the daemon for status and stop.
sed 's/^polling_interval = "1s";/polling_interval = "soon";/' \
    "$T/qscale.conf" >"$T/bad-value.conf"
out=$("$QSCALECTL" -c "$T/bad-value.conf" status -j 2>"$T/c1.err")
check "-c with a bad value elsewhere: status answers" \
    sh -c "printf '%s' \"\$1\" | jq -e '.ok' >/dev/null" _ "$out"
check "-c with a bad value elsewhere: no note" test ! -s "$T/c1.err"
# cut short mid-resource: a syntax error, the control block intact
head -n 14 "$T/qscale.conf" >"$T/half.conf"
printf '  { name = "gpu"; queue = \n' >>"$T/half.conf"
out=$("$QSCALECTL" -c "$T/half.conf" status -j 2>"$T/c2.err")
check "-c with a syntax error: status answers" \
    sh -c "printf '%s' \"\$1\" | jq -e '.ok' >/dev/null" _ "$out"
check "-c with a syntax error: a note names the error and the socket" \
    grep -q "^qscalectl: note: $T/half.conf:[0-9]*: .*; control.socket $T/run/control.socket found in its text$" "$T/c2.err"
printf 'name = "x";\nresources = (\n' >"$T/nosock.conf"
"$QSCALECTL" -c "$T/nosock.conf" status >/dev/null 2>"$T/c3.err"
check "-c without a control.socket: the default, with a note" \
    grep -q "^qscalectl: note: $T/nosock.conf:[0-9]*: .*; no control.socket found in it: using the default /run/qscale/control.socket$" "$T/c3.err"

# stop through the socket, named by the half-edited file
kids=$(children_of "$SUP_PID")
check "qscalectl -c HALF-EDITED stop is accepted" \
    "$QSCALECTL" -c "$T/half.conf" stop
sup_gone() { ! kill -0 "$SUP_PID" 2>/dev/null; }
check "the daemon stops" wait_for 10 sup_gone
left=""
for k in $kids; do kill -0 "$k" 2>/dev/null && left="$left $k"; done
check "no worker process is left" test -z "$left"
check "no secret in any log" no_secret_in "$T/log" "$T/tail.out"
