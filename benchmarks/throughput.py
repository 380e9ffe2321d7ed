"""Throughput: `run` to initial.trc versus MediaPipe Pose alone on the same frames, one process.

Prints frames/s of both and their ratio (target ≥ 0.8). Both sides include opening the video and
building the MediaPipe graph; the order alternates over repeats to spread machine noise.

    .venv/bin/python benchmarks/throughput.py [VIDEO ...] [--repeats N]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import mediapipe_tasks as tasks  # noqa: E402
from engine.config import RunConfig  # noqa: E402
from engine.landmarks import PoseDetector  # noqa: E402
from engine.pipeline import run  # noqa: E402


def demo_videos() -> list[Path]:
    p2s = Path(importlib.util.find_spec("Pose2Sim").origin).parent
    s2d = Path(importlib.util.find_spec("Sports2D").origin).parent
    return [p2s / "Demo_SinglePerson/videos/cam01.mp4", s2d / "Demo/demo.mp4"]


def mediapipe_alone(video: Path) -> tuple[int, float]:
    """The loop a user would write: decode, convert to RGB, PoseLandmarker.detect_for_video."""
    t = time.perf_counter()
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    n = 0
    with PoseDetector(fps=fps) as det:
        model = det._model
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            model.detect_for_video(tasks.image(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)),
                                   int(round(n * 1000.0 / fps)))
            n += 1
    cap.release()
    return n, time.perf_counter() - t


def engine_run(video: Path, out: Path) -> tuple[int, float]:
    t = time.perf_counter()
    res = run(RunConfig(video=video, height_m=1.72, out_dir=out, force=True))
    return res.record["frames"]["read"], time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("videos", nargs="*", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'video':<14}{'frames':>7}{'mediapipe fps':>15}{'run fps':>10}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for video in args.videos or demo_videos():
            mp_fps, run_fps = [], []
            for r in range(args.repeats):
                order = (mediapipe_alone, engine_run) if r % 2 == 0 else (engine_run, mediapipe_alone)
                for fn in order:
                    n, dt = fn(video) if fn is mediapipe_alone else fn(video, Path(tmp))
                    (mp_fps if fn is mediapipe_alone else run_fps).append(n / dt)
            m, e = statistics.median(mp_fps), statistics.median(run_fps)
            print(f"{video.name:<14}{n:>7}{m:>15.1f}{e:>10.1f}{e / m:>8.2f}")


if __name__ == "__main__":
    main()
