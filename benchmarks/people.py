"""Multi-person tracking (engine/people.py) against references that need no hand-drawn labels.

For each video it prints the ID switches and each person's coverage (frames their track has a pose
/ frames the reference says they are in view); targets: 0 switches, coverage >= 95 %.

    .venv/bin/python benchmarks/people.py [--fresh] [--videos cam01,cam03,sports2d]

Pose2Sim's Demo_MultiPerson (2 people, 4 calibrated synchronised cameras, 60 fps, 100 frames):
the reference is cross-view geometry. In each frame every combination of one tracked pose (or
none) per camera is triangulated (engine.triangulation's weighted DLT on the landmarks seen with
visibility > 0.5); the combination over the most cameras (each view's pose as labelled or, where
that fits better, with left and right exchanged, as MediaPipe does for a person seen from behind)
whose median reprojection error is under
REPROJ_PX is one physical person, its poses are removed, and the search repeats. Those people are
then linked from frame to frame in 3D (Hungarian on their triangulated body centres, gated at
0.5 m: in 3D two people never overlap, however they overlap in one image). So the reference
identity of camera k's pose comes from the other cameras agreeing with it, never from its track
ID. A person is "in view" of camera k in a frame when at least half of their triangulated landmarks
project inside its image.

Sports2D's demo (one camera, 30 fps, 230 frames): the man stands on the shed (upper half of the
frame) until he back-flips off it at frame ~160 and then moves on the ground at the right; the
woman walks the ground right to left, entering from behind the tree at frame 40 and leaving the
frame at 202 (in view: man 0-226, after which he goes behind the tree; woman 40-202, read off the
frames). A pose is the man's if its body centre is in the upper 45 % of the frame before frame 160,
or right of x = 600 px from then on (the woman is then left of 460 px); checked on sampled frames
drawn with --draw.

Counts: `swaps` = frames where a track's reference person differs from the one it had before (a
track that jumps to another person); `new_ids` = frames where a person's track ID differs from the
one they had before (a person who lost their ID: after a gap longer than the tracker bridges, or a
second track on the same body).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))
sys.path.insert(0, str(_ROOT / "benchmarks"))

CACHE = Path(__file__).resolve().parent / ".cache" / "people"
CACHE_VERSION = 2
REPROJ_PX = 25.0
MIN_PERSON_FRAMES = 10
FPS_MULTI = 60.0
SAME_BODY_M = 0.35  # Demo_MultiPerson's frame rate
VIS = 0.5


def _package(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def multi_dir() -> Path:
    return _package("Pose2Sim") / "Demo_MultiPerson"


def sports2d_video() -> Path:
    return _package("Sports2D") / "Demo" / "demo.mp4"


def tracked(video: Path, fresh: bool = False) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], int,
                                                       tuple[int, int], float]:
    """{ID: pixels (T, 33, 2)}, {ID: visibility (T, 33)} (NaN / 0 where the track has no pose),
    frames, (w, h), seconds (cached in benchmarks/.cache/people/)."""
    from engine.people import track_people
    from engine.video import probe

    key = CACHE / f"{video.parent.parent.name}_{video.stem}.npz"
    if key.is_file() and not fresh:
        with np.load(key) as d:
            if int(d["version"]) == CACHE_VERSION:
                ids = [int(v) for v in d["ids"]]
                return ({i: d[f"px{i}"] for i in ids}, {i: d[f"vis{i}"] for i in ids}, int(d["frames"]),
                        tuple(d["size"]), float(d["seconds"]))
    info = probe(video)
    t = time.perf_counter()
    people, _ = track_people(info, 0, None)
    seconds = time.perf_counter() - t
    px = {pid: np.where(tr.detected[:, None, None], tr.pixels, np.nan) for pid, tr in people}
    vis = {pid: np.where(tr.detected[:, None], tr.visibility, 0.0) for pid, tr in people}
    frames = people[0][1].frames if people else 0
    key.parent.mkdir(parents=True, exist_ok=True)
    np.savez(key, version=CACHE_VERSION, ids=np.array(list(px), int), frames=frames,
             size=np.array([info.width, info.height]), seconds=seconds,
             **{f"px{i}": v for i, v in px.items()}, **{f"vis{i}": v for i, v in vis.items()})
    return px, vis, frames, (info.width, info.height), seconds


def centre(px: np.ndarray, vis: np.ndarray) -> np.ndarray:
    ok = vis > VIS
    return np.median(px[ok], axis=0) if ok.sum() >= 3 else np.array([np.nan, np.nan])


def count(labels: dict[int, list[tuple[int, int]]]) -> int:
    """Changes in a sequence of (frame, label) per key."""
    n = 0
    for seq in labels.values():
        seq = sorted(seq)
        n += sum(1 for (_, a), (_, b) in zip(seq, seq[1:]) if a != b)
    return n


def score(match: dict[tuple[int, int], int], visible: dict[int, set[int]],
          extra: dict[tuple[int, int], int] | None = None,
          covered: dict[tuple[int, int], int] | None = None) -> dict:
    """match: (frame, track ID) → reference person; visible: person → frames in view; extra:
    further tracks on a body that already has one (they count for their track's swaps only);
    covered: the frames that count for coverage (default: match)."""
    by_track: dict[int, list] = {}
    by_person: dict[int, list] = {}
    for (f, tid), person in match.items():
        by_track.setdefault(tid, []).append((f, person))
        by_person.setdefault(person, []).append((f, tid))
    for (f, tid), person in (extra or {}).items():
        by_track.setdefault(tid, []).append((f, person))
    coverage = {}
    tracked_by: dict[int, set[int]] = {}
    for (f, _), person in (covered if covered is not None else match).items():
        tracked_by.setdefault(person, set()).add(f)
    for person, frames in visible.items():
        seen = tracked_by.get(person, set()) & frames
        coverage[person] = (len(seen), len(frames))
    return {"swaps": count(by_track), "new_ids": count(by_person), "coverage": coverage,
            "tracks": sorted({tid for (_, tid) in match})}


# ---- Demo_MultiPerson: cross-view reference ------------------------------------------------------

def cameras(videos: list[Path]):
    from engine.calibration import convert_qualisys, fit_to_video, match_videos, read_calibration
    from engine.video import probe

    toml = CACHE / "multiperson_calib.toml"
    if not toml.is_file():
        convert_qualisys(multi_dir() / "calibration" / "Calib.qca.txt", toml)
    cams = match_videos(read_calibration(toml), videos)
    out = []
    for c, v in zip(cams, videos):
        info = probe(v)
        out.append(fit_to_video(c, info.width, info.height, v.name))
    return out


def multiview_reference(cams, tracks: list[tuple[dict, dict]], frames: int) -> tuple[list, list]:
    """Per frame, the physical people: [{cam: track ID}] and their 3D landmarks (33, 3), with
    persistent person numbers (0, 1, ...) linked in 3D."""
    from engine.joint_sets import MP_MIRROR
    from engine.triangulation import triangulate, undistort

    C = len(cams)
    P = np.array([c.P for c in cams])
    mirror = list(MP_MIRROR)
    # Every pose's landmarks in normalised image coordinates, as labelled and left/right exchanged.
    norm = []
    for k, (px, _) in enumerate(tracks):
        one = [cams[k]]
        norm.append({tid: undistort(one, px[tid][None].astype(np.float64))[0] for tid in px})

    def error(combo: tuple, flips: tuple) -> tuple[float, np.ndarray]:
        """Median reprojection error (px) of the poses of `combo` triangulated together."""
        xn = np.zeros((C, 33, 2))
        w = np.zeros((C, 33))
        for k, o in enumerate(combo):
            if o is not None:
                tid, x, v = o
                xn[k], w[k] = (x[mirror], v[mirror] > VIS) if flips[k] else (x, v > VIS)
        X = triangulate(xn[:, None], w[:, None], P)[0]
        err = []
        for k, o in enumerate(combo):
            if o is not None:
                q = X @ cams[k].R.T + cams[k].t
                ok = (w[k] > 0) & (q[:, 2] > 0)
                err.append(np.linalg.norm((q[ok, :2] / q[ok, 2:] - xn[k, ok]) * cams[k].K[0, 0], axis=1))
        e = np.concatenate(err) if err else np.array([])
        e = e[np.isfinite(e)]
        return (float(np.median(e)) if e.size else np.inf), X

    groups_by_frame: list[list[tuple[dict, np.ndarray]]] = []
    for f in range(frames):
        options = []
        for k, (px, vis) in enumerate(tracks):
            options.append([(tid, norm[k][tid][f], vis[tid][f]) for tid in px
                            if (vis[tid][f] > VIS).sum() >= 6])
        used: set[tuple[int, int]] = set()
        groups = []
        while True:
            best = None
            choices = [[None] + [o for o in opts if (k, o[0]) not in used] for k, opts in enumerate(options)]
            for combo in itertools.product(*choices):
                views = [k for k in range(C) if combo[k] is not None]
                if len(views) < 2:
                    continue
                # MediaPipe may exchange left and right in one view (a person seen from behind):
                # try each view's pose flipped, keeping a flip that lowers the error.
                flips = [False] * C
                e, X = error(combo, tuple(flips))
                for k in views[1:]:
                    flips[k] = True
                    e2, X2 = error(combo, tuple(flips))
                    if e2 < e:
                        e, X = e2, X2
                    else:
                        flips[k] = False
                if e < REPROJ_PX and (best is None or (len(views), -e) > (best[0], -best[1])):
                    best = (len(views), e, {k: combo[k][0] for k in views}, X)
            if best is None:
                break
            groups.append((best[2], best[3]))
            used |= {(k, tid) for k, tid in best[2].items()}
        groups_by_frame.append(_merge_same_body(groups))
    # Link the people across frames in 3D.
    persons: list[np.ndarray] = []  # last body centre of each reference person
    last_seen: list[int] = []
    labelled: list[list[tuple[int, dict, np.ndarray]]] = []
    for f, groups in enumerate(groups_by_frame):
        centres = [np.nanmedian(X[[11, 12, 23, 24]], axis=0) for _, X in groups]
        out = []
        assigned: dict[int, int] = {}
        if persons and groups:
            cost = np.array([[np.linalg.norm(c - p) if np.isfinite(c).all() else 1e3
                              for c in centres] for p in persons])
            rows, cols = linear_sum_assignment(cost)
            # 0.5 m from where they were last seen, more the longer ago (people walk ~1.5 m/s).
            gate = [0.5 + 1.5 * (f - last_seen[p]) / FPS_MULTI for p in range(len(persons))]
            assigned = {int(c): int(r) for r, c in zip(rows, cols) if cost[r, c] < gate[r]}
        for g, (members, X) in enumerate(groups):
            if g not in assigned:
                if not np.isfinite(centres[g]).all():
                    continue
                persons.append(centres[g])
                last_seen.append(f)
                assigned[g] = len(persons) - 1
            p = assigned[g]
            if np.isfinite(centres[g]).all():
                persons[p], last_seen[p] = centres[g], f
            out.append((p, members, X))
        labelled.append(out)
    # A "person" seen in a few frames only is a chance agreement of stray poses, not a person.
    counts = np.bincount([p for people in labelled for p, _, _ in people], minlength=len(persons))
    labelled = [[g for g in people if counts[g[0]] >= MIN_PERSON_FRAMES] for people in labelled]
    return labelled, persons


def _merge_same_body(groups: list[tuple[dict, np.ndarray]]) -> list[tuple[dict, np.ndarray]]:
    """Groups of one frame whose bodies' centres lie within SAME_BODY_M are one person (a camera
    with two tracks on one body gives two groups that each agree with the other cameras)."""
    merged: list[tuple[dict, np.ndarray]] = []
    for members, X in groups:
        c = np.nanmedian(X[[11, 12, 23, 24]], axis=0)
        for m2, X2 in merged:
            if np.linalg.norm(c - np.nanmedian(X2[[11, 12, 23, 24]], axis=0)) < SAME_BODY_M:
                for k, tid in members.items():  # a camera's second track on the body
                    m2.setdefault(k, tid)
                    m2.setdefault((k, "also"), []).append(tid)
                break
        else:
            merged.append((dict(members), X))
    return merged


def _fill_unverified(match: dict[tuple[int, int], int], vis: dict[int, np.ndarray], frames: int
                     ) -> dict[tuple[int, int], int]:
    """match plus the frames where a track has a pose that no other camera confirmed (too
    inaccurate, or left and right exchanged, to triangulate within REPROJ_PX) but which lie
    between two confirmed frames of the same person (or before the first / after the last): the
    track's own continuity carries the identity there. For coverage only; swaps are counted on
    the confirmed frames."""
    out = dict(match)
    for tid, v in vis.items():
        confirmed = sorted(f for (f, t) in match if t == tid)
        if not confirmed:
            continue
        for f in range(frames):
            if (f, tid) in out or (v[f] > VIS).sum() < 6:
                continue
            before = [g for g in confirmed if g < f]
            after = [g for g in confirmed if g > f]
            sides = {match[(before[-1], tid)]} if before else set()
            sides |= {match[(after[0], tid)]} if after else set()
            if len(sides) == 1:
                out[(f, tid)] = sides.pop()
    return out


def bench_multiperson(names: list[str], fresh: bool) -> list[dict]:
    from engine.triangulation import project

    videos = [multi_dir() / "videos" / f"{n}.mp4" for n in ("cam01", "cam02", "cam03", "cam04")]
    cams = cameras(videos)
    tracks, seconds = [], []
    for v in videos:
        px, vis, frames, _, s = tracked(v, fresh)
        tracks.append((px, vis))
        seconds.append(s)
    labelled, _ = multiview_reference(cams, tracks, frames)
    rows = []
    for k, v in enumerate(videos):
        if v.stem not in names:
            continue
        match, visible, extra = {}, {}, {}
        for f, people in enumerate(labelled):
            for person, members, X in people:
                uv = project(X, cams[k])
                w, h = cams[k].size
                inside = ((uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h))
                if inside[np.isfinite(X).all(1)].mean() >= 0.5:
                    visible.setdefault(person, set()).add(f)
                if k in members:
                    match[(f, members[k])] = person
                for tid in members.get((k, "also"), []):  # a second track on this body
                    extra[(f, tid)] = person
        covered = _fill_unverified(match, tracks[k][1], frames)
        rows.append({"video": f"Demo_MultiPerson/{v.stem}", "seconds": seconds[k], "frames": frames,
                     **score(match, visible, extra, covered)})
    return rows


# ---- Sports2D demo: positional reference ------------------------------------------------------

MAN, WOMAN = 0, 1
SPORTS2D_VISIBLE = {MAN: range(0, 227), WOMAN: range(40, 203)}


def sports2d_person(f: int, c: np.ndarray, height: int) -> int:
    if f < 160:
        return MAN if c[1] < 0.45 * height else WOMAN
    return MAN if c[0] > 600 else WOMAN


def bench_sports2d(fresh: bool) -> dict:
    px, vis, frames, (w, h), s = tracked(sports2d_video(), fresh)
    match = {}
    for tid in px:
        for f in range(frames):
            c = centre(px[tid][f], vis[tid][f])
            if np.isfinite(c).all():
                match[(f, tid)] = sports2d_person(f, c, h)
    visible = {p: set(r) for p, r in SPORTS2D_VISIBLE.items()}
    return {"video": "Sports2D/demo", "seconds": s, "frames": frames, **score(match, visible)}


def draw(video: Path, frames: list[int], out: Path) -> None:
    """The tracked poses, coloured and numbered by ID, on some frames (a check by eye)."""
    import threading

    import cv2

    from engine.video import probe, stream_frames

    px, vis, *_ = tracked(video)
    colours = [(0, 0, 255), (0, 200, 0), (255, 0, 0), (0, 200, 255), (255, 0, 255), (255, 255, 0)]
    tiles = []
    for idx, rgb in stream_frames(probe(video), 0, max(frames) + 1, cancel=threading.Event()):
        if idx not in frames:
            continue
        im = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        for tid in px:
            col = colours[(tid - 1) % len(colours)]
            for (x, y), v in zip(px[tid][idx], vis[tid][idx]):
                if v > VIS:
                    cv2.circle(im, (int(x), int(y)), 7, col, -1)
            c = centre(px[tid][idx], vis[tid][idx])
            if np.isfinite(c).all():
                cv2.putText(im, str(tid), (int(c[0]), int(c[1])), 0, 4, col, 8)
        s = 360 / max(im.shape[:2])
        im = cv2.resize(im, None, fx=s, fy=s)
        cv2.putText(im, str(idx), (5, 25), 0, 0.8, (255, 255, 255), 2)
        tiles.append(im)
    cv2.imwrite(str(out), np.hstack(tiles))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fresh", action="store_true", help="track again instead of reading the cache")
    ap.add_argument("--videos", default="cam01,cam02,cam03,cam04,sports2d")
    ap.add_argument("--draw", default=None, metavar="VIDEO:F,F,...:OUT.png",
                    help="draw the tracks on some frames of cam01..cam04 or sports2d")
    args = ap.parse_args()
    if args.draw:
        name, frames, out = args.draw.split(":")
        video = sports2d_video() if name == "sports2d" else multi_dir() / "videos" / f"{name}.mp4"
        draw(video, [int(v) for v in frames.split(",")], Path(out))
        return 0
    names = args.videos.split(",")
    rows = []
    if any(n.startswith("cam") for n in names):
        rows += bench_multiperson(names, args.fresh)
    if "sports2d" in names:
        rows.append(bench_sports2d(args.fresh))
    print(f"{'video':<26} {'frames':>6} {'fps':>6} {'swaps':>5} {'new_ids':>7}  coverage per person "
          "(tracked/visible)")
    ok = True
    for r in rows:
        cov = "  ".join(f"P{p}: {a}/{b} = {100 * a / max(b, 1):.1f} %" for p, (a, b) in
                        sorted(r["coverage"].items()))
        print(f"{r['video']:<26} {r['frames']:>6} {r['frames'] / max(r['seconds'], 1e-9):>6.1f} "
              f"{r['swaps']:>5} {r['new_ids']:>7}  {cov}  (track IDs {r['tracks']})")
        ok &= r["swaps"] == 0 and r["new_ids"] == 0 and all(a >= 0.95 * b for a, b in r["coverage"].values())
    print("targets (0 switches, coverage >= 95 %):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
