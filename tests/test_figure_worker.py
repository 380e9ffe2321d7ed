"""The angle figures are drawn by two processes at once (engine/figure_worker.py): on Linux the
helper and its fork, elsewhere this process and the helper. Each really draws its share, and when
the helper (or its fork) dies, is cancelled or cannot start, the files are still all there (or, on
cancel, no process is left behind)."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from angle_data import synthetic_angles

from engine import angle_plots, figure_worker


def _jobs(folder: Path, frames: int = 90) -> tuple[list, list, set[str]]:
    """Two shares; the first joints' figures with SVG, the others without (the default)."""
    t = np.arange(frames) / 30.0
    angles = synthetic_angles(t, amplitude=40.0)
    shade = {"knee": {"r": t < 0.5, "l": np.zeros(frames, bool)}}
    common = {"folder": folder, "stem": "clip", "time_s": t, "angles": angles, "title": "clip",
              "uncertain": shade}
    joints = list(angle_plots.JOINTS)
    here = [("joints", {**common, "joints": joints[:5], "svg": True}), ("overview", common)]
    there = [("joints", {**common, "joints": joints[5:]}),
             ("report", {"path": folder / "clip_report.pdf", "stem": "clip", "time_s": t, "angles": angles,
                         "subject": {"video": "clip.mp4"}, "quality": {"detected_share": "1.0"},
                         "uncertain": shade})]
    names = {f"clip_{j}.png" for j in joints} | {f"clip_{j}.svg" for j in joints[:5]}
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


@pytest.fixture(params=[True, False], ids=["helper forks", "helper and caller"])
def forks(request, monkeypatch) -> bool:
    """Both ways of sharing: Linux's (the helper forks) and the others' (the caller draws too)."""
    monkeypatch.setattr(figure_worker, "FORKS", request.param)
    return request.param


def test_the_shares_are_drawn_by_two_processes(tmp_path: Path, drawn_here, monkeypatch, forks) -> None:
    monkeypatch.setattr(figure_worker, "EXIT_S", 120.0)  # its exit after the reply, under CI's load
    figure_worker.prepare()
    worker = figure_worker._worker
    assert worker is not None and worker.alive()
    here, there, names = _jobs(tmp_path)
    assert figure_worker.draw_shared(here, there) == 2
    # The helper and its fork drew everything, or the helper the report and the other joints.
    assert drawn_here == ([] if forks else ["joints", "overview"])
    assert worker.proc.returncode == 0
    _check_files(tmp_path, names)


FAILING_FORK = """
import os, pickle, sys
from engine import angle_plots, figure_worker
real, me = angle_plots.draw, os.getpid()

def draw(jobs):
    if os.getpid() != me:
        raise RuntimeError("this fork fails")
    real(jobs)

angle_plots.draw = draw
print(figure_worker.draw_forked(pickle.load(sys.stdin.buffer)))
"""


def test_a_share_whose_fork_fails_is_drawn_by_the_helper(tmp_path: Path) -> None:
    here, there, names = _jobs(tmp_path)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", FAILING_FORK], input=pickle.dumps([here, there]),
                          capture_output=True, cwd=root, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode().split() == ["1"]  # one process drew: the fork's share fell back
    _check_files(tmp_path, names)


def test_a_helper_that_dies_leaves_its_share_to_the_caller(tmp_path: Path, drawn_here, monkeypatch,
                                                          forks) -> None:
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


def test_a_cancel_stops_the_helper_and_skips_its_share(tmp_path: Path, drawn_here, forks) -> None:
    figure_worker.prepare()
    worker = figure_worker._worker
    cancel = threading.Event()
    cancel.set()
    here, there, _ = _jobs(tmp_path)
    figure_worker.draw_shared(here, there, cancel=cancel)
    assert drawn_here == ([] if forks else ["joints", "overview"])
    assert worker.proc.poll() is not None  # no helper left behind


def _stat(pid: int) -> list[str] | None:
    """/proc's state and parent of `pid` (fields after the name); None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _running(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")  # a zombie draws nothing


def _children(pid: int) -> list[int]:
    return [int(d.name) for d in Path("/proc").iterdir()
            if d.name.isdigit() and (_stat(int(d.name)) or ["", ""])[1] == str(pid)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the helper forks only on Linux")
def test_a_cancel_mid_way_leaves_no_fork_drawing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(figure_worker, "FORKS", True)
    assert figure_worker.prepare()
    helper = figure_worker._worker.proc.pid
    cancel = threading.Event()
    here, there, _ = _jobs(tmp_path, frames=40_000)  # seconds a share, on any machine
    drawing = threading.Thread(target=figure_worker.draw_shared, args=(here, there),
                               kwargs={"cancel": cancel})
    drawing.start()
    forks: list[int] = []
    deadline = time.monotonic() + 120  # the helper first finishes loading matplotlib
    while not forks and _running(helper) and time.monotonic() < deadline:
        forks = _children(helper)
        time.sleep(0.02)
    assert forks, "the helper never forked"
    cancel.set()
    drawing.join(60)
    assert not drawing.is_alive() and not _running(helper)
    # Its fork was killed with it (PR_SET_PDEATHSIG): no process is left writing figures.
    deadline = time.monotonic() + 10
    while any(map(_running, forks)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(map(_running, forks))
    assert not (tmp_path / "clip_report.pdf").exists()  # the fork's share was not finished


KILLED_RUN = """
import pickle, sys
from engine import figure_worker
here, there = pickle.load(sys.stdin.buffer)
figure_worker.prepare()
figure_worker.draw_shared(here, there)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the helper forks only on Linux")
def test_a_run_killed_outright_takes_its_helper_and_fork_with_it(tmp_path: Path) -> None:
    """The add-on's last resort (a run stuck after a cancel, Blender closing) is a kill: the
    helper, busy drawing rather than reading its stdin, must not go on writing figures."""
    here, there, _ = _jobs(tmp_path, frames=40_000)
    root = Path(__file__).resolve().parents[1]
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN], stdin=subprocess.PIPE, cwd=root,
                           env={**os.environ, "PYTHONPATH": str(root)})
    run.stdin.write(pickle.dumps([here, there]))
    run.stdin.close()
    helper, forks = None, []
    deadline = time.monotonic() + 120  # the helper first finishes loading matplotlib
    while not forks and run.poll() is None and time.monotonic() < deadline:
        helper = next(iter(_children(run.pid)), None)
        forks = _children(helper) if helper is not None else []
        time.sleep(0.02)
    assert forks, "the helper never forked"
    run.kill()
    run.wait()
    deadline = time.monotonic() + 10
    while any(map(_running, [helper, *forks])) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(map(_running, [helper, *forks]))
    assert not {"clip_all_joint_angles.png", "clip_report.pdf"} & {f.name for f in tmp_path.iterdir()}


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
                                                                   monkeypatch, forks) -> None:
    class Hung(figure_worker.FigureWorker):  # a helper that never reads its jobs nor answers
        def __init__(self, python: str) -> None:
            self.proc = subprocess.Popen([python, "-c", "import time; time.sleep(120)"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            self._reply, self._reader = None, None

    figure_worker.shutdown()
    monkeypatch.setattr(figure_worker, "FigureWorker", Hung)
    monkeypatch.setattr(figure_worker, "STALL_S", 1.0)
    monkeypatch.setattr(figure_worker, "_DRAW_S", 0.5)  # where this process draws nothing itself
    figure_worker.prepare()
    hung = figure_worker._worker
    # 5 minutes at 30 fps: more than a pipe holds, so handing it over blocks until given up.
    here, there, names = _jobs(tmp_path, frames=9000)
    figure_worker.draw_shared(here, there)
    assert drawn_here == ["joints", "overview", "joints", "report"]
    assert hung.proc.poll() is not None  # killed, not left behind
    _check_files(tmp_path, names)
