"""Import a SAM 3D Body result (or a HumanPose3D <stem>_mesh.npz) as levelled, grounded meshes."""

from __future__ import annotations

import pickle
from pathlib import Path

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy.types import Operator
from bpy_extras.io_utils import ImportHelper


class HP3D_OT_import_sam3d(Operator, ImportHelper):
    """Import SAM 3D Body's meshes (.npz or .pkl of its per-person dicts, one image or a sequence)"""

    bl_idname = "humanpose3d.import_sam3d"
    bl_label = "Import SAM 3D Body"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.npz;*.pkl;*.pickle", options={"HIDDEN"})
    ground: BoolProperty(name="Level and Ground", default=True,
                         description="Turn the bodies upright and stand them on z = 0 (through a parent "
                                     "Empty: clear its transform for the camera frame)")

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ..scene.sam3d_import import import_sam3d

        path = Path(self.filepath)
        try:
            imported = import_sam3d(path, ground=self.ground)
        except (OSError, ValueError, KeyError, pickle.UnpicklingError) as exc:
            self.report({"ERROR"}, f"cannot import {path.name}: {exc}")
            return {"CANCELLED"}
        start, end = imported["frames"]
        self.report({"INFO"}, f"{path.name}: {len(imported['meshes'])} people, frames {start}–{end}")
        return {"FINISHED"}
