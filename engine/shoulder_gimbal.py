"""Where the Z-X-Y shoulder angles are unreliable: near gimbal lock. As the abduction nears ±90°,
flexion and rotation turn about one axis and swing by 100° and more (cam01's raised left arm);
past GIMBAL_DEG, 1/cos makes their errors three times as large. ISB's Y-X-Y humerothoracic angles
are the ones to read there (engine/isb_angles.py). The figures hatch these spans and run.json
lists them. Kept apart from isb_angles so that the figures' process need not import scipy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

GIMBAL_DEG = 70.0
SPOILED = ("flex", "rot")  # the shoulder's components that are unreliable there


def near_gimbal_lock(angles: Mapping[str, Mapping[str, np.ndarray]], group: str) -> np.ndarray | None:
    """(T,) True where a shoulder group's |abduction| passes GIMBAL_DEG (unknown frames: False);
    None for every other group."""
    if not group.startswith("shoulder_") or group not in angles:
        return None
    return np.abs(np.nan_to_num(angles[group][f"{group}_abd_deg"])) > GIMBAL_DEG
