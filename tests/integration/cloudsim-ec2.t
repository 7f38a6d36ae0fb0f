#!/bin/bash
# cloudsim's EC2 front through the EC2 API: signatures still checked by
# moto, capacity, MinCount/MaxCount, ClientToken idempotency, the pending
# phase, injected errors (count, probability, match, after), latency, spot
# interruptions, console output, stats.
. "$(dirname "$0")/lib.sh"
. "$QSCALE_TOP/tests/cloudsim/simlib.sh"

if ! start_cloudsim --pending-delay 1 --boot-delay 0.5; then
	not_ok "cloudsim starts with moto and writes its env file"
	exit 1
fi
ok "cloudsim starts with moto and writes its env file"
check "env file has every variable" test -n "$QSCALE_SIM_EC2_URL" \
    -a -n "$AWS_ACCESS_KEY_ID" -a -n "$AWS_SECRET_ACCESS_KEY" \
    -a "$AWS_REGION" = us-east-1 -a -n "$QSCALE_SIM_SECURITY_GROUP" \
    -a -n "$QSCALE_SIM_AMI" -a -n "$QSCALE_SIM_INSTANCE_PROFILE"
# shellcheck disable=SC2086  # split on purpose
set -- $QSCALE_SIM_SUBNETS
check "two subnets, zone a first" test "$#" -eq 2
tap_from python3 "$QSCALE_TOP/tests/cloudsim/checks/check_ec2.py" "$SIM_ENV" \
    "$SIM_LOG"
