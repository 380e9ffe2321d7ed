"""SCAIL sub-panel: the armature to dress in SCAIL's cylinders, its joint → bone mapping (a preset
plus per-joint overrides), the camera and the Blender render. Settings live in `Scene.hp3d_scail`."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)
from bpy.types import PropertyGroup, UIList

from ..scene import scail_rig
from .properties import PATH_OPTIONS
from .sidebar import SubPanel

PRESET_ITEMS = [(k, v, f"Bone names of a {v} armature") for k, v in scail_rig.PRESET_LABELS.items()]
PRESET_ITEMS.append(("CUSTOM", "Custom", "Keep the mapping below as edited"))


class HP3D_PG_scail_joint(PropertyGroup):
    """Where one SCAIL joint sits on the armature (scene/scail_rig.JointSource)."""

    joint: StringProperty(name="Joint", description="SCAIL (SMPL) joint")
    bone: StringProperty(name="Bone", description="Bone the joint rides on; empty drops its limbs")
    at: FloatProperty(name="At", default=0.0, soft_min=0.0, soft_max=1.0, precision=3,
                      description="Position along the bone: 0 head, 1 tail; beyond extends the bone")
    toward: StringProperty(name="Toward", description="Optional second bone to move the joint towards")
    toward_at: FloatProperty(name="Toward At", default=0.0, min=0.0, max=1.0, precision=3,
                             description="Position along the second bone: 0 head, 1 tail")
    blend: FloatProperty(name="Blend", default=0.0, min=0.0, max=1.0, subtype="FACTOR",
                         description="Share of the way towards the second bone's point")


def _is_armature(_self, obj: bpy.types.Object) -> bool:
    return obj.type == "ARMATURE"


def fill_from_preset(props, preset: str | None = None) -> None:
    """Reset the joint list from `preset` (default: the chosen one; Custom keeps the list)."""
    preset = preset or props.preset
    if preset == "CUSTOM":
        return
    arm = props.armature
    names = [b.name for b in arm.data.bones] if arm is not None else []
    table = scail_rig.resolve_preset(names, preset)
    props.joints.clear()
    for j in scail_rig.JOINTS:
        item = props.joints.add()
        item.name = item.joint = j
        src = table.get(j)
        if src is not None:
            item.bone, item.at, item.toward = src.bone, src.at, src.toward
            item.toward_at, item.blend = src.toward_at, src.blend


def mapping(props) -> dict[str, scail_rig.JointSource]:
    """The joint list as scene/scail_rig's mapping (joints without a bone are left out)."""
    return {it.joint: scail_rig.JointSource(it.bone, it.at, it.toward, it.toward_at, it.blend)
            for it in props.joints if it.bone}


def _on_armature(self, _context) -> None:
    if self.armature is None:
        return
    found = scail_rig.detect_preset(b.name for b in self.armature.data.bones)
    if found is not None and found != self.preset:
        self.preset = found  # its update fills the list
    else:
        fill_from_preset(self)


def _on_preset(self, _context) -> None:
    fill_from_preset(self)


class HP3D_PG_scail(PropertyGroup):
    armature: PointerProperty(name="Armature", type=bpy.types.Object, poll=_is_armature, update=_on_armature,
                              description="Armature the cylinders follow (any rig: keyed, captured, driven)")
    preset: EnumProperty(name="Bones", items=PRESET_ITEMS, default="HP3D", update=_on_preset,
                         description="Bone naming to map SCAIL's joints from")
    joints: CollectionProperty(type=HP3D_PG_scail_joint)
    joint_index: IntProperty(name="Joint", default=0)
    camera: EnumProperty(
        name="Camera", default="AUTO",
        items=[("AUTO", "Auto", "The result's camera for a HumanPose3D armature, else Field of View"),
               ("RESULT", "Result", "The engine's camera of the armature's HumanPose3D result, fitted to "
                                    "the render size as the engine's SCAIL render does"),
               ("FOV", "Field of View", "Field of view across the longer side; follows the scene camera, "
                                        "or frames the armature from the front when there is none")])
    fov_deg: FloatProperty(name="Field of View", default=55.0, min=1.0, max=170.0,
                           description="Degrees across the longer image side (SCAIL/NLF use 55)")
    width: IntProperty(name="Width", default=0, min=0, max=4096, step=2,
                       description="Render width; 0 uses SCAIL's 512×896 (896×512 for a landscape video)")
    height: IntProperty(name="Height", default=0, min=0, max=4096, step=2, description="Render height")
    engine: EnumProperty(
        name="Engine", default="AUTO",
        items=[("AUTO", "Fastest", "Time one frame with each and use the faster"),
               ("WORKBENCH", "Workbench", "Matcap shading; needs OpenGL"),
               ("CYCLES", "Cycles", "SCAIL's shading exactly, on the CPU, one sample per pixel")])
    radius_mm: FloatProperty(name="Radius (mm)", default=scail_rig.RADIUS_MM, min=1.0, max=500.0,
                             description="Cylinder radius (SCAIL: 21.5 mm)")
    show_rig: BoolProperty(name="Show in Scene", default=True,
                           description="Also show the cylinders in this scene (they render only in the "
                                       "'SCAIL' scene, unless this scene renders them too)")
    output_dir: StringProperty(name="Output", subtype="DIR_PATH", default="//scail/",
                               options=PATH_OPTIONS,
                               description="Writes rgba/<name>_scail_<frame>.png and <name>_scail.mp4")
    status: StringProperty(name="Status", default="")


class HP3D_UL_scail_joints(UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        arm = data.armature
        row = layout.row(align=True)
        row.label(text=item.joint)
        if arm is not None:
            row.prop_search(item, "bone", arm.data, "bones", text="")
        else:
            row.prop(item, "bone", text="")
        row.prop(item, "at", text="")


class HP3D_PT_scail(SubPanel):
    bl_label = "SCAIL Pose Render"
    bl_idname = "HP3D_PT_scail"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        props = context.scene.hp3d_scail
        layout.prop(props, "armature")
        layout.prop(props, "preset")
        layout.template_list("HP3D_UL_scail_joints", "", props, "joints", props, "joint_index", rows=4)
        if 0 <= props.joint_index < len(props.joints):
            item = props.joints[props.joint_index]
            col = layout.column(align=True)
            if props.armature is not None:
                col.prop_search(item, "toward", props.armature.data, "bones")
            else:
                col.prop(item, "toward")
            row = col.row(align=True)
            row.prop(item, "toward_at")
            row.prop(item, "blend")
        col = layout.column(align=True)
        col.prop(props, "camera")
        if props.camera != "RESULT":
            col.prop(props, "fov_deg")
        row = layout.row(align=True)
        row.prop(props, "width")
        row.prop(props, "height")
        layout.prop(props, "radius_mm")
        layout.prop(props, "engine")
        layout.prop(props, "output_dir")
        layout.prop(props, "show_rig")
        row = layout.row(align=True)
        row.operator("humanpose3d.scail_build", icon="MESH_CYLINDER")
        row.operator("humanpose3d.scail_render", icon="RENDER_ANIMATION")
        if props.status:
            layout.label(text=props.status)


CLASSES = (HP3D_PG_scail_joint, HP3D_PG_scail, HP3D_UL_scail_joints, HP3D_PT_scail)


def register() -> None:
    for cls in CLASSES[:2]:
        bpy.utils.register_class(cls)
    bpy.types.Scene.hp3d_scail = PointerProperty(type=HP3D_PG_scail)
    for cls in CLASSES[2:]:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES[2:]):
        bpy.utils.unregister_class(cls)
    del bpy.types.Scene.hp3d_scail
    for cls in reversed(CLASSES[:2]):
        bpy.utils.unregister_class(cls)
