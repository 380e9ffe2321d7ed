"""The angle figures are drawn by this process and a helper process at once
(engine/figure_worker.py): the helper really draws its share, and when it dies, is cancelled or
cannot start, the files are still all there (or, on cancel, the helper is gone)."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine import angle_plots, figure_worker
from engine.isb_angles import ALL_GROUPS


def _angles(frames: int = 90) -> dict[str, dict[str, np.ndarray]]:
    t = np.arange(frames) / 30.0
    out = {}
    for k, group in enumerate(ALL_GROUPS):
        comps = ("plane", "elev", "rot") if group.startswith("humerothoracic") else ("flex", "abd", "rot")
        out[group] = {f"{group}_{c}_deg": 40 * np.sin(2 * t + k + j) for j, c in enumerate(comps)}
    return out


def _jobs(folder: Path, frames: int = 90) -> tuple[list, list, set[str]]:
    angles, t = _angles(frames), np.arange(frames) / 30.0
    shade = {"knee": {"r": t < 0.5, "l": np.zeros(frames, bool)}}
    common = {"folder": folder, "stem": "clip", "time_s": t, "angles": angles, "title": "clip",
              "uncertain": shade}
    joints = list(angle_plots.JOINTS)
    here = [("joints", {**common, "joints": joints[:5]}), ("overview", common)]
    there = [("joints", {**common, "joints": joints[5:]}),
             ("report", {"path": folder / "clip_report.pdf", "stem": "clip", "time_s": t, "angles": angles,
                         "subject": {"video": "clip.mp4"}, "quality": {"detected_share": "1.0"},
                         "uncertain": shade})]
    names = {f"clip_{j}.{ext}" for j in joints for ext in ("png", "svg")}
    return here, there, names | {"clip_all_joint_angles.png", "clip_report.pdf"}


@pytest.fixture
def drawn_here(monkeypatch) -> list[str]:
    """The job kinds this process draws (the helper's are drawn in its own process)."""
    seen: list[str] = []
    real = angle_plots.draw

    def draw(jobs):
        seen.extend(name for name, _ in jobs)
        real(jobs)

    monkeypatch.setattr(angle_plots, "draw", draw)
    return seen


def _check_files(folder: Path, names: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == names
    for name in names:
        if name.endswith(".png"):
            img = cv2.imread(str(folder / name))
            size = (1200, 1800) if "all_joint" in name else (900, 1600)
            assert img is not None and img.shape[:2] == size, name
            assert img.std() > 10, name  # drawn, not blank
    pdf = (folder / "clip_report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1


def test_the_helper_draws_its_share_in_another_process(tmp_path: Path, drawn_here, monkeypatch) -> None:
    monkeypatch.setattr(figure_worker, "EXIT_S", 120.0)  # its exit after the reply, under CI's load
    figure_worker.prepare()
    worker = figure_worker._worker
    assert worker is not None and worker.alive()
    here, there, names = _jobs(tmp_path)
    figure_worker.draw_shared(here, there)
    assert drawn_here == ["joints", "overview"]  # the report and the other joints came from the helper
    assert worker.proc.returncode == 0
    _check_files(tmp_path, names)


def test_a_helper_that_dies_leaves_its_share_to_the_caller(tmp_path: Path, drawn_here, monkeypatch) -> None:
    real_run = figure_worker.FigureWorker.run

    def run_then_die(self, jobs):
        sent = real_run(self, jobs)
        self.proc.kill()
        return sent

    monkeypatch.setattr(figure_worker.FigureWorker, "run", run_then_die)
    figure_worker.prepare()
    here, there, names = _jobs(tmp_path)
    figure_worker.draw_shared(here, there)
    assert drawn_here == ["joints", "overview", "joints", "report"]
    _check_files(tmp_path, names)


def test_a_cancel_stops_the_helper_and_skips_its_share(tmp_path: Path, drawn_here) -> None:
    figure_worker.prepare()
    worker = figure_worker._worker
    cancel = threading.Event()
    cancel.set()
    here, there, _ = _jobs(tmp_path)
    figure_worker.draw_shared(here, there, cancel=cancel)
    assert drawn_here == ["joints", "overview"]
    assert worker.proc.poll() is not None  # no helper left behind


@pytest.mark.parametrize("how", ["switched off", "no python to start"])
def test_without_a_helper_everything_is_drawn_here(tmp_path: Path, drawn_here, monkeypatch, how) -> None:
    figure_worker.shutdown()
    if how == "switched off":
        monkeypatch.setenv("HP3D_FIGURE_WORKER", "0")
    else:  # Blender's own binary as sys.executable: nothing to start a helper with
        monkeypatch.setattr(figure_worker.sys, "executable", "/opt/blender/blender")
    figure_worker.prepare()
    assert figure_worker.take() is None
    here, there, names = _jobs(tmp_path)
    figure_worker.draw_shared(here, there)
    assert drawn_here == ["joints", "overview", "joints", "report"]
    _check_files(tmp_path, names)


def test_a_waiting_helper_ends_when_told_and_is_reused_until_then(monkeypatch) -> None:
    # Under CI's load the helper (nice 10) may still be importing matplotlib when told: given the
    # time, it reads the end of its stdin and exits 0 rather than being killed.
    monkeypatch.setattr(figure_worker, "EXIT_S", 120.0)
    figure_worker.prepare()
    first = figure_worker._worker
    figure_worker.prepare()  # a second run's warm-up finds it waiting
    assert figure_worker._worker is first
    figure_worker.shutdown()
    assert first.proc.returncode == 0 and figure_worker.take() is None


def test_a_helper_that_hangs_is_given_up_and_its_share_drawn_here(tmp_path: Path, drawn_here,
                                                                   monkeypatch) -> None:
    class Hung(figure_worker.FigureWorker):  # a helper that never reads its jobs nor answers
        def __init__(self, python: str) -> None:
            self.proc = subprocess.Popen([python, "-c", "import time; time.sleep(120)"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self._reply, self._reader = None, None

    figure_worker.shutdown()
    monkeypatch.setattr(figure_worker, "FigureWorker", Hung)
    monkeypatch.setattr(figure_worker, "STALL_S", 1.0)
    figure_worker.prepare()
    hung = figure_worker._worker
    # 5 minutes at 30 fps: more than a pipe holds, so handing it over blocks until given up.
    here, there, names = _jobs(tmp_path, frames=9000)
    figure_worker.draw_shared(here, there)
    assert drawn_here == ["joints", "overview", "joints", "report"]
    assert hung.proc.poll() is not None  # killed, not left behind
    _check_files(tmp_path, names)
