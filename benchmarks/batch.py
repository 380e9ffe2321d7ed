"""Batch: 8 demo videos one after another (engine.pipeline.run in one process, and one
`python -m engine run` command each, as a user runs them) versus `python -m engine batch` on Ray,
wall time and their ratios (issue target: batch <= 0.6x).

The 8 videos: the 4 cameras of Pose2Sim's Demo_SinglePerson and Sports2D's demo, with cam01,
cam02 and the Sports2D demo linked a second time under other names. The one-process side keeps its
models warm between videos (favouring it); the commands side pays a start, imports and model loads
per video; the batch side includes starting Ray.

    .venv/bin/python benchmarks/batch.py [--frames A:B] [--workers N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.cli import _frames  # noqa: E402
from engine.config import RunConfig  # noqa: E402
from engine.pipeline import run  # noqa: E402

HEIGHT_M = 1.72


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the figure helpers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def demo_videos(folder: Path) -> list[Path]:
    """8 links with distinct stems into `folder`."""
    p2s = Path(next(iter(importlib.util.find_spec("Pose2Sim").submodule_search_locations)))
    s2d = Path(next(iter(importlib.util.find_spec("Sports2D").submodule_search_locations)))
    cams = [p2s / "Demo_SinglePerson" / "videos" / f"cam0{i}.mp4" for i in (1, 2, 3, 4)]
    demo = s2d / "Demo" / "demo.mp4"
    sources = {**{c.stem: c for c in cams}, "sports2d": demo, "cam01_again": cams[0],
               "cam02_again": cams[1], "sports2d_again": demo}
    out = []
    for name, src in sources.items():
        link = folder / f"{name}.mp4"
        link.symlink_to(src)
        out.append(link)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=_frames, default=None, metavar="A:B",
                    help="process only these frames of each video (default: all)")
    ap.add_argument("--workers", type=int, default=None, help="batch workers (default: one per core)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hp3d-batch-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "videos").mkdir()
        videos = demo_videos(tmp / "videos")

        t, cpu = time.perf_counter(), _cpu_s()
        frames = 0
        for v in videos:
            res = run(RunConfig(video=v, height_m=HEIGHT_M, out_dir=tmp / "one_by_one", frames=args.frames))
            frames += res.record["frames"]["read"]
        sequential = time.perf_counter() - t
        busy = (_cpu_s() - cpu) / sequential  # cores one video at a time already keeps busy

        # As a user runs them one after another: one `engine run` command each (its start, its
        # imports and its model loads every time).
        t = time.perf_counter()
        for v in videos:
            one = [sys.executable, "-m", "engine", "run", str(v), "--height", str(HEIGHT_M),
                   "--out", str(tmp / "commands"), "--quiet"]
            if args.frames:
                a, b = args.frames
                one += ["--frames", f"{a}:{'' if b is None else b}"]
            proc = subprocess.run(one, cwd=ROOT, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"run failed ({proc.returncode}): {proc.stderr.strip()}")
        commands = time.perf_counter() - t

        cmd = [sys.executable, "-m", "engine", "batch", str(tmp / "videos"), "--height", str(HEIGHT_M),
               "--out", str(tmp / "batch"), "--quiet"]
        if args.frames:
            a, b = args.frames
            cmd += ["--frames", f"{a}:{'' if b is None else b}"]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        batch = time.perf_counter() - t
        if proc.returncode != 0:
            sys.exit(f"batch failed ({proc.returncode}): {proc.stderr.strip()}")
        doc = json.loads((tmp / "batch" / "batch.json").read_text())
        assert doc["counts"]["ok"] == len(videos), doc["counts"]
        ray_free = doc["wall_s"]  # the batch's own clock: from before Ray's start to the summary

    print(f"{len(videos)} videos, {frames} frames; workers: {doc['workers']}")
    print(f"one by one (one process, models warm): {sequential:6.1f} s")
    print(f"one by one (one `engine run` each):    {commands:6.1f} s")
    print(f"batch (python -m engine batch, Ray):   {batch:6.1f} s  (inside the command: {ray_free:.1f} s)")
    print(f"ratio batch / one-by-one: {batch / sequential:.2f} in one process, {batch / commands:.2f} "
          f"against the commands  (target <= 0.6)")
    cores = os.cpu_count() or 1
    print(f"one video at a time already keeps {busy:.2f} of {cores} cores busy: a batch here can take "
          f"at best {min(busy / cores, 1.0):.2f} of its time, before Ray's start and each worker's imports")


if __name__ == "__main__":
    main()
