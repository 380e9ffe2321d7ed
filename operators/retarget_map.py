"""The retarget panel's bone map: detect it from the character's bones, save it as a preset (JSON in
the extension's user folder, bone_maps/) and load one back."""

from __future__ import annotations

import bpy
from bpy.types import Operator

from .settings import user_folder


def preset_folder():
    return user_folder("bone_maps")


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
            path = bone_map.save_preset(preset_folder(), name, current)
        except OSError as exc:
            self.report({"ERROR"}, f"cannot save the preset: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"saved {path}")
        return {"FINISHED"}


class HP3D_OT_retarget_preset_load(Operator):
    """Load a saved bone map preset into the panel"""

    bl_idname = "humanpose3d.retarget_preset_load"
    bl_label = "Load Bone Map"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..panels.retarget import set_map
        from ..scene import bone_map

        props = context.scene.hp3d_retarget
        path = preset_folder() / f"{props.preset}.json"
        try:
            loaded = bone_map.load_preset(path)
        except (OSError, bone_map.BoneMapError) as exc:
            self.report({"ERROR"}, f"cannot load {path.name}: {exc}")
            return {"CANCELLED"}
        set_map(props, loaded, f"preset {props.preset}")
        self.report({"INFO"}, f"loaded {path.name}")
        return {"FINISHED"}


CLASSES = (HP3D_OT_retarget_detect, HP3D_OT_retarget_preset_save, HP3D_OT_retarget_preset_load)
