"""The fake ClearML API server: state and endpoints.

It follows the behaviour written down in shared/reference/clearml-api.md
(envelope, authentication, queues, tasks, workers) closely enough that a
client tested against it works against the real server.  Everything is in
memory under one lock; calls are short.
"""

import base64
import fnmatch
import hashlib
import hmac
import json
import random
import re
import secrets
import string
import threading
import time
import traceback

from .util import iso, new_id

MAX_VERSION = "2.31"
SERVER_VERSION = "2.0.0"
SERVER_BUILD = "cloudsim"
MAX_EXPIRATION_SEC = 31536000
DEFAULT_EXPIRATION_SEC = 2592000
DEFAULT_WORKER_TIMEOUT = 600
LIVE_WORKER_SEC = 600

TASK_TYPES = ("training", "testing", "inference", "data_processing",
              "application", "monitor", "controller", "optimizer",
              "service", "qc", "custom")
TASK_STATUSES = ("created", "queued", "in_progress", "stopped", "published",
                 "publishing", "closed", "failed", "completed", "unknown")
# Allowed status changes without force (same status again is allowed too).
TRANSITIONS = {
    "created": {"queued", "in_progress"},
    "queued": {"created", "in_progress", "stopped"},
    "in_progress": {"stopped", "failed", "created", "completed"},
    "stopped": {"closed", "created", "failed", "queued", "in_progress",
                "published", "publishing", "completed"},
    "failed": {"created", "stopped", "published", "queued"},
    "completed": {"published", "in_progress", "created"},
    "closed": {"created", "failed", "published", "publishing", "stopped"},
    "publishing": {"published"},
    "published": set(),
}

# Default messages of the error codes used here, as the server spells them.
ERROR_MSGS = {
    (400, 0): "bad request",
    (400, 11): "missing required fields",
    (400, 12): "validation error",
    (400, 17): "batch request contains no items",
    (400, 21): "malformed regular expression",
    (400, 101): "invalid task id",
    (400, 110): "invalid task status",
    (400, 112): "task in progress (invalid task status)",
    (400, 131): "events not added",
    (400, 401): "invalid project id",
    (400, 701): "invalid queue id",
    (400, 702): "queue is not empty",
    (400, 703): "invalid queue id or task not in queue",
    (400, 706): "failed adding task to queue since task is already queued",
    (400, 707): "no queue is tagged as the default queue for this company",
    (400, 801): "value combination already exists (unique field already "
                "contains this value)",
    (401, 10): "unauthorized (bad authentication header type)",
    (401, 20): "unauthorized (missing credentials)",
    (401, 21): "unauthorized (malformed credentials)",
    (401, 22): "unauthorized (invalid credentials)",
    (401, 30): "invalid token",
    (404, 0): "not found",
    (500, 0): "general server error",
}


class ApiError(Exception):
    """An error answered in the envelope: code/subcode, the message built
    as '<Default msg>[ (<extra>)][: k=v, ...]'."""

    def __init__(self, code, subcode, extra=None, msg=None, stack=None,
                 **kv):
        if msg is None:
            base = ERROR_MSGS.get((code, subcode), "error")
            msg = base[:1].upper() + base[1:]
            if extra:
                msg += " (%s)" % extra
            if kv:
                msg += ": " + ", ".join("%s=%s" % (k, v)
                                        for k, v in kv.items())
        super().__init__(msg)
        self.code = code
        self.subcode = subcode
        self.msg = msg
        self.stack = stack


# Versions of each endpoint's handlers; a call gets the newest handler whose
# version is at most the requested one (actual_version in the envelope).
ENDPOINT_VERSIONS = {
    "debug.ping": "2.9",
    "auth.login": "2.1",
    "auth.logout": "2.2",
    "queues.create": "2.4 2.13 2.31",
    "queues.get_all": "2.4 2.15 2.20 2.21",
    "queues.get_by_id": "2.4 2.20",
    "queues.get_default": "2.4",
    "queues.delete": "2.4",
    "queues.add_task": "2.4 2.31",
    "queues.remove_task": "2.4 2.31",
    "queues.get_next_task": "2.4 2.14 2.21",
    "queues.peek_task": "2.15",
    "queues.get_num_entries": "2.15",
    "tasks.create": "2.1 2.13",
    "tasks.get_all": "2.1 2.14 2.15 2.26",
    "tasks.get_by_id": "2.1",
    "tasks.edit": "2.1 2.13",
    "tasks.delete": "2.1 2.13 2.21 2.30",
    "tasks.enqueue": "1.5 2.19 2.22 2.31",
    "tasks.dequeue": "1.5 2.25 2.26",
    "tasks.reset": "2.1 2.13 2.21",
    "tasks.started": "2.1",
    "tasks.stopped": "2.1",
    "tasks.failed": "2.1",
    "tasks.completed": "2.2 2.20",
    "tasks.close": "2.1",
    "tasks.stop": "2.1 2.30",
    "tasks.ping": "2.1",
    "workers.register": "2.4 2.22",
    "workers.unregister": "2.4",
    "workers.status_report": "2.4 2.22",
    "workers.get_all": "2.4 2.20 2.22 2.30",
    "workers.get_count": "2.26 2.30",
    "projects.create": "2.1 2.13",
    "projects.get_all": "2.1 2.13 2.14 2.15 2.17",
    "projects.get_by_id": "2.1",
    "events.add": "2.1",
    "events.add_batch": "2.1",
}
NO_AUTH = {"debug.ping"}

PATH_RE = re.compile(
    r"^/?(v(?P<ver>\d+\.?\d+)/)?(?P<name>[a-zA-Z_]\w+\.[a-zA-Z_]\w+)/?$")


def vtuple(v):
    major, _, minor = v.partition(".")
    return (int(major), int(minor or 0))


def resolve_endpoint(name, requested):
    """The handler version for name at the requested version, or None."""
    versions = ENDPOINT_VERSIONS.get(name)
    if versions is None:
        return None
    want = vtuple(requested)
    best = None
    for v in versions.split():
        if vtuple(v) <= want and (best is None or vtuple(v) > vtuple(best)):
            best = v
    return best


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def project_fields(doc, fields):
    """Keep only the (dotted) fields asked for, and always the id."""
    out = {}
    for f in ["id"] + list(fields):
        src, dst = doc, out
        parts = f.split(".")
        for i, p in enumerate(parts):
            if not isinstance(src, dict) or p not in src:
                break
            if i == len(parts) - 1:
                dst[p] = src[p]
            else:
                src = src[p]
                dst = dst.setdefault(p, {})
    return out


def as_list(v, field):
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list):
        raise ApiError(400, 12, "invalid type for field %s: expected a list"
                       % field)
    return v


def compile_regex(pattern, field="name"):
    if not isinstance(pattern, str):
        raise ApiError(400, 12, "invalid type for field %s" % field)
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ApiError(400, 21, str(e), **{field: pattern})


def tags_match(have, want):
    """ClearML tag filters: plain tags must be present (any), '-tag' must
    be absent."""
    if not want:
        return True
    inc = [t for t in want if not t.startswith("-")]
    exc = [t[1:] for t in want if t.startswith("-")]
    if any(t in have for t in exc):
        return False
    return not inc or any(t in have for t in inc)


class ClearML:
    """State of the fake server and its endpoints."""

    def __init__(self, log, token_ttl=None):
        self.lock = threading.RLock()
        self.log = log
        self.jwt_key = secrets.token_bytes(32)
        self.company = {"id": new_id(), "name": "cloudsim"}
        self.user = {"id": new_id(), "name": "cloudsim user"}
        self.token_ttl = token_ttl     # None: the request's or the default
        self.creds = {}
        self.revoked = set()
        self.fault = None              # {mode, until, delay}
        self.reset()
        alnum = string.ascii_uppercase + string.digits
        self.access_key = "".join(secrets.choice(alnum) for _ in range(20))
        self.secret_key = secrets.token_urlsafe(36)
        self.creds[self.access_key] = self.secret_key

    def reset(self):
        with self.lock:
            self.queues = {}
            self.tasks = {}
            self.workers = {}
            self.projects = {}
            self.events = {}
            self.fault = None
            self.calls = {}            # client -> endpoint -> count

    # ------------------------------------------------------------ calls

    def handle(self, path, headers, body_raw, query, client_ip):
        """Serve one API call.  Returns (http_status, content_type, bytes)."""
        call_id = new_id()
        trx = headers.get("X-ClearML-Trx") or call_id
        m = PATH_RE.match(path)
        if not m:
            return self._plain(400, "Invalid request path %s" % path)
        name = m.group("name")
        self._count_call(headers, name)
        requested = m.group("ver") or MAX_VERSION
        if "." not in requested:
            requested = requested[0] + "." + requested[1:]
        endpoint = {"name": name, "requested_version": requested,
                    "actual_version": None}
        try:
            actual = resolve_endpoint(name, requested)
            if actual is None:
                raise ApiError(404, 0, msg="Unable to find endpoint for name "
                               "%s and version %s" % (name, requested))
            endpoint["actual_version"] = actual
            ident = None
            if name not in NO_AUTH:
                ident = self._authenticate(headers)
            req = self._parse_request(name, body_raw, query, headers)
            fn = getattr(self, "ep_" + name.replace(".", "_"))
            with self.lock:
                self._expire_workers()
                data = fn(req, ctx={"ident": ident, "headers": headers,
                                    "ip": client_ip, "version": actual})
            return self._envelope(call_id, trx, endpoint, 200, 0, "OK", "",
                                  data)
        except ApiError as e:
            stack = e.stack if e.code == 500 else None
            return self._envelope(call_id, trx, endpoint, e.code, e.subcode,
                                  e.msg, stack, {})
        except Exception as e:  # a bug here: answer as the server would
            self.log("script-error", where="clearml." + name, error=repr(e))
            return self._envelope(call_id, trx, endpoint, 500, 0,
                                  "General server error (%s)" % e,
                                  traceback.format_exc(), {})

    def _count_call(self, headers, name):
        """Calls by who made them, for the benchmarks: qscale (its
        User-Agent), the simulated agents (X-ClearML-Worker), or other."""
        if (headers.get("User-Agent") or "").startswith("qscale/"):
            client = "qscale"
        elif headers.get("X-ClearML-Worker"):
            client = "agent"
        else:
            client = "other"
        with self.lock:
            per = self.calls.setdefault(client, {})
            per[name] = per.get(name, 0) + 1

    def snapshot_calls(self):
        with self.lock:
            return {c: dict(per) for c, per in self.calls.items()}

    def _plain(self, status, text):
        return status, "text/plain; charset=utf-8", text.encode()

    def _envelope(self, call_id, trx, endpoint, code, subcode, msg, stack,
                  data):
        doc = {"meta": {"id": call_id, "trx": trx, "endpoint": endpoint,
                        "result_code": code, "result_subcode": subcode,
                        "result_msg": msg, "error_stack": stack,
                        "error_data": {}},
               "data": data}
        return code, "application/json", json.dumps(doc).encode()

    def _parse_request(self, name, raw, query, headers=None):
        if name == "events.add_batch":
            # the server reads a batch only from this exact content type;
            # anything else is an ordinary call with no batch in it
            ctype = (headers or {}).get("Content-Type") or ""
            if ctype != "application/json-lines":
                raise ApiError(400, 17, "send application/json-lines")
            req = {"requests": self._parse_batch(raw)}
        else:
            text = raw.decode("utf-8", "replace").strip()
            if not text:
                req = {}
            else:
                try:
                    req = json.loads(text)
                except ValueError as e:
                    raise ApiError(400, 12, "request body is not JSON: %s" % e)
            if not isinstance(req, dict):
                raise ApiError(400, 12, "request body must be a JSON object")
        for k, vals in query.items():
            conv = [self._query_value(v) for v in vals]
            req[k] = conv[0] if len(conv) == 1 else conv
        return req

    @staticmethod
    def _query_value(v):
        if v.lower() == "true":
            return True
        if v.lower() == "false":
            return False
        if v.isdigit():
            return int(v)
        return v

    @staticmethod
    def _parse_batch(raw):
        """A batch body: one JSON object per line (what the SDK sends), or
        a JSON list, or a single object."""
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return []
        try:
            doc = json.loads(text)
            if isinstance(doc, list):
                return doc
            if isinstance(doc, dict):
                return doc.get("requests", [doc]) if "requests" in doc \
                    else [doc]
        except ValueError:
            pass
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise ApiError(400, 12, "batch line %d is not JSON: %s"
                               % (n, e))
        return out

    # ------------------------------------------------------------- auth

    def _authenticate(self, headers):
        auth = headers.get("Authorization")
        if not auth:
            raise ApiError(401, 20)
        scheme, _, value = auth.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "basic":
            try:
                dec = base64.b64decode(value, validate=True).decode("latin-1")
            except (ValueError, UnicodeDecodeError):
                raise ApiError(401, 21)
            if ":" not in dec:
                raise ApiError(401, 21)
            key, _, secret = dec.partition(":")
            with self.lock:
                good = self.creds.get(key)
            if good is None or not hmac.compare_digest(good, secret):
                raise ApiError(401, 22, "failed to locate provided "
                               "credentials")
            return {"type": "basic", "key": key, "session": None}
        if scheme == "bearer":
            claims = self._verify_jwt(value)
            return {"type": "bearer", "key": claims.get("key"),
                    "session": claims.get("session_id")}
        raise ApiError(401, 10)

    def _jwt_fail(self, reason):
        raise ApiError(401, 30, "invalid jwt token", reason=reason)

    def _verify_jwt(self, token):
        parts = token.split(".")
        if len(parts) != 3:
            self._jwt_fail("Not enough segments")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except (ValueError, TypeError):
            self._jwt_fail("Invalid token encoding")
        if not isinstance(header, dict) or header.get("alg") != "HS256" \
                or not isinstance(claims, dict):
            self._jwt_fail("The specified alg value is not allowed")
        want = hmac.new(self.jwt_key, (parts[0] + "." + parts[1]).encode(),
                        hashlib.sha256).digest()
        if not hmac.compare_digest(want, sig):
            self._jwt_fail("Signature verification failed")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp <= time.time():
            self._jwt_fail("Signature has expired")
        with self.lock:
            if claims.get("session_id") in self.revoked:
                self._jwt_fail("Token has been revoked")
        return claims

    def make_jwt(self, key, lifetime):
        now = int(time.time())
        claims = {
            "identity": {"user": self.user["id"],
                         "company": self.company["id"], "role": "user",
                         "user_name": self.user["name"],
                         "company_name": self.company["name"]},
            "auth_type": "Bearer", "iat": now, "exp": now + int(lifetime),
            "session_id": new_id(), "env": "<unknown>",
            "api_version": MAX_VERSION, "server_version": SERVER_VERSION,
            "server_build": SERVER_BUILD, "feature_set": "basic",
            "key": key,
        }
        head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"},
                                 separators=(",", ":")).encode())
        body = b64url(json.dumps(claims, separators=(",", ":")).encode())
        sig = hmac.new(self.jwt_key, (head + "." + body).encode(),
                       hashlib.sha256).digest()
        return head + "." + body + "." + b64url(sig)

    def ep_debug_ping(self, req, ctx):
        return {"msg": "ClearML server"}

    def ep_auth_login(self, req, ctx):
        exp = req.get("expiration_sec")
        if exp is not None and (not isinstance(exp, int) or exp <= 0
                                or exp > MAX_EXPIRATION_SEC):
            raise ApiError(400, 12, "expiration_sec must be an integer "
                           "between 1 and %d" % MAX_EXPIRATION_SEC)
        if self.token_ttl is not None:
            lifetime = self.token_ttl
        else:
            lifetime = exp or DEFAULT_EXPIRATION_SEC
        return {"token": self.make_jwt(ctx["ident"]["key"], lifetime)}

    def ep_auth_logout(self, req, ctx):
        if ctx["ident"]["session"]:
            self.revoked.add(ctx["ident"]["session"])
        return {}

    # ----------------------------------------------------------- helpers

    @staticmethod
    def _require(req, *fields):
        missing = [f for f in fields if req.get(f) in (None, "")]
        if missing:
            raise ApiError(400, 11, fields=",".join(missing))

    def _task(self, tid):
        t = self.tasks.get(tid) if isinstance(tid, str) else None
        if t is None:
            raise ApiError(400, 101, id=tid, company=self.company["id"])
        return t

    def _queue(self, qid):
        q = self.queues.get(qid) if isinstance(qid, str) else None
        if q is None:
            raise ApiError(400, 701, id=qid, company=self.company["id"])
        return q

    def _queue_by_name(self, name):
        for q in self.queues.values():
            if q["name"] == name:
                return q
        return None

    def _new_queue(self, name, tags=None, system_tags=None, display_name=None,
                   metadata=None):
        if self._queue_by_name(name) is not None:
            raise ApiError(400, 801, name=name)
        now = time.time()
        q = {"id": new_id(), "name": name, "company": self.company["id"],
             "created": now, "last_update": now, "tags": list(tags or []),
             "system_tags": list(system_tags or []),
             "metadata": dict(metadata or {}), "entries": []}
        if display_name:
            q["display_name"] = display_name
        self.queues[q["id"]] = q
        return q

    def _queue_out(self, q, max_entries=None):
        out = {k: v for k, v in q.items() if k != "entries"}
        out["created"] = iso(q["created"])
        out["last_update"] = iso(q["last_update"])
        entries = q["entries"]
        if max_entries is not None:
            entries = entries[:max_entries]
        out["entries"] = [{"task": e["task"], "added": iso(e["added"])}
                          for e in entries]
        return out

    def _queues_holding(self, tid):
        return [q for q in self.queues.values()
                if any(e["task"] == tid for e in q["entries"])]

    def _remove_from_queue(self, q, tid):
        before = len(q["entries"])
        q["entries"] = [e for e in q["entries"] if e["task"] != tid]
        if len(q["entries"]) != before:
            q["last_update"] = time.time()
        return before - len(q["entries"])

    def _add_to_queue(self, q, tid):
        if any(e["task"] == tid for e in q["entries"]):
            raise ApiError(400, 706, task=tid, queue=q["id"])
        now = time.time()
        q["entries"].append({"task": tid, "added": now})
        q["last_update"] = now

    # ------------------------------------------------------------ queues

    def ep_queues_create(self, req, ctx):
        self._require(req, "name")
        q = self._new_queue(req["name"], req.get("tags"),
                            req.get("system_tags"), req.get("display_name"),
                            req.get("metadata"))
        self.log("queue-create", queue=q["name"], id=q["id"])
        return {"id": q["id"]}

    def ep_queues_get_all(self, req, ctx):
        ids = as_list(req.get("id"), "id")
        name_re = compile_regex(req["name"]) if req.get("name") else None
        hidden_ok = bool(ids or name_re or req.get("search_hidden"))
        out = []
        for q in self.queues.values():
            if ids is not None and q["id"] not in ids:
                continue
            if name_re is not None and not name_re.search(q["name"]):
                continue
            if not hidden_ok and "k8s-glue" in q["tags"]:
                continue
            if not tags_match(q["tags"], as_list(req.get("tags"), "tags")):
                continue
            if not tags_match(q["system_tags"],
                              as_list(req.get("system_tags"), "system_tags")):
                continue
            out.append(self._queue_out(q, req.get("max_task_entries")))
        out = self._page(out, req)
        fields = as_list(req.get("only_fields"), "only_fields")
        if fields:
            out = [project_fields(q, fields) for q in out]
        return {"queues": out}

    @staticmethod
    def _page(items, req):
        size = req.get("page_size")
        page = req.get("page")
        if isinstance(size, int) and size > 0:
            size = min(size, 500)
            page = page if isinstance(page, int) and page >= 0 else 0
            return items[page * size:(page + 1) * size]
        return items

    def ep_queues_get_by_id(self, req, ctx):
        self._require(req, "queue")
        return {"queue": self._queue_out(self._queue(req["queue"]),
                                         req.get("max_task_entries"))}

    def ep_queues_get_default(self, req, ctx):
        for q in self.queues.values():
            if "default" in q["system_tags"]:
                return {"id": q["id"], "name": q["name"]}
        raise ApiError(400, 707)

    def ep_queues_delete(self, req, ctx):
        self._require(req, "queue")
        q = self._queue(req["queue"])
        if q["entries"] and not req.get("force"):
            raise ApiError(400, 702, queue=q["id"])
        del self.queues[q["id"]]
        return {"deleted": 1}

    def ep_queues_add_task(self, req, ctx):
        self._require(req, "queue", "task")
        q = self._queue(req["queue"])
        t = self._task(req["task"])
        self._add_to_queue(q, t["id"])
        if req.get("update_execution_queue", True):
            t["execution"]["queue"] = q["id"]
        return {"added": 1}

    def ep_queues_remove_task(self, req, ctx):
        self._require(req, "queue", "task")
        q = self._queue(req["queue"])
        n = self._remove_from_queue(q, req["task"])
        if not n:
            raise ApiError(400, 703, queue=q["id"], task=req["task"])
        t = self.tasks.get(req["task"])
        if t is not None and req.get("update_task_status") \
                and t["status"] == "queued":
            self._set_status(t, "created", True, "", "", ctx)
        return {"removed": n}

    def ep_queues_get_next_task(self, req, ctx):
        self._require(req, "queue")
        q = self._queue(req["queue"])
        if not q["entries"]:
            return {}
        if req.get("task") and q["entries"][0]["task"] != req["task"]:
            return {}
        e = q["entries"].pop(0)
        q["last_update"] = time.time()
        t = self.tasks.get(e["task"])
        data = {"entry": {"task": e["task"], "added": iso(e["added"])}}
        if t is not None and t["status"] == "stopped":
            # the race the server fixes: stopped while being pulled
            self._set_status(t, "queued", True, "", "", ctx)
        if req.get("get_task_info") and t is not None:
            data["task_info"] = {"company": t["company"], "user": t["user"]}
        return data

    def ep_queues_peek_task(self, req, ctx):
        self._require(req, "queue")
        q = self._queue(req["queue"])
        return {"task": q["entries"][0]["task"] if q["entries"] else None}

    def ep_queues_get_num_entries(self, req, ctx):
        self._require(req, "queue")
        return {"num": len(self._queue(req["queue"])["entries"])}

    # ------------------------------------------------------------- tasks

    def ep_tasks_create(self, req, ctx):
        self._require(req, "name", "type")
        if req["type"] not in TASK_TYPES:
            raise ApiError(400, 12, "invalid task type", type=req["type"])
        project = req.get("project")
        if project is not None and project not in self.projects:
            raise ApiError(400, 401, id=project, company=self.company["id"])
        now = time.time()
        t = {"id": new_id(), "name": req["name"], "type": req["type"],
             "user": self.user["id"], "company": self.company["id"],
             "status": "created", "status_reason": "", "status_message": "",
             "status_changed": now, "created": now, "last_update": now,
             "last_change": now, "last_changed_by": self.user["id"],
             "comment": req.get("comment", ""),
             "tags": list(req.get("tags") or []),
             "system_tags": list(req.get("system_tags") or []),
             "execution": dict(req.get("execution") or {}),
             "script": dict(req.get("script") or {}),
             "hyperparams": dict(req.get("hyperparams") or {}),
             "configuration": dict(req.get("configuration") or {}),
             "container": dict(req.get("container") or {}),
             "runtime": {}, "models": {"input": [], "output": []},
             "output": dict(req.get("output") or {}),
             "last_iteration": 0, "active_duration": None,
             "_enqueued": None, "_enqueue_status": None}
        if project:
            t["project"] = project
        if req.get("parent"):
            t["parent"] = req["parent"]
        self.tasks[t["id"]] = t
        return {"id": t["id"]}

    TIME_FIELDS = ("status_changed", "created", "started", "completed",
                   "last_update", "last_change", "last_worker_report",
                   "published")

    def _task_out(self, t):
        out = {}
        for k, v in t.items():
            if k.startswith("_") or v is None:
                continue
            out[k] = iso(v) if k in self.TIME_FIELDS else v
        return out

    def ep_tasks_get_all(self, req, ctx):
        ids = as_list(req.get("id"), "id")
        statuses = as_list(req.get("status"), "status")
        projects = as_list(req.get("project"), "project")
        types = as_list(req.get("type"), "type")
        users = as_list(req.get("user"), "user")
        name_re = compile_regex(req["name"]) if req.get("name") else None
        out = []
        for t in self.tasks.values():
            if ids is not None and t["id"] not in ids:
                continue
            if statuses is not None and t["status"] not in statuses:
                continue
            if projects is not None and t.get("project") not in projects:
                continue
            if types is not None and t["type"] not in types:
                continue
            if users is not None and t["user"] not in users:
                continue
            if name_re is not None and not name_re.search(t["name"]):
                continue
            if req.get("parent") and t.get("parent") != req["parent"]:
                continue
            if not tags_match(t["tags"], as_list(req.get("tags"), "tags")):
                continue
            if not tags_match(t["system_tags"],
                              as_list(req.get("system_tags"), "system_tags")):
                continue
            if "hidden" in t["system_tags"] and not req.get("search_hidden") \
                    and ids is None:
                continue
            out.append(self._task_out(t))
        for key in reversed(as_list(req.get("order_by"), "order_by") or []):
            rev = key.startswith("-")
            key = key.lstrip("-+")
            out.sort(key=lambda d: (d.get(key) is None, str(d.get(key))),
                     reverse=rev)
        out = self._page(out, req)
        fields = as_list(req.get("only_fields"), "only_fields")
        if fields:
            out = [project_fields(d, fields) for d in out]
        return {"tasks": out}

    def ep_tasks_get_by_id(self, req, ctx):
        self._require(req, "task")
        return {"task": self._task_out(self._task(req["task"]))}

    EDITABLE = ("name", "comment", "type", "tags", "system_tags", "project",
                "parent", "execution", "script", "hyperparams",
                "configuration", "container", "runtime", "output")

    def ep_tasks_edit(self, req, ctx):
        self._require(req, "task")
        t = self._task(req["task"])
        if t["status"] != "created" and not req.get("force"):
            raise ApiError(400, 110, "task must be in created status",
                           status=t["status"])
        if "type" in req and req["type"] not in TASK_TYPES:
            raise ApiError(400, 12, "invalid task type", type=req["type"])
        fields = {}
        for k in self.EDITABLE:
            if k in req:
                t[k] = req[k]
                fields[k] = req[k]
        now = time.time()
        t["last_update"] = t["last_change"] = now
        fields["last_update"] = fields["last_change"] = iso(now)
        return {"updated": 1, "fields": fields}

    def ep_tasks_delete(self, req, ctx):
        self._require(req, "task")
        t = self._task(req["task"])
        if t["status"] == "in_progress" and not req.get("force"):
            raise ApiError(400, 112, id=t["id"])
        for q in self._queues_holding(t["id"]):
            self._remove_from_queue(q, t["id"])
        del self.tasks[t["id"]]
        return {"deleted": 1}

    def _set_status(self, t, new, force, reason, message, ctx):
        cur = t["status"]
        if not force and new != cur and cur != "unknown" \
                and new not in TRANSITIONS.get(cur, set()):
            raise ApiError(400, 110, "Invalid status change",
                           current_status=cur, new_status=new)
        now = time.time()
        t["status"] = new
        t["status_reason"] = reason or ""
        t["status_message"] = message or ""
        t["status_changed"] = t["last_update"] = t["last_change"] = now
        t["last_changed_by"] = self.user["id"]
        return {"status": new, "status_reason": t["status_reason"],
                "status_message": t["status_message"],
                "status_changed": iso(now), "last_update": iso(now),
                "last_change": iso(now),
                "last_changed_by": t["last_changed_by"]}

    def _status_call(self, req, ctx, new):
        self._require(req, "task")
        t = self._task(req["task"])
        fields = self._set_status(t, new, bool(req.get("force")),
                                  req.get("status_reason"),
                                  req.get("status_message"), ctx)
        return t, fields

    def _finish(self, t, fields):
        now = time.time()
        t["completed"] = now
        t["_ended"] = now
        if t.get("started"):
            t["active_duration"] = int(now - t["started"])
        fields["completed"] = iso(now)

    def ep_tasks_started(self, req, ctx):
        t, fields = self._status_call(req, ctx, "in_progress")
        started = 0
        if not t.get("started"):
            t["started"] = time.time()
            started = 1
        t["_ended"] = None
        t["_run_started"] = time.time()
        fields["started"] = iso(t["started"])
        return {"updated": 1, "fields": fields, "started": started}

    def ep_tasks_stopped(self, req, ctx):
        t, fields = self._status_call(req, ctx, "stopped")
        self._finish(t, fields)
        return {"updated": 1, "fields": fields}

    def ep_tasks_failed(self, req, ctx):
        t, fields = self._status_call(req, ctx, "failed")
        t["_ended"] = time.time()
        return {"updated": 1, "fields": fields}

    def ep_tasks_completed(self, req, ctx):
        t, fields = self._status_call(req, ctx, "completed")
        self._finish(t, fields)
        return {"updated": 1, "fields": fields, "published": 0}

    def ep_tasks_close(self, req, ctx):
        t, fields = self._status_call(req, ctx, "closed")
        return {"updated": 1, "fields": fields}

    def ep_tasks_enqueue(self, req, ctx):
        self._require(req, "task")
        t = self._task(req["task"])
        if req.get("queue") and req.get("queue_name"):
            raise ApiError(400, 12, "only one of queue and queue_name may "
                           "be given")
        if req.get("queue"):
            q = self._queue(req["queue"])
        elif req.get("queue_name"):
            q = self._queue_by_name(req["queue_name"]) or \
                self._new_queue(req["queue_name"])
        else:
            q = self.ep_queues_get_default({}, ctx)
            q = self.queues[q["id"]]
        if any(e["task"] == t["id"] for e in q["entries"]):
            raise ApiError(400, 706, task=t["id"], queue=q["id"])
        prev = t["status"]
        fields = self._set_status(t, "queued", bool(req.get("force")),
                                  req.get("status_reason"),
                                  req.get("status_message"), ctx)
        for other in self._queues_holding(t["id"]):
            self._remove_from_queue(other, t["id"])
        self._add_to_queue(q, t["id"])
        t["_enqueue_status"] = prev
        t["_enqueued"] = time.time()
        t["_ended"] = t["_run_started"] = None
        t["execution"]["queue"] = q["id"]
        fields["execution.queue"] = q["id"]
        self.log("enqueue", task=t["id"], queue=q["name"])
        return {"updated": 1, "fields": fields, "queued": 1}

    def ep_tasks_dequeue(self, req, ctx):
        self._require(req, "task")
        t = self.tasks.get(req["task"])
        if t is None:
            for q in list(self.queues.values()):
                self._remove_from_queue(q, req["task"])
            return {"updated": 0, "dequeued": 1}
        qid = t["execution"].get("queue")
        holding = self._queues_holding(t["id"])
        if req.get("remove_from_all_queues"):
            targets = holding
        else:
            targets = [q for q in holding if q["id"] == qid]
        if not targets and t["status"] != "queued":
            raise ApiError(400, 110, "task is not queued", status=t["status"])
        for q in targets:
            self._remove_from_queue(q, t["id"])
        fields = {}
        if t["status"] in ("queued", "in_progress"):
            new = req.get("new_status") or t.get("_enqueue_status") or \
                "created"
            if new not in TASK_STATUSES:
                raise ApiError(400, 12, "invalid status", new_status=new)
            fields = self._set_status(t, new, True, req.get("status_reason"),
                                      req.get("status_message"), ctx)
        t["execution"].pop("queue", None)
        return {"updated": 1, "fields": fields, "dequeued": 1}

    def ep_tasks_reset(self, req, ctx):
        self._require(req, "task")
        t = self._task(req["task"])
        if t["status"] == "published" and not req.get("force"):
            raise ApiError(400, 110, "Invalid status change",
                           current_status="published", new_status="created")
        removed = 0
        for q in self._queues_holding(t["id"]):
            removed += self._remove_from_queue(q, t["id"])
        fields = self._set_status(t, "created", True, req.get("status_reason"),
                                  req.get("status_message"), None)
        for k in ("started", "completed", "last_worker", "active_duration",
                  "last_worker_report"):
            t.pop(k, None)
        t["_enqueued"] = t["_ended"] = None
        t["execution"].pop("queue", None)
        return {"updated": 1, "fields": fields,
                "dequeued": {"removed": removed}, "deleted_models": 0}

    def ep_tasks_stop(self, req, ctx):
        self._require(req, "task")
        t = self._task(req["task"])
        now = time.time()
        live = t.get("last_worker") and \
            now - t.get("last_update", 0) < LIVE_WORKER_SEC
        reason = req.get("status_reason") or ""
        if t["status"] == "queued" or "development" in t["system_tags"] \
                or not live:
            for q in self._queues_holding(t["id"]):
                self._remove_from_queue(q, t["id"])
            fields = self._set_status(
                t, "stopped", bool(req.get("force")), reason,
                req.get("status_message") or
                "Stopped by %s" % self.user["name"], ctx)
            self._finish(t, fields)
        else:
            t["status_message"] = "stopping"
            t["status_reason"] = reason
            t["last_update"] = now
            fields = {"status_message": "stopping", "status_reason": reason,
                      "last_update": iso(now)}
        return {"updated": 1, "fields": fields}

    def ep_tasks_ping(self, req, ctx):
        self._require(req, "task")
        t = self._task(req["task"])
        now = time.time()
        t["last_update"] = now
        if t["status"] == "in_progress" and t.get("started"):
            t["active_duration"] = int(now - t["started"])
        return {}

    # ----------------------------------------------------------- workers

    def _expire_workers(self):
        now = time.time()
        for wid in [w for w, d in self.workers.items()
                    if d["_expires"] <= now]:
            self.log("worker-expired", worker=wid)
            del self.workers[wid]

    def _new_worker(self, wid, timeout, queues, tags, system_tags, ip):
        now = time.time()
        w = {"id": wid, "key": "worker_%s_%s_%s" % (
                 self.company["id"], self.user["id"], wid),
             "register_time": now, "last_activity_time": now,
             "last_report_time": None, "register_timeout": timeout,
             "ip": ip, "tags": list(tags or []),
             "system_tags": list(system_tags or []), "queues": list(queues),
             "task": None, "queue": None, "_expires": now + timeout}
        self.workers[wid] = w
        return w

    def _check_queues(self, qids):
        qids = as_list(qids, "queues") or []
        for qid in qids:
            self._queue(qid)
        return qids

    @staticmethod
    def _client_ip(ctx):
        h = ctx["headers"]
        fwd = h.get("X-Forwarded-For")
        return h.get("X-Real-IP") or (fwd.split(",")[0].strip() if fwd
                                      else ctx["ip"])

    def ep_workers_register(self, req, ctx):
        self._require(req, "worker")
        timeout = req.get("timeout", DEFAULT_WORKER_TIMEOUT)
        if not isinstance(timeout, int) or timeout <= 0:
            raise ApiError(400, 12, "timeout must be a positive integer")
        qids = self._check_queues(req.get("queues"))
        self._new_worker(req["worker"], timeout, qids, req.get("tags"),
                         req.get("system_tags"), self._client_ip(ctx))
        return {}

    def ep_workers_status_report(self, req, ctx):
        self._require(req, "worker", "timestamp")
        wid = req["worker"]
        task = req.get("task")
        if task:
            t = self._task(task)
        qids = self._check_queues(req.get("queues"))
        w = self.workers.get(wid)
        if w is None:
            w = self._new_worker(wid, DEFAULT_WORKER_TIMEOUT, qids,
                                 req.get("tags"), req.get("system_tags"),
                                 self._client_ip(ctx))
        now = time.time()
        w["last_activity_time"] = w["last_report_time"] = now
        w["ip"] = self._client_ip(ctx)
        w["_expires"] = now + w["register_timeout"]
        if qids:
            w["queues"] = qids
        if "tags" in req:
            w["tags"] = list(req["tags"] or [])
        w["task"] = task or None
        w["queue"] = req.get("queue") or None
        if task:
            t["last_worker"] = wid
            t["last_worker_report"] = now
            t["last_update"] = now
        return {}

    def ep_workers_unregister(self, req, ctx):
        self._require(req, "worker")
        self.workers.pop(req["worker"], None)
        return {}

    def _queue_brief(self, qid):
        q = self.queues.get(qid)
        if q is None:
            return {"id": qid, "name": None, "num_tasks": 0}
        out = {"id": q["id"], "name": q["name"],
               "num_tasks": len(q["entries"])}
        if q.get("display_name"):
            out["display_name"] = q["display_name"]
        if q["entries"]:
            nt = self.tasks.get(q["entries"][0]["task"])
            out["next_task"] = {"id": q["entries"][0]["task"],
                                "name": nt["name"] if nt else None}
        return out

    def _worker_out(self, w):
        out = {"key": w["key"], "id": w["id"],
               "user": dict(self.user), "company": dict(self.company),
               "ip": w["ip"], "register_time": iso(w["register_time"]),
               "last_activity_time": iso(w["last_activity_time"]),
               "register_timeout": w["register_timeout"],
               "tags": list(w["tags"]), "system_tags": list(w["system_tags"]),
               "queues": [self._queue_brief(q) for q in w["queues"]]}
        if w["last_report_time"] is not None:
            out["last_report_time"] = iso(w["last_report_time"])
        if w["task"]:
            t = self.tasks.get(w["task"])
            info = {"id": w["task"], "name": t["name"] if t else None}
            dur = 0
            if t is not None and t.get("started"):
                dur = int((time.time() - t["started"]) * 1000) \
                    if t["status"] == "in_progress" \
                    else int((t.get("active_duration") or 0) * 1000)
            info["running_time"] = dur
            if t is not None:
                info["last_iteration"] = t.get("last_iteration", 0)
            out["task"] = {k: v for k, v in info.items() if v is not None}
            if t is not None and t.get("project") in self.projects:
                p = self.projects[t["project"]]
                out["project"] = {"id": p["id"], "name": p["name"]}
            if w["queue"] in w["queues"]:
                out["queue"] = self._queue_brief(w["queue"])
        return out

    def _workers_filtered(self, req, last_seen_default):
        last_seen = req.get("last_seen", last_seen_default)
        if not isinstance(last_seen, int) or last_seen < 0:
            raise ApiError(400, 12, "last_seen must be a non-negative "
                           "integer")
        pattern = req.get("worker_pattern")
        tags = as_list(req.get("tags"), "tags")
        stags = as_list(req.get("system_tags"), "system_tags")
        now = time.time()
        for w in self.workers.values():
            if last_seen and w["last_activity_time"] < now - last_seen:
                continue
            if pattern and not fnmatch.fnmatchcase(w["id"], pattern):
                continue
            if not tags_match(w["tags"], tags) or \
                    not tags_match(w["system_tags"], stags):
                continue
            yield w

    def ep_workers_get_all(self, req, ctx):
        # The real server scans Redis keys: the order is not the order of
        # registration, nor the same from one call to the next.
        out = [self._worker_out(w) for w in self._workers_filtered(req, 3600)]
        random.shuffle(out)
        return {"workers": out}

    def ep_workers_get_count(self, req, ctx):
        return {"count": sum(1 for _ in self._workers_filtered(req, 0))}

    # ---------------------------------------------------------- projects

    def ep_projects_create(self, req, ctx):
        self._require(req, "name")
        name = req["name"]
        if not isinstance(name, str) or not name.strip("/ "):
            raise ApiError(400, 407, name=name)
        if any(p["name"] == name for p in self.projects.values()):
            raise ApiError(400, 801, name=name)
        now = time.time()
        p = {"id": new_id(), "name": name,
             "basename": name.rsplit("/", 1)[-1],
             "description": req.get("description", ""),
             "company": self.company["id"], "user": self.user["id"],
             "created": now, "last_update": now,
             "tags": list(req.get("tags") or []),
             "system_tags": list(req.get("system_tags") or [])}
        if req.get("default_output_destination"):
            p["default_output_destination"] = req["default_output_destination"]
        self.projects[p["id"]] = p
        return {"id": p["id"]}

    def _project_out(self, p):
        out = dict(p)
        out["created"] = iso(p["created"])
        out["last_update"] = iso(p["last_update"])
        return out

    def ep_projects_get_all(self, req, ctx):
        ids = as_list(req.get("id"), "id")
        name_re = compile_regex(req["name"]) if req.get("name") else None
        out = [self._project_out(p) for p in self.projects.values()
               if (ids is None or p["id"] in ids)
               and (name_re is None or name_re.search(p["name"]))]
        out = self._page(out, req)
        fields = as_list(req.get("only_fields"), "only_fields")
        if fields:
            out = [project_fields(p, fields) for p in out]
        return {"projects": out}

    def ep_projects_get_by_id(self, req, ctx):
        self._require(req, "project")
        p = self.projects.get(req["project"])
        if p is None:
            raise ApiError(400, 401, id=req["project"],
                           company=self.company["id"])
        return {"project": self._project_out(p)}

    # ------------------------------------------------------------ events

    EVENT_FIELDS = {"training_stats_scalar": ("metric", "variant", "value"),
                    "log": ("msg",)}

    def _add_event(self, ev):
        """Store one event; returns None or why it was refused."""
        if not isinstance(ev, dict):
            return "event is not an object"
        etype = ev.get("type")
        if etype not in self.EVENT_FIELDS:
            return "unsupported event type %r" % (etype,)
        tid = ev.get("task")
        if tid not in self.tasks or \
                self.tasks[tid]["status"] in ("published", "publishing"):
            return "Invalid task id"    # locked tasks take no events
        for f in self.EVENT_FIELDS[etype]:
            if f not in ev:
                return "missing field %s" % f
        if etype == "training_stats_scalar" and \
                not isinstance(ev["value"], (int, float)):
            return "value is not a number"
        stored = dict(ev)
        stored.setdefault("timestamp", int(time.time() * 1000))
        if etype == "training_stats_scalar":
            stored.setdefault("iter", 0)
        if etype == "log":
            stored.setdefault("level", "info")
        stored["@timestamp"] = iso(time.time())
        self.events.setdefault(tid, []).append(stored)
        t = self.tasks[tid]
        if etype == "training_stats_scalar":
            # as the server does: the task's last_iteration is the highest
            t["last_iteration"] = max(t.get("last_iteration") or 0,
                                      int(stored["iter"]))
        t["last_update"] = time.time()
        return None

    def ep_events_add(self, req, ctx):
        why = self._add_event(req)
        if why:
            raise ApiError(400, 12, why)
        return {}

    def ep_events_add_batch(self, req, ctx):
        reqs = req["requests"]
        if not reqs:
            raise ApiError(400, 17)
        added, errors = 0, {}
        for ev in reqs:
            why = self._add_event(ev)
            if why:
                errors[why] = errors.get(why, 0) + 1
            else:
                added += 1
        if not added:
            raise ApiError(400, 131, **errors)
        return {"added": added, "errors": sum(errors.values()),
                "errors_info": errors}

    # --------------------------------------------------------- for /sim

    def set_fault(self, mode, seconds, delay_ms=None):
        if mode not in ("down", "500", "html500", "slow", "none"):
            raise ValueError("mode must be down, 500, html500, slow or none")
        with self.lock:
            if mode == "none" or seconds <= 0:
                self.fault = None
            else:
                self.fault = {"mode": mode, "until": time.time() + seconds,
                              "delay": (delay_ms if delay_ms is not None
                                        else 3000) / 1000.0}
        self.log("fault", target="clearml", mode=mode, seconds=seconds)

    def fault_envelope(self, path):
        """The answer of a call during a '500' outage."""
        m = PATH_RE.match(path)
        name = m.group("name") if m else path
        call_id = new_id()
        endpoint = {"name": name, "requested_version": MAX_VERSION,
                    "actual_version": None}
        return self._envelope(call_id, call_id, endpoint, 500, 0,
                              "General server error (injected outage)",
                              "Traceback (most recent call last):\n  "
                              "injected by cloudsim\n", {})

    def current_fault(self):
        with self.lock:
            f = self.fault
            if f is not None and f["until"] <= time.time():
                self.fault = f = None
            return dict(f) if f else None

    def snapshot_tasks(self):
        with self.lock:
            out = []
            for t in self.tasks.values():
                q = self.queues.get(t["execution"].get("queue") or "")
                out.append({"id": t["id"], "name": t["name"],
                            "queue": q["name"] if q else None,
                            "status": t["status"],
                            "enqueued": t["_enqueued"],
                            "started": t.get("_run_started"),
                            "ended": t.get("_ended"),
                            "worker": t.get("last_worker")})
            return out

    def task_info(self, tid):
        with self.lock:
            t = self.tasks.get(tid)
            return dict(t) if t else None
