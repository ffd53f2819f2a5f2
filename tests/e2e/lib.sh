# lib.sh: a small POSIX sh harness for the end-to-end tests of the examples.
#
#   . "$(dirname "$0")/lib.sh"
#   start_server "$E2E_TMP/server.log" ./program --port 0   # sets E2E_URL
#   check "valid body" 200 "$(post fixture.json)"
#   finish                                                  # "N passed, M failed"
#
# Every wait is bounded; the EXIT trap stops the server and removes the temporary dir.

E2E_PASSED=0
E2E_FAILED=0
E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pdw-e2e.XXXXXX") || exit 1
E2E_USER=pipedrive
E2E_PASSWORD=e2e-s3cret
E2E_URL=
SERVER_PID=
SERVER_LOG=
export PDWEBHOOK_USER="$E2E_USER" PDWEBHOOK_PASSWORD="$E2E_PASSWORD"

e2e_cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$E2E_TMP"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# check NAME EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then
        E2E_PASSED=$((E2E_PASSED + 1))
        echo "ok - $1"
    else
        E2E_FAILED=$((E2E_FAILED + 1))
        echo "FAIL - $1: expected '$2', got '$3'"
    fi
}

# skip REASON: say clearly what is not run, and why.
skip() {
    echo "SKIP: $*"
}

# count PATTERN FILE: the number of lines of FILE matching the basic regex PATTERN.
count() {
    n=$(grep -c -- "$1" "$2" 2>/dev/null)
    echo "${n:-0}"
}

# has_header NAME: "yes" when the last response had header NAME (any case), else "no".
has_header() {
    if grep -qi "^$1:" "$E2E_TMP/headers" 2>/dev/null; then echo yes; else echo no; fi
}

# body_has TEXT: "yes" when the last response body contains TEXT, else "no".
body_has() {
    if grep -qF -- "$1" "$E2E_TMP/body" 2>/dev/null; then echo yes; else echo no; fi
}

# start_server LOG COMMAND...: run COMMAND in the background with stdout to LOG (stderr to
# LOG.err), wait up to 5 s for "listening on http://127.0.0.1:PORT/" as its first line,
# and set E2E_URL. Returns 1 if the line does not come.
start_server() {
    SERVER_LOG=$1
    shift
    rm -f "$SERVER_LOG" # else the loop below may read an earlier server's line first
    "$@" >"$SERVER_LOG" 2>"$SERVER_LOG.err" &
    SERVER_PID=$!
    i=0
    while [ $i -lt 50 ]; do
        port=$(sed -n '1s|^listening on http://127\.0\.0\.1:\([0-9][0-9]*\)/$|\1|p' "$SERVER_LOG")
        if [ -n "$port" ]; then
            E2E_URL="http://127.0.0.1:$port/"
            echo "# server pid $SERVER_PID at $E2E_URL"
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break # exited (where the shell reaps early)
        sleep 0.1
        i=$((i + 1))
    done
    echo "# no 'listening on' line within 5 s; stderr:"
    sed 's/^/#   /' "$SERVER_LOG.err"
    return 1
}

# watchdog PID SECONDS: in the background, SIGKILL PID if it still runs after SECONDS.
# It ends by itself within 0.1 s once PID is gone (so nobody has to kill it: killing a
# busy subshell is not reliable); wait for it with `wait "$WATCHDOG_PID"`.
watchdog() {
    (
        i=0
        while kill -0 "$1" 2>/dev/null; do
            if [ $i -ge $(($2 * 10)) ]; then
                kill -KILL "$1" 2>/dev/null
                break
            fi
            sleep 0.1
            i=$((i + 1))
        done
    ) </dev/null >/dev/null 2>&1 &
    WATCHDOG_PID=$!
}

# run_bounded SECONDS COMMAND...: run COMMAND (stdin /dev/null, output to
# $E2E_TMP/bounded.out), killing it after SECONDS; sets BOUNDED_STATUS to its exit status.
run_bounded() {
    limit=$1
    shift
    "$@" </dev/null >"$E2E_TMP/bounded.out" 2>&1 &
    bounded=$!
    watchdog "$bounded" "$limit"
    wait "$bounded"
    BOUNDED_STATUS=$?
    wait "$WATCHDOG_PID"
}

# stop_server: SIGTERM, then wait (at most 5 s, then SIGKILL); sets SERVER_STATUS to the
# exit status. Not in $(...): only this shell can wait for its child.
stop_server() {
    SERVER_STATUS=none
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null
    watchdog "$SERVER_PID" 5
    wait "$SERVER_PID"
    SERVER_STATUS=$?
    wait "$WATCHDOG_PID"
    SERVER_PID=
}

# http FILE [CURL ARGS...]: POST FILE's bytes to $E2E_URL with nothing added (no
# Content-Type, no credentials); print the status. Headers and body of the response are
# left in $E2E_TMP/headers and $E2E_TMP/body.
http() {
    f=$1
    shift
    curl -s --max-time 10 -o "$E2E_TMP/body" -D "$E2E_TMP/headers" -w '%{http_code}' \
        --data-binary "@$f" "$@" "$E2E_URL"
}

# post FILE [CURL ARGS...]: as Pipedrive does it: JSON, Basic auth with the good
# credentials (a later -u in CURL ARGS replaces them).
post() {
    f=$1
    shift
    http "$f" -H 'Content-Type: application/json' -u "$E2E_USER:$E2E_PASSWORD" "$@"
}

# get [CURL ARGS...]: a plain GET with the good credentials; print the status.
get() {
    curl -s --max-time 10 -o "$E2E_TMP/body" -D "$E2E_TMP/headers" -w '%{http_code}' \
        -u "$E2E_USER:$E2E_PASSWORD" "$@" "$E2E_URL"
}

# make_bodies: the bodies no fixture provides, in $E2E_TMP:
#   stage.json      a v2 change.deal whose previous has stage_id (a deal moved stage: 4242)
#   big.json        2 MiB, over the examples' 1 MiB limit
#   truncated.json  a real fixture cut short
make_bodies() {
    printf '%s' '{"meta":{"action":"change","entity":"deal","entity_id":"4242","id":"7f1c2a3e-0000-4000-8000-000000004242","version":"2.0","timestamp":"2026-01-02T03:04:05.678Z","attempt":1},"data":{"id":4242,"stage_id":3},"previous":{"stage_id":2}}' \
        >"$E2E_TMP/stage.json"
    head -c 2097152 /dev/zero >"$E2E_TMP/big.json"
    head -c 300 "$1/v2-create.person-pipedrive-docs.json" >"$E2E_TMP/truncated.json"
}

# Valid real fixtures (v1 and v2) with the event name and entity id each must produce.
VALID_FIXTURES='v1-added.person-django_pipedrive.json create.person 998
v1-updated.deal-django_pipedrive.json change.deal 999
v1-deleted.organization-django_pipedrive.json delete.organization 997
v2-create.deal-pipedrive-docs.json create.deal 8
v2-change.person-pipedrive-docs.json change.person 8
v2-change.lead-pipedrive-docs.json change.lead b1810230-6c0d-11ed-9826-a53d0eb706a5
v2-delete.deal-pipedrive-docs.json delete.deal 8'

# server_matrix PROGRAM FIXTURES: the whole check list for a server example.
server_matrix() {
    prog=$1
    fx=$2
    make_bodies "$fx"
    log=$E2E_TMP/server.log

    # No credentials, no server: it must say so and exit (not listen unprotected).
    run_bounded 5 env -u PDWEBHOOK_PASSWORD "$prog" --port 0
    check "refuses to start without PDWEBHOOK_PASSWORD" yes \
        "$([ "$BOUNDED_STATUS" -ne 0 ] && [ "$BOUNDED_STATUS" -ne 137 ] && echo yes || echo no)"
    check "no listening line without credentials" 0 "$(count '^listening on' "$E2E_TMP/bounded.out")"
    if ! start_server "$log" "$prog" --port 0; then
        check "server starts and prints its port" listening none
        return
    fi
    check "binds 127.0.0.1" "http://127.0.0.1:" "$(echo "$E2E_URL" | sed 's|[0-9]*/$||')"

    # Valid deliveries: 200, and exactly one "handled" line each.
    # (here-documents, not pipes: a piped loop runs in a subshell and loses the counts)
    while read -r f event id; do
        check "200 for $f" 200 "$(post "$fx/$f")"
    done <<EOF
$VALID_FIXTURES
EOF
    while read -r f event id; do
        check "handled once: $event $id" 1 "$(count "^handled $event $id [12]:" "$log")"
    done <<EOF
$VALID_FIXTURES
EOF
    handled_valid=$(echo "$VALID_FIXTURES" | wc -l)

    # A deal that moved stage fires the field filter as well as *.*.
    check "200 for a stage move" 200 "$(post "$E2E_TMP/stage.json")"
    check "stage moved line" 1 "$(count '^stage moved 4242$' "$log")"
    check "handled line for the stage move" 1 "$(count '^handled change\.deal 4242 ' "$log")"

    # A retry of an accepted delivery: 200 again, not handed on again.
    check "200 for a repeat (retry)" 200 "$(post "$fx/v2-create.deal-pipedrive-docs.json")"
    check "repeat answered as a duplicate" yes "$(body_has PDW_EDUPLICATE)"
    check "repeat not handled twice" 1 "$(count '^handled create\.deal 8 ' "$log")"

    # Credentials.
    check "401 without credentials" 401 \
        "$(http "$fx/v2-create.note-pipedrive-docs.json" -H 'Content-Type: application/json')"
    check "WWW-Authenticate without credentials" yes "$(has_header WWW-Authenticate)"
    check "401 with wrong credentials" 401 \
        "$(post "$fx/v2-create.note-pipedrive-docs.json" -u "$E2E_USER:wrong")"
    check "WWW-Authenticate with wrong credentials" yes "$(has_header WWW-Authenticate)"

    # Method, media type, size, malformed bodies.
    check "405 for GET" 405 "$(get)"
    check "Allow: POST on 405" yes "$(has_header Allow)"
    check "415 for text/plain" 415 "$(http "$fx/v2-create.note-pipedrive-docs.json" \
        -H 'Content-Type: text/plain' -u "$E2E_USER:$E2E_PASSWORD")"
    check "413 for 2 MiB" 413 "$(post "$E2E_TMP/big.json")"
    check "400 for a trailing comma" 400 "$(post "$fx/v2-create.deal-pipedream.txt")"
    check "400 for a truncated body" 400 "$(post "$E2E_TMP/truncated.json")"

    # Refused requests ran no handler; the server is still up and answers.
    check "no other handled lines" $((handled_valid + 1)) "$(count '^handled ' "$log")"
    check "200 after the refusals" 200 "$(post "$fx/v2-create.note-pipedrive-docs.json")"
    stop_server
    check "exits 0 on SIGTERM" 0 "$SERVER_STATUS"
    if [ -s "$log.err" ]; then
        echo "# server stderr:"
        sed 's/^/#   /' "$log.err"
    fi
}

# finish: the summary line on its own; exit non-zero if anything failed (or nothing ran).
finish() {
    echo "$E2E_PASSED passed, $E2E_FAILED failed"
    if [ "$E2E_FAILED" -eq 0 ] && [ "$E2E_PASSED" -gt 0 ]; then
        exit 0
    fi
    exit 1
}
