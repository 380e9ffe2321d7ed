"""One engine run with --mesh on a slice of Pose2Sim's cam01, shared by tests/test_mesh_engine.py and
tests/test_mesh_blender.py (whichever asks first runs it; the other reuses its folder)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

N_FRAMES = 16
FORMATS = ("obj", "ply", "glb")
_RUNS: dict[str, object] = {}


def mesh_run(cam01: Path, tmp_path_factory: pytest.TempPathFactory):
    """(RunResult, progress reports) of `run` with mesh=True on frames 0:16 of cam01."""
    if "run" not in _RUNS:
        pytest.importorskip("anny")
        from conftest import HEIGHT_M

        from engine.config import RunConfig
        from engine.pipeline import run

        out = tmp_path_factory.mktemp("mesh_run")
        progress: list[tuple[float, str]] = []
        cfg = RunConfig(video=cam01, height_m=HEIGHT_M, out_dir=out, frames=(0, N_FRAMES), mesh=True,
                        mesh_formats=FORMATS, joint_angles=False)
        result = run(cfg, progress=lambda f, m: progress.append((f, m)), cancel=threading.Event())
        _RUNS["run"] = (result, progress)
    return _RUNS["run"]
