#!/bin/sh
# Redis stopped during a load and started again: every delivery a receiver acknowledged
# reaches the stream exactly once. Two receivers share the Redis and each delivery goes to
# both: while Redis is down both accept it (deduplicated locally, journaled, answered 200:
# no 503 for Pipedrive's ban counter) and wait; once Redis is back both forward it and the
# stream's guard lets one in. Redis runs with an fsync'ed append-only file, as it should
# in production, so that a restart keeps the stream.
# Usage: test_redis_outage.sh PDWEBHOOK
bin=$1
. "$(dirname "$0")/test_redis_common.sh"

ROPTS="--appendonly yes --appendfsync always"
redis_start $ROPTS
serve_start a --spool "$tmp/sa" --redis "$RURL" --workers 2
serve_start b --spool "$tmp/sb" --redis "$RURL" --workers 2

N=240
i=0
: > "$tmp/acked"
while [ $i -lt $N ]; do
  if [ $i -eq 80 ]; then
    redis_stop
    echo "# redis stopped after $i deliveries"
  fi
  if [ $i -eq 120 ]; then
    h=$(health "$url_a")
    case $h in *'"connected":false'*) ok "health: not connected" ;; *) bad "health while down: $h" ;; esac
    case $h in *'redis unreachable'*) ok "health: status says so" ;; *) bad "health status while down: $h" ;; esac
    case $h in *'"waiting":0,'*) bad "health: nothing waiting: $h" ;; *) ok "health: deliveries waiting" ;; esac
  fi
  if [ $i -eq 160 ]; then
    redis_start $ROPTS
    echo "# redis started again after $i deliveries"
  fi
  # the two copies are Pipedrive retries (attempt 2): one delivery reaches two receivers
  # at once only as a retry racing its earlier attempt, and the later copy may then get
  # 503 PDW_EINFLIGHT (re-sent by post_settled), which for a retry costs no ban point
  body $i out 2 > "$tmp/b.json"
  post_settled "$url_a" "$tmp/b.json" a > "$tmp/ca" &
  pa=$!
  cb=$(post_settled "$url_b" "$tmp/b.json" b)
  wait $pa
  ca=$(cat "$tmp/ca")
  cr=$(post "$url_a" "$tmp/b.json") # a retry of the same delivery: 200 either way
  [ "$cr" = 200 ] || ca=$cr
  if [ "$ca" = 200 ] || [ "$cb" = 200 ]; then
    echo "2:deal:change:out-$i:2026-11-27T10:00:00.000Z" >> "$tmp/acked"
  fi
  echo "$ca $cb" >> "$tmp/codes"
  i=$((i + 1))
done
check "acknowledged deliveries" "$(wc -l < "$tmp/acked" | tr -d ' ')" $N
check "no answer but 200 (the outage cost no ban points)" "$(grep -vc '^200 200$' "$tmp/codes")" 0
wait_until '[ "$(hfield "$url_a" lag)" = 0 ] && [ "$(hfield "$url_b" lag)" = 0 ]' 600
check "a caught up" "$(hfield "$url_a" lag)" 0
check "b caught up" "$(hfield "$url_b" lag)" 0
rcli --raw xrange pdwebhook:events - + | grep '^2:deal:change:out-' | sort > "$tmp/stream"
check "stream entries" "$(rcli xlen pdwebhook:events)" $N
check "each acknowledged delivery once" "$(sort "$tmp/acked" | cmp -s - "$tmp/stream" && echo same)" same
check "no key twice" "$(uniq -d "$tmp/stream" | wc -l | tr -d ' ')" 0
# The dedup connection reports itself connected again at its next command that succeeds;
# the last deliveries may all have fallen inside its reconnect backoff (up to 2 s), and a
# repeated delivery is a duplicate in the local dedup, which never asks Redis. Send new
# deliveries (their own run id: counted, they reach the stream too) until a claim in
# Redis goes through.
P=0
k=0
while [ "$(hfield "$url_a" connected)" != true ] && [ $k -lt 60 ]; do
  body $k ping > "$tmp/p.json"
  [ "$(post "$url_a" "$tmp/p.json")" = 200 ] && P=$((P + 1))
  sleep 0.1
  k=$((k + 1))
done
echo "# connected again after $k new deliveries"
check "health: connected again" "$(hfield "$url_a" connected)" true
fb=$(( $(health "$url_a" | sed -n 's/.*"fallbacks":\([0-9]*\).*/\1/p') + $(health "$url_b" | sed -n 's/.*"fallbacks":\([0-9]*\).*/\1/p') ))
[ "$fb" -gt 0 ] && ok "claims fell back to local dedup during the outage ($fb)" || bad "no fallback claims"
already=$(( $(hfield "$url_a" already_forwarded) + $(hfield "$url_b" already_forwarded) ))
[ "$already" -gt 0 ] && ok "the guard stopped twins ($already)" || bad "the guard was never needed?"
serve_stop "$pid_a"; check "stop a" "$rc" 0
serve_stop "$pid_b"; check "stop b" "$rc" 0

# stopping while Redis is down: nothing waits for it, the deliveries stay in the spool
# and go on after the next start
redis_stop
serve_start a --spool "$tmp/sa" --redis "$RURL"
body 999 out > "$tmp/b.json"
check "down at start: still 200" "$(post "$url_a" "$tmp/b.json")" 200
serve_stop "$pid_a"; check "stop while Redis is down" "$rc" 0
redis_start $ROPTS
serve_start a --spool "$tmp/sa" --redis "$RURL"
wait_until '[ "$(rcli xlen pdwebhook:events)" = $((N + P + 1)) ]' 200
check "forwarded after the restart" "$(rcli xlen pdwebhook:events)" $((N + P + 1))
serve_stop "$pid_a"; check "stop a at last" "$rc" 0
finish
