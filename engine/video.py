"""Video probing and streaming: frames are decoded in a background thread, never all held."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import EngineError

# FFmpeg's own log lines ("moov atom not found", "Error at MB: …") would reach the user's terminal
# beside our one-line error. OpenCV reads this when it first opens a file with FFmpeg; set it
# yourself to see them (e.g. OPENCV_FFMPEG_LOGLEVEL=32).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

# Decode may lag the declared frame count by a few frames for some encoders; more than this is
# treated as a truncated or corrupt file.
_TRUNCATION_SLACK = 2
# Frames waiting between the reader thread and pose detection: at most this many bytes (8 frames
# of 1080p; 2 of 8K), so that memory stays flat whatever the resolution.
_QUEUE_BYTES = 64 << 20


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float
    frame_count: int  # as declared by the container; 0 when it does not say (live MKV, raw H.264)
    width: int  # after rotation metadata is applied
    height: int
    rotation_deg: int

    def to_json(self) -> dict:
        return {"path": str(self.path), "fps": self.fps, "frame_count": self.frame_count,
                "width": self.width, "height": self.height, "rotation_deg": self.rotation_deg}


_LOG_LOCK = threading.Lock()


def _open(path: Path) -> cv2.VideoCapture:
    # OpenCV warns on stderr when FFmpeg cannot open a file; we report that ourselves, once.
    with _LOG_LOCK:
        level = cv2.getLogLevel()
        cv2.setLogLevel(0)  # silent
        try:
            cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        finally:
            cv2.setLogLevel(level)
    # Honour rotation metadata (phones film portrait as rotated landscape).
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def probe(path: Path) -> VideoInfo:
    """Open `path`, decode its first frame and return its properties, or raise a one-line error."""
    path = Path(path)
    if not path.exists():
        raise EngineError(f"video not found: {path}")
    if path.is_dir():
        raise EngineError(f"expected a video file, got a directory: {path}")
    if path.stat().st_size == 0:
        raise EngineError(f"video file is empty: {path}")
    cap = _open(path)
    try:
        if not cap.isOpened():
            raise EngineError(f"cannot read video (not a video, or corrupt): {path}")
        ok, frame = cap.read()
        if not ok or frame is None:
            raise EngineError(f"video has no decodable frames: {path}")
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        if not np.isfinite(fps) or fps <= 0 or fps > 1000:
            raise EngineError(f"video reports no usable frame rate ({fps}): {path}")
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        # Streamed containers (OBS/live Matroska, raw H.264) have no count: OpenCV then returns a
        # huge negative number. Unknown is 0, and the frames are read to the end of the stream.
        count = int(count) if np.isfinite(count) and 0 < count < 2**31 else 0
        rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
        h, w = frame.shape[:2]
        return VideoInfo(path, fps, count, w, h, rotation)
    finally:
        cap.release()


def resolve_range(info: VideoInfo, frames: tuple[int, int | None] | None) -> tuple[int, int | None]:
    """A `--frames A:B` request as (start, stop), stop None meaning "to the end of the stream":
    frames are read until the decoder ends, not up to the declared count, which some containers
    understate or lack. Rejects a start past a declared end."""
    start, stop = (0, None) if frames is None else frames
    if info.frame_count and start >= info.frame_count:
        shown = "" if stop is None else stop
        raise EngineError(f"--frames {start}:{shown} starts past the end of the video "
                          f"({info.frame_count} frames)")
    if stop is not None and info.frame_count and stop >= info.frame_count:
        stop = None  # through the end, however many frames the stream really has
    return start, stop


def stream_frames(info: VideoInfo, start: int, stop: int | None, buffer: int | None = None,
                  cancel: threading.Event | None = None,
                  timestamps: list[float] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame_index, RGB frame) for frames [start, stop), decoded in a reader thread;
    stop None reads to the end of the stream.

    The bounded queue holds memory flat whatever the length; the thread overlaps decoding with
    pose inference, which leaves a core idle on its own. Raises EngineError if the file ends
    early (truncated or corrupt). `timestamps`, if given, receives each yielded frame's
    presentation time in seconds (variable-frame-rate videos are not evenly spaced).
    """
    if buffer is None:
        buffer = int(np.clip(_QUEUE_BYTES // max(1, info.width * info.height * 3), 2, 8))
    q: queue.Queue = queue.Queue(maxsize=buffer)
    halt = threading.Event()  # set when the consumer stops early, or on cancel
    cancel = cancel or threading.Event()
    done = object()

    def reader() -> None:
        cap = _open(info.path)
        try:
            # Skip by grabbing: exact on every codec, unlike seeking to a keyframe.
            for _ in range(start):
                if halt.is_set() or cancel.is_set() or not cap.grab():
                    break
            idx = start
            while stop is None or idx < stop:
                if halt.is_set() or cancel.is_set():
                    idx = None  # stopped by the consumer: not an early end of the file
                    break
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                q.put((idx, (cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), cap.get(cv2.CAP_PROP_POS_MSEC))))
                idx += 1
            q.put(("end", idx))
        except Exception as exc:  # surfaced in the consumer thread
            q.put(("error", exc))
        finally:
            cap.release()
            q.put(done)

    thread = threading.Thread(target=reader, name="video-reader", daemon=True)
    thread.start()
    last_ms = float("nan")
    try:
        while True:
            item = q.get()
            if item is done:
                break
            tag, payload = item
            if tag == "end":
                expected = stop if stop is not None else info.frame_count
                short = payload is not None and expected - payload > _TRUNCATION_SLACK
                if short and not _reached_end(info, last_ms):
                    raise EngineError(
                        f"video is truncated or corrupt: decoding stopped at frame {payload} of "
                        f"{expected} (use --frames {start}:{payload} to process the readable part)")
                continue
            if tag == "error":
                raise EngineError(f"video decoding failed: {payload}")
            rgb, last_ms = payload
            if timestamps is not None:
                timestamps.append(last_ms / 1000.0)
            yield tag, rgb
    finally:
        halt.set()
        # Drain so the reader can exit if it is blocked on a full queue.
        while thread.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join(timeout=1.0)


def _reached_end(info: VideoInfo, last_ms: float) -> bool:
    """Whether the last decoded frame lies at the container's end. Matroska, WebM and other
    formats without a frame count in their header make OpenCV estimate it as duration × frame
    rate, which a variable-frame-rate video overshoots: there, fewer frames is not truncation.
    Without a declared count there is no end to compare with: whatever decodes is the video."""
    if not info.frame_count:
        return True
    duration_ms = 1000.0 * info.frame_count / info.fps
    return bool(np.isfinite(last_ms)) and last_ms >= duration_ms - max(100.0, 3000.0 / info.fps)


def check_read(frames_read: int, start: int, info: VideoInfo) -> None:
    """One line when a detection loop read no frame: --frames starts past the end, or the video
    has none it can decode."""
    if frames_read == 0:
        raise EngineError(f"--frames {start}: starts past the end of the video (no frame {start})"
                          if start else f"video has no decodable frames: {info.path}")


def frame_timing(times: list[float], fps: float) -> dict:
    """How far the frames' own timestamps stray from evenly spaced frames, the timing every output
    uses. A variable-frame-rate video (off by more than half a frame) gets its measured mean rate,
    the evenly spaced timing closest to the truth; run.json records the rest of the drift."""
    t = np.asarray(times, dtype=np.float64)
    t = t[np.isfinite(t)] - (t[0] if len(t) else 0.0)
    steps = np.arange(len(t))
    drift = float(np.max(np.abs(t - steps / fps))) if len(t) else 0.0
    out = {"variable_frame_rate": False, "declared_fps": fps, "max_drift_s": round(drift, 4)}
    if len(t) > 2 and t[-1] > 0 and drift > 0.5 / fps:
        mean = (len(t) - 1) / t[-1]
        out |= {"variable_frame_rate": True, "mean_fps": round(mean, 4),
                "max_drift_s": round(float(np.max(np.abs(t - steps / mean))), 4)}
    return out
