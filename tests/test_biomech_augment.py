"""The LSTM marker augmentation: same markers as Pose2Sim's own augment_markers_all, execution
providers, missing frames, and heading-ensemble cycles."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine import augment as aug
from engine.joint_sets import OPENCAP_43, POSE2SIM_22
from engine.trc import read_trc

pytestmark = pytest.mark.engine_run


@pytest.fixture(scope="module")
def initial_markers(cam01_run) -> tuple[Path, np.ndarray]:
    """The shared engine run's initial.trc (Pose2Sim's 22 markers, Y up) and its markers."""
    path = cam01_run.result.files["initial_trc"]
    markers, names, _ = read_trc(path)
    assert tuple(names) == POSE2SIM_22
    return path, markers


def _pose2sim_augment(trc: Path, project: Path, height: float, mass: float) -> np.ndarray:
    """Run Pose2Sim's markerAugmentation.augment_markers_all on `trc` → (T, 43, 3) in OPENCAP_43 order."""
    from Pose2Sim.markerAugmentation import augment_markers_all

    (project / "pose-3d").mkdir(parents=True)
    shutil.copy(trc, project / "pose-3d" / "subject.trc")
    augment_markers_all({"project": {"project_dir": str(project), "participant_height": height,
                                     "participant_mass": mass},
                         "markerAugmentation": {"feet_on_floor": False, "make_c3d": False}})
    lines = (project / "pose-3d" / "subject_LSTM.trc").read_text().splitlines()
    # Pose2Sim appends the 43 response markers after the 22 inputs, lower model then upper model.
    # Its header rewrite expects a names line ending in three tabs, so read the columns by position.
    rows = [[float(c) for c in line.split("\t")[2:2 + 65 * 3]] for line in lines[5:] if line.strip()]
    data = np.array(rows).reshape(len(rows), 65, 3)
    return data[:, 22:]


def test_matches_pose2sims_own_augmentation(initial_markers, tmp_path: Path) -> None:
    trc, markers = initial_markers
    theirs = _pose2sim_augment(trc, tmp_path / "p2s", 1.72, 70.0)
    ours = aug.augment(markers, 1.72, 70.0)
    assert ours.shape == (markers.shape[0], len(OPENCAP_43), 3) == theirs.shape
    assert np.isfinite(ours).all()
    # float32 inference on both sides: agreement to well under a millimetre.
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_height_and_mass_are_inputs(initial_markers) -> None:
    _, markers = initial_markers
    base = aug.augment(markers, 1.72, 70.0)
    assert np.abs(aug.augment(markers, 1.72, 95.0) - base).max() > 1e-4
    assert np.abs(aug.augment(markers, 1.90, 70.0) - base).max() > 1e-4


def test_missing_frames_do_not_poison_the_rest(initial_markers) -> None:
    _, markers = initial_markers
    m = markers.copy()
    m[20:25, POSE2SIM_22.index("RKnee")] = np.nan  # a lower-body input
    out = aug.augment(m, 1.72, 70.0)
    lower = slice(0, 35)
    assert np.isnan(out[20:25, lower]).all()
    assert np.isfinite(out[20:25, 35:]).all()  # the upper-body model does not read the knees
    assert np.isfinite(out[:20]).all() and np.isfinite(out[25:]).all()
    # Each finite run is augmented on its own, as if it were the whole clip.
    np.testing.assert_allclose(out[25:, lower], aug.augment(m[25:], 1.72, 70.0)[:, lower], atol=1e-6)


def test_heading_cycles_average_turned_copies(initial_markers) -> None:
    _, markers = initial_markers
    one = aug.augment(markers, 1.72, 70.0, cycles=1)
    four = aug.augment(markers, 1.72, 70.0, cycles=4)
    diff = np.linalg.norm(four - one, axis=-1)
    assert 0.5e-3 < np.mean(diff) < 0.03  # a few millimetres: same markers, heading bias averaged
    # The ensemble is the mean of the model run on the subject turned by 0/90/180/270° and turned back.
    hip = markers[:, :1]
    turned = []
    for rot in aug._headings(4):
        out = aug.augment((markers - hip) @ rot.T + hip, 1.72, 70.0)
        turned.append((out - hip) @ rot + hip)
    np.testing.assert_allclose(four, np.mean(turned, axis=0), atol=1e-5)
    with pytest.raises(ValueError):
        aug.augment(markers, 1.72, 70.0, cycles=0)


def test_cuda_provider_first_when_onnxruntime_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: gpu)
    assert aug.execution_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    cpu = ["AzureExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: cpu)
    assert aug.execution_providers() == ["CPUExecutionProvider"]


def test_shipped_models_are_found() -> None:
    for kind in ("lower", "upper"):
        d = aug.model_dir(kind)
        assert (d / "model.onnx").is_file() and (d / "mean.npy").is_file() and (d / "std.npy").is_file()
