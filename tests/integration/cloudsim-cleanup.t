#!/bin/bash
# cloudsim stops everything it started, moto included: on SIGTERM, when it
# is killed outright, and when its parent dies.  It refuses addresses
# other than 127.0.0.1 and ports already taken, picks its ports outside
# the kernel's ephemeral range and survives a probe that connects to
# itself.
. "$(dirname "$0")/lib.sh"
. "$QSCALE_TOP/tests/cloudsim/simlib.sh"

gone() { ! kill -0 "$1" 2>/dev/null; }
moto_of() { pgrep -P "$1" | head -n 1; }

t0=$(date +%s%N)
if ! start_cloudsim; then
	not_ok "cloudsim starts"
	exit 1
fi
secs=$(( ($(date +%s%N) - t0) / 1000000 ))
diag "startup took ${secs} ms"
check "startup takes a few seconds at most" test "$secs" -lt 8000
MOTO=$(moto_of "$SIM_PID")
check "moto_server runs as cloudsim's child" test -n "$MOTO"
check "moto answers" curl -sf -o /dev/null "$QSCALE_SIM_MOTO_URL/moto-api/data.json"

out=$("$CLOUDSIM" --port-base "$SIM_PORT" --env-file "$T/other.env" 2>&1)
rc=$?
check "a port already in use is refused with a message" \
    test "$rc" -ne 0 -a -n "$(echo "$out" | grep 'already in use')"
out=$("$CLOUDSIM" --port-base "$(free_port_base)" --env-file "$T/x.env" \
    --host 0.0.0.0 2>&1)
rc=$?
check "an address other than 127.0.0.1 is refused" \
    test "$rc" -ne 0 -a -n "$(echo "$out" | grep 'refusing')"

tap_from python3 "$QSCALE_TOP/tests/cloudsim/checks/check_ports.py"
check "the port base of the tests is outside the ephemeral range" \
    python3 -c 'import sys; lo, hi = map(int, open(sys.argv[2]).read().split())
sys.exit(not all(p < lo or p > hi for p in range(int(sys.argv[1]), int(sys.argv[1]) + 3)))' \
    "$SIM_PORT" /proc/sys/net/ipv4/ip_local_port_range
eph=$(python3 -c 'import socket, sys
lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
for p in range(hi - 1, lo, -97):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()')
"$CLOUDSIM" --port-base "$eph" --env-file "$T/eph.env" --no-ec2 \
    2>"$T/eph.err" &
EPH=$!
on_exit "kill $EPH 2>/dev/null"
wait_for 15 test -s "$T/eph.env"
kill -TERM "$EPH" 2>/dev/null
wait "$EPH" 2>/dev/null
check "a port base in the ephemeral range runs, with a warning naming it" \
    grep -q "warning: port $eph in the kernel's ephemeral range" "$T/eph.err"

kill -TERM "$SIM_PID"
check "SIGTERM: cloudsim exits" wait_for 10 gone "$SIM_PID"
check "SIGTERM: moto is gone too" wait_for 5 gone "$MOTO"
check "SIGTERM: the env file is removed" test ! -e "$SIM_ENV"
check "SIGTERM: nothing listens on its ports any more" \
    test -z "$(curl -s -m 1 "$QSCALE_SIM_CLEARML_URL/debug.ping")"
wait "$SIM_PID" 2>/dev/null
SIM_PID=""

start_cloudsim --no-ec2
check "--no-ec2 starts no moto" test -z "$(moto_of "$SIM_PID")"
kill -INT "$SIM_PID"
check "SIGINT: cloudsim exits" wait_for 10 gone "$SIM_PID"
SIM_PID=""

start_cloudsim
MOTO=$(moto_of "$SIM_PID")
{ kill -KILL "$SIM_PID"; wait "$SIM_PID"; } 2>/dev/null
check "cloudsim killed with SIGKILL: moto dies with it" wait_for 5 gone "$MOTO"
SIM_PID=""

# A parent that dies: cloudsim notices and stops.
rm -f "$SIM_ENV"
bash -c '"$1" --port-base "$2" --env-file "$3" & echo $! > "$4"; wait' _ \
    "$CLOUDSIM" "$(free_port_base)" "$SIM_ENV" "$T/child.pid" &
PARENT=$!
on_exit "kill -KILL $PARENT 2>/dev/null; [ -s $T/child.pid ] && kill -KILL \$(cat $T/child.pid) 2>/dev/null"
wait_for 15 test -s "$SIM_ENV"
CHILD=$(cat "$T/child.pid")
MOTO=$(moto_of "$CHILD")
{ kill -KILL "$PARENT"; wait "$PARENT"; } 2>/dev/null
check "its parent killed: cloudsim stops" wait_for 10 gone "$CHILD"
check "its parent killed: moto is gone too" wait_for 5 gone "$MOTO"
