"""Export FBX: the HumanPose3D armature (and its body mesh, skinned) with its motion, with one of
scene/export.py's presets (Unity, Unreal, Mixamo); what headless.py's --fbx writes."""

from __future__ import annotations

import bpy
from bpy.types import Operator

from . import settings


def _armature(context: bpy.types.Context) -> bpy.types.Object | None:
    """The active object if it is one of ours, else the armature of the panel's Result, else the
    only one of ours in the scene."""
    obj = context.active_object
    if obj is not None and obj.type == "ARMATURE" and obj.get("hp3d_output"):
        return obj
    ours = [o for o in context.scene.objects if o.type == "ARMATURE" and o.get("hp3d_output")]
    result = context.scene.hp3d.result_dir
    for o in ours:
        if result and o.get("hp3d_output") == result:
            return o
    return ours[0] if len(ours) == 1 else None


class HP3D_OT_export_fbx(Operator):
    """Export the HumanPose3D armature and its animation (and the body mesh) as FBX for Unity,
    Unreal or Mixamo"""

    bl_idname = "humanpose3d.export_fbx"
    bl_label = "Export FBX"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return getattr(context.scene, "hp3d", None) is not None and _armature(context) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..scene import export

        props, arm = context.scene.hp3d, _armature(context)
        path = settings.file_path(props.fbx_path.strip() or f"//{arm.name}.fbx", "fbx")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            out = export.export_fbx(path, arm, export.body_of(arm), preset=props.fbx_preset)
        except (RuntimeError, OSError) as exc:
            self.report({"ERROR"}, f"FBX export failed: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"wrote {out} ({props.fbx_preset})")
        return {"FINISHED"}
