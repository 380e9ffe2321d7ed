"""Detect the retarget panel's bone map from the character's bones."""

from __future__ import annotations

import bpy
from bpy.types import Operator


class HP3D_OT_retarget_detect(Operator):
    """Detect the bone map from the character's bone names (Rigify, Mixamo, Anny, common names) or,
    failing those, from its skeleton's shape"""

    bl_idname = "humanpose3d.retarget_detect"
    bl_label = "Detect Bones"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..panels.retarget import detect_into

        props = context.scene.hp3d_retarget
        if props.target is None:
            self.report({"ERROR"}, "pick the character's armature first")
            return {"CANCELLED"}
        how = detect_into(props)
        if not how:
            self.report({"WARNING"}, f"'{props.target.name}' does not look humanoid: fill in the red rows")
        else:
            self.report({"INFO"}, f"bone map detected ({how})")
        return {"FINISHED"}
