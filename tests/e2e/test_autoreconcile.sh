#!/bin/sh
# serve --reconcile and serve --watch-subscriptions end to end, against
# pipedrive_data_standin: a local STAND-IN for the parts of Pipedrive's API they read (the
# data lists, and with --webhooks the webhook list), not Pipedrive; loopback only.
# Covers: (1) the receiver's own downtime across a restart, longer than a tiny
# --retry-horizon, reconciled by itself into --output, marked, nothing twice (a retry of
# one of the missed changes arrives after the restart, before the run); (2) a run killed
# with SIGKILL in the middle (a slow stand-in, one record a page): the next start resumes
# the window, every record once; (3) a webhook deleted at "Pipedrive" while serving:
# re-created from the plan with serve's credentials, a loud warning, its gap since its
# last successful delivery reconciled; (4) /healthz showing the runs and the watchdog.
# Usage: test_autoreconcile.sh PDWEBHOOK PIPEDRIVE_DATA_STANDIN
set -u
bin=$1
standin=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pdw-autorec.XXXXXX") || exit 1
pids=""
srv=""
cleanup() {
    [ -n "$srv" ] && kill -KILL "$srv" 2>/dev/null
    for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    [ -n "${KEEP:-}" ] && { echo "kept $tmp"; return; }
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
# wait_for SECONDS COMMAND...: until COMMAND succeeds (bounded); 1 if it never did
wait_for() {
    limit=$(($1 * 10)); shift
    k=0
    while ! "$@" >/dev/null 2>&1; do
        k=$((k + 1))
        [ $k -ge $limit ] && return 1
        sleep 0.1
    done
    return 0
}
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# start_standin NAME ARGS...: sets url
start_standin() {
    name=$1; shift
    "$standin" "$@" >"$tmp/$name.log" 2>"$tmp/$name.err" &
    pids="$pids $!"
    url=
    k=0
    while [ -z "$url" ] && [ $k -lt 100 ]; do
        url=$(sed -n '1s|^listening on \(http://127\.0\.0\.1:[0-9][0-9]*/\)$|\1|p' "$tmp/$name.log")
        k=$((k + 1)); sleep 0.05
    done
    [ -n "$url" ] || { echo "FAIL: $name did not start"; exit 1; }
}

# serve_start NAME ARGS...: serve in the background (srv, SRV = its URL)
serve_start() {
    name=$1; shift
    "$bin" serve --listen 127.0.0.1:0 --spool "$tmp/spool" --output "$tmp/out.jsonl" \
        "$@" >"$tmp/$name.log" 2>"$tmp/$name.err" &
    srv=$!
    SRV=
    k=0
    while [ -z "$SRV" ] && [ $k -lt 100 ]; do
        SRV=$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*/\).*|\1|p' "$tmp/$name.log" 2>/dev/null)
        kill -0 $srv 2>/dev/null || break
        k=$((k + 1)); sleep 0.05
    done
    [ -n "$SRV" ] || { echo "FAIL: serve $name did not start:"; sed 's/^/#   /' "$tmp/$name.err"; exit 1; }
}
serve_stop() { kill -TERM $srv; wait $srv; srv_status=$?; srv=""; }
health() { curl -s --max-time 5 "${SRV}healthz" > "$tmp/health.json"; }
health_has() { health; grep -q -- "$1" "$tmp/health.json"; }
out_has() { [ "$(count "$1" "$tmp/out.jsonl")" -ge "$2" ]; }

TOKEN=e2e-autoreconcile-token-0123456789
unset PIPEDRIVE_OAUTH_TOKEN PIPEDRIVE_BASE_URL PIPEDRIVE_API_TOKEN PDWEBHOOK_USER PDWEBHOOK_PASSWORD
export PIPEDRIVE_API_TOKEN="$TOKEN"
OLD=2025-01-01T00:00:00Z
deal() { printf '{"id":%s,"title":"d%s","add_time":"%s","update_time":"%s"}' "$1" "$1" "$OLD" "$2"; }
person() { printf '{"id":%s,"name":"p%s","add_time":"%s","update_time":"%s"}' "$1" "$1" "$OLD" "$2"; }
# records DEALS PERSONS: the stand-in's data (JSON array bodies)
records() { printf '{"deal":[%s],"person":[%s]}\n' "$1" "$2" > "$tmp/records.new" && mv "$tmp/records.new" "$tmp/records.json"; }
delivery() { # delivery WEBHOOK_ID DEAL_ID UPDATE_TIME: a v2 change.deal as Pipedrive sends it
    printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"%s","id":"e2e-%s-%s","attempt":2,"timestamp":"%s","webhook_id":"%s"},"data":{"id":%s,"title":"d%s","update_time":"%s"},"previous":{"title":"x"}}' \
        "$2" "$2" "$1" "$3" "$1" "$2" "$2" "$3"
}

records "$(deal 1 $OLD)" ""
echo '[]' > "$tmp/hooks.json"
start_standin api --records "$tmp/records.json" --token "$TOKEN" --page 2 --webhooks "$tmp/hooks.json"
BASE="${url}v1"
start_standin slow --records "$tmp/records.json" --token "$TOKEN" --page 1 --delay-ms 400
SLOW="${url}v1"
RECONCILE="--insecure-no-auth --reconcile --retry-horizon 2 --reconcile-objects deal,person"

# ---- 1. downtime across a restart -----------------------------------------------------
serve_start s1 $RECONCILE --base-url "$BASE"
check "first start: nothing to compare with" "$(count 'no earlier run' "$tmp/s1.err")" 1
wait_for 5 test -s "$tmp/spool/reconcile-state.json"
check "the state file is in the spool" "$([ -s "$tmp/spool/reconcile-state.json" ] && echo yes)" yes
health_has '"reconcile":{"enabled":true'
check "/healthz has reconcile" "$?" 0
sleep 1.2
serve_stop
check "serve --reconcile stops with 0" "$srv_status" 0
sleep 1
T1=$(now)
records "$(deal 1 $OLD),$(deal 2 $T1),$(deal 3 $T1),$(deal 4 $T1)" "$(person 10 $T1)"
sleep 3 # down for more than --retry-horizon 2
serve_start s2 $RECONCILE --base-url "$BASE"
check "the downtime is found" "$(count 'was down for' "$tmp/s2.err")" 1
# a retry of one missed change still arrives after the restart, before the run
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$(delivery 7 2 "$T1")" "${SRV}hook")
check "a late retry is accepted" "$code" 200
wait_for 20 health_has '"reason":"downtime"[^}]*"state":"done"'
check "the downtime run is done by itself" "$?" 0
wait_for 10 out_has '"reconciled":true' 3
check "the missed changes reached --output, marked reconciled" "$(count '"reconciled":true' "$tmp/out.jsonl")" 3
check "the retried one once, as a delivery" "$(count '"entity_id":"2"' "$tmp/out.jsonl")" 1
check "nothing from before the downtime" "$(count '"entity_id":"1"' "$tmp/out.jsonl")" 0
check "a person too" "$(count '"event":"change.person"' "$tmp/out.jsonl")" 1
check "4 lines in all" "$(lines "$tmp/out.jsonl")" 4
check "/healthz counts it: 3 handed on, 1 duplicate" \
    "$(grep -c '"reason":"downtime"[^}]*"handed":3,"duplicates":1' "$tmp/health.json")" 1
check "the token is never printed" "$(cat "$tmp"/s*.err "$tmp"/s*.log "$tmp/health.json" | grep -c "$TOKEN")" 0
serve_stop

# ---- 2. SIGKILL in the middle of a slow run, then a restart ---------------------------
sleep 1
T2=$(now)
d=""; i=20
while [ $i -lt 32 ]; do d="$d,$(deal $i "$T2")"; i=$((i + 1)); done
records "$(deal 1 $OLD),$(deal 2 $T1),$(deal 3 $T1),$(deal 4 $T1)$d" "$(person 10 $T1)"
sleep 3
serve_start s3 $RECONCILE --base-url "$SLOW"
wait_for 30 out_has '"reconciled":true' 5
kill -KILL $srv; wait $srv 2>/dev/null; srv=""
partial=$(($(count '"reconciled":true' "$tmp/out.jsonl") - 3))
echo "# killed after $partial of 12 records of the window"
check "killed in the middle of the run" "$([ "$partial" -ge 1 ] && [ "$partial" -lt 12 ] && echo yes)" yes
check "the state file says running" "$(grep -c '"state":"running"' "$tmp/spool/reconcile-state.json")" 1
serve_start s4 $RECONCILE --base-url "$BASE"
check "the interrupted run is resumed" "$(count 'interrupted by a crash' "$tmp/s4.err")" 1
wait_for 20 out_has '"reconciled":true' 15
wait_for 20 sh -c "! curl -s '${SRV}healthz' | grep -q '\"state\":\"\\(running\\|pending\\)\"'"
check "after the resume: every record of the window" "$(count '"reconciled":true' "$tmp/out.jsonl")" 15
dups=$(sed -n 's/.*"entity_id":"\([0-9]*\)".*/\1/p' "$tmp/out.jsonl" | sort | uniq -d | wc -l | tr -d ' ')
check "no record twice" "$dups" 0
health
check "/healthz: the resumed run done" "$(grep -c '"resumed":true[^}]*"state":"done"\|"state":"done"[^}]*"resumed":true' "$tmp/health.json")" 1
serve_stop

# ---- 3. a webhook deleted at Pipedrive: re-created, its gap reconciled ----------------
PUBLIC='https://hooks.example.test/pipedrive?token=url-secret-42'
cat > "$tmp/hooks.json" <<JSON
[{"id":7,"event_action":"change","event_object":"deal","subscription_url":"$PUBLIC",
  "version":"2.0","user_id":100,"is_active":1,"http_auth_user":"pipedrive",
  "http_auth_password":"e2e-pass-77","name":"pdwebhook change.deal"}]
JSON
serve_start s5 --user pipedrive --password e2e-pass-77 --reconcile --retry-horizon 2 \
    --base-url "$BASE" --watch-subscriptions --watch-interval 1 --public-url "$PUBLIC" \
    --watch-events change.deal
wait_for 5 health_has '"watchdog":{[^}]*"webhooks":1'
check "the watchdog lists the receiver's webhook" "$?" 0
T3=$(now)
code=$(curl -s -o /dev/null -w '%{http_code}' -u pipedrive:e2e-pass-77 -H 'Content-Type: application/json' \
    --data-binary "$(delivery 7 40 "$T3")" "${SRV}hook")
check "a delivery from webhook 7" "$code" 200
sleep 2.2 # its last success reaches the state (ticks of 1 s)
T4=$(now)
records "$(deal 1 $OLD),$(deal 40 "$T3"),$(deal 41 "$T4")" ""
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "x-api-token: $TOKEN" "${BASE}/webhooks/7")
check "the stand-in deletes webhook 7 (as Pipedrive after 3 days without success)" "$code" 200
wait_for 15 grep -q '"event_action": "change"' "$tmp/hooks.json"
check "the webhook is re-created" "$?" 0
check "from the plan, for the receiver's URL" "$(grep -c 'url-secret-42' "$tmp/hooks.json")" 1
check "with serve's credentials" "$(grep -c '"http_auth_user": "pipedrive"' "$tmp/hooks.json")" 1
check "a loud warning" "$(count 'WARNING: watchdog: webhook 7 (change.deal) of this receiver is gone' "$tmp/s5.err")" 1
check "and the re-creation logged" "$(count 'WARNING: watchdog: re-created webhook 7 (change.deal) as 100' "$tmp/s5.err")" 1
wait_for 15 health_has '"reason":"webhook_deleted","webhook_id":"7"[^}]*"state":"done"'
check "its gap is reconciled by itself" "$?" 0
wait_for 5 out_has '"entity_id":"41"' 1
check "the missed change reached --output" "$(count '"entity_id":"41".*"reconciled":true\|"reconciled":true.*"entity_id":"41"' "$tmp/out.jsonl")" 1
check "the delivered one once" "$(count '"entity_id":"40"' "$tmp/out.jsonl")" 1
health
check "/healthz warns" "$(grep -c '"status":"warning"' "$tmp/health.json")" 1
check "/healthz: the watchdog created one" "$(grep -c '"created":1' "$tmp/health.json")" 1
check "/healthz: last runs listed" "$(grep -o '"last_runs":\[' "$tmp/health.json" | wc -l | tr -d ' ')" 1
check "no secret printed (token, password, URL token)" \
    "$(cat "$tmp"/s*.err "$tmp"/s*.log "$tmp/health.json" | grep -c "$TOKEN\|e2e-pass-77\|url-secret-42")" 0
serve_stop
check "serve --watch-subscriptions stops with 0" "$srv_status" 0

# ---- usage --------------------------------------------------------------------------------
"$bin" serve --reconcile --memory --insecure-no-auth >/dev/null 2>&1
check "--reconcile without --spool is a usage error" "$?" 2
"$bin" serve --watch-subscriptions --spool "$tmp/spool" --insecure-no-auth >/dev/null 2>&1
check "--watch-subscriptions without --public-url is a usage error" "$?" 2
"$bin" serve --reconcile --spool "$tmp/spool" --reconcile-objects deal,bogus --insecure-no-auth >/dev/null 2>&1
check "an unknown object is a usage error" "$?" 2

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
