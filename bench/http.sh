#!/bin/sh
# HTTP benchmark, one run on one machine, one target after the other:
#   1. http_floor_mhd      bench/mhd_floor.c: bare libmicrohttpd, reads the body, answers 200,
#                          a thread per connection (poll)
#      http_floor_mhd_epoll the same on an epoll thread pool of THREADS threads (serve's
#                          threading and default pool size); the ratio uses the faster floor
#   2. http_serve_spool    pdwebhook serve with Basic auth, dedup and --spool (each request
#                          answered once its delivery is fdatasync'ed; group commit)
#      http_serve_spool_retain0 the same with --spool-retain 0: handled segments are not
#                          kept for retries after a restart, so they are recycled within the
#                          run (the steady state of a long run with the default retention)
#   3. http_serve_memory   the same without --spool (worker from memory: not durable)
#   4. http_octokit        @octokit/webhooks' Node middleware (bench/peers/server.mjs)
# wrk: 1 thread, 32 connections, a warm-up run, then REPEAT measured runs; the median run
# (by req/s) is reported. Every request to pdwebhook carries a new event id (see
# make_wrk_scripts.py), so dedup never short-cuts one; /healthz is checked afterwards.
#
#   bench/http.sh [BUILD_DIR]        env: DURATION (10 s), WARMUP (3 s), REPEAT (3),
#                                         CONNECTIONS (32), TARGETS (all five), OUT (JSON lines),
#                                         THREADS (serve's pool and the epoll floor's; default:
#                                         online CPUs, at most 16)
# Needs wrk, python3, curl; node >= 20 for the peer (skipped with a note when missing).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
REPEAT=${REPEAT:-3}
CONNECTIONS=${CONNECTIONS:-32}
TARGETS=${TARGETS:-"http_floor_mhd http_floor_mhd_epoll http_serve_spool http_serve_spool_retain0 http_serve_memory http_octokit"}
# serve's default --threads: the online CPUs, at most 16 (tools/serve.c)
THREADS=${THREADS:-$(n=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1); [ "$n" -gt 16 ] && n=16; echo "$n")}
CORPUS=${CORPUS:-$ROOT/tests/fixtures}
USER_=pipedrive
PASS="correct horse battery staple"
PORT=${PORT:-18091}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pdwebhook-http-XXXXXX")
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

python3 "$HERE/make_wrk_scripts.py" "$CORPUS" "$WORK" "$USER_" "$PASS" "$PASS"

start() { # name command...: start a server on $PORT and wait for it to listen
  name=$1
  shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  SERVER_PID=$!
  i=0
  until grep -q listening "$WORK/$name.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "http.sh: $name did not start:" >&2
      cat "$WORK/$name.err" >&2
      exit 1
    fi
    sleep 0.1
  done
}

stop() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

to_ms() { # wrk latency "1.23ms" / "850.00us" / "1.01s" -> ms
  echo "$1" | awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /ms$/) v += 0;
                     else if ($1 ~ /s$/) v *= 1000; printf "%.3f", v }'
}

run_wrk() { # name script tag -> one line "req_per_s p50_ms p99_ms non2xx requests errors"
  wrk -t1 -c"$CONNECTIONS" -d"$2"s --latency -s "$WORK/$3" "http://127.0.0.1:$PORT/" -- "$4" "$5" \
    >"$WORK/wrk.txt" 2>&1 || true
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk.txt")
  p50=$(awk '$1 == "50%" { print $2 }' "$WORK/wrk.txt")
  p99=$(awk '$1 == "99%" { print $2 }' "$WORK/wrk.txt")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' "$WORK/wrk.txt")
  reqs=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
  errs=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$WORK/wrk.txt")
  echo "${rps:-0} $(to_ms "${p50:-0}") $(to_ms "${p99:-0}") ${non2xx:-0} ${reqs:-0} ${errs:-0}"
}

measure() { # name script
  name=$1
  script=$2
  run_tag=$(date +%s)
  run_wrk "$name" "$WARMUP" "$script" "$name-w-$run_tag" "$run_tag" >/dev/null
  : >"$WORK/runs.txt"
  k=1
  while [ $k -le "$REPEAT" ]; do
    run_wrk "$name" "$DURATION" "$script" "$name-$k-$run_tag" "$((run_tag + k * 7))" >>"$WORK/runs.txt"
    k=$((k + 1))
  done
  sort -n "$WORK/runs.txt" | awk -v n="$name" -v c="$CONNECTIONS" -v d="$DURATION" '
    { r[NR] = $0; rps[NR] = $1; non += $4; err += $6 }
    END { split(r[int((NR + 1) / 2)], m, " ");
          printf "{\"name\":\"%s\",\"req_per_s\":%.0f,\"p50_ms\":%s,\"p99_ms\":%s,\"non_2xx\":%d,\"socket_errors\":%d,\"connections\":%d,\"seconds\":%d,\"runs\":%d,\"min_req_per_s\":%.0f,\"max_req_per_s\":%.0f}\n",
                 n, m[1], m[2], m[3], non, err, c, d, NR, rps[1], rps[NR] }'
}

OUT=${OUT:-/dev/stdout}
: >"$WORK/rows.jsonl"
for t in $TARGETS; do
  case $t in
  http_floor_mhd)
    start $t "$BUILD/bench/pdwebhook-mhd-floor" --listen-port "$PORT"
    measure $t floor.lua >>"$WORK/rows.jsonl"
    stop
    ;;
  http_floor_mhd_epoll)
    start $t "$BUILD/bench/pdwebhook-mhd-floor" --listen-port "$PORT" --epoll-threads "$THREADS"
    measure $t floor.lua >>"$WORK/rows.jsonl"
    stop
    ;;
  http_serve_spool | http_serve_spool_retain0 | http_serve_memory)
    spool=
    [ $t = http_serve_spool ] && spool="--spool $WORK/spool"
    [ $t = http_serve_spool_retain0 ] && spool="--spool $WORK/spool --spool-retain 0"
    threads=
    "$BUILD/tools/pdwebhook" serve --help | grep -q -- --threads && threads="--threads $THREADS"
    # shellcheck disable=SC2086
    start $t "$BUILD/tools/pdwebhook" serve --listen "127.0.0.1:$PORT" --user "$USER_" \
      --password "$PASS" $spool $threads
    measure $t pdwebhook.lua >>"$WORK/rows.jsonl"
    health=$(curl -s "http://127.0.0.1:$PORT/healthz")
    echo "http.sh: $t /healthz: $health" | cut -c1-400 >&2
    dups=$(echo "$health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["duplicates"])')
    [ "$dups" = 0 ] || echo "http.sh: WARNING: $dups duplicate(s): bodies did not vary" >&2
    stop
    rm -rf "$WORK/spool"
    ;;
  http_octokit)
    if ! command -v node >/dev/null 2>&1; then
      echo "http.sh: node not found: no octokit row" >&2
      continue
    fi
    [ -d "$HERE/peers/node_modules/@octokit/webhooks" ] ||
      (cd "$HERE/peers" && npm ci --no-audit --no-fund >&2)
    start $t node "$HERE/peers/server.mjs" "$PORT"
    measure $t octokit.lua >>"$WORK/rows.jsonl"
    stop
    ;;
  *) echo "http.sh: unknown target $t" >&2 ;;
  esac
done
cat "$WORK/rows.jsonl" >"$OUT"
python3 - "$WORK/rows.jsonl" >&2 <<'PY'
import json, sys
rows = {r["name"]: r for r in map(json.loads, open(sys.argv[1]))}
s, o = rows.get("http_serve_spool"), rows.get("http_octokit")
floors = [rows[k] for k in ("http_floor_mhd", "http_floor_mhd_epoll") if k in rows]
f = max(floors, key=lambda r: r["req_per_s"]) if floors else None
for r in floors:
    print("http.sh: floor %s %.0f req/s" % (r["name"], r["req_per_s"]))
if s and f:
    print("http.sh: serve (spool) / bare libmicrohttpd (faster floor, %s) = %.2f (target >= 0.5)" % (f["name"], s["req_per_s"] / f["req_per_s"]))
z = rows.get("http_serve_spool_retain0")
if z and f:
    print("http.sh: serve (spool, --spool-retain 0: segments recycled) / bare libmicrohttpd (faster floor) = %.2f" % (z["req_per_s"] / f["req_per_s"]))
m = rows.get("http_serve_memory")
if m and f:
    print("http.sh: serve (memory) / bare libmicrohttpd (faster floor) = %.2f" % (m["req_per_s"] / f["req_per_s"]))
if s and o:
    print("http.sh: serve (spool) / octokit middleware = %.1f (target >= 5)" % (s["req_per_s"] / o["req_per_s"]))
if s:
    print("http.sh: serve (spool) p99 %.2f ms (target < 5), non-2xx %d (target 0)" % (s["p99_ms"], s["non_2xx"]))
PY
