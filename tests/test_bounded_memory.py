"""The stages that work on whole videos after detection do it in blocks of frames, so that memory
stays flat on long videos (benchmarks/memory.py measures it). Here: blocks give the same results as
one pass over everything (exactly, or within 0.5 mm for the LSTM), on sequences longer than a block."""

from __future__ import annotations

import numpy as np
import pytest

from engine import augment as augment_mod
from engine import camera, quality, skeleton_fit
from engine.camera import Intrinsics
from engine.joint_sets import POSE2SIM_22


@pytest.fixture(scope="module")
def body(cam01_run):
    """The demo run's track and markers, looped forward and back to 2600 frames, with noise."""
    res = cam01_run.result
    rng = np.random.default_rng(3)

    def loop(a: np.ndarray, n: int = 2600) -> np.ndarray:
        return np.concatenate([a, a[::-1]] * (n // (2 * len(a)) + 1))[:n]

    pixels = loop(res.track.pixels.astype(np.float64)) + rng.normal(0, 1.5, (2600, 33, 2))
    return {"pixels": pixels, "visibility": loop(res.track.visibility.astype(np.float64)),
            "markers": loop(res.recon.markers) + rng.normal(0, 0.002, (2600, 33, 3)),
            "markers_22": loop(res.markers_22), "k": res.intrinsics}


def test_root_translation_in_blocks_is_exact(body, monkeypatch):
    args = (body["markers"] - body["markers"][:, [0]], body["pixels"], body["visibility"], body["k"])
    blocks = camera.solve_root_translation(*args)
    monkeypatch.setattr(camera, "_CHUNK", 10**9)
    np.testing.assert_array_equal(blocks, camera.solve_root_translation(*args))


def test_bone_lengths_from_2d_in_blocks_are_exact(body, monkeypatch):
    m = body["markers"]
    prior = skeleton_fit.bone_vectors(m)
    confident = body["visibility"] > 0.5
    args = (m, prior, body["pixels"], confident, body["k"])
    blocks = skeleton_fit.lengths_from_2d(*args)
    monkeypatch.setattr(skeleton_fit, "_CHUNK", 10**9)
    np.testing.assert_array_equal(blocks, skeleton_fit.lengths_from_2d(*args))


def test_quality_csv_in_blocks_is_the_same_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    flags = {f: rng.random((1300, 33)) > 0.5 for f in quality.FLAGS}
    err = rng.random((1300, 33)) * 10
    err[7, 3] = np.nan
    quality.write_quality_csv(tmp_path / "blocks.csv", flags, err, 5, 30.0)
    monkeypatch.setattr(quality, "_BLOCK", 10**9)
    quality.write_quality_csv(tmp_path / "whole.csv", flags, err, 5, 30.0)
    assert (tmp_path / "blocks.csv").read_text() == (tmp_path / "whole.csv").read_text()


@pytest.mark.parametrize("cycles", [1, 4])
def test_lstm_in_blocks_matches_one_pass(body, monkeypatch, cycles):
    from engine.coords import camera_to_opensim

    m = camera_to_opensim(body["markers_22"])
    assert m.shape[1:] == (len(POSE2SIM_22), 3)
    # The engine's warm-up with short blocks, so that 2600 frames make several.
    monkeypatch.setattr(augment_mod, "_BLOCK", 800)
    assert augment_mod._WARM_UP == 2048
    blocks = augment_mod.augment(m, 1.72, 70.0, cycles=cycles)
    monkeypatch.setattr(augment_mod, "_BLOCK", 10**9)
    whole = augment_mod.augment(m, 1.72, 70.0, cycles=cycles)
    np.testing.assert_allclose(blocks[:800], whole[:800], atol=1e-6)  # the first block is the same run
    gap = np.abs(blocks - whole).max(axis=(1, 2))
    print(f"\nLSTM in blocks vs one pass, {cycles} cycle(s): max {1000 * gap.max():.2f} mm, "
          f"median {1000 * np.median(gap[800:]):.3f} mm after the first block")
    assert gap.max() < 1e-3  # metres: well inside the augmenter's own centimetre errors


def test_intrinsics_fixture_is_the_demo_camera(body):
    assert isinstance(body["k"], Intrinsics) and body["k"].cx == pytest.approx(540)
