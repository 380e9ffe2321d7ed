"""Retarget sub-panel: the HumanPose3D armature (source), the character (target) picked from the
scene, the bone map (our bone → the character's bones, detected when the target is picked, editable
row by row; the 30 finger rows behind the Fingers toggle), presets, Apply to Character and Export
Character FBX. Settings live in `Scene.hp3d_retarget`."""

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

from ..scene import bone_map as bm
from .properties import PATH_OPTIONS
from .sidebar import SubPanel


class HP3D_PG_retarget_bone(PropertyGroup):
    """One row of the bone map: our bone and the character's bones that play it."""

    slot: StringProperty(name="Our Bone", description="A bone of the HumanPose3D armature")
    bones: StringProperty(name="Character Bones",
                          description="The character's bone (or chain of bones, first to last, separated by "
                                      "commas) that plays it; empty leaves it out (required: hips, spine, "
                                      "thighs, shins, upper arms, forearms)")


def _is_source(_self, obj: bpy.types.Object) -> bool:
    return obj.type == "ARMATURE" and bool(obj.get("hp3d_output"))


def _is_target(_self, obj: bpy.types.Object) -> bool:
    return obj.type == "ARMATURE" and not obj.get("hp3d_output")


def set_map(props, bone_map: bm.BoneMap, how: str = "") -> None:
    """Fill the rows from `bone_map` (every slot, empty where unmapped)."""
    props.bones.clear()
    for slot in bm.SLOTS:
        item = props.bones.add()
        item.name = item.slot = slot
        item.bones = ", ".join(bone_map.get(slot, []))
    props.detected = how


def get_map(props) -> bm.BoneMap | None:
    """The rows as a bone map; None when there are no rows (detect on apply)."""
    if not len(props.bones):
        return None
    return {it.slot: [b.strip() for b in it.bones.split(",") if b.strip()] for it in props.bones
            if it.bones.strip()}


def detect_into(props) -> str:
    """Detect the target's map into the rows; returns how it was found ("" when not humanoid)."""
    from ..scene import retarget

    if props.target is None:
        props.bones.clear()
        props.detected = props.face = ""
        return ""
    how, found = retarget.detect_map(props.target)
    set_map(props, found, how or "incomplete")
    props.face = face_targets(props.target, found)
    return how


def face_targets(obj: bpy.types.Object, bone_map: bm.BoneMap) -> str:
    """The panel's line on what a tracked face drives on `obj` (scene/face.py)."""
    from ..scene import face

    found = face.targets(obj, bone_map)
    return f"Face: {found}" if found else "Face: no jaw bone, Rigify lids or face shape keys"


def _on_target(self, _context) -> None:
    detect_into(self)


_ITEMS: list = []  # Blender needs Python to hold dynamic enum items' strings


def _preset_items(_self, _context):
    from ..operators import settings

    items = [(p.stem, p.stem, str(p)) for p in bm.list_presets(settings.bone_map_presets())]
    _ITEMS[:] = items or [("", "(none saved)", "Save a bone map first")]
    return _ITEMS


class HP3D_PG_retarget(PropertyGroup):
    source: PointerProperty(name="Source", type=bpy.types.Object, poll=_is_source,
                            description="The HumanPose3D armature whose motion is applied (default: the "
                                        "active or first one in the scene)")
    target: PointerProperty(name="Character", type=bpy.types.Object, poll=_is_target, update=_on_target,
                            description="The character's armature: Rigify, Mixamo, Anny's or any humanoid")
    bones: CollectionProperty(type=HP3D_PG_retarget_bone)
    bone_index: IntProperty(name="Bone", default=0)
    detected: StringProperty(name="Detected", default="", description="How the bone map was found")
    preset_name: StringProperty(name="Preset Name", default="", description="Name to save the bone map under")
    preset: EnumProperty(name="Preset", items=_preset_items, description="A saved bone map")
    fbx_path: StringProperty(name="FBX", subtype="FILE_PATH", default="//character.fbx", options=PATH_OPTIONS,
                             description="Where Export Character FBX writes the character and its motion")
    status: StringProperty(name="Status", default="")
    face: StringProperty(name="Face", default="",
                         description="What of the character a --holistic run's face drives")
    running: BoolProperty(name="Running", default=False, options={"SKIP_SAVE"})
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR",
                            options={"SKIP_SAVE"})
    show_fingers: BoolProperty(name="Fingers", default=False,
                               description="Also list the 30 finger rows (they move the character's fingers "
                                           "only where the result tracked the hands: a Holistic run)")


def shown_rows(props) -> list[bool]:
    """Which bone map rows the list shows: the body's always, the fingers' when asked for."""
    return [props.show_fingers or it.slot not in bm.FINGER_NAMES for it in props.bones]


class HP3D_UL_retarget_bones(UIList):
    def filter_items(self, context, data, propname):
        rows = getattr(data, propname)
        flag = self.bitflag_filter_item
        by_name = (bpy.types.UI_UL_list.filter_items_by_name(self.filter_name, flag, rows, "slot")
                   if self.filter_name else [flag] * len(rows))  # the list's own search box still works
        return [f if shown else 0 for f, shown in zip(by_name, shown_rows(data))], []

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        split = row.split(factor=0.35, align=True)
        label = split.row()
        label.alert = item.slot in bm.REQUIRED and not item.bones.strip()
        label.label(text=item.slot)
        split.prop(item, "bones", text="", emboss=True)


class HP3D_PT_retarget(SubPanel):
    bl_label = "Retarget to Character"
    bl_idname = "HP3D_PT_retarget"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        props = context.scene.hp3d_retarget
        col = layout.column(align=True)
        col.prop(props, "source")
        col.prop(props, "target")
        row = layout.row(align=True)
        row.label(text=f"Bones: {props.detected}" if props.detected else "Bones")
        row.prop(props, "show_fingers", toggle=True, icon="VIEW_PAN")
        row.operator("humanpose3d.retarget_detect", text="", icon="VIEWZOOM")
        layout.template_list("HP3D_UL_retarget_bones", "", props, "bones", props, "bone_index", rows=6)
        if props.target is not None and 0 <= props.bone_index < len(props.bones):
            layout.prop_search(props.bones[props.bone_index], "bones", props.target.data, "bones",
                               text="Pick Bone")
        if props.target is not None and props.face:
            layout.label(text=props.face, icon="USER")
        box = layout.box()
        row = box.row(align=True)
        row.prop(props, "preset", text="")
        row.operator("humanpose3d.retarget_preset_load", text="", icon="IMPORT")
        row = box.row(align=True)
        row.prop(props, "preset_name", text="")
        row.operator("humanpose3d.retarget_preset_save", text="", icon="FILE_TICK")
        if props.running:  # a control rig posed frame by frame (operators/retarget.py)
            text = "posing the character (Esc cancels)"
            if hasattr(layout, "progress"):  # 4.0+
                layout.progress(factor=props.progress, type="BAR", text=text)
            else:
                layout.label(text=f"{text} ({100 * props.progress:.0f} %)")
        else:
            layout.operator("humanpose3d.retarget", icon="ARMATURE_DATA")
        row = layout.row(align=True)
        row.prop(props, "fbx_path", text="")
        row.operator("humanpose3d.retarget_export_fbx", text="", icon="EXPORT")
        if props.status:
            layout.label(text=props.status)


CLASSES = (HP3D_PG_retarget_bone, HP3D_PG_retarget, HP3D_UL_retarget_bones, HP3D_PT_retarget)


def register() -> None:
    for cls in CLASSES[:2]:
        bpy.utils.register_class(cls)
    bpy.types.Scene.hp3d_retarget = PointerProperty(type=HP3D_PG_retarget)
    for cls in CLASSES[2:]:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES[2:]):
        bpy.utils.unregister_class(cls)
    del bpy.types.Scene.hp3d_retarget
    for cls in reversed(CLASSES[:2]):
        bpy.utils.unregister_class(cls)
