"""Foot contacts: when each heel and toe stands still, read from the 2D track.

A foot planted on the floor does not move, so with a fixed camera its landmarks stay put in the
image too. The converse fails only for motion straight along the viewing ray, which feet in swing
do not keep up for long. The 2D speed is made metric at each landmark's depth from the root
placement (u/f · z), so one threshold serves near and far subjects. The skeleton fit then holds
these landmarks still in 3D (skeleton_fit's stance term): monocular depth jitter otherwise makes
planted feet slide at 0.56 m/s on average on the demo's four cameras, against 0.15 m/s in the
4-view reference low-passed alike (benchmarks/accuracy.py, foot_skate_mps). With 0.35 m/s as the
threshold it falls to 0.18 m/s without slowing feet in swing; at 0.25 m/s contacts were missed
(0.27 m/s), and higher thresholds gained little (0.16 m/s at 0.5) while risking a slow foot held.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_opening

from .camera import Intrinsics
from .cleaning import butterworth
from .joint_sets import MP

FOOT_POINTS = np.array([MP[f"{s}_{n}"] for s in ("left", "right") for n in ("heel", "foot_index")])


def stationary_feet(pixels: np.ndarray, confident: np.ndarray, depth: np.ndarray, k: Intrinsics,
                    fps: float, max_speed: float = 0.35, min_duration_s: float = 0.1,
                    cutoff_hz: float = 6.0) -> np.ndarray:
    """(T, 33) mask of heel and toe landmarks that stand still: seen confidently, moving slower than
    `max_speed` (m/s, in the image plane at their depth) for at least `min_duration_s`.

    pixels (T, 33, 2); confident (T, 33); depth (T, 33) camera depths in metres (the root-placed
    MediaPipe skeleton is enough: speeds only need the right scale). The 2D track is low-passed at
    `cutoff_hz` first so landmark jitter does not break a contact."""
    T = len(pixels)
    out = np.zeros((T, pixels.shape[1]), bool)
    if T < 3:
        return out
    pts = np.where(confident[:, FOOT_POINTS, None], pixels[:, FOOT_POINTS], np.nan)
    smooth = butterworth(pts, fps, cutoff_hz)
    norm = smooth / np.array([k.fx, k.fy])  # image-plane slopes: × depth gives metres
    with np.errstate(invalid="ignore"):  # NaN (unseen) samples stay NaN and never count as still
        speed = np.linalg.norm(np.gradient(norm, axis=0), axis=-1) * depth[:, FOOT_POINTS] * fps
        still = speed < max_speed
    # An opening by a run of min_frames removes exactly the shorter runs (a pause in a step).
    min_frames = max(2, int(round(min_duration_s * fps)))
    out[:, FOOT_POINTS] = binary_opening(still, structure=np.ones((min_frames, 1), bool))
    return out
