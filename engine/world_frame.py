"""The levelled world the Blender scene lives in: one rigid 4x4 from the engine's camera frame
(OpenCV: x right, y down, z forward, metres) to Blender world (Z up, metres), used for the armature,
the body mesh, every camera and so for the FBX/BVH exports.

It is the TRC's own levelling (run.json → biomechanics.level: p_trc = R·C·p + [0, -floor, 0], C
the camera → OpenSim turn), turned Z up, then two moves about and along the vertical only, so the
TRC's vertical and floor stay true:

- heading: a turn about Z that puts the subject's median facing direction on -Y (Blender's front
  view looks at a character's face). A frame's facing is (left − right) × up, horizontal, with the
  left–right axis the sum of the hips' and the shoulders' unit axes (the shoulders steady it when
  the pelvis twists; either alone serves where the other is missing); the heading is the median of
  the facing angles over frames. A subject walking a circle has no useful median: the turn is then
  arbitrary, but still only about Z.
- centring: the median hip centre over frames is moved over the world origin (x = y = 0), so the
  figure stands on Blender's grid at its centre; the height stays the TRC's (feet on z = 0.01 m:
  `engine.levelling.floor_offset`'s clearance).

A result without a level record (before the biomechanics stage recorded one) is levelled the same
way from its own markers (`engine.levelling` on the POSE2SIM_22 markers: the leg-based vertical and
the floor under the heels and toes), so every result gets an upright world; with no finite marker at
all the world is today's camera frame turned Z up (engine.coords.CAMERA_TO_BLENDER).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .coords import CAMERA_TO_BLENDER, CAMERA_TO_OPENSIM
from .joint_sets import MP, POSE2SIM_22
from .pose2sim_markers import mediapipe_to_pose2sim

# TRC/OpenSim (Y up, Z towards the camera) → Blender (Z up): a quarter turn about x. With no
# levelling it gives CAMERA_TO_BLENDER exactly (OPENSIM_TO_BLENDER @ CAMERA_TO_OPENSIM).
OPENSIM_TO_BLENDER = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
FORWARD = np.array([0.0, -1.0, 0.0])  # where the subject faces: Blender's convention for characters
UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class WorldFrame:
    matrix: np.ndarray  # (4, 4) engine camera frame → Blender world
    level_source: str  # "run.json" (the TRC's levelling), "estimated" (from the markers), "none"
    vertical: str  # the level record's "estimated" | "given" (a calibration's); "" when not from it
    heading_deg: float  # the turn about Z applied after levelling
    floor_offset_m: float


def _rotation(m: np.ndarray) -> np.ndarray:
    """The nearest proper rotation (run.json rounds the matrix to 6 decimals)."""
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def level_from_record(record: dict) -> tuple[np.ndarray, float, str] | None:
    """(R, floor, vertical) of run.json's biomechanics.level, or None when absent or unusable."""
    level = (record.get("biomechanics") or {}).get("level") or {}
    try:
        R = np.asarray(level["rotation"], dtype=np.float64).reshape(3, 3)
        floor = float(level["floor_offset_m"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (np.isfinite(R).all() and np.isfinite(floor)) or abs(np.linalg.det(R) - 1.0) > 1e-3:
        return None
    return _rotation(R), floor, str(level.get("vertical", ""))


def level_from_markers(markers_camera: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(R, floor) estimated as the biomechanics stage does, from (T, 33, 3) camera-frame markers
    (its floor from the heels and toes, as the 65 final markers are not at hand); None if empty."""
    if not np.isfinite(markers_camera).any():
        return None
    from .levelling import estimate_up, floor_offset, level_rotation  # scipy: only when needed

    m22 = mediapipe_to_pose2sim(np.asarray(markers_camera, dtype=np.float64)) @ CAMERA_TO_OPENSIM.T
    R = level_rotation(estimate_up(m22))
    return R, floor_offset(m22 @ R.T, POSE2SIM_22)


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


def heading_turn(points: np.ndarray) -> float:
    """Radians about +Z that put the median forward direction of (T, 33, 3) MediaPipe-33 points
    (already levelled, Z up) on FORWARD (-Y); 0 when no frame tells."""
    def axis(left: str, right: str) -> np.ndarray:
        return np.nan_to_num(_unit(points[:, MP[left]] - points[:, MP[right]]))

    across = axis("left_hip", "right_hip") + axis("left_shoulder", "right_shoulder")
    forward = np.cross(across, UP)[:, :2]
    forward = _unit(forward[np.linalg.norm(forward, axis=1) > 1e-6])
    if len(forward) == 0:
        return 0.0
    # The median angle about the mean direction: robust to stray frames, and unlike a
    # per-component median it turns with the subject (the same clip filmed from elsewhere gets the
    # same world).
    mean = forward.mean(axis=0)
    ref = np.arctan2(mean[1], mean[0]) if np.linalg.norm(mean) > 1e-9 else np.arctan2(*forward[0, ::-1])
    off = (np.arctan2(forward[:, 1], forward[:, 0]) - ref + np.pi) % (2 * np.pi) - np.pi
    facing = ref + float(np.median(off))
    turn = np.arctan2(FORWARD[1], FORWARD[0]) - facing
    return float((turn + np.pi) % (2 * np.pi) - np.pi)


def _about_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (..., 3) through a 4x4 (NaN stays NaN)."""
    m = np.asarray(matrix, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]


def world_frame(record: dict, markers_camera: np.ndarray) -> WorldFrame:
    """The world of a result: its run.json record and its (T, 33, 3) camera-frame markers."""
    markers = np.asarray(markers_camera, dtype=np.float64)
    level = level_from_record(record or {})
    vertical = ""
    if level is not None:
        R, floor, vertical = level
        source = "run.json"
    else:
        estimated = level_from_markers(markers)
        if estimated is None:
            M = np.eye(4)
            M[:3, :3] = CAMERA_TO_BLENDER
            return WorldFrame(M, "none", "", 0.0, 0.0)
        (R, floor), source = estimated, "estimated"
    A = OPENSIM_TO_BLENDER @ R @ CAMERA_TO_OPENSIM  # camera → levelled, Z up (before the heading)
    lifted = markers @ A.T + OPENSIM_TO_BLENDER @ np.array([0.0, -floor, 0.0])
    turn = heading_turn(lifted)
    H = _about_z(turn)
    hips = 0.5 * (lifted[:, MP["left_hip"]] + lifted[:, MP["right_hip"]]) @ H.T
    hips = hips[np.isfinite(hips).all(axis=1)]
    centre = np.median(hips[:, :2], axis=0) if len(hips) else np.zeros(2)
    M = np.eye(4)
    M[:3, :3] = H @ A
    M[:3, 3] = H @ (OPENSIM_TO_BLENDER @ np.array([0.0, -floor, 0.0])) - np.array([*centre, 0.0])
    return WorldFrame(M, source, vertical, float(np.degrees(turn)), float(floor))


def world_from_camera(record: dict, markers_camera: np.ndarray) -> np.ndarray:
    """4x4 from the engine's camera frame (OpenCV, metres) to Blender world (Z up, levelled as the
    TRC, feet on the floor, facing -Y, the median hip centre over the origin); see the module doc."""
    return world_frame(record, markers_camera).matrix
