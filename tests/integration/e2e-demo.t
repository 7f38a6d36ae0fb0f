#!/usr/bin/env bash
# End to end: the demo (make demo) runs its scenario on the simulated
# cloud for at most 60 s and exits 0: every demo task completed, every
# instance terminated again.
# shellcheck source-path=SCRIPTDIR disable=SC2016  # jq programs in quotes
. "$(dirname "$0")/lib.sh"

if ! command -v moto_server >/dev/null 2>&1; then
	not_ok "moto_server is installed (contrib/deps.sh)"
	exit 1
fi
start=$(date +%s)
DEMO_SECONDS=60 TMPDIR=$T "$QSCALE_TOP/tests/demo.sh" "$QSCALE_BUILD" \
    >"$T/demo.out" 2>&1 3>&- &
DEMO=$!
on_exit "kill -TERM $DEMO 2>/dev/null; wait $DEMO 2>/dev/null"
wait "$DEMO"
rc=$?
secs=$(($(date +%s) - start))
grep -E '^(summary|demo):' "$T/demo.out" | sed 's/^/# /'
check "DEMO_SECONDS=60 tests/demo.sh exits 0 (exit $rc after $secs s)" \
    test "$rc" -eq 0
check "the demo says every task completed and every instance is gone" \
    grep -q 'every task completed and every instance is gone' "$T/demo.out"
check "the demo's summary counts 13 tasks done, none failed" \
    grep -q 'summary: 13 tasks done, 0 failed, of 13' "$T/demo.out"
[ "$rc" -eq 0 ] || tail -n 30 "$T/demo.out" | sed 's/^/# /'
