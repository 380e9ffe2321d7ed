"""A --holistic run's face (engine/face.py: the jaw's opening, each eye's closure) on a character,
keyed by the retarget (scene/retarget.py) on what the character has:

- a jaw bone: Rigify's `jaw_master`, else one named "jaw" (a prefix such as `mixamorig:` aside;
  not a DEF-/ORG-/MCH- bone), turned by the measured angle about its own axis that lies nearest
  the character's left-right axis, in the sense that moves its tail down and back;
- Rigify's eyelids: the upper lid's middle control (`lid.T.L.002`) moved towards the lower one's
  (`lid.B.L.002`) by the closure, so a shut eye puts the lids together;
- shape keys by their usual names (case, `_`, `.`, `-` and spaces ignored) on the meshes the
  armature deforms: ARKit's `jawOpen` (1 = `engine.face.JAW_FULL_RAD`), `eyeBlinkLeft`,
  `eyeBlinkRight`, and the common `mouthOpen`, `blink_L`/`blink_R`. Left is the subject's left.

Keys only where the face was found: elsewhere the face is left alone (Blender interpolates). A
character without any of these gets no face keys, as does a run without a tracked face.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import bpy
import numpy as np

from ..engine.face import JAW_FULL_RAD
from . import bone_map as bm
from . import keyframes

_RIGIFY_INNER = re.compile(r"^(def|org|mch)-", re.I)  # Rigify's deform/mechanism copies, never keyed
_LIDS = {1: ("lid.T.L.002", "lid.B.L.002"), 2: ("lid.T.R.002", "lid.B.R.002")}  # channel: upper, lower
# Shape key name (normalised: lower case, no separators) → (channel, scale of the channel's value).
SHAPE_KEYS: dict[str, tuple[int, float]] = {
    "jawopen": (0, 1.0 / JAW_FULL_RAD), "mouthopen": (0, 1.0 / JAW_FULL_RAD),
    "eyeblinkleft": (1, 1.0), "blinkleft": (1, 1.0), "blinkl": (1, 1.0), "eyeblinkl": (1, 1.0),
    "eyeblinkright": (2, 1.0), "blinkright": (2, 1.0), "blinkr": (2, 1.0), "eyeblinkr": (2, 1.0),
}


def _normal(name: str) -> str:
    return re.sub(r"[\s._-]", "", name).lower()


@dataclass
class FacePlan:
    """What of the character the face drives (nothing when all are empty)."""

    jaw: tuple[str, int, float] | None = None  # bone, local axis (0 X, 1 Y, 2 Z), sign that opens
    lids: list[tuple[str, int, np.ndarray]] = field(default_factory=list)  # bone, channel, local move
    shape_keys: list[tuple[bpy.types.Key, str, int, float]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.jaw or self.lids or self.shape_keys)

    def describe(self) -> dict:
        return {"jaw": self.jaw[0] if self.jaw else None, "lids": [b for b, _, _ in self.lids],
                "shape_keys": sorted({f"{k.user.name}:{n}" for k, n, _, _ in self.shape_keys})}


def _frame(obj: bpy.types.Object, bone_map: dict) -> tuple[np.ndarray, np.ndarray]:
    """The character's left and up directions in its armature space, from its rest pose (Blender's
    convention, +X left of a character facing -Y and +Z up, where the map lacks the bones)."""
    head = {n: np.array(b.head_local) for n, b in obj.data.bones.items()}

    def between(a: str, b: str, default: tuple) -> np.ndarray:
        if bone_map.get(a) and bone_map.get(b):
            v = head[bone_map[b][0]] - head[bone_map[a][0]]
            if np.linalg.norm(v) > 0:
                return v / np.linalg.norm(v)
        return np.array(default, float)

    return between("upper_arm.R", "upper_arm.L", (1, 0, 0)), between("pelvis", "head", (0, 0, 1))


def _jaw_bone(obj: bpy.types.Object) -> str | None:
    names = [b.name for b in obj.data.bones]
    if "jaw_master" in names:
        return "jaw_master"
    def is_jaw(name: str) -> bool:  # prefixes such as mixamorig: aside, as the bone map reads names
        core, side = bm.split_side(name)
        return side is None and core.strip("._- ").lower() == "jaw" and not _RIGIFY_INNER.match(name)

    return next((n for n in names if is_jaw(n)), None)


def character_meshes(obj: bpy.types.Object) -> list[bpy.types.Object]:
    """The meshes `obj` deforms or carries: its children and those with an Armature modifier on it."""
    found = {o for o in obj.children_recursive if o.type == "MESH"}
    found |= {o for o in bpy.data.objects if o.type == "MESH"
              and any(m.type == "ARMATURE" and m.object == obj for m in o.modifiers)}
    return sorted(found, key=lambda o: o.name)


def plan(obj: bpy.types.Object, bone_map: dict) -> FacePlan:
    """What of `obj` (an armature whose body `bone_map` drives) the face will key."""
    out = FacePlan()
    left, up = _frame(obj, bone_map)
    jaw = _jaw_bone(obj)
    if jaw is not None and obj.data.bones[jaw].parent is not None:
        R = np.array(obj.data.bones[jaw].matrix_local)[:3, :3]  # columns: the bone's axes
        axis = int(np.argmax(np.abs(R.T @ left)))
        moves = np.cross(R[:, axis], R[:, 1])  # where + about that axis takes the tail
        opens = moves @ (-up - np.cross(left, up))  # down and back (np.cross(left, up): forward)
        out.jaw = (jaw, axis, -1.0 if opens < 0 else 1.0)
    bones = obj.data.bones
    for channel, (upper, lower) in _LIDS.items():
        if upper in bones and lower in bones:
            R = np.array(bones[upper].matrix_local)[:3, :3]
            gap = np.array(bones[lower].head_local) - np.array(bones[upper].head_local)
            out.lids.append((upper, channel, R.T @ gap))  # in the bone's own axes: its location's
    for mesh in character_meshes(obj):
        key = mesh.data.shape_keys
        if key is None or key.library is not None:
            continue
        for block in key.key_blocks[1:]:  # the first is the basis
            hit = SHAPE_KEYS.get(_normal(block.name))
            if hit is not None:
                out.shape_keys.append((key, block.name, *hit))
    return out


def _axis_angle(axis: int, angle: np.ndarray) -> np.ndarray:
    """(T, 4) w, x, y, z quaternions turning `angle` (T,) radians about local axis `axis`."""
    q = np.zeros((len(angle), 4))
    q[:, 0] = np.cos(angle / 2)
    q[:, 1 + axis] = np.sin(angle / 2)
    return q


def write_bones(obj: bpy.types.Object, fcurves, face_plan: FacePlan, face: np.ndarray, frames: np.ndarray,
                rotation_channels) -> int:
    """Key the jaw's rotation and the lids' locations into `fcurves` (the armature's new action).
    `rotation_channels(pb, quats)` gives the bone's data path and values in its rotation mode."""
    n = 0
    if face_plan.jaw is not None:
        name, axis, sign = face_plan.jaw
        pb = obj.pose.bones[name]
        path, values = rotation_channels(pb, _axis_angle(axis, sign * face[:, 0]))
        n += _count(keyframes.write_vector(fcurves, path, frames, values, name))
    for name, channel, move in face_plan.lids:
        path = f'pose.bones["{bpy.utils.escape_identifier(name)}"].location'
        n += _count(keyframes.write_vector(fcurves, path, frames, face[:, channel, None] * move[None], name))
    return n


def _count(fcurves: list) -> int:
    return sum(len(fc.keyframe_points) for fc in fcurves)


def write_shape_keys(face_plan: FacePlan, face: np.ndarray, frames: np.ndarray,
                     suffix: str) -> int:
    """Key the shape keys, each Key its new action `<key><suffix>` (the old one kept with a fake
    user), all or none: a failure puts every Key's action back. Returns the key count."""
    n, undo = 0, []
    try:
        for key in dict.fromkeys(k for k, _, _, _ in face_plan.shape_keys):
            ad = key.animation_data
            old = ad.action if ad is not None else None
            slot = getattr(ad, "action_slot", None) if ad is not None else None  # 4.4+
            undo.append([key, old, slot, old.use_fake_user if old is not None else False, None])
            if old is not None:
                old.use_fake_user = True
            undo[-1][-1] = keyframes.ensure_action(key, f"{key.name}{suffix}")
            fcurves = keyframes.fcurve_collection(key)
            for k, name, channel, scale in face_plan.shape_keys:
                if k == key:
                    path = f'key_blocks["{bpy.utils.escape_identifier(name)}"].value'
                    values = np.clip(face[:, channel] * scale, 0.0, 1.0)
                    fc = keyframes.write_channel(fcurves, path, 0, frames, values, "HP3D face")
                    n += len(fc.keyframe_points) if fc is not None else 0
    except Exception:
        for key, old, slot, fake, action in reversed(undo):
            keyframes.put_back(key, old, slot, fake, action)
        raise
    return n


def targets(obj: bpy.types.Object, bone_map: dict) -> str:
    """What the face would drive on `obj`, for the panel: 'jaw_master, 2 lids, 3 shape keys', or ''."""
    return ", ".join(_parts(plan(obj, bone_map).describe()))


def _parts(described: dict) -> list[str]:
    parts = [described["jaw"]] if described.get("jaw") else []
    return parts + [f"{len(described[key])} {key.replace('_', ' ')}" for key in ("lids", "shape_keys")
                    if described.get(key)]


def summary(described: dict) -> str:
    """'; face on N frames (what)' for a retarget's status line, '' when no face was keyed."""
    parts = _parts(described)
    if not described.get("frames") or not parts:
        return ""
    return f"; face on {described['frames']} frames ({', '.join(parts)})"
