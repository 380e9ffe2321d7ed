"""`make extension` (scripts/build_extension.py) without the network: the real staging, Blender's own
`blender_ext.py build --split-platforms` and `validate`, Blender's own install-time checks, and our
package checks, on a copy of the add-on with fake model bundles and a few tiny fake wheels (for
CPython 3.11 and 3.13) in place of the built and downloaded ones."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("_hp3d_build_extension",
                                               ROOT / "scripts" / "build_extension.py")
bx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bx)

LINUX = "manylinux_2_17_x86_64.manylinux2014_x86_64"
MODELS = ("pose_landmarker_full.task", "holistic_landmarker.task")
# Pinned like RUNTIME_WHEELS and PYTHON_PINS: one version for both Pythons, except hp3d-split.
BASE = (("hp3d-native", "1.0"), ("hp3d_pure", "2.0"), ("hp3d-abi", "3.0"), ("hp3d-split", "1.0"))
PINS = {"3.11": {}, "3.13": {"hp3d_split": "2.0"}}
REQS = {py: bx.requirements(py, BASE, PINS) for py in ("3.11", "3.13")}
WHEELS = (
    f"hp3d_native-1.0-cp311-cp311-{LINUX}.whl", f"hp3d_native-1.0-cp313-cp313-{LINUX}.whl",
    "hp3d_native-1.0-cp311-cp311-win_amd64.whl",  # no cp313 Windows wheel: windows-x64 is skipped
    "hp3d_pure-2.0-py3-none-any.whl", "hp3d_pure-1.0-py3-none-any.whl",  # 1.0: a stale pin
    f"hp3d_abi-3.0-cp37-abi3-{LINUX}.whl",  # stable ABI: one wheel for both Pythons
    f"hp3d_split-1.0-cp311-cp311-{LINUX}.whl", f"hp3d_split-2.0-cp313-cp313-{LINUX}.whl",
)
IN_LINUX = {f"hp3d_native-1.0-cp311-cp311-{LINUX}.whl", f"hp3d_native-1.0-cp313-cp313-{LINUX}.whl",
            "hp3d_pure-2.0-py3-none-any.whl", f"hp3d_abi-3.0-cp37-abi3-{LINUX}.whl",
            f"hp3d_split-1.0-cp311-cp311-{LINUX}.whl", f"hp3d_split-2.0-cp313-cp313-{LINUX}.whl"}


@pytest.fixture(scope="module")
def tool() -> bx.BlenderTool:
    try:
        return bx.BlenderTool.local()
    except SystemExit as exc:  # the validator ships inside the bpy wheel the bootstrap installs
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def tools(tool) -> list:
    """This Python's bpy (5.0.1), and Blender 4.2.23's and 5.2.3's extension code (from their bpy
    wheels, fetched once per machine into build_extension.BLENDER_CODE): the build runs and checks
    with every one."""
    fetched = [bx.fetch_blender_tool(v, bx.BLENDER_CODE, download=True) for v in bx.BLENDER_TOOLS]
    assert all(fetched), f"Blender {list(bx.BLENDER_TOOLS)}'s extension code could not be fetched"
    return [tool, *fetched]


def _wheel(folder: Path, filename: str, payload: bytes = b"") -> Path:
    """A minimal wheel: a module and its dist-info (Blender's installer reads no more)."""
    name, version = filename.split("-")[:2]
    path = folder / filename
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}.py", b"VALUE = 1\n" + payload)
        zf.writestr(f"{name}-{version}.dist-info/METADATA",
                    f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{name}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n")
        zf.writestr(f"{name}-{version}.dist-info/RECORD", "")
    return path


def _source(tmp: Path, models: bool = True) -> Path:
    """The add-on as a checkout would have it, with model bundles and what must not ship beside them."""
    src = tmp / "humanpose3d"
    skip = {"wheels", "dist", "output", "tests", "benchmarks", "models"}
    shutil.copytree(ROOT, src, ignore=lambda folder, names: {
        n for n in names if (Path(folder) == ROOT and (n in skip or n.startswith(".")))
        or n == "__pycache__" or n.endswith(".pyc")})
    if models:
        (src / "models" / "sources").mkdir(parents=True)
        for name in MODELS:
            with zipfile.ZipFile(src / "models" / name, "w") as zf:  # a .task is a zip of .tflite files
                zf.writestr("pose_detector.tflite", b"TFL3")
        _wheel(src / "models" / "sources", "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl")
        (src / "models" / ".hp3d-stamp").write_text("x")
    return src


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tools) -> dict:
    tmp = tmp_path_factory.mktemp("extension")
    wheels, dist = tmp / "wheels", tmp / "dist"
    wheels.mkdir()
    dist.mkdir()
    for n in WHEELS:
        _wheel(wheels, n)
    stale = dist / "humanpose3d-0.1.0-macos_arm64.zip"  # from an earlier build that had its wheels
    stale.write_bytes(b"old")
    manifest_before = (ROOT / "blender_manifest.toml").read_bytes()
    src = _source(tmp)
    # windows-x64 lacks a cp313 hp3d-native wheel, macos-arm64 all native ones: both skipped, not built
    # without them.
    zips = bx.build_extension(["linux-x64", "windows-x64", "macos-arm64"], source=src, wheel_dir=wheels,
                              dist_dir=dist, reqs=REQS, download=False, tools=tools)
    return {"zips": zips, "dist": dist, "stale": stale, "wheels": wheels, "tmp": tmp,
            "manifest_unchanged": (ROOT / "blender_manifest.toml").read_bytes() == manifest_before}


def _manifest(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return tomllib.loads(zf.read("blender_manifest.toml").decode())


def test_builds_one_valid_package_for_the_platform_with_all_wheels(built) -> None:
    assert list(built["zips"]) == ["linux-x64"]
    path = built["zips"]["linux-x64"]
    assert path == built["dist"] / "humanpose3d-0.1.0-linux_x64.zip" and path.is_file()
    assert not built["stale"].exists(), "a skipped platform's old package must not linger"
    assert built["manifest_unchanged"], "the build must not edit the committed manifest"
    assert not list(built["dist"].glob(".stage-*")), "the staging folder is removed"


def test_package_holds_both_pythons_wheels_and_blender_installs_one_each(built, tool) -> None:
    path = built["zips"]["linux-x64"]
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    generated = _manifest(path)["build"]["generated"]
    assert generated["platforms"] == ["linux-x64"]
    assert {w.removeprefix("./wheels/") for w in generated["wheels"]} == IN_LINUX
    assert {n.removeprefix("wheels/") for n in names if n.endswith(".whl")} == IN_LINUX
    # Blender's own code: the Python versions it reads off the wheels, and what each Python installs.
    assert tool.python_versions(generated["wheels"]) == ["3.11", "3.13"]
    installs = {py: {w.removeprefix("./wheels/") for w in tool.installs(generated["wheels"], "linux-x64", py)}
                for py in ("3.11", "3.13")}
    shared = {"hp3d_pure-2.0-py3-none-any.whl", f"hp3d_abi-3.0-cp37-abi3-{LINUX}.whl"}
    assert installs["3.11"] == shared | {f"hp3d_native-1.0-cp311-cp311-{LINUX}.whl",
                                         f"hp3d_split-1.0-cp311-cp311-{LINUX}.whl"}
    assert installs["3.13"] == shared | {f"hp3d_native-1.0-cp313-cp313-{LINUX}.whl",
                                         f"hp3d_split-2.0-cp313-cp313-{LINUX}.whl"}
    on_windows = tool.installs(generated["wheels"], "windows-x64", "3.13")
    assert on_windows == ["./wheels/hp3d_pure-2.0-py3-none-any.whl"]


def test_package_holds_the_addon_and_the_model_bundles(built) -> None:
    path = built["zips"]["linux-x64"]
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert zf.read("models/pose_landmarker_full.task")[:2] == b"PK"
    manifest = _manifest(path)
    assert manifest["id"] == "humanpose3d" and len(manifest["tagline"]) <= 64
    assert manifest["permissions"]["files"]
    for need in ("__init__.py", "engine/pipeline.py", "engine/cli.py", "engine/child.py",
                 "panels/sidebar.py", "scene/build.py", "headless.py"):
        assert need in names, need
    models = {n for n in names if n.startswith("models/") and not n.endswith("/")}
    assert models == {f"models/{m}" for m in MODELS}
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "scripts/", ".", "output/",
                                                  "requirements/", "dist/", "models/sources", "models/."))
                or "__pycache__" in n]


def test_blenders_on_either_python_would_enable_it(built, tool) -> None:
    """The check behind "Extension ... is incompatible (This Python version (3.13) isn't compatible
    with (3.11))", for every supported Blender; a cp311-only package reproduces that refusal."""
    manifest = _manifest(built["zips"]["linux-x64"])
    applied = {**manifest, **manifest["build"]["generated"]}
    for blender, python in bx.BLENDERS:
        assert tool.refuses(applied, "linux-x64", blender, python) is None, (blender, python)
    assert tool.refuses(applied, "windows-x64", "5.2.0", "3.13")  # a Linux package is not a Windows one
    old = {**applied, "wheels": [w for w in applied["wheels"] if "cp313" not in w]}
    assert tool.refuses(old, "linux-x64", "5.0.0", "3.11") is None
    why = tool.refuses(old, "linux-x64", "5.2.0", "3.13")
    assert why and "This Python version (3.13) isn't compatible with (3.11)" in why
    assert tool.refuses(applied, "linux-x64", "4.1.0", "3.11")  # blender_version_min = 4.2.0


def test_blender_validates_and_installs_it_for_either_python(built, tool) -> None:
    """Blender's own `install-files` (Install from Disk), asked for Python 3.11 and 3.13."""
    path = built["zips"]["linux-x64"]
    val = subprocess.run([sys.executable, str(tool.path), "validate", str(path)],
                         capture_output=True, text=True)
    assert val.returncode == 0, val.stdout + val.stderr
    # install-files installs only the package of this system's platform: the tests run on Linux.
    for python in ("3.11", "3.13"):
        local = built["tmp"] / f"installed-{python}"
        local.mkdir()
        out = subprocess.run([sys.executable, str(tool.path), "install-files", "--local-dir", str(local),
                              "--python-version", f"{python}.0", "--blender-version", "5.2.0", str(path)],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        assert (local / "humanpose3d" / "models" / MODELS[0]).is_file()
        assert (local / "humanpose3d" / "wheels" / f"hp3d_split-2.0-cp313-cp313-{LINUX}.whl").is_file()


def test_blender_42_and_52_code_builds_and_passes_it(built, tools) -> None:
    """With Blender 4.2.23's and 5.2.3's own blender_ext.py and install-time code (fetched once per
    machine): the package validates and both Pythons get their wheels under each."""
    path = built["zips"]["linux-x64"]
    required = {py: [n for n, _ in rs] for py, rs in REQS.items()}
    wheels = _manifest(path)["build"]["generated"]["wheels"]
    for tool in tools:
        val = subprocess.run([sys.executable, str(tool.path), "validate", str(path)],
                             capture_output=True, text=True)
        assert val.returncode == 0, (tool.version, val.stdout + val.stderr)
        assert bx.check_package(path, "linux-x64", tool, required, MODELS) == [], tool.version
        for py in ("3.11", "3.13"):
            assert tool.installs(wheels, "linux-x64", py) == tools[0].installs(wheels, "linux-x64", py)


def _copy_zip(src: Path, dst: Path, drop: str = "", add: dict[str, bytes] | None = None,
              wheels: list[str] | None = None) -> Path:
    """A copy of a package less the entries under `drop`, plus `add`, its manifest listing `wheels`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if drop and item.filename.startswith(drop):
                continue
            data = zin.read(item.filename)
            if wheels is not None and item.filename == "blender_manifest.toml":
                listing = "wheels = [" + ", ".join(f'"{w}"' for w in wheels) + "]"
                data = re.sub(r"(?m)^wheels = \[.*\]$", listing, data.decode()).encode()
            zout.writestr(item, data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return dst


def test_package_checks_catch_a_broken_package(built, tool, tmp_path: Path) -> None:
    good = built["zips"]["linux-x64"]
    required = {py: [n for n, _ in rs] for py, rs in REQS.items()}
    assert bx.check_package(good, "linux-x64", tool, required, MODELS) == []
    listed = _manifest(good)["build"]["generated"]["wheels"]
    pure_311 = f"hp3d_native-1.0-py3-none-{LINUX.split('.')[0]}.whl"
    no_313 = [w for w in listed if "cp313" not in w]
    broken = {
        "missing wheel": _copy_zip(good, tmp_path / "a.zip", drop="wheels/hp3d_pure"),
        "tests shipped": _copy_zip(good, tmp_path / "b.zip", add={"tests/test_x.py": b""}),
        "venv shipped": _copy_zip(good, tmp_path / "c.zip", add={".venv/bin/python": b""}),
        "extra wheel": _copy_zip(good, tmp_path / "d.zip", add={"wheels/numpy-1.26.4-py3-none-any.whl": b""}),
        "no engine": _copy_zip(good, tmp_path / "e.zip", drop="engine/"),
        "no manifest": _copy_zip(good, tmp_path / "f.zip", drop="blender_manifest.toml"),
        "no models": _copy_zip(good, tmp_path / "g.zip", drop="models/"),
        "one model short": _copy_zip(good, tmp_path / "h.zip", drop=f"models/{MODELS[1]}"),
        "model sources": _copy_zip(good, tmp_path / "i.zip", add={"models/sources/x.tgz": b""}),
        "cp311 only": _copy_zip(good, tmp_path / "j.zip", drop="wheels/hp3d_native-1.0-cp313",
                                wheels=[w for w in listed if "hp3d_native-1.0-cp313" not in w]),
        "3.11 gets two": _copy_zip(good, tmp_path / "k.zip", add={f"wheels/{pure_311}": b""},
                                   wheels=[*listed, f"./wheels/{pure_311}"]),
        "numpy listed": _copy_zip(good, tmp_path / "l.zip", add={"wheels/numpy-2.2.0-py3-none-any.whl": b""},
                                  wheels=[*listed, "./wheels/numpy-2.2.0-py3-none-any.whl"]),
        "Blender 5.1+ refuses": _copy_zip(good, tmp_path / "m.zip",
                                          wheels=[w for w in no_313 if "hp3d_split" not in w]),
    }
    for what, path in broken.items():
        assert bx.check_package(path, "linux-x64", tool, required, MODELS), what
    refused = bx.check_package(broken["Blender 5.1+ refuses"], "linux-x64", tool, required)
    assert any("Blender 5.2.0 (Python 3.13) would not enable it" in m for m in refused), refused
    assert any("Python 3.11: hp3d-native installed from 2 wheels" in m
               for m in bx.check_package(broken["3.11 gets two"], "linux-x64", tool, required))
    assert bx.check_package(good, "windows-x64", tool), "a Linux package is not a Windows one"
    assert bx.check_package(good, "linux-x64", tool, ["mediapipe"]), "a required wheel is missing"


def test_missing_model_bundles_stop_the_build_naming_the_command(tmp_path: Path, tool) -> None:
    src = _source(tmp_path, models=False)
    with pytest.raises(SystemExit, match=re.escape(bx.MODELS_COMMAND)):
        bx.build_extension(["linux-x64"], source=src, wheel_dir=tmp_path / "wheels",
                           dist_dir=tmp_path / "dist", reqs=REQS, download=False, tools=[tool])
    assert not (tmp_path / "dist").exists(), "nothing is built or fetched without the models"


def test_one_wheel_serves_every_python_and_platform_it_suits(tool, tmp_path: Path) -> None:
    """A stable-ABI wheel beside a cp311 one of the same version: a cp311 pick for 3.11 would leave
    3.13 only the abi3 wheel, which 3.11 would install too; so both take the abi3 wheel. Likewise a
    universal2 wheel goes into both macOS packages, so both Macs must use it."""
    for n in (f"abi-1.0-cp311-cp311-{LINUX}.whl", f"abi-1.0-cp37-abi3-{LINUX}.whl",
              f"thin-1.0-cp311-cp311-{LINUX}.whl", f"thin-1.0-cp313-cp313-{LINUX}.whl",
              f"thin-1.0-cp37-abi3-{LINUX}.whl"):
        # the abi3 "thin" wheel is bigger than both Python-specific ones together: not chosen
        _wheel(tmp_path, n, payload=b"#" * (9000 if n.startswith("thin-1.0-cp37") else 1000))
    reqs = {py: [("abi", "1.0"), ("thin", "1.0")] for py in ("3.11", "3.13")}
    chosen, missing = bx.select_wheels(reqs, ["linux-x64"], tmp_path, tool, download=False)
    assert missing == {"linux-x64": []}
    assert chosen["linux-x64", "3.11"]["abi"] == chosen["linux-x64", "3.13"]["abi"] \
        == tmp_path / f"abi-1.0-cp37-abi3-{LINUX}.whl"
    assert chosen["linux-x64", "3.11"]["thin"].name == f"thin-1.0-cp311-cp311-{LINUX}.whl"
    assert chosen["linux-x64", "3.13"]["thin"].name == f"thin-1.0-cp313-cp313-{LINUX}.whl"
    listed = sorted({f"./wheels/{f.name}" for c in chosen.values() for f in c.values()})
    assert bx.duplicates(listed, ["linux-x64"], tool) == []
    assert bx.duplicates([*listed, f"./wheels/abi-1.0-cp311-cp311-{LINUX}.whl"], ["linux-x64"], tool)

    mac = tmp_path / "mac"
    mac.mkdir()
    for n in ("pkg-1.0-cp311-cp311-macosx_11_0_universal2.whl", "pkg-1.0-cp311-cp311-macosx_11_0_x86_64.whl",
              "thin-1.0-cp311-cp311-macosx_11_0_arm64.whl", "thin-1.0-cp311-cp311-macosx_11_0_x86_64.whl"):
        _wheel(mac, n)
    platforms = ["macos-arm64", "macos-x64"]
    chosen, missing = bx.select_wheels({"3.11": [("pkg", "1.0"), ("thin", "1.0")]}, platforms, mac, tool,
                                       download=False)
    assert missing == {"macos-arm64": [], "macos-x64": []}
    universal = mac / "pkg-1.0-cp311-cp311-macosx_11_0_universal2.whl"
    assert chosen["macos-arm64", "3.11"]["pkg"] == chosen["macos-x64", "3.11"]["pkg"] == universal
    assert chosen["macos-arm64", "3.11"]["thin"] != chosen["macos-x64", "3.11"]["thin"]


def test_a_shared_wheel_cannot_carry_two_versions(tool, tmp_path: Path) -> None:
    """Per-Python pins of a pure package: both wheels would install on both Pythons (and Blender
    keeps the newer), so the platform is reported, not built."""
    for n in ("pure-1.0-py3-none-any.whl", "pure-2.0-py3-none-any.whl"):
        _wheel(tmp_path, n)
    reqs = {"3.11": [("pure", "1.0")], "3.13": [("pure", "2.0")]}
    _, missing = bx.select_wheels(reqs, ["linux-x64"], tmp_path, tool, download=False)
    assert missing["linux-x64"] and "exactly one" in missing["linux-x64"][0]


def test_requirements_apply_per_python_pins() -> None:
    assert REQS["3.11"] == list(BASE)
    assert REQS["3.13"] == [("hp3d-native", "1.0"), ("hp3d_pure", "2.0"), ("hp3d-abi", "3.0"),
                            ("hp3d-split", "2.0")]
    assert bx.requirements("3.13", BASE, {"3.13": {"hp3d-abi": None, "extra": "1"}}) == [
        ("hp3d-native", "1.0"), ("hp3d_pure", "2.0"), ("hp3d-split", "1.0"), ("extra", "1")]


def test_runtime_wheels_never_include_numpy_and_cover_the_engines_imports() -> None:
    for python in bx.PYTHON_VERSIONS:
        reqs = bx.requirements(python)
        names = {bx.canonical(n) for n, _ in reqs}
        assert "numpy" not in names  # Blender ships it
        # The default run's third-party imports (engine/), plus mediapipe's import-time needs.
        assert {"ai-edge-litert", "mediapipe", "opencv-contrib-python", "scipy", "onnxruntime", "c3d",
                "tqdm", "pose2sim", "matplotlib", "certifi", "absl-py", "flatbuffers"} <= names
        assert len(names) == len(reqs)
    assert set(bx.PYTHON_PINS) <= set(bx.PYTHON_VERSIONS)
    assert {py for _, py in bx.BLENDERS} == set(bx.PYTHON_VERSIONS)


def test_the_manifest_ships_the_model_bundles() -> None:
    """`paths_exclude_pattern` keeps models/*.task (only the bundles' download cache is left out)."""
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text(encoding="utf-8"))
    patterns = manifest["build"]["paths_exclude_pattern"]
    assert "/models/sources/" in patterns
    assert not [p for p in patterns if p.strip("/") in ("models", "models/*") or p.endswith(".task")]
    assert set(manifest["platforms"]) == set(bx.PIP_PLATFORMS)
