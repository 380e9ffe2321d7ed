"""Turn a finished engine output folder (OUT/<stem>/) into Blender objects: an animated armature,
the camera with the video behind it, and the scene's frame rate and range.

Blender frame = video frame index + 1, so the animation lines up with the video background (whose
frame 1 is the video's frame 0) whatever part of the video was processed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from ..engine.coords import camera_to_blender
from . import armature, camera, mesh, skeleton


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
    record: dict = {}
    if (folder / "run.json").is_file():
        record = json.loads((folder / "run.json").read_text())
    k = dict(record.get("intrinsics") or {})
    if not k:  # without run.json the image size comes from the principal point (centred by default)
        k = {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2],
             "width": int(round(2 * K[0, 2])), "height": int(round(2 * K[1, 2]))}
    video = record.get("video", {}).get("path")
    return EngineResult(folder, stem, markers, fps, first, k, Path(video) if video else None, record)


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

    Returns {"collection", "armature", "camera", "frames": (start, end), "keys": counts, "body":
    scene.mesh.build_body's dict or None}.
    """
    scene = scene or bpy.context.scene
    pts = skeleton.skeleton_points(camera_to_blender(result.markers_camera))
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
    cam = None
    if with_camera:
        cam = camera.build_camera(f"HP3D_{result.stem}_camera", result.intrinsics, coll, result.video,
                                  scene)
    arm["hp3d_output"] = str(result.folder)  # where the data came from, for the user and re-imports
    body = None
    mesh_file = mesh.find_mesh_file(result.folder)
    if mesh_file is not None:  # --mesh: Anny's rig and the skinned body mesh (scene/mesh.py)
        body = mesh.build_body(mesh.load_mesh_npz(mesh_file), f"HP3D_{result.stem}_body", coll)
    return {"collection": coll, "armature": arm, "camera": cam, "frames": (start, end), "keys": keys,
            "body": body}


def find_previous(scene: bpy.types.Scene, folder: Path) -> bpy.types.Object | None:
    """The armature an earlier import of `folder` built in `scene` (also from a saved .blend)."""
    want = {str(folder), str(Path(folder).resolve())}
    for obj in scene.objects:
        if obj.type == "ARMATURE" and obj.get("hp3d_output") in want and obj.users_collection:
            return obj
    return None


def expected_points(result: EngineResult) -> dict[str, np.ndarray]:
    """The skeleton points the armature is built to follow (Blender world), for checks."""
    return skeleton.skeleton_points(camera_to_blender(result.markers_camera))
