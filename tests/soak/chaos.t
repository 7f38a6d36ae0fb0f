#!/usr/bin/env bash
# Soak: chaos.  80 tasks in waves over a spot and an on-demand resource,
# under a global cap below the sum of the resources' caps, while a worker
# process is killed (kill -9) every ~10 s, the whole daemon twice (kill -9
# and a restart), and two busy spot instances are interrupted.  The
# invariants are read from cloudsim's event log afterwards (simlog.py):
# every task completed exactly once (the two interrupted ones re-queued
# once), never more than a resource's or the global cap alive, never a
# busy instance terminated, nothing left running.  A few minutes.
# qscale-test: serial
# shellcheck source-path=SCRIPTDIR disable=SC2016  # jq programs in quotes
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/e2e-lib.sh"

TASKS=80
CAP_SPOT=4
CAP_OD=4
CAP_TOTAL=5
CHAOS_SECONDS=${QSCALE_CHAOS_SECONDS:-120}
DEADLINE=${QSCALE_CHAOS_DEADLINE:-300}

# cloudsim's agents poll every 0.5 s and report every 2 s, given here:
# their defaults, those of a real clearml-agent (5 s, 30 s), would make
# this run much longer and qscale's view of a busy worker late.
e2e_sim_start --report-interval 2 --agent-poll 0.5 ||
    { not_ok "the simulated cloud starts"; exit 1; }
e2e_scenario chaos
SPOT="name = \"spot\"; queue = \"chaos-spot\"; instance_type = \"g4dn.xlarge\";
    spot = true; max_instances = $CAP_SPOT;"
OD="name = \"ondemand\"; queue = \"chaos-od\"; instance_type = \"c5.large\";
    max_instances = $CAP_OD;"
E2E_IDLE=3s E2E_EXTRA="max_instances_total = $CAP_TOTAL; max_requeues = 2;" \
    e2e_conf chaos "$SPOT" "$OD" || { not_ok "the configuration"; exit 1; }
simctl queue chaos-spot >/dev/null
simctl queue chaos-od >/dev/null
e2e_start || { not_ok "qscaled starts"; exit 1; }
ok "qscaled starts"

START=$(date +%s)
elapsed() { echo $(($(date +%s) - START)); }
pids_of_workers() { qs_status | jq -r '.resources[] | .pid // 0' | grep -v '^0$'; }
# Busy as cloudsim and as qscale see it: an instance that qscale has not
# yet seen running a task cannot have that task put back.
busy_spot() {
	busy_in spot chaos-spot | shuf -n 1 | grep .
}

# Four waves of 20 tasks (10 a queue), 15 s apart, of 2 to 5 s each: the
# fleet grows, drains and is idle-terminated between waves.
wave=0
enqueue_wave() {
	for q in chaos-spot chaos-od; do
		e2e_enqueue "$q" 5 $((2 + RANDOM % 4)) "w$wave-a" >/dev/null
		e2e_enqueue "$q" 5 $((2 + RANDOM % 4)) "w$wave-b" >/dev/null
	done
	wave=$((wave + 1))
}

worker_kills=0
daemon_kills=0
interrupts=0
next_wave=0
next_kill=8
next_interrupt=20
step=0
while [ "$(elapsed)" -lt "$CHAOS_SECONDS" ]; do
	if [ "$wave" -lt 4 ] && [ "$(elapsed)" -ge "$next_wave" ]; then
		enqueue_wave
		next_wave=$((next_wave + 15))
	fi
	if [ "$(elapsed)" -ge "$next_kill" ]; then
		step=$((step + 1))
		case $step in
		4 | 9)	# the whole daemon, then a restart
			e2e_kill9
			daemon_kills=$((daemon_kills + 1))
			diag "$(elapsed) s: killed the daemon (kill -9)"
			sleep 1
			e2e_start || { not_ok "qscaled restarts"; exit 1; }
			;;
		*)
			p=$(pids_of_workers | shuf -n 1)
			if [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; then
				worker_kills=$((worker_kills + 1))
				diag "$(elapsed) s: killed worker process $p"
			fi
			;;
		esac
		next_kill=$((next_kill + 8 + RANDOM % 5))
	fi
	# Between kills: a worker process killed a moment ago has not yet
	# reported what its instances run.
	if [ "$interrupts" -lt 2 ] && [ "$(elapsed)" -ge "$next_interrupt" ] &&
	    [ $((next_kill - $(elapsed))) -ge 2 ] && i=$(busy_spot); then
		simctl interrupt "$i" >/dev/null &&
		    interrupts=$((interrupts + 1))
		diag "$(elapsed) s: interrupted busy spot instance $i"
		next_interrupt=$(($(elapsed) + 25))
	fi
	sleep 0.5
done
check "$worker_kills worker processes killed (at least 8)" \
    test "$worker_kills" -ge 8
check "the daemon killed twice and restarted" test "$daemon_kills" -eq 2
check "two busy spot instances interrupted" test "$interrupts" -eq 2

left=$((DEADLINE - $(elapsed)))
e2e_wait "$left" "every task finished and every instance terminated" \
    "$E2E_DONE"
e2e_stop
S=$E2E_DIR/final.json
e2e_snap "$S"
e2e_stats_diag "$S"
diag "run took $(elapsed) s"

tap_from python3 "$QSCALE_TOP/tests/soak/simlog.py" --log "$SIM_LOG" \
    --queues chaos-spot,chaos-od --tasks "$TASKS" \
    --cap spot=$CAP_SPOT --cap ondemand=$CAP_OD --total $CAP_TOTAL \
    --requeues 1
check "cloudsim's totals agree: $TASKS tasks done, nothing alive" \
    sj --argjson n "$TASKS" '.totals.tasks_done == $n and
    .totals.instances_alive == 0' "$S"
e2e_no_secret
