"""Joint angles in ISB conventions (Wu et al. 2002/2005, Grood & Suntay) from the augmented markers.

Every angle is the intrinsic Z-X-Y Euler decomposition (scipy.spatial.transform) of the distal
segment's frame in the proximal one: Z = flexion/extension, X = ab/adduction (the floating axis),
Y = axial rotation. The shoulder uses the same Z-X-Y sequence (flexion, abduction, rotation of the
humerus in the trunk) instead of ISB's Y-X-Y, which is singular with the arm at the side — the
commonest posture in video. Signs are turned so that on both sides:

    flex: hip, shoulder, elbow flexion; knee flexion; ankle dorsiflexion; trunk forward flexion and
          pelvis anterior tilt (+)
    abd:  hip/knee/shoulder abduction; ankle eversion (+); trunk lateral bending and pelvis
          obliquity toward the right (+)
    rot:  internal rotation of the distal segment (+); trunk and pelvis axial rotation toward the
          left (+)

Beside them, ISB's own humerothoracic angles (Wu et al. 2005), the groups `humerothoracic_r/_l`:
the Y-X-Y decomposition of the humerus in the thorax into the plane of elevation (0 = abduction in
the frontal plane, 90 = forward flexion), elevation (0 = arm along the trunk, positive) and axial
rotation (internal +). Y-X-Y is singular where the Z-X-Y shoulder is not: with the arm hanging,
only the sum of plane and rotation is defined. The rule, stated once: where elevation is under 20°
(or over 160°) the plane of elevation is interpolated between the nearest frames where it is
defined (held at the ends; 0 if never), elevation is exact, and axial rotation is the measured sum
less that plane (the difference, near 180°), so the twist of the arm is kept and nothing jumps; the
humerus those three angles describe lies within the elevation angle of the measured one there.
Where the Z-X-Y shoulder nears ±90° abduction (its own singularity), read these
(engine/shoulder_gimbal.py says where).

The pelvis is relative to a lab frame with Y vertical and X along the subject's median heading.
Euler angles are made continuous over time: the decomposition switches to the other equivalent
Z-X-Y solution where the floating angle passes ±90° (e.g. the arm raised overhead) and every angle
is unwrapped by 360°, so there are no ±180° jumps.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
from scipy.spatial.transform import Rotation

from . import segments as seg

SEQUENCE = "ZXY"  # intrinsic (upper case in scipy)
GROUPS: tuple[str, ...] = ("pelvis", "hip_r", "hip_l", "knee_r", "knee_l", "ankle_r", "ankle_l",
                           "trunk", "shoulder_r", "shoulder_l", "elbow_r", "elbow_l")
COMPONENTS = ("flex", "abd", "rot")
# ISB's humerothoracic Y-X-Y angles, next to the Z-X-Y shoulder groups (module doc).
HT_GROUPS: tuple[str, ...] = ("humerothoracic_r", "humerothoracic_l")
HT_COMPONENTS = ("plane", "elev", "rot")
ALL_GROUPS = GROUPS + HT_GROUPS
_HT_DEFINED_DEG = (20.0, 160.0)  # elevation range where the plane of elevation is defined

# Sign applied to the raw (Z, X, Y) Euler angles of each joint, right side; see the module doc.
_SIGNS_RIGHT = {"pelvis": (-1, 1, 1), "trunk": (-1, 1, 1), "hip": (1, -1, 1), "knee": (-1, -1, 1),
                "ankle": (1, -1, 1), "shoulder": (1, -1, 1), "elbow": (1, -1, 1)}


def signs(group: str) -> np.ndarray:
    joint, _, side = group.partition("_")
    s = np.array(_SIGNS_RIGHT[joint], dtype=float)
    if side == "l":  # Z points right on both sides: ab/adduction and axial rotation mirror
        s[1:] *= -1
    return s


def columns(group: str) -> list[str]:
    """CSV/MOT column names of a group: `{group}_flex_deg`, … (the elbow has flexion only;
    humerothoracic: `_plane_deg`, `_elev_deg`, `_rot_deg`)."""
    if group in HT_GROUPS:
        comps = HT_COMPONENTS
    else:
        comps = COMPONENTS[:1] if group.startswith("elbow") else COMPONENTS
    return [f"{group}_{c}_deg" for c in comps]


def _fill(values: np.ndarray, defined: np.ndarray, default: float) -> np.ndarray:
    """values where defined, linearly interpolated between defined frames elsewhere (held at the
    ends); `default` everywhere if none is."""
    idx = np.flatnonzero(defined)
    if idx.size == 0:
        return np.full(values.shape, default)
    return np.interp(np.arange(values.size), idx, values[idx])


def humerothoracic(rel: np.ndarray, side: str) -> np.ndarray:
    """(T, 3, 3) humerus-in-thorax rotations → (T, 3) plane of elevation, elevation and axial
    rotation in degrees (ISB's Y-X-Y, with the module's rule where the plane is undefined),
    continuous over time; NaN frames stay NaN."""
    out = np.full((rel.shape[0], 3), np.nan)
    ok = np.isfinite(rel).all(axis=(1, 2))
    if not ok.any():
        return out
    with warnings.catch_warnings():  # scipy warns at the singularity the rule handles
        warnings.simplefilter("ignore", UserWarning)
        alpha, beta, gamma = np.radians(Rotation.from_matrix(rel[ok]).as_euler("YXY", degrees=True)).T
    # Proper Euler angles keep β in [0°, 180°]: no branch to switch, only the singular ends.
    lo, hi = np.radians(_HT_DEFINED_DEG)
    defined = (beta >= lo) & (beta <= hi)
    alpha_u = np.unwrap(alpha)
    # Where the arm hangs (β ≈ 0) only α + γ is defined, near overhead (β ≈ 180°) only α − γ.
    total = np.unwrap(alpha + gamma)
    diff = np.unwrap(alpha - gamma)
    # Default plane: abduction (α = 180° on the right, 0° on the left: see the signs below).
    alpha_f = _fill(alpha_u, defined, np.pi if side == "r" else 0.0)
    gamma_f = np.where(beta > np.pi / 2, alpha_f - diff, total - alpha_f)
    gamma_f = np.where(defined, gamma, gamma_f)
    # Y up, X anterior, Z right: on the right, α = 180° is abduction and −90° flexion; on the
    # left (Z medial), 0° and −90°. Internal rotation is +γ on the right (from γ = 180°, which
    # undoes α's half turn), −γ on the left.
    plane = alpha_f - np.pi if side == "r" else -alpha_f
    rot = gamma_f - np.pi if side == "r" else -gamma_f
    plane = (plane + np.pi) % (2 * np.pi) - np.pi  # start in (−180°, 180°], then continuous
    deg = np.degrees(np.column_stack([np.unwrap(plane), beta, np.unwrap(rot)]))
    deg[:, 2] -= 360.0 * np.round(np.nanmedian(deg[:, 2]) / 360.0)  # rotation about 0, not ±360
    out[ok] = deg
    return out


def continuous_euler(rel: np.ndarray, seq: str = SEQUENCE) -> np.ndarray:
    """(T, 3, 3) rotations → (T, 3) Euler angles in degrees, continuous over time; NaN frames stay NaN."""
    out = np.full((rel.shape[0], 3), np.nan)
    ok = np.isfinite(rel).all(axis=(1, 2))
    if not ok.any():
        return out
    with warnings.catch_warnings():  # at gimbal lock scipy warns; the branch choice below copes
        warnings.simplefilter("ignore", UserWarning)
        a = Rotation.from_matrix(rel[ok]).as_euler(seq, degrees=True)
    # The principal solution keeps |β| ≤ 90°: when the true floating angle passes ±90°, α and γ both
    # jump by 180° there. Each such frame toggles to the other solution of a Tait-Bryan sequence,
    # (α + 180°, 180° − β, γ + 180°), from then on; then every column is unwrapped by 360°.
    def jump(col: np.ndarray) -> np.ndarray:
        return np.abs((np.diff(col) + 180.0) % 360.0 - 180.0) > 90.0

    flips = np.concatenate([[False], jump(a[:, 0]) & jump(a[:, 2])])
    other = np.cumsum(flips) % 2 == 1
    a[other] = np.column_stack([a[other, 0] + 180.0, 180.0 - a[other, 1], a[other, 2] + 180.0])
    out[ok] = np.degrees(np.unwrap(np.radians(a), axis=0))  # starts in the principal range
    return out


def segment_frames(markers: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every segment frame the 12 groups need, (T, 3, 3) each."""
    f = {"pelvis": seg.pelvis(markers), "trunk": seg.trunk(markers)}
    for s in ("r", "l"):
        f[f"thigh_{s}"] = seg.thigh(markers, s)
        f[f"shank_{s}"] = seg.shank(markers, s)
        f[f"foot_{s}"] = seg.foot(markers, s)
        f[f"upper_arm_{s}"] = seg.upper_arm(markers, s)
        f[f"forearm_{s}"] = seg.forearm(markers, s)
    return f


# Each group: (proximal, distal) segment; "lab" is the heading-aligned lab frame.
_PAIRS = {"pelvis": ("lab", "pelvis"), "trunk": ("pelvis", "trunk")}
for _s in ("r", "l"):
    _PAIRS |= {f"hip_{_s}": ("pelvis", f"thigh_{_s}"), f"knee_{_s}": (f"thigh_{_s}", f"shank_{_s}"),
               f"ankle_{_s}": (f"shank_{_s}", f"foot_{_s}"),
               f"shoulder_{_s}": ("trunk", f"upper_arm_{_s}"),
               f"elbow_{_s}": (f"upper_arm_{_s}", f"forearm_{_s}")}


def joint_angles(markers: Mapping[str, np.ndarray], up: np.ndarray | None = None,
                 lab: np.ndarray | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Markers by name ((T, 3) each, the FINAL_65 names) → {group: {column: (T,) degrees}} for
    ALL_GROUPS.

    `lab` (3, 3) is the frame the pelvis angles refer to; by default Y = `up` and X = the pelvis's
    median heading."""
    frames = segment_frames(markers)
    if lab is None:
        lab = seg.heading_frame(frames["pelvis"], np.array([0.0, 1.0, 0.0]) if up is None else up)
    frames["lab"] = np.broadcast_to(lab, frames["pelvis"].shape)
    out: dict[str, dict[str, np.ndarray]] = {}
    for group in GROUPS:
        prox, dist = _PAIRS[group]
        rel = np.einsum("tji,tjk->tik", frames[prox], frames[dist])  # prox^T @ dist
        ang = continuous_euler(rel) * signs(group)
        out[group] = dict(zip(columns(group), ang.T))
    for group in HT_GROUPS:
        side = group[-1]
        rel = np.einsum("tji,tjk->tik", frames["trunk"], frames[f"upper_arm_{side}"])
        out[group] = dict(zip(columns(group), humerothoracic(rel, side).T))
    return out
