"""Tiny result printer for the check scripts: 'ok - desc' or
'not ok - desc' plus '# detail' lines; the .t files number them."""

import shlex
import sys
import traceback


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, sep, v = line.strip().partition("=")
            if sep:
                parts = shlex.split(v)
                env[k] = parts[0] if parts else ""
    return env


class Tap:
    def __init__(self):
        self.failed = 0

    def check(self, desc, cond, detail=None):
        if cond:
            print("ok - %s" % desc, flush=True)
            return True
        self.failed += 1
        print("not ok - %s" % desc, flush=True)
        if detail is not None:
            for line in str(detail).splitlines()[:20]:
                print("# %s" % line[:300], flush=True)
        return False

    def run(self, desc, fn):
        """check() on a function that raises on failure."""
        try:
            res = fn()
        except Exception:
            return self.check(desc, False, traceback.format_exc())
        return self.check(desc, res is not False, res)

    def done(self):
        return 1 if self.failed else 0


def main_guard(fn):
    try:
        return fn()
    except Exception:
        print("not ok - check script crashed", flush=True)
        traceback.print_exc(file=sys.stdout)
        return 1


def startup_script(env, prefix="qtest:cpu:t3.micro", queue="q-cpu",
                   key=None, secret=None, drop=None, api=None):
    """A minimal startup script that follows the contract the simulated
    agent reads (what qscale's generated script must contain).  drop: a
    substring; lines containing it are left out, to make broken ones."""

    def sq(v):
        return "'" + v.replace("'", "'\\''") + "'"

    def hq(v):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "#!/bin/bash",
        "set -eu",
        "worker_id_prefix=" + sq(prefix),
        "queue=" + sq(queue),
        "mkdir -p /root",
        "cat > /root/clearml.conf <<'CLEARML_CONF'",
        "api {",
        "  api_server: " + hq(api or env["QSCALE_SIM_CLEARML_URL"]),
        "  credentials {",
        "    access_key: " + hq(key or env["CLEARML_API_ACCESS_KEY"]),
        "    secret_key: " + hq(secret or env["CLEARML_API_SECRET_KEY"]),
        "  }",
        "}",
        "CLEARML_CONF",
        'token=$(curl -sX PUT http://169.254.169.254/latest/api/token '
        '-H "X-aws-ec2-metadata-token-ttl-seconds: 300")',
        'instance_id=$(curl -s -H "X-aws-ec2-metadata-token: $token" '
        'http://169.254.169.254/latest/meta-data/instance-id)',
        'export CLEARML_WORKER_ID="${worker_id_prefix}:${instance_id}"',
        'clearml-agent daemon --queue "$queue" || true',
        "shutdown -h now",
    ]
    if drop:
        lines = [ln for ln in lines if drop not in ln]
    return "\n".join(lines) + "\n"


def ec2_client(env, secret=None, retries=1):
    import boto3
    from botocore.config import Config
    return boto3.client(
        "ec2", endpoint_url=env["QSCALE_SIM_EC2_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or env["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"total_max_attempts": retries,
                               "mode": "standard"}))


def admin(env, method, path, body=None):
    import json
    import urllib.error
    import urllib.request
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        env["QSCALE_SIM_ADMIN_URL"] + "/" + path, data=data, method=method,
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def clearml(env, endpoint, body=None):
    import base64
    import json
    import urllib.error
    import urllib.request
    cred = "%s:%s" % (env["CLEARML_API_ACCESS_KEY"],
                      env["CLEARML_API_SECRET_KEY"])
    req = urllib.request.Request(
        env["QSCALE_SIM_CLEARML_URL"] + "/" + endpoint,
        data=json.dumps(body or {}).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 "Authorization": "Basic " +
                 base64.b64encode(cred.encode()).decode()})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)["data"]
    except urllib.error.HTTPError as e:
        raise AssertionError("%s: %s" % (endpoint, e.read()[:300]))


def wait_until(fn, timeout, step=0.1):
    import time
    end = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() >= end:
            return v
        time.sleep(step)


class Recorder:
    """A recording proxy in front of the ClearML server: point a startup
    script's api_server at .url and every call the agent makes is kept in
    .calls as {time, endpoint, headers (lower-case names), body, status},
    answered by the fake server behind it."""

    def __init__(self, upstream):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        rec = self
        self.upstream = upstream.rstrip("/")
        self.calls = []
        self.lock = threading.Lock()

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                rec.forward(self)

            do_GET = do_POST

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def forward(self, h):
        import json
        import time
        import urllib.error
        import urllib.request
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        hdrs = {k.lower(): v for k, v in h.headers.items()
                if k.lower() not in ("host", "content-length", "connection")}
        t0 = time.time()
        req = urllib.request.Request(self.upstream + h.path, data=raw,
                                     method=h.command, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        try:
            doc = json.loads(raw or b"{}")
        except ValueError:
            doc = None
        with self.lock:
            self.calls.append({"time": t0, "endpoint": h.path.strip("/")
                               .split("/")[-1], "headers": hdrs,
                               "body": doc, "status": status})
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def seq(self, since=0.0):
        with self.lock:
            return [c for c in self.calls if c["time"] >= since]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def oss_script(env, worker_prefix="dyn:aws4:t3.micro", queue="q-oss",
               key=None, secret=None, conf_key=None, conf_secret=None):
    """A startup script in the form of ClearML's own AWS autoscaler: the
    agent installed with pip, clearml.conf appended to through an
    unquoted here-document, the server and credentials exported as
    CLEARML_API_* variables, the instance id from IMDSv1, and
    `python -m clearml_agent --config-file ~/clearml.conf daemon
    --queue '...'`."""
    conf = ['agent.git_user="bot"', 'agent.git_pass="pw"']
    if conf_key:
        conf += ["api {", "  credentials {",
                 '    access_key: "%s"' % conf_key,
                 '    secret_key: "%s"' % conf_secret, "  }", "}"]
    lines = ["#!/bin/bash", "", "set -x", "", "apt-get update",
             "python3 -m pip install virtualenv",
             "python3 -m virtualenv agent_venv",
             "source agent_venv/bin/activate",
             "python -m pip install clearml-agent",
             "cat << EOF >> ~/clearml.conf"] + conf + [
             "EOF",
             "export CLEARML_API_HOST=" + env["QSCALE_SIM_CLEARML_URL"],
             "export CLEARML_WEB_HOST=" + env["QSCALE_SIM_CLEARML_URL"],
             "export CLEARML_FILES_HOST=" + env["QSCALE_SIM_CLEARML_URL"],
             "export DYNAMIC_INSTANCE_ID=$(curl "
             "http://169.254.169.254/latest/meta-data/instance-id)",
             "export CLEARML_WORKER_ID=%s:$DYNAMIC_INSTANCE_ID"
             % worker_prefix]
    if key is not False:
        lines += ["export CLEARML_API_ACCESS_KEY='%s'" % (
                      key or env["CLEARML_API_ACCESS_KEY"]),
                  "export CLEARML_API_SECRET_KEY='%s'" % (
                      secret or env["CLEARML_API_SECRET_KEY"])]
    lines += ["export CLEARML_AUTH_TOKEN=''", "source ~/.bashrc",
              "python -m clearml_agent --config-file ~/clearml.conf daemon "
              "--queue '%s' --docker 'nvidia/cuda'" % queue, "",
              "if [[ $? -ne 0 ]]", "then", "  exit 1", "fi", "", "shutdown"]
    return "\n".join(lines) + "\n"
