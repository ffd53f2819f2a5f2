#!/bin/sh
# Versioned structs: every public struct with a `version` member has it first, as an
# `unsigned`, and every options struct (`pdw_*_options`) has one; each has its `PDW_X_VERSION`
# (at least 1) and its `PDW_X_INIT`, which gives the version and every other member zero
# (STYLE.md: the macro sets the version only, zero means the default), compared byte for
# byte with a zeroed struct whose version is set.
#
#   struct_versions.sh CC OUTDIR FLAGS... -- HEADER...
#
# The headers are parsed (awk) for `typedef struct NAME { ... } NAME;` and their members;
# from that list a C program is written that checks, with offsetof() and _Generic, what the
# compiler really sees. A struct the parser finds with `version` anywhere but first fails
# in both. Ends with "N passed, M failed".
set -u
cc=$1 outdir=$2
shift 2
flags=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do flags="$flags $1"; shift; done
[ "${1:-}" = "--" ] && shift
mkdir -p "$outdir" || exit 2

# NAME FIRST_MEMBER HAS_VERSION(0/1) per struct.
awk '
  function strip(s) {                      # drop comments, keep code
    while (1) {
      if (incomment) {
        i = index(s, "*/"); if (!i) return ""; s = substr(s, i + 2); incomment = 0
      }
      i = index(s, "/*"); if (!i) break
      j = index(substr(s, i + 2), "*/")
      if (j) s = substr(s, 1, i - 1) " " substr(s, i + j + 3)
      else { s = substr(s, 1, i - 1); incomment = 1 }
    }
    sub(/\/\/.*/, "", s)
    return s
  }
  {
    line = strip($0)
    if (!inside && match(line, /typedef struct [A-Za-z_0-9]+[ \t]*\{/)) {
      split(substr(line, RSTART), w, /[ \t{]+/); name = w[3]
      inside = 1; first = ""; hasver = 0; next
    }
    if (!inside) next
    if (line ~ /^[ \t]*\}/) { print name, (first == "" ? "-" : first), hasver; inside = 0; next }
    if (line !~ /;/) next
    # The member name: a function pointer (*name)(...), else the last identifier before
    # an optional [size] and the ";".
    m = line
    if (match(m, /\(\*[ \t]*[A-Za-z_0-9]+\)/)) { m = substr(m, RSTART + 2, RLENGTH - 3) }
    else { sub(/\[[^]]*\][ \t]*;.*/, ";", m); sub(/[ \t]*;.*/, "", m); sub(/.*[^A-Za-z_0-9]/, "", m) }
    gsub(/[ \t*]/, "", m)
    if (first == "") first = m
    if (m == "version") hasver = 1
  }
' "$@" > "$outdir/structs.txt" || exit 2

src=$outdir/struct_versions.c
{
  echo '#include <stddef.h>'
  echo '#include <stdio.h>'
  echo '#include <string.h>'
  for h in "$@"; do printf '#include "%s"\n' "$h"; done
  echo 'static int passed, failed;'
  echo 'static void check(int ok, const char *what) {'
  printf '%s\n' '    printf("%s %s\n", ok ? "ok  " : "FAIL", what);'
  echo '    if (ok) passed++; else failed++;'
  echo '}'
  echo 'int main(void) {'
  while read -r name first hasver; do
    case $name in pdw_*) ;; *) continue ;; esac
    if [ "$hasver" = 1 ]; then
      echo "    check(offsetof($name, version) == 0, \"$name: version is the first member (offsetof 0)\");"
      echo "    check(_Generic(((const $name *)NULL)->version, unsigned: 1, default: 0), \"$name: version is unsigned\");"
      [ "$first" = version ] && ok=1 || ok=0
      echo "    check($ok, \"$name: the header lists version first (parsed: $first)\");"
      [ $ok = 1 ] || printf '%s\n' "    printf(\"     a member named version is the struct's ABI version (unsigned, first; docs/ABI.md): move it, or rename a data field that happens to be called version\\n\");"
      up=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
      echo "#if defined(${up}_VERSION) && defined(${up}_INIT)"
      echo "    {"
      echo "        static const $name init = ${up}_INIT; /* static: its padding is zero too */"
      echo "        $name want;"
      echo "        memset(&want, 0, sizeof want);"
      echo "        want.version = ${up}_VERSION;"
      echo "        check(${up}_VERSION >= 1, \"$name: ${up}_VERSION is at least 1\");"
      echo "        check(memcmp(&init, &want, sizeof want) == 0, \"$name: ${up}_INIT is the version and zeros\");"
      echo "    }"
      echo "#else"
      echo "    check(0, \"$name: ${up}_VERSION and ${up}_INIT are defined\");"
      echo "#endif"
    else
      case $name in
        *_options) echo "    check(0, \"$name: an options struct without a version member\");" ;;
        *) printf '%s\n' "    printf(\"-    $name: no version member (plain data, frozen; see docs/ABI.md)\\n\");" ;;
      esac
    fi
  done < "$outdir/structs.txt"
  printf '%s\n' '    printf("%d passed, %d failed\n", passed, failed);'
  echo '    return failed || !passed;'
  echo '}'
} > "$src"

# shellcheck disable=SC2086
if ! "$cc" $flags "$src" -o "$outdir/struct_versions"; then
  echo "0 passed, 1 failed"
  exit 1
fi
"$outdir/struct_versions"
