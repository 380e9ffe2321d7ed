"""The biomechanics stage: level the markers, augment them with the LSTM, compute ISB joint angles,
write TRC/C3D/CSV/MOT/PNG, and optionally scale an OpenSim model and run inverse kinematics.

Everything is written into the run's staged folder `out`, so nothing half-written ever appears.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from .angle_limits import enforce_limits
from .augment import augment, execution_providers
from .c3d_io import write_c3d
from .cleaning import runs
from .config import RunConfig
from .errors import Cancelled
from .isb_angles import ALL_GROUPS, joint_angles
from .joint_sets import FINAL_65, MP
from .levelling import UP, estimate_up, floor_offset, level_rotation
from .mot import write_mot
from .number_rows import text_rows
from .progress import ProgressFn
from .result import final_files
from .shoulder_gimbal import near_gimbal_lock
from .trc import write_trc

# (IK coordinate, ISB column) pairs compared in the side-by-side figure; the model's hip and knee
# coordinates are flexion-positive like ours.
IK_VS_ISB = (("hip_flexion_r", "hip_r_flex_deg"), ("hip_flexion_l", "hip_l_flex_deg"),
             ("knee_angle_r", "knee_r_flex_deg"), ("knee_angle_l", "knee_l_flex_deg"))


def final_markers(markers_22: np.ndarray, height_m: float, mass_kg: float, cycles: int = 1,
                  up: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """(T, 22, 3) Y-up markers → (T, 65, 3) FINAL_65 markers, levelled (Y = the vertical: `up` when
    known, as a calibration knows it, else estimated from the legs) with the feet on y = 0.01 m,
    and the transform applied (p_final = R p + [0, -floor, 0])."""
    source = "estimated" if up is None else "given"
    up = estimate_up(markers_22) if up is None else np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    rot = level_rotation(up)
    level22 = markers_22 @ rot.T
    final = np.concatenate([level22, augment(level22, height_m, mass_kg, cycles=cycles)], axis=1)
    floor = floor_offset(final, FINAL_65)
    final[..., 1] -= floor
    tilt = float(np.degrees(np.arccos(np.clip(up @ UP, -1.0, 1.0))))
    return final, {"rotation": np.round(rot, 6).tolist(), "floor_offset_m": round(floor, 6),
                   "tilt_corrected_deg": round(tilt, 2), "vertical": source}


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Comma-separated columns with a header row, 6 decimals, empty cells where unknown (pandas is
    not used: importing it would cost more than the whole stage)."""
    data = np.column_stack(list(columns.values()))
    with open(path, "w", newline="\n") as fh:
        fh.write(",".join(columns) + "\n")
        for row in text_rows(data, ","):
            fh.write(row + "\n")


# The landmarks each joint's angles rest on, per side: their uncertain frames are shaded in plots.
_JOINT_LANDMARKS = {
    "pelvis": {"": ("left_hip", "right_hip")},
    "trunk": {"": ("left_hip", "right_hip", "left_shoulder", "right_shoulder")},
    **{joint: {s: tuple(f"{side}_{n}" for n in names) for s, side in (("r", "right"), ("l", "left"))}
       for joint, names in (("hip", ("hip", "knee")), ("knee", ("hip", "knee", "ankle")),
                            ("ankle", ("knee", "ankle", "heel", "foot_index")),
                            ("shoulder", ("shoulder", "elbow")), ("humerothoracic", ("shoulder", "elbow")),
                            ("elbow", ("shoulder", "elbow", "wrist")))},
}


def uncertain_by_joint(uncertain: np.ndarray | None) -> dict[str, dict[str, np.ndarray]]:
    """(T, 33) uncertain landmarks (quality report) → {joint: {side: (T,) any of its landmarks}}."""
    if uncertain is None:
        return {}
    return {joint: {side: uncertain[:, [MP[n] for n in names]].any(axis=1) for side, names in sides.items()}
            for joint, sides in _JOINT_LANDMARKS.items()}


def _write_angles(out: Path, stem: str, time_s: np.ndarray, angles: dict[str, dict[str, np.ndarray]],
                  plots: bool, uncertain: np.ndarray | None = None, subject: dict | None = None,
                  quality: dict | None = None, dropped: dict[str, np.ndarray] | None = None,
                  cancel: threading.Event | None = None, svg: bool = False) -> tuple[dict[str, str], int]:
    """The angle files; and how many processes drew the figures (0: none asked for)."""
    folder = out / "joint_angles"
    folder.mkdir(exist_ok=True)
    files: dict[str, str] = {}
    for group in ALL_GROUPS:
        rel = f"joint_angles/{stem}_{group}.csv"
        write_csv(out / rel, {"time_s": time_s, **angles[group]})
        files[f"angles_{group}_csv"] = rel
    rel = f"joint_angles/{stem}_joint_angles.mot"
    write_mot(out / rel, time_s, {k: v for g in ALL_GROUPS for k, v in angles[g].items()},
              name=f"{stem}_angles")
    files["angles_mot"] = rel
    if plots:
        from .angle_plots import JOINTS, png_name
        from .figure_worker import draw_shared

        shade = uncertain_by_joint(uncertain)
        for group, mask in (dropped or {}).items():  # beyond anatomical limits: refilled, so shaded
            joint, side = group.rsplit("_", 1)
            sides = shade.setdefault(joint, {})
            sides[side] = sides.get(side, np.zeros_like(mask)) | mask
        joints = [j for j, groups in JOINTS.items() if groups[0] in angles]
        common = {"folder": folder, "stem": stem, "time_s": time_s, "angles": angles,
                  "title": f"{stem}: joint angles (ISB)", "uncertain": shade}
        joint_jobs = {**common, "svg": svg}
        rel = f"{stem}_report.pdf"
        report = {"path": out / rel, "stem": stem, "time_s": time_s, "angles": angles,
                  "subject": {k: str(v) for k, v in (subject or {}).items()},
                  "quality": {k: str(v) for k, v in (quality or {}).items()}, "uncertain": shade}
        # Shares of about equal time (benchmarks/throughput.py): the report costs about two joints,
        # the overview three (five joints and the overview in one share took 2.7 s on cam01, longer
        # than the other).
        processes = draw_shared(here=[("joints", {**joint_jobs, "joints": joints[:4]}), ("overview", common)],
                                there=[("joints", {**joint_jobs, "joints": joints[4:]}), ("report", report)],
                                cancel=cancel)
        files |= {f"angles_{j}_png": f"joint_angles/{png_name(stem, j)}" for j in [*joints, "all"]}
        if svg:
            files |= {f"angles_{j}_svg": f"joint_angles/{png_name(stem, j)[:-4]}.svg" for j in joints}
        files["report_pdf"] = rel
        return files, processes
    return files, 0


def _ik_vs_isb(out: Path, stem: str, time_s: np.ndarray, ik_mot: Path,
               angles: dict[str, dict[str, np.ndarray]] | None) -> tuple[dict, dict[str, str]]:
    """RMS difference of IK hip/knee flexion vs the ISB angles, and a side-by-side PNG."""
    if angles is None:
        return {}, {}
    from .angle_plots import plot_comparison
    from .mot import read_mot

    t_ik, ik = read_mot(ik_mot)
    flat = {k: v for g in ALL_GROUPS for k, v in angles[g].items()}
    stats, panels = {}, {}
    for coord, col in IK_VS_ISB:
        ours = np.interp(t_ik, time_s, flat[col], left=np.nan, right=np.nan)
        stats[f"{coord}_vs_isb_rms_deg"] = round(float(np.sqrt(np.nanmean((ik[coord] - ours) ** 2))), 2)
        panels[coord] = {"OpenSim IK": ik[coord], f"ISB {col[:-4]}": ours}
    rel = f"opensim/{stem}_ik_vs_isb.png"
    plot_comparison(out / rel, t_ik, panels, f"{stem}: OpenSim IK vs ISB flexion")
    return stats, {"ik_vs_isb_png": rel}


def _gimbal_spans(angles: dict[str, dict[str, np.ndarray]], time_s: np.ndarray) -> dict:
    """{shoulder group: {"frames": n, "spans_s": [[first, last], ...]}}: where its Z-X-Y flexion
    and rotation are unreliable (engine/shoulder_gimbal.py), for scripts that read the CSV."""
    out = {}
    for group in ALL_GROUPS:  # the rule says which groups it concerns
        near = near_gimbal_lock(angles, group)
        if near is not None:
            out[group] = {"frames": int(near.sum()), "spans_s": [
                [round(float(time_s[a]), 4), round(float(time_s[b - 1]), 4)] for a, b in runs(near)]}
    return out


_warm: threading.Thread | None = None


def warm_up(figures: bool = True) -> None:
    """Start loading the ONNX sessions (~0.1 s) in a background thread, to overlap with pose
    detection; for `figures`, also the helper process that draws part of them, which loads
    matplotlib with its backends and fonts meanwhile (~1 s). This process warms matplotlib up
    itself only where no helper can start: beside a helper it slowed cam01's pose stage from 4.0
    to 5.0 s (its imports and drawing hold the GIL between the pose stage's frames) and the figures
    gained nothing from it (README, Benchmarks). The stage joins the thread before its first use."""
    global _warm
    from .figure_worker import prepare

    # the second process that draws part of the figures loads matplotlib meanwhile
    figures_here = figures and not prepare()

    def work() -> None:
        try:
            from .augment import _model

            _model("lower")
            _model("upper")
            if figures_here:
                from .angle_plots import warm_up as warm_up_figures

                warm_up_figures()
        except Exception:  # noqa: BLE001 - only a head start: the stage itself reports real errors
            pass

    if _warm is None or not _warm.is_alive():
        # Not a daemon: interpreter exit (e.g. after a bad-input error) must wait for it, since
        # killing a thread inside onnxruntime's session set-up aborts the process.
        _warm = threading.Thread(target=work, name="hp3d-biomech-warm-up", daemon=False)
        _warm.start()


def run_biomechanics(markers_22: np.ndarray, fps: float, first_frame: int, cfg: RunConfig, out: Path,
                     progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                     uncertain: np.ndarray | None = None,
                     quality: dict | None = None, up: np.ndarray | None = None) -> dict:
    """The stage: (T, 22, 3) POSE2SIM_22 markers in the TRC frame (Y up, metres) → files in `out`.
    `uncertain` (T, 33) and `quality` (the quality report's mask and summary) go into the plots and
    the PDF report; `up`: the true vertical in the markers' frame when known (a calibration's).

    Returns the run.json record of the stage, with `files`: {key: path relative to `out`}."""
    progress = progress or (lambda f, m: None)
    cancel = cancel or threading.Event()
    def step(frac: float, msg: str) -> None:
        if cancel.is_set():
            raise Cancelled()
        progress(frac, msg)

    stem = cfg.stem
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(key: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[key] = round(now - clock, 4)
        clock = now

    step(0.0, "augmenting markers")
    if _warm is not None:
        _warm.join()
    final, level = final_markers(markers_22, cfg.height_m, cfg.mass_kg, cfg.augmentation_cycles, up=up)
    lap("augment_s")
    time_s = (first_frame + np.arange(final.shape[0])) / fps
    files = final_files(stem)
    write_trc(out / files["final_trc"], final, FINAL_65, fps, first_frame=first_frame)
    write_c3d(out / files["final_c3d"], final, FINAL_65, fps, first_frame=first_frame)
    lap("marker_files_s")
    record: dict = {"markers": len(FINAL_65), "augmentation_cycles": cfg.augmentation_cycles,
                    "onnx_providers": execution_providers()[:1], "level": level,
                    "augmented_frames": int(np.isfinite(final[:, len(FINAL_65) - 1, 0]).sum())}

    angles = None
    if cfg.joint_angles:
        step(0.3, "joint angles")
        angles = joint_angles({n: final[:, k] for k, n in enumerate(FINAL_65)})
        angles, dropped = enforce_limits(angles, int(round(cfg.max_gap_s * fps)))
        record["implausible_angle_frames"] = {g: int(m.sum()) for g, m in dropped.items()}
        record["near_gimbal_lock"] = _gimbal_spans(angles, time_s)
        lap("angles_s")
        subject = {"video": cfg.video.name, "height (m)": cfg.height_m, "mass (kg)": cfg.mass_kg,
                   "frames": f"{len(time_s)} from video frame {first_frame} at {fps:g} fps",
                   "pose model": cfg.pose_model, "camera": f"focal {cfg.focal_px:g} px" if cfg.focal_px
                   else f"field of view {cfg.fov_deg:g} deg", "low-pass": f"{cfg.cutoff_hz:g} Hz",
                   "angles": "ISB; shoulder Z-X-Y and humerothoracic Y-X-Y"}
        written, record["figure_processes"] = _write_angles(out, stem, time_s, angles, cfg.angle_plots,
                                                            uncertain, subject, quality, dropped, cancel,
                                                            svg=cfg.angle_svg)
        files |= written
        if cancel.is_set():  # the helper's share of the figures was dropped
            raise Cancelled()
        lap("angle_files_s")
        record["angle_groups"] = list(ALL_GROUPS)

    if cfg.opensim:
        step(0.6, "OpenSim scaling and IK")
        from .opensim_ik import run_opensim

        os_dir = out / "opensim"
        ok = np.isfinite(final).all(axis=(1, 2))
        t_ok = time_s[ok] if ok.any() else time_s
        ik = run_opensim(out / files["final_trc"], os_dir, stem, cfg.height_m, cfg.mass_kg,
                         float(t_ok[0]), float(t_ok[-1]))
        rms = ik.pop("rms_per_frame_m")
        for key in ("scaled_model", "ik_mot", "log", "marker_errors_file"):
            files[f"opensim_{key}"] = f"opensim/{ik.pop(key)}"
        stats, more = _ik_vs_isb(out, stem, time_s, out / files["opensim_ik_mot"], angles)
        files |= more
        record["opensim"] = {**ik, "ik_frames": int(len(rms)), **stats}
        lap("opensim_s")
    record["timings"] = timings
    step(1.0, "biomechanics written")
    record["files"] = files
    return record
