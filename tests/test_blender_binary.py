"""End to end with a real `blender` binary that embeds Python 3.13 and numpy 2 (Debian 13's Blender
4.3, in the Debian 13 root that scripts/bootstrap-trixie.sh makes): the Linux package that
`make extension` builds is installed with Blender's own `extension install-file`, enabled, and
headless.py from the installed add-on runs the engine on the demo video inside that Blender (with
--holistic: MediaPipe's Holistic, so the hands and the armature's fingers too), on the wheels
Blender installed for its Python, and writes the FBX and the .blend. assimp reads the FBX back,
fingers and all; the .blend opens in the bpy module here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO_ROOT

IN_ROOT = REPO_ROOT / "scripts" / "in-trixie.sh"
PACKAGE = REPO_ROOT / "dist" / "humanpose3d-0.1.0-linux_x64.zip"


def in_root(*cmd: str, home: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(IN_ROOT), "env", f"HOME={home}", *cmd], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def package() -> Path:
    """The real Linux package, built as `make extension` builds it (wheels fetched once)."""
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "build_extension.py"),
                           "--platform", "linux-x64"], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert PACKAGE.is_file()
    return PACKAGE


@pytest.fixture(scope="module")
def work() -> Path:
    """A folder inside the repository (the root sees the repository at the same path, not /tmp)."""
    folder = REPO_ROOT / "output" / ".blender-binary-test"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_root_blender_embeds_python_313_and_numpy_2(work: Path) -> None:
    assert IN_ROOT.is_file(), "scripts/in-trixie.sh is missing"
    proc = in_root("blender", "-b", "--factory-startup", "--python-expr",
                   "import sys, numpy; print('PY', sys.version_info[:2], numpy.__version__)", home=work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PY "))
    assert "(3, 13)" in line and " 2." in line, line


def test_installed_package_runs_headless_in_blender(package: Path, work: Path, cam01: Path) -> None:
    home = work / "home"
    home.mkdir()
    proc = in_root("blender", "--command", "extension", "install-file", "-r", "user_default", "-e",
                   str(package), home=home)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    installed = sorted(home.glob(".config/blender/*/extensions/user_default/humanpose3d"))
    assert installed, f"not installed under {home}: {proc.stdout[-1000:]}"
    addon = installed[0]
    assert sorted((addon / "models").glob("*.task")), "the model bundles did not come with the package"
    with zipfile.ZipFile(package) as zf:  # Blender installed the cp313 wheels, not the cp311 ones
        assert any("cp313" in n for n in zf.namelist()) and any("cp311" in n for n in zf.namelist())
    site = sorted(home.glob(".config/blender/*/extensions/.local/lib/python3.13/site-packages"))
    assert site and (site[0] / "mediapipe").is_dir() and (site[0] / "ai_edge_litert").is_dir(), \
        "Blender did not install the wheels for Python 3.13"
    assert not sorted(site[0].glob("scipy*/*cpython-311*")), "a Python 3.11 wheel was installed"

    out, fbx, blend = work / "out", work / "cam01.fbx", work / "cam01.blend"
    # headless.py of the installed add-on, in Blender with the extension enabled: the engine runs
    # inside Blender's Python 3.13 on the wheels Blender installed (not on the root's venv).
    script = ("import sys, runpy; import addon_utils; "
              "assert any(m.__name__.endswith('humanpose3d') for m in addon_utils.modules() "
              "if addon_utils.check(m.__name__)[1]), 'the extension is not enabled'; "
              f"sys.argv = ['headless.py', '--', {str(cam01)!r}, '--height', '1.72', '--frames', '0:60', "
              f"'--holistic', '--out', {str(out)!r}, '--fbx', {str(fbx)!r}, '--blend', {str(blend)!r}]; "
              f"runpy.run_path({str(addon / 'headless.py')!r}, run_name='__main__')")
    proc = in_root("env", "-u", "PYTHONPATH", "-u", "VIRTUAL_ENV", "blender", "-b", "--python-expr", script,
                   home=home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((out / "cam01" / "run.json").read_text())
    assert record["completed"] is True and record["frames"]["detected"] == 60
    assert record["versions"]["python"].startswith("3.13"), record["versions"]
    assert record["versions"]["numpy"].startswith("2."), record["versions"]
    # Blender's sys.executable is its Python here, so the figures' helper ran on the same wheels.
    assert record["biomechanics"]["figure_processes"] == 2
    assert fbx.stat().st_size > 10_000 and blend.stat().st_size > 100_000

    info = subprocess.run(["assimp", "info", str(fbx)], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    assert "Animation Channels" in info.stdout or "Animations" in info.stdout, info.stdout[-1500:]
    # --holistic: MediaPipe's Holistic on Blender's Python, and both hands' fingers in the FBX.
    assert record["hands"]["left_frames"] > 10 and record["hands"]["right_frames"] > 10, record["hands"]
    assert all(f"f_pinky.03.{S}" in info.stdout and f"thumb.01.{S}" in info.stdout for S in "LR"), \
        info.stdout[-3000:]
    assert "Animation Channels: 49" in info.stdout, info.stdout[-1500:]  # 48 bones and the armature
