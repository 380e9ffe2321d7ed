"""C3D export of marker trajectories (ezc3d), millimetres, the same Y-up axes as the TRC."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def write_c3d(path: Path, markers: np.ndarray, names: Sequence[str], fps: float,
              first_frame: int = 0) -> None:
    """(frames, markers, 3) metres → C3D with POINT:UNITS mm. Unknown samples are written as
    invalid points (residual −1), which C3D readers report as missing."""
    import ezc3d

    n_frames, n_markers, _ = markers.shape
    c = ezc3d.c3d()
    point = c["parameters"]["POINT"]
    point["RATE"]["value"] = [float(fps)]
    point["LABELS"]["value"] = list(names)
    point["DESCRIPTIONS"]["value"] = [""] * n_markers
    point["UNITS"]["value"] = ["mm"]
    c.add_parameter("POINT", "X_SCREEN", ["+X"])
    c.add_parameter("POINT", "Y_SCREEN", ["+Y"])
    # Where the clip starts in the video, for readers that keep frame numbers.
    c["header"]["points"]["first_frame"] = int(first_frame)
    pts = np.ones((4, n_markers, n_frames))
    pts[:3] = np.transpose(markers, (2, 1, 0)) * 1000.0
    c["data"]["points"] = pts
    residuals = np.zeros((1, n_markers, n_frames))
    residuals[0, ~np.isfinite(pts[:3]).all(axis=0)] = -1.0
    c["data"]["meta_points"] = {"residuals": residuals, "camera_masks": np.zeros((7, n_markers, n_frames),
                                                                                 dtype=bool)}
    c.write(str(path))
