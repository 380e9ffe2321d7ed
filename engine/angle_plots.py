"""PNG plots of joint angles over time: one panel per group (`<stem>_<group>.png`) and all of them on
one grid (`<stem>_all_joint_angles.png`).

Drawn with OpenCV rather than matplotlib: matplotlib needs ~40 ms to lay out each Axes on these
machines, so 12 panels cost ~0.5 s — more than the rest of the biomechanics stage together and
over the stage's 10 % budget on a short clip — where OpenCV draws all of them in ~20 ms.
Plots are a quick look; the numbers are in the CSV and MOT files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

# BGR colours: flexion blue, abduction red, rotation green (matplotlib's C0, C3, C2), then others.
_COMPONENT = {"flex": ((180, 119, 31), "flexion"), "abd": ((40, 39, 214), "abduction"),
              "rot": ((44, 160, 44), "rotation")}
_CYCLE = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148))
_W, _H = 480, 270  # one panel, pixels
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 12, 26, 24
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_NCOLS = 3
_HEADER = 34


def nice_ticks(lo: float, hi: float, max_ticks: int = 6) -> np.ndarray:
    """Round tick values covering [lo, hi]: steps of 1, 2, 2.5 or 5 × 10^k."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = -1.0, 1.0
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    raw = (hi - lo) / max(max_ticks - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return np.arange(math.floor(lo / step) * step, hi + 0.5 * step, step)


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-9 else "0"


def _series_style(k: int, name: str) -> tuple[tuple[int, int, int], str]:
    """`{joint}_{comp}_deg` columns get their component's colour and name; others keep theirs."""
    parts = name.rsplit("_", 2)
    if len(parts) == 3 and parts[-1] == "deg" and parts[-2] in _COMPONENT:
        return _COMPONENT[parts[-2]]
    return _CYCLE[k % len(_CYCLE)], name


def render_panel(time_s: np.ndarray, cols: Mapping[str, np.ndarray], title: str) -> np.ndarray:
    """One panel (H, W, 3) BGR: the curves over time with axes, grid, ticks, title and legend."""
    img = np.full((_H, _W, 3), 255, np.uint8)
    x0, x1, y0, y1 = _LEFT, _W - _RIGHT, _TOP, _H - _BOTTOM
    t = np.asarray(time_s, float)
    values = [np.asarray(v, float) for v in cols.values()]
    finite = np.concatenate([v[np.isfinite(v)] for v in values] + [np.zeros(0)])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    yt = nice_ticks(lo, hi + 0.08 * len(values) * max(hi - lo, 1.0))  # headroom for the legend
    xt = nice_ticks(float(t[0]), float(t[-1])) if len(t) > 1 else np.array([0.0])
    ylo, yhi = float(yt[0]), float(yt[-1])
    xlo, xhi = float(t[0]), float(t[-1]) if len(t) > 1 and t[-1] > t[0] else float(t[0]) + 1.0

    def px(tt: np.ndarray, vv: np.ndarray) -> np.ndarray:
        u = x0 + (tt - xlo) / (xhi - xlo) * (x1 - x0)
        w = y1 - (vv - ylo) / (yhi - ylo) * (y1 - y0)
        return np.stack([u, w], axis=-1)

    for v in yt:
        yy = int(round(px(np.array(xlo), np.array(v))[1]))
        cv2.line(img, (x0, yy), (x1, yy), (150, 150, 150) if v == 0 else (232, 232, 232), 1)
        cv2.putText(img, _label(v), (4, yy + 4), _FONT, 0.36, (60, 60, 60), 1, cv2.LINE_AA)
    for v in xt:
        if xlo - 1e-9 <= v <= xhi + 1e-9:
            xx = int(round(px(np.array(v), np.array(ylo))[0]))
            cv2.line(img, (xx, y0), (xx, y1), (232, 232, 232), 1)
            cv2.putText(img, _label(v), (xx - 8, y1 + 15), _FONT, 0.36, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.rectangle(img, (x0, y0), (x1, y1), (90, 90, 90), 1)
    styles = [_series_style(k, name) for k, name in enumerate(cols)]
    for (colour, _), v in zip(styles, values):
        ok = np.isfinite(v)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
        runs = [px(t[a:b], v[a:b]) for a, b in zip(edges[::2], edges[1::2])]
        cv2.polylines(img, [np.round(r * 16).astype(np.int32) for r in runs], False, colour, 2,
                      cv2.LINE_AA, shift=4)
    # Legend on a white box, top right inside the axes, one entry per series.
    tw = max(cv2.getTextSize(label, _FONT, 0.36, 1)[0][0] for _, label in styles)
    lx = x1 - 10 - tw - 22
    cv2.rectangle(img, (lx - 5, y0 + 3), (x1 - 3, y0 + 8 + 14 * len(styles)), (255, 255, 255), -1)
    cv2.rectangle(img, (lx - 5, y0 + 3), (x1 - 3, y0 + 8 + 14 * len(styles)), (200, 200, 200), 1)
    for k, (colour, label) in enumerate(styles):
        ly = y0 + 16 + 14 * k
        cv2.line(img, (lx, ly - 4), (lx + 16, ly - 4), colour, 2, cv2.LINE_AA)
        cv2.putText(img, label, (lx + 20, ly), _FONT, 0.36, (40, 40, 40), 1, cv2.LINE_AA)
    head = f"{title}   (deg vs time, s)"
    (tw, _), _ = cv2.getTextSize(head, _FONT, 0.45, 1)
    cv2.putText(img, head, ((x0 + x1 - tw) // 2, 17), _FONT, 0.45, (20, 20, 20), 1, cv2.LINE_AA)
    return img


def render_grid(panels: Sequence[np.ndarray], title: str, ncols: int = _NCOLS) -> np.ndarray:
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    img = np.full((_HEADER + nrows * _H, ncols * _W, 3), 255, np.uint8)
    for k, p in enumerate(panels):
        r, c = divmod(k, ncols)
        img[_HEADER + r * _H:_HEADER + (r + 1) * _H, c * _W:(c + 1) * _W] = p
    (tw, _), _ = cv2.getTextSize(title, _FONT, 0.6, 1)
    cv2.putText(img, title, ((img.shape[1] - tw) // 2, 23), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def _write_png(path: Path, img: np.ndarray) -> None:
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")


def plot_angles(folder: Path, stem: str, time_s: np.ndarray,
                groups: Mapping[str, Mapping[str, np.ndarray]], title: str) -> dict[str, Path]:
    """Write `<stem>_<group>.png` per group and `<stem>_all_joint_angles.png` into `folder`;
    returns {group or "all": path}."""
    out: dict[str, Path] = {}
    panels = []
    for group, cols in groups.items():
        panel = render_panel(time_s, cols, group.replace("_", " "))
        out[group] = folder / f"{stem}_{group}.png"
        _write_png(out[group], panel)
        panels.append(panel)
    out["all"] = folder / f"{stem}_all_joint_angles.png"
    _write_png(out["all"], render_grid(panels, title))
    return out


def plot_comparison(path: Path, time_s: np.ndarray, panels: Mapping[str, Mapping[str, np.ndarray]],
                    title: str) -> None:
    """One grid PNG of labelled curves (e.g. OpenSim IK against the ISB angles)."""
    _write_png(path, render_grid([render_panel(time_s, c, n.replace("_", " ")) for n, c in panels.items()],
                                 title, ncols=2))
