"""Tiny result printer for the check scripts: 'ok - desc' or
'not ok - desc' plus '# detail' lines; the .t files number them."""

import shlex
import sys
import traceback


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, sep, v = line.strip().partition("=")
            if sep:
                parts = shlex.split(v)
                env[k] = parts[0] if parts else ""
    return env


class Tap:
    def __init__(self):
        self.failed = 0

    def check(self, desc, cond, detail=None):
        if cond:
            print("ok - %s" % desc, flush=True)
            return True
        self.failed += 1
        print("not ok - %s" % desc, flush=True)
        if detail is not None:
            for line in str(detail).splitlines()[:20]:
                print("# %s" % line[:300], flush=True)
        return False

    def run(self, desc, fn):
        """check() on a function that raises on failure."""
        try:
            res = fn()
        except Exception:
            return self.check(desc, False, traceback.format_exc())
        return self.check(desc, res is not False, res)

    def done(self):
        return 1 if self.failed else 0


def main_guard(fn):
    try:
        return fn()
    except Exception:
        print("not ok - check script crashed", flush=True)
        traceback.print_exc(file=sys.stdout)
        return 1
