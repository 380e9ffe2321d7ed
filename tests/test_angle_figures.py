"""What the joint-angle figures say (engine/angle_plots.py), read from their SVG, whose text stays
text: the legend names the shading of uncertain spans only where a figure has some."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import angle_plots
from engine.isb_angles import ALL_GROUPS

SHADING = "uncertain (quality report)"


def test_the_shading_is_in_the_legend_only_where_spans_are_shaded(tmp_path: Path) -> None:
    t = np.arange(90) / 30.0
    angles = {g: {f"{g}_{c}_deg": 30 * np.sin(2 * t + k) for k, c in enumerate(("flex", "abd", "rot"))}
              for g in ALL_GROUPS if not g.startswith("humerothoracic")}
    shade = {"knee": {"r": t < 0.5, "l": np.zeros(len(t), bool)}, "hip": {"r": np.zeros(len(t), bool)}}
    paths = angle_plots.plot_joints(tmp_path, "clip", t, angles, "clip", uncertain=shade,
                                    joints=["hip", "knee"], svg=True)
    svg = {j: p.with_suffix(".svg").read_text() for j, p in paths.items()}
    for joint in ("hip", "knee"):
        assert ">right</text>" in svg[joint] and ">left</text>" in svg[joint]
    assert SHADING in svg["knee"]  # its right side is uncertain in the first half second
    assert SHADING not in svg["hip"]  # nothing shaded: nothing to explain
