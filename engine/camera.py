"""Pinhole camera model and placing the metric skeleton in camera space (OpenCV axes, metres)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_settings(cls, width: int, height: int, fov_deg: float = 55.0,
                      focal_px: float | None = None) -> Intrinsics:
        """User focal length if given, else f = max(W, H) / (2·tan(FOV/2)); centre principal point."""
        f = focal_px if focal_px else max(width, height) / (2.0 * math.tan(math.radians(fov_deg) / 2))
        return cls(f, f, width / 2.0, height / 2.0, width, height)

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]])

    def to_json(self) -> dict:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy,
                "width": self.width, "height": self.height}


def project(points: np.ndarray, k: Intrinsics) -> np.ndarray:
    """(…, 3) camera-space points → (…, 2) pixels."""
    z = points[..., 2]
    return np.stack([k.fx * points[..., 0] / z + k.cx, k.fy * points[..., 1] / z + k.cy], axis=-1)


# Frames per block in per-frame solves: their (T, 2J, 3) temporaries took 170 MB for 10 minutes.
_CHUNK = 1024


def solve_root_translation(skeleton: np.ndarray, pixels: np.ndarray, weights: np.ndarray,
                           k: Intrinsics, iterations: int = 3) -> np.ndarray:
    """Per-frame translation t so that project(skeleton + t) best matches `pixels`.

    skeleton: (T, J, 3) root-relative metric joints; pixels: (T, J, 2); weights: (T, J), 0 for
    unusable joints. Each frame is a 3-unknown weighted linear least-squares problem (the
    projection equations multiplied through by depth), re-weighted by 1/depth so that it
    converges to the pixel-error optimum. Frames with < 3 usable joints get NaN.
    """
    if skeleton.shape[0] > _CHUNK:  # frames are independent: solve in chunks, memory stays flat
        return np.concatenate([solve_root_translation(skeleton[i:i + _CHUNK], pixels[i:i + _CHUNK],
                                                      weights[i:i + _CHUNK], k, iterations)
                               for i in range(0, skeleton.shape[0], _CHUNK)])
    X, Y, Z = skeleton[..., 0], skeleton[..., 1], skeleton[..., 2]
    du, dv = pixels[..., 0] - k.cx, pixels[..., 1] - k.cy
    w = np.where(np.isfinite(du) & np.isfinite(dv) & np.isfinite(Z), weights, 0.0)
    du, dv = np.nan_to_num(du), np.nan_to_num(dv)
    X, Y, Z = np.nan_to_num(X), np.nan_to_num(Y), np.nan_to_num(Z)
    T = skeleton.shape[0]
    # Rows: [fx, 0, -du]·t = du·Z - fx·X ;  [0, fy, -dv]·t = dv·Z - fy·Y
    zeros = np.zeros_like(du)
    A = np.concatenate([np.stack([np.full_like(du, k.fx), zeros, -du], -1),
                        np.stack([zeros, np.full_like(dv, k.fy), -dv], -1)], axis=1)  # (T, 2J, 3)
    b = np.concatenate([du * Z - k.fx * X, dv * Z - k.fy * Y], axis=1)  # (T, 2J)
    ok = (w > 0).sum(axis=1) >= 3
    t = np.full((T, 3), np.nan)
    if not ok.any():
        return t
    scale = np.ones_like(w)
    for _ in range(iterations):
        ww = np.concatenate([w * scale, w * scale], axis=1)[ok]
        Aw = A[ok] * ww[..., None]
        AtA = np.einsum("tji,tjk->tik", Aw, A[ok]) + 1e-9 * np.eye(3)
        Atb = np.einsum("tji,tj->ti", Aw, b[ok])
        t[ok] = np.linalg.solve(AtA, Atb[..., None])[..., 0]
        depth = np.clip(Z + t[:, 2:3], 0.1, None)  # rows of frames without a solution are unused
        scale = np.where(ok[:, None], (1.0 / np.nan_to_num(depth, nan=1.0)) ** 2, 1.0)
    return t


def reprojection_error(points: np.ndarray, pixels: np.ndarray, k: Intrinsics) -> np.ndarray:
    """Pixel distance per frame and joint (NaN where either side is unknown)."""
    return np.linalg.norm(project(points, k) - pixels, axis=-1)
