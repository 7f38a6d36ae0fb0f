#!/bin/bash
# The ClearML client against cloudsim's fake ClearML server, driven
# through build/tools/cmlcall: login and the token's claims, re-login
# near expiry and after a 401, every error class, exact queue names,
# workers by pattern, re-queueing a task, check_clearml, and no secret
# in any output.
. "$(dirname "$0")/lib.sh"
. "$QSCALE_TOP/tests/cloudsim/simlib.sh"

CMLCALL=$QSCALE_BUILD/tools/cmlcall
OUT=$T/out
mkdir -p "$OUT"
_nout=0

if [ ! -x "$CMLCALL" ]; then
	not_ok "build/tools/cmlcall is built (make)"
	exit 1
fi
if ! start_cloudsim --no-ec2; then
	not_ok "cloudsim --no-ec2 starts"
	exit 1
fi
export QSCALE_SIM_CLEARML_URL CLEARML_API_ACCESS_KEY CLEARML_API_SECRET_KEY
ADMIN=$QSCALE_SIM_ADMIN_URL

# cml ARGS...: runs cmlcall (debug log on), keeps stdout and stderr for
# the secret check at the end; prints stdout; returns its exit status.
cml() {
	_nout=$((_nout + 1))
	"$CMLCALL" -v "$@" >"$OUT/$_nout.json" 2>"$OUT/$_nout.err"
	_rc=$?
	cat "$OUT/$_nout.json"
	return $_rc
}
# line N: the Nth result line of the last output (1-based)
line() { sed -n "${1}p" "$OUT/$_nout.json"; }
admin() { curl -sf -XPOST "$ADMIN/$1" -d "$2" >/dev/null; }
api() { cml call "$@" | jq -r '.data.id // empty'; }

# --- login -----------------------------------------------------------
cml login >/dev/null
check "login works and reads the server and API versions from the JWT" \
    test "$(line 1 | jq -r '[.ok, .server_version, .api_version] | @tsv')" \
    = "$(printf 'true\t2.0.0\t2.31')"

cml -s "not-the-secret-$$" login -- workers >/dev/null
rc=$?
check "a bad secret is an auth error (401/22), for login and calls" \
    test "$rc" = 1 -a \
    "$(line 1 | jq -r '[.error.class, .error.code, .error.subcode] | @tsv')" \
    = "$(printf 'auth\t401\t22')" -a \
    "$(line 2 | jq -r '.error.class + " " + .error.endpoint')" \
    = "auth workers.get_all"

# --- re-login ----------------------------------------------------------
admin token-ttl '{"seconds": 4}'	# renewed when under 2 s remain
cml login -- workers -- workers -- stats >/dev/null
check "a fresh short-lived token is kept for the next calls" \
    test "$(line 4 | jq '.stats["auth.login"].calls')" = 1
cml login -- workers -- sleep 2300 -- workers -- stats >/dev/null
check "under the margin before expiry, the client logs in again first" \
    test "$(line 5 | jq -c '[.stats["auth.login"].calls,
        .stats["workers.get_all"].calls, .stats["workers.get_all"].errors]')" \
    = "[2,2,0]" -a "$(line 4 | jq .ok)" = true
admin token-ttl '{"seconds": null}'

cml login -- call auth.logout -- workers -- stats >/dev/null
check "a token the server revoked: one 401, one login, the call retried" \
    test "$(line 3 | jq .ok)" = true -a \
    "$(line 4 | jq -c '[.stats["auth.login"].calls,
        .stats["workers.get_all"].calls, .stats["workers.get_all"].errors]')" \
    = "[2,2,1]"

# --- errors ------------------------------------------------------------
cml task 0123456789abcdef0123456789abcdef >/dev/null
check "an unknown task is not found (400/101)" \
    test "$(line 1 | jq -r '[.error.class, .error.subcode, .error.endpoint] |
        @tsv')" = "$(printf 'not found\t101\ttasks.get_by_id')"
cml stopped 0123456789abcdef0123456789abcdef >/dev/null
check "stopping an unknown task is not found" \
    test "$(line 1 | jq -r .error.class)" = "not found"
cml call tasks.enqueue '{}' >/dev/null
check "a bad request is invalid (400/11)" \
    test "$(line 1 | jq -r '[.error.class, .error.code, .error.subcode] |
        @tsv')" = "$(printf 'invalid\t400\t11')"
cml enqueue 0123456789abcdef0123456789abcdef \
    fedcba9876543210fedcba9876543210 >/dev/null
check "the message names the endpoint" \
    test "$(line 1 | jq -r '.error.message | startswith("tasks.enqueue: ")')" \
    = true

# Faults hit a client that already holds a token: it waits for $T/go.
# fault_run MODE ARGS...: runs ARGS after login, with the fault MODE on.
fault_run() {
	_mode=$1
	shift
	rm -f "$T/go"
	_nout=$((_nout + 1))
	"$CMLCALL" -v "$@" login -- wait "$T/go" -- workers -- stats \
	    >"$OUT/$_nout.json" 2>"$OUT/$_nout.err" &
	_pid=$!
	wait_for 10 grep -q '"op":"login"' "$OUT/$_nout.json"
	admin clearml-fault "{\"mode\": \"$_mode\", \"seconds\": 5}"
	touch "$T/go"
	wait "$_pid"
	admin clearml-fault '{"mode": "none"}'
}
fault_run html500 -b 50
check "an HTML 500 is a server error, not retried" \
    test "$(line 3 | jq -r .error.class)" = server -a \
    "$(line 3 | jq -r .error.http_status)" = 500 -a \
    "$(line 4 | jq -c '.stats["workers.get_all"] | [.calls, .retries]')" \
    = "[1,0]"
check "its message says it is not a ClearML response, on one line" \
    test "$(line 3 | jq -r '.error.message |
        test("^workers.get_all: HTTP 500, not a ClearML response: <")')" = true
fault_run 500 -b 50
check "a 500 envelope is a server error" \
    test "$(line 3 | jq -r '.error.class + " " + (.error.code|tostring)')" \
    = "server 500"
fault_run down -b 50
check "a server that is down is transient, after 3 retries" \
    test "$(line 3 | jq -r .error.class)" = transient -a \
    "$(line 3 | jq -r .error.http_status)" = 0 -a \
    "$(line 4 | jq -c '.stats["workers.get_all"] |
        [.calls, .errors, .retries]')" = "[4,4,3]"
fault_run slow -b 50 -t 300 -r 1
check "a server that does not answer in time is transient too" \
    test "$(line 3 | jq -r .error.class)" = transient -a \
    "$(line 4 | jq -c '.stats["workers.get_all"] | [.calls, .retries]')" \
    = "[2,1]"
cml workers >/dev/null
check "and once the fault is over, calls work again" \
    test "$(line 1 | jq .ok)" = true

# --- queues ------------------------------------------------------------
# The anchored, escaped regex keeps gpu-big out on the server; "gpu\n"
# passes it (a regex's $ matches before a final newline), so only the
# client's exact compare tells it from gpu.
QBIG=$(api queues.create '{"name": "gpu-big"}')
QNL=$(api queues.create '{"name": "gpu\n"}')
QGPU=$(api queues.create '{"name": "gpu"}')
QAXB=$(api queues.create '{"name": "axb"}')
cml resolve gpu -- resolve gpu-big -- resolve gp -- resolve a.b \
    -- resolve axb >/dev/null
check "gpu resolves to gpu, not to gpu-big nor to the \"gpu\\n\" the regex finds" \
    test -n "$QGPU" -a -n "$QNL" -a "$(line 1 | jq -r .id)" = "$QGPU"
check "gpu-big resolves to gpu-big" test "$(line 2 | jq -r .id)" = "$QBIG"
check "a prefix of a name is not found" \
    test "$(line 3 | jq -r .error.class)" = "not found"
check "regex characters in a name are escaped (a.b does not find axb)" \
    test "$(line 4 | jq -r .error.class)" = "not found" -a \
    "$(line 5 | jq -r .id)" = "$QAXB"

T1=$(api tasks.create '{"name": "t1", "type": "training"}')
T2=$(api tasks.create '{"name": "t2", "type": "training"}')
T3=$(api tasks.create '{"name": "t3", "type": "training"}')
for t in "$T1" "$T2" "$T3"; do
	cml enqueue "$t" "$QGPU" >/dev/null
done
cml queue "$QGPU" >/dev/null
check "a queue's entries come in FIFO order with their added times" \
    test "$(line 1 | jq -r '[.queue.entries[].task] | join(" ")')" \
    = "$T1 $T2 $T3" -a \
    "$(line 1 | jq '[.queue.entries[].added_ms] | . == sort and
        all(. > 1700000000000)')" = true -a \
    "$(line 1 | jq -r .queue.name)" = gpu
cml queue 0123456789abcdef0123456789abcdef >/dev/null
check "an unknown queue id is not found" \
    test "$(line 1 | jq -r .error.class)" = "not found"

# --- workers -----------------------------------------------------------
cml call workers.register "{\"worker\": \"qs:gpu:t3:i-1\", \"queues\": [\"$QGPU\"]}" \
    -- call workers.register "{\"worker\": \"qs:gpu:t3:i-2\", \"queues\": [\"$QGPU\"]}" \
    -- call workers.register '{"worker": "qs:gpu-big:t3:i-3"}' \
    -- call queues.get_next_task "{\"queue\": \"$QGPU\"}" \
    -- call tasks.started "{\"task\": \"$T1\", \"force\": true}" \
    -- call workers.status_report "{\"worker\": \"qs:gpu:t3:i-1\",
        \"timestamp\": 1, \"task\": \"$T1\", \"queue\": \"$QGPU\"}" \
    >/dev/null
check "workers registered, a task pulled and reported" \
    test "$(jq -s 'all(.ok)' "$OUT/$_nout.json")" = true
cml workers 'qs:gpu:*' 90 >/dev/null
check "workers.get_all with a pattern: only that resource's workers" \
    test "$(line 1 | jq -r '[.workers[].id] | sort | join(" ")')" \
    = "qs:gpu:t3:i-1 qs:gpu:t3:i-2"
check "the busy worker carries its task, the idle one none" \
    test "$(line 1 | jq -r '[.workers[] | select(.id == "qs:gpu:t3:i-1") |
        .task, .task_name, .last_report_time != null] | @tsv')" \
    = "$(printf '%s\tt1\ttrue' "$T1")" -a \
    "$(line 1 | jq -r '.workers[] | select(.id == "qs:gpu:t3:i-2") |
        [.task, .last_report_time] | @json')" = "[null,null]"
check "each worker lists the queues it serves" \
    test "$(line 1 | jq -r '[.workers[].queues[]] | unique | join(" ")')" \
    = "$QGPU"
cml unregister qs:gpu:t3:i-2 -- workers 'qs:gpu*' 90 >/dev/null
check "workers.unregister removes a worker at once" \
    test "$(line 2 | jq -r '[.workers[].id] | sort | join(" ")')" \
    = "qs:gpu-big:t3:i-3 qs:gpu:t3:i-1"

# --- re-queue ----------------------------------------------------------
cml tasks "$T1" "$T2" -- tasks >/dev/null
check "tasks.get_all reads status and execution queue by id" \
    test "$(line 1 | jq -r '[.tasks[] | .id + "=" + .status] | sort |
        join(" ")')" = "$(printf '%s\n' "$T1=in_progress" "$T2=queued" |
        sort | tr '\n' ' ' | sed 's/ $//')" -a \
    "$(line 2 | jq -c .tasks)" = "[]"
cml requeue "$T1" "$QGPU" "instance i-1 interrupted" -- task "$T1" \
    -- queue "$QGPU" >/dev/null
check "stopped (force) then enqueue puts an interrupted task back" \
    test "$(line 1 | jq .ok)" = true -a \
    "$(line 2 | jq -r '.tasks[0] | [.status, .status_reason, .queue] |
        @tsv')" = "$(printf 'queued\tinstance i-1 interrupted\t%s' "$QGPU")" -a \
    "$(line 3 | jq -r '[.queue.entries[].task] | join(" ")')" \
    = "$T2 $T3 $T1"

# --- check_clearml -----------------------------------------------------
conf_for() {
	write_conf "$1" "${@:2}"
	sed -i -e "s|api_server = .*|api_server = \"$QSCALE_SIM_CLEARML_URL\";|" \
	    -e "s|\"TESTACCESSKEY\"|\"$CLEARML_API_ACCESS_KEY\"|" \
	    -e "s|\"clearml-SECRET-value-1\"|\"$CLEARML_API_SECRET_KEY\"|" "$1"
}
api queues.create '{"name": "q-cpu"}' >/dev/null
api queues.create '{"name": "q-gpu"}' >/dev/null
conf_for "$T/good.conf" cpu gpu
cml check -c "$T/good.conf" >/dev/null
rc=$?
check "check on a good config: exit 0, login and every queue OK" \
    test "$rc" = 0 -a "$(grep -c '^OK ' "$OUT/$_nout.json")" = 3 -a \
    "$(tail -n 1 "$OUT/$_nout.json")" = "0 failed"
check "it prints the server and API versions from the token" \
    grep -q '^OK clearml login to .*server version 2.0.0, API version 2.31' \
    "$OUT/$_nout.json"

conf_for "$T/missing.conf" cpu nope gpu
cml check -c "$T/missing.conf" >/dev/null
rc=$?
check "a missing queue fails, naming resource, file:line and key" \
    test "$rc" = 1 -a "$(grep -c '^FAIL ' "$OUT/$_nout.json")" = 1 -a \
    "$(grep -c '^OK clearml queue' "$OUT/$_nout.json")" = 2 -a \
    "$(tail -n 1 "$OUT/$_nout.json")" = "1 failed"
nope_line=$(grep -n 'name = "nope"' "$T/missing.conf" | cut -d: -f1)
check "the FAIL line says which, where the key was set, and why" \
    grep -Fq "FAIL clearml queue \"q-nope\" (resource \"nope\", key resources.nope.queue at $T/missing.conf:$nope_line): not found: " \
    "$OUT/$_nout.json"

conf_for "$T/badsecret.conf" cpu
sed -i "s|\"$CLEARML_API_SECRET_KEY\"|\"wrong-SECRET-$$\"|" "$T/badsecret.conf"
cml check -c "$T/badsecret.conf" >/dev/null
rc=$?
check "a bad secret fails the check: exit 1, 1 failed" \
    test "$rc" = 1 -a "$(tail -n 1 "$OUT/$_nout.json")" = "1 failed"
check "... the login, as auth, naming the keys" \
    grep -q '^FAIL clearml login to .*: auth: auth.login: .*(key clearml.access_key, clearml.secret_key)' \
    "$OUT/$_nout.json"

# --- TLS is verified: a self-signed server is refused at once ----------
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 1 \
    -keyout "$T/tls.key" -out "$T/tls.crt" >/dev/null 2>&1
TLS_PORT=$(free_port)
python3 - "$TLS_PORT" "$T/tls.crt" "$T/tls.key" >"$T/tls.log" 2>&1 <<'PY' &
import http.server, ssl, sys
srv = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])),
                             http.server.BaseHTTPRequestHandler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
TLS_PID=$!
on_exit "kill $TLS_PID"
wait_for 10 sh -c "echo | openssl s_client -connect 127.0.0.1:$TLS_PORT >/dev/null 2>&1"
cml -u "https://127.0.0.1:$TLS_PORT" -r 3 -b 100 login >/dev/null
check "a certificate that does not verify fails the login as TLS" \
    test "$(line 1 | jq -r '[.ok, .error.class, (.error.message |
    contains("TLS: "))] | @tsv')" = "$(printf 'false\tserver\ttrue')"
check "... at once, not retried" \
    sh -c "! grep -q 'retry 1 of' '$OUT/$_nout.err'"
rm -f "$T/tls.key"

# --- secrets -----------------------------------------------------------
basic=$(printf '%s:%s' "$CLEARML_API_ACCESS_KEY" "$CLEARML_API_SECRET_KEY" |
    base64 -w0)
check "debug logs were written" grep -q 'HTTP 200' "$OUT"/*.err
check "no secret key, Basic credential or JWT in any output" \
    test -z "$(grep -lF -e "$CLEARML_API_SECRET_KEY" -e "$basic" \
    -e "wrong-SECRET-$$" -e "not-the-secret-$$" "$OUT"/* 2>/dev/null)" -a \
    -z "$(grep -l 'eyJ[A-Za-z0-9_-]*\.eyJ' "$OUT"/* 2>/dev/null)"
