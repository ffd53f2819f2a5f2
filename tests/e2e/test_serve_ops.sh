#!/bin/sh
# pdwebhook serve in operation: the default spool in the state directory (and --memory),
# the configuration file, JSON logs, escaped control bytes, the refusal rate limit, handler
# output in the log, SIGHUP reopening moved files, the admin listener's /healthz and
# /metrics (parsed with python3-prometheus-client). Loopback only; every wait is bounded.
# Usage: test_serve_ops.sh PDWEBHOOK
set -u
bin=$1
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', want '$3'"; fi; }
export XDG_STATE_HOME="$tmp/state" HOME="$tmp/home"
unset PDWEBHOOK_CONFIG STATE_DIRECTORY
export PDWEBHOOK_USER=u PDWEBHOOK_PASSWORD=pw-Secr3t-42
umask 077

# start ARGS...: serve on a free port; $url, $admin (when --admin-listen); stderr in $tmp/err
start() {
  rm -f "$tmp/out"
  "$bin" serve --listen 127.0.0.1:0 "$@" > "$tmp/out" 2>> "$tmp/err" &
  pid=$!
  k=0
  while ! grep -q '^listening on' "$tmp/out" 2>/dev/null; do
    k=$((k + 1))
    if [ $k -gt 200 ] || ! kill -0 "$pid" 2>/dev/null; then
      echo "server did not start:"; cat "$tmp/err"; exit 1
    fi
    sleep 0.05
  done
  url=$(sed -n 's/^listening on //p' "$tmp/out")
  admin=$(sed -n 's|^admin on \(http://[^ ]*\) .*|\1|p' "$tmp/out")
}
stop() { kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""; }
body() { # body ID [ATTEMPT]
  printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"5","id":"ops-%s","webhook_id":"31","attempt":%s,"timestamp":"2026-11-27T10:00:00.000Z"},"data":{"stage_id":2},"previous":{"stage_id":1}}' "$1" "${2:-1}" > "$tmp/b.json"
}
post() { # post URL [curl args] -> status; body in $tmp/rb
  u=$1; shift
  curl -s --max-time 10 -o "$tmp/rb" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$tmp/b.json" "$@" "$u"
}
AUTH="-u u:pw-Secr3t-42"

# ---- durable by default: the spool in $XDG_STATE_HOME/pdwebhook, kept across kill -9 ----
: > "$tmp/err"
start
grep -q "spool: $tmp/state/pdwebhook/spool (the default state directory" "$tmp/err" && ok ||
  bad "default spool not printed: $(cat "$tmp/err")"
check "state directory mode" "$(stat -c %a "$tmp/state/pdwebhook")" 700
body 1
check "accepted into the default spool" "$(post "$url" $AUTH)" 200
kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=""
start
body 1 2
check "retry after kill -9" "$(post "$url" $AUTH)" 200
grep -q PDW_EDUPLICATE "$tmp/rb" && ok || bad "retry after kill -9 is not a duplicate: $(cat "$tmp/rb")"
stop
# under systemd: $STATE_DIRECTORY
STATE_DIRECTORY="$tmp/sd" start
grep -q "spool: $tmp/sd/spool " "$tmp/err" && ok || bad "STATE_DIRECTORY not used"
stop
# --memory: said loudly, and nothing survives
: > "$tmp/err"
start --memory
grep -q 'WARNING: --memory: accepted deliveries are kept in memory only' "$tmp/err" && ok ||
  bad "no --memory warning"
body 2
check "memory: accepted" "$(post "$url" $AUTH)" 200
stop
start --memory
body 2 2
post "$url" $AUTH > /dev/null
grep -q PDW_EDUPLICATE "$tmp/rb" && bad "memory mode kept a delivery across a restart" || ok
stop

# ---- the configuration file ---------------------------------------------------------
printf 'pw-from-file-7\n' > "$tmp/pwfile"
cat > "$tmp/pdw.conf" <<CONF
# pdwebhook serve, as configured
listen = 127.0.0.1:0
user = cfg
password_file = $tmp/pwfile
path = /hook
memory = true
log-format = json
CONF
: > "$tmp/err"
PDWEBHOOK_CONFIG="$tmp/pdw.conf" start
body 3
check "config: path and credentials" "$(post "${url}" -u cfg:pw-from-file-7)" 200
check "config: the file's path" "$(echo "$url" | sed 's|.*/hook$|/hook|')" /hook
check "config: env credentials not used" "$(post "$url" $AUTH)" 401
head -n 1 "$tmp/err" | grep -q '^{"ts":' && ok || bad "config: log-format json not applied"
stop
PDWEBHOOK_CONFIG="$tmp/pdw.conf" start --path /other --log-format text
check "flags override the file" "$(post "$url" -u cfg:pw-from-file-7)" 200
echo "$url" | grep -q '/other$' && ok || bad "--path did not override: $url"
stop
chmod 644 "$tmp/pdw.conf"
"$bin" serve --config "$tmp/pdw.conf" > /dev/null 2> "$tmp/e1"
check "config readable by others: exit" "$?" 2
grep -q "configuration file $tmp/pdw.conf is accessible by group or others (mode 0644)" "$tmp/e1" &&
  ok || bad "config mode message: $(cat "$tmp/e1")"
printf 'listen = 127.0.0.1:0\nworkers = many\n' > "$tmp/bad.conf"; chmod 600 "$tmp/bad.conf"
"$bin" serve --config "$tmp/bad.conf" > /dev/null 2> "$tmp/e2"
check "bad config value: exit" "$?" 2
grep -q "$tmp/bad.conf line 2: --workers takes a number" "$tmp/e2" && ok || bad "bad value: $(cat "$tmp/e2")"
printf 'listne = 127.0.0.1:0\n' > "$tmp/bad.conf"
"$bin" serve --config "$tmp/bad.conf" > /dev/null 2> "$tmp/e3"
check "unknown key: exit" "$?" 2
grep -q "line 1: unknown key 'listne'" "$tmp/e3" && ok || bad "unknown key: $(cat "$tmp/e3")"
# a secret on the command line: a warning that points to the safer ways, without the value
"$bin" serve --memory --user x --password 'hunter2-cmdline' --listen 127.0.0.1:99999 2> "$tmp/e4"
grep -q 'warning: --password on the command line is visible to every user' "$tmp/e4" && ok ||
  bad "no warning for --password: $(cat "$tmp/e4")"
grep -q hunter2-cmdline "$tmp/e4" && bad "the password was printed" || ok
printf 'old:pw1\n' > "$tmp/creds"; chmod 644 "$tmp/creds"
: > "$tmp/err"
start --memory --credentials "$tmp/creds"
grep -q "warning: --credentials $tmp/creds is readable by group or others" "$tmp/err" && ok ||
  bad "no warning for a readable --credentials"
stop

# ---- JSON logs, escaped control bytes, a 400's message and offset ------------------------
: > "$tmp/err"
start --memory --log-format json
body 4
post "$url" $AUTH > /dev/null
post "$url" -u u:wrong > /dev/null
printf '{"meta":{"version":"2.0",' > "$tmp/b.json"
check "truncated body" "$(post "$url" $AUTH)" 400
port=$(echo "$url" | sed 's|.*:\([0-9]*\)/.*|\1|')
python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"POST /x\x1b[2J\x01\xff\\ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
s.recv(100)
s.close()
PY
stop
python3 - "$tmp/err" <<'PY' > "$tmp/jcheck" 2>&1
import json, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
reqs = []
for raw in lines:
    if not raw:
        continue
    o = json.loads(raw)                      # every line one JSON object
    assert "ts" in o and "level" in o and "msg" in o, o
    if o["msg"] == "request":
        reqs.append(o)
for r in reqs:
    for k in ("method", "path", "status", "reason", "duration_ms", "peer"):
        assert k in r, (k, r)
ok = [r for r in reqs if r["status"] == 200]
assert ok and ok[0]["webhook_id"] == "31" and ok[0]["delivery_key"].startswith("2:deal:change:ops-4"), ok
bad = [r for r in reqs if r["status"] == 400]
assert bad and bad[0]["error"] and bad[0]["offset"] >= 0, bad
esc = [r for r in reqs if r["path"].startswith("/x")]
assert esc and esc[0]["path"] == "/x\\x1b[2J\\x01\\xff\\x5c", esc
print("json ok")
PY
grep -q '^json ok$' "$tmp/jcheck" && ok || bad "JSON log: $(cat "$tmp/jcheck")"
grep -q pw-Secr3t-42 "$tmp/err" && bad "the password is in the JSON log" || ok
# text: the same request line escaped
: > "$tmp/err"
start --memory
port=$(echo "$url" | sed 's|.*:\([0-9]*\)/.*|\1|')
python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"POST /x\x1b[2J\x01\xff\rforged HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
s.recv(100)
s.close()
PY
stop
check "no raw control byte in the text log" "$(tr -d '\n' < "$tmp/err" | LC_ALL=C tr -d '\040-\176' | wc -c)" 0
grep -qF 'POST /x\x1b[2J\x01\xff' "$tmp/err" && ok || bad "escaped path not in the log: $(cat "$tmp/err")"

# ---- a wrong-password flood: at most 10 lines a second, the rest counted ------------------
: > "$tmp/err"
start --memory
body 5
python3 - "$url" <<'PY'
import base64, http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
body = open(sys.argv[0] if False else "/dev/null", "rb").read()
auth = "Basic " + base64.b64encode(b"u:wrong").decode()
for i in range(300):
    c.request("POST", u.path, body=b"{}", headers={"Content-Type": "application/json", "Authorization": auth})
    c.getresponse().read()
PY
sleep 2.5 # the "suppressed" line of the last second comes with the next tick
stop
logged=$(grep -c ' 401 PDW_EAUTH' "$tmp/err")
suppressed=$(sed -n 's/.*suppressed \([0-9]*\) similar lines (401 .*/\1/p' "$tmp/err" | awk '{s += $1} END {print s + 0}')
check "every refusal logged or counted ($logged + $suppressed)" $((logged + suppressed)) 300
[ "$suppressed" -gt 0 ] && ok || bad "nothing suppressed: $logged lines"

# ---- handler output: prefixed with the spool id, capped -----------------------------------
: > "$tmp/err"
start --spool "$tmp/s-exec" --exec 'cat >/dev/null; echo hello-from-handler; head -c 300000 /dev/zero | tr "\0" x; echo' \
  --admin-listen 127.0.0.1:0
body 6
check "exec: accepted" "$(post "$url" $AUTH)" 200
k=0
while ! grep -q 'more bytes of output dropped' "$tmp/err" && [ $k -lt 400 ]; do k=$((k + 1)); sleep 0.05; done
grep -q '^[^ ]* exec spool_id=[0-9][0-9]*: hello-from-handler$' "$tmp/err" && ok ||
  bad "handler line not prefixed: $(head -c 2000 "$tmp/err")"
grep -q 'exec spool_id=[0-9]*: [0-9]* more bytes of output dropped' "$tmp/err" && ok || bad "no drop line"
size=$(wc -c < "$tmp/err")
[ "$size" -lt 120000 ] && ok || bad "handler output not capped: log is $size bytes"

# ---- /metrics and /healthz on the admin listener ------------------------------------------
[ -n "$admin" ] && ok || bad "no admin line"
for i in 7 8; do body $i; post "$url" $AUTH > /dev/null; done
body 8 2; post "$url" $AUTH > /dev/null                       # a duplicate
post "$url" -u u:wrong > /dev/null                            # a 401
k=0
while [ "$(curl -s "${admin}healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["handled"])')" != 3 ] && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
curl -s "${admin}healthz" > "$tmp/h.json"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["time"].endswith("Z"); w=o["ban_model"]["webhooks"][0]; assert w["last_success_time"].endswith("Z"), w' "$tmp/h.json" &&
  ok || bad "healthz without RFC 3339 times: $(cat "$tmp/h.json")"
check "no /healthz on the delivery port with --admin-listen" \
  "$(curl -s -o /dev/null -w '%{http_code}' "${url}healthz")" 405
curl -s -D "$tmp/mh" "${admin}metrics" > "$tmp/metrics"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$tmp/mh" && ok || bad "metrics content type"
if /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null; then
  /usr/bin/python3 - "$tmp/metrics" <<'PY' > "$tmp/mcheck" 2>&1
import sys
from prometheus_client.parser import text_string_to_metric_families
v = {}
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        v[(s.name, tuple(sorted(s.labels.items())))] = s.value
def get(name, **labels):
    return v.get((name, tuple(sorted(labels.items()))))
assert get("pdwebhook_deliveries_accepted_total") == 3, v
assert get("pdwebhook_deliveries_duplicate_total") == 1
assert get("pdwebhook_requests_total", status="200", reason="PDW_OK") == 3
assert get("pdwebhook_requests_total", status="200", reason="PDW_EDUPLICATE") == 1
assert get("pdwebhook_requests_total", status="401", reason="PDW_EAUTHWRONG") == 1, [k for k in v if k[0] == "pdwebhook_requests_total"]
assert get("pdwebhook_handled_total") == 3
assert get("pdwebhook_spool_pending") == 0
assert get("pdwebhook_spool_appended_total") == 3
assert get("pdwebhook_spool_flushes_total") >= 1
assert get("pdwebhook_spool_bytes") > 0
assert get("pdwebhook_requests_in_flight") == 0
assert get("pdwebhook_dead_letters_total") == 0
assert get("pdwebhook_webhook_failed_first_attempts", webhook_id="31") == 0
assert get("pdwebhook_webhook_deliveries_total", webhook_id="31") == 4
assert get("pdwebhook_webhook_banned", webhook_id="31") == 0
assert get("pdwebhook_webhook_last_success_timestamp_seconds", webhook_id="31") > 1.7e9
print("metrics ok")
PY
  grep -q '^metrics ok$' "$tmp/mcheck" && ok || bad "metrics: $(cat "$tmp/mcheck")"
elif [ "${CI:-}" = true ]; then
  bad "python3-prometheus-client is missing (apt-get install python3-prometheus-client)"
else
  echo "SKIP: python3-prometheus-client not installed: /metrics not parsed"
fi
stop
check "exit 0" "$rc" 0

# ---- SIGHUP: the log, --output and the dead letters reopened after logrotate moved them ----
start --spool "$tmp/s-hup" --log-file "$tmp/serve.log" --output "$tmp/events.jsonl" \
  --exec false --max-attempts 1 --dead-letter "$tmp/dead.jsonl"
body 10; post "$url" $AUTH > /dev/null
k=0; while [ ! -s "$tmp/dead.jsonl" ] && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
mv "$tmp/serve.log" "$tmp/serve.log.1"
mv "$tmp/events.jsonl" "$tmp/events.jsonl.1"
mv "$tmp/dead.jsonl" "$tmp/dead.jsonl.1"
kill -HUP "$pid"
k=0; while ! grep -q 'SIGHUP: reopened' "$tmp/serve.log" 2>/dev/null && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
kill -0 "$pid" 2>/dev/null && ok || bad "SIGHUP killed the server"
grep -q "SIGHUP: reopened the log $tmp/serve.log, --output $tmp/events.jsonl, the dead letters $tmp/dead.jsonl" "$tmp/serve.log" && ok ||
  bad "no reopen line: $(cat "$tmp/serve.log" 2>/dev/null)"
body 11; post "$url" $AUTH > /dev/null
k=0; while [ ! -s "$tmp/dead.jsonl" ] && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.05; done
check "old log keeps the first request" "$(grep -c 'POST / 200 PDW_OK.*ops-10' "$tmp/serve.log.1")" 1
check "new log has the second" "$(grep -c 'POST / 200 PDW_OK.*ops-11' "$tmp/serve.log")" 1
check "new --output file" "$(grep -c 'ops-11' "$tmp/events.jsonl")" 1
check "old --output file" "$(grep -c 'ops-10' "$tmp/events.jsonl.1")" 1
check "new dead-letter file" "$(grep -c 'ops-11' "$tmp/dead.jsonl")" 1
check "old dead-letter file" "$(grep -c 'ops-10' "$tmp/dead.jsonl.1")" 1
check "log file mode" "$(stat -c %a "$tmp/serve.log")" 600
stop
check "exit 0 after SIGHUP and SIGTERM" "$rc" 0

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
