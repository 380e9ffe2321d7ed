"""The fitted body mesh in Blender: Anny's rig as an armature, the mesh skinned to it with Anny's
own weights, and the fit's bone transforms keyed on every frame.

Why a rig and not a per-frame vertex cache (one shape key a frame): the mesh npz carries Anny's
rest shape, skin weights and per-frame bone transforms, and linear blend skinning of those is
exactly what Blender's Armature modifier computes, so the skinned mesh reproduces the fitted
vertices to float precision while keying 104 bones instead of 13,718 vertices a frame. Measured on
100 frames of the demo (benchmarks/mesh_blender.py): both build in 0.2-0.3 s and both come back
from an FBX round trip playing the fit, but the rig's .blend is 1.5 MB and its FBX 2.2 MB against
16 and 19 MB for the cache (and growing 10x faster with the clip), and a skinned mesh is what game
engines animate; a hundred blend shapes is not.

The rest pose stands upright facing -Y (Anny's model axes are Blender's: X the body's left, Y back,
Z up) at the body's first fitted root; the posed bones are the fit's camera-frame transforms carried
into world space by the result's world_from_camera (engine.world_frame), like the HP3D armature.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

from . import keyframes, skeleton
from .camera import default_world

SKIN_RGBA = (0.80, 0.62, 0.52, 1.0)


def find_mesh_file(folder: str | Path) -> Path | None:
    """`mesh/<stem>_mesh.npz` of an engine output folder, when the run had --mesh."""
    hits = sorted(Path(folder).glob("mesh/*_mesh.npz"))
    return hits[0] if hits else None


def load_mesh_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def _rigid(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = np.zeros(R.shape[:-2] + (4, 4))
    out[..., :3, :3], out[..., :3, 3], out[..., 3, 3] = R, t, 1.0
    return out


def _world(world_from_camera: np.ndarray | None) -> np.ndarray:
    return default_world() if world_from_camera is None else np.asarray(world_from_camera, np.float64)


def rest_placement(d: dict[str, np.ndarray], world_from_camera: np.ndarray | None = None) -> np.ndarray:
    """4x4 from Anny's model frame to Blender world for the rest pose: upright (the model's axes are
    the world's, so it faces -Y), at the first fitted frame's root in the world `world_from_camera`
    (default: the camera frame turned Z up)."""
    first = int(np.flatnonzero(d["valid"])[0])
    W = _world(world_from_camera)
    return _rigid(np.eye(3), W[:3, :3] @ d["pred_cam_t"][first] + W[:3, 3])


def skinning_transforms(d: dict[str, np.ndarray], world_from_camera: np.ndarray | None = None
                        ) -> np.ndarray:
    """(T, B, 4, 4) per bone and frame: Blender rest → Blender posed (world = armature space):
    back to the model's rest, the fit's model → camera transform, then camera → world."""
    Tc = np.zeros(d["anny_bone_transforms"].shape[:2] + (4, 4))
    Tc[..., :3, :] = d["anny_bone_transforms"]
    Tc[..., 3, 3] = 1.0
    S = rest_placement(d, world_from_camera)
    return _world(world_from_camera) @ Tc @ np.linalg.inv(S)


def _bone_tails(heads: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """A tail for each bone: its children's mean head, or a short step on from its parent."""
    tails = heads.copy()
    for b in range(len(heads)):
        kids = np.flatnonzero(parents == b)
        if kids.size and np.linalg.norm(heads[kids].mean(0) - heads[b]) > 1e-3:
            tails[b] = heads[kids].mean(0)
        elif parents[b] >= 0:
            step = heads[b] - heads[parents[b]]
            n = np.linalg.norm(step)
            tails[b] = heads[b] + (step / n if n > 1e-6 else np.array([0, 0, 1.0])) * max(0.5 * n, 0.01)
        else:
            tails[b] = heads[b] + np.array([0, 0, 0.1])
    return tails


def _remove_named(collection: bpy.types.Collection, names: tuple[str, ...]) -> None:
    """Earlier objects of these names in the collection (a re-import replaces, never duplicates)."""
    for obj in list(collection.objects):
        if obj.name in names:
            data = obj.data
            bpy.data.objects.remove(obj)
            if data is not None and data.users == 0:
                (bpy.data.meshes if isinstance(data, bpy.types.Mesh) else bpy.data.armatures).remove(data)


def build_body(d: dict[str, np.ndarray], name: str, collection: bpy.types.Collection,
               frames: np.ndarray | None = None, material: bool = True,
               world_from_camera: np.ndarray | None = None) -> dict:
    """Armature `<name>_rig` (Anny's bones) and mesh `<name>` skinned to it in `collection`, keyed
    at `frames` (Blender frame numbers, one per row of the npz; default video frame + 1), in the
    world `world_from_camera` (4x4 from the engine's camera frame; default: it turned Z up).

    Returns {"armature", "mesh", "keys"}."""
    if not d["valid"].any():
        raise ValueError("the mesh file has no fitted frame")
    frames = d["frame_index"].astype(np.float64) + 1 if frames is None else np.asarray(frames, np.float64)
    _remove_named(collection, (name, f"{name}_rig"))
    S = rest_placement(d, world_from_camera)
    P = S @ d["anny_rest_bone_poses"].astype(np.float64)  # bone rest poses, Blender world
    parents = d["anny_bone_parents"].astype(int)
    labels = [str(x) for x in d["body_pose_bones"]]
    arm = _build_rig(f"{name}_rig", labels, parents, P, collection)
    mesh = _build_mesh(name, d, S, labels, collection, material)
    mesh.parent = arm
    mod = mesh.modifiers.new("Armature", "ARMATURE")
    mod.object = arm
    mod.use_deform_preserve_volume = False  # linear blend skinning, as Anny's
    keys = animate_rig(arm, labels, parents, skinning_transforms(d, world_from_camera), frames, f"{name}_rig")
    arm["hp3d_mesh"] = True
    return {"armature": arm, "mesh": mesh, "keys": keys}


def _build_rig(name: str, labels: list[str], parents: np.ndarray, P: np.ndarray,
               collection: bpy.types.Collection) -> bpy.types.Object:
    data = bpy.data.armatures.new(name)
    data.display_type = "STICK"
    obj = bpy.data.objects.new(name, data)
    collection.objects.link(obj)
    heads = P[:, :3, 3]
    tails = _bone_tails(heads, parents)
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        ebs = []
        for b, label in enumerate(labels):
            eb = data.edit_bones.new(label)
            eb.head, eb.tail = Vector(heads[b]), Vector(tails[b])
            eb.align_roll(Vector(P[b, :3, 2]))
            if parents[b] >= 0:
                eb.parent = ebs[parents[b]]
            ebs.append(eb)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        if previous is not None and previous.name in view_layer.objects:
            view_layer.objects.active = previous
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj


def _build_mesh(name: str, d: dict[str, np.ndarray], S: np.ndarray, labels: list[str],
                collection: bpy.types.Collection, material: bool) -> bpy.types.Object:
    v = d["anny_rest_vertices"].astype(np.float64) @ S[:3, :3].T + S[:3, 3]
    me = bpy.data.meshes.new(name)
    me.from_pydata(v.tolist(), [], d["faces"].tolist())
    me.polygons.foreach_set("use_smooth", np.ones(len(me.polygons), dtype=bool))
    me.update()
    obj = bpy.data.objects.new(name, me)
    collection.objects.link(obj)
    idx, w = d["anny_skin_indices"], d["anny_skin_weights"]
    for b, label in enumerate(labels):
        rows, cols = np.nonzero((idx == b) & (w > 0))
        if rows.size == 0:
            continue
        vg = obj.vertex_groups.new(name=label)
        for r, c in zip(rows.tolist(), cols.tolist()):
            vg.add([r], float(w[r, c]), "ADD")
    if material:
        me.materials.append(skin_material())
    return obj


def skin_material() -> bpy.types.Material:
    """One shared, plain skin-toned Principled BSDF material."""
    mat = bpy.data.materials.get("HP3D_body")
    if mat is None:
        mat = bpy.data.materials.new("HP3D_body")
        if mat.node_tree is None:  # Blender < 5.0 creates node trees only on request
            mat.use_nodes = True
        bsdf = next((n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
        if bsdf is not None:
            bsdf.inputs["Base Color"].default_value = SKIN_RGBA
            bsdf.inputs["Roughness"].default_value = 0.55
        mat.diffuse_color = SKIN_RGBA  # the viewport's solid mode
    return mat


def pose_bases(rest: np.ndarray, T: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Pose-bone matrix_basis (T, B, 4, 4) that give each bone the world transform T (rest → posed,
    armature at identity): with Blender's pose = parent_pose (Rp^-1 R) basis and pose = T R,
    basis = R^-1 Tp^-1 T R (root: R^-1 T R)."""
    R_inv = np.linalg.inv(rest)
    Tp = np.where((parents >= 0)[None, :, None, None], T[:, np.maximum(parents, 0)], np.eye(4))
    return R_inv[None] @ np.linalg.inv(Tp) @ T @ rest[None]


def animate_rig(arm: bpy.types.Object, labels: list[str], parents: np.ndarray, T: np.ndarray,
                frames: np.ndarray, action_name: str) -> int:
    """Key every bone's rotation (and location where it moves) from world transforms T (T, B, 4, 4);
    frames with NaN transforms are left unkeyed. Returns the number of keys written."""
    rest = np.array([np.array(arm.data.bones[label].matrix_local) for label in labels])
    ok = np.isfinite(T).all(axis=(1, 2, 3))
    basis = np.full(T.shape, np.nan)
    basis[ok] = pose_bases(rest, T[ok], parents)
    quats = skeleton.continuous(skeleton.matrix_to_quaternion(basis[..., :3, :3]))
    loc = basis[..., :3, 3]
    keyframes.ensure_action(arm, action_name)
    fcurves = keyframes.fcurve_collection(arm)
    n = 0
    for b, label in enumerate(labels):
        path = f'pose.bones["{label}"]'
        n += sum(len(fc.keyframe_points) for fc in
                 keyframes.write_vector(fcurves, f"{path}.rotation_quaternion", frames, quats[:, b], label))
        if np.nanmax(np.abs(loc[:, b]), initial=0.0) > 1e-5:
            n += sum(len(fc.keyframe_points) for fc in
                     keyframes.write_vector(fcurves, f"{path}.location", frames, loc[:, b], label))
    return n


def evaluated_vertices(obj: bpy.types.Object, frame: int) -> np.ndarray:
    """World-space vertex positions of `obj` with its modifiers at `frame` (for checks)."""
    scene = bpy.context.scene
    scene.frame_set(frame)
    deps = bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(deps)
    me = ev.to_mesh()
    try:
        co = np.empty(len(me.vertices) * 3)
        me.vertices.foreach_get("co", co)
    finally:
        ev.to_mesh_clear()
    M = np.array(ev.matrix_world)
    return co.reshape(-1, 3) @ M[:3, :3].T + M[:3, 3]
