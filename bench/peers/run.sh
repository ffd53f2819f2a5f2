#!/bin/sh
# The in-process peer next to pdwebhook-bench's core rows, in one run on one machine.
#   bench/peers/run.sh [BUILD_DIR] [SECONDS]
# Needs node >= 20 and `npm ci` in bench/peers (done here when node_modules is missing).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$ROOT/build}
SECONDS_PER_ROW=${2:-5}
CORPUS=${CORPUS:-$ROOT/tests/fixtures}
[ -d "$HERE/node_modules/@octokit/webhooks" ] || (cd "$HERE" && npm ci --no-audit --no-fund >&2)
"$BUILD/bench/pdwebhook-bench" --only jansson_floor,pdwebhook_accept,pdwebhook_full,simdjson_limit \
  "$CORPUS" "$SECONDS_PER_ROW"
node "$HERE/inprocess.mjs" "$CORPUS" "$SECONDS_PER_ROW"
