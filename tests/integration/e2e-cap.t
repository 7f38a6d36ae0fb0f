#!/usr/bin/env bash
# End to end, the real qscaled on the simulated cloud: the global cap
# (max_instances_total) holds while processes die.  Two resources fill
# the cap between them with more tasks queued; kill -9 of one worker
# process must not let the other launch into the room its instances still
# take, nor must kill -9 of the whole daemon and a restart.  Checked at
# every poll for a minute, in the cloud's view and in qscalectl status,
# then over the whole timeline.  It checks counts, never how long
# something took, so it runs beside other files.
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2119  # jq in quotes
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

e2e_sim_start || { not_ok "the simulated cloud starts"; exit 1; }

CAP=5

# jq: the most instances alive at once, from launches and terminations.
PEAK='[.instances[] | [.launched, 1], (select(.terminated != null) |
    [.terminated, -1])] | sort_by(.[0], .[1]) |
    reduce .[] as $e ({n: 0, max: 0}; .n += $e[1] |
    .max = ([.max, .n] | max)) | .max'

pid_of() { qs_status | jq -r --arg r "$1" '.resources[] |
    select(.name == $r) | .pid // 0'; }
respawned() {	# RESOURCE OLD-PID
	_p=$(pid_of "$1")
	[ -n "$_p" ] && [ "$_p" != 0 ] && [ "$_p" != "$2" ]
}

# watch_cap SECS: the cap at every poll, in the cloud and in qscalectl
# status; sets over and status_over.
watch_cap() {
	over=0
	status_over=0
	polls=0
	_end=$(($(date +%s) + $1))
	while [ "$(date +%s)" -lt "$_end" ]; do
		alive=$(sim_stats | jq '.totals.instances_alive')
		line=$(ctl status 2>/dev/null | grep '^instances: ')
		used=$(echo "$line" | awk '{ print $2 }')
		polls=$((polls + 1))
		if [ -n "$alive" ] && [ "$alive" -gt "$CAP" ]; then
			over=$((over + 1))
			diag "cloud: $alive instances alive"
		fi
		if [ -z "$used" ] || [ "$used" -gt "$CAP" ]; then
			status_over=$((status_over + 1))
			diag "qscalectl status: '$line'"
		fi
		sleep 1	# the polling interval
	done
}

# fill NAME: two resources, more than the cap queued on each, the cap full
fill() {
	e2e_scenario "$1"
	E2E_EXTRA="max_instances_total = $CAP;" e2e_conf "e$1" \
	    "name = \"a\"; queue = \"e$1-a\"; instance_type = \"c5.large\";
	    max_instances = 4;" \
	    "name = \"b\"; queue = \"e$1-b\"; instance_type = \"c5.large\";
	    max_instances = 4;" || return 1
	simctl queue "e$1-a" >/dev/null
	simctl queue "e$1-b" >/dev/null
	e2e_start || { not_ok "$1: qscaled starts"; return 1; }
	# long enough to outlast the minute
	e2e_enqueue "e$1-a" 6 25 ta >/dev/null
	e2e_enqueue "e$1-b" 6 25 tb >/dev/null
	if e2e_until 30 ".totals.instances_alive == $CAP"; then
		ok "$1: the two resources fill the cap ($CAP)"
	else
		not_ok "$1: the two resources fill the cap ($CAP)"
	fi
}

# finish NAME: the checks after the minute, over the whole run
finish() {
	check "$1: the cloud never had more than $CAP alive at $polls polls in a minute" \
	    test "$over" -eq 0
	check "$1: qscalectl status never showed more than $CAP of $CAP" \
	    test "$status_over" -eq 0
	e2e_wait 90 "$1: every task done, every instance terminated" \
	    "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	diag "peak alive at once: $(jq "$PEAK" "$S")"
	check "$1: never more than $CAP alive at once over the whole run" \
	    sj "($PEAK) <= $CAP" "$S"
	check "$1: the cap was used: $CAP alive at once" sj "($PEAK) == $CAP" "$S"
	check "$1: every task completed once, none failed" \
	    sj '.totals.tasks_done == 12 and .totals.tasks_failed == 0' "$S"
	e2e_stop
	e2e_no_secret
}

# ---- 1. kill -9 of one worker process ---------------------------------------
scenario_kill_worker() {
	fill killworker || return 1
	# the resource with more instances: the most room the other could
	# wrongly be granted
	e2e_snap "$E2E_DIR/full.json"
	na=$(jq '[.instances[] | select(.resource == "a")] | length' \
	    "$E2E_DIR/full.json")
	victim=a
	[ "$na" -lt 3 ] && victim=b
	old=$(pid_of $victim)
	kill -KILL "$old"
	diag "killed the worker process of $victim ($old) with the cap full"
	watch_cap 60
	check "kill worker: the worker process of $victim was respawned" \
	    respawned $victim "$old"
	finish "kill worker"
}

# ---- 2. kill -9 of the whole daemon, and a restart --------------------------
# The new supervisor knows nothing: each resource's first launch request
# must wait for the other's count.
scenario_kill_daemon() {
	fill killdaemon || return 1
	e2e_kill9
	diag "killed the daemon with the cap full; restarting it"
	e2e_start || { not_ok "kill daemon: qscaled restarts"; return 1; }
	watch_cap 60
	finish "kill daemon"
}

scenario_kill_worker
scenario_kill_daemon
