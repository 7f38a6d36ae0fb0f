#!/usr/bin/env python3
"""A small EC2 Query API stand-in that injects faults, for the client's tests.

    ec2_fault_server.py PORT [PORTFILE]

Without faults it answers every action with a plausible success:
DescribeInstances an empty page, RunInstances MaxCount instances that echo
the ClientToken, TerminateInstances every id (ids starting "i-unknown" are
refused the way EC2 refuses unknown ids), CreateTags, GetConsoleOutput.

Control, on the same port:
  POST /_ctl/faults  JSON list, queued in order; each one answers the next
                     request of its action ("*": any) `times` times (1):
      {"action": "RunInstances", "status": 500,
       "code": "InsufficientInstanceCapacity", "message": "...", "times": 2}
      {"kind": "html", "status": 502}         an HTML error page
      {"kind": "empty", "status": 503}        no body
      {"kind": "sleep", "seconds": 2}         then the normal answer
      {"kind": "big", "bytes": 300000}        a 200 with a huge body
      {"kind": "reset"}                       close without answering
  GET  /_ctl/log     JSON list of every request: time (monotonic and wall
                     clock s), action, params, key id, signed headers,
                     token, client port
  POST /_ctl/reset   forget faults and log
"""
import json
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NS = "http://ec2.amazonaws.com/doc/2016-11-15"
lock = threading.Lock()
faults = []
log = []


def xml_error(code, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f'<Code>{code}</Code><Message>{message}</Message></Error></Errors>'
            '<RequestID>fault-req-1</RequestID></Response>')


def instance_xml(iid, token, params):
    tags = "".join(
        f"<item><key>{params[k]}</key><value>"
        f"{params.get(k[:-3] + 'Value', '')}</value></item>"
        for k in sorted(params)
        if k.startswith("TagSpecification.1.Tag.") and k.endswith(".Key"))
    spot = ("<instanceLifecycle>spot</instanceLifecycle>"
            if params.get("InstanceMarketOptions.MarketType") == "spot"
            else "")
    return (f"<item><instanceId>{iid}</instanceId>"
            f"<imageId>{params.get('ImageId', '')}</imageId>"
            "<instanceState><code>0</code><name>pending</name></instanceState>"
            f"<instanceType>{params.get('InstanceType', '')}</instanceType>"
            "<launchTime>2026-01-02T03:04:05.000Z</launchTime>"
            "<placement><availabilityZone>us-east-1a</availabilityZone>"
            f"</placement><subnetId>{params.get('SubnetId', '')}</subnetId>"
            f"<clientToken>{token}</clientToken>{spot}"
            f"<tagSet>{tags}</tagSet></item>")


def success(action, params):
    if action == "DescribeInstances":
        return 200, (f'<DescribeInstancesResponse xmlns="{NS}"><requestId>r'
                     '</requestId><reservationSet/></DescribeInstancesResponse>')
    if action == "RunInstances":
        n = int(params.get("MaxCount", "1"))
        token = params.get("ClientToken", "")
        items = "".join(instance_xml(f"i-fault{i:012d}", token, params)
                        for i in range(n))
        return 200, (f'<RunInstancesResponse xmlns="{NS}"><reservationId>'
                     f'r-1</reservationId><instancesSet>{items}</instancesSet>'
                     '</RunInstancesResponse>')
    if action == "TerminateInstances":
        ids = [params[k] for k in sorted(params, key=_num)
               if k.startswith("InstanceId.")]
        unknown = [i for i in ids if i.startswith("i-unknown")]
        if unknown:
            if len(unknown) == 1:
                msg = f"The instance ID '{unknown[0]}' does not exist"
            else:
                msg = f"The instance IDs '{', '.join(unknown)}' do not exist"
            return 400, xml_error("InvalidInstanceID.NotFound", msg)
        items = "".join(
            f"<item><instanceId>{i}</instanceId><currentState><code>32</code>"
            "<name>shutting-down</name></currentState><previousState><code>16"
            "</code><name>running</name></previousState></item>" for i in ids)
        return 200, (f'<TerminateInstancesResponse xmlns="{NS}"><instancesSet>'
                     f'{items}</instancesSet></TerminateInstancesResponse>')
    if action == "CreateTags":
        return 200, f'<CreateTagsResponse xmlns="{NS}"><return>true</return></CreateTagsResponse>'
    if action == "GetConsoleOutput":
        import base64
        out = base64.b64encode(
            f"console of {params.get('InstanceId')}\n".encode()).decode()
        return 200, (f'<GetConsoleOutputResponse xmlns="{NS}"><output>{out}'
                     '</output></GetConsoleOutputResponse>')
    return 400, xml_error("InvalidAction", f"unknown action {action}")


def _num(k):
    try:
        return int(k.split(".")[1])
    except (IndexError, ValueError):
        return 0


def take_fault(action):
    with lock:
        for f in faults:
            if f.get("action", "*") in ("*", action) and f.get("times", 1) > 0:
                f["times"] = f.get("times", 1) - 1
                if f["times"] == 0:
                    faults.remove(f)
                return f
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="text/xml"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-requestid", f"fault-{len(log)}")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_ctl/log":
            with lock:
                self.reply(200, json.dumps(log), "application/json")
        else:
            self.reply(404, "no")

    def read_body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n).decode()

    def do_POST(self):
        body = self.read_body()
        if self.path == "/_ctl/faults":
            with lock:
                faults.extend(json.loads(body))
            return self.reply(200, "{}", "application/json")
        if self.path == "/_ctl/reset":
            with lock:
                faults.clear()
                log.clear()
            return self.reply(200, "{}", "application/json")
        params = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        action = params.get("Action", "")
        auth = self.headers.get("Authorization", "")
        entry = {
            "t": time.monotonic(), "wall": time.time(), "action": action,
            "params": params,
            "key_id": auth.split("Credential=")[1].split("/")[0]
            if "Credential=" in auth else "",
            "signed_headers": auth.split("SignedHeaders=")[1].split(",")[0]
            if "SignedHeaders=" in auth else "",
            "token": self.headers.get("X-Amz-Security-Token", ""),
            "content_type": self.headers.get("Content-Type", ""),
            "port": self.client_address[1],
        }
        with lock:
            log.append(entry)
        f = take_fault(action)
        kind = f.get("kind", "error") if f else None
        if kind == "sleep":
            time.sleep(float(f.get("seconds", 1)))
            f = None
        if f is None:
            return self.reply(*success(action, params))
        status = int(f.get("status", 500))
        if kind == "reset":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if kind == "html":
            return self.reply(status, "<!doctype html><html><title>"
                              f"{status} Bad Gateway</title><h1>oops</h1></html>",
                              "text/html")
        if kind == "empty":
            return self.reply(status, "")
        if kind == "big":
            pad = "x" * int(f.get("bytes", 100000))
            return self.reply(200, f'<DescribeInstancesResponse xmlns="{NS}">'
                              f'<junk>{pad}</junk></DescribeInstancesResponse>')
        return self.reply(status, xml_error(f.get("code", "InternalError"),
                                            f.get("message", "injected")))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # clients that hang up (a body cut off, a timeout) are expected
        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)


def main():
    port = int(sys.argv[1])
    srv = Server(("127.0.0.1", port), Handler)
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            f.write(str(srv.server_address[1]))
    srv.serve_forever()


if __name__ == "__main__":
    main()
