"""SMPL-24 from MediaPipe in SMPL's joint convention, and the NLF pickle SCAIL-Pose reads: its
structure, shapes, units (mm) and a round trip, with and without torch tensors."""

from __future__ import annotations

import importlib.util
import pickle
import threading

import numpy as np
import pytest

from engine.camera import Intrinsics, project
from engine.errors import Cancelled
from engine.joint_sets import MP, SMPL_24
from engine.nlf_export import person_boxes, read_nlf_pkl, write_nlf
from engine.smpl24 import SMPL, mediapipe_to_smpl24

K = Intrinsics.from_settings(1080, 1920, 55.0)


def mediapipe_pose(frames: int = 4, seed: int = 0) -> np.ndarray:
    """An upright MediaPipe-33 body 3 m in front of the camera (metres, y down), jittered."""
    rng = np.random.default_rng(seed)
    base = {
        "nose": (0, -0.70, -0.08), "left_eye": (0.03, -0.73, -0.06), "right_eye": (-0.03, -0.73, -0.06),
        "left_ear": (0.07, -0.71, 0.0), "right_ear": (-0.07, -0.71, 0.0),
        "left_shoulder": (0.19, -0.50, 0), "right_shoulder": (-0.19, -0.50, 0),
        "left_elbow": (0.25, -0.22, 0), "right_elbow": (-0.25, -0.22, 0),
        "left_wrist": (0.27, 0.02, -0.02), "right_wrist": (-0.27, 0.02, -0.02),
        "left_index": (0.28, 0.10, -0.03), "right_index": (-0.28, 0.10, -0.03),
        "left_pinky": (0.30, 0.08, -0.01), "right_pinky": (-0.30, 0.08, -0.01),
        "left_thumb": (0.25, 0.06, -0.05), "right_thumb": (-0.25, 0.06, -0.05),
        "left_hip": (0.11, 0.05, 0), "right_hip": (-0.11, 0.05, 0),
        "left_knee": (0.12, 0.47, -0.02), "right_knee": (-0.12, 0.47, -0.02),
        "left_ankle": (0.12, 0.88, 0.02), "right_ankle": (-0.12, 0.88, 0.02),
        "left_heel": (0.12, 0.93, 0.06), "right_heel": (-0.12, 0.93, 0.06),
        "left_foot_index": (0.14, 0.95, -0.12), "right_foot_index": (-0.14, 0.95, -0.12),
    }
    p = np.zeros((33, 3))
    for name, xyz in base.items():
        p[MP[name]] = xyz
    for name in ("left_eye_inner", "left_eye_outer", "right_eye_inner", "right_eye_outer",
                 "mouth_left", "mouth_right"):
        p[MP[name]] = p[MP["nose"]]
    p[:, 2] += 3.0
    return p + rng.normal(0, 0.005, (frames, 33, 3))


def test_smpl24_follows_smpl_joint_conventions():
    p = mediapipe_pose()
    s = mediapipe_to_smpl24(p)
    assert s.shape == (4, 24, 3) and np.isfinite(s).all()
    g = lambda n: p[:, MP[n]]  # noqa: E731
    hip_mid = 0.5 * (g("left_hip") + g("right_hip"))
    thorax = 0.5 * (g("left_shoulder") + g("right_shoulder"))
    ears = 0.5 * (g("left_ear") + g("right_ear"))
    for name in ("left_knee", "right_ankle", "left_shoulder", "right_elbow", "left_wrist"):
        np.testing.assert_array_equal(s[:, SMPL[name]], g(name))
    # SMPL's pelvis joint sits above the hip joints, which are closer together than MediaPipe's.
    assert (s[:, SMPL["pelvis"], 1] < hip_mid[:, 1] - 0.05).all()
    smpl_hips = np.linalg.norm(s[:, SMPL["left_hip"]] - s[:, SMPL["right_hip"]], axis=-1)
    mp_hips = np.linalg.norm(g("left_hip") - g("right_hip"), axis=-1)
    assert (smpl_hips < 0.6 * mp_hips).all() and (smpl_hips > 0.4 * mp_hips).all()
    # The spine climbs in order from pelvis to neck; the head lies between the neck and the ears.
    heights = s[:, [SMPL[n] for n in ("pelvis", "spine1", "spine2", "spine3", "neck")], 1]
    assert (np.diff(heights, axis=1) < 0).all()  # y points down
    assert (s[:, SMPL["neck"], 1] < thorax[:, 1]).all()
    head_y = s[:, SMPL["head"], 1]
    assert (head_y < s[:, SMPL["neck"], 1]).all() and (head_y > ears[:, 1]).all()
    # The foot joint is at the ball of the foot: between ankle and toe tip, nearer the toes.
    foot = s[:, SMPL["left_foot"]]
    ankle, toe = g("left_ankle"), g("left_foot_index")
    frac = np.linalg.norm(foot - ankle, axis=-1) / np.linalg.norm(toe - ankle, axis=-1)
    assert ((frac > 0.6) & (frac < 0.95)).all()
    # NaN stays local: an unknown knee loses only the knee.
    p[1, MP["left_knee"]] = np.nan
    s2 = mediapipe_to_smpl24(p)
    assert np.isnan(s2[1, SMPL["left_knee"]]).all()
    assert np.isfinite(np.delete(s2[1], SMPL["left_knee"], axis=0)).all()


@pytest.mark.parametrize("tensors", [None, False])
def test_nlf_pickle_structure_units_and_round_trip(tmp_path, tensors):
    p = mediapipe_pose(5)
    p[3] = np.nan  # nobody in frame 3
    joints_mm = mediapipe_to_smpl24(p) * 1000.0
    joints_mm[1, SMPL["left_hand"]] = np.nan  # one unknown joint in frame 1
    boxes = person_boxes(p, K)
    kind = write_nlf(tmp_path / "x_nlf.pkl", tmp_path / "x_nlf.npz", joints_mm[:, None], boxes[:, None], K,
                     fps=30.0, first_frame=7, tensors=tensors)
    with open(tmp_path / "x_nlf.pkl", "rb") as f:
        frames = pickle.load(f)
    assert isinstance(frames, list) and len(frames) == 5
    for t, fr in enumerate(frames):
        assert set(fr) == {"video_height", "video_width", "bboxes", "nlfpose"}
        assert (fr["video_height"], fr["video_width"]) == (1920, 1080)
        if t == 3:
            assert fr["bboxes"] == [] and fr["nlfpose"] == []
            continue
        assert len(fr["bboxes"]) == len(fr["nlfpose"]) == 1
        pose = fr["nlfpose"][0]
        if kind == "torch":
            import torch

            assert isinstance(pose, torch.Tensor) and pose.dtype == torch.float32
            arr = pose.cpu().numpy()  # what SCAIL-Pose's renderer calls
        else:
            assert isinstance(pose, np.ndarray) and pose.dtype == np.float32
            arr = pose
        assert arr.shape == (1, 24, 3)
        # Millimetres in the camera frame: the pelvis is ~3 m away, 1000 × the metre markers.
        np.testing.assert_allclose(arr[0, SMPL["pelvis"]], joints_mm[t, SMPL["pelvis"]], rtol=1e-6)
        assert 2500 < arr[0, SMPL["pelvis"], 2] < 3500
        x1, y1, x2, y2 = fr["bboxes"][0]
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        ok = np.isfinite(joints_mm[t]).all(-1)  # (missing joints are zeros here)
        uv = project(arr[0, ok] / 1000.0, K) / (K.width, K.height)  # NLF's FOV-55 camera, this size
        assert ((uv >= (x1, y1)) & (uv <= (x2, y2))).all()
    assert (frames[1]["nlfpose"][0][0, SMPL["left_hand"]] == 0).all()  # SCAIL's "missing"
    # None: torch tensors where torch is installed, numpy arrays where it is not (Python 3.13 root)
    has_torch = importlib.util.find_spec("torch") is not None
    assert kind == ("numpy" if tensors is False or (tensors is None and not has_torch) else "torch")

    back, back_boxes, h, w = read_nlf_pkl(tmp_path / "x_nlf.pkl")
    assert back.shape == (5, 1, 24, 3) and (h, w) == (1920, 1080)
    np.testing.assert_allclose(back[:, 0], joints_mm, rtol=1e-6)  # NaN in the same places
    np.testing.assert_allclose(back_boxes[[0, 1, 2, 4], 0], boxes[[0, 1, 2, 4]], atol=1e-6)

    z = np.load(tmp_path / "x_nlf.npz")
    assert z["joints3d_nonparam"].shape == (5, 1, 24, 3) and str(z["units"]) == "mm"
    np.testing.assert_allclose(z["joints3d_nonparam"][:, 0], joints_mm, rtol=1e-6)
    assert list(z["joint_names"]) == list(SMPL_24)
    assert z["valid"].tolist() == [[True], [True], [True], [False], [True]]
    np.testing.assert_allclose(z["K"], K.K)
    assert int(z["first_frame"]) == 7 and float(z["fps"]) == 30.0


def test_run_scail_honours_cancel_and_reports_progress(tmp_path):
    from engine.scail import run_scail

    cancel = threading.Event()
    seen = []

    def progress(f, m):
        seen.append(f)
        cancel.set()  # the user presses Esc after the first report

    with pytest.raises(Cancelled):
        run_scail(mediapipe_pose(40), K, 30.0, "synthetic", tmp_path / "scail", progress=progress,
                  cancel=cancel, size=(128, 224))
    assert seen == [0.25]
    rec = run_scail(mediapipe_pose(12), K, 30.0, "synthetic", tmp_path / "scail2", size=(128, 224))
    assert rec["frames"] == rec["frames_with_body"] == 12 and rec["size"] == [128, 224]
    pngs = sorted((tmp_path / "scail2" / "rgba").iterdir())
    assert [q.name for q in pngs[:2]] == ["synthetic_scail_000000.png", "synthetic_scail_000001.png"]
    assert len(pngs) == 12
