"""Hip, knee and elbow flexion for the accuracy benchmark: ISB angles (LSTM augmentation + segment
frames, exactly the engine's stage) and plain 3-point angles, from any Pose2Sim-22 marker set.

The 4-view reference has no augmented markers, so its ISB-comparable angles come from running the
same augmentation and angles on the reference's own 22 markers (engine.pose2sim_markers.mediapipe_to_pose2sim
of the triangulated MediaPipe-33), turned upright with the calibration's true vertical. Both sides
then share the LSTM's own bias: the ISB RMSE measures how far our markers move the angles, not the
LSTM's anatomical accuracy. The 3-point angles need no model at all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.augment import augment  # noqa: E402
from engine.biomech import final_markers  # noqa: E402
from engine.isb_angles import joint_angles  # noqa: E402
from engine.joint_sets import FINAL_65, POSE2SIM_22  # noqa: E402

JOINTS = ("hip", "knee", "elbow")
_P = {n: i for i, n in enumerate(POSE2SIM_22)}


def isb_flexion(final_65: np.ndarray) -> dict[str, np.ndarray]:
    """FINAL_65 markers → {"knee_r": flexion (T,), ...} for hip, knee, elbow on both sides."""
    ang = joint_angles({n: final_65[:, k] for k, n in enumerate(FINAL_65)})
    return {f"{j}_{s}": ang[f"{j}_{s}"][f"{j}_{s}_flex_deg"] for j in JOINTS for s in "rl"}


def isb_flexion_from_22(markers_22_yup: np.ndarray, height_m: float, mass_kg: float = 70.0,
                        vertical_known: bool = False, cycles: int = 1) -> dict[str, np.ndarray]:
    """Pose2Sim-22 markers (Y up, metres) → ISB flexion; `vertical_known`: Y is the true vertical
    (skip the engine's levelling estimate, as for the calibrated reference)."""
    if vertical_known:
        final = np.concatenate([markers_22_yup, augment(markers_22_yup, height_m, mass_kg, cycles)], axis=1)
    else:
        final, _ = final_markers(markers_22_yup, height_m, mass_kg, cycles)
    return isb_flexion(final)


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    cos = np.sum(u * v, axis=-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def three_point_flexion(m22: np.ndarray) -> dict[str, np.ndarray]:
    """Flexion as 180° minus the inner angle (knee: hip-knee-ankle, elbow: shoulder-elbow-wrist),
    and the hip's as the angle between thigh and trunk (Neck − Hip), as Pose2Sim defines it."""
    p = {n: m22[:, i] for n, i in _P.items()}
    out = {}
    for s, S in (("r", "R"), ("l", "L")):
        out[f"hip_{s}"] = _angle(p[f"{S}Hip"] - p[f"{S}Knee"], p["Neck"] - p["Hip"])
        out[f"knee_{s}"] = 180.0 - _angle(p[f"{S}Hip"] - p[f"{S}Knee"], p[f"{S}Ankle"] - p[f"{S}Knee"])
        out[f"elbow_{s}"] = 180.0 - _angle(p[f"{S}Shoulder"] - p[f"{S}Elbow"],
                                           p[f"{S}Wrist"] - p[f"{S}Elbow"])
    return out


def rmse_by_joint(pred: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> dict[str, float]:
    """RMSE (degrees) per joint, left and right pooled, over frames finite in both."""
    out = {}
    for j in JOINTS:
        d = np.concatenate([pred[f"{j}_{s}"] - ref[f"{j}_{s}"] for s in "rl"])
        out[j] = float(np.sqrt(np.nanmean(d**2)))
    return out
