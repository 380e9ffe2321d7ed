"""Throughput: a whole `run` (every default output: TRC, C3D, angles, figures, report) versus
the pose stage alone on the same frames, one process: our BlazePose tracker (engine/blazepose.py:
decode, RGB, BlazePose, what the run's pose stage is) and MediaPipe's own maintained
PoseLandmarker (Tasks API, VIDEO mode, the same full model; what the issue's "MediaPipe alone"
names), each in the loop a user would write.

Prints frames/s of the three and the run's ratio to each (target >= 0.8), then where the run's
time goes (from its run.json: pose with decoding and the person search, reconstruction,
augmentation, the angle figures and report, the rest). Every side includes opening the video and
loading the models; the order rotates over repeats to spread machine noise. `--minutes M` adds a
clip of M minutes (the demo looped, as benchmarks/memory.py makes it): the figures are a cost per
run, not per frame, so the ratio depends on the clip's length.

    .venv/bin/python benchmarks/throughput.py [VIDEO ...] [--repeats N] [--minutes M]
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

from engine.blazepose import BlazePoseTracker  # noqa: E402
from engine.bundles import pose_bundle  # noqa: E402
from engine.config import RunConfig  # noqa: E402
from engine.pipeline import run  # noqa: E402


def demo_videos() -> list[Path]:
    p2s = Path(importlib.util.find_spec("Pose2Sim").origin).parent
    s2d = Path(importlib.util.find_spec("Sports2D").origin).parent
    return [p2s / "Demo_SinglePerson/videos/cam01.mp4", s2d / "Demo/demo.mp4"]


def pose_alone(video: Path) -> tuple[int, float]:
    """The loop a user would write: decode, convert to RGB, the engine's BlazePose tracker."""
    t = time.perf_counter()
    cap = cv2.VideoCapture(str(video))
    n = 0
    tracker = BlazePoseTracker(pose_bundle("full"))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        tracker.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        n += 1
    cap.release()
    return n, time.perf_counter() - t


def mediapipe_alone(video: Path) -> tuple[int, float]:
    """The same loop with MediaPipe's PoseLandmarker (Tasks API, VIDEO mode, full model)."""
    from engine import mediapipe_tasks as tasks

    t = time.perf_counter()
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    n = 0
    with tasks.quiet_native_stderr():
        landmarker = tasks.pose_landmarker("full", video=True)
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            landmarker.detect_for_video(tasks.image(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)),
                                        int(round(n * 1000.0 / fps)))
            n += 1
        landmarker.close()
    cap.release()
    return n, time.perf_counter() - t


def engine_run(video: Path, out: Path) -> tuple[int, float, dict]:
    t = time.perf_counter()
    res = run(RunConfig(video=video, height_m=1.72, out_dir=out, force=True))
    return res.record["frames"]["read"], time.perf_counter() - t, res.record


def breakdown(record: dict, wall: float) -> str:
    """Shares of the run's wall time, from run.json's timings."""
    t, b = record["timings"], record["biomechanics"].get("timings", {})
    parts = {"pose": t["pose_s"], "reconstruct": t["reconstruct_s"] + t["write_s"],
             "augment": b.get("augment_s", 0.0), "figures": b.get("angle_files_s", 0.0)}
    parts["other"] = max(wall - sum(parts.values()), 0.0)
    return "  ".join(f"{k} {v:.1f} s ({100 * v / wall:.0f} %)" for k, v in parts.items())


def looped_clip(minutes: float, folder: Path) -> Path:
    """The demo looped to `minutes` at 30 fps (benchmarks/memory.py's clip)."""
    spec = importlib.util.spec_from_file_location("_bench_memory", Path(__file__).with_name("memory.py"))
    memory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(memory)
    cycle, out = folder / "cycle.mp4", folder / f"demo_{minutes:g}min.mp4"
    memory.encode_cycle(cycle, 30)
    memory.loop_video(cycle, out, int(minutes * 60 * 30))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("videos", nargs="*", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=0.0, help="also a looped demo clip this long")
    args = ap.parse_args()
    print(f"{'video':<18}{'frames':>7}{'tracker fps':>13}{'MediaPipe fps':>15}{'run fps':>10}"
          f"{'ratio tracker':>15}{'ratio MediaPipe':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        videos = args.videos or demo_videos()
        if args.minutes > 0:
            videos = [*videos, looped_clip(args.minutes, Path(tmp))]
        for video in videos:
            fps: dict[str, list[float]] = {"tracker": [], "mediapipe": [], "run": []}
            runs = []
            sides = ["tracker", "mediapipe", "run"]
            for r in range(args.repeats):
                for side in sides[r % 3:] + sides[:r % 3]:
                    if side == "run":
                        n, dt, record = engine_run(video, Path(tmp) / "out")
                        runs.append((dt, record))
                    else:
                        n, dt = (pose_alone if side == "tracker" else mediapipe_alone)(video)
                    fps[side].append(n / dt)
            t, m, e = (statistics.median(fps[k]) for k in ("tracker", "mediapipe", "run"))
            print(f"{video.name:<18}{n:>7}{t:>13.1f}{m:>15.1f}{e:>10.1f}{e / t:>15.2f}{e / m:>17.2f}")
            dt, record = sorted(runs, key=lambda x: x[0])[len(runs) // 2]
            print(f"{'':<18}{breakdown(record, dt)}")


if __name__ == "__main__":
    main()
