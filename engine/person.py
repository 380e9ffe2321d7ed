"""Choosing one person consistently when several are visible, and following them with a crop.

BlazePose's tracker follows whoever its detector finds first. To make that choice ours (largest /
most central, or the user's `--roi`), we find candidates once, in the first frame, with OpenCV's
HOG people detector and BlazePose itself in image mode (everyone its detector finds; both
offline), and then keep a crop that follows the chosen person's landmarks: a lost person is looked
for again only inside it (and `--holistic` runs MediaPipe on it), so a second person is not
picked up instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from .blazepose import BlazePoseTracker

Box = tuple[float, float, float, float]  # x, y, w, h in frame pixels


def detect_people(rgb: np.ndarray, model: str = "full",
                  tracker: BlazePoseTracker | None = None) -> list[Box]:
    """Candidate people in a frame: the union of two weak detectors that miss different people
    (HOG misses people in unusual poses; MediaPipe's detector misses small or distant people).
    `tracker`: the pose stage's own, lent for the search (it keeps no state from it)."""
    return _suppress(hog_people(rgb) + _pose_people(rgb, model=model, tracker=tracker))


def _pose_people(rgb: np.ndarray, max_people: int = 4, model: str = "full",
                 tracker: BlazePoseTracker | None = None) -> list[Box]:
    """People found by BlazePose in one image (its detector, then landmarks for each), up to
    max_people: boxes around each one's confident landmarks."""
    if tracker is None:
        from .blazepose import BlazePoseTracker
        from .bundles import pose_bundle

        tracker = BlazePoseTracker(pose_bundle(model))
    boxes: list[Box] = []
    for person in tracker.people(rgb, max_people):
        pts = person.pixels[person.visibility > 0.5]
        if len(pts) < 4:
            continue
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        boxes.append((float(x0), float(y0), float(x1 - x0), float(y1 - y0)))
    return boxes


def hog_people(rgb: np.ndarray, max_side: int = 640) -> list[Box]:
    """People boxes via OpenCV's built-in HOG detector (no download)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = cv2.resize(rgb, (int(w * scale), int(h * scale))) if scale < 1 else rgb
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    rects, weights = hog.detectMultiScale(small, winStride=(8, 8), padding=(8, 8), scale=1.05)
    return [(x / scale, y / scale, bw / scale, bh / scale)
            for (x, y, bw, bh), wt in zip(rects, np.ravel(weights)) if wt > 0.3]


def _iou(a: Box, b: Box) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter + 1e-9)


def _suppress(boxes: list[Box], thresh: float = 0.3) -> list[Box]:
    kept: list[Box] = []
    for b in sorted(boxes, key=lambda b: -b[2] * b[3]):
        if all(_iou(b, k) < thresh for k in kept):
            kept.append(b)
    return kept


def pick_subject(boxes: list[Box], width: int, height: int) -> int:
    """Index of the largest, most central box: area discounted by distance from the centre."""
    def score(b: Box) -> float:
        cx, cy = b[0] + b[2] / 2, b[1] + b[3] / 2
        off = np.hypot((cx - width / 2) / width, (cy - height / 2) / height)
        return b[2] * b[3] * (1.0 - min(off, 0.9))
    return int(np.argmax([score(b) for b in boxes]))


def clip_window(window: tuple[int, int, int, int], width: int, height: int
                ) -> tuple[int, int, int, int] | None:
    """The part of a crop window inside the frame; None when under 16 pixels a side."""
    x, y, w, h = window
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    return (x0, y0, x1 - x0, y1 - y0) if x1 - x0 >= 16 and y1 - y0 >= 16 else None


@dataclass
class SubjectCrop:
    """A crop window around the subject that moves only when they near its edge (hysteresis).
    The body's tracker looks for a lost subject inside it (and tracks on the whole frame);
    `--holistic` runs MediaPipe on it, whose frame-to-frame tracking a still window keeps valid."""

    frame_w: int
    frame_h: int
    box: Box
    margin: float = 0.6  # crop = subject box grown by this fraction on each side

    @classmethod
    def around(cls, subject: Box, frame_w: int, frame_h: int) -> SubjectCrop:
        crop = cls(frame_w, frame_h, subject)
        crop.box = crop._grow(subject)
        return crop

    def _grow(self, b: Box) -> Box:
        side = max(b[2], b[3] * 0.6)  # keep a person-shaped window, never a sliver
        w, h = b[2] + 2 * self.margin * side, b[3] + 2 * self.margin * side * 0.6
        x, y = b[0] + b[2] / 2 - w / 2, b[1] + b[3] / 2 - h / 2
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(float(self.frame_w), x + w), min(float(self.frame_h), y + h)
        return (x0, y0, max(16.0, x1 - x0), max(16.0, y1 - y0))

    def window(self) -> tuple[int, int, int, int]:
        x, y, w, h = self.box
        return int(x), int(y), int(round(w)), int(round(h))

    def update(self, pixels: np.ndarray, confident: np.ndarray) -> None:
        """Follow the subject from this frame's landmarks (frame pixels)."""
        pts = pixels[confident]
        if len(pts) < 4:
            return
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        cx, cy, cw, ch = self.box
        inner = 0.12  # re-centre once the subject comes within 12 % of the crop's edge
        if (x0 < cx + inner * cw or x1 > cx + (1 - inner) * cw or y0 < cy + inner * ch
                or y1 > cy + (1 - inner) * ch or (x1 - x0) * (y1 - y0) < 0.08 * cw * ch):
            self.box = self._grow((float(x0), float(y0), float(x1 - x0), float(y1 - y0)))
