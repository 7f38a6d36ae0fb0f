#!/usr/bin/env python3
"""Checks of the fake ClearML server against the documented protocol.
Prints one 'ok - ...' or 'not ok - ...' line per check (the .t file turns
them into TAP).  Usage: check_clearml.py ENV_FILE"""

import base64
import http.client
import json
import re
import sys
import time
import urllib.parse

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from checks.tap import Tap, read_env  # noqa: E402

ENV = read_env(sys.argv[1])
URL = urllib.parse.urlsplit(ENV["QSCALE_SIM_CLEARML_URL"])
AK, SK = ENV["CLEARML_API_ACCESS_KEY"], ENV["CLEARML_API_SECRET_KEY"]
BASIC = "Basic " + base64.b64encode(("%s:%s" % (AK, SK)).encode()).decode()
DT_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
t = Tap()


def raw(method, path, body=b"", headers=None):
    c = http.client.HTTPConnection(URL.hostname, URL.port, timeout=10)
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type", ""), data


def call(endpoint, body=None, auth=BASIC, method="POST", headers=None):
    h = {"Content-Type": "application/json"}
    if auth:
        h["Authorization"] = auth
    h.update(headers or {})
    status, _, data = raw(method, "/" + endpoint, body if body is not None
                          else b"", h)
    doc = json.loads(data)
    assert doc["meta"]["result_code"] == status, (status, doc["meta"])
    return status, doc


def code(doc):
    return (doc["meta"]["result_code"], doc["meta"]["result_subcode"])


def ok_data(endpoint, body=None, auth=BASIC):
    status, doc = call(endpoint, body, auth)
    if status != 200:
        raise AssertionError("%s: %s" % (endpoint, doc["meta"]))
    return doc["data"]


# ---------------------------------------------------------------- envelope
st, doc = call("debug.ping", auth=None)
m = doc["meta"]
t.check("debug.ping needs no auth and answers the envelope",
        st == 200 and doc["data"] == {"msg": "ClearML server"} and
        set(m) == {"id", "trx", "endpoint", "result_code", "result_subcode",
                   "result_msg", "error_stack", "error_data"} and
        HEX32.match(m["id"]) and m["trx"] == m["id"] and
        m["result_msg"] == "OK" and m["error_data"] == {} and
        m["endpoint"] == {"name": "debug.ping", "requested_version": "2.31",
                          "actual_version": "2.9"}, m)

st, doc = call("queues.get_all", {}, headers={"X-ClearML-Trx": "trx-42"})
t.check("X-ClearML-Trx is echoed as meta.trx",
        doc["meta"]["trx"] == "trx-42", doc["meta"])

st, doc = call("v2.14/queues.get_all", {})
t.check("/v2.14/ picks the newest handler at or below 2.14",
        st == 200 and doc["meta"]["endpoint"]["requested_version"] == "2.14"
        and doc["meta"]["endpoint"]["actual_version"] == "2.4",
        doc["meta"]["endpoint"])

st, doc = call("v2.1/queues.get_all", {})
t.check("/v2.1/queues.get_all is 404/0 (queues start at 2.4)",
        code(doc) == (404, 0) and doc["data"] == {} and
        doc["meta"]["endpoint"]["actual_version"] is None and
        doc["meta"]["result_msg"].startswith(
            "Unable to find endpoint for name queues.get_all"), doc["meta"])

st, doc = call("nosuch.endpoint", {})
t.check("unknown endpoint is 404/0", code(doc) == (404, 0), doc["meta"])

st, ctype, data = raw("POST", "/not-an-endpoint", b"{}")
t.check("malformed path is a 400", st == 400, (st, data))

st, doc = call("v9.99/queues.get_all", {})
t.check("a version above the maximum is accepted",
        st == 200 and doc["meta"]["endpoint"]["actual_version"] == "2.21",
        doc["meta"])

qname = "env-q-%d" % time.time()
qid = ok_data("queues.create", {"name": qname})["id"]
st, doc = call("queues.get_all", {"name": "^%s$" % qname}, method="GET")
t.check("GET with a JSON body works (the SDK's default)",
        st == 200 and [q["id"] for q in doc["data"]["queues"]] == [qid],
        doc)
st, doc = call("queues.get_by_id?queue=%s" % qid, None, method="GET")
t.check("query-string arguments are merged into the request",
        st == 200 and doc["data"]["queue"]["id"] == qid, doc["meta"])
st, doc = call("queues.get_all", b"")
t.check("an empty body counts as {}", st == 200, doc["meta"])
t.check("ids are 32 hex characters", bool(HEX32.match(qid)), qid)
q = doc["data"]["queues"][0]
t.check("datetimes are ISO-8601 with +00:00",
        DT_RE.match(q["created"]) and DT_RE.match(q["last_update"]), q)

st, ctype, data = raw("POST", "/queues.get_all", b"{}",
                      {"Authorization": BASIC, "Content-Encoding": "gzip"})
t.check("Content-Encoding gets 415 in plain text",
        st == 415 and ctype.startswith("text/plain"), (st, ctype, data))

st, doc = call("queues.get_all", b"{not json")
t.check("a body that is not JSON is a 400", st == 400, doc["meta"])

# -------------------------------------------------------------------- auth
st, doc = call("queues.get_all", {}, auth=None)
t.check("no Authorization: 401/20", code(doc) == (401, 20) and
        doc["meta"]["result_msg"].startswith(
            "Unauthorized (missing credentials)"), doc["meta"])
st, doc = call("queues.get_all", {}, auth="Digest abc")
t.check("other scheme: 401/10", code(doc) == (401, 10), doc["meta"])
st, doc = call("queues.get_all", {}, auth="Basic !!!notbase64")
t.check("undecodable Basic: 401/21", code(doc) == (401, 21), doc["meta"])
bad = "Basic " + base64.b64encode(("%s:wrong" % AK).encode()).decode()
st, doc = call("queues.get_all", {}, auth=bad)
t.check("wrong secret: 401/22 'failed to locate provided credentials'",
        code(doc) == (401, 22) and "failed to locate provided credentials"
        in doc["meta"]["result_msg"] and doc["meta"]["error_stack"] is None,
        doc["meta"])
bad = "Basic " + base64.b64encode(b"NOSUCHKEY:" + SK.encode()).decode()
st, doc = call("queues.get_all", {}, auth=bad)
t.check("wrong key: 401/22", code(doc) == (401, 22), doc["meta"])

token = ok_data("auth.login")["token"]
parts = token.split(".")
hdr = json.loads(base64.urlsafe_b64decode(parts[0] + "=="))
claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=="))
t.check("auth.login gives an HS256 JWT with the documented claims",
        len(parts) == 3 and hdr.get("alg") == "HS256" and
        claims.get("api_version") == "2.31" and
        isinstance(claims.get("exp"), int) and
        isinstance(claims.get("iat"), int) and
        claims["exp"] - claims["iat"] == 2592000 and
        {"user", "company"} <= set(claims.get("identity", {})) and
        claims.get("server_version"), claims)
st, doc = call("queues.get_all", {}, auth="Bearer " + token)
t.check("Bearer token accepted", st == 200, doc["meta"])
st, doc = call("auth.login?expiration_sec=120", None, auth="Bearer " + token)
c2 = json.loads(base64.urlsafe_b64decode(
    doc["data"]["token"].split(".")[1] + "=="))
t.check("auth.login with a Bearer token and ?expiration_sec= gives a new "
        "token", st == 200 and c2["exp"] - c2["iat"] == 120, c2)
st, doc = call("auth.login", {"expiration_sec": 99999999})
t.check("expiration_sec above the maximum: 400/12",
        code(doc) == (400, 12), doc["meta"])
forged = parts[0] + "." + parts[1] + "." + parts[2][::-1]
st, doc = call("queues.get_all", {}, auth="Bearer " + forged)
t.check("bad signature: 401/30", code(doc) == (401, 30), doc["meta"])
st, doc = call("queues.get_all", {}, auth="Bearer garbage")
t.check("garbage token: 401/30", code(doc) == (401, 30), doc["meta"])

st, _, data = raw("POST", "/sim/token-ttl", b'{"seconds": 1}')
short = ok_data("auth.login")["token"]
raw("POST", "/sim/token-ttl", b'{"seconds": null}')
sc = json.loads(base64.urlsafe_b64decode(short.split(".")[1] + "=="))
st1, _ = call("queues.get_all", {}, auth="Bearer " + short)
time.sleep(max(0.0, sc["exp"] - time.time()) + 0.2)
st, doc = call("queues.get_all", {}, auth="Bearer " + short)
t.check("POST /sim/token-ttl makes short tokens; expired: 401/30 "
        "'Signature has expired'",
        sc["exp"] - sc["iat"] == 1 and st1 == 200 and
        code(doc) == (401, 30) and
        "Signature has expired" in doc["meta"]["result_msg"], doc["meta"])
st, doc = call("auth.login", {}, auth="Bearer " + short)
t.check("an expired token cannot log in again (Basic needed)",
        code(doc) == (401, 30), doc["meta"])

# ------------------------------------------------------------------ queues
qa = ok_data("queues.create", {"name": "fifo-%d" % time.time()})["id"]
tids = [ok_data("tasks.create", {"name": "fifo-%d" % i, "type": "training"})
        ["id"] for i in range(3)]
for tid in tids:
    ok_data("tasks.enqueue", {"task": tid, "queue": qa})
q = ok_data("queues.get_by_id", {"queue": qa})["queue"]
t.check("entries are {task, added} in FIFO order",
        [e["task"] for e in q["entries"]] == tids and
        all(set(e) == {"task", "added"} and DT_RE.match(e["added"])
            for e in q["entries"]), q["entries"])
t.check("queues.get_num_entries counts them",
        ok_data("queues.get_num_entries", {"queue": qa}) == {"num": 3})
popped = [ok_data("queues.get_next_task", {"queue": qa}).get("entry", {})
          .get("task") for _ in range(3)]
t.check("get_next_task pops in FIFO order", popped == tids, popped)
t.check("get_next_task on an empty queue returns {}",
        ok_data("queues.get_next_task", {"queue": qa}) == {})
st_ = ok_data("tasks.get_by_id", {"task": tids[0]})["task"]["status"]
t.check("get_next_task does not change the task status", st_ == "queued",
        st_)
ok_data("queues.add_task", {"queue": qa, "task": tids[0]})
st, doc = call("queues.add_task", {"queue": qa, "task": tids[0]})
t.check("add_task of a task already there: 400/706",
        code(doc) == (400, 706), doc["meta"])
st, doc = call("queues.remove_task", {"queue": qa, "task": tids[1]})
t.check("remove_task of a task not there: 400/703",
        code(doc) == (400, 703), doc["meta"])
t.check("remove_task of a task there: removed 1",
        ok_data("queues.remove_task", {"queue": qa, "task": tids[0]}) ==
        {"removed": 1})
st, doc = call("queues.get_by_id", {"queue": "0" * 32})
t.check("unknown queue: 400/701", code(doc) == (400, 701), doc["meta"])

pre = "Rx-%d" % time.time()
for n in ("a", "b", "ab"):
    ok_data("queues.create", {"name": pre + "-" + n})


def names(rx):
    return sorted(q["name"] for q in
                  ok_data("queues.get_all", {"name": rx,
                                             "only_fields": ["name"]})
                  ["queues"])


t.check("name regex is unanchored",
        names(pre + "-a") == [pre + "-a", pre + "-ab"], names(pre + "-a"))
t.check("name regex is case-sensitive", names(pre.lower() + "-a") == [])
t.check("anchored regex matches exactly", names("^%s-a$" % pre) ==
        [pre + "-a"])
oq = ok_data("queues.get_all", {"name": "^%s-a$" % pre,
                                "only_fields": ["name"]})["queues"]
t.check("only_fields keeps id and the fields asked for",
        len(oq) == 1 and set(oq[0]) == {"id", "name"}, oq)
st, doc = call("queues.get_all", {"name": "("})
t.check("malformed regex: 400", st == 400, doc["meta"])
st, doc = call("queues.create", {"name": pre + "-a"})
t.check("duplicate queue name refused", st == 400, doc["meta"])

# ------------------------------------------------------------ state machine
tid = ok_data("tasks.create", {"name": "sm", "type": "training",
                               "comment": "hello"})["id"]
task = ok_data("tasks.get_by_id", {"task": tid})["task"]
t.check("tasks.create: status created, comment kept",
        task["status"] == "created" and task["comment"] == "hello" and
        DT_RE.match(task["created"]), task)
st, doc = call("tasks.create", {"name": "x"})
t.check("tasks.create without type: 400/11", code(doc) == (400, 11),
        doc["meta"])
st, doc = call("tasks.completed", {"task": tid})
t.check("created -> completed refused: 400/110 with the statuses",
        code(doc) == (400, 110) and "current_status=created" in
        doc["meta"]["result_msg"] and "new_status=completed" in
        doc["meta"]["result_msg"], doc["meta"])
d = ok_data("tasks.started", {"task": tid, "status_message": "go"})
t.check("created -> in_progress allowed, started set",
        d["updated"] == 1 and d["started"] == 1 and
        d["fields"]["status"] == "in_progress", d)
d = ok_data("tasks.started", {"task": tid})
t.check("the same status again is allowed (started stays)",
        d["started"] == 0, d)
st, doc = call("tasks.enqueue", {"task": tid, "queue": qa})
t.check("in_progress -> queued refused: 400/110", code(doc) == (400, 110),
        doc["meta"])
d = ok_data("tasks.completed", {"task": tid,
                                "status_reason": "worker execution done"})
task = ok_data("tasks.get_by_id", {"task": tid})["task"]
t.check("in_progress -> completed sets completed and the reason",
        d["fields"]["status"] == "completed" and "published" in d and
        task["status_reason"] == "worker execution done" and
        DT_RE.match(task["completed"]) and DT_RE.match(task["started"]),
        task)
st, doc = call("tasks.failed", {"task": tid})
t.check("completed -> failed refused", code(doc) == (400, 110), doc["meta"])
d = ok_data("tasks.failed", {"task": tid, "force": True})
t.check("force allows any change", d["fields"]["status"] == "failed", d)
d = ok_data("tasks.enqueue", {"task": tid, "queue_name": pre + "-new"})
t.check("failed -> queued via queue_name (auto-created queue)",
        d["queued"] == 1 and d["fields"]["status"] == "queued" and
        names("^%s-new$" % pre) == [pre + "-new"], d)
qb = ok_data("queues.get_all", {"name": "^%s-b$" % pre})["queues"][0]["id"]
ok_data("tasks.enqueue", {"task": tid, "queue": qb, "force": True})
qn = ok_data("queues.get_all", {"name": "^%s-new$" % pre})["queues"][0]
t.check("enqueue removes the task from its other queues",
        qn["entries"] == [] and
        ok_data("queues.get_num_entries", {"queue": qb})["num"] == 1, qn)
d = ok_data("tasks.stop", {"task": tid})
t.check("tasks.stop on a queued task stops and dequeues it",
        d["fields"]["status"] == "stopped" and
        ok_data("queues.get_num_entries", {"queue": qb})["num"] == 0, d)
d = ok_data("tasks.reset", {"task": tid})
task = ok_data("tasks.get_by_id", {"task": tid})["task"]
t.check("tasks.reset: created, started/completed unset",
        task["status"] == "created" and "started" not in task and
        "completed" not in task, task)
tg = ok_data("tasks.get_all", {"id": [tid], "only_fields": ["status"]})
t.check("tasks.get_all with id and only_fields",
        tg["tasks"] == [{"id": tid, "status": "created"}], tg)
tg = ok_data("tasks.get_all", {"status": ["created"], "name": "^sm$"})
t.check("tasks.get_all filters on status and name",
        [x["id"] for x in tg["tasks"]] == [tid], tg)
st, doc = call("tasks.get_by_id", {"task": "f" * 32})
t.check("unknown task: 400/101 'Invalid task id: id=...'",
        code(doc) == (400, 101) and
        doc["meta"]["result_msg"].startswith("Invalid task id: id=fff"),
        doc["meta"])

# ----------------------------------------------------------------- workers
wp = "ttl-%d" % time.time()
st, doc = call("workers.register", {"worker": wp + ":x", "queues": ["0" * 32]})
t.check("workers.register validates queues: 400/701",
        code(doc) == (400, 701), doc["meta"])
ok_data("workers.register", {"worker": wp + ":short", "timeout": 1,
                             "queues": [qa]})
ok_data("workers.register", {"worker": wp + ":long", "queues": [qa]})
ok_data("workers.register", {"worker": "other-%s:1" % wp})


def workers(body):
    return {w["id"]: w for w in
            ok_data("workers.get_all", body)["workers"]}


ws = workers({"worker_pattern": wp + ":*"})
w = ws.get(wp + ":long", {})
t.check("worker_pattern is a glob", sorted(ws) ==
        [wp + ":long", wp + ":short"], sorted(ws))
t.check("an idle worker has no task key, and no last_report_time before a "
        "report",
        w and "task" not in w and "last_report_time" not in w and
        w["register_timeout"] == 600 and DT_RE.match(w["register_time"]) and
        w["queues"][0]["id"] == qa and "num_tasks" in w["queues"][0], w)
t.check("workers.get_count", ok_data("workers.get_count",
                                     {"worker_pattern": wp + ":*"}) ==
        {"count": 2})
time.sleep(1.3)
ws = workers({"worker_pattern": wp + ":*"})
t.check("a worker expires after its timeout", sorted(ws) == [wp + ":long"],
        sorted(ws))
busy = ok_data("tasks.create", {"name": "busy", "type": "training"})["id"]
ok_data("tasks.started", {"task": busy})
ok_data("workers.status_report", {"worker": wp + ":long",
                                  "timestamp": int(time.time() * 1000),
                                  "task": busy, "queue": qa})
w = workers({"worker_pattern": wp + ":long"})[wp + ":long"]
t.check("status_report with a task: task and queue shown",
        w.get("task", {}).get("id") == busy and
        "running_time" in w["task"] and w.get("queue", {}).get("id") == qa
        and DT_RE.match(w.get("last_report_time", "")), w)
t.check("the task's last_worker is set",
        ok_data("tasks.get_by_id", {"task": busy})["task"]
        .get("last_worker") == wp + ":long")
ok_data("workers.status_report", {"worker": wp + ":long",
                                  "timestamp": int(time.time() * 1000)})
w = workers({"worker_pattern": wp + ":long"})[wp + ":long"]
t.check("status_report without task: idle again", "task" not in w and
        "queue" not in w, w)
st, doc = call("workers.status_report", {"worker": wp + ":long"})
t.check("status_report without timestamp: 400/11", code(doc) == (400, 11),
        doc["meta"])
ok_data("workers.status_report", {"worker": wp + ":auto",
                                  "timestamp": int(time.time() * 1000)})
t.check("status_report auto-registers an unknown worker",
        wp + ":auto" in workers({"worker_pattern": wp + ":*"}))
time.sleep(1.1)
ok_data("workers.status_report", {"worker": wp + ":auto",
                                  "timestamp": int(time.time() * 1000)})
ws = workers({"worker_pattern": wp + ":*", "last_seen": 1})
t.check("last_seen filters on last_activity_time", sorted(ws) ==
        [wp + ":auto"], sorted(ws))
ok_data("workers.unregister", {"worker": wp + ":auto"})
ok_data("workers.unregister", {"worker": wp + ":never-was"})
t.check("unregister removes; an unknown worker is fine",
        wp + ":auto" not in workers({"worker_pattern": wp + ":*"}))

# ------------------------------------------------------ projects and events
pid = ok_data("projects.create", {"name": "qscale-%d" % time.time()})["id"]
pt = ok_data("tasks.create", {"name": "rep", "type": "application",
                              "project": pid})["id"]
pg = ok_data("projects.get_all", {"name": "^qscale-"})["projects"]
t.check("projects.create/get_all (name regex)", pid in [p["id"] for p in pg])
lines = "\n".join(json.dumps(e) for e in [
    {"type": "training_stats_scalar", "task": pt, "metric": "instances",
     "variant": "gpu", "value": 3, "iter": 7, "timestamp": 1},
    {"type": "log", "task": pt, "level": "info", "msg": "hello",
     "timestamp": 2, "worker": "w"},
    {"type": "log", "task": "0" * 32, "msg": "lost"}])
JSONL = {"Authorization": BASIC, "Content-Type": "application/json-lines"}
st, _, data = raw("POST", "/events.add_batch", lines.encode(), JSONL)
d = json.loads(data)["data"]
st, _, data = raw("GET", "/sim/events?task=" + pt)
evs = json.loads(data)["events"]
t.check("events.add_batch takes newline-delimited events; /sim/events "
        "returns them", d.get("added") == 2 and d.get("errors") == 1 and
        [e["type"] for e in evs] == ["training_stats_scalar", "log"] and
        evs[0]["value"] == 3 and evs[1]["msg"] == "hello", (d, evs))
st, doc = call("tasks.get_all", {"id": [pt],
                                 "only_fields": ["last_iteration"]})
t.check("a scalar's iter becomes the task's last_iteration",
        doc["data"]["tasks"][0].get("last_iteration") == 7, doc["data"])
st, _, data = raw("POST", "/events.add_batch", lines.encode(),
                  {"Authorization": BASIC,
                   "Content-Type": "application/json"})
meta = json.loads(data)["meta"]
t.check("a batch not sent as application/json-lines is empty (400/17)",
        (st, meta["result_code"], meta["result_subcode"]) == (400, 400, 17),
        (st, meta))
st, _, data = raw("POST", "/events.add_batch", json.dumps(
    {"type": "log", "task": "0" * 32, "msg": "lost"}).encode(), JSONL)
meta = json.loads(data)["meta"]
t.check("a batch with nothing added is 400/131 naming why",
        (st, meta["result_subcode"]) == (400, 131) and
        "Invalid task id" in meta["result_msg"], (st, meta))

# ------------------------------------------------------------------ faults
raw("POST", "/sim/clearml-fault", b'{"mode": "500", "seconds": 1}')
st, ctype, data = raw("POST", "/queues.get_all", b"{}",
                      {"Authorization": BASIC})
t.check("clearml-fault 500: envelope with 500/0",
        st == 500 and json.loads(data)["meta"]["result_code"] == 500,
        (st, data[:200]))
raw("POST", "/sim/clearml-fault", b'{"mode": "html500", "seconds": 1}')
st, ctype, data = raw("POST", "/queues.get_all", b"{}",
                      {"Authorization": BASIC})
t.check("clearml-fault html500: a page that is not JSON",
        st == 500 and ctype.startswith("text/html"), (st, ctype))
raw("POST", "/sim/clearml-fault", b'{"mode": "down", "seconds": 1}')
try:
    raw("POST", "/queues.get_all", b"{}", {"Authorization": BASIC})
    down = False
except (OSError, http.client.HTTPException):
    down = True
st, _, data = raw("GET", "/sim/stats")
t.check("clearml-fault down: no answer, while /sim still works",
        down and st == 200, (down, st))
time.sleep(1.1)
st, doc = call("queues.get_all", {})
t.check("the API answers again once the outage is over", st == 200)
raw("POST", "/sim/clearml-fault",
    b'{"mode": "slow", "seconds": 2, "delay_ms": 600}')
t0 = time.time()
st, doc = call("queues.get_all", {})
t.check("clearml-fault slow delays answers", st == 200 and
        time.time() - t0 >= 0.55, time.time() - t0)
raw("POST", "/sim/clearml-fault", b'{"mode": "none"}')
st, _, data = raw("POST", "/sim/clearml-fault", b'{"mode": "weird"}')
t.check("a bad admin request is a 400 with the reason",
        st == 400 and b"mode" in data, data)
sys.exit(t.done())
