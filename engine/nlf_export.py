"""SMPL-24 poses in the file structure SCAIL-Pose reads NLF results from.

SCAIL-Pose runs NLF on each person box and pickles one dict per video frame
(`process_video_nlf` in `NLFPoseExtract/extract_nlfpose_batch.py`):
    {"video_height": H, "video_width": W,
     "bboxes":  [[x1, y1, x2, y2], ...],          # per person, fractions of W and H
     "nlfpose": [tensor (n_det, 24, 3), ...]}      # per box: NLF's `joints3d_nonparam`
Joints are SMPL's 24 in the camera frame (OpenCV axes) in millimetres, for a pinhole camera of
field of view 55° across the longer side with the principal point at the centre
(`intrinsic_matrix_from_field_of_view` in `NLFPoseExtract/nlf_draw.py`) — the engine's default
camera, so with the default `--fov 55` the joints project onto the video exactly as NLF's would.
Its renderer takes `nlfpose[person][0]`, treats a joint at the origin as missing and calls
`.cpu()` on it, so the entries are torch tensors when torch is installed (numpy arrays otherwise).
Unknown joints are written as zeros there; a frame with nobody has empty lists, as NLF leaves it.

Beside the pickle goes an `.npz` with the same content as plain arrays (NaN where unknown), for
readers without torch: `joints3d_nonparam` (T, N, 24, 3) mm, `bboxes` (T, N, 4), `valid` (T, N),
`video_height`, `video_width`, `K`, `fps`, `first_frame`, `joint_names`.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from .camera import Intrinsics, project
from .joint_sets import SMPL_24


def person_boxes(points_m: np.ndarray, k: Intrinsics, pad: float = 0.05) -> np.ndarray:
    """(T, J, 3) camera-frame points → (T, 4) boxes [x1, y1, x2, y2] as fractions of the frame,
    `pad` of the box's size added on each side (a detector's box holds the whole body, not just
    the joints); NaN rows for frames with no projectable point."""
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN and z = 0 points are masked next
        uv = project(np.asarray(points_m, float), k)
    uv[~(np.asarray(points_m)[..., 2] > 0)] = np.nan
    out = np.full((len(uv), 4), np.nan)
    ok = np.isfinite(uv).all(-1).any(-1)
    if ok.any():
        lo, hi = np.nanmin(uv[ok], axis=1), np.nanmax(uv[ok], axis=1)
        margin = pad * (hi - lo)
        size = np.array([k.width, k.height], float)
        out[ok, :2] = np.clip((lo - margin) / size, 0, 1)
        out[ok, 2:] = np.clip((hi + margin) / size, 0, 1)
    return out


def _tensor_maker(tensors: bool | None):
    if tensors is False:
        return None
    try:
        import torch
    except ImportError:
        if tensors:
            raise
        return None
    return lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32))


def nlf_frames(joints_mm: np.ndarray, bboxes: np.ndarray, width: int, height: int,
               tensors: bool | None = None) -> tuple[list[dict], str]:
    """SCAIL-Pose's per-frame list from joints (T, N, 24, 3) mm and boxes (T, N, 4). A person
    counts in a frame when any of their joints is known. Returns the list and the array type used
    ("torch" or "numpy"; `tensors=None` picks torch when it imports)."""
    make = _tensor_maker(tensors)
    frames = []
    for joints_t, boxes_t in zip(joints_mm, bboxes):
        boxes, poses = [], []
        for j, box in zip(joints_t, boxes_t):
            if not np.isfinite(j).any():
                continue
            pose = np.nan_to_num(j, nan=0.0).astype(np.float32)[None]  # (1, 24, 3): one detection
            boxes.append([float(v) for v in np.nan_to_num(box, nan=0.0)])
            poses.append(make(pose) if make else pose)
        frames.append({"video_height": int(height), "video_width": int(width),
                       "bboxes": boxes, "nlfpose": poses})
    return frames, "torch" if make else "numpy"


def write_nlf(pkl_path: Path, npz_path: Path, joints_mm: np.ndarray, bboxes: np.ndarray,
              k: Intrinsics, fps: float, first_frame: int = 0, tensors: bool | None = None) -> str:
    """Write the SCAIL-Pose pickle and the plain npz twin; returns the pickle's array type."""
    joints_mm = np.asarray(joints_mm, np.float32)
    if joints_mm.ndim != 4 or joints_mm.shape[2:] != (24, 3):
        raise ValueError(f"expected joints of shape (T, N, 24, 3), got {joints_mm.shape}")
    frames, kind = nlf_frames(joints_mm, bboxes, k.width, k.height, tensors)
    with open(pkl_path, "wb") as f:
        pickle.dump(frames, f, protocol=pickle.HIGHEST_PROTOCOL)
    np.savez_compressed(
        npz_path, joints3d_nonparam=joints_mm, bboxes=np.asarray(bboxes, np.float32),
        valid=np.isfinite(joints_mm).any(axis=(-1, -2)), video_height=k.height, video_width=k.width,
        K=k.K, fps=fps, first_frame=first_frame, joint_names=np.array(SMPL_24), units="mm")
    return kind


def read_nlf_pkl(path: Path) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Read a SCAIL-Pose NLF pickle (ours or SCAIL's): joints (T, N, 24, 3) mm with NaN where a
    joint is missing (SCAIL's zeros) or the person absent, boxes (T, N, 4), height, width. N is
    the most people in any frame; the first detection of each box is taken, as SCAIL does."""
    with open(path, "rb") as f:
        frames = pickle.load(f)
    n = max((len(fr["nlfpose"]) for fr in frames), default=0)
    joints = np.full((len(frames), n, 24, 3), np.nan, np.float32)
    boxes = np.full((len(frames), n, 4), np.nan, np.float32)
    for t, fr in enumerate(frames):
        for i, pose in enumerate(fr["nlfpose"]):
            arr = pose.cpu().numpy() if hasattr(pose, "cpu") else np.asarray(pose)
            if len(arr) == 0:
                continue
            j = np.array(arr[0], np.float32)
            j[(j == 0).all(-1)] = np.nan
            joints[t, i] = j
        for i, box in enumerate((fr.get("bboxes") or [])[:n]):
            boxes[t, i] = np.asarray(box, np.float32)[:4]
    h, w = (frames[0]["video_height"], frames[0]["video_width"]) if frames else (0, 0)
    return joints, boxes, int(h), int(w)
