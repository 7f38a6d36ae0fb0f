"""Simulated clearml-agents: one thread per live instance.  After the boot
delay each reads its user data back from EC2 and, if the startup script
starts clearml-agent (see script.py: qscale's script, ClearML's own
autoscaler's, or any script in the usual forms), takes the worker id,
queues and ClearML credentials from it and behaves as clearml-agent does
(register, poll, run, report).  An instance tagged as qscale's whose
script does not start a working agent is a script error; any other is a
machine without an agent.
When its instance goes down it does what its shutdown mode says:
'graceful', as clearml-agent on SIGTERM (stops its task, unregisters), or
'silent' (no other call)."""

import base64
import json
import re
import threading
import time
import urllib.error
import urllib.request

from .script import read_script

FIRST_REPORT = 3.0      # clearml-agent: first status report after start
SHUTDOWN_GRACE = 10.0   # seconds the network stays up on the way down
ABORT_STATUSES = ("stopped", "closed", "failed", "published", "queued",
                  "created", "completed")


class ApiError(Exception):
    def __init__(self, status, meta, transient):
        super().__init__("HTTP %s %s" % (status, meta))
        self.status = status
        self.meta = meta
        self.transient = transient


class Session:
    """A ClearML API session the way the agent keeps one: Basic to log in,
    Bearer after, login again once on a 401."""

    def __init__(self, server, key, secret, host):
        self.server = server.rstrip("/")
        self.basic = "Basic " + base64.b64encode(
            ("%s:%s" % (key, secret)).encode()).decode()
        self.token = None
        self.host = host

    def _post(self, endpoint, body, auth):
        req = urllib.request.Request(
            self.server + "/" + endpoint, data=json.dumps(body).encode(),
            method="POST", headers={"Content-Type": "application/json",
                                    "Authorization": auth,
                                    "X-ClearML-Worker": self.host})
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                return json.load(r)["data"]
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                meta = json.loads(raw)["meta"]
            except (ValueError, KeyError, TypeError):
                meta = {"result_msg": raw[:100].decode("utf-8", "replace")}
            transient = e.code >= 500 or e.code in (429,)
            raise ApiError(e.code, meta, transient)
        except (OSError, ValueError) as e:
            raise ApiError(None, {"result_msg": str(e)}, True)

    def login(self):
        self.token = self._post("auth.login", {}, self.basic)["token"]

    def call(self, endpoint, body):
        if self.token is None:
            self.login()
        try:
            return self._post(endpoint, body, "Bearer " + self.token)
        except ApiError as e:
            if e.status != 401:
                raise
            self.login()
            return self._post(endpoint, body, "Bearer " + self.token)


class Agent(threading.Thread):
    def __init__(self, mgr, inst):
        super().__init__(name="agent-" + inst.id, daemon=True)
        self.mgr = mgr
        self.inst = inst
        self.gone = threading.Event()
        self.script = None
        self.error = None
        self.state = "booting"
        self.task = None         # the task it runs, once started
        self.task_queue = None   # the queue it came from
        self.qids = []
        self.worker = None
        self.crashed = False
        self.no_agent_why = None    # why, when the script starts none
        self.term = None         # (mode, why) once its instance went down

    # Each wait returns True when the instance is gone.
    def wait(self, seconds):
        return self.gone.wait(max(0.0, seconds))

    def call(self, endpoint, body):
        """An API call, retried while the server is unreachable or failing;
        None if the instance went away meanwhile.  4xx errors raise."""
        delay = 0.5
        while not self.gone.is_set():
            try:
                return self.sess.call(endpoint, body)
            except ApiError as e:
                if not e.transient:
                    raise
                if self.wait(delay):
                    return None
                delay = min(delay * 2, 5.0)
        return None

    def run(self):
        try:
            self.lifecycle()
            if self.term is not None and not self.crashed:
                self.on_sigterm(*self.term)
        except ApiError as e:
            self.mgr.log("agent-error", instance=self.inst.id,
                         error="%s %s" % (e.status, e.meta.get("result_msg")))
        except Exception as e:
            self.mgr.script_error(self.inst, ["agent crashed: %r" % e])
        self.state = "gone"

    def final_call(self, endpoint, body, deadline):
        """A call made on the way down: transient errors are retried
        until the deadline (the machine powers off then), others are
        logged.  None when it did not go through."""
        delay = 0.2
        while not self.mgr.stop.is_set():
            try:
                return self.sess.call(endpoint, body)
            except ApiError as e:
                if not e.transient or time.time() + delay >= deadline:
                    self.mgr.log("agent-error", instance=self.inst.id,
                                 error="%s on shutdown: %s %s" % (
                                     endpoint, e.status,
                                     e.meta.get("result_msg")))
                    return None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        return None

    def on_sigterm(self, mode, why):
        """The instance goes down.  'silent': killed with the network
        already gone, not another call.  'graceful': as clearml-agent
        3.x on SIGTERM with the network up: a running task is stopped
        (tasks.stopped, force false, "user abort"), then the worker
        unregisters (twice when it ran a task), and no last status
        report."""
        state, task = self.state, self.task
        self.mgr.log("agent-shutdown", instance=self.inst.id, mode=mode,
                     reason=why, state=state, worker=self.worker, task=task)
        if mode != "graceful" or state not in ("idle", "busy"):
            return
        deadline = time.time() + SHUTDOWN_GRACE
        if task is not None:
            self.final_call("events.add", {
                "task": task, "type": "log", "level": "error",
                "worker": self.worker, "timestamp": int(time.time() * 1000),
                "msg": "Process terminated by user"}, deadline)
            ok = self.final_call("tasks.stopped", {
                "task": task, "force": False,
                "status_reason": "user abort"}, deadline)
            self.mgr.log("task-end", instance=self.inst.id, task=task,
                         result="stopped" if ok is not None else
                         "stop failed", reason="user abort")
        n = 0
        for _ in range(2 if task is not None else 1):
            if self.final_call("workers.unregister",
                               {"worker": self.worker},
                               deadline) is not None:
                n += 1
        self.mgr.log("unregister", instance=self.inst.id,
                     worker=self.worker, calls=n)

    def lifecycle(self):
        opts = self.mgr.opts
        inst = self.inst
        start = inst.launched + opts.pending_delay + opts.boot_delay
        if self.wait(start - time.time()):
            return
        text = self.mgr.user_data(inst.id)
        self.script = text
        if inst.never_boot:
            self.state = "never-boot"
            self.mgr.log("never-boot", instance=inst.id, note="does not boot")
            return
        # qscale's own instances must run its agent; any other runs one
        # only if its user data starts clearml-agent in a known form
        owned = "qscale:autoscaler" in inst.tags and \
            "qscale:resource" in inst.tags
        if text is None:
            if owned:
                self.mgr.script_error(inst, ["user data (none given)"])
            else:
                self.no_agent("no user data")
            return
        r = read_script(text, inst.id, inst.hostname,
                        require_worker_id=owned)
        if not r.agent and not owned:
            self.no_agent("its user data starts no clearml-agent daemon")
            return
        if r.missing:
            self.mgr.script_error(inst, r.missing)
            return
        self.worker = r.worker
        self.queue_name = " ".join(r.queues)
        m = re.match(r"^[^:]+:([^:]+):[^:]+:%s$" % re.escape(inst.id),
                     r.worker)
        if m and not owned:     # PREFIX:RESOURCE:TYPE:ID, as ClearML's own
            inst.agent_resource = m.group(1)
        # as clearml-agent, the machine's hostname in X-ClearML-Worker
        self.sess = Session(r.api_server, r.access_key, r.secret_key,
                            inst.hostname)
        if not self.login():
            return
        qids = []
        for name in r.queues:
            qid = self.resolve_queue(name)
            if qid is None:
                return
            qids.append(qid)
        self.qids = qids
        if self.call("workers.register", {"worker": self.worker,
                                          "queues": qids}) is None:
            return
        inst.registered = time.time()
        inst.worker = self.worker
        self.state = "idle"
        self.mgr.log("register", instance=inst.id, worker=self.worker,
                     queue=self.queue_name, host=inst.hostname)
        self.loop()

    def no_agent(self, why):
        self.state = "no-agent"
        self.no_agent_why = why
        self.mgr.log("no-agent", instance=self.inst.id, note=why)

    def login(self):
        delay = 0.5
        while not self.gone.is_set():
            try:
                self.sess.login()
                return True
            except ApiError as e:
                if not e.transient:
                    self.mgr.script_error(self.inst, [
                        "ClearML credentials of the script do not log in "
                        "at %s: %s" % (self.sess.server,
                                       e.meta.get("result_msg"))])
                    return False
                if self.wait(delay):
                    return False
                delay = min(delay * 2, 5.0)
        return False

    def resolve_queue(self, name):
        deadline = time.time() + 30
        while not self.gone.is_set():
            data = self.call("queues.get_all", {
                "name": re.escape(name),
                "only_fields": ["name", "id"], "search_hidden": True})
            if data is None:
                return None
            for q in data.get("queues", []):
                if q.get("name", "").lower() == name.lower():
                    return q["id"]
            if time.time() >= deadline:
                self.mgr.script_error(self.inst, [
                    "queue %r does not exist on the ClearML server" %
                    name])
                return None
            if self.wait(1.0):
                return None
        return None

    def report(self, task=None):
        body = {"worker": self.worker, "timestamp": int(time.time() * 1000),
                "queues": list(self.qids),
                "machine_stats": {"cpu_usage": [3.0], "memory_used": 512,
                                  "memory_free": 3584}}
        if task:
            body["task"] = task
            body["queue"] = self.task_queue
        try:
            return self.call("workers.status_report", body) is not None
        except ApiError as e:
            self.mgr.log("agent-error", instance=self.inst.id,
                         error="status_report: %s" %
                         e.meta.get("result_msg"))
            return True

    def loop(self):
        opts = self.mgr.opts
        # clearml-agent's monitor sends its first report 3 s after the
        # start, then one every report interval
        next_report = time.time() + FIRST_REPORT
        while not self.gone.is_set():
            entry = None
            for qid in self.qids:       # in priority order
                data = self.call("queues.get_next_task", {"queue": qid})
                if data is None:
                    return
                entry = data.get("entry")
                if entry:
                    self.task_queue = qid
                    break
            if entry:
                if not self.run_task(entry["task"]):
                    return
                next_report = time.time() + opts.report_interval
                continue
            until = time.time() + opts.agent_poll
            while time.time() < until:
                if time.time() >= next_report:
                    if not self.report():
                        return
                    next_report = time.time() + opts.report_interval
                if self.wait(min(until, next_report) - time.time()):
                    return

    def task_params(self, tid):
        data = self.call("tasks.get_by_id", {"task": tid})
        if data is None:
            return None
        comment = data["task"].get("comment") or ""
        m = re.search(r"sim-duration=([0-9.]+)", comment)
        dur = float(m.group(1)) if m else 10.0
        m = re.search(r"sim-exit=(-?\d+)", comment)
        code = int(m.group(1)) if m else 0
        return dur, code

    def aborted(self, tid):
        """None: still ours; 'drop' or 'stopping' otherwise."""
        data = self.call("tasks.get_all", {
            "id": [tid], "search_hidden": True,
            "only_fields": ["status", "status_message"]})
        if data is None:
            return "gone"
        tasks = data.get("tasks") or []
        if not tasks:
            return "drop"
        t = tasks[0]
        if t.get("status") == "in_progress":
            return "stopping" if t.get("status_message") == "stopping" \
                else None
        return "drop" if t.get("status") in ABORT_STATUSES else None

    def run_task(self, tid):
        """Returns False when the instance went away."""
        opts = self.mgr.opts
        try:
            if self.call("tasks.started", {
                    "task": tid, "force": True,
                    "status_message": "pulled by agent"}) is None:
                return False
            self.state = "busy"
            self.task = tid
            if not self.report(tid):
                return False
            params = self.task_params(tid)
        except ApiError as e:
            self.mgr.log("agent-error", instance=self.inst.id, task=tid,
                         error=e.meta.get("result_msg"))
            self.state = "idle"
            self.task = None
            return self.report()
        if params is None:
            return False
        dur, code = params
        self.mgr.log("task-start", instance=self.inst.id, task=tid,
                     worker=self.worker, duration=dur)
        end = time.time() + dur
        next_report = time.time() + opts.report_interval
        next_check = time.time() + max(opts.agent_poll, 0.2)
        verdict = None
        while True:
            now = time.time()
            if now >= end:
                break
            if now >= next_report:
                if not self.report(tid):
                    return False
                next_report = now + opts.report_interval
            if now >= next_check:
                verdict = self.aborted(tid)
                if verdict == "gone":
                    return False
                if verdict:
                    break
                next_check = now + max(opts.agent_poll, 0.2)
            if self.wait(min(end, next_report, next_check) - time.time()):
                return False
        if verdict is None:
            verdict = self.aborted(tid)
            if verdict == "gone":
                return False
        try:
            if verdict == "stopping":
                self.call("tasks.stopped", {"task": tid, "force": True,
                                            "status_reason": "aborted"})
                result = "stopped"
            elif verdict:
                result = "dropped"
            elif code == 0:
                self.call("tasks.completed", {
                    "task": tid, "status_reason": "worker execution done"})
                result = "completed"
            else:
                self.call("tasks.failed", {
                    "task": tid,
                    "status_reason": "worker execution exit code %d" % code})
                result = "failed"
        except ApiError as e:
            result = "error: %s" % e.meta.get("result_msg")
        self.task = None
        if self.gone.is_set():
            return False
        self.mgr.log("task-end", instance=self.inst.id, task=tid,
                     result=result)
        self.state = "idle"
        return self.report()


class Agents:
    """Starts an agent for every tagged live instance; the EC2 front tells
    it of launches and terminations."""

    def __init__(self, ec2, opts, log):
        self.ec2 = ec2
        self.opts = opts
        self.log = log
        self.lock = threading.Lock()
        self.agents = {}
        self.errors = []
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, name="agents",
                                       daemon=True)
        self.thread.start()

    def notify(self):
        self.wake.set()

    def user_data(self, iid):
        try:
            r = self.ec2.moto.describe_instance_attribute(
                InstanceId=iid, Attribute="userData")
        except Exception as e:
            self.log("agent-error", instance=iid, error="user data: %r" % e)
            return None
        v = r.get("UserData", {}).get("Value")
        if not v:
            return None
        try:
            return base64.b64decode(v).decode("utf-8", "replace")
        except ValueError:
            return None

    def script_error(self, inst, missing):
        entry = {"instance": inst.id, "resource": inst.resource,
                 "time": time.time(), "missing": list(missing)}
        with self.lock:
            self.errors.append(entry)
        self.log("script-error", instance=inst.id, resource=inst.resource,
                 missing="; ".join(missing))

    def script_errors(self):
        with self.lock:
            return [dict(e) for e in self.errors]

    def crash(self, iid):
        """The agent of a running instance dies as a process would: no
        unregister, no more reports; the instance runs on."""
        with self.lock:
            a = self.agents.get(iid)
        if a is None or a.inst.terminated is not None:
            raise ValueError("no agent runs on instance %r" % (iid,))
        if a.state not in ("idle", "busy"):
            raise ValueError("the agent of %s is %s, not registered" %
                             (iid, a.state))
        a.inst.agent_crashed = time.time()
        a.crashed = True
        a.gone.set()
        self.log("agent-crash", instance=iid, worker=a.worker,
                 state=a.state)
        return {"agent_crashed": iid, "worker": a.worker}

    def sigterm(self, iid, mode, why):
        """The instance of the agent goes down ('terminate' or
        'interrupt'); the agent goes in the given shutdown mode."""
        with self.lock:
            a = self.agents.get(iid)
        if a is not None and a.term is None:
            a.term = (mode, why)
            a.gone.set()

    def reset(self):
        with self.lock:
            agents = list(self.agents.values())
            self.agents = {}
            self.errors = []
        for a in agents:
            a.gone.set()

    def shutdown(self):
        self.stop.set()
        self.wake.set()
        self.reset()

    def console_text(self, iid):
        with self.ec2.lock:
            inst = self.ec2.instances.get(iid)
        if inst is None:
            return None
        with self.lock:
            a = self.agents.get(iid)
        lines = ["[    0.000000] Linux version 6.1.0-cloudsim (cloudsim@sim) "
                 "#1 SMP", "[    0.410000] cloud-init[412]: instance-id: %s"
                 % iid, "[    0.420000] cloud-init[412]: instance-type: %s, "
                 "availability-zone: %s" % (inst.type, inst.az)]
        script = a.script if a is not None else None
        if script is None and (inst.never_boot or a is None):
            script = self.user_data(iid)
        if inst.never_boot:
            lines += ["[    1.200000] cloudsim: instance %s never boots: the "
                      "startup script does not run" % iid,
                      "[    1.210000] cloud-init[412]: user data follows:"]
            lines += (script or "(no user data)").splitlines()
        elif a is not None and a.state in ("idle", "busy"):
            lines += ["[    2.000000] cloud-init[412]: running the startup "
                      "script", "[    5.000000] clearml-agent: worker %s "
                      "listening on queue %s" % (a.worker, a.queue_name)]
        else:
            errs = [e for e in self.script_errors() if e["instance"] == iid]
            if errs:
                lines += ["[    2.000000] cloudsim: the agent did not start: "
                          + "; ".join(errs[-1]["missing"]),
                          "[    2.010000] cloud-init[412]: user data "
                          "follows:"]
                lines += (script or "(no user data)").splitlines()
            elif a is not None and a.no_agent_why:
                lines.append("[    2.000000] cloud-init[412]: the startup "
                             "script starts no clearml-agent")
            else:
                lines.append("[    1.000000] cloud-init[412]: booting")
        return "\n".join(lines) + "\n"

    def watch(self):
        last_sync = 0.0
        while not self.stop.is_set():
            self.wake.wait(0.5)
            self.wake.clear()
            if self.stop.is_set():
                return
            if time.time() - last_sync >= 1.0:
                last_sync = time.time()
                try:
                    self.sync()
                except Exception as e:
                    self.log("agent-error", error="sync with moto: %r" % e)
            self.start_new()

    def start_new(self):
        with self.ec2.lock:
            cands = [i for i in self.ec2.instances.values()
                     if i.terminated is None]
        for inst in cands:
            with self.lock:
                if inst.id in self.agents or self.stop.is_set():
                    continue
                a = Agent(self, inst)
                self.agents[inst.id] = a
            a.start()

    def sync(self):
        """Catch what did not go through the front: launches and
        terminations made directly in moto (a spot request, say), and
        tags given or taken later."""
        from .ec2front import LIVE, USER_REASON, Instance
        listed = time.time()
        seen = {}
        pager = self.ec2.moto.get_paginator("describe_instances")
        for page in pager.paginate(Filters=[{"Name": "instance-state-name",
                                             "Values": list(LIVE)}]):
            for res in page["Reservations"]:
                for i in res["Instances"]:
                    seen[i["InstanceId"]] = i
        new, retag = [], []
        with self.ec2.lock:
            for iid, i in seen.items():
                inst = self.ec2.instances.get(iid)
                tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
                if inst is None:
                    lt = i.get("LaunchTime")
                    if lt is None or listed - lt.timestamp() < 3.0:
                        continue    # the front may be registering it now
                    inst = Instance(
                        iid, i.get("InstanceType"),
                        i.get("Placement", {}).get("AvailabilityZone"),
                        i.get("SubnetId"),
                        "spot" if i.get("InstanceLifecycle") == "spot"
                        else "on-demand", tags, lt.timestamp())
                    inst.private_ip = i.get("PrivateIpAddress")
                    self.ec2.instances[iid] = inst
                    self.ec2.launched += 1
                    new.append(inst)
                elif inst.terminated is None and tags != inst.tags:
                    retag.append((iid, tags, set(inst.tags) - set(tags)))
            # alive here, not in moto's list of live ones: gone meanwhile
            # (those launched after the list was taken are not in it yet)
            gone = [x.id for x in self.ec2.instances.values()
                    if x.terminated is None and x.id not in seen and
                    not x.interrupting and x.launched < listed - 1.0]
        for inst in new:
            self.log("launch", instance=inst.id, resource=inst.resource,
                     type=inst.type, az=inst.az, market=inst.market,
                     note="seen in moto, not through the front")
        for iid, tags, removed in retag:
            self.ec2.retag(iid, tags, removed)
        if gone:
            self.ec2.mark_terminated(gone, USER_REASON)
