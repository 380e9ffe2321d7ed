"""Build the Blender extension packages: `make extension` → dist/humanpose3d-<version>-<platform>.zip.

1. Download the pinned runtime wheels (RUNTIME_WHEELS) for each platform into wheels/ with pip
   (binary only, CPython 3.11, no dependencies); wheels already there are not fetched again.
2. Stage a copy of the add-on whose manifest lists them under `wheels` (the committed manifest is
   never edited), then build it with Blender's own `blender_ext.py build --split-platforms` (it ships
   in the bpy wheel under bl_pkg/cli) into dist/: one zip per platform, each with its own wheels.
3. Validate every zip with `blender_ext.py validate` and check_package() (manifest wheels present in
   the zip and nothing else, one wheel per package, no numpy, no tests/benchmarks/venv).

    python scripts/build_extension.py [--platform linux-x64 ...] [--no-download]

A platform for which a pinned wheel does not exist is skipped with a message, not built half-empty.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
PYTHON_VERSION = "3.11"  # Blender 4.2–5.0 embed CPython 3.11

# Blender platform → pip --platform tags. pip expands a macOS tag to older macOS versions and to
# universal2 itself, but not manylinux_2_28 to older glibc, so those are listed. Blender 4.2+ needs
# glibc 2.28 on Linux; the macOS packages need macOS 13 (onnxruntime's and OpenCV's wheels).
PIP_PLATFORMS: dict[str, list[str]] = {
    "linux-x64": [f"manylinux_2_{v}_x86_64" for v in range(28, 16, -1)] + ["manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_13_0_arm64"],  # before macos-x64: a universal2 wheel chosen here is reused
    "macos-x64": ["macosx_13_0_x86_64"],
}

# What the engine imports on a default run (plus --holistic and --scail) inside Blender's Python,
# pinned to the versions the tests run on. Blender ships numpy (1.26 up to 5.0): never bundled.
# Left out on purpose: mediapipe's jax, jaxlib and sentencepiece (its GenAI converter only) and
# sounddevice (audio tasks; imported inside try/except), onnxruntime's coloredlogs and sympy (its
# tools only), pose2sim's own dependencies (we read its LSTM models and OpenSim files, not its code),
# and the optional stages' stacks: torch/anny/roma/warp-lang/trimesh (--mesh, --lifter) and opensim
# (--opensim), hundreds of MB each; point the add-on's Engine Python at an interpreter that has them.
RUNTIME_WHEELS: tuple[tuple[str, str], ...] = (
    ("mediapipe", "0.10.21"),  # MediaPipe Pose/Holistic (legacy mp.solutions, models inside)
    ("opencv-contrib-python", "4.10.0.84"),  # cv2: video, person search, plots, SCAIL render; mediapipe's
    ("scipy", "1.15.3"),  # filtering, skeleton fit, rotations; last numpy-1.26 line pinned in base.txt
    # 1.23.2: the newest with wheels for all four platforms (1.24+ has no macOS x64 wheel, and its
    # macOS arm64 wheel needs macOS 14)
    ("onnxruntime", "1.23.2"),  # Pose2Sim's LSTM marker augmenter
    ("protobuf", "4.25.9"),  # mediapipe's graphs; mediapipe 0.10.21 needs protobuf < 5
    ("attrs", "26.1.0"),  # imported by mediapipe.solutions (objectron)
    ("absl-py", "2.5.1"),  # mediapipe
    ("flatbuffers", "25.12.19"),  # mediapipe, onnxruntime
    ("packaging", "26.3"),  # onnxruntime, matplotlib
    # matplotlib: `import mediapipe` imports matplotlib.pyplot (solutions.drawing_utils); bundled with
    # all its declared dependencies so that it installs whole
    ("matplotlib", "3.10.9"),
    ("contourpy", "1.3.3"),
    ("cycler", "0.12.1"),
    ("fonttools", "4.68.0"),
    ("kiwisolver", "1.5.1"),
    ("pillow", "13.0.0"),
    ("pyparsing", "3.3.3"),
    ("python-dateutil", "4.0.0"),
    ("tzdata", "2026.6"),  # python-dateutil 4
    ("tqdm", "4.70.1"),  # the engine CLI's progress bar
    ("c3d", "0.6.0"),  # <stem>_final.c3d
    ("pose2sim", "0.10.49"),  # LSTM v0.3 ONNX models and OpenSim_Setup/ (pure Python; its deps unused)
)

# Paths that must never be in a package (besides what the manifest's [build] excludes).
FORBIDDEN_PREFIXES = (".venv", ".git", "tests/", "benchmarks/", "scripts/", "requirements/", "output/",
                      "dist/", "models/.cache")
REQUIRED_FILES = ("__init__.py", "blender_manifest.toml", "engine/pipeline.py", "operators/engine_runner.py",
                  "panels/sidebar.py", "scene/build.py")
# Not copied into the staging folder at all (heavy or private), besides dot-files at the top (.git,
# .venv); the manifest's patterns do the rest.
_STAGE_SKIP = {"wheels", "dist", "output", "tests", "benchmarks"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_name_version(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]
    return canonical(name), version


def find_blender_ext() -> Path:
    """blender_ext.py from the bpy module of this Python (bpy/<version>/scripts/addons_core/bl_pkg/cli)."""
    spec = importlib.util.find_spec("bpy")  # found, not imported: importing bpy takes seconds
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: this Python has no bpy module, whose wheel ships blender_ext.py")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    raise SystemExit("error: the bpy module here does not ship bl_pkg/cli/blender_ext.py")


def load_blender_ext(path: Path) -> ModuleType:
    """The tool as a module, to ask it which wheels it puts in which platform's package."""
    spec = importlib.util.spec_from_file_location("_hp3d_blender_ext", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def platform_checker(blender_ext: ModuleType) -> Callable[[str, str], bool]:
    fn = blender_ext.blender_platform_compatible_with_wheel_platform_from_filepath
    return lambda platform, wheel: bool(fn(platform, wheel))


# --- wheels ---------------------------------------------------------------------------------------

def _pip_download(platform: str, reqs: Sequence[tuple[str, str]], wheel_dir: Path) -> list[str]:
    """Fetch `reqs` for `platform`; returns the requirements pip found no wheel for."""
    base = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
            "--only-binary=:all:", "--no-deps", "--python-version", PYTHON_VERSION,
            "--implementation", "cp", "-d", str(wheel_dir)]
    for tag in PIP_PLATFORMS[platform]:
        base += ["--platform", tag]
    specs = [f"{n}=={v}" for n, v in reqs]
    print(f"download {platform}: {' '.join(specs)}", flush=True)
    if subprocess.run(base + specs, capture_output=True, text=True).returncode == 0:
        return []
    # One unavailable wheel fails the whole call: find which, one at a time.
    return [s for s in specs if subprocess.run(base + [s], capture_output=True, text=True).returncode]


def select_wheels(reqs: Sequence[tuple[str, str]], platforms: Sequence[str], wheel_dir: Path,
                  compatible: Callable[[str, str], bool], download: bool = True,
                  ) -> tuple[dict[str, dict[str, Path]], dict[str, list[str]]]:
    """One wheel per requirement and platform: ({platform: {name: file}}, {platform: [missing]}).

    blender_ext puts every listed wheel that suits a platform into that platform's package, so a
    universal2 or pure wheel chosen for one platform is reused by the others it suits, and a wheel
    that would land beside another platform's different choice is never picked."""
    names = [canonical(n) for n, _ in reqs]
    if "numpy" in names:
        raise SystemExit("error: numpy must not be bundled: Blender ships its own")
    chosen: dict[str, dict[str, Path]] = {p: {} for p in platforms}

    def pick(platform: str, name: str, version: str) -> Path | None:
        files = sorted(f for f in wheel_dir.glob("*.whl")
                       if wheel_name_version(f.name) == (name, version) and compatible(platform, f.name))
        taken = {c[name] for c in chosen.values() if name in c}
        reuse = [f for f in files if f in taken]
        if reuse:
            return reuse[0]
        free = [f for f in files
                if not any(q != platform and compatible(q, f.name) and chosen[q].get(name, f) != f
                           for q in platforms)]
        # The most specific wheel: a thin macOS wheel rather than universal2.
        return min(free, key=lambda f: sum(compatible(q, f.name) for q in PIP_PLATFORMS), default=None)

    missing: dict[str, list[str]] = {}
    for platform in platforms:
        need = [(n, v) for n, v in reqs if pick(platform, canonical(n), v) is None]
        if need and download:
            wheel_dir.mkdir(parents=True, exist_ok=True)
            _pip_download(platform, need, wheel_dir)
        missing[platform] = []
        for n, v in reqs:
            found = pick(platform, canonical(n), v)
            if found is None:
                missing[platform].append(f"{n}=={v}")
            else:
                chosen[platform][canonical(n)] = found
    return chosen, missing


def packaged_wheels(listed: Sequence[str], platform: str,
                    compatible: Callable[[str, str], bool]) -> list[str]:
    """The manifest wheels blender_ext --split-platforms puts into `platform`'s package."""
    return [w for w in listed if compatible(platform, os.path.basename(w))]


def duplicates(listed: Sequence[str], platforms: Sequence[str],
               compatible: Callable[[str, str], bool]) -> list[str]:
    problems = []
    for platform in platforms:
        seen: dict[str, str] = {}
        for w in packaged_wheels(listed, platform, compatible):
            name = wheel_name_version(os.path.basename(w))[0]
            if name in seen:
                problems.append(f"{platform}: {seen[name]} and {w} both install {name}")
            seen[name] = w
    return problems


# --- staging, building, checking -----------------------------------------------------------------

def staged_manifest(text: str, wheels: Sequence[str], platforms: Sequence[str]) -> str:
    """The source manifest with `platforms` set and `wheels` listed (top-level keys, so before the
    first [table])."""
    plat = "platforms = [" + ", ".join(f'"{p}"' for p in platforms) + "]"
    text, n = re.subn(r"(?m)^platforms\s*=.*$", plat, text)
    if n != 1:
        raise SystemExit("error: blender_manifest.toml needs exactly one top-level `platforms = [...]` line")
    listing = "wheels = [\n" + "".join(f'  "{w}",\n' for w in wheels) + "]\n\n"
    table = re.search(r"(?m)^\[", text)
    at = table.start() if table else len(text)
    out = text[:at] + listing + text[at:]
    data = tomllib.loads(out)
    assert data["wheels"] == list(wheels) and data["platforms"] == list(platforms)
    return out


def stage(src: Path, dest: Path, wheels: Sequence[Path], platforms: Sequence[str]) -> list[str]:
    """Copy the add-on to `dest` with the wheels (hard links where possible) and the filled manifest;
    returns the manifest's wheel paths."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == src
        return {n for n in names if (top and (n in _STAGE_SKIP or n.startswith(".")))
                or n == "__pycache__" or n.endswith(".pyc")}

    shutil.copytree(src, dest, ignore=ignore, symlinks=False)
    (dest / "wheels").mkdir()
    listed = []
    for whl in sorted(set(wheels)):
        target = dest / "wheels" / whl.name
        try:
            os.link(whl, target)
        except OSError:  # another file system
            shutil.copy2(whl, target)
        listed.append(f"./wheels/{whl.name}")
    manifest = dest / "blender_manifest.toml"
    manifest.write_text(staged_manifest(manifest.read_text(encoding="utf-8"), listed, platforms),
                        encoding="utf-8")
    return listed


def check_package(zip_path: Path, platform: str, compatible: Callable[[str, str], bool],
                  required: Sequence[str] = ()) -> list[str]:
    """What is wrong with a built package (empty when nothing): the manifest (after Blender applies
    its [build.generated] table) lists at least one wheel, every listed wheel is in the zip and suits
    `platform`, no other wheel is, one wheel per package, every `required` package is there, no numpy,
    the add-on's files are there and nothing private (tests, benchmarks, venvs, outputs)."""
    problems: list[str] = []
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        if "blender_manifest.toml" not in names:
            return ["no blender_manifest.toml at the root of the zip"]
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode("utf-8"))
    generated = manifest.get("build", {}).get("generated", {})
    wheels = generated.get("wheels", manifest.get("wheels", []))
    platforms = generated.get("platforms", manifest.get("platforms", []))
    if platforms != [platform]:
        problems.append(f"manifest platforms {platforms}, expected [{platform!r}]")
    if not wheels:
        problems.append("manifest lists no wheels")
    in_zip = {n for n in names if n.endswith(".whl")}
    listed = {w.removeprefix("./") for w in wheels}
    problems += [f"listed wheel missing from the zip: {w}" for w in sorted(listed - in_zip)]
    problems += [f"wheel in the zip but not in the manifest: {w}" for w in sorted(in_zip - listed)]
    per_name: dict[str, list[str]] = {}
    for w in sorted(listed):
        base = os.path.basename(w)
        if not compatible(platform, base):
            problems.append(f"{base} does not suit {platform}")
        per_name.setdefault(wheel_name_version(base)[0], []).append(base)
    problems += [f"{n} bundled {len(ws)} times: {ws}" for n, ws in per_name.items() if len(ws) > 1]
    if "numpy" in per_name:
        problems.append("numpy is bundled (Blender ships its own)")
    problems += [f"required package missing: {r}" for r in required if canonical(r) not in per_name]
    problems += [f"missing {f}" for f in REQUIRED_FILES if f not in names]
    bad = sorted(n for n in names
                 if n.startswith(FORBIDDEN_PREFIXES) or "__pycache__/" in n or n.endswith(".pyc"))
    if bad:
        problems.append(f"{len(bad)} files that must not ship, e.g. {bad[:3]}")
    return problems


def build_extension(platforms: Sequence[str] = tuple(PIP_PLATFORMS), *, source: Path = ROOT,
                    wheel_dir: Path = ROOT / "wheels", dist_dir: Path = ROOT / "dist",
                    reqs: Sequence[tuple[str, str]] = RUNTIME_WHEELS, download: bool = True,
                    blender_ext: Path | None = None) -> dict[str, Path]:
    """Build and validate one package per buildable platform; returns {platform: zip}. Raises
    SystemExit with the reasons when a package fails validation."""
    unknown = [p for p in platforms if p not in PIP_PLATFORMS]
    if unknown:
        raise SystemExit(f"error: unknown platform {unknown}; choose from {list(PIP_PLATFORMS)}")
    platforms = [p for p in PIP_PLATFORMS if p in platforms]  # macos-arm64 before macos-x64
    tool = blender_ext or find_blender_ext()
    compatible = platform_checker(load_blender_ext(tool))
    chosen, missing = select_wheels(reqs, platforms, wheel_dir, compatible, download=download)
    manifest = tomllib.loads((source / "blender_manifest.toml").read_text(encoding="utf-8"))
    prefix = f"{manifest['id']}-{manifest['version']}"
    dist_dir.mkdir(parents=True, exist_ok=True)
    buildable = [p for p in platforms if not missing[p]]
    for p in platforms:
        if missing[p]:
            print(f"skip {p}: no wheel for {', '.join(missing[p])} on this platform "
                  f"(pip --platform {' '.join(PIP_PLATFORMS[p][:1])}...)", file=sys.stderr)
            (dist_dir / f"{prefix}-{p.replace('-', '_')}.zip").unlink(missing_ok=True)  # no stale package
    if not buildable:
        raise SystemExit("error: no platform has all its wheels")
    files = [f for p in buildable for f in chosen[p].values()]
    with tempfile.TemporaryDirectory(prefix=".stage-", dir=dist_dir) as tmp:
        staged = Path(tmp, manifest["id"])
        listed = stage(source, staged, files, buildable)
        clash = duplicates(listed, buildable, compatible)
        if clash:
            raise SystemExit("error: a package would be installed twice:\n  " + "\n  ".join(clash))
        out = subprocess.run([sys.executable, str(tool), "build", "--source-dir", str(staged),
                              "--output-dir", str(dist_dir), "--split-platforms"],
                             capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"error: blender_ext build failed:\n{out.stdout}{out.stderr}")
    built: dict[str, Path] = {}
    failures: list[str] = []
    for p in buildable:
        zip_path = dist_dir / f"{prefix}-{p.replace('-', '_')}.zip"
        val = subprocess.run([sys.executable, str(tool), "validate", str(zip_path)],
                             capture_output=True, text=True)
        if val.returncode:
            failures.append(f"{zip_path.name}: blender_ext validate: {(val.stdout + val.stderr).strip()}")
        failures += [f"{zip_path.name}: {m}" for m in check_package(zip_path, p, compatible,
                                                                     [n for n, _ in reqs])]
        built[p] = zip_path
    if failures:
        raise SystemExit("error: invalid package:\n  " + "\n  ".join(failures))
    return built


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--platform", action="append", choices=list(PIP_PLATFORMS),
                    help="build only this platform (repeatable; default: all four)")
    ap.add_argument("--no-download", action="store_true", help="use only the wheels already in wheels/")
    args = ap.parse_args(argv)
    built = build_extension(args.platform or tuple(PIP_PLATFORMS), download=not args.no_download)
    for platform, path in built.items():
        with zipfile.ZipFile(path) as zf:
            n = sum(name.endswith(".whl") for name in zf.namelist())
        print(f"{platform:12s} {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  "
              f"{path.stat().st_size / 2**20:6.1f} MiB, {n} wheels, validated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
