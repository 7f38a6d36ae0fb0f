#!/usr/bin/env bash
# Nasty secrets (quotes, backslashes, control characters, non-ASCII)
# never show, in any form qscale writes them in (as they are, quoted for
# HOCON, JSON, libconfig or the shell, in base64), in any output an
# operator reads: the log files, qscaled's own output, the status
# server's /api/log, /status and /metrics, qscalectl tail (past and
# live), status and export-config, qscaled -nv and --plan.  The console
# output of an instance that never boots echoes its user data, where the
# startup script wrote the agent's secrets HOCON-escaped in clearml.conf.
# shellcheck source-path=SCRIPTDIR disable=SC2016
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

e2e_sim_start || { not_ok "the simulated cloud starts"; exit 1; }
e2e_scenario masks
OUT=$E2E_DIR/out
mkdir -p "$OUT"

# The secrets, as Python literals, and their libconfig spelling.
cat >"$T/secrets.py" <<'PY'
SECRETS = {
    "agent.secret_key": 'ag"ent\\key\tx\x01y\x7f\'q-\u00e9\u20ac-end',
    "git.password": 'g"it\\pa$s\'w\x1b[0m\x08rd\x0c`id`\\',
}
PY
lc_string() {	# KEY: the secret as a libconfig string
	python3 - "$1" "$T/secrets.py" <<'PY'
import sys
exec(open(sys.argv[2]).read())
s = SECRETS[sys.argv[1]]
out = []
for c in s:
    o = ord(c)
    if c in '"\\':
        out.append("\\" + c)
    elif c in "\n\t\r\f":
        out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r", "\f": "\\f"}[c])
    elif o < 0x20 or o == 0x7f:
        out.append("\\x%02x" % o)
    else:
        out.append(c)
print('"%s"' % "".join(out))
PY
}
AGENT_SECRET=$(lc_string agent.secret_key)
GIT_PASSWORD=$(lc_string git.password)

E2E_SPINUP=4s E2E_EXTRA="agent = { access_key = \"AGENTKEY\";
  secret_key = $AGENT_SECRET; };" e2e_conf nb 'name = "nb"; queue = "enb";
    instance_type = "c5.large"; max_instances = 1;' ||
    { not_ok "the configuration is valid"; exit 1; }
GIT_PASSWORD=$GIT_PASSWORD python3 -c '
import os, sys
p = sys.argv[1]
t = open(p).read().splitlines(True)
t = ["git = { user = \"bot\"; password = %s; };\n" % os.environ["GIT_PASSWORD"]
     if l.startswith("git = ") else l for l in t]
open(p, "w").write("".join(t))' "$E2E_DIR/qscale.conf"
check "the configuration with nasty secrets is valid" \
    "$QSCALED" -n -c "$E2E_DIR/qscale.conf" >/dev/null

simctl queue enb >/dev/null
simctl never-boot --next 1 --resource nb >/dev/null
e2e_start || { not_ok "qscaled starts"; exit 1; }
ok "qscaled starts"
# The daemon holds the secrets byte for byte (kept out of $OUT).
ctl export-config --with-secrets >"$T/with-secrets.json"
check "the daemon read each nasty secret byte for byte" python3 -c '
import json, sys
exec(open(sys.argv[1]).read())
c = json.load(open(sys.argv[2]))
sys.exit(not (c["agent"]["secret_key"] == SECRETS["agent.secret_key"] and
              c["git"]["password"] == SECRETS["git.password"]))' \
    "$T/secrets.py" "$T/with-secrets.json"
rm -f "$T/with-secrets.json"
ctl tail nb -f >"$OUT/tail-live.txt" 2>&1 &
tailpid=$!
on_exit "kill $tailpid"
e2e_enqueue enb 1 2 nb >/dev/null
L=$E2E_DIR/log/nb.log
check "the never-booting instance is terminated after its spin-up time" \
    wait_for 40 grep -q "(spin-up timeout): no worker registered" "$L"
check "its console output, with the user data, was logged first" \
    grep -q "console i-[0-9a-f]*: .*CLEARML_WORKER_ID" "$L"
check "the agent's secret shows masked in clearml.conf" \
    grep -qF '    secret_key: "********"' "$L"
check "so does the git password" grep -qF '  git_pass: "********"' "$L"

# Every output an operator reads.
port=$(sed -n 's/^status = { listen = "127\.0\.0\.1:\([0-9]*\)".*/\1/p' \
    "$E2E_DIR/qscale.conf")
for p in /api/log /status /metrics /api/series /; do
	f=$OUT/http$(echo "$p" | tr '/' '_').out
	curl -sf --max-time 10 "http://127.0.0.1:$port$p" >"$f"
	check "GET $p answers" test -s "$f"
done
check "/api/log holds the console lines" \
    grep -q 'console i-' "$OUT/http_api_log.out"
ctl tail nb -n 2000 >"$OUT/tail-nb.txt" 2>&1
ctl tail -n 2000 >"$OUT/tail-all.txt" 2>&1
check "qscalectl tail nb shows the console lines" \
    grep -q 'console i-' "$OUT/tail-nb.txt"
check "qscalectl tail -f showed them live" grep -q 'console i-' \
    "$OUT/tail-live.txt"
ctl status >"$OUT/status.txt" 2>&1
ctl status -j >"$OUT/status.json" 2>&1
ctl export-config >"$OUT/export.json" 2>&1
check "qscalectl export-config answers" test -s "$OUT/export.json"
"$QSCALED" -nv -c "$E2E_DIR/qscale.conf" >"$OUT/nv.txt" 2>&1
"$QSCALED" --plan -c "$E2E_DIR/qscale.conf" >"$OUT/plan.txt" 2>&1
kill "$tailpid" 2>/dev/null
e2e_stop

# No form of any secret anywhere (the file names, never the secret).
cat >"$T/check.py" <<'PY'
import base64, json, os, sys
exec(open(sys.argv[1]).read())

def esc(s, table, ctl):
    out = []
    for c in s:
        o = ord(c)
        if c in table:
            out.append(table[c])
        elif o < 0x20 or o == 0x7f:
            out.append(ctl(o))
        else:
            out.append(c)
    return "".join(out)

BASE = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
def forms(s):
    f = {
        "raw": s,
        "HOCON": esc(s, BASE, lambda o: "\\u%04x" % o),
        "JSON": json.dumps(s, ensure_ascii=False)[1:-1],
        "JSON ASCII": json.dumps(s)[1:-1],
        "libconfig": esc(s, dict(BASE, **{"\f": "\\f"}),
                         lambda o: "\\x%02x" % o),
        "shell": s.replace("'", "'\\''"),
        "log-flattened": "".join(" " if ord(c) < 0x20 and c != "\t"
                                 else c for c in s),
    }
    for k in list(f):	# as JSON holds the line (/api/log, status)
        f[k + " in JSON"] = json.dumps(f[k], ensure_ascii=False)[1:-1]
    for k in ("raw", "HOCON"):
        b = f[k].encode()
        for j in range(3):
            n = (len(b) - j) // 3 * 3
            f[k + " base64 +%d" % j] = base64.b64encode(b[j:j + n]).decode()
    return f

bad = 0
files = []
for top in sys.argv[2:]:
    if os.path.isdir(top):
        for d, _, names in os.walk(top):
            files += [os.path.join(d, n) for n in names]
    else:
        files.append(top)
for path in files:
    text = open(path, "rb").read().decode("utf-8", "replace")
    for name, s in SECRETS.items():
        for form, v in forms(s).items():
            if v and v in text:
                print("%s: %s, %s form" % (path, name, form))
                bad += 1
print("%d files read" % len(files))
sys.exit(1 if bad else 0)
PY
out=$(python3 "$T/check.py" "$T/secrets.py" "$E2E_DIR/log" "$OUT" \
    "$E2E_DIR/qscaled.out" 2>&1)
rc=$?
diag "$out"
check "no form of a secret in any output" test "$rc" -eq 0
nfiles=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) files read$/\1/p')
check "every output was read (${nfiles:-no} files)" test "${nfiles:-0}" -ge 15
e2e_no_secret
