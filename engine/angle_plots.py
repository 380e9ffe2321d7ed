"""Joint-angle figures and the one-page report, drawn with matplotlib (its object API and the Agg
and PDF/SVG backends: no pyplot state, so safe beside the add-on's threads).

- `<stem>_<joint>.png` (and `.svg` when asked for): one figure per joint, 1600 x 900 px, a panel
  per component with the right (solid) and the left (dashed) side together, axes labelled with
  units, and the spans where the quality report has that joint's landmarks uncertain (low
  confidence, interpolated, mirrored or missing) shaded in the side's colour.
- `<stem>_all_joint_angles.png`: every joint's flexion-type angle on one grid (an overview).
- `<stem>_report.pdf`: one A4 landscape page: subject and settings, the quality summary, a
  range-of-motion table and the main angle panels.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .shoulder_gimbal import GIMBAL_DEG, SPOILED, near_gimbal_lock

# Joint → its groups (right first) and, per component, the axis label (positive direction first).
JOINTS: dict[str, tuple[str, ...]] = {
    "pelvis": ("pelvis",), "trunk": ("trunk",), "hip": ("hip_r", "hip_l"), "knee": ("knee_r", "knee_l"),
    "ankle": ("ankle_r", "ankle_l"), "shoulder": ("shoulder_r", "shoulder_l"),
    "humerothoracic": ("humerothoracic_r", "humerothoracic_l"), "elbow": ("elbow_r", "elbow_l"),
}
_LABELS = {
    "flex": "flexion (+) / extension (deg)", "abd": "abduction (+) / adduction (deg)",
    "rot": "internal (+) / external rotation (deg)", "plane": "plane of elevation (deg)",
    "elev": "elevation (deg)",
}
_JOINT_LABELS = {
    ("ankle", "flex"): "dorsiflexion (+) / plantarflexion (deg)",
    ("ankle", "abd"): "eversion (+) / inversion (deg)",
    ("pelvis", "flex"): "anterior (+) / posterior tilt (deg)",
    ("pelvis", "abd"): "obliquity to the right (+) (deg)",
    ("pelvis", "rot"): "rotation to the left (+) (deg)",
    ("trunk", "flex"): "forward (+) / backward flexion (deg)",
    ("trunk", "abd"): "bending to the right (+) (deg)",
    ("trunk", "rot"): "rotation to the left (+) (deg)",
}
_MAIN = {"humerothoracic": "elev"}  # the component the overview and the report show (else flexion)
_SIDE = {"r": ("right", "#d62728", "-"), "l": ("left", "#1f77b4", "--"), "": ("", "#2c2c2c", "-")}
_PX = (1600, 900)
_DPI = 100


def _side(group: str) -> str:
    return group[-1] if group[-2:] in ("_r", "_l") else ""


def _component(column: str, group: str) -> str:
    return column[len(group) + 1:].removesuffix("_deg")


def label(joint: str, component: str) -> str:
    return _JOINT_LABELS.get((joint, component), _LABELS[component])


def _spans(mask: np.ndarray, time_s: np.ndarray) -> list[tuple[float, float]]:
    """[(start, end)] seconds of the runs of True in mask, each widened by half a frame."""
    if mask is None or not mask.any():
        return []
    half = 0.5 * (float(np.median(np.diff(time_s))) if len(time_s) > 1 else 0.0)
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(int), 0]))
    return [(time_s[a] - half, time_s[b - 1] + half) for a, b in zip(edges[::2], edges[1::2])]


def _save(fig, path: Path, **rc) -> None:
    """fig.savefig, quietly: a video named in a script the font lacks (CJK, say) draws its title
    with boxes instead of printing a warning per glyph beside the progress bar."""
    import warnings

    from matplotlib import rc_context

    with warnings.catch_warnings(), rc_context(rc):
        warnings.filterwarnings("ignore", r"Glyph \d+ .* missing from font", UserWarning)
        # PNG at zlib level 1: a third of a figure's time went into level 6, for 15 % smaller files
        fig.savefig(path, **({"pil_kwargs": {"compress_level": 1}} if path.suffix == ".png" else {}))


def _new_figure(size_px: tuple[int, int] = _PX):
    """A figure with fixed margins (matplotlib's constrained layout doubles the time a figure
    takes to save: ~0.2 s per figure here)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size_px[0] / _DPI, size_px[1] / _DPI), dpi=_DPI)
    fig.subplots_adjust(left=0.07, right=0.985, bottom=0.07, top=0.93, hspace=0.12, wspace=0.25)
    return fig


def _sparse_ticks(axes):
    """`axes` with at most 6 ticks on each axis (MaxNLocator, nice steps): matplotlib's default
    of up to 10-15 crowded a panel's labels (2.5-degree steps) and its tick objects were a fifth
    of the figures' CPU time (README, Benchmarks: old and new engine in alternating runs)."""
    from matplotlib.ticker import MaxNLocator

    for ax in np.ravel(axes):
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    return axes


# Figures drawn before, one per layout, kept to be drawn on again: making a figure's axes and
# their ticks is the costliest part of its first draw, so a process that draws several sets of
# figures (a batch worker; each person of a run after the first, where no helper draws them)
# makes each layout once. A figure is taken out while it is drawn on, so two threads never share
# one; one that failed is dropped.
_kept: dict[tuple, tuple] = {}
_kept_lock = threading.Lock()


def _take(key: tuple):
    with _kept_lock:
        return _kept.pop(key, None)


def _keep(key: tuple, made: tuple) -> None:
    with _kept_lock:
        _kept[key] = made


def _joint_figure(panels: int):
    """A figure of `panels` stacked panels: a kept one if there is one, else a new one."""
    made = _take(("joints", panels))
    if made is not None:
        return made
    fig = _new_figure()
    return fig, _sparse_ticks(fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0])


def warm_up() -> None:
    """Import matplotlib and draw a joint figure to PNG and a small one to PDF, in memory:
    the backends, the font cache, the fonts and that figure's ticks are made before the real
    figures need them (in a thread or process beside pose detection). Nothing to do where a
    joint figure is kept from earlier figures."""
    import io

    with _kept_lock:
        if ("joints", 3) in _kept:
            return

    fig = _new_figure((160, 90))
    ax = fig.subplots()
    ax.plot([0.0, 1.0], [0.0, 1.0])
    ax.set_xlabel("time (s)")
    fig.suptitle("warm-up")
    fig.savefig(io.BytesIO(), format="pdf")
    fig, axes = _joint_figure(3)
    t = np.linspace(0.0, 1.0, 60)
    groups = JOINTS["knee"]
    _draw_joint(axes, "knee", t, {g: {f"{g}_{c}_deg": np.sin(3 * t) for c in ("flex", "abd", "rot")}
                                  for g in groups}, {"r": t > 0.5})
    fig.suptitle("warm-up")
    fig.savefig(io.BytesIO(), format="png")
    _keep(("joints", 3), (fig, axes))


def _draw_joint(axes: Sequence, joint: str, time_s: np.ndarray,
                angles: Mapping[str, Mapping[str, np.ndarray]],
                uncertain: Mapping[str, np.ndarray], legend: bool = True,
                comps: Sequence[str] | None = None) -> None:
    groups = [g for g in JOINTS[joint] if g in angles]
    comps = comps or [_component(c, groups[0]) for c in angles[groups[0]]]
    for ax, comp in zip(axes, comps):
        for group in groups:
            side = _side(group)
            name, colour, style = _SIDE[side]
            values = angles[group][f"{group}_{comp}_deg"]
            ax.plot(time_s, values, style, color=colour, lw=1.6, label=name or joint)
            for a, b in _spans(uncertain.get(side), time_s):
                ax.axvspan(a, b, color=colour, alpha=0.12, lw=0, gid="uncertain")
            near = near_gimbal_lock(angles, group) if comp in SPOILED else None
            if near is not None:  # hatched: read the humerothoracic angles there
                for a, b in _spans(near, time_s):
                    ax.axvspan(a, b, facecolor="none", edgecolor=colour, hatch="//", lw=0, alpha=0.35,
                               gid="gimbal")
        ax.set_ylabel(label(joint, comp))
        ax.grid(True, alpha=0.3)
        if len(time_s) > 1:
            ax.set_xlim(time_s[0], time_s[-1])
    axes[-1].set_xlabel("time (s)")
    if legend:  # above the panel, right-aligned: inside, it hid the curves' ends
        handles = _legend_handles(axes[0], axes)
        axes[0].legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0),
                       ncols=3 if len(handles) <= 3 else 2, frameon=False, fontsize="small",
                       borderaxespad=0.2)


def _sided(grid: Sequence, joints: Sequence[str]):
    """The first panel of a grid that has a right and a left side (its legend names both)."""
    return next((ax for ax, j in zip(grid, joints) if len(JOINTS[j]) > 1), grid[0])


def _legend_handles(ax, marked: Sequence) -> list:
    """The sides drawn in `ax`, and each kind of span (uncertain, near gimbal lock) that any of
    `marked` has."""
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    kinds = {patch.get_gid() for a in marked for patch in a.patches}
    if "uncertain" in kinds:
        handles.append(Patch(color="grey", alpha=0.25, label="uncertain (quality report)"))
    if "gimbal" in kinds:
        handles.append(Patch(facecolor="none", edgecolor="dimgrey", hatch="///", lw=0,
                             label=f"near gimbal lock (|abduction| > {GIMBAL_DEG:g}°): "
                                   "read humerothoracic"))
    return handles


def png_name(stem: str, joint: str) -> str:
    """A joint figure's PNG file name; joint "all": the overview's."""
    return f"{stem}_all_joint_angles.png" if joint == "all" else f"{stem}_{joint}.png"


def _clear(axes: Sequence, fig=None) -> None:
    """Empty axes (and `fig`'s own legends) for the next joint or the next set of figures, keeping
    their tick objects: making ticks is most of a figure's first draw, so one figure redrawn per
    joint takes about half the time of one each."""
    for legend in list(fig.legends if fig is not None else ()):
        legend.remove()
    for ax in axes:
        for artist in [*ax.lines, *ax.patches, *ax.texts, *ax.tables]:
            artist.remove()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        ax.relim()
        # A new axes' limits, autoscaled: a panel whose next data is all NaN (or 1 frame, which
        # sets no x limits) then looks as on a new figure, not as the last data left it.
        ax.set_xlim(0.0, 1.0, auto=True)
        ax.set_ylim(0.0, 1.0, auto=True)


def plot_joints(folder: Path, stem: str, time_s: np.ndarray,
                angles: Mapping[str, Mapping[str, np.ndarray]], title: str,
                uncertain: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                joints: Sequence[str] | None = None, svg: bool = False) -> dict[str, Path]:
    """Write `<stem>_<joint>.png` (and, for `svg`, `.svg`) for each of `joints` (default all) that
    has angles. An SVG took about twice a PNG's time (0.085 s a joint), hence asked for.

    `uncertain`: {joint: {side ("r", "l" or ""): (T,) bool}}. Returns {joint: png path}."""
    uncertain = uncertain or {}
    out: dict[str, Path] = {}
    fig = axes = None
    for joint in joints or JOINTS:
        if JOINTS[joint][0] not in angles:
            continue
        if fig is None:
            fig, axes = _joint_figure(len(angles[JOINTS[joint][0]]))
        _clear(axes)
        _draw_joint(axes, joint, time_s, angles, uncertain.get(joint, {}))
        fig.suptitle(f"{title}: {joint}")
        out[joint] = folder / png_name(stem, joint)
        _save(fig, out[joint])
        if svg:
            _save(fig, out[joint].with_suffix(".svg"), **{"svg.fonttype": "none"})  # text stays text
    if fig is not None:
        _keep(("joints", len(axes)), (fig, axes))
    return out


def plot_overview(folder: Path, stem: str, time_s: np.ndarray,
                  angles: Mapping[str, Mapping[str, np.ndarray]], title: str,
                  uncertain: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> Path:
    """Write `<stem>_all_joint_angles.png`: every joint's main angle on one grid."""
    uncertain = uncertain or {}
    joints = [j for j, g in JOINTS.items() if g[0] in angles]
    key = ("overview", tuple(joints))
    made = _take(key)
    if made is None:
        fig = _new_figure((1800, 1200))
        fig.subplots_adjust(hspace=0.3)
        grid = _sparse_ticks(fig.subplots(3, 3, sharex=True, squeeze=False).ravel())
    else:
        fig, grid = made
        _clear(grid, fig)
    for k, (ax, joint) in enumerate(zip(grid, joints)):
        _draw_joint([ax], joint, time_s, angles, uncertain.get(joint, {}), legend=False,
                    comps=[_MAIN.get(joint, "flex")])
        # A fixed place: placing a title measures every sharing axis's y ticks (0.1+ s a figure).
        ax.set_title(joint, y=1.0, pad=6.0)
        if k < len(joints) - 3:  # the shared time axis is labelled once, under each column
            ax.set_xlabel("")
        else:
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in grid[len(joints):]:
        ax.set_visible(False)
    # The legend in the grid's first empty cell: 8 joints on 3 x 3 leave the ninth free.
    if joints:
        cell = grid[len(joints)].get_position()
        fig.legend(handles=_legend_handles(_sided(grid, joints), grid), loc="center", fontsize="medium",
                   frameon=False, bbox_to_anchor=(cell.x0, cell.y0, cell.width, cell.height))
    fig.suptitle(title)
    path = folder / png_name(stem, "all")
    _save(fig, path)
    _keep(key, (fig, grid))
    return path


def range_of_motion(angles: Mapping[str, Mapping[str, np.ndarray]]) -> list[tuple[str, float, float, float]]:
    """(column, min, max, range) in degrees of every column with data."""
    rows = []
    for cols in angles.values():
        for name, v in cols.items():
            if np.isfinite(v).any():
                lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
                rows.append((name.removesuffix("_deg"), lo, hi, hi - lo))
    return rows


def write_report(path: Path, stem: str, time_s: np.ndarray, angles: Mapping[str, Mapping[str, np.ndarray]],
                 subject: Mapping[str, str], quality: Mapping[str, str],
                 uncertain: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> None:
    """The one-page PDF: subject and settings, quality summary, range of motion, angle panels."""
    uncertain = uncertain or {}
    joints = [j for j in ("hip", "knee", "ankle", "shoulder", "elbow", "trunk") if JOINTS[j][0] in angles]
    key = ("report", tuple(joints))
    made = _take(key)
    if made is None:
        made = _report_layout()
    else:
        _clear([made[1], made[2], *made[3]], made[0])
    fig, text_ax, table_ax, grid = made
    text = [f"HumanPose3D report: {stem}", ""] + [f"{k}: {v}" for k, v in subject.items()] + \
        ["", "Quality"] + [f"{k}: {v}" for k, v in quality.items()]
    text_ax.text(0.0, 1.0, "\n".join(text), va="top", ha="left", fontsize=7.5, family="monospace",
                 transform=text_ax.transAxes)
    main = [r for r in range_of_motion(angles) if r[0].endswith(("_flex", "_elev"))]
    table = table_ax.table(cellText=[[n, f"{lo:.1f}", f"{hi:.1f}", f"{rng:.1f}"] for n, lo, hi, rng in main],
                           colLabels=["angle", "min (deg)", "max (deg)", "range (deg)"], loc="upper center",
                           cellLoc="right", colLoc="right")
    table.auto_set_font_size(False)
    table.set_fontsize(6.5)
    table.scale(1.0, 0.95)
    for k, (ax, joint) in enumerate(zip(grid, joints)):
        _draw_joint([ax], joint, time_s, angles, uncertain.get(joint, {}), legend=False,
                    comps=[_MAIN.get(joint, "flex")])
        ax.set_title(joint, fontsize=9, y=1.0, pad=6.0)  # a fixed place, as in plot_overview
        ax.yaxis.label.set_fontsize(7)
        if k < 3:  # the shared time axis is labelled once, under the bottom row
            ax.set_xlabel("")
    for ax in grid[len(joints):]:
        ax.set_visible(False)
    if joints:  # one legend for the panels, in the band between them and the table
        handles = _legend_handles(_sided(grid, joints), grid)
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.055, 0.555), ncols=len(handles),
                   fontsize="small", frameon=False)
    _save(fig, path)
    _keep(key, made)


def _report_layout() -> tuple:
    """The report's empty page: (figure, text axes, table axes, 2 x 3 panels)."""
    # Fixed places, not constrained layout: that layout alone took ~0.3 s, a fifth of the report.
    fig = _new_figure((1169, 827))  # A4 landscape at 100 dpi
    text_ax = fig.add_axes((0.01, 0.6, 0.36, 0.39))
    text_ax.axis("off")
    table_ax = fig.add_axes((0.39, 0.6, 0.6, 0.36))
    table_ax.axis("off")
    table_ax.set_title("Range of motion (flexion and elevation angles)", fontsize=9, y=1.0, pad=6.0)
    grid = _sparse_ticks(fig.add_gridspec(2, 3, left=0.06, right=0.99, bottom=0.06, top=0.53, hspace=0.3,
                                          wspace=0.22).subplots(sharex=True, squeeze=False).ravel())
    return fig, text_ax, table_ax, grid


def plot_comparison(path: Path, time_s: np.ndarray, panels: Mapping[str, Mapping[str, np.ndarray]],
                    title: str) -> None:
    """One figure of labelled curves per panel (e.g. OpenSim IK against the ISB angles)."""
    fig = _new_figure()
    axes = _sparse_ticks(fig.subplots((len(panels) + 1) // 2, 2, squeeze=False).ravel())
    for ax, (name, cols) in zip(axes, panels.items()):
        for label_, values in cols.items():
            ax.plot(time_s, values, lw=1.5, label=label_)
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("angle (deg)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title)
    _save(fig, path)


def draw(jobs: Sequence[tuple[str, dict]]) -> None:
    """Run (name, kwargs) jobs, name one of "joints", "overview", "report": the form in which
    engine/figure_worker.py hands a share of the figures to its helper process."""
    kinds = {"joints": plot_joints, "overview": plot_overview, "report": write_report}
    for name, kwargs in jobs:
        kinds[name](**kwargs)
