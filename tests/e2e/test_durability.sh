#!/bin/sh
# Durable intake end to end: pdwebhook serve --spool --output --exec, killed with SIGKILL
# three times while `pdwebhook send` delivers (with Pipedrive's retries) from three
# processes at once. Afterwards every delivery that got a 2xx is in the output exactly
# once and went through --exec exactly once; nothing is there twice.
# Usage: test_durability.sh PDWEBHOOK
set -u
bin=$1
tmp=$(mktemp -d)
server=""
senders=""
cleanup() {
  [ -n "${KEEP:-}" ] && { echo "kept $tmp"; return; }
  for p in $server $senders; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
fail=0
check() { if [ "$2" = "$3" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1: got '$2', want '$3'"; fi; }

N=${DURABILITY_EVENTS:-600}
mkdir -p "$tmp/a" "$tmp/b" "$tmp/c"
i=0
while [ $i -lt $N ]; do
  case $((i % 3)) in 0) d=a ;; 1) d=b ;; *) d=c ;; esac
  # v2 and v1 bodies alternate; each event is unique
  if [ $((i % 2)) -eq 0 ]; then
    printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"%d","id":"ev-%06d","timestamp":"2026-11-27T10:00:00.000Z","webhook_id":"77","attempt":1},"data":{"id":%d,"stage_id":2},"previous":{"stage_id":1}}' $((i % 17)) $i $((i % 17)) > "$tmp/$d/e$i.json"
  else
    printf '{"v":1,"retry":0,"meta":{"v":1,"action":"updated","object":"person","id":%d,"timestamp":1764237600,"timestamp_micro":%d,"user_id":5,"webhook_id":"77"},"current":{"id":%d,"name":"n%06d"},"previous":{"id":%d,"name":"o"},"event":"updated.person"}' $((i % 13)) $((1764237600000000 + i)) $((i % 13)) $i $((i % 13)) > "$tmp/$d/e$i.json"
  fi
  i=$((i + 1))
done

# a free port, kept across restarts
"$bin" serve --listen 127.0.0.1:0 --memory --insecure-no-auth > "$tmp/probe.out" 2>/dev/null &
p=$!
k=0; while ! grep -q '^listening' "$tmp/probe.out" 2>/dev/null && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/probe.out")
kill -TERM $p; wait $p

start() {
  "$bin" serve --listen "127.0.0.1:$port" --user u --password p --spool "$tmp/spool" \
    --output "$tmp/out.jsonl" --exec "cat >> $tmp/exec.jsonl" --workers 3 \
    > "$tmp/serve.out" 2>> "$tmp/serve.err" &
  server=$!
  k=0
  while ! curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && [ $k -lt 200 ]; do k=$((k + 1)); sleep 0.02; done
}

start
for d in a b c; do
  "$bin" send --user u --password p --time-scale 0.002 --timeout 5 \
    "http://127.0.0.1:$port/hook" "$tmp/$d"/*.json > "$tmp/send-$d.jsonl" 2>&1 &
  senders="$senders $!"
done

# three kills at 25%, 50% and 75% of the deliveries
for q in 1 2 3; do
  want=$((N * q / 4))
  k=0
  while [ "$(cat "$tmp"/send-*.jsonl 2>/dev/null | grep -c '"attempt"')" -lt $want ] && [ $k -lt 1500 ]; do
    k=$((k + 1)); sleep 0.02
  done
  kill -KILL $server; wait $server 2>/dev/null
  echo "killed the server after ~$want attempts"
  sleep 0.1
  start
done
for s in $senders; do wait "$s"; done
senders=""

# let the worker finish what is pending
k=0
while [ $k -lt 500 ]; do
  h=$(curl -s "http://127.0.0.1:$port/healthz")
  case $h in *'"pending":0'*'"queued":0'*|*'"queued":0'*'"pending":0'*) break ;; esac
  k=$((k + 1)); sleep 0.02
done
kill -TERM $server; wait $server; server=""

# what got a 2xx
grep -h '"ok":true' "$tmp"/send-*.jsonl | sed -n 's/.*"file":"[^"]*\/\(e[0-9]*\)\.json".*/\1/p' | sort -u > "$tmp/acked"
acked=$(wc -l < "$tmp/acked")
echo "$acked of $N deliveries acknowledged"
[ "$acked" -gt $((N / 2)) ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: too few acknowledged ($acked)"; }

# each event's identity in the output: the v2 event id or the v1 person name
ident() { sed -n 's/.*"id":"\(ev-[0-9]*\)".*/\1/p; s/.*"name":"n\([0-9]*\)".*/n\1/p' "$1"; }
ident "$tmp/out.jsonl" | sort > "$tmp/out.ids"
ident "$tmp/exec.jsonl" | sort > "$tmp/exec.ids"
check "no event twice in --output" "$(uniq -d "$tmp/out.ids" | wc -l)" 0
check "no event twice through --exec" "$(uniq -d "$tmp/exec.ids" | wc -l)" 0
missing=0
while read -r f; do
  n=${f#e}
  if [ $((n % 2)) -eq 0 ]; then id=$(printf 'ev-%06d' "$n"); else id=$(printf 'n%06d' "$n"); fi
  grep -qx "$id" "$tmp/out.ids" || { missing=$((missing + 1)); echo "acknowledged but not in the output: $f"; }
  grep -qx "$id" "$tmp/exec.ids" || { missing=$((missing + 1)); echo "acknowledged but not executed: $f"; }
done < "$tmp/acked"
check "acknowledged deliveries lost" "$missing" 0
check "output and exec saw the same events" "$(cmp -s "$tmp/out.ids" "$tmp/exec.ids" && echo same)" same
grep -q 'recovered' "$tmp/serve.err" && pass=$((pass + 1)) || echo "note: no recovery was needed"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
