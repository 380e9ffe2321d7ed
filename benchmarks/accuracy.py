"""Single-camera accuracy against the 4-camera triangulated reference of Pose2Sim's demo.

For each camera, runs the engine on that camera's video, reads back its initial.trc, and prints
PA-MPJPE over the 12 limb joints, rigid MPJPE (camera frame, no alignment), bone-length CV,
knee/elbow 3-point angle RMSE and mean acceleration — next to the same figures for MediaPipe's
raw world landmarks (which have no camera placement, so no rigid MPJPE).

    .venv/bin/python benchmarks/accuracy.py [--height 1.72] [--extra-args "--estimate-missing"]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import (  # noqa: E402
    BONES,
    LIMB_12,
    angle_rmse,
    bone_length_cv,
    mean_acceleration,
    mpjpe_rigid,
    pa_mpjpe,
    three_point_angle,
)
from multiview_reference import load_reference  # noqa: E402

from engine.cli import build_parser, config_from_args  # noqa: E402
from engine.coords import CAMERA_TO_OPENSIM  # noqa: E402
from engine.joint_sets import MP, POSE2SIM_22  # noqa: E402
from engine.pipeline import run  # noqa: E402
from engine.trc import read_trc  # noqa: E402

_TRC_TO_MP = {"RShoulder": "right_shoulder", "LShoulder": "left_shoulder", "RElbow": "right_elbow",
              "LElbow": "left_elbow", "RWrist": "right_wrist", "LWrist": "left_wrist",
              "RHip": "right_hip", "LHip": "left_hip", "RKnee": "right_knee", "LKnee": "left_knee",
              "RAnkle": "right_ankle", "LAnkle": "left_ankle"}


def trc_as_mediapipe(path: Path) -> np.ndarray:
    """initial.trc (OpenSim Y-up) → (T, 33, 3) in the camera frame, NaN for landmarks it lacks."""
    markers, names, _ = read_trc(path)
    assert tuple(names) == POSE2SIM_22, names
    cam = markers @ CAMERA_TO_OPENSIM  # the flip is its own inverse
    out = np.full((cam.shape[0], 33, 3), np.nan)
    for trc_name, mp_name in _TRC_TO_MP.items():
        out[:, MP[mp_name]] = cam[:, names.index(trc_name)]
    return out


def angles(points: np.ndarray) -> dict[str, np.ndarray]:
    p = points
    return {f"{s}_{j}": three_point_angle(p[:, MP[f"{s}_{a}"]], p[:, MP[f"{s}_{j}"]], p[:, MP[f"{s}_{b}"]])
            for s in ("left", "right")
            for a, j, b in (("hip", "knee", "ankle"), ("shoulder", "elbow", "wrist"))}


def score(pred: np.ndarray, ref: np.ndarray, fps: float, rigid: bool) -> dict[str, float]:
    pa, ra = angles(pred), angles(ref)
    return {
        "pa_mpjpe_mm": pa_mpjpe(pred, ref, LIMB_12),
        "mpjpe_mm": mpjpe_rigid(pred, ref, LIMB_12) if rigid else float("nan"),
        "bone_cv_pct": float(np.mean(list(bone_length_cv(pred, BONES).values()))),
        "knee_rmse_deg": float(np.mean([angle_rmse(pa[k], ra[k]) for k in pa if "knee" in k])),
        "elbow_rmse_deg": float(np.mean([angle_rmse(pa[k], ra[k]) for k in pa if "elbow" in k])),
        "accel_ratio": mean_acceleration(pred[:, LIMB_12], fps) / mean_acceleration(ref[:, LIMB_12], fps),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=float, default=1.72)
    ap.add_argument("--extra-args", default="", help="more engine flags, e.g. \"--estimate-missing\"")
    args = ap.parse_args()
    ref = load_reference()
    cols = ("pa_mpjpe_mm", "mpjpe_mm", "bone_cv_pct", "knee_rmse_deg", "elbow_rmse_deg", "accel_ratio")
    print(f"reference: {ref.world_33.shape[0]} frames @ {ref.fps:g} fps; engine --height {args.height}")
    print(f"{'camera':<8}{'source':<11}" + "".join(f"{c:>16}" for c in cols))
    worse = []
    with tempfile.TemporaryDirectory() as tmp:
        for c, cam in enumerate(ref.cameras):
            video = Path(load_reference.__globals__["demo_dir"]()) / "videos" / f"{cam.name}.mp4"
            argv = ["run", str(video), "--height", str(args.height), "--out", tmp, "--force", "--quiet",
                    *shlex.split(args.extra_args)]
            res = run(config_from_args(build_parser().parse_args(argv)))
            ours = trc_as_mediapipe(res.files["initial_trc"])
            ref_cam = ref.in_camera(c)
            rows = {"engine": score(ours, ref_cam, ref.fps, rigid=True),
                    "mediapipe": score(ref.world_landmarks[c].astype(float), ref_cam, ref.fps, rigid=False)}
            for source, s in rows.items():
                print(f"{cam.name:<8}{source:<11}" + "".join(f"{s[k]:>16.2f}" for k in cols))
            if rows["engine"]["pa_mpjpe_mm"] > rows["mediapipe"]["pa_mpjpe_mm"]:
                worse.append(cam.name)
    print("engine worse than raw MediaPipe on PA-MPJPE:", ", ".join(worse) or "no camera")


if __name__ == "__main__":
    main()
