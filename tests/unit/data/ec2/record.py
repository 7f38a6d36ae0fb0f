#!/usr/bin/env python3
"""Records the EC2 fixtures the unit tests read (test_ec2_xml, test_ec2_query,
test_sigv4) and writes them beside this script.

Re-run it, from anywhere, after changing what it records:

    python3 tests/unit/data/ec2/record.py [--out DIR]

then run `make unit` and commit what changed in tests/unit/data/ec2/.  It
needs python3 with moto (moto_server) and botocore/boto3, nothing else, and
touches only 127.0.0.1: a moto_server on a free port, with every call
signature-checked once the IAM bootstrap is done.

What it writes:
  *.xml           the raw body of each response, byte for byte, as moto sent
                  it (a few moto cannot produce are written here by hand:
                  see HANDMADE); the fuzzer is seeded from these too
  *.request.txt   the raw body botocore sent, where a test compares one
  index.json      per response: the call, the HTTP status, the request file,
                  and what botocore's own parser makes of the body (the
                  tests hold qscale's parser to that)
  sigv4_vectors.json
                  requests signed by botocore's SigV4Auth at fixed dates
                  with AWS's example credentials, each checked here against
                  a second, standard-library signer

moto's random ids are seeded, so a re-run with the same moto gives the same
ids; times and request ids still change.  The vectors do not change at all.
"""

import argparse
import base64
import datetime
import glob
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import xml.dom.minidom

import boto3
import botocore
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.parsers
import moto

REGION = "us-east-1"
SEED = 20240115

# The user data of the full launch: every byte base64 and form encoding
# can trip on (so its base64 has + / and =).  test_ec2_query.c has the
# same script and expects its own request to be the recorded one.
USER_DATA = (b"#!/bin/bash\n"
             b"echo '+/=&%' \"$HOME\" \\ `date` ~\n"
             b"printf 'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80\\n'\n"
             b"x=\x01\x7f\n"
             b"# ??>>\n")

TAGS = [("Name", "qtest:gpu"), ("qscale:autoscaler", "prod"),
        ("qscale:resource", "gpu"), ("team", "a b&c=d")]

# Errors moto never returns, written as EC2 sends them.
HANDMADE = {
    "error_InsufficientInstanceCapacity_500.xml": (
        500, "RunInstances",
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Response><Errors><Error><Code>InsufficientInstanceCapacity</Code>"
        "<Message>We currently do not have sufficient g4dn.xlarge capacity "
        "in the Availability Zone you requested (us-east-1b). Our system "
        "will be working on provisioning additional capacity. You can "
        "currently get g4dn.xlarge capacity by not specifying an "
        "Availability Zone in your request or choosing us-east-1a, "
        "us-east-1c.</Message></Error></Errors>"
        "<RequestID>5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a</RequestID>"
        "</Response>"),
    "error_RequestLimitExceeded_503.xml": (
        503, "DescribeInstances",
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
        "<Message>Request limit exceeded.</Message></Error></Errors>"
        "<RequestID>0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d</RequestID>"
        "</Response>"),
    "error_500_empty.xml": (500, "TerminateInstances", ""),
}


def die(msg):
    sys.stderr.write("record.py: %s\n" % msg)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    """moto_server on 127.0.0.1, signature checking on after three free
    actions (the bootstrap), its log in a temporary directory."""

    FREE_ACTIONS = 3

    def __init__(self, tmp):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = os.path.join(tmp, "moto.log")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and k.lower() not in
               ("http_proxy", "https_proxy", "all_proxy")}
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(self.FREE_ACTIONS)
        # so that a bad image or instance type is an error, as on AWS
        env["MOTO_ENABLE_AMI_VALIDATION"] = "true"
        env["MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION"] = "true"
        exe = shutil.which("moto_server")
        cmd = [exe] if exe else [sys.executable, "-m", "moto.server"]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd + ["-H", "127.0.0.1", "-p", str(self.port)], env=env,
                stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(
                        self.url + "/moto-api/data.json", timeout=1) as r:
                    r.read()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        with open(self.log, errors="replace") as f:
            sys.stderr.write(f.read()[-3000:])
        die("moto_server did not start")

    def moto_api(self, path):
        req = urllib.request.Request(self.url + path, data=b"",
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def plain(x):
    """botocore's parse, as JSON: datetimes to epoch milliseconds."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [plain(v) for v in x]
    if isinstance(x, datetime.datetime):
        return int(x.timestamp() * 1000)
    return x


def instance_expect(i):
    """What botocore parsed of one instance, by qscale's field names."""
    return {
        "id": i["InstanceId"],
        "state": i["State"]["Name"],
        "state_code": i["State"]["Code"],
        "type": i.get("InstanceType", ""),
        "az": i.get("Placement", {}).get("AvailabilityZone", ""),
        "subnet": i.get("SubnetId", ""),
        "image": i.get("ImageId", ""),
        "private_ip": i.get("PrivateIpAddress", ""),
        "state_reason": i.get("StateReason", {}).get("Code", ""),
        "client_token": i.get("ClientToken", ""),
        "spot": i.get("InstanceLifecycle") == "spot",
        "launch_ms": plain(i["LaunchTime"]),
        "tags": [[t["Key"], t["Value"]] for t in i.get("Tags", [])],
    }


class Recorder:
    def __init__(self, out, moto_server):
        self.out = out
        self.moto = moto_server
        self.entries = []
        self.names = set()
        self.last_request = None
        self.last_response = None
        self.cfg = botocore.config.Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            parameter_validation=True)
        self.model = boto3.session.Session().client(
            "ec2", region_name=REGION, aws_access_key_id="x",
            aws_secret_access_key="x",
            endpoint_url=moto_server.url).meta.service_model
        self.parser = botocore.parsers.create_parser("ec2")

    def client(self, service, ak, sk):
        c = boto3.session.Session().client(
            service, region_name=REGION, endpoint_url=self.moto.url + "/",
            aws_access_key_id=ak, aws_secret_access_key=sk, config=self.cfg)
        c.meta.events.register("before-send.*", self._on_send)
        c.meta.events.register("before-parse.*", self._on_response)
        return c

    def _on_send(self, request, **kw):
        self.last_request = request

    def _on_response(self, response_dict, **kw):
        self.last_response = response_dict

    def call(self, client, op, **params):
        """One call; its raw request and response, and the parsed result."""
        self.last_request = self.last_response = None
        method = getattr(client, botocore.xform_name(op))
        try:
            parsed = method(**params)
        except botocore.exceptions.ClientError as e:
            parsed = e.response
        except botocore.parsers.ResponseParserError:
            parsed = None		# moto's HTML pages
        if self.last_response is None:
            die("%s: nothing recorded" % op)
        body = self.last_request.body
        if isinstance(body, str):
            body = body.encode()
        return body, self.last_response, parsed

    def expect(self, op, status, body):
        """botocore's reading of a body, given only the status and bytes."""
        shape = self.model.operation_model(op).output_shape
        return self.parser.parse({"status_code": status, "headers": {},
                                  "body": body}, shape)

    def write(self, name, data):
        if name in self.names:
            die("%s written twice" % name)
        self.names.add(name)
        with open(os.path.join(self.out, name), "wb") as f:
            f.write(data)

    def add(self, name, op, kind, status, body, request=None, note=None,
            content_type=None):
        """Writes NAME.xml (and NAME.request.txt) and its index entry."""
        entry = {"file": name + ".xml", "action": op, "status": status,
                 "kind": kind}
        if content_type:
            entry["content_type"] = content_type
        if note:
            entry["note"] = note
        self.write(entry["file"], body)
        if request is not None:
            entry["request"] = name + ".request.txt"
            self.write(entry["request"], request)
        entry["expect"] = self.expectation(op, kind, status, body)
        self.entries.append(entry)
        return entry

    def record(self, name, client, op, kind, want_status, request=False,
               note=None, **params):
        req, resp, parsed = self.call(client, op, **params)
        status = resp["status_code"]
        if status != want_status:
            die("%s: HTTP %d, want %d: %r" % (name, status, want_status,
                                            resp["body"][:300]))
        self.add(name, op, kind, status, resp["body"],
                 req if request else None, note,
                 resp["headers"].get("content-type"))
        return parsed, req

    def expectation(self, op, kind, status, body):
        text = body.decode("utf-8", "replace")
        if kind == "error":
            if not text.strip():
                return {"code": "", "shape": "empty"}
            if re.match(r"\s*<(!doctype html|html)", text, re.I):
                m = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
                return {"code": "", "shape": "html",
                        "title": m.group(1) if m else ""}
            p = self.expect(op, status, body)
            err = p.get("Error", {})
            if not err.get("Code"):
                die("%s: botocore finds no error code" % op)
            return {"code": err["Code"], "message": err.get("Message", ""),
                    "request_id": p.get("ResponseMetadata", {}).get(
                        "RequestId", ""), "shape": "xml"}
        p = self.expect(op, status, body)
        if "Error" in p:
            die("%s: botocore reads an error: %r" % (op, p["Error"]))
        if kind == "instances":
            if "Reservations" in p:
                res = p["Reservations"]
            else:
                res = [p]
            return {"instances": [instance_expect(i) for r in res
                                  for i in r.get("Instances", [])],
                    "reservations": len(res),
                    "next_token": p.get("NextToken")}
        if kind == "terminate":
            return {"results": [
                {"id": t["InstanceId"],
                 "previous_state": t["PreviousState"]["Name"],
                 "current_state": t["CurrentState"]["Name"]}
                for t in p["TerminatingInstances"]]}
        if kind == "console":
            return {"instance_id": p.get("InstanceId", ""),
                    "output": base64.b64decode(p["Output"]).decode()}
        if kind == "other":
            return {k: v for k, v in plain(p).items()
                    if k != "ResponseMetadata"}
        die("unknown kind %s" % kind)


def bootstrap(rec):
    """The three free actions: a user allowed everything, and its key."""
    iam = rec.client("iam", "bootstrap", "bootstrap")
    iam.create_user(UserName="qscale")
    iam.put_user_policy(
        UserName="qscale", PolicyName="all", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["ec2:*", "iam:*", "sts:*"],
                "Resource": "*"}]}))
    k = iam.create_access_key(UserName="qscale")["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def check_auth_on(rec):
    """From now on a wrong key must fail, or nothing here is signed."""
    bad = rec.client("ec2", "AKIDNOSUCHKEY0000000", "nope")
    _, resp, _ = rec.call(bad, "DescribeRegions")
    if resp["status_code"] != 401:
        die("moto does not check signatures (HTTP %d)" %
            resp["status_code"])


def record_all(rec, ak, sk):
    ec2 = rec.client("ec2", ak, sk)
    iam = rec.client("iam", ak, sk)
    check_auth_on(rec)

    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole"}]})
    role = iam.create_role(RoleName="worker",
                           AssumeRolePolicyDocument=trust)["Role"]
    prof = iam.create_instance_profile(
        InstanceProfileName="worker-profile")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="worker-profile",
                                     RoleName=role["RoleName"])
    subnet = [s for s in ec2.describe_subnets()["Subnets"]
              if s["AvailabilityZone"] == "us-east-1b"][0]
    groups = [ec2.create_security_group(
        GroupName=n, Description=n, VpcId=subnet["VpcId"])["GroupId"]
        for n in ("qscale-workers", "qscale-ssh")]
    ec2.create_key_pair(KeyName="ops key")
    tags = [{"Key": k, "Value": v} for k, v in TAGS]

    # RunInstances with every field qscale sends, and some a
    # custom_launch_spec would add; MinCount 2 so that the reservation
    # holds two instances
    full, req = rec.record(
        "RunInstances_full", ec2, "RunInstances", "instances", 200,
        request=True,
        ImageId="ami-1e749f67", InstanceType="g4dn.xlarge", MinCount=2,
        MaxCount=3, SubnetId=subnet["SubnetId"], SecurityGroupIds=groups,
        KeyName="ops key", UserData=USER_DATA,
        IamInstanceProfile={"Arn": prof["Arn"]},
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {
            "VolumeSize": 100, "VolumeType": "gp3",
            "DeleteOnTermination": True}}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags},
                           {"ResourceType": "volume", "Tags": tags}],
        InstanceMarketOptions={"MarketType": "spot", "SpotOptions": {
            "SpotInstanceType": "one-time",
            "InstanceInterruptionBehavior": "terminate"}},
        InstanceInitiatedShutdownBehavior="terminate",
        MetadataOptions={"HttpTokens": "required",
                         "HttpEndpoint": "enabled",
                         "HttpPutResponseHopLimit": 2},
        ClientToken="qscale-rec-0001",
        EbsOptimized=True, Monitoring={"Enabled": True},
        CpuOptions={"CoreCount": 2, "ThreadsPerCore": 1})
    full_ids = [i["InstanceId"] for i in full["Instances"]]
    if len(full_ids) != 2:
        die("RunInstances_full launched %d instances" % len(full_ids))

    # more reservations, so that DescribeInstances has pages; the last
    # one is another resource's, which the filter leaves out
    small = []
    for itype, res in (("t3.micro", "gpu"), ("t3.small", "gpu"),
                       ("t3.nano", "cpu")):
        r = ec2.run_instances(
            ImageId="ami-1e749f67", InstanceType=itype, MinCount=1,
            MaxCount=1, SubnetId=subnet["SubnetId"],
            ClientToken="qscale-rec-%s" % itype,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": "qscale:autoscaler", "Value": "prod"},
                {"Key": "qscale:resource", "Value": res}]}])
        small.append(r["Instances"][0]["InstanceId"])

    # DescribeInstances by tag and state, one reservation a page (moto
    # pages by reservation), until there is no nextToken
    token, page = None, 1
    while True:
        params = {"Filters": [
            {"Name": "tag:qscale:resource", "Values": ["gpu"]},
            {"Name": "instance-state-name",
             "Values": ["pending", "running"]}], "MaxResults": 1}
        if token:
            params["NextToken"] = token
        parsed, req = rec.record("DescribeInstances_page%d" % page, ec2,
                                 "DescribeInstances", "instances", 200,
                                 request=True, **params)
        token = parsed.get("NextToken")
        if not token:
            break
        page += 1
        if page > 6:
            die("DescribeInstances: no end to the pages")
    if page < 3:
        die("DescribeInstances: only %d pages" % page)
    body = open(os.path.join(rec.out, "DescribeInstances_page1.xml"),
                "rb").read()
    pretty = xml.dom.minidom.parseString(body).toprettyxml(
        indent="  ", encoding="utf-8")
    e = rec.add("DescribeInstances_page1.pretty", "DescribeInstances",
                "instances", 200, pretty,
                note="DescribeInstances_page1.xml, indented")
    first = [x for x in rec.entries
             if x["file"] == "DescribeInstances_page1.xml"][0]
    if e["expect"] != first["expect"]:
        die("the indented page does not read as the page")

    rec.record("CreateTags", ec2, "CreateTags", "other", 200, request=True,
               Resources=[full_ids[0]],
               Tags=[{"Key": "qscale:draining", "Value": "true"}])
    rec.record("GetConsoleOutput", ec2, "GetConsoleOutput", "console", 200,
               InstanceId=full_ids[0])
    rec.record("DescribeInstanceAttribute_userData", ec2,
               "DescribeInstanceAttribute", "other", 200,
               InstanceId=full_ids[0], Attribute="userData")
    rec.record("TerminateInstances_2ids", ec2, "TerminateInstances",
               "terminate", 200, request=True, InstanceIds=small[:2])
    rec.record("DescribeInstances_terminated", ec2, "DescribeInstances",
               "instances", 200, request=True,
               InstanceIds=small[:2])

    # the errors moto gives
    rec.record("error_InvalidInstanceID.NotFound", ec2,
               "TerminateInstances", "error", 400, request=True,
               InstanceIds=["i-0123456789abcdef0"])
    rec.record("error_InvalidInstanceID.NotFound_2ids", ec2,
               "TerminateInstances", "error", 400, request=True,
               InstanceIds=["i-0123456789abcdef0", "i-0fedcba9876543210"])
    rec.record("error_InvalidSubnetID.NotFound", ec2, "RunInstances",
               "error", 400, ImageId="ami-1e749f67",
               InstanceType="t3.micro", MinCount=1, MaxCount=1,
               SubnetId="subnet-doesnotexist")
    rec.record("error_InvalidAMIID.NotFound", ec2, "RunInstances",
               "error", 400, ImageId="ami-00000000deadbeef0",
               InstanceType="t3.micro", MinCount=1, MaxCount=1)
    rec.record("error_InvalidInstanceType.NotFound", ec2, "RunInstances",
               "error", 400, ImageId="ami-1e749f67",
               InstanceType="zz9.mega", MinCount=1, MaxCount=1)
    rec.record("error_NoSuchEntity_instance_profile_404", ec2,
               "RunInstances", "error", 404, ImageId="ami-1e749f67",
               InstanceType="t3.micro", MinCount=1, MaxCount=1,
               IamInstanceProfile={"Name": "nope"})
    rec.record("error_DryRunOperation_412", ec2, "RunInstances", "error",
               412, ImageId="ami-1e749f67", InstanceType="t3.micro",
               MinCount=1, MaxCount=1, DryRun=True)
    rec.record("error_AuthFailure_wrong_secret_401",
               rec.client("ec2", ak, sk[:-4] + "nope"),
               "DescribeInstances", "error", 401)
    iam.create_user(UserName="nopolicy")
    k = iam.create_access_key(UserName="nopolicy")["AccessKey"]
    rec.record("error_AccessDenied_nopolicy_403",
               rec.client("ec2", k["AccessKeyId"], k["SecretAccessKey"]),
               "DescribeInstances", "error", 403)
    rec.record("error_500_html_bogus_NextToken", ec2, "DescribeInstances",
               "error", 500, NextToken="r-bogus-token")

    for name, (status, op, body) in HANDMADE.items():
        rec.add(name[:-4], op, "error", status, body.encode(),
                note="written by record.py: moto never returns it")

    return {"subnet_id": subnet["SubnetId"], "security_group_ids": groups,
            "iam_profile_arn": prof["Arn"], "instance_ids": full_ids}


# --- SigV4 vectors ------------------------------------------------------

EXAMPLE_AK = "AKIDEXAMPLE"		# AWS's documented example credentials
EXAMPLE_SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
# The signature AWS's SigV4 test suite publishes for get-vanilla.
GET_VANILLA = ("5fa00fa31553b73ebf1942676e86291e"
               "8372ff2a2260956d9b8aae1d763fbf31")


def stdlib_sign(method, url, headers, body, amz_date, region, service, ak,
                sk):
    """SigV4 from the specification, standard library only: the second
    opinion on every botocore vector."""
    u = urllib.parse.urlsplit(url)
    host = u.hostname
    if u.port and u.port != {"https": 443, "http": 80}[u.scheme]:
        host += ":%d" % u.port
    hdrs = {"host": host}
    for k, v in headers.items():
        if k.lower() not in ("host", "authorization", "user-agent"):
            hdrs[k.lower()] = " ".join(v.split())
    signed = sorted(hdrs)
    creq = "\n".join([
        method, u.path or "/", "",
        "".join("%s:%s\n" % (h, hdrs[h]) for h in signed),
        ";".join(signed), hashlib.sha256(body).hexdigest()])
    day = amz_date[:8]
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + sk).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    auth = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
            "Signature=%s" % (ak, scope, ";".join(signed), sig))
    return {"canonical_request": creq, "string_to_sign": sts,
            "signing_key_hex": key.hex(), "signature": sig,
            "authorization": auth}


class _Raw:
    def __init__(self, body):
        self.body = body

    def stream(self, **kw):
        yield self.body


def client_request(op, params, endpoint, region, amz_date, token):
    """The request botocore's EC2 client would send, built and signed by
    the client itself at a frozen time, caught before it is sent."""
    when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    caught = {}

    def on_send(request, **kw):
        caught["req"] = request
        name = op + "Response"
        return botocore.awsrequest.AWSResponse(
            request.url, 200, {}, _Raw(("<%s/>" % name).encode()))

    c = boto3.session.Session().client(
        "ec2", region_name=region, endpoint_url=endpoint,
        aws_access_key_id=EXAMPLE_AK, aws_secret_access_key=EXAMPLE_SK,
        aws_session_token=token)
    c.meta.events.register("before-send.*", on_send)
    saved = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda *a, **k: when
    try:
        getattr(c, botocore.xform_name(op))(**params)
    finally:
        botocore.auth.get_current_datetime = saved
    return caught["req"]


def sigv4_auth(method, url, headers, body, amz_date, region, service,
               token):
    """botocore's SigV4Auth on a request of our own: every step of it."""
    req = botocore.awsrequest.AWSRequest(method=method, url=url,
                                         headers=dict(headers), data=body)
    creds = botocore.credentials.Credentials(EXAMPLE_AK, EXAMPLE_SK, token)
    auth = botocore.auth.SigV4Auth(creds, service, region)
    when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    saved = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda *a, **k: when
    try:
        auth.add_auth(req)
    finally:
        botocore.auth.get_current_datetime = saved
    # each step again, on the request as it was signed
    authorization = req.headers["Authorization"]
    del req.headers["Authorization"]
    creq = auth.canonical_request(req)
    sts = auth.string_to_sign(req, creq)
    key = auth._sign(("AWS4" + EXAMPLE_SK).encode(), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = auth._sign(key, part)
    sig = auth.signature(sts, req)
    if hmac.new(key, sts.encode(), hashlib.sha256).hexdigest() != sig or \
            not authorization.endswith("Signature=" + sig):
        die("SigV4Auth's steps do not give its signature")
    return req, {"canonical_request": creq, "string_to_sign": sts,
                 "signing_key_hex": key.hex(), "signature": sig,
                 "authorization": authorization}


VECTORS = [
    ("describe-instances-tag-filter-paginated", "DescribeInstances",
     "https://ec2.us-east-1.amazonaws.com/", "us-east-1",
     "20150830T123600Z", None, {
         "Filters": [{"Name": "tag:qscale:resource", "Values": ["gpu"]},
                     {"Name": "instance-state-name",
                      "Values": ["pending", "running"]}],
         "MaxResults": 1000, "NextToken": "r-0abc/def+ghi=="}),
    ("run-instances-full", "RunInstances",
     "https://ec2.us-east-1.amazonaws.com/", "us-east-1",
     "20240115T083005Z", None, {
         "ImageId": "ami-0123456789abcdef0", "InstanceType": "g4dn.xlarge",
         "MinCount": 1, "MaxCount": 3, "SubnetId": "subnet-0aaa",
         "SecurityGroupIds": ["sg-0123", "sg-0456"], "KeyName": "ops key",
         "UserData": USER_DATA, "IamInstanceProfile": {
             "Arn": "arn:aws:iam::123456789012:instance-profile/w"},
         "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {
             "VolumeSize": 100, "VolumeType": "gp3",
             "DeleteOnTermination": True}}],
         "TagSpecifications": [
             {"ResourceType": t, "Tags": [{"Key": k, "Value": v}
                                          for k, v in TAGS]}
             for t in ("instance", "volume")],
         "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {
             "SpotInstanceType": "one-time",
             "InstanceInterruptionBehavior": "terminate"}},
         "InstanceInitiatedShutdownBehavior": "terminate",
         "MetadataOptions": {"HttpTokens": "required",
                             "HttpEndpoint": "enabled"},
         "ClientToken": "qscale-tok-1", "DryRun": True}),
    ("terminate-instances-2-ids", "TerminateInstances",
     "https://ec2.eu-west-1.amazonaws.com/", "eu-west-1",
     "20240115T083005Z", None, {
         "InstanceIds": ["i-0123456789abcdef0", "i-0fedcba9876543210"]}),
    ("create-tags-with-session-token", "CreateTags",
     "https://ec2.eu-west-1.amazonaws.com/", "eu-west-1",
     "20240229T235959Z", "FQoGZXIvYXdzEXAMPLE//session+token=value==", {
         "Resources": ["i-0123456789abcdef0"],
         "Tags": [{"Key": "qscale:draining", "Value": "true"}]}),
    ("get-console-output-host-port", "GetConsoleOutput",
     "http://127.0.0.1:5055/", "us-east-1", "20231231T235959Z", None, {
         "InstanceId": "i-0123456789abcdef0", "Latest": True}),
    ("describe-instance-attribute-ap-southeast-2",
     "DescribeInstanceAttribute", "https://ec2.ap-southeast-2.amazonaws.com/",
     "ap-southeast-2", "20260101T000000Z", None, {
         "InstanceId": "i-0123456789abcdef0", "Attribute": "userData"}),
]


def text(v):
    return v.decode() if isinstance(v, bytes) else v


def make_vectors():
    out = []
    for name, op, endpoint, region, amz_date, token, params in VECTORS:
        sent = client_request(op, params, endpoint, region, amz_date,
                              token)
        body = sent.body if isinstance(sent.body, bytes) else \
            sent.body.encode()
        host = urllib.parse.urlsplit(sent.url).netloc
        headers = {"Content-Type": text(sent.headers["Content-Type"]),
                   "X-Amz-Date": text(sent.headers["X-Amz-Date"])}
        if token:
            headers["X-Amz-Security-Token"] = token
        req, v = sigv4_auth("POST", sent.url, headers, body, amz_date,
                            region, "ec2", token)
        if v["authorization"] != text(sent.headers["Authorization"]):
            die("%s: the client signs %s, SigV4Auth %s" % (
                name, text(sent.headers["Authorization"]),
                v["authorization"]))
        out.append(vector(name, op, "POST", sent.url, host, amz_date,
                          region, "ec2", token, headers, body, v))
    # AWS's own get-vanilla, whose signature is published
    url = "https://example.amazonaws.com/"
    headers = {"X-Amz-Date": "20150830T123600Z"}
    req, v = sigv4_auth("GET", url, headers, b"", "20150830T123600Z",
                        "us-east-1", "service", None)
    if v["signature"] != GET_VANILLA:
        die("get-vanilla: %s, AWS publishes %s" % (v["signature"],
                                                   GET_VANILLA))
    out.append(vector("aws-suite-get-vanilla", None, "GET", url,
                      "example.amazonaws.com", "20150830T123600Z",
                      "us-east-1", "service", None, headers, b"", v))
    for vec in out:
        mine = stdlib_sign(vec["method"], vec["url"], {
            k: v for k, v in vec["request_headers"].items()
            if k != "Authorization"}, vec["body"].encode(),
            vec["amz_date"], vec["region"], vec["service"],
            vec["access_key_id"], vec["secret_access_key"])
        for k, v in mine.items():
            if vec[k] != v:
                die("%s: %s differs between botocore and the stdlib "
                    "signer:\n%s\n%s" % (vec["name"], k, vec[k], v))
    return out


def vector(name, op, method, url, host, amz_date, region, service, token,
           headers, body, v):
    hdrs = {"Host": host}
    hdrs.update(headers)
    hdrs["Authorization"] = v["authorization"]
    return dict([
        ("name", name), ("operation", op), ("method", method),
        ("url", url), ("host", host), ("region", region),
        ("service", service), ("amz_date", amz_date),
        ("access_key_id", EXAMPLE_AK), ("secret_access_key", EXAMPLE_SK),
        ("session_token", token), ("request_headers", hdrs),
        ("body", body.decode()),
        ("payload_sha256", hashlib.sha256(body).hexdigest())] +
        list(v.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(
        __file__)), help="where to write (default: beside this script)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    vectors = make_vectors()
    tmp = tempfile.mkdtemp(prefix="qscale-record.")
    try:
        # all of it in a scratch directory first: a failed run leaves the
        # fixtures as they were
        scratch = os.path.join(tmp, "out")
        os.mkdir(scratch)
        server = Moto(tmp)
        try:
            server.wait_ready()
            server.moto_api("/moto-api/seed?a=%d" % SEED)
            rec = Recorder(scratch, server)
            ak, sk = bootstrap(rec)
            launch = record_all(rec, ak, sk)
        finally:
            server.stop()
        index = {
            "about": "Written by record.py (see there); do not edit.",
            "recorded_with": {"moto": moto.__version__,
                              "botocore": botocore.__version__},
            "launch": launch,
            "responses": rec.entries,
        }
        for name, data in (("index.json", index),
                           ("sigv4_vectors.json", vectors)):
            with open(os.path.join(scratch, name), "w") as f:
                json.dump(data, f, indent=1, ensure_ascii=True)
                f.write("\n")
        for old in (glob.glob(os.path.join(args.out, "*.xml")) +
                    glob.glob(os.path.join(args.out, "*.request.txt"))):
            os.unlink(old)
        for name in sorted(os.listdir(scratch)):
            shutil.move(os.path.join(scratch, name),
                        os.path.join(args.out, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("record.py: %d responses and %d vectors in %s" % (
        len(rec.entries), len(vectors), args.out))


if __name__ == "__main__":
    main()
