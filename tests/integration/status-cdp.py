#!/usr/bin/env python3
"""status-cdp.py: the dashboard in headless Chromium, driven over the
DevTools protocol on a pipe (--remote-debugging-pipe: commands on fd 3,
answers on fd 4, each a JSON text ended by a NUL byte).

  status-cdp.py URL SCREENSHOT RESOURCES TRIGGER_CMD EXPECT
      loads URL; waits until the three plots have points, the table has
      RESOURCES rows and the console has lines; runs TRIGGER_CMD (a shell
      command that makes qscaled log a line), waits until the page shows a
      line matching EXPECT without being reloaded; saves a PNG
      screenshot; prints one JSON object with what it saw.

Only the standard library.  Exits 2 when Chromium cannot be driven.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

PROBE = """JSON.stringify((() => {
  const d = (id) => document.getElementById(id);
  const plots = ['instances', 'idle', 'queue'];
  return {
    points: plots.map((k) => Number(d('plot-' + k).dataset.points)),
    series: plots.map((k) => Number(d('plot-' + k).dataset.series)),
    max: plots.map((k) => Number(d('plot-' + k).dataset.max)),
    rows: document.querySelectorAll('#resources tbody tr').length,
    names: Array.from(document.querySelectorAll(
        '#resources tbody tr td:first-child')).map(
        (td) => td.firstChild.textContent),
    log_count: Number(d('log').dataset.count),
    log_updates: Number(d('log').dataset.updates),
    log_tail: d('log').textContent.slice(-30000),
    page_text: document.body.textContent,
    disconnected: !d('conn').hidden,
    title: document.title,
    in_use: d('in-use').textContent,
  };
})())"""


class Browser:
    def __init__(self, profile):
        cmd_r, self.cmd_w = os.pipe()
        self.res_r, res_w = os.pipe()

        def fds():
            a, b = os.dup(cmd_r), os.dup(res_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise RuntimeError("chromium is not installed")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update",
             "--no-first-run", "--disable-sync", "--disable-extensions",
             "--user-data-dir=" + profile, "--remote-debugging-pipe",
             "--window-size=1400,1300", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(profile, "chromium.err"), "w"),
            close_fds=False, preexec_fn=fds)
        os.close(cmd_r)
        os.close(res_w)
        self.buf = b""
        self.next_id = 0
        self.session = None
        self.console = []

    def send(self, method, params=None, session=True, timeout=20):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method,
               "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + timeout
        while True:
            m = self.read(end)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.event(m)

    def read(self, end):
        import select
        while b"\0" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            r, _, _ = select.select([self.res_r], [], [], left)
            if r:
                chunk = os.read(self.res_r, 65536)
                if not chunk:
                    raise RuntimeError("chromium went away")
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def event(self, m):
        if m.get("method") == "Runtime.exceptionThrown":
            d = m["params"]["exceptionDetails"]
            self.console.append("exception: " + d.get("text", "") + " " +
                                str(d.get("exception", {}).get(
                                    "description", "")))
        elif m.get("method") == "Runtime.consoleAPICalled":
            p = m["params"]
            if p.get("type") in ("error", "warning"):
                self.console.append(p["type"] + ": " + " ".join(
                    str(a.get("value", a.get("description", "")))
                    for a in p.get("args", [])))

    def open(self, url):
        t = self.send("Target.createTarget", {"url": "about:blank"},
                      session=False)
        s = self.send("Target.attachToTarget",
                      {"targetId": t["targetId"], "flatten": True},
                      session=False)
        self.session = s["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1400, "height": 1300, "deviceScaleFactor": 1,
                   "mobile": False})
        self.send("Page.navigate", {"url": url})

    def probe(self):
        r = self.send("Runtime.evaluate",
                      {"expression": PROBE, "returnByValue": True})
        if "exceptionDetails" in r:
            return None
        return json.loads(r["result"]["value"])

    def wait(self, cond, timeout):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            last = self.probe()
            if last is not None and cond(last):
                return True, last
            time.sleep(0.3)
        return False, last

    def screenshot(self, path):
        r = self.send("Page.captureScreenshot", {"format": "png"})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    url, shot, nres, trigger, expect = sys.argv[1:]
    nres = int(nres)
    profile = tempfile.mkdtemp(prefix="qscale-chromium.")
    out = {"url": url}
    try:
        b = Browser(profile)
    except Exception as e:
        print(json.dumps({"error": str(e)}))
        sys.exit(2)
    try:
        b.open(url)
        ok, seen = b.wait(lambda s: min(s["points"]) > 0 and
                          s["rows"] == nres and s["log_count"] > 0, 30)
        out["loaded"] = ok
        out["first"] = seen
        before = seen["log_updates"] if seen else 0
        subprocess.run(trigger, shell=True, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rx = re.compile(expect)
        ok, seen = b.wait(lambda s: s["log_updates"] > before and
                          rx.search(s["log_tail"]) is not None, 15)
        out["log_updated"] = ok
        out["updates_before"] = before
        out["last"] = seen
        b.screenshot(shot)
        out["screenshot"] = shot
    except Exception as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        out["console"] = b.console
        b.close()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
