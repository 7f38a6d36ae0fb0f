"""Simulated clearml-agents: one thread per instance that carries qscale's
ownership tags.  Each reads its user data back from EC2, takes the worker
id, queue and ClearML credentials from the startup script, and after the
boot delay behaves as clearml-agent does (register, poll, run, report).
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

RE_PREFIX = re.compile(r"^worker_id_prefix='((?:[^']|'\\'')*)'$", re.M)
RE_QUEUE = re.compile(r"^queue='((?:[^']|'\\'')*)'$", re.M)
RE_EXPORT = re.compile(
    r'^export CLEARML_WORKER_ID="\$\{worker_id_prefix\}:\$\{instance_id\}"$',
    re.M)
RE_CONF = {k: re.compile(r'\b%s\s*[:=]\s*"((?:[^"\\]|\\.)*)"' % k)
           for k in ("api_server", "access_key", "secret_key")}
FIRST_REPORT = 3.0
SHUTDOWN_GRACE = 10.0   # seconds the network stays up on the way down
ABORT_STATUSES = ("stopped", "closed", "failed", "published", "queued",
                  "created", "completed")


def shell_unquote(v):
    return v.replace("'\\''", "'")


def hocon_unquote(v):
    try:
        return json.loads('"%s"' % v)
    except ValueError:
        return v


def parse_script(text):
    """The contract between qscale's startup script and the agent.
    Returns (values, missing) where missing names what was not found."""
    got, missing = {}, []
    m = RE_PREFIX.search(text)
    if m:
        got["worker_id_prefix"] = shell_unquote(m.group(1))
    else:
        missing.append("worker_id_prefix='...' line")
    m = RE_QUEUE.search(text)
    if m:
        got["queue"] = shell_unquote(m.group(1))
    else:
        missing.append("queue='...' line")
    if not RE_EXPORT.search(text):
        missing.append('export CLEARML_WORKER_ID="${worker_id_prefix}:'
                       '${instance_id}" line')
    if not any("clearml-agent" in ln and "daemon" in ln and
               '--queue "$queue"' in ln for ln in text.splitlines()):
        missing.append('clearml-agent daemon --queue "$queue" line')
    for k, rx in RE_CONF.items():
        m = rx.search(text)
        if m:
            got[k] = hocon_unquote(m.group(1))
        else:
            missing.append('clearml.conf %s: "..."' % k)
    return got, missing


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
        self.worker = None
        self.crashed = False
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
        if text is None:
            self.mgr.script_error(inst, ["user data (none given)"])
            return
        got, missing = parse_script(text)
        if missing:
            self.mgr.script_error(inst, missing)
            return
        self.worker = "%s:%s" % (got["worker_id_prefix"], inst.id)
        self.queue_name = got["queue"]
        # as clearml-agent, the machine's hostname in X-ClearML-Worker
        self.sess = Session(got["api_server"], got["access_key"],
                            got["secret_key"], inst.hostname)
        if not self.login():
            return
        qid = self.resolve_queue()
        if qid is None:
            return
        self.qid = qid
        if self.call("workers.register", {"worker": self.worker,
                                          "queues": [qid]}) is None:
            return
        inst.registered = time.time()
        inst.worker = self.worker
        self.state = "idle"
        self.mgr.log("register", instance=inst.id, worker=self.worker,
                     queue=self.queue_name)
        self.loop()

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

    def resolve_queue(self):
        deadline = time.time() + 30
        while not self.gone.is_set():
            data = self.call("queues.get_all", {
                "name": re.escape(self.queue_name),
                "only_fields": ["name", "id"], "search_hidden": True})
            if data is None:
                return None
            for q in data.get("queues", []):
                if q.get("name", "").lower() == self.queue_name.lower():
                    return q["id"]
            if time.time() >= deadline:
                self.mgr.script_error(self.inst, [
                    "queue %r does not exist on the ClearML server" %
                    self.queue_name])
                return None
            if self.wait(1.0):
                return None
        return None

    def report(self, task=None):
        body = {"worker": self.worker, "timestamp": int(time.time() * 1000),
                "queues": [self.qid],
                "machine_stats": {"cpu_usage": [3.0], "memory_used": 512,
                                  "memory_free": 3584}}
        if task:
            body["task"] = task
            body["queue"] = self.qid
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
            data = self.call("queues.get_next_task", {"queue": self.qid})
            if data is None:
                return
            entry = data.get("entry")
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
                     if i.terminated is None and "qscale:autoscaler" in i.tags
                     and "qscale:resource" in i.tags]
        for inst in cands:
            with self.lock:
                if inst.id in self.agents or self.stop.is_set():
                    continue
                a = Agent(self, inst)
                self.agents[inst.id] = a
            a.start()

    def sync(self):
        """Catch what did not go through the front: launches and
        terminations made directly in moto, and tags added later."""
        seen = {}
        pager = self.ec2.moto.get_paginator("describe_instances")
        for page in pager.paginate(Filters=[{"Name": "tag-key",
                                             "Values": ["qscale:resource"]}]):
            for res in page["Reservations"]:
                for i in res["Instances"]:
                    seen[i["InstanceId"]] = i
        gone = []
        with self.ec2.lock:
            for iid, i in seen.items():
                inst = self.ec2.instances.get(iid)
                state = i["State"]["Name"]
                tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
                if inst is None and state in ("pending", "running"):
                    from .ec2front import Instance
                    inst = Instance(
                        iid, i.get("InstanceType"),
                        i.get("Placement", {}).get("AvailabilityZone"),
                        i.get("SubnetId"),
                        "spot" if i.get("InstanceLifecycle") == "spot"
                        else "on-demand", tags, time.time())
                    inst.private_ip = i.get("PrivateIpAddress")
                    self.ec2.instances[iid] = inst
                    self.ec2.launched += 1
                    self.ec2.sample_alive()
                    self.log("launch", instance=iid, resource=inst.resource,
                             note="seen in moto, not through the front")
                elif inst is not None:
                    inst.tags.update(tags)
                    if state in ("terminated", "shutting-down") and \
                            inst.terminated is None:
                        gone.append(iid)
        if gone:
            from .ec2front import USER_REASON
            self.ec2.mark_terminated(gone, USER_REASON)
