"""The retarget's maths, in numpy (no bpy): per frame, a world rotation for every bone of a target
armature that lines its mapped chains up with our bones, the hips' path scaled to the character,
and a foot-planting pass; then the pose-bone rotations (and the root's location) that give them.

Per slot (one of our bones, mapped to a chain of target bones by scene/bone_map.py):
- the slot's frame on our side, per frame, is scene/skeleton.bone_frames' (Y along the bone, Z its
  anatomical twist reference: forward for the trunk, arms and legs, up for the foot; the pelvis takes
  X on the hip axis);
- on the target, at rest, the same frame is built from the target's own joints: Y from the chain's
  start joint to its end joint (hip → knee, shoulder → elbow ...), Z the rig's forward (up for the
  foot) made perpendicular to Y. So a T-pose and an A-pose rest, and any bone roll, give the same
  frame for the same anatomy;
- the turn D(t) = F_ours(t) · C_targetᵀ takes the target's rest frame onto ours; every bone of the
  chain gets world rotation D(t) · its rest rotation (a chain turns as one piece), and a bone no slot
  names keeps its rest pose relative to its parent (fingers, toes, face, helpers).
The trunk chains (spine, neck) start where their first bone is, which need not be one of our joints
(a rig's spine may begin above the hip centre): their direction is aimed from the point that
corresponds to that start on our side, so the shoulders land where ours are (handed over to our
bone's own direction where that aim degenerates: AIM_HANDOVER, AIM_OFF_DEG).

Root motion: the hip centre follows ours scaled by s = the target's leg length / ours (hip height),
starting over the target's rest hips (our first frame's hip centre goes there, our floor onto the
target's floor), turned about the vertical so that our subject's median heading (-Y in the scene)
becomes the target's forward.

Twist is steadied first (skeleton.steady_frames): a single landmark sets each bone's roll, and a few frames of
a swapped heel and toe would otherwise spin a shin half a turn and back. Then the legs' twists are held
within anatomical ranges (thigh about itself vs the pelvis, shin vs thigh, foot about the shin vs the
shin): a rig that splits a limb's twist over segments (Rigify's DEF-thigh.L.001 ...) flips a segment
over when a twist passes half a turn.

Planted feet (engine quality flags, per heel and toe): each run of frames with the heel (else the
toe) planted pins that point where the retargeted foot has it on average over the run, easing in and
out over a few frames. The up-down part the planted feet share moves the hips (a near-straight knee
would bend a lot for a centimetre: on the demo's cam03 the knee flexion's p95 difference fell from
15 to 9 deg this way); an analytic two-bone IK on each leg (knee kept in its plane) reaches the
rest. The foot keeps its world rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.cleaning import runs
from . import skeleton
from .skeleton import limit_twist
from .skeleton import perp as _perp
from .skeleton import unit as _unit

SIDES = ("L", "R")
_LIMBS = {"upper_arm": ("shoulder", "elbow"), "forearm": ("elbow", "wrist"), "hand": ("wrist", "index"),
          "thigh": ("hip", "knee"), "shin": ("knee", "ankle"), "foot": ("ankle", "toe")}
_SIDE_NAME = {"L": "left", "R": "right"}
EASE_S = 0.1  # seconds over which a foot pin eases in and out
# The foot's turn about the shin's axis, relative to the shin (the leg's internal/external rotation
# below the knee plus the ankle's), is held within this: the same swapped heel and toe can point a
# foot backwards (177 deg on cam02), which a rig's twist-splitting segments (Rigify's) flip over.
FOOT_TWIST_LIMIT_DEG = 60.0
KNEE_TWIST_LIMIT_DEG = 45.0  # the shin's turn about its own axis relative to the thigh
HIP_TWIST_LIMIT_DEG = 60.0  # the thigh's about its own axis relative to the pelvis
# A trunk chain aimed from its own start (see the module doc) hands over to our bone's direction
# as that aim's length falls from AIM_HANDOVER[1] to AIM_HANDOVER[0] times our bone's.
AIM_HANDOVER = (0.3, 0.5)
AIM_OFF_DEG = (45.0, 75.0)  # ... and as the aim swings from 45 to 75 deg off our bone's direction


@dataclass
class Target:
    """A target armature at rest, read from Blender (scene/retarget.py) or built by hand."""

    names: list[str]  # parents before children
    parents: np.ndarray  # (B,) index of each bone's parent, -1 for none
    rest: np.ndarray  # (B, 4, 4) Bone.matrix_local (armature space)
    lengths: np.ndarray  # (B,)
    world: np.ndarray  # (4, 4) the armature object's matrix_world

    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def world_rest(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(heads, tails, rotations) of every bone at rest in world space."""
        M = self.world @ self.rest
        R = _orthonormal(M[:, :3, :3])
        heads = M[:, :3, 3]
        tails = heads + M[:, :3, 1] * self.lengths[:, None]
        return heads, tails, R


@dataclass
class Solution:
    delta: np.ndarray  # (T, B, 3, 3) world turn of every bone from its rest
    root: int  # index of the bone that carries the root motion (the pelvis chain's first)
    root_head: np.ndarray  # (T, 3) that bone's head, world
    keyed: list[int]  # bones that get keys (every mapped bone), parents before children
    joints: dict[str, np.ndarray]  # (T, 3) the target's joints as solved (hip.L, knee.L, ...), world
    scale: float  # s
    pinned: np.ndarray  # (T, 2) frames with a planted (pinned) foot, L and R
    ik_shift_m: float  # largest distance an ankle was moved to hold a pin
    yaw: np.ndarray  # (3, 3) the turn about the vertical from our world onto the target's facing
    rest_joints: dict[str, np.ndarray]  # the target's joints at rest (target_joints), world


def _orthonormal(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    return u @ vt


def _frame(y: np.ndarray, zref: np.ndarray) -> np.ndarray:
    """Columns X, Y, Z with Y = y exactly and Z = zref made perpendicular."""
    Y = _unit(y)
    Z = _unit(_perp(zref, Y))
    return np.stack([np.cross(Y, Z), Y, Z], axis=-1)


def _yaw(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def target_joints(target: Target, bone_map: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """The target's joints at rest, world space, from the chains' heads and tails."""
    idx = target.index()
    heads, tails, _ = target.world_rest()
    first = {s: heads[idx[c[0]]] for s, c in bone_map.items() if c}
    last = {s: tails[idx[c[-1]]] for s, c in bone_map.items() if c}
    j: dict[str, np.ndarray] = {}
    for S in SIDES:
        j[f"hip.{S}"], j[f"knee.{S}"] = first[f"thigh.{S}"], first[f"shin.{S}"]
        j[f"ankle.{S}"] = first.get(f"foot.{S}", last[f"shin.{S}"])
        j[f"toe.{S}"] = last.get(f"foot.{S}", j[f"ankle.{S}"] + 0.25 * (j[f"ankle.{S}"] - j[f"knee.{S}"]))
        j[f"shoulder.{S}"], j[f"elbow.{S}"] = first[f"upper_arm.{S}"], first[f"forearm.{S}"]
        j[f"wrist.{S}"] = first.get(f"hand.{S}", last[f"forearm.{S}"])
        j[f"index.{S}"] = last.get(f"hand.{S}", j[f"wrist.{S}"] + 0.35 * (j[f"wrist.{S}"] - j[f"elbow.{S}"]))
    j["pelvis"] = 0.5 * (j["hip.L"] + j["hip.R"])
    j["thorax"] = 0.5 * (j["shoulder.L"] + j["shoulder.R"])
    j["spine_start"] = first["spine"]
    j["neck_start"] = first.get("neck", j["thorax"])
    up = _unit(j["thorax"] - j["pelvis"])
    j["ears"] = first.get("head", last.get("neck", j["thorax"] + 0.3 * (j["thorax"] - j["pelvis"])))
    j["head_top"] = last.get("head", j["ears"] + 0.12 * np.linalg.norm(j["thorax"] - j["pelvis"]) * up)
    return j


# Each slot's segment: (start, end) joint names on the target, (start, end) point names on ours.
def _segments() -> dict[str, tuple[str, str, str, str]]:
    seg = {"spine": ("spine_start", "thorax", "pelvis", "thorax"),
           "neck": ("neck_start", "ears", "thorax", "ears"), "head": ("ears", "head_top", "ears", "head_top")}
    for S in SIDES:
        s = _SIDE_NAME[S]
        seg[f"shoulder.{S}"] = ("thorax", f"shoulder.{S}", "thorax", f"{s}_shoulder")
        for limb, (a, b) in _LIMBS.items():
            seg[f"{limb}.{S}"] = (f"{a}.{S}", f"{b}.{S}", f"{s}_{a}", f"{s}_{b}")
    return seg


SEGMENTS = _segments()


def rest_frames(j: dict[str, np.ndarray], slots) -> dict[str, np.ndarray]:
    """The target's rest frame per slot (see the module doc), world space."""
    X = _unit(j["hip.L"] - j["hip.R"])
    Y = _unit(_perp(j["thorax"] - j["pelvis"], X))
    out = {"pelvis": np.stack([X, Y, np.cross(X, Y)], axis=-1)}
    forward, up = np.cross(X, Y), Y
    for slot in slots:
        if slot == "pelvis":
            continue
        a, b, _, _ = SEGMENTS[slot]
        ref = up if slot.startswith("foot") else forward
        out[slot] = _frame(j[b] - j[a], ref)
    return out


def finger_rest_frames(target: Target, bone_map: dict[str, list[str]], j: dict[str, np.ndarray],
                       ours: set[str]) -> dict[str, np.ndarray]:
    """The target's rest frame of each finger slot that both sides have (`ours`: the slots our
    result tracked), framed as scene/skeleton frames ours: Y along the chain, Z across the palm
    (index → little finger's knuckles) for the fingers, the back of the hand for the thumb. A hand
    whose index or little finger is not mapped gets none (its palm is unknown)."""
    idx = target.index()
    heads, tails, _ = target.world_rest()
    out = {}
    for S, sign in (("L", -1.0), ("R", 1.0)):
        base = {f: bone_map.get(f"{f}.01.{S}") for f, _ in skeleton.FINGERS}
        if not (base["f_index"] and base["f_pinky"]):
            continue
        index, pinky = heads[idx[base["f_index"][0]]], heads[idx[base["f_pinky"][0]]]
        middle = heads[idx[base["f_middle"][0]]] if base["f_middle"] else 0.5 * (index + pinky)
        along, across = middle - j[f"wrist.{S}"], index - pinky
        dorsal = _unit(sign * np.cross(along, across))
        for finger, _ in skeleton.FINGERS:
            for k in (1, 2, 3):
                slot = f"{finger}.0{k}.{S}"
                chain = bone_map.get(slot)
                if chain and slot in ours:
                    y = tails[idx[chain[-1]]] - heads[idx[chain[0]]]
                    out[slot] = _frame(y, dorsal if finger == "thumb" else _unit(across))
    return out


def leg_length(j: dict[str, np.ndarray]) -> float:
    return float(np.mean([np.linalg.norm(j[f"knee.{S}"] - j[f"hip.{S}"])
                          + np.linalg.norm(j[f"ankle.{S}"] - j[f"knee.{S}"]) for S in SIDES]))


def source_leg_length(pts: dict[str, np.ndarray]) -> float:
    lengths = []
    for s in ("left", "right"):
        for a, b in (("hip", "knee"), ("knee", "ankle")):
            d = np.linalg.norm(pts[f"{s}_{b}"] - pts[f"{s}_{a}"], axis=-1)
            lengths.append(np.nanmedian(d))
    return float(np.sum(lengths) / 2)


def solve(target: Target, bone_map: dict[str, list[str]], pts: dict[str, np.ndarray],
          planted: np.ndarray | None = None, fps: float = 30.0) -> Solution:
    """Per-frame world turns of the target's bones (see the module doc). `pts`: scene/skeleton's
    points (T, 3) in the scene's world; `planted`: (T, 4) heel.L, toe.L, heel.R, toe.R or None."""
    idx = target.index()
    B = len(target.names)
    heads, _, _ = target.world_rest()
    j = target_joints(target, bone_map)
    bones = skeleton.bones_for(pts)
    fingers = finger_rest_frames(target, bone_map, j, {b.name for b in bones})
    slots = [s for s in skeleton.BONE_NAMES if bone_map.get(s)]
    C = rest_frames(j, slots) | fingers
    forward = C["pelvis"][:, 2]
    yaw = _yaw(np.arctan2(forward[1], forward[0]) - np.arctan2(-1.0, 0.0))
    s = leg_length(j) / source_leg_length(pts)

    F = skeleton.steady_frames(pts, fps, bones)
    F = np.einsum("ij,tbjk->tbik", yaw, F)  # (T, B, 3, 3) ours, turned
    P = {k: v @ yaw.T for k, v in pts.items() if v.ndim == 2}
    T = F.shape[0]
    ours = {b.name: F[:, i] for i, b in enumerate(bones)}
    floor = min(j[f"{p}.{S}"][2] for p in ("ankle", "toe") for S in SIDES)
    # The character starts where it stands: our first hip position over its rest hips, on its floor.
    ok = np.flatnonzero(np.isfinite(P["pelvis"]).all(-1))
    first = P["pelvis"][ok[0]] if ok.size else np.zeros(3)
    anchor = np.array([j["pelvis"][0] - s * first[0], j["pelvis"][1] - s * first[1], floor])
    hipc = anchor + s * P["pelvis"]

    D: dict[str, np.ndarray] = {"pelvis": ours["pelvis"] @ C["pelvis"].T}
    start_of = {"spine": ("pelvis", "spine_start", "pelvis"), "neck": ("spine", "neck_start", "thorax")}
    src_start: dict[str, np.ndarray] = {}
    for slot in slots:
        if slot == "pelvis":
            continue
        frame = ours[slot]
        if slot in start_of:  # aim from the point that matches the chain's own start
            parent, tj, pj = start_of[slot]
            base = D.get(parent, D["pelvis"])
            ref_t = "pelvis" if parent == "pelvis" else "thorax"
            ref_p = P["pelvis"] if parent == "pelvis" else P["thorax"]
            start = ref_p + np.einsum("tij,j->ti", base, (j[tj] - j[ref_t]) / s)
            src_start[slot] = start
            # Aimed from that start while the chain's end lies well beyond it, along our bone;
            # where the end comes near the start or off to its side (Anny's neck starts 40 % of
            # the way up to the ears, and on cam02's holistic run a head bent down brought the
            # ears level with it: the aim swung 96-151 deg off our neck, the neck turned 131 deg in
            # a frame), handed over to our bone's own direction.
            own = P[SEGMENTS[slot][3]] - P[SEGMENTS[slot][2]]
            aim = P[SEGMENTS[slot][3]] - start
            ratio = np.linalg.norm(aim, axis=-1) / np.linalg.norm(own, axis=-1)
            off = np.degrees(np.arccos(np.clip(np.sum(_unit(aim) * _unit(own), -1), -1, 1)))
            w = np.minimum(np.clip((ratio - AIM_HANDOVER[0]) / (AIM_HANDOVER[1] - AIM_HANDOVER[0]), 0, 1),
                           np.clip((AIM_OFF_DEG[1] - off) / (AIM_OFF_DEG[1] - AIM_OFF_DEG[0]), 0, 1))
            w = np.nan_to_num(w)[:, None]
            # Our frame swung onto that direction (not rebuilt from the twist reference, which
            # a neck aimed forward can lie along).
            frame = _swing(frame[..., 1], _unit(w * _unit(aim) + (1 - w) * _unit(own))) @ frame
        D[slot] = frame @ C[slot].T

    for S in SIDES:  # nor a thigh about itself more than HIP_TWIST_LIMIT_DEG, relative to the pelvis
        if f"thigh.{S}" in D:
            rel = np.einsum("tji,tjk->tik", D["pelvis"], D[f"thigh.{S}"])
            rel = limit_twist(rel, C[f"thigh.{S}"][:, 1], HIP_TWIST_LIMIT_DEG)
            D[f"thigh.{S}"] = D["pelvis"] @ rel
    for S in SIDES:  # nor a shin about itself more than KNEE_TWIST_LIMIT_DEG, relative to the thigh
        if f"shin.{S}" in D and f"thigh.{S}" in D:
            rel = np.einsum("tji,tjk->tik", D[f"thigh.{S}"], D[f"shin.{S}"])
            rel = limit_twist(rel, C[f"shin.{S}"][:, 1], KNEE_TWIST_LIMIT_DEG)
            D[f"shin.{S}"] = D[f"thigh.{S}"] @ rel
    for S in SIDES:  # a foot never turns more than FOOT_TWIST_LIMIT_DEG about the shin
        if f"foot.{S}" in D and f"shin.{S}" in D:
            rel = np.einsum("tji,tjk->tik", D[f"shin.{S}"], D[f"foot.{S}"])
            rel = limit_twist(rel, C[f"shin.{S}"][:, 1], FOOT_TWIST_LIMIT_DEG)
            D[f"foot.{S}"] = D[f"shin.{S}"] @ rel

    for slot in fingers:  # a finger's chain turns onto ours, both framed by the hand's anatomy
        D[slot] = ours[slot] @ C[slot].T
    slots += list(fingers)

    pinned = np.zeros((T, 2), bool)
    shift = 0.0
    if planted is not None and all(bone_map.get(f"{x}.{S}") for x in ("thigh", "shin") for S in SIDES):
        shift, hipc = _plant(D, j, hipc, planted, fps, pinned)

    delta = np.empty((T, B, 3, 3))
    slot_of = {b: slot for slot, chain in bone_map.items() for b in chain}
    eye = np.broadcast_to(np.eye(3), (T, 3, 3))
    for i, name in enumerate(target.names):
        if name in slot_of and slot_of[name] in D:
            delta[:, i] = D[slot_of[name]]
        elif target.parents[i] >= 0:
            delta[:, i] = delta[:, target.parents[i]]
        else:
            delta[:, i] = eye
    root = idx[bone_map["pelvis"][0]]
    root_head = hipc + np.einsum("tij,j->ti", D["pelvis"], heads[root] - j["pelvis"])
    keyed = sorted({idx[b] for slot in slots for b in bone_map[slot]})
    solved = _joints(D, j, hipc)
    return Solution(delta, root, root_head, keyed, solved, s, pinned, shift, yaw, j)


def _joints(D: dict[str, np.ndarray], j: dict[str, np.ndarray], hipc: np.ndarray) -> dict[str, np.ndarray]:
    """Where the solved chains put the target's limb joints (each limb hangs off the hips or the
    shoulder line, which the trunk chains carry)."""
    def turn(slot, v):
        return np.einsum("tij,j->ti", D[slot], v)

    out = {"pelvis": hipc}
    spine_start = hipc + turn("pelvis", j["spine_start"] - j["pelvis"])
    out["thorax"] = spine_start + turn("spine", j["thorax"] - j["spine_start"])
    for S in SIDES:
        out[f"hip.{S}"] = hipc + turn("pelvis", j[f"hip.{S}"] - j["pelvis"])
        out[f"knee.{S}"] = out[f"hip.{S}"] + turn(f"thigh.{S}", j[f"knee.{S}"] - j[f"hip.{S}"])
        out[f"ankle.{S}"] = out[f"knee.{S}"] + turn(f"shin.{S}", j[f"ankle.{S}"] - j[f"knee.{S}"])
        if f"foot.{S}" in D:
            out[f"toe.{S}"] = out[f"ankle.{S}"] + turn(f"foot.{S}", j[f"toe.{S}"] - j[f"ankle.{S}"])
        base = f"shoulder.{S}" if f"shoulder.{S}" in D else "spine"
        origin = "thorax" if base.startswith("shoulder") else "spine_start"
        start = out["thorax"] if origin == "thorax" else spine_start
        out[f"shoulder.{S}"] = start + turn(base, j[f"shoulder.{S}"] - j[origin])
        out[f"elbow.{S}"] = out[f"shoulder.{S}"] + turn(f"upper_arm.{S}",
                                                        j[f"elbow.{S}"] - j[f"shoulder.{S}"])
        out[f"wrist.{S}"] = out[f"elbow.{S}"] + turn(f"forearm.{S}", j[f"wrist.{S}"] - j[f"elbow.{S}"])
    return out


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 3, 3) the shortest rotation taking unit vectors a onto b (Rodrigues)."""
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    K = np.zeros(a.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    K = K - np.swapaxes(K, -1, -2)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(c > -0.999999, 1.0 / (1.0 + c), 0.0)
    return np.eye(3) + K + (K @ K) * f[..., None, None]


def _pin_offsets(fk, planted, fps, pinned) -> dict[str, np.ndarray]:
    """Per side, (T, 3) the shift that holds each planted run's contact point (heel → ankle, else
    toe) where the foot has it on average over the run, easing to 0 over EASE_S outside the runs."""
    T = fk["pelvis"].shape[0]
    ease = max(1, int(round(EASE_S * fps)))
    out = {}
    for k, S in enumerate(SIDES):
        heel, toe = planted[:T, 2 * k].astype(bool), planted[:T, 2 * k + 1].astype(bool)
        ankle = fk[f"ankle.{S}"]
        toe_p = fk.get(f"toe.{S}", ankle)
        offset = np.zeros((T, 3))
        held = np.zeros(T, bool)
        contact = np.where(heel, 1, np.where(toe, 2, 0))
        for kind in (1, 2):
            point = ankle if kind == 1 else toe_p
            for a, b in runs(contact == kind):
                offset[a:b] = np.nanmean(point[a:b], axis=0) - point[a:b]
                held[a:b] = True
                pinned[a:b, k] = True
        if held.any():
            for a, b in runs(~held):
                for t in range(a, b):
                    cands = [(t - a + 1, offset[a - 1])] if a > 0 else []
                    cands += [(b - t, offset[b])] if b < T else []
                    w = [(max(0.0, 1 - d / (ease + 1)), o) for d, o in cands]
                    tot = sum(x for x, _ in w)
                    if tot > 0:
                        offset[t] = sum(x * o for x, o in w) / max(1.0, tot)
        out[S] = np.nan_to_num(offset)
    return out


def _plant(D, j, hipc, planted, fps, pinned) -> tuple[float, np.ndarray]:
    """Pin planted feet (see the module doc): the up-down part of the pins that the feet share goes
    to the hips (a knee near straight would otherwise bend a lot for a centimetre), the rest to an
    analytic two-bone IK on each leg, which turns the thigh and shin chains in D. Returns (the
    largest ankle shift, the hip centre path)."""
    offsets = _pin_offsets(_joints(D, j, hipc), planted, fps, pinned)
    active = np.stack([np.abs(offsets[S]).sum(-1) > 0 for S in SIDES])
    dz = np.stack([offsets[S][:, 2] for S in SIDES]).sum(0) / np.maximum(active.sum(0), 1)
    hipc = hipc + dz[:, None] * np.array([0, 0, 1.0])
    fk = _joints(D, j, hipc)
    worst = 0.0
    for S in SIDES:
        offset = offsets[S]
        offset[:, 2] -= np.where(active[SIDES.index(S)], dz, 0.0)
        ankle, hip, knee = fk[f"ankle.{S}"], fk[f"hip.{S}"], fk[f"knee.{S}"]
        goal = ankle + offset
        L1 = np.linalg.norm(j[f"knee.{S}"] - j[f"hip.{S}"])
        L2 = np.linalg.norm(j[f"ankle.{S}"] - j[f"knee.{S}"])
        d = np.clip(np.linalg.norm(goal - hip, axis=-1), abs(L1 - L2) + 1e-4, (L1 + L2) * 0.9999)
        u = _unit(goal - hip)
        bend = _unit(_perp(knee - hip, u))
        forward = np.cross(j["hip.L"] - j["hip.R"], j["thorax"] - j["pelvis"])
        fallback = _unit(_perp(np.einsum("tij,j->ti", D["pelvis"], forward), u))
        bad = ~np.isfinite(bend).all(-1) | (np.linalg.norm(_perp(knee - hip, u), axis=-1) < 1e-6)
        bend = np.where(bad[:, None], fallback, bend)
        cos_a = np.clip((L1 ** 2 + d ** 2 - L2 ** 2) / (2 * L1 * d), -1, 1)
        new_knee = hip + L1 * (cos_a[:, None] * u + np.sqrt(1 - cos_a ** 2)[:, None] * bend)
        new_ankle = hip + d[:, None] * u
        move = np.isfinite(new_knee).all(-1) & (np.abs(offset).sum(-1) > 0)
        for slot, a0, a1, b0, b1 in ((f"thigh.{S}", hip, knee, hip, new_knee),
                                     (f"shin.{S}", knee, ankle, new_knee, new_ankle)):
            R = _swing(_unit(a1 - a0), _unit(b1 - b0))
            D[slot] = np.where(move[:, None, None], R @ D[slot], D[slot])
        worst = max(worst, float(np.nanmax(np.linalg.norm(offset, axis=-1), initial=0.0)))
    return worst, hipc


def local_rotations(target: Target, sol: Solution) -> tuple[np.ndarray, np.ndarray]:
    """Pose-bone rotation matrices (T, K, 3, 3) of the keyed bones and the root's pose location
    (T, 3), for a rig whose keyed bones follow their parents plainly (no constraints between).

    Armature space: A = Qᵀ D Q with Q the object's rotation; a bone with rest rotation R and
    parent turn A_p has basis Rᵀ A_pᵀ A R (Blender: pose = parent_pose · R_pᵀR · basis)."""
    Q = _orthonormal(target.world[:3, :3])
    R = _orthonormal(target.rest[:, :3, :3])
    out = np.empty((sol.delta.shape[0], len(sol.keyed), 3, 3))
    for k, b in enumerate(sol.keyed):
        p = target.parents[b]
        rel = sol.delta[:, b] if p < 0 else np.swapaxes(sol.delta[:, p], -1, -2) @ sol.delta[:, b]
        out[:, k] = (R[b].T @ Q.T) @ rel @ (Q @ R[b])  # Qᵀ·D_pᵀD_b·Q in armature space
    Minv = np.linalg.inv(target.world)
    head_a = sol.root_head @ Minv[:3, :3].T + Minv[:3, 3]
    loc = (head_a - target.rest[sol.root, :3, 3]) @ _orthonormal(target.rest[sol.root, :3, :3])
    # Bone space is scaled with the bone's matrix_local (1 for rigs without scaled rest bones).
    return out, loc


def armature_matrices(target: Target, sol: Solution) -> np.ndarray:
    """(T, K, 4, 4) the keyed bones' wanted pose matrices in armature space (rotation; the root's
    head; other bones' translations are left for the rig to place)."""
    Q = _orthonormal(target.world[:3, :3])
    R = _orthonormal(target.rest[:, :3, :3])
    A = Q.T @ sol.delta @ Q
    T, K = A.shape[0], len(sol.keyed)
    out = np.zeros((T, K, 4, 4))
    out[..., 3, 3] = 1.0
    for k, b in enumerate(sol.keyed):
        out[:, k, :3, :3] = A[:, b] @ R[b]
    Minv = np.linalg.inv(target.world)
    head_a = sol.root_head @ Minv[:3, :3].T + Minv[:3, 3]
    out[:, sol.keyed.index(sol.root), :3, 3] = head_a
    return out
