"""Bad input through the CLI, run as a user runs it (`python -m engine run ...` in a subprocess).

Every failure must: exit non-zero, print exactly one `error: ...` line on stderr and no traceback,
and leave nothing behind: no output folder, no `.hp3d-tmp-*`, and an earlier result untouched.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import HEIGHT_M, assert_one_error_line, leftovers, run_cli
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.cli import build_parser, config_from_args
from engine.config import RunConfig
from engine.errors import EngineError
from engine.outputs import TMP_PREFIX
from engine.video import probe, stream_frames

CLIP_FRAMES = 30


def assert_failed_cleanly(proc: subprocess.CompletedProcess, out: Path, pattern: str = "",
                          codes: tuple[int, ...] = (1, 2)) -> str:
    assert proc.returncode in codes, f"exit {proc.returncode}, stderr: {proc.stderr!r}"
    line = assert_one_error_line(proc.stderr)
    assert re.search(pattern, line, re.IGNORECASE), f"{line!r} does not match {pattern!r}"
    assert proc.stdout == "", proc.stdout
    assert not out.exists(), f"a failed run created {out}: {leftovers(out)}"
    stray = [p for p in out.parent.rglob(TMP_PREFIX + "*")]
    assert stray == [], f"temporary folders left behind: {stray}"
    return line


# --- files that are not (whole) videos -------------------------------------------------------


def _write_video(path: Path, frames: list[np.ndarray], fps: float, fourccs: tuple[str, ...]) -> str:
    """Write frames with the first codec this OpenCV build can encode and read back; returns it."""
    for code in fourccs:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*code), fps,
                                 (frames[0].shape[1], frames[0].shape[0]))
        if not writer.isOpened():
            continue
        for f in frames:
            writer.write(f)
        writer.release()
        cap = cv2.VideoCapture(str(path))
        n = 0
        while cap.read()[0]:
            n += 1
        cap.release()
        if n == len(frames):
            return code
    raise AssertionError(f"none of {fourccs} can write a readable {path.suffix} here")


@pytest.fixture(scope="session")
def videos(cam01: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real short clip cut from cam01 and broken copies of it, plus files that are not videos."""
    d = tmp_path_factory.mktemp("bad_videos")
    cap = cv2.VideoCapture(str(cam01))
    person = [cv2.resize(cap.read()[1], (270, 480)) for _ in range(CLIP_FRAMES)]
    cap.release()
    v: dict[str, Path] = {"clip": d / "clip.mp4", "clip_avi": d / "clip.avi"}
    _write_video(v["clip"], person, 60, ("mp4v", "avc1"))
    _write_video(v["clip_avi"], person, 60, ("MJPG", "XVID"))

    data = v["clip"].read_bytes()
    v["truncated"] = d / "truncated.mp4"  # MP4 index (moov) is at the end: nothing decodes
    v["truncated"].write_bytes(data[: len(data) // 2])
    avi = v["clip_avi"].read_bytes()
    v["truncated_avi"] = d / "truncated.avi"  # AVI streams: the first half decodes, then it stops
    v["truncated_avi"].write_bytes(avi[: len(avi) // 2])
    flipped = bytearray(data)
    mid = len(flipped) // 2
    flipped[mid - 20_000: mid + 20_000] = bytes(b ^ 0xFF for b in flipped[mid - 20_000: mid + 20_000])
    v["flipped"] = d / "flipped.mp4"
    v["flipped"].write_bytes(bytes(flipped))

    rng = np.random.default_rng(0)
    v["noise"] = d / "noise.mp4"
    _write_video(v["noise"], [rng.integers(0, 256, (240, 320, 3), np.uint8) for _ in range(20)], 30,
                 ("mp4v", "avc1"))
    wall = np.full((240, 320, 3), (170, 180, 190), np.uint8)
    cv2.rectangle(wall, (100, 60), (220, 180), (90, 100, 110), -1)  # a door in a wall, no one in it
    v["blank_wall"] = d / "blank_wall.mp4"
    _write_video(v["blank_wall"], [wall] * 20, 30, ("mp4v", "avc1"))

    v["text"] = d / "notes.mp4"
    v["text"].write_text("these are meeting notes, not a video\n" * 20)
    v["empty"] = d / "empty.mp4"
    v["empty"].touch()
    v["directory"] = d / "folder.mp4"
    v["directory"].mkdir()
    v["missing"] = d / "missing.mp4"
    return v


def test_the_source_clips_are_whole_videos(videos):
    """The broken copies fail because they are broken: the clips they come from decode fully."""
    for name in ("clip", "clip_avi"):
        info = probe(videos[name])
        assert (info.fps, info.frame_count, info.width, info.height) == (60, CLIP_FRAMES, 270, 480)
        assert [i for i, _ in stream_frames(info, 0, CLIP_FRAMES)] == list(range(CLIP_FRAMES))


@pytest.mark.parametrize("name,pattern", [
    ("missing", "not found"),
    ("directory", "directory"),
    ("empty", "empty"),
    ("text", "cannot read video|not a video"),
    ("truncated", "cannot read video|truncated|corrupt"),
    ("truncated_avi", r"truncated.*frame \d+ of 30"),
    ("flipped", "truncated|corrupt"),
    ("noise", "no person"),
    ("blank_wall", "no person"),
])
def test_bad_video(videos, tmp_path, name, pattern):
    out = tmp_path / "out"
    proc = run_cli("run", videos[name], "--height", HEIGHT_M, "--out", out)
    assert_failed_cleanly(proc, out, pattern, codes=(1,))


# --- where the results would go --------------------------------------------------------------


def _make_unwritable(folder: Path) -> list[str]:
    """Make `folder` refuse new entries, also for root; returns how. Fails where nothing can: a
    skipped test would prove nothing (test_output_under_a_file covers a failing write anywhere)."""
    how = []
    folder.chmod(0o555)
    how.append("chmod 555")
    if _writable(folder) and shutil.which("chattr"):
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
            how.append("chattr +i")
    if _writable(folder):
        _restore(folder)
        pytest.fail("cannot make a folder read-only here (root without CAP_LINUX_IMMUTABLE): run "
                    "the tests as a normal user, or where chattr +i works")
    return how


def _writable(folder: Path) -> bool:
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder))
    except OSError:
        return False
    return True


def _restore(folder: Path) -> None:
    if shutil.which("chattr"):
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    folder.chmod(0o755)


@pytest.mark.parametrize("sub", ["", "new/deeper"], ids=["the-folder", "a-new-folder-inside"])
def test_read_only_output_folder(cam01, tmp_path, sub):
    ro = tmp_path / "readonly"
    ro.mkdir()
    _make_unwritable(ro)
    try:
        out = ro / sub if sub else ro
        proc = run_cli("run", cam01, "--height", HEIGHT_M, "--out", out)
        line = assert_one_error_line(proc.stderr)
        assert proc.returncode == 1 and re.search("cannot write|permission|read-only", line, re.I), line
        assert list(ro.iterdir()) == []
    finally:
        _restore(ro)


def test_output_path_is_a_file(cam01, tmp_path):
    target = tmp_path / "results"
    target.write_text("keep me")
    proc = run_cli("run", cam01, "--height", HEIGHT_M, "--out", target)
    assert proc.returncode == 1
    assert "file" in assert_one_error_line(proc.stderr)
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_output_under_a_file(cam01, tmp_path):
    """A write that fails for everyone, root included: the output folder would sit inside a file."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    proc = run_cli("run", cam01, "--height", HEIGHT_M, "--out", blocker / "out")
    assert proc.returncode == 1
    assert "cannot write" in assert_one_error_line(proc.stderr)
    assert blocker.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_existing_output_is_kept_without_force(cam01, tmp_path):
    out = tmp_path / "out"
    old = out / "cam01"
    old.mkdir(parents=True)
    (old / "run.json").write_text('{"completed": true, "note": "an earlier result"}')
    (old / "cam01_initial.trc").write_text("old trc")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in old.iterdir()}
    proc = run_cli("run", cam01, "--height", HEIGHT_M, "--out", out)
    assert proc.returncode == 1
    line = assert_one_error_line(proc.stderr)
    assert "already exists" in line and "--force" in line
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in old.iterdir()} == before
    assert [p.name for p in out.iterdir()] == ["cam01"]


# --- flags -----------------------------------------------------------------------------------


BAD_FLAGS = [
    (["--height", "1.7", "--bogus"], "unrecognized", (2,)),
    (["--height", "-1"], "height", (1, 2)),
    (["--height", "0"], "height", (1, 2)),
    (["--height", "abc"], "height", (2,)),
    (["--height", "5"], "height", (1, 2)),
    (["--height", "nan"], "height", (1, 2)),
    (["--height", "inf"], "height", (1, 2)),
    ([], "height", (2,)),
    (["--height", "1.7", "--frames", "50:10"], "frames", (2,)),
    (["--height", "1.7", "--frames", "10:10"], "frames", (2,)),
    (["--height", "1.7", "--frames", "a:b"], "frames", (2,)),
    (["--height", "1.7", "--frames", "500:600"], "frames.*past the end", (1,)),
    (["--height", "1.7", "--roi", "1,2,3"], "roi", (2,)),
    (["--height", "1.7", "--roi", "1e400,0,10,10"], "roi", (2,)),
    (["--height", "1.7", "--roi", "0,0,0,10"], "roi", (2,)),
    (["--height", "1.7", "--roi", "5000,5000,10,10"], "roi.*outside", (1,)),
    (["--height", "1.7", "--fov", "0"], "fov", (1, 2)),
    (["--height", "1.7", "--fov", "60", "--focal-px", "1000"], "not allowed with", (2,)),
    (["--height", "1.7", "--focal-px", "-5"], "focal", (1, 2)),
    (["--height", "1.7", "--cutoff-hz", "-1"], "cutoff", (1, 2)),
    (["--height", "1.7", "--filter-order", "3"], "filter-order", (1, 2)),
    (["--height", "1.7", "--filter-order", "1000"], "filter-order", (1, 2)),
    (["--height", "1.7", "--visibility-min", "2"], "visibility", (1, 2)),
    (["--height", "1.7", "--mass", "0"], "mass", (1, 2)),
    (["--height", "1.7", "--sync-offsets", "0,x"], "sync-offsets.*whole frame numbers", (2,)),
]


@pytest.mark.parametrize("flags,pattern,codes", BAD_FLAGS,
                         ids=[" ".join(f[0]) or "no-height" for f in BAD_FLAGS])
def test_bad_flags(cam01, tmp_path, flags, pattern, codes):
    out = tmp_path / "out"
    proc = run_cli("run", cam01, "--out", out, *flags)
    assert_failed_cleanly(proc, out, pattern, codes)


def test_missing_video_argument_and_command(tmp_path):
    for args in (["run", "--height", "1.7"], [], ["frobnicate"]):
        proc = run_cli(*args, "--out", tmp_path / "out") if args else run_cli()
        assert proc.returncode == 2, (args, proc.stderr)
        assert_one_error_line(proc.stderr)
    assert list(tmp_path.iterdir()) == []


# --- argument parsing, property-based --------------------------------------------------------

_numberish = st.text(alphabet="0123456789-+.,:eEinfa x_٣", max_size=14)
_anything = st.text(max_size=14)


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.one_of(_numberish, _anything, st.none()), roi=st.one_of(_numberish, _anything, st.none()),
       height=st.one_of(_numberish, st.floats(allow_nan=True).map(repr), st.none()))
@example(frames="5:", roi="1e400,0,10,10", height="1.7")
@example(frames=":9", roi="nan,0,1,1", height="-0")
@example(frames="0:99999999999999999999", roi="-0.5,0,10,10", height="2.6")
@example(frames="-3:4", roi="1,2,3,4,5", height="1e309")
def test_cli_parsing_accepts_or_refuses_cleanly(frames, roi, height):
    argv = ["run", "video.mp4"]
    for flag, value in (("--frames", frames), ("--roi", roi), ("--height", height)):
        if value is not None:
            argv.append(f"{flag}={value}")
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            cfg = config_from_args(build_parser().parse_args(argv))
    except SystemExit as exc:
        assert exc.code == 2
        line = assert_one_error_line(stderr.getvalue())
        assert "see --help" in line
        return
    except EngineError as exc:
        message = str(exc)
        assert message and "\n" not in message
        return
    assert isinstance(cfg, RunConfig)
    assert 0.5 <= cfg.height_m <= 2.6
    if cfg.frames is not None:
        start, stop = cfg.frames
        assert isinstance(start, int) and start >= 0 and (stop is None or stop > start)
    if cfg.roi is not None:
        assert len(cfg.roi) == 4 and min(cfg.roi[:2]) >= 0 and min(cfg.roi[2:]) > 0


def test_parser_round_trip_of_a_good_command_line():
    args = build_parser().parse_args(["run", "v.mp4", "--height", "1.8", "--frames", "10:20", "--roi",
                                      "1,2,30,40", "--focal-px", "1500", "--free-bone-lengths", "--force"])
    cfg = config_from_args(args)
    assert (cfg.height_m, cfg.frames, cfg.roi, cfg.focal_px) == (1.8, (10, 20), (1, 2, 30, 40), 1500.0)
    assert cfg.hold_bone_lengths is False and cfg.force is True and cfg.video == Path("v.mp4")


def test_read_only_fixture_really_blocks_writes(tmp_path):
    """Guard for test_read_only_output_folder: the folder it uses must refuse a write."""
    ro = tmp_path / "ro"
    ro.mkdir()
    how = _make_unwritable(ro)
    try:
        with pytest.raises(OSError):
            (ro / "probe.txt").write_text("x")
        assert how and stat.S_IMODE(ro.stat().st_mode) == 0o555
    finally:
        _restore(ro)
