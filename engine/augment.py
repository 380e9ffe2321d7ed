"""Marker augmentation with Pose2Sim's LSTM v0.3 (OpenCap's augmenter, shipped in the pose2sim wheel):
Pose2Sim's 22 video markers → 43 anatomical markers (ASIS/PSIS, knee and ankle epicondyles, foot,
thigh/shank clusters, shoulders, C7, hip joint centres, elbows and wrists).

The arithmetic is exactly Pose2Sim's `markerAugmentation.augment_markers_all` (inputs relative to
`Hip`, divided by height, height and mass appended, standardised with the shipped mean/std; outputs
times height plus `Hip`); the test suite checks that both give the same markers. Done here in memory
rather than through Pose2Sim's file-based function so that sessions are loaded once, the CUDA
provider is used when present, and frames with missing markers do not poison the whole sequence
(an LSTM carries a NaN forward forever: each finite run of frames is augmented on its own).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from .cleaning import runs
from .errors import EngineError
from .joint_sets import OPENCAP_LOWER_35, OPENCAP_UPPER_8, POSE2SIM_22

MODEL_VERSION = "v0.3"
# Inputs of each model, in its order (Pose2Sim's getOpenPoseMarkers_lowerExtremity2 and
# getMarkers_upperExtremity_noPelvis2).
LOWER_FEATURES: tuple[str, ...] = (
    "Neck", "RShoulder", "LShoulder", "RHip", "LHip", "RKnee", "LKnee", "RAnkle", "LAnkle",
    "RHeel", "LHeel", "RSmallToe", "LSmallToe", "RBigToe", "LBigToe")
UPPER_FEATURES: tuple[str, ...] = ("Neck", "RShoulder", "LShoulder", "RElbow", "LElbow", "RWrist", "LWrist")
_MODELS = (("lower", LOWER_FEATURES, OPENCAP_LOWER_35), ("upper", UPPER_FEATURES, OPENCAP_UPPER_8))
_IDX = {n: i for i, n in enumerate(POSE2SIM_22)}
_BLOCK = 4096  # frames per LSTM run (see augment)
_WARM_UP = 2048

def model_dir(kind: str) -> Path:
    """Folder of the shipped `lower` or `upper` model (model.onnx, mean.npy, std.npy)."""
    spec = importlib.util.find_spec("Pose2Sim")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError("pose2sim is not installed: its LSTM marker augmenter is unavailable")
    return Path(next(iter(spec.submodule_search_locations)), "MarkerAugmenter", "LSTM",
                f"{MODEL_VERSION}_{kind}")


def execution_providers() -> list[str]:
    """CUDA when this onnxruntime build has it, else the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


@lru_cache(maxsize=4)
def _model(kind: str) -> tuple[object, np.ndarray, np.ndarray]:
    import onnxruntime as ort

    d = model_dir(kind)
    session = ort.InferenceSession(str(d / "model.onnx"), providers=execution_providers())
    mean = np.load(d / "mean.npy", allow_pickle=True).astype(np.float64)
    std = np.load(d / "std.npy", allow_pickle=True).astype(np.float64)
    return session, mean, std


def _headings(cycles: int) -> np.ndarray:
    """(cycles, 3, 3) turns about the vertical (Y) by k · 360° / cycles."""
    a = 2 * np.pi * np.arange(cycles) / cycles
    c, s = np.cos(a), np.sin(a)
    rot = np.zeros((cycles, 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1.0, -s, c
    return rot


def augment(markers_22: np.ndarray, height_m: float, mass_kg: float, cycles: int = 1) -> np.ndarray:
    """(T, 22, 3) POSE2SIM_22 markers, Y up, metres → (T, 43, 3) OPENCAP_43 markers, NaN where the
    model's inputs are missing.

    `cycles` = N > 1 is a heading ensemble: the model also sees the subject turned about the vertical
    through `Hip` by k · 360°/N (k = 1 … N−1); each output is turned back and the N are averaged.
    The LSTM's errors depend on the heading (turning the demo's input by 90° moves its markers by
    ~9 mm), so averaging them out steadies the markers: on the demo's four cameras, 4 cycles lower
    the spread (CV) of rigid augmented-marker distances from 4.6 % to 4.1 % and their jitter from
    7.3 to 6.9 m/s² (benchmarks/biomechanics.py cycles). Averaging over small random input
    perturbations instead was tried and made both worse (it adds per-frame noise)."""
    if cycles < 1:
        raise ValueError(f"cycles must be ≥ 1, got {cycles}")
    p = np.asarray(markers_22, dtype=np.float64)
    n = p.shape[0]
    out = np.full((n, len(OPENCAP_LOWER_35) + len(OPENCAP_UPPER_8), 3), np.nan)
    turns = _headings(cycles)
    hip = p[:, _IDX["Hip"]]
    col = 0
    for kind, features, responses in _MODELS:
        session, mean, std = _model(kind)
        feat = p[:, [_IDX[f] for f in features]]  # (T, F, 3)
        ok = np.isfinite(feat).all(axis=(1, 2)) & np.isfinite(hip).all(axis=1)
        for a, b in runs(ok):
            # In blocks of frames, so that memory stays flat on long videos (the LSTM's working
            # memory grows with the sequence: 400 MB for 10 minutes). The LSTM is causal, so a
            # block restarted _WARM_UP frames early nearly continues the whole run: up to 0.4 mm
            # apart on a 7000-frame demo loop (the first _BLOCK frames are identical), against
            # the augmenter's centimetre errors.
            for s in range(a, b, _BLOCK):
                e = min(b, s + _BLOCK)
                w0 = max(a, s - _WARM_UP)
                rel = feat[w0:e] - hip[w0:e, None]  # Pose2Sim step 2
                total = np.zeros((e - s, len(responses), 3))
                for turn in turns:  # one heading at a time, not a batch of them: memory again
                    n = e - w0  # step 3, then step 4: height and mass features
                    x = np.concatenate([(rel @ turn.T).reshape(n, -1) / height_m, np.full((n, 1), height_m),
                                        np.full((n, 1), mass_kg)], axis=1)
                    x = ((x - mean) / std).astype(np.float32)[None]  # step 5
                    y = session.run(["output_0"], {"inputs": x})[0][0, s - w0:].astype(np.float64)
                    y = y.reshape(e - s, -1, 3) * height_m  # un-normalised, relative to Hip
                    total += y @ turn  # turned back
                out[s:e, col:col + len(responses)] = total / cycles + hip[s:e, None]
        col += len(responses)
    return out
