"""engine/hands.py on a hand built in the test: one camera cannot tell a hand from its mirror image
in depth, so a hand whose fingers bend backwards is mirrored back along the ray through the wrist;
hands are hung on our wrist and flickering detections dropped. (The real hands of cam01, and of a
calibrated two-camera run, are checked in test_addon_fingers.py and test_multiview.py.)"""

from __future__ import annotations

import numpy as np

from engine.hands import backward_curl, hands_camera

FPS = 30.0


def _right_hand(bend_deg: float) -> np.ndarray:
    """21 points of a right hand in camera axes (x right, y down, z away), palm towards the camera
    (its back away from it), fingers up and bent by `bend_deg` at each joint towards the palm: the
    camera sees its thumb on the right of the image."""
    pts = np.zeros((21, 3))
    pts[1:5] = [[0.03, -0.02, 0], [0.05, -0.04, 0], [0.065, -0.06, 0], [0.075, -0.075, 0]]  # thumb
    for f, x in enumerate((0.025, 0.005, -0.015, -0.033)):  # index to little finger, right to left
        base = 5 + 4 * f
        pts[base] = [x, -0.09, 0]
        direction, p = np.array([0, -1.0, 0]), pts[base].copy()
        for k in range(1, 4):
            a = np.radians(bend_deg) * k
            direction = np.array([0, -np.cos(a), -np.sin(a)])  # towards the camera: the palm's side
            p = p + 0.025 * direction
            pts[base + k] = p
    return pts


def _track(hand: np.ndarray, frames: int = 30) -> tuple[np.ndarray, np.ndarray]:
    hands = np.full((frames, 2, 21, 3), np.nan)
    hands[:, 1] = hand - hand[0] + 0.01  # MediaPipe's hand world landmarks: centred near the hand
    markers = np.zeros((frames, 33, 3))
    markers[:, 16] = [0.1, 0.2, 2.5]  # our right wrist, 2.5 m away
    return hands, markers


def test_a_hand_is_hung_on_our_wrist_as_the_model_shaped_it() -> None:
    hand = _right_hand(30.0)
    assert backward_curl(hand[None], 1)[0] < -0.05  # bent towards the palm, as fingers bend
    hands, markers = _track(hand)
    out, mirrored = hands_camera(hands.astype(np.float32), markers, FPS, 6.0)
    assert mirrored == [0, 0]
    assert np.allclose(out[:, 1, 0], markers[:, 16], atol=1e-6)
    assert np.allclose(out[:, 1] - out[:, 1, :1], hand - hand[0], atol=1e-5)
    assert np.isnan(out[:, 0]).all()  # the left hand was never found


def test_a_hand_mirrored_in_depth_is_mirrored_back() -> None:
    hand = _right_hand(30.0)
    ray = np.array([0.1, 0.2, 2.5]) / np.linalg.norm([0.1, 0.2, 2.5])
    local = hand - hand[0]
    mirror = local - 2 * np.outer(local @ ray, ray)  # the same pixels, the fingers bent backwards
    assert backward_curl(mirror[None], 1)[0] > 0.05
    hands, markers = _track(mirror + hand[0])
    hands[10:20, 1] = (hand - hand[0] + 0.01)  # the model right for a third of the frames
    out, mirrored = hands_camera(hands.astype(np.float32), markers, FPS, 6.0)
    assert mirrored == [0, 20]
    assert np.allclose(out[:, 1] - out[:, 1, :1], local, atol=1e-5)
    assert (backward_curl(out[:, 1], 1) < 0).all()


def test_a_hand_seen_for_a_moment_is_dropped() -> None:
    hands, markers = _track(_right_hand(20.0), frames=40)
    hands[:, 1][np.r_[0:10, 12:20, 22:40]] = np.nan  # found in frames 10-11 (2 frames) and 20-21
    out, _ = hands_camera(hands.astype(np.float32), markers, FPS, 6.0)
    assert np.isnan(out[:, 1]).all()
    assert hands_camera(np.full((5, 2, 21, 3), np.nan, np.float32), markers[:5], FPS, 6.0) is None
