"""Bounded memory: peak RSS of a whole `python -m engine run` on a 1-minute and a 10-minute 1080p
video made by looping the Pose2Sim demo. Frames stream through a bounded queue, so the peak should
not grow with length (target: 10-minute peak ≤ 1.2 × 1-minute peak).

The demo's 100 frames (1080x1920, portrait 1080p) are encoded once forward and back (no jump at the
seam) at 30 frames/s, then the packets are repeated with shifted timestamps to the length wanted, so
making a 10-minute video costs seconds, not an encode. Each engine run is a child process; its peak
RSS is the kernel's ru_maxrss for that child (os.wait4). Linux carries a process's high-water mark
across fork and exec, so this parent stays slim: the videos are made in a child of their own (with
PyAV and OpenCV loaded, it would be bigger than a short engine run). The videos live in a temporary
folder that is deleted afterwards (about 130 MB for 10 minutes).

    .venv/bin/python benchmarks/memory.py [--minutes 1 10] [--fps 30] [--keep DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def demo() -> Path:
    return Path(importlib.util.find_spec("Pose2Sim").origin).parent / "Demo_SinglePerson/videos/cam01.mp4"


def encode_cycle(path: Path, fps: int) -> int:
    """The demo forward then backward (x264, a keyframe at the start only); returns its frames."""
    import av
    import cv2

    cap = cv2.VideoCapture(str(demo()))
    frames = []
    while (ok_frame := cap.read())[0]:
        frames.append(ok_frame[1])
    cap.release()
    cycle = frames + frames[-2:0:-1]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23", "g": str(len(cycle)), "bf": "0"}
        for bgr in cycle:
            c.mux(s.encode(av.VideoFrame.from_ndarray(bgr, format="bgr24")))
        c.mux(s.encode())
    return len(cycle)


def loop_video(cycle: Path, out: Path, n_frames: int) -> None:
    """Repeat the cycle's packets (each repeat starts on its keyframe) until n_frames are written."""
    import av

    with av.open(str(cycle)) as src:
        packets = [p for p in src.demux(video=0) if p.size]
        stream = src.streams.video[0]
        step = packets[1].pts - packets[0].pts
        with av.open(str(out), "w") as dst:
            ost = dst.add_stream_from_template(stream)
            written = 0
            while written < n_frames:
                offset = written * step
                for p in packets[: n_frames - written]:
                    p.pts, p.dts = p.pts + offset, p.dts + offset
                    p.stream = ost
                    dst.mux(p)
                    p.pts, p.dts = p.pts - offset, p.dts - offset
                written += min(len(packets), n_frames - written)


def engine_run(video: Path, out: Path) -> tuple[float, int, float, str]:
    """One CLI run in a child; returns (peak RSS MiB, exit code, wall seconds, its stdout line)."""
    t = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
        proc = subprocess.Popen([sys.executable, "-m", "engine", "run", str(video), "--height", "1.72",
                                 "--out", str(out), "--force", "--quiet"], cwd=ROOT, env=env, stdout=so,
                                stderr=se, text=True)
        # wait4: this child's own rusage (RUSAGE_CHILDREN would be the maximum over all children).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t
        so.seek(0)
        se.seek(0)
        stdout, stderr = so.read().strip(), se.read().strip()
    if proc.returncode != 0:
        sys.stderr.write(stderr + "\n")
    return usage.ru_maxrss / 1024, proc.returncode, wall, stdout or stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--keep", type=Path, help="keep the videos and results in this folder")
    ap.add_argument("--make", nargs=3, metavar=("CYCLE", "VIDEO", "FRAMES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:  # the child that makes one looped video (and the cycle, the first time)
        cycle, video, n = Path(args.make[0]), Path(args.make[1]), int(args.make[2])
        if not cycle.exists():
            encode_cycle(cycle, args.fps)
        loop_video(cycle, video, n)
        return 0
    work = Path(tempfile.mkdtemp(prefix="hp3d-memory-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        cycle = work / "cycle.mp4"
        rows = []
        for minutes in args.minutes:
            n = int(round(minutes * 60 * args.fps))
            video = work / f"loop_{minutes:g}min.mp4"
            subprocess.run([sys.executable, __file__, "--make", str(cycle), str(video), str(n), "--fps",
                            str(args.fps)], check=True)
            size_mb = video.stat().st_size / 2**20
            rss, code, wall, line = engine_run(video, work / "out")
            rows.append((minutes, n, rss, wall))
            print(f"{minutes:5g} min  {n:6d} frames ({size_mb:5.0f} MB, 1080x1920 @ {args.fps} fps): "
                  f"exit {code}, {wall:6.1f} s, {n / wall:5.1f} frames/s, "
                  f"peak RSS {rss:7.1f} MiB   [{line}]", flush=True)
            if code != 0:
                return 1
            video.unlink()
        if len(rows) >= 2:
            ratio = rows[-1][2] / rows[0][2]
            print(f"peak RSS {rows[-1][0]:g} min / {rows[0][0]:g} min = {ratio:.3f} (target ≤ 1.2)")
            return 0 if ratio <= 1.2 else 1
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
