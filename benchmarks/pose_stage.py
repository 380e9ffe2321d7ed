"""The pose stage on MediaPipe's Tasks API (mediapipe 1.2, our bundles) against the legacy
`mp.solutions` stage (mediapipe 0.10.21), side by side in one run, on each camera of Pose2Sim's demo.

- Legacy: the engine as it was before the port (LEGACY_COMMIT, taken out of this repository's own
  history with `git archive`) in a venv whose own site-packages hold mediapipe 0.10.21 in front of
  .venv's (everything else is the same stack), run in a child process.
- New: this engine with each pose model (lite, full, heavy), in this process.

Both are scored against the same 4-view reference (benchmarks/multiview_reference.py) with
accuracy.py's score(): PA-MPJPE, knee and elbow 3-point angle RMSE, foot skate. Printed beside them:
the median distance in pixels between each run's landmarks and the legacy ones on the same frames
(raw_landmarks.csv, the 33 landmarks, frames both detected), and the pose stage's frames/s alone
(decoding excluded, the detector only, median of 3 passes over the video, interleaved with the
legacy's so that both see the same machine load).

    .venv/bin/python benchmarks/pose_stage.py [--models lite,full,heavy] [--cameras cam01,cam02]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from accuracy import score, trc_as_mediapipe  # noqa: E402
from multiview_reference import demo_dir, load_reference  # noqa: E402

from engine.joint_sets import MEDIAPIPE_33  # noqa: E402
from engine.video import probe, stream_frames  # noqa: E402

LEGACY_COMMIT = "392f33cc8b882101477b8654672ab0143990b575"  # the last commit on mediapipe 0.10.21
LEGACY_PINS = ("mediapipe==0.10.21", "protobuf==4.25.9", "attrs==26.1.0")
CACHE = ROOT / "benchmarks" / ".cache" / "legacy"
COLS = ("pa_mpjpe_mm", "knee_rmse_deg", "elbow_rmse_deg", "foot_skate_mps")

# Run inside the legacy venv, from the legacy source tree: time its PoseDetector alone on frames
# that are already decoded, `passes` times.
_LEGACY_TIMER = """
import json, sys, time
import numpy as np
from engine.landmarks import LandmarkTrack, PoseDetector
frames = np.load(sys.argv[1])["frames"]
track = LandmarkTrack(len(frames))
rates = []
for _ in range(int(sys.argv[2])):
    with PoseDetector() as det:
        t0 = time.perf_counter()
        for i, rgb in enumerate(frames):
            det.process(rgb, track, i)
        rates.append(len(frames) / (time.perf_counter() - t0))
print(json.dumps(rates))
"""


def legacy_env() -> tuple[Path, Path]:
    """(python, source tree) of the legacy engine; made once under benchmarks/.cache/legacy."""
    src, venv = CACHE / f"src-{LEGACY_COMMIT[:12]}", CACHE / "venv"
    if not (src / "engine" / "pipeline.py").is_file():
        src.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", LEGACY_COMMIT, "engine"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
        (site / "hp3d-base-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                        "--no-deps", "--target", str(site), *LEGACY_PINS], check=True)
    return py, src


def decoded(video: Path) -> np.ndarray:
    info = probe(video)
    return np.stack([rgb for _, rgb in stream_frames(info, 0, None)])


def new_rates(frames: np.ndarray, model: str, fps: float, passes: int) -> list[float]:
    from engine.landmarks import LandmarkTrack, PoseDetector

    track, rates = LandmarkTrack(len(frames)), []
    for _ in range(passes):
        with PoseDetector(model=model, fps=fps) as det:
            t0 = time.perf_counter()
            for i, rgb in enumerate(frames):
                det.process(rgb, track, i)
            rates.append(len(frames) / (time.perf_counter() - t0))
    return rates


def run_engine(python: Path, cwd: Path, video: Path, out: Path, focal: float, extra: list[str]) -> Path:
    argv = [str(python), "-m", "engine", "run", str(video), "--height", "1.72", "--out", str(out),
            "--force", "--quiet", "--no-plots", "--focal-px", f"{focal:.2f}", *extra]
    env = dict(os.environ, PYTHONPATH=str(cwd))
    subprocess.run(argv, cwd=cwd, env=env, check=True)
    return out / video.stem


def _pixels(csv: Path) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    df = pd.read_csv(csv)
    cols = [f"{n}_{a}_px" for n in MEDIAPIPE_33 for a in ("u", "v")]
    return df["detected"].to_numpy(bool), df[cols].to_numpy(float).reshape(len(df), 33, 2)


def landmark_px(a_dir: Path, b_dir: Path, stem: str) -> float:
    """Median distance (px) between two runs' landmarks over the frames both detected."""
    (da, pa), (db, pb) = (_pixels(d / f"{stem}_raw_landmarks.csv") for d in (a_dir, b_dir))
    n = min(len(da), len(db))
    both = da[:n] & db[:n]
    d = np.linalg.norm(pa[:n][both] - pb[:n][both], axis=-1)
    return float(np.nanmedian(d)) if d.size else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lite,full,heavy")
    ap.add_argument("--cameras", default="", help="comma-separated, e.g. cam01 (default: all four)")
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()
    models = args.models.split(",")
    ref = load_reference()
    legacy_py, legacy_src = legacy_env()
    wanted = set(filter(None, args.cameras.split(",")))
    print(f"legacy: mediapipe 0.10.21 mp.solutions (engine at {LEGACY_COMMIT[:12]}); new: mediapipe "
          f"1.2 Tasks API with our bundles; reference: {ref.world_33.shape[0]} frames, 4 views")
    print(f"{'camera':<8}{'pose stage':<12}" + "".join(f"{c:>16}" for c in COLS)
          + f"{'px vs legacy':>14}{'pose fps':>10}{'fps ratio':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for c, cam in enumerate(ref.cameras):
            if wanted and cam.name not in wanted:
                continue
            video = demo_dir() / "videos" / f"{cam.name}.mp4"
            focal = float(cam.K[0, 0])
            frames = decoded(video)
            npz = Path(tmp) / "frames.npz"
            np.savez(npz, frames=frames)
            rates: dict[str, list[float]] = {"legacy": []}
            for _ in range(args.passes):  # interleaved: legacy, then each new model, per round
                out = subprocess.run([str(legacy_py), "-c", _LEGACY_TIMER, str(npz), "1"], cwd=legacy_src,
                                     env=dict(os.environ, PYTHONPATH=str(legacy_src)), check=True,
                                     capture_output=True, text=True).stdout
                rates["legacy"] += json.loads(out.strip().splitlines()[-1])
                for m in models:
                    rates.setdefault(m, []).extend(new_rates(frames, m, ref.fps, 1))
            dirs = {"legacy": run_engine(legacy_py, legacy_src, video, Path(tmp) / "legacy", focal, [])}
            for m in models:
                dirs[m] = run_engine(Path(sys.executable), ROOT, video, Path(tmp) / m, focal,
                                     ["--pose-model", m])
            legacy_fps = float(np.median(rates["legacy"]))
            for name, d in dirs.items():
                s = score(trc_as_mediapipe(d / f"{cam.name}_initial.trc"), ref.in_camera(c), ref.fps, rigid=True)
                px = landmark_px(d, dirs["legacy"], cam.name)
                fps = float(np.median(rates[name]))
                print(f"{cam.name:<8}{name:<12}" + "".join(f"{s[k]:>16.2f}" for k in COLS)
                      + f"{px:>14.2f}{fps:>10.1f}{fps / legacy_fps:>11.2f}")


if __name__ == "__main__":
    main()
