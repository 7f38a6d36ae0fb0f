#!/usr/bin/env bash
# make demo: qscale against a local simulated cloud (tests/cloudsim): a
# fake ClearML server with simulated agents, and EC2 (moto behind a front
# that adds capacity, a pending phase and spot interruptions).  Two
# resources: "cpu" on-demand and "gpu" on spot, each on its own queue.
# A burst of demo tasks is enqueued and the scaling is shown live.
#
#   tests/demo.sh BUILD_DIR            interactive, until Ctrl-C
#   DEMO_SECONDS=N tests/demo.sh ...   N seconds, then a summary; exits 0
#                                      only if every demo task completed
#                                      and every instance is gone again
set -u

build=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
seconds=${DEMO_SECONDS:-}
sim=$top/tests/cloudsim/cloudsim
simctl=$top/tests/cloudsim/simctl

if [ ! -x "$sim" ]; then
	echo "demo: tests/cloudsim/cloudsim is missing; the simulated cloud" \
	    "has not landed in this tree yet" >&2
	exit 1
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/qscale-demo.XXXXXX")
chmod 700 "$D"
pids=""

# shellcheck disable=SC2317
cleanup() {
	trap - EXIT INT TERM
	for p in $pids; do kill -TERM "$p" 2>/dev/null; done
	for p in $pids; do
		for _ in $(seq 1 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	if [ -n "${KEEP_DEMO_DIR:-}" ]; then
		echo "demo: kept $D"
	else
		rm -rf "$D"
	fi
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 130' INT TERM

# four free ports outside the kernel's ephemeral range
port_base=$("$sim" --free-port-base) || exit 1

echo "demo: starting the simulated cloud on 127.0.0.1:$port_base..."
"$sim" --port-base "$port_base" --env-file "$D/sim.env" \
    --boot-delay 2 --pending-delay 2 --report-interval 5 --agent-poll 1 \
    --log "$D/cloudsim.log" >"$D/cloudsim.out" 2>&1 &
pids="$!"
for _ in $(seq 1 300); do
	[ -s "$D/sim.env" ] && break
	if ! kill -0 "$pids" 2>/dev/null; then
		echo "demo: the simulated cloud failed to start:" >&2
		tail -n 20 "$D/cloudsim.out" >&2
		exit 1
	fi
	sleep 0.1
done
[ -s "$D/sim.env" ] || { echo "demo: the simulated cloud did not come up" >&2; exit 1; }
# shellcheck disable=SC1091
. "$D/sim.env"

subnets=""
for s in $QSCALE_SIM_SUBNETS; do subnets="$subnets${subnets:+, }\"$s\""; done
status_port=$((port_base + 3))
cat >"$D/qscale.conf" <<EOF
# The demo's configuration: see etc/qscale.conf.example for every key.
name = "demo";
workers_prefix = "qdemo";
polling_interval = "2s";
max_idle_time = "10s";
max_spin_up_time = "60s";
log_dir = "$D/log";
pid_file = "$D/run/qscaled.pid";
control = { socket = "$D/run/control.socket"; };
status = { listen = "127.0.0.1:$status_port"; };
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
};
resources = (
  { name = "cpu"; queue = "demo-cpu"; instance_type = "c5.large";
    ami = "$QSCALE_SIM_AMI"; max_instances = 4;
    subnets = [ $subnets ];
    security_groups = [ "$QSCALE_SIM_SECURITY_GROUP" ];
    tags = { team = "demo"; }; },
  { name = "gpu"; queue = "demo-gpu"; instance_type = "g4dn.xlarge";
    ami = "$QSCALE_SIM_AMI"; max_instances = 3; spot = true;
    spot_rollback_timeout = "20s";
    subnets = [ $subnets ];
    security_groups = [ "$QSCALE_SIM_SECURITY_GROUP" ];
    tags = { team = "demo"; }; }
);
EOF
chmod 600 "$D/qscale.conf"

if ! "$build/qscaled" -n -c "$D/qscale.conf" >/dev/null; then
	"$build/qscaled" -n -c "$D/qscale.conf"
	exit 1
fi
"$build/qscaled" -f -c "$D/qscale.conf" >"$D/qscaled.out" 2>&1 &
qpid=$!
pids="$qpid $pids"
ctl() { "$build/qscalectl" -s "$D/run/control.socket" "$@"; }
for _ in $(seq 1 100); do
	ctl status >/dev/null 2>&1 && break
	sleep 0.1
done
echo "demo: qscaled runs (pid $qpid); dashboard: http://127.0.0.1:$status_port/"

"$simctl" --env-file "$D/sim.env" enqueue demo-cpu --count 8 \
    --duration 6 --name demo-cpu >/dev/null || exit 1
"$simctl" --env-file "$D/sim.env" enqueue demo-gpu --count 5 \
    --duration 8 --name demo-gpu >/dev/null || exit 1
echo "demo: enqueued 8 tasks on demo-cpu and 5 on demo-gpu"
echo

# One line per resource every 2 s: what qscalectl status shows.
show() {
	ctl status -j 2>/dev/null | jq -r '
	  .resources[] | .worker as $w |
	  "\(.name | .[0:6] | . + "      " | .[0:6]) queue \($w.counts.pending // 0 | tostring | . + "  " | .[0:3]) instances \($w.counts.live // 0)/\(.max_instances) (spot \($w.counts.spot // 0), on-demand \($w.counts.on_demand // 0)) idle \($w.counts.idle // 0) busy \($w.counts.busy // 0) booting \($w.counts.booting // 0)  \($w.state // .state)"'
}

all_done() {
	"$simctl" --env-file "$D/sim.env" stats 2>/dev/null | jq -e '
	  ([.tasks[] | select(.status != "completed" and .status != "failed")]
	   | length == 0) and
	  ([.instances[] | select(.terminated == null)] | length == 0)' \
	    >/dev/null 2>&1
}

start=$(date +%s)
while :; do
	printf '%s\n' "--- $(( $(date +%s) - start ))s"
	show
	if [ -n "$seconds" ]; then
		[ $(( $(date +%s) - start )) -ge "$seconds" ] && break
		all_done && [ $(( $(date +%s) - start )) -ge 20 ] && break
	fi
	sleep 2
done
# qscale's own view comes a poll after the cloud's: show it caught up
none_live() {
	ctl status -j 2>/dev/null | jq -e 'all(.resources[];
	    (.worker.counts.live // 0) == 0)' >/dev/null 2>&1
}
if all_done; then
	for _ in $(seq 1 50); do none_live && break; sleep 0.2; done
	printf '%s\n' "--- $(( $(date +%s) - start ))s"
	show
fi

echo
"$simctl" --env-file "$D/sim.env" stats >"$D/stats.json"
jq -r '"summary: \(.totals.tasks_done) tasks done, \(.totals.tasks_failed) failed, of \(.tasks | length); \(.totals.launches.instances // ([.instances[]] | length)) instances launched, \([.instances[] | select(.terminated != null)] | length) terminated; \(.totals.instance_seconds | floor) instance-seconds for \(.totals.task_seconds | floor) task-seconds; mean wait \(.totals.mean_wait_s * 10 | floor / 10)s, p95 \(.totals.p95_wait_s * 10 | floor / 10)s"' "$D/stats.json"
if jq -e '([.tasks[] | select(.status != "completed")] | length == 0) and
    ([.instances[] | select(.terminated == null)] | length == 0)' \
    "$D/stats.json" >/dev/null; then
	echo "demo: every task completed and every instance is gone"
	exit 0
fi
echo "demo: not every task completed, or instances are still running" >&2
exit 1
