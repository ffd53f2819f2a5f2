#!/bin/sh
# End-to-end test of examples/cgi, twice:
#  1. run the program as a server runs a CGI program (environment variables + stdin,
#     response on stdout) for the whole status matrix;
#  2. behind a real lighttpd (Debian's package), with curl, if lighttpd is installed.
#   sh tests/e2e/test_example_cgi.sh PROGRAM FIXTURES_DIR
[ $# -eq 2 ] || { echo "usage: $0 PROGRAM FIXTURES_DIR" >&2; exit 2; }
. "$(dirname "$0")/lib.sh"
prog=$1
fx=$2
make_bodies "$fx"
good_auth="Basic $(printf '%s' "$E2E_USER:$E2E_PASSWORD" | base64)"
wrong_auth="Basic $(printf '%s' "$E2E_USER:wrong" | base64)"
mkdir "$E2E_TMP/dedup" "$E2E_TMP/dedup-lighttpd"
log=$E2E_TMP/cgi.log # the program's stderr: where the handlers print

# cgi BODY_FILE [-u VAR]... [VAR=VALUE]...: run the program with the request a server
# would give it (POST, JSON, Content-Length of the file, good credentials; -u VAR removes a
# variable, VAR=VALUE adds or replaces one) and BODY_FILE on stdin. Prints the status from
# the "Status:" line; the response is left in $E2E_TMP/headers and $E2E_TMP/body.
cgi() {
    f=$1
    shift
    # the inner env applies the changes (its options must come before assignments)
    env -i PATH="$PATH" PDWEBHOOK_USER="$E2E_USER" PDWEBHOOK_PASSWORD="$E2E_PASSWORD" \
        PDWEBHOOK_DEDUP_DIR="$E2E_TMP/dedup" GATEWAY_INTERFACE=CGI/1.1 \
        REQUEST_METHOD=POST CONTENT_TYPE=application/json \
        CONTENT_LENGTH="$(wc -c <"$f" | tr -d ' ')" HTTP_AUTHORIZATION="$good_auth" \
        env "$@" "$prog" <"$f" 2>>"$log" | tr -d '\r' >"$E2E_TMP/response"
    # headers up to the first empty line, the body after it
    sed -n '/^$/q;p' "$E2E_TMP/response" >"$E2E_TMP/headers"
    sed '1,/^$/d' "$E2E_TMP/response" >"$E2E_TMP/body"
    sed -n 's/^Status: \([0-9][0-9][0-9]\).*/\1/p' "$E2E_TMP/headers" | head -n 1
}

echo "# 1. environment + stdin"
while read -r f event id; do
    check "200 for $f" 200 "$(cgi "$fx/$f")"
done <<EOF
$VALID_FIXTURES
EOF
while read -r f event id; do
    check "handled once: $event $id" 1 "$(count "^handled $event $id [12]:" "$log")"
done <<EOF
$VALID_FIXTURES
EOF
handled_valid=$(echo "$VALID_FIXTURES" | wc -l)

check "200 for a stage move" 200 "$(cgi "$E2E_TMP/stage.json")"
check "stage moved line" 1 "$(count '^stage moved 4242$' "$log")"

# Dedup across processes, through the file store in PDWEBHOOK_DEDUP_DIR.
check "200 for a repeat (retry)" 200 "$(cgi "$fx/v2-create.deal-pipedrive-docs.json")"
check "repeat answered as a duplicate" yes "$(body_has PDW_EDUPLICATE)"
check "repeat not handled twice" 1 "$(count '^handled create\.deal 8 ' "$log")"

check "401 without credentials" 401 "$(cgi "$fx/v2-create.note-pipedrive-docs.json" -u HTTP_AUTHORIZATION)"
check "WWW-Authenticate without credentials" yes "$(has_header WWW-Authenticate)"
check "401 with wrong credentials" 401 \
    "$(cgi "$fx/v2-create.note-pipedrive-docs.json" HTTP_AUTHORIZATION="$wrong_auth")"
check "WWW-Authenticate with wrong credentials" yes "$(has_header WWW-Authenticate)"
check "Apache's REDIRECT_HTTP_AUTHORIZATION is read too" 200 \
    "$(cgi "$fx/v2-create.stage-pipedrive-docs.json" -u HTTP_AUTHORIZATION \
        REDIRECT_HTTP_AUTHORIZATION="$good_auth")"
check "405 for GET" 405 "$(cgi /dev/null -u CONTENT_LENGTH -u CONTENT_TYPE REQUEST_METHOD=GET)"
check "415 for text/plain" 415 "$(cgi "$fx/v2-create.note-pipedrive-docs.json" CONTENT_TYPE=text/plain)"
check "413 for 2 MiB" 413 "$(cgi "$E2E_TMP/big.json")"
# The same length announced with nothing on stdin: still 413, so the body was not read
# (reading it would have found 0 bytes and answered 400).
check "413 before reading stdin" 413 "$(cgi /dev/null CONTENT_LENGTH=2097152)"
check "400 for a trailing comma" 400 "$(cgi "$fx/v2-create.deal-pipedream.txt")"
check "400 for a truncated body" 400 "$(cgi "$E2E_TMP/truncated.json")"
check "400 for a body shorter than CONTENT_LENGTH" 400 \
    "$(cgi "$E2E_TMP/truncated.json" CONTENT_LENGTH=1000)"
check "400 for a malformed CONTENT_LENGTH" 400 \
    "$(cgi "$fx/v2-create.note-pipedrive-docs.json" CONTENT_LENGTH=12x)"
check "500 without PDWEBHOOK_PASSWORD" 500 \
    "$(cgi "$fx/v2-create.note-pipedrive-docs.json" -u PDWEBHOOK_PASSWORD)"
check "no other handled lines" $((handled_valid + 2)) "$(count '^handled ' "$log")"

echo "# 2. behind lighttpd"
# LIGHTTPD=path overrides the search (LIGHTTPD=none to skip this part).
lighttpd=${LIGHTTPD:-$(command -v lighttpd || ls /usr/sbin/lighttpd /usr/local/sbin/lighttpd 2>/dev/null | head -n 1)}
if [ -z "$lighttpd" ] || [ ! -x "$lighttpd" ]; then
    skip "lighttpd not installed (apt-get install lighttpd): the test behind a real server is not run"
    finish
fi
if ! command -v curl >/dev/null 2>&1; then
    skip "curl not installed (apt-get install curl): the test behind lighttpd is not run"
    finish
fi
mkdir "$E2E_TMP/www"
ln -s "$prog" "$E2E_TMP/www/hook.cgi"

# Pick a port: a random one that nothing answers on, then check that lighttpd answers on
# it (another process may take it in between: then try again). Bounded: 5 tries.
tries=0
while [ $tries -lt 5 ]; do
    tries=$((tries + 1))
    port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/")" = 000 ] ||
        continue
    # server.username unset: lighttpd runs as the invoking user, root included, in the
    # foreground (-D). HTTP_AUTHORIZATION reaches CGI programs without any setting.
    cat >"$E2E_TMP/lighttpd.conf" <<EOF
server.document-root = "$E2E_TMP/www"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$E2E_TMP/lighttpd-error.log"
server.modules = ("mod_cgi", "mod_setenv")
cgi.assign = (".cgi" => "")
setenv.add-environment = (
    "PDWEBHOOK_USER" => "$E2E_USER",
    "PDWEBHOOK_PASSWORD" => "$E2E_PASSWORD",
    "PDWEBHOOK_DEDUP_DIR" => "$E2E_TMP/dedup-lighttpd",
)
EOF
    # CGI stderr (the handler lines) goes to lighttpd's stderr when run with -D.
    "$lighttpd" -D -f "$E2E_TMP/lighttpd.conf" >"$E2E_TMP/lighttpd.out" 2>&1 &
    SERVER_PID=$!
    E2E_URL="http://127.0.0.1:$port/hook.cgi"
    i=0
    while [ $i -lt 30 ]; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$E2E_URL")" != 000 ] && break
        sleep 0.1
        i=$((i + 1))
    done
    [ $i -lt 30 ] && break
    stop_server
    E2E_URL=
done
if [ -z "$E2E_URL" ]; then
    check "lighttpd starts" started "no (see below)"
    sed 's/^/#   /' "$E2E_TMP/lighttpd.out" "$E2E_TMP/lighttpd-error.log" 2>/dev/null
    finish
fi
echo "# lighttpd pid $SERVER_PID at $E2E_URL"
lout=$E2E_TMP/lighttpd.out
check "lighttpd: 200 for a v1 body" 200 "$(post "$fx/v1-updated.person-django_pipedrive.json")"
check "lighttpd: 200 for a v2 body" 200 "$(post "$fx/v2-change.deal-pipedrive-docs.json")"
check "lighttpd: 200 for a stage move" 200 "$(post "$E2E_TMP/stage.json")"
check "lighttpd: handled lines" 3 "$(count '^handled ' "$lout")"
check "lighttpd: stage moved line" 1 "$(count '^stage moved 4242$' "$lout")"
check "lighttpd: 200 for a repeat" 200 "$(post "$fx/v2-change.deal-pipedrive-docs.json")"
check "lighttpd: repeat answered as a duplicate" yes "$(body_has PDW_EDUPLICATE)"
check "lighttpd: 401 without credentials" 401 \
    "$(http "$fx/v2-create.note-pipedrive-docs.json" -H 'Content-Type: application/json')"
check "lighttpd: WWW-Authenticate" yes "$(has_header WWW-Authenticate)"
check "lighttpd: 401 with wrong credentials" 401 \
    "$(post "$fx/v2-create.note-pipedrive-docs.json" -u "$E2E_USER:wrong")"
check "lighttpd: 400 for a trailing comma" 400 "$(post "$fx/v2-create.deal-pipedream.txt")"
check "lighttpd: 400 for a truncated body" 400 "$(post "$E2E_TMP/truncated.json")"
check "lighttpd: 413 for 2 MiB" 413 "$(post "$E2E_TMP/big.json")"
check "lighttpd: no other handled lines" 3 "$(count '^handled ' "$lout")"
stop_server
check "lighttpd: stops on SIGTERM" 0 "$SERVER_STATUS"
finish
