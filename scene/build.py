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

import json
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from ..engine import world_frame
from . import armature, camera, mesh, skeleton


@dataclass(frozen=True)
class View:
    """One camera of a calibrated multi-camera run (index 0 is the first video's)."""

    name: str
    K: np.ndarray  # (3, 3) pixels of its decoded video
    R: np.ndarray  # (3, 3) x_c = R @ x + t, x in the engine frame (camera 0's)
    t: np.ndarray  # (3,)
    size: tuple[int, int]  # width, height
    video: Path | None
    offset: int  # result frame i is this video's frame first_frame + offset + i

    @property
    def intrinsics(self) -> dict:
        K = self.K
        return {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2],
                "width": self.size[0], "height": self.size[1]}


@dataclass
class EngineResult:
    """What the scene needs from an engine run, read back from its output folder."""

    folder: Path
    stem: str
    markers_camera: np.ndarray  # (T, 33, 3) engine camera frame, metres
    fps: float
    first_frame: int
    intrinsics: dict  # fx, fy, cx, cy, width, height
    video: Path | None
    record: dict = field(default_factory=dict)
    views: list[View] = field(default_factory=list)  # all cameras of a multi-camera run, else []

    @property
    def blender_frames(self) -> np.ndarray:
        return self.first_frame + 1 + np.arange(self.markers_camera.shape[0], dtype=np.float64)


def load_result(folder: str | Path) -> EngineResult:
    """Read `<stem>_markers.npz` (and run.json when present) from an engine output folder."""
    folder = Path(folder)
    npzs = sorted(folder.glob("*_markers.npz"))
    if not npzs:
        raise FileNotFoundError(f"no *_markers.npz in {folder} (is it a finished HumanPose3D output folder?)")
    stem = npzs[0].name[: -len("_markers.npz")]
    with np.load(npzs[0]) as d:
        markers = np.asarray(d["markers_33_camera"], dtype=np.float64)
        K = np.asarray(d["K"], dtype=np.float64)
        fps = float(d["fps"])
        first = int(d["first_frame"])
        views = _read_views(d)
    record: dict = {}
    if (folder / "run.json").is_file():
        record = json.loads((folder / "run.json").read_text())
    k = dict(record.get("intrinsics") or {})
    if not k:  # without run.json the image size comes from the principal point (centred by default)
        k = {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2],
             "width": int(round(2 * K[0, 2])), "height": int(round(2 * K[1, 2]))}
    video = record.get("video", {}).get("path")
    return EngineResult(folder, stem, markers, fps, first, k, Path(video) if video else None, record,
                        views)


def _read_views(d) -> list[View]:
    """The views_* arrays of a multi-camera run's markers.npz; [] for a single camera."""
    if "views_K" not in d:
        return []
    names, K, R, t = d["views_names"], d["views_K"], d["views_R"], d["views_t"]
    size, video, offset = d["views_size"], d["views_video"], d["views_offset"]
    return [View(str(names[c]), np.asarray(K[c], dtype=np.float64), np.asarray(R[c], dtype=np.float64),
                 np.asarray(t[c], dtype=np.float64).reshape(3), (int(size[c][0]), int(size[c][1])),
                 Path(str(video[c])) if str(video[c]) else None, int(offset[c]))
            for c in range(len(names))]


def set_scene_timing(scene: bpy.types.Scene, fps: float, frame_start: int, frame_end: int) -> None:
    """Scene frame rate as fps / fps_base (29.97 → 30 / 1.001) and the frame range."""
    base = max(1, round(fps))
    scene.render.fps = base
    scene.render.fps_base = base / fps
    scene.frame_start, scene.frame_end = frame_start, frame_end
    scene.frame_current = frame_start


def build_scene(result: EngineResult, scene: bpy.types.Scene | None = None,
                with_camera: bool = True) -> dict:
    """Build the armature (and camera, and the body mesh of a --mesh run) for `result` in a new
    collection of `scene`.

    Returns {"collection", "armature", "camera", "views": the further views' cameras (a multi-camera
    run), "frames": (start, end), "keys": counts, "body": scene.mesh.build_body's dict or None,
    "world": the engine.world_frame.WorldFrame everything was placed with}.
    """
    scene = scene or bpy.context.scene
    world = world_frame.world_frame(result.record, result.markers_camera)
    W = world.matrix
    pts = skeleton.skeleton_points(world_frame.transform_points(W, result.markers_camera))
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
        coll = bpy.data.collections.new(f"HP3D {result.stem}")
        scene.collection.children.link(coll)
    arm = armature.build_armature(f"HP3D_{result.stem}", rest, twist, coll, reuse=previous)
    frames = result.blender_frames
    keys = armature.animate(arm, pts, frames, f"HP3D_{result.stem}")
    start, end = int(frames[0]), int(frames[-1])
    set_scene_timing(scene, result.fps, start, end)
    cam, views = None, []
    if with_camera:
        cam = camera.build_camera(f"HP3D_{result.stem}_camera", result.intrinsics, coll, result.video,
                                  scene, world_from_camera=W)
        views = build_view_cameras(result, coll, W)
    arm["hp3d_output"] = str(result.folder)  # where the data came from, for the user and re-imports
    for holder in (coll, arm):
        holder[camera.WORLD_PROPERTY] = [float(v) for v in W.ravel()]
    arm["hp3d_world_level"] = world.level_source  # "run.json", "estimated" or "none"
    body = None
    mesh_file = mesh.find_mesh_file(result.folder)
    if mesh_file is not None:  # --mesh: Anny's rig and the skinned body mesh (scene/mesh.py)
        body = mesh.build_body(mesh.load_mesh_npz(mesh_file), f"HP3D_{result.stem}_body", coll,
                               world_from_camera=W)
    return {"collection": coll, "armature": arm, "camera": cam, "views": views, "frames": (start, end),
            "keys": keys, "body": body, "world": world}


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

