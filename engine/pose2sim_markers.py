"""MediaPipe-33 → Pose2Sim-22 markers, deriving the ones MediaPipe does not have."""

from __future__ import annotations

import numpy as np

from .joint_sets import MP, POSE2SIM_22

# Direct copies: Pose2Sim name → MediaPipe name.
DIRECT = {
    "RHip": "right_hip", "RKnee": "right_knee", "RAnkle": "right_ankle", "RHeel": "right_heel",
    "RBigToe": "right_foot_index", "LHip": "left_hip", "LKnee": "left_knee",
    "LAnkle": "left_ankle", "LHeel": "left_heel", "LBigToe": "left_foot_index", "Nose": "nose",
    "RShoulder": "right_shoulder", "RElbow": "right_elbow", "RWrist": "right_wrist",
    "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist",
}

# Forefoot half-width as a fraction of the heel→toe length (foot breadth ≈ 0.39 × foot length,
# small toe ≈ 0.8 of the way from heel to big toe).
_SMALL_TOE_LATERAL = 0.35
_SMALL_TOE_ALONG = 0.8


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / n


def _small_toe(p: np.ndarray, side: str, right_dir: np.ndarray) -> np.ndarray:
    heel = p[:, MP[f"{side}_heel"]]
    toe = p[:, MP[f"{side}_foot_index"]]
    knee, ankle = p[:, MP[f"{side}_knee"]], p[:, MP[f"{side}_ankle"]]
    foot = toe - heel
    # Lateral = perpendicular to the foot and the shank, oriented away from the body's midline.
    lateral = _unit(np.cross(foot, knee - ankle))
    outward = right_dir if side == "right" else -right_dir
    sign = np.sign(np.sum(lateral * outward, axis=-1, keepdims=True))
    sign[sign == 0] = 1.0
    return heel + _SMALL_TOE_ALONG * foot + sign * lateral * _SMALL_TOE_LATERAL * np.linalg.norm(
        foot, axis=-1, keepdims=True)


def mediapipe_to_pose2sim(points: np.ndarray) -> np.ndarray:
    """(frames, 33, 3) → (frames, 22, 3) in POSE2SIM_22 order; NaN propagates."""
    p = np.asarray(points, dtype=np.float64)
    out = np.full((p.shape[0], len(POSE2SIM_22), 3), np.nan)
    idx = {n: i for i, n in enumerate(POSE2SIM_22)}
    for name, mp_name in DIRECT.items():
        out[:, idx[name]] = p[:, MP[mp_name]]
    lh, rh = p[:, MP["left_hip"]], p[:, MP["right_hip"]]
    ls, rs = p[:, MP["left_shoulder"]], p[:, MP["right_shoulder"]]
    out[:, idx["Hip"]] = 0.5 * (lh + rh)
    neck = 0.5 * (ls + rs)
    out[:, idx["Neck"]] = neck
    # Head (top of skull): above the ear midpoint along the neck→ears axis by ~0.75 ear span,
    # the vertex being ~12 cm above the tragus for a ~15 cm head breadth.
    ears = 0.5 * (p[:, MP["left_ear"]] + p[:, MP["right_ear"]])
    span = np.linalg.norm(p[:, MP["left_ear"]] - p[:, MP["right_ear"]], axis=-1, keepdims=True)
    out[:, idx["Head"]] = ears + _unit(ears - neck) * 0.75 * span
    right_dir = _unit((rh - lh) + (rs - ls))
    out[:, idx["RSmallToe"]] = _small_toe(p, "right", right_dir)
    out[:, idx["LSmallToe"]] = _small_toe(p, "left", right_dir)
    return out
