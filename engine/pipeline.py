"""One run of the engine: video → landmarks → metric markers → files, with progress and cancel."""

from __future__ import annotations

import json
import platform
import threading
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import numpy as np

from . import __version__, multiview, result
from .biomech import run_biomechanics
from .biomech import warm_up as warm_up_biomechanics
from .camera import Intrinsics
from .config import RunConfig
from .coords import camera_to_opensim
from .detection import detect
from .errors import Cancelled, EngineError
from .face import expressions, write_face_csv
from .hands import hands_camera
from .joint_sets import POSE2SIM_22
from .landmarks import LandmarkTrack
from .landmarks_csv import write_landmarks_csv
from .left_right import repair_mirrored
from .lifter import load_lifter
from .mesh_stage import run_mesh
from .mesh_stage import warm_up as warm_up_mesh
from .outputs import check_writable, clean_stale, staged_folder
from .pose2sim_markers import mediapipe_to_pose2sim
from .progress import Progress, ProgressFn, stages
from .quality import quality_flags, summarise, write_quality_csv
from .reconstruct import Reconstruction, reconstruct
from .trc import write_trc
from .video import VideoInfo, probe, resolve_range

_PACKAGES = ("numpy", "scipy", "opencv-contrib-python", "ai-edge-litert", "mediapipe", "pandas")


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
    # A multi-person run (--people): each person's own result; out_dir and record are then the
    # top folder's and the other fields the first person's.
    people: list[RunResult] = field(default_factory=list, repr=False)


@dataclass
class Person:
    """One tracked person's landmarks, handed to `run` instead of its own detection (engine.people)."""

    folder: str  # the result subfolder's name, e.g. person_1
    track: LandmarkTrack
    subject: dict  # what run.json records about whom this is
    timing: dict  # video.frame_timing of the tracking pass


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "humanpose3d": __version__}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def run(cfg: RunConfig, progress: ProgressFn | None = None,
        cancel: threading.Event | None = None, person: Person | None = None) -> RunResult:
    """Run the pipeline for `cfg`; the output folder appears only when every file is written.
    With --people other than `largest`, engine.people_run tracks everyone and calls this once per
    person with `person` (its landmarks and folder name) into OUT/<stem>/person_<ID>/."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread: the engine's matrices are tiny (the fit's blocks, matplotlib's 3x3
    # transforms), and numpy's OpenBLAS helper thread otherwise spins between them: 1.5 s of a core
    # during the figures, and the 1-minute clip's reconstruction took 4.4 s instead of 3.3 s.
    with threadpool_limits(limits=1, user_api="blas"):
        return _run(cfg, progress, cancel, person)


def _run(cfg: RunConfig, progress: ProgressFn | None, cancel: threading.Event | None,
         person: Person | None) -> RunResult:
    cfg.check_runtime()  # this Python has what the run needs (the config's values are checked)
    if cfg.people != "largest" and person is None:
        from .people_run import run_people

        return run_people(cfg, progress, cancel)
    bar = Progress(progress, stages(cfg))
    cancel = cancel or threading.Event()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    final = cfg.out_dir / (person.folder if person is not None else cfg.stem)
    clean_stale(cfg.out_dir)  # first: it may put back a result that a killed --force run moved aside
    check_writable(cfg.out_dir, final, cfg.force)
    views = multiview.setup(cfg) if cfg.multiview else None
    info = views.infos[0] if views else probe(cfg.video)
    start, stop = resolve_range(info, cfg.frames)
    k = (multiview.intrinsics(views.cameras[0]) if views
         else Intrinsics.from_settings(info.width, info.height, cfg.fov_deg, cfg.focal_px))
    lifter = load_lifter(cfg.lifter, input_layout=cfg.lifter_layout) if cfg.lifter else None
    timings["probe_s"] = time.perf_counter() - t0
    bar.stage("pose")(0.0, "reading video")
    warm_up_biomechanics(figures=cfg.joint_angles and cfg.angle_plots)  # while MediaPipe runs
    if cfg.mesh:
        warm_up_mesh()  # loads Anny while MediaPipe runs

    t = time.perf_counter()
    mv = None
    if person is not None:
        track, subject, timing = person.track, person.subject, person.timing
    elif views:
        mv = multiview.detect_views(cfg, views, start, stop, bar.stage("pose"), cancel)
        track, timing = mv.tracks[0], mv.timing
        subject = {"method": "per-camera", "cameras": len(mv.cameras)}
    else:
        track, subject, timing = detect(cfg, info, start, stop, bar.stage("pose"), cancel)
    if timing["variable_frame_rate"]:
        info = replace(info, fps=timing["mean_fps"])
    timings["pose_s"] = time.perf_counter() - t
    detection_rate = float(track.detected.mean()) if track.frames else 0.0
    if not track.detected.any():
        raise EngineError(f"no person detected in {track.frames} frames of {cfg.video.name}")

    bar.stage("reconstruct")(0.0, "reconstructing 3D")
    t = time.perf_counter()
    height: dict = {"source": "--height", "m": cfg.height_m}
    if mv is not None:
        recon = multiview.reconstruct_views(mv, cfg, info.fps)
        mirrored = mv.swapped.any(axis=(0, 2))
        height["measured_m"] = round(multiview.measured_height(recon), 3)
        if cfg.height_m is None:  # the LSTM, OpenSim and the mesh take the measured stature
            height["source"], height["m"] = "triangulated", height["measured_m"]
            cfg = replace(cfg, height_m=height["m"])
    else:
        repaired, mirrored = repair_mirrored(track)
        lifted = None
        if lifter is not None:
            lifted = lifter.lift(repaired.pixels, info.width, info.height, layout="mediapipe33")
        recon = reconstruct(repaired, k, cfg, info.fps, lifted=lifted)
    markers_22 = mediapipe_to_pose2sim(recon.markers)
    timings["reconstruct_s"] = time.perf_counter() - t
    if cancel.is_set():
        raise Cancelled()

    bar.stage("reconstruct")(0.5, "writing files")
    t = time.perf_counter()
    stem = cfg.stem
    names = result.core_files(stem)
    with staged_folder(final, force=cfg.force) as tmp:
        write_landmarks_csv(tmp / names["landmarks_csv"], track, start, info.fps)
        flags = quality_flags(track, recon, mirrored)
        if mv is not None:  # fewer than two cameras agreed, though at least one saw the person
            seen = np.any([t.detected for t in mv.tracks], axis=0)
            flags["low_confidence"] = seen[:, None] & ~recon.confident & ~flags["missing"]
        write_quality_csv(tmp / names["quality_csv"], flags, recon.reprojection_px, start, info.fps)
        write_trc(tmp / names["initial_trc"], camera_to_opensim(markers_22), POSE2SIM_22, info.fps,
                  first_frame=start)
        found_hands = hands_camera(multiview.first_view_hands(mv) if mv is not None else repaired.hands_world,
                                   recon.markers, info.fps, cfg.cutoff_hz)
        hands = found_hands[0] if found_hands is not None else None
        face = expressions(track.face, info.fps)  # None without --holistic
        if face is not None:  # jaw and eyelids, for a character (engine/face.py)
            names["face_csv"] = f"{stem}_face.csv"
            write_face_csv(tmp / names["face_csv"], face, start, info.fps)
        result.write_markers(
            tmp / names["markers_npz"], markers_33=recon.markers, markers_22=markers_22, pixels=track.pixels,
            visibility=track.visibility, detected=track.detected, K=k.K, fps=info.fps, first_frame=start,
            bone_lengths=recon.bone_lengths, image_size=(info.width, info.height),
            video=cfg.video.resolve(), views=mv.views() if mv else None, hands=hands,
            face=face)
        if cfg.scail:  # SMPL-24 poses in NLF's format + SCAIL's 3D pose render, into scail/
            from .scail import run_scail
            names["scail_dir"] = "scail"
            scail_record = run_scail(recon.markers, k, info.fps, stem, tmp / "scail", track.hands,
                                     track.face, bar.stage("scail"), cancel, first_frame=start,
                                     size=cfg.scail_size)
        timings["write_s"] = time.perf_counter() - t
        t = time.perf_counter()  # LSTM augmentation, ISB angles, TRC/C3D/CSV/MOT/PNG, OpenSim
        uncertain = flags["low_confidence"] | flags["interpolated"] | flags["mirrored"] | flags["missing"]
        biomech = run_biomechanics(camera_to_opensim(markers_22), info.fps, start, cfg, tmp,
                                   bar.stage("biomechanics"), cancel,
                                   uncertain=uncertain, quality=summarise(flags, recon.reprojection_px),
                                   up=camera_to_opensim(mv.up) if mv is not None else None)
        names |= biomech.pop("files")
        timings["biomechanics_s"] = time.perf_counter() - t
        if cfg.mesh:  # Anny fitted to every frame, in SAM 3D Body's format, into mesh/
            t = time.perf_counter()
            names["mesh_dir"] = "mesh"
            mesh_record = run_mesh(recon.markers, track.pixels, track.visibility, k, cfg, tmp / "mesh",
                                   bar.stage("mesh"), cancel, first_frame=start,
                                   fps=info.fps)
            timings["mesh_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - t0
        # To the end: the declared count (None when the container has none; read may exceed it).
        requested = stop - start if stop is not None else (info.frame_count - start or None)
        record = {
            "completed": True,
            "engine_version": __version__,
            "config": cfg.to_json(),
            "versions": package_versions(),
            "video": info.to_json() | timing,
            "frames": {"first": start, "requested": requested, "read": track.frames,
                       "detected": int(track.detected.sum())},
            "detection_rate": round(detection_rate, 4),
            "subject": subject,
            "height": height,
            "mirrored_frames": int(mirrored.sum()),
            "intrinsics": k.to_json(),
            "scale_mediapipe_to_m": recon.scale,
            "quality": summarise(flags, recon.reprojection_px),
            "timings": {key: round(v, 3) for key, v in timings.items()},
            "fps_pose": round(track.frames / max(timings["pose_s"], 1e-9), 2),
            "outputs": sorted(names.values()),
            "biomechanics": biomech,
        }
        if mv is not None:
            record["views"] = mv.record()
        if found_hands is not None:  # frames with each hand (the markers npz has them: engine/hands.py)
            found = np.isfinite(hands).all(axis=(2, 3)).sum(axis=0)
            record["hands"] = {"left_frames": int(found[0]), "right_frames": int(found[1]),
                               "mirrored_back": {"left": found_hands[1][0], "right": found_hands[1][1]}}
        if face is not None:
            kept = np.isfinite(face).all(axis=1)
            record["face"] = {"frames": int(kept.sum()),
                              "jaw_open_deg_max": round(float(np.degrees(np.nanmax(face[:, 0]))), 2),
                              "blink_frames": {"left": int((face[kept, 1] > 0.5).sum()),
                                               "right": int((face[kept, 2] > 0.5).sum())}}
        if cfg.scail:
            record["scail"] = scail_record
        if cfg.mesh:
            record["mesh"] = mesh_record
        (tmp / names["run_json"]).write_text(json.dumps(record, indent=2))
    bar.done()
    return RunResult(final, {k_: final / v for k_, v in names.items()}, record, track, recon, k,
                     info, start, markers_22)
