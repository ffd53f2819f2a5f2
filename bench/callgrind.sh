#!/bin/sh
# Instructions per event of pdwebhook-bench rows, counted by callgrind (deterministic,
# unaffected by other load on the machine). Usage:
#   bench/callgrind.sh BUILD_DIR [ROW ...]       (default rows: the four core rows)
# Prints "ROW Ir_per_event" and leaves callgrind.out.ROW in $OUT (default /tmp) for
# callgrind_annotate. Needs valgrind.
set -eu
BUILD=${1:?usage: bench/callgrind.sh BUILD_DIR [ROW ...]}
shift
[ $# -gt 0 ] || set -- jansson_floor pdwebhook_accept pdwebhook_full simdjson_limit
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=${CORPUS:-$ROOT/tests/fixtures}
ITERS=${ITERS:-50}
OUT=${OUT:-/tmp}
NBODIES=$(ls "$CORPUS"/*.json | wc -l)
for row in "$@"; do
  f="$OUT/callgrind.out.$row"
  # only what run_job executes (one warm-up pass + ITERS timed passes) is counted
  valgrind --tool=callgrind --toggle-collect=run_job --callgrind-out-file="$f" \
    "$BUILD/bench/pdwebhook-bench" --only "$row" --rounds 1 --iters "$ITERS" "$CORPUS" 1 \
    >/dev/null 2>"$f.log"
  total=$(grep -m1 '^summary:\|^totals:' "$f" | awk '{print $2}')
  awk -v t="$total" -v n="$NBODIES" -v i="$ITERS" -v r="$row" \
    'BEGIN { printf "%-20s %10.0f Ir/event\n", r, t / (n * (i + 1)) }'
done
