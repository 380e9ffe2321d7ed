"""Several people: stable IDs (engine/tracking.py, engine/people.py) and --people runs
(engine/people_run.py), on the Sports2D demo, where the woman walks under the man on the shed and
their x positions cross near frame 125."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from conftest import HEIGHT_M, assert_hands_on_wrists, assert_one_error_line, leftovers, run_cli

from engine.config import RunConfig
from engine.detection import detect
from engine.errors import EngineError
from engine.people import parse_people, select, track_people
from engine.tracking import Pose, Subject, Tracker, keypoint_distance, pose_box, size
from engine.video import probe

CROSSING = (112, 138)  # Sports2D demo frames around the crossing in x (frame ~125)


@pytest.fixture(scope="module")
def crossing(sports2d_demo):
    info = probe(sports2d_demo)
    people, timing = track_people(info, *CROSSING)
    return info, people


def _centres(track) -> np.ndarray:
    out = np.full((track.frames, 2), np.nan)
    for i in np.flatnonzero(track.detected):
        ok = track.visibility[i] > 0.5
        out[i] = np.median(track.pixels[i][ok], axis=0)
    return out


def test_ids_stay_with_their_person_through_the_crossing(crossing):
    info, people = crossing
    assert [pid for pid, _ in people] == [1, 2], "two people, IDs 1, 2 by first appearance"
    sides = {}
    for pid, track in people:
        c = _centres(track)
        seen = np.isfinite(c).all(axis=1)
        assert seen.mean() >= 0.9, f"person {pid} tracked in {seen.mean():.0%} of the frames"
        # The man stays on the shed (upper part of the frame), the woman on the ground: a swap
        # would put one track on both sides.
        upper = c[seen, 1] < 0.45 * info.height
        assert upper.all() or not upper.any(), f"person {pid} changed sides: an ID swap"
        sides[pid] = bool(upper[0])
        xs = c[seen, 0]
        assert np.ptp(xs) > 80, f"person {pid} should move across the crossing"
    assert sides[1] != sides[2], "the two IDs follow two different people"
    # Their x positions really cross inside the slice.
    dx = _centres(people[0][1])[:, 0] - _centres(people[1][1])[:, 0]
    dx = dx[np.isfinite(dx)]
    assert dx.min() < 0 < dx.max()


@pytest.fixture(scope="module")
def flip_people(sports2d_demo):
    """The --people tracks of the whole Sports2D demo."""
    return track_people(probe(sports2d_demo), 0, None)[0]


@pytest.mark.parametrize("holistic", [False, True], ids=["body", "holistic"])
def test_single_person_run_finds_its_subject_again_not_a_passer_by(sports2d_demo, tmp_path, flip_people,
                                                                   holistic):
    """A default (single-person) run follows the person it chose, as the --people tracker does:
    the man on the shed is lost mid-flip (near frame 168) while the woman walks past below; before
    engine.tracking.Subject the body's search took her for him (25 frames on frames 100-230), and
    so did --holistic's Tasks graph, which re-detects by itself (31 frames)."""
    info = probe(sports2d_demo)
    cfg = RunConfig(video=sports2d_demo, height_m=HEIGHT_M, out_dir=tmp_path, holistic=holistic)
    single, _, _ = detect(cfg, info, 0, None, lambda f, m: None, threading.Event())
    people = flip_people
    assert len(people) == 2
    ids = []
    for i in np.flatnonzero(single.detected):  # whose --people track each frame's pose lies on
        d = {pid: keypoint_distance(t.pixels[i], t.visibility[i], single.pixels[i], single.visibility[i],
                                    size(pose_box(t.pixels[i], t.visibility[i])))
             for pid, t in people if t.detected[i]}
        if not people[0][1].detected[i] and min(d.values(), default=9.0) >= 1.0:
            continue  # on no one the --people tracker sees (it lost the man too), not on the woman
        assert d and min(d.values()) < 1.0, f"frame {i}: the pose is nobody's ({d})"
        ids.append(min(d, key=d.get))
    assert set(ids) == {1}, f"frames per --people ID: {np.unique(ids, return_counts=True)}"
    assert len(ids) >= 0.75 * people[0][1].detected.sum()
    if not holistic:
        # Found again near where he was heading, he is where the --people tracker has him: before,
        # found by the whole frame's coarse look, he lay 0.3-0.5 person sizes off for 3 frames;
        # taken back half-seen or stretched in the sun's glare mid-flip, 0.55 off. From the first
        # frame on: the whole frame's detector misses him on the shed until frame 3 (then coarse,
        # 0.16-0.31 off); the first frame's search had found him, and the body looks there.
        man = people[0][1]
        assert single.detected[:3].all()
        both = np.flatnonzero(single.detected & man.detected)
        off = [np.median(np.linalg.norm(single.pixels[i] - man.pixels[i], axis=1)[man.visibility[i] > 0.5])
               / size(pose_box(man.pixels[i], man.visibility[i])) for i in both]
        assert max(off) < 0.25, [(int(i), round(float(o), 2)) for i, o in zip(both, off) if o >= 0.25]
        assert single.detected.sum() >= 0.9 * man.detected.sum()


def test_single_person_markers_stay_physical_through_a_flip(sports2d_demo, tmp_path):
    """The whole Sports2D demo, default run: the final markers never move faster than 15 m/s
    between frames (a backflip's feet reach about 10). Measured 10.0 m/s; before, the coarse first
    pose made 24 m/s at frame 3, and poses taken back half-seen mid-flip 20-56 m/s."""
    from engine.pipeline import run
    from engine.trc import read_trc

    res = run(RunConfig(video=sports2d_demo, height_m=HEIGHT_M, out_dir=tmp_path, joint_angles=False))
    markers, _, fps = read_trc(res.files["final_trc"])
    speed = np.linalg.norm(np.diff(markers, axis=0), axis=-1) * fps
    assert np.isfinite(markers).all(axis=(1, 2)).sum() >= 0.95 * len(markers)
    worst = np.nanmax(speed, axis=1)
    assert np.nanmax(worst) < 15.0, [(int(i), round(float(v), 1)) for i, v in enumerate(worst) if v >= 15]


def test_subject_is_not_taken_for_someone_followed_as_another_person():
    """Lost, the subject is found again near where they were; a person first seen beyond their
    reach stays someone else even once the subject's growing reach would include them."""
    figure = _pose(0, 0)
    subject = Subject(fps=30.0)
    for i in range(10):
        subject.seen(i, figure.pixels + (400 + 5 * i, 300), figure.visibility)
    stranger = [Pose(figure.pixels + (1200 - 10 * k, 320), figure.visibility) for k in range(40)]
    for i in range(10, 40):  # the subject is hidden; the stranger walks towards where they were
        assert subject.pick(i, [stranger[i - 10]]) is None, f"frame {i}: the stranger taken"
    back = Pose(figure.pixels + (470, 300), figure.visibility)
    assert subject.pick(40, [stranger[30], back]) == 1
    # Never seen while the subject was lost, one far away is taken once they could have got there.
    late = Subject(fps=30.0)
    late.seen(0, figure.pixels + (400, 300), figure.visibility)
    assert late.pick(2, [Pose(figure.pixels + (1200, 300), figure.visibility)]) is None
    assert late.pick(40, [Pose(figure.pixels + (1200, 300), figure.visibility)]) == 0


def test_subject_is_not_taken_back_stretched():
    """A pose whose torso is longer than the subject's longest of late (by over a fifth) is not
    theirs: a segment in the image can shorten as it turns, not grow."""
    figure = _pose(0, 0)
    subject = Subject(fps=30.0)
    for i in range(10):
        subject.seen(i, figure.pixels + (400, 300), figure.visibility)
    hips = figure.pixels[[23, 24]].mean(axis=0)
    for stretch, taken in ((1.1, True), (0.6, True), (1.3, False)):
        pixels = hips + (figure.pixels - hips) * stretch + (400, 300)
        assert (subject.pick(12, [Pose(pixels, figure.visibility)]) == 0) is taken, stretch


def test_select_by_count_ids_and_unknown_id(crossing):
    _, people = crossing
    assert [p for p, _ in select(people, "all")] == [1, 2]
    assert len(select(people, 1)) == 1 and len(select(people, 5)) == 2
    assert [p for p, _ in select(people, (2,))] == [2]
    with pytest.raises(EngineError, match="no person 7"):
        select(people, (1, 7))


@pytest.mark.parametrize("text, value", [("largest", "largest"), ("ALL", "all"), ("2", 2),
                                         ("1,3", (1, 3)), ("#4", (4,)), ("4,", (4,)),
                                         ("2,2,1", (2, 1))])
def test_parse_people(text, value):
    assert parse_people(text) == value


@pytest.mark.parametrize("text", ["", "everyone", "0", "-1", "1,,2", "#0", "1.5", "0,1"])
def test_parse_people_rejects(text):
    with pytest.raises(EngineError, match="--people"):
        parse_people(text)


def _pose(cx: float, cy: float, h: float = 200.0) -> Pose:
    """A stick figure's 33 landmarks around (cx, cy), all visible."""
    rng = np.random.default_rng(int(cx * 7 + cy))
    offsets = np.c_[rng.uniform(-0.2, 0.2, 33), np.linspace(-0.5, 0.5, 33)] * h
    return Pose(np.array([cx, cy]) + offsets, np.ones(33))


def test_tracker_keeps_ids_through_a_crossing_and_a_short_gap():
    """Two people walk through each other at the same height; one vanishes for 10 frames (1/3 s
    at 30 fps) behind the other: both keep their IDs."""
    tracker = Tracker(fps=30.0)
    a_figure, b_figure = _pose(0, 0), _pose(0, 0, 220)
    seen: dict[int, list[float]] = {}
    for i in range(60):
        xa, xb = 100 + 8 * i, 580 - 8 * i  # they meet at frame 30
        poses = [Pose(a_figure.pixels + (xa, 300), a_figure.visibility)]
        if not 25 <= i < 35:  # b hidden behind a
            poses.append(Pose(b_figure.pixels + (xb, 305), b_figure.visibility))
        for tid, pose in tracker.step(i, poses).items():
            seen.setdefault(tid, []).append(float(np.median(pose.pixels[:, 0])))
    assert sorted(seen) == [1, 2]
    a, b = np.array(seen[1]), np.array(seen[2])
    assert (np.diff(a) > 0).all() and (np.diff(b) < 0).all(), "each ID keeps one walking direction"


def test_cli_people_all_writes_one_folder_per_person(sports2d_demo, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", sports2d_demo, "--height", HEIGHT_M, "--frames", "118:132", "--people", "all",
                   "--out", out, "--quiet", "--no-plots", timeout=240)
    assert proc.returncode == 0, proc.stderr
    top = out / sports2d_demo.stem
    record = json.loads((top / "run.json").read_text())
    assert record["completed"] and [p["id"] for p in record["people"]] == [1, 2]
    assert sorted(p.name for p in top.iterdir()) == ["person_1", "person_2", "run.json"]
    from engine import result

    for p in record["people"]:
        folder = top / p["folder"]
        stem = sports2d_demo.stem
        for name in result.core_files(stem).values():
            assert (folder / name).is_file(), name
        assert (folder / f"{stem}_final.trc").is_file() and (folder / "joint_angles").is_dir()
        sub = json.loads((folder / "run.json").read_text())
        assert sub["subject"]["method"] == "tracked" and sub["subject"]["id"] == p["id"]
        assert sub["frames"]["read"] == 14
        assert p["frames_tracked"] >= 12
    # The two people are two different bodies: their 2D tracks are far apart.
    a = result.load(top / "person_1").pixels
    b = result.load(top / "person_2").pixels
    assert np.nanmedian(np.linalg.norm(np.nanmedian(a, axis=1) - np.nanmedian(b, axis=1), axis=1)) > 200


def test_cli_people_unknown_id_writes_nothing(sports2d_demo, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("run", sports2d_demo, "--height", HEIGHT_M, "--frames", "118:124", "--people", "1,9",
                   "--out", out, "--quiet", timeout=120)
    assert proc.returncode == 1
    line = assert_one_error_line(proc.stderr)
    assert "no person 9" in line and "people found: 1, 2" in line, line
    assert leftovers(out) == []


@pytest.mark.parametrize("value", ["everyone", "0", "1,x"])
def test_cli_people_bad_value(sports2d_demo, tmp_path, value):
    proc = run_cli("run", sports2d_demo, "--height", HEIGHT_M, "--people", value, "--out", tmp_path / "o")
    assert proc.returncode == 2
    line = assert_one_error_line(proc.stderr)
    assert "--people" in line, line
    assert leftovers(tmp_path / "o") == []


def test_people_with_roi_is_refused(sports2d_demo, tmp_path):
    from engine.config import RunConfig

    with pytest.raises(EngineError, match="--roi"):
        RunConfig(video=sports2d_demo, height_m=1.7, roi=(0, 0, 10, 10), people="all")
    assert RunConfig(video=sports2d_demo, height_m=1.7, roi=(0, 0, 10, 10)).people == "largest"


def test_people_holistic_hangs_everyones_hands_on_their_own_wrists(crossing):
    """--people with --holistic: each person's own Holistic graph, shown a window around them with
    the other greyed out, adds their hands; IDs and bodies stay the body tracker's, bit for bit."""
    info, people = crossing
    hol, _ = track_people(info, *CROSSING, holistic=True)
    assert [pid for pid, _ in hol] == [pid for pid, _ in people]
    for (pid, body), (_, t) in zip(people, hol):
        np.testing.assert_array_equal(t.pixels, body.pixels)
        found = np.isfinite(t.hands[..., 0]).all(axis=-1)  # (frames, left/right)
        assert found.sum() >= 15, (pid, found.sum(axis=0))  # measured 39 and 24 of 2 x 26
        assert_hands_on_wrists(t, f"person {pid}, ")


def test_people_holistic_run_writes_each_persons_hands(sports2d_demo, tmp_path):
    """`engine run --people all --holistic`: every person's folder has their hands in metres (the
    woman's left hand, found in one frame, is dropped as a run under 0.1 s)."""
    proc = run_cli("run", sports2d_demo, "--height", "1.7", "--people", "all", "--holistic",
                   "--frames", f"{CROSSING[0]}:{CROSSING[1]}", "--no-angles", "--out", tmp_path, "--quiet",
                   timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = tmp_path / sports2d_demo.stem
    record = json.loads((folder / "run.json").read_text())
    assert [p["id"] for p in record["people"]] == [1, 2]
    for person in record["people"]:
        sub = folder / person["folder"]
        hands = np.load(sub / f"{sports2d_demo.stem}_markers.npz")["hands_camera"]
        found = np.isfinite(hands[..., 0]).all(axis=-1).sum(axis=0)  # frames per hand
        assert found.sum() >= 10, f"person {person['id']}: hands found in {found} frames"


def test_largest_is_todays_run(cam01_run, cam01, tmp_path):
    """--people largest (the default) is the single-person run: same folder layout, same markers."""
    from conftest import CAM01_SLICE

    from engine.config import RunConfig
    from engine.pipeline import run

    first = cam01_run.result
    assert first.record["config"]["people"] == "largest" and first.people == []
    again = run(RunConfig(video=cam01, height_m=HEIGHT_M, out_dir=tmp_path / "again",
                          frames=CAM01_SLICE, people="largest"), cancel=threading.Event())
    assert again.out_dir.name == cam01.stem and not (again.out_dir / "person_1").exists()
    np.testing.assert_array_equal(again.recon.markers, first.recon.markers)
    assert sorted(p.name for p in again.out_dir.iterdir()) == sorted(p.name for p in first.out_dir.iterdir())


def test_scail_draws_everyone(sports2d_demo, tmp_path):
    """--people all --scail: OUT/<stem>/scail/ holds both people in the NLF export (one pose per
    person a frame, as SCAIL-Pose's extractor writes them) and in one render."""
    from engine.config import RunConfig
    from engine.pipeline import run

    res = run(RunConfig(video=sports2d_demo, height_m=HEIGHT_M, out_dir=tmp_path, frames=(118, 124),
                        people="all", scail=True, scail_size=(448, 256), joint_angles=False),
              cancel=threading.Event())
    top = res.out_dir
    stem = sports2d_demo.stem
    with np.load(top / "scail" / f"{stem}_nlf.npz") as d:
        assert d["joints3d_nonparam"].shape == (6, 2, 24, 3)
        assert d["valid"].all()
    assert res.record["scail"]["people"] == 2 and (top / "scail" / f"{stem}_scail.mp4").is_file()
    assert [r.out_dir for r in res.people] == [top / "person_1", top / "person_2"]
    assert all(path.exists() for r in res.people for path in r.files.values())
    import cv2

    def alpha(folder):
        png = sorted((folder / "rgba").glob("*.png"))[0]
        return cv2.imread(str(png), cv2.IMREAD_UNCHANGED)[..., 3] > 0

    both = alpha(top / "scail")
    one, two = alpha(top / "person_1" / "scail"), alpha(top / "person_2" / "scail")
    assert one.any() and two.any()
    # The joint render covers each person's own render (same camera, same poses).
    assert (both & one).sum() >= 0.95 * one.sum() and (both & two).sum() >= 0.95 * two.sum()
    assert both.sum() > max(one.sum(), two.sum())


def test_turned_look_maps_back_to_the_frame(sports2d_demo):
    """A lost person is also looked for in their crop turned by quarter turns (engine/people.py):
    the landmarks found in a turned crop land where the upright crop puts them."""
    from engine.people import PeopleFinder
    from engine.video import stream_frames

    info = probe(sports2d_demo)
    finder = PeopleFinder(info)
    try:
        rgb = next(iter(stream_frames(info, 100, 101, cancel=threading.Event())))[1]
        window = (800, 450, 500, 544)  # the woman, walking
        upright = finder._look(rgb, *window)
        assert len(upright) == 1
        for turns in (1, 2, 3):
            turned = finder._look(rgb, *window, turns=turns, source=7)
            assert len(turned) == 1 and turned[0].source == 7
            d = np.linalg.norm(turned[0].pixels - upright[0].pixels, axis=1)
            assert np.median(d) < 8, (turns, np.median(d))
            # World landmarks turn back too: the body's up (hips → shoulders) stays up.
            w = turned[0].world
            assert (w[[11, 12], 1].mean() - w[[23, 24], 1].mean()) < 0
    finally:
        finder.close()


def test_cancel_during_tracking_writes_nothing(sports2d_demo, tmp_path):
    from engine.config import RunConfig
    from engine.errors import Cancelled
    from engine.pipeline import run

    cancel = threading.Event()
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)
        if message.startswith("people"):
            cancel.set()

    with pytest.raises(Cancelled):
        run(RunConfig(video=sports2d_demo, height_m=HEIGHT_M, out_dir=tmp_path / "out",
                      frames=(118, 140), people="all"), progress=progress, cancel=cancel)
    assert any(m.startswith("people") for m in seen)
    assert leftovers(tmp_path / "out") == []


# ---- overlapping people: Pose2Sim's Demo_MultiPerson, camera 3 --------------------------------
# The man leans past close in front of the woman; a crop that follows one of them shows both.

@pytest.fixture(scope="module")
def overlap():
    """cam03's frames 30 and 45, each with its two largest people (the frame-wide search,
    duplicates merged), and a PeopleFinder to look with."""
    from conftest import _package_file

    from engine.people import PeopleFinder
    from engine.tracking import deduplicate, size
    from engine.video import stream_frames

    info = probe(_package_file("Pose2Sim", "Demo_MultiPerson", "videos", "cam03.mp4"))
    finder = PeopleFinder(info)
    frames = []
    for idx, rgb in stream_frames(info, 30, 46, cancel=threading.Event()):
        if idx in (30, 45):
            people = sorted(deduplicate(finder._find(rgb, [])), key=lambda p: -size(p.box))[:2]
            assert len(people) == 2, f"frame {idx}: the search should find both people"
            frames.append((rgb, people))
    yield finder, frames
    finder.close()


def _nearer(pose, me, other) -> bool:
    """The pose lies nearer `me`'s landmarks than `other`'s."""
    from engine.tracking import keypoint_distance, size

    s = size(pose.box)
    return (keypoint_distance(me.pixels, me.visibility, pose.pixels, pose.visibility, s)
            < keypoint_distance(other.pixels, other.visibility, pose.pixels, pose.visibility, s))


def test_masking_the_other_person_finds_this_one(overlap):
    """In a window that shows both people, greying out the other one's outline (as a follower's
    crop does) makes the landmarker report this person, and only them; without the mask it
    reports only one of the two, so one person's crop would feed the other's body."""
    from engine.people import outline
    from engine.tracking import size

    finder, frames = overlap
    missed_without_mask = 0
    for rgb, people in frames:
        boxes = [p.box for p in people]
        x0, y0 = min(b[0] for b in boxes) - 50, min(b[1] for b in boxes) - 50
        x1, y1 = max(b[0] + b[2] for b in boxes) + 50, max(b[1] + b[3] for b in boxes) + 50
        window = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
        for k in (0, 1):
            me, other = people[k], people[1 - k]
            own = outline(me.pixels, me.visibility, size(me.box))
            hidden = outline(other.pixels, other.visibility, size(other.box))
            masked = finder._look(rgb, *window, own=own, others=[hidden])
            assert masked and all(_nearer(p, me, other) for p in masked), "masked: this person only"
            plain = finder._look(rgb, *window)
            missed_without_mask += not any(_nearer(p, me, other) for p in plain)
    assert missed_without_mask >= 1, "the plain look should miss someone the masked look finds"


def test_upright_tells_a_standing_body_from_a_turned_one(overlap):
    """A pose found only in a turned crop must be lying or upside down (engine/people.py's
    relook); `upright` tells: a standing person's pose is upright, the same pose turned a
    half or a quarter turn is not."""
    from dataclasses import replace

    from engine.people import upright

    _, frames = overlap
    for _, people in frames:
        for p in people:
            assert upright(p)
            c = p.pixels.mean(axis=0)
            for rot in (np.array([[-1, 0], [0, -1]]), np.array([[0, -1], [1, 0]])):
                turned = replace(p, pixels=((p.pixels - c) @ rot.T + c).astype(np.float32))
                assert not upright(turned)


def test_two_crops_on_one_body_keep_the_one_that_followed_it(overlap):
    """When two followers report the same body, deduplicate keeps the pose from the crop whose
    track fits it (the one that followed that person), not the more confident one from the crop
    that drifted onto it."""
    from dataclasses import replace

    from engine.tracking import deduplicate

    _, frames = overlap
    _, (man, woman) = frames[0]
    tracker = Tracker(60.0)
    tracker.step(0, [man, woman])  # tracks 1 (the man) and 2 (the woman)
    by_id = {t.id: t for t in tracker.tracks}
    assert _nearer(by_id[2].frames[0], woman, man)
    # The woman, found by her own crop and, more confidently, by the man's drifted crop.
    own = replace(woman, source=2, visibility=woman.visibility * 0.9)
    drifted = replace(woman, source=1)
    def fit(p):
        return tracker.cost(by_id[p.source], p, 1)
    kept = deduplicate([drifted, own], fit)
    assert len(kept) == 1 and kept[0].source == 2
    assert deduplicate([drifted, own])[0].source == 1, "without fit: the more visible"


def test_a_lost_follower_looks_wider(overlap):
    """A follower whose crop has slid off its person (a fast lean out of the window) looks again
    through a wider window: the person, cut to a third of their width in the crop, is found
    there, where the crop alone finds no one."""
    from engine.people import _Follower
    from engine.tracking import keypoint_distance, size

    finder, frames = overlap
    rgb, (man, _) = frames[0]
    follower = _Follower(man.box, finder.info, finder._bundle)
    x, _, w, _ = man.box
    _, cy, cw, ch = follower.crop.box
    follower.crop.box = (x + 0.7 * w, cy, cw, ch)  # a third of him inside, on the crop's left
    assert finder._look(rgb, *follower.crop.window()) == [], "the crop alone finds no one"
    found = finder._relook(rgb, follower, 1, None, [])
    assert found and found[0].source == 1
    s = size(man.box)
    assert keypoint_distance(man.pixels, man.visibility, found[0].pixels, found[0].visibility, s) < 0.1


def test_two_heads_in_one_place_are_still_two_people(overlap):
    """One person's face in front of another's (cam03 from frame ~60: the man leans in front of
    the woman's face) puts 11 face landmarks of both poses in one place; deduplicate must not
    merge the two bodies for it. The same pose, slightly moved, is still one body."""
    from dataclasses import replace

    from engine.tracking import same_person

    _, frames = overlap
    _, (man, woman) = frames[1]
    face_on_hers = man.pixels.copy()
    face_on_hers[:11] = woman.pixels[:11]
    leaning = replace(man, pixels=face_on_hers, visibility=np.ones(33, np.float32))
    # Half hidden behind him: her face, shoulders and hips seen (her face then outnumbers the rest)
    seen = np.zeros(33, np.float32)
    seen[[*range(11), 11, 12, 23, 24]] = 1.0
    behind = replace(woman, visibility=seen)
    assert not same_person(leaning, behind) and not same_person(behind, leaning)
    assert same_person(replace(man, pixels=man.pixels + 3), man)
    assert same_person(replace(behind, pixels=behind.pixels + 3), behind)


def test_overlapping_people_both_tracked_through_cam03(tmp_path):
    """cam03 frames 30-85: both people are tracked in nearly every frame while the man's head
    covers the woman's face (before the face counted as one point in same_person, his poses
    there were merged into hers and his track lost 9 of these frames)."""
    from conftest import _package_file

    info = probe(_package_file("Pose2Sim", "Demo_MultiPerson", "videos", "cam03.mp4"))
    people, _ = track_people(info, 30, 86)
    covered = sorted((track.detected.mean() for _, track in people), reverse=True)
    assert len(covered) >= 2 and covered[1] >= 0.95, covered
