"""Pose detection over a video: whom to follow (first frame), then MediaPipe frame by frame, with
progress and cancel."""

from __future__ import annotations

import threading

import numpy as np

from .blazepose import BlazePoseTracker
from .bundles import pose_bundle
from .config import RunConfig
from .errors import Cancelled, EngineError
from .landmarks import LandmarkTrack, PoseDetector
from .person import SubjectCrop, detect_people, pick_subject
from .progress import ProgressFn
from .video import VideoInfo, check_read, frame_timing, stream_frames


def choose_subject(rgb: np.ndarray, cfg: RunConfig, info: VideoInfo, use_roi: bool = True,
                   tracker: BlazePoseTracker | None = None) -> tuple[SubjectCrop | None, dict]:
    """Decide whom to follow from the first frame; returns the crop (None: whole frame) and what
    run.json records about the choice. `tracker`: the pose stage's, lent to the search."""
    if cfg.roi is not None and use_roi:
        x, y, w, h = cfg.roi
        if x >= info.width or y >= info.height:
            raise EngineError(f"--roi {x},{y},{w},{h} lies outside the {info.width}x{info.height} frame")
        box = (float(x), float(y), float(min(w, info.width - x)), float(min(h, info.height - y)))
        return SubjectCrop.around(box, info.width, info.height), {"method": "roi", "box": list(box)}
    boxes = detect_people(rgb, model=cfg.pose_model, tracker=tracker)
    if len(boxes) < 2:  # no crop: the tracker looks at the whole frame (the box is a fallback)
        return None, {"method": "single", "candidates": len(boxes),
                      **({"box": [round(v, 1) for v in boxes[0]]} if boxes else {})}
    i = pick_subject(boxes, info.width, info.height)
    return (SubjectCrop.around(boxes[i], info.width, info.height),
            {"method": "largest-central", "candidates": len(boxes), "box": [round(v, 1) for v in boxes[i]]})


def detect(cfg: RunConfig, info: VideoInfo, start: int, stop: int | None,
           progress: ProgressFn, cancel: threading.Event,
           further_view: bool = False) -> tuple[LandmarkTrack, dict, dict]:
    """Stream frames [start, stop) (stop None: to the end of the stream) through MediaPipe;
    returns the landmark track, the subject record and the frames' timing (video.frame_timing).
    `progress` gets the fraction of the frames done. A `further_view` (a multi-view run's second
    camera on) ignores --roi, which names the subject in the first video, and --holistic."""
    expected = (stop if stop is not None else info.frame_count) - start
    # The track grows if the stream outruns its declared count (or has none): nothing is dropped.
    track = LandmarkTrack(expected if expected > 0 else 256, holistic=cfg.holistic and not further_view)
    subject: dict = {}
    times: list[float] = []
    detector: PoseDetector | None = None
    n = 0
    try:
        for idx, rgb in stream_frames(info, start, stop, cancel=cancel, timestamps=times):
            if cancel.is_set():
                raise Cancelled()
            if detector is None:
                holistic = cfg.holistic and not further_view
                # One tracker for the search and the body (each loads the bundle's two models)
                body = BlazePoseTracker(pose_bundle(cfg.pose_model))
                crop, subject = choose_subject(rgb, cfg, info, use_roi=not further_view,
                                               tracker=body)
                first = None  # where the one person was seen in the first frame, without a crop
                if crop is None and subject.get("box"):
                    first = SubjectCrop.around(tuple(subject["box"]), info.width, info.height)
                detector = PoseDetector(holistic=holistic, crop=crop, model=cfg.pose_model,
                                        fps=info.fps, tracker=body, first=first)
            if idx - start >= track.frames:
                track.grow(2 * track.frames)
            detector.process(rgb, track, idx - start)
            n = idx - start + 1
            if n % 5 == 0 or n == expected:
                total = f"/{expected}" if n <= expected else ""
                progress(min(n / max(expected, n + 1), 1.0), f"pose {n}{total}")
    finally:
        if detector is not None:
            detector.close()
    if cancel.is_set():
        raise Cancelled()
    check_read(n, start, info)
    if n < track.frames:
        track.truncate(n)
    return track, subject, frame_timing(times, info.fps)
