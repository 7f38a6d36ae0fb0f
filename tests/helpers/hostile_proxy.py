#!/usr/bin/env python3
"""A reverse proxy that corrupts the answers of the server behind it.

    hostile_proxy.py UPSTREAM_URL PORTFILE

Listens on a free port of 127.0.0.1 (written to PORTFILE once it
listens), forwards every request unchanged (Host header included, so that
SigV4 signatures still verify) to UPSTREAM_URL and, while a mode is set,
answers qscale (User-Agent qscale/...) with a corrupted form of the
upstream's answer instead; other clients (the simulated agents, which
learn the same address from the startup script) get clean answers:

  pass         the answer as it is
  garbage      200, random bytes
  truncated    200, the first part of the answer (consistent length)
  cut          200, a Content-Length of the whole answer, half of it sent,
               then the connection closed
  huge         200, a Content-Length of 100 MB, streamed
  huge-chunked 200, chunked, 100 MB of a never-ending JSON array
  slow         the answer, one byte a second
  utf8         the answer with invalid UTF-8 in its text
  numbers      the answer with every number made huge (1e999, 20 digits)
  shape        JSON: every value of the wrong type; XML: every text empty
  empty        200, no body
  html500      500 with an HTML page
  mix          each answer one of the corrupting modes above, in turn

Control, on the same port (not forwarded):
  POST /_hostile/mode   body: the mode name
  GET  /_hostile/stats  JSON: answers by mode, upstream errors
"""
import http.client
import json
import os
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HUGE = 100 * 1024 * 1024
CORRUPT = ["garbage", "truncated", "cut", "huge", "huge-chunked", "slow",
           "utf8", "numbers", "shape", "empty", "html500"]
state = {"mode": "pass", "turn": 0}
stats = {"answers": {}, "upstream_errors": 0, "client_gone": 0}
lock = threading.Lock()
upstream = None


def next_mode():
    with lock:
        mode = state["mode"]
        if mode == "mix":
            mode = CORRUPT[state["turn"] % len(CORRUPT)]
            state["turn"] += 1
        stats["answers"][mode] = stats["answers"].get(mode, 0) + 1
    return mode


def wrong_shape(v):
    """The same tree, every value of another type."""
    if isinstance(v, dict):
        return {k: wrong_shape(x) for k, x in v.items()} if v else []
    if isinstance(v, list):
        return {"item": [wrong_shape(x) for x in v]}
    if isinstance(v, str):
        return len(v)
    if isinstance(v, bool) or v is None:
        return "yes"
    return [str(v)]


def corrupt_body(mode, body):
    if mode == "garbage":
        return os.urandom(random.randrange(1, 4096))
    if mode == "truncated":
        return body[:random.randrange(0, max(1, len(body)))]
    if mode == "utf8":
        out = bytearray(body)
        for i in range(len(out)):
            if 0x61 <= out[i] <= 0x7a and random.random() < 0.2:
                out[i] = random.choice([0xff, 0xfe, 0xc3, 0x80, 0xed])
        return bytes(out)
    if mode == "numbers":
        return re.sub(rb"-?\d+(\.\d+)?", lambda m: random.choice(
            [b"1e999", b"-99999999999999999999", b"18446744073709551617",
             b"9" * 40]), body)
    if mode == "shape":
        try:
            return json.dumps(wrong_shape(json.loads(body))).encode()
        except ValueError:
            return re.sub(rb">[^<]+<", b"><", body)
    return body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def control(self, body):
        if self.path == "/_hostile/mode" and self.command == "POST":
            mode = body.decode().strip()
            if mode not in CORRUPT + ["pass", "mix"]:
                return self.plain(400, "unknown mode %r\n" % mode)
            with lock:
                state["mode"] = mode
            return self.plain(200, mode + "\n")
        if self.path == "/_hostile/stats":
            with lock:
                return self.plain(200, json.dumps(stats) + "\n")
        return self.plain(404, "no such control\n")

    def plain(self, status, text, ctype="text/plain"):
        data = text.encode() if isinstance(text, str) else text
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def forward(self, body):
        u = urllib.parse.urlsplit(upstream)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("connection", "keep-alive",
                                        "transfer-encoding")}
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        ctype = r.getheader("Content-Type", "application/octet-stream")
        conn.close()
        return r.status, ctype, data

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path.startswith("/_hostile/"):
            return self.control(body)
        try:
            status, ctype, data = self.forward(body)
        except (OSError, http.client.HTTPException):
            with lock:
                stats["upstream_errors"] += 1
            return self.plain(502, "upstream unreachable\n")
        mode = "pass"
        if self.headers.get("User-Agent", "").startswith("qscale/"):
            mode = next_mode()
        try:
            self.answer(mode, status, ctype, data)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            with lock:
                stats["client_gone"] += 1
            self.close_connection = True

    def answer(self, mode, status, ctype, data):
        if mode in ("pass", "garbage", "truncated", "utf8", "numbers",
                    "shape"):
            return self.plain(200 if mode == "garbage" else status,
                              corrupt_body(mode, data), ctype)
        if mode == "empty":
            return self.plain(200, b"", ctype)
        if mode == "html500":
            return self.plain(500, "<html><body><h1>500 Internal Server "
                              "Error</h1></body></html>", "text/html")
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if mode == "cut":
            self.send_header("Content-Length", str(len(data) + 10))
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
        elif mode == "huge":
            self.send_header("Content-Length", str(HUGE))
            self.end_headers()
            self.stream(HUGE, b" " * 65536)
        elif mode == "huge-chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            piece = b"[" + b"1," * 32767
            chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
            for _ in range(HUGE // len(piece)):
                self.wfile.write(chunk)
            self.wfile.write(b"0\r\n\r\n")
        elif mode == "slow":
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(1)

    def stream(self, total, piece):
        sent = 0
        while sent < total:
            part = piece[:total - sent]
            self.wfile.write(part)
            sent += len(part)

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


def main(argv):
    global upstream
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    upstream = argv[0]
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, argv[1])
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
