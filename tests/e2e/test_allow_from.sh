#!/bin/sh
# serve --allow-from: only the listed source addresses may deliver (403 PDW_EFORBIDDEN for
# the others, before the credentials); --trusted-proxy: a proxy's X-Forwarded-For names
# the client; an allowlist file with no range (the shipped list before a refresh) is
# refused at start. Sources are loopback addresses (127.0.0.1 and 127.0.0.2).
# Usage: test_allow_from.sh PDWEBHOOK SOURCE_DIR
set -u
bin=$1
src=$2
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
start() {
  "$bin" serve --listen 127.0.0.1:0 --user u --password p --spool "$tmp/spool" "$@" \
    > "$tmp/serve.out" 2> "$tmp/serve.err" &
  server=$!
  k=0
  while [ $k -lt 100 ]; do
    port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out" 2>/dev/null)
    [ -n "$port" ] && return 0
    kill -0 "$server" 2>/dev/null || return 1
    k=$((k + 1)); sleep 0.05
  done
  return 1
}
stop() { kill -TERM "$server"; wait "$server"; server=""; }
body() { printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"1","id":"af-%s","timestamp":"2026-12-06T10:00:00.000Z","webhook_id":"4","attempt":1},"data":{"id":1},"previous":{}}' "$1"; }
post() { # ID [curl options...]
  id=$1; shift
  body "$id" | curl -s -o "$tmp/resp" -w '%{http_code}' -u u:p -H 'Content-Type: application/json' \
    --data-binary @- "$@" "http://127.0.0.1:$port/hook"
}

printf '# test list\n127.0.0.2/32  # the allowed source\n' > "$tmp/ranges.txt"
start --allow-from "$tmp/ranges.txt" || { cat "$tmp/serve.err"; echo "0 passed, 1 failed"; exit 1; }
check "from an address outside the list: 403" 403 "$(post 1 --interface 127.0.0.1)"
check "its reason" '{"ok":false,"error":"PDW_EFORBIDDEN"}' "$(cat "$tmp/resp")"
check "from the listed address: 200" 200 "$(post 2 --interface 127.0.0.2)"
check "wrong credentials from outside: still 403 (not looked at)" 403 \
  "$(body 3 | curl -s -o /dev/null -w '%{http_code}' -u u:wrong -H 'Content-Type: application/json' --data-binary @- --interface 127.0.0.1 "http://127.0.0.1:$port/hook")"
stop

start --allow-from 192.0.2.0/24 --trusted-proxy 127.0.0.1 || { cat "$tmp/serve.err"; exit 1; }
check "through the trusted proxy, a listed client: 200" 200 "$(post 4 -H 'X-Forwarded-For: 192.0.2.7')"
check "a forged entry to the left does not count: 403" 403 "$(post 5 -H 'X-Forwarded-For: 192.0.2.7, 198.51.100.1')"
check "the proxy without the header: 403" 403 "$(post 6)"
stop

grep -v '^#' "$src/dist/pipedrive-ip-ranges.txt" | grep -q . && shipped=ranges || shipped=empty
if [ "$shipped" = empty ]; then
  start --allow-from "$src/dist/pipedrive-ip-ranges.txt"
  rc=$?
  [ -n "$server" ] && wait "$server" 2>/dev/null
  status=$?
  server=""
  check "an allowlist with no range is refused at start" "1 2" "$rc $status"
  grep -q 'no address range given' "$tmp/serve.err" && { pass=$((pass + 1)); echo "ok - and says why"; } ||
    { fail=$((fail + 1)); echo "FAIL - no reason: $(cat "$tmp/serve.err")"; }
else
  start --allow-from "$src/dist/pipedrive-ip-ranges.txt" && { pass=$((pass + 1)); echo "ok - the shipped list loads"; stop; } ||
    { fail=$((fail + 1)); echo "FAIL - the shipped list does not load"; }
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
