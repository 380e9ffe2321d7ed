"""Save the retarget panel's bone map as a preset (JSON in the extension's user folder,
bone_maps/: operators/settings.bone_map_presets)."""

from __future__ import annotations

import bpy
from bpy.types import Operator

from . import settings


class HP3D_OT_retarget_preset_save(Operator):
    """Save the bone map as a preset"""

    bl_idname = "humanpose3d.retarget_preset_save"
    bl_label = "Save Bone Map"

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..panels.retarget import get_map
        from ..scene import bone_map

        props = context.scene.hp3d_retarget
        current = get_map(props)
        if not current:
            self.report({"ERROR"}, "the bone map is empty: pick a character or detect first")
            return {"CANCELLED"}
        name = props.preset_name.strip() or (props.target.name if props.target else "bone_map")
        try:
            path = bone_map.save_preset(settings.bone_map_presets(), name, current)
        except OSError as exc:
            self.report({"ERROR"}, f"cannot save the preset: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"saved {path}")
        return {"FINISHED"}
