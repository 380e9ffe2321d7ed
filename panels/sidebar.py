"""View3D ▸ Sidebar ▸ HumanPose3D: settings, Run with a live progress bar and Cancel, and Import."""

from __future__ import annotations

import bpy
from bpy.types import Panel


class HP3D_PT_main(Panel):
    bl_label = "HumanPose3D"
    bl_idname = "HP3D_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HumanPose3D"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        props = context.scene.hp3d
        col = layout.column(align=True)
        col.prop(props, "video_path")
        col.prop(props, "height_m")
        col.prop(props, "mass_kg")
        col = layout.column(align=True)
        col.prop(props, "fov_deg")
        col.prop(props, "focal_px")
        col = layout.column(align=True)
        col.prop(props, "visibility_min")
        col.prop(props, "cutoff_hz")
        col.prop(props, "estimate_missing")
        col.prop(props, "mesh")
        row = layout.row(align=True)
        row.prop(props, "frame_start")
        row.prop(props, "frame_stop")
        layout.prop(props, "output_dir")
        layout.prop(props, "overwrite")

        if props.running:
            text = props.stage or "running"
            if hasattr(layout, "progress"):  # 4.0+
                layout.progress(factor=props.progress, type="BAR", text=text)
            else:
                layout.label(text=f"{text} ({100 * props.progress:.0f} %)")
            layout.operator("humanpose3d.cancel", icon="CANCEL")
        else:
            layout.operator("humanpose3d.run", icon="PLAY")
            if props.stage:
                layout.label(text=props.stage)

        box = layout.box()
        box.prop(props, "result_dir")
        box.operator("humanpose3d.import_result", icon="IMPORT")
        box.operator("humanpose3d.import_sam3d", icon="OUTLINER_OB_MESH")
