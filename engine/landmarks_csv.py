"""The raw landmarks CSV: exactly what MediaPipe gave, per frame, before any cleaning."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .joint_sets import MEDIAPIPE_33
from .landmarks import LandmarkTrack


def write_landmarks_csv(path: Path, track: LandmarkTrack, first_frame: int, fps: float) -> None:
    """Columns: frame (video index), time_s, detected, then per landmark its pixel u, v,
    visibility and MediaPipe world x, y, z (metres, hip-centred, MediaPipe's own scale)."""
    cols = ["frame", "time_s", "detected"]
    for n in MEDIAPIPE_33:
        cols += [f"{n}_u_px", f"{n}_v_px", f"{n}_visibility", f"{n}_world_x_m", f"{n}_world_y_m",
                 f"{n}_world_z_m"]
    t = track.frames
    frames = np.arange(first_frame, first_frame + t)
    per_joint = np.concatenate([track.pixels, track.visibility[..., None], track.world], axis=2)
    data = np.column_stack([frames, frames / fps, track.detected.astype(float),
                            per_joint.reshape(t, -1)])
    fmt = ["%d", "%.6f", "%d"] + ["%.6g"] * (data.shape[1] - 3)
    np.savetxt(path, data, delimiter=",", header=",".join(cols), comments="", fmt=fmt)
