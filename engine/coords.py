"""The only place coordinate frames change: the engine's camera frame (OpenCV: x right, y down,
z forward, metres) to OpenSim/TRC (Y up) and Blender (Z up)."""

from __future__ import annotations

import numpy as np

# Camera → OpenSim: a 180° turn about x. Upright subjects stand along +Y, +Z points at the camera.
CAMERA_TO_OPENSIM = np.diag([1.0, -1.0, -1.0])
# Camera → Blender world: x right, y forward (into the scene), z up.
CAMERA_TO_BLENDER = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])


def camera_to_opensim(points: np.ndarray) -> np.ndarray:
    return points @ CAMERA_TO_OPENSIM.T


def camera_to_blender(points: np.ndarray) -> np.ndarray:
    return points @ CAMERA_TO_BLENDER.T


def flip_yz(points: np.ndarray) -> np.ndarray:
    """SAM 3D Body's "camera system difference": its body model (MHR) is Y up with Z toward the
    camera; flipping Y and Z turns that into the camera frame and back (its own inverse; the same
    turn as camera_to_opensim)."""
    return points * np.array([1.0, -1.0, -1.0], dtype=np.asarray(points).dtype)
