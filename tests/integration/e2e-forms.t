#!/usr/bin/env bash
# End to end, the real qscaled on the simulated cloud, configured as a
# user of the ClearML app writes it: subnets as a comma string, tags as
# "key=value,key=value", and max_idle_time set per resource (one resource
# keeps its idle machines longer than the global value says).
# qscale-test: serial
# shellcheck source-path=SCRIPTDIR disable=SC2016  # jq in quotes
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/e2e-lib.sh"

e2e_sim_start || { not_ok "the simulated cloud starts"; exit 1; }

# Per instance: seconds from its last task's end to its termination.
IDLE_GAPS='. as $s | [.instances[] | . as $i |
    {id, resource, gap: (.terminated - ([$s.tasks[] |
    select(.instance == $i.id) | .ended] | max))}]'

# The tags EC2 holds for the instances of one resource.
ec2_tags() {	# RESOURCE
	AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID \
	    AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
	    aws --region "$AWS_REGION" --endpoint-url "$QSCALE_SIM_EC2_URL" \
	    ec2 describe-instances --output json --filters \
	    "Name=tag:qscale:resource,Values=$1" |
	    jq -c '[.Reservations[].Instances[].Tags | from_entries]'
}
fast_tags_ok() {
	ec2_tags fast | jq -e 'length == 1 and .[0].team == "ml" and
	    .[0].owner == "ops"' >/dev/null
}

scenario_forms() {
	e2e_scenario forms
	E2E_IDLE=3s e2e_conf eform \
	    "name = \"fast\"; queue = \"ef-fast\"; instance_type = \"c5.large\";
	     max_instances = 1; tags = \"team=ml, owner=ops\";
	     subnets = \"$E2E_SUBNET_B, $E2E_SUBNET_A\";" \
	    "name = \"slow\"; queue = \"ef-slow\"; instance_type = \"m5.large\";
	     max_instances = 1; max_idle_time = \"9s\";
	     subnets = \"$E2E_SUBNET_A,$E2E_SUBNET_B\";" || {
		not_ok "forms: qscaled -n takes the app's forms"
		return 1
	}
	ok "forms: qscaled -n takes the app's forms"
	simctl queue ef-fast >/dev/null && simctl queue ef-slow >/dev/null
	e2e_start || { not_ok "forms: qscaled starts"; return 1; }
	e2e_enqueue ef-fast 1 1 f-fast >/dev/null
	e2e_enqueue ef-slow 1 1 f-slow >/dev/null
	e2e_wait 15 "forms: both resources launched" \
	    '[.instances[] | .resource] | (index("fast") != null and
	    index("slow") != null)'
	check "forms: fast's tags, from \"team=ml, owner=ops\"" fast_tags_ok
	e2e_wait 40 "forms: every task done, every instance terminated" \
	    "$E2E_DONE"
	S=$E2E_DIR/final.json
	e2e_snap "$S"
	jq -r "$IDLE_GAPS | .[] | \"idle: \(.resource) \(.id) terminated \" +
	    \"\(.gap * 1000 | round / 1000) s after its task ended\"" "$S" |
	    sed 's/^/# /'
	check "forms: fast (the global max_idle_time, 3 s) went within a poll" \
	    sj "$IDLE_GAPS | all(.[]; .resource != \"fast\" or
	    (.gap >= 3 and .gap <= 4.2))" "$S"
	check "forms: slow (its own max_idle_time, 9 s) went within a poll" \
	    sj "$IDLE_GAPS | all(.[]; .resource != \"slow\" or
	    (.gap >= 9 and .gap <= 10.2))" "$S"
	check "forms: fast launched in the first subnet of its comma list" \
	    sj --arg sb "$E2E_SUBNET_B" 'all(.instances[];
	    .resource != "fast" or .subnet == $sb)' "$S"
	check "forms: slow launched in the first subnet of its own" \
	    sj --arg sa "$E2E_SUBNET_A" 'all(.instances[];
	    .resource != "slow" or .subnet == $sa)' "$S"
	check "forms: the log gives each its own idle time" \
	    sh -c "grep -q 'max_idle_time 3s' '$E2E_DIR/log/fast.log' &&
	    grep -q 'max_idle_time 9s' '$E2E_DIR/log/slow.log'"
	e2e_stop
	e2e_no_secret
}

scenario_forms
