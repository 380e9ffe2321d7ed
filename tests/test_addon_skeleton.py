"""The armature's bone maths (scene/skeleton.py) on synthetic bodies: no Blender needed."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from conftest import load_headless


def _skeleton():
    """scene.skeleton as Blender would import it: inside the add-on package (loaded by headless.py's
    loader, which needs no bpy)."""
    load_headless().load_package()
    return importlib.import_module("humanpose3d.scene.skeleton")


sk = _skeleton()


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def _random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.stack([_rot(rng.normal(size=3), rng.uniform(0, np.pi)) for _ in range(n)])


def test_quaternions_match_rotation_matrices() -> None:
    rng = np.random.default_rng(1)
    R = _random_rotations(200, rng)
    R[:4] = [np.eye(3), _rot(np.array([1.0, 0, 0]), np.pi), _rot(np.array([0, 1.0, 0]), np.pi),
             _rot(np.array([0, 0, 1.0]), np.pi)]  # the Shepperd branches' edge cases
    q = sk.matrix_to_quaternion(R)
    w, x, y, z = np.moveaxis(q, -1, 0)
    back = np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)
    np.testing.assert_allclose(back, R, atol=1e-9)
    assert np.isnan(sk.matrix_to_quaternion(np.full((3, 3), np.nan))).all()


def test_continuous_quaternions_never_flip_hemisphere() -> None:
    rng = np.random.default_rng(2)
    q = rng.normal(size=(50, 3, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    q[10, 1] = np.nan
    c = sk.continuous(q)
    dots = np.sum(c[1:] * c[:-1], axis=-1)
    assert (dots[np.isfinite(dots)] >= 0).all()
    np.testing.assert_allclose(np.abs(np.sum(c * q, -1))[np.isfinite(q).all(-1)], 1.0)


def _body(T: int, rng: np.random.Generator) -> np.ndarray:
    """A moving MediaPipe-33 body in Blender world space: a rest body turned and bent per frame."""
    m = np.zeros((33, 3))
    for s, sx in (("left", 1.0), ("right", -1.0)):
        i = sk._MP
        m[i[f"{s}_hip"]] = (0.1 * sx, 0, 0.9)
        m[i[f"{s}_knee"]] = (0.1 * sx, -0.02, 0.48)
        m[i[f"{s}_ankle"]] = (0.1 * sx, 0.0, 0.08)
        m[i[f"{s}_heel"]] = (0.1 * sx, 0.05, 0.03)
        m[i[f"{s}_foot_index"]] = (0.1 * sx, -0.14, 0.02)
        m[i[f"{s}_shoulder"]] = (0.18 * sx, 0, 1.42)
        m[i[f"{s}_elbow"]] = (0.2 * sx, -0.05, 1.15)
        m[i[f"{s}_wrist"]] = (0.22 * sx, -0.25, 1.05)
        m[i[f"{s}_index"]] = (0.22 * sx, -0.33, 1.03)
        m[i[f"{s}_pinky"]] = (0.25 * sx, -0.31, 1.03)
        m[i[f"{s}_ear"]] = (0.07 * sx, 0.02, 1.6)
    m[0] = (0, -0.1, 1.58)
    out = np.empty((T, 33, 3))
    for t in range(T):
        R = _rot(np.array([0, 0, 1.0]), 0.05 * t) @ _rot(np.array([1.0, 0, 0]), 0.02 * np.sin(t))
        out[t] = m @ R.T + np.array([0.01 * t, 3.0, 0.0])
        out[t] += rng.normal(scale=0.01, size=(33, 3))  # bones of varying length, like raw data
    return out


def test_solved_rotations_reproduce_bone_directions_and_twists() -> None:
    rng = np.random.default_rng(3)
    pts = sk.skeleton_points(_body(40, rng))
    world = sk.bone_frames(pts)
    # Orthonormal, right-handed frames with Y exactly along each bone.
    eye = np.einsum("tbji,tbjk->tbik", world, world)
    np.testing.assert_allclose(eye, np.broadcast_to(np.eye(3), eye.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(world), 1.0, atol=1e-9)
    for i, b in enumerate(sk.BONES):
        d = pts[b.tail] - pts[b.head]
        np.testing.assert_allclose(world[:, i, :, 1], d / np.linalg.norm(d, axis=-1, keepdims=True),
                                   atol=1e-9)
    # Pelvis X lies exactly on the hip axis (so the thighs, offset along it, land on the hips).
    hip = pts["left_hip"] - pts["right_hip"]
    np.testing.assert_allclose(world[:, 0, :, 0], hip / np.linalg.norm(hip, axis=-1, keepdims=True),
                               atol=1e-9)
    # Composing local rotations down the tree gives back each world rotation.
    rest = _random_rotations(len(sk.BONES), rng)
    local = sk.local_rotations(world, rest)
    pose = np.empty_like(world)
    for i, b in enumerate(sk.BONES):
        if b.parent is None:
            pose[:, i] = rest[i] @ local[:, i]
        else:
            p = sk.BONE_INDEX[b.parent]
            pose[:, i] = pose[:, p] @ rest[p].T @ rest[i] @ local[:, i]
    np.testing.assert_allclose(pose, world, atol=1e-9)


def test_twist_follows_anatomy_and_survives_a_straight_elbow() -> None:
    rng = np.random.default_rng(4)
    body = _body(20, rng)
    i = sk._MP
    # Straighten the left arm exactly on frames 5-9: no fold direction for the upper arm.
    for t in range(5, 10):
        sh, el = body[t, i["left_shoulder"]], body[t, i["left_elbow"]]
        body[t, i["left_wrist"]] = el + (el - sh) * 0.9
    world = sk.bone_frames(sk.skeleton_points(body))
    ua = sk.BONE_INDEX["upper_arm.L"]
    z = world[:, ua, :, 2]
    assert np.isfinite(z).all()
    step = np.degrees(np.arccos(np.clip(np.sum(z[1:] * z[:-1], -1), -1, 1)))
    assert step.max() < 60, step  # no 180° flip where the reference vanishes
    # Torso Z points where the body faces: -Y at frame 0 (it faces the camera at -Y).
    assert world[0, sk.BONE_INDEX["spine"], 1, 2] < -0.9


def test_rest_pose_keeps_median_lengths_and_faces_front() -> None:
    rng = np.random.default_rng(5)
    pts = sk.skeleton_points(_body(30, rng))
    rest, twist = sk.rest_pose(pts)
    for b in sk.BONES[1:]:
        want = np.median(np.linalg.norm(pts[b.tail] - pts[b.head], axis=-1))
        assert np.linalg.norm(rest[b.tail] - rest[b.head]) == pytest.approx(want, rel=1e-9), b.name
    np.testing.assert_allclose(rest["pelvis"], pts["pelvis"][0])
    assert rest["left_wrist"][0] > rest["left_elbow"][0] > rest["left_shoulder"][0]  # T-pose, +X left
    assert rest["right_wrist"][0] < rest["right_shoulder"][0]
    assert rest["left_toe"][1] < rest["left_ankle"][1]  # feet point to -Y, the front
    assert set(twist) == set(sk.BONE_NAMES)
