"""`--holistic`: MediaPipe's Holistic landmarker (Tasks API, engine/mediapipe_tasks.py) run beside
our body tracker, for the hands and the face of the body we found.

Holistic's own body, 4-6 px from ours and lost where ours is not (Sports2D's frames 0-6 and
169-181; the demo's cam02 at 68 mm PA-MPJPE against the default run's 55), only says whose hands
it found: each hand hangs on the wrist of ours it starts at, the face on a body that is ours. One
`HolisticFollower` per person: Holistic tracks one person and re-detects only when it loses them,
so it is shown a window around its person (after the first frame that showed it someone else, for
a single-person run; always, with everyone else greyed out, for `--people`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import mediapipe_tasks as tasks
from .joint_sets import MEDIAPIPE_33
from .person import SubjectCrop, clip_window
from .tracking import VISIBLE, keypoint_distances, pose_box, size

N_HAND, N_FACE = 21, 468
# Holistic's body is ours within this many person sizes (one person's two readings lie about 0.01
# apart), and a hand is ours when it starts this near the wrist it belongs to.
SAME_BODY, HAND_REACH = 0.1, 0.08
_WRISTS = (MEDIAPIPE_33.index("left_wrist"), MEDIAPIPE_33.index("right_wrist"))  # hands' order


@dataclass
class Parts:
    """What Holistic adds to one body in one frame (frame pixels; NaN where not found)."""

    hands: np.ndarray  # (2, 21, 3) left, right: x, y and relative depth
    hands_world: np.ndarray  # (2, 21, 3) metres, camera-aligned axes (within 2-4 deg on the demos)
    face: np.ndarray | None  # (468, 3) the mesh (the bundle's iris slots are empty)


def parts_of(res, origin: tuple[int, int], shape: tuple[int, int], ours: np.ndarray,
             seen: np.ndarray) -> Parts | None:
    """Holistic's result `res` on the window at `origin` (x, y) of `shape` (w, h), for our body
    (pixels, visibility) in the same frame; None when Holistic's body is not ours."""
    if not res.pose_landmarks:
        return None
    ox, oy = origin
    w, h = shape
    scale = size(pose_box(ours, seen))
    img = tasks.xyz(res.pose_landmarks, len(MEDIAPIPE_33))
    theirs = np.c_[ox + img[:, 0] * w, oy + img[:, 1] * h]
    apart = keypoint_distances(ours, seen, theirs, tasks.visibility(res.pose_landmarks, len(MEDIAPIPE_33)),
                               scale)  # as labelled, and with its sides exchanged
    if min(apart) > SAME_BODY:
        return None
    parts = Parts(np.full((2, N_HAND, 3), np.nan, np.float32), np.full((2, N_HAND, 3), np.nan, np.float32),
                  None)
    # Holistic finds each hand from its own body's wrist: where that body reads the person the
    # other way round (seen from behind), its left hand is on our right wrist. A hand that does not
    # start at that wrist (both of its hands found on one, say) is not taken.
    hands = ((res.left_hand_landmarks, res.left_hand_world_landmarks),
             (res.right_hand_landmarks, res.right_hand_world_landmarks))
    for side, (hand, hand_world) in enumerate(hands[::-1] if apart[1] < apart[0] else hands):
        if not hand:
            continue
        xyz = tasks.xyz(hand, N_HAND)
        px = np.c_[ox + xyz[:, 0] * w, oy + xyz[:, 1] * h, xyz[:, 2] * w]
        if np.linalg.norm(px[0, :2] - ours[_WRISTS[side]]) > HAND_REACH * scale:
            continue
        parts.hands[side] = px
        if hand_world:
            parts.hands_world[side] = tasks.xyz(hand_world, N_HAND)
    if res.face_landmarks:
        xyz = tasks.xyz(res.face_landmarks, N_FACE)
        parts.face = np.c_[ox + xyz[:, 0] * w, oy + xyz[:, 1] * h, xyz[:, 2] * w].astype(np.float32)
    return parts


class HolisticFollower:
    """One person's Holistic graph (VIDEO mode) and the window it is shown."""

    def __init__(self, model: str, fps: float, min_detection: float = 0.5, min_tracking: float = 0.5,
                 crop: SubjectCrop | None = None) -> None:
        """`crop`: the window it is always shown, following the person; None: the caller's window
        (or the whole frame) until it is shown someone else, then one of its own."""
        self._graph = tasks.holistic_landmarker(model, min_detection, min_tracking)
        self.crop = crop
        self._ms_per_frame = 1000.0 / fps if fps and fps > 0 else 1000.0 / 30.0
        self._last_ms = -1
        self._warm = False

    def close(self) -> None:
        with tasks.quiet_native_stderr():
            self._graph.close()

    def _timestamp(self, i: int) -> int:
        # VIDEO mode wants strictly increasing milliseconds; its smoothing reads them as time.
        ms = max(int(round(i * self._ms_per_frame)), self._last_ms + 1)
        self._last_ms = ms
        return ms

    def process(self, rgb: np.ndarray, i: int, ours: np.ndarray, seen: np.ndarray,
                window: SubjectCrop | None = None,
                mask: Callable[[np.ndarray, tuple[int, int]], np.ndarray] | None = None) -> Parts | None:
        """Holistic on frame i (a whole RGB frame) for our body there (pixels, visibility):
        shown its own crop, else `window`, else the whole frame; `mask(image, origin)` greys out
        what it must not see."""
        if self.crop is not None:
            self.crop.update(ours, seen > VISIBLE)
        shown = self.crop or window
        ox, oy, image = 0, 0, rgb
        if shown is not None:
            clipped = clip_window(shown.window(), rgb.shape[1], rgb.shape[0])
            if clipped is None:
                return None
            ox, oy, w, h = clipped
            image = rgb[oy:oy + h, ox:ox + w]
        if mask is not None:
            image = mask(image, (ox, oy))
        frame, ts = tasks.image(image), self._timestamp(i)
        if self._warm:
            res = self._graph.detect_for_video(frame, ts)
        else:  # the first call initialises the delegates, which log at native level
            with tasks.quiet_native_stderr():
                res = self._graph.detect_for_video(frame, ts)
            self._warm = True
        parts = parts_of(res, (ox, oy), (image.shape[1], image.shape[0]), ours, seen)
        if parts is None and self.crop is None:  # shown someone else, or no one
            self.crop = SubjectCrop.around(pose_box(ours, seen), rgb.shape[1], rgb.shape[0])
        return parts
