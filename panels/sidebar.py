"""View3D ▸ Sidebar ▸ HumanPose3D: subject, camera and output, Run with a live progress bar and Cancel,
Import; below, closed by default, every other engine option (Tracking, Cleaning & Fit, Biomechanics,
SCAIL & Body Mesh). Run stays at the top so its progress bar is in view while the options are open."""

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
        settings = layout.column()
        settings.enabled = not props.running  # a run uses the settings it started with
        col = settings.column(align=True)
        col.prop(props, "video_path")
        col.prop(props, "height_m")
        col.prop(props, "mass_kg")
        col = settings.column(align=True)
        col.prop(props, "fov_deg")
        col.prop(props, "focal_px")
        row = settings.row(align=True)
        row.prop(props, "frame_start")
        row.prop(props, "frame_stop")
        settings.prop(props, "output_dir")
        settings.prop(props, "overwrite")

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


class SubPanel(Panel):
    """A closed sub-panel of the HumanPose3D tab (a base: Blender registers only its subclasses)."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HumanPose3D"
    bl_parent_id = "HP3D_PT_main"
    bl_options = {"DEFAULT_CLOSED"}


class _Options(SubPanel):
    """A sub-panel of engine options, greyed out while a run is going."""

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        props = context.scene.hp3d
        layout.enabled = not props.running
        self.draw_options(layout, props)

    def draw_options(self, layout: bpy.types.UILayout, props) -> None:
        raise NotImplementedError


class HP3D_PT_tracking(_Options):
    bl_label = "Tracking"
    bl_idname = "HP3D_PT_tracking"

    def draw_options(self, layout: bpy.types.UILayout, props) -> None:
        layout.prop(props, "pose_model")
        layout.prop(props, "visibility_min")
        layout.prop(props, "holistic")
        layout.prop(props, "roi")


class HP3D_PT_cleaning(_Options):
    bl_label = "Cleaning & Fit"
    bl_idname = "HP3D_PT_cleaning"

    def draw_options(self, layout: bpy.types.UILayout, props) -> None:
        col = layout.column(align=True)
        col.prop(props, "max_gap_s")
        col.prop(props, "estimate_missing")
        col = layout.column(align=True)
        col.prop(props, "cutoff_hz")
        sub = col.column(align=True)
        sub.active = props.cutoff_hz > 0
        sub.prop(props, "filter_order")
        col = layout.column(align=True)
        col.prop(props, "hold_bone_lengths")
        col.prop(props, "fit_skeleton")
        sub = col.column(align=True)
        sub.active = props.fit_skeleton
        sub.prop(props, "foot_lock")
        sub.prop(props, "lifter_path")
        row = sub.row()
        row.active = bool(props.lifter_path.strip())
        row.prop(props, "lifter_layout")


class HP3D_PT_biomechanics(_Options):
    bl_label = "Biomechanics"
    bl_idname = "HP3D_PT_biomechanics"

    def draw_options(self, layout: bpy.types.UILayout, props) -> None:
        layout.prop(props, "augmentation_cycles")
        col = layout.column(align=True)
        col.prop(props, "joint_angles")
        sub = col.row()
        sub.active = props.joint_angles
        sub.prop(props, "angle_plots")
        layout.prop(props, "opensim")


class HP3D_PT_outputs(_Options):
    bl_label = "SCAIL & Body Mesh"
    bl_idname = "HP3D_PT_outputs"

    def draw_options(self, layout: bpy.types.UILayout, props) -> None:
        col = layout.column(align=True)
        col.prop(props, "scail")
        sub = col.column(align=True)
        sub.active = props.scail
        sub.prop(props, "scail_size")
        col = layout.column(align=True)
        col.prop(props, "mesh")
        sub = col.column(align=True)
        sub.active = props.mesh
        sub.prop(props, "mesh_formats")
        sub.prop(props, "sex")
        sub.prop(props, "age_years")


CLASSES = (HP3D_PT_main, HP3D_PT_tracking, HP3D_PT_cleaning, HP3D_PT_biomechanics, HP3D_PT_outputs)
