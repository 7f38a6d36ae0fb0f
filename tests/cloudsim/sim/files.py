"""The fake ClearML files server, under /files on the ClearML port.

As the real one (clearml-server's fileserver): POST / takes a
multipart/form-data body whose every part is a file, the part's name being
the path to store it at, and answers the JSON list of paths stored; GET
/PATH gives the file back.  The real server checks a token only when its
auth is enabled (off by default); this one takes calls without one too,
refuses a token that is not valid (401), and records which uploads carried
a valid one, so tests can see that a client sends it.
"""

import email.parser
import json
import email.policy
import threading
import time

MAX_UPLOAD = 64 * 1024 * 1024


class FileStore:
    def __init__(self, clearml):
        self.clearml = clearml
        self.lock = threading.Lock()
        self.files = {}          # path -> {"data", "type", "time", "auth"}
        self.uploads = []        # one entry per POST

    def _token_ok(self, headers):
        """None: no token; True or False: a valid one or not."""
        auth = headers.get("Authorization") or ""
        if not auth:
            return None
        if not auth.startswith("Bearer "):
            return False
        try:
            self.clearml._verify_jwt(auth[len("Bearer "):].strip())
        except Exception:
            return False
        return True

    def handle(self, method, path, headers, body):
        """(status, content type, body bytes) for /files[/...]."""
        rel = path[len("/files"):].lstrip("/")
        tok = self._token_ok(headers)
        if tok is False:
            return 401, "text/plain", b"Unauthorized\n"
        if method == "POST" and rel == "":
            return self._upload(headers, body, tok)
        if method in ("GET", "HEAD"):
            if rel == "":
                return 200, "text/plain", b"OK"
            with self.lock:
                f = self.files.get(rel)
            if f is None:
                return 404, "text/plain", b"Not Found\n"
            return 200, f["type"], f["data"]
        return 405, "text/plain", b"Method Not Allowed\n"

    def _upload(self, headers, body, tok):
        ctype = headers.get("Content-Type") or ""
        if not ctype.startswith("multipart/form-data"):
            return 400, "text/plain", b"expected multipart/form-data\n"
        if len(body) > MAX_UPLOAD:
            return 413, "text/plain", b"too large\n"
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        if not msg.is_multipart():
            return 400, "text/plain", b"malformed multipart body\n"
        stored = []
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name or part.get_filename() is None:
                continue
            rel = name.lstrip("/")
            if ".." in rel.split("/"):
                return 404, "text/plain", b"Not Found\n"
            data = part.get_payload(decode=True) or b""
            with self.lock:
                self.files[rel] = {"data": data, "time": time.time(),
                                   "type": part.get_content_type(),
                                   "auth": bool(tok)}
            stored.append(rel)
        with self.lock:
            self.uploads.append({"time": time.time(), "paths": stored,
                                 "auth": bool(tok)})
        self.clearml.log("file-upload", paths=stored, auth=bool(tok))
        return 200, "application/json", json.dumps(stored).encode()

    def listing(self):
        with self.lock:
            return {"files": [{"path": p, "size": len(f["data"]),
                               "type": f["type"], "auth": f["auth"],
                               "time": f["time"]}
                              for p, f in sorted(self.files.items())],
                    "uploads": list(self.uploads)}
