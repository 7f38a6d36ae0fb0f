#!/usr/bin/env python3
"""Checks of cloudsim's simulated agents: instances launched through the
EC2 front with a startup script that follows the contract register, run
tasks, go idle and go down with their instance, gracefully (as
clearml-agent on SIGTERM) or silently; broken scripts are reported.  What
the agents send is seen through a recording proxy.  Expects
--pending-delay 0.5 --boot-delay 0.3 --report-interval 1 --agent-poll 0.3
(short, so that the checks take seconds; the defaults are checked
apart).  Usage: check_agent.py ENV_FILE LOG_FILE"""

import base64
import importlib.machinery
import importlib.util
import os
import random
import re
import signal
import subprocess
import sys
import time

HERE = __file__.rsplit("/", 2)[0]
sys.path.insert(0, HERE)
from checks.tap import (Recorder, Tap, admin, clearml,  # noqa: E402
                        ec2_client, oss_script, read_env, startup_script,
                        wait_until)
from sim.script import read_script  # noqa: E402

ENV = read_env(sys.argv[1])
LOG = sys.argv[2]
SUBNETS = ENV["QSCALE_SIM_SUBNETS"].split()
t = Tap()
ec2 = ec2_client(ENV)


def launch(script, resource="cpu", spot=False, profile=True, tags=True):
    args = dict(ImageId=ENV["QSCALE_SIM_AMI"], InstanceType="t3.micro",
                MinCount=1, MaxCount=1, SubnetId=SUBNETS[0],
                SecurityGroupIds=[ENV["QSCALE_SIM_SECURITY_GROUP"]],
                UserData=script)
    if tags:
        args["TagSpecifications"] = [{
            "ResourceType": "instance", "Tags": [
                {"Key": "qscale:autoscaler", "Value": "check"},
                {"Key": "qscale:resource", "Value": resource}]}]
    if profile:
        args["IamInstanceProfile"] = {
            "Name": ENV["QSCALE_SIM_INSTANCE_PROFILE"]}
    if spot:
        args["InstanceMarketOptions"] = {"MarketType": "spot"}
    return ec2.run_instances(**args)["Instances"][0]["InstanceId"]


def workers(pattern):
    return {w["id"]: w for w in clearml(ENV, "workers.get_all", {
        "worker_pattern": pattern, "last_seen": 0})["workers"]}


def stats():
    return admin(ENV, "GET", "stats")[1]


def task(tid):
    return clearml(ENV, "tasks.get_by_id", {"task": tid})["task"]


def enqueue(qid, name, duration, code=0):
    tid = clearml(ENV, "tasks.create", {
        "name": name, "type": "training",
        "comment": "sim-duration=%s sim-exit=%d" % (duration, code)})["id"]
    clearml(ENV, "tasks.enqueue", {"task": tid, "queue": qid})
    return tid


def log_has(*words):
    with open(LOG) as f:
        return any(all(w in ln for w in words) for ln in f)


def instance(iid):
    return [i for i in stats()["instances"] if i["id"] == iid][0]


def calls_of(rec, since, host):
    return [(c["endpoint"], c["body"]) for c in rec.seq(since)
            if c["headers"].get("x-clearml-worker") == host]


def cloudsim_args(*argv):
    loader = importlib.machinery.SourceFileLoader(
        "cloudsim_main", os.path.join(HERE, "cloudsim"))
    mod = importlib.util.module_from_spec(
        importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(mod)
    return mod.parse_args(list(argv))


REC = Recorder(ENV["QSCALE_SIM_CLEARML_URL"])

# ------------------------------------------------------------- defaults
d = cloudsim_args("--port-base", "20000", "--env-file", "/dev/null")
t.check("defaults as clearml-agent: a poll every 5 s when the queues are "
        "empty, a status report every 30 s; agents go down gracefully",
        d.agent_poll == 5.0 and d.report_interval == 30.0 and
        d.shutdown_mode == "graceful", vars(d))
t.check("--shutdown-mode silent on the command line",
        cloudsim_args("--port-base", "20000", "--env-file", "/dev/null",
                      "--shutdown-mode", "silent").shutdown_mode == "silent")
bad = subprocess.run([os.path.join(HERE, "cloudsim"), "--port-base",
                      "20000", "--env-file", "/dev/null", "--shutdown-mode",
                      "loud"], capture_output=True, text=True)
t.check("... and another mode is refused, naming the choices",
        bad.returncode != 0 and "graceful" in bad.stderr, bad.stderr)


# ------------------------------------------------------ the script reader
def reading(text, owned=False):
    return read_script(text, "i-0abc", "ip-10-77-1-9", owned)


r = reading(startup_script(ENV, prefix="it's:cpu", queue='q "x"'), True)
t.check("qscale's form: '\\'' in single-quoted values, the worker id "
        "from its variables, the HOCON strings of its clearml.conf",
        not r.missing and r.worker == "it's:cpu:i-0abc" and
        r.queues == ['q "x"'] and r.worker_set and
        r.api_server == ENV["QSCALE_SIM_CLEARML_URL"] and
        r.secret_key == ENV["CLEARML_API_SECRET_KEY"], r.as_dict())
r = reading(startup_script(ENV, drop="export CLEARML_WORKER_ID"), True)
t.check("an instance of qscale's without CLEARML_WORKER_ID: named as "
        "missing", r.missing == ["CLEARML_WORKER_ID set for the agent"],
        r.missing)
r = reading(startup_script(ENV, drop="worker_id_prefix="), True)
t.check("a variable the worker id uses but the script never sets: named",
        r.missing == ["worker_id_prefix (used for the worker id, never "
                      "set)"], r.missing)
r = reading(oss_script(ENV))
t.check("ClearML's autoscaler form: CLEARML_WORKER_ID from IMDS, "
        "credentials from CLEARML_API_* exports, python -m clearml_agent",
        not r.missing and r.worker == "dyn:aws4:t3.micro:i-0abc" and
        r.queues == ["q-oss"] and
        r.access_key == ENV["CLEARML_API_ACCESS_KEY"] and
        r.api_server == ENV["QSCALE_SIM_CLEARML_URL"], r.as_dict())
r = reading(oss_script(ENV, key="envkey", secret="envsecret",
                       conf_key="confkey", conf_secret="confsecret"))
t.check("the CLEARML_API_* variables win over clearml.conf, as in the "
        "agent", (r.access_key, r.secret_key) == ("envkey", "envsecret"),
        r.as_dict())
r = reading(oss_script(ENV, key=False, conf_key="confkey",
                       conf_secret="c$x"))
t.check("without them, api.credentials of the clearml.conf the script "
        "writes (unquoted here-document: $x expanded, to nothing)",
        (r.access_key, r.secret_key) == ("confkey", "c") and not r.missing,
        r.as_dict())
conf_only = """#!/bin/sh
mkdir -p /opt/agent
cat > /opt/agent/agent.conf <<'END'
api {
    # unquoted, as clearml.conf files often are
    api_server: %s
    credentials {"access_key": "AK2", "secret_key": "SK2"}
}
END
instance=
for i in 1 2 3; do
    instance=$(curl -s http://169.254.169.254/latest/meta-data/instance-id) && break
    instance=
done
CLEARML_CONFIG_FILE=/opt/agent/agent.conf /usr/local/bin/clearml-agent \\
    daemon --queue q-b q-a --foreground --cpu-only
""" % ENV["QSCALE_SIM_CLEARML_URL"]
r = reading(conf_only)
t.check("a clearml.conf named by CLEARML_CONFIG_FILE, an unquoted URL, "
        "several queues; no worker id set: hostname:cpu:0, as the agent "
        "names itself", not r.missing and r.queues == ["q-b", "q-a"] and
        r.worker == "ip-10-77-1-9:cpu:0" and not r.worker_set and
        (r.api_server, r.access_key, r.secret_key) ==
        (ENV["QSCALE_SIM_CLEARML_URL"], "AK2", "SK2"), r.as_dict())
r = reading("#!/bin/bash\nexport CLEARML_API_HOST=http://h:1\n"
            "export CLEARML_API_ACCESS_KEY=a\nexport CLEARML_API_SECRET_KEY="
            "s3cr3t-$(aws secretsmanager get-secret-value --secret-id x)\n"
            "clearml-agent daemon --queue=q1\n")
t.check("a value the script only knows by running a command is named, "
        "without showing a credential",
        r.agent and "secret_key: from a command the script runs" in
        r.missing and "s3cr3t" not in str(r.missing), r.missing)


def mangled(n, seed=11):
    """n scripts cut, spliced and sprinkled with shell syntax."""
    rnd = random.Random(seed)
    bits = list("$`'\"\\{}()[]<>|&;#=:,\n\t -") + [
        "<<", "<<-", "$(", "${", ">>", "2>&1", "EOF", "clearml-agent",
        "daemon", "--queue", "export ", "CLEARML_WORKER_ID=", '"""', "//"]
    texts = [startup_script(ENV), oss_script(ENV), conf_only]
    for _ in range(n):
        t = list(rnd.choice(texts))
        for _ in range(rnd.randrange(1, 12)):
            k = rnd.randrange(len(t) + 1)
            op = rnd.random()
            if op < 0.45:
                t.insert(k, rnd.choice(bits))
            elif op < 0.9 and t:
                del t[min(k, len(t) - 1)]
            else:
                t = t[:k]
        yield "".join(t)


def read_all(texts):
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(
        TimeoutError("the reader hangs")))
    signal.alarm(20)
    try:
        for text in texts:
            reading(text, owned=True)
        return True
    finally:
        signal.alarm(0)


t.run("the reader neither hangs nor fails on 500 mangled scripts, nor on "
      "one that ends in a redirection",
      lambda: read_all(list(mangled(500)) + ["cat >", "cat <<", "x < ",
                                             "y >> ", "z <<- "]))
r = reading("#!/bin/sh\necho hello\n")
t.check("a script that starts no agent says so",
        not r.agent and r.missing == ["a clearml-agent daemon --queue "
                                      "line"], r.as_dict())

# ----------------------------------------------------------- a good agent
qid = clearml(ENV, "queues.create", {"name": "q-cpu"})["id"]
iid = launch(startup_script(ENV, prefix="qtest:cpu:t3.micro", api=REC.url))
wid = "qtest:cpu:t3.micro:" + iid
w = wait_until(lambda: workers("qtest:cpu:*").get(wid), 8)
t.check("the agent registers as worker_id_prefix:instance_id on its queue",
        w and [q["id"] for q in w["queues"]] == [qid] and "task" not in w,
        w)
t.check("it registered only after running + boot delay",
        wait_until(lambda: [i for i in stats()["instances"]
                            if i["id"] == iid and i["registered"]], 2) and
        [i for i in stats()["instances"] if i["id"] == iid][0]
        ["registered"] - [i for i in stats()["instances"] if i["id"] == iid]
        [0]["launched"] >= 0.8)
host = instance(iid)["hostname"]
t.check("the instance has an EC2-style hostname from its private address",
        re.match(r"^ip-10-77-1-\d+$", host or ""), host)
sent = {c["headers"].get("x-clearml-worker") for c in REC.seq()}
t.check("as clearml-agent, every call carries the machine's hostname in "
        "X-ClearML-Worker, not the worker id", sent == {host}, sent)
reg = [c["time"] for c in REC.seq() if c["endpoint"] == "workers.register"]
first = wait_until(lambda: [c["time"] for c in REC.seq()
                            if c["endpoint"] == "workers.status_report"], 6)
t.check("its first status report comes 3 s after the start, as "
        "clearml-agent's", reg and first and 2.8 <= first[0] - reg[0] <= 4.5,
        (reg, first))
tid = enqueue(qid, "good-1", 1.5)
busy = wait_until(lambda: workers(wid).get(wid, {}).get("task"), 3)
t.check("it pulls the task: in_progress, 'pulled by agent', worker busy",
        busy and busy["id"] == tid and task(tid)["status"] == "in_progress"
        and task(tid)["status_message"] == "pulled by agent" and
        task(tid)["last_worker"] == wid, (busy, task(tid)))
done = wait_until(lambda: task(tid)["status"] == "completed", 4)
t.check("it completes the task after its duration ('worker execution "
        "done')", done and task(tid)["status_reason"] ==
        "worker execution done", task(tid))
idle = wait_until(lambda: "task" not in workers(wid).get(wid, {"task": 1}),
                  2)
t.check("then it is idle again (no task key)", idle)
seq = [(e, b) for e, b in calls_of(REC, 0, host)
       if e in ("tasks.started", "workers.status_report", "tasks.completed")
       and b.get("task", tid) == tid]
i0 = [n for n, (e, _) in enumerate(seq) if e == "tasks.started"]
t.check("on a pop: tasks.started, then at once a status_report naming the "
        "task (the server takes last_worker only from that), and after "
        "tasks.completed one without a task",
        i0 and seq[i0[0] + 1][0] == "workers.status_report" and
        seq[i0[0] + 1][1].get("task") == tid and
        seq[i0[0] + 1][1].get("worker") == wid and
        [e for e, _ in seq].count("tasks.completed") == 1 and
        seq[[e for e, _ in seq].index("tasks.completed") + 1][0] ==
        "workers.status_report" and "task" not in
        seq[[e for e, _ in seq].index("tasks.completed") + 1][1],
        [(e, b.get("task")) for e, b in seq][:12])
tf = enqueue(qid, "bad-exit", 0.3, code=3)
t.check("a task with sim-exit=3 fails with 'worker execution exit code 3'",
        wait_until(lambda: task(tf)["status"] == "failed", 4) and
        task(tf)["status_reason"] == "worker execution exit code 3",
        task(tf))
ts = enqueue(qid, "stopped", 30)
wait_until(lambda: task(ts)["status"] == "in_progress", 3)
clearml(ENV, "tasks.stop", {"task": ts})
t.check("tasks.stop on a running task: the agent stops it (stopped)",
        wait_until(lambda: task(ts)["status"] == "stopped", 3), task(ts))
s = stats()
row = [x for x in s["tasks"] if x["id"] == tid][0]
t.check("stats: the task with queue, worker, instance, times and wait",
        row["status"] == "completed" and row["queue"] == "q-cpu" and
        row["worker"] == wid and row["instance"] == iid and
        row["wait_s"] is not None and row["wait_s"] < 1.5 and
        row["ended"] - row["started"] >= 1.4 and
        s["totals"]["tasks_done"] == 1 and s["totals"]["tasks_failed"] == 1,
        row)
r1 = workers(wid)[wid]["last_activity_time"]
time.sleep(1.3)
r2 = workers(wid)[wid]["last_activity_time"]
t.check("idle, it reports every --report-interval", r2 > r1, (r1, r2))
t.check("the log has launch, register, task start and end",
        log_has("launch", iid) and log_has("register", wid) and
        log_has("task-start", tid) and log_has("task-end", tid,
                                               "completed"))

# --------------------------------------------- graceful shutdown, busy
st, doc = admin(ENV, "GET", "shutdown-mode")
t.check("GET /sim/shutdown-mode: graceful by default",
        st == 200 and doc["default"] == "graceful", doc)
tid2 = enqueue(qid, "cut", 20)
wait_until(lambda: task(tid2)["status"] == "in_progress", 3)
t_term = time.time()
ec2.terminate_instances(InstanceIds=[iid])
gone = wait_until(lambda: wid not in workers(wid), 5)
after = calls_of(REC, t_term, host)
t.check("terminated while it runs a task, the agent does what "
        "clearml-agent does on SIGTERM: tasks.stopped (force false, 'user "
        "abort'), then workers.unregister twice, no last status report",
        gone and [e for e, _ in after if e != "events.add"] ==
        ["tasks.stopped", "workers.unregister", "workers.unregister"] and
        after[[e for e, _ in after].index("tasks.stopped")][1] ==
        {"task": tid2, "force": False, "status_reason": "user abort"},
        after)
t.check("... with a log event 'Process terminated by user' first",
        after and after[0][0] == "events.add" and
        after[0][1].get("msg") == "Process terminated by user", after[:1])
t.check("... so its task ends stopped ('user abort'), not in_progress",
        task(tid2)["status"] == "stopped" and
        task(tid2)["status_reason"] == "user abort", task(tid2))
t.check("the log says how it went down; stats give the mode",
        log_has("terminate", iid) and
        log_has("agent-shutdown", iid, "mode=graceful", "state=busy",
                "task=" + tid2) and log_has("unregister", iid, "calls=2")
        and instance(iid)["shutdown"] == "graceful")

# ------------------------------------------------ silent shutdown, busy
sil = launch(startup_script(ENV, prefix="qtest:cpu:t3.micro", api=REC.url))
swid = "qtest:cpu:t3.micro:" + sil
wait_until(lambda: workers(swid).get(swid), 8)
out = subprocess.run([os.path.join(HERE, "simctl"), "--env-file",
                      sys.argv[1], "shutdown-mode", "silent", sil],
                     capture_output=True, text=True)
t.check("simctl shutdown-mode silent ID: that instance only",
        out.returncode == 0 and instance(sil)["shutdown_mode"] == "silent"
        and admin(ENV, "GET", "shutdown-mode")[1]["default"] == "graceful",
        out.stdout + out.stderr)
tid3 = enqueue(qid, "cut-silent", 20)
wait_until(lambda: task(tid3)["status"] == "in_progress", 3)
shost = instance(sil)["hostname"]
t_term = time.time()
ec2.terminate_instances(InstanceIds=[sil])
time.sleep(0.3)
a1 = workers(swid).get(swid, {}).get("last_activity_time")
time.sleep(1.6)
a2 = workers(swid).get(swid, {}).get("last_activity_time")
t.check("silent (killed with the network gone): not another call, the "
        "worker stays until its TTL, no more reports",
        a1 is not None and a1 == a2 and not calls_of(REC, t_term, shost),
        (a1, a2, calls_of(REC, t_term, shost)))
t.check("... and its task stays in_progress (the autoscaler must requeue "
        "it)", task(tid3)["status"] == "in_progress")
t.check("... the log says so", log_has("agent-shutdown", sil, "mode=silent")
        and instance(sil)["shutdown"] == "silent")

# ------------------------------------------------------------ interruption
sid = launch(startup_script(ENV, prefix="qtest:spot:t3.micro", api=REC.url),
             resource="spot", spot=True)
swid = "qtest:spot:t3.micro:" + sid
wait_until(lambda: workers(swid).get(swid), 8)
phost = instance(sid)["hostname"]
t_term = time.time()
admin(ENV, "POST", "interrupt", {"instance_id": sid})
gone = wait_until(lambda: swid not in workers(swid), 5)
t.check("interrupted while idle: the agent unregisters (once), and "
        "nothing else", gone and [e for e, _ in calls_of(REC, t_term, phost)]
        == ["workers.unregister"], calls_of(REC, t_term, phost))
t.check("... logged as an interruption, gracefully",
        log_has("agent-shutdown", sid, "mode=graceful", "reason=interrupt",
                "state=idle"))
st, doc = admin(ENV, "POST", "shutdown-mode", {"mode": "silent"})
t.check("POST /sim/shutdown-mode {mode: silent}: the default for all",
        st == 200 and doc["default"] == "silent", doc)
sid = launch(startup_script(ENV, prefix="qtest:spot:t3.micro"),
             resource="spot", spot=True)
swid = "qtest:spot:t3.micro:" + sid
wait_until(lambda: workers(swid).get(swid), 8)
admin(ENV, "POST", "interrupt", {"instance_id": sid})
time.sleep(0.2)
b1 = workers(swid).get(swid, {}).get("last_activity_time")
time.sleep(1.5)
b2 = workers(swid).get(swid, {}).get("last_activity_time")
t.check("... then an interrupted agent vanishes at once", b1 and b1 == b2,
        (b1, b2))
st, doc = admin(ENV, "POST", "shutdown-mode", {"mode": "loud"})
t.check("an unknown mode is refused with the choices",
        st == 400 and "graceful or silent" in doc.get("error", ""), doc)
admin(ENV, "POST", "shutdown-mode", {"mode": "graceful"})

# ------------------------------------------- other autoscalers' instances
# Instances without qscale's tags run an agent when their user data starts
# one in a known form: so cloudsim runs ClearML's own autoscaler too.
qo = clearml(ENV, "queues.create", {"name": "q-oss"})["id"]
oid = launch(oss_script(ENV), tags=False)
ec2.create_tags(Resources=[oid], Tags=[{"Key": "team", "Value": "ml"}])
owid = "dyn:aws4:t3.micro:" + oid
w = wait_until(lambda: workers("dyn:*").get(owid), 8)
t.check("an untagged instance with ClearML's autoscaler's script: its "
        "agent registers under the script's worker id, on its queue",
        w and [q["id"] for q in w["queues"]] == [qo], w)
to = enqueue(qo, "oss-1", 0.5)
t.check("... and runs its tasks",
        wait_until(lambda: task(to)["status"] == "completed", 5), task(to))
t.check("... counted under the RESOURCE of its worker id "
        "(PREFIX:RESOURCE:TYPE:ID)", instance(oid)["resource"] == "aws4" and
        stats()["totals"]["max_alive"].get("aws4") == 1,
        (instance(oid)["resource"], stats()["totals"]["max_alive"]))
bad_env = launch(oss_script(ENV, secret="not-the-secret",
                            conf_key=ENV["CLEARML_API_ACCESS_KEY"],
                            conf_secret=ENV["CLEARML_API_SECRET_KEY"]),
                 tags=False)
err = wait_until(lambda: [e for e in stats()["script_errors"]
                          if e["instance"] == bad_env], 6)
t.check("its agent logs in with the CLEARML_API_* credentials of the "
        "script (wrong ones: a script error, though clearml.conf has good "
        "ones)", err and "do not log in" in err[0]["missing"][0], err)
qa = clearml(ENV, "queues.create", {"name": "q-a"})["id"]
qb = clearml(ENV, "queues.create", {"name": "q-b"})["id"]
cid = launch("""#!/bin/sh
cat > /etc/agent.conf <<'END'
api {
    api_server: %s
    credentials { access_key: "%s", secret_key: "%s" }
}
END
CLEARML_CONFIG_FILE=/etc/agent.conf clearml-agent daemon --queue q-b q-a
""" % (REC.url, ENV["CLEARML_API_ACCESS_KEY"], ENV["CLEARML_API_SECRET_KEY"]),
    tags=False)
chost = wait_until(lambda: instance(cid)["hostname"], 2)
cwid = chost + ":0"
w = wait_until(lambda: workers("ip-*").get(cwid), 8)
logins = [c for c in REC.seq() if c["endpoint"] == "auth.login" and
          c["headers"].get("x-clearml-worker") == chost]
basic = "Basic " + base64.b64encode(("%s:%s" % (
    ENV["CLEARML_API_ACCESS_KEY"], ENV["CLEARML_API_SECRET_KEY"]))
    .encode()).decode()
t.check("a script with only a clearml.conf: the agent, named hostname:0, "
        "logs in with its credentials and serves both queues",
        w and sorted(q["id"] for q in w["queues"]) == sorted([qa, qb]) and
        logins and logins[0]["headers"].get("authorization") == basic,
        (w, [c["headers"].get("authorization", "")[:8] for c in logins]))
# q-b's task goes in first: an agent that polls between the two calls
# then takes it as it should, and one that polls after both must still
# choose q-b, the queue it was given first
tb = enqueue(qb, "prio-b", 0.3)
ta = enqueue(qa, "prio-a", 0.3)
got = wait_until(lambda: task(ta)["status"] == "completed" and
                 task(tb)["status"] == "completed", 6)
t.check("... in the order given: q-b first",
        got and task(tb)["started"] < task(ta)["started"],
        (task(ta).get("started"), task(tb).get("started")))
row = [x for x in stats()["tasks"] if x["id"] == ta]
t.check("stats give the instance of a task whose worker id does not name "
        "it (hostname:0)", row and row[0]["instance"] == cid, row)
nid0 = launch("#!/bin/sh\necho hello\n", tags=False)
time.sleep(2.0)
t.check("an untagged instance whose script starts no agent: no agent, no "
        "script error, a no-agent line in the log",
        log_has("no-agent", nid0) and
        not [e for e in stats()["script_errors"] if e["instance"] == nid0])
out = ec2.get_console_output(InstanceId=nid0)["Output"]
if "cloud-init" not in out:
    out = base64.b64decode(out).decode()
t.check("... and its console output says so",
        "starts no clearml-agent" in out, out[-300:])

# ---------------------------------------------------------- broken scripts
bid = launch(startup_script(ENV, drop="worker_id_prefix="))
err = wait_until(lambda: [e for e in stats()["script_errors"]
                          if e["instance"] == bid], 6)
t.check("a script without the worker id: an entry in script_errors naming "
        "what is missing", err and err[0]["missing"] == [
            "worker_id_prefix (used for the worker id, never set)"], err)
t.check("... and a line in the log", log_has("script-error", bid,
                                             "worker_id_prefix"))
t.check("... and no worker registers for it",
        not [w for w in workers("*") if w.endswith(bid)])
cid = launch(startup_script(ENV, prefix="qtest:cred:x", secret="wrong"))
err = wait_until(lambda: [e for e in stats()["script_errors"]
                          if e["instance"] == cid], 6)
t.check("credentials that do not log in are a script error",
        err and "do not log in" in err[0]["missing"][0], err)

# ------------------------------------------------------------- never boot
admin(ENV, "POST", "never-boot", {"next": 1, "resource": "nb"})
secret_script = startup_script(ENV, prefix="qtest:nb:t3.micro")
nid = launch(secret_script, resource="nb")
oid = launch(startup_script(ENV, prefix="qtest:nb:t3.micro"), resource="nb")
time.sleep(2.0)
ws = workers("qtest:nb:*")
t.check("never-boot next=1: that instance never registers, the next does",
        "qtest:nb:t3.micro:" + nid not in ws and
        "qtest:nb:t3.micro:" + oid in ws and
        [i for i in stats()["instances"] if i["id"] == nid][0]["never_boot"],
        sorted(ws))
out = ec2.get_console_output(InstanceId=nid)["Output"]
if "never boots" not in out:
    out = base64.b64decode(out).decode()
t.check("its console output says so and echoes the user data (with the "
        "secret: the autoscaler must mask it)",
        nid in out and "never boots" in out and
        ENV["CLEARML_API_SECRET_KEY"] in out, out[:300])
admin(ENV, "POST", "never-boot", {"instance_id": oid})
t.check("never-boot by instance id is accepted",
        [i for i in stats()["instances"] if i["id"] == oid][0]["never_boot"])

# ------------------------------------------------------------------ reset
st, _ = admin(ENV, "POST", "reset", {})
s = stats()
live = ec2.describe_instances(Filters=[{"Name": "instance-state-name",
                                        "Values": ["pending", "running"]}])
t.check("POST /sim/reset terminates every instance and forgets the rest",
        st == 200 and not live["Reservations"] and s["tasks"] == [] and
        s["instances"] == [] and s["workers"] == [], s["totals"])
REC.close()
sys.exit(t.done())
