"""FBX export of the armature and its animation with settings game engines read correctly."""

from __future__ import annotations

from pathlib import Path

import addon_utils
import bpy

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


def ensure_fbx_addon() -> None:
    """The FBX exporter is a bundled add-on; the bpy module starts with it disabled."""
    if not hasattr(bpy.ops.export_scene, "fbx") or "io_scene_fbx" not in bpy.context.preferences.addons:
        addon_utils.enable("io_scene_fbx", default_set=True)


def export_fbx(path: str | Path, armature: bpy.types.Object, extra: tuple = ()) -> Path:
    """Write `armature` with its action over the scene's frame range to `path`, and the `extra`
    objects (the body mesh and its rig: a skinned mesh) with it."""
    ensure_fbx_addon()
    path = Path(path).resolve()
    view_layer = bpy.context.view_layer
    selected = [o for o in view_layer.objects if o.select_get()]
    active = view_layer.objects.active
    for o in selected:
        o.select_set(False)
    chosen = [armature, *extra]
    for o in chosen:
        o.select_set(True)
    view_layer.objects.active = armature
    settings = dict(FBX_GAME_SETTINGS)
    if extra:
        settings["object_types"] = {"ARMATURE", "MESH"}
    try:
        result = bpy.ops.export_scene.fbx(filepath=str(path), **settings)
    finally:
        for o in chosen:
            o.select_set(False)
        for o in selected:
            o.select_set(True)
        view_layer.objects.active = active
    if "FINISHED" not in result:
        raise RuntimeError(f"FBX export failed: {result}")
    return path
