#!/bin/sh
# pdwebhook subscriptions end to end, against pipedrive_standin: a local STAND-IN for
# Pipedrive's webhook management API (not Pipedrive), started here on loopback.
# Usage: test_subscriptions.sh PDWEBHOOK PIPEDRIVE_STANDIN
set -u
bin=$1
standin=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pdw-subs.XXXXXX") || exit 1
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
        fail=$((fail + 1)); echo "FAIL - $1: got '$2', want '$3'"
    fi
}
has() { # has WHAT FILE TEXT: FILE contains TEXT
    if grep -qF -- "$3" "$2"; then
        pass=$((pass + 1)); echo "ok - $1"
    else
        fail=$((fail + 1)); echo "FAIL - $1: '$3' not in:"; sed 's/^/#   /' "$2"
    fi
}
lacks() { # lacks WHAT FILE TEXT
    if grep -qF -- "$3" "$2"; then
        fail=$((fail + 1)); echo "FAIL - $1: '$3' found in $2"
    else
        pass=$((pass + 1)); echo "ok - $1"
    fi
}
count() { n=$(grep -c -- "$1" "$2" 2>/dev/null); echo "${n:-0}"; }

# start NAME COMMAND...: run in the background, wait (5 s at most) for the
# "listening on http://127.0.0.1:PORT/" first line; sets url.
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
    echo "FAIL - $name did not start:"; sed 's/^/#   /' "$tmp/$name.err"
    exit 1
}

# subs NAME ARGS...: run `pdwebhook subscriptions ARGS`, output in $tmp/NAME.out/.err,
# exit status in $rc.
n_runs=0
subs() {
    name=$1; shift
    "$bin" subscriptions "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    rc=$?
    n_runs=$((n_runs + 1))
}
writes() { count '^\(POST\|DELETE\) ' "$tmp/standin.log"; }

TOKEN=e2e-token-0123456789abcdef
PASSWORD=s3cret-e2e-password
HOOK=https://hooks.example.test/pipedrive
EVENTS='updated.deal,updated.stage,*.person'
unset PIPEDRIVE_OAUTH_TOKEN PIPEDRIVE_BASE_URL PDWEBHOOK_USER PDWEBHOOK_PASSWORD
export PIPEDRIVE_API_TOKEN="$TOKEN"

# ---- the stand-in itself -----------------------------------------------------------
"$standin" --help >"$tmp/help" 2>&1
has "the stand-in says what it is" "$tmp/help" "STAND-IN for Pipedrive"
has "the stand-in says it is not Pipedrive" "$tmp/help" "It is not Pipedrive"
start standin "$standin" --port 0 --token "$TOKEN" --oauth-token oauth-e2e --seed-foreign
base="${url}api/v1"
export PIPEDRIVE_BASE_URL="$base"

# ---- plan (no network) -------------------------------------------------------------
subs plan plan --events "$EVENTS" --version 2.0
check "plan exits 0" "$rc" 0
has "plan: change.deal" "$tmp/plan.out" "  change.deal"
has "plan: *.person" "$tmp/plan.out" "  *.person"
has "plan: change.stage" "$tmp/plan.out" "  change.stage"
has "plan: the stage warning" "$tmp/plan.out" "warning: change.stage fires when a stage itself is edited"
check "plan: 3 subscriptions" "$(count '^  ' "$tmp/plan.out")" 3
subs plan1 plan --events 'change.deal,*.deal,create.lead' --version 1.0
check "plan: lead refused in 1.0 (exit 2)" "$rc" 2
has "plan: why lead is refused" "$tmp/plan1.err" "lead exists in webhooks 2.0 only"
subs plan2 plan --events 'merged.person' --version 2.0
check "plan: merged refused in 2.0" "$rc" 2
has "plan: merged explanation" "$tmp/plan2.err" "no merged action"
subs plan3 plan --events 'updated.deal,*.deal,added.person,updated.person,deleted.person,merged.person' --version 1.0 --json
check "plan --json exits 0" "$rc" 0
has "plan --json collapses to *.deal" "$tmp/plan3.out" '"name": "pdwebhook *.deal"'
has "plan --json collapses to *.person" "$tmp/plan3.out" '"name": "pdwebhook *.person"'
has "plan --json: version explicit" "$tmp/plan3.out" '"version": "1.0"'
check "no request reached the stand-in for plan" "$(count '^' "$tmp/standin.log")" 1

# ---- sync: create, keep, delete ----------------------------------------------------
subs sync1 sync --url "$HOOK" --events "$EVENTS" --version 2.0 --user pipedrive --password "$PASSWORD"
check "first sync exits 0" "$rc" 0
check "first sync creates 3" "$(count '^created ' "$tmp/sync1.out")" 3
has "first sync summary" "$tmp/sync1.out" "in sync: 3 created, 0 kept, 0 deleted"
has "first sync prints the stage warning" "$tmp/sync1.err" "change.stage fires when"
check "3 POSTs answered 201" "$(count '^POST /api/v1/webhooks 201$' "$tmp/standin.log")" 3

subs list1 list --url "$HOOK" --json
check "list exits 0" "$rc" 0
check "list: 3 webhooks for the URL" "$(count '"subscription_url"' "$tmp/list1.out")" 3
has "list: created with our user" "$tmp/list1.out" '"http_auth_user": "pipedrive"'
has "list: version 2.0" "$tmp/list1.out" '"version": "2.0"'
has "list: Pipedrive's last_http_status shown" "$tmp/list1.out" '"last_http_status"'

before=$(writes)
subs sync2 sync --url "$HOOK" --events "$EVENTS" --version 2.0 --user pipedrive --password "$PASSWORD"
check "second sync exits 0" "$rc" 0
has "second sync keeps everything" "$tmp/sync2.out" "in sync: 0 created, 3 kept, 0 deleted"
check "second sync changes nothing (idempotent)" "$(writes)" "$before"

subs sync3 sync --url "$HOOK" --events 'updated.deal,*.person,added.note' --version 2.0 --user pipedrive --password "$PASSWORD"
check "changed events: exit 0" "$rc" 0
has "changed events: summary" "$tmp/sync3.out" "in sync: 1 created, 2 kept, 1 deleted"
has "changed events: create.note created" "$tmp/sync3.out" "create.note"
has "changed events: change.stage deleted" "$tmp/sync3.out" "change.stage"
check "changed events: one DELETE" "$(count '^DELETE /api/v1/webhooks/[0-9]* 200$' "$tmp/standin.log")" 1

# the same credentials as serve: --credentials FILE gives its first pair
printf '# rotation file\nnewuser:%s-2\nolduser:%s\n' "$PASSWORD" "$PASSWORD" >"$tmp/creds"
subs sync4 sync --url "$HOOK" --events 'updated.deal,*.person,added.note' --credentials "$tmp/creds"
check "new credentials: exit 0" "$rc" 0
has "new credentials: every webhook replaced" "$tmp/sync4.out" "in sync: 3 created, 0 kept, 3 deleted"
subs list2 list --url "$HOOK" --json
check "new credentials: the file's first pair" "$(count '"http_auth_user": "newuser"' "$tmp/list2.out")" 3
before=$(writes)
subs sync5 sync --url "$HOOK" --events 'change.deal *.person create.note' --user newuser --password "$PASSWORD-2"
has "the same pair given as --user/--password: nothing to do" "$tmp/sync5.out" "0 created, 3 kept, 0 deleted"
PDWEBHOOK_USER=newuser PDWEBHOOK_PASSWORD="$PASSWORD-2" \
    "$bin" subscriptions sync --url "$HOOK" --events 'change.deal,*.person,create.note' >"$tmp/sync6.out" 2>&1
has "the same pair from PDWEBHOOK_USER/PASSWORD: nothing to do" "$tmp/sync6.out" "0 created, 3 kept, 0 deleted"
check "credential variants changed nothing" "$(writes)" "$before"

subs sync7 sync --url "$HOOK" --events 'change.deal,*.person,create.note' --version 1.0 --credentials "$tmp/creds" --json
check "switch to 1.0: exit 0" "$rc" 0
check "switch to 1.0: 3 created" "$(sed -n '/"created"/,/"kept"/p' "$tmp/sync7.out" | grep -c '"id"')" 3
check "switch to 1.0: 3 deleted" "$(sed -n '/"deleted"/,/"warnings"/p' "$tmp/sync7.out" | grep -c '"id"')" 3
has "switch to 1.0: v1 words" "$tmp/sync7.out" '"event_action": "updated"'

before=$(writes)
subs dry sync --url "$HOOK" --events 'added.deal' --version 1.0 --credentials "$tmp/creds" --dry-run
check "dry run: exit 0" "$rc" 0
has "dry run: says what it would do" "$tmp/dry.out" "would create"
has "dry run: summary" "$tmp/dry.out" "dry run: 1 created, 0 kept, 3 deleted"
check "dry run: no request that changes anything" "$(writes)" "$before"

# the foreign webhook (another user's URL) was never touched
subs list3 list
has "list: the other user's webhook is still there" "$tmp/list3.out" "https://foreign.example/hook"
has "list: its last delivery time" "$tmp/list3.out" "2024-09-27 14:35:00"
has "list: its last status" "$tmp/list3.out" " 200 "

# ---- errors ------------------------------------------------------------------------
PIPEDRIVE_API_TOKEN=wrong "$bin" subscriptions list >"$tmp/e401.out" 2>"$tmp/e401.err"
check "wrong token: exit 1" "$?" 1
has "wrong token: 401 explained" "$tmp/e401.err" "Pipedrive refused the token (401"
lacks "wrong token: the token is not printed" "$tmp/e401.err" "wrong"

subs e403 delete --id 1
check "deleting another user's webhook: exit 1" "$rc" 1
has "403 explained" "$tmp/e403.err" "belongs to another user"
subs e404 delete --id 424242
check "deleting an unknown webhook: exit 1" "$rc" 1
has "404 explained" "$tmp/e404.err" "webhook 424242 does not exist (404"

subs e400 sync --url https://unreachable.invalid/hook --events updated.deal --insecure-no-auth
check "unreachable URL: exit 1" "$rc" 1
has "400 explained" "$tmp/e400.err" "subscription_url: invalid or non-reachable URL"
has "400 hint" "$tmp/e400.err" "must not redirect"

subs ebase list --base-url "${url}nowhere"
check "wrong base URL: exit 1" "$rc" 1
has "wrong base URL: 404 explained" "$tmp/ebase.err" "check --base-url"

subs enocred sync --url "$HOOK" --events updated.deal
check "sync without credentials: exit 2" "$rc" 2
has "sync without credentials: explained" "$tmp/enocred.err" "--insecure-no-auth"

PIPEDRIVE_API_TOKEN= "$bin" subscriptions list >"$tmp/enotoken.out" 2>"$tmp/enotoken.err"
check "no token: exit 2" "$?" 2
has "no token: explained" "$tmp/enotoken.err" "PIPEDRIVE_API_TOKEN"

PIPEDRIVE_API_TOKEN= PIPEDRIVE_OAUTH_TOKEN=oauth-e2e "$bin" subscriptions list >"$tmp/oauth.out" 2>"$tmp/oauth.err"
check "OAuth bearer token: exit 0" "$?" 0
has "OAuth bearer token: listed" "$tmp/oauth.out" "foreign.example"

# the library's limit check, before any request
many=$(i=0; while [ $i -lt 41 ]; do printf 'create.obj%d,' $i; i=$((i + 1)); done)
subs elimit plan --events "$many"
check "41 subscriptions: exit 2" "$rc" 2
has "41 subscriptions: limit explained" "$tmp/elimit.err" "limit of 40 per user"

# Pipedrive's own refusal at the limit (a stand-in with a limit of 2)
start standin2 "$standin" --port 0 --token "$TOKEN" --limit 2
PIPEDRIVE_BASE_URL="${url}api/v1" "$bin" subscriptions sync --url "$HOOK" \
    --events 'create.deal,create.person,create.note' --insecure-no-auth >"$tmp/elimit2.out" 2>"$tmp/elimit2.err"
check "Pipedrive's limit refusal: exit 1" "$?" 1
has "Pipedrive's limit refusal explained" "$tmp/elimit2.err" "reached the limit of 40 webhooks"
has "a stopped sync says how to go on" "$tmp/elimit2.err" "run sync again"

# ---- delete --url ------------------------------------------------------------------
subs del delete --url "$HOOK"
check "delete --url: exit 0" "$rc" 0
check "delete --url: 3 deleted" "$(count '^deleted ' "$tmp/del.out")" 3
subs list4 list --url "$HOOK"
has "nothing left for the URL" "$tmp/list4.out" "0 webhooks for this URL"

# ---- health next to Pipedrive's view -----------------------------------------------
start serve "$bin" serve --listen 127.0.0.1:0 --memory --user pipedrive --password "$PASSWORD"
subs health list --health "$url"
check "list --health: exit 0" "$rc" 0
has "list --health: the receiver's counters" "$tmp/health.out" "receiver health"
has "list --health: received" "$tmp/health.out" "received"
subs health2 list --health "http://127.0.0.1:1/" --json
has "list --health: an unreachable receiver is reported" "$tmp/health2.out" '"health_error"'

# ---- no secret in any output -------------------------------------------------------
leaks=$(cat "$tmp"/*.out "$tmp"/*.err | grep -c -- "$PASSWORD\|$TOKEN")
check "no password or token in any output ($n_runs runs)" "$leaks" 0

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
