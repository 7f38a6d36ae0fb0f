# Helpers for the cloudsim integration tests, sourced after lib.sh.
#   start_cloudsim [ARGS...]  start cloudsim on free ports, wait for its
#                             env file, source it; SIM_PID, SIM_ENV, SIM_LOG
#   stop_cloudsim             SIGTERM, wait, then SIGKILL if needed
#   tap_from CMD...           turn 'ok - x' / 'not ok - x' lines into TAP
CLOUDSIM=$QSCALE_TOP/tests/cloudsim/cloudsim
SIMCTL=$QSCALE_TOP/tests/cloudsim/simctl
SIM_ENV=$T/sim.env
SIM_LOG=$T/sim.log
SIM_PID=""

# A base port P with P .. P+3 free on 127.0.0.1 and outside the kernel's
# ephemeral range (where any outgoing connection could take one of them
# before cloudsim binds it).
free_port_base() { "$CLOUDSIM" --free-port-base; }

start_cloudsim() {
	rm -f "$SIM_ENV"
	for _try in 1 2 3; do
		SIM_PORT=$(free_port_base)
		"$CLOUDSIM" --port-base "$SIM_PORT" --env-file "$SIM_ENV" \
		    --log "$SIM_LOG" "$@" >>"$T/cloudsim.out" 2>&1 &
		SIM_PID=$!
		while kill -0 "$SIM_PID" 2>/dev/null && [ ! -s "$SIM_ENV" ]; do
			sleep 0.1
		done
		if [ -s "$SIM_ENV" ]; then
			on_exit stop_cloudsim
			# shellcheck disable=SC1090
			. "$SIM_ENV"
			return 0
		fi
		wait "$SIM_PID" 2>/dev/null
		SIM_PID=""
	done
	diag "cloudsim did not start:"
	diag "$(tail -n 20 "$T/cloudsim.out")"
	return 1
}

stop_cloudsim() {
	[ -n "$SIM_PID" ] || return 0
	kill -TERM "$SIM_PID" 2>/dev/null
	for _i in $(seq 1 100); do
		kill -0 "$SIM_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$SIM_PID" 2>/dev/null
	wait "$SIM_PID" 2>/dev/null
	SIM_PID=""
}

simctl() { "$SIMCTL" --env-file "$SIM_ENV" "$@"; }

# shellcheck disable=SC2154  # _tap_fail, _tap_n: lib.sh's counters
tap_from() {
	_before=$_tap_fail
	while IFS= read -r _line; do
		case $_line in
		"ok - "*) ok "${_line#ok - }" ;;
		"not ok - "*) not_ok "${_line#not ok - }" ;;
		"# "*) echo "$_line" ;;
		__rc=0) ;;
		__rc=*)
			[ "$_tap_fail" -eq "$_before" ] &&
			    not_ok "$(basename "$1") exited ${_line#__rc=}" ;;
		*) diag "$_line" ;;
		esac
	done < <("$@" 2>&1; echo "__rc=$?")
}
