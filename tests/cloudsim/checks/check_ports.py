#!/usr/bin/env python3
"""Checks of how cloudsim picks and probes its ports.  A port in the
kernel's ephemeral range can be taken, before cloudsim binds it, by any
outgoing connection on the machine, including a readiness probe that
connects to a port nothing listens on yet and is given that same port
as its own end (TCP simultaneous open: it connects to itself and reads
its own request back).  Usage: check_ports.py"""

import http.client
import os
import socket
import subprocess
import sys
import threading
import time

HERE = __file__.rsplit("/", 2)[0]
sys.path.insert(0, HERE)
from checks.tap import Tap  # noqa: E402
from sim import util  # noqa: E402
from sim.cloud import start_moto  # noqa: E402
from sim.util import EventLog  # noqa: E402

t = Tap()
LO, HI = util.ephemeral_range()


def self_connected(port):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.connect(("127.0.0.1", port))
    return s


# ------------------------------------------------------------ the hazard
port = util.free_port_base(1)
s = self_connected(port)
t.check("a socket can connect to itself (what a probe of a port nothing "
        "listens on may get when the port is ephemeral)",
        s.getsockname() == s.getpeername(), (s.getsockname(),))
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
conn.sock = s
try:
    conn.request("GET", "/moto-api/data.json")
    conn.getresponse()
    what = "an answer"
except http.client.HTTPException as e:
    what = e
except OSError as e:
    what = e
conn.close()
t.check("... and then reads its own request back: http.client raises "
        "BadStatusLine, which is not an OSError",
        isinstance(what, http.client.BadStatusLine) and
        not isinstance(what, OSError), repr(what))

real = socket.create_connection
try:
    socket.create_connection = lambda addr, timeout=None: \
        self_connected(addr[1])
    try:
        res = util.http_probe(util.free_port_base(1), "/x")
    except Exception as e:
        res = e
finally:
    socket.create_connection = real
t.check("cloudsim's readiness probe takes a connection to itself for "
        "'not ready', without raising", res is False, repr(res))
t.check("... and a refused connection too",
        util.http_probe(util.free_port_base(1), "/x") is False)

# --------------------------------------------------------------- picking
with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
    kernel = tuple(int(x) for x in f.read().split())
t.check("the ephemeral range is read from the kernel",
        (LO, HI) == kernel, ((LO, HI), kernel))
t.check("with /proc unreadable, Linux's default range is assumed",
        util.ephemeral_range("/nonexistent") == (32768, 60999))
bases = util.port_bases(4, (30000, 60000))
t.check("candidate bases keep all 4 ports outside the range",
        bases and all(p + 3 < 30000 or p > 60000 for p in bases) and
        min(bases) >= util.PORT_LOW, (min(bases), max(bases)))
t.check("no candidate when the range covers every port",
        util.port_bases(4, (1024, 65535)) == [])
picks = [util.free_port_base(4) for _ in range(20)]
t.check("free_port_base: 4 free ports, none ephemeral",
        all(p is not None and not any(util.in_ephemeral(q) for q in
                                      range(p, p + 4)) for p in picks),
        picks)
out = subprocess.run([os.path.join(HERE, "cloudsim"), "--free-port-base"],
                     capture_output=True, text=True, timeout=30)
p = int(out.stdout) if out.stdout.strip().isdigit() else None
t.check("cloudsim --free-port-base prints such a base",
        out.returncode == 0 and p is not None and
        not any(util.in_ephemeral(q) for q in range(p, p + 4)),
        out.stdout + out.stderr)

# ------------------------------------------------------------ moto retry
mport = util.free_port_base(1)
hold = socket.socket()
hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
hold.bind(("127.0.0.1", mport))
hold.listen(1)
logf = "/tmp/check_ports.%d.log" % os.getpid()
log = EventLog(logf)


def release():
    """The port is freed once the first moto gave up on it."""
    end = time.time() + 60
    while time.time() < end:
        with open(logf) as f:
            if "moto-retry" in f.read():
                break
        time.sleep(0.05)
    hold.close()


threading.Thread(target=release, daemon=True).start()
t0 = time.time()
moto = start_moto(mport, None, threading.Event(), log)
try:
    with open(logf) as f:
        lines = f.read()
    t.check("moto exits when its port is taken; cloudsim starts it again "
            "once the port is free", moto is not None and
            "moto-retry" in lines and "how=exited" in lines and
            util.http_probe(mport, "/moto-api/data.json"),
            (moto, lines, time.time() - t0))
finally:
    if moto is not None:
        moto.stop()
    log.close()
    os.unlink(logf)
sys.exit(t.done())
