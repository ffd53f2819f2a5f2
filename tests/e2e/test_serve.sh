#!/bin/sh
# pdwebhook serve end to end: a real server on a free loopback port, real fixtures posted
# with curl. Usage: test_serve.sh PDWEBHOOK FIXTURES
set -u
bin=$1
fx=$2
tmp=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { # check WHAT GOT WANT
  if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi
}

# start NAME ARGS...: run serve in the background, wait for its "listening on" line.
start() {
  name=$1; shift
  "$bin" serve --listen 127.0.0.1:0 "$@" > "$tmp/$name.out" 2> "$tmp/$name.err" &
  pid=$!
  pids="$pids $pid"
  i=0
  while ! grep -q '^listening on' "$tmp/$name.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
      echo "server $name did not start:"; cat "$tmp/$name.err"; exit 1
    fi
    sleep 0.05
  done
  url=$(sed -n 's/^listening on \(.*\)$/\1/p' "$tmp/$name.out" | head -n 1)
  port=$(echo "$url" | sed 's|.*:\([0-9]*\)/.*|\1|')
}
# post URL FILE [curl args...] -> status code; response headers in $tmp/h
post() {
  u=$1; f=$2; shift 2
  curl -s -o "$tmp/body" -D "$tmp/h" -w '%{http_code}' -H 'Content-Type: application/json' \
       --data-binary "@$f" "$@" "$u"
}
health() { curl -s "http://127.0.0.1:$port/healthz"; }
field() { health | sed -n "s/.*\"$1\":\([0-9-]*\).*/\1/p"; }
wait_handled() { # wait until the worker has handed on N events
  i=0
  while [ "$(field handled)" != "$1" ] && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.05; done
}

AUTH="-u pipedrive:s3cret"
start main --user pipedrive --password s3cret --output "$tmp/events.jsonl" \
  --spool "$tmp/spool" --exec "cat >> $tmp/exec.log"

# every real fixture: valid ones 200 and handed on once, invalid ones 400
n=0
for f in "$fx"/*.json; do
  n=$((n + 1))
  s=$(post "$url" "$f" $AUTH); check "$(basename "$f")" "$s" 200
done
for f in "$fx"/*.txt; do
  s=$(post "$url" "$f" $AUTH); check "$(basename "$f")" "$s" 400
done
wait_handled $n
check "events in --output" "$(wc -l < "$tmp/events.jsonl")" $n
check "events through --exec" "$(wc -l < "$tmp/exec.log")" $n
grep -q '"body":{"meta"\|"body":{"v"' "$tmp/events.jsonl" && ok || bad "output lines carry the body"
grep -q '"delivery_key":"' "$tmp/events.jsonl" && ok || bad "output lines carry the delivery key"

# retries of accepted deliveries: 200, not handed on again
for f in "$fx"/v2-change.deal-pipedrive-docs.json "$fx"/v1-updated.deal-pipedream.json; do
  s=$(post "$url" "$f" $AUTH); check "repeat $(basename "$f")" "$s" 200
done
sed 's/"attempt": *1/"attempt":2/' "$fx/v2-change.person-pipedrive-docs.json" > "$tmp/retry.json"
s=$(post "$url" "$tmp/retry.json" $AUTH); check "attempt 2 of an accepted event" "$s" 200
sleep 0.3
check "no second hand-on" "$(wc -l < "$tmp/events.jsonl")" $n
check "duplicates counted" "$(field duplicates)" 3

# the status table
good=$fx/v2-create.deal-pipedrive-docs.json
s=$(post "$url" "$good"); check "no credentials" "$s" 401
grep -qi '^WWW-Authenticate: Basic realm=' "$tmp/h" && ok || bad "401 without WWW-Authenticate"
s=$(post "$url" "$good" -u pipedrive:wrong); check "wrong password" "$s" 401
s=$(post "$url" "$good" -u someone:s3cret); check "wrong user" "$s" 401
# The head (credentials included) is checked once per request, before the body: nothing of
# it carries over to the next request on a kept-alive connection. Two requests on one
# connection: good credentials, then none; again with a wrong password second.
two() { # CURL-ARGS-OF-THE-SECOND -> "status:new_connections status:new_connections"
  curl -s -o /dev/null -w '%{http_code}:%{num_connects} ' -H 'Content-Type: application/json' \
      --data-binary "@$good" -u pipedrive:s3cret "$url" \
    --next -s -o /dev/null -w '%{http_code}:%{num_connects}' -H 'Content-Type: application/json' \
      --data-binary "@$good" "$@" "$url"
}
check "one connection: good, then none" "$(two)" "200:1 401:0"
check "one connection: good, then wrong" "$(two -u pipedrive:wrong)" "200:1 401:0"
s=$(post "$url" "$good" -H 'Authorization: Basic !!!!'); check "malformed Basic value" "$s" 401
s=$(post "$url" "$good" -H 'Authorization: Basic cGlwZWRyaXZlOnMzY3JldA==' \
  -H 'Authorization: Basic cGlwZWRyaXZlOnMzY3JldA=='); check "two Authorization headers" "$s" 401
s=$(curl -s -o /dev/null -D "$tmp/h" -w '%{http_code}' $AUTH "$url"); check "GET" "$s" 405
grep -qi '^Allow: POST' "$tmp/h" && ok || bad "405 without Allow: POST"
s=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary "@$good" $AUTH "$url")
check "text/plain" "$s" 415
head -c 2097152 /dev/zero | tr '\0' ' ' > "$tmp/big.json"
s=$(post "$url" "$tmp/big.json" $AUTH); check "2 MiB body" "$s" 413
head -c 200 "$good" > "$tmp/truncated.json"
s=$(post "$url" "$tmp/truncated.json" $AUTH); check "truncated JSON" "$s" 400
grep -q 'PDW_EJSON' "$tmp/body" && ok || bad "400 body names PDW_EJSON"
s=$(post "$url" "$fx/v2-create.deal-pipedream.txt" $AUTH); check "trailing comma" "$s" 400

# health
h=$(health)
case $h in *'"rejected_by_reason":{'*'"PDW_EAUTHMISSING":2'*) ok ;; *) bad "health: $h" ;; esac
check "accepted" "$(field accepted)" $n
check "in flight" "$(field in_flight)" 0

# stop: exit 0, nothing pending in the journal, no secret in the log
pending=$(health | sed -n 's/.*"pending":\([0-9]*\).*/\1/p')
check "spool pending after handling" "$pending" 0
kill -TERM "$pid"; wait "$pid"; rc=$?
check "exit status after SIGTERM" "$rc" 0
grep -q 's3cret' "$tmp/main.err" && bad "the password appears in the log" || ok
check "one log line per request" "$(grep -c ' POST \| GET ' "$tmp/main.err")" "$(( n + 3 + 3 + 8 + 6 ))"

# a restart on the same journal: the retries are still duplicates, nothing is handed on twice
start again --user pipedrive --password s3cret --output "$tmp/events.jsonl" \
  --spool "$tmp/spool" --exec "cat >> $tmp/exec.log"
s=$(post "$url" "$fx/v2-change.deal-pipedrive-docs.json" $AUTH); check "repeat after restart" "$s" 200
s=$(post "$url" "$fx/v2-delete.deal-pipedrive-docs.json" $AUTH); check "repeat after restart" "$s" 200
sleep 0.3
check "no event handed on twice after restart" "$(wc -l < "$tmp/events.jsonl")" $n
check "no command run twice after restart" "$(wc -l < "$tmp/exec.log")" $n
kill -TERM "$pid"; wait "$pid"

# no credentials: a generated pair, printed once, that works
start gen --memory
user=$(sed -n 's/.*HTTP auth username: \(.*\)$/\1/p' "$tmp/gen.err")
pw=$(sed -n 's/.*HTTP auth password: \(.*\)$/\1/p' "$tmp/gen.err")
[ -n "$pw" ] && [ ${#pw} -ge 20 ] && ok || bad "no generated password printed"
s=$(post "$url" "$good" -u "$user:$pw"); check "generated credentials" "$s" 200
s=$(post "$url" "$good"); check "generated credentials required" "$s" 401
kill -TERM "$pid"; wait "$pid"

# --credentials FILE (rotation), --token, --path, --max-body
printf '# old and new\nold:pw1\n\nnew:pw2\n' > "$tmp/creds"
start rot --memory --credentials "$tmp/creds" --path /pipedrive --max-body 4000
s=$(post "$url" "$good" -u old:pw1); check "first pair" "$s" 200
s=$(post "$url" "$fx/v2-create.person-pipedrive-docs.json" -u new:pw2); check "second pair" "$s" 200
s=$(post "$url" "$fx/v2-create.note-pipedrive-docs.json" -u old:pw2); check "mixed pair" "$s" 401
s=$(post "http://127.0.0.1:$port/other" "$good" -u old:pw1); check "--path elsewhere" "$s" 404
s=$(post "$url" "$fx/v2-create.deal-n8n-pinData-unattributed.json" -u old:pw1); check "under --max-body" "$s" 200
head -c 5000 /dev/zero | tr '\0' ' ' > "$tmp/5k.json"
s=$(post "$url" "$tmp/5k.json" -u old:pw1); check "over --max-body" "$s" 413
kill -TERM "$pid"; wait "$pid"
start tok --memory --token 't0k&n'
s=$(post "${url}?token=t0k%26n" "$good"); check "query token" "$s" 200
s=$(post "${url}?token=nope" "$good"); check "wrong query token" "$s" 401
grep -q 't0k' "$tmp/tok.err" && bad "the token appears in the log" || ok
kill -TERM "$pid"; wait "$pid"

# HTTPS with a self-signed certificate (when openssl is there to make one)
if command -v openssl >/dev/null 2>&1; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    -days 1 -subj /CN=127.0.0.1 >/dev/null 2>&1
  start tls --memory --user u --password p --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
  case $url in https://*) ok ;; *) bad "TLS url $url" ;; esac
  s=$(post "$url" "$good" -k -u u:p); check "HTTPS delivery" "$s" 200
  kill -TERM "$pid"; wait "$pid"
else
  echo "SKIP: openssl not installed, HTTPS not tested"
fi

# --sync: a retry that arrives while the first attempt's handler still runs (as when the
# handler is slower than Pipedrive's 10 s and Pipedrive retries 3 s later) must get 503 +
# Retry-After, not the 200 of a duplicate: the first attempt may yet fail, and after a 200
# Pipedrive would never send the event again. The handler takes 2 s and fails its first
# run; the retry sent meanwhile gets 503; the one after the failure is handled (200); the
# next is a duplicate.
cat > "$tmp/slow.sh" <<EOF
cat > /dev/null
touch "$tmp/slow.started"
sleep 2
if [ ! -e "$tmp/slow.failed" ]; then touch "$tmp/slow.failed"; exit 1; fi
echo handled >> "$tmp/slow.log"
EOF
start sync --user pipedrive --password s3cret --sync --exec "sh $tmp/slow.sh"
curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary "@$good" $AUTH "$url" > "$tmp/first.status" &
first=$!
i=0
while [ ! -e "$tmp/slow.started" ] && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.05; done
[ -e "$tmp/slow.started" ] && ok || bad "the --exec handler did not start"
# a first attempt of the same event from a second webhook (overlapping subscriptions):
# 200 as a duplicate, no ban point; Pipedrive's retry of the first covers a failure
s=$(post "$url" "$good" $AUTH); check "second webhook's first attempt while the first runs" "$s" 200
grep -q 'PDW_EDUPLICATE' "$tmp/body" && ok || bad "first attempt in flight not a duplicate: $(cat "$tmp/body")"
sed 's/"attempt": *1/"attempt":2/' "$good" > "$tmp/retry2.json"
s=$(post "$url" "$tmp/retry2.json" $AUTH); check "retry while the first attempt runs" "$s" 503
grep -qi '^Retry-After: ' "$tmp/h" && ok || bad "503 in flight without Retry-After"
grep -q 'PDW_EINFLIGHT' "$tmp/body" && ok || bad "503 in flight does not name PDW_EINFLIGHT"
wait "$first"
check "the first attempt failed" "$(cat "$tmp/first.status")" 500
s=$(post "$url" "$tmp/retry2.json" $AUTH); check "retry after the failed first attempt is handled" "$s" 200
grep -q '"ok":true' "$tmp/body" && ok || bad "retry after the failure not accepted: $(cat "$tmp/body")"
check "handled once" "$(cat "$tmp/slow.log" 2>/dev/null | wc -l)" 1
s=$(post "$url" "$tmp/retry2.json" $AUTH); check "retry after the success" "$s" 200
grep -q 'PDW_EDUPLICATE' "$tmp/body" && ok || bad "retry after the success is not a duplicate"
check "still handled once" "$(cat "$tmp/slow.log" 2>/dev/null | wc -l)" 1
kill -TERM "$pid"; wait "$pid"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
