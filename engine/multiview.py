"""The calibrated multi-camera mode: MediaPipe on every view, synchronisation, robust
triangulation, then the same cleaning as one camera, into the first camera's frame.

The engine's 3D frame is the first camera's (OpenCV axes, metres), so every writer, the levelling
and the Blender scene work unchanged; the other cameras are kept relative to it (calibration.
relative_to) for the scene and the record.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .calibration import Camera, fit_to_video, match_videos, read_calibration, relative_to
from .camera import Intrinsics, project, reprojection_error
from .cleaning import runs
from .config import RunConfig
from .contacts import stationary_feet
from .detection import detect
from .errors import Cancelled, EngineError
from .joint_sets import MP
from .landmarks import LandmarkTrack
from .progress import ProgressFn
from .reconstruct import Reconstruction, clean
from .result import View
from .scale import pose2sim_height
from .sync import find_offset
from .triangulation import repair_and_triangulate
from .video import VideoInfo, probe

_MAX_SYNC_S = 2.0  # offsets searched from motion: ± this many seconds
_FPS_TOL = 0.01  # relative frame-rate difference that still counts as the same rate


@dataclass
class ViewSetup:
    cameras: list[Camera]  # calibration world, fitted to the decoded videos
    infos: list[VideoInfo]


@dataclass
class MultiView:
    cameras: list[Camera]  # relative to the first camera (engine frame)
    infos: list[VideoInfo]
    offsets: list[int]  # result frame i is video frame first + offsets[c] + i of camera c
    tracks: list[LandmarkTrack]  # per camera, aligned to the first camera's frames
    swapped: np.ndarray  # (C, F, 2) upper body / legs relabelled left↔right
    used: np.ndarray  # (C, F, 33) a view took part in a joint's triangulation
    reproj_px: np.ndarray  # (C, F, 33) NaN where the view was not used
    world: np.ndarray  # (F, 33, 3) triangulated, engine frame, NaN where < 2 views agree
    world_R0: np.ndarray  # (3, 3) calibration world → engine frame rotation
    sync: list[dict]  # what the motion-based synchronisation measured (empty with --sync-offsets)
    timing: dict

    @property
    def up(self) -> np.ndarray:
        """The calibration's vertical (world +Z, Pose2Sim's convention) in the engine frame."""
        return self.world_R0[:, 2]

    def views(self) -> list[View]:
        """The cameras as the result folder keeps them (x_c = R x + t from the engine frame)."""
        return [View(c.name, c.K, c.R, c.t, c.size, i.path.resolve(), int(o))
                for c, i, o in zip(self.cameras, self.infos, self.offsets)]

    def record(self) -> list[dict]:
        """Per camera, for run.json: where it is, how it was synchronised and how much it saw."""
        out = []
        for c, (cam, info, off, trk) in enumerate(zip(self.cameras, self.infos, self.offsets, self.tracks)):
            det = trk.detected
            gaps = runs(~det)
            out.append({"name": cam.name, "video": str(info.path.resolve()), "offset": int(off),
                        "size": list(cam.size), "detection_rate": round(float(det.mean()), 4),
                        "used_share": round(float(self.used[c].mean()), 4),
                        "median_reprojection_px": _round(np.nanmedian(self.reproj_px[c])
                                                         if np.isfinite(self.reproj_px[c]).any() else None),
                        "missing_spans": [[int(a), int(b)] for a, b in gaps],
                        **({"sync": self.sync[c]} if self.sync else {})})
        return out


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 2)


def setup(cfg: RunConfig) -> ViewSetup:
    """Read the calibration and the videos' headers and check they belong together (before any
    detection: a mismatch is one line, at once)."""
    assert cfg.calib is not None
    videos = [cfg.video, *cfg.views]
    infos = [probe(v) for v in videos]
    cams = match_videos(read_calibration(cfg.calib), videos)
    cams = [fit_to_video(c, i.width, i.height, i.path.name) for c, i in zip(cams, infos)]
    for info in infos[1:]:
        if abs(info.fps - infos[0].fps) > _FPS_TOL * infos[0].fps:
            raise EngineError(f"{info.path.name} runs at {info.fps:g} frames/s but {infos[0].path.name} at "
                              f"{infos[0].fps:g}: multi-view videos must share a frame rate")
    return ViewSetup(cams, infos)  # RunConfig has already checked the number of --sync-offsets


def intrinsics(cam: Camera) -> Intrinsics:
    """The engine's pinhole intrinsics of a calibrated camera (distortion is left to the 2D side)."""
    K = cam.K
    return Intrinsics(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), *cam.size)


def detect_views(cfg: RunConfig, views: ViewSetup, start: int, stop: int | None,
                 progress: ProgressFn, cancel: threading.Event) -> MultiView:
    """MediaPipe on every view over the requested frames (shifted by each view's offset), the
    offsets found from motion when not given, and the views triangulated."""
    C = len(views.infos)
    given = list(cfg.sync_offsets) if cfg.sync_offsets is not None else [0] * C
    given = [o - given[0] for o in given]  # relative to the first video
    tracks, timing = [], {}
    for c, (cam, info) in enumerate(zip(views.cameras, views.infos)):
        a = start + given[c]
        b = None if stop is None else stop + given[c]
        if a < 0:  # this view started late: its first frames are missing, nothing is shifted
            a = 0
        track, _, t = detect(cfg, info, a, b,
                             lambda f, m, c=c, n=cam.name: progress((c + f) / C, f"{n}: {m}"), cancel,
                             further_view=c > 0)
        if not track.detected.any():
            raise EngineError(f"camera {cam.name} ({info.path.name}) never sees the person")
        if start + given[c] < 0:  # pad the frames this view lacks at the start
            track = _shifted(track, start + given[c])
        tracks.append(track)
        if c == 0:
            timing = t
    sync: list[dict] = []
    offsets = given
    if cfg.sync_offsets is None:
        max_lag = int(round(_MAX_SYNC_S * views.infos[0].fps))
        sync = [{"offset": 0, "reference": True}]
        offsets = [0]
        for c in range(1, C):
            if cancel.is_set():
                raise Cancelled()
            pair = (views.cameras[0], views.cameras[c])
            lag, rec = find_offset(pair, (tracks[0].pixels, tracks[c].pixels),
                                   (tracks[0].visibility, tracks[c].visibility), max_lag, pair[1].name)
            tracks[c] = _shifted(tracks[c], lag)
            offsets.append(lag)
            sync.append(rec)
    F = tracks[0].frames
    tracks = [tracks[0]] + [_fit_length(t, F) for t in tracks[1:]]
    pts = np.stack([t.pixels for t in tracks]).astype(np.float64)
    vis = np.stack([np.where(t.detected[:, None], t.visibility, 0.0) for t in tracks]).astype(np.float64)
    depth = np.stack([t.depth_rel for t in tracks]).astype(np.float64)
    # A view counts towards a joint's two at visibility 0.5 (triangulation.GOOD_VIS), not at
    # --visibility-min: occluded joints that MediaPipe guesses at 0.3-0.5 cost up to 9 mm PA-MPJPE.
    world, swapped, err, used = repair_and_triangulate(views.cameras, pts, vis, depth=depth)
    world = world @ views.cameras[0].R.T + views.cameras[0].t
    return MultiView(relative_to(views.cameras), views.infos, offsets, tracks, swapped, used, err, world,
                     views.cameras[0].R, sync, timing)


def _shifted(track: LandmarkTrack, lag: int) -> LandmarkTrack:
    """The track re-indexed so that its frame i becomes frame i - lag (lag > 0 drops its first
    frames; lag < 0 pads undetected frames in front)."""
    out = LandmarkTrack(max(track.frames - lag, 1), holistic=track.holistic)
    src = np.arange(out.frames) + lag
    ok = (src >= 0) & (src < track.frames)
    for name in LandmarkTrack._ARRAYS:
        if getattr(track, name) is not None:
            getattr(out, name)[ok] = getattr(track, name)[src[ok]]
    return out


def first_view_hands(mv: MultiView) -> np.ndarray | None:
    """The first camera's --holistic hands in metres (T, 2, 21, 3), left and right as relabelled
    where its upper body was found swapped (Holistic finds each hand from its pose wrist)."""
    hands = mv.tracks[0].hands_world
    if hands is None:
        return None
    swapped = mv.swapped[0, : hands.shape[0], 0]
    out = hands.copy()
    out[swapped] = hands[swapped][:, ::-1]
    return out


def _fit_length(track: LandmarkTrack, frames: int) -> LandmarkTrack:
    if track.frames < frames:
        track.grow(frames)
    elif track.frames > frames:
        track.truncate(frames)
    return track


def reconstruct_views(mv: MultiView, cfg: RunConfig, fps: float) -> Reconstruction:
    """Triangulated landmarks → cleaned metric markers: the single-camera cleaning (gaps, mirroring,
    Butterworth, the subject's bone lengths) without the monocular depth fit, which the views
    replace."""
    world_cam0 = mv.world
    # Joints placed from one good view (triangulation.complete_from_one_view) are kept, but not
    # confident: the quality report flags them low-confidence.
    confident = np.isfinite(world_cam0).all(-1) & (mv.used.sum(0) >= 2)
    if confident.sum() < 10:
        raise EngineError("the cameras never see the person together clearly enough to triangulate "
                          f"(try a lower --visibility-min than {cfg.visibility_min})")
    k0 = intrinsics(mv.cameras[0])
    raw = world_cam0
    planted = np.zeros(confident.shape, bool)
    if cfg.foot_lock:  # no lock to apply here (the views fix the feet); the contacts are reported
        planted = stationary_feet(project(raw, k0), confident, raw[..., 2], k0, fps)
    markers, filled, mirrored, lengths = clean(raw, confident, cfg, fps)
    root = 0.5 * (markers[:, MP["left_hip"]] + markers[:, MP["right_hip"]])
    reproj = reprojection_error(markers, mv.tracks[0].pixels, k0)
    return Reconstruction(markers, raw, confident, filled, mirrored, planted, root, 1.0, lengths, reproj)


def measured_height(recon: Reconstruction) -> float:
    """The subject's standing height from the triangulated markers (Pose2Sim's formula)."""
    h = pose2sim_height(recon.markers, recon.confident)
    if not np.isfinite(h) or not 0.5 <= h <= 2.6:
        raise EngineError(f"the triangulated body is {h:.2f} m tall: check that the calibration's "
                          "translations are in metres")
    return float(h)
