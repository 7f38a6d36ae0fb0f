#!/usr/bin/env bash
# End to end, the real qscaled on the simulated cloud: orphans.  A
# resource renamed by a reload (SIGHUP) while it has an idle and a busy
# instance: both are watched as orphans (log, qscalectl status, /status,
# /metrics, qscaled --plan), the idle one is terminated after
# max_idle_time, the busy one only once its task has ended and it has
# been idle as long; nothing is left.  Then a restart with a
# configuration that dropped a resource: its idle instance is found and
# terminated the same way.
# qscale-test: serial
# shellcheck source-path=SCRIPTDIR disable=SC2016,SC2119  # jq in quotes
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

e2e_sim_start || { not_ok "the simulated cloud starts"; exit 1; }

IDLE=5

res() {	# NAME QUEUE
	printf 'name = "%s"; queue = "%s"; instance_type = "c5.large";
	    max_instances = 2;' "$1" "$2"
}

orphans_n() {	# N: qscalectl status -j shows N orphans
	qs_status | jqt '.orphans.instances | length == $n' --argjson n "$1"
}

status_url() {
	sed -n 's/^status = { listen = "\(.*\)".*/http:\/\/\1/p' \
	    "$E2E_DIR/qscale.conf"
}

task_of() {	# FILE TASK-ID FIELD
	jq -r --arg t "$2" ".tasks[] | select(.id == \$t) | .$3" "$1"
}

inst_of() {	# FILE INSTANCE-ID FIELD
	jq -r --arg i "$2" ".instances[] | select(.id == \$i) | .$3" "$1"
}

calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

# within LOW HIGH VALUE: LOW <= VALUE <= HIGH (decimals)
within() { awk -v l="$1" -v h="$2" -v v="$3" 'BEGIN { exit !(v >= l && v <= h) }'; }

# ---- 1. a resource renamed by SIGHUP, one instance idle, one busy -----------
scenario_rename() {
	e2e_scenario rename
	E2E_IDLE=${IDLE}s e2e_conf eor "$(res old eor-q)" || return 1
	simctl queue eor-q >/dev/null
	e2e_start || { not_ok "rename: qscaled starts"; return 1; }
	SHORT=$(e2e_enqueue eor-q 1 1 short)
	LONG=$(e2e_enqueue eor-q 1 25 long)
	if ! e2e_until 40 '.totals.tasks_done == 1 and
	    ([.tasks[] | select(.status == "in_progress")] | length) == 1'; then
		not_ok "rename: one task done, one running"
		return 1
	fi
	e2e_snap "$E2E_DIR/before.json"
	IDLE_I=$(task_of "$E2E_DIR/before.json" "$SHORT" instance)
	BUSY_I=$(task_of "$E2E_DIR/before.json" "$LONG" instance)
	check "rename: two instances, one idle ($IDLE_I), one busy ($BUSY_I)" \
	    test -n "$IDLE_I" -a -n "$BUSY_I" -a "$IDLE_I" != "$BUSY_I"
	# the same queue, under another name: the old one's are orphans
	cp "$E2E_DIR/qscale.conf" "$E2E_DIR/old.conf"
	sed -i 's/name = "old";/name = "new";/' "$E2E_DIR/qscale.conf"
	H=$(date +%s.%N)
	kill -HUP "$QPID"
	QL=$E2E_DIR/log/qscaled.log
	if wait_for 10 orphans_n 2; then
		ok "rename: qscalectl status -j lists the 2 orphans"
	else
		not_ok "rename: qscalectl status -j lists the 2 orphans"
		diag "$(qs_status | jq -c .orphans)"
	fi
	check "rename: the log says why each is watched" \
	    test "$(grep -c 'orphan: instance i-[0-9a-f]* (c5.large) belongs to resource "old", which is not in the configuration' "$QL")" -eq 2
	ctl status >"$E2E_DIR/status.txt"
	check "rename: qscalectl status shows them, the busy one with its task" \
	    grep -q "$BUSY_I c5.large (resource old, running): busy with task $LONG" \
	    "$E2E_DIR/status.txt"
	check "rename: ... and the idle one" \
	    grep -q "$IDLE_I c5.large (resource old, running): idle since" \
	    "$E2E_DIR/status.txt"
	URL=$(status_url)
	check "rename: /status lists them" sh -c "curl -sf '$URL/status' |
	    jq -e '.orphans.instances | length == 2' >/dev/null"
	check "rename: /metrics counts one idle and one busy orphan" \
	    test "$(e2e_metric '^qscale_orphan_instances[{]state="idle"')-$(
	    e2e_metric '^qscale_orphan_instances[{]state="busy"')" = 1-1
	"$QSCALED" --plan -c "$E2E_DIR/qscale.conf" >"$E2E_DIR/plan.out" 2>&1
	check "rename: qscaled --plan shows the idle orphan" \
	    grep -q "$IDLE_I c5.large of resource \"old\" (running): idle" \
	    "$E2E_DIR/plan.out"
	check "rename: qscaled --plan shows the busy one kept while busy" \
	    grep -q "$BUSY_I c5.large of resource \"old\" (running): busy with task $LONG" \
	    "$E2E_DIR/plan.out"
	e2e_wait 60 "rename: every task done, every instance terminated" \
	    "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	e2e_stats_diag "$S"
	IT=$(inst_of "$S" "$IDLE_I" terminated)
	BT=$(inst_of "$S" "$BUSY_I" terminated)
	END=$(task_of "$S" "$LONG" ended)
	diag "reload at $H; idle one terminated $(calc "$IT - $H") s after" \
	    "the busy one's task ended at $END, it was terminated $(calc \
	    "$BT - $END") s after"
	check "rename: the idle orphan terminated within [$IDLE s, $IDLE + 3 s] of the reload" \
	    within "$(calc "$H + $IDLE")" "$(calc "$H + $IDLE + 3")" "$IT"
	check "rename: the busy orphan ran its task to the end" \
	    sj --arg t "$LONG" '.tasks[] | select(.id == $t) |
	    .status == "completed"' "$S"
	check "rename: ... then was terminated within [$IDLE s, $IDLE + 3 s] of idle" \
	    within "$(calc "$END + $IDLE")" "$(calc "$END + $IDLE + 3")" "$BT"
	check "rename: nothing launched for the new name (no demand)" \
	    sj '.totals.launches.instances == 2' "$S"
	check "rename: the log says why each orphan was terminated" \
	    test "$(grep -c "orphan: terminating instance i-[0-9a-f]* of removed resource \"old\": idle for [0-9]* s (max_idle_time $IDLE s)" "$QL")" -eq 2
	if wait_for 5 orphans_n 0; then
		ok "rename: no orphan left in the status"
	else
		not_ok "rename: no orphan left in the status"
	fi
	check "rename: /metrics counts 2 orphans terminated" \
	    test "$(e2e_metric '^qscale_orphans_terminated_total')" = 2
	e2e_stop
	e2e_no_secret
}

# ---- 2. a restart with a configuration that dropped a resource -------------
scenario_restart() {
	e2e_scenario restart
	E2E_IDLE=${IDLE}s e2e_conf eos "$(res keep eos-k)" "$(res gone eos-g)" ||
	    return 1
	simctl queue eos-k >/dev/null
	simctl queue eos-g >/dev/null
	e2e_start || { not_ok "restart: qscaled starts"; return 1; }
	e2e_enqueue eos-g 1 2 one >/dev/null
	if ! e2e_until 30 '.totals.tasks_done == 1'; then
		not_ok "restart: the task of \"gone\" ran"
		return 1
	fi
	e2e_stop
	e2e_snap "$E2E_DIR/stopped.json"
	check "restart: its instance outlives the daemon" \
	    sj '.totals.instances_alive == 1' "$E2E_DIR/stopped.json"
	I=$(jq -r '.instances[0].id' "$E2E_DIR/stopped.json")
	E2E_IDLE=${IDLE}s e2e_conf eos "$(res keep eos-k)" || return 1
	R=$(date +%s.%N)
	e2e_start || { not_ok "restart: qscaled restarts"; return 1; }
	if wait_for 10 orphans_n 1; then
		ok "restart: the instance of the dropped resource is an orphan"
	else
		not_ok "restart: the instance of the dropped resource is an orphan"
	fi
	e2e_wait 30 "restart: it is terminated, nothing is left" \
	    '.totals.instances_alive == 0'
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	T1=$(inst_of "$S" "$I" terminated)
	diag "restart at $R, $I terminated $(calc "$T1 - $R") s after"
	check "restart: not before max_idle_time after the restart (idle time starts at adoption)" \
	    within "$(calc "$R + $IDLE")" "$(calc "$R + $IDLE + 4")" "$T1"
	check "restart: the log names the dropped resource" \
	    grep -q "orphan: terminating instance $I of removed resource \"gone\"" \
	    "$E2E_DIR/log/qscaled.log"
	e2e_stop
	e2e_no_secret
}

scenario_rename
scenario_restart
