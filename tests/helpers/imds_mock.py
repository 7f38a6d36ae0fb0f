#!/usr/bin/env python3
"""A strict IMDSv2 for the credentials tests.

    imds_mock.py PORT [options]
      --lifetime S     credentials expire S seconds after they are issued (4)
      --role NAME      the role (qscale-test-role); --no-role: none attached
      --token-ttl-cap S  tokens die after S seconds whatever was asked
      --sts URL        get the keys from STS AssumeRole at URL (moto), with
                       the keys of the environment; otherwise made up
      --role-arn ARN   the role to assume (with --sts)
      --log FILE       one JSON line per credentials handed out

As IMDSv2 does: a PUT to /latest/api/token needs
X-aws-ec2-metadata-token-ttl-seconds (1-21600), else 400; a GET there is
405; every other path needs a live X-aws-ec2-metadata-token, else 401.
New keys are handed out once the current ones have less than half their
lifetime left, as EC2 makes new ones available before the old expire.
"""
import argparse
import datetime
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

opts = None
lock = threading.Lock()
tokens = {}             # token -> monotonic expiry
current = {}            # the credentials handed out now
issued = 0


def iso(t):
    return datetime.datetime.fromtimestamp(
        t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_credentials():
    global issued
    issued += 1
    if opts.sts:
        import boto3
        sts = boto3.client("sts", endpoint_url=opts.sts,
                           region_name="us-east-1")
        c = sts.assume_role(RoleArn=opts.role_arn,
                            RoleSessionName=f"imds-{issued}")["Credentials"]
        ak, sk, tok = c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]
    else:
        ak = f"ASIAMOCK{issued:012d}"
        sk = secrets.token_urlsafe(30)
        tok = "mock-token-" + secrets.token_urlsafe(40)
    now = time.time()
    exp = int(now + opts.lifetime)     # Expiration has whole seconds
    cred = {"Code": "Success", "LastUpdated": iso(now), "Type": "AWS-HMAC",
            "AccessKeyId": ak, "SecretAccessKey": sk, "Token": tok,
            "Expiration": iso(exp), "_exp": exp}
    if opts.log:
        with open(opts.log, "a") as f:
            f.write(json.dumps({"t": now, "AccessKeyId": ak,
                                "SecretAccessKey": sk, "Token": tok,
                                "Expiration": cred["Expiration"]}) + "\n")
    return cred


def credentials():
    global current
    with lock:
        if not current or current["_exp"] - time.time() < opts.lifetime / 2:
            current = new_credentials()
        return {k: v for k, v in current.items() if not k.startswith("_")}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="text/plain"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        if self.path != "/latest/api/token":
            return self.reply(405, "")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        try:
            ttl = int(ttl)
        except (TypeError, ValueError):
            return self.reply(400, "missing or bad TTL header")
        if not 1 <= ttl <= 21600:
            return self.reply(400, "TTL out of range")
        if opts.token_ttl_cap:
            ttl = min(ttl, opts.token_ttl_cap)
        tok = secrets.token_urlsafe(32)
        with lock:
            tokens[tok] = time.monotonic() + ttl
        if opts.log:
            with open(opts.log, "a") as f:
                f.write(json.dumps({"t": time.time(), "event": "token",
                                    "ttl": ttl}) + "\n")
        self.send_response(200)
        self.send_header("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))
        self.send_header("Content-Length", str(len(tok)))
        self.end_headers()
        self.wfile.write(tok.encode())

    def do_GET(self):
        if self.path == "/latest/api/token":
            return self.reply(405, "")
        tok = self.headers.get("X-aws-ec2-metadata-token", "")
        with lock:
            live = tokens.get(tok, 0) > time.monotonic()
        if not live:
            return self.reply(401, "")
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            if opts.no_role:
                return self.reply(404, "")
            return self.reply(200, opts.role)
        if self.path == base + opts.role and not opts.no_role:
            return self.reply(200, json.dumps(credentials()),
                              "application/json")
        return self.reply(404, "")


def main():
    global opts
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--lifetime", type=float, default=4)
    ap.add_argument("--role", default="qscale-test-role")
    ap.add_argument("--no-role", action="store_true")
    ap.add_argument("--token-ttl-cap", type=int, default=0)
    ap.add_argument("--sts")
    ap.add_argument("--role-arn",
                    default="arn:aws:iam::123456789012:role/qscale-test-role")
    ap.add_argument("--log")
    opts = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", opts.port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
