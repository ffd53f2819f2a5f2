#!/bin/sh
# pdwebhook serve --spool answers 2xx only once a delivery is durable, with requests
# suspended while the committer thread flushes (group commit without a thread per request):
#  1. 64 concurrent deliveries, the server SIGKILLed as soon as they are answered: after a
#     restart on the same journal, every acknowledged delivery is there (its retry is a
#     duplicate, rebuilt from the journal), and the others are taken as new;
#  2. a flush that fails after the append was accepted (the journal file cannot grow:
#     RLIMIT_FSIZE, SIGXFSZ ignored) answers 503 + Retry-After, and the same delivery sent
#     again once there is room is accepted as new, not acknowledged as a duplicate (its
#     dedup claim was released);
#  3. SIGTERM while deliveries are in flight: exit 0, and every acknowledged delivery is
#     in the journal.
#  4. reused segment files (a small --spool-max and --spool-retain 0 make handled segments
#     rotate and go, and the spool reuses a deleted file in place): SIGKILL under load
#     with a reused file in the journal, restart: every acknowledged delivery reaches
#     --output and --exec, none twice.
# Usage: test_commit.sh PDWEBHOOK
set -u
bin=$1
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
pass=0
fail=0
check() { if [ "$2" = "$3" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1: got '$2', want '$3'"; fi; }

# start [WRAPPER...] -- ARGS...: serve on a free port (kept across restarts in $port)
start() {
  wrap=""
  while [ "$1" != "--" ]; do wrap="$wrap $1"; shift; done
  shift
  rm -f "$tmp/out"
  # shellcheck disable=SC2086
  $wrap "$bin" serve --listen "127.0.0.1:${port:-0}" --user u --password p "$@" \
    > "$tmp/out" 2>> "$tmp/err" &
  pid=$!
  k=0
  while ! grep -q '^listening' "$tmp/out" 2>/dev/null && [ $k -lt 250 ]; do k=$((k + 1)); sleep 0.02; done
  url=$(sed -n 's/^listening on //p' "$tmp/out")
  port=$(echo "$url" | sed 's|.*:\([0-9]*\)/.*|\1|')
}
health() { curl -s "${url}healthz"; }
num() { health | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" | head -n 1; }
body() { # body TAG N [PAD]: a distinct v2 event, padded with PAD bytes of data
  pad=""
  [ -n "${3:-}" ] && pad=$(head -c "$3" /dev/zero | tr '\0' 'x')
  printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"%d","id":"%s-%d","webhook_id":"9","attempt":1,"timestamp":"2026-11-27T10:00:00.000Z"},"data":{"stage_id":2,"pad":"%s"},"previous":{"stage_id":1}}' $(($2 % 7)) "$1" "$2" "$pad"
}
post() { # post FILE -> status; headers in $tmp/h
  curl -s -o /dev/null -D "$tmp/h" -w '%{http_code}' -u u:p -H 'Content-Type: application/json' \
    --data-binary @"$1" "$url"
}
# blast TAG N: post N distinct events at once; status of event i in $tmp/st.i
blast() {
  i=0
  while [ $i -lt "$2" ]; do
    body "$1" $i > "$tmp/b.$i"
    # shellcheck disable=SC2005 # echo adds the newline that the counts below need
    (echo "$(post "$tmp/b.$i")" > "$tmp/st.$i") &
    i=$((i + 1))
  done
}

# 1. acknowledged = durable, under a SIGKILL right after the answers (a slow handler: no
#    handled markers, so nothing but the requests' own flushes writes the journal)
start -- --spool "$tmp/s1" --exec 'sleep 2'
blast k 64
wait_n() { # until N status files are written (bounded)
  k=0
  while [ "$(cat "$tmp"/st.* 2>/dev/null | grep -c .)" -lt "$1" ] && [ $k -lt 500 ]; do k=$((k + 1)); sleep 0.01; done
}
wait_n 64
kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=""
acked=$(cat "$tmp"/st.* | grep -c '^200$')
check "64 concurrent deliveries answered 200" "$acked" 64
start -- --spool "$tmp/s1"
dups=0
i=0
while [ $i -lt 64 ]; do
  [ "$(cat "$tmp/st.$i")" = 200 ] && [ "$(post "$tmp/b.$i")" = 200 ] && dups=$((dups + 1))
  i=$((i + 1))
done
check "after SIGKILL and restart, every acknowledged delivery is in the journal" "$(num duplicates)" "$acked"
check "answered as duplicates" "$dups" "$acked"
kill -TERM "$pid"; wait "$pid"; pid=""
rm -f "$tmp"/st.* "$tmp"/b.*

# 2. a failed flush: 503 + Retry-After, and the retry is taken as new
if command -v prlimit >/dev/null 2>&1; then
  # journal segments may not grow past 400 kB; --spool-max 1 MB lets a 300 kB delivery
  # through the size check (two fit), so the second one fails in the write, after its
  # append was accepted; once the first is handled, its segment (over a quarter of
  # --spool-max) is rotated and deleted, and the second fits again
  body big 1 300000 > "$tmp/big1.json"
  body big 2 300000 > "$tmp/big2.json"
  printf '#!/bin/sh\ntrap "" XFSZ\nexec prlimit --fsize=400000 "$@"\n' > "$tmp/nofsz.sh"
  # the handler holds the first delivery for a second: the second lands in its segment
  start sh "$tmp/nofsz.sh" -- --spool "$tmp/s2" --spool-max 1000000 --spool-retain 0 \
    --exec 'sleep 1'
  check "first big delivery" "$(post "$tmp/big1.json")" 200
  check "second big delivery: the flush fails" "$(post "$tmp/big2.json")" 503
  grep -qi '^Retry-After: 3' "$tmp/h" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: 503 without Retry-After"; cat "$tmp/h"; }
  health | grep -q '"PDW_EIO":1' && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: PDW_EIO not counted: $(health)"; }
  k=0
  while [ "$(num segments)" != 1 ] || [ "$(num bytes)" != 0 ]; do
    k=$((k + 1)); [ $k -lt 250 ] || break; sleep 0.02
  done
  check "the handled segment was deleted" "$(num bytes)" 0
  check "the same delivery again: accepted" "$(post "$tmp/big2.json")" 200
  check "not a duplicate" "$(num duplicates)" 0
  check "accepted count" "$(num accepted)" 2
  kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""
  check "clean stop" "$rc" 0
else
  echo "SKIP: prlimit not installed, the failed-flush path is not tested"
fi

# 3. SIGTERM with deliveries in flight: exit 0; what was acknowledged is in the journal
port=""
start -- --spool "$tmp/s3"
blast t 48
sleep 0.05
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""
check "exit status after SIGTERM under load" "$rc" 0
wait # the curls
acked=$(cat "$tmp"/st.* | grep -c '^200$')
start -- --spool "$tmp/s3"
i=0
dups=0
while [ $i -lt 48 ]; do
  if [ "$(cat "$tmp/st.$i")" = 200 ]; then
    post "$tmp/b.$i" > /dev/null
    dups=$((dups + 1))
  fi
  i=$((i + 1))
done
check "acknowledged before SIGTERM, found after restart ($acked)" "$(num duplicates)" "$dups"
kill -TERM "$pid"; wait "$pid"; pid=""
rm -f "$tmp"/st.* "$tmp"/b.*

# 4. reused segment files: --spool-max 64 kB and --spool-retain 0 rotate a wholly handled
#    segment every few dozen deliveries and delete it, and a deleted segment file is kept
#    (spare.pdwj) and reused, written in place over its old records. SIGKILL under load
#    once a reused file is in the journal, restart on the same journal: every
#    acknowledged delivery reaches --output and --exec, and nothing twice.
port=""
start -- --spool "$tmp/s4" --spool-max 65536 --spool-retain 0 --output "$tmp/out4.jsonl" \
  --exec "cat >> $tmp/exec4.jsonl"
send_range() { # send_range FROM TO: one after the other; status of event i in $tmp/st.i
  i=$1
  while [ "$i" -lt "$2" ]; do
    body r "$i" 400 > "$tmp/b.$i"
    # shellcheck disable=SC2005
    echo "$(post "$tmp/b.$i")" > "$tmp/st.$i"
    i=$((i + 1))
  done
}
senders=""
for r in 0 1 2 3; do
  send_range $((r * 150)) $((r * 150 + 150)) &
  senders="$senders $!"
done
# wait for a segment file that was the spare (same inode) to be the active segment
reused=""
spare_ino=""
k=0
while [ -z "$reused" ] && [ $k -lt 1000 ]; do
  if [ -z "$spare_ino" ] && [ -f "$tmp/s4/spare.pdwj" ]; then
    spare_ino=$(stat -c %i "$tmp/s4/spare.pdwj" 2>/dev/null)
  fi
  if [ -n "$spare_ino" ]; then
    for f in "$tmp"/s4/journal-*.pdwj; do
      [ "$(stat -c %i "$f" 2>/dev/null)" = "$spare_ino" ] && reused=$f
    done
  fi
  k=$((k + 1)); sleep 0.01
done
if [ -n "$reused" ]; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL: no segment file was reused: $(ls -i "$tmp/s4")"
fi
sleep 0.2 # deliveries into the reused file
kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=""
for s in $senders; do wait "$s"; done
acked=$(cat "$tmp"/st.* | grep -c '^200$')
echo "killed with a reused segment file ($(basename "${reused:-none}")): $acked acknowledged"
start -- --spool "$tmp/s4" --spool-max 65536 --spool-retain 0 --output "$tmp/out4.jsonl" \
  --exec "cat >> $tmp/exec4.jsonl"
k=0
while ! health | grep -q '"queued":0' || [ "$(num pending)" != 0 ]; do
  k=$((k + 1)); [ $k -lt 500 ] || break; sleep 0.02
done
kill -TERM "$pid"; wait "$pid"; pid=""
ids() { grep -o '"id":"r-[0-9]*"' "$1" | sort; }
ids "$tmp/out4.jsonl" > "$tmp/out4.ids"
ids "$tmp/exec4.jsonl" > "$tmp/exec4.ids"
check "no event twice in --output" "$(uniq -d "$tmp/out4.ids" | wc -l)" 0
check "no event twice through --exec" "$(uniq -d "$tmp/exec4.ids" | wc -l)" 0
missing=0
for f in "$tmp"/st.*; do
  [ "$(cat "$f")" = 200 ] || continue
  id="\"id\":\"r-${f##*.}\""
  grep -qx "$id" "$tmp/out4.ids" || { missing=$((missing + 1)); echo "acknowledged, not in --output: $id"; }
  grep -qx "$id" "$tmp/exec4.ids" || { missing=$((missing + 1)); echo "acknowledged, not executed: $id"; }
done
check "acknowledged deliveries lost with reused segment files" "$missing" 0
if [ "$acked" -gt 100 ]; then
  pass=$((pass + 1))
else
  fail=$((fail + 1)); echo "FAIL: too few acknowledged ($acked)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
