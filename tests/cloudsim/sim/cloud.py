"""moto_server with signature checking, its bootstrap (IAM user and keys,
instance profile, VPC, subnets, security group), the EC2 front and the
agents."""

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time

from .agents import Agents
from .ec2front import EC2Handler, EC2Sim
from .server import Server, serve
from .util import http_probe, port_free

REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b")
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": ["ec2:*", "iam:PassRole"],
    "Resource": "*"}]})
ASSUME = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})
# IAM calls made before signatures are checked (moto counts actions)
FREE_ACTIONS = 6
USER = "qscale-sim"
PROFILE = "qscale-sim-agent"


def _die_with_parent():
    """In the child, before exec: be killed when cloudsim dies, however it
    dies, so moto is never left behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setpgid(0, 0)


class Moto:
    def __init__(self, port, logfile):
        env = dict(os.environ)
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(FREE_ACTIONS)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                  "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(k, None)
        self.port = port
        self.out = open(logfile, "ab") if logfile else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
             str(port)], env=env, stdin=subprocess.DEVNULL, stdout=self.out,
            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    def wait_ready(self, timeout, stop):
        """'ready', 'exited' (moto died: its port taken, say) or
        'timeout'."""
        deadline = time.time() + timeout
        while time.time() < deadline and not stop.is_set():
            if self.proc.poll() is not None:
                return "exited"
            if http_probe(self.port, "/moto-api/data.json"):
                return "ready"
            time.sleep(0.05)
        return "timeout"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.out is not subprocess.DEVNULL:
            self.out.close()


def client(service, url, key, secret):
    import boto3
    from botocore.config import Config
    return boto3.client(service, endpoint_url=url, region_name=REGION,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 2},
                                      connect_timeout=5, read_timeout=60))


def bootstrap(url):
    """Everything qscale needs in moto; returns a dict of the results."""
    iam = client("iam", url, "bootstrap", "bootstrap")
    iam.create_user(UserName=USER)                                    # 1
    iam.put_user_policy(UserName=USER, PolicyName="ec2",              # 2
                        PolicyDocument=POLICY)
    k = iam.create_access_key(UserName=USER)["AccessKey"]             # 3
    iam.create_role(RoleName=PROFILE, AssumeRolePolicyDocument=ASSUME)  # 4
    iam.create_instance_profile(InstanceProfileName=PROFILE)          # 5
    iam.add_role_to_instance_profile(InstanceProfileName=PROFILE,     # 6
                                     RoleName=PROFILE)
    key, secret = k["AccessKeyId"], k["SecretAccessKey"]
    ec2 = client("ec2", url, key, secret)
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnets = []
    for n, az in enumerate(ZONES, 1):
        s = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.%d.0/24" % n,
                              AvailabilityZone=az)["Subnet"]
        subnets.append((s["SubnetId"], az))
    sg = ec2.create_security_group(GroupName="qscale-sim-agents",
                                   Description="cloudsim agents",
                                   VpcId=vpc)["GroupId"]
    try:
        ami = ec2.register_image(Name="qscale-sim-agent",
                                 Description="cloudsim agent image")["ImageId"]
    except Exception:
        ami = "ami-1e749f67"
    return {"key": key, "secret": secret, "ec2": ec2, "vpc": vpc,
            "subnets": subnets, "sg": sg, "ami": ami}


def port_answers(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


def start_moto(port, logfile, stop, log, tries=3):
    """moto_server on the port, ready; None if it would not start.  A moto
    that exits at once (its port taken meanwhile by another process's
    connection) is started again while the port is free."""
    for attempt in range(1, tries + 1):
        moto = Moto(port, logfile)
        how = moto.wait_ready(30, stop)
        if how == "ready":
            return moto
        moto.stop()
        log("moto-retry", port=port, attempt=attempt, how=how)
        if how != "exited" or stop.is_set():
            return None
        for _ in range(20):
            if port_free(port):
                break
            time.sleep(0.1)
    return None


def start_cloud(a, sim, servers, stop):
    """Start moto, bootstrap it, start the front and the agents.  Returns
    (moto, env additions) or (None, None) after printing why."""
    try:
        # bound now, served once the bootstrap is done: no other process
        # can take the port meanwhile
        front = Server(("127.0.0.1", a.port_base + 1), EC2Handler)
    except OSError as e:
        print("cloudsim: cannot listen on 127.0.0.1:%d: %s" % (
            a.port_base + 1, e.strerror or e), file=sys.stderr)
        return None, None
    moto_port = a.port_base + 2
    moto_log = (a.log + ".moto") if a.log else None
    moto = start_moto(moto_port, moto_log, stop, sim.log)
    if moto is None:
        front.server_close()
        print("cloudsim: moto_server did not start on 127.0.0.1:%d%s" % (
            moto_port, " (see %s)" % moto_log if moto_log else ""),
            file=sys.stderr)
        return None, None
    moto_url = "http://127.0.0.1:%d" % moto_port
    try:
        b = bootstrap(moto_url)
    except Exception as e:
        moto.stop()
        front.server_close()
        print("cloudsim: bootstrap in moto failed: %s" % e, file=sys.stderr)
        return None, None
    ec2 = EC2Sim(a, sim.log, "127.0.0.1:%d" % moto_port,
                 (b["key"], b["secret"]), b["subnets"])
    ec2.moto = b["ec2"]
    agents = Agents(ec2, a, sim.log)
    ec2.agents = agents
    sim.ec2 = ec2
    sim.agents = agents
    servers.append(serve(front, ec2, "ec2"))
    env = {
        "QSCALE_SIM_EC2_URL": "http://127.0.0.1:%d" % (a.port_base + 1),
        "AWS_ACCESS_KEY_ID": b["key"],
        "AWS_SECRET_ACCESS_KEY": b["secret"],
        "AWS_REGION": REGION,
        "QSCALE_SIM_SUBNETS": " ".join(s for s, _ in b["subnets"]),
        "QSCALE_SIM_SECURITY_GROUP": b["sg"],
        "QSCALE_SIM_AMI": b["ami"],
        "QSCALE_SIM_INSTANCE_PROFILE": PROFILE,
        "QSCALE_SIM_MOTO_URL": moto_url,
    }
    return moto, env
