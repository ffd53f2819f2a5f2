#!/bin/sh
# An installed pdwebhook serve, end to end: start it on a free loopback port with a spool
# and credentials from the environment, deliver one real fixture with Basic auth (200),
# refuse one without (401), read /healthz, stop it with SIGTERM (exit 0).
# Usage: smoke_serve.sh PDWEBHOOK FIXTURES_DIR
# Used by tests/package/test_deb.sh (on the unpacked .debs) and by the autopkgtest
# debian/tests/serve (on the installed package). Loopback only; every wait is bounded.
set -u
bin=$1
fx=$2
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pdw-smoke.XXXXXX") || exit 1
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

export PDWEBHOOK_USER=pipedrive PDWEBHOOK_PASSWORD="smoke-$$-secret"
"$bin" serve --listen 127.0.0.1:0 --spool "$tmp/spool" --output "$tmp/events.jsonl" \
  >"$tmp/out" 2>"$tmp/err" &
pid=$!
url=
i=0
while [ $i -lt 100 ]; do # 10 s
  url=$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9]*/\)$|\1|p' "$tmp/out")
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
  i=$((i + 1))
done
if [ -z "$url" ]; then
  bad "serve did not say 'listening on' within 10 s; stderr:"; cat "$tmp/err"
  echo "$pass passed, $fail failed"
  exit 1
fi
ok "serve listens on $url"

body=$fx/v2-change.deal-pipedrive-docs.json
post() {
  curl -s -m 10 -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$body" "$@" "$url"
}
s=$(post -u "$PDWEBHOOK_USER:$PDWEBHOOK_PASSWORD")
[ "$s" = 200 ] && ok "delivery with Basic auth: 200" || bad "delivery with Basic auth: got $s, want 200"
s=$(post)
[ "$s" = 401 ] && ok "delivery without credentials: 401" || bad "without credentials: got $s, want 401"
h=$(curl -s -m 10 -o "$tmp/health" -w '%{http_code}' "${url}healthz")
if [ "$h" = 200 ] && grep -q '"accepted":1' "$tmp/health"; then
  ok "/healthz: 200, one accepted"
else
  bad "/healthz: got $h: $(cat "$tmp/health")"
fi
i=0
while [ "$(wc -l <"$tmp/events.jsonl" 2>/dev/null || echo 0)" -lt 1 ] && [ $i -lt 100 ]; do
  sleep 0.1
  i=$((i + 1))
done
[ "$(wc -l <"$tmp/events.jsonl" 2>/dev/null || echo 0)" -eq 1 ] && ok "event handed on to --output" ||
  bad "the event did not reach --output within 10 s"

kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$pid" 2>/dev/null; then
  bad "serve still runs 10 s after SIGTERM"
else
  wait "$pid"
  rc=$?
  [ "$rc" = 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $rc"
fi
pid=
if grep -q "$PDWEBHOOK_PASSWORD" "$tmp/out" "$tmp/err"; then
  bad "the password appears in serve's output"
else
  ok "no secret in serve's output"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
