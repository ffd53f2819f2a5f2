#!/bin/sh
# Install the built library into a temporary prefix and check what a user gets there:
# the SONAME, only pdw_* exported, a working pdwebhook.pc and CMake package, and
# examples/minimal.c building and running against the installed copy both ways.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fixture=$src/tests/fixtures/v2-change.deal-pipedrive-docs.json

cmake --install "$build" --prefix "$prefix" >/dev/null
lib=$(find "$prefix" -name 'libpdwebhook.so.*.*' | head -n 1)
[ -n "$lib" ] || { echo "FAIL: no libpdwebhook.so.X.Y installed"; exit 1; }
libdir=$(dirname "$lib")

soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
case $soname in
  libpdwebhook.so.[0-9]*) echo "ok: SONAME $soname" ;;
  *) echo "FAIL: SONAME '$soname'"; exit 1 ;;
esac
[ -e "$libdir/$soname" ] || { echo "FAIL: $soname link missing"; exit 1; }

others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^pdw_' || true)
if [ -n "$others" ]; then echo "FAIL: exported besides pdw_*: $others"; exit 1; fi
count=$(nm -D --defined-only "$lib" | grep -c ' pdw_')
echo "ok: $count symbols exported, all pdw_*"
nm -D --defined-only "$lib" | grep -q ' pdw__' && { echo "FAIL: internal pdw__ symbol exported"; exit 1; }

# 1. pkg-config
pcdir=$(dirname "$(find "$prefix" -name pdwebhook.pc | head -n 1)")
PKG_CONFIG_PATH=$pcdir
export PKG_CONFIG_PATH
cc -std=c11 -Wall -Wextra -Werror "$src/examples/minimal.c" \
   $(pkg-config --cflags --libs pdwebhook) -o "$tmp/minimal-pc"
LD_LIBRARY_PATH=$libdir "$tmp/minimal-pc" "$fixture" > "$tmp/out-pc"
grep -q '^status: 200 PDW_OK' "$tmp/out-pc" || { cat "$tmp/out-pc"; echo "FAIL: pkg-config build"; exit 1; }
echo "ok: pkg-config build runs"

# 2. find_package
cmake -S "$src/tests/install" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
      -DEXAMPLE_SOURCE="$src/examples/minimal.c" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
LD_LIBRARY_PATH=$libdir "$tmp/consumer/minimal" "$fixture" "pipedrive:wrong" > "$tmp/out-cm" || true
grep -q '^status: 401 PDW_EAUTHWRONG' "$tmp/out-cm" || { cat "$tmp/out-cm"; echo "FAIL: find_package build"; exit 1; }
LD_LIBRARY_PATH=$libdir "$tmp/consumer/minimal" "$fixture" | grep -q '^status: 200 PDW_OK'
echo "ok: find_package(pdwebhook) build runs"
echo "1 passed, 0 failed"
