#!/usr/bin/env bash
# qscaled with clearml.report = true against cloudsim's ClearML server,
# read back as a user of the web UI would: the task in its project,
# scalars per resource with increasing iterations, the console lines; a
# ClearML outage that stalls neither the daemon nor its worker processes,
# logged once, with reporting resuming after it; a restart that reuses
# the task and goes on counting; reloads that move reporting to another
# task or turn it off, stopping the old task; no secret in any event.
. "$(dirname "$0")/lib.sh"
. "$QSCALE_TOP/tests/cloudsim/simlib.sh"

if ! start_cloudsim --no-ec2; then
	not_ok "cloudsim --no-ec2 starts"
	exit 1
fi
URL=$QSCALE_SIM_CLEARML_URL
KEY=$CLEARML_API_ACCESS_KEY
SECRET=$CLEARML_API_SECRET_KEY
MY_SECRETS="$SECRET aws-SECRET-value-2 git-SECRET-value-3 agent-SECRET-value-4"

# api ENDPOINT JSON: a call with the user's credentials; prints data.
api() {
	curl -sf -u "$KEY:$SECRET" -H 'Content-Type: application/json' \
	    -d "$2" "$URL/$1" | jq -c '.data'
}
events() { curl -sf "$QSCALE_SIM_ADMIN_URL/events?task=$TASK" >"$T/events.json"; }
# iters METRIC VARIANT: the iterations of one series, in arrival order.
iters() {
	jq -c --arg m "$1" --arg v "$2" '[.events[] |
	    select(.type == "training_stats_scalar" and .metric == $m and
	    .variant == $v) | .iter]' "$T/events.json"
}
max_iter() {
	jq '[.events[] | select(.type == "training_stats_scalar") | .iter] |
	    max // 0' "$T/events.json"
}
log_has() {
	jq -e --arg s "$1" '[.events[] | select(.type == "log") |
	    select(.msg | contains($s))] | length > 0' "$T/events.json" >/dev/null
}
value() {
	jq --arg m "$1" --arg v "$2" '[.events[] |
	    select(.type == "training_stats_scalar" and .metric == $m and
	    .variant == $v) | .value] | last' "$T/events.json"
}

simctl queue q-gpu >/dev/null
simctl queue q-cpu >/dev/null
simctl enqueue q-gpu --count 3 --duration 600 >/dev/null

cat >"$T/qscale.conf" <<CONF
name = "rtest";
workers_prefix = "qrtest";
polling_interval = "1s";
log_dir = "$T/log";
pid_file = "$T/run/qscaled.pid";
control = { socket = "$T/run/control.socket"; };
status = { listen = "127.0.0.1:$(free_port)"; };
max_instances_total = 5;
clearml = {
  api_server = "$URL";
  access_key = "$KEY";
  secret_key = "$SECRET";
  request_timeout = "3s";
  report = true;
  files_server = "$URL/files";
  report_logs_interval = "15s";
};
aws = {
  region = "us-east-1";
  access_key_id = "AKIATESTKEY";
  secret_access_key = "aws-SECRET-value-2";
  endpoint = "http://127.0.0.1:9";
  max_attempts = 1;
};
git = { user = "bot"; password = "git-SECRET-value-3"; };
agent = { access_key = "AGENTKEY"; secret_key = "agent-SECRET-value-4"; };
resources = (
  { name = "gpu"; queue = "q-gpu"; instance_type = "g4dn.xlarge"; ami = "ami-12345678"; max_instances = 2; },
  { name = "cpu"; queue = "q-cpu"; instance_type = "t3.micro"; ami = "ami-12345678"; max_instances = 4; }
);
CONF
chmod 600 "$T/qscale.conf"

start_qscaled "$T/qscale.conf" || { not_ok "qscaled starts"; exit 1; }
ok "qscaled starts with clearml.report = true"

# --- the task -----------------------------------------------------------
project_id() {
	api projects.get_all '{"name": "^DevOps$"}' |
	    jq -r '[.projects[] | select(.name == "DevOps") | .id] | if length == 1 then .[0] else empty end'
}
has_project() { [ -n "$(project_id)" ]; }
check "the project DevOps is created" wait_for 10 has_project
PROJECT=$(project_id)
task_of() {
	api tasks.get_all "{\"project\": [\"$PROJECT\"], \"name\": \"^qscale rtest\$\", \"only_fields\": [\"id\", \"name\", \"type\", \"status\", \"comment\", \"last_iteration\"]}" |
	    jq -c '[.tasks[] | select(.name == "qscale rtest")]'
}
task_running() { [ "$(task_of | jq -r '.[0].status // empty')" = in_progress ]; }
check "the task \"qscale rtest\" is in it, in progress" wait_for 10 task_running
task_of >"$T/task.json"
TASK=$(jq -r '.[0].id' "$T/task.json")
check "exactly one such task" test "$(jq length "$T/task.json")" -eq 1
check "it is an application task" \
    test "$(jq -r '.[0].type' "$T/task.json")" = application
comment_ok() {
	jq -e --arg c "$T/qscale.conf" '.[0].comment | contains("qscale 0.") and contains($c)' \
	    "$T/task.json" >/dev/null
}
check "its comment names the version and the configuration file" comment_ok
check "qscalectl status shows the task it reports to" \
    test "$(ctl status -j | jq -r '.report.task')" = "$TASK"

# --- scalars and console ------------------------------------------------
two_iters() {
	events
	for r in gpu cpu; do
		[ "$(iters "queue length" $r | jq 'unique | length')" -ge 2 ] || return 1
	done
}
t0=$(date +%s)
check "scalars arrive for each resource in two intervals" wait_for 30 two_iters
diag "two intervals after $(($(date +%s) - t0)) s"
increasing() {
	for m in "queue length" "idle workers" "busy workers" "instances" "booting"; do
		for r in gpu cpu; do
			jq -e '. == (. | sort) and (. | length) == (. | unique | length) and length >= 2' \
			    <<<"$(iters "$m" $r)" >/dev/null || { diag "$m/$r: $(iters "$m" $r)"; return 1; }
		done
	done
}
check "every series has strictly increasing iterations" increasing
check "the queue length of gpu is the 3 tasks waiting" \
    test "$(value "queue length" gpu)" = 3
check "instances allowed per resource, and the global cap" \
    test "$(value instances "gpu allowed") $(value instances "cpu allowed") $(value "instances total" cap)" = "2 4 5"
check "the start of qscaled is in the console" \
    log_has "qscaled 0.1.0 started (pid $SUP_PID)"
check "the worker processes' lines are in the console" \
    log_has "INFO gpu: started worker process"
log_fields() {
	jq -e '[.events[] | select(.type == "log") |
	    select((.level | type) != "string" or (.timestamp | type) != "number")] |
	    length == 0' "$T/events.json" >/dev/null
}
check "every log event carries a level and a timestamp" log_fields

# a reload that leaves ClearML alone keeps reporting to the same task
kill -HUP "$SUP_PID"
reloaded() { events; log_has "configuration reloaded"; }
check "after a reload, its line reaches the same task" wait_for 20 reloaded

# --- the log level as a user property of the task, as in the app --------
props() {
	api tasks.get_hyper_params "{\"tasks\": [\"$TASK\"]}" |
	    jq -c '[.params[0].hyperparams[] | select(.section == "properties") | {(.name): .value}] | add // {}'
}
published() { props | jq -e '.log_level == "info" and ."log_level.gpu" == "info" and ."log_level.cpu" == "info"' >/dev/null; }
check "the levels in force are the task's user properties" \
    wait_for 25 published
api tasks.edit_hyper_params "{\"task\": \"$TASK\", \"hyperparams\": [{\"section\": \"properties\", \"name\": \"log_level.gpu\", \"value\": \"DEBUG\"}]}" >/dev/null
gpu_level() { ctl status -j | jq -r '.resources[] | select(.name == "gpu") | .log_level'; }
is_gpu_debug() { [ "$(gpu_level)" = DEBUG ]; }
check "log_level.gpu = DEBUG set in the UI reaches gpu within an interval" \
    wait_for 15 is_gpu_debug
check "... says so in the log" \
    grep -q "log level of gpu set to DEBUG by the ClearML task's user property log_level.gpu" "$T/log/qscaled.log"
check "... and cpu keeps its level" \
    test "$(ctl status -j | jq -r '.resources[] | select(.name == "cpu") | .log_level')" = INFO
check "gpu's debug lines follow" \
    wait_for 5 grep -q "DEBUG gpu: " "$T/log/gpu.log"
ctl log-level warn cpu >/dev/null
cpu_shown() { props | jq -e '."log_level.cpu" == "warn"' >/dev/null; }
check "a level set with qscalectl is shown in the task" wait_for 15 cpu_shown
api tasks.edit_hyper_params "{\"task\": \"$TASK\", \"hyperparams\": [{\"section\": \"properties\", \"name\": \"log_level\", \"value\": \"info\"}, {\"section\": \"properties\", \"name\": \"log_level.gpu\", \"value\": \"info\"}, {\"section\": \"properties\", \"name\": \"log_level.cpu\", \"value\": \"info\"}]}" >/dev/null
all_info() { [ "$(ctl status -j | jq -r '[.resources[].log_level] | unique | join(" ")')" = INFO ]; }
check "log_level = info everywhere, back from the UI" wait_for 15 all_info

# --- an outage ----------------------------------------------------------
# Start it so that the next interval falls inside: the batches come
# every 10 s after the last one.
events
last_ts=$(jq '[.events[] | select(.type == "training_stats_scalar") | .timestamp] | max' "$T/events.json")
wait_ms=$((last_ts + 6000 - $(date +%s%3N)))
[ "$wait_ms" -gt 0 ] && sleep "$(awk "BEGIN { print $wait_ms / 1000 }")"
before_iter=$(max_iter)
polls() { ctl status -j | jq '[.resources[].worker.polls] | add'; }
polls0=$(polls)
simctl clearml-fault down 8 >/dev/null
fault_start=$(date +%s%3N)
slowest=0
while [ $(($(date +%s%3N) - fault_start)) -lt 7500 ]; do
	s=$(date +%s%3N)
	ctl status -j >/dev/null || slowest=99999
	d=$(($(date +%s%3N) - s))
	[ "$d" -gt "$slowest" ] && slowest=$d
	sleep 0.5
done
polls1=$(polls)
check "qscalectl status answers promptly during the outage (slowest ${slowest} ms)" \
    test "$slowest" -lt 1000
check "the worker processes keep polling during the outage ($polls0 -> $polls1)" \
    test "$polls1" -gt "$polls0"
check "the failed batch is logged" \
    wait_for 10 grep -q "ClearML reporting: events.add_batch failed" "$T/log/qscaled.log"
resumed() { events; [ "$(max_iter)" -gt "$before_iter" ] && log_has "ClearML reporting works again"; }
check "reporting resumes after the outage" wait_for 30 resumed
check "what was logged during the outage arrives after it" \
    log_has "ClearML reporting: events.add_batch failed"
check "the failure is logged once, not once per attempt" \
    test "$(grep -c "ClearML reporting: events.add_batch failed" "$T/log/qscaled.log")" -eq 1
check "and its end once" \
    test "$(grep -c "ClearML reporting works again" "$T/log/qscaled.log")" -eq 1
resumed_at=$(grep "ClearML reporting works again" "$T/log/qscaled.log" | head -n 1 | cut -d' ' -f1)
late_ms=$(($(date -d "$resumed_at" +%s%3N) - fault_start - 8000))
check "it resumes within seconds of the server's return, not an interval later (${late_ms} ms)" \
    test "$late_ms" -lt 5000
check "no interval lost its scalars to the outage" \
    test "$(iters "queue length" gpu | jq '(max - min + 1) == length')" = true

# --- a restart ----------------------------------------------------------
uploads() { curl -sf "$QSCALE_SIM_ADMIN_URL/files" | jq '.uploads | length'; }
some_uploads() { [ "$(uploads)" -ge 3 ]; }
check "while running, the logs are uploaded every report_logs_interval" \
    wait_for 30 some_uploads
before_stop=$(uploads)
stop_qscaled
task_of >"$T/task.json"
check "a graceful stop marks the task stopped" \
    test "$(jq -r '.[0].status' "$T/task.json")" = stopped

# --- the log files as the task's artifacts, uploaded at the stop --------
curl -sf "$QSCALE_SIM_ADMIN_URL/files" >"$T/files.json"
api tasks.get_by_id "{\"task\": \"$TASK\"}" | jq -c '.task.execution.artifacts // []' >"$T/arts.json"
diag "artifacts: $(jq -c '[.[] | {key, uri, content_size}]' "$T/arts.json")"
check "the stop uploads them once more ($before_stop uploads before)" \
    test "$(jq '.uploads | length' "$T/files.json")" -eq $((before_stop + 3))
check "the stop uploads qscaled.log, gpu.log and cpu.log to the files server" \
    test "$(jq -r '[.files[].path | split("/") | last] | sort | join(" ")' "$T/files.json")" = "cpu.log gpu.log qscaled.log"
check "... with the API server's token" \
    jq -e '[.files[].auth] | all' "$T/files.json"
check "... where the SDK puts a task's artifacts" \
    jq -e --arg t "$TASK" '[.files[].path | startswith("DevOps/qscale_rtest." + $t + "/artifacts/")] | all' "$T/files.json"
check "the task lists them as artifacts, before it was marked stopped" \
    test "$(jq -r '[.[] | select(.mode == "output" and .type == "custom") | .key] | sort | join(" ")' "$T/arts.json")" = "cpu.log gpu.log qscaled.log"
uri=$(jq -r '.[] | select(.key == "qscaled.log") | .uri' "$T/arts.json")
curl -sf "$uri" -o "$T/qscaled-artifact.log"
check "qscaled.log downloads from its artifact's link" test -s "$T/qscaled-artifact.log"
check "... with the stop in it" grep -q "stopping: SIGTERM" "$T/qscaled-artifact.log"
check "... its size and hash as recorded" \
    test "$(jq -r '.[] | select(.key == "qscaled.log") | "\(.content_size) \(.hash)"' "$T/arts.json")" = \
    "$(stat -c %s "$T/qscaled-artifact.log") $(sha256sum "$T/qscaled-artifact.log" | cut -d' ' -f1)"
events
check "the stop is in the console" log_has "stopping: SIGTERM"
old_max=$(max_iter)
check "the task's last iteration is the last one sent ($old_max)" \
    test "$(jq -r '.[0].last_iteration' "$T/task.json")" = "$old_max"
start_qscaled "$T/qscale.conf" || { not_ok "qscaled starts again"; exit 1; }
more() { events; [ "$(max_iter)" -gt "$old_max" ]; }
check "after a restart, scalars arrive again" wait_for 20 more
task_of >"$T/task.json"
check "the same task is reused" \
    test "$(jq -r 'length, .[0].id' "$T/task.json" | tr '\n' ' ')" = "1 $TASK "
check "and it is in progress again" \
    test "$(jq -r '.[0].status' "$T/task.json")" = in_progress
check "its iterations go on from where they were ($old_max + 1)" \
    test "$(iters "queue length" gpu | jq --argjson o "$old_max" '[.[] | select(. > $o)] | min')" -eq $((old_max + 1))
check "the second start is in the console" \
    log_has "qscaled 0.1.0 started (pid $SUP_PID)"

# --- a reload that names another task, then one that turns reporting off --
task_named() {	# NAME: its status and reason
	api tasks.get_all "{\"project\": [\"$PROJECT\"], \"name\": \"^$1\$\", \"only_fields\": [\"id\", \"name\", \"status\", \"status_reason\"]}" |
	    jq -r --arg n "$1" '[.tasks[] | select(.name == $n)] | .[0] |
	    if . == null then empty else "\(.status) \(.status_reason)" end'
}
is_stopped() { [ "$(task_named "$1")" = "stopped $2" ]; }
is_running() { task_named "$1" | grep -q '^in_progress '; }
events
before_iter=$(max_iter)
sed -i 's/^  report = true;/  report = true; report_name = "qscale rtest2";/' "$T/qscale.conf"
kill -HUP "$SUP_PID"
check "a reload to another task name marks the old task stopped" \
    wait_for 10 is_stopped "qscale rtest" "reporting elsewhere"
check "... without a stop of qscaled: its pid is the same" \
    kill -0 "$SUP_PID"
check "the new task is created and in progress" \
    wait_for 10 is_running "qscale rtest2"
TASK2=$(api tasks.get_all "{\"project\": [\"$PROJECT\"], \"name\": \"^qscale rtest2\$\", \"only_fields\": [\"id\"]}" | jq -r '.tasks[0].id')
events2() { curl -sf "$QSCALE_SIM_ADMIN_URL/events?task=$TASK2" >"$T/events.json"; }
more2() { events2; [ "$(max_iter)" -gt "$before_iter" ]; }
check "scalars reach the new task, their iterations going on" \
    wait_for 20 more2
check "the old task's last lines and the reload are in the new one" \
    log_has "marking task $TASK stopped (reporting elsewhere)"
check "the log says the old task is stopped" \
    grep -q "ClearML reporting: task $TASK marked stopped" "$T/log/qscaled.log"
sed -i 's/^  report = true; report_name/  report = false; report_name/' "$T/qscale.conf"
kill -HUP "$SUP_PID"
check "a reload with report = false marks the task stopped" \
    wait_for 10 is_stopped "qscale rtest2" "reporting turned off"
check "the log says reporting is off" \
    grep -q "ClearML reporting turned off" "$T/log/qscaled.log"
check "qscalectl status shows no reporting any more" \
    test "$(ctl status -j | jq -r '.report // "none"')" = none
curl -sf "$QSCALE_SIM_ADMIN_URL/events?task=$TASK" >"$T/events1.json"
events2

# --- secrets ------------------------------------------------------------
no_secret() {
	for s in $MY_SECRETS; do
		if grep -qF -- "$s" "$@"; then diag "a secret in $*"; return 1; fi
	done
	if grep -q 'eyJ' "$@"; then diag "a JWT in $*"; return 1; fi
	return 0
}
check "no secret and no token in any event" \
    no_secret "$T/events.json" "$T/events1.json"
check "no secret and no token in any log" no_secret "$T/log"/*.log "$T/qscaled.out"
check "no secret and no token in the uploaded logs" no_secret "$T/qscaled-artifact.log"
