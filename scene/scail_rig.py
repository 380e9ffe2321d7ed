"""SCAIL's cylinder rig on any armature: 13 limbs as capsules that follow the bones through
constraints, so captured, hand-keyed, NLA or driven animation all render the same way.

Each of SCAIL's 14 joints (engine/capsule_render.LIMBS) is an empty parented to a bone at a fraction
`at` of the way from its head (0) to its tail (1); values outside 0–1 extend along the bone, so the
point stays rigid with the bone under any pose and bone scale. An optional Copy Location constraint
pulls it a share `blend` of the way towards a second bone's point (SMPL's hip joints sit between
the pelvis centre and the thigh heads). Each limb is a unit cylinder that sits on its first joint
(Copy Location) and reaches the second (Stretch To, volume kept off so the radius never changes),
plus a sphere on each end: together, SCAIL's capsule.

Mapping presets: this add-on's armature (scene/skeleton.py; the fractions put the joints where
engine/smpl24.py puts SMPL's), Rigify (ORG-, DEF- or metarig names) and Mixamo (any
`mixamorig*:` prefix, or none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import bmesh
import bpy
from mathutils import Matrix

from ..engine.capsule_render import LIMB_COLOURS, LIMBS, RADIUS_MM
from ..engine.smpl24 import HEAD_ALONG, HIP_OUT, NECK_UP

# SCAIL's joints in the order its limbs first use them.
JOINTS: tuple[str, ...] = tuple(dict.fromkeys(j for a, b, _ in LIMBS for j in (a, b)))
RADIUS_M = RADIUS_MM / 1000.0
_SEGMENTS = 32  # around the cylinder and the spheres: sub-pixel facets at 512×896


@dataclass(frozen=True)
class JointSource:
    """Where a SCAIL joint sits on an armature: `bone` at fraction `at` (0 head, 1 tail), moved a
    share `blend` of the way towards bone `toward` at fraction `toward_at` (0–1)."""

    bone: str
    at: float = 0.0
    toward: str = ""
    toward_at: float = 0.0
    blend: float = 0.0


def _sided(make) -> dict[str, JointSource]:
    out = {}
    for side, s, S in (("left", "L", "Left"), ("right", "R", "Right")):
        out.update({f"{side}_{j}": src for j, src in make(s, S).items()})
    return out


# This add-on's armature, with SMPL's neck, head and hips where engine/smpl24.py places them.
HP3D = {
    "neck": JointSource("spine", NECK_UP),  # spine runs hip centre → shoulder centre
    "head": JointSource("neck", HEAD_ALONG),  # neck runs shoulder centre → ear centre
    **_sided(lambda s, S: {
        "shoulder": JointSource(f"upper_arm.{s}"), "elbow": JointSource(f"forearm.{s}"),
        "wrist": JointSource(f"forearm.{s}", 1.0),
        "hip": JointSource(f"thigh.{s}", 0.0, "pelvis", 0.0, 1.0 - HIP_OUT),
        "knee": JointSource(f"shin.{s}"), "ankle": JointSource(f"shin.{s}", 1.0)}),
}
# Rigify: bone heads, which sit on the joints whether the limb is split into segments (DEF-) or
# not (ORG-, metarig). spine.004 starts the neck, spine.006 is the head.
RIGIFY = {
    "neck": JointSource("spine.004"), "head": JointSource("spine.006"),
    **_sided(lambda s, S: {
        "shoulder": JointSource(f"upper_arm.{s}"), "elbow": JointSource(f"forearm.{s}"),
        "wrist": JointSource(f"hand.{s}"), "hip": JointSource(f"thigh.{s}"),
        "knee": JointSource(f"shin.{s}"), "ankle": JointSource(f"foot.{s}")}),
}
_RIGIFY_PREFIXES = ("ORG-", "DEF-", "")
MIXAMO = {
    "neck": JointSource("Neck"), "head": JointSource("Head"),
    **_sided(lambda s, S: {
        "shoulder": JointSource(f"{S}Arm"), "elbow": JointSource(f"{S}ForeArm"),
        "wrist": JointSource(f"{S}Hand"), "hip": JointSource(f"{S}UpLeg"),
        "knee": JointSource(f"{S}Leg"), "ankle": JointSource(f"{S}Foot")}),
}
PRESETS: dict[str, dict[str, JointSource]] = {"HP3D": HP3D, "RIGIFY": RIGIFY, "MIXAMO": MIXAMO}
PRESET_LABELS = {"HP3D": "HumanPose3D", "RIGIFY": "Rigify", "MIXAMO": "Mixamo"}


def _mixamo_prefix(names: set[str]) -> str | None:
    """'mixamorig:' (or 'mixamorig1:', '' …) from the bone called <prefix>Hips."""
    for n in names:
        if n.endswith("Hips") and (n == "Hips" or n[-5] == ":"):
            return n[:-4]
    return None


def _rename(src: JointSource, fn) -> JointSource:
    return JointSource(fn(src.bone), src.at, fn(src.toward) if src.toward else "", src.toward_at, src.blend)


def resolve_preset(bone_names, preset: str) -> dict[str, JointSource]:
    """The preset's joints with the bone names this armature uses; joints whose bones it lacks are
    left out."""
    names = set(bone_names)
    table = PRESETS[preset]
    if preset == "MIXAMO":
        prefix = _mixamo_prefix(names) or ""
        table = {j: _rename(s, lambda b, p=prefix: p + b) for j, s in table.items()}
    elif preset == "RIGIFY":
        pick = lambda b: next((p + b for p in _RIGIFY_PREFIXES if p + b in names), b)  # noqa: E731
        table = {j: _rename(s, pick) for j, s in table.items()}
    return {j: s for j, s in table.items() if s.bone in names and (not s.toward or s.toward in names)}


def detect_preset(bone_names) -> str | None:
    """The preset that maps the most joints of this armature (ties: the order of PRESETS)."""
    names = list(bone_names)
    best, count = None, 0
    for preset in PRESETS:
        n = len(resolve_preset(names, preset))
        if n > count:
            best, count = preset, n
    return best


# --- meshes and materials -------------------------------------------------------------------------

def _area_radius(r: float, n: int = _SEGMENTS) -> float:
    """Vertex radius of an n-gon with the circle's area, so the facets neither shrink nor grow the
    silhouette on average."""
    return r * math.sqrt(2 * math.pi / (n * math.sin(2 * math.pi / n)))


def _cylinder_mesh(name: str, radius: float) -> bpy.types.Mesh:
    """Open unit cylinder along +Y (0 → 1): Stretch To scales Y to the limb's length; the end
    spheres close it."""
    me = bpy.data.meshes.new(name)
    r = _area_radius(radius)
    ring = [(r * math.cos(2 * math.pi * i / _SEGMENTS), r * math.sin(2 * math.pi * i / _SEGMENTS))
            for i in range(_SEGMENTS)]
    verts = [(x, y, z) for y in (0.0, 1.0) for x, z in ring]
    n = _SEGMENTS
    faces = [(i, (i + 1) % n, n + (i + 1) % n, n + i) for i in range(n)]
    me.from_pydata(verts, [], faces)
    me.shade_smooth()
    return me


def _sphere_mesh(name: str, radius: float) -> bpy.types.Mesh:
    me = bpy.data.meshes.new(name)
    bm = bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=_SEGMENTS, v_segments=_SEGMENTS // 2,
                              radius=_area_radius(radius))
    bm.to_mesh(me)
    bm.free()
    me.shade_smooth()
    return me


def limb_material(rig_name: str, index: int) -> bpy.types.Material:
    """The rig's material for limb `index`, in SCAIL's colour (its viewport colour, which Workbench
    renders); scene/scail_scene.py adds SCAIL's shading. One per rig and limb, because its
    depth fade follows that rig's joints."""
    a, b, _ = LIMBS[index]
    name = f"{rig_name} {a}-{b}"
    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    mat.diffuse_color = (*map(float, LIMB_COLOURS[index]), 1.0)
    mat["hp3d_scail_limb"] = index
    return mat


# --- the rig ----------------------------------------------------------------------------------

@dataclass
class Rig:
    collection: bpy.types.Collection
    joints: dict[str, bpy.types.Object]  # SCAIL joint → empty
    limbs: list[tuple[int, list[bpy.types.Object]]]  # (limb index, [cylinder, sphere, sphere])
    missing: list[str]  # joints the mapping could not place (their limbs are left out)


def rig_collection_name(armature: bpy.types.Object) -> str:
    return f"SCAIL {armature.name}"


def remove_rig(armature: bpy.types.Object) -> None:
    """Delete the rig built for `armature` (its objects, meshes and collection)."""
    coll = bpy.data.collections.get(rig_collection_name(armature))
    if coll is None:
        return
    meshes = {o.data for o in coll.objects if o.type == "MESH"}
    mats = {s.material for o in coll.objects for s in o.material_slots if s.material is not None}
    for obj in list(coll.objects):
        bpy.data.objects.remove(obj, do_unlink=True)
    bpy.data.collections.remove(coll)
    for me in meshes:
        if me.users == 0:
            bpy.data.meshes.remove(me)
    for mat in mats:
        if mat.users == 0:
            bpy.data.materials.remove(mat)


def _joint_empty(name: str, arm: bpy.types.Object, src: JointSource, radius: float) -> bpy.types.Object:
    emp = bpy.data.objects.new(name, None)
    emp.empty_display_type = "SPHERE"
    emp.empty_display_size = radius
    # Bone parenting puts the child at the bone's tail, in the bone's axes (Y along the bone);
    # an offset of (at - 1)·length along Y then lands on the fraction `at`, under any pose.
    emp.parent = arm
    emp.parent_type = "BONE"
    emp.parent_bone = src.bone
    emp.matrix_parent_inverse = Matrix.Identity(4)
    emp.location = (0.0, (src.at - 1.0) * arm.data.bones[src.bone].length, 0.0)
    if src.toward and src.blend > 0:
        c = emp.constraints.new("COPY_LOCATION")
        c.name = "SCAIL blend"
        c.target, c.subtarget = arm, src.toward
        c.head_tail = min(max(src.toward_at, 0.0), 1.0)
        c.influence = min(max(src.blend, 0.0), 1.0)
    return emp


def _follow(obj: bpy.types.Object, target: bpy.types.Object) -> None:
    c = obj.constraints.new("COPY_LOCATION")
    c.target = target


def build_rig(armature: bpy.types.Object, mapping: dict[str, JointSource], parent: bpy.types.Collection,
              radius: float = RADIUS_M) -> Rig:
    """(Re)build the cylinder rig of `armature` in a collection under `parent`. Joints that
    `mapping` lacks, or whose bones the armature lacks, drop their limbs (listed in Rig.missing)."""
    remove_rig(armature)
    coll = bpy.data.collections.new(rig_collection_name(armature))
    parent.children.link(coll)
    bones = armature.data.bones
    tag = armature.name
    joints, missing = {}, []
    for j in JOINTS:
        src = mapping.get(j)
        if src is None or src.bone not in bones or (src.toward and src.toward not in bones):
            missing.append(j)
            continue
        emp = _joint_empty(f"SCAIL {tag} {j}", armature, src, radius)
        coll.objects.link(emp)
        joints[j] = emp
    cyl_mesh = _cylinder_mesh(f"SCAIL {tag} cylinder", radius)
    sph_mesh = _sphere_mesh(f"SCAIL {tag} sphere", radius)
    for me in (cyl_mesh, sph_mesh):
        me.materials.append(None)  # the slot's material is set per object
    limbs = []
    for i, (a, b, _) in enumerate(LIMBS):
        if a not in joints or b not in joints:
            continue
        mat = limb_material(coll.name, i)
        cyl = bpy.data.objects.new(f"SCAIL {tag} {a}-{b}", cyl_mesh)
        _follow(cyl, joints[a])
        st = cyl.constraints.new("STRETCH_TO")
        st.target = joints[b]
        st.rest_length = 1.0  # the mesh's length: scale Y = the joints' distance
        st.volume = "NO_VOLUME"
        st.keep_axis = "SWING_Y"  # shortest turn onto the limb; roll is irrelevant for a cylinder
        parts = [cyl]
        for end in (a, b):
            sph = bpy.data.objects.new(f"SCAIL {tag} {a}-{b} {end}", sph_mesh)
            _follow(sph, joints[end])
            parts.append(sph)
        for obj in parts:
            obj.material_slots[0].link = "OBJECT"
            obj.material_slots[0].material = mat
            obj["hp3d_scail_limb"] = i
            coll.objects.link(obj)
        limbs.append((i, parts))
    coll["hp3d_scail_armature"] = armature.name
    return Rig(coll, joints, limbs, missing)


def joint_positions(rig: Rig, depsgraph: bpy.types.Depsgraph) -> dict[str, tuple[float, float, float]]:
    """World positions of the rig's joints as `depsgraph` evaluates them."""
    return {j: tuple(e.evaluated_get(depsgraph).matrix_world.translation) for j, e in rig.joints.items()}
