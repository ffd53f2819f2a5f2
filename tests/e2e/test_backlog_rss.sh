#!/bin/sh
# A backlog does not live in memory: 600 deliveries of 1 MB accepted with --spool behind a
# handler that does not move keep serve's RSS under 100 MB (it grew to 620 MB when the
# worker's queue copied every body), and so does the recovery of the same backlog after a
# kill -9 (618 MB before). The worker holds at most its 16 MiB budget of bodies; the rest
# are queued by id and read back from the journal when their turn comes.
# Usage: test_backlog_rss.sh PDWEBHOOK
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
N=${BACKLOG_EVENTS:-600}
# the stuck handler: a sleep of an hour with a duration of its own, so that the orphans a
# kill -9 leaves can be found (only a command line that starts with it: not serve's)
hold="3600.$$"
LIMIT_KB=$((100 * 1024))
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

start() {
  # a handler that never finishes within the test (its timeout is an hour)
  "$bin" serve --listen "127.0.0.1:${port:-0}" --user u --password p --spool "$tmp/spool" \
    --max-body 2000000 --exec "sleep $hold" --exec-timeout 3600 --workers 2 \
    > "$tmp/serve.out" 2>> "$tmp/serve.err" &
  server=$!
  k=0
  rm -f "$tmp/up"
  while [ $k -lt 200 ]; do
    p=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/serve.out" 2>/dev/null)
    [ -n "$p" ] && { port=$p; return 0; }
    k=$((k + 1)); sleep 0.05
  done
  cat "$tmp/serve.err"
  return 1
}
start || { echo "0 passed, 1 failed"; exit 1; }

# one 1 MB body, made unique per delivery by its id
pad=$(head -c 1000000 /dev/zero | tr '\0' 'x')
printf '%s' "$pad" > "$tmp/pad"
i=0
accepted=0
most=0
while [ $i -lt $N ]; do
  { printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"%d","id":"big-%04d","timestamp":"2026-12-06T10:00:00.000Z","webhook_id":"3","attempt":1},"data":{"id":%d,"note":"' $((i % 50)) $i $((i % 50)); cat "$tmp/pad"; printf '"},"previous":{}}'; } > "$tmp/body.json"
  code=$(curl -s -o /dev/null -w '%{http_code}' -u u:p -H 'Content-Type: application/json' \
         --data-binary "@$tmp/body.json" "http://127.0.0.1:$port/hook")
  [ "$code" = 200 ] && accepted=$((accepted + 1))
  if [ $((i % 50)) = 0 ]; then r=$(rss_kb "$server"); [ "${r:-0}" -gt "$most" ] && most=$r; fi
  i=$((i + 1))
done
r=$(rss_kb "$server"); [ "${r:-0}" -gt "$most" ] && most=$r
[ "$accepted" = "$N" ] && ok "$N deliveries of 1 MB accepted" || bad "accepted $accepted of $N"
[ "$most" -lt "$LIMIT_KB" ] && ok "RSS at most $((most / 1024)) MB while $N wait (bound 100 MB)" ||
  bad "RSS reached $((most / 1024)) MB with $N pending"
pending=$(curl -s "http://127.0.0.1:$port/healthz" | sed -n 's/.*"pending":\([0-9]*\).*/\1/p')
[ "${pending:-0}" -ge $((N - 2)) ] && ok "they wait in the spool ($pending pending)" ||
  bad "pending $pending"

# kill -9 and recover the whole backlog
kill -KILL "$server"; wait "$server" 2>/dev/null
pkill -KILL -f "^sleep $hold" 2>/dev/null
start || { bad "restart"; echo "$pass passed, $fail failed"; exit 1; }
k=0
while ! grep -q 'recovered' "$tmp/serve.err" && [ $k -lt 200 ]; do k=$((k + 1)); sleep 0.1; done
sleep 1
r=$(rss_kb "$server")
grep -q "recovered $((N - 2))\|recovered $((N - 1))\|recovered $N " "$tmp/serve.err" &&
  ok "the backlog is recovered" || bad "no recovery line: $(grep recovered "$tmp/serve.err")"
[ "${r:-0}" -lt "$LIMIT_KB" ] && ok "RSS after recovering it: $((r / 1024)) MB (bound 100 MB)" ||
  bad "RSS after recovery $((r / 1024)) MB"
kill -KILL "$server"; wait "$server" 2>/dev/null; server=""
pkill -KILL -f "^sleep $hold" 2>/dev/null
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
