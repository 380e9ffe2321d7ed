"""Cleaning marker trajectories: bounded gap filling, mirroring occluded limbs, zero-phase
Butterworth low-pass and holding the subject's bone lengths. All NaN-safe, (T, J, 3) in/out."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.signal import butter, sosfiltfilt

from .joint_sets import MP, MP_FACE, MP_MIRROR, MP_TREE, with_virtual


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a 1-D mask."""
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def fill_gaps(points: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill interior gaps of ≤ max_gap frames per joint with a shape-preserving cubic (PCHIP).

    Returns the filled array and a (T, J) mask of the samples that were filled. Gaps at the start
    or end, and longer gaps, stay NaN: inventing long stretches of motion is worse than saying
    "unknown".
    """
    out = points.copy()
    filled = np.zeros(points.shape[:2], bool)
    if max_gap <= 0:
        return out, filled
    t = np.arange(points.shape[0])
    for j in range(points.shape[1]):
        valid = np.isfinite(points[:, j]).all(axis=1)
        if valid.sum() < 2 or valid.all():
            continue
        interp = PchipInterpolator(t[valid], points[valid, j], axis=0, extrapolate=False)
        for a, b in runs(~valid):
            if a > 0 and b < len(t) and b - a <= max_gap:
                out[a:b, j] = interp(t[a:b])
                filled[a:b, j] = True
    return out, filled


def mirror_missing(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimate joints missing on one side by reflecting their visible partner across the body's
    mid-sagittal plane (through the pelvis centre, normal along the hip axis, or the shoulder
    axis when the hips are unknown). Returns the array and a (T, J) mask of mirrored samples."""
    out = points.copy()
    p = points
    lh, rh = p[:, MP["left_hip"]], p[:, MP["right_hip"]]
    ls, rs = p[:, MP["left_shoulder"]], p[:, MP["right_shoulder"]]
    hips_ok = np.isfinite(lh).all(1) & np.isfinite(rh).all(1)
    normal = np.where(hips_ok[:, None], lh - rh, ls - rs)
    centre = np.where(hips_ok[:, None], 0.5 * (lh + rh), 0.5 * (ls + rs))
    with np.errstate(invalid="ignore", divide="ignore"):
        normal = normal / np.linalg.norm(normal, axis=1, keepdims=True)
    plane_ok = np.isfinite(normal).all(1) & np.isfinite(centre).all(1)
    valid = np.isfinite(p).all(axis=2)
    partner = p[:, MP_MIRROR]
    d = np.einsum("tjk,tk->tj", partner - centre[:, None], normal)
    reflected = partner - 2 * d[..., None] * normal[:, None]
    todo = ~valid & valid[:, MP_MIRROR] & plane_ok[:, None] & (MP_MIRROR != np.arange(p.shape[1]))
    out[todo] = reflected[todo]
    return out, todo


def butterworth(points: np.ndarray, fps: float, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-phase low-pass of every joint and axis, run by run over the valid samples.

    `order` is the effective order after the forward-backward pass (as in Pose2Sim and the
    biomechanics literature), so the designed filter has order/2. Runs too short for the filter's
    padding are left as they are rather than distorted.
    """
    nyquist = fps / 2.0
    if cutoff_hz <= 0 or cutoff_hz >= nyquist:
        return points.copy()
    sos = butter(order // 2, cutoff_hz / nyquist, btype="low", output="sos")
    padlen = 3 * (2 * len(sos) + 1)
    out = points.copy()
    for j in range(points.shape[1]):
        valid = np.isfinite(points[:, j]).all(axis=1)
        for a, b in runs(valid):
            if b - a > padlen:
                out[a:b, j] = sosfiltfilt(sos, points[a:b, j], axis=0)
    return out


def hold_bone_lengths(points: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rebuild each frame along the kinematic tree from the pelvis centre, keeping every bone's
    direction but giving it the subject's length. Face landmarks move rigidly with the nose.

    A body does not change its bone lengths; per-frame estimates do, and that variation is noise.
    """
    p = with_virtual(points).copy()
    src = p.copy()
    for (a, b), length in zip(MP_TREE, lengths):
        if not np.isfinite(length):
            continue
        v = src[:, b] - src[:, a]
        n = np.linalg.norm(v, axis=1, keepdims=True)
        ok = np.isfinite(n[:, 0]) & (n[:, 0] > 1e-9) & np.isfinite(p[:, a]).all(1)
        p[ok, b] = p[ok, a] + v[ok] / n[ok] * length
    out = p[:, : points.shape[1]]
    out[:, MP_FACE] = points[:, MP_FACE] + (out[:, [MP["nose"]]] - points[:, [MP["nose"]]])
    return out


def jerk(points: np.ndarray, fps: float) -> float:
    """Mean magnitude of the third derivative (m/s³) over valid samples: a jitter measure."""
    j = np.diff(points, n=3, axis=0) * fps**3
    mag = np.linalg.norm(j, axis=-1)
    return float(np.nanmean(mag))
