"""The biomechanics stage's cost and the augmentation-cycles choice.

overhead: end-to-end wall time of `python -m engine run` (fresh process each, as a user runs it)
    with the stage (LSTM augmentation, ISB angles, TRC/C3D/CSV/MOT writers, the figures and the PDF
    report) against the same command with the stage switched off, alternating over repeats. The
    computation stays well under 10 %; the matplotlib figures (8 PNG + SVG, the overview, the PDF)
    cost about 2.5 s per run whatever its length (measured 2.8 s of 4.1 s on the 100-frame demo,
    3.1 s of 7.7 s on the 230-frame one): --no-plots leaves them out.
cycles: spread of rigid augmented-marker distances (bone-length CV) and jitter (mean marker
    acceleration) of the augmented markers for --augmentation-cycles 1, 2, 4, 8 on the four
    cameras of Pose2Sim's demo.

    .venv/bin/python benchmarks/biomechanics.py [overhead] [cycles] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.result import read_record  # noqa: E402

# Pairs of augmented markers on one rigid segment: their distance should not change.
RIGID_PAIRS = (("r_knee_study", "r_ankle_study"), ("L_knee_study", "L_ankle_study"),
               ("r_knee_study", "r_mknee_study"), ("L_knee_study", "L_mknee_study"),
               ("r.ASIS_study", "L.ASIS_study"), ("r.ASIS_study", "r.PSIS_study"),
               ("r_lelbow_study", "r_lwrist_study"), ("L_lelbow_study", "L_lwrist_study"),
               ("r_calc_study", "r_toe_study"), ("L_calc_study", "L_toe_study"),
               ("RHJC_study", "r_knee_study"), ("LHJC_study", "L_knee_study"))

_OFF = ("import engine.pipeline as p; p.run_biomechanics = lambda *a, **k: {'files': {}}; "
        "p.warm_up_biomechanics = lambda: None; ")


def _videos() -> list[Path]:
    p2s = Path(importlib.util.find_spec("Pose2Sim").origin).parent
    s2d = Path(importlib.util.find_spec("Sports2D").origin).parent
    return [p2s / "Demo_SinglePerson/videos/cam01.mp4", s2d / "Demo/demo.mp4"]


def _run_cli(video: Path, out: Path, stage: bool) -> tuple[float, dict]:
    argv = ["run", str(video), "--height", "1.72", "--out", str(out), "--force", "--quiet"]
    code = ("" if stage else _OFF) + f"from engine.cli import main; raise SystemExit(main({argv!r}))"
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"engine run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    wall = time.perf_counter() - t
    return wall, read_record(out / video.stem)


def overhead(repeats: int) -> None:
    print(f"{'video':<12}{'frames':>7}{'without s':>11}{'with s':>9}{'added':>8}{'stage s':>9}"
          f"{'stage/run':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for video in _videos():
            on, off, stage = [], [], []
            for r in range(repeats):
                for with_stage in ((True, False) if r % 2 == 0 else (False, True)):
                    wall, rec = _run_cli(video, Path(tmp), with_stage)
                    (on if with_stage else off).append(wall)
                    if with_stage:
                        stage.append(rec["timings"]["biomechanics_s"])
                        frames = rec["frames"]["read"]
            a, b, s = statistics.median(off), statistics.median(on), statistics.median(stage)
            print(f"{video.name:<12}{frames:>7}{a:>11.2f}{b:>9.2f}{100 * (b - a) / a:>7.1f}%{s:>9.2f}"
                  f"{100 * s / (b - s):>10.1f}%")
    print("added: median wall time with the stage over without, fresh process each (imports and "
          "model loading included);\nstage/run: the stage's own time inside run.json over the rest "
          "of the run.")


def cycles() -> None:
    from engine.augment import augment
    from engine.config import RunConfig
    from engine.joint_sets import FINAL_65
    from engine.levelling import estimate_up, level_rotation
    from engine.pipeline import run
    from engine.trc import read_trc

    idx = {n: i for i, n in enumerate(FINAL_65)}
    demo = Path(importlib.util.find_spec("Pose2Sim").origin).parent / "Demo_SinglePerson/videos"
    rows: dict[int, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cam in ("cam01", "cam02", "cam03", "cam04"):
            res = run(RunConfig(video=demo / f"{cam}.mp4", height_m=1.72, out_dir=Path(tmp), force=True,
                                joint_angles=False))
            m22, _, fps = read_trc(res.files["initial_trc"])
            level = m22 @ level_rotation(estimate_up(m22)).T
            for n in (1, 2, 4, 8):
                f = np.concatenate([level, augment(level, 1.72, 70.0, cycles=n)], axis=1)[:, 22:]
                acc = np.nanmean(np.linalg.norm(f[2:] - 2 * f[1:-1] + f[:-2], axis=-1)) * fps**2
                cv = []
                for a, b in RIGID_PAIRS:
                    d = np.linalg.norm(f[:, idx[a] - 22] - f[:, idx[b] - 22], axis=-1)
                    cv.append(100 * np.nanstd(d) / np.nanmean(d))
                rows.setdefault(n, []).append((float(np.mean(cv)), float(acc)))
    print(f"{'cycles':>6}{'rigid-distance CV %':>21}{'jitter m/s^2':>14}   (mean of cam01-04)")
    for n, v in rows.items():
        a = np.array(v)
        print(f"{n:>6}{a[:, 0].mean():>21.2f}{a[:, 1].mean():>14.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parts", nargs="*", help="overhead and/or cycles (default: both)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    parts = args.parts or ["overhead", "cycles"]
    if set(parts) - {"overhead", "cycles"}:
        ap.error(f"unknown part(s): {sorted(set(parts) - {'overhead', 'cycles'})}")
    if "overhead" in parts:
        overhead(args.repeats)
    if "cycles" in parts:
        cycles()


if __name__ == "__main__":
    main()
