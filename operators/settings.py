"""The panel's settings as engine command-line arguments: one translation for both the child
process and the in-process (background) run, which parse them with the engine's own parser."""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy


def output_dir(props) -> Path:
    """Absolute output folder; a blend-relative path in an unsaved file goes to the temp folder."""
    raw = props.output_dir.strip() or "//hp3d_output/"
    if raw.startswith("//") and not bpy.data.filepath:
        return Path(tempfile.gettempdir()) / raw[2:].strip("/\\")
    return Path(bpy.path.abspath(raw))


def video_path(props) -> Path:
    return Path(bpy.path.abspath(props.video_path.strip()))


def _num(x: float) -> str:
    return f"{x:.6g}"  # float properties are single precision: 1.72, not 1.7200000286102295


def engine_args(props) -> list[str]:
    """Arguments after `python -m engine run`."""
    args = [str(video_path(props)), "--height", _num(props.height_m), "--mass", _num(props.mass_kg),
            "--out", str(output_dir(props)), "--visibility-min", _num(props.visibility_min),
            "--cutoff-hz", _num(props.cutoff_hz)]
    if props.focal_px > 0:
        args += ["--focal-px", _num(props.focal_px)]
    else:
        args += ["--fov", _num(props.fov_deg)]
    if props.estimate_missing:
        args.append("--estimate-missing")
    if props.frame_start > 0 or props.frame_stop > 0:
        stop = str(props.frame_stop) if props.frame_stop > 0 else ""
        args += ["--frames", f"{props.frame_start}:{stop}"]
    if getattr(props, "mesh", False):
        args.append("--mesh")
    if props.overwrite:
        args.append("--force")
    return args
