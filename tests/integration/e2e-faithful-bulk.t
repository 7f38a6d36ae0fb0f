#!/usr/bin/env bash
# End to end, the real qscaled on the simulated cloud, whose server and
# agents behave as ClearML's (see e2e-faithful), where nothing is timed
# to the second.  A spot interruption while ClearML is down: qscale
# looks at what the instance took once ClearML is back, and the task
# completes elsewhere.  1,200 tasks at once on a resource of 3 instances:
# qscale's queue length, launches and /metrics agree with the server;
# with 1,000 of them stopped, the look for what an interruption lost
# reads every page of the server's answers (500 a call).
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2119  # jq in quotes
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

e2e_sim_start || { not_ok "the simulated cloud starts"; exit 1; }

polls_ge() {
	qs_status | jqt '.resources[0].worker.polls >= $n' --argjson n "$1"
}

# The instance a running task is on, once its agent has reported it.
running_on() {	# TASK
	sim_stats | jq -r --arg t "$1" '.tasks[] | select(.id == $t and
	    .status == "in_progress" and .instance != null) | .instance'
}
is_running() { [ -n "$(running_on "$1")" ]; }
qs_holds() {	# TASK: qscaled has seen a worker hold it
	qs_status | jqt 'any(.resources[].worker.instances[]; .task == $t)' \
	    --arg t "$1"
}

# ---- An interruption while ClearML is down --------------------------------
# qscale cannot look at what the instance took with it until ClearML is
# back; it looks again at the next poll that reads ClearML.
scenario_outage() {
	e2e_scenario outage
	e2e_conf efout 'name = "spo"; queue = "ef-out";
	    instance_type = "c5.large"; max_instances = 2; spot = true;' ||
	    return 1
	simctl queue ef-out >/dev/null
	e2e_start || { not_ok "outage: qscaled starts"; return 1; }
	tid=$(e2e_enqueue ef-out 1 10 out)
	if ! wait_for 40 is_running "$tid" || ! wait_for 10 qs_holds "$tid"; then
		not_ok "outage: the task runs"
		return 1
	fi
	victim=$(running_on "$tid")
	simctl clearml-fault down 12 >/dev/null
	sleep 0.5
	simctl interrupt "$victim" >/dev/null
	L=$E2E_DIR/log/spo.log
	check "outage: the look at what the instance took waits for ClearML" \
	    wait_for 30 grep -q "tasks lost with instance $victim: .*; looking again at the next poll" "$L"
	e2e_wait 60 "outage: the task completes elsewhere once ClearML is back" \
	    ".tasks[] | select(.id == \"$tid\") | .status == \"completed\""
	grep -F "$victim" "$L" | grep -v DEBUG | sed 's/^/# /'
	check "outage: put back once" \
	    test "$(grep -c "task $tid re-queued (1 of max_requeues" "$L")" -eq 1
	check "outage: started twice in all" test "$(e2e_starts "$tid")" -eq 2
	e2e_wait 30 "outage: every instance gone at the end" "$E2E_DONE"
	e2e_stop
	e2e_no_secret
}

# ---- 1,200 tasks at once, 3 instances at most ------------------------------
pending_is() {	# N: qscale's last poll saw N pending
	qs_status | jqt '.resources[0].worker.counts.pending == $n' \
	    --argjson n "$1"
}

# Stop the last N of the tasks listed in FILE (queued still), as a person
# would, in one process (a curl each would take long).
stop_queued() {	# N FILE
	python3 - "$1" "$2" "$QSCALE_SIM_CLEARML_URL" \
	    "$CLEARML_API_ACCESS_KEY:$CLEARML_API_SECRET_KEY" <<'PY'
import base64, json, sys, urllib.request
n, path, url, cred = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
auth = "Basic " + base64.b64encode(cred.encode()).decode()
def call(ep, body):
    req = urllib.request.Request(url.rstrip("/") + "/" + ep,
        data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": auth})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["data"]
# the last ones enqueued are still queued: the agents pop the first
for tid in open(path).read().split()[-n:]:
    call("tasks.stop", {"task": tid})
PY
}

scenario_burst() {
	e2e_scenario burst
	e2e_conf efburst 'name = "cpu"; queue = "ef-burst";
	    instance_type = "c5.large"; max_instances = 3;' || return 1
	simctl queue ef-burst >/dev/null
	e2e_start || { not_ok "burst: qscaled starts"; return 1; }
	wait_for 10 polls_ge 2
	t0=$(date +%s)
	e2e_enqueue ef-burst 1200 600 burst >"$E2E_DIR/ids.txt"
	diag "1,200 tasks enqueued in $(($(date +%s) - t0)) s"
	check "burst: 1,200 tasks in the queue" \
	    test "$(grep -c . "$E2E_DIR/ids.txt")" -eq 1200
	e2e_wait 60 "burst: three tasks run" \
	    '[.tasks[] | select(.status == "in_progress")] | length == 3'
	e2e_wait 10 "burst: the server's queue holds the other 1,197" \
	    '.queues["ef-burst"] == 1197'
	check "burst: qscale's poll sees 1,197 pending" wait_for 10 pending_is 1197
	wait_for 10 polls_ge "$(($(qs_status | jq '.resources[0].worker.polls') + 2))"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	check "burst: three instances launched in all, never more alive" \
	    sj '.totals.launches.instances == 3 and .totals.max_alive.cpu == 3' \
	    "$S"
	m=$(e2e_metric '^qscale_queue_pending[{]')
	check "burst: /metrics says 1,197 pending, as the server ($m)" \
	    test "$m" = "$(jq '.queues["ef-burst"]' "$S")"
	m=$(e2e_metric '^qscale_launched_instances_total[{]')
	check "burst: /metrics counts 3 instances launched ($m)" test "$m" = 3
	check "burst: qscale's status: 3 live, none idle, none booting" \
	    sh -c "'$QSCALECTL' -s '$E2E_DIR/run/control.socket' status -j |
	    jq -e '.resources[0].worker.counts | .live == 3 and .idle == 0 and
	    .booting == 0' >/dev/null"

	# A person stops 1,000 of the queued tasks; then an instance is
	# interrupted.  qscale's look for what was lost with it reads every
	# page of the stopped tasks (the server answers 500 a call) and puts
	# back its task only.
	stop_queued 1000 "$E2E_DIR/ids.txt" || not_ok "burst: 1,000 tasks stopped"
	victim=$(sim_stats | jq -r '[.tasks[] | select(.status ==
	    "in_progress")][0] | "\(.id) \(.instance)"')
	vt=${victim% *}
	victim=${victim#* }
	calls=$(e2e_metric '^qscale_api_calls_total[{].*action="tasks.get_all"')
	simctl interrupt "$victim" >/dev/null
	L=$E2E_DIR/log/cpu.log
	check "burst: the interrupted instance's task is put back" \
	    wait_for 20 grep -q "task $vt re-queued (1 of max_requeues" "$L"
	sleep 1
	after=$(e2e_metric '^qscale_api_calls_total[{].*action="tasks.get_all"')
	diag "tasks.get_all calls for the loss: $((after - calls))"
	check "burst: ... after reading the 1,000 stopped tasks page by page" \
	    test "$((after - calls))" -ge 3
	check "burst: no task the person stopped is put back" \
	    test "$(grep -c 're-queued (' "$L")" -eq 1
	S=$E2E_DIR/stopped.json
	e2e_snap "$S"
	check "burst: the 1,000 stay stopped" \
	    sj '[.tasks[] | select(.status == "stopped")] | length == 1000' "$S"
	e2e_stop
	e2e_no_secret
}

scenario_outage
scenario_burst
