"""Apply to Character (retarget the HumanPose3D armature's motion onto the character picked in the
panel) and Export Character FBX. The work is scene/retarget.py's; these only gather and report."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.types import Operator


class HP3D_OT_retarget(Operator):
    """Key the character with the HumanPose3D motion through the bone map (its previous action is
    kept, with a fake user)"""

    bl_idname = "humanpose3d.retarget"
    bl_label = "Apply to Character"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return getattr(context.scene, "hp3d_retarget", None) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..panels.retarget import get_map
        from ..scene import retarget

        props = context.scene.hp3d_retarget
        source = props.source or retarget.find_source(context.scene)
        if source is None:
            self.report({"ERROR"}, "no HumanPose3D armature in the scene: run or import a result first")
            return {"CANCELLED"}
        try:
            rep = retarget.retarget(source, props.target, get_map(props))
        except (retarget.RetargetError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        start, end = rep["frames"]
        kept = f"; previous action '{rep['old_action']}' kept" if rep["old_action"] else ""
        props.status = (f"{props.target.name}: {rep['keys']} keys, frames {start}–{end}, "
                        f"scale {rep['scale']:.2f}{kept}")
        self.report({"INFO"}, props.status)
        return {"FINISHED"}


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
        raw = props.fbx_path.strip() or "//character.fbx"
        if raw.startswith("//") and not bpy.data.filepath:
            from .settings import user_folder

            path = user_folder("characters") / Path(raw[2:]).name
        else:
            path = Path(bpy.path.abspath(raw))
        try:
            out = retarget.export_character_fbx(path, props.target)
        except (RuntimeError, OSError) as exc:
            self.report({"ERROR"}, f"FBX export failed: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"wrote {out}")
        return {"FINISHED"}


CLASSES = (HP3D_OT_retarget, HP3D_OT_retarget_export_fbx)
