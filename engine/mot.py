"""OpenSim motion files (.mot): a time column and named coordinate columns, angles in degrees."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .number_rows import text_rows


def write_mot(path: Path, time_s: np.ndarray, columns: Mapping[str, np.ndarray], name: str = "angles",
              in_degrees: bool = True) -> None:
    """The header OpenSim's STOFileAdapter and Pose2Sim read; unknown samples are written as NaN,
    which OpenSim parses as missing."""
    names = list(columns)
    data = np.column_stack([np.asarray(time_s, float)] + [np.asarray(columns[n], float) for n in names])
    header = [name, "version=1", f"nRows={data.shape[0]}", f"nColumns={data.shape[1]}",
              f"inDegrees={'yes' if in_degrees else 'no'}", "endheader", "\t".join(["time", *names])]
    with open(path, "w", newline="\n") as fh:
        fh.write("\n".join(header) + "\n")
        for row in text_rows(data, "\t", missing="NaN"):
            fh.write(row + "\n")


def read_mot(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Read a .mot/.sto (ours or OpenSim's) → time (T,), {column: (T,)}."""
    with open(path) as fh:
        lines = fh.read().splitlines()
    end = next(i for i, line in enumerate(lines) if line.strip().lower() == "endheader")
    names = lines[end + 1].split("\t")
    rows = [[float(c) for c in line.split("\t")] for line in lines[end + 2:] if line.strip()]
    data = np.array(rows, dtype=float).reshape(len(rows), len(names))
    return data[:, 0], {n.strip(): data[:, k] for k, n in enumerate(names) if k}
