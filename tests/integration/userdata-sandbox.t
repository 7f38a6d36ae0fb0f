#!/bin/bash
# userdata-sandbox.t: the startup script qscale gives its instances, run
# for real with bash and with bash -x in a sandbox: HOME in a temporary
# directory and a PATH holding only stand-ins (userdata-stubs/) for
# apt-get, dpkg, python3 and its virtualenv, curl as a fake IMDSv2,
# clearml-agent and shutdown.  What the agent got (arguments,
# environment, clearml.conf), what ran in which order, and that no
# secret shows in the trace, the output or any command line.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

GEN=$QSCALE_BUILD/tools/userdata-gen
STUBS=$QSCALE_TOP/tests/integration/userdata-stubs
IID=i-0abc1234def567890
CLEARML_SECRET=clearml-SECRET-value-1
AGENT_SECRET=agent-SECRET-value-4
# The git password as the agent must read it back: $, backquotes, both
# quotes, spaces and a backslash, written escaped in the config below.
# shellcheck disable=SC2016 # literal by design
GIT_PASS='g$HOME `id` '\''sq'\'' "dq" SECRET-3 \ end'

# The full configuration: every agent option, a CPU resource with its own
# docker image and a GPU one.
{
	cat <<CONF
name = "sandbox";
workers_prefix = "qtest";
log_dir = "$T/log";
pid_file = "$T/run/qscaled.pid";
control = { socket = "$T/run/control.socket"; };
CONF
	cat <<'CONF'
clearml = {
  api_server = "http://127.0.0.1:8008";
  web_server = "http://127.0.0.1:8080";
  files_server = "http://127.0.0.1:8081";
  access_key = "SCALERACCESS";
  secret_key = "clearml-SECRET-value-1";
};
aws = { region = "us-east-1"; access_key_id = "AKIATEST";
  secret_access_key = "aws-SECRET-value-2"; };
git = { user = "bot"; password = "g$HOME `id` 'sq' \"dq\" SECRET-3 \\ end"; };
agent = {
  docker_image = "agent/img:1";
  agent_version = "1.9.2";
  access_key = "AGENTACCESS";
  secret_key = "agent-SECRET-value-4";
  init_script = "echo \"init: $NVIDIA_VISIBLE_DEVICES $UNSET_IN_INIT\" >\"$HOME/init-ran\"\nexport FOO=from-init\n";
  extra_clearml_conf = "sdk.development.worker.report_period_sec: 3";
};
resources = (
  { name = "cpu"; queue = "q-cpu"; instance_type = "c5.large";
    ami = "ami-12345678"; max_instances = 2; cpu_mode = true;
    docker_image = "res/img:2"; },
  { name = "gpu"; queue = "q-gpu"; instance_type = "g4dn.xlarge";
    ami = "ami-12345678"; max_instances = 2; },
  { name = "odd"; queue = "it's \"$q\" `x` \\"; instance_type = "t3.micro";
    ami = "ami-12345678"; max_instances = 1; docker_image = "a'b $c"; }
);
CONF
} >"$T/full.conf"

# write_min_conf FILE [AGENT KEYS]: only what is required, the agents
# using the autoscaler's own credentials.
write_min_conf() {
	cat >"$1" <<CONF
name = "sandbox";
workers_prefix = "qtest";
log_dir = "$T/log";
pid_file = "$T/run/qscaled.pid";
control = { socket = "$T/run/control.socket"; };
clearml = { api_server = "http://127.0.0.1:8008";
  access_key = "SCALERACCESS"; secret_key = "$CLEARML_SECRET"; };
aws = { region = "us-east-1"; access_key_id = "AKIATEST";
  secret_access_key = "aws-SECRET-value-2"; };
agent = { exclude_bashrc = true; ${2:-} };
resources = (
  { name = "small"; queue = "default"; instance_type = "t3.small";
    ami = "ami-12345678"; max_instances = 1; }
);
CONF
}
write_min_conf "$T/min.conf"
# (under the init script's other name, as ClearML's autoscaler calls it)
write_min_conf "$T/exit.conf" \
    'extra_vm_bash_script = "echo before exit\nexit 3\n";'
chmod 600 "$T"/*.conf

# prepare NAME CONF RESOURCE: the script of RESOURCE and an empty
# sandbox in $T/NAME, with python3 already installed and a .bashrc.
prepare() {
	sb=$T/$1
	mkdir -p "$sb/home" "$sb/bin" "$sb/state"
	if ! "$GEN" -c "$2" -r "$3" >"$sb/script.sh" 2>"$sb/gen.err"; then
		diag "userdata-gen -c $2 -r $3 failed:" "$(cat "$sb/gen.err")"
		return 1
	fi
	for s in apt-get dpkg python3 curl shutdown sleep; do
		ln -s "$STUBS/$s" "$sb/bin/$s"
	done
	for s in rm cat touch; do
		ln -s "$(command -v "$s")" "$sb/bin/$s"
	done
	: >"$sb/state/calls"
	echo python3 >"$sb/state/installed"
	# shellcheck disable=SC2016 # a .bashrc, expanded when sourced
	printf '%s\n' 'touch "$HOME/bashrc-ran"' 'export BASHRC_VAR=yes' \
	    'echo "${UNSET_IN_BASHRC}" >/dev/null' >"$sb/home/.bashrc"
}

# run SHELL [VAR=VALUE...]: run $sb/script.sh with SHELL ("bash" or
# "bash -x") and nothing but the sandbox in its environment.
run() {
	local sh
	read -r -a sh <<<"$1"
	shift
	(cd "$sb/home" && env -i HOME="$sb/home" PATH="$sb/bin" \
	    QS_SB="$sb/state" QS_STUBS="$STUBS" QS_INSTANCE_ID="$IID" "$@" \
	    /usr/bin/timeout 60 "/bin/${sh[0]}" "${sh[@]:1}" "$sb/script.sh" \
	    >"$sb/out" 2>"$sb/err")
	echo $? >"$sb/rc"
}

called() { grep -qxF -- "$1" "$sb/state/calls"; }
ncalls() { grep -c -- "$1" "$sb/state/calls"; }
# before A B: the first call matching A comes before the first matching B.
before() {
	local a b
	a=$(grep -n -m1 -- "$1" "$sb/state/calls" | cut -d: -f1)
	b=$(grep -n -m1 -- "$2" "$sb/state/calls" | cut -d: -f1)
	[ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]
}
# shut_down_once: the script ended with exactly one shutdown, the last
# thing it ran.
shut_down_once() {
	[ "$(ncalls '^shutdown')" = 1 ] &&
	    [ "$(tail -n 1 "$sb/state/calls")" = "shutdown -h now" ]
}
agent_args_are() {
	printf '%s\n' "$@" | diff - "$sb/state/agent-args" >&2
}
agent_env_has() { grep -qxF -- "$1" "$sb/state/agent-env"; }
agent_env_lacks() { ! grep -q -- "^$1=" "$sb/state/agent-env"; }
# calls_are PATTERN N: N calls match PATTERN.
calls_are() { [ "$(ncalls "$1")" = "$2" ]; }
# conf_value KEY EXPECTED: clearml.conf sets KEY to the quoted string
# EXPECTED (HOCON quoted strings follow JSON's rules).
conf_value() {
	KEY=$1 WANT=$2 python3 - "$sb/state/agent-conf" <<'PY'
import json, os, re, sys
key, want = os.environ["KEY"], os.environ["WANT"]
for line in open(sys.argv[1]):
    m = re.match(r'\s*' + re.escape(key) + r': (".*")\s*$', line)
    if m and json.loads(m.group(1)) == want:
        sys.exit(0)
sys.exit(1)
PY
}
clean_run() {
	! grep -E 'command not found|unbound variable|syntax error' "$sb/err"
}
# no_secret: none of the secrets (nor the IMDS session tokens) in the
# trace, the output, any command line run, or the agent's environment.
no_secret() {
	local s f n
	for f in out err state/calls state/agent-env; do
		[ -f "$sb/$f" ] || continue
		n=0
		for s in "$CLEARML_SECRET" "$AGENT_SECRET" "$GIT_PASS" \
		    SECRET-3 aws-SECRET AGENTACCESS; do
			n=$((n + 1))
			if grep -qF -- "$s" "$sb/$f"; then
				diag "secret number $n found in $f"
				return 1
			fi
		done
		if [ -s "$sb/state/imds-tokens" ] &&
		    grep -qFf "$sb/state/imds-tokens" "$sb/$f"; then
			diag "IMDS token found in $f"
			return 1
		fi
	done
}

# The fake IMDS refuses what real IMDSv2 refuses, or the checks below
# would prove nothing.
mkdir -p "$T/imds"
imds() { QS_SB=$T/imds "$STUBS/curl" -fsS "$@" 2>/dev/null; }
: >"$T/imds/calls"
tok=$(imds -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \
    http://169.254.169.254/latest/api/token)
check "fake IMDS: PUT gives a token" test -n "$tok"
check "fake IMDS: GET without the token is refused" \
    test "$(imds http://169.254.169.254/latest/meta-data/instance-id; echo $?)" = 22
check "fake IMDS: GET with another token is refused" \
    test "$(imds -H 'X-aws-ec2-metadata-token: AAAA' \
    http://169.254.169.254/latest/meta-data/instance-id; echo $?)" = 22
check "fake IMDS: PUT without a TTL is refused" \
    test "$(imds -X PUT http://169.254.169.254/latest/api/token; echo $?)" = 22
check "fake IMDS: GET with the token gives the instance id" \
    test "$(printf 'X-aws-ec2-metadata-token: %s' "$tok" | QS_INSTANCE_ID=i-42 \
    imds -H @- http://169.254.169.254/latest/meta-data/instance-id)" = i-42

# --- everything configured, CPU mode, run with bash and with bash -x ---
for mode in bash "bash -x"; do
	name=full-${mode// /}
	if ! prepare "$name" "$T/full.conf" cpu; then
		not_ok "$mode: generate the script"
		continue
	fi
	check "$mode: the script passes bash -n" bash -n "$sb/script.sh"
	run "$mode"
	check "$mode: exits without an error of the shell" clean_run
	check "$mode: python3-venv, pip and git installed, python3 skipped" \
	    called "apt-get -q -y -o DPkg::Lock::Timeout=600 install python3-venv python3-pip git"
	check "$mode: apt-get update first, waiting for the dpkg lock" \
	    before "^apt-get -q -o DPkg::Lock::Timeout=600 update" "^apt-get .* install"
	check "$mode: the virtualenv is made under HOME" \
	    called "python3 -m venv $sb/home/clearml-agent-venv"
	check "$mode: pip installs the pinned clearml-agent" \
	    called "pip install --upgrade --disable-pip-version-check clearml-agent==1.9.2"
	check "$mode: .bashrc sourced" test -f "$sb/home/bashrc-ran"
	check "$mode: init script ran after NVIDIA_VISIBLE_DEVICES=none" \
	    grep -qx "init: none " "$sb/home/init-ran"
	check "$mode: instance id read through IMDSv2, token first" \
	    before "^curl PUT http://169.254.169.254/latest/api/token 200" \
	    "^curl GET http://169.254.169.254/latest/meta-data/instance-id 200"
	check "$mode: agent arguments: queue, the resource's image, CPU only" \
	    agent_args_are --config-file "$sb/home/clearml.conf" daemon \
	    --queue q-cpu --docker res/img:2 --cpu-only
	check "$mode: warns that this image has no docker" \
	    grep -q "warning: no docker here" "$sb/err"
	check "$mode: CLEARML_WORKER_ID holds the instance id" \
	    agent_env_has "CLEARML_WORKER_ID=qtest:cpu:c5.large:$IID"
	check "$mode: the agent sees NVIDIA_VISIBLE_DEVICES=none" \
	    agent_env_has NVIDIA_VISIBLE_DEVICES=none
	check "$mode: what the init script exports reaches the agent" \
	    agent_env_has FOO=from-init
	check "$mode: what .bashrc exports reaches the agent" \
	    agent_env_has BASHRC_VAR=yes
	check "$mode: clearml.conf is mode 600" \
	    test "$(cat "$sb/state/agent-conf-mode")" = 600
	check "$mode: clearml.conf: api server" \
	    conf_value api_server http://127.0.0.1:8008
	check "$mode: clearml.conf: web server" \
	    conf_value web_server http://127.0.0.1:8080
	check "$mode: clearml.conf: files server" \
	    conf_value files_server http://127.0.0.1:8081
	check "$mode: clearml.conf: the agent's own access key" \
	    conf_value access_key AGENTACCESS
	check "$mode: clearml.conf: the agent's own secret key" \
	    conf_value secret_key "$AGENT_SECRET"
	check "$mode: clearml.conf: git user" conf_value git_user bot
	check "$mode: clearml.conf: the hostile git password intact" \
	    conf_value git_pass "$GIT_PASS"
	check "$mode: clearml.conf: extra configuration verbatim" grep -qxF \
	    "sdk.development.worker.report_period_sec: 3" "$sb/state/agent-conf"
	check "$mode: shutdown after the agent exited" \
	    before "^clearml-agent " "^shutdown"
	check "$mode: shutdown once, the last thing run" shut_down_once
	check "$mode: no secret in output, trace, command lines or environment" \
	    no_secret
done
check "bash -x really traced the script" grep -q '^+ shutdown -h now$' \
    "$T/full-bash-x/err"

# --- the test cloud's simulated agents read the same values back ---
sim_reads() {
	WANT=$2 python3 - "$1" "$QSCALE_TOP/tests/cloudsim" <<'PY'
import json, os, sys
sys.path.insert(0, sys.argv[2])
from sim.script import read_script
iid = "i-0123456789abcdef0"
r = read_script(open(sys.argv[1]).read(), iid, "ip-10-0-0-1",
                require_worker_id=True)
got = {"worker_id_prefix": (r.worker or "")[:-len(":" + iid)]
       if (r.worker or "").endswith(":" + iid) else r.worker,
       "queue": " ".join(r.queues), "api_server": r.api_server,
       "access_key": r.access_key, "secret_key": r.secret_key}
want = json.loads(os.environ["WANT"])
if r.missing or not r.agent or got != want:
    print("# read_script: %r, agent %r, missing %r"
          % (got, r.agent, r.missing))
    sys.exit(1)
PY
}
check "the simulated agents read the CPU resource's script" \
    sim_reads "$T/full-bash/script.sh" '{"worker_id_prefix":
    "qtest:cpu:c5.large", "queue": "q-cpu", "api_server":
    "http://127.0.0.1:8008", "access_key": "AGENTACCESS",
    "secret_key": "agent-SECRET-value-4"}'

# --- the GPU resource of the same file: the agent's image, no CPU mode ---
prepare gpu "$T/full.conf" gpu && run bash
check "gpu: agent arguments: the agent's docker image, GPUs allowed" \
    agent_args_are --config-file "$sb/home/clearml.conf" daemon \
    --queue q-gpu --docker agent/img:1
check "gpu: no NVIDIA_VISIBLE_DEVICES" agent_env_lacks NVIDIA_VISIBLE_DEVICES
check "gpu: CLEARML_WORKER_ID" \
    agent_env_has "CLEARML_WORKER_ID=qtest:gpu:g4dn.xlarge:$IID"

# --- a queue and an image full of quotes reach the agent intact ---
# shellcheck disable=SC1003,SC2016 # literal by design
ODD_QUEUE='it'\''s "$q" `x` \'
prepare odd "$T/full.conf" odd && run "bash -x"
check "odd: agent arguments: the queue and the image intact" \
    agent_args_are --config-file "$sb/home/clearml.conf" daemon \
    --queue "$ODD_QUEUE" --docker "a'b \$c"
check "odd: clean run" clean_run
check "odd: no secret anywhere" no_secret
check "the simulated agents read the odd queue" \
    sim_reads "$sb/script.sh" "$(jq -n --arg q "$ODD_QUEUE" \
    '{worker_id_prefix: "qtest:odd:t3.micro", queue: $q,
    api_server: "http://127.0.0.1:8008", access_key: "AGENTACCESS",
    secret_key: "agent-SECRET-value-4"}')"

# --- minimal: nothing to install, no bashrc, latest agent, exit 1 ---
prepare min "$T/min.conf" small
printf '%s\n' python3-venv python3-pip git >>"$sb/state/installed"
run "bash -x" QS_AGENT_RC=1
check "min: clean run" clean_run
check "min: packages already there: no apt-get" calls_are '^apt-get' 0
check "min: pip installs the latest clearml-agent" \
    called "pip install --upgrade --disable-pip-version-check clearml-agent"
check "min: .bashrc not sourced (exclude_bashrc)" \
    test ! -e "$sb/home/bashrc-ran"
check "min: agent arguments: the queue only" agent_args_are \
    --config-file "$sb/home/clearml.conf" daemon --queue default
check "min: no NVIDIA_VISIBLE_DEVICES" agent_env_lacks NVIDIA_VISIBLE_DEVICES
check "min: CLEARML_WORKER_ID" \
    agent_env_has "CLEARML_WORKER_ID=qtest:small:t3.small:$IID"
check "min: clearml.conf: the autoscaler's access key" \
    conf_value access_key SCALERACCESS
check "min: clearml.conf: the autoscaler's secret key" \
    conf_value secret_key "$CLEARML_SECRET"
check "min: clearml.conf: no git section" \
    test "$(grep -c git_ "$sb/state/agent-conf")" = 0
check "min: the agent's exit 1 is logged" \
    grep -q "clearml-agent exited with status 1" "$sb/err"
check "min: shutdown after the agent failed" \
    before "^clearml-agent " "^shutdown"
check "min: shutdown once, the last thing run" shut_down_once
check "min: no secret anywhere" no_secret
check "the simulated agents read the minimal script" \
    sim_reads "$sb/script.sh" '{"worker_id_prefix": "qtest:small:t3.small",
    "queue": "default", "api_server": "http://127.0.0.1:8008",
    "access_key": "SCALERACCESS", "secret_key": "clearml-SECRET-value-1"}'

# --- the package install keeps failing ---
prepare aptfail "$T/full.conf" cpu && run bash QS_APT_FAIL=1
check "apt fails: tried 5 times" calls_are '^apt-get .*update' 5
check "apt fails: waits longer each time" test \
    "$(grep ^sleep "$sb/state/calls" | tr '\n' ' ')" = \
    "sleep 15 sleep 30 sleep 45 sleep 60 "
check "apt fails: says so" grep -q "cannot install python3-venv" "$sb/err"
check "apt fails: no virtualenv, no agent" \
    calls_are '^python3\|^pip\|^clearml-agent' 0
check "apt fails: shutdown" shut_down_once
check "apt fails: no secret anywhere" no_secret

# --- pip keeps failing ---
prepare pipfail "$T/min.conf" small && run bash QS_PIP_FAIL=1
check "pip fails: tried 5 times" calls_are ^pip 5
check "pip fails: no agent" calls_are ^clearml-agent 0
check "pip fails: shutdown" shut_down_once

# --- IMDS unreachable: no worker id, so no agent ---
prepare imdsdown "$T/min.conf" small && run bash QS_IMDS_DOWN=1
check "IMDS down: tried 10 times" calls_are "^curl PUT" 10
check "IMDS down: no agent" calls_are ^clearml-agent 0
check "IMDS down: shutdown" shut_down_once
check "IMDS down: says so" \
    grep -q "cannot read the instance id from IMDSv2" "$sb/err"

# --- an init script that exits ends the script with a shutdown ---
prepare initexit "$T/exit.conf" small && run bash
check "init exits: ran up to its exit" grep -qx "before exit" "$sb/out"
check "init exits: no agent" calls_are ^clearml-agent 0
check "init exits: shutdown" shut_down_once

# --- no apt-get: dnf, with a python3 whose venv is built in ---
prepare dnf "$T/min.conf" small
rm -f "$sb/bin/apt-get" "$sb/bin/dpkg"
ln -s "$STUBS/dnf" "$sb/bin/dnf"
ln -s "$STUBS/rpm" "$sb/bin/rpm"
run bash QS_VENV_BUILTIN=1
check "dnf: installs python3, pip and git" \
    called "dnf -q -y install python3 python3-pip git"
check "dnf: the agent ran" calls_are ^clearml-agent 1
check "dnf: shutdown" shut_down_once
