"""The pose stage (BlazePose on LiteRT, engine/blazepose.py, models from our bundles) against the
legacy `mp.solutions` stage (mediapipe 0.10.21), side by side in one run, on each camera of
Pose2Sim's demo.

- Legacy: the engine as it was before the port (legacy_mediapipe.LEGACY_COMMIT, taken out of this
  repository's own history with `git archive`) in the legacy venv (mediapipe 0.10.21 in front of
  .venv's stack; legacy_mediapipe.py), run in a child process.
- New: this engine with each pose model (lite, full, heavy), in this process; and, for the full
  model, MediaPipe's Tasks API in video mode ("tasks"), the engine's pose stage before this one.

Both are scored against the same 4-view reference (benchmarks/multiview_reference.py) with
accuracy.py's score(): PA-MPJPE, knee and elbow 3-point angle RMSE, foot skate. Printed beside them:
the median distance in pixels between each side's landmarks and the legacy ones on the same frames
(the 33 landmarks, frames both detected): "run px" between the engine runs (raw_landmarks.csv; the
runs also differ in the subject crop: the legacy engine ran MediaPipe on the crop, this one looks
for a lost person in it but tracks on the whole frame), "stage px" between the pose stages alone
on the whole frames in video mode (tracking and smoothing), "still px" in still-image mode (each
frame alone: the models and their input handling, nothing else); and the pose stage's frames/s
alone (decoding excluded, median of 3 passes over the video, interleaved with the legacy's so that
both see the same machine load).

    .venv/bin/python benchmarks/pose_stage.py [--models lite,full,heavy,tasks] [--cameras cam01,cam02]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import legacy_mediapipe  # noqa: E402
from accuracy import score, trc_as_mediapipe  # noqa: E402
from multiview_reference import demo_dir, load_reference  # noqa: E402

from engine.joint_sets import MEDIAPIPE_33  # noqa: E402
from engine.result import core_files  # noqa: E402
from engine.video import probe, stream_frames  # noqa: E402

COLS = ("pa_mpjpe_mm", "knee_rmse_deg", "elbow_rmse_deg", "foot_skate_mps")

# Run inside the legacy venv, from the legacy source tree: one timed pass of its PoseDetector
# alone (whole frames, video mode) over frames that are already decoded → frames/s; its landmarks
# (T, 33, 2) are saved to argv[2].
_LEGACY_TIMER = """
import sys, time
import numpy as np
from engine.landmarks import LandmarkTrack, PoseDetector
frames = np.load(sys.argv[1])["frames"]
track = LandmarkTrack(len(frames))
with PoseDetector() as det:
    t0 = time.perf_counter()
    for i, rgb in enumerate(frames):
        det.process(rgb, track, i)
    print(len(frames) / (time.perf_counter() - t0))
np.save(sys.argv[2], track.pixels)
"""


# Run inside the legacy venv: the legacy solution in still-image mode (no tracking, no smoothing)
# on each frame → (T, 33, 2) pixels, NaN where it found no one.
_LEGACY_STILL = """
import sys
import numpy as np
import mediapipe as mp
frames = np.load(sys.argv[1])["frames"]
out = np.full((len(frames), 33, 2), np.nan)
with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
    for i, rgb in enumerate(frames):
        res = pose.process(rgb)
        if res.pose_landmarks:
            h, w = rgb.shape[:2]
            out[i] = [(p.x * w, p.y * h) for p in res.pose_landmarks.landmark]
np.save(sys.argv[2], out)
"""


def legacy(snippet: str, *args: str) -> str:
    """Run a snippet in the legacy venv with the legacy engine importable; its stdout."""
    src = legacy_mediapipe.engine_source()
    return subprocess.run([str(legacy_mediapipe.python()), "-c", snippet, *args], cwd=src,
                          env=dict(os.environ, PYTHONPATH=str(src)), check=True, capture_output=True,
                          text=True).stdout


def still_pixels(frames: np.ndarray, model: str) -> np.ndarray:
    """Each frame alone (no tracking, no smoothing) → (T, 33, 2) pixels: this engine's tracker
    reset before every frame, or ("tasks") the Tasks PoseLandmarker in image mode."""
    from engine import mediapipe_tasks as tasks
    from engine.blazepose import BlazePoseTracker
    from engine.bundles import pose_bundle

    out = np.full((len(frames), 33, 2), np.nan)
    if model != "tasks":
        tracker = BlazePoseTracker(pose_bundle(model), smooth=False)
        for i, rgb in enumerate(frames):
            tracker.reset()
            found = tracker.process(rgb)
            if found is not None:
                out[i] = found.pixels
        return out
    landmarker = tasks.pose_landmarker("full", video=False)
    try:
        for i, rgb in enumerate(frames):
            people = landmarker.detect(tasks.image(rgb)).pose_landmarks
            if people:
                out[i] = tasks.xyz(people[0])[:, :2] * (rgb.shape[1], rgb.shape[0])
    finally:
        landmarker.close()
    return out


def decoded(video: Path) -> np.ndarray:
    info = probe(video)
    return np.stack([rgb for _, rgb in stream_frames(info, 0, None)])


def new_rate(frames: np.ndarray, model: str, fps: float) -> tuple[float, np.ndarray]:
    """One timed pass of this engine's PoseDetector (or, "tasks", the Tasks PoseLandmarker in
    video mode) over decoded whole frames → frames/s and the landmarks (T, 33, 2)."""
    from engine import mediapipe_tasks as tasks
    from engine.landmarks import LandmarkTrack, PoseDetector

    track = LandmarkTrack(len(frames))
    if model == "tasks":
        landmarker = tasks.pose_landmarker("full", video=True)
        try:
            t0 = time.perf_counter()
            for i, rgb in enumerate(frames):
                res = landmarker.detect_for_video(tasks.image(rgb), int(round(i * 1000 / fps)))
                if res.pose_landmarks:
                    track.pixels[i] = tasks.xyz(res.pose_landmarks[0])[:, :2] * rgb.shape[1::-1]
            return len(frames) / (time.perf_counter() - t0), track.pixels
        finally:
            landmarker.close()
    with PoseDetector(model=model, fps=fps) as det:
        t0 = time.perf_counter()
        for i, rgb in enumerate(frames):
            det.process(rgb, track, i)
        return len(frames) / (time.perf_counter() - t0), track.pixels


def run_engine(python: Path, cwd: Path, video: Path, out: Path, focal: float, extra: list[str]) -> Path:
    argv = [str(python), "-m", "engine", "run", str(video), "--height", "1.72", "--out", str(out),
            "--force", "--quiet", "--no-plots", "--focal-px", f"{focal:.2f}", *extra]
    # an engine taken out of the history finds this checkout's bundles
    env = dict(os.environ, PYTHONPATH=str(cwd), HP3D_MODELS=str(ROOT / "models"))
    subprocess.run(argv, cwd=cwd, env=env, check=True)
    return out / video.stem


def _pixels(csv: Path) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    df = pd.read_csv(csv)
    cols = [f"{n}_{a}_px" for n in MEDIAPIPE_33 for a in ("u", "v")]
    return df["detected"].to_numpy(bool), df[cols].to_numpy(float).reshape(len(df), 33, 2)


def landmark_px(a_dir: Path, b_dir: Path, stem: str) -> float:
    """Median distance (px) between two runs' landmarks over the frames both detected."""
    name = core_files(stem)["landmarks_csv"]
    (da, pa), (db, pb) = (_pixels(d / name) for d in (a_dir, b_dir))
    n = min(len(da), len(db))
    both = da[:n] & db[:n]
    d = np.linalg.norm(pa[:n][both] - pb[:n][both], axis=-1)
    return float(np.nanmedian(d)) if d.size else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lite,full,heavy,tasks")
    ap.add_argument("--cameras", default="", help="comma-separated, e.g. cam01 (default: all four)")
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()
    models = args.models.split(",")
    ref = load_reference()
    legacy_py, legacy_src = legacy_mediapipe.python(), legacy_mediapipe.engine_source()
    wanted = set(filter(None, args.cameras.split(",")))
    print(f"legacy: mediapipe 0.10.21 mp.solutions (engine at {legacy_mediapipe.LEGACY_COMMIT[:12]}); "
          "new: BlazePose on LiteRT (engine/blazepose.py) with our bundles; tasks: the full model on "
          f"mediapipe 1.2's Tasks API (engine at {legacy_mediapipe.TASKS_COMMIT[:12]}); "
          f"reference: {ref.world_33.shape[0]} frames, 4 views")
    print(f"{'camera':<8}{'pose stage':<12}" + "".join(f"{c:>16}" for c in COLS)
          + f"{'run px':>10}{'stage px':>10}{'still px':>10}{'pose fps':>10}{'fps ratio':>11}")
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
                stage_npy = Path(tmp) / "stage.npy"
                rates["legacy"].append(float(legacy(_LEGACY_TIMER, str(npz), str(stage_npy))
                                             .strip().splitlines()[-1]))
                stage = {"legacy": np.load(stage_npy)}
                for m in models:
                    rate, stage[m] = new_rate(frames, m, ref.fps)
                    rates.setdefault(m, []).append(rate)
            dirs = {"legacy": run_engine(legacy_py, legacy_src, video, Path(tmp) / "legacy", focal, [])}
            for m in models:
                src = legacy_mediapipe.engine_source(legacy_mediapipe.TASKS_COMMIT) if m == "tasks" else ROOT
                dirs[m] = run_engine(Path(sys.executable), src, video, Path(tmp) / m, focal,
                                     ["--pose-model", "full" if m == "tasks" else m])
            legacy_fps = float(np.median(rates["legacy"]))
            legacy(_LEGACY_STILL, str(npz), str(Path(tmp) / "still.npy"))
            still = {"legacy": np.load(Path(tmp) / "still.npy")}
            for name, d in dirs.items():
                pred = trc_as_mediapipe(d / core_files(cam.name)["initial_trc"])
                s = score(pred, ref.in_camera(c), ref.fps, rigid=True)
                px = landmark_px(d, dirs["legacy"], cam.name)
                if name not in still:
                    still[name] = still_pixels(frames, name)
                still_px = float(np.nanmedian(np.linalg.norm(still[name] - still["legacy"], axis=-1)))
                stage_px = float(np.nanmedian(np.linalg.norm(stage[name] - stage["legacy"], axis=-1)))
                fps = float(np.median(rates[name]))
                print(f"{cam.name:<8}{name:<12}" + "".join(f"{s[k]:>16.2f}" for k in COLS)
                      + f"{px:>10.2f}{stage_px:>10.2f}{still_px:>10.2f}{fps:>10.1f}"
                      f"{fps / legacy_fps:>11.2f}")


if __name__ == "__main__":
    main()
