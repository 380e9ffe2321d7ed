"""Target rigs for the retarget's tests and benchmark, built in Blender from code: a Rigify rig
generated from Blender's bundled human metarig, a Mixamo-named rig with other proportions, an A-pose
rest, odd bone rolls and the axes and centimetres of a Mixamo FBX import, and Anny's rig as
scene/mesh.py builds it (needs the anny package)."""

from __future__ import annotations

import math

import numpy as np


def rigify_rig(name: str = "rig"):
    """Enable the bundled rigify add-on, add the human metarig, generate; the metarig is removed."""
    import addon_utils
    import bpy

    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    meta = bpy.context.view_layer.objects.active
    bpy.ops.pose.rigify_generate()
    rig = bpy.context.view_layer.objects.active
    rig.name = name
    bpy.ops.object.mode_set(mode="OBJECT")
    meta_data = meta.data
    bpy.data.objects.remove(meta)
    bpy.data.armatures.remove(meta_data)
    return rig


def _mixamo_points(height: float, arm_down_deg: float) -> dict[str, tuple]:
    """Bone name → (parent, head, tail) in metres, Z up, facing -Y, feet on z = 0."""
    h = height / 1.72  # proportions below are for 1.72 m, then scaled
    hip = np.array([0, 0.0, 0.95]) * h
    pts: dict[str, tuple[str | None, np.ndarray, np.ndarray]] = {}
    up = np.array([0, 0, 1.0])

    def add(name, parent, head, tail):
        pts[name] = (parent, np.asarray(head, float), np.asarray(tail, float))

    add("Hips", None, hip, hip + 0.10 * h * up)
    add("Spine", "Hips", hip + 0.10 * h * up, hip + 0.22 * h * up)
    add("Spine1", "Spine", hip + 0.22 * h * up, hip + 0.34 * h * up)
    add("Spine2", "Spine1", hip + 0.34 * h * up, hip + 0.47 * h * up)
    neck = hip + np.array([0, 0.02, 0.52]) * h
    add("Neck", "Spine2", hip + 0.47 * h * up, neck + np.array([0, 0, 0.06]) * h)
    head = neck + np.array([0, 0, 0.06]) * h
    add("Head", "Neck", head, head + 0.20 * h * up)
    add("HeadTop_End", "Head", head + 0.20 * h * up, head + 0.26 * h * up)
    a = math.radians(arm_down_deg)
    for side, sx in (("Left", 1.0), ("Right", -1.0)):
        sh = hip + np.array([sx * 0.19, 0, 0.47]) * h
        add(f"{side}Shoulder", "Spine2", hip + np.array([sx * 0.03, 0, 0.45]) * h, sh)
        arm_dir = np.array([sx * math.cos(a), 0, -math.sin(a)])
        elbow = sh + 0.30 * h * arm_dir  # longer upper arms than the subject's
        wrist = elbow + 0.27 * h * arm_dir
        add(f"{side}Arm", f"{side}Shoulder", sh, elbow)
        add(f"{side}ForeArm", f"{side}Arm", elbow, wrist)
        add(f"{side}Hand", f"{side}ForeArm", wrist, wrist + 0.08 * h * arm_dir)
        for finger, off in (("Thumb", -0.035), ("Index", -0.02), ("Middle", 0.0), ("Ring", 0.02),
                            ("Pinky", 0.035)):
            base = wrist + 0.08 * h * arm_dir + np.array([0, off, 0]) * h
            parent = f"{side}Hand"
            for k in range(1, 5):  # Mixamo's 4th is the finger's end
                tip = base + 0.025 * h * arm_dir
                add(f"{side}Hand{finger}{k}", parent, base, tip)
                parent, base = f"{side}Hand{finger}{k}", tip
        hj = hip + np.array([sx * 0.09, 0, -0.04]) * h
        knee = hj + np.array([0, -0.01, -0.42]) * h  # shorter thighs
        ankle = np.array([hj[0], 0.0, 0.085 * h])
        toe = ankle + np.array([0, -0.12, -0.06]) * h
        add(f"{side}UpLeg", "Hips", hj, knee)
        add(f"{side}Leg", f"{side}UpLeg", knee, ankle)
        add(f"{side}Foot", f"{side}Leg", ankle, toe)
        add(f"{side}ToeBase", f"{side}Foot", toe, toe + np.array([0, -0.05, -0.015]) * h)
        add(f"{side}Toe_End", f"{side}ToeBase", toe + np.array([0, -0.05, -0.015]) * h,
            toe + np.array([0, -0.07, -0.015]) * h)
    return pts


def mixamo_rig(name: str = "Character", height: float = 1.60, arm_down_deg: float = 45.0,
               prefix: str = "mixamorig:", location=(1.5, 0.0, 0.0), names: dict[str, str] | None = None):
    """A Mixamo-named rig as an FBX import leaves it: the object turned 90 deg about X with scale
    0.01 (bones in centimetres, Y up), an A-pose (arms `arm_down_deg` below horizontal), odd rolls.
    `names`: rename bones (Mixamo name → name) for other naming schemes; `prefix` is added to all."""
    import bpy
    from mathutils import Matrix, Vector

    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    turn = Matrix.Rotation(math.pi / 2, 4, "X")
    obj.matrix_world = Matrix.Translation(location) @ turn @ Matrix.Scale(0.01, 4)
    inv = np.array(obj.matrix_world.inverted())
    to_arm = lambda p: inv[:3, :3] @ p + inv[:3, 3]  # noqa: E731
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    rename = names or {}
    ebs = {}
    for i, (bone, (parent, head, tail)) in enumerate(_mixamo_points(height, arm_down_deg).items()):
        eb = data.edit_bones.new(prefix + rename.get(bone, bone))
        eb.head, eb.tail = Vector(to_arm(head)), Vector(to_arm(tail))
        eb.roll = math.radians(37.0 * i % 360)  # rolls that follow no convention
        if parent:
            eb.parent = ebs[parent]
        ebs[bone] = eb
    bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = previous
    return obj


def anny_rig(name: str = "Anny", location=(-1.5, 0.0, 0.0)):
    """Anny's rig (104 bones, A-pose) as scene/mesh.py builds it, standing on z = 0."""
    import bpy
    import torch
    from humanpose3d.engine import anny_fit
    from humanpose3d.scene import mesh

    body = anny_fit.load_body("cpu")
    with torch.no_grad():
        rest = body.rest_state(body.default_phenotype(), torch.zeros(1, len(body.local_labels)))
    P = rest["P"].numpy().astype(np.float64).copy()
    P[:, :3, 3] += np.asarray(location) - np.array([0, 0, P[:, 2, 3].min() - 0.02])
    return mesh._build_rig(name, list(body.bones), np.array(body.parents), P, bpy.context.scene.collection)


# --- figures ----------------------------------------------------------------------------------------

JOINTS = ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
# Where each joint sits on a map's chains: (slot, "head" of its first bone | "tail" of its last).
_JOINT_AT = {"hip": ("thigh", "head"), "knee": ("shin", "head"), "ankle": ("shin", "tail"),
             "shoulder": ("upper_arm", "head"), "elbow": ("forearm", "head"), "wrist": ("forearm", "tail"),
             "toe": ("foot", "tail")}
_OURS = {"hip": "hip", "knee": "knee", "ankle": "ankle", "shoulder": "shoulder", "elbow": "elbow",
         "wrist": "wrist", "toe": "toe"}


def evaluated_points(obj, measure_map: dict[str, list[str]], frames) -> dict[str, np.ndarray]:
    """(F, 3) world position of each joint (JOINTS + toe, per side) of `obj` as Blender evaluates it,
    and (F, B, 3, 3) every bone's world rotation under "rot"."""
    import bpy

    scene = bpy.context.scene
    out: dict[str, list] = {}
    rots = []
    n = len(obj.pose.bones)
    for f in frames:
        scene.frame_set(int(f))
        M = np.array(obj.matrix_world)
        buf = np.empty(n * 16, np.float32)
        obj.pose.bones.foreach_get("matrix", buf)
        mats = buf.reshape(n, 4, 4).transpose(0, 2, 1)  # Blender's flat matrices are column-major
        rots.append(M[:3, :3] @ mats[:, :3, :3])
        for side in "LR":
            for joint, (slot, end) in _JOINT_AT.items():
                chain = measure_map.get(f"{slot}.{side}")
                if not chain:
                    continue
                pb = obj.pose.bones[chain[0] if end == "head" else chain[-1]]
                p = np.array(pb.head if end == "head" else pb.tail)
                out.setdefault(f"{joint}.{side}", []).append(M[:3, :3] @ p + M[:3, 3])
    res = {k: np.array(v) for k, v in out.items()}
    R = np.array(rots)
    res["rot"] = R / np.linalg.norm(R, axis=-2, keepdims=True)
    return res


def _angle(a, b, c) -> np.ndarray:
    u, v = a - b, c - b
    cos = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _chain_reference(pts, sol, s) -> dict[str, np.ndarray]:
    """Where the target's joints should be: its hip centre where ours is (scaled by s about the
    anchor), then each of its own segments (rest lengths) along our segment's direction."""
    j0 = sol.rest_joints

    def unit(v):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    def length(a, b):
        return float(np.linalg.norm(j0[b] - j0[a]))

    def step(a: str, b: str, pa: str, pb: str) -> np.ndarray:
        return out[a] + length(a, b) * unit(pts[pb] - pts[pa])

    out = {"pelvis": sol.joints["pelvis"]}
    out["thorax"] = step("pelvis", "thorax", "pelvis", "thorax")
    for S, w in (("L", "left"), ("R", "right")):
        out[f"hip.{S}"] = step("pelvis", f"hip.{S}", "pelvis", f"{w}_hip")
        out[f"shoulder.{S}"] = step("thorax", f"shoulder.{S}", "thorax", f"{w}_shoulder")
        for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist")):
            out[f"{b}.{S}"] = step(f"{a}.{S}", f"{b}.{S}", f"{w}_{a}", f"{w}_{b}")
    return out


def figures(obj, measure_map, report: dict, source) -> dict[str, float]:
    """The retarget's figures for target `obj` (keyed by scene.retarget.retarget → `report`) against
    `source` (scene.retarget.Source):
    - pos_cm: joint position error (median over frames and the 12 joints, cm) against our motion laid
      on the target's proportions: its hip centre where ours is, scaled by the hip-height ratio s,
      then each of its segments along ours (_chain_reference); pos_abs_cm: against our joints simply
      scaled by s (this includes every difference in proportions, so it cannot reach 0);
    - flex_deg: knee and elbow flexion difference (median, deg; p95 too);
    - plant_ratio: planted-foot speed over the source's (the target's divided by s);
    - max_turn_deg: the largest turn of any bone between two frames."""
    sol = report["solution"]
    frames = source.frames
    ev = evaluated_points(obj, measure_map, frames)
    s, yaw = sol.scale, sol.yaw
    pts = {k: v @ yaw.T for k, v in source.pts.items()}
    src_hipc = pts["pelvis"]
    errs, abs_errs = [], []
    per_joint = {}
    ref = _chain_reference(pts, sol, s)
    for side, word in (("L", "left"), ("R", "right")):
        for j in JOINTS:
            e = np.linalg.norm(ev[f"{j}.{side}"] - ref[f"{j}.{side}"], axis=-1)
            errs.append(e)
            per_joint[f"{j}.{side}"] = float(np.nanmedian(e) * 100)
            want = sol.joints["pelvis"] + s * (pts[f"{word}_{_OURS[j]}"] - src_hipc)
            abs_errs.append(np.linalg.norm(ev[f"{j}.{side}"] - want, axis=-1))
    pos_cm = float(np.nanmedian(np.concatenate(errs)) * 100)
    flex = []
    for side, word in (("L", "left"), ("R", "right")):
        for a, b, c in (("hip", "knee", "ankle"), ("shoulder", "elbow", "wrist")):
            tgt = _angle(ev[f"{a}.{side}"], ev[f"{b}.{side}"], ev[f"{c}.{side}"])
            ours = _angle(pts[f"{word}_{a}"], pts[f"{word}_{b}"], pts[f"{word}_{c}"])
            flex.append(np.abs(tgt - ours))
    flex = np.concatenate(flex)
    speed_src, speed_tgt = [], []
    if source.planted is not None:
        dt = 1.0 / source.fps
        for k, (side, word) in enumerate((("L", "left"), ("R", "right"))):
            for col, marker, joint in ((2 * k, "heel", "ankle"), (2 * k + 1, "toe", "toe")):
                if f"{joint}.{side}" not in ev:
                    continue
                p = source.planted[:, col]
                both = p[1:] & p[:-1]
                if col == 2 * k + 1:  # toe samples with the heel planted too are counted with the heel
                    both &= ~(source.planted[1:, 2 * k] & source.planted[:-1, 2 * k])
                vs = np.linalg.norm(np.diff(pts[f"{word}_{marker}"], axis=0), axis=-1) / dt
                vt = np.linalg.norm(np.diff(ev[f"{joint}.{side}"], axis=0), axis=-1) / dt / s
                speed_src.append(vs[both])
                speed_tgt.append(vt[both])
    src_speed = float(np.nanmean(np.concatenate(speed_src))) if speed_src else float("nan")
    tgt_speed = float(np.nanmean(np.concatenate(speed_tgt))) if speed_tgt else float("nan")
    R = ev["rot"]
    rel = np.einsum("tbji,tbjk->tbik", R[:-1], R[1:])
    turn = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))
    return {"pos_cm": pos_cm, "pos_p95_cm": float(np.nanpercentile(np.concatenate(errs), 95) * 100),
            "pos_abs_cm": float(np.nanmedian(np.concatenate(abs_errs)) * 100),
            "flex_deg": float(np.nanmedian(flex)), "flex_p95_deg": float(np.nanpercentile(flex, 95)),
            "plant_src_mps": src_speed, "plant_tgt_mps": tgt_speed, "plant_ratio": tgt_speed / src_speed,
            "max_turn_deg": float(np.nanmax(turn)), "per_joint_cm": per_joint}
