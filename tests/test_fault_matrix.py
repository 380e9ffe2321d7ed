"""Issue #8's fault matrix: the cases that tests/test_bad_inputs.py and tests/test_engine_run.py do
not already cover, each through the CLI as a user runs it (or the engine's API where the case
needs a setting the CLI does not have). A failure must be one `error: …` line, a non-zero exit and
nothing half-written; a success must be a whole result with `run.json` saying so.

The broken and unusual videos are made here from the Pose2Sim demo with PyAV (FFmpeg's encoders:
x264, AAC) and OpenCV. Where each case of the issue lives:

| case | test |
|---|---|
| missing, directory, empty, text as .mp4, truncated / bit-flipped MP4 | test_bad_inputs.test_bad_video |
| 0-frame video (AVI: a video stream, no frames; MP4: its empty track dropped) | test_zero_frame_video |
| 1-frame video | test_one_frame_video |
| audio-only file (AAC in .mp4, WAV renamed .mp4) | test_audio_only_file |
| huge resolution: one 7680x4320 frame | test_8k_frame |
| portrait stored as landscape with a 90° rotation matrix | test_portrait_with_rotation_metadata |
| variable frame rate (MP4 and Matroska) | test_variable_frame_rate |
| no person | test_bad_inputs (noise, blank wall) |
| person leaving and re-entering | test_person_leaves_and_reenters |
| two people | test_engine_run.test_two_person_video_picks_and_records_one_subject |
| legs never visible, through filtering, LSTM augmentation and angles | test_legs_never_visible_* |
| --height 0 / negative / absurd, unknown flag, --frames out of range | test_bad_inputs.test_bad_flags |
| --frames running past the end | test_frames_past_the_end_are_clamped |
| every numeric flag, property-based | test_numeric_flags_accept_or_refuse_cleanly (+ test_bad_inputs) |
| read-only output folder, output folder that is a file | test_bad_inputs |
| existing output: kept without --force, replaced with it | test_bad_inputs, test_engine_run |
| disk full: a real full tmpfs, and a real file-size limit (EFBIG) | test_disk_full_* |
| SIGINT / SIGTERM mid-run | test_engine_run.test_sigint_…, test_sigterm_cancels_cleanly |
| kill -9 mid-detection, mid-write, mid-replace; then rerun | test_kill_9_* |
| unicode and spaces in paths | test_unicode_and_spaces_in_paths (+ test_addon_faults) |
| cancel from Blender, re-import into a .blend that has our objects | tests/test_addon_faults.py |
"""

from __future__ import annotations

import contextlib
import fractions
import io
import json
import resource
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import HEIGHT_M, REPO_ROOT, assert_one_error_line, cli_env, leftovers, popen_cli, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_inputs import assert_failed_cleanly
from test_engine_run import wait_for_detection

from engine.cli import build_parser, config_from_args
from engine.config import RunConfig
from engine.errors import EngineError
from engine.outputs import OLD_PREFIX, TMP_PREFIX, clean_stale
from engine.pipeline import run
from engine.trc import read_trc

av = pytest.importorskip("av", reason="PyAV (requirements/dev.txt) encodes the fault matrix's videos")

pytestmark = pytest.mark.engine_run

SIZE = (540, 960)  # the demo's portrait frame at half size: quick to detect, large enough to be real
FPS = 60


def _demo_frames(cam01: Path, n: int, size: tuple[int, int] | None = SIZE,
                 first: int = 0) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(cam01))
    for _ in range(first):
        cap.grab()
    out = []
    for _ in range(n):
        ok, frame = cap.read()
        assert ok
        out.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if size else frame)
    cap.release()
    return out


def _encode(path: Path, frames: list[np.ndarray], fps: int = FPS, pts_ms: list[int] | None = None,
            fmt: str | None = None, options: dict[str, str] | None = None) -> Path:
    """H.264 (x264) in the container the suffix or `fmt` names; `pts_ms` sets each frame's time;
    `options` are the muxer's."""
    with av.open(str(path), "w", format=fmt, options=options or {}) as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height = frames[0].shape[1], frames[0].shape[0]
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "14"}
        if pts_ms is not None:
            s.time_base = s.codec_context.time_base = fractions.Fraction(1, 1000)
        for i, bgr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], fractions.Fraction(1, 1000)
            c.mux(s.encode(frame))
        c.mux(s.encode())
    return path


def _rotate_tag(path: Path, degrees: int) -> None:
    """Give an MP4's video track a display matrix turning it by `degrees` clockwise, as a phone
    filming upright does (the track header's 3x3 matrix, ISO 14496-12 §8.3.2, in 16.16 fixed point)."""
    import struct

    data = bytearray(path.read_bytes())
    i = data.index(b"tkhd")
    version = data[i + 4]
    # version/flags, creation…duration, reserved, layer…volume, then the matrix
    m = i + 8 + (32 if version == 1 else 20) + 8 + 8
    one = 1 << 16
    c, s = {90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees]
    data[m:m + 36] = struct.pack(">9i", c * one, s * one, 0, -s * one, c * one, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def media(cam01: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fault_media")
    v: dict[str, Path] = {}
    clip = _demo_frames(cam01, 30)
    v["upright"] = _encode(d / "upright.mp4", clip)
    v["one_frame"] = _encode(d / "one_frame.mp4", clip[:1])

    # 0 frames: an AVI keeps its video stream header with no frames; the MP4 muxer drops an empty
    # track, leaving a valid file with no stream at all.
    writer = cv2.VideoWriter(str(d / "zero.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    assert writer.isOpened()
    writer.release()
    v["zero_avi"] = d / "zero.avi"
    with av.open(str(d / "zero.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        c.start_encoding()
    v["zero_mp4"] = d / "zero.mp4"

    t = np.arange(44100) / 44100.0
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    with av.open(str(d / "audio_only.mp4"), "w") as c:
        s = c.add_stream("aac", rate=44100)
        for i in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, i:i + 1024].copy(), format="fltp", layout="mono")
            frame.sample_rate = 44100
            c.mux(s.encode(frame))
        c.mux(s.encode())
    v["audio_only"] = d / "audio_only.mp4"
    with wave.open(str(d / "wav_as.mp4"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes((tone * 32767).astype("<i2").tobytes())
    v["wav_as_mp4"] = d / "wav_as.mp4"

    # The portrait clip stored as landscape, with the matrix that turns it upright for display.
    v["rotated"] = _encode(d / "rotated.mp4", [cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE) for f in clip])
    _rotate_tag(v["rotated"], 90)

    # One 8K frame: the demo's first frame, full height, on a grey 7680x4320 canvas.
    canvas = np.full((4320, 7680, 3), 120, np.uint8)
    canvas[:, 2625:2625 + 2430] = cv2.resize(_demo_frames(cam01, 1, None)[0], (2430, 4320))
    v["8k"] = _encode(d / "8k.mp4", [canvas], fps=30)

    # The person walks out (40 grey frames, 0.67 s: longer than the default --max-gap) and back.
    grey = np.full_like(clip[0], 128)
    v["reenter"] = _encode(d / "reenter.mp4", clip + [grey] * 40 + _demo_frames(cam01, 30, first=30))

    # Upper body only: the top 800 of the demo's 1920 rows end at the thighs; shins and feet never show.
    v["upper_body"] = _encode(d / "upper_body.mp4", [f[:800] for f in _demo_frames(cam01, 60, None)])
    return v


VFR_GAPS_MS = np.random.default_rng(8).choice([10, 17, 33, 50], size=60)
VFR_PTS_MS = np.r_[0, np.cumsum(VFR_GAPS_MS)[:-1]].astype(int)


@pytest.fixture(scope="session")
def vfr(media: dict[str, Path], cam01: Path) -> dict[str, Path]:
    d = media["upright"].parent
    frames = _demo_frames(cam01, len(VFR_PTS_MS))
    return {fmt: _encode(d / f"vfr.{ext}", frames, pts_ms=VFR_PTS_MS.tolist(), fmt=fmt)
            for fmt, ext in (("mp4", "mp4"), ("matroska", "mkv"))}


def assert_succeeded(proc: subprocess.CompletedProcess, out: Path, stem: str) -> dict:
    """A whole result: exit 0, nothing on stderr (--quiet), the folder on stdout, run.json says
    completed, and nothing temporary beside it. Returns run.json."""
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", f"a successful run printed on stderr:\n{proc.stderr}"
    assert str(out / stem) in proc.stdout
    record = json.loads((out / stem / "run.json").read_text())
    assert record["completed"] is True
    assert sorted(p.name for p in out.iterdir()) == [stem], "temporary folders left behind"
    for name in record["outputs"]:
        assert (out / stem / name).is_file() and (out / stem / name).stat().st_size > 0, name
    return record


def _run_quiet(video: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    return run_cli("run", video, "--height", HEIGHT_M, "--out", out, "--quiet", *flags)


# --- files that are not (usable) videos ------------------------------------------------------


@pytest.mark.parametrize("name,pattern", [("zero_avi", "no decodable frames"),
                                          ("zero_mp4", "cannot read video")])
def test_zero_frame_video(media, tmp_path, name, pattern):
    with av.open(str(media[name])) as c:  # the files are what they claim to be
        assert sum(s.frames for s in c.streams.video) == 0
    out = tmp_path / "out"
    assert_failed_cleanly(_run_quiet(media[name], out), out, pattern, codes=(1,))


@pytest.mark.parametrize("name", ["audio_only", "wav_as_mp4"])
def test_audio_only_file(media, tmp_path, name):
    with av.open(str(media[name])) as c:
        assert len(c.streams.audio) == 1 and len(c.streams.video) == 0
        assert c.streams.audio[0].duration or c.duration  # a real, non-empty sound file
    out = tmp_path / "out"
    assert_failed_cleanly(_run_quiet(media[name], out), out, "cannot read video", codes=(1,))


# --- unusual videos that must give a correct result ----------------------------------------


def test_one_frame_video(media, tmp_path):
    out = tmp_path / "out"
    record = assert_succeeded(_run_quiet(media["one_frame"], out), out, "one_frame")
    assert record["frames"] == {"first": 0, "requested": 1, "read": 1, "detected": 1}
    markers, names, rate = read_trc(out / "one_frame" / "one_frame_initial.trc")
    assert markers.shape == (1, 22, 3) and rate == FPS
    assert np.isfinite(markers).all()


def test_8k_frame(media, tmp_path):
    out = tmp_path / "out"
    t = time.monotonic()
    record = assert_succeeded(_run_quiet(media["8k"], out), out, "8k")
    elapsed = time.monotonic() - t
    assert (record["video"]["width"], record["video"]["height"]) == (7680, 4320)
    assert record["frames"]["detected"] == 1
    with np.load(out / "8k" / "8k_markers.npz") as z:
        px = z["pixels"][0]
    # Landmarks in the 8K frame's own pixels, on the person pasted at x = 2625…5055.
    assert 2625 < np.median(px[:, 0]) < 5055 and 0 < np.median(px[:, 1]) < 4320
    print(f"\n8K frame: {elapsed:.1f} s wall for the whole CLI run")
    assert elapsed < 90


def test_portrait_with_rotation_metadata(media, tmp_path):
    """A landscape-coded clip tagged to display upright gives the upright clip's result."""
    rec = {}
    pixels = {}
    for name in ("rotated", "upright"):
        out = tmp_path / name
        rec[name] = assert_succeeded(_run_quiet(media[name], out), out, name)
        with np.load(out / name / f"{name}_markers.npz") as z:
            pixels[name] = z["pixels"]
    assert rec["rotated"]["video"]["rotation_deg"] == 90 and rec["upright"]["video"]["rotation_deg"] == 0
    for r in rec.values():
        assert (r["video"]["width"], r["video"]["height"]) == SIZE
    both = np.isfinite(pixels["rotated"]).all(-1) & np.isfinite(pixels["upright"]).all(-1)
    diff = np.linalg.norm(pixels["rotated"] - pixels["upright"], axis=-1)[both]
    assert both.mean() > 0.95 and np.median(diff) < 3.0, np.median(diff)


@pytest.mark.parametrize("fmt", ["mp4", "matroska"])
def test_variable_frame_rate(vfr, tmp_path, fmt):
    """Frames 10–50 ms apart. Evenly spaced output timing at the measured mean rate is the closest
    fit; run.json flags the video and how far any frame's true time lies from it. (Matroska has no
    frame count: OpenCV estimates one from the duration, which a VFR video overshoots, and this
    used to fail as a truncated file.)"""
    out = tmp_path / "out"
    record = assert_succeeded(_run_quiet(vfr[fmt], out), out, "vfr")
    v = record["video"]
    mean_fps = (len(VFR_PTS_MS) - 1) / (VFR_PTS_MS[-1] / 1000)
    assert v["variable_frame_rate"] is True
    assert v["fps"] == pytest.approx(mean_fps, rel=1e-3) and v["mean_fps"] == v["fps"]
    true_drift = np.max(np.abs(VFR_PTS_MS / 1000 - np.arange(len(VFR_PTS_MS)) / mean_fps))
    assert v["max_drift_s"] == pytest.approx(true_drift, abs=2e-3)
    assert record["frames"]["read"] == len(VFR_PTS_MS)
    markers, _, rate = read_trc(out / "vfr" / "vfr_initial.trc")
    assert len(markers) == len(VFR_PTS_MS) and rate == pytest.approx(mean_fps, rel=1e-3)


def test_constant_frame_rate_is_not_flagged(cam01_run):
    v = cam01_run.result.record["video"]
    assert v["variable_frame_rate"] is False and v["max_drift_s"] < 1e-3 and v["fps"] == 60


def test_person_leaves_and_reenters(media, tmp_path):
    out = tmp_path / "out"
    record = assert_succeeded(_run_quiet(media["reenter"], out), out, "reenter")
    assert record["frames"]["read"] == 100
    with np.load(out / "reenter" / "reenter_markers.npz") as z:
        detected = z["detected"]
    expected = np.r_[np.ones(30, bool), np.zeros(40, bool), np.ones(30, bool)]
    assert (detected == expected).mean() >= 0.97, detected.astype(int)
    # The 40-frame absence is longer than --max-gap: unknown in every output, never invented.
    for trc in ("reenter_initial.trc", "reenter_final.trc"):
        markers, _, _ = read_trc(out / "reenter" / trc)
        seen = np.isfinite(markers[..., 0]).any(axis=1)
        assert not seen[32:68].any(), trc
        assert seen[:29].all() and seen[72:].all(), trc


def test_legs_never_visible_through_the_cli(media, tmp_path):
    out = tmp_path / "out"
    proc = _run_quiet(media["upper_body"], out)
    if proc.returncode != 0:  # a clear refusal is acceptable; a traceback or leftovers are not
        assert_failed_cleanly(proc, out / "upper_body", codes=(1,))
        return
    record = assert_succeeded(proc, out, "upper_body")
    assert record["frames"]["detected"] >= 55


def test_legs_never_visible_nan_through_filtering_augmentation_and_angles(media, tmp_path):
    """Without the skeleton fit's prior (the engine's `fit_skeleton=False`), landmarks MediaPipe
    did not see stay NaN: shins and feet are NaN in every frame from the markers through the
    Butterworth filter, the LSTM augmentation and the joint angles, and the run still finishes."""
    res = run(RunConfig(video=media["upper_body"], height_m=HEIGHT_M, out_dir=tmp_path, fit_skeleton=False))
    folder = res.out_dir
    assert json.loads((folder / "run.json").read_text())["completed"] is True
    legs = ["RAnkle", "RBigToe", "RSmallToe", "RHeel", "LAnkle", "LBigToe", "LSmallToe", "LHeel"]
    for trc in ("upper_body_initial.trc", "upper_body_final.trc"):
        markers, names, _ = read_trc(folder / trc)
        idx = [names.index(n) for n in legs]
        assert np.isnan(markers[:, idx]).all(), trc
        arms = [names.index(n) for n in ("RShoulder", "RElbow", "LShoulder", "LElbow")]
        assert np.isfinite(markers[:, arms]).mean() > 0.95, trc
    final, names, _ = read_trc(folder / "upper_body_final.trc")
    lower = [i for i, n in enumerate(names) if n.startswith(("r_ankle", "L_ankle", "r_calc", "L_calc"))]
    assert lower and np.isnan(final[:, lower]).all(), "augmented foot markers invented from nothing"
    angles = folder / "joint_angles"
    if angles.is_dir():
        import pandas as pd

        ankle = pd.read_csv(angles / "upper_body_ankle_r.csv").drop(columns="time_s")
        assert ankle.isna().all().all()
        elbow = pd.read_csv(angles / "upper_body_elbow_r.csv").drop(columns="time_s")
        # The arms' angles exist wherever the arms' LSTM inputs were seen: the missing legs take
        # nothing from them. (Near the clip's end MediaPipe loses the far wrist, behind the body.)
        initial, names, _ = read_trc(folder / "upper_body_initial.trc")
        upper = [names.index(n) for n in ("Neck", "RShoulder", "LShoulder", "RElbow", "LElbow",
                                          "RWrist", "LWrist", "RHip", "LHip")]
        inputs_seen = np.isfinite(initial[:, upper]).all(axis=(1, 2))
        assert inputs_seen.mean() > 0.8
        assert elbow.notna().all(axis=1).to_numpy()[inputs_seen].all()


@pytest.fixture(scope="session")
def streamed(media: dict[str, Path], cam01: Path) -> dict[str, Path]:
    """45 demo frames in containers that declare no frame count, as a stream recorder writes them
    (OBS-style live Matroska; a raw H.264 elementary stream): OpenCV reports a huge negative count."""
    d = media["upright"].parent
    frames = _demo_frames(cam01, 45)
    return {"live_mkv": _encode(d / "live.mkv", frames, fmt="matroska", options={"live": "1"}),
            "raw_h264": _encode(d / "raw.h264", frames, fmt="h264")}


@pytest.mark.parametrize("name", ["live_mkv", "raw_h264"])
def test_video_without_a_frame_count_is_read_to_its_end(streamed, tmp_path, name):
    """These used to give a one-frame result and exit 0: the missing count was taken as 1."""
    video = streamed[name]
    assert cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT) < 1  # the case under test
    out = tmp_path / "out"
    record = assert_succeeded(_run_quiet(video, out), out, video.stem)
    assert record["video"]["frame_count"] == 0
    assert record["frames"]["read"] == 45 and record["frames"]["detected"] >= 43
    markers, _, _ = read_trc(out / video.stem / f"{video.stem}_initial.trc")
    assert len(markers) == 45
    line = assert_failed_cleanly(_run_quiet(video, tmp_path / "late", "--frames", "60:"),
                                 tmp_path / "late" / video.stem, "past the end")
    assert "60" in line


def test_frames_past_the_end_are_clamped(media, tmp_path):
    out = tmp_path / "out"
    record = assert_succeeded(_run_quiet(media["upright"], out, "--frames", "25:999"), out, "upright")
    assert record["frames"] == {"first": 25, "requested": 5, "read": 5, "detected": 5}


def test_unicode_and_spaces_in_paths(media, tmp_path):
    folder = tmp_path / "vidéos de l'été 日本"
    folder.mkdir()
    video = folder / "prise n° 1 — ñandú 動画.mp4"
    shutil.copy(media["one_frame"], video)
    out = tmp_path / "sortie résultats" / "a b"
    stem = video.stem
    record = assert_succeeded(_run_quiet(video, out), out, stem)
    assert record["video"]["path"] == str(video)
    assert (out / stem / f"{stem}_initial.trc").is_file()
    markers, _, _ = read_trc(out / stem / f"{stem}_initial.trc")
    assert markers.shape == (1, 22, 3)


# --- the disk fills up ----------------------------------------------------------------------


@contextlib.contextmanager
def _tiny_tmpfs(where: Path, size: str):
    where.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here ({proc.stderr.strip()}): this test needs root or "
                    "CAP_SYS_ADMIN to fill a real filesystem")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_disk_full_on_a_real_full_filesystem(media, tmp_path):
    """A 96 KiB tmpfs: the first files fit, a later write gets ENOSPC. Nothing stays, not even the
    output folder the run created, and a previous result (--force) is kept whole."""
    with _tiny_tmpfs(tmp_path / "disk", "96k") as disk:
        out = disk / "out"
        proc = _run_quiet(media["upright"], out)
        line = assert_failed_cleanly(proc, out, "no space left", codes=(1,))
        assert "cannot write the results" in line
        assert leftovers(disk) == []

        previous = out / "upright"
        previous.mkdir(parents=True)
        (previous / "run.json").write_text('{"completed": true, "note": "the previous result"}')
        proc = _run_quiet(media["upright"], out, "--force")
        assert proc.returncode == 1
        assert "no space left" in assert_one_error_line(proc.stderr).lower()
        assert [p.name for p in out.iterdir()] == ["upright"]
        assert json.loads((previous / "run.json").read_text())["note"] == "the previous result"


def _file_size_limit(limit: int):
    def apply() -> None:
        # With SIGXFSZ ignored, a write past the limit fails with EFBIG instead of killing us.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_disk_full_file_size_limit(media, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "engine", "run", str(media["upright"]), "--height",
                           str(HEIGHT_M), "--out", str(out), "--quiet"], cwd=REPO_ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=120, preexec_fn=_file_size_limit(20_000))
    line = assert_failed_cleanly(proc, out, "file too large", codes=(1,))
    assert "cannot write the results" in line


# --- signals and kill -9 --------------------------------------------------------------------


# SIGINT and SIGTERM mid-detection: test_engine_run.test_a_signal_cancels_the_cli_cleanly.


def test_kill_9_mid_detection_leaves_nothing(cam01, tmp_path):
    out = tmp_path / "out"
    proc = popen_cli("run", cam01, "--height", HEIGHT_M, "--out", out)
    try:
        wait_for_detection(proc, cam01)
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists(), leftovers(out)  # nothing is created before the results are written


# The CLI with one engine function wrapped so that the process SIGKILLs itself at an exact point:
# as real as `kill -9` from outside, without racing a sub-second window.
_KILL_AFTER = """
import os, pathlib, signal, sys
import engine.pipeline as pipeline
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[1] == "write_trc":  # mid-write: the landmarks and first TRC are in the temporary folder
    real = pipeline.write_trc
    def write_trc(*a, **k):
        real(*a, **k)
        die()
    pipeline.write_trc = write_trc
else:  # mid-replace (--force): the previous result moved aside, the new one not yet in place
    real_rename = pathlib.Path.rename
    def rename(self, target):
        done = real_rename(self, target)
        if pathlib.Path(target).name.startswith(OLD_PREFIX):
            die()
        return done
    pathlib.Path.rename = rename
from engine.cli import main
sys.exit(main(sys.argv[2:]))
""".replace("OLD_PREFIX", repr(OLD_PREFIX))


def _run_killed_at(point: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _KILL_AFTER, point, *map(str, args)], cwd=REPO_ROOT,
                          env=cli_env(), capture_output=True, text=True, timeout=120)


def test_kill_9_mid_write_then_rerun_cleans_up(media, tmp_path):
    out = tmp_path / "out"
    args = ("run", media["upright"], "--height", HEIGHT_M, "--out", out, "--quiet")
    proc = _run_killed_at("write_trc", *args)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # At most a temporary folder: partial files, no run.json, no result under the final name.
    (stale,) = out.iterdir()
    assert stale.name.startswith(TMP_PREFIX + "upright-")
    written = {p.name for p in stale.iterdir()}
    assert "upright_initial.trc" in written and "run.json" not in written
    record = assert_succeeded(run_cli(*args), out, "upright")  # the rerun removes the leftovers
    assert record["frames"]["read"] == 30


def test_kill_9_mid_replace_keeps_the_previous_result(media, tmp_path):
    out = tmp_path / "out"
    previous = out / "upright"
    previous.mkdir(parents=True)
    (previous / "run.json").write_text('{"completed": true, "note": "the previous result"}')
    args = ("run", media["upright"], "--height", HEIGHT_M, "--out", out, "--quiet")
    proc = _run_killed_at("rename", *args, "--force")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert "upright" not in names and any(n.startswith(OLD_PREFIX) for n in names), names

    # The next run puts the previous result back before anything else: without --force it is
    # refused as existing output, and the previous result is whole again.
    proc = run_cli(*args)
    assert proc.returncode == 1 and "already exists" in assert_one_error_line(proc.stderr)
    assert sorted(p.name for p in out.iterdir()) == ["upright"]
    assert json.loads((previous / "run.json").read_text())["note"] == "the previous result"
    record = assert_succeeded(run_cli(*args, "--force"), out, "upright")
    assert "note" not in record


def test_clean_stale_spares_live_runs_and_restores_moved_results(tmp_path):
    live = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        mine = tmp_path / f"{TMP_PREFIX}clip-0123abcd-{live.pid}"
        gone = tmp_path / f"{TMP_PREFIX}clip-4567abcd-{dead.pid}"
        moved = tmp_path / f"{OLD_PREFIX}my-clip-89abcdef-{dead.pid}"
        moved_but_replaced = tmp_path / f"{OLD_PREFIX}other-89abcdef-{dead.pid}"
        for p in (mine, gone, moved, moved_but_replaced):
            p.mkdir()
            (p / "run.json").write_text("{}")
        (tmp_path / "other").mkdir()
        removed = clean_stale(tmp_path)
        assert sorted(removed) == sorted([gone, moved_but_replaced])
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, "my-clip", "other"])
    finally:
        live.kill()
        live.wait()


# --- flags, property-based ------------------------------------------------------------------

_number_text = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                         st.integers(-10**6, 10**6).map(str),
                         st.text(alphabet="0123456789-+.eEinfaxX× ,", max_size=10), st.text(max_size=8))
_FLAGS = ("--mass", "--fov", "--focal-px", "--visibility-min", "--max-gap", "--cutoff-hz", "--filter-order",
          "--augmentation-cycles", "--scail-size")


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.fixed_dictionaries({}, optional={f: _number_text for f in _FLAGS}))
def test_numeric_flags_accept_or_refuse_cleanly(values):
    if "--fov" in values and "--focal-px" in values:
        values.pop("--fov")
    argv = ["run", "video.mp4", "--height", "1.7", *(f"{k}={v}" for k, v in values.items())]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            cfg = config_from_args(build_parser().parse_args(argv))
    except SystemExit as exc:
        assert exc.code == 2
        assert "see --help" in assert_one_error_line(stderr.getvalue())
        return
    except EngineError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert 10 <= cfg.mass_kg <= 400 and 1 <= cfg.fov_deg <= 170
    assert cfg.focal_px is None or (np.isfinite(cfg.focal_px) and cfg.focal_px > 0)
    assert 0 <= cfg.visibility_min <= 1 and cfg.max_gap_s >= 0 and np.isfinite(cfg.max_gap_s)
    assert cfg.cutoff_hz >= 0 and np.isfinite(cfg.cutoff_hz)
    assert cfg.filter_order % 2 == 0 and 2 <= cfg.filter_order <= 12
    assert 1 <= cfg.augmentation_cycles <= 32
    if cfg.scail_size is not None:
        assert all(16 <= s <= 4096 and s % 2 == 0 for s in cfg.scail_size)
