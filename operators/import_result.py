"""Import a finished engine output folder: armature, keyframes, camera, frame rate and range."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import StringProperty
from bpy.types import Operator


def import_folder(context: bpy.types.Context, folder: Path) -> dict:
    """Build the scene from `folder`; shared by Import and the end of Run."""
    from ..scene.build import build_folder

    built = build_folder(folder, context.scene)  # one armature per person of a --people run
    context.scene.hp3d.result_dir = str(folder)
    arm = built["armature"]
    for obj in context.view_layer.objects:
        obj.select_set(False)
    arm.select_set(True)
    context.view_layer.objects.active = arm
    return built


class HP3D_OT_import_result(Operator):
    """Build an animated armature and the camera from a finished HumanPose3D output folder"""

    bl_idname = "humanpose3d.import_result"
    bl_label = "Import Result"
    bl_options = {"REGISTER", "UNDO"}

    directory: StringProperty(name="Folder", subtype="DIR_PATH",
                              description="Output folder (default: the panel's Result)")

    def execute(self, context: bpy.types.Context) -> set[str]:
        raw = self.directory or context.scene.hp3d.result_dir
        if not raw.strip():
            self.report({"ERROR"}, "choose a result folder first")
            return {"CANCELLED"}
        folder = Path(bpy.path.abspath(raw))
        try:
            built = import_folder(context, folder)
        except (FileNotFoundError, ValueError, KeyError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        start, end = built["frames"]
        self.report({"INFO"}, f"imported {folder.name}: frames {start}–{end}")
        return {"FINISHED"}
