"""Calibrated multi-camera runs from the panel: the Cameras list's add/remove operators, and the
further videos, calibration and sync offsets as engine arguments (the engine takes
`VIDEO [VIDEO ...] --calib FILE.toml [--sync-offsets N,N,...]`)."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy.types import Operator

from . import settings

AUTO = "auto"


def further_videos(props) -> list[Path]:
    """The further cameras' videos, absolute, in list order; empty rows are skipped."""
    return [Path(bpy.path.abspath(v.path.strip())) for v in props.views if v.path.strip()]


def calib_path(props) -> Path | None:
    raw = props.calib_path.strip()
    return Path(bpy.path.abspath(raw)) if raw else None


def sync_offsets(props) -> list[int] | None:
    """The typed offsets (one per video, the first's included), or None for 'auto' or an empty
    field; ValueError with a one-line reason when they cannot be used."""
    text = props.sync_offsets.strip()
    if not text or text.lower() == AUTO:
        return None
    try:
        offsets = [int(part) for part in text.replace(" ", "").split(",")]
    except ValueError:
        raise ValueError(f"sync offsets must be whole frame numbers like 0,3,-2 or 'auto', got '{text}'") \
            from None
    videos = 1 + len(further_videos(props))
    if len(offsets) != videos:
        raise ValueError(f"sync offsets: give one per video ({videos}), got {len(offsets)}")
    return offsets


def missing_calibration(props) -> bool:
    """Further videos without a calibration file: the engine cannot relate the cameras."""
    return bool(further_videos(props)) and calib_path(props) is None


def problem(props) -> str | None:
    """One line saying why the multi-camera settings cannot run, or None (also for one camera)."""
    videos = further_videos(props)
    if not videos:
        return None
    calib = calib_path(props)
    if calib is None:
        return "further videos need a calibration file (Cameras ▸ Calibration, a Pose2Sim .toml)"
    if not calib.is_file():
        return f"calibration not found: {calib}"
    for video in videos:
        if not video.is_file():
            return f"video not found: {video}"
    try:
        sync_offsets(props)
    except ValueError as exc:
        return str(exc)
    return None


def engine_args(props) -> list[str]:
    """settings.engine_args with the further videos right after the first (the engine's VIDEO
    arguments are one positional list) and --calib, --sync-offsets; as it is for one camera."""
    args = settings.engine_args(props)
    videos = further_videos(props)
    if not videos:
        return args
    args[1:1] = [str(v) for v in videos]
    calib = calib_path(props)
    if calib is not None:  # without it the engine refuses several videos with its own one line
        args += ["--calib", str(calib)]
    offsets = sync_offsets(props)
    if offsets is not None:  # one token: argparse takes a lone "-2,0" for an option, not a value
        args.append("--sync-offsets=" + ",".join(map(str, offsets)))
    return args


class HP3D_OT_view_add(Operator):
    """Add a further calibrated camera's video"""

    bl_idname = "humanpose3d.view_add"
    bl_label = "Add Video"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="Video", subtype="FILE_PATH", options={"SKIP_SAVE"})
    filter_movie: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    filter_folder: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context: bpy.types.Context, event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        props = context.scene.hp3d
        props.views.add().path = self.filepath
        props.views_index = len(props.views) - 1
        return {"FINISHED"}


class HP3D_OT_view_remove(Operator):
    """Remove the selected further video"""

    bl_idname = "humanpose3d.view_remove"
    bl_label = "Remove Video"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        props = getattr(context.scene, "hp3d", None)
        return props is not None and len(props.views) > 0

    def execute(self, context: bpy.types.Context) -> set[str]:
        props = context.scene.hp3d
        index = min(props.views_index, len(props.views) - 1)
        props.views.remove(index)
        props.views_index = max(0, min(index, len(props.views) - 1))
        return {"FINISHED"}


CLASSES = (HP3D_OT_view_add, HP3D_OT_view_remove)
