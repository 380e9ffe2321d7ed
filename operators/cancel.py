"""Cancel: stop the live run (the engine stops between frames; nothing half-written is left)."""

from __future__ import annotations

import bpy
from bpy.types import Operator

from .run import active_run


class HP3D_OT_cancel(Operator):
    """Stop the running HumanPose3D engine (nothing half-written is left)"""

    bl_idname = "humanpose3d.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return active_run() is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        run = active_run()
        if run is not None:
            run.cancel()
            context.scene.hp3d.stage = "cancelling"
        return {"FINISHED"}
