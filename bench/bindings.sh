#!/bin/sh
# The bindings next to their peers, in one run on one machine (docs/BENCHMARKS.md,
# "The language bindings"): what the FFI costs.
#   bench/bindings.sh [BUILD_DIR] [SECONDS]
# Rows (pdwebhook-bench's JSON format, one per line):
#   pdwebhook_full                     the C library itself (pdwebhook-bench), for reference
#   node_pdwebhook_handle              the Node binding (koffi), Receiver.handle()
#   node_json_parse_dispatch           JSON.parse + object dispatch, no checks
#   octokit_verify_and_receive_seq/_batch  @octokit/webhooks (bench/peers/inprocess.mjs)
#   py_pdwebhook_handle                the Python binding (ctypes), Receiver.handle()
#   py_json_loads_dispatch             json.loads + dict dispatch, no checks
# Needs node and npm (`npm ci` runs in bench/peers and bindings/node when their
# node_modules are missing) and Debian's python3.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:-$ROOT/build}
SECONDS_PER_ROW=${2:-5}
CORPUS=${CORPUS:-$ROOT/tests/fixtures}
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
LIB=$BUILD/lib/libpdwebhook.so.1
[ -e "$LIB" ] || { echo "bench/bindings.sh: $LIB not built" >&2; exit 1; }
[ -d "$ROOT/bench/peers/node_modules/@octokit/webhooks" ] ||
  (cd "$ROOT/bench/peers" && npm ci --no-audit --no-fund --loglevel=error >&2)
[ -d "$ROOT/bindings/node/node_modules/koffi" ] ||
  (cd "$ROOT/bindings/node" && npm ci --no-audit --no-fund --loglevel=error >&2)
"$BUILD/bench/pdwebhook-bench" --only pdwebhook_full "$CORPUS" "$SECONDS_PER_ROW"
PDWEBHOOK_LIBRARY=$LIB node "$HERE/bindings/node_rows.mjs" "$CORPUS" "$SECONDS_PER_ROW"
node "$HERE/peers/inprocess.mjs" "$CORPUS" "$SECONDS_PER_ROW"
PDWEBHOOK_LIBRARY=$LIB "$PY" "$HERE/bindings/python_rows.py" "$CORPUS" "$SECONDS_PER_ROW"
