#!/bin/sh
# End-to-end test of a server example's durable mode (--spool DIR, pdwebhook/intake.h):
# distinct deliveries posted with curl from four senders at once, the server killed with
# SIGKILL in the middle, restarted on the same journal. Every delivery that was answered
# 200 must be handed on (a "handled" line in DIR/handled.log, written by the worker) in the
# first or the second run, and its retry must be a duplicate after the restart.
#   sh tests/e2e/test_example_durable.sh PROGRAM
[ $# -eq 1 ] || { echo "usage: $0 PROGRAM" >&2; exit 2; }
. "$(dirname "$0")/lib.sh"
prog=$1
spool=$E2E_TMP/spool
N=100 # per sender

body() { # body I [ATTEMPT]: a distinct v2 event
    printf '{"meta":{"version":"2.0","action":"change","entity":"deal","entity_id":"%d","id":"dur-%d","attempt":%d,"timestamp":"2026-11-27T10:00:00.000Z"},"data":{"stage_id":2},"previous":{"stage_id":1}}' \
        $(($1 % 7)) "$1" "${2:-1}"
}

# send_range FROM TO URL: one delivery after the other; the status of I in st.I
send_range() {
    i=$1
    while [ "$i" -lt "$2" ]; do
        body "$i" >"$E2E_TMP/b.$i"
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 -u "$E2E_USER:$E2E_PASSWORD" \
            -H 'Content-Type: application/json' --data-binary @"$E2E_TMP/b.$i" "$3" \
            >"$E2E_TMP/st.$i"
        i=$((i + 1))
    done
}

acked() { cat "$E2E_TMP"/st.* 2>/dev/null | grep -c '^200$'; }

if ! start_server "$E2E_TMP/run1.log" "$prog" --port 0 --spool "$spool"; then
    check "server starts" listening none
    finish
fi
url=$E2E_URL
senders=""
for k in 0 1 2 3; do
    send_range $((k * N)) $((k * N + N)) "$url" &
    senders="$senders $!"
done
# SIGKILL in the middle: once 40 deliveries were acknowledged (at most 10 s)
k=0
while [ "$(acked)" -lt 40 ] && [ $k -lt 200 ]; do k=$((k + 1)); sleep 0.05; done
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=
for p in $senders; do wait "$p"; done # the rest fail at once: nobody listens
n_acked=$(acked)
echo "# $n_acked of $((4 * N)) deliveries acknowledged before the kill"
check "acknowledged before the kill" yes "$([ "$n_acked" -ge 40 ] && echo yes || echo no)"
check "killed in the middle" yes "$([ "$n_acked" -lt $((4 * N)) ] && echo yes || echo no)"

if ! start_server "$E2E_TMP/run2.log" "$prog" --port 0 --spool "$spool"; then
    check "server restarts on the journal" listening none
    finish
fi
# every acknowledged delivery handed on, in run 1 or run 2 (bounded wait for the worker)
missing_count() {
    m=0
    for f in "$E2E_TMP"/st.*; do
        [ "$(cat "$f")" = 200 ] || continue
        i=${f##*.}
        grep -q "^handled change\.deal [0-9]* .*:dur-$i:" "$spool/handled.log" ||
            m=$((m + 1))
    done
    echo "$m"
}
echo "# $(sed -n 's/^handing on \([0-9]*\) .*/\1/p' "$E2E_TMP/run2.log.err") journaled deliveries handed on at the restart"
k=0
while [ "$(missing_count)" != 0 ] && [ $k -lt 100 ]; do k=$((k + 1)); sleep 0.1; done
check "every acknowledged delivery handed on after the restart" 0 "$(missing_count)"
# nothing was handed on that was not accepted (a delivery refused is never handled)
handled_ids=$(sed -n 's/^handled change\.deal [0-9]* .*:dur-\([0-9]*\):.*/\1/p' "$spool/handled.log" | sort -un)
stray=0
for i in $handled_ids; do
    s=$(cat "$E2E_TMP/st.$i" 2>/dev/null)
    # 000: the answer was lost with the kill (the delivery may be durable all the same)
    [ "$s" = 200 ] || [ "$s" = 000 ] || stray=$((stray + 1))
done
check "nothing handed on that was refused" 0 "$stray"

# the retry of an acknowledged delivery is a duplicate: its key came back from the journal
first=$(grep -l '^200$' "$E2E_TMP"/st.* | head -n 1)
i=${first##*.}
body "$i" 2 >"$E2E_TMP/retry.json"
check "retry after the restart: 200" 200 "$(post "$E2E_TMP/retry.json")"
check "retry after the restart: a duplicate" yes "$(body_has PDW_EDUPLICATE)"

stop_server
check "exits 0 on SIGTERM" 0 "$SERVER_STATUS"
finish
