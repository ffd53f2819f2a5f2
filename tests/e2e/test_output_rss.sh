#!/bin/sh
# serve --output remembers only the ids it may still see again (events written but not yet
# finished), not every id it ever wrote: after 200,000 distinct deliveries through --spool
# and --output it holds none (/healthz output.unfinished = 0; it used to hold all 200,000,
# 16-32 bytes each, forever), its RSS stays under 32 MB (16 MB here) and the file has every
# event once.
# Usage: test_output_rss.sh PDWEBHOOK
set -u
bin=$1
tmp=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
N=${OUTPUT_RSS_EVENTS:-200000}
LIMIT_KB=$((32 * 1024))
"$bin" serve --listen 127.0.0.1:0 --user u --password p --spool "$tmp/spool" \
  --spool-retain 0 --output "$tmp/out.jsonl" > "$tmp/serve.out" 2> "$tmp/serve.err" &
server=$!
k=0
while [ $k -lt 100 ]; do
  port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out" 2>/dev/null)
  [ -n "$port" ] && break
  k=$((k + 1)); sleep 0.05
done
timeout 600 python3 - "$port" "$N" <<'PY'
import base64, http.client, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
auth = "Basic " + base64.b64encode(b"u:p").decode()
THREADS = 16
bad = []
def run(k):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(k, n, THREADS):
        body = ('{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"%d",'
                '"id":"r-%d","timestamp":"2026-12-06T10:00:00.000Z","webhook_id":"3",'
                '"attempt":1},"data":{"id":%d},"previous":{}}' % (i % 997, i, i))
        c.request("POST", "/hook", body=body,
                  headers={"Content-Type": "application/json", "Authorization": auth})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            bad.append(r.status)
            return
ts = [threading.Thread(target=run, args=(k,)) for k in range(THREADS)]
for t in ts: t.start()
for t in ts: t.join()
sys.exit(1 if bad else 0)
PY
sent=$?
k=0
while [ "$(grep -c . "$tmp/out.jsonl" 2>/dev/null || true)" -lt "$N" ] && [ $k -lt 600 ]; do k=$((k + 1)); sleep 0.1; done
rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$server/status")
k=0 # the last events' markers: unfinished drops to 0 once each is handed on
while ! curl -s "http://127.0.0.1:$port/healthz" | grep -q '"unfinished":0' && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.1; done
unfinished=$(curl -s "http://127.0.0.1:$port/healthz" | sed -n 's/.*"unfinished":\([0-9]*\).*/\1/p')
lines=$(grep -c . "$tmp/out.jsonl")
dups=$(sed -n 's/.*"spool_id":\([0-9]*\).*/\1/p' "$tmp/out.jsonl" | sort | uniq -d | wc -l)
kill -TERM "$server"; wait "$server"; server=""
pass=0; fail=0
t() { if [ "$2" = yes ]; then pass=$((pass + 1)); echo "ok - $1"; else fail=$((fail + 1)); echo "FAIL - $1"; fi; }
t "$N deliveries answered 200" "$([ "$sent" = 0 ] && echo yes)"
t "all $N in --output ($lines)" "$([ "$lines" = "$N" ] && echo yes)"
t "none twice" "$([ "$dups" = 0 ] && echo yes)"
t "the --output sink remembers no finished event (unfinished: ${unfinished:-none})" "$([ "${unfinished:-x}" = 0 ] && echo yes)"
t "RSS $((rss / 1024)) MB after $N deliveries (bound 32 MB)" "$([ "${rss:-999999}" -lt "$LIMIT_KB" ] && echo yes)"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
