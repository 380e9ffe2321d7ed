"""PNG plots of joint angles over time: `<stem>_all_joint_angles.png` with one panel per group, and
one PNG per group cut from that same figure.

A figure is rendered once and each group's panel is cropped out of the pixels: matplotlib spends
~60 ms laying out every Axes, so drawing 12 + 12 of them would cost more than the rest of the
biomechanics stage. The object API on the Agg canvas is used (no pyplot state: safe off the main
thread and inside Blender)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

_COLOURS = {"flex": "#1f77b4", "abd": "#d62728", "rot": "#2ca02c"}
_LABELS = {"flex": "flexion", "abd": "abduction", "rot": "rotation"}
_DPI = 80
_PANEL_IN = (4.0, 2.4)  # width, height of one panel, inches
_NCOLS = 3
_HEADER_IN = 0.45  # figure title band


def _draw(ax, time_s: np.ndarray, cols: Mapping[str, np.ndarray], title: str) -> None:
    from matplotlib.ticker import MaxNLocator

    for k, (name, values) in enumerate(cols.items()):
        # `{joint}_{comp}_deg` columns get a fixed colour per component; other names are labels.
        parts = name.rsplit("_", 2)
        comp = parts[-2] if len(parts) == 3 and parts[-1] == "deg" else None
        ax.plot(time_s, values, color=_COLOURS.get(comp, f"C{k}"), lw=1.2, label=_LABELS.get(comp, name))
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_title(f"{title}  (degrees vs time, s)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_locator(MaxNLocator(6))
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(fontsize=7, loc="upper right", frameon=False, ncols=len(cols), handlelength=1.2)


def render_panels(time_s: np.ndarray, panels: Mapping[str, Mapping[str, np.ndarray]], title: str,
                  ncols: int = _NCOLS) -> tuple[np.ndarray, dict[str, tuple[int, int, int, int]]]:
    """Draw every panel on one grid → (RGB image (H, W, 3), {panel: (top, bottom, left, right) px})."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(panels)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    pw, ph = _PANEL_IN
    fig = Figure(figsize=(pw * ncols, ph * nrows + _HEADER_IN), dpi=_DPI)
    canvas = FigureCanvasAgg(fig)
    h_in = ph * nrows + _HEADER_IN
    boxes: dict[str, tuple[int, int, int, int]] = {}
    # Each panel's axes sit inside a fixed cell with margins for the tick labels and title, so the
    # cell is also the crop box of that group's own PNG.
    margin_l, margin_r, margin_b, margin_t = 0.5, 0.1, 0.3, 0.3
    for k, (name, cols) in enumerate(panels.items()):
        r, c = divmod(k, ncols)
        x0, y_top = c * pw, _HEADER_IN + r * ph
        ax = fig.add_axes(((x0 + margin_l) / (pw * ncols), (h_in - y_top - ph + margin_b) / h_in,
                           (pw - margin_l - margin_r) / (pw * ncols), (ph - margin_b - margin_t) / h_in))
        _draw(ax, time_s, cols, name.replace("_", " "))
        boxes[name] = (int(y_top * _DPI), int((y_top + ph) * _DPI), int(x0 * _DPI), int((x0 + pw) * _DPI))
    fig.suptitle(title, fontsize=10, y=1 - 0.12 / h_in, va="top")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy(), boxes


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f"could not write {path}")


def plot_angles(folder: Path, stem: str, time_s: np.ndarray,
                groups: Mapping[str, Mapping[str, np.ndarray]], title: str, per_group: bool = True
                ) -> dict[str, Path]:
    """Write `<stem>_all_joint_angles.png` and (per_group) `<stem>_<group>.png` into `folder`;
    returns {group or "all": path}."""
    img, boxes = render_panels(time_s, groups, title)
    out = {"all": folder / f"{stem}_all_joint_angles.png"}
    _write_png(out["all"], img)
    if per_group:
        for group, (top, bottom, left, right) in boxes.items():
            out[group] = folder / f"{stem}_{group}.png"
            _write_png(out[group], img[top:bottom, left:right])
    return out


def plot_comparison(path: Path, time_s: np.ndarray, panels: Mapping[str, Mapping[str, np.ndarray]],
                    title: str) -> None:
    """One multi-panel PNG of labelled curves (e.g. OpenSim IK against ISB angles)."""
    img, _ = render_panels(time_s, panels, title, ncols=2)
    _write_png(path, img)


def warm_up() -> None:
    """Load the fonts and Agg machinery once (≈0.5 s the first time), e.g. while video decodes."""
    render_panels(np.arange(3.0), {"warm": {"warm_flex_deg": np.zeros(3)}}, "warm")
