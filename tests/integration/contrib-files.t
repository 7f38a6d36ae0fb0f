#!/usr/bin/env bash
# shellcheck disable=SC2016
# The files that run qscale as a service, checked with the tools that
# read them and against the programs they describe: the init script
# (shellcheck, LSB header), the systemd unit (systemd-analyze, and its
# commands run for real), the defaults file, logrotate (-d, then a real
# rotation with a running qscaled), the manuals (mandoc -T lint, every
# flag, command and configuration key and default, the examples), the
# Grafana dashboard and the IAM policy.
. "$(dirname "$0")/lib.sh"

C=$QSCALE_TOP/contrib
M=$QSCALE_TOP/man
# Run a check whose reasons go to $T/why; ok when it printed nothing.
quiet() {
	_d=$1
	shift
	"$@" >"$T/why" 2>&1
	_rc=$?
	if [ "$_rc" -eq 0 ] && [ ! -s "$T/why" ]; then
		ok "$_d"
	else
		not_ok "$_d"
		diag "$(cat "$T/why")"
	fi
}
skip() { ok "# SKIP $*"; }

# ---- init script
quiet "the init script is shellcheck clean (POSIX sh)" \
    shellcheck -x -s sh "$C/qscaled.init"
check "the init script parses with dash" dash -n "$C/qscaled.init"
check "the init script is executable" test -x "$C/qscaled.init"
hdr=$(sed -n '/^### BEGIN INIT INFO/,/^### END INIT INFO/p' "$C/qscaled.init")
lsb() { printf '%s\n' "$hdr" | grep -qE "^# $1"; }
check "LSB header: Provides qscaled" lsb 'Provides: +qscaled$'
check "LSB header: Required-Start \$network \$remote_fs" \
    sh -c "printf '%s\n' \"\$1\" | grep '^# Required-Start:' | grep -q '\$network' &&
    printf '%s\n' \"\$1\" | grep '^# Required-Start:' | grep -q '\$remote_fs'" _ "$hdr"
check "LSB header: Default-Start 2 3 4 5" lsb 'Default-Start: +2 3 4 5$'
check "LSB header: Default-Stop 0 1 6" lsb 'Default-Stop: +0 1 6$'
check "LSB header: Short-Description" lsb 'Short-Description: +[^ ]'
check "LSB header: Description" lsb 'Description: +[^ ]'

# ---- defaults file: read by sh and by systemd, so plain NAME=value only
bad=$(grep -vnE '^(#.*|[A-Z_][A-Z0-9_]*=("[^"$`\\]*"|[^"$`\\ ]*))?$' \
    "$C/qscaled.default")
check "the defaults file is plain NAME=value lines ($bad)" test -z "$bad"
for v in CONF DAEMON PIDFILE QSCALED_USER STOP_TIMEOUT; do
	check "the defaults file sets $v" grep -q "^$v=" "$C/qscaled.default"
	check "the init script reads $v" grep -q "\$$v\|\${$v" "$C/qscaled.init"
done
check "the unit reads the defaults file" \
    grep -qx 'EnvironmentFile=-/etc/default/qscaled' "$C/qscaled.service"
check "the defaults' PIDFILE is qscaled's default pid_file" \
    grep -qx 'PIDFILE=/run/qscale/qscaled.pid' "$C/qscaled.default"

# ---- systemd unit
U=$C/qscaled.service
unit_has() { grep -qx -- "$1" "$U"; }
check "unit: ExecStartPre checks the configuration" \
    unit_has 'ExecStartPre=/usr/local/sbin/qscaled -n -c ${CONF}'
check "unit: ExecStart runs in the foreground" \
    unit_has 'ExecStart=/usr/local/sbin/qscaled -f -c ${CONF}'
check "unit: ExecReload checks, then sends HUP" \
    sh -c "grep '^ExecReload=' '$U' | tr '\n' '|' |
    grep -qx 'ExecReload=/usr/local/sbin/qscaled -n -c \${CONF}|ExecReload=/bin/kill -HUP \$MAINPID|'"
for d in Restart=on-failure RuntimeDirectory=qscale LogsDirectory=qscale \
    NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes \
    KillMode=mixed 'ReadWritePaths=/run/qscale /var/log/qscale'; do
	check "unit: $d" unit_has "$d"
done
mkdir -p "$T/man/man5" "$T/man/man8" "$T/unit"
cp "$M"/*.5 "$T/man/man5/"
cp "$M"/*.8 "$T/man/man8/"
sed "s|/usr/local/sbin/qscaled|$QSCALED|g" "$U" >"$T/unit/qscaled.service"
if ! command -v systemd-analyze >/dev/null 2>&1; then
	skip "systemd-analyze verify: systemd-analyze is not installed"
	skip "systemd-analyze security: systemd-analyze is not installed"
else
	# Documentation= is looked up with man(1): our own pages.
	manopt=""
	command -v man >/dev/null 2>&1 || manopt=--man=no
	quiet "systemd-analyze verify passes${manopt:+ ($manopt: no man(1))}" \
	    env MANPATH="$T/man" systemd-analyze verify $manopt \
	    "$T/unit/qscaled.service"
	if systemd-analyze security --offline=yes "$T/unit/qscaled.service" \
	    >"$T/security" 2>&1; then
		lvl=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T/security")
		check "systemd-analyze security: exposure $lvl is below 4 (OK)" \
		    awk -v l="$lvl" 'BEGIN { exit !(l != "" && l < 4) }'
	else
		skip "systemd-analyze security --offline: not supported here"
	fi
fi

# The unit's own command lines, as systemd would run them (no systemd
# needed): the check, the daemon in the foreground, the reload.
write_conf "$T/qscale.conf" gpu
cp "$T/qscale.conf" "$T/good.conf"
unit_cmd() {
	grep "^$1=" "$U" | sed -n "${2:-1}p" | cut -d= -f2- |
	    sed -e "s|/usr/local/sbin/qscaled|$QSCALED|" \
	    -e "s|\${CONF}|$T/qscale.conf|" -e "s|\$MAINPID|${3:-}|"
}
# unit_run KEY [N [MAINPID]]: that command line, split into words as
# systemd splits these simple ones.
unit_run() {
	local -a argv
	read -r -a argv <<<"$(unit_cmd "$@")"
	"${argv[@]}"
}
unit_exec() {
	local -a argv
	read -r -a argv <<<"$(unit_cmd "$@")"
	exec "${argv[@]}"
}
unit_run ExecStartPre >"$T/pre.out" 2>&1
check "the unit's ExecStartPre passes a good configuration" test $? -eq 0
sed -i 's/^polling_interval = "1s";/polling_interval = "soon";/' "$T/qscale.conf"
unit_run ExecStartPre >"$T/pre.out" 2>&1
rc=$?
check "the unit's ExecStartPre fails a broken one" test "$rc" -ne 0
check "with qscaled's FILE:LINE error" grep -q "^$T/qscale.conf:3:" "$T/pre.out"
cp "$T/good.conf" "$T/qscale.conf"
unit_exec ExecStart >"$T/unit.out" 2>&1 &
SUP_PID=$!
on_exit stop_qscaled
check "the unit's ExecStart runs qscaled in the foreground" \
    wait_for 10 test -S "$T/run/control.socket"
check "as the process systemd would track (MAINPID)" \
    test "$(cat "$T/run/qscaled.pid" 2>/dev/null)" = "$SUP_PID"
unit_run ExecReload 1 "$SUP_PID" >/dev/null 2>&1 &&
    unit_run ExecReload 2 "$SUP_PID"
check "the unit's ExecReload lines run" test $? -eq 0
check "and qscaled reloads" \
    wait_for 5 grep -q 'configuration reloaded' "$T/log/qscaled.log"

# ---- logrotate
L=$C/qscale.logrotate
check "logrotate: rotates /var/log/qscale/*.log" grep -q '^/var/log/qscale/\*\.log {' "$L"
check "logrotate: sends USR1 to the pid in the pid file" \
    grep -q 'kill -USR1 "$pid"' "$L"
check "logrotate: reads the default pid file" grep -q '/run/qscale/qscaled.pid' "$L"
if ! command -v logrotate >/dev/null 2>&1; then
	skip "logrotate -d: logrotate is not installed (contrib/deps.sh installs it)"
	skip "a real rotation: logrotate is not installed"
else
	install -m 0644 "$L" "$T/lr-d.conf"
	logrotate -d -s "$T/lr-d.state" "$T/lr-d.conf" >"$T/lr-d.out" 2>&1
	rc=$?
	check "logrotate -d accepts the file" test "$rc" -eq 0
	check "logrotate -d reports no error" \
	    sh -c "! grep -qi 'error' '$T/lr-d.out'"
	# For real, on the running qscaled's own logs.
	sed -e "s|/var/log/qscale|$T/log|" -e "s|/run/qscale/qscaled.pid|$T/run/qscaled.pid|" \
	    "$L" >"$T/lr.conf"
	chmod 0644 "$T/lr.conf"
	wait_for 10 test -s "$T/log/gpu.log"
	logrotate -f -s "$T/lr.state" "$T/lr.conf" >"$T/lr.out" 2>&1
	check "logrotate rotates qscaled's logs" \
	    sh -c "test -s '$T/log/qscaled.log.1' && test -s '$T/log/gpu.log.1'"
	check "and qscaled reopens them on USR1" \
	    wait_for 5 grep -q 'log files reopened' "$T/log/qscaled.log"
	check "the daemon goes on" kill -0 "$SUP_PID"
fi
stop_qscaled

# ---- manuals
lint_warnings() {
	mandoc -T lint -W warning "$@"
}
# Style too, but a manual of another package may be missing here.
lint_style() {
	MANPATH=$T/man mandoc -T lint -W style "$@" 2>&1 |
	    grep -v 'outdated mandoc.db' |
	    grep -vE 'referenced manual not found: Xr (systemd|systemd\.exec|logrotate) [0-9]' ||
	    true
}
for p in "$M/qscaled.8" "$M/qscalectl.8" "$M/qscale.conf.5"; do
	quiet "mandoc -T lint: no warnings in $(basename "$p")" lint_warnings "$p"
	quiet "mandoc -T lint -W style: nothing in $(basename "$p")" lint_style "$p"
done
render() { MANPATH=$T/man mandoc -T ascii "$1" 2>/dev/null | col -b; }

# qscaled(8): every flag qscaled's usage names, and --check and --plan.
"$QSCALED" -h >"$T/usage" 2>&1
flags=$(grep -oE '(^| )--?[A-Za-z][-a-z]*' "$T/usage" | tr -d ' ' | sort -u)
check "qscaled -h lists flags" test -n "$flags"
for f in $flags --check --plan; do
	case $f in
	--*) pat="Fl \\\\-${f#--}" ;;
	-*) pat="Fl ${f#-}" ;;
	esac
	check "qscaled(8) documents $f" grep -q "$pat" "$M/qscaled.8"
done
# Combined flags in usage (-dfnv): each letter.
for l in $(sed -n 's/.*\[-\([a-zA-Z]*\)\].*/\1/p' "$T/usage" | head -n 1 | fold -w1); do
	check "qscaled(8) documents -$l" grep -q "^\.It Fl $l" "$M/qscaled.8"
done
for s in HUP TERM INT USR1; do
	check "qscaled(8) documents SIG$s" grep -q "Dv $s" "$M/qscaled.8"
done
for s in SYNOPSIS DESCRIPTION FILES "EXIT STATUS" EXAMPLES "SEE ALSO"; do
	check "qscaled(8) has $s" grep -qx ".Sh $s" "$M/qscaled.8"
done

# qscalectl(8): every command and option of qscalectl's usage.
"$QSCALECTL" -h >"$T/ctl-usage" 2>&1
cmds=$(sed -n '/^commands:/,$p' "$T/ctl-usage" | sed -n 's/^  \([a-z][-a-z]*\).*/\1/p')
check "qscalectl -h lists commands" test -n "$cmds"
for c in $cmds; do
	check "qscalectl(8) documents the command $c" grep -q "^\.It Cm $c" "$M/qscalectl.8"
	opts=$(grep "^  $c " "$T/ctl-usage" | grep -oE -- '\[--?[a-z][-a-z]*' |
	    tr -d '[' | sort -u)
	for o in $opts; do
		# -j is "Fl j", --with-secrets "Fl \-with-secrets".
		fl="Fl $(printf '%s' "${o#-}" | sed 's/^-/\\-/')"
		check "qscalectl(8) documents $c $o" \
		    sh -c "grep '^\.It Cm $c' '$M/qscalectl.8' | grep -qF -- '$fl'"
	done
done
for o in s c; do
	check "qscalectl(8) documents -$o" grep -q "^\.It Fl $o" "$M/qscalectl.8"
done
order=$(render "$M/qscalectl.8" | tr '\n' ' ' | tr -s ' ' |
    sed -n 's/.*looked for, in this order: \(.*control\.socket\)\. .*/\1/p')
check "qscalectl(8) gives the socket lookup order -s, -c, \$QSCALE_SOCKET, default ($order)" \
    sh -c "printf '%s' \"\$1\" | grep -q -- '-s.*-c.*QSCALE_SOCKET.*/run/qscale/control.socket'" _ "$order"
# ... and it is the order qscalectl follows.
sock() { "$QSCALECTL" "$@" status 2>&1 | sed -n 's/.*no qscaled answers on \([^:]*\):.*/\1/p'; }
write_conf "$T/ctl.conf" gpu
sed -i "s|$T/run/control.socket|$T/ctl/control.socket|" "$T/ctl.conf"
check "qscalectl: the default socket is /run/qscale/control.socket" \
    test "$(env -u QSCALE_SOCKET "$QSCALECTL" status 2>&1 |
    sed -n 's/.*answers on \([^:]*\):.*/\1/p')" = /run/qscale/control.socket
export QSCALE_SOCKET=$T/env.sock
check "qscalectl: \$QSCALE_SOCKET comes before the default" test "$(sock)" = "$T/env.sock"
check "qscalectl: -c comes before \$QSCALE_SOCKET" \
    test "$(sock -c "$T/ctl.conf")" = "$T/ctl/control.socket"
check "qscalectl: -s comes before \$QSCALE_SOCKET" \
    test "$(sock -s "$T/s.sock")" = "$T/s.sock"
unset QSCALE_SOCKET

# qscale.conf(5): every key qscaled knows (qscaled -nv on a minimal
# configuration prints them all), with its default.
cat >"$T/min.conf" <<EOF
clearml = { api_server = "http://127.0.0.1:9"; access_key = "a";
  secret_key = "clearml-SECRET-value-1"; };
resources = ( { name = "r"; queue = "q"; instance_type = "t3.micro";
  ami = "ami-12345678"; } );
EOF
chmod 600 "$T/min.conf"
env -i PATH="$PATH" "$QSCALED" -nv -c "$T/min.conf" >"$T/nv" 2>&1
check "qscaled -nv prints a minimal configuration" grep -qx 'configuration OK' "$T/nv"
python3 - "$T/nv" "$M/qscale.conf.5" >"$T/keys.out" 2>&1 <<'EOF'
import re, sys
nv, man = open(sys.argv[1]).read().splitlines(), open(sys.argv[2]).read()

# qscaled -nv: key = value;  # origin, in groups and the resources list.
keys, stack = {}, []
for line in nv:
    s = line.strip()
    if not s or s.startswith('#') or s == 'configuration OK':
        continue
    m = re.match(r'^([a-z_]+) = \{(?:  # (.*))?$', s)
    if m:
        stack.append(m.group(1))
        if m.group(2):      # tags = {  # not set
            keys[tuple(stack)] = ('', m.group(2))
        continue
    if s in ('};', '},', '}'):
        if stack and stack[-1] != '{':
            stack.pop()
        elif stack:
            stack.pop()
        continue
    m = re.match(r'^([a-z_]+) = \($', s)
    if m:
        stack.append(m.group(1))
        continue
    if s == '{':
        stack.append('{')
        continue
    if s == ');':
        stack.pop()
        continue
    m = re.match(r'^([a-z_]+) = (.*);  # (.*)$', s)
    if not m:
        print('cannot read -nv line: %r' % line)
        continue
    keys[tuple(stack + [m.group(1)])] = (m.group(2), m.group(3))

def doc_path(path):
    if path[0] == 'resources':
        return 'resource', '.'.join(p for p in path[1:] if p != '{')
    return 'global', '.'.join(path)

# The manual: .It Cm KEY Pq TYPE, ..., in GLOBAL KEYS or RESOURCES.
docs, section = {}, None
for line in man.splitlines():
    m = re.match(r'^\.Sh (.*)$', line)
    if m:
        section = {'GLOBAL KEYS': 'global', 'RESOURCES': 'resource'}.get(m.group(1))
        continue
    m = re.match(r'^\.It Cm ([a-z_.]+) Pq (.*)$', line)
    if m and section:
        docs[(section, m.group(1))] = m.group(2)

seen = set()
for path, (value, origin) in sorted(keys.items()):
    where = doc_path(path)
    seen.add(where)
    if where not in docs:
        print('qscale.conf(5) does not document %s key %s' % where)
        continue
    pq = docs[where]
    m = re.search(r'default (.*)$', pq)
    if origin == 'default':
        want = value.strip('"')
        if not m:
            print('%s: -nv has default %s, the manual none (%s)' % (where[1], want, pq))
        elif 'Ar ' not in m.group(1) and m.group(1) != want:
            print('%s: default %s in the manual, %s in qscaled' % (where[1], m.group(1), want))
    elif origin == 'not set' and m:
        print('%s: the manual says default %s, qscaled sets none' % (where[1], m.group(1)))
for where in sorted(set(docs) - seen):
    print('qscale.conf(5) documents %s key %s, which qscaled does not know' % where)
if len(keys) < 40:
    print('only %d keys read from qscaled -nv' % len(keys))
EOF
check "qscale.conf(5) documents every key with qscaled's default ($(wc -l <"$T/keys.out") problems)" \
    test ! -s "$T/keys.out"
[ ! -s "$T/keys.out" ] || diag "$(cat "$T/keys.out")"
# The environment qscaled reads: the key table's variables and every
# getenv() of the daemon's code.
envs=$({
	cat "$QSCALE_TOP"/common/conf_keys.c 2>/dev/null | grep -oE '"(CLEARML|AWS)_[A-Z0-9_]+"'
	cat "$QSCALE_TOP"/common/*.c "$QSCALE_TOP"/supervisor/*.c \
	    "$QSCALE_TOP"/worker/*.c 2>/dev/null | grep -oE 'getenv\("[A-Z][A-Z0-9_]*"\)' |
	    grep -oE '"[A-Z0-9_]+"'
} | tr -d '"' | grep -vx HOME | sort -u)
check "the loader names environment variables" test -n "$envs"
for e in $envs; do
	check "qscale.conf(5) documents \$$e" \
	    sh -c "sed -n '/^\.Sh ENVIRONMENT/,/^\.Sh /p' '$M/qscale.conf.5' | grep -q 'Ev .*$e'"
done
for k in clearml.secret_key aws.secret_access_key aws.session_token \
    git.password agent.secret_key; do
	check "qscale.conf(5) lists the secret $k" \
	    sh -c "sed -n '/^\.Ss Secrets/,/^\.S[sh] /p' '$M/qscale.conf.5' | grep -q 'Cm $k'"
done
for w in '@include' 'Cm defaults' 'Cm match' 'The JSON form' 'chmod 600'; do
	check "qscale.conf(5) explains $w" grep -q -- "$w" "$M/qscale.conf.5"
done
# The examples are real configurations.
awk '/^\.Sh EXAMPLES/ { e = 1 } /^\.Sh SEE ALSO/ { e = 0 }
    e && /^\.Bd -literal/ { n++; b = 1; next } e && /^\.Ed/ { b = 0; next }
    e && b { print > (dir "/example" n) }' dir="$T" "$M/qscale.conf.5"
mkdir -p "$T/ex2"
awk '/^# \/etc\/qscale\// { f = $2; sub(".*/", "", f); next } f { print > (dir "/" f) }' \
    dir="$T/ex2" "$T/example2"
chmod 600 "$T/example1" "$T/ex2"/*
out=$(env -i PATH="$PATH" CLEARML_API_ACCESS_KEY=a CLEARML_API_SECRET_KEY=s \
    "$QSCALED" -n -c "$T/example1" 2>&1)
check "qscale.conf(5)'s first example loads ($out)" test "$out" = "configuration OK"
out=$(env -i PATH="$PATH" CLEARML_API_ACCESS_KEY=a CLEARML_API_SECRET_KEY=s \
    "$QSCALED" -nv -c "$T/ex2/qscale.conf" 2>&1)
check "qscale.conf(5)'s @include example loads" \
    sh -c "printf '%s\n' \"\$1\" | tail -n 1 | grep -qx 'configuration OK'" _ "$out"
check "and its match block applies" \
    sh -c "printf '%s\n' \"\$1\" | grep -q '^max_idle_time = \"2m\";  # match'" _ "$out"

# ---- Grafana dashboard
METRICS="qscale_instances qscale_queue_pending qscale_queue_oldest_wait_seconds
qscale_workers qscale_instances_booting qscale_max_instances
qscale_global_max_instances qscale_launches_total
qscale_launched_instances_total qscale_terminations_total
qscale_requeues_total qscale_api_calls_total qscale_api_errors_total
qscale_api_retries_total qscale_api_latency_seconds
qscale_child_restarts_total qscale_child_up qscale_spot_blackout_active
qscale_instance_seconds_total qscale_duplicate_tasks_total"
G=$C/grafana-dashboard.json
jqe() { jq -e "$@" >/dev/null; }
check "the dashboard is valid JSON" jqe . "$G"
quiet "the dashboard is importable: a DS_PROMETHEUS input, every panel on it, unique ids" \
    jq -r '
    (if ([.__inputs[]? | select(.name == "DS_PROMETHEUS" and .pluginId == "prometheus")] | length) == 1
     then empty else "no DS_PROMETHEUS datasource input" end),
    (if .id == null then empty else "the dashboard has an id" end),
    (if (.uid | type) == "string" then empty else "no uid" end),
    ([.panels[] | .id] | if length == (unique | length) then empty else "duplicate panel ids" end),
    (.panels[] | select(.type != "row") |
      (if .datasource.uid == "${DS_PROMETHEUS}" then empty else "panel \(.title): datasource" end),
      (if (.targets | length) > 0 then empty else "panel \(.title): no query" end),
      (if .gridPos.w > 0 and .gridPos.h > 0 then empty else "panel \(.title): no gridPos" end),
      (.targets[]? | if .datasource.uid == "${DS_PROMETHEUS}" and (.expr | length) > 0
       then empty else "panel: a query without expr or datasource" end)),
    (.templating.list[]? | if .datasource.uid == "${DS_PROMETHEUS}" then empty
     else "variable \(.name): datasource" end)' "$G"
jq -r '[.. | objects | .expr? // empty], [.templating.list[]?.query.query? // empty] | .[]' \
    "$G" >"$T/exprs"
# shellcheck disable=SC2086
python3 - "$T/exprs" $METRICS >"$T/metrics.out" 2>&1 <<'EOF'
import re, sys
exprs = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
allowed = set(sys.argv[2:])
hist = {'qscale_api_latency_seconds'}
ok_names = set(allowed)
for h in hist:
    ok_names |= {h + '_bucket', h + '_sum', h + '_count'}
funcs = set('''sum min max avg count stddev stdvar topk bottomk quantile count_values
group rate irate increase delta idelta deriv histogram_quantile abs ceil floor round
clamp clamp_min clamp_max vector scalar time label_replace label_join sort sort_desc
absent absent_over_time avg_over_time max_over_time min_over_time sum_over_time
count_over_time last_over_time changes resets predict_linear timestamp label_values
query_result'''.split())
keywords = {'by', 'without', 'on', 'ignoring', 'group_left', 'group_right',
            'and', 'or', 'unless', 'bool', 'offset'}
used = set()
for e in exprs:
    s = re.sub(r'label_values\((.*),\s*[A-Za-z_]+\)\s*$', r'label_values(\1)', e)
    s = re.sub(r'"(\\.|[^"\\])*"', '""', s)          # strings
    s = re.sub(r'\{[^}]*\}', '', s)                   # label matchers
    s = re.sub(r'\[[^\]]*\]', '', s)                  # ranges
    s = re.sub(r'\$\{?[A-Za-z_]+\}?', '', s)          # dashboard variables
    s = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', ' ', s)
    s = re.sub(r'\b\d+(\.\d+)?\b', '', s)
    for m in re.finditer(r'[A-Za-z_:][A-Za-z0-9_:]*', s):
        name = m.group(0)
        after = s[m.end():].lstrip()
        if after.startswith('('):
            if name not in funcs:
                print('unknown function %s in %s' % (name, e))
        elif name in keywords:
            pass
        elif name in ok_names:
            used.add(name)
        else:
            print('not a qscale metric: %s in %s' % (name, e))
for n in sorted(allowed):
    if not any(u == n or (n in hist and u.startswith(n + '_')) for u in used):
        print('no panel uses %s' % n)
if len(exprs) < 20:
    print('only %d queries' % len(exprs))
EOF
check "every dashboard query names only qscale's metrics, and uses them all" \
    test ! -s "$T/metrics.out"
[ ! -s "$T/metrics.out" ] || diag "$(cat "$T/metrics.out")"
# Every panel query is PromQL that Prometheus itself accepts.
if ! command -v promtool >/dev/null 2>&1; then
	skip "promtool check rules: promtool (package prometheus) is not installed"
else
	jq -r '.panels[].targets[]?.expr' "$G" | python3 -c '
import json, sys
print("groups:\n- name: dashboard\n  rules:")
for i, e in enumerate(l for l in sys.stdin.read().splitlines() if l):
    e = e.replace("$__rate_interval", "5m").replace("$__range", "1h")
    e = e.replace("$instance", ".*").replace("$resource", ".*")
    print("  - record: qscale_dashboard:q%d\n    expr: %s" % (i, json.dumps(e)))
' >"$T/rules.yml"
	quiet "promtool accepts every panel query" sh -c \
	    "promtool check rules '$T/rules.yml' >'$T/promtool.out' 2>&1 ||
	    cat '$T/promtool.out'"
fi
for t in "of the allowed total" "idle vs busy" "Queue lengths" "Oldest wait" \
    "Launches by result" "Terminations by reason" "API error rate" \
    "API latency p95" "Restarts" "Spot blackout"; do
	check "the dashboard has a panel: $t" \
	    jqe --arg t "$t" '[.panels[] | select(.title | contains($t))] | length > 0' "$G"
done
# Once the status server is in the tree, its /metrics must name them.
src=$(grep -rlF 'qscale_queue_oldest_wait_seconds' "$QSCALE_TOP"/supervisor \
    "$QSCALE_TOP"/common 2>/dev/null | head -n 1)
if [ -z "$src" ]; then
	skip "the status server's metric names: no /metrics code in the tree yet"
else
	missing=""
	for m in $METRICS; do
		grep -rqF "\"$m" "$QSCALE_TOP"/supervisor "$QSCALE_TOP"/common || missing="$missing $m"
	done
	check "the status server exposes every metric the dashboard uses ($missing)" \
	    test -z "$missing"
fi

# ---- IAM policy
P=$C/iam-policy.json
check "the IAM policy is valid JSON" jqe . "$P"
actions=$(jq -r '[.Statement[] | .Action | if type == "array" then .[] else . end] | unique | .[]' "$P")
# What qscaled calls: the poll cycle's five, --check's look-ups, and
# PassRole for the instance profile.
want="ec2:CreateTags
ec2:DescribeImages
ec2:DescribeInstances
ec2:DescribeKeyPairs
ec2:DescribeSecurityGroups
ec2:DescribeSubnets
ec2:GetConsoleOutput
ec2:RunInstances
ec2:TerminateInstances
iam:PassRole"
check "the policy grants exactly the actions qscale calls ($(echo "$actions" | tr '\n' ' '))" \
    test "$actions" = "$want"
# The EC2 actions the code names, from its source once the client is in.
client=""
[ -f "$QSCALE_TOP/common/ec2.c" ] &&
    client=$(cat "$QSCALE_TOP"/common/*.c "$QSCALE_TOP"/supervisor/*.c \
    "$QSCALE_TOP"/worker/*.c 2>/dev/null |
    grep -oE '"(Describe|Run|Terminate|Create|Get|Start|Stop|Modify|Delete|Cancel|Attach|Detach|Associate)[A-Z][A-Za-z]*"' |
    grep -vE 'Response"|Result"' | tr -d '"' | sed 's/^/ec2:/' | sort -u)
if [ -z "$client" ]; then
	skip "the EC2 client's actions: the client is not in the tree yet"
else
	check "the policy's EC2 actions are the ones the code calls ($(echo "$client" | tr '\n' ' '))" \
	    test "$(printf '%s\n' "$actions" | grep '^ec2:')" = "$client"
fi
quiet "the policy's conditions are least privilege" jq -r '
    def acts: .Action | if type == "array" then . else [.] end;
    def res: .Resource | if type == "array" then . else [.] end;
    (if .Version == "2012-10-17" then empty else "Version" end),
    (.Statement[] | select(.Effect != "Allow" or has("NotAction") or has("NotResource")) |
      "statement \(.Sid): only Allow with Action and Resource"),
    (.Statement[] | select(acts | any(test("\\*"))) | "statement \(.Sid): a wildcard action"),
    (.Statement[] | select(acts | index("ec2:CreateTags")) |
      select(.Condition.StringEquals["ec2:CreateAction"] != "RunInstances") |
      "statement \(.Sid): CreateTags without ec2:CreateAction = RunInstances"),
    (.Statement[] | select(acts | (index("ec2:TerminateInstances") or index("ec2:GetConsoleOutput"))) |
      (if (.Condition.StringEquals // {} | keys | any(test("^(aws|ec2):ResourceTag/qscale:autoscaler$")))
       then empty else "statement \(.Sid): terminate/console output without a qscale:autoscaler tag condition" end),
      (if (res | all(test(":instance/\\*$"))) then empty else "statement \(.Sid): not only instances" end)),
    (.Statement[] | select(acts | any(startswith("ec2:Describe"))) |
      select(acts | any(startswith("ec2:Describe") | not)) |
      "statement \(.Sid): a Describe action shares a statement with others"),
    (.Statement[] | select(res | index("*")) | select(acts | any(startswith("ec2:Describe") | not)) |
      "statement \(.Sid): Resource * for an action that can be scoped"),
    (.Statement[] | select(acts | index("iam:PassRole")) |
      (if (res | all(test("^arn:aws:iam::[0-9]{12}:role/"))) then empty else "PassRole not limited to a role" end),
      (if .Condition.StringEquals["iam:PassedToService"] == "ec2.amazonaws.com" then empty
       else "PassRole not limited to EC2" end)),
    ([.Statement[] | select(acts | index("ec2:RunInstances")) | res[]] as $r |
      ("instance/", "volume/", "network-interface/", "subnet/", "security-group/", "image/", "key-pair/") as $t |
      if ($r | any(contains(":" + $t))) then empty else "RunInstances lacks \($t)*" end),
    (.Statement[] | select(acts | index("ec2:RunInstances")) | select(res | any(contains(":instance/"))) |
      select((.Condition // {} | tostring | contains("RequestTag/qscale:autoscaler")) | not) |
      "statement \(.Sid): RunInstances on instances without the qscale:autoscaler request tag")' "$P"
tagval=$(jq -r '[.Statement[].Condition.StringEquals // {} | to_entries[] |
    select(.key | test("Tag/qscale:autoscaler$")) | .value] | unique | .[]' "$P")
check "the policy's tag value is qscaled's default name ($tagval)" \
    test "$tagval" = "$(sed -n 's/^name = "\(.*\)";  # default$/\1/p' "$T/nv")"
check "qscaled(8) documents the policy's placeholder role ARN" \
    grep -qF "$(jq -r '.Statement[] | select(.Action == "iam:PassRole") | .Resource' "$P")" \
    "$M/qscaled.8"
