"""The pinhole camera: intrinsics from the user's settings, projection, recovering the root
translation from 2D landmarks, and the axis conventions at the edges (TRC, Blender)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import least_squares

from engine.camera import Intrinsics, project, reprojection_error, solve_root_translation
from engine.coords import CAMERA_TO_BLENDER, CAMERA_TO_OPENSIM, camera_to_blender, camera_to_opensim

# --- intrinsics ------------------------------------------------------------------------------


@pytest.mark.parametrize("width,height", [(1080, 1920), (1920, 1080), (1768, 994), (640, 640)])
@pytest.mark.parametrize("fov", [30.0, 55.0, 90.0, 120.0])
def test_intrinsics_from_fov(width, height, fov):
    k = Intrinsics.from_settings(width, height, fov)
    f = max(width, height) / (2 * math.tan(math.radians(fov) / 2))
    assert k.fx == pytest.approx(f, rel=1e-12) and k.fy == pytest.approx(f, rel=1e-12)
    assert (k.cx, k.cy) == (width / 2, height / 2)
    assert (k.width, k.height) == (width, height)
    # The field of view really spans the longer side: its edge projects at the edge of the image.
    half = math.tan(math.radians(fov) / 2)
    edge = project(np.array([half, 0.0, 1.0]) if width >= height else np.array([0.0, half, 1.0]), k)
    assert edge[0 if width >= height else 1] == pytest.approx(max(width, height), rel=1e-9)


def test_intrinsics_default_fov_is_55_degrees():
    assert Intrinsics.from_settings(1080, 1920) == Intrinsics.from_settings(1080, 1920, 55.0)
    assert Intrinsics.from_settings(1080, 1920, 90.0).fx == pytest.approx(960.0)


def test_focal_length_overrides_fov():
    k = Intrinsics.from_settings(1080, 1920, fov_deg=10.0, focal_px=1234.5)
    assert (k.fx, k.fy, k.cx, k.cy) == (1234.5, 1234.5, 540.0, 960.0)
    np.testing.assert_array_equal(k.K, [[1234.5, 0, 540.0], [0, 1234.5, 960.0], [0, 0, 1]])
    assert k.to_json() == {"fx": 1234.5, "fy": 1234.5, "cx": 540.0, "cy": 960.0, "width": 1080,
                           "height": 1920}


def test_project_matches_the_matrix_form():
    rng = np.random.default_rng(0)
    k = Intrinsics.from_settings(1080, 1920)
    pts = rng.uniform(-1, 1, (5, 7, 3)) + [0, 0, 4]
    homogeneous = pts @ k.K.T
    np.testing.assert_allclose(project(pts, k), homogeneous[..., :2] / homogeneous[..., 2:], rtol=1e-12)
    np.testing.assert_allclose(reprojection_error(pts, project(pts, k), k), 0, atol=1e-9)


# --- solve_root_translation ------------------------------------------------------------------


def synthetic_scene(frames: int = 6, joints: int = 33, seed: int = 1):
    rng = np.random.default_rng(seed)
    k = Intrinsics.from_settings(1080, 1920, 55.0)
    skeleton = rng.uniform(-0.8, 0.8, (frames, joints, 3)) * [1, 1, 0.3]  # root-relative, metres
    t_true = np.c_[rng.uniform(-0.5, 0.5, frames), rng.uniform(-0.3, 0.3, frames),
                   rng.uniform(2.5, 6.0, frames)]
    pixels = project(skeleton + t_true[:, None], k)
    return k, skeleton, pixels, t_true, rng


def test_root_translation_is_recovered_exactly():
    k, skeleton, pixels, t_true, _ = synthetic_scene()
    t = solve_root_translation(skeleton, pixels, np.ones(pixels.shape[:2]), k)
    np.testing.assert_allclose(t, t_true, atol=1e-6)


def test_root_translation_ignores_zero_weight_and_unknown_joints():
    k, skeleton, pixels, t_true, rng = synthetic_scene()
    weights = rng.uniform(0.3, 1.0, pixels.shape[:2])
    pixels = pixels.copy()
    skeleton = skeleton.copy()
    weights[:, :10] = 0.0
    pixels[:, :10] += rng.uniform(200, 800, (len(pixels), 10, 2))  # garbage where weight is 0
    pixels[:, 10:13] = np.nan  # unknown 2D
    skeleton[:, 13:15] = np.nan  # unknown 3D
    t = solve_root_translation(skeleton, pixels, weights, k)
    np.testing.assert_allclose(t, t_true, atol=1e-6)


def test_root_translation_needs_three_usable_joints():
    k, skeleton, pixels, t_true, _ = synthetic_scene()
    weights = np.ones(pixels.shape[:2])
    weights[1, 2:] = 0.0  # frame 1: only two joints usable
    weights[3] = 0.0  # frame 3: none
    t = solve_root_translation(skeleton, pixels, weights, k)
    assert np.isnan(t[[1, 3]]).all()
    np.testing.assert_allclose(t[[0, 2, 4, 5]], t_true[[0, 2, 4, 5]], atol=1e-6)
    assert np.isnan(solve_root_translation(skeleton, pixels, np.zeros_like(weights), k)).all()


def test_root_translation_minimises_pixel_error_under_noise():
    """With noisy 2D landmarks the re-weighted linear solve should land on the optimum of the
    pixel reprojection error (what a nonlinear least-squares solver finds)."""
    k, skeleton, pixels, t_true, rng = synthetic_scene(seed=5)
    noisy = pixels + rng.normal(0, 3.0, pixels.shape)
    t = solve_root_translation(skeleton, noisy, np.ones(pixels.shape[:2]), k)
    for f in range(len(t)):
        best = least_squares(lambda x, f=f: (project(skeleton[f] + x, k) - noisy[f]).ravel(), t_true[f])
        rms_best = math.sqrt(np.mean(best.fun**2))
        rms = math.sqrt(np.mean((project(skeleton[f] + t[f], k) - noisy[f]) ** 2))
        assert rms <= 1.01 * rms_best, f"frame {f}: {rms:.4f} px vs optimum {rms_best:.4f} px"


# --- axis conventions ------------------------------------------------------------------------


def test_axis_changes_are_rotations():
    for m in (CAMERA_TO_OPENSIM, CAMERA_TO_BLENDER):
        np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-15)
        assert np.linalg.det(m) == pytest.approx(1.0)  # right-handed stays right-handed


def test_up_in_the_image_is_up_in_opensim_and_blender():
    head = np.array([0.1, -0.8, 4.0])  # camera frame: y points down, so the head has smaller y
    ankle = np.array([0.1, 0.9, 4.0])
    assert camera_to_opensim(head)[1] > camera_to_opensim(ankle)[1]
    assert camera_to_blender(head)[2] > camera_to_blender(ankle)[2]
    # In front of the camera: OpenSim +Z points at the camera, Blender +Y into the scene.
    assert camera_to_opensim(head)[2] < 0 and camera_to_blender(head)[1] > 0
    np.testing.assert_allclose(camera_to_opensim(np.array([[1.0, 2.0, 3.0]])), [[1.0, -2.0, -3.0]])
