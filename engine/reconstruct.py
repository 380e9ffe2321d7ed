"""Landmarks → metric camera-space markers: scale from height, root translation from the 2D
landmarks, foot contacts (contacts.py), the skeleton-constrained fit (skeleton_fit.py), gap
filling, mirroring, low-pass filtering and fixed bone lengths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import Intrinsics, reprojection_error, solve_root_translation
from .cleaning import butterworth, fill_gaps, hold_bone_lengths, mirror_missing
from .config import RunConfig
from .contacts import stationary_feet
from .errors import EngineError
from .landmarks import LandmarkTrack
from .lifter import lifted_to_mediapipe
from .scale import pose2sim_height, subject_lengths
from .skeleton_fit import bone_vectors, camera_prior, fit_skeleton, lengths_from_2d


@dataclass
class Reconstruction:
    markers: np.ndarray  # (T, 33, 3) camera frame, metres, cleaned
    raw_camera: np.ndarray  # (T, 33, 3) camera frame before gap filling / filtering / lengths
    confident: np.ndarray  # (T, 33) detected with visibility ≥ visibility_min
    filled: np.ndarray  # (T, 33) interpolated across a short gap
    mirrored: np.ndarray  # (T, 33) estimated from the other side
    planted: np.ndarray  # (T, 33) heel/toe standing still, held still by the fit (contacts.py)
    root_translation: np.ndarray  # (T, 3)
    scale: float  # MediaPipe world units → metres
    bone_lengths: np.ndarray  # subject's lengths along joint_sets.MP_TREE, metres
    reprojection_px: np.ndarray  # (T, 33) of the cleaned markers against the 2D landmarks


def reconstruct(track: LandmarkTrack, k: Intrinsics, cfg: RunConfig, fps: float,
                lifted: np.ndarray | None = None) -> Reconstruction:
    """Turn one person's landmark track into metric camera-space markers (see module doc).

    `lifted`: optional (T, 17, 3) H36M-17 joints from a VideoPose3D lifter (camera axes,
    root-relative); they replace MediaPipe's 3D for the joints they share."""
    confident = track.detected[:, None] & (track.visibility >= cfg.visibility_min)
    if confident.sum() < 10:
        raise EngineError("too few confidently detected landmarks to reconstruct a person "
                          f"(try a lower --visibility-min than {cfg.visibility_min})")
    world = track.world.astype(np.float64)
    pixels = track.pixels.astype(np.float64)
    weights = np.where(confident, track.visibility, 0.0)
    base = camera_prior(world, 1.0, pixels, k)  # MediaPipe's 3D, facing the camera ray
    del world  # (T, 33, 3) intermediates are dropped as soon as used: long videos
    if lifted is not None:
        base = lifted_to_mediapipe(lifted.astype(np.float64), base)
    height_mp = pose2sim_height(base, confident)
    if not np.isfinite(height_mp) or height_mp <= 0:
        raise EngineError("legs and trunk were never seen clearly enough to scale the subject "
                          "to --height")
    scale = cfg.height_m / height_mp
    skeleton = base * scale  # every detected joint, seen or not
    del base
    if cfg.fit_skeleton:
        # Bone lengths measured in the image at the depth that the --height scale implies: depth
        # and size trade off in one view, and rescaling these lengths to --height again was
        # measured to push the whole body away from the camera (benchmarks/accuracy.py).
        placed = skeleton + solve_root_translation(np.where(confident[..., None], skeleton, np.nan),
                                                   pixels, weights, k)[:, None]
        fit_lengths = lengths_from_2d(placed, bone_vectors(skeleton), pixels, confident, k)
        del placed
    t = solve_root_translation(np.where(confident[..., None], skeleton, np.nan), pixels, weights, k)
    raw_camera = skeleton + t[:, None, :]
    planted = np.zeros(confident.shape, bool)
    if cfg.fit_skeleton and cfg.foot_lock:
        planted = stationary_feet(pixels, confident, raw_camera[..., 2], k, fps)
    if cfg.fit_skeleton:
        markers = fit_skeleton(raw_camera, bone_vectors(skeleton), fit_lengths, pixels, weights,
                               track.detected, k, fps, stance=planted)
    else:
        markers = np.where(confident[..., None], raw_camera, np.nan)

    markers, filled, mirrored, lengths = clean(markers, confident, cfg, fps)
    reproj = reprojection_error(markers, pixels, k)
    return Reconstruction(markers, raw_camera, confident, filled, mirrored, planted, t, float(scale),
                          lengths, reproj)


def clean(markers: np.ndarray, confident: np.ndarray, cfg: RunConfig, fps: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The cleaning every reconstruction ends with: gaps up to --max-gap filled, missing limbs
    mirrored (--estimate-missing), Butterworth low-pass, the subject's bone lengths held.
    Returns markers, filled and mirrored (T, 33) masks, and the bone lengths."""
    markers, filled = fill_gaps(markers, int(round(cfg.max_gap_s * fps)))
    mirrored = np.zeros_like(filled)
    if cfg.estimate_missing:
        markers, mirrored = mirror_missing(markers)
    markers = butterworth(markers, fps, cfg.cutoff_hz, cfg.filter_order)
    lengths = subject_lengths(markers, confident)
    if cfg.hold_bone_lengths:
        markers = hold_bone_lengths(markers, lengths)
    return markers, filled, mirrored, lengths
