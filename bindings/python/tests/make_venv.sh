#!/bin/sh
# The Python package as its users get it, for the python.* tests that need it installed:
#   make_venv.sh PYTHON BUILD_DIR PACKAGE_SRC VENV
# A venv from Debian's interpreter with --system-site-packages (gunicorn, uvicorn, flask,
# setuptools and wheel come from Debian), the package installed into it by pip without
# network (--no-build-isolation --no-index, from a copy so the source tree stays clean),
# and the C library installed into the venv's prefix (cmake --install), where the package
# finds it without any environment variable.
set -eu
PY=$1 BUILD=$2 SRC=$3 VENV=$4
rm -rf "$VENV" "$VENV.src"
"$PY" -m venv --system-site-packages "$VENV"
mkdir -p "$VENV.src"
cp -R "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/pdwebhook" "$VENV.src/"
"$VENV/bin/python" -m pip install -q --no-build-isolation --no-index --no-deps \
  --disable-pip-version-check "$VENV.src"
cmake --install "$BUILD" --prefix "$VENV" >/dev/null
echo "make_venv: $("$VENV/bin/python" -c 'import pdwebhook; print(pdwebhook.__file__, pdwebhook.__version__, pdwebhook.version(), pdwebhook.library_path())')"
