"""The simulated cloud as one object: the ClearML server, the EC2 front
and the agents, the admin API over them, and /sim/stats."""

import time

from .util import percentile


class Sim:
    def __init__(self, log, clearml, ec2=None, agents=None):
        self.log = log
        self.clearml = clearml
        self.ec2 = ec2
        self.agents = agents

    # --------------------------------------------------------- admin API

    def admin(self, method, path, doc, query):
        """Returns (http_status, json document)."""
        route = path.rstrip("/")[len("/sim/"):] if path != "/sim" else ""
        key = "%s %s" % (method, route)
        table = {
            "GET stats": self.stats,
            "GET health": lambda d, q: {"ok": True, "ec2": bool(self.ec2)},
            "POST clearml-fault": self.clearml_fault,
            "POST token-ttl": self.token_ttl,
            "GET events": self.events,
            "GET files": lambda d, q: self.clearml.files.listing(),
            "POST reset": self.reset,
            "GET faults": self._ec2("faults_get"),
            "POST faults": self._ec2("faults_add"),
            "DELETE faults": self._ec2("faults_clear"),
            "POST interrupt": self._ec2("interrupt"),
            "POST never-boot": self._ec2("never_boot"),
            "POST agent-crash": self.agent_crash,
            "GET shutdown-mode": self._ec2("shutdown_mode_get"),
            "POST shutdown-mode": self._ec2("shutdown_mode_set"),
            "GET capacity": self._ec2("capacity_get"),
            "POST capacity": self._ec2("capacity_set"),
        }
        fn = table.get(key)
        if fn is None:
            known = sorted(table)
            return 404, {"error": "no admin endpoint %s /sim/%s" %
                         (method, route), "endpoints": known}
        out = fn(doc, query)
        if isinstance(out, tuple):
            return out
        return 200, out

    def _ec2(self, name):
        def call(doc, query):
            if self.ec2 is None:
                return 404, {"error": "EC2 is not simulated (--no-ec2)"}
            return getattr(self.ec2, name)(doc)
        return call

    def agent_crash(self, doc, query):
        if self.agents is None:
            return 404, {"error": "no simulated agents (--no-ec2)"}
        iid = doc.get("instance_id") if isinstance(doc, dict) else None
        return self.agents.crash(iid)

    def clearml_fault(self, doc, query):
        if not isinstance(doc, dict) or "mode" not in doc:
            raise ValueError('expected {"mode": "down"|"500"|"html500"|'
                             '"slow"|"none", "seconds": S}')
        seconds = doc.get("seconds", 10)
        if not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError("seconds must be a non-negative number")
        delay = doc.get("delay_ms")
        if delay is not None and (not isinstance(delay, (int, float))
                                  or delay < 0):
            raise ValueError("delay_ms must be a non-negative number")
        self.clearml.set_fault(str(doc["mode"]), seconds, delay)
        return {"fault": self.clearml.current_fault()}

    def token_ttl(self, doc, query):
        s = doc.get("seconds") if isinstance(doc, dict) else doc
        if s is not None and (not isinstance(s, int) or s <= 0):
            raise ValueError('expected {"seconds": S} with S > 0, or null')
        self.clearml.token_ttl = s
        self.log("token-ttl", seconds=s)
        return {"token_ttl": s}

    def events(self, doc, query):
        tid = query.get("task")
        with self.clearml.lock:
            if tid:
                return {"task": tid,
                        "events": list(self.clearml.events.get(tid, []))}
            return {"tasks": {k: len(v)
                              for k, v in self.clearml.events.items()}}

    def reset(self, doc, query):
        if self.agents is not None:
            self.agents.reset()
        if self.ec2 is not None:
            self.ec2.reset()
        self.clearml.reset()
        self.log("reset")
        return {"reset": True}

    # ------------------------------------------------------------- stats

    def stats(self, doc=None, query=None):
        now = time.time()
        tasks = []
        waits = []
        task_seconds = 0.0
        done = failed = 0
        # the instance of a worker: its agent's, else the id's last field
        # (a worker id like hostname:0 names no instance)
        by_worker = self.ec2.workers() if self.ec2 is not None else {}
        for t in self.clearml.snapshot_tasks():
            inst = None
            if t["worker"]:
                last = t["worker"].rsplit(":", 1)[-1]
                inst = by_worker.get(t["worker"]) or \
                    (last if last.startswith("i-") else None)
            wait = None
            if t["enqueued"] and t["started"]:
                wait = round(t["started"] - t["enqueued"], 3)
                waits.append(wait)
            if t["started"]:
                end = t["ended"] or (now if t["status"] == "in_progress"
                                     else None)
                if end:
                    task_seconds += max(0.0, end - t["started"])
            done += t["status"] == "completed"
            failed += t["status"] == "failed"
            t.update(instance=inst, wait_s=wait)
            tasks.append(t)
        totals = {
            "tasks": len(tasks), "tasks_done": done, "tasks_failed": failed,
            "task_seconds": round(task_seconds, 3),
            "mean_wait_s": round(sum(waits) / len(waits), 3) if waits
            else None,
            "p95_wait_s": percentile(waits, 95),
            "max_wait_s": max(waits) if waits else None,
            "clearml_calls": self.clearml.snapshot_calls(),
        }
        out = {"time": now, "tasks": tasks, "totals": totals}
        with self.clearml.lock:
            out["workers"] = sorted(self.clearml.workers)
            out["queues"] = {q["name"]: len(q["entries"])
                             for q in self.clearml.queues.values()}
        if self.ec2 is not None:
            ec2 = self.ec2.stats()
            out["instances"] = ec2["instances"]
            totals.update(ec2["totals"])
        else:
            out["instances"] = []
        errs = self.agents.script_errors() if self.agents is not None else []
        totals["script_errors"] = out["script_errors"] = errs
        return out
