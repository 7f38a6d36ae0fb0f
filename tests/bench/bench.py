#!/usr/bin/env python3
"""make bench: qscale's speed and footprint figures, each printed next to
the bar it should clear (DESIGN 9), then a summary table; everything also
goes to BUILD/bench/results.json.

  tests/bench/bench.py BUILD_DIR

It runs the plan() driver (build/tools/plan-bench, and under callgrind
when valgrind is installed), times qscaled -n on configurations of 1,000
and 10,000 resources, then the real qscaled with 10 resources on
cloudsim, twice: at the default polling interval (30 s) and at 2 s.  Only
127.0.0.1 and free ports are used; qscaled and cloudsim are stopped on
every way out, Ctrl-C included (and die with this process if it is
killed outright).

Environment, for a quicker or a longer look:
  BENCH_WINDOW=S        the CPU window at the default interval (60)
  BENCH_SHORT_WINDOW=S  the CPU window at 2 s (30)
  BENCH_BURST=N         tasks in the burst (20)
  BENCH_CALLGRIND=0     skip callgrind even when valgrind is installed
  BENCH_KEEP=1          keep the temporary directory (logs, configs)
"""

import base64
import ctypes
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

RESOURCES = 10
DEFAULT_INTERVAL = 30.0         # qscale's default polling_interval
SHORT_INTERVAL = 2.0
TASK_SECONDS = 10               # how long a burst task runs on its agent
SIM_ARGS = ["--boot-delay", "2", "--pending-delay", "2",
            "--agent-poll", "1"]
RSS_BAR_MB = 5.0                # "a few MB of RSS per process"
CPU_BAR_PCT = 1.0               # "well under 1% of a core"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Abort(Exception):
    pass


def env_num(name, default):
    v = os.environ.get(name, "")
    if not v:
        return default
    try:
        return type(default)(v)
    except ValueError:
        raise Abort("%s=%s: not a number" % (name, v))


# ------------------------------------------------------------ printing

def out(line=""):
    print(line, flush=True)


def fmt_s(x):
    return "-" if x is None else "%.2f s" % x


def verdict(ok):
    return "ok" if ok else "MISSED"


def figure(label, measured, bar, ok):
    """One figure: the measured value next to its bar."""
    tail = "" if bar is None else "   bar: %s   %s" % (
        bar, "-" if ok is None else verdict(ok))
    out("    %-42s %s%s" % (label, measured, tail))


# ------------------------------------------------------------ processes

def pdeathsig():
    """In the child: die with the bench if it is killed outright."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)       # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Procs:
    """What the bench started, stopped in reverse order on every exit."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, logfile):
        f = open(logfile, "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL,
                             start_new_session=True, preexec_fn=pdeathsig)
        f.close()
        self.procs.append((name, p))
        return p

    def stop(self, p, grace=10.0):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = [(n, q) for n, q in self.procs if q is not p]

    def stop_all(self):
        for _name, p in reversed(list(self.procs)):
            self.stop(p)


def free_base(n):
    """A port P with P .. P+n-1 free on 127.0.0.1, outside the kernel's
    ephemeral range (cloudsim's own picker)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(
        __file__)), "..", "cloudsim"))
    from sim.util import free_port_base
    p = free_port_base(n)
    if p is None:
        raise Abort("no free ports on 127.0.0.1 outside the ephemeral "
                    "range")
    return p


# ------------------------------------------------------------ HTTP

def http_json(url, body=None, headers=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=dict(
        headers or {}, **{"Content-Type": "application/json"}),
        method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def http_text(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class Sim:
    """cloudsim: its env file, the admin API and a small ClearML client."""

    def __init__(self, env):
        self.env = env
        self.api = env["QSCALE_SIM_CLEARML_URL"].rstrip("/")
        self.admin = env["QSCALE_SIM_ADMIN_URL"].rstrip("/")
        cred = "%s:%s" % (env["CLEARML_API_ACCESS_KEY"],
                          env["CLEARML_API_SECRET_KEY"])
        self.auth = "Basic " + base64.b64encode(cred.encode()).decode()

    def call(self, endpoint, body):
        doc = http_json(self.api + "/" + endpoint, body,
                        {"Authorization": self.auth})
        if doc.get("meta", {}).get("result_code") != 200:
            raise Abort("cloudsim %s: %s" % (endpoint, doc.get("meta")))
        return doc["data"]

    def stats(self):
        return http_json(self.admin + "/stats")

    def reset(self):
        http_json(self.admin + "/reset", {})

    def queue(self, name):
        found = self.call("queues.get_all", {
            "name": "^%s$" % re.escape(name), "only_fields": ["id", "name"]})
        for q in found["queues"]:
            if q["name"] == name:
                return q["id"]
        return self.call("queues.create", {"name": name})["id"]

    def tasks(self, name, n, seconds):
        return [self.call("tasks.create", {
            "name": "%s-%d" % (name, i + 1), "type": "training",
            "comment": "sim-duration=%s sim-exit=0" % seconds})["id"]
            for i in range(n)]

    def enqueue(self, task, qid):
        self.call("tasks.enqueue", {"task": task, "queue": qid})


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, sep, v = line.strip().partition("=")
            if sep:
                env[k] = v.strip("'\"")
    return env


# ------------------------------------------------------------ /proc

def proc_cpu(pid):
    """(utime+stime in s, run time of live threads in s from schedstat).
    Threads that ended are missing from the second; qscale's processes
    have one thread here (curl resolves no thread for 127.0.0.1)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    jiffies = int(fields[11]) + int(fields[12])
    ns = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                ns += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ns = None
    return jiffies / CLK_TCK, None if ns is None else ns / 1e9


def proc_mem(pid):
    """VmRSS, VmHWM, PSS and USS (private pages) in MiB."""
    m = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                m[k] = int(v.split()[0])
    roll = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if v.strip().endswith("kB"):
                    roll[k] = int(v.split()[0])
    except OSError:
        pass
    mib = 1024.0
    return {
        "rss_mb": m.get("VmRSS", 0) / mib,
        "hwm_mb": m.get("VmHWM", 0) / mib,
        "rss_anon_mb": m.get("RssAnon", 0) / mib,
        "rss_file_mb": m.get("RssFile", 0) / mib,
        "pss_mb": roll["Pss"] / mib if "Pss" in roll else None,
        "uss_mb": (roll["Private_Clean"] + roll["Private_Dirty"]) / mib
        if "Private_Clean" in roll else None,
        "threads": m.get("Threads", 1),
    }


def proc_files(pid, top=5):
    """The mapped files that make most of a process's RSS: [(name, MiB)],
    and the RSS of all its file mappings."""
    by = {}
    name = None
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                head = line.split()
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    name = head[5] if len(head) > 5 and \
                        head[5].startswith("/") else None
                elif head and head[0] == "Rss:" and name:
                    base = os.path.basename(name)
                    by[base] = by.get(base, 0) + int(head[1])
    except (OSError, ValueError, IndexError):
        return [], None
    ranked = sorted(by.items(), key=lambda kv: -kv[1])[:top]
    return ([(n, kb / 1024.0) for n, kb in ranked],
            sum(by.values()) / 1024.0)


# ------------------------------------------------------------ qscaled

class Daemon:
    """One qscaled -f run on cloudsim with RESOURCES resources."""

    def __init__(self, bench, tag, interval, extra):
        self.b = bench
        self.tag = tag
        self.interval = interval
        d = os.path.join(bench.dir, tag)
        os.makedirs(d, exist_ok=True)
        self.dir = d
        self.status_port = bench.port_base + 3
        self.conf = os.path.join(d, "qscale.conf")
        self.write_conf(extra)
        self.proc = None

    def write_conf(self, extra):
        e = self.b.sim.env
        subnets = ", ".join('"%s"' % s
                            for s in e["QSCALE_SIM_SUBNETS"].split())
        lines = [
            'name = "bench";',
            'workers_prefix = "qbench";',
            'log_dir = "%s/log";' % self.dir,
            'pid_file = "%s/run/qscaled.pid";' % self.dir,
            'control = { socket = "%s/run/control.socket"; };' % self.dir,
            'status = { listen = "127.0.0.1:%d"; };' % self.status_port,
            'clearml = { api_server = "%s"; access_key = "%s"; '
            'secret_key = "%s"; };' % (e["QSCALE_SIM_CLEARML_URL"],
                                       e["CLEARML_API_ACCESS_KEY"],
                                       e["CLEARML_API_SECRET_KEY"]),
            'aws = { region = "%s"; access_key_id = "%s"; '
            'secret_access_key = "%s"; endpoint = "%s"; };' % (
                e["AWS_REGION"], e["AWS_ACCESS_KEY_ID"],
                e["AWS_SECRET_ACCESS_KEY"], e["QSCALE_SIM_EC2_URL"]),
        ] + extra + ["resources = ("]
        for i in range(RESOURCES):
            n = i + 1
            lines.append(
                '  { name = "%s"; queue = "%s"; instance_type = "%s"; '
                'ami = "%s"; max_instances = %d; spot = %s; '
                'subnets = [ %s ]; security_groups = [ "%s" ]; }%s' % (
                    res_name(n), queue_name(n),
                    "g4dn.xlarge" if n % 2 == 0 else "c5.large",
                    e["QSCALE_SIM_AMI"],
                    self.b.burst if n == 1 else 4,
                    "true" if n % 2 == 0 else "false", subnets,
                    e["QSCALE_SIM_SECURITY_GROUP"],
                    "," if n < RESOURCES else ""))
        lines.append(");")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.conf, 0o600)
        r = subprocess.run([self.b.qscaled, "-n", "-c", self.conf],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Abort("the bench's configuration is refused:\n" +
                        r.stdout + r.stderr)

    def start(self):
        for n in range(1, RESOURCES + 1):
            self.b.sim.queue(queue_name(n))
        self.proc = self.b.procs.start(
            "qscaled", [self.b.qscaled, "-f", "-c", self.conf],
            os.path.join(self.dir, "qscaled.out"))
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Abort("qscaled exited (%d):\n%s" % (
                    self.proc.returncode, tail(os.path.join(
                        self.dir, "qscaled.out"))))
            try:
                st = self.status()
                rs = st["resources"]
                if len(rs) == RESOURCES and all(
                        r.get("pid") and (r.get("worker") or {})
                        .get("polls", 0) >= 1 for r in rs):
                    self.first_poll = time.time()
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise Abort("qscaled did not finish its first polls in 30 s")

    def stop(self):
        if self.proc is not None:
            self.b.procs.stop(self.proc)
            self.proc = None

    def status(self):
        return http_json("http://127.0.0.1:%d/status" % self.status_port)

    def metrics(self):
        return parse_metrics(http_text(
            "http://127.0.0.1:%d/metrics" % self.status_port))

    def pids(self):
        """{"supervisor": pid, "r01": pid, ...}"""
        st = self.status()
        pids = {"supervisor": self.proc.pid}
        for r in st["resources"]:
            pids[r["name"]] = r["pid"]
        return pids, st


def res_name(n):
    return "r%02d" % n


def queue_name(n):
    return "bench-q%02d" % n


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def parse_metrics(text):
    """{(name, frozenset(labels)): value}"""
    m = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        mm = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)',
                      line)
        if not mm:
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', mm.group(3) or ""))
        try:
            m[(mm.group(1), labels)] = float(mm.group(4))
        except ValueError:
            pass
    return m


def api_calls(metrics, resource=None):
    """{"ec2 DescribeInstances": n, ...} from qscale_api_calls_total."""
    calls = {}
    for (name, labels), v in metrics.items():
        if name != "qscale_api_calls_total":
            continue
        d = dict(labels)
        if resource is not None and d.get("resource") != resource:
            continue
        k = "%s %s" % (d.get("api"), d.get("action"))
        calls[k] = calls.get(k, 0) + v
    return calls


def metric_sum(metrics, name, **want):
    return sum(v for (n, labels), v in metrics.items() if n == name and
               all(dict(labels).get(k) == w for k, w in want.items()))


def diff(a, b):
    return {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)
            if b.get(k, 0) - a.get(k, 0)}


def sim_calls(stats):
    """{"ec2 X": n, "clearml Y": n} as the simulated cloud counted them
    (qscale's own ClearML calls only, not the simulated agents')."""
    t = stats["totals"]
    c = {"ec2 " + a: v["calls"] for a, v in t.get("ec2_calls", {}).items()}
    for ep, n in t.get("clearml_calls", {}).get("qscale", {}).items():
        c["clearml " + ep] = n
    return c


def polls_of(st):
    return {r["name"]: (r.get("worker") or {}).get("polls", 0)
            for r in st["resources"]}


def run_instances_latency(st):
    """Mean RunInstances round trip as qscale measured it, in s."""
    n = ms = 0
    for r in st["resources"]:
        for a in ((r.get("worker") or {}).get("api") or {}).get("ec2", []):
            if a.get("action") == "RunInstances":
                n += a.get("calls", 0)
                ms += a.get("latency_ms_sum", 0)
    return ms / n / 1000.0 if n else None


# ------------------------------------------------------------ the bench

class Bench:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.top = os.path.abspath(os.path.join(os.path.dirname(
            __file__), "..", ".."))
        self.qscaled = os.path.join(self.build, "qscaled")
        self.plan_bench = os.path.join(self.build, "tools", "plan-bench")
        for f in (self.qscaled, self.plan_bench):
            if not os.access(f, os.X_OK):
                raise Abort("%s is missing: run make first" % f)
        self.window = env_num("BENCH_WINDOW", 60.0)
        self.short_window = env_num("BENCH_SHORT_WINDOW", 30.0)
        self.burst = env_num("BENCH_BURST", 20)
        if self.burst < 2 or self.burst > 200:
            raise Abort("BENCH_BURST=%d: give 2 to 200" % self.burst)
        self.procs = Procs()
        self.dir = tempfile.mkdtemp(prefix="qscale-bench.")
        os.chmod(self.dir, 0o700)
        self.results = {"figures": {}}
        self.summary = []      # (figure, measured, bar, ok)
        self.sim = None

    def note(self, figure_, measured, bar, ok):
        self.summary.append((figure_, measured, bar, ok))

    # ---------------------------------------------------- environment

    def environment(self):
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        producer = "?"
        try:
            r = subprocess.run("readelf --debug-dump=info '%s' 2>/dev/null"
                               " | grep -m1 DW_AT_producer" % self.qscaled,
                               shell=True, capture_output=True, text=True)
            m = re.search(r"DW_AT_producer\s*:(?:.*\):)?\s*(.*)", r.stdout)
            if m:
                producer = m.group(1).strip()
        except OSError:
            pass
        ver = subprocess.run([self.qscaled, "-V"], capture_output=True,
                             text=True).stdout.strip()
        commit = subprocess.run(["git", "-C", self.top, "rev-parse",
                                 "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        mem = "?"
        try:
            with open("/proc/meminfo") as f:
                kb = int(f.readline().split()[1])
                mem = "%.1f GiB" % (kb / 1048576.0)
        except (OSError, ValueError, IndexError):
            pass
        env = {
            "cpu": cpu, "cores": os.cpu_count(), "memory": mem,
            "kernel": "%s %s %s" % (platform.system(), platform.release(),
                                    platform.machine()),
            "compiler_flags": producer, "qscaled": ver,
            "commit": commit or None,
            "load_before": os.getloadavg()[0],
            "cloudsim": " ".join(SIM_ARGS),
        }
        self.results["environment"] = env
        out("qscale benchmarks (make bench)")
        out("  cpu       %s, %d cores, %s" % (cpu, env["cores"], mem))
        out("  kernel    %s" % env["kernel"])
        out("  build     %s" % producer)
        out("  qscaled   %s%s" % (ver, " (commit %s)" % commit
                                  if commit else ""))
        out("  cloudsim  %s; load average %.2f" % (
            env["cloudsim"], env["load_before"]))
        out("  The figures come from one run on this machine; cloudsim "
            "(moto and")
        out("  the fake ClearML server) runs on the same cores.")

    # ---------------------------------------------------- 5. plan()

    def plan_cost(self):
        out()
        out("[5] plan() cost: plan_resource() on a realistic fleet "
            "(tests/tools/plan-bench.c)")
        sizes = [10, 100, 1000]
        r = subprocess.run([self.plan_bench] + [str(n) for n in sizes],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Abort("plan-bench failed: " + r.stderr)
        rows = {}
        for line in r.stdout.splitlines():
            kv = dict(re.findall(r"(\w+)=(\d+)", line))
            if "n" in kv:
                rows[int(kv["n"])] = {k: int(v) for k, v in kv.items()}
        ir = {}
        vg = shutil.which("valgrind")
        skip = os.environ.get("BENCH_CALLGRIND", "1") == "0"
        if vg and not skip:
            for n in sizes:
                calls = 5 if n >= 1000 else 100
                cg = os.path.join(self.dir, "callgrind.%d" % n)
                rr = subprocess.run([
                    vg, "--tool=callgrind", "--collect-atstart=no",
                    "--toggle-collect=bench_calls",
                    "--callgrind-out-file=" + cg, self.plan_bench, "-i",
                    str(calls), str(n)], capture_output=True, text=True)
                total = None
                try:
                    with open(cg) as f:
                        for line in f:
                            if line.startswith("summary:"):
                                total = int(line.split()[1])
                except OSError:
                    pass
                if rr.returncode == 0 and total:
                    ir[n] = total // calls
        out("    %-10s %14s %14s %18s  %s" % (
            "instances", "ns/call best", "ns/call median",
            "instructions/call", "actions (terminate)"))
        res = {}
        for n in sizes:
            row = rows.get(n)
            if row is None:
                continue
            res[str(n)] = {"ns_best": row["ns_min"],
                           "ns_median": row["ns_median"],
                           "instructions": ir.get(n),
                           "actions": row["actions"],
                           "terminations": row["terminate"]}
            out("    %-10d %14s %14s %18s  %d (%d)" % (
                n, "{:,}".format(row["ns_min"]),
                "{:,}".format(row["ns_median"]),
                "{:,}".format(ir[n]) if n in ir else "-",
                row["actions"], row["terminate"]))
        if not ir:
            out("    (instruction counts: %s)" % (
                "BENCH_CALLGRIND=0" if skip else "valgrind is not installed"
                if not vg else "callgrind failed"))
        biggest = res.get("1000")
        if biggest:
            share = biggest["ns_median"] / (DEFAULT_INTERVAL * 1e9) * 100
            figure("1000 instances, share of a 30 s poll",
                   "%.3f %%" % share, None, None)
            self.note("plan() at 10 / 100 / 1000 instances",
                      " / ".join(fmt_ns(res[str(n)]["ns_median"])
                                 for n in sizes if str(n) in res),
                      "none set", None)
        self.results["figures"]["plan_cost"] = res

    # ---------------------------------------------------- config load

    def write_big_conf(self, n):
        path = os.path.join(self.dir, "load-%d.conf" % n)
        with open(path, "w") as f:
            f.write('name = "bench";\nworkers_prefix = "qbench";\n'
                    'log_dir = "%s/load-log";\n'
                    'clearml = { api_server = "http://127.0.0.1:9"; '
                    'access_key = "AK"; secret_key = "SK"; };\n'
                    'aws = { region = "us-east-1"; access_key_id = "AKIA1"; '
                    'secret_access_key = "SAK"; };\nresources = (\n'
                    % self.dir)
            for i in range(n):
                f.write('%s  { name = "r%d"; queue = "q-%d"; '
                        'instance_type = "t3.micro"; ami = "ami-12345678"; '
                        'max_instances = 2; spot = %s; '
                        'subnets = ["subnet-1", "subnet-2"]; '
                        'tags = { team = "t%d"; }; }\n'
                        % ("," if i else "", i, i,
                           "true" if i % 2 else "false", i % 7))
            f.write(");\n")
        os.chmod(path, 0o600)
        return path

    def conf_load(self):
        out()
        out("[7] loading a configuration: qscaled -n on N resources, "
            "CPU time (what a reload blocks the supervisor for)")
        res = {}
        for n, bar in ((1000, 0.2), (10000, 2.0)):
            path = self.write_big_conf(n)
            p = subprocess.Popen([self.qscaled, "-n", "-c", path],
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            err = p.stderr.read()
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = status
            if status != 0:
                raise Abort("qscaled -n on %d resources failed: %s" % (
                    n, err.decode(errors="replace").strip()))
            cpu = ru.ru_utime + ru.ru_stime
            res[str(n)] = {"cpu_s": cpu, "max_rss_kb": ru.ru_maxrss}
            label = "{:,} resources".format(n)
            figure(label, "%.3f s CPU, %.1f MiB" % (
                cpu, ru.ru_maxrss / 1024.0), "< %g s" % bar, cpu < bar)
            self.note("config load, %s" % label, "%.3f s" % cpu,
                      "< %g s" % bar, cpu < bar)
        self.results["figures"]["conf_load"] = res

    # ---------------------------------------------------- cloudsim

    def start_sim(self):
        self.port_base = free_base(4)
        envf = os.path.join(self.dir, "sim.env")
        p = self.procs.start("cloudsim", [
            os.path.join(self.top, "tests", "cloudsim", "cloudsim"),
            "--port-base", str(self.port_base), "--env-file", envf,
            "--log", os.path.join(self.dir, "cloudsim.log")] + SIM_ARGS,
            os.path.join(self.dir, "cloudsim.out"))
        deadline = time.time() + 60
        while not (os.path.exists(envf) and os.path.getsize(envf) > 0):
            if p.poll() is not None or time.time() > deadline:
                raise Abort("cloudsim did not start:\n" + tail(
                    os.path.join(self.dir, "cloudsim.out")))
            time.sleep(0.1)
        time.sleep(0.2)
        self.sim = Sim(read_env(envf))

    # ---------------------------------------------------- measurements

    def sample(self, d, proc_first):
        """Everything at one moment.  The HTTP reads cost the supervisor
        CPU, so they come before /proc at the start of a window and
        after it at the end."""
        got = {}
        if not proc_first:
            got = self.sample_http(d)
        pids, _ = d.pids() if proc_first else (got["pids"], None)
        t = time.time()
        cpu = {k: proc_cpu(p) for k, p in pids.items()}
        if proc_first:
            got = self.sample_http(d)
            if got["pids"] != pids:
                raise Abort("a worker process restarted during a window")
        got.update(t=t, cpu=cpu)
        return got

    def sample_http(self, d):
        pids, st = d.pids()
        return {"pids": pids, "polls": polls_of(st), "status": st,
                "metrics": d.metrics(), "sim": self.sim.stats()}

    def footprint(self, d):
        pids, _ = d.pids()
        mem = {k: proc_mem(p) for k, p in pids.items()}
        sup = mem["supervisor"]
        workers = [v for k, v in mem.items() if k != "supervisor"]
        agg = {}
        for key in ("rss_mb", "pss_mb", "uss_mb", "hwm_mb"):
            vals = [w[key] for w in workers if w[key] is not None]
            agg[key] = {"min": min(vals), "median": statistics.median(vals),
                        "max": max(vals)} if vals else None
        total_pss = sum(v["pss_mb"] or 0 for v in mem.values())
        worst = max([sup["rss_mb"]] + [w["rss_mb"] for w in workers])
        files = {k: proc_files(pids[k]) for k in ("supervisor", res_name(1))}
        return {"per_process": mem, "workers": agg, "nworkers": len(workers),
                "total_pss_mb": total_pss, "max_rss_mb": worst,
                "files": files}

    def print_footprint(self, fp):
        sup = fp["per_process"]["supervisor"]
        agg = fp["workers"]
        out("    %-16s %8s %8s %8s %9s" % ("MiB", "RSS", "PSS", "USS",
                                          "peak RSS"))
        out("    %-16s %8.2f %8.2f %8.2f %9.2f" % (
            "supervisor", sup["rss_mb"], sup["pss_mb"] or 0,
            sup["uss_mb"] or 0, sup["hwm_mb"]))
        for which in ("min", "median", "max"):
            out("    %-16s %8.2f %8.2f %8.2f %9.2f" % (
                "worker " + which, agg["rss_mb"][which],
                agg["pss_mb"][which] if agg["pss_mb"] else 0,
                agg["uss_mb"][which] if agg["uss_mb"] else 0,
                agg["hwm_mb"][which]))
        out("    %-16s %8s %8.2f   (supervisor and %d worker processes)"
            % ("all together", "", fp["total_pss_mb"], fp["nworkers"]))
        figure("largest RSS of any process", "%.2f MiB" % fp["max_rss_mb"],
               "<= %.0f MiB" % RSS_BAR_MB, fp["max_rss_mb"] <= RSS_BAR_MB)
        for who, (top, total) in fp["files"].items():
            if total is None:
                continue
            anon = fp["per_process"][who]["rss_anon_mb"]
            out("      %s: %.2f MiB anonymous, %.2f MiB mapped files "
                "(shared): %s" % (who, anon, total, ", ".join(
                    "%s %.1f" % kv for kv in top[:4])))

    def cpu_window(self, d, seconds):
        """CPU of every qscaled process and API calls over a window."""
        a = self.sample(d, False)
        time.sleep(max(0.0, a["t"] + seconds - time.time()))
        b = self.sample(d, True)
        span = b["t"] - a["t"]
        procs = {}
        for k in b["cpu"]:
            if k not in a["cpu"] or a["pids"].get(k) != b["pids"].get(k):
                raise Abort("process %s restarted during the window" % k)
            j = b["cpu"][k][0] - a["cpu"][k][0]
            s = None
            if b["cpu"][k][1] is not None and a["cpu"][k][1] is not None:
                s = b["cpu"][k][1] - a["cpu"][k][1]
            procs[k] = {"stat_s": j, "sched_s": s}
        polls = {k: b["polls"][k] - a["polls"].get(k, 0) for k in b["polls"]}
        npolls = sum(polls.values())
        c = {"seconds": span, "processes": procs, "polls": polls,
             "total_polls": npolls,
             "calls_qscale": diff(api_calls(a["metrics"]),
                                  api_calls(b["metrics"])),
             "calls_sim": diff(sim_calls(a["sim"]), sim_calls(b["sim"]))}
        # schedstat counts nanoseconds; utime+stime comes in 10 ms ticks
        # per process, too coarse for a worker's few ms in a window
        for src in ("sched", "stat"):
            vals = [p[src + "_s"] for p in procs.values()]
            if any(v is None for v in vals):
                continue
            sup = procs["supervisor"][src + "_s"]
            c[src] = {
                "pct_core": sum(vals) / span * 100,
                "supervisor_pct": sup / span * 100,
                "workers_pct": (sum(vals) - sup) / span * 100,
                "ms_per_poll": (sum(vals) - sup) / npolls * 1000
                if npolls else None}
        c["source"] = "sched" if "sched" in c else "stat"
        best = c[c["source"]]
        c.update(pct_core=best["pct_core"], ms_per_poll=best["ms_per_poll"])
        return c

    def print_cpu(self, c, interval):
        figure("window", "%.0f s, %d polls by %d worker processes" % (
            c["seconds"], c["total_polls"], len(c["polls"])), None, None)
        best = c[c["source"]]
        bar = interval == DEFAULT_INTERVAL
        figure("all processes, %% of one core (%s)" % (
            "schedstat" if c["source"] == "sched" else "utime+stime"),
            "%.3f %%" % best["pct_core"], "< %.0f %%" % CPU_BAR_PCT
            if bar else None, best["pct_core"] < CPU_BAR_PCT if bar else None)
        figure("  supervisor / workers", "%.3f %% / %.3f %%" % (
            best["supervisor_pct"], best["workers_pct"]), None, None)
        if best["ms_per_poll"] is not None:
            figure("CPU per poll per worker process", "%.2f ms" %
                   best["ms_per_poll"], None, None)
        if c["source"] == "sched":
            st = c["stat"]
            figure("  utime+stime (10 ms ticks)", "%.3f %% of a core, "
                   "%.2f ms per poll" % (st["pct_core"], st["ms_per_poll"]
                                         or 0), None, None)

    # ---------------------------------------------------- reaction

    def reaction(self, d, names, spread):
        """One task on each resource's queue, at random moments within
        `spread` seconds; reaction = the front's record of the
        RunInstances answer minus the task's enqueue time."""
        ids = {}
        qids = {n: self.sim.queue(queue_name(int(n[1:]))) for n in names}
        tasks = {n: self.sim.tasks("react-" + n, 1, 2)[0] for n in names}
        moments = sorted((random.uniform(0, spread), n) for n in names)
        t0 = time.time()
        for at, n in moments:
            time.sleep(max(0.0, t0 + at - time.time()))
            self.sim.enqueue(tasks[n], qids[n])
            ids[n] = tasks[n]
        deadline = time.time() + d.interval + 5
        while True:
            st = self.sim.stats()
            enq = {t["id"]: t["enqueued"] for t in st["tasks"]}
            got = {}
            for n in names:
                e = enq.get(ids[n])
                la = [i["launched"] for i in st["instances"]
                      if i["resource"] == n and e and i["launched"] >= e]
                if la:
                    got[n] = min(la) - e
            if len(got) == len(names) or time.time() > deadline:
                break
            time.sleep(0.25)
        vals = sorted(got.values())
        return {"samples": {n: round(got[n], 3) for n in got},
                "missing": sorted(set(names) - set(got)),
                "min": vals[0] if vals else None,
                "median": statistics.median(vals) if vals else None,
                "max": vals[-1] if vals else None,
                "runinstances_rtt_s": run_instances_latency(d.status())}

    def print_reaction(self, r, interval):
        bar = interval + 0.5
        ok = (r["max"] is not None and r["max"] <= bar and
              not r["missing"])
        figure("enqueue -> RunInstances, %d samples" % len(r["samples"]),
               "min %s  median %s  max %s" % (
                   fmt_s(r["min"]), fmt_s(r["median"]), fmt_s(r["max"])),
               "<= %.1f s" % bar, ok)
        if r["runinstances_rtt_s"] is not None:
            figure("  of which RunInstances round trip",
                   "%.3f s (moto, mean)" % r["runinstances_rtt_s"],
                   None, None)
        if r["missing"]:
            figure("  no RunInstances seen for", ", ".join(r["missing"]),
                   None, None)
        return ok

    # ---------------------------------------------------- burst

    def burst_run(self, d):
        name = res_name(1)
        n = self.burst
        qid = self.sim.queue(queue_name(1))
        ids = self.sim.tasks("burst", n, TASK_SECONDS)
        m0 = d.metrics()
        p0 = polls_of(d.status())[name]
        s0 = self.sim.stats()
        known = {i["id"] for i in s0["instances"]}
        runs0 = s0["totals"].get("ec2_calls", {}).get(
            "RunInstances", {}).get("calls", 0)
        for t in ids:
            self.sim.enqueue(t, qid)
        deadline = time.time() + d.interval * 3 + 60
        launched_at = started_at = None
        fp = None
        while time.time() < deadline:
            st = self.sim.stats()
            mine = [i for i in st["instances"] if i["resource"] == name and
                    i["id"] not in known]
            tasks = [t for t in st["tasks"] if t["id"] in ids]
            if launched_at is None and len(mine) >= n:
                launched_at = max(sorted(i["launched"] for i in mine)[:n])
            if started_at is None and tasks and all(t["started"]
                                                   for t in tasks):
                started_at = max(t["started"] for t in tasks)
                fp = self.footprint(d)
                m1 = d.metrics()
                p1 = polls_of(d.status())[name]
                s1 = st
            if started_at is not None:
                break
            time.sleep(0.2)
        if started_at is None:
            raise Abort("the burst's tasks did not all start in time")
        enq = [t["enqueued"] for t in s1["tasks"] if t["id"] in ids]
        first, last = min(enq), max(enq)
        runs = s1["totals"].get("ec2_calls", {}).get(
            "RunInstances", {}).get("calls", 0) - runs0
        mine = [i for i in s1["instances"] if i["resource"] == name and
                i["id"] not in known]
        calls = diff(api_calls(m0, name), api_calls(m1, name))
        polls = max(1, p1 - p0)
        # then the scale-down: every burst instance idle, then terminated
        term = self.scale_down(d, name, {i["id"] for i in mine})
        return {
            "tasks": n, "enqueue_spread_s": last - first,
            "to_all_launched_s": launched_at - first,
            "to_all_launched_from_last_enqueue_s": launched_at - last,
            "to_all_started_s": started_at - first,
            "runinstances_calls": runs,
            "instances_launched": len(mine),
            "max_alive": s1["totals"].get("max_alive", {}).get(name),
            "polls": polls, "calls": calls,
            "calls_per_poll": {k: v / polls for k, v in calls.items()},
            "footprint": fp, "scale_down": term,
        }

    def scale_down(self, d, name, inst):
        """After the tasks end: how many calls terminate the fleet."""
        m0 = d.metrics()
        deadline = time.time() + TASK_SECONDS + 10 + d.interval * 4 + 30
        while time.time() < deadline:
            st = self.sim.stats()
            alive = [i for i in st["instances"] if i["id"] in inst and
                     not i["terminated"]]
            if not alive:
                break
            time.sleep(0.5)
        else:
            return {"done": False}
        time.sleep(d.interval + 0.5)    # the unregisters that follow
        m1 = d.metrics()
        calls = diff(api_calls(m0, name), api_calls(m1, name))
        terms = metric_sum(m1, "qscale_terminations_total",
                           resource=name) - metric_sum(
            m0, "qscale_terminations_total", resource=name)
        return {"done": True, "instances": len(inst),
                "terminated": int(terms),
                "terminate_calls": int(calls.get(
                    "ec2 TerminateInstances", 0)),
                "unregister_calls": int(calls.get(
                    "clearml workers.unregister", 0)),
                "calls": calls}

    # ---------------------------------------------------- the runs

    def run_default(self):
        out()
        out("Run 1: qscaled with %d resources at the default polling "
            "interval (30 s)" % RESOURCES)
        d = Daemon(self, "default", DEFAULT_INTERVAL, [])
        d.start()
        # the window starts between polls: they come every 27-30 s
        time.sleep(max(0.0, d.first_poll + 10 - time.time()))
        out()
        out("[3] steady-state CPU, 30 s polls, scaling idle")
        c = self.cpu_window(d, self.window)
        self.print_cpu(c, DEFAULT_INTERVAL)
        out()
        out("[2] footprint, scaling idle")
        fp = self.footprint(d)
        self.print_footprint(fp)
        out()
        out("[1] reaction, polling_interval 30 s")
        r = self.reaction(d, [res_name(n) for n in range(1, RESOURCES + 1)],
                          DEFAULT_INTERVAL)
        ok = self.print_reaction(r, DEFAULT_INTERVAL)
        out()
        self.ec2_errors(d, "run 1")
        d.stop()
        self.results["figures"]["cpu_default"] = c
        self.results["figures"]["footprint_idle"] = fp
        self.results["figures"]["reaction_default"] = r
        self.note("reaction at 30 s (min/median/max)", "%s / %s / %s" % (
            fmt_s(r["min"]), fmt_s(r["median"]), fmt_s(r["max"])),
            "<= 30.5 s", ok)
        self.note("CPU, 10 resources, 30 s polls", "%.3f %% of a core" %
                  c["pct_core"], "< 1 %", c["pct_core"] < CPU_BAR_PCT)
        self.note_footprint("idle", fp)
        return c

    def note_footprint(self, when, fp):
        pss = fp["workers"]["pss_mb"]
        self.note("RSS %s, largest process" % when,
                  "%.1f MiB (worker PSS %.1f MiB)" % (
                      fp["max_rss_mb"], pss["median"] if pss else 0),
                  "<= %.0f MiB" % RSS_BAR_MB, fp["max_rss_mb"] <= RSS_BAR_MB)

    def ec2_errors(self, d, label):
        """EC2 errors of a run as the cloud counted them: a benchmark
        figure is only meaningful if nothing failed underneath it."""
        calls = self.sim.stats()["totals"].get("ec2_calls", {})
        codes = {}
        for action, v in calls.items():
            for code, n in v.get("codes", {}).items():
                codes["%s %s" % (action, code)] = n
        self.results["figures"].setdefault("ec2_errors", {})[label] = codes
        figure("EC2 errors in %s" % label, ", ".join(
            "%s x%d" % kv for kv in sorted(codes.items())) or "none",
            "none", not codes)
        self.note("EC2 errors in %s" % label, ", ".join(
            "%s x%d" % kv for kv in sorted(codes.items())) or "none",
            "none", not codes)

    def run_short(self, c_default):
        out()
        out("Run 2: the same at polling_interval 2 s, max_idle_time 10 s")
        self.sim.reset()
        d = Daemon(self, "short", SHORT_INTERVAL, [
            'polling_interval = "2s";', 'max_idle_time = "10s";'])
        d.start()
        time.sleep(3)
        out()
        out("[3] steady-state CPU, 2 s polls, scaling idle")
        c = self.cpu_window(d, self.short_window)
        self.print_cpu(c, SHORT_INTERVAL)
        self.note("CPU, 10 resources, 2 s polls", "%.3f %% of a core" %
                  c["pct_core"], "none set", None)
        self.note("CPU per poll per worker process", "%.2f ms" %
                  c["ms_per_poll"] if c["ms_per_poll"] is not None
                  else "-", "none set", None)
        out()
        out("[1] reaction, polling_interval 2 s")
        r = self.reaction(d, [res_name(n) for n in range(2, RESOURCES + 1)],
                          SHORT_INTERVAL)
        ok = self.print_reaction(r, SHORT_INTERVAL)
        self.note("reaction at 2 s (min/median/max)", "%s / %s / %s" % (
            fmt_s(r["min"]), fmt_s(r["median"]), fmt_s(r["max"])),
            "<= 2.5 s", ok)
        out()
        out("[6] burst: %d tasks enqueued at once on %s (max_instances %d)"
            % (self.burst, res_name(1), self.burst))
        b = self.burst_run(d)
        self.print_burst(b)
        out()
        self.ec2_errors(d, "run 2")
        d.stop()
        out()
        out("[4] API calls per poll per resource")
        self.print_api(c_default, c, b)
        self.results["figures"]["cpu_short"] = c
        self.results["figures"]["reaction_short"] = r
        self.results["figures"]["burst"] = b

    def print_burst(self, b):
        bar = SHORT_INTERVAL + 0.5
        ok_t = b["to_all_launched_s"] <= bar
        ok_c = 1 <= b["runinstances_calls"] <= 2
        figure("enqueued in", "%.2f s (first to last of %d)" % (
            b["enqueue_spread_s"], b["tasks"]), None, None)
        figure("first enqueue -> all launched", fmt_s(
            b["to_all_launched_s"]), "<= %.1f s" % bar, ok_t)
        figure("RunInstances calls", "%d for %d instances" % (
            b["runinstances_calls"], b["instances_launched"]),
            "1 or few", ok_c)
        figure("instances at most", "%s (no overshoot)" % b["max_alive"]
               if b["max_alive"] == b["tasks"] else str(b["max_alive"]),
               "%d" % b["tasks"], b["max_alive"] == b["tasks"])
        figure("first enqueue -> every task started",
               "%s (cloudsim: 2 s pending, 2 s boot, 1 s agent poll)" %
               fmt_s(b["to_all_started_s"]), None, None)
        sd = b["scale_down"]
        if sd.get("done"):
            figure("scale-down: terminated", "%d instances in %d "
                   "TerminateInstances call%s" % (
                       sd["terminated"], sd["terminate_calls"],
                       "" if sd["terminate_calls"] == 1 else "s"),
                   "fewer than %d" % sd["instances"],
                   sd["terminate_calls"] < sd["instances"])
            figure("  workers.unregister calls", "%d (%.1f per instance)" % (
                sd["unregister_calls"], sd["unregister_calls"] /
                max(1, sd["instances"])), None, None)
        else:
            figure("scale-down", "the burst's instances were not all "
                   "terminated in time", None, False)
        fp = b["footprint"]
        out()
        out("[2] footprint during the burst (%d instances busy on %s)" % (
            b["instances_launched"], res_name(1)))
        self.print_footprint(fp)
        self.note("burst of %d: to all launched" % b["tasks"],
                  "%s in %d RunInstances" % (fmt_s(b["to_all_launched_s"]),
                                             b["runinstances_calls"]),
                  "<= 2.5 s, 1 or few", ok_t and ok_c)
        self.note("burst of %d: to every task started" % b["tasks"],
                  fmt_s(b["to_all_started_s"]), "none (boot is cloudsim's)",
                  None)
        self.note_footprint("in the burst", fp)
        if sd.get("done"):
            self.note("scale-down of %d instances" % sd["instances"],
                      "%d TerminateInstances" % sd["terminate_calls"],
                      "OSS autoscaler: %d" % sd["instances"],
                      sd["terminate_calls"] < sd["instances"])

    def print_api(self, c_default, c_short, b):
        rows = []
        for label, c in (("steady, 30 s polls", c_default),
                         ("steady, 2 s polls", c_short)):
            n = c["total_polls"]
            if n == 0:
                out("    %s: no poll in the window" % label)
                continue
            own = c["calls_qscale"]
            sim = c["calls_sim"]
            cml = sum(v for k, v in own.items() if k.startswith("clearml"))
            ec2 = sum(v for k, v in own.items() if k.startswith("ec2"))
            scml = sum(v for k, v in sim.items() if k.startswith("clearml"))
            sec2 = sum(v for k, v in sim.items() if k.startswith("ec2"))
            rows.append((label, cml / n, ec2 / n, scml / n, sec2 / n,
                         detail(own, n)))
        n = b["polls"]
        own = b["calls"]
        cml = sum(v for k, v in own.items() if k.startswith("clearml"))
        ec2 = sum(v for k, v in own.items() if k.startswith("ec2"))
        rows.append(("burst, 2 s polls (%s)" % res_name(1), cml / n, ec2 / n,
                     None, None, detail(own, n)))
        out("    %-26s %8s %8s   %s" % ("", "ClearML", "EC2",
                                        "as the cloud counted (ClearML/EC2)"))
        for label, cml, ec2, scml, sec2, _ in rows:
            out("    %-26s %8.2f %8.2f   %s" % (
                label, cml, ec2, "-" if scml is None else
                "%.2f / %.2f" % (scml, sec2)))
        for label, *_, det in rows:
            out("      %s: %s" % (label, det))
        r = RESOURCES
        oss_cml = (2 + r) / r
        out("    the open-source autoscaler, per poll of %d queues, from "
            "its source:" % r)
        out("      ClearML: queues.get_all + workers.get_all + %d x "
            "queues.get_by_id = %d, i.e. %.2f per resource;" % (
                r, 2 + r, oss_cml))
        out("      + one workers.get_all (every worker of the company) per "
            "idle candidate;")
        out("      EC2: none in steady state (it keeps no inventory); a "
            "burst of %d: %d" % (b["tasks"], b["tasks"]))
        out("      RunInstances + %d CreateTags + waiter DescribeInstances, "
            "one instance at a" % b["tasks"])
        out("      time; scale-down: one TerminateInstances and one "
            "workers.get_all per instance.")
        steady = rows[0] if rows[0][0].startswith("steady") else None
        self.results["figures"]["api_per_poll"] = {
            "per_resource": {lab: {"clearml": c1, "ec2": e1,
                                   "clearml_by_cloud": c2,
                                   "ec2_by_cloud": e2, "detail": det}
                             for lab, c1, e1, c2, e2, det in rows},
            "oss_per_resource_steady": {"clearml": oss_cml, "ec2": 0},
            "oss_burst": {"RunInstances": b["tasks"],
                          "CreateTags": b["tasks"]},
        }
        if steady is not None:
            self.note("API calls per poll per resource, steady",
                      "%.2f ClearML + %.2f EC2" % (steady[1], steady[2]),
                      "OSS autoscaler: %.2f + 0" % oss_cml, None)
        self.note("API calls, burst of %d" % b["tasks"],
                  "%d RunInstances" % b["runinstances_calls"],
                  "OSS autoscaler: %d + %d CreateTags" % (
                      b["tasks"], b["tasks"]),
                  b["runinstances_calls"] < b["tasks"])

    # ---------------------------------------------------- summary

    def finish(self):
        load = os.getloadavg()[0]
        self.results["environment"]["load_after"] = load
        out()
        out("Summary (one run on this machine; load average %.2f before, "
            "%.2f after)" % (self.results["environment"]["load_before"],
                             load))
        w = max(len(s[0]) for s in self.summary)
        wm = max(len(s[1]) for s in self.summary)
        wb = max(len(s[2]) for s in self.summary)
        out("  %-*s  %-*s  %-*s  %s" % (w, "figure", wm, "measured", wb,
                                        "bar", ""))
        for f_, m, b, ok in self.summary:
            out("  %-*s  %-*s  %-*s  %s" % (w, f_, wm, m, wb, b,
                                            "" if ok is None else
                                            verdict(ok)))
        missed = [s[0] for s in self.summary if s[3] is False]
        self.results["summary"] = [
            {"figure": f_, "measured": m, "bar": b, "ok": ok}
            for f_, m, b, ok in self.summary]
        self.results["missed"] = missed
        os.makedirs(os.path.join(self.build, "bench"), exist_ok=True)
        path = os.path.join(self.build, "bench", "results.json")
        with open(path, "w") as f:
            json.dump(self.results, f, indent=2, sort_keys=True,
                      default=str)
            f.write("\n")
        out()
        out("results: %s" % os.path.relpath(path))
        if missed:
            out("missed: %s" % "; ".join(missed))
        return 0

    def cleanup(self):
        self.procs.stop_all()
        if os.environ.get("BENCH_KEEP"):
            out("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def detail(calls, n):
    return ", ".join("%s %.2f" % (k, v / n) for k, v in sorted(
        calls.items())) or "none"


def fmt_ns(ns):
    if ns >= 1e6:
        return "%.1f ms" % (ns / 1e6)
    if ns >= 1e3:
        return "%.1f us" % (ns / 1e3)
    return "%d ns" % ns


def main(argv):
    if len(argv) != 1:
        print("usage: bench.py BUILD_DIR", file=sys.stderr)
        return 2

    def stop(sig, _frame):
        raise KeyboardInterrupt(signal.Signals(sig).name)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, stop)
    b = None
    try:
        b = Bench(argv[0])
        b.environment()
        b.plan_cost()
        b.conf_load()
        b.start_sim()
        c = b.run_default()
        b.run_short(c)
        return b.finish()
    except Abort as e:
        print("bench: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping what it started",
              file=sys.stderr)
        return 130
    except (OSError, ValueError, KeyError, TypeError) as e:
        traceback.print_exc()
        print("bench: failed: %s" % e, file=sys.stderr)
        return 1
    finally:
        if b is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            b.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
