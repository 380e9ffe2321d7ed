"""SMPL-24 joints in NLF's `joints3d_nonparam` convention, placed from MediaPipe-33 markers.

NLF (isarandi/nlf, the 3D pose model SCAIL conditions on) predicts the 24 SMPL skeleton joints
directly ("nonparametric" joints, not regressed from a fitted mesh), in the camera frame with
OpenCV axes and in millimetres (SCAIL-Pose renders them with a 21.5 radius and a 6000-unit depth
margin, and renders metric PromptHMR joints with radius 0.0215 instead: see engine/capsule_render.py).

SMPL's joints are not MediaPipe's landmarks: its hip joints sit close together inside the pelvis,
its pelvis joint lies above the hip line, its head joint is at the skull base, its foot joint at the
ball of the foot. The fractions below come from SMPL's neutral rest-pose joint offsets (the table
EDGE and AtomicDance publish: hips ±0.059 m apart and 0.086 m below the pelvis; spine1/2/3, neck,
head 0.124, 0.262, 0.318, 0.530, 0.619 m above it; shoulders 0.478 m; collars 0.431 m and 40 % of
the way out to the shoulders; foot joint 0.139 m from the ankle; hand joint ≈ 0.087 m from the
wrist), set against MediaPipe measured on Pose2Sim's demo (hip landmarks 0.225 m apart, shoulders
0.375 m, hip-to-shoulder centre 0.547 m against SMPL's 0.564 m, ears 0.168 m from the shoulder
centre, ankle to toe tip 0.172 m, wrist to index knuckle 0.080 m). Everything is expressed along
the subject's own segments, so it follows any pose and body size; forward/backward offsets of a few
centimetres along the spine are left out because one camera does not give a reliable body frame.
"""

from __future__ import annotations

import numpy as np

from .joint_sets import MP, SMPL_24

# Heights along the trunk (hip-line centre → shoulder centre = 1) of SMPL's axial joints.
_TRUNK = 0.086 + 0.478  # SMPL: hip line to shoulder line, metres
PELVIS_UP = 0.086 / _TRUNK
SPINE_UP = tuple((0.086 + h) / _TRUNK for h in (0.124, 0.262, 0.318))
NECK_UP = (0.086 + 0.530) / _TRUNK
COLLAR_UP = (0.086 + 0.431) / _TRUNK
COLLAR_OUT = 0.40  # fraction of the way from the shoulder centre to each shoulder
HIP_OUT = 0.119 / 0.225  # SMPL hip-joint spacing over MediaPipe's hip-landmark spacing
HEAD_ALONG = 0.141 / 0.168  # shoulder centre → ear centre
FOOT_ALONG = 0.139 / 0.172  # ankle → toe tip
HAND_ALONG = 1.1  # wrist → centre of the index and pinky knuckles

SMPL = {name: i for i, name in enumerate(SMPL_24)}


def mediapipe_to_smpl24(points: np.ndarray) -> np.ndarray:
    """MediaPipe-33 (…, 33, 3) → SMPL-24 (…, 24, 3) in the same frame and units; NaN propagates
    from the landmarks each joint is built from."""
    p = np.asarray(points, dtype=np.float64)
    g = lambda name: p[..., MP[name], :]  # noqa: E731
    lerp = lambda a, b, t: a + (b - a) * t  # noqa: E731
    lh, rh, ls, rs = g("left_hip"), g("right_hip"), g("left_shoulder"), g("right_shoulder")
    hip_mid, thorax = 0.5 * (lh + rh), 0.5 * (ls + rs)
    up = thorax - hip_mid
    ears = 0.5 * (g("left_ear") + g("right_ear"))
    collar_base = hip_mid + COLLAR_UP * up
    out = np.empty(p.shape[:-2] + (24, 3))
    j = lambda name: out[..., SMPL[name], :]  # noqa: E731
    j("pelvis")[:] = hip_mid + PELVIS_UP * up
    j("left_hip")[:] = lerp(hip_mid, lh, HIP_OUT)
    j("right_hip")[:] = lerp(hip_mid, rh, HIP_OUT)
    for name, frac in zip(("spine1", "spine2", "spine3"), SPINE_UP):
        j(name)[:] = hip_mid + frac * up
    j("neck")[:] = hip_mid + NECK_UP * up
    j("head")[:] = lerp(thorax, ears, HEAD_ALONG)
    j("left_collar")[:] = collar_base + COLLAR_OUT * (ls - thorax)
    j("right_collar")[:] = collar_base + COLLAR_OUT * (rs - thorax)
    for side in ("left", "right"):
        for name in ("knee", "ankle", "shoulder", "elbow", "wrist"):
            j(f"{side}_{name}")[:] = g(f"{side}_{name}")
        j(f"{side}_foot")[:] = lerp(g(f"{side}_ankle"), g(f"{side}_foot_index"), FOOT_ALONG)
        knuckles = 0.5 * (g(f"{side}_index") + g(f"{side}_pinky"))
        j(f"{side}_hand")[:] = lerp(g(f"{side}_wrist"), knuckles, HAND_ALONG)
    return out
