"""Per-frame, per-joint quality report: what the markers rest on, so users can tell measured
positions from estimated ones (`OUT/<stem>/<stem>_quality.csv`, summarised in run.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .contacts import FOOT_POINTS
from .joint_sets import MEDIAPIPE_33
from .landmarks import LandmarkTrack
from .reconstruct import Reconstruction

FLAGS = ("detected", "low_confidence", "interpolated", "mirrored", "swapped", "missing", "planted")


_BLOCK = 512  # frames per block of quality.csv rows

def quality_flags(track: LandmarkTrack, recon: Reconstruction, swapped: np.ndarray) -> dict[str, np.ndarray]:
    """(T, 33) boolean masks:
    detected        MediaPipe saw the joint with visibility ≥ --visibility-min (2D evidence used)
    low_confidence  the person was detected but this joint was not visible enough: its position
                    comes from the skeleton fit (MediaPipe's 3D prior, bone lengths, motion)
    interpolated    the whole frame was missing and the joint was filled across a short gap
    mirrored        estimated from the other side of the body (--estimate-missing)
    swapped         MediaPipe had mirrored the whole body in this frame and it was repaired
    missing         no position (a long gap, or outside the detected span)
    planted         a heel or toe standing still in the video, held still in 3D by the fit
                    (foot contact; off with --no-foot-lock)"""
    t = track.frames
    finite = np.isfinite(recon.markers).all(axis=2)
    return {
        "detected": recon.confident,
        "low_confidence": track.detected[:, None] & ~recon.confident & finite,
        "interpolated": recon.filled & ~recon.mirrored,
        "mirrored": recon.mirrored,
        "swapped": np.broadcast_to(swapped[:, None], (t, len(MEDIAPIPE_33))),
        "missing": ~finite,
        "planted": recon.planted,
    }


def write_quality_csv(path: Path, flags: dict[str, np.ndarray], reprojection_px: np.ndarray,
                      first_frame: int, fps: float) -> None:
    """Long format, one row per frame and joint: frame, time_s, joint, the FLAGS as 0/1, and the
    reprojection error (px) of the final marker against MediaPipe's 2D landmark."""
    t, j = reprojection_px.shape
    with open(path, "w", newline="\n") as fh:
        fh.write(",".join(["frame", "time_s", "joint", *FLAGS, "reprojection_px"]) + "\n")
        # In blocks of frames: numpy's fixed-width string columns for every row at once took
        # hundreds of MB on a 10-minute video.
        for a in range(0, t, _BLOCK):
            b = min(t, a + _BLOCK)
            frames = np.repeat(np.arange(first_frame + a, first_frame + b), j)
            names = np.tile(np.array(MEDIAPIPE_33), b - a)
            cols = [np.char.mod("%d", frames), np.char.mod("%.4f", frames / fps), names]
            cols += [flags[f][a:b].ravel().astype(int).astype(str) for f in FLAGS]
            err = reprojection_px[a:b].ravel()
            cols.append(np.where(np.isfinite(err), np.char.mod("%.2f", np.nan_to_num(err)), ""))
            fh.write("\n".join(",".join(row) for row in zip(*cols)) + "\n")


def summarise(flags: dict[str, np.ndarray], reprojection_px: np.ndarray) -> dict:
    """Shares of joint samples per flag and reprojection statistics, for run.json."""
    summary = {f"{name}_share": round(float(mask.mean()), 4) for name, mask in flags.items()}
    summary["swapped_frames"] = int(flags["swapped"][:, 0].sum())
    # Of the heel and toe samples alone (planted_share counts all 33 landmarks).
    summary["planted_feet_share"] = round(float(flags["planted"][:, FOOT_POINTS].mean()), 4)
    seen = flags["detected"] & np.isfinite(reprojection_px)
    if seen.any():
        summary["reprojection_px_median"] = round(float(np.median(reprojection_px[seen])), 2)
        summary["reprojection_px_p95"] = round(float(np.percentile(reprojection_px[seen], 95)), 2)
    return summary
