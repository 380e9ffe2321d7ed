"""BlazePose on one person through a video: the legacy MediaPipe Pose graph, rebuilt on LiteRT.

MediaPipe's maintained Tasks API runs the same BlazePose models, but its tracker differs from the
legacy `mp.solutions` graph that the engine's figures were measured with (measured on the demo: 4-6
px median apart; the Tasks API exposes no knob for it). This module runs the models of our bundles
on LiteRT (`ai-edge-litert`, Google's maintained TFLite runtime: one wheel per Python and platform,
numpy 1 and 2) with the legacy graph's own pre- and post-processing, as mediapipe's
`pose_landmark_cpu` and its subgraphs define it:

- detector (only while no one is tracked): the frame letterboxed to 224 x 224 in [-1, 1], 2254
  SSD anchors, score >= min_detection, weighted non-max suppression; the best detection's hip
  centre and its size/rotation point give the first region of interest (ROI);
- landmarks: the rotated square ROI cropped to 256 x 256 in [0, 1]; 39 points (33 landmarks, 2
  that place the next ROI), refined on the 64 x 64 heatmap, world landmarks rotated back; a pose
  flag below min_tracking drops the person and the next frame detects again;
- filters (legacy `smooth_landmarks`): one-euro on landmarks (value-scaled by the body's size in
  pixels), world landmarks and the ROI points; low-pass on visibility; all reset when the person
  is lost. The next ROI comes from the filtered ROI points (1.25 x their span, square).

Timestamps advance 1/30 s per frame whatever the video's rate, as the legacy solution's did: its
filter constants were tuned for that cadence (true 60 fps timestamps moved the demo's landmarks 3
px further from the legacy solution). The detector can look inside a window of the frame (the
subject's crop); the ROI and landmarks are always in full-frame pixels, so a moving crop never
breaks tracking.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import cores
from .bundles import BUILD_COMMAND, unusable
from .errors import EngineError
from .mediapipe_tasks import quiet_native_stderr
from .tracking import upright

DETECTOR, LANDMARKS = "pose_detector.tflite", "pose_landmarks_detector.tflite"
_DET_SIZE, _LM_SIZE, _HEAT_KERNEL = 224, 256, 7
_N_POINTS, N_POSE = 39, 33
_FRAME_STEP_NS = 33_333_000  # the legacy solution's simulated 30 fps
_PICK_MAX = 4  # people whose landmarks a lost person's search compares


@dataclass(frozen=True)
class Roi:
    """A square region in full-frame pixels, rotated clockwise by `rotation` radians."""

    cx: float
    cy: float
    size: float
    rotation: float


@dataclass(frozen=True)
class PoseFrame:
    pixels: np.ndarray  # (33, 2) full-frame pixels
    depth: np.ndarray  # (33,) relative depth, pixels (MediaPipe's z times the frame width)
    visibility: np.ndarray  # (33,)
    world: np.ndarray  # (33, 3) metres, hip-centred


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def _anchors() -> np.ndarray:
    """Centres (x, y in [0, 1]) of the detector's 2254 SSD anchors, in its output order: layers of
    strides 8, 16, 32, 32, 32 on 224 px, the three stride-32 layers merged, 2 anchors per cell and
    layer (fixed size, so only centres matter)."""
    strides = (8, 16, 32, 32, 32)
    out, i = [], 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        fm = math.ceil(_DET_SIZE / strides[i])
        ys, xs = np.mgrid[0:fm, 0:fm]
        centres = np.stack([(xs + 0.5) / fm, (ys + 0.5) / fm], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, 2 * (j - i), axis=1).reshape(-1, 2))
        i = j
    return np.concatenate(out).astype(np.float32)


def aligned_roi(centre: np.ndarray, scale_point: np.ndarray, scale: float = 1.25) -> Roi:
    """The ROI of BlazePose's alignment points: centred on the first, half its side the distance to
    the second, turned so that the second lies straight above the first."""
    dx, dy = float(scale_point[0] - centre[0]), float(scale_point[1] - centre[1])
    rot = math.pi / 2 - math.atan2(-dy, dx)
    rot -= 2 * math.pi * math.floor((rot + math.pi) / (2 * math.pi))
    return Roi(float(centre[0]), float(centre[1]), 2.0 * math.hypot(dx, dy) * scale, rot)


def _crop(rgb: np.ndarray, cx: float, cy: float, w: float, h: float, rotation: float, out: int,
          border: int) -> np.ndarray:
    # As mediapipe's ImageToTensor (OpenCV): the rotated box's corners mapped by a perspective
    # warp, bilinear, on the uint8 image. The models are sensitive to these details (warping a
    # float image instead moved landmarks by 0.5-1.5 px).
    box = cv2.boxPoints(((cx, cy), (w, h), math.degrees(rotation))).astype(np.float32)
    dst = np.array([[0, out], [0, 0], [out, 0], [out, out]], np.float32)
    m = cv2.getPerspectiveTransform(box, dst)
    return cv2.warpPerspective(rgb, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=border,
                               borderValue=0)


def _refine(xy: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Each point moved to the confidence-weighted mean of the 7 x 7 heatmap cells around it, where
    the most confident of them reaches 0.5 (RefineLandmarksFromHeatmap: cell indices, not centres,
    and no refinement for a point off the heatmap)."""
    hh, hw, n = heat.shape
    cols = (xy[:, 0] * hw).astype(np.int64)  # truncation toward zero, as the C++ int conversion
    rows = (xy[:, 1] * hh).astype(np.int64)
    ok = (cols >= 0) & (cols < hw) & (rows >= 0) & (rows < hh)
    off = (_HEAT_KERNEL - 1) // 2
    span = np.arange(-off, off + 1)
    r = rows[:, None, None] + span[None, :, None]
    c = cols[:, None, None] + span[None, None, :]
    inside = (r >= 0) & (r < hh) & (c >= 0) & (c < hw)
    k = np.arange(n)[:, None, None]
    conf = np.where(inside, _sigmoid(heat[np.clip(r, 0, hh - 1), np.clip(c, 0, hw - 1), k]
                                     .astype(np.float64)), 0.0)
    total = conf.sum(axis=(1, 2))
    use = ok & (conf.max(axis=(1, 2)) >= 0.5) & (total > 0)
    out = xy.astype(np.float32)  # mediapipe's landmarks are float32 at every step
    safe = np.where(total > 0, total, 1.0)
    out[use, 0] = ((c * conf).sum(axis=(1, 2)) / hw / safe)[use]
    out[use, 1] = ((r * conf).sum(axis=(1, 2)) / hh / safe)[use]
    return out


class _OneEuro:
    """mediapipe's OneEuroFilter, on arrays (every element on its own); `value_scale` turns the
    speed into body sizes per second so that one cutoff suits near and far people."""

    def __init__(self, min_cutoff: float, beta: float, derivative_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.derivative_cutoff = min_cutoff, beta, derivative_cutoff
        self.reset()

    def reset(self) -> None:
        self.value = self.raw = self.speed = None
        self.last_ns = 0
        self.rate = 30.0

    def _alpha(self, cutoff):
        return 1.0 / (1.0 + self.rate / (2 * np.pi * cutoff))

    def __call__(self, t_ns: int, x: np.ndarray, value_scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self.last_ns >= t_ns:
            return x
        if self.last_ns:
            self.rate = 1e9 / (t_ns - self.last_ns)
        self.last_ns = t_ns
        # as mediapipe: arithmetic in double, every stored value float32
        x64 = x.astype(np.float64)
        speed = (np.zeros_like(x64) if self.raw is None
                 else (x64 - self.raw) * value_scale * self.rate)
        a = self._alpha(self.derivative_cutoff)
        self.speed = (speed if self.speed is None else a * speed + (1 - a) * self.speed
                      ).astype(np.float32)
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self.speed.astype(np.float64)))
        self.value = (x if self.value is None else a * x64 + (1 - a) * self.value
                      ).astype(np.float32)
        self.raw = x
        return self.value


class _LowPass:
    def __init__(self, alpha: float) -> None:
        self.alpha, self.value = alpha, None

    def reset(self) -> None:
        self.value = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.value = (x if self.value is None else self.alpha * x + (1 - self.alpha) * self.value
                      ).astype(np.float32)
        return self.value


def read_models(bundle: Path) -> tuple[bytes, bytes]:
    """The detector and landmark models of a pose bundle (engine/bundles.py)."""
    try:
        with zipfile.ZipFile(bundle) as zf:
            return zf.read(DETECTOR), zf.read(LANDMARKS)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise EngineError(f"model bundle corrupt: {bundle} ({exc}); rebuild it with "
                          f"`{BUILD_COMMAND}`") from None


class BlazePoseTracker:
    """One person through a video, frame by frame (see the module's docstring)."""

    def __init__(self, bundle: Path, min_detection: float = 0.5, min_tracking: float = 0.5,
                 smooth: bool = True, threads: int | None = None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise EngineError(f"the LiteRT runtime is missing ({exc}); install ai-edge-litert "
                              "(`make venv`, or reinstall the extension)") from None
        detector, landmarks = read_models(bundle)
        n = threads or cores.threads()
        try:
            with quiet_native_stderr():  # TFLite's "Created XNNPACK delegate" line
                self._det = Interpreter(model_content=detector, num_threads=n)
                self._lm = Interpreter(model_content=landmarks, num_threads=n)
                self._det.allocate_tensors()
                self._lm.allocate_tensors()
            self._det_in = self._det.get_input_details()[0]["index"]
            self._lm_in = self._lm.get_input_details()[0]["index"]
            det_out = {d["name"]: d["index"] for d in self._det.get_output_details()}
            lm_out = {d["name"]: d["index"] for d in self._lm.get_output_details()}
            self._det_boxes, self._det_scores = det_out["Identity"], det_out["Identity_1"]
            # landmarks (39 x 5), pose flag, heatmap (64 x 64 x 39), world (39 x 3); the
            # segmentation mask (Identity_2) is not read
            self._lm_out = tuple(lm_out[k] for k in ("Identity", "Identity_1", "Identity_3",
                                                     "Identity_4"))
        except (ValueError, RuntimeError, KeyError, IndexError) as exc:
            raise unusable(bundle, exc) from None
        self._anchors = _anchors()
        self.min_detection, self.min_tracking, self.smooth = min_detection, min_tracking, smooth
        self._roi: Roi | None = None
        self._t_ns = 0
        self._landmarks_f, self._world_f, self._aux_f = (
            _OneEuro(0.05, 80.0), _OneEuro(0.1, 40.0), _OneEuro(0.01, 10.0))
        self._vis_f = _LowPass(0.1)

    def reset(self) -> None:
        """Forget the person: the next frame detects again and the filters start afresh."""
        self._roi = None
        for f in (self._landmarks_f, self._world_f, self._aux_f, self._vis_f):
            f.reset()

    def detect(self, rgb: np.ndarray, turns: int = 0) -> list[tuple[float, np.ndarray]]:
        """People in one image: [(score, (4, 2) alignment points in its pixels: hip centre, full-body
        size/rotation point, shoulder centre, upper-body point)], best first. `turns`: the detector
        sees the image turned that many quarter turns anticlockwise (the points are still the
        image's); the turn is the crop's, so no turned copy of a large image is made (14 ms)."""
        h, w = rgb.shape[:2]
        side = float(max(w, h))
        turns %= 4
        rot = turns * math.pi / 2
        # Centred where np.rot90's turned image has its centre, so that the detector sees exactly
        # that image (a pixel off changes its scores by up to 0.2 at this downscale).
        cx, cy = w / 2 - (turns in (1, 2)), h / 2 - (turns in (2, 3))
        pad = np.array([(1 - w / side) / 2, (1 - h / side) / 2])  # the letterbox, as a share of the side
        img = _crop(rgb, cx, cy, side, side, rot, _DET_SIZE, cv2.BORDER_CONSTANT)
        self._det.set_tensor(self._det_in, (img.astype(np.float32) * (2 / 255) - 1)[None])
        self._det.invoke()
        raw = self._det.get_tensor(self._det_boxes)[0]
        scores = _sigmoid(self._det.get_tensor(self._det_scores)[0, :, 0])
        keep = np.flatnonzero(scores >= self.min_detection)
        if not keep.size:
            return []
        anchors, r = self._anchors[keep], raw[keep] / _DET_SIZE
        centre, half = r[:, :2] + anchors, r[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        points = r[:, 4:12].reshape(-1, 4, 2) + anchors[:, None]
        s = scores[keep]
        left = np.argsort(-s, kind="stable")
        out = []
        while left.size:  # weighted non-max suppression (IoU > 0.3 merges, weighted by score)
            iou = _iou(boxes[left[0]], boxes[left])
            group = left[iou > 0.3]
            if not group.size:
                break
            merged = (points[group] * s[group, None, None]).sum(0) / s[group].sum()
            if rot:  # back into the unturned crop's coordinates
                u, v = merged[:, 0] - 0.5, merged[:, 1] - 0.5
                cos, sin = math.cos(rot), math.sin(rot)
                merged = np.stack([cos * u - sin * v, sin * u + cos * v], axis=-1) + 0.5
            xy = (merged - pad) / (1 - 2 * pad) * (w, h) + (cx - w / 2, cy - h / 2)
            out.append((float(s[left[0]]), xy))
            left = left[iou <= 0.3]
        return out

    def people(self, rgb: np.ndarray, max_people: int = 4, turns: int = 0) -> list[PoseFrame]:
        """Everyone the detector finds in one image, each with their landmarks (no tracking, no
        smoothing; what MediaPipe's PoseLandmarker gives in image mode with num_poses). `turns`:
        as in `detect`; the landmarks are the image's either way."""
        out = []
        for _, points in self.detect(rgb, turns)[:max_people]:
            got = self._landmarks(rgb, aligned_roi(points[0], points[1]))
            if got is not None:
                out.append(_pose_frame(*got))
        return out

    def _landmarks(self, rgb: np.ndarray, roi: Roi):
        img = _crop(rgb, roi.cx, roi.cy, roi.size, roi.size, roi.rotation, _LM_SIZE,
                    cv2.BORDER_REPLICATE)
        self._lm.set_tensor(self._lm_in, (img.astype(np.float32) * (1 / 255))[None])
        self._lm.invoke()
        raw, flag, heat, world = (self._lm.get_tensor(i) for i in self._lm_out)
        if float(flag.ravel()[0]) < self.min_tracking:
            return None
        pts = raw.reshape(_N_POINTS, 5).astype(np.float32)
        xy = _refine(pts[:, :2] / _LM_SIZE, heat[0])
        cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
        u, v = xy[:, 0] - 0.5, xy[:, 1] - 0.5
        pixels = np.stack([(cos * u - sin * v) * roi.size + roi.cx,
                           (sin * u + cos * v) * roi.size + roi.cy,
                           pts[:, 2] / _LM_SIZE * roi.size], axis=-1)
        wl = world.reshape(_N_POINTS, 3)[:N_POSE].astype(np.float32)
        wl = np.stack([cos * wl[:, 0] - sin * wl[:, 1], sin * wl[:, 0] + cos * wl[:, 1], wl[:, 2]],
                      axis=-1)
        return pixels, _sigmoid(pts[:, 3]), wl

    def _candidates(self, rgb: np.ndarray, found: list[tuple[float, np.ndarray]], windowed: bool
                    ) -> list[tuple[Roi, tuple]]:
        """ROI and landmarks of up to _PICK_MAX people: those `found` in the window, then (when
        `windowed`) the whole frame's (a lost person may have left the window) unless one of those
        already lies near them (their hip centres within a fifth of the ROI)."""
        if windowed:
            found = found + self.detect(rgb)
        rois: list[Roi] = []
        for _, points in found:
            roi = aligned_roi(points[0], points[1])
            if all(math.hypot(roi.cx - r.cx, roi.cy - r.cy) > 0.2 * r.size for r in rois):
                rois.append(roi)
        seen = ((roi, self._landmarks(rgb, roi)) for roi in rois[:_PICK_MAX])
        return [(roi, got) for roi, got in seen if got is not None]

    def _turned(self, image: np.ndarray, origin: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """Detections in `image` (a window whose top left is `origin` in the frame) looked at upside
        down, then on either side, their alignment points put back in the frame: BlazePose's
        detector, trained on upright people, rarely finds someone mid-flip, in a handstand or
        lying. The landmark model needs no turn: the ROI the points give carries the rotation."""
        return [(s, p + origin) for turns in (2, 1, 3) for s, p in self.detect(image, turns)]

    def process(self, rgb: np.ndarray, window: tuple[int, int, int, int] | None = None,
                pick: Callable[[list[PoseFrame]], int | None] | None = None) -> PoseFrame | None:
        """The next video frame (RGB) → the person's landmarks, or None. `window` (x, y, w, h)
        limits where a lost person is looked for. Without `pick` the best detection there is the
        person, as in the legacy graph; with it, the search also looks at the whole frame and
        `pick`, given the landmarks of everyone found (the window's first), says which of them
        is the person (None: no one); if no one, it is asked again about the people the window
        shows turned (engine.people's follower does the same), lying or upside down ones only:
        an upright pose found only in a turned view is made of someone's limbs seen sideways."""
        self._t_ns += _FRAME_STEP_NS
        roi, got = self._roi, None
        if roi is None:
            image, origin = rgb, np.zeros(2)
            if window is not None:
                x, y, w, h = window
                image, origin = rgb[y:y + h, x:x + w], np.array([x, y], float)
            found = [(s, p + origin) for s, p in self.detect(image)]
            if pick is not None:
                seen = self._candidates(rgb, found, window is not None)
                k = pick([_pose_frame(*g) for _, g in seen]) if seen else None
                if k is None:
                    seen = [(r, g) for r, g in self._candidates(rgb, self._turned(image, origin), False)
                            if not upright(_pose_frame(*g))]
                    k = pick([_pose_frame(*g) for _, g in seen]) if seen else None
                if k is None:
                    self.reset()
                    return None
                roi, got = seen[k]
            elif found:
                points = found[0][1]
                roi = aligned_roi(points[0], points[1])
            else:
                self.reset()
                return None
        got = got or self._landmarks(rgb, roi)
        if got is None:
            self.reset()
            return None
        pixels, vis, world = got
        aux = pixels[N_POSE:N_POSE + 2]
        if self.smooth:
            body = aligned_roi(aux[0], aux[1], 1.0).size  # the legacy filter's object scale
            scale = 1.0 / body if body > 1e-6 else 1.0
            t = self._t_ns
            vis = self._vis_f(vis)
            pixels = self._landmarks_f(t, pixels[:N_POSE], scale)
            world = self._world_f(t, world)
            aux = self._aux_f(t, aux, scale)
        self._roi = aligned_roi(aux[0], aux[1])
        return _pose_frame(pixels, vis, world)


def _pose_frame(pixels: np.ndarray, vis: np.ndarray, world: np.ndarray) -> PoseFrame:
    """The 33 landmarks of (39, 3) pixels-and-depth, (39,) visibility and (33, 3) world."""
    return PoseFrame(pixels[:N_POSE, :2].astype(np.float32), pixels[:N_POSE, 2].astype(np.float32),
                     vis[:N_POSE].astype(np.float32), world.astype(np.float32))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
