#!/bin/sh
# Usage errors of every pdwebhook command (tools/options.c): each exits 2 with a message
# that names the option (and the value, unless it is a secret) and the reason; and the
# forms every command accepts (--opt VALUE, --opt=VALUE, help CMD). Nothing here listens
# on more than a loopback port for a moment.
# Usage: test_cli.sh PDWEBHOOK
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
export XDG_STATE_HOME="$tmp/state" HOME="$tmp/home"
unset PDWEBHOOK_CONFIG STATE_DIRECTORY PDWEBHOOK_USER PDWEBHOOK_PASSWORD

# mistake WHAT WANT-IN-MESSAGE ARGS...: exit 2, and the message says WANT (fixed string)
mistake() {
  what=$1; want=$2; shift 2
  timeout 10 "$bin" "$@" > "$tmp/out" 2> "$tmp/err" < /dev/null
  rc=$?
  if [ "$rc" != 2 ]; then bad "$what: exit $rc, want 2 ($(cat "$tmp/err"))"; return; fi
  if grep -qF -- "$want" "$tmp/err"; then ok; else bad "$what: no '$want' in: $(cat "$tmp/err")"; fi
  [ -s "$tmp/out" ] && bad "$what: printed on stdout: $(cat "$tmp/out")" || ok
}
S="serve --memory --insecure-no-auth"

# ports: 99999 used to listen on 34463, 65536 on a random port
mistake "--listen port 99999" "--listen '127.0.0.1:99999': the port must be" $S --listen 127.0.0.1:99999
mistake "--listen port 65536" "--listen '127.0.0.1:65536'" $S --listen 127.0.0.1:65536
mistake "--listen=port 65536" "--listen '127.0.0.1:65536'" $S --listen=127.0.0.1:65536
mistake "--listen without port" "--listen 'localhost': expected HOST:PORT" $S --listen localhost
mistake "--listen port not a number" "--listen '127.0.0.1:http'" $S --listen 127.0.0.1:http
mistake "--admin-listen port" "--admin-listen '127.0.0.1:70000'" $S --admin-listen 127.0.0.1:70000
mistake "--listen elsewhere" "--listen '192.0.2.1:8080': cannot listen there: Cannot assign requested address" $S --listen 192.0.2.1:8080
# --path pipedrive answered 404 to every delivery
mistake "--path without /" "--path 'pipedrive': a path starts with '/'" $S --path pipedrive
# numbers: the option, the range, the value, the reason
mistake "--workers 0" "--workers takes a number from 1 to 256, not '0' (too small)" $S --workers 0
mistake "--workers=abc" "--workers takes a number from 1 to 256, not 'abc' (not a number)" $S --workers=abc
mistake "--threads 1000" "--threads takes a number from 1 to 256, not '1000' (too large)" $S --threads 1000
mistake "--max-body unit" "--max-body takes a size" $S --max-body 2X
mistake "--max-body 5G" "not '5G' (too large)" $S --max-body 5G
mistake "--spool-max 1k" "--spool-max takes a size from 4096" $S --spool-max 1k
mistake "--exec-timeout 0" "--exec-timeout takes a number of seconds from 1 to 86400" $S --exec-timeout 0
mistake "--exec-timeout 2d" "not '2d' (too large)" $S --exec-timeout 2d
mistake "--spool-retain 1500ms" "not a whole number of seconds" $S --spool-retain 1500ms
mistake "--backoff-ms 2w" "unknown unit 'w'" $S --backoff-ms 2w
mistake "--sync-failure-status 700" "--sync-failure-status takes a number from 200 to 599" $S --sync-failure-status 700
mistake "--dedup-capacity 10" "--dedup-capacity takes a number from 1024" $S --dedup-capacity 10
mistake "--segment-size 1k" "--segment-size takes a size from 65536" $S --segment-size 1k
mistake "--inflight-lease -1" "--inflight-lease takes a number" $S --inflight-lease -1
mistake "huge number" "(too large)" $S --workers 99999999999999999999999
mistake "--log-format xml" "--log-format 'xml': text or json" $S --log-format xml
mistake "--log-level loud" "--log-level 'loud': error, warn, info or debug" $S --log-level loud
# unknown options, missing values, values given to flags
mistake "unknown option" "unknown option '--bogus'" $S --bogus
mistake "unknown option with value" "unknown option '--passwd'" $S --passwd=s3cret-x
grep -q 's3cret-x' "$tmp/err" && bad "the value of an unknown option was printed" || ok
mistake "missing value" "--output needs a value" $S --output
mistake "flag with value" "--sync takes no value" $S --sync=yes
mistake "stray argument" "unexpected argument 'extra'" $S extra
# files: the option, the file, strerror
mistake "--spool in /proc" "--spool /proc/nope: cannot create it: No such file or directory" serve --insecure-no-auth --spool /proc/nope
mistake "--tls-cert missing" "--tls-cert $tmp/none.pem: cannot read it: No such file or directory" \
  $S --tls-cert "$tmp/none.pem" --tls-key "$tmp/none.pem"
echo x > "$tmp/cert.pem"
mistake "--tls-key missing" "--tls-key $tmp/none.pem: cannot read it: No such file or directory" \
  $S --tls-cert "$tmp/cert.pem" --tls-key "$tmp/none.pem"
mistake "--credentials missing" "--credentials $tmp/none: cannot read it: No such file" \
  serve --memory --credentials "$tmp/none"
printf 'pw\n' > "$tmp/pw"; chmod 644 "$tmp/pw"
mistake "--password-file readable by others" "$tmp/pw is accessible by group or others (mode 0644)" \
  serve --memory --user u --password-file "$tmp/pw"
mistake "--password-file missing" "--password-file $tmp/nope: No such file or directory" \
  serve --memory --user u --password-file "$tmp/nope"
mistake "--log-file in a missing directory" "--log-file $tmp/no/dir/log: No such file or directory" \
  $S --log-file "$tmp/no/dir/log"
mistake "--config missing" "configuration file $tmp/none.conf: No such file or directory" \
  $S --config "$tmp/none.conf"
mistake "--memory with --spool" "--memory" serve --insecure-no-auth --memory --spool "$tmp/sp"
mistake "--user without --password" "--user and --password go together" serve --memory --user u
# secrets: never printed, even when wrong
mistake "bad --redis" "--redis" serve --insecure-no-auth --memory --redis 'redis://:hunter2@x' \
  --stream s --redis-prefix
grep -q hunter2 "$tmp/err" && bad "a --redis URL was printed" || ok

# the other commands, the same parser
mistake "send: --timeout abc" "--timeout takes a number from 0.001 to 86400, not 'abc'" \
  send --timeout abc http://127.0.0.1:1/ "$tmp/pw"
mistake "send: --time-scale=-1" "--time-scale takes a number from 0 to" \
  send --time-scale=-1 http://127.0.0.1:1/ "$tmp/pw"
mistake "send: URL" "URL 'ftp://x': must start with http:// or https://" send ftp://x "$tmp/pw"
mistake "send: unknown" "unknown option '--bogus'" send --bogus http://127.0.0.1:1/ "$tmp/pw"
mistake "consume: --count 0" "--count takes a number from 1 to 1000, not '0'" consume --count 0
mistake "consume: required" "--redis is required" consume --group g --consumer c --exec true
mistake "subscriptions: --timeout 0" "--timeout takes a number of seconds from 1 to 3600" \
  subscriptions plan --timeout 0
mistake "subscriptions: unknown" "unknown option '--bogus'" subscriptions plan --bogus
mistake "deadletter: --id x" "--id takes a number" deadletter replay --spool "$tmp/sp" --id x
mistake "deadletter: no command" "a command is needed" deadletter --spool "$tmp/sp"
mistake "deadletter: unknown command" "unknown command 'purge'" deadletter purge --spool "$tmp/sp"
mistake "inspect: unknown" "unknown option '--ugly'" inspect --ugly x.json
mistake "inspect: no file" "usage: pdwebhook inspect" inspect --pretty
mistake "unknown command" "unknown command 'serv'" serv

# help: from the table, on stdout, exit 0, both ways, for every command
for c in serve inspect send deadletter subscriptions consume; do
  "$bin" "$c" --help > "$tmp/h1" 2>&1; r1=$?
  "$bin" help "$c" > "$tmp/h2" 2>&1; r2=$?
  if grep -q "was built without" "$tmp/h1"; then continue; fi
  [ "$r1" = 0 ] && [ "$r2" = 0 ] && cmp -s "$tmp/h1" "$tmp/h2" && grep -q "^usage: pdwebhook $c" "$tmp/h1" \
    && ok || bad "help of $c: exit $r1/$r2, or the two differ"
done
# --opt=VALUE and --opt VALUE alike (inspect's --pretty is a flag: --pretty=x is refused)
mistake "flag=value" "--pretty takes no value" inspect --pretty=1 x.json

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
