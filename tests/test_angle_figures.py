"""What the joint-angle figures say (engine/angle_plots.py), read from their SVG, whose text stays
text: the legend names the shading of uncertain spans, and the hatching of the shoulder's Z-X-Y
angles near gimbal lock, only where a figure has some."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from engine import angle_plots
from engine.isb_angles import ALL_GROUPS, COMPONENTS, HT_COMPONENTS, HT_GROUPS

SHADING = "uncertain (quality report)"
GIMBAL = "near gimbal lock"


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


def test_the_shoulder_near_gimbal_lock_is_hatched_and_named(tmp_path: Path) -> None:
    t = np.arange(90) / 30.0
    angles = {g: {f"{g}_{c}_deg": 30 * np.sin(2 * t + k) for k, c in enumerate(("flex", "abd", "rot"))}
              for g in ALL_GROUPS if not g.startswith("humerothoracic")}
    angles["shoulder_l"]["shoulder_l_abd_deg"] = np.where(t > 2.0, 85.0, 40.0)  # the arm raised sideways
    paths = angle_plots.plot_joints(tmp_path, "clip", t, angles, "clip", joints=["hip", "shoulder"], svg=True)
    svg = {j: p.with_suffix(".svg").read_text() for j, p in paths.items()}
    assert f"{GIMBAL} (|abduction| &gt; {angle_plots.GIMBAL_DEG:g}°)" in svg["shoulder"]
    assert GIMBAL not in svg["hip"]
    angles["shoulder_l"]["shoulder_l_abd_deg"] = np.full(len(t), 60.0)  # raised, but not that far
    paths = angle_plots.plot_joints(tmp_path, "clip", t, angles, "clip", joints=["shoulder"], svg=True)
    assert GIMBAL not in paths["shoulder"].with_suffix(".svg").read_text()


def test_joint_figures_drawn_on_the_warmed_up_one_are_the_same_pixels_as_new_ones(tmp_path: Path) -> None:
    """warm_up draws a joint figure with its own data for plot_joints to reuse its axes and
    ticks: nothing of that data, nor of its limits (it lies within ±1, these far off), may show."""
    t = np.arange(100) / 30.0
    angles = {g: {f"{g}_{c}_deg": 5 * np.sin(1.5 * t + k) + 60 + 10 * k
                  for k, c in enumerate(HT_COMPONENTS if g in HT_GROUPS else COMPONENTS)}
              for g in ALL_GROUPS}
    shade = {"knee": {"r": t < 0.5, "l": np.zeros(len(t), bool)}}
    made = {}
    for kind in ("new", "warm"):
        angle_plots._ready.clear()
        if kind == "warm":
            angle_plots.warm_up()
            assert len(angle_plots._ready) == 1
        (tmp_path / kind).mkdir()
        paths = angle_plots.plot_joints(tmp_path / kind, "clip", t, angles, "clip", uncertain=shade)
        assert not angle_plots._ready  # the warmed figure was taken
        made[kind] = {j: cv2.imread(str(p)) for j, p in paths.items()}
    assert list(made["new"]) == list(made["warm"]) == list(angle_plots.JOINTS)
    for joint, image in made["new"].items():
        assert image.std() > 10, joint
        assert np.array_equal(image, made["warm"][joint]), joint
