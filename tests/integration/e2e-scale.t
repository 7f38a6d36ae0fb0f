#!/usr/bin/env bash
# End to end, the real qscaled on the simulated cloud: scaling up and
# down.  A burst larger than max_instances (with the bars of DESIGN 9:
# reaction, no overshoot, idle precision), two resources on two queues at
# once, subnet failover within one poll, and 30% of EC2 calls throttled.
# qscale-test: serial
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2119  # jq in quotes
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

e2e_sim_start || { not_ok "the simulated cloud starts"; exit 1; }

# jq: when the first RunInstances reached the front.
FIRST_RUN='[.totals.ec2_call_log[] | select(.action == "RunInstances") |
    .received] | min'

# jq, with $r: how long after the first task of its queue the
# RunInstances that launched resource $r's first instance reached the
# front (the call the front answered right after registering it).
REACTION='. as $s | ([.instances[] | select(.resource == $r) | .launched] |
    min) as $l | ([$s.totals.ec2_call_log[] | select(.action ==
    "RunInstances" and .status == 200 and .time >= $l)] | min_by(.time) |
    .received) - ([$s.tasks[] | select(.queue == $q) | .enqueued] | min)'

# Idle precision: each instance's termination minus its last task's end.
IDLE_GAPS='. as $s | [.instances[] | . as $i |
    {id, gap: (.terminated - ([$s.tasks[] | select(.instance == $i.id) |
    .ended] | max))}]'

# QUEUE LOG: the last console line of the counts shows nothing left.
last_counts_empty() {
	test "$(grep -o "queue $1: .*" "$2" | tail -n 1)" = \
	    "queue $1: 0 pending; workers: 0 idle, 0 busy, 0 booting"
}

polled_twice() { qs_status | jqt '.resources[0].worker.polls >= 2'; }

# ---- 1. A burst larger than max_instances ---------------------------------
scenario_burst() {
	e2e_scenario burst
	e2e_conf eburst 'name = "cpu"; queue = "eb-cpu";
	    instance_type = "c5.large"; max_instances = 3;' || return 1
	simctl queue eb-cpu >/dev/null
	e2e_start || { not_ok "burst: qscaled starts"; return 1; }
	# qscaled has polled the empty queue: the enqueue lands between polls
	wait_for 10 polled_twice
	e2e_enqueue eb-cpu 7 3 burst >/dev/null
	e2e_wait 60 "burst: 7 tasks on 3 instances all done, all terminated" \
	    "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	check "burst: exactly max_instances (3) launched" \
	    sj '.totals.launches.instances == 3' "$S"
	check "burst: the 3 went out in one RunInstances call" \
	    sj '.totals.launches.calls == 1' "$S"
	check "burst: never more than 3 alive (max_alive)" \
	    sj '.totals.max_alive.cpu == 3' "$S"
	check "burst: 7 tasks completed, none failed" \
	    sj '.totals.tasks_done == 7 and .totals.tasks_failed == 0' "$S"
	check "burst: every instance terminated" \
	    sj '(.instances | length == 3) and
	    all(.instances[]; .terminated != null)' "$S"
	react=$(jq -r "($FIRST_RUN) - ([.tasks[].enqueued] | min)" "$S")
	diag "reaction: first RunInstances ${react} s after the first enqueue"
	check "burst: first RunInstances within polling_interval + 0.5 s" \
	    sj "($FIRST_RUN) - ([.tasks[].enqueued] | min) <= 1.5" "$S"
	check "burst: no overshoot: launches never ran ahead of the demand" \
	    sj --argjson qmap '{"cpu": "eb-cpu"}' "$E2E_NO_OVERSHOOT" "$S"
	jq -r "$IDLE_GAPS | .[] | \"idle: \(.id) terminated \(.gap * 1000 |
	    round / 1000) s after its last task ended\"" "$S" | sed 's/^/# /'
	check "burst: idle precision: each terminated within [4 s, 5 s] of idle" \
	    sj "$IDLE_GAPS | all(.gap >= 4 and .gap <= 5)" "$S"
	check "burst: the log tells of 3 idle terminations" \
	    test "$(grep -c 'terminated i-[0-9a-f]* (idle)' \
	    "$E2E_DIR/log/cpu.log")" -eq 3
	# the console line of each poll whose counts changed, as the app's;
	# the poll after the last termination shows no workers
	wait_for 5 last_counts_empty eb-cpu "$E2E_DIR/log/cpu.log"
	grep -o 'queue eb-cpu: .*' "$E2E_DIR/log/cpu.log" >"$E2E_DIR/counts"
	sed 's/^/# /' "$E2E_DIR/counts" | head -n 20
	check "burst: the log shows the queue and the workers at info" \
	    grep -q '^queue eb-cpu: 7 pending; workers: 0 idle, 0 busy, 3 booting$' \
	    "$E2E_DIR/counts"
	check "burst: ... down to an empty queue and no workers" \
	    last_counts_empty eb-cpu "$E2E_DIR/log/cpu.log"
	check "burst: ... a line only when a count changed" \
	    test "$(uniq "$E2E_DIR/counts" | wc -l)" -eq \
	    "$(wc -l <"$E2E_DIR/counts")"
	e2e_stop
	e2e_no_secret
}

# ---- 2. Two resources on two queues at once ---------------------------------
scenario_two() {
	e2e_scenario two
	e2e_conf etwo \
	    'name = "cpu"; queue = "et-cpu"; instance_type = "c5.large";
	     max_instances = 3;' \
	    'name = "gpu"; queue = "et-gpu"; instance_type = "g4dn.xlarge";
	     max_instances = 2;' || return 1
	simctl queue et-cpu >/dev/null && simctl queue et-gpu >/dev/null
	e2e_start || { not_ok "two: qscaled starts"; return 1; }
	sleep 1
	e2e_enqueue et-cpu 2 3 two-cpu >/dev/null &
	_p=$!
	e2e_enqueue et-gpu 5 2 two-gpu >/dev/null
	wait "$_p"
	e2e_wait 60 "two: every task of both queues done, all terminated" \
	    "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	n() { jq -r --arg r "$1" '[.instances[] | select(.resource == $r)] |
	    length' "$S"; }
	diag "launched: cpu $(n cpu), gpu $(n gpu)"
	check "two: cpu launched its demand, 2 (under its cap of 3)" \
	    test "$(n cpu)" -eq 2
	check "two: gpu launched its cap, 2 (for 5 tasks)" test "$(n gpu)" -eq 2
	check "two: max_alive per resource within each cap and demand" \
	    sj '.totals.max_alive == {"cpu": 2, "gpu": 2}' "$S"
	check "two: no overshoot on either resource" \
	    sj --argjson qmap '{"cpu": "et-cpu", "gpu": "et-gpu"}' \
	    "$E2E_NO_OVERSHOOT" "$S"
	check "two: each resource launched its own instance type" \
	    sj 'all(.instances[]; (.resource == "cpu" and
	    .type == "c5.large") or (.resource == "gpu" and
	    .type == "g4dn.xlarge"))' "$S"
	check "two: each queue's tasks ran on that resource's instances" \
	    sj '. as $s | all(.tasks[]; . as $t | ($s.instances[] |
	    select(.id == $t.instance) | .resource) ==
	    ($t.queue | ltrimstr("et-")))' "$S"
	check "two: 7 tasks completed, none failed" \
	    sj '.totals.tasks_done == 7 and .totals.tasks_failed == 0' "$S"
	for r in cpu gpu; do
		diag "reaction of $r: $(jq --arg r "$r" --arg q "et-$r" \
		    "$REACTION" "$S") s"
		check "two: $r's RunInstances within polling_interval + 0.5 s" \
		    sj --arg r "$r" --arg q "et-$r" "$REACTION <= 1.5" "$S"
	done
	check "two: idle precision on both resources" \
	    sj "$IDLE_GAPS | all(.gap >= 4 and .gap <= 5)" "$S"
	e2e_stop
	e2e_no_secret
}

# ---- 4. Subnet failover in the same poll ----------------------------------
scenario_subnets() {
	e2e_scenario subnets
	e2e_conf esub 'name = "cpu"; queue = "es-cpu";
	    instance_type = "c5.large"; max_instances = 3;' || return 1
	simctl queue es-cpu >/dev/null
	simctl capacity 'c5.large/us-east-1a/*=0' >/dev/null
	e2e_start || { not_ok "subnets: qscaled starts"; return 1; }
	sleep 1
	e2e_enqueue es-cpu 3 2 sub >/dev/null
	e2e_wait 60 "subnets: 3 tasks done, all terminated" "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	RUNS='[.totals.ec2_call_log[] | select(.action == "RunInstances")]'
	jq -r "$RUNS | .[] | \"RunInstances \(.time) \(.status) \(.error)\"" \
	    "$S" | sed 's/^/# /'
	check "subnets: two RunInstances: capacity refused, then launched" \
	    sj "$RUNS | length == 2 and .[0].status == 500 and
	    .[0].error == \"InsufficientInstanceCapacity\" and
	    .[1].status == 200" "$S"
	check "subnets: the second call followed the first within the poll" \
	    sj "$RUNS | .[1].time - .[0].time < 0.5" "$S"
	check "subnets: back to back: no other EC2 call between the two" \
	    sj "[.totals.ec2_call_log[] | select(.action == \"RunInstances\"
	    or .action == \"DescribeInstances\")] | map(.action) |
	    index([\"RunInstances\", \"RunInstances\"]) != null" "$S"
	check "subnets: the 3 instances came up in the second subnet" \
	    sj --arg b "$E2E_SUBNET_B" '(.instances | length == 3) and
	    all(.instances[]; .subnet == $b and .az == "us-east-1b")' "$S"
	L=$E2E_DIR/log/cpu.log
	check "subnets: the log names the subnet without capacity" \
	    grep -q "RunInstances in $E2E_SUBNET_A .*InsufficientInstance" "$L"
	check "subnets: the log names the subnet used" \
	    grep -q "launched 3 on-demand instances in $E2E_SUBNET_B" "$L"
	check "subnets: 3 tasks completed" \
	    sj '.totals.tasks_done == 3 and .totals.tasks_failed == 0' "$S"
	e2e_stop
	e2e_no_secret
}

# ---- 11. 30% of EC2 calls throttled ---------------------------------------
scenario_throttle() {
	e2e_scenario throttle
	e2e_conf ethr 'name = "cpu"; queue = "eth-cpu";
	    instance_type = "c5.large"; max_instances = 3;' || return 1
	simctl queue eth-cpu >/dev/null
	simctl fault '{"action": "*", "code": "RequestLimitExceeded",
	    "probability": 0.3}' >/dev/null
	e2e_start || { not_ok "throttle: qscaled starts"; return 1; }
	sleep 1
	e2e_enqueue eth-cpu 5 3 thr >/dev/null
	e2e_wait 90 "throttle: 5 tasks done and every instance gone" \
	    "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	jq -r '.totals.ec2_calls | to_entries[] | "\(.key): " +
	    "\(.value.calls) calls, \(.value.errors) errors " +
	    "\(.value.codes)"' "$S" | sed 's/^/# /'
	check "throttle: calls were throttled (RequestLimitExceeded, 503)" \
	    sj '[.totals.ec2_calls[].codes.RequestLimitExceeded // 0] |
	    add > 0' "$S"
	check "throttle: exactly the cap (3) launched for 5 tasks" \
	    sj '.totals.launches.instances == 3 and
	    .totals.max_alive.cpu == 3' "$S"
	check "throttle: no overshoot" \
	    sj --argjson qmap '{"cpu": "eth-cpu"}' "$E2E_NO_OVERSHOOT" "$S"
	check "throttle: every task completed" \
	    sj '.totals.tasks_done == 5 and .totals.tasks_failed == 0' "$S"
	check "throttle: every instance terminated" \
	    sj '(.instances | length == 3) and
	    all(.instances[]; .terminated != null)' "$S"
	check "throttle: terminated only once idle (never before max_idle_time)" \
	    sj "$IDLE_GAPS | all(.gap >= 4)" "$S"
	e2e_stop
	e2e_no_secret
}

scenario_burst
scenario_two
scenario_subnets
scenario_throttle
