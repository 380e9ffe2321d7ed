"""`python -m engine batch`: many videos on Ray, run as a user runs it (a subprocess), on short
slices of the real demo videos. Covers the summary against the run.json files, resume, a failing
input among good ones, per-video manifest settings, the up-front refusals (same stem, bad manifest
row, no input), Ctrl-C, and Ray failing to start."""

from __future__ import annotations

import csv
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, assert_one_error_line, cli_env, popen_cli, run_cli

from engine.outputs import TMP_PREFIX

SLICE = "0:20"


def _summary(out: Path) -> tuple[dict, list[dict]]:
    doc = json.loads((out / "batch.json").read_text())
    with open(out / "batch.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return doc, rows


def _no_temp_leftovers(out: Path) -> None:
    stray = [p for p in out.rglob("*") if p.name.startswith((TMP_PREFIX, ".hp3d-old-", ".batch."))]
    assert stray == [], stray


@pytest.fixture(scope="module")
def demo_dir(cam01: Path) -> Path:
    return cam01.parent


@pytest.fixture(scope="module")
def first_batch(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One batch: cam01 by path, cam02 through a manifest that gives it its own height, a text file
    among the videos, and a pattern that matches nothing."""
    d = tmp_path_factory.mktemp("batch")
    notes = d / "notes.txt"
    notes.write_text("not a video\n")
    manifest = d / "subjects.csv"
    manifest.write_text(f"# subjects\nvideo,height,mass,frames\n{demo_dir / 'cam02.mp4'},1.80,80,{SLICE}\n")
    out = d / "out"
    empty = str(d / "*.mov")
    t = time.perf_counter()
    proc = run_cli("batch", demo_dir / "cam01.mp4", notes, empty, "--manifest", manifest, "--height", "1.72",
                   "--frames", SLICE, "--out", out, timeout=240)
    return {"proc": proc, "out": out, "notes": notes, "manifest": manifest, "empty": empty,
            "wall_s": time.perf_counter() - t}


def test_batch_processes_videos_and_summary_matches_run_json(first_batch: dict) -> None:
    proc, out = first_batch["proc"], first_batch["out"]
    assert proc.returncode == 1, proc.stderr  # one input failed
    assert "Traceback" not in proc.stderr, proc.stderr
    doc, rows = _summary(out)
    assert doc["completed"] is True
    assert doc["counts"] == {"ok": 2, "failed": 1, "skipped": 0, "cancelled": 0}
    by_stem = {r["stem"]: r for r in rows}
    assert set(by_stem) == {"cam01", "cam02", "notes"}
    for stem in ("cam01", "cam02"):
        row, run = by_stem[stem], json.loads((out / stem / "run.json").read_text())
        assert row["status"] == "ok" and row["error"] == ""
        assert run["completed"] is True
        assert int(row["frames"]) == run["frames"]["read"] == 20
        assert float(row["fps"]) == run["video"]["fps"]
        assert float(row["detection_rate"]) == run["detection_rate"]
        assert float(row["reprojection_px_median"]) == run["quality"]["reprojection_px_median"]
        assert float(row["run_s"]) == run["timings"]["total_s"]
        assert float(row["wall_s"]) >= float(row["run_s"])
        js = next(v for v in doc["videos"] if v["stem"] == stem)
        assert js["quality"] == run["quality"]
        assert run["biomechanics"]["figure_processes"] == 1  # Ray gives each core a video already
    # The manifest's row settings reached its video; the command line's reached the other.
    cfg2 = json.loads((out / "cam02" / "run.json").read_text())["config"]
    cfg1 = json.loads((out / "cam01" / "run.json").read_text())["config"]
    assert (cfg2["height_m"], cfg2["mass_kg"], cfg1["height_m"], cfg1["mass_kg"]) == (1.8, 80.0, 1.72, 70.0)
    assert by_stem["cam02"]["source"] == f"{first_batch['manifest']}:3"
    assert (out / "cam01" / "cam01_final.trc").is_file()
    _no_temp_leftovers(out)


def test_failing_input_is_recorded_and_the_rest_go_on(first_batch: dict) -> None:
    proc, out = first_batch["proc"], first_batch["out"]
    _, rows = _summary(out)
    bad = next(r for r in rows if r["stem"] == "notes")
    assert bad["status"] == "failed"
    assert "not a video" in bad["error"], bad
    assert not (out / "notes").exists()
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert errors == [f"error: notes.txt: {bad['error']}"], proc.stderr
    # The empty pattern: a warning line, and the summary says what became of it.
    assert f"warning: no file matches {first_batch['empty']!r}" in proc.stderr.splitlines()
    doc, _ = _summary(out)
    rec = next(i for i in doc["inputs"] if i["input"] == first_batch["empty"])
    assert rec["videos"] == 0 and "no file matches" in rec["warning"]


def test_resume_skips_completed_videos(first_batch: dict, demo_dir: Path) -> None:
    out = first_batch["out"]
    before = {s: (out / s / "run.json").stat().st_mtime_ns for s in ("cam01", "cam02")}
    proc = run_cli("batch", demo_dir / "cam01.mp4", demo_dir / "cam02.mp4", "--height", "1.72",
                   "--frames", SLICE, "--out", out, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr  # nothing to run: Ray is not even started
    doc, rows = _summary(out)
    assert [r["status"] for r in rows] == ["skipped", "skipped"]
    assert rows[0]["frames"] == "20" and rows[0]["wall_s"] == ""
    assert doc["counts"]["skipped"] == 2
    assert before == {s: (out / s / "run.json").stat().st_mtime_ns for s in ("cam01", "cam02")}


def test_a_link_keeps_its_own_name_and_one_file_twice_is_one_job(demo_dir: Path, tmp_path: Path) -> None:
    from engine.batch import plan

    link = tmp_path / "runner.mp4"
    link.symlink_to(demo_dir / "cam01.mp4")
    p = plan([str(link), str(tmp_path), str(tmp_path / "*.mp4")], None, {"height_m": 1.72,
                                                                        "out_dir": tmp_path / "out"})
    assert [(j.stem, j.cfg.video) for j in p.jobs] == [("runner", link)]


def test_same_stem_is_refused_up_front(demo_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    copy = other / "cam01.mp4"
    shutil.copyfile(demo_dir / "cam01.mp4", copy)
    out = tmp_path / "out"
    proc = run_cli("batch", demo_dir / "cam01.mp4", other, "--height", "1.72", "--out", out)
    assert proc.returncode == 1
    line = assert_one_error_line(proc.stderr)
    assert "same name stem 'cam01'" in line and str(copy) in line and str(demo_dir / "cam01.mp4") in line
    assert not out.exists()


@pytest.mark.parametrize(("body", "where", "pattern"), [
    ("video,height\n{v},1.72\n{v2},tall\n", 3, "column height: expected a number"),
    ("video,height,frames\n{v},1.72,20:10\n", 2, "column frames"),
    ("video,height,shoe_size\n{v},1.72,42\n", 1, "bad manifest header"),
    ("video,height\n{v},9\n", 2, "--height must be"),
    ("video,mass\n{v},70\n", 2, "no height for cam01.mp4"),
    ("video,height\n{v},1.7,extra\n", 2, "3 cells for 2 columns"),
])
def test_bad_manifest_row_is_refused_naming_file_and_line(demo_dir: Path, tmp_path: Path, body: str,
                                                           where: int, pattern: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(body.format(v=demo_dir / "cam01.mp4", v2=demo_dir / "cam02.mp4"))
    out = tmp_path / "out"
    proc = run_cli("batch", "--manifest", manifest, "--out", out)
    assert proc.returncode == 1, proc.stderr
    line = assert_one_error_line(proc.stderr)
    assert f"{manifest}:{where}" in line and pattern in line, line
    assert not out.exists()


def test_a_pattern_that_matches_nothing_and_no_other_input(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("batch", str(tmp_path / "*.mp4"), "--height", "1.72", "--out", out)
    assert proc.returncode == 1
    line = assert_one_error_line(proc.stderr)
    assert "no videos to process" in line and "no file matches" in line
    assert not out.exists()


def test_ray_failing_to_start_is_one_line(demo_dir: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    t = time.perf_counter()
    proc = run_cli("batch", demo_dir / "cam01.mp4", "--height", "1.72", "--out", out,
                   "--ray-address", f"127.0.0.1:{port}", timeout=60)
    assert time.perf_counter() - t < 30
    assert proc.returncode == 1
    line = assert_one_error_line(proc.stderr)
    assert f"cannot reach Ray at 127.0.0.1:{port}" in line
    assert not out.exists()


def test_ctrl_c_cancels_cleanly_and_keeps_what_finished(demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    videos = [demo_dir / f"cam0{i}.mp4" for i in (1, 2, 3)]
    proc = popen_cli("batch", *videos, "--height", "1.72", "--frames", "0:60", "--workers", "1",
                     "--out", out)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=180)  # the first video done: the second is running now
    except queue.Empty:
        proc.kill()
        pytest.fail(f"no video finished: {proc.stderr.read()}")
    assert first.startswith("ok ") and "cam01" in first, first
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    t = time.perf_counter()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, stderr
    assert time.perf_counter() - t < 30
    assert "Traceback" not in stderr
    doc, rows = _summary(out)
    assert doc["completed"] is False
    # cam02 is running when the signal comes; a run that finishes before the cancel reaches it
    # (60 frames take a few seconds) is kept as ok. cam03 never starts.
    statuses = [r["status"] for r in rows]
    assert statuses[0] == "ok" and statuses[1] in ("ok", "cancelled") and statuses[2] == "cancelled"
    done = statuses.count("ok")
    assert stderr.splitlines()[-1].startswith(f"error: cancelled ({done} ok, {3 - done} cancelled)"), stderr
    assert json.loads((out / "cam01" / "run.json").read_text())["completed"] is True
    assert (out / "cam02").exists() == (statuses[1] == "ok") and not (out / "cam03").exists()
    _no_temp_leftovers(out)


def _descendants(pid: int) -> list[int]:
    """Processes below `pid` (the batch this test started), read from /proc."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        kids = [p for p, pp in parent.items() if pp in frontier]
        found += kids
        frontier = kids
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_killed_worker_is_a_failed_video_not_retried(demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = popen_cli("batch", demo_dir / "cam04.mp4", "--height", "1.72", "--out", out)
    deadline, worker = time.monotonic() + 120, None
    while worker is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        worker = next((p for p in _descendants(proc.pid) if _cmdline(p).startswith("ray::process_video")),
                      None)
    assert worker is not None, "the video's Ray worker never appeared"
    time.sleep(2.0)  # inside the run
    os.kill(worker, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    doc, rows = _summary(out)
    assert rows[0]["status"] == "failed" and "worker process died" in rows[0]["error"], rows
    assert f"error: cam04.mp4: {rows[0]['error']}" in stderr.splitlines()
    assert not (out / "cam04").exists()
    _no_temp_leftovers(out)


def test_worker_death_maps_to_a_failed_row() -> None:
    """A killed worker (Ray's WorkerCrashedError, never retried: max_retries=0) or Ray's memory
    monitor is a failed video with a plain line, not a Ray traceback."""
    import ray.exceptions as rx

    from engine.batch import _ray_error

    status, line = _ray_error(rx.WorkerCrashedError())
    assert status == "failed" and "worker process died" in line and "\n" not in line
    assert _ray_error(rx.TaskCancelledError())[0] == "cancelled"


def test_single_runs_never_import_ray() -> None:
    code = ("import sys, engine.cli, engine.pipeline; engine.cli.build_parser(); "
            "sys.exit('ray' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=cli_env(), timeout=120)
    assert proc.returncode == 0
