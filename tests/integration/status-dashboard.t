#!/usr/bin/env bash
# The dashboard as a browser shows it, during a run: headless Chromium
# loads / from the real qscaled, the three plots get points, the table
# lists every resource, the console follows the log without a reload, and
# a screenshot is kept under build/test-artifacts/.  On the simulated cloud
# (tests/cloudsim) the run scales for real, and /metrics must agree with
# what the cloud itself counted (/sim/stats): launches, terminations,
# instances alive.
. "$(dirname "$0")/lib.sh"
CDP="$(dirname "$0")/status-cdp.py"
ART=$QSCALE_BUILD/test-artifacts
SHOT=$ART/status-dashboard.png
mkdir -p "$ART"
rm -f "$SHOT"

if ! command -v chromium >/dev/null 2>&1; then
	not_ok "chromium is installed (contrib/deps.sh installs it)"
	exit 1
fi

CLOUD=""
if [ -x "$QSCALE_TOP/tests/cloudsim/cloudsim" ] &&
    command -v moto_server >/dev/null 2>&1; then
	. "$QSCALE_TOP/tests/cloudsim/simlib.sh"
	# short agent timing, so that the instances go busy and idle
	# within the test's few seconds
	if start_cloudsim --boot-delay 2 --pending-delay 1 \
	    --report-interval 2 --agent-poll 1; then
		CLOUD=1
		ok "the simulated cloud is up"
	else
		not_ok "the simulated cloud starts"
		exit 1
	fi
fi

write_conf "$T/qscale.conf" gpu cpu
if [ -n "$CLOUD" ]; then
	subnets=""
	for s in $QSCALE_SIM_SUBNETS; do
		subnets="$subnets${subnets:+, }\"$s\""
	done
	# The same file, pointed at the simulated cloud, with short timers.
	python3 - "$T/qscale.conf" <<PY
import re, sys
p = sys.argv[1]
s = open(p).read()
s = s.replace('polling_interval = "1s";', 'polling_interval = "1s";\n'
              'max_idle_time = "4s";\nmax_spin_up_time = "60s";')
s = re.sub(r'api_server = "[^"]*"', 'api_server = "$QSCALE_SIM_CLEARML_URL"', s)
s = re.sub(r'\baccess_key = "[^"]*"', 'access_key = "$CLEARML_API_ACCESS_KEY"', s)
s = re.sub(r'\bsecret_key = "[^"]*"', 'secret_key = "$CLEARML_API_SECRET_KEY"', s)
s = re.sub(r'access_key_id = "[^"]*"', 'access_key_id = "$AWS_ACCESS_KEY_ID"', s)
s = re.sub(r'secret_access_key = "[^"]*"',
           'secret_access_key = "$AWS_SECRET_ACCESS_KEY"', s)
s = re.sub(r'region = "[^"]*"', 'region = "$AWS_REGION"', s)
s = re.sub(r'endpoint = "[^"]*"', 'endpoint = "$QSCALE_SIM_EC2_URL"', s)
s = re.sub(r'ami = "[^"]*"; max_instances = 2;',
           'ami = "$QSCALE_SIM_AMI"; max_instances = 3; '
           'subnets = [ $subnets ]; '
           'security_groups = [ "$QSCALE_SIM_SECURITY_GROUP" ];', s)
s = s.replace('{ name = "gpu"; queue = "q-gpu"; instance_type = "t3.micro";',
              '{ name = "gpu"; queue = "q-gpu"; instance_type = "g4dn.xlarge"; '
              'spot = true; spot_rollback_timeout = "20s";')
open(p, "w").write(s)
PY
	simctl queue q-gpu >/dev/null && simctl queue q-cpu >/dev/null
	SECRETS="$SECRETS $CLEARML_API_SECRET_KEY $AWS_SECRET_ACCESS_KEY"
fi
PORT=$(sed -n 's/.*listen = "[^"]*:\([0-9]*\)".*/\1/p' "$T/qscale.conf")
URL=http://127.0.0.1:$PORT
start_qscaled "$T/qscale.conf" || { not_ok "qscaled starts"; exit 1; }
check "the status server answers" wait_for 10 curl -sf -o /dev/null "$URL/"

if [ -n "$CLOUD" ]; then
	simctl enqueue q-cpu --count 4 --duration 5 --name dash-cpu >/dev/null
	simctl enqueue q-gpu --count 2 --duration 5 --name dash-gpu >/dev/null
	launched() {
		curl -sf "$URL/api/series?range=300" |
		    jq -en 'input | [.global.in_use[] | values] | max > 0' >/dev/null
	}
	check "tasks in the queues bring instances up" wait_for 30 launched
	# While they run, the gauges say what the cloud says (qscale sees
	# it a poll late, so the two agree within a few polls).
	msum() { awk -v rx="$1" '$1 ~ rx { s += $2 } END { print s + 0 }' \
	    "$T/live-metrics.txt"; }
	gauges_match() {
		curl -sf "$URL/metrics" >"$T/live-metrics.txt" &&
		    simctl stats >"$T/live-sim.json" || return 1
		gm="$(msum '^qscale_instances[{].*state="(pending|running)"') $(msum '^qscale_queue_pending[{]') $(msum '^qscale_workers[{].*state="busy"')"
		gs="$(jq -r '[.totals.instances_alive, ([.queues[]] | add),
		    ([.tasks[] | select(.status == "in_progress")] | length)] |
		    map(tostring) | join(" ")' "$T/live-sim.json")"
		echo "$gm / $gs" >>"$T/gauges.txt"
		[ "$gm" = "$gs" ] && [ "${gm%% *}" -gt 0 ]
	}
	check "mid-run, /metrics has the cloud's live instances, queued tasks and busy workers" \
	    wait_for 15 gauges_match
	diag "/metrics / the cloud (live, queued, busy): $(tail -n 1 "$T/gauges.txt")"
fi

python3 "$CDP" "$URL/" "$SHOT" 2 \
    "'$QSCALECTL' -s '$T/run/control.socket' log-level info" \
    'INFO qscaled: log level set to INFO everywhere' >"$T/cdp.json"
rc=$?
check "Chromium loads the dashboard over the DevTools protocol (rc $rc)" \
    sh -c "[ $rc -eq 0 ] && jq -e '.error | not' '$T/cdp.json' >/dev/null"
jq -r '.error // empty' "$T/cdp.json" | sed 's/^/# /'
cdp() { jq -e "$1" "$T/cdp.json" >/dev/null; }
check "the page comes up with data: points in every plot, every row" \
    cdp '.loaded == true'
check "the instances plot has the total, each resource and the cap" \
    cdp '.first.series[0] == 3'
check "the idle-workers and queue plots have a line per resource" \
    cdp '.first.series[1] == 2 and .first.series[2] == 2'
check "the table lists the resources" cdp '.first.names == ["gpu", "cpu"]'
check "the console shows the log's last lines" cdp '.first.log_count > 0'
check "the console follows the log without a reload" \
    cdp '.log_updated == true and .last.log_updates > .updates_before'
check "the page never lost qscaled" cdp '.last.disconnected == false'
check "no script error on the page" cdp '.console == []'
[ "$(jq '.console | length' "$T/cdp.json")" = 0 ] ||
    jq -r '.console[]' "$T/cdp.json" | sed 's/^/# /'
check "a screenshot is kept" test -s "$SHOT"
diag "screenshot: $SHOT"
jq -r '.first.page_text // empty, .last.page_text // empty' "$T/cdp.json" \
    >"$T/page-text.txt"
check "the whole page's text was read (its log among it)" \
    grep -q 'qscaled: status server on' "$T/page-text.txt"
check "no secret anywhere on the page" no_secret_in "$T/page-text.txt"

if [ -z "$CLOUD" ]; then
	echo "ok $((_tap_n + 1)) - # SKIP /metrics against /sim/stats: tests/cloudsim/cloudsim or moto_server is absent"
	_tap_n=$((_tap_n + 1))
	exit 0
fi

check "the instances plot drew instances running" cdp '.first.max[0] > 0'
check "the queue plot drew the waiting tasks" cdp '.first.max[2] > 0 or .last.max[2] > 0'
drained() {
	simctl stats | jq -en 'input |
	    ([.tasks[] | select(.status != "completed")] | length == 0) and
	    ([.instances[] | select(.terminated == null)] | length == 0)' \
	    >/dev/null
}
check "every task runs and every idle instance is terminated" \
    wait_for 45 drained
sleep 2	# one more poll: the snapshots see the end too
simctl stats >"$T/sim.json"
curl -sf "$URL/metrics" >"$T/metrics.txt"
sum() { awk -v rx="$1" '$1 ~ rx { s += $2 } END { print s + 0 }' "$T/metrics.txt"; }
m=$(sum '^qscale_launched_instances_total[{]')
s=$(jq '.totals.launches.instances' "$T/sim.json")
check "instances launched: /metrics $m, the cloud $s" test "$m" = "$s" -a "$m" -gt 0
for r in gpu cpu; do
	for mk in spot on-demand; do
		m=$(sum "^qscale_launched_instances_total[{]resource=\"$r\",market=\"$mk\"")
		s=$(jq --arg r "$r" --arg m "$mk" '[.instances[] |
		    select(.resource == $r and .market == $m)] | length' "$T/sim.json")
		check "$r $mk instances launched: /metrics $m, the cloud $s" \
		    test "$m" = "$s"
	done
done
# The cloud's count of RunInstances that answered 200 (failed calls, or
# ones retried after a throttle, are counted apart on both sides).
m=$(sum '^qscale_launches_total[{].*result="ok"')
s=$(jq '.totals.ec2_calls.RunInstances | .calls - .errors' "$T/sim.json")
[ "$m" = "$s" ] || diag "the cloud's RunInstances: $(jq -c '.totals.ec2_calls.RunInstances' "$T/sim.json")"
check "RunInstances calls that launched: /metrics $m, the cloud $s" test "$m" = "$s"
m=$(sum '^qscale_api_calls_total[{].*api="ec2",action="RunInstances"')
s=$(jq '.totals.ec2_calls.RunInstances.calls // 0' "$T/sim.json")
check "RunInstances requests: /metrics $m, the cloud $s" test "$m" = "$s"
m=$(sum '^qscale_terminations_total[{]')
s=$(jq '.totals.terminations' "$T/sim.json")
check "instances terminated: /metrics $m, the cloud $s" test "$m" = "$s" -a "$m" -gt 0
m=$(sum '^qscale_terminations_total[{].*reason="idle"')
check "every one of them for being idle ($m)" test "$m" = "$s"
m=$(sum '^qscale_instances[{].*state="(pending|running)"')
s=$(jq '.totals.instances_alive' "$T/sim.json")
check "instances alive now: /metrics $m, the cloud $s" test "$m" = "$s"
check "nothing pending in the queues any more" \
    test "$(sum '^qscale_queue_pending[{]')" = 0
m=$(sum '^qscale_instance_seconds_total[{]')
s=$(jq '.totals.instance_seconds' "$T/sim.json")
# qscale counts from what it observes, a poll at a time: within a few
# polls' worth of the cloud's exact figure
check "instance-seconds: /metrics $m, the cloud $s" \
    awk -v m="$m" -v s="$s" 'BEGIN { d = m - s; if (d < 0) d = -d;
	exit !(m > 0 && d <= 0.25 * s + 10) }'

# After a real run, /metrics passes promtool and has every family.
promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || diag "promtool: $(cat "$T/promtool.out")"
check "promtool check metrics accepts /metrics after the run (rc $rc)" \
    test "$rc" -eq 0
missing=""
for f in qscale_instances qscale_queue_pending \
    qscale_queue_oldest_wait_seconds qscale_workers \
    qscale_instances_booting qscale_max_instances \
    qscale_global_max_instances qscale_launches_total \
    qscale_launched_instances_total qscale_terminations_total \
    qscale_requeues_total qscale_api_calls_total qscale_api_errors_total \
    qscale_api_retries_total qscale_api_latency_seconds_bucket \
    qscale_api_latency_seconds_sum qscale_api_latency_seconds_count \
    qscale_child_restarts_total qscale_child_up qscale_polls_total \
    qscale_last_poll_timestamp_seconds qscale_spot_blackout_active \
    qscale_instance_seconds_total qscale_duplicate_tasks_total; do
	grep -qE "^$f([{ ]|$)" "$T/metrics.txt" || missing="$missing $f"
done
check "every metric family has samples after the run${missing:+ (missing:$missing)}" \
    test -z "$missing"
for want in 'qscale_instances{resource="gpu",state="running",market="spot"}' \
    'qscale_workers{resource="cpu",state="idle"}' \
    'qscale_api_calls_total{resource="gpu",api="clearml",action="workers.get_all"}' \
    'qscale_api_calls_total{resource="cpu",api="ec2",action="TerminateInstances"}'; do
	check "a sample of $want" grep -qF "$want" "$T/metrics.txt"
done
stop_qscaled
check "no secret in the logs" no_secret_in "$T/log"
