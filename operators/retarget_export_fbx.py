"""Export Character FBX: the character picked in the retarget panel, with its motion."""

from __future__ import annotations

import bpy
from bpy.types import Operator

from . import settings


class HP3D_OT_retarget_export_fbx(Operator):
    """Export the character (its armature, meshes and motion) as FBX"""

    bl_idname = "humanpose3d.retarget_export_fbx"
    bl_label = "Export Character FBX"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        props = getattr(context.scene, "hp3d_retarget", None)
        return props is not None and props.target is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..scene import retarget

        props = context.scene.hp3d_retarget
        path = settings.file_path(props.fbx_path.strip() or "//character.fbx", "characters")
        try:
            out = retarget.export_character_fbx(path, props.target)
        except (RuntimeError, OSError) as exc:
            self.report({"ERROR"}, f"FBX export failed: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"wrote {out}")
        return {"FINISHED"}
