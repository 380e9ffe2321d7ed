"""SCAIL's cylinder render on synthetic poses: joints land on their limbs, nearer limbs hide farther
ones, nothing but the body has alpha, the capsule radius is 21.5 mm, the camera keeps its aspect,
and the 2D overlay draws where its points are without touching alpha."""

from __future__ import annotations

import numpy as np
import pytest

from engine.camera import Intrinsics, project
from engine.capsule_render import (
    ALPHA,
    LIMB_JOINTS,
    LIMBS,
    RADIUS_MM,
    CylinderRenderer,
    depth_range,
    fit_camera,
)
from engine.scail_overlay import draw_overlay
from engine.smpl24 import SMPL

W, H = 512, 896
BODY_ALPHA = int(ALPHA * 255)


def camera(width: int = W, height: int = H) -> Intrinsics:
    return Intrinsics.from_settings(width, height, 55.0)


def standing_pose(z: float = 3000.0) -> np.ndarray:
    """SMPL-24 joints (mm, camera frame, y down) of a person facing the camera, arms out and down."""
    p = {
        "pelvis": (0, -100, 0), "left_hip": (60, 0, 0), "right_hip": (-60, 0, 0),
        "spine1": (0, -200, 0), "spine2": (0, -330, 0), "spine3": (0, -390, 0), "neck": (0, -600, 0),
        "head": (0, -700, -30), "left_collar": (80, -510, 0), "right_collar": (-80, -510, 0),
        "left_shoulder": (190, -560, 0), "right_shoulder": (-190, -560, 0),
        "left_elbow": (330, -330, 0), "right_elbow": (-330, -330, 0),
        "left_wrist": (420, -100, 0), "right_wrist": (-420, -100, 0),
        "left_hand": (440, -20, 0), "right_hand": (-440, -20, 0),
        "left_knee": (90, 420, 0), "right_knee": (-90, 420, 0),
        "left_ankle": (100, 820, 0), "right_ankle": (-100, 820, 0),
        "left_foot": (110, 880, -120), "right_foot": (-110, 880, -120),
    }
    j = np.zeros((24, 3))
    for name, xyz in p.items():
        j[SMPL[name]] = xyz
    j[:, 2] += z
    return j


def segment_distance(px: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of pixel positions (…, 2) to the 2D segment a–b."""
    ab = b - a
    t = np.clip(((px - a) @ ab) / max(ab @ ab, 1e-9), 0, 1)
    return np.linalg.norm(px - (a + t[..., None] * ab), axis=-1)


@pytest.fixture(scope="module")
def rendered():
    joints = standing_pose()
    renderer = CylinderRenderer(camera(), depth_range(joints))
    return joints, renderer, renderer.render(joints)


def test_image_is_rgba_of_the_requested_size(rendered):
    _, _, img = rendered
    assert img.shape == (H, W, 4) and img.dtype == np.uint8
    assert set(np.unique(img[..., 3])) == {0, BODY_ALPHA}


def test_projected_joint_centres_fall_on_the_cylinders(rendered):
    joints, renderer, img = rendered
    for name in ("neck", "head", "left_shoulder", "right_elbow", "left_wrist", "right_hip", "left_knee",
                 "right_ankle"):
        u, v = np.round(project(joints[SMPL[name]], renderer.camera)).astype(int)
        assert img[v, u, 3] == BODY_ALPHA, name
    for (a, b), (na, nb, _) in zip(LIMB_JOINTS, LIMBS):
        u, v = np.round(project(0.5 * (joints[a] + joints[b]), renderer.camera)).astype(int)
        assert img[v, u, 3] == BODY_ALPHA, f"{na}→{nb}"
        # And it is that limb's surface: the limb rendered alone gives the same pixel.
        alone = renderer.render(only(joints, (na, nb)))
        np.testing.assert_array_equal(img[v, u], alone[v, u], err_msg=f"{na}→{nb}")


def test_alpha_is_zero_off_the_body(rendered):
    joints, renderer, img = rendered
    ys, xs = np.mgrid[0:H, 0:W]
    px = np.stack([xs, ys], axis=-1).astype(float)
    near = np.zeros((H, W), bool)
    for a, b in LIMB_JOINTS:
        pa, pb = project(joints[a], renderer.camera), project(joints[b], renderer.camera)
        r_px = renderer.camera.fx * RADIUS_MM / min(joints[a, 2], joints[b, 2])
        near |= segment_distance(px, pa, pb) <= r_px + 1.5
    assert (img[..., 3][~near] == 0).all()
    assert (img[..., :3][~near] == 0).all()
    assert (img[..., 3][near] > 0).mean() > 0.8  # and the body does fill its outline


def test_radius_is_21_5_mm(rendered):
    joints, renderer, img = rendered
    # The right shin hangs almost vertically: measure the render's width across its middle.
    mid = 0.5 * (joints[SMPL["right_knee"]] + joints[SMPL["right_ankle"]])
    u, v = np.round(project(mid, renderer.camera)).astype(int)
    row = img[v, :, 3] > 0
    left = u - np.argmin(row[u::-1])
    right = u + np.argmin(row[u:])
    expected = 2 * renderer.camera.fx * RADIUS_MM / mid[2]
    assert abs((right - left) - expected) <= 2.5, (right - left, expected)


def only(joints: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    out = np.full_like(joints, np.nan)
    for n in names:
        out[SMPL[n]] = joints[SMPL[n]]
    return out


@pytest.mark.parametrize("right_in_front", [True, False])
def test_a_nearer_limb_occludes_a_farther_one(right_in_front):
    # Two forearms crossing in an X in front of the body, one 300 mm nearer than the other.
    j = np.full((24, 3), np.nan)
    near_z, far_z = 2700.0, 3000.0
    zr, zl = (near_z, far_z) if right_in_front else (far_z, near_z)
    j[SMPL["right_elbow"]] = (-200, -200, zr)
    j[SMPL["right_wrist"]] = (200, 200, zr)
    j[SMPL["left_elbow"]] = (200, -200, zl)
    j[SMPL["left_wrist"]] = (-200, 200, zl)
    renderer = CylinderRenderer(camera(), depth_range(j))
    both = renderer.render(j)
    right = renderer.render(only(j, ("right_elbow", "right_wrist")))
    left = renderer.render(only(j, ("left_elbow", "left_wrist")))
    u, v = np.round(project(np.array([0.0, 0.0, near_z]), renderer.camera)).astype(int)
    front, back = (right, left) if right_in_front else (left, right)
    assert both[v, u, 3] == front[v, u, 3] == back[v, u, 3] == BODY_ALPHA
    np.testing.assert_array_equal(both[v, u], front[v, u])
    assert not np.array_equal(both[v, u], back[v, u])
    # Where only the farther limb is, it still shows.
    far_end = j[SMPL["left_wrist"] if right_in_front else SMPL["right_wrist"]]
    u2, v2 = np.round(project(far_end, renderer.camera)).astype(int)
    np.testing.assert_array_equal(both[v2, u2], back[v2, u2])


def test_farther_is_darker_and_missing_joints_drop_their_limbs():
    j = standing_pose(3000.0)
    far = standing_pose(6000.0)
    rng = depth_range(np.stack([j, far]))
    renderer = CylinderRenderer(camera(), rng)
    a, b = renderer.render(j), renderer.render(far)
    assert b[..., :3][b[..., 3] > 0].mean() < a[..., :3][a[..., 3] > 0].mean()
    none = renderer.render(np.full((24, 3), np.nan))
    assert not none.any()
    j2 = j.copy()
    j2[SMPL["left_knee"]] = np.nan  # both left-leg limbs go, the rest stays
    img = renderer.render(j2)
    shin = 0.5 * (j[SMPL["left_knee"]] + j[SMPL["left_ankle"]])
    u, v = np.round(project(shin, renderer.camera)).astype(int)
    assert img[v, u, 3] == 0 and a[v, u, 3] == BODY_ALPHA
    assert img[..., 3].any()


def test_camera_fit_keeps_the_aspect_and_centre_crops():
    k = camera(1080, 1920)
    for size in ((512, 896), (896, 512), (512, 512)):
        cam, s, (ox, oy) = fit_camera(k, *size)
        assert cam.fx == cam.fy and (cam.width, cam.height) == size
        assert s * k.width >= size[0] - 1e-6 and s * k.height >= size[1] - 1e-6  # covers the frame
        pts = standing_pose()
        np.testing.assert_allclose(project(pts, cam), project(pts, k) * s - (ox, oy), atol=1e-6)


def test_overlay_draws_hands_face_and_cheek_but_leaves_alpha():
    img = np.zeros((H, W, 4), np.uint8)
    img[..., 3][400:500, 200:300] = BODY_ALPHA
    alpha = img[..., 3].copy()
    hand = np.stack([np.linspace(100, 140, 21), np.linspace(600, 650, 21)], axis=1)
    cheek = np.array([[256, 200], [246, 195], [266, 195], [236, 200], [276, 200]], float)
    face = np.stack([np.linspace(230, 280, 42), np.full(42, 220.0)], axis=1)
    face[0] = np.nan  # a missing point is skipped
    draw_overlay(img, cheek=cheek, hands=np.stack([hand, np.full((21, 2), np.nan)]), face=face)
    np.testing.assert_array_equal(img[..., 3], alpha)
    for p in (*hand[[0, 10, 20]], *cheek, face[5]):
        u, v = np.round(p).astype(int)
        assert img[v - 1:v + 2, u - 1:u + 2, :3].any(), p
    assert np.array_equal(img[220, 240, :3], (255, 255, 255)) or img[219:222, 239:242, :3].max() == 255
    assert not img[700:, :, :3].any() and not img[:150, :, :3].any()
