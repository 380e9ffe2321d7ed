"""The engine's pinhole cameras as Blender cameras, with the source videos behind them.

The engine's camera frame (OpenCV: x right, y down, z forward) maps to Blender world by a rigid
4x4 `world_from_camera`: a result's levelled world (engine.world_frame), or by default the camera
frame turned Z up (engine.coords.CAMERA_TO_BLENDER: the camera at the origin looking down world +Y).
The first camera is the engine frame's origin and axes carried through that 4x4, so it projects the
world-frame body exactly as the engine's camera projects its markers; a calibrated run's further
cameras are placed from their extrinsics in the engine frame, then through the same 4x4.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from ..engine.coords import CAMERA_TO_BLENDER

SENSOR_MM = 36.0
# OpenCV camera axes → Blender camera local axes (x stays, y down → local +Y up, z forward → -Z).
_OPENCV_TO_BLENDER_CAM = np.diag([1.0, -1.0, -1.0])
# Custom property on a result's collection and armature: its 4x4 world_from_camera, 16 floats,
# row-major (scene/build.py writes it; the SCAIL camera and later tools read it).
WORLD_PROPERTY = "hp3d_world_from_camera"


def default_world() -> np.ndarray:
    """The camera frame turned Z up: the world of scenes built before the levelled world."""
    w = np.eye(4)
    w[:3, :3] = CAMERA_TO_BLENDER
    return w


def stored_world(holder: bpy.types.ID) -> np.ndarray | None:
    """The 4x4 world_from_camera stored on `holder` (a result's collection or armature), or None."""
    flat = holder.get(WORLD_PROPERTY)
    if flat is None or len(flat) != 16:
        return None
    return np.array([float(v) for v in flat], dtype=np.float64).reshape(4, 4)


def lens_settings(fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> dict:
    """Blender camera settings reproducing a pinhole camera with these intrinsics (pixels).

    With a horizontal sensor fit, the sensor width spans the image width, so lens = fx·sensor/W;
    shifts are in units of the fitted dimension (the width): a principal point right of centre
    moves the frame left. A non-square pixel (fx ≠ fy) becomes the render pixel aspect.
    """
    return {
        "sensor_fit": "HORIZONTAL",
        "sensor_width": SENSOR_MM,
        "lens": fx * SENSOR_MM / width,
        "shift_x": (width / 2.0 - cx) / width,
        "shift_y": (cy - height / 2.0) / width,
        "pixel_aspect": (1.0, fx / fy) if fy > 0 else (1.0, 1.0),
    }


def extrinsics_to_world(R: np.ndarray, t: np.ndarray, world_from_camera: np.ndarray | None = None
                        ) -> np.ndarray:
    """4×4 Blender world matrix of a camera with x_c = R @ x + t (x in the engine frame, x_c in the
    camera's OpenCV frame): its centre is -Rᵀt and its OpenCV axes are R's rows, both carried into
    Blender world by `world_from_camera` (default: default_world()); the columns then flip to a
    Blender camera's local axes. The engine's own camera is R = I, t = 0."""
    W = default_world() if world_from_camera is None else np.asarray(world_from_camera, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64).reshape(3)
    world = np.eye(4)
    world[:3, :3] = W[:3, :3] @ R.T @ _OPENCV_TO_BLENDER_CAM
    world[:3, 3] = W[:3, :3] @ (-R.T @ t) + W[:3, 3]
    return world


def build_camera(name: str, intrinsics: dict, collection: bpy.types.Collection,
                 video: Path | None = None, scene: bpy.types.Scene | None = None,
                 video_start_frame: int = 1, world_from_camera: np.ndarray | None = None
                 ) -> bpy.types.Object:
    """Create the engine's camera, placed in the world `world_from_camera` (default: at the origin
    looking down +Y), and make it the scene camera; put `video` (if it exists and Blender can read
    it) behind it as a camera background, frame 1 of the clip at scene frame `video_start_frame`."""
    scene = scene or bpy.context.scene
    obj = new_camera(name, intrinsics, collection, video, video_start_frame)
    obj.rotation_mode = "XYZ"
    obj.matrix_world = Matrix(extrinsics_to_world(np.eye(3), np.zeros(3), world_from_camera).tolist())
    use_camera(scene, obj)
    return obj


def build_view_camera(name: str, intrinsics: dict, R: np.ndarray, t: np.ndarray,
                      collection: bpy.types.Collection, video: Path | None = None,
                      video_start_frame: int = 1, world_from_camera: np.ndarray | None = None
                      ) -> bpy.types.Object:
    """A further calibrated camera, placed by its extrinsics relative to the engine frame, in the
    world `world_from_camera`; the scene camera and render size stay as they are (use_camera()
    switches to it)."""
    obj = new_camera(name, intrinsics, collection, video, video_start_frame)
    obj.rotation_mode = "XYZ"
    obj.matrix_world = Matrix(extrinsics_to_world(R, t, world_from_camera).tolist())
    return obj


def new_camera(name: str, intrinsics: dict, collection: bpy.types.Collection,
               video: Path | None = None, video_start_frame: int = 1) -> bpy.types.Object:
    """A camera object with these intrinsics (fx, fy, cx, cy, width, height in pixels) and the
    video behind it. Its image size and pixel aspect are kept on the camera data (hp3d_size,
    hp3d_pixel_aspect), since Blender holds them per scene, not per camera."""
    k = intrinsics
    width, height = int(k["width"]), int(k["height"])
    s = lens_settings(k["fx"], k["fy"], k["cx"], k["cy"], width, height)
    cam = bpy.data.cameras.new(name)
    cam.sensor_fit = s["sensor_fit"]
    cam.sensor_width = s["sensor_width"]
    cam.lens = s["lens"]
    cam.shift_x, cam.shift_y = s["shift_x"], s["shift_y"]
    cam.clip_start, cam.clip_end = 0.05, 200.0
    cam["hp3d_size"] = [width, height]
    cam["hp3d_pixel_aspect"] = list(s["pixel_aspect"])
    obj = bpy.data.objects.new(name, cam)
    collection.objects.link(obj)
    if video is not None:
        attach_video(cam, Path(video), video_start_frame)
    return obj


def use_camera(scene: bpy.types.Scene, obj: bpy.types.Object) -> None:
    """Make `obj` the scene camera with the render size and pixel aspect it was built for."""
    scene.camera = obj
    size = obj.data.get("hp3d_size")
    if size is not None:
        scene.render.resolution_x, scene.render.resolution_y = int(size[0]), int(size[1])
        scene.render.resolution_percentage = 100
    aspect = obj.data.get("hp3d_pixel_aspect")
    if aspect is not None:
        scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = float(aspect[0]), float(aspect[1])


def attach_video(cam: bpy.types.Camera, video: Path, start_frame: int = 1) -> bool:
    """Show `video` as the camera background; False (and no background) when it cannot be read."""
    if not video.is_file():
        return False
    try:
        clip = bpy.data.movieclips.load(str(video), check_existing=True)
    except RuntimeError:  # a format this Blender build cannot decode
        return False
    clip.frame_start = start_frame
    cam.show_background_images = True
    bg = cam.background_images.new()
    bg.source = "MOVIE_CLIP"
    bg.clip = clip
    bg.clip_user.use_render_undistorted = False
    bg.alpha = 0.8
    bg.frame_method = "FIT"
    return True
