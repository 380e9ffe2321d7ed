"""SCAIL's 3D pose render: limbs as capsules ray-cast through a pinhole camera, depth-shaded, RGBA.

What is matched, and where it comes from (zai-org/SCAIL-Pose, read, not copied):
- Limb set and order (`NLFPoseExtract/nlf_render.py`, `render_nlf_as_images` with
  `process_data_to_COCO_format` from `NLFPoseExtract/nlf_draw.py`): SMPL joints 12/15/16–21/1–8
  are mapped onto OpenPose-18 slots and 13 limbs are drawn: neck→shoulders, shoulder→elbow→wrist,
  neck→hip (the trunk is two long limbs, one per side), hip→knee→ankle and neck→head; the eye and
  ear slots stay empty, so those limbs never draw.
- Colours: one RGB per limb from that file's palette (right side warm, left side cool, head grey),
  turned into render colours as `rgb/300 + 0.15` with alpha 0.8.
- Geometry (`render_3d/taichi_cylinder.py`): the shape is the distance-to-segment field, i.e. a
  capsule (cylinder with round ends), radius 21.5 in NLF's millimetres (its metric PromptHMR path
  passes 0.0215, which confirms the unit). Rays leave the camera centre through integer pixel
  positions, `((x - cx)/fx, (y - cy)/fy, 1)`; the nearest surface wins.
- Shading (same file): light along +z from the camera; `colour·(0.3 + 0.7·max(-n_z, 0))·depth`
  plus a white Blinn-Phong highlight `0.5·max(n·h, 0)^32·depth`; `depth = 1 - (z - near)/(far -
  0.1)` clipped to [0, 1] with `near = max(z_min, 0.1)` and `far = min(z_max + 6000, 20000)` over
  every limb end of the whole clip; channels clipped to [0, 1] and truncated to 8 bits; alpha is the
  limb's 0.8 on the body and 0 elsewhere.

SCAIL sphere-traces a signed distance field on the GPU (taichi). Here each capsule is intersected
analytically (infinite cylinder with an axial bound, plus the two end spheres), vectorised with
numpy over the pixels of that capsule's projected bounding box, into a z-buffer; the normals of the
winning surfaces are shaded in one pass at the end. The result is the same surface SCAIL's
marcher converges to, at a cost that scales with the body's screen area, not the frame's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .camera import Intrinsics
from .smpl24 import SMPL

RADIUS_MM = 21.5
ALPHA = 0.8
_ZNEAR = 0.1  # SCAIL's near plane and the offset in its depth falloff, millimetres

# (from joint, to joint, RGB 0–255) in SCAIL's draw order; that order decides exact ties.
LIMBS: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("neck", "right_shoulder", (255, 0, 0)),
    ("right_shoulder", "right_elbow", (255, 85, 0)),
    ("right_elbow", "right_wrist", (255, 170, 0)),
    ("neck", "left_shoulder", (0, 255, 255)),
    ("left_shoulder", "left_elbow", (0, 170, 255)),
    ("left_elbow", "left_wrist", (0, 85, 255)),
    ("neck", "right_hip", (180, 255, 0)),
    ("right_hip", "right_knee", (0, 255, 0)),
    ("right_knee", "right_ankle", (0, 255, 85)),
    ("neck", "left_hip", (0, 0, 255)),
    ("left_hip", "left_knee", (85, 0, 255)),
    ("left_knee", "left_ankle", (170, 0, 255)),
    ("neck", "head", (150, 150, 150)),
)
LIMB_JOINTS = np.array([(SMPL[a], SMPL[b]) for a, b, _ in LIMBS])
LIMB_COLOURS = np.array([[c / 300 + 0.15 for c in rgb] for _, _, rgb in LIMBS], dtype=np.float32)


def depth_range(joints_mm: np.ndarray) -> tuple[float, float]:
    """SCAIL's (near, far) for the depth falloff from every drawn limb end of a clip (…, 24, 3)."""
    z = np.asarray(joints_mm)[..., np.unique(LIMB_JOINTS), 2]
    z = z[np.isfinite(z)]
    if z.size == 0:
        return 1000.0, 7000.0
    return max(float(z.min()), _ZNEAR), min(float(z.max()) + 6000.0, 20000.0)


def fit_camera(k: Intrinsics, width: int, height: int) -> tuple[Intrinsics, float, tuple[float, float]]:
    """Camera of the video scaled to cover `width`×`height` and centre-cropped, as SCAIL-Pose
    resizes its driving video (`resize_for_rectangle_crop`, mode "center"): the aspect ratio is kept
    and the render lines up with the cropped frames. Returns the new intrinsics and the pixel map
    `u' = s·u - ox`, `v' = s·v - oy` as (s, (ox, oy)) for 2D points of the source video."""
    s = max(width / k.width, height / k.height)
    ox, oy = 0.5 * (k.width * s - width), 0.5 * (k.height * s - height)
    cam = Intrinsics(k.fx * s, k.fy * s, k.cx * s - ox, k.cy * s - oy, int(width), int(height))
    return cam, s, (ox, oy)


@dataclass
class _Limb:
    index: int
    a: np.ndarray  # start, mm
    w: np.ndarray  # unit axis
    length: float
    box: tuple[int, int, int, int]  # x0, x1, y0, y1 pixel range to test (half-open)


class CylinderRenderer:
    """Renders SMPL-24 joints (mm, camera frame) as SCAIL's RGBA limb image for one camera."""

    def __init__(self, camera: Intrinsics, depth: tuple[float, float] = (1000.0, 7000.0),
                 radius: float = RADIUS_MM) -> None:
        self.camera = camera
        self.radius = float(radius)
        self.near, self.far = depth
        w, h = camera.width, camera.height
        self._dx = ((np.arange(w) - camera.cx) / camera.fx).astype(np.float32)
        self._dy = ((np.arange(h) - camera.cy) / camera.fy).astype(np.float32)
        self._dd = (self._dx[None, :] ** 2 + self._dy[:, None] ** 2 + 1).astype(np.float32)
        # Blinn-Phong half vector per pixel: view (-d/|d|) plus the light's (0, 0, -1), normalised.
        dx, dy = np.broadcast_arrays(self._dx[None, :], self._dy[:, None])
        inv = 1 / np.sqrt(self._dd)
        half = -np.stack([dx * inv, dy * inv, inv + 1])
        self._half = (half / np.sqrt((half ** 2).sum(0))).reshape(3, -1).astype(np.float32)
        self._depth = np.empty((h, w), np.float32)
        self._owner = np.empty((h, w), np.int16)  # limb index: 13 per person

    # -- geometry ---------------------------------------------------------------------------

    def _limbs(self, joints: np.ndarray) -> list[_Limb]:
        cam, r = self.camera, self.radius
        ends = joints[LIMB_JOINTS]  # (L, 2, 3)
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
        corners = ends[:, :, None, :] + r * signs  # the boxes around both end spheres hold the capsule
        limbs = []
        for i, ((a, b), pts) in enumerate(zip(ends, corners)):
            if not (np.isfinite(a).all() and np.isfinite(b).all()):
                continue  # SCAIL skips a limb with a missing end
            z = pts[..., 2]
            if z.max() <= _ZNEAR:
                continue  # wholly behind the camera
            if z.min() > _ZNEAR:
                u = cam.fx * pts[..., 0] / z + cam.cx
                v = cam.fy * pts[..., 1] / z + cam.cy
                # Projection of a convex body in front of the camera lies in the hull of its
                # bounding boxes' projected corners; rays go through integer pixel positions.
                box = (max(int(math.floor(u.min())), 0), min(int(math.ceil(u.max())) + 1, cam.width),
                       max(int(math.floor(v.min())), 0), min(int(math.ceil(v.max())) + 1, cam.height))
                if box[0] >= box[1] or box[2] >= box[3]:
                    continue
            else:  # straddles the camera plane: test every pixel
                box = (0, cam.width, 0, cam.height)
            axis = b - a
            length = float(np.linalg.norm(axis))
            w = axis / length if length > 1e-9 else np.array([0.0, 0.0, 1.0])
            limbs.append(_Limb(i, a, w, length, box))
        return limbs

    def _hit(self, limb: _Limb) -> tuple[np.ndarray, tuple[slice, slice]]:
        """Distance along z (the rays have unit z) to the capsule's first surface over its box;
        inf where the ray misses."""
        x0, x1, y0, y1 = limb.box
        dx, dy = self._dx[None, x0:x1], self._dy[y0:y1, None]
        dd = self._dd[y0:y1, x0:x1]
        r2 = self.radius ** 2
        a, w = limb.a, limb.w
        aa = float(a @ a)
        aw = float(a @ w)
        # Rays o = 0, d = (dx, dy, 1). Lateral surface: |(t·d - a)⊥w| = r with 0 ≤ (t·d - a)·w ≤ L.
        dw = dx * np.float32(w[0]) + dy * np.float32(w[1]) + np.float32(w[2])
        da = dx * np.float32(a[0]) + dy * np.float32(a[1]) + np.float32(a[2])
        qa = dd - dw * dw
        qb = dw * np.float32(aw) - da
        disc = qb * qb - qa * np.float32(aa - aw * aw - r2)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = (-qb - np.sqrt(disc)) / qa
            s = t * dw - np.float32(aw)
            t[~((s >= 0) & (s <= limb.length))] = np.inf  # NaN (a miss) compares False too
            for c, dc in ((a, da), (a + limb.length * limb.w, None)):
                if dc is None:
                    dc = dx * np.float32(c[0]) + dy * np.float32(c[1]) + np.float32(c[2])
                ts = (dc - np.sqrt(dc * dc - dd * np.float32(c @ c - r2))) / dd
                np.fmin(t, ts, out=t)
        t[~(t > _ZNEAR)] = np.inf
        return t, (slice(y0, y1), slice(x0, x1))

    # -- image ------------------------------------------------------------------------------

    def render(self, joints_mm: np.ndarray) -> np.ndarray:
        """(24, 3) SMPL-24 joints in mm, or (P, 24, 3) for several people drawn together in one
        z-buffer (as SCAIL-Pose draws every detected person) → (H, W, 4) uint8 RGBA; NaN joints
        drop their limbs."""
        cam = self.camera
        out = np.zeros((cam.height, cam.width, 4), np.uint8)
        people = np.asarray(joints_mm, dtype=np.float64).reshape(-1, 24, 3)
        limbs = [limb for joints in people for limb in self._limbs(joints)]
        if not limbs:
            return out
        depth, owner = self._depth, self._owner
        x0 = min(lb.box[0] for lb in limbs)
        x1 = max(lb.box[1] for lb in limbs)
        y0 = min(lb.box[2] for lb in limbs)
        y1 = max(lb.box[3] for lb in limbs)
        depth[y0:y1, x0:x1] = np.inf
        owner[y0:y1, x0:x1] = -1
        for k, limb in enumerate(limbs):
            t, region = self._hit(limb)
            nearer = t < depth[region]  # strict: the earlier limb keeps exact ties, as in SCAIL
            np.copyto(depth[region], t, where=nearer)
            np.copyto(owner[region], np.int16(k), where=nearer)
        ys, xs = np.nonzero(owner[y0:y1, x0:x1] >= 0)
        if ys.size == 0:
            return out
        ys += y0
        xs += x0
        self._shade(limbs, ys, xs, out)
        return out

    def _shade(self, limbs: list[_Limb], ys: np.ndarray, xs: np.ndarray, out: np.ndarray) -> None:
        # Component arrays (not (N, 3) rows): this pass runs over every body pixel, so it is the
        # render's main cost once the body fills the frame.
        flat = ys * self.camera.width + xs
        k = self._owner.ravel().take(flat)
        t = self._depth.ravel().take(flat)
        ax, ay, az = (np.array([lb.a[c] for lb in limbs], np.float32).take(k) for c in range(3))
        wx, wy, wz = (np.array([lb.w[c] for lb in limbs], np.float32).take(k) for c in range(3))
        length = np.array([lb.length for lb in limbs], np.float32).take(k)
        # Hit point p = t·(dx, dy, 1); capsule normal runs from the nearest axis point to p.
        px, py, pz = self._dx.take(xs) * t - ax, self._dy.take(ys) * t - ay, t - az
        s = np.clip(px * wx + py * wy + pz * wz, 0, length)
        nx, ny, nz = px - s * wx, py - s * wy, pz - s * wz
        inv = 1 / (np.sqrt(nx * nx + ny * ny + nz * nz) + np.float32(1e-12))
        nx *= inv
        ny *= inv
        nz *= inv
        hx, hy, hz = (self._half[c].take(flat) for c in range(3))
        diffuse = np.maximum(-nz, 0)
        spec = np.maximum(nx * hx + ny * hy + nz * hz, 0)
        for _ in range(5):  # ^32
            spec *= spec
        fade = np.clip(1 - (t - np.float32(self.near)) / np.float32(self.far - _ZNEAR), 0, 1)
        base = (0.3 + 0.7 * diffuse) * fade
        high = 0.5 * spec * fade
        colour = LIMB_COLOURS[[lb.index for lb in limbs]]
        rows = out.reshape(-1, 4)
        for c in range(3):
            v = colour[:, c].take(k) * base + high
            rows[flat, c] = (np.clip(v, 0, 1) * 255).astype(np.uint8)
        rows[flat, 3] = np.uint8(ALPHA * 255)
