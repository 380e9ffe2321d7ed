"""TRC marker files as OpenSim and Pose2Sim read them (tab-separated, metres, Y up)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .number_rows import text_rows


def write_trc(path: Path, markers: np.ndarray, names: list[str] | tuple[str, ...], fps: float,
              first_frame: int = 0, units: str = "m") -> None:
    """Write (frames, markers, 3) positions. Frame# starts at 1; Time is the video time of the
    frame (video frame index / fps, so a `--frames A:B` slice keeps its timing); unknown samples
    are left empty, which OpenSim reads as missing markers."""
    n_frames, n_markers, _ = markers.shape
    header = [
        f"PathFileType\t4\t(X/Y/Z)\t{Path(path).name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{fps:g}\t{fps:g}\t{n_frames}\t{n_markers}\t{units}\t{fps:g}\t1\t{n_frames}",
        # Pose2Sim ends this line with three tabs and its augmenter edits the header on that basis.
        "Frame#\tTime\t" + "\t\t\t".join(names) + "\t\t\t",
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, n_markers + 1)),
    ]
    flat = markers.reshape(n_frames, -1)
    with open(path, "w", newline="\n") as fh:
        fh.write("\n".join(header) + "\n")
        for f, vals in enumerate(text_rows(flat, "\t"), start=1):
            fh.write(f"{f}\t{(f - 1 + first_frame) / fps:.6f}\t{vals}\n")


def read_trc(path: Path) -> tuple[np.ndarray, list[str], float]:
    """Read a TRC written by `write_trc` (or Pose2Sim) → (frames, markers, 3), names, rate."""
    with open(path) as fh:
        lines = fh.read().splitlines()
    rate = float(lines[2].split("\t")[0])
    names = [n for n in lines[3].split("\t")[2:] if n.strip()]
    rows = []
    for line in lines[5:]:
        if not line.strip():
            continue
        cells = line.split("\t")[2:2 + 3 * len(names)]
        cells += [""] * (3 * len(names) - len(cells))
        rows.append([float(c) if c.strip() else np.nan for c in cells])
    return np.array(rows).reshape(len(rows), len(names), 3), names, rate
