#!/bin/sh
# serve --skip-stale: a change of an entity older than one already handed on (Pipedrive's
# retry of an older change arriving after a newer one) is skipped, counted and logged;
# without the option both are handed on. Bodies are v2 change.deal shapes.
# Usage: test_skip_stale.sh PDWEBHOOK
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
check() { if [ "$2" = "$3" ]; then pass=$((pass + 1)); echo "ok - $1"; else fail=$((fail + 1)); echo "FAIL - $1: got '$3', want '$2'"; fi; }
body() { # ID TIMESTAMP STAGE
  printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"42","id":"%s","timestamp":"%s","webhook_id":"8","attempt":1},"data":{"id":42,"stage_id":%s},"previous":{"stage_id":1}}' "$1" "$2" "$3"
}
run() { # NAME [serve options]: newer change first, then the older one
  name=$1; shift
  "$bin" serve --listen 127.0.0.1:0 --user u --password p --spool "$tmp/spool-$name" \
    --output "$tmp/out-$name.jsonl" "$@" > "$tmp/serve.out" 2> "$tmp/serve-$name.err" &
  server=$!
  k=0
  while [ $k -lt 100 ]; do
    port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out" 2>/dev/null)
    [ -n "$port" ] && break
    k=$((k + 1)); sleep 0.05
  done
  for b in "new 2026-12-06T10:00:05.000Z 3" "old 2026-12-06T10:00:01.000Z 2"; do
    set -- $b
    body "$1" "$2" "$3" | curl -s -o /dev/null -u u:p -H 'Content-Type: application/json' \
      --data-binary @- "http://127.0.0.1:$port/hook"
    k=0 # one at a time, in this order
    while [ "$(grep -c "\"$1\"" "$tmp/out-$name.jsonl" 2>/dev/null || true)" = 0 ] &&
          ! grep -q 'skipped stale' "$tmp/serve-$name.err" && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
  done
  health=$(curl -s "http://127.0.0.1:$port/healthz")
  kill -TERM "$server"; wait "$server"; server=""
}
run plain
check "without --skip-stale both are handed on" 2 "$(grep -c . "$tmp/out-plain.jsonl")"
run skip --skip-stale
check "with --skip-stale the older change is skipped" 1 "$(grep -c . "$tmp/out-skip.jsonl")"
check "the newer one is the one handed on" 1 "$(grep -c '"stage_id":3' "$tmp/out-skip.jsonl")"
check "counted in /healthz" 1 "$(echo "$health" | sed -n 's/.*"stale_skipped":\([0-9]*\).*/\1/p')"
check "logged" 1 "$(grep -c 'skipped stale change.deal' "$tmp/serve-skip.err")"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
