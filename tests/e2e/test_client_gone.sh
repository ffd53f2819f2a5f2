#!/bin/sh
# Deliveries whose client went away (a reset) before the answer: those that were accepted
# are handed on, and each answer that could not be sent is logged and counted in /healthz
# ("answers_lost"). (An answer the kernel took before the reset counts as sent.)
# Usage: test_client_gone.sh PDWEBHOOK
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
  --output "$tmp/out.jsonl" > "$tmp/serve.out" 2> "$tmp/serve.err" &
server=$!
k=0
while ! grep -q '^listening' "$tmp/serve.out" 2>/dev/null && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out")
timeout 60 python3 - "$port" <<'PY'
import base64, socket, struct, sys, time
port = int(sys.argv[1])
auth = base64.b64encode(b"u:p")
for i in range(20):
    body = ('{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"%d",'
            '"id":"g-%d","timestamp":"2026-12-06T10:00:00.000Z","webhook_id":"3",'
            '"attempt":1},"data":{"id":%d},"previous":{}}' % (i, i, i)).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
    s.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth +
              b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
              + body)
    s.close()
    time.sleep(0.1)
PY
sleep 1
out=$(grep -c . "$tmp/out.jsonl" 2>/dev/null || echo 0)
lost=$(curl -s "http://127.0.0.1:$port/healthz" | sed -n 's/.*"answers_lost":\([0-9]*\).*/\1/p')
logged=$(grep -c 'client went away before its answer' "$tmp/serve.err")
kill -TERM "$server"; wait "$server"; server=""
pass=0; fail=0
if [ "$out" -ge 1 ]; then pass=$((pass + 1)); echo "ok - $out accepted deliveries handed on"; else fail=$((fail + 1)); echo "FAIL - none accepted (cannot check)"; fi
if [ "${lost:-0}" -ge 1 ] && [ "$lost" -le "$out" ]; then pass=$((pass + 1)); echo "ok - $lost lost answers counted"; else fail=$((fail + 1)); echo "FAIL - answers_lost ${lost:-none}, handed on $out"; fi
if [ "$logged" = "$lost" ]; then pass=$((pass + 1)); echo "ok - each logged"; else fail=$((fail + 1)); echo "FAIL - $logged log lines for $lost"; fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
