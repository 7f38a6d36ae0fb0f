#!/usr/bin/env bash
# make bench: qscale's speed and footprint figures, each next to the bar
# it should clear (DESIGN 9), a summary table at the end, and everything
# in BUILD/bench/results.json.  Not part of make test.
#
#   tests/bench/run.sh [BUILD_DIR]
#
# It takes about 3.5 minutes on a 2-core machine.  Only 127.0.0.1 and
# free ports are used; everything it starts is stopped on every way out.
# It exits 0 once every figure is measured, bars missed or not (they are
# printed and listed in the JSON); 1 if it could not measure.  See
# tests/bench/bench.py for the environment variables that shorten or
# lengthen the windows.
set -u

build=${1:-build}
top=$(cd "$(dirname "$0")/../.." && pwd)

if ! command -v python3 >/dev/null 2>&1; then
	echo "bench: python3 is missing: run 'make deps' first" >&2
	exit 1
fi
if ! python3 -c 'import moto, boto3' 2>/dev/null; then
	echo "bench: Python's moto and boto3 are missing (cloudsim needs" \
	    "them): run 'make deps' first" >&2
	exit 1
fi
if [ ! -x "$build/qscaled" ] || [ ! -x "$build/tools/plan-bench" ]; then
	echo "bench: $build/qscaled or $build/tools/plan-bench is missing:" \
	    "run make first" >&2
	exit 1
fi
exec python3 "$top/tests/bench/bench.py" "$build"
