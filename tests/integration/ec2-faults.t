#!/usr/bin/env bash
# The EC2 client against a server that injects faults: each error class,
# which ones are retried and how (attempts, backoff bounds, the same
# ClientToken, the retry budget), a body cut off at the cap, a slow
# answer while a timer keeps firing, connection reuse, batches.
. "$(dirname "$0")/lib.sh"
. "$QSCALE_TOP/tests/helpers/ec2lib.sh"

start_faults || { not_ok "the fault server starts"; exit 1; }
out=$T/out.json
run() { fcall "$@" >"$out" 2>"$T/err.log"; }

# throttled twice, then fine: three attempts, one launch, one token
faults '[{"action":"RunInstances","status":503,"code":"RequestLimitExceeded","times":2}]'
run --base-delay 50 run --image ami-1 --type t3.micro --count 2
check "RunInstances succeeds after two throttles" jqt '.ok and .count == 2' "$out"
check "three attempts were made" jqt '.stats.RunInstances.calls == 3 and .stats.RunInstances.retries == 2' "$out"
tokens=$(faults_log | jq -r '[.[] | select(.action == "RunInstances") | .params.ClientToken] | unique | length')
check "every attempt carried the same ClientToken ($tokens)" test "$tokens" = 1
check "the instances echo that token" \
    test "$(jq -r '.instances[0].client_token' "$out")" = \
    "$(faults_log | jq -r '[.[] | select(.action == "RunInstances")][0].params.ClientToken')"
check "the token was made by the client" jqt '.instances[0].client_token | startswith("qscale-")' "$out"
ports=$(faults_log | jq '[.[] | .port] | unique | length')
check "the retries reused one connection" test "$ports" = 1
check "only content-type, host and x-amz-date are signed" \
    test "$(faults_log | jq -r '[.[] | .signed_headers] | unique | join(" ")')" = "content-type;host;x-amz-date"

# retried errors: a dropped connection (on a fresh one: curl itself
# replays a request whose reused connection died), 5xx HTML, empty 503,
# a 429, a 500 without a known code
faults_reset
faults '[{"action":"DescribeInstances","kind":"reset"},
	{"action":"DescribeInstances","kind":"html","status":502},
	{"action":"DescribeInstances","kind":"empty","status":503},
	{"action":"DescribeInstances","kind":"empty","status":429},
	{"action":"DescribeInstances","status":500,"code":"NotAKnownCode"}]'
run --base-delay 20 --attempts 6 describe
check "reset, html, empty, 429 and 500 are all retried: attempt 6 works" \
    jqt '.ok and .stats.DescribeInstances.calls == 6 and .stats.DescribeInstances.retries == 5' "$out"
faults '[{"action":"DescribeInstances","kind":"reset","times":9}]'
run --base-delay 10 --attempts 2 describe
check "a dropped connection is a transient network error" \
    jqt '.ok == false and .error.class == "transient" and (.error.message | test("network error")) and .error.http_status == 0' "$out"

# each class that is not retried comes back after one attempt
for spec in \
    "RunInstances 500 InsufficientInstanceCapacity capacity" \
    "RunInstances 400 InstanceLimitExceeded quota" \
    "RunInstances 400 VcpuLimitExceeded quota" \
    "RunInstances 401 AuthFailure auth" \
    "RunInstances 403 UnauthorizedOperation auth" \
    "RunInstances 400 InvalidParameterValue invalid parameter" \
    "RunInstances 400 InvalidAMIID.Malformed invalid parameter" \
    "RunInstances 400 InvalidSubnetID.NotFound not found" \
    "RunInstances 400 SpotMaxPriceTooLow spot capacity" \
    "CreateTags 400 SomethingNobodyKnows unknown"; do
	# shellcheck disable=SC2086	# split into its words on purpose
	set -- $spec
	act=$1 st=$2 code=$3
	shift 3
	cls="$*"
	faults_reset
	faults "[{\"action\":\"$act\",\"status\":$st,\"code\":\"$code\",\"message\":\"injected $code\",\"times\":5}]"
	if [ "$act" = RunInstances ]; then
		run run --image ami-1 --type t3.micro
	else
		run tags -t k=v i-1
	fi
	check "$code ($st) is '$cls', not retried" jqt \
	    ".ok == false and .error.code == \"$code\" and .error.class == \"$cls\" and .error.attempts == 1 and .error.http_status == $st" "$out"
done
check "the request id comes from x-amzn-requestid" jqt '.error.request_id | startswith("fault-")' "$out"

# the same capacity error in a spot launch is spot capacity
faults_reset
faults '[{"action":"RunInstances","status":500,"code":"InsufficientInstanceCapacity"}]'
run run --image ami-1 --type t3.micro --spot
check "InsufficientInstanceCapacity of a spot launch is 'spot capacity'" \
    jqt '.error.class == "spot capacity" and .error.attempts == 1' "$out"
check "the spot launch asked for one-time spot, terminate on interruption" \
    test "$(faults_log | jq -r '.[-1].params | [."InstanceMarketOptions.MarketType", ."InstanceMarketOptions.SpotOptions.SpotInstanceType", ."InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior"] | join(",")')" = "spot,one-time,terminate"

# at most max_attempts, with delays inside the full-jitter bounds
faults_reset
faults '[{"action":"DescribeInstances","status":503,"code":"RequestLimitExceeded","times":10}]'
run -v --attempts 4 --base-delay 100 --max-delay 250 describe
check "throttling gives up after max_attempts (4)" \
    jqt '.ok == false and .error.class == "throttling" and .error.attempts == 4' "$out"
check "each retry is logged at debug with action, code and delay" \
    test "$(grep -c 'DescribeInstances: RequestLimitExceeded (throttling) on attempt [0-9] of 4, retrying in [0-9]* ms' "$T/err.log")" = 3
gaps=$(faults_log | jq -r '[.[] | .t] | [range(1; length) as $i | (.[$i] - .[$i-1]) * 1000 | floor] | join(" ")')
bounds="100 200 250"
i=0
ok_gaps=1
for g in $gaps; do
	i=$((i + 1))
	b=$(echo "$bounds" | cut -d' ' -f$i)
	[ "$g" -le $((b + 60)) ] || ok_gaps=0
done
check "retry gaps ($gaps ms) stay within min(250, 100*2^n) (+60 ms slack)" test "$ok_gaps" = 1 -a "$i" = 3
delays=$(grep -o 'retrying in [0-9]* ms' "$T/err.log" | grep -o '[0-9]*' | tr '\n' ' ')
ok_d=1
i=0
for d in $delays; do
	i=$((i + 1))
	b=$(echo "$bounds" | cut -d' ' -f$i)
	[ "$d" -ge 0 ] && [ "$d" -le "$b" ] || ok_d=0
done
check "logged delays ($delays) are in [0, min(max, base*2^n)]" test "$ok_d" = 1
check "no secret or signature in the debug log" sh -c \
    "! grep -q -e 'fault-SECRET' -e 'Signature=' -e 'Authorization' '$T/err.log'"

# the retry budget: 12 tokens pay for two retries (5 each), then none
faults_reset
faults '[{"action":"DescribeInstances","status":503,"code":"RequestLimitExceeded","times":10}]'
run --budget 12 --base-delay 10 describe
check "with the budget gone the error returns: attempts 3" \
    jqt '.ok == false and .error.attempts == 3 and .budget == 2' "$out"
check "the exhausted budget is logged" grep -q 'retry budget is exhausted' "$T/err.log"

# retries stopped (budget 0, as a stopping worker process does) while
# one waits for its backoff: it ends at once with its last error
faults_reset
faults '[{"action":"DescribeInstances","status":503,"code":"RequestLimitExceeded","times":10}]'
run --base-delay 5000 --max-delay 5000 --stop-retries 300 describe
check "a retry waiting for its backoff ends when retries stop" \
    jqt '.ok == false and .error.code == "RequestLimitExceeded" and .elapsed_ms < 2000' "$out"
check "the retry that waited was never sent" \
    test "$(faults_log | jq length)" = "$(jq .error.attempts "$out")"

# a body larger than the cap is cut off, not retried
faults_reset
faults '[{"kind":"big","bytes":300000,"times":3}]'
run --max-body 100000 describe
check "a too-large body is cut off and reported" \
    jqt '.ok == false and (.error.message | test("cut off: larger than 100000 bytes")) and .error.attempts == 1' "$out"

# a slow answer (2 s) while a 50 ms timer keeps firing: the loop never blocks
faults_reset
faults '[{"kind":"sleep","seconds":2}]'
run --tick 50 describe
check "the call waited for the slow answer" jqt '.ok and .elapsed_ms >= 1900' "$out"
check "the 50 ms timer fired all along ($(jq -c '[.ticks, .max_tick_gap_ms]' "$out"))" \
    jqt '.ticks >= 35 and .max_tick_gap_ms < 150' "$out"

# a timeout is transient: retried, then reported
faults_reset
faults '[{"kind":"sleep","seconds":3,"times":2}]'
run --timeout 500 --attempts 2 --base-delay 10 describe
check "timeouts are retried and then reported as transient" \
    jqt '.ok == false and .error.class == "transient" and (.error.message | test("timeout")) and .error.attempts == 2' "$out"
check "a timeout costs 10 tokens of the budget" jqt '.budget == 490' "$out"

# TerminateInstances: 2500 ids go out in batches of at most 1000; the
# unknown ones are marked and the others terminated all the same
faults_reset
ids=""
for i in $(seq 1 2500); do
	case $i in
	7|1500|2499) ids="$ids i-unknown$i" ;;
	*) ids="$ids i-$(printf '%08x' "$i")" ;;
	esac
done
# shellcheck disable=SC2086
run terminate $ids
check "2500 ids: every one has a result" jqt '.ok and .count == 2500' "$out"
check "the three unknown ids are marked not_found" \
    test "$(jq -r '[.results[] | select(.not_found) | .id] | sort | join(" ")' "$out")" = "i-unknown1500 i-unknown2499 i-unknown7"
check "the others were terminated" \
    jqt '[.results[] | select(.not_found | not) | .current] | unique == ["shutting-down"]' "$out"
sizes=$(faults_log | jq -r '[.[] | [.params | keys[] | select(startswith("InstanceId."))] | length] | join(" ")')
check "batches of at most 1000 ($sizes)" test "$sizes" = "1000 999 1000 999 500 499"

# GetConsoleOutput asks for the latest output and decodes it
faults_reset
run console i-0abc
check "console output is decoded" jqt '.ok and .output == "console of i-0abc\n"' "$out"
check "it asked with Latest=true" test "$(faults_log | jq -r '.[-1].params.Latest')" = true
faults '[{"action":"GetConsoleOutput","status":400,"code":"UnsupportedOperation"}]'
run console i-0abc
check "without Latest support it asks again without it" \
    jqt '.ok and .output == "console of i-0abc\n"' "$out"
check "the second request had no Latest" test "$(faults_log | jq -r '.[-1].params.Latest')" = null

# a custom launch spec reaches the wire; a bad one never leaves
faults_reset
run run --image ami-1 --type t3.micro --custom '{"EbsOptimized":true,"Monitoring":{"Enabled":true}}'
check "custom_launch_spec keys are sent" \
    test "$(faults_log | jq -r '.[-1].params | [.EbsOptimized, ."Monitoring.Enabled", .InstanceInitiatedShutdownBehavior, ."MetadataOptions.HttpTokens"] | join(",")')" = "true,true,terminate,required"
run run --image ami-1 --type t3.micro --custom '{"MaxCount":50}'
check "a launch spec qscale refuses is an invalid error, nothing sent" \
    jqt '.ok == false and .error.class == "invalid parameter" and .error.attempts == 0' "$out"
check "no request went out for it" test "$(faults_log | jq length)" = 1

# TLS is verified: a self-signed endpoint is refused at once, not retried
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
AWS_ACCESS_KEY_ID=AKIDFAULTTEST AWS_SECRET_ACCESS_KEY=fault-SECRET-value-9 \
    "$EC2CALL" --endpoint "https://127.0.0.1:$TLS_PORT/" describe >"$out" 2>"$T/err.log"
check "a certificate that does not verify is refused, once, as TLS" \
    jqt '.ok == false and (.error.message | startswith("TLS: ")) and .error.attempts == 1 and .error.class == "unknown"' "$out"
rm -f "$T/tls.key"

check "no secret anywhere in the outputs" no_secret_in "$T"
