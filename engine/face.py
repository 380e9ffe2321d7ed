"""The face of a `--holistic` run as animation channels: how far the jaw is open and how far each
eye is closed, read from MediaPipe's 468-point face mesh (frame pixels and relative depth, in one
scale: engine/holistic.py), for a character's jaw, eyelids and shape keys (scene/face.py).

- Jaw: the angle at the jaw's hinge between the inner upper lip (mesh point 13) and the inner lower
  lip (14). The hinge is taken midway between the face's outline points at the ears (234, 454),
  on the line through both temporomandibular joints; closed lips read 0 whoever the person is.
- Eyes: the lid gap over the eye's width (upper/lower lid 159/145 over corners 33/133 for the
  subject's right eye; 386/374 over 362/263 for the left), against the same ratio with the eye
  open. How open an open eye is differs between people, so the open ratio is the clip's own (its
  90th percentile over both eyes); a closure under `BLINK_FROM` of it reads open (a squint, or
  the mesh's noise on a 20 px face) and one over `BLINK_TO` reads shut.

Frames without a face stay NaN, and a face found in fewer frames in a row than engine/hands.py's
MIN_RUN_S is dropped as a hand is: a character's face is then left as it is there (Blender
interpolates between the keyed frames). Blinks last 100-150 ms, so no low-pass is applied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cleaning import runs
from .hands import MIN_RUN_S

CHANNELS = ("jaw_open_rad", "blink_left", "blink_right")
# A mouth opened wide turns the mandible about 25-30 deg; ARKit-style `jawOpen` = 1 there.
JAW_FULL_RAD = np.radians(28.0)
BLINK_FROM, BLINK_TO = 0.2, 0.8
_UPPER_LIP, _LOWER_LIP, _EAR_L, _EAR_R = 13, 14, 454, 234
_EYES = ((386, 374, 362, 263), (159, 145, 33, 133))  # subject's left, right: upper, lower, corners


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.arccos(np.clip(cos, -1.0, 1.0))


def eye_ratios(face: np.ndarray) -> np.ndarray:
    """(T, 2) lid gap over eye width of the subject's left and right eye."""
    gap = [np.linalg.norm(face[:, u] - face[:, lo], axis=-1) for u, lo, _, _ in _EYES]
    width = [np.linalg.norm(face[:, a] - face[:, b], axis=-1) for _, _, a, b in _EYES]
    return np.stack(gap, axis=-1) / np.stack(width, axis=-1)


def jaw_angle(face: np.ndarray) -> np.ndarray:
    """(T,) radians the jaw is open (see the module doc)."""
    hinge = (face[:, _EAR_L] + face[:, _EAR_R]) / 2
    return _angle(face[:, _UPPER_LIP] - hinge, face[:, _LOWER_LIP] - hinge)


def expressions(face: np.ndarray | None, fps: float) -> np.ndarray | None:
    """(T, 3) the `CHANNELS` of each frame from the face mesh (T, 468, 3), NaN where no face was
    kept; None when the run tracked no face."""
    if face is None:
        return None
    face = np.asarray(face, dtype=np.float64)
    found = np.isfinite(face).all(axis=(1, 2))
    for a, b in runs(found):
        if b - a < max(3, round(MIN_RUN_S * fps)):
            found[a:b] = False
    if not found.any():
        return None
    out = np.full((len(face), len(CHANNELS)), np.nan)
    out[found, 0] = jaw_angle(face[found])
    ratios = eye_ratios(face[found])
    closure = 1.0 - ratios / np.percentile(ratios, 90)
    out[found, 1:] = np.clip((closure - BLINK_FROM) / (BLINK_TO - BLINK_FROM), 0.0, 1.0)
    return out


def write_face_csv(path: Path, face: np.ndarray, first_frame: int, fps: float) -> None:
    """One row per frame with a face kept: frame (video index), time_s, jaw_open_deg, blink_left,
    blink_right (0 open … 1 shut)."""
    kept = np.flatnonzero(np.isfinite(face).all(axis=1))
    frames = first_frame + kept
    data = np.column_stack([frames, frames / fps, np.degrees(face[kept, 0]), face[kept, 1:]])
    np.savetxt(path, data, delimiter=",", header="frame,time_s,jaw_open_deg,blink_left,blink_right",
               comments="", fmt=["%d", "%.6f", "%.3f", "%.4f", "%.4f"])
