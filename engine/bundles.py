"""MediaPipe Tasks model bundles (`.task`): where they live and the build step that makes them.

mediapipe >= 1.2 runs BlazePose through its Tasks API, which reads a `.task` zip of TFLite models
with metadata; no package ships one, and nothing may be downloaded at run time. The Apache-2.0
models themselves ship in packages, so this build step (run by scripts/bootstrap.sh and
`make extension`) fetches those packages from their registries once, takes the models out, checks
their SHA-256, writes the metadata the Tasks graphs need (engine/tflite_metadata.py) and zips:

    models/pose_landmarker_{lite,full,heavy}.task   pose detector + landmark model
    models/holistic_landmarker_{lite,full,heavy}.task  the same + hand, hand re-crop, face
                                                       detector and face mesh models

    python -m engine.bundles [--dest DIR] [--sources DIR]

At run time `bundle_path()` finds them in $HP3D_MODELS, else in models/ beside the engine (the
add-on's root, where the extension package carries them).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import EngineError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "models"
POSE_MODELS = ("lite", "full", "heavy")
BUILD_COMMAND = "python -m engine.bundles"

# The packages that carry the models, pinned: the wheel of the last legacy MediaPipe release (pose
# detector, full landmark model, hands, face) and npm's @mediapipe/pose (lite and heavy; its full
# model is byte-identical to the wheel's).
WHEEL = "mediapipe==0.10.21"
NPM = "@mediapipe/pose@0.5.1675469404"


@dataclass(frozen=True)
class Source:
    package: str  # "wheel" or "npm"
    path: str  # inside the package
    sha256: str


SOURCES: dict[str, Source] = {
    "pose_detection": Source("wheel", "mediapipe/modules/pose_detection/pose_detection.tflite",
                             "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    "pose_landmark_full": Source("wheel", "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
                                 "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
    "pose_landmark_lite": Source("npm", "package/pose_landmark_lite.tflite",
                                 "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61"),
    "pose_landmark_heavy": Source("npm", "package/pose_landmark_heavy.tflite",
                                  "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe"),
    "hand_landmark_full": Source("wheel", "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
                                 "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3"),
    "hand_recrop": Source("wheel", "mediapipe/modules/holistic_landmark/hand_recrop.tflite",
                          "67d996ce96f9d36fe17d2693022c6da93168026ab2f028f9e2365398d8ac7d5d"),
    "face_detection_short_range": Source(
        "wheel", "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
    "face_landmark": Source("wheel", "mediapipe/modules/face_landmark/face_landmark.tflite",
                            "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"),
}

# Input value range of each model, as the legacy graphs' ImageToTensorCalculator set it.
_SIGNED, _UNIT = (-1.0, 1.0), (0.0, 1.0)
_FACE_POINTS_TASKS, _FACE_POINTS_MESH = 478, 468


def bundle_path(name: str, directory: Path | None = None) -> Path:
    """The path of bundle `name` (e.g. "pose_landmarker_full"), or one clear error naming the
    command that makes it."""
    folder = Path(directory or os.environ.get("HP3D_MODELS") or DEFAULT_DIR)
    path = folder / f"{name}.task"
    if not path.is_file():
        raise EngineError(f"model bundle missing: {path} (make it with `{BUILD_COMMAND}`, "
                          f"or `make venv`)")
    # The zip's directory only (a run looks a bundle up three times): models that TFLite cannot
    # read are reported when the landmarker is made (engine/mediapipe_tasks.py).
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise EngineError(f"model bundle corrupt: {path} ({exc}); rebuild it with "
                          f"`{BUILD_COMMAND}`") from None
    if not any(n.endswith(".tflite") for n in names):
        raise EngineError(f"model bundle corrupt: {path}; rebuild it with `{BUILD_COMMAND}`")
    return path


def unusable(bundle: Path, exc: BaseException) -> EngineError:
    """The one error line for a bundle whose models the runtime cannot read."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return EngineError(f"model bundle unusable: {bundle} ({first}); rebuild it with `{BUILD_COMMAND}`")


def pose_bundle(model: str, holistic: bool = False, directory: Path | None = None) -> Path:
    if model not in POSE_MODELS:
        raise EngineError(f"--pose-model must be one of {', '.join(POSE_MODELS)}, got {model!r}")
    return bundle_path(f"{'holistic' if holistic else 'pose'}_landmarker_{model}", directory)


# --- the build step -----------------------------------------------------------------------------

def _fetch(sources_dir: Path) -> dict[str, Path]:
    """The two source packages, downloaded once into sources_dir with pip and npm."""
    sources_dir.mkdir(parents=True, exist_ok=True)
    found = {"wheel": sorted(sources_dir.glob("mediapipe-0.10.21-*.whl")),
             "npm": sorted(sources_dir.glob("mediapipe-pose-*.tgz"))}
    if not found["wheel"]:
        # Any platform's wheel holds the same model files; this one exists for every pip.
        subprocess.run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
                        "--no-deps", "--only-binary=:all:", "--python-version", "3.11",
                        "--platform", "manylinux_2_28_x86_64", "-d", str(sources_dir), WHEEL],
                       check=True)
        found["wheel"] = sorted(sources_dir.glob("mediapipe-0.10.21-*.whl"))
    if not found["npm"]:
        npm = shutil.which("npm")
        if npm is None:
            raise EngineError("npm is needed once to fetch @mediapipe/pose (apt-get install npm)")
        subprocess.run([npm, "pack", "--silent", "--pack-destination", str(sources_dir), NPM],
                       check=True, stdout=subprocess.DEVNULL)
        found["npm"] = sorted(sources_dir.glob("mediapipe-pose-*.tgz"))
    if not found["wheel"] or not found["npm"]:
        raise EngineError(f"could not fetch {WHEEL} and {NPM} into {sources_dir}")
    return {k: v[-1] for k, v in found.items()}


def _read_models(packages: dict[str, Path]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with zipfile.ZipFile(packages["wheel"]) as whl, tarfile.open(packages["npm"]) as tgz:
        for key, src in SOURCES.items():
            if src.package == "wheel":
                data = whl.read(src.path)
            else:
                member = tgz.extractfile(src.path)
                if member is None:
                    raise EngineError(f"{src.path} missing from {packages['npm'].name}")
                data = member.read()
            digest = hashlib.sha256(data).hexdigest()
            if digest != src.sha256:
                raise EngineError(f"{src.path} in {packages[src.package].name} has SHA-256 "
                                  f"{digest}, expected {src.sha256}")
            out[key] = data
    return out


def _bundles(models: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    """Bundle name → {file name inside the .task: model bytes with metadata}, as the Tasks
    graphs name them (pose_landmarker_graph.cc, holistic_landmarker_graph.cc)."""
    from .tflite_metadata import add_image_metadata, pad_output

    detector = add_image_metadata(models["pose_detection"], "pose_detector", _SIGNED)
    landmarks = {m: add_image_metadata(models[f"pose_landmark_{m}"], "pose_landmarks_detector", _UNIT)
                 for m in POSE_MODELS}
    out = {f"pose_landmarker_{m}": {"pose_detector.tflite": detector,
                                    "pose_landmarks_detector.tflite": landmarks[m]}
           for m in POSE_MODELS}
    face = pad_output(models["face_landmark"], 0, 3 * (_FACE_POINTS_TASKS - _FACE_POINTS_MESH))
    parts = {
        "hand_landmarks_detector.tflite": add_image_metadata(
            models["hand_landmark_full"], "hand_landmarks_detector", _UNIT),
        "hand_roi_refinement.tflite": add_image_metadata(models["hand_recrop"], "hand_roi_refinement", _UNIT),
        "face_detector.tflite": add_image_metadata(models["face_detection_short_range"], "face_detector",
                                                   _SIGNED),
        "face_landmarks_detector.tflite": add_image_metadata(face, "face_landmarks_detector", _UNIT),
    }
    for m in POSE_MODELS:
        out[f"holistic_landmarker_{m}"] = {**out[f"pose_landmarker_{m}"], **parts}
    return out


def build(dest: Path = DEFAULT_DIR, sources_dir: Path | None = None) -> list[Path]:
    """Make every bundle in dest (each written to a temporary name and renamed when whole)."""
    dest.mkdir(parents=True, exist_ok=True)
    models = _read_models(_fetch(sources_dir or dest / "sources"))
    written = []
    for name, files in _bundles(models).items():
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # mmapped by MediaPipe: stored
            for fname, data in files.items():
                zf.writestr(zipfile.ZipInfo(fname, (2020, 1, 1, 0, 0, 0)), data)
        with tempfile.NamedTemporaryFile(dir=dest, prefix=f".{name}-", delete=False) as tmp:
            tmp.write(buf.getvalue())
        target = dest / f"{name}.task"
        os.replace(tmp.name, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.bundles",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=DEFAULT_DIR,
                    help="where the .task files go (default: models/)")
    ap.add_argument("--sources", type=Path, default=None,
                    help="download cache for the source packages (default: DEST/sources)")
    args = ap.parse_args(argv)
    try:
        for path in build(args.dest, args.sources):
            print(f"{path}  {path.stat().st_size / 2**20:.1f} MiB")
    except (EngineError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
