"""VideoPose3D temporal lifting: a 2D keypoint track → root-relative H36M-17 3D, from a user's checkpoint.

VideoPose3D (Pavllo et al., CVPR 2019, facebookresearch/VideoPose3D) lifts a whole track of 2D
keypoints with dilated temporal convolutions. Its checkpoints are `torch.save` dicts whose
`model_pos` entry is the state dict of `TemporalModel` (or of the training-time
`TemporalModelOptimized1f`, which has the same parameter names and shapes). The architecture is
not stored, so `load_lifter` reads it back from the tensor shapes; only the input keypoint order
and causality cannot be read and are arguments:

- `pretrained_h36m_detectron_coco.bin` (the in-the-wild model): COCO-17 input order → `"coco17"`.
- `pretrained_h36m_cpn.bin` / models trained on `cpn_ft_h36m_dbb` or ground-truth 2D: H36M-17
  input order → `"h36m17"`.
- `--causal` models: `causal=True` (the weights look the same).

Output frame: VideoPose3D predicts Human3.6M camera coordinates, whose axes are OpenCV's (x right,
y down, z forward: the H36M projection divides by z and adds the principal point to pixel
coordinates that grow rightwards and downwards), in metres, relative to the pelvis. So its output
is already in the engine's camera frame minus the root translation; no axis flip is needed. It
was trained on H36M's cameras (≈47° horizontal field of view, subjects near the centre), so depth
detail is a prior, not a measurement.

torch is imported inside functions only: importing this module (or the engine) stays fast, and
`TemporalModel` is built on first access through the module's `__getattr__`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import EngineError
from .joint_sets import COCO_17, H36M_17, MEDIAPIPE_33, MP, MP_TO_COCO17, mediapipe_to_h36m

if TYPE_CHECKING:
    import torch

LAYOUTS: dict[str, tuple[str, ...]] = {"coco17": COCO_17, "h36m17": H36M_17, "mediapipe33": MEDIAPIPE_33}
INPUT_LAYOUTS = ("coco17", "h36m17")  # what released checkpoints take

# H36M-17 joints that are MediaPipe-33 landmarks (the rest are derived: pelvis, spine, thorax, head).
H36M_TO_MP: dict[int, int] = {
    H36M_17.index(h): MP[m] for h, m in (
        ("right_hip", "right_hip"), ("right_knee", "right_knee"), ("right_ankle", "right_ankle"),
        ("left_hip", "left_hip"), ("left_knee", "left_knee"), ("left_ankle", "left_ankle"),
        ("neck_nose", "nose"), ("left_shoulder", "left_shoulder"), ("left_elbow", "left_elbow"),
        ("left_wrist", "left_wrist"), ("right_shoulder", "right_shoulder"),
        ("right_elbow", "right_elbow"), ("right_wrist", "right_wrist"),
    )
}


def mirror_permutation(names: Sequence[str]) -> np.ndarray:
    """Index of each joint's left/right partner (centre joints map to themselves)."""
    index = {n: i for i, n in enumerate(names)}
    swap = lambda n: (n.replace("left_", "right_") if n.startswith("left_")
                      else n.replace("right_", "left_") if n.startswith("right_") else n)
    return np.array([index[swap(n)] for n in names])


def convert_layout(points: np.ndarray, src: str, dst: str) -> np.ndarray:
    """(…, J_src, D) → (…, J_dst, D) between "mediapipe33", "coco17" and "h36m17".

    COCO → H36M goes through MediaPipe-33 (COCO-17 is a named subset of it, and every landmark
    `mediapipe_to_h36m` reads is in COCO-17), so the H36M derivation is defined once."""
    for name in (src, dst):
        if name not in LAYOUTS:
            raise EngineError(f"unknown keypoint layout {name!r}; expected one of {', '.join(LAYOUTS)}")
    if points.shape[-2] != len(LAYOUTS[src]):
        raise EngineError(f"{src} keypoints need {len(LAYOUTS[src])} joints, got {points.shape[-2]}")
    if src == dst:
        return points
    if src == "coco17":
        full = np.full((*points.shape[:-2], len(MEDIAPIPE_33), points.shape[-1]), np.nan, points.dtype)
        full[..., MP_TO_COCO17, :] = points
        points, src = full, "mediapipe33"
    if src == "mediapipe33" and dst == "coco17":
        return points[..., MP_TO_COCO17, :]
    if src == "mediapipe33" and dst == "h36m17":
        return mediapipe_to_h36m(points)
    raise EngineError(f"cannot convert {src} keypoints to {dst}: {src} lacks joints {dst} needs")


def normalize_screen_coordinates(xy: np.ndarray, width: float, height: float) -> np.ndarray:
    """VideoPose3D's 2D normalisation: x ∈ [0, w] → [-1, 1], y scaled by the same factor and
    centred, so the aspect ratio is kept (y ∈ [-h/w, h/w])."""
    return xy / width * 2.0 - np.array([1.0, height / width])


def lifted_to_mediapipe(h36m: np.ndarray, mp_world: np.ndarray) -> np.ndarray:
    """A MediaPipe-33 3D prior (T, 33, 3) from lifted H36M-17 joints (T, 17, 3).

    The 13 shared joints take the lifted positions; every other landmark (face, hands, heels,
    toes) keeps MediaPipe's offset from the joint it rides on (nose, wrist, ankle). `mp_world` must
    be in the same frame and units as `h36m` (root-relative camera axes, metres)."""
    out = np.array(mp_world, dtype=np.float64, copy=True)
    for h, m in H36M_TO_MP.items():
        out[:, m] = h36m[:, h]
    riders = {
        "nose": list(MEDIAPIPE_33[1:11]),
        "left_wrist": ["left_pinky", "left_index", "left_thumb"],
        "right_wrist": ["right_pinky", "right_index", "right_thumb"],
        "left_ankle": ["left_heel", "left_foot_index"],
        "right_ankle": ["right_heel", "right_foot_index"],
    }
    for parent, children in riders.items():
        idx = [MP[c] for c in children]
        out[:, idx] = out[:, MP[parent], None] + (mp_world[:, idx] - mp_world[:, MP[parent], None])
    return out


@functools.cache
def _temporal_model_class() -> type:
    """Define TemporalModel on first use so torch is imported only when lifting."""
    from torch import nn

    class TemporalModel(nn.Module):
        """VideoPose3D's reference temporal model, with the official parameter names
        (`expand_conv`, `expand_bn`, `layers_conv`, `layers_bn`, `shrink`) so that
        `load_state_dict(ckpt['model_pos'])` works strictly.

        Input (B, T, num_joints_in, in_features) → output (B, T - receptive_field + 1,
        num_joints_out, 3): convolutions are "valid", so callers pad the input (`Lifter.lift`
        replicates edge frames). A causal model uses the same symmetric kernels; causality comes
        from padding only on the left and from residuals aligned to the window's last frame."""

        def __init__(self, num_joints_in: int, in_features: int, num_joints_out: int,
                     filter_widths: Sequence[int], causal: bool = False, dropout: float = 0.25,
                     channels: int = 1024, dense: bool = False) -> None:
            super().__init__()
            if not filter_widths or any(fw < 1 or fw % 2 == 0 for fw in filter_widths):
                raise ValueError(f"filter widths must be odd and positive, got {list(filter_widths)}")
            self.num_joints_in, self.in_features = num_joints_in, in_features
            self.num_joints_out, self.filter_widths = num_joints_out, list(filter_widths)
            self.causal, self.channels, self.dense = causal, channels, dense
            self.drop = nn.Dropout(dropout)
            self.relu = nn.ReLU(inplace=True)
            self.pad = [filter_widths[0] // 2]
            self.causal_shift = [filter_widths[0] // 2 if causal else 0]
            self.expand_conv = nn.Conv1d(num_joints_in * in_features, channels, filter_widths[0], bias=False)
            self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
            convs, bns = [], []
            dilation = filter_widths[0]
            for fw in filter_widths[1:]:
                pad = (fw - 1) * dilation // 2
                self.pad.append(pad)
                self.causal_shift.append(fw // 2 * dilation if causal else 0)
                # Dense is the paper's ablation: same reach, undilated (wider) kernels.
                convs.append(nn.Conv1d(channels, channels, 2 * pad + 1 if dense else fw,
                                       dilation=1 if dense else dilation, bias=False))
                bns.append(nn.BatchNorm1d(channels, momentum=0.1))
                convs.append(nn.Conv1d(channels, channels, 1, bias=False))
                bns.append(nn.BatchNorm1d(channels, momentum=0.1))
                dilation *= fw
            self.layers_conv = nn.ModuleList(convs)
            self.layers_bn = nn.ModuleList(bns)
            self.shrink = nn.Conv1d(channels, num_joints_out * 3, 1)

        def receptive_field(self) -> int:
            """Input frames that one output frame sees."""
            return 1 + 2 * sum(self.pad)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.ndim != 4 or x.shape[-2] != self.num_joints_in or x.shape[-1] != self.in_features:
                raise ValueError(f"expected (batch, frames, {self.num_joints_in}, {self.in_features}), "
                                 f"got {tuple(x.shape)}")
            b = x.shape[0]
            x = x.reshape(b, x.shape[1], -1).permute(0, 2, 1)
            x = self.drop(self.relu(self.expand_bn(self.expand_conv(x))))
            for i in range(len(self.pad) - 1):
                pad, shift = self.pad[i + 1], self.causal_shift[i + 1]
                res = x[:, :, pad + shift: x.shape[2] - pad + shift]
                x = self.drop(self.relu(self.layers_bn[2 * i](self.layers_conv[2 * i](x))))
                x = res + self.drop(self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x))))
            x = self.shrink(x).permute(0, 2, 1)
            return x.reshape(b, -1, self.num_joints_out, 3)

    return TemporalModel


def __getattr__(name: str) -> Any:
    if name == "TemporalModel":
        return _temporal_model_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Lifter:
    """A loaded VideoPose3D model ready to lift 2D tracks; build it with `load_lifter`."""

    def __init__(self, model: torch.nn.Module, device: str, input_layout: str, source: Path) -> None:
        self.model, self.device, self.input_layout, self.source = model, device, input_layout, source

    @property
    def receptive_field(self) -> int:
        return self.model.receptive_field()

    @property
    def causal(self) -> bool:
        return self.model.causal

    def lift(self, keypoints_px: np.ndarray, width: float, height: float, layout: str = "coco17", *,
             confidence: np.ndarray | None = None, flip: bool = True, chunk_frames: int = 2048,
             batch_frames: int = 16384) -> np.ndarray:
        """2D keypoints (T, J, 2) in pixels of a `width`×`height` video → (T, 17, 3) H36M-17
        joints in metres, camera axes (x right, y down, z forward), pelvis at 0.

        `layout` names the order of `keypoints_px` ("coco17", "h36m17" or "mediapipe33"); it is
        converted to the checkpoint's input layout. NaN keypoints are interpolated over time
        (VideoPose3D's own inference interpolates missed detections); frames with no keypoint at
        all come out NaN. The track is edge-padded by half the receptive field on each side (all
        on the left for a causal model), so any length ≥ 1 works and output length = input length.
        `flip` averages with the horizontally mirrored input, as VideoPose3D's test-time
        augmentation does. Frames are processed in windows of `chunk_frames` outputs, at most
        `batch_frames` input frames per forward pass, so memory stays bounded on long videos;
        the convolutions are valid, so windows give the same result as one pass.
        `confidence` (T, J) is used only by checkpoints that take (x, y, score) per joint."""
        import torch

        kp = np.asarray(keypoints_px, dtype=np.float64)
        if kp.ndim != 3 or kp.shape[-1] != 2 or len(kp) == 0:
            raise EngineError(f"keypoints to lift must be (frames ≥ 1, joints, 2), got {kp.shape}")
        if not (width > 0 and height > 0):
            raise EngineError(f"video size must be positive to lift keypoints, got {width}×{height}")
        x = convert_layout(kp, layout, self.input_layout)
        seen = np.isfinite(x).all(axis=-1)
        frame_seen = seen.any(axis=1)
        if not frame_seen.any():
            raise EngineError("no 2D keypoints to lift: every frame is empty")
        never = [LAYOUTS[self.input_layout][j] for j in np.flatnonzero(~seen.any(axis=0))]
        if never:
            raise EngineError(f"cannot lift: {', '.join(never)} never detected in the clip")
        x = normalize_screen_coordinates(_interpolate_gaps(x, seen), width, height)
        model = self.model
        if model.in_features == 3:
            c = np.ones(kp.shape[:2]) if confidence is None else np.asarray(confidence, np.float64)
            c = convert_layout(c[..., None], layout, self.input_layout)
            x = np.concatenate([x, np.nan_to_num(c, nan=0.0)], axis=-1)

        rf = model.receptive_field()
        pad = (rf - 1) // 2
        shift = pad if model.causal else 0
        x = np.pad(x, ((pad + shift, pad - shift), (0, 0), (0, 0)), mode="edge")
        t_out = len(kp)
        chunk = max(1, min(chunk_frames, t_out))
        n_win = -(-t_out // chunk)
        # The last window runs past the end: extend by edge frames, drop those outputs after.
        x = np.pad(x, ((0, n_win * chunk - t_out), (0, 0), (0, 0)), mode="edge")
        per_pass = max(1, batch_frames // ((chunk + rf - 1) * (2 if flip else 1)))
        kps_mirror = mirror_permutation(LAYOUTS[self.input_layout])
        joints_mirror = mirror_permutation(H36M_17)

        out = []
        with torch.inference_mode():
            for start in range(0, n_win, per_pass):
                stop = min(start + per_pass, n_win)
                windows = [x[i * chunk: i * chunk + chunk + rf - 1] for i in range(start, stop)]
                batch = torch.from_numpy(np.stack(windows)).float().to(self.device)
                pred = model(batch)
                if flip:
                    mirrored = batch[:, :, torch.as_tensor(kps_mirror, device=batch.device)]
                    mirrored[..., 0] *= -1
                    back = model(mirrored)[:, :, joints_mirror]
                    back[..., 0] *= -1
                    pred = 0.5 * (pred + back)
                out.append(pred.reshape(-1, 17, 3).cpu().numpy())
        pose = np.concatenate(out)[:t_out]
        # Trained against a pelvis pinned at 0; pin it exactly rather than nearly.
        pose = pose - pose[:, :1]
        pose[~frame_seen] = np.nan
        return pose


def _interpolate_gaps(x: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Linear interpolation over time of unseen keypoints, held constant beyond the ends."""
    x = x.copy()
    t = np.arange(len(x))
    for j in np.flatnonzero(~seen.all(axis=0)):
        ok = seen[:, j]
        for c in range(x.shape[-1]):
            x[:, j, c] = np.interp(t, t[ok], x[ok, j, c])
    return x


def _pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError(f"lifter device {device!r} requested but CUDA is not available")
    try:
        return str(torch.device(device))
    except RuntimeError:
        raise EngineError(f"unknown lifter device {device!r}; use auto, cpu or cuda") from None


def _read_checkpoint(path: Path, trusted: bool) -> Any:
    """torch.load with weights_only, allowing the NumPy arrays VideoPose3D's `random_state`
    entries hold (a RandomState state tuple); anything else needs `trusted=True`."""
    import pickle

    import torch

    try:
        from numpy._core.multiarray import _reconstruct  # NumPy ≥ 2 (a shim in 1.26)
    except ImportError:  # pragma: no cover - older NumPy
        from numpy.core.multiarray import _reconstruct
    dtypes = {type(np.dtype(t)) for t in (np.uint32, np.int32, np.int64, np.float32, np.float64, np.bool_)}
    numpy_globals = [(_reconstruct, "numpy.core.multiarray._reconstruct"),
                     (_reconstruct, "numpy._core.multiarray._reconstruct"), np.ndarray, np.dtype, *dtypes]
    try:
        if trusted:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(numpy_globals):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refusing an object vs. bytes that are not a pickle at all.
        if m := re.search(r"Unsupported global: GLOBAL (\S+)|Can only build .* but got (.+)", str(exc)):
            raise EngineError(f"lifter checkpoint {path} holds a {m.group(1) or m.group(2)} object besides "
                              "tensors; load it with trusted=True only if you trust its source") from None
        raise EngineError(f"lifter checkpoint {path} is not a readable PyTorch file") from None
    except Exception as exc:  # torch raises many types for truncated/garbage files
        raise EngineError(f"lifter checkpoint {path} is not a readable PyTorch file "
                          f"({type(exc).__name__})") from None


def _state_dict(ckpt: Any, path: Path) -> dict[str, Any]:
    import torch

    state = ckpt.get("model_pos", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or "expand_conv.weight" not in {k.removeprefix("module.") for k in state}:
        raise EngineError(f"{path} is not a VideoPose3D checkpoint (no 'model_pos' TemporalModel state dict)")
    # DataParallel-saved checkpoints prefix every name with "module.".
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise EngineError(f"{path}: 'model_pos' holds non-tensor entries; not a TemporalModel state dict")
    return state


def infer_architecture(state: dict[str, Any], dense: bool = False, num_joints_in: int = 17) -> dict[str, Any]:
    """TemporalModel arguments from a `model_pos` state dict's tensor shapes, so 27-, 81- and
    243-frame checkpoints (any channel count) load without being told their architecture."""
    expand, shrink = state.get("expand_conv.weight"), state.get("shrink.weight")
    if expand is None or expand.ndim != 3 or shrink is None or shrink.ndim != 3:
        raise EngineError("state dict lacks TemporalModel's expand_conv/shrink convolutions")
    channels, in_channels, fw0 = expand.shape
    if in_channels % num_joints_in or in_channels // num_joints_in not in (2, 3):
        raise EngineError(f"checkpoint takes {in_channels} input values per frame, not "
                          f"{num_joints_in} joints × (x, y[, score])")
    if shrink.shape[0] % 3:
        raise EngineError(f"checkpoint outputs {shrink.shape[0]} values per frame, not joints × 3")
    convs = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"layers_conv\.(\d+)\.weight", k)))
    if convs != list(range(len(convs))) or len(convs) % 2:
        raise EngineError(f"checkpoint's layers_conv are not whole residual blocks: indices {convs}")
    widths, dilation = [int(fw0)], int(fw0)
    for b in range(len(convs) // 2):
        k = int(state[f"layers_conv.{2 * b}.weight"].shape[-1])
        fw = (k - 1) // dilation + 1 if dense else k
        widths.append(fw)
        dilation *= fw
    if any(fw % 2 == 0 for fw in widths):
        raise EngineError(f"checkpoint has even filter widths {widths}; VideoPose3D uses odd ones")
    return {"num_joints_in": num_joints_in, "in_features": in_channels // num_joints_in,
            "num_joints_out": shrink.shape[0] // 3, "filter_widths": widths, "channels": int(channels)}


def load_lifter(path: str | Path, device: str = "auto", input_layout: str = "coco17", *,
                causal: bool = False, dense: bool = False, trusted: bool = False) -> Lifter:
    """Load a VideoPose3D checkpoint (`torch.save` dict with a `model_pos` state dict, or that
    state dict alone) for inference on `device` ("auto": CUDA when available, else CPU).

    `input_layout` is the 2D keypoint order the checkpoint was trained on: "coco17" for
    pretrained_h36m_detectron_coco.bin, "h36m17" for the CPN / ground-truth-2D models. Filter
    widths, channels and joint counts come from the tensor shapes; `causal` and `dense` cannot be
    seen in the weights and must match how the model was trained. Nothing is downloaded."""
    if input_layout not in INPUT_LAYOUTS:
        raise EngineError(f"lifter input layout must be one of {', '.join(INPUT_LAYOUTS)}, "
                          f"not {input_layout!r}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise EngineError(f"lifter checkpoint not found: {path}")
    device = _pick_device(device)
    import torch

    state = _state_dict(_read_checkpoint(path, trusted), path)
    arch = infer_architecture(state, dense, len(LAYOUTS[input_layout]))
    if arch["num_joints_out"] != len(H36M_17):
        raise EngineError(f"{path.name} outputs {arch['num_joints_out']} joints; the lifter expects "
                          f"Human3.6M's {len(H36M_17)}")
    model = _temporal_model_class()(**arch, causal=causal, dense=dense)
    expected = model.state_dict()
    # Checkpoints from PyTorch 0.4.0 (2018) predate BatchNorm's num_batches_tracked counter.
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = f"missing {', '.join(missing[:3])}" if missing else f"unexpected {', '.join(unexpected[:3])}"
        raise EngineError(f"{path.name} does not match a VideoPose3D TemporalModel "
                          f"(filter widths {arch['filter_widths']}): {detail}")
    wrong = [k for k, v in state.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if wrong:
        raise EngineError(f"{path.name} does not match a VideoPose3D TemporalModel: {wrong[0]} has shape "
                          f"{tuple(state[wrong[0]].shape)}, expected {tuple(expected[wrong[0]].shape)}")
    model.load_state_dict(state, strict=True)
    model.eval().to(device)
    return Lifter(model, device, input_layout, path)
