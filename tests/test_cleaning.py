"""Trajectory cleaning on synthetic data whose right answer is known: gap filling, mirroring,
the Butterworth low-pass, held bone lengths and the jerk measure."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cleaning import butterworth, fill_gaps, hold_bone_lengths, jerk, mirror_missing
from engine.joint_sets import MEDIAPIPE_33, MP, MP_FACE, MP_MIRROR, MP_TREE, with_virtual
from engine.scale import bone_lengths

FPS = 60.0


def smooth_tracks(frames: int = 60, joints: int = 3, seed: int = 0) -> np.ndarray:
    """(T, J, 3) slow sinusoids: PCHIP reproduces them closely across a few frames."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None] / FPS
    freq = rng.uniform(0.3, 1.0, (1, joints, 3))
    phase = rng.uniform(0, 2 * np.pi, (1, joints, 3))
    return rng.uniform(-1, 1, (1, joints, 3)) + 0.2 * np.sin(2 * np.pi * freq * t + phase)


# --- fill_gaps -------------------------------------------------------------------------------


def test_fill_gaps_fills_short_interior_gaps_only():
    truth = smooth_tracks()
    pts = truth.copy()
    pts[10:13, 0] = np.nan  # 3-frame interior gap: filled
    pts[20:25, 1] = np.nan  # exactly max_gap: filled
    pts[30:36, 1] = np.nan  # max_gap + 1: left unknown
    pts[:4, 2] = np.nan  # leading gap: left unknown
    pts[-2:, 2] = np.nan  # trailing gap: left unknown
    out, filled = fill_gaps(pts, max_gap=5)

    expect_filled = np.zeros(pts.shape[:2], bool)
    expect_filled[10:13, 0] = expect_filled[20:25, 1] = True
    np.testing.assert_array_equal(filled, expect_filled)
    np.testing.assert_allclose(out[10:13, 0], truth[10:13, 0], atol=2e-3)
    np.testing.assert_allclose(out[20:25, 1], truth[20:25, 1], atol=5e-3)
    assert np.isnan(out[30:36, 1]).all()
    assert np.isnan(out[:4, 2]).all() and np.isnan(out[-2:, 2]).all()
    known = np.isfinite(pts)
    np.testing.assert_array_equal(out[known], pts[known])  # measured samples are never altered
    assert np.isnan(pts[10:13, 0]).all(), "the input array was modified"


def test_fill_gaps_with_zero_max_gap_fills_nothing():
    pts = smooth_tracks()
    pts[10:12, 0] = np.nan
    out, filled = fill_gaps(pts, max_gap=0)
    assert not filled.any() and np.isnan(out[10:12, 0]).all()


def test_fill_gaps_leaves_a_joint_seen_once_alone():
    pts = np.full((10, 1, 3), np.nan)
    pts[4, 0] = [1.0, 2.0, 3.0]
    out, filled = fill_gaps(pts, max_gap=20)
    assert not filled.any()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(pts))


def test_fill_gaps_interpolates_a_straight_line_exactly():
    t = np.arange(30, dtype=float)
    pts = np.stack([0.1 * t, -0.2 * t + 1, 0.05 * t + 3], axis=-1)[:, None, :]
    holed = pts.copy()
    holed[7:11] = np.nan
    out, _ = fill_gaps(holed, max_gap=4)
    np.testing.assert_allclose(out, pts, atol=1e-12)


# --- mirror_missing --------------------------------------------------------------------------


def symmetric_pose(frames: int = 4, seed: int = 1) -> np.ndarray:
    """(T, 33, 3) poses that are exactly mirror-symmetric about a (random, per-frame) plane."""
    rng = np.random.default_rng(seed)
    local = np.zeros((len(MEDIAPIPE_33), 3))
    for i, name in enumerate(MEDIAPIPE_33):
        if name.startswith("left_"):
            local[i] = [rng.uniform(0.05, 0.4), rng.uniform(-0.9, 0.9), rng.uniform(-0.2, 0.2)]
    for i, name in enumerate(MEDIAPIPE_33):
        if name.startswith("right_"):
            local[i] = local[MP_MIRROR[i]] * [-1, 1, 1]  # the plane is x = 0
        elif not name.startswith("left_"):
            local[i] = [0.0, rng.uniform(-0.9, -0.6), rng.uniform(-0.1, 0.1)]  # on the plane
    out = []
    for _ in range(frames):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        out.append(local @ q.T + rng.uniform(-1, 1, 3) + [0, 0, 4])
    return np.array(out)


def test_mirror_missing_reflects_exactly_for_a_symmetric_pose():
    truth = symmetric_pose()
    pts = truth.copy()
    gone = [(0, "left_knee"), (0, "right_wrist"), (1, "left_ankle"), (1, "left_foot_index"),
            (2, "right_elbow"), (3, "left_ear")]
    for f, name in gone:
        pts[f, MP[name]] = np.nan
    out, mirrored = mirror_missing(pts)
    expect = np.zeros(pts.shape[:2], bool)
    for f, name in gone:
        expect[f, MP[name]] = True
    np.testing.assert_array_equal(mirrored, expect)
    np.testing.assert_allclose(out, truth, atol=1e-12)


def test_mirror_missing_uses_the_shoulders_when_a_hip_is_missing():
    truth = symmetric_pose()
    pts = truth.copy()
    pts[0, MP["left_hip"]] = np.nan  # the hip plane is gone; the shoulder plane is the same plane
    pts[0, MP["right_knee"]] = np.nan
    out, mirrored = mirror_missing(pts)
    assert mirrored[0, MP["left_hip"]] and mirrored[0, MP["right_knee"]]
    np.testing.assert_allclose(out, truth, atol=1e-12)


def test_mirror_missing_leaves_what_it_cannot_know():
    pts = symmetric_pose()
    pts[0, MP["left_knee"]] = pts[0, MP["right_knee"]] = np.nan  # both sides gone
    pts[1, MP["nose"]] = np.nan  # a midline landmark has no partner
    pts[2, [MP["left_hip"], MP["left_shoulder"]]] = np.nan  # no plane at all in this frame
    pts[2, MP["right_wrist"]] = np.nan
    out, mirrored = mirror_missing(pts)
    assert np.isnan(out[0, [MP["left_knee"], MP["right_knee"]]]).all()
    assert np.isnan(out[1, MP["nose"]]).all()
    assert np.isnan(out[2, [MP["left_hip"], MP["left_shoulder"], MP["right_wrist"]]]).all()
    assert not mirrored[0].any() and not mirrored[1].any() and not mirrored[2].any()


# --- butterworth -----------------------------------------------------------------------------


def sine(freq_hz: float, frames: int = 600) -> np.ndarray:
    t = np.arange(frames) / FPS
    return np.broadcast_to(np.sin(2 * np.pi * freq_hz * t)[:, None, None], (frames, 2, 3)).copy()


def test_butterworth_attenuates_20hz():
    x = sine(20.0)
    y = butterworth(x, FPS, cutoff_hz=6.0, order=4)
    mid = slice(100, -100)
    assert np.abs(y[mid]).max() < 0.02 * np.abs(x[mid]).max()


def test_butterworth_passes_1hz():
    x = sine(1.0)
    y = butterworth(x, FPS, cutoff_hz=6.0, order=4)
    mid = slice(100, -100)
    np.testing.assert_allclose(y[mid], x[mid], atol=0.01)


def test_butterworth_filters_each_valid_run_on_its_own():
    rng = np.random.default_rng(2)
    x = sine(1.0, 300) + 0.1 * rng.normal(size=(300, 2, 3))
    x[120:130, 0] = np.nan  # a gap splits joint 0 into two runs
    x[290:, 1] = np.nan
    x[:5, 1, 2] = np.nan  # one axis missing makes the sample unknown
    y = butterworth(x, FPS, cutoff_hz=6.0)
    np.testing.assert_array_equal(np.isnan(y[:, 0]), np.isnan(x[:, 0]))
    assert np.isfinite(y[5:290, 1]).all()
    np.testing.assert_allclose(y[:120, 0], butterworth(x[:120, :1], FPS, 6.0)[:, 0], atol=1e-12)
    np.testing.assert_allclose(y[130:, 0], butterworth(x[130:, :1], FPS, 6.0)[:, 0], atol=1e-12)
    assert np.abs(y[130:, 0] - x[130:, 0]).max() > 0.01, "the second run was not filtered"


def test_butterworth_leaves_short_runs_and_disabled_filters_alone():
    x = sine(20.0, 40)
    x[5:7] = np.nan  # runs of 5 and 33 frames: the 5-frame one is too short to filter
    y = butterworth(x, FPS, cutoff_hz=6.0)
    np.testing.assert_array_equal(y[:5], x[:5])
    assert not np.allclose(y[7:], x[7:])
    for cutoff in (0.0, 30.0, 45.0):  # off, at Nyquist, above Nyquist: unchanged
        np.testing.assert_array_equal(butterworth(x, FPS, cutoff), x)


def test_butterworth_does_not_modify_its_input():
    x = sine(5.0, 100)
    before = x.copy()
    butterworth(x, FPS, 6.0)
    np.testing.assert_array_equal(x, before)


# --- hold_bone_lengths -----------------------------------------------------------------------


def noisy_skeleton(frames: int = 8, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = symmetric_pose(1, seed)[0]
    return base + rng.normal(0, 0.03, (frames, len(MEDIAPIPE_33), 3))


def symmetric_lengths(seed: int = 4) -> np.ndarray:
    """Lengths along MP_TREE with each left bone equal to its right partner, as the engine makes
    them (engine.scale.subject_lengths)."""
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(0.05, 0.5, len(MP_TREE))
    index = {bone: i for i, bone in enumerate(MP_TREE)}
    mirror = lambda j: j if j < 0 else int(MP_MIRROR[j])
    for i, (a, b) in enumerate(MP_TREE):
        lengths[i] = lengths[min(i, index[(mirror(a), mirror(b))])]
    return lengths


def test_hold_bone_lengths_gives_every_bone_its_length_and_keeps_directions():
    pts = noisy_skeleton()
    lengths = symmetric_lengths()
    out = hold_bone_lengths(pts, lengths)
    np.testing.assert_allclose(bone_lengths(out), np.broadcast_to(lengths, (len(pts), len(MP_TREE))),
                               rtol=1e-10)
    v_in, v_out = with_virtual(pts), with_virtual(out)
    for a, b in MP_TREE:
        d_in = v_in[:, b] - v_in[:, a]
        d_out = v_out[:, b] - v_out[:, a]
        cos = np.sum(d_in * d_out, -1) / np.linalg.norm(d_in, axis=-1) / np.linalg.norm(d_out, axis=-1)
        np.testing.assert_allclose(cos, 1.0, atol=1e-10, err_msg=f"bone {a}->{b} turned")
    # The pelvis centre stays put; the face rides rigidly on the nose.
    np.testing.assert_allclose(v_out[:, -1], v_in[:, -1], atol=1e-12)
    offset_in = pts[:, MP_FACE] - pts[:, [MP["nose"]]]
    offset_out = out[:, MP_FACE] - out[:, [MP["nose"]]]
    np.testing.assert_allclose(offset_out, offset_in, atol=1e-12)


def test_hold_bone_lengths_is_nan_safe():
    pts = noisy_skeleton()
    pts[2, MP["left_knee"]] = np.nan
    lengths = symmetric_lengths()
    lengths[MP_TREE.index((MP["right_elbow"], MP["right_wrist"]))] = np.nan  # unknown: left as is
    out = hold_bone_lengths(pts, lengths)
    assert np.isnan(out[2, MP["left_knee"]]).all()
    assert np.isfinite(np.delete(out[2], MP["left_knee"], axis=0)).all()
    assert np.isfinite(out[[0, 1, 3]]).all()
    i = MP_TREE.index((MP["right_hip"], MP["right_knee"]))
    np.testing.assert_allclose(bone_lengths(out)[:, i], lengths[i], rtol=1e-10)


# --- jerk ------------------------------------------------------------------------------------


def test_jerk_of_known_motions():
    t = np.arange(50) / FPS
    constant_velocity = np.stack([2 * t, -t, 0.5 * t], -1)[:, None, :]
    assert jerk(constant_velocity, FPS) == pytest.approx(0.0, abs=1e-6)
    cubic = np.stack([3 * t**3, 0 * t, 0 * t], -1)[:, None, :]  # x''' = 18 m/s³
    assert jerk(cubic, FPS) == pytest.approx(18.0, rel=1e-6)
