"""The legacy MediaPipe (0.10.21, `mp.solutions`) for the benchmarks, in its own venv.

The engine runs on MediaPipe's Tasks API; the benchmarks keep the legacy solution for two things:
the 4-view reference (multiview_reference.py), so that it stays the fixed yardstick it was before
the port, and the side-by-side comparison of pose_stage.py. The venv (benchmarks/.cache/legacy/venv)
has mediapipe 0.10.21 and protobuf 4 in its own site-packages, in front of .venv's (a .pth file):
everything else is the same stack (numpy 1.26, OpenCV 4.10). Made once, with pip, on first use.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache" / "legacy"
LEGACY_COMMIT = "392f33cc8b882101477b8654672ab0143990b575"  # the engine's last commit on mp.solutions
TASKS_COMMIT = "f0d62cb04503dbe80c13336b1d1652ab009c5543"  # its last commit on the Tasks API (body)
PINS = ("mediapipe==0.10.21", "protobuf==4.25.9", "attrs==26.1.0")


def python() -> Path:
    """The legacy venv's interpreter, made on first use."""
    venv = CACHE / "venv"
    py = venv / "bin" / "python"
    stamp = venv / ".hp3d-pins"
    if py.exists() and stamp.exists() and stamp.read_text() == "\n".join(PINS):
        return py
    print("legacy MediaPipe: setting up benchmarks/.cache/legacy/venv (once)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "hp3d-base-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                    "--no-deps", "--target", str(site), *PINS], check=True)
    stamp.write_text("\n".join(PINS))
    return py


def engine_source(commit: str = LEGACY_COMMIT) -> Path:
    """The engine as it was at `commit`, taken out of this repository's history."""
    src = CACHE / f"src-{commit[:12]}"
    if not (src / "engine" / "pipeline.py").is_file():
        src.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "engine"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    return src
