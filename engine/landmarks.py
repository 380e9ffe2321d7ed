"""MediaPipe Pose / Holistic per frame → landmark arrays (pixels, world metres, visibility)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .person import SubjectCrop

N_POSE, N_HAND, N_FACE = 33, 21, 468


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
            self.face = np.full((t, N_FACE, 3), np.nan, np.float32)

    _ARRAYS = ("pixels", "depth_rel", "visibility", "world", "detected", "hands", "face")

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


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence the C++ log lines TFLite and glog print while MediaPipe builds its graph: they
    are noise to a user watching a progress bar. Python exceptions still propagate."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)
        os.close(devnull)


def _xyz(landmarks, n: int) -> np.ndarray:
    return np.array([(lm.x, lm.y, lm.z) for lm in landmarks.landmark[:n]], np.float32)


class PoseDetector:
    """MediaPipe Pose (full model) or Holistic in video mode, optionally on a subject crop."""

    def __init__(self, holistic: bool = False, crop: SubjectCrop | None = None,
                 min_detection: float = 0.5, min_tracking: float = 0.5) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import mediapipe as mp  # heavy import; only when a run starts

        self.holistic = holistic
        self.crop = crop
        common = dict(static_image_mode=False, model_complexity=1, smooth_landmarks=True,
                      min_detection_confidence=min_detection, min_tracking_confidence=min_tracking)
        self._warm = False
        with _quiet_native_stderr():
            if holistic:
                self._model = mp.solutions.holistic.Holistic(refine_face_landmarks=False, **common)
            else:
                self._model = mp.solutions.pose.Pose(enable_segmentation=False, **common)

    def close(self) -> None:
        self._model.close()

    def __enter__(self) -> PoseDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def process(self, rgb: np.ndarray, track: LandmarkTrack, i: int) -> bool:
        """Detect on one RGB frame and store the result at row i of `track`."""
        ox, oy = 0, 0
        image = rgb
        if self.crop is not None:
            ox, oy, w, h = self.crop.window()
            image = np.ascontiguousarray(rgb[oy:oy + h, ox:ox + w])
        h, w = image.shape[:2]
        if self._warm:
            res = self._model.process(image)
        else:  # the first call initialises the delegates, which log at native level
            with _quiet_native_stderr():
                res = self._model.process(image)
            self._warm = True
        if res.pose_landmarks is None or res.pose_world_landmarks is None:
            return False
        img = _xyz(res.pose_landmarks, N_POSE)
        track.pixels[i, :, 0] = ox + img[:, 0] * w
        track.pixels[i, :, 1] = oy + img[:, 1] * h
        track.depth_rel[i] = img[:, 2] * w
        track.visibility[i] = [lm.visibility for lm in res.pose_landmarks.landmark[:N_POSE]]
        track.world[i] = _xyz(res.pose_world_landmarks, N_POSE)
        track.detected[i] = True
        if self.holistic:
            for side, attr in enumerate(("left_hand_landmarks", "right_hand_landmarks")):
                hand = getattr(res, attr)
                if hand is not None:
                    xyz = _xyz(hand, N_HAND)
                    track.hands[i, side] = np.c_[ox + xyz[:, 0] * w, oy + xyz[:, 1] * h, xyz[:, 2] * w]
            if res.face_landmarks is not None:
                xyz = _xyz(res.face_landmarks, N_FACE)
                track.face[i] = np.c_[ox + xyz[:, 0] * w, oy + xyz[:, 1] * h, xyz[:, 2] * w]
        if self.crop is not None:
            self.crop.update(track.pixels[i], track.visibility[i] > 0.5)
        return True
