#!/usr/bin/env bash
# End to end, the real qscaled on the simulated cloud: what goes wrong.
# An instance that never boots (terminated after max_spin_up_time, its
# console output logged with the secrets masked, its task served by a
# replacement), an agent that dies while it runs a task (its instance
# terminated after vanished_worker_grace, the task re-queued), a ClearML
# outage while instances sit idle, a task enqueued just as an idle timeout
# expires, and one task reported by two workers.
# qscale-test: serial
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2119  # jq in quotes
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

e2e_sim_start || { not_ok "the simulated cloud starts"; exit 1; }

polls_ge() {
	qs_status | jqt 'all(.resources[]; .worker.polls >= $n)' \
	    --argjson n "$1"
}

# A ClearML API call as a user would make it (Basic auth, JSON body).
clearml_call() {	# ENDPOINT JSON
	curl -sf -u "$CLEARML_API_ACCESS_KEY:$CLEARML_API_SECRET_KEY" \
	    -H 'Content-Type: application/json' --data "$2" \
	    "$QSCALE_SIM_CLEARML_URL/$1"
}

clearml_ok() { clearml_call "$@" >/dev/null; }

# ---- 5. An instance that never boots --------------------------------------
scenario_never_boot() {
	e2e_scenario neverboot
	E2E_SPINUP=5s e2e_conf enb 'name = "nb"; queue = "enb";
	    instance_type = "c5.large"; max_instances = 2;' || return 1
	simctl queue enb >/dev/null
	simctl never-boot --next 1 --resource nb >/dev/null
	e2e_start || { not_ok "never-boot: qscaled starts"; return 1; }
	wait_for 10 polls_ge 2
	e2e_enqueue enb 1 2 nb >/dev/null
	e2e_wait 40 "never-boot: the task done, every instance gone" \
	    "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	L=$E2E_DIR/log/nb.log
	NB=$(jq -r '.instances[] | select(.never_boot) | .id' "$S")
	diag "never-booting instance: $NB"
	check "never-boot: one never-booting instance, one replacement" \
	    sj '(.instances | length == 2) and
	    ([.instances[] | select(.never_boot)] | length == 1)' "$S"
	check "never-boot: terminated within [5 s, 6.5 s] of its launch" \
	    sj '.instances[] | select(.never_boot) |
	    (.terminated - .launched) as $d | $d >= 5 and $d <= 6.5' "$S"
	check "never-boot: no replacement while it was still booting" \
	    sj '([.instances[] | select(.never_boot) | .launched][0] + 5) as $t
	    | all(.instances[] | select(.never_boot | not); .launched >= $t)' \
	    "$S"
	check "never-boot: the log tells why (spin-up timeout)" \
	    grep -q "terminated $NB (spin-up timeout): no worker registered" "$L"
	check "never-boot: its console output is in the resource's log" \
	    grep -q "console output of $NB (spin-up timeout), last [0-9]* lines" \
	    "$L"
	check "never-boot: ... logged before the instance was terminated" \
	    sh -c "grep -n 'console output of $NB\|terminated $NB' '$L' |
	    head -n 1 | grep -q 'console output'"
	check "never-boot: the console shows the user data it echoed" \
	    grep -q "console $NB: .*CLEARML_WORKER_ID" "$L"
	check "never-boot: ... with the secret masked (********)" \
	    grep -q "console $NB: .*secret_key.*\*\*\*\*\*\*\*\*" "$L"
	check "never-boot: the agent's ClearML secret is nowhere in the log" \
	    sh -c "! grep -rqF -- '$CLEARML_API_SECRET_KEY' '$E2E_DIR/log'"
	check "never-boot: the task completed on the replacement" \
	    sj --arg nb "$NB" '.tasks[0].status == "completed" and
	    .tasks[0].instance != $nb' "$S"
	m=$(e2e_metric '^qscale_terminations_total[{].*reason="spin_up_timeout"')
	check "never-boot: /metrics counts 1 spin-up timeout ($m)" test "$m" = 1
	m=$(e2e_metric '^qscale_terminations_total[{].*reason="idle"')
	check "never-boot: ... and 1 idle termination ($m)" test "$m" = 1
	e2e_stop
	e2e_no_secret
}

# ---- An agent that dies while it runs a task -----------------------------
# Its worker stops reporting (worker_last_seen 4 s drops it from ClearML's
# list); vanished_worker_grace (4 s) after qscale missed it the instance
# is terminated and the task it held is put back in the queue, where the
# other, idle instance takes it; that one goes after max_idle_time.
worker_gone() {
	sim_stats | jq -en --arg w "$1" 'input | all(.workers[]; . != $w)' >/dev/null
}

scenario_vanished() {
	e2e_scenario vanished
	E2E_IDLE=20s E2E_LAST_SEEN=4s E2E_EXTRA='vanished_worker_grace = "4s";' \
	    e2e_conf evan 'name = "van"; queue = "evan";
	    instance_type = "c5.large"; max_instances = 2;' || return 1
	simctl queue evan >/dev/null
	e2e_start || { not_ok "vanished: qscaled starts"; return 1; }
	wait_for 10 polls_ge 2
	simctl enqueue evan --count 1 --duration 12 --name vlong >/dev/null
	simctl enqueue evan --count 1 --duration 1 --name vshort >/dev/null
	e2e_wait 30 "vanished: the short task done, the long one running" \
	    '([.tasks[] | select(.status == "completed")] | length == 1) and
	    ([.tasks[] | select(.status == "in_progress")] | length == 1) and
	    ([.instances[] | select(.registered != null and
	    .terminated == null)] | length == 2)'
	S=$E2E_DIR/before.json
	e2e_snap "$S"
	TL=$(jq -r '.tasks[] | select(.status == "in_progress") | .id' "$S")
	A=$(jq -r '.tasks[] | select(.status == "in_progress") | .instance' "$S")
	B=$(jq -r --arg a "$A" '.instances[] | select(.id != $a) | .id' "$S")
	WA=$(jq -r --arg a "$A" '.instances[] | select(.id == $a) | .worker' "$S")
	diag "task $TL runs on $A ($WA), whose agent dies; $B is idle"
	check "vanished: the agent of $A dies" \
	    eval 'simctl agent-crash "$A" >/dev/null'
	e2e_wait 20 "vanished: $A is terminated" \
	    ".instances[] | select(.id == \"$A\") | .terminated != null"
	S=$E2E_DIR/vanished.json
	e2e_snap "$S"
	L=$E2E_DIR/log/van.log
	check "vanished: ... within [4 s, 12 s] of its agent's death" \
	    sj --arg a "$A" '.instances[] | select(.id == $a) |
	    (.terminated - .agent_crashed) as $d | $d >= 4 and $d <= 12' "$S"
	check "vanished: the log tells why (vanished agent), and the task" \
	    grep -q "terminated $A (vanished agent): its worker $WA has been missing from ClearML for [0-9]*s, last seen running task $TL" "$L"
	check "vanished: its worker unregistered from ClearML" \
	    wait_for 5 worker_gone "$WA"
	check "vanished: the log tells $TL was re-queued (1 of 2)" \
	    wait_for 5 grep -q "task $TL re-queued (1 of max_requeues 2): its instance $A was terminated after its agent vanished" "$L"
	e2e_wait 10 "vanished: $TL runs again, on $B" \
	    ".tasks[] | select(.id == \"$TL\") | .status == \"in_progress\" and
	    .instance == \"$B\""
	m=$(e2e_metric '^qscale_terminations_total[{].*reason="vanished_agent"')
	check "vanished: /metrics counts 1 vanished agent ($m)" test "$m" = 1
	m=$(e2e_metric '^qscale_requeues_total[{]')
	check "vanished: ... and 1 re-queue ($m)" test "$m" = 1
	e2e_wait 60 "vanished: $TL completes, then $B goes once idle" \
	    "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	check "vanished: $TL completed on $B" \
	    sj --arg t "$TL" --arg b "$B" '.tasks[] | select(.id == $t) |
	    .status == "completed" and .instance == $b' "$S"
	check "vanished: $B went no sooner than 20 s after it went idle" \
	    sj --arg b "$B" '(.tasks | map(.ended) | max) as $e |
	    .instances[] | select(.id == $b) | .terminated - $e >= 20' "$S"
	check "vanished: two instances in all, nothing relaunched" \
	    sj '.instances | length == 2' "$S"
	check "vanished: $TL started twice only" \
	    test "$(grep -c "task-start .*task=$TL" "$SIM_LOG")" -eq 2
	e2e_stop
	e2e_no_secret
}

# ---- 7. A ClearML outage while instances sit idle ---------------------------
both_idle() {
	qs_status | jqt '[.resources[0].worker.instances[] |
	    select(.idle_since > 0)] | length == 2'
}

scenario_outage() {
	e2e_scenario outage
	e2e_conf eout 'name = "cpu"; queue = "eout";
	    instance_type = "c5.large"; max_instances = 2;' || return 1
	simctl queue eout >/dev/null
	e2e_start || { not_ok "outage: qscaled starts"; return 1; }
	wait_for 10 polls_ge 2
	e2e_enqueue eout 2 2 out >/dev/null
	if ! e2e_until 30 '.totals.tasks_done == 2' ||
	    ! wait_for 5 both_idle; then
		not_ok "outage: the two tasks ran, qscaled saw both idle"
		return 1
	fi
	# qscaled counts them idle since then; their idle time (4 s) runs out
	# during the outage
	since=$(qs_status | jq '[.resources[0].worker.instances[] |
	    .idle_since] | max')
	simctl clearml-fault down 8 >/dev/null
	t_end=$(echo "$(date +%s.%N) + 8" | bc)
	check "outage: max_idle_time runs out during the outage ($since)" \
	    sh -c "echo '$since' | grep -Eqx '[1-9][0-9]*' &&
	    [ \"\$(echo '$since / 1000 + 4 < $t_end - 1' | bc)\" -eq 1 ]"
	e2e_wait 30 "outage: every instance terminated in the end" \
	    '.totals.instances_alive == 0 and (.instances | length == 2)'
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	jq -r --argjson e "$t_end" '.instances[] | "\(.id) terminated " +
	    "\((.terminated - $e) * 1000 | round / 1000) s after the outage"' \
	    "$S" | sed 's/^/# /'
	check "outage: nothing terminated while ClearML was down" \
	    sj --argjson e "$t_end" 'all(.instances[]; .terminated >= $e)' "$S"
	check "outage: terminated once it was back (within 3 s)" \
	    sj --argjson e "$t_end" 'all(.instances[]; .terminated <= $e + 3)' \
	    "$S"
	check "outage: the log says nothing was terminated, and why" \
	    grep -q "observation failed (.*workers.*): nothing launched or terminated" \
	    "$E2E_DIR/log/cpu.log"
	check "outage: both were terminated as idle" \
	    test "$(grep -c 'terminated i-[0-9a-f]* (idle)' \
	    "$E2E_DIR/log/cpu.log")" -eq 2
	e2e_stop
	e2e_no_secret
}

# ---- 8. A task enqueued as an idle timeout expires --------------------------
# The idle-since time qscaled holds for the one idle instance (ms), or 0.
idle_since() {
	qs_status | jq -r '[.resources[0].worker.instances[] |
	    select(.idle_since > 0 and (.terminating | not))][0].idle_since
	    // 0'
}

has_idle() { [ "$(idle_since)" != 0 ]; }

# A task of DURATION seconds, made beforehand so that enqueueing it is
# one quick call; prints its id.
new_task() {	# NAME DURATION
	clearml_call tasks.create "{\"name\": \"$1\", \"type\": \"training\",
	    \"comment\": \"sim-duration=$2 sim-exit=0\"}" | jq -r .data.id
}

# Enqueue TASK OFFSET ms after the 3 s idle timeout that began at SINCE
# (ms) expires.
enqueue_at() {	# TASK OFFSET SINCE
	_at=$(echo "($3 + 3000 + $2) / 1000" | bc -l)
	_delay=$(echo "$_at - $(date +%s.%N)" | bc -l)
	[ "$(echo "$_delay > 0" | bc)" -eq 1 ] && sleep "$_delay"
	clearml_call tasks.enqueue "{\"task\": \"$1\",
	    \"queue\": \"$QID\"}" >/dev/null
}

scenario_race() {
	e2e_scenario race
	E2E_IDLE=3s e2e_conf erace 'name = "cpu"; queue = "erace";
	    instance_type = "c5.large"; max_instances = 2;' || return 1
	QID=$(simctl queue erace)
	e2e_start || { not_ok "race: qscaled starts"; return 1; }
	wait_for 10 polls_ge 2
	e2e_enqueue erace 1 1 warm >/dev/null
	n=1
	R=$E2E_DIR/rounds.txt
	: >"$R"
	# The poll that terminates wakes 50 ms after the expiry, looks at
	# the queue and the workers, looks again at the workers, terminates:
	# enqueue before, at and through that moment.
	for off in ${E2E_RACE_OFFSETS:--80 0 30 60 120}; do
		if ! e2e_until 30 "[.tasks[] | select(.status == \"completed\")]
		    | length == $n"; then
			not_ok "race: task $n completes"
			break
		fi
		if ! wait_for 5 has_idle; then
			not_ok "race: an idle instance before round $n"
			break
		fi
		since=$(idle_since)
		tid=$(new_task "race$off" 1)
		enqueue_at "$tid" "$off" "$since"
		echo "$tid $since" >>"$R"
		n=$((n + 1))
	done
	# One more, with EC2 answering DescribeInstances 250 ms late: the task
	# comes after the poll has looked at the queue, and before the fresh
	# look at the workers and the queue that comes just before a
	# termination, which keeps the worker if its agent has taken the task
	# or if the task is still in the queue.
	if e2e_until 30 "[.tasks[] | select(.status == \"completed\")] |
	    length == $n" && wait_for 5 has_idle; then
		keeper=$(sim_stats | jq -r '[.tasks[] | select(.status ==
		    "completed")] | max_by(.ended) | .instance')
		since=$(idle_since)
		tid=$(new_task race-late 1)
		simctl fault '{"action": "DescribeInstances",
		    "latency_ms": 250}' >/dev/null
		enqueue_at "$tid" 150 "$since"
		echo "$tid $since" >>"$R"
		n=$((n + 1))
		e2e_until 10 ".tasks[] | select(.id == \"$tid\") |
		    .status == \"completed\""
		simctl faults-clear >/dev/null
		e2e_snap "$E2E_DIR/late.json"
		check "race: a task that came during the decision kept the worker" \
		    sj --arg t "$tid" --arg k "$keeper" '.tasks[] |
		    select(.id == $t) | .instance == $k' "$E2E_DIR/late.json"

	else
		not_ok "race: an idle instance for the late round"
	fi
	# And when the termination is slow to take effect (EC2 answers
	# TerminateInstances 8 s late, as a real instance shuts down for a
	# while: longer than the agent's 5 s poll), a task enqueued after the
	# fresh look is taken by the agent of the instance being terminated:
	# it is lost with the instance, and must be put back in the queue.
	# Here the agent dies without a word (silent: e2e-faithful has the
	# agent that stops its task on the way down).
	DOOMED=""
	if e2e_until 30 "[.tasks[] | select(.status == \"completed\")] |
	    length == $n" && wait_for 5 has_idle; then
		victim=$(sim_stats | jq -r '[.tasks[] | select(.status ==
		    "completed")] | max_by(.ended) | .instance')
		since=$(idle_since)
		DOOMED=$(new_task race-doomed 15)
		simctl shutdown-mode silent >/dev/null
		simctl fault '{"action": "TerminateInstances",
		    "latency_ms": 8000}' >/dev/null
		# after the fresh look even under load, and 7 s before EC2
		# answers: more than the agent's 5 s poll
		enqueue_at "$DOOMED" 1000 "$since"
		n=$((n + 1))
		e2e_wait 45 "race: the task taken by a dying instance completes" \
		    ".tasks[] | select(.id == \"$DOOMED\") |
		    .status == \"completed\""
		simctl faults-clear >/dev/null
		simctl shutdown-mode graceful >/dev/null
		L=$E2E_DIR/log/cpu.log
		grep -F "$DOOMED" "$L" | sed 's/^/# /'
		check "race: the agent of the dying instance had taken it" \
		    grep -q "task-start instance=$victim task=$DOOMED" "$SIM_LOG"
		check "race: qscaled saw it taken as the instance was terminated" \
		    grep -q "task $DOOMED was taken by worker [^ ]*:$victim as its instance $victim was being terminated (idle)" \
		    "$L"
		check "race: ... and put it back in the queue" \
		    grep -q "task $DOOMED re-queued (1 of max_requeues 2): its instance $victim was terminated as its worker took the task" \
		    "$L"
		e2e_snap "$E2E_DIR/doomed.json"
		check "race: it completed on another instance" \
		    sj --arg t "$DOOMED" --arg v "$victim" '.tasks[] |
		    select(.id == $t) | .instance != $v' "$E2E_DIR/doomed.json"
	else
		not_ok "race: an idle instance for the slow-termination round"
	fi
	e2e_wait 30 "race: every task done, every instance gone" "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	while read -r tid since; do
		jq -r --arg t "$tid" --argjson since "$since" '.tasks[] |
		    select(.id == $t) | "\(.name): enqueued " +
		    "\((.enqueued - $since / 1000 - 3) * 1000 | round) ms " +
		    "after the expiry, ran on \(.instance), waited " +
		    "\(.wait_s) s"' "$S"
	done <"$R" | sed 's/^/# /'
	check "race: every task completed, none failed" \
	    sj "(.tasks | length == $n) and .totals.tasks_done == $n and
	    .totals.tasks_failed == 0" "$S"
	first=$(head -n 1 "$R" | cut -d' ' -f1)
	check "race: a task enqueued just before the expiry kept the worker" \
	    sj --arg t "$first" '(.tasks[] | select(.name == "warm-1") |
	    .instance) as $i | .tasks[] | select(.id == $t) |
	    .instance == $i' "$S"
	# A task enqueued in the moment between the fresh look and the
	# TerminateInstances call can be taken by the dying instance's agent
	# (ClearML cannot stop an agent from pulling): qscale must then see
	# it and put it back; any other second start is a task killed.
	# (the cloud's log holds the earlier scenarios too: this one's tasks)
	twice=$(grep -o 'task-start .*task=[0-9a-f]*' "$SIM_LOG" |
	    sed 's/.*task=//' | grep -v "^${DOOMED:-none}\$" |
	    grep -Fx -f <(jq -r '.tasks[].id' "$S") | sort | uniq -d)
	unexplained=""
	for t in $twice; do
		diag "task $t started twice:" "$(grep -F "$t" \
		    "$E2E_DIR/log/cpu.log" | grep -v DEBUG)"
		grep -q "task $t was taken by worker .* as its instance .* was being terminated" \
		    "$E2E_DIR/log/cpu.log" &&
		    grep -q "task $t re-queued (1 of max_requeues 2)" \
		    "$E2E_DIR/log/cpu.log" || unexplained="$unexplained $t"
	done
	check "race: no other task started twice but one qscale saw taken and re-queued${unexplained:+ (not:$unexplained)}" \
	    test -z "$unexplained"
	check "race: no instance terminated before its task ended" \
	    sj '. as $s | all(.tasks[]; . as $t | $s.instances[] |
	    select(.id == $t.instance) | .terminated >= $t.ended)' "$S"
	grep 'not terminating' "$E2E_DIR/log/cpu.log" | sed 's/^/# /'
	e2e_stop
	e2e_no_secret
}

# ---- 9. One task reported by two workers ----------------------------------
scenario_duplicate() {
	e2e_scenario duplicate
	e2e_conf edup 'name = "dup"; queue = "edup";
	    instance_type = "c5.large"; max_instances = 1;' || return 1
	QID=$(simctl queue edup)
	e2e_start || { not_ok "duplicate: qscaled starts"; return 1; }
	TASK=$(e2e_enqueue edup 1 12 dup)
	if ! e2e_until 30 ".tasks[0].status == \"in_progress\""; then
		not_ok "duplicate: the task runs"
		return 1
	fi
	REAL=$(sim_stats | jq -r '.tasks[0].worker')
	FAKE=edup:dup:c5.large:i-0fa4e0000000000aa
	check "duplicate: a second worker registers through the ClearML API" \
	    clearml_ok workers.register \
	    "{\"worker\": \"$FAKE\", \"queues\": [\"$QID\"]}"
	check "duplicate: ... and reports the same task" \
	    clearml_ok workers.status_report "{\"worker\": \"$FAKE\",
	    \"timestamp\": $(date +%s)000, \"queues\": [\"$QID\"],
	    \"task\": \"$TASK\", \"queue\": \"$QID\"}"
	QL=$E2E_DIR/log/qscaled.log
	check "duplicate: a warning comes" \
	    wait_for 5 grep -q 'duplicate task' "$QL"
	sleep 6	# six more polls, six more snapshots of the same two workers
	grep 'duplicate task' "$QL" | sed 's/^/# /'
	check "duplicate: exactly one warning, however many polls pass" \
	    test "$(grep -c 'duplicate task' "$QL")" -eq 1
	check "duplicate: the warning names the task and both workers" \
	    sh -c "grep 'duplicate task' '$QL' | grep -F '$TASK' |
	    grep -F '$REAL' | grep -qF '$FAKE'"
	e2e_wait 40 "duplicate: the task done, the instance gone" "$E2E_DONE"
	e2e_stats_diag
	check "duplicate: still one warning at the end" \
	    test "$(grep -c 'duplicate task' "$QL")" -eq 1
	e2e_stop
	e2e_no_secret
}

scenario_never_boot
scenario_outage
scenario_race
scenario_duplicate
# An agent that dies is missed once it has not reported for
# worker_last_seen: with clearml-agent's 30 s reports that is half a
# minute or more of waiting, so this one runs on a cloud whose agents
# report every 2 s (their 5 s poll stays).
stop_cloudsim
e2e_sim_start --report-interval 2 || { not_ok "the simulated cloud starts again"; exit 1; }
scenario_vanished
