#!/usr/bin/env bash
# qscaled --check against moto (signature checking on) and the simulated
# ClearML server: a good configuration passes; a bad subnet, a bad
# secret, a missing group, AMI or profile fail with the AWS code, its
# class and the configuration key at fault.
. "$(dirname "$0")/lib.sh"
. "$QSCALE_TOP/tests/helpers/ec2lib.sh"

if [ ! -x "$QSCALED" ]; then
	not_ok "qscaled is built (it needs the config, userdata and clearml modules)"
	exit 1
fi
start_moto || { not_ok "moto_server starts"; exit 1; }

# the ClearML side: the simulated server alone
CML_PORT=$("$QSCALE_TOP/tests/cloudsim/cloudsim" --free-port-base)
"$QSCALE_TOP/tests/cloudsim/cloudsim" --port-base "$CML_PORT" --no-ec2 \
    --env-file "$T/cml.env" >"$T/cloudsim.log" 2>&1 &
CML_PID=$!
on_exit "kill $CML_PID"
wait_for 30 test -s "$T/cml.env" || { not_ok "the ClearML simulator starts"; exit 1; }
CML_URL=$(. "$T/cml.env"; echo "$QSCALE_SIM_CLEARML_URL")
CML_AK=$(. "$T/cml.env"; echo "$CLEARML_API_ACCESS_KEY")
CML_SK=$(. "$T/cml.env"; echo "$CLEARML_API_SECRET_KEY")
SECRETS="$SECRETS $CML_SK"
for q in q-gpu q-cpu; do
	"$QSCALE_TOP/tests/cloudsim/simctl" --env-file "$T/cml.env" queue "$q" >/dev/null
done

SUB1=$(maws ec2 describe-subnets --filters Name=availability-zone,Values=us-east-1a \
    --query 'Subnets[0].SubnetId' --output text)
SUB2=$(maws ec2 describe-subnets --filters Name=availability-zone,Values=us-east-1b \
    --query 'Subnets[0].SubnetId' --output text)
SG=$(maws ec2 create-security-group --group-name qs-check --description c \
    --query GroupId --output text)
maws ec2 create-key-pair --key-name qs-key >/dev/null
maws iam create-role --role-name qs-role --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
maws iam create-instance-profile --instance-profile-name qs-prof >/dev/null
maws iam add-role-to-instance-profile --instance-profile-name qs-prof --role-name qs-role

# conf FILE SUBNET2 SECRET GROUP AMI PROFILE
conf() {
	cat >"$1" <<CONF
name = "chk";
workers_prefix = "qchk";
log_dir = "$T/log";
pid_file = "$T/run/qscaled.pid";
control = { socket = "$T/run/control.socket"; };
status = { listen = ""; };
clearml = {
  api_server = "$CML_URL";
  access_key = "$CML_AK";
  secret_key = "$CML_SK";
};
aws = {
  region = "us-east-1";
  endpoint = "$MOTO_URL/";
  access_key_id = "$AK";
  secret_access_key = "$3";
  max_attempts = 2;
  retry_base_delay = "50ms";
};
git = { user = "bot"; password = "git-SECRET-value-3"; };
iam_instance_profile = { name = "$6"; };
custom_launch_spec = "{\"Monitoring\": {\"Enabled\": true}}";
resources = (
  {
    name = "gpu";
    queue = "q-gpu";
    instance_type = "g4dn.xlarge";
    ami = "$5";
    max_instances = 2;
    spot = true;
    subnets = [ "$SUB1", "$2" ];
    security_groups = [ "$4" ];
    key_pair = "qs-key";
    tags = { team = "ml"; };
    ebs = { device = "/dev/xvda"; size_gb = 40; type = "gp3"; };
  },
  {
    name = "cpu";
    queue = "q-cpu";
    instance_type = "t3.small";
    ami = "ami-1e749f67";
    availability_zone = "us-east-1c";
    max_instances = 1;
    cpu_mode = true;
  }
);
CONF
	chmod 600 "$1"
}

conf "$T/good.conf" "$SUB2" "$SK" "$SG" ami-1e749f67 qs-prof
"$QSCALED" --check -c "$T/good.conf" >"$T/good.out" 2>&1
rc=$?
diag "$(cat "$T/good.out")"
check "a good configuration passes: exit 0" test "$rc" -eq 0
check "it says where the keys came from" \
    grep -q "^OK aws credentials: AKIA\*\*\*\*.* from config $T/good.conf:[0-9]*$" "$T/good.out"
check "a dry-run launch in each subnet of gpu, as spot" sh -c \
    "grep -q '^OK resource gpu: dry-run RunInstances in $SUB1 (spot)$' '$T/good.out' &&
    grep -q '^OK resource gpu: dry-run RunInstances in $SUB2 (spot)$' '$T/good.out'"
check "cpu in its zone, on demand" \
    grep -q '^OK resource cpu: dry-run RunInstances in zone us-east-1c (on-demand)$' "$T/good.out"
check "the subnets, group, AMI and key pair exist" \
    test "$(grep -c -e '^OK resource gpu: subnet .* exists$' -e '^OK resource gpu: security group .* exists$' \
        -e '^OK resource gpu: AMI ami-1e749f67 exists$' -e '^OK resource gpu: key pair qs-key exists$' "$T/good.out")" = 5
check "the startup script was built for each resource" \
    test "$(grep -c '^OK resource [a-z]*: startup script ([0-9]* bytes)$' "$T/good.out")" = 2
check "DescribeInstances with the ownership tags, per resource" \
    test "$(grep -c '^OK resource [a-z]*: DescribeInstances with the ownership tags: 0 instances' "$T/good.out")" = 2
check "the last line says all passed" test "$(tail -n 1 "$T/good.out")" = "all checks passed"
check "nothing was launched" test "$(maws ec2 describe-instances --query 'length(Reservations)')" = 0

# the second subnet does not exist
conf "$T/subnet.conf" subnet-0deadbeef "$SK" "$SG" ami-1e749f67 qs-prof
"$QSCALED" --check -c "$T/subnet.conf" >"$T/subnet.out" 2>&1
rc=$?
check "a bad subnet: exit 1" test "$rc" -eq 1
line=$(grep '^FAIL resource gpu: subnet subnet-0deadbeef' "$T/subnet.out")
diag "$line"
n=$(grep -n 'subnets = ' "$T/subnet.conf" | cut -d: -f1)
check "it names InvalidSubnetID.NotFound, its class and resources.gpu.subnets[1] at $T/subnet.conf:$n" \
    sh -c "printf '%s' \"\$1\" | grep -qE \"InvalidSubnetID.NotFound \\(not found\\): .*subnet-0deadbeef.* \\[resources.gpu.subnets\\[1\\], $T/subnet.conf:$n\\]$\"" _ "$line"
check "the first subnet still passes" grep -q "^OK resource gpu: dry-run RunInstances in $SUB1 (spot)$" "$T/subnet.out"
check "the last line counts the failures" grep -q '^[1-9][0-9]* checks\? failed$' "$T/subnet.out"

# a wrong secret
conf "$T/secret.conf" "$SUB2" wrong-SECRET-value-7 "$SG" ami-1e749f67 qs-prof
SECRETS="$SECRETS wrong-SECRET-value-7"
"$QSCALED" --check -c "$T/secret.conf" >"$T/secret.out" 2>&1
rc=$?
check "a bad secret: exit 1" test "$rc" -eq 1
line=$(grep '^FAIL resource gpu: dry-run RunInstances in' "$T/secret.out" | head -n 1)
diag "$line"
n=$(grep -n 'access_key_id = ' "$T/secret.conf" | cut -d: -f1)
check "it names AuthFailure (auth) and the keys at $T/secret.conf:$n" \
    sh -c "printf '%s' \"\$1\" | grep -qE \"AuthFailure \\(auth\\): .* \\[aws.access_key_id and aws.secret_access_key, $T/secret.conf:$n\\]$\"" _ "$line"
check "the secret is never printed" no_secret_in "$T/secret.out"

# a missing group, AMI and instance profile at once
conf "$T/more.conf" "$SUB2" "$SK" sg-0nothere ami-00000000deadbeef no-such-profile
"$QSCALED" --check -c "$T/more.conf" >"$T/more.out" 2>&1
rc=$?
check "a missing group, AMI and profile: exit 1" test "$rc" -eq 1
n=$(grep -n 'security_groups = ' "$T/more.conf" | cut -d: -f1)
check "the group: InvalidGroup.NotFound [resources.gpu.security_groups[0], more.conf:$n]" \
    grep -qE "^FAIL resource gpu: security group sg-0nothere: InvalidGroup.NotFound \(not found\): .* \[resources.gpu.security_groups\[0\], $T/more.conf:$n\]$" "$T/more.out"
check "the AMI: InvalidAMIID.NotFound [resources.gpu.ami, ...]" \
    grep -qE '^FAIL resource gpu: AMI ami-00000000deadbeef: InvalidAMIID.NotFound \(not found\): .* \[resources.gpu.ami, ' "$T/more.out"
n=$(grep -n '^iam_instance_profile = ' "$T/more.conf" | cut -d: -f1)
check "the profile: NoSuchEntity [iam_instance_profile.name, more.conf:$n]" \
    grep -qE "^FAIL resource cpu: dry-run RunInstances in zone us-east-1c \(on-demand\): NoSuchEntity \(not found\): .* \[iam_instance_profile.name, $T/more.conf:$n\]$" "$T/more.out"

# no credentials anywhere
sed -e '/access_key_id = /d' -e '/secret_access_key = /d' "$T/good.conf" >"$T/nokeys.conf"
chmod 600 "$T/nokeys.conf"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$QSCALED" --check \
    -c "$T/nokeys.conf" >"$T/nokeys.out" 2>&1
rc=$?
check "no credentials: exit 1 and a line saying where keys can come from" \
    sh -c "test $rc -eq 1 && grep -q '^FAIL aws credentials: no AWS credentials: set aws.access_key_id' '$T/nokeys.out'"

check "no secret in any output" no_secret_in "$T"/*.out
