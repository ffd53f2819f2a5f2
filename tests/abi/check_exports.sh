#!/bin/sh
# The export test (after jansson's check-exports).
#
#   check_exports.sh exports NM LIBRARY SYMBOLS_TXT
#       The dynamic symbols LIBRARY defines (nm -D --defined-only) must be exactly the
#       checked-in list SYMBOLS_TXT (one name a line, sorted).
#   check_exports.sh update NM LIBRARY SYMBOLS_TXT
#       Rewrite SYMBOLS_TXT from LIBRARY (target abi-update-symbols).
#   check_exports.sh declared SYMBOLS_TXT[,SYMBOLS_TXT...] HEADER...
#       The functions the public headers declare with PDW_EXTERN must be exactly those
#       lists together, so that every declaration is reachable over FFI and nothing
#       exported is undocumented.
#
# On a mismatch prints a diff (- expected, + actual) and how to update the list; always
# ends with "N passed, M failed".
set -u
LC_ALL=C
export LC_ALL
mode=$1
shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pdw-exports.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

case $mode in
  update)
    # Rewrite the list from the library (after an intended change; see docs/ABI.md).
    "$1" -D --defined-only "$2" | awk 'NF >= 2 { sub(/@.*/, "", $NF); print $NF }' |
      sort -u > "$tmp/new" && cp "$tmp/new" "$3" && echo "wrote $3 ($(wc -l < "$3") symbols)"
    exit $?
    ;;
  exports)
    nm=$1 lib=$2 list=$3
    if ! "$nm" -D --defined-only "$lib" > "$tmp/nm.out"; then
      echo "nm failed on $lib"; echo "0 passed, 1 failed"; exit 1
    fi
    # Names only: the symbol type (T, D, ...) and versions (name@@VER) are not part of the list.
    awk 'NF >= 2 { sub(/@.*/, "", $NF); print $NF }' "$tmp/nm.out" | sort -u > "$tmp/actual"
    what="exported by $lib"
    fix="cmake --build <build dir> --target abi-update-symbols"
    ;;
  declared)
    list=$1
    shift
    # Join each header into one line, cut every PDW_EXTERN declaration at its '(' and keep
    # the last identifier before it: the function's name.
    for h in "$@"; do tr '\n' ' ' < "$h"; echo; done |
      sed 's/#define PDW_EXTERN[^#]*//g' |
      grep -o 'PDW_EXTERN [^;(]*(' |
      sed 's/[[:space:]]*($//; s/.*[^A-Za-z0-9_]//' | sort -u > "$tmp/actual"
    what="declared with PDW_EXTERN in the public headers"
    fix="(add the function to $list, or remove its PDW_EXTERN declaration)"
    ;;
  *) echo "check_exports.sh: unknown mode $mode" >&2; exit 2 ;;
esac

# shellcheck disable=SC2046
grep -hv '^[[:space:]]*\(#.*\)\?$' $(echo "$list" | tr ',' ' ') | sort -u > "$tmp/expected"
if [ ! -s "$tmp/expected" ]; then
  echo "$list is empty or unreadable"; echo "0 passed, 1 failed"; exit 1
fi

n=$(wc -l < "$tmp/actual" | tr -d ' ')
if diff -u --label "expected ($list)" --label "actual ($what)" "$tmp/expected" "$tmp/actual"; then
  echo "$n symbols $what match $list"
  echo "1 passed, 0 failed"
  exit 0
fi
# Every symbol must also be a pdw_* one: say so separately, it is the usual cause.
bad=$(grep -v '^pdw_' "$tmp/actual" || true)
[ -n "$bad" ] && echo "not in the pdw_ name space: $bad"
echo "mismatch: if the change is intended (see docs/ABI.md), update the list:"
echo "  $fix"
echo "0 passed, 1 failed"
exit 1
