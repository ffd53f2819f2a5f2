#!/bin/sh
# `pdwebhook deadletter replay` hands a dead letter on once per sink: events whose
# --output line was written but whose --exec kept failing are given up; replayed, they go
# to --exec (now working) once, and are not written to --output a second time.
# Usage: test_replay.sh PDWEBHOOK
set -u
bin=$1
tmp=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; }
start() { # EXEC
  "$bin" serve --listen 127.0.0.1:0 --user u --password p --spool "$tmp/spool" \
    --output "$tmp/out.jsonl" --exec "$1" --max-attempts 2 --backoff-ms 10 \
    > "$tmp/serve.out" 2>> "$tmp/serve.err" &
  server=$!
  k=0
  while [ $k -lt 100 ]; do
    port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out" 2>/dev/null)
    [ -n "$port" ] && return 0
    k=$((k + 1)); sleep 0.05
  done
  cat "$tmp/serve.err"; return 1
}
lines() { n=$(grep -c . "$1" 2>/dev/null); echo "${n:-0}"; } # 0 also when absent or empty
wait_for() { # COUNT FILE
  k=0
  while [ "$(lines "$2")" -lt "$1" ] && [ $k -lt 150 ]; do k=$((k + 1)); sleep 0.1; done
}
start 'cat > /dev/null; exit 1' || { echo "0 passed, 1 failed"; exit 1; }
for i in 1 2 3; do
  printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"%d","id":"rp-%d","timestamp":"2026-12-06T10:00:00.000Z","webhook_id":"3","attempt":1},"data":{"id":%d},"previous":{}}' $i $i $i |
    curl -s -o /dev/null -u u:p -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$port/hook"
done
wait_for 3 "$tmp/spool/deadletter.jsonl"
[ "$(grep -c . "$tmp/spool/deadletter.jsonl")" = 3 ] && ok "three dead letters (--exec failed)" ||
  bad "dead letters: $(grep -c . "$tmp/spool/deadletter.jsonl" 2>/dev/null)"
[ "$(grep -c . "$tmp/out.jsonl")" = 3 ] && ok "--output has each once" || bad "output lines before replay"
kill -TERM "$server"; wait "$server"; server=""

"$bin" deadletter replay --spool "$tmp/spool" --all > "$tmp/replay.out" 2>&1 &&
  ok "replay" || { bad "replay: $(cat "$tmp/replay.out")"; }
start "cat >> $tmp/exec.jsonl" || { bad "restart"; echo "$pass passed, $fail failed"; exit 1; }
wait_for 3 "$tmp/exec.jsonl"
sleep 0.5
[ "$(grep -c . "$tmp/exec.jsonl" 2>/dev/null)" = 3 ] && ok "the replay ran --exec once each" ||
  bad "exec lines: $(grep -c . "$tmp/exec.jsonl" 2>/dev/null)"
[ "$(grep -c . "$tmp/out.jsonl")" = 3 ] && ok "and did not write --output a second time" ||
  bad "output lines after replay: $(grep -c . "$tmp/out.jsonl")"
kill -TERM "$server"; wait "$server"; server=""
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
