"""OpenSim scaling and inverse kinematics of the final (augmented) markers with Pose2Sim's model and
setup files (`Pose2Sim/OpenSim_Setup`: Model_Pose2Sim_*.osim, Markers_LSTM.xml,
Scaling_Setup_Pose2Sim_LSTM.xml, IK_Setup_Pose2Sim_withoutHands_LSTM.xml) and `opensim==4.6`.

Scaling is Pose2Sim's `kinematics.perform_scaling`: no static trial; each body's scale factor is
the trimmed mean (middle 50 %) of its marker-pair distances over the frames with hip and knee
flexion below 90°, divided by the same distances on the generic model; the setup's measurement-
based scaling is switched off in favour of these manual scales. Pose2Sim's own function cannot be
imported here (its module needs lxml, statsmodels and filterpy), so the same steps are written with
the standard library's ElementTree and numpy.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import EngineError
from .mot import read_mot
from .trc import read_trc

IK_SETUP = "IK_Setup_Pose2Sim_withoutHands_LSTM.xml"  # the final TRC has no hand markers
SCALING_SETUP = "Scaling_Setup_Pose2Sim_LSTM.xml"
MARKER_SET = "Markers_LSTM.xml"
FULL_MODEL = "Model_Pose2Sim_muscles_flex.osim"
SIMPLE_MODEL = "Model_Pose2Sim_simple.osim"
TRIMMED_EXTREMA_PERCENT = 50
LARGE_HIP_KNEE_ANGLES = 90


def available() -> bool:
    return importlib.util.find_spec("opensim") is not None


def setup_dir() -> Path:
    spec = importlib.util.find_spec("Pose2Sim")
    if spec is None or not spec.submodule_search_locations:
        raise EngineError("pose2sim is not installed: its OpenSim model and setup files are unavailable")
    return Path(next(iter(spec.submodule_search_locations)), "OpenSim_Setup")


def _marker_pairs(measurement: ET.Element) -> list[list[str]]:
    return [p.findtext("markers", "").split() for p in measurement.iter("MarkerPair")]


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    cos = np.sum(u * v, axis=-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def low_flexion_frames(xyz: np.ndarray, names: list[str], limit_deg: float = LARGE_HIP_KNEE_ANGLES,
                       at_least: int = 50) -> np.ndarray:
    """Indices of the frames whose mean hip and knee flexion is below `limit_deg` (else the
    `at_least` least flexed): Pose2Sim.common.best_coords_for_measurements, since segment lengths
    are imprecise in a crouch."""
    p = {n: xyz[:, names.index(n)] for n in ("RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle",
                                              "Hip", "Neck")}
    trunk = p["Neck"] - p["Hip"]
    flex = [180.0 - _angle(p[f"{s}Ankle"] - p[f"{s}Knee"], p[f"{s}Hip"] - p[f"{s}Knee"]) for s in "RL"]
    flex += [_angle(p[f"{s}Hip"] - p[f"{s}Knee"], trunk) for s in "RL"]
    mean = np.mean(np.abs(flex), axis=0)
    frames = np.flatnonzero(mean < limit_deg)
    if len(frames) < at_least:
        frames = np.argsort(np.where(np.isfinite(mean), mean, np.inf), kind="stable")[:at_least]
    return np.sort(frames)


def trimmed_mean(values: np.ndarray, trimmed_extrema_percent: float = TRIMMED_EXTREMA_PERCENT) -> float:
    """Mean of the middle values, as Pose2Sim.common.trimmed_mean (NaNs dropped first)."""
    v = np.sort(values[np.isfinite(values)])
    cut = trimmed_extrema_percent / 100 / 2
    kept = v[int(len(v) * cut):int(len(v) * (1 - cut))]
    return float(np.mean(kept)) if len(kept) else float(np.mean(v)) if len(v) else float("nan")


def segment_scales(scaling_root: ET.Element, model, xyz: np.ndarray, names: list[str]
                   ) -> dict[str, list[float]]:
    """Body name → [sx, sy, sz], as Pose2Sim's dict_segment_ratio with right/left symmetry.

    Pose2Sim.common is not imported for its helpers: importing it switches matplotlib's global
    backend, numpy's print options and adds a root logging handler (unwelcome inside Blender)."""
    xyz = xyz[low_flexion_frames(xyz, names)]
    state = model.initSystem()
    model_markers = model.getMarkerSet()

    def trc_length(a: str, b: str) -> float:
        return trimmed_mean(np.linalg.norm(xyz[:, names.index(a)] - xyz[:, names.index(b)], axis=1))

    def model_length(a: str, b: str) -> float:
        pa = model_markers.get(a).getLocationInGround(state).to_numpy()
        pb = model_markers.get(b).getLocationInGround(state).to_numpy()
        return float(np.linalg.norm(pa - pb))

    per_axis: dict[str, list[float]] = {}
    for measurement in scaling_root.iter("Measurement"):
        pairs = [(a, b) for a, b in _marker_pairs(measurement) if a in names and b in names
                 and model_markers.contains(a) and model_markers.contains(b)]
        ratios = [r for r in (trc_length(a, b) / model_length(a, b) for a, b in pairs) if np.isfinite(r)]
        if not ratios:
            continue
        for body in measurement.iter("BodyScale"):
            for axis in body.findtext("axes", "").split():
                per_axis.setdefault(f"{body.get('name')}_{axis}", []).extend(ratios)
    bodies = sorted({k[:-2] for k in per_axis})
    return {b: [float(np.mean(per_axis.get(f"{b}_{ax}", [1.0]))) for ax in "XYZ"] for b in bodies}


def scale_model(trc_path: Path, out_osim: Path, height_m: float, mass_kg: float,
                simple_model: bool = False) -> dict[str, list[float]]:
    """Write the subject's scaled model to `out_osim`; returns the scale factors used."""
    import opensim

    osim_dir = setup_dir()
    opensim.ModelVisualizer.addDirToGeometrySearchPaths(str(osim_dir / "Geometry"))
    model = opensim.Model(str(osim_dir / (SIMPLE_MODEL if simple_model else FULL_MODEL)))
    model.set_MarkerSet(opensim.MarkerSet(str(osim_dir / MARKER_SET)))
    model.initSystem()
    generic = out_osim.with_name(out_osim.stem + "_generic.osim")
    model.printToXML(str(generic))

    tree = ET.parse(osim_dir / SCALING_SETUP)
    tool = tree.getroot()[0]
    xyz, names, _ = read_trc(trc_path)
    scales = segment_scales(tool, model, xyz, names)
    tool.find("mass").text = str(mass_kg)
    tool.find("height").text = str(height_m)
    tool.find("GenericModelMaker/model_file").text = str(generic)
    scaler = tool.find("ModelScaler")
    scaler.find("scaling_order").text = " manualScale"
    for apply in scaler.iterfind("MeasurementSet/objects/Measurement/apply"):
        apply.text = "false"
    scale_set = scaler.find("ScaleSet/objects")
    for old in list(scale_set):
        scale_set.remove(old)
    for body, s in scales.items():
        el = ET.SubElement(scale_set, "Scale")
        ET.SubElement(el, "scales").text = " ".join(f"{v:.6f}" for v in s)
        ET.SubElement(el, "segment").text = body
        ET.SubElement(el, "apply").text = "true"
    for marker_file in tool.iter("marker_file"):
        marker_file.text = "Unassigned"
    scaler.find("output_model_file").text = str(out_osim)
    setup = out_osim.with_name(out_osim.stem + "_scaling_setup.xml")
    tree.write(setup, encoding="utf-8", xml_declaration=True)
    # ScaleTool.run() reports success inconsistently across bindings: check for its output instead.
    opensim.ScaleTool(str(setup)).run()
    if not out_osim.exists():
        raise RuntimeError(f"OpenSim scaling wrote no model; see {out_osim.parent}")
    setup.unlink()
    generic.unlink()
    return scales


def inverse_kinematics(trc_path: Path, osim: Path, out_mot: Path, t0: float, t1: float) -> dict:
    """Run OpenSim IK; returns the marker RMS error per frame and its summary (metres)."""
    import opensim

    tree = ET.parse(setup_dir() / IK_SETUP)
    tool = tree.getroot()[0]
    tool.set("name", out_mot.stem.removesuffix("_ik"))  # names <stem>_ik_marker_errors.sto
    tool.find("results_directory").text = str(out_mot.parent)
    tool.find("model_file").text = str(osim)
    tool.find("time_range").text = f"{t0:.6f} {t1:.6f}"
    tool.find("output_motion_file").text = str(out_mot)
    tool.find("marker_file").text = str(trc_path)
    tool.find("report_errors").text = "true"
    setup = out_mot.with_name(out_mot.stem + "_setup.xml")
    tree.write(setup, encoding="utf-8", xml_declaration=True)
    if not opensim.InverseKinematicsTool(str(setup)).run():
        raise RuntimeError("OpenSim inverse kinematics failed")
    setup.unlink()
    errors = out_mot.with_name(tool.get("name") + "_ik_marker_errors.sto")
    _, cols = read_mot(errors)
    rms = cols["marker_error_RMS"]
    return {"marker_errors_file": errors.name, "rms_per_frame_m": rms,
            "rms_mean_m": float(np.nanmean(rms)), "rms_max_m": float(np.nanmax(rms)),
            "max_marker_error_m": float(np.nanmax(cols["marker_error_max"]))}


@contextmanager
def _stdout_to(path: Path) -> Iterator[None]:
    """Send file descriptor 1 to `path` for a while: OpenSim's scaling prints a model summary with
    std::cout, past its logger, onto the command line's output. Kept only if something was printed."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(path, "wb") as fh:
            os.dup2(fh.fileno(), 1)
            try:
                yield
            finally:
                os.dup2(saved, 1)
    finally:
        os.close(saved)
        if path.exists() and path.stat().st_size == 0:
            path.unlink()


def run_opensim(trc_path: Path, out_dir: Path, stem: str, height_m: float, mass_kg: float,
                t0: float, t1: float, simple_model: bool = False, log_level: str = "Warn") -> dict:
    """Scale the model to the subject and run IK: `out_dir/<stem>_scaled.osim`, `<stem>_ik.mot`."""
    import opensim

    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / f"{stem}_opensim.log"
    # Log to our folder only: OpenSim otherwise appends to ./opensim.log wherever it is run from,
    # and its console chatter would break the progress bar.
    opensim.Logger.removeFileSink()
    opensim.Logger.setLevelString(log_level)
    opensim.Logger.addFileSink(str(log))
    try:
        with _stdout_to(out_dir / f"{stem}_opensim_stdout.txt"):
            osim = out_dir / f"{stem}_scaled.osim"
            scales = scale_model(trc_path, osim, height_m, mass_kg, simple_model)
            ik = inverse_kinematics(trc_path, osim, out_dir / f"{stem}_ik.mot", t0, t1)
    finally:
        opensim.Logger.removeFileSink()
    return {"scaled_model": osim.name, "ik_mot": f"{stem}_ik.mot", "log": log.name,
            "model": SIMPLE_MODEL if simple_model else FULL_MODEL, "scales": scales, **ik}
