# Shared helpers for the integration tests: TAP output, a private
# temporary directory, free ports, qscaled started and always stopped.
# Sourced by tests/integration/*.t (bash).

set -u
QSCALE_TOP=${QSCALE_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
QSCALE_BUILD=${QSCALE_BUILD:-$QSCALE_TOP/build}
QSCALED=$QSCALE_BUILD/qscaled
QSCALECTL=$QSCALE_BUILD/qscalectl

T=$(mktemp -d "${TMPDIR:-/tmp}/qscale-test.XXXXXX")
chmod 700 "$T"
# qscaled refuses log and pid-file directories others may write in: the
# ones the tests make must not be group-writable, whatever the umask.
umask 022
_tap_n=0
_tap_fail=0
_cleanups=""

# TAP lines go to the test's own stdout (fd 3) even when a checked
# command's output is redirected: check "..." cmd >/dev/null.
exec 3>&1
ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*" >&3; }
not_ok() {
	_tap_n=$((_tap_n + 1))
	_tap_fail=$((_tap_fail + 1))
	echo "not ok $_tap_n - $*" >&3
}
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }
# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() {
	_d=$1
	shift
	if "$@"; then ok "$_d"; else not_ok "$_d"; fi
}
# Run at exit, last added first.
on_exit() { _cleanups="$*; $_cleanups"; }
_finish() {
	_rc=$?
	eval "$_cleanups" >/dev/null 2>&1
	if [ "${KEEP_TEST_DIR:-}" = "" ]; then rm -rf "$T"; else diag "kept $T"; fi
	echo "1..$_tap_n"
	[ "$_tap_fail" -eq 0 ] && [ "$_rc" -eq 0 ] && exit 0
	exit 1
}
trap _finish EXIT
trap 'exit 1' INT TERM

# wait_for SECONDS COMMAND...: poll every 0.1 s until it succeeds.
wait_for() {
	_until=$(($(date +%s%N) / 1000000 + $1 * 1000))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(($(date +%s%N) / 1000000))" -ge "$_until" ] && return 1
		sleep 0.1
	done
	return 0
}

# A TCP port nobody listens on, on 127.0.0.1, outside the kernel's
# ephemeral range: there another process's outgoing connection (or a probe
# connecting to itself) could take it before the server binds it.
free_port() {
	python3 -c 'import random, socket
try:
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
except (OSError, ValueError):
    lo, hi = 32768, 60999
ports = [p for p in range(20000, 65536) if p < lo or p > hi] or [0]
for p in random.sample(ports, min(200, len(ports))) + [0]:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        print(s.getsockname()[1])
        break
    except OSError:
        pass
    finally:
        s.close()'
}

# write_conf FILE RESOURCES...: a minimal valid configuration whose
# resources are named as given, each on queue "q-NAME".
write_conf() {
	_f=$1
	shift
	{
		cat <<CONF
name = "test";
workers_prefix = "qtest";
polling_interval = "1s";
log_dir = "$T/log";
pid_file = "$T/run/qscaled.pid";
control = { socket = "$T/run/control.socket"; };
status = { listen = "127.0.0.1:$(free_port)"; };
clearml = {
  api_server = "http://127.0.0.1:9";
  access_key = "TESTACCESSKEY";
  secret_key = "clearml-SECRET-value-1";
};
aws = {
  region = "us-east-1";
  access_key_id = "AKIATESTKEY";
  secret_access_key = "aws-SECRET-value-2";
  endpoint = "http://127.0.0.1:9";
};
git = { user = "bot"; password = "git-SECRET-value-3"; };
resources = (
CONF
		_sep=""
		for r in "$@"; do
			printf '%s  { name = "%s"; queue = "q-%s"; instance_type = "t3.micro"; ami = "ami-12345678"; max_instances = 2; }\n' \
			    "$_sep" "$r" "$r"
			_sep=","
		done
		echo ");"
	} >"$_f"
	chmod 600 "$_f"
}
SECRETS="clearml-SECRET-value-1 aws-SECRET-value-2 git-SECRET-value-3"

# no_secret_in FILE...: none of the test secrets appears in the files.
no_secret_in() {
	_i=0
	for s in $SECRETS; do
		_i=$((_i + 1))
		if grep -rqF -- "$s" "$@"; then
			# the file, not the secret: the test log is kept
			diag "secret number $_i of \$SECRETS found in:" \
			    "$(grep -rlF -- "$s" "$@")"
			return 1
		fi
	done
	return 0
}

ctl() { "$QSCALECTL" -s "$T/run/control.socket" "$@"; }

# start_qscaled CONF: qscaled -f in the background; SUP_PID is its pid.
start_qscaled() {
	"$QSCALED" -f -c "$1" >>"$T/qscaled.out" 2>&1 &
	SUP_PID=$!
	on_exit "stop_qscaled"
	wait_for 10 test -S "$T/run/control.socket"
}

stop_qscaled() {
	[ -n "${SUP_PID:-}" ] || return 0
	kill -TERM "$SUP_PID" 2>/dev/null
	for _i in $(seq 1 100); do
		kill -0 "$SUP_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$SUP_PID" 2>/dev/null
	pkill -KILL -P "$SUP_PID" 2>/dev/null
	wait "$SUP_PID" 2>/dev/null
	SUP_PID=""
}

# child_pid NAME: pid of the worker process of a resource (status).
child_pid() {
	ctl status -j 2>/dev/null | jq -r --arg n "$1" \
	    '.resources[] | select(.name == $n) | .pid'
}
# child_state NAME
child_state() {
	ctl status -j 2>/dev/null | jq -r --arg n "$1" \
	    '.resources[] | select(.name == $n) | .state'
}
# children_of PID: the pids of its child processes.
children_of() { pgrep -P "$1" | sort; }
