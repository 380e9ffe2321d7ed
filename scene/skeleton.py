"""The armature's bones as functions of the engine's joints, its rest pose, and per-frame bone
rotations solved from joint positions. Pure numpy (Blender's Python has numpy, not scipy), no bpy,
so the maths is testable without Blender.

Every bone is a head point, a tail point and a twist reference, all in Blender world space (Z up).
A bone's frame follows Blender's convention: Y along head→tail, Z the twist reference made
perpendicular to Y, X = Y × Z. Torso and limb bones take Z = the body's forward direction at rest,
so rolls are consistent and mirror-symmetric (the .L and .R Z axes are mirror images).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# MediaPipe-33 indices used here (engine/joint_sets.MEDIAPIPE_33); repeated so that this module
# needs nothing but numpy.
_MP = {
    "nose": 0, "left_ear": 7, "right_ear": 8, "left_shoulder": 11, "right_shoulder": 12,
    "left_elbow": 13, "right_elbow": 14, "left_wrist": 15, "right_wrist": 16, "left_pinky": 17,
    "right_pinky": 18, "left_index": 19, "right_index": 20, "left_hip": 23, "right_hip": 24,
    "left_knee": 25, "right_knee": 26, "left_ankle": 27, "right_ankle": 28, "left_heel": 29,
    "right_heel": 30, "left_foot_index": 31, "right_foot_index": 32,
}

# Head bone length as a share of the subject's skeleton height from ankle to ear (the head top is
# not a landmark, so the head bone's tail is placed, not measured).
_HEAD_SHARE = 0.085


@dataclass(frozen=True)
class BoneDef:
    name: str
    parent: str | None
    head: str  # skeleton point names (see skeleton_points)
    tail: str
    twist: str  # reference vector name (see skeleton_points) for the bone's Z axis
    connected: bool


def _side(side: str) -> list[BoneDef]:
    s, S = side, "L" if side == "left" else "R"
    return [
        BoneDef(f"shoulder.{S}", "spine", "thorax", f"{s}_shoulder", "chest_forward", False),
        BoneDef(f"upper_arm.{S}", f"shoulder.{S}", f"{s}_shoulder", f"{s}_elbow", f"{s}_elbow_fold", True),
        BoneDef(f"forearm.{S}", f"upper_arm.{S}", f"{s}_elbow", f"{s}_wrist", f"{s}_palm_across", True),
        BoneDef(f"hand.{S}", f"forearm.{S}", f"{s}_wrist", f"{s}_index", f"{s}_palm_across", True),
        BoneDef(f"thigh.{S}", "pelvis", f"{s}_hip", f"{s}_knee", f"{s}_foot_forward", False),
        BoneDef(f"shin.{S}", f"thigh.{S}", f"{s}_knee", f"{s}_ankle", f"{s}_foot_forward", True),
        BoneDef(f"foot.{S}", f"shin.{S}", f"{s}_ankle", f"{s}_toe", f"{s}_instep", True),
    ]


# Parents come before children. The pelvis is special: its frame takes X exactly along the hip
# axis (so the thighs, which hang off it at an offset, land on the hips), Y up the spine.
BONES: tuple[BoneDef, ...] = (
    BoneDef("pelvis", None, "pelvis", "pelvis_top", "pelvis_forward", False),
    BoneDef("spine", "pelvis", "pelvis", "thorax", "chest_forward", False),
    BoneDef("neck", "spine", "thorax", "ears", "face_forward", True),
    BoneDef("head", "neck", "ears", "head_top", "face_forward", True),
    *_side("left"),
    *_side("right"),
)
BONE_NAMES: tuple[str, ...] = tuple(b.name for b in BONES)
BONE_INDEX = {b.name: i for i, b in enumerate(BONES)}

# Fingers, only where a --holistic run tracked the hand: three bones per finger, named as Rigify's
# (thumb.01 is the thumb's metacarpal, f_index.01 the index's proximal phalanx), over MediaPipe's
# 21 hand points (0 the wrist; 1-4 the thumb's CMC, MCP, IP, tip; then 4 per finger, MCP to tip).
FINGERS: tuple[tuple[str, tuple[int, int, int, int]], ...] = (
    ("thumb", (1, 2, 3, 4)), ("f_index", (5, 6, 7, 8)), ("f_middle", (9, 10, 11, 12)),
    ("f_ring", (13, 14, 15, 16)), ("f_pinky", (17, 18, 19, 20)))


def _finger_bones(S: str) -> tuple[BoneDef, ...]:
    s = "left" if S == "L" else "right"
    out = []
    for finger, idx in FINGERS:
        for k in range(3):
            parent = f"hand.{S}" if k == 0 else f"{finger}.0{k}.{S}"
            # Each bone's Z: the axis its finger bends about, across the palm (index → little
            # finger's knuckles: never along a finger, however bent); the thumb's is the back of
            # the hand, since the thumb points across the palm.
            twist = f"{s}_dorsal" if finger == "thumb" else f"{s}_across"
            out.append(BoneDef(f"{finger}.0{k + 1}.{S}", parent, f"{s}_hand{idx[k]}", f"{s}_hand{idx[k + 1]}",
                               twist, k > 0))
    return tuple(out)


FINGER_BONES: dict[str, tuple[BoneDef, ...]] = {S: _finger_bones(S) for S in ("L", "R")}
FINGER_NAMES: tuple[str, ...] = tuple(b.name for S in ("L", "R") for b in FINGER_BONES[S])


def bones_for(pts: dict[str, np.ndarray]) -> tuple[BoneDef, ...]:
    """The body's bones, and the fingers of each hand that `pts` carries (add_hands)."""
    return BONES + tuple(b for S, s in (("L", "left"), ("R", "right")) if f"{s}_hand0" in pts
                         for b in FINGER_BONES[S])

# Twist blending: the anatomical reference plus this share of the previous frame's Z axis, so a
# reference that vanishes (a straight elbow has no fold direction) hands over smoothly instead of
# flipping. Units: fraction of the reference's typical magnitude (all references are normalised).
_CARRY = 0.15
# Twist (roll about the bone) is steadied before use: short spikes removed by a running median over
# TWIST_MEDIAN frames, then the roll rate capped at TWIST_MAX_DPS. Our twist references (heel → toe,
# index → pinky, the elbow's fold ...) come from single landmarks, and on the demo's cam02 the right
# heel and toe swap for a few frames, turning the shin 127 deg and back with its direction still.
TWIST_MEDIAN = 5
TWIST_MAX_DPS = 1200.0


def unit(v: np.ndarray) -> np.ndarray:
    """v / |v| along the last axis (NaN where |v| is 0)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / n


def perp(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Component of v perpendicular to the unit vector(s) `axis`."""
    return v - np.sum(v * axis, axis=-1, keepdims=True) * axis


def skeleton_points(markers: np.ndarray, head_length: float | None = None) -> dict[str, np.ndarray]:
    """Named points and twist references (T, 3) from MediaPipe-33 markers in Blender world space.

    `head_length` fixes the head bone (default: a share of the subject's median height), so the
    head top is a rigid extension of the head frame rather than a noisy measurement.
    """
    m = np.asarray(markers, dtype=np.float64)
    p = {name: m[:, i] for name, i in _MP.items()}
    pts: dict[str, np.ndarray] = {}
    pts["pelvis"] = 0.5 * (p["left_hip"] + p["right_hip"])
    pts["thorax"] = 0.5 * (p["left_shoulder"] + p["right_shoulder"])
    pts["ears"] = 0.5 * (p["left_ear"] + p["right_ear"])
    for s in ("left", "right"):
        for j in ("shoulder", "elbow", "wrist", "index", "pinky", "hip", "knee", "ankle", "heel"):
            pts[f"{s}_{j}"] = p[f"{s}_{j}"]
        pts[f"{s}_toe"] = p[f"{s}_foot_index"]

    hip_axis = unit(p["left_hip"] - p["right_hip"])
    spine = pts["thorax"] - pts["pelvis"]
    chest_forward = np.cross(p["left_shoulder"] - p["right_shoulder"], spine)
    pts["chest_forward"] = unit(chest_forward)
    pts["pelvis_forward"] = unit(np.cross(hip_axis, spine))
    pts["pelvis_up"] = unit(perp(spine, hip_axis))
    face_forward = unit(m[:, _MP["nose"]] - pts["ears"])
    pts["face_forward"] = face_forward
    head_up = unit(np.cross(face_forward, p["left_ear"] - p["right_ear"]))
    if head_length is None:
        stature = np.linalg.norm(pts["ears"] - 0.5 * (p["left_ankle"] + p["right_ankle"]), axis=-1)
        head_length = _HEAD_SHARE * float(np.nanmedian(stature)) if np.isfinite(stature).any() else 0.12
    pts["head_top"] = pts["ears"] + head_length * head_up
    pts["pelvis_top"] = pts["pelvis"] + 0.1 * pts["pelvis_up"]
    for s in ("left", "right"):
        # The direction the forearm folds towards: anterior for a flexing elbow.
        pts[f"{s}_elbow_fold"] = unit(p[f"{s}_wrist"] - p[f"{s}_elbow"])
        pts[f"{s}_palm_across"] = unit(p[f"{s}_index"] - p[f"{s}_pinky"])
        pts[f"{s}_foot_forward"] = unit(p[f"{s}_foot_index"] - p[f"{s}_heel"])
        pts[f"{s}_instep"] = unit(p[f"{s}_ankle"] - p[f"{s}_heel"])
    return pts


def _palm_frames(hand: np.ndarray, side: int) -> np.ndarray:
    """(T, 3, 3) the palm's frame from 21 hand points (T, 21, 3) of the left (side 0) or right (1)
    hand: Y wrist → middle finger's MCP, Z the back of the hand (the rule of engine.hands.palm_normal,
    repeated so that this module stays numpy alone), X = Y × Z."""
    along = hand[:, 9] - hand[:, 0]
    across = hand[:, 5] - hand[:, 17]  # index MCP − little finger MCP: towards the thumb
    Y = unit(along)
    Z = unit(perp((-1.0 if side == 0 else 1.0) * np.cross(along, across), Y))
    return np.stack([np.cross(Y, Z), Y, Z], axis=-1)


def _rotation_mean(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(np.nansum(m, axis=0))
    r = u @ vt
    return r if np.linalg.det(r) > 0 else u @ np.diag([1, 1, -1.0]) @ vt


def add_hands(pts: dict[str, np.ndarray], hands: np.ndarray, fps: float) -> dict[str, np.ndarray]:
    """Add the fingers of each hand found at least once: `hands` (T, 2, 21, 3) left and right in
    the same world as `pts`, NaN where not found (engine/hands.py). Returns `pts`.

    The hand bone stays the body's (wrist → index, rolled by index → pinky, from the pose model);
    the hand model's palm is turned onto it: by its average turn from the hand bone over the run,
    then with the hand bone frame by frame. So only the fingers' pose relative to the palm comes
    from the hand model, and a hand bone and a palm that disagree by some degrees in a frame move
    no finger. Adds "<side>_hand0" ... "<side>_hand20" (T, 3), the finger bones' twist references
    "<side>_dorsal" (the back of the hand) and "<side>_across" (index → little finger's knuckle),
    and "<side>_hand_local" (T, 21, 3, the points in the hand bone's frame, for the rest pose)."""
    H = steady_frames(pts, fps)
    for side, s in enumerate(("left", "right")):
        hand = np.asarray(hands[:, side], dtype=np.float64)
        found = np.isfinite(hand).all(axis=(1, 2))
        if not found.any():
            continue
        Hs = H[:, BONE_INDEX[f"hand.{s[0].upper()}"]]
        P = _palm_frames(hand, side)
        both = found & np.isfinite(Hs).all((1, 2)) & np.isfinite(P).all((1, 2))
        if not both.any():
            continue
        rel = _rotation_mean(np.einsum("tji,tjk->tik", Hs[both], P[both]))  # palm in hand-bone axes
        local = np.einsum("ij,tkj,tnk->tni", rel, P, hand - hand[:, :1])  # rel · Pᵀ · (p − wrist)
        world = pts[f"{s}_wrist"][:, None] + np.einsum("tij,tnj->tni", Hs, local)
        for n in range(21):
            pts[f"{s}_hand{n}"] = world[:, n]
        pts[f"{s}_dorsal"] = np.einsum("tij,j->ti", Hs, rel[:, 2])
        pts[f"{s}_across"] = unit(pts[f"{s}_hand5"] - pts[f"{s}_hand17"])
        pts[f"{s}_hand_local"] = local
    return pts


def _finger_rest(pts: dict[str, np.ndarray], r: dict[str, np.ndarray], s: str,
                 side: int) -> tuple[np.ndarray, np.ndarray]:
    """Straight fingers at rest (each along its median direction from the wrist, the thumb along
    its metacarpal's), spread as the subject's, with median lengths, in the rest hand bone's frame.
    Adds the points to `r`; returns the twist references at rest: (dorsal, across the palm)."""
    local = pts[f"{s}_hand_local"]
    med = np.nanmedian(local, axis=0)  # (21, 3) the typical hand, in the hand bone's axes
    y = unit(r[f"{s}_index"] - r[f"{s}_wrist"])
    z = unit(perp(np.array([0, -1.0, 0]), y))
    H0 = np.stack([np.cross(y, z), y, z], axis=-1)  # as Blender builds the hand bone (align_roll)
    for finger, idx in FINGERS:
        start = med[idx[0]]
        direction = unit(med[idx[1]] - med[idx[0]]) if finger == "thumb" else unit(med[idx[0]])
        r[f"{s}_hand{idx[0]}"] = r[f"{s}_wrist"] + H0 @ start
        for a, b in zip(idx[:-1], idx[1:]):
            length = _median_length(pts, f"{s}_hand{a}", f"{s}_hand{b}", 0.03)
            r[f"{s}_hand{b}"] = r[f"{s}_hand{a}"] + length * (H0 @ direction)
    z_palm = unit(np.nanmedian(_palm_frames(local, side)[..., 2], axis=0))
    across = unit(np.nanmedian(local[:, 5] - local[:, 17], axis=0))
    return H0 @ z_palm, H0 @ across


def _median_length(pts: dict[str, np.ndarray], a: str, b: str, default: float) -> float:
    d = np.linalg.norm(pts[b] - pts[a], axis=-1)
    d = d[np.isfinite(d)]
    return float(np.median(d)) if d.size else default


def first_valid_frame(pts: dict[str, np.ndarray]) -> int:
    ok = np.isfinite(pts["pelvis"]).all(-1)
    return int(np.argmax(ok)) if ok.any() else 0


def rest_pose(pts: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A T-pose facing -Y (Blender's front view) with the subject's median bone lengths, the pelvis
    where it is in the first frame that has one. Returns (bone heads/tails by point name, the twist
    reference for each bone's Z axis at rest)."""
    f0 = first_valid_frame(pts)
    origin = pts["pelvis"][f0] if np.isfinite(pts["pelvis"][f0]).all() else np.zeros(3)
    X, Z, fwd = np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), np.array([0, -1.0, 0])
    L = lambda a, b, d: _median_length(pts, a, b, d)  # noqa: E731
    r: dict[str, np.ndarray] = {"pelvis": origin}
    r["pelvis_top"] = origin + 0.1 * Z
    r["thorax"] = origin + L("pelvis", "thorax", 0.5) * Z
    r["ears"] = r["thorax"] + L("thorax", "ears", 0.18) * Z
    r["head_top"] = r["ears"] + L("ears", "head_top", 0.12) * Z
    foot_dir = np.array([0.0, -np.cos(np.radians(20)), -np.sin(np.radians(20))])
    for s, sign in (("left", 1.0), ("right", -1.0)):
        r[f"{s}_shoulder"] = r["thorax"] + sign * L("thorax", f"{s}_shoulder", 0.18) * X
        r[f"{s}_elbow"] = r[f"{s}_shoulder"] + sign * L(f"{s}_shoulder", f"{s}_elbow", 0.28) * X
        r[f"{s}_wrist"] = r[f"{s}_elbow"] + sign * L(f"{s}_elbow", f"{s}_wrist", 0.25) * X
        r[f"{s}_index"] = r[f"{s}_wrist"] + sign * L(f"{s}_wrist", f"{s}_index", 0.09) * X
        r[f"{s}_hip"] = origin + sign * L("pelvis", f"{s}_hip", 0.1) * X
        r[f"{s}_knee"] = r[f"{s}_hip"] - L(f"{s}_hip", f"{s}_knee", 0.43) * Z
        r[f"{s}_ankle"] = r[f"{s}_knee"] - L(f"{s}_knee", f"{s}_ankle", 0.4) * Z
        r[f"{s}_toe"] = r[f"{s}_ankle"] + L(f"{s}_ankle", f"{s}_toe", 0.15) * foot_dir
    twist = {b.name: (Z if b.twist.endswith("instep") else fwd) for b in BONES}
    for side, (S, s) in enumerate((("L", "left"), ("R", "right"))):
        if f"{s}_hand_local" in pts:
            dorsal, across = _finger_rest(pts, r, s, side)
            twist |= {b.name: dorsal if b.twist.endswith("dorsal") else across for b in FINGER_BONES[S]}
    return r, twist


def bone_frames(pts: dict[str, np.ndarray], bones: tuple[BoneDef, ...] = BONES) -> np.ndarray:
    """World rotation (T, B, 3, 3) of every bone per frame (columns X, Y, Z); NaN where unknown.

    Y is exact (head→tail). Z is the bone's twist reference made perpendicular to Y, blended with
    the previous frame's Z (see _CARRY) so that it never flips where the reference degenerates.
    """
    T = pts["pelvis"].shape[0]
    B = len(bones)
    Y = np.stack([unit(pts[b.tail] - pts[b.head]) for b in bones], axis=1)  # (T, B, 3)
    ref = np.nan_to_num(np.stack([pts[b.twist] for b in bones], axis=1))
    base = perp(ref, Y)  # the anatomical part, vectorised; only the carry-over is sequential
    ok_y = np.isfinite(Y).all(-1)
    Z = np.full((T, B, 3), np.nan)
    prev_z = np.tile(np.array([0, -1.0, 0]), (B, 1))  # forward until a frame says otherwise
    for t in range(T):
        y = Y[t]
        z = unit(base[t] + _CARRY * perp(prev_z, y))
        ok = ok_y[t] & (np.linalg.norm(np.nan_to_num(z), axis=-1) > 0.5)
        Z[t, ok] = z[ok]
        prev_z[ok] = z[ok]
    out = np.stack([np.cross(Y, Z), Y, Z], axis=-1)
    # The pelvis takes X exactly on the hip axis, so both hips land where the engine put them.
    hx = unit(pts["left_hip"] - pts["right_hip"])
    hy = unit(perp(pts["thorax"] - pts["pelvis"], hx))
    pelvis = np.stack([hx, hy, np.cross(hx, hy)], axis=-1)
    for i, b in enumerate(bones):
        if b.name == "pelvis":
            out[:, i] = pelvis
    return np.where(np.isfinite(out).all((-1, -2))[..., None, None], out, np.nan)


def local_rotations(world: np.ndarray, rest: np.ndarray,
                    bones: tuple[BoneDef, ...] = BONES) -> np.ndarray:
    """Pose-bone rotation matrices (T, B, 3, 3) that give each bone the world rotation `world`.

    rest: (B, 3, 3) bone rest rotations in armature space (Bone.matrix_local). With D = W·Rᵀ the
    world-space turn of a bone from rest, Blender composes pose = parent_pose · R_pᵀR_b · L_b, so
    L_b = R_bᵀ · D_pᵀ · D_b · R_b (root: L = R_bᵀ · W_b).
    """
    idx = {b.name: i for i, b in enumerate(bones)}
    delta = np.einsum("tbij,bkj->tbik", world, rest)  # W · Rᵀ
    out = np.empty_like(world)
    for i, b in enumerate(bones):
        if b.parent is None:
            rel = delta[:, i]
        else:
            rel = np.einsum("tji,tjk->tik", delta[:, idx[b.parent]], delta[:, i])
        out[:, i] = rest[i].T @ rel @ rest[i]
    return out


def matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (…, 3, 3) → unit quaternions (…, 4) in Blender's (w, x, y, z) order."""
    m = np.asarray(m, dtype=np.float64)
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # Shepperd: pick the largest of 4w², 4x², 4y², 4z² as the pivot for numerical stability.
    cand = np.stack([tr, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], axis=-1)
    with np.errstate(invalid="ignore"):
        k = np.argmax(np.nan_to_num(cand, nan=-np.inf), axis=-1)
    q = np.full(m.shape[:-2] + (4,), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sqrt(np.maximum(1.0 + tr, 0)) * 2
        w = np.stack([0.25 * s, (m[..., 2, 1] - m[..., 1, 2]) / s, (m[..., 0, 2] - m[..., 2, 0]) / s,
                      (m[..., 1, 0] - m[..., 0, 1]) / s], -1)
        s = np.sqrt(np.maximum(1.0 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], 0)) * 2
        x = np.stack([(m[..., 2, 1] - m[..., 1, 2]) / s, 0.25 * s, (m[..., 0, 1] + m[..., 1, 0]) / s,
                      (m[..., 0, 2] + m[..., 2, 0]) / s], -1)
        s = np.sqrt(np.maximum(1.0 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], 0)) * 2
        y = np.stack([(m[..., 0, 2] - m[..., 2, 0]) / s, (m[..., 0, 1] + m[..., 1, 0]) / s, 0.25 * s,
                      (m[..., 1, 2] + m[..., 2, 1]) / s], -1)
        s = np.sqrt(np.maximum(1.0 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2], 0)) * 2
        z = np.stack([(m[..., 1, 0] - m[..., 0, 1]) / s, (m[..., 0, 2] + m[..., 2, 0]) / s,
                      (m[..., 1, 2] + m[..., 2, 1]) / s, 0.25 * s], -1)
    for i, c in enumerate((w, x, y, z)):
        q = np.where((k == i)[..., None], c, q)
    q = np.where(np.isfinite(m).all((-1, -2))[..., None], q, np.nan)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def continuous(q: np.ndarray) -> np.ndarray:
    """Flip quaternion signs along axis 0 so consecutive valid keys take the short way round
    (Blender interpolates the components linearly between keys)."""
    q = q.copy()
    ok = np.isfinite(q).all(-1)  # (T, …)
    flat, okf = q.reshape(q.shape[0], -1, 4), ok.reshape(q.shape[0], -1)
    for j in range(flat.shape[1]):  # per channel: signs of the dots between consecutive valid keys
        idx = np.flatnonzero(okf[:, j])
        if idx.size < 2:
            continue
        v = flat[idx, j]
        sign = np.cumprod(np.where(np.sum(v[1:] * v[:-1], axis=-1) < 0, -1.0, 1.0))
        flat[idx[1:], j] *= sign[:, None]
    return flat.reshape(q.shape)


def root_locations(pelvis: np.ndarray, rest_head: np.ndarray, rest_rot: np.ndarray) -> np.ndarray:
    """Pose-bone location of a root bone: its offset from rest expressed in the bone's rest frame."""
    return (pelvis - rest_head) @ rest_rot


def steady_twist(F: np.ndarray, fps: float, skip: tuple[int, ...] = (0,)) -> np.ndarray:
    """Bone frames (T, B, 3, 3) with each bone's roll about Y steadied (see TWIST_MEDIAN); Y is kept.
    The roll is measured against a reference carried along Y by parallel transport (no roll of its
    own), median-filtered and rate-limited, then put back. Bones in `skip` are unchanged."""
    T, B = F.shape[:2]
    if T < 3:
        return F
    Y, Z = F[..., 1], F[..., 2]
    ok = np.isfinite(Y).all(-1) & np.isfinite(Z).all(-1)
    base = np.empty((T, B, 3))
    carry = np.where(ok[0][:, None], Z[0], np.array([0, -1.0, 0]))
    Yz = np.where(ok[..., None], Y, 0.0)
    for t in range(T):  # parallel transport: the previous reference made perpendicular to this Y
        y = Yz[t]
        v = carry - (carry * y).sum(-1)[:, None] * y
        n = np.sqrt((v * v).sum(-1))
        good = ok[t] & (n > 1e-6)
        carry = np.where(good[:, None], v / np.where(good, n, 1.0)[:, None], carry)
        base[t] = carry
    side = np.cross(Y, base)
    psi = np.arctan2(np.sum(Z * side, -1), np.sum(Z * base, -1))  # (T, B), NaN where unknown
    out = F.copy()
    half = TWIST_MEDIAN // 2
    cap = np.radians(TWIST_MAX_DPS) / max(fps, 1.0)
    for b in range(B):
        if b in skip:
            continue
        idx = np.flatnonzero(ok[:, b])
        if idx.size < 3:
            continue
        # The median of the angle's cosine and sine (no wrap-around to unwrap), then the capped rate.
        a = psi[idx, b]
        window = np.lib.stride_tricks.sliding_window_view
        cs = [np.median(window(np.pad(f(a), half, mode="edge"), TWIST_MEDIAN), axis=-1)
              for f in (np.cos, np.sin)]
        med = np.arctan2(cs[1], cs[0]).tolist()
        lim = [med[0]]
        two_pi = 2 * math.pi
        for m in med[1:]:  # plain floats: a numpy call per frame costs more than the sum
            step = (m - lim[-1] + math.pi) % two_pi - math.pi
            lim.append(lim[-1] + min(cap, max(-cap, step)))
        lim = np.array(lim)
        z = np.cos(lim)[:, None] * base[idx, b] + np.sin(lim)[:, None] * side[idx, b]
        y = Y[idx, b]
        out[idx, b] = np.stack([np.cross(y, z), y, z], axis=-1)
    return out


def _quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)


def limit_twist(rel: np.ndarray, axis: np.ndarray, limit_deg: float) -> np.ndarray:
    """Rotations (T, 3, 3), one per frame, with their twist about unit `axis` (swing-twist split)
    clamped to ±limit_deg; the swing is kept. The twist is unwrapped over frames first, so a turn
    past half a turn stays clamped on its side instead of jumping to the other."""
    q = matrix_to_quaternion(rel)
    w, v = q[..., 0], q[..., 1:]
    along = v @ axis
    twist = np.concatenate([w[..., None], along[..., None] * axis], -1)
    n = np.linalg.norm(twist, axis=-1, keepdims=True)
    twist = np.where(n > 1e-9, twist / np.maximum(n, 1e-12), np.array([1.0, 0, 0, 0]))
    angle = 2 * np.arctan2(twist[..., 1:] @ axis, twist[..., 0])
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    finite = np.isfinite(angle)
    angle[finite] = np.unwrap(angle[finite])
    lim = np.radians(limit_deg)
    clamped = np.clip(angle, -lim, lim)
    T_old = _quat_to_matrix(twist)
    T_new = _quat_to_matrix(np.concatenate([np.cos(clamped / 2)[..., None],
                                            np.sin(clamped / 2)[..., None] * axis], -1))
    swing = rel @ np.swapaxes(T_old, -1, -2)
    out = swing @ T_new
    return np.where(np.isfinite(rel).all((-1, -2))[..., None, None], out, rel)


def steady_frames(pts: dict[str, np.ndarray], fps: float,
                  bones: tuple[BoneDef, ...] = BONES) -> np.ndarray:
    """bone_frames with every roll steadied (steady_twist): on the demo's cam02 a right heel and
    toe swapped for a few frames otherwise spin the shin 127 deg in one frame and back. Only rolls
    change: every bone's direction, so every joint, stays where the engine put it. Finger bones
    are then held to what fingers can do (steady_fingers)."""
    F = steady_twist(bone_frames(pts, bones), fps)
    return steady_fingers(F, bones, fps) if len(bones) > len(BONES) else F


# Fingers: the hand model's points jitter most at the fingertips (a 2 cm end segment), and where a
# run of frames is too short for the low-pass; on cam01 a fingertip turned 118 deg in one frame.
# The middle and end joints of the four fingers are hinges (bending about the axis across the
# palm, from FINGER_BEND_DEG[0] backwards to FINGER_BEND_DEG[1]); every finger joint's motion is
# median-filtered over FINGER_MEDIAN frames and its speed capped at FINGER_MAX_DPS.
FINGER_BEND_DEG = (-30.0, 120.0)
FINGER_MEDIAN = 5
FINGER_MAX_DPS = 1500.0


def _rotvec(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) → rotation vectors (..., 3) (angles below 180 deg)."""
    cos = np.clip((np.trace(m, axis1=-2, axis2=-1) - 1) / 2, -1, 1)
    angle = np.arccos(cos)
    axis = np.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1]], -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(angle > 1e-9, angle / (2 * np.sin(angle)), 0.5)
    return axis * k[..., None]


def _rotmat(v: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) → matrices (..., 3, 3) (Rodrigues)."""
    angle = np.linalg.norm(v, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(angle[..., None] > 1e-12, v / angle[..., None], 0.0)
    K = np.zeros(v.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -a[..., 2], a[..., 1], -a[..., 0]
    K = K - np.swapaxes(K, -1, -2)
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def _steady_series(x: np.ndarray, fps: float) -> np.ndarray:
    """(T, n) with each run of finite rows median-filtered (FINGER_MEDIAN, edges repeated; runs
    under 3 rows kept) and every step capped (FINGER_MAX_DPS, as the norm of the step in radians),
    also across a gap (the cap times the frames between), so that what Blender interpolates over
    a gap is no faster either."""
    out = x.copy()
    ok = np.isfinite(x).all(-1)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return out
    # Each valid row's run, [start, stop), for a median window clipped to its run (vectorised).
    new_run = np.r_[True, np.diff(idx) > 1]
    run_id = np.cumsum(new_run) - 1
    starts = idx[new_run]
    stops = np.r_[idx[np.flatnonzero(new_run)[1:] - 1] + 1, idx[-1] + 1]
    lo, hi = starts[run_id], stops[run_id]
    half = FINGER_MEDIAN // 2
    window = np.clip(idx[:, None] + np.arange(-half, half + 1), lo[:, None], hi[:, None] - 1)
    med = np.median(x[window], axis=1)
    long_run = (hi - lo) >= 3
    out[idx[long_run]] = med[long_run]
    cap = np.radians(FINGER_MAX_DPS) / max(fps, 1.0)
    v = out[idx]
    most = cap * np.diff(idx)
    if not (np.linalg.norm(np.diff(v, axis=0), axis=-1) > most).any():
        return out
    rows = v.tolist()  # sequential: each step from the capped previous one (plain floats: fast)
    for k in range(1, len(rows)):
        prev, cur = rows[k - 1], rows[k]
        step = [c - p for c, p in zip(cur, prev)]
        n = math.sqrt(sum(c * c for c in step))
        if n > most[k - 1]:
            f = most[k - 1] / n
            rows[k] = [p + c * f for p, c in zip(prev, step)]
    out[idx] = rows
    return out


def steady_fingers(F: np.ndarray, bones: tuple[BoneDef, ...], fps: float) -> np.ndarray:
    """Bone frames (T, B, 3, 3) with the finger bones (see FINGER_BEND_DEG) held to hinges where
    fingers are hinges, and steadied; parents are done before children, so each finger is
    rebuilt on its steadied parent. Other bones are unchanged."""
    out = F.copy()
    index = {b.name: i for i, b in enumerate(bones)}
    lo, hi = np.radians(FINGER_BEND_DEG)
    for b in bones[len(BONES):]:
        i, p = index[b.name], index[b.parent]
        Fp, Fc = out[:, p], F[:, i]
        hinge = b.connected and not b.name.startswith("thumb")
        if hinge:  # the bend about the parent's Z (across the palm), positive towards the palm
            # The back of the finger: X = Y × Z with Z towards the thumb is palmar on a left hand,
            # dorsal on a right one (fixed by the hand's chirality, never by a frame's data).
            d = Fp[..., 0] * (-1.0 if b.name.endswith(".L") else 1.0)
            y = Fc[..., 1]
            bend = np.arctan2(-np.einsum("tk,tk->t", y, d), np.einsum("tk,tk->t", y, Fp[..., 1]))
            bend = _steady_series(np.clip(bend, lo, hi)[:, None], fps)[:, 0]
            Y = np.cos(bend)[:, None] * Fp[..., 1] - np.sin(bend)[:, None] * d
            Z = Fp[..., 2]
            out[:, i] = np.stack([np.cross(Y, Z), Y, Z], axis=-1)
            continue
        rel = np.einsum("tji,tjk->tik", Fp, Fc)  # the child in its parent's axes
        ok = np.isfinite(rel).all((1, 2))
        if not ok.any():
            continue
        mean = _rotation_mean(rel[ok])
        v = _steady_series(_rotvec(np.einsum("ji,tjk->tik", mean, rel)), fps)
        out[:, i] = Fp @ mean @ _rotmat(v)
    return np.where(np.isfinite(out).all((-1, -2))[..., None, None], out, np.nan)
