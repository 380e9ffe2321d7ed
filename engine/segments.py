"""Anatomical segment frames (ISB axes: X anterior, Y superior/proximal, Z right) from the augmented
marker set, as rotation matrices (frames, 3, 3) whose columns are the segment's X, Y, Z in the lab.

Definitions follow Wu et al. 2002/2005 as closely as the augmented markers allow:
- pelvis: Z from L to R ASIS; X in the ASIS/mid-PSIS plane, pointing forward.
- thigh: Y from the knee epicondyle midpoint to the hip joint centre; Z through the epicondyles.
- shank: Y from the malleolus midpoint to the knee epicondyle midpoint; Z through the malleoli.
- foot: Y normal to the calcaneus/toe/5th-metatarsal plane; X from calcaneus to toe.
- trunk (the thorax of the shoulder angles): Y from the hip joint centres' midpoint to the acromia's
  midpoint (no sternum/T8 markers exist); Z from L to R acromion.
- upper arm: Y from the elbow epicondyle midpoint to the shoulder; Z through the epicondyles.
- forearm: Y from the wrist midpoint to the elbow epicondyle midpoint; Z through the styloids.
In every definition Z is made orthogonal to Y and X = Y × Z, so each frame is right-handed;
"Z points right" holds on both sides, which is why left-side angles get sign flips in isb_angles.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

Markers = Mapping[str, np.ndarray]  # name → (frames, 3)


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


def frame_from_yz(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Right-handed frame with Y along `y` exactly and Z as close to `z` as orthogonality allows."""
    y = _unit(y)
    x = _unit(np.cross(y, z))
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def frame_from_xy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Right-handed frame with Y along `y` exactly and X as close to `x` as orthogonality allows."""
    y = _unit(y)
    z = _unit(np.cross(x, y))
    x = np.cross(y, z)
    return np.stack([x, y, z], axis=-1)


def _mid(m: Markers, a: str, b: str) -> np.ndarray:
    return 0.5 * (m[a] + m[b])


def pelvis(m: Markers) -> np.ndarray:
    z = m["r.ASIS_study"] - m["L.ASIS_study"]
    forward = _mid(m, "r.ASIS_study", "L.ASIS_study") - _mid(m, "r.PSIS_study", "L.PSIS_study")
    z = _unit(z)
    x = _unit(forward - np.sum(forward * z, axis=-1, keepdims=True) * z)
    return np.stack([x, np.cross(z, x), z], axis=-1)


def _lateral(m: Markers, side: str, lateral: str, medial: str) -> np.ndarray:
    """The medio-lateral axis pointing right: lateral − medial on the right, medial − lateral on the left."""
    v = m[lateral] - m[medial]
    return v if side == "r" else -v


def _knee_mid(m: Markers, s: str) -> np.ndarray:
    return _mid(m, f"{s}_knee_study", f"{s}_mknee_study")


def _ankle_mid(m: Markers, s: str) -> np.ndarray:
    return _mid(m, f"{s}_ankle_study", f"{s}_mankle_study")


def _prefix(side: str) -> str:
    return "r" if side == "r" else "L"


def thigh(m: Markers, side: str) -> np.ndarray:
    s = _prefix(side)
    hjc = m["RHJC_study" if side == "r" else "LHJC_study"]
    return frame_from_yz(hjc - _knee_mid(m, s), _lateral(m, side, f"{s}_knee_study", f"{s}_mknee_study"))


def shank(m: Markers, side: str) -> np.ndarray:
    s = _prefix(side)
    return frame_from_yz(_knee_mid(m, s) - _ankle_mid(m, s),
                         _lateral(m, side, f"{s}_ankle_study", f"{s}_mankle_study"))


def foot(m: Markers, side: str) -> np.ndarray:
    s = _prefix(side)
    calc, toe, meta5 = m[f"{s}_calc_study"], m[f"{s}_toe_study"], m[f"{s}_5meta_study"]
    along, lateral = toe - calc, meta5 - calc
    # The 5th metatarsal is lateral: to the right of the long axis on the right foot, left on the left.
    up = np.cross(lateral, along) if side == "r" else np.cross(along, lateral)
    return frame_from_xy(along, up)


def trunk(m: Markers) -> np.ndarray:
    top = _mid(m, "r_shoulder_study", "L_shoulder_study")
    bottom = _mid(m, "RHJC_study", "LHJC_study")
    return frame_from_yz(top - bottom, m["r_shoulder_study"] - m["L_shoulder_study"])


def upper_arm(m: Markers, side: str) -> np.ndarray:
    s = _prefix(side)
    gh = m["RShoulder" if side == "r" else "LShoulder"]
    elbow = _mid(m, f"{s}_lelbow_study", f"{s}_melbow_study")
    return frame_from_yz(gh - elbow, _lateral(m, side, f"{s}_lelbow_study", f"{s}_melbow_study"))


def forearm(m: Markers, side: str) -> np.ndarray:
    s = _prefix(side)
    elbow = _mid(m, f"{s}_lelbow_study", f"{s}_melbow_study")
    wrist = _mid(m, f"{s}_lwrist_study", f"{s}_mwrist_study")
    # Radial (lateral) styloid minus ulnar (medial) styloid points right on the right arm.
    return frame_from_yz(elbow - wrist, _lateral(m, side, f"{s}_lwrist_study", f"{s}_mwrist_study"))


def heading_frame(pelvis_frames: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """A lab frame (3, 3) with Y = `up` and X = the pelvis's median forward direction on the floor:
    global pelvis angles are then tilt/obliquity/rotation relative to where the subject faces."""
    up = np.array([0.0, 1.0, 0.0]) if up is None else np.asarray(up, float)
    fwd = pelvis_frames[:, :, 0]
    fwd = _unit(fwd - np.outer(fwd @ up, up))
    seen = np.all(np.isfinite(fwd), axis=1)
    fwd = np.median(fwd[seen], axis=0) if seen.any() else np.full(3, np.nan)  # never all-NaN slices
    if not np.all(np.isfinite(fwd)) or np.linalg.norm(fwd) < 1e-9:
        fwd = np.array([1.0, 0.0, 0.0]) - up[0] * up
    return frame_from_xy(fwd, up)
