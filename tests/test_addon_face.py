"""The face a --holistic run tracked (engine/face.py) on a character (scene/face.py), from Sports2D's
demo (the man's face found in 20 of frames 0-74, kept in 13): Rigify's jaw and eyelid controls, a
Mixamo-named rig's `Jaw` bone (other axes: Y-up bones in centimetres) and ARKit-named shape keys,
keyed only where the face was kept. That the keys move the face the right way is checked with
channels set by hand (the man's mouth stays closed and his eyes open), on the same rigs."""

from __future__ import annotations

import importlib
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
import retarget_rigs as rigs  # noqa: E402
from conftest import load_headless  # noqa: E402

load_headless().load_package()
build = importlib.import_module("humanpose3d.scene.build")
retarget = importlib.import_module("humanpose3d.scene.retarget")
engine_face = importlib.import_module("humanpose3d.engine.face")
scene_face = importlib.import_module("humanpose3d.scene.face")
SHAPE_KEYS = ("jawOpen", "eyeBlinkLeft", "Blink_R")


def _add_jaw(obj) -> None:
    """A jaw bone on the Mixamo-named rig: from the hinge below the ears forward and down to the
    chin, rolled 30 deg (armature space is Y up, Z forward: the rig is turned 90 deg about X)."""
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    eb = obj.data.edit_bones
    head = eb["mixamorig:Head"]
    jaw = eb.new("mixamorig:Jaw")
    hinge = head.head + (head.tail - head.head) * 0.25
    jaw.head = hinge
    jaw.tail = hinge + (head.tail - head.head).normalized() * -4.0 + type(hinge)((0.0, 0.0, 9.0))
    jaw.roll = np.radians(30)
    jaw.parent = head
    bpy.ops.object.mode_set(mode="OBJECT")


def _with_shape_keys(obj):
    bpy.ops.mesh.primitive_cube_add(size=0.2)
    mesh = bpy.context.active_object
    mesh.modifiers.new("Armature", "ARMATURE").object = obj
    for name in ("Basis", *SHAPE_KEYS):
        mesh.shape_key_add(name=name)
    return mesh


@pytest.fixture(scope="module")
def stage(addon, face_run) -> SimpleNamespace:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = build.load_result(face_run.out_dir)
    arm = build.build_scene(res, bpy.context.scene)["armature"]
    source = retarget.load_source(arm)
    chars = {"rigify": rigs.rigify_rig("RigifyFace"), "mixamo": rigs.mixamo_rig("MixamoFace")}
    _add_jaw(chars["mixamo"])
    mesh = _with_shape_keys(chars["mixamo"])
    reports = {kind: retarget.retarget(arm, obj, source=source) for kind, obj in chars.items()}
    return SimpleNamespace(arm=arm, source=source, chars=chars, reports=reports, mesh=mesh)


def _fcurves(idblock) -> dict:
    """The F-curves of the ID's action (an armature's or a Key's), by (data path, index)."""
    return {(fc.data_path, fc.array_index): fc for fc in retarget.keyframes.fcurve_collection(idblock)}


def _keys(fc) -> np.ndarray:
    co = np.empty(2 * len(fc.keyframe_points))
    fc.keyframe_points.foreach_get("co", co)
    return co.reshape(-1, 2)


def test_the_face_is_keyed_only_where_it_was_kept(stage) -> None:
    face = stage.source.face
    kept = np.isfinite(face).all(axis=1)
    frames = stage.source.frames[kept]
    assert kept.sum() >= 10
    rep = stage.reports["rigify"]["face"]
    assert rep["jaw"] == "jaw_master" and rep["lids"] == ["lid.T.L.002", "lid.T.R.002"]
    assert scene_face.summary(rep) == f"; face on {kept.sum()} frames (jaw_master, 2 lids)"
    curves = _fcurves(stage.chars["rigify"])
    w = _keys(curves[('pose.bones["jaw_master"].rotation_quaternion', 0)])
    np.testing.assert_array_equal(w[:, 0], frames)
    np.testing.assert_allclose(2 * np.arccos(w[:, 1]), face[kept, 0], atol=1e-5)
    lid = _keys(curves[('pose.bones["lid.T.L.002"].location', 0)])
    np.testing.assert_array_equal(lid[:, 0], frames)
    body = _keys(curves[('pose.bones["torso"].location', 0)])
    assert len(body) == len(stage.source.frames)  # the body keeps every frame
    mixamo = stage.reports["mixamo"]["face"]
    assert mixamo["jaw"] == "mixamorig:Jaw" and mixamo["lids"] == []
    assert mixamo["shape_keys"] == sorted(f"{stage.mesh.name}:{n}" for n in SHAPE_KEYS)
    shape = _fcurves(stage.mesh.data.shape_keys)
    for name, channel, scale in (("jawOpen", 0, 1 / engine_face.JAW_FULL_RAD), ("eyeBlinkLeft", 1, 1.0),
                                 ("Blink_R", 2, 1.0)):
        co = _keys(shape[(f'key_blocks["{name}"].value', 0)])
        np.testing.assert_array_equal(co[:, 0], frames)
        np.testing.assert_allclose(co[:, 1], np.clip(face[kept, channel] * scale, 0, 1), atol=1e-6)


def _in_head(obj, head: str, points: dict[str, bool], frame: int) -> dict[str, np.ndarray]:
    """Each bone's head (False) or tail (True) at `frame`, in the head bone's frame (the rig's units)."""
    bpy.context.scene.frame_set(frame)
    W = np.array(obj.matrix_world)
    inv = np.linalg.inv(W @ np.array(obj.pose.bones[head].matrix))
    out = {}
    for name, tail in points.items():
        pb = obj.pose.bones[name]
        p = W @ np.r_[np.array(pb.tail if tail else pb.head), 1.0]
        out[name] = (inv @ p)[:3]
    return out


def test_an_open_jaw_and_a_shut_eye_move_the_characters_face(stage) -> None:
    """Channels set by hand (jaw 0.3 rad, the left eye shut, the right open) against none."""
    T = len(stage.source.frames)
    frame = int(stage.source.frames[T // 2])
    moved = {}
    for label, channels in (("rest", (0.0, 0.0, 0.0)), ("moved", (0.3, 1.0, 0.0))):
        src = replace(stage.source, face=np.tile(channels, (T, 1)))
        rig, mixamo = stage.chars["rigify"], stage.chars["mixamo"]
        retarget.retarget(stage.arm, rig, source=src)
        retarget.retarget(stage.arm, mixamo, source=src)
        moved[label] = (_in_head(rig, "head", {"DEF-lip.B.L": False, "DEF-lid.T.L.002": False,
                                                "DEF-lid.B.L.002": False, "DEF-lid.T.R.002": False,
                                                "DEF-lid.B.R.002": False}, frame),
                        _in_head(mixamo, "mixamorig:Head", {"mixamorig:Jaw": True}, frame))
    (rest, rest_m), (now, now_m) = moved["rest"], moved["moved"]
    # Rigify's head bone: Y up the head, Z forward. The lower lip goes down and back.
    drop = rest["DEF-lip.B.L"] - now["DEF-lip.B.L"]
    assert drop[1] > 0.015 and drop[2] > 0.01, drop
    assert np.linalg.norm(now["DEF-lid.T.L.002"] - now["DEF-lid.B.L.002"]) < 0.003
    gap = np.linalg.norm(rest["DEF-lid.T.L.002"] - rest["DEF-lid.B.L.002"])
    assert gap > 0.01
    np.testing.assert_allclose(now["DEF-lid.T.R.002"], rest["DEF-lid.T.R.002"], atol=1e-4)
    # The Mixamo rig's head bone: Y up the head, in centimetres. The chin goes down.
    chin = now_m["mixamorig:Jaw"] - rest_m["mixamorig:Jaw"]
    assert chin[1] < -1.0, chin


def test_a_run_without_a_face_leaves_the_face_alone(stage) -> None:
    mesh_key = stage.mesh.data.shape_keys
    before = mesh_key.animation_data.action
    obj = stage.chars["mixamo"]
    rep = retarget.retarget(stage.arm, obj, source=replace(stage.source, face=None))
    assert rep["face"]["frames"] == 0 and rep["face"]["jaw"] is None
    assert not any("Jaw" in path for path, _ in _fcurves(obj))
    assert mesh_key.animation_data.action == before  # the shape keys' action is not replaced


def test_the_characters_fbx_carries_the_face(stage, tmp_path) -> None:
    """Blender's own FBX importer reads the shape keys' animation back from the character's FBX."""
    face = stage.source.face
    kept = np.isfinite(face).all(axis=1)
    retarget.retarget(stage.arm, stage.chars["mixamo"], source=stage.source)  # the tests above keyed others
    path = retarget.export_character_fbx(tmp_path / "face.fbx", stage.chars["mixamo"], "unity")
    before = set(bpy.data.objects)
    assert bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0) == {"FINISHED"}  # frames as written
    new = [o for o in bpy.data.objects if o not in before]
    try:
        mesh = next(o for o in new if o.type == "MESH" and o.data.shape_keys is not None)
        curves = _fcurves(mesh.data.shape_keys)
        co = _keys(curves[('key_blocks["jawOpen"].value', 0)])
        assert len(co) >= kept.sum()
        at = np.searchsorted(co[:, 0], stage.source.frames[kept])
        np.testing.assert_array_equal(co[at, 0], stage.source.frames[kept])
        want = np.clip(face[kept, 0] / engine_face.JAW_FULL_RAD, 0, 1)
        np.testing.assert_allclose(co[at, 1], want, atol=1e-4)
    finally:
        for o in new:
            bpy.data.objects.remove(o)


def test_the_panel_says_what_the_face_drives(stage) -> None:
    props = bpy.context.scene.hp3d_retarget
    try:
        props.target = stage.chars["rigify"]
        assert props.face == "Face: jaw_master, 2 lids"
        props.target = stage.chars["mixamo"]
        assert props.face == "Face: mixamorig:Jaw, 3 shape keys"
        bare = rigs.mixamo_rig("NoFace", location=(0, 8, 0))
        props.target = bare
        assert props.face.startswith("Face: no jaw bone")
        props.target = None
        assert props.face == ""
        bpy.data.objects.remove(bare)
    finally:
        props.target = None


def test_a_failure_while_keying_the_face_keys_nothing(stage, monkeypatch) -> None:
    """All or nothing: a shape key that cannot be keyed puts back the armature's and every Key's
    action; no new action is left behind."""
    obj, key = stage.chars["mixamo"], stage.mesh.data.shape_keys
    before = (obj.animation_data.action, key.animation_data.action, set(bpy.data.actions))
    write = scene_face.keyframes.write_channel

    def failing(fcurves, path, *args, **kwargs):
        if path.startswith('key_blocks["eyeBlinkLeft"]'):
            raise RuntimeError("cannot key")
        return write(fcurves, path, *args, **kwargs)

    monkeypatch.setattr(scene_face.keyframes, "write_channel", failing)
    with pytest.raises(RuntimeError, match="cannot key"):
        retarget.retarget(stage.arm, obj, source=stage.source)
    assert (obj.animation_data.action, key.animation_data.action, set(bpy.data.actions)) == before
