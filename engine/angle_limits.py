"""Anatomical limits on joint angles. A sample far outside what a joint can do is not the joint's
motion but a tracking error upstream (in one camera's 2D a heel and a toe can trade places while
the legs cross: the foot frame then turns by 100 degrees in a frame); it is dropped, filled across
gaps up to --max-gap with a shape-preserving cubic like the markers, and reported as uncertain.

The limits are generous (beyond the normal ranges of motion in the AAOS tables: ankle 20 deg
dorsiflexion / 50 plantarflexion, knee 0-140, elbow 0-150), so that only impossible poses go.
"""

from __future__ import annotations

import numpy as np

from .cleaning import fill_gaps

# (joint, angle) -> (low, high) degrees, in the signs of isb_angles (flex: ankle dorsiflexion +).
LIMITS: dict[tuple[str, str], tuple[float, float]] = {
    ("ankle", "flex"): (-70.0, 45.0),
    ("knee", "flex"): (-30.0, 170.0),
    ("elbow", "flex"): (-30.0, 170.0),
}


def enforce_limits(angles: dict[str, dict[str, np.ndarray]], max_gap: int
                   ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Angles with every sample of a joint dropped (all its columns) where one of its angles is
    beyond LIMITS, and refilled across gaps of at most `max_gap` frames; and {group: (T,) mask of
    the dropped frames} for the groups that had any."""
    out = dict(angles)
    dropped: dict[str, np.ndarray] = {}
    for group, cols in angles.items():
        joint = group.rsplit("_", 1)[0]
        bad = np.zeros(len(next(iter(cols.values()))), bool)
        for (j, angle), (lo, hi) in LIMITS.items():
            if j != joint:
                continue
            for name, v in cols.items():
                if name.split("_")[-2] == angle:
                    with np.errstate(invalid="ignore"):
                        bad |= (v < lo) | (v > hi)
        if not bad.any():
            continue
        names = list(cols)
        stack = np.stack([cols[n] for n in names], axis=-1).astype(np.float64)  # (T, K)
        stack[bad] = np.nan
        filled, _ = fill_gaps(stack[:, None, :], max_gap)
        out[group] = {n: filled[:, 0, k] for k, n in enumerate(names)}
        dropped[group] = bad
    return out, dropped
