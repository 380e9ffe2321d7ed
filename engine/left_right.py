"""Left/right repair: MediaPipe sometimes mirrors a whole person — it labels the left side as the
right and places the body facing the other way — for a stretch of frames, typically when the
subject is side-on or turning. A body cannot turn 180° between two frames, so we pick, per frame,
the labelling (as given, or mirrored) that keeps the body's facing direction continuous over time
(exact dynamic programming over the two states). That fixes where the reading changes, not which
of the two is right: MediaPipe's majority decides (it is right more often than not), unless it is
close to a tie and the feet clearly say otherwise (`_feet_agree`)."""

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


# How much more clearly the feet must disagree than MediaPipe's own labels agree before the feet
# decide the reading. They only break near ties: their cue assumes a camera above the floor (one
# below the feet, a stage filmed from the stalls, reverses it), and it is weak where the model
# guesses the feet (the lite model puts toes level with heels from behind).
FEET_MARGIN = 0.5
_HEELS = [MP["left_heel"], MP["right_heel"]]
_TOES = [MP["left_foot_index"], MP["right_foot_index"]]


def _feet_agree(pixels: np.ndarray, visibility: np.ndarray, world: np.ndarray) -> np.ndarray:
    """(N,) how far each frame's reading as given agrees with its feet in the image; the mirrored
    reading scores the negative. A camera above the floor sees a toe that is nearer to it than
    its heel lower in the image than that heel, so a body that faces the camera (|yaw| < 90)
    should show its toes below its heels, and one facing away above. Toe and heel keep their
    image places in both readings, which is what makes this a vote between them. Toe drop in
    thigh lengths, weighted by the foot's visibility and by how squarely the body faces."""
    drop = pixels[:, _TOES, 1] - pixels[:, _HEELS, 1]
    thighs = sum(np.linalg.norm(pixels[:, MP[f"{s}_hip"]] - pixels[:, MP[f"{s}_knee"]], axis=-1)
                 for s in ("left", "right"))
    seen = np.minimum(visibility[:, _TOES], visibility[:, _HEELS])
    facing = np.cos(np.radians(_yaw(world)))
    return facing * (seen * drop).sum(axis=1) / np.maximum(thighs, 1e-6)


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
    if states.sum() > n / 2:  # both labellings fit the turns equally; MediaPipe's majority first
        states = 1 - states
    # The lite model on the demo's cam02 (face blurred) reads the subject as facing away on 48 of
    # 100 frames: a near tie, which the majority lost and the feet win (benchmarks/left_right.py).
    labels = 1.0 - 2.0 * states.mean()  # 0: a tie, 1: MediaPipe never changes its reading
    votes = _feet_agree(track.pixels[det].astype(np.float64),
                        track.visibility[det].astype(np.float64), world)
    votes = np.where(states == 1, -votes, votes)
    feet = float(np.nansum(votes) / max(float(np.nansum(np.abs(votes))), 1e-12))
    if feet < -(labels + FEET_MARGIN):
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
