#!/bin/sh
# Run every fuzz target for a while, two at a time, and summarise (docs/FUZZING.md).
#   tests/fuzz/campaign.sh BUILD_DIR [SECONDS] [OUT_DIR]
# BUILD_DIR was configured with -DPDWEBHOOK_FUZZ=ON -DCMAKE_C_COMPILER=clang.
# Each target fuzzes a copy of its seed corpus in OUT_DIR/<name>; crashes land in
# OUT_DIR/<name>-crash-*; the log is OUT_DIR/<name>.log.
set -eu
build=$1
secs=${2:-1800}
out=${3:-/tmp/pdw-campaign}
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
run() {
  name=$1
  mkdir -p "$out/$name"
  cp -n "$src/corpus/$name/"* "$out/$name/" 2>/dev/null || true
  "$build/tests/fuzz/fuzz_$name" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$out/$name-" "$out/$name" >"$out/$name.log" 2>&1
  echo "$name: exit $?" >>"$out/summary.txt"
}
: >"$out/summary.txt"
# shellcheck disable=SC2086
set -- ${PDW_FUZZ_TARGETS:-receiver auth event router}
while [ $# -gt 0 ]; do
  a=$1; shift
  b=${1:-}; [ $# -gt 0 ] && shift
  run "$a" &
  [ -n "$b" ] && run "$b" &
  wait
done
for f in "$out"/*.log; do
  n=$(basename "$f" .log)
  echo "== $n"
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$f" || true
  grep -E '#[0-9]+.*(DONE|pulse|REDUCE|NEW)' "$f" | tail -1 || true
  ls "$out/$n"-crash-* "$out/$n"-leak-* "$out/$n"-timeout-* "$out/$n"-oom-* 2>/dev/null || true
done
cat "$out/summary.txt"
