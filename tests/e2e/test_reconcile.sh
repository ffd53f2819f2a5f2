#!/bin/sh
# pdwebhook reconcile end to end, against pipedrive_data_standin: a local STAND-IN for the
# parts of Pipedrive's data API reconciliation reads (not Pipedrive), on loopback.
# Covers: paging (v2 cursors, recents and leads offsets), 429 + Retry-After, records inside
# and outside the window, a second run of the window (nothing new), a run killed in the
# middle and run again (the rest, nothing twice), a window overlapping real deliveries of
# a serve --spool (nothing twice), the reconciled events marked in --output and --exec.
# Usage: test_reconcile.sh PDWEBHOOK PIPEDRIVE_DATA_STANDIN
set -u
bin=$1
standin=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pdw-reconcile.XXXXXX") || exit 1
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pass=0
fail=0
check() { # check WHAT GOT WANT
    if [ "$2" = "$3" ]; then
        pass=$((pass + 1)); echo "ok - $1"
    else
        fail=$((fail + 1)); echo "FAIL: $1: got '$2', want '$3'"
    fi
}
lines() { if [ -f "$1" ]; then wc -l < "$1" | tr -d ' '; else echo 0; fi; }
count() { n=$(grep -c -- "$1" "$2" 2>/dev/null); echo "${n:-0}"; }

# start NAME COMMAND...: background, wait for "listening on http://127.0.0.1:PORT/"
start() {
    name=$1; shift
    "$@" >"$tmp/$name.log" 2>"$tmp/$name.err" &
    pid=$!
    pids="$pids $pid"
    i=0
    url=
    while [ $i -lt 100 ]; do
        url=$(sed -n '1s|^listening on \(http://127\.0\.0\.1:[0-9][0-9]*/\)$|\1|p' "$tmp/$name.log")
        [ -n "$url" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    echo "FAIL: $name did not start:"; sed 's/^/#   /' "$tmp/$name.err"
    exit 1
}

TOKEN=e2e-reconcile-token-0123456789
unset PIPEDRIVE_OAUTH_TOKEN PIPEDRIVE_BASE_URL
export PIPEDRIVE_API_TOKEN="$TOKEN"
FROM=2026-01-01T10:00:00Z
TO=2026-01-01T11:00:00Z

# Inside the window: 4 deals (one added in it), 2 persons, 1 organization, 1 activity,
# 1 product, 2 leads, 2 notes, 1 pipeline, 1 stage, 1 user = 16 records. Outside: one
# deal before, one deal at the end (exclusive), one note before, one lead before.
cat > "$tmp/records.json" <<'JSON'
{"deal":[
 {"id":1,"title":"a","add_time":"2025-01-01T00:00:00Z","update_time":"2026-01-01T10:05:00Z"},
 {"id":2,"title":"b","add_time":"2026-01-01T10:10:00Z","update_time":"2026-01-01T10:10:00Z"},
 {"id":3,"title":"c","add_time":"2025-01-01T00:00:00Z","update_time":"2026-01-01T10:20:00Z"},
 {"id":4,"title":"d","add_time":"2025-01-01T00:00:00Z","update_time":"2026-01-01T10:59:59Z"},
 {"id":90,"title":"before","add_time":"2025-01-01T00:00:00Z","update_time":"2026-01-01T09:59:59Z"},
 {"id":91,"title":"after","add_time":"2025-01-01T00:00:00Z","update_time":"2026-01-01T11:00:00Z"}],
 "person":[
 {"id":10,"name":"p","add_time":"2025-01-01T00:00:00Z","update_time":"2026-01-01T10:01:00Z"},
 {"id":11,"name":"q","add_time":"2025-01-01T00:00:00Z","update_time":"2026-01-01T10:02:00Z"}],
 "organization":[{"id":20,"name":"o","add_time":"2025-01-01T00:00:00Z","update_time":"2026-01-01T10:03:00Z"}],
 "activity":[{"id":30,"subject":"s","add_time":"2025-01-01T00:00:00Z","update_time":"2026-01-01T10:04:00Z"}],
 "product":[{"id":40,"name":"w","add_time":"2025-01-01T00:00:00Z","update_time":"2026-01-01T10:06:00Z"}],
 "lead":[
 {"id":"adf21080-0e10-11eb-879b-05d71fb426ec","title":"l1","add_time":"2025-01-01T00:00:00.000Z","update_time":"2026-01-01T10:07:00.000Z"},
 {"id":"bdf21080-0e10-11eb-879b-05d71fb426ec","title":"l2","add_time":"2025-01-01T00:00:00.000Z","update_time":"2026-01-01T10:08:00.000Z"},
 {"id":"cdf21080-0e10-11eb-879b-05d71fb426ec","title":"old","add_time":"2025-01-01T00:00:00.000Z","update_time":"2025-06-01T00:00:00.000Z"}],
 "note":[
 {"id":50,"content":"n1","add_time":"2025-01-01 00:00:00","update_time":"2026-01-01 10:09:00"},
 {"id":51,"content":"n2","add_time":"2025-01-01 00:00:00","update_time":"2026-01-01 10:11:00"},
 {"id":59,"content":"before","add_time":"2025-01-01 00:00:00","update_time":"2026-01-01 09:00:00"}],
 "pipeline":[{"id":60,"name":"P","add_time":"2019-01-01 00:00:00","update_time":"2026-01-01 10:12:00"}],
 "stage":[{"id":70,"name":"S","add_time":"2019-01-01 00:00:00","update_time":"2026-01-01 10:13:00","active_flag":false}],
 "user":[{"id":80,"name":"U","created":"2019-01-01 00:00:00","modified":"2026-01-01 10:14:00"}]
}
JSON
WANT=16

# pages of 2, every 5th request answered 429 with Retry-After: 1
start standin "$standin" --records "$tmp/records.json" --token "$TOKEN" --page 2 \
    --throttle-every 5 --retry-after 1
BASE="${url}v1"

# ---- 1. a window into --output -------------------------------------------------------
"$bin" reconcile --from $FROM --to $TO --base-url "$BASE" --output "$tmp/out.jsonl" \
    >"$tmp/r1.out" 2>"$tmp/r1.err"
check "reconcile exits 0" "$?" 0
check "every changed record in the window written once" "$(lines "$tmp/out.jsonl")" $WANT
check "each marked reconciled" "$(count '"reconciled":true' "$tmp/out.jsonl")" $WANT
check "nothing from before the window" "$(count '"title":"before"\|"content":"before"\|"title":"old"' "$tmp/out.jsonl")" 0
check "nothing from the window's end on" "$(count '"title":"after"' "$tmp/out.jsonl")" 0
check "a deal added in the window is a create" "$(count '"event":"create.deal"' "$tmp/out.jsonl")" 1
check "the other deals are changes" "$(count '"event":"change.deal"' "$tmp/out.jsonl")" 3
check "a deactivated stage is a delete" "$(count '"event":"delete.stage"' "$tmp/out.jsonl")" 1
check "leads by their UUID" "$(count '"entity_id":"adf21080-0e10-11eb-879b-05d71fb426ec"' "$tmp/out.jsonl")" 1
check "v2 lists paged by cursor" "$(count 'GET /api/v2/deals?.*cursor=2' "$tmp/standin.log")" 1
check "recents paged by start" "$(count 'GET /v1/recents?.*start=2' "$tmp/standin.log")" 1
check "leads paged by start" "$(count 'GET /v1/leads?.*start=2' "$tmp/standin.log")" 1
throttled=$(count ' 429$' "$tmp/standin.log")
[ "$throttled" -ge 1 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: no 429 was played"; }
check "429s waited out (Retry-After)" "$(count "rate limit (429): waiting 1 s" "$tmp/r1.err")" "$throttled"
check "progress on stderr" "$(count 'page 2 read' "$tmp/r1.err")" 3
check "the token never printed" "$(cat "$tmp"/r1.* | grep -c "$TOKEN")" 0

# ---- 2. the same window again: nothing new --------------------------------------------
"$bin" reconcile --from $FROM --to $TO --base-url "$BASE" --output "$tmp/out.jsonl" --quiet \
    >"$tmp/r2.out" 2>"$tmp/r2.err"
check "second run exits 0" "$?" 0
check "second run writes nothing" "$(lines "$tmp/out.jsonl")" $WANT
check "second run counts duplicates" "$(count "0 handed on, $WANT already delivered" "$tmp/r2.err")" 1

# ---- 3. a run killed in the middle, then run again ------------------------------------
"$standin" --records "$tmp/records.json" --token "$TOKEN" --page 1 --throttle-every 3 \
    --retry-after 1 >"$tmp/slow.log" 2>"$tmp/slow.err" &
slow=$!
pids="$pids $slow"
k=0; while ! grep -q '^listening' "$tmp/slow.log" && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
SLOW=$(sed -n '1s|^listening on \(http://127\.0\.0\.1:[0-9]*/\)$|\1v1|p' "$tmp/slow.log")
"$bin" reconcile --from $FROM --to $TO --base-url "$SLOW" --output "$tmp/crash.jsonl" \
    >/dev/null 2>"$tmp/r3.err" &
r=$!
k=0; while [ "$(lines "$tmp/crash.jsonl")" -lt 1 ] && [ $k -lt 400 ]; do k=$((k + 1)); sleep 0.02; done
sleep 1
kill -KILL $r; wait $r 2>/dev/null
partial=$(lines "$tmp/crash.jsonl")
echo "killed after $partial of $WANT events"
[ "$partial" -lt $WANT ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: the run was not cut"; }
"$bin" reconcile --from $FROM --to $TO --base-url "$SLOW" --output "$tmp/crash.jsonl" --quiet \
    >/dev/null 2>"$tmp/r4.err"
check "the run after the kill exits 0" "$?" 0
check "after the kill and a rerun: every record once" "$(lines "$tmp/crash.jsonl")" $WANT
check "no event twice after the kill" "$(sed -n 's/.*"delivery_key":"\([^"]*\)".*/\1/p' "$tmp/crash.jsonl" | sort | uniq -d | wc -l | tr -d ' ')" 0

# ---- 4. a window overlapping real deliveries, through serve's spool -------------------
"$bin" serve --listen 127.0.0.1:0 --insecure-no-auth --spool "$tmp/spool" \
    --output "$tmp/serve.jsonl" --exec "printenv PDWEBHOOK_RECONCILED >> $tmp/exec.env; cat > /dev/null" \
    >"$tmp/serve.log" 2>"$tmp/serve.err" &
srv=$!
k=0; while ! grep -q '^listening' "$tmp/serve.log" && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
SRV=$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*/\).*|\1|p' "$tmp/serve.log")
# deal 3 at its 10:20 state and person 10 at 10:01 were delivered (v2 and v1)
d3='{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"3","id":"e2e-d3","attempt":1,"timestamp":"2026-01-01T10:20:00.120Z","webhook_id":"1"},"data":{"id":3,"title":"c","update_time":"2026-01-01T10:20:00Z"},"previous":{"title":"x"}}'
p10='{"v":1,"event":"updated.person","retry":0,"meta":{"v":1,"action":"updated","object":"person","id":10,"timestamp":1767261660,"webhook_id":"2"},"current":{"id":10,"name":"p","update_time":"2026-01-01 10:01:00"},"previous":{"id":10,"name":"o","update_time":"2025-01-01 00:00:00"}}'
for b in "$d3" "$p10"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$b" "${SRV}hook")
    check "a delivery accepted" "$code" 200
done
k=0; while [ "$(lines "$tmp/serve.jsonl")" -lt 2 ] && [ $k -lt 200 ]; do k=$((k + 1)); sleep 0.02; done
kill -TERM $srv; wait $srv
"$bin" reconcile --from $FROM --to $TO --base-url "$BASE" --spool "$tmp/spool" --quiet \
    >/dev/null 2>"$tmp/r5.err"
check "reconcile into the stopped serve's spool exits 0" "$?" 0
check "the two delivered states are duplicates" "$(count "$((WANT - 2)) handed on, 2 already delivered" "$tmp/r5.err")" 1
"$bin" reconcile --from $FROM --to $TO --base-url "$BASE" --spool "$tmp/spool" --quiet \
    >/dev/null 2>"$tmp/r6.err"
check "a second run into the spool hands nothing on" "$(count "0 handed on, $WANT already delivered" "$tmp/r6.err")" 1
"$bin" serve --listen 127.0.0.1:0 --insecure-no-auth --spool "$tmp/spool" \
    --output "$tmp/serve.jsonl" --exec "printenv PDWEBHOOK_RECONCILED >> $tmp/exec.env; cat > /dev/null" \
    >"$tmp/serve2.log" 2>"$tmp/serve2.err" &
srv=$!
pids="$pids $srv"
k=0; while [ "$(lines "$tmp/serve.jsonl")" -lt $WANT ] && [ $k -lt 400 ]; do k=$((k + 1)); sleep 0.02; done
sleep 0.2
kill -TERM $srv; wait $srv
check "serve's worker handed the reconciled events to --output" "$(count '"reconciled":true' "$tmp/serve.jsonl")" $((WANT - 2))
check "the delivered ones once, as deliveries" "$(lines "$tmp/serve.jsonl")" $WANT
check "no entity's state twice" "$(count '"entity_id":"3"' "$tmp/serve.jsonl")" 1
check "--exec sees PDWEBHOOK_RECONCILED=1" "$(count '^1$' "$tmp/exec.env")" $((WANT - 2))

# ---- usage ------------------------------------------------------------------------------
"$bin" reconcile --from $FROM --base-url "$BASE" >/dev/null 2>&1
check "--spool or --output required" "$?" 2
"$bin" reconcile --from yesterday --output "$tmp/x" --base-url "$BASE" >/dev/null 2>&1
check "a bad time is a usage error" "$?" 2
"$bin" reconcile --from $FROM --objects deal,bogus --output "$tmp/x" --base-url "$BASE" >/dev/null 2>&1
check "an unknown object is a usage error" "$?" 2
PIPEDRIVE_API_TOKEN=wrong "$bin" reconcile --from $FROM --to $TO --objects deal --output "$tmp/x" \
    --base-url "$BASE" >/dev/null 2>"$tmp/r7.err"
check "a wrong token fails" "$?" 1
check "and says 401" "$(count 'HTTP 401' "$tmp/r7.err")" 1

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
