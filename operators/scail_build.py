"""Build SCAIL's cylinder rig on an armature, with the SCAIL scene and camera."""

from __future__ import annotations

import bpy
from bpy.types import Operator

from .scail_setup import ScailOperator


class HP3D_OT_scail_build(ScailOperator, Operator):
    """Dress the armature in SCAIL's cylinders (they follow any animation) and set up the SCAIL
    scene and camera"""

    bl_idname = "humanpose3d.scail_build"
    bl_label = "Build Rig"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        st = self._setup(context)
        if st is None:
            return {"CANCELLED"}
        context.scene.hp3d_scail.status = (f"{len(st.rig.limbs)} limbs, camera {st.intrinsics.width}×"
                                           f"{st.intrinsics.height}")
        return {"FINISHED"}
