#!/bin/sh
# pdwebhook consume: two consumers in one group, one killed (SIGKILL) mid-way: every entry
# is handled, each once (the survivor takes over what the dead one had been handed, with
# XAUTOCLAIM after --claim-idle-ms, and finds the dead one's command finished through the
# shared --state markers). Then retries and dead letters in a second group, and a clear
# error for a wrong password.
# Usage: test_redis_consume.sh PDWEBHOOK
bin=$1
. "$(dirname "$0")/test_redis_common.sh"

redis_start
serve_start s --spool "$tmp/ss" --redis "$RURL"
N=200
i=0
while [ $i -lt $N ]; do
  body $i con > "$tmp/b.json"
  post "$url_s" "$tmp/b.json" > /dev/null
  i=$((i + 1))
done
wait_until '[ "$(rcli xlen pdwebhook:events)" = $N ]'
check "stream filled" "$(rcli xlen pdwebhook:events)" $N
serve_stop "$pid_s"; check "serve stopped" "$rc" 0

consume() { # consume NAME GROUP ARGS...
  cname=$1 group=$2; shift 2
  "$bin" consume --redis "$RURL" --group "$group" --consumer "$cname" --claim-idle-ms 1000 \
    --block-ms 200 "$@" > "$tmp/$cname.out" 2> "$tmp/$cname.err" &
  eval "cpid_$cname=$!"
  pids="$pids $!"
}
handled() { if [ -f "$tmp/handled.jsonl" ]; then wc -l < "$tmp/handled.jsonl" | tr -d ' '; else echo 0; fi; }
pending() { rcli xpending pdwebhook:events "$1" | head -n 1; }

H="sleep 0.01; cat >> $tmp/handled.jsonl"
consume c1 g --exec "$H" --state "$tmp/state"
consume c2 g --exec "$H" --state "$tmp/state"
wait_until '[ "$(handled)" -ge 60 ]'
kill -KILL "$cpid_c1"
wait "$cpid_c1" 2>/dev/null
echo "# c1 killed after $(handled) entries were handled"
wait_until '[ "$(handled)" -ge $N ] && [ "$(pending g)" = 0 ]' 600
check "every entry handled" "$(sed -n 's/.*"stream_id":"\([0-9-]*\)".*/\1/p' "$tmp/handled.jsonl" | sort -u | wc -l | tr -d ' ')" $N
check "each once" "$(handled)" $N
check "nothing pending in the group" "$(pending g)" 0
check "every line a whole event" "$(grep -c '"body":{"meta"' "$tmp/handled.jsonl")" $N
kill -TERM "$cpid_c2"
wait "$cpid_c2"
check "c2 stops on SIGTERM" "$?" 0
taken=$(sed -n 's/.* \([0-9]*\) taken over$/\1/p' "$tmp/c2.err")
[ "${taken:-0}" -gt 0 ] && ok "c2 took over $taken of c1's entries" || bad "c2 took nothing over: $(tail -n 2 "$tmp/c2.err")"
# Markers: only <id>.json/.pid/.done files. A consumer removes an entry's markers right
# after its XACK, so the SIGKILLed c1 can leave at most the set of the one entry it had
# just acknowledged (killed between the XACK and the unlink): harmless, as that entry is
# never handed out again. Anything else left behind is a bug.
check "markers: only marker files" "$(ls "$tmp/state" | grep -vc '\.json$\|\.pid$\|\.done$')" 0
left=$(ls "$tmp/state" | sed 's/\.[a-z]*$//' | sort -u)
nleft=$(printf '%s' "$left" | grep -c .)
if [ "$nleft" -eq 0 ]; then
  ok "markers cleaned"
elif [ "$nleft" -eq 1 ] && [ "$(rcli xpending pdwebhook:events g "$left" "$left" 1 | grep -c .)" = 0 ]; then
  ok "markers cleaned but those of entry $left, acknowledged by c1 right before it was killed"
else
  bad "markers left for $nleft entries: $(echo $left)"
fi

# retries and dead letters: entity 3 always fails
consume d1 g2 --exec 'if grep -q "\"entity_id\":\"3\""; then exit 1; fi' --max-attempts 2 \
  --backoff-ms 5 --dead-letter "$tmp/dead.jsonl" --quiet
wait_until '[ "$(pending g2)" = 0 ] && [ -f "$tmp/dead.jsonl" ] && [ "$(wc -l < "$tmp/dead.jsonl")" -ge 16 ]' 600
check "dead letters" "$(wc -l < "$tmp/dead.jsonl" | tr -d ' ')" 16
check "dead letters carry the attempts" "$(grep -c '"attempts":2' "$tmp/dead.jsonl")" 16
check "dead letters carry the error" "$(grep -c '"error":"command exited with 1"' "$tmp/dead.jsonl")" 16
check "g2: nothing pending" "$(pending g2)" 0
kill -TERM "$cpid_d1"; wait "$cpid_d1"
check "d1 stops" "$?" 0

# a consumer waits out an outage
consume e1 g3 --exec "cat >> $tmp/g3.jsonl"
wait_until '[ -f "$tmp/g3.jsonl" ] && [ "$(wc -l < "$tmp/g3.jsonl")" -ge $N ]'
redis_stop
sleep 0.5
kill -0 "$cpid_e1" 2>/dev/null && ok "consumer survives the outage" || bad "consumer died with Redis"
redis_start
rcli xadd pdwebhook:events '*' delivery_key k-late event change.deal body "$(body 5000 late)" > /dev/null
wait_until '[ "$(wc -l < "$tmp/g3.jsonl")" -ge $((N + 1)) ]'
check "handled after the outage" "$(wc -l < "$tmp/g3.jsonl" | tr -d ' ')" $((N + 1))
kill -TERM "$cpid_e1"; wait "$cpid_e1"

# errors
rcli config set requirepass 'pw-c-1' > /dev/null
"$bin" consume --redis "redis://:nope-2@127.0.0.1:$RPORT" --group g --consumer x --exec true \
  > /dev/null 2> "$tmp/e1"
check "wrong password: exit 2" "$?" 2
grep -q "refused the credentials" "$tmp/e1" && ok "wrong password said" || bad "message: $(cat "$tmp/e1")"
grep -q "nope-2" "$tmp/e1" && bad "password printed" || ok "password not printed"
"$bin" consume --redis "$RURL" --group g --exec true > /dev/null 2> "$tmp/e2"
check "missing --consumer: exit 2" "$?" 2
finish
