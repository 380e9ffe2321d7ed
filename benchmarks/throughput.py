"""Throughput: a whole `run` (every default output: TRC, C3D, angles, figures, report) versus
the pose tracker alone (engine/blazepose.py: decode, RGB, BlazePose) on the same frames, one process.

Prints frames/s of both and their ratio (target ≥ 0.8), then where the run's time goes (from its
run.json: pose with decoding and the person search, reconstruction, augmentation, the angle
figures and report, the rest). Both sides include opening the video and loading the pose
models; the order alternates over repeats to spread machine noise. `--minutes M` adds a clip of M
minutes (the demo looped, as benchmarks/memory.py makes it): the figures are a cost per run, not
per frame, so the ratio depends on the clip's length.

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
    print(f"{'video':<18}{'frames':>7}{'pose fps':>15}{'run fps':>10}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        videos = args.videos or demo_videos()
        if args.minutes > 0:
            videos = [*videos, looped_clip(args.minutes, Path(tmp))]
        for video in videos:
            mp_fps, run_fps, runs = [], [], []
            for r in range(args.repeats):
                order = (pose_alone, engine_run) if r % 2 == 0 else (engine_run, pose_alone)
                for fn in order:
                    if fn is pose_alone:
                        n, dt = fn(video)
                        mp_fps.append(n / dt)
                    else:
                        n, dt, record = fn(video, Path(tmp) / "out")
                        run_fps.append(n / dt)
                        runs.append((dt, record))
            m, e = statistics.median(mp_fps), statistics.median(run_fps)
            print(f"{video.name:<18}{n:>7}{m:>15.1f}{e:>10.1f}{e / m:>8.2f}")
            dt, record = sorted(runs, key=lambda x: x[0])[len(runs) // 2]
            print(f"{'':<18}{breakdown(record, dt)}")


if __name__ == "__main__":
    main()
