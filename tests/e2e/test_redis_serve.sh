#!/bin/sh
# Two receivers share one Redis: 200 distinct deliveries, each sent to both receivers at
# the same time, give exactly 200 stream entries (shared dedup + the stream's guard); the
# entries carry the canonical fields and the body; /healthz shows the forwarding; a bad
# URL, wrong or missing credentials give clear errors that never show the password; a
# claim left in flight by a crashed receiver blocks retries only until its lease is over.
# Usage: test_redis_serve.sh PDWEBHOOK
bin=$1
. "$(dirname "$0")/test_redis_common.sh"

redis_start
serve_start a --spool "$tmp/sa" --redis "$RURL" --output "$tmp/a.jsonl"
serve_start b --spool "$tmp/sb" --redis "$RURL" --stream pdwebhook:events
check "health: connected" "$(hfield "$url_a" connected)" true

i=0
: > "$tmp/codes"
while [ $i -lt 200 ]; do
  body $i two > "$tmp/b$i.json"
  post_settled "$url_a" "$tmp/b$i.json" a > "$tmp/ca" &
  p1=$!
  post_settled "$url_b" "$tmp/b$i.json" b > "$tmp/cb" &
  p2=$!
  wait $p1 $p2
  echo "$(cat "$tmp/ca")$(cat "$tmp/cb")" >> "$tmp/codes"
  i=$((i + 1))
done
check "every answer 200 (after in-flight retries)" "$(grep -c '^200200$' "$tmp/codes")" 200
echo "# answered 503 in flight, then sent again: $(cat "$tmp/inflight" 2>/dev/null | wc -l)"
wait_until '[ "$(rcli xlen pdwebhook:events)" -ge 200 ] && [ "$(hfield "$url_a" lag)" = 0 ] && [ "$(hfield "$url_b" lag)" = 0 ]'
check "stream entries" "$(rcli xlen pdwebhook:events)" 200
# the receivers' own count (top level of /healthz; "redis" has its store's count too,
# which leaves out the copies found still in flight and answered as duplicates)
topdups() { health "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["duplicates"])'; }
dups=$(( $(topdups "$url_a") + $(topdups "$url_b") ))
check "one of each pair answered as a duplicate" "$dups" 200
fa=$(hfield "$url_a" forwarded); fb=$(hfield "$url_b" forwarded)
check "forwarded by the two receivers together" "$((fa + fb))" 200
check "distinct delivery keys in the stream" \
  "$(rcli --raw xrange pdwebhook:events - + | grep -c '^2:deal:change:two-')" 200
rcli --raw xrange pdwebhook:events - + COUNT 1 > "$tmp/entry"
for f in delivery_key event action object entity_id webhook_id received_ms spool_id body; do
  grep -qx "$f" "$tmp/entry" && ok "entry has $f" || bad "entry lacks $f: $(cat "$tmp/entry")"
done
grep -qx 'change.deal' "$tmp/entry" && ok "entry's event is canonical" || bad "entry event"
check "dedup keys in Redis" "$(rcli --scan --pattern 'pdwebhook:dedup:*' | wc -l | tr -d ' ')" 200
# every claim confirmed ("1"; "0" is a claim still in flight), its TTL kept
check "dedup claims confirmed" "$(for k in $(rcli --scan --pattern 'pdwebhook:dedup:*'); do
  rcli get "$k"; done | grep -c '^1$')" 200
k1=$(rcli --scan --pattern 'pdwebhook:dedup:*' | head -n 1)
ttl=$(rcli pttl "$k1")
# claimed for the in-flight lease (60 s), confirmed for the dedup TTL (24 h)
[ "$ttl" -gt 3600000 ] && ok "a confirmed claim is kept for the dedup TTL ($ttl ms)" \
  || bad "confirmed claim TTL: $ttl"
check "guard keys in Redis" "$(rcli --scan --pattern 'pdwebhook:fwd:*' | wc -l | tr -d ' ')" 200
# --output still works next to the stream: a's share of the events
wait_until '[ "$(wc -l < "$tmp/a.jsonl")" -ge "$fa" ]' 100
check "a's --output lines" "$(wc -l < "$tmp/a.jsonl" | tr -d ' ')" "$fa"
serve_stop "$pid_a"; check "stop a" "$rc" 0
serve_stop "$pid_b"; check "stop b" "$rc" 0

# a restarted receiver forwards nothing twice (spool markers + the guard)
serve_start a --spool "$tmp/sa" --redis "$RURL"
post "$url_a" "$tmp/b5.json" > /dev/null
sleep 0.3
check "restart: still 200 entries" "$(rcli xlen pdwebhook:events)" 200
serve_stop "$pid_a"; check "stop a again" "$rc" 0

# --stream, --redis-prefix, --stream-maxlen
serve_start c --spool "$tmp/sc" --redis "$RURL" --stream other --redis-prefix x: --stream-maxlen 1000
post "$url_c" "$tmp/b7.json" > /dev/null
wait_until '[ "$(rcli xlen other)" = 1 ]' 100
check "--stream" "$(rcli xlen other)" 1
check "--redis-prefix" "$(rcli --scan --pattern 'x:fwd:2:deal:change:two-7:*' | wc -l | tr -d ' ')" 1
serve_stop "$pid_c"; check "stop c" "$rc" 0

# A receiver that crashed between its claim and its confirm left the claim in flight ("0")
# with its lease: a retry gets 503 PDW_EINFLIGHT until the lease is over, then it is
# taken as new and handed on (not answered 503 until Pipedrive gives up).
serve_start e --spool "$tmp/se" --redis "$RURL" --inflight-lease 30
body 1 crash 1 > "$tmp/crash1.json"
body 1 crash 2 > "$tmp/crash2.json"
rcli set 'pdwebhook:dedup:2:deal:change:crash-1:2026-11-27T10:00:00.000Z' 0 px $((1500 * ${PDW_TIME_SCALE:-1})) > /dev/null
code=$(curl -s -o "$tmp/crash.out" -w '%{http_code}' -m 30 -u u:p \
  -H 'Content-Type: application/json' --data-binary @"$tmp/crash2.json" "$url_e")
check "a retry during the crashed claim's lease: 503" "$code" 503
grep -q PDW_EINFLIGHT "$tmp/crash.out" && ok "... PDW_EINFLIGHT" || bad "crash: $(cat "$tmp/crash.out")"
wait_until '[ "$(rcli exists pdwebhook:dedup:2:deal:change:crash-1:2026-11-27T10:00:00.000Z)" = 0 ]' 200
check "a retry after the lease: handed on" "$(post "$url_e" "$tmp/crash2.json")" 200
wait_until '[ "$(rcli --raw xrange pdwebhook:events - + | grep -c "^2:deal:change:crash-1:")" = 1 ]' 100
check "... into the stream" "$(rcli --raw xrange pdwebhook:events - + | grep -c '^2:deal:change:crash-1:')" 1
check "... and then a duplicate" "$(post "$url_e" "$tmp/crash2.json")" 200
check "duplicates counted" "$(health "$url_e" | python3 -c 'import json, sys; print(json.load(sys.stdin)["duplicates"])')" 1
serve_stop "$pid_e"; check "stop e" "$rc" 0
"$bin" serve --listen 127.0.0.1:0 --user u --password p --inflight-lease x > /dev/null 2> "$tmp/e6"
check "--inflight-lease x: exit 2" "$?" 2
grep -q -- "--inflight-lease takes a number" "$tmp/e6" && ok "--inflight-lease checked" \
  || bad "--inflight-lease message: $(cat "$tmp/e6")"

# clear errors
"$bin" serve --listen 127.0.0.1:0 --user u --password p --spool "$tmp/sd" \
  --redis "redis://127.0.0.1:notaport" > /dev/null 2> "$tmp/e1"
check "bad port: exit 2" "$?" 2
grep -q "Redis URL port" "$tmp/e1" && ok "bad port named" || bad "bad port message: $(cat "$tmp/e1")"
"$bin" serve --listen 127.0.0.1:0 --user u --password p --spool "$tmp/sd" \
  --redis "http://127.0.0.1:$RPORT" > /dev/null 2> "$tmp/e2"
check "bad scheme: exit 2" "$?" 2
grep -q "Redis URL scheme" "$tmp/e2" && ok "bad scheme named" || bad "bad scheme message: $(cat "$tmp/e2")"
"$bin" serve --listen 127.0.0.1:0 --user u --password p --memory --redis "$RURL" > /dev/null 2> "$tmp/e3"
check "--redis without --spool: exit 2" "$?" 2
rcli config set requirepass 'pw-right-9' > /dev/null
"$bin" serve --listen 127.0.0.1:0 --user u --password p --spool "$tmp/sd" \
  --redis "redis://:pw-wrong-7@127.0.0.1:$RPORT" > /dev/null 2> "$tmp/e4"
check "wrong password: exit 2" "$?" 2
grep -q "refused the credentials" "$tmp/e4" && ok "wrong password said" || bad "wrong password message: $(cat "$tmp/e4")"
grep -q "pw-wrong-7" "$tmp/e4" && bad "the password was printed" || ok "password not printed"
"$bin" serve --listen 127.0.0.1:0 --user u --password p --spool "$tmp/sd" \
  --redis "$RURL/1" > /dev/null 2> "$tmp/e5"
check "missing password: exit 2" "$?" 2
grep -q "wants a password" "$tmp/e5" && ok "missing password said" || bad "missing password message: $(cat "$tmp/e5")"
serve_start d --spool "$tmp/sd" --redis "redis://:pw-right-9@127.0.0.1:$RPORT/2"
check "right password: connected" "$(hfield "$url_d" connected)" true
post "$url_d" "$tmp/b9.json" > /dev/null
wait_until '[ "$(REDISCLI_AUTH=pw-right-9 rcli -n 2 xlen pdwebhook:events 2>/dev/null)" = 1 ]' 100
check "database 2 used" "$(REDISCLI_AUTH=pw-right-9 rcli -n 2 xlen pdwebhook:events 2>/dev/null)" 1
serve_stop "$pid_d"; check "stop d" "$rc" 0

finish
