#!/bin/sh
# Runs every libFuzzer harness for SECONDS each, on a corpus seeded from
# the tree's own test data, and says which found a crash.
#   tests/fuzz/run.sh BUILD_DIR SECONDS
set -u
build=$1
secs=${2:-30}
top=$(cd "$(dirname "$0")/../.." && pwd)
corpus=$build/corpus
failed=""
LSAN_OPTIONS=suppressions=$top/tests/fuzz/lsan.supp
export LSAN_OPTIONS
for bin in "$build"/fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	mkdir -p "$corpus/$name"
	cp "$top/tests/fuzz/seeds/$name"/* "$corpus/$name/" 2>/dev/null
	case $name in
	fuzz_config)
		cp "$top"/tests/unit/data/conf/* "$top"/etc/qscale.conf.example \
		    "$corpus/$name/" 2>/dev/null ;;
	fuzz_ec2_xml)
		cp "$top"/tests/unit/data/ec2/*.xml "$corpus/$name/" \
		    2>/dev/null ;;
	esac
	echo "fuzzing $name for $secs s"
	if ! "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 \
	    -rss_limit_mb=1024 -artifact_prefix="$build/$name-" \
	    "$corpus/$name" >"$build/$name.log" 2>&1; then
		failed="$failed $name"
		tail -n 30 "$build/$name.log"
	else
		grep -E '^#[0-9]+.*DONE' "$build/$name.log" | tail -n 1
	fi
done
rm -rf /tmp/qscale-fuzz.*
if [ -n "$failed" ]; then
	echo "fuzz: crashes in:$failed (artifacts in $build)"
	exit 1
fi
echo "fuzz: no crash"
