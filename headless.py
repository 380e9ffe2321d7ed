"""HumanPose3D without the UI: run the engine on a video, build the scene, save it.

    blender --background --python headless.py -- VIDEO --height 1.72 --out DIR [--blend F] [--fbx F]
        [--fbx-preset unity|unreal|mixamo] [--bvh F]
    python headless.py -- VIDEO VIDEO2 ... --calib CALIB.toml [--sync-offsets=0,3,-2] --height 1.72 ...
        (calibrated cameras: one Blender camera per video, each with its video behind it)
    python headless.py -- VIDEO --height 1.72 --out DIR [...]          (with the bpy module)
    python headless.py -- --import-result DIR/STEM --blend F           (skip the engine)
    python headless.py -- --import-sam3d RESULT.pkl|npz --blend F      (SAM 3D Body meshes)
    python headless.py -- ... --retarget-to CHAR.blend --target-armature NAME [--character-fbx F]
        (open CHAR.blend, build the scene in it, key the character NAME with the motion)

Every option of `python -m engine run` is accepted after `--`, the further videos of a calibrated
run too (they follow the first, before any option); `-- --help` lists them. With the
engine's `--scail` the scene also gets SCAIL's cylinder rig on the armature (and its SCAIL scene
and camera); `--scail-blender` renders it with Blender into DIR/STEM/scail_blender/. With the
engine's `--mesh` it also gets the body mesh on Anny's rig, which `--fbx` exports with the armature.
"""

from __future__ import annotations

import argparse
import importlib.util
import pickle
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE = "humanpose3d"


def load_package():
    """Import this folder as the package `humanpose3d`, as Blender imports the extension, so the
    relative imports between scene/ and engine/ resolve. Importing it needs no bpy."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    spec = importlib.util.spec_from_file_location(PACKAGE, ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module


def script_args(argv: list[str]) -> list[str]:
    """Arguments after `--` (Blender passes its own before it); all of them without one."""
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="headless.py", add_help=False, allow_abbrev=False,  # prefixes belong to the engine
        description="Run HumanPose3D and build the Blender scene (armature, keyframes, camera).",
        epilog="All other options are the engine's (python -m engine run); see below.")
    p.add_argument("-h", "--help", action="store_true", help="show this help and the engine's options")
    p.add_argument("--blend", type=Path, metavar="FILE", help="save the scene as this .blend file")
    p.add_argument("--fbx", type=Path, metavar="FILE",
                   help="export the armature and its animation as FBX (see --fbx-preset)")
    p.add_argument("--fbx-preset", choices=("unity", "unreal", "mixamo"), default="unity",
                   help="FBX settings: unity (Y up, metres; default), unreal (Z up, X forward, "
                        "centimetres), mixamo (Unity's axes, bones named mixamorig:Hips, ...)")
    p.add_argument("--bvh", type=Path, metavar="FILE",
                   help="export the armature's animation as BVH (metres, Blender's Z-up axes)")
    p.add_argument("--import-result", type=Path, metavar="DIR",
                   help="build the scene from a finished output folder instead of running the engine")
    p.add_argument("--import-sam3d", type=Path, metavar="FILE",
                   help="import a SAM 3D Body result (.npz/.pkl of its per-person dicts) or a "
                        "<stem>_mesh.npz as meshes, levelled and grounded, instead of running the engine")
    p.add_argument("--keep-scene", action="store_true",
                   help="add to the current scene instead of starting from an empty one")
    p.add_argument("--scail-blender", action="store_true",
                   help="build SCAIL's cylinder rig on the armature and render it with Blender into "
                        "DIR/<stem>/scail_blender/ (RGBA PNGs + MP4); the engine's --scail alone builds "
                        "the rig without rendering")
    p.add_argument("--scail-engine", choices=("auto", "workbench", "cycles"), default="auto",
                   help="Blender engine for --scail-blender (default: the faster, timed on one frame)")
    p.add_argument("--retarget-to", type=Path, metavar="FILE.blend",
                   help="open this .blend (a character) instead of an empty scene, build the result in it "
                        "and retarget the motion onto --target-armature (see README, Retargeting)")
    p.add_argument("--target-armature", metavar="NAME", help="the character's armature in --retarget-to")
    p.add_argument("--character-fbx", type=Path, metavar="FILE",
                   help="with --retarget-to: export the character and its motion as FBX (--fbx-preset axes)")
    p.add_argument("--engine-python", metavar="PY",
                   help="run the engine in a child process of this Python (one with the engine's "
                        "requirements), e.g. when Blender's own Python lacks the engine's packages")
    return p


def _run_engine(service, cfg, python: str | None) -> Path | None:
    """The engine through its run service: in this process (Blender's Python must have its
    requirements), or in a child process of `python`, as the add-on's Run operator does it."""
    try:
        run = service.start(cfg, python)
    except OSError as exc:
        sys.stderr.write(f"error: cannot start {python}: {exc}\n")
        return None
    end = service.wait(run, service.tenths("engine"))
    if end.kind != "done":
        sys.stderr.write(f"error: {end.message}\n")
        if end.details:
            sys.stderr.write(end.details)
        return None
    return Path(end.out_dir)


def _scail_blender(arm, result, size, render: bool, engine: str) -> int:
    """SCAIL's cylinder rig on the armature, with the engine's camera fitted to the SCAIL size (the
    engine's --scail-size, else the size its SCAIL render used, else SCAIL's default); with
    `render`, the Blender render into the result's scail_blender/. Returns an exit code."""
    from importlib import import_module

    import bpy

    rig = import_module(f"{PACKAGE}.scene.scail_rig")
    scail = import_module(f"{PACKAGE}.scene.scail_scene")
    size = size or (result.record.get("scail") or {}).get("size")
    mapping = rig.resolve_preset([b.name for b in arm.data.bones], "HP3D")
    st = scail.setup(bpy.context.scene, arm, mapping, size=tuple(size) if size else None)
    k = st.intrinsics
    print(f"scail rig: {len(st.rig.limbs)} limbs in scene '{st.scene.name}', camera {k.width}x{k.height}")
    if not render:
        return 0
    try:
        name = scail.pick_engine(st.scene) if engine == "auto" else engine.upper()
        res = scail.render(st.scene, result.folder / "scail_blender", result.stem, name)
    except (RuntimeError, OSError) as exc:
        sys.stderr.write(f"error: SCAIL render: {exc}\n")
        return 1
    print(f"scail blender: {res.frames} frames with {name.lower()} in {res.seconds:.1f} s -> {res.mp4}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args_in = script_args(sys.argv if argv is None else argv)
    ours, rest = _parser().parse_known_args(args_in)
    load_package()
    from importlib import import_module

    cli = import_module(f"{PACKAGE}.engine.cli")
    errors = import_module(f"{PACKAGE}.engine.errors")
    if ours.help:
        _parser().print_help()
        print("\nengine options:")
        cli.build_parser().parse_args(["run", "--help"])  # prints and exits 0
        return 0

    t0 = time.perf_counter()
    cfg = None
    if rest[:1] == ["batch"]:
        return _batch(ours, rest[1:], cli)
    if ours.import_sam3d is not None:
        return _import_sam3d(ours, rest)
    paired = (ours.retarget_to is None) == (ours.target_armature is None)
    if not paired or (ours.character_fbx and not ours.retarget_to):
        sys.stderr.write("error: --retarget-to FILE.blend and --target-armature NAME go together "
                         "(--character-fbx needs them)\n")
        return 2
    if ours.retarget_to is not None and not ours.retarget_to.is_file():
        sys.stderr.write(f"error: --retarget-to: no such file {ours.retarget_to}\n")
        return 2
    if ours.import_result is not None:
        if rest:
            sys.stderr.write(f"error: --import-result takes no engine options, got {' '.join(rest)}\n")
            return 2
        folder = ours.import_result
    else:
        if not rest:
            sys.stderr.write("error: give a VIDEO and --height (see -- --help)\n")
            return 2
        try:  # bad options stop here: argparse's line, or RunConfig's
            cfg = cli.config_from_args(cli.build_parser().parse_args(["run", *rest]))
        except errors.EngineError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 1
        folder = _run_engine(import_module(f"{PACKAGE}.engine.service"), cfg, ours.engine_python)
        if folder is None:
            return 1

    import bpy

    build = import_module(f"{PACKAGE}.scene.build")
    export = import_module(f"{PACKAGE}.scene.export")
    if ours.retarget_to is not None:  # the character's file is the scene
        bpy.ops.wm.open_mainfile(filepath=str(ours.retarget_to.resolve()))
    elif not ours.keep_scene:
        bpy.ops.wm.read_factory_settings(use_empty=True)
    try:
        built = build.build_folder(folder, bpy.context.scene)  # one armature per person (--people)
        result = build.load_result(built["armature"]["hp3d_output"])  # the (first) person's
    except (FileNotFoundError, ValueError, KeyError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    start, end = built["frames"]
    print(f"scene: {built['armature'].name}, {len(built['armature'].data.bones)} bones, "
          f"frames {start}-{end}")
    if built["people"]:  # --fbx, --bvh, SCAIL and retargeting take the first person
        print(f"people: {', '.join(out['armature'].name for _, out in built['people'])}")
    if built.get("views"):
        print(f"cameras: {built['camera'].name}, {', '.join(cam.name for cam in built['views'])}")
    if ours.fbx is not None:
        ours.fbx.parent.mkdir(parents=True, exist_ok=True)
        body = built.get("body")
        export.export_fbx(ours.fbx, built["armature"], (body["armature"], body["mesh"]) if body else (),
                          preset=ours.fbx_preset)
        print(f"fbx: {ours.fbx} ({ours.fbx_preset})")
    if ours.bvh is not None:
        ours.bvh.parent.mkdir(parents=True, exist_ok=True)
        export.export_bvh(ours.bvh, built["armature"])
        print(f"bvh: {ours.bvh}")
    if ours.retarget_to is not None and _retarget(ours, built):
        return 1
    if ours.scail_blender or (cfg is not None and cfg.scail):
        size = cfg.scail_size if cfg is not None else None
        if _scail_blender(built["armature"], result, size, ours.scail_blender, ours.scail_engine):
            return 1
    if ours.blend is not None:
        ours.blend.parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(ours.blend.resolve()), check_existing=False)
        print(f"blend: {ours.blend}")
    print(f"done in {time.perf_counter() - t0:.1f} s ({folder})")
    return 0


def _retarget(ours, built) -> int:
    """--target-armature NAME in the opened --retarget-to file: key it with the motion
    (scene/retarget.py) and, with --character-fbx, export it. Returns an exit code."""
    from importlib import import_module

    import bpy

    retarget = import_module(f"{PACKAGE}.scene.retarget")
    target = bpy.data.objects.get(ours.target_armature)
    try:
        if target is None:
            raise retarget.RetargetError(f"no object '{ours.target_armature}' in {ours.retarget_to}")
        if target.name not in bpy.context.view_layer.objects:  # kept in the file, not in the scene
            bpy.context.scene.collection.objects.link(target)
            bpy.context.view_layer.update()
        rep = retarget.retarget(built["armature"], target)
    except (retarget.RetargetError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    kept = f", previous action '{rep['old_action']}' kept" if rep["old_action"] else ""
    print(f"retarget: {target.name} ({rep['kind']}), {rep['keys']} keys, scale {rep['scale']:.3f}, "
          f"{rep['pinned_frames']} frames with a planted foot{kept}"
          f"{import_module(f'{PACKAGE}.scene.face').summary(rep['face'])}")
    if ours.character_fbx is not None:
        out = retarget.export_character_fbx(ours.character_fbx, target, ours.fbx_preset)
        print(f"character fbx: {out}")
    return 0


def _batch(ours, rest: list[str], cli) -> int:
    """`-- batch INPUTS... --out DIR [...]`: the engine's Ray batch (in a child process of this
    Python, or of --engine-python's), then one scene per finished video, saved as --blend DIR/<stem>.blend and
    exported as --fbx DIR/<stem>.fbx (--blend and --fbx name folders here). Scenes are built one
    at a time in this process: bpy is not for parallel workers."""
    import json
    import subprocess
    from importlib import import_module

    import bpy

    args = cli.build_parser().parse_args(["batch", *rest])  # bad options stop here, exit 2
    # Always a child process: Ray's workers import the engine as the top-level `engine`, which
    # they cannot inside Blender, where the add-on is a package of its own name.
    python = ours.engine_python or sys.executable
    env = import_module(f"{PACKAGE}.engine.service").child_env(python)
    code = subprocess.run([python, "-m", "engine", "batch", *rest], env=env).returncode
    summary = args.out / "batch.json"
    if code == 130 or not summary.is_file():
        return code
    build = import_module(f"{PACKAGE}.scene.build")
    export = import_module(f"{PACKAGE}.scene.export")
    for row in json.loads(summary.read_text())["videos"]:
        if row["status"] not in ("ok", "skipped"):
            continue
        bpy.ops.wm.read_factory_settings(use_empty=True)
        try:
            built = build.build_scene(build.load_result(row["out_dir"]), bpy.context.scene)
        except (FileNotFoundError, ValueError, KeyError) as exc:
            sys.stderr.write(f"error: {row['out_dir']}: {exc}\n")
            code = code or 1
            continue
        stem = Path(row["out_dir"]).name
        if ours.fbx is not None:
            ours.fbx.mkdir(parents=True, exist_ok=True)
            body = built.get("body")
            export.export_fbx(ours.fbx / f"{stem}.fbx", built["armature"],
                              (body["armature"], body["mesh"]) if body else (), preset=ours.fbx_preset)
        if ours.blend is not None:
            ours.blend.mkdir(parents=True, exist_ok=True)
            bpy.ops.wm.save_as_mainfile(filepath=str((ours.blend / f"{stem}.blend").resolve()),
                                        check_existing=False)
        print(f"scene: {stem}")
    return code


def _import_sam3d(ours, rest: list[str]) -> int:
    """--import-sam3d FILE [--blend F]: SAM 3D Body's meshes into the scene (scene/sam3d_import.py)."""
    from importlib import import_module

    import bpy

    if rest:
        sys.stderr.write(f"error: --import-sam3d takes no engine options, got {' '.join(rest)}\n")
        return 2
    if not ours.keep_scene:
        bpy.ops.wm.read_factory_settings(use_empty=True)
    try:
        imported = import_module(f"{PACKAGE}.scene.sam3d_import").import_sam3d(ours.import_sam3d)
    except (OSError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        sys.stderr.write(f"error: cannot import {ours.import_sam3d}: {exc}\n")
        return 1
    start, end = imported["frames"]
    print(f"sam3d: {len(imported['meshes'])} people, frames {start}-{end}")
    if ours.blend is not None:
        ours.blend.parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(ours.blend.resolve()), check_existing=False)
        print(f"blend: {ours.blend}")
    return 0


if __name__ == "__main__":
    code = main()
    # Under `blender --python`, sys.exit would only end the script; Blender then exits (-b) anyway.
    if code:
        sys.exit(code)
