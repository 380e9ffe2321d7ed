"""Numeric tables as text rows, one %-format per row: formatting value by value in Python was most
of a long clip's file writing (a 1-minute clip's two TRC files: 1,800 rows of 129 values)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np


def text_rows(data: np.ndarray, sep: str, missing: str = "", decimals: int = 6) -> Iterator[str]:
    """Each row of a 2-D array as text: values with `decimals` decimals joined by `sep`, `missing`
    for NaN or infinite ones (the same text as formatting each value with f"{v:.6f}")."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"text_rows needs a 2-D array, got shape {data.shape}")
    value = f"%.{decimals}f"
    row_format = sep.join([value] * data.shape[1])
    for row, complete in zip(data.tolist(), np.isfinite(data).all(axis=1).tolist()):
        yield row_format % tuple(row) if complete else sep.join(
            value % v if math.isfinite(v) else missing for v in row)
