"""Levelling: the true vertical and the floor, estimated from the markers themselves.

The TRC frame is the camera frame turned Y up, so a camera pitched down by 20–30° (as in Pose2Sim's
demo) tilts the whole subject by as much. The LSTM augmenter was trained on Y-vertical data (a 25°
tilt moves its markers by ~9 mm on the demo) and global pelvis angles need the vertical, so the
final markers are turned upright first. The vertical is the median direction from the ankle to
the hip of the stance leg (the lower ankle): on the demo's four cameras it lands 0.5–6° from the
calibrated vertical, where the camera's own "up" is 18–34° off.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from .joint_sets import POSE2SIM_22

UP = np.array([0.0, 1.0, 0.0])
# Beyond this from the camera's own up, the estimate is more likely a lying or sitting subject
# than a camera pitch: keep the camera's vertical then.
_MAX_TILT_DEG = 50.0
_ITERATIONS = 3


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


def estimate_up(markers_22: np.ndarray) -> np.ndarray:
    """Unit vertical (3,) of (T, 22, 3) POSE2SIM_22 markers in a roughly Y-up frame."""
    i = {n: k for k, n in enumerate(POSE2SIM_22)}
    rh, lh = markers_22[:, i["RHip"]], markers_22[:, i["LHip"]]
    ra, la = markers_22[:, i["RAnkle"]], markers_22[:, i["LAnkle"]]
    up = UP.copy()
    for _ in range(_ITERATIONS):
        right_stance = (ra @ up) < (la @ up)
        legs = np.where(right_stance[:, None], _unit(rh - ra), _unit(lh - la))
        legs = legs[np.isfinite(legs).all(axis=1)]
        if len(legs) == 0:
            return UP.copy()
        up = _unit(np.median(legs, axis=0))
    if np.degrees(np.arccos(np.clip(up @ UP, -1.0, 1.0))) > _MAX_TILT_DEG:
        return UP.copy()
    return up


def level_rotation(up: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) taking `up` to +Y (no turn about the vertical)."""
    rot, _ = Rotation.align_vectors(UP[None], np.asarray(up, float)[None])
    return rot.as_matrix()


def floor_offset(markers: np.ndarray, names: Sequence[str], clearance_m: float = 0.01) -> float:
    """Height to subtract so the feet rest on y = `clearance_m`, as Pose2Sim's feet_on_floor does,
    but from the 2nd percentile of each frame's lowest foot marker rather than the single minimum."""
    feet = [k for k, n in enumerate(names)
            if any(t in n for t in ("calc", "toe", "5meta", "Heel", "BigToe", "SmallToe"))]
    y = markers[:, feet, 1] if feet else np.full((1, 1), np.nan)
    y = y[np.isfinite(y).any(axis=1)]  # frames with at least one foot marker
    lowest = np.nanmin(y, axis=1) if len(y) else np.zeros(0)
    return float(np.percentile(lowest, 2) - clearance_m) if len(lowest) else 0.0
