"""Metric 3D reference from the Pose2Sim demo's four calibrated views, to score monocular 3D against.

MediaPipe Pose runs on each view (the legacy 0.10.21 solution, in its own venv made by
legacy_mediapipe.py, so that the yardstick stays what it was before the engine moved to the Tasks
API; only its output is cached); its 33 landmarks are triangulated with a visibility-weighted DLT
after repairing left/right label swaps and dropping outlier views per joint.
Run ``python benchmarks/multiview_reference.py`` for a summary of the reference's quality.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.calibration import Camera

# The engine's modules are imported where used: --write-cache runs this file in the legacy venv,
# which has only MediaPipe 0.10.21 and OpenCV.
_ROOT = Path(__file__).resolve().parents[1]

CACHE_VERSION = 1
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache" / "multiview_reference.npz"


@dataclass
class Reference:
    cameras: list[Camera]
    points_2d: np.ndarray  # (C, F, 33, 2) raw MediaPipe pixels (before L/R repair), NaN if missing
    visibility: np.ndarray  # (C, F, 33)
    world_33: np.ndarray  # (F, 33, 3) metres, calibration world frame (Z up), NaN if unreliable
    world_landmarks: np.ndarray  # (C, F, 33, 3) MediaPipe pose_world_landmarks, NaN if no detection
    fps: float
    swapped: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (C, F, 2) upper/legs swapped
    reproj_px: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (C, F, 33) NaN if unused

    def in_camera(self, cam: int) -> np.ndarray:
        """world_33 in camera ``cam``'s frame (OpenCV axes: x right, y down, z forward; metres)."""
        c = self.cameras[cam]
        return self.world_33 @ c.R.T + c.t


def demo_dir() -> Path:
    spec = importlib.util.find_spec("Pose2Sim")
    assert spec is not None and spec.submodule_search_locations, "pose2sim is not installed"
    return Path(spec.submodule_search_locations[0]) / "Demo_SinglePerson"


def demo_calibration(dest: Path | None = None) -> Path:
    """The demo's Qualisys calibration as a Pose2Sim TOML, made by Pose2Sim's own converter.

    Its conventions: intrinsics in 1/64 px minus the fov_video offset; world->camera turned by pi
    about x (OpenCV axes); distortion divided by 64 (dubious, but tiny either way: median
    reprojection changes < 0.1 px). The cameras say 1088x1920 (the macroblock-padded size) while
    cam01/02 decode 1080 px wide: engine.calibration.fit_to_video treats that as a crop on the
    right (principal point unchanged), which reprojects best (vs +4/+8 px, rescale)."""
    from engine.calibration import convert_qualisys

    dest = dest or DEFAULT_CACHE.parent / "demo_calib.toml"
    src = demo_dir() / "calibration" / "Calib.qca.txt"
    if not dest.is_file() or dest.stat().st_mtime < src.stat().st_mtime:
        convert_qualisys(src, dest)
    return dest


def demo_cameras() -> list[Camera]:
    if str(_ROOT) not in sys.path:
        sys.path.insert(0, str(_ROOT))
    from engine.calibration import read_calibration

    return read_calibration(demo_calibration())


def run_mediapipe(video: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, tuple[int, int]]:
    """Legacy MediaPipe Pose on one view (runs inside the legacy venv: legacy_mediapipe.py)."""
    import cv2
    import mediapipe as mp

    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS)
    rows = []
    with mp.solutions.pose.Pose(model_complexity=1, static_image_mode=False,
                                smooth_landmarks=True) as pose:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            res = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            p, v, wl = np.full((33, 2), np.nan), np.zeros(33), np.full((33, 3), np.nan)
            if res.pose_landmarks:
                lm = res.pose_landmarks.landmark
                p = np.array([[q.x * w, q.y * h] for q in lm])
                v = np.array([q.visibility for q in lm])
                wl = np.array([[q.x, q.y, q.z] for q in res.pose_world_landmarks.landmark])
            rows.append((p, v, wl))
    cap.release()
    pts, vis, world = (np.array(a) for a in zip(*rows))
    return pts, vis, world, fps, (w, h)


def load_reference(cache: Path | None = None) -> Reference:
    """Run (or load cached) MediaPipe on the four demo views and triangulate the reference.

    Only the MediaPipe output is cached (the slow part); triangulation is redone on each load."""
    cache = Path(cache) if cache is not None else DEFAULT_CACHE
    if cache.suffix != ".npz":
        cache = cache / DEFAULT_CACHE.name
    cams = demo_cameras()
    from engine.calibration import fit_to_video
    from engine.triangulation import repair_and_triangulate

    data = dict(np.load(cache)) if cache.exists() else {}
    if int(data.get("version", -1)) != CACHE_VERSION:
        # The legacy solution, in its own venv: the yardstick does not move with the engine.
        try:
            from legacy_mediapipe import python as legacy_python
        except ImportError:
            from .legacy_mediapipe import python as legacy_python
        subprocess.run([str(legacy_python()), __file__, "--write-cache", str(cache)], check=True)
        data = dict(np.load(cache))
    cams = [fit_to_video(c, int(s[0]), int(s[1]), c.name) for c, s in zip(cams, data["sizes"])]
    pts, vis = data["points_2d"], data["visibility"]
    world, swapped, err, _ = repair_and_triangulate(cams, pts, vis)
    return Reference(cams, pts, vis, world, data["world_landmarks"], float(data["fps"]), swapped, err)


def write_cache(cache: Path) -> None:
    """MediaPipe on the four demo views → cache (run by load_reference in the legacy venv)."""
    demo = demo_dir()
    runs = [run_mediapipe(demo / "videos" / f"cam0{i}.mp4") for i in (1, 2, 3, 4)]
    F = min(len(r[0]) for r in runs)
    data = {"version": np.array(CACHE_VERSION), "fps": np.array(runs[0][3]),
            "sizes": np.array([r[4] for r in runs])}
    for i, key in enumerate(("points_2d", "visibility", "world_landmarks")):
        data[key] = np.stack([r[i][:F] for r in runs])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **data)


def main() -> None:
    import time

    if sys.argv[1:2] == ["--write-cache"]:
        write_cache(Path(sys.argv[2]))
        return

    try:
        from . import metrics
    except ImportError:  # run as a script: benchmarks/ is on sys.path
        import metrics  # type: ignore[no-redef]

    t0 = time.perf_counter()
    ref = load_reference()
    print(f"load_reference: {time.perf_counter() - t0:.2f} s, {ref.world_33.shape[0]} frames "
          f"@ {ref.fps:g} fps")
    for i, c in enumerate(ref.cameras):
        det = np.isfinite(ref.points_2d[i, :, 0, 0]).mean()
        up, legs = ref.swapped[i].sum(0)
        print(f"{c.name} {c.size}: detected {det:6.1%}, swapped frames upper {up:3d} legs {legs:3d}, "
              f"median reprojection {np.nanmedian(ref.reproj_px[i]):5.2f} px")
    valid = np.isfinite(ref.world_33[..., 0])
    print(f"joints valid: all 33 {valid.mean():.1%}, LIMB_12 {valid[:, metrics.LIMB_12].mean():.1%}")
    cv = metrics.bone_length_cv(ref.world_33, metrics.BONES)
    lengths = {k: np.nanmedian(np.linalg.norm(ref.world_33[:, a] - ref.world_33[:, b], axis=-1))
               for k, (a, b) in metrics.BONES.items()}
    for k in metrics.BONES:
        print(f"  {k:16s} length {lengths[k]:.3f} m  CV {cv[k]:5.2f} %")
    # Stature as Pose2Sim's compute_height: heel-ankle + shank + thigh + hip-shoulder
    # + 1.5 x midshoulder-nose (medians); the subject balances on a beam, so no upright frame.
    W = ref.world_33

    def seg(a: int, b: int) -> float:
        return float(np.nanmedian(np.linalg.norm(W[:, a] - W[:, b], axis=-1)))

    head = np.nanmedian(np.linalg.norm((W[:, 11] + W[:, 12]) / 2 - W[:, 0], axis=-1))
    height = sum((seg(a, b) + seg(a + 1, b + 1)) / 2 for a, b in ((29, 27), (27, 25), (25, 23), (23, 11)))
    print(f"standing height estimate: {height + 1.5 * head:.2f} m "
          f"(lowest foot marker z = {np.nanmin(W[:, 27:33, 2]):+.3f} m: floor at z=0)")


if __name__ == "__main__":
    main()
