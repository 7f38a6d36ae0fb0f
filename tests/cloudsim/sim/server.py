"""HTTP front of the fake ClearML server: the API (any method, any path
of the form /service.action or /vN.M/service.action), its outage knob,
and the admin API under /sim/ (no auth, JSON)."""

import json
import socket
import struct
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .util import read_body


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudsim"
    sys_version = ""

    def __getattr__(self, name):
        # every HTTP method is served the same way
        if name.startswith("do_"):
            return self.serve
        raise AttributeError(name)

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, ctype, body, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status, doc):
        self.reply(status, "application/json",
                   (json.dumps(doc, indent=1) + "\n").encode())

    def drop(self):
        """Close the connection with a reset and no answer at all."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass


class ClearMLHandler(BaseHandler):
    """server.sim is the Sim object (its .clearml and admin methods)."""

    def serve(self):
        sim = self.server.sim
        url = urllib.parse.urlsplit(self.path)
        try:
            body = read_body(self)
        except ValueError as e:
            self.reply(400, "text/plain", ("bad request body: %s\n"
                                           % e).encode())
            self.close_connection = True
            return
        if url.path == "/sim" or url.path.startswith("/sim/"):
            self.serve_admin(sim, url, body)
            return
        if url.path == "/files" or url.path.startswith("/files/"):
            self.reply(*sim.clearml.files.handle(self.command, url.path,
                                                 self.headers, body))
            return
        fault = sim.clearml.current_fault()
        if fault is not None:
            if fault["mode"] == "down":
                self.drop()
                return
            if fault["mode"] == "500":
                self.reply(*sim.clearml.fault_envelope(url.path))
                return
            if fault["mode"] == "html500":
                page = ("<!DOCTYPE html>\n<html><head><title>500 Internal "
                        "Server Error</title></head><body><h1>Internal "
                        "Server Error</h1><p>Failed processing request %s"
                        "</p></body></html>\n" % url.path)
                self.reply(500, "text/html; charset=utf-8", page.encode())
                return
            if fault["mode"] == "slow":
                time.sleep(fault["delay"])
        if self.headers.get("Content-Encoding"):
            self.reply(415, "text/plain; charset=utf-8",
                       b"Content encoding is not supported\n")
            return
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        status, ctype, out = sim.clearml.handle(
            url.path, self.headers, body, query, self.client_address[0])
        self.reply(status, ctype, out)

    def serve_admin(self, sim, url, body):
        try:
            doc = json.loads(body) if body.strip() else None
        except ValueError as e:
            self.reply_json(400, {"error": "body is not JSON: %s" % e})
            return
        query = dict(urllib.parse.parse_qsl(url.query))
        try:
            status, out = sim.admin(self.command, url.path, doc, query)
        except ValueError as e:
            status, out = 400, {"error": str(e)}
        except Exception as e:
            sim.log("script-error", where="admin " + url.path,
                    error=repr(e))
            status, out = 500, {"error": repr(e),
                                "trace": traceback.format_exc()}
        self.reply_json(status, out)


def start_server(port, handler, sim, name):
    return serve(Server(("127.0.0.1", port), handler), sim, name)


def serve(srv, sim, name):
    """Serve a bound Server in a thread."""
    import threading
    srv.sim = sim
    th = threading.Thread(target=srv.serve_forever, name=name,
                          kwargs={"poll_interval": 0.2}, daemon=True)
    th.start()
    return srv
