#!/bin/sh
# pdwebhook inspect: the JSON-line contract over every real fixture, checked against
# tests/fixtures/expected.tsv (the independent oracle). Usage: test_inspect.sh PDWEBHOOK FIXTURES
set -u
bin=$1
fx=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

cd "$fx" || exit 1
"$bin" inspect *.json *.txt > "$tmp/all" 2> "$tmp/err"
rc=$?
[ "$rc" -eq 1 ] && ok || bad "exit status $rc with invalid files among them (want 1)"
[ "$(grep -c '"ok":true' "$tmp/all")" -eq 48 ] && ok || bad "48 accepted lines expected"
[ "$(grep -c '"ok":false' "$tmp/all")" -eq 3 ] && ok || bad "3 refused lines expected"

# every accepted file: the canonical fields equal the oracle's
tab=$(printf '\t')
grep -v '^#' expected.tsv | while IFS="$tab" read -r file result version event delivered entity_id event_id webhook_id company_id user_id attempt ts merge bulk merged changed; do
  line=$(grep -F "\"file\":\"$file\"" "$tmp/all")
  if [ "$result" != PDW_OK ]; then
    for want in '"ok":false' "\"error\":\"$result\"" '"http_status":400' '"message":"'; do
      case $line in *"$want"*) ;; *) echo "FAIL: $file lacks $want"; echo x >> "$tmp/failed" ;; esac
    done
    continue
  fi
  q() { [ "$1" = - ] && echo null || echo "\"$1\""; }
  b() { [ "$1" = 1 ] && echo true || echo false; }
  for want in "\"version\":$version" "\"event\":\"$event\"" "\"delivered\":\"$delivered\"" \
              "\"entity_id\":$(q "$entity_id")" "\"event_id\":$(q "$event_id")" \
              "\"webhook_id\":$(q "$webhook_id")" "\"company_id\":$(q "$company_id")" \
              "\"user_id\":$(q "$user_id")" "\"attempt\":$attempt" "\"timestamp_ms\":$ts" \
              "\"merge\":$(b "$merge")" "\"bulk\":$(b "$bulk")" \
              "\"merged_from_id\":$(q "${merged%|*}")" "\"merged_to_id\":$(q "${merged#*|}")" \
              '"delivery_key":"' '"changed":[' '"action":"' '"object":"'; do
    case $line in *"$want"*) ;; *) echo "FAIL: $file: missing $want in $line"; echo x >> "$tmp/failed" ;; esac
  done
done
[ -s "$tmp/failed" ] && bad "$(wc -l < "$tmp/failed") field mismatches" || ok

# only valid files: exit 0; a missing file: exit 2; stdin; --pretty
"$bin" inspect v2-change.deal-pipedrive-docs.json v1-added.deal-pipedream.json > /dev/null
[ $? -eq 0 ] && ok || bad "valid files should exit 0"
"$bin" inspect /nonexistent/file.json > /dev/null 2>&1
[ $? -eq 2 ] && ok || bad "unreadable file should exit 2"
"$bin" inspect - < v2-delete.deal-pipedrive-docs.json | grep -q '"file":"-","ok":true,"version":2,"event":"delete.deal"' && ok || bad "stdin"
[ "$("$bin" inspect --pretty v2-delete.deal-pipedrive-docs.json | wc -l)" -gt 10 ] && ok || bad "--pretty is not multi-line"
printf '{"meta":{"version":"2.0","action":"create","entity":"deal"},"a":1,"a":2}' > "$tmp/dup.json"
"$bin" inspect "$tmp/dup.json" | grep -q '"error":"PDW_EDUPKEY"' && ok || bad "duplicate keys"

# what "changed" means (docs/API.md, "Changed fields"); bodies in derived/ (derived/README.md)
changed() { "$bin" inspect "$1" | sed -n 's/.*"changed":\(\[[^]]*\]\).*/\1/p'; }
# v1: previous and current differ only in which keys they carry -> nothing changed
[ "$(changed derived/v1-updated.activity-keys-only.json)" = '[]' ] && ok || bad "v1 key sets reported as changes: $(changed derived/v1-updated.activity-keys-only.json)"
[ "$(changed derived/v1-updated.activity-keysets.json)" = '["done","marked_as_done_time","update_time"]' ] && ok || bad "v1 activity: $(changed derived/v1-updated.activity-keysets.json)"
# v1: a currency-only change of a monetary custom field -> custom_fields.<hash>
[ "$(changed derived/v1-updated.deal-currency.json)" = '["update_time","custom_fields.d4de1c1518b4531717c676029a45911c340390a6"]' ] && ok || bad "v1 currency: $(changed derived/v1-updated.deal-currency.json)"
# v2: a previous entry equal to data (next_activity_id: null in both) is not reported
[ "$(changed v2-change.lead-pipedrive-docs.json)" = '["is_archived","update_time","value"]' ] && ok || bad "v2 lead: $(changed v2-change.lead-pipedrive-docs.json)"
# v1 merge: previous is the record merged away -> no field changes
[ "$(changed v1-merged.organization-django_pipedrive.json)" = '[]' ] && ok || bad "v1 merge: $(changed v1-merged.organization-django_pipedrive.json)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
