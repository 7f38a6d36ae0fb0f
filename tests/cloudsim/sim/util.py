"""Small helpers shared by the parts of cloudsim: time formats, ids, the
event log, and reading a request body."""

import http.client
import random
import socket
import threading
import time
import uuid
from datetime import datetime, timezone


def new_id():
    """A ClearML id: 32 lowercase hex characters."""
    return uuid.uuid4().hex


def iso(t):
    """Epoch seconds as ClearML writes datetimes: millisecond precision,
    '+00:00', and no fraction at all when it is zero."""
    if t is None:
        return None
    ms = int(round(t * 1000))
    dt = datetime.fromtimestamp(ms // 1000, timezone.utc)
    return dt.replace(microsecond=(ms % 1000) * 1000).isoformat()


def iso_z(t):
    """Epoch seconds as EC2 writes them: 2025-01-13T18:32:13.000Z."""
    dt = datetime.fromtimestamp(t, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def parse_iso_z(s):
    """EC2's launchTime back to epoch seconds (None if unreadable)."""
    try:
        s = s.strip().replace("Z", "+00:00")
        return datetime.fromisoformat(s).timestamp()
    except (ValueError, AttributeError):
        return None


class EventLog:
    """One line per notable event: '<time> <event> key=value ...'.  Thread
    safe; a no-op without a file."""

    def __init__(self, path=None):
        self._lock = threading.Lock()
        self._f = open(path, "a", buffering=1) if path else None

    def __call__(self, event, **kv):
        if self._f is None:
            return
        parts = [iso_z(time.time()), event]
        for k, v in kv.items():
            if v is None:
                continue
            v = str(v).replace("\n", "\\n")
            if v == "" or any(c in v for c in " \"="):
                v = '"' + v.replace('"', '\\"') + '"'
            parts.append("%s=%s" % (k, v))
        with self._lock:
            try:
                self._f.write(" ".join(parts) + "\n")
            except (OSError, ValueError):
                pass

    def close(self):
        with self._lock:
            if self._f is not None:
                self._f.close()
                self._f = None


def read_body(handler, limit=64 * 1024 * 1024):
    """The request body of a BaseHTTPRequestHandler, with Content-Length
    or chunked transfer encoding.  Raises ValueError when malformed."""
    te = handler.headers.get("Transfer-Encoding", "")
    if "chunked" in te.lower():
        out = bytearray()
        while True:
            line = handler.rfile.readline(1024)
            if not line:
                raise ValueError("truncated chunked body")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += handler.rfile.read(size)
            handler.rfile.readline(1024)
            if len(out) > limit:
                raise ValueError("body too large")
    n = handler.headers.get("Content-Length")
    if not n:
        return b""
    n = int(n)
    if n < 0 or n > limit:
        raise ValueError("bad Content-Length")
    return handler.rfile.read(n)


def percentile(values, p):
    """Nearest-rank percentile of a list (None when empty)."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


# ------------------------------------------------------------------ ports

EPHEMERAL_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
PORT_LOW = 20000


def ephemeral_range(path=EPHEMERAL_FILE):
    """The kernel's range of ephemeral ports (lo, hi): any outgoing
    connection on the machine may take one of these as its local port."""
    try:
        with open(path) as f:
            lo, hi = (int(x) for x in f.read().split()[:2])
        if 0 < lo <= hi <= 65535:
            return lo, hi
    except (OSError, ValueError):
        pass
    return 32768, 60999         # Linux's default


def in_ephemeral(port, rng=None):
    lo, hi = rng or ephemeral_range()
    return lo <= port <= hi


def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def port_bases(n, rng=None):
    """Every P with P .. P+n-1 outside the ephemeral range (and at or
    above PORT_LOW), in random order.  Empty when the range leaves no
    room."""
    lo, hi = rng or ephemeral_range()
    cands = [p for p in range(PORT_LOW, 65536 - n + 1)
             if p + n - 1 < lo or p > hi]
    random.shuffle(cands)
    return cands


def free_port_base(n=4, rng=None, tries=200):
    """A port P with P .. P+n-1 free on 127.0.0.1 and none of them in
    the kernel's ephemeral range, so that no outgoing connection (nor a
    connection of a readiness probe to itself) can take one before the
    servers bind them.  None when there is none."""
    for p in port_bases(n, rng)[:tries]:
        if all(port_free(q) for q in range(p, p + n)):
            return p
    return None


def http_probe(port, path, timeout=1.0):
    """True when http://127.0.0.1:port/path answers 200.  A connection
    to a port nothing listens on yet can, when the port is in the
    ephemeral range, be given that same port as its local end and so
    connect to itself (TCP simultaneous open): it then reads its own
    request back, which is not an answer.  That, a refused or reset
    connection and any malformed answer all count as not ready."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout)
    except OSError:
        return False
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if s.getsockname() == s.getpeername():
            return False
        conn.sock = s
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status == 200
    except (OSError, http.client.HTTPException, ValueError):
        return False
    finally:
        conn.close()
        s.close()
