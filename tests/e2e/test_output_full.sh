#!/bin/sh
# --output on a disk that fills up and frees again (a 48 KiB tmpfs, grown to 4 MiB later):
# no line of the file is ever torn or glued to another, the failures are logged and shown
# in /healthz, and once there is room every accepted event is in the file exactly once.
# A deleted --output file is noticed and written again at its path.
# Needs root for the tmpfs mount (CI runs as root); otherwise it says SKIP and exits 77.
# Usage: test_output_full.sh PDWEBHOOK
set -u
bin=$1
tmp=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
  umount "$tmp/out" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; }

mkdir -p "$tmp/out"
if ! mount -t tmpfs -o size=48k,mode=0700 tmpfs "$tmp/out" 2>/dev/null; then
  echo "SKIP: cannot mount a tmpfs here (needs root)"
  exit 77
fi

"$bin" serve --listen 127.0.0.1:0 --user u --password p --spool "$tmp/spool" \
  --output "$tmp/out/events.jsonl" > "$tmp/serve.out" 2> "$tmp/serve.err" &
server=$!
k=0
while ! grep -q '^listening' "$tmp/serve.out" 2>/dev/null && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
url=$(sed -n 's|^listening on \(http://127.0.0.1:[0-9]*/\).*|\1|p' "$tmp/serve.out")
[ -n "$url" ] || { cat "$tmp/serve.err"; bad "serve did not start"; echo "$pass passed, $fail failed"; exit 1; }

# 40 events of about 3 KB each: about 120 KB of lines for a 48 KiB file system
pad=$(head -c 2800 /dev/zero | tr '\0' 'x')
N=40
i=0
accepted=0
while [ $i -lt $N ]; do
  printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"%d","id":"full-%03d","timestamp":"2026-12-06T10:00:00.000Z","webhook_id":"9","attempt":1},"data":{"id":%d,"note":"%s"},"previous":{"note":"y"}}' $i $i $i "$pad" > "$tmp/body.json"
  code=$(curl -s -o /dev/null -w '%{http_code}' -u u:p -H 'Content-Type: application/json' \
         --data-binary "@$tmp/body.json" "${url}hook")
  [ "$code" = 200 ] && accepted=$((accepted + 1))
  i=$((i + 1))
done
[ "$accepted" = "$N" ] && ok "all $N deliveries accepted (the spool is on another disk)" ||
  bad "accepted $accepted of $N"

# the output fills: failures are logged and shown in /healthz
k=0
while ! grep -q 'cannot write event' "$tmp/serve.err" && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.1; done
grep -q 'cannot write event.*No space left on device' "$tmp/serve.err" && ok "the failure is logged" ||
  bad "no 'cannot write event' line in the log"
health=$(curl -s "${url}healthz")
echo "$health" | grep -q '"output":{[^}]*"write_errors":[1-9]' && ok "/healthz counts the write errors" ||
  bad "/healthz: $health"
echo "$health" | grep -q '"status":"output failing' && ok "/healthz status says the output fails" ||
  bad "/healthz status: $health"

# every line written so far is whole JSON: nothing half-written stays in the file
check_lines() {
  torn=0
  while IFS= read -r line; do
    printf '%s' "$line" | python3 -c 'import json,sys; json.loads(sys.stdin.read())' 2>/dev/null ||
      torn=$((torn + 1))
  done < "$tmp/out/events.jsonl"
  echo $torn
}
[ "$(check_lines)" = 0 ] && ok "no torn line while the disk is full" || bad "torn lines while full"
[ "$(tail -c 1 "$tmp/out/events.jsonl" | od -An -c | tr -d ' ')" = '\n' ] &&
  ok "the file ends with a whole line" || bad "the file ends inside a line"

# room again: the worker's retries write the rest
mount -o remount,size=4m "$tmp/out"
k=0
while [ "$(grep -c . "$tmp/out/events.jsonl")" -lt $N ] && [ $k -lt 300 ]; do k=$((k + 1)); sleep 0.2; done
[ "$(grep -c . "$tmp/out/events.jsonl")" = $N ] && ok "all $N events written once there is room" ||
  bad "$(grep -c . "$tmp/out/events.jsonl") lines, want $N"
[ "$(check_lines)" = 0 ] && ok "every line is whole JSON" || bad "torn lines after recovery"
dups=$(sed -n 's/.*"spool_id":\([0-9]*\).*/\1/p' "$tmp/out/events.jsonl" | sort | uniq -d | wc -l)
[ "$dups" = 0 ] && ok "no event twice" || bad "$dups events written twice"
k=0 # "failing" stays 5 s after the last failure
while ! curl -s "${url}healthz" | grep -q '"failing":false' && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.1; done
curl -s "${url}healthz" | grep -q '"failing":false' && ok "/healthz: output no longer failing" ||
  bad "/healthz still failing"
[ "$(stat -c %a "$tmp/out/events.jsonl")" = 600 ] && ok "--output is created 0600" ||
  bad "--output mode $(stat -c %a "$tmp/out/events.jsonl")"

# a deleted --output is noticed at the next write, and a new file is written at its path
rm "$tmp/out/events.jsonl"
printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"1","id":"after-rm","timestamp":"2026-12-06T10:00:00.000Z","webhook_id":"9","attempt":1},"data":{"id":1},"previous":{}}' |
  curl -s -o /dev/null -u u:p -H 'Content-Type: application/json' --data-binary @- "${url}hook"
k=0
while [ ! -s "$tmp/out/events.jsonl" ] && [ $k -lt 50 ]; do k=$((k + 1)); sleep 0.1; done
[ "$(grep -c 'after-rm' "$tmp/out/events.jsonl" 2>/dev/null)" = 1 ] &&
  ok "a deleted --output is written again at its path" || bad "no new --output after deletion"
grep -q 'was deleted: writing to a new file there' "$tmp/serve.err" && ok "and that is logged" ||
  bad "no log line for the deleted --output"

kill -TERM "$server"; wait "$server"; server=""
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
