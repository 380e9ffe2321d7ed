"""Remove the selected video from the panel's Cameras list."""

from __future__ import annotations

import bpy
from bpy.types import Operator


class HP3D_OT_view_remove(Operator):
    """Remove the selected further video"""

    bl_idname = "humanpose3d.view_remove"
    bl_label = "Remove Video"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        props = getattr(context.scene, "hp3d", None)
        return props is not None and len(props.views) > 0

    def execute(self, context: bpy.types.Context) -> set[str]:
        props = context.scene.hp3d
        index = min(props.views_index, len(props.views) - 1)
        props.views.remove(index)
        props.views_index = max(0, min(index, len(props.views) - 1))
        return {"FINISHED"}
