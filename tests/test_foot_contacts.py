"""Foot lock: planted heels and toes found in the 2D track (engine.contacts) and held still in 3D
by the skeleton fit, on synthetic tracks with known contacts and on the real demo."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.camera import Intrinsics
from engine.config import RunConfig
from engine.contacts import FOOT_POINTS, stationary_feet
from engine.joint_sets import MP
from engine.left_right import repair_mirrored
from engine.reconstruct import reconstruct

FPS = 60.0
K = Intrinsics.from_settings(1080, 1920)


def _track(path_m: np.ndarray, depth_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels, confidence and depths (T, 33, …) of a body whose left heel follows `path_m` (T, 2),
    metres across the image plane at `depth_m`; every other landmark stays hidden."""
    T = len(path_m)
    pixels = np.full((T, 33, 2), np.nan)
    pixels[:, MP["left_heel"]] = path_m / depth_m * [K.fx, K.fy] + [K.cx, K.cy]
    pixels[:, MP["left_heel"]] += 0.4 * np.random.default_rng(0).standard_normal((T, 2))  # 2D jitter
    confident = np.zeros((T, 33), bool)
    confident[:, MP["left_heel"]] = True
    return pixels, confident, np.full((T, 33), depth_m)


def test_a_planted_heel_is_found_where_it_stands_and_not_once_it_moves():
    # 40 frames planted, then 1.5 m/s across the image with a 3-frame pause (too short for a contact).
    speed = np.r_[np.zeros(40), np.full(30, 1.5), np.zeros(3), np.full(27, 1.5)] / FPS
    path = np.stack([np.cumsum(speed), np.zeros(len(speed))], axis=1)
    pixels, confident, depth = _track(path, 3.0)
    planted = stationary_feet(pixels, confident, depth, K, FPS)
    heel = planted[:, MP["left_heel"]]
    assert heel[3:36].all(), np.flatnonzero(~heel[:40])
    assert not heel[46:].any(), np.flatnonzero(heel[46:]) + 46
    others = np.delete(planted, MP["left_heel"], axis=1)
    assert not others.any(), "only seen heels and toes can be planted"


@pytest.mark.parametrize("depth_m", [2.0, 8.0])
@pytest.mark.parametrize("speed_mps,still", [(0.15, True), (0.7, False)])
def test_the_speed_threshold_is_in_metres_at_any_distance(depth_m, speed_mps, still):
    """The same foot speed looks 4× slower in pixels at 8 m than at 2 m; the decision must not."""
    path = np.stack([np.arange(90) * speed_mps / FPS, np.zeros(90)], axis=1)
    pixels, confident, depth = _track(path, depth_m)
    heel = stationary_feet(pixels, confident, depth, K, FPS)[:, MP["left_heel"]]
    assert heel[10:80].all() if still else not heel.any()


def _speeds(markers: np.ndarray, planted: np.ndarray) -> np.ndarray:
    """3D speed (m/s) of heels and toes in the frames where they are planted."""
    v = np.linalg.norm(np.gradient(markers[:, FOOT_POINTS], axis=0), axis=-1) * FPS
    return v[planted[:, FOOT_POINTS]]


@pytest.fixture(scope="module")
def demo_feet(cam01_run):
    """cam01's run (foot lock on, the default) and the same track reconstructed without it."""
    res = cam01_run.result
    repaired, _ = repair_mirrored(res.track)
    off = reconstruct(repaired, res.intrinsics,
                      RunConfig(video=res.video.path, height_m=1.72, foot_lock=False), res.video.fps)
    return res, off


def test_the_demo_left_foot_is_planted_through_the_first_second(demo_feet):
    """In frames 0–60 of Pose2Sim's demo the subject stands on the left foot while the right one
    lifts (the 4-view reference's left heel moves under 0.25 m/s there)."""
    res, off = demo_feet
    planted = res.recon.planted
    assert planted[:, MP["left_heel"]].mean() > 0.6
    assert planted[:, MP["left_foot_index"]].mean() > 0.6
    assert not np.delete(planted, FOOT_POINTS, axis=1).any()
    assert not off.planted.any()


def test_foot_lock_stops_planted_feet_sliding_on_the_demo(demo_feet):
    res, off = demo_feet
    on, without = _speeds(res.recon.markers, res.recon.planted), _speeds(off.markers, res.recon.planted)
    assert np.median(on) < 0.1, np.median(on)  # m/s: a planted foot barely moves
    assert np.mean(on) < 0.6 * np.mean(without), (np.mean(on), np.mean(without))


def test_planted_flags_reach_the_quality_report(cam01_run):
    res = cam01_run.result
    df = pd.read_csv(res.files["quality_csv"])
    flags = df["planted"].to_numpy().reshape(res.track.frames, 33).astype(bool)
    np.testing.assert_array_equal(flags, res.recon.planted)
    q = json.loads(res.files["run_json"].read_text())["quality"]
    assert q["planted_feet_share"] == pytest.approx(flags[:, FOOT_POINTS].mean(), abs=1e-4)
    assert q["planted_share"] == pytest.approx(flags.mean(), abs=1e-4)
