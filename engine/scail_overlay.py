"""SCAIL's 2D overlay on the 3D render: face outline points, hands and the nose–eyes–ears "cheek".

SCAIL-Pose draws DWPose's 2D keypoints over its cylinder render (`render_nlf_as_images` in
`NLFPoseExtract/nlf_render.py` calling `draw_pose_to_canvas_np` with `show_body_flag=False,
show_cheek_flag=True, dw_hand=True`; the drawing is in `pose_draw/draw_utils.py`). Matched here:
- cheek (`draw_bodypose_augmentation` with `all_cheek_aug`): nose→eye→ear on each side as
  OpenPose's filled ellipses 4 px thick in OpenPose colours 13–16, the canvas then dimmed to 60 %,
  then 4 px discs on nose, eyes and ears in OpenPose colours 0, 14–17;
- hands (`draw_handpose`): the 20 bones of the 21-point hand (the layout MediaPipe Hands shares
  with OpenPose/DWPose) as lines coloured by hue `i/20`, then blue points; line width and point
  radius `clamp(int(min(H, W)/300), 1, 2)` px; both hands alike;
- face (`draw_facepose`, `optimized_face`): white points of that radius on the eyebrows, eyes and
  lips of the 68-point face (indices 17–26 and 36–67; jaw and nose are left out). MediaPipe's
  468-point mesh is read at the vertices of the usual MediaPipe→68 correspondence (the table
  LatentSync and others use);
- composite: every channel that is non-zero on the canvas replaces the render's channel; alpha is
  left alone, so it stays the 3D body mask.
Coordinates are pixels of the render; NaN or non-positive points are skipped, as DWPose's
missing points (-1) are.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from .joint_sets import MP

# OpenPose-18 body colours (RGB) by keypoint / limb index.
_OPENPOSE_COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)
# Cheek points in this order, from MediaPipe-33: nose, right eye, left eye, right ear, left ear.
CHEEK_MP = np.array([MP[n] for n in ("nose", "right_eye", "left_eye", "right_ear", "left_ear")])
_CHEEK_POINT_COLOURS = tuple(_OPENPOSE_COLOURS[i] for i in (0, 14, 15, 16, 17))
_CHEEK_LIMBS = ((0, 1, 13), (1, 3, 14), (0, 2, 15), (2, 4, 16))  # (from, to, colour index)
_CHEEK_WIDTH = 4

HAND_BONES = tuple((0 if j % 4 == 0 else j, j + 1) for j in range(20))  # wrist→each finger's 4 bones
_HAND_COLOURS = tuple(tuple(round(c * 255) for c in colorsys.hsv_to_rgb(i / 20, 1.0, 1.0))
                      for i in range(20))
_HAND_POINT = (0, 0, 255)

# MediaPipe Face Mesh vertices for the 68-point face's eyebrows (17–26), eyes (36–47) and lips
# (48–67), the points SCAIL's optimised face drawing keeps.
FACE68_DRAWN = np.array([
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,  # eyebrows, image left then right
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
])


def thin_width(width: int, height: int) -> int:
    return min(max(int(min(width, height) / 300), 1), 2)


def _ok(p: np.ndarray) -> bool:
    return bool(np.isfinite(p).all() and p[0] > 0 and p[1] > 0)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(p[0]), int(p[1])


def _box(points: np.ndarray, shape: tuple[int, ...], margin: int = _CHEEK_WIDTH + 4) -> tuple[slice, slice]:
    """Slices of the image around every finite point, wide enough for what is drawn on them."""
    p = np.asarray(points, float).reshape(-1, 2)
    p = p[np.isfinite(p).all(axis=1)]
    if p.size == 0:
        return slice(0, 0), slice(0, 0)
    x0, y0 = np.maximum(np.floor(p.min(axis=0)).astype(int) - margin, 0)
    x1, y1 = np.ceil(p.max(axis=0)).astype(int) + margin + 1
    return slice(y0, min(y1, shape[0])), slice(x0, min(x1, shape[1]))


def draw_cheek(canvas: np.ndarray, points: np.ndarray) -> None:
    """points: (5, 2) pixels (nose, right eye, left eye, right ear, left ear)."""
    drawn = False
    for a, b, c in _CHEEK_LIMBS:
        pa, pb = points[a], points[b]
        if not (_ok(pa) and _ok(pb)):
            continue
        mid = 0.5 * (pa + pb)
        length = float(np.hypot(*(pa - pb)))
        angle = int(np.degrees(np.arctan2(pa[1] - pb[1], pa[0] - pb[0])))
        poly = cv2.ellipse2Poly(_pt(mid), (int(length / 2), _CHEEK_WIDTH), angle, 0, 360, 1)
        cv2.fillConvexPoly(canvas, poly, _OPENPOSE_COLOURS[c])
        drawn = True
    if drawn:  # SCAIL dims its whole canvas, which at this point holds only these limbs
        region = canvas[_box(points, canvas.shape)]
        np.multiply(region, 0.6, out=region, casting="unsafe")
    for p, c in zip(points, _CHEEK_POINT_COLOURS):
        if _ok(p):
            cv2.circle(canvas, _pt(p), 4, c, thickness=-1)


def draw_hand(canvas: np.ndarray, points: np.ndarray, width: int) -> None:
    """points: (21, 2) pixels in MediaPipe/OpenPose hand order."""
    for (a, b), c in zip(HAND_BONES, _HAND_COLOURS):
        if _ok(points[a]) and _ok(points[b]):
            cv2.line(canvas, _pt(points[a]), _pt(points[b]), c, thickness=width)
    for p in points:
        if _ok(p):
            cv2.circle(canvas, _pt(p), width, _HAND_POINT, thickness=-1)


def draw_face(canvas: np.ndarray, points: np.ndarray, width: int) -> None:
    """points: (42, 2) pixels at FACE68_DRAWN."""
    for p in points:
        if _ok(p):
            cv2.circle(canvas, _pt(p), width, (255, 255, 255), thickness=-1)


def draw_overlay(rgba: np.ndarray, cheek: np.ndarray | None = None, hands: np.ndarray | None = None,
                 face: np.ndarray | None = None, canvas: np.ndarray | None = None) -> np.ndarray:
    """Draw SCAIL's 2D layer onto `rgba` (H, W, 4) in place and return it. cheek: (5, 2);
    hands: (n, 21, 2); face: (42, 2) — pixels of the render. `canvas` is scratch space."""
    h, w = rgba.shape[:2]
    parts = [np.asarray(a, float).reshape(-1, 2) for a in (cheek, hands, face) if a is not None]
    if not parts:
        return rgba
    box = _box(np.concatenate(parts), (h, w))
    if canvas is None:
        canvas = np.zeros((h, w, 3), np.uint8)
    else:
        canvas[:] = 0
    thin = thin_width(w, h)
    if cheek is not None:
        draw_cheek(canvas, np.asarray(cheek, float))
    if hands is not None:
        for hand in hands:
            draw_hand(canvas, np.asarray(hand, float), thin)
    if face is not None:
        draw_face(canvas, np.asarray(face, float), thin)
    # Everything drawn lies inside `box`, so only that part is composited.
    drawn = canvas[box]
    np.copyto(rgba[box][..., :3], drawn, where=drawn != 0)
    return rgba
