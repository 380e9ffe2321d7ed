"""Metric 3D reference from the Pose2Sim demo's four calibrated views, to score monocular 3D against.

MediaPipe Pose runs on each view (the legacy 0.10.21 solution, in its own venv made by
legacy_mediapipe.py, so that the yardstick stays what it was before the engine moved to the Tasks
API; only its output is cached); its 33 landmarks are triangulated with a visibility-weighted DLT
after repairing left/right label swaps and dropping outlier views per joint.
Run ``python benchmarks/multiview_reference.py`` for a summary of the reference's quality.
"""

from __future__ import annotations

import importlib.util
import itertools
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CACHE_VERSION = 1
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache" / "multiview_reference.npz"
OUTLIER_PX = 30.0  # per-joint reprojection error above which a view is dropped
BONE_TOL = 0.25  # relative limb-bone length deviation beyond which both ends are dropped
LIMB_BONES = [(11, 13), (13, 15), (12, 14), (14, 16), (23, 25), (25, 27), (24, 26), (26, 28)]
GOOD_VIS = 0.5  # a view counts towards the ">= 2 good views" rule only if this visible
# MediaPipe-33 left/right pairs: eyes (1-6), ears, mouth, shoulders, elbows, wrists, hands, hips,
# knees, ankles, heels, foot_index.
LR_PAIRS = [(1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18),
            (19, 20), (21, 22), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32)]
SWAP = np.arange(33)
for _l, _r in LR_PAIRS:
    SWAP[_l], SWAP[_r] = _r, _l
# MediaPipe can swap the legs independently of the torso (crossed legs), so the upper body
# (head, arms, hips) and the legs are repaired as two groups.
UPPER = [j for p in LR_PAIRS if p[0] < 25 for j in p]
LEGS = [j for p in LR_PAIRS if p[0] >= 25 for j in p]


@dataclass
class CameraCalib:
    name: str
    K: np.ndarray  # 3x3
    dist: np.ndarray  # OpenCV (k1, k2, p1, p2)
    R: np.ndarray  # 3x3 world -> camera (OpenCV axes)
    t: np.ndarray  # (3,) metres
    size: tuple[int, int]  # (w, h) of the decoded video frames the 2D points refer to


@dataclass
class Reference:
    cameras: list[CameraCalib]
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


def read_qca(path: Path) -> list[CameraCalib]:
    """Parse a Qualisys .qca.txt the way Pose2Sim's read_qca + calib_qca_fun do.

    Parsed here with the stdlib because Pose2Sim.calibration imports lxml (absent here) and
    matplotlib. Same conventions: intrinsics in 1/64 px minus the fov_video offset; world->camera
    R = Rx(pi) @ [[r11 r12 r13] ...] (the pi turn gives OpenCV axes; the transposed reading
    reprojects 40-80 px off), t = -R @ camera position (mm -> m); distortion divided by 64 as
    Pose2Sim does (dubious, but tiny either way: median reprojection changes < 0.1 px). Verified
    equal to Pose2Sim's calib_qca_fun output (run once with lxml stubbed by xml.etree).
    All cameras have viewrotation=0 and the videos carry no rotation metadata (OpenCV decodes them
    upright, portrait), so nothing is rotated. cam01/02 decode 1080 px wide, not 1088: treated
    as cropped on the right (principal point unchanged), which reprojects best (vs +4/+8 px, rescale).
    """
    cams = []
    for cam in ET.parse(path).getroot().findall("cameras/camera"):
        fov, intr, tr = cam.find("fov_video"), cam.find("intrinsic"), cam.find("transform")
        assert fov is not None and intr is not None and tr is not None
        g = {**fov.attrib, **intr.attrib, **tr.attrib}
        f = {k: float(v) for k, v in g.items() if k[0] in "cfrtxyzlb" and k != "focallength"}
        K = np.array([[f["focalLengthU"] / 64, 0, f["centerPointU"] / 64 - f["left"]],
                      [0, f["focalLengthV"] / 64, f["centerPointV"] / 64 - f["top"]], [0, 0, 1]])
        dist = np.array([f[k] for k in ("radialDistortion1", "radialDistortion2",
                                        "tangentalDistortion1", "tangentalDistortion2")]) / 64
        pose = np.array([[f[f"r{i}{j}"] for j in (1, 2, 3)] for i in (1, 2, 3)])
        R = np.diag([1.0, -1.0, -1.0]) @ pose  # world->Qualisys camera, then pi about x
        centre = np.array([f["x"], f["y"], f["z"]]) / 1000.0
        size = (int(f["right"] - f["left"] + 1), int(f["bottom"] - f["top"] + 1))
        cams.append(CameraCalib(cam.attrib["serial"], K, dist, R, -R @ centre, size))
    return sorted(cams, key=lambda c: c.name)


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


def triangulate(xn: np.ndarray, w: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Weighted DLT. xn (C, ..., 2) normalised image coords, w (C, ...), P (C, 3, 4) -> (..., 3).

    NaN where fewer than two views have weight > 0."""
    xn = np.nan_to_num(xn)
    Pb = P.reshape(P.shape[:1] + (1,) * (xn.ndim - 2) + (3, 4))
    rows = [xn[..., 0:1] * Pb[..., 2, :] - Pb[..., 0, :], xn[..., 1:2] * Pb[..., 2, :] - Pb[..., 1, :]]
    A = np.stack([r * w[..., None] for r in rows], axis=1)  # (C, 2, ..., 4)
    A = np.moveaxis(A.reshape((-1,) + A.shape[2:]), 0, -2)  # (..., 2C, 4)
    v = np.linalg.svd(A)[2][..., -1, :]
    X = v[..., :3] / v[..., 3:]
    X[(w > 0).sum(0) < 2] = np.nan
    return X


def reproject_px(X: np.ndarray, cams: list[CameraCalib], und_px: np.ndarray) -> np.ndarray:
    """Pixel distance between X (..., 3) projected and undistorted 2D points (C, ..., 2)."""
    err = []
    for c, u in zip(cams, und_px):
        q = (X @ c.R.T + c.t) @ c.K.T
        err.append(np.linalg.norm(q[..., :2] / q[..., 2:] - u, axis=-1))
    return np.array(err)


def _best_swaps(xn: np.ndarray, und: np.ndarray, w: np.ndarray, P: np.ndarray,
                cams: list[CameraCalib], joints: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the swap pattern over views (F, C) that best fits `joints`, and their 3D (F, J, 3).

    Every pattern is tried; reprojection errors are capped at 50 px so one wild view cannot win."""
    C, F = xn.shape[:2]
    combos = np.array(list(itertools.product([False, True], repeat=C)))  # (S, C)
    idx = np.where(combos[:, :, None, None], SWAP[joints], np.array(joints))  # (S, C, 1, J)
    idx = np.broadcast_to(idx, (len(combos), C, F, len(joints)))
    scores, Xs = [], []
    for s in range(len(combos)):
        ws = np.take_along_axis(w, idx[s], axis=2)
        X = triangulate(np.take_along_axis(xn, idx[s][..., None], axis=2), ws, P)
        e = reproject_px(X, cams, np.take_along_axis(und, idx[s][..., None], axis=2))
        scores.append((np.minimum(np.nan_to_num(e, nan=50.0), 50.0) * ws).sum((0, 2))
                      / np.maximum(ws.sum((0, 2)), 1e-9))
        Xs.append(X)
    best = np.argmin(scores, axis=0)
    return combos[best], np.array(Xs)[best, np.arange(F)]


def _orient(s: np.ndarray, anatomy_flip: np.ndarray) -> np.ndarray:
    """Pick pattern s (F, C) or its complement: fewer swapped views wins, anatomy breaks ties."""
    n2, C = 2 * s.sum(1), s.shape[1]
    return s ^ np.where(n2 == C, anatomy_flip, n2 > C)[:, None]


def _permute(a: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Reorder the joint axis (2) of a (C, F, 33, ...) array by perm (C, F, 33)."""
    return np.take_along_axis(a, perm.reshape(perm.shape + (1,) * (a.ndim - 3)), axis=2)


def repair_and_triangulate(cams: list[CameraCalib], pts: np.ndarray, vis: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L/R repair, weighted DLT, outlier-view rejection -> world (F, 33, 3), swapped, errors."""
    import cv2

    C, F = pts.shape[:2]
    P = np.array([np.hstack([c.R, c.t[:, None]]) for c in cams])
    xn = np.array([cv2.undistortPoints(p.reshape(-1, 1, 2), c.K, c.dist).reshape(F, 33, 2)
                   for c, p in zip(cams, pts)])
    und = np.array([x @ c.K[:2, :2].T + c.K[:2, 2] for c, x in zip(cams, xn)])  # undistorted px
    w = np.where(np.isfinite(xn[..., 0]), vis, 0.0)
    # A swap pattern and its complement fit equally well (all labels flipped together): take the
    # one that swaps fewer views (MediaPipe is right in most views); on a tie (e.g. both back
    # views mirrored) anatomy decides: nose in front of the shoulders ((left - right) x up is
    # forward, world Z is up), then each knee on its own hip's side (ankles cross on the beam).
    swapped = np.zeros((C, F, 2), bool)
    perm = np.broadcast_to(np.arange(33), (C, F, 33)).copy()
    s, X = _best_swaps(xn, und, w, P, cams, UPPER)
    nose = triangulate(xn[:, :, 0], w[:, :, 0], P)
    left, right = X[:, UPPER.index(11)], X[:, UPPER.index(12)]
    forward = np.cross(left - right, [0.0, 0.0, 1.0])
    flip = np.einsum("fi,fi->f", forward, nose - (left + right) / 2) < 0
    swapped[..., 0] = _orient(s, flip).T
    perm[:, :, UPPER] = np.where(swapped[..., 0:1], SWAP[UPPER], np.array(UPPER))
    hips = triangulate(_permute(xn, perm)[:, :, 23:25], _permute(w, perm)[:, :, 23:25], P)
    s, X = _best_swaps(xn, und, w, P, cams, LEGS)
    knees = X[:, LEGS.index(25)] - X[:, LEGS.index(26)]
    flip = np.einsum("fi,fi->f", knees, hips[:, 0] - hips[:, 1]) < 0
    swapped[..., 1] = _orient(s, flip).T
    perm[:, :, LEGS] = np.where(swapped[..., 1:2], SWAP[LEGS], np.array(LEGS))
    xn, und, w = _permute(xn, perm), _permute(und, perm), _permute(w, perm)
    # Drop the worst view of a joint while it reprojects beyond OUTLIER_PX, then re-triangulate.
    for _ in range(C - 2):
        X = triangulate(xn, w, P)
        err = np.where(w > 0, reproject_px(X, cams, und), np.nan)
        worst = np.nan_to_num(err, nan=-1.0).argmax(0)[None]
        keep = np.take_along_axis(err, worst, 0) <= OUTLIER_PX
        np.put_along_axis(w, worst, np.take_along_axis(w, worst, 0) * keep, 0)
    X = triangulate(xn, w, P)
    err = np.where(w > 0, reproject_px(X, cams, und), np.nan)
    good = ((w >= GOOD_VIS) & (err <= OUTLIER_PX)).sum(0)
    X[good < 2] = np.nan
    # Views can agree on a wrong joint (all confused at once, e.g. when the legs cross): drop both
    # ends of any limb bone whose length is > BONE_TOL off its median over the sequence.
    for a, b in LIMB_BONES:
        length = np.linalg.norm(X[:, a] - X[:, b], axis=-1)
        rows = np.flatnonzero(np.abs(length / np.nanmedian(length) - 1) > BONE_TOL)
        X[np.ix_(rows, [a, b])] = np.nan
    return X, swapped, err


def load_reference(cache: Path | None = None) -> Reference:
    """Run (or load cached) MediaPipe on the four demo views and triangulate the reference.

    Only the MediaPipe output is cached (the slow part); triangulation is redone on each load."""
    cache = Path(cache) if cache is not None else DEFAULT_CACHE
    if cache.suffix != ".npz":
        cache = cache / DEFAULT_CACHE.name
    demo = demo_dir()
    cams = read_qca(demo / "calibration" / "Calib.qca.txt")
    data = dict(np.load(cache)) if cache.exists() else {}
    if int(data.get("version", -1)) != CACHE_VERSION:
        # The legacy solution, in its own venv: the yardstick does not move with the engine.
        try:
            from legacy_mediapipe import python as legacy_python
        except ImportError:
            from .legacy_mediapipe import python as legacy_python
        subprocess.run([str(legacy_python()), __file__, "--write-cache", str(cache)], check=True)
        data = dict(np.load(cache))
    for c, s in zip(cams, data["sizes"]):
        c.size = (int(s[0]), int(s[1]))
    pts, vis = data["points_2d"], data["visibility"]
    world, swapped, err = repair_and_triangulate(cams, pts, vis)
    return Reference(cams, pts, vis, world, data["world_landmarks"], float(data["fps"]), swapped, err)


def write_cache(cache: Path) -> None:
    """MediaPipe on the four demo views → cache (run by load_reference in the legacy venv)."""
    demo = demo_dir()
    cams = read_qca(demo / "calibration" / "Calib.qca.txt")
    runs = [run_mediapipe(demo / "videos" / f"{c.name}.mp4") for c in cams]
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
