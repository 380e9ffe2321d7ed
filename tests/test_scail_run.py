"""`--scail` on real video: the engine run on frames 0:20 of Pose2Sim's cam01 (with Holistic hands
and face) writes the NLF pickle, the MP4 and the RGBA PNGs into scail/, and they agree with the
video: NLF's FOV-55 camera puts the exported knees on MediaPipe's knees, and the render's alpha
covers them through the fitted render camera."""

from __future__ import annotations

import importlib.util
import json
import threading

import cv2
import numpy as np
import pytest
from conftest import HEIGHT_M

from engine.camera import Intrinsics, project
from engine.capsule_render import fit_camera
from engine.cli import build_parser, config_from_args
from engine.config import RunConfig
from engine.errors import EngineError
from engine.joint_sets import MP
from engine.nlf_export import read_nlf_pkl
from engine.pipeline import run
from engine.smpl24 import SMPL

pytestmark = pytest.mark.engine_run

N = 20


@pytest.fixture(scope="module")
def scail_run(cam01, tmp_path_factory):
    out = tmp_path_factory.mktemp("scail_run")
    cfg = RunConfig(video=cam01, height_m=HEIGHT_M, out_dir=out, frames=(0, N), holistic=True, scail=True)
    progress = []
    result = run(cfg, progress=lambda f, m: progress.append((f, m)), cancel=threading.Event())
    return result, progress


def test_scail_folder_holds_the_pickle_video_and_pngs(scail_run):
    result, progress = scail_run
    folder = result.out_dir / "scail"
    assert result.files["scail_dir"] == folder
    assert {p.name for p in folder.iterdir()} == {"cam01_nlf.pkl", "cam01_nlf.npz", "cam01_scail.mp4", "rgba"}
    pngs = sorted((folder / "rgba").iterdir())
    assert [p.name for p in pngs] == [f"cam01_scail_{i:06d}.png" for i in range(N)]
    img = cv2.imread(str(pngs[5]), cv2.IMREAD_UNCHANGED)
    assert img.shape == (896, 512, 4)  # SCAIL's portrait size for the portrait demo
    cap = cv2.VideoCapture(str(folder / "cam01_scail.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (512, 896)
    ok, frame = cap.read()
    cap.release()
    assert ok and frame[..., :3].max() > 100  # the body shows on black
    rec = json.loads((result.out_dir / "run.json").read_text())["scail"]
    assert rec["frames"] == rec["frames_with_body"] == N and rec["size"] == [512, 896]
    torch = importlib.util.find_spec("torch") is not None  # numpy arrays where torch is absent
    assert rec["hands"] and rec["nlf_pkl_arrays"] == ("torch" if torch else "numpy")
    assert any(m.startswith("SCAIL render") for _, m in progress)
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions)


def test_exported_joints_project_onto_the_video_and_the_render(scail_run):
    result, _ = scail_run
    joints, boxes, h, w = read_nlf_pkl(result.out_dir / "scail" / "cam01_nlf.pkl")
    assert joints.shape == (N, 1, 24, 3) and (h, w) == (1920, 1080)
    nlf_cam = Intrinsics.from_settings(w, h, 55.0)  # what SCAIL-Pose assumes for this video
    for side in ("left", "right"):
        knee = joints[:, 0, SMPL[f"{side}_knee"]] / 1000.0
        uv = project(knee, nlf_cam)
        mp_px = result.track.pixels[:, MP[f"{side}_knee"]]
        err = np.linalg.norm(uv - mp_px, axis=-1)
        assert np.nanmedian(err) < 25, f"{side} knee {np.nanmedian(err):.1f} px from MediaPipe's"
    render_cam, _, _ = fit_camera(nlf_cam, 512, 896)
    for i in (0, N - 1):
        img = cv2.imread(str(result.out_dir / "scail" / "rgba" / f"cam01_scail_{i:06d}.png"),
                         cv2.IMREAD_UNCHANGED)
        for name in ("left_knee", "right_knee", "neck", "left_elbow"):
            u, v = np.round(project(joints[i, 0, SMPL[name]], render_cam)).astype(int)
            assert img[v, u, 3] > 0, (i, name)
        assert (img[..., 3] == 0).mean() > 0.9  # alpha is the body mask, not the frame


def test_scail_flags():
    p = build_parser()
    video = "clip.mp4"
    cfg = config_from_args(p.parse_args(["run", video, "--height", "1.7", "--scail-size", "896x512"]))
    assert cfg.scail and cfg.scail_size == (896, 512)
    cfg = config_from_args(p.parse_args(["run", video, "--height", "1.7", "--scail"]))
    assert cfg.scail and cfg.scail_size is None
    assert not config_from_args(p.parse_args(["run", video, "--height", "1.7"])).scail
    with pytest.raises(EngineError, match="--scail-size"):
        config_from_args(p.parse_args(["run", video, "--height", "1.7", "--scail-size", "511x896"]))
    with pytest.raises(SystemExit):
        p.parse_args(["run", video, "--height", "1.7", "--scail-size", "big"])
