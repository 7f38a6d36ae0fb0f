#!/usr/bin/env python3
"""Checks the invariants of a soak run on cloudsim's event log (--log).

  simlog.py --log FILE --queues Q,... [--cap RESOURCE=N ...] [--total N]
            [--tasks N] [--requeues N]

Prints one 'ok - ...' or 'not ok - ...' line per invariant (tap_from in
simlib.sh makes them TAP), '# ...' lines with the evidence of a failure:

- the tasks enqueued on the queues were each completed exactly once,
  none failed (a run its agent stopped as a deliberate interruption
  reclaimed the instance, as clearml-agent does, is a lost run);
- a task started again only after a deliberate interruption ('interrupt'
  lines) of the instance that ran it, and at most --requeues times;
- never more instances alive (launched, not terminated nor interrupted)
  of a resource than its cap, nor of all resources than --total;
- never an instance terminated while its agent ran a task;
- nothing alive at the end of the log.
"""

import argparse
import collections
import datetime
import sys


def parse_line(line):
    """'<time> <event> k=v k="v w" ...' -> (epoch, event, {k: v})."""
    head, _, rest = line.rstrip("\n").partition(" ")
    event, _, rest = rest.partition(" ")
    try:
        t = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
    t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
    kv = {}
    i = 0
    while i < len(rest):
        if rest[i] == " ":
            i += 1
            continue
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq]
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            i += 1
            val = []
            while i < len(rest) and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < len(rest):
                    i += 1
                val.append(rest[i])
                i += 1
            i += 1
            kv[key] = "".join(val)
        else:
            end = rest.find(" ", i)
            end = len(rest) if end < 0 else end
            kv[key] = rest[i:end]
            i = end
    return t, event, kv


def when(t):
    return datetime.datetime.fromtimestamp(
        t, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


class Check:
    def __init__(self):
        self.failed = 0

    def result(self, good, desc, evidence=()):
        print("%s - %s" % ("ok" if good else "not ok", desc))
        if not good:
            self.failed += 1
            for e in list(evidence)[:15]:
                print("# " + e)


def replay(events, caps, total):
    """Alive instances over time: the peaks, and any excess."""
    alive = {}                  # instance -> resource
    running = {}                # instance -> task its agent runs
    peak = collections.Counter()
    peak_total = 0
    over, busy_killed = [], []
    for t, ev, kv in events:
        iid = kv.get("instance")
        if ev == "launch":
            alive[iid] = kv.get("resource", "?")
            res = alive[iid]
            n = sum(1 for r in alive.values() if r == res)
            peak[res] = max(peak[res], n)
            cap = caps.get(res)
            if cap is not None and n > cap:
                over.append("%s: %d %s instances alive (cap %d) at %s" %
                            (iid, n, res, cap, when(t)))
            peak_total = max(peak_total, len(alive))
            if total and len(alive) > total:
                over.append("%s: %d instances alive in total (cap %d) "
                            "at %s: %s" % (iid, len(alive), total, when(t),
                                           dict(collections.Counter(
                                               alive.values()))))
        elif ev == "task-start":
            running[iid] = kv.get("task")
        elif ev == "task-end":
            running.pop(iid, None)
        elif ev == "terminate":
            if iid in running:
                busy_killed.append("%s terminated at %s while running "
                                   "task %s" % (iid, when(t), running[iid]))
            alive.pop(iid, None)
            running.pop(iid, None)
        elif ev == "interrupt":
            alive.pop(iid, None)
            running.pop(iid, None)
    return alive, peak, peak_total, over, busy_killed


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    p.add_argument("--queues", required=True)
    p.add_argument("--cap", action="append", default=[])
    p.add_argument("--total", type=int, default=0)
    p.add_argument("--tasks", type=int, default=None)
    p.add_argument("--requeues", type=int, default=1)
    a = p.parse_args(argv)
    queues = set(a.queues.split(","))
    caps = {}
    for c in a.cap:
        name, _, n = c.partition("=")
        caps[name] = int(n)

    with open(a.log, encoding="utf-8", errors="replace") as f:
        events = [e for e in map(parse_line, f) if e is not None]
    events.sort(key=lambda e: e[0])
    chk = Check()

    tasks = [kv["task"] for _, ev, kv in events
             if ev == "enqueue" and kv.get("queue") in queues]
    if a.tasks is not None:
        chk.result(len(set(tasks)) == a.tasks,
                   "%d tasks enqueued (%d)" % (a.tasks, len(set(tasks))))
    mine = set(tasks)
    starts = collections.defaultdict(list)     # task -> [instance]
    ends = collections.defaultdict(list)       # task -> [result]
    running = {}                               # instance -> task
    hit = collections.Counter()                # task -> interruptions
    # every instance interrupted, whether its agent's last word is logged
    # before or after the interruption's own line
    interrupted = {kv.get("instance") for _, ev, kv in events
                   if ev == "interrupt"}
    for t, ev, kv in events:
        iid, tid = kv.get("instance"), kv.get("task")
        if ev == "task-start" and tid in mine:
            starts[tid].append(iid)
            running[iid] = tid
        elif ev == "task-end" and tid in mine:
            # a graceful agent stops its task as its instance is
            # reclaimed ("user abort"): that run was lost, not ended
            if kv.get("result") == "stopped" and iid in interrupted:
                if running.pop(iid, None) is not None:
                    hit[tid] += 1
                continue
            ends[tid].append(kv.get("result"))
            running.pop(iid, None)
        elif ev == "interrupt" and iid in running:
            hit[running.pop(iid)] += 1

    bad = ["task %s: results %s" % (tid, ends[tid] or "none")
           for tid in tasks if ends[tid] != ["completed"]]
    chk.result(tasks and not bad, "every task completed exactly once, none "
               "failed (%d tasks, %d interrupted)" % (len(mine), len(hit)),
               bad)
    bad = []
    for tid in tasks:
        n = len(starts[tid])
        if n != 1 + hit[tid] or hit[tid] > a.requeues:
            bad.append("task %s: started %d times on %s, interrupted %d "
                       "times" % (tid, n, starts[tid], hit[tid]))
    chk.result(not bad, "a task ran again only after a deliberate "
               "interruption, at most %d time(s)" % a.requeues, bad)

    alive, peak, peak_total, over, busy = replay(events, caps, a.total)
    print("# peak alive: %s; in total %d" % (dict(peak), peak_total))
    res_over = [o for o in over if "in total" not in o]
    tot_over = [o for o in over if "in total" in o]
    chk.result(not res_over, "never more instances of a resource than its "
               "max_instances %s" % caps, res_over)
    if a.total:
        chk.result(not tot_over, "never more than max_instances_total = %d "
                   "instances (peak %d)" % (a.total, peak_total), tot_over)
    chk.result(not busy, "never a busy instance terminated", busy)
    chk.result(not alive, "nothing left running at the end",
               ["%s (%s) still alive" % (i, r) for i, r in alive.items()])
    return 1 if chk.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
