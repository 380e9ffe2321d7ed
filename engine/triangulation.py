"""Robust multi-view triangulation of MediaPipe-33 landmarks: left/right label repair across views,
a visibility-weighted DLT, per-joint camera choice (the worst view is dropped while it reprojects
beyond a threshold) and a limb-length sanity check.

OpenCV's cv2.triangulatePoints takes exactly two views and no weights, and Pose2Sim's own
triangulation is a per-frame Python loop over its config dictionaries; this is the same method
(weighted DLT, reprojection-driven view exclusion) vectorised over frames and joints.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from .calibration import Camera
from .joint_sets import MP_MIRROR

OUTLIER_PX = 30.0  # per-joint reprojection error above which a view is dropped
BONE_TOL = 0.25  # relative limb-bone length deviation beyond which both ends are dropped
LIMB_BONES = [(11, 13), (13, 15), (12, 14), (14, 16), (23, 25), (25, 27), (24, 26), (26, 28)]
GOOD_VIS = 0.5  # a view counts towards the ">= 2 good views" rule only if this visible
SWAP = MP_MIRROR
# MediaPipe can swap the legs independently of the torso (crossed legs), so the upper body
# (head, arms, hips) and the legs are repaired as two groups.
UPPER = [j for j in range(25) if SWAP[j] != j]
LEGS = [j for j in range(25, 33) if SWAP[j] != j]


def undistort(cams: Sequence[Camera], pts: np.ndarray) -> np.ndarray:
    """(C, F, J, 2) pixels → normalised image coordinates (NaN stays NaN)."""
    import cv2

    C, F, J = pts.shape[:3]
    out = []
    for c, p in zip(cams, pts):
        flat = np.ascontiguousarray(p.reshape(-1, 1, 2), dtype=np.float64)
        if c.fisheye:
            x = cv2.fisheye.undistortPoints(flat, c.K, c.dist[:4])
        else:
            x = cv2.undistortPoints(flat, c.K, c.dist)
        out.append(x.reshape(F, J, 2))
    return np.array(out)


def triangulate(xn: np.ndarray, w: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Weighted DLT. xn (C, ..., 2) normalised image coords, w (C, ...), P (C, 3, 4) -> (..., 3).

    NaN where fewer than two views have weight > 0."""
    xn = np.nan_to_num(xn)
    Pb = P.reshape(P.shape[:1] + (1,) * (xn.ndim - 2) + (3, 4))
    rows = [xn[..., 0:1] * Pb[..., 2, :] - Pb[..., 0, :], xn[..., 1:2] * Pb[..., 2, :] - Pb[..., 1, :]]
    A = np.stack([r * w[..., None] for r in rows], axis=1)  # (C, 2, ..., 4)
    A = np.moveaxis(A.reshape((-1,) + A.shape[2:]), 0, -2)  # (..., 2C, 4)
    v = np.linalg.svd(A)[2][..., -1, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        X = v[..., :3] / v[..., 3:]
    X[(w > 0).sum(0) < 2] = np.nan
    return X


def reproject_px(X: np.ndarray, cams: Sequence[Camera], und_px: np.ndarray) -> np.ndarray:
    """Pixel distance between X (..., 3) projected and undistorted 2D points (C, ..., 2)."""
    err = []
    for c, u in zip(cams, und_px):
        q = (X @ c.R.T + c.t) @ c.K.T
        err.append(np.linalg.norm(q[..., :2] / q[..., 2:] - u, axis=-1))
    return np.array(err)


def project(X: np.ndarray, cam: Camera) -> np.ndarray:
    """World points (..., 3) → distorted pixels (..., 2) of `cam` (OpenCV's model)."""
    import cv2

    flat = np.nan_to_num(X.reshape(-1, 3))
    rvec = cv2.Rodrigues(cam.R)[0]
    if cam.fisheye:
        px = cv2.fisheye.projectPoints(flat[:, None], rvec, cam.t, cam.K, cam.dist[:4])[0]
    else:
        px = cv2.projectPoints(flat, rvec, cam.t, cam.K, cam.dist)[0]
    px = px.reshape(X.shape[:-1] + (2,))
    px[~np.isfinite(X).all(-1)] = np.nan
    return px


def _best_swaps(xn: np.ndarray, und: np.ndarray, w: np.ndarray, P: np.ndarray,
                cams: Sequence[Camera], joints: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the swap pattern over views (F, C) that best fits `joints`, and their 3D (F, J, 3).

    Every pattern is tried; reprojection errors are capped at 50 px so one wild view cannot win."""
    C, F = xn.shape[:2]
    combos = np.array(list(itertools.product([False, True], repeat=C)))  # (S, C)
    idx = np.where(combos[:, :, None, None], SWAP[joints], np.array(joints))  # (S, C, 1, J)
    idx = np.broadcast_to(idx, (len(combos), C, F, len(joints)))
    scores, Xs = [], []
    for s in range(len(combos)):
        ws = np.take_along_axis(w, idx[s], axis=2)
        X = triangulate(np.take_along_axis(xn, idx[s][..., None], axis=2), ws, P)
        e = reproject_px(X, cams, np.take_along_axis(und, idx[s][..., None], axis=2))
        scores.append((np.minimum(np.nan_to_num(e, nan=50.0), 50.0) * ws).sum((0, 2))
                      / np.maximum(ws.sum((0, 2)), 1e-9))
        Xs.append(X)
    best = np.argmin(scores, axis=0)
    return combos[best], np.array(Xs)[best, np.arange(F)]


def _orient(s: np.ndarray, anatomy_flip: np.ndarray) -> np.ndarray:
    """Pick pattern s (F, C) or its complement: fewer swapped views wins, anatomy breaks ties."""
    n2, C = 2 * s.sum(1), s.shape[1]
    return s ^ np.where(n2 == C, anatomy_flip, n2 > C)[:, None]


def _permute(a: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Reorder the joint axis (2) of a (C, F, 33, ...) array by perm (C, F, 33)."""
    return np.take_along_axis(a, perm.reshape(perm.shape + (1,) * (a.ndim - 3)), axis=2)


def repair_and_triangulate(cams: Sequence[Camera], pts: np.ndarray, vis: np.ndarray,
                           up: np.ndarray | None = None, good_vis: float = GOOD_VIS,
                           depth: np.ndarray | None = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """L/R repair, weighted DLT, outlier-view rejection.

    pts (C, F, 33, 2) pixels (NaN: not detected), vis (C, F, 33); `up`: the world's up direction
    (default +Z, as calibrations of a lab floor have it), for the anatomical tie-break; `good_vis`:
    the visibility a view needs to count towards the two that a joint needs; `depth` (C, F, 33):
    MediaPipe's relative depth per view, which turns on the completion of foot and hand points
    that only one view sees well (complete_from_one_view).
    Returns world points (F, 33, 3) (NaN where < 2 good views agree), swapped (C, F, 2) (upper body,
    legs), reprojection errors (C, F, 33) (NaN for unused views) and the views used (C, F, 33)."""
    C, F = pts.shape[:2]
    up = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, dtype=np.float64)
    P = np.array([c.P for c in cams])
    xn = undistort(cams, pts)
    und = np.array([x @ c.K[:2, :2].T + c.K[:2, 2] for c, x in zip(cams, xn)])  # undistorted px
    w = np.where(np.isfinite(xn[..., 0]), vis, 0.0)
    # A swap pattern and its complement fit equally well (all labels flipped together): take the
    # one that swaps fewer views (MediaPipe is right in most views); on a tie (e.g. both back
    # views mirrored) anatomy decides: nose in front of the shoulders ((left - right) x up is
    # forward), then each knee on its own hip's side (ankles cross on a beam).
    swapped = np.zeros((C, F, 2), bool)
    perm = np.broadcast_to(np.arange(33), (C, F, 33)).copy()
    s, X = _best_swaps(xn, und, w, P, cams, UPPER)
    nose = triangulate(xn[:, :, 0], w[:, :, 0], P)
    left, right = X[:, UPPER.index(11)], X[:, UPPER.index(12)]
    forward = np.cross(left - right, up)
    flip = np.einsum("fi,fi->f", forward, nose - (left + right) / 2) < 0
    swapped[..., 0] = _orient(s, flip).T
    perm[:, :, UPPER] = np.where(swapped[..., 0:1], SWAP[UPPER], np.array(UPPER))
    hips = triangulate(_permute(xn, perm)[:, :, 23:25], _permute(w, perm)[:, :, 23:25], P)
    s, X = _best_swaps(xn, und, w, P, cams, LEGS)
    knees = X[:, LEGS.index(25)] - X[:, LEGS.index(26)]
    flip = np.einsum("fi,fi->f", knees, hips[:, 0] - hips[:, 1]) < 0
    swapped[..., 1] = _orient(s, flip).T
    perm[:, :, LEGS] = np.where(swapped[..., 1:2], SWAP[LEGS], np.array(LEGS))
    xn, und, w = _permute(xn, perm), _permute(und, perm), _permute(w, perm)
    # Drop the worst view of a joint while it reprojects beyond OUTLIER_PX, then re-triangulate.
    for _ in range(C - 2):
        X = triangulate(xn, w, P)
        err = np.where(w > 0, reproject_px(X, cams, und), np.nan)
        worst = np.nan_to_num(err, nan=-1.0).argmax(0)[None]
        keep = np.take_along_axis(err, worst, 0) <= OUTLIER_PX
        np.put_along_axis(w, worst, np.take_along_axis(w, worst, 0) * keep, 0)
    X = triangulate(xn, w, P)
    err = np.where(w > 0, reproject_px(X, cams, und), np.nan)
    used = (w >= good_vis) & (err <= OUTLIER_PX)
    X[used.sum(0) < 2] = np.nan
    # Views can agree on a wrong joint (all confused at once, e.g. when the legs cross): drop both
    # ends of any limb bone whose length is > BONE_TOL off its median over the sequence.
    for a, b in LIMB_BONES:
        length = np.linalg.norm(X[:, a] - X[:, b], axis=-1)
        if not np.isfinite(length).any():
            continue
        rows = np.flatnonzero(np.abs(length / np.nanmedian(length) - 1) > BONE_TOL)
        X[np.ix_(rows, [a, b])] = np.nan
    if depth is not None:
        one = np.where(np.isnan(X[..., 0])[None], (w >= good_vis) & np.isfinite(xn[..., 0]), False)
        X = complete_from_one_view(X, cams, xn, one, _permute(depth, perm))
    return X, swapped, err, used


# Feet and hands → their parent joint, for completing a point from one view. Only these: placed
# from one view, knees, ankles, elbows and wrists were measured to be worse than left unknown and
# interpolated (benchmarks/multiview.py: up to +13 mm PA-MPJPE), while a heel or toe missing leaves
# the LSTM without its lower-body input for those frames.
PARENT = {29: 27, 30: 28, 31: 27, 32: 28, 17: 15, 19: 15, 21: 15, 18: 16, 20: 16, 22: 16}


def complete_from_one_view(X: np.ndarray, cams: Sequence[Camera], xn: np.ndarray, one: np.ndarray,
                           depth: np.ndarray) -> np.ndarray:
    """Place a foot or hand point that only one view sees well (`one` (C, F, 33)) where that view's ray
    meets the sphere of its bone length around its parent (triangulated, or completed first).

    The length is the bone's median over the frames where both ends were triangulated. Of the two
    crossings, the one whose depth order against the parent agrees with that view's MediaPipe
    relative depth (`depth` (C, F, 33), larger = farther) is taken; a ray that misses the sphere
    gives its closest point. The same idea as the single-camera fit's, on one good view."""
    X = X.copy()
    centres = np.array([c.centre for c in cams])
    for child, parent in PARENT.items():
        length = np.nanmedian(np.linalg.norm(X[:, child] - X[:, parent], axis=-1)) \
            if np.isfinite(X[:, child] - X[:, parent]).all(-1).any() else np.nan
        if not np.isfinite(length):
            continue
        for c, cam in enumerate(cams):
            rows = np.flatnonzero(one[c, :, child] & np.isnan(X[:, child, 0]) & np.isfinite(X[:, parent, 0]))
            if not len(rows):
                continue
            ray = np.concatenate([xn[c, rows, child], np.ones((len(rows), 1))], -1) @ cam.R  # world
            ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
            to_parent = X[rows, parent] - centres[c]
            along = np.einsum("fi,fi->f", ray, to_parent)
            disc = along ** 2 - np.einsum("fi,fi->f", to_parent, to_parent) + length ** 2
            root = np.sqrt(np.maximum(disc, 0.0))
            farther = depth[c, rows, child] > depth[c, rows, parent]
            s = np.where(farther, along + root, along - root)
            X[rows, child] = centres[c] + s[:, None] * ray
    return X
