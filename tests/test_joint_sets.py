"""Joint tables and the mappings between them: names, mirroring, the kinematic tree, and the
markers derived for Pose2Sim's 22-marker set."""

from __future__ import annotations

import numpy as np
import pytest

from engine.joint_sets import (
    COCO_17,
    H36M_17,
    MEDIAPIPE_33,
    MP,
    MP_FACE,
    MP_LEFT,
    MP_MIRROR,
    MP_RIGHT,
    MP_TO_COCO17,
    MP_TREE,
    POSE2SIM_22,
    SMPL_24,
    mediapipe_to_h36m,
    with_virtual,
)
from engine.pose2sim_markers import mediapipe_to_pose2sim

P22 = {n: i for i, n in enumerate(POSE2SIM_22)}


def random_pose(frames: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.5, (frames, len(MEDIAPIPE_33), 3))


def standing_pose() -> np.ndarray:
    """(1, 33, 3) upright person in OpenSim-like axes (x: the subject's right, y up, z forward),
    feet pointing forward."""
    p = np.zeros((len(MEDIAPIPE_33), 3))
    for side, x in (("right", 1.0), ("left", -1.0)):
        p[MP[f"{side}_shoulder"]] = [0.18 * x, 1.40, 0]
        p[MP[f"{side}_elbow"]] = [0.20 * x, 1.10, 0]
        p[MP[f"{side}_wrist"]] = [0.21 * x, 0.85, 0]
        for j, dz in (("pinky", -0.02), ("index", 0.02), ("thumb", 0.04)):
            p[MP[f"{side}_{j}"]] = [0.21 * x, 0.78, dz]
        p[MP[f"{side}_hip"]] = [0.10 * x, 0.90, 0]
        p[MP[f"{side}_knee"]] = [0.10 * x, 0.48, 0.02]
        p[MP[f"{side}_ankle"]] = [0.10 * x, 0.08, 0]
        p[MP[f"{side}_heel"]] = [0.10 * x, 0.03, -0.05]
        p[MP[f"{side}_foot_index"]] = [0.11 * x, 0.01, 0.18]
        p[MP[f"{side}_ear"]] = [0.07 * x, 1.60, -0.02]
        p[MP[f"{side}_eye"]] = [0.03 * x, 1.64, 0.08]
        p[MP[f"{side}_eye_inner"]] = [0.015 * x, 1.64, 0.09]
        p[MP[f"{side}_eye_outer"]] = [0.045 * x, 1.64, 0.07]
        p[MP[f"mouth_{side}"]] = [0.025 * x, 1.55, 0.08]
    p[MP["nose"]] = [0, 1.60, 0.10]
    return p[None]


# --- tables ----------------------------------------------------------------------------------


def test_tables_have_unique_names_of_the_right_size():
    for table, n in ((MEDIAPIPE_33, 33), (POSE2SIM_22, 22), (COCO_17, 17), (H36M_17, 17), (SMPL_24, 24)):
        assert len(table) == n and len(set(table)) == n


def test_mirror_is_an_involution_that_swaps_sides():
    np.testing.assert_array_equal(MP_MIRROR[MP_MIRROR], np.arange(33))
    for i, name in enumerate(MEDIAPIPE_33):
        partner = MEDIAPIPE_33[MP_MIRROR[i]]
        if "left" in name:
            assert partner == name.replace("left", "right")
        elif "right" in name:
            assert partner == name.replace("right", "left")
        else:
            assert partner == name, f"{name} should be its own partner"
    assert len(MP_LEFT) == len(MP_RIGHT) == sum("left" in n for n in MEDIAPIPE_33) == 16
    assert all("left" in MEDIAPIPE_33[i] for i in MP_LEFT)
    assert all("right" in MEDIAPIPE_33[i] for i in MP_RIGHT)


def test_mouth_corners_are_mirror_partners():
    assert MP_MIRROR[MP["mouth_left"]] == MP["mouth_right"]


def test_coco17_is_the_named_subset():
    assert tuple(MEDIAPIPE_33[i] for i in MP_TO_COCO17) == COCO_17


def test_tree_spans_the_body_from_the_pelvis():
    children = [b for _, b in MP_TREE]
    assert len(children) == len(set(children)), "a joint has two parents"
    reached = {-1}
    for a, b in MP_TREE:  # parents come before their children
        assert a in reached, f"bone {a}->{b} starts at a joint not yet placed"
        reached.add(b)
    body = set(range(33)) - set(MP_FACE.tolist())
    assert body | {-1, -2} == reached
    assert set(MP_FACE.tolist()) == set(range(1, 11))  # eyes, ears, mouth: ride on the nose


def test_with_virtual_appends_thorax_then_pelvis():
    p = random_pose()
    v = with_virtual(p)
    assert v.shape == (5, 35, 3)
    np.testing.assert_array_equal(v[:, :33], p)
    np.testing.assert_allclose(v[:, -1], 0.5 * (p[:, MP["left_hip"]] + p[:, MP["right_hip"]]))
    np.testing.assert_allclose(v[:, -2], 0.5 * (p[:, MP["left_shoulder"]] + p[:, MP["right_shoulder"]]))


# --- MediaPipe-33 → Pose2Sim-22 --------------------------------------------------------------


def test_pose2sim_hip_and_neck_are_midpoints():
    p = random_pose()
    m = mediapipe_to_pose2sim(p)
    assert m.shape == (5, 22, 3)
    np.testing.assert_allclose(m[:, P22["Hip"]], 0.5 * (p[:, MP["left_hip"]] + p[:, MP["right_hip"]]))
    np.testing.assert_allclose(m[:, P22["Neck"]],
                               0.5 * (p[:, MP["left_shoulder"]] + p[:, MP["right_shoulder"]]))


@pytest.mark.parametrize("marker", [n for n in POSE2SIM_22 if n[0] in "RL" and "SmallToe" not in n])
def test_pose2sim_sided_markers_copy_the_same_side(marker):
    side = {"R": "right", "L": "left"}[marker[0]]
    joint = {"Hip": "hip", "Knee": "knee", "Ankle": "ankle", "Heel": "heel", "BigToe": "foot_index",
             "Shoulder": "shoulder", "Elbow": "elbow", "Wrist": "wrist"}[marker[1:]]
    p = random_pose()
    np.testing.assert_array_equal(mediapipe_to_pose2sim(p)[:, P22[marker]], p[:, MP[f"{side}_{joint}"]])


def test_pose2sim_nose_head_and_small_toes_on_a_standing_pose():
    p = standing_pose()
    m = mediapipe_to_pose2sim(p)[0]
    np.testing.assert_array_equal(m[P22["Nose"]], p[0, MP["nose"]])
    ears = 0.5 * (p[0, MP["left_ear"]] + p[0, MP["right_ear"]])
    assert m[P22["Head"], 1] > ears[1] + 0.05, "Head (skull top) should sit above the ears"
    assert abs(m[P22["Head"], 0]) < 1e-9, "Head should stay on the midline of a symmetric pose"
    for side, outward in (("R", 1.0), ("L", -1.0)):
        toe, small, heel = m[P22[f"{side}BigToe"]], m[P22[f"{side}SmallToe"]], m[P22[f"{side}Heel"]]
        assert outward * (small[0] - toe[0]) > 0.02, f"{side}SmallToe should be lateral to the big toe"
        assert heel[2] < small[2] < toe[2], f"{side}SmallToe should lie between heel and toe"
        assert abs(small[1] - toe[1]) < 0.05


def test_pose2sim_mapping_follows_rotation_and_translation():
    """Derived markers are geometric: moving the body moves them the same way."""
    p = standing_pose()
    q, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))  # a proper rotation
    shift = np.array([0.3, -1.0, 4.0])
    np.testing.assert_allclose(mediapipe_to_pose2sim(p @ q.T + shift),
                               mediapipe_to_pose2sim(p) @ q.T + shift, atol=1e-12)


def test_pose2sim_nan_stays_local():
    p = random_pose()
    p[2, MP["left_hip"]] = np.nan
    m = mediapipe_to_pose2sim(p)
    assert np.isnan(m[2, [P22["Hip"], P22["LHip"]]]).all()
    assert np.isfinite(m[2, [P22[n] for n in ("RKnee", "Neck", "Head", "LWrist", "LBigToe")]]).all()
    assert np.isfinite(m[[0, 1, 3, 4]]).all()


# --- other mappings --------------------------------------------------------------------------


def test_h36m_mapping():
    p = random_pose()
    h = mediapipe_to_h36m(p)
    assert h.shape == (5, 17, 3)
    pelvis = 0.5 * (p[:, MP["left_hip"]] + p[:, MP["right_hip"]])
    thorax = 0.5 * (p[:, MP["left_shoulder"]] + p[:, MP["right_shoulder"]])
    hi = {n: i for i, n in enumerate(H36M_17)}
    np.testing.assert_allclose(h[:, hi["pelvis"]], pelvis)
    np.testing.assert_allclose(h[:, hi["thorax"]], thorax)
    for name in ("right_hip", "left_knee", "right_wrist", "left_shoulder"):
        np.testing.assert_array_equal(h[:, hi[name]], p[:, MP[name]])
