"""The SCAIL stage: metric markers → SMPL-24 NLF-format poses and SCAIL's 3D pose video.

Writes into `out_dir` (the run's `scail/` folder):
    <stem>_nlf.pkl      SCAIL-Pose's per-frame NLF structure (engine/nlf_export.py)
    <stem>_nlf.npz      the same as plain arrays
    <stem>_scail.mp4    the render's RGB on black, at the video's frame rate ('mp4v')
    rgba/<stem>_scail_<video frame>.png   the render with alpha = body mask
Frames are rendered one at a time and streamed to disk (memory does not grow with the clip); a
second thread encodes while the next frame renders.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from .camera import Intrinsics, project
from .capsule_render import RADIUS_MM, CylinderRenderer, depth_range, fit_camera
from .config import check_scail_size
from .errors import Cancelled, EngineError
from .nlf_export import person_boxes, write_nlf
from .progress import ProgressFn
from .scail_overlay import CHEEK_MP, FACE68_DRAWN, draw_overlay
from .smpl24 import mediapipe_to_smpl24

# SCAIL-Pose renders at 512×896 (portrait) or 896×512 (landscape), following the video.
SCAIL_SIZES = {"portrait": (512, 896), "landscape": (896, 512)}


def default_size(width: int, height: int) -> tuple[int, int]:
    """SCAIL's render size for a video: landscape when wider than tall, else portrait."""
    return SCAIL_SIZES["landscape" if width > height else "portrait"]


class _FrameWriter:
    """mp4 + PNG writer fed from the render loop; one worker thread encodes (cv2 releases the
    GIL), at most two frames wait, and a writer error surfaces at the next frame or at close."""

    def __init__(self, mp4: Path, png_dir: Path, png_name: str, fps: float, size: tuple[int, int]) -> None:
        self.png_dir, self.png_name = png_dir, png_name
        png_dir.mkdir(parents=True, exist_ok=True)
        self.video = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
        if not self.video.isOpened():
            raise EngineError(f"cannot write video {mp4.name}: OpenCV has no 'mp4v' encoder here")
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scail-writer")
        self.pending: deque[Future] = deque()

    def _write(self, rgba: np.ndarray, frame_no: int) -> None:
        self.video.write(cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGR))
        path = self.png_dir / self.png_name.format(frame_no)
        if not cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)):
            raise OSError(f"could not write {path}")

    def put(self, rgba: np.ndarray, frame_no: int) -> None:
        while len(self.pending) >= 2:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self._write, rgba, frame_no))

    def close(self, drain: bool = True) -> None:
        """Finish the queued frames (drain=False: drop them, after an error or cancel)."""
        try:
            while drain and self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.video.release()


def _overlay_inputs(markers_m: np.ndarray, cam: Intrinsics, scale: float, offset: tuple[float, float],
                    hands: np.ndarray | None, face: np.ndarray | None):
    """Per-frame 2D points in render pixels: the cheek from the 3D markers through the render
    camera (so it sits on the cylinders), hands and face from MediaPipe's pixels in the video."""
    head = markers_m[:, CHEEK_MP]
    with np.errstate(invalid="ignore", divide="ignore"):  # unknown markers stay NaN
        cheek = project(head, cam)
    cheek[~(head[..., 2] > 0)] = np.nan
    shift = np.array(offset)
    hands_px = None if hands is None else hands[..., :2] * scale - shift
    face_px = None if face is None else face[:, FACE68_DRAWN, :2] * scale - shift
    return cheek, hands_px, face_px


def run_scail(recon_markers: np.ndarray, intrinsics: Intrinsics, fps: float, stem: str, out_dir: Path,
              hands: np.ndarray | None = None, face: np.ndarray | None = None,
              progress: ProgressFn | None = None, cancel: threading.Event | None = None,
              first_frame: int = 0, size: tuple[int, int] | None = None, overlay: bool = True) -> dict:
    """Export SMPL-24 NLF poses and render SCAIL's pose video from (T, 33, 3) camera-frame
    markers in metres, or (T, P, 33, 3) for P people drawn together (a --people run; NaN where a
    person is not seen), into files named after `stem`. `size`: W, H (None: SCAIL's default for
    the video's orientation); `overlay`: also the 2D cheek, hands and face (one person only);
    hands (T, 2, 21, ≥2) and face (T, 468, ≥2) are MediaPipe pixels of the source video. Returns
    the record for run.json."""
    progress = progress or (lambda f, m: None)
    cancel = cancel or threading.Event()
    t0 = time.perf_counter()
    markers = np.asarray(recon_markers, np.float64)
    if markers.ndim == 4 and markers.shape[2:] == (33, 3):  # several people: (T, P, 33, 3)
        people = markers
    elif markers.ndim == 3 and markers.shape[1:] == (33, 3):
        people = markers[:, None]
    else:
        raise ValueError(f"expected MediaPipe-33 markers of shape (T, 33, 3) or (T, P, 33, 3), "
                         f"got {markers.shape}")
    size = tuple(size or default_size(intrinsics.width, intrinsics.height))
    check_scail_size(size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = len(markers)

    joints_mm = mediapipe_to_smpl24(people) * 1000.0  # NLF's unit, (T, P, 24, 3)
    boxes = np.stack([person_boxes(people[:, p], intrinsics) for p in range(people.shape[1])], axis=1)
    files = {"nlf_pkl": f"{stem}_nlf.pkl", "nlf_npz": f"{stem}_nlf.npz", "mp4": f"{stem}_scail.mp4",
             "png_dir": "rgba"}
    kind = write_nlf(out_dir / files["nlf_pkl"], out_dir / files["nlf_npz"], joints_mm, boxes,
                     intrinsics, fps, first_frame)

    cam, scale, offset = fit_camera(intrinsics, *size)
    renderer = CylinderRenderer(cam, depth_range(joints_mm))
    # The cheek, hand and face overlay follows one person's MediaPipe landmarks: one person only.
    overlay = overlay and people.shape[1] == 1
    cheek, hands_px, face_px = _overlay_inputs(people[:, 0], cam, scale, offset, hands, face)
    canvas = np.zeros((size[1], size[0], 3), np.uint8)
    digits = max(6, len(str(first_frame + n)))
    sink = _FrameWriter(out_dir / files["mp4"], out_dir / files["png_dir"],
                        f"{stem}_scail_{{:0{digits}d}}.png", fps, size)
    render_s = 0.0
    with_body = 0
    try:
        for i in range(n):
            if cancel.is_set():
                raise Cancelled()
            t = time.perf_counter()
            rgba = renderer.render(joints_mm[i] if people.shape[1] > 1 else joints_mm[i, 0])
            with_body += bool(rgba[..., 3].any())
            if overlay:
                draw_overlay(rgba, cheek[i], None if hands_px is None else hands_px[i],
                             None if face_px is None else face_px[i], canvas)
            render_s += time.perf_counter() - t
            sink.put(rgba, first_frame + i)
            if (i + 1) % 10 == 0 or i + 1 == n:
                progress((i + 1) / n, f"SCAIL render {i + 1}/{n}")
    except BaseException:
        sink.close(drain=False)  # the staged folder is discarded; keep the first error
        raise
    sink.close()
    total_s = time.perf_counter() - t0
    return {
        "size": list(size),
        "camera": cam.to_json(),
        "source_to_render_px": {"scale": scale, "offset": list(offset)},
        "radius_mm": RADIUS_MM,
        "depth_range_mm": [renderer.near, renderer.far],
        "overlay": bool(overlay),
        "hands": hands is not None,
        "face": face is not None,
        "frames": n,
        "people": int(people.shape[1]),
        "frames_with_body": int(with_body),
        "fps": fps,
        "nlf_pkl_arrays": kind,
        "files": files,
        "render_s": round(render_s, 3),
        "total_s": round(total_s, 3),
        "fps_render": round(n / max(render_s, 1e-9), 1),
    }
