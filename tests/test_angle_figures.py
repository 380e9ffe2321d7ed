"""What the joint-angle figures say (engine/angle_plots.py), read from their SVG, whose text stays
text: the legend names the shading of uncertain spans, and the hatching of the shoulder's Z-X-Y
angles near gimbal lock, only where a figure has some."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
from angle_data import synthetic_angles

from engine import angle_plots

SHADING = "uncertain (quality report)"
GIMBAL = "near gimbal lock"


def test_the_shading_is_in_the_legend_only_where_spans_are_shaded(tmp_path: Path) -> None:
    t = np.arange(90) / 30.0
    angles = synthetic_angles(t)
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
    angles = synthetic_angles(t)
    angles["shoulder_l"]["shoulder_l_abd_deg"] = np.where(t > 2.0, 85.0, 40.0)  # the arm raised sideways
    paths = angle_plots.plot_joints(tmp_path, "clip", t, angles, "clip", joints=["hip", "shoulder"], svg=True)
    svg = {j: p.with_suffix(".svg").read_text() for j, p in paths.items()}
    assert f"{GIMBAL} (|abduction| &gt; {angle_plots.GIMBAL_DEG:g}°)" in svg["shoulder"]
    assert GIMBAL not in svg["hip"]
    angles["shoulder_l"]["shoulder_l_abd_deg"] = np.full(len(t), 60.0)  # raised, but not that far
    paths = angle_plots.plot_joints(tmp_path, "clip", t, angles, "clip", joints=["shoulder"], svg=True)
    assert GIMBAL not in paths["shoulder"].with_suffix(".svg").read_text()


def _draw_all(folder: Path, t: np.ndarray, angles: dict, shade: dict, text: str) -> dict[str, object]:
    """Every figure a run draws, read back: PNG pixels, and the report's PDF without its date."""
    folder.mkdir()
    paths = angle_plots.plot_joints(folder, "clip", t, angles, f"clip {text}", uncertain=shade)
    paths["all"] = angle_plots.plot_overview(folder, "clip", t, angles, f"clip {text}", uncertain=shade)
    made: dict[str, object] = {j: cv2.imread(str(p)) for j, p in paths.items()}
    angle_plots.write_report(folder / "report.pdf", "clip", t, angles, {"subject": text},
                             {"quality": text}, uncertain=shade)
    made["report"] = re.sub(rb"/CreationDate \([^)]*\)", b"", (folder / "report.pdf").read_bytes())
    return made


def test_joint_figures_drawn_on_the_warmed_up_one_are_the_same_pixels_as_new_ones(tmp_path: Path) -> None:
    """warm_up draws a joint figure with its own data for plot_joints to reuse its axes and
    ticks: nothing of that data, nor of its limits (it lies within ±1, these far off), may show."""
    t = np.arange(100) / 30.0
    angles = synthetic_angles(t, amplitude=5.0, offset=60.0, rate=1.5, spread=10.0)
    shade = {"knee": {"r": t < 0.5, "l": np.zeros(len(t), bool)}}
    made = {}
    for kind in ("new", "warm"):
        angle_plots._kept.clear()
        if kind == "warm":
            angle_plots.warm_up()
            assert list(angle_plots._kept) == [("joints", 3)]
            warmed = angle_plots._kept[("joints", 3)]
        (tmp_path / kind).mkdir()
        paths = angle_plots.plot_joints(tmp_path / kind, "clip", t, angles, "clip", uncertain=shade)
        if kind == "warm":
            assert angle_plots._kept[("joints", 3)][0] is warmed[0]  # drawn on, and kept again
        made[kind] = {j: cv2.imread(str(p)) for j, p in paths.items()}
    assert list(made["new"]) == list(made["warm"]) == list(angle_plots.JOINTS)
    for joint, image in made["new"].items():
        assert image.std() > 10, joint
        assert np.array_equal(image, made["warm"][joint]), joint


def test_figures_drawn_again_in_one_process_are_the_same_as_new_ones(tmp_path: Path) -> None:
    """A process that draws a second set of figures (a batch worker's next video, a run's next
    person) draws them on the figures it kept: nothing of the first set (its data, limits,
    shading, gimbal hatching, texts, table, legends) may show in the second, pixel for pixel, and
    the report's PDF is the same bytes but for its date; nor its limits on a panel whose next data
    is all NaN."""
    first_t, t = np.arange(40) / 30.0, np.arange(100) / 30.0
    first = synthetic_angles(first_t, amplitude=40.0, offset=-150.0)
    first["shoulder_r"]["shoulder_r_abd_deg"][:] = 85.0  # hatched near gimbal lock
    first_shade = {j: {"r": first_t > 0.7, "l": first_t < 0.2} for j in angle_plots.JOINTS}
    second = synthetic_angles(t, amplitude=5.0, offset=60.0, rate=1.5, spread=10.0)
    for group in ("ankle_r", "ankle_l"):  # a joint never measured: its panels stay empty, as new
        for values in second[group].values():
            values[:] = np.nan
    shade = {"knee": {"r": t < 0.5, "l": np.zeros(len(t), bool)}}

    angle_plots._kept.clear()
    new = _draw_all(tmp_path / "new", t, second, shade, "second")
    angle_plots._kept.clear()
    _draw_all(tmp_path / "first", first_t, first, first_shade, "first, with more lines\nof text")
    kept = dict(angle_plots._kept)
    assert sorted(k[0] for k in kept) == ["joints", "overview", "report"]
    again = _draw_all(tmp_path / "again", t, second, shade, "second")
    assert all(angle_plots._kept[k][0] is v[0] for k, v in kept.items())  # drawn on the kept ones
    assert list(new) == list(again) == [*angle_plots.JOINTS, "all", "report"]
    for name, image in new.items():
        if name != "report":
            assert image.std() > 10, name
            assert np.array_equal(image, again[name]), name
    assert new["report"] == again["report"]
