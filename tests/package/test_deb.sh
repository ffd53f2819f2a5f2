#!/bin/sh
# The Debian packages, built and used: dpkg-buildpackage -b on a copy of the tree,
# lintian (no error allowed), the contents of each package, then the receiver run from
# the unpacked packages (tests/package/smoke_serve.sh).
# Usage: test_deb.sh [SOURCE_DIR]     (scripts/run package; run by `scripts/run test` in CI)
# Needs dpkg-dev, debhelper, lintian and the build dependencies of debian/control.
set -u
src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
finish() {
  echo "package test: $(( $(date +%s) - t0 )) s (build $build_s s, lintian $lint_s s)"
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
  exit $?
}
t0=$(date +%s)
build_s=0
lint_s=0
for tool in dpkg-buildpackage dh lintian curl; do
  if ! command -v $tool >/dev/null 2>&1; then
    bad "$tool not found (apt-get install dpkg-dev debhelper lintian curl)"
    finish
  fi
done
if ! (cd "$src" && dpkg-checkbuilddeps >/dev/null 2>&1); then
  bad "build dependencies missing: $(cd "$src" && dpkg-checkbuilddeps 2>&1)"
  finish
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pdw-deb.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# A copy of the tree (as it is, uncommitted changes included), without build directories
# and git metadata: the source tree stays clean.
mkdir "$tmp/pdwebhook-1.0.0"
tar -C "$src" --exclude=./.git --exclude='./build*' --exclude=./_install \
  --exclude=./bench/peers/node_modules -cf - . | tar -C "$tmp/pdwebhook-1.0.0" -xf -

b0=$(date +%s)
if (cd "$tmp/pdwebhook-1.0.0" && timeout 900 dpkg-buildpackage -us -uc -b \
      -j"$(nproc 2>/dev/null || echo 2)") >"$tmp/build.log" 2>&1; then
  ok "dpkg-buildpackage -us -uc -b"
else
  bad "dpkg-buildpackage failed; the end of its log:"; tail -n 40 "$tmp/build.log"
  build_s=$(( $(date +%s) - b0 ))
  finish
fi
build_s=$(( $(date +%s) - b0 ))
grep -E 'dpkg-gensymbols: warning' "$tmp/build.log" && bad "dpkg-gensymbols: the symbols files differ from the libraries" ||
  ok "symbols files match the libraries"

changes=$(ls "$tmp"/pdwebhook_1.0.0-1_*.changes)
l0=$(date +%s)
timeout 600 lintian --fail-on error --display-info --tag-display-limit 0 "$changes" >"$tmp/lintian" 2>&1
lrc=$?
lint_s=$(( $(date +%s) - l0 ))
e=$(grep -c '^E: ' "$tmp/lintian")
w=$(grep -c '^W: ' "$tmp/lintian")
i=$(grep -c '^I: ' "$tmp/lintian")
sed 's/^/  lintian: /' "$tmp/lintian"
if [ "$lrc" -eq 0 ] && [ "$e" -eq 0 ]; then
  ok "lintian: $e errors, $w warnings, $i info"
else
  bad "lintian: exit $lrc, $e errors, $w warnings, $i info"
fi

# One shared library per package, each with its SONAME; the program package has the
# program, the unit, the man page and the credentials file (root only).
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for pair in libpdwebhook1:libpdwebhook libpdwebhook-durable1:libpdwebhook-durable \
            libpdwebhook-redis1:libpdwebhook-redis \
            libpdwebhook-subscriptions1:libpdwebhook-subscriptions; do
  pkg=${pair%%:*}
  lib=${pair#*:}
  deb=$tmp/${pkg}_1.0.0-1_$arch.deb
  libs=$(dpkg-deb -c "$deb" 2>/dev/null | grep -o "usr/lib/$triplet/lib[^ ]*\.so[^ ]*" | sort | tr '\n' ' ')
  if [ "$libs" = "usr/lib/$triplet/$lib.so.1 usr/lib/$triplet/$lib.so.1.0.0 " ]; then
    ok "$pkg holds $lib.so.1 alone"
  else
    bad "$pkg holds: $libs"
  fi
done
dev=$tmp/libpdwebhook-dev_1.0.0-1_$arch.deb
dpkg-deb -c "$dev" >"$tmp/dev.list"
for f in usr/include/pdwebhook/pdwebhook.h usr/lib/$triplet/pkgconfig/pdwebhook-durable.pc \
         usr/lib/$triplet/cmake/pdwebhook/pdwebhookConfig.cmake usr/lib/$triplet/libpdwebhook.a \
         usr/lib/$triplet/libpdwebhook-redis.so usr/share/man/man3/libpdwebhook.3.gz; do
  grep -Eq " \./$f( ->|$)" "$tmp/dev.list" && ok "libpdwebhook-dev: $f" || bad "libpdwebhook-dev lacks $f"
done
prog=$tmp/pdwebhook_1.0.0-1_$arch.deb
dpkg-deb -c "$prog" >"$tmp/prog.list"
for f in usr/bin/pdwebhook lib/systemd/system/pdwebhook.service usr/share/man/man1/pdwebhook.1.gz \
         usr/share/doc/pdwebhook/OPERATIONS.md; do
  grep -Eq " \./$f( ->|$)" "$tmp/prog.list" && ok "pdwebhook: $f" || bad "pdwebhook lacks $f"
done
grep -q '^-rw------- root/root .* \./etc/default/pdwebhook$' "$tmp/prog.list" &&
  ok "pdwebhook: /etc/default/pdwebhook, 0600 root" || bad "pdwebhook: /etc/default/pdwebhook missing or not 0600 root"
# the unit as packaged is dist/pdwebhook.service (ExecStart in /usr/bin)
dpkg-deb --fsys-tarfile "$prog" | tar -xOf - ./lib/systemd/system/pdwebhook.service >"$tmp/unit"
cmp -s "$tmp/unit" "$src/dist/pdwebhook.service" && ok "the packaged unit is dist/pdwebhook.service" ||
  bad "the packaged unit differs from dist/pdwebhook.service"
dpkg-deb -f "$prog" Depends | grep -q 'libpdwebhook-durable1 (>= 1.0.0)' &&
  ok "pdwebhook depends on libpdwebhook-durable1 (>= 1.0.0)" ||
  bad "pdwebhook's Depends: $(dpkg-deb -f "$prog" Depends)"

# Unpacked into one fresh root, the program runs from there.
root=$tmp/root
mkdir "$root"
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$root"; done
libdir=$root/usr/lib/$triplet
if LD_LIBRARY_PATH=$libdir ldd "$root/usr/bin/pdwebhook" | grep -q "libpdwebhook-durable.so.1 => $libdir/"; then
  ok "the unpacked program loads the unpacked libraries"
else
  bad "ldd: $(LD_LIBRARY_PATH=$libdir ldd "$root/usr/bin/pdwebhook" | grep pdwebhook)"
fi
v=$(LD_LIBRARY_PATH=$libdir "$root/usr/bin/pdwebhook" version 2>&1)
[ "$v" = "pdwebhook 1.0.0" ] && ok "pdwebhook version: $v" || bad "pdwebhook version: $v"
if LD_LIBRARY_PATH=$libdir sh "$src/tests/package/smoke_serve.sh" "$root/usr/bin/pdwebhook" \
     "$src/tests/fixtures" >"$tmp/smoke" 2>&1; then
  ok "serve from the unpacked packages: $(tail -n 1 "$tmp/smoke")"
else
  bad "serve from the unpacked packages:"; cat "$tmp/smoke"
fi
finish
