# Helpers for the EC2 client's integration tests, sourced after lib.sh:
# a fresh moto_server with signature checking, the fault server, the IMDS
# mock, and ec2call (build/tools/ec2call) pointed at one of them.

EC2CALL=$QSCALE_BUILD/tools/ec2call
HELPERS=$QSCALE_TOP/tests/helpers

# Nothing of the machine's AWS setup may leak in, nor a proxy.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_EC2 \
    AWS_EC2_METADATA_SERVICE_ENDPOINT AWS_DEFAULT_PROFILE \
    http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export AWS_SHARED_CREDENTIALS_FILE=$T/no-credentials
export AWS_CONFIG_FILE=$T/no-config
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
export no_proxy=127.0.0.1 NO_PROXY=127.0.0.1

# start_moto: moto_server on a free port, every action signature-checked
# after the bootstrap; MOTO_URL, AK and SK (an IAM user allowed ec2, iam
# and sts) are set.
start_moto() {
	MOTO_PORT=$(free_port)
	MOTO_URL=http://127.0.0.1:$MOTO_PORT
	INITIAL_NO_AUTH_ACTION_COUNT=3 moto_server -H 127.0.0.1 \
	    -p "$MOTO_PORT" >"$T/moto.log" 2>&1 &
	MOTO_PID=$!
	on_exit "kill $MOTO_PID"
	wait_for 30 curl -sf "$MOTO_URL/moto-api/data.json" || {
		diag "moto_server did not start"; cat "$T/moto.log"; return 1; }
	_b="aws --endpoint-url $MOTO_URL"
	AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap \
	    $_b iam create-user --user-name qscale >/dev/null &&
	AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap \
	    $_b iam put-user-policy --user-name qscale --policy-name all \
	    --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":
	    "Allow","Action":["ec2:*","iam:*","sts:*"],"Resource":"*"}]}' &&
	read -r AK SK < <(AWS_ACCESS_KEY_ID=bootstrap \
	    AWS_SECRET_ACCESS_KEY=bootstrap $_b iam create-access-key \
	    --user-name qscale --query \
	    'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
	[ -n "${SK:-}" ] || { diag "moto bootstrap failed"; return 1; }
	SECRETS="$SECRETS $SK"
}

# maws ARGS...: the aws CLI against moto with the test user's keys.
maws() {
	AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK \
	    aws --endpoint-url "$MOTO_URL" "$@"
}

# mcall ARGS...: ec2call against moto with the test user's keys.
mcall() {
	AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK \
	    "$EC2CALL" --endpoint "$MOTO_URL/" "$@"
}

# start_faults: the fault server on a free port; FAULT_URL is set.
start_faults() {
	FAULT_PORT=$(free_port)
	FAULT_URL=http://127.0.0.1:$FAULT_PORT
	python3 "$HELPERS/ec2_fault_server.py" "$FAULT_PORT" \
	    >"$T/faults.log" 2>&1 &
	FAULT_PID=$!
	on_exit "kill $FAULT_PID"
	wait_for 10 curl -sf "$FAULT_URL/_ctl/log"
}

# faults JSON: queue faults; faults_reset: forget them and the log.
faults() { curl -sf -X POST --data "$1" "$FAULT_URL/_ctl/faults" >/dev/null; }
faults_reset() { curl -sf -X POST "$FAULT_URL/_ctl/reset" >/dev/null; }
faults_log() { curl -sf "$FAULT_URL/_ctl/log"; }

# fcall ARGS...: ec2call against the fault server, with made-up keys.
fcall() {
	AWS_ACCESS_KEY_ID=${FAKE_AK:-AKIDFAULTTEST} \
	    AWS_SECRET_ACCESS_KEY=${FAKE_SK:-fault-SECRET-value-9} \
	    "$EC2CALL" --endpoint "$FAULT_URL/" "$@"
}
SECRETS="$SECRETS fault-SECRET-value-9"

# start_imds ARGS...: the IMDSv2 mock on a free port; IMDS_URL is set.
start_imds() {
	IMDS_PORT=$(free_port)
	IMDS_URL=http://127.0.0.1:$IMDS_PORT
	python3 "$HELPERS/imds_mock.py" "$IMDS_PORT" "$@" \
	    >"$T/imds-$IMDS_PORT.log" 2>&1 &
	IMDS_PID=$!
	on_exit "kill $IMDS_PID"
	wait_for 10 sh -c "curl -s -o /dev/null -w '%{http_code}' \
	    '$IMDS_URL/latest/meta-data/' | grep -q 401"
}

# jqt FILTER FILE: true when the jq filter holds on the JSON in FILE (one
# document; an empty file or a filter that yields anything else fails).
jqt() { [ "$(jq -c "$1" "$2" 2>/dev/null)" = true ]; }
