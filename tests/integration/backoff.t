#!/usr/bin/env bash
# A worker process that keeps crashing is respawned later and later:
# qscale-test: serial
# 1 s, then 2 s, then 4 s.
. "$(dirname "$0")/lib.sh"

write_conf "$T/qscale.conf" gpu
start_qscaled "$T/qscale.conf" || { not_ok "qscaled starts"; exit 1; }
running() { [ "$(child_state gpu)" = running ]; }
wait_for 10 running

gaps=""
for i in 1 2 3; do
	old=$(child_pid gpu)
	t0=$(date +%s%N)
	kill -9 "$old"
	new_pid() { p=$(child_pid gpu); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$old" ]; }
	wait_for 15 new_pid
	gaps="$gaps $((($(date +%s%N) - t0) / 1000000))"
	wait_for 5 running
done
set -- $gaps
diag "respawn delays (ms): $gaps"
check "first respawn after about 1 s ($1 ms)" test "$1" -ge 900 -a "$1" -le 2000
check "second respawn after about 2 s ($2 ms)" test "$2" -ge 1900 -a "$2" -le 3200
check "third respawn after about 4 s ($3 ms)" test "$3" -ge 3900 -a "$3" -le 5500
check "each backoff is logged" \
    sh -c "grep -q 'gpu: respawning in 1000 ms' '$T/log/gpu.log' && grep -q 'gpu: respawning in 2000 ms' '$T/log/gpu.log' && grep -q 'gpu: respawning in 4000 ms' '$T/log/gpu.log'"
check "status shows three restarts" \
    test "$(ctl status -j | jq '.resources[0].restarts')" -eq 3
