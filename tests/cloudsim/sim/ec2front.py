"""The EC2 front: a reverse proxy in front of moto_server that adds what
moto lacks.  Requests reach moto unchanged (moto checks signatures); the
front answers by itself only for requests whose signature it could check
with the bootstrap credentials, and rewrites responses only where it adds
behaviour: capacity, MinCount/MaxCount, ClientToken idempotency, the
pending phase, injected errors and latency, spot interruptions, console
output."""

import base64
import copy
import fnmatch
import hashlib
import http.client
import json
import random
import re
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

from . import sigv4
from .server import BaseHandler
from .util import read_body

NS = "http://ec2.amazonaws.com/doc/2016-11-15"
ET.register_namespace("", NS)
Q = "{%s}" % NS
LIVE = ("pending", "running")
STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32,
               "terminated": 48, "stopping": 64, "stopped": 80}
DEFAULT_STATUS = {"RequestLimitExceeded": 503, "Unavailable": 503,
                  "ServiceUnavailable": 503, "InternalError": 500,
                  "InsufficientInstanceCapacity": 500,
                  "InsufficientCapacity": 500}
TOKEN_TTL = 3600
MAX_CALL_RECORDS = 20000
SPOT_REASON = ("Server.SpotInstanceTermination",
               "Server.SpotInstanceTermination: Spot instance termination")
SHUTDOWN_MODES = ("graceful", "silent")
USER_REASON = ("Client.UserInitiatedShutdown",
               "Client.UserInitiatedShutdown: User initiated shutdown")


def error_xml(code, message):
    rid = str(uuid.uuid4())
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors>'
            '<Error><Code>%s</Code><Message>%s</Message></Error></Errors>'
            '<RequestID>%s</RequestID></Response>' % (
                _esc(code), _esc(message), rid))
    return body.encode(), rid


def _esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;"))


def to_xml(root):
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + \
        ET.tostring(root, encoding="utf-8")


def q(path):
    """'a/b' -> '{ns}a/{ns}b' for ElementTree."""
    return "/".join(Q + p for p in path.split("/"))


def filters_of(params):
    """Filter.N.Name / Filter.N.Value.M as {name: [values]}."""
    out = {}
    for k, v in params.items():
        m = re.match(r"^Filter\.(\d+)\.Name$", k)
        if m:
            n = m.group(1)
            vals = [params[x] for x in sorted(
                (x for x in params if x.startswith("Filter.%s.Value." % n)),
                key=lambda x: int(x.rsplit(".", 1)[1]))]
            out.setdefault(v, []).extend(vals)
    return out


def numbered(params, prefix):
    """InstanceId.1, InstanceId.2 ... in order."""
    keys = [k for k in params if re.match(r"^%s\.\d+$" % re.escape(prefix),
                                          k)]
    return [params[k] for k in sorted(keys, key=lambda k: int(
        k.rsplit(".", 1)[1]))]


class Capacity:
    """'type/az/market=N, ...': first match wins; no match is unlimited."""

    def __init__(self, spec=""):
        self.spec = spec or ""
        self.rules = self.parse(self.spec)

    @staticmethod
    def parse(spec):
        rules = []
        for part in [p.strip() for p in spec.split(",") if p.strip()]:
            pat, sep, n = part.partition("=")
            fields = pat.strip().split("/")
            if not sep or len(fields) != 3:
                raise ValueError("capacity %r: expected TYPE/AZ/MARKET=N "
                                 "(each part may be *)" % part)
            try:
                count = int(n)
            except ValueError:
                count = -1
            if count < 0:
                raise ValueError("capacity %r: N must be an integer >= 0"
                                 % part)
            market = fields[2].strip()
            if market not in ("*", "spot", "on-demand"):
                raise ValueError("capacity %r: market must be spot, "
                                 "on-demand or *" % part)
            rules.append(([f.strip() for f in fields], count))
        return rules

    def limit(self, itype, az, market):
        for (t, a, m), n in self.rules:
            if fnmatch.fnmatchcase(itype, t) and \
                    fnmatch.fnmatchcase(az, a) and m in ("*", market):
                return n
        return None


class Instance:
    def __init__(self, iid, itype, az, subnet, market, tags, launched):
        self.id = iid
        self.type = itype
        self.az = az
        self.subnet = subnet
        self.market = market
        self.tags = dict(tags)
        self.launched = launched
        self.registered = None
        self.terminated = None
        self.reason = None       # (code, message) once terminated
        self.never_boot = False
        self.agent_crashed = None  # when its agent died, if it did
        self.worker = None
        self.private_ip = None
        self.shutdown_mode = None  # graceful/silent; None: the default
        self.shutdown = None       # the mode it went down in
        self.interrupting = False
        self.agent_resource = None

    @property
    def hostname(self):
        """What the machine calls itself, as EC2 names it from its private
        address: ip-10-77-1-12."""
        if self.private_ip:
            return "ip-" + self.private_ip.replace(".", "-")
        n = int(re.sub(r"[^0-9a-f]", "", self.id[-6:]) or "0", 16)
        return "ip-10-0-%d-%d" % ((n >> 8) % 256, n % 254 + 1)

    @property
    def resource(self):
        """Its qscale:resource tag; for another autoscaler's instance,
        the RESOURCE of a worker id PREFIX:RESOURCE:TYPE:ID (ClearML's
        form) once its agent read it."""
        return self.tags.get("qscale:resource") or self.agent_resource

    def state(self, pending_delay, now=None):
        if self.terminated is not None:
            return "terminated"
        now = time.time() if now is None else now
        return "pending" if now < self.launched + pending_delay else "running"

    def to_json(self, pending_delay):
        return {"id": self.id, "resource": self.resource, "type": self.type,
                "market": self.market, "subnet": self.subnet, "az": self.az,
                "launched": self.launched, "registered": self.registered,
                "terminated": self.terminated,
                "state": self.state(pending_delay),
                "state_reason": self.reason[0] if self.reason else None,
                "never_boot": self.never_boot,
                "agent_crashed": self.agent_crashed, "worker": self.worker,
                "hostname": self.hostname,
                "shutdown_mode": self.shutdown_mode, "shutdown": self.shutdown,
                "autoscaler": self.tags.get("qscale:autoscaler")}


class EC2Sim:
    def __init__(self, opts, log, moto_host, creds, subnets):
        self.opts = opts
        self.log = log
        self.moto_host = moto_host          # "127.0.0.1:PORT"
        self.key, self.secret = creds
        self.subnet_az = dict(subnets)      # subnet id -> az
        self.lock = threading.RLock()
        self.run_lock = threading.Lock()
        self.capacity = Capacity(opts.capacity)
        self.default_shutdown = opts.shutdown_mode
        self.agents = None
        self.moto = None                    # boto3 client, set by cloud.py
        self.reset_state()

    def reset_state(self):
        with self.lock:
            self.instances = {}
            self.tokens = {}
            self.rules = []
            self.never_next = []            # [remaining, resource or None]
            self.calls = []
            self.by_action = {}
            self.launch_calls = 0
            self.launched = 0
            self.terminations = 0
            self.interruptions = 0
            self.unverified = 0

    # ------------------------------------------------------------ moto

    def moto_request(self, method, path, headers, body):
        """Forward one request; returns (status, headers list, body)."""
        c = http.client.HTTPConnection(*self.moto_host.split(":"),
                                       timeout=120)
        try:
            c.putrequest(method, path, skip_host=True,
                         skip_accept_encoding=True)
            for k, v in headers:
                if k.lower() in ("connection", "keep-alive", "content-length",
                                 "transfer-encoding", "proxy-connection",
                                 "expect"):
                    continue
                c.putheader(k, v)
            c.putheader("Content-Length", str(len(body)))
            c.endheaders(body)
            r = c.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            c.close()

    def moto_signed(self, params):
        """Our own call to moto with the bootstrap credentials."""
        body = urllib.parse.urlencode(params).encode()
        headers = sigv4.sign_headers(self.key, self.secret, self.moto_host,
                                     body)
        return self.moto_request("POST", "/", list(headers.items()), body)

    # ---------------------------------------------------------- records

    def record(self, action, status, code=None, verified=None,
               received=None):
        with self.lock:
            now = time.time()
            rec = {"action": action, "time": now, "status": status,
                   "error": code,
                   "received": now if received is None else received}
            self.calls.append(rec)
            if len(self.calls) > MAX_CALL_RECORDS:
                del self.calls[:len(self.calls) - MAX_CALL_RECORDS]
            a = self.by_action.setdefault(action, {"calls": 0, "errors": 0,
                                                   "codes": {}})
            a["calls"] += 1
            if status >= 400:
                a["errors"] += 1
                c = code or "HTTP%d" % status
                a["codes"][c] = a["codes"].get(c, 0) + 1

    def max_alive(self):
        """The most instances alive at once, per resource.  An instance
        counts under the resource its tags give while it is alive, for
        its whole life, so that one tagged after its launch (CreateTags
        after RunInstances) counts as its resource from the launch on;
        '-' holds the ones never given a resource."""
        marks = {}
        for inst in self.instances.values():
            r = inst.resource or "-"
            marks.setdefault(r, []).append((inst.launched, 1))
            if inst.terminated is not None:
                marks[r].append((inst.terminated, -1))
        out = {}
        for r, ev in marks.items():
            n = best = 0
            for _, d in sorted(ev):     # an end before a start at a tie
                n += d
                best = max(best, n)
            out[r] = best
        return out

    def launches_by_resource(self):
        out = {}
        for inst in self.instances.values():
            r = inst.resource or "-"
            out[r] = out.get(r, 0) + 1
        return out

    def retag(self, iid, tags, removed=()):
        """Tags changed on an instance (CreateTags, DeleteTags, or seen in
        moto): kept while it is alive; its tags at its end stay its own.
        Logs launch-tagged when that gives it a resource."""
        with self.lock:
            inst = self.instances.get(iid)
            if inst is None or inst.terminated is not None:
                return
            before = inst.resource
            inst.tags.update(tags)
            for k in removed:
                inst.tags.pop(k, None)
            after = inst.resource
        if after and after != before:
            self.log("launch-tagged", instance=iid, resource=after,
                     note="resource from tags given after the launch")

    # ----------------------------------------------------------- faults

    def match_fault(self, action, params):
        """(error rule or None, latency seconds)."""
        now = time.time()
        latency = 0.0
        hit = None
        with self.lock:
            for r in self.rules:
                if r["action"] not in ("*", action):
                    continue
                if r.get("after_t") and now < r["after_t"]:
                    continue
                if r.get("until_t") and now >= r["until_t"]:
                    continue
                if any(params.get(k) != v for k, v in r["match"].items()):
                    continue
                if r.get("latency_ms"):
                    latency = max(latency, r["latency_ms"] / 1000.0)
                if hit is not None or not r.get("code"):
                    continue
                if r.get("count") is not None and r["left"] <= 0:
                    continue
                if r.get("probability") is not None and \
                        random.random() >= r["probability"]:
                    continue
                if r.get("count") is not None:
                    r["left"] -= 1
                r["hits"] += 1
                hit = r
        return hit, latency

    def faults_add(self, doc):
        rules = doc if isinstance(doc, list) else [doc]
        now = time.time()
        parsed = []
        for r in rules:
            parsed.append(self._parse_rule(r, now))
        with self.lock:
            self.rules.extend(parsed)
        for r in parsed:
            self.log("fault", target="ec2", action=r["action"],
                     code=r.get("code"), latency_ms=r.get("latency_ms"),
                     count=r.get("count"), probability=r.get("probability"),
                     match=json.dumps(r["match"]) if r["match"] else None)
        return self.faults_get(None)

    @staticmethod
    def _parse_rule(r, now):
        if not isinstance(r, dict):
            raise ValueError("a fault rule is a JSON object")
        known = {"action", "code", "http_status", "message", "count",
                 "probability", "after", "until", "match", "latency_ms",
                 "html"}
        extra = set(r) - known
        if extra:
            raise ValueError("unknown fault rule field(s): %s" %
                             ", ".join(sorted(extra)))
        action = r.get("action", "*")
        if not isinstance(action, str) or not action:
            raise ValueError("action must be '*' or an EC2 action name")
        code = r.get("code")
        if code is None and not r.get("latency_ms"):
            raise ValueError("a rule needs a code (an error) or latency_ms")
        out = {"action": action, "code": code, "hits": 0,
               "message": r.get("message"), "html": bool(r.get("html"))}
        if code is not None:
            st = r.get("http_status", DEFAULT_STATUS.get(code, 400))
            if not isinstance(st, int) or not 400 <= st <= 599:
                raise ValueError("http_status must be 400..599")
            out["http_status"] = st
        for k in ("count",):
            if r.get(k) is not None:
                if not isinstance(r[k], int) or r[k] < 0:
                    raise ValueError("count must be a non-negative integer")
                out["count"] = out["left"] = r[k]
        p = r.get("probability")
        if p is not None:
            if not isinstance(p, (int, float)) or not 0 <= p <= 1:
                raise ValueError("probability must be between 0 and 1")
            out["probability"] = float(p)
        for k in ("after", "until"):
            if r.get(k) is not None:
                if not isinstance(r[k], (int, float)) or r[k] < 0:
                    raise ValueError("%s must be seconds from now (>= 0)"
                                     % k)
                out[k] = r[k]
                out[k + "_t"] = now + r[k]
        lat = r.get("latency_ms")
        if lat is not None:
            if not isinstance(lat, (int, float)) or lat < 0:
                raise ValueError("latency_ms must be >= 0")
            out["latency_ms"] = lat
        match = r.get("match") or {}
        if not isinstance(match, dict):
            raise ValueError("match must be an object {param: value}")
        out["match"] = {k: (str(v).lower() if isinstance(v, bool) else str(v))
                        for k, v in match.items()}
        return out

    def faults_get(self, doc):
        with self.lock:
            return {"rules": [{k: v for k, v in r.items()
                               if not k.endswith("_t")} for r in self.rules]}

    def faults_clear(self, doc):
        with self.lock:
            self.rules = []
        self.log("fault", target="ec2", cleared="all")
        return {"rules": []}

    def capacity_get(self, doc):
        return {"spec": self.capacity.spec}

    def capacity_set(self, doc):
        spec = doc.get("spec") if isinstance(doc, dict) else doc
        if not isinstance(spec, str):
            raise ValueError('expected {"spec": "TYPE/AZ/MARKET=N, ..."}')
        cap = Capacity(spec)
        with self.lock:
            self.capacity = cap
        self.log("capacity", spec=spec)
        return {"spec": spec}

    # ------------------------------------------------------ admin verbs

    def interrupt(self, doc):
        iid = doc.get("instance_id") if isinstance(doc, dict) else None
        with self.lock:
            inst = self.instances.get(iid)
            if inst is None:
                raise ValueError("unknown instance %r" % (iid,))
            if inst.terminated is not None:
                raise ValueError("instance %s is already terminated" % iid)
            inst.interrupting = True    # not a termination, for sync
        status, _, body = self.moto_signed({
            "Action": "TerminateInstances", "Version": "2016-11-15",
            "InstanceId.1": iid})
        if status != 200:
            inst.interrupting = False
            raise ValueError("moto refused to terminate %s: %s" % (
                iid, body[:300].decode("utf-8", "replace")))
        self.mark_terminated([iid], SPOT_REASON)
        with self.lock:
            self.interruptions += 1
        self.log("interrupt", instance=iid, resource=inst.resource)
        return {"interrupted": iid}

    def shutdown_mode_get(self, doc):
        with self.lock:
            return {"default": self.default_shutdown, "instances": {
                i.id: i.shutdown_mode for i in self.instances.values()
                if i.shutdown_mode is not None and i.terminated is None}}

    def shutdown_mode_set(self, doc):
        """How agents go down with their instance: 'graceful' (as
        clearml-agent on SIGTERM, the network still up: the running task
        stopped, the worker unregistered) or 'silent' (gone without a
        word).  For one instance ('default' clears its own), or the
        default of all others."""
        if not isinstance(doc, dict) or "mode" not in doc:
            raise ValueError('expected {"mode": "graceful"|"silent", '
                             '"instance_id"?: ID}')
        mode = doc["mode"]
        iid = doc.get("instance_id")
        allowed = SHUTDOWN_MODES + (("default",) if iid else ())
        if mode not in allowed:
            raise ValueError("mode must be %s, not %r" % (
                " or ".join(allowed), mode))
        with self.lock:
            if iid is None:
                self.default_shutdown = mode
            else:
                inst = self.instances.get(iid)
                if inst is None:
                    raise ValueError("unknown instance %r" % (iid,))
                if inst.terminated is not None:
                    raise ValueError("instance %s is already terminated"
                                     % iid)
                inst.shutdown_mode = None if mode == "default" else mode
        self.log("shutdown-mode", instance=iid, mode=mode)
        return self.shutdown_mode_get(None)

    def never_boot(self, doc):
        if not isinstance(doc, dict):
            raise ValueError('expected {"instance_id": ID} or {"next": N, '
                             '"resource": NAME}')
        with self.lock:
            if doc.get("instance_id"):
                inst = self.instances.get(doc["instance_id"])
                if inst is None:
                    raise ValueError("unknown instance %r" %
                                     doc["instance_id"])
                inst.never_boot = True
                self.log("never-boot", instance=inst.id)
                return {"never_boot": inst.id}
            n = doc.get("next")
            if not isinstance(n, int) or n <= 0:
                raise ValueError("next must be a positive integer")
            self.never_next.append([n, doc.get("resource")])
            self.log("never-boot", next=n, resource=doc.get("resource"))
            return {"never_boot_next": [list(x) for x in self.never_next]}

    def reset(self):
        with self.lock:
            live = [i.id for i in self.instances.values()
                    if i.terminated is None]
        if self.agents is not None:
            self.agents.reset()
        # Terminate until moto lists nothing live: a call that failed
        # (a loaded machine, a race with a launch) is tried again.
        for attempt in range(5):
            try:
                ids = self.all_live_in_moto()
            except Exception as e:
                self.log("reset-error", error=str(e))
                ids = live
            if not ids:
                break
            for k in range(0, len(ids), 100):
                params = {"Action": "TerminateInstances",
                          "Version": "2016-11-15"}
                for j, iid in enumerate(ids[k:k + 100], 1):
                    params["InstanceId.%d" % j] = iid
                try:
                    st, _, body = self.moto_signed(params)
                    if st != 200:
                        self.log("reset-error", status=st,
                                 body=body[:200].decode("utf-8", "replace"))
                except Exception as e:
                    self.log("reset-error", error=str(e))
            live = []
            time.sleep(0.05 * (attempt + 1))
        self.reset_state()

    def all_live_in_moto(self):
        ids = []
        pager = self.moto.get_paginator("describe_instances")
        for page in pager.paginate(Filters=[{
                "Name": "instance-state-name", "Values": list(LIVE)}]):
            for res in page["Reservations"]:
                ids += [i["InstanceId"] for i in res["Instances"]]
        return ids

    # ------------------------------------------------------- the registry

    def register_items(self, items, params):
        """Instances of a RunInstances response enter the registry."""
        now = time.time()
        market = "spot" if params.get("InstanceMarketOptions.MarketType") \
            == "spot" else "on-demand"
        new = []
        with self.lock:
            for it in items:
                iid = it.findtext(q("instanceId"))
                if not iid or iid in self.instances:
                    continue
                tags = {t.findtext(q("key")): t.findtext(q("value"))
                        or "" for t in it.findall(q("tagSet/item"))}
                life = it.findtext(q("instanceLifecycle"))
                inst = Instance(iid, it.findtext(q("instanceType")),
                                it.findtext(q("placement/availabilityZone")),
                                it.findtext(q("subnetId")),
                                "spot" if life == "spot" else market, tags,
                                now)
                inst.private_ip = it.findtext(q("privateIpAddress"))
                for nb in self.never_next:
                    if nb[0] > 0 and nb[1] in (None, inst.resource):
                        nb[0] -= 1
                        inst.never_boot = True
                        break
                self.never_next = [nb for nb in self.never_next if nb[0] > 0]
                self.instances[iid] = inst
                self.launched += 1
                new.append(inst)
        for inst in new:
            self.log("launch", instance=inst.id, resource=inst.resource,
                     type=inst.type, az=inst.az, subnet=inst.subnet,
                     market=inst.market,
                     never_boot="yes" if inst.never_boot else None)
        if self.agents is not None and new:
            self.agents.notify()
        return new

    def mark_terminated(self, ids, reason):
        now = time.time()
        done = []
        with self.lock:
            for iid in ids:
                inst = self.instances.get(iid)
                if inst is None or inst.terminated is not None:
                    continue
                inst.terminated = now
                inst.reason = reason
                inst.shutdown = inst.shutdown_mode or self.default_shutdown
                self.terminations += 1
                done.append(inst)
        for inst in done:
            if reason is USER_REASON:
                self.log("terminate", instance=inst.id,
                         resource=inst.resource)
            if self.agents is not None:
                self.agents.sigterm(inst.id, inst.shutdown,
                                    "interrupt" if reason is SPOT_REASON
                                    else "terminate")
        return done

    def workers(self):
        """{worker id: instance id} of the agents that registered."""
        with self.lock:
            return {i.worker: i.id for i in self.instances.values()
                    if i.worker}

    def live_count(self, itype, az, market):
        with self.lock:
            return sum(1 for i in self.instances.values()
                       if i.terminated is None and i.type == itype and
                       i.az == az and i.market == market)

    def zone_of(self, params):
        subnet = params.get("SubnetId") or \
            params.get("NetworkInterface.1.SubnetId")
        if subnet:
            az = self.subnet_az.get(subnet)
            if az is None:
                try:
                    res = self.moto.describe_subnets(SubnetIds=[subnet])
                    az = res["Subnets"][0]["AvailabilityZone"]
                    self.subnet_az[subnet] = az
                except Exception:
                    return None     # moto will say InvalidSubnetID.NotFound
            return az
        return params.get("Placement.AvailabilityZone") or "us-east-1a"

    # ------------------------------------------------------------ stats

    def stats(self):
        now = time.time()
        pd = self.opts.pending_delay
        with self.lock:
            insts = [i.to_json(pd) for i in self.instances.values()]
            secs = sum(((i.terminated or now) - i.launched)
                       for i in self.instances.values())
            calls = {a: {"calls": v["calls"], "errors": v["errors"],
                         "codes": dict(v["codes"])}
                     for a, v in self.by_action.items()}
            totals = {
                "instance_seconds": round(secs, 3),
                "instances_alive": sum(1 for i in self.instances.values()
                                       if i.terminated is None),
                "max_alive": self.max_alive(),
                "launches": {"calls": self.launch_calls,
                             "instances": self.launched,
                             "by_resource": self.launches_by_resource()},
                "terminations": self.terminations,
                "interruptions": self.interruptions,
                "ec2_calls": calls,
                "ec2_call_log": list(self.calls[-2000:]),
                "unverified_requests": self.unverified,
            }
        return {"instances": insts, "totals": totals}


class EC2Handler(BaseHandler):
    """server.sim is the EC2Sim."""

    def serve(self):
        ec2 = self.server.sim
        received = time.time()
        try:
            body = read_body(self)
        except ValueError as e:
            self.reply(400, "text/plain", ("bad request body: %s\n"
                                           % e).encode())
            self.close_connection = True
            return
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query,
                                             keep_blank_values=True))
        ctype = self.headers.get("Content-Type", "")
        if "x-www-form-urlencoded" in ctype or (body and "=" in body[:200]
                                                .decode("latin-1")):
            try:
                params.update(urllib.parse.parse_qsl(
                    body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                pass
        action = params.get("Action", "")
        verified = sigv4.verify(self.command, self.path, self.headers, body,
                                {ec2.key: ec2.secret})
        ctx = Call(self, ec2, action, params, body, verified, received)
        try:
            ctx.run()
        except (ConnectionError, OSError) as e:
            ec2.log("script-error", where="ec2 front " + action,
                    error=repr(e))
            ctx.send_error_xml(503, "Unavailable", "front could not reach "
                               "moto: %s" % e)


class Call:
    """One EC2 request going through the front."""

    def __init__(self, handler, ec2, action, params, body, verified,
                 received=None):
        self.h = handler
        self.received = received
        self.ec2 = ec2
        self.action = action or "?"
        self.params = params
        self.body = body
        self.verified = verified

    def send(self, status, headers, body):
        h = self.h
        h.send_response(status)
        seen = set()
        for k, v in headers:
            lk = k.lower()
            if lk in ("content-length", "transfer-encoding", "connection",
                      "keep-alive", "date", "server"):
                continue
            seen.add(lk)
            h.send_header(k, v)
        if "content-type" not in seen:
            h.send_header("Content-Type", "text/xml;charset=UTF-8")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
        code = None
        if status >= 400:
            m = re.search(rb"<Code>([^<]*)</Code>", body)
            code = m.group(1).decode() if m else None
        self.ec2.record(self.action, status, code, self.verified,
                        self.received)

    def send_error_xml(self, status, code, message, html=False):
        if html:
            body = ("<!DOCTYPE html><html><head><title>500 Internal Server "
                    "Error</title></head><body><h1>Internal Server Error"
                    "</h1><p>%s</p></body></html>\n" % _esc(message)).encode()
            self.send(status, [("Content-Type", "text/html; charset=utf-8")],
                      body)
            return
        body, rid = error_xml(code, message)
        self.send(status, [("Content-Type", "text/xml;charset=UTF-8"),
                           ("x-amzn-RequestId", rid)], body)

    def forward(self):
        return self.ec2.moto_request(self.h.command, self.h.path,
                                     self.h.headers.items(), self.body)

    def run(self):
        ec2 = self.ec2
        if self.verified:
            rule, latency = ec2.match_fault(self.action, self.params)
            if latency:
                time.sleep(latency)
            if rule is not None:
                ec2.log("fault-hit", action=self.action, code=rule["code"])
                self.send_error_xml(rule["http_status"], rule["code"],
                                    rule["message"] or
                                    "Injected by cloudsim: %s" % rule["code"],
                                    rule["html"])
                return
        if self.verified is None or self.verified is False:
            status, headers, body = self.forward()
            if status == 200 and self.verified is None and \
                    self.action in ("RunInstances", "DescribeInstances",
                                    "TerminateInstances"):
                with ec2.lock:
                    ec2.unverified += 1
                ec2.log("unverified", action=self.action,
                        note="signature not checkable by the front; its "
                        "behaviours were skipped")
            self.send(status, headers, body)
            return
        fn = getattr(self, "do_" + self.action, None)
        if fn is None:
            self.send(*self.forward())
        else:
            fn()

    # --------------------------------------------------------- actions

    def do_RunInstances(self):
        ec2 = self.ec2
        p = self.params
        with ec2.lock:
            ec2.launch_calls += 1
        try:
            mn = int(p.get("MinCount", "1"))
            mx = int(p.get("MaxCount", p.get("MinCount", "1")))
        except ValueError:
            self.send_error_xml(400, "InvalidParameterValue",
                                "MinCount and MaxCount must be integers")
            return
        if mn < 1 or mx < mn:
            self.send_error_xml(
                400, "InvalidParameterValue",
                "Value (%d) for parameter minCount/maxCount is invalid. "
                "MinCount must be at least 1 and at most MaxCount (%d)."
                % (mn, mx))
            return
        token = p.get("ClientToken")
        phash = hashlib.sha256(json.dumps(
            sorted((k, v) for k, v in p.items() if k != "ClientToken"))
            .encode()).hexdigest()
        with ec2.run_lock:
            if token:
                with ec2.lock:
                    old = ec2.tokens.get(token)
                if old and time.time() - old["time"] < TOKEN_TTL:
                    if old["hash"] != phash:
                        self.send_error_xml(
                            400, "IdempotentParameterMismatch",
                            "Arguments on this idempotent request are "
                            "inconsistent with arguments used in previous "
                            "request(s).")
                        return
                    ec2.log("idempotent-replay", token=token)
                    self.send_xml(self.rewrite_instances(
                        ET.fromstring(old["body"])), old["headers"])
                    return
            self.launch(mn, mx, token, phash)

    def launch(self, mn, mx, token, phash):
        ec2 = self.ec2
        p = self.params
        itype = p.get("InstanceType", "m1.small")
        az = ec2.zone_of(p)
        market = "spot" if p.get("InstanceMarketOptions.MarketType") == \
            "spot" else "on-demand"
        n = mx
        if az is not None:
            with ec2.lock:
                limit = ec2.capacity.limit(itype, az, market)
            if limit is not None:
                fit = max(0, limit - ec2.live_count(itype, az, market))
                if fit < mn:
                    ec2.log("capacity-refused", type=itype, az=az,
                            market=market, wanted=mn, fit=fit)
                    self.send_error_xml(
                        500, "InsufficientInstanceCapacity",
                        "We currently do not have sufficient %s capacity in "
                        "the Availability Zone you requested (%s). Our "
                        "system will be working on provisioning additional "
                        "capacity. You can currently get %s capacity by not "
                        "specifying an Availability Zone in your request or "
                        "choosing a different Availability Zone." % (
                            itype, az, itype))
                    return
                n = min(mx, fit)
        status, headers, body = self.forward()
        if status != 200:
            self.send(status, headers, body)
            return
        root = ET.fromstring(body)
        iset = root.find(q("instancesSet"))
        if n > mn and iset is not None:
            extra = dict(p)
            extra["MinCount"] = extra["MaxCount"] = str(n - mn)
            extra.pop("ClientToken", None)
            st2, _, body2 = ec2.moto_signed(extra)
            if st2 == 200:
                for it in ET.fromstring(body2).findall(
                        q("instancesSet/item")):
                    iset.append(it)
            else:
                ec2.log("script-error", where="extra launch",
                        status=st2, body=body2[:300])
        self.profile_all(root.findall(q("instancesSet/item")))
        ec2.register_items(root.findall(q("instancesSet/item")), p)
        out = self.rewrite_instances(root)
        keep = [(k, v) for k, v in headers if k.lower() in
                ("content-type", "x-amzn-requestid")]
        if token:
            with ec2.lock:
                ec2.tokens[token] = {"time": time.time(), "hash": phash,
                                     "body": to_xml(root), "headers": keep}
        self.send_xml(out, keep)

    def profile_all(self, items):
        """moto gives a launch's instance profile to its first instance
        only; EC2 gives it to all of them."""
        p = self.params
        prof = {k: v for k, v in p.items()
                if k in ("IamInstanceProfile.Name", "IamInstanceProfile.Arn")}
        model = next((it.find(q("iamInstanceProfile")) for it in items
                      if it.find(q("iamInstanceProfile")) is not None), None)
        if not prof or model is None:
            return
        for it in items:
            if it.find(q("iamInstanceProfile")) is not None:
                continue
            call = {"Action": "AssociateIamInstanceProfile",
                    "Version": "2016-11-15",
                    "InstanceId": it.findtext(q("instanceId"))}
            call.update(prof)
            st, _, body = self.ec2.moto_signed(call)
            if st == 200:
                it.append(copy.deepcopy(model))
            else:
                self.ec2.log("script-error", where="profile association",
                             status=st, body=body[:300])

    def send_xml(self, root, headers):
        self.send(200, headers, to_xml(root))

    def rewrite_instances(self, root):
        """States as the front sees them: pending for a while after launch,
        the reason of a spot interruption."""
        ec2 = self.ec2
        now = time.time()
        with ec2.lock:
            for it in root.iter(Q + "item"):
                iid = it.findtext(q("instanceId"))
                st = it.find(q("instanceState"))
                inst = ec2.instances.get(iid) if iid else None
                if inst is None or st is None:
                    continue
                if it.find(q("currentState")) is not None:
                    continue
                moto_state = st.findtext(q("name"))
                if inst.terminated is None and moto_state in LIVE:
                    state = inst.state(ec2.opts.pending_delay, now)
                    st.find(q("code")).text = str(STATE_CODES[state])
                    st.find(q("name")).text = state
                if inst.reason is SPOT_REASON:
                    self._set_reason(it, SPOT_REASON)
        return root

    @staticmethod
    def _set_reason(it, reason):
        sr = it.find(q("stateReason"))
        if sr is None:
            sr = ET.SubElement(it, Q + "stateReason")
        for tag, val in (("code", reason[0]), ("message", reason[1])):
            el = sr.find(q(tag))
            if el is None:
                el = ET.SubElement(sr, Q + tag)
            el.text = val
        tr = it.find(q("reason"))
        if tr is not None:
            tr.text = reason[1]

    def do_DescribeInstances(self):
        filters = filters_of(self.params)
        wanted = set(filters.get("instance-state-name", []))
        if "pending" in wanted and "running" not in wanted:
            # moto holds pending instances as running: ask for those too
            widened = dict(self.params)
            for k, v in self.params.items():
                if v == "instance-state-name" and k.endswith(".Name"):
                    n = k.split(".")[1]
                    idx = len([x for x in self.params
                               if x.startswith("Filter.%s.Value." % n)]) + 1
                    widened["Filter.%s.Value.%d" % (n, idx)] = "running"
            status, headers, body = self.ec2.moto_signed(widened)
        else:
            status, headers, body = self.forward()
        if status != 200:
            self.send(status, headers, body)
            return
        root = self.rewrite_instances(ET.fromstring(body))
        if wanted:
            rset = root.find(q("reservationSet"))
            for res in list(rset if rset is not None else []):
                iset = res.find(q("instancesSet"))
                for it in list(iset if iset is not None else []):
                    if it.findtext(q("instanceState/name")) not in wanted:
                        iset.remove(it)
                if iset is None or len(iset) == 0:
                    rset.remove(res)
        self.send_xml(root, [(k, v) for k, v in headers if k.lower() in
                             ("content-type", "x-amzn-requestid")])

    def do_TerminateInstances(self):
        status, headers, body = self.forward()
        if status == 200:
            ids = numbered(self.params, "InstanceId")
            self.ec2.mark_terminated(ids, USER_REASON)
        self.send(status, headers, body)

    def tag_params(self):
        """ResourceId.N and Tag.N.Key/Value of CreateTags/DeleteTags."""
        ids = numbered(self.params, "ResourceId")
        tags = {}
        for k, v in self.params.items():
            m = re.match(r"^Tag\.(\d+)\.Key$", k)
            if m:
                tags[v] = self.params.get("Tag.%s.Value" % m.group(1), "")
        return ids, tags

    def do_CreateTags(self):
        status, headers, body = self.forward()
        if status == 200:
            ids, tags = self.tag_params()
            for iid in ids:
                self.ec2.retag(iid, tags)
            if self.ec2.agents is not None:
                self.ec2.agents.notify()
        self.send(status, headers, body)

    def do_DeleteTags(self):
        status, headers, body = self.forward()
        if status == 200:
            ids, tags = self.tag_params()
            for iid in ids:
                self.ec2.retag(iid, {}, tags)
        self.send(status, headers, body)

    def do_GetConsoleOutput(self):
        status, headers, body = self.forward()
        iid = self.params.get("InstanceId")
        if status == 200 and self.ec2.agents is not None:
            text = self.ec2.agents.console_text(iid)
            if text is not None:
                root = ET.fromstring(body)
                out = root.find(q("output"))
                if out is None:
                    out = ET.SubElement(root, Q + "output")
                out.text = base64.b64encode(text.encode()).decode()
                body = to_xml(root)
        self.send(status, headers, body)
