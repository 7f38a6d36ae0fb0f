#!/usr/bin/env bash
# End to end, the real qscaled on the simulated cloud, whose server and
# agents behave as ClearML's: an agent stopped with its instance marks
# its task stopped ("user abort") and unregisters, polls every 5 s and
# reports every 30 s.  (e2e-spot interrupts instances whose agents stop
# their tasks so; e2e-faithful-bulk has what does not measure time.)  A
# scale-down race with such an agent: the task goes back to the queue
# once and completes elsewhere.  A task a person stops on a healthy
# instance stays stopped, and the instance goes once idle for
# max_idle_time.
# qscale-test: serial
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2119  # jq in quotes
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

e2e_sim_start || { not_ok "the simulated cloud starts"; exit 1; }

# The instance a running task is on, once its agent has reported it.
running_on() {	# TASK
	sim_stats | jq -r --arg t "$1" '.tasks[] | select(.id == $t and
	    .status == "in_progress" and .instance != null) | .instance'
}
is_running() { [ -n "$(running_on "$1")" ]; }

# The checks of a loss: started on the victim and once more
# elsewhere, put back once by qscale, completed.
lost_and_back() {	# NAME TASK VICTIM LOG
	_f=$E2E_DIR/after-$1.json
	e2e_snap "$_f"
	check "$1: the victim's agent went down gracefully with the task" \
	    grep -q "agent-shutdown instance=$3 mode=graceful.*task=$2" \
	    "$SIM_LOG"
	check "$1: qscaled put the task back once" \
	    test "$(grep -c "task $2 re-queued (" "$4")" -eq 1
	check "$1: ... because its agent stopped it (or was still at it)" \
	    grep -Eq "task $2 of lost instance $3 goes back to its queue: (its agent stopped it as|it was running when) its instance went" \
	    "$4"
	check "$1: started twice in all (the victim, then another)" \
	    test "$(e2e_starts "$2")" -eq 2
	check "$1: it completed on another instance" \
	    sj --arg t "$2" --arg v "$3" '.tasks[] | select(.id == $t) |
	    .status == "completed" and .instance != $v' "$_f"
}

# ---- A scale-down race, the agent stopping the task it just took ----------
idle_since() {
	qs_status | jq -r '[.resources[0].worker.instances[] |
	    select(.idle_since > 0 and (.terminating | not))][0].idle_since
	    // 0'
}
has_idle() { [ "$(idle_since)" != 0 ]; }

scenario_race() {
	e2e_scenario race
	E2E_IDLE=3s e2e_conf efrace 'name = "cpu"; queue = "ef-race";
	    instance_type = "c5.large"; max_instances = 2;' || return 1
	QID=$(simctl queue ef-race)
	e2e_start || { not_ok "race: qscaled starts"; return 1; }
	e2e_enqueue ef-race 1 1 warm >/dev/null
	if ! e2e_until 40 '[.tasks[] | select(.status == "completed")] |
	    length == 1' || ! wait_for 10 has_idle; then
		not_ok "race: an idle instance"
		return 1
	fi
	victim=$(sim_stats | jq -r '.tasks[0].instance')
	since=$(idle_since)
	tid=$(e2e_clearml tasks.create '{"name": "race-doomed", "type":
	    "training", "comment": "sim-duration=15 sim-exit=0"}' |
	    jq -r .data.id)
	# EC2 takes 8 s to answer the TerminateInstances of the idle
	# instance (a real one runs on while it shuts down): more than the
	# agent's 5 s poll, so its agent takes the task enqueued just after
	# qscale's last look, and stops it when the instance goes (the task
	# runs 15 s: longer than that).
	simctl fault '{"action": "TerminateInstances", "latency_ms": 8000}' \
	    >/dev/null
	# 1 s after the expiry: after qscale's fresh look, even on a loaded
	# machine, and 7 s before EC2 answers, more than the agent's poll
	at=$(echo "($since + 3000 + 1000) / 1000" | bc -l)
	delay=$(echo "$at - $(date +%s.%N)" | bc -l)
	[ "$(echo "$delay > 0" | bc)" -eq 1 ] && sleep "$delay"
	e2e_clearml tasks.enqueue "{\"task\": \"$tid\", \"queue\": \"$QID\"}" \
	    >/dev/null
	e2e_wait 60 "race: the task taken by the dying instance completes" \
	    ".tasks[] | select(.id == \"$tid\") | .status == \"completed\""
	simctl faults-clear >/dev/null
	L=$E2E_DIR/log/cpu.log
	grep -F "$tid" "$L" | grep -v DEBUG | sed 's/^/# /'
	check "race: the dying instance's agent had taken it" \
	    grep -q "task-start instance=$victim task=$tid" "$SIM_LOG"
	lost_and_back race "$tid" "$victim" "$L"
	e2e_wait 30 "race: every instance gone at the end" "$E2E_DONE"
	e2e_stop
	e2e_no_secret
}

# ---- A person stops a task on a healthy instance --------------------------
scenario_person() {
	e2e_scenario person
	E2E_IDLE=4s e2e_conf efperson 'name = "cpu"; queue = "ef-person";
	    instance_type = "c5.large"; max_instances = 1;' || return 1
	simctl queue ef-person >/dev/null
	e2e_start || { not_ok "person: qscaled starts"; return 1; }
	tid=$(e2e_enqueue ef-person 1 120 person)
	if ! wait_for 40 is_running "$tid"; then
		not_ok "person: the task runs"
		return 1
	fi
	inst=$(running_on "$tid")
	e2e_clearml tasks.stop "{\"task\": \"$tid\"}" >/dev/null
	e2e_wait 30 "person: the instance goes, idle, after the stop" \
	    '.totals.instances_alive == 0'
	sleep 2		# a poll after the instance went
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	L=$E2E_DIR/log/cpu.log
	grep -F "$tid" "$L" | grep -v DEBUG | sed 's/^/# /'
	check "person: the task stays stopped" \
	    sj --arg t "$tid" '.tasks[] | select(.id == $t) |
	    .status == "stopped"' "$S"
	check "person: never put back in the queue" \
	    sh -c "! grep -q 'task $tid re-queued' '$L'"
	check "person: started once" test "$(e2e_starts "$tid")" -eq 1
	check "person: its instance was terminated as idle" \
	    grep -q "terminated $inst (idle)" "$L"
	idle=$(jq -r --arg t "$tid" --arg i "$inst" '(.instances[] |
	    select(.id == $i) | .terminated) - (.tasks[] |
	    select(.id == $t) | .ended)' "$S")
	diag "terminated ${idle} s after the task was stopped (max_idle_time 4 s, polls 1 s)"
	check "person: ... on time: within [4, 5.5] s of the stop" \
	    test "$(echo "$idle >= 4 && $idle <= 5.5" | bc)" -eq 1
	e2e_stop
	e2e_no_secret
}

scenario_race
scenario_person
