"""Reading a startup script as a simulated agent needs it: how it starts
clearml-agent (its queues, its worker id) and with which ClearML server
and credentials.  The script is read, not run: commands are taken in
order, whatever the control flow around them; a variable set to an empty
value keeps an earlier value (a reset in a retry loop); a command
substitution that mentions instance-id stands for the instance id, one
that asks for the hostname for the hostname, any other for an unknown
value.  Here-documents written to the agent's clearml.conf make its
configuration.

Recognised agent starts: `clearml-agent [OPTS] daemon ... --queue Q...`
or `python -m clearml_agent [OPTS] daemon ... --queue Q...`, any path to
either.  The worker id is CLEARML_WORKER_ID (or TRAINS_WORKER_ID) as the
script sets it (exported, assigned, or before the command), else
CLEARML_WORKER_NAME or the hostname, with ':cpu' under --cpu-only, then
':0', as clearml-agent names itself.  The server and credentials are
CLEARML_API_HOST, CLEARML_API_ACCESS_KEY and CLEARML_API_SECRET_KEY (or
TRAINS_API_*) as set for the command, else api.api_server and
api.credentials.access_key/secret_key of the clearml.conf the script
writes (--config-file, CLEARML_CONFIG_FILE, or ~/clearml.conf), as the
agent takes them."""

import json
import os
import re

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
KEYWORDS = {"if", "then", "else", "elif", "fi", "for", "while", "until",
            "do", "done", "case", "esac", "function", "!", "{", "}",
            "time"}
EXPORTS = {"export", "declare", "typeset", "readonly", "local"}
UNKNOWN = "\0"          # a value the reader cannot know


class Reading:
    """What a script says about its agent.  agent: whether it starts one;
    missing: what it lacks for a working agent."""

    def __init__(self):
        self.agent = False
        self.queues = []
        self.worker = None
        self.worker_set = False     # the script set the worker id itself
        self.api_server = None
        self.access_key = None
        self.secret_key = None
        self.missing = []

    def as_dict(self):
        return dict(vars(self))


# ------------------------------------------------------------ the lexer

class Lexer:
    """Shell text to commands: lists of words, each word a list of parts
    ('lit', s), ('sq', s), ('dq', [parts]), ('var', name, op, arg) or
    ('sub', text); with the here-documents and output redirections of
    its line."""

    def __init__(self, text):
        self.s = text
        self.i = 0
        self.lines = []         # [(commands, targets, heredocs)]

    def peek(self, k=0):
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def skip(self, chars):
        while self.i < len(self.s) and self.s[self.i] in chars:
            self.i += 1

    def run(self):
        cmds, targets, docs, pending = [], [], [], []
        words, word = [], []

        def end_word():
            if word:
                words.append(list(word))
                word.clear()

        def end_cmd():
            end_word()
            if words:
                cmds.append(list(words))
                words.clear()

        while self.i < len(self.s):
            c = self.peek()
            if c == "\\" and self.peek(1) == "\n":
                self.i += 2
                continue
            if c == "\n":
                end_cmd()
                self.i += 1
                for quoted, delim in pending:
                    docs.append((quoted, self.heredoc(delim)))
                self.lines.append((list(cmds), list(targets), list(docs)))
                cmds, targets, docs, pending = [], [], [], []
                continue
            if c in " \t":
                end_word()
                self.i += 1
            elif c == "#" and not word:
                while self.i < len(self.s) and self.peek() != "\n":
                    self.i += 1
            elif c in ";&|()":
                end_cmd()
                self.i += 1
            elif c == "<" and self.peek(1) == "<" and self.peek(2) != "<":
                end_word()
                self.i += 2
                if self.peek() == "-":
                    self.i += 1
                self.skip(" \t")
                parts = self.word_parts()
                quoted = any(p[0] in ("sq", "dq") for p in parts)
                pending.append((quoted, "".join(flat(p) for p in parts)))
            elif c == ">" or (c.isdigit() and self.peek(1) == ">"):
                end_word()
                self.i += 1 if c == ">" else 2
                op = ">"
                if self.peek() == ">":
                    op = ">>"
                    self.i += 1
                if self.peek() == "&":      # >&2: not a file
                    self.i += 1
                    self.word_parts()
                    continue
                self.skip(" \t")
                targets.append((op, self.word_parts()))
            elif c == "<":                 # input: not of interest
                end_word()
                self.skip("<&")
                self.skip(" \t")
                if self.peek() == "(":      # <(process substitution)
                    self.i += 1
                    self.balanced("(", ")")
                else:
                    self.word_parts()
            else:
                start = self.i
                word.extend(self.word_parts())
                if self.i == start:
                    self.i += 1
        end_cmd()
        self.lines.append((cmds, targets, docs))
        return self.lines

    def heredoc(self, delim):
        body = []
        while self.i < len(self.s):
            j = self.s.find("\n", self.i)
            j = len(self.s) if j < 0 else j
            line = self.s[self.i:j]
            self.i = j + 1
            if line.strip("\t") == delim:
                break
            body.append(line)
        return "\n".join(body) + ("\n" if body else "")

    def word_parts(self):
        """One word from here, up to unquoted blank or operator."""
        parts = []
        while self.i < len(self.s):
            c = self.peek()
            if c in " \t\n;&|()<>":
                break
            if c == "\\":
                parts.append(("sq", self.peek(1)))
                self.i += 2
            elif c == "'":
                j = self.s.find("'", self.i + 1)
                j = len(self.s) if j < 0 else j
                parts.append(("sq", self.s[self.i + 1:j]))
                self.i = j + 1
            elif c == '"':
                self.i += 1
                parts.append(("dq", self.dquoted()))
            elif c == "$" or c == "`":
                parts.append(self.dollar())
            else:
                parts.append(("lit", c))
                self.i += 1
        return parts

    def dquoted(self):
        parts = []
        while self.i < len(self.s):
            c = self.peek()
            if c == '"':
                self.i += 1
                break
            if c == "\\" and self.peek(1) and self.peek(1) in '$`"\\\n':
                parts.append(("sq", self.peek(1)))
                self.i += 2
            elif c in "$`":
                parts.append(self.dollar())
            else:
                parts.append(("lit", c))
                self.i += 1
        return parts

    def balanced(self, open_, close):
        """Text up to the matching close (the opening one consumed)."""
        depth, start = 1, self.i
        while self.i < len(self.s):
            c = self.peek()
            if c == "\\":
                self.i += 2
                continue
            if c == "'" and open_ != "{":
                j = self.s.find("'", self.i + 1)
                self.i = len(self.s) if j < 0 else j + 1
                continue
            if c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    self.i += 1
                    return self.s[start:self.i - 1]
            self.i += 1
        return self.s[start:]

    def dollar(self):
        c = self.peek()
        if c == "`":
            j = self.s.find("`", self.i + 1)
            j = len(self.s) if j < 0 else j
            text = self.s[self.i + 1:j]
            self.i = j + 1
            return ("sub", text)
        n = self.peek(1)
        if n == "(":
            self.i += 2
            return ("sub", self.balanced("(", ")"))
        if n == "{":
            self.i += 2
            inner = self.balanced("{", "}")
            m = re.match(r"^(%s)(:?[-=+?])?(.*)$" % NAME, inner, re.S)
            if not m:
                return ("var", "?", None, None)
            return ("var", m.group(1), m.group(2), m.group(3))
        m = re.match(NAME, self.s[self.i + 1:])
        if m:
            self.i += 1 + len(m.group(0))
            return ("var", m.group(0), None, None)
        if n and n in "0123456789@*#?$!-":
            self.i += 2
            return ("var", "?", None, None)
        self.i += 1
        return ("lit", "$")


def flat(p):
    """The text of a part as written (for here-document delimiters)."""
    if p[0] in ("lit", "sq"):
        return p[1]
    if p[0] == "dq":
        return "".join(flat(x) for x in p[1])
    return ""


# --------------------------------------------------------- the evaluator

class Script:
    def __init__(self, text, instance_id, hostname):
        self.text = text
        self.iid = instance_id
        self.host = hostname
        self.env = {}
        self.trace = []         # unset variables the last value used
        self.worker_unset = []  # those of the worker id's assignment
        self.files = {}         # path -> text written by here-documents
        self.agent = None       # (words, env) of the agent's start

    def value(self, parts):
        out = []
        for k, p in enumerate(parts):
            kind = p[0]
            if kind in ("lit", "sq"):
                s = p[1]
                if kind == "lit" and k == 0 and s == "~":
                    s = self.env.get("HOME") or "/root"
                out.append(s)
            elif kind == "dq":
                out.append(self.value(p[1]))
            elif kind == "sub":
                out.append(self.substitution(p[1]))
            else:
                out.append(self.var(p[1], p[2], p[3]))
        return "".join(out)

    def substitution(self, text):
        if "instance-id" in text or "instance_id" in text:
            return self.iid
        if re.search(r"\bhostname\b|local-hostname", text):
            return self.host
        return UNKNOWN

    def var(self, name, op, arg):
        v = self.env.get(name)
        if op and op.endswith(("-", "=")) and (v is None or
                                             (op[0] == ":" and v == "")):
            v = self.value(Lexer(arg or "").word_parts()) if arg else ""
            if op.endswith("="):
                self.env[name] = v
        elif op and op.endswith("+"):
            v = arg if v else ""
        if v is None:
            if name != "?":
                self.trace.append(name)
            return ""
        return v

    def assign(self, env, word):
        """NAME=value or NAME+=value into env; False if the word is not
        an assignment."""
        text, k = "", 0
        while k < len(word) and word[k][0] == "lit" and "=" not in text:
            text += word[k][1]
            k += 1
        m = re.match(r"^(%s)(\+?)=(.*)$" % NAME, text, re.S)
        if not m:
            return False
        name = m.group(1)
        self.trace = []
        v = self.value([("lit", m.group(3))] + word[k:])
        if name in ("CLEARML_WORKER_ID", "TRAINS_WORKER_ID"):
            self.worker_unset = list(self.trace)
        if v == "" and env.get(name):
            return True     # a reset: keep what it had
        env[name] = (env.get(name, "") + v) if m.group(2) else v
        return True

    def run(self):
        for cmds, targets, docs in Lexer(self.text).run():
            for words in cmds:
                self.command(words)
            if docs and targets:
                op, target = targets[0]
                path = self.path(self.value(target))
                body = "".join(b if quoted else self.expand_doc(b)
                               for quoted, b in docs)
                if op == ">>":
                    self.files[path] = self.files.get(path, "") + body
                else:
                    self.files[path] = body
        return self

    def expand_doc(self, body):
        lx = Lexer(body)
        out = []
        while lx.i < len(body):
            c = lx.peek()
            if c == "\\" and lx.peek(1) and lx.peek(1) in "$`\\":
                out.append(lx.peek(1))
                lx.i += 2
            elif c in "$`":
                out.append(self.value([lx.dollar()]))
            else:
                out.append(c)
                lx.i += 1
        return "".join(out)

    def path(self, p):
        home = self.env.get("HOME") or "/root"
        if p.startswith("~"):
            p = home + p[1:]
        return os.path.normpath(p) if p else p

    def command(self, words):
        while words and self.value(words[0]) in KEYWORDS:
            words = words[1:]
        if not words:
            return
        first = self.value(words[0])
        if first in EXPORTS:
            for w in words[1:]:
                self.assign(self.env, w)
            return
        local = dict(self.env)
        k = 0
        while k < len(words) and self.assign(local, words[k]):
            k += 1
        if k == len(words):         # only assignments: they stay
            self.env = local
            return
        args = [self.value(w) for w in words[k:]]
        if self.agent is None and is_agent_daemon(args):
            self.agent = (args, local)

    def read(self, require_worker_id=False):
        self.run()
        r = Reading()
        if self.agent is None:
            r.missing.append("a clearml-agent daemon --queue line")
            return r
        r.agent = True
        args, env = self.agent
        opts = agent_options(args)
        r.queues = opts["queues"]
        if not r.queues:
            r.missing.append("--queue NAME on the clearml-agent daemon "
                             "line")
        wid = env.get("CLEARML_WORKER_ID") or env.get("TRAINS_WORKER_ID")
        if wid:
            r.worker, r.worker_set = wid, True
        else:
            name = env.get("CLEARML_WORKER_NAME") or \
                env.get("TRAINS_WORKER_NAME") or self.host
            r.worker = name + (":cpu" if opts["cpu_only"] else "") + ":0"
            if require_worker_id:
                r.missing.append("CLEARML_WORKER_ID set for the agent")
        conf_path = opts["config_file"] or env.get("CLEARML_CONFIG_FILE") \
            or "~/clearml.conf"
        conf = hocon(self.files.get(self.path(conf_path), ""))
        for attr, envs, key in (
                ("api_server", ("CLEARML_API_HOST", "TRAINS_API_HOST"),
                 "api.api_server"),
                ("access_key", ("CLEARML_API_ACCESS_KEY",
                                "TRAINS_API_ACCESS_KEY"),
                 "api.credentials.access_key"),
                ("secret_key", ("CLEARML_API_SECRET_KEY",
                                "TRAINS_API_SECRET_KEY"),
                 "api.credentials.secret_key")):
            v = next((env[e] for e in envs if env.get(e)), None) or \
                conf.get(key)
            setattr(r, attr, v)
            if not v:
                r.missing.append("%s (%s, or %s in %s)" % (
                    attr, envs[0], key, conf_path))
        for attr in ("worker", "api_server", "access_key", "secret_key"):
            v = getattr(r, attr)
            if v and UNKNOWN in v:      # (a credential is never shown)
                shown = " (%r)" % v.replace(UNKNOWN, "$(...)") \
                    if attr in ("worker", "api_server") else ""
                r.missing.append("%s: from a command the script runs%s"
                                 % (attr, shown))
        if any(UNKNOWN in q for q in r.queues):
            r.missing.append("queue names from a command the script runs")
        if r.worker_set:
            for name in self.worker_unset:
                r.missing.append("%s (used for the worker id, never set)"
                                 % name)
        return r


def is_agent_daemon(args):
    for k, a in enumerate(args):
        base = os.path.basename(a)
        if base == "clearml-agent" or (
                a == "clearml_agent" and k > 0 and args[k - 1] == "-m"):
            return "daemon" in args[k + 1:]
    return False


def agent_options(args):
    opts = {"queues": [], "config_file": None, "cpu_only": False}
    k = 0
    while k < len(args):
        a = args[k]
        if a in ("--queue", "--queues"):
            k += 1
            while k < len(args) and not args[k].startswith("-"):
                opts["queues"].append(args[k])
                k += 1
            continue
        if a.startswith(("--queue=", "--queues=")):
            opts["queues"].append(a.split("=", 1)[1])
        elif a == "--config-file" and k + 1 < len(args):
            opts["config_file"] = args[k + 1]
            k += 1
        elif a.startswith("--config-file="):
            opts["config_file"] = a.split("=", 1)[1]
        elif a == "--cpu-only":
            opts["cpu_only"] = True
        k += 1
    return opts


def read_script(text, instance_id, hostname, require_worker_id=False):
    return Script(text, instance_id, hostname).read(require_worker_id)


# ------------------------------------------------------------- HOCON

TOKEN = re.compile(r'''
    (?P<ws>[ \t\r]+) |
    (?P<comment>(\#|//)[^\n]*) |
    (?P<nl>\n) |
    (?P<triple>"""(?:.|\n)*?""") |
    (?P<str>"(?:[^"\\\n]|\\.)*") |
    (?P<punct>\+=|[{}\[\]:=,]) |
    (?P<subst>\$\{[^}]*\}) |
    (?P<bare>[^\s{}\[\]:=,"\#$]+(?:[ \t]+[^\s{}\[\]:=,"\#$]+)*)
''', re.X)


def hocon_tokens(text):
    out, i = [], 0
    while i < len(text):
        m = TOKEN.match(text, i)
        if not m:
            i += 1
            continue
        start, i = i, m.end()
        kind = m.lastgroup
        v = m.group(kind)
        if kind in ("ws", "comment"):
            continue
        if kind == "str":
            try:
                v = json.loads(v)
            except ValueError:
                v = v[1:-1]
            out.append(("s", v, start))
        elif kind == "triple":
            out.append(("s", v[3:-3], start))
        elif kind == "bare":
            out.append(("b", v.strip(), start))
        else:
            out.append((kind, v, start))
    return out


def bare_value(text, start):
    """An unquoted value as pyhocon reads one (a URL keeps its ':' and
    '//'): to the end of the line, a ',', a '}' or a ' #' comment."""
    m = re.match(r"[^\n,}]*", text[start:])
    return re.split(r"\s#|\s//", m.group(0))[0].strip()


def hocon(text):
    """The scalars of a HOCON text as {"dotted.key": "value"}; later
    ones win, objects merge.  Substitutions are left out."""
    toks = hocon_tokens(text)
    flat_ = {}
    pos = [0]

    def peek():
        return toks[pos[0]][:2] if pos[0] < len(toks) else (None, None)

    def skip_nl():
        while peek()[0] in ("nl", "punct") and peek()[1] in ("\n", ","):
            pos[0] += 1

    def obj(prefix):
        while True:
            skip_nl()
            kind, v = peek()
            if kind is None:
                return
            if kind == "punct" and v == "}":
                pos[0] += 1
                return
            if kind not in ("s", "b"):
                pos[0] += 1
                continue
            pos[0] += 1
            key = prefix + ([v] if kind == "s" else v.split("."))
            kind, v = peek()
            if kind == "punct" and v in (":", "=", "+="):
                pos[0] += 1
                kind, v = peek()
            if kind == "punct" and v == "{":
                pos[0] += 1
                obj(key)
            elif kind == "punct" and v == "[":
                pos[0] += 1
                depth = 1
                while depth and peek()[0] is not None:
                    k2, v2 = peek()
                    if k2 == "punct" and v2 == "[":
                        depth += 1
                    elif k2 == "punct" and v2 == "]":
                        depth -= 1
                    pos[0] += 1
            elif kind == "b":
                start = toks[pos[0]][2]
                flat_[".".join(key)] = bare_value(text, start)
                end = start + len(bare_value(text, start))
                while pos[0] < len(toks) and toks[pos[0]][2] < end:
                    pos[0] += 1
            else:
                vals = []
                while peek()[0] in ("s", "b", "subst"):
                    if peek()[0] != "subst":
                        vals.append(peek()[1])
                    pos[0] += 1
                if vals:
                    flat_[".".join(key)] = " ".join(vals)

    skip_nl()
    if peek()[:2] == ("punct", "{"):
        pos[0] += 1
    obj([])
    return flat_
