#!/bin/sh
# dist/pdwebhook.service: systemd-analyze verify (with the man page it points to), the
# offline security score, the directives docs/OPERATIONS.md promises, and the
# ExecStartPre credential check run by hand.
# Usage: test_unit.sh SOURCE_DIR PDWEBHOOK MAN_DIR
# Exit 77 (skipped) when systemd-analyze is absent, except with CI=true: there it must run.
set -u
src=$1
bin=$2
mandir=$3
unit=$src/dist/pdwebhook.service
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "FAIL: systemd-analyze is missing (package systemd); CI must run this test"
    echo "0 passed, 1 failed"
    exit 1
  fi
  echo "SKIP: systemd-analyze not found (apt-get install systemd); the unit is not checked"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The unit as installed, but ExecStart pointing at the program just built.
sed "s|/usr/bin/pdwebhook|$bin|g" "$unit" >"$tmp/pdwebhook.service"

# verify: syntax, executables, the man page of Documentation= (found through MANPATH).
if MANPATH=$mandir timeout 60 systemd-analyze verify "$tmp/pdwebhook.service" >"$tmp/verify" 2>&1 &&
   [ ! -s "$tmp/verify" ]; then
  ok "systemd-analyze verify: no finding"
else
  bad "systemd-analyze verify:"; cat "$tmp/verify"
fi

# exposure at most 2.0 of 10 (systemd-analyze security's scale; the unit scores about 1.2)
if timeout 60 systemd-analyze security --offline=yes --threshold=20 "$tmp/pdwebhook.service" \
     >"$tmp/security" 2>&1; then
  ok "systemd-analyze security: $(grep -o 'exposure level.*' "$tmp/security" | head -n 1)"
else
  bad "systemd-analyze security over 2.0:"; grep -v '^✓' "$tmp/security"
fi

# the hardening docs/OPERATIONS.md describes, line by line
for d in 'DynamicUser=yes' 'StateDirectory=pdwebhook' 'ProtectSystem=strict' \
         'ProtectHome=yes' 'PrivateTmp=yes' 'NoNewPrivileges=yes' 'CapabilityBoundingSet=' \
         'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' 'SystemCallFilter=@system-service' \
         'EnvironmentFile=-/etc/default/pdwebhook' 'Restart=on-failure' 'KillMode=mixed'; do
  if grep -qx "$d" "$unit"; then ok "$d"; else bad "missing line: $d"; fi
done
grep -q '^ExecStart=/usr/bin/pdwebhook serve .*--spool %S/pdwebhook/spool' "$unit" &&
  ok "ExecStart spools into the state directory" || bad "ExecStart without --spool %S/pdwebhook/spool"
# serve drains for up to --exec-timeout (60 s): the stop timeout must be longer
t=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s*$/\1/p' "$unit")
[ "${t:-0}" -gt 60 ] && ok "TimeoutStopSec=$t > 60" || bad "TimeoutStopSec '${t:-}' not above 60"
# credentials never on a command line
if grep -E '^Exec' "$unit" | grep -qE '(^|[^$])\$\{?PDWEBHOOK_(PASSWORD|USER)'; then
  bad "an Exec line expands the credentials into a command line"
else
  ok "no credential expanded into a command line"
fi

# ExecStartPre, as systemd runs it ($$ -> $): refuses to start without credentials.
pre=$(sed -n "s/^ExecStartPre=\/bin\/sh -c '\(.*\)'$/\1/p" "$unit" | sed 's/\$\$/$/g')
if [ -z "$pre" ]; then
  bad "no ExecStartPre=/bin/sh -c '...' line"
else
  run_pre() { env -i PATH=/usr/bin:/bin "$@" sh -c "$pre" >/dev/null 2>&1; echo $?; }
  [ "$(run_pre PDWEBHOOK_OPTIONS=)" = 1 ] && ok "ExecStartPre: no credentials, refused" ||
    bad "ExecStartPre accepts a start without credentials"
  [ "$(run_pre PDWEBHOOK_USER=u PDWEBHOOK_OPTIONS=)" = 1 ] && ok "ExecStartPre: user alone, refused" ||
    bad "ExecStartPre accepts a user without password"
  [ "$(run_pre PDWEBHOOK_USER=u PDWEBHOOK_PASSWORD='p w$x' PDWEBHOOK_OPTIONS=)" = 0 ] &&
    ok "ExecStartPre: user and password, accepted" || bad "ExecStartPre refuses user and password"
  [ "$(run_pre 'PDWEBHOOK_OPTIONS=--path /p --credentials /run/credentials/x')" = 0 ] &&
    ok "ExecStartPre: --credentials FILE, accepted" || bad "ExecStartPre refuses --credentials"
fi
finish
