"""Everyone in a video, each with a stable ID: BlazePose (engine/blazepose.py) finds the poses,
engine/tracking.py keeps the IDs.

BlazePose's detector on the whole frame misses people it sees too small at 224 pixels (the Sports2D
demo's man on the box, a Demo_MultiPerson camera's second person), merges people who overlap into
one detection, and its tracker follows one person. So each frame's poses come from
  - one BlazePoseTracker per track, which tracks that person from their last landmarks (on the
    whole frame: the legacy graph's tracking, at full resolution for every person) and, once they
    are lost, looks for them again inside a crop that follows them (as the single-person run
    follows its subject: engine/person.py's SubjectCrop);
  - every `search_every` frames, a search for people not yet followed: BlazePose's detector and
    landmarks (each image alone, up to 4 people, as MediaPipe's PoseLandmarker with num_poses) on
    the whole frame and on overlapping tiles of it, and OpenCV's HOG people detector, whose boxes
    are looked at again through a crop.
Where people overlap, a tracker's region shows them both and the single-person model follows
either, or mixes their limbs into one body; so for each track the other people just seen are
greyed out (their bodies drawn from their landmarks as thick bones, except where they cover this
person's own), as the legacy MediaPipe multi-person recipe did.
Poses of the same body found twice are merged (keeping the one from the track that fits it), then
the tracker assigns them. A track whose tracker has drifted onto someone else (its pose went to
another track) or lost its person starts again from its own predicted box, so one person never
feeds two IDs.

`--people` chooses whom to write: `largest` (the default: the single-person run as before, no
tracker), `all`, `N` (the N largest people) or `ID,ID` (these IDs, as a previous run listed them).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from .blazepose import BlazePoseTracker, PoseFrame
from .bundles import pose_bundle
from .errors import Cancelled, EngineError
from .holistic import HolisticFollower
from .landmarks import LandmarkTrack
from .person import SubjectCrop, clip_window, hog_people
from .progress import ProgressFn
from .tracking import MAX_SPEED, VISIBLE, Pose, Track, Tracker, deduplicate, iou, pose_box, size, upright
from .video import VideoInfo, check_read, frame_timing, stream_frames

FOLLOW_CONFIDENCE = 0.5  # a follower's detection threshold (MediaPipe's default)
FOLLOW_TRACKING = 0.3  # a follower's pose flag threshold while tracking: 0.5 (MediaPipe's default)
# let the Sports2D demo's man go on 4 more frames of his flip (benchmarks/people.py: 97.4 -> 99.1 %
# coverage, no switch, nothing else changed)
MIN_PERSON = 0.12  # the search keeps people whose box diagonal is at least this share of the frame's
# shorter side (a standing adult 8-10 m from a phone camera)
OUTLINE_WIDTH = 0.11  # a bone's thickness in a person's Outline, in person sizes
_SPEC = re.compile(r"^(largest|all|#?\d+|\d+(,\d+)*,?)$")


def parse_people(text: str) -> str | int | tuple[int, ...]:
    """`--people` value → "largest", "all", N (the N largest) or a tuple of IDs. One ID is
    written `#ID` or `ID,` (a bare number is a count); several IDs as `ID,ID`."""
    value = str(text).strip().lower().replace(" ", "")
    if not _SPEC.match(value):
        raise EngineError(f"--people must be largest, all, a count N, #ID or ID,ID (IDs from 1), "
                          f"got {text!r}")
    if value in ("largest", "all"):
        return value
    if value.startswith("#"):
        ids: tuple[int, ...] = (int(value[1:]),)
    elif "," in value:
        ids = tuple(dict.fromkeys(int(v) for v in value.split(",") if v))
    else:
        n = int(value)
        if n < 1:
            raise EngineError(f"--people N must be at least 1, got {text!r}")
        return n
    if min(ids) < 1:
        raise EngineError(f"--people IDs start at 1, got {text!r}")
    return ids


class _Follower:
    """One person's BlazePose tracker (engine/blazepose.py): it tracks from the person's last
    landmarks on the whole frame, with the other people greyed out; a lost person is looked for
    again inside a crop that follows them."""

    def __init__(self, box: tuple[float, float, float, float], info: VideoInfo, bundle: Path) -> None:
        self.crop = SubjectCrop.around(box, info.width, info.height)
        self._tracker = BlazePoseTracker(bundle, min_detection=FOLLOW_CONFIDENCE,
                                         min_tracking=FOLLOW_TRACKING)

    def restart(self) -> None:
        """Forget the tracked body (it was someone else's, or lost): detect again in the crop."""
        self._tracker.reset()

    def process(self, rgb: np.ndarray, track_id: int, own: Outline | None = None,
                others: list[Outline] = ()) -> list[Pose]:
        """This frame's pose of the person, with the `others` (other tracked people) greyed out
        except where they overlap this person's `own` outline."""
        window = clip_window(self.crop.window(), rgb.shape[1], rgb.shape[0])
        if window is None:  # the predicted box left the frame
            self._tracker.reset()
            return []
        found = self._tracker.process(_mask_others(rgb, (0, 0), own, list(others)), window)
        return [] if found is None else [_pose(found, 0, 0, track_id)]


# A body drawn as thick bones: limbs, feet, the torso's outline (filled) and the head.
_BONES = ((11, 13), (13, 15), (12, 14), (14, 16), (15, 19), (16, 20), (23, 25), (25, 27), (24, 26),
          (26, 28), (27, 29), (29, 31), (27, 31), (28, 30), (30, 32), (28, 32))
_TORSO = (11, 12, 24, 23)
_HEAD = tuple(range(11))


@dataclass
class Outline:
    """Where a person's body lies in the image, from landmarks: bones drawn `width` thick, the
    torso filled, the head a disc (a box or a landmark hull around a leaning, reaching person
    covers whoever stands beside them)."""

    pixels: np.ndarray  # (33, 2) frame pixels
    visible: np.ndarray  # (33,) bool
    scale: float  # the person's size in pixels (box diagonal)

    def draw(self, mask: np.ndarray, origin: tuple[int, int], value: int,
             width: float = OUTLINE_WIDTH) -> None:
        """Paint the body into `mask` (a crop whose top left is at `origin` in the frame)."""
        pts = np.round(self.pixels - np.asarray(origin)).astype(np.int32)
        thick = max(2, int(round(width * self.scale)))
        for a, b in _BONES:
            if self.visible[a] and self.visible[b]:
                cv2.line(mask, tuple(pts[a]), tuple(pts[b]), value, thick)
        torso = [j for j in _TORSO if self.visible[j]]
        if len(torso) >= 3:
            cv2.fillConvexPoly(mask, pts[torso], value)
            cv2.polylines(mask, [pts[torso]], True, value, thick)
        head = [j for j in _HEAD if self.visible[j]]
        if head:
            c = pts[head].mean(axis=0).astype(int)
            cv2.circle(mask, (int(c[0]), int(c[1])), int(round(0.8 * thick)), value, -1)


def outline(pixels: np.ndarray, visibility: np.ndarray, scale: float) -> Outline | None:
    """A person's Outline; None with fewer than 4 visible landmarks."""
    visible = (visibility > VISIBLE) & np.isfinite(pixels).all(axis=1)
    return Outline(pixels, visible, scale) if visible.sum() >= 4 else None


def _mask_others(crop: np.ndarray, origin: tuple[int, int], own: Outline | None,
                 others: list[Outline]) -> np.ndarray:
    """The crop with the other people's bodies filled grey, so that a single-person landmarker
    neither locks onto them nor mixes their limbs into this person's body (the legacy MediaPipe
    multi-person trick); where another body overlaps this person's own, the pixels stay."""
    if not others:
        return crop
    mask = np.zeros(crop.shape[:2], np.uint8)
    for o in others:
        o.draw(mask, origin, 1)
    if own is not None:
        own.draw(mask, origin, 0)
    if not mask.any():
        return crop
    out = crop.copy()
    out[mask.astype(bool)] = 128
    return out


def _tiles(width: int, height: int, side: float = 0.6, overlap: float = 0.25
           ) -> list[tuple[int, int, int, int]]:
    """Square tiles of `side` x the shorter side, overlapping by `overlap`, covering the frame."""
    s = int(round(side * min(width, height)))
    def starts(length: int) -> list[int]:
        n = max(1, int(np.ceil((length - s) / ((1 - overlap) * s))) + 1)
        return [int(round(v)) for v in np.linspace(0, max(length - s, 0), n)]
    return [(x, y, s, s) for y in starts(height) for x in starts(width)]


def _pose(found: PoseFrame, ox: int, oy: int, source: int | None) -> Pose:
    """A tracker's pose, found in an image whose top left is at (ox, oy) in the frame."""
    return Pose(found.pixels + np.float32([ox, oy]), found.visibility, found.depth, found.world,
                source)


class PeopleFinder:
    """Each frame's poses of everyone, and the IDs (call `frame` for frames in order, then
    `tracks`)."""

    def __init__(self, info: VideoInfo, model: str = "full", max_gap_s: float = 0.5,
                 search_s: float = 0.25, holistic: bool = False) -> None:
        self.info = info
        self.model = model
        self.holistic = holistic
        self._holistic: dict[int, HolisticFollower] = {}  # --holistic: each track's own graph
        self.tracker = Tracker(info.fps, max_gap_s=max_gap_s)
        self.search_every = max(1, int(round(search_s * (info.fps or 30.0))))
        self._followers: dict[int, _Follower] = {}
        self._bundle = pose_bundle(model)
        self._search = BlazePoseTracker(self._bundle)

    def close(self) -> None:
        self._followers.clear()
        for follower in self._holistic.values():
            follower.close()
        self._holistic.clear()

    def _find(self, rgb: np.ndarray, known: list[Pose]) -> list[Pose]:
        """People in the whole frame and in overlapping tiles of it (each image alone; in a tile a small
        person reaches BlazePose's detector at a usable size), and in HOG's boxes that no pose
        covers yet."""
        h, w = rgb.shape[:2]
        windows = [(0, 0, w, h)] + _tiles(w, h)
        found: list[Pose] = []
        for ox, oy, cw, ch in windows:
            found += self._look(rgb, ox, oy, cw, ch)
        for box in hog_people(rgb):
            if any(iou(box, p.box) > 0.5 for p in known + found):
                continue
            found += self._look(rgb, *SubjectCrop.around(box, w, h).window())
        smallest = MIN_PERSON * min(w, h)  # below: a fixture or a poster more often than a person
        return [p for p in found if (p.visibility > VISIBLE).sum() >= 6 and size(p.box) >= smallest]

    def _look(self, rgb: np.ndarray, ox: int, oy: int, w: int, h: int, turns: int = 0,
              source: int | None = None, own: Outline | None = None,
              others: list[Outline] = ()) -> list[Pose]:
        """Poses in a window of the frame (each image alone), the detector shown it turned `turns`
        quarter turns anticlockwise, with `others` greyed out as a follower does."""
        window = clip_window((ox, oy, w, h), rgb.shape[1], rgb.shape[0])
        if window is None:
            return []
        ox, oy, w, h = window
        crop = _mask_others(rgb[oy:oy + h, ox:ox + w], (ox, oy), own, list(others))
        return [_pose(found, ox, oy, source) for found in self._search.people(crop, 4, turns)]

    def _relook(self, rgb: np.ndarray, follower: _Follower, track_id: int, own: Outline | None,
                others: list[Outline]) -> list[Pose]:
        """A second look at a follower's crop while its person is lost: once as it is (the image
        alone: a fresh detection, without the tracker's memory of a wrong body), then
        through a window half as large again (a lean or a fast step can take the person past
        the crop's edge before it re-centres), and, upside down or lying (a flip, a handstand,
        a fall: BlazePose's detector rarely finds anyone then), turned. A pose found only turned
        must be lying or upside down: an upright one is a body the turned view made up from
        someone else's limbs."""
        window = follower.crop.window()
        x, y, w, h = window
        wide = (int(x - 0.25 * w), int(y - 0.25 * h), int(1.5 * w), int(1.5 * h))
        for view in (window, wide):
            found = self._look(rgb, *view, source=track_id, own=own, others=others)
            if found:
                return found
        for turns in (2, 1, 3):
            found += [p for p in self._look(rgb, *window, turns=turns, source=track_id, own=own,
                                            others=others) if not upright(p)]
        return found

    def frame(self, rgb: np.ndarray, i: int) -> dict[int, Pose]:
        """Frame i's poses by (provisional) track ID."""
        live = self.tracker.live(i)
        outlines = {t.id: outline(t.predict(i), t.visibility, t.size) for t in live}
        # Only people seen just now are masked for others: an older outline is a guess that might
        # hide the person a crop looks for (their own, however old, only protects pixels).
        shown = [t.id for t in live if i - t.last <= 2]
        poses: list[Pose] = []
        for track in live:
            follower = self._followers.get(track.id)
            if follower is None:
                continue
            gap = i - track.last
            if gap > 1:  # unseen: look where the track's motion says the person is, and around
                x, y, w, h = track.predicted_box(i)
                reach = MAX_SPEED * track.size * (gap - 1)  # as far as they can have gone
                follower.crop.box = follower.crop._grow((x - reach, y - reach, w + 2 * reach,
                                                         h + 2 * reach))
                follower.restart()
            others = [o for tid in shown if tid != track.id and (o := outlines[tid]) is not None]
            found = follower.process(rgb, track.id, outlines.get(track.id), others)
            if not found or gap > 1:
                found += self._relook(rgb, follower, track.id, outlines.get(track.id), others)
            poses += found
        if i % self.search_every == 0 or not live:
            poses += self._find(rgb, poses)
        tracks = {t.id: t for t in live}
        def fit(p: Pose) -> float:  # how well a pose found by a track's crop fits that track
            return self.tracker.cost(tracks[p.source], p, i) if p.source in tracks else 0.0
        assigned = self.tracker.step(i, deduplicate(poses, fit))
        if self.holistic:
            self._hands_and_faces(rgb, i, assigned)
        self._steer(i, assigned)
        return assigned

    def _hands_and_faces(self, rgb: np.ndarray, i: int, assigned: dict[int, Pose]) -> None:
        """--holistic: each person's own Holistic graph, shown a window that follows them with the
        others greyed out (as their body's follower is), adds their hands and face to their pose."""
        shapes = {tid: outline(p.pixels, p.visibility, size(p.box)) for tid, p in assigned.items()}
        for tid, pose in assigned.items():
            follower = self._holistic.get(tid)
            if follower is None:
                crop = SubjectCrop.around(pose.box, self.info.width, self.info.height)
                follower = self._holistic[tid] = HolisticFollower(self.model, self.info.fps, crop=crop)
            others = [o for t, o in shapes.items() if t != tid and o is not None]
            pose.parts = follower.process(rgb, i, pose.pixels, pose.visibility,
                                          mask=partial(_mask_others, own=shapes[tid], others=others))

    def _steer(self, i: int, assigned: dict[int, Pose]) -> None:
        """Followers follow their track's assigned pose; new tracks get one, ended tracks lose theirs."""
        live = {t.id: t for t in self.tracker.live(i + 1)}
        for tid in list(self._followers):
            if tid not in live:
                del self._followers[tid]
        for tid in list(self._holistic):
            if tid not in live:
                self._holistic.pop(tid).close()
        for tid, track in live.items():
            pose = assigned.get(tid)
            follower = self._followers.get(tid)
            if follower is None:
                box = pose.box if pose is not None else track.predicted_box(i + 1)
                self._followers[tid] = _Follower(box, self.info, self._bundle)
            elif pose is not None:
                follower.crop.update(pose.pixels, pose.visibility > VISIBLE)

    def tracks(self, frames: int, min_frames: int = 3) -> list[tuple[int, LandmarkTrack]]:
        """(ID, landmarks over the run's `frames` rows) of every person tracked for at least
        `min_frames` frames and, typically, at least the search's smallest person, IDs 1, 2, ...
        by first appearance."""
        smallest = MIN_PERSON * min(self.info.width, self.info.height)
        return [(t.id, to_landmarks(t, frames, self.holistic))
                for t in self.tracker.finished(min_frames, smallest)]


def to_landmarks(track: Track, frames: int, holistic: bool = False) -> LandmarkTrack:
    out = LandmarkTrack(frames, holistic=holistic)
    for i, p in track.frames.items():
        if i >= frames:
            continue
        if holistic and p.parts is not None:
            out.add_parts(i, p.parts)
        out.pixels[i] = p.pixels
        out.visibility[i] = p.visibility
        if p.depth_rel is not None:
            out.depth_rel[i] = p.depth_rel
        if p.world is not None:
            out.world[i] = p.world
        out.detected[i] = True
    return out


def track_people(info: VideoInfo, start: int, stop: int | None, model: str = "full",
                 max_gap_s: float = 0.5, progress: ProgressFn | None = None,
                 cancel: threading.Event | None = None,
                 holistic: bool = False) -> tuple[list[tuple[int, LandmarkTrack]], dict]:
    """Everyone in frames [start, stop) of the video: [(ID, LandmarkTrack)] by first appearance,
    and the frames' timing (video.frame_timing); with their hands and faces for `holistic`."""
    cancel = cancel or threading.Event()
    progress = progress or (lambda f, m: None)
    expected = max((stop if stop is not None else info.frame_count) - start, 1)
    finder = PeopleFinder(info, model=model, max_gap_s=max_gap_s, holistic=holistic)
    times: list[float] = []
    n = 0
    try:
        for idx, rgb in stream_frames(info, start, stop, cancel=cancel, timestamps=times):
            if cancel.is_set():
                raise Cancelled()
            finder.frame(rgb, idx - start)
            n = idx - start + 1
            if n % 5 == 0:
                progress(min(n / expected, 1.0), f"people {n}/{expected}")
    finally:
        finder.close()
    if cancel.is_set():
        raise Cancelled()
    check_read(n, start, info)
    min_frames = max(3, int(round(0.2 * (info.fps or 30.0))))
    return finder.tracks(n, min_frames), frame_timing(times, info.fps)


def mean_size(track: LandmarkTrack) -> float:
    """The person's typical size in the image (median box diagonal over the frames they are seen)."""
    sizes = [size(pose_box(track.pixels[i], track.visibility[i])) for i in np.flatnonzero(track.detected)]
    return float(np.median(sizes)) if sizes else 0.0


def select(people: list[tuple[int, LandmarkTrack]], spec: str | int | tuple[int, ...]
           ) -> list[tuple[int, LandmarkTrack]]:
    """The people `--people` asks for, in ID order; an ID that never appears is an EngineError."""
    if not people:
        raise EngineError("no person detected")
    if spec == "all":
        return people
    if isinstance(spec, tuple):
        known = {pid for pid, _ in people}
        missing = [pid for pid in spec if pid not in known]
        if missing:
            listed = ", ".join(str(pid) for pid, _ in people)
            raise EngineError(f"--people: no person {', '.join(map(str, missing))} in this video "
                              f"(people found: {listed})")
        return [p for p in people if p[0] in spec]
    n = 1 if spec == "largest" else int(spec)
    # Largest: how big they appear, times how much of the run they are in.
    ranked = sorted(people, key=lambda p: -mean_size(p[1]) * p[1].detected.mean())
    return sorted(ranked[:n], key=lambda p: p[0])
