"""The Run operator's child process (engine/service.py's ChildRun, engine/child.py): its JSON-lines
events, cancelling it, its errors, and the modal operator driving a real child to a built scene
(Blender's event loop simulated by calling `modal` with timer events, which is all the loop does)."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import demo_video, load_headless

HEIGHT = "1.72"


pkg = load_headless().load_package()
service = importlib.import_module("humanpose3d.engine.service")  # no bpy in here
config = importlib.import_module("humanpose3d.engine.config")
errors = importlib.import_module("humanpose3d.engine.errors")


def _child(video: Path, out: Path | None = None, python: str = sys.executable, **kw):
    kw.setdefault("height_m", float(HEIGHT))
    cfg = config.RunConfig(video=video, out_dir=out or Path("output"), **kw)
    return service.ChildRun(cfg, python)


@pytest.fixture(scope="module")
def video() -> Path:
    return demo_video()


def _drain(job, timeout: float = 120.0) -> list:
    events: list = []
    deadline = time.monotonic() + timeout
    while not job.finished:
        assert time.monotonic() < deadline, "engine child did not finish"
        events += job.poll()
        time.sleep(0.02)
    job.wait(timeout=10)
    return events + job.poll()


def test_runner_reports_progress_then_the_output_folder(video: Path, tmp_path: Path) -> None:
    job = _child(video, tmp_path, frames=(0, 10))
    events = _drain(job)
    assert job.returncode == 0, list(job.stderr_tail)
    fractions = [e.fraction for e in events if e.kind == "progress"]
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(isinstance(e.message, str) for e in events)
    stages = [e.stage for e in events if e.kind == "progress"]
    assert stages[0] == "pose" and stages[-1] == "biomechanics", sorted(set(stages))
    assert job.outcome.out_dir == str(tmp_path / video.stem) and job.outcome.frames == 10
    assert (tmp_path / video.stem / f"{video.stem}_markers.npz").is_file()


def test_cancel_stops_the_child_and_leaves_nothing(video: Path, tmp_path: Path) -> None:
    job = _child(video, tmp_path)
    deadline = time.monotonic() + 60
    while not any(e.kind == "progress" and e.fraction > 0 for e in job.poll()):
        assert time.monotonic() < deadline and not job.finished, list(job.stderr_tail)
        time.sleep(0.02)
    t = time.monotonic()
    job.cancel()
    _drain(job, timeout=30)
    assert time.monotonic() - t < 5, "cancel took effect only after the grace period"
    assert job.returncode == 130 and job.outcome.kind == "cancelled" and job.outcome.code == 130
    assert list(tmp_path.iterdir()) == []  # no result, no temporary folder


def test_errors_come_back_as_one_line(tmp_path: Path) -> None:
    job = _child(tmp_path / "nope.mp4", tmp_path / "out")
    _drain(job)
    assert job.returncode == 1 and "video not found" in job.error_text()
    assert "\n" not in job.error_text()
    with pytest.raises(errors.EngineError, match="^--height must be"):  # values: checked once, here
        _child(tmp_path / "nope.mp4", height_m=9)
    # A Python without the engine's packages (the Engine Python preference set wrong): one line
    # naming what is missing and where to choose another.
    bare = tmp_path / "bare-python"
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')  # no site-packages
    bare.chmod(0o755)
    job = service.ChildRun(config.RunConfig(video=tmp_path / "nope.mp4", height_m=1.72), str(bare))
    _drain(job)
    assert job.returncode == 1 and job.error_text().startswith("this Python cannot run the engine"), \
        (job.error_text(), list(job.stderr_tail))
    assert "Engine Python" in job.error_text()


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")
def test_a_stuck_child_is_killed_after_the_grace_period(video: Path, tmp_path: Path) -> None:
    job = _child(video, tmp_path)
    os.kill(job.proc.pid, signal.SIGSTOP)  # a child that cannot answer the cancel line
    job.cancel()
    assert not job.kill_if_stuck(grace_s=30.0)  # still within the grace period
    time.sleep(0.3)
    assert job.kill_if_stuck(grace_s=0.2)
    _drain(job, timeout=10)
    assert job.returncode not in (0, None)
    assert service.wait(job).kind == "cancelled"  # killed after a cancel: said as a cancel


# --- the modal operator -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def registered(addon):
    """bpy, with the add-on registered (conftest's `addon`)."""
    import bpy

    return bpy


def _fake_operator(bpy):
    """An object carrying HP3D_OT_run's methods (a real Operator instance exists only inside an
    operator call) so `modal` can be driven by hand."""
    run = importlib.import_module("humanpose3d.operators.run")
    reports: list[tuple[set, str]] = []
    ns = SimpleNamespace(_timer=None, reports=reports)
    ns.report = lambda kind, msg: reports.append((kind, msg))
    for name in ("modal", "_conclude", "_finish", "cancel"):
        setattr(ns, name, getattr(run.HP3D_OT_run, name).__get__(ns))
    return run, ns


def _pump(bpy, op, max_s: float = 120.0, esc_after: float | None = None) -> set[str]:
    timer = SimpleNamespace(type="TIMER", value="NOTHING")
    esc = SimpleNamespace(type="ESC", value="PRESS")
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_s:
        state = op.modal(bpy.context, timer)
        if state != {"PASS_THROUGH"}:
            return state
        if esc_after is not None and bpy.context.scene.hp3d.progress > esc_after:
            assert op.modal(bpy.context, esc) == {"RUNNING_MODAL"}
            esc_after = None
        time.sleep(0.05)
    raise AssertionError("modal operator never finished")


def modal_child(bpy, video: Path, out: Path, frames: tuple[int, int]):
    """The Run operator's modal state right after it started a child on the panel's settings:
    (operators.run, the operator, the panel's properties, the child run)."""
    run, op = _fake_operator(bpy)
    props = bpy.context.scene.hp3d
    props.video_path, props.output_dir = str(video), str(out)
    props.frame_start, props.frame_stop = frames
    job = service.ChildRun(run.settings.run_config(props), sys.executable)
    run._ACTIVE["run"] = job
    props.running = True
    return run, op, props, job


def test_modal_run_shows_progress_then_builds_the_scene(registered, video: Path, tmp_path: Path) -> None:
    bpy = registered
    run, op, props, job = modal_child(bpy, video, tmp_path, (0, 10))
    seen: list[float] = []
    orig = job.poll

    def spy() -> list:
        events = orig()
        seen.extend(e.fraction for e in events if e.kind == "progress")
        return events

    job.poll = spy
    assert not run.HP3D_OT_run.poll(bpy.context)  # no second run while one is live
    assert _pump(bpy, op) == {"FINISHED"}, op.reports
    assert seen and max(seen) == 1.0
    assert run.active_run() is None and not props.running and props.stage == "done"
    arm = bpy.context.view_layer.objects.active
    assert arm.type == "ARMATURE" and arm["hp3d_output"] == str(tmp_path / video.stem)
    assert (bpy.context.scene.frame_start, bpy.context.scene.frame_end) == (1, 10)


@pytest.mark.skipif(os.name != "posix", reason="uses a shell-script interpreter wrapper")
def test_background_run_uses_the_engine_python_preference(registered, video: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """With an Engine Python other than Blender's, even a background run goes through the child."""
    bpy = registered
    run = importlib.import_module("humanpose3d.operators.run")
    wrapper = tmp_path / "engine-python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(run, "engine_python", lambda context: str(wrapper))
    props = bpy.context.scene.hp3d
    props.video_path, props.output_dir = str(video), str(tmp_path / "out")
    props.frame_start, props.frame_stop = 0, 5
    assert bpy.ops.humanpose3d.run() == {"FINISHED"}
    assert props.result_dir == str(tmp_path / "out" / video.stem) and props.stage == "done"
    monkeypatch.setattr(run, "engine_python", lambda context: str(tmp_path / "no-such-python"))
    with pytest.raises(RuntimeError, match="cannot start the engine's Python"):
        bpy.ops.humanpose3d.run()


def test_escape_cancels_the_modal_run(registered, video: Path, tmp_path: Path) -> None:
    bpy = registered
    before = set(bpy.data.objects.keys())
    run, op, props, _ = modal_child(bpy, video, tmp_path, (0, 0))
    assert _pump(bpy, op, esc_after=0.05) == {"CANCELLED"}
    assert ({"WARNING"}, "cancelled; nothing was written") in op.reports
    assert run.active_run() is None and not props.running
    assert set(bpy.data.objects.keys()) == before
    assert list(tmp_path.iterdir()) == []
