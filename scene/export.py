"""FBX export of the armature and its animation with presets for Unity, Unreal and Mixamo-style
rigs, and BVH export of the same animation."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import addon_utils
import bpy

from . import skeleton

# Unity and Unreal both expect Y-up FBX with -Z forward and bones along +Y; "FBX All" scaling
# gives metres as 1 unit in Unity and a 1.0 import scale in Unreal; no leaf bones (they become
# stray end joints); the animation baked on every frame with no key reduction.
FBX_GAME_SETTINGS = {
    "use_selection": True,
    "object_types": {"ARMATURE"},
    "apply_unit_scale": True,
    "apply_scale_options": "FBX_SCALE_ALL",
    "axis_forward": "-Z",
    "axis_up": "Y",
    "primary_bone_axis": "Y",
    "secondary_bone_axis": "X",
    "armature_nodetype": "NULL",
    "add_leaf_bones": False,
    "use_armature_deform_only": False,
    "bake_anim": True,
    "bake_anim_use_all_bones": True,
    "bake_anim_use_nla_strips": False,
    "bake_anim_use_all_actions": False,
    "bake_anim_force_startend_keying": True,
    "bake_anim_step": 1.0,
    "bake_anim_simplify_factor": 0.0,
}


# Unreal: Z up with X forward (Unreal's own world axes; its importer converts whatever axis system
# the file declares, so this changes nothing for it and keeps Z-up readers unrotated). Scale: the
# legacy FBX importer takes the file's numbers as centimetres unless "Convert Scene Unit" is ticked
# (off by default), so a file in metres (UnitScaleFactor 100, as FBX_SCALE_UNITS/ALL write) comes in
# 100 times too small at Import Uniform Scale 1.0. FBX_SCALE_NONE with the unit scale applied writes
# centimetres (UnitScaleFactor 1): a 1.72 m subject is 172 uu at import scale 1.0 whether or not
# Convert Scene Unit is on (a file already in cm is not converted). The price is a 100 scale on the
# armature's root node, which the importer folds into the root transform.
FBX_UNREAL_SETTINGS = {
    **FBX_GAME_SETTINGS,
    "apply_scale_options": "FBX_SCALE_NONE",
    "axis_forward": "X",
    "axis_up": "Z",
}

FBX_PRESETS = {
    "unity": FBX_GAME_SETTINGS,
    "unreal": FBX_UNREAL_SETTINGS,
    "mixamo": FBX_GAME_SETTINGS,  # Mixamo's own files are Y up; the bones are renamed (MIXAMO_NAMES)
}

# Our bones (scene/skeleton.py) under Mixamo's names. Mixamo's spine has Spine, Spine1 and Spine2;
# ours is one bone from pelvis to thorax, so it takes the first. Left and right are the subject's.
MIXAMO_NAMES = {"pelvis": "mixamorig:Hips", "spine": "mixamorig:Spine", "neck": "mixamorig:Neck",
                "head": "mixamorig:Head"}
for _S, _side in (("L", "Left"), ("R", "Right")):
    MIXAMO_NAMES.update({
        f"shoulder.{_S}": f"mixamorig:{_side}Shoulder", f"upper_arm.{_S}": f"mixamorig:{_side}Arm",
        f"forearm.{_S}": f"mixamorig:{_side}ForeArm", f"hand.{_S}": f"mixamorig:{_side}Hand",
        f"thigh.{_S}": f"mixamorig:{_side}UpLeg", f"shin.{_S}": f"mixamorig:{_side}Leg",
        f"foot.{_S}": f"mixamorig:{_side}Foot",
    })
    for (_finger, _), _word in zip(skeleton.FINGERS, ("Thumb", "Index", "Middle", "Ring", "Pinky")):
        MIXAMO_NAMES.update({f"{_finger}.0{_k}.{_S}": f"mixamorig:{_side}Hand{_word}{_k}"
                             for _k in (1, 2, 3)})
assert set(MIXAMO_NAMES) == set(skeleton.BONE_NAMES + skeleton.FINGER_NAMES)


def ensure_fbx_addon() -> None:
    """The FBX exporter is a bundled add-on; the bpy module starts with it disabled."""
    if not hasattr(bpy.ops.export_scene, "fbx") or "io_scene_fbx" not in bpy.context.preferences.addons:
        addon_utils.enable("io_scene_fbx", default_set=True)


@contextmanager
def _selected(chosen: list[bpy.types.Object], active: bpy.types.Object):
    """Only `chosen` selected and `active` active for the body; the selection restored after."""
    view_layer = bpy.context.view_layer
    selected = [o for o in view_layer.objects if o.select_get()]
    was_active = view_layer.objects.active
    for o in selected:
        o.select_set(False)
    for o in chosen:
        o.select_set(True)
    view_layer.objects.active = active
    try:
        yield
    finally:
        for o in chosen:
            o.select_set(False)
        for o in selected:
            o.select_set(True)
        view_layer.objects.active = was_active


@contextmanager
def _renamed_bones(armature: bpy.types.Object, names: dict[str, str]):
    """The armature's bones under `names` for the body, their own names after. Renaming a bone
    renames the action's F-curve paths (pose.bones["..."]) and child meshes' vertex groups too."""
    bones = armature.data.bones
    done: list[tuple[str, str]] = []
    try:
        for old, new in names.items():
            if old in bones:
                bones[old].name = new
                done.append((old, bones[new].name))
        yield
    finally:
        for old, new in reversed(done):
            bones[new].name = old


def body_of(armature: bpy.types.Object) -> tuple:
    """(rig, mesh) of the body mesh built with `armature` (scene/body_mesh.py names them after it),
    or () when the result had no --mesh."""
    rig = bpy.data.objects.get(f"{armature.name}_body_rig")
    mesh = bpy.data.objects.get(f"{armature.name}_body")
    return (rig, mesh) if rig is not None and mesh is not None else ()


def export_fbx(path: str | Path, armature: bpy.types.Object, extra: tuple = (),
               preset: str = "unity", deform_only: bool = False) -> Path:
    """Write `armature` with its action over the scene's frame range to `path`, and the `extra`
    objects (the body mesh and its rig: a skinned mesh) with it. `preset`: one of FBX_PRESETS;
    "mixamo" exports our bones under Mixamo's names (MIXAMO_NAMES) and leaves them as they were.
    `deform_only`: only the deforming bones (a control rig's DEF- bones, their motion baked)."""
    if preset not in FBX_PRESETS:
        raise ValueError(f"unknown FBX preset {preset!r}; choose from {', '.join(FBX_PRESETS)}")
    ensure_fbx_addon()
    path = Path(path).resolve()
    settings = dict(FBX_PRESETS[preset])
    if extra:
        settings["object_types"] = {"ARMATURE", "MESH"}
    settings["use_armature_deform_only"] = deform_only
    names = MIXAMO_NAMES if preset == "mixamo" else {}
    with _selected([armature, *extra], armature), _renamed_bones(armature, names):
        result = bpy.ops.export_scene.fbx(filepath=str(path), **settings)
    if "FINISHED" not in result:
        raise RuntimeError(f"FBX export failed: {result}")
    return path


def ensure_bvh_addon() -> None:
    """The BVH exporter is a bundled add-on too, disabled in the bpy module."""
    if not hasattr(bpy.ops.export_anim, "bvh") or "io_anim_bvh" not in bpy.context.preferences.addons:
        addon_utils.enable("io_anim_bvh", default_set=True)


def export_bvh(path: str | Path, armature: bpy.types.Object) -> Path:
    """Write `armature`'s animation over the scene's whole frame range to `path` as BVH, in metres
    (scale 1, Blender's Z-up axes as they are). Rotations in each bone's own order ("NATIVE": our
    quaternion bones are written as XYZ Euler, as BVH has no quaternions); the root carries its
    translation, the other joints rotations only (their offsets are the rest pose's)."""
    ensure_bvh_addon()
    path = Path(path).resolve()
    scene = bpy.context.scene
    with _selected([armature], armature):
        result = bpy.ops.export_anim.bvh(
            filepath=str(path), check_existing=False, global_scale=1.0, frame_start=scene.frame_start,
            frame_end=scene.frame_end, rotate_mode="NATIVE", root_transform_only=True)
    if "FINISHED" not in result:
        raise RuntimeError(f"BVH export failed: {result}")
    return path
