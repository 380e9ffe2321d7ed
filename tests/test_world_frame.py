"""engine/world_frame.py without Blender: the scene's world is the final TRC's levelling turned Z up
(every marker's height is its TRC height, horizontal distances are kept), turned about the vertical
only so that the subject faces -Y, with the median hip centre over the origin; a result without a
level record is levelled from its own markers; one without markers keeps the camera frame."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import world_frame
from engine.coords import CAMERA_TO_BLENDER
from engine.joint_sets import MP, POSE2SIM_22
from engine.pose2sim_markers import mediapipe_to_pose2sim
from engine.trc import read_trc


@pytest.fixture(scope="module")
def run(cam01_run):
    folder = cam01_run.result.out_dir
    record = json.loads((folder / "run.json").read_text())
    with np.load(next(folder.glob("*_markers.npz"))) as d:
        markers = np.asarray(d["markers_33_camera"], dtype=np.float64)
    trc, names, _ = read_trc(next(folder.glob("*_final.trc")))
    return record, markers, trc[:, : len(POSE2SIM_22)], names


def test_world_is_the_trc_levelling_turned_z_up(run) -> None:
    record, markers, trc, names = run
    assert list(names[: len(POSE2SIM_22)]) == list(POSE2SIM_22)
    frame = world_frame.world_frame(record, markers)
    W = frame.matrix
    assert frame.level_source == "run.json" and frame.vertical == record["biomechanics"]["level"]["vertical"]
    np.testing.assert_allclose(W[:3, :3] @ W[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(W[:3, :3]) == pytest.approx(1.0) and np.allclose(W[3], [0, 0, 0, 1])
    world = world_frame.transform_points(W, mediapipe_to_pose2sim(markers))
    ok = np.isfinite(world).all(-1) & np.isfinite(trc).all(-1)
    # Heights: every marker's z is its height in the TRC (the engine's own file; 6 decimals, and
    # the npz holds float32 markers).
    dz = np.abs(world[ok][:, 2] - trc[ok][:, 1])
    print(f"\nworld z vs TRC y over {ok.sum()} markers: max {1000 * dz.max():.4f} mm")
    assert dz.max() < 2e-5
    # Horizontally one fixed turn about the vertical and a shift: the TRC's (x, -z) plane.
    a, b = trc[ok][:, [0, 2]] * [1.0, -1.0], world[ok][:, :2]
    a0, b0 = a - a.mean(0), b - b.mean(0)
    u, _, vt = np.linalg.svd(a0.T @ b0)
    rot = (u @ vt).T
    assert np.linalg.det(rot) > 0  # a turn, not a mirror
    residual = np.abs(a0 @ rot.T - b0).max()
    turn = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
    print(f"horizontal: a turn of {turn:.2f} deg about Z (heading {frame.heading_deg:.2f}), "
          f"residual {1000 * residual:.4f} mm")
    assert residual < 2e-5 and turn == pytest.approx(frame.heading_deg, abs=1e-3)


def test_subject_faces_minus_y_with_the_hips_over_the_origin(run) -> None:
    record, markers, _, _ = run
    p = world_frame.transform_points(world_frame.world_from_camera(record, markers), markers)
    hips = 0.5 * (p[:, MP["left_hip"]] + p[:, MP["right_hip"]])
    np.testing.assert_allclose(np.nanmedian(hips[:, :2], axis=0), 0.0, atol=1e-9)
    # The nose is in front of the ears (an anatomical check of the facing's sign): toward -Y.
    ears = 0.5 * (p[:, MP["left_ear"]] + p[:, MP["right_ear"]])
    nose = p[:, MP["nose"]] - ears
    assert np.nanmedian(nose[:, 1]) < -0.05 and abs(np.nanmedian(nose[:, 0])) < 0.05
    # The subject's left is +X (Blender's front view: the character's left on screen right).
    assert np.nanmedian(p[:, MP["left_shoulder"], 0] - p[:, MP["right_shoulder"], 0]) > 0.2


def test_without_a_level_record_the_markers_are_levelled_alike(run) -> None:
    record, markers, _, _ = run
    given = world_frame.world_frame(record, markers)
    for missing in ({}, {"biomechanics": {}}, {"biomechanics": {"level": {"rotation": "?"}}}):
        est = world_frame.world_frame(missing, markers)
        assert est.level_source == "estimated" and est.vertical == ""
        # The same leg-based vertical as the biomechanics stage (an "estimated" vertical) ...
        up_est, up_given = est.matrix[2, :3], given.matrix[2, :3]
        angle = np.degrees(np.arccos(np.clip(up_est @ up_given, -1, 1)))
        assert angle < 0.01 if record["biomechanics"]["level"]["vertical"] == "estimated" else angle < 10
        # ... and a floor from the heels and toes rather than the 65 final markers.
        print(f"\nno level record: vertical {angle:.4f} deg off run.json's, floor "
              f"{1000 * (est.floor_offset_m - given.floor_offset_m):+.1f} mm")
        assert abs(est.floor_offset_m - given.floor_offset_m) < 0.05
    nothing = world_frame.world_frame({}, np.full((3, 33, 3), np.nan))
    assert nothing.level_source == "none"
    np.testing.assert_array_equal(nothing.matrix[:3, :3], CAMERA_TO_BLENDER)


def test_the_turn_is_about_the_vertical_only(run) -> None:
    """A subject filmed from another side gets the same vertical and floor, only another heading."""
    record, markers, _, _ = run
    base = world_frame.world_frame(record, markers)
    a = np.radians(70.0)
    # The camera turned about the world's vertical (in the camera frame: about the record's up).
    up_cam = base.matrix[2, :3]
    k = np.array([[0, -up_cam[2], up_cam[1]], [up_cam[2], 0, -up_cam[0]], [-up_cam[1], up_cam[0], 0]])
    turn = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)
    moved = world_frame.world_frame(record, markers @ turn.T)
    assert moved.heading_deg == pytest.approx((base.heading_deg - 70.0 + 180) % 360 - 180, abs=1e-6)
    p0 = world_frame.transform_points(base.matrix, markers)
    p1 = world_frame.transform_points(moved.matrix, markers @ turn.T)
    np.testing.assert_allclose(p1, p0, atol=1e-9)
