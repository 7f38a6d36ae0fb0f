#!/usr/bin/env bash
# Where the client's AWS keys come from: the instance role through a
# strict IMDSv2 (and their refresh before they expire), the shared
# credentials file and its profiles, the environment, and their order.
. "$(dirname "$0")/lib.sh"
. "$QSCALE_TOP/tests/helpers/ec2lib.sh"

out=$T/out.json
# ncall ARGS...: ec2call with no keys in the environment
ncall() {
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
	    "$EC2CALL" "$@"
}
start_faults || { not_ok "the fault server starts"; exit 1; }

# the mock is strict, as IMDSv2 is
start_imds --lifetime 3 --log "$T/imds.jsonl"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check "IMDS: a GET without a token is 401" test "$(code "$IMDS_URL/latest/meta-data/iam/security-credentials/")" = 401
check "IMDS: a PUT without the TTL header is 400" test "$(code -X PUT "$IMDS_URL/latest/api/token")" = 400
check "IMDS: a GET of the token URL is 405" test "$(code "$IMDS_URL/latest/api/token")" = 405
tok=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$IMDS_URL/latest/api/token")
check "IMDS: with a token, the role name" test "$(curl -s -H "X-aws-ec2-metadata-token: $tok" "$IMDS_URL/latest/meta-data/iam/security-credentials/")" = qscale-test-role
check "IMDS: a made-up token is 401" test "$(code -H 'X-aws-ec2-metadata-token: nope' "$IMDS_URL/latest/meta-data/iam/security-credentials/")" = 401
: >"$T/imds.jsonl"

# the role's keys, refreshed before they expire (lifetime 3 s, 8 calls
# over about 6 s)
AWS_EC2_METADATA_SERVICE_ENDPOINT=$IMDS_URL ncall --endpoint "$FAULT_URL/" \
    --iam-role --repeat 8 --interval 800 describe >"$out" 2>"$T/err.log"
check "8 calls with the instance role's keys all worked" \
    test "$(jq -s '[.[] | select(.ok)] | length' "$out")" = 8
check "the source is the instance role" \
    test "$(jq -rs '[.[].creds_source] | unique | join(",")' "$out")" = "instance role qscale-test-role"
faults_log >"$T/log.json"
keys=$(jq -r '[.[].key_id] | unique | length' "$T/log.json")
check "the keys changed as they expired ($keys different keys)" test "$keys" -ge 3
check "every key came from IMDS" sh -c "jq -r '.[].key_id' '$T/log.json' | sort -u | \
    while read -r k; do grep -q \"\\\"\$k\\\"\" '$T/imds.jsonl' || exit 1; done"
# never signed with a key after its expiry, and always with its own token
jq -s '[.[] | select(.AccessKeyId) | {(.AccessKeyId): {exp: .Expiration, tok: .Token}}] | add' \
    "$T/imds.jsonl" >"$T/keys.json"
check "no request was signed with an expired key" sh -c "jq -e --slurpfile k '$T/keys.json' \
    'all(.[]; (.wall | todate) < \$k[0][.key_id].exp)' '$T/log.json' >/dev/null"
check "each request carried the session token of its key" sh -c "jq -e --slurpfile k '$T/keys.json' \
    'all(.[]; .token == \$k[0][.key_id].tok)' '$T/log.json' >/dev/null"
check "x-amz-security-token is signed" \
    test "$(jq -r '[.[].signed_headers] | unique | join(" ")' "$T/log.json")" = "content-type;host;x-amz-date;x-amz-security-token"
check "the refresh is logged with the key id, no secret" sh -c \
    "grep -q 'AWS credentials from instance role qscale-test-role (ASIAMOCK' '$T/err.log' && \
    ! grep -q -e SecretAccessKey -e mock-token- '$T/err.log'"
check "one IMDS token served every refresh" test "$(grep -c '"event": "token"' "$T/imds.jsonl")" = 1

# tokens that die after 1 s: the refresh meets a 401 and gets a new one
start_imds --lifetime 3 --token-ttl-cap 1 --log "$T/imds3.jsonl"
faults_reset
AWS_EC2_METADATA_SERVICE_ENDPOINT=$IMDS_URL ncall --endpoint "$FAULT_URL/" \
    --iam-role --repeat 5 --interval 1000 describe >"$out" 2>"$T/err.log"
check "calls keep working when the IMDS token dies (401, new token)" \
    test "$(jq -s '[.[] | select(.ok)] | length' "$out")" = 5
check "the keys were refreshed meanwhile" \
    test "$(jq -rs '[.[].access_key_id] | unique | length' "$out")" -ge 2
check "a new token was fetched after the 401" test "$(grep -c '"event": "token"' "$T/imds3.jsonl")" -ge 2

# no role attached, or no IMDS at all: a clear auth error
start_imds --no-role
AWS_EC2_METADATA_SERVICE_ENDPOINT=$IMDS_URL ncall --endpoint "$FAULT_URL/" \
    --iam-role describe >"$out" 2>"$T/err.log"
check "no role attached: auth error saying so" \
    jqt '.ok == false and .error.class == "auth" and (.error.message | test("no IAM role is attached"))' "$out"
AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$(free_port)/ ncall \
    --endpoint "$FAULT_URL/" --iam-role describe >"$out" 2>"$T/err.log"
check "IMDS unreachable: auth error naming the endpoint" \
    jqt '.ok == false and .error.class == "auth" and (.error.message | test("instance role \\(http://127.0.0.1:[0-9]+/\\)"))' "$out"
ncall --endpoint "$FAULT_URL/" describe >"$out" 2>"$T/err.log"
check "no keys anywhere: an error that says where keys can come from" \
    jqt '.ok == false and (.error.message | test("no AWS credentials: set aws.access_key_id"))' "$out"

# the shared credentials file, with profiles
cat >"$T/credentials" <<CRED
# comment
[default]
aws_access_key_id = AKIDSHAREDDEFAULT
aws_secret_access_key = shared-SECRET-value-5

[other]
aws_access_key_id=AKIDSHAREDOTHER
aws_secret_access_key=shared-SECRET-value-6
aws_session_token = shared-TOKEN-value-8
CRED
SECRETS="$SECRETS shared-SECRET-value-5 shared-SECRET-value-6 shared-TOKEN-value-8"
export AWS_SHARED_CREDENTIALS_FILE=$T/credentials
faults_reset
ncall --endpoint "$FAULT_URL/" describe >"$out" 2>>"$T/stderr.log"
check "the shared file's default profile" \
    jqt ".ok and .creds_source == \"shared file $T/credentials [default]\" and .access_key_id == \"AKIDSHAREDDEFAULT\"" "$out"
ncall --endpoint "$FAULT_URL/" --profile other describe >"$out" 2>>"$T/stderr.log"
check "aws.profile picks a profile" jqt '.ok and .access_key_id == "AKIDSHAREDOTHER"' "$out"
check "its session token is sent" test "$(faults_log | jq -r '.[-1].token')" = shared-TOKEN-value-8
AWS_PROFILE=other ncall --endpoint "$FAULT_URL/" describe >"$out" 2>>"$T/stderr.log"
check "AWS_PROFILE picks a profile" jqt '.ok and .access_key_id == "AKIDSHAREDOTHER"' "$out"
ncall --endpoint "$FAULT_URL/" --profile nosuch describe >"$out" 2>>"$T/stderr.log"
check "a profile that is not there is an error naming it and the file" \
    jqt ".ok == false and (.error.message | test(\"profile \\\\[nosuch\\\\] not found in $T/credentials\"))" "$out"
printf '[default\naws_access_key_id = x\n' >"$T/broken"
AWS_SHARED_CREDENTIALS_FILE=$T/broken ncall --endpoint "$FAULT_URL/" describe >"$out" 2>>"$T/stderr.log"
check "a broken file is an error naming file and line" \
    jqt ".ok == false and (.error.message | test(\"$T/broken:1: unterminated section\"))" "$out"
mkfifo "$T/fifo"
AWS_SHARED_CREDENTIALS_FILE=$T/fifo timeout 10 "$EC2CALL" --endpoint "$FAULT_URL/" describe >"$out" 2>>"$T/stderr.log"
check "a FIFO as the credentials file is refused at once, not waited on" \
    jqt ".ok == false and (.error.message | test(\"$T/fifo: a FIFO \\\\(named pipe\\\\), not a regular file\"))" "$out"
printf '[default]\naws_access_key_id = x\n' >"$T/half"
AWS_SHARED_CREDENTIALS_FILE=$T/half ncall --endpoint "$FAULT_URL/" describe >"$out" 2>>"$T/stderr.log"
check "a profile without its secret is an error" \
    jqt '.ok == false and (.error.message | test("lacks aws_secret_access_key"))' "$out"

# the order: configuration (or environment) keys, shared file, role
AWS_ACCESS_KEY_ID=AKIDFROMENV AWS_SECRET_ACCESS_KEY=env-SECRET-value-4 \
    "$EC2CALL" --endpoint "$FAULT_URL/" describe >"$out" 2>>"$T/stderr.log"
SECRETS="$SECRETS env-SECRET-value-4"
check "environment keys come before the shared file" \
    jqt '.ok and .creds_source == "environment" and .access_key_id == "AKIDFROMENV"' "$out"
start_imds
AWS_EC2_METADATA_SERVICE_ENDPOINT=$IMDS_URL ncall --endpoint "$FAULT_URL/" \
    --iam-role describe >"$out" 2>>"$T/stderr.log"
check "the shared file comes before the instance role" \
    jqt '.ok and .access_key_id == "AKIDSHAREDDEFAULT"' "$out"
unset AWS_SHARED_CREDENTIALS_FILE
export AWS_SHARED_CREDENTIALS_FILE=$T/no-credentials

# the role against moto: keys from STS that moto checks, refreshed
if start_moto; then
	maws iam create-role --role-name qs-imds --assume-role-policy-document \
	    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/qscale"},"Action":"sts:AssumeRole"}]}' >/dev/null
	maws iam put-role-policy --role-name qs-imds --policy-name ec2 \
	    --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}'
	AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK start_imds --lifetime 3 \
	    --sts "$MOTO_URL" --role-arn arn:aws:iam::123456789012:role/qs-imds \
	    --role qs-imds --log "$T/imds-sts.jsonl"
	AWS_EC2_METADATA_SERVICE_ENDPOINT=$IMDS_URL ncall --endpoint "$MOTO_URL/" \
	    --iam-role --repeat 6 --interval 800 describe >"$out" 2>"$T/err.log"
	check "moto accepts every call signed with the role's rotating keys" \
	    test "$(jq -s '[.[] | select(.ok)] | length' "$out")" = 6
	check "the calls used at least two STS keys" \
	    test "$(jq -rs '[.[].access_key_id] | unique | length' "$out")" -ge 2
	while read -r k; do SECRETS="$SECRETS $k"; done < <(jq -r '.SecretAccessKey // empty' "$T/imds-sts.jsonl")
else
	not_ok "moto_server starts"
fi

# these hold the test's own secrets
rm -f "$T"/imds*.jsonl "$T/keys.json" "$T/credentials"
check "no secret in any output" no_secret_in "$T"
