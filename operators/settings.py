"""The panel's settings as engine command-line arguments: one translation for both the child
process and the in-process (background) run, which parse them with the engine's own parser."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import bpy

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


def output_dir(props) -> Path:
    """Absolute output folder; a blend-relative path in an unsaved file goes to user_folder()."""
    raw = props.output_dir.strip() or "//hp3d_output/"
    if raw.startswith("//") and not bpy.data.filepath:
        return user_folder(re.sub(r"[^\w.-]+", "_", raw[2:].strip("/\\")) or "hp3d_output")
    return Path(bpy.path.abspath(raw))


def video_path(props) -> Path:
    return Path(bpy.path.abspath(props.video_path.strip()))


def _num(x: float) -> str:
    return f"{x:.6g}"  # float properties are single precision: 1.72, not 1.7200000286102295


def engine_args(props) -> list[str]:
    """Arguments after `python -m engine run`: every engine option the panel offers (all but the
    CLI's own --quiet and --debug; tests/test_addon_panel.py keeps it so)."""
    args = [str(video_path(props)), "--height", _num(props.height_m), "--mass", _num(props.mass_kg),
            "--out", str(output_dir(props)), "--visibility-min", _num(props.visibility_min),
            "--max-gap", _num(props.max_gap_s), "--cutoff-hz", _num(props.cutoff_hz),
            "--filter-order", str(props.filter_order),
            "--augmentation-cycles", str(props.augmentation_cycles)]
    if props.pose_model != "AUTO":  # the engine's default depends on the number of cameras
        args += ["--pose-model", props.pose_model]
    if props.focal_px > 0:
        args += ["--focal-px", _num(props.focal_px)]
    else:
        args += ["--fov", _num(props.fov_deg)]
    if props.frame_start > 0 or props.frame_stop > 0:
        stop = str(props.frame_stop) if props.frame_stop > 0 else ""
        args += ["--frames", f"{props.frame_start}:{stop}"]
    x, y, w, h = props.roi
    if w > 0 and h > 0:
        args += ["--roi", f"{x},{y},{w},{h}"]
    flags = {"--holistic": props.holistic, "--estimate-missing": props.estimate_missing,
             "--free-bone-lengths": not props.hold_bone_lengths, "--no-fit": not props.fit_skeleton,
             "--no-foot-lock": not props.foot_lock,
             "--no-angles": not props.joint_angles, "--no-plots": not props.angle_plots,
             "--opensim": props.opensim, "--scail": props.scail, "--mesh": props.mesh,
             "--force": props.overwrite}
    args += [flag for flag, on in flags.items() if on]
    if props.lifter_path.strip():
        args += ["--lifter", bpy.path.abspath(props.lifter_path.strip()),
                 "--lifter-layout", props.lifter_layout]
    if props.scail and all(v > 0 for v in props.scail_size):
        args += ["--scail-size", "{}x{}".format(*props.scail_size)]
    if props.mesh:
        if props.mesh_formats:
            args += ["--mesh-format", ",".join(sorted(props.mesh_formats))]
        if props.sex != "AUTO":
            args += ["--sex", props.sex]
        if props.age_years > 0:
            args += ["--age", str(props.age_years)]
    return args

