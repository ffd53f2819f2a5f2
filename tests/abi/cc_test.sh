#!/bin/sh
# Compile (and optionally run) one translation unit as a test.
#
#   cc_test.sh compile OUTDIR NAME COMPILER LANG INCLUDES -- FLAGS...
#       Write OUTDIR/NAME.<c|cpp> that #includes each header of INCLUDES (comma-separated,
#       in that order) and nothing else, and compile it to an object file.
#   cc_test.sh run OUTDIR NAME COMPILER SOURCE -- FLAGS...
#       Compile and link SOURCE with FLAGS, then run the program.
#
# LANG is c or c++. Prints the compiler's complaint on failure and a closing line
# "N passed, M failed". Exit status 0 only when the test passed.
set -u
mode=$1 outdir=$2 name=$3 cc=$4 arg=$5
shift 5
case $mode in
  compile) lang=$arg; includes=$1; shift ;;
  run) src=$arg ;;
  *) echo "cc_test.sh: unknown mode $mode" >&2; exit 2 ;;
esac
[ "${1:-}" = "--" ] && shift
mkdir -p "$outdir" || exit 2

result() {
  if [ "$1" -eq 0 ]; then echo "1 passed, 0 failed"; exit 0; fi
  echo "0 passed, 1 failed"; exit 1
}

if [ "$mode" = compile ]; then
  ext=c; [ "$lang" = c++ ] && ext=cpp
  src=$outdir/$name.$ext
  : > "$src"
  old_ifs=$IFS; IFS=,
  for h in $includes; do printf '#include <%s>\n' "$h" >> "$src"; done
  IFS=$old_ifs
  printf 'int main(void) { return 0; }\n' >> "$src"
  echo "== $name: $cc $* -c $src"
  "$cc" "$@" -c "$src" -o "$outdir/$name.o"
  result $?
fi

echo "== $name: $cc $src $*"
"$cc" "$src" -o "$outdir/$name" "$@" || result 1
"$outdir/$name"
result $?
