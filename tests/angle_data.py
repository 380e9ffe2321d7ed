"""Synthetic ISB angle series for the figure tests: every group of engine.isb_angles with its own
components (plane, elevation and rotation for the humerothoracic ones), as biomech hands them on."""

from __future__ import annotations

import numpy as np

from engine.isb_angles import ALL_GROUPS, COMPONENTS, HT_COMPONENTS, HT_GROUPS


def synthetic_angles(t: np.ndarray, amplitude: float = 30.0, offset: float = 0.0, rate: float = 2.0,
                     spread: float = 0.0) -> dict[str, dict[str, np.ndarray]]:
    """{group: {column: (T,) degrees}}: sines of `rate` rad/s, phase-shifted per group and
    component, around `offset` plus `spread` per component."""
    out = {}
    for k, group in enumerate(ALL_GROUPS):
        comps = HT_COMPONENTS if group in HT_GROUPS else COMPONENTS
        out[group] = {f"{group}_{c}_deg": amplitude * np.sin(rate * t + k + j) + offset + spread * j
                      for j, c in enumerate(comps)}
    return out
