"""Synchronising calibrated videos from the motion in them: the frame offset at which two views'
2D landmarks agree best with the calibration's epipolar geometry.

Pose2Sim synchronises by cross-correlating 2D keypoint speeds, which views from different sides
see differently. With a calibration there is a stronger signal: at the right offset, a landmark
seen in one view lies on its epipolar line in the other. MediaPipe's 2D has a steady bias per view
and joint (a hip is not put at the same anatomical spot from the front and from the side), which
would pull a plain distance towards the wrong offset; a wrong offset instead adds an error that
follows the motion. So each joint's signed epipolar distance is taken about its own median over
time, and the offset whose spread (median absolute deviation) is smallest wins. It must stand out:
a subject who never moves gives no answer. Measured on Pose2Sim's demo (slow balancing, 60 fps),
5 of its 6 camera pairs land within a frame of the true offset.
"""

from __future__ import annotations

import warnings

import numpy as np

from .calibration import Camera
from .errors import EngineError
from .triangulation import SWAP, undistort

# Trunk and limb landmarks (MediaPipe-33): well localised and moving with the body.
_JOINTS = np.array([11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])
_MIN_FRAMES = 15  # overlapping frames an offset needs to be scored at all
_DISTINCT = 0.7  # the best offset's spread must be below this share of the typical offset's
_MAX_ERROR_PX = 40.0  # a best offset worse than this is two videos of different scenes


def _skew(t: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])


def pair_error(cams: tuple[Camera, Camera], pts: tuple[np.ndarray, np.ndarray],
               vis: tuple[np.ndarray, np.ndarray], offset: int, vis_min: float = 0.5) -> tuple[float, int]:
    """Spread (px) of the signed epipolar distances in view 1 with frame i of view 0 taken with
    frame i + offset of view 1 (see the module doc), and the number of frames scored. Each frame
    takes the better of view 1's labels and their left/right mirror (MediaPipe swaps sides in back
    views)."""
    c0, c1 = cams
    R = c1.R @ c0.R.T
    E = _skew(c1.t - R @ c0.t) @ R  # essential matrix: x1ᵀ E x0 = 0 in normalised coordinates
    i0 = np.arange(max(0, -offset), min(len(pts[0]), len(pts[1]) - offset))
    if len(i0) < _MIN_FRAMES:
        return float("inf"), 0
    i1 = i0 + offset
    x0 = undistort([c0], pts[0][i0][:, _JOINTS][None].astype(np.float64))[0]
    lines = np.concatenate([x0, np.ones(x0.shape[:-1] + (1,))], -1) @ E.T
    with np.errstate(invalid="ignore", divide="ignore"):
        lines /= np.linalg.norm(lines[..., :2], axis=-1, keepdims=True)
    dists = []
    for labels in (_JOINTS, SWAP[_JOINTS]):
        x1 = undistort([c1], pts[1][i1][:, labels][None].astype(np.float64))[0]
        d = (x1 * lines[..., :2]).sum(-1) + lines[..., 2]
        seen = (vis[0][i0][:, _JOINTS] >= vis_min) & (vis[1][i1][:, labels] >= vis_min)
        dists.append(np.where(seen, d * c1.K[0, 0], np.nan))  # to pixels of view 1
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN joints: never seen in both views
        keep = ~(np.nanmedian(np.abs(dists[1]), 1) < np.nanmedian(np.abs(dists[0]), 1))
        d = np.where(keep[:, None], dists[0], dists[1])
        scored = np.isfinite(d).any(1)
        if scored.sum() < _MIN_FRAMES:
            return float("inf"), int(scored.sum())
        spread = np.nanmedian(np.abs(d - np.nanmedian(d, 0)), 0)
    return float(np.nanmedian(spread)), int(scored.sum())


def find_offset(cams: tuple[Camera, Camera], pts: tuple[np.ndarray, np.ndarray],
                vis: tuple[np.ndarray, np.ndarray], max_offset: int, name: str) -> tuple[int, dict]:
    """The frame offset of view 1 against view 0 within ±max_offset, and what was measured;
    one clear line when the videos cannot be synchronised."""
    offsets = np.arange(-max_offset, max_offset + 1)
    errors = np.array([pair_error(cams, pts, vis, int(o))[0] for o in offsets])
    finite = np.isfinite(errors)
    hint = "give --sync-offsets (frames each video starts late by)"
    if finite.sum() == 0:
        raise EngineError(f"cannot synchronise {name}: the person is never seen in both views at once; "
                          f"{hint}")
    best = int(np.nanargmin(np.where(finite, errors, np.nan)))
    typical = float(np.median(errors[finite]))
    record = {"offset": int(offsets[best]), "error_px": round(float(errors[best]), 2),
              "typical_error_px": round(typical, 2), "searched": int(max_offset)}
    if errors[best] > _MAX_ERROR_PX:
        raise EngineError(f"cannot synchronise {name}: its 2D never agrees with the first camera's "
                          f"(best {errors[best]:.0f} px; wrong calibration or another scene?); {hint}")
    if finite.sum() > 4 and errors[best] >= _DISTINCT * typical:
        raise EngineError(f"cannot synchronise {name} from motion: no offset stands out "
                          f"({errors[best]:.1f} px vs {typical:.1f} px typical); {hint}")
    return int(offsets[best]), record
