"""Single-camera accuracy against the 4-camera triangulated reference of Pose2Sim's demo.

For each camera, runs the engine on that camera's video, reads back its initial.trc, and prints
PA-MPJPE over the 12 limb joints, rigid MPJPE (camera frame, no alignment), bone-length CV,
knee/elbow 3-point angle RMSE and mean acceleration — next to the same figures for MediaPipe's
raw world landmarks (which have no camera placement, so no rigid MPJPE). A second table gives hip,
knee and elbow flexion RMSE of the ISB angles (from final.trc) and of 3-point angles (see
isb_flexion.py for how the reference's ISB angles are made).

    .venv/bin/python benchmarks/accuracy.py [--height 1.72] [--calib-focal] [--extra-args "--no-fit"]

--calib-focal gives the engine each camera's calibrated focal length (as a user who knows their
camera would): without it the default 55° field of view is used, and rigid MPJPE mostly measures
that focal error (depth scales with it). accel_ratio compares mean acceleration with the reference
low-passed at the engine's default 6 Hz (the raw triangulation is jittery: its own jitter would
make any smooth result look over-smoothed); foot_skate_mps is how fast heels and toes move while
the reference has them planted (ideally 0; --extra-args=--no-foot-lock shows it without the foot
lock); reconstruct_share is the 3D reconstruction's share of the run's time, from run.json.
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

from isb_flexion import (  # noqa: E402
    isb_flexion,
    isb_flexion_from_22,
    rmse_by_joint,
    three_point_flexion,
)
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

from engine.cleaning import butterworth  # noqa: E402
from engine.cli import build_parser, config_from_args  # noqa: E402
from engine.contacts import FOOT_POINTS  # noqa: E402
from engine.coords import CAMERA_TO_OPENSIM, camera_to_opensim  # noqa: E402
from engine.joint_sets import MP, POSE2SIM_22  # noqa: E402
from engine.pipeline import run  # noqa: E402
from engine.pose2sim_markers import DIRECT, mediapipe_to_pose2sim  # noqa: E402
from engine.trc import read_trc  # noqa: E402


def trc_as_mediapipe(path: Path) -> np.ndarray:
    """initial.trc (OpenSim Y-up) → (T, 33, 3) in the camera frame, NaN for landmarks it lacks."""
    markers, names, _ = read_trc(path)
    assert tuple(names) == POSE2SIM_22, names
    cam = markers @ CAMERA_TO_OPENSIM  # the flip is its own inverse
    out = np.full((cam.shape[0], 33, 3), np.nan)
    for trc_name, mp_name in DIRECT.items():  # the markers copied straight from MediaPipe's
        out[:, MP[mp_name]] = cam[:, names.index(trc_name)]
    return out


def angles(points: np.ndarray) -> dict[str, np.ndarray]:
    p = points
    return {f"{s}_{j}": three_point_angle(p[:, MP[f"{s}_{a}"]], p[:, MP[f"{s}_{j}"]], p[:, MP[f"{s}_{b}"]])
            for s in ("left", "right")
            for a, j, b in (("hip", "knee", "ankle"), ("shoulder", "elbow", "wrist"))}


def foot_speeds(points: np.ndarray, fps: float) -> np.ndarray:
    """(T, 4) speed in m/s of the heels and toes (engine.contacts.FOOT_POINTS)."""
    return np.linalg.norm(np.gradient(points[:, FOOT_POINTS], axis=0), axis=-1) * fps


def foot_skate(pred: np.ndarray, smooth_ref: np.ndarray, fps: float) -> float:
    """Mean speed (m/s) of heels and toes over the samples where the reference's, low-passed at
    6 Hz (`smooth_ref`), is under 0.25 m/s: planted feet, whose ideal speed is 0 (the reference
    itself measures 0.15 m/s there low-passed, 0.30 raw: triangulation jitter)."""
    planted = foot_speeds(smooth_ref, fps) < 0.25
    return float(np.nanmean(foot_speeds(pred, fps)[planted]))


def score(pred: np.ndarray, ref: np.ndarray, fps: float, rigid: bool) -> dict[str, float]:
    pa, ra = angles(pred), angles(ref)
    smooth_ref = butterworth(ref, fps, 6.0)
    return {
        "pa_mpjpe_mm": pa_mpjpe(pred, ref, LIMB_12),
        "mpjpe_mm": mpjpe_rigid(pred, ref, LIMB_12) if rigid else float("nan"),
        "bone_cv_pct": float(np.mean(list(bone_length_cv(pred, BONES).values()))),
        "knee_rmse_deg": float(np.mean([angle_rmse(pa[k], ra[k]) for k in pa if "knee" in k])),
        "elbow_rmse_deg": float(np.mean([angle_rmse(pa[k], ra[k]) for k in pa if "elbow" in k])),
        "accel_ratio": (mean_acceleration(pred[:, LIMB_12], fps)
                        / mean_acceleration(smooth_ref[:, LIMB_12], fps)),
        # MediaPipe's raw 3D is hip-centred: its feet move with the hips, so no skate figure.
        "foot_skate_mps": foot_skate(pred, smooth_ref, fps) if rigid else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=float, default=1.72)
    ap.add_argument("--calib-focal", action="store_true", help="pass each camera's calibrated focal length")
    ap.add_argument("--extra-args", default="", help="more engine flags, e.g. \"--estimate-missing\"")
    args = ap.parse_args()
    ref = load_reference()
    cols = ("pa_mpjpe_mm", "mpjpe_mm", "bone_cv_pct", "knee_rmse_deg", "elbow_rmse_deg", "accel_ratio",
            "foot_skate_mps", "reconstruct_share")
    smooth_world = butterworth(ref.world_33, ref.fps, 6.0)
    print(f"reference: {ref.world_33.shape[0]} frames @ {ref.fps:g} fps; engine --height {args.height}; "
          f"its own foot skate {foot_skate(ref.world_33, smooth_world, ref.fps):.2f} m/s, low-passed at "
          f"6 Hz {foot_skate(smooth_world, smooth_world, ref.fps):.2f} m/s")
    print(f"{'camera':<8}{'source':<11}" + "".join(f"{c:>18}" for c in cols))
    worse = []
    isb_rows = []
    # The reference's own ISB angles: its 22 markers, upright by the calibration (world Z up → Y up).
    ref_22 = mediapipe_to_pose2sim(ref.world_33 @ np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]).T)
    ref_flex: dict[str, dict] = {"3pt": three_point_flexion(ref_22)}
    with tempfile.TemporaryDirectory() as tmp:
        for c, cam in enumerate(ref.cameras):
            video = Path(load_reference.__globals__["demo_dir"]()) / "videos" / f"{cam.name}.mp4"
            argv = ["run", str(video), "--height", str(args.height), "--out", tmp, "--force", "--quiet",
                    *shlex.split(args.extra_args)]
            if args.calib_focal:
                argv += ["--focal-px", f"{cam.K[0, 0]:.2f}"]
            res = run(config_from_args(build_parser().parse_args(argv)))
            ours = trc_as_mediapipe(res.files["initial_trc"])
            ref_cam = ref.in_camera(c)
            timings = res.record["timings"]
            rows = {"engine": score(ours, ref_cam, ref.fps, rigid=True)
                    | {"reconstruct_share": timings["reconstruct_s"] / timings["total_s"]},
                    "mediapipe": score(ref.world_landmarks[c].astype(float), ref_cam, ref.fps, rigid=False)
                    | {"reconstruct_share": float("nan")}}
            for source, s in rows.items():
                print(f"{cam.name:<8}{source:<11}" + "".join(f"{s[k]:>18.2f}" for k in cols))
            final, _, _ = read_trc(res.files["final_trc"])
            bio = res.record["biomechanics"]
            cycles = bio["augmentation_cycles"]  # the same LSTM ensemble on every side
            if "isb" not in ref_flex:
                ref_flex["isb"] = isb_flexion_from_22(ref_22, args.height, vertical_known=True, cycles=cycles)
            raw_22 = camera_to_opensim(mediapipe_to_pose2sim(ref.world_landmarks[c].astype(float)))
            ik_cm = 100 * bio["opensim"]["rms_mean_m"] if "opensim" in bio else float("nan")
            for source, isb, tp, ik in (
                    ("engine", isb_flexion(final), three_point_flexion(final[:, :22]), ik_cm),
                    ("mediapipe", isb_flexion_from_22(raw_22, args.height, cycles=cycles),
                     three_point_flexion(raw_22), float("nan"))):
                isb_rows.append((cam.name, source, rmse_by_joint(isb, ref_flex["isb"]),
                                 rmse_by_joint(tp, ref_flex["3pt"]), ik))
            if rows["engine"]["pa_mpjpe_mm"] > rows["mediapipe"]["pa_mpjpe_mm"]:
                worse.append(cam.name)
    print("engine worse than raw MediaPipe on PA-MPJPE:", ", ".join(worse) or "no camera")
    print("\nFlexion RMSE (deg, left and right pooled) against the 4-view reference. ISB: LSTM "
          "augmentation + ISB angles run on\nthe reference's own 22 markers (the reference has no "
          "augmented markers); mediapipe: raw world landmarks through\nthe same augmentation and "
          "angles. 3pt: plain 3-point angles, no model. Target: ISB knee and elbow <= 8.\n"
          "IK RMS: OpenSim inverse kinematics marker RMS (with --extra-args --opensim), target <= 3 cm.")
    print(f"{'camera':<8}{'source':<11}" + "".join(f"{'ISB ' + j:>12}" for j in ("hip", "knee", "elbow"))
          + "".join(f"{'3pt ' + j:>12}" for j in ("hip", "knee", "elbow")) + f"{'IK RMS cm':>12}")
    missed = []
    for name, source, isb, tp, ik in isb_rows:
        print(f"{name:<8}{source:<11}" + "".join(f"{isb[j]:>12.2f}" for j in ("hip", "knee", "elbow"))
              + "".join(f"{tp[j]:>12.2f}" for j in ("hip", "knee", "elbow")) + f"{ik:>12.2f}")
        if source == "engine" and max(isb["knee"], isb["elbow"]) > 8:
            missed.append(name)
    print("ISB knee/elbow flexion RMSE above 8 deg:", ", ".join(missed) or "no camera")


if __name__ == "__main__":
    main()
