"""The body-mesh stage (`--mesh`): Anny fitted to every frame (engine/anny_fit.py), written in SAM 3D
Body's format (engine/sam3d_format.py) into the run's `mesh/` folder:
    <stem>_mesh.npz                 the arrays, stacked over frames
    frames/<stem>_<frame>.<ext>     with --mesh-format obj|ply|glb: one mesh per frame
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .camera import Intrinsics, project
from .errors import EngineError
from .joint_sets import MP_MHR70_PAIRS
from .progress import ProgressFn
from .sam3d_format import MESH_FORMATS, sam3d_arrays, write_frame_meshes

if TYPE_CHECKING:
    from .config import RunConfig

SEXES = ("female", "male")


def check_mesh_options(formats: tuple[str, ...] = (), sex: str | None = None,
                       age: float | None = None) -> None:
    """Reject bad --mesh-format, --sex and --age values before any work starts."""
    bad = [f for f in formats if f not in MESH_FORMATS]
    if bad:
        raise EngineError(f"--mesh-format takes {', '.join(MESH_FORMATS)}, got {', '.join(bad)}")
    if sex is not None and sex not in SEXES:
        raise EngineError(f"--sex must be female or male, got {sex}")
    if age is not None and not (isinstance(age, int | float) and 1 <= age <= 110):
        raise EngineError(f"--age must be in years (1-110), got {age}")


def available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "anny", "roma"))


def warm_up(device: str | None = None) -> threading.Thread | None:
    """Load Anny in the background (seconds; minutes the first time on a machine) while the video is
    read; the fit then finds it loaded. Errors surface again when the fit loads it."""
    if not available():
        return None

    def load() -> None:
        try:
            from .anny_fit import load_body

            load_body(device)
        except Exception:  # noqa: BLE001  reported by the fit's own load
            pass

    thread = threading.Thread(target=load, name="anny-load", daemon=True)
    thread.start()
    return thread


def run_mesh(markers: np.ndarray, pixels: np.ndarray, visibility: np.ndarray, intrinsics: Intrinsics,
             cfg: RunConfig, out_dir: Path, progress: ProgressFn | None = None,
             cancel: threading.Event | None = None, *, first_frame: int = 0, fps: float = 30.0) -> dict:
    """Fit Anny to the (T, 33, 3) camera-frame markers and (T, 33, 2) pixels and write the mesh files
    into `out_dir` (the subject and the mesh options come from `cfg`). Returns the record for
    run.json."""
    from .anny_fit import FitOptions, fit_body

    if not available():
        raise EngineError("--mesh needs the anny body model: pip install anny==0.6.2 (with torch)")
    progress = progress or (lambda f, m: None)
    formats, sex, age = cfg.mesh_formats, cfg.sex, cfg.age_years
    t0 = time.perf_counter()
    opts = FitOptions(height_m=cfg.height_m, mass_kg=cfg.mass_kg, sex=sex, age_years=age)
    fit = fit_body(markers, pixels, visibility, intrinsics, opts, lambda f, m: progress(0.9 * f, m), cancel,
                   visibility_min=cfg.visibility_min)
    frame_index = first_frame + np.arange(len(markers))
    arrays = sam3d_arrays(fit, intrinsics, frame_index, fps)
    progress(0.92, "writing the mesh")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"mesh_npz": f"{cfg.stem}_mesh.npz"}
    np.savez(out_dir / files["mesh_npz"], **arrays)  # float vertices hardly compress; this is 10x faster
    if formats:
        write_frame_meshes(out_dir / "frames", cfg.stem, arrays, formats)
        files["frames_dir"] = "frames"
    progress(1.0, "mesh written")
    return {"files": files, "formats": list(formats), "frames": int(len(markers)),
            "frames_fitted": int(fit.valid.sum()), "vertices": int(arrays["pred_vertices"].shape[1]),
            "phenotype": {k: round(v, 4) for k, v in fit.phenotype.items()},
            "local_changes": {k: round(v, 4) for k, v in fit.local_changes.items()},
            **keypoint_errors(fit.keypoints, markers, pixels, visibility, intrinsics,
                              cfg.visibility_min),
            "timings": {**fit.stats, "total_s": round(time.perf_counter() - t0, 3)}}


def keypoint_errors(keypoints: np.ndarray, markers: np.ndarray, pixels: np.ndarray, visibility: np.ndarray,
                    intrinsics: Intrinsics, visibility_min: float = 0.3) -> dict:
    """Median distance of the mesh's MHR-70 keypoints (T, 70, 3, camera frame) to the engine's markers
    they correspond to, and of their projections to MediaPipe's pixels (visible landmarks)."""
    mp, mhr = MP_MHR70_PAIRS[:, 0], MP_MHR70_PAIRS[:, 1]
    kp = keypoints[:, mhr]
    d3 = np.linalg.norm(kp - markers[:, mp], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d2 = np.linalg.norm(project(kp, intrinsics) - pixels[:, mp, :2], axis=-1)
    d2 = np.where(visibility[:, mp] >= visibility_min, d2, np.nan)
    med = lambda x: round(float(np.nanmedian(x)), 4) if np.isfinite(x).any() else None  # noqa: E731
    return {"keypoint_error_median_m": med(d3), "reprojection_median_px": med(d2)}
