#!/usr/bin/env bash
# clearml.request_timeout bounds each ClearML call of a worker process: a
# server that accepts connections and never answers costs one timeout a
# call, not the client's built-in one.
. "$(dirname "$0")/lib.sh"

# A server that takes every connection and says nothing.
port=$(free_port)
python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
print("up", flush=True)
held = []
while True:
    held.append(s.accept()[0])
' "$port" >"$T/mute.out" 2>&1 &
mute=$!
on_exit "kill $mute"
check "a server that never answers listens on 127.0.0.1:$port" \
    wait_for 10 grep -q up "$T/mute.out"

write_conf "$T/qscale.conf" gpu
sed -i "s|api_server = \"http://127.0.0.1:9\";|api_server = \"http://127.0.0.1:$port\"; request_timeout = \"1200ms\";|" \
    "$T/qscale.conf"
check "the configuration sets clearml.request_timeout = 1200ms" \
    grep -q 'request_timeout = "1200ms"' "$T/qscale.conf"
start_qscaled "$T/qscale.conf" || { not_ok "qscaled starts"; exit 1; }
ok "qscaled starts"
timed_out() { grep -q 'auth.login: Operation timed out after 1[0-9][0-9][0-9] milliseconds' "$T/log/gpu.log"; }
check "the worker's login gives up after the configured 1.2 s" \
    wait_for 8 timed_out
grep 'auth.login' "$T/log/gpu.log" | head -n 3 | sed 's/^/# /'
check "the observation that needed it fails, and nothing is done" \
    wait_for 15 grep -q 'observation failed' "$T/log/gpu.log"
stop_qscaled
check "no secret in the logs" no_secret_in "$T/log"
