#!/usr/bin/env bash
# Soak: hostile endpoints.  A proxy (tests/helpers/hostile_proxy.py) in
# front of cloudsim's ClearML server and of its EC2 front corrupts every
# answer for a minute: garbage, truncated, cut connections, 100 MB bodies
# (with a length, and chunked), one byte a second, invalid UTF-8, huge
# numbers, values of the wrong type, empty bodies, HTML 500 pages.  The
# fleet is then full (2 of 2 instances, both busy) with 2 tasks waiting,
# so there is nothing to do: qscale must not crash, must launch and
# terminate nothing (cloudsim's log), its memory must stay bounded (RSS
# from /proc, every process), and once the answers are clean again it
# must finish the work as usual.
# qscale-test: serial
# shellcheck source-path=SCRIPTDIR disable=SC2016  # jq programs in quotes
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/e2e-lib.sh"

HOSTILE_SECONDS=${QSCALE_HOSTILE_SECONDS:-60}
LONG=$((HOSTILE_SECONDS + 25))	# the busy tasks outlast the hostile phase
RSS_MAX_KB=$((96 * 1024))	# below one 100 MB answer

# cloudsim's agents poll every 0.5 s and report every 2 s, given here:
# their defaults, those of a real clearml-agent (5 s, 30 s), would make
# this run much longer and qscale's view of a busy worker late.
e2e_sim_start --report-interval 2 --agent-poll 0.5 ||
    { not_ok "the simulated cloud starts"; exit 1; }

start_proxy() {	# NAME UPSTREAM
	python3 "$QSCALE_TOP/tests/helpers/hostile_proxy.py" "$2" \
	    "$T/$1.port" >>"$T/$1.out" 2>&1 &
	PROXY_PIDS="${PROXY_PIDS:-} $!"
	wait_for 10 test -s "$T/$1.port"
}
stop_proxies() {
	# shellcheck disable=SC2086
	[ -z "${PROXY_PIDS:-}" ] || kill -TERM $PROXY_PIDS 2>/dev/null
}
on_exit stop_proxies
if ! start_proxy cml "$QSCALE_SIM_CLEARML_URL" ||
    ! start_proxy ec2 "$QSCALE_SIM_EC2_URL"; then
	not_ok "the hostile proxies start"
	exit 1
fi
CML_PROXY=http://127.0.0.1:$(cat "$T/cml.port")
EC2_PROXY=http://127.0.0.1:$(cat "$T/ec2.port")
ok "the hostile proxies start"
proxy_mode() {	# MODE: both proxies
	curl -sf --max-time 5 --data "$1" "$CML_PROXY/_hostile/mode" \
	    >/dev/null &&
	    curl -sf --max-time 5 --data "$1" "$EC2_PROXY/_hostile/mode" \
	    >/dev/null
}

e2e_scenario hostile
# qscale talks to the proxies, the test to cloudsim itself.
SIM_CML=$QSCALE_SIM_CLEARML_URL
SIM_EC2=$QSCALE_SIM_EC2_URL
QSCALE_SIM_CLEARML_URL=$CML_PROXY QSCALE_SIM_EC2_URL=$EC2_PROXY \
    e2e_conf hostile 'name = "cpu"; queue = "hostile";
    instance_type = "c5.large"; max_instances = 2;' ||
    { not_ok "the configuration"; exit 1; }
QSCALE_SIM_CLEARML_URL=$SIM_CML
QSCALE_SIM_EC2_URL=$SIM_EC2
# A slow answer must not hold a poll for long.
sed -i -e 's|^\(  api_server = .*;\)$|\1\n  request_timeout = "3s";|' \
    -e 's|^\(  endpoint = .*;\)$|\1\n  request_timeout = "3s";|' \
    "$E2E_DIR/qscale.conf"
check "the configuration with short timeouts is valid" \
    "$QSCALED" -n -c "$E2E_DIR/qscale.conf"
simctl queue hostile >/dev/null
e2e_start || { not_ok "qscaled starts"; exit 1; }
SUP=$QPID

e2e_enqueue hostile 2 "$LONG" long >/dev/null
e2e_enqueue hostile 2 2 short >/dev/null
e2e_wait 40 "2 long tasks run on 2 instances, 2 tasks wait" \
    '([.tasks[] | select(.status == "in_progress")] | length) == 2 and
    .totals.instances_alive == 2'

# RSS of the supervisor and its worker processes, every 0.5 s.
rss_sampler() {
	while kill -0 "$SUP" 2>/dev/null; do
		for p in $SUP $(pgrep -P "$SUP"); do
			awk -v p="$p" '/^VmRSS:/ { print p, $2 }' \
			    "/proc/$p/status" 2>/dev/null
		done
		sleep 0.5
	done
}
rss_sampler >"$T/rss.log" &
RSS_PID=$!
on_exit "kill $RSS_PID"
sleep 3
KIDS_BEFORE=$(pgrep -P "$SUP" | sort | tr '\n' ' ')
RSS_BEFORE=$(awk '{ if ($2 > m) m = $2 } END { print m + 0 }' "$T/rss.log")

H0=$(date +%s.%N)
proxy_mode mix || not_ok "the proxies take the mode"
diag "corrupting every answer for $HOSTILE_SECONDS s"
sleep "$HOSTILE_SECONDS"
proxy_mode pass
H1=$(date +%s.%N)
curl -sf "$CML_PROXY/_hostile/stats" >"$T/cml-stats.json"
curl -sf "$EC2_PROXY/_hostile/stats" >"$T/ec2-stats.json"
diag "ClearML proxy: $(cat "$T/cml-stats.json")" \
    "EC2 proxy: $(cat "$T/ec2-stats.json")"
for f in cml ec2; do
	check "the $f proxy served every corruption at least twice" \
	    sj '.answers | (["garbage", "truncated", "cut", "huge",
	    "huge-chunked", "slow", "utf8", "numbers", "shape", "empty",
	    "html500"] - [to_entries[] | select(.value >= 2) | .key]) == []' \
	    "$T/$f-stats.json"
done

check "the supervisor is alive" kill -0 "$SUP"
check "no worker process crashed or exited" \
    test "$(pgrep -P "$SUP" | sort | tr '\n' ' ')" = "$KIDS_BEFORE"
QL=$E2E_DIR/log/qscaled.log
check "the supervisor logged no worker process exit" \
    eval "! grep -q 'worker process [0-9]* exited' '$QL'"
check "the worker process logged what it could not read" \
    grep -qiE 'warn|error' "$E2E_DIR/log/cpu.log"

e2e_wait 60 "with clean answers again, every task done and every instance \
terminated" "$E2E_DONE"
E=$(date +%s.%N)
e2e_snap "$E2E_DIR/final.json"
# The long tasks' end: the first time anything had to change.
LONG_END=$(jq '[.tasks[] | select(.name | startswith("long")) | .ended] |
    min' "$E2E_DIR/final.json")
acted=$(jq -Rr --argjson h0 "$H0" --argjson until "$LONG_END" '
    select(test("^\\S+ (launch|terminate) ")) | . as $l |
    ((.[0:19] + "Z" | fromdateiso8601) + (.[20:23] | tonumber) / 1000) |
    select(. >= $h0 and . < $until) | $l' "$SIM_LOG")
jq_rc=$?
if [ "$jq_rc" -eq 0 ] && [ "$LONG_END" != null ] && [ -z "$acted" ]; then
	ok "nothing launched or terminated from the hostile phase until the long tasks ended"
else
	not_ok "nothing launched or terminated from the hostile phase until the long tasks ended"
	diag "long tasks ended at $LONG_END (jq exit $jq_rc)" "$acted"
fi
check "every instance was launched before the hostile phase (2 in all)" \
    sj '.totals.launches.instances == 2' \
    "$E2E_DIR/final.json"

kill "$RSS_PID" 2>/dev/null
awk '{ if ($2 > m[$1]) m[$1] = $2 }
    END { for (p in m) printf "# pid %s: peak RSS %d kB\n", p, m[p] }' \
    "$T/rss.log"
peak=$(awk '{ if ($2 > m) m = $2 } END { print m + 0 }' "$T/rss.log")
diag "peak RSS before the hostile phase $RSS_BEFORE kB, during it $peak kB"
check "memory stayed bounded: every process under $((RSS_MAX_KB / 1024)) MB" \
    test "$peak" -gt 0 -a "$peak" -lt "$RSS_MAX_KB"
e2e_stop
diag "hostile phase $H0 .. $H1, done at $E"
e2e_no_secret
