"""The biomechanics stage inside a real run (frames 0:60 of the Pose2Sim demo, shared with the other
engine tests): final TRC and C3D read back, joint-angle CSV/MOT/PNG, run.json, CLI flags, and
OpenSim scaling + inverse kinematics on the same slice."""

from __future__ import annotations

import importlib.util
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from engine.angle_plots import JOINTS
from engine.coords import camera_to_opensim
from engine.isb_angles import ALL_GROUPS, columns
from engine.joint_sets import FINAL_65, POSE2SIM_22
from engine.mot import read_mot
from engine.shoulder_gimbal import GIMBAL_DEG
from engine.trc import read_trc

pytestmark = pytest.mark.engine_run
HAS_OPENSIM = importlib.util.find_spec("opensim") is not None


@pytest.fixture(scope="module")
def run(cam01_run):
    return cam01_run.result


@pytest.fixture(scope="module")
def final(run) -> tuple[np.ndarray, list[str], float]:
    return read_trc(run.files["final_trc"])


def test_final_trc_has_every_marker_levelled_and_on_the_floor(run, final) -> None:
    markers, names, rate = final
    assert tuple(names) == FINAL_65 and len(names) == 65
    assert rate == pytest.approx(60.0) and markers.shape == (60, 65, 3)
    assert np.isfinite(markers).all()
    rec = run.record["biomechanics"]
    rot = np.array(rec["level"]["rotation"])
    # The 22 video markers are initial.trc's, turned upright and lowered onto the floor.
    initial, _, _ = read_trc(run.files["initial_trc"])
    expected = initial @ rot.T - [0.0, rec["level"]["floor_offset_m"], 0.0]
    np.testing.assert_allclose(markers[:, :22], expected, atol=2e-5)
    assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-5)
    # Upright: the trunk points up; the feet rest near y = 0.
    i = {n: k for k, n in enumerate(FINAL_65)}
    trunk = markers[:, i["Neck"]] - markers[:, i["Hip"]]
    assert np.median(trunk[:, 1] / np.linalg.norm(trunk, axis=1)) > 0.7
    feet = markers[:, [i[n] for n in ("r_calc_study", "L_calc_study", "r_toe_study", "L_toe_study")], 1]
    assert -0.05 < np.percentile(feet.min(axis=1), 2) < 0.05


def test_augmented_markers_are_anatomically_placed(final) -> None:
    markers, names, _ = final
    p = {n: markers[:, k] for k, n in enumerate(names)}
    asis = np.linalg.norm(p["r.ASIS_study"] - p["L.ASIS_study"], axis=1)
    assert 0.15 < np.median(asis) < 0.35  # pelvis width
    knee = np.linalg.norm(p["r_knee_study"] - p["r_mknee_study"], axis=1)
    assert 0.05 < np.median(knee) < 0.15  # knee epicondyle width
    shank = np.linalg.norm(p["r_knee_study"] - p["r_ankle_study"], axis=1)
    assert 0.3 < np.median(shank) < 0.5
    # The right-side markers lie on the subject's right (ASIS-based right direction).
    right = p["r.ASIS_study"] - p["L.ASIS_study"]
    assert np.median(np.sum((p["r_knee_study"] - p["r_mknee_study"]) * right, axis=1)) > 0


def test_c3d_reads_back_with_ezc3d_and_c3d(run, final) -> None:
    import c3d
    import ezc3d

    markers, names, _ = final
    path = run.files["final_c3d"]
    e = ezc3d.c3d(str(path))
    assert e["parameters"]["POINT"]["LABELS"]["value"] == list(FINAL_65)
    assert e["parameters"]["POINT"]["RATE"]["value"][0] == pytest.approx(60.0)
    assert e["parameters"]["POINT"]["UNITS"]["value"] == ["mm"]
    pts = e["data"]["points"][:3].transpose(2, 1, 0) / 1000.0
    np.testing.assert_allclose(pts, markers, atol=1e-5)
    with open(path, "rb") as fh:
        reader = c3d.Reader(fh)
        assert [s.strip() for s in reader.point_labels] == list(FINAL_65)
        frames = [p[:, :3] for _, p, _ in reader.read_frames(copy=True)]
    np.testing.assert_allclose(np.array(frames) / 1000.0, markers, atol=1e-5)


def test_joint_angle_csvs_pngs_and_mot(run) -> None:
    import cv2
    import pandas as pd

    out = run.out_dir
    stem = "cam01"
    all_cols = {}
    for group in ALL_GROUPS:
        df = pd.read_csv(out / "joint_angles" / f"{stem}_{group}.csv")
        assert list(df.columns) == ["time_s", *columns(group)]
        assert len(df) == 60 and np.isfinite(df.to_numpy()).all()
        np.testing.assert_allclose(df["time_s"], np.arange(60) / 60.0, atol=1e-6)
        all_cols |= {c: df[c].to_numpy() for c in columns(group)}
    assert len(all_cols) == 10 * 3 + 2 + 2 * 3  # + the humerothoracic Y-X-Y groups
    for joint in JOINTS:  # one figure per joint, right and left together: PNG and (asked for) SVG
        png = cv2.imread(str(out / "joint_angles" / f"{stem}_{joint}.png"))
        assert png is not None and png.shape[:2] == (900, 1600), joint
        svg = ET.parse(out / "joint_angles" / f"{stem}_{joint}.svg").getroot()
        assert svg.tag.endswith("svg") and "time (s)" in ET.tostring(svg, encoding="unicode")
        assert f"joint_angles/{stem}_{joint}.svg" in run.record["outputs"]
    big = cv2.imread(str(out / "joint_angles" / f"{stem}_all_joint_angles.png"))
    assert big is not None and big.shape[0] > 600
    pdf = (out / f"{stem}_report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1
    # Plausible ranges for a balancing trial: no ±180° jumps anywhere.
    for name, values in all_cols.items():
        assert np.abs(np.diff(values)).max() < 30, name
    assert 0 < np.median(all_cols["knee_r_flex_deg"]) < 100
    t, mot = read_mot(out / "joint_angles" / f"{stem}_joint_angles.mot")
    np.testing.assert_allclose(t, np.arange(60) / 60.0, atol=1e-6)
    assert set(mot) == set(all_cols)
    for name, values in all_cols.items():
        np.testing.assert_allclose(mot[name], values, atol=1e-3)


@pytest.mark.skipif(not HAS_OPENSIM, reason="opensim is not installed")
def test_mot_reads_back_in_opensim(run) -> None:
    import opensim

    table = opensim.TimeSeriesTable(str(run.out_dir / "joint_angles" / "cam01_joint_angles.mot"))
    assert table.getNumRows() == 60
    labels = list(table.getColumnLabels())
    assert labels[0] == "pelvis_flex_deg" and "elbow_l_flex_deg" in labels and len(labels) == 38
    _, ours = read_mot(run.out_dir / "joint_angles" / "cam01_joint_angles.mot")
    for name in ("knee_r_flex_deg", "humerothoracic_l_plane_deg", "humerothoracic_r_rot_deg"):
        np.testing.assert_allclose(table.getDependentColumn(name).to_numpy(), ours[name], atol=1e-6)
    assert table.getTableMetaDataAsString("inDegrees") == "yes"


def test_run_json_records_the_stage(run) -> None:
    rec = json.loads((run.out_dir / "run.json").read_text())
    bio = rec["biomechanics"]
    assert bio["markers"] == 65 and bio["augmented_frames"] == 60
    assert bio["onnx_providers"][0] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert bio["angle_groups"] == list(ALL_GROUPS)
    assert 0 <= bio["level"]["tilt_corrected_deg"] < 50
    assert "biomechanics_s" in rec["timings"]
    assert bio["figure_processes"] == 2  # this process and its figure helper (engine/figure_worker.py)
    for name in ("cam01_final.trc", "cam01_final.c3d", "joint_angles/cam01_knee_r.csv",
                 "joint_angles/cam01_humerothoracic_l.csv",
                 "joint_angles/cam01_all_joint_angles.png", "joint_angles/cam01_joint_angles.mot",
                 "cam01_report.pdf"):
        assert name in rec["outputs"] and (run.out_dir / name).is_file()
    assert run.files["final_trc"] == run.out_dir / "cam01_final.trc"


def test_run_json_lists_where_the_shoulder_nears_gimbal_lock(run) -> None:
    """The spans the shoulder figure hatches, for scripts that read the CSV: the frames whose Z-X-Y
    |abduction| passes 70°, as [first, last] seconds (cam01 raises its right arm to about 78°)."""
    import pandas as pd

    near_lock = json.loads((run.out_dir / "run.json").read_text())["biomechanics"]["near_gimbal_lock"]
    assert set(near_lock) == {"shoulder_r", "shoulder_l"}
    for group, got in near_lock.items():
        df = pd.read_csv(run.out_dir / "joint_angles" / f"cam01_{group}.csv")
        near = (df[f"{group}_abd_deg"].abs() > GIMBAL_DEG).to_numpy()
        assert got["frames"] == int(near.sum())
        t, inside = df["time_s"].to_numpy(), np.zeros(len(df), bool)
        for first, last in got["spans_s"]:
            inside |= (t >= first - 1e-3) & (t <= last + 1e-3)
        assert (inside == near).all(), group
    assert near_lock["shoulder_r"]["frames"] > 5


def test_cli_flags_reach_the_config() -> None:
    from engine.cli import build_parser, config_from_args

    args = build_parser().parse_args(["run", "v.mp4", "--height", "1.7", "--augmentation-cycles", "4",
                                      "--no-angles", "--no-plots"] + (["--opensim"] if HAS_OPENSIM else []))
    cfg = config_from_args(args)
    assert cfg.augmentation_cycles == 4 and not cfg.joint_angles and not cfg.angle_plots
    assert cfg.opensim == HAS_OPENSIM
    plain = config_from_args(build_parser().parse_args(["run", "v.mp4", "--height", "1.7"]))
    assert plain.joint_angles and plain.angle_plots and not plain.angle_svg
    assert config_from_args(build_parser().parse_args(["run", "v.mp4", "--height", "1.7", "--svg"])).angle_svg


@pytest.mark.parametrize("cycles", [0, 33])
def test_bad_cycle_counts_are_refused(cycles: int) -> None:
    from engine.config import RunConfig
    from engine.errors import EngineError

    with pytest.raises(EngineError, match="augmentation-cycles"):
        RunConfig(video=Path("v.mp4"), height_m=1.7, augmentation_cycles=cycles)


def test_stage_without_angles_writes_markers_only(run, tmp_path: Path) -> None:
    from engine.biomech import run_biomechanics
    from engine.config import RunConfig

    cfg = RunConfig(video=Path("clip.mp4"), height_m=1.72, joint_angles=False, augmentation_cycles=2)
    seen: list[float] = []
    rec = run_biomechanics(camera_to_opensim(run.markers_22), 60.0, 10, cfg, tmp_path,
                           lambda f, m: seen.append(f))
    assert set(rec["files"]) == {"final_trc", "final_c3d"}
    assert not (tmp_path / "joint_angles").exists()
    markers, names, _ = read_trc(tmp_path / "clip_final.trc")
    assert markers.shape == (60, 65, 3) and tuple(names[:22]) == POSE2SIM_22
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0  # the stage's own fraction
    first = (tmp_path / "clip_final.trc").read_text().splitlines()[5].split("\t")
    assert first[0] == "1" and float(first[1]) == pytest.approx(10 / 60.0, abs=1e-6)


@pytest.mark.skipif(not HAS_OPENSIM, reason="opensim is not installed")
def test_opensim_scaling_and_ik_on_the_demo_slice(run, tmp_path: Path) -> None:
    import opensim

    from engine.biomech import IK_VS_ISB
    from engine.opensim_ik import run_opensim

    rec = run_opensim(run.files["final_trc"], tmp_path / "opensim", "cam01", 1.72, 70.0, 0.0, 59 / 60)
    rms = rec["rms_per_frame_m"]
    assert len(rms) == 60 and np.isfinite(rms).all()
    assert rec["rms_mean_m"] <= 0.03, f"IK marker RMS {rec['rms_mean_m'] * 100:.1f} cm"  # demo: ~2.2 cm
    model = opensim.Model(str(tmp_path / "opensim" / rec["scaled_model"]))
    assert model.getMarkerSet().contains("r.ASIS_study")
    scales = rec["scales"]
    assert 0.7 < scales["femur_r"][0] < 1.3 and 0.7 < scales["tibia_l"][1] < 1.3
    t, ik = read_mot(tmp_path / "opensim" / rec["ik_mot"])
    assert len(t) == 60
    # IK and the ISB angles describe the same hips and knees: within a few degrees.
    isb = {}
    for group in ("hip_r", "hip_l", "knee_r", "knee_l"):
        isb |= dict(zip(columns(group), np.loadtxt(run.out_dir / "joint_angles" / f"cam01_{group}.csv",
                                                   delimiter=",", skiprows=1)[:, 1:].T))
    for coord, col in IK_VS_ISB:
        assert np.sqrt(np.mean((ik[coord] - isb[col]) ** 2)) < 10, coord
    assert not Path("opensim.log").exists()  # OpenSim's default log in the working directory
