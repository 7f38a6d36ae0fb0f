#!/usr/bin/env bash
# The EC2 client against moto_server with signature checking on: a launch
# with every field, read back through DescribeInstances, DescribeVolumes
# and DescribeInstanceAttribute; DescribeInstances over several pages; a
# batch terminate with an unknown id; a wrong secret; session tokens.
. "$(dirname "$0")/lib.sh"
. "$QSCALE_TOP/tests/helpers/ec2lib.sh"

start_moto || { not_ok "moto_server starts with signature checking"; exit 1; }
out=$T/out.json

# what the launch needs: a subnet, two groups, a key pair, a profile
SUB=$(maws ec2 describe-subnets --filters Name=availability-zone,Values=us-east-1b \
    --query 'Subnets[0].SubnetId' --output text)
SG1=$(maws ec2 create-security-group --group-name qs-a --description a \
    --query GroupId --output text)
SG2=$(maws ec2 create-security-group --group-name qs-b --description b \
    --query GroupId --output text)
maws ec2 create-key-pair --key-name qs-key >/dev/null
maws iam create-role --role-name qs-role --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
maws iam put-role-policy --role-name qs-role --policy-name ec2 --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}'
maws iam create-instance-profile --instance-profile-name qs-prof >/dev/null
maws iam add-role-to-instance-profile --instance-profile-name qs-prof --role-name qs-role
check "fixtures: subnet, groups" test -n "$SUB" -a -n "$SG1" -a -n "$SG2"

# user data that needs every kind of escaping, and non-ASCII
# shellcheck disable=SC2016	# the $ and backquotes are the data
printf '#!/bin/bash\necho %s "$HOME" `id` \\ %%s & done\n# caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80 \x01\n' \
    "'+/=&%\"\$\\\`'" >"$T/ud.sh"
mcall run --image ami-1e749f67 --type t3.micro --count 1 --subnet "$SUB" \
    --sg "$SG1" --sg "$SG2" --key qs-key --user-data-file "$T/ud.sh" \
    --iam-name qs-prof --ebs-device /dev/xvda --ebs-size 30 --ebs-type gp3 \
    --tag Name=qtest:gpu --tag qscale:autoscaler=test --tag qscale:resource=gpu \
    --tag 'team=a b&c=d' --token tok-every-field >"$out" 2>"$T/err.log"
check "RunInstances with every field works" jqt '.ok and .count == 1' "$out"
ID=$(jq -r '.instances[0].id' "$out")
check "the answer shows pending, the subnet and the token" \
    jqt ".instances[0] | .state == \"pending\" and .subnet == \"$SUB\" and .client_token == \"tok-every-field\"" "$out"

maws ec2 describe-instances --instance-ids "$ID" --query 'Reservations[0].Instances[0]' >"$T/inst.json"
check "read back: image and type" jqt '.ImageId == "ami-1e749f67" and .InstanceType == "t3.micro"' "$T/inst.json"
check "read back: subnet and zone" jqt ".SubnetId == \"$SUB\" and .Placement.AvailabilityZone == \"us-east-1b\"" "$T/inst.json"
check "read back: both security groups" \
    test "$(jq -r '[.SecurityGroups[].GroupId] | sort | join(" ")' "$T/inst.json")" = "$(printf '%s\n' "$SG1" "$SG2" | sort | tr '\n' ' ' | sed 's/ $//')"
check "read back: key pair" jqt '.KeyName == "qs-key"' "$T/inst.json"
check "read back: instance profile" jqt '.IamInstanceProfile.Arn | endswith("instance-profile/qs-prof")' "$T/inst.json"
check "read back: every tag" jqt '(.Tags | from_entries) == {"Name":"qtest:gpu","qscale:autoscaler":"test","qscale:resource":"gpu","team":"a b&c=d"}' "$T/inst.json"
check "read back: IMDSv2 required" jqt '.MetadataOptions.HttpTokens == "required" and .MetadataOptions.HttpEndpoint == "enabled"' "$T/inst.json"
check "read back: the ClientToken" jqt '.ClientToken == "tok-every-field"' "$T/inst.json"
check "read back: not spot" jqt '.InstanceLifecycle == null' "$T/inst.json"
maws ec2 describe-instance-attribute --instance-id "$ID" --attribute instanceInitiatedShutdownBehavior >"$T/attr.json"
check "read back: shutdown terminates" jqt '.InstanceInitiatedShutdownBehavior.Value == "terminate"' "$T/attr.json"
maws ec2 describe-volumes --filters "Name=attachment.instance-id,Values=$ID" --query 'Volumes[0]' >"$T/vol.json"
check "read back: volume of 30 GB gp3 on /dev/xvda" \
    jqt '.Size == 30 and .VolumeType == "gp3" and .Attachments[0].Device == "/dev/xvda"' "$T/vol.json"
# shellcheck disable=SC2016	# jq variables
check "read back: the volume carries the ownership tags" \
    jqt '(.Tags | from_entries) as $t | $t["qscale:autoscaler"] == "test" and $t["qscale:resource"] == "gpu" and $t.Name == "qtest:gpu"' "$T/vol.json"
maws ec2 describe-instance-attribute --instance-id "$ID" --attribute userData \
    --query UserData.Value --output text | base64 -d >"$T/ud.back"
check "read back: user data byte for byte" cmp -s "$T/ud.sh" "$T/ud.back"

# our own DescribeInstances sees it with every field
mcall describe -f tag:qscale:resource=gpu -f instance-state-name=pending,running >"$out" 2>>"$T/stderr.log"
check "DescribeInstances by the ownership tag finds it" jqt ".ok and .count == 1 and .instances[0].id == \"$ID\"" "$out"
check "its fields: state, zone, image, ip, tags, launch time" \
    jqt '.instances[0] | .state == "running" and .state_code == 16 and .az == "us-east-1b" and .image == "ami-1e749f67" and (.private_ip | length) > 6 and .tags["qscale:autoscaler"] == "test" and .launch_ms > 1600000000000' "$out"

# a spot launch with a custom launch spec merged in
mcall run --image ami-1e749f67 --type c5.large --az us-east-1c --spot \
    --tag qscale:resource=spot --custom '{"EbsOptimized": true, "Monitoring": {"Enabled": true}}' >"$out" 2>>"$T/stderr.log"
SPOT=$(jq -r '.instances[0].id' "$out")
check "a spot launch works and says spot" jqt '.ok and .instances[0].spot and .instances[0].az == "us-east-1c"' "$out"
maws ec2 describe-instances --instance-ids "$SPOT" --query 'Reservations[0].Instances[0]' >"$T/spot.json"
check "read back: spot lifecycle" jqt '.InstanceLifecycle == "spot"' "$T/spot.json"
check "read back: custom launch spec (EbsOptimized, Monitoring)" jqt '.EbsOptimized == true and .Monitoring.State == "enabled"' "$T/spot.json"

# more than two pages (moto pages by reservation)
for _ in 1 2 3 4 5; do
	mcall run --image ami-1e749f67 --type t3.nano --tag qscale:resource=paged >/dev/null 2>&1
done
mcall --page-size 2 describe -f tag:qscale:resource=paged >"$out" 2>>"$T/stderr.log"
check "DescribeInstances follows every page: 5 instances" jqt '.ok and .count == 5' "$out"
check "in 3 pages of 2" jqt '.stats.DescribeInstances.calls == 3' "$out"
check "no instance twice" jqt '[.instances[].id] | unique | length == 5' "$out"

# CreateTags, then filter on it
P1=$(jq -r '.instances[0].id' "$out")
P2=$(jq -r '.instances[1].id' "$out")
mcall tags -t draining=yes -t 'note=x y' "$P1" "$P2" >"$out" 2>>"$T/stderr.log"
check "CreateTags works" jqt '.ok' "$out"
mcall describe -f tag:draining=yes >"$out" 2>>"$T/stderr.log"
check "the new tag filters" test "$(jq -r '[.instances[].id] | sort | join(" ")' "$out")" = "$(printf '%s\n' "$P1" "$P2" | sort | tr '\n' ' ' | sed 's/ $//')"

# GetConsoleOutput
mcall console "$ID" >"$out" 2>>"$T/stderr.log"
check "GetConsoleOutput comes back decoded" jqt '.ok and (.output | test("Linux version"))' "$out"

# a batch terminate with an unknown id: the others are terminated
mcall terminate "$P1" i-0123456789abcdef0 "$P2" >"$out" 2>"$T/err.log"
check "terminate with an unknown id succeeds for the rest" jqt '.ok and .count == 3' "$out"
check "the unknown id is marked not_found" \
    test "$(jq -r '[.results[] | select(.not_found) | .id] | join(" ")' "$out")" = i-0123456789abcdef0
check "the two known ones were shutting down" \
    jqt '[.results[] | select(.not_found | not) | .current] == ["shutting-down","shutting-down"]' "$out"
check "the first attempt failed, the second went through" \
    jqt '.stats.TerminateInstances.calls == 2 and .stats.TerminateInstances.errors == 1' "$out"
states=$(maws ec2 describe-instances --instance-ids "$P1" "$P2" \
    --query 'Reservations[].Instances[].State.Name' --output text | tr '\t' ' ')
check "moto says both are terminated ($states)" test "$states" = "terminated terminated"

# dry runs, and errors moto produces
mcall run --image ami-1e749f67 --type t3.micro --subnet "$SUB" --dry-run >"$out" 2>>"$T/stderr.log"
check "a dry run that would work is a success without instances" jqt '.ok and .count == 0' "$out"
# (moto answers a dry run before it looks at the parameters)
mcall run --image ami-1e749f67 --type t3.micro --subnet subnet-0nothere >"$out" 2>>"$T/stderr.log"
check "a bad subnet: InvalidSubnetID.NotFound, not found, one attempt" \
    jqt '.ok == false and .error.code == "InvalidSubnetID.NotFound" and .error.class == "not found" and .error.attempts == 1' "$out"
mcall run --image ami-1e749f67 --type t3.micro --iam-name no-such-profile >"$out" 2>>"$T/stderr.log"
check "a missing instance profile: NoSuchEntity, not found" \
    jqt '.error.code == "NoSuchEntity" and .error.class == "not found" and .error.http_status == 404' "$out"
mcall run --image ami-1e749f67 --type t3.micro --sg sg-0nothere >"$out" 2>>"$T/stderr.log"
check "a missing group: InvalidGroup.NotFound" jqt '.error.code == "InvalidGroup.NotFound" and .error.class == "not found"' "$out"

# a wrong secret
AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=wrong-SECRET-value-7 \
    "$EC2CALL" --endpoint "$MOTO_URL/" describe >"$out" 2>"$T/err.log"
check "a wrong secret: AuthFailure, auth, 401, not retried" \
    jqt '.ok == false and .error.code == "AuthFailure" and .error.class == "auth" and .error.http_status == 401 and .error.attempts == 1' "$out"
SECRETS="$SECRETS wrong-SECRET-value-7"

# session credentials from STS AssumeRole: the token is sent and signed
maws iam create-role --role-name qs-session --assume-role-policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/qscale"},"Action":"sts:AssumeRole"}]}' >/dev/null
maws iam put-role-policy --role-name qs-session --policy-name ec2 --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}'
read -r SAK SSK STOK < <(maws sts assume-role --role-arn \
    arn:aws:iam::123456789012:role/qs-session --role-session-name qs-test \
    --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
SECRETS="$SECRETS $SSK $STOK"
AWS_ACCESS_KEY_ID=$SAK AWS_SECRET_ACCESS_KEY=$SSK AWS_SESSION_TOKEN=$STOK \
    "$EC2CALL" --endpoint "$MOTO_URL/" describe -f tag:qscale:resource=gpu >"$out" 2>>"$T/stderr.log"
check "session credentials work (token signed)" jqt ".ok and .count == 1 and .access_key_id == \"$SAK\"" "$out"
AWS_ACCESS_KEY_ID=$SAK AWS_SECRET_ACCESS_KEY=$SSK AWS_SESSION_TOKEN=wrong-token-value \
    "$EC2CALL" --endpoint "$MOTO_URL/" describe >"$out" 2>>"$T/stderr.log"
check "a wrong session token fails with an auth error" jqt '.ok == false and .error.class == "auth"' "$out"
AWS_ACCESS_KEY_ID=$SAK AWS_SECRET_ACCESS_KEY=$SSK \
    "$EC2CALL" --endpoint "$MOTO_URL/" describe >"$out" 2>>"$T/stderr.log"
check "session keys without their token fail" jqt '.ok == false and .error.class == "auth"' "$out"

# another region is another state: the scope carries the region
mcall --region eu-west-1 describe -f tag:qscale:resource=gpu >"$out" 2>>"$T/stderr.log"
check "the region goes into the signature scope (eu-west-1 is empty)" jqt '.ok and .count == 0' "$out"

# a configuration file (-c): keys and place from it, the launch request
# from launch_spec_build() with the resource's fields and tags
cat >"$T/qs.conf" <<CONF
name = "prod";
workers_prefix = "qtest";
clearml = { api_server = "http://127.0.0.1:9"; access_key = "a";
  secret_key = "clearml-SECRET-value-1"; };
aws = {
  region = "us-east-1";
  endpoint = "$MOTO_URL/";
  access_key_id = "$AK";
  secret_access_key = "$SK";
};
iam_instance_profile = { name = "qs-prof"; };
custom_launch_spec = "{\"EbsOptimized\": true}";
resources = (
  { name = "gpu"; queue = "q-gpu"; instance_type = "t3.large";
    ami = "ami-1e749f67"; max_instances = 4; spot = true;
    subnets = [ "$SUB" ]; security_groups = [ "$SG1" ]; key_pair = "qs-key";
    tags = { team = "ml"; qscale_resource = "x"; };
    ebs = { device = "/dev/xvda"; size_gb = 20; type = "gp3"; };
    custom_launch_spec = { Monitoring = { Enabled = true; }; };
  }
);
CONF
chmod 600 "$T/qs.conf"
"$EC2CALL" -c "$T/qs.conf" describe -f tag:qscale:resource=gpu >"$out" 2>>"$T/stderr.log"
n=$(grep -n 'access_key_id = ' "$T/qs.conf" | cut -d: -f1)
check "-c: the keys of the file, and where they were set (line $n)" \
    jqt ".ok and .count == 1 and .creds_source == \"config $T/qs.conf:$n\"" "$out"
sed -e '/access_key_id = /d' -e '/secret_access_key = /d' "$T/qs.conf" >"$T/nokeys.conf"
chmod 600 "$T/nokeys.conf"
AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK \
    "$EC2CALL" -c "$T/nokeys.conf" describe >"$out" 2>"$T/err.log"
check "-c without keys in the file: the environment's, through the config module" \
    jqt '.ok and (.creds_source | startswith("environment"))' "$out"
"$EC2CALL" -c "$T/qs.conf" resource gpu --subnet "$SUB" --count 3 \
    --token tok-resource --user-data-file "$T/ud.sh" >"$out" 2>"$T/err.log"
check "-c resource gpu: a launch from launch_spec_build()" jqt '.ok and .count >= 1' "$out"
RID=$(jq -r '.instances[0].id' "$out")
maws ec2 describe-instances --instance-ids "$RID" --query 'Reservations[0].Instances[0]' >"$T/res.json"
check "its tags: the user's, Name = prefix:resource, the ownership ones" \
    jqt '(.Tags | from_entries) == {"team":"ml","qscale_resource":"x","Name":"qtest:gpu","qscale:autoscaler":"prod","qscale:resource":"gpu"}' "$T/res.json"
check "its fields: type, subnet, group, key, profile, spot, token" \
    jqt ".InstanceType == \"t3.large\" and .SubnetId == \"$SUB\" and .SecurityGroups[0].GroupId == \"$SG1\" and .KeyName == \"qs-key\" and (.IamInstanceProfile.Arn | endswith(\"/qs-prof\")) and .InstanceLifecycle == \"spot\" and .ClientToken == \"tok-resource\"" "$T/res.json"
check "the global and the resource's launch specs, merged" \
    jqt '.EbsOptimized == true and .Monitoring.State == "enabled"' "$T/res.json"
maws ec2 describe-volumes --filters "Name=attachment.instance-id,Values=$RID" --query 'Volumes[0]' >"$T/rvol.json"
check "its volume: 20 GB gp3 with the ownership tags" \
    jqt '.Size == 20 and .VolumeType == "gp3" and ((.Tags | from_entries)["qscale:autoscaler"] == "prod")' "$T/rvol.json"
maws ec2 describe-instance-attribute --instance-id "$RID" --attribute userData \
    --query UserData.Value --output text | base64 -d >"$T/ud2.back"
check "its user data, byte for byte" cmp -s "$T/ud.sh" "$T/ud2.back"

rm -f "$T/qs.conf" "$T/nokeys.conf"	# they hold the keys themselves
check "no secret in any output" no_secret_in "$T"
