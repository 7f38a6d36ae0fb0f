#!/usr/bin/env python3
"""Checks of cloudsim's EC2 front through the EC2 API (boto3, signed with
the env file's credentials).  Expects cloudsim started with
--pending-delay 1.  Usage: check_ec2.py ENV_FILE LOG_FILE"""

import base64
import sys
import time

import boto3
import botocore.exceptions

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from checks.tap import (Tap, admin, ec2_client, read_env,  # noqa: E402
                        wait_until)

ENV = read_env(sys.argv[1])
LOG = sys.argv[2]
SUBNETS = ENV["QSCALE_SIM_SUBNETS"].split()
t = Tap()
ec2 = ec2_client(ENV)
TAGS = [{"ResourceType": "instance", "Tags": [
    {"Key": "qscale:autoscaler", "Value": "check"},
    {"Key": "qscale:resource", "Value": "front"}]}]


def err(fn, **kw):
    """(error code, http status, request id) of a call that should fail."""
    try:
        fn(**kw)
    except botocore.exceptions.ClientError as e:
        md = e.response.get("ResponseMetadata", {})
        return (e.response["Error"]["Code"], md.get("HTTPStatusCode"),
                e.response["Error"].get("RequestID") or md.get("RequestId"))
    return (None, 200, None)


def run(itype="t3.micro", subnet=0, mn=1, mx=1, spot=False, **kw):
    args = dict(ImageId=ENV["QSCALE_SIM_AMI"], InstanceType=itype,
                MinCount=mn, MaxCount=mx, SubnetId=SUBNETS[subnet],
                SecurityGroupIds=[ENV["QSCALE_SIM_SECURITY_GROUP"]],
                TagSpecifications=TAGS, UserData="#!/bin/sh\necho hi\n")
    if spot:
        args["InstanceMarketOptions"] = {
            "MarketType": "spot", "SpotOptions": {
                "SpotInstanceType": "one-time",
                "InstanceInterruptionBehavior": "terminate"}}
    args.update(kw)
    return ec2.run_instances(**args)


def describe(ids):
    r = ec2.describe_instances(InstanceIds=ids)
    return {i["InstanceId"]: i for res in r["Reservations"]
            for i in res["Instances"]}


def launched():
    return admin(ENV, "GET", "stats")[1]["totals"]["launches"]["instances"]


# --------------------------------------------------------------- signature
r = ec2.describe_instances()
t.check("the env file's credentials work through the front",
        r["ResponseMetadata"]["HTTPStatusCode"] == 200)
bad = ec2_client(ENV, secret="not-the-secret")
code, status, _ = err(bad.describe_instances)
t.check("a wrong secret gets AuthFailure through the front (moto checks)",
        code == "AuthFailure" and status == 401, (code, status))
code, status, _ = err(bad.run_instances, ImageId=ENV["QSCALE_SIM_AMI"],
                      InstanceType="t3.micro", MinCount=1, MaxCount=1,
                      SubnetId=SUBNETS[0])
t.check("a wrong secret on RunInstances is AuthFailure too, not a launch",
        code == "AuthFailure", (code, status))

# ---------------------------------------------------------------- capacity
st, _ = admin(ENV, "POST", "capacity", {
    "spec": "t3.micro/us-east-1b/spot=0, t3.nano/*/on-demand=2"})
t.check("POST /sim/capacity takes a spec", st == 200)
st, doc = admin(ENV, "POST", "capacity", {"spec": "t3.micro=1"})
t.check("a malformed capacity spec is refused with the reason",
        st == 400 and "TYPE/AZ/MARKET" in doc.get("error", ""), doc)
before = launched()
c1 = err(run, subnet=1, spot=True)
c2 = err(run, subnet=1, spot=True)
t.check("capacity 0: InsufficientInstanceCapacity, HTTP 500, unique "
        "RequestIDs, nothing launched",
        c1[0] == c2[0] == "InsufficientInstanceCapacity" and c1[1] == 500
        and c1[2] and c2[2] and c1[2] != c2[2] and launched() == before,
        (c1, c2))
r = run(subnet=1)
t.check("the same type and zone on demand still launches (market counts)",
        len(r["Instances"]) == 1)
r = run(itype="t3.nano", mn=1, mx=3)
nano = [i["InstanceId"] for i in r["Instances"]]
t.check("MinCount=1/MaxCount=3 with capacity 2 launches 2",
        len(nano) == 2 and len(set(nano)) == 2, nano)
code, status, _ = err(run, itype="t3.nano")
t.check("then the type is full: InsufficientInstanceCapacity",
        code == "InsufficientInstanceCapacity", code)
ec2.terminate_instances(InstanceIds=nano[:1])
r = run(itype="t3.nano", mn=1, mx=3)
t.check("a terminated instance frees its slot",
        len(r["Instances"]) == 1, len(r["Instances"]))
admin(ENV, "POST", "capacity", {"spec": ""})
r = run(itype="t3.small", mn=2, mx=4, IamInstanceProfile={
    "Name": ENV["QSCALE_SIM_INSTANCE_PROFILE"]})
t.check("without a limit MaxCount is honoured (moto alone launches "
        "MinCount)", len(r["Instances"]) == 4, len(r["Instances"]))
small = [i["InstanceId"] for i in r["Instances"]]
d = describe(small)
t.check("the extra instances exist in EC2 with the same parameters",
        len(d) == 4 and all(i["InstanceType"] == "t3.small" and
                            i["SubnetId"] == SUBNETS[0] and
                            {"Key": "qscale:resource", "Value": "front"}
                            in i.get("Tags", []) for i in d.values()), d)
t.check("every instance of the launch has the instance profile",
        all(i.get("IamInstanceProfile", {}).get("Arn", "").endswith(
            "/" + ENV["QSCALE_SIM_INSTANCE_PROFILE"]) for i in d.values()) and
        all("IamInstanceProfile" in i for i in r["Instances"]),
        [i.get("IamInstanceProfile") for i in d.values()])
code, _, _ = err(run, mn=3, mx=1)
t.check("MinCount above MaxCount is InvalidParameterValue (as EC2)",
        code == "InvalidParameterValue", code)
ec2.terminate_instances(InstanceIds=small)

# ------------------------------------------------------------- ClientToken
before = launched()
r1 = run(mn=1, mx=2, ClientToken="tok-%f" % time.time())
tok = r1["Instances"][0]["ClientToken"]
r2 = run(mn=1, mx=2, ClientToken=tok)
ids1 = sorted(i["InstanceId"] for i in r1["Instances"])
ids2 = sorted(i["InstanceId"] for i in r2["Instances"])
t.check("a ClientToken seen before returns the same instances, launches "
        "none", ids1 == ids2 and r1["ReservationId"] == r2["ReservationId"]
        and launched() == before + 2, (ids1, ids2))
code, _, _ = err(run, itype="t3.large", ClientToken=tok)
t.check("the same token with other parameters: IdempotentParameterMismatch",
        code == "IdempotentParameterMismatch", code)

# ---------------------------------------------------------- pending phase
iid = run()["Instances"][0]["InstanceId"]
s0 = describe([iid])[iid]["State"]
pend = ec2.describe_instances(Filters=[
    {"Name": "instance-state-name", "Values": ["pending"]},
    {"Name": "tag:qscale:resource", "Values": ["front"]}])
pend = [i["InstanceId"] for res in pend["Reservations"]
        for i in res["Instances"]]
runn = ec2.describe_instances(Filters=[
    {"Name": "instance-state-name", "Values": ["running"]}])
runn = [i["InstanceId"] for res in runn["Reservations"]
        for i in res["Instances"]]
t.check("right after launch: pending/0, found by a pending filter and not "
        "by a running one", s0 == {"Code": 0, "Name": "pending"} and
        iid in pend and iid not in runn, (s0, pend))
time.sleep(1.2)
s1 = describe([iid])[iid]["State"]
t.check("after --pending-delay: running/16",
        s1 == {"Code": 16, "Name": "running"}, s1)

# ---------------------------------------------------------- injected errors
admin(ENV, "POST", "faults", {"action": "DescribeInstances",
                              "code": "RequestLimitExceeded", "count": 2})
got = [err(ec2.describe_instances)[:2] for _ in range(3)]
t.check("a rule with count fails the first N matching calls, then passes",
        got == [("RequestLimitExceeded", 503)] * 2 + [(None, 200)], got)
admin(ENV, "POST", "faults", {"action": "DescribeVpcs", "code": "Boom",
                              "http_status": 500, "probability": 0.5})
hits = sum(err(ec2.describe_vpcs)[0] == "Boom" for _ in range(60))
t.check("probability 0.5 fails about half the calls", 12 <= hits <= 48,
        hits)
admin(ENV, "DELETE", "faults")
t.check("DELETE /sim/faults clears the rules",
        err(ec2.describe_vpcs)[0] is None)
admin(ENV, "POST", "faults", {
    "action": "RunInstances", "code": "InsufficientInstanceCapacity",
    "match": {"InstanceMarketOptions.MarketType": "spot"}})
admin(ENV, "POST", "faults", {
    "action": "RunInstances", "code": "InvalidSubnetID.NotFound",
    "message": "The subnet ID does not exist",
    "match": {"SubnetId": SUBNETS[1]}})
c_spot = err(run, spot=True)
c_sub = err(run, subnet=1)
c_ok = err(run)
t.check("match: spot calls fail, a subnet fails, other calls pass",
        c_spot[:2] == ("InsufficientInstanceCapacity", 500) and
        c_sub[:2] == ("InvalidSubnetID.NotFound", 400) and c_ok[0] is None,
        (c_spot, c_sub, c_ok))
admin(ENV, "DELETE", "faults")
admin(ENV, "POST", "faults", {"action": "DescribeSubnets",
                              "code": "Unavailable", "after": 0.6})
first = err(ec2.describe_subnets)[0]
time.sleep(0.7)
later = err(ec2.describe_subnets)[0]
t.check("after: the rule starts later", first is None and
        later == "Unavailable", (first, later))
admin(ENV, "DELETE", "faults")
admin(ENV, "POST", "faults", {"action": "DescribeVpcs", "latency_ms": 500})
t0 = time.time()
ec2.describe_vpcs()
dt = time.time() - t0
t.check("latency delays the call", dt >= 0.5, dt)
admin(ENV, "DELETE", "faults")
st, doc = admin(ENV, "POST", "faults", {"action": "X", "count": -1,
                                        "code": "Y"})
t.check("a bad rule is refused with the reason", st == 400 and
        "count" in doc.get("error", ""), doc)
st, doc = admin(ENV, "GET", "stats")
calls = doc["totals"]["ec2_calls"]
t.check("stats count EC2 calls by action with their errors",
        calls["DescribeInstances"]["codes"].get("RequestLimitExceeded") == 2
        and calls["RunInstances"]["errors"] >= 3 and
        any(c["action"] == "DescribeVpcs" and c["status"] == 500 and
            c["error"] == "Boom" for c in doc["totals"]["ec2_call_log"]),
        calls)
slow = [c for c in doc["totals"]["ec2_call_log"]
        if c["action"] == "DescribeVpcs" and c["status"] == 200]
t.check("the call log has when each request came and when it was answered",
        slow and all(c["received"] <= c["time"] for c in
                     doc["totals"]["ec2_call_log"]) and
        slow[-1]["time"] - slow[-1]["received"] >= 0.5, slow[-1:])

# ------------------------------------------------------------ interruption
sid = run(spot=True)["Instances"][0]["InstanceId"]
st, _ = admin(ENV, "POST", "interrupt", {"instance_id": sid})
i = describe([sid])[sid]
t.check("an interrupted spot instance is terminated with "
        "Server.SpotInstanceTermination",
        st == 200 and i["State"]["Name"] == "terminated" and
        i.get("StateReason", {}).get("Code") ==
        "Server.SpotInstanceTermination" and
        i["StateReason"].get("Message") ==
        "Server.SpotInstanceTermination: Spot instance termination", i)
ec2.terminate_instances(InstanceIds=[iid])
i = describe([iid])[iid]
t.check("a user-terminated one keeps Client.UserInitiatedShutdown",
        i["State"]["Name"] == "terminated" and
        i.get("StateReason", {}).get("Code") ==
        "Client.UserInitiatedShutdown", i.get("StateReason"))
st, doc = admin(ENV, "GET", "stats")
inst = {x["id"]: x for x in doc["instances"]}
t.check("stats show the instances with type, market, zone, state, reason",
        inst[sid]["market"] == "spot" and inst[sid]["state"] == "terminated"
        and inst[sid]["state_reason"] == "Server.SpotInstanceTermination"
        and inst[sid]["az"] == "us-east-1a" and
        inst[sid]["resource"] == "front" and inst[sid]["subnet"] ==
        SUBNETS[0] and doc["totals"]["interruptions"] == 1 and
        doc["totals"]["max_alive"].get("front", 0) >= 4, inst[sid])
out = ec2.get_console_output(InstanceId=sid)["Output"]
if not out.startswith("["):
    out = base64.b64decode(out).decode()
t.check("GetConsoleOutput names the instance", sid in out, out[:200])
st, doc = admin(ENV, "POST", "interrupt", {"instance_id": "i-nosuch"})
t.check("interrupting an unknown instance is a 400", st == 400, doc)

# ------------------------------------------------- tags given after launch
# An autoscaler that tags its instances after RunInstances (CreateTags, as
# ClearML's own does) is counted by the tags its instances carry while
# they are alive, not by the tags of the RunInstances call.
admin(ENV, "POST", "reset", {})
late = [x["InstanceId"] for x in run(mn=2, mx=2, TagSpecifications=[])[
    "Instances"]]
time.sleep(0.3)
ec2.create_tags(Resources=late, Tags=[{"Key": "qscale:resource",
                                       "Value": "late"}])
ec2.terminate_instances(InstanceIds=late[:1])
ec2.create_tags(Resources=late[:1], Tags=[{"Key": "qscale:resource",
                                           "Value": "after-end"}])
st, doc = admin(ENV, "GET", "stats")
tot = doc["totals"]
t.check("tagged after launch: max_alive counts both under their resource "
        "from the launch on, nothing under '-'",
        tot["max_alive"] == {"late": 2}, tot["max_alive"])
t.check("... launches by resource too, and the instances show it",
        tot["launches"]["by_resource"] == {"late": 2} and
        {x["resource"] for x in doc["instances"]} == {"late"},
        (tot["launches"], [x["resource"] for x in doc["instances"]]))
t.check("tags given once an instance is terminated do not change what it "
        "was", "after-end" not in tot["max_alive"])
with open(LOG) as f:
    lines = f.read().splitlines()
t.check("the log has a launch-tagged line for each",
        all(any("launch-tagged" in ln and x in ln and "resource=late" in ln
                for ln in lines) for x in late), lines[-5:])
moto = boto3.client(
    "ec2", endpoint_url=ENV["QSCALE_SIM_MOTO_URL"],
    region_name=ENV["AWS_REGION"], aws_access_key_id=ENV[
        "AWS_ACCESS_KEY_ID"], aws_secret_access_key=ENV[
        "AWS_SECRET_ACCESS_KEY"])
moto.create_tags(Resources=late[1:], Tags=[{"Key": "qscale:resource",
                                            "Value": "direct"}])
got = wait_until(lambda: admin(ENV, "GET", "stats")[1]["totals"]
                 ["max_alive"] == {"late": 1, "direct": 1}, 4)
t.check("tags changed in moto itself (not through the front) are seen "
        "within seconds", got, admin(ENV, "GET", "stats")[1]["totals"]
        ["max_alive"])
direct = moto.run_instances(ImageId=ENV["QSCALE_SIM_AMI"],
                            InstanceType="t3.micro", MinCount=1, MaxCount=1,
                            SubnetId=SUBNETS[1])["Instances"][0]["InstanceId"]
got = wait_until(lambda: [x for x in admin(ENV, "GET", "stats")[1]
                          ["instances"] if x["id"] == direct], 8)
t.check("an instance launched in moto itself, untagged, is counted",
        got and got[0]["resource"] is None, got)
moto.terminate_instances(InstanceIds=[direct])
got = wait_until(lambda: [x for x in admin(ENV, "GET", "stats")[1]
                          ["instances"] if x["id"] == direct and
                          x["terminated"]], 4)
t.check("... and its termination in moto too", got, got)
sys.exit(t.done())
