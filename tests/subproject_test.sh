#!/bin/sh
# pdwebhook as a subproject (add_subdirectory): only the libraries build and install, and a
# program links them through the pdwebhook:: aliases.
# Usage: subproject_test.sh SOURCE_DIR
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }
cmake -S "$src/tests/subproject" -B "$tmp/b" -DPDW_SOURCE="$src" \
      -DCMAKE_INSTALL_PREFIX="$tmp/prefix" > "$tmp/cfg.log" 2>&1 || { cat "$tmp/cfg.log"; fail "configure"; }
cmake --build "$tmp/b" -j2 > "$tmp/build.log" 2>&1 || { tail -20 "$tmp/build.log"; fail "build"; }
"$tmp/b/consumer" "$src/tests/fixtures/v2-change.deal-pipedrive-docs.json" | grep -q '^status: 200' ||
  fail "the consumer does not run"
cmake --install "$tmp/b" > /dev/null 2>&1 || fail "install"
[ -z "$(find "$tmp/prefix" -path '*/bin/*')" ] || fail "installs programs: $(find "$tmp/prefix" -path '*/bin/*')"
[ -z "$(find "$tmp/prefix" -path '*/man/*')" ] || fail "installs man pages"
find "$tmp/prefix" -name 'libpdwebhook.so.*' | grep -q . || fail "the core library is not installed"
find "$tmp/prefix" -name 'pdwebhook.h' | grep -q . || fail "the headers are not installed"
echo "ok: as a subproject only the libraries build and install"
echo "1 passed, 0 failed"
