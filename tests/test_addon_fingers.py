"""Fingers, where a --holistic run tracked the hands (engine/hands.py → scene/skeleton.add_hands):
three bones a finger in our armature, keyed where the hand was found, and the same fingers on a
character (Rigify, Mixamo-style) through the retarget. A run without hands leaves every finger
alone (test_addon_retarget.py).

Checked on cam01 (100 frames, the left hand found in 53 of them, the right in 73):
- the hands in the markers npz bend their fingers towards the palm and agree with the pose
  model's own palm (wrist, index, pinky) in orientation;
- our finger bones, as Blender evaluates them, point along the tracked finger segments (median
  under 4 deg: they are steadied, skeleton.steady_fingers) and bend as the tracked fingers do
  (the joints between a finger's bones, median difference under 3 deg);
- on each character the fingers point along our armature's (median under 1 deg) and bend as
  they do (under 1 deg), with keys only where a hand was found and the body keyed throughout."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
import retarget_rigs as rigs  # noqa: E402
from conftest import load_headless  # noqa: E402

load_headless().load_package()
build = importlib.import_module("humanpose3d.scene.build")
retarget = importlib.import_module("humanpose3d.scene.retarget")
skeleton = importlib.import_module("humanpose3d.scene.skeleton")
hands_mod = importlib.import_module("humanpose3d.engine.hands")
export = importlib.import_module("humanpose3d.scene.export")

KINDS = ("rigify", "mixamo")
@pytest.fixture(scope="module")
def stage(addon, holistic_run: Path) -> SimpleNamespace:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = build.load_result(holistic_run)
    out = build.build_scene(res, bpy.context.scene)
    source = retarget.load_source(out["armature"])
    chars = {"rigify": rigs.rigify_rig("RigifyChar"), "mixamo": rigs.mixamo_rig("MixamoChar")}
    reports = {kind: retarget.retarget(out["armature"], obj, source=source) for kind, obj in chars.items()}
    ours = rigs.world_axes(out["armature"], list(skeleton.FINGER_NAMES), source.frames)  # as Blender shows it
    return SimpleNamespace(result=res, arm=out["armature"], source=source, chars=chars, reports=reports,
                           ours=ours)


def test_the_hands_bend_towards_the_palm_and_agree_with_the_pose(holistic_run: Path) -> None:
    with np.load(next(holistic_run.glob("*_markers.npz"))) as d:
        hands, markers = d["hands_camera"].astype(float), d["markers_33_camera"].astype(float)
    found = np.isfinite(hands).all(axis=(2, 3))
    assert (found.sum(axis=0) > 40).all(), found.sum(axis=0)
    for side, (wrist, pinky, index) in enumerate(((15, 17, 19), (16, 18, 20))):
        curl = hands_mod.backward_curl(hands[:, side], side)
        # Mirrored in depth, cam01's left hand bent its fingers backwards by 10-21 cm in sum in
        # every frame. (The low-pass may carry a frame next to a mirrored-back one a little over.)
        curl = curl[found[:, side]]
        assert np.median(curl) < -0.05 and (curl < 0.01).mean() > 0.95, np.round(curl * 100, 1)
        pose = np.cross(markers[:, index] - markers[:, wrist], markers[:, pinky] - markers[:, wrist])
        ours = np.cross(hands[:, side, 5] - hands[:, side, 0], hands[:, side, 17] - hands[:, side, 0])
        cos = np.sum(pose * ours, -1) / np.linalg.norm(pose, axis=-1) / np.linalg.norm(ours, axis=-1)
        assert np.nanmedian(cos) > 0.6, (side, np.nanmedian(cos))  # mirrored hands give about -0.7


def test_our_armature_has_fingers_keyed_where_the_hand_was_found(stage) -> None:
    arm, res = stage.arm, stage.result
    names = list(skeleton.FINGER_NAMES)
    assert len(arm.data.bones) == len(skeleton.BONES) + 30
    for S in "LR":
        for finger, _ in skeleton.FINGERS:
            assert arm.data.bones[f"{finger}.01.{S}"].parent.name == f"hand.{S}"
    found = np.isfinite(res.hands_camera).all(axis=(2, 3))
    fcurves = {fc.data_path: fc for fc in _fcurves(arm)}
    for S, side in (("L", 0), ("R", 1)):
        fc = fcurves[f'pose.bones["f_middle.02.{S}"].rotation_quaternion']
        assert len(fc.keyframe_points) == found[:, side].sum()
    want = rigs.our_segments(stage.source.pts, names)
    err = rigs.angle(stage.ours, want)
    bend = np.abs(rigs.finger_bends(stage.ours, names) - rigs.finger_bends(want, names))
    print(f"\nours against the tracked fingers: direction {np.nanmedian(err):.2f} deg "
          f"(p95 {np.nanpercentile(err, 95):.2f}), bend {np.nanmedian(bend):.2f} deg")
    # Steadied (skeleton.steady_fingers), so not exact: 2.5 and 1.4 deg on cam01.
    assert np.nanmedian(err) < 4.0 and np.nanmedian(bend) < 3.0


def _fcurves(obj):
    action = obj.animation_data.action
    if hasattr(action, "fcurves") and len(action.fcurves):
        return list(action.fcurves)
    return [fc for layer in action.layers for strip in layer.strips
            for bag in strip.channelbags for fc in bag.fcurves]


@pytest.mark.parametrize("kind", KINDS)
def test_a_characters_fingers_follow_ours(stage, kind) -> None:
    obj, rep = stage.chars[kind], stage.reports[kind]
    bone_map = rep["map"]
    slots = [s for s in skeleton.FINGER_NAMES if bone_map.get(s)]
    assert len(slots) == 30, slots
    # Rigify's keys go on its FK controls; what deforms the mesh follows them: read its ORG- bones.
    measured = [("ORG-" if kind == "rigify" else "") + bone_map[s][0] for s in slots]
    ev = rigs.world_axes(obj, measured, stage.source.frames)
    ours = stage.ours @ rep["solution"].yaw.T  # our armature's fingers, turned to the character's facing
    err = rigs.angle(ev, ours)
    bend = np.abs(rigs.finger_bends(ev, slots) - rigs.finger_bends(ours, slots))
    print(f"\n{kind}: finger direction {np.nanmedian(err):.2f} deg (p95 {np.nanpercentile(err, 95):.2f}), "
          f"bend {np.nanmedian(bend):.2f} deg (p95 {np.nanpercentile(bend, 95):.2f})")
    assert np.nanmedian(err) < 1.0 and np.nanmedian(bend) < 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_fingers_are_keyed_only_where_tracked(stage, kind) -> None:
    obj, rep = stage.chars[kind], stage.reports[kind]
    found = np.isfinite(stage.result.hands_camera).all(axis=(2, 3)).sum(axis=0)
    fcurves = {fc.data_path: fc for fc in _fcurves(obj)}
    for S, n in zip("LR", found):
        bone = rep["map"][f"f_index.02.{S}"][0]
        fc = next(fc for path, fc in fcurves.items() if f'"{bone}"' in path and "rotation" in path)
        assert len(fc.keyframe_points) == n
    body = rep["map"]["forearm.L"][0]
    fc = next(fc for path, fc in fcurves.items() if f'"{body}"' in path and "rotation" in path)
    assert len(fc.keyframe_points) == len(stage.source.frames)  # the body keeps every frame


def test_a_finger_the_rig_drives_itself_is_left_to_it(stage) -> None:
    """A character whose index finger follows a constraint (a finger control rig): that finger
    is left alone, not the whole retarget refused; every other finger and the body are keyed."""
    obj = rigs.mixamo_rig("Driven", location=(0, 4, 0))
    try:
        con = obj.pose.bones["mixamorig:LeftHandIndex2"].constraints.new("COPY_ROTATION")
        con.target, con.subtarget = obj, "mixamorig:LeftHandIndex1"
        rep = retarget.retarget(stage.arm, obj, source=stage.source)
        assert "f_index.02.L" not in rep["map"] and "f_index.02.R" in rep["map"]
        keyed = {fc.data_path.split('"')[1] for fc in _fcurves(obj)}
        assert "mixamorig:LeftHandIndex2" not in keyed
        assert {"mixamorig:LeftHandIndex1", "mixamorig:RightHandIndex2", "mixamorig:Hips"} <= keyed
    finally:
        bpy.data.objects.remove(obj)


def test_the_fingers_come_back_from_a_mixamo_fbx(holistic_run: Path, tmp_path: Path) -> None:
    """Our armature with fingers exported with the Mixamo preset (the fingers named
    mixamorig:LeftHandIndex1 ...) and imported into an empty scene: every finger bone is there,
    keyed, and points as it did. Last in this module: it empties the scene."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = build.load_result(holistic_run)
    arm = build.build_scene(res, bpy.context.scene)["armature"]
    frames = build.blender_frames(res)[::5]
    before = rigs.world_axes(arm, list(skeleton.FINGER_NAMES), frames)
    path = export.export_fbx(tmp_path / "fingers.fbx", arm, preset="mixamo")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    export.ensure_fbx_addon()
    assert bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0, axis_forward="-Z",
                                    axis_up="Y") == {"FINISHED"}
    (imported,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    names = [export.MIXAMO_NAMES[n] for n in skeleton.FINGER_NAMES]
    assert set(names) <= set(imported.data.bones.keys())
    keyed = {fc.data_path.split('"')[1] for fc in _fcurves(imported) if fc.data_path.startswith("pose.bones")}
    assert set(names) <= keyed
    err = rigs.angle(rigs.world_axes(imported, names, frames), before)
    assert np.nanmedian(err) < 1.0 and np.nanpercentile(err, 95) < 2.0, np.nanpercentile(err, [50, 95])
