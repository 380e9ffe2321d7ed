"""Add a further calibrated camera's video to the panel's Cameras list."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy.types import Operator


class HP3D_OT_view_add(Operator):
    """Add a further calibrated camera's video"""

    bl_idname = "humanpose3d.view_add"
    bl_label = "Add Video"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="Video", subtype="FILE_PATH", options={"SKIP_SAVE"})
    filter_movie: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    filter_folder: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context: bpy.types.Context, event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        props = context.scene.hp3d
        props.views.add().path = self.filepath
        props.views_index = len(props.views) - 1
        return {"FINISHED"}
