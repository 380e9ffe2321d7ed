"""Several people, each at their own scale: --person-height/--person-mass (and the batch
manifest's people, person_height and person_mass columns), and the multi-person run.json's
quality block, on the Sports2D demo's two people."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import HEIGHT_M, assert_one_error_line, leftovers, run_cli

from engine import result
from engine.batch import read_manifest
from engine.config import RunConfig, parse_by_id
from engine.errors import EngineError
from engine.scale import pose2sim_height


def test_each_person_is_scaled_to_their_own_height(sports2d_demo, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", sports2d_demo, "--height", HEIGHT_M, "--frames", "118:132", "--people", "all",
                   "--person-height", "1=1.90, 2=1.50", "--person-mass", "2=55", "--out", out, "--quiet",
                   "--no-angles", timeout=240)
    assert proc.returncode == 0, proc.stderr
    top = out / sports2d_demo.stem
    record = json.loads((top / "run.json").read_text())
    given = {1: (1.90, 70.0), 2: (1.50, 55.0)}
    assert [(p["id"], p["height_m"], p["mass_kg"]) for p in record["people"]] == [
        (pid, h, m) for pid, (h, m) in given.items()]
    for pid, folder in result.people(top):
        res = result.load(folder)
        assert res.record["config"]["height_m"] == given[pid][0]
        assert res.record["height"] == {"source": "--height", "m": given[pid][0]}
        # The reconstruction stands about that tall by the formula that sets its scale (the fit
        # after scaling moves it a few %), clearly apart from everyone's --height 1.72.
        measured = pose2sim_height(res.markers_camera, np.isfinite(res.markers_camera).all(-1))
        assert measured == pytest.approx(given[pid][0], rel=0.05), pid
        assert abs(measured - HEIGHT_M) > 0.08, pid
    # One quality block for both: each figure's worst person, each person's own beside it.
    own = [p["quality"] for p in record["people"]]
    q = record["quality"]
    assert q["detected_share"] == min(o["detected_share"] for o in own)
    assert q["reprojection_px_p95"] == max(o["reprojection_px_p95"] for o in own)
    assert q["missing_share"] == max(o["missing_share"] for o in own)
    assert "planted_feet_share" not in q and record["fps_pose"] > 0


def test_a_height_for_someone_not_followed_writes_nothing(sports2d_demo, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", sports2d_demo, "--height", HEIGHT_M, "--frames", "118:124", "--people", "all",
                   "--person-height", "7=1.80", "--out", out, "--quiet", timeout=120)
    assert proc.returncode == 1
    line = assert_one_error_line(proc.stderr)
    assert "person 7" in line and "not among the people followed (1, 2)" in line, line
    assert leftovers(out) == []


@pytest.mark.parametrize(("args", "code", "pattern"), [
    (["--person-height", "1=1.8"], 1, "for one person use --height"),
    (["--people", "all", "--person-height", "1:1.8"], 2, "ID=VALUE"),
    (["--people", "all", "--person-height", "1=3.5"], 1, "1=3.5"),
    (["--people", "1,2", "--person-mass", "3=60"], 1, "not among --people 1,2"),
    (["--people", "all", "--person-height", "1=1.8,1=1.7"], 1, "names a person twice"),
])
def test_bad_person_scales_are_one_line(sports2d_demo, tmp_path, args, code, pattern):
    proc = run_cli("run", sports2d_demo, "--height", HEIGHT_M, *args, "--out", tmp_path / "o")
    assert proc.returncode == code, proc.stderr
    line = assert_one_error_line(proc.stderr)
    assert pattern in line, line
    assert leftovers(tmp_path / "o") == []


def test_by_id_text_and_its_round_trip(sports2d_demo):
    assert parse_by_id(" 2=1.65, #1=1.9 ,", "--person-height") == ((2, 1.65), (1, 1.9))
    assert parse_by_id("", "--person-height") == ()
    cfg = RunConfig(video=sports2d_demo, height_m=1.7, people="all", person_heights=((2, 1.65),))
    assert RunConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    with pytest.raises(EngineError, match="--person-mass"):
        parse_by_id("1=heavy", "--person-mass")


def test_manifest_columns_for_people(sports2d_demo, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("video,height,people,person_height,person_mass\n"
                        f'{sports2d_demo},1.72,all,"1=1.85,2=1.60",2=52\n')
    [(video, overrides, where)] = read_manifest(manifest)
    assert video == sports2d_demo and where == f"{manifest}:2"
    assert overrides == {"height_m": 1.72, "people": "all", "person_heights": ((1, 1.85), (2, 1.6)),
                         "person_masses": ((2, 52.0),)}
