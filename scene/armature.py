"""Armature from the engine's joints: bones built in edit mode at the subject's metric lengths,
then per-frame pose rotations (and the pelvis location) keyframed in bulk."""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Vector

from . import keyframes, skeleton


def _set_mode(obj: bpy.types.Object, mode: str) -> None:
    view_layer = bpy.context.view_layer
    view_layer.objects.active = obj
    if obj.mode != mode:
        bpy.ops.object.mode_set(mode=mode)


def build_armature(name: str, rest: dict[str, np.ndarray], twist: dict[str, np.ndarray],
                   collection: bpy.types.Collection, reuse: bpy.types.Object | None = None,
                   bones: tuple[skeleton.BoneDef, ...] = skeleton.BONES) -> bpy.types.Object:
    """Create an armature object (identity transform: armature space is world space) whose bones
    run between the rest points, with each bone's Z axis rolled onto its twist reference.

    `reuse`: an armature object from an earlier import of the same result, given the new bones in
    place of its old ones, so whatever points at it (constraints, parents, a cylinder rig) still does.
    `bones`: skeleton.bones_for(pts), the body's and the tracked hands' fingers."""
    data = bpy.data.armatures.new(name)
    data.display_type = "OCTAHEDRAL"
    if reuse is not None:
        obj, old = reuse, reuse.data
        obj.data = data
        if old is not None and old.users == 0:
            bpy.data.armatures.remove(old)
            data.name = name
    else:
        obj = bpy.data.objects.new(name, data)
        collection.objects.link(obj)
    obj.show_in_front = True
    previous = bpy.context.view_layer.objects.active
    _set_mode(obj, "EDIT")
    try:
        ebs: dict[str, bpy.types.EditBone] = {}
        for b in bones:
            eb = data.edit_bones.new(b.name)
            eb.head = Vector(rest[b.head])
            eb.tail = Vector(rest[b.tail])
            eb.align_roll(Vector(twist[b.name]))
            if b.parent:
                eb.parent = ebs[b.parent]
                eb.use_connect = b.connected
            ebs[b.name] = eb
    finally:
        _set_mode(obj, "OBJECT")
        if previous is not None and previous.name in bpy.context.view_layer.objects:
            bpy.context.view_layer.objects.active = previous
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj


def rest_rotations(obj: bpy.types.Object, names: tuple[str, ...] = skeleton.BONE_NAMES) -> np.ndarray:
    """(B, 3, 3) rest rotations of the skeleton's bones in armature space, in `names` order."""
    bones = obj.data.bones
    return np.array([np.array(bones[name].matrix_local.to_3x3()) for name in names])


def animate(obj: bpy.types.Object, pts: dict[str, np.ndarray], frames: np.ndarray,
            action_name: str, fps: float) -> dict[str, int]:
    """Key every bone's rotation and the pelvis location at `frames` (one per row of `pts`).

    Returns counts for the caller's report: keyed frames per bone (min) and root location keys.
    """
    bones = skeleton.bones_for(pts)
    names = tuple(b.name for b in bones)
    rest = rest_rotations(obj, names)
    world = skeleton.steady_frames(pts, fps, bones)
    quats = skeleton.continuous(skeleton.matrix_to_quaternion(skeleton.local_rotations(world, rest, bones)))
    root = obj.data.bones[skeleton.BONES[0].name]
    loc = skeleton.root_locations(pts[skeleton.BONES[0].head], np.array(root.head_local),
                                  np.array(root.matrix_local.to_3x3()))
    keyframes.ensure_action(obj, action_name)
    fcurves = keyframes.fcurve_collection(obj)
    keyed = []
    for i, name in enumerate(names):
        path = f'pose.bones["{name}"]'
        fcs = keyframes.write_vector(fcurves, f"{path}.rotation_quaternion", frames, quats[:, i], name)
        if i < len(skeleton.BONES):  # fingers have keys only where a hand was found
            keyed.append(len(fcs[0].keyframe_points) if fcs else 0)
    root_path = f'pose.bones["{root.name}"].location'
    fcs = keyframes.write_vector(fcurves, root_path, frames, loc, root.name)
    return {"min_keyed_frames": min(keyed), "root_location_keys": len(fcs[0].keyframe_points) if fcs else 0}
