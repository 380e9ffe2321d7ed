"""MediaPipe Pose / Holistic per frame → landmark arrays (pixels, world metres, visibility)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import mediapipe_tasks as tasks
from .person import SubjectCrop, clip_window
from .tracking import VISIBLE, Pose, Subject, keypoint_distances, pose_box, size

if TYPE_CHECKING:
    from .blazepose import BlazePoseTracker, PoseFrame

N_POSE, N_HAND, N_FACE = 33, 21, 468
_REFIND = [11, 12, 23, 24, 25, 26, 27, 28]  # what a lost subject must show to be taken back
# --holistic: Holistic's body is ours within this many person sizes (the same person's two
# readings lie about 0.01 apart), and a hand is ours when it starts this near one of our wrists.
SAME_BODY, HAND_REACH = 0.1, 0.08
_WRISTS = (15, 16)  # our left and right wrist, in track.hands' order


@dataclass
class LandmarkTrack:
    """Per-frame landmark arrays for one person; NaN where nothing was detected."""

    frames: int
    holistic: bool = False
    pixels: np.ndarray = field(init=False)  # (T, 33, 2) image pixels of the full frame
    depth_rel: np.ndarray = field(init=False)  # (T, 33) MediaPipe's relative image depth (x-width units)
    visibility: np.ndarray = field(init=False)  # (T, 33)
    world: np.ndarray = field(init=False)  # (T, 33, 3) MediaPipe world metres, hip-centred
    detected: np.ndarray = field(init=False)  # (T,) bool
    hands: np.ndarray | None = None  # (T, 2, 21, 3): left, right — pixels x, y and relative z
    hands_world: np.ndarray | None = None  # (T, 2, 21, 3): the same hands in metres, camera axes
    face: np.ndarray | None = None  # (T, 468, 3)

    def __post_init__(self) -> None:
        t = self.frames
        self.pixels = np.full((t, N_POSE, 2), np.nan, np.float32)
        self.depth_rel = np.full((t, N_POSE), np.nan, np.float32)
        self.visibility = np.zeros((t, N_POSE), np.float32)
        self.world = np.full((t, N_POSE, 3), np.nan, np.float32)
        self.detected = np.zeros(t, bool)
        if self.holistic:
            self.hands = np.full((t, 2, N_HAND, 3), np.nan, np.float32)
            self.hands_world = np.full((t, 2, N_HAND, 3), np.nan, np.float32)
            self.face = np.full((t, N_FACE, 3), np.nan, np.float32)

    _ARRAYS = ("pixels", "depth_rel", "visibility", "world", "detected", "hands", "hands_world", "face")

    def grow(self, n: int) -> None:
        """Make room for n frames (the stream is longer than its container declared); the new
        frames are undetected until processed."""
        if n <= self.frames:
            return
        more = LandmarkTrack(n - self.frames, holistic=self.holistic)
        for name in self._ARRAYS:
            arr = getattr(self, name)
            if arr is not None:
                setattr(self, name, np.concatenate([arr, getattr(more, name)]))
        self.frames = n

    def truncate(self, n: int) -> None:
        """Keep the first n frames (the video ended early)."""
        for name in self._ARRAYS:
            arr = getattr(self, name)
            if arr is not None:
                setattr(self, name, arr[:n])
        self.frames = n


class PoseDetector:
    """One person's landmarks through a video, optionally found inside a subject crop.

    The body (lite, full or heavy model) runs on our rebuild of the legacy MediaPipe Pose graph
    (engine/blazepose.py, LiteRT), with or without `--holistic`, whose hands and face come from
    MediaPipe's Tasks API (engine/mediapipe_tasks.py) beside it."""

    def __init__(self, holistic: bool = False, crop: SubjectCrop | None = None,
                 min_detection: float = 0.5, min_tracking: float = 0.5, model: str = "full",
                 fps: float = 30.0, tracker: BlazePoseTracker | None = None,
                 first: SubjectCrop | None = None) -> None:
        """`tracker`: a BlazePoseTracker made already (the person search's), used for the body.
        `first`: where the first frame's search saw the one person when there is no crop; the
        body looks there until it has seen them if the whole frame shows no one."""
        self.holistic = holistic
        self.crop = crop
        self._first = first
        self._ms_per_frame = 1000.0 / fps if fps and fps > 0 else 1000.0 / 30.0
        self._last_ms = -1
        self._warm = False
        self._subject = Subject(fps)  # a lost subject is found again, not someone else
        self._model = tasks.holistic_landmarker(model, min_detection, min_tracking) if holistic else None
        self._holistic_crop: SubjectCrop | None = None  # Holistic shown only our subject (_hands_and_face)
        if tracker is None:
            from .blazepose import BlazePoseTracker
            from .bundles import pose_bundle

            tracker = BlazePoseTracker(pose_bundle(model), min_detection, min_tracking)
        self._tracker = tracker

    def close(self) -> None:
        if self._model is not None:
            with tasks.quiet_native_stderr():
                self._model.close()

    def __enter__(self) -> PoseDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _timestamp(self, i: int) -> int:
        # VIDEO mode wants strictly increasing milliseconds; its smoothing reads them as time.
        ms = max(int(round(i * self._ms_per_frame)), self._last_ms + 1)
        self._last_ms = ms
        return ms

    def process(self, rgb: np.ndarray, track: LandmarkTrack, i: int) -> bool:
        """Detect on one RGB frame (row i of the run) and store the result at row i of `track`."""
        found = self._process_body(rgb, track, i)
        if found and self._model is not None:
            self._hands_and_face(rgb, track, i)
        if found and self.crop is not None:
            self.crop.update(track.pixels[i], track.visibility[i] > 0.5)
        return found

    def _process_body(self, rgb: np.ndarray, track: LandmarkTrack, i: int) -> bool:
        def pick(poses: list[PoseFrame]) -> int | None:
            # Taken back only nearly whole: 7 of the shoulders, hips, knees and ankles seen. Bodies
            # half seen mid-flip in Sports2D's glare made 20-56 m/s markers; lost (then bridged
            # by the gap filling, or left NaN) is better than wrong.
            whole = [k for k, p in enumerate(poses) if (p.visibility[_REFIND] > VISIBLE).sum() >= 7]
            k = self._subject.pick(i, [Pose(poses[k].pixels, poses[k].visibility) for k in whole])
            return None if k is None else whole[k]

        window = self.crop.window() if self.crop else None
        subject = self._subject.track
        if subject is not None and i - subject.last > 1:
            window = self._search_window(i, rgb.shape[1], rgb.shape[0]) or window
        found = self._tracker.process(rgb, window, pick if subject is not None else None)
        if found is None and subject is None and window is None and self._first is not None:
            # Sports2D's man on the shed is too small for the detector in the whole frame (frames
            # 0-2, then a coarse first pose at 3); the first frame's search had found him (HOG)
            found = self._tracker.process(rgb, self._first.window())
        if found is None:
            return False
        self._subject.seen(i, found.pixels, found.visibility)
        track.pixels[i] = found.pixels
        track.depth_rel[i] = found.depth
        track.visibility[i] = found.visibility
        track.world[i] = found.world
        track.detected[i] = True
        return True

    def _search_window(self, i: int, width: int, height: int) -> tuple[int, int, int, int] | None:
        """Where the lost subject is looked for first: near where they were heading, closer than
        the crop or the whole frame, so that the detector sees them larger (on Sports2D's demo
        the man is found again 4 frames sooner after his flip, and his first poses then lie within
        0.1 instead of 0.3-0.5 person sizes of the --people track's)."""
        x, y, w, h = self._subject.search_box(i)
        return clip_window((int(x), int(y), int(x + w) - int(x), int(y + h) - int(y)), width, height)

    def _hands_and_face(self, rgb: np.ndarray, track: LandmarkTrack, i: int) -> None:
        """--holistic: MediaPipe's Holistic (Tasks API) on the same frame, for the hands and the
        face of our body (row i, found already). Its own body, 4-6 px from ours and lost where ours
        is not (Sports2D frames 0-6 and 169-181; cam02 68 mm PA-MPJPE against 55), only tells
        whose hands it found: each hand hangs on the wrist of ours it starts at, the face on a
        body that is ours. Shown someone else, or no one, the graph sees from then on only a
        window around our subject (it re-detects only when it loses whom it tracks)."""
        ours, seen = track.pixels[i], track.visibility[i]
        if self._holistic_crop is not None:
            self._holistic_crop.update(ours, seen > VISIBLE)
        crop = self._holistic_crop or self.crop
        ox, oy, image = 0, 0, rgb
        if crop is not None:
            ox, oy, w, h = crop.window()
            image = rgb[oy:oy + h, ox:ox + w]
        h, w = image.shape[:2]
        frame, ts = tasks.image(image), self._timestamp(i)
        if self._warm:
            res = self._model.detect_for_video(frame, ts)
        else:  # the first call initialises the delegates, which log at native level
            with tasks.quiet_native_stderr():
                res = self._model.detect_for_video(frame, ts)
            self._warm = True
        scale = size(pose_box(ours, seen))
        apart = (np.inf, np.inf)  # Holistic's body from ours: as labelled, and sides exchanged
        if res.pose_landmarks:
            img = tasks.xyz(res.pose_landmarks, N_POSE)
            theirs = np.c_[ox + img[:, 0] * w, oy + img[:, 1] * h]
            vis = tasks.visibility(res.pose_landmarks, N_POSE)
            apart = keypoint_distances(ours, seen, theirs, vis, scale)
        if min(apart) > SAME_BODY:
            if self._holistic_crop is None:
                self._holistic_crop = SubjectCrop.around(pose_box(ours, seen), rgb.shape[1], rgb.shape[0])
            return
        # Holistic finds each hand from its own body's wrist: where that body reads the person the
        # other way round (seen from behind), its left hand is on our right wrist. A hand that does
        # not start at that wrist (both of its hands found on one, say) is not taken.
        swap = apart[1] < apart[0]
        hands = ((res.left_hand_landmarks, res.left_hand_world_landmarks),
                 (res.right_hand_landmarks, res.right_hand_world_landmarks))
        for side, (hand, hand_world) in enumerate(hands[::-1] if swap else hands):
            if not hand:
                continue
            xyz = tasks.xyz(hand, N_HAND)
            px = np.c_[ox + xyz[:, 0] * w, oy + xyz[:, 1] * h, xyz[:, 2] * w]
            if np.linalg.norm(px[0, :2] - ours[_WRISTS[side]]) > HAND_REACH * scale:
                continue
            track.hands[i, side] = px
            # metric, camera-aligned axes (within 2-4 deg on the demos)
            track.hands_world[i, side] = tasks.xyz(hand_world, N_HAND) if hand_world else np.nan
        if res.face_landmarks:
            xyz = tasks.xyz(res.face_landmarks, N_FACE)  # the mesh; the bundle's iris slots are empty
            track.face[i] = np.c_[ox + xyz[:, 0] * w, oy + xyz[:, 1] * h, xyz[:, 2] * w]
