"""The face of a --holistic run as channels (engine/face.py): jaw opening and eye closure, on
Sports2D's demo, whose man shows his face (about 20 px between the eyes) in 20 of frames 0-74
with his mouth closed and eyes open. Pose2Sim's demos cannot be used: their faces are blurred."""

from __future__ import annotations

import json

import numpy as np
from scipy.spatial.transform import Rotation

from engine import face as face_mod
from engine.joint_sets import MP


def _found(run) -> np.ndarray:
    return np.isfinite(run.track.face).all(axis=(1, 2))


def test_the_run_keeps_the_face_where_it_was_found_in_runs(face_run) -> None:
    found = _found(face_run)
    assert found.sum() >= 15, np.flatnonzero(found)
    with np.load(face_run.files["markers_npz"]) as d:
        channels = d["face_expressions"]
    kept = np.isfinite(channels).all(axis=1)
    assert (kept <= found).all() and kept.sum() >= 10
    # a face found in fewer than 3 frames in a row (frames 4, 28, 30, 33, ... alone) is dropped
    from engine.cleaning import runs
    assert all(b - a >= 3 for a, b in runs(kept))
    rows = np.loadtxt(face_run.files["face_csv"], delimiter=",", skiprows=1, ndmin=2)
    assert np.array_equal(rows[:, 0].astype(int), np.flatnonzero(kept) + face_run.first_frame)
    np.testing.assert_allclose(rows[:, 2], np.degrees(channels[kept, 0]), atol=1e-3)
    record = json.loads(face_run.files["run_json"].read_text())
    assert record["face"]["frames"] == kept.sum()
    # He keeps his mouth closed and his eyes open: nothing reads as an expression.
    assert np.degrees(channels[kept, 0]).max() < 5.0, np.degrees(channels[kept, 0])
    assert channels[kept, 1:].max() < 0.3, channels[kept, 1:]


def test_left_and_right_are_the_subjects_own(face_run) -> None:
    """The eye read as the subject's left lies at the body model's left eye."""
    face, pixels = face_run.track.face, face_run.track.pixels
    found = _found(face_run)
    (up_l, _, in_l, out_l), (up_r, _, in_r, out_r) = face_mod._EYES
    left_eye = face[found][:, [in_l, out_l], :2].mean(axis=1)
    right_eye = face[found][:, [in_r, out_r], :2].mean(axis=1)
    to_left = np.linalg.norm(left_eye - pixels[found, MP["left_eye"]], axis=-1)
    to_right = np.linalg.norm(left_eye - pixels[found, MP["right_eye"]], axis=-1)
    assert (to_left < to_right).mean() > 0.9
    assert (np.linalg.norm(right_eye - pixels[found, MP["right_eye"]], axis=-1) < to_right).mean() > 0.9


def test_an_opened_jaw_and_a_shut_eye_read_as_such_whatever_the_head_does(face_run) -> None:
    """On the real meshes: the lower lip turned about the jaw's hinge reads as that angle, an
    upper lid put on the lower one as a shut eye (on its own side only), and turning or scaling
    the whole face changes nothing."""
    meshes = face_run.track.face[_found(face_run)].astype(np.float64)
    before = face_mod.jaw_angle(meshes)
    opened = meshes.copy()
    for m in opened:
        hinge = (m[face_mod._EAR_L] + m[face_mod._EAR_R]) / 2
        axis = m[face_mod._EAR_L] - m[face_mod._EAR_R]
        turn = Rotation.from_rotvec(0.35 * axis / np.linalg.norm(axis))
        m[face_mod._LOWER_LIP] = hinge + turn.apply(m[face_mod._LOWER_LIP] - hinge)
    # the lips' own gap adds to or takes from the turn by at most its rest angle (under 2 deg)
    np.testing.assert_allclose(face_mod.jaw_angle(opened), 0.35, atol=before.max() + 1e-9)
    shut = meshes.copy()
    upper, lower = face_mod._EYES[1][:2]
    shut[:, upper] = shut[:, lower]
    channels = face_mod.expressions(np.concatenate([meshes, shut]), 30.0)
    half = len(meshes)
    assert (channels[half:, 2] == 1.0).all() and (channels[:half, 2] < 0.3).all()
    np.testing.assert_allclose(channels[half:, 1], channels[:half, 1])
    turn = Rotation.from_euler("yx", [40, 20], degrees=True)
    turned = turn.apply(meshes.reshape(-1, 3)).reshape(meshes.shape)
    np.testing.assert_allclose(face_mod.jaw_angle(2.5 * turned), before, atol=1e-9)
    np.testing.assert_allclose(face_mod.eye_ratios(2.5 * turned), face_mod.eye_ratios(meshes), rtol=1e-9)


def test_no_face_no_channels() -> None:
    T = 40
    assert face_mod.expressions(None, 30.0) is None
    assert face_mod.expressions(np.full((T, 468, 3), np.nan), 30.0) is None
    lone = np.full((T, 468, 3), np.nan)
    lone[[5, 6, 20]] = 1.0  # runs of 2 and 1 frames: dropped
    assert face_mod.expressions(lone, 30.0) is None
