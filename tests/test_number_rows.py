"""engine/number_rows.text_rows: the TRC, MOT and angle CSV writers' rows, one format per row,
must give exactly the text of formatting value by value (what OpenSim and Pose2Sim were checked
reading)."""

import numpy as np
import pytest

from engine.number_rows import text_rows


def test_rows_equal_value_by_value_formatting():
    rng = np.random.default_rng(3)
    data = (rng.normal(size=(200, 12)) * 10.0 ** rng.integers(-8, 4, size=(200, 12))).astype(np.float32)
    data[3, 4], data[5, :], data[7, 0], data[8, 1] = np.nan, np.nan, np.inf, -np.inf
    data[9, 2] = -1e-9  # rounds to -0.000000, as f"{v:.6f}" writes it
    for sep, missing in ((",", ""), ("\t", "NaN")):
        expected = [sep.join(f"{v:.6f}" if np.isfinite(v) else missing for v in row) for row in data]
        assert list(text_rows(data, sep, missing)) == expected
    assert next(text_rows(np.array([[1.23456789]]), ",", decimals=2)) == "1.23"


def test_rows_need_a_table():
    with pytest.raises(ValueError, match="2-D"):
        list(text_rows(np.zeros(3), ","))
