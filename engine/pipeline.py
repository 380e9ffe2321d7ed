"""One run of the engine: video → landmarks → metric markers → files, with progress and cancel."""

from __future__ import annotations

import json
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import numpy as np

from . import __version__
from .biomech import run_biomechanics
from .biomech import warm_up as warm_up_biomechanics
from .camera import Intrinsics
from .config import RunConfig
from .coords import camera_to_opensim
from .errors import Cancelled, EngineError
from .joint_sets import POSE2SIM_22
from .landmarks import LandmarkTrack, PoseDetector
from .landmarks_csv import write_landmarks_csv
from .lifter import load_lifter
from .markers import mediapipe_to_pose2sim
from .mesh import run_mesh
from .mesh import warm_up as warm_up_mesh
from .outputs import check_writable, clean_stale, staged_folder
from .person import SubjectCrop, detect_people, pick_subject
from .quality import quality_flags, summarise, write_quality_csv
from .reconstruct import Reconstruction, reconstruct
from .swaps import repair_mirrored
from .trc import write_trc
from .video import VideoInfo, frame_timing, probe, resolve_range, stream_frames

ProgressFn = Callable[[float, str], None]

# Share of the progress bar each stage gets (detection dominates the run time).
_DETECT_SHARE = 0.9

_PACKAGES = ("numpy", "scipy", "opencv-contrib-python", "mediapipe", "pandas")


@dataclass
class RunResult:
    out_dir: Path
    files: dict[str, Path]
    record: dict
    track: LandmarkTrack
    recon: Reconstruction
    intrinsics: Intrinsics
    video: VideoInfo
    first_frame: int
    markers_22: np.ndarray = field(repr=False)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "humanpose3d": __version__}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _choose_subject(rgb: np.ndarray, cfg: RunConfig, info: VideoInfo) -> tuple[SubjectCrop | None, dict]:
    """Decide whom to follow from the first frame; returns the crop (None: whole frame) and what
    run.json records about the choice."""
    if cfg.roi is not None:
        x, y, w, h = cfg.roi
        if x >= info.width or y >= info.height:
            raise EngineError(f"--roi {x},{y},{w},{h} lies outside the {info.width}x{info.height} frame")
        box = (float(x), float(y), float(min(w, info.width - x)), float(min(h, info.height - y)))
        return SubjectCrop.around(box, info.width, info.height), {"method": "roi", "box": list(box)}
    boxes = detect_people(rgb, model=cfg.pose_model)
    if len(boxes) < 2:
        return None, {"method": "single", "candidates": len(boxes)}
    i = pick_subject(boxes, info.width, info.height)
    return (SubjectCrop.around(boxes[i], info.width, info.height),
            {"method": "largest-central", "candidates": len(boxes), "box": [round(v, 1) for v in boxes[i]]})


def detect(cfg: RunConfig, info: VideoInfo, start: int, stop: int | None,
           progress: ProgressFn, cancel: threading.Event) -> tuple[LandmarkTrack, dict, dict]:
    """Stream frames [start, stop) (stop None: to the end of the stream) through MediaPipe;
    returns the landmark track, the subject record and the frames' timing (video.frame_timing)."""
    expected = (stop if stop is not None else info.frame_count) - start
    # The track grows if the stream outruns its declared count (or has none): nothing is dropped.
    track = LandmarkTrack(expected if expected > 0 else 256, holistic=cfg.holistic)
    subject: dict = {}
    times: list[float] = []
    detector: PoseDetector | None = None
    n = 0
    try:
        for idx, rgb in stream_frames(info, start, stop, cancel=cancel, timestamps=times):
            if cancel.is_set():
                raise Cancelled()
            if detector is None:
                crop, subject = _choose_subject(rgb, cfg, info)
                detector = PoseDetector(holistic=cfg.holistic, crop=crop, model=cfg.pose_model,
                                        fps=info.fps)
            if idx - start >= track.frames:
                track.grow(2 * track.frames)
            detector.process(rgb, track, idx - start)
            n = idx - start + 1
            if n % 5 == 0 or n == expected:
                total = f"/{expected}" if n <= expected else ""
                progress(_DETECT_SHARE * min(n / max(expected, n + 1), 1.0), f"pose {n}{total}")
    finally:
        if detector is not None:
            detector.close()
    if cancel.is_set():
        raise Cancelled()
    if n == 0:
        raise EngineError(f"--frames {start}: starts past the end of the video (no frame {start})"
                          if start else f"video has no decodable frames: {info.path}")
    if n < track.frames:
        track.truncate(n)
    return track, subject, frame_timing(times, info.fps)


def run(cfg: RunConfig, progress: ProgressFn | None = None,
        cancel: threading.Event | None = None) -> RunResult:
    """Run the pipeline for `cfg`; the output folder appears only when every file is written."""
    report = progress or (lambda f, m: None)
    # The mesh fit takes about as long as the rest of the run: the stages before it fill half the bar.
    progress = (lambda f, m: report(0.5 * f, m)) if cfg.mesh else report
    cancel = cancel or threading.Event()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    final = cfg.out_dir / cfg.stem
    clean_stale(cfg.out_dir)  # first: it may put back a result that a killed --force run moved aside
    check_writable(cfg.out_dir, final, cfg.force)
    info = probe(cfg.video)
    start, stop = resolve_range(info, cfg.frames)
    k = Intrinsics.from_settings(info.width, info.height, cfg.fov_deg, cfg.focal_px)
    lifter = load_lifter(cfg.lifter, input_layout=cfg.lifter_layout) if cfg.lifter else None
    timings["probe_s"] = time.perf_counter() - t0
    progress(0.0, "reading video")
    warm_up_biomechanics()  # loads the LSTM while MediaPipe runs
    if cfg.mesh:
        warm_up_mesh()  # loads Anny while MediaPipe runs

    t = time.perf_counter()
    track, subject, timing = detect(cfg, info, start, stop, progress, cancel)
    if timing["variable_frame_rate"]:
        info = replace(info, fps=timing["mean_fps"])
    timings["pose_s"] = time.perf_counter() - t
    detection_rate = float(track.detected.mean()) if track.frames else 0.0
    if not track.detected.any():
        raise EngineError(f"no person detected in {track.frames} frames of {cfg.video.name}")

    progress(_DETECT_SHARE, "reconstructing 3D")
    t = time.perf_counter()
    repaired, mirrored = repair_mirrored(track)
    lifted = None
    if lifter is not None:
        lifted = lifter.lift(repaired.pixels, info.width, info.height, layout="mediapipe33")
    recon = reconstruct(repaired, k, cfg, info.fps, lifted=lifted)
    markers_22 = mediapipe_to_pose2sim(recon.markers)
    timings["reconstruct_s"] = time.perf_counter() - t
    if cancel.is_set():
        raise Cancelled()

    progress(0.95, "writing files")
    t = time.perf_counter()
    stem = cfg.stem
    names = {"landmarks_csv": f"{stem}_raw_landmarks.csv", "initial_trc": f"{stem}_initial.trc",
             "markers_npz": f"{stem}_markers.npz",
             "quality_csv": f"{stem}_quality.csv", "run_json": "run.json"}
    with staged_folder(final, force=cfg.force) as tmp:
        write_landmarks_csv(tmp / names["landmarks_csv"], track, start, info.fps)
        flags = quality_flags(track, recon, mirrored)
        write_quality_csv(tmp / names["quality_csv"], flags, recon.reprojection_px, start, info.fps)
        write_trc(tmp / names["initial_trc"], camera_to_opensim(markers_22), POSE2SIM_22, info.fps,
                  first_frame=start)
        np.savez_compressed(
            tmp / names["markers_npz"], markers_33_camera=recon.markers.astype(np.float32),
            markers_22_camera=markers_22.astype(np.float32), pixels=track.pixels,
            visibility=track.visibility, detected=track.detected, K=k.K, fps=info.fps,
            first_frame=start, bone_lengths=recon.bone_lengths,
            image_size=np.array([info.width, info.height]),
            video_path=str(cfg.video.resolve()))
        if cfg.scail:  # SMPL-24 poses in NLF's format + SCAIL's 3D pose render, into scail/
            from .scail import run_scail
            names["scail_dir"] = "scail"
            scail_record = run_scail(recon.markers, k, info.fps, cfg, tmp / "scail", track.hands, track.face,
                                     lambda f, m: progress(0.95 + 0.04 * f, m), cancel, first_frame=start)
        timings["write_s"] = time.perf_counter() - t
        t = time.perf_counter()  # LSTM augmentation, ISB angles, TRC/C3D/CSV/MOT/PNG, OpenSim
        uncertain = flags["low_confidence"] | flags["interpolated"] | flags["mirrored"] | flags["missing"]
        biomech = run_biomechanics(camera_to_opensim(markers_22), info.fps, start, cfg, tmp, progress,
                                   cancel, span=(0.99 if getattr(cfg, "scail", False) else 0.95, 1.0),
                                   uncertain=uncertain, quality=summarise(flags, recon.reprojection_px))
        names |= biomech.pop("files")
        timings["biomechanics_s"] = time.perf_counter() - t
        if cfg.mesh:  # Anny fitted to every frame, in SAM 3D Body's format, into mesh/
            t = time.perf_counter()
            names["mesh_dir"] = "mesh"
            mesh_record = run_mesh(recon.markers, track.pixels, track.visibility, k, cfg, tmp / "mesh",
                                   lambda f, m: report(0.5 + 0.5 * f, m), cancel, first_frame=start,
                                   fps=info.fps)
            timings["mesh_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - t0
        # To the end: the declared count (None when the container has none; read may exceed it).
        requested = stop - start if stop is not None else (info.frame_count - start or None)
        record = {
            "completed": True,
            "engine_version": __version__,
            "config": cfg.to_json(),
            "versions": _versions(),
            "video": info.to_json() | timing,
            "frames": {"first": start, "requested": requested, "read": track.frames,
                       "detected": int(track.detected.sum())},
            "detection_rate": round(detection_rate, 4),
            "subject": subject,
            "mirrored_frames": int(mirrored.sum()),
            "intrinsics": k.to_json(),
            "scale_mediapipe_to_m": recon.scale,
            "quality": summarise(flags, recon.reprojection_px),
            "timings": {key: round(v, 3) for key, v in timings.items()},
            "fps_pose": round(track.frames / max(timings["pose_s"], 1e-9), 2),
            "outputs": sorted(names.values()),
            "biomechanics": biomech,
        }
        if cfg.scail:
            record["scail"] = scail_record
        if cfg.mesh:
            record["mesh"] = mesh_record
        (tmp / names["run_json"]).write_text(json.dumps(record, indent=2))
    report(1.0, "done")
    return RunResult(final, {k_: final / v for k_, v in names.items()}, record, track, recon, k,
                     info, start, markers_22)
