"""Frame-to-frame identity of several people: 2D poses in, stable integer IDs out.

Each frame's poses are assigned to the live tracks with the Hungarian method
(scipy.optimize.linear_sum_assignment) on a cost that mixes
  - keypoint distance: the mean distance between the pose's landmarks and the track's landmarks
    predicted by constant velocity, over the landmarks both see, weighted by visibility and
    divided by the person's size (their box diagonal), so a child far away and an adult near the
    camera are judged alike;
  - box overlap: 1 - IoU of the pose's box and the track's predicted box;
and a gate: a pose farther than `gate` person sizes from a track's prediction can never take it
(the gate widens with the time the track has been unseen, as its prediction grows less sure).

Two people crossing keep their IDs because the cost of swapping is the sum of both poses' distance
from the *other* track's prediction, which constant velocity keeps large while they pass; a
person hidden for up to `max_gap_s` (default 0.5 s) keeps the ID, their track coasting on its
velocity meanwhile; after that the track ends and a person seen again gets a new ID. IDs are
numbered 1, 2, ... in the order people first appear (`renumber` after dropping short tracks).

Pure numpy/scipy: the MediaPipe side (engine/people.py) feeds it poses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import linear_sum_assignment

from .joint_sets import MP_MIRROR

if TYPE_CHECKING:
    from .holistic import Parts

VISIBLE = 0.5  # a landmark counts for distances and boxes from this visibility on
_INFEASIBLE = 1e6
MAX_COAST = 6  # frames a track's prediction extrapolates its velocity
MAX_SPEED = 0.2  # person sizes per frame
TORSO_S, TORSO_GROWTH = 2.0, 1.2  # Subject.plausible: the torso's recent longest, and its margin


@dataclass
class Pose:
    """One person's 2D pose in one frame (full-frame pixels), with what MediaPipe gave for it."""

    pixels: np.ndarray  # (33, 2)
    visibility: np.ndarray  # (33,)
    depth_rel: np.ndarray | None = None  # (33,)
    world: np.ndarray | None = None  # (33, 3)
    source: int | None = None  # the track whose own crop found it; None: the frame-wide search
    parts: Parts | None = None  # --holistic: the hands and face hung on this body

    @property
    def box(self) -> tuple[float, float, float, float]:
        return pose_box(self.pixels, self.visibility)

    @property
    def score(self) -> float:
        return float(np.mean(self.visibility))


def pose_box(pixels: np.ndarray, visibility: np.ndarray) -> tuple[float, float, float, float]:
    """x, y, w, h around the visible landmarks (all of them when fewer than 4 are visible)."""
    pts = pixels[visibility > VISIBLE]
    if len(pts) < 4:
        pts = pixels[np.isfinite(pixels).all(axis=1)]
    if len(pts) == 0:
        return (0.0, 0.0, 0.0, 0.0)
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def _torso(pixels: np.ndarray, visibility: np.ndarray) -> np.ndarray | None:
    """The hips' midpoint to the shoulders' (image pixels); None unless all four are visible."""
    if not (visibility[[11, 12, 23, 24]] > VISIBLE).all():
        return None
    return pixels[[11, 12]].mean(axis=0) - pixels[[23, 24]].mean(axis=0)


def upright(pose) -> bool:
    """The torso of a pose (anything with (33, 2) `pixels` and (33,) `visibility`) points up,
    within 45° of the image's vertical."""
    up = _torso(pose.pixels, pose.visibility)
    return up is not None and bool(-up[1] > abs(up[0]))


def torso_length(pixels: np.ndarray, visibility: np.ndarray) -> float | None:
    """Pixels from the hips' to the shoulders' midpoint; None unless all four are visible."""
    up = _torso(pixels, visibility)
    return None if up is None else float(np.linalg.norm(up))


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def contained(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """The share of the smaller box that lies inside the other."""
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    smaller = min(a[2] * a[3], b[2] * b[3])
    return iw * ih / smaller if smaller > 0 else 0.0


def size(box: tuple[float, ...]) -> float:
    """A person's size in pixels: their box diagonal (never below 16 px)."""
    return max(float(np.hypot(box[2], box[3])), 16.0)


def keypoint_distance(a_px: np.ndarray, a_vis: np.ndarray, b_px: np.ndarray, b_vis: np.ndarray,
                      scale: float) -> float:
    """Visibility-weighted mean landmark distance in units of `scale`, the smaller of as labelled
    and with b's left and right exchanged (MediaPipe flips them on a person seen from behind);
    inf when the two poses share fewer than 3 visible landmarks."""
    return min(keypoint_distances(a_px, a_vis, b_px, b_vis, scale))


def keypoint_distances(a_px: np.ndarray, a_vis: np.ndarray, b_px: np.ndarray, b_vis: np.ndarray,
                       scale: float) -> tuple[float, float]:
    """`keypoint_distance` as labelled and with b's left and right exchanged, both."""
    mirror = list(MP_MIRROR)
    return (_distance(a_px, a_vis, b_px, b_vis, scale),
            _distance(a_px, a_vis, b_px[mirror], b_vis[mirror], scale))


def _distance(a_px: np.ndarray, a_vis: np.ndarray, b_px: np.ndarray, b_vis: np.ndarray,
              scale: float) -> float:
    w = np.minimum(a_vis, b_vis)
    ok = (w > VISIBLE) & np.isfinite(a_px).all(axis=1) & np.isfinite(b_px).all(axis=1)
    if ok.sum() < 3:
        return float("inf")
    d = np.linalg.norm(a_px[ok] - b_px[ok], axis=1)
    return float(np.sum(w[ok] * d) / np.sum(w[ok]) / scale)


def same_person(a: Pose, b: Pose, near: float = 0.1, share: float = 0.5) -> bool:
    """Two poses of one frame that describe the same body (two searches found the same person,
    or one found only part of it): at least `share` of the landmarks both see lie within `near`
    person sizes of each other (left and right as labelled or exchanged), or the boxes nearly
    coincide, or one crop's landmarker reported both and one lies mostly inside the other (its
    second pose is then a double detection: another person in that crop has a crop of their own).
    Two different people, however close, rarely share half their landmarks."""
    scale = min(size(a.box), size(b.box))  # the smaller: a large person near the camera
    # would otherwise absorb a smaller one beside them
    mirror = list(MP_MIRROR)
    for bp, bv in ((b.pixels, b.visibility), (b.pixels[mirror], b.visibility[mirror])):
        ok = (a.visibility > VISIBLE) & (bv > VISIBLE)
        ok[1:11] = False  # the face counts as one point (the nose): two heads side by side, or
        # one in front of the other, share 11 landmarks but not the bodies below them
        if ok.sum() >= 3 and np.mean(np.linalg.norm(a.pixels[ok] - bp[ok], axis=1) < near * scale) >= share:
            return True
    if a.source is not None and a.source == b.source and contained(a.box, b.box) > 0.5:
        return True
    return iou(a.box, b.box) > 0.7


def deduplicate(poses: list[Pose], fit: Callable[[Pose], float] | None = None) -> list[Pose]:
    """Keep one pose per body: a track's own crop first, among those the one that best `fit`s
    the track whose crop found it (two crops on one body: the one that followed it, not the
    one that drifted onto it), then the more visible."""
    def key(i: int) -> tuple[bool, float, float]:
        p = poses[i]
        return (p.source is None, fit(p) if fit and p.source is not None else 0.0, -p.score)
    order = sorted(range(len(poses)), key=key)
    kept: list[Pose] = []
    for i in order:
        if all(not same_person(poses[i], k) for k in kept):
            kept.append(poses[i])
    return kept


@dataclass
class Track:
    id: int
    first: int  # frame index of the first pose
    last: int  # frame index of the latest pose
    pixels: np.ndarray  # (33, 2) latest pose
    visibility: np.ndarray  # (33,)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px per frame, of the body
    hits: int = 1
    frames: dict[int, Pose] = field(default_factory=dict)  # frame index → pose
    size: float = 0.0  # the person's typical size: a running mean over whole-body poses

    def __post_init__(self) -> None:
        if not self.size:
            self.size = size(pose_box(self.pixels, self.visibility))

    def predict(self, i: int) -> np.ndarray:
        """Landmarks at frame i by constant velocity (the whole body moves together), for at most
        MAX_COAST frames: further on, a guess would carry the track onto someone else."""
        return self.pixels + self.velocity * min(i - self.last, MAX_COAST)

    def predicted_box(self, i: int) -> tuple[float, float, float, float]:
        return pose_box(self.predict(i), self.visibility)

    def update(self, i: int, pose: Pose) -> None:
        gap = max(i - self.last, 1)
        both = (self.visibility > VISIBLE) & (pose.visibility > VISIBLE)
        if both.sum() >= 3:
            step = np.median(pose.pixels[both] - self.pixels[both], axis=0) / gap
            # Smoothed: one noisy frame should not throw the prediction.
            v = step if self.hits == 1 else 0.5 * self.velocity + 0.5 * step
            # A body moves at most MAX_SPEED of its size per frame; more is a pose that jumped.
            limit = MAX_SPEED * self.size
            speed = float(np.linalg.norm(v))
            self.velocity = v * (limit / speed) if speed > limit else v
        self.pixels, self.visibility, self.last = pose.pixels.copy(), pose.visibility.copy(), i
        if (pose.visibility > VISIBLE).sum() >= 12:  # a partial pose's box says little of the size
            self.size = 0.8 * self.size + 0.2 * size(pose.box)
        self.hits += 1
        self.frames[i] = pose


class Tracker:
    """Assigns each frame's poses to tracks; call `step(i, poses)` for frames in increasing order."""

    centre_penalty = 0.3

    def __init__(self, fps: float, max_gap_s: float = 0.5, gate: float = 0.6,
                 iou_weight: float = 0.5, confirm: int = 3) -> None:
        self.confirm = confirm  # poses a new track needs in its first frames to be kept
        self.max_gap = max(1, int(round(max_gap_s * (fps if fps and fps > 0 else 30.0))))
        self.gate = gate
        self.iou_weight = iou_weight
        self.tracks: list[Track] = []  # every track ever started, in order of first appearance

    def live(self, i: int) -> list[Track]:
        """Tracks still able to take a pose at frame i: unseen for at most max_gap frames, and,
        while tentative (fewer than `confirm` poses), seen in every frame since they began."""
        return [t for t in self.tracks
                if i - t.last <= (self.max_gap if t.hits >= self.confirm else 1)]

    def cost(self, track: Track, pose: Pose, i: int) -> float:
        """Keypoint distance plus box overlap. Where the landmarks disagree (a body turning fast,
        a flip) the boxes' centres stand in for them at a fixed penalty, so a keypoint match,
        when there is one, wins; that needs a body of the track's size within reach: 0.5 gate
        plus MAX_SPEED person sizes for each frame unseen after the first."""
        gap, gate, d, reach, overlap = self._measure(track, pose, i)
        if d > gate:
            ratio = size(pose.box) / track.size
            if (reach > 0.5 * gate + MAX_SPEED * (gap - 1) or not 1 / 1.5 < ratio < 1.5
                    or (gap == 1 and overlap < 0.2)):
                return _INFEASIBLE
        return min(d, reach + self.centre_penalty) + self.iou_weight * (1.0 - overlap)

    def reachable(self, track: Track, pose: Pose, i: int) -> bool:
        """Whether `pose` lies within the track's reach at frame i, whatever its size."""
        gap, gate, d, reach, _ = self._measure(track, pose, i)
        return d <= gate or reach <= 0.5 * gate + MAX_SPEED * (gap - 1)

    def _measure(self, track: Track, pose: Pose, i: int) -> tuple[int, float, float, float, float]:
        """Frames unseen, the gate, keypoint distance and box-centre distance (person sizes)
        from the track's prediction, and box overlap."""
        gap = i - track.last
        gate = self.gate * (1.0 + gap / self.max_gap)
        pred = track.predict(i)
        pbox, box = pose_box(pred, track.visibility), pose.box
        scale = track.size
        d = keypoint_distance(pred, track.visibility, pose.pixels, pose.visibility, scale)
        c = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])
        pc = np.array([pbox[0] + pbox[2] / 2, pbox[1] + pbox[3] / 2])
        return gap, gate, d, float(np.linalg.norm(c - pc)) / scale, iou(pbox, box)

    def step(self, i: int, poses: list[Pose]) -> dict[int, Pose]:
        """Assign frame i's poses; returns {track id: pose}. Unassigned poses start new tracks."""
        live = self.live(i)
        out: dict[int, Pose] = {}
        taken: set[int] = set()
        if live and poses:
            cost = np.array([[self.cost(t, p, i) for p in poses] for t in live])
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] < _INFEASIBLE:
                    live[r].update(i, poses[c])
                    out[live[r].id] = poses[c]
                    taken.add(int(c))
        lost = [t for t in live if t.id not in out and i - t.last >= 2]
        self._relink(i, lost, [t for t in live if t not in lost], poses, taken, out)
        boxes = [t.predicted_box(i) for t in self.live(i)]
        for c, pose in enumerate(poses):
            # A new person needs a body (a dozen landmarks) clear of everyone followed (at most
            # 30 % of it inside their boxes),
            # found by the frame-wide search (a track's own crop looks for that track's person).
            if c in taken or pose.source is not None or (pose.visibility > VISIBLE).sum() < 12 or any(
                    contained(pose.box, b) > 0.3 for b in boxes):
                continue
            track = Track(len(self.tracks) + 1, i, i, pose.pixels.copy(), pose.visibility.copy())
            track.frames[i] = pose
            self.tracks.append(track)
            boxes.append(pose.box)
            out[track.id] = pose
        return out

    def _relink(self, i: int, lost: list[Track], others: list[Track], poses: list[Pose],
                taken: set[int], out: dict[int, Pose]) -> None:
        """A second, wider look for tracks unseen for a few frames, among the poses nobody took:
        a person who reappears after a fast move (landing a flip, stepping out from behind
        someone) keeps their ID when no one else can explain the pose (it lies mostly outside
        every other live track's box). Reach: twice the first pass's allowance by the boxes;
        size: within a factor 2.5 (the person may crouch)."""
        elsewhere = [t.predicted_box(i) for t in others]
        free = [c for c in range(len(poses))
                if c not in taken and (poses[c].visibility > VISIBLE).sum() >= 12
                and all(contained(poses[c].box, b) <= 0.5 for b in elsewhere)]
        if not lost or not free:
            return
        cost = np.full((len(lost), len(free)), _INFEASIBLE)
        for r, t in enumerate(lost):
            gap = i - t.last
            pbox = t.predicted_box(i)
            pc = np.array([pbox[0] + pbox[2] / 2, pbox[1] + pbox[3] / 2])
            for k, c in enumerate(free):
                box = poses[c].box
                centre = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])
                reach = float(np.linalg.norm(centre - pc)) / t.size
                ratio = size(box) / t.size
                gate = self.gate * (1.0 + gap / self.max_gap)
                if reach <= 0.5 * gate + 2 * MAX_SPEED * (gap - 1) and 0.4 < ratio < 2.5:
                    cost[r, k] = reach
        rows, cols = linear_sum_assignment(cost)
        for r, k in zip(rows, cols):
            if cost[r, k] < _INFEASIBLE:
                lost[r].update(i, poses[free[k]])
                out[lost[r].id] = poses[free[k]]
                taken.add(free[k])

    def finished(self, min_frames: int = 1, min_size: float = 0.0) -> list[Track]:
        """Confirmed tracks with at least `min_frames` poses whose median size is at least
        `min_size` pixels, renumbered 1, 2, ... by first appearance."""
        kept = [t for t in self.tracks if len(t.frames) >= max(min_frames, self.confirm)
                and np.median([size(p.box) for p in t.frames.values()]) >= min_size]
        kept.sort(key=lambda t: (t.first, t.id))
        for n, t in enumerate(kept, start=1):
            t.id = n
        return kept


class Subject:
    """The one person a single-person run follows. When the body's tracker has lost them, whoever
    its search finds is taken only where the multi-person tracker's cost would give them this
    track (`Tracker.cost`: near where the subject was heading, of their size; the reach grows by
    MAX_SPEED person sizes a frame unseen), the nearest first, and never someone the search has
    been following as another person: a pose beyond the subject's reach starts such a track, and
    a pose that continues one at a lower cost than the subject's is theirs. Without this the
    search took the best detection in the subject's crop: on Sports2D's demo the man, lost
    mid-flip, became the woman walking past, and 38 frames later the man again."""

    def __init__(self, fps: float) -> None:
        self._rules = Tracker(fps)
        self.track: Track | None = None
        self.others: list[Track] = []
        self._torso: dict[int, float] = {}  # frame: torso length (pixels), the last TORSO_S seconds
        self._torso_frames = max(1, int(round(TORSO_S * (fps or 30.0))))

    def seen(self, i: int, pixels: np.ndarray, visibility: np.ndarray) -> None:
        """The subject's landmarks (full-frame pixels) at frame i."""
        if (t := torso_length(pixels, visibility)) is not None:
            self._torso[i] = t
        for old in [k for k in self._torso if k <= i - self._torso_frames]:
            del self._torso[old]
        if self.track is None:
            self.track = Track(1, i, i, pixels.copy(), visibility.copy())
            return
        self.track.update(i, Pose(pixels, visibility))
        self.track.frames.clear()  # only the latest pose is needed: memory stays flat

    def plausible(self, pose: Pose) -> bool:
        """Whether the pose's torso is no longer than TORSO_GROWTH x the subject's longest of the
        last TORSO_S seconds: a segment seen in the image shortens as it turns from the camera
        but cannot grow beyond its length, and the subject's distance barely changes meanwhile.
        On Sports2D's demo, mid-flip in the sun's glare, BlazePose found the man again with a
        torso of 165 px against his 120-130 and stretched him for 5 frames (41 m/s markers); the
        body run's rule of 7 seen leg and trunk points (landmarks.PoseDetector) refuses that
        find too, and --holistic, which cannot choose among candidates, has only this one."""
        t = torso_length(pose.pixels, pose.visibility)
        return t is None or len(self._torso) < 5 or t <= TORSO_GROWTH * max(self._torso.values())

    def search_box(self, i: int) -> tuple[float, float, float, float]:
        """Where a lost subject is looked for at frame i: their predicted box grown on each side by
        half a person size plus how far they can have gone unseen, at most one more (beyond, the
        search's look at the whole frame covers them)."""
        x, y, w, h = self.track.predicted_box(i)
        reach = (0.5 + min(MAX_SPEED * max(i - self.track.last - 1, 0), 1.0)) * self.track.size
        return (x - reach, y - reach, w + 2 * reach, h + 2 * reach)

    def pick(self, i: int, poses: list[Pose]) -> int | None:
        """Which of frame i's `poses` is the subject (None: none of them); the subject must
        have been `seen` before."""
        rules = self._rules
        self.others = [t for t in self.others if i - t.last <= rules.max_gap]
        mine = [rules.cost(self.track, p, i) if self.plausible(p) else _INFEASIBLE for p in poses]
        theirs = [[rules.cost(t, p, i) for t in self.others] for p in poses]
        feasible = [c for c in range(len(poses))
                    if mine[c] < _INFEASIBLE and mine[c] <= min(theirs[c], default=_INFEASIBLE)]
        k = min(feasible, key=lambda c: mine[c]) if feasible else None
        taken: set[int] = set()
        for c, pose in enumerate(poses):
            if c == k:
                continue
            free = [(cost, n) for n, cost in enumerate(theirs[c]) if cost < _INFEASIBLE and n not in taken]
            if free:
                n = min(free)[1]
                taken.add(n)
                self.others[n].update(i, pose)
                self.others[n].frames.clear()
            elif not rules.reachable(self.track, pose, i):
                self.others.append(Track(0, i, i, pose.pixels.copy(), pose.visibility.copy()))
                taken.add(len(self.others) - 1)
        return k
