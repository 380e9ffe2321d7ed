"""`make extension` (scripts/build_extension.py) without the network: the real staging, Blender's own
`blender_ext.py build --split-platforms` and `validate`, and our package checks, on the add-on with a
few tiny fake wheels in place of the downloaded ones."""

from __future__ import annotations

import importlib.util
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("_hp3d_build_extension",
                                               ROOT / "scripts" / "build_extension.py")
bx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bx)

LINUX = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
REQS = (("hp3d-native", "1.0"), ("hp3d_pure", "2.0"))


@pytest.fixture(scope="module")
def compatible():
    try:
        tool = bx.find_blender_ext()
    except SystemExit as exc:  # the validator ships inside the bpy wheel the bootstrap installs
        pytest.fail(str(exc))
    return bx.platform_checker(bx.load_blender_ext(tool))


def _wheel(folder: Path, filename: str) -> Path:
    """A minimal wheel: a module and its dist-info (Blender's installer reads no more)."""
    name, version = filename.split("-")[:2]
    path = folder / filename
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}.py", "VALUE = 1\n")
        zf.writestr(f"{name}-{version}.dist-info/METADATA",
                    f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{name}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n")
        zf.writestr(f"{name}-{version}.dist-info/RECORD", "")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, compatible) -> dict:
    tmp = tmp_path_factory.mktemp("extension")
    wheels, dist = tmp / "wheels", tmp / "dist"
    wheels.mkdir()
    dist.mkdir()
    names = [f"hp3d_native-1.0-{LINUX}.whl", "hp3d_native-1.0-cp311-cp311-win_amd64.whl",
             "hp3d_pure-2.0-py3-none-any.whl", "hp3d_pure-1.0-py3-none-any.whl"]  # 1.0: a stale pin
    for n in names:
        _wheel(wheels, n)
    stale = dist / "humanpose3d-0.1.0-macos_arm64.zip"  # from an earlier build that had its wheels
    stale.write_bytes(b"old")
    manifest_before = (ROOT / "blender_manifest.toml").read_bytes()
    # macos-arm64 has no hp3d-native wheel: skipped, not built without it.
    zips = bx.build_extension(["linux-x64", "macos-arm64"], wheel_dir=wheels, dist_dir=dist, reqs=REQS,
                              download=False)
    return {"zips": zips, "dist": dist, "stale": stale, "wheels": wheels,
            "manifest_unchanged": (ROOT / "blender_manifest.toml").read_bytes() == manifest_before}


def test_builds_one_valid_package_for_the_platform_with_all_wheels(built) -> None:
    assert list(built["zips"]) == ["linux-x64"]
    path = built["zips"]["linux-x64"]
    assert path == built["dist"] / "humanpose3d-0.1.0-linux_x64.zip" and path.is_file()
    assert not built["stale"].exists(), "a skipped platform's old package must not linger"
    assert built["manifest_unchanged"], "the build must not edit the committed manifest"
    assert not list(built["dist"].glob(".stage-*")), "the staging folder is removed"


def test_package_holds_the_addon_and_exactly_its_platforms_wheels(built) -> None:
    with zipfile.ZipFile(built["zips"]["linux-x64"]) as zf:
        names = set(zf.namelist())
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    generated = manifest["build"]["generated"]
    assert generated["platforms"] == ["linux-x64"]
    want = {f"./wheels/hp3d_native-1.0-{LINUX}.whl", "./wheels/hp3d_pure-2.0-py3-none-any.whl"}
    assert set(generated["wheels"]) == want
    assert {n for n in names if n.endswith(".whl")} == {w[2:] for w in want}
    assert manifest["id"] == "humanpose3d" and len(manifest["tagline"]) <= 64
    assert manifest["permissions"]["files"]
    for need in ("__init__.py", "engine/pipeline.py", "engine/cli.py", "operators/engine_runner.py",
                 "panels/sidebar.py", "scene/build.py", "headless.py"):
        assert need in names, need
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "scripts/", ".", "output/",
                                                  "requirements/", "dist/")) or "__pycache__" in n]


def _copy_zip(src: Path, dst: Path, drop: str = "", add: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if not (drop and item.filename.startswith(drop)):
                zout.writestr(item, zin.read(item.filename))
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return dst


def test_package_checks_catch_a_broken_package(built, compatible, tmp_path: Path) -> None:
    good = built["zips"]["linux-x64"]
    assert bx.check_package(good, "linux-x64", compatible, [n for n, _ in REQS]) == []
    broken = {
        "missing wheel": _copy_zip(good, tmp_path / "a.zip", drop="wheels/hp3d_pure"),
        "tests shipped": _copy_zip(good, tmp_path / "b.zip", add={"tests/test_x.py": b""}),
        "venv shipped": _copy_zip(good, tmp_path / "c.zip", add={".venv/bin/python": b""}),
        "extra wheel": _copy_zip(good, tmp_path / "d.zip", add={"wheels/numpy-1.26.4-py3-none-any.whl": b""}),
        "no engine": _copy_zip(good, tmp_path / "e.zip", drop="engine/"),
        "no manifest": _copy_zip(good, tmp_path / "f.zip", drop="blender_manifest.toml"),
    }
    for what, path in broken.items():
        assert bx.check_package(path, "linux-x64", compatible, [n for n, _ in REQS]), what
    assert bx.check_package(good, "windows-x64", compatible), "a Linux package is not a Windows one"
    assert bx.check_package(good, "linux-x64", compatible, ["mediapipe"]), "a required wheel is missing"


def test_universal2_wheels_are_shared_not_doubled(compatible, tmp_path: Path) -> None:
    """mediapipe 0.10.21 has only a universal2 wheel for arm64 Macs and a thin one for Intel Macs:
    blender_ext puts a universal2 wheel into both macOS packages, so both must use it."""
    for n in ("pkg-1.0-cp311-cp311-macosx_11_0_universal2.whl", "pkg-1.0-cp311-cp311-macosx_11_0_x86_64.whl",
              "thin-1.0-cp311-cp311-macosx_11_0_arm64.whl", "thin-1.0-cp311-cp311-macosx_11_0_x86_64.whl"):
        _wheel(tmp_path, n)
    platforms = ["macos-arm64", "macos-x64"]
    chosen, missing = bx.select_wheels((("pkg", "1.0"), ("thin", "1.0")), platforms, tmp_path, compatible,
                                       download=False)
    assert missing == {"macos-arm64": [], "macos-x64": []}
    universal = tmp_path / "pkg-1.0-cp311-cp311-macosx_11_0_universal2.whl"
    assert chosen["macos-arm64"]["pkg"] == chosen["macos-x64"]["pkg"] == universal
    assert chosen["macos-arm64"]["thin"] != chosen["macos-x64"]["thin"]
    listed = sorted({f"./wheels/{f.name}" for c in chosen.values() for f in c.values()})
    assert bx.duplicates(listed, platforms, compatible) == []
    both = listed + ["./wheels/pkg-1.0-cp311-cp311-macosx_11_0_x86_64.whl"]
    assert bx.duplicates(both, platforms, compatible), "two mediapipe wheels in the Intel package"


def test_runtime_wheels_never_include_numpy_and_cover_the_engines_imports() -> None:
    names = {bx.canonical(n) for n, _ in bx.RUNTIME_WHEELS}
    assert "numpy" not in names  # Blender ships it
    # The default run's third-party imports (engine/), plus mediapipe's import-time needs.
    assert {"mediapipe", "opencv-contrib-python", "scipy", "onnxruntime", "c3d", "tqdm", "pose2sim",
            "protobuf", "attrs", "matplotlib"} <= names
    assert len(names) == len(bx.RUNTIME_WHEELS)
