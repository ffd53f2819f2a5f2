#!/bin/sh
# No public header uses a type whose size depends on _FILE_OFFSET_BITS or _TIME_BITS: the
# libraries are built with both set to 64 (CMakeLists.txt), a program that includes the
# headers may not be, and on 32-bit glibc they would then disagree about every struct and
# function that carries one. Fixed-width integers instead (uint64_t milliseconds, ...).
#   public_types.sh <include dir>
set -eu
dir=$1
bad=$(grep -nE '\b(off_t|off64_t|time_t|clock_t|suseconds_t|ino_t|blkcnt_t|fpos_t)\b|struct[[:space:]]+(timespec|timeval|stat|tm|dirent)\b' \
  "$dir"/pdwebhook/*.h "$dir"/pdwebhook/*/*.h 2>/dev/null || true)
if [ -n "$bad" ]; then
  printf '%s\n' "$bad"
  echo "FAIL: a public header uses off_t/time_t or a struct made of them (see $0)"
  exit 1
fi
echo "ok: no off_t, time_t or struct timespec/timeval/stat in $dir/pdwebhook"
