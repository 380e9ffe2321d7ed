"""The body's pose stage (engine/blazepose.py): BlazePose's models on LiteRT with the legacy
MediaPipe graph's processing, checked against Google's own implementation of that graph (the
Tasks PoseLandmarker of mediapipe 1.2, image mode) on the real demo videos."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT

from engine import mediapipe_tasks as tasks
from engine.blazepose import BlazePoseTracker, aligned_roi
from engine.bundles import pose_bundle
from engine.errors import EngineError
from engine.video import probe, stream_frames

MODELS = REPO_ROOT / "models"


def _frames(video: Path, n: int, step: int = 1) -> list[np.ndarray]:
    return [rgb for i, rgb in stream_frames(probe(video), 0, n) if i % step == 0]


@pytest.fixture(scope="module")
def demo_frames(cam01: Path, sports2d_demo: Path) -> list[np.ndarray]:
    """Pose2Sim's cam01 (portrait, one person) and Sports2D's demo (landscape, a person walking
    across, others around), every few frames."""
    return _frames(cam01, 100, step=10) + _frames(sports2d_demo, 230, step=23)


def test_each_frame_alone_is_mediapipe_own_result(demo_frames):
    """Without tracking and smoothing, every frame gives what MediaPipe's Tasks PoseLandmarker
    gives on it (same models, Google's implementation of the graph): pixels, depth, visibility and
    world landmarks. Measured: 0.002-0.006 px median apart; the models move a landmark by 0.5-1.5
    px if, e.g., the crop is interpolated on float instead of uint8 pixels."""
    ours = BlazePoseTracker(pose_bundle("full"), smooth=False)
    theirs = tasks.pose_landmarker("full", video=False)
    px, world, vis = [], [], []
    try:
        for rgb in demo_frames:
            ours.reset()
            got = ours.process(rgb)
            ref = theirs.detect(tasks.image(rgb))
            # the same verdict, person or no one (Sports2D's small, far people are often missed)
            assert (got is None) == (not ref.pose_landmarks)
            if got is None:
                continue
            h, w = rgb.shape[:2]
            xyz = tasks.xyz(ref.pose_landmarks[0])
            px.append(np.linalg.norm(got.pixels - xyz[:, :2] * (w, h), axis=-1))
            world.append(np.linalg.norm(got.world - tasks.xyz(ref.pose_world_landmarks[0]), axis=-1))
            vis.append(np.abs(got.visibility - tasks.visibility(ref.pose_landmarks[0])))
            assert np.median(np.abs(got.depth - xyz[:, 2] * w)) < 0.5
    finally:
        theirs.close()
    px = np.array(px)
    assert len(px) >= 12  # cam01's 10 frames and at least 2 of Sports2D's
    assert np.median(px) < 0.05, np.median(px)
    assert np.percentile(px, 99) < 0.5, np.percentile(px, 99)
    assert np.median(world) < 1e-3  # metres
    assert np.max(vis) < 0.02


def test_video_tracks_from_one_detection_and_smooths(cam01, monkeypatch):
    """In video mode the detector runs once; after that each frame's region comes from the last
    landmarks, and the one-euro filters take the frame-to-frame jitter off still landmarks."""
    frames = _frames(cam01, 40)
    tracker = BlazePoseTracker(pose_bundle("full"))
    calls = []
    detect = tracker.detect
    monkeypatch.setattr(tracker, "detect", lambda rgb: calls.append(1) or detect(rgb))
    smooth = np.array([tracker.process(rgb).pixels for rgb in frames])
    assert len(calls) == 1
    raw_tracker = BlazePoseTracker(pose_bundle("full"), smooth=False)
    raw = np.array([raw_tracker.process(rgb).pixels for rgb in frames])
    # second differences: jitter, not motion, dominates them at 60 fps
    jitter = {name: np.median(np.linalg.norm(np.diff(p, 2, axis=0), axis=-1))
              for name, p in (("smooth", smooth), ("raw", raw))}
    assert jitter["smooth"] < 0.7 * jitter["raw"], jitter
    assert np.median(np.linalg.norm(smooth - raw, axis=-1)) < 10.0  # not lag (bodies ~1000 px)


def test_a_lost_person_is_looked_for_again(cam01):
    """A frame with no one ends the track (filters reset) and the next frame detects afresh."""
    frames = _frames(cam01, 3)
    tracker = BlazePoseTracker(pose_bundle("full"))
    assert tracker.process(frames[0]) is not None
    assert tracker.detect(np.zeros_like(frames[0])) == []
    assert tracker.process(np.zeros_like(frames[0])) is None
    again = tracker.process(frames[1])
    fresh = BlazePoseTracker(pose_bundle("full"), smooth=False).process(frames[1])
    # the first frame of a new track is unfiltered: exactly a fresh tracker's result
    assert np.allclose(again.pixels, fresh.pixels, atol=1e-3)


def test_detection_and_regions_in_full_frame_pixels(sports2d_demo):
    """The detector's alignment points land on the person (hip centre between the hips), in the
    frame's pixels also when it looks inside a window; the region is the legacy 1.25 x square."""
    rgb = _frames(sports2d_demo, 116)[-1]  # the man mid-frame, close to the camera
    tracker = BlazePoseTracker(pose_bundle("full"), smooth=False)
    score, points = tracker.detect(rgb)[0]
    assert score > 0.5
    hips = tracker.process(rgb).pixels[[23, 24]].mean(axis=0)
    roi = aligned_roi(points[0], points[1])
    assert roi.size == pytest.approx(2.5 * np.linalg.norm(points[1] - points[0]))
    assert np.linalg.norm(points[0] - hips) < 0.1 * roi.size  # coarser: the region has a 25 % margin
    # the same person through a window around them: detected in the window, given in the frame
    x = max(0, int(hips[0]) - 300)
    tracker.reset()
    inside = tracker.process(rgb, (x, 0, 600, rgb.shape[0]))
    assert inside is not None
    assert np.linalg.norm(inside.pixels[[23, 24]].mean(axis=0) - hips) < 5


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_turned_search_puts_a_turned_person_back_in_the_frame(cam01, turns):
    """A person lying or upside down (the frame turned `turns` quarter turns) is found by the
    search's turned views with their alignment points in the turned frame's pixels, where the
    upright person's points go; the landmarks from that rotated region are the same body's."""
    rgb = _frames(cam01, 1)[0]
    h, w = rgb.shape[:2]
    tracker = BlazePoseTracker(pose_bundle("full"), smooth=False)
    _, upright_points = tracker.detect(rgb)[0]
    x, y = upright_points[:, 0], upright_points[:, 1]
    expected = np.stack({1: (y, w - x), 2: (w - x, h - y), 3: (h - y, x)}[turns], axis=-1)
    turned = np.ascontiguousarray(np.rot90(rgb, turns))
    found = tracker._turned(turned, np.zeros(2))
    best = min(found, key=lambda d: np.linalg.norm(d[1][0] - expected[0]))[1]
    assert np.linalg.norm(best - expected, axis=-1).max() < 3.0, (best, expected)
    lying = tracker._landmarks(turned, aligned_roi(best[0], best[1]))
    upright = tracker._landmarks(rgb, aligned_roi(*upright_points[:2]))
    ux, uy = upright[0][:33, 0], upright[0][:33, 1]
    back = np.stack({1: (uy, w - ux), 2: (w - ux, h - uy), 3: (h - uy, ux)}[turns], axis=-1)
    assert np.median(np.linalg.norm(lying[0][:33, :2] - back, axis=-1)) < 3.0


@pytest.mark.parametrize("damage", ["missing model", "garbage model"])
def test_bad_bundle_is_one_error_naming_the_command(tmp_path, damage):
    bundle = tmp_path / "pose_landmarker_full.task"
    with zipfile.ZipFile(MODELS / "pose_landmarker_full.task") as src, \
            zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("pose_detector.tflite", src.read("pose_detector.tflite"))
        if damage == "garbage model":
            zf.writestr("pose_landmarks_detector.tflite", b"TFL3" + b"\x02" * 2000)
    with pytest.raises(EngineError, match="corrupt" if damage == "missing model" else "unusable") as e:
        BlazePoseTracker(bundle)
    assert "python -m engine.bundles" in str(e.value)


def test_everyone_in_one_image_is_what_mediapipe_finds():
    """people() (the first frame's person search) finds the same people as the Tasks
    PoseLandmarker with num_poses=4 on Pose2Sim's two-person demo, with the same landmarks."""
    import importlib.util

    video = (Path(importlib.util.find_spec("Pose2Sim").origin).parent
             / "Demo_MultiPerson" / "videos" / "cam01.mp4")
    tracker = BlazePoseTracker(pose_bundle("full"))
    theirs = tasks.pose_landmarker("full", video=False, num_poses=4)
    counts = []
    try:
        for rgb in _frames(video, 60, step=15):
            ours = tracker.people(rgb)
            ref = theirs.detect(tasks.image(rgb)).pose_landmarks
            assert len(ours) == len(ref)
            counts.append(len(ours))
            h, w = rgb.shape[:2]
            for person in ours:
                d = min(np.median(np.linalg.norm(person.pixels - tasks.xyz(r)[:, :2] * (w, h), axis=-1))
                        for r in ref)
                assert d < 0.05, d
    finally:
        theirs.close()
    assert max(counts) == 2, counts  # both people at once in some frames
