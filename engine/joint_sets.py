"""Named joint tables and the mappings between them, defined once for the whole engine."""

from __future__ import annotations

import numpy as np

MEDIAPIPE_33: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
MP = {name: i for i, name in enumerate(MEDIAPIPE_33)}



def _partner(name: str) -> str:
    """The other side's landmark name ("left_eye" ↔ "right_eye", "mouth_left" ↔ "mouth_right")."""
    for a, b in (("left", "right"), ("right", "left")):
        if a in name.split("_"):
            return "_".join(b if part == a else part for part in name.split("_"))
    return name


# Left/right partner of every MediaPipe landmark (centre landmarks map to themselves).
MP_MIRROR: np.ndarray = np.array([MP[_partner(n)] for n in MEDIAPIPE_33])
MP_LEFT = np.array([i for i, n in enumerate(MEDIAPIPE_33) if "left" in n.split("_")])
MP_RIGHT = MP_MIRROR[MP_LEFT]

# Pose2Sim's 22-marker body set (its HALPE_26 skeleton, Markers_Halpe26.xml in OpenSim_Setup):
# the markers the LSTM augmenter and Pose2Sim's OpenSim model read.
POSE2SIM_22: tuple[str, ...] = (
    "Hip", "RHip", "RKnee", "RAnkle", "RBigToe", "RSmallToe", "RHeel",
    "LHip", "LKnee", "LAnkle", "LBigToe", "LSmallToe", "LHeel",
    "Neck", "Head", "Nose",
    "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
)

COCO_17: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
# COCO-17 keypoints are a subset of MediaPipe-33 with the same names.
MP_TO_COCO17: np.ndarray = np.array([MP[n] for n in COCO_17])

H36M_17: tuple[str, ...] = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "neck_nose", "head", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)

# SMPL's joints; engine/smpl24.py maps MediaPipe-33 onto them.
SMPL_24: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)

# Kinematic tree over MediaPipe-33 used to hold bone lengths: (parent, child). The pelvis centre
# and shoulder centre are virtual joints (index -1 / -2) resolved by `bone_endpoints`.
PELVIS, THORAX = -1, -2
MP_TREE: tuple[tuple[int, int], ...] = (
    (PELVIS, MP["left_hip"]), (PELVIS, MP["right_hip"]), (PELVIS, THORAX),
    (THORAX, MP["left_shoulder"]), (THORAX, MP["right_shoulder"]), (THORAX, MP["nose"]),
    (MP["left_hip"], MP["left_knee"]), (MP["left_knee"], MP["left_ankle"]),
    (MP["left_ankle"], MP["left_heel"]), (MP["left_ankle"], MP["left_foot_index"]),
    (MP["right_hip"], MP["right_knee"]), (MP["right_knee"], MP["right_ankle"]),
    (MP["right_ankle"], MP["right_heel"]), (MP["right_ankle"], MP["right_foot_index"]),
    (MP["left_shoulder"], MP["left_elbow"]), (MP["left_elbow"], MP["left_wrist"]),
    (MP["left_wrist"], MP["left_pinky"]), (MP["left_wrist"], MP["left_index"]),
    (MP["left_wrist"], MP["left_thumb"]),
    (MP["right_shoulder"], MP["right_elbow"]), (MP["right_elbow"], MP["right_wrist"]),
    (MP["right_wrist"], MP["right_pinky"]), (MP["right_wrist"], MP["right_index"]),
    (MP["right_wrist"], MP["right_thumb"]),
)

# Head landmarks ride rigidly on the nose: they keep their offset from it.
MP_FACE = np.array([MP[n] for n in MEDIAPIPE_33[1:11]])

# Limb bones reported in bone-length statistics.
MP_LIMB_BONES: dict[str, tuple[int, int]] = {
    "left_thigh": (MP["left_hip"], MP["left_knee"]),
    "right_thigh": (MP["right_hip"], MP["right_knee"]),
    "left_shank": (MP["left_knee"], MP["left_ankle"]),
    "right_shank": (MP["right_knee"], MP["right_ankle"]),
    "left_upper_arm": (MP["left_shoulder"], MP["left_elbow"]),
    "right_upper_arm": (MP["right_shoulder"], MP["right_elbow"]),
    "left_forearm": (MP["left_elbow"], MP["left_wrist"]),
    "right_forearm": (MP["right_elbow"], MP["right_wrist"]),
}


def with_virtual(points: np.ndarray) -> np.ndarray:
    """Append the pelvis and thorax centres so indices -1 and -2 of MP_TREE resolve."""
    pelvis = 0.5 * (points[..., MP["left_hip"], :] + points[..., MP["right_hip"], :])
    thorax = 0.5 * (points[..., MP["left_shoulder"], :] + points[..., MP["right_shoulder"], :])
    return np.concatenate([points, thorax[..., None, :], pelvis[..., None, :]], axis=-2)


def mediapipe_to_h36m(points: np.ndarray) -> np.ndarray:
    """MediaPipe-33 (…, 33, D) → H36M-17 (…, 17, D), deriving pelvis, spine, thorax and head."""
    p = points
    pelvis = 0.5 * (p[..., MP["left_hip"], :] + p[..., MP["right_hip"], :])
    thorax = 0.5 * (p[..., MP["left_shoulder"], :] + p[..., MP["right_shoulder"], :])
    ears = 0.5 * (p[..., MP["left_ear"], :] + p[..., MP["right_ear"], :])
    out = np.stack([
        pelvis, p[..., MP["right_hip"], :], p[..., MP["right_knee"], :], p[..., MP["right_ankle"], :],
        p[..., MP["left_hip"], :], p[..., MP["left_knee"], :], p[..., MP["left_ankle"], :],
        0.5 * (pelvis + thorax), thorax, p[..., MP["nose"], :], ears + 0.5 * (ears - thorax) * 0.5,
        p[..., MP["left_shoulder"], :], p[..., MP["left_elbow"], :], p[..., MP["left_wrist"], :],
        p[..., MP["right_shoulder"], :], p[..., MP["right_elbow"], :], p[..., MP["right_wrist"], :],
    ], axis=-2)
    return out


# The 43 anatomical markers Pose2Sim's LSTM augmenter (OpenCap's, v0.3) adds to POSE2SIM_22:
# lower-body model first, then upper-body model, each in the model's own output order.
OPENCAP_LOWER_35: tuple[str, ...] = (
    "r.ASIS_study", "L.ASIS_study", "r.PSIS_study", "L.PSIS_study", "r_knee_study", "r_mknee_study",
    "r_ankle_study", "r_mankle_study", "r_toe_study", "r_5meta_study", "r_calc_study", "L_knee_study",
    "L_mknee_study", "L_ankle_study", "L_mankle_study", "L_toe_study", "L_calc_study", "L_5meta_study",
    "r_shoulder_study", "L_shoulder_study", "C7_study", "r_thigh1_study", "r_thigh2_study",
    "r_thigh3_study", "L_thigh1_study", "L_thigh2_study", "L_thigh3_study", "r_sh1_study", "r_sh2_study",
    "r_sh3_study", "L_sh1_study", "L_sh2_study", "L_sh3_study", "RHJC_study", "LHJC_study",
)
OPENCAP_UPPER_8: tuple[str, ...] = (
    "r_lelbow_study", "r_melbow_study", "r_lwrist_study", "r_mwrist_study",
    "L_lelbow_study", "L_melbow_study", "L_lwrist_study", "L_mwrist_study",
)
OPENCAP_43: tuple[str, ...] = OPENCAP_LOWER_35 + OPENCAP_UPPER_8
# Every marker of <stem>_final.trc: the video markers, then the augmented ones.
FINAL_65: tuple[str, ...] = POSE2SIM_22 + OPENCAP_43


def _mhr_hand(side: str) -> tuple[str, ...]:
    # Per finger from the tip inwards; the "third joint" is the knuckle nearest the wrist (the
    # thumb's is its carpometacarpal joint).
    return tuple(f"{side}_{finger}_{joint}" for finger in ("thumb", "index", "middle", "ring", "pinky")
                 for joint in ("tip", "first_joint", "second_joint", "third_joint")) + (f"{side}_wrist",)


# SAM 3D Body's 70 keypoints (the first 70 of MHR's 308; sam_3d_body/metadata/mhr70.py), in order.
MHR_70: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "left_big_toe_tip", "left_small_toe_tip", "left_heel", "right_big_toe_tip",
    "right_small_toe_tip", "right_heel", *_mhr_hand("right"), *_mhr_hand("left"),
    "left_olecranon", "right_olecranon", "left_cubital_fossa", "right_cubital_fossa", "left_acromion",
    "right_acromion", "neck",
)
MHR = {name: i for i, name in enumerate(MHR_70)}

# MediaPipe landmarks with an MHR-70 counterpart: its index and pinky are those fingers' knuckles,
# its thumb the thumb's second knuckle. Its foot index has none: on video it lands on the ball of
# the foot (the toes' knuckles), which MHR-70 lacks, not on the big toe's tip.
_MP_MHR_NAMES = {
    **{n: n for n in COCO_17},
    "left_heel": "left_heel", "right_heel": "right_heel",
    "left_index": "left_index_third_joint", "right_index": "right_index_third_joint",
    "left_pinky": "left_pinky_third_joint", "right_pinky": "right_pinky_third_joint",
    "left_thumb": "left_thumb_second_joint", "right_thumb": "right_thumb_second_joint",
}
# (MediaPipe-33 index, MHR-70 index) pairs, in MediaPipe order.
MP_MHR70_PAIRS: np.ndarray = np.array(sorted((MP[a], MHR[b]) for a, b in _MP_MHR_NAMES.items()))
