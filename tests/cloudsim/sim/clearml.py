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
from datetime import datetime, timezone

from .files import FileStore
from .util import iso, new_id

MAX_VERSION = "2.31"
SERVER_VERSION = "2.0.0"
SERVER_BUILD = "cloudsim"
SERVER_COMMIT = "cloudsim"
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
    "tasks.get_hyper_params": "2.9",
    "tasks.edit_hyper_params": "2.9",
    "tasks.add_or_update_artifacts": "2.10",
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
    "server.info": "2.1 2.8 2.12",
    "queues.get_queue_metrics": "2.4 2.20",
}
NO_AUTH = {"debug.ping"}
# What only a worker (an agent) calls: a session that calls one of these
# is an agent's.
WORKER_ENDPOINTS = {"workers.register", "workers.status_report",
                    "workers.unregister", "queues.get_next_task"}

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


# ------------------------------------------------------------ get_all reading
# How the server reads the query of a get_all (database/model/base.py there):
# list fields, regex fields, datetime and range fields, _any_/_all_, and
# search_text.  A filter the server knows but cloudsim does not implement
# is an error here, never silently ignored (the answer would be too big).

MAX_PAGE_SIZE = 500
SCROLL_TTL = 600
DATE_PREFIX_RE = re.compile(r"^(?P<prefix>>=|>|<=|<)?(?P<value>.*)$")


def path_values(doc, path):
    """Every value at a dotted path, lists flattened on the way."""
    cur = [doc]
    for p in path.split("."):
        nxt = []
        for c in cur:
            if isinstance(c, dict) and c.get(p) is not None:
                v = c[p]
                nxt.extend(v if isinstance(v, list) else [v])
        cur = nxt
    return cur


def parse_dt(value, field):
    """An ISO-8601 date or datetime as epoch ms (naive is UTC).  The server
    skips a date it cannot read; cloudsim refuses it, so that a client's
    mistake shows."""
    try:
        s = value.strip()
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        dt = datetime.fromisoformat(s)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return int(round(dt.timestamp() * 1000))
    except (ValueError, AttributeError, TypeError, OverflowError):
        raise ApiError(400, 16, "failed parsing query field",
                       error="not a date: %r" % (value,), field=field)


def list_filter(field, data, have):
    """A list field (id, status, tags, ...): values match any of them,
    '-v' or '__$not' v excludes, '__$all'/'__$and' and '__$any'/'__$or'
    switch the context, '__$nop' resets it, None also matches an empty
    field.  An empty list is no filter at all, as on the server."""
    if not isinstance(data, list):
        data = [data]
    actions = {"in": [], "nin": [], "all": []}
    ops = {"__$all": "and", "__$and": "and", "__$any": "or", "__$or": "or"}
    context, global_op, legacy, unary, allow_empty = "or", None, True, \
        False, False
    for v in data:
        if v is None:
            unary = False
            global_op = global_op or "and"
            allow_empty = True
            continue
        if not isinstance(v, str):
            raise ApiError(400, 16, "invalid value type, string expected",
                           field=field, value=v)
        if v == "__$nop":
            unary = False
            global_op = global_op or "and"
            context, legacy = "or", True
            continue
        if v.startswith("__$"):
            if unary:
                raise ApiError(400, 16, "Value is expected after",
                               field=field, operator="__$not")
            if v == "__$not":
                unary = True
                continue
            if v not in ops:
                raise ApiError(400, 16, "Unsupported operator",
                               field=field, operator=v)
            context, legacy = ops[v], False
            global_op = global_op or ops[v]
            continue
        global_op = global_op or "and"
        include = True
        if unary:
            include, unary = False, False
        elif legacy and v.startswith("-"):
            v, include = v[1:], False
            if not v:
                raise ApiError(400, 16, "Missing value after the exclude "
                               "prefix -", field=field)
        if not include:
            actions["nin"].append(v)
        else:
            actions["all" if context == "and" else "in"].append(v)
    if unary:
        raise ApiError(400, 16, "Value is expected after",
                       operator="__$not")
    results = []
    if actions["in"]:
        results.append(any(v in have for v in actions["in"]))
    if actions["nin"]:
        results.append(not any(v in have for v in actions["nin"]))
    if actions["all"]:
        results.append(all(v in have for v in actions["all"]))
    if not results:
        ok = True
    elif global_op == "or":
        ok = any(results)
    else:
        ok = all(results)
    return ok or (allow_empty and not have)


def range_filter(field, data, have, conv):
    """[min, max], both included; a None min also matches a missing
    value."""
    if not isinstance(data, list) or len(data) != 2:
        raise ApiError(400, 12, "Min and max values should be specified "
                       "for range field %s" % field)
    lo, hi = data
    if lo is None and hi is None:
        raise ApiError(400, 12, "At least one of min or max values should "
                       "be provided for field %s" % field)
    lo = None if lo is None else conv(lo, field)
    hi = None if hi is None else conv(hi, field)
    if not have:
        return lo is None
    return any((lo is None or v >= lo) and (hi is None or v <= hi)
               for v in have)


def number(v, field):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ApiError(400, 16, "failed parsing query field",
                       error="not a number: %r" % (v,), field=field)
    return v


def dates_filter(field, data, have_ms):
    """A datetime field: '>=D', '>D', '<=D', '<D' or 'D' (equal), one or
    a list of them; a list of two without operators is a range."""
    if not isinstance(data, list):
        data = [data]
    if len(data) == 2 and not any(isinstance(d, str) and d.startswith(
            (">", "<")) for d in data if d is not None):
        return range_filter(field, data, have_ms, parse_dt)
    conds = {}
    for d in data:
        if not isinstance(d, str):
            raise ApiError(400, 16, "failed parsing query field",
                           error="expected a date string", field=field)
        m = DATE_PREFIX_RE.match(d)
        conds[m.group("prefix") or "="] = parse_dt(m.group("value"), field)
    if not conds:
        return True
    tests = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b,
             "<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
             "=": lambda a, b: a == b}
    return any(all(tests[op](v, ref) for op, ref in conds.items())
               for v in have_ms)


def text_terms(search):
    """Mongo's $text search string: "quoted phrases", -negated terms,
    other terms."""
    phrases = [p.lower() for p in re.findall(r'"([^"]*)"', search)
               if p.strip()]
    rest = re.sub(r'"[^"]*"', " ", search)
    terms, negated = [], []
    for w in rest.split():
        (negated if w.startswith("-") else terms).extend(
            x.lower() for x in re.findall(r"\w+", w))
    return phrases, terms, negated


def text_match(texts, search):
    """A document matches when it holds every phrase, any term (if
    there are terms), and no negated term; words are compared whole and
    case-insensitively (no stemming, no stop words).  Only negated terms
    match nothing, as in Mongo."""
    phrases, terms, negated = search
    text = " ".join(texts).lower()
    words = set(re.findall(r"\w+", text))
    if not phrases and not terms:
        return False
    if any(w in words for w in negated):
        return False
    if any(p not in text for p in phrases):
        return False
    return not terms or any(w in words for w in terms)


class QueryShape:
    """What a get_all of one kind of document filters on."""

    def __init__(self, lists=(), patterns=("name",), dates=(), ranges=None,
                 text=None, unsupported=()):
        self.lists = lists
        self.patterns = patterns
        self.dates = dates
        self.ranges = ranges or {}  # {field: converter}
        self.text = text            # fields of the text index, or None
        self.unsupported = unsupported


def doc_ms(doc, field):
    return [int(round(v * 1000)) for v in path_values(doc, field)
            if isinstance(v, (int, float))]


def multi_field(doc, key, value, shape):
    """_any_/_or_ and _all_/_and_: {fields, pattern} (a case-insensitive
    regex) or {fields, datetime}."""
    if not isinstance(value, dict) or set(value) - {"fields", "pattern",
                                                    "datetime"} \
            or (value.get("pattern") is None) == \
            (value.get("datetime") is None) \
            or not isinstance(value.get("fields"), list):
        raise ApiError(400, 16, "failed parsing query field",
                       error="incorrect field format: field=%s" % key,
                       field=key)
    fields = value.get("fields") or []
    if not fields:
        return True
    combine = any if key in ("_any_", "_or_") else all
    if value.get("pattern") is not None:
        try:
            rx = re.compile(value["pattern"], re.IGNORECASE)
        except (re.error, TypeError) as e:
            raise ApiError(400, 21, str(e), pattern=value["pattern"])
        return combine(any(isinstance(v, str) and rx.search(v)
                           for v in path_values(doc, f)) for f in fields)
    fields = [f for f in fields if f in shape.dates]
    if not fields:
        return True
    return combine(dates_filter(f, value["datetime"], doc_ms(doc, f))
                   for f in fields)


def query_match(doc, req, shape, compiled):
    """Whether a stored document (times as epoch seconds) matches."""
    for f in shape.lists:
        if f in req and req[f] is not None:
            if not list_filter(f, req[f], path_values(doc, f)):
                return False
    for f, rx in compiled.items():
        if not any(isinstance(v, str) and rx.search(v)
                   for v in path_values(doc, f)):
            return False
    for f in shape.dates:
        if req.get(f) is not None and \
                not dates_filter(f, req[f], doc_ms(doc, f)):
            return False
    for f, conv in shape.ranges.items():
        if req.get(f) is not None:
            have = doc_ms(doc, f) if conv is parse_dt else \
                [v for v in path_values(doc, f)
                 if isinstance(v, (int, float))]
            if not range_filter(f, req[f], have, conv):
                return False
    for key in ("_any_", "_or_", "_all_", "_and_"):
        if key in req and not multi_field(doc, key, req[key], shape):
            return False
    if req.get("search_text"):
        texts = [v for f in shape.text for v in path_values(doc, f)
                 if isinstance(v, str)]
        if not text_match(texts, text_terms(req["search_text"])):
            return False
    return True


def query_prepare(req, shape):
    """Checks a get_all request once: the regexes compiled, the filters
    cloudsim does not serve refused."""
    for k in req:
        for u in shape.unsupported:
            if k == u or (u.endswith(".*") and k.startswith(u[:-1])):
                raise ApiError(400, 12, "cloudsim does not filter on %s"
                               % k, field=k)
    if req.get("search_text") and shape.text is None:
        # no text index on this collection: Mongo fails the query
        raise ApiError(500, 0, msg="General server error (text index "
                       "required for $text query)")
    if req.get("search_text") is not None and \
            not isinstance(req["search_text"], str):
        raise ApiError(400, 12, "search_text must be a string")
    # every filter read once on an empty document, so that a malformed
    # one is refused even when there is nothing to match it against
    for f in shape.lists:
        if req.get(f) is not None:
            list_filter(f, req[f], [])
    for f in shape.dates:
        if req.get(f) is not None:
            dates_filter(f, req[f], [])
    for f, conv in shape.ranges.items():
        if req.get(f) is not None:
            range_filter(f, req[f], [], conv)
    for key in ("_any_", "_or_", "_all_", "_and_"):
        if key in req:
            multi_field({}, key, req[key], shape)
    return {f: compile_regex(req[f], f) for f in shape.patterns
            if req.get(f)}


TASK_QUERY = QueryShape(
    lists=("id", "user", "tags", "system_tags", "type", "status", "project",
           "parent", "execution.queue"),
    patterns=("name", "comment", "report"),
    dates=("status_changed", "last_update", "last_change"),
    ranges={"created": parse_dt, "started": parse_dt,
            "active_duration": number, "last_iteration": number},
    text=("name", "id", "comment", "report", "models.input.model",
          "models.output.model", "script.repository", "script.entry_point"),
    unsupported=("hyperparams.*", "last_metrics.*", "runtime.*",
                 "models.input.model", "filters"))
QUEUE_QUERY = QueryShape(lists=("id", "tags", "system_tags"),
                         unsupported=("metadata.*", "filters"))
PROJECT_QUERY = QueryShape(lists=("id", "tags", "system_tags", "parent"),
                           patterns=("name", "basename", "description"),
                           ranges={"last_update": parse_dt},
                           text=("name", "id", "description"),
                           unsupported=("path", "filters"))

class ClearML:
    """State of the fake server and its endpoints."""

    def __init__(self, log, token_ttl=None):
        self.lock = threading.RLock()
        self.log = log
        self.jwt_key = secrets.token_bytes(32)
        self.uid = new_id()
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
        self.files = FileStore(self)

    def reset(self):
        with self.lock:
            self.queues = {}
            self.tasks = {}
            self.workers = {}
            self.projects = {}
            self.events = {}
            self.fault = None
            self.calls = {}            # client -> endpoint -> count
            self.session_calls = {}    # token session -> endpoint -> count
            self.agent_sessions = set()
            self.scrolls = {}          # scroll_id -> {position, expires}
            self.queue_samples = []    # (ms, queue, avg wait s, length)

    # ------------------------------------------------------------ calls

    def handle(self, path, headers, body_raw, query, client_ip):
        """Serve one API call.  Returns (http_status, content_type, bytes)."""
        call_id = new_id()
        trx = headers.get("X-ClearML-Trx") or call_id
        m = PATH_RE.match(path)
        if not m:
            return self._plain(400, "Invalid request path %s" % path)
        name = m.group("name")
        ctx = {"ident": None, "headers": headers, "ip": client_ip,
               "version": None, "session": None}
        try:
            return self._handle(name, m, headers, body_raw, query, ctx,
                                call_id, trx)
        finally:
            self._count_call(headers, name, ctx)

    def _handle(self, name, m, headers, body_raw, query, ctx, call_id, trx):
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
            ctx["version"] = actual
            if name not in NO_AUTH:
                ctx["ident"] = self._authenticate(headers)
            req = self._parse_request(name, body_raw, query, headers)
            fn = getattr(self, "ep_" + name.replace(".", "_"))
            with self.lock:
                self._expire_workers()
                data = fn(req, ctx=ctx)
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

    def _count_call(self, headers, name, ctx):
        """Calls by who made them, for the benchmarks: "qscale" (its
        User-Agent), "agent" (ClearML agents, the simulated ones or real
        ones), "other" (autoscalers of other makes, scripts, simctl).

        Not by X-ClearML-Worker: the SDK and clearml-agent send the host
        name there on every call, an autoscaler too.  A caller is known by
        the session its token was issued for: a session that ever acts as
        a worker (registers, reports, pops a queue) is an agent's, and all
        its calls count as the agent's, even those made before it first
        acted so (auth.login, the queue look-up).  A call made with Basic
        credentials and no token counts by what it is."""
        if (headers.get("User-Agent") or "").startswith("qscale/"):
            client, session = "qscale", None
        else:
            client = "agent" if name in WORKER_ENDPOINTS else "other"
            session = ctx.get("session") or self._token_session(headers)
        with self.lock:
            if session is not None:
                per = self.session_calls.setdefault(session, {})
                if client == "agent":
                    self.agent_sessions.add(session)
            else:
                per = self.calls.setdefault(client, {})
            per[name] = per.get(name, 0) + 1

    @staticmethod
    def _token_session(headers):
        """The session id in a Bearer token, unverified (a token that is
        refused still tells whose call it was)."""
        scheme, _, value = (headers.get("Authorization") or "").strip() \
            .partition(" ")
        if scheme.lower() != "bearer":
            return None
        parts = value.strip().split(".")
        try:
            claims = json.loads(b64url_decode(parts[1]))
            sid = claims.get("session_id")
        except (ValueError, TypeError, IndexError, AttributeError):
            return None
        return sid if isinstance(sid, str) else None

    def snapshot_calls(self):
        with self.lock:
            out = {c: dict(per) for c, per in self.calls.items()}
            for sid, per in self.session_calls.items():
                client = "agent" if sid in self.agent_sessions else "other"
                dst = out.setdefault(client, {})
                for ep, n in per.items():
                    dst[ep] = dst.get(ep, 0) + n
            return out

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

    def make_jwt(self, key, lifetime, session=None):
        now = int(time.time())
        claims = {
            "identity": {"user": self.user["id"],
                         "company": self.company["id"], "role": "user",
                         "user_name": self.user["name"],
                         "company_name": self.company["name"]},
            "auth_type": "Bearer", "iat": now, "exp": now + int(lifetime),
            "session_id": session or new_id(), "env": "<unknown>",
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

    def ep_server_info(self, req, ctx):
        """Per handler version: 2.8 adds uid; 2.12 adds api_version and
        (as on the server, whose 2.12 handler builds on the 2.1 one) has no
        uid."""
        data = {"version": SERVER_VERSION, "build": SERVER_BUILD,
                "commit": SERVER_COMMIT}
        if ctx["version"] == "2.8":
            data["uid"] = self.uid
        elif ctx["version"] == "2.12":
            data["api_version"] = MAX_VERSION
        return data

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
        ctx["session"] = new_id()
        return {"token": self.make_jwt(ctx["ident"]["key"], lifetime,
                                       ctx["session"])}

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
        # at least 3 characters once stripped, as the server wants them
        # (it also stores them stripped; cloudsim keeps them as given, so
        # that tests can make names such as "gpu\n")
        if not isinstance(name, str) or len(name.strip()) < 3:
            raise ApiError(400, 12, "queue name must be a string of at "
                           "least 3 characters", name=name)
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
            self._queue_sample(q)
        return before - len(q["entries"])

    def _add_to_queue(self, q, tid):
        if any(e["task"] == tid for e in q["entries"]):
            raise ApiError(400, 706, task=tid, queue=q["id"])
        now = time.time()
        q["entries"].append({"task": tid, "added": now})
        q["last_update"] = now
        self._queue_sample(q)

    # ------------------------------------------------------------ queues

    def ep_queues_create(self, req, ctx):
        self._require(req, "name")
        q = self._new_queue(req["name"], req.get("tags"),
                            req.get("system_tags"), req.get("display_name"),
                            req.get("metadata"))
        self.log("queue-create", queue=q["name"], id=q["id"])
        return {"id": q["id"]}

    def ep_queues_get_all(self, req, ctx):
        compiled = query_prepare(req, QUEUE_QUERY)
        hidden_ok = bool(req.get("id") or req.get("name") or
                         req.get("search_hidden"))
        out = [q for q in self.queues.values()
               if (hidden_ok or "k8s-glue" not in q["tags"])
               and query_match(q, req, QUEUE_QUERY, compiled)]
        out = self._order(out, req)
        out, scroll = self._page(out, req)
        out = [self._queue_out(q, req.get("max_task_entries")) for q in out]
        fields = as_list(req.get("only_fields"), "only_fields")
        if fields:
            out = [project_fields(q, fields) for q in out]
        return self._with_scroll({"queues": out}, scroll)

    @staticmethod
    def _order(docs, req):
        """order_by ("-" for descending), then id as the server adds it;
        an unset value sorts last either way."""
        keys = as_list(req.get("order_by"), "order_by") or []
        if keys and not any(k.lstrip("-+") == "id" for k in keys):
            keys = keys + ["id"]

        def key_of(field):
            def key(d):
                v = path_values(d, field)
                v = v[0] if v else None
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    return (0, v, "")
                return (0, 0, str(v)) if v is not None else (1, 0, "")
            return key

        for k in reversed(keys):
            rev = k.startswith("-")
            k = k.lstrip("-+")
            present = [d for d in docs if path_values(d, k)]
            missing = [d for d in docs if not path_values(d, k)]
            docs = sorted(present, key=key_of(k), reverse=rev) + missing
        return docs

    def _page(self, items, req):
        """One page, as the server's get_many cuts it.  With scroll_id (even
        empty or unknown: a new scroll) the next size items from where the
        scroll stands, refresh_scroll starting again from 0 with at least
        as many; size is required and not capped.  Otherwise page and
        page_size, page_size at most 500 and 500 when not given, so an
        answer never holds more than 500 items.  Returns (items,
        scroll_id or None)."""
        if "scroll_id" in req:
            size = req.get("size")
            if not isinstance(size, int) or isinstance(size, bool) or \
                    size < 1:
                raise ApiError(400, 12, "Integer size parameter greater "
                               "than 1 should be provided when working "
                               "with scroll")
            now = time.time()
            for sid in [k for k, v in self.scrolls.items()
                        if v["expires"] <= now]:
                del self.scrolls[sid]
            sid = req["scroll_id"]
            st = self.scrolls.get(sid) if isinstance(sid, str) else None
            if st is None:
                sid = new_id()
                st = {"position": 0}
            if req.get("refresh_scroll"):
                size = max(st["position"], size)
                st["position"] = 0
            start = st["position"]
            out = items[start:start + size]
            st["position"] = start + len(out)
            st["expires"] = now + SCROLL_TTL
            self.scrolls[sid] = st
            return out, sid
        page, size = req.get("page"), req.get("page_size")
        for k, v in (("page", page), ("page_size", size)):
            if v is not None and (not isinstance(v, int) or
                                  isinstance(v, bool)):
                raise ApiError(400, 12, "%s must be an integer" % k,
                               field=k)
        if page is not None and page < 0:
            raise ApiError(400, 12, "page must be >=0", field="page")
        if size is not None and size < 1:
            raise ApiError(400, 12, "page_size must be >0",
                           field="page_size")
        size = min(size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        page = page or 0
        return items[page * size:(page + 1) * size], None

    @staticmethod
    def _with_scroll(data, scroll):
        if scroll is not None:
            data["scroll_id"] = scroll
        return data

    MAX_QUEUE_SAMPLES = 200000

    def _queue_sample(self, q):
        """What the server logs for queues.get_queue_metrics after each
        change of a queue: its length and the mean wait of its entries."""
        now = time.time()
        n = len(q["entries"])
        wait = sum(now - e["added"] for e in q["entries"]) / n if n else 0
        self.queue_samples.append((int(now * 1000), q["id"], wait, n))
        if len(self.queue_samples) > self.MAX_QUEUE_SAMPLES:
            del self.queue_samples[:len(self.queue_samples) // 10]

    def ep_queues_get_queue_metrics(self, req, ctx):
        """The server's date histogram: buckets of interval seconds (from
        the epoch, empty ones left out), from an hour before from_date to
        to_date; in each, per queue, the sample with the longest mean wait.
        With queue_ids, one series per queue that has samples; without,
        one series "total" (lengths summed, waits weighted by length, a
        queue without a sample in a bucket counted with its last one)."""
        for k in ("from_date", "to_date"):
            v = req.get(k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or \
                    v < 0:
                raise ApiError(400, 12, "%s: a number of seconds since the "
                               "epoch is required" % k, field=k)
        interval = req.get("interval")
        if isinstance(interval, bool) or not isinstance(interval, int) or \
                interval < 1:
            raise ApiError(400, 12, "interval: an integer of at least 1 is "
                           "required", field="interval")
        wanted = as_list(req.get("queue_ids"), "queue_ids") or []
        per_queue = bool(wanted)
        qids = [q["id"] for q in self.queues.values()
                if (not wanted or q["id"] in wanted)
                and (req.get("search_hidden") or "k8s-glue" not in q["tags"])]
        if not qids:
            return {"queues": []}
        if req.get("refresh"):
            for qid in qids:
                self._queue_sample(self.queues[qid])
        frm, to = req["from_date"], req["to_date"]
        if frm >= to:
            raise ApiError(400, 16, "from_date must be less than to_date")
        lo, hi = int(frm - 3600) * 1000, int(to) * 1000
        step = interval * 1000
        buckets = {}
        for ms, qid, wait, n in self.queue_samples:
            if lo <= ms <= hi and qid in qids:
                b = buckets.setdefault(ms // step * step, {})
                if qid not in b or (wait, n) > b[qid]:
                    b[qid] = (wait, n)
        chart_start = (frm - interval) * 1000
        series = {}
        last = {}
        for key in sorted(buckets):
            b = buckets[key]
            if per_queue:
                if key >= chart_start:
                    for qid, (wait, n) in b.items():
                        series.setdefault(qid, []).append((key, wait, n))
                continue
            last.update(b)
            if key < chart_start:
                continue
            total = sum(n for _, n in last.values())
            avg = sum(w * n / total for w, n in last.values()) if total \
                else 0
            series.setdefault("total", []).append((key, avg, total))
        if not per_queue:
            series.setdefault("total", [])
        return {"queues": [
            {"queue": qid, "dates": [d for d, _, _ in pts],
             "avg_waiting_times": [w for _, w, _ in pts],
             "queue_lengths": [n for _, _, n in pts]}
            for qid, pts in series.items()]}

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
        self._queue_sample(q)
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
             "_enqueued": None, "enqueue_status": None}
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
        compiled = query_prepare(req, TASK_QUERY)
        if req.get("include_subprojects") and req.get("project"):
            raise ApiError(400, 12, "cloudsim has no subprojects: "
                           "include_subprojects is not served")
        hidden_ok = bool(req.get("search_hidden") or req.get("id"))
        out = [t for t in self.tasks.values()
               if (hidden_ok or "hidden" not in t["system_tags"])
               and query_match(t, req, TASK_QUERY, compiled)]
        out = [self._task_out(t) for t in out]
        out = self._order(out, req)
        out, scroll = self._page(out, req)
        fields = as_list(req.get("only_fields"), "only_fields")
        if fields:
            out = [project_fields(d, fields) for d in out]
        return self._with_scroll({"tasks": out}, scroll)

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

    def _task_for_update(self, t, force, properties_only=False):
        """As the real server: a task that is not "created" takes
        edits only with force and while queued or in progress; user
        properties alone go in any status."""
        if properties_only:
            return
        allowed = ["created"] + (["queued", "in_progress"] if force else [])
        if t["status"] not in allowed:
            raise ApiError(400, 110, "invalid task status",
                           expected="created", status=t["status"])

    def ep_tasks_get_hyper_params(self, req, ctx):
        self._require(req, "tasks")
        ids = as_list(req["tasks"], "tasks")
        out = []
        for tid in ids:
            t = self._task(tid)
            items = [dict(v) for sec in t["hyperparams"].values()
                     for v in sec.values()]
            items.sort(key=lambda p: (p.get("section", ""),
                                      p.get("name", "")))
            out.append({"task": tid, "hyperparams": items})
        return {"params": out}

    def ep_tasks_edit_hyper_params(self, req, ctx):
        self._require(req, "task", "hyperparams")
        t = self._task(req["task"])
        items = req["hyperparams"]
        if not isinstance(items, list) or not all(
                isinstance(p, dict) and isinstance(p.get("section"), str)
                and isinstance(p.get("name"), str) for p in items):
            raise ApiError(400, 12, "Validation error (hyperparams: "
                           "expected a list of {section, name, value})")
        for p in items:
            if p["section"].lower() == "properties":
                p["section"] = "properties"
        props_only = all(p["section"] == "properties" for p in items)
        self._task_for_update(t, req.get("force"), props_only)
        replace = req.get("replace_hyperparams", "none")
        if replace not in ("none", "section", "all"):
            raise ApiError(400, 12, "Validation error "
                           "(replace_hyperparams: none, section or all)")
        if replace == "all":
            t["hyperparams"] = {}
        for sec in {p["section"] for p in items} if replace == "section" \
                else ():
            t["hyperparams"].pop(sec, None)
        for p in items:
            item = {k: p[k] for k in ("section", "name", "value", "type",
                                      "description") if k in p}
            t["hyperparams"].setdefault(p["section"], {})[p["name"]] = item
        if not props_only:
            t["last_update"] = time.time()
        return {"updated": 1}

    def ep_tasks_add_or_update_artifacts(self, req, ctx):
        self._require(req, "task", "artifacts")
        t = self._task(req["task"])
        arts = req["artifacts"]
        if not isinstance(arts, list) or not all(
                isinstance(a, dict) and isinstance(a.get("key"), str)
                and isinstance(a.get("type"), str) for a in arts):
            raise ApiError(400, 12, "Validation error (artifacts: expected "
                           "a list of {key, type, ...})")
        self._task_for_update(t, req.get("force"))
        ex = t.setdefault("execution", {})
        have = {(a["key"], a.get("mode", "output")): a
                for a in ex.get("artifacts") or []}
        for a in arts:
            have[(a["key"], a.get("mode", "output"))] = dict(a)
        ex["artifacts"] = list(have.values())
        t["last_update"] = time.time()
        return {"updated": 1}

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
        # Never last_worker here: the real server takes it only from a
        # workers.status_report naming the task, and X-ClearML-Worker holds
        # the caller's host name, not a worker id.
        if new == "queued" and "development" in t["system_tags"]:
            t["system_tags"] = [x for x in t["system_tags"]
                                if x != "development"]
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
        """tasks.stopped/failed/completed: completed is set, active_duration
        is left as the last tasks.ping made it."""
        now = time.time()
        t["completed"] = now
        t["_ended"] = now
        fields["completed"] = iso(now)

    def ep_tasks_started(self, req, ctx):
        self._require(req, "task")
        t = self._task(req["task"])
        rerun = not (t["status"] == "in_progress" and t.get("started"))
        fields = self._set_status(t, "in_progress", bool(req.get("force")),
                                  req.get("status_reason"),
                                  req.get("status_message"), ctx)
        if rerun:
            # a new run: started now, the last run's end and duration
            # forgotten (running_time is 0 until the first tasks.ping)
            now = time.time()
            t["started"] = now
            t.pop("completed", None)
            t["active_duration"] = None
            t["_ended"] = None
            t["_run_started"] = now
            fields["started"] = iso(now)
        # the server answers started = updated, for a new run or not
        return {"updated": 1, "fields": fields, "started": 1}

    def ep_tasks_stopped(self, req, ctx):
        t, fields = self._status_call(req, ctx, "stopped")
        self._finish(t, fields)
        return {"updated": 1, "fields": fields}

    def ep_tasks_failed(self, req, ctx):
        t, fields = self._status_call(req, ctx, "failed")
        self._finish(t, fields)
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
            raise ApiError(400, 12, "Either queue id or queue name should "
                           "be provided")
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
        # what a dequeue goes back to: the status before the first enqueue
        before = t["status"]
        if before == "queued" and t.get("enqueue_status"):
            before = t["enqueue_status"]
        fields = self._set_status(t, "queued", bool(req.get("force")),
                                  req.get("status_reason"),
                                  req.get("status_message"), ctx)
        t["enqueue_status"] = fields["enqueue_status"] = before
        self._add_to_queue(q, t["id"])
        for other in self._queues_holding(t["id"]):
            if other is not q:
                self._remove_from_queue(other, t["id"])
        t["_enqueued"] = time.time()
        t["_ended"] = t["_run_started"] = None
        t["execution"]["queue"] = q["id"]
        fields["execution.queue"] = q["id"]
        self.log("enqueue", task=t["id"], queue=q["name"])
        return {"updated": 1, "fields": fields, "queued": 1}

    def ep_tasks_dequeue(self, req, ctx):
        self._require(req, "task")
        new = req.get("new_status")
        if new and new not in TASK_STATUSES:
            raise ApiError(400, 12, "Invalid task status: %s" % new)
        t = self.tasks.get(req["task"])
        if t is None:
            for q in list(self.queues.values()):
                self._remove_from_queue(q, req["task"])
            return {"updated": 0, "dequeued": 1}
        # out of its execution queue if it is queued there (and of every
        # queue if asked); execution.queue itself stays, as on the server
        qid = t["execution"].get("queue")
        if t["status"] == "queued" and qid in self.queues:
            self._remove_from_queue(self.queues[qid], t["id"])
        if req.get("remove_from_all_queues"):
            for q in self._queues_holding(t["id"]):
                self._remove_from_queue(q, t["id"])
        if t["status"] not in ("queued", "in_progress"):
            return {"updated": 0, "dequeued": 1}
        fields = self._set_status(t, new or t.get("enqueue_status") or
                                  "created", True, req.get("status_reason"),
                                  req.get("status_message"), ctx)
        t["enqueue_status"] = fields["enqueue_status"] = None
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
                  "last_worker_report", "enqueue_status"):
            t.pop(k, None)
        t["_enqueued"] = t["_ended"] = None
        t["execution"].pop("queue", None)
        return {"updated": 1, "fields": fields,
                "dequeued": {"removed": removed}, "deleted_models": 0}

    def ep_tasks_stop(self, req, ctx):
        """Stopped at once if queued, a development task, or not run by a
        live worker (last_worker set and an update in the last 600 s);
        otherwise left in_progress with the message "stopping" for its
        agent to see.  Either way a status change: status and
        status_changed are in the answer."""
        self._require(req, "task")
        t = self._task(req["task"])
        now = time.time()
        live = t.get("last_worker") and \
            now - t.get("last_update", 0) < LIVE_WORKER_SEC
        reason = req.get("status_reason") or ""
        if t["status"] == "queued" or "development" in t["system_tags"] \
                or not live:
            if t["status"] == "queued":
                qid = t["execution"].get("queue")
                if qid in self.queues:
                    self._remove_from_queue(self.queues[qid], t["id"])
            fields = self._set_status(t, "stopped", bool(req.get("force")),
                                      reason, "Stopped by %s"
                                      % self.user["name"], ctx)
            t["_ended"] = now
        else:
            fields = self._set_status(t, t["status"], bool(req.get("force")),
                                      reason, "stopping", ctx)
        return {"updated": 1, "fields": fields}

    def ep_tasks_ping(self, req, ctx):
        """last_update, and the only place active_duration is set."""
        self._require(req, "task")
        t = self._task(req["task"])
        now = time.time()
        t["last_update"] = t["last_change"] = now
        if t["status"] == "in_progress" and t.get("started"):
            t["active_duration"] = now - t["started"]
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
        timeout = req.get("timeout")
        if timeout is not None and (not isinstance(timeout, int) or
                                    isinstance(timeout, bool) or timeout < 0):
            raise ApiError(400, 12, "timeout must be a non-negative integer")
        # no timeout, or 0, is the server's default
        timeout = timeout or DEFAULT_WORKER_TIMEOUT
        qids = self._check_queues(req.get("queues"))
        self._new_worker(req["worker"], timeout, qids, req.get("tags"),
                         req.get("system_tags"), self._client_ip(ctx))
        return {}

    def ep_workers_status_report(self, req, ctx):
        """As the server does it: the worker entry is updated and its TTL
        re-armed even when the report names an unknown task (400/101,
        the worker's task left as it was); a report naming a task sets
        that task's last_worker, the only way last_worker is ever set."""
        self._require(req, "worker", "timestamp")
        wid = req["worker"]
        qids = as_list(req.get("queues"), "queues") or []
        w = self.workers.get(wid)
        if w is None:
            w = self._new_worker(wid, DEFAULT_WORKER_TIMEOUT, [],
                                 req.get("tags"), req.get("system_tags"),
                                 self._client_ip(ctx))
        now = time.time()
        w["ip"] = self._client_ip(ctx)
        if "tags" in req:
            w["tags"] = list(req["tags"] or [])
        if "system_tags" in req:
            w["system_tags"] = list(req["system_tags"] or [])
        w["last_activity_time"] = now
        w["_expires"] = now + w["register_timeout"]
        w["queue"] = req.get("queue") or None
        if qids:
            w["queues"] = qids
        task = req.get("task")
        if not task:
            w["task"] = None
        else:
            t = self._task(task)
            t["last_worker"] = wid
            t["last_worker_report"] = now
            t["last_update"] = t["last_change"] = now
            w["task"] = task
        w["last_report_time"] = now
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
            # active_duration as the last tasks.ping set it: 0 before
            info["running_time"] = int(
                ((t or {}).get("active_duration") or 0) * 1000)
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
        compiled = query_prepare(req, PROJECT_QUERY)
        hidden_ok = bool(req.get("search_hidden") or req.get("id"))
        out = [p for p in self.projects.values()
               if (hidden_ok or "hidden" not in p["system_tags"])
               and query_match(p, req, PROJECT_QUERY, compiled)]
        out = self._order([self._project_out(p) for p in out], req)
        out, scroll = self._page(out, req)
        fields = as_list(req.get("only_fields"), "only_fields")
        if fields:
            out = [project_fields(p, fields) for p in out]
        return self._with_scroll({"projects": out}, scroll)

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
