"""Pure-numpy pose metrics. Points are (frames, joints, 3) in metres; joint indices are MediaPipe-33.

NaNs mark missing data and are skipped everywhere (a frame/joint contributes only when finite).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# Shoulders, elbows, wrists, hips, knees, ankles (left, right) in MediaPipe-33 numbering.
LIMB_12 = [11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
BONES: dict[str, tuple[int, int]] = {
    "left_thigh": (23, 25), "right_thigh": (24, 26),
    "left_shank": (25, 27), "right_shank": (26, 28),
    "left_upper_arm": (11, 13), "right_upper_arm": (12, 14),
    "left_forearm": (13, 15), "right_forearm": (14, 16),
}


def _similarity_align(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Umeyama: the scale*rotation+translation of p (J, 3) that best fits r (J, 3), applied to p."""
    mp, mr = p.mean(0), r.mean(0)
    pc, rc = p - mp, r - mr
    U, S, Vt = np.linalg.svd(pc.T @ rc)
    d = np.sign(np.linalg.det(U @ Vt))  # no reflections
    D = np.diag([1.0, 1.0, d])
    rot = U @ D @ Vt
    scale = (S * np.diag(D)).sum() / (pc**2).sum()
    return scale * pc @ rot + mr


def pa_mpjpe(pred: np.ndarray, ref: np.ndarray, joints: Sequence[int] = LIMB_12) -> float:
    """Procrustes-aligned MPJPE in mm.

    Per frame, pred's joints are aligned to ref's by the least-squares similarity transform
    (rotation, translation, uniform scale) over the joints finite in both (>= 3 needed); the
    frame's error is the mean Euclidean joint distance; the result is the mean over frames.
    """
    errs = []
    for p, r in zip(pred[:, joints], ref[:, joints]):
        ok = np.isfinite(p).all(1) & np.isfinite(r).all(1)
        if ok.sum() >= 3:
            errs.append(np.linalg.norm(_similarity_align(p[ok], r[ok]) - r[ok], axis=1).mean())
    return float(np.mean(errs) * 1000) if errs else float("nan")


def mpjpe_rigid(pred: np.ndarray, ref: np.ndarray, joints: Sequence[int] = LIMB_12) -> float:
    """Absolute MPJPE in mm with NO alignment: pred and ref must already be in the same (camera)
    frame, so errors in depth, global translation, scale and rotation all count. Mean over all
    finite (frame, joint) pairs of the Euclidean distance."""
    d = np.linalg.norm(pred[:, joints] - ref[:, joints], axis=-1)
    return float(np.nanmean(d) * 1000)


def bone_length_cv(points: np.ndarray, bones: Mapping[str, tuple[int, int]] = BONES
                   ) -> dict[str, float]:
    """Per bone, the coefficient of variation of its length over frames: 100 * std / mean (%)."""
    out = {}
    for name, (a, b) in bones.items():
        length = np.linalg.norm(points[:, a] - points[:, b], axis=-1)
        out[name] = float(100 * np.nanstd(length) / np.nanmean(length))
    return out


def three_point_angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle at b between b->a and b->c, in degrees (0..180); inputs (..., 3)."""
    u, v = a - b, c - b
    cos = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def angle_rmse(pred_deg: np.ndarray, ref_deg: np.ndarray) -> float:
    """Root-mean-square angle difference in degrees, differences wrapped to [-180, 180)."""
    d = (np.asarray(pred_deg) - np.asarray(ref_deg) + 180.0) % 360.0 - 180.0
    return float(np.sqrt(np.nanmean(d**2)))


def mean_acceleration(points: np.ndarray, fps: float) -> float:
    """Mean norm of the second finite difference, in m/s^2: a jitter measure (lower = smoother).

    a_t = (x_{t+1} - 2 x_t + x_{t-1}) * fps^2, averaged over finite (frame, joint) entries."""
    acc = (points[2:] - 2 * points[1:-1] + points[:-2]) * fps**2
    return float(np.nanmean(np.linalg.norm(acc, axis=-1)))
