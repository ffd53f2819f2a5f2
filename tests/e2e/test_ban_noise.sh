#!/bin/sh
# Only Pipedrive's deliveries move the ban model: 50 requests that are not Pipedrive's
# (a scanner's GET, unauthenticated POSTs, bodies without a webhook id) leave /healthz with
# no predicted ban, no possible loss and no webhook; they are counted in not_pipedrive.
# Usage: test_ban_noise.sh PDWEBHOOK
set -u
bin=$1
tmp=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
"$bin" serve --listen 127.0.0.1:0 --user u --password p --spool "$tmp/spool" \
  > "$tmp/serve.out" 2> "$tmp/serve.err" &
server=$!
k=0
while ! grep -q '^listening' "$tmp/serve.out" 2>/dev/null && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
url=$(sed -n 's|^listening on \(http://127.0.0.1:[0-9]*\)/.*|\1|p' "$tmp/serve.out")
i=0
while [ $i -lt 20 ]; do curl -s -o /dev/null "$url/wp-login.php"; i=$((i + 1)); done
body='{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"1","id":"n-1","timestamp":"2026-12-06T10:00:00.000Z","attempt":1},"data":{"id":1},"previous":{}}'
i=0
while [ $i -lt 15 ]; do
  curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary "$body" "$url/hook"
  i=$((i + 1))
done
i=0
while [ $i -lt 15 ]; do # authenticated, but no webhook id: not one of Pipedrive's
  printf '%s' "$body" | sed "s/n-1/n-$i/" |
    curl -s -o /dev/null -u u:p -H 'Content-Type: application/json' --data-binary @- "$url/hook"
  i=$((i + 1))
done
h=$(curl -s "$url/healthz")
kill -TERM "$server"; wait "$server"; server=""
pass=0; fail=0
t() { if echo "$h" | grep -q "$2"; then pass=$((pass + 1)); echo "ok - $1"; else fail=$((fail + 1)); echo "FAIL - $1: $h"; fi; }
t "no webhook in the ban model" '"ban_model":{"webhooks":\[\]'
t "no possible loss" '"possible_losses":\[\]'
t "no warning" '"warnings":\[\]'
t "status ok" '"status":"ok"'
t "50 counted apart" '"not_pipedrive":50'
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
