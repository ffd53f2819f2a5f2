#!/bin/sh
# Install the built libraries into a temporary prefix and check what a user gets there:
# the SONAMEs, only pdw_* exported, the core's undefined symbols (no thread, file or
# socket call), working .pc files and CMake components, and programs building and running
# against the installed copy both ways, one of them calling jansson on pdw_event_json()
# with `pkg-config --libs pdwebhook` alone.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fixture=$src/tests/fixtures/v2-change.deal-pipedrive-docs.json
fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
libs="pdwebhook pdwebhook-durable pdwebhook-subscriptions"
[ -n "$(find "$prefix" -name 'libpdwebhook-redis.so.*.*.*')" ] && libs="$libs pdwebhook-redis"
for name in $libs; do
  lib=$(find "$prefix" -name "lib$name.so.*.*.*" | head -n 1)
  [ -n "$lib" ] || fail "no lib$name.so.X.Y.Z installed"
  libdir=$(dirname "$lib")
  soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
  case $soname in
    "lib$name.so."[0-9]*) echo "ok: SONAME $soname" ;;
    *) fail "SONAME '$soname' of $lib" ;;
  esac
  [ -e "$libdir/$soname" ] || fail "$soname link missing"
  [ -f "$libdir/lib$name.a" ] || fail "lib$name.a missing"
  [ -f "$libdir/pkgconfig/$name.pc" ] || fail "$name.pc missing"
  others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^pdw_' || true)
  [ -z "$others" ] || fail "$lib exports besides pdw_*: $others"
  ! nm -D --defined-only "$lib" | grep -q ' pdw__' || fail "internal pdw__ symbol exported by $lib"
  echo "ok: lib$name: $(nm -D --defined-only "$lib" | grep -c ' pdw_') symbols exported, all pdw_*"
done

# The core starts no thread and opens no file or socket.
core=$(find "$prefix" -name 'libpdwebhook.so.*.*.*' | head -n 1)
bad=$(nm -D --undefined-only "$core" | awk '{print $2}' | sed 's/@.*//' |
      grep -xE 'pthread_create|socket|connect|accept4?|bind|open(at)?(64)?|fopen(64)?|creat(64)?|fsync|fdatasync|fork|execve?' || true)
[ -z "$bad" ] || fail "the core library calls: $bad"
echo "ok: the core's undefined symbols have no thread, file or socket call"

# 1. pkg-config
PKG_CONFIG_PATH=$libdir/pkgconfig
export PKG_CONFIG_PATH
pkg-config --print-requires pdwebhook | grep -q '^jansson' || fail "pdwebhook.pc does not require jansson"
cc -std=c11 -Wall -Wextra -Werror "$src/examples/minimal.c" \
   $(pkg-config --cflags --libs pdwebhook) -o "$tmp/minimal-pc"
LD_LIBRARY_PATH=$libdir "$tmp/minimal-pc" "$fixture" > "$tmp/out-pc"
grep -q '^status: 200 PDW_OK' "$tmp/out-pc" || { cat "$tmp/out-pc"; fail "pkg-config build"; }
echo "ok: pkg-config build runs"
# --as-needed and --no-copy-dt-needed-entries: a consumer of json_object_get() must be
# given jansson itself ("DSO missing from command line" otherwise)
cc -std=c11 -Wall -Wextra -Werror "$src/tests/install/jansson_consumer.c" -Wl,--as-needed \
   -Wl,--no-copy-dt-needed-entries $(pkg-config --cflags --libs pdwebhook) -o "$tmp/jansson-pc" ||
  fail "a jansson consumer does not link with pkg-config --libs pdwebhook alone"
LD_LIBRARY_PATH=$libdir "$tmp/jansson-pc" "$fixture" | grep -q '^object=deal id=' ||
  fail "jansson consumer (pkg-config)"
echo "ok: a program calling jansson on pdw_event_json() links with pkg-config --libs pdwebhook"
cc -std=c11 -Wall -Wextra -Werror "$src/tests/install/durable_consumer.c" \
   $(pkg-config --cflags --libs pdwebhook-durable) -o "$tmp/durable-pc"
mkdir "$tmp/spool-pc"
LD_LIBRARY_PATH=$libdir "$tmp/durable-pc" "$tmp/spool-pc" | grep -q '1 pending' ||
  fail "durable consumer (pkg-config)"
echo "ok: pkg-config --libs pdwebhook-durable build runs"

# 2. find_package with components
cmake -S "$src/tests/install" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
      -DEXAMPLE_SOURCE="$src/examples/minimal.c" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
LD_LIBRARY_PATH=$libdir "$tmp/consumer/minimal" "$fixture" "pipedrive:wrong" > "$tmp/out-cm" || true
grep -q '^status: 401 PDW_EAUTHWRONG' "$tmp/out-cm" || { cat "$tmp/out-cm"; fail "find_package build"; }
LD_LIBRARY_PATH=$libdir "$tmp/consumer/minimal" "$fixture" | grep -q '^status: 200 PDW_OK'
LD_LIBRARY_PATH=$libdir "$tmp/consumer/jansson_consumer" "$fixture" | grep -q '^object=deal id=' ||
  fail "jansson consumer (CMake)"
mkdir "$tmp/spool-cm"
LD_LIBRARY_PATH=$libdir "$tmp/consumer/durable_consumer" "$tmp/spool-cm" | grep -q '1 pending' ||
  fail "durable consumer (CMake)"
echo "ok: find_package(pdwebhook COMPONENTS durable subscriptions) builds run"
# a component that does not exist is refused
mkdir "$tmp/nocomp"
printf 'cmake_minimum_required(VERSION 3.16)\nproject(x LANGUAGES C)\nfind_package(pdwebhook REQUIRED COMPONENTS nosuch)\n' > "$tmp/nocomp/CMakeLists.txt"
if cmake -S "$tmp/nocomp" -B "$tmp/nocomp/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1; then
  fail "find_package accepted an unknown component"
fi
echo "ok: an unknown component is refused"
echo "1 passed, 0 failed"
