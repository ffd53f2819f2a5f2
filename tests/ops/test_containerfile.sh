#!/bin/sh
# Containerfile, checked without a container runtime (none in CI): its shape (stages,
# non-root user, volume, port, health check), that every package it installs exists in
# this Debian release (apt-cache show), and that the runtime stage installs the package
# of every shared library the built program links directly.
# Usage: test_containerfile.sh SOURCE_DIR PDWEBHOOK LIBDIR (the built libpdwebhook*.so.1)
set -u
src=$1
bin=$2
libdir=$3
cf=$src/Containerfile
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
has() { # has DESCRIPTION EXTENDED-REGEX
  if grep -Eq "$2" "$cf"; then ok "$1"; else bad "$1 (no line matching $2)"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

has "build stage on debian:12" '^FROM debian:12 AS build$'
has "runtime stage on debian:12-slim" '^FROM debian:12-slim$'
has "runs as a non-root user" '^USER pdwebhook$'
has "the spool on a volume" '^VOLUME \["/var/lib/pdwebhook"\]$'
has "EXPOSE 8080" '^EXPOSE 8080$'
has "a HEALTHCHECK" '^HEALTHCHECK '
has "the health check asks /healthz" '^ +CMD curl .*http://127\.0\.0\.1:8080/healthz'
has "serve with a spool in the volume" '^CMD \[.*"--spool", "/var/lib/pdwebhook/spool"\]$'
has "listens on the exposed port" '^CMD \["--listen", "0\.0\.0\.0:8080"'

# The packages of each stage: the words after `apt-get install ... --no-install-recommends`
# up to the next `&&` (continuation lines joined).
sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$cf" |
  awk '/^FROM /{stage=$NF} /apt-get install/{
         sub(/.*--no-install-recommends/, ""); sub(/&&.*/, "");
         n=split($0, w, /[ \t]+/); for (i=1;i<=n;i++) if (w[i] != "") print stage, w[i] }' \
  >"$tmp/pkgs"
[ -s "$tmp/pkgs" ] && ok "$(wc -l <"$tmp/pkgs") packages named" || bad "no apt-get install line found"

# One apt-cache call for all of them (each call loads the cache: seconds).
# shellcheck disable=SC2046
apt-cache show --no-all-versions libc6 $(awk '{print $2}' "$tmp/pkgs") 2>/dev/null |
  sed -n 's/^Package: //p' >"$tmp/known"
if grep -qx libc6 "$tmp/known"; then
  while read -r stage p; do
    if grep -qxF "$p" "$tmp/known"; then
      ok "$stage: $p is in the archive"
    else
      bad "$stage: no package $p in this release's archive (apt-cache show)"
    fi
  done <"$tmp/pkgs"
else
  echo "SKIP: no apt package lists here (apt-get update), package names not looked up"
fi

# Every library the program or its libraries link directly comes from a package the runtime stage installs.
if command -v readelf >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
  seen=""
  runtime=$(awk '$1 == "debian:12-slim" {print $2}' "$tmp/pkgs" | tr '\n' ' ')
  for obj in "$bin" "$libdir"/libpdwebhook*.so.1; do
  for lib in $(readelf -d "$obj" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    case $lib in libpdwebhook*|libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|ld-linux*) continue ;; esac
    case " $seen " in *" $lib "*) continue ;; esac
    seen="$seen $lib"
    path=$(LD_LIBRARY_PATH=$libdir ldd "$obj" | sed -n "s|^[[:space:]]*$lib => \([^ ]*\) .*|\1|p")
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1)
    [ -z "$pkg" ] && pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
    case " $runtime " in
      *" $pkg "*) ok "$lib comes from $pkg, installed in the runtime stage" ;;
      *) bad "$lib comes from '${pkg:-?}', which the runtime stage does not install" ;;
    esac
  done
  done
else
  echo "SKIP: readelf or dpkg not found, the runtime libraries are not matched"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
