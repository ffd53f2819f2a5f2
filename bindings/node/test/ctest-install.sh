#!/bin/sh
# ctest's node.install: the package copied into the build tree (the source stays clean),
# its dependencies installed from package-lock.json with `npm ci`.
#   ctest-install.sh PACKAGE_SRC DEST
set -eu
SRC=$1 DEST=$2
rm -rf "$DEST"
mkdir -p "$DEST"
cp -R "$SRC/package.json" "$SRC/package-lock.json" "$SRC/index.js" "$SRC/index.d.ts" \
  "$SRC/lib" "$SRC/test" "$SRC/examples" "$DEST/"
cd "$DEST"
npm ci --no-audit --no-fund --loglevel=error
node -e "require('koffi'); require('express'); console.log('node.install: koffi', require('koffi').version)"
