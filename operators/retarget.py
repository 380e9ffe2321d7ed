"""Apply to Character: retarget the HumanPose3D armature's motion onto the character picked in the
panel. The work is scene/retarget.py's; this only gathers and reports."""

from __future__ import annotations

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
        from ..scene import face, retarget

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
                        f"scale {rep['scale']:.2f}{kept}{face.summary(rep['face'])}")
        self.report({"INFO"}, props.status)
        return {"FINISHED"}
