#!/bin/sh
# One benchmark run for docs/BENCHMARKS.md: machine description, pdwebhook-bench (all rows),
# the in-process peer, then the HTTP benchmark, one after the other. Writes
# docs/bench/results.jsonl and docs/bench/machine.txt, then docs/bench/plot.sh if gnuplot
# is there.   bench/run_all.sh [BUILD_DIR] [SECONDS_PER_ROW]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
SECS=${2:-3}
DOCS=$ROOT/docs/bench
mkdir -p "$DOCS"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores"
  echo "memory: $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel: $(uname -sr)"
  echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "compiler: $(cc --version | head -n 1)"
  echo "node: $(node --version 2>/dev/null || echo none)"
  echo "wrk: $(wrk -v 2>&1 | head -n 1)"
  echo "libmicrohttpd: $(pkg-config --modversion libmicrohttpd), jansson: $(pkg-config --modversion jansson), simdjson: $(pkg-config --modversion simdjson 2>/dev/null || echo none)"
  echo "spool filesystem: $(df -T "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $2 " on " $1 }')"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$DOCS/machine.txt"
"$BUILD/bench/pdwebhook-bench" "$ROOT/tests/fixtures" "$SECS" >"$DOCS/results.jsonl"
if command -v node >/dev/null 2>&1; then
  [ -d "$HERE/peers/node_modules/@octokit/webhooks" ] || (cd "$HERE/peers" && npm ci --no-audit --no-fund >&2)
  node "$HERE/peers/inprocess.mjs" "$ROOT/tests/fixtures" "$SECS" >>"$DOCS/results.jsonl"
fi
OUT="$DOCS/http.jsonl" "$HERE/http.sh" "$BUILD"
cat "$DOCS/http.jsonl" >>"$DOCS/results.jsonl"
rm -f "$DOCS/http.jsonl"
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$DOCS/machine.txt"
if command -v gnuplot >/dev/null 2>&1; then "$DOCS/plot.sh"; fi
