#!/usr/bin/env bash
# End to end, the real qscaled on the simulated cloud: spot, as the
# ClearML app describes it.  The launch that met a spot capacity failure
# retries spot until spot_rollback_timeout, then goes on-demand; the
# blackout it starts makes every additional spot launch on-demand at
# once, in the failing resource too, reaches another spot resource
# within a poll (scope "global") or stays in its own (scope "resource"),
# and ends spot_blackout_period after the last failure; status, /metrics
# and the log say what was converted and until when.  A spot interruption
# of a busy instance puts its task back in the queue, at most
# max_requeues times.
# qscale-test: serial
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2119  # jq in quotes
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

e2e_sim_start || { not_ok "the simulated cloud starts"; exit 1; }

polls_ge() {	# N: every worker process has polled N times
	qs_status | jqt 'all(.resources[]; .worker.polls >= $n)' \
	    --argjson n "$1"
}

# ---- 3. Spot capacity failure, rollback, blackout ---------------------------
scenario_blackout() {
	e2e_scenario blackout
	e2e_conf eblk \
	    'name = "spa"; queue = "eblk-a"; instance_type = "m5.large";
	     max_instances = 2; spot = true; spot_rollback_timeout = "4s";
	     spot_blackout_period = "8s";' \
	    'name = "spb"; queue = "eblk-b"; instance_type = "c5.large";
	     max_instances = 2; spot = true; spot_blackout_period = "8s";' ||
	    return 1
	simctl queue eblk-a >/dev/null && simctl queue eblk-b >/dev/null
	simctl capacity 'm5.large/*/spot=0' >/dev/null
	e2e_start || { not_ok "blackout: qscaled starts"; return 1; }
	wait_for 10 polls_ge 2
	e2e_enqueue eblk-a 1 2 blk-a >/dev/null
	e2e_wait 10 "blackout: spa's spot launch is refused for capacity" \
	    '[.totals.ec2_call_log[] | select(.action == "RunInstances" and
	    .error == "InsufficientInstanceCapacity")] | length >= 1'
	LA=$E2E_DIR/log/spa.log
	LB=$E2E_DIR/log/spb.log
	QL=$E2E_DIR/log/qscaled.log
	wait_for 5 grep -q 'spot blackout until .*: spa failed' "$QL"
	# more demand, in spa too, while the blackout is on: on-demand at
	# once, while spa's first launch still retries spot
	e2e_enqueue eblk-b 1 2 blk-b >/dev/null
	TA2=$(e2e_enqueue eblk-a 1 2 blk-a2)
	check "blackout: the supervisor starts the blackout, saying until when" \
	    grep -q 'spot blackout until [0-9T:.-]*Z: spa failed to get spot capacity (InsufficientInstanceCapacity); spot launches of every resource become on-demand for 8 s' "$QL"
	ST=$E2E_DIR/status-mid.json
	qs_status >"$ST"
	ctl status >"$E2E_DIR/status-mid.txt" 2>&1
	check "blackout: qscalectl status says until when, and who started it" \
	    grep -q '^spot blackout: active until [0-9T:.-]*Z ([0-9]*s left), started by spa (InsufficientInstanceCapacity)' "$E2E_DIR/status-mid.txt"
	until_s=$(jq '.global.blackout.until / 1000' "$ST")
	# the refusal that set it: the last before the status was read (a
	# later poll may have refused again since)
	f0=$(e2e_log_times "$LA" 'RunInstances .*\(spot, .*Insufficient' |
	    awk -v u="$until_s" '$1 <= u - 7.5 { f = $1 }
	    END { printf "%.3f\n", f }')
	diag "status: blackout until $until_s, $(echo "$until_s - $f0" |
	    bc) s after the refusal before it"
	check "blackout: status says until when (8 s after the last refusal)" \
	    test "$(echo "$until_s - $f0 >= 8 && $until_s - $f0 <= 8.5" | bc)" -eq 1
	check "blackout: status shows it for spb too, same end" \
	    sj --argjson u "$until_s" '.resources[] | select(.name == "spb") |
	    .blackout.active and .blackout.until / 1000 == $u and
	    .blackout.resource == "spa"' "$ST"
	m=$(e2e_metric '^qscale_spot_blackout_until_seconds[{]resource="spb"')
	check "blackout: /metrics says until when ($m; later: one more refusal)" \
	    test "$(echo "$m >= $until_s && $m - $until_s <= 1.5" | bc)" -eq 1
	e2e_wait 20 "blackout: spb and spa's second task have an instance" \
	    '[.instances[] | .resource] | (index("spa") != null and
	    index("spb") != null)'
	S=$E2E_DIR/mid.json
	e2e_snap "$S"
	jq -r '.instances[] | "instance \(.id) of \(.resource), " +
	    "\(.market), launched at \(.launched)"' "$S" | sed 's/^/# /'
	check "blackout: spa's additional launch is on-demand" \
	    sj '[.instances[] | select(.resource == "spa") | .market] ==
	    ["on-demand"]' "$S"
	check "blackout: spa's additional launch within one poll of its task" \
	    sj --arg t "$TA2" '([.instances[] | select(.resource == "spa") |
	    .launched] | min) - (.tasks[] | select(.id == $t) | .enqueued) <=
	    1.5' "$S"
	check "blackout: spa's log says it was converted, and until when" \
	    grep -q 'launching 1 on-demand instance: .*; on-demand instead of spot: spot blackout until [0-9:]*Z (started by spa)' "$LA"
	check "blackout: spb's instance is on-demand (the blackout's doing)" \
	    sj '[.instances[] | select(.resource == "spb") | .market] ==
	    ["on-demand"]' "$S"
	check "blackout: spb launched within one poll of its task (1.5 s)" \
	    sj '([.instances[] | select(.resource == "spb") | .launched] |
	    min) - ([.tasks[] | select(.queue == "eblk-b") | .enqueued] |
	    min) <= 1.5' "$S"
	check "blackout: spb never asked for spot" \
	    sh -c "! grep -q 'RunInstances.*(spot' '$LB'"
	check "blackout: spb's log says it was converted, and until when" \
	    grep -q 'on-demand instead of spot: spot blackout until [0-9:]*Z (started by spa)' "$LB"
	check "blackout: spb learned of the blackout (its log)" \
	    grep -q 'spot blackout until .* (started by spa)' "$LB"
	b0=$(e2e_log_times "$QL" 'spot blackout until .*: spa failed' |
	    head -n 1)
	b1=$(e2e_log_times "$LB" 'spot blackout until' | head -n 1)
	diag "spb learned of it $(echo "${b1:-0} - ${b0:-0}" | bc) s after it began"
	check "blackout: ... within one poll of its start" \
	    test "$(echo "${b1:-99} - ${b0:-0} <= 1" | bc)" -eq 1

	# spa: spot retried on later polls, on-demand after the rollback.
	# The cloud counts the refusals; spa's log warns of the first and
	# tells when the last was in the line that counts the others.
	e2e_until 10 '[.instances[] | select(.resource == "spa")] | length == 2'
	e2e_snap "$E2E_DIR/mid2.json"
	nfail=$(jq '[.totals.ec2_call_log[] | select(.action ==
	    "RunInstances" and .error == "InsufficientInstanceCapacity")] |
	    length' "$E2E_DIR/mid2.json")
	first=$(e2e_log_times "$LA" 'WARN spa: RunInstances .*\(spot, .*Insufficient' |
	    head -n 1)
	last=$(jq -Rr 'capture("spot capacity errors not logged one by one: .*the last at (?<t>[0-9T:.-]+)Z") |
	    (.t[0:19] + "Z" | fromdateiso8601) + (.t[20:23] | tonumber) / 1000' \
	    "$LA" | head -n 1)
	polls=$(grep -c 'launching 1 spot instance' "$LA")
	od=$(jq -r '[.instances[] | select(.resource == "spa") |
	    .launched] | max' "$E2E_DIR/mid2.json")
	diag "spa: $nfail spot refusals in $polls polls; on-demand" \
	    "$(echo "$od - $first" | bc) s after the first refusal"
	check "blackout: spa kept trying spot on later polls (>= 3 polls)" \
	    test "$polls" -ge 3
	check "blackout: each spot try went through both subnets" \
	    test "$nfail" -eq $((polls * 2))
	check "blackout: on-demand not before spot_rollback_timeout (4 s)" \
	    test "$(echo "$od - $first >= 4" | bc)" -eq 1
	check "blackout: on-demand within a poll after the rollback timeout" \
	    test "$(echo "$od - $first <= 5.5" | bc)" -eq 1
	check "blackout: spa launched on-demand in its log" \
	    grep -q 'launched 1 on-demand instance' "$LA"
	# one warning for all those refusals, and one line counting the rest
	warns=$(grep -c 'WARN spa: RunInstances .*(spot, .*InsufficientInstanceCapacity' "$LA")
	check "blackout: spa warned once of its $nfail spot refusals ($warns)" \
	    test "$warns" -eq 1
	check "blackout: ... with no request id repeated in the log" \
	    test "$(grep -c 'InsufficientInstanceCapacity.*request ' "$LA")" -le 2
	check "blackout: ... and counted the other $((nfail - 1)) in one line at the rollback" \
	    grep -q "INFO spa: spot capacity errors not logged one by one: $((nfail - 1)) more InsufficientInstanceCapacity (the last at .*); launching on-demand instead" "$LA"
	check "blackout: spb, which asked for no spot, warned of nothing" \
	    sh -c "! grep -q 'WARN spb: RunInstances' '$LB'"
	check "blackout: spb said the blackout began once, however often it was extended" \
	    test "$(grep -c 'INFO spb: spot blackout until' "$LB")" -eq 1
	check "blackout: spa's log says the rollback converted the attempt" \
	    grep -q 'on-demand instead of spot: spot_rollback_timeout passed (spot failing since [0-9:]*Z)' "$LA"
	ST=$E2E_DIR/status-conv.json
	qs_status >"$ST"
	check "blackout: status counts spa's conversions (1 rollback, 1 blackout)" \
	    sj '.resources[] | select(.name == "spa") | .worker.spot.converted ==
	    {"rollback": 1, "blackout": 1}' "$ST"
	ctl status >"$E2E_DIR/status-conv.txt" 2>&1
	check "blackout: qscalectl status says what spa converted" \
	    grep -q '^  spa: on-demand instead of spot: 1 after spot_rollback_timeout, 1 in a blackout; last: 1 on-demand instead of spot: spot_rollback_timeout passed' "$E2E_DIR/status-conv.txt"
	check "blackout: status counts spb's (1 blackout)" \
	    sj '.resources[] | select(.name == "spb") | .worker.spot.converted ==
	    {"rollback": 0, "blackout": 1}' "$ST"
	m=$(e2e_metric '^qscale_spot_converted_instances_total[{]resource="spa",reason="rollback"')
	m2=$(e2e_metric '^qscale_spot_converted_instances_total[{]resource="spa",reason="blackout"')
	m3=$(e2e_metric '^qscale_spot_converted_instances_total[{]resource="spb",reason="blackout"')
	check "blackout: /metrics counts the conversions ($m, $m2, $m3)" \
	    test "$m $m2 $m3" = "1 1 1"

	# the end of the blackout: spot_blackout_period after the last failure
	e2e_until 20 "$E2E_TASKS_DONE"
	wait_for 15 grep -q 'spot blackout over' "$QL"
	over=$(e2e_log_times "$QL" 'qscaled: spot blackout over' | head -n 1)
	if [ -n "$over" ] && [ -n "$last" ]; then
		gap=$(echo "$over - $last" | bc)
		diag "blackout over $gap s after the last spot failure"
		check "blackout: over spot_blackout_period (8 s) after the last failure" \
		    test "$(echo "$gap >= 8 && $gap <= 9" | bc)" -eq 1
	else
		not_ok "blackout: the blackout ends (no 'spot blackout over')"
	fi
	check "blackout: spb learned it is over" \
	    wait_for 3 grep -q 'spot blackout over' "$LB"
	e2e_enqueue eblk-b 1 2 blk-b2 >/dev/null
	e2e_wait 10 "blackout: after it, spb launches again" \
	    '[.instances[] | select(.resource == "spb")] | length == 2'
	e2e_snap "$E2E_DIR/after.json"
	check "blackout: ... on spot" \
	    sj '[.instances[] | select(.resource == "spb") | .market] | sort ==
	    ["on-demand", "spot"]' "$E2E_DIR/after.json"
	e2e_wait 40 "blackout: every task done, every instance terminated" \
	    "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	check "blackout: 4 tasks completed, 4 instances in all" \
	    sj '.totals.tasks_done == 4 and .totals.launches.instances == 4' \
	    "$S"
	check "blackout: spa never had a spot instance" \
	    sj 'all(.instances[]; .resource != "spa" or .market ==
	    "on-demand")' "$S"
	e2e_stop
	e2e_no_secret
}

# ---- 3b. spot_blackout_scope "resource" ------------------------------------
# The blackout holds in the failing resource only, for its own
# spot_blackout_period: its additional launches are on-demand at once,
# another spot resource keeps launching spot.
scenario_blackout_resource() {
	e2e_scenario blackout-res
	E2E_EXTRA='spot_blackout_scope = "resource";' e2e_conf ebrs \
	    'name = "rsa"; queue = "ebrs-a"; instance_type = "m5.large";
	     max_instances = 2; spot = true; spot_rollback_timeout = "3s";
	     spot_blackout_period = "6s";' \
	    'name = "rsb"; queue = "ebrs-b"; instance_type = "c5.large";
	     max_instances = 2; spot = true; spot_blackout_period = "6s";' ||
	    return 1
	simctl queue ebrs-a >/dev/null && simctl queue ebrs-b >/dev/null
	simctl capacity 'm5.large/*/spot=0' >/dev/null
	e2e_start || { not_ok "scope resource: qscaled starts"; return 1; }
	wait_for 10 polls_ge 2
	e2e_enqueue ebrs-a 1 2 rs-a >/dev/null
	LA=$E2E_DIR/log/rsa.log
	LB=$E2E_DIR/log/rsb.log
	QL=$E2E_DIR/log/qscaled.log
	wait_for 10 grep -q 'spot blackout until .*: rsa failed' "$QL"
	TA2=$(e2e_enqueue ebrs-a 1 2 rs-a2)
	TB=$(e2e_enqueue ebrs-b 1 2 rs-b)
	check "scope resource: the blackout is rsa's alone (6 s)" \
	    grep -q 'spot blackout until [0-9T:.-]*Z: rsa failed to get spot capacity (InsufficientInstanceCapacity); spot launches of this resource become on-demand for 6 s' "$QL"
	ST=$E2E_DIR/status-mid.json
	qs_status >"$ST"
	check "scope resource: status: rsa in a blackout, rsb not" \
	    sj '(.resources[] | select(.name == "rsa") | .blackout.active and
	    .blackout.scope == "resource") and (.resources[] |
	    select(.name == "rsb") | .blackout.active | not)' "$ST"
	ctl status >"$E2E_DIR/status-mid.txt" 2>&1
	check "scope resource: qscalectl status shows rsa's own blackout" \
	    grep -q '^  rsa: spot blackout until [0-9T:.-]*Z ([0-9]*s left): InsufficientInstanceCapacity' "$E2E_DIR/status-mid.txt"
	check "scope resource: ... and no global one" \
	    sh -c "! grep -q '^spot blackout' '$E2E_DIR/status-mid.txt'"
	m=$(e2e_metric '^qscale_spot_blackout_until_seconds[{]resource="rsb"')
	check "scope resource: /metrics: no blackout for rsb ($m)" test "$m" = 0
	e2e_wait 20 "scope resource: rsa's second task and rsb's have instances" \
	    '[.instances[] | .resource] | (index("rsa") != null and
	    index("rsb") != null)'
	S=$E2E_DIR/mid.json
	e2e_snap "$S"
	jq -r '.instances[] | "instance \(.id) of \(.resource), " +
	    "\(.market), launched at \(.launched)"' "$S" | sed 's/^/# /'
	check "scope resource: rsa's additional launch is on-demand" \
	    sj '[.instances[] | select(.resource == "rsa") | .market] ==
	    ["on-demand"]' "$S"
	check "scope resource: ... within one poll of its task" \
	    sj --arg t "$TA2" '([.instances[] | select(.resource == "rsa") |
	    .launched] | min) - (.tasks[] | select(.id == $t) | .enqueued) <=
	    1.5' "$S"
	check "scope resource: rsb launches spot, within one poll" \
	    sj --arg t "$TB" '([.instances[] | select(.resource == "rsb")] |
	    map(.market) == ["spot"]) and ([.instances[] |
	    select(.resource == "rsb") | .launched] | min) - (.tasks[] |
	    select(.id == $t) | .enqueued) <= 1.5' "$S"
	check "scope resource: rsb never heard of a blackout" \
	    sh -c "! grep -q 'spot blackout' '$LB'"
	# rsa's attempt: spot until its rollback (3 s), then on-demand
	e2e_until 10 '[.instances[] | select(.resource == "rsa")] | length == 2'
	e2e_snap "$E2E_DIR/mid2.json"
	# the first refusal is in rsa's log, the last in the cloud's
	first=$(e2e_log_times "$LA" 'RunInstances .*\(spot, .*Insufficient' |
	    head -n 1)
	last=$(jq '[.totals.ec2_call_log[] | select(.action == "RunInstances"
	    and .error == "InsufficientInstanceCapacity") | .time] | max' \
	    "$E2E_DIR/mid2.json")
	od=$(jq -r '[.instances[] | select(.resource == "rsa") |
	    .launched] | max' "$E2E_DIR/mid2.json")
	diag "rsa: on-demand $(echo "$od - $first" | bc) s after the first refusal"
	check "scope resource: rsa's attempt on-demand after 3 s, within a poll" \
	    test "$(echo "$od - $first >= 3 && $od - $first <= 4.5" | bc)" -eq 1
	wait_for 12 grep -q 'spot blackout of rsa over' "$QL"
	over=$(e2e_log_times "$QL" 'spot blackout of rsa over' | head -n 1)
	gap=$(echo "${over:-0} - ${last:-0}" | bc)
	diag "rsa's blackout over $gap s after its last spot failure"
	check "scope resource: over spot_blackout_period (6 s) after the last failure" \
	    test "$(echo "$gap >= 6 && $gap <= 7" | bc)" -eq 1
	ST=$E2E_DIR/status-end.json
	qs_status >"$ST"
	check "scope resource: status counts rsa's conversions" \
	    sj '.resources[] | select(.name == "rsa") | .worker.spot.converted ==
	    {"rollback": 1, "blackout": 1}' "$ST"
	e2e_wait 40 "scope resource: every task done, every instance terminated" \
	    "$E2E_DONE"
	e2e_stop
	e2e_no_secret
}

# ---- 10. Spot interruption of a busy instance -----------------------------
# The instance a task runs on, once it runs (on another one than $2).
# The instance that runs TASK (other than NOT_INSTANCE), once qscaled has
# seen its worker hold it too (agents report every 30 s, so the log can
# name the task of the instance lost).
running_on() {	# TASK [NOT_INSTANCE]
	_ro=$(sim_stats | jq -r --arg t "$1" --arg not "${2:-}" '.tasks[] |
	    select(.id == $t and .status == "in_progress" and
	    .instance != null and .instance != $not) | .instance' | grep .) ||
	    return 1
	qs_status | jqt 'any(.resources[].worker.instances[];
	    .id == $i and .task == $t)' --arg i "$_ro" --arg t "$1" ||
	    return 1
	echo "$_ro"
}

# Statuses of the tasks, every 0.2 s, while a test holds.
watch_status() {	# OUT SECS JQ TASKS...
	_o=$1 _secs=$2 _cond=$3
	shift 3
	_end=$(($(date +%s) + _secs))
	while [ "$(date +%s)" -lt "$_end" ]; do
		sim_stats >"$_o.now" 2>/dev/null || continue
		for _t in "$@"; do
			jq -r --arg t "$_t" '.tasks[] | select(.id == $t) |
			    "\(.id) \(.status)"' "$_o.now" >>"$_o"
		done
		sj "$_cond" "$_o.now" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

scenario_interrupt() {
	e2e_scenario interrupt
	E2E_EXTRA='max_requeues = 2;' e2e_conf eint \
	    'name = "spi"; queue = "eint"; instance_type = "c5.large";
	     max_instances = 3; spot = true;' || return 1
	simctl queue eint >/dev/null
	e2e_start || { not_ok "interrupt: qscaled starts"; return 1; }
	wait_for 10 polls_ge 2
	T1=$(e2e_enqueue eint 1 6 int-once)
	T2=$(e2e_enqueue eint 1 30 int-thrice)
	L=$E2E_DIR/log/spi.log
	X1=$(wait_for 20 running_on "$T1" && running_on "$T1")
	Y1=$(wait_for 20 running_on "$T2" && running_on "$T2")
	if [ -z "$X1" ] || [ -z "$Y1" ]; then
		not_ok "interrupt: the two tasks run"
		return 1
	fi
	diag "task $T1 runs on $X1, task $T2 on $Y1; interrupting both"
	simctl interrupt "$X1" >/dev/null
	simctl interrupt "$Y1" >/dev/null
	W=$E2E_DIR/status.txt
	check "interrupt: both tasks run again elsewhere" watch_status "$W" 20 \
	    "[.tasks[] | select((.id == \"$T1\" and .instance != \"$X1\") or
	    (.id == \"$T2\" and .instance != \"$Y1\")) |
	    select(.status == \"in_progress\")] | length == 2" "$T1" "$T2"
	check "interrupt: ClearML showed $T1 queued again" \
	    grep -q "^$T1 queued$" "$W"
	check "interrupt: ClearML showed $T2 queued again" \
	    grep -q "^$T2 queued$" "$W"
	check "interrupt: the log names the interruption and the task" \
	    grep -q "instance $X1 was terminated outside qscale (Server.SpotInstanceTermination.*) while running task $T1" "$L"
	check "interrupt: the log tells $T1 was re-queued (1 of 2)" \
	    grep -q "task $T1 re-queued (1 of max_requeues 2)" "$L"
	# cloudsim's agents go down as clearml-agent on SIGTERM: the task
	# stopped ("user abort"), the worker unregistered
	check "interrupt: $X1's agent stopped $T1 on the way down" \
	    grep -q "agent-shutdown instance=$X1 mode=graceful.*task=$T1" \
	    "$SIM_LOG"
	check "interrupt: ... and qscaled put it back all the same" \
	    grep -Eq "task $T1 of lost instance $X1 goes back to its queue: (its agent stopped it as|it was running when) its instance went" \
	    "$L"
	check "interrupt: the log tells $T2 was re-queued (1 of 2)" \
	    grep -q "task $T2 re-queued (1 of max_requeues 2)" "$L"
	e2e_wait 20 "interrupt: $T1 completes on another instance" \
	    ".tasks[] | select(.id == \"$T1\") | .status == \"completed\" and
	    .instance != \"$X1\""

	# T2: a second interruption is re-queued, a third is not
	Y2=$(running_on "$T2" "$Y1")
	simctl interrupt "$Y2" >/dev/null
	check "interrupt: after a second interruption $T2 runs again" \
	    wait_for 20 running_on "$T2" "$Y2"
	check "interrupt: the log tells $T2 was re-queued (2 of 2)" \
	    grep -q "task $T2 re-queued (2 of max_requeues 2)" "$L"
	Y3=$(running_on "$T2" "$Y2")
	diag "$T2 ran on $Y1, $Y2, $Y3"
	simctl interrupt "$Y3" >/dev/null
	check "interrupt: the third loss is not re-queued (max_requeues 2)" \
	    wait_for 10 grep -q "task $T2 ran on instance $Y3, which was interrupted while it ran; not re-queueing it: already re-queued 2 times" "$L"
	sleep 2
	e2e_snap "$E2E_DIR/after.json"
	check "interrupt: $T2 was not put back in the queue a third time" \
	    sj ".tasks[] | select(.id == \"$T2\") | .status != \"queued\" and
	    .instance == \"$Y3\"" "$E2E_DIR/after.json"
	check "interrupt: $T2 started three times only" \
	    test "$(grep -c "task-start .*task=$T2" "$SIM_LOG")" -eq 3
	check "interrupt: $T1 started twice only" \
	    test "$(grep -c "task-start .*task=$T1" "$SIM_LOG")" -eq 2
	e2e_wait 30 "interrupt: every instance terminated in the end" \
	    '.totals.instances_alive == 0'
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	check "interrupt: 4 interruptions, no task failed" \
	    sj '.totals.interruptions == 4 and .totals.tasks_failed == 0' "$S"
	check "interrupt: never above max_instances" \
	    sj '.totals.max_alive.spi <= 3' "$S"
	check "interrupt: the zombie workers of gone instances unregistered" \
	    sj '.workers | length == 0' "$S"
	m=$(e2e_metric '^qscale_terminations_total[{].*reason="interrupted"')
	check "interrupt: /metrics counts the 4 interruptions ($m)" \
	    test "$m" = "$(jq '.totals.interruptions' "$S")"
	m=$(e2e_metric '^qscale_requeues_total[{]')
	check "interrupt: /metrics counts 3 re-queues ($m)" test "$m" = 3
	e2e_stop
	e2e_no_secret
}

scenario_blackout
scenario_blackout_resource
scenario_interrupt
