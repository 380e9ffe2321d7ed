"""What the SCAIL operators (scail_build.py, scail_render.py) share: the SCAIL panel's settings as
a rig, scene and camera (scene/scail_scene.py's Setup), the armature they apply to, and where
the render goes."""

from __future__ import annotations

import re
from pathlib import Path

import bpy

from .settings import folder_path


def modules():
    from ..panels import scail as panel
    from ..scene import scail_rig, scail_scene

    return panel, scail_rig, scail_scene


def source_scene(context: bpy.types.Context) -> bpy.types.Scene:
    """The scene the armature lives in (run from the SCAIL scene itself, the one it came from)."""
    scene = context.scene
    name = scene.get("hp3d_scail_source")
    if name and name != scene.name and name in bpy.data.scenes:
        return bpy.data.scenes[name]
    return scene


def armature(context: bpy.types.Context, props) -> bpy.types.Object | None:
    if props.armature is None:
        obj = context.active_object
        if obj is not None and obj.type == "ARMATURE":
            props.armature = obj  # fills the mapping from the detected preset
    return props.armature


def output_folder(props, armature: bpy.types.Object) -> Path:
    """Absolute output folder; a blend-relative path in an unsaved file goes to the extension's user
    folder, in the typed folder's name and then the armature's (settings.folder_path)."""
    return folder_path(props.output_dir, "scail", re.sub(r"[^\w.-]+", "_", armature.name))


def stem(armature: bpy.types.Object) -> str:
    """File name stem: the video's for a HumanPose3D result, else the armature's name."""
    folder = armature.get("hp3d_output")
    name = Path(folder).name if folder else armature.name
    return re.sub(r"[^\w.-]+", "_", name) or "scail"


def prepare(context: bpy.types.Context, props):
    """Rig, SCAIL scene and camera from the panel's settings; returns scene/scail_scene.Setup."""
    panel, scail_rig, scail_scene = modules()
    arm = props.armature
    if not len(props.joints):
        panel.fill_from_preset(props)
    size = (props.width, props.height) if props.width and props.height else None
    return scail_scene.setup(source_scene(context), arm, panel.mapping(props), size=size,
                              camera=props.camera, fov_deg=props.fov_deg, radius=props.radius_mm / 1000.0,
                              show_in_source=props.show_rig)


class ScailOperator:
    """Base of the SCAIL operators: an armature to work on, and its rig set up."""

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        props = getattr(context.scene, "hp3d_scail", None)
        if props is None:
            return False
        obj = props.armature or context.active_object
        return obj is not None and obj.type == "ARMATURE"

    def _setup(self, context: bpy.types.Context):
        props = context.scene.hp3d_scail
        if armature(context, props) is None:
            self.report({"ERROR"}, "choose an armature")
            return None
        try:
            st = prepare(context, props)
        except (ValueError, KeyError, RuntimeError) as exc:
            self.report({"ERROR"}, str(exc))
            return None
        if not st.rig.limbs:
            self.report({"ERROR"}, "no SCAIL joint maps onto this armature's bones: pick a preset or "
                                   "set the bones")
            return None
        if st.rig.missing:
            self.report({"WARNING"}, f"no bone for {', '.join(st.rig.missing)}: their limbs are left out")
        return st
