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
t.check("the same status again is allowed (started stays; the answer's "
        "started is its updated, 1)",
        d["started"] == 1 and "started" not in d["fields"], d)
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

# ------------------------------------------------- last_worker, the header
# The real server sets a task's last_worker only from a workers.status_report
# naming the task; X-ClearML-Worker carries the caller's host name (what the
# SDK and clearml-agent send) and is never taken for a worker id.  Right
# after a pop the task still names its previous worker.
lq = ok_data("queues.create", {"name": "lw-%d" % time.time()})["id"]
lt = ok_data("tasks.create", {"name": "lw", "type": "training"})["id"]
lw = "lw-%d" % time.time()


def as_host(endpoint, body, host):
    st, doc = call(endpoint, body, headers={"X-ClearML-Worker": host})
    if st != 200:
        raise AssertionError("%s: %s" % (endpoint, doc["meta"]))
    return doc["data"]


def last_worker(tid):
    return ok_data("tasks.get_by_id", {"task": tid})["task"].get(
        "last_worker")


ok_data("tasks.enqueue", {"task": lt, "queue": lq})
as_host("workers.register", {"worker": lw + ":a", "queues": [lq]}, "host-a")
as_host("queues.get_next_task", {"queue": lq}, "host-a")
as_host("tasks.started", {"task": lt, "force": True,
                          "status_message": "pulled by agent"}, "host-a")
t.check("X-ClearML-Worker never sets last_worker (pop and tasks.started "
        "leave it unset)", last_worker(lt) is None, last_worker(lt))
as_host("workers.status_report", {"worker": lw + ":a", "task": lt,
                                  "timestamp": int(time.time() * 1000)},
        "host-a")
t.check("a status_report naming the task sets last_worker to its worker",
        last_worker(lt) == lw + ":a", last_worker(lt))
as_host("tasks.stopped", {"task": lt}, "host-a")
ok_data("tasks.enqueue", {"task": lt, "queue": lq})
as_host("workers.register", {"worker": lw + ":b", "queues": [lq]}, "host-b")
as_host("queues.get_next_task", {"queue": lq}, "host-b")
as_host("tasks.started", {"task": lt, "force": True}, "host-b")
t.check("right after another worker pops and starts it, the task still "
        "names its previous worker", last_worker(lt) == lw + ":a",
        last_worker(lt))
as_host("workers.status_report", {"worker": lw + ":b", "task": lt,
                                  "timestamp": int(time.time() * 1000)},
        "host-b")
t.check("until the new worker's first report", last_worker(lt) == lw + ":b",
        last_worker(lt))

# ------------------------------------------------------ call attribution
# The SDK sends X-ClearML-Worker on every call, an autoscaler's included:
# calls are credited by the session (token) they are made in, a session
# that acts as a worker being an agent's, and by what they are otherwise.


def sim_calls():
    st, _, data = raw("GET", "/sim/stats")
    return json.loads(data)["totals"]["clearml_calls"]


def login_token(headers=None):
    st, doc = call("auth.login", {}, headers=headers)
    return "Bearer " + doc["data"]["token"]


def calls_delta(before, after):
    out = {}
    for c in set(before) | set(after):
        for ep in set(before.get(c, {})) | set(after.get(c, {})):
            n = after.get(c, {}).get(ep, 0) - before.get(c, {}).get(ep, 0)
            if n:
                out.setdefault(c, {})[ep] = n
    return out


c0 = sim_calls()
hdr = {"X-ClearML-Worker": "autoscaler-host"}
tok = login_token(hdr)
for _ in range(3):
    call("queues.get_all", {"id": [lq]}, auth=tok, headers=hdr)
call("workers.get_all", {}, auth=tok, headers=hdr)
call("workers.get_all", {}, headers=hdr)     # Basic, no session
hdr = {"X-ClearML-Worker": "agent-host"}
atok = login_token(hdr)
call("queues.get_all", {"name": "^nothing$"}, auth=atok, headers=hdr)
call("workers.register", {"worker": lw + ":c"}, auth=atok, headers=hdr)
call("workers.status_report", {"worker": lw + ":c", "timestamp": 1},
     auth=atok, headers=hdr)
call("queues.get_all", {"id": [lq]}, headers={"User-Agent": "qscale/1"})
call("workers.unregister", {"worker": lw + ":c"})
d = calls_delta(c0, sim_calls())
want = {"other": {"auth.login": 1, "queues.get_all": 3, "workers.get_all": 2},
        "agent": {"auth.login": 1, "queues.get_all": 1,
                  "workers.register": 1, "workers.status_report": 1,
                  "workers.unregister": 1},
        "qscale": {"queues.get_all": 1}}
t.check("calls are credited by session and kind, not by X-ClearML-Worker: "
        "an autoscaler's session is 'other', an agent's (login and look-up "
        "included) 'agent', a Basic worker call 'agent', qscale by its "
        "User-Agent", d == want, (d, want))

# ------------------------------------------------------- the rest of it
st, doc = call("workers.register", {"worker": lw + ":ttl", "timeout": 2})
time.sleep(1.2)
st, doc = call("workers.status_report", {"worker": lw + ":ttl",
                                         "task": "f" * 32,
                                         "timestamp": 1})
time.sleep(1.2)
ws = workers({"worker_pattern": lw + ":ttl"})
t.check("a status_report naming an unknown task is 400/101 but re-arms "
        "the worker's TTL first (task and last report unchanged)",
        code(doc) == (400, 101) and lw + ":ttl" in ws and
        "task" not in ws[lw + ":ttl"] and
        "last_report_time" not in ws[lw + ":ttl"], (doc["meta"], ws))
ok_data("workers.register", {"worker": lw + ":zero", "timeout": 0})
w = workers({"worker_pattern": lw + ":zero"}).get(lw + ":zero", {})
t.check("workers.register {timeout: 0} means the default 600 s",
        w.get("register_timeout") == 600, w)

rt = ok_data("tasks.create", {"name": "rerun", "type": "training"})["id"]
s1 = ok_data("tasks.started", {"task": rt})["fields"]["started"]
ok_data("workers.status_report", {"worker": lw + ":run", "task": rt,
                                  "timestamp": 1})
time.sleep(1.1)
task = ok_data("tasks.get_by_id", {"task": rt})["task"]
w = workers({"worker_pattern": lw + ":run"})[lw + ":run"]
t.check("active_duration and running_time stay 0 until the first "
        "tasks.ping", "active_duration" not in task and
        w["task"]["running_time"] == 0, (task, w))
ok_data("tasks.ping", {"task": rt})
task = ok_data("tasks.get_by_id", {"task": rt})["task"]
w = workers({"worker_pattern": lw + ":run"})[lw + ":run"]
t.check("tasks.ping sets active_duration (s) and so running_time (ms)",
        task.get("active_duration", 0) >= 1 and
        w["task"]["running_time"] >= 1000, (task, w))
ok_data("tasks.stopped", {"task": rt})
ok_data("tasks.enqueue", {"task": rt, "queue": lq})
ok_data("queues.get_next_task", {"queue": lq})
time.sleep(0.01)
d = ok_data("tasks.started", {"task": rt, "force": True})
task = ok_data("tasks.get_by_id", {"task": rt})["task"]
t.check("tasks.started of a new run: started now, completed and "
        "active_duration unset, answer started: 1",
        d["started"] == 1 and d["fields"]["started"] > s1 and
        task["started"] == d["fields"]["started"] and
        "completed" not in task and "active_duration" not in task,
        (s1, d, task))

ft = ok_data("tasks.create", {"name": "fails", "type": "training"})["id"]
ok_data("tasks.started", {"task": ft})
d = ok_data("tasks.failed", {"task": ft})
task = ok_data("tasks.get_by_id", {"task": ft})["task"]
t.check("tasks.failed sets completed", DT_RE.match(task.get("completed", ""))
        and d["fields"].get("completed") == task["completed"], (d, task))
d = ok_data("tasks.dequeue", {"task": ft})
t.check("tasks.dequeue of a task that is not queued: 200 {dequeued: 1, "
        "updated: 0}", d == {"dequeued": 1, "updated": 0}, d)
d = ok_data("tasks.dequeue", {"task": "e" * 32})
t.check("tasks.dequeue of a task that does not exist: 200 {dequeued: 1, "
        "updated: 0}", d == {"dequeued": 1, "updated": 0}, d)

dt = ok_data("tasks.create", {"name": "dev", "type": "training",
                              "system_tags": ["development", "keep"]})["id"]
d = ok_data("tasks.enqueue", {"task": dt, "queue": lq})
task = ok_data("tasks.get_by_id", {"task": dt})["task"]
t.check("tasks.enqueue strips the development system tag and answers "
        "enqueue_status (the status before)",
        task["system_tags"] == ["keep"] and
        d["fields"].get("enqueue_status") == "created" and
        task.get("enqueue_status") == "created", (d, task))
d = ok_data("tasks.dequeue", {"task": dt})
task = ok_data("tasks.get_by_id", {"task": dt})["task"]
t.check("tasks.dequeue of a queued task: back to its enqueue_status, out "
        "of the queue, execution.queue kept",
        d["dequeued"] == 1 and d["updated"] == 1 and
        task["status"] == "created" and
        task["execution"].get("queue") == lq and
        dt not in [e["task"] for e in ok_data(
            "queues.get_by_id", {"queue": lq})["queue"]["entries"]], (d, task))

ok_data("tasks.enqueue", {"task": dt, "queue": lq})
d = ok_data("tasks.stop", {"task": dt})
t.check("tasks.stop of a queued task answers status stopped and "
        "status_changed", d["fields"].get("status") == "stopped" and
        DT_RE.match(d["fields"].get("status_changed", "")), d)
st_ = ok_data("tasks.create", {"name": "live", "type": "training"})["id"]
ok_data("tasks.started", {"task": st_})
ok_data("workers.status_report", {"worker": lw + ":run", "task": st_,
                                  "timestamp": 1})
d = ok_data("tasks.stop", {"task": st_})
task = ok_data("tasks.get_by_id", {"task": st_})["task"]
t.check("tasks.stop of a task a live worker runs: still in_progress, "
        "message 'stopping', the answer has status and status_changed",
        d["fields"].get("status") == "in_progress" and
        d["fields"].get("status_message") == "stopping" and
        DT_RE.match(d["fields"].get("status_changed", "")) and
        task["status"] == "in_progress", (d, task))

for bad in ("ab", "  ab  ", ""):
    st, doc = call("queues.create", {"name": bad})
    if code(doc) != (400, 12 if bad else 11):
        break
st2, doc2 = call("tasks.enqueue", {"task": dt, "queue_name": "q"})
t.check("queue names shorter than 3 characters (after stripping) are "
        "400/12, by queues.create and tasks.enqueue's queue_name",
        code(doc) == (400, 12 if bad else 11) and
        code(doc2) == (400, 12), (bad, doc["meta"], doc2["meta"]))

# tasks.get_all filters
fp = "flt-%d" % time.time()
fa = ok_data("tasks.create", {"name": fp + "-a", "type": "training",
                              "comment": "the alpha run"})["id"]
time.sleep(0.05)
mid = ok_data("tasks.get_by_id", {"task": fa})["task"]["status_changed"]
time.sleep(0.05)
fb = ok_data("tasks.create", {"name": fp + "-b", "type": "testing",
                              "comment": "beta RUN here"})["id"]
fb_changed = ok_data("tasks.get_by_id", {"task": fb})["task"]["status_changed"]


def ids(body):
    st, doc = call("tasks.get_all", dict(body, only_fields=["id"]))
    if st != 200:
        return code(doc)
    return sorted(x["id"] for x in doc["data"]["tasks"])


nm = {"name": "^%s-" % fp}
t.check("tasks.get_all status_changed '>D' keeps the later task, '<=D' the "
        "earlier, a list of two is a range",
        ids(dict(nm, status_changed=[">" + mid])) == [fb] and
        ids(dict(nm, status_changed=["<=" + mid])) == [fa] and
        ids(dict(nm, status_changed=[mid, fb_changed])) == sorted([fa, fb])
        and ids(dict(nm, status_changed=">=2000-01-01T00:00:00Z")) ==
        sorted([fa, fb]),
        [ids(dict(nm, status_changed=[">" + mid])),
         ids(dict(nm, status_changed=["<=" + mid]))])
t.check("tasks.get_all status_changed that is not a date is an error, not "
        "everything (even where no task would be compared)",
        ids(dict(nm, status_changed=">=yesterday")) == (400, 16) and
        ids({"name": "^no such task$", "status_changed": ["<2025-13-45"]})
        == (400, 16))
t.check("tasks.get_all search_text: whole words, any case, phrases, "
        "negation", ids({"search_text": "alpha"}) == [fa] and
        ids({"search_text": "run", "name": "^" + fp}) == sorted([fa, fb]) and
        ids({"search_text": '"beta run"'}) == [fb] and
        ids({"search_text": "run -beta", "name": "^" + fp}) == [fa] and
        ids({"search_text": "alph"}) == [],
        [ids({"search_text": "alpha"}), ids({"search_text": '"beta run"'})])
t.check("tasks.get_all _any_ / _all_: a case-insensitive pattern over fields",
        ids({"_any_": {"pattern": "ALPHA|^%s-b$" % fp,
                       "fields": ["name", "comment"]}}) == sorted([fa, fb])
        and ids({"_all_": {"pattern": "beta|%s" % fp,
                           "fields": ["name", "comment"]}}) == [fb] and
        ids(dict(nm, _any_={"datetime": ">" + mid,
                            "fields": ["status_changed"]})) == [fb],
        ids({"_any_": {"pattern": "ALPHA|^%s-b$" % fp,
                       "fields": ["name", "comment"]}}))
t.check("a malformed _any_ is 400/16, a filter cloudsim does not serve "
        "400/12, never everything",
        ids({"_any_": {"fields": ["name"]}}) == (400, 16) and
        ids({"_any_": {"pattern": "alpha"}}) == (400, 16) and
        ids({"_any_": {"pattern": None, "fields": ["name"]}}) == (400, 16)
        and ids({"name": "^no such task$", "_all_": {"fields": ["name"]}})
        == (400, 16) and
        ids({"_any_": "alpha"}) == (400, 16) and
        ids({"hyperparams.Args.lr": "0.1"}) == (400, 12))
t.check("list filters: '-' excludes, __$not too, an empty list is no filter",
        ids(dict(nm, type=["-training"])) == [fb] and
        ids(dict(nm, type=["__$not", "testing"])) == [fa] and
        ids(dict(nm, id=[])) == sorted([fa, fb]))

st, doc = call("server.info", {})
st8, doc8 = call("v2.8/server.info", {})
t.check("server.info: version, build, commit, and api_version (2.12+) or "
        "uid (2.8)", st == 200 and doc["data"].get("api_version") == "2.31"
        and {"version", "build", "commit"} <= set(doc["data"]) and
        "uid" not in doc["data"] and st8 == 200 and
        HEX32.match(doc8["data"].get("uid", "")) and
        "api_version" not in doc8["data"], (doc, doc8))

mq = ok_data("queues.create", {"name": "metrics-%d" % time.time()})["id"]
mts = [ok_data("tasks.create", {"name": "m%d" % i, "type": "training"})["id"]
       for i in range(3)]
for x in mts:
    ok_data("tasks.enqueue", {"task": x, "queue": mq})
ok_data("queues.get_next_task", {"queue": mq})
now = time.time()
d = ok_data("queues.get_queue_metrics", {"from_date": now - 60,
                                         "to_date": now + 1, "interval": 60,
                                         "queue_ids": [mq]})
qm = d["queues"][0] if len(d["queues"]) == 1 else {}
t.check("queues.get_queue_metrics: per queue, dates in ms, the bucket's "
        "longest-waiting sample",
        qm.get("queue") == mq and len(qm["dates"]) in (1, 2) and
        all(isinstance(x, int) and x % 60000 == 0 for x in qm["dates"]) and
        max(qm["queue_lengths"]) in (2, 3) and
        len(qm["avg_waiting_times"]) == len(qm["dates"]), d)
d = ok_data("queues.get_queue_metrics", {"from_date": now - 60,
                                         "to_date": now + 1, "interval": 600})
st, doc = call("queues.get_queue_metrics", {"from_date": now,
                                            "to_date": now - 1,
                                            "interval": 1})
st2, doc2 = call("queues.get_queue_metrics", {"from_date": now - 1,
                                              "to_date": now})
t.check("queues.get_queue_metrics without queue_ids: one 'total' series; "
        "from_date >= to_date 400/16; no interval 400/12",
        [q["queue"] for q in d["queues"]] == ["total"] and
        code(doc) == (400, 16) and code(doc2) == (400, 12),
        (d, doc["meta"], doc2["meta"]))

# ---------------------------------------------------------------- paging
# The server never answers more than 500 items to a get_all: without
# page_size it cuts at 500 silently.  scroll_id (an empty one starts a
# scroll) gives the next `size` items each call.
pp = "pg-%d" % time.time()
for i in range(1203):
    ok_data("tasks.create", {"name": "%s-%04d" % (pp, i), "type": "training"})
allq = {"name": "^%s-" % pp, "only_fields": ["name"]}


def names_of(body, key="tasks", ep="tasks.get_all"):
    st, doc = call(ep, body)
    if st != 200:
        return code(doc), None
    return [x["name"] for x in doc["data"][key]], doc["data"].get("scroll_id")


want = ["%s-%04d" % (pp, i) for i in range(1203)]
got, sid = names_of(allq)
t.check("tasks.get_all without page_size: the first 500, no error, no "
        "scroll_id", got == want[:500] and sid is None, (len(got), sid))
got = [names_of(dict(allq, page=p, page_size=500))[0] for p in range(3)]
t.check("page/page_size pages through all of them",
        got[0] + got[1] + got[2] == want and len(got[2]) == 203,
        [len(x) for x in got])
pids = [x["id"] for p in range(2) for x in ok_data(
    "tasks.get_all", dict(allq, page=p, page_size=500))["tasks"]][:600]
got = ok_data("tasks.get_all", {"id": pids, "only_fields": ["id"]})["tasks"]
t.check("a list of 600 ids without page_size gets 500 tasks back, silently",
        [x["id"] for x in got] == pids[:500], len(got))
t.check("page_size above 500 is cut to 500; page alone pages by 500",
        len(names_of(dict(allq, page_size=1000))[0]) == 500 and
        names_of(dict(allq, page=1))[0] == want[500:1000])
t.check("page_size < 1 is 400/12, page < 0 too",
        names_of(dict(allq, page_size=0))[0] == (400, 12) and
        names_of(dict(allq, page_size=-5))[0] == (400, 12) and
        names_of(dict(allq, page=-1, page_size=10))[0] == (400, 12))
seen, sid, sids = [], "", set()
for _ in range(5):
    got, sid = names_of(dict(allq, scroll_id=sid, size=400))
    sids.add(sid)
    seen.append(got)
t.check("scroll_id: each call the next `size` items, the same scroll_id "
        "back, an empty page at the end",
        [len(x) for x in seen] == [400, 400, 400, 3, 0] and
        sum(seen, []) == want and len(sids) == 1 and HEX32.match(sid),
        [len(x) for x in seen])
got, sid2 = names_of(dict(allq, scroll_id=sid, size=10, refresh_scroll=True))
t.check("refresh_scroll starts again from 0 with at least as many as "
        "already read", got == want and sid2 == sid, len(got))
got, sid3 = names_of(dict(allq, scroll_id="0" * 32, size=1000))
t.check("an unknown scroll_id starts a new scroll; scroll size is not "
        "capped at 500", got == want[:1000] and sid3 not in (sid, "0" * 32),
        (len(got), sid3))
t.check("scroll_id without size is 400/12",
        names_of(dict(allq, scroll_id=""))[0] == (400, 12))

pq = "pq-%d" % time.time()
for i in range(503):
    ok_data("queues.create", {"name": "%s-%03d" % (pq, i)})
qbody = {"name": "^%s-" % pq, "only_fields": ["name"]}
q1, _ = names_of(qbody, "queues", "queues.get_all")
q2, _ = names_of(dict(qbody, page=1, page_size=500), "queues",
                 "queues.get_all")
q3, qsid = names_of(dict(qbody, scroll_id="", size=502), "queues",
                    "queues.get_all")
t.check("queues.get_all: 500 at most without page_size, paging and scroll",
        len(q1) == 500 and len(q2) == 3 and len(q3) == 502 and
        HEX32.match(qsid or "") and
        names_of(dict(qbody, page_size=0), "queues",
                 "queues.get_all")[0] == (400, 12),
        (len(q1), len(q2), len(q3)))
ppj = "pj-%d" % time.time()
for i in range(501):
    ok_data("projects.create", {"name": "%s-%03d" % (ppj, i)})
pbody = {"name": "^%s-" % ppj, "only_fields": ["name"]}
p1, _ = names_of(pbody, "projects", "projects.get_all")
p2, _ = names_of(dict(pbody, page=1, page_size=500), "projects",
                 "projects.get_all")
t.check("projects.get_all: 500 at most without page_size, then the rest",
        len(p1) == 500 and len(p2) == 1 and
        names_of(dict(pbody, page_size=0), "projects",
                 "projects.get_all")[0] == (400, 12), (len(p1), len(p2)))

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
# ------------------------------------------- user properties and artifacts
# As the real server: hyperparams of section "properties" are the web UI's
# USER PROPERTIES and may be edited in any status; other hyperparams and
# artifacts only on a "created" task, or with force while it runs.
tid = ok_data("tasks.create", {"name": "props", "type": "application"})["id"]
st, doc = call("tasks.edit_hyper_params", {"task": tid, "hyperparams": [
    {"section": "Properties", "name": "log_level", "value": "info"},
    {"section": "properties", "name": "a", "value": "1"}]})
t.check("edit_hyper_params: {updated: 1}",
        st == 200 and doc["data"] == {"updated": 1}, doc)
d = ok_data("tasks.get_hyper_params", {"tasks": [tid]})
t.check("get_hyper_params: params of each task, sorted, the section "
        "lower-cased", d["params"][0]["task"] == tid and
        [(p["section"], p["name"], p["value"]) for p in
         d["params"][0]["hyperparams"]] ==
        [("properties", "a", "1"), ("properties", "log_level", "info")], d)
ok_data("tasks.started", {"task": tid, "force": True})
ok_data("tasks.stopped", {"task": tid, "force": True})
st, doc = call("tasks.edit_hyper_params", {"task": tid, "hyperparams": [
    {"section": "properties", "name": "log_level", "value": "DEBUG"}]})
t.check("user properties of a stopped task can be edited", st == 200, doc)
st, doc = call("tasks.edit_hyper_params", {"task": tid, "hyperparams": [
    {"section": "General", "name": "lr", "value": "0.1"}]})
t.check("other hyperparams of a stopped task: 400/110",
        code(doc) == (400, 110), doc["meta"])
d = ok_data("tasks.get_hyper_params", {"tasks": [tid]})
t.check("the edit replaced the value by section and name",
        [p["value"] for p in d["params"][0]["hyperparams"]
         if p["name"] == "log_level"] == ["DEBUG"], d)
st, doc = call("tasks.get_hyper_params", {"tasks": ["0" * 32]})
t.check("get_hyper_params of an unknown task: 400/101",
        code(doc) == (400, 101), doc["meta"])

art = {"key": "qscaled.log", "type": "custom", "mode": "output",
       "uri": "http://files/x/qscaled.log", "content_size": 3}
st, doc = call("tasks.add_or_update_artifacts", {"task": tid,
                                                 "artifacts": [art]})
t.check("add_or_update_artifacts on a stopped task: 400/110 even with "
        "force", code(doc) == (400, 110), doc["meta"])
tid2 = ok_data("tasks.create", {"name": "arts", "type": "application"})["id"]
ok_data("tasks.started", {"task": tid2, "force": True})
st, doc = call("tasks.add_or_update_artifacts", {"task": tid2,
                                                 "artifacts": [art]})
t.check("... on a running task without force: 400/110",
        code(doc) == (400, 110), doc["meta"])
ok_data("tasks.add_or_update_artifacts", {"task": tid2, "force": True,
                                          "artifacts": [art]})
art2 = dict(art, content_size=9)
d = ok_data("tasks.add_or_update_artifacts", {"task": tid2, "force": True,
                                              "artifacts": [art2]})
t.check("add_or_update_artifacts: {updated: 1}", d == {"updated": 1}, d)
task = ok_data("tasks.get_by_id", {"task": tid2})["task"]
t.check("the same key and mode is updated, not added",
        task["execution"]["artifacts"] == [art2], task["execution"])

# The files server, under /files: POST a multipart form, GET it back.
boundary = "qscaleBoundary7"
payload = (("--%s\r\nContent-Disposition: form-data; name=\"DevOps/t.1/"
            "artifacts/x.log/x.log\"; filename=\"x.log\"\r\nContent-Type: "
            "text/plain\r\n\r\nline one\nline two\n\r\n--%s--\r\n")
           % (boundary, boundary)).encode()
tok = ok_data("auth.login", {})["token"]
st, ctype, data = raw("POST", "/files/", payload, {
    "Content-Type": "multipart/form-data; boundary=" + boundary,
    "Authorization": "Bearer " + tok})
t.check("files: an upload answers the list of paths stored",
        st == 200 and json.loads(data) == ["DevOps/t.1/artifacts/x.log/x.log"],
        (st, data))
st, ctype, data = raw("GET", "/files/DevOps/t.1/artifacts/x.log/x.log")
t.check("files: the file comes back as sent",
        st == 200 and data == b"line one\nline two\n", (st, data))
st, _, data = raw("POST", "/files/", payload, {
    "Content-Type": "multipart/form-data; boundary=" + boundary,
    "Authorization": "Bearer not-a-token"})
t.check("files: a token that is not valid is refused (401)", st == 401, st)
st, _, data = raw("GET", "/files/no/such/file")
t.check("files: an unknown path is 404", st == 404, st)
st, _, data = raw("GET", "/sim/files")
up = json.loads(data)
t.check("/sim/files lists what was stored and whether it carried a token",
        [f["path"] for f in up["files"]] ==
        ["DevOps/t.1/artifacts/x.log/x.log"] and up["files"][0]["auth"], up)

sys.exit(t.done())
