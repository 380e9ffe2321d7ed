"""Build the Blender extension packages: `make extension` → dist/humanpose3d-<version>-<platform>.zip.

One package per platform serves every supported Blender: 4.2, 4.5 and 5.0 embed CPython 3.11 with
numpy 1.26, 5.1 and 5.2 embed CPython 3.13 with numpy 2. Each package carries the wheels of both
Pythons; Blender installs the ones that suit its own Python (see BlenderTool).

1. Check the MediaPipe model bundles (models/*.task, made by `python -m engine.bundles`) are there.
2. Download the pinned runtime wheels (RUNTIME_WHEELS, PYTHON_PINS) for each platform and Python
   into wheels/ with pip (binary only, no dependencies); wheels already there are not fetched again.
   A pure or stable-ABI wheel serves every Python (and a universal2 one both Macs) that it suits.
3. Stage a copy of the add-on whose manifest lists them under `wheels` (the committed manifest is
   never edited), then build it with Blender's own `blender_ext.py build --split-platforms` into
   dist/: one zip per platform, each with its own wheels (for both Pythons).
4. Validate every zip with `blender_ext.py validate` of each Blender at hand (the bpy module of this
   Python, and the bl_pkg of bpy 4.2.23 and 5.2.3, fetched once into BLENDER_CODE), and with
   check_package(), which runs those Blenders' own install-time code: the enable-time compatibility
   check (Python versions, platform, Blender version) and the wheel filter that picks what a Blender
   with Python 3.11 or 3.13 installs: exactly one wheel per package, every package, never numpy.

    python scripts/build_extension.py [--platform linux-x64 ...] [--no-download]

A platform for which a pinned wheel does not exist is skipped with a message, not built half-empty.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib.util
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import CodeType, SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]

# The Pythons of the supported Blenders, and which Blender embeds which (the enable-time check is
# run for each pair).
PYTHON_VERSIONS = ("3.11", "3.13")
BLENDERS: tuple[tuple[str, str], ...] = (
    ("4.2.0", "3.11"), ("4.5.0", "3.11"), ("5.0.0", "3.11"),  # numpy 1.26
    ("5.1.0", "3.13"), ("5.2.0", "3.13"),  # numpy 2
)

# Blender platform → pip --platform tags. pip expands a macOS tag to older macOS versions and to
# universal2 itself, but not manylinux_2_28 to older glibc, so those are listed. Blender 4.2+ needs
# glibc 2.28 on Linux (so does mediapipe 1.2.3); the macOS arm64 package needs macOS 13
# (onnxruntime's wheel). No macos-x64: mediapipe's last Intel macOS wheel is 0.10.21 (CPython 3.11).
PIP_PLATFORMS: dict[str, list[str]] = {
    "linux-x64": [f"manylinux_2_{v}_x86_64" for v in range(28, 16, -1)] + ["manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_13_0_arm64"],
}
# What `sysconfig.get_platform()` says in each platform's Blender: the install-time wheel filter
# compares wheel tags with it (only the architecture on macOS, so the macOS version is immaterial).
SYSCONFIG_PLATFORMS = {"linux-x64": "linux-x86_64", "windows-x64": "win-amd64",
                       "macos-arm64": "macosx-11.0-arm64", "macos-x64": "macosx-10.15-x86_64"}

# What the engine imports on a default run (plus --holistic and --scail) inside Blender's Python,
# pinned for both Pythons: each version here has wheels for CPython 3.11 and 3.13 (or one pure or
# stable-ABI wheel for both) on every platform, and works with numpy 1.26 and numpy 2 (their
# requirements allow both; opencv, mediapipe, scipy, onnxruntime, matplotlib and contourpy are built
# against numpy 2, which runs on 1.26 as well). Blender ships numpy: never bundled.
# Left out on purpose: mediapipe's sounddevice (audio tasks; imported inside try/except),
# onnxruntime's coloredlogs, sympy and protobuf (its tools only), pose2sim's own dependencies (we
# read its LSTM models and OpenSim files, not its code), and the optional stages' stacks:
# torch/anny/roma/warp-lang/trimesh (--mesh, --lifter) and opensim (--opensim), hundreds of MB each;
# point the add-on's Engine Python at an interpreter that has them. protobuf and attrs were
# mediapipe 0.10.21's (its graphs and mp.solutions); mediapipe 1.2 imports neither.
RUNTIME_WHEELS: tuple[tuple[str, str], ...] = (
    ("mediapipe", "1.2.3"),  # Tasks API (one py3-none wheel per platform for Python 3.9-3.14)
    # LiteRT: the body's pose stage (engine/blazepose.py); cp311 and cp313 wheels on every platform.
    # Its interpreter imports numpy alone (its declared ml_dtypes, protobuf... serve other modules)
    ("ai-edge-litert", "2.3.0"),
    ("opencv-contrib-python", "4.10.0.84"),  # cv2 (cp37-abi3: one wheel for both); mediapipe's.
    # 4.12+ require numpy 2 on every Python: no good for Blender 4.2-5.0
    ("scipy", "1.15.3"),  # filtering, skeleton fit, rotations; numpy >=1.23.5,<2.5
    # 1.23.2: its macOS arm64 wheel needs macOS 13 (1.24+: macOS 14)
    ("onnxruntime", "1.23.2"),  # Pose2Sim's LSTM marker augmenter
    ("absl-py", "2.5.1"),  # mediapipe (~=2.3)
    ("flatbuffers", "25.12.19"),  # mediapipe (~=25.9), onnxruntime
    ("certifi", "2026.10.19.post1"),  # mediapipe.tasks BaseOptions imports it
    ("packaging", "26.3"),  # onnxruntime, matplotlib
    # matplotlib: `import mediapipe` imports matplotlib.pyplot (tasks.vision.drawing_utils); bundled
    # with all its declared dependencies so that it installs whole
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
    ("threadpoolctl", "3.6.0"),  # one BLAS thread during a run (pure Python)
    ("c3d", "0.6.0"),  # <stem>_final.c3d
    ("pose2sim", "0.10.49"),  # LSTM v0.3 ONNX models and OpenSim_Setup/ (pure Python; its deps unused)
)
# Per-Python departures from RUNTIME_WHEELS: {python: {package: version}} (a version of None drops
# the package for that Python). Only a package with a wheel per Python (cpXY-cpXY) may differ: a
# pure or stable-ABI wheel installs on both, and Blender then keeps the newest on both.
PYTHON_PINS: dict[str, dict[str, str | None]] = {"3.11": {}, "3.13": {}}

# The bl_pkg of these Blenders (from their bpy wheels: pip needs the Python each is built for) checks
# the packages too, fetched once into BLENDER_CODE. Their blender_ext.py runs on Python 3.11.
BLENDER_TOOLS = {"4.2.23": "3.11", "5.2.3": "3.13"}
# Kept per machine, not per checkout, so that fresh clones (CI's) find it: a few MB, fetched once.
BLENDER_CODE = Path(os.environ.get("HP3D_CACHE") or Path.home() / ".cache" / "humanpose3d") / "blender-code"
MODELS_COMMAND = "python -m engine.bundles"

# Paths that must never be in a package (besides what the manifest's [build] excludes).
FORBIDDEN_PREFIXES = (".venv", ".git", "tests/", "benchmarks/", "scripts/", "requirements/", "output/",
                      "dist/", "models/sources/", "models/.")
REQUIRED_FILES = ("__init__.py", "blender_manifest.toml", "engine/pipeline.py", "engine/child.py",
                  "panels/sidebar.py", "scene/build.py")
# Not copied into the staging folder at all (heavy or private), besides dot-files at the top (.git,
# .venv); models/ is copied by hand (its bundles only); the manifest's patterns do the rest.
_STAGE_SKIP = {"wheels", "dist", "output", "tests", "benchmarks", "models"}

Target = tuple[str, str]  # (Blender platform, Python version)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_name_version(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]
    return canonical(name), version


def requirements(python: str, base: Sequence[tuple[str, str]] = RUNTIME_WHEELS,
                 pins: Mapping[str, Mapping[str, str | None]] = PYTHON_PINS) -> list[tuple[str, str]]:
    """The pinned wheels for one Python: `base` with that Python's departures applied."""
    over = {canonical(n): (n, v) for n, v in pins.get(python, {}).items()}
    out = []
    for name, version in base:
        if canonical(name) in over:
            version = over.pop(canonical(name))[1]
        if version is not None:
            out.append((name, version))
    return out + [(n, v) for n, v in over.values() if v is not None]  # added for this Python only


def model_bundles(source: Path) -> list[str]:
    """The model bundles the package must carry (models/*.task); SystemExit when there are none."""
    found = sorted(p.name for p in (source / "models").glob("*.task") if p.is_file())
    if not found:
        raise SystemExit(f"error: no MediaPipe model bundles in {source / 'models'} (models/*.task): "
                         f"build them first with `{MODELS_COMMAND}`")
    return found


# --- Blender's own extension code -----------------------------------------------------------------

class BlenderTool:
    """One Blender's extension code (bl_pkg): its command line tool `cli/blender_ext.py` (build,
    validate) and, as functions, what Blender itself runs when a package is installed and enabled:

    - `split_compatible`: blender_ext's blender_platform_compatible_with_wheel_platform_from_filepath,
      with which `build --split-platforms` (build_paths_filter_by_platform) puts a wheel into a
      platform's package. It looks at the platform tag only: both Pythons' wheels go in.
    - `refuses`: the check behind "Extension ... is incompatible (This Python version (3.13) isn't
      compatible with (3.11))": bl_pkg/__init__.py manifest_compatible_with_wheel_data_or_error takes
      the Python versions of all the manifest's wheels together (blender_ext
      python_versions_from_wheels: cp311 → 3.11, py3 or abi3 → 3, dropped beside any 3.x) and
      repository_filter_skip refuses a Blender whose Python is not among them.
    - `installs`: bl_extension_ops._extensions_wheel_filter_for_this_system (run by pkg_wheel_filter
      when wheels are synced), the wheels a Blender extracts: platform tag of this system, and a
      python tag equal to its Python (cp311 on 3.11 only), or major-only (py3), or an older cp3X with
      an abi3 tag. Wheels left with the same name are then cut to the newest version
      (_bpy_internal/extensions/wheel_manager.py wheel_list_deduplicate_as_skip_set), so a package
      must have exactly one wheel per Python, never a shared one beside a Python-specific one.

    The same code in Blender 4.2.23, 5.0.1 and 5.2.3 (4.5 and 5.1 lie between): the manifest has no
    Python field of its own; the wheels' tags are all there is."""

    _FILTER = "_extensions_wheel_filter_for_this_system"

    def __init__(self, blender_ext: Path, version: str = "") -> None:
        self.path = blender_ext
        bl_pkg = blender_ext.parent.parent
        self.version = version or _bpy_version_from_path(blender_ext)
        spec = importlib.util.spec_from_file_location(f"_hp3d_blender_ext_{self.version.replace('.', '_')}",
                                                      blender_ext)
        self.ext = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.ext)
        ops = bl_pkg / "bl_extension_ops.py"
        tree = ast.parse(ops.read_text(encoding="utf-8"), str(ops))
        fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == self._FILTER), None)
        if fn is None:
            raise SystemExit(f"error: {ops} has no {self._FILTER}() to ask which wheels Blender installs")
        # Its imports (sys, sysconfig, bl_extension_utils) are given as globals instead, for the
        # platform and Python asked about.
        fn.body = [s for s in fn.body if not isinstance(s, ast.Import | ast.ImportFrom)]
        self._filter: CodeType = compile(ast.Module(body=[fn], type_ignores=[]), str(ops), "exec")

    def __repr__(self) -> str:
        return f"BlenderTool({self.version})"

    @classmethod
    def local(cls) -> BlenderTool:
        return cls(find_blender_ext())

    def split_compatible(self, platform: str, wheel: str) -> bool:
        return bool(self.ext.blender_platform_compatible_with_wheel_platform_from_filepath(platform, wheel))

    def installs(self, wheels: Iterable[str], platform: str, python: str) -> list[str]:
        """The wheels Blender on `platform` with Python `python` extracts from a package's list."""
        major, minor = (int(x) for x in python.split(".")[:2])
        scope = {"__builtins__": builtins, "os": os,
                 "bpy": SimpleNamespace(app=SimpleNamespace(debug_python=False)),
                 "sys": SimpleNamespace(version_info=(major, minor, 0, "final", 0)),
                 "sysconfig": SimpleNamespace(get_platform=lambda: SYSCONFIG_PLATFORMS[platform]),
                 "python_versions_from_wheel_python_tag": self.ext.python_versions_from_wheel_python_tag,
                 "python_versions_from_wheel_abi_tag": self.ext.python_versions_from_wheel_abi_tag}
        exec(self._filter, scope)
        return list(scope[self._FILTER](list(wheels)))

    def suits(self, target: Target, wheel: str) -> bool:
        """Whether `wheel` goes into target's platform package and Blender with target's Python
        installs it."""
        platform, python = target
        return self.split_compatible(platform, wheel) and bool(self.installs([wheel], platform, python))

    def python_versions(self, wheels: Sequence[str]) -> list[str]:
        """The Python versions Blender reads off a package's wheels ("3.11", "3.13"; "3" for py3)."""
        if not wheels:
            return []
        found = self.ext.python_versions_from_wheels(list(wheels))
        if isinstance(found, str):
            raise ValueError(found)
        return [".".join(str(i) for i in v) for v in sorted(found)]

    def refuses(self, manifest: Mapping, platform: str, blender: str, python: str) -> str | None:
        """Why Blender `blender` with Python `python` on `platform` would refuse to enable a package
        with this manifest, or None."""
        item: dict[str, object] = {k: manifest[k] for k in ("blender_version_min", "blender_version_max",
                                                             "platforms") if manifest.get(k)}
        try:
            versions = self.python_versions(manifest.get("wheels") or [])
        except ValueError as exc:
            return f"Python versions of the wheels unreadable: {exc}"
        if versions:
            item["python_versions"] = versions
        said: list[str] = []
        refused = self.ext.repository_filter_skip(
            item, filter_blender_version=_version_tuple(blender), filter_platform=platform,
            filter_python_version=_version_tuple(python), skip_message_fn=said.append,
            error_fn=lambda exc: said.append(str(exc)))
        if not refused and not said:
            return None
        return "; ".join(said) or "refused"


def _version_tuple(version: str) -> tuple[int, int, int]:
    parts = [int(x) for x in version.split(".")[:3]]
    return (*parts, *[0] * (3 - len(parts)))  # type: ignore[return-value]


def _bpy_version_from_path(blender_ext: Path) -> str:
    """bpy/<major.minor>/scripts/addons_core/bl_pkg/cli/blender_ext.py → the installed bpy's version."""
    for parent in blender_ext.parents:
        if parent.name == "bpy":
            dists = sorted(parent.parent.glob("bpy-*.dist-info"))
            if dists:
                return dists[-1].name.removeprefix("bpy-").removesuffix(".dist-info")
        if re.fullmatch(r"bpy-\d+(\.\d+)+", parent.name):  # wheels/blender/bpy-<version>/bl_pkg/...
            return parent.name.removeprefix("bpy-")
    return blender_ext.parents[4].name if len(blender_ext.parents) > 4 else "?"


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


def fetch_blender_tool(version: str, cache: Path, download: bool = True) -> BlenderTool | None:
    """Blender `version`'s bl_pkg (blender_ext.py and bl_extension_ops.py) from its bpy wheel, kept in
    cache/bpy-<version>/bl_pkg; None when it is not there and may not or cannot be downloaded."""
    dest = cache / f"bpy-{version}" / "bl_pkg"
    wanted = ("cli/blender_ext.py", "bl_extension_ops.py")
    if not all((dest / w).is_file() for w in wanted):
        if not download:
            return None
        print(f"download bpy {version} (once, for its extension code)", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            got = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
                 "--only-binary=:all:", "--no-deps", "--python-version", BLENDER_TOOLS[version],
                 "--platform", "manylinux_2_28_x86_64", "-d", tmp, f"bpy=={version}"],
                capture_output=True, text=True)
            wheels = sorted(Path(tmp).glob("bpy-*.whl"))
            if got.returncode or not wheels:
                print(f"warning: could not download bpy {version}: {got.stderr.strip()[-300:]}",
                      file=sys.stderr)
                return None
            with zipfile.ZipFile(wheels[0]) as zf:
                for member in zf.namelist():
                    rel = member.partition("/addons_core/bl_pkg/")[2]
                    if rel in wanted:
                        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                        (dest / rel).write_bytes(zf.read(member))
        if not all((dest / w).is_file() for w in wanted):
            raise SystemExit(f"error: bpy {version}'s wheel has no bl_pkg/{' or '.join(wanted)}")
    return BlenderTool(dest / "cli" / "blender_ext.py", version)


def blender_tools(cache: Path, download: bool = True) -> list[BlenderTool]:
    """This Python's bpy and those of BLENDER_TOOLS that can be had, newest first (it builds)."""
    tools = [BlenderTool.local()]
    for version in BLENDER_TOOLS:
        if version != tools[0].version and (tool := fetch_blender_tool(version, cache, download)):
            tools.append(tool)
    missing = sorted(set(BLENDER_TOOLS) - {t.version for t in tools})
    if missing:
        print(f"warning: checked without bpy {', '.join(missing)}'s extension code (not in {cache})",
              file=sys.stderr)
    return sorted(tools, key=lambda t: _version_tuple(t.version), reverse=True)


# --- wheels ---------------------------------------------------------------------------------------

def _pip_download(platform: str, python: str, reqs: Sequence[tuple[str, str]], wheel_dir: Path) -> list[str]:
    """Fetch `reqs` for `platform` and `python`; returns the requirements pip found no wheel for."""
    base = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
            "--only-binary=:all:", "--no-deps", "--python-version", python,
            "--implementation", "cp", "-d", str(wheel_dir)]
    for tag in PIP_PLATFORMS[platform]:
        base += ["--platform", tag]
    specs = [f"{n}=={v}" for n, v in reqs]
    print(f"download {platform} Python {python}: {' '.join(specs)}", flush=True)
    if subprocess.run(base + specs, capture_output=True, text=True).returncode == 0:
        return []
    # One unavailable wheel fails the whole call: find which, one at a time.
    return [s for s in specs if subprocess.run(base + [s], capture_output=True, text=True).returncode]


def select_wheels(reqs: Mapping[str, Sequence[tuple[str, str]]], platforms: Sequence[str], wheel_dir: Path,
                  tool: BlenderTool, download: bool = True,
                  ) -> tuple[dict[Target, dict[str, Path]], dict[str, list[str]]]:
    """The wheels for each platform and Python (`reqs`: {python: [(name, version)]}):
    ({(platform, python): {name: file}}, {platform: [what is missing]}).

    blender_ext puts every listed wheel that suits a platform into that platform's package, and
    Blender installs every wheel there that suits its Python. So for each package the chosen wheels
    must give every (platform, Python) exactly one wheel, of its pinned version: a pure, stable-ABI
    or universal2 wheel serves all that it suits, and never lands beside another of the same
    package. Of the sets of wheels that do, the one that ships the fewest bytes is taken (one abi3
    wheel rather than a cp311 and a cp313 one; thin macOS wheels rather than universal2)."""
    if any(canonical(n) == "numpy" for rs in reqs.values() for n, _ in rs):
        raise SystemExit("error: numpy must not be bundled: Blender ships its own")
    want = {py: {canonical(n): (n, v) for n, v in rs} for py, rs in reqs.items()}
    targets = [(p, py) for p in platforms for py in want]
    wheels: list[Path] = []
    suits: dict[tuple[Target, str], bool] = {}

    def scan() -> None:
        wheels[:] = sorted(wheel_dir.glob("*.whl"))

    def fits(target: Target, f: Path) -> bool:
        if (target, f.name) not in suits:
            suits[target, f.name] = tool.suits(target, f.name)
        return suits[target, f.name]

    def candidates(target: Target, name: str) -> list[Path]:
        version = want[target[1]][name][1]
        return [f for f in wheels if wheel_name_version(f.name) == (name, version) and fits(target, f)]

    scan()
    for target in targets if download else ():
        need = [(n, v) for c, (n, v) in want[target[1]].items() if not candidates(target, c)]
        if need:
            wheel_dir.mkdir(parents=True, exist_ok=True)
            _pip_download(target[0], target[1], need, wheel_dir)
            scan()
    missing: dict[str, list[str]] = {p: [] for p in platforms}
    for target in targets:
        missing[target[0]] += [f"{n}=={v} for Python {target[1]}" for c, (n, v) in want[target[1]].items()
                               if not candidates(target, c)]

    def solve(name: str, among: Sequence[Target]) -> dict[Target, Path] | None:
        """The cheapest set of `name`'s wheels giving each target exactly its one, as {target: wheel}."""
        files = sorted({f for t in among for f in candidates(t, name)})
        if len(files) > 16:
            raise SystemExit(f"error: {len(files)} candidate wheels of {name} in {wheel_dir}: "
                             "clear out old ones")
        lands = {f: sum(tool.split_compatible(p, f.name) for p in {t[0] for t in among}) for f in files}
        best: tuple[tuple[int, int], dict[Target, Path]] | None = None
        for r in range(1, len(files) + 1):
            for combo in itertools.combinations(files, r):
                picked: dict[Target, Path] = {}
                for t in among:
                    served = [f for f in combo if fits(t, f)]
                    if len(served) != 1 or wheel_name_version(served[0].name)[1] != want[t[1]][name][1]:
                        break
                    picked[t] = served[0]
                else:
                    if set(picked.values()) == set(combo):  # no wheel that serves nobody
                        cost = (sum(f.stat().st_size * lands[f] for f in combo), r)
                        if best is None or cost < best[0]:
                            best = (cost, picked)
        return best[1] if best else None

    chosen: dict[Target, dict[str, Path]] = {t: {} for t in targets}
    for name in sorted({c for w in want.values() for c in w}):
        while True:
            live = [t for t in targets if not missing[t[0]] and name in want[t[1]]]
            if not live:
                break
            picked = solve(name, live)
            if picked is not None:
                for t, f in picked.items():
                    chosen[t][name] = f
                break
            # No set fits all: drop the platforms that no set fits alone (else all of them).
            alone = {p for p in {t[0] for t in live} if solve(name, [t for t in live if t[0] == p]) is None}
            for p in alone or {t[0] for t in live}:
                missing[p].append(f"{name}: no choice of its wheels here gives each Python exactly one "
                                  "(a wheel for one Python would also install on another)")
    return chosen, missing


def packaged_wheels(listed: Sequence[str], platform: str, tool: BlenderTool) -> list[str]:
    """The manifest wheels blender_ext --split-platforms puts into `platform`'s package."""
    return [w for w in listed if tool.split_compatible(platform, os.path.basename(w))]


def duplicates(listed: Sequence[str], platforms: Sequence[str], tool: BlenderTool,
               pythons: Sequence[str] = PYTHON_VERSIONS) -> list[str]:
    """Packages Blender would be handed two wheels of, per platform and Python."""
    problems = []
    for platform in platforms:
        for python in pythons:
            seen: dict[str, str] = {}
            for w in tool.installs(packaged_wheels(listed, platform, tool), platform, python):
                name = wheel_name_version(os.path.basename(w))[0]
                if name in seen:
                    problems.append(f"{platform} Python {python}: {seen[name]} and {w} both install {name}")
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


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


def stage(src: Path, dest: Path, wheels: Sequence[Path], platforms: Sequence[str]) -> list[str]:
    """Copy the add-on to `dest` with its model bundles and the wheels (hard links where possible)
    and the filled manifest; returns the manifest's wheel paths."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == src
        return {n for n in names if (top and (n in _STAGE_SKIP or n.startswith(".")))
                or n == "__pycache__" or n.endswith(".pyc")}

    shutil.copytree(src, dest, ignore=ignore, symlinks=False)
    (dest / "models").mkdir()
    for name in model_bundles(src):  # the bundles only: not the download cache (models/sources/)
        _link_or_copy(src / "models" / name, dest / "models" / name)
    (dest / "wheels").mkdir()
    listed = []
    for whl in sorted(set(wheels)):
        _link_or_copy(whl, dest / "wheels" / whl.name)
        listed.append(f"./wheels/{whl.name}")
    manifest = dest / "blender_manifest.toml"
    manifest.write_text(staged_manifest(manifest.read_text(encoding="utf-8"), listed, platforms),
                        encoding="utf-8")
    return listed


def check_package(zip_path: Path, platform: str, tool: BlenderTool,
                  required: Sequence[str] | Mapping[str, Sequence[str]] = (),
                  models: Sequence[str] = (), pythons: Sequence[str] = PYTHON_VERSIONS,
                  blenders: Sequence[tuple[str, str]] = BLENDERS) -> list[str]:
    """What is wrong with a built package (empty when nothing), by `tool`'s Blender code: the
    manifest (after Blender applies its [build.generated] table) lists wheels, every listed wheel is
    in the zip and suits `platform`, no other wheel is; for each Python, the wheels Blender installs
    hold each package once, every `required` one (a list, or {python: list}), and no numpy, and every
    wheel is installed by some Python; each of `blenders` (version, Python) would enable it; the
    model bundles are there (`models`: their file names; at least one models/*.task in any case);
    the add-on's files are there and nothing private (tests, benchmarks, venvs, outputs, caches)."""
    problems: list[str] = []
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        if "blender_manifest.toml" not in names:
            return ["no blender_manifest.toml at the root of the zip"]
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode("utf-8"))
    generated = manifest.get("build", {}).get("generated", {})
    applied = {**manifest, "wheels": generated.get("wheels", manifest.get("wheels", [])),
               "platforms": generated.get("platforms", manifest.get("platforms", []))}
    wheels, platforms = applied["wheels"], applied["platforms"]
    if platforms != [platform]:
        problems.append(f"manifest platforms {platforms}, expected [{platform!r}]")
    if not wheels:
        problems.append("manifest lists no wheels")
    in_zip = {n for n in names if n.endswith(".whl")}
    listed = {w.removeprefix("./") for w in wheels}
    problems += [f"listed wheel missing from the zip: {w}" for w in sorted(listed - in_zip)]
    problems += [f"wheel in the zip but not in the manifest: {w}" for w in sorted(in_zip - listed)]
    for w in sorted(listed):
        if not tool.split_compatible(platform, os.path.basename(w)):
            problems.append(f"{os.path.basename(w)} does not suit {platform}")
    used: set[str] = set()
    for python in pythons:
        installed = tool.installs(sorted(listed), platform, python)
        used.update(installed)
        per_name: dict[str, list[str]] = {}
        for w in installed:
            per_name.setdefault(wheel_name_version(os.path.basename(w))[0], []).append(os.path.basename(w))
        problems += [f"Python {python}: {n} installed from {len(ws)} wheels: {ws}"
                     for n, ws in per_name.items() if len(ws) > 1]
        if "numpy" in per_name:
            problems.append(f"Python {python}: numpy is bundled (Blender ships its own)")
        need = required.get(python, ()) if isinstance(required, Mapping) else required
        problems += [f"Python {python}: required package missing: {r}" for r in need
                     if canonical(r) not in per_name]
    problems += [f"wheel no Blender Python installs: {os.path.basename(w)}" for w in sorted(listed - used)]
    for blender, python in blenders:
        for label, data in (("", applied), (" (top-level manifest)", manifest)):
            why = tool.refuses(data, platform, blender, python)
            if why:
                problems.append(f"Blender {blender} (Python {python}) would not enable it{label}: {why}")
    tasks = sorted(n for n in names if n.startswith("models/") and n.endswith(".task"))
    if not tasks:
        problems.append(f"no model bundles (models/*.task; `{MODELS_COMMAND}` makes them)")
    problems += [f"model bundle missing: models/{m}" for m in models if f"models/{m}" not in names]
    problems += [f"missing {f}" for f in REQUIRED_FILES if f not in names]
    bad = sorted(n for n in names
                 if n.startswith(FORBIDDEN_PREFIXES) or "__pycache__/" in n or n.endswith(".pyc"))
    if bad:
        problems.append(f"{len(bad)} files that must not ship, e.g. {bad[:3]}")
    return problems


def build_extension(platforms: Sequence[str] = tuple(PIP_PLATFORMS), *, source: Path = ROOT,
                    wheel_dir: Path = ROOT / "wheels", dist_dir: Path = ROOT / "dist",
                    reqs: Mapping[str, Sequence[tuple[str, str]]] | None = None, download: bool = True,
                    tools: Sequence[BlenderTool] | None = None) -> dict[str, Path]:
    """Build and validate one package per buildable platform; returns {platform: zip}. `reqs`:
    {python: [(name, version)]} (default: requirements() of each of PYTHON_VERSIONS); `tools`: the
    Blenders whose code builds (the first) and checks (all) the packages (default: blender_tools()).
    Raises SystemExit with the reasons when a package fails validation."""
    unknown = [p for p in platforms if p not in PIP_PLATFORMS]
    if unknown:
        raise SystemExit(f"error: unknown platform {unknown}; choose from {list(PIP_PLATFORMS)}")
    platforms = [p for p in PIP_PLATFORMS if p in platforms]  # macos-arm64 before macos-x64
    models = model_bundles(source)
    reqs = dict(reqs) if reqs is not None else {py: requirements(py) for py in PYTHON_VERSIONS}
    tools = list(tools) if tools else blender_tools(BLENDER_CODE, download)
    builder = tools[0]
    chosen, missing = select_wheels(reqs, platforms, wheel_dir, builder, download=download)
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
    files = [f for (p, _), c in chosen.items() if p in buildable for f in c.values()]
    with tempfile.TemporaryDirectory(prefix=".stage-", dir=dist_dir) as tmp:
        staged = Path(tmp, manifest["id"])
        listed = stage(source, staged, files, buildable)
        clash = duplicates(listed, buildable, builder, list(reqs))
        if clash:
            raise SystemExit("error: a package would be installed twice:\n  " + "\n  ".join(clash))
        out = subprocess.run([sys.executable, str(builder.path), "build", "--source-dir", str(staged),
                              "--output-dir", str(dist_dir), "--split-platforms"],
                             capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"error: blender_ext {builder.version} build failed:\n{out.stdout}{out.stderr}")
    built: dict[str, Path] = {}
    failures: list[str] = []
    required = {py: [n for n, _ in rs] for py, rs in reqs.items()}
    for p in buildable:
        zip_path = dist_dir / f"{prefix}-{p.replace('-', '_')}.zip"
        for tool in tools:
            val = subprocess.run([sys.executable, str(tool.path), "validate", str(zip_path)],
                                 capture_output=True, text=True)
            if val.returncode:
                failures.append(f"{zip_path.name}: blender_ext {tool.version} validate: "
                                f"{(val.stdout + val.stderr).strip()}")
            failures += [f"{zip_path.name} (bpy {tool.version}'s code): {m}"
                         for m in check_package(zip_path, p, tool, required, models, list(reqs))]
        built[p] = zip_path
    if failures:
        raise SystemExit("error: invalid package:\n  " + "\n  ".join(failures))
    print(f"checked with the extension code of bpy {', '.join(t.version for t in tools)} "
          f"(built with {builder.version})", flush=True)
    return built


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--platform", action="append", choices=list(PIP_PLATFORMS),
                    help="build only this platform (repeatable; default: all)")
    ap.add_argument("--no-download", action="store_true",
                    help="use only the wheels (and Blender code) already in wheels/")
    args = ap.parse_args(argv)
    built = build_extension(args.platform or tuple(PIP_PLATFORMS), download=not args.no_download)
    for platform, path in built.items():
        with zipfile.ZipFile(path) as zf:
            n = sum(name.endswith(".whl") for name in zf.namelist())
        print(f"{platform:12s} {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  "
              f"{path.stat().st_size / 2**20:6.1f} MiB, {n} wheels (Python {', '.join(PYTHON_VERSIONS)}), "
              "validated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
