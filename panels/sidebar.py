"""View3D ▸ Sidebar ▸ HumanPose3D: subject, camera (and a calibrated run's further cameras) and
output, Run with a live progress bar and Cancel, Import; below, closed by default, every other engine
option (Tracking, Cleaning & Fit, Biomechanics, SCAIL & Body Mesh). Run stays at the top so its
progress bar is in view while the options are open."""

from __future__ import annotations

import bpy
from bpy.types import Panel, UIList

from ..operators import settings as run_settings


class HP3D_UL_views(UIList):
    """The further cameras' videos of a calibrated run, one path per row."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0,
                  flt_flag=0) -> None:
        layout.prop(item, "path", text="", emboss=True)


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
        draw_cameras(settings.box(), props)
        col = settings.column(align=True)
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
        box = layout.box()
        row = box.row(align=True)
        row.prop(props, "fbx_preset", text="")
        row.operator("humanpose3d.export_fbx", icon="EXPORT")
        box.prop(props, "fbx_path")


def draw_cameras(box: bpy.types.UILayout, props) -> None:
    """Further calibrated cameras under the video: their videos, the calibration, sync offsets."""
    box.label(text="Cameras", icon="OUTLINER_OB_CAMERA")
    row = box.row()
    row.template_list("HP3D_UL_views", "", props, "views", props, "views_index", rows=2)
    ops = row.column(align=True)
    ops.operator("humanpose3d.view_add", icon="ADD", text="")
    ops.operator("humanpose3d.view_remove", icon="REMOVE", text="")
    col = box.column(align=True)
    col.active = len(props.views) > 0  # one video: the calibration and offsets are not used
    col.prop(props, "calib_path")
    col.prop(props, "sync_offsets")
    if run_settings.missing_calibration(props):
        row = box.row()
        row.alert = True
        row.label(text="Further videos need a calibration file", icon="ERROR")


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
        layout.prop(props, "people")
        col = layout.column()
        col.active = props.people.strip().lower() not in ("", "largest")  # they name tracked IDs
        col.prop(props, "person_heights")
        col.prop(props, "person_masses")
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
        sub = col.row()
        sub.active = props.joint_angles and props.angle_plots
        sub.prop(props, "angle_svg")
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


LISTS = (HP3D_UL_views,)
CLASSES = (HP3D_PT_main, HP3D_PT_tracking, HP3D_PT_cleaning, HP3D_PT_biomechanics, HP3D_PT_outputs)
