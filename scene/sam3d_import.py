"""Import a SAM 3D Body result — or our own `<stem>_mesh.npz`, which uses its format — as Blender
mesh objects: one per person, animated over a sequence by shape keys (one per frame: results
without a rig have only vertices), under an Empty that levels and grounds them.

Conversion: SAM 3D Body's pred_vertices are camera axes (its body model's Y-up frame with Y and Z
flipped), relative to the body; adding pred_cam_t gives the camera frame (OpenCV axes), which
engine.coords.camera_to_blender turns Z up with the camera at the origin looking down +Y (a SAM 3D
Body result has no run.json level, so not the HP3D armature's levelled world of
engine/world_frame.py). The parent Empty then turns the bodies' mean up-direction
onto +Z (when the camera looked up or down) and lifts the lowest vertex onto z = 0; clearing its
transform gives back the camera-frame placement.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from ..engine.coords import camera_to_blender
from ..engine.sam3d_format import PersonTrack, load_people
from . import camera, keyframes
from .body_mesh import skin_material

MAX_LEVEL_DEG = 45.0  # a larger tilt is a body lying down or a bad estimate: leave it alone


def up_direction(tracks_world: list[np.ndarray]) -> np.ndarray:
    """The bodies' mean long axis (Blender world), pointing up: each frame's vertices' first principal
    axis, signed towards +Z, averaged."""
    axes = []
    for v in tracks_world:
        for frame in v:
            ok = np.isfinite(frame).all(1)
            if ok.sum() < 3:
                continue
            x = frame[ok] - frame[ok].mean(0)
            _, _, vt = np.linalg.svd(x[:: max(1, len(x) // 2000)], full_matrices=False)
            a = vt[0] if vt[0, 2] >= 0 else -vt[0]
            axes.append(a)
    if not axes:
        return np.array([0.0, 0.0, 1.0])
    u = np.mean(axes, 0)
    return u / np.linalg.norm(u)


def level_rotation(up: np.ndarray, max_deg: float = MAX_LEVEL_DEG) -> np.ndarray:
    """The smallest rotation taking `up` onto +Z (identity beyond `max_deg`)."""
    z = np.array([0.0, 0.0, 1.0])
    c = float(np.clip(up @ z, -1, 1))
    if np.degrees(np.arccos(c)) > max_deg:
        return np.eye(3)
    axis = np.cross(up, z)
    s = np.linalg.norm(axis)
    if s < 1e-9:
        return np.eye(3)
    k = axis / s
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def ground_transform(tracks_world: list[np.ndarray], level: bool = True) -> np.ndarray:
    """4x4 for the parent Empty: level the bodies, then put the lowest vertex (over all frames and
    people) on z = 0."""
    R = level_rotation(up_direction(tracks_world)) if level else np.eye(3)
    lows = [np.nanmin((v.reshape(-1, 3) @ R.T)[:, 2]) for v in tracks_world if np.isfinite(v).any()]
    M = np.eye(4)
    M[:3, :3] = R
    M[2, 3] = -min(lows) if lows else 0.0
    return M


def import_sam3d(source, name: str | None = None, collection: bpy.types.Collection | None = None,
                 ground: bool = True, frame_offset: int = 1, with_camera: bool = True) -> dict:
    """Meshes for every person in `source` (a path, or SAM 3D Body's dicts / arrays; see
    engine.sam3d_format.load_people). Frame i of a sequence goes to Blender frame i + frame_offset
    (our own npz: video frame + frame_offset).

    Returns {"collection", "root" (the Empty), "meshes", "camera", "frames": (start, end)}."""
    tracks = load_people(source)
    if not tracks:
        raise ValueError("no person in this SAM 3D Body result")
    name = name or (Path(source).stem if isinstance(source, str | Path) else "SAM3D")
    scene = bpy.context.scene
    if collection is None:
        collection = bpy.data.collections.new(f"SAM3D {name}")
        scene.collection.children.link(collection)
    world = [camera_to_blender(t.vertices.astype(np.float64)) for t in tracks]
    root = bpy.data.objects.new(f"SAM3D_{name}_ground", None)
    root.empty_display_type = "PLAIN_AXES"
    collection.objects.link(root)
    if ground:
        root.matrix_world = ground_transform(world).T.tolist()  # mathutils reads row-major lists
    meshes = []
    for i, (tr, v) in enumerate(zip(tracks, world)):
        obj = _person_mesh(f"SAM3D_{name}_{i}" if len(tracks) > 1 else f"SAM3D_{name}", tr, v, collection,
                           tr.frames + frame_offset)
        obj.parent = root
        meshes.append(obj)
    frames = tracks[0].frames + frame_offset
    start, end = int(frames.min()), int(frames.max())
    if len(frames) > 1:  # the scene's range grows to cover the sequence
        scene.frame_start, scene.frame_end = min(scene.frame_start, start), max(scene.frame_end, end)
        scene.frame_set(start)
    cam = None
    tr = tracks[0]
    if with_camera and tr.focal_length and tr.image_size:
        w, h = tr.image_size
        k = {"fx": tr.focal_length, "fy": tr.focal_length, "cx": w / 2, "cy": h / 2, "width": w, "height": h}
        cam = camera.build_camera(f"SAM3D_{name}_camera", k, collection, None, scene)
        cam.parent = root
    return {"collection": collection, "root": root, "meshes": meshes, "camera": cam, "frames": (start, end)}


def _person_mesh(name: str, track: PersonTrack, v: np.ndarray, collection: bpy.types.Collection,
                 frames: np.ndarray) -> bpy.types.Object:
    """A mesh whose basis is the person's first seen frame and, over a sequence, one shape key per
    frame keyed fully on at its frame and off at its neighbours' (absent frames hide the object)."""
    seen = np.flatnonzero(np.isfinite(v).all(axis=(1, 2)))
    if seen.size == 0:
        raise ValueError(f"{name}: the person has no finite vertices")
    faces = [] if track.faces is None else track.faces.tolist()
    me = bpy.data.meshes.new(name)
    me.from_pydata(v[seen[0]].tolist(), [], faces)
    if faces:
        me.polygons.foreach_set("use_smooth", np.ones(len(me.polygons), dtype=bool))
        me.materials.append(skin_material())
    me.update()
    obj = bpy.data.objects.new(name, me)
    collection.objects.link(obj)
    obj["hp3d_sam3d_frames"] = int(len(frames))
    if len(v) == 1:
        return obj
    obj.shape_key_add(name="Basis", from_mix=False)
    keyframes.ensure_action(me.shape_keys, f"{name}_cache")
    fcurves = keyframes.fcurve_collection(me.shape_keys)
    for i in seen:
        kb = obj.shape_key_add(name=f"frame_{int(frames[i])}", from_mix=False)
        kb.data.foreach_set("co", v[i].astype(np.float32).ravel())
        f = float(frames[i])
        keyframes.write_channel(fcurves, f'key_blocks["{kb.name}"].value', 0,
                                np.array([f - 1, f, f + 1]), np.array([0.0, 1.0, 0.0]), "cache")
        fc = fcurves.find(f'key_blocks["{kb.name}"].value')
        for kp in fc.keyframe_points:
            kp.interpolation = "CONSTANT"
    absent = np.setdiff1d(np.arange(len(v)), seen)
    if absent.size:
        hidden = np.isin(np.arange(len(v)), absent).astype(float)
        keyframes.ensure_action(obj, f"{name}_visibility")
        ofc = keyframes.fcurve_collection(obj)
        for path in ("hide_viewport", "hide_render"):
            fc = keyframes.write_channel(ofc, path, 0, frames.astype(float), hidden, "visibility")
            for kp in fc.keyframe_points:
                kp.interpolation = "CONSTANT"
    return obj
