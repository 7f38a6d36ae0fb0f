#!/usr/bin/env bash
# A supervisor that stops reading (SIGSTOP) for a while: its worker
# processes keep polling, their queue of messages to it stays bounded (the
# older state snapshots and some log lines go, counted), and once it reads
# again each says what it dropped, in the log and in /metrics.
. "$(dirname "$0")/lib.sh"

write_conf "$T/qscale.conf" gpu
sed -i 's/^polling_interval = .*/polling_interval = "1s";\nlog_level = "debug";/' \
    "$T/qscale.conf"
PORT=$(sed -n 's/.*listen = "[^"]*:\([0-9]*\)".*/\1/p' "$T/qscale.conf")
URL=http://127.0.0.1:$PORT
start_qscaled "$T/qscale.conf" || { not_ok "qscaled starts"; exit 1; }
on_exit 'kill -CONT "$SUP_PID" 2>/dev/null'
polls() {
	curl -sf "$URL/status" |
	    jq -e --argjson n "$1" '.resources[0].worker.polls >= $n' >/dev/null
}
check "the worker process reports its polls" wait_for 20 polls 3
wpid=$(child_pid gpu)
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
sent() { awk '/^(wchar):/ { print $2 }' "/proc/$1/io" 2>/dev/null; }
rss0=$(rss "$wpid")
polls0=$(curl -sf "$URL/status" | jq '.resources[0].worker.polls')

kill -STOP "$SUP_PID"
# 45 s of 1 s polls with debug lines: far more than the socket, the
# output and the queue together hold.
max=0
for i in $(seq 1 45); do
	sleep 1
	r=$(rss "$wpid")
	[ "${r:-0}" -gt "$max" ] && max=$r
done
check "the worker process keeps running meanwhile" kill -0 "$wpid"
check "its memory stays bounded (VmRSS $rss0 -> at most $max kB)" \
    test "$max" -le $((rss0 + 1024))
kill -CONT "$SUP_PID"

line="WARN gpu: the supervisor did not read this process's messages for a while: since [0-9TZ:.-]*, [1-9][0-9]* state snapshots (the newest was kept) and [0-9]* log lines were dropped"
check "once the supervisor reads again, the worker says what it dropped" \
    wait_for 15 grep -q "$line" "$T/log/qscaled.log"
check "in the resource's own log too" grep -q "$line" "$T/log/gpu.log"
check "only once" test "$(grep -c "$line" "$T/log/qscaled.log")" = 1
diag "$(grep -o "since.*dropped" "$T/log/qscaled.log" | head -1)"
metric() { curl -sf "$URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
snaps=$(grep -o "[0-9]* state snapshots" "$T/log/qscaled.log" | head -1 |
    cut -d' ' -f1)
check "qscale_child_messages_dropped_total counts the snapshots ($snaps)" \
    test "$(metric 'qscale_child_messages_dropped_total{resource="gpu",kind="state"}')" = "$snaps"
# what the socket held, then the newest: past all that were dropped
check "the snapshots arrive again, fresh" \
    wait_for 10 polls $((polls0 + snaps + 1))
check "the worker process is the same one" test "$(child_pid gpu)" = "$wpid"
check "action lines were not among those dropped: the start line is there" \
    grep -q "INFO gpu: worker process $wpid started" "$T/log/gpu.log"
stop_qscaled
