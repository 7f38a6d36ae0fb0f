#!/bin/bash
# cloudsim's simulated agents: an instance launched through the EC2 front
# with a startup script that follows the contract registers, runs tasks to
# completion, goes idle and vanishes on terminate; broken scripts are
# reported in /sim/stats and the log.
. "$(dirname "$0")/lib.sh"
. "$QSCALE_TOP/tests/cloudsim/simlib.sh"

# Shorter than clearml-agent's timing (reports every 30 s, a poll every
# 5 s; check_agent.py checks those are the defaults) so that the checks of
# what the agents do take seconds, not minutes.
if ! start_cloudsim --pending-delay 0.5 --boot-delay 0.3 \
    --report-interval 1 --agent-poll 0.3; then
	not_ok "cloudsim starts"
	exit 1
fi
ok "cloudsim starts"
tap_from python3 "$QSCALE_TOP/tests/cloudsim/checks/check_agent.py" \
    "$SIM_ENV" "$SIM_LOG"
