#!/bin/sh
# The ABI check: the built library against the baseline written at the release
# (abi/<library>.abi, by `cmake --build <dir> --target abi-update-baseline`).
#   abidiff_test.sh ABIDIFF BASELINE LIBRARY INCLUDE_DIR BUILD_INCLUDE_DIR
# abidiff's exit status is a bit field: 4 = ABI change, 8 = incompatible ABI change. An
# incompatible change (a removed or changed function or type) fails; an addition (a new
# function) passes, as an ABI-compatible minor release may add functions.
set -u
abidiff=$1 baseline=$2 lib=$3 inc=$4 binc=$5
if [ ! -s "$baseline" ]; then
  echo "no baseline $baseline (write it with the abi-update-baseline target at a release)"
  echo "0 passed, 1 failed"
  exit 1
fi
out=$("$abidiff" --no-added-syms --headers-dir2 "$inc/pdwebhook" --headers-dir2 "$binc/pdwebhook" \
      "$baseline" "$lib" 2>&1)
rc=$?
if [ $((rc & 1)) -ne 0 ] || [ $((rc & 2)) -ne 0 ]; then
  echo "$out"
  echo "abidiff could not compare (exit $rc)"
  echo "0 passed, 1 failed"
  exit 1
fi
if [ $((rc & 8)) -ne 0 ] || [ $((rc & 4)) -ne 0 ]; then
  echo "$out"
  echo "ABI change against $baseline: an incompatible change needs a new major version"
  echo "(docs/ABI.md); an intended compatible one, a new baseline at the release."
  echo "0 passed, 1 failed"
  exit 1
fi
echo "ABI of $(basename "$lib") matches $(basename "$baseline")"
echo "1 passed, 0 failed"
