"""Load a saved bone map preset into the retarget panel."""

from __future__ import annotations

import bpy
from bpy.types import Operator

from . import settings


class HP3D_OT_retarget_preset_load(Operator):
    """Load a saved bone map preset into the panel"""

    bl_idname = "humanpose3d.retarget_preset_load"
    bl_label = "Load Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..panels.retarget import set_map
        from ..scene import bone_map

        props = context.scene.hp3d_retarget
        path = settings.bone_map_presets() / f"{props.preset}.json"
        try:
            loaded = bone_map.load_preset(path)
        except (OSError, bone_map.BoneMapError) as exc:
            self.report({"ERROR"}, f"cannot load {path.name}: {exc}")
            return {"CANCELLED"}
        set_map(props, loaded, f"preset {props.preset}")
        self.report({"INFO"}, f"loaded {path.name}")
        return {"FINISHED"}
