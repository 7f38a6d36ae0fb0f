#!/bin/sh
# Test runner: runs the cmocka unit tests and/or the integration tests
# (tests/integration/*.t, each printing TAP), shows the output of whatever
# failed, and ends with one summary line: "N passed, N failed".
#
#   tests/run.sh unit|integration|all BUILD_DIR [PATTERN]
set -u

what=${1:-all}
build=$(cd "${2:-build}" && pwd)
pattern=${3:-${TESTS:-}}
top=$(cd "$(dirname "$0")/.." && pwd)
logs=$build/test-logs
mkdir -p "$logs"

QSCALE_TOP=$top
QSCALE_BUILD=$build
export QSCALE_TOP QSCALE_BUILD

pass=0
fail=0
failed_files=""
per_test_timeout=${QSCALE_TEST_TIMEOUT:-600}

# run_one NAME LOG CMD...: run a TAP producer, count its results.
run_one() {
	name=$1 log=$2
	shift 2
	start=$(date +%s)
	CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 10 "$per_test_timeout" "$@" \
	    >"$log" 2>&1 </dev/null
	rc=$?
	secs=$(( $(date +%s) - start ))
	ok=$(grep -cE '^ok [0-9]+' "$log")
	nok=$(grep -cE '^not ok [0-9]+' "$log")
	plan=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$log" | tail -n 1)
	bad=0
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
}

matches() {
	[ -z "$pattern" ] && return 0
	case "$1" in *$pattern*) return 0 ;; esac
	return 1
}

if [ "$what" = unit ] || [ "$what" = all ]; then
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		n=$(basename "$t")
		matches "$n" || continue
		run_one "unit/$n" "$logs/$n.log" "$t"
	done
fi

if [ "$what" = integration ] || [ "$what" = all ]; then
	for t in "$top"/tests/integration/*.t; do
		[ -f "$t" ] || continue
		n=$(basename "$t" .t)
		matches "$n" || continue
		run_one "integration/$n" "$logs/$n.log" "$t"
	done
fi

[ -n "$failed_files" ] && echo "failed:$failed_files"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
