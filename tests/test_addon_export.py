"""Export presets: FBX for Unity, Unreal and Mixamo-style rigs and BVH (scene/export.py), each
re-imported into a fresh Blender scene (bone count, frame range, joint world positions at sampled
frames within 1 mm of the exported armature's) and, where assimp is installed, read by it too."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

# The helpers of the add-on's main test module (its import loads the package as Blender does).
from test_addon import _assimp_world_positions, _fbx_unit_scale  # noqa: E402

build = importlib.import_module("humanpose3d.scene.build")
export = importlib.import_module("humanpose3d.scene.export")
skeleton = importlib.import_module("humanpose3d.scene.skeleton")

TOL_M = 1e-3
FBX_IMPORT_AXES = {"unity": ("-Z", "Y"), "unreal": ("X", "Z"), "mixamo": ("-Z", "Y")}


def _heads(arm, frames) -> dict[int, dict[str, np.ndarray]]:
    scene = bpy.context.scene
    out = {}
    for f in frames:
        scene.frame_set(f)
        out[f] = {pb.name: np.array(arm.matrix_world @ pb.head) for pb in arm.pose.bones}
    return out


def _fcurve_paths(arm) -> list[str]:
    action = arm.animation_data.action
    fcurves = getattr(action, "fcurves", None)
    if fcurves is None or len(fcurves) == 0:  # Blender 5: slotted actions keep them in channelbags
        fcurves = [fc for layer in action.layers for strip in layer.strips
                   for bag in strip.channelbags for fc in bag.fcurves]
    return sorted(fc.data_path for fc in fcurves)


@pytest.fixture(scope="module")
def exported(cam01_run, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The cam01 run's armature built and exported with every FBX preset and as BVH; what it was
    before and after the exports."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    built = build.build_scene(build.load_result(cam01_run.result.out_dir), bpy.context.scene)
    arm, (start, end) = built["armature"], built["frames"]
    frames = (start, (start + end) // 2, end)
    names = [b.name for b in arm.data.bones]
    paths = _fcurve_paths(arm)
    heads = _heads(arm, frames)
    tmp = tmp_path_factory.mktemp("export")
    files = {p: export.export_fbx(tmp / f"{p}.fbx", arm, preset=p) for p in export.FBX_PRESETS}
    files["bvh"] = export.export_bvh(tmp / "anim.bvh", arm)
    scene = bpy.context.scene
    after = SimpleNamespace(names=[b.name for b in arm.data.bones], paths=_fcurve_paths(arm),
                            heads=_heads(arm, frames))
    fps = (scene.render.fps, scene.render.fps_base)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return SimpleNamespace(tmp=tmp, files=files, frames=frames, range=(start, end), names=names,
                           paths=paths, heads=heads, after=after, fps=fps)


def _fresh_scene(exported) -> bpy.types.Scene:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = exported.fps
    return scene


def _imported_armature():
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(arms) == 1, [o.name for o in bpy.data.objects]
    return arms[0]


def _position_errors(exported, arm, rename=None) -> list[float]:
    got = _heads(arm, exported.frames)
    rename = rename or {}
    return [float(np.linalg.norm(got[f][rename.get(name, name)] - pos))
            for f in exported.frames for name, pos in exported.heads[f].items()]


@pytest.mark.parametrize("preset", ["unity", "unreal", "mixamo"])
def test_fbx_preset_round_trip_in_blender(exported, preset: str) -> None:
    _fresh_scene(exported)
    export.ensure_fbx_addon()
    forward, up = FBX_IMPORT_AXES[preset]
    assert bpy.ops.import_scene.fbx(filepath=str(exported.files[preset]), anim_offset=0.0,
                                    axis_forward=forward, axis_up=up) == {"FINISHED"}
    arm = _imported_armature()
    assert len(arm.data.bones) == len(exported.names) == len(skeleton.BONE_NAMES)  # no leaf bones
    assert tuple(arm.animation_data.action.frame_range) == exported.range
    rename = export.MIXAMO_NAMES if preset == "mixamo" else None
    if preset == "mixamo":
        assert all(b.name.startswith("mixamorig:") for b in arm.data.bones)
        want = sorted(export.MIXAMO_NAMES[n] for n in exported.names)
        assert sorted(b.name for b in arm.data.bones) == want
    errors = _position_errors(exported, arm, rename)
    assert max(errors) < TOL_M, (preset, max(errors))


def test_fbx_unit_scales(exported) -> None:
    """Unreal's file holds centimetres (UnitScaleFactor 1), read at import scale 1.0 with Convert
    Scene Unit on or off; Unity's and Mixamo's hold metres (UnitScaleFactor 100)."""
    assert _fbx_unit_scale(exported.files["unreal"]) == 1.0
    assert _fbx_unit_scale(exported.files["unity"]) == 100.0
    assert _fbx_unit_scale(exported.files["mixamo"]) == 100.0


def test_mixamo_export_leaves_the_armature_as_it_was(exported) -> None:
    assert exported.after.names == exported.names
    assert exported.after.paths == exported.paths
    assert any('pose.bones["pelvis"]' in p for p in exported.paths)
    for f in exported.frames:
        for name, pos in exported.heads[f].items():
            assert np.linalg.norm(exported.after.heads[f][name] - pos) < 1e-9


def test_bvh_round_trip_in_blender(exported) -> None:
    _fresh_scene(exported)
    export.ensure_bvh_addon()
    start, end = exported.range
    assert bpy.ops.import_anim.bvh(filepath=str(exported.files["bvh"]), global_scale=1.0,
                                  frame_start=start, use_fps_scale=False, update_scene_duration=True,
                                  rotate_mode="NATIVE", axis_forward="Y", axis_up="Z") == {"FINISHED"}
    arm = _imported_armature()
    assert sorted(b.name for b in arm.data.bones) == sorted(exported.names)
    assert tuple(arm.animation_data.action.frame_range) == exported.range
    lines = exported.files["bvh"].read_text().splitlines()
    assert int(next(ln for ln in lines if ln.startswith("Frames:")).split()[1]) == end - start + 1
    errors = _position_errors(exported, arm)
    assert max(errors) < TOL_M, max(errors)


def _assimp_dump(path: Path) -> Path:
    # The independent FBX/BVH reader; `make test` installs it (scripts/test_deps.sh).
    assert shutil.which("assimp"), "assimp is missing: apt-get install assimp-utils"
    xml = path.with_suffix(path.suffix + ".xml")
    out = subprocess.run(["assimp", "dump", str(path), str(xml), "-x"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return xml


def test_unreal_fbx_read_by_assimp(exported) -> None:
    """assimp sees the Unreal file's raw numbers: centimetres on Z up, X forward."""
    from bpy_extras.io_utils import axis_conversion

    xml = _assimp_dump(exported.files["unreal"])
    to_file = 100.0 * np.array(axis_conversion(to_forward="X", to_up="Z"))
    start = exported.range[0]
    errors = []
    for f in exported.frames:
        pos = _assimp_world_positions(xml, f - start)
        errors += [np.linalg.norm(pos[name] / 100.0 - to_file @ p / 100.0)
                   for name, p in exported.heads[f].items()]
    assert max(errors) < TOL_M, max(errors)
    assert len(list(ET.parse(xml).getroot().iter("NodeAnim"))) == len(exported.names) + 1


def test_bvh_read_by_assimp(exported) -> None:
    """assimp reads every joint's channels over every frame, and the root's translation keys are the
    pelvis's world positions in metres (Blender's axes)."""
    xml = _assimp_dump(exported.files["bvh"])
    start, end = exported.range
    channels = {na.get("node"): na for na in ET.parse(xml).getroot().iter("NodeAnim")}
    assert sorted(channels) == sorted(exported.names)
    assert all(len(na.find("RotationKeyList")) == end - start + 1 for na in channels.values())
    keys = channels["pelvis"].find("PositionKeyList")
    errors = [np.linalg.norm(np.array(keys[f - start].text.split(), float) - exported.heads[f]["pelvis"])
              for f in exported.frames]
    assert max(errors) < TOL_M, max(errors)


def test_headless_exports_with_a_preset_and_bvh(cam01_run, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    fbx, bvh = tmp_path / "mixamo.fbx", tmp_path / "anim.bvh"
    out = subprocess.run([sys.executable, str(root / "headless.py"), "--", "--import-result",
                          str(cam01_run.result.out_dir), "--fbx", str(fbx), "--fbx-preset", "mixamo",
                          "--bvh", str(bvh)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"fbx: {fbx} (mixamo)" in out.stdout and f"bvh: {bvh}" in out.stdout
    assert b"mixamorig:Hips" in fbx.read_bytes()
    assert bvh.read_text().startswith("HIERARCHY\nROOT pelvis")


def test_panel_export_fbx_writes_the_chosen_preset(exported, cam01_run, addon, tmp_path: Path) -> None:
    """The sidebar's Export FBX: the imported result's armature with the panel's preset, which
    re-imports with the same joints as the scene/export.py file of that preset."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    props = bpy.context.scene.hp3d
    assert not bpy.ops.humanpose3d.export_fbx.poll()  # nothing of ours to export yet
    assert bpy.ops.humanpose3d.import_result(directory=str(cam01_run.result.out_dir)) == {"FINISHED"}
    props.fbx_preset, props.fbx_path = "unreal", str(tmp_path / "sub" / "panel.fbx")
    assert bpy.ops.humanpose3d.export_fbx() == {"FINISHED"}
    path = tmp_path / "sub" / "panel.fbx"
    assert _fbx_unit_scale(path) == 1.0  # Unreal's centimetres
    _fresh_scene(exported)
    forward, up = FBX_IMPORT_AXES["unreal"]
    assert bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0, axis_forward=forward,
                                    axis_up=up) == {"FINISHED"}
    arm = _imported_armature()
    assert sorted(b.name for b in arm.data.bones) == sorted(exported.names)
    assert max(_position_errors(exported, arm)) < TOL_M
