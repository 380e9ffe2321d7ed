"""Many videos at once: `python -m engine batch INPUTS... --out DIR`, each video one Ray task.

Ray (a local instance started for the batch, or a cluster with --ray-address) does the scheduling;
this module only turns the inputs and the manifest into one RunConfig per video, submits them,
follows them, and writes the summary (DIR/batch.json + DIR/batch.csv). Ray is imported here and
nowhere else, so single runs and Blender never load it.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from .config import RunConfig
from .cores import THREADS_ENV
from .errors import Cancelled, EngineError
from .outputs import clean_stale
from .result import read_record

# What a folder argument contributes; a file named explicitly (or matched by a glob) goes in
# whatever its name, so that a non-video is reported as failed rather than silently dropped.
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                            ".flv", ".mts", ".m2ts", ".ts", ".3gp", ".ogv"})
STATUSES = ("ok", "failed", "skipped", "cancelled")
CSV_COLUMNS = ("video", "stem", "status", "error", "frames", "frames_detected", "fps", "pose_fps",
               "detection_rate", "detected_share", "low_confidence_share", "interpolated_share",
               "missing_share", "swapped_frames", "reprojection_px_median", "reprojection_px_p95",
               "run_s", "wall_s", "out_dir", "source")
_CANCEL_GRACE_S = 20.0  # a cancelled task stops at its next frame; a stuck one is killed after this
_POLL_S = 0.5  # also how often Ctrl-C gets through while the driver waits on Ray
_CONNECT_TIMEOUT_S = 5.0


class BatchError(EngineError):
    """An input problem found before any video is processed: one line, nothing started."""


# --- manifest ----------------------------------------------------------------------------------


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "y"):
        return True
    if t in ("0", "false", "no", "n"):
        return False
    raise ValueError(f"expected 1/0, true/false or yes/no, got {text!r}")


def _cell_parsers() -> dict[str, tuple[str, object]]:
    """Manifest column → (RunConfig field, parser of the cell's text). The CLI's own parsers, so a
    cell reads exactly as the flag of the same name does."""
    from .cli import _by_id, _float, _frames, _people, _roi

    return {"height": ("height_m", _float), "mass": ("mass_kg", _float), "frames": ("frames", _frames),
            "pose_model": ("pose_model", str.strip), "fov": ("fov_deg", _float),
            "focal_px": ("focal_px", _float), "roi": ("roi", _roi), "holistic": ("holistic", _bool),
            "estimate_missing": ("estimate_missing", _bool), "sex": ("sex", str.strip),
            "age": ("age_years", _float), "people": ("people", _people),
            "person_height": ("person_heights", _by_id("person_height")),
            "person_mass": ("person_masses", _by_id("person_mass"))}


MANIFEST_COLUMNS = ("video", "height", "mass", "frames", "pose_model", "fov", "focal_px", "roi",
                    "holistic", "estimate_missing", "sex", "age", "people", "person_height", "person_mass")


@dataclass
class Job:
    video: Path  # absolute
    cfg: RunConfig
    source: str  # the argument or manifest line it came from

    @property
    def stem(self) -> str:
        return self.video.stem


@dataclass
class Plan:
    jobs: list[Job]
    inputs: list[dict]  # per command-line argument: what it expanded to, and any warning
    warnings: list[str] = field(default_factory=list)


def read_manifest(path: Path) -> list[tuple[Path, dict, str]]:
    """(video, RunConfig overrides, "file:line") per row. Any bad row refuses the whole manifest,
    naming its file and line: a typo should not cost a night of processing the wrong settings."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchError(f"cannot read manifest {path}: {getattr(exc, 'strerror', None) or exc}") from None
    parsers = _cell_parsers()
    reader = csv.reader(io.StringIO(text))
    rows = []
    header: list[str] | None = None
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if not row or not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip().lower().replace("-", "_") for c in row]
            unknown = [c for c in header if c not in MANIFEST_COLUMNS]
            if unknown or "video" not in header or len(set(header)) < len(header):
                raise BatchError(f"{where}: bad manifest header {row!r}: expected columns from "
                                 f"{', '.join(MANIFEST_COLUMNS)} (video required, each once)")
            continue
        if len(row) > len(header):
            raise BatchError(f"{where}: {len(row)} cells for {len(header)} columns")
        cells = dict(zip(header, (c.strip() for c in row)))
        if not cells.get("video"):
            raise BatchError(f"{where}: empty video cell")
        overrides = {}
        for name, value in cells.items():
            if name == "video" or not value:
                continue
            key, parse = parsers[name]
            try:
                overrides[key] = parse(value)
            except (ValueError, argparse.ArgumentTypeError) as exc:
                raise BatchError(f"{where}: column {name}: {exc}") from None
        video = Path(cells["video"]).expanduser()
        rows.append((_absolute(path.parent / video), overrides, where))
    if header is None:
        raise BatchError(f"{path}: empty manifest (expected a header row with a video column)")
    return rows


# --- inputs ------------------------------------------------------------------------------------


def _absolute(path: Path) -> Path:
    """Absolute (Ray workers may run elsewhere) but links kept: a link's own name is the stem."""
    return Path(os.path.abspath(path))


def _is_pattern(text: str) -> bool:
    return any(c in text for c in "*?[")


def _folder_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def expand_inputs(inputs: Iterable[str]) -> tuple[list[Path], list[dict], list[str]]:
    """Files as given, folders' videos, glob matches (the shell leaves a pattern that matches
    nothing as it is, so patterns are expanded here too). A pattern or folder that gives nothing is
    a warning, not an error: the others still run (no input at all is refused by plan())."""
    videos: list[Path] = []
    records: list[dict] = []
    warnings: list[str] = []
    for arg in inputs:
        path = Path(arg).expanduser()
        if path.is_dir():
            found = _folder_videos(path)
            what = "folder"
        elif not path.exists() and _is_pattern(arg):
            found = []
            for m in sorted(glob.glob(os.path.expanduser(arg), recursive=True)):
                mp = Path(m)
                found += _folder_videos(mp) if mp.is_dir() else [mp]
            what = "pattern"
        else:  # a file, or a path that does not exist: the engine reports it as that video's error
            found, what = [path], "file"
        rec = {"input": arg, "kind": what, "videos": len(found)}
        if not found:
            rec["warning"] = (f"no file matches {arg!r}" if what == "pattern"
                              else f"no videos in folder {arg}")
            warnings.append(rec["warning"])
        records.append(rec)
        videos += [_absolute(p) for p in found]
    return videos, records, warnings


def plan(inputs: list[str], manifest: Path | None, defaults: dict) -> Plan:
    """One Job per distinct video, each with its validated RunConfig; refuses up front (BatchError)
    what would fail for every video or collide: no input, two videos with one stem, a bad
    manifest row or setting."""
    videos, records, warnings = expand_inputs(inputs)
    base = {k: v for k, v in defaults.items() if k in {f.name for f in fields(RunConfig)}}
    base["out_dir"] = _absolute(Path(base.get("out_dir") or "output").expanduser())
    wanted: dict[Path, tuple[dict, str]] = {}  # the same file twice is one job
    for v, rec in zip(videos, _sources(records)):
        wanted.setdefault(v, ({}, rec))
    if manifest is not None:
        listed: dict[Path, str] = {}
        for v, overrides, where in read_manifest(manifest):
            if v in listed:
                raise BatchError(f"{where}: {v.name} is listed twice (also at {listed[v]})")
            listed[v] = where
            wanted[v] = (overrides, where)  # the manifest's settings win over a plain argument
    if not wanted:
        raise BatchError("no videos to process" + (f" ({'; '.join(warnings)})" if warnings else
                                                   ": give video files, folders or patterns"))
    by_stem: dict[str, Path] = {}
    for v in wanted:
        other = by_stem.setdefault(v.stem, v)
        if other != v:
            raise BatchError(f"{other} and {v} have the same name stem {v.stem!r}: both results would "
                             f"go to {base['out_dir'] / v.stem} (rename one, or run them into "
                             "different --out folders)")
    jobs = []
    for v, (overrides, where) in wanted.items():
        kw = base | overrides
        if kw.get("height_m") is None:
            raise BatchError(f"{where}: no height for {v.name}: give --height (every video) or a "
                             "height column in the manifest")
        try:
            cfg = RunConfig(video=v, **kw)
        except EngineError as exc:
            raise BatchError(f"{where}: {exc}" if overrides else str(exc)) from None
        jobs.append(Job(v, cfg, where))
    return Plan(jobs, records, warnings)


def _sources(records: list[dict]) -> Iterable[str]:
    for rec in records:
        yield from [rec["input"]] * rec["videos"]


# --- results -----------------------------------------------------------------------------------


def completed_record(folder: Path) -> dict | None:
    """run.json of a finished result, or None (absent, unreadable, or not marked completed)."""
    rec = read_record(folder)
    return rec if rec.get("completed") is True else None


def summary_from_record(rec: dict) -> dict:
    """The summary's numbers, read from a run.json record (the same function for a video run now
    and one skipped as already done, so the summary always matches the files)."""
    q = rec.get("quality", {})
    frames = rec.get("frames", {})
    return {"frames": frames.get("read"), "frames_detected": frames.get("detected"),
            "fps": rec.get("video", {}).get("fps"), "pose_fps": rec.get("fps_pose"),
            "detection_rate": rec.get("detection_rate"),
            **{k: q.get(k) for k in ("detected_share", "low_confidence_share", "interpolated_share",
                                      "missing_share", "swapped_frames", "reprojection_px_median",
                                      "reprojection_px_p95")},
            "run_s": rec.get("timings", {}).get("total_s"), "quality": q}


def _row(job: Job, status: str, error: str = "", **extra) -> dict:
    row = {"video": str(job.video), "stem": job.stem, "status": status, "error": error,
           "out_dir": str(job.cfg.out_dir / job.stem), "source": job.source}
    return row | extra


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, newline="" if path.suffix == ".csv" else None)
    os.replace(tmp, path)


def write_summary(out_dir: Path, rows: list[dict], meta: dict) -> tuple[Path, Path]:
    """DIR/batch.json (everything, quality in full) and DIR/batch.csv (one row per video), each
    written beside and renamed into place, so a reader never sees half a summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    doc = meta | {"counts": counts, "videos": rows}
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_COLUMNS})
    _atomic_write(out_dir / "batch.json", json.dumps(doc, indent=2))
    _atomic_write(out_dir / "batch.csv", buf.getvalue())
    return out_dir / "batch.json", out_dir / "batch.csv"


# --- the Ray task ------------------------------------------------------------------------------


def process_video(cfg: RunConfig, progress_actor: object = None, key: str = "") -> dict:
    """Run one video (inside a Ray worker); never raises for the video's own problems: the
    outcome comes back as a status and one error line, as the CLI would print it."""
    import warnings

    from .process_memory import hold_mmap_threshold

    hold_mmap_threshold()
    # No second process for the figures (engine/figure_worker.py): Ray already gives every core a
    # video, and starting that helper per video costs about a core-second.
    os.environ["HP3D_FIGURE_WORKER"] = "0"
    # One pose thread: the task holds one of Ray's CPUs (engine/cores.py;
    # benchmarks/batch.py: ratio 1.15 with 2 pose threads per video, 0.99 with 1).
    os.environ[THREADS_ENV] = "1"
    warnings.filterwarnings("ignore", r"(All-NaN|Mean of empty) slice", RuntimeWarning)
    t0 = time.perf_counter()
    cancel = threading.Event()
    last = [0.0]

    def progress(fraction: float, message: str) -> None:  # noqa: ARG001
        now = time.monotonic()
        if progress_actor is not None and (now - last[0] >= _POLL_S or fraction >= 1.0):
            last[0] = now
            progress_actor.report.remote(key, fraction)  # fire and forget

    def out(status: str, error: str = "", **extra) -> dict:
        return {"status": status, "error": error, "wall_s": round(time.perf_counter() - t0, 3)} | extra

    try:
        from .pipeline import run

        progress(0.0, "starting")
        result = run(cfg, progress=progress, cancel=cancel)
        return out("ok", **summary_from_record(result.record))
    except (KeyboardInterrupt, Cancelled):  # ray.cancel() raises KeyboardInterrupt in the task
        cancel.set()
        return out("cancelled", "cancelled while running; nothing was written")
    except EngineError as exc:
        return out("failed", str(exc))
    except MemoryError:
        return out("failed", "out of memory (try --frames to process part of the video)")
    except OSError as exc:
        return out("failed", f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
    except Exception as exc:  # a bug: one line, as the CLI's `run` says it
        return out("failed", f"internal error ({type(exc).__name__}: {exc})")


class _Progress:
    """Ray actor holding each running video's fraction done, for the driver's progress bar."""

    def __init__(self) -> None:
        self.done: dict[str, float] = {}

    def report(self, key: str, fraction: float) -> None:
        self.done[key] = fraction

    def snapshot(self) -> dict[str, float]:
        return dict(self.done)


# --- driver ------------------------------------------------------------------------------------


def _check_reachable(address: str) -> None:
    """Ray's own connect retries for minutes on a closed port, spamming stderr; a plain TCP connect
    says in seconds whether anything listens there."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise EngineError(f"--ray-address must be host:port, ray://host:port or auto, got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise EngineError(f"cannot reach Ray at {address}: {exc.strerror or exc}") from None


def start_ray(address: str | None, workers: int) -> object:
    """ray.init: local with `workers` CPUs (one video per CPU), or the cluster at `address`."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network calls from a batch
    import logging

    try:
        import ray
    except ImportError:
        raise EngineError("batch needs Ray: pip install ray==2.60.0") from None
    if address:
        _check_reachable(address)
    try:
        kw = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                  configure_logging=True)
        if address:
            ray.init(address=address, **kw)
        else:
            # The object store holds only small result dicts: its minimum keeps /dev/shm free.
            ray.init(num_cpus=workers, object_store_memory=80 * 2**20, **kw)
    except Exception as exc:  # Ray raises many types (ConnectionError, RuntimeError, ValueError ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineError(f"Ray failed to start: {first}") from None
    return ray


def _ray_error(exc: BaseException) -> tuple[str, str]:
    """(status, one line) for an exception from ray.get on a video's task."""
    import ray.exceptions as rx

    if isinstance(exc, rx.TaskCancelledError):
        return "cancelled", "cancelled; nothing was written"
    if isinstance(exc, rx.OutOfMemoryError):
        return "failed", "killed by Ray's memory monitor: the machine ran out of memory"
    if isinstance(exc, rx.WorkerCrashedError | rx.NodeDiedError | rx.LocalRayletDiedError):
        return "failed", ("the worker process died (killed or crashed) while processing this video; "
                          "not retried")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return "failed", f"Ray error ({type(exc).__name__}{': ' + first if first else ''})"


class _Bar:
    """A progress bar over videos, fractions of the running ones included; one line per finished
    video either way (tqdm turns the bar off when stderr is not a terminal)."""

    def __init__(self, total: int, quiet: bool) -> None:
        from tqdm import tqdm

        self.tqdm = tqdm
        self.bar = tqdm(total=total, unit="video", file=sys.stderr, disable=True if quiet else None,
                        bar_format="{desc}{percentage:3.0f}%|{bar}| {n:.1f}/{total} videos "
                                   "[{elapsed}<{remaining}]")
        self.finished = 0

    def update(self, running: dict[str, float]) -> None:
        self.bar.n = self.finished + sum(min(max(f, 0.0), 1.0) for f in running.values())
        if running:
            self.bar.set_description_str(", ".join(f"{k} {100 * f:.0f}%" for k, f in running.items())
                                         [:60] + " ", refresh=False)
        self.bar.refresh()

    def line(self, text: str, err: bool = False) -> None:
        self.tqdm.write(text, file=sys.stderr if err else sys.stdout)

    def close(self) -> None:
        self.bar.close()


def _describe(row: dict) -> str:
    if row["status"] in ("ok", "skipped"):
        det = row.get("detection_rate")
        det_txt = f", detection {100 * det:.1f} %" if isinstance(det, int | float) else ""
        took = f", {row['wall_s']:.1f} s" if row.get("wall_s") is not None else ""
        return f"{row['status']:<9} {row['out_dir']}  ({row.get('frames')} frames{det_txt}{took})"
    return f"error: {Path(row['video']).name}: {row['error']}"


def run_batch(plan_: Plan, ray_address: str | None = None, workers: int | None = None,
              quiet: bool = False) -> tuple[list[dict], bool, Path]:
    """Process the plan's videos on Ray; returns (summary rows in input order, cancelled, batch.json
    path). Ctrl-C (KeyboardInterrupt) cancels: running tasks are told to stop, finished results
    stay, and the summary is written all the same."""
    jobs = plan_.jobs
    out_dir = jobs[0].cfg.out_dir
    rows: dict[str, dict] = {}
    todo: list[Job] = []
    for job in jobs:
        rec = None if job.cfg.force else completed_record(job.cfg.out_dir / job.stem)
        if rec is not None:
            rows[job.stem] = _row(job, "skipped", **summary_from_record(rec), wall_s=None)
        else:
            todo.append(job)
    n_workers = workers or max(1, min(len(todo), os.cpu_count() or 1))
    meta = {"completed": False, "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "out_dir": str(out_dir), "ray_address": ray_address,
            "workers": None if ray_address else n_workers, "inputs": plan_.inputs,
            "warnings": plan_.warnings}
    t0 = time.perf_counter()
    # Before the bar and the summary: when Ray cannot start, nothing ran and nothing is written.
    ray = start_ray(ray_address, n_workers) if todo else None
    bar = _Bar(len(jobs), quiet)
    for row in rows.values():
        bar.finished += 1
        bar.line(_describe(row))
    bar.update({})
    cancelled = False
    pending: dict[object, Job] = {}
    try:
        if todo:
            # max_retries=0: a crashed or killed worker is reported, not silently run again.
            task = ray.remote(num_cpus=1, max_retries=0)(process_video)
            actor = ray.remote(num_cpus=0, max_restarts=0)(_Progress).remote()
            pending = {task.remote(j.cfg, actor, j.stem): j for j in todo}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
                for ref in done:
                    job = pending.pop(ref)
                    rows[job.stem] = _collect(ray, ref, job)
                    bar.finished += 1
                    bar.line(_describe(rows[job.stem]), err=rows[job.stem]["status"] != "ok")
                try:
                    snap = ray.get(actor.snapshot.remote(), timeout=2 * _POLL_S)
                except Exception:  # noqa: BLE001  the bar can miss a beat; the results cannot
                    snap = {}
                bar.update({j.stem: snap[j.stem] for j in pending.values() if j.stem in snap})
    except KeyboardInterrupt:
        cancelled = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        if ray is not None and pending:
            _cancel(ray, pending, rows, bar, out_dir)
    finally:
        bar.close()
        if ray is not None and not ray_address:
            # A killed worker leaves its staged folder (tagged with its dead pid); live runs' are kept.
            clean_stale(out_dir)
        for job in jobs:
            rows.setdefault(job.stem, _row(job, "cancelled", "cancelled before it started"))
        ordered = [rows[j.stem] for j in jobs]
        meta |= {"completed": not cancelled,
                 "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                 "wall_s": round(time.perf_counter() - t0, 3)}
        summary, _ = write_summary(out_dir, ordered, meta)
        if "ray" in sys.modules:  # also after a Ctrl-C inside ray.init, which may have started it
            sys.modules["ray"].shutdown()
    return ordered, cancelled, summary


def _collect(ray: object, ref: object, job: Job) -> dict:
    try:
        res = ray.get(ref)
    except Exception as exc:  # noqa: BLE001  every Ray failure becomes that video's one line
        status, line = _ray_error(exc)
        return _row(job, status, line)
    return _row(job, res.pop("status"), res.pop("error"), **res)


def _cancel(ray: object, pending: dict, rows: dict, bar: _Bar, out_dir: Path) -> None:
    """Ask running tasks to stop (KeyboardInterrupt in the task: its staged folder is removed),
    keep any that finish meanwhile, kill the rest after a grace period and sweep their leftovers."""
    for ref in pending:
        ray.cancel(ref, force=False)
    deadline = time.monotonic() + _CANCEL_GRACE_S
    while pending and time.monotonic() < deadline:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
        for ref in done:
            job = pending.pop(ref)
            rows[job.stem] = _collect(ray, ref, job)
            if rows[job.stem]["status"] == "ok":  # it finished before the cancel reached it: kept
                bar.line(_describe(rows[job.stem]))
    if pending:
        for ref, job in pending.items():
            ray.cancel(ref, force=True)
            rows[job.stem] = _row(job, "cancelled", "cancelled while running (stopped by force); "
                                  "nothing was written")
        ray.wait(list(pending), num_returns=len(pending), timeout=5.0)  # run_batch then sweeps
    for job in pending.values():
        rows.setdefault(job.stem, _row(job, "cancelled", "cancelled"))


def main_batch(inputs: list[str], manifest: Path | None, defaults: dict, ray_address: str | None = None,
               workers: int | None = None, quiet: bool = False, debug: bool = False) -> int:
    """The `batch` command after argument parsing: 0 all ok or skipped, 1 a refusal or any video
    failed, 130 cancelled."""
    def on_signal(signum, frame) -> None:  # noqa: ARG001  SIGTERM cancels as Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        p = plan(inputs, manifest, defaults)
        for w in p.warnings:
            sys.stderr.write(f"warning: {w}\n")
        rows, cancelled, summary = run_batch(p, ray_address, workers, quiet)
    except KeyboardInterrupt:
        sys.stderr.write("error: cancelled before any video started; nothing was written\n")
        return 130
    except EngineError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except Exception as exc:  # a bug: one line, the traceback only on request
        if debug or os.environ.get("HP3D_DEBUG"):
            import traceback

            traceback.print_exc()
        sys.stderr.write(f"error: internal error ({type(exc).__name__}: {exc}); rerun with --debug "
                         "for details\n")
        return 3
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    if cancelled:
        sys.stderr.write(f"error: cancelled ({text}); finished results kept, summary in {summary}\n")
        return 130
    print(f"{len(rows)} videos: {text}; summary in {summary}")
    return 1 if counts["failed"] else 0


__all__ = ["BatchError", "Job", "Plan", "completed_record", "expand_inputs", "main_batch", "plan",
           "process_video", "read_manifest", "run_batch", "summary_from_record", "write_summary"]
