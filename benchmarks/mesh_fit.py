"""Body-mesh fit (engine/anny_fit.py) on Pose2Sim's demo, cam01 (100 frames, 60 fps, 1080x1920).

Prints: the first loads (torch and anny imports, the Anny model; the very first load on a machine
also builds Anny's cache, ~90 s, reported when it happens), then per repeat the whole fit (shape,
poses, skinned meshes) in frames/s after warm-up (target ≥ 5 on the 2-core CPU), the pose phase
alone, and the mesh keypoints' median distance to the engine's markers (target ≤ 2 cm) and of their
projections to MediaPipe's landmarks (target ≤ 8 px), overall and for the 12 limb joints.
--warp also times the Warp kernel compile of Anny's default skinning in a fresh kernel cache (the fit
skins in torch and never compiles Warp kernels; this is for comparison).

    .venv/bin/python benchmarks/mesh_fit.py [--markers OUT/cam01/cam01_markers.npz] [--repeats 2]
        [--frames N] [--warp]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.camera import Intrinsics  # noqa: E402
from engine.joint_sets import MP, MP_MHR70_PAIRS  # noqa: E402
from engine.mesh_stage import keypoint_errors  # noqa: E402
from engine.result import find_markers  # noqa: E402
from engine.result import load as load_result  # noqa: E402

LIMBS = [MP[f"{s}_{j}"] for s in ("left", "right") for j in ("shoulder", "elbow", "wrist", "hip", "knee",
                                                              "ankle")]


def demo_markers(frames: int | None) -> Path:
    """The engine's markers for cam01 (a run without --mesh into a temporary folder)."""
    import importlib.util

    video = Path(importlib.util.find_spec("Pose2Sim").origin).parent / "Demo_SinglePerson/videos/cam01.mp4"
    out = Path(tempfile.mkdtemp(prefix="hp3d-mesh-bench-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    args = [sys.executable, "-m", "engine", "run", str(video), "--height", "1.72", "--out", str(out),
            "--quiet", "--no-angles"]
    if frames:
        args += ["--frames", f"0:{frames}"]
    subprocess.run(args, cwd=ROOT, check=True)
    return find_markers(out / "cam01")


def warp_compile_s() -> float:
    """Anny with its default Warp skinning, in a fresh Warp kernel cache: the first forward compiles."""
    code = ("import time, torch, anny; m = anny.Anny(); t = time.perf_counter(); "
            "m(pose_parameters=None); print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory(prefix="hp3d-warp-") as cache:
        env = dict(os.environ, WARP_CACHE_PATH=cache)
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True)
    return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markers", type=Path, help="an engine run's <stem>_markers.npz (default: run cam01)")
    ap.add_argument("--frames", type=int, default=None, help="first N frames only")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--warp", action="store_true", help="also time a cold Warp kernel compile")
    args = ap.parse_args()
    path = args.markers or demo_markers(args.frames)
    res = load_result(path.parent if path.suffix == ".npz" else path)
    markers, pixels, vis = res.markers_camera, res.pixels, res.visibility
    if args.frames:
        markers, pixels, vis = markers[:args.frames], pixels[:args.frames], vis[:args.frames]
    i = res.intrinsics
    k = Intrinsics(i["fx"], i["fy"], i["cx"], i["cy"], int(i["width"]), int(i["height"]))
    n = len(markers)

    cache = Path(os.environ.get("ANNY_CACHE_DIR", Path.home() / ".cache" / "anny"))
    had_cache = any(cache.glob("v*/build_compact_model_data_*.safetensors"))
    t = time.perf_counter()
    import anny  # noqa: F401
    import torch  # noqa: F401
    t_import = time.perf_counter() - t
    from engine.anny_fit import FitOptions, fit_body, load_body

    t = time.perf_counter()
    body = load_body()
    t_load = time.perf_counter() - t
    print(f"imports torch+anny {t_import:.1f} s; Anny model load {t_load:.1f} s on {body.device}"
          + ("" if had_cache else " (first on this machine: includes building Anny's cache)"))
    if args.warp:
        print(f"Warp kernel compile for Anny's default skinning (cold cache, not used by the fit): "
              f"{warp_compile_s():.1f} s")

    print(f"{n} frames of {path}")
    for r in range(args.repeats):
        t = time.perf_counter()
        fit = fit_body(markers, pixels, vis, k, FitOptions(height_m=1.72, mass_kg=70.0))
        total = time.perf_counter() - t
        s = fit.stats
        err = keypoint_errors(fit.keypoints, markers, pixels, vis, k)
        mhr = dict(MP_MHR70_PAIRS.tolist())
        limb = np.linalg.norm(fit.keypoints[:, [mhr[i] for i in LIMBS]] - markers[:, LIMBS], axis=-1)
        print(f"repeat {r + 1}: fit {total:.2f} s = {n / total:.1f} frames/s (shape {s['shape_s']:.1f} s, "
              f"poses {s['pose_fps']:.0f} frames/s, meshes {s['mesh_s']:.2f} s); keypoints vs markers "
              f"{100 * err['keypoint_error_median_m']:.2f} cm (limb joints "
              f"{100 * np.nanmedian(limb):.2f} cm), reprojection {err['reprojection_median_px']:.2f} px")


if __name__ == "__main__":
    main()
