#!/usr/bin/env bash
# Create or update .venv-bpy42: the same engine stack as .venv with the Blender 4.2 LTS bpy module in
# front of it, so the add-on's tests run on 4.2 as well as 5.0. Only bpy differs: this venv's own
# site-packages (bpy 4.2) comes first on sys.path and a .pth file appends .venv's site-packages
# (the engine's requirements; its bpy 5.0 is shadowed). Idempotent like scripts/bootstrap.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
PY=${PYTHON:-python3.11}
VENV=.venv-bpy42
STAMP=$VENV/.hp3d-stamp
base_site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
want=$( (cat requirements/bpy42.txt scripts/bootstrap-bpy42.sh; echo "$base_site") | sha256sum | cut -d' ' -f1)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
    exit 0
fi
echo "bootstrap: setting up $VENV (bpy 4.2 LTS, about 520 MB)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$base_site" > "$site/hp3d-base-venv.pth"
# --no-deps: bpy's own requirements (numpy 1.26, requests, zstandard, cython) come from .venv.
"$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps -r requirements/bpy42.txt
"$VENV/bin/python" - <<'PY'
import bpy, mediapipe, numpy  # noqa: F401  fail fast on a broken stack
assert bpy.app.version[:2] == (4, 2), bpy.app.version_string
assert numpy.__version__.startswith("1."), numpy.__version__
PY
echo "$want" > "$STAMP"
