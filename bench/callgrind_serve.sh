#!/bin/sh
# Instructions per request of `pdwebhook serve` (auth, dedup, --spool) under wrk, counted
# by callgrind: every thread (connection threads, group commit, worker) is included and the
# total is divided by the requests served. Usage:
#   bench/callgrind_serve.sh PDWEBHOOK_BINARY [SECONDS]
# Leaves the profile in $OUT/callgrind.out.serve (OUT default /tmp).
set -eu
BIN=${1:?usage: bench/callgrind_serve.sh PDWEBHOOK_BINARY [SECONDS]}
SECS=${2:-8}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp}
PORT=${PORT:-18097}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pdwebhook-cgserve-XXXXXX")
python3 "$HERE/make_wrk_scripts.py" "$HERE/../tests/fixtures" "$WORK" pipedrive "correct horse battery staple" x
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.serve" "$BIN" serve \
  --listen "127.0.0.1:$PORT" --user pipedrive --password "correct horse battery staple" \
  --spool "$WORK/spool" >"$WORK/out" 2>/dev/null &
pid=$!
k=0
until grep -q listening "$WORK/out" 2>/dev/null; do
  k=$((k + 1)); [ $k -lt 300 ] || { kill "$pid"; exit 1; }; sleep 0.1
done
wrk -t1 -c32 -d"${SECS}"s -s "$WORK/pdwebhook.lua" "http://127.0.0.1:$PORT/" -- cg "$(date +%s)" >/dev/null
reqs=$(curl -s "http://127.0.0.1:$PORT/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["received"])')
kill -TERM "$pid"
wait "$pid" || true
total=$(grep -m1 '^summary:\|^totals:' "$OUT/callgrind.out.serve" | awk '{print $2}')
awk -v t="$total" -v n="$reqs" 'BEGIN { printf "serve: %d requests, %.0f Ir/request (all threads, start-up included)\n", n, t / n }'
rm -rf "$WORK"
