"""Landmarks → metric camera-space markers: scale from height, root translation from the 2D
landmarks, gap filling, mirroring, low-pass filtering and fixed bone lengths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import Intrinsics, reprojection_error, solve_root_translation
from .cleaning import butterworth, fill_gaps, hold_bone_lengths, mirror_missing
from .config import RunConfig
from .errors import EngineError
from .landmarks import LandmarkTrack
from .scale import skeleton_height, subject_lengths


@dataclass
class Reconstruction:
    markers: np.ndarray  # (T, 33, 3) camera frame, metres, cleaned
    raw_camera: np.ndarray  # (T, 33, 3) camera frame before gap filling / filtering / lengths
    confident: np.ndarray  # (T, 33) detected with visibility ≥ visibility_min
    filled: np.ndarray  # (T, 33) interpolated across a short gap
    mirrored: np.ndarray  # (T, 33) estimated from the other side
    root_translation: np.ndarray  # (T, 3)
    scale: float  # MediaPipe world units → metres
    bone_lengths: np.ndarray  # subject's lengths along joint_sets.MP_TREE, metres
    reprojection_px: np.ndarray  # (T, 33) of the cleaned markers against the 2D landmarks


def reconstruct(track: LandmarkTrack, k: Intrinsics, cfg: RunConfig, fps: float) -> Reconstruction:
    """Turn one person's landmark track into metric camera-space markers (see module doc)."""
    confident = track.detected[:, None] & (track.visibility >= cfg.visibility_min)
    if confident.sum() < 10:
        raise EngineError("too few confidently detected landmarks to reconstruct a person "
                          f"(try a lower --visibility-min than {cfg.visibility_min})")
    world = track.world.astype(np.float64)
    lengths_mp = subject_lengths(world, confident)
    height_mp = skeleton_height(lengths_mp)
    if not np.isfinite(height_mp) or height_mp <= 0:
        raise EngineError("legs and trunk were never seen clearly enough to scale the subject "
                          "to --height")
    scale = cfg.height_m / height_mp
    lengths = lengths_mp * scale
    skeleton = np.where(confident[..., None], world * scale, np.nan)
    if cfg.hold_bone_lengths:
        skeleton = hold_bone_lengths(skeleton, lengths)

    weights = np.where(confident, track.visibility, 0.0)
    t = solve_root_translation(skeleton, track.pixels.astype(np.float64), weights, k)
    raw_camera = skeleton + t[:, None, :]

    max_gap = int(round(cfg.max_gap_s * fps))
    markers, filled = fill_gaps(raw_camera, max_gap)
    mirrored = np.zeros_like(filled)
    if cfg.estimate_missing:
        markers, mirrored = mirror_missing(markers)
    markers = butterworth(markers, fps, cfg.cutoff_hz, cfg.filter_order)
    if cfg.hold_bone_lengths:
        markers = hold_bone_lengths(markers, lengths)
    reproj = reprojection_error(markers, track.pixels.astype(np.float64), k)
    return Reconstruction(markers, raw_camera, confident, filled, mirrored, t, float(scale),
                          lengths, reproj)
