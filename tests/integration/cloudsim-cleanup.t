#!/bin/bash
# cloudsim stops everything it started, moto included: on SIGTERM, when it
# is killed outright, and when its parent dies.  It refuses addresses
# other than 127.0.0.1 and ports already taken.
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
