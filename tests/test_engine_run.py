"""The engine on real video: what a successful run writes, read back the way Pose2Sim and OpenSim
users read it, and the run's behaviour under cancel, slicing and a second person in view."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CAM01_SLICE, HEIGHT_M, assert_one_error_line, leftovers, popen_cli, run_cli

from engine.cleaning import jerk
from engine.config import RunConfig
from engine.coords import camera_to_opensim
from engine.errors import Cancelled
from engine.joint_sets import MEDIAPIPE_33, MP, MP_LIMB_BONES, MP_MIRROR, MP_TREE, POSE2SIM_22
from engine.outputs import TMP_PREFIX
from engine.pipeline import run
from engine.reconstruct import reconstruct
from engine.scale import bone_lengths
from engine.trc import read_trc as engine_read_trc

pytestmark = pytest.mark.engine_run

N_FRAMES = CAM01_SLICE[1] - CAM01_SLICE[0]
EXPECTED_FILES = {"cam01_raw_landmarks.csv", "cam01_initial.trc", "cam01_markers.npz", "cam01_quality.csv",
                  "run.json",
                  # the biomechanics stage (tests/test_biomech_run.py checks what is inside)
                  "cam01_final.trc", "cam01_final.c3d", "joint_angles", "cam01_report.pdf"}


def _top(relative: str | Path) -> str:
    """First component of a path relative to the result folder (joint_angles/x.csv → joint_angles)."""
    return Path(relative).parts[0]


def pose2sim_read_trc(path: Path):
    """Pose2Sim's own TRC reader (imports cleanly with rtoml/c3d/anytree installed)."""
    from Pose2Sim.common import read_trc

    return read_trc(str(path))


@pytest.fixture(scope="module")
def trc(cam01_run):
    data, frames_col, time_col, markers, header = pose2sim_read_trc(cam01_run.result.files["initial_trc"])
    xyz = data.to_numpy(dtype=float).reshape(len(data), len(markers), 3)
    return {"xyz": xyz, "frames": frames_col.to_numpy(), "time": time_col.to_numpy(),
            "markers": markers, "header": header, "index": {n: i for i, n in enumerate(markers)}}


# --- the files -------------------------------------------------------------------------------


def test_output_folder_holds_exactly_the_expected_files(cam01_run):
    res = cam01_run.result
    assert res.out_dir == cam01_run.out_dir / "cam01"
    assert {p.name for p in res.out_dir.iterdir()} == EXPECTED_FILES
    assert {_top(p.relative_to(res.out_dir)) for p in res.files.values()} == EXPECTED_FILES
    assert [p.name for p in cam01_run.out_dir.iterdir()] == ["cam01"], "temporary folders left behind"


def test_output_folder_permissions_follow_the_umask(cam01_run):
    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE(cam01_run.result.out_dir.stat().st_mode)
    assert mode == 0o777 & ~umask, f"result folder has mode {oct(mode)}, umask {oct(umask)}"


def test_detection_rate_on_the_single_person_demo(cam01_run):
    res = cam01_run.result
    assert res.track.frames == N_FRAMES
    assert res.track.detected.mean() >= 0.95
    assert res.record["detection_rate"] == pytest.approx(res.track.detected.mean(), abs=1e-4)


def test_trc_read_by_pose2sim_has_the_22_markers_in_order(trc):
    assert trc["markers"] == list(POSE2SIM_22)
    assert trc["xyz"].shape == (N_FRAMES, 22, 3)
    assert np.isfinite(trc["xyz"]).all(), "a fully detected slice should have no missing markers"


def test_trc_header_rate_and_frame_count(trc):
    keys = trc["header"][1].rstrip("\n").split("\t")
    values = dict(zip(keys, trc["header"][2].rstrip("\n").split("\t")))
    assert float(values["DataRate"]) == 60
    assert float(values["CameraRate"]) == 60
    assert int(values["NumFrames"]) == N_FRAMES
    assert int(values["NumMarkers"]) == 22
    assert values["Units"] == "m"


def test_trc_time_column_is_video_frame_over_fps(trc):
    np.testing.assert_array_equal(trc["frames"], np.arange(1, N_FRAMES + 1))
    np.testing.assert_allclose(trc["time"], np.arange(N_FRAMES) / 60, atol=1e-6)


def test_trc_holds_the_engine_markers_in_opensim_axes(cam01_run, trc):
    expected = camera_to_opensim(cam01_run.result.markers_22)
    np.testing.assert_allclose(trc["xyz"], expected, atol=1e-6)
    ours, names, rate = engine_read_trc(cam01_run.result.files["initial_trc"])
    assert names == list(POSE2SIM_22) and rate == 60
    np.testing.assert_allclose(ours, trc["xyz"], atol=1e-12)


def test_y_is_up_in_the_trc(trc):
    y = trc["xyz"][..., 1]
    i = trc["index"]
    for upper, lower in [("Head", "Hip"), ("Neck", "Hip"), ("Hip", "RAnkle"), ("Hip", "LAnkle"),
                         ("Head", "RAnkle"), ("RKnee", "RAnkle"), ("LKnee", "LAnkle")]:
        assert (y[:, i[upper]] > y[:, i[lower]]).all(), f"{upper} not above {lower} in every frame"
    # The subject stands up: head-to-ankle height is a large part of --height, in every frame.
    span = y[:, i["Head"]] - 0.5 * (y[:, i["RAnkle"]] + y[:, i["LAnkle"]])
    assert (span > 0.6 * HEIGHT_M).all() and (span < 1.05 * HEIGHT_M).all()


@pytest.mark.parametrize("side", ["R", "L"])
@pytest.mark.parametrize("segment", [("Hip", "Knee"), ("Knee", "Ankle")], ids=["thigh", "shank"])
def test_leg_segments_scale_with_height_and_are_held(trc, side, segment):
    a, b = (trc["index"][side + s] for s in segment)
    length = np.linalg.norm(trc["xyz"][:, a] - trc["xyz"][:, b], axis=-1)
    assert (length > 0.20 * HEIGHT_M).all() and (length < 0.30 * HEIGHT_M).all(), length
    # Held bone lengths: constant over time up to the TRC's 6-decimal rounding.
    assert np.ptp(length) < 1e-5


def test_bone_lengths_are_held_at_the_recorded_lengths(cam01_run):
    recon = cam01_run.result.recon
    per_frame = bone_lengths(recon.markers)
    for name, (a, b) in MP_LIMB_BONES.items():
        i = MP_TREE.index((a, b))
        np.testing.assert_allclose(per_frame[:, i], recon.bone_lengths[i], rtol=1e-9, err_msg=name)
        left, right = (MP_TREE.index((int(MP_MIRROR[a]), int(MP_MIRROR[b]))), i)
        assert recon.bone_lengths[left] == pytest.approx(recon.bone_lengths[right], rel=1e-9), name


def test_metric_scale_follows_height(cam01_run, cam01):
    """The same landmarks reconstructed for a taller subject: the whole scene scales about the
    camera by the height ratio (the 2D evidence is the same), bone lengths included."""
    res = cam01_run.result
    taller = 1.90
    cfg = RunConfig(video=cam01, height_m=taller, out_dir=cam01_run.out_dir)
    recon = reconstruct(res.track, res.intrinsics, cfg, res.video.fps)
    ratio = taller / HEIGHT_M
    # Exact for a pure pinhole scaling; the tolerance leaves room for fits with priors.
    np.testing.assert_allclose(recon.bone_lengths, res.recon.bone_lengths * ratio, rtol=0.02)
    expected = res.recon.markers * ratio
    rel = np.linalg.norm(recon.markers - expected, axis=-1) / np.linalg.norm(expected, axis=-1)
    assert np.nanmax(rel) < 0.01


def test_filtering_lowers_jerk(cam01_run):
    recon = cam01_run.result.recon
    assert jerk(recon.markers, 60) < 0.5 * jerk(recon.raw_camera, 60)


def test_filter_off_keeps_the_jitter(cam01_run, cam01):
    """Same landmarks with `--cutoff-hz 0`: much jerkier than with the default low-pass."""
    res = cam01_run.result
    cfg = RunConfig(video=cam01, height_m=HEIGHT_M, out_dir=cam01_run.out_dir, cutoff_hz=0)
    unfiltered = reconstruct(res.track, res.intrinsics, cfg, res.video.fps)
    assert jerk(res.recon.markers, 60) < 0.5 * jerk(unfiltered.markers, 60)
    # Filtering moves markers by millimetres to a few centimetres, not more.
    shift = np.linalg.norm(unfiltered.markers - res.recon.markers, axis=-1)
    assert np.nanmedian(shift) < 0.03


def test_markers_lie_in_front_of_the_camera_and_reproject(cam01_run):
    res = cam01_run.result
    assert (res.recon.markers[..., 2] > 0.5).all(), "every marker should be in front of the camera"
    # The metric skeleton, placed by the root translation, lands on the 2D landmarks.
    body = [MP[n] for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder", "left_knee",
                            "right_knee")]
    assert np.nanmedian(res.recon.reprojection_px[:, body]) < 0.03 * res.video.height


def test_run_json_records_the_run(cam01_run):
    res = cam01_run.result
    record = json.loads(res.files["run_json"].read_text())
    assert record == json.loads(json.dumps(res.record)), "run.json differs from RunResult.record"
    assert record["completed"] is True
    for package in ("python", "humanpose3d", "numpy", "ai-edge-litert", "mediapipe"):
        assert record["versions"].get(package), f"versions lacks {package}"
    timings = record["timings"]
    assert timings["total_s"] > 0 and all(v >= 0 for v in timings.values())
    assert timings["total_s"] >= timings["pose_s"]
    assert record["frames"] == {"first": 0, "requested": N_FRAMES, "read": N_FRAMES,
                                "detected": int(res.track.detected.sum())}
    assert 0.95 <= record["detection_rate"] <= 1
    assert record["subject"]["method"] in {"single", "largest-central", "roi"}
    assert record["config"]["height_m"] == HEIGHT_M
    assert record["config"]["frames"] == list(CAM01_SLICE)
    assert record["video"]["fps"] == 60 and record["video"]["frame_count"] == 100
    assert (record["video"]["width"], record["video"]["height"]) == (1080, 1920)
    assert {_top(o) for o in record["outputs"]} == EXPECTED_FILES


def test_raw_landmarks_csv(cam01_run):
    df = pd.read_csv(cam01_run.result.files["landmarks_csv"])
    assert len(df) == N_FRAMES
    assert len(df.columns) == 3 + 6 * len(MEDIAPIPE_33)
    np.testing.assert_array_equal(df["frame"], np.arange(*CAM01_SLICE))
    np.testing.assert_allclose(df["time_s"], df["frame"] / 60, atol=1e-6)
    np.testing.assert_allclose(df["left_knee_u_px"], cam01_run.result.track.pixels[:, MP["left_knee"], 0],
                               rtol=1e-5)


def test_markers_npz(cam01_run):
    res = cam01_run.result
    with np.load(res.files["markers_npz"]) as z:
        np.testing.assert_allclose(z["markers_33_camera"], res.recon.markers, atol=1e-5)
        assert z["markers_22_camera"].shape == (N_FRAMES, 22, 3)
        np.testing.assert_allclose(z["K"], res.intrinsics.K)
        assert float(z["fps"]) == 60 and int(z["first_frame"]) == 0


def test_progress_is_monotonic_and_finishes(cam01_run):
    fractions = [f for f, _ in cam01_run.progress]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] == 1.0
    assert cam01_run.progress[-1][1] == "done"
    assert any(m.startswith("pose ") for _, m in cam01_run.progress)


# --- the CLI on real video -------------------------------------------------------------------


def test_cli_frames_slice_keeps_video_timing_and_force_replaces(cam01, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", cam01, "--height", HEIGHT_M, "--out", out, "--frames", "20:40")
    assert proc.returncode == 0, proc.stderr
    assert str(out / "cam01") in proc.stdout
    data, frames_col, time_col, markers, _ = pose2sim_read_trc(out / "cam01" / "cam01_initial.trc")
    assert len(data) == 20 and markers == list(POSE2SIM_22)
    assert time_col.iloc[0] == pytest.approx(20 / 60, abs=1e-6)
    np.testing.assert_allclose(time_col, (20 + np.arange(20)) / 60, atol=1e-6)
    record = json.loads((out / "cam01" / "run.json").read_text())
    assert record["frames"]["first"] == 20 and record["frames"]["read"] == 20

    # --force replaces the result whole; nothing temporary stays beside it.
    proc = run_cli("run", cam01, "--height", HEIGHT_M, "--out", out, "--frames", "50:60", "--force")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "cam01" / "run.json").read_text())
    assert record["frames"]["first"] == 50 and record["frames"]["read"] == 10
    _, _, time_col, _, _ = pose2sim_read_trc(out / "cam01" / "cam01_initial.trc")
    assert len(time_col) == 10 and time_col.iloc[0] == pytest.approx(50 / 60, abs=1e-6)
    assert [p.name for p in out.iterdir()] == ["cam01"]


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_from_the_progress_callback(cam01, tmp_path):
    out = tmp_path / "out"
    cancel = threading.Event()
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)
        if message.startswith("pose ") and int(message.split()[1].split("/")[0]) >= 10:
            cancel.set()

    with pytest.raises(Cancelled):
        run(RunConfig(video=cam01, height_m=HEIGHT_M, out_dir=out), progress=progress, cancel=cancel)
    assert cancel.is_set() and "pose 10/100" in seen
    assert not any(m.startswith("pose 20/") for m in seen), "detection went on after the cancel"
    assert leftovers(out) == []
    # The background decoder stops too.
    deadline = time.monotonic() + 5
    while any(t.name == "video-reader" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "video-reader" for t in threading.enumerate())


def _in_detection(pid: int, video: Path) -> bool:
    """True once the process holds the video open and has loaded the pose stage's runtime (LiteRT;
    MediaPipe for --holistic) (Linux /proc)."""
    try:
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    return str(video.resolve()) in fds and ("ai_edge_litert" in maps or "mediapipe" in maps)


def wait_for_detection(proc: subprocess.Popen, video: Path) -> None:
    """Return once the CLI process is running the pose stage on `video` (by /proc; without it,
    after 4 s), with the run still going."""
    if Path("/proc/self/fd").is_dir():
        deadline = time.monotonic() + 60
        while not _in_detection(proc.pid, video):
            assert proc.poll() is None, f"the run ended before detection: {proc.communicate()}"
            assert time.monotonic() < deadline, "the CLI never started detecting"
            time.sleep(0.05)
        time.sleep(0.3)
    else:  # no /proc: give it time to import and start
        time.sleep(4)
    assert proc.poll() is None, f"the run ended before it could be interrupted: {proc.communicate()}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_cancels_the_cli_cleanly(cam01, tmp_path, sig):
    out = tmp_path / "out"
    proc = popen_cli("run", cam01, "--height", HEIGHT_M, "--out", out)  # all 100 frames: ~3 s of pose
    try:
        wait_for_detection(proc, cam01)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "cancel" in assert_one_error_line(stderr)
    assert stdout == ""
    assert leftovers(out) == [], "a cancelled run left files behind"


# --- two people in view ----------------------------------------------------------------------


def test_two_person_video_picks_and_records_one_subject(sports2d_demo, tmp_path):
    """Frames 80:110 of the Sports2D demo show both people (a jumper on the box and a walker);
    the first frames of the video show only one, so they would not exercise the choice."""
    res = run(RunConfig(video=sports2d_demo, height_m=HEIGHT_M, out_dir=tmp_path, frames=(80, 110)))
    record = json.loads(res.files["run_json"].read_text())
    assert record["completed"] is True and record["frames"]["read"] == 30
    subject = record["subject"]
    assert subject["method"] == "largest-central", subject
    assert subject["candidates"] >= 2
    x, y, w, h = subject["box"]
    # The track follows the chosen person: their hips stay inside the chosen box (grown by half
    # its size for motion) in every detected frame, never jumping to the other person.
    hips = 0.5 * (res.track.pixels[:, MP["left_hip"]] + res.track.pixels[:, MP["right_hip"]])
    hips = hips[res.track.detected]
    assert len(hips) >= 0.8 * 30
    assert ((hips[:, 0] > x - 0.5 * w) & (hips[:, 0] < x + 1.5 * w)).all(), hips[:, 0]
    assert ((hips[:, 1] > y - 0.5 * h) & (hips[:, 1] < y + 1.5 * h)).all(), hips[:, 1]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]
