#!/bin/bash
# The fake ClearML server of cloudsim against the documented protocol:
# envelope, paths and versions, every auth error, the task state machine,
# queue FIFO, worker TTL/pattern/last_seen, regexes, events, outages.
. "$(dirname "$0")/lib.sh"
. "$QSCALE_TOP/tests/cloudsim/simlib.sh"

if ! start_cloudsim --no-ec2; then
	not_ok "cloudsim --no-ec2 starts and writes its env file"
	exit 1
fi
ok "cloudsim --no-ec2 starts and writes its env file"
check "env file names the ClearML URL and credentials" \
    test -n "$QSCALE_SIM_CLEARML_URL" -a -n "$CLEARML_API_ACCESS_KEY" \
    -a -n "$CLEARML_API_SECRET_KEY" -a -n "$QSCALE_SIM_ADMIN_URL"
tap_from python3 "$QSCALE_TOP/tests/cloudsim/checks/check_clearml.py" "$SIM_ENV"
