"""MediaPipe Pose / Holistic per frame → landmark arrays (pixels, world metres, visibility)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .holistic import N_FACE, N_HAND, HolisticFollower, Parts
from .person import SubjectCrop, clip_window
from .tracking import VISIBLE, Pose, Subject

if TYPE_CHECKING:
    from .blazepose import BlazePoseTracker, PoseFrame

N_POSE = 33
_REFIND = [11, 12, 23, 24, 25, 26, 27, 28]  # what a lost subject must show to be taken back


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

    def add_parts(self, i: int, parts: Parts) -> None:
        """Row i's hands and face, as --holistic hung them on its body (engine/holistic.py)."""
        self.hands[i], self.hands_world[i] = parts.hands, parts.hands_world
        if parts.face is not None:
            self.face[i] = parts.face

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
    MediaPipe's Holistic beside it (engine/holistic.py)."""

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
        self._subject = Subject(fps)  # a lost subject is found again, not someone else
        self._holistic = HolisticFollower(model, fps, min_detection, min_tracking) if holistic else None
        if tracker is None:
            from .blazepose import BlazePoseTracker
            from .bundles import pose_bundle

            tracker = BlazePoseTracker(pose_bundle(model), min_detection, min_tracking)
        self._tracker = tracker

    def close(self) -> None:
        if self._holistic is not None:
            self._holistic.close()

    def __enter__(self) -> PoseDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def process(self, rgb: np.ndarray, track: LandmarkTrack, i: int) -> bool:
        """Detect on one RGB frame (row i of the run) and store the result at row i of `track`."""
        found = self._process_body(rgb, track, i)
        if found and self._holistic is not None:  # hands and face for the body found
            parts = self._holistic.process(rgb, i, track.pixels[i], track.visibility[i], self.crop)
            if parts is not None:
                track.add_parts(i, parts)
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
