#!/usr/bin/env bash
# The HTTP status server as an operator and Prometheus see it: /status is
# what qscalectl status -j shows, /metrics passes promtool and keeps its
# counters through a worker process's restart, nothing secret on any page,
# a non-loopback listen is warned about, a bad listen address stops the
# start with a message naming it, and bogus clients (huge headers,
# garbage, unknown paths, half requests, hundreds of idle connections, a
# slow loris) do not disturb the daemon.
. "$(dirname "$0")/lib.sh"
PROBE="$(dirname "$0")/status-probe.py"
probe() { python3 "$PROBE" "$@"; }

listen_port() { sed -n 's/.*listen = "[^"]*:\([0-9]*\)".*/\1/p' "$1"; }
# other_conf DIR FILE: a copy of the configuration with its own files.
other_conf() {
	mkdir -p "$T/$1"
	sed -e "s|$T/log|$T/$1/log|; s|$T/run|$T/$1/run|g" "$T/qscale.conf" \
	    >"$T/$1/$2"
	chmod 600 "$T/$1/$2"
}

write_conf "$T/qscale.conf" gpu cpu
# A queue whose name holds a secret: every page must show it masked.
sed -i 's/queue = "q-cpu"/queue = "q-git-SECRET-value-3"/' "$T/qscale.conf"
PORT=$(listen_port "$T/qscale.conf")
URL=http://127.0.0.1:$PORT
start_qscaled "$T/qscale.conf" || { not_ok "qscaled starts"; exit 1; }
check "the status server answers on status.listen" \
    wait_for 10 curl -sf -o /dev/null "$URL/status"
check "its address is logged at start, as information" \
    grep -q "INFO qscaled: status server on $URL/" "$T/log/qscaled.log"
snapshots() {
	[ "$(curl -sf "$URL/status" | jq '[.resources[] | select(.worker)] |
	    length')" = 2 ]
}
check "every worker process's snapshot reaches /status" wait_for 20 snapshots

# /status: qscalectl status -j, from the same memory.
curl -sf "$URL/status" >"$T/http.json"
ctl status -j | sed 's/git-SECRET-value-3/********/g' >"$T/ctl.json"
norm='del(.now) | .resources |= map(del(.worker))'
check "/status is valid JSON" jq -e . "$T/http.json" >/dev/null
check "/status matches qscalectl status -j" \
    test "$(jq -S "$norm" "$T/http.json")" = "$(jq -S "$norm" "$T/ctl.json")"
check "/status nests each resource's snapshot as qscalectl does" test \
    "$(jq -c '[.resources[] | .worker | keys]' "$T/http.json")" = \
    "$(jq -c '[.resources[] | .worker | keys]' "$T/ctl.json")"
check "/status has the global part: blackout, cap, in use, restarts" \
    jq -e '.global | has("blackout") and has("max_instances_total") and
    has("instances_in_use") and has("restarts")' "$T/http.json" >/dev/null
check "/status masks the secret in the queue name" \
    jq -e '.resources[1].queue == "q-********"' "$T/http.json" >/dev/null

# /metrics: the text format, every family, promtool's verdict.
curl -sf -D "$T/metrics.hdr" "$URL/metrics" >"$T/metrics.txt"
check "/metrics says text format 0.0.4" \
    grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/metrics.hdr"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1
rc=$?
check "promtool check metrics accepts /metrics, no lint at all (rc $rc)" \
    test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "promtool: $(cat "$T/promtool.out")"
missing=""
for f in "qscale_instances gauge" "qscale_queue_pending gauge" \
    "qscale_queue_oldest_wait_seconds gauge" "qscale_workers gauge" \
    "qscale_instances_booting gauge" "qscale_max_instances gauge" \
    "qscale_global_max_instances gauge" "qscale_launches_total counter" \
    "qscale_launched_instances_total counter" \
    "qscale_terminations_total counter" "qscale_requeues_total counter" \
    "qscale_api_calls_total counter" "qscale_api_errors_total counter" \
    "qscale_api_retries_total counter" \
    "qscale_api_latency_seconds histogram" \
    "qscale_child_restarts_total counter" "qscale_child_up gauge" \
    "qscale_polls_total counter" \
    "qscale_last_poll_timestamp_seconds gauge" \
    "qscale_spot_blackout_active gauge" \
    "qscale_instance_seconds_total counter" \
    "qscale_duplicate_tasks_total counter" \
    "qscale_orphan_instances gauge" \
    "qscale_orphans_terminated_total counter"; do
	grep -qx "# TYPE $f" "$T/metrics.txt" || missing="$missing ${f% *}"
	grep -q "^# HELP ${f% *} ." "$T/metrics.txt" || missing="$missing ${f% *}"
done
check "/metrics has HELP and TYPE for every family${missing:+ (missing:$missing)}" \
    test -z "$missing"
metric() { curl -sf "$URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
check "qscale_child_up is 1 for a running worker process" \
    test "$(metric 'qscale_child_up{resource="gpu"}')" = 1
check "qscale_max_instances is the configured one" \
    test "$(metric 'qscale_max_instances{resource="gpu"}')" = 2
check "qscale_queue_pending carries the queue, masked" \
    grep -q '^qscale_queue_pending{resource="cpu",queue="q-\*\*\*\*\*\*\*\*"} 0$' \
    "$T/metrics.txt"
check "the API calls of the worker processes are counted" \
    grep -qE '^qscale_api_calls_total\{resource="gpu",api="(ec2|clearml)",action="[^"]+"\} [1-9]' \
    "$T/metrics.txt"

# Counters survive a worker process's restart.
polls=$(metric 'qscale_polls_total{resource="gpu"}')
calls=$(curl -sf "$URL/metrics" | awk '/^qscale_api_calls_total\{resource="gpu"/ { s += $2 } END { print s }')
old=$(child_pid gpu)
kill -9 "$old"
newsnap() {
	p=$(child_pid gpu)
	[ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$old" ] &&
	    [ "$(curl -sf "$URL/status" | jq --arg p "$p" \
	    '.resources[0] | select(.pid == ($p | tonumber)) | .worker.polls // 0')" -ge 1 ] 2>/dev/null
}
check "a killed worker process is back with a snapshot" wait_for 15 newsnap
check "qscale_child_restarts_total counts the restart" \
    test "$(metric 'qscale_child_restarts_total{resource="gpu"}')" = 1
p2=$(metric 'qscale_polls_total{resource="gpu"}')
check "qscale_polls_total does not go back after the restart ($polls -> $p2)" \
    test "$p2" -gt "$polls"
c2=$(curl -sf "$URL/metrics" | awk '/^qscale_api_calls_total\{resource="gpu"/ { s += $2 } END { print s }')
check "qscale_api_calls_total does not go back after it ($calls -> $c2)" \
    test "$c2" -gt "$calls"

# The dashboard's endpoints.
check "HEAD / answers 200" sh -c "curl -sfI '$URL/' | grep -q '^HTTP/1.1 200'"
check "/ is the dashboard, with its script and style" \
    sh -c "curl -sf '$URL/' | grep -q 'dashboard.js' &&
    curl -sf -o /dev/null '$URL/dashboard.js' &&
    curl -sf -o /dev/null '$URL/dashboard.css'"
check "/ forbids scripts from anywhere else" \
    sh -c "curl -sfI '$URL/' | grep -qi \"^Content-Security-Policy: default-src 'none'; script-src 'self'\""
check "/api/series has points for the global line and each resource" \
    sh -c "curl -sf '$URL/api/series?range=900' | jq -en 'input | (.global.t | length) >= 1 and (.resources | length) == 2 and (.resources[0].t | length) == (.resources[0].idle | length)' >/dev/null"
last=$(curl -sf "$URL/api/log?limit=1" | jq '.last')
ctl log-level info >/dev/null
newline() {
	curl -sf "$URL/api/log?after=$last" | jq -en 'input | .lines |
	    any(test("log level set to INFO everywhere"))' >/dev/null
}
check "/api/log?after=N brings the lines logged since" wait_for 5 newline
check "/api/log without after gives the last lines, at most limit" \
    test "$(curl -sf "$URL/api/log?limit=3" | jq '.lines | length')" = 3

mkdir -p "$T/pages"
for p in / /dashboard.js /dashboard.css /status /metrics \
    "/api/log?limit=500" "/api/series?range=86400"; do
	curl -sf "$URL$p" >"$T/pages/$(echo "$p" | tr -c 'a-z0-9\n' _)"
done
check "no secret on any page" no_secret_in "$T/pages"
check "the log tail is masked too" \
    grep -q 'q-\*\*\*\*\*\*\*\*' "$T/pages/_api_log_limit_500"

# Bogus requests.
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check "an unknown path is 404" test "$(code "$URL/nope")" = 404
check "POST is refused" sh -c "c=\$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x '$URL/status'); [ \"\$c\" = 405 ] || [ \"\$c\" = 501 ]"
big=$(probe bigheader "$PORT" 100000)
check "a 100 KB header is refused ($big)" sh -c "case '$big' in 'HTTP/1.1 4'*|closed) exit 0;; esac; exit 1"
junk=$(probe raw "$PORT" 'GARBAGE\r\n\r\n')
check "a garbage request line gets 400 or a hang-up ($junk)" \
    sh -c "case '$junk' in 'HTTP/1.1 400'*|closed) exit 0;; esac; exit 1"
long=$(probe raw "$PORT" "GET /$(head -c 20000 /dev/zero | tr '\0' a) HTTP/1.1\r\nHost: x\r\n\r\n")
check "a 20 KB URL does not get through ($long)" \
    sh -c "case '$long' in 'HTTP/1.1 2'*) exit 1;; esac; exit 0"
check "a query string out of range is clamped, not an error" \
    test "$(code "$URL/api/log?after=-99&limit=999999999999999999999")" = 200

# Slow loris: 70 connections each sending a byte every 4 s, reopened as
# soon as they are closed.  /metrics and /status answer at once all the
# while, and no request takes longer than 5 s to arrive.
probe loris "$PORT" 70 4 20 "$T/loris.ready" >"$T/loris.out" &
loris_pid=$!
on_exit "kill $loris_pid 2>/dev/null"
wait_for 10 test -s "$T/loris.ready"
sleep 6		# past the request bound: every slot has been held
slowest=0
failed=""
for i in 1 2 3 4 5; do
	for p in /metrics /status; do
		t=$(curl -sf -o /dev/null -m 5 -w '%{time_total}' "$URL$p") ||
		    failed="$failed $p"
		slowest=$(awk -v a="$slowest" -v b="${t:-9}" \
		    'BEGIN { print (b > a ? b : a) }')
	done
	sleep 2
done
check "under a slow loris, /metrics and /status answer every time${failed:+ (failed:$failed)}" \
    test -z "$failed"
check "and promptly (slowest ${slowest} s)" \
    awk -v s="$slowest" 'BEGIN { exit !(s < 1) }'
wait "$loris_pid"
loris=$(cat "$T/loris.out")
check "a request trickling in is closed after 5 s ($loris)" \
    sh -c "echo '$loris' | awk -F'[= ]' '{ exit !(\$2 >= 70 && \$4 <= 7) }'"
# The same from 8 addresses, 16 connections each: past 64 in all, the
# oldest make room, and a request from yet another address gets in.
fds_before=$(ls /proc/"$SUP_PID"/fd | wc -l)
probe loris "$PORT" 128 4 10 "$T/loris8.ready" 8 >"$T/loris8.out" &
loris_pid=$!
on_exit "kill $loris_pid 2>/dev/null"
wait_for 10 test -s "$T/loris8.ready"
sleep 1
failed=""
for i in 1 2 3 4; do
	curl -sf -o /dev/null -m 1 "$URL/metrics" || failed="$failed $i"
	sleep 1
done
fds=$(ls /proc/"$SUP_PID"/fd | wc -l)
wait "$loris_pid"
check "from 8 addresses, /metrics still answers within 1 s${failed:+ (failed:$failed)}" \
    test -z "$failed"
check "and the supervisor holds at most 128 sockets: 64 open, the others closing ($fds_before -> $fds fds)" \
    test "$fds" -le $((fds_before + 130))
check "the slow clients are reported once, as a warning" test "$(grep -c \
    "WARN qscaled: status server: closed a connection from 127.0.0.1: .*; more such are counted" \
    "$T/log/qscaled.log")" = 1

fds_before=$(ls /proc/"$SUP_PID"/fd | wc -l)
probe slow "$PORT" >"$T/slow.out" &
slow_pid=$!
sleep 0.5	# accepted before the flood fills the listener
probe hold "$PORT" 200 14 "$T/hold.ready" >"$T/hold.out" &
hold_pid=$!
on_exit "kill $slow_pid $hold_pid 2>/dev/null"
wait_for 10 test -s "$T/hold.ready"
sleep 1
fds=$(ls /proc/"$SUP_PID"/fd | wc -l)
check "200 idle connections from one address: the supervisor holds 16 ($fds_before -> $fds fds)" \
    test "$fds" -le $((fds_before + 18))
check "qscalectl status still answers meanwhile" sh -c "'$QSCALECTL' -s '$T/run/control.socket' status -j | jq -en 'input | .ok' >/dev/null"
wait "$slow_pid"
slow=$(cat "$T/slow.out")
check "a half-sent request is dropped after the 5 s request bound (${slow} s)" \
    awk -v s="$slow" 'BEGIN { exit !(s >= 4.5 && s <= 7) }'
wait "$hold_pid"
closed=$(cat "$T/hold.out")
check "idle connections are closed by the server's timeout ($closed of 200)" \
    test "$closed" -ge 60
check "/status answers again once they are gone" \
    wait_for 15 curl -sf -o /dev/null "$URL/status"
check "the supervisor is still running" kill -0 "$SUP_PID"
check "and so are its worker processes" \
    test "$(children_of "$SUP_PID" | wc -l)" -eq 2

# A non-loopback address works, with a warning.
other_conf wide qscale.conf
P2=$(free_port)
sed -i "s|listen = \"127.0.0.1:[0-9]*\"|listen = \"0.0.0.0:$P2\"|" "$T/wide/qscale.conf"
"$QSCALED" -f -c "$T/wide/qscale.conf" >"$T/wide/out" 2>&1 &
wide_pid=$!
on_exit "kill -KILL $wide_pid 2>/dev/null; pkill -KILL -P $wide_pid 2>/dev/null"
check "0.0.0.0 is served" wait_for 10 curl -sf -o /dev/null "http://127.0.0.1:$P2/status"
check "and logged as a warning" grep -q \
    "WARN qscaled: status server on http://0.0.0.0:$P2/, which is not a loopback address" \
    "$T/wide/log/qscaled.log"
kill -TERM "$wide_pid"
timeout 15 tail --pid="$wide_pid" -f /dev/null ||
    { not_ok "the 0.0.0.0 daemon stops on TERM"; kill -KILL "$wide_pid"; }
wait "$wide_pid"

# A listen address that cannot be had stops the start, naming it (and
# should one start after all, it is not left running).
other_conf busy qscale.conf
on_exit "pkill -KILL -f -- '-c $T/busy/qscale.conf' 2>/dev/null"
timeout -k 2 20 "$QSCALED" -f -c "$T/busy/qscale.conf" >"$T/busy/out" 2>&1
rc=$?
check "a port in use: qscaled -f exits 1" test "$rc" -eq 1
check "naming the address and why" grep -q \
    "status.listen 127.0.0.1:$PORT: cannot listen there: Address already in use" \
    "$T/busy/out"
check "and leaving no control socket or pid file behind" \
    test ! -e "$T/busy/run/control.socket" -a ! -e "$T/busy/run/qscaled.pid"
timeout -k 2 20 "$QSCALED" -c "$T/busy/qscale.conf" >"$T/busy/out2" 2>&1
rc=$?
check "daemonizing, the same error reaches the caller (exit $rc)" sh -c \
    "[ $rc -eq 1 ] && grep -q 'status.listen 127.0.0.1:$PORT: cannot listen there' '$T/busy/out2'"
other_conf far qscale.conf
sed -i "s|listen = \"127.0.0.1:[0-9]*\"|listen = \"192.0.2.1:$(free_port)\"|" "$T/far/qscale.conf"
timeout -k 2 20 "$QSCALED" -f -c "$T/far/qscale.conf" >"$T/far/out" 2>&1
rc=$?
check "an address of another host: exit 1 naming it (exit $rc)" sh -c \
    "[ $rc -eq 1 ] && grep -q 'status.listen 192.0.2.1:[0-9]*: cannot listen there: Cannot assign requested address' '$T/far/out'"
check "the running daemon did not notice any of it" \
    sh -c "kill -0 $SUP_PID && curl -sf -o /dev/null '$URL/metrics'"

stop_qscaled
check "qscaled stops cleanly with the server on" \
    grep -q "INFO qscaled: stopped" "$T/log/qscaled.log"
check "no secret in any log or output" no_secret_in "$T/log" "$T/qscaled.out" "$T/pages"
