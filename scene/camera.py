"""The engine's pinhole camera as a Blender camera, with the source video behind it.

The engine's camera frame (OpenCV: x right, y down, z forward) maps to Blender world by
engine.coords.CAMERA_TO_BLENDER, so the camera sits at the origin looking down world +Y with +Z up
in the image: a Blender camera (looking down its local -Z, local +Y up) turned 90° about X.
"""

from __future__ import annotations

import math
from pathlib import Path

import bpy

SENSOR_MM = 36.0


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


def build_camera(name: str, intrinsics: dict, collection: bpy.types.Collection,
                 video: Path | None = None, scene: bpy.types.Scene | None = None,
                 video_start_frame: int = 1) -> bpy.types.Object:
    """Create the camera at the origin and make it the scene camera; put `video` (if it exists
    and Blender can read it) behind it as a camera background, frame 1 of the clip at scene frame
    `video_start_frame`."""
    scene = scene or bpy.context.scene
    k = intrinsics
    s = lens_settings(k["fx"], k["fy"], k["cx"], k["cy"], int(k["width"]), int(k["height"]))
    cam = bpy.data.cameras.new(name)
    cam.sensor_fit = s["sensor_fit"]
    cam.sensor_width = s["sensor_width"]
    cam.lens = s["lens"]
    cam.shift_x, cam.shift_y = s["shift_x"], s["shift_y"]
    cam.clip_start, cam.clip_end = 0.05, 200.0
    obj = bpy.data.objects.new(name, cam)
    obj.location = (0.0, 0.0, 0.0)
    obj.rotation_mode = "XYZ"
    obj.rotation_euler = (math.pi / 2, 0.0, 0.0)
    collection.objects.link(obj)
    scene.camera = obj
    scene.render.resolution_x, scene.render.resolution_y = int(k["width"]), int(k["height"])
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = s["pixel_aspect"]
    if video is not None:
        attach_video(cam, Path(video), video_start_frame)
    return obj


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
