#!/usr/bin/env bash
# Test runner: runs the cmocka unit tests and/or the integration tests
# (tests/integration/*.t, each printing TAP), shows the output of whatever
# failed, and ends with one summary line: "N passed, N failed".
#
#   tests/run.sh unit|integration|all|asan|soak BUILD_DIR [PATTERN]
#
# asan: the unit tests, then tests/sanitize/*.t (BUILD_DIR is a sanitizer
# build); soak: the long regression runs, tests/soak/*.t.
#
# Integration tests mostly wait on servers and timers, so several run at
# once (QSCALE_TEST_JOBS, default 3); one whose file holds the line
# "# qscale-test: serial" measures timing and runs alone, after the rest.
set -u

what=${1:-all}
build=$(cd "${2:-build}" && pwd)
pattern=${3:-${TESTS:-}}
top=$(cd "$(dirname "$0")/.." && pwd)
logs=$build/test-logs
jobs=${QSCALE_TEST_JOBS:-3}
mkdir -p "$logs"

QSCALE_TOP=$top
QSCALE_BUILD=$build
export QSCALE_TOP QSCALE_BUILD

pass=0
fail=0
failed_files=""
per_test_timeout=${QSCALE_TEST_TIMEOUT:-600}

# run_test LOG CMD...: run a TAP producer; its exit code and time go to
# LOG.rc and LOG.secs.
run_test() {
	local log=$1 start rc
	shift
	start=$(date +%s)
	CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 10 "$per_test_timeout" "$@" \
	    >"$log" 2>&1 </dev/null
	rc=$?
	echo "$rc" >"$log.rc"
	echo $(( $(date +%s) - start )) >"$log.secs"
}

# report NAME LOG: count the results of a finished test.
report() {
	local name=$1 log=$2 rc secs ok nok plan bad=0
	rc=$(cat "$log.rc")
	secs=$(cat "$log.secs")
	ok=$(grep -cE '^ok [0-9]+' "$log")
	nok=$(grep -cE '^not ok [0-9]+' "$log")
	plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$log" | tail -n 1)
	if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
		bad=1	# crashed, timed out or failed outside any test
	elif [ -n "$plan" ] && [ $((ok + nok)) -ne "$plan" ]; then
		bad=1	# stopped before running every planned test
	elif [ -z "$plan" ] && [ $((ok + nok)) -eq 0 ]; then
		bad=1	# printed no result at all
	fi
	pass=$((pass + ok))
	fail=$((fail + nok + bad))
	if [ "$nok" -ne 0 ] || [ "$bad" -ne 0 ]; then
		failed_files="$failed_files $name"
		printf 'FAIL %-40s %3d ok, %3d failed (exit %d, %ds)\n' \
		    "$name" "$ok" "$nok" "$rc" "$secs"
		sed 's/^/    | /' "$log" | tail -n 80
	else
		printf 'ok   %-40s %3d ok (%ds)\n' "$name" "$ok" "$secs"
	fi
	rm -f "$log.rc" "$log.secs"
}

matches() {
	[ -z "$pattern" ] && return 0
	case "$1" in *$pattern*) return 0 ;; esac
	return 1
}

# Runs the queued integration tests, at most $jobs at a time.
declare -A running=()
run_parallel() {
	local t n pid
	for t in "$@"; do
		while [ "${#running[@]}" -ge "$jobs" ]; do
			wait -n 2>/dev/null
			reap
		done
		n=$(basename "$t" .t)
		run_test "$logs/$n.log" "$t" &
		running[$!]=$n
	done
	while [ "${#running[@]}" -gt 0 ]; do
		wait -n 2>/dev/null
		reap
	done
}

reap() {
	local pid
	for pid in "${!running[@]}"; do
		kill -0 "$pid" 2>/dev/null && continue
		wait "$pid" 2>/dev/null
		report "$tdir/${running[$pid]}" "$logs/${running[$pid]}.log"
		unset "running[$pid]"
	done
}

case $what in
integration|all) tdir=integration ;;
asan) tdir=sanitize ;;
soak) tdir=soak ;;
*) tdir="" ;;
esac

if [ "$what" = unit ] || [ "$what" = all ] || [ "$what" = asan ]; then
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		n=$(basename "$t")
		matches "$n" || continue
		run_test "$logs/$n.log" "$t"
		report "unit/$n" "$logs/$n.log"
	done
fi

if [ -n "$tdir" ]; then
	parallel=()
	serial=()
	for t in "$top/tests/$tdir"/*.t; do
		[ -f "$t" ] || continue
		matches "$(basename "$t" .t)" || continue
		if grep -q '^# qscale-test: serial' "$t"; then
			serial+=("$t")
		else
			parallel+=("$t")
		fi
	done
	run_parallel "${parallel[@]}"
	for t in "${serial[@]}"; do
		n=$(basename "$t" .t)
		run_test "$logs/$n.log" "$t"
		report "$tdir/$n" "$logs/$n.log"
	done
fi

[ -n "$failed_files" ] && echo "failed:$failed_files"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
