#!/bin/sh
# HTTP framing that cannot be trusted (RFC 9112 section 6.3) is answered 400 and the
# connection closed, so nothing smuggled behind it is served: both Content-Length and
# Transfer-Encoding, a malformed header name ("Content-Length :"), a transfer coding
# other than chunked. A chunked body over --max-body gets its 413 (not an EOF).
# Usage: test_framing.sh PDWEBHOOK
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
expect() { # CASE "STATUS CLOSED ANSWERS"
  got=$(sed -n "s/^$1 \([^ ]* [^ ]* [^ ]*\) .*/\1/p" "$tmp/probe.out")
  secs=$(sed -n "s/^$1 [^ ]* [^ ]* [^ ]* //p" "$tmp/probe.out")
  if [ "$got" = "$2" ] && [ "${secs%%.*}" -lt 2 ]; then pass=$((pass + 1)); echo "ok - $1: $got in ${secs}s"
  else fail=$((fail + 1)); echo "FAIL - $1: got '$got' in ${secs}s, want '$2' at once"; fi
}
"$bin" serve --listen 127.0.0.1:0 --user u --password p --spool "$tmp/spool" \
  --max-body 3000 > "$tmp/serve.out" 2> "$tmp/serve.err" &
server=$!
k=0
while ! grep -q '^listening' "$tmp/serve.out" 2>/dev/null && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out")
[ -n "$port" ] || { cat "$tmp/serve.err"; echo "0 passed, 1 failed"; exit 1; }
printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"1","id":"fr-1","timestamp":"2026-12-06T10:00:00.000Z","webhook_id":"5","attempt":1},"data":{"id":1},"previous":{}}' > "$tmp/body.json"
timeout 60 python3 "$here/framing.py" "$port" "$tmp/body.json" > "$tmp/probe.out" 2>&1
cat "$tmp/probe.out"
expect cl_te "400 closed 1"
expect cl_space "400 closed 1"
expect te_gzip "400 closed 1"
expect chunked_big "413 closed 1"
expect chunked_ok "200 closed 1"
grep -q 'both Content-Length and Transfer-Encoding; connection closed' "$tmp/serve.err" &&
  { pass=$((pass + 1)); echo "ok - the refusal is logged with its reason"; } ||
  { fail=$((fail + 1)); echo "FAIL - no log line for the refusal"; }
kill -TERM "$server"; wait "$server"; server=""
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
