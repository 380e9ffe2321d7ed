"""Left/right repair against the 4-camera reference of Pose2Sim's demo: on how many frames each
pose model's reading of the body (as given, or mirrored: facing the other way with its sides
swapped) is wrong, as MediaPipe gives it and after `engine.left_right`'s repair, with the turn
continuity and MediaPipe's majority alone and with the feet's vote added (one run, same tracks).

A frame's true reading is the one whose labelled 2D limb points lie nearer the reference projected
into that camera; frames where the two readings are within 15 px of each other (side-on, limbs
overlapping) count as undecided and are left out.

    .venv/bin/python benchmarks/left_right.py [--models lite full heavy]
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from multiview_reference import demo_dir, load_reference  # noqa: E402

from engine import left_right  # noqa: E402
from engine.cli import build_parser, config_from_args  # noqa: E402
from engine.detection import detect  # noqa: E402
from engine.joint_sets import MP, MP_MIRROR  # noqa: E402
from engine.video import probe  # noqa: E402

LIMBS = [MP[f"{side}_{part}"] for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "heel",
                                           "foot_index") for side in ("left", "right")]
DECIDED_PX = 15.0


def projected_reference(ref, cam: int) -> np.ndarray:
    """(F, 33, 2) the reference's points in camera `cam`'s pixels, NaN where it has none."""
    c = ref.cameras[cam]
    pts = ref.world_33.reshape(-1, 3)
    px, _ = cv2.projectPoints(np.nan_to_num(pts).astype(np.float64), cv2.Rodrigues(c.R)[0],
                              c.t.astype(np.float64), c.K, c.dist)
    px = px.reshape(*ref.world_33.shape[:2], 2)
    px[np.isnan(ref.world_33[..., 0])] = np.nan
    return px


def true_mirror(pixels: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F,) whether the mirrored reading is the true one, and (F,) whether that is decided."""
    def err(p: np.ndarray) -> np.ndarray:
        return np.nanmedian(np.linalg.norm(p[:, LIMBS] - truth[:, LIMBS], axis=-1), axis=1)

    as_given, mirrored = err(pixels), err(pixels[:, MP_MIRROR])
    return mirrored < as_given, np.abs(as_given - mirrored) > DECIDED_PX


def runs(mask: np.ndarray) -> str:
    idx = np.flatnonzero(mask)
    if not len(idx):
        return "-"
    parts = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models = ["lite", "full", "heavy"]
    ap.add_argument("--models", nargs="+", default=models, choices=models)
    args = ap.parse_args()
    ref = load_reference()
    videos = sorted((demo_dir() / "videos").glob("cam*.mp4"))
    margin = left_right.FEET_MARGIN
    print(f"{'model':6} {'camera':7} {'decided':>7} {'as given':>8} {'labels only':>11} {'with feet':>9}  "
          "frames still wrong (with feet)")
    totals = np.zeros(3, int)
    for model in args.models:
        for c, video in enumerate(videos):
            cfg = config_from_args(build_parser().parse_args(
                ["run", str(video), "--height", "1.72", "--out", "unused", "--pose-model", model]))
            track, _, _ = detect(cfg, probe(video), 0, None, lambda *a, **k: None, threading.Event())
            frames = min(track.frames, ref.world_33.shape[0])
            mirror, decided = true_mirror(track.pixels[:frames], projected_reference(ref, c)[:frames])
            decided &= track.detected[:frames]
            try:
                left_right.FEET_MARGIN = float("inf")  # the feet never outvote the labels
                labels_only = left_right.detect_mirrored(track)[:frames]
            finally:
                left_right.FEET_MARGIN = margin
            with_feet = left_right.detect_mirrored(track)[:frames]
            wrong = [int((decided & (flips != mirror)).sum())
                     for flips in (np.zeros(frames, bool), labels_only, with_feet)]
            totals += wrong
            print(f"{model:6} {video.stem:7} {int(decided.sum()):7d} {wrong[0]:8d} {wrong[1]:11d} "
                  f"{wrong[2]:9d}  {runs(decided & (with_feet != mirror))}", flush=True)
    print(f"{'all':14} {'':>7} {totals[0]:8d} {totals[1]:11d} {totals[2]:9d}")
    print("wrong frames: the repair's reading differs from the reference's; 'as given' is MediaPipe's raw "
          "labelling, 'labels only' the repair without the feet's vote.")


if __name__ == "__main__":
    main()
