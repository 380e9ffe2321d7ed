"""Metric scale from the subject's height, and the subject's own segment lengths."""

from __future__ import annotations

import numpy as np

from .joint_sets import MP, MP_MIRROR, MP_TREE, with_virtual

# Winter's anthropometry (Biomechanics and Motor Control of Human Movement, fig. 4.1): ankle at
# 0.039 H, knee 0.285 H, hip 0.530 H, shoulder 0.818 H. Shank + thigh + hip→shoulder therefore span
# 0.779 H, which lets three robustly measured lengths give the height of the skeleton.
_LEG_TRUNK_FRACTION = 0.818 - 0.039


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


def skeleton_height(lengths: np.ndarray) -> float:
    """Standing height implied by tree bone lengths (same units as the lengths)."""
    idx = {bone: i for i, bone in enumerate(MP_TREE)}
    shank = np.nanmean([lengths[idx[(MP[f"{s}_knee"], MP[f"{s}_ankle"])]] for s in ("left", "right")])
    thigh = np.nanmean([lengths[idx[(MP[f"{s}_hip"], MP[f"{s}_knee"])]] for s in ("left", "right")])
    trunk = lengths[idx[(-1, -2)]]
    return float((shank + thigh + trunk) / _LEG_TRUNK_FRACTION)
