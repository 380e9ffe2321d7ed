"""SCAIL cylinder render throughput at 512×896 (target ≥ 20 frames/s on the 2-core CPU).

Prints frames/s, median over repeats, for:
  render            the 13 capsules ray-cast and shaded (engine/capsule_render.py)
  render+overlay    plus the 2D cheek, two hands and face points (engine/scail_overlay.py)
  stage end-to-end  run_scail: SMPL-24, NLF pickle/npz, render, overlay, MP4 and RGBA PNGs on disk
on a synthetic walk (at 3 m the body fills ~55 % of the frame height; --distance), or on the engine's
own markers with --markers OUT/<stem>/<stem>_markers.npz.

    .venv/bin/python benchmarks/scail_render.py [--frames 120] [--repeats 3] [--size 512x896]
        [--distance M | --markers FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.camera import Intrinsics, project  # noqa: E402
from engine.capsule_render import CylinderRenderer, depth_range, fit_camera  # noqa: E402
from engine.joint_sets import MP  # noqa: E402
from engine.result import load as load_result  # noqa: E402
from engine.scail import run_scail  # noqa: E402
from engine.scail_overlay import CHEEK_MP, draw_overlay  # noqa: E402
from engine.smpl24 import mediapipe_to_smpl24  # noqa: E402


def synthetic_walk(frames: int, fps: float = 30.0, distance: float = 3.0) -> np.ndarray:
    """MediaPipe-33 markers (metres, camera frame) of a person walking on the spot."""
    pose = {
        "nose": (0, -0.70, -0.08), "left_eye": (0.03, -0.73, -0.06), "right_eye": (-0.03, -0.73, -0.06),
        "left_ear": (0.07, -0.71, 0), "right_ear": (-0.07, -0.71, 0),
        "left_shoulder": (0.19, -0.50, 0), "right_shoulder": (-0.19, -0.50, 0),
        "left_hip": (0.11, 0.05, 0), "right_hip": (-0.11, 0.05, 0),
    }
    p = np.zeros((frames, 33, 3))
    for name, xyz in pose.items():
        p[:, MP[name]] = xyz
    for name in ("left_eye_inner", "left_eye_outer", "right_eye_inner", "right_eye_outer",
                 "mouth_left", "mouth_right"):
        p[:, MP[name]] = p[:, MP["nose"]]
    phase = 2 * np.pi * np.arange(frames) / fps  # one stride a second
    for side, sign in (("left", 1), ("right", -1)):
        swing = sign * 0.5 * np.sin(phase)
        hip, sh = p[:, MP[f"{side}_hip"]], p[:, MP[f"{side}_shoulder"]]
        knee = hip + np.stack([0 * swing, 0.42 * np.cos(swing), -0.42 * np.sin(swing)], -1)
        ankle = knee + np.stack([0 * swing, 0.41 * np.ones_like(swing), 0.1 * np.sin(swing)], -1)
        p[:, MP[f"{side}_knee"]], p[:, MP[f"{side}_ankle"]] = knee, ankle
        p[:, MP[f"{side}_heel"]] = ankle + (0, 0.05, 0.05)
        p[:, MP[f"{side}_foot_index"]] = ankle + (0, 0.07, -0.16)
        elbow = sh + np.stack([0.05 * sign + 0 * swing, 0.28 * np.cos(swing), 0.28 * np.sin(swing)], -1)
        wrist = elbow + np.stack([0 * swing, 0.25 * np.ones_like(swing), -0.1 + 0.1 * np.sin(swing)], -1)
        p[:, MP[f"{side}_elbow"]], p[:, MP[f"{side}_wrist"]] = elbow, wrist
        for name, off in (("index", (0.01, 0.08, -0.01)), ("pinky", (0.03, 0.07, 0.01)),
                          ("thumb", (-0.01, 0.05, -0.03))):
            p[:, MP[f"{side}_{name}"]] = wrist + off
    p[..., 2] += distance
    return p


def hands_and_face(markers: np.ndarray, k: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe-like hand (2×21) and face (468) pixels around the projected wrists and nose."""
    rng = np.random.default_rng(0)
    wrists = project(markers[:, [MP["left_wrist"], MP["right_wrist"]]], k)
    hands = wrists[:, :, None, :] + rng.normal(0, 25, (1, 2, 21, 2))
    face = project(markers[:, MP["nose"]], k)[:, None, :] + rng.normal(0, 30, (1, 468, 2))
    return hands, face


def rate(fn, frames: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return frames / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", default="512x896")
    ap.add_argument("--distance", type=float, default=3.0, help="synthetic walker's distance, m (default 3)")
    ap.add_argument("--markers", type=Path, help="an engine output folder (or its <stem>_markers.npz) "
                    "to render instead")
    a = ap.parse_args()
    size = tuple(int(v) for v in a.size.lower().split("x"))
    if a.markers:
        res = load_result(a.markers.parent if a.markers.suffix == ".npz" else a.markers)
        markers, i = res.markers_camera, res.intrinsics
        k = Intrinsics(i["fx"], i["fy"], i["cx"], i["cy"], int(i["width"]), int(i["height"]))
        source = str(a.markers)
    else:
        markers, k = synthetic_walk(a.frames, distance=a.distance), Intrinsics.from_settings(1080, 1920, 55.0)
        source = f"a synthetic walk at {a.distance:g} m, 1080x1920 FOV-55 source camera"
    n = len(markers)
    joints = mediapipe_to_smpl24(markers) * 1000.0
    cam, s, off = fit_camera(k, *size)
    renderer = CylinderRenderer(cam, depth_range(joints))
    hands, face = hands_and_face(markers, k)
    hands, face = hands * s - off, face[:, :42] * s - off
    cheek = project(markers[:, CHEEK_MP], cam)
    canvas = np.zeros((size[1], size[0], 3), np.uint8)

    def render_only():
        for i in range(n):
            renderer.render(joints[i])

    def render_overlay():
        for i in range(n):
            draw_overlay(renderer.render(joints[i]), cheek[i], hands[i], face[i], canvas)

    def stage():
        with tempfile.TemporaryDirectory() as tmp:
            run_scail(markers, k, 30.0, "bench", Path(tmp), hands=hands_and_face(markers, k)[0],
                      face=hands_and_face(markers, k)[1], size=size)

    coverage = np.mean([(renderer.render(joints[i])[..., 3] > 0).mean() for i in range(0, n, 10)])
    print(f"SCAIL render {size[0]}x{size[1]}, {n} frames of {source}; body covers {100 * coverage:.1f} % "
          f"of the frame; median of {a.repeats}")
    cases = (("render", render_only), ("render+overlay", render_overlay), ("stage end-to-end", stage))
    for name, fn in cases:
        print(f"  {name:<18} {rate(fn, n, a.repeats):7.1f} frames/s")


if __name__ == "__main__":
    main()
