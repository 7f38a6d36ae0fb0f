#!/usr/bin/env bash
# End to end, the real qscaled on the simulated cloud: crash safety.
# kill -9 of a worker process mid-burst, then kill -9 of the whole daemon
# and a restart: nothing launched twice, nothing leaked, busy instances
# untouched, idle ones terminated on time (a restart never shortens idle
# time), the instances found again logged as adopted.
# qscale-test: serial
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2119  # jq in quotes
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

e2e_sim_start || { not_ok "the simulated cloud starts"; exit 1; }

polls_ge() {
	qs_status | jqt 'all(.resources[]; .worker.polls >= $n)' \
	    --argjson n "$1"
}
child() { qs_status | jq -r '.resources[0].pid // 0'; }
child_is_new() {	# OLD_PID
	_c=$(child)
	[ "$_c" != 0 ] && [ "$_c" != "$1" ] && polls_ge 1
}

# For each instance: its last task's end (or null), its termination.
ENDS='. as $s | [.instances[] | . as $i | {id, terminated,
    end: ([$s.tasks[] | select(.instance == $i.id) | .ended] | max)}]'

ENDS_DIAG="$ENDS"' | .[] | "\(.id): terminated " +
    "\((.terminated - .end) * 1000 | round / 1000) s after its last task, " +
    "\((.terminated - $r) * 1000 | round / 1000) s after the first poll " +
    "after the restart"'

# When the first poll after time $1 read the instances: the first
# DescribeInstances to reach the front after it (the poll starts a few
# ms before).
first_poll_after() {
	jq --argjson t "$1" '[.totals.ec2_call_log[] | select(.action ==
	    "DescribeInstances" and .received > $t) | .received] | min' "$2"
}

no_task_started_twice() {
	! grep -o 'task-start .*task=[0-9a-f]*' "$SIM_LOG" |
	    sed 's/.*task=//' | sort | uniq -d | grep -q .
}

# ---- 6a. kill -9 of a worker process mid-burst ------------------------------
scenario_kill_worker() {
	e2e_scenario killworker
	e2e_conf ekw 'name = "cpu"; queue = "ekw";
	    instance_type = "c5.large"; max_instances = 3;' || return 1
	simctl queue ekw >/dev/null
	e2e_start || { not_ok "kill worker: qscaled starts"; return 1; }
	wait_for 10 polls_ge 2
	e2e_enqueue ekw 6 4 kw >/dev/null
	# the instances are launched, not yet registered: kill the worker
	# process that launched them
	e2e_until 10 '.totals.launches.instances == 3'
	old=$(child)
	kill -KILL "$old"
	diag "killed worker process $old with 3 instances booting"
	if ! wait_for 15 child_is_new "$old"; then
		not_ok "kill worker: the supervisor respawns the worker process"
		return 1
	fi
	ok "kill worker: the supervisor respawns the worker process"
	new=$(child)
	e2e_note_children
	QL=$E2E_DIR/log/qscaled.log
	L=$E2E_DIR/log/cpu.log
	check "kill worker: the supervisor logs the crash" \
	    grep -q "worker process $old exited: killed by signal 9" "$QL"
	R=$(e2e_log_times "$QL" "cpu: started worker process $new" | tail -n 1)
	e2e_wait 60 "kill worker: 6 tasks done, every instance terminated" \
	    "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	check "kill worker: nothing launched twice (3 instances, 1 call)" \
	    sj '.totals.launches.instances == 3 and
	    .totals.launches.calls == 1 and .totals.max_alive.cpu == 3' "$S"
	n=0
	for id in $(jq -r '.instances[].id' "$S"); do
		grep -q "adopted instance $id" "$L" && n=$((n + 1))
	done
	check "kill worker: the new process adopted the 3 (logged)" \
	    test "$n" -eq 3
	check "kill worker: every task completed once, none failed" \
	    sj '.totals.tasks_done == 6 and .totals.tasks_failed == 0' "$S"
	check "kill worker: no task started twice" no_task_started_twice
	P=$(first_poll_after "$R" "$S")
	jq -r --argjson r "$P" "$ENDS_DIAG" "$S" | sed 's/^/# /'
	check "kill worker: idle precision: each within [4 s, 5 s] of idle" \
	    sj "$ENDS | all(.terminated - .end >= 4 and
	    .terminated - .end <= 5)" "$S"
	check "kill worker: none terminated within max_idle_time of its first poll" \
	    sj --argjson r "$P" "$ENDS | all(.terminated >= \$r + 4)" "$S"
	e2e_stop
	e2e_no_secret
}

# ---- 6b. kill -9 of the whole daemon, then a restart ------------------------
scenario_kill_daemon() {
	e2e_scenario killdaemon
	E2E_IDLE=5s e2e_conf ekd 'name = "cpu"; queue = "ekd";
	    instance_type = "c5.large"; max_instances = 3;' || return 1
	simctl queue ekd >/dev/null
	e2e_start || { not_ok "kill daemon: qscaled starts"; return 1; }
	wait_for 10 polls_ge 2
	e2e_enqueue ekd 2 2 kd-short >/dev/null
	LONG=$(e2e_enqueue ekd 1 14 kd-long)
	if ! e2e_until 30 '.totals.tasks_done == 2'; then
		not_ok "kill daemon: the short tasks ran"
		return 1
	fi
	sleep 1.5	# two instances idle for a while, one busy
	pids="$QPID $(pgrep -P "$QPID" | tr '\n' ' ')"
	e2e_kill9
	K=$(date +%s.%N)
	gone=1
	for p in $pids; do kill -0 "$p" 2>/dev/null && gone=0; done
	check "kill daemon: supervisor and worker processes all killed" \
	    test "$gone" -eq 1
	diag "killed $pids (kill -9); restarting in 2 s"
	e2e_snap "$E2E_DIR/killed.json"
	check "kill daemon: the instances outlive the daemon (3 alive)" \
	    sj '.totals.instances_alive == 3' "$E2E_DIR/killed.json"
	sleep 2
	R=$(date +%s.%N)
	e2e_start || { not_ok "kill daemon: qscaled restarts"; return 1; }
	ok "kill daemon: qscaled restarts over the pid file of the killed one"
	e2e_wait 60 "kill daemon: every task done, every instance terminated" \
	    "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	L=$E2E_DIR/log/cpu.log
	check "kill daemon: nothing launched twice (3 instances, 1 call)" \
	    sj '.totals.launches.instances == 3 and
	    .totals.launches.calls == 1' "$S"
	n=0
	for id in $(jq -r '.instances[].id' "$S"); do
		grep -q "adopted instance $id" "$L" && n=$((n + 1))
	done
	check "kill daemon: the restarted daemon adopted the 3 (logged)" \
	    test "$n" -eq 3
	check "kill daemon: every task completed, none failed" \
	    sj '.totals.tasks_done == 3 and .totals.tasks_failed == 0' "$S"
	check "kill daemon: no task started twice" no_task_started_twice
	check "kill daemon: the busy instance ran its task to the end" \
	    sj --arg t "$LONG" '. as $s | .tasks[] | select(.id == $t) |
	    . as $t | .status == "completed" and ($s.instances[] |
	    select(.id == $t.instance) | .terminated >= $t.ended)' "$S"
	P=$(first_poll_after "$R" "$S")
	jq -r --argjson r "$P" "$ENDS_DIAG" "$S" | sed 's/^/# /'
	# idle before the kill: never terminated within max_idle_time of the
	# restart's first poll, and then within a poll
	IDLE_AT_KILL="$ENDS | map(select(.end < $K))"
	check "kill daemon: two instances were idle when it was killed" \
	    sj "$IDLE_AT_KILL | length == 2" "$S"
	check "kill daemon: idle ones not terminated within 5 s of its first poll" \
	    sj --argjson r "$P" "$IDLE_AT_KILL | all(.terminated >= \$r + 5)" \
	    "$S"
	check "kill daemon: ... and terminated within a poll after that" \
	    sj --argjson r "$P" "$IDLE_AT_KILL | all(.terminated <= \$r + 6)" \
	    "$S"
	check "kill daemon: the busy one terminated within [5 s, 6 s] of idle" \
	    sj "$ENDS | map(select(.end >= $K)) | length == 1 and
	    all(.terminated - .end >= 5 and .terminated - .end <= 6)" "$S"
	e2e_stop
	e2e_no_secret
}

scenario_kill_worker
scenario_kill_daemon
