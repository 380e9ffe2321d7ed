"""Anatomical limits on the ISB angles (engine/angle_limits.py): impossible samples are dropped and
refilled, and the demo's angles never jump by more than 60 degrees between frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import _package_file, run_cli

from engine.angle_limits import enforce_limits


def test_an_impossible_ankle_is_dropped_and_refilled() -> None:
    t = np.arange(60, dtype=np.float64)
    flex = 10 * np.sin(t / 10)
    flex[20:26] = [60, 90, 110, 100, -3, 5]  # a foot frame flipped by the 2D, then back
    knee = 40 + 20 * np.sin(t / 8)
    angles = {"ankle_l": {"ankle_l_flex_deg": flex.copy(), "ankle_l_abd_deg": np.full(60, -5.0),
                          "ankle_l_rot_deg": np.full(60, 3.0)},
              "knee_l": {"knee_l_flex_deg": knee.copy()}}
    out, dropped = enforce_limits(angles, max_gap=10)
    assert list(dropped) == ["ankle_l"]
    assert np.flatnonzero(dropped["ankle_l"]).tolist() == [20, 21, 22, 23]
    got = out["ankle_l"]["ankle_l_flex_deg"]
    assert np.isfinite(got).all() and np.abs(np.diff(got)).max() < 15
    assert np.array_equal(got[:20], flex[:20]) and np.array_equal(got[24:], flex[24:])
    assert np.array_equal(out["knee_l"]["knee_l_flex_deg"], knee)  # within its limits: untouched
    # Beyond --max-gap the joint stays unknown rather than invented.
    flex2 = flex.copy()
    flex2[10:40] = 100
    out2, _ = enforce_limits({"ankle_l": {"ankle_l_flex_deg": flex2}}, max_gap=10)
    assert np.isnan(out2["ankle_l"]["ankle_l_flex_deg"][10:40]).all()


@pytest.mark.engine_run
def test_the_demo_angles_never_jump_by_60_degrees(tmp_path: Path) -> None:
    """cam04 is the view whose 2D flips the left foot at 0.6-0.7 s (ankle flexion 114 deg, then a
    108 deg jump before the limits)."""
    video = _package_file("Pose2Sim", "Demo_SinglePerson", "videos", "cam04.mp4")
    proc = run_cli("run", video, "--height", "1.72", "--out", tmp_path, "--quiet", "--no-plots",
                   timeout=300)
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "cam04"
    record = json.loads((folder / "run.json").read_text())
    assert record["biomechanics"]["implausible_angle_frames"].get("ankle_l", 0) > 0
    for csv in sorted((folder / "joint_angles").glob("*.csv")):
        d = pd.read_csv(csv).drop(columns="time_s")
        jump = d.diff().abs().max().max()
        assert jump < 60, (csv.name, jump)
