"""MediaPipe's maintained Tasks API (mediapipe >= 1.2): landmarkers made from our own bundles.

The legacy `mp.solutions` API ended with mediapipe 0.10.21 (no Python 3.13, numpy < 2). The Tasks
API runs the same BlazePose models through one C library for every Python from 3.9, numpy 1 and 2;
its models come from engine/bundles.py. mediapipe is imported only here and only when a run starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .bundles import pose_bundle, unusable


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence the C++ log lines TFLite and glog print while MediaPipe builds and first runs its
    graph: they are noise to a user watching a progress bar. Python exceptions still propagate."""
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    _saved.append(fd)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        _saved.pop()
        if _torn_down is None:  # once the run is being torn down, fd 2 stays silent
            os.dup2(fd, 2)
        os.close(fd)
        os.close(devnull)


_saved: list[int] = []  # the stderr each open quiet_native_stderr will restore (outermost first)
_torn_down: int | None = None  # the real stderr, kept by silence_native_stderr_for_good


def silence_native_stderr_for_good() -> int:
    """Point fd 2 at /dev/null for the rest of the process and return a descriptor of the real
    stderr. For a cancelled CLI run: the graphs' threads and destructors log as they are torn down
    (a signal can land while one is being built), and the user should see only the one error line,
    written to the returned descriptor."""
    global _torn_down
    if _torn_down is None:
        sys.stderr.flush()
        _torn_down = os.dup(_saved[0] if _saved else 2)  # inside a quiet block fd 2 is /dev/null
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    return _torn_down


def _vision():
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import mediapipe as mp  # heavy import (loads the C library)
    from mediapipe.tasks.python import BaseOptions, vision
    return mp, BaseOptions, vision


def _create(factory, options, bundle: Path):
    try:
        with quiet_native_stderr():
            return factory.create_from_options(options)
    except (RuntimeError, ValueError, OSError) as exc:
        raise unusable(bundle, exc) from None


def pose_landmarker(model: str = "full", video: bool = True, num_poses: int = 1,
                    min_detection: float = 0.5, min_tracking: float = 0.5):
    """A PoseLandmarker in VIDEO mode (tracking between frames) or IMAGE mode (each call alone)."""
    mp, BaseOptions, vision = _vision()
    bundle = pose_bundle(model)
    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(bundle)),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
        num_poses=num_poses, min_pose_detection_confidence=min_detection,
        min_pose_presence_confidence=min_detection, min_tracking_confidence=min_tracking,
        output_segmentation_masks=False)
    return _create(vision.PoseLandmarker, options, bundle)


def holistic_landmarker(model: str = "full", min_detection: float = 0.5, min_tracking: float = 0.5):
    """A HolisticLandmarker (pose, hands, face) in VIDEO mode."""
    mp, BaseOptions, vision = _vision()
    bundle = pose_bundle(model, holistic=True)
    options = vision.HolisticLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(bundle)),
        running_mode=vision.RunningMode.VIDEO,
        min_pose_detection_confidence=min_detection, min_pose_presence_confidence=min_tracking,
        min_face_detection_confidence=min_detection, min_face_presence_confidence=min_tracking,
        min_hand_landmarks_confidence=min_tracking, output_pose_segmentation_masks=False)
    return _create(vision.HolisticLandmarker, options, bundle)


def image(rgb: np.ndarray):
    """An mp.Image over an RGB uint8 array (contiguous, as the C library reads it)."""
    mp, _, _ = _vision()
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


def xyz(landmarks, n: int | None = None) -> np.ndarray:
    """(N, 3) float32 of a Tasks landmark list (normalised or world)."""
    pts = landmarks if n is None else landmarks[:n]
    return np.array([(p.x, p.y, p.z) for p in pts], np.float32)


def visibility(landmarks, n: int | None = None) -> np.ndarray:
    pts = landmarks if n is None else landmarks[:n]
    return np.array([p.visibility if p.visibility is not None else 0.0 for p in pts], np.float32)
