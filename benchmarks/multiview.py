"""Calibrated multi-view accuracy on Pose2Sim's 4-camera demo: each pair of cameras through the
engine (`run A.mp4 B.mp4 --calib`), scored against the other two cameras' triangulation (the
legacy MediaPipe 2D of multiview_reference.py, never the pair's own views) and against all four.
"floor" rows score the reference's own 2D of the pair, triangulated the same way, against the
other two: how far two triangulations of MediaPipe 2D from different cameras stay apart at best.

    .venv/bin/python benchmarks/multiview.py [--sync auto|given] [--extra-args "..."]

Figures per pair: PA-MPJPE over the 12 limb joints (mm), knee and elbow flexion RMSE (3-point
angles, deg), bone-length CV (%, mean over the limb bones), the offsets found from motion (0 is
right: the demo's videos are synchronised) and the stature measured. Targets (issue #16):
PA-MPJPE <= 30 mm, knee and elbow <= 6 deg, bone CV <= 1 %, against the leave-two-out reference.
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import angles  # noqa: E402
from metrics import BONES, LIMB_12, angle_rmse, bone_length_cv, pa_mpjpe  # noqa: E402
from multiview_reference import demo_calibration, demo_dir, load_reference  # noqa: E402

from engine.cli import build_parser, config_from_args  # noqa: E402
from engine.pipeline import run  # noqa: E402
from engine.result import load as load_result  # noqa: E402
from engine.triangulation import repair_and_triangulate  # noqa: E402

TARGETS = {"pa_mpjpe_mm": 30.0, "knee_rmse_deg": 6.0, "elbow_rmse_deg": 6.0, "bone_cv_pct": 1.0}


def score(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    pa, ra = angles(pred), angles(ref)
    return {"pa_mpjpe_mm": pa_mpjpe(pred, ref, LIMB_12),
            "knee_rmse_deg": float(np.mean([angle_rmse(pa[k], ra[k]) for k in pa if "knee" in k])),
            "elbow_rmse_deg": float(np.mean([angle_rmse(pa[k], ra[k]) for k in pa if "elbow" in k])),
            "bone_cv_pct": float(np.mean(list(bone_length_cv(pred, BONES).values())))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sync", choices=("auto", "given"), default="auto",
                    help="auto: offsets found from motion (default); given: --sync-offsets 0,0")
    ap.add_argument("--extra-args", default="", help="more engine flags")
    args = ap.parse_args()
    ref = load_reference()
    calib = demo_calibration()
    cams = ref.cameras
    names = [c.name for c in cams]
    cols = ("pa_mpjpe_mm", "knee_rmse_deg", "elbow_rmse_deg", "bone_cv_pct")
    print(f"{ref.world_33.shape[0]} frames @ {ref.fps:g} fps; reference: the other two cameras' "
          "triangulation (and all four)")
    print(f"{'pair':<13}{'source':<8}{'against':<9}" + "".join(f"{c:>16}" for c in cols)
          + f"{'offset':>8}{'stature m':>11}{'run s':>8}")
    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        for a, b in itertools.combinations(range(len(cams)), 2):
            rest = [c for c in range(len(cams)) if c not in (a, b)]
            held = repair_and_triangulate([cams[c] for c in rest], ref.points_2d[rest],
                                          ref.visibility[rest])[0]
            videos = [str(demo_dir() / "videos" / f"{names[c]}.mp4") for c in (a, b)]
            argv = ["run", *videos, "--calib", str(calib), "--out", tmp, "--force", "--quiet",
                    "--no-plots", *shlex.split(args.extra_args)]
            if args.sync == "given":
                argv += ["--sync-offsets", "0,0"]
            res = run(config_from_args(build_parser().parse_args(argv)))
            ours = load_result(res.out_dir).markers_camera
            world = (ours - cams[a].t) @ cams[a].R  # first camera's frame → calibration world
            views = res.record["views"]
            offset = views[1]["offset"]
            pair = f"{names[a]}+{names[b]}"
            # The floor: the reference's own (legacy) 2D of this pair, triangulated the same way.
            floor = repair_and_triangulate([cams[a], cams[b]], ref.points_2d[[a, b]],
                                           ref.visibility[[a, b]])[0]
            for source, pred, against, reference in (("engine", world, "other 2", held),
                                                     ("engine", world, "all 4", ref.world_33),
                                                     ("floor", floor, "other 2", held)):
                s = score(pred, reference)
                extra = (f"{offset:>8d}{res.record['height']['measured_m']:>11.3f}"
                         f"{res.record['timings']['total_s']:>8.1f}" if source == "engine" else "")
                print(f"{pair:<13}{source:<8}{against:<9}" + "".join(f"{s[k]:>16.2f}" for k in cols) + extra)
                if source == "engine" and against == "other 2":
                    missed += [f"{pair} {k}" for k, lim in TARGETS.items() if not s[k] <= lim]
    print("targets (vs the other two cameras): PA-MPJPE <= 30 mm, knee/elbow <= 6 deg, bone CV <= 1 %")
    print("missed:", ", ".join(missed) or "none")


if __name__ == "__main__":
    main()
