"""Retarget a HumanPose3D result onto another armature (a character): Rigify, Mixamo, Anny's rig or
any humanoid, through a bone map (scene/bone_map.py), with the maths in scene/retarget_solve.py.

The source is the result folder an HP3D armature was built from (its "hp3d_output"): its markers in
the scene's world (the armature's stored world_from_camera) and its quality flags (planted feet).
Everything is checked and solved before the target is touched; then the target gets a new action
(`<target>_HP3D`) keyed in bulk (keyframe_points.add + foreach_set, 4.2 and slotted 5.x actions),
all or nothing: a failure while writing removes the new action and puts the old one back.

An already animated target: its action is replaced, not refused, and not deleted: the old action is
kept with a fake user (the report names it), so nothing of the user's is lost and Undo restores it.

How the keys are found: a rig whose keyed bones hang off one another plainly (Mixamo, Anny, a
metarig, most game rigs) gets its pose-bone rotations computed in numpy for all frames at once. A
rig whose controls are positioned through constraints (a generated Rigify rig: the FK controls hang
off MCH bones that copy the torso's or root's rotation) is posed frame by frame through Blender's
own evaluation (PoseBone.matrix, one view-layer update per level of the body), and the resulting
local rotations are keyed in bulk the same way. Rigify's limbs are switched to FK (IK_FK = 1), since
the FK controls are what get keyed.
"""

from __future__ import annotations

import csv
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix, Quaternion

from ..engine import result as engine_result
from ..engine import world_frame
from . import bone_map as bm
from . import camera, keyframes, skeleton
from . import face as scene_face
from .build import source_points
from .retarget_solve import Solution, Target, armature_matrices, local_rotations, solve

ACTION_SUFFIX = "_HP3D"
# Constraints that make a bone follow another outright: keys on such a bone would do nothing.
_FOLLOWER = {"COPY_TRANSFORMS", "COPY_ROTATION", "CHILD_OF", "ARMATURE", "DAMPED_TRACK", "TRACK_TO",
             "LOCKED_TRACK", "STRETCH_TO"}
_FOOT_MARKERS = ("left_heel", "left_foot_index", "right_heel", "right_foot_index")


class RetargetError(ValueError):
    """A target or map the retarget refuses, with the one-line reason."""


@dataclass
class Source:
    pts: dict[str, np.ndarray]  # scene/skeleton points (T, 3) in the scene's world
    frames: np.ndarray  # (T,) Blender frames
    fps: float
    planted: np.ndarray | None  # (T, 4) heel.L, toe.L, heel.R, toe.R
    folder: Path
    height_m: float | None = None
    extra: dict = field(default_factory=dict)
    face: np.ndarray | None = None  # (T, 3) a --holistic run's jaw and eyelids (engine/face.py)


# --- reading ----------------------------------------------------------------------------------------

def planted_feet(folder: Path, stem: str, first_frame: int, count: int) -> np.ndarray | None:
    """(T, 4) the quality CSV's `planted` flag of the heels and toes, or None without the file."""
    path = Path(folder) / engine_result.core_files(stem)["quality_csv"]
    if not path.is_file():
        return None
    out = np.zeros((count, 4), bool)
    col = {m: i for i, m in enumerate(_FOOT_MARKERS)}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            i = col.get(row["joint"])
            if i is not None and row.get("planted") == "1":
                t = int(row["frame"]) - first_frame
                if 0 <= t < count:
                    out[t, i] = True
    return out


def load_source(arm: bpy.types.Object) -> Source:
    """Our motion from the result folder HP3D armature `arm` was built from, in its scene's world."""
    folder = arm.get("hp3d_output") if arm is not None else None
    if not folder:
        raise RetargetError(f"'{getattr(arm, 'name', arm)}' is not a HumanPose3D armature (no hp3d_output)")
    try:
        res = engine_result.load(folder)
    except FileNotFoundError as exc:
        raise RetargetError(f"the result folder of '{arm.name}' is gone: {exc}") from None
    W = camera.stored_world(arm)
    if W is None:
        W = world_frame.world_frame(res.record, res.markers_camera).matrix
    pts = source_points(res, W)
    T = res.markers_camera.shape[0]
    frames = res.first_frame + 1 + np.arange(T, dtype=np.float64)
    height = (res.record.get("config") or {}).get("height_m")
    return Source(pts, frames, res.fps, planted_feet(res.folder, res.stem, res.first_frame, T), res.folder,
                  height, face=res.face)


def read_target(obj: bpy.types.Object) -> Target:
    bones = list(obj.data.bones)
    index = {b.name: i for i, b in enumerate(bones)}
    order = sorted(range(len(bones)), key=lambda i: _depth(bones[i]))
    names = [bones[i].name for i in order]
    pos = {n: k for k, n in enumerate(names)}
    parents = np.array([pos[bones[index[n]].parent.name] if bones[index[n]].parent else -1 for n in names])
    rest = np.array([np.array(bones[index[n]].matrix_local) for n in names])
    lengths = np.array([bones[index[n]].length for n in names])
    return Target(names, parents, rest, lengths, np.array(obj.matrix_world))


def _depth(bone) -> int:
    d = 0
    while bone.parent is not None:
        bone, d = bone.parent, d + 1
    return d


def rig_bones(obj: bpy.types.Object) -> dict[str, bm.RigBone]:
    """The target's bones at rest in world space, for bone_map.detect."""
    M = np.array(obj.matrix_world)
    out = {}
    for b in obj.data.bones:
        h = M[:3, :3] @ np.array(b.head_local) + M[:3, 3]
        t = M[:3, :3] @ np.array(b.tail_local) + M[:3, 3]
        out[b.name] = bm.RigBone(b.name, b.parent.name if b.parent else None, h, t)
    return out


def detect_map(obj: bpy.types.Object) -> tuple[str, bm.BoneMap]:
    return bm.detect(rig_bones(obj))


# --- checks -----------------------------------------------------------------------------------------

def check_target(obj: bpy.types.Object | None, source: bpy.types.Object | None = None,
                 bone_map: bm.BoneMap | None = None) -> tuple[str, bm.BoneMap]:
    """(how the map was found, the map) or RetargetError: not an armature, the source itself, linked
    from a library, not humanoid, or a map that cannot drive it."""
    if obj is None:
        raise RetargetError("pick a target armature (the character)")
    if obj.type != "ARMATURE":
        raise RetargetError(f"'{obj.name}' is a {obj.type.lower()}, not an armature")
    if source is not None and obj == source:
        raise RetargetError(f"'{obj.name}' is the HumanPose3D armature itself; pick the character")
    if obj.library is not None or obj.data.library is not None:
        lib = (obj.library or obj.data.library).filepath
        raise RetargetError(f"'{obj.name}' is linked from {lib}: make it local or add a library override "
                            "first (a linked rig cannot be keyed)")
    if not obj.data.bones:
        raise RetargetError(f"'{obj.name}' has no bones")
    if obj.name not in bpy.context.view_layer.objects:
        raise RetargetError(f"'{obj.name}' is not in this scene's view layer (link it into the scene)")
    bones = rig_bones(obj)
    kind = "bone map"
    if bone_map is None:
        kind, bone_map = bm.detect(bones)
        if not kind:
            missing = bm.missing_required(bone_map)
            raise RetargetError(f"'{obj.name}' does not look like a humanoid rig: no bones found for "
                                f"{', '.join(missing)} (name them in the bone map)")
    try:
        bm.check(bone_map, bones)
    except bm.BoneMapError as exc:
        raise RetargetError(str(exc)) from None
    bone_map = dict(bone_map)
    for slot, chain in list(bone_map.items()):
        problem = ""
        for name in chain:
            pb = obj.pose.bones[name]
            follows = _follows(pb)
            if follows:
                problem = (f"bone '{name}' follows another bone (its {follows[0].name} constraint), "
                           "so keys on it would do nothing: map the control bone instead")
                break
        ik = [(pb.name, c.name) for pb in obj.pose.bones for c in pb.constraints
              if c.type == "IK" and c.enabled and c.influence > 0 and set(chain) & _ik_chain(pb, c)]
        if ik and not problem:
            problem = (f"bone '{ik[0][0]}' is posed by its IK constraint '{ik[0][1]}', which would "
                       "override the keys: set its influence to 0 (FK) first")
        if problem and slot in skeleton.FINGER_NAMES:
            del bone_map[slot]  # fingers are optional: one the rig drives itself is left to it
        elif problem:
            raise RetargetError(problem)
    return kind, bone_map


def _ik_chain(pb, con) -> set[str]:
    """The bones an IK constraint on `pb` moves (its chain_count; 0 means up to the root)."""
    out, b, n = set(), pb, 0
    while b is not None and (con.chain_count == 0 or n < con.chain_count):
        out.add(b.name)
        b, n = b.parent, n + 1
    return out


# --- solving and writing ----------------------------------------------------------------------------

def _needs_evaluation(obj: bpy.types.Object, keyed: list[str]) -> bool:
    """True when a keyed bone's ancestors carry constraints (a control rig)."""
    pose = obj.pose.bones
    for name in keyed:
        p = pose[name].parent
        while p is not None:
            if any(c.enabled and c.influence > 0 for c in p.constraints):
                return True
            p = p.parent
    return False


def _levels(names: list[str], bone_map: bm.BoneMap) -> list[list[int]]:
    """Keyed bones (indices into `names`) grouped by how deep in the body their slot is, then by
    their place in the chain: each group can be posed once the groups before it are."""
    every = skeleton.BONES + tuple(b for S in ("L", "R") for b in skeleton.FINGER_BONES[S])
    depth = {b.name: 0 for b in every}
    for b in every:
        if b.parent:
            depth[b.name] = depth[b.parent] + 1
    key = {}
    for slot, chain in bone_map.items():
        for k, name in enumerate(chain):
            key[name] = (depth[slot], k)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(key[name], []).append(i)
    return [groups[k] for k in sorted(groups)]


def _evaluated_bases(obj, target: Target, sol: Solution,
                     bone_map: bm.BoneMap) -> Generator[float, None, tuple[np.ndarray, np.ndarray]]:
    """Per frame, pose the keyed bones through Blender's evaluation, yielding the share of frames
    done after each; returns (T, K, 4) quaternions and the root's (T, 3) location. The pose is put
    back as it was, also when the generator is closed early."""
    names = [target.names[b] for b in sol.keyed]
    pbs = [obj.pose.bones[n] for n in names]
    wanted = armature_matrices(target, sol)
    root_k = sol.keyed.index(sol.root)
    levels = _levels(names, bone_map)
    finger_bones = {b for slot in skeleton.FINGER_NAMES for b in bone_map.get(slot, [])}
    saved = [(pb.rotation_mode, pb.matrix_basis.copy()) for pb in pbs]
    T = wanted.shape[0]
    quats = np.full((T, len(pbs), 4), np.nan)
    loc = np.full((T, 3), np.nan)
    view_layer = bpy.context.view_layer
    try:
        for pb in pbs:
            pb.rotation_mode = "QUATERNION"
        known = np.isfinite(wanted).all(axis=(2, 3))  # (T, K): fingers only where a hand was found
        body = np.array([target.names[b] not in finger_bones for b in sol.keyed])
        for t in range(T):
            if not known[t, body].all():
                continue
            # Only levels with a bone to pose this frame (fingers only where a hand was found), and
            # no evaluation after the last: setting PoseBone.matrix needs only its parents evaluated.
            posed = [group for group in levels if known[t, group].any()]
            for j, group in enumerate(posed):
                for k in group:
                    if not known[t, k]:
                        continue
                    m = Matrix(wanted[t, k].tolist())
                    if k != root_k:
                        m.translation = pbs[k].matrix.translation
                    pbs[k].matrix = m
                if j < len(posed) - 1:
                    view_layer.update()
            for k, pb in enumerate(pbs):
                if known[t, k]:
                    quats[t, k] = tuple(pb.rotation_quaternion)
            loc[t] = tuple(pbs[root_k].location)
            yield (t + 1) / T
    finally:
        for pb, (mode, basis) in zip(pbs, saved):
            pb.rotation_mode = "QUATERNION"
            pb.matrix_basis = basis
            pb.rotation_mode = mode
        view_layer.update()
    return quats, loc


def _rotation_channels(pb, q: np.ndarray) -> tuple[str, np.ndarray]:
    """(data path, values (T, n)) of quaternions `q` (T, 4) in the bone's own rotation mode."""
    path = f'pose.bones["{bpy.utils.escape_identifier(pb.name)}"]'
    mode = pb.rotation_mode
    if mode == "QUATERNION":
        return f"{path}.rotation_quaternion", q
    if mode == "AXIS_ANGLE":
        w = np.clip(q[:, 0], -1, 1)
        angle = 2 * np.arccos(w)
        axis = q[:, 1:] / np.maximum(np.sqrt(1 - w ** 2), 1e-9)[:, None]
        axis[np.sqrt(1 - w ** 2) < 1e-9] = (0, 1, 0)
        return f"{path}.rotation_axis_angle", np.column_stack([angle, axis])
    out = np.full((len(q), 3), np.nan)
    prev = None
    for t, v in enumerate(q):
        if not np.isfinite(v).all():
            continue
        q = Quaternion(v.tolist())
        e = q.to_euler(mode, prev) if prev is not None else q.to_euler(mode)
        out[t] = tuple(e)
        prev = e
    return f"{path}.rotation_euler", out


def _write(obj, target: Target, sol: Solution, quats: np.ndarray, loc: np.ndarray, frames: np.ndarray,
           face: np.ndarray | None = None, face_plan: scene_face.FacePlan | None = None) -> int:
    """A new action on `obj` with the keys, and the face's (scene/face.py) where `face_plan` has
    any; the old actions kept (fake user). Returns the key count."""
    ad = obj.animation_data
    old = ad.action if ad is not None else None
    old_slot = getattr(ad, "action_slot", None) if ad is not None else None
    old_fake = old.use_fake_user if old is not None else False
    if old is not None:
        old.use_fake_user = True
    action = None
    try:
        action = keyframes.ensure_action(obj, f"{obj.name}{ACTION_SUFFIX}")
        fcurves = keyframes.fcurve_collection(obj)
        n = 0
        for k, b in enumerate(sol.keyed):
            pb = obj.pose.bones[target.names[b]]
            path, values = _rotation_channels(pb, quats[:, k])
            fcs = keyframes.write_vector(fcurves, path, frames, values, pb.name)
            n += sum(len(fc.keyframe_points) for fc in fcs)
        root = obj.pose.bones[target.names[sol.root]]
        path = f'pose.bones["{bpy.utils.escape_identifier(root.name)}"].location'
        fcs = keyframes.write_vector(fcurves, path, frames, loc, root.name)
        n += sum(len(fc.keyframe_points) for fc in fcs)
        if face_plan:
            n += scene_face.write_bones(obj, fcurves, face_plan, face, frames, _rotation_channels)
            n += scene_face.write_shape_keys(face_plan, face, frames, ACTION_SUFFIX)  # the last step
        return n
    except Exception:
        keyframes.put_back(obj, old, old_slot, old_fake, action)
        raise


def retarget(source_arm: bpy.types.Object, target_obj: bpy.types.Object, bone_map: bm.BoneMap | None = None,
             source: Source | None = None) -> dict:
    """Key `target_obj` with the motion of HP3D armature `source_arm` (or `source`, already read),
    all at once (headless, scripts; the panel's button steps through `retarget_steps`).

    Returns a report: {"kind", "map", "keys", "frames", "scale", "evaluated", "old_action",
    "pinned_frames", "solution", "face"}. Raises RetargetError with the target untouched."""
    steps = retarget_steps(source_arm, target_obj, bone_map, source)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def retarget_steps(source_arm: bpy.types.Object, target_obj: bpy.types.Object,
                   bone_map: bm.BoneMap | None = None,
                   source: Source | None = None) -> Generator[float, None, dict]:
    """`retarget` in steps: checks and solves at the first `next`, then, for a rig posed through
    Blender's evaluation (Rigify: about 0.08 s a frame), yields the share of frames posed after each
    one, so that an operator can show progress and stay responsive. Returns the report. Closed
    before it returns (Esc), it leaves the target as it was: nothing is keyed until the last step."""
    kind, bone_map = check_target(target_obj, source_arm, bone_map)
    src = source or load_source(source_arm)
    target = read_target(target_obj)
    sol = solve(target, bone_map, src.pts, src.planted, src.fps)
    face_plan = _face_plan(target_obj, bone_map) if src.face is not None else scene_face.FacePlan()
    keyed_names = [target.names[b] for b in sol.keyed]
    evaluated = _needs_evaluation(target_obj, keyed_names)
    ad = target_obj.animation_data
    old = ad.action if ad is not None else None
    ik_fk = [target_obj.pose.bones[n] for n in bm.RIGIFY_IK_FK
             if n in target_obj.pose.bones and "IK_FK" in target_obj.pose.bones[n]]
    if evaluated:
        if old is not None:
            ad.action = None  # its keys would override the poses being evaluated
        saved_ik = [pb["IK_FK"] for pb in ik_fk]
        try:
            for pb in ik_fk:
                pb["IK_FK"] = 1.0
            quats, loc = yield from _evaluated_bases(target_obj, target, sol, bone_map)
        finally:  # as it was until the keys are written
            for pb, v in zip(ik_fk, saved_ik):
                pb["IK_FK"] = v
            if old is not None:
                ad.action = old
    else:
        rot, loc = local_rotations(target, sol)
        quats = skeleton.matrix_to_quaternion(rot)
    quats = skeleton.continuous(quats)
    keys = _write(target_obj, target, sol, quats, loc, src.frames, src.face, face_plan)
    for pb in ik_fk:
        pb["IK_FK"] = 1.0  # FK: the keyed controls drive the limbs
    target_obj["hp3d_retarget_source"] = str(src.folder)
    return {"kind": kind, "map": bone_map, "keys": keys, "frames": (int(src.frames[0]), int(src.frames[-1])),
            "scale": sol.scale, "evaluated": evaluated, "old_action": old.name if old is not None else None,
            "pinned_frames": int(sol.pinned.any(axis=1).sum()), "solution": sol,
            "face": face_plan.describe() | {"frames": int(np.isfinite(src.face).all(axis=1).sum())
                                            if face_plan else 0}}


def _face_plan(obj, bone_map: bm.BoneMap) -> scene_face.FacePlan:
    """The face's plan on `obj`, less a jaw or lid bone that another bone's constraint drives
    outright (keys on it would do nothing), as the fingers' slots are."""
    face_plan = scene_face.plan(obj, bone_map)
    if face_plan.jaw is not None and _follows(obj.pose.bones[face_plan.jaw[0]]):
        face_plan.jaw = None
    face_plan.lids = [lid for lid in face_plan.lids if not _follows(obj.pose.bones[lid[0]])]
    return face_plan


def _follows(pb) -> list:
    """The constraints that make pose bone `pb` follow another outright (keys on it do nothing)."""
    return [c for c in pb.constraints if c.type in _FOLLOWER and c.enabled and c.influence > 0]


def find_source(scene: bpy.types.Scene) -> bpy.types.Object | None:
    """The scene's HumanPose3D armature (the active one when it is one, else the first)."""
    active = bpy.context.view_layer.objects.active
    if active is not None and active.type == "ARMATURE" and active.get("hp3d_output"):
        return active
    return next((o for o in scene.objects if o.type == "ARMATURE" and o.get("hp3d_output")), None)


def export_character_fbx(path: str | Path, target: bpy.types.Object, preset: str = "unity") -> Path:
    """The character as FBX (scene/export.py's presets): its armature with the retargeted motion over
    the scene's frame range and the meshes parented to it or deformed by it (their shape keys'
    motion too); a control rig (bones with constraints,
    e.g. Rigify) exports its deforming bones only, their motion baked from the controls."""
    from . import export

    meshes = tuple(scene_face.character_meshes(target))
    control_rig = any(pb.constraints for pb in target.pose.bones)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return export.export_fbx(path, target, meshes, preset=preset, deform_only=control_rig)
