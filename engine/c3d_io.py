"""C3D export of marker trajectories, millimetres, the same Y-up axes as the TRC.

Written with the pure-Python `c3d` package from one float32 array: ezc3d builds a C++ object per
point and frame, which took 290 MB for 10 minutes of 65 markers (this takes 50 MB); ezc3d and `c3d`
both read the files back the same (tests/test_biomech_run.py)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def write_c3d(path: Path, markers: np.ndarray, names: Sequence[str], fps: float,
              first_frame: int = 0) -> None:
    """(frames, markers, 3) metres → C3D with POINT:UNITS mm. Unknown samples are written as
    invalid points (residual −1), which C3D readers report as missing."""
    import c3d

    n_frames, n_markers, _ = markers.shape
    data = np.zeros((n_frames, n_markers, 5), np.float32)  # x, y, z, residual, camera mask
    for axis in range(3):
        data[..., axis] = markers[..., axis] * 1000.0
    unknown = ~np.isfinite(data[..., :3]).all(axis=2)
    data[unknown, :3] = 0.0
    data[unknown, 3] = -1.0
    writer = c3d.Writer(point_rate=float(fps), point_scale=-1.0, point_units="mm")
    writer.set_point_labels(list(names))
    writer.set_screen_axis("+X", "+Y")
    # Where the clip starts in the video, for readers that keep frame numbers (C3D counts from 1).
    writer.set_start_frame(int(first_frame) + 1)
    no_analog = np.zeros((0, 0), np.float32)
    writer.add_frames([(data[t], no_analog) for t in range(n_frames)])
    with open(path, "wb") as fh, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No analog data", UserWarning)  # there is none, by design
        writer.write(fh)
