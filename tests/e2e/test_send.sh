#!/bin/sh
# pdwebhook send, end to end, against a scripted local server (flaky_server): delivery,
# retries with the body's retry marker, redirects and timeouts as failures, Basic auth,
# and Pipedrive's ban counter. Usage: test_send.sh PDWEBHOOK FLAKY_SERVER FIXTURES
set -u
bin=$1
server=$2
fx=$3
tmp=$(mktemp -d)
spid=
cleanup() {
  if [ -n "$spid" ]; then kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
# The server is on 127.0.0.1: never go through a proxy from the environment.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
unset PDWEBHOOK_USER PDWEBHOOK_PASSWORD
NO_PROXY='*'
export NO_PROXY

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
# expect NAME WANT GOT
expect() { if [ "$2" = "$3" ]; then ok; else bad "$1: want '$2', got '$3'"; fi; }
# has NAME FILE STRING: FILE contains STRING
has() { if grep -qF -- "$3" "$2"; then ok; else bad "$1: no '$3' in: $(cat "$2")"; fi; }
hasnt() { if grep -qF -- "$3" "$2"; then bad "$1: '$3' found"; else ok; fi; }

log=$tmp/server.log
out=$tmp/out
err=$tmp/err

# start SCRIPT [ARGS...]: start flaky_server on a free port; sets url.
start() {
  script=$1
  shift
  : > "$log"
  rm -f "$tmp/server.out" # else the loop below may read the last server's line first
  "$server" --port 0 --script "$script" --log "$log" "$@" > "$tmp/server.out" 2>&1 &
  spid=$!
  url=
  i=0
  while [ $i -lt 100 ]; do
    url=$(sed -n '1s/^listening on \(http:[^ ]*\)$/\1/p' "$tmp/server.out")
    [ -n "$url" ] && break
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.05
    i=$((i + 1))
  done
  if [ -z "$url" ]; then
    echo "FAIL: flaky_server did not start: $(cat "$tmp/server.out")"
    exit 1
  fi
}
stop() {
  kill "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
  spid=
}
# send ARGS...: run pdwebhook send; sets rc, output in $out and $err.
send() {
  "$bin" send "$@" > "$out" 2> "$err"
  rc=$?
}
report() { grep '^{"report":true' "$out"; }
attempts() { grep -c '^{"file":' "$out"; }
statuses() { grep '^{"file":' "$out" | sed 's/.*"status":\([^,]*\),.*/\1/' | tr '\n' ' '; }
requests() { wc -l < "$log" | tr -d ' '; }
# the value of KEY (a number) in each body the server saw
seen() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$log" | tr '\n' ' '; }
body() { sed -n "${1}p" "$log" | cut -f5-; }

# relative names from here on: no white space to split, whatever the source path is
cd "$fx" || { echo "FAIL: no fixtures at $fx"; exit 1; }
v2=v2-change.deal-pipedrive-docs.json       # webhook 4710827, reals inside
v2b=v2-create.person-pipedrive-docs.json
v1=v1-added.deal-pipedream.json             # webhook 1234567890
v1b=v1-added.organization-django_pipedrive.json  # no webhook id
bad_json=v2-create.deal-pipedream.txt       # not valid JSON: sent unchanged
for f in "$v2" "$v2b" "$v1" "$v1b" "$bad_json"; do
  [ -r "$f" ] || { echo "FAIL: missing fixture $f"; exit 1; }
done
t0=$(date +%s)

# ---- (a) + (f): every answer 200; Pipedrive's headers and Basic auth ----
start 200
send --user pipedrive --password s3cret --time-scale 0.001 "$url" "$v2" "$v2b" "$v1" "$v1b" "$bad_json"
expect "a: exit status" 0 "$rc"
expect "a: attempt lines" 5 "$(attempts)"
expect "a: statuses" "200 200 200 200 200 " "$(statuses)"
expect "a: requests seen" 5 "$(requests)"
report > "$tmp/r"
for want in '"files":5,' '"delivered":5,' '"retried":0,' '"failed_first_attempts":0,' \
            '"failed":0,' '"lost_during_ban":0,' '"would_be_banned":false,' \
            '"ban_counters":{"4710827":0,"1234567890":0,"unknown":0}'; do
  has "a: report" "$tmp/r" "$want"
done
expect "a: every attempt ok" 5 "$(grep '^{"file":' "$out" | grep -c '"attempt":1,"status":200,"ok":true,"ms":[0-9]*,"error":null}$')"
expect "a: methods" "POST" "$(cut -f1 "$log" | sort -u)"
expect "f: Authorization = Basic base64(pipedrive:s3cret)" "Basic cGlwZWRyaXZlOnMzY3JldA==" "$(cut -f2 "$log" | sort -u)"
expect "f: User-Agent" "Pipedrive Webhooks" "$(cut -f3 "$log" | sort -u)"
expect "f: Content-Type" "application/json" "$(cut -f4 "$log" | sort -u)"
hasnt "f: password never printed (stdout)" "$out" s3cret
hasnt "f: password never printed (stderr)" "$err" s3cret
expect "a: first attempt markers (v2 meta.attempt)" "1 1 " "$(sed -n '1,2p' "$log" | sed -n 's/.*"attempt":\([0-9]*\).*/\1/p' | tr '\n' ' ')"
expect "a: first attempt markers (v1 retry)" "0 0 " "$(sed -n '3,4p' "$log" | sed -n 's/.*"retry":\([0-9]*\).*/\1/p' | tr '\n' ' ')"
# rewritten bodies are compact and still the same event (same delivery key, same reals)
body 1 > "$tmp/b1.json"
hasnt "a: compact body" "$tmp/b1.json" '": '
key_of() { "$bin" inspect "$1" | sed -n 's/.*"delivery_key":"\([^"]*\)".*/\1/p'; }
k_orig=$(key_of "$v2")
[ -n "$k_orig" ] && ok || bad "a: inspect gives no delivery key for $v2"
expect "a: same event after rewrite" "$k_orig" "$(key_of "$tmp/b1.json")"
body 4 > "$tmp/b4.json"
has "a: reals kept as written" "$tmp/b4.json" '"address_lat":-33.5135078,"address_long":-70.7574387,'
body 3 > "$tmp/b3.json"
expect "a: same v1 event after rewrite" "$(key_of "$v1")" "$(key_of "$tmp/b3.json")"
# the invalid body went out byte for byte (the log turns CR/LF into spaces)
body 5 > "$tmp/b5"
tr '\r\n' '  ' < "$bad_json" > "$tmp/b5.want"
echo >> "$tmp/b5.want"
if cmp -s "$tmp/b5" "$tmp/b5.want"; then ok; else bad "a: invalid body not sent unchanged"; fi
stop

# credentials from the environment; none at all -> no Authorization header
start 200
PDWEBHOOK_USER=pipedrive PDWEBHOOK_PASSWORD=s3cret "$bin" send "$url" "$v2" > "$out" 2> "$err"
expect "f: env credentials exit" 0 "$?"
send "$url" "$v2"
expect "f: no credentials exit" 0 "$rc"
expect "f: Authorization from env, then none" "Basic cGlwZWRyaXZlOnMzY3JldA== -" "$(cut -f2 "$log" | tr '\n' ' ' | sed 's/ $//')"
stop

# ---- (b) 500,500,200: retried with the attempt marker rewritten ----
start 500,500,200
send --time-scale 0.001 "$url" "$v2"
expect "b v2: exit status" 0 "$rc"
expect "b v2: statuses" "500 500 200 " "$(statuses)"
expect "b v2: server saw meta.attempt" "1 2 3 " "$(seen attempt)"
report > "$tmp/r"
for want in '"delivered":1,' '"retried":1,' '"failed_first_attempts":1,' '"failed":0,' \
            '"ban_counters":{"4710827":1}'; do
  has "b v2: report" "$tmp/r" "$want"
done
expect "b v2: only the marker differs" 1 "$(cut -f5- "$log" | sed 's/"attempt":[0-9]*//' | sort -u | wc -l | tr -d ' ')"
stop

start 500,500,200
send --time-scale 0.001 "$url" "$v1"
expect "b v1: exit status" 0 "$rc"
expect "b v1: statuses" "500 500 200 " "$(statuses)"
expect "b v1: server saw retry" "0 1 2 " "$(seen retry)"
report > "$tmp/r"
for want in '"delivered":1,' '"retried":1,' '"failed_first_attempts":1,' '"failed":0,' \
            '"ban_counters":{"1234567890":1}'; do
  has "b v1: report" "$tmp/r" "$want"
done
expect "b v1: only the marker differs" 1 "$(cut -f5- "$log" | sed 's/"retry":[0-9]*//' | sort -u | wc -l | tr -d ' ')"
stop

# ---- (c) always 500: 4 attempts, then failed ----
start 500
send --time-scale 0.001 "$url" "$v2"
expect "c: exit status" 1 "$rc"
expect "c: statuses" "500 500 500 500 " "$(statuses)"
expect "c: server saw meta.attempt" "1 2 3 4 " "$(seen attempt)"
report > "$tmp/r"
for want in '"delivered":0,' '"retried":1,' '"failed_first_attempts":1,' '"failed":1,' \
            '"would_be_banned":false,'; do
  has "c: report" "$tmp/r" "$want"
done
# --quiet: the report alone
send --quiet --no-retry --time-scale 0.001 "$url" "$v2"
expect "c: --quiet prints one line" 1 "$(wc -l < "$out" | tr -d ' ')"
expect "c: --quiet line is the report" 1 "$(report | wc -l | tr -d ' ')"
stop

# the ban: 12 events of webhook 4710827 failing; the 10th failed first attempt bans it for
# 30 min * 0.01 = 18 s, so the 11th and 12th are lost (never sent)
ban_files=
for f in v2-change.activity v2-change.deal v2-change.lead v2-change.organization \
         v2-change.person v2-change.user v2-create.activity v2-create.deal v2-create.lead \
         v2-create.organization v2-create.person v2-create.user; do
  ban_files="$ban_files $f-pipedrive-docs.json"
done
start 500
# shellcheck disable=SC2086
send --no-retry --time-scale 0.01 "$url" $ban_files
expect "c ban: exit status" 1 "$rc"
expect "c ban: requests seen" 10 "$(requests)"
expect "c ban: attempt lines" 10 "$(attempts)"
expect "c ban: ban line" 1 "$(grep -c '^{"ban":true,"webhook_id":"4710827"' "$out")"
expect "c ban: ban after the 10th file" "v2-create.organization-pipedrive-docs.json" \
  "$(sed -n 's/^{"ban":true,.*"file":"\([^"]*\)".*/\1/p' "$out")"
expect "c ban: lost lines" 2 "$(grep -c '^{"lost_during_ban":true' "$out")"
report > "$tmp/r"
for want in '"files":12,' '"delivered":0,' '"failed_first_attempts":10,' '"failed":12,' \
            '"lost_during_ban":2,' '"would_be_banned":true,' '"ban_counters":{"4710827":0}'; do
  has "c ban: report" "$tmp/r" "$want"
done
stop

# with retries: the banning event's own retries fall in the ban and are lost too
start 500
# shellcheck disable=SC2086
send --time-scale 0.001 "$url" $(echo $ban_files | cut -d' ' -f1-11)
expect "c ban+retries: requests seen (9 x 4 + 1)" 37 "$(requests)"
report > "$tmp/r"
for want in '"failed_first_attempts":10,' '"retried":9,' '"failed":11,' '"lost_during_ban":2,' \
            '"would_be_banned":true,'; do
  has "c ban+retries: report" "$tmp/r" "$want"
done
stop

# time scale 0: the ban window is empty; the counter restarts from 0 after the 10th
start 500
# shellcheck disable=SC2086
send --no-retry --time-scale 0 "$url" $ban_files
expect "c reset: requests seen" 12 "$(requests)"
report > "$tmp/r"
for want in '"lost_during_ban":0,' '"would_be_banned":true,' '"ban_counters":{"4710827":2}'; do
  has "c reset: report" "$tmp/r" "$want"
done
stop

# ---- (d) a redirect is a failure, never followed ----
start 302,200
send --time-scale 0.001 "$url" "$v2"
expect "d: statuses" "302 200 " "$(statuses)"
expect "d: requests seen (no redirect followed)" 2 "$(requests)"
expect "d: both attempts were deliveries" "1 2 " "$(seen attempt)"
has "d: 302 not ok" "$out" '"attempt":1,"status":302,"ok":false'
report > "$tmp/r"
has "d: report" "$tmp/r" '"failed_first_attempts":1,'
stop
start 301
send --no-retry "$url" "$v2"
expect "d: --no-retry 301 exit" 1 "$rc"
expect "d: --no-retry one request" 1 "$(requests)"
stop

# ---- (e) an answer after the timeout is a failure ----
start 200 --delay-ms 1500
send --no-retry --timeout 1 "$url" "$v2"
expect "e: exit status" 1 "$rc"
has "e: no status, not ok, an error" "$out" '"attempt":1,"status":null,"ok":false,'
hasnt "e: error set" "$out" '"error":null'
ms=$(grep '^{"file":' "$out" | sed 's/.*"ms":\([0-9]*\).*/\1/')
if [ "${ms:-0}" -ge 900 ] && [ "$ms" -lt 1450 ]; then ok; else bad "e: waited ${ms}ms, want about 1000"; fi
report > "$tmp/r"
has "e: report" "$tmp/r" '"failed_first_attempts":1,'
stop

# ---- usage errors: exit 2, nothing sent ----
start 200
send
expect "usage: no arguments" 2 "$rc"
send --bogus "$url" "$v2"
expect "usage: unknown option" 2 "$rc"
send --timeout abc "$url" "$v2"
expect "usage: bad --timeout" 2 "$rc"
send --time-scale -1 "$url" "$v2"
expect "usage: bad --time-scale" 2 "$rc"
send "$url" "$v2" "$tmp/does-not-exist.json"
expect "usage: unreadable file" 2 "$rc"
send --password s3cret "$url" "$v2"
expect "usage: password without user" 2 "$rc"
hasnt "usage: password never printed" "$err" s3cret
expect "usage: nothing was sent" 0 "$(requests)"
"$bin" send --help > "$out" 2>&1
expect "usage: --help exit" 0 "$?"
has "usage: --help documents sequential retries" "$out" "one after the other"
stop

t1=$(date +%s)
echo "elapsed: $((t1 - t0)) s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
