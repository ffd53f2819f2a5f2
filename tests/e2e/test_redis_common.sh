# Sourced by tests/e2e/test_redis_*.sh: a private redis-server on a free loopback port, and
# pdwebhook servers and consumers around it. Every wait is bounded; the EXIT trap stops
# everything this test started (by pid) and removes its directory.
#   redis_start [extra redis-server options]   sets RPORT, RURL (restart: same port, same dir)
#   redis_stop                                  SHUTDOWN (saves when persistence is on)
#   rcli ARGS...                                redis-cli on our server
#   serve_start NAME ARGS...                    sets url_NAME, pid_NAME
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pdw-redis.XXXXXX") || exit 1
pids=""
rpid=""
pass=0
fail=0
cleanup() {
  for p in $pids $rpid; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "$fail" -ne 0 ]; then # what the servers said, for the failure
    for f in "$tmp"/*.err; do [ -s "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL: $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }

rcli() { redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }

RPORT=""
ours() {
  if rcli info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$rpid"; then echo yes; else echo no; fi
}
redis_start() {
  mkdir -p "$tmp/redis"
  tries=0
  while :; do
    if [ -z "$RPORT" ] || [ "${RFIXED:-0}" = 0 ]; then
      # below the kernel's ephemeral range (32768-60999), where clients' ports come from;
      # seeded per try (srand() alone repeats within a second, so every retry collided)
      RPORT=$(awk -v s="$$$tries$(date +%N)" 'BEGIN { srand(s % 2147483647); print 20000 + int(rand() * 12000) }')
    fi
    (cd "$tmp/redis" && exec redis-server --port "$RPORT" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize no --dir "$tmp/redis" "$@") > "$tmp/redis.log" 2>&1 &
    rpid=$!
    # ours when the server on the port has our pid (another test's may hold the port)
    k=0
    while [ $k -lt 100 ]; do
      [ "$(ours)" = yes ] && break
      kill -0 "$rpid" 2>/dev/null || break
      k=$((k + 1)); sleep 0.05
    done
    if [ "$(ours)" = yes ]; then break; fi
    kill -KILL "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null; rpid=""
    tries=$((tries + 1))
    if [ $tries -ge 10 ] || [ "${RFIXED:-0}" = 1 ]; then
      echo "FAIL: redis-server does not start:"; cat "$tmp/redis.log"; exit 1
    fi
  done
  RFIXED=1 # a restart uses the same port
  RURL="redis://127.0.0.1:$RPORT"
}
redis_stop() {
  rcli shutdown > /dev/null 2>&1
  k=0
  while kill -0 "$rpid" 2>/dev/null && [ $k -lt 200 ]; do k=$((k + 1)); sleep 0.05; done
  kill -KILL "$rpid" 2>/dev/null
  wait "$rpid" 2>/dev/null
  rpid=""
}

# serve_start NAME ARGS...: pdwebhook serve on a free port; sets url_NAME and pid_NAME.
serve_start() {
  name=$1; shift
  rm -f "$tmp/$name.out" # else a restart could read the last run's "listening" line
  "$bin" serve --listen 127.0.0.1:0 --user u --password p "$@" > "$tmp/$name.out" 2> "$tmp/$name.err" &
  p=$!
  pids="$pids $p"
  k=0
  while ! grep -q '^listening on' "$tmp/$name.out" 2>/dev/null; do
    k=$((k + 1))
    if [ $k -gt 200 ] || ! kill -0 "$p" 2>/dev/null; then
      echo "FAIL: server $name did not start:"; cat "$tmp/$name.err"; exit 1
    fi
    sleep 0.05
  done
  eval "url_$name=\$(sed -n 's/^listening on //p' \"\$tmp/\$name.out\")"
  eval "pid_$name=$p"
}
serve_stop() { # serve_stop PID: SIGTERM and wait; its exit status in $rc
  kill -TERM "$1" 2>/dev/null
  wait "$1"
  rc=$?
}
health() { curl -s "${1}healthz"; }
hfield() { health "$1" | sed -n "s/.*\"$2\":\([0-9a-z]*\).*/\1/p" | head -n 1; }

# body N RUN [ATTEMPT]: a distinct v2 event (attempt 1 unless given)
body() {
  printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"%d","id":"%s-%d","webhook_id":"7","attempt":%d,"timestamp":"2026-11-27T10:00:00.000Z"},"data":{"stage_id":2},"previous":{"stage_id":1}}' $(($1 % 13)) "$2" "$1" "${3:-1}"
}
# post URL FILE: prints the status code
post() {
  curl -s -o /dev/null -w '%{http_code}' -m 30 -u u:p -H 'Content-Type: application/json' \
    --data-binary @"$2" "$1"
}
# post_settled URL FILE TAG: as post, for a delivery sent to two receivers at the same
# moment. The later one may find it still being accepted by the other: 503 PDW_EINFLIGHT
# + Retry-After (never a 200 that could lose it). Then it is sent again, as Pipedrive's
# retry would be, until the first is settled (bounded). Prints the final status; each
# in-flight answer adds a line to $tmp/inflight.
post_settled() {
  k=0
  while :; do
    code=$(curl -s -o "$tmp/ps.$3" -w '%{http_code}' -m 30 -u u:p \
      -H 'Content-Type: application/json' --data-binary @"$2" "$1")
    [ "$code" = 503 ] && grep -q PDW_EINFLIGHT "$tmp/ps.$3" && [ $k -lt 100 ] || break
    echo "$3" >> "$tmp/inflight"
    k=$((k + 1))
    sleep 0.05
  done
  echo "$code"
}
# wait_until "shell condition" [tries of 0.05 s]
wait_until() {
  k=0
  while ! eval "$1" && [ $k -lt "${2:-400}" ]; do k=$((k + 1)); sleep 0.05; done
  eval "$1"
}
