"""Left/right repair: MediaPipe sometimes mirrors a whole person — it labels the left side as the
right and places the body facing the other way — for a stretch of frames, typically when the
subject is side-on or turning. A body cannot turn 180° between two frames, so we pick, per frame,
the labelling (as given, or mirrored) that keeps the body's facing direction continuous over time
(exact dynamic programming over the two states), then keep the global choice that mirrors the
fewest frames (MediaPipe is right more often than not)."""

from __future__ import annotations

import copy

import numpy as np

from .joint_sets import MP, MP_MIRROR
from .landmarks import LandmarkTrack


def _yaw(world: np.ndarray) -> np.ndarray:
    """Facing direction about the vertical of the camera frame, degrees, per frame."""
    w = world
    ls, rs, lh, rh = (w[:, MP[n]] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    lr = (ls - rs) + (lh - rh)
    up = (ls + rs) - (lh + rh)
    fwd = np.cross(lr, up)
    return np.degrees(np.arctan2(fwd[:, 0], -fwd[:, 2]))


def mirrored_world(world: np.ndarray) -> np.ndarray:
    """The other reading of the same image: labels swapped and depth reflected about the hips."""
    out = world[:, MP_MIRROR].copy()
    out[..., 2] *= -1.0
    return out


def _angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


def detect_mirrored(track: LandmarkTrack) -> np.ndarray:
    """(T,) bool: frames whose labelling should be mirrored."""
    det = np.flatnonzero(track.detected)
    flips = np.zeros(track.frames, bool)
    if len(det) < 2:
        return flips
    world = track.world[det].astype(np.float64)
    yaw = np.stack([_yaw(world), _yaw(mirrored_world(world))], axis=1)  # (N, 2 states)
    # Viterbi over states {as given, mirrored}; pairwise cost = squared facing change.
    n = len(det)
    cost = np.zeros(2)
    back = np.zeros((n, 2), int)
    for i in range(1, n):
        step = _angle_diff(yaw[i - 1][:, None], yaw[i][None, :]) ** 2  # (prev, cur)
        total = cost[:, None] + step
        back[i] = np.argmin(total, axis=0)
        cost = total[back[i], [0, 1]]
    states = np.zeros(n, int)
    states[-1] = int(np.argmin(cost))
    for i in range(n - 1, 0, -1):
        states[i - 1] = back[i, states[i]]
    if states.sum() > n / 2:  # both labellings fit equally; trust MediaPipe's majority
        states = 1 - states
    flips[det] = states.astype(bool)
    return flips


def repair_mirrored(track: LandmarkTrack) -> tuple[LandmarkTrack, np.ndarray]:
    """A copy of `track` with the frames `detect_mirrored` flags mirrored, and that (T,) mask.
    The input stays as MediaPipe gave it (it is what the raw landmarks CSV records)."""
    flips = detect_mirrored(track)
    fixed = copy.deepcopy(track)
    if flips.any():
        f = flips
        fixed.pixels[f] = track.pixels[f][:, MP_MIRROR]
        fixed.visibility[f] = track.visibility[f][:, MP_MIRROR]
        fixed.depth_rel[f] = track.depth_rel[f][:, MP_MIRROR]
        fixed.world[f] = mirrored_world(track.world[f])
        for name in ("hands", "hands_world"):  # Holistic finds each hand from its pose wrist
            arr = getattr(track, name)
            if arr is not None:
                getattr(fixed, name)[f] = arr[f][:, ::-1]
    return fixed, flips
