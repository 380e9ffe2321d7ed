"""Metric scale from the subject's height, and the subject's own segment lengths."""

from __future__ import annotations

import numpy as np

from .joint_sets import MP, MP_MIRROR, MP_TREE, with_virtual


def bone_lengths(points: np.ndarray, tree=MP_TREE) -> np.ndarray:
    """(T, 33, 3) → (T, len(tree)) lengths of the kinematic tree's bones (NaN where unknown)."""
    p = with_virtual(points)
    parents = np.array([a for a, _ in tree])
    children = np.array([b for _, b in tree])
    return np.linalg.norm(p[:, children] - p[:, parents], axis=-1)


def subject_lengths(points: np.ndarray, confident: np.ndarray, symmetric: bool = True) -> np.ndarray:
    """Median length of each tree bone over frames where both its ends are confident.

    Left/right bones share the mean of their two medians (a body is symmetric to well within
    the estimation noise), unless one side was never seen.
    """
    p = with_virtual(points)
    thorax = confident[:, [MP["left_shoulder"]]] & confident[:, [MP["right_shoulder"]]]
    pelvis = confident[:, [MP["left_hip"]]] & confident[:, [MP["right_hip"]]]
    conf = np.concatenate([confident, thorax, pelvis], axis=1)
    lengths = np.full(len(MP_TREE), np.nan)
    for i, (a, b) in enumerate(MP_TREE):
        ok = conf[:, a] & conf[:, b]
        if ok.sum() == 0:
            ok = np.isfinite(p[:, a, 0]) & np.isfinite(p[:, b, 0])
        if ok.any():
            lengths[i] = np.median(np.linalg.norm(p[ok, b] - p[ok, a], axis=-1))
    if symmetric:
        pair = _mirror_bones()
        mirrored = lengths[pair]
        both = np.isfinite(lengths) & np.isfinite(mirrored)
        one = np.where(np.isfinite(lengths), lengths, mirrored)
        lengths = np.where(both, 0.5 * (lengths + mirrored), one)
    return lengths


def _mirror_bones() -> np.ndarray:
    def mirror(j: int) -> int:
        return j if j < 0 else int(MP_MIRROR[j])
    index = {bone: i for i, bone in enumerate(MP_TREE)}
    return np.array([index[(mirror(a), mirror(b))] for a, b in MP_TREE])


def _median_len(points: np.ndarray, ok: np.ndarray, a: int, b: int) -> float:
    sel = ok[:, a] & ok[:, b]
    if not sel.any():
        sel = np.isfinite(points[:, a, 0]) & np.isfinite(points[:, b, 0])
    if not sel.any():
        return float("nan")
    return float(np.median(np.linalg.norm(points[sel, a] - points[sel, b], axis=-1)))


def pose2sim_height(points: np.ndarray, confident: np.ndarray) -> float:
    """Standing height implied by MediaPipe-landmark segments, with Pose2Sim's formula
    (Pose2Sim.common.compute_height): heel→ankle + shank + thigh + hip→shoulder (same side)
    + 1.5 × mid-shoulder→nose, each side averaged. Pose2Sim tuned it on these landmarks; Winter's
    joint-centre fractions put the demo subject 3–5 % further from the camera than the 4-view
    reference. Medians over confident frames make it robust to bad frames."""
    p, ok = points, confident

    def both(a: str, b: str) -> float:
        sides = [_median_len(p, ok, MP[f"{s}_{a}"], MP[f"{s}_{b}"]) for s in ("left", "right")]
        return float(np.nanmean(sides))

    mid_sh = 0.5 * (p[:, MP["left_shoulder"]] + p[:, MP["right_shoulder"]])
    sel = ok[:, MP["nose"]] & ok[:, MP["left_shoulder"]] & ok[:, MP["right_shoulder"]]
    if not sel.any():
        sel = np.isfinite(mid_sh[:, 0]) & np.isfinite(p[:, MP["nose"], 0])
    if not sel.any():
        return float("nan")
    head = 1.5 * float(np.median(np.linalg.norm(p[sel, MP["nose"]] - mid_sh[sel], axis=-1)))
    legs = both("heel", "ankle") + both("ankle", "knee") + both("knee", "hip")
    return legs + both("hip", "shoulder") + head
