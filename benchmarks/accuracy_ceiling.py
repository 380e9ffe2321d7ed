"""How far each input of the skeleton fit holds back its accuracy, against the 4-view reference.

For each demo camera, MediaPipe runs once; then the reconstruction is scored (same figures as
accuracy.py) with the engine as shipped and with one or both of the fit's inputs replaced by the
reference's own (which no user has — this is a diagnosis, not a result):
  shipped      the engine as it runs
  ref lengths  the subject's bone lengths measured on the reference (median over frames)
  ref prior    the reference's bone vectors in place of MediaPipe's 3D as the fit's prior
  ref both     both of the above
  2D ceiling   no fit: each of our 2D landmarks placed on its viewing ray at the reference's depth
               (what a perfect depth estimate would reach with MediaPipe's 2D as it is)

    .venv/bin/python benchmarks/accuracy_ceiling.py [--height 1.72]

Each camera's calibrated focal length is used (accuracy.py --calib-focal).
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import score  # noqa: E402
from multiview_reference import demo_dir, load_reference  # noqa: E402

from engine import reconstruct as recon_module  # noqa: E402
from engine.camera import Intrinsics  # noqa: E402
from engine.config import RunConfig  # noqa: E402
from engine.detection import detect  # noqa: E402
from engine.left_right import repair_mirrored  # noqa: E402
from engine.skeleton_fit import bone_vectors  # noqa: E402
from engine.video import probe  # noqa: E402

CONDITIONS = ("shipped", "ref lengths", "ref prior", "ref both", "2D ceiling")
COLS = ("pa_mpjpe_mm", "mpjpe_mm", "knee_rmse_deg", "elbow_rmse_deg")


def reconstruct_with(track, k: Intrinsics, cfg: RunConfig, fps: float, ref_cam: np.ndarray,
                     lengths: bool, prior: bool) -> np.ndarray:
    """The engine's reconstruct(), with the fit's lengths and/or prior swapped for the reference's
    (the two module-level names reconstruct() calls are replaced for the duration)."""
    ref_bones = bone_vectors(ref_cam)
    ref_lengths = np.nanmedian(np.linalg.norm(ref_bones, axis=-1), axis=0)
    own_lengths, own_fit = recon_module.lengths_from_2d, recon_module.fit_skeleton

    def lengths_from_2d(*args, **kwargs):
        got = own_lengths(*args, **kwargs)
        return np.where(np.isfinite(ref_lengths), ref_lengths, got) if lengths else got

    def fit_skeleton(init, bones, *args, **kwargs):
        if prior:
            bones = np.where(np.isfinite(ref_bones), ref_bones, bones)
        return own_fit(init, bones, *args, **kwargs)

    recon_module.lengths_from_2d, recon_module.fit_skeleton = lengths_from_2d, fit_skeleton
    try:
        return recon_module.reconstruct(track, k, cfg, fps).markers
    finally:
        recon_module.lengths_from_2d, recon_module.fit_skeleton = own_lengths, own_fit


def on_rays_at_reference_depth(pixels: np.ndarray, k: Intrinsics, ref_cam: np.ndarray) -> np.ndarray:
    rays = np.stack([(pixels[..., 0] - k.cx) / k.fx, (pixels[..., 1] - k.cy) / k.fy,
                     np.ones(pixels.shape[:-1])], axis=-1)
    return rays * ref_cam[..., 2:3]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=float, default=1.72)
    args = ap.parse_args()
    ref = load_reference()
    print(f"reference: {ref.world_33.shape[0]} frames @ {ref.fps:g} fps; --height {args.height}; "
          "calibrated focal lengths")
    print(f"{'camera':<8}{'condition':<13}" + "".join(f"{c:>16}" for c in COLS))
    totals: dict[str, list] = {c: [] for c in CONDITIONS}
    for c, cam in enumerate(ref.cameras):
        video = demo_dir() / "videos" / f"{cam.name}.mp4"
        cfg = RunConfig(video=video, height_m=args.height, focal_px=float(cam.K[0, 0]))
        info = probe(video)
        track, _, _ = detect(cfg, info, 0, None, lambda *_: None, threading.Event())
        track, _ = repair_mirrored(track)
        k = Intrinsics.from_settings(info.width, info.height, cfg.fov_deg, cfg.focal_px)
        ref_cam = ref.in_camera(c)
        for cond in CONDITIONS:
            if cond == "2D ceiling":
                pts = on_rays_at_reference_depth(track.pixels.astype(float), k, ref_cam)
            else:
                pts = reconstruct_with(track, k, cfg, ref.fps, ref_cam, lengths="lengths" in cond or
                                       "both" in cond, prior="prior" in cond or "both" in cond)
            s = score(pts, ref_cam, ref.fps, rigid=True)
            totals[cond].append([s[col] for col in COLS])
            print(f"{cam.name:<8}{cond:<13}" + "".join(f"{s[col]:>16.1f}" for col in COLS))
    for cond, rows in totals.items():
        print(f"{'mean':<8}{cond:<13}" + "".join(f"{v:>16.1f}" for v in np.mean(rows, axis=0)))


if __name__ == "__main__":
    main()
