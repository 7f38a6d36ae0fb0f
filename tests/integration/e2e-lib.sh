# Shared by the end-to-end scenarios (tests/integration/e2e-*.t): the
# real qscaled on the simulated cloud, with short durations.  Sourced
# after lib.sh; sources simlib.sh.
#
#   e2e_sim_start [ARGS]        cloudsim on a free port base, with 1 s
#                               boot and pending delays; its agents keep
#                               clearml-agent's timing (5 s poll, 30 s
#                               reports) and go down gracefully
#   e2e_scenario NAME           a fresh scenario: /sim/reset (no faults, no
#                               capacity limit), its own directory E2E_DIR
#   e2e_conf NAME RES...        write $E2E_DIR/qscale.conf for autoscaler
#                               NAME; each RES is the inside of one resource
#                               block (ami, security group and both
#                               subnets are added unless given); knobs:
#                               E2E_POLL E2E_IDLE E2E_SPINUP E2E_LAST_SEEN
#                               E2E_EXTRA
#   e2e_start                   qscaled -f on it; QPID
#   e2e_stop                    SIGTERM, then SIGKILL of what is left
#   e2e_kill9                   kill -9 of the supervisor and its children
#   sim_stats                   GET /sim/stats
#   e2e_snap FILE               /sim/stats saved to FILE
#   e2e_until SECS JQ           poll /sim/stats until the jq test holds
#   e2e_wait SECS DESC JQ       the same as one TAP result
#   e2e_stats_diag [FILE]       instance-seconds, task-seconds, mean and
#                               p95 wait, launches, as TAP diag lines
#   e2e_log_times FILE REGEX    epoch seconds of the log lines matching
#   e2e_enqueue QUEUE N DUR P   simctl enqueue; prints the task ids
#   e2e_clearml ENDPOINT JSON   a ClearML API call as a user makes it
#   e2e_starts TASK             how often the agents started TASK
#   sj [ARGS] JQ FILE           the jq test holds on a saved stats file
#   qs_status                   qscalectl status -j of the running daemon
#   e2e_no_secret               TAP: no secret in the scenario's logs
#   E2E_DONE, E2E_TASKS_DONE    jq: every task finished (and every
#                               instance terminated)
#   E2E_NO_OVERSHOOT            jq: no launch ran ahead of its demand
#
# Every scenario runs its own qscaled with its own autoscaler name and
# workers prefix, so the instances of another scenario are never its own.
# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2154,SC2034,SC2016
# (lib.sh and simlib.sh define what is used, the .t files use what is
# defined here, jq programs are in single quotes)

# shellcheck source=../cloudsim/simlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cloudsim/simlib.sh"

E2E_DIR=""
QPID=""
E2E_PIDS=""
_e2e_stop_armed=""

# shellcheck disable=SC2120  # arguments are optional
e2e_sim_start() {
	command -v moto_server >/dev/null 2>&1 || {
		not_ok "moto_server is installed (contrib/deps.sh)"
		return 1
	}
	start_cloudsim --boot-delay 1 --pending-delay 1 "$@" || return 1
	SECRETS="$SECRETS $CLEARML_API_SECRET_KEY $AWS_SECRET_ACCESS_KEY"
	E2E_SUBNET_A=$(echo "$QSCALE_SIM_SUBNETS" | awk '{ print $1 }')
	E2E_SUBNET_B=$(echo "$QSCALE_SIM_SUBNETS" | awk '{ print $2 }')
	export E2E_SUBNET_A E2E_SUBNET_B
}

sim_admin() {	# METHOD PATH [JSON]
	if [ $# -ge 3 ]; then
		curl -sf -X "$1" -H 'Content-Type: application/json' \
		    --data "$3" "$QSCALE_SIM_ADMIN_URL/$2"
	else
		curl -sf -X "$1" "$QSCALE_SIM_ADMIN_URL/$2"
	fi
}
sim_stats() { curl -sf --max-time 20 "$QSCALE_SIM_ADMIN_URL/stats"; }
e2e_snap() { sim_stats >"$1"; }

# A new scenario on the same cloud: nothing of the last one remains.
e2e_scenario() {
	E2E_DIR=$T/$1
	mkdir -p "$E2E_DIR/log" "$E2E_DIR/run"
	sim_admin POST reset '{}' >/dev/null &&
	    sim_admin POST capacity '{"spec": ""}' >/dev/null &&
	    sim_admin POST clearml-fault '{"mode": "none", "seconds": 0}' \
	    >/dev/null
}

e2e_conf() {
	_n=$1
	shift
	{
		cat <<CONF
name = "$_n";
workers_prefix = "$_n";
polling_interval = "${E2E_POLL:-1s}";
max_idle_time = "${E2E_IDLE:-4s}";
max_spin_up_time = "${E2E_SPINUP:-30s}";
worker_last_seen = "${E2E_LAST_SEEN:-60s}";
log_level = "${E2E_LOG_LEVEL:-info}";
log_dir = "$E2E_DIR/log";
pid_file = "$E2E_DIR/run/qscaled.pid";
control = { socket = "$E2E_DIR/run/control.socket"; };
status = { listen = "127.0.0.1:$(free_port)"; };
clearml = {
  api_server = "$QSCALE_SIM_CLEARML_URL";
  access_key = "$CLEARML_API_ACCESS_KEY";
  secret_key = "$CLEARML_API_SECRET_KEY";
};
aws = {
  region = "$AWS_REGION";
  access_key_id = "$AWS_ACCESS_KEY_ID";
  secret_access_key = "$AWS_SECRET_ACCESS_KEY";
  endpoint = "$QSCALE_SIM_EC2_URL";
  retry_base_delay = "100ms";
  retry_max_delay = "1s";
};
git = { user = "bot"; password = "git-SECRET-value-3"; };
${E2E_EXTRA:-}
resources = (
CONF
		_sep=""
		for _r in "$@"; do
			printf '%s  { %s\n' "$_sep" "$_r"
			case $_r in *'ami ='*) ;; *)
				printf '    ami = "%s";\n' "$QSCALE_SIM_AMI" ;;
			esac
			case $_r in *subnets*|*availability_zone*) ;; *)
				printf '    subnets = [ "%s", "%s" ];\n' \
				    "$E2E_SUBNET_A" "$E2E_SUBNET_B" ;;
			esac
			printf '    security_groups = [ "%s" ]; }\n' \
			    "$QSCALE_SIM_SECURITY_GROUP"
			_sep=","
		done
		echo ");"
	} >"$E2E_DIR/qscale.conf"
	chmod 600 "$E2E_DIR/qscale.conf"
	if ! "$QSCALED" -n -c "$E2E_DIR/qscale.conf" >"$E2E_DIR/check.out" 2>&1
	then
		diag "$(cat "$E2E_DIR/check.out")"
		return 1
	fi
}

ctl() { "$QSCALECTL" -s "$E2E_DIR/run/control.socket" "$@"; }
qs_status() { ctl status -j 2>/dev/null; }

# The sum of the samples of qscaled's /metrics whose line matches the
# awk regex $1 (e2e_metric '^qscale_requeues_total[{]').
e2e_metric() {
	_port=$(sed -n 's/^status = { listen = "127\.0\.0\.1:\([0-9]*\)".*/\1/p' \
	    "$E2E_DIR/qscale.conf")
	curl -sf --max-time 10 "http://127.0.0.1:$_port/metrics" |
	    awk -v re="$1" '$0 ~ re { s += $NF } END { printf "%.15g\n", s }'
}

e2e_start() {
	"$QSCALED" -f -c "$E2E_DIR/qscale.conf" >>"$E2E_DIR/qscaled.out" 2>&1 3>&- &
	QPID=$!
	E2E_PIDS="$E2E_PIDS $QPID"
	if [ -z "$_e2e_stop_armed" ]; then
		on_exit e2e_stop_all
		_e2e_stop_armed=1
	fi
	if ! wait_for 10 _e2e_up; then
		diag "qscaled did not come up:" "$(tail -n 20 \
		    "$E2E_DIR/qscaled.out")" "$(tail -n 20 \
		    "$E2E_DIR/log/qscaled.log")" "last status: rc $(cat \
		    "$E2E_DIR/up.rc" 2>/dev/null)" "$(head -c 3000 \
		    "$E2E_DIR/up.json" 2>/dev/null)" "$(jq -e "$_E2E_UP" \
		    "$E2E_DIR/up.json" 2>&1)"
		return 1
	fi
	e2e_note_children
}

# Up: the control socket answers and every resource has a process.
_E2E_UP='(.resources | length) as $n | $n > 0 and
    ([.resources[] | select(.pid > 0)] | length) == $n'
_e2e_up() {
	ctl status -j >"$E2E_DIR/up.json" 2>&1
	_rc=$?
	echo "$_rc" >"$E2E_DIR/up.rc"
	# (jq -e is content with an empty input: the answer must be there)
	[ "$_rc" -eq 0 ] && [ -s "$E2E_DIR/up.json" ] &&
	    jq -e "$_E2E_UP" "$E2E_DIR/up.json" >/dev/null 2>&1
}

# Remember the worker processes, to be sure none outlives the test.
e2e_note_children() {
	[ -n "$QPID" ] || return 0
	E2E_PIDS="$E2E_PIDS $(pgrep -P "$QPID" | tr '\n' ' ')"
}

_e2e_gone() { ! kill -0 "$1" 2>/dev/null; }

e2e_stop() {
	[ -n "$QPID" ] || return 0
	e2e_note_children
	_kids=$(pgrep -P "$QPID" | tr '\n' ' ')
	kill -TERM "$QPID" 2>/dev/null
	wait_for 10 _e2e_gone "$QPID"
	# shellcheck disable=SC2086
	kill -KILL "$QPID" $_kids 2>/dev/null
	wait "$QPID" 2>/dev/null
	QPID=""
}

e2e_kill9() {
	e2e_note_children
	_kids=$(pgrep -P "$QPID" | tr '\n' ' ')
	# shellcheck disable=SC2086
	kill -KILL "$QPID" $_kids 2>/dev/null
	wait "$QPID" 2>/dev/null
	for _p in $_kids; do wait_for 5 _e2e_gone "$_p"; done
	QPID=""
}

e2e_stop_all() {
	e2e_stop
	for _p in $E2E_PIDS; do kill -KILL "$_p" 2>/dev/null; done
	return 0
}

# e2e_until SECS JQ: poll /sim/stats every 0.25 s.
e2e_until() {
	_end=$(($(date +%s%N) / 1000000 + $1 * 1000))
	while :; do
		sim_stats 2>/dev/null | jqt "$2" && return 0
		[ "$(($(date +%s%N) / 1000000))" -ge "$_end" ] && return 1
		sleep 0.25
	done
}

e2e_wait() {
	if e2e_until "$1" "$3"; then ok "$2"; else not_ok "$2 (not within $1 s)"; fi
}

# busy_in RESOURCE QUEUE: the instances that run a task of QUEUE in
# cloudsim and that qscale's last poll saw holding that task.
busy_in() {
	_qs=$(qs_status) || return 1
	sim_stats | jq -r --arg r "$1" --arg q "$2" --argjson qs "$_qs" '
	    [$qs.resources[] | select(.name == $r) | .worker.instances[]? |
	    select(.task != null and .task != "") | {id, task}] as $seen |
	    .tasks[] | select(.queue == $q and .status == "in_progress" and
	    .instance != null) | {id: .instance, task: .id} |
	    select(. as $b | $seen | index([$b])) | .id'
}

e2e_enqueue() {	# QUEUE COUNT DURATION NAME
	simctl enqueue "$1" --count "$2" --duration "$3" --name "$4"
}

# A ClearML API call as a user would make it (Basic auth, JSON body).
e2e_clearml() {	# ENDPOINT JSON
	curl -sf -u "$CLEARML_API_ACCESS_KEY:$CLEARML_API_SECRET_KEY" \
	    -H 'Content-Type: application/json' --data "$2" \
	    "$QSCALE_SIM_CLEARML_URL/$1"
}

e2e_starts() { grep -c "task-start .*task=$1" "$SIM_LOG"; }

# Every task finished and every instance terminated.
E2E_DONE='([.tasks[] | select(.status != "completed" and
    .status != "failed")] | length == 0) and (.tasks | length > 0) and
    .totals.instances_alive == 0'
# No overshoot: when each instance was launched, its resource had no
# more instances launched than tasks enqueued on its queue ($qmap: the
# queue of each resource, --argjson qmap '{"cpu": "q-cpu"}').
E2E_NO_OVERSHOOT='. as $s | all(.instances[]; . as $i |
    ([$s.instances[] | select(.resource == $i.resource and
    .launched <= $i.launched)] | length) <= ([$s.tasks[] |
    select(.queue == $qmap[$i.resource] and .enqueued <= $i.launched)] |
    length))'
E2E_TASKS_DONE='([.tasks[] | select(.status != "completed" and
    .status != "failed")] | length == 0) and (.tasks | length > 0)'

e2e_stats_diag() {
	_f=${1:-}
	if [ -z "$_f" ]; then
		_f=$E2E_DIR/stats-diag.json
		e2e_snap "$_f"
	fi
	jq -r '.totals |
	  "instance-seconds \(.instance_seconds)",
	  "task-seconds \(.task_seconds)",
	  "wait mean \(.mean_wait_s // "-") s, p95 \(.p95_wait_s // "-") s, max \(.max_wait_s // "-") s",
	  "launches \(.launches.calls) calls, \(.launches.instances) instances; terminations \(.terminations); interruptions \(.interruptions)"' \
	    "$_f" | sed 's/^/# /'
}

# e2e_log_times FILE REGEX: epoch seconds (with ms) of matching lines.
e2e_log_times() {
	[ -f "$1" ] || return 0
	jq -Rr --arg re "$2" 'select(test($re)) |
	    (.[0:19] + "Z" | fromdateiso8601) + (.[20:23] | tonumber) / 1000' \
	    "$1"
}

# Fail loudly on any secret in the scenario's logs and outputs.
e2e_no_secret() {
	check "no secret in the logs of $(basename "$E2E_DIR")" \
	    no_secret_in "$E2E_DIR/log" "$E2E_DIR/qscaled.out"
}

# jq -e alone is content with an empty input (a failed fetch): these
# want one JSON value and the test to hold on it.
#   sj [JQ ARGS] EXPR FILE      on a saved file
#   jqt EXPR [JQ ARGS]          on stdin
sj() {
	_sj_file=${*: -1}
	[ -s "$_sj_file" ] && jq -e "$@" >/dev/null
}
jqt() {
	_jqt_f=$1
	shift
	jq -en "$@" "input | ($_jqt_f)" >/dev/null 2>&1
}
