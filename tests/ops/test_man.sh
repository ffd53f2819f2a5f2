#!/bin/sh
# The man pages built from docs/man/*.md: groff and man find nothing to warn about, and
# every option that `pdwebhook COMMAND --help` prints is described in pdwebhook(1).
# Usage: test_man.sh SOURCE_DIR MAN_DIR [PDWEBHOOK]
set -u
src=$1
mandir=$2
bin=${3:-}
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pages="$mandir/man3/libpdwebhook.3"
[ -n "$bin" ] && pages="$pages $mandir/man1/pdwebhook.1"
for p in $pages; do
  name=$(basename "$p")
  if [ ! -s "$p" ]; then bad "$name not built (target man)"; continue; fi
  # every warning class (-ww), no output (-z): anything on stderr is a finding
  if groff -man -ww -z "$p" >"$tmp/groff" 2>&1 && [ ! -s "$tmp/groff" ]; then
    ok "groff -ww: $name"
  else
    bad "groff -ww: $name:"; cat "$tmp/groff"
  fi
  if command -v man >/dev/null 2>&1; then
    if MANWIDTH=80 man --warnings -l "$p" >"$tmp/out" 2>"$tmp/man" && [ ! -s "$tmp/man" ] &&
       [ -s "$tmp/out" ]; then
      ok "man --warnings: $name"
    else
      bad "man --warnings: $name:"; cat "$tmp/man"
    fi
  else
    echo "SKIP: man not found (apt-get install man-db): man --warnings not run for $name"
  fi
  # the generated page is what docs/man/md2man.py makes of the source now (but the .TH
  # line, whose date depends on SOURCE_DATE_EPOCH)
  python3 "$src/docs/man/md2man.py" "$src/docs/man/$name.md" "$tmp/$name" &&
    grep -v '^\.TH ' "$tmp/$name" >"$tmp/new" && grep -v '^\.TH ' "$p" >"$tmp/old" &&
    cmp -s "$tmp/new" "$tmp/old" && ok "$name is up to date with docs/man/$name.md" ||
    bad "$name differs from what docs/man/md2man.py makes of docs/man/$name.md (rebuild)"
done

# Options of each command's --help, all described in the page (the page may say more).
if [ -n "$bin" ]; then
  md=$src/docs/man/pdwebhook.1.md
  for cmd in serve inspect send deadletter subscriptions consume; do
    "$bin" "$cmd" --help >"$tmp/help" 2>&1
    if grep -q "was built without" "$tmp/help"; then
      echo "SKIP: pdwebhook $cmd is not in this build"
      continue
    fi
    missing=""
    for o in $(grep -o -- '--[a-z][a-z0-9-]*' "$tmp/help" | sort -u); do
      grep -q -- "\`$o\`" "$md" || missing="$missing $o"
    done
    if [ -z "$missing" ]; then
      ok "pdwebhook $cmd: every --help option is in docs/man/pdwebhook.1.md"
    else
      bad "pdwebhook $cmd --help has options docs/man/pdwebhook.1.md does not describe:$missing"
    fi
    sect=$(echo "$cmd" | tr a-z A-Z)
    grep -q "^## $sect\$" "$md" && ok "pdwebhook(1) has the section $sect" ||
      bad "pdwebhook(1) has no '## $sect' section"
  done
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
