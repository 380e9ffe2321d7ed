"""The scene's HumanPose3D settings (what the engine needs) and the run's live state."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    IntVectorProperty,
    StringProperty,
)
from bpy.types import PropertyGroup

# Blender 5.0 warns on (and its file browser will not write) "//" paths unless a property opts in;
# 4.2 has no such option, so ask the RNA rather than the version.
PATH_OPTIONS = ({"PATH_SUPPORTS_BLEND_RELATIVE"}
                if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties else set())

MESH_FORMAT_ITEMS = [("obj", "OBJ", "Wavefront OBJ per frame"), ("ply", "PLY", "Stanford PLY per frame"),
                     ("glb", "glTF", "Binary glTF per frame")]


class HP3D_PG_view(PropertyGroup):
    """A further camera's video of a calibrated multi-camera run."""

    path: StringProperty(name="Video", subtype="FILE_PATH", options=PATH_OPTIONS,
                         description="The same moment filmed by another calibrated camera")


class HP3D_PG_settings(PropertyGroup):
    video_path: StringProperty(name="Video", subtype="FILE_PATH", options=PATH_OPTIONS,
                               description="Video of one person (any format FFmpeg reads)")
    # Calibrated multi-camera mode (engine: further VIDEO arguments, --calib, --sync-offsets)
    views: CollectionProperty(type=HP3D_PG_view, name="Further Videos",
                              description="Videos of the other calibrated cameras; the first video's "
                                          "camera stays the 3D frame")
    views_index: IntProperty(name="Active Video", default=0, min=0)
    calib_path: StringProperty(name="Calibration", subtype="FILE_PATH", options=PATH_OPTIONS,
                               description="Pose2Sim calibration (.toml) of all the cameras; needed "
                                           "with further videos")
    sync_offsets: StringProperty(name="Sync Offsets", default="auto",
                                 description="Frame offset of each video, the first's included "
                                             "(e.g. 0,3,-2), or 'auto' to find them from the motion")
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
                               options=PATH_OPTIONS,
                               description="Results go to <Output>/<video name>/ (a relative path in an "
                                           "unsaved file: the extension's user folder)")
    frame_start: IntProperty(name="Start", default=0, min=0,
                             description="First video frame to process (0-based)")
    frame_stop: IntProperty(name="Stop", default=0, min=0,
                            description="Video frame to stop before; 0 processes to the end")
    # Tracking (engine: --pose-model, --people, --person-height, --person-mass, --roi, --holistic)
    pose_model: EnumProperty(name="Pose Model", default="AUTO",
                             items=[("AUTO", "Default", "The engine's choice: full for one camera, heavy "
                                                        "for calibrated cameras"),
                                    ("lite", "Lite", "BlazePose lite: fastest, least accurate"),
                                    ("full", "Full", "BlazePose full"),
                                    ("heavy", "Heavy", "BlazePose heavy: slowest")],
                             description="MediaPipe BlazePose landmark model")
    roi: IntVectorProperty(name="Person Box", size=4, default=(0, 0, 0, 0), min=0,
                           description="X, Y, width, height in pixels of the first frame around the "
                                       "person to follow; width or height 0: the largest, most "
                                       "central person")
    people: StringProperty(name="People", default="largest",
                           description="Whom to follow: largest (one person), all, N (the N largest) "
                                       "or ID,ID (IDs as a run with all lists them; one ID as #ID); "
                                       "each person into <Output>/<video>/person_<ID>/, and one "
                                       "armature and camera each, coloured by ID")
    person_heights: StringProperty(name="Heights by ID", default="",
                                   description="With People other than largest: people's heights in "
                                               "metres by ID, as 1=1.80, 2=1.65 (IDs as a run with all "
                                               "lists them); the others get Height")
    person_masses: StringProperty(name="Masses by ID", default="",
                                  description="With People other than largest: people's masses in "
                                              "kilograms by ID, as 1=80, 2=55; the others get Mass")
    holistic: BoolProperty(name="Hands and Face", default=False,
                           description="Also track hands and face with MediaPipe Holistic (slower)")
    # Cleaning and fit (--max-gap, --filter-order, --free-bone-lengths, --no-fit, --no-foot-lock,
    # --lifter)
    max_gap_s: FloatProperty(name="Max Gap (s)", default=0.5, min=0.0, soft_max=5.0,
                             description="Interpolate gaps up to this long; longer gaps stay empty")
    filter_order: IntProperty(name="Filter Order", default=4, min=2, max=12, step=2,
                              description="Effective Butterworth order after the forward-backward "
                                          "pass (even)")
    hold_bone_lengths: BoolProperty(name="Hold Bone Lengths", default=True,
                                    description="Hold the subject's bone lengths constant over time")
    fit_skeleton: BoolProperty(name="Skeleton Fit", default=True,
                               description="Fit the skeleton to the 2D landmarks (off: MediaPipe's 3D, "
                                           "placed and filtered)")
    foot_lock: BoolProperty(name="Foot Lock", default=True,
                            description="Hold heels and toes that stand still in the video still in 3D, "
                                        "so planted feet do not slide")
    lifter_path: StringProperty(name="Lifter", subtype="FILE_PATH", default="", options=PATH_OPTIONS,
                                description="Optional VideoPose3D checkpoint (.bin with 'model_pos') "
                                            "whose temporal 3D lifting is the fit's prior (needs torch)")
    lifter_layout: EnumProperty(name="Lifter Layout", default="coco17",
                                items=[("coco17", "COCO-17", "Trained on COCO keypoints (VideoPose3D's "
                                                             "in-the-wild model)"),
                                       ("h36m17", "H36M-17", "Trained on Human3.6M's 17 joints")],
                                description="2D keypoint order the checkpoint was trained on")
    # Biomechanics (--augmentation-cycles, --no-angles, --no-plots, --svg, --opensim)
    augmentation_cycles: IntProperty(name="Augmentation Cycles", default=4, min=1, max=32,
                                     description="Average the LSTM marker augmenter over this many "
                                                 "headings of the subject (1: Pose2Sim's single pass)")
    joint_angles: BoolProperty(name="Joint Angles", default=True,
                               description="ISB joint angles (CSV, MOT) in joint_angles/")
    angle_plots: BoolProperty(name="Angle Plots", default=True,
                              description="PNG plots of the joint angles")
    angle_svg: BoolProperty(name="SVG Figures", default=False,
                            description="Each joint's figure as SVG too, text kept as text (the PDF "
                                        "report is vector already)")
    opensim: BoolProperty(name="OpenSim IK", default=False,
                          description="Scale Pose2Sim's OpenSim model and run inverse kinematics "
                                      "(needs opensim==4.6 in the engine's Python)")
    # SCAIL (--scail, --scail-size)
    scail: BoolProperty(name="SCAIL Poses", default=False,
                        description="SMPL-24 poses in NLF's format for SCAIL and SCAIL's 3D pose "
                                    "render (MP4 + RGBA PNGs) in scail/")
    scail_size: IntVectorProperty(name="SCAIL Size", size=2, default=(0, 0), min=0, max=4096,
                                  description="Render width and height (even); 0: SCAIL's 512×896 "
                                              "(896×512 for a landscape video)")
    # Body mesh (--mesh, --mesh-format, --sex, --age)
    mesh: BoolProperty(name="Body Mesh", default=False,
                       description="Also fit the Anny body model to every frame (SAM 3D Body's "
                                   "format) and build it as a skinned, animated mesh (needs torch "
                                   "and anny in the engine's Python)")
    mesh_formats: EnumProperty(name="Mesh Files", items=MESH_FORMAT_ITEMS, options={"ENUM_FLAG"},
                               default=set(), description="Also write one mesh file per frame")
    sex: EnumProperty(name="Sex", default="AUTO",
                      items=[("AUTO", "Fitted", "Fit the body model's sex to the video"),
                             ("female", "Female", ""), ("male", "Male", "")],
                      description="The subject's sex, for the body mesh")
    age_years: IntProperty(name="Age", default=0, min=0, max=110,
                           description="The subject's age in years, for the body mesh; 0: an adult")
    overwrite: BoolProperty(name="Replace Existing", default=True,
                            description="Replace an earlier result for the same video")
    result_dir: StringProperty(name="Result", subtype="DIR_PATH", options=PATH_OPTIONS,
                               description="A finished output folder (<Output>/<video name>/)")
    # Export FBX (scene/export.py's presets) of the result's armature and body mesh.
    fbx_path: StringProperty(name="FBX", subtype="FILE_PATH", options=PATH_OPTIONS, default="",
                             description="Where Export FBX writes; empty: next to the .blend file "
                                         "(the extension's user folder when it is unsaved), named "
                                         "after the armature")
    fbx_preset: EnumProperty(name="Preset", default="unity",
                             items=[("unity", "Unity", "Y up, metres"),
                                    ("unreal", "Unreal", "Z up, X forward, centimetres"),
                                    ("mixamo", "Mixamo", "Unity's axes, bones named mixamorig:Hips, ...")],
                             description="FBX axes, units and bone names for the target engine")
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
    bpy.utils.register_class(HP3D_PG_view)  # before the group that holds a collection of it
    bpy.utils.register_class(HP3D_PG_settings)
    bpy.types.Scene.hp3d = bpy.props.PointerProperty(type=HP3D_PG_settings)
    bpy.app.handlers.load_post.append(_reset_running)


def unregister() -> None:
    if _reset_running in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_reset_running)
    del bpy.types.Scene.hp3d
    bpy.utils.unregister_class(HP3D_PG_settings)
    bpy.utils.unregister_class(HP3D_PG_view)
