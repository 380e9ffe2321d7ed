"""The calibrated multi-camera mode on Pose2Sim's 4-camera demo: its Qualisys calibration turned
into a Pose2Sim TOML by Pose2Sim's own converter, two cameras through the engine, and the result
checked against a third camera that the run never saw."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import _package_file, assert_one_error_line, leftovers, run_cli

from engine.calibration import fit_to_video, match_videos, read_calibration, relative_to
from engine.config import RunConfig
from engine.detection import detect
from engine.errors import EngineError
from engine.joint_sets import MP_MIRROR
from engine.sync import find_offset
from engine.trc import read_trc
from engine.triangulation import complete_from_one_view, project
from engine.video import probe

LIMBS = [11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
FRAMES = (0, 60)


def demo(name: str) -> Path:
    return _package_file("Pose2Sim", "Demo_SinglePerson", "videos", f"{name}.mp4")


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's Calib.qca.txt through `python -m engine.calibration` (Pose2Sim's converter)."""
    qca = _package_file("Pose2Sim", "Demo_SinglePerson", "calibration", "Calib.qca.txt")
    out = tmp_path_factory.mktemp("calib") / "Calib.toml"
    proc = run_cli_module("engine.calibration", qca, out)
    assert proc.returncode == 0, proc.stderr
    return out


def run_cli_module(module: str, *args) -> object:
    import subprocess
    import sys

    from conftest import REPO_ROOT, cli_env

    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO_ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tracks() -> dict[str, object]:
    """The engine's own 2D of cam01, cam02 and cam04 on the test frames."""
    cfg = RunConfig(video=demo("cam01"), height_m=1.7)
    out = {}
    for name in ("cam01", "cam02", "cam04"):
        info = probe(demo(name))
        out[name] = detect(cfg, info, *FRAMES, lambda f, m: None, threading.Event())[0]
    return out


@pytest.fixture(scope="module")
def mv_run(calib: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """cam01 + cam04 through the CLI, as a user runs it: no --height (the cameras measure it)."""
    out = tmp_path_factory.mktemp("mv") / "out"
    proc = run_cli("run", demo("cam01"), demo("cam04"), "--calib", calib, "--sync-offsets", "0,0",
                   "--frames", f"{FRAMES[0]}:{FRAMES[1]}", "--out", out, "--quiet", timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out / "cam01", json.loads((out / "cam01" / "run.json").read_text())


def test_calibration_reads_the_demo_as_pose2sim_writes_it(calib: Path) -> None:
    cams = read_calibration(calib)
    assert [c.name for c in cams] == ["cam01", "cam02", "cam03", "cam04"]
    for c in cams:
        assert np.allclose(c.R @ c.R.T, np.eye(3), atol=1e-9)
        assert 2.0 < np.linalg.norm(c.centre[:2]) < 6.0  # cameras stand metres around the beam
        assert c.size == (1088, 1920) and 1600 < c.K[0, 0] < 1750
    # Decoded cam01 is 1080 wide: the macroblock-padded 1088 is accepted, the principal point kept.
    fitted = fit_to_video(cams[0], 1080, 1920, "cam01.mp4")
    assert fitted.size == (1080, 1920) and np.array_equal(fitted.K, cams[0].K)
    # An exact binning scales the intrinsics; anything else is one clear error.
    half = fit_to_video(cams[0], 544, 960, "small.mp4")
    assert half.K[0, 0] == pytest.approx(cams[0].K[0, 0] / 2)
    with pytest.raises(EngineError, match="cam01 is 1088x1920 but wide.mp4 decodes at 1920x1080"):
        fit_to_video(cams[0], 1920, 1080, "wide.mp4")
    rel = relative_to(cams)
    assert np.allclose(rel[0].R, np.eye(3)) and np.allclose(rel[0].t, 0)
    X = np.array([[0.3, 0.2, 0.9]])  # a world point: the same pixel through either frame
    x0 = X @ cams[0].R.T + cams[0].t
    assert np.allclose(project(X, cams[3]), project(x0, rel[3]))


def test_videos_match_cameras_by_name_or_order(calib: Path) -> None:
    cams = read_calibration(calib)
    picked = match_videos(cams, [Path("x/cam04.mp4"), Path("x/cam02.mp4")])
    assert [c.name for c in picked] == ["cam04", "cam02"]
    assert [c.name for c in match_videos(cams, [Path(f"v{i}.mp4") for i in range(4)])] == \
        ["cam01", "cam02", "cam03", "cam04"]
    with pytest.raises(EngineError, match="describes 4 cameras but 2 videos"):
        match_videos(cams, [Path("a.mp4"), Path("b.mp4")])


def test_two_cameras_give_metric_markers_that_a_third_camera_confirms(mv_run, tracks, calib) -> None:
    folder, record = mv_run
    assert record["completed"] and record["frames"]["read"] == FRAMES[1] - FRAMES[0]
    assert [v["name"] for v in record["views"]] == ["cam01", "cam04"]
    assert [v["offset"] for v in record["views"]] == [0, 0]
    # No --height: the stature comes from the triangulation (Pose2Sim's formula); the demo's
    # subject measures 1.66-1.74 m over the camera pairs (benchmarks/multiview.py).
    assert record["height"]["source"] == "triangulated" and 1.6 < record["height"]["m"] < 1.8
    with np.load(folder / "cam01_markers.npz") as d:
        markers = d["markers_33_camera"].astype(np.float64)
        assert list(d["views_names"]) == ["cam01", "cam04"]
        assert np.allclose(d["views_R"][0], np.eye(3)) and d["views_offset"].tolist() == [0, 0]
    cams = {c.name: c for c in read_calibration(calib)}
    c1 = fit_to_video(cams["cam01"], 1080, 1920, "cam01")
    world = (markers - c1.t) @ c1.R
    # cam02 took no part: the markers must land on its own 2D (either label order: MediaPipe swaps
    # sides from behind). One camera's estimate misses it by ~100 px; the pair by ~20.
    seen = tracks["cam02"].pixels.astype(np.float64)
    px = project(world, fit_to_video(cams["cam02"], 1080, 1920, "cam02"))
    err = np.fmin(np.linalg.norm(px[:, LIMBS] - seen[:, LIMBS], axis=-1),
                  np.linalg.norm(px[:, LIMBS] - seen[:, MP_MIRROR[LIMBS]], axis=-1))
    assert np.nanmedian(err) < 30, np.nanmedian(err)
    # Constant bones, as the reference's (benchmarks: bone CV <= 1 %).
    for a, b in ((23, 25), (25, 27), (11, 13), (13, 15)):
        length = np.linalg.norm(markers[:, a] - markers[:, b], axis=-1)
        assert np.nanstd(length) / np.nanmean(length) < 0.01
    # The TRC is levelled by the calibration's own vertical, not an estimate from the legs.
    level = record["biomechanics"]["level"]
    assert level["vertical"] == "given"
    up_trc = c1.R[:, 2] * np.array([1.0, -1.0, -1.0])  # world +Z in camera 1, then in the TRC frame
    assert np.allclose(np.array(level["rotation"]) @ up_trc, [0.0, 1.0, 0.0], atol=1e-5)
    # Every single-camera output is there and readable.
    trc, names, _ = read_trc(folder / "cam01_final.trc")
    # The right heel is seen well by one camera only in some of these frames: it is placed on that
    # camera's ray at its bone length (triangulation.complete_from_one_view), so nothing is missing.
    assert trc.shape[0] == 60 and np.isfinite(trc).all()
    assert (folder / "joint_angles" / "cam01_joint_angles.mot").is_file()
    assert (folder / "cam01_final.c3d").is_file()


def test_a_foot_point_one_camera_sees_is_placed_on_its_ray_at_its_bone_length(calib: Path) -> None:
    cams = [fit_to_video(c, *c.size, c.name) for c in read_calibration(calib)][:2]
    rng = np.random.default_rng(0)
    F = 40
    X = np.full((F, 33, 3), np.nan)
    X[:, 27] = [0.2, 0.1, 0.1] + 0.05 * rng.standard_normal((F, 3))  # left ankle
    back = rng.standard_normal((F, 3))
    X[:, 29] = X[:, 27] + 0.08 * back / np.linalg.norm(back, axis=-1, keepdims=True)  # left heel
    px = np.stack([project(X, c) for c in cams])
    xn = np.stack([cv2.undistortPoints(p.reshape(-1, 1, 2), c.K, c.dist).reshape(F, 33, 2)
                   for c, p in zip(cams, px)])
    depth = np.stack([(X @ c.R.T + c.t)[..., 2] for c in cams])  # the right depth order
    hidden = X.copy()
    hidden[10:20, 29] = np.nan  # seen by camera 0 only in these frames
    one = np.zeros((2, F, 33), bool)
    one[0, 10:20, 29] = True
    got = complete_from_one_view(hidden, cams, xn, one, depth)
    assert np.abs(got[10:20, 29] - X[10:20, 29]).max() < 1e-6
    assert np.array_equal(got[:10], hidden[:10], equal_nan=True)
    # A wrong depth order takes the other crossing: still on the ray, at the bone's length.
    flipped = complete_from_one_view(hidden, cams, xn, one, -depth)
    assert np.allclose(np.linalg.norm(flipped[10:20, 29] - X[10:20, 27], axis=-1), 0.08)
    assert np.allclose(project(flipped[10:20, 29], cams[0]), px[0, 10:20, 29], atol=1e-6)
    # Knees, ankles, elbows and wrists are not placed from one view (measured worse than a gap).
    hidden[10:20, 27] = np.nan
    one[0, 10:20, 27] = True
    assert np.isnan(complete_from_one_view(hidden, cams, xn, one, depth)[10:20, 27]).all()


def test_offsets_are_found_from_motion(calib: Path, tracks) -> None:
    cams = {c.name: c for c in read_calibration(calib)}
    pair = (fit_to_video(cams["cam01"], 1080, 1920, "a"), fit_to_video(cams["cam04"], 1088, 1920, "b"))
    a, b = tracks["cam01"], tracks["cam04"]
    for lag in (0, 7, -6):  # cam04's video cut (or padded) by `lag` frames
        shifted_px = np.roll(b.pixels, -lag, axis=0)
        shifted_vis = np.roll(b.visibility, -lag, axis=0)
        found, rec = find_offset(pair, (a.pixels, shifted_px), (a.visibility, shifted_vis), 15, "cam04")
        assert abs(found + lag) <= 1, (lag, found, rec)  # view 0's frame i is its frame i - lag
    # A subject who never moves: every offset fits as well as any other.
    still = np.repeat(a.pixels[:1], len(a.pixels), axis=0)
    still_b = np.repeat(b.pixels[:1], len(b.pixels), axis=0)
    with pytest.raises(EngineError, match="no offset stands out|never agrees"):
        find_offset(pair, (still, still_b), (a.visibility, b.visibility), 15, "cam04")


def test_a_camera_that_drops_out_degrades_the_result(calib: Path, tmp_path: Path) -> None:
    """cam04 blacked out for frames 20-35 of 60: the run completes, says so, and fills the gap."""
    video = tmp_path / "cam04.mp4"
    _copy_video(demo("cam04"), video, black=range(20, 35), frames=60)
    out = tmp_path / "out"
    proc = run_cli("run", demo("cam01"), video, "--calib", calib, "--sync-offsets", "0,0",
                   "--frames", "0:60", "--out", out, "--quiet", "--no-plots", timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "cam01" / "run.json").read_text())
    spans = record["views"][1]["missing_spans"]
    assert len(spans) == 1 and abs(spans[0][0] - 20) <= 1 and 35 <= spans[0][1] <= 40, spans
    assert record["views"][1]["detection_rate"] < 0.8
    assert record["quality"]["interpolated_share"] > 0.15
    assert record["quality"]["missing_share"] < 0.01  # 15 frames at 60 fps: within --max-gap


def _copy_video(src: Path, dest: Path, black: range = range(0), frames: int = 60) -> None:
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    writer = None
    for i in range(frames):
        ok, frame = cap.read()
        assert ok
        if writer is None:
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        writer.write(np.zeros_like(frame) if i in black else frame)
    cap.release()
    writer.release()


@pytest.mark.parametrize("case", ["count", "size", "no_person", "no_calib", "calib_alone", "twice",
                                  "offsets", "lifter", "missing_calib", "not_toml", "qca"])
def test_bad_multiview_input_is_one_line_and_writes_nothing(case: str, calib: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a, b = demo("cam01"), demo("cam04")
    args: list = [a, b, "--calib", calib]
    expect = {"count": "describes 4 cameras but 2 videos", "size": "decodes at",
              "no_person": "never sees the person", "no_calib": "need --calib",
              "calib_alone": "at least two videos", "twice": "same video is given twice",
              "offsets": "gives 3 offsets for 2 videos", "lifter": "--lifter",
              "missing_calib": "--calib file not found", "not_toml": "not a TOML file",
              "qca": "convert Calib.qca.txt first"}[case]
    if case == "count":
        args = [a, tmp_path / "b.mp4", "--calib", calib]
        _copy_video(b, args[1], frames=10)
    elif case == "size":
        small = tmp_path / "cam04.mp4"
        cap = cv2.VideoCapture(str(b))
        writer = cv2.VideoWriter(str(small), cv2.VideoWriter_fourcc(*"mp4v"), 60, (640, 480))
        for _ in range(5):
            writer.write(cv2.resize(cap.read()[1], (640, 480)))
        writer.release()
        args = [a, small, "--calib", calib]
    elif case == "no_person":
        dark = tmp_path / "cam04.mp4"
        _copy_video(b, dark, black=range(30), frames=30)
        args = [a, dark, "--calib", calib, "--frames", "0:30"]
    elif case == "no_calib":
        args = [a, b, "--height", "1.7"]
    elif case == "calib_alone":
        args = [a, "--calib", calib]
    elif case == "twice":
        args = [a, a, "--calib", calib]
    elif case == "offsets":
        args += ["--sync-offsets", "0,1,2"]
    elif case == "lifter":
        ckpt = tmp_path / "x.bin"
        ckpt.write_bytes(b"0")
        args += ["--lifter", ckpt]
    elif case == "missing_calib":
        args = [a, b, "--calib", tmp_path / "nope.toml"]
    elif case == "not_toml":
        bad = tmp_path / "calib.toml"
        bad.write_text("[cam01\nname = ")
        args = [a, b, "--calib", bad]
    elif case == "qca":
        args = [a, b, "--calib", _package_file("Pose2Sim", "Demo_SinglePerson", "calibration",
                                              "Calib.qca.txt")]
    proc = run_cli("run", *args, "--out", out, "--quiet", timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert expect in assert_one_error_line(proc.stderr)
    assert leftovers(out) == []


def test_holistic_hands_agree_with_the_triangulated_palm(calib: Path, tmp_path: Path) -> None:
    """--holistic with --calib: the first camera's hands hung on the triangulated wrists, each frame
    mirrored back in depth where its fingers bent backwards (engine/hands.py). The hand model's palm
    then faces as the triangulated pose's palm (wrist, index, pinky of two cameras) does."""
    proc = run_cli("run", demo("cam01"), demo("cam04"), "--calib", calib, "--sync-offsets", "0,0",
                   "--frames", f"{FRAMES[0]}:{FRAMES[1]}", "--holistic", "--no-angles", "--out", tmp_path,
                   "--quiet", timeout=300)
    assert proc.returncode == 0, proc.stderr
    hands_record = json.loads((tmp_path / "cam01" / "run.json").read_text())["hands"]
    with np.load(tmp_path / "cam01" / "cam01_markers.npz") as d:
        hands, markers = d["hands_camera"].astype(float), d["markers_33_camera"].astype(float)
    found = np.isfinite(hands).all(axis=(2, 3))
    assert [hands_record["left_frames"], hands_record["right_frames"]] == found.sum(axis=0).tolist()
    for side, (wrist, pinky, index) in enumerate(((15, 17, 19), (16, 18, 20))):
        assert found[:, side].sum() >= 20, found.sum(axis=0)
        assert np.allclose(hands[found[:, side], side, 0], markers[found[:, side], wrist], atol=1e-5)
        pose = np.cross(markers[:, index] - markers[:, wrist], markers[:, pinky] - markers[:, wrist])
        hand = np.cross(hands[:, side, 5] - hands[:, side, 0], hands[:, side, 17] - hands[:, side, 0])
        cos = np.sum(pose * hand, -1) / np.linalg.norm(pose, axis=-1) / np.linalg.norm(hand, axis=-1)
        assert np.nanmedian(cos) > 0.7, (side, np.nanmedian(cos))  # the hand model as it came: -0.58 (left)
