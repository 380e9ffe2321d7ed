"""Shared fixtures for the engine tests: the real demo videos, one engine run on a slice of the
Pose2Sim demo shared by the whole session, and a helper that runs the CLI as a user would."""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `import engine` when pytest is run from elsewhere
    sys.path.insert(0, str(REPO_ROOT))

HEIGHT_M = 1.72
CAM01_SLICE = (0, 60)  # 1 s of the 60 fps demo: enough for filtering, cheap on 2 cores


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engine_run: runs MediaPipe on real video (a few seconds)")


@functools.cache
def load_headless() -> types.ModuleType:
    """headless.py, loaded once; its load_package() imports the add-on as Blender does, under the
    package name `humanpose3d`. Import bpy before calling."""
    spec = importlib.util.spec_from_file_location("_hp3d_headless", REPO_ROOT / "headless.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def addon() -> Iterator[types.ModuleType]:
    """The add-on, imported as Blender imports it, registered in an empty scene for one test
    module's tests (bpy is imported only by the modules that ask for this)."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    pkg = load_headless().load_package()
    pkg.register()
    yield pkg
    pkg.unregister()


def drawn(panel: type, context: object) -> list[tuple]:
    """Call a Panel class's `draw` with a layout that records every call, (name, args, kwargs),
    and returns another such layout (rows, columns, boxes …); its own `draw_options`, if any, is
    bound as Blender would."""
    calls: list[tuple] = []

    class Layout:
        def __getattr__(self, name: str) -> Callable:
            def record(*args, **kwargs):
                calls.append((name, args, kwargs))
                return Layout()
            return record

    this = SimpleNamespace(layout=Layout())
    if hasattr(panel, "draw_options"):
        this.draw_options = types.MethodType(panel.draw_options, this)
    panel.draw(this, context)
    return calls


def assert_drawn_names_exist(calls: list[tuple], ops: object) -> None:
    """Every property a drawn panel shows exists on its owner, and every operator it offers is
    registered in `ops` (bpy.ops)."""
    for name, args, _ in calls:
        if name in ("prop", "prop_search"):
            assert hasattr(args[0], args[1]), args
        if name == "operator":
            group, op = args[0].split(".")
            assert hasattr(getattr(ops, group), op), args[0]


def demo_video() -> Path:
    """Pose2Sim's single-person demo, camera 1 (installed by the bootstrap with pose2sim)."""
    return _package_file("Pose2Sim", "Demo_SinglePerson", "videos", "cam01.mp4")


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"{package} is not installed (run `make test`, which bootstraps it): its demo video "
                    "is the tests' real data")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    assert path.is_file(), f"{package} is installed but {path} is missing"
    return path


@pytest.fixture(scope="session")
def cam01() -> Path:
    """Pose2Sim's single-person demo, camera 1: 60 fps, 100 frames, 1080x1920 portrait."""
    return _package_file("Pose2Sim", "Demo_SinglePerson", "videos", "cam01.mp4")


@pytest.fixture(scope="session")
def sports2d_demo() -> Path:
    """Sports2D's demo: two people outdoors, 30 fps, 1768x994."""
    return _package_file("Sports2D", "Demo", "demo.mp4")


@dataclass
class SessionRun:
    result: object  # engine.pipeline.RunResult
    progress: list[tuple[float, str]]
    out_dir: Path


@pytest.fixture(scope="session")
def cam01_run(cam01: Path, tmp_path_factory: pytest.TempPathFactory) -> SessionRun:
    """The engine run once through its Python API on frames 0:60 of cam01, shared by every test
    that inspects a successful run's files and arrays (SVG figures asked for, so they are checked
    too)."""
    from engine.config import RunConfig
    from engine.pipeline import run

    out = tmp_path_factory.mktemp("cam01_run") / "out"
    progress: list[tuple[float, str]] = []
    result = run(RunConfig(video=cam01, height_m=HEIGHT_M, out_dir=out, frames=CAM01_SLICE, angle_svg=True),
                 progress=lambda f, m: progress.append((f, m)), cancel=threading.Event())
    return SessionRun(result, progress, out)


@pytest.fixture(scope="session")
def face_run(sports2d_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> object:
    """A --holistic run on frames 0:75 of Sports2D's demo, where the man's face is found in 20
    frames (the Pose2Sim demos' faces are mosaic-blurred), without joint angles; its RunResult."""
    from engine.config import RunConfig
    from engine.pipeline import run

    out = tmp_path_factory.mktemp("face") / "out"
    return run(RunConfig(video=sports2d_demo, height_m=HEIGHT_M, out_dir=out, frames=(0, 75), holistic=True,
                         joint_angles=False))


@pytest.fixture(scope="session")
def holistic_run(cam01: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of a --holistic run on the whole of cam01 (hands tracked: the fingers'
    tests), without joint angles."""
    from engine.config import RunConfig
    from engine.pipeline import run

    out = tmp_path_factory.mktemp("holistic") / "out"
    cfg = RunConfig(video=cam01, height_m=HEIGHT_M, out_dir=out, holistic=True, joint_angles=False)
    return run(cfg).out_dir


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HP3D_DEBUG", None)  # tracebacks on request only; the tests check they never appear
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def run_cli(*args: str | os.PathLike, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m engine ARGS` from the repository root, exactly as the README has users run it."""
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=REPO_ROOT,
                          env=cli_env(), capture_output=True, text=True, timeout=timeout)


def popen_cli(*args: str | os.PathLike) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine", *map(str, args)], cwd=REPO_ROOT,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def leftovers(folder: Path) -> list[Path]:
    """Everything inside `folder` (recursively), or [] if it does not exist."""
    return sorted(folder.rglob("*")) if folder.exists() else []


def assert_hands_on_wrists(track, who: str = "") -> None:
    """Every hand a --holistic track kept starts at its own side's wrist of that track's body
    (within engine/holistic.HAND_REACH person sizes)."""
    from engine.holistic import _WRISTS, HAND_REACH
    from engine.tracking import pose_box, size

    for side, wrist in enumerate(_WRISTS):
        for i in np.flatnonzero(np.isfinite(track.hands[:, side, 0, 0])):
            gap = np.linalg.norm(track.hands[i, side, 0, :2] - track.pixels[i, wrist]) / size(
                pose_box(track.pixels[i], track.visibility[i]))
            assert gap <= HAND_REACH, f"{who}frame {i}: hand {side} (0 left) is {gap:.2f} from its wrist"


def assert_one_error_line(stderr: str) -> str:
    """stderr is a single non-empty `error: ...` line without a traceback; returns it."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one stderr line, got {len(lines)}:\n{stderr}"
    line = lines[0]
    assert line.startswith("error: ") and line[len("error: "):].strip(), repr(line)
    return line


def camera_pixels(scene, cam, world) -> np.ndarray:
    """Pixels (x right, y down) of Blender world points through camera object `cam` at the scene's
    render size (bpy_extras' world_to_camera_view)."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    W, H = scene.render.resolution_x, scene.render.resolution_y
    out = []
    for p in world:
        v = world_to_camera_view(scene, cam, Vector(p))
        out.append((v.x * W, (1.0 - v.y) * H))
    return np.array(out)
