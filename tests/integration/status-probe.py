#!/usr/bin/env python3
"""status-probe.py: bogus clients for the status server's tests.

  status-probe.py raw PORT TEXT        send TEXT (\\r\\n escapes), print the
                                       status line of the answer or "closed"
  status-probe.py bigheader PORT SIZE  a GET with one header of SIZE bytes
  status-probe.py slow PORT            half a request, then silence: print
                                       how many seconds until the server
                                       hangs up
  status-probe.py hold PORT N SECONDS READY_FILE
                                       open N idle connections, write how
                                       many connected to READY_FILE, keep
                                       them for SECONDS (or until each one is
                                       closed by the server), print how many
                                       the server closed by itself
  status-probe.py loris PORT N INTERVAL SECONDS READY_FILE [ADDRS]
                                       slow loris: keep N connections
                                       each sending a request one byte
                                       every INTERVAL seconds, opening a
                                       new one for each the server closes;
                                       after SECONDS print how many it
                                       closed and the longest time one
                                       lived from its first byte sent
                                       ("closed=K longest=S"); with
                                       ADDRS, from that many addresses,
                                       127.0.0.2 and on, in turn
Only ever 127.0.0.1.
"""

import socket
import sys
import time

HOST = "127.0.0.1"


def status_line(sock, timeout=5.0):
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    return line if line else "closed"


def send_all(port, payload):
    s = socket.create_connection((HOST, port), timeout=5)
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return s


def cmd_raw(port, text):
    payload = text.encode().decode("unicode_escape").encode("latin-1")
    s = send_all(port, payload)
    print(status_line(s))
    s.close()


def cmd_bigheader(port, size):
    payload = ("GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * size +
               "\r\n\r\n").encode()
    s = send_all(port, payload)
    print(status_line(s))
    s.close()


def cmd_slow(port):
    s = send_all(port, b"GET /status HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    s.settimeout(60)
    try:
        while s.recv(4096):
            pass
    except (socket.timeout, ConnectionResetError):
        pass
    print("%.1f" % (time.monotonic() - t0))
    s.close()


def cmd_hold(port, n, seconds, ready):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((HOST, port))
        except BlockingIOError:
            pass
        socks.append(s)
    time.sleep(0.5)
    with open(ready, "w") as f:
        f.write("%d\n" % len(socks))
    closed = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end and len(closed) < len(socks):
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                if s.recv(1) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.2)
    for s in socks:
        s.close()
    print(len(closed))


LORIS_REQUEST = b"GET /status HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200


class Loris:
    def __init__(self, port, src=None):
        self.sock = socket.socket()
        if src is not None:
            self.sock.bind((src, 0))
        self.sock.setblocking(False)
        try:
            self.sock.connect((HOST, port))
        except BlockingIOError:
            pass
        self.born = None        # the first byte sent
        self.sent = 0

    def age(self, now):
        return 0.0 if self.born is None else now - self.born

    def drip(self):
        """One more byte; False once the server has hung up."""
        try:
            if self.sock.recv(4096) == b"":
                return False
        except BlockingIOError:
            pass
        except OSError:
            return False
        try:
            self.sock.send(LORIS_REQUEST[self.sent % len(LORIS_REQUEST):][:1])
            self.sent += 1
            if self.born is None:
                self.born = time.monotonic()
        except BlockingIOError:
            pass
        except OSError:
            return False
        return True


def cmd_loris(port, n, interval, seconds, ready, addrs=0):
    def src(i):
        return "127.0.0.%d" % (2 + i % addrs) if addrs else None
    conns = [Loris(port, src(i)) for i in range(n)]
    time.sleep(0.2)
    with open(ready, "w") as f:
        f.write("%d\n" % len(conns))
    closed, longest = 0, 0.0
    end = time.monotonic() + seconds
    next_drip = time.monotonic()
    while time.monotonic() < end:
        now = time.monotonic()
        drip = now >= next_drip
        if drip:
            next_drip = now + interval
        for i, c in enumerate(conns):
            alive = c.drip() if drip else still_open(c.sock)
            if not alive:
                closed += 1
                longest = max(longest, c.age(now))
                c.sock.close()
                conns[i] = Loris(port, src(i))
        time.sleep(0.1)
    now = time.monotonic()
    for c in conns:
        longest = max(longest, c.age(now))
        c.sock.close()
    print("closed=%d longest=%.1f" % (closed, longest))


def still_open(sock):
    try:
        return sock.recv(4096) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "raw":
        cmd_raw(port, sys.argv[3])
    elif cmd == "bigheader":
        cmd_bigheader(port, int(sys.argv[3]))
    elif cmd == "slow":
        cmd_slow(port)
    elif cmd == "hold":
        cmd_hold(port, int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
    elif cmd == "loris":
        cmd_loris(port, int(sys.argv[3]), float(sys.argv[4]),
                  float(sys.argv[5]), sys.argv[6],
                  int(sys.argv[7]) if len(sys.argv) > 7 else 0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
