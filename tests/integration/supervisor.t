#!/usr/bin/env bash
# The supervisor as an operator sees it: one worker process per resource,
# respawn after a crash, reload of exactly what changed, a reload with a
# broken file that changes nothing, and a stop that leaves nothing behind.
. "$(dirname "$0")/lib.sh"

write_conf "$T/qscale.conf" gpu cpu spot
start_qscaled "$T/qscale.conf" || { not_ok "qscaled starts"; exit 1; }
ok "qscaled starts and opens its control socket"

all_running() {
	for r in gpu cpu spot; do
		[ "$(child_state "$r")" = running ] || return 1
	done
}
check "three resources start three worker processes" wait_for 10 all_running
check "the supervisor has exactly three children" \
    test "$(children_of "$SUP_PID" | wc -l)" -eq 3
check "the pid file holds the supervisor's pid" \
    test "$(cat "$T/run/qscaled.pid")" = "$SUP_PID"
check "the control socket is mode 0600" \
    test "$(stat -c %a "$T/run/control.socket")" = 600
check "status names each resource and its queue" \
    sh -c "'$QSCALECTL' -s '$T/run/control.socket' status | grep -q '^gpu '"
# The test config points at 127.0.0.1:9, where nothing answers: the
# worker processes must say so, not pretend to scale.
degraded() {
	ctl status -j | jq -en 'input | [.resources[].worker.state] | length == 3 and
	    all(. == "degraded")' >/dev/null
}
check "status says honestly that nothing can be observed" \
    wait_for 20 degraded
check "status says which observation failed and why" \
    sh -c "'$QSCALECTL' -s '$T/run/control.socket' status | grep -q 'observation failed'"
check "and nothing is launched or terminated meanwhile" \
    sh -c "! grep -qE 'launch(ing|ed) [0-9]|terminated i-' '$T/log/qscaled.log'"

# kill -9 of a worker process: a new one within 2 s, and a log line.
old=$(child_pid gpu)
t0=$(date +%s%N)
kill -9 "$old"
respawned() { p=$(child_pid gpu); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$old" ]; }
wait_for 5 respawned
ms=$((($(date +%s%N) - t0) / 1000000))
check "kill -9 of a worker process brings a new pid within 2 s (${ms} ms)" test "$ms" -le 2000
check "the exit is logged with its signal" \
    grep -q "WARN gpu: worker process $old exited: killed by signal 9" "$T/log/qscaled.log"
check "the exit is in the resource's own log too" \
    grep -q "worker process $old exited: killed by signal 9" "$T/log/gpu.log"
check "status counts the restart" \
    test "$(ctl status -j | jq '.resources[] | select(.name=="gpu") | .restarts')" -eq 1

# HUP after editing one resource: only that one gets a new pid.
gpu=$(child_pid gpu); cpu=$(child_pid cpu); spot=$(child_pid spot)
sed -i 's/name = "cpu"; queue = "q-cpu"; instance_type = "t3.micro"/name = "cpu"; queue = "q-cpu"; instance_type = "c5.large"/' "$T/qscale.conf"
kill -HUP "$SUP_PID"
cpu_changed() { p=$(child_pid cpu); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$cpu" ] && [ "$(child_state cpu)" = running ]; }
check "HUP after editing one resource restarts that worker process" wait_for 5 cpu_changed
check "the unchanged resources keep their pids" \
    test "$(child_pid gpu) $(child_pid spot)" = "$gpu $spot"
check "the reload is logged" grep -q "configuration reloaded" "$T/log/qscaled.log"

# HUP with a broken file: every pid stays, the error names its line.
gpu=$(child_pid gpu); cpu=$(child_pid cpu); spot=$(child_pid spot)
cp "$T/qscale.conf" "$T/good.conf"
sed -i 's/^polling_interval = "1s";/polling_interval = "1s"\nbroken here/' "$T/qscale.conf"
kill -HUP "$SUP_PID"
check "HUP with a broken file logs the error with its file and line" \
    wait_for 5 grep -qE "$T/qscale.conf:[0-9]+: " "$T/log/qscaled.log"
check "HUP with a broken file keeps the running configuration" \
    wait_for 5 grep -q "reload failed; keeping the running configuration" "$T/log/qscaled.log"
sleep 1
check "HUP with a broken file keeps every pid" \
    test "$(child_pid gpu) $(child_pid cpu) $(child_pid spot)" = "$gpu $cpu $spot"
out=$(ctl reload 2>&1)
rc=$?
check "qscalectl reload fails on the broken file" test "$rc" -ne 0
check "qscalectl reload names the file and line" \
    sh -c "printf '%s' \"\$1\" | grep -qE 'qscale.conf:[0-9]+: '" _ "$out"

# Removing and adding resources.
cp "$T/good.conf" "$T/qscale.conf"
write_conf "$T/qscale.conf" gpu cpu2
sed -i 's/name = "cpu2"; queue = "q-cpu2"/name = "cpu2"; queue = "q-cpu2"/' "$T/qscale.conf"
gpu=$(child_pid gpu); cpu=$(child_pid cpu); spot=$(child_pid spot)
ctl reload >/dev/null
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(ps -o stat= -p "$1" | cut -c1)" = Z ]; }
check "a removed resource's worker process stops" wait_for 5 gone "$spot"
check "a new resource's worker process starts" wait_for 5 sh -c "[ \"\$('$QSCALECTL' -s '$T/run/control.socket' status -j | jq -r '.resources[]|select(.name==\"cpu2\")|.state')\" = running ]"
check "an unchanged resource keeps its pid through that reload" \
    test "$(child_pid gpu)" = "$gpu"
new_set() { test "$(ctl status -j | jq -r '[.resources[].name]|sort|join(",")')" = "cpu2,gpu"; }
check "status lists exactly the new set once the removed ones stopped" \
    wait_for 10 new_set

# TERM: children first, then the supervisor; nothing left behind.
kids=$(children_of "$SUP_PID")
kill -TERM "$SUP_PID"
sup_gone() { ! kill -0 "$SUP_PID" 2>/dev/null; }
check "TERM stops the supervisor" wait_for 10 sup_gone
wait "$SUP_PID" 2>/dev/null
rc=$?
check "the supervisor exits 0 after TERM (got $rc)" test "$rc" -eq 0
left=""
for k in $kids; do kill -0 "$k" 2>/dev/null && left="$left $k"; done
check "TERM leaves no worker process behind" test -z "$left"
check "the pid file is removed" test ! -e "$T/run/qscaled.pid"
check "the control socket is removed" test ! -e "$T/run/control.socket"
check "the stop is logged" grep -q "INFO qscaled: stopped" "$T/log/qscaled.log"
SUP_PID=""
check "no secret in any log" no_secret_in "$T/log" "$T/qscaled.out"
