"""The hands of a `--holistic` run in the engine's 3D frame: MediaPipe's metric hand world
landmarks (21 per hand, camera-aligned axes, centred on the hand) hung on our reconstructed wrist.

The hand model's own 3D is used, not the hand's pixels lifted at the wrist's depth: on the demos
its finger lengths vary half as much from frame to frame (relative to the palm: CV 0.09-0.28
against 0.16-0.40), and its axes follow the camera's within 2-4 deg in the image plane. A hand is
filtered in its own frame (relative to its wrist), over the frames where it was found, so that
the fingers' curl is steadied and the wrist's own path stays the body's. Gaps are not filled:
points interpolated across a gap shrink a finger's end to a few millimetres (a direction of
noise); Blender interpolates the finger bones' rotations between the frames with a hand instead.

One camera cannot tell a hand from its mirror image in depth (the same pixels), and the hand model
picks the wrong one for long stretches: on cam01 the left hand in all 53 frames found, its fingers
bent 2.5-5 cm backwards each, against the pose model's own palm. Fingers bend towards the palm,
never far backwards: a frame whose fingers bend backwards in sum is mirrored back along the ray
from the camera through the wrist (a straight hand is the same either way).
"""

from __future__ import annotations

import numpy as np

from .cleaning import butterworth, runs
from .joint_sets import MP

WRISTS = (MP["left_wrist"], MP["right_wrist"])  # hands[:, 0] is the subject's left
# A hand found in fewer frames in a row than this (and 3) is dropped: on cam01 the right hand
# flickers in and out for single frames, in poses that disagree with their neighbours by 60 deg.
MIN_RUN_S = 0.1


def hands_camera(hands_world: np.ndarray | None, markers: np.ndarray, fps: float,
                 cutoff_hz: float) -> tuple[np.ndarray, list[int]] | None:
    """(T, 2, 21, 3) left and right hands in the engine frame (metres), NaN where a hand was not
    found, and how many frames of each were mirrored back (see the module doc); None when the run
    tracked no hands. `markers`: the reconstructed MediaPipe-33 (T, 33, 3)."""
    if hands_world is None or not np.isfinite(hands_world).any():
        return None
    out = np.full(hands_world.shape, np.nan)
    mirrored = []
    for side, wrist in enumerate(WRISTS):
        local = hands_world[:, side].astype(np.float64)
        local = local - local[:, :1]  # wrist at the origin
        with np.errstate(invalid="ignore", divide="ignore"):  # a wrist at the camera: no ray
            ray = markers[:, wrist] / np.linalg.norm(markers[:, wrist], axis=-1, keepdims=True)
        flip = backward_curl(local, side) > 0
        local[flip] -= 2 * np.einsum("tnk,tk->tn", local[flip], ray[flip])[..., None] * ray[flip, None]
        mirrored.append(int(flip.sum()))
        for a, b in runs(np.isfinite(local).all(axis=(1, 2))):
            if b - a < max(3, round(MIN_RUN_S * fps)):
                local[a:b] = np.nan
        local = butterworth(local, fps, cutoff_hz)
        out[:, side] = local + markers[:, None, wrist]
    return out, mirrored


def palm_normal(hand: np.ndarray, side: int) -> np.ndarray:
    """(T, 3) unit normal of the back of the hand (dorsal) from 21 points (T, 21, 3) of the left
    (side 0) or right (1) hand: the same cross product points palmar on one hand, dorsal on the other."""
    n = np.cross(hand[:, 9] - hand[:, 0], hand[:, 5] - hand[:, 17]) * (-1.0 if side == 0 else 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return n / np.linalg.norm(n, axis=-1, keepdims=True)


def backward_curl(hand: np.ndarray, side: int) -> np.ndarray:
    """(T,) metres the four fingertips lie on the back of the hand from their knuckles, summed
    (negative: bent towards the palm, as fingers bend)."""
    n = palm_normal(hand, side)
    knuckle_tip = ((5, 8), (9, 12), (13, 16), (17, 20))
    return sum(np.einsum("tk,tk->t", hand[:, tip] - hand[:, mcp], n) for mcp, tip in knuckle_tip)
