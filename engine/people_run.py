"""A run that follows several people (--people all | N | ID,ID): track everyone once
(engine/people.py), then put each chosen person through the single-person pipeline
(engine/pipeline.run) into OUT/<stem>/person_<ID>/, with OUT/<stem>/run.json listing them; with
--scail, OUT/<stem>/scail/ also renders everyone together (each person's folder has their own).

The whole OUT/<stem>/ is staged and renamed into place at the end (engine/outputs.py), so a bad
--people (an ID that never appears), a failure or a cancel leaves nothing behind.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import numpy as np

from . import __version__
from .config import RunConfig
from .errors import Cancelled, EngineError
from .outputs import check_writable, clean_stale, staged_folder
from .people import mean_size, parse_people, select, track_people
from .progress import ProgressFn
from .result import RUN_JSON
from .video import probe, resolve_range

TRACK_GAP_S = 0.5  # a person unseen for longer gets a new ID
_TRACKING_SHARE = 0.6  # of the progress bar; the people's own runs share the rest


def folder_name(pid: int) -> str:
    return f"person_{pid}"


def run_people(cfg: RunConfig, progress: ProgressFn | None = None,
               cancel: threading.Event | None = None):
    from .pipeline import Person, RunResult, package_versions, run

    report = progress or (lambda f, m: None)
    cancel = cancel or threading.Event()
    t0 = time.perf_counter()
    final = cfg.out_dir / cfg.stem
    clean_stale(cfg.out_dir)
    check_writable(cfg.out_dir, final, cfg.force)
    spec = parse_people(cfg.people)
    info = probe(cfg.video)
    start, stop = resolve_range(info, cfg.frames)
    report(0.0, "reading video")
    people, timing = track_people(info, start, stop, model=cfg.pose_model, max_gap_s=TRACK_GAP_S,
                                  progress=lambda f, m: report(_TRACKING_SHARE * f, m), cancel=cancel,
                                  holistic=cfg.holistic)
    tracking_s = time.perf_counter() - t0
    chosen = select(people, spec)  # an unknown ID fails here, before anything is written
    heights, masses = dict(cfg.person_heights), dict(cfg.person_masses)
    unknown = sorted((set(heights) | set(masses)) - {pid for pid, _ in chosen})
    if unknown:
        raise EngineError(f"--person-height/--person-mass name person {', '.join(map(str, unknown))}, "
                          f"who is not among the people followed "
                          f"({', '.join(str(pid) for pid, _ in chosen)})")
    found = [_describe(pid, track, start) for pid, track in people]
    results: list[RunResult] = []
    skipped: list[dict] = []  # with all / N: people whose reconstruction failed (too little seen)
    with staged_folder(final, force=cfg.force) as tmp:
        each = replace(cfg, out_dir=tmp, people="largest", force=False, person_heights=(), person_masses=())
        done: dict[int, dict] = {}  # ID → that person's run.json record
        for n, (pid, track) in enumerate(chosen):
            if cancel.is_set():
                raise Cancelled()
            share = (1.0 - _TRACKING_SHARE) / len(chosen)
            base = _TRACKING_SHARE + n * share

            def person_progress(f: float, m: str, base: float = base, share: float = share,
                                pid: int = pid) -> None:
                report(base + share * f, f"person {pid}: {m}")

            subject = {"method": "tracked", "id": pid, **_describe(pid, track, start)}
            try:
                one = replace(each, height_m=heights.get(pid, cfg.height_m),
                              mass_kg=masses.get(pid, cfg.mass_kg))
                results.append(run(one, progress=person_progress, cancel=cancel,
                                   person=Person(folder_name(pid), track, subject, timing)))
                done[pid] = results[-1].record
            except EngineError as exc:
                if isinstance(spec, tuple):  # a person asked for by ID is not dropped quietly
                    raise EngineError(f"person {pid}: {exc}") from None
                skipped.append({"id": pid, "error": str(exc)})
        if not results:
            raise EngineError("no tracked person could be reconstructed: "
                              + "; ".join(f"person {s['id']}: {s['error']}" for s in skipped))
        chosen = [(pid, t) for pid, t in chosen if pid not in {s["id"] for s in skipped}]
        scail_record = None
        if cfg.scail and len(results) > 1:  # everyone in one render, as SCAIL-Pose draws them
            from .scail import run_scail

            first = results[0]
            scail_record = run_scail(np.stack([r.recon.markers for r in results], axis=1),
                                     first.intrinsics, first.video.fps, cfg.stem, tmp / "scail",
                                     progress=lambda f, m: report(0.99, f"everyone: {m}"),
                                     cancel=cancel, first_frame=first.first_frame, size=cfg.scail_size)
        frames = results[0].record["frames"]
        record = {
            "completed": True,
            "engine_version": __version__,
            "config": cfg.to_json(),
            "versions": package_versions(),
            "video": results[0].record["video"],
            "frames": {"first": frames["first"], "requested": frames["requested"], "read": frames["read"],
                       "detected": int(np.any([t.detected for _, t in chosen], axis=0).sum())},
            "detection_rate": round(float(np.mean([r.record["detection_rate"] for r in results])), 4),
            "people": [{"id": pid, "folder": folder_name(pid)} | _describe(pid, track, start)
                       | _subject(done[pid]) for pid, track in chosen],
            "quality": worst_quality([done[pid].get("quality", {}) for pid, _ in chosen]),
            "fps_pose": round(frames["read"] / tracking_s, 2) if tracking_s > 0 else None,
            "people_found": found,
            "people_skipped": skipped,
            "timings": {"tracking_s": round(tracking_s, 3),
                        "total_s": round(time.perf_counter() - t0, 3)},
            "outputs": sorted(folder_name(pid) for pid, _ in chosen) + [RUN_JSON]
            + (["scail"] if scail_record else []),
        }
        if scail_record:
            record["scail"] = scail_record
        (tmp / RUN_JSON).write_text(json.dumps(record, indent=2))
    report(1.0, "done")
    # Each person's files now live under final/person_<ID>/, not the staging folder.
    moved = [replace(r, out_dir=final / r.out_dir.name,
                     files={k: final / r.out_dir.name / p.relative_to(r.out_dir) for k, p in r.files.items()})
             for r in results]
    first = moved[0]
    return replace(first, out_dir=final, record=record, people=moved,
                   files={"run_json": final / RUN_JSON})


def worst_quality(blocks: list[dict]) -> dict:
    """One quality block for several people (a batch row, a glance): per figure, the worst
    person's value: the least detected share; the most low-confidence, interpolated, mirrored,
    swapped and missing samples and reprojection error. Planted feet describe the motion, not its
    quality: they stay in each person's own block (in `people`)."""
    out: dict = {}
    for key in dict.fromkeys(k for b in blocks for k in b):
        values = [b[key] for b in blocks if isinstance(b.get(key), int | float)]
        if values and not key.startswith("planted"):
            out[key] = min(values) if key == "detected_share" else max(values)
    return out


def _subject(record: dict) -> dict:
    """What the top run.json repeats of one person's own: their scale and quality."""
    cfg = record["config"]
    return {"height_m": cfg["height_m"], "mass_kg": cfg["mass_kg"], "quality": record.get("quality", {})}


def _describe(pid: int, track, start: int) -> dict:
    seen = np.flatnonzero(track.detected)
    return {"id": pid, "frames_tracked": int(seen.size),
            "first_frame": int(start + seen[0]) if seen.size else None,
            "last_frame": int(start + seen[-1]) if seen.size else None,
            "size_px": round(mean_size(track), 1)}
