"""The scene's HumanPose3D settings (what the engine needs) and the run's live state."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, StringProperty
from bpy.types import PropertyGroup


class HP3D_PG_settings(PropertyGroup):
    video_path: StringProperty(name="Video", subtype="FILE_PATH",
                               description="Video of one person (any format FFmpeg reads)")
    height_m: FloatProperty(name="Height", default=1.72, min=0.5, max=2.6, precision=2,
                            unit="LENGTH", description="Subject height: sets the metric scale")
    mass_kg: FloatProperty(name="Mass (kg)", default=70.0, min=10.0, max=400.0,
                           description="Subject mass in kilograms")
    fov_deg: FloatProperty(name="Field of View", default=55.0, min=1.0, max=170.0,
                           description="Camera field of view across the longer image side, degrees "
                                       "(used when Focal is 0)")
    focal_px: FloatProperty(name="Focal (px)", default=0.0, min=0.0,
                            description="Camera focal length in pixels; 0 uses the field of view")
    visibility_min: FloatProperty(name="Min Visibility", default=0.3, min=0.0, max=1.0,
                                  subtype="FACTOR",
                                  description="Landmarks below this MediaPipe visibility are missing")
    estimate_missing: BoolProperty(name="Estimate Missing", default=False,
                                   description="Fill a limb missing on one side by mirroring the other")
    cutoff_hz: FloatProperty(name="Cut-off (Hz)", default=6.0, min=0.0, max=100.0,
                             description="Low-pass filter cut-off; 0 disables filtering")
    output_dir: StringProperty(name="Output", subtype="DIR_PATH", default="//hp3d_output/",
                               description="Results go to <Output>/<video name>/ (an unsaved file "
                                           "uses the system temporary folder)")
    frame_start: IntProperty(name="Start", default=0, min=0,
                             description="First video frame to process (0-based)")
    frame_stop: IntProperty(name="Stop", default=0, min=0,
                            description="Video frame to stop before; 0 processes to the end")
    mesh: BoolProperty(name="Body Mesh", default=False,
                       description="Also fit the Anny body model to every frame (SAM 3D Body's "
                                   "format) and build it as a skinned, animated mesh")
    overwrite: BoolProperty(name="Replace Existing", default=True,
                            description="Replace an earlier result for the same video")
    result_dir: StringProperty(name="Result", subtype="DIR_PATH",
                               description="A finished output folder (<Output>/<video name>/)")
    # Live state of a run, shown by the panel.
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    stage: StringProperty(name="Stage", default="")
    running: BoolProperty(name="Running", default=False)


@bpy.app.handlers.persistent
def _reset_running(_dummy=None) -> None:
    """A file saved mid-run would reopen looking busy; no run survives a file load."""
    for scene in bpy.data.scenes:
        props = getattr(scene, "hp3d", None)
        if props is not None and props.running:
            props.running = False
            props.stage = "interrupted"


def register() -> None:
    bpy.utils.register_class(HP3D_PG_settings)
    bpy.types.Scene.hp3d = bpy.props.PointerProperty(type=HP3D_PG_settings)
    bpy.app.handlers.load_post.append(_reset_running)


def unregister() -> None:
    if _reset_running in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_reset_running)
    del bpy.types.Scene.hp3d
    bpy.utils.unregister_class(HP3D_PG_settings)
