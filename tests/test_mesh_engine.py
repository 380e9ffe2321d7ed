"""--mesh on real video: Anny fitted to 16 frames of Pose2Sim's cam01 and written in SAM 3D Body's
format. The file reprojects as SAM 3D Body's does, the mesh keypoints sit on the engine's markers
(median ≤ 2 cm) and MediaPipe's landmarks (median ≤ 8 px), the fast keypoint path equals Anny's own
skinned mesh, the per-frame OBJ/PLY/GLB files hold the same vertices, the importer's reader takes
both our file and SAM 3D Body's per-person dicts, and the stage cancels between chunks."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import REPO_ROOT, cli_env, run_cli
from mesh_support import FORMATS, N_FRAMES, mesh_run

from engine.camera import Intrinsics
from engine.coords import flip_yz
from engine.errors import Cancelled
from engine.joint_sets import MHR, MHR_70, MP, MP_MHR70_PAIRS
from engine.sam3d_format import SAM3D_KEYS, load_people

pytestmark = pytest.mark.engine_run


@pytest.fixture(scope="module")
def meshed(cam01, tmp_path_factory):
    result, progress = mesh_run(cam01, tmp_path_factory)
    with np.load(result.out_dir / "mesh" / "cam01_mesh.npz") as d:
        arrays = {k: d[k] for k in d.files}
    return result, progress, arrays


def test_mesh_npz_has_sam3d_body_arrays_per_frame(meshed) -> None:
    result, progress, d = meshed
    assert set(SAM3D_KEYS) <= set(d)
    T, V = N_FRAMES, d["anny_rest_vertices"].shape[0]
    assert d["pred_vertices"].shape == (T, V, 3) and d["pred_vertices"].dtype == np.float32
    assert d["pred_keypoints_3d"].shape == (T, 70, 3) and d["pred_keypoints_2d"].shape == (T, 70, 2)
    assert d["pred_cam_t"].shape == (T, 3) and d["focal_length"].shape == (T,)
    assert d["global_rot"].shape == (T, 3) and d["body_pose_params"].shape == (T, 104 * 3)
    assert d["faces"].shape[1] == 3 and d["faces"].min() == 0 and d["faces"].max() == V - 1
    assert list(d["keypoint_names"]) == list(MHR_70) and d["valid"].all()
    np.testing.assert_array_equal(d["frame_index"], np.arange(N_FRAMES))
    assert np.isfinite(d["pred_vertices"]).all() and np.isfinite(d["pred_keypoints_3d"]).all()
    # Root-relative: the body sits around the origin; pred_cam_t puts it metres in front of the camera.
    assert np.abs(d["pred_vertices"].mean(1)).max() < 0.5 and (d["pred_cam_t"][:, 2] > 1.0).all()
    rec = json.loads((result.out_dir / "run.json").read_text())["mesh"]
    assert rec["frames_fitted"] == N_FRAMES and result.files["mesh_dir"] == result.out_dir / "mesh"
    messages = [m for _, m in progress]
    assert f"mesh fit {N_FRAMES}/{N_FRAMES} frames" in messages
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_keypoints_reproject_like_sam3d_body(meshed) -> None:
    """SAM 3D Body's projection: (pred_keypoints_3d + pred_cam_t), focal_length, principal point at
    the image centre."""
    _, _, d = meshed
    w, h = d["image_size"]
    p = d["pred_keypoints_3d"] + d["pred_cam_t"][:, None]
    f = d["focal_length"][:, None]
    uv = np.stack([f * p[..., 0] / p[..., 2] + w / 2, f * p[..., 1] / p[..., 2] + h / 2], -1)
    np.testing.assert_allclose(uv, d["pred_keypoints_2d"], atol=0.01)
    # The camera convention: the head above the feet means smaller image y (Y down), feet nearer the
    # bottom; an upright body facing the camera has global_rot ≈ 0 about the vertical.
    assert (d["pred_keypoints_2d"][:, MHR["nose"], 1] < d["pred_keypoints_2d"][:, MHR["left_ankle"], 1]).all()


def test_mesh_keypoints_on_markers_and_landmarks(meshed) -> None:
    """Median ≤ 2 cm to the engine's 3D markers and ≤ 8 px to MediaPipe's 2D landmarks."""
    result, _, d = meshed
    with np.load(result.files["markers_npz"]) as m:
        markers, pixels, vis = m["markers_33_camera"], m["pixels"], m["visibility"]
    mp, mhr = MP_MHR70_PAIRS[:, 0], MP_MHR70_PAIRS[:, 1]
    kp = d["pred_keypoints_3d"][:, mhr] + d["pred_cam_t"][:, None]
    err3 = np.nanmedian(np.linalg.norm(kp - markers[:, mp], axis=-1))
    err2 = np.linalg.norm(d["pred_keypoints_2d"][:, mhr] - pixels[:, mp], axis=-1)
    err2 = np.nanmedian(np.where(vis[:, mp] >= 0.3, err2, np.nan))
    print(f"\nmesh keypoints: {100 * err3:.2f} cm to the markers, {err2:.2f} px to the landmarks")
    assert err3 <= 0.02 and err2 <= 8.0
    rec = json.loads((result.out_dir / "run.json").read_text())["mesh"]
    assert rec["keypoint_error_median_m"] == pytest.approx(err3, abs=1e-3)
    assert rec["reprojection_median_px"] == pytest.approx(err2, abs=0.05)
    # The body is as tall as --height, feet on the ground below the hips.
    rest = d["anny_rest_vertices"]
    assert np.ptp(rest[:, 2]) == pytest.approx(1.72, abs=0.01)
    knee_gap = np.linalg.norm(kp[:, list(MP_MHR70_PAIRS[:, 0]).index(MP["left_knee"])]
                              - markers[:, MP["left_knee"]], axis=-1)
    assert np.median(knee_gap) < 0.02


def test_bone_transforms_skin_the_rest_mesh_into_pred_vertices(meshed) -> None:
    """Anny's rig in the file (what Blender rebuilds) gives the fitted vertices by linear blending."""
    _, _, d = meshed
    T = d["anny_bone_transforms"][::5].astype(np.float64)  # (t, B, 3, 4)
    v = np.concatenate([d["anny_rest_vertices"], np.ones((len(d["anny_rest_vertices"]), 1))], 1)
    idx, w = d["anny_skin_indices"], d["anny_skin_weights"]
    skinned = np.einsum("vk,tvkij,vj->tvi", w, T[:, idx], v)
    want = d["pred_vertices"][::5] + d["pred_cam_t"][::5, None]
    np.testing.assert_allclose(skinned, want, atol=1e-4)


def test_fast_keypoints_equal_annys_skinned_mesh() -> None:
    """The fit's keypoints (bone poses times a fixed basis) equal the regressor on Anny's own mesh
    for random poses and a non-default shape."""
    torch = pytest.importorskip("torch")
    from engine import anny_fit as af

    body = af.load_body("cpu")
    phen = body.default_phenotype(40.0, "female")
    phen[0, body.phenotype_labels.index("weight")] = 0.7
    local = torch.zeros(1, len(body.local_labels))
    local[0, 0] = 0.5
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        rest = body.rest_state(phen, local)
        rv = 0.4 * torch.randn(3, len(af.FITTED_BONES), 3, generator=gen)
        R = torch.eye(3).expand(3, 3, 3)
        fast = af._keypoints_cam(af._Chain(body, rest), body.keypoint_basis(rest), rv, R, torch.zeros(3, 3))
        full = af._meshes(body, rest, phen, local, rv.numpy(), np.tile(np.eye(3), (3, 1, 1)),
                          np.zeros((3, 3)), np.arange(3), 3, threading.Event())
    np.testing.assert_allclose(fast[:, :70].numpy(), full["keypoints"], atol=2e-5)


def test_frame_files_hold_the_same_mesh_y_up(meshed) -> None:
    trimesh = pytest.importorskip("trimesh")
    result, _, d = meshed
    folder = result.out_dir / "mesh" / "frames"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"cam01_{i:06d}.{fmt}" for i in range(N_FRAMES) for fmt in FORMATS)
    want = flip_yz(d["pred_vertices"][3] + d["pred_cam_t"][3])
    for fmt in ("ply", "obj"):
        mesh = trimesh.load(folder / f"cam01_000003.{fmt}", process=False, force="mesh")
        assert len(mesh.vertices) == len(want)
        np.testing.assert_allclose(np.asarray(mesh.vertices), want, atol=1e-4)
    glb = trimesh.load(folder / "cam01_000003.glb", force="mesh", process=False)
    assert len(glb.faces) == len(d["faces"])


def test_reader_takes_our_file_and_sam3d_body_dicts(meshed, tmp_path) -> None:
    result, _, d = meshed
    (track,) = load_people(result.out_dir / "mesh" / "cam01_mesh.npz")
    np.testing.assert_allclose(track.vertices, d["pred_vertices"] + d["pred_cam_t"][:, None], atol=1e-6)
    assert track.faces.shape == d["faces"].shape and track.image_size == tuple(d["image_size"])
    # SAM 3D Body's shape: a list per image of per-person dicts; two people who swap places in the
    # list between frames stay on their own tracks.
    verts = d["pred_vertices"][:3]

    def person(i: int, x: float) -> dict:
        return {"pred_vertices": verts[i], "pred_cam_t": np.array([x, 0.0, 4.0], np.float32),
                "focal_length": np.float32(1000.0), "bbox": np.zeros(4)}

    frames = [[person(0, -1.0), person(0, 1.0)], [person(1, 1.05), person(1, -0.95)],
              [person(2, -0.9)]]
    with open(tmp_path / "sam.pkl", "wb") as f:
        pickle.dump({"faces": d["faces"], "outputs": frames}, f)
    a, b = load_people(tmp_path / "sam.pkl")
    assert a.vertices.shape == (3, len(verts[0]), 3) and a.focal_length == 1000.0
    assert a.faces is not None and b.faces is not None
    np.testing.assert_allclose(a.vertices[:, 0, 0] - verts[:, 0, 0], [-1.0, -0.95, -0.9], atol=1e-6)
    np.testing.assert_allclose(b.vertices[:2, 0, 0] - verts[:2, 0, 0], [1.0, 1.05], atol=1e-6)
    assert np.isnan(b.vertices[2]).all()  # b is absent from the last image
    (single,) = load_people([person(0, 0.0)])  # one image, no faces
    assert single.vertices.shape == (1, len(verts[0]), 3) and single.faces is None


def test_fit_stops_on_cancel(meshed) -> None:
    result, _, _ = meshed
    from engine.anny_fit import FitOptions, fit_body

    with np.load(result.files["markers_npz"]) as m:
        markers, pixels, vis, K = m["markers_33_camera"], m["pixels"], m["visibility"], m["K"]
    k = Intrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], int(2 * K[0, 2]), int(2 * K[1, 2]))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        fit_body(markers, pixels, vis, k, FitOptions(height_m=1.72), cancel=cancel)


def test_chunks_warm_start_and_gaps_stay_empty(meshed) -> None:
    """Chunks of 5 frames with two frames of no person in the middle: those frames get no mesh (NaN),
    the others fit as well as in one chunk, and the body does not jump across chunk borders."""
    result, _, d = meshed
    from engine.anny_fit import FitOptions, fit_body

    with np.load(result.files["markers_npz"]) as m:
        markers, pixels, vis, K = m["markers_33_camera"].copy(), m["pixels"], m["visibility"], m["K"]
    markers[7:9] = np.nan
    k = Intrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], int(2 * K[0, 2]), int(2 * K[1, 2]))
    fit = fit_body(markers, pixels, vis, k, FitOptions(height_m=1.72, mass_kg=70.0, chunk=5))
    assert list(fit.valid) == [i not in (7, 8) for i in range(N_FRAMES)]
    assert np.isnan(fit.vertices[7:9]).all() and np.isfinite(fit.vertices[fit.valid]).all()
    mp, mhr = MP_MHR70_PAIRS[:, 0], MP_MHR70_PAIRS[:, 1]
    err = np.linalg.norm(fit.keypoints[:, mhr] - markers[:, mp], axis=-1)
    assert np.nanmedian(err) <= 0.02
    # Frame-to-frame vertex motion at the chunk borders (4→5, 9→10) is like elsewhere.
    step = np.linalg.norm(np.diff(fit.vertices, axis=0), axis=-1).mean(-1)  # (T-1,) mean per step
    inside = np.nanmedian(step)
    assert step[4] < 3 * inside + 0.005 and step[9] < 3 * inside + 0.005


def test_bad_mesh_flags_fail_before_any_work(cam01, tmp_path) -> None:
    out = tmp_path / "out"
    res = run_cli("run", cam01, "--height", "1.72", "--out", out, "--mesh-format", "fbx")
    assert res.returncode != 0 and res.stderr.strip().startswith("error: --mesh-format")
    assert len(res.stderr.strip().splitlines()) == 1 and not out.exists()
    res = run_cli("run", cam01, "--height", "1.72", "--out", out, "--mesh", "--sex", "other")
    assert res.returncode == 2 and not out.exists()


def test_engine_imports_without_torch() -> None:
    """The mesh modules import nothing heavy: a run without --mesh never loads torch."""
    code = ("import sys, engine.pipeline, engine.mesh_stage, engine.anny_fit, engine.sam3d_format; "
            "bad = [m for m in ('torch', 'anny', 'roma', 'trimesh') if m in sys.modules]; "
            "assert not bad, bad")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=cli_env(), capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
