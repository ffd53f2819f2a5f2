#!/bin/sh
# One client opening 1000 connections that trickle their heads a byte a second (a
# slowloris) must not shut Pipedrive out: deliveries from another address keep getting 200
# within a second, the per-address limit refuses the rest of the attack and the header
# deadline closes what it holds; both are counted in /healthz and logged.
# Usage: test_slowloris.sh PDWEBHOOK
set -u
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
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

"$bin" serve --listen 127.0.0.1:0 --user u --password p --spool "$tmp/spool" \
  --header-timeout 3 > "$tmp/serve.out" 2> "$tmp/serve.err" &
server=$!
k=0
while ! grep -q '^listening' "$tmp/serve.out" 2>/dev/null && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out")
[ -n "$port" ] || { cat "$tmp/serve.err"; echo "0 passed, 1 failed"; exit 1; }

timeout 60 python3 "$here/slowloris.py" "$port" 10 > "$tmp/attack.out" 2>&1
n=$(grep -c '^ok ' "$tmp/attack.out")
slow=$(awk '/^ok / && $2 >= 1.0' "$tmp/attack.out" | wc -l)
failed=$(grep -c '^fail' "$tmp/attack.out")
[ "$n" -ge 40 ] && [ "$failed" = 0 ] && ok "$n deliveries got 200 during the attack" ||
  { bad "deliveries: $n ok, $failed failed"; grep '^fail' "$tmp/attack.out" | head -3; }
[ "$slow" = 0 ] && ok "each within a second" || bad "$slow deliveries took a second or more"
health=$(curl -s "http://127.0.0.1:$port/healthz")
echo "$health" | grep -q '"per_ip_refused":[1-9]' && ok "refused attack connections counted" ||
  bad "no per-address refusals in /healthz: $health"
echo "$health" | grep -q '"header_timeouts":[1-9]' && ok "header deadline closures counted" ||
  bad "no header timeouts in /healthz: $health"
grep -q 'too many from this address' "$tmp/serve.err" && ok "the per-address limit is logged" ||
  bad "no per-address log line"
grep -q 'did not send its request head in time' "$tmp/serve.err" && ok "the header deadline is logged" ||
  bad "no header deadline log line"
lines=$(grep -c 'too many from this address' "$tmp/serve.err")
[ "$lines" -le 15 ] && ok "the limit's log lines are rate-limited ($lines)" ||
  bad "$lines log lines for the limit"
kill -TERM "$server"; wait "$server"; server=""
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
