"""The `--lifter` path end to end: a VideoPose3D checkpoint in the official format (random
weights, made here: nothing is downloaded) drives the 3D prior of a real run."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import assert_one_error_line, leftovers, run_cli  # noqa: E402
from test_lifter import make_model, save_official  # noqa: E402

from engine.config import RunConfig  # noqa: E402
from engine.pipeline import run  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_official(tmp_path_factory.mktemp("vp3d") / "lifter.bin", make_model())


def test_run_with_a_lifter_checkpoint(cam01, checkpoint, tmp_path):
    res = run(RunConfig(video=cam01, height_m=1.72, out_dir=tmp_path, frames=(0, 20), lifter=checkpoint))
    record = json.loads(res.files["run_json"].read_text())
    assert record["config"]["lifter"] == str(checkpoint)
    markers = res.recon.markers[res.track.detected]
    assert np.isfinite(markers).all()
    # The lifted prior changes the result, and the subject keeps one set of bone lengths.
    plain = run(RunConfig(video=cam01, height_m=1.72, out_dir=tmp_path / "plain", frames=(0, 20)))
    assert not np.allclose(plain.recon.markers, res.recon.markers)
    thigh = np.linalg.norm(res.recon.markers[:, 23] - res.recon.markers[:, 25], axis=-1)
    assert np.nanstd(thigh) < 1e-6


@pytest.mark.parametrize("content", [None, b"not a torch checkpoint"])
def test_bad_lifter_fails_before_any_work(cam01, tmp_path, content):
    path = tmp_path / "model.bin"
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "out"
    proc = run_cli("run", cam01, "--height", "1.72", "--out", out, "--lifter", path)
    assert proc.returncode == 1
    line = assert_one_error_line(proc.stderr)
    assert "lifter" in line.lower() or "checkpoint" in line.lower()
    assert leftovers(out) == []
