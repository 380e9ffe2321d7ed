"""The panel's settings as the engine's RunConfig, built directly (never through command-line
strings) and checked once by RunConfig itself; also the one-line reasons the Run button gives for
settings it cannot run."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import bpy

from ..engine.config import RunConfig, parse_by_id, parse_offsets
from ..engine.errors import EngineError

AUTO = "auto"  # the sync offsets found from the motion

# The add-on's package: "bl_ext.<repo>.humanpose3d" when Blender loads it as an extension.
ADDON_PACKAGE = __package__.rpartition(".")[0]


def user_folder(*parts: str) -> Path:
    """A folder for results that have no better home (an unsaved .blend file): the extension's user
    folder, which survives upgrades and is writable, unlike the extension's own folder; the system
    temporary folder when the add-on is not loaded as an extension (tests, headless.py)."""
    try:
        return Path(bpy.utils.extension_path_user(ADDON_PACKAGE, path="/".join(parts), create=True))
    except (ValueError, AttributeError):  # not under bl_ext.*; Blender older than 4.2
        return Path(tempfile.gettempdir(), *parts)


def bone_map_presets() -> Path:
    """Where retarget bone map presets are saved: the extension's user folder, bone_maps/."""
    return user_folder("bone_maps")


def file_path(raw: str, folder: str) -> Path:
    """An absolute file path from a path property; a blend-relative one in an unsaved file goes
    to user_folder(folder), keeping its file name."""
    if raw.startswith("//") and not bpy.data.filepath:
        return user_folder(folder) / Path(raw[2:]).name
    return Path(bpy.path.abspath(raw))


def folder_path(raw: str, default: str, *under: str) -> Path:
    """An absolute folder from a path property (empty: `//<default>/`); a blend-relative one in an
    unsaved file goes to user_folder(<its name>, *under)."""
    raw = raw.strip() or f"//{default}/"
    if raw.startswith("//") and not bpy.data.filepath:
        return user_folder(re.sub(r"[^\w.-]+", "_", raw[2:].strip("/\\")) or default, *under)
    return Path(bpy.path.abspath(raw))


def output_dir(props) -> Path:
    """Absolute output folder; a blend-relative path in an unsaved file goes to user_folder()."""
    return folder_path(props.output_dir, "hp3d_output")


def video_path(props) -> Path:
    return Path(bpy.path.abspath(props.video_path.strip()))


def _num(x: float) -> float:
    return float(f"{x:.6g}")  # float properties are single precision: 1.72, not 1.7200000286102295


def further_videos(props) -> list[Path]:
    """The further cameras' videos, absolute, in list order; empty rows are skipped."""
    return [Path(bpy.path.abspath(v.path.strip())) for v in props.views if v.path.strip()]


def calib_path(props) -> Path | None:
    raw = props.calib_path.strip()
    return Path(bpy.path.abspath(raw)) if raw else None


def sync_offsets(props) -> tuple[int, ...] | None:
    """The typed offsets (one per video, the first's included), or None for 'auto' or an empty
    field; ValueError with a one-line reason when they cannot be used."""
    text = props.sync_offsets.strip()
    if not text or text.lower() == AUTO:
        return None
    try:
        offsets = parse_offsets(text)
    except EngineError as exc:
        raise ValueError(f"{exc} (or 'auto')") from None
    videos = 1 + len(further_videos(props))
    if len(offsets) != videos:
        raise ValueError(f"sync offsets: give one per video ({videos}), got {len(offsets)}")
    return offsets


def missing_calibration(props) -> bool:
    """Further videos without a calibration file: the engine cannot relate the cameras."""
    return bool(further_videos(props)) and calib_path(props) is None


def problem(props) -> str | None:
    """One line saying why the panel's videos cannot run, or None."""
    video = video_path(props)
    if not video.is_file():
        return f"video not found: {video}"
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


def checked_config(props) -> RunConfig:
    """run_config, after the checks RunConfig cannot make from Blender (files, the offsets'
    wording); EngineError with the one line."""
    reason = problem(props)
    if reason:
        raise EngineError(reason)
    return run_config(props)


def run_config(props) -> RunConfig:
    """Every engine setting the panel offers (all but the CLI's own --quiet and --debug;
    tests/test_addon_panel.py keeps it so). EngineError (one line) for a value the engine refuses.
    A stage's options are passed only with the stage: RunConfig takes a mesh format or a SCAIL
    size as switching it on."""
    views = tuple(further_videos(props))
    x, y, w, h = props.roi
    start, stop = props.frame_start, props.frame_stop
    lifter = props.lifter_path.strip()
    return RunConfig(
        video=video_path(props), views=views,
        calib=calib_path(props) if views else None,
        sync_offsets=sync_offsets(props) if views else None,
        height_m=_num(props.height_m), mass_kg=_num(props.mass_kg), out_dir=output_dir(props),
        fov_deg=_num(props.fov_deg), focal_px=_num(props.focal_px) if props.focal_px > 0 else None,
        frames=(start, stop or None) if start > 0 or stop > 0 else None,
        roi=(x, y, w, h) if w > 0 and h > 0 else None,
        holistic=props.holistic, pose_model=None if props.pose_model == "AUTO" else props.pose_model,
        people=props.people.strip() or "largest",
        person_heights=parse_by_id(props.person_heights, "--person-height"),
        person_masses=parse_by_id(props.person_masses, "--person-mass"),
        scail=props.scail,
        scail_size=tuple(props.scail_size) if props.scail and all(v > 0 for v in props.scail_size) else None,
        visibility_min=_num(props.visibility_min), max_gap_s=_num(props.max_gap_s),
        estimate_missing=props.estimate_missing, cutoff_hz=_num(props.cutoff_hz),
        filter_order=props.filter_order, hold_bone_lengths=props.hold_bone_lengths,
        fit_skeleton=props.fit_skeleton, foot_lock=props.foot_lock,
        lifter=Path(bpy.path.abspath(lifter)) if lifter else None,
        lifter_layout=props.lifter_layout if lifter else "coco17",
        augmentation_cycles=props.augmentation_cycles, joint_angles=props.joint_angles,
        angle_plots=props.angle_plots, angle_svg=props.angle_svg,
        opensim=props.opensim, mesh=props.mesh,
        mesh_formats=tuple(sorted(props.mesh_formats)) if props.mesh else (),
        sex=props.sex if props.mesh and props.sex != "AUTO" else None,
        age_years=float(props.age_years) if props.mesh and props.age_years > 0 else None,
        force=props.overwrite)
