#!/bin/sh
# debian/, checked without building: one binary package per shared library, named after
# its SONAME, whose symbols file lists exactly the exports in abi/<library>.txt (the list
# the abi.* tests hold the libraries to). A new or removed pdw_* function must show up in
# debian/*.symbols too (new ones with the version that first has them).
# Usage: test_debian_files.sh SOURCE_DIR
set -u
src=$1
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for lib in pdwebhook pdwebhook-durable pdwebhook-redis pdwebhook-subscriptions; do
  pkg=lib${lib}1
  sym=$src/debian/$pkg.symbols
  grep -q "^Package: $pkg\$" "$src/debian/control" && ok "debian/control has $pkg" ||
    bad "debian/control has no package $pkg"
  [ "$(cat "$src/debian/$pkg.install" 2>/dev/null)" = "usr/lib/*/lib$lib.so.1*" ] &&
    ok "$pkg installs lib$lib.so.1*" || bad "debian/$pkg.install is not 'usr/lib/*/lib$lib.so.1*'"
  if [ ! -f "$sym" ]; then bad "no $sym"; continue; fi
  [ "$(head -n 1 "$sym")" = "lib$lib.so.1 $pkg #MINVER#" ] && ok "$pkg.symbols: lib$lib.so.1" ||
    bad "$pkg.symbols starts with '$(head -n 1 "$sym")'"
  sed -n 's/^ \([A-Za-z_0-9]*\)@Base .*/\1/p' "$sym" | sort >"$tmp/sym"
  sort "$src/abi/$lib.txt" >"$tmp/abi"
  if cmp -s "$tmp/sym" "$tmp/abi"; then
    ok "$pkg.symbols = abi/$lib.txt ($(wc -l <"$tmp/abi") symbols)"
  else
    bad "$pkg.symbols differs from abi/$lib.txt (< symbols file, > abi):"
    diff "$tmp/sym" "$tmp/abi" | grep '^[<>]'
    echo "  (add each new symbol as ' name@Base VERSION', VERSION the first release with it;"
    echo "   remove a symbol only with a SONAME bump, docs/ABI.md)"
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
